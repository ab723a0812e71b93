/*
 * server.c - mdscale-model-server: the digits MLP behind HTTP/1.1.
 *
 *   GET  /health   200 {"status":"ok"}, or 503 {"status":"loading"} while
 *                  --load-delay-ms has not yet passed
 *   POST /predict  {"instances": [[64 pixels 0..16], ...]} (1..64 of them)
 *                  -> {"predictions":[...],"probabilities":[[10]...],
 *                      "cached":[...]}
 *   GET  /stats    requests, cache entries and hits, resident memory
 *
 * Errors are JSON too: {"error":"<code>","message":"<what is wrong>"}.
 *
 * Threads: --threads N runs N libuv loops, each accepting on its own
 * SO_REUSEPORT socket, so the kernel spreads connections over them. A
 * connection stays on one thread and is served one request at a time:
 * after a request the parser pauses and reading stops until the response is
 * written, so pipelined requests are answered in order and a client that
 * does not read its responses cannot make us buffer more than one read.
 *
 * Cost: with --tta on (the default) every instance runs the network nine
 * times, on the image and its eight one-pixel shifts, and averages the
 * probabilities: 9 x 84,480 multiply-adds. Measured on the development
 * machine (x86-64, gcc 12, meson debugoptimized = -O2, one thread) as the
 * server's own user+system CPU time over 20,000 keep-alive POSTs of one
 * instance each: 0.51 ms a request for new inputs with TTA, 0.10 ms with
 * --tta off, 0.04 ms on a cache hit. So an instance held to a quarter of a
 * CPU saturates near 490 requests per second of distinct inputs.
 *
 * Memory: each thread has an LRU cache keyed by the exact 64 input values
 * that keeps the input, both hidden layers and the output (about 2.4 KB an
 * entry) so a repeated input skips the network. --cache-entries is the
 * total, split evenly over the threads (rounded up); entries are allocated
 * as distinct inputs arrive, so resident memory grows with traffic up to
 * that bound (20,000 entries: about 50 MB).
 *
 * Shutdown: SIGTERM or SIGINT closes the listeners at once. An idle
 * keep-alive connection may already hold a request the client sent before
 * it could know (in our socket buffer, or still on its way), and closing
 * it would lose that request (and reset the connection), so idle
 * connections are still read for SRV_IDLE_GRACE_MS; then those with
 * nothing to read are closed. Every request answered from the signal on,
 * and those in progress, get Connection: close; they have up to
 * SRV_DRAIN_MS in all. Then the server exits 0.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "http/hparse.h"
#include "mlp.h"
#include "util/err.h"
#include "util/htab.h"
#include "util/xalloc.h"

#define SRV_MAX_BODY (1u << 20)
#define SRV_MAX_URL 2048
#define SRV_MAX_INSTANCES 64
#define SRV_MAX_INPUT 1e6     /* |pixel| bound, keeps every sum finite */
#define SRV_MAX_THREADS 64
#define SRV_MAX_CONNS 1024    /* per thread; more are closed at once */
#define SRV_READ_SIZE 65536
#define SRV_DRAIN_MS 700      /* how long shutdown waits for in-flight work */
#define SRV_IDLE_GRACE_MS 200 /* how long shutdown still reads idle
				 connections (less than SRV_DRAIN_MS) */

/*
 * In an AddressSanitizer build, freed blocks wait in a quarantine (256 MB
 * by default) before they are reused, so resident memory grows with every
 * request until the quarantine is full: about 16 KB a one-instance
 * prediction, so a few tens of thousands of requests take an instance past
 * a shape's memory limit (local.xs: 256 MB), where the cgroup kills it and
 * its requests in flight fail. A 16 MB quarantine keeps it near 45 MB and
 * still catches a use of a recently freed block. ASAN_OPTIONS, read after
 * this, overrides it.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SRV_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SRV_ASAN 1
#endif
#endif
#ifdef SRV_ASAN
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=16";
}
#endif

struct options {
	const char *weights;
	const char *host;
	long port;
	long threads;
	int tta;
	long cache_entries;
	long load_delay_ms;
};

struct cache_entry {
	struct cache_entry *hnext;       /* hash chain */
	struct cache_entry *prev, *next; /* LRU list, most recent first */
	uint64_t hash;
	float acts[]; /* raw input, hidden layers, output probabilities */
};

struct cache {
	struct cache_entry **buckets;
	size_t mask;
	struct cache_entry *first, *last;
	size_t count, cap, nacts;
};

struct worker {
	struct server *srv;
	uv_loop_t loop;
	uv_tcp_t listener;
	uv_async_t stop;
	uv_timer_t drain;
	uv_thread_t thread;
	struct cache cache;
	struct conn *conns;
	int nconns;
	int stopping;
	int grace_over; /* shutdown closed the idle connections */
	float *scratch; /* two forward passes' activations */
	atomic_ulong requests, hits, misses, entries;
	char readbuf[SRV_READ_SIZE];
};

struct server {
	struct options opt;
	struct mlp net;
	uint64_t ready_at; /* uv_hrtime() from which /health says ok */
	struct worker **workers;
	int nworkers;
	uv_loop_t loop;
	uv_signal_t sigterm, sigint;
};

struct conn {
	uv_tcp_t tcp;
	struct worker *w;
	struct conn *prev, *next;
	struct hparse parser;
	char url[SRV_MAX_URL + 1];
	size_t url_len;
	char hname[8]; /* the current header name, if short */
	size_t hname_len;
	int in_value, expect_continue;
	char *body;
	size_t body_len, body_cap;
	char *rest; /* bytes after the request being answered */
	size_t rest_len;
	uv_write_t wreq, creq;
	char head[256];
	char *wbody;
	int url_too_long, body_too_large, in_message, request_ready;
	int writing, close_after, closing;
};

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* --- the cache ---------------------------------------------------------- */

static uint64_t input_hash(const float *x)
{
	return hash_bytes(x, MLP_PIXELS * sizeof(float));
}

static void cache_init(struct cache *c, size_t cap, size_t nacts)
{
	size_t n = 1;

	memset(c, 0, sizeof(*c));
	while (n < cap)
		n <<= 1;
	c->buckets = cap ? xcalloc(n, sizeof(*c->buckets)) : NULL;
	c->mask = n - 1;
	c->cap = cap;
	c->nacts = nacts;
}

static void cache_free(struct cache *c)
{
	struct cache_entry *e = c->first, *next;

	for (; e != NULL; e = next) {
		next = e->next;
		free(e);
	}
	free(c->buckets);
}

static void lru_unlink(struct cache *c, struct cache_entry *e)
{
	*(e->prev ? &e->prev->next : &c->first) = e->next;
	*(e->next ? &e->next->prev : &c->last) = e->prev;
}

static void lru_push(struct cache *c, struct cache_entry *e)
{
	e->prev = NULL;
	e->next = c->first;
	*(c->first ? &c->first->prev : &c->last) = e;
	c->first = e;
}

/* Returns the entry for input x, now the most recent, or NULL. */
static struct cache_entry *cache_get(struct cache *c, const float *x,
				     uint64_t h)
{
	struct cache_entry *e;

	if (c->cap == 0)
		return NULL;
	for (e = c->buckets[h & c->mask]; e != NULL; e = e->hnext) {
		if (e->hash == h &&
		    memcmp(e->acts, x, MLP_PIXELS * sizeof(float)) == 0) {
			lru_unlink(c, e);
			lru_push(c, e);
			return e;
		}
	}
	return NULL;
}

/* Stores a copy of acts under h, evicting the least recent entry when full. */
static struct cache_entry *cache_put(struct cache *c, uint64_t h,
				     const float *acts)
{
	struct cache_entry *e, **pp;

	if (c->count < c->cap) {
		e = xmalloc(sizeof(*e) + c->nacts * sizeof(float));
		c->count++;
	} else {
		e = c->last;
		lru_unlink(c, e);
		for (pp = &c->buckets[e->hash & c->mask]; *pp != e;
		     pp = &(*pp)->hnext)
			;
		*pp = e->hnext;
	}
	e->hash = h;
	memcpy(e->acts, acts, c->nacts * sizeof(float));
	e->hnext = c->buckets[h & c->mask];
	c->buckets[h & c->mask] = e;
	lru_push(c, e);
	return e;
}

/* --- inference ---------------------------------------------------------- */

/* Returns the output probabilities for pixels x, valid until the next call. */
static const float *infer(struct worker *w, const float *x, int *cached)
{
	const struct mlp *net = &w->srv->net;
	size_t nacts = w->cache.nacts;
	size_t out = mlp_acts_offset(net, net->nlayers);
	int nout = net->sizes[net->nlayers];
	uint64_t h = input_hash(x);
	struct cache_entry *e = cache_get(&w->cache, x, h);
	float *acts = w->scratch, *p;
	float shifted[MLP_PIXELS];

	*cached = e != NULL;
	if (e != NULL) {
		atomic_fetch_add_explicit(&w->hits, 1, memory_order_relaxed);
		return e->acts + out;
	}
	atomic_fetch_add_explicit(&w->misses, 1, memory_order_relaxed);
	p = (float *)mlp_forward(net, x, acts);
	for (int s = 0; w->srv->opt.tta && s < 9; s++) {
		const float *q;

		if (s == 4) /* no shift: that is the pass above */
			continue;
		mlp_shift(x, s % 3 - 1, s / 3 - 1, shifted);
		q = mlp_forward(net, shifted, acts + nacts);
		for (int j = 0; j < nout; j++)
			p[j] += q[j];
	}
	for (int j = 0; w->srv->opt.tta && j < nout; j++)
		p[j] /= 9.0f;
	/* The cache key is the raw input, not the scaled one. */
	memcpy(acts, x, MLP_PIXELS * sizeof(float));
	if (w->cache.cap == 0)
		return p;
	e = cache_put(&w->cache, h, acts);
	atomic_store_explicit(&w->entries, w->cache.count,
			      memory_order_relaxed);
	return e->acts + out;
}

/* --- requests ----------------------------------------------------------- */

static json_t *error_body(const char *code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static json_t *error_body(const char *code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Messages may quote the client; keep them printable ASCII. */
	for (char *p = msg; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	return json_pack("{s:s,s:s}", "error", code, "message", msg);
}

/* Reads one instance into x; returns NULL or an error body. */
static json_t *read_instance(json_t *inst, size_t i, float *x)
{
	if (!json_is_array(inst) || json_array_size(inst) != MLP_PIXELS)
		return error_body("invalid_request",
				  "instances[%zu] must be an array of %d "
				  "numbers, got %zu values",
				  i, MLP_PIXELS,
				  json_is_array(inst) ? json_array_size(inst)
						      : (size_t)1);
	for (size_t j = 0; j < MLP_PIXELS; j++) {
		json_t *v = json_array_get(inst, j);
		double d = json_number_value(v);

		if (!json_is_number(v))
			return error_body("invalid_request",
					  "instances[%zu][%zu] is not a number",
					  i, j);
		if (!(fabs(d) <= SRV_MAX_INPUT))
			return error_body("invalid_request",
					  "instances[%zu][%zu] is out of range "
					  "(pixels are 0..16)",
					  i, j);
		x[j] = (float)d;
	}
	return NULL;
}

static int predict(struct worker *w, const char *body, size_t len,
		   json_t **out)
{
	int nout = w->srv->net.sizes[w->srv->net.nlayers];
	json_t *root, *insts, *preds, *probs, *cached, *err = NULL;
	float x[MLP_PIXELS];
	json_error_t jerr;
	size_t n;

	root = json_loadb(body, len, 0, &jerr);
	if (root == NULL) {
		*out = error_body("invalid_json", "line %d column %d: %s",
				  jerr.line, jerr.column, jerr.text);
		return 400;
	}
	insts = json_object_get(root, "instances");
	n = json_array_size(insts);
	if (!json_is_array(insts))
		err = error_body("invalid_request", "the body must be an "
				 "object with an \"instances\" array");
	else if (n < 1 || n > SRV_MAX_INSTANCES)
		err = error_body("invalid_request",
				 "\"instances\" has %zu entries, expected 1 "
				 "to %d", n, SRV_MAX_INSTANCES);
	for (size_t i = 0; err == NULL && i < n; i++)
		err = read_instance(json_array_get(insts, i), i, x);
	if (err != NULL) {
		json_decref(root);
		*out = err;
		return 400;
	}
	preds = json_array();
	probs = json_array();
	cached = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *row = json_array();
		const float *p;
		int hit, best = 0;

		read_instance(json_array_get(insts, i), i, x);
		p = infer(w, x, &hit);
		for (int j = 0; j < nout; j++) {
			json_array_append_new(row, json_real(p[j]));
			best = p[j] > p[best] ? j : best;
		}
		json_array_append_new(preds, json_integer(best));
		json_array_append_new(probs, row);
		json_array_append_new(cached, json_boolean(hit));
	}
	json_decref(root);
	*out = json_pack("{s:o,s:o,s:o}", "predictions", preds,
			 "probabilities", probs, "cached", cached);
	return 200;
}

static unsigned long long rss_bytes(void)
{
	unsigned long long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return resident * (unsigned long long)sysconf(_SC_PAGESIZE);
}

static json_t *stats(const struct server *srv)
{
	unsigned long req = 0, hits = 0, misses = 0, entries = 0, cap = 0;

	for (int i = 0; i < srv->nworkers; i++) {
		struct worker *w = srv->workers[i];

		cap += w->cache.cap;
		req += atomic_load_explicit(&w->requests, memory_order_relaxed);
		hits += atomic_load_explicit(&w->hits, memory_order_relaxed);
		misses += atomic_load_explicit(&w->misses,
					       memory_order_relaxed);
		entries += atomic_load_explicit(&w->entries,
						memory_order_relaxed);
	}
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:b}", "requests",
			 (json_int_t)req, "cache_entries", (json_int_t)entries,
			 "cache_capacity", (json_int_t)cap, "cache_hits",
			 (json_int_t)hits, "cache_misses", (json_int_t)misses,
			 "rss_bytes", (json_int_t)rss_bytes(), "threads",
			 srv->nworkers, "tta", srv->opt.tta);
}

/* Routes a complete request; returns the status and sets *out. */
static int route(struct conn *c, json_t **out, const char **allow)
{
	struct worker *w = c->w;
	const char *method = hparse_method(&c->parser);
	int loaded;
	size_t plen = strcspn(c->url, "?");

	loaded = uv_hrtime() >= w->srv->ready_at;
	*allow = NULL;
	if (c->url_too_long || c->body_too_large) {
		*out = error_body(c->url_too_long ? "uri_too_long"
						  : "body_too_large",
				  "the %s is over %u bytes",
				  c->url_too_long ? "URL" : "body",
				  c->url_too_long ? SRV_MAX_URL : SRV_MAX_BODY);
		return 400;
	}
	if (plen == 7 && memcmp(c->url, "/health", 7) == 0) {
		*allow = "GET";
		if (strcmp(method, "GET") != 0)
			goto not_allowed;
		*out = json_pack("{s:s}", "status", loaded ? "ok" : "loading");
		return loaded ? 200 : 503;
	}
	if (plen == 6 && memcmp(c->url, "/stats", 6) == 0) {
		*allow = "GET";
		if (strcmp(method, "GET") != 0)
			goto not_allowed;
		*out = stats(w->srv);
		return 200;
	}
	if (plen == 8 && memcmp(c->url, "/predict", 8) == 0) {
		*allow = "POST";
		if (strcmp(method, "POST") != 0)
			goto not_allowed;
		if (!loaded) {
			*out = error_body("loading", "the model is loading");
			return 503;
		}
		return predict(w, c->body, c->body_len, out);
	}
	*out = error_body("not_found", "no such path: %.*s", (int)plen,
			  c->url);
	return 404;
not_allowed:
	*out = error_body("method_not_allowed", "%s wants %s, not %s", c->url,
			  *allow, method);
	return 405;
}

/* --- connections -------------------------------------------------------- */

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_conn_close(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct worker *w = c->w;

	*(c->prev ? &c->prev->next : &w->conns) = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	if (w->stopping && w->nconns == 0 &&
	    !uv_is_closing((uv_handle_t *)&w->drain))
		uv_close((uv_handle_t *)&w->drain, NULL);
	free(c->body);
	free(c->rest);
	free(c->wbody);
	free(c);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	uv_close((uv_handle_t *)&c->tcp, on_conn_close);
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	struct conn *c = h->data;

	*buf = uv_buf_init(c->w->readbuf, sizeof(c->w->readbuf));
}

static void conn_feed(struct conn *c, const char *data, size_t len);

static void on_write(uv_write_t *req, int status)
{
	struct conn *c = req->data;
	char *rest = c->rest;

	c->writing = 0;
	free(c->wbody);
	c->wbody = NULL;
	if (status < 0 || c->close_after || c->w->stopping) {
		conn_close(c);
		return;
	}
	hparse_pause(&c->parser, false);
	c->rest = NULL;
	if (rest != NULL)
		conn_feed(c, rest, c->rest_len);
	free(rest);
	if (!c->writing && !c->closing)
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void respond(struct conn *c, int status, json_t *body,
		    const char *allow)
{
	uv_buf_t bufs[3];
	int keep = !c->close_after && !c->w->stopping &&
		   hparse_keep_alive(&c->parser);
	size_t len;

	c->wbody = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(6));
	json_decref(body);
	if (c->wbody == NULL)
		abort(); /* only on allocation failure */
	len = strlen(c->wbody);
	c->close_after = !keep;
	snprintf(c->head, sizeof(c->head),
		 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\nConnection: %s\r\n%s%s%s\r\n",
		 status, hparse_reason(status), len + 1,
		 keep ? "keep-alive" : "close", allow ? "Allow: " : "",
		 allow ? allow : "", allow ? "\r\n" : "");
	bufs[0] = uv_buf_init(c->head, (unsigned)strlen(c->head));
	bufs[1] = uv_buf_init(c->wbody, (unsigned)len);
	bufs[2] = uv_buf_init((char *)"\n", 1);
	c->writing = 1;
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, 3, on_write) < 0) {
		c->writing = 0;
		conn_close(c);
	}
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	if (nread > 0) {
		conn_feed(c, buf->base, (size_t)nread);
	} else if (nread < 0) {
		/* The peer is done sending; answer what is pending first. */
		uv_read_stop(s);
		if (c->writing)
			c->close_after = 1;
		else
			conn_close(c);
	}
}

static int on_message_begin(struct hparse *p)
{
	struct conn *c = p->data;

	c->in_message = 1;
	c->url_len = 0;
	c->url[0] = '\0';
	c->url_too_long = c->body_too_large = 0;
	c->hname_len = 0;
	c->in_value = c->expect_continue = 0;
	return 0;
}

static int on_url(struct hparse *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	if (len > SRV_MAX_URL - c->url_len) {
		c->url_too_long = 1;
		return 0;
	}
	memcpy(c->url + c->url_len, at, len);
	c->url_len += len;
	c->url[c->url_len] = '\0';
	return 0;
}

static int on_header_field(struct hparse *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	if (c->in_value)
		c->hname_len = c->in_value = 0;
	/* Only "Expect" matters; a longer name just stops matching. */
	if (c->hname_len <= sizeof(c->hname) &&
	    len <= sizeof(c->hname) - c->hname_len)
		memcpy(c->hname + c->hname_len, at, len);
	c->hname_len += len;
	return 0;
}

static int on_header_value(struct hparse *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	c->in_value = 1;
	if (c->hname_len == 6 && strncasecmp(c->hname, "expect", 6) == 0 &&
	    len >= 12 && strncasecmp(at, "100-continue", 12) == 0)
		c->expect_continue = 1;
	return 0;
}

static int on_headers_complete(struct hparse *p)
{
	struct conn *c = p->data;
	uv_buf_t b = uv_buf_init((char *)continue_line,
				 sizeof(continue_line) - 1);

	if (c->expect_continue && hparse_length(p) <= SRV_MAX_BODY &&
	    uv_write(&c->creq, (uv_stream_t *)&c->tcp, &b, 1, NULL) < 0)
		return 1;
	return 0;
}

static int on_body(struct hparse *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	if (c->body_too_large || len > SRV_MAX_BODY - c->body_len) {
		/* Read on and drop the rest, then answer 400. */
		c->body_too_large = 1;
		return 0;
	}
	if (c->body_len + len > c->body_cap) {
		while (c->body_cap < c->body_len + len)
			c->body_cap = c->body_cap ? c->body_cap * 2 : 4096;
		c->body = xrealloc(c->body, c->body_cap);
	}
	memcpy(c->body + c->body_len, at, len);
	c->body_len += len;
	return 0;
}

static int on_message_complete(struct hparse *p)
{
	struct conn *c = p->data;

	c->in_message = 0;
	c->request_ready = 1;
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

static void conn_feed(struct conn *c, const char *data, size_t len)
{
	size_t n = hparse_execute(&c->parser, data, len);
	enum hparse_error e = hparse_error(&c->parser);
	const char *allow;
	json_t *body;
	int status;

	if (c->request_ready) {
		/* Paused after a whole request: keep what follows for later. */
		c->request_ready = 0;
		if (n < len) {
			c->rest = xmalloc(len - n);
			memcpy(c->rest, data + n, len - n);
			c->rest_len = len - n;
		}
		uv_read_stop((uv_stream_t *)&c->tcp);
		if (hparse_upgrade(&c->parser)) /* no protocol switch here */
			c->close_after = 1;
		atomic_fetch_add_explicit(&c->w->requests, 1,
					  memory_order_relaxed);
		status = route(c, &body, &allow);
		free(c->body);
		c->body = NULL;
		c->body_len = c->body_cap = 0;
		respond(c, status, body, status == 405 ? allow : NULL);
	} else if (e != HPARSE_OK) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->close_after = 1;
		respond(c, 400,
			error_body("bad_request", "malformed HTTP: %s",
				   hparse_error_text(&c->parser)),
			NULL);
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct worker *w = server->data;
	struct conn *c;

	if (status < 0)
		return;
	c = xcalloc(1, sizeof(*c));
	c->w = w;
	c->tcp.data = c;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	uv_tcp_init(&w->loop, &c->tcp);
	hparse_init(&c->parser, HPARSE_REQUEST, &parser_settings, c);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
	    w->nconns > SRV_MAX_CONNS) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* --- workers and shutdown ----------------------------------------------- */

/* Whether the client has sent bytes that the loop has not read yet (timers
 * run before the loop polls, so a request may have arrived since). */
static int conn_unread(struct conn *c)
{
	uv_os_fd_t fd;
	char byte;

	if (uv_fileno((uv_handle_t *)&c->tcp, &fd) < 0)
		return 0;
	return recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* First, at SRV_IDLE_GRACE_MS: close the idle connections with nothing to
 * read (the others have a request to answer). Then, at SRV_DRAIN_MS:
 * close every connection left. */
static void on_drain(uv_timer_t *t)
{
	struct worker *w = t->data;

	if (!w->grace_over) {
		w->grace_over = 1;
		for (struct conn *c = w->conns; c != NULL; c = c->next)
			if (!c->in_message && !c->writing && !conn_unread(c))
				conn_close(c);
		uv_timer_start(t, on_drain, SRV_DRAIN_MS - SRV_IDLE_GRACE_MS,
			       0);
		return;
	}
	for (struct conn *c = w->conns; c != NULL; c = c->next)
		conn_close(c);
	uv_close((uv_handle_t *)t, NULL);
}

/* Runs on the worker's loop: stop accepting; from now on every answer
 * closes its connection; on_drain closes the rest. */
static void on_stop(uv_async_t *a)
{
	struct worker *w = a->data;

	w->stopping = 1;
	uv_close((uv_handle_t *)&w->listener, NULL);
	uv_close((uv_handle_t *)&w->stop, NULL);
	uv_timer_start(&w->drain, on_drain, SRV_IDLE_GRACE_MS, 0);
	if (w->nconns == 0)
		uv_close((uv_handle_t *)&w->drain, NULL);
}

static void worker_run(void *arg)
{
	struct worker *w = arg;

	uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* Opens a bound SO_REUSEPORT socket for one worker. */
static int listen_socket(const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(sa->sa_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, sa, len) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

/* Sets up worker i listening on sa; on success *sa gets the bound port. */
static int worker_init(struct server *srv, int i, struct sockaddr_storage *sa,
		       size_t cache_cap)
{
	struct worker *w = xcalloc(1, sizeof(*w));
	socklen_t len = sa->ss_family == AF_INET6
				? sizeof(struct sockaddr_in6)
				: sizeof(struct sockaddr_in);
	size_t nacts = mlp_acts_size(&srv->net);
	int fd, rc, namelen = sizeof(*sa);

	srv->workers[i] = w;
	w->srv = srv;
	atomic_init(&w->requests, 0);
	atomic_init(&w->hits, 0);
	atomic_init(&w->misses, 0);
	atomic_init(&w->entries, 0);
	cache_init(&w->cache, cache_cap, nacts);
	w->scratch = xcalloc(2 * nacts, sizeof(float));
	if (uv_loop_init(&w->loop) < 0)
		abort();
	uv_tcp_init(&w->loop, &w->listener);
	uv_async_init(&w->loop, &w->stop, on_stop);
	uv_timer_init(&w->loop, &w->drain);
	w->listener.data = w->stop.data = w->drain.data = w;
	srv->nworkers = i + 1;
	fd = listen_socket((struct sockaddr *)sa, len);
	if (fd < 0)
		return fd;
	rc = uv_tcp_open(&w->listener, fd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	rc = uv_listen((uv_stream_t *)&w->listener, 511, on_connection);
	if (rc == 0)
		rc = uv_tcp_getsockname(&w->listener, (struct sockaddr *)sa,
					&namelen);
	return rc;
}

/* Closes a worker's handles (those on_stop did not) and frees it. */
static void worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	if (!uv_is_closing((uv_handle_t *)&w->listener)) {
		uv_close((uv_handle_t *)&w->listener, NULL);
		uv_close((uv_handle_t *)&w->stop, NULL);
		uv_close((uv_handle_t *)&w->drain, NULL);
	}
	uv_run(&w->loop, UV_RUN_DEFAULT);
	uv_loop_close(&w->loop);
	cache_free(&w->cache);
	free(w->scratch);
	free(w);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct server *srv = s->data;

	for (int i = 0; i < srv->nworkers; i++)
		uv_async_send(&srv->workers[i]->stop);
	uv_close((uv_handle_t *)&srv->sigterm, NULL);
	uv_close((uv_handle_t *)&srv->sigint, NULL);
}

/* --- options and main --------------------------------------------------- */

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return MDS_E_INVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return MDS_E_INVAL;
	*out = v;
	return 0;
}

/* MDSCALE_CPUS may be fractional ("0.25"); a thread per CPU rounded up. */
static int parse_cpus(const char *s, long *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || end == s || !(v > 0.0) ||
	    v > SRV_MAX_THREADS)
		return MDS_E_INVAL;
	*out = (long)ceil(v);
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: mdscale-model-server --weights FILE [--port N] "
	      "[--host ADDR]\n"
	      "         [--threads N] [--tta on|off] [--cache-entries N] "
	      "[--load-delay-ms N]\n"
	      "  --port defaults to $PORT, --host to 127.0.0.1, --threads to "
	      "$MDSCALE_CPUS\n"
	      "  rounded up (else 1), --tta to on, --cache-entries to 20000 "
	      "(0 disables).\n",
	      f);
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"weights", required_argument, NULL, 'w'},
		{"port", required_argument, NULL, 'p'},
		{"host", required_argument, NULL, 'H'},
		{"threads", required_argument, NULL, 't'},
		{"tta", required_argument, NULL, 'a'},
		{"cache-entries", required_argument, NULL, 'c'},
		{"load-delay-ms", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *env;
	int c, idx = 0, rc = 0;

	*o = (struct options){.host = "127.0.0.1", .port = -1, .threads = 1,
			      .tta = 1, .cache_entries = 20000};
	env = getenv("MDSCALE_CPUS");
	if (env != NULL && *env != '\0' && parse_cpus(env, &o->threads) < 0) {
		fprintf(stderr, "mdscale-model-server: bad MDSCALE_CPUS '%s'\n",
			env);
		return MDS_E_INVAL;
	}
	env = getenv("PORT");
	if (env != NULL && *env != '\0' &&
	    parse_long(env, 0, 65535, &o->port) < 0) {
		fprintf(stderr, "mdscale-model-server: bad PORT '%s'\n", env);
		return MDS_E_INVAL;
	}
	while (rc == 0 &&
	       (c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
		switch (c) {
		case 'w':
			o->weights = optarg;
			break;
		case 'p':
			rc = parse_long(optarg, 0, 65535, &o->port);
			break;
		case 'H':
			o->host = optarg;
			break;
		case 't':
			rc = parse_long(optarg, 1, SRV_MAX_THREADS, &o->threads);
			break;
		case 'a':
			o->tta = strcmp(optarg, "on") == 0;
			if (!o->tta && strcmp(optarg, "off") != 0)
				rc = MDS_E_INVAL;
			break;
		case 'c':
			rc = parse_long(optarg, 0, 10000000, &o->cache_entries);
			break;
		case 'd':
			rc = parse_long(optarg, 0, 86400000, &o->load_delay_ms);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			rc = MDS_E_INVAL; /* getopt has said why */
			continue;
		}
		if (rc < 0)
			fprintf(stderr, "mdscale-model-server: bad --%s '%s'\n",
				longopts[idx].name, optarg);
	}
	if (rc == 0 && (o->weights == NULL || o->port < 0 || optind != argc)) {
		fprintf(stderr, "mdscale-model-server: %s\n",
			o->weights == NULL ? "--weights is required"
			: o->port < 0	   ? "no --port and no $PORT"
					   : "unexpected argument");
		rc = MDS_E_INVAL;
	}
	if (rc < 0)
		usage(stderr);
	return rc;
}

int main(int argc, char **argv)
{
	struct server srv = {0};
	struct sockaddr_storage sa = {0};
	struct sigaction ign = {.sa_handler = SIG_IGN};
	size_t per_thread;
	char diag[256];
	int rc = 1, err;

	if (parse_options(argc, argv, &srv.opt) < 0)
		return 2;
	if (mlp_load(&srv.net, srv.opt.weights, diag, sizeof(diag)) < 0) {
		fprintf(stderr, "mdscale-model-server: %s\n", diag);
		return 1;
	}
	uv_loop_init(&srv.loop);
	if (uv_ip4_addr(srv.opt.host, (int)srv.opt.port,
			(struct sockaddr_in *)&sa) != 0 &&
	    uv_ip6_addr(srv.opt.host, (int)srv.opt.port,
			(struct sockaddr_in6 *)&sa) != 0) {
		fprintf(stderr, "mdscale-model-server: --host wants a numeric "
			"address, not '%s'\n", srv.opt.host);
		goto out;
	}
	sigaction(SIGPIPE, &ign, NULL);
	json_object_seed(0); /* before threads, as jansson asks */
	srv.workers = xcalloc((size_t)srv.opt.threads, sizeof(*srv.workers));
	per_thread = ((size_t)srv.opt.cache_entries + (size_t)srv.opt.threads -
		      1) / (size_t)srv.opt.threads;
	for (int i = 0; i < srv.opt.threads; i++) {
		err = worker_init(&srv, i, &sa, per_thread);
		if (err < 0) {
			fprintf(stderr, "mdscale-model-server: listen on %s:%ld: "
				"%s\n", srv.opt.host, srv.opt.port,
				uv_strerror(err));
			goto out;
		}
	}
	srv.ready_at = uv_hrtime() + (uint64_t)srv.opt.load_delay_ms * 1000000u;
	uv_signal_init(&srv.loop, &srv.sigterm);
	uv_signal_init(&srv.loop, &srv.sigint);
	srv.sigterm.data = srv.sigint.data = &srv;
	uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
	uv_signal_start(&srv.sigint, on_signal, SIGINT);
	for (int i = 0; i < srv.nworkers; i++)
		if (uv_thread_create(&srv.workers[i]->thread, worker_run,
				     srv.workers[i]) < 0)
			abort();
	fprintf(stderr, "mdscale-model-server: listening on %s port %d "
		"(%d threads, tta %s, cache %ld entries)\n", srv.opt.host,
		ntohs(sa.ss_family == AF_INET6
			      ? ((struct sockaddr_in6 *)&sa)->sin6_port
			      : ((struct sockaddr_in *)&sa)->sin_port),
		srv.nworkers,
		srv.opt.tta ? "on" : "off", srv.opt.cache_entries);
	uv_run(&srv.loop, UV_RUN_DEFAULT);
	for (int i = 0; i < srv.nworkers; i++)
		uv_thread_join(&srv.workers[i]->thread);
	rc = 0;
out:
	for (int i = 0; i < srv.nworkers; i++)
		worker_free(srv.workers[i]);
	free(srv.workers);
	uv_loop_close(&srv.loop);
	mlp_free(&srv.net);
	return rc;
}
