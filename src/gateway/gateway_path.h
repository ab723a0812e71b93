/*
 * gateway_path.h - what the files of one worker's data path share, and no
 * other file sees: the read blocks and write requests, parsed heads, client
 * and upstream connections and their requests, the functions that cross
 * from one file to another, and the small helpers every file inlines (kept
 * here so that the split into files adds no call to a request's path).
 *
 * The files: gateway.c, the client side (reading and parsing requests,
 * writing responses, a request's end); gateway_upstream.c, the instances'
 * side (pools, forwarding, replays, responses); gateway_route.c, choosing
 * an instance; gateway_hold.c, holding requests for a cold start;
 * gateway_msg.c, write requests and heads; gateway_timer.c, a client's
 * timeouts; gateway_accept.c, listening and the limits on connections;
 * gateway_notes.c, counters and notes for the owner; gateway_worker.c, a
 * worker's life and the calls from the owner.
 */
#ifndef MDS_GATEWAY_PATH_H
#define MDS_GATEWAY_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "gateway/gateway_int.h"
#include "http/hparse.h"
#include "util/buf.h"
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
	uint32_t held_ix;                /* its entry in gateway.held */
	uint32_t path_off, path_len, query_off, query_len;
	const char *method;              /* its name (static), once parsed */
	size_t method_len;
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
	size_t ip_len;
	uint32_t addr_ix;    /* its address's entry in gateway.addrs */
	bool addr_counted;   /* ... while counted there */
	struct tls_conn *tls; /* NULL: plain TCP, the zero-copy path */
	bool reading, in_parse, closing, handles_closed, broken, out_throttled,
		eof;
	bool arm_due; /* the parser moved the request on: client_arm() once
			 its input is parsed */
};

/* TLS: ciphertext on its way to a client. */
struct tls_write {
	uv_write_t req;
	char *data;
	size_t len;
};

/*
 * What crosses from one file of the data path to another. Hidden: nothing
 * outside the gateway may bind to it, so that the compiler, even for
 * position-independent code, may inline and split these within their own
 * file as it did when they were static.
 */
#pragma GCC visibility push(hidden)

/* The request parser's callbacks (gateway.c), for the clients that
 * gateway_accept.c accepts. */
extern const struct hparse_settings creq_settings;

/* gateway.c: the client side. */

/* gateway_accept.c: takes the client out of its address's count, once it
 * closes (it is counted from its accept on). */
void client_uncount(struct client *c);

/* Starts or stops reading from the client as its state wants. */
void client_update_read(struct client *c);
/* Sends the batch toward the client (c->cb), if any; a write that fails
 * marks the client broken, for the next safe point to close. */
void client_flush(struct client *c);
/* Returns the batch toward the client with room for a body slice (owned
 * by the client until client_flush()). */
struct wreq *client_batch(struct client *c);
/* Lets go of the request's instance and its in-flight counts. */
void req_release_inst(struct worker *gw, struct request *r);
/* Answers the request from the gateway with a JSON error {code, message};
 * drops what remains of its body, closes its upstream. */
void local_error(struct client *c, int status, const char *code,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Moves a request on after something happened outside its parser: flushes
 * both ways, accounts, finishes or closes. */
void client_settle(struct client *c);
/* The close callback of a client's two handles: frees c after both. */
void client_close_cb(uv_handle_t *h);
/* Closes a client: graceful (flush, FIN, linger) or abortive. */
void client_close(struct client *c, bool graceful);

/* gateway_upstream.c: the instances' side. */

/* Starts or stops reading from the upstream as its state wants. */
void up_update_read(struct upconn *up);
/* Drops the writes a request kept for a replay. */
void req_unretain(struct request *r);
/* Sends (or keeps, for a replay) the batch toward the upstream. */
void up_flush(struct client *c);
/* Returns the batch toward the upstream with room for a body slice. */
struct wreq *up_batch(struct client *c);
/* Gives the request a connection to its instance: pooled if pooled and
 * one is idle, else new. */
void req_attach(struct client *c, bool pooled);
/* The close callback of an upstream connection: decides what its loss
 * means for its request, then frees it. */
void up_close_cb(uv_handle_t *h);

/* gateway_route.c */

/* Routes the request to the least loaded instance not tried yet, holds it
 * for a cold start, or answers 503 or 502. */
void req_route(struct client *c);

/* gateway_hold.c: true when the request was held, or answered 503. */
bool hold_add(struct client *c);
/* Takes the request out of its deployment's queue, if held. */
void hold_drop(struct client *c);
/* The timer of a held request: true once it timed out (503 sent). */
bool hold_timer(struct client *c);
/* Routes d's held requests once d has an instance. */
void hold_release(struct dep *d);
/* Answers d's held requests 404: d was removed. */
void hold_gone(struct dep *d);

/* gateway_msg.c: write requests and heads. */

/* Returns an empty write request, from the worker's free list or new. */
struct wreq *wreq_get(struct worker *gw);
/* Returns w (NULL: nothing) to the free list, releasing its blocks. */
void wreq_put(struct wreq *w);
/* Makes own[from..len) the next bytes of the write. */
void wreq_own(struct wreq *w, size_t from);
/* Adds body bytes, referencing their block b unless they are short. */
void wreq_ref(struct wreq *w, struct block *b, const char *p,
	      size_t len);
/* Writes w to s; returns 1 if all was written, 0 if queued (cb runs
 * then), or a negative libuv error. */
int wreq_write(struct wreq *w, uv_stream_t *s, uv_write_cb cb);
/* Adds header-name bytes; -1 (h->overflow set) past a limit. */
int head_field(struct head *h, const char *at, size_t len);
/* Whether x is a hop-by-hop header (RFC 9110 7.6.1). */
bool hop_by_hop(const struct head *h, const struct hdr *x);
/* Whether a Connection header of h names x. */
bool conn_listed(const struct head *h, const struct hdr *x);
/* What the Connection headers of h list besides keep-alive: CONN_CLOSE,
 * CONN_OTHER (any other name), both or neither. */
unsigned conn_tokens(const struct head *h);
/* Appends "name: value\r\n"; false if o is full. */
bool put_hdr(struct buf *o, const struct head *h, const struct hdr *x);
/* Appends the upstream's response head to w; MDS_E_LIMIT if too large. */
int build_resp_head(struct client *c, struct upconn *up,
		    struct wreq *w, bool final, bool drop_te,
		    bool add_te);

/* gateway_timer.c */

/* Arms the client's timer for its state, unless it fires soon enough. */
void client_arm(struct client *c);
/* The client's timer: timeouts, pacing, lingering, holding. */
void client_timer_cb(uv_timer_t *t);

/* gateway_notes.c */

/* Counts a request that is over and notes it for the owner (once). */
void req_account(struct client *c);
/* Notes the finished requests every deployment summed for the observer
 * (see gateway_int.h), without waking the owner. */
void obs_flush(struct worker *gw);
/* Returns room for a note, or NULL when the owner is too far behind.
 * Under gw->mu. */
struct note *note_new(struct worker *gw, enum note_kind kind);
/* Copies s (NULL: none) into the notes; returns its offset. Under mu. */
uint32_t note_cstr(struct worker *gw, const char *s);
/* Wakes the owner soon if first (the queue was empty). Not under mu. */
void note_posted(struct worker *gw, bool first);
/* Logs through the owner's thread (a note), if the level is on. */
void gw_log(struct worker *gw, enum log_level level, const char *fmt,
	    ...) __attribute__((format(printf, 3, 4)));

/* gateway_worker.c */

/* Drops a reference to d (NULL: nothing); frees it at the last. */
void dep_unref(struct dep *d);
/* Once a draining worker has no connection left: notes what is left,
 * marks it drained and wakes the owner. */
void worker_drain_check(struct worker *gw);
/* Drops a reference to in (NULL: nothing); frees it at the last. */
void inst_unref(struct inst *in, struct worker *gw);

#pragma GCC visibility pop

/* Blocks, write requests and heads: inlined on the data path. */

/* Lists, blocks and write requests. */

static inline struct block *block_get(struct worker *gw)
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

static inline void block_unref(struct block *b)
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

static inline struct block *block_of(const uv_buf_t *buf)
{
	return buf->base ? container_of(buf->base, struct block, data) : NULL;
}

static inline void wreq_clear(struct wreq *w)
{
	for (unsigned i = 0; i < w->n; i++)
		block_unref(w->s[i].blk);
	w->n = 0;
	w->bytes = 0;
	buf_reset(&w->own);
}

/* Tells whether a batch has no room for another framed body slice. */
static inline bool wreq_full(const struct wreq *w)
{
	return w->n + 3 > WREQ_SLICES || w->own.len > OWN_KEEP;
}

/* Copies bytes into the write; callers keep below OWN_MAX (wreq_full). */
static inline void wreq_copy(struct wreq *w, const void *p, size_t len)
{
	size_t from = w->own.len;

	if (buf_add(&w->own, p, len) == 0)
		wreq_own(w, from);
}

static inline void wreq_chunk(struct wreq *w, size_t len)
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

/* Heads. */

static inline void head_reset(struct head *h)
{
	buf_reset(&h->raw);
	h->n = 0;
	h->first_len = 0;
	h->last = 0;
	h->overflow = 0;
	h->done = false;
	h->conn = false;
}

static inline void head_free(struct head *h)
{
	buf_free(&h->raw);
	free(h->h);
	h->h = NULL;
}

static inline int head_first(struct head *h, const char *at, size_t len,
			     size_t max, int status)
{
	if (h->first_len + len > max || buf_add(&h->raw, at, len) != 0) {
		h->overflow = status;
		return -1;
	}
	h->first_len += (uint32_t)len;
	return 0;
}

/* Whether the token s (slen bytes) is name (lower-case letters and '-'),
 * in any case. Header names are tokens (the parser lets no other byte in a
 * name): OR-ing 0x20 folds their case and maps no other token character
 * onto a letter or '-'. */
static inline bool name_eq(const char *s, size_t slen, const char *name,
			   size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	if (slen != len)
		return false;
	for (size_t i = 0; i < len; i++) {
		if ((p[i] | 0x20) != (unsigned char)name[i])
			return false;
	}
	return true;
}

/* Whether x is named name (lower-case letters and '-'), in any case. */
static inline bool hdr_is(const struct head *h, const struct hdr *x,
			  const char *name, size_t len)
{
	return name_eq(h->raw.data + x->name, x->name_len, name, len);
}

#define HDR_IS(h, x, lit) hdr_is((h), (x), (lit), sizeof(lit) - 1)

#define CONN_CLOSE 1u
#define CONN_OTHER 2u

/* Whether x must not cross the proxy: hop-by-hop by name, or named by a
 * Connection header (conn: what conn_tokens() told of h). The usual
 * Connection of keep-alive or close costs no scan of the other headers. */
static inline bool hdr_dropped(const struct head *h, const struct hdr *x,
			       unsigned conn)
{
	return hop_by_hop(h, x) ||
	       ((conn & CONN_CLOSE) && HDR_IS(h, x, "close")) ||
	       ((conn & CONN_OTHER) && conn_listed(h, x));
}

static inline int head_value(struct head *h, const char *at, size_t len)
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

static inline bool client_http11(const struct client *c)
{
	return hparse_http11(&c->parser);
}

/* Progress only stamps the time: the timer re-arms itself lazily, so the
 * hot path does not touch the timer heap on every read and write. */
static inline void client_touch(struct client *c)
{
	c->active_at = uv_now(c->gw->loop);
}

static inline void set_reading(uv_stream_t *s, bool *reading, bool want,
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

static inline void up_close(struct upconn *up)
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

static inline void client_close_handles(struct client *c)
{
	if (c->handles_closed)
		return;
	c->handles_closed = true;
	c->nopen = 2;
	uv_close((uv_handle_t *)&c->tcp, client_close_cb);
	uv_close((uv_handle_t *)&c->timer, client_close_cb);
}

#endif
