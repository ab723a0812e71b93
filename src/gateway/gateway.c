/*
 * gateway.c - the reverse proxy in front of the model instances; see
 * gateway.h.
 *
 * The data path of one worker (see gateway_int.h for the threads and what
 * they share, gateway_owner.c for the owner's side). One struct worker
 * holds everything of one loop: the listener, the client and upstream
 * connections, the routing table, the per-instance pools of idle upstream
 * connections, and two free lists (read blocks, write requests), so that
 * the steady state allocates nothing per request. Each worker's loop runs
 * on a thread of its own, so that nothing the rest of the daemon does on
 * its loop (an SQLite fsync, evaluating thousands of alarms, a large API
 * response) delays a request.
 *
 * Data path. Every read lands in a refcounted 64 KiB block and the HTTP
 * parser runs over it. Heads are copied (they outlive the read and get rewritten);
 * body bytes are not: each on_body slice is referenced in place (the block's
 * count goes up until the write completes), or copied when it is short. The
 * slices of one read go out as one writev (uv_try_write, the rest queued),
 * re-framed: a Content-Length body as is, a chunked one as chunks of what
 * on_body gave. Past QUEUE_HIGH bytes not yet written on one side, the other
 * side stops reading until the queue drains below QUEUE_LOW.
 *
 * Client connection: head -> routed, body streamed upstream -> request
 * complete (the parser pauses; input that arrives meanwhile, a pipelined
 * request, is held in its one block and reading stops) -> response
 * forwarded -> next request, or close. A request ends when both its message
 * and its response are complete. Timeouts use one timer per client that
 * re-arms itself lazily.
 *
 * Upstream connection: connecting -> active (serving one request) -> idle in
 * its instance's pool (LIFO) -> reused, or closed. Until the first response
 * byte a request keeps every write it sent (up to RETAIN_MAX bytes) so it can
 * be replayed: on another instance when the connect failed, or once on a
 * fresh connection when a reused one died before answering. The second is
 * done only for what may run twice (as nginx does by default): a request
 * none of whose bytes was sent, or an idempotent method, unless the
 * deployment allows every replay (gateway_set_replay()). That decision is
 * taken in the upstream's close callback, when all its writes have called
 * back and may be written again.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "core/route.h"
#include "gateway/gateway.h"
#include "gateway/gateway_int.h"
#include "http/tls.h"
#include "http/hparse.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/jsonstr.h"
#include "util/log.h"
#include "util/xalloc.h"

#define BLOCK_SIZE (64u * 1024)    /* one read */
#define TLS_READ_MAX (BLOCK_SIZE / 2) /* ciphertext read at once: its
					 plaintext, with what an unfinished
					 record held, fits one block */
#define BLOCK_POOL_MAX 256u        /* free blocks kept per gateway */
#define WREQ_POOL_MAX 1024u        /* free write requests kept */
#define WREQ_SLICES 16u            /* iovecs per write */
#define COPY_MAX 2048u             /* body slices this short are copied */
#define OWN_KEEP (16u * 1024)      /* a batch is full past this much copied */
#define OWN_MAX (128u * 1024)      /* copied bytes of one write, heads incl. */
#define HEAD_MAX (64u * 1024)      /* request or response head */
#define URL_MAX (8u * 1024)
#define HDR_MAX 512u               /* header lines per head */
#define QUEUE_HIGH (1024u * 1024)  /* stop reading the other side past this */
#define QUEUE_LOW (256u * 1024)    /* and read again below this */
#define RETAIN_MAX (1024u * 1024)  /* request bytes kept for a replay */
#define MAX_TRIES 16u              /* instances tried per request */
#define LINGER_MS 2000u            /* reading after our FIN, at most */
#define BODY_WINDOW_MS 5000u       /* a body's rate is measured over this */

const uint64_t gateway_lat_bounds_us[GATEWAY_LAT_BUCKETS] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
	250000, 500000, 1000000, 2500000, 5000000, UINT64_MAX,
};


struct block {
	struct worker *gw;
	struct block *next; /* free list */
	uint32_t refs;
	uint32_t len;
	char data[BLOCK_SIZE];
};

/* Bytes to write: in a block (blk != NULL) or in the write's own buffer. */
struct slice {
	struct block *blk;
	size_t off, len;
};

enum wstate { W_BUILD, W_PENDING, W_INFLIGHT, W_DONE };

struct wreq {
	uv_write_t req;
	struct worker *gw;
	struct wreq *next;  /* retained list or free list */
	struct buf own;     /* copied bytes: heads, chunk framing, short slices */
	struct slice s[WREQ_SLICES];
	unsigned n;
	size_t bytes;
	enum wstate state;
	bool retained;      /* on its request's list, kept after the write */
};

struct hdr {
	uint32_t name, name_len, val, val_len; /* offsets into head.raw */
};

/* A parsed head: the URL or reason phrase first, then names and values. */
struct head {
	struct buf raw;
	struct hdr *h;
	uint32_t n, cap;
	uint32_t first_len;
	int last;     /* 0 nothing yet, 1 in a name, 2 in a value */
	int overflow; /* the status to answer (414, 431) once a cap is hit */
	bool done;    /* headers complete: ignore trailers */
	bool conn;    /* has a Connection header */
};


static const struct hparse_settings creq_settings, ures_settings;

enum up_state { UP_CONNECTING, UP_ACTIVE, UP_IDLE, UP_CLOSING };

struct upconn {
	uv_tcp_t tcp;
	uv_connect_t connect;
	struct link link; /* gw->ups */
	struct link idle; /* inst->idle while pooled */
	struct worker *gw;
	struct inst *inst;
	struct client *client; /* the request it serves, or NULL */
	struct block *cur;     /* the block being parsed */
	struct hparse parser;
	struct head head;
	unsigned nwrites;
	uint16_t port;
	enum up_state state;
	bool reading, connected, reused, got_bytes, keepalive, resp_done;
	bool sent; /* a write of the request completed on it */
};

enum frame { FRAME_NONE, FRAME_RAW, FRAME_CHUNKED };

struct request {
	struct dep *dep;   /* counted reference once routed */
	struct inst *inst; /* counted reference while in flight */
	struct upconn *up;
	struct inst *tried[MAX_TRIES];
	unsigned ntried;
	struct wreq *ub;                 /* batch toward the upstream */
	struct wreq *rq_head, *rq_tail;  /* retained writes, in order */
	struct wreq *headw;              /* the retained request head */
	size_t retained;                 /* bytes in retained writes */
	size_t up_queued;                /* bytes toward upstream not written */
	uint64_t t0, t_end, rid;
	struct link hold;                /* dep->held while held */
	uint64_t held_at, held_bytes;    /* uv_now() when held; counted size */
	uint32_t path_off, path_len, query_off, query_len;
	int status;                      /* status line sent, or 0 */
	enum frame out_frame;
	bool active, in_done, out_done, resp_head, discard, retain,
		retried, keepalive, head_method, chunked_in, throttled,
		gw_error, accounted, held;
	bool unsafe; /* a method that must not run twice (POST, PATCH) */
};

struct client {
	uv_tcp_t tcp;
	uv_timer_t timer; /* idle, response, or linger timeout */
	uv_shutdown_t shutdown;
	struct link link; /* gw->clients */
	struct worker *gw;
	struct hparse parser;
	struct head head;
	struct request req;
	struct wreq *cb;     /* batch toward the client */
	struct block *pend;  /* unparsed input */
	size_t pend_off;
	size_t out_queued;
	uint64_t active_at;  /* uv_now() of the last progress */
	uint64_t head_at;    /* uv_now() of the current request's first byte */
	uint64_t window_at;  /* uv_now() when the body's rate window began */
	size_t window_bytes; /* body bytes in that window */
	uint64_t armed;      /* the timer fires at most this long after */
	int nopen;           /* handles not yet closed */
	char ip[64];
	struct tls_conn *tls; /* NULL: plain TCP, the zero-copy path */
	bool reading, in_parse, closing, handles_closed, broken, out_throttled,
		eof;
};

/* TLS: ciphertext on its way to a client. */
struct tls_write {
	uv_write_t req;
	char *data;
	size_t len;
};


static void gw_log(struct worker *gw, enum log_level level, const char *fmt,
		   ...) __attribute__((format(printf, 3, 4)));
static void note_request(struct client *c, uint64_t us);

static void client_process(struct client *c);
static void client_close(struct client *c, bool graceful);
static void client_update_read(struct client *c);
static void client_close_handles(struct client *c);
static void up_close(struct upconn *up);
static void up_update_read(struct upconn *up);
static void req_route(struct client *c);
static bool hold_add(struct client *c);
static void hold_drop(struct client *c);
static bool hold_timer(struct client *c);
static void client_timer_cb(uv_timer_t *t);
static void client_settle(struct client *c);
static struct note *note_new(struct worker *gw, enum note_kind kind);
static uint32_t note_cstr(struct worker *gw, const char *s);
static void note_posted(struct worker *gw, bool first);

/* Lists, blocks and write requests. */


static struct block *block_get(struct worker *gw)
{
	struct block *b = gw->free_blocks;

	if (b != NULL) {
		gw->free_blocks = b->next;
		gw->nfree_blocks--;
	} else {
		b = xmalloc(sizeof(*b));
		b->gw = gw;
	}
	b->next = NULL;
	b->refs = 1;
	b->len = 0;
	return b;
}

static void block_unref(struct block *b)
{
	struct worker *gw;

	if (b == NULL || --b->refs > 0)
		return;
	gw = b->gw;
	if (gw->nfree_blocks < BLOCK_POOL_MAX) {
		b->next = gw->free_blocks;
		gw->free_blocks = b;
		gw->nfree_blocks++;
	} else {
		free(b);
	}
}

static struct block *block_of(const uv_buf_t *buf)
{
	return buf->base ? container_of(buf->base, struct block, data) : NULL;
}

static struct wreq *wreq_get(struct worker *gw)
{
	struct wreq *w = gw->free_wreqs;

	if (w != NULL) {
		gw->free_wreqs = w->next;
		gw->nfree_wreqs--;
	} else {
		w = xcalloc(1, sizeof(*w));
		w->gw = gw;
		buf_init(&w->own, OWN_MAX);
	}
	w->next = NULL;
	w->n = 0;
	w->bytes = 0;
	w->state = W_BUILD;
	w->retained = false;
	buf_reset(&w->own);
	return w;
}

static void wreq_clear(struct wreq *w)
{
	for (unsigned i = 0; i < w->n; i++)
		block_unref(w->s[i].blk);
	w->n = 0;
	w->bytes = 0;
	buf_reset(&w->own);
}

static void wreq_put(struct wreq *w)
{
	struct worker *gw;

	if (w == NULL)
		return;
	gw = w->gw;
	wreq_clear(w);
	if (w->own.cap > OWN_KEEP + 1)
		buf_free(&w->own);
	if (gw->nfree_wreqs < WREQ_POOL_MAX) {
		w->next = gw->free_wreqs;
		gw->free_wreqs = w;
		gw->nfree_wreqs++;
	} else {
		buf_free(&w->own);
		free(w);
	}
}

/* Tells whether a batch has no room for another framed body slice. */
static bool wreq_full(const struct wreq *w)
{
	return w->n + 3 > WREQ_SLICES || w->own.len > OWN_KEEP;
}

/* Makes own[from..len) the next bytes of the write. */
static void wreq_own(struct wreq *w, size_t from)
{
	struct slice *last = w->n > 0 ? &w->s[w->n - 1] : NULL;
	size_t len = w->own.len - from;

	if (len == 0)
		return;
	if (last != NULL && last->blk == NULL && last->off + last->len == from)
		last->len += len;
	else
		w->s[w->n++] = (struct slice){ NULL, from, len };
	w->bytes += len;
}

/* Copies bytes into the write; callers keep below OWN_MAX (wreq_full). */
static void wreq_copy(struct wreq *w, const void *p, size_t len)
{
	size_t from = w->own.len;

	if (buf_add(&w->own, p, len) == 0)
		wreq_own(w, from);
}

/* Adds body bytes, referencing their block unless they are short. */
static void wreq_ref(struct wreq *w, struct block *b, const char *p,
		     size_t len)
{
	if (b == NULL || len <= COPY_MAX) {
		wreq_copy(w, p, len);
		return;
	}
	b->refs++;
	w->s[w->n++] = (struct slice){ b, (size_t)(p - b->data), len };
	w->bytes += len;
}

static void wreq_chunk(struct wreq *w, size_t len)
{
	char tmp[24];
	size_t k = sizeof(tmp);

	tmp[--k] = '\n';
	tmp[--k] = '\r';
	do {
		tmp[--k] = "0123456789abcdef"[len & 15];
		len >>= 4;
	} while (len > 0);
	wreq_copy(w, tmp + k, sizeof(tmp) - k);
}

/*
 * Writes w to s: what the socket takes at once with uv_try_write(), the rest
 * queued with uv_write() (cb runs then). Trying first keeps small messages
 * free of write requests, and libuv 1.44 re-arms epoll after each request.
 * Returns 1 if all was written, 0 if queued, or a negative libuv error.
 */
static int wreq_write(struct wreq *w, uv_stream_t *s, uv_write_cb cb)
{
	uv_buf_t iov[WREQ_SLICES];
	unsigned i = 0;
	size_t done;
	int rc;

	for (unsigned k = 0; k < w->n; k++) {
		const struct slice *sl = &w->s[k];

		iov[k] = uv_buf_init(sl->blk ? sl->blk->data + sl->off
					     : w->own.data + sl->off,
				     (unsigned)sl->len);
	}
	rc = uv_try_write(s, iov, w->n);
	if (rc < 0 && rc != UV_EAGAIN)
		return rc;
	done = rc > 0 ? (size_t)rc : 0;
	if (done == w->bytes)
		return 1;
	while (done >= iov[i].len)
		done -= iov[i++].len;
	iov[i].base += done;
	iov[i].len -= (unsigned)done;
	rc = uv_write(&w->req, s, iov + i, w->n - i, cb);
	return rc < 0 ? rc : 0;
}

/* Heads. */

static void head_reset(struct head *h)
{
	buf_reset(&h->raw);
	h->n = 0;
	h->first_len = 0;
	h->last = 0;
	h->overflow = 0;
	h->done = false;
	h->conn = false;
}

static void head_free(struct head *h)
{
	buf_free(&h->raw);
	free(h->h);
	h->h = NULL;
}

static int head_first(struct head *h, const char *at, size_t len, size_t max,
		      int status)
{
	if (h->first_len + len > max || buf_add(&h->raw, at, len) != 0) {
		h->overflow = status;
		return -1;
	}
	h->first_len += (uint32_t)len;
	return 0;
}

static int head_field(struct head *h, const char *at, size_t len)
{
	struct hdr *x;

	if (h->done)
		return 0;
	if (h->last != 1) {
		if (h->n == HDR_MAX) {
			h->overflow = 431;
			return -1;
		}
		if (h->n == h->cap) {
			h->cap = h->cap ? h->cap * 2 : 32;
			h->h = xreallocarray(h->h, h->cap, sizeof(*h->h));
		}
		x = &h->h[h->n++];
		x->name = x->val = (uint32_t)h->raw.len;
		x->name_len = x->val_len = 0;
		h->last = 1;
	}
	if (buf_add(&h->raw, at, len) != 0) {
		h->overflow = 431;
		return -1;
	}
	h->h[h->n - 1].name_len += (uint32_t)len;
	return 0;
}

static bool hdr_is(const struct head *h, const struct hdr *x,
		   const char *name, size_t len)
{
	return x->name_len == len &&
	       strncasecmp(h->raw.data + x->name, name, len) == 0;
}

#define HDR_IS(h, x, lit) hdr_is((h), (x), (lit), sizeof(lit) - 1)

static int head_value(struct head *h, const char *at, size_t len)
{
	struct hdr *x;

	if (h->done || h->n == 0)
		return 0;
	x = &h->h[h->n - 1];
	if (h->last != 2) {
		x->val = (uint32_t)h->raw.len;
		h->last = 2;
		if (HDR_IS(h, x, "connection"))
			h->conn = true;
	}
	if (buf_add(&h->raw, at, len) != 0) {
		h->overflow = 431;
		return -1;
	}
	x->val_len += (uint32_t)len;
	return 0;
}

/* Hop-by-hop headers (RFC 9110 7.6.1) never cross the proxy. */
static bool hop_by_hop(const struct head *h, const struct hdr *x)
{
	switch (x->name_len) {
	case 2:
		return HDR_IS(h, x, "te");
	case 7:
		return HDR_IS(h, x, "trailer") || HDR_IS(h, x, "upgrade");
	case 10:
		return HDR_IS(h, x, "connection") ||
		       HDR_IS(h, x, "keep-alive");
	case 16:
		return HDR_IS(h, x, "proxy-connection");
	default:
		return false;
	}
}

/* Tells whether a Connection header names x, making it hop-by-hop too. */
static bool conn_listed(const struct head *h, const struct hdr *x)
{
	if (!h->conn)
		return false;
	for (uint32_t i = 0; i < h->n; i++) {
		const struct hdr *ch = &h->h[i];
		const char *p = h->raw.data + ch->val;
		const char *end = p + ch->val_len;

		if (!HDR_IS(h, ch, "connection"))
			continue;
		while (p < end) {
			const char *tok;

			while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
				p++;
			tok = p;
			while (p < end && *p != ',' && *p != ' ' && *p != '\t')
				p++;
			if ((size_t)(p - tok) == x->name_len &&
			    strncasecmp(tok, h->raw.data + x->name,
					x->name_len) == 0)
				return true;
		}
	}
	return false;
}

static bool put_hdr(struct buf *o, const struct head *h, const struct hdr *x)
{
	return buf_add(o, h->raw.data + x->name, x->name_len) == 0 &&
	       buf_add(o, ": ", 2) == 0 &&
	       buf_add(o, h->raw.data + x->val, x->val_len) == 0 &&
	       buf_add(o, "\r\n", 2) == 0;
}

static void buf_truncate(struct buf *o, size_t len)
{
	o->len = len;
	if (o->data != NULL)
		o->data[len] = '\0';
}

static char *put_hex(char *p, uint64_t v)
{
	for (int i = 15; i >= 0; i--, v >>= 4)
		p[i] = "0123456789abcdef"[v & 15];
	return p + 16;
}

/* Writes the request head for an instance into w. */
static int build_req_head(struct client *c, struct wreq *w,
			  const struct inst *in)
{
	const struct head *h = &c->head;
	const struct request *r = &c->req;
	const char *raw = buf_str(&h->raw);
	const struct hdr *xff = NULL;
	struct buf *o = &w->own;
	bool ok, rid = false;

	ok = buf_addstr(o, hparse_method(&c->parser)) == 0 &&
	     buf_add(o, " ", 1) == 0;
	if (r->path_len > 0)
		ok = ok && buf_add(o, raw + r->path_off, r->path_len) == 0;
	else
		ok = ok && buf_add(o, "/", 1) == 0;
	if (r->query_len > 0)
		ok = ok && buf_add(o, "?", 1) == 0 &&
		     buf_add(o, raw + r->query_off, r->query_len) == 0;
	ok = ok && buf_addstr(o, " HTTP/1.1\r\n") == 0;
	for (uint32_t i = 0; ok && i < h->n; i++) {
		const struct hdr *x = &h->h[i];

		if (xff == NULL && HDR_IS(h, x, "x-forwarded-for")) {
			xff = x;
			continue;
		}
		if (HDR_IS(h, x, "x-request-id"))
			rid = true;
		if (HDR_IS(h, x, "host") || hop_by_hop(h, x) ||
		    conn_listed(h, x))
			continue;
		ok = put_hdr(o, h, x);
	}
	ok = ok && buf_addstr(o, in->host) == 0 &&
	     buf_addstr(o, "X-Forwarded-For: ") == 0;
	if (ok && xff != NULL)
		ok = buf_add(o, raw + xff->val, xff->val_len) == 0 &&
		     buf_add(o, ", ", 2) == 0;
	ok = ok && buf_addstr(o, c->ip) == 0 && buf_add(o, "\r\n", 2) == 0;
	if (ok && !rid) {
		char id[64] = "X-Request-Id: ";

		memcpy(put_hex(put_hex(id + 14, c->gw->rid_seed), r->rid),
		       "\r\n", 3);
		ok = buf_addstr(o, id) == 0;
	}
	ok = ok && buf_add(o, "\r\n", 2) == 0;
	if (!ok)
		return MDS_E_LIMIT;
	wreq_own(w, 0);
	return 0;
}

static bool client_http11(const struct client *c)
{
	return hparse_http11(&c->parser);
}

/* Appends a response head from the upstream to w (final or interim). */
static int build_resp_head(struct client *c, struct upconn *up,
			   struct wreq *w, bool final, bool drop_te,
			   bool add_te)
{
	const struct head *h = &up->head;
	struct buf *o = &w->own;
	size_t from = o->len;
	bool ok;

	unsigned st = hparse_status(&up->parser);
	char line[13] = { 'H', 'T', 'T', 'P', '/', '1', '.', '1', ' ',
			  (char)('0' + st / 100 % 10), (char)('0' + st / 10 % 10),
			  (char)('0' + st % 10), ' ' };

	ok = buf_add(o, line, sizeof(line)) == 0 &&
	     buf_add(o, buf_str(&h->raw), h->first_len) == 0 &&
	     buf_add(o, "\r\n", 2) == 0;
	for (uint32_t i = 0; ok && i < h->n; i++) {
		const struct hdr *x = &h->h[i];

		if (hop_by_hop(h, x) || conn_listed(h, x) ||
		    (drop_te && HDR_IS(h, x, "transfer-encoding")))
			continue;
		ok = put_hdr(o, h, x);
	}
	if (ok && add_te)
		ok = buf_addstr(o, "Transfer-Encoding: chunked\r\n") == 0;
	if (ok && final && !c->req.keepalive)
		ok = buf_addstr(o, "Connection: close\r\n") == 0;
	else if (ok && final && !client_http11(c))
		ok = buf_addstr(o, "Connection: keep-alive\r\n") == 0;
	ok = ok && buf_add(o, "\r\n", 2) == 0;
	if (!ok) {
		buf_truncate(o, from);
		return MDS_E_LIMIT;
	}
	wreq_own(w, from);
	return 0;
}

/* Deployments and instances. */

struct dep *worker_dep(const struct worker *gw, const char *id)
{
	for (struct link *l = gw->deps.next; l != &gw->deps; l = l->next) {
		struct dep *d = container_of(l, struct dep, link);

		if (strcmp(d->id, id) == 0)
			return d;
	}
	return NULL;
}

/* Finds the deployment a path segment names: an id first, else a name. */
static struct dep *dep_route(const struct worker *gw, const char *seg,
			     size_t len)
{
	struct dep *by_name = NULL;

	for (struct link *l = gw->deps.next; l != &gw->deps; l = l->next) {
		struct dep *d = container_of(l, struct dep, link);

		if (d->id_len == len && memcmp(d->id, seg, len) == 0)
			return d;
		if (by_name == NULL && d->name != NULL &&
		    d->name_len == len && memcmp(d->name, seg, len) == 0)
			by_name = d;
	}
	return by_name;
}

static void dep_unref(struct dep *d)
{
	if (d == NULL || --d->refs > 0)
		return;
	free(d->id);
	free(d->name);
	free(d->ups);
	free(d->load);
	free(d);
}

/* Lets go of a worker's hold on shared instance state: the owner frees it
 * once no worker holds it (see prune_shared()). */
static void ishared_unref(struct ishared *sh)
{
	__atomic_fetch_sub(&sh->refs, 1, __ATOMIC_RELEASE);
}

static void inst_unref(struct inst *in, struct worker *gw)
{
	if (in == NULL || --in->refs > 0)
		return;
	uv_mutex_lock(&gw->mu);
	list_del(&in->link);
	uv_mutex_unlock(&gw->mu);
	ishared_unref(in->sh);
	free(in->id);
	free(in);
}

/* Takes an instance out of routing: idle connections close, and it lives
 * on while requests or connections still hold it. */
static void inst_unroute(struct worker *gw, struct inst *in)
{
	in->routed = false;
	while (!list_empty(&in->idle))
		up_close(container_of(in->idle.next, struct upconn, idle));
	inst_unref(in, gw);
}

static struct upconn *pool_pop(struct inst *in)
{
	struct upconn *up;

	if (list_empty(&in->idle))
		return NULL;
	up = container_of(in->idle.next, struct upconn, idle);
	list_del(&up->idle);
	in->nidle--;
	up->state = UP_ACTIVE;
	up->reused = true;
	return up;
}

/* Timers and reading. */

static void client_timer_cb(uv_timer_t *t);
static void client_check_pace(struct client *c);

/* Whether the client is sending a request: its head, then its body. */
static bool client_sending(const struct client *c)
{
	return c->req.active && !c->req.in_done && c->req.status == 0;
}

/* The timeout of the client's state: the head's deadline, then the end of
 * the body's rate window, while it sends a request; the response timeout
 * once its request is complete; else the idle timeout. */
static uint64_t client_timeout(const struct client *c)
{
	uint64_t now = uv_now(c->gw->loop), end;

	if (client_sending(c)) {
		end = c->head.done ? c->window_at + BODY_WINDOW_MS
				   : c->head_at + c->gw->lim.head_timeout_ms;
		return end > now ? end - now : 0;
	}
	return c->req.in_done && !c->req.out_done
		       ? c->gw->lim.response_timeout_ms
		       : c->gw->lim.idle_timeout_ms;
}

/* Progress only stamps the time: the timer re-arms itself lazily, so the
 * hot path does not touch the timer heap on every read and write. */
static void client_touch(struct client *c)
{
	c->active_at = uv_now(c->gw->loop);
}

/* Arms the timer when the state changes, unless it already fires soon
 * enough (then it re-checks and re-arms itself). */
static void client_arm(struct client *c)
{
	uint64_t tmo = client_timeout(c);

	if (c->closing)
		return;
	client_touch(c);
	if (uv_is_active((uv_handle_t *)&c->timer) && tmo >= c->armed)
		return;
	c->armed = tmo;
	uv_timer_start(&c->timer, client_timer_cb, tmo, 0);
}

static void client_alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	struct client *c = h->data;
	struct block *b = block_get(c->gw);

	(void)size;
	*buf = uv_buf_init(b->data, c->tls ? TLS_READ_MAX : BLOCK_SIZE);
}

static void up_alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	struct upconn *up = h->data;
	struct block *b = block_get(up->gw);

	(void)size;
	*buf = uv_buf_init(b->data, BLOCK_SIZE);
}

static void client_read_cb(uv_stream_t *s, ssize_t nread,
			   const uv_buf_t *buf);
static void up_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void set_reading(uv_stream_t *s, bool *reading, bool want,
			uv_alloc_cb alloc_cb, uv_read_cb read_cb)
{
	if (want == *reading)
		return;
	if (want)
		uv_read_start(s, alloc_cb, read_cb);
	else
		uv_read_stop(s);
	*reading = want;
}

/*
 * Reads from the client unless the upstream is behind or unparsed input is
 * held: a pipelined request waits in its one block until the current one is
 * done. Reading on while a response is pending spares two epoll_ctl calls
 * per request and notices a client that resets.
 */
static void client_update_read(struct client *c)
{
	bool want;

	if (c->handles_closed)
		return;
	want = !c->eof &&
	       (c->closing || (c->pend == NULL && !c->req.throttled));
	set_reading((uv_stream_t *)&c->tcp, &c->reading, want,
		    client_alloc_cb, client_read_cb);
}

static void up_update_read(struct upconn *up)
{
	bool want = up->state == UP_IDLE ||
		    (up->state == UP_ACTIVE &&
		     (up->client == NULL || !up->client->out_throttled));

	set_reading((uv_stream_t *)&up->tcp, &up->reading, want, up_alloc_cb,
		    up_read_cb);
}

static void req_throttle(struct client *c)
{
	struct request *r = &c->req;

	if (r->up_queued >= QUEUE_HIGH) {
		r->throttled = true;
	} else if (r->throttled && r->up_queued <= QUEUE_LOW) {
		r->throttled = false;
		if (!c->in_parse)
			client_update_read(c);
	}
}

/* Writes toward the upstream. */

static void up_write_done(struct upconn *up, struct wreq *w, int status)
{
	struct client *c = up->client;

	up->nwrites--;
	if (c != NULL)
		c->req.up_queued -= w->bytes;
	if (w->retained)
		w->state = W_DONE;
	else
		wreq_put(w);
	if (status < 0 && status != UV_ECANCELED)
		up_close(up);
	if (c != NULL && !c->closing) {
		client_touch(c);
		req_throttle(c);
	}
}

static void up_write_cb(uv_write_t *req, int status)
{
	up_write_done(req->handle->data,
		      container_of(req, struct wreq, req), status);
}

static void up_submit(struct upconn *up, struct wreq *w)
{
	int rc;

	w->state = W_INFLIGHT;
	up->nwrites++;
	rc = wreq_write(w, (uv_stream_t *)&up->tcp, up_write_cb);
	/* Bytes handed to the kernel may reach the instance even if the
	 * connection fails later: from here on the request counts as sent. */
	if (rc >= 0 && w->bytes > 0)
		up->sent = true;
	if (rc != 0)
		up_write_done(up, w, rc > 0 ? 0 : rc);
}

/* Drops the writes kept for a replay; those in flight free themselves. */
static void req_unretain(struct request *r)
{
	struct wreq *w = r->rq_head, *next;

	for (; w != NULL; w = next) {
		next = w->next;
		w->next = NULL;
		w->retained = false;
		if (w->state == W_INFLIGHT)
			continue;
		if (w->state == W_PENDING)
			r->up_queued -= w->bytes;
		wreq_put(w);
	}
	r->rq_head = r->rq_tail = r->headw = NULL;
	r->retained = 0;
	r->retain = false;
}

static bool up_writable(const struct upconn *up)
{
	return up != NULL && up->state == UP_ACTIVE;
}

/* Sends what waited for the connection, or all again on a replay. */
static void req_submit_retained(struct client *c)
{
	struct request *r = &c->req;

	for (struct wreq *w = r->rq_head; w != NULL && up_writable(r->up);
	     w = w->next) {
		if (w->state == W_DONE) {
			r->up_queued += w->bytes;
			up_submit(r->up, w);
		} else if (w->state == W_PENDING) {
			up_submit(r->up, w);
		}
	}
	req_throttle(c);
}

static void up_flush(struct client *c)
{
	struct request *r = &c->req;
	struct wreq *w = r->ub;

	if (w == NULL)
		return;
	r->ub = NULL;
	if (w->bytes == 0 || r->discard ||
	    (!r->retain && !up_writable(r->up))) {
		wreq_put(w);
		return;
	}
	w->state = W_PENDING;
	r->up_queued += w->bytes;
	if (r->retain) {
		w->retained = true;
		if (r->rq_tail != NULL)
			r->rq_tail->next = w;
		else
			r->rq_head = w;
		r->rq_tail = w;
		r->retained += w->bytes;
	}
	if (up_writable(r->up))
		up_submit(r->up, w);
	if (r->retain && r->retained > RETAIN_MAX && up_writable(r->up))
		req_unretain(r);
	req_throttle(c);
}

static struct wreq *up_batch(struct client *c)
{
	struct request *r = &c->req;

	if (r->ub != NULL && wreq_full(r->ub))
		up_flush(c);
	if (r->ub == NULL)
		r->ub = wreq_get(c->gw);
	return r->ub;
}

/* Writes toward the client. */

static void client_write_cb(uv_write_t *req, int status)
{
	struct wreq *w = container_of(req, struct wreq, req);
	struct client *c = req->handle->data;

	c->out_queued -= w->bytes;
	wreq_put(w);
	if (status < 0) {
		client_close(c, false);
		return;
	}
	if (c->out_throttled && c->out_queued <= QUEUE_LOW) {
		c->out_throttled = false;
		if (c->req.up != NULL)
			up_update_read(c->req.up);
	}
	if (c->req.active && !c->req.out_done)
		client_touch(c);
}

static void tls_write_cb(uv_write_t *req, int status)
{
	struct tls_write *t = container_of(req, struct tls_write, req);
	struct client *c = req->handle->data;

	c->out_queued -= t->len;
	free(t->data);
	free(t);
	if (status < 0) {
		client_close(c, false);
		return;
	}
	if (c->out_throttled && c->out_queued <= QUEUE_LOW) {
		c->out_throttled = false;
		if (c->req.up != NULL)
			up_update_read(c->req.up);
	}
	if (c->req.active && !c->req.out_done)
		client_touch(c);
}

/* TLS: queues the ciphertext waiting in the client's session. Returns 0,
 * or a negative code (the caller marks the client broken). */
static int tls_send(struct client *c)
{
	struct tls_write *t;
	uv_buf_t b;
	char *data;
	size_t len = tls_conn_take_out(c->tls, &data);

	if (len == 0)
		return 0;
	t = xcalloc(1, sizeof(*t));
	t->data = data;
	t->len = len;
	b = uv_buf_init(data, (unsigned)len);
	if (uv_write(&t->req, (uv_stream_t *)&c->tcp, &b, 1,
		     tls_write_cb) < 0) {
		free(data);
		free(t);
		return MDS_E_SYS;
	}
	c->out_queued += len;
	return 0;
}

/* TLS: encrypts the batch w (released here) and queues the records. */
static int tls_flush(struct client *c, struct wreq *w)
{
	int rc = 0;

	for (unsigned k = 0; k < w->n && rc == 0; k++) {
		const struct slice *sl = &w->s[k];

		rc = tls_conn_write(c->tls, sl->blk ? sl->blk->data + sl->off
						    : w->own.data + sl->off,
				    sl->len);
	}
	wreq_put(w);
	return rc != 0 ? rc : tls_send(c);
}

static void client_flush(struct client *c)
{
	struct wreq *w = c->cb;
	int rc;

	if (w == NULL)
		return;
	c->cb = NULL;
	if (w->bytes == 0 || c->closing || c->broken) {
		wreq_put(w);
		return;
	}
	if (c->tls != NULL) {
		c->broken = tls_flush(c, w) != 0;
		if (c->out_queued >= QUEUE_HIGH && !c->out_throttled) {
			c->out_throttled = true;
			if (c->req.up != NULL)
				up_update_read(c->req.up);
		}
		return;
	}
	w->state = W_INFLIGHT;
	rc = wreq_write(w, (uv_stream_t *)&c->tcp, client_write_cb);
	if (rc != 0) {
		/* Written at once, or failed: closing here could pull state
		 * from under a parser callback; the next safe point does. */
		c->broken = rc < 0;
		wreq_put(w);
		return;
	}
	c->out_queued += w->bytes;
	if (c->out_queued >= QUEUE_HIGH && !c->out_throttled) {
		c->out_throttled = true;
		if (c->req.up != NULL)
			up_update_read(c->req.up);
	}
}

static struct wreq *client_batch(struct client *c)
{
	if (c->cb != NULL && wreq_full(c->cb))
		client_flush(c);
	if (c->cb == NULL)
		c->cb = wreq_get(c->gw);
	return c->cb;
}

/* Requests: errors made here, ending, routing. */

static void req_release_inst(struct worker *gw, struct request *r)
{
	if (r->inst == NULL)
		return;
	SHARED_SUB(r->inst->inflight, 1);
	__atomic_fetch_sub(&r->inst->sh->outstanding, 1, __ATOMIC_RELAXED);
	inst_unref(r->inst, gw);
	r->inst = NULL;
}

/* Lets go of the upstream: back to its pool if it can serve again. */
static void req_release_up(struct client *c, bool reusable)
{
	struct request *r = &c->req;
	struct upconn *up = r->up;
	struct inst *in;

	if (up == NULL)
		return;
	r->up = NULL;
	up->client = NULL;
	in = up->inst;
	if (reusable && up->state == UP_ACTIVE && up->keepalive &&
	    up->resp_done && up->nwrites == 0 && in->routed &&
	    in->nidle < c->gw->lim.max_idle_per_instance && !c->gw->closing) {
		up->state = UP_IDLE;
		list_add(&in->idle, &up->idle);
		in->nidle++;
		up_update_read(up);
		return;
	}
	up_close(up);
}

/*
 * Answers the request from the gateway itself with a JSON error. Whatever
 * remains of the request body is read and dropped; the upstream, if any, is
 * closed.
 */
static void local_error(struct client *c, int status, const char *code,
			const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void local_error(struct client *c, int status, const char *code,
			const char *fmt, ...)
{
	struct request *r = &c->req;
	char msg[384];
	struct buf body;
	struct wreq *w;
	size_t from;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Always fits: the code is a short constant, msg is capped. */
	buf_init(&body, sizeof(msg) * JSONSTR_MAX_GROWTH + 96);
	buf_printf(&body, "{\"code\":\"%s\",\"message\":\"", code);
	jsonstr_escape(&body, msg);
	buf_addstr(&body, "\"}");

	req_unretain(r);
	wreq_put(r->ub);
	r->ub = NULL;
	if (r->up != NULL) {
		struct upconn *up = r->up;

		r->up = NULL;
		up->client = NULL;
		up_close(up);
	}
	req_release_inst(c->gw, r);
	r->up_queued = 0;
	r->throttled = false;
	r->discard = true;

	w = client_batch(c);
	from = w->own.len;
	if (buf_printf(&w->own, "HTTP/1.1 %d %s\r\n"
		       "Content-Type: application/json\r\n"
		       "Content-Length: %zu\r\n%s%s\r\n%s", status,
		       hparse_reason(status), body.len,
		       status == 503 ? "Retry-After: 1\r\n" : "",
		       r->keepalive ? (client_http11(c) ? ""
				       : "Connection: keep-alive\r\n")
				    : "Connection: close\r\n",
		       buf_str(&body)) == 0)
		wreq_own(w, from);
	buf_free(&body);
	r->status = status;
	r->gw_error = status >= 502 && status <= 504;
	r->out_done = true;
	r->t_end = uv_hrtime();
}

static unsigned lat_bucket(uint64_t us)
{
	unsigned i = 0;

	while (i < GATEWAY_LAT_BUCKETS - 1 && us > gateway_lat_bounds_us[i])
		i++;
	return i;
}

/*
 * Counts a request that is over in its deployment's counters and its
 * instance's in-flight count, and notes it for the owner. Runs before the
 * last bytes of a complete response go out, so that a client that has its
 * answer finds it counted; req_end() runs it for the others.
 */
static void req_account(struct client *c)
{
	struct request *r = &c->req;
	uint64_t end = r->out_done ? r->t_end : uv_hrtime();
	uint64_t us = (end - r->t0) / 1000;
	int cls = r->status >= 100 && r->status < 600 ? r->status / 100 : 0;

	if (r->accounted)
		return;
	r->accounted = true;
	if (r->dep != NULL) {
		struct gateway_counters *k = &r->dep->ctr;

		SHARED_ADD(k->requests, 1);
		SHARED_ADD(k->by_class[cls], 1);
		if (cls != 0)
			SHARED_ADD(r->dep->by_status[r->status -
						     GATEWAY_STATUS_MIN], 1);
		SHARED_ADD(k->proxy_errors, r->gw_error);
		SHARED_ADD(k->latency_us_sum, us);
		SHARED_ADD(k->latency_hist[lat_bucket(us)], 1);
		SHARED_SUB(k->inflight, 1);
	}
	note_request(c, us);
	req_release_inst(c->gw, r);
}

/* Accounts the request if both its directions are complete. */
static void req_account_done(struct client *c)
{
	if (c->req.active && c->req.in_done && c->req.out_done)
		req_account(c);
}

/* Accounts a request that is over and frees what it held. */
static void req_end(struct client *c)
{
	struct request *r = &c->req;

	hold_drop(c);
	req_account(c);
	if (r->dep != NULL)
		dep_unref(r->dep);
	req_release_up(c, r->in_done && r->out_done);
	req_unretain(r);
	wreq_put(r->ub);
	memset(r, 0, sizeof(*r));
	r->retain = true;
}

/* Ends the request once both directions are complete; then the client
 * goes on with its next request or closes. */
static void req_maybe_finish(struct client *c)
{
	struct request *r = &c->req;
	bool keep;

	if (c->closing || !r->active || !r->in_done || !r->out_done)
		return;
	keep = r->keepalive && !c->gw->closing && !c->eof;
	req_end(c);
	if (!keep) {
		client_close(c, true);
		return;
	}
	client_arm(c);
	if (!c->in_parse)
		client_process(c);
}

/* Moves a request on after something happened outside its parser. */
static void client_settle(struct client *c)
{
	if (c->closing)
		return;
	up_flush(c);
	req_account_done(c);
	client_flush(c);
	if (c->broken) {
		client_close(c, false);
		return;
	}
	req_maybe_finish(c);
	if (!c->closing && !c->in_parse)
		client_update_read(c);
}

/* (Re)writes the retained request head for the instance chosen. */
static int req_head(struct client *c, const struct inst *in)
{
	struct request *r = &c->req;
	struct wreq *w = r->headw;
	size_t old = 0;
	int rc;

	if (w == NULL) {
		w = wreq_get(c->gw);
		w->state = W_PENDING;
		w->retained = true;
		w->next = r->rq_head;
		r->rq_head = w;
		if (r->rq_tail == NULL)
			r->rq_tail = w;
		r->headw = w;
	} else {
		old = w->bytes;
		wreq_clear(w);
	}
	rc = build_req_head(c, w, in);
	if (w->state == W_PENDING)
		r->up_queued = r->up_queued - old + w->bytes;
	r->retained = r->retained - old + w->bytes;
	return rc;
}

static void up_connect_cb(uv_connect_t *req, int status);
static void up_close_cb(uv_handle_t *h);

static struct upconn *up_new(struct worker *gw, struct inst *in)
{
	struct upconn *up = xcalloc(1, sizeof(*up));
	struct sockaddr_in sa;
	int rc;

	up->gw = gw;
	up->inst = in;
	up->port = in->port;
	in->refs++;
	list_init(&up->idle);
	list_add(&gw->ups, &up->link);
	buf_init(&up->head.raw, HEAD_MAX);
	uv_tcp_init(gw->loop, &up->tcp);
	up->tcp.data = up;
	up->state = UP_CONNECTING;
	uv_tcp_nodelay(&up->tcp, 1);
	uv_ip4_addr("127.0.0.1", in->port, &sa);
	rc = uv_tcp_connect(&up->connect, &up->tcp,
			    (const struct sockaddr *)&sa, up_connect_cb);
	if (rc != 0) {
		gw_log(gw, LOG_WARN, "connect to instance %s (port %u): %s",
		       in->id, (unsigned)in->port, uv_strerror(rc));
		up_close(up);
	}
	return up;
}

/* Gives the request a connection to its instance: pooled or new. */
static void req_attach(struct client *c, bool pooled)
{
	struct request *r = &c->req;
	struct upconn *up = pooled ? pool_pop(r->inst) : NULL;

	if (up == NULL)
		up = up_new(c->gw, r->inst);
	up->client = c;
	up->got_bytes = false;
	up->sent = false;
	up->keepalive = false;
	up->resp_done = false;
	hparse_init(&up->parser, HPARSE_RESPONSE, &ures_settings, up);
	head_reset(&up->head);
	r->up = up;
	if (up_writable(up)) {
		up_update_read(up);
		req_submit_retained(c);
	}
}

/* Picks the least loaded instance not tried yet; NULL when none is left. */
static struct inst *req_pick(struct request *r)
{
	struct dep *d = r->dep;
	int i;

	if (d->n == 0 || r->ntried >= d->n || r->ntried >= MAX_TRIES)
		return NULL;
	for (size_t k = 0; k < d->n; k++) {
		d->load[k] = __atomic_load_n(&d->ups[k]->sh->outstanding,
					     __ATOMIC_RELAXED);
		for (unsigned t = 0; t < r->ntried; t++)
			if (r->tried[t] == d->ups[k])
				d->load[k] = UINT32_MAX;
	}
	i = route_pick(d->load, d->n, &d->cursor);
	return d->load[i] == UINT32_MAX ? NULL : d->ups[i];
}

static void req_route(struct client *c)
{
	struct request *r = &c->req;
	struct inst *in = req_pick(r);

	if (in == NULL) {
		if (r->ntried == 0 && r->dep->n == 0 && r->dep->holdable &&
		    hold_add(c))
			return;
		if (r->ntried == 0)
			local_error(c, 503, "NoReadyInstance",
				    "deployment %s has no ready instance",
				    r->dep->id);
		else
			local_error(c, 502, "BadGateway",
				    "no instance of deployment %s could be "
				    "reached", r->dep->id);
		return;
	}
	r->tried[r->ntried++] = in;
	r->inst = in;
	SHARED_ADD(in->inflight, 1);
	__atomic_fetch_add(&in->sh->outstanding, 1, __ATOMIC_RELAXED);
	in->refs++;
	if (req_head(c, in) != 0) {
		r->keepalive = false;
		local_error(c, 431, "RequestHeaderFieldsTooLarge",
			    "request head too large");
		return;
	}
	req_attach(c, true);
}

/*
 * Hold queue. A request for a deployment with no routable instance (scaled
 * to zero, or not ready yet) waits here instead of getting 503: the owner is
 * asked at once for an instance (a NOTE_COLD), and when routes with an
 * instance arrive the held requests are routed in order of arrival. The
 * request's body meanwhile waits in its retained writes (reading stops past
 * QUEUE_HIGH). Bounded by gw->hold: requests and bytes per deployment and in
 * total, and time; beyond, 503 with Retry-After and the reason. A client
 * that goes away leaves the queue at once (req_end); a deployment removed
 * meanwhile answers its held requests 404.
 */

/* Asks the owner for an instance of d, once until d has one. */
static void hold_ask(struct worker *gw, struct dep *d)
{
	struct note *n;
	bool first = false;

	if (d->cold_asked)
		return;
	d->cold_asked = true;
	uv_mutex_lock(&gw->mu);
	n = note_new(gw, NOTE_COLD);
	if (n != NULL) {
		n->str[0] = note_cstr(gw, d->id);
		first = gw->out.n == 1;
	}
	uv_mutex_unlock(&gw->mu);
	note_posted(gw, first);
}

/* Holds c's request; false (and the request answered 503) past a limit,
 * or when holding is off. */
static bool hold_add(struct client *c)
{
	struct worker *gw = c->gw;
	struct request *r = &c->req;
	struct dep *d = r->dep;
	const struct gateway_hold *h = &gw->hold;
	uint64_t bytes = c->head.raw.len;
	const char *why = NULL;

	if (h->max_requests == 0 || h->timeout_ms == 0)
		return false;
	if (hparse_has_length(&c->parser))
		bytes += hparse_length(&c->parser);
	if (d->nheld >= h->max_requests)
		why = "requests held for this deployment";
	else if (gw->nheld >= h->max_requests_total)
		why = "requests held in total";
	else if (d->held_bytes + bytes > h->max_bytes)
		why = "bytes held for this deployment";
	else if (gw->held_bytes + bytes > h->max_bytes_total)
		why = "bytes held in total";
	hold_ask(gw, d);
	if (why != NULL) {
		r->keepalive = false;
		local_error(c, 503, "HoldLimit", "deployment %s is starting "
			    "and the limit of %s is reached", d->id, why);
		return true;
	}
	r->held = true;
	r->held_at = uv_now(gw->loop);
	r->held_bytes = bytes;
	list_add(d->held.prev, &r->hold);
	d->nheld++;
	d->held_bytes += bytes;
	gw->nheld++;
	gw->held_bytes += bytes;
	SHARED_ADD(d->ctr.held, 1);
	c->armed = h->timeout_ms;
	uv_timer_start(&c->timer, client_timer_cb, h->timeout_ms, 0);
	return true;
}

/* Takes c's request out of the queue, if held, and counts the wait. */
static void hold_drop(struct client *c)
{
	struct worker *gw = c->gw;
	struct request *r = &c->req;

	if (!r->held)
		return;
	r->held = false;
	list_del(&r->hold);
	r->dep->nheld--;
	r->dep->held_bytes -= r->held_bytes;
	gw->nheld--;
	gw->held_bytes -= r->held_bytes;
	SHARED_ADD(r->dep->ctr.held_done, 1);
	SHARED_ADD(r->dep->ctr.held_us_sum,
		   (uv_now(gw->loop) - r->held_at) * 1000);
}

/* The client's timer while held: true (and 503 sent) once the hold timed
 * out, else re-armed for the rest. */
static bool hold_timer(struct client *c)
{
	struct request *r = &c->req;
	uint64_t waited = uv_now(c->gw->loop) - r->held_at;
	uint64_t tmo = c->gw->hold.timeout_ms;

	if (waited < tmo) {
		c->armed = tmo - waited;
		uv_timer_start(&c->timer, client_timer_cb, c->armed, 0);
		return false;
	}
	hold_drop(c);
	r->keepalive = false;
	local_error(c, 503, "HoldTimeout", "deployment %s had no ready "
		    "instance within %" PRIu64 " ms", r->dep->id, tmo);
	return true;
}

static struct client *hold_first(struct dep *d)
{
	return container_of(d->held.next, struct client, req.hold);
}

/* Routes d's held requests, oldest first, once d has an instance. */
static void hold_release(struct dep *d)
{
	if (d->n == 0)
		return;
	d->cold_asked = false;
	while (!list_empty(&d->held)) {
		struct client *c = hold_first(d);

		hold_drop(c);
		client_arm(c);
		req_route(c);
		client_settle(c);
	}
}

/* Answers d's held requests 404: d was removed. */
static void hold_gone(struct dep *d)
{
	while (!list_empty(&d->held)) {
		struct client *c = hold_first(d);

		hold_drop(c);
		c->req.keepalive = false;
		local_error(c, 404, "NotFound", "deployment %s was deleted "
			    "while the request waited for an instance", d->id);
		client_settle(c);
	}
}

/* Decides what a lost upstream connection means for its request: another
 * instance, one replay, a 502, or the end of the client connection. */
static void req_upstream_lost(struct client *c, const struct upconn *up)
{
	struct request *r = &c->req;

	if (c->closing || !r->active || r->out_done)
		return;
	if (!up->connected && r->retain) {
		if (!up->inst->down)
			gw_log(c->gw, LOG_WARN, "instance %s (port %u) of %s "
			       "is unreachable", up->inst->id,
			       (unsigned)up->port, r->dep->id);
		up->inst->down = true;
		req_release_inst(c->gw, r);
		req_route(c);
	} else if (up->reused && !up->got_bytes && r->retain && !r->retried &&
		   (!up->sent || !r->unsafe ||
		    r->dep->replay == GATEWAY_REPLAY_ALL)) {
		r->retried = true;
		req_attach(c, false);
	} else if (r->status == 0) {
		local_error(c, 502, "BadGateway",
			    "instance %s of deployment %s failed%s",
			    up->inst->id, r->dep->id,
			    r->unsafe && up->sent && up->reused
			    ? " (the request may have run: it is not replayed)"
			    : "");
	} else {
		client_close(c, false);
		return;
	}
	client_settle(c);
}

/* The client's request parser. */

static int creq_begin(struct hparse *p)
{
	struct client *c = p->data;

	head_reset(&c->head);
	c->req.active = true;
	c->req.t0 = uv_hrtime();
	c->head_at = uv_now(c->gw->loop);
	client_arm(c);
	return 0;
}

static int creq_url(struct hparse *p, const char *at, size_t len)
{
	struct client *c = p->data;

	return head_first(&c->head, at, len, URL_MAX, 414);
}

static int creq_field(struct hparse *p, const char *at, size_t len)
{
	return head_field(&((struct client *)p->data)->head, at, len);
}

static int creq_value(struct hparse *p, const char *at, size_t len)
{
	return head_value(&((struct client *)p->data)->head, at, len);
}

static int creq_headers(struct hparse *p)
{
	struct client *c = p->data;
	struct request *r = &c->req;
	const char *url = buf_str(&c->head.raw);
	struct hparse_url u;
	const char *path, *seg;
	size_t plen, slen;

	c->head.done = true;
	c->window_at = uv_now(c->gw->loop);
	c->window_bytes = 0;
	client_arm(c);
	r->keepalive = hparse_keep_alive(p) && !c->gw->closing;
	r->head_method = hparse_method_is(p, "HEAD");
	r->unsafe = hparse_method_is(p, "POST") ||
		    hparse_method_is(p, "PATCH") || hparse_method_is(p, "LOCK");
	r->chunked_in = hparse_chunked(p);
	r->rid = ++c->gw->rid_seq;
	if (hparse_method_is(p, "CONNECT")) {
		r->keepalive = false;
		local_error(c, 405, "MethodNotAllowed",
			    "CONNECT is not supported");
		return 0;
	}
	if (hparse_url(url, c->head.first_len, &u) != 0 || !u.path.set) {
		r->keepalive = false;
		local_error(c, 400, "BadRequest", "malformed request URL");
		return 0;
	}
	path = url + u.path.off;
	plen = u.path.len;
	seg = path + 1;
	slen = 0;
	while (1 + slen < plen && seg[slen] != '/')
		slen++;
	if (plen == 0 || path[0] != '/')
		slen = 0;
	else
		r->path_off = (uint32_t)(seg + slen - url);
	r->path_len = plen > 0 ? (uint32_t)(plen - 1 - slen) : 0;
	if (u.query.set) {
		r->query_off = (uint32_t)u.query.off;
		r->query_len = (uint32_t)u.query.len;
	}
	r->dep = slen > 0 ? dep_route(c->gw, seg, slen) : NULL;
	if (r->dep == NULL) {
		local_error(c, 404, "NotFound", "deployment %.*s not found",
			    (int)(slen > 256 ? 256 : slen), seg);
		return 0;
	}
	r->dep->refs++;
	SHARED_ADD(r->dep->ctr.inflight, 1);
	req_route(c);
	return 0;
}

static int creq_body(struct hparse *p, const char *at, size_t len)
{
	struct client *c = p->data;
	struct wreq *w;

	c->window_bytes += len;
	if (c->req.discard)
		return 0;
	w = up_batch(c);
	if (c->req.chunked_in) {
		wreq_chunk(w, len);
		wreq_ref(w, c->pend, at, len);
		wreq_copy(w, "\r\n", 2);
	} else {
		wreq_ref(w, c->pend, at, len);
	}
	return 0;
}

static int creq_complete(struct hparse *p)
{
	struct client *c = p->data;
	struct request *r = &c->req;

	if (r->chunked_in && !r->discard)
		wreq_copy(up_batch(c), "0\r\n\r\n", 5);
	r->in_done = true;
	client_arm(c);
	hparse_pause(p, true);
	return 0;
}

static const struct hparse_settings creq_settings = {
	.on_message_begin = creq_begin,
	.on_url = creq_url,
	.on_header_field = creq_field,
	.on_header_value = creq_value,
	.on_headers_complete = creq_headers,
	.on_body = creq_body,
	.on_message_complete = creq_complete,
};

/* Answers input that is not HTTP, or too large, and closes. */
static void client_bad_request(struct client *c, enum hparse_error err)
{
	struct request *r = &c->req;
	int status = c->head.overflow ? c->head.overflow
		     : err == HPARSE_E_TOO_LARGE ? 431 : 400;

	block_unref(c->pend);
	c->pend = NULL;
	if (r->status != 0) {
		client_close(c, false);
		return;
	}
	if (!r->active) {
		r->active = true;
		r->t0 = uv_hrtime();
	}
	r->keepalive = false;
	r->in_done = true;
	if (status == 414)
		local_error(c, 414, "URITooLong",
			    "request URL longer than %u bytes", URL_MAX);
	else if (status == 431 && c->head.overflow == 0)
		local_error(c, 431, "RequestHeaderFieldsTooLarge", "%s",
			    hparse_error_text(&c->parser));
	else if (status == 431)
		local_error(c, 431, "RequestHeaderFieldsTooLarge",
			    "request head larger than %u bytes", HEAD_MAX);
	else
		local_error(c, 400, "BadRequest", "malformed request: %s",
			    hparse_error_text(&c->parser));
}

/* Parses buffered client input up to the end of the current request. */
static void client_process(struct client *c)
{
	struct request *r = &c->req;

	if (c->in_parse)
		return;
	c->in_parse = true;
	while (!c->closing && c->pend != NULL && !r->in_done) {
		struct block *b = c->pend;
		size_t left = b->len - c->pend_off, n;
		enum hparse_error err;

		hparse_pause(&c->parser, false);
		n = hparse_execute(&c->parser, b->data + c->pend_off, left);
		err = hparse_error(&c->parser);
		c->pend_off += n;
		if (c->pend_off >= b->len || (err == HPARSE_OK && n < left)) {
			c->pend = NULL;
			block_unref(b);
		}
		if (err != HPARSE_OK && err != HPARSE_PAUSED)
			client_bad_request(c, err);
		up_flush(c);
		req_account_done(c);
		client_flush(c);
		if (c->broken)
			client_close(c, false);
		req_maybe_finish(c);
	}
	c->in_parse = false;
	if (!c->closing)
		client_update_read(c);
}

/*
 * TLS: turns the nread bytes of ciphertext in b into plaintext in place
 * and answers the handshake. Returns the plaintext's length (0: none
 * yet), or UV_EOF when the client ended TLS, or a negative code.
 */
static ssize_t tls_input(struct client *c, struct block *b, ssize_t nread)
{
	size_t len = 0, got;
	int rc = tls_conn_push(c->tls, b->data, (size_t)nread);

	while (rc == 0) {
		rc = tls_conn_pull(c->tls, b->data + len, BLOCK_SIZE - len,
				   &got);
		if (got == 0)
			break;
		len += got;
	}
	if (tls_send(c) != 0 || rc < 0)
		return UV_EPROTO;
	if (rc == 1 && len == 0)
		return UV_EOF;
	if (len == BLOCK_SIZE) /* cannot be, given TLS_READ_MAX */
		return UV_ENOBUFS;
	return (ssize_t)len;
}

static void client_read_cb(uv_stream_t *s, ssize_t nread,
			   const uv_buf_t *buf)
{
	struct client *c = s->data;
	struct block *b = block_of(buf);

	if (c->tls != NULL && nread > 0 && !c->closing) {
		nread = tls_input(c, b, nread);
		if (nread == 0) {
			block_unref(b);
			return;
		}
	}
	if (nread <= 0 || c->closing) {
		/* While lingering, input is dropped until the peer closes. A
		 * client that half-closes after a complete request still
		 * gets its response (then the connection closes), unless
		 * the request is still held: that one is dropped. */
		block_unref(b);
		if (nread < 0 && c->closing) {
			client_close_handles(c);
		} else if (nread == UV_EOF && c->req.in_done &&
			   !c->req.held) {
			c->eof = true;
			client_update_read(c);
		} else if (nread < 0) {
			client_close(c, false);
		}
		return;
	}
	b->len = (uint32_t)nread;
	c->pend = b;
	c->pend_off = 0;
	client_touch(c);
	client_process(c);
}

/* The upstream's response parser. */

static int ures_begin(struct hparse *p)
{
	struct upconn *up = p->data;

	head_reset(&up->head);
	return 0;
}

static int ures_status(struct hparse *p, const char *at, size_t len)
{
	struct upconn *up = p->data;

	return head_first(&up->head, at, len, 1024, 502);
}

static int ures_field(struct hparse *p, const char *at, size_t len)
{
	return head_field(&((struct upconn *)p->data)->head, at, len);
}

static int ures_value(struct hparse *p, const char *at, size_t len)
{
	return head_value(&((struct upconn *)p->data)->head, at, len);
}

/* Forwards the response head, choosing how the body goes to the client. */
static int ures_headers(struct hparse *p)
{
	struct upconn *up = p->data;
	struct client *c = up->client;
	struct request *r = &c->req;
	unsigned status = hparse_status(p);
	bool skip, c11 = client_http11(c), drop_te = false, add_te = false;

	up->head.done = true;
	if (status < 100 || status == 101)
		return -1;
	if (status < 200) {
		if (c11 && build_resp_head(c, up, client_batch(c), false,
					   false, false) != 0)
			return -1;
		return 1;
	}
	skip = r->head_method || status == 204 || status == 304;
	if (skip) {
		r->out_frame = FRAME_NONE;
	} else if (hparse_chunked(p)) {
		r->out_frame = c11 ? FRAME_CHUNKED : FRAME_RAW;
		drop_te = !c11;
		if (!c11)
			r->keepalive = false;
	} else if (hparse_has_length(p)) {
		r->out_frame = FRAME_RAW;
	} else {
		/* Delimited by the upstream closing: chunked to the client
		 * when it can take it, else delimited by our close too. */
		r->out_frame = c11 ? FRAME_CHUNKED : FRAME_RAW;
		add_te = c11;
		if (!c11)
			r->keepalive = false;
	}
	if (build_resp_head(c, up, client_batch(c), true, drop_te, add_te) !=
	    0)
		return -1;
	r->resp_head = true;
	r->status = (int)status;
	return skip ? 1 : 0;
}

static int ures_body(struct hparse *p, const char *at, size_t len)
{
	struct upconn *up = p->data;
	struct client *c = up->client;
	struct wreq *w = client_batch(c);

	if (c->req.out_frame == FRAME_CHUNKED) {
		wreq_chunk(w, len);
		wreq_ref(w, up->cur, at, len);
		wreq_copy(w, "\r\n", 2);
	} else {
		wreq_ref(w, up->cur, at, len);
	}
	return 0;
}

static int ures_complete(struct hparse *p)
{
	struct upconn *up = p->data;
	struct request *r = &up->client->req;

	if (hparse_status(p) < 200)
		return 0;
	if (r->out_frame == FRAME_CHUNKED)
		wreq_copy(client_batch(up->client), "0\r\n\r\n", 5);
	r->out_done = true;
	r->t_end = uv_hrtime();
	up->resp_done = true;
	up->keepalive = hparse_keep_alive(p);
	hparse_pause(p, true);
	return 0;
}

static const struct hparse_settings ures_settings = {
	.on_message_begin = ures_begin,
	.on_status = ures_status,
	.on_header_field = ures_field,
	.on_header_value = ures_value,
	.on_headers_complete = ures_headers,
	.on_body = ures_body,
	.on_message_complete = ures_complete,
};

static void up_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct upconn *up = s->data;
	struct client *c = up->client;
	struct block *b = block_of(buf);
	enum hparse_error err;
	size_t n;

	if (nread == 0 || up->state == UP_CLOSING) {
		block_unref(b);
		return;
	}
	if (nread < 0 || c == NULL) {
		/* An idle connection closed or spoke out of turn, or the
		 * upstream closed: the end of a close-delimited body, or an
		 * error the close callback sorts out. */
		block_unref(b);
		if (c != NULL && nread == UV_EOF && c->req.resp_head &&
		    !c->req.out_done) {
			up->cur = NULL;
			hparse_execute(&up->parser, NULL, 0);
			if (c->req.out_done) {
				up->keepalive = false;
				client_settle(c);
				return;
			}
		}
		up_close(up);
		return;
	}
	b->len = (uint32_t)nread;
	up->got_bytes = true;
	if (c->req.retain)
		req_unretain(&c->req);
	up->cur = b;
	n = hparse_execute(&up->parser, b->data, (size_t)nread);
	up->cur = NULL;
	block_unref(b);
	err = hparse_error(&up->parser);
	if (err == HPARSE_PAUSED && n < (size_t)nread)
		up->keepalive = false; /* bytes past the response */
	if (err != HPARSE_OK && err != HPARSE_PAUSED) {
		gw_log(up->gw, LOG_WARN,
		       "instance %s (port %u): bad response: %s",
		       up->inst->id, (unsigned)up->port,
		       hparse_error_text(&up->parser));
		client_flush(c);
		up_close(up);
		return;
	}
	client_touch(c);
	client_settle(c);
}

/* Upstream connection life. */

static void up_connect_cb(uv_connect_t *req, int status)
{
	struct upconn *up = container_of(req, struct upconn, connect);
	struct client *c = up->client;

	if (up->state == UP_CLOSING)
		return;
	if (status < 0) {
		gw_log(up->gw, LOG_DEBUG, "connect to port %u: %s",
		       (unsigned)up->port, uv_strerror(status));
		up_close(up);
		return;
	}
	up->state = UP_ACTIVE;
	up->connected = true;
	up->inst->down = false;
	if (c == NULL) {
		up_close(up);
		return;
	}
	up_update_read(up);
	req_submit_retained(c);
	client_touch(c);
}

static void up_close_cb(uv_handle_t *h)
{
	struct upconn *up = h->data;
	struct worker *gw = up->gw;
	struct client *c = up->client;

	list_del(&up->link);
	if (c != NULL) {
		c->req.up = NULL;
		if (!gw->closing)
			req_upstream_lost(c, up);
	}
	inst_unref(up->inst, gw);
	head_free(&up->head);
	free(up);
}

static void up_close(struct upconn *up)
{
	if (up->state == UP_CLOSING)
		return;
	if (up->state == UP_IDLE) {
		list_del(&up->idle);
		up->inst->nidle--;
	}
	up->state = UP_CLOSING;
	uv_close((uv_handle_t *)&up->tcp, up_close_cb);
}

/* Client connection life. */

static void client_close_cb(uv_handle_t *h)
{
	struct client *c = h->data;
	struct worker *gw = c->gw;

	if (--c->nopen > 0)
		return;
	list_del(&c->link);
	gw->nclients--;
	head_free(&c->head);
	tls_conn_free(c->tls);
	free(c);
}

static void client_close_handles(struct client *c)
{
	if (c->handles_closed)
		return;
	c->handles_closed = true;
	c->nopen = 2;
	uv_close((uv_handle_t *)&c->tcp, client_close_cb);
	uv_close((uv_handle_t *)&c->timer, client_close_cb);
}

static void client_shutdown_cb(uv_shutdown_t *req, int status)
{
	struct client *c = req->handle->data;

	if (status < 0 || c->eof)
		client_close_handles(c);
}

/*
 * Closes a client: graceful after a complete response (flush, FIN, then read
 * and drop until the peer closes or LINGER_MS pass, so that unread input
 * does not turn into a reset that eats our response), abortive otherwise.
 */
static void client_close(struct client *c, bool graceful)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->req.active)
		req_end(c);
	wreq_put(c->cb);
	c->cb = NULL;
	block_unref(c->pend);
	c->pend = NULL;
	if (!graceful || c->broken ||
	    uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp,
			client_shutdown_cb) != 0) {
		client_close_handles(c);
		return;
	}
	uv_timer_start(&c->timer, client_timer_cb, LINGER_MS, 0);
	client_update_read(c);
}

static void client_timer_cb(uv_timer_t *t)
{
	struct client *c = t->data;
	struct request *r = &c->req;

	uint64_t idle = uv_now(c->gw->loop) - c->active_at;

	if (c->closing) {
		client_close_handles(c);
	} else if (r->held) {
		if (hold_timer(c))
			client_settle(c);
	} else if (client_sending(c)) {
		client_check_pace(c);
	} else if (idle < client_timeout(c)) {
		c->armed = client_timeout(c) - idle;
		uv_timer_start(t, client_timer_cb, c->armed, 0);
	} else if (r->in_done && r->status == 0) {
		local_error(c, 504, "GatewayTimeout",
			    "instance of deployment %s did not answer in %"
			    PRIu64 " ms", r->dep ? r->dep->id : "?",
			    c->gw->lim.response_timeout_ms);
		client_settle(c);
	} else {
		client_close(c, false);
	}
}

/* Answers 408 to a request whose head or body is too slow, and closes
 * (or just closes, once a response has begun). */
static void client_too_slow(struct client *c, const char *what)
{
	struct request *r = &c->req;

	block_unref(c->pend);
	c->pend = NULL;
	r->keepalive = false;
	r->in_done = true;
	local_error(c, 408, "RequestTimeout", "%s", what);
	client_settle(c);
}

/* The timer of a client that sends a request: past the head's deadline,
 * or at the end of a body window slower than the minimum rate, 408. A
 * window in which the gateway held the body back (the instance read
 * slowly) does not count. */
static void client_check_pace(struct client *c)
{
	const struct gateway_limits *lim = &c->gw->lim;
	uint64_t left = client_timeout(c);

	if (left > 0) {
		c->armed = left;
		uv_timer_start(&c->timer, client_timer_cb, left, 0);
	} else if (!c->head.done) {
		client_too_slow(c, "the request head did not arrive in time");
	} else if (c->window_bytes >=
			   (uint64_t)lim->body_min_rate * BODY_WINDOW_MS / 1000 ||
		   c->req.throttled || c->pend != NULL) {
		c->window_at = uv_now(c->gw->loop);
		c->window_bytes = 0;
		c->armed = BODY_WINDOW_MS;
		uv_timer_start(&c->timer, client_timer_cb, BODY_WINDOW_MS, 0);
	} else {
		client_too_slow(c, "the request body arrived too slowly");
	}
}

static void reject_close_cb(uv_handle_t *h)
{
	free(h);
}

/* Accepts a connection and closes it at once. */
static void reject(struct worker *gw, uv_stream_t *server)
{
	uv_tcp_t *t = xmalloc(sizeof(*t));

	uv_tcp_init(gw->loop, t);
	(void)uv_accept(server, (uv_stream_t *)t);
	uv_close((uv_handle_t *)t, reject_close_cb);
}

/* The client newc takes the place of when all slots are
 * taken: the one that has waited longest without a complete request (idle,
 * or sending one slowly) from the same address if there is one, else from
 * any address; NULL if every client has a request in the works. So clients
 * that open many connections crowd out their own first. */
static struct client *oldest_waiting(struct worker *gw,
				     const struct client *newc)
{
	struct client *any = NULL, *own = NULL;
	uint64_t any_at = 0, own_at = 0;

	for (struct link *l = gw->clients.next; l != &gw->clients;
	     l = l->next) {
		struct client *c = container_of(l, struct client, link);
		uint64_t at;

		if (c == newc || c->closing || c->req.in_done ||
		    c->req.status != 0)
			continue;
		at = c->req.active ? c->head_at : c->active_at;
		/* Newest first in the list: on a tie, the older wins. */
		if (any == NULL || at <= any_at) {
			any = c;
			any_at = at;
		}
		if (strcmp(c->ip, newc->ip) == 0 &&
		    (own == NULL || at <= own_at)) {
			own = c;
			own_at = at;
		}
	}
	return own != NULL ? own : any;
}

/* Counts the other open clients from c's address. */
static uint32_t clients_from(struct worker *gw, const struct client *c)
{
	uint32_t n = 0;

	for (struct link *l = gw->clients.next; l != &gw->clients;
	     l = l->next) {
		const struct client *o = container_of(l, struct client, link);

		if (o != c && !o->closing && strcmp(o->ip, c->ip) == 0)
			n++;
	}
	return n;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct worker *gw = server->data;
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	struct client *c;

	if (status < 0) {
		gw_log(gw, LOG_WARN, "accept: %s", uv_strerror(status));
		return;
	}
	if (gw->nclients >= 2 * (uint64_t)gw->lim.max_clients) {
		/* Closing clients not gone yet: no room even to look. */
		reject(gw, server);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->gw = gw;
	uv_tcp_init(gw->loop, &c->tcp);
	uv_timer_init(gw->loop, &c->timer);
	gw->nclients++;
	c->tcp.data = c;
	c->timer.data = c;
	list_add(&gw->clients, &c->link);
	buf_init(&c->head.raw, HEAD_MAX);
	hparse_init(&c->parser, HPARSE_REQUEST, &creq_settings, c);
	c->req.retain = true;
	if (gw->tls != NULL)
		c->tls = tls_conn_new(gw->tls);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		client_close(c, false);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET6)
			uv_ip6_name((struct sockaddr_in6 *)&ss, c->ip,
				    sizeof(c->ip));
		else
			uv_ip4_name((struct sockaddr_in *)&ss, c->ip,
				    sizeof(c->ip));
	}
	if (clients_from(gw, c) >= gw->lim.max_clients_per_addr) {
		client_close(c, false);
		return;
	}
	if (gw->nclients > gw->lim.max_clients) {
		struct client *victim = oldest_waiting(gw, c);

		if (victim == NULL) {
			client_close(c, false);
			return;
		}
		client_close(victim, false);
	}
	client_arm(c);
	client_update_read(c);
}

/* Binds a socket of its own with SO_REUSEPORT, so that every worker's
 * listener takes the same port and the kernel spreads the connections
 * (libuv 1.44 has no flag for it). */
static int bind_reuseport(uv_tcp_t *t, const struct sockaddr *sa)
{
	socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in);
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int on = 1, rc;

	if (fd < 0)
		return uv_translate_sys_error(errno);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
	    bind(fd, sa, len) != 0) {
		rc = uv_translate_sys_error(errno);
		close(fd);
		return rc;
	}
	rc = uv_tcp_open(t, fd);
	if (rc != 0)
		close(fd);
	return rc;
}

int worker_listen(struct worker *gw, const struct sockaddr *sa,
		  bool reuseport)
{
	int rc;

	gw->listener.data = gw;
	rc = reuseport ? bind_reuseport(&gw->listener, sa)
		       : uv_tcp_bind(&gw->listener, sa, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&gw->listener, 511,
			       on_connection);
	return rc;
}

/* The gateway, on its thread. */

/* Frees what the worker's loop held, once every handle is closed. */
static void worker_teardown(struct worker *gw)
{
	struct link *l, *next;

	uv_mutex_lock(&gw->mu);
	for (l = gw->deps.next; l != &gw->deps; l = next) {
		struct dep *d = container_of(l, struct dep, link);

		next = l->next;
		list_del(&d->link);
		d->refs = 1;
		dep_unref(d);
	}
	for (l = gw->insts.next; l != &gw->insts; l = next) {
		struct inst *in = container_of(l, struct inst, link);

		next = l->next;
		list_del(&in->link);
		ishared_unref(in->sh);
		free(in->id);
		free(in);
	}
	uv_mutex_unlock(&gw->mu);
	while (gw->free_blocks != NULL) {
		struct block *b = gw->free_blocks;

		gw->free_blocks = b->next;
		free(b);
	}
	while (gw->free_wreqs != NULL) {
		struct wreq *w = gw->free_wreqs;

		gw->free_wreqs = w->next;
		buf_free(&w->own);
		free(w);
	}
}

/* Runs the calls the owner posted, in order, and tells it they are done. */
static void wake_cb(uv_async_t *a)
{
	struct worker *gw = a->data;
	struct call *list, *next;

	uv_mutex_lock(&gw->mu);
	list = gw->calls;
	gw->calls = NULL;
	uv_mutex_unlock(&gw->mu);
	for (struct call *k = list; k != NULL; k = k->next)
		k->fn(gw, k->arg);
	uv_mutex_lock(&gw->mu);
	for (struct call *k = list; k != NULL; k = next) {
		next = k->next; /* k lives on the owner's stack until done */
		k->done = true;
	}
	uv_cond_broadcast(&gw->called);
	uv_mutex_unlock(&gw->mu);
}

/* Runs the worker's loop until worker_close() has closed every handle. */
void worker_run(struct worker *gw)
{
	uv_run(gw->loop, UV_RUN_DEFAULT);
	gw->loop_over = true;
	worker_teardown(gw);
	if (uv_loop_close(gw->loop) != 0)
		gw_log(gw, LOG_WARN, "loop closed with handles open");
	uv_mutex_lock(&gw->mu);
	gw->ended = true;
	uv_mutex_unlock(&gw->mu);
	uv_async_send(&gw->notify);
}

void worker_thread(void *arg)
{
	sigset_t all;

	/* Signals are the owner's loop's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	worker_run(arg);
}

/* Notes, from the worker's thread to the owner's. */

/* Makes room for a note; NULL when the owner is too far behind. Under mu. */
static struct note *note_new(struct worker *gw, enum note_kind kind)
{
	struct notes *ns = &gw->out;

	if (ns->n >= NOTES_MAX || ns->len >= (size_t)NOTES_MAX * 64)
		return NULL;
	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? ns->cap * 2 : 256;
		ns->v = xreallocarray(ns->v, ns->cap, sizeof(*ns->v));
	}
	ns->v[ns->n] = (struct note){ .kind = kind };
	for (int i = 0; i < 4; i++)
		ns->v[ns->n].str[i] = NOTE_NONE;
	return &ns->v[ns->n++];
}

/* Copies len bytes of s (NULL: none) into the notes; returns its offset.
 * Under mu. */
static uint32_t note_str(struct worker *gw, const char *s, size_t len)
{
	struct notes *ns = &gw->out;
	size_t off = ns->len;

	if (s == NULL)
		return NOTE_NONE;
	if (ns->len + len + 1 > ns->tcap) {
		while (ns->len + len + 1 > ns->tcap)
			ns->tcap = ns->tcap ? ns->tcap * 2 : 4096;
		ns->text = xrealloc(ns->text, ns->tcap);
	}
	memcpy(ns->text + off, s, len);
	ns->text[off + len] = '\0';
	ns->len += len + 1;
	return (uint32_t)off;
}

static uint32_t note_cstr(struct worker *gw, const char *s)
{
	return note_str(gw, s, s != NULL ? strlen(s) : 0);
}

static void flush_cb(uv_timer_t *t)
{
	struct worker *gw = t->data;

	uv_async_send(&gw->notify);
}

/*
 * Wakes the owner NOTES_DELAY_MS after a note went into an empty queue, so
 * that under load it wakes a hundred times a second, not once a request.
 * Once the gateway closes, or when its loop is over, at once.
 */
static void note_posted(struct worker *gw, bool first)
{
	if (!first)
		return;
	if (gw->closing || gw->loop_over)
		uv_async_send(&gw->notify);
	else if (!uv_is_active((uv_handle_t *)&gw->flush))
		uv_timer_start(&gw->flush, flush_cb, NOTES_DELAY_MS, 0);
}

/* Notes a finished request for the observer and the access log. */
static void note_request(struct client *c, uint64_t us)
{
	struct worker *gw = c->gw;
	const struct request *r = &c->req;
	int want = __atomic_load_n(&gw->group->want, __ATOMIC_RELAXED);
	struct note *n;
	bool first = false;

	if (want == 0 || (want == WANT_OBSERVE && r->dep == NULL))
		return;
	uv_mutex_lock(&gw->mu);
	n = note_new(gw, NOTE_REQUEST);
	if (n == NULL) {
		gw->unnoted++;
	} else {
		n->status = r->status;
		n->latency_us = us;
		n->str[0] = note_cstr(gw, r->dep != NULL ? r->dep->id : NULL);
		n->str[1] = note_cstr(gw, r->inst != NULL ? r->inst->id
							  : NULL);
		if (want & WANT_ACCESS) {
			const char *url = buf_str(&c->head.raw);
			size_t len = strcspn(url, "?");

			if (len > c->head.first_len)
				len = c->head.first_len;
			if (len > 512)
				len = 512;
			n->str[2] = note_cstr(gw, c->head.first_len > 0
					? hparse_method(&c->parser)
					: "-");
			n->str[3] = note_str(gw, url, len);
		}
		first = gw->out.n == 1;
	}
	uv_mutex_unlock(&gw->mu);
	note_posted(gw, first);
}

static void gw_log(struct worker *gw, enum log_level level, const char *fmt,
		   ...)
{
	char msg[512];
	struct note *n;
	bool first = false;
	va_list ap;

	if ((int)level > (int)__atomic_load_n(&log_current_level,
					      __ATOMIC_RELAXED))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	uv_mutex_lock(&gw->mu);
	n = note_new(gw, NOTE_LOG);
	if (n != NULL) {
		n->status = (int)level;
		n->str[0] = note_cstr(gw, msg);
		first = gw->out.n == 1;
	}
	uv_mutex_unlock(&gw->mu);
	note_posted(gw, first);
}


void worker_handles(struct worker *gw)
{
	uv_async_init(gw->loop, &gw->wake, wake_cb);
	gw->wake.data = gw;
	uv_timer_init(gw->loop, &gw->flush);
	gw->flush.data = gw;
}

/* Calls from the owner, on the worker's thread. */

static struct inst *inst_new(struct worker *gw, const char *id,
			     uint16_t port, struct ishared *sh)
{
	struct inst *in = xcalloc(1, sizeof(*in));

	in->sh = sh;
	__atomic_fetch_add(&sh->refs, 1, __ATOMIC_RELAXED);
	in->id = xstrdup(id);
	in->port = port;
	snprintf(in->host, sizeof(in->host), "Host: 127.0.0.1:%u\r\n",
		 (unsigned)port);
	in->refs = 1;
	in->routed = true;
	list_init(&in->idle);
	uv_mutex_lock(&gw->mu);
	list_add(&gw->insts, &in->link);
	uv_mutex_unlock(&gw->mu);
	return in;
}

void worker_set_routes(struct worker *gw, void *arg)
{
	const struct routes *rt = arg;
	const struct gateway_upstream *ups = rt->ups;
	struct inst **next;
	struct dep *d;
	size_t k = 0;

	d = worker_dep(gw, rt->deployment_id);
	if (d == NULL) {
		d = xcalloc(1, sizeof(*d));
		d->id = xstrdup(rt->deployment_id);
		d->id_len = strlen(d->id);
		d->refs = 1;
		list_init(&d->held);
		uv_mutex_lock(&gw->mu);
		list_add(&gw->deps, &d->link);
		uv_mutex_unlock(&gw->mu);
	}
	free(d->name);
	d->name = NULL;
	d->name_len = 0;
	if (rt->display_name != NULL && *rt->display_name != '\0') {
		d->name = xstrdup(rt->display_name);
		d->name_len = strlen(d->name);
	}
	for (size_t j = 0; j < d->n; j++)
		d->ups[j]->keep = false;
	next = xcalloc(rt->n > 0 ? rt->n : 1, sizeof(*next));
	for (size_t i = 0; i < rt->n; i++) {
		struct inst *in = NULL;
		bool dup = false;

		for (size_t j = 0; j < k; j++)
			dup = dup || strcmp(next[j]->id,
					    ups[i].instance_id) == 0;
		if (dup)
			continue;
		for (size_t j = 0; in == NULL && j < d->n; j++)
			if (strcmp(d->ups[j]->id, ups[i].instance_id) == 0 &&
			    d->ups[j]->port == ups[i].port)
				in = d->ups[j];
		if (in == NULL)
			in = inst_new(gw, ups[i].instance_id, ups[i].port,
				      rt->sh[i]);
		in->keep = true;
		next[k++] = in;
	}
	for (size_t j = 0; j < d->n; j++)
		if (!d->ups[j]->keep)
			inst_unroute(gw, d->ups[j]);
	free(d->ups);
	d->ups = next;
	d->n = k;
	d->load = xreallocarray(d->load, k > 0 ? k : 1, sizeof(*d->load));
	hold_release(d);
}

void worker_remove(struct worker *gw, void *arg)
{
	const struct routes *rt = arg;
	struct dep *d = worker_dep(gw, rt->deployment_id);

	if (d == NULL)
		return;
	uv_mutex_lock(&gw->mu);
	list_del(&d->link);
	uv_mutex_unlock(&gw->mu);
	for (size_t j = 0; j < d->n; j++)
		inst_unroute(gw, d->ups[j]);
	d->n = 0;
	hold_gone(d);
	dep_unref(d);
}

void worker_close(struct worker *gw, void *arg)
{
	struct link *l, *next;

	(void)arg;
	gw->closing = true;
	uv_close((uv_handle_t *)&gw->listener, NULL);
	uv_close((uv_handle_t *)&gw->wake, NULL);
	uv_close((uv_handle_t *)&gw->flush, NULL);
	uv_async_send(&gw->notify); /* what the timer held back */
	for (l = gw->clients.next; l != &gw->clients; l = next) {
		struct client *c = container_of(l, struct client, link);

		next = l->next;
		client_close(c, false);
		client_close_handles(c);
	}
	for (l = gw->ups.next; l != &gw->ups; l = next) {
		next = l->next;
		up_close(container_of(l, struct upconn, link));
	}
}
