/*
 * test_httpc.c - the libcurl-on-libuv HTTP client against a small HTTP/1.1
 * server that runs on the same loop, on 127.0.0.1 with a kernel-chosen port.
 *
 * The server understands just enough: a request line, headers, a body by
 * Content-Length, keep-alive. Its paths: /hello, /echo (method and body
 * back), /header (the X-Test header back), /fail (500), /hang (never
 * answers), /big (100000 bytes with a Content-Length), /stream (100000
 * bytes, no length, ended by closing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "http/httpc.h"
#include "util/err.h"

#define BIG_LEN 100000
#define IN_MAX 65536

struct server;

struct conn {
	uv_tcp_t tcp;
	struct server *srv;
	struct conn *prev, *next;
	char in[IN_MAX];
	size_t inlen;
	int closing;
};

struct server {
	uv_loop_t *loop;
	uv_tcp_t listener;
	int port;
	int accepted; /* connections accepted */
	int requests; /* requests parsed */
	int hanging;  /* /hang requests parsed */
	struct conn *conns;
};

struct fixture {
	uv_loop_t loop;
	struct server srv;
	struct httpc *client;
	uv_timer_t watchdog;
	int timed_out;
};

/* What one done callback saw (the result's strings die with it). */
struct call {
	struct fixture *f;
	int calls;
	int error;
	long status;
	char body[256];
	size_t body_len;
	char detail[256];
	uint64_t elapsed_us;
	int has_length;          /* httpc_header found Content-Length */
	char content_length[32]; /* its value */
	int has_missing;         /* httpc_header found X-Missing */
	void (*then)(struct call *c); /* run inside the callback */
	struct httpc_req *req;
	int *total; /* counts callbacks of a group, if set */
};

static void conn_close_cb(uv_handle_t *h)
{
	free(h->data);
}

static void conn_close(struct conn *c)
{
	struct server *s = c->srv;

	if (c->closing)
		return;
	c->closing = 1;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
}

struct wreq {
	uv_write_t w;
	struct conn *conn;
	int close_after;
	char data[];
};

static void write_cb(uv_write_t *w, int status)
{
	struct wreq *wr = (struct wreq *)w;

	(void)status;
	if (wr->close_after)
		conn_close(wr->conn);
	free(wr);
}

static void send_raw(struct conn *c, const char *head, const char *body,
		     size_t body_len, int close_after)
{
	size_t hl = strlen(head);
	struct wreq *wr = malloc(sizeof(*wr) + hl + body_len);
	uv_buf_t b;

	assert_non_null(wr);
	wr->conn = c;
	wr->close_after = close_after;
	memcpy(wr->data, head, hl);
	if (body_len > 0)
		memcpy(wr->data + hl, body, body_len);
	b = uv_buf_init(wr->data, (unsigned)(hl + body_len));
	assert_int_equal(uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1,
				  write_cb),
			 0);
}

static void respond(struct conn *c, int status, const char *body,
		    size_t len)
{
	char head[256];

	snprintf(head, sizeof(head),
		 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
		 "Content-Length: %zu\r\n\r\n",
		 status, status == 200 ? "OK" : "Oops", len);
	send_raw(c, head, body, len, 0);
}

/* Finds header name in the head (between the request line and the blank
 * line); copies its value into out. */
static int header_value(const char *head, size_t head_len, const char *name,
			char *out, size_t size)
{
	size_t nl = strlen(name);
	const char *p = head, *end = head + head_len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (eol == NULL)
			break;
		if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 &&
		    p[nl] == ':') {
			const char *v = p + nl + 1;
			size_t vl;

			while (*v == ' ')
				v++;
			vl = (size_t)(eol - v);
			if (vl > 0 && v[vl - 1] == '\r')
				vl--;
			if (vl >= size)
				vl = size - 1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return 1;
		}
		p = eol + 1;
	}
	return 0;
}

static void handle(struct conn *c, const char *head, size_t head_len,
		   const char *body, size_t body_len)
{
	char method[16] = "", path[128] = "", value[128], out[512];
	static char big[BIG_LEN];
	int n;

	c->srv->requests++;
	uv_stop(c->srv->loop); /* let run_until look at the counters */
	sscanf(head, "%15s %127s", method, path);
	if (strcmp(path, "/hello") == 0) {
		respond(c, 200, "hello world", 11);
	} else if (strcmp(path, "/echo") == 0) {
		n = snprintf(out, sizeof(out), "%s ", method);
		assert_true((size_t)n + body_len <= sizeof(out));
		memcpy(out + n, body, body_len);
		respond(c, 200, out, (size_t)n + body_len);
	} else if (strcmp(path, "/header") == 0) {
		if (!header_value(head, head_len, "X-Test", value,
				  sizeof(value)))
			value[0] = '\0';
		respond(c, 200, value, strlen(value));
	} else if (strcmp(path, "/fail") == 0) {
		respond(c, 500, "boom", 4);
	} else if (strcmp(path, "/hang") == 0) {
		c->srv->hanging++;
	} else if (strcmp(path, "/big") == 0) {
		memset(big, 'x', sizeof(big));
		respond(c, 200, big, sizeof(big));
	} else if (strcmp(path, "/stream") == 0) {
		memset(big, 'y', sizeof(big));
		send_raw(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
			 big, sizeof(big), 1);
	} else {
		respond(c, 404, "no", 2);
	}
}

/* Handles every complete request in the input buffer. */
static void parse(struct conn *c)
{
	for (;;) {
		char *end, value[32];
		size_t head_len, body_len = 0, total;

		end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
		if (end == NULL)
			return;
		head_len = (size_t)(end - c->in) + 4;
		if (header_value(c->in, head_len, "Content-Length", value,
				 sizeof(value)))
			body_len = strtoul(value, NULL, 10);
		total = head_len + body_len;
		assert_true(total <= IN_MAX);
		if (c->inlen < total)
			return;
		handle(c, c->in, head_len, c->in + head_len, body_len);
		memmove(c->in, c->in + total, c->inlen - total);
		c->inlen -= total;
	}
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct conn *c = h->data;

	(void)hint;
	*b = uv_buf_init(c->in + c->inlen, (unsigned)(IN_MAX - c->inlen));
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = st->data;

	(void)b;
	if (n < 0) {
		conn_close(c);
		return;
	}
	c->inlen += (size_t)n;
	if (!c->closing)
		parse(c);
}

static void accept_cb(uv_stream_t *l, int status)
{
	struct server *s = l->data;
	struct conn *c;

	assert_int_equal(status, 0);
	c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->srv = s;
	c->tcp.data = c;
	assert_int_equal(uv_tcp_init(s->loop, &c->tcp), 0);
	if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
		uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
		return;
	}
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->accepted++;
	assert_int_equal(uv_read_start((uv_stream_t *)&c->tcp, alloc_cb,
				       read_cb),
			 0);
}

static void server_start(struct server *s, uv_loop_t *loop)
{
	struct sockaddr_in addr;
	struct sockaddr_storage bound;
	int len = sizeof(bound);

	memset(s, 0, sizeof(*s));
	s->loop = loop;
	assert_int_equal(uv_tcp_init(loop, &s->listener), 0);
	s->listener.data = s;
	assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
	assert_int_equal(uv_tcp_bind(&s->listener,
				     (const struct sockaddr *)&addr, 0),
			 0);
	assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 128,
				   accept_cb),
			 0);
	assert_int_equal(uv_tcp_getsockname(&s->listener,
					    (struct sockaddr *)&bound, &len),
			 0);
	s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void server_stop(struct server *s)
{
	while (s->conns != NULL)
		conn_close(s->conns);
	uv_close((uv_handle_t *)&s->listener, NULL);
}

static void url(struct fixture *f, const char *path, char *out, size_t size)
{
	snprintf(out, size, "http://127.0.0.1:%d%s", f->srv.port, path);
}

static void on_done(void *arg, const struct httpc_result *res)
{
	struct call *c = arg;
	char scratch[8];

	c->calls++;
	uv_stop(&c->f->loop);
	c->error = res->error;
	c->status = res->status;
	c->body_len = res->body_len;
	memcpy(c->body, res->body,
	       res->body_len < sizeof(c->body) ? res->body_len + 1
					       : sizeof(c->body));
	c->body[sizeof(c->body) - 1] = '\0';
	snprintf(c->detail, sizeof(c->detail), "%s",
		 res->detail != NULL ? res->detail : "");
	c->elapsed_us = res->elapsed_us;
	c->has_length = httpc_header(res, "content-length", c->content_length,
				     sizeof(c->content_length));
	c->has_missing = httpc_header(res, "X-Missing", scratch,
				      sizeof(scratch));
	if (c->total != NULL)
		(*c->total)++;
	if (c->then != NULL)
		c->then(c);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL || uv_loop_init(&f->loop) != 0)
		return -1;
	server_start(&f->srv, &f->loop);
	if (httpc_new(&f->loop, &f->client) != 0)
		return -1;
	uv_timer_init(&f->loop, &f->watchdog);
	f->watchdog.data = f;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	httpc_close(f->client);
	server_stop(&f->srv);
	uv_close((uv_handle_t *)&f->watchdog, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f);
	return 0;
}

static void watchdog_cb(uv_timer_t *t)
{
	struct fixture *f = t->data;

	f->timed_out = 1;
	uv_stop(&f->loop);
}

/* Runs the loop until *count reaches want (or 10 s pass: failure). Every
 * callback that changes a counter stops the loop, so uv_run returns to
 * check. */
static void run_until(struct fixture *f, const int *count, int want)
{
	f->timed_out = 0;
	uv_timer_start(&f->watchdog, watchdog_cb, 10000, 0);
	while (*count < want && !f->timed_out)
		uv_run(&f->loop, UV_RUN_DEFAULT);
	uv_timer_stop(&f->watchdog);
	if (*count < want)
		fail_msg("timed out: %d of %d", *count, want);
}

/* Runs the loop for ms milliseconds. */
static void run_for(struct fixture *f, uint64_t ms)
{
	f->timed_out = 0;
	uv_timer_start(&f->watchdog, watchdog_cb, ms, 0);
	while (!f->timed_out)
		uv_run(&f->loop, UV_RUN_DEFAULT);
}

static void get_200(void **state)
{
	struct fixture *f = *state;
	struct call c = { .f = f };
	char u[128];

	url(f, "/hello", u, sizeof(u));
	assert_int_equal(httpc_request(f->client, u, NULL, on_done, &c, NULL),
			 0);
	assert_int_equal(c.calls, 0);
	run_until(f, &c.calls, 1);
	run_for(f, 20);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.error, 0);
	assert_int_equal(c.status, 200);
	assert_string_equal(c.body, "hello world");
	assert_int_equal(c.body_len, 11);
	assert_true(c.elapsed_us > 0);

	/* Again: the kept-alive connection is reused. */
	assert_int_equal(httpc_request(f->client, u, NULL, on_done, &c, NULL),
			 0);
	run_until(f, &c.calls, 2);
	assert_int_equal(c.status, 200);
	assert_int_equal(f->srv.accepted, 1);
}

static void post_and_headers(void **state)
{
	struct fixture *f = *state;
	struct call a = { .f = f }, b = { .f = f }, h = { .f = f },
		    e = { .f = f };
	const char *hdrs[] = { "X-Test: carrot", "Content-Type: text/plain",
			       NULL };
	char body[] = "ping\0pong";
	struct httpc_opts post = { .method = "POST", .body = body,
				   .body_len = 9 };
	struct httpc_opts put = { .method = "PUT", .body = "v2",
				  .body_len = 2 };
	struct httpc_opts with_headers = { .headers = hdrs,
					   .want_headers = 1 };
	struct httpc_opts empty_post = { .method = "POST" };
	char u[128];

	url(f, "/echo", u, sizeof(u));
	assert_int_equal(httpc_request(f->client, u, &post, on_done, &a, NULL),
			 0);
	/* The body was copied: scribbling on it changes nothing. */
	memset(body, '#', sizeof(body));
	assert_int_equal(httpc_request(f->client, u, &put, on_done, &b, NULL),
			 0);
	assert_int_equal(httpc_request(f->client, u, &empty_post, on_done, &e,
				       NULL),
			 0);
	url(f, "/header", u, sizeof(u));
	assert_int_equal(httpc_request(f->client, u, &with_headers, on_done,
				       &h, NULL),
			 0);
	run_until(f, &a.calls, 1);
	run_until(f, &b.calls, 1);
	run_until(f, &e.calls, 1);
	run_until(f, &h.calls, 1);
	assert_int_equal(a.error, 0);
	assert_int_equal(a.status, 200);
	assert_int_equal(a.body_len, 14);
	assert_memory_equal(a.body, "POST ping\0pong", 14);
	assert_int_equal(b.status, 200);
	assert_string_equal(b.body, "PUT v2");
	assert_string_equal(e.body, "POST ");
	assert_string_equal(h.body, "carrot");
	/* Response headers only when asked for. */
	assert_true(h.has_length);
	assert_string_equal(h.content_length, "6");
	assert_false(h.has_missing);
	assert_false(a.has_length);
}

static void bad_input_refused(void **state)
{
	struct fixture *f = *state;
	struct call c = { .f = f };
	const char *evil[] = { "X-A: 1\r\nX-B: 2", NULL };
	struct httpc_opts bad_header = { .headers = evil };
	struct httpc_opts bad_method = { .method = "GET /x HTTP/1.1\r\n" };
	struct httpc_opts no_body = { .method = "POST", .body_len = 3 };
	struct httpc_req *req = (struct httpc_req *)&c;
	char u[128];

	url(f, "/hello", u, sizeof(u));
	assert_int_equal(httpc_request(f->client, u, &bad_header, on_done, &c,
				       &req),
			 MDS_E_INVAL);
	assert_null(req);
	assert_int_equal(httpc_request(f->client, u, &bad_method, on_done, &c,
				       NULL),
			 MDS_E_INVAL);
	assert_int_equal(httpc_request(f->client, u, &no_body, on_done, &c,
				       NULL),
			 MDS_E_INVAL);
	assert_int_equal(httpc_request(f->client, NULL, NULL, on_done, &c,
				       NULL),
			 MDS_E_INVAL);
	/* A scheme other than http(s) fails through the callback. */
	assert_int_equal(httpc_request(f->client, "file:///etc/passwd", NULL,
				       on_done, &c, NULL),
			 0);
	run_until(f, &c.calls, 1);
	assert_int_equal(c.error, MDS_E_INVAL);
	assert_true(c.detail[0] != '\0');
}

static void status_500_is_not_an_error(void **state)
{
	struct fixture *f = *state;
	struct call c = { .f = f };
	char u[128];

	url(f, "/fail", u, sizeof(u));
	assert_int_equal(httpc_request(f->client, u, NULL, on_done, &c, NULL),
			 0);
	run_until(f, &c.calls, 1);
	assert_int_equal(c.error, 0);
	assert_int_equal(c.status, 500);
	assert_string_equal(c.body, "boom");
}

static void connection_refused(void **state)
{
	struct fixture *f = *state;
	struct call c = { .f = f };
	struct sockaddr_in addr;
	struct sockaddr_storage bound;
	int len = sizeof(bound), port;
	uv_tcp_t t;
	char u[128];

	/* A port that was just free: bound, read, closed. */
	assert_int_equal(uv_tcp_init(&f->loop, &t), 0);
	assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
	assert_int_equal(uv_tcp_bind(&t, (const struct sockaddr *)&addr, 0),
			 0);
	assert_int_equal(uv_tcp_getsockname(&t, (struct sockaddr *)&bound,
					    &len),
			 0);
	port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	uv_close((uv_handle_t *)&t, NULL);
	run_for(f, 1);

	snprintf(u, sizeof(u), "http://127.0.0.1:%d/hello", port);
	assert_int_equal(httpc_request(f->client, u, NULL, on_done, &c, NULL),
			 0);
	run_until(f, &c.calls, 1);
	assert_int_equal(c.error, MDS_E_UNAVAIL);
	assert_int_equal(c.status, 0);
	print_message("refused: %s\n", c.detail);
	assert_true(c.detail[0] != '\0');
}

static void silent_server_times_out(void **state)
{
	struct fixture *f = *state;
	struct call c = { .f = f };
	struct httpc_opts o = { .timeout_ms = 300 };
	char u[128];

	url(f, "/hang", u, sizeof(u));
	assert_int_equal(httpc_request(f->client, u, &o, on_done, &c, NULL),
			 0);
	run_until(f, &c.calls, 1);
	assert_int_equal(c.error, MDS_E_TIMEOUT);
	print_message("timeout after %llu us: %s\n",
		      (unsigned long long)c.elapsed_us, c.detail);
	assert_true(c.elapsed_us >= 250000);
	assert_true(c.elapsed_us < 5000000);
	assert_int_equal(f->srv.hanging, 1);
}

static void body_over_cap_is_limit(void **state)
{
	struct fixture *f = *state;
	struct call a = { .f = f }, b = { .f = f }, ok = { .f = f };
	struct httpc_opts small = { .max_body = 1024 };
	struct httpc_opts exact = { .max_body = BIG_LEN };
	char u[128];

	url(f, "/big", u, sizeof(u));
	assert_int_equal(httpc_request(f->client, u, &small, on_done, &a,
				       NULL),
			 0);
	assert_int_equal(httpc_request(f->client, u, &exact, on_done, &ok,
				       NULL),
			 0);
	/* No Content-Length: only the write callback can notice. */
	url(f, "/stream", u, sizeof(u));
	assert_int_equal(httpc_request(f->client, u, &small, on_done, &b,
				       NULL),
			 0);
	run_until(f, &a.calls, 1);
	run_until(f, &b.calls, 1);
	run_until(f, &ok.calls, 1);
	assert_int_equal(a.error, MDS_E_LIMIT);
	assert_int_equal(b.error, MDS_E_LIMIT);
	assert_true(b.body_len <= 1024);
	print_message("limit: %s / %s\n", a.detail, b.detail);
	assert_int_equal(ok.error, 0);
	assert_int_equal(ok.body_len, BIG_LEN);
}

static void cancel_calls_back_later(void **state)
{
	struct fixture *f = *state;
	struct call c = { .f = f }, next = { .f = f };
	struct httpc_req *req = NULL;
	char u[128];

	url(f, "/hang", u, sizeof(u));
	assert_int_equal(httpc_request(f->client, u, NULL, on_done, &c, &req),
			 0);
	assert_non_null(req);
	run_until(f, &f->srv.hanging, 1);
	httpc_cancel(f->client, req);
	assert_int_equal(c.calls, 0); /* not from inside httpc_cancel */
	run_until(f, &c.calls, 1);
	run_for(f, 20);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.error, MDS_E_UNAVAIL);
	assert_string_equal(c.detail, "request cancelled");

	/* The client goes on working. */
	url(f, "/hello", u, sizeof(u));
	assert_int_equal(httpc_request(f->client, u, NULL, on_done, &next,
				       NULL),
			 0);
	run_until(f, &next.calls, 1);
	assert_int_equal(next.status, 200);
}

/* Each sequential request starts in the previous one's callback. */
struct chain {
	struct call call;
	int done;
	int want;
	char url[128];
};

static void chain_next(struct call *c)
{
	struct chain *ch = (struct chain *)c;

	assert_int_equal(c->error, 0);
	ch->done++;
	if (ch->done < ch->want)
		assert_int_equal(httpc_request(c->f->client, ch->url, NULL,
					       on_done, c, NULL),
				 0);
}

static void fifty_concurrent_and_keepalive(void **state)
{
	struct fixture *f = *state;
	struct call calls[50];
	struct chain ch = { .want = 5 };
	int done = 0;
	char u[128];

	memset(calls, 0, sizeof(calls));
	for (int i = 0; i < 50; i++) {
		snprintf(u, sizeof(u), "http://127.0.0.1:%d/echo", f->srv.port);
		calls[i].f = f;
		calls[i].total = &done;
		assert_int_equal(httpc_request(f->client, u,
					       &(struct httpc_opts){
						       .method = "POST",
						       .body = u,
						       .body_len = strlen(u) },
					       on_done, &calls[i], NULL),
				 0);
	}
	run_until(f, &done, 50);
	run_for(f, 20);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(calls[i].calls, 1);
		assert_int_equal(calls[i].error, 0);
		assert_int_equal(calls[i].status, 200);
	}
	print_message("50 concurrent: %d connections\n", f->srv.accepted);

	/* One after the other: one connection, kept alive. */
	f->srv.accepted = 0;
	ch.call.f = f;
	ch.call.then = chain_next;
	url(f, "/hello", ch.url, sizeof(ch.url));
	assert_int_equal(httpc_request(f->client, ch.url, NULL, on_done,
				       &ch.call, NULL),
			 0);
	run_until(f, &ch.done, 5);
	assert_int_equal(ch.call.calls, 5);
	assert_true(f->srv.accepted <= 1);
}

static void close_with_pending_calls_each_once(void **state)
{
	struct fixture *f = *state;
	struct call hang[5], fast = { .f = f };
	char u[128];

	memset(hang, 0, sizeof(hang));
	url(f, "/hang", u, sizeof(u));
	for (int i = 0; i < 5; i++) {
		hang[i].f = f;
		assert_int_equal(httpc_request(f->client, u, NULL, on_done,
					       &hang[i], NULL),
				 0);
	}
	url(f, "/hello", u, sizeof(u));
	assert_int_equal(httpc_request(f->client, u, NULL, on_done, &fast,
				       NULL),
			 0);
	run_until(f, &f->srv.hanging, 5);
	run_until(f, &fast.calls, 1);
	httpc_close(f->client);
	f->client = NULL;
	for (int i = 0; i < 5; i++)
		assert_int_equal(hang[i].calls, 0);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	run_for(f, 20);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(hang[i].calls, 1);
		assert_int_equal(hang[i].error, MDS_E_UNAVAIL);
		assert_string_equal(hang[i].detail, "client closed");
	}
	assert_int_equal(fast.calls, 1);
	assert_int_equal(fast.status, 200);
}

static void close_before_loop_runs(void **state)
{
	struct fixture *f = *state;
	struct call c = { .f = f };
	char u[128];

	url(f, "/hello", u, sizeof(u));
	assert_int_equal(httpc_request(f->client, u, NULL, on_done, &c, NULL),
			 0);
	httpc_close(f->client);
	f->client = NULL;
	assert_int_equal(c.calls, 0);
	run_for(f, 20);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.error, MDS_E_UNAVAIL);
}

/* Closing from inside a callback: the others still get theirs, once; new
 * requests from those callbacks are refused. */
static void close_inside_callback(struct call *c)
{
	httpc_close(c->f->client);
}

static void request_inside_closing_callback(struct call *c)
{
	char u[128];

	url(c->f, "/hello", u, sizeof(u));
	assert_int_equal(httpc_request(c->f->client, u, NULL, on_done, c,
				       NULL),
			 MDS_E_UNAVAIL);
	httpc_cancel(c->f->client, c->req); /* finished already: no-op */
	httpc_close(c->f->client);          /* closing already: no-op */
}

static void close_from_callback(void **state)
{
	struct fixture *f = *state;
	struct call closer = { .f = f, .then = close_inside_callback };
	struct call hang = { .f = f, .then = request_inside_closing_callback };
	char u[128];

	url(f, "/hang", u, sizeof(u));
	assert_int_equal(httpc_request(f->client, u, NULL, on_done, &hang,
				       &hang.req),
			 0);
	url(f, "/hello", u, sizeof(u));
	assert_int_equal(httpc_request(f->client, u, NULL, on_done, &closer,
				       NULL),
			 0);
	run_until(f, &closer.calls, 1);
	run_until(f, &hang.calls, 1);
	/* The fixture's client pointer stays valid until the close
	 * callbacks, which run_until's loop turns have passed by now. */
	f->client = NULL;
	run_for(f, 20);
	assert_int_equal(closer.calls, 1);
	assert_int_equal(closer.status, 200);
	assert_int_equal(hang.calls, 1);
	assert_int_equal(hang.error, MDS_E_UNAVAIL);
}

static int group_setup(void **state)
{
	(void)state;
	return httpc_global_init();
}

static int group_teardown(void **state)
{
	(void)state;
	httpc_global_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(get_200, setup, teardown),
		cmocka_unit_test_setup_teardown(post_and_headers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(bad_input_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(status_500_is_not_an_error,
						setup, teardown),
		cmocka_unit_test_setup_teardown(connection_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(silent_server_times_out, setup,
						teardown),
		cmocka_unit_test_setup_teardown(body_over_cap_is_limit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(cancel_calls_back_later, setup,
						teardown),
		cmocka_unit_test_setup_teardown(fifty_concurrent_and_keepalive,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			close_with_pending_calls_each_once, setup, teardown),
		cmocka_unit_test_setup_teardown(close_before_loop_runs, setup,
						teardown),
		cmocka_unit_test_setup_teardown(close_from_callback, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
