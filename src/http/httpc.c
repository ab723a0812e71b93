/*
 * httpc.c - the asynchronous HTTP client: libcurl's multi interface driven
 * by the libuv loop; see httpc.h.
 *
 * curl says which sockets to watch (socket_cb) and when to wake it
 * (timer_cb); the client watches each socket with a uv_poll_t and keeps one
 * uv_timer_t, and hands readiness back through curl_multi_socket_action().
 * Finished transfers come out of curl_multi_info_read(). The multi handle
 * keeps a connection cache, so requests to one host reuse connections.
 *
 * Callbacks never run inside an httpc_* call or inside libcurl: a finished
 * request (also a cancelled one) is moved to a queue, and the queue is
 * delivered from a loop callback (the poll or timer callback that finished
 * it, or an idle handle after a cancel, or the last close callback after
 * httpc_close). So a done callback may start, cancel or close freely.
 *
 * The client's memory lives until the close callbacks of all its handles
 * (timer, idle, every poll) have run; only then is it freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "http/httpc.h"
#include "util/headers.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_BODY (1024 * 1024)
#define MAX_PENDING 4096
/* Response headers kept for a caller that asks for them; a response with
 * more is cut at the cap (the body is unaffected). */
#define MAX_HEADERS (16 * 1024)

enum req_state { REQ_ACTIVE, REQ_FINISHED };

struct httpc_req {
	struct httpc *client;
	/* Active list (doubly linked) while REQ_ACTIVE, finished queue
	 * (next only) while REQ_FINISHED. */
	struct httpc_req *prev, *next;
	enum req_state state;
	CURL *easy;
	struct curl_slist *headers;
	struct buf body;
	struct buf hdrs;
	size_t max_body;
	int toobig;
	httpc_data_fn *on_data;
	void *data_arg;
	int stopped; /* on_data asked to stop */
	uint64_t start_ns;
	httpc_done_fn *done;
	void *arg;
	struct httpc_result res;
	char errbuf[CURL_ERROR_SIZE];
};

/* One watched socket. */
struct sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct httpc *client;
	struct sock *prev, *next;
};

struct httpc {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	uv_idle_t idle;
	struct httpc_req *active;
	size_t nactive;
	struct httpc_req *fin_head, *fin_tail;
	struct sock *socks;
	unsigned open_handles;
	int closing;
};

int httpc_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK
		       ? 0
		       : MDS_E_INTERNAL;
}

void httpc_global_cleanup(void)
{
	curl_global_cleanup();
}

static void req_free(struct httpc_req *r)
{
	if (r == NULL)
		return;
	if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	buf_free(&r->body);
	buf_free(&r->hdrs);
	free(r);
}

/* Calls the done callback of every finished request, oldest first. */
static void deliver(struct httpc *c)
{
	while (c->fin_head != NULL) {
		struct httpc_req *r = c->fin_head;

		c->fin_head = r->next;
		if (c->fin_head == NULL)
			c->fin_tail = NULL;
		r->next = NULL;
		r->done(r->arg, &r->res);
		req_free(r);
	}
	if (!c->closing)
		uv_idle_stop(&c->idle);
}

static void idle_cb(uv_idle_t *h)
{
	deliver(h->data);
}

/* Takes r out of curl and the active list, fills its result and queues it
 * for delivery. detail NULL means libcurl's message (or none on success). */
static void finish(struct httpc_req *r, int error, const char *detail)
{
	struct httpc *c = r->client;

	if (r->easy != NULL) {
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE,
				  &r->res.status);
		if (c->multi != NULL)
			curl_multi_remove_handle(c->multi, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		c->active = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	c->nactive--;

	r->state = REQ_FINISHED;
	r->res.error = error;
	if (detail != NULL)
		snprintf(r->errbuf, sizeof(r->errbuf), "%s", detail);
	r->res.detail = r->errbuf;
	r->res.body = buf_str(&r->body);
	r->res.body_len = r->body.len;
	r->res.headers = buf_str(&r->hdrs);
	r->res.elapsed_us = (uv_hrtime() - r->start_ns) / 1000;

	r->prev = NULL;
	r->next = NULL;
	if (c->fin_tail != NULL)
		c->fin_tail->next = r;
	else
		c->fin_head = r;
	c->fin_tail = r;
}

static int map_curl_error(CURLcode cc)
{
	switch (cc) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return MDS_E_TIMEOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return MDS_E_UNAVAIL;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return MDS_E_INVAL;
	default:
		return MDS_E_IO;
	}
}

/* Finishes every transfer curl reports done, then delivers them. */
static void check_multi_info(struct httpc *c)
{
	int left;

	for (;;) {
		CURLMsg *msg = curl_multi_info_read(c->multi, &left);
		struct httpc_req *r = NULL;
		CURLcode cc;

		if (msg == NULL)
			break;
		if (msg->msg != CURLMSG_DONE)
			continue;
		/* msg dies with curl_multi_remove_handle(); copy first. */
		cc = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &r);
		if (r->stopped) {
			finish(r, MDS_E_IO, "stopped by the receiver");
		} else if (r->toobig || cc == CURLE_FILESIZE_EXCEEDED) {
			char detail[96];

			snprintf(detail, sizeof(detail),
				 "response body larger than %zu bytes",
				 r->max_body);
			finish(r, MDS_E_LIMIT, detail);
		} else if (cc == CURLE_OK) {
			finish(r, 0, "");
		} else {
			finish(r, map_curl_error(cc),
			       r->errbuf[0] != '\0' ? NULL
						    : curl_easy_strerror(cc));
		}
	}
	deliver(c);
}

static void on_timeout(uv_timer_t *t)
{
	struct httpc *c = t->data;
	int running;

	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_multi_info(c);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
	struct sock *s = h->data;
	struct httpc *c = s->client;
	int flags = 0, running;

	if (status < 0) {
		flags = CURL_CSELECT_ERR;
	} else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	/* This may close s (CURL_POLL_REMOVE); s is not used after it. */
	curl_multi_socket_action(c->multi, s->fd, flags, &running);
	check_multi_info(c);
}

/* The last close callback of a closing client delivers what is left and
 * frees it. */
static void handle_closed(struct httpc *c)
{
	c->open_handles--;
	if (c->closing && c->open_handles == 0) {
		deliver(c);
		free(c);
	}
}

static void base_close_cb(uv_handle_t *h)
{
	handle_closed(h->data);
}

static void sock_close_cb(uv_handle_t *h)
{
	struct sock *s = h->data;
	struct httpc *c = s->client;

	free(s);
	handle_closed(c);
}

static void sock_close(struct httpc *c, struct sock *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		c->socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, sock_close_cb);
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching a socket. */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
		     void *socketp)
{
	struct httpc *c = userp;
	struct sock *s = socketp;
	int events = 0, rc;

	(void)easy;
	/* While closing, the client closes every poll itself. */
	if (c->closing)
		return 0;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL)
			sock_close(c, s);
		return 0;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		rc = uv_poll_init_socket(c->loop, &s->poll, fd);
		if (rc != 0) {
			log_error("httpc", "watch socket %d: %s", (int)fd,
				  uv_strerror(rc));
			free(s);
			return -1;
		}
		s->poll.data = s;
		s->fd = fd;
		s->client = c;
		s->next = c->socks;
		if (c->socks != NULL)
			c->socks->prev = s;
		c->socks = s;
		c->open_handles++;
		curl_multi_assign(c->multi, fd, s);
	}
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	rc = uv_poll_start(&s->poll, events, poll_cb);
	if (rc != 0) {
		log_error("httpc", "poll socket %d: %s", (int)fd,
			  uv_strerror(rc));
		return -1;
	}
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: curl wants socket_action(TIMEOUT) in ms (-1:
 * never). A 0 ms uv timer fires on the next loop iteration, outside curl. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct httpc *c = userp;

	(void)multi;
	if (c->closing)
		return 0;
	if (timeout_ms < 0)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0);
	return 0;
}

int httpc_new(uv_loop_t *loop, struct httpc **out)
{
	struct httpc *c;

	if (loop == NULL || out == NULL)
		return MDS_E_INVAL;
	c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->multi = curl_multi_init();
	if (c->multi == NULL) {
		free(c);
		return MDS_E_INTERNAL;
	}
	if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb) !=
		    CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb) !=
		    CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK) {
		curl_multi_cleanup(c->multi);
		free(c);
		return MDS_E_INTERNAL;
	}
	/* Neither init can fail on unix; both only fill in the struct. */
	uv_timer_init(loop, &c->timer);
	uv_idle_init(loop, &c->idle);
	c->timer.data = c;
	c->idle.data = c;
	c->open_handles = 2;
	*out = c;
	return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct httpc_req *r = arg;
	size_t n = size * nmemb;

	if (r->on_data != NULL) {
		long status = 0;

		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
		if (r->on_data(r->data_arg, status, data, n) != 0) {
			r->stopped = 1;
			return 0;
		}
		return n;
	}
	if (buf_add(&r->body, data, n) != 0) {
		r->toobig = 1;
		return 0; /* anything but n makes curl stop: CURLE_WRITE_ERROR */
	}
	return n;
}

/* CURLOPT_HEADERFUNCTION: keeps the header lines of the last response
 * (a status line starts over, so "100 Continue" and redirects drop out). */
static size_t header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct httpc_req *r = arg;
	size_t n = size * nmemb;

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0)
		buf_reset(&r->hdrs);
	else
		(void)buf_add(&r->hdrs, data, n); /* past the cap: cut */
	return n;
}

int httpc_header(const struct httpc_result *res, const char *name, char *out,
		 size_t outsz)
{
	return headers_get(res->headers, name, out, outsz);
}

/* A method is an upper-case token; a header line has no line break. Both
 * go onto the wire as they are. */
static int valid_method(const char *m)
{
	size_t n = strlen(m);

	if (n == 0 || n > 16)
		return 0;
	return strspn(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == n;
}

/* Sets the TLS options of o->tls on e; blobs are copied by curl. */
static int set_tls(CURL *e, const struct httpc_tls *t)
{
	struct curl_blob ca = { (void *)t->ca_pem, t->ca_pem_len,
				CURL_BLOB_COPY };
	struct curl_blob cert = { (void *)t->cert_pem, t->cert_pem_len,
				  CURL_BLOB_COPY };
	struct curl_blob key = { (void *)t->key_pem, t->key_pem_len,
				 CURL_BLOB_COPY };
	int bad = 0;

	if (t->ca_pem != NULL)
		bad |= curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &ca);
	if (t->cert_file != NULL)
		bad |= curl_easy_setopt(e, CURLOPT_SSLCERT, t->cert_file);
	if (t->key_file != NULL)
		bad |= curl_easy_setopt(e, CURLOPT_SSLKEY, t->key_file);
	if (t->cert_pem != NULL)
		bad |= curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert);
	if (t->key_pem != NULL)
		bad |= curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key);
	if (t->insecure)
		bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L) |
		       curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	return bad != 0 ? MDS_E_INTERNAL : 0;
}

/* Sets method, headers and body on r->easy. */
static int set_request(struct httpc_req *r, const struct httpc_opts *o)
{
	const char *method = o->method != NULL ? o->method : "GET";
	int post = strcmp(method, "POST") == 0;
	int has_body = o->body != NULL || (post && o->body_len == 0);
	int expect = 0;
	CURL *e = r->easy;

	if ((o->body == NULL && o->body_len > 0) || !valid_method(method))
		return MDS_E_INVAL;
	for (const char *const *h = o->headers; h != NULL && *h != NULL; h++) {
		struct curl_slist *l;

		if (strpbrk(*h, "\r\n") != NULL)
			return MDS_E_INVAL;
		l = curl_slist_append(r->headers, *h);
		if (l == NULL)
			return MDS_E_INTERNAL;
		r->headers = l;
		expect |= strncasecmp(*h, "Expect:", 7) == 0;
	}
	/* curl sends "Expect: 100-continue" before large bodies and waits up
	 * to a second for servers that never answer it; do not. */
	if (!expect) {
		struct curl_slist *l = curl_slist_append(r->headers, "Expect:");

		if (l == NULL)
			return MDS_E_INTERNAL;
		r->headers = l;
	}
	if (curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK)
		return MDS_E_INTERNAL;
	if (has_body) {
		/* The size goes first: COPYPOSTFIELDS copies that many bytes. */
		if (curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
				     (curl_off_t)o->body_len) != CURLE_OK ||
		    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS,
				     o->body != NULL ? o->body : "") !=
			    CURLE_OK)
			return MDS_E_INTERNAL;
	}
	if (strcmp(method, "HEAD") == 0) {
		if (curl_easy_setopt(e, CURLOPT_NOBODY, 1L) != CURLE_OK)
			return MDS_E_INTERNAL;
	} else if (!post && !(strcmp(method, "GET") == 0 && !has_body)) {
		if (curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) !=
		    CURLE_OK)
			return MDS_E_INTERNAL;
	}
	return 0;
}

int httpc_request(struct httpc *c, const char *url,
		  const struct httpc_opts *opts, httpc_done_fn *done,
		  void *arg, struct httpc_req **out)
{
	static const struct httpc_opts defaults = { 0 };
	const struct httpc_opts *o = opts != NULL ? opts : &defaults;
	struct httpc_req *r = NULL;
	long timeout;
	int rc = 0;

	if (out != NULL)
		*out = NULL;
	if (c == NULL || url == NULL || done == NULL)
		return MDS_E_INVAL;
	if (c->closing)
		return MDS_E_UNAVAIL;
	if (c->nactive >= MAX_PENDING)
		return MDS_E_LIMIT;
	/* Clamped so it fits a 32-bit long. */
	timeout = DEFAULT_TIMEOUT_MS;
	if (o->timeout_ms != 0)
		timeout = o->timeout_ms > INT32_MAX ? INT32_MAX
						    : (long)o->timeout_ms;

	r = xcalloc(1, sizeof(*r));
	r->client = c;
	r->done = done;
	r->arg = arg;
	r->max_body = o->max_body != 0 ? o->max_body : DEFAULT_MAX_BODY;
	buf_init(&r->body, r->max_body);
	buf_init(&r->hdrs, MAX_HEADERS);
	r->easy = curl_easy_init();
	if (r->easy == NULL) {
		rc = MDS_E_INTERNAL;
		goto out;
	}
	if (curl_easy_setopt(r->easy, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https") !=
		    CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r) != CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf) !=
		    CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, timeout) !=
		    CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, write_cb) !=
		    CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r) != CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_MAXFILESIZE_LARGE,
			     (curl_off_t)r->max_body) != CURLE_OK) {
		rc = MDS_E_INTERNAL;
		goto out;
	}
	if ((o->want_headers &&
	     (curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, header_cb) !=
		      CURLE_OK ||
	      curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r) != CURLE_OK)) ||
	    (o->ca_file != NULL &&
	     curl_easy_setopt(r->easy, CURLOPT_CAINFO, o->ca_file) !=
		     CURLE_OK)) {
		rc = MDS_E_INTERNAL;
		goto out;
	}
	rc = set_request(r, o);
	if (rc == 0 && o->ca_file != NULL &&
	    curl_easy_setopt(r->easy, CURLOPT_CAINFO, o->ca_file) != CURLE_OK)
		rc = MDS_E_INTERNAL;
	if (rc == 0 && o->tls != NULL)
		rc = set_tls(r->easy, o->tls);
	if (rc != 0)
		goto out;
	r->on_data = o->on_data;
	r->data_arg = o->data_arg;
	r->start_ns = uv_hrtime();
	if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
		rc = MDS_E_INTERNAL;
		goto out;
	}
	r->state = REQ_ACTIVE;
	r->next = c->active;
	if (c->active != NULL)
		c->active->prev = r;
	c->active = r;
	c->nactive++;
	if (out != NULL)
		*out = r;
	r = NULL;
out:
	req_free(r);
	return rc;
}

void httpc_cancel(struct httpc *c, struct httpc_req *req)
{
	if (c == NULL || req == NULL || req->state != REQ_ACTIVE)
		return;
	finish(req, MDS_E_UNAVAIL, "request cancelled");
	/* Delivered from the loop, not from inside this call. */
	if (!c->closing)
		uv_idle_start(&c->idle, idle_cb);
}

void httpc_close(struct httpc *c)
{
	if (c == NULL || c->closing)
		return;
	c->closing = 1;
	while (c->active != NULL)
		finish(c->active, MDS_E_UNAVAIL, "client closed");
	/* Stop watching before curl closes its sockets; from here socket_cb
	 * and timer_cb ignore curl. */
	while (c->socks != NULL)
		sock_close(c, c->socks);
	curl_multi_cleanup(c->multi);
	c->multi = NULL;
	uv_close((uv_handle_t *)&c->timer, base_close_cb);
	uv_close((uv_handle_t *)&c->idle, base_close_cb);
}
