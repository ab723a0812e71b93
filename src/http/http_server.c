/* http_server.c - the REST API's HTTP/1.1 server; see http_server.h. */
#include <http_parser.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http_server.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/headers.h"
#include "util/log.h"
#include "util/xalloc.h"

#define HEAD_MAX (64 * 1024)
#define URL_MAX (8 * 1024)
#define IDLE_TIMEOUT_MS 60000
#define MAX_CONNS 1024

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
	uv_tcp_t tcp;
	uv_timer_t timer; /* idle timeout, and the deferred resume */
	struct http_server *srv;
	http_parser parser;
	struct buf url, field, value, body, pending;
	struct buf headers; /* the request's "Name: value\r\n" lines */
	char *auth;
	bool in_value;
	bool too_large;
	bool reading;
	bool closing;
	size_t head_bytes;
	struct req *cur; /* the request being handled */
	int open_handles;
	struct conn *prev, *next;
	char peer[64];
};

struct http_server {
	uv_loop_t *loop;
	uv_tcp_t tcp;
	http_parser_settings settings;
	http_handler_fn *handler;
	void *arg;
	size_t max_body;
	struct conn *conns;
	size_t nconns;
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
};

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
	srv->nconns--;
	c->open_handles = 2;
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
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

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = s->data;

	/* While a response streams, input is dropped (the connection closes
	 * after it); reading goes on only to see the client leave. */
	if (n > 0 && (c->cur == NULL || !c->cur->streaming))
		conn_feed(c, b->base, (size_t)n);
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
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	else
		uv_read_stop((uv_stream_t *)&c->tcp);
}

static void on_idle(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->cur == NULL)
		conn_close(c);
}

static void on_written(uv_write_t *w, int status)
{
	struct write_req *wr = (struct write_req *)w;

	if (status < 0 || wr->close_after)
		conn_close(wr->conn);
	free(wr->data);
	free(wr);
}

/* Writes a complete response built by the server itself and closes. */
static void send_error(struct conn *c, int status, const char *code,
		       const char *msg)
{
	struct write_req *wr = xcalloc(1, sizeof(*wr));
	uv_buf_t b;
	int n;

	wr->conn = c;
	wr->close_after = true;
	wr->data = xasprintf("{\"code\":\"%s\",\"message\":\"%s\"}", code, msg);
	n = (int)strlen(wr->data);
	{
		char *full = xasprintf("HTTP/1.1 %d %s\r\nContent-Type: "
				       "application/json\r\nContent-Length: "
				       "%d\r\nConnection: close\r\n\r\n%s",
				       status, http_reason(status), n,
				       wr->data);
		free(wr->data);
		wr->data = full;
	}
	b = uv_buf_init(wr->data, (unsigned)strlen(wr->data));
	set_reading(c, false);
	if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
		free(wr->data);
		free(wr);
		conn_close(c);
	}
}

static int on_message_begin(http_parser *p)
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
	c->too_large = false;
	c->head_bytes = 0;
	return 0;
}

static int count_head(struct conn *c, size_t n)
{
	c->head_bytes += n;
	return c->head_bytes > HEAD_MAX ? -1 : 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
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

static int on_header_field(http_parser *p, const char *at, size_t n)
{
	struct conn *c = p->data;

	if (c->in_value)
		end_header(c);
	if (count_head(c, n) != 0 || buf_add(&c->field, at, n) != 0)
		return -1;
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
	struct conn *c = p->data;

	c->in_value = true;
	if (count_head(c, n) != 0 || buf_add(&c->value, at, n) != 0)
		return -1;
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	end_header(p->data);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct conn *c = p->data;

	if (!c->too_large && buf_add(&c->body, at, n) != 0) {
		c->too_large = true;
		buf_reset(&c->body);
	}
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct conn *c = p->data;
	struct req *r = xcalloc(1, sizeof(*r));
	struct http_parser_url u;
	const char *url = buf_str(&c->url);

	r->conn = c;
	r->method = xstrdup(http_method_str((enum http_method)p->method));
	http_parser_url_init(&u);
	if (http_parser_parse_url(url, c->url.len, 0, &u) == 0 &&
	    (u.field_set & (1 << UF_PATH))) {
		r->path = decode(url + u.field_data[UF_PATH].off,
				 u.field_data[UF_PATH].len, false);
		if (u.field_set & (1 << UF_QUERY))
			r->query = xstrndup(url + u.field_data[UF_QUERY].off,
					    u.field_data[UF_QUERY].len);
	} else {
		r->path = xstrdup(url);
	}
	if (r->query == NULL)
		r->query = xstrdup("");
	r->auth = c->auth;
	c->auth = NULL;
	r->body = buf_steal(&c->body);
	r->headers = buf_steal(&c->headers);
	r->keep_alive = http_should_keep_alive(p) != 0;
	memcpy(r->peer, c->peer, sizeof(r->peer));
	r->pub.method = r->method;
	r->pub.path = r->path;
	r->pub.query = r->query;
	r->pub.authorization = r->auth;
	r->pub.body = r->body;
	r->pub.headers = r->headers;
	r->pub.body_len = c->too_large ? 0 : strlen(r->body);
	r->pub.body_too_large = c->too_large;
	r->pub.peer = r->peer;
	c->cur = r;
	http_parser_pause(p, 1);
	return 0;
}

/* Parses input; dispatches at most one complete request, keeping the rest
 * of the input until that request is answered. */
static void conn_feed(struct conn *c, const char *data, size_t len)
{
	struct http_server *srv = c->srv;
	size_t used;
	enum http_errno err;

	if (c->cur != NULL) {
		if (buf_add(&c->pending, data, len) != 0)
			conn_close(c);
		set_reading(c, false);
		return;
	}
	uv_timer_start(&c->timer, on_idle, IDLE_TIMEOUT_MS, 0);
	used = http_parser_execute(&c->parser, &srv->settings, data, len);
	err = HTTP_PARSER_ERRNO(&c->parser);
	if (err == HPE_PAUSED) {
		http_parser_pause(&c->parser, 0);
		if (used < len &&
		    buf_add(&c->pending, data + used, len - used) != 0) {
			conn_close(c);
			return;
		}
		set_reading(c, false);
		srv->handler(srv->arg, &c->cur->pub);
		return;
	}
	if (err != HPE_OK) {
		if (c->head_bytes > HEAD_MAX)
			send_error(c, 431, "RequestHeaderTooLarge",
				   "request head over 64 KiB");
		else if (c->url.len >= URL_MAX)
			send_error(c, 414, "UriTooLong", "URL over 8 KiB");
		else
			send_error(c, 400, "BadRequest",
				   "malformed HTTP request");
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
	if (len == 0) {
		set_reading(c, true);
		uv_timer_start(&c->timer, on_idle, IDLE_TIMEOUT_MS, 0);
		return;
	}
	data = buf_steal(&c->pending);
	conn_feed(c, data, len);
	free(data);
	if (!c->closing && c->cur == NULL)
		set_reading(c, true);
}

void http_respond(struct http_req *pub, int status, const char *content_type,
		  const char *body, size_t len, const char *headers)
{
	struct req *r = (struct req *)pub;
	struct conn *c = r->conn;
	struct write_req *wr;
	struct buf out;
	uv_buf_t b;

	if (c == NULL) {
		req_free(r);
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
	buf_add(&out, body, len);
	wr = xcalloc(1, sizeof(*wr));
	wr->conn = c;
	wr->close_after = !r->keep_alive;
	b = uv_buf_init(NULL, (unsigned)out.len);
	wr->data = buf_steal(&out);
	b.base = wr->data;
	req_free(r);
	if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
		free(wr->data);
		free(wr);
		conn_close(c);
		return;
	}
	if (wr->close_after)
		return;
	uv_timer_start(&c->timer, on_resume, 0, 0);
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
	struct write_req *wr = xcalloc(1, sizeof(*wr));
	uv_buf_t b = uv_buf_init(data, (unsigned)len);

	wr->conn = c;
	wr->data = data;
	wr->close_after = close_after;
	if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
		free(data);
		free(wr);
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
	if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) >
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
}

static void on_listener_closed(uv_handle_t *h);

static void on_connection(uv_stream_t *server, int status)
{
	struct http_server *srv = server->data;
	struct conn *c;
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);

	if (status < 0)
		return;
	c = xcalloc(1, sizeof(*c));
	c->srv = srv;
	uv_tcp_init(srv->loop, &c->tcp);
	uv_timer_init(srv->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	srv->open_handles++;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
	    srv->nconns > MAX_CONNS) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) == 0 &&
	    ss.ss_family == AF_INET) {
		char ip[32];
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		uv_ip4_name(in, ip, sizeof(ip));
		snprintf(c->peer, sizeof(c->peer), "%s:%d", ip,
			 ntohs(in->sin_port));
	}
	buf_init(&c->url, URL_MAX);
	buf_init(&c->field, HEAD_MAX);
	buf_init(&c->value, HEAD_MAX);
	buf_init(&c->body, srv->max_body);
	buf_init(&c->pending, srv->max_body + HEAD_MAX);
	buf_init(&c->headers, 2 * HEAD_MAX);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	set_reading(c, true);
	uv_timer_start(&c->timer, on_idle, IDLE_TIMEOUT_MS, 0);
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
	srv->settings.on_message_begin = on_message_begin;
	srv->settings.on_url = on_url;
	srv->settings.on_header_field = on_header_field;
	srv->settings.on_header_value = on_header_value;
	srv->settings.on_headers_complete = on_headers_complete;
	srv->settings.on_body = on_body;
	srv->settings.on_message_complete = on_message_complete;
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

void http_server_close(struct http_server *srv, void (*done)(void *arg),
		       void *arg)
{
	srv->closing = true;
	srv->done = done;
	srv->done_arg = arg;
	while (srv->conns != NULL)
		conn_close(srv->conns);
	uv_close((uv_handle_t *)&srv->tcp, on_listener_closed);
}

int http_req_header(const struct http_req *req, const char *name, char *out,
		    size_t outsz)
{
	return headers_get(req->headers, name, out, outsz);
}
