/*
 * loadgen.h - an open-loop HTTP/1.1 load generator (`mdscale load`).
 *
 * Requests are due at fixed times set by a schedule (a constant rate, steps
 * and linear ramps), whatever the server does; each request's latency is
 * measured from the time it was DUE, not from the time it could be sent, so
 * a stalled server shows up as latency instead of silently lowering the
 * load (no coordinated omission).
 *
 * The engine runs its own libuv loop on the calling thread: a 1 ms timer
 * issues every request that has come due, over up to N keep-alive
 * connections with one request at a time each. A due request that finds no
 * idle connection waits in a FIFO queue (and more connections are opened, up
 * to N); past LOADGEN_QUEUE_MAX waiting, further due requests are counted as
 * dropped_overload instead of queued. The request bytes are rendered once;
 * the steady state allocates nothing.
 *
 * The schedule functions are pure and unit-tested on their own.
 */
#ifndef MDS_LOADGEN_H
#define MDS_LOADGEN_H

#include <stddef.h>
#include <stdint.h>

#include "core/hdr.h"

#define LOADGEN_QUEUE_MAX 100000u   /* due requests waiting for a connection */
#define LOADGEN_CONN_MAX 10000u     /* --connections */
#define LOADGEN_RATE_MAX 10000000.0 /* requests per second */
#define LOADGEN_SECONDS_MAX 86400.0 /* one schedule, all segments */
#define LOADGEN_SEG_MAX 10000u      /* schedule segments */
#define LOADGEN_HEADERS_MAX 64u     /* --header */
#define LOADGEN_LAT_HIGHEST 60000000u /* histogram range: 1 µs .. 60 s */

/* Why a request failed: its enum name, then its report name. */
#define LOADGEN_FAIL_MAP(X)                                                  \
	X(CONNECT_REFUSED, "connect_refused")                                \
	X(RESET, "reset")                                                    \
	X(TIMEOUT, "timeout")                                                \
	X(NON_2XX, "non_2xx")                                                \
	X(OTHER, "other")

enum loadgen_fail {
#define X(name, text) LOADGEN_FAIL_##name,
	LOADGEN_FAIL_MAP(X)
#undef X
	LOADGEN_FAIL_N
};

/* Returns the report name of a cause ("connect_refused"); static storage. */
const char *loadgen_fail_name(enum loadgen_fail f);

/* -- the schedule -- */

/* A stretch of the schedule: the rate goes linearly from `from` to `to`
 * requests per second over `seconds` (from == to: a constant rate). */
struct loadgen_seg {
	double seconds, from, to;
};

/* A schedule is either segments (v, n) or a list of arrivals (due_ns,
 * ndue: a recorded trace), never both. */
struct loadgen_sched {
	struct loadgen_seg *v; /* owned */
	size_t n;
	uint64_t *due_ns;  /* arrivals: due times from the start, owned */
	uint8_t *body_of;  /* arrivals: each one's index into
			      loadgen_opts.bodies, owned; NULL: all 0 */
	size_t ndue;
	double seconds;  /* the sum of the segments', or the arrivals' span */
	double requests; /* the requests due over the whole schedule */
};

/* Where a walk over a schedule's due times stands. Zero it to start. */
struct loadgen_cursor {
	size_t seg;     /* the segment of the next request */
	double t0, n0;  /* that segment's start time, and requests due before */
	uint64_t k;     /* the index of the next request */
};

/* Initializes an empty schedule. */
void loadgen_sched_init(struct loadgen_sched *s);

/* Frees the segments; the schedule may be reused after loadgen_sched_init.
 * NULL is fine. */
void loadgen_sched_free(struct loadgen_sched *s);

/*
 * Appends a segment: 0 < seconds, 0 <= from, to <= LOADGEN_RATE_MAX, and
 * the whole schedule at most LOADGEN_SECONDS_MAX long and LOADGEN_SEG_MAX
 * segments. Returns 0, MDS_E_INVAL or MDS_E_LIMIT with the reason in diag.
 */
int loadgen_sched_add(struct loadgen_sched *s, double seconds, double from,
		      double to, char *diag, size_t diagsz);

/*
 * Parses a schedule file's text (len bytes, need not be NUL-terminated) and
 * appends its segments to s. One segment per line: "SECONDS RATE" (a step)
 * or "ramp SECONDS FROM TO" (a linear ramp); '#' starts a comment; blank
 * lines are skipped. Returns 0, or MDS_E_PARSE / MDS_E_INVAL / MDS_E_LIMIT
 * with "line N: what" in diag. An empty schedule is MDS_E_INVAL.
 */
int loadgen_sched_parse(struct loadgen_sched *s, const char *text, size_t len,
			char *diag, size_t diagsz);

/*
 * Makes the empty schedule s a list of arrivals: n due times in nanoseconds
 * from the start (non-decreasing, at most LOADGEN_SECONDS_MAX), and
 * optionally which body each request carries (body_of, n entries, or
 * NULL). Takes both arrays over (loadgen_sched_free() frees them, also on
 * error). The schedule lasts `seconds` (at least the last due time).
 * Returns 0, MDS_E_INVAL (s not empty, n == 0, times going backwards) or
 * MDS_E_LIMIT, with the reason in diag.
 */
int loadgen_sched_arrivals(struct loadgen_sched *s, uint64_t *due_ns,
			   uint8_t *body_of, size_t n, double seconds,
			   char *diag, size_t diagsz);

/* The body index of the request the cursor last gave (0 for segments). */
unsigned loadgen_sched_body(const struct loadgen_sched *s,
			    const struct loadgen_cursor *c);

/*
 * Gives the time, in seconds from the start, at which the next request is
 * due, and advances the cursor past it. Request k is due when the integral
 * of the rate reaches k, so at a constant rate R requests go out at 0, 1/R,
 * 2/R, ... Returns 0, or MDS_E_NOTFOUND once the schedule is over.
 */
int loadgen_sched_next(const struct loadgen_sched *s, struct loadgen_cursor *c,
		       double *t);

/* -- a run -- */

/* One request body (borrowed). */
struct loadgen_body {
	const void *data;
	size_t len;
};

#define LOADGEN_BODIES_MAX 256u /* loadgen_opts.bodies: body_of is 8 bits */

struct loadgen_counts {
	uint64_t sent;             /* due and handed to a connection or the queue */
	uint64_t succeeded;        /* answered 2xx */
	uint64_t failed[LOADGEN_FAIL_N];
	uint64_t dropped_overload; /* due while the queue was full: not sent */
};

/*
 * Called at the end of each second of the run (and once for the last,
 * partial one) on the run's thread. In a second: `sent` counts the requests
 * that came due in it, the outcomes and lat (microseconds, over the requests
 * that got a response) those that finished in it. Both are borrowed.
 */
typedef void loadgen_second_fn(void *arg, unsigned second,
			       const struct loadgen_counts *c,
			       const struct hdr *lat);

struct loadgen_opts {
	const char *url;                /* http://HOST[:PORT][/PATH][?QUERY] */
	const char *method;             /* NULL: GET, or POST with a body */
	const char *const *headers;     /* "Name: value", nheaders of them */
	size_t nheaders;
	const void *body;               /* may be NULL */
	size_t body_len;
	/* Per-request bodies: when nbodies > 0, request k carries
	 * bodies[sched->body_of[k]] (every index below nbodies) and
	 * body/body_len are not used. */
	const struct loadgen_body *bodies;
	size_t nbodies;
	const struct loadgen_sched *sched;
	unsigned connections;           /* 1..LOADGEN_CONN_MAX */
	uint64_t timeout_ms;            /* from the due time to the response */
	loadgen_second_fn *on_second;   /* may be NULL */
	void *arg;
};

struct loadgen_result {
	struct loadgen_counts total;
	uint64_t unfinished;   /* sent but not finished when interrupted */
	struct hdr *lat;       /* every response's latency, µs; caller frees */
	double elapsed_s;      /* from the start to the last outcome, at least
				  the schedule's length */
	double lag_max_ms;     /* the generator's own worst lateness in
				  noticing a due request */
	uint64_t connects;     /* connections opened */
	int interrupted;       /* SIGINT or SIGTERM cut the run short */
};

/*
 * Runs the schedule against opts->url to completion: until every sent
 * request has finished (answered, failed or timed out), or SIGINT/SIGTERM.
 * Blocks the calling thread on a loop of its own. While it runs it handles
 * SIGINT and SIGTERM (ending the run with what it has), and it sets SIGPIPE
 * to be ignored for the process. Nothing in opts is kept. Fills *res (res->lat is the caller's to free with
 * hdr_free(), also on failure, where it may be NULL).
 *
 * Returns 0 when the run completed, whatever its requests' outcomes; or,
 * before sending anything, MDS_E_INVAL for a bad URL, method, header or
 * option, MDS_E_UNAVAIL when the host cannot be resolved, MDS_E_SYS when the
 * loop cannot start; diag says why.
 */
int loadgen_run(const struct loadgen_opts *opts, struct loadgen_result *res,
		char *diag, size_t diagsz);

#endif
