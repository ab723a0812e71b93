/*
 * test_gateway.c - the gateway over real loopback sockets.
 *
 * The main thread runs the owner's loop: the gateway's callbacks and small
 * libuv HTTP servers standing in for model instances; the gateway runs on
 * its own thread. Each test's client runs in another thread with blocking
 * sockets; it reaches the loop thread (to query or change the gateway)
 * through a uv_async and a semaphore, and records the first failed check,
 * which the main thread then reports.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <uv.h>

#include "gateway/gateway.h"
#include "http/hparse.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

#define NUPS 3

struct env;

/* One upstream instance: an HTTP/1.1 server with a few test behaviours. */
struct ups {
	uv_tcp_t listener;
	struct env *env;
	int port;
	unsigned accepts, requests;
	bool drop_second; /* close instead of answering a connection's 2nd */
};

struct uconn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	struct uconn *next;
	struct ups *ups;
	struct hparse parser;
	char url[1024], host[128], xff[128], rid[128], te[64], names[1024];
	char field[64], value[256];
	int last; /* 1 field, 2 value */
	uint64_t len, sum;
	unsigned nreq, nopen;
	bool closing;
};

struct env {
	uv_loop_t loop;
	struct gateway *gw;
	int gw_port;
	struct ups ups[NUPS];
	struct ups far; /* on another address, for test_pod_address; its
			   connections outlive the scenario */
	struct uconn *conns;
	uv_async_t async;
	uv_mutex_t mu;
	uv_sem_t sem;
	void (*fn)(struct env *, void *);
	void *arg;
	void (*scenario)(struct env *);
	uv_thread_t thread;
	unsigned observed, observed_5xx;
	int observed_at_end; /* what env_free() checks, once closed; -1: no */
	bool gw_closed;
	const char *listen; /* the gateway's address: 127.0.0.1, or ::1 */
	char fail[1024];
};

/* The body every test sends or expects: position i has byte pat(i). */
static uint8_t pat(uint64_t i)
{
	return (uint8_t)((i * 0x9E3779B97F4A7C15ull) >> 56);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

#define FNV0 0xcbf29ce484222325ull

static uint64_t pat_sum(uint64_t n)
{
	uint64_t h = FNV0;

	for (uint64_t i = 0; i < n; i++) {
		uint8_t b = pat(i);

		h = fnv(h, &b, 1);
	}
	return h;
}

/* The upstream servers. */

struct uwrite {
	uv_write_t req;
	char *data;
	bool close_after;
};

static void uconn_close_cb(uv_handle_t *h)
{
	struct uconn *u = h->data;
	struct env *e = u->ups->env;

	if (--u->nopen > 0)
		return;
	for (struct uconn **pp = &e->conns; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == u) {
			*pp = u->next;
			break;
		}
	}
	free(u);
}

static void uconn_close(struct uconn *u)
{
	if (u->closing)
		return;
	u->closing = true;
	uv_close((uv_handle_t *)&u->tcp, uconn_close_cb);
	uv_close((uv_handle_t *)&u->timer, uconn_close_cb);
}

static void uwrite_cb(uv_write_t *req, int status)
{
	struct uwrite *w = (struct uwrite *)req;
	struct uconn *u = req->handle->data;

	if (w->close_after || status < 0)
		uconn_close(u);
	free(w->data);
	free(w);
}

static void usend(struct uconn *u, char *data, size_t len, bool close_after)
{
	struct uwrite *w = xcalloc(1, sizeof(*w));
	uv_buf_t b = uv_buf_init(data, (unsigned)len);

	w->data = data;
	w->close_after = close_after;
	if (u->closing || uv_write(&w->req, (uv_stream_t *)&u->tcp, &b, 1,
				   uwrite_cb) != 0) {
		free(data);
		free(w);
	}
}

static uint64_t query_num(const char *url, const char *key)
{
	const char *p = strstr(url, key);

	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static void urespond(struct uconn *u)
{
	const char *url = u->url;
	bool head = hparse_method_is(&u->parser, "HEAD");
	char *out;
	size_t n;

	if (strncmp(url, "/nocontent", 10) == 0) {
		out = xasprintf("HTTP/1.1 204 No Content\r\nX-Up: %d\r\n\r\n",
				u->ups->port);
		usend(u, out, strlen(out), false);
		return;
	}
	if (strncmp(url, "/big", 4) == 0 || strncmp(url, "/eof", 4) == 0) {
		bool eof = url[1] == 'e';
		uint64_t size = query_num(url, "size="), off = 0;
		size_t cap = size + size / 1000 * 16 + 256;

		out = xmalloc(cap);
		n = (size_t)snprintf(out, cap, "HTTP/1.1 200 OK\r\n%s\r\n",
				     eof ? "" : "Transfer-Encoding: chunked\r\n");
		while (off < size) {
			uint64_t k = 1000 + off % 3000;

			if (k > size - off)
				k = size - off;
			if (!eof)
				n += (size_t)snprintf(out + n, cap - n,
						      "%" PRIx64 "\r\n", k);
			for (uint64_t i = 0; i < k; i++)
				out[n++] = (char)pat(off + i);
			if (!eof) {
				memcpy(out + n, "\r\n", 2);
				n += 2;
			}
			off += k;
		}
		if (!eof) {
			memcpy(out + n, "0\r\n\r\n", 5);
			n += 5;
		}
		usend(u, out, n, eof);
		return;
	}
	{
		char body[4096];
		int blen = snprintf(body, sizeof(body),
				    "port=%d method=%s url=%s host=%s xff=%s "
				    "rid=%s te=%s names=%s len=%" PRIu64
				    " sum=%016" PRIx64 "\n", u->ups->port,
				    hparse_method(&u->parser), url,
				    u->host, u->xff, u->rid, u->te, u->names,
				    u->len, u->sum);

		out = xasprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
				"Content-Length: %d\r\nX-Up: %d\r\n"
				"Keep-Alive: timeout=5\r\n\r\n%s", blen,
				u->ups->port, head ? "" : body);
		usend(u, out, strlen(out), false);
	}
}

static void utimer_cb(uv_timer_t *t)
{
	urespond(t->data);
}

static void append(char *dst, size_t cap, const char *at, size_t len)
{
	size_t have = strlen(dst);

	if (len > cap - 1 - have)
		len = cap - 1 - have;
	memcpy(dst + have, at, len);
	dst[have + len] = '\0';
}

static void ucommit(struct uconn *u)
{
	char *dst = NULL;
	size_t cap = 0;

	if (u->last != 2)
		return;
	for (char *p = u->field; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	if (strcmp(u->field, "host") == 0)
		dst = u->host, cap = sizeof(u->host);
	else if (strcmp(u->field, "x-forwarded-for") == 0)
		dst = u->xff, cap = sizeof(u->xff);
	else if (strcmp(u->field, "x-request-id") == 0)
		dst = u->rid, cap = sizeof(u->rid);
	else if (strcmp(u->field, "transfer-encoding") == 0)
		dst = u->te, cap = sizeof(u->te);
	if (dst != NULL) {
		dst[0] = '\0';
		append(dst, cap, u->value, strlen(u->value));
	}
	append(u->names, sizeof(u->names), u->field, strlen(u->field));
	append(u->names, sizeof(u->names), ",", 1);
	u->field[0] = u->value[0] = '\0';
	u->last = 0;
}

static int u_begin(struct hparse *p)
{
	struct uconn *u = p->data;

	u->url[0] = u->host[0] = u->xff[0] = u->rid[0] = u->te[0] = '\0';
	u->names[0] = u->field[0] = u->value[0] = '\0';
	u->last = 0;
	u->len = 0;
	u->sum = FNV0;
	return 0;
}

static int u_url(struct hparse *p, const char *at, size_t len)
{
	struct uconn *u = p->data;

	append(u->url, sizeof(u->url), at, len);
	return 0;
}

static int u_field(struct hparse *p, const char *at, size_t len)
{
	struct uconn *u = p->data;

	ucommit(u);
	u->last = 1;
	append(u->field, sizeof(u->field), at, len);
	return 0;
}

static int u_value(struct hparse *p, const char *at, size_t len)
{
	struct uconn *u = p->data;

	u->last = 2;
	append(u->value, sizeof(u->value), at, len);
	return 0;
}

static void ualloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf);
static void uread_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void uresume_cb(uv_timer_t *t)
{
	struct uconn *u = t->data;

	uv_read_start((uv_stream_t *)&u->tcp, ualloc_cb, uread_cb);
}

/* "/stall?ms=N" stops reading the request body for N ms. */
static int u_headers(struct hparse *p)
{
	struct uconn *u = p->data;

	ucommit(u);
	if (strncmp(u->url, "/stall", 6) == 0) {
		uv_read_stop((uv_stream_t *)&u->tcp);
		uv_timer_start(&u->timer, uresume_cb, query_num(u->url, "ms="),
			       0);
	}
	return 0;
}

static int u_body(struct hparse *p, const char *at, size_t len)
{
	struct uconn *u = p->data;

	u->len += len;
	u->sum = fnv(u->sum, at, len);
	return 0;
}

static int u_complete(struct hparse *p)
{
	struct uconn *u = p->data;

	u->ups->requests++;
	if (++u->nreq == 2 && u->ups->drop_second) {
		uconn_close(u);
		return 0;
	}
	if (strncmp(u->url, "/slow", 5) == 0)
		uv_timer_start(&u->timer, utimer_cb, query_num(u->url, "ms="),
			       0);
	else
		urespond(u);
	return 0;
}

static const struct hparse_settings u_settings = {
	.on_message_begin = u_begin,
	.on_url = u_url,
	.on_header_field = u_field,
	.on_header_value = u_value,
	.on_headers_complete = u_headers,
	.on_body = u_body,
	.on_message_complete = u_complete,
};

static void ualloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	(void)h;
	*buf = uv_buf_init(xmalloc(size), (unsigned)size);
}

static void uread_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct uconn *u = s->data;

	if (nread < 0) {
		uconn_close(u);
	} else if (nread > 0 && !u->closing) {
		size_t n = hparse_execute(&u->parser, buf->base,
					  (size_t)nread);

		if (n != (size_t)nread && !u->closing)
			uconn_close(u);
	}
	free(buf->base);
}

static void uaccept_cb(uv_stream_t *server, int status)
{
	struct ups *s = server->data;
	struct uconn *u;

	if (status < 0)
		return;
	u = xcalloc(1, sizeof(*u));
	u->ups = s;
	u->nopen = 2;
	uv_tcp_init(&s->env->loop, &u->tcp);
	uv_timer_init(&s->env->loop, &u->timer);
	u->tcp.data = u->timer.data = u;
	u->next = s->env->conns;
	s->env->conns = u;
	hparse_init(&u->parser, HPARSE_REQUEST, &u_settings, u);
	if (uv_accept(server, (uv_stream_t *)&u->tcp) != 0) {
		uconn_close(u);
		return;
	}
	s->accepts++;
	uv_read_start((uv_stream_t *)&u->tcp, ualloc_cb, uread_cb);
}

static int tcp_port(uv_tcp_t *t)
{
	struct sockaddr_in sa;
	int len = sizeof(sa);

	uv_tcp_getsockname(t, (struct sockaddr *)&sa, &len);
	return ntohs(sa.sin_port);
}

static void ups_start(struct env *e, struct ups *s)
{
	struct sockaddr_in sa;

	s->env = e;
	uv_ip4_addr("127.0.0.1", 0, &sa);
	uv_tcp_init(&e->loop, &s->listener);
	s->listener.data = s;
	assert_int_equal(uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0),
			 0);
	assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 128,
				   uaccept_cb), 0);
	s->port = tcp_port(&s->listener);
}

/* A port nothing listens on. */
static int dead_port(struct env *e)
{
	uv_tcp_t t;
	struct sockaddr_in sa;
	int port;

	uv_ip4_addr("127.0.0.1", 0, &sa);
	uv_tcp_init(&e->loop, &t);
	uv_tcp_bind(&t, (struct sockaddr *)&sa, 0);
	port = tcp_port(&t);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&e->loop, UV_RUN_NOWAIT);
	return port;
}

/* The environment: loop, gateway, upstreams, and the client thread. */

static void async_cb(uv_async_t *a)
{
	struct env *e = a->data;
	void (*fn)(struct env *, void *);
	void *arg;

	uv_mutex_lock(&e->mu);
	fn = e->fn;
	arg = e->arg;
	e->fn = NULL;
	uv_mutex_unlock(&e->mu);
	if (fn != NULL) {
		fn(e, arg);
		uv_sem_post(&e->sem);
	}
}

/* Runs fn(e, arg) on the loop thread and waits for it. */
static void on_loop(struct env *e, void (*fn)(struct env *, void *),
		    void *arg)
{
	uv_mutex_lock(&e->mu);
	e->fn = fn;
	e->arg = arg;
	uv_mutex_unlock(&e->mu);
	uv_async_send(&e->async);
	uv_sem_wait(&e->sem);
}

static void observe(void *arg, const char *dep,
		    const struct gateway_observed *o)
{
	struct env *e = arg;

	(void)dep;
	e->observed += (unsigned)o->requests;
	e->observed_5xx += (unsigned)o->by_class[5];
}

static void set_routes(struct env *e, const char *dep, const char *name,
		       const int *idx, size_t n)
{
	struct gateway_upstream up[NUPS] = { { NULL, 0, NULL } };
	static const char *const ids[NUPS] = { "i0", "i1", "i2" };

	for (size_t i = 0; i < n; i++) {
		up[i].instance_id = ids[idx[i]];
		up[i].port = (uint16_t)e->ups[idx[i]].port;
	}
	assert_int_equal(gateway_set_routes(e->gw, dep, name, up, n), 0);
}

/* A gateway of threads loops (MDS_TEST_GATEWAY_THREADS, when set, for every
 * test that does not ask for a number). */
static struct env *env_new_at(const char *listen, unsigned threads)
{
	struct env *e = xcalloc(1, sizeof(*e));
	char diag[256];
	static const int all[NUPS] = { 0, 1, 2 };

	e->listen = listen;
	assert_int_equal(uv_loop_init(&e->loop), 0);
	assert_int_equal(gateway_start_threads(&e->loop, listen, 0, threads,
					       &e->gw, diag, sizeof(diag)),
			 0);
	assert_int_equal(gateway_threads(e->gw), threads);
	e->gw_port = gateway_port(e->gw);
	assert_true(e->gw_port > 0);
	for (int i = 0; i < NUPS; i++)
		ups_start(e, &e->ups[i]);
	set_routes(e, "ocid1.dep.one", "model-a", all, 1);
	gateway_set_observer(e->gw, observe, e);
	e->observed_at_end = -1;
	gateway_serve(e->gw);
	uv_async_init(&e->loop, &e->async, async_cb);
	e->async.data = e;
	uv_mutex_init(&e->mu);
	uv_sem_init(&e->sem, 0);
	return e;
}

static struct env *env_new_threads(unsigned threads)
{
	return env_new_at("127.0.0.1", threads);
}

static struct env *env_new(void)
{
	const char *v = getenv("MDS_TEST_GATEWAY_THREADS");

	return env_new_threads(v != NULL ? (unsigned)strtoul(v, NULL, 10) : 1);
}

static void stop_fn(struct env *e, void *arg)
{
	(void)arg;
	uv_stop(&e->loop);
}

static void thread_main(void *arg)
{
	struct env *e = arg;

	e->scenario(e);
	uv_mutex_lock(&e->mu);
	e->fn = stop_fn;
	e->arg = NULL;
	uv_mutex_unlock(&e->mu);
	uv_async_send(&e->async);
}

static void gw_done(void *arg)
{
	((struct env *)arg)->gw_closed = true;
}

static void env_run(struct env *e, void (*scenario)(struct env *))
{
	e->scenario = scenario;
	assert_int_equal(uv_thread_create(&e->thread, thread_main, e), 0);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	uv_thread_join(&e->thread);
	if (e->fail[0] != '\0')
		print_error("%s\n", e->fail);
}

static void env_free(struct env *e)
{
	bool failed = e->fail[0] != '\0';

	gateway_close(e->gw, gw_done, e);
	for (int i = 0; i < NUPS; i++)
		uv_close((uv_handle_t *)&e->ups[i].listener, NULL);
	for (struct uconn *u = e->conns; u != NULL; u = u->next)
		uconn_close(u);
	uv_close((uv_handle_t *)&e->async, NULL);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_true(e->gw_closed);
	assert_null(e->conns);
	if (e->observed_at_end >= 0)
		assert_int_equal(e->observed, e->observed_at_end);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	uv_mutex_destroy(&e->mu);
	uv_sem_destroy(&e->sem);
	free(e);
	if (failed)
		fail();
}

/* Runs scenario in e (made by env_new() or env_new_threads()), under lim
 * when it is not NULL, then frees e. */
static void run_in(struct env *e, void (*scenario)(struct env *),
		   const struct gateway_limits *lim)
{
	if (lim != NULL)
		gateway_set_limits(e->gw, lim);
	env_run(e, scenario);
	env_free(e);
}

/* Checks in the client thread record the first failure and return. */

static void check_failed(struct env *e, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void check_failed(struct env *e, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (e->fail[0] != '\0')
		return;
	n = snprintf(e->fail, sizeof(e->fail), "test_gateway.c:%d: ", line);
	va_start(ap, fmt);
	vsnprintf(e->fail + n, sizeof(e->fail) - (size_t)n, fmt, ap);
	va_end(ap);
}

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			check_failed(e, __LINE__, "check failed: %s", #cond); \
			return;                                              \
		}                                                            \
	} while (0)

#define CHECK_INT(a, b)                                                      \
	do {                                                                 \
		long long a_ = (long long)(a), b_ = (long long)(b);          \
		if (a_ != b_) {                                              \
			check_failed(e, __LINE__, "%s == %s: %lld != %lld",  \
				     #a, #b, a_, b_);                        \
			return;                                              \
		}                                                            \
	} while (0)

#define CHECK_HAS(hay, needle)                                               \
	do {                                                                 \
		if (strstr((hay), (needle)) == NULL) {                       \
			check_failed(e, __LINE__, "'%s' not in '%s'",        \
				     (needle), (hay));                       \
			return;                                              \
		}                                                            \
	} while (0)

/* A blocking HTTP client. */

struct conn {
	int fd;
	size_t off, len;
	char buf[65536];
};

struct resp {
	int status;
	bool done, head, chunked, close;
	char hdrs[8192];  /* "name: value\n", names lowercased */
	char body[65536]; /* the first bytes */
	uint64_t len, sum;
	char field[128];
	int last;
};

/* A client connection to the gateway, over IPv6 when it listens on ::1,
 * else from the IPv4 address from when not NULL; fd -1 if the connect
 * failed. */
static struct conn *conn_open_from(const struct env *e, const char *from)
{
	struct conn *k = xcalloc(1, sizeof(*k));
	struct sockaddr_storage ss;
	struct sockaddr_in *sa = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sa6 = (struct sockaddr_in6 *)&ss;
	socklen_t len = sizeof(*sa);
	bool v6 = e->listen != NULL && strchr(e->listen, ':') != NULL;
	struct timeval tv = { 10, 0 };
	int one = 1;

	memset(&ss, 0, sizeof(ss));
	k->fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	setsockopt(k->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!v6 && from != NULL) {
		sa->sin_family = AF_INET;
		if (inet_pton(AF_INET, from, &sa->sin_addr) != 1 ||
		    bind(k->fd, (struct sockaddr *)sa, sizeof(*sa)) != 0)
			goto fail;
	}
	if (v6) {
		sa6->sin6_family = AF_INET6;
		sa6->sin6_port = htons((uint16_t)e->gw_port);
		sa6->sin6_addr = in6addr_loopback;
		len = sizeof(*sa6);
	} else {
		sa->sin_family = AF_INET;
		sa->sin_port = htons((uint16_t)e->gw_port);
		sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	if (connect(k->fd, (struct sockaddr *)&ss, len) == 0)
		return k;
fail:
	close(k->fd);
	k->fd = -1;
	return k;
}

static struct conn *conn_open(const struct env *e)
{
	return conn_open_from(e, NULL);
}

static void conn_close(struct conn *k)
{
	if (k->fd >= 0)
		close(k->fd);
	free(k);
}

static bool send_all(struct conn *k, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		ssize_t w = send(k->fd, s, n, MSG_NOSIGNAL);

		if (w <= 0)
			return false;
		s += w;
		n -= (size_t)w;
	}
	return true;
}

static bool send_str(struct conn *k, const char *s)
{
	return send_all(k, s, strlen(s));
}

static int r_field(struct hparse *p, const char *at, size_t len)
{
	struct resp *r = p->data;

	if (r->last != 1)
		r->field[0] = '\0';
	r->last = 1;
	append(r->field, sizeof(r->field), at, len);
	return 0;
}

static int r_value(struct hparse *p, const char *at, size_t len)
{
	struct resp *r = p->data;

	if (r->last == 1) {
		for (char *q = r->field; *q; q++)
			*q = (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q);
		append(r->hdrs, sizeof(r->hdrs), "\n", 1);
		append(r->hdrs, sizeof(r->hdrs), r->field, strlen(r->field));
		append(r->hdrs, sizeof(r->hdrs), ": ", 2);
	}
	r->last = 2;
	append(r->hdrs, sizeof(r->hdrs), at, len);
	return 0;
}

static int r_headers(struct hparse *p)
{
	struct resp *r = p->data;

	r->status = (int)hparse_status(p);
	r->chunked = hparse_chunked(p);
	append(r->hdrs, sizeof(r->hdrs), "\n", 1);
	return r->head ? 1 : 0;
}

static int r_body(struct hparse *p, const char *at, size_t len)
{
	struct resp *r = p->data;

	if (r->len < sizeof(r->body) - 1) {
		size_t k = len < sizeof(r->body) - 1 - r->len
				   ? len : sizeof(r->body) - 1 - r->len;

		memcpy(r->body + r->len, at, k);
		r->body[r->len + k] = '\0';
	}
	r->len += len;
	r->sum = fnv(r->sum, at, len);
	return 0;
}

static int r_complete(struct hparse *p)
{
	struct resp *r = p->data;

	r->done = true;
	r->close = !hparse_keep_alive(p);
	hparse_pause(p, true);
	return 0;
}

static const struct hparse_settings r_settings = {
	.on_header_field = r_field,
	.on_header_value = r_value,
	.on_headers_complete = r_headers,
	.on_body = r_body,
	.on_message_complete = r_complete,
};

/* Reads one response (of a HEAD request if head); false on EOF/error. */
static bool read_resp(struct conn *k, bool head, struct resp *r)
{
	struct hparse p;

	memset(r, 0, sizeof(*r));
	r->head = head;
	r->sum = FNV0;
	hparse_init(&p, HPARSE_RESPONSE, &r_settings, r);
	while (!r->done) {
		size_t n;

		if (k->off == k->len) {
			ssize_t got = recv(k->fd, k->buf, sizeof(k->buf), 0);

			k->off = k->len = 0;
			if (got < 0)
				return false;
			if (got == 0) {
				hparse_execute(&p, NULL, 0);
				return r->done;
			}
			k->len = (size_t)got;
		}
		n = hparse_execute(&p, k->buf + k->off, k->len - k->off);
		k->off += n;
		if (hparse_error(&p) != HPARSE_OK &&
		    hparse_error(&p) != HPARSE_PAUSED)
			return false;
	}
	return true;
}

/* Tells whether the peer closed (EOF) with nothing more to read. */
static bool at_eof(struct conn *k)
{
	char c;

	return k->off == k->len && recv(k->fd, &c, 1, 0) == 0;
}

static bool request(struct conn *k, const char *method, const char *path,
		    const char *extra, struct resp *r)
{
	char req[2048];

	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: gw\r\n%s\r\n",
		 method, path, extra ? extra : "");
	return send_str(k, req) &&
	       read_resp(k, strcmp(method, "HEAD") == 0, r);
}

static int body_port(const struct resp *r)
{
	const char *p = strstr(r->body, "port=");

	return p ? (int)strtol(p + 5, NULL, 10) : -1;
}

/* Loop-thread queries. */

struct q {
	const char *name;
	uint32_t u;
	int rc;
	struct gateway_counters k;
	const int *idx;
	size_t n;
};

static void q_inflight(struct env *e, void *arg)
{
	struct q *q = arg;

	q->u = gateway_instance_inflight(e->gw, q->name);
}

static uint32_t inflight(struct env *e, const char *id)
{
	struct q q = { .name = id };

	on_loop(e, q_inflight, &q);
	return q.u;
}

static void q_counters(struct env *e, void *arg)
{
	struct q *q = arg;

	q->rc = gateway_counters(e->gw, q->name, &q->k);
}

static void q_observed(struct env *e, void *arg)
{
	struct q *q = arg;

	q->u = e->observed;
	q->rc = (int)e->observed_5xx;
}

/* The observer hears of a request on the loop's thread shortly after the
 * gateway's thread ends it: waits up to 2 s for n of them. */
static void wait_observed(struct env *e, unsigned n, struct q *q)
{
	for (int i = 0; i < 200; i++) {
		on_loop(e, q_observed, q);
		if (q->u >= n)
			return;
		usleep(10000);
	}
}

static void q_routes(struct env *e, void *arg)
{
	struct q *q = arg;

	set_routes(e, q->name, "model-a", q->idx, q->n);
}

static void q_ups(struct env *e, void *arg)
{
	struct q *q = arg;

	q->u = e->ups[q->n].accepts;
}

static unsigned accepts(struct env *e, int i)
{
	struct q q = { .n = (size_t)i };

	on_loop(e, q_ups, &q);
	return q.u;
}

static void sleep_ms(unsigned ms)
{
	usleep(ms * 1000u);
}

/* Scenarios. */

static void sc_routing(struct env *e)
{
	struct conn *k = conn_open(e);
	struct resp *r = xmalloc(sizeof(*r));
	char want[64];
	const char *req =
		"POST /model-a HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n"
		"X-Request-Id: abc\r\nX-Forwarded-For: 10.0.0.1\r\n"
		"Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\n"
		"Keep-Alive: 5\r\nTE: trailers\r\nX-Other: 2\r\n\r\nhello";

	CHECK(k->fd >= 0);
	CHECK(request(k, "GET", "/ocid1.dep.one/predict?x=1&y=2", NULL, r));
	CHECK_INT(r->status, 200);
	CHECK_HAS(r->body, "url=/predict?x=1&y=2 ");
	snprintf(want, sizeof(want), "host=127.0.0.1:%d ", e->ups[0].port);
	CHECK_HAS(r->body, want);
	CHECK_HAS(r->body, "xff=127.0.0.1 ");
	CHECK(strstr(r->body, "rid= ") == NULL);
	CHECK(request(k, "GET", "http://gw/model-a/v1/models", NULL, r));
	CHECK_INT(r->status, 200);
	CHECK_HAS(r->body, "url=/v1/models ");

	CHECK(send_str(k, req) && read_resp(k, false, r));
	CHECK_INT(r->status, 200);
	CHECK_HAS(r->body, "method=POST url=/ host=");
	CHECK_HAS(r->body, "rid=abc ");
	CHECK_HAS(r->body, "xff=10.0.0.1, 127.0.0.1 ");
	CHECK_HAS(r->body, "x-other,");
	CHECK(strstr(r->body, "x-secret") == NULL);
	CHECK(strstr(r->body, "keep-alive,") == NULL);
	CHECK(strstr(r->body, "te,") == NULL);
	CHECK(strstr(r->body, "connection,") == NULL);
	CHECK_HAS(r->body, "len=5 ");
	/* The upstream's Keep-Alive header is hop-by-hop too. */
	CHECK(strstr(r->hdrs, "keep-alive") == NULL);

	/* A header Connection does not list goes on, even if it bears the
	 * name of a Connection option; one it lists does not. */
	CHECK(send_str(k, "GET /model-a HTTP/1.1\r\nHost: gw\r\n"
			  "Connection: Keep-Alive\r\nClose: 1\r\n\r\n") &&
	      read_resp(k, false, r));
	CHECK_INT(r->status, 200);
	CHECK_HAS(r->body, "close,");
	CHECK(send_str(k, "GET /model-a HTTP/1.1\r\nHost: gw\r\n"
			  "Keep-Alive: 1\r\nConnection: CLOSE\r\n"
			  "Close: 1\r\n\r\n") &&
	      read_resp(k, false, r));
	CHECK_INT(r->status, 200);
	CHECK(strstr(r->body, "close,") == NULL);
	CHECK(strstr(r->body, "keep-alive,") == NULL);
	free(r);
	conn_close(k);
}

static void test_routing(void **state)
{
	(void)state;
	run_in(env_new(), sc_routing, NULL);
}

/* An instance on another address than 127.0.0.1 (a pod's): listened on
 * and routed to on the loop. */
static void q_far_start(struct env *e, void *arg)
{
	struct ups *far = &e->far;
	struct sockaddr_in sa;
	struct gateway_upstream up = { "pod-0", 0, "127.0.1.7" };

	far->env = e;
	uv_ip4_addr("127.0.1.7", 0, &sa);
	uv_tcp_init(&e->loop, &far->listener);
	far->listener.data = far;
	if (uv_tcp_bind(&far->listener, (struct sockaddr *)&sa, 0) != 0 ||
	    uv_listen((uv_stream_t *)&far->listener, 8, uaccept_cb) != 0)
		return;
	far->port = tcp_port(&far->listener);
	up.port = (uint16_t)far->port;
	gateway_set_routes(e->gw, "pods", NULL, &up, 1);
}

static void q_far_stop(struct env *e, void *arg)
{
	(void)arg;
	gateway_remove(e->gw, "pods");
	uv_close((uv_handle_t *)&e->far.listener, NULL);
}

/* The checks of sc_pod_address(), which stops the instance whatever they
 * find (its listener open would keep the loop running). */
static void pod_address_checks(struct env *e, struct conn *k,
			       struct resp *r)
{
	char want[64];

	CHECK(e->far.port > 0);
	CHECK(request(k, "GET", "/pods/predict", NULL, r));
	CHECK_INT(r->status, 200);
	snprintf(want, sizeof(want), "host=127.0.1.7:%d ", e->far.port);
	CHECK_HAS(r->body, want);
	CHECK_INT(e->far.requests, 1);
}

static void sc_pod_address(struct env *e)
{
	struct conn *k = conn_open(e);
	struct resp *r = xmalloc(sizeof(*r));

	on_loop(e, q_far_start, NULL);
	pod_address_checks(e, k, r);
	conn_close(k);
	on_loop(e, q_far_stop, NULL);
	free(r);
}

static void test_pod_address(void **state)
{
	(void)state;
	run_in(env_new(), sc_pod_address, NULL);
}

static void sc_keepalive(struct env *e)
{
	struct resp *r = xmalloc(sizeof(*r));

	for (int round = 0; round < 3; round++) {
		struct conn *k = conn_open(e);

		for (int i = 0; i < 4; i++) {
			CHECK(request(k, "GET", "/ocid1.dep.one/x", NULL, r));
			CHECK_INT(r->status, 200);
			CHECK(!r->close);
		}
		conn_close(k);
	}
	/* Twelve requests over three client connections took one upstream
	 * connection in each worker that served them: the pool is a
	 * worker's own. */
	CHECK(accepts(e, 0) >= 1);
	CHECK(accepts(e, 0) <= gateway_threads(e->gw));
	free(r);
}

static void test_keepalive_reuse(void **state)
{
	(void)state;
	run_in(env_new(), sc_keepalive, NULL);
}

static void sc_spread(struct env *e)
{
	struct conn *k[6], *q;
	struct resp *r = xmalloc(sizeof(*r));
	int count[NUPS] = { 0 }, slow;
	static const int all[NUPS] = { 0, 1, 2 };
	struct q rq = { .name = "ocid1.dep.one", .idx = all, .n = NUPS };

	on_loop(e, q_routes, &rq);
	for (int i = 0; i < 6; i++) {
		k[i] = conn_open(e);
		CHECK(send_str(k[i], "GET /model-a/slow?ms=200 HTTP/1.1\r\n"
			       "Host: gw\r\n\r\n"));
	}
	for (int i = 0; i < 6; i++) {
		CHECK(read_resp(k[i], false, r));
		CHECK_INT(r->status, 200);
		for (int j = 0; j < NUPS; j++)
			count[j] += body_port(r) == e->ups[j].port;
		conn_close(k[i]);
	}
	for (int j = 0; j < NUPS; j++)
		CHECK_INT(count[j], 2);

	/* One instance busy with a slow request gets none of the quick
	 * ones while it is busy. */
	k[0] = conn_open(e);
	CHECK(send_str(k[0], "GET /model-a/slow?ms=400 HTTP/1.1\r\n"
		       "Host: gw\r\n\r\n"));
	for (int i = 0; i < 5000 && inflight(e, "i0") + inflight(e, "i1") +
						    inflight(e, "i2") == 0; i++)
		sleep_ms(1);
	slow = inflight(e, "i0") ? 0 : inflight(e, "i1") ? 1 : 2;
	q = conn_open(e);
	for (int i = 0; i < 6; i++) {
		CHECK(request(q, "GET", "/model-a/quick", NULL, r));
		CHECK(body_port(r) != e->ups[slow].port);
	}
	CHECK(read_resp(k[0], false, r));
	CHECK_INT(body_port(r), e->ups[slow].port);
	conn_close(k[0]);
	conn_close(q);
	free(r);
}

static void test_least_outstanding(void **state)
{
	(void)state;
	run_in(env_new(), sc_spread, NULL);
}

static void sc_upload(struct env *e)
{
	struct conn *k = conn_open(e);
	struct resp *r = xmalloc(sizeof(*r));
	const uint64_t size = 20u << 20;
	char *chunk = xmalloc(1 << 17), want[64];
	uint64_t off = 0;
	static const size_t sizes[] = { 1, 100, 4096, 65536, 777, 100000 };

	CHECK(send_str(k, "PUT /model-a/upload HTTP/1.1\r\nHost: gw\r\n"
		       "Content-Length: 20971520\r\n\r\n"));
	while (off < size) {
		size_t n = 65536;

		for (size_t i = 0; i < n; i++)
			chunk[i] = (char)pat(off + i);
		CHECK(send_all(k, chunk, n));
		off += n;
	}
	CHECK(read_resp(k, false, r));
	CHECK_INT(r->status, 200);
	snprintf(want, sizeof(want), "len=%" PRIu64 " sum=%016" PRIx64, size,
		 pat_sum(size));
	CHECK_HAS(r->body, want);

	/* Chunked, in odd sizes: re-chunked on the way, same bytes. */
	CHECK(send_str(k, "POST /model-a/upload HTTP/1.1\r\nHost: gw\r\n"
		       "Transfer-Encoding: chunked\r\n\r\n"));
	off = 0;
	for (int i = 0; off < (5u << 20); i++) {
		size_t n = sizes[i % 6];
		int h = snprintf(chunk, 32, "%zx\r\n", n);

		for (size_t j = 0; j < n; j++)
			chunk[h + (int)j] = (char)pat(off + j);
		memcpy(chunk + h + n, "\r\n", 2);
		CHECK(send_all(k, chunk, (size_t)h + n + 2));
		off += n;
	}
	CHECK(send_str(k, "0\r\n\r\n"));
	CHECK(read_resp(k, false, r));
	CHECK_INT(r->status, 200);
	CHECK_HAS(r->body, "te=chunked ");
	snprintf(want, sizeof(want), "len=%" PRIu64 " sum=%016" PRIx64, off,
		 pat_sum(off));
	CHECK_HAS(r->body, want);
	free(chunk);
	free(r);
	conn_close(k);
}

static void test_big_upload(void **state)
{
	(void)state;
	run_in(env_new(), sc_upload, NULL);
}

static void sc_download(struct env *e)
{
	struct conn *k = conn_open(e);
	struct resp *r = xmalloc(sizeof(*r));

	CHECK(request(k, "GET", "/model-a/big?size=8000000", NULL, r));
	CHECK_INT(r->status, 200);
	CHECK(r->chunked);
	CHECK_INT(r->len, 8000000);
	CHECK(r->sum == pat_sum(8000000));
	/* Close-delimited upstream body: chunked to an HTTP/1.1 client. */
	CHECK(request(k, "GET", "/model-a/eof?size=3000000", NULL, r));
	CHECK_INT(r->status, 200);
	CHECK(r->chunked);
	CHECK(r->sum == pat_sum(3000000));
	CHECK(!r->close);
	CHECK(request(k, "GET", "/model-a/after", NULL, r));
	CHECK_INT(r->status, 200);
	conn_close(k);

	/* HTTP/1.0: chunked is de-chunked, and the client is closed. */
	k = conn_open(e);
	CHECK(send_str(k, "GET /model-a/big?size=100000 HTTP/1.0\r\n\r\n"));
	CHECK(read_resp(k, false, r));
	CHECK_INT(r->status, 200);
	CHECK(!r->chunked);
	CHECK(r->sum == pat_sum(100000));
	CHECK(at_eof(k));
	conn_close(k);
	free(r);
}

static void test_big_download(void **state)
{
	(void)state;
	run_in(env_new(), sc_download, NULL);
}

static void sc_errors(struct env *e)
{
	struct conn *k = conn_open(e);
	struct resp *r = xmalloc(sizeof(*r));
	char *big = xmalloc(80000);

	CHECK(request(k, "GET", "/empty/predict", NULL, r));
	CHECK_INT(r->status, 503);
	CHECK_HAS(r->hdrs, "retry-after: 1\n");
	CHECK_HAS(r->hdrs, "content-type: application/json\n");
	CHECK_HAS(r->body, "{\"code\":\"NoReadyInstance\",\"message\":"
		  "\"deployment empty has no ready instance\"}");
	CHECK(request(k, "GET", "/nope/x", NULL, r));
	CHECK_INT(r->status, 404);
	CHECK_HAS(r->body, "\"code\":\"NotFound\"");
	CHECK(request(k, "GET", "/", NULL, r));
	CHECK_INT(r->status, 404);
	CHECK(send_str(k, "POST /dead/x HTTP/1.1\r\nHost: gw\r\n"
		       "Content-Length: 3\r\n\r\nabc"));
	CHECK(read_resp(k, false, r));
	CHECK_INT(r->status, 502);
	CHECK(request(k, "GET", "/dead/x", NULL, r));
	CHECK_INT(r->status, 502);
	CHECK_HAS(r->body, "BadGateway");
	conn_close(k);

	k = conn_open(e);
	CHECK(send_str(k, "GARBAGE\x01\r\n\r\n"));
	CHECK(read_resp(k, false, r));
	CHECK_INT(r->status, 400);
	CHECK(r->close);
	CHECK(at_eof(k));
	conn_close(k);

	k = conn_open(e);
	memset(big, 'a', 9000);
	memcpy(big, "GET /model-a/", 13);
	memcpy(big + 9000, " HTTP/1.1\r\n\r\n", 14);
	CHECK(send_str(k, big));
	CHECK(read_resp(k, false, r));
	CHECK_INT(r->status, 414);
	CHECK(at_eof(k));
	conn_close(k);

	k = conn_open(e);
	memset(big, 'b', 70100);
	memcpy(big, "GET /model-a/ HTTP/1.1\r\nX-Big: ", 31);
	memcpy(big + 70000, "\r\n\r\n", 5);
	CHECK(send_str(k, big));
	CHECK(read_resp(k, false, r));
	CHECK_INT(r->status, 431);
	conn_close(k);
	free(big);
	free(r);
}

static uint64_t sum(const uint64_t *v, size_t from, size_t to)
{
	uint64_t n = 0;

	for (size_t i = from; i < to; i++)
		n += v[i];
	return n;
}

static void test_errors(void **state)
{
	struct env *e = env_new();
	int dead = dead_port(e);
	struct gateway_upstream up = { "dead0", (uint16_t)dead, NULL };
	struct gateway_counters k;
	uint64_t codes[GATEWAY_STATUS_CODES];

	(void)state;
	/* No holding: a deployment without instances answers 503 at once. */
	gateway_set_hold(e->gw, &(struct gateway_hold){ 0 });
	assert_int_equal(gateway_set_routes(e->gw, "empty", NULL, NULL, 0), 0);
	assert_int_equal(gateway_set_routes(e->gw, "dead", NULL, &up, 1), 0);
	env_run(e, sc_errors);
	assert_int_equal(gateway_counters(e->gw, "empty", &k), 0);
	assert_int_equal(k.requests, 1);
	assert_int_equal(k.by_class[5], 1);
	assert_int_equal(k.proxy_errors, 1);
	assert_int_equal(gateway_counters(e->gw, "dead", &k), 0);
	assert_int_equal(k.requests, 2);
	assert_int_equal(k.by_class[5], 2);
	assert_int_equal(k.proxy_errors, 2);
	assert_int_equal(k.inflight, 0);
	/* By status: no ready instance is a 503; every 5xx has its code. */
	assert_int_equal(gateway_status_counts(e->gw, "empty", codes), 0);
	assert_int_equal(codes[503 - GATEWAY_STATUS_MIN], 1);
	assert_int_equal(sum(codes, 0, GATEWAY_STATUS_CODES), 1);
	assert_int_equal(gateway_status_counts(e->gw, "dead", codes), 0);
	assert_int_equal(sum(codes, 500 - GATEWAY_STATUS_MIN,
			     600 - GATEWAY_STATUS_MIN), 2);
	assert_int_equal(sum(codes, 0, GATEWAY_STATUS_CODES), 2);
	assert_int_equal(gateway_status_counts(e->gw, "nope", codes),
			 MDS_E_NOTFOUND);
	assert_int_equal(gateway_instance_inflight(e->gw, "dead0"), 0);
	assert_int_equal(gateway_counters(e->gw, "nope", &k), MDS_E_NOTFOUND);
	gateway_remove(e->gw, "dead");
	assert_int_equal(gateway_counters(e->gw, "dead", &k), MDS_E_NOTFOUND);
	env_free(e);
}

static void sc_retry(struct env *e)
{
	struct conn *k = conn_open(e);
	struct resp *r = xmalloc(sizeof(*r));

	for (int i = 0; i < 6; i++) {
		CHECK(request(k, "GET", "/retry/x", NULL, r));
		CHECK_INT(r->status, 200);
		CHECK_INT(body_port(r), e->ups[1].port);
	}
	conn_close(k);
	free(r);
}

/* Routes /retry to a dead instance first, then to the backend ups[1]. */
static void route_retry(struct env *e)
{
	struct gateway_upstream up[2] = {
		{ "dead0", (uint16_t)dead_port(e), NULL },
		{ "i1", (uint16_t)e->ups[1].port, NULL },
	};

	assert_int_equal(gateway_set_routes(e->gw, "retry", NULL, up, 2), 0);
}

static void test_retry_dead_instance(void **state)
{
	struct env *e = env_new();
	struct gateway_counters k;

	(void)state;
	route_retry(e);
	env_run(e, sc_retry);
	assert_int_equal(gateway_counters(e->gw, "retry", &k), 0);
	assert_int_equal(k.requests, 6);
	assert_int_equal(k.by_class[2], 6);
	assert_int_equal(k.proxy_errors, 0);
	env_free(e);
}

/* A POST that could not reach a dead instance (its connect failed) was
 * never sent: it goes to the next one, whatever the replay setting. */
static void sc_retry_post_never_sent(struct env *e)
{
	struct conn *k = conn_open(e);
	struct resp *r = xmalloc(sizeof(*r));

	for (int i = 0; i < 4; i++) {
		CHECK(send_str(k, "POST /retry/p HTTP/1.1\r\nHost: gw\r\n"
			       "Content-Length: 3\r\n\r\nxyz"));
		CHECK(read_resp(k, false, r));
		CHECK_INT(r->status, 200);
		CHECK_HAS(r->body, "len=3 ");
		CHECK_INT(body_port(r), e->ups[1].port);
	}
	conn_close(k);
	free(r);
}

static void test_retry_post_never_sent(void **state)
{
	struct env *e = env_new();
	struct gateway_counters k;

	(void)state;
	route_retry(e);
	env_run(e, sc_retry_post_never_sent);
	assert_int_equal(gateway_counters(e->gw, "retry", &k), 0);
	assert_int_equal(k.by_class[2], 4);
	assert_int_equal(k.proxy_errors, 0);
	env_free(e);
}

static void sc_replay(struct env *e)
{
	struct conn *k = conn_open(e);
	struct resp *r = xmalloc(sizeof(*r));

	CHECK(request(k, "GET", "/model-a/one", NULL, r));
	CHECK_INT(r->status, 200);
	CHECK(send_str(k, "POST /model-a/two HTTP/1.1\r\nHost: gw\r\n"
		       "Content-Length: 3\r\n\r\nxyz"));
	CHECK(read_resp(k, false, r));
	CHECK_INT(r->status, 200);
	CHECK_HAS(r->body, "url=/two ");
	CHECK_HAS(r->body, "len=3 ");
	CHECK_INT(accepts(e, 0), 2);
	conn_close(k);
	free(r);
}

/* A GET lost on a reused connection is sent again on a fresh one. */
static void sc_replay_get(struct env *e)
{
	struct conn *k = conn_open(e);
	struct resp *r = xmalloc(sizeof(*r));

	CHECK(request(k, "GET", "/model-a/one", NULL, r));
	CHECK_INT(r->status, 200);
	CHECK(request(k, "GET", "/model-a/two", NULL, r));
	CHECK_INT(r->status, 200);
	CHECK_HAS(r->body, "url=/two ");
	CHECK_INT(accepts(e, 0), 2);
	conn_close(k);
	free(r);
}

/* By default a POST that reached the instance is not sent again: it may
 * have run (a prediction, or anything else a POST does). */
static void sc_no_replay_post(struct env *e)
{
	struct conn *k = conn_open(e);
	struct resp *r = xmalloc(sizeof(*r));

	CHECK(request(k, "GET", "/model-a/one", NULL, r));
	CHECK_INT(r->status, 200);
	CHECK(send_str(k, "POST /model-a/two HTTP/1.1\r\nHost: gw\r\n"
		       "Content-Length: 3\r\n\r\nxyz"));
	CHECK(read_resp(k, false, r));
	CHECK_INT(r->status, 502);
	CHECK_HAS(r->body, "not replayed");
	CHECK_INT(accepts(e, 0), 1);
	conn_close(k);
	free(r);
}

static void test_retry_reused_connection(void **state)
{
	struct env *e = env_new();

	(void)state;
	e->ups[0].drop_second = true;
	env_run(e, sc_replay_get);
	env_free(e);
}

static void test_no_replay_of_post(void **state)
{
	struct env *e = env_new();

	(void)state;
	e->ups[0].drop_second = true;
	env_run(e, sc_no_replay_post);
	env_free(e);
}

/* A deployment whose handlers may run twice can ask for every replay. */
static void test_replay_all(void **state)
{
	struct env *e = env_new();

	(void)state;
	assert_int_equal(gateway_set_replay(e->gw, "no-such", GATEWAY_REPLAY_ALL),
			 MDS_E_NOTFOUND);
	assert_int_equal(gateway_set_replay(e->gw, "ocid1.dep.one",
					   GATEWAY_REPLAY_ALL),
			 0);
	e->ups[0].drop_second = true;
	env_run(e, sc_replay);
	env_free(e);
}

static void sc_drain(struct env *e)
{
	struct conn *a = conn_open(e), *b = conn_open(e);
	struct resp *r = xmalloc(sizeof(*r));
	static const int both[2] = { 0, 1 }, only0[1] = { 0 }, only1[1] = { 1 };
	struct q rq = { .name = "ocid1.dep.one", .idx = both, .n = 2 };
	int slow, other;

	on_loop(e, q_routes, &rq);
	CHECK(send_str(a, "GET /model-a/slow?ms=500 HTTP/1.1\r\nHost: gw\r\n"
		       "\r\n"));
	for (int i = 0; i < 5000 && inflight(e, "i0") + inflight(e, "i1") == 0;
	     i++)
		sleep_ms(1);
	slow = inflight(e, "i0") ? 0 : 1;
	other = 1 - slow;
	rq.idx = slow == 0 ? only1 : only0;
	rq.n = 1;
	on_loop(e, q_routes, &rq);
	for (int i = 0; i < 4; i++) {
		CHECK(request(b, "GET", "/model-a/quick", NULL, r));
		CHECK_INT(body_port(r), e->ups[other].port);
	}
	CHECK_INT(inflight(e, slow ? "i1" : "i0"), 1);
	CHECK(read_resp(a, false, r));
	CHECK_INT(r->status, 200);
	CHECK_INT(body_port(r), e->ups[slow].port);
	for (int i = 0; i < 1000 && inflight(e, slow ? "i1" : "i0") > 0; i++)
		sleep_ms(1);
	CHECK_INT(inflight(e, slow ? "i1" : "i0"), 0);
	/* The connection to the removed instance was not pooled. */
	CHECK(request(a, "GET", "/model-a/again", NULL, r));
	CHECK_INT(body_port(r), e->ups[other].port);
	conn_close(a);
	conn_close(b);
	free(r);
}

static void test_drain_removed_instance(void **state)
{
	struct env *e = env_new();
	struct gateway_counters k;

	(void)state;
	env_run(e, sc_drain);
	assert_int_equal(gateway_counters(e->gw, "ocid1.dep.one", &k), 0);
	assert_int_equal(k.requests, 6);
	assert_int_equal(k.by_class[2], 6);
	assert_int_equal(k.inflight, 0);
	env_free(e);
}

static void sc_head_pipeline(struct env *e)
{
	struct conn *k = conn_open(e);
	struct resp *r = xmalloc(sizeof(*r));
	static const char *const urls[] = { "/a", "/b?q=1", "/c", "/d" };

	CHECK(request(k, "HEAD", "/model-a/h", NULL, r));
	CHECK_INT(r->status, 200);
	CHECK_HAS(r->hdrs, "content-length: ");
	CHECK_INT(r->len, 0);
	CHECK(request(k, "GET", "/model-a/nocontent", NULL, r));
	CHECK_INT(r->status, 204);
	CHECK(request(k, "GET", "/model-a/after", NULL, r));
	CHECK_INT(r->status, 200);
	CHECK_HAS(r->body, "url=/after ");

	CHECK(send_str(k, "GET /model-a/a HTTP/1.1\r\nHost: gw\r\n\r\n"
		       "GET /model-a/b?q=1 HTTP/1.1\r\nHost: gw\r\n\r\n"
		       "HEAD /model-a/c HTTP/1.1\r\nHost: gw\r\n\r\n"
		       "POST /model-a/d HTTP/1.1\r\nHost: gw\r\n"
		       "Content-Length: 2\r\n\r\nhi"));
	for (int i = 0; i < 4; i++) {
		char want[64];

		CHECK(read_resp(k, i == 2, r));
		CHECK_INT(r->status, 200);
		if (i != 2) {
			snprintf(want, sizeof(want), "url=%s ", urls[i]);
			CHECK_HAS(r->body, want);
		}
	}
	CHECK_HAS(r->body, "len=2 ");
	conn_close(k);

	/* A client that half-closes after its request still gets the
	 * response, then the gateway closes too. */
	k = conn_open(e);
	CHECK(send_str(k, "GET /model-a/slow?ms=100 HTTP/1.1\r\nHost: gw\r\n"
		       "\r\n"));
	CHECK(shutdown(k->fd, SHUT_WR) == 0);
	CHECK(read_resp(k, false, r));
	CHECK_INT(r->status, 200);
	CHECK(at_eof(k));
	conn_close(k);
	free(r);
}

static void test_head_204_pipelined(void **state)
{
	(void)state;
	run_in(env_new(), sc_head_pipeline, NULL);
}

static void sc_counters(struct env *e)
{
	struct conn *k = conn_open(e);
	struct resp *r = xmalloc(sizeof(*r));
	struct q q = { .name = "ocid1.dep.one" };
	uint64_t sum = 0, hist = 0;

	for (int i = 0; i < 5; i++) {
		CHECK(request(k, "GET", "/model-a/x", NULL, r));
		CHECK_INT(r->status, 200);
	}
	CHECK(request(k, "GET", "/model-a/slow?ms=1000", NULL, r));
	CHECK_INT(r->status, 504);
	CHECK_HAS(r->body, "GatewayTimeout");
	CHECK(request(k, "GET", "/model-a/x", NULL, r));
	CHECK_INT(r->status, 200);
	on_loop(e, q_counters, &q);
	CHECK_INT(q.rc, 0);
	CHECK_INT(q.k.requests, 7);
	for (int i = 0; i < 6; i++)
		sum += q.k.by_class[i];
	for (int i = 0; i < GATEWAY_LAT_BUCKETS; i++)
		hist += q.k.latency_hist[i];
	CHECK_INT(sum, 7);
	CHECK_INT(hist, 7);
	CHECK_INT(q.k.by_class[2], 6);
	CHECK_INT(q.k.by_class[5], 1);
	CHECK_INT(q.k.proxy_errors, 1);
	/* The 504 took the 200 ms timeout, give or take the few ms of the
	 * loop's coarse clock that timers run on. */
	CHECK(q.k.latency_us_sum >= 180000);
	CHECK_INT(q.k.inflight, 0);
	wait_observed(e, 7, &q);
	CHECK_INT(q.u, 7);
	CHECK_INT(q.rc, 1);
	conn_close(k);
	free(r);
}

static void q_remove_one(struct env *e, void *arg)
{
	(void)arg;
	gateway_remove(e->gw, "ocid1.dep.one");
}

/* A worker sums a deployment's finished requests for the observer until its
 * timer fires: the sums of a deployment removed before then are observed
 * all the same, each request once. */
static void sc_observed_removed(struct env *e)
{
	struct conn *k = conn_open(e);
	struct resp *r = xmalloc(sizeof(*r));
	struct q q = { .name = "ocid1.dep.one" };

	for (int i = 0; i < 5; i++) {
		CHECK(request(k, "GET", "/model-a/x", NULL, r));
		CHECK_INT(r->status, 200);
	}
	on_loop(e, q_remove_one, NULL);
	CHECK(request(k, "GET", "/model-a/x", NULL, r));
	CHECK_INT(r->status, 404);
	wait_observed(e, 5, &q);
	CHECK_INT(q.u, 5);
	conn_close(k);
	free(r);
}

static void test_observed_removed(void **state)
{
	struct env *e = env_new();

	(void)state;
	e->observed_at_end = 5;
	run_in(e, sc_observed_removed, NULL);
}

/* The connection of the request in flight when the gateway closes. */
static struct conn *open_at_close;

/* Requests that ended just before the gateway closed, and one that ends as
 * it closes, are observed, each once. */
static void sc_observed_at_close(struct env *e)
{
	struct conn *slow = conn_open(e), *k = conn_open(e);
	struct resp *r = xmalloc(sizeof(*r));
	struct q q = { .name = "ocid1.dep.one" };

	CHECK(send_str(slow, "GET /model-a/slow?ms=5000 HTTP/1.1\r\n"
			     "Host: gw\r\n\r\n"));
	for (int i = 0; i < 200 && q.k.inflight == 0; i++) {
		on_loop(e, q_counters, &q);
		usleep(10000);
	}
	CHECK_INT(q.k.inflight, 1);
	for (int i = 0; i < 5; i++) {
		CHECK(request(k, "GET", "/model-a/x", NULL, r));
		CHECK_INT(r->status, 200);
	}
	open_at_close = slow;
	conn_close(k);
	free(r);
}

static void test_observed_at_close(void **state)
{
	struct env *e = env_new();

	(void)state;
	e->observed_at_end = 6;
	run_in(e, sc_observed_at_close, NULL);
	if (open_at_close != NULL)
		conn_close(open_at_close);
	open_at_close = NULL;
}

static void test_counters_and_timeout(void **state)
{
	(void)state;
	run_in(env_new(), sc_counters,
	       &(struct gateway_limits){ .response_timeout_ms = 200 });
}

/* The loop that forwarded a response: the first half of the X-Request-Id
 * it made, which each loop draws at random. */
static bool body_loop(const struct resp *r, char out[17])
{
	const char *p = strstr(r->body, "rid=");

	if (p == NULL || strspn(p + 4, "0123456789abcdef") != 32)
		return false;
	memcpy(out, p + 4, 16);
	out[16] = '\0';
	return true;
}

/* Returns the index of loop id in loops (adding it, up to two). */
static int loop_index(char loops[2][17], const char *id)
{
	for (int i = 0; i < 2; i++) {
		if (loops[i][0] == '\0')
			memcpy(loops[i], id, 17);
		if (strcmp(loops[i], id) == 0)
			return i;
	}
	return -1;
}

/* Serves a request on each of k[0..n), counting the loops that did (as
 * body_loop() tells them, in served, when not NULL); false at the first
 * that is not served. */
static bool serve_all(struct conn **k, int n, int served[2])
{
	struct resp *r = xmalloc(sizeof(*r));
	char loops[2][17] = { "", "" }, id[17];
	bool ok = true;

	for (int i = 0; ok && i < n; i++) {
		ok = request(k[i], "GET", "/model-a/x", NULL, r) &&
		     r->status == 200;
		if (ok && served != NULL) {
			int at = body_loop(r, id) ? loop_index(loops, id) : -1;

			ok = at >= 0;
			if (ok)
				served[at]++;
		}
	}
	free(r);
	return ok;
}

/* Reads the answer to the request each of k[0..n) sent, and closes it,
 * counting the loops that served them in served; false at the first that
 * is not a 200 of a loop's. */
static bool read_served(struct conn **k, int n, int served[2])
{
	struct resp *r = xmalloc(sizeof(*r));
	char loops[2][17] = { "", "" }, id[17];
	bool ok = true;

	for (int i = 0; i < n; i++) {
		int at = -1;

		if (ok && read_resp(k[i], false, r) && r->status == 200 &&
		    body_loop(r, id))
			at = loop_index(loops, id);
		ok = ok && at >= 0;
		if (at >= 0)
			served[at]++;
		conn_close(k[i]);
	}
	free(r);
	return ok;
}

/* Of k[0..n), how many serve a request (the others are closed). */
static int serving(struct conn **k, int n)
{
	int m = 0;

	for (int i = 0; i < n; i++)
		m += serve_all(&k[i], 1, NULL);
	return m;
}

/*
 * max_clients (2): two idle clients fill the slots; a third takes the place
 * of the one that waited longest on its loop, or is refused if its loop has
 * none waiting. With one loop, that is the first client.
 */
static void sc_max_clients(struct env *e)
{
	struct conn *k[3];

	k[0] = conn_open(e);
	k[1] = conn_open(e);
	CHECK(serve_all(k, 2, NULL));
	CHECK(serve_all(k, 2, NULL)); /* neither took the other's place */
	k[2] = conn_open(e);
	if (gateway_threads(e->gw) == 1) {
		CHECK(serve_all(&k[2], 1, NULL));
		CHECK(at_eof(k[0]));
		CHECK(serve_all(&k[1], 1, NULL));
	} else {
		CHECK_INT(serving(&k[2], 1) + serving(k, 2), 2);
	}
	for (int i = 0; i < 3; i++)
		conn_close(k[i]);
}

/* One address holds max_clients_per_addr (2) connections at most: a
 * third is closed at once. On IPv4 the limit is the address's own: a
 * client from 127.0.0.2 is still served. */
static void sc_per_addr(struct env *e)
{
	struct conn *a = conn_open(e), *b = conn_open(e), *c, *d = NULL;
	struct resp *r = xmalloc(sizeof(*r));

	CHECK(request(a, "GET", "/model-a/x", NULL, r));
	CHECK(request(b, "GET", "/model-a/x", NULL, r));
	c = conn_open(e);
	CHECK(at_eof(c));
	if (strchr(e->listen, ':') == NULL) {
		d = conn_open_from(e, "127.0.0.2");
		CHECK(d->fd >= 0);
		CHECK(request(d, "GET", "/model-a/x", NULL, r));
		CHECK_INT(r->status, 200);
	}
	CHECK(request(a, "GET", "/model-a/x", NULL, r));
	CHECK(r->status == 200);
	CHECK(request(b, "GET", "/model-a/x", NULL, r));
	CHECK(r->status == 200);
	if (d != NULL)
		conn_close(d);
	conn_close(c);
	conn_close(a);
	conn_close(b);
	free(r);
}

#define LIMIT_CONNS 16

/*
 * Two loops, max_clients LIMIT_CONNS: that many idle clients, spread over
 * both loops however the kernel chose, are all served and stay; one more
 * leaves exactly LIMIT_CONNS open. Each loop enforcing half the limit would
 * close some of the first ones unless the kernel split them evenly.
 */
static void sc_threads_max_clients(struct env *e)
{
	struct conn *k[LIMIT_CONNS + 1];
	int served[2] = { 0, 0 };

	for (int i = 0; i < LIMIT_CONNS; i++)
		k[i] = conn_open(e);
	CHECK(serve_all(k, LIMIT_CONNS, served));
	CHECK(served[0] > 0 && served[1] > 0);
	CHECK(serve_all(k, LIMIT_CONNS, NULL));
	k[LIMIT_CONNS] = conn_open(e);
	CHECK_INT(serving(&k[LIMIT_CONNS], 1) + serving(k, LIMIT_CONNS),
		  LIMIT_CONNS);
	for (int i = 0; i <= LIMIT_CONNS; i++)
		conn_close(k[i]);
}

/* Two loops, max_clients_per_addr LIMIT_CONNS: as many from one address
 * are all served, one more is refused, and the first ones stay. */
static void sc_threads_per_addr(struct env *e)
{
	struct conn *k[LIMIT_CONNS + 1];
	int served[2] = { 0, 0 };

	for (int i = 0; i < LIMIT_CONNS; i++)
		k[i] = conn_open(e);
	CHECK(serve_all(k, LIMIT_CONNS, served));
	CHECK(served[0] > 0 && served[1] > 0);
	k[LIMIT_CONNS] = conn_open(e);
	CHECK(at_eof(k[LIMIT_CONNS]));
	CHECK(serve_all(k, LIMIT_CONNS, NULL));
	for (int i = 0; i <= LIMIT_CONNS; i++)
		conn_close(k[i]);
}

/* A head that trickles in gets 408 at its deadline, however steadily its
 * bytes come (each of them used to restart the idle timer). */
static void sc_slow_head(struct env *e)
{
	struct conn *k = conn_open(e), *ok;
	struct resp *r = xmalloc(sizeof(*r));
	char line[32];

	CHECK(send_str(k, "GET /model-a/x HTTP/1.1\r\nHost: gw\r\n"));
	for (int i = 0; i < 12; i++) {
		sleep_ms(50);
		snprintf(line, sizeof(line), "X-%d: y\r\n", i);
		(void)send(k->fd, line, strlen(line), MSG_NOSIGNAL);
	}
	CHECK(read_resp(k, false, r));
	CHECK(r->status == 408);
	CHECK(at_eof(k));
	/* Others are served meanwhile and after. */
	ok = conn_open(e);
	CHECK(request(ok, "GET", "/model-a/x", NULL, r));
	CHECK(r->status == 200);
	conn_close(ok);
	conn_close(k);
	free(r);
}

/* Sends as much as the peers take without blocking for 300 ms. */
static uint64_t send_until_stuck(struct conn *k, uint64_t off, uint64_t end)
{
	char chunk[65536];
	int idle = 0;

	while (off < end && idle < 30) {
		size_t n = end - off < sizeof(chunk) ? (size_t)(end - off)
						     : sizeof(chunk);
		ssize_t w;

		for (size_t i = 0; i < n; i++)
			chunk[i] = (char)pat(off + i);
		w = send(k->fd, chunk, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0) {
			off += (uint64_t)w;
			idle = 0;
		} else {
			sleep_ms(10);
			idle++;
		}
	}
	return off;
}

static void q_up_queue(struct env *e, void *arg)
{
	struct q *q = arg;

	q->u = 0;
	for (struct uconn *u = e->conns; u != NULL; u = u->next)
		q->u += (uint32_t)uv_stream_get_write_queue_size(
			(uv_stream_t *)&u->tcp);
}

static void sc_backpressure(struct env *e)
{
	struct conn *k = conn_open(e);
	struct resp *r = xmalloc(sizeof(*r));
	const uint64_t size = 128u << 20;
	uint64_t sent;
	char want[64];
	struct q q = { 0 };

	/* The upstream stops reading: the gateway must stop reading us
	 * after about QUEUE_HIGH, leaving only socket buffers filling. */
	CHECK(send_str(k, "PUT /model-a/stall?ms=1500 HTTP/1.1\r\nHost: gw\r\n"
		       "Content-Length: 134217728\r\n\r\n"));
	sent = send_until_stuck(k, 0, size);
	print_message("stalled after %" PRIu64 " bytes\n", sent);
	CHECK(sent < 64u << 20);
	while (sent < size)
		sent = send_until_stuck(k, sent, size);
	CHECK(read_resp(k, false, r));
	CHECK_INT(r->status, 200);
	snprintf(want, sizeof(want), "len=%" PRIu64 " sum=%016" PRIx64, size,
		 pat_sum(size));
	CHECK_HAS(r->body, want);

	/* We stop reading the response: the upstream is left holding most
	 * of a 128 MiB body in its write queue. */
	CHECK(send_str(k, "GET /model-a/big?size=134217728 HTTP/1.1\r\n"
		       "Host: gw\r\n\r\n"));
	sleep_ms(1000);
	on_loop(e, q_up_queue, &q);
	print_message("upstream still queues %u bytes\n", q.u);
	CHECK(q.u > 64u << 20);
	CHECK(read_resp(k, false, r));
	CHECK_INT(r->status, 200);
	CHECK(r->len == size);
	CHECK(r->sum == pat_sum(size));
	conn_close(k);
	free(r);
}

static void test_backpressure(void **state)
{
	(void)state;
	run_in(env_new(), sc_backpressure, NULL);
}

/* The gateway closes with a request in flight and a client waiting. */
static void sc_close_busy(struct env *e)
{
	struct conn *k = conn_open(e);

	CHECK(send_str(k, "POST /model-a/slow?ms=3000 HTTP/1.1\r\nHost: gw\r\n"
		       "Content-Length: 10\r\n\r\n12345"));
	for (int i = 0; i < 5000 && inflight(e, "i0") == 0; i++)
		sleep_ms(1);
	CHECK_INT(inflight(e, "i0"), 1);
	conn_close(k);
}

static void test_close_busy(void **state)
{
	(void)state;
	run_in(env_new(), sc_close_busy, NULL);
}

static void test_max_clients(void **state)
{
	(void)state;
	run_in(env_new(), sc_max_clients,
	       &(struct gateway_limits){ .max_clients = 2 });
}

static void test_per_addr(void **state)
{
	(void)state;
	run_in(env_new(), sc_per_addr,
	       &(struct gateway_limits){ .max_clients_per_addr = 2 });
}

/* The same limit on a gateway listening on IPv6 (::1), over two
 * workers. */
static void test_per_addr_ipv6(void **state)
{
	(void)state;
	run_in(env_new_at("::1", 2), sc_per_addr,
	       &(struct gateway_limits){ .max_clients_per_addr = 2 });
}

static void test_slow_head(void **state)
{
	(void)state;
	run_in(env_new(), sc_slow_head,
	       &(struct gateway_limits){ .head_timeout_ms = 300 });
}

/*
 * The owner's loop stuck (as in a long SQLite write) does not hold up the
 * gateway: requests to an instance that runs outside that loop (a thread
 * with blocking sockets) are answered while it is.
 */
struct plain_ups {
	int fd, port;
	unsigned served;
};

static void plain_ups_main(void *arg)
{
	struct plain_ups *p = arg;
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	int c;

	while ((c = accept(p->fd, NULL, NULL)) >= 0) {
		char in[4096];
		size_t have = 0;
		ssize_t n;

		while ((n = read(c, in + have, sizeof(in) - 1 - have)) > 0) {
			char *end;

			have += (size_t)n;
			in[have] = '\0';
			while ((end = strstr(in, "\r\n\r\n")) != NULL) {
				size_t used = (size_t)(end + 4 - in);

				if (write(c, ok, sizeof(ok) - 1) < 0)
					break;
				p->served++;
				memmove(in, in + used, have - used + 1);
				have -= used;
			}
		}
		close(c);
	}
}

struct blocker {
	uv_mutex_t mu;
	uv_cond_t cond;
	struct env *e;
	bool started, released, timed_out;
};

static void block_fn(struct env *e, void *arg)
{
	struct blocker *b = arg;

	(void)e;
	uv_mutex_lock(&b->mu);
	b->started = true;
	uv_cond_broadcast(&b->cond);
	while (!b->released && !b->timed_out)
		b->timed_out = uv_cond_timedwait(&b->cond, &b->mu,
						 5000000000ull) != 0;
	uv_mutex_unlock(&b->mu);
}

static void blocker_main(void *arg)
{
	struct blocker *b = arg;

	on_loop(b->e, block_fn, b);
}

static void q_plain_routes(struct env *e, void *arg)
{
	struct gateway_upstream up = { "plain0", (uint16_t)*(int *)arg, NULL };

	assert_int_equal(gateway_set_routes(e->gw, "plain", NULL, &up, 1), 0);
}

static void q_plain_remove(struct env *e, void *arg)
{
	(void)arg;
	gateway_remove(e->gw, "plain");
}

static void sc_owner_blocked(struct env *e)
{
	struct plain_ups p = { .fd = socket(AF_INET, SOCK_STREAM, 0) };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	struct blocker b = { .e = e };
	struct resp *r = xmalloc(sizeof(*r));
	struct conn *k = conn_open(e);
	uv_thread_t ut, bt;
	int ok = 0;
	bool blocked;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(p.fd >= 0 && bind(p.fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	      listen(p.fd, 8) == 0 &&
	      getsockname(p.fd, (struct sockaddr *)&sa, &len) == 0);
	p.port = ntohs(sa.sin_port);
	on_loop(e, q_plain_routes, &p.port);
	uv_mutex_init(&b.mu);
	uv_cond_init(&b.cond);
	CHECK(uv_thread_create(&ut, plain_ups_main, &p) == 0);
	CHECK(uv_thread_create(&bt, blocker_main, &b) == 0);
	uv_mutex_lock(&b.mu);
	while (!b.started)
		uv_cond_wait(&b.cond, &b.mu);
	uv_mutex_unlock(&b.mu);
	/* The owner's loop is stuck in block_fn from here. */
	for (int i = 0; i < 50; i++)
		if (request(k, "GET", "/plain/x", NULL, r) && r->status == 200)
			ok++;
	uv_mutex_lock(&b.mu);
	blocked = !b.timed_out;
	b.released = true;
	uv_cond_broadcast(&b.cond);
	uv_mutex_unlock(&b.mu);
	uv_thread_join(&bt);
	/* Unrouted, the instance's pooled connection closes, and then the
	 * listener. */
	on_loop(e, q_plain_remove, NULL);
	shutdown(p.fd, SHUT_RDWR);
	conn_close(k);
	uv_thread_join(&ut);
	close(p.fd);
	uv_cond_destroy(&b.cond);
	uv_mutex_destroy(&b.mu);
	free(r);
	CHECK_INT(ok, 50);
	CHECK(blocked);
	CHECK_INT(p.served, 50);
}

static void test_owner_loop_blocked(void **state)
{
	(void)state;
	run_in(env_new(), sc_owner_blocked, NULL);
}

/* Threads. */

#define THREAD_CONNS 32

static void sc_threads_spread(struct env *e)
{
	struct resp *r = xmalloc(sizeof(*r));
	char loops[2][17] = { "", "" }, id[17];
	int served[2] = { 0, 0 };
	struct q q = { .name = "ocid1.dep.one" };

	/* One request per connection: the kernel spreads the connections
	 * over the two listening sockets. */
	for (int i = 0; i < THREAD_CONNS; i++) {
		struct conn *k = conn_open(e);
		int at;

		CHECK(request(k, "GET", "/model-a/x", NULL, r));
		CHECK_INT(r->status, 200);
		CHECK(body_loop(r, id));
		at = loop_index(loops, id);
		CHECK(at >= 0); /* no third loop */
		served[at]++;
		conn_close(k);
	}
	CHECK(served[0] > 0 && served[1] > 0);
	/* The counters and the observer see both loops' requests. */
	on_loop(e, q_counters, &q);
	CHECK_INT(q.rc, 0);
	CHECK_INT(q.k.requests, THREAD_CONNS);
	CHECK_INT(q.k.by_class[2], THREAD_CONNS);
	wait_observed(e, THREAD_CONNS, &q);
	CHECK_INT(q.u, THREAD_CONNS);
	free(r);
}

static void test_threads_spread(void **state)
{
	(void)state;
	run_in(env_new_threads(2), sc_threads_spread, NULL);
}

/*
 * A slow request in flight on one loop keeps the quick requests of the
 * other loop away from its instance: the outstanding counts are shared.
 */
static void sc_threads_least_outstanding(struct env *e)
{
	struct resp *r = xmalloc(sizeof(*r));
	char loops[2][17] = { "", "" }, id[17];
	static const int both[2] = { 0, 1 };
	struct q rq = { .name = "ocid1.dep.one", .idx = both, .n = 2 };
	struct conn *slow_k = NULL, *k;
	int slow, slow_loop, other_quick = 0;

	on_loop(e, q_routes, &rq);
	/* A connection, and which loop serves it. */
	slow_k = conn_open(e);
	CHECK(request(slow_k, "GET", "/model-a/first", NULL, r));
	CHECK(body_loop(r, id));
	slow_loop = loop_index(loops, id);
	CHECK(send_str(slow_k, "GET /model-a/slow?ms=1500 HTTP/1.1\r\n"
		       "Host: gw\r\n\r\n"));
	for (int i = 0; i < 5000 && inflight(e, "i0") + inflight(e, "i1") == 0;
	     i++)
		sleep_ms(1);
	slow = inflight(e, "i0") ? 0 : 1;
	/* Quick requests on new connections until some were served by the
	 * other loop: none goes to the busy instance, whichever loop. */
	for (int i = 0; i < 64 && other_quick < 4; i++) {
		k = conn_open(e);
		CHECK(request(k, "GET", "/model-a/quick", NULL, r));
		CHECK_INT(r->status, 200);
		CHECK(body_port(r) != e->ups[slow].port);
		CHECK(body_loop(r, id));
		other_quick += loop_index(loops, id) != slow_loop;
		conn_close(k);
	}
	CHECK_INT(other_quick, 4);
	CHECK(read_resp(slow_k, false, r));
	CHECK_INT(body_port(r), e->ups[slow].port);
	conn_close(slow_k);
	free(r);
}

static void test_threads_least_outstanding(void **state)
{
	(void)state;
	run_in(env_new_threads(2), sc_threads_least_outstanding, NULL);
}

#define DRAIN_CONNS 16

/*
 * Draining across loops: slow requests on one instance from connections on
 * both loops; once the instance is out of the routes, its in-flight count
 * is the exact sum over both loops until the last one ends.
 */
static void sc_threads_drain(struct env *e)
{
	struct resp *r = xmalloc(sizeof(*r));
	char loops[2][17] = { "", "" }, id[17];
	struct conn *k[DRAIN_CONNS];
	static const int only0[1] = { 0 }, only1[1] = { 1 };
	struct q rq = { .name = "ocid1.dep.one", .idx = only0, .n = 1 };
	int served[2] = { 0, 0 };

	on_loop(e, q_routes, &rq);
	for (int i = 0; i < DRAIN_CONNS; i++) {
		k[i] = conn_open(e);
		CHECK(send_str(k[i], "GET /model-a/slow?ms=800 HTTP/1.1\r\n"
			       "Host: gw\r\n\r\n"));
	}
	for (int i = 0; i < 5000 && inflight(e, "i0") < DRAIN_CONNS; i++)
		sleep_ms(1);
	CHECK_INT(inflight(e, "i0"), DRAIN_CONNS);
	rq.idx = only1;
	on_loop(e, q_routes, &rq);
	CHECK_INT(inflight(e, "i0"), DRAIN_CONNS);
	for (int i = 0; i < DRAIN_CONNS; i++) {
		int at;

		CHECK(read_resp(k[i], false, r));
		CHECK_INT(r->status, 200);
		CHECK_INT(body_port(r), e->ups[0].port);
		CHECK(body_loop(r, id));
		at = loop_index(loops, id);
		CHECK(at >= 0);
		served[at]++;
		conn_close(k[i]);
	}
	/* Both loops had some of them in flight. */
	CHECK(served[0] > 0 && served[1] > 0);
	for (int i = 0; i < 1000 && inflight(e, "i0") > 0; i++)
		sleep_ms(1);
	CHECK_INT(inflight(e, "i0"), 0);
	k[0] = conn_open(e);
	CHECK(request(k[0], "GET", "/model-a/after", NULL, r));
	CHECK_INT(body_port(r), e->ups[1].port);
	conn_close(k[0]);
	free(r);
}

static void test_threads_drain(void **state)
{
	(void)state;
	run_in(env_new_threads(2), sc_threads_drain, NULL);
}

static void q_at_zero(struct env *e, void *arg)
{
	(void)arg;
	set_routes(e, "ocid1.dep.one", "model-a", NULL, 0);
	gateway_set_holdable(e->gw, "ocid1.dep.one", true);
}

#define HELD_CONNS 16

/* Held requests on both loops, counted once each, all forwarded when an
 * instance comes. */
static void sc_threads_hold(struct env *e)
{
	struct conn *k[HELD_CONNS];
	static const int only0[1] = { 0 };
	struct q rq = { .name = "ocid1.dep.one", .idx = only0, .n = 1 };
	struct q q = { .name = "ocid1.dep.one" };
	int served[2] = { 0, 0 };

	on_loop(e, q_at_zero, NULL);
	for (int i = 0; i < HELD_CONNS; i++) {
		k[i] = conn_open(e);
		CHECK(send_str(k[i], "GET /model-a/held HTTP/1.1\r\n"
			       "Host: gw\r\n\r\n"));
	}
	for (int i = 0; i < 5000; i++) {
		on_loop(e, q_counters, &q);
		if (q.k.held == HELD_CONNS)
			break;
		sleep_ms(1);
	}
	CHECK_INT(q.k.held, HELD_CONNS);
	CHECK_INT(q.k.held_done, 0);
	on_loop(e, q_routes, &rq);
	CHECK(read_served(k, HELD_CONNS, served));
	CHECK(served[0] > 0 && served[1] > 0);
	on_loop(e, q_counters, &q);
	CHECK_INT(q.k.held, HELD_CONNS);
	CHECK_INT(q.k.held_done, HELD_CONNS);
	CHECK_INT(q.k.requests, HELD_CONNS);
}

static void test_threads_hold(void **state)
{
	(void)state;
	run_in(env_new_threads(2), sc_threads_hold, NULL);
}

/* The hold limits of the next sc_threads_hold_limit(), and the reason its
 * 503 names. */
static struct gateway_hold hold_limit;
static const char *hold_why;

/* A request to hold: HELD_PAD bytes of a header make the most of its
 * size, which the gateway counts as a little less than its length (the
 * head without its punctuation), so that LIMIT_CONNS * HELD_LEN bytes hold
 * LIMIT_CONNS of them and no more. */
#define HELD_PAD 1000
#define HELD_LEN (sizeof("GET /model-a/held HTTP/1.1\r\nHost: gw\r\n" \
			 "X-Pad: \r\n\r\n") - 1 + HELD_PAD)

static const char *held_head(void)
{
	static char head[HELD_LEN + 1];

	if (head[0] == '\0')
		snprintf(head, sizeof(head), "GET /model-a/held HTTP/1.1\r\n"
			 "Host: gw\r\nX-Pad: %0*d\r\n\r\n", HELD_PAD, 0);
	return head;
}

static void q_hold(struct env *e, void *arg)
{
	(void)arg;
	gateway_set_hold(e->gw, &hold_limit);
}

/* Waits until the deployment's held_done counter is at least n; returns
 * its held counter then. */
static uint64_t held_until(struct env *e, uint64_t held, uint64_t done)
{
	struct q q = { .name = "ocid1.dep.one" };

	for (int i = 0; i < 5000; i++) {
		on_loop(e, q_counters, &q);
		if (q.k.held >= held && q.k.held_done >= done)
			break;
		sleep_ms(1);
	}
	return q.rc == 0 && q.k.held_done >= done ? q.k.held : 0;
}

/* Sends a request to hold on each of k[0..n), new connections. */
static bool hold_open(struct env *e, struct conn **k, int n)
{
	bool ok = true;

	for (int i = 0; i < n; i++) {
		k[i] = conn_open(e);
		ok = ok && send_str(k[i], held_head());
	}
	return ok;
}

/*
 * Two loops, a hold limit (hold_limit) reached at LIMIT_CONNS requests or
 * their bytes: that many are held, over both loops however the kernel
 * spread them, and one more is answered 503 naming the limit (hold_why).
 * Each way out of the queue gives its room back: routed to an instance,
 * the client gone, the deployment removed.
 */
static void sc_threads_hold_limit(struct env *e)
{
	struct resp *r = xmalloc(sizeof(*r));
	struct conn *k[LIMIT_CONNS + 1];
	static const int only0[1] = { 0 };
	struct q rq = { .name = "ocid1.dep.one", .idx = only0, .n = 1 };
	int served[2] = { 0, 0 };
	const uint64_t n = LIMIT_CONNS;

	on_loop(e, q_hold, NULL);
	on_loop(e, q_at_zero, NULL);
	CHECK(hold_open(e, k, LIMIT_CONNS));
	CHECK_INT(held_until(e, n, 0), n);
	CHECK(hold_open(e, &k[LIMIT_CONNS], 1));
	CHECK(read_resp(k[LIMIT_CONNS], false, r));
	CHECK_INT(r->status, 503);
	CHECK_HAS(r->body, hold_why);
	conn_close(k[LIMIT_CONNS]);
	/* Routed. */
	on_loop(e, q_routes, &rq);
	CHECK(read_served(k, LIMIT_CONNS, served));
	CHECK(served[0] > 0 && served[1] > 0);
	/* The clients gone. */
	on_loop(e, q_at_zero, NULL);
	CHECK(hold_open(e, k, LIMIT_CONNS));
	CHECK_INT(held_until(e, 2 * n, n), 2 * n);
	for (int i = 0; i < LIMIT_CONNS; i++)
		conn_close(k[i]);
	CHECK_INT(held_until(e, 2 * n, 2 * n), 2 * n);
	/* The deployment removed, and made again. */
	CHECK(hold_open(e, k, LIMIT_CONNS));
	CHECK_INT(held_until(e, 3 * n, 2 * n), 3 * n);
	on_loop(e, q_remove_one, NULL);
	for (int i = 0; i < LIMIT_CONNS; i++) {
		CHECK(read_resp(k[i], false, r));
		CHECK_INT(r->status, 404);
		conn_close(k[i]);
	}
	on_loop(e, q_at_zero, NULL);
	CHECK(hold_open(e, k, LIMIT_CONNS));
	CHECK_INT(held_until(e, n, 0), n);
	on_loop(e, q_routes, &rq);
	for (int i = 0; i < LIMIT_CONNS; i++) {
		CHECK(read_resp(k[i], false, r));
		CHECK_INT(r->status, 200);
		conn_close(k[i]);
	}
	free(r);
}

static void hold_limit_test(const struct gateway_hold *h, const char *why)
{
	hold_limit = *h;
	hold_why = why;
	run_in(env_new_threads(2), sc_threads_hold_limit, NULL);
}

static void test_threads_hold_requests(void **state)
{
	(void)state;
	hold_limit_test(&(struct gateway_hold){
				.max_requests = LIMIT_CONNS,
				.max_bytes = 1u << 20,
				.max_requests_total = 1000,
				.max_bytes_total = 1u << 20,
				.timeout_ms = 60000,
			},
			"limit of requests held for this deployment");
}

static void test_threads_hold_requests_total(void **state)
{
	(void)state;
	hold_limit_test(&(struct gateway_hold){
				.max_requests = 1000,
				.max_bytes = 1u << 20,
				.max_requests_total = LIMIT_CONNS,
				.max_bytes_total = 1u << 20,
				.timeout_ms = 60000,
			},
			"limit of requests held in total");
}

static void test_threads_hold_bytes(void **state)
{
	(void)state;
	hold_limit_test(&(struct gateway_hold){
				.max_requests = 1000,
				.max_bytes = LIMIT_CONNS *
					     HELD_LEN,
				.max_requests_total = 1000,
				.max_bytes_total = 1u << 20,
				.timeout_ms = 60000,
			},
			"limit of bytes held for this deployment");
}

static void test_threads_hold_bytes_total(void **state)
{
	(void)state;
	hold_limit_test(&(struct gateway_hold){
				.max_requests = 1000,
				.max_bytes = 1u << 20,
				.max_requests_total = 1000,
				.max_bytes_total = LIMIT_CONNS *
						   HELD_LEN,
				.timeout_ms = 60000,
			},
			"limit of bytes held in total");
}

/* Each limit in a few gateways: each loop enforcing a share of it passes
 * only when the kernel happens to split the connections evenly. */
#define LIMIT_RUNS 3

static void test_threads_max_clients(void **state)
{
	(void)state;
	run_in(env_new_threads(2), sc_max_clients,
	       &(struct gateway_limits){ .max_clients = 2 });
	for (int i = 0; i < LIMIT_RUNS; i++)
		run_in(env_new_threads(2), sc_threads_max_clients,
		       &(struct gateway_limits){
			       .max_clients = LIMIT_CONNS });
}

static void test_threads_per_addr(void **state)
{
	(void)state;
	run_in(env_new_threads(2), sc_per_addr,
	       &(struct gateway_limits){ .max_clients_per_addr = 2 });
	for (int i = 0; i < LIMIT_RUNS; i++)
		run_in(env_new_threads(2), sc_threads_per_addr,
		       &(struct gateway_limits){
			       .max_clients_per_addr = LIMIT_CONNS });
}

static void test_set_routes_args(void **state)
{
	struct env *e = env_new();
	struct gateway_upstream bad = { NULL, 1, NULL };
	struct gateway_upstream badhost = { "h0", 1, "10.0.0.300" };
	char diag[128];
	struct gateway *gw2;

	(void)state;
	assert_int_equal(gateway_set_routes(e->gw, "", NULL, NULL, 0),
			 MDS_E_INVAL);
	assert_int_equal(gateway_set_routes(e->gw, "x", NULL, &bad, 1),
			 MDS_E_INVAL);
	assert_int_equal(gateway_set_routes(e->gw, "x", NULL, &badhost, 1),
			 MDS_E_INVAL);
	assert_int_equal(gateway_start(&e->loop, "not-an-ip", 0, &gw2, diag,
				       sizeof(diag)), MDS_E_INVAL);
	assert_non_null(strstr(diag, "not-an-ip"));
	assert_null(gw2);
	/* A port in use: the half-made gateway is released at once. */
	assert_int_equal(gateway_start(&e->loop, "127.0.0.1", e->gw_port, &gw2,
				       diag, sizeof(diag)), MDS_E_SYS);
	assert_non_null(strstr(diag, "address already in use"));
	assert_null(gw2);
	env_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routing),
		cmocka_unit_test(test_pod_address),
		cmocka_unit_test(test_keepalive_reuse),
		cmocka_unit_test(test_least_outstanding),
		cmocka_unit_test(test_big_upload),
		cmocka_unit_test(test_big_download),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_retry_dead_instance),
		cmocka_unit_test(test_retry_reused_connection),
		cmocka_unit_test(test_no_replay_of_post),
		cmocka_unit_test(test_retry_post_never_sent),
		cmocka_unit_test(test_replay_all),
		cmocka_unit_test(test_drain_removed_instance),
		cmocka_unit_test(test_head_204_pipelined),
		cmocka_unit_test(test_counters_and_timeout),
		cmocka_unit_test(test_observed_removed),
		cmocka_unit_test(test_observed_at_close),
		cmocka_unit_test(test_owner_loop_blocked),
		cmocka_unit_test(test_max_clients),
		cmocka_unit_test(test_per_addr),
		cmocka_unit_test(test_per_addr_ipv6),
		cmocka_unit_test(test_slow_head),
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_close_busy),
		cmocka_unit_test(test_set_routes_args),
		cmocka_unit_test(test_threads_spread),
		cmocka_unit_test(test_threads_least_outstanding),
		cmocka_unit_test(test_threads_drain),
		cmocka_unit_test(test_threads_hold),
		cmocka_unit_test(test_threads_hold_requests),
		cmocka_unit_test(test_threads_hold_requests_total),
		cmocka_unit_test(test_threads_hold_bytes),
		cmocka_unit_test(test_threads_hold_bytes_total),
		cmocka_unit_test(test_threads_max_clients),
		cmocka_unit_test(test_threads_per_addr),
	};

	log_set_level("error");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
