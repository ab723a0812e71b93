/*
 * gateway_int.h - what the files of the gateway share, and no other module
 * sees: the records of deployments and instances, the workers (one loop and
 * thread each) and the gateway that holds them, and the entry points the
 * owner's side (gateway_owner.c) calls on a worker. The data path itself is
 * gateway.c and the files gateway_path.h lists.
 *
 * Threads. gatewayThreads workers, each with its own loop, thread,
 * listening socket (SO_REUSEPORT on the same port when there are several),
 * connections, upstream pools, and its own copy of the routing table and
 * per-deployment counters. The owner (the thread that called
 * gateway_start()) talks to each worker in three ways:
 *  - calls: what changes a worker's state (routes, limits, close) runs on
 *    its thread, posted through a uv_async while the owner waits;
 *  - shared counters: the per-deployment counters and per-instance
 *    in-flight counts have one writer, the worker's thread, and are read by
 *    the owner with relaxed atomic loads, under the worker's mu, which also
 *    guards the shape of its deps and insts lists; the owner sums them over
 *    the workers;
 *  - notes: what the owner's callbacks need (finished requests for the
 *    access log, log lines, cold starts) is queued under the worker's mu
 *    and handed over, in order, through a uv_async on the owner's loop
 *    that a timer sends at most NOTES_DELAY_MS after the first note waits.
 *    Finished requests for the observer are summed per deployment on the
 *    worker's thread (dep.obs) and queued once, when that timer fires, as
 *    one note per deployment; when the worker closes, at once.
 * The workers share on the data path each instance's outstanding requests
 * over all threads (struct ishared), updated with relaxed atomic adds, so
 * that the least-outstanding choice sees the requests of the other threads
 * too; and the counts the gateway's limits are enforced on, so that every
 * limit holds for the gateway as a whole, however the kernel spreads the
 * connections (SO_REUSEPORT hashes them, it does not even them out):
 *  - clients: gateway.nclients, an atomic count;
 *  - clients per address: gateway.addrs, a struct tally touched once when
 *    a client is accepted and once when it closes;
 *  - held requests and their bytes, per deployment and in total:
 *    gateway.held, a struct tally touched when a request is held and when
 *    it leaves the queue, however it leaves.
 */
#ifndef MDS_GATEWAY_INT_H
#define MDS_GATEWAY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "gateway/gateway.h"
#include "util/htab.h"

struct block;
struct worker;
struct wreq;
struct tls_ctx;

#define ROUTES_MAX 4096u /* instances per deployment */

#define container_of(ptr, type, field) \
	((type *)(void *)((char *)(ptr) - offsetof(type, field)))

/* An intrusive circular doubly linked list. */
struct link {
	struct link *prev, *next;
};


/*
 * What the threads share of one instance: its outstanding requests over
 * every thread, for the least-outstanding choice. The owner makes it (in
 * gateway_set_routes()) and frees it once no thread's inst holds it.
 */
struct ishared {
	struct link link;     /* gateway.shared: the owner's thread only */
	char *id;
	uint32_t addr;        /* IPv4, network byte order */
	uint16_t port;
	uint32_t outstanding; /* atomic, relaxed: for choosing only */
	uint32_t refs;        /* atomic: the insts that point here */
};

/*
 * Counts per key (a client's address, a deployment's id), with bytes, and
 * their totals, that every worker updates under mu. A key is found through
 * a hash index (util/htab.h) of its entry; an entry whose count falls to 0
 * is freed for the next key (HTAB_NONE ends the free list), and the index,
 * which has no removal, is made again from the live entries once it holds
 * more than twice as many, so each change costs O(1), amortized.
 */
struct tally_entry {
	char *key;      /* NULL: free */
	uint32_t n;     /* free: the next free entry */
	uint64_t bytes;
};

struct tally {
	uv_mutex_t mu;
	struct htab ix; /* hash_str(key) -> index in v, stale ones too */
	struct tally_entry *v;
	uint32_t len, cap, free, live;
	uint32_t n;     /* sums over the entries */
	uint64_t bytes;
};

/* The limits of tally_take(): UINT32_MAX and UINT64_MAX for none. */
struct tally_max {
	uint32_t n, n_total;
	uint64_t bytes, bytes_total;
};

/* What tally_take() found full. */
enum tally_full {
	TALLY_OK,
	TALLY_FULL_N,
	TALLY_FULL_N_TOTAL,
	TALLY_FULL_BYTES,
	TALLY_FULL_BYTES_TOTAL,
};

/* Makes t empty, with its mutex. */
void tally_init(struct tally *t);

/* Frees what t holds and its mutex; NULL is fine. */
void tally_free(struct tally *t);

/* Counts one more under key (the caller keeps it), with bytes, unless that
 * passes one of max's limits (checked in the order of enum tally_full, the
 * first full one returned); on TALLY_OK, *ix is the entry for
 * tally_give(). */
enum tally_full tally_take(struct tally *t, const char *key, uint64_t bytes,
			   const struct tally_max *max, uint32_t *ix);

/* Gives back what tally_take() counted in entry ix (bytes as taken); the
 * entry is freed once it counts nothing. */
void tally_give(struct tally *t, uint32_t ix, uint64_t bytes);

struct inst {
	struct link link; /* gw->insts */
	struct link idle; /* pooled connections, most recent first */
	struct ishared *sh;
	char *id;
	size_t id_len;
	char host[40];    /* "Host: ADDR:port\r\n" */
	size_t host_len;
	uint32_t addr;    /* IPv4, network byte order */
	uint16_t port;
	uint32_t inflight, nidle, refs;
	bool routed, keep, down; /* down: warned about, until a connect works */
};

struct dep {
	struct link link; /* gw->deps, until removed */
	char *id, *name;
	size_t id_len, name_len;
	struct inst **ups;
	uint32_t *load; /* scratch for route_pick() */
	size_t n;
	uint32_t cursor, refs;
	struct link held;     /* requests held for a cold start, oldest first;
				 counted in gateway.held */
	bool cold_asked;      /* the owner was asked for an instance */
	bool holdable;        /* at zero or waking: hold, not 503 */
	enum gateway_replay replay;
	struct gateway_observed obs; /* finished, not yet in a note */
	struct link observed;        /* gw->observed while obs has any */
	struct gateway_counters ctr;
	uint64_t by_status[GATEWAY_STATUS_CODES]; /* see gateway_status_counts */
};


/* What the owner's thread gets from the gateway's, in order. */
enum note_kind { NOTE_REQUEST, NOTE_LOG, NOTE_COLD };

#define NOTE_NONE UINT32_MAX /* a string that is NULL */

struct note {
	enum note_kind kind;
	int status;          /* NOTE_REQUEST: as gateway_access; NOTE_LOG: the
				level */
	uint64_t latency_us;
	/* Offsets in the notes' text. NOTE_REQUEST: deployment id, instance
	 * id, method, path; NOTE_LOG: the message. */
	uint32_t str[4];
};

/* A deployment's finished requests for the observer, summed. */
struct obs_note {
	uint32_t dep; /* offset of its id in the notes' text */
	struct gateway_observed o;
};

struct notes {
	struct note *v;
	size_t n, cap;
	char *text;
	size_t len, tcap;
	struct obs_note *ob; /* in no order with v: the observer's only */
	size_t nob, obcap;
};

/* A function run on a worker's thread while the owner waits. */
struct call {
	void (*fn)(struct worker *gw, void *arg);
	void *arg;
	struct call *next;
	bool done;
};

/* Bits of gateway.want: which notes of finished requests the owner wants. */
enum { WANT_OBSERVE = 1, WANT_ACCESS = 2 };

#define NOTES_MAX (1u << 20) /* past this many waiting, requests go unnoted */
#define NOTES_DELAY_MS 10    /* the owner hears of a note this late at most */

/*
 * One loop and its thread: everything a request touches lives here, so
 * that the threads share nothing on the data path but the instances'
 * outstanding counts and the counts of the limits (see above).
 */
struct worker {
	/* The worker's thread only. */
	uv_loop_t *loop; /* &own */
	uv_loop_t own;
	uv_tcp_t listener;
	uv_async_t wake; /* calls are waiting */
	uv_timer_t flush; /* wakes the owner for the notes */
	struct link clients, ups;
	struct link observed; /* struct dep with finished requests to note */
	struct tls_ctx *tls; /* borrowed; NULL: plain HTTP */
	struct block *free_blocks;
	struct wreq *free_wreqs;
	unsigned nfree_blocks, nfree_wreqs;
	struct gateway_limits lim;  /* the gateway's, enforced on its counts */
	struct gateway_hold hold;   /* the same; see gateway_hold.c */
	uint64_t rid_seed, rid_seq;
	char rid_seed_hex[16]; /* rid_seed in hex, for X-Request-Id */
	unsigned nclients; /* this worker's, closing ones too */
	bool closing, loop_over;
	bool stopped; /* worker_stop() ran: no listener, no connections */
	bool draining; /* worker_drain() ran: no listener, no keep-alive */
	uint32_t cut; /* requests under way that worker_stop() ended */

	/* Written by the worker's thread, read by the owner's under mu. */
	struct link deps, insts;

	/* The owner's thread only (group is set before the thread starts;
	 * the worker's thread reads only group->want). */
	struct gateway *group;
	uv_async_t notify; /* notes are waiting, or the thread has ended */
	uv_thread_t thread;
	struct notes spare;
	bool serving;      /* the worker's thread runs */

	/* Both. */
	uv_mutex_t mu;     /* calls, notes, ended, the shape of deps and
			      insts */
	uv_cond_t called;  /* a call is done */
	struct call *calls;
	struct notes out;
	uint64_t unnoted;  /* requests not noted since the last delivery */
	bool ended;        /* the worker's thread is over */
	bool drained;      /* draining, and no connection is left */
};

/* The gateway: its workers, and what the owner's thread keeps. */
struct gateway {
	/* The owner's thread only. */
	uv_loop_t *owner;
	struct worker **w;
	unsigned n;        /* workers (gatewayThreads) */
	unsigned nclosed;  /* workers whose notify handle has closed */
	struct link shared; /* struct ishared */
	struct gateway_limits lim; /* as configured, for every thread */
	struct gateway_hold hold;
	gateway_observe_fn *observe;
	void *observe_arg;
	gateway_access_fn *access_log;
	void *access_log_arg;
	gateway_cold_fn *cold;
	void *cold_arg;
	void (*done)(void *arg);
	void *done_arg;
	bool serving, stopped, close_called;
	int port;
	uv_timer_t *drain_timer; /* gateway_stop()'s deadline, until done */
	void (*stopped_cb)(void *arg, unsigned cut);
	void *stopped_arg;

	/* Both. */
	int want;          /* WANT_* bits, atomic */
	uint32_t nclients; /* atomic: every worker's clients, closing ones
			      too (see on_connection()) */
	struct tally addrs; /* open clients per address */
	struct tally held;  /* held requests and bytes per deployment */
};

/*
 * A counter the owner reads: one writer (a worker's thread), so a relaxed
 * load and store make it exact, never torn; reads on the writer's thread
 * need nothing.
 */
#define SHARED_ADD(x, v) __atomic_store_n(&(x), (x) + (v), __ATOMIC_RELAXED)
#define SHARED_SUB(x, v) __atomic_store_n(&(x), (x) - (v), __ATOMIC_RELAXED)
#define SHARED_GET(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)


/* Lists. */

static inline void list_init(struct link *l)
{
	l->prev = l;
	l->next = l;
}

static inline bool list_empty(const struct link *l)
{
	return l->next == l;
}

static inline void list_add(struct link *head, struct link *e)
{
	e->next = head->next;
	e->prev = head;
	head->next->prev = e;
	head->next = e;
}

static inline void list_del(struct link *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	list_init(e);
}

/* What gateway_owner.c calls on a worker (gateway_worker.c,
 * gateway_accept.c). */

/* The arguments of worker_set_routes() and worker_remove(). */
struct routes {
	const char *deployment_id, *display_name;
	const struct gateway_upstream *ups;
	struct ishared **sh; /* one per ups[i], held by the owner; sh[i]->addr
				is ups[i]'s host, parsed */
	size_t n;
};

/* Returns a worker's deployment of that id, or NULL. On the worker's thread,
 * or under its mu. */
struct dep *worker_dep(const struct worker *gw, const char *id);

/* Binds (with SO_REUSEPORT when reuseport) and listens on gw->listener,
 * already initialized on the worker's loop. Returns 0 or a libuv error. */
int worker_listen(struct worker *gw, const struct sockaddr *sa,
		  bool reuseport);

/* Initializes the worker's wake and flush handles on its loop. */
void worker_handles(struct worker *gw);

/* On the worker's thread (arg: const struct routes *): replaces a
 * deployment's routes, releasing its held requests if it has an instance
 * now. */
void worker_set_routes(struct worker *gw, void *arg);

/* On the worker's thread (arg: const struct routes *, only the id): forgets
 * a deployment, answering its held requests 404. */
void worker_remove(struct worker *gw, void *arg);

/* On the worker's thread: stops listening, closes the connections and
 * pooled upstreams that are idle, and lets the requests under way finish,
 * each connection closing after its response; once none is left, sets
 * gw->drained and wakes the owner (gw->notify). */
void worker_drain(struct worker *gw, void *arg);

/* On the worker's thread: stops listening and closes every connection,
 * and notes what that ended (gw->cut counts the requests it cut); the loop
 * runs on. */
void worker_stop(struct worker *gw, void *arg);

/* On the worker's thread: worker_stop(), then closes the loop's own
 * handles, so that worker_run() returns. */
void worker_close(struct worker *gw, void *arg);

/* Runs the worker's loop until worker_close() has closed every handle, then
 * frees what the loop held and tells the owner (gw->notify). */
void worker_run(struct worker *gw);

/* The worker's thread: worker_run() with every signal blocked. */
void worker_thread(void *arg);

#endif
