/* http_server.c - the REST API's HTTP/1.1 server; see http_server.h. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/hparse.h"
#include "http/http_server.h"
#include "http/tls.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/headers.h"
#include "util/log.h"
#include "util/xalloc.h"

#define HEAD_MAX (64 * 1024)
#define URL_MAX (8 * 1024)

/*
 * Slow clients. Bytes that trickle in do not keep a connection: the whole
 * head must arrive within HEAD_TIMEOUT_MS of its first byte (or of the
 * connection), a body at BODY_MIN_RATE bytes/s at least over each
 * BODY_WINDOW_MS, and a kept-alive connection may sit silent for
 * IDLE_TIMEOUT_MS. One client address holds MAX_CONNS_PER_ADDR TCP
 * connections at most; when all MAX_CONNS are taken, a new connection
 * closes the one that has waited longest without a complete request (from
 * its own address first, see oldest_waiting()), so that a request that
 * arrives whole is served. Connections over the
 * Unix socket (the local administrator's way in, see http_server_listen_
 * local()) have MAX_LOCAL_CONNS of their own, untouched by all of this.
 */
#define HEAD_TIMEOUT_MS 10000
#define BODY_MIN_RATE 1024
#define BODY_WINDOW_MS 5000
#define IDLE_TIMEOUT_MS 60000
#define MAX_CONNS 256
#define MAX_CONNS_PER_ADDR 64
#define MAX_LOCAL_CONNS 64
#define LINGER_MS 2000 /* reading after a refusal, at most */

/* What a connection is doing, for its deadline. */
enum phase {
	PH_IDLE,     /* kept alive, nothing of the next request yet */
	PH_HEAD,     /* receiving a head (or a new connection) */
	PH_BODY,     /* receiving a body */
	PH_HANDLING, /* a request is handled or its response written */
};

struct conn;

struct req {
	struct http_req pub; /* first: handlers get &req->pub */
	struct conn *conn;   /* NULL once the client went away */
	char *method, *path, *query, *auth, *body, *headers;
	char peer[64];
	bool keep_alive;
	bool streaming;             /* http_respond_start() was called */
	void (*on_close)(void *);   /* see http_req_on_close() */
	void *on_close_arg;
};

struct conn {
	union {
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;              /* the connection's stream */
	uv_timer_t timer; /* the phase's deadline, and the deferred resume */
	uv_shutdown_t shutdown;
	bool lingering;       /* refused: dropping input until it ends */
	enum phase phase;
	uint64_t since;       /* uv_now() when the phase began */
	size_t window_bytes;  /* body bytes in the current rate window */
	bool local;           /* came in over the Unix socket */
	char ip[64];          /* the client's address, "" if local */
	struct http_server *srv;
	struct hparse parser;
	struct buf url, field, value, body, pending;
	struct buf headers; /* the request's "Name: value\r\n" lines */
	char *auth;
	bool in_value;
	int refuse;                 /* a status to answer before the body */
	const char *refuse_code;
	char refuse_msg[128];
	bool reading;
	bool closing;
	size_t head_bytes;
	struct req *cur; /* the request being handled */
	int open_handles;
	struct conn *prev, *next;
	char peer[64];
	struct tls_conn *tls; /* NULL: plain (and always over the Unix socket) */
	struct buf plain;     /* decrypted input, handed to conn_feed() */
};

struct http_server {
	uv_loop_t *loop;
	uv_tcp_t tcp;
	http_handler_fn *handler;
	void *arg;
	size_t max_body;
	struct tls_ctx *tls; /* borrowed; NULL: plain HTTP */
	struct conn *conns;
	size_t nconns;    /* over TCP */
	size_t nlocal;    /* over the Unix socket */
	uv_pipe_t local;
	char *local_path; /* the Unix socket, NULL if none */
	int port;
	bool closing;
	int open_handles;
	void (*done)(void *);
	void *done_arg;
};

struct write_req {
	uv_write_t w;
	struct conn *conn;
	char *data;
	bool close_after;
	bool linger;       /* then read and drop for a while before closing */
};

#define STREAM(c) ((uv_stream_t *)&(c)->h)

static void conn_close(struct conn *c);
static void conn_feed(struct conn *c, const char *data, size_t len);

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 507: return "Insufficient Storage";
	default: return "Unknown";
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes [s, s+n) into a new string; '+' becomes ' ' if plus. */
static char *decode(const char *s, size_t n, bool plus)
{
	char *out = xmalloc(n + 1);
	size_t j = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			out[j++] = (char)(hexval(s[i + 1]) * 16 +
					  hexval(s[i + 2]));
			i += 2;
		} else if (plus && s[i] == '+') {
			out[j++] = ' ';
		} else {
			out[j++] = s[i];
		}
	}
	out[j] = '\0';
	return out;
}

int http_query_get(const char *query, const char *key, char *out,
		   size_t outsz)
{
	size_t klen = strlen(key);
	const char *p = query;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len > klen && strncmp(p, key, klen) == 0 &&
		    p[klen] == '=') {
			char *v = decode(p + klen + 1, len - klen - 1, true);
			size_t vlen = strlen(v);
			int rc = 0;

			if (vlen + 1 > outsz)
				rc = MDS_E_LIMIT;
			else
				memcpy(out, v, vlen + 1);
			free(v);
			return rc;
		}
		p = end ? end + 1 : NULL;
	}
	return MDS_E_NOTFOUND;
}

static void maybe_done(struct http_server *srv)
{
	if (srv->closing && srv->open_handles == 0) {
		void (*done)(void *) = srv->done;
		void *arg = srv->done_arg;

		free(srv);
		if (done != NULL)
			done(arg);
	}
}

static void req_free(struct req *r)
{
	if (r == NULL)
		return;
	free(r->method);
	free(r->path);
	free(r->query);
	free(r->auth);
	free(r->body);
	free(r->headers);
	free(r);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct http_server *srv = c->srv;

	/* The timer and the socket both close; the last one frees. */
	if (--c->open_handles > 0)
		return;
	buf_free(&c->url);
	buf_free(&c->field);
	buf_free(&c->value);
	buf_free(&c->body);
	buf_free(&c->pending);
	buf_free(&c->headers);
	buf_free(&c->plain);
	tls_conn_free(c->tls);
	free(c->auth);
	free(c);
	srv->open_handles--;
	maybe_done(srv);
}

static void conn_close(struct conn *c)
{
	struct http_server *srv = c->srv;
	struct req *r = c->cur;
	void (*on_close)(void *) = NULL;

	if (c->closing)
		return;
	c->closing = true;
	if (r != NULL) {
		r->conn = NULL; /* the handler may still answer */
		on_close = r->on_close;
		r->on_close = NULL;
		c->cur = NULL;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->local)
		srv->nlocal--;
	else
		srv->nconns--;
	c->open_handles = 2;
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->h, on_handle_closed);
	/* Last: it may release r. */
	if (on_close != NULL)
		on_close(r->on_close_arg);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	(void)h;
	(void)suggested;
	b->base = xmalloc(16 * 1024);
	b->len = 16 * 1024;
}

static void tls_input(struct conn *c, const char *data, size_t n);

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = s->data;

	/* While a response streams, input is dropped (the connection closes
	 * after it); reading goes on only to see the client leave. So it is
	 * while lingering. */
	if (c->lingering) {
		if (n < 0)
			conn_close(c);
	} else if (n > 0 && c->tls != NULL) {
		tls_input(c, b->base, (size_t)n);
	} else if (n > 0 && (c->cur == NULL || !c->cur->streaming)) {
		conn_feed(c, b->base, (size_t)n);
	}
	else if (n < 0)
		conn_close(c);
	free(b->base);
}

static void set_reading(struct conn *c, bool on)
{
	if (c->closing || c->reading == on)
		return;
	c->reading = on;
	if (on)
		uv_read_start(STREAM(c), on_alloc, on_read);
	else
		uv_read_stop(STREAM(c));
}

static void on_linger_end(uv_timer_t *t)
{
	conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)req;
	(void)status;
}

/*
 * After refusing a request the client may still be sending (a body over
 * the cap, say), closing at once would reset the connection and could
 * destroy the answer before the client reads it. So the server sends its
 * FIN, then reads and drops for LINGER_MS at most, and closes when the
 * client does.
 */
static void linger(struct conn *c)
{
	c->lingering = true;
	c->phase = PH_HANDLING;
	set_reading(c, true);
	if (uv_shutdown(&c->shutdown, STREAM(c), on_shutdown) != 0) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_linger_end, LINGER_MS, 0);
}

static void on_written(uv_write_t *w, int status)
{
	struct write_req *wr = (struct write_req *)w;

	if (status == 0 && wr->linger && !wr->conn->closing)
		linger(wr->conn);
	else if (status < 0 || wr->close_after)
		conn_close(wr->conn);
	free(wr->data);
	free(wr);
}

/*
 * Writes data (taken) to the connection as it is; the connection closes
 * once it is written if close_after, after lingering if linger. Returns 0,
 * or a negative code if the write could not start (data is freed; the
 * caller closes the connection).
 */
static int conn_send_raw(struct conn *c, char *data, size_t len,
			 bool close_after, bool linger_after)
{
	struct write_req *wr = xcalloc(1, sizeof(*wr));
	uv_buf_t b = uv_buf_init(data, (unsigned)len);

	wr->conn = c;
	wr->data = data;
	wr->close_after = close_after;
	wr->linger = linger_after;
	if (uv_write(&wr->w, STREAM(c), &b, 1, on_written) < 0) {
		free(data);
		free(wr);
		return MDS_E_SYS;
	}
	return 0;
}

/* conn_send_raw(), encrypted first under TLS. */
static int conn_send(struct conn *c, char *data, size_t len,
		     bool close_after, bool linger_after)
{
	if (c->tls != NULL) {
		int rc = tls_conn_write(c->tls, data, len);

		free(data);
		if (rc != 0)
			return rc;
		len = tls_conn_take_out(c->tls, &data);
		if (len == 0)
			return close_after ? MDS_E_IO : 0;
	}
	return conn_send_raw(c, data, len, close_after, linger_after);
}

/* TLS: decrypts what came in, writes back what the handshake needs, and
 * hands the plaintext to the HTTP parser. */
static void tls_input(struct conn *c, const char *data, size_t n)
{
	char *out, *plain;
	size_t len, pl;
	int rc = tls_conn_feed(c->tls, data, n, &c->plain);

	len = tls_conn_take_out(c->tls, &out);
	if (len > 0 && conn_send_raw(c, out, len, false, false) != 0) {
		conn_close(c);
		return;
	}
	if (rc != 0) {
		if (rc == MDS_E_IO)
			log_debug("http", "%s: TLS handshake or record failed",
				  c->peer);
		conn_close(c);
		return;
	}
	if (c->plain.len == 0)
		return;
	pl = c->plain.len;
	plain = buf_steal(&c->plain);
	if (c->cur == NULL || !c->cur->streaming)
		conn_feed(c, plain, pl);
	free(plain);
}

static void on_deadline(uv_timer_t *t);

/* Enters a phase and arms its deadline (none while handling). */
static void enter(struct conn *c, enum phase ph)
{
	static const uint64_t tmo[] = {
		[PH_IDLE] = IDLE_TIMEOUT_MS,
		[PH_HEAD] = HEAD_TIMEOUT_MS,
		[PH_BODY] = BODY_WINDOW_MS,
	};

	c->phase = ph;
	c->since = uv_now(c->srv->loop);
	c->window_bytes = 0;
	if (ph == PH_HANDLING)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, on_deadline, tmo[ph], 0);
}

/* Writes a complete response built by the server itself and closes. */
static void send_error(struct conn *c, int status, const char *code,
		       const char *msg)
{
	char *body = xasprintf("{\"code\":\"%s\",\"message\":\"%s\"}", code,
			       msg);
	char *full = xasprintf("HTTP/1.1 %d %s\r\nContent-Type: "
			       "application/json\r\nContent-Length: "
			       "%zu\r\nConnection: close\r\n\r\n%s",
			       status, http_reason(status), strlen(body), body);

	free(body);
	set_reading(c, false);
	if (conn_send(c, full, strlen(full), true, true) != 0)
		conn_close(c);
}

static void on_deadline(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->closing || c->cur != NULL)
		return;
	switch (c->phase) {
	case PH_IDLE:
		conn_close(c);
		break;
	case PH_HEAD:
		send_error(c, 408, "RequestTimeout",
			   "the request head did not arrive within 10 s");
		break;
	case PH_BODY:
		if (c->window_bytes >=
		    (size_t)BODY_MIN_RATE * BODY_WINDOW_MS / 1000) {
			c->window_bytes = 0;
			uv_timer_start(t, on_deadline, BODY_WINDOW_MS, 0);
			break;
		}
		send_error(c, 408, "RequestTimeout",
			   "the request body arrived slower than 1 KiB/s");
		break;
	case PH_HANDLING:
		break;
	}
}

static int on_message_begin(struct hparse *p)
{
	struct conn *c = p->data;

	buf_reset(&c->url);
	buf_reset(&c->field);
	buf_reset(&c->value);
	buf_reset(&c->body);
	buf_reset(&c->headers);
	free(c->auth);
	c->auth = NULL;
	c->in_value = false;
	c->refuse = 0;
	c->head_bytes = 0;
	return 0;
}

static int count_head(struct conn *c, size_t n)
{
	c->head_bytes += n;
	return c->head_bytes > HEAD_MAX ? -1 : 0;
}

static int on_url(struct hparse *p, const char *at, size_t n)
{
	struct conn *c = p->data;

	if (count_head(c, n) != 0 || buf_add(&c->url, at, n) != 0)
		return -1;
	return 0;
}

static void end_header(struct conn *c)
{
	if (c->in_value && strcasecmp(buf_str(&c->field), "authorization") == 0) {
		free(c->auth);
		c->auth = xstrdup(buf_str(&c->value));
	}
	/* Within HEAD_MAX like the head itself, so this cannot fail. */
	if (c->in_value)
		(void)buf_printf(&c->headers, "%s: %s\r\n", buf_str(&c->field),
				 buf_str(&c->value));
	buf_reset(&c->field);
	buf_reset(&c->value);
	c->in_value = false;
}

static int on_header_field(struct hparse *p, const char *at, size_t n)
{
	struct conn *c = p->data;

	if (c->in_value)
		end_header(c);
	if (count_head(c, n) != 0 || buf_add(&c->field, at, n) != 0)
		return -1;
	return 0;
}

static int on_header_value(struct hparse *p, const char *at, size_t n)
{
	struct conn *c = p->data;

	c->in_value = true;
	if (count_head(c, n) != 0 || buf_add(&c->value, at, n) != 0)
		return -1;
	return 0;
}

/* Stops the parser with a refusal that conn_feed() answers. */
static int refuse(struct conn *c, int status, const char *code,
		  const char *msg)
{
	c->refuse = status;
	c->refuse_code = code;
	snprintf(c->refuse_msg, sizeof(c->refuse_msg), "%s", msg);
	return -1;
}

/* A declared body over the cap is refused here, before it is read. */
static int on_headers_complete(struct hparse *p)
{
	struct conn *c = p->data;
	char msg[96];

	end_header(c);
	if (hparse_has_length(p) && hparse_length(p) > c->srv->max_body) {
		snprintf(msg, sizeof(msg), "the request body is over %zu bytes",
			 c->srv->max_body);
		return refuse(c, 413, "PayloadTooLarge", msg);
	}
	enter(c, PH_BODY);
	return 0;
}

/* JSON cannot hold a raw NUL: a body with one is refused, not cut. A
 * chunked body is refused as soon as it passes the cap. */
static int on_body(struct hparse *p, const char *at, size_t n)
{
	struct conn *c = p->data;
	char msg[96];

	if (memchr(at, '\0', n) != NULL)
		return refuse(c, 400, "InvalidJson",
			      "the request body holds a NUL byte");
	c->window_bytes += n;
	if (buf_add(&c->body, at, n) != 0) {
		snprintf(msg, sizeof(msg), "the request body is over %zu bytes",
			 c->srv->max_body);
		return refuse(c, 413, "PayloadTooLarge", msg);
	}
	return 0;
}

static int on_message_complete(struct hparse *p)
{
	struct conn *c = p->data;
	struct req *r = xcalloc(1, sizeof(*r));
	struct hparse_url u;
	const char *url = buf_str(&c->url);

	r->conn = c;
	r->method = xstrdup(hparse_method(p));
	if (hparse_url(url, c->url.len, &u) == 0 && u.path.set) {
		r->path = decode(url + u.path.off, u.path.len, false);
		if (u.query.set)
			r->query = xstrndup(url + u.query.off, u.query.len);
	} else {
		r->path = xstrdup(url);
	}
	if (r->query == NULL)
		r->query = xstrdup("");
	r->auth = c->auth;
	c->auth = NULL;
	r->pub.body_len = c->body.len;
	r->body = buf_steal(&c->body);
	r->headers = buf_steal(&c->headers);
	r->keep_alive = hparse_keep_alive(p);
	memcpy(r->peer, c->peer, sizeof(r->peer));
	r->pub.method = r->method;
	r->pub.path = r->path;
	r->pub.query = r->query;
	r->pub.authorization = r->auth;
	r->pub.body = r->body;
	r->pub.headers = r->headers;
	r->pub.peer = r->peer;
	c->cur = r;
	enter(c, PH_HANDLING);
	hparse_pause(p, true);
	return 0;
}

static const struct hparse_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* Parses input; dispatches at most one complete request, keeping the rest
 * of the input until that request is answered. */
static void conn_feed(struct conn *c, const char *data, size_t len)
{
	struct http_server *srv = c->srv;
	size_t used;
	enum hparse_error err;

	if (c->cur != NULL) {
		if (buf_add(&c->pending, data, len) != 0) {
			conn_close(c);
			return;
		}
		/* A handler that wants to know if the client leaves keeps
		 * the reading on (input waits in pending, up to its cap). */
		if (c->cur->on_close == NULL)
			set_reading(c, false);
		return;
	}
	if (c->phase == PH_IDLE)
		enter(c, PH_HEAD);
	used = hparse_execute(&c->parser, data, len);
	err = hparse_error(&c->parser);
	if (err == HPARSE_PAUSED) {
		hparse_pause(&c->parser, false);
		if (used < len &&
		    buf_add(&c->pending, data + used, len - used) != 0) {
			conn_close(c);
			return;
		}
		set_reading(c, false);
		srv->handler(srv->arg, &c->cur->pub);
		return;
	}
	if (err != HPARSE_OK) {
		if (c->refuse != 0)
			send_error(c, c->refuse, c->refuse_code,
				   c->refuse_msg);
		else if (err == HPARSE_E_TOO_LARGE)
			send_error(c, 431, "RequestHeaderTooLarge",
				   hparse_error_text(&c->parser));
		else if (c->head_bytes > HEAD_MAX)
			send_error(c, 431, "RequestHeaderTooLarge",
				   "request head over 64 KiB");
		else if (c->url.len >= URL_MAX)
			send_error(c, 414, "UriTooLong", "URL over 8 KiB");
		else
			send_error(c, 400, "BadRequest",
				   hparse_error_text(&c->parser));
		return;
	}
	if (used < len)
		conn_close(c);
}

static void on_resume(uv_timer_t *t)
{
	struct conn *c = t->data;
	char *data;
	size_t len;

	if (c->closing || c->cur != NULL)
		return;
	len = c->pending.len;
	enter(c, PH_IDLE);
	if (len == 0) {
		set_reading(c, true);
		return;
	}
	data = buf_steal(&c->pending);
	conn_feed(c, data, len);
	free(data);
	if (!c->closing && c->cur == NULL)
		set_reading(c, true);
}

/* Sends the head with the body, copied after it, or then the body owned
 * (taken) when not NULL, uncopied; releases r. */
static void respond(struct req *r, int status, const char *content_type,
		    const char *copied, char *owned, size_t len,
		    const char *headers)
{
	struct conn *c = r->conn;
	bool close_after;
	struct buf out;
	size_t outlen;

	if (c == NULL) {
		req_free(r);
		free(owned);
		return;
	}
	c->cur = NULL;
	buf_init(&out, (size_t)1 << 30);
	buf_printf(&out,
		   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
		   "Content-Length: %zu\r\nCache-Control: no-store\r\n%s%s\r\n",
		   status, http_reason(status),
		   content_type ? content_type : "application/json", len,
		   r->keep_alive ? "" : "Connection: close\r\n",
		   headers ? headers : "");
	if (owned == NULL)
		buf_add(&out, copied, len);
	close_after = !r->keep_alive;
	outlen = out.len;
	req_free(r);
	if (conn_send(c, buf_steal(&out), outlen,
		      close_after && owned == NULL, false) != 0) {
		free(owned);
		conn_close(c);
		return;
	}
	if (owned != NULL && conn_send(c, owned, len, close_after, false)) {
		conn_close(c);
		return;
	}
	if (close_after)
		return;
	uv_timer_start(&c->timer, on_resume, 0, 0);
}

void http_respond(struct http_req *pub, int status, const char *content_type,
		  const char *body, size_t len, const char *headers)
{
	respond((struct req *)pub, status, content_type, body, NULL, len,
		headers);
}

void http_respond_take(struct http_req *pub, int status,
		       const char *content_type, char *body, size_t len,
		       const char *headers)
{
	respond((struct req *)pub, status, content_type, NULL,
		len ? body : NULL, len, headers);
	if (len == 0)
		free(body);
}

/* Closes a connection whose write failed inside http_respond_chunk(),
 * from the loop rather than from the caller's stack. */
static void on_broken(uv_timer_t *t)
{
	conn_close(t->data);
}

/* Queues data (taken) on the connection. Returns 0, or MDS_E_UNAVAIL if
 * the write failed (the connection then closes from the loop). */
static int stream_write(struct conn *c, char *data, size_t len,
			bool close_after)
{
	if (conn_send(c, data, len, close_after, false) != 0) {
		uv_timer_start(&c->timer, on_broken, 0, 0);
		return MDS_E_UNAVAIL;
	}
	return 0;
}

int http_respond_start(struct http_req *pub, int status,
		       const char *content_type, const char *headers)
{
	struct req *r = (struct req *)pub;
	struct conn *c = r->conn;
	char *head;

	if (c == NULL)
		return MDS_E_UNAVAIL;
	if (r->streaming)
		return MDS_E_INVAL;
	r->streaming = true;
	head = xasprintf("HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
			 "Transfer-Encoding: chunked\r\n"
			 "Cache-Control: no-store\r\nConnection: close\r\n"
			 "%s\r\n",
			 status, http_reason(status),
			 content_type ? content_type : "application/json",
			 headers ? headers : "");
	uv_timer_stop(&c->timer);
	/* Read on, only to see the client go away. */
	set_reading(c, true);
	return stream_write(c, head, strlen(head), false);
}

int http_respond_chunk(struct http_req *pub, const char *data, size_t len)
{
	struct req *r = (struct req *)pub;
	struct conn *c = r->conn;
	struct buf out;

	if (c == NULL || c->closing)
		return MDS_E_UNAVAIL;
	if (!r->streaming)
		return MDS_E_INVAL;
	if (len == 0)
		return 0;
	if (uv_stream_get_write_queue_size(STREAM(c)) >
	    HTTP_STREAM_QUEUE_MAX)
		return MDS_E_LIMIT;
	buf_init(&out, len + 32);
	buf_printf(&out, "%zx\r\n", len);
	buf_add(&out, data, len);
	buf_add(&out, "\r\n", 2);
	len = out.len;
	return stream_write(c, buf_steal(&out), len, false);
}

void http_respond_end(struct http_req *pub)
{
	struct req *r = (struct req *)pub;
	struct conn *c = r->conn;

	if (c != NULL) {
		r->on_close = NULL;
		c->cur = NULL;
		r->conn = NULL;
		if (r->streaming && !c->closing)
			stream_write(c, xstrdup("0\r\n\r\n"), 5, true);
		else
			conn_close(c);
	}
	req_free(r);
}

void http_req_on_close(struct http_req *pub, void (*fn)(void *arg),
		       void *arg)
{
	struct req *r = (struct req *)pub;

	r->on_close = fn;
	r->on_close_arg = arg;
	/* Reading goes on while the request is handled, to see the client
	 * leave (conn_feed() keeps what it sends meanwhile). */
	if (fn != NULL && r->conn != NULL)
		set_reading(r->conn, true);
}

static void on_listener_closed(uv_handle_t *h);

/* The connection a newcomer takes the place of: the one that has waited
 * longest without a complete request from the newcomer's own address if
 * it has one waiting, else from any address; NULL if every one is being
 * handled. So clients that open many connections crowd out their own
 * first, and a client with one connection is not pushed out by them while
 * its request is on the way. */
static struct conn *oldest_waiting(struct http_server *srv,
				   const struct conn *newc)
{
	struct conn *any = NULL, *own = NULL;

	for (struct conn *c = srv->conns; c != NULL; c = c->next) {
		if (c == newc || c->local || c->closing ||
		    c->cur != NULL || c->phase == PH_HANDLING)
			continue;
		/* Newest first in the list: on a tie, the older wins. */
		if (any == NULL || c->since <= any->since)
			any = c;
		if (strcmp(c->ip, newc->ip) == 0 &&
		    (own == NULL || c->since <= own->since))
			own = c;
	}
	return own != NULL ? own : any;
}

static size_t conns_from(const struct http_server *srv, const struct conn *c)
{
	size_t n = 0;

	for (const struct conn *o = srv->conns; o != NULL; o = o->next)
		if (o != c && !o->local && !o->closing &&
		    strcmp(o->ip, c->ip) == 0)
			n++;
	return n;
}

/* Fills c->ip and c->peer from the socket. */
static void read_peer(struct conn *c)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);

	if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss,
			       &sslen) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		uv_ip4_name(in, c->ip, sizeof(c->ip));
		snprintf(c->peer, sizeof(c->peer), "%.46s:%d", c->ip,
			 ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		uv_ip6_name(in6, c->ip, sizeof(c->ip));
		snprintf(c->peer, sizeof(c->peer), "[%.46s]:%d", c->ip,
			 ntohs(in6->sin6_port));
	}
}

/* Applies the caps to a new TCP connection: false if it must close. */
static bool admit(struct http_server *srv, struct conn *c)
{
	struct conn *victim;

	if (conns_from(srv, c) >= MAX_CONNS_PER_ADDR)
		return false;
	if (srv->nconns <= MAX_CONNS)
		return true;
	victim = oldest_waiting(srv, c);
	if (victim == NULL)
		return false;
	conn_close(victim);
	return true;
}

static void accept_conn(struct http_server *srv, uv_stream_t *server,
			bool local)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	bool ok;

	c->srv = srv;
	c->local = local;
	if (local)
		uv_pipe_init(srv->loop, &c->h.pipe, 0);
	else
		uv_tcp_init(srv->loop, &c->h.tcp);
	uv_timer_init(srv->loop, &c->timer);
	c->h.tcp.data = c;
	c->timer.data = c;
	srv->open_handles++;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	if (local)
		srv->nlocal++;
	else
		srv->nconns++;
	ok = uv_accept(server, STREAM(c)) == 0;
	if (ok && local) {
		snprintf(c->peer, sizeof(c->peer), "local");
		ok = srv->nlocal <= MAX_LOCAL_CONNS;
	} else if (ok) {
		uv_tcp_nodelay(&c->h.tcp, 1);
		read_peer(c);
		ok = admit(srv, c);
	}
	if (!ok) {
		conn_close(c);
		return;
	}
	buf_init(&c->url, URL_MAX);
	buf_init(&c->field, HEAD_MAX);
	buf_init(&c->value, HEAD_MAX);
	buf_init(&c->body, srv->max_body);
	buf_init(&c->pending, srv->max_body + HEAD_MAX);
	buf_init(&c->headers, 2 * HEAD_MAX);
	buf_init(&c->plain, srv->max_body + HEAD_MAX);
	if (srv->tls != NULL && !c->local)
		c->tls = tls_conn_new(srv->tls);
	hparse_init(&c->parser, HPARSE_REQUEST, &parser_settings, c);
	set_reading(c, true);
	enter(c, PH_HEAD);
}

static void on_connection(uv_stream_t *server, int status)
{
	if (status >= 0)
		accept_conn(server->data, server, false);
}

static void on_local_connection(uv_stream_t *server, int status)
{
	if (status >= 0)
		accept_conn(server->data, server, true);
}

int http_server_start(uv_loop_t *loop, const char *host, int port,
		      size_t max_body, http_handler_fn *handler, void *arg,
		      struct http_server **out, char *diag, size_t diagsz)
{
	struct http_server *srv = xcalloc(1, sizeof(*srv));
	struct sockaddr_storage ss;
	int sslen = sizeof(ss), rc;

	srv->loop = loop;
	srv->handler = handler;
	srv->arg = arg;
	srv->max_body = max_body;
	if (strchr(host, ':') != NULL)
		rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
	else
		rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
	if (rc != 0) {
		mds_diag(diag, diagsz, "bad listen address '%s'", host);
		free(srv);
		return MDS_E_INVAL;
	}
	uv_tcp_init(loop, &srv->tcp);
	srv->tcp.data = srv;
	srv->open_handles = 1;
	rc = uv_tcp_bind(&srv->tcp, (struct sockaddr *)&ss, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&srv->tcp, 511, on_connection);
	if (rc != 0) {
		mds_diag(diag, diagsz, "cannot listen on %s:%d: %s", host, port,
			 uv_strerror(rc));
		/* Freed by the close callback when the loop next runs. */
		srv->closing = true;
		uv_close((uv_handle_t *)&srv->tcp, on_listener_closed);
		*out = NULL;
		return MDS_E_SYS;
	}
	uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&ss, &sslen);
	srv->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	*out = srv;
	return 0;
}

void http_server_set_tls(struct http_server *srv, struct tls_ctx *tls)
{
	srv->tls = tls;
}

int http_server_port(const struct http_server *srv)
{
	return srv->port;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct http_server *srv = h->data;

	srv->open_handles--;
	maybe_done(srv);
}

int http_server_listen_local(struct http_server *srv, const char *path,
			     char *diag, size_t diagsz)
{
	int rc;

	if (srv->local_path != NULL)
		return MDS_E_INVAL;
	/* A socket left by a daemon that died: the data directory's lock
	 * says no other daemon uses it. */
	if (unlink(path) != 0 && errno != ENOENT) {
		mds_diag(diag, diagsz, "cannot remove %s: %s", path,
			 strerror(errno));
		return MDS_E_IO;
	}
	uv_pipe_init(srv->loop, &srv->local, 0);
	srv->local.data = srv;
	srv->open_handles++;
	rc = uv_pipe_bind(&srv->local, path);
	if (rc == 0)
		rc = chmod(path, 0600) == 0 ? 0 : uv_translate_sys_error(errno);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&srv->local, 64,
			       on_local_connection);
	if (rc != 0) {
		mds_diag(diag, diagsz, "cannot listen on %s: %s", path,
			 uv_strerror(rc));
		uv_close((uv_handle_t *)&srv->local, on_listener_closed);
		unlink(path);
		return MDS_E_SYS;
	}
	srv->local_path = xstrdup(path);
	return 0;
}

void http_server_close(struct http_server *srv, void (*done)(void *arg),
		       void *arg)
{
	srv->closing = true;
	srv->done = done;
	srv->done_arg = arg;
	while (srv->conns != NULL)
		conn_close(srv->conns);
	if (srv->local_path != NULL) {
		unlink(srv->local_path);
		free(srv->local_path);
		srv->local_path = NULL;
		uv_close((uv_handle_t *)&srv->local, on_listener_closed);
	}
	uv_close((uv_handle_t *)&srv->tcp, on_listener_closed);
}

int http_req_header(const struct http_req *req, const char *name, char *out,
		    size_t outsz)
{
	return headers_get(req->headers, name, out, outsz);
}
