/*
 * loadgen.c - the open-loop load generator; see loadgen.h.
 *
 * Times are nanoseconds since the run's start (uv_hrtime()). The tick
 * issues every request due by now (each to an idle connection, else to the
 * queue), expires queued requests past their deadline, opens connections
 * while more requests wait than are being connected for, and closes the
 * books of each second as it passes. It runs off a timerfd watched by the
 * loop, armed for the next due time to the nanosecond, but at least
 * TICK_MIN_NS after the last tick (so a high rate costs at most 10,000
 * wake-ups a second, each sending a batch) and at most TICK_MAX_NS (1 ms).
 * A uv_timer would do, but its millisecond resolution alone would add half
 * a millisecond of lateness on average to every request's latency.
 *
 * A connection is FREE (no socket), CONNECTING, IDLE (on the idle stack),
 * BUSY (one request in flight, its due time in `due`) or CLOSING (waiting for
 * its close callback, after which it is FREE again). A connection that
 * becomes idle takes the oldest queued request first. A connection that
 * fails to connect fails the oldest queued request with the cause, so that
 * with nothing listening every request counts as connect_refused once.
 *
 * One 64 KiB read buffer serves every connection: responses are parsed in
 * the read callback and nothing of them is kept but the status.
 */
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <uv.h>

#include "cli/loadgen.h"
#include "http/hparse.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/version.h"
#include "util/xalloc.h"

#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull
#define TICK_MIN_NS 100000ull   /* 100 µs */
#define TICK_MAX_NS 1000000ull  /* 1 ms */
#define READ_SIZE (64u * 1024)
#define BODY_MAX (64u << 20)       /* request body */
#define HEAD_MAX (64u * 1024)      /* rendered request head */
#define METHOD_MAX 32u
#define SCHED_LINE_MAX 1024u

static const char *const fail_names[LOADGEN_FAIL_N] = {
#define X(name, text) text,
	LOADGEN_FAIL_MAP(X)
#undef X
};

const char *loadgen_fail_name(enum loadgen_fail f)
{
	return (unsigned)f < LOADGEN_FAIL_N ? fail_names[f] : "unknown";
}

/* -- the schedule -- */

void loadgen_sched_init(struct loadgen_sched *s)
{
	memset(s, 0, sizeof *s);
}

void loadgen_sched_free(struct loadgen_sched *s)
{
	if (s == NULL)
		return;
	free(s->v);
	free(s->due_ns);
	free(s->body_of);
	loadgen_sched_init(s);
}

int loadgen_sched_add(struct loadgen_sched *s, double seconds, double from,
		      double to, char *diag, size_t diagsz)
{
	if (!isfinite(seconds) || !(seconds > 0)) {
		mds_diag(diag, diagsz, "the duration must be above 0 seconds");
		return MDS_E_INVAL;
	}
	if (!isfinite(from) || !isfinite(to) || from < 0 || to < 0 ||
	    from > LOADGEN_RATE_MAX || to > LOADGEN_RATE_MAX) {
		mds_diag(diag, diagsz, "a rate must be from 0 to %.0f per second",
			 LOADGEN_RATE_MAX);
		return MDS_E_INVAL;
	}
	if (s->due_ns != NULL) {
		mds_diag(diag, diagsz, "the schedule is a list of arrivals");
		return MDS_E_INVAL;
	}
	if (s->n >= LOADGEN_SEG_MAX) {
		mds_diag(diag, diagsz, "more than %u schedule steps",
			 LOADGEN_SEG_MAX);
		return MDS_E_LIMIT;
	}
	if (s->seconds + seconds > LOADGEN_SECONDS_MAX) {
		mds_diag(diag, diagsz, "the schedule is longer than %.0f s",
			 LOADGEN_SECONDS_MAX);
		return MDS_E_LIMIT;
	}
	s->v = xreallocarray(s->v, s->n + 1, sizeof *s->v);
	s->v[s->n].seconds = seconds;
	s->v[s->n].from = from;
	s->v[s->n].to = to;
	s->n++;
	s->seconds += seconds;
	s->requests += (from + to) / 2 * seconds;
	return 0;
}

/* Parses a whole number token; returns 0 or -1. */
static int parse_num(const char *tok, size_t len, double *out)
{
	char tmp[64], *end;

	if (len == 0 || len >= sizeof tmp)
		return -1;
	memcpy(tmp, tok, len);
	tmp[len] = '\0';
	*out = strtod(tmp, &end);
	if (*end != '\0' || !isfinite(*out))
		return -1;
	return 0;
}

static int parse_line(struct loadgen_sched *s, const char *p, size_t len,
		      unsigned lineno, char *diag, size_t diagsz)
{
	const char *tok[5];
	size_t tlen[5], n = 0, i = 0;
	double v[3];
	char why[160];
	int rc, ramp;

	while (i < len && p[i] != '#') {
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r') {
			i++;
			continue;
		}
		if (n == 5)
			break;
		tok[n] = p + i;
		while (i < len && p[i] != ' ' && p[i] != '\t' && p[i] != '\r' &&
		       p[i] != '#')
			i++;
		tlen[n] = (size_t)(p + i - tok[n]);
		n++;
	}
	if (n == 0)
		return 0;
	ramp = tlen[0] == 4 && memcmp(tok[0], "ramp", 4) == 0;
	if ((ramp && n != 4) || (!ramp && n != 2)) {
		mds_diag(diag, diagsz, "line %u: expected 'SECONDS RATE' or "
			 "'ramp SECONDS FROM TO'", lineno);
		return MDS_E_PARSE;
	}
	for (i = (size_t)ramp; i < n; i++) {
		if (parse_num(tok[i], tlen[i], &v[i - (size_t)ramp]) != 0) {
			mds_diag(diag, diagsz, "line %u: '%.*s' is not a number",
				 lineno, (int)(tlen[i] > 40 ? 40 : tlen[i]),
				 tok[i]);
			return MDS_E_PARSE;
		}
	}
	rc = ramp ? loadgen_sched_add(s, v[0], v[1], v[2], why, sizeof why)
		  : loadgen_sched_add(s, v[0], v[1], v[1], why, sizeof why);
	if (rc != 0)
		mds_diag(diag, diagsz, "line %u: %s", lineno, why);
	return rc;
}

int loadgen_sched_parse(struct loadgen_sched *s, const char *text, size_t len,
			char *diag, size_t diagsz)
{
	size_t pos = 0, end, before = s->n;
	unsigned lineno = 0;
	int rc;

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);

		end = nl != NULL ? (size_t)(nl - text) : len;
		lineno++;
		if (end - pos > SCHED_LINE_MAX) {
			mds_diag(diag, diagsz, "line %u: longer than %u bytes",
				 lineno, SCHED_LINE_MAX);
			return MDS_E_LIMIT;
		}
		rc = parse_line(s, text + pos, end - pos, lineno, diag, diagsz);
		if (rc != 0)
			return rc;
		pos = end + 1;
	}
	if (s->n == before) {
		mds_diag(diag, diagsz, "the schedule has no steps");
		return MDS_E_INVAL;
	}
	return 0;
}

int loadgen_sched_arrivals(struct loadgen_sched *s, uint64_t *due_ns,
			   uint8_t *body_of, size_t n, double seconds,
			   char *diag, size_t diagsz)
{
	size_t i;

	if (s->n != 0 || s->due_ns != NULL || n == 0) {
		free(due_ns);
		free(body_of);
		mds_diag(diag, diagsz, n == 0 ? "the schedule has no requests"
			 : "the schedule is not empty");
		return MDS_E_INVAL;
	}
	s->due_ns = due_ns;
	s->body_of = body_of;
	s->ndue = n;
	for (i = 1; i < n; i++) {
		if (due_ns[i] < due_ns[i - 1]) {
			mds_diag(diag, diagsz, "request %zu is due before the "
				 "one ahead of it", i + 1);
			return MDS_E_INVAL;
		}
	}
	if ((double)due_ns[n - 1] / 1e9 > seconds)
		seconds = (double)due_ns[n - 1] / 1e9;
	if (!(seconds <= LOADGEN_SECONDS_MAX)) {
		mds_diag(diag, diagsz, "the schedule is longer than %.0f s",
			 LOADGEN_SECONDS_MAX);
		return MDS_E_LIMIT;
	}
	s->seconds = seconds > 0 ? seconds : 1e-9;
	s->requests = (double)n;
	return 0;
}

unsigned loadgen_sched_body(const struct loadgen_sched *s,
			    const struct loadgen_cursor *c)
{
	if (s->body_of == NULL || c->k == 0 || c->k > s->ndue)
		return 0;
	return s->body_of[c->k - 1];
}

int loadgen_sched_next(const struct loadgen_sched *s, struct loadgen_cursor *c,
		       double *t)
{
	if (s->due_ns != NULL) {
		if (c->k >= s->ndue)
			return MDS_E_NOTFOUND;
		*t = (double)s->due_ns[c->k++] / 1e9;
		return 0;
	}
	while (c->seg < s->n) {
		const struct loadgen_seg *g = &s->v[c->seg];
		double n_end = c->n0 + (g->from + g->to) / 2 * g->seconds;
		double dk = (double)c->k - c->n0;
		double a = g->from, b = (g->to - g->from) / g->seconds, x, d;

		if ((double)c->k + 1e-9 < n_end) {
			/* Solve n0 + a x + b x^2 / 2 = k for x, in the form
			 * that stays exact when b is small or negative. */
			if (dk <= 0) {
				x = 0;
			} else {
				d = a * a + 2 * b * dk;
				x = 2 * dk / (a + sqrt(d > 0 ? d : 0));
			}
			if (x < g->seconds) {
				*t = c->t0 + x;
				c->k++;
				return 0;
			}
		}
		c->t0 += g->seconds;
		c->n0 = n_end;
		c->seg++;
	}
	return MDS_E_NOTFOUND;
}

/* -- a run -- */

static const struct hparse_settings response_settings;

/* A due request waiting for a connection. */
struct qent {
	uint64_t due;
	unsigned body;
};

enum cstate { C_FREE, C_CONNECTING, C_IDLE, C_BUSY, C_CLOSING };

struct conn {
	uv_tcp_t tcp;
	uv_connect_t connect;
	uv_write_t write;
	uv_timer_t timer;   /* connect timeout, then the request's deadline */
	struct hparse parser;
	struct loadgen *lg;
	struct conn *next;  /* free or idle stack */
	uint64_t due;       /* the request in flight */
	enum cstate state;
	bool done, keep_alive;
	bool listed;        /* on the idle stack */
};

struct loadgen {
	uv_loop_t loop;
	int tfd;                   /* the tick's timerfd */
	uv_poll_t tick;
	uv_signal_t sigint, sigterm;
	struct sockaddr_storage addr;
	struct buf *reqs;          /* the rendered requests, one a body */
	size_t nreqs;
	bool head_method;
	struct conn *conns;
	unsigned nconns;
	struct conn *free_top, *idle_top;
	unsigned nconnecting, nbusy;
	struct qent *queue;        /* a ring of LOADGEN_QUEUE_MAX */
	size_t qhead, qlen;
	const struct loadgen_sched *sched;
	struct loadgen_cursor cur;
	uint64_t next_due;
	unsigned next_body;
	bool sched_done, finishing;
	uint64_t start, timeout_ns;
	unsigned second;
	uint64_t sec_end;
	struct loadgen_counts sec;
	struct hdr *sec_lat;
	struct loadgen_result *res;
	loadgen_second_fn *on_second;
	void *arg;
	uint64_t last_outcome, lag_max;
	char rbuf[READ_SIZE];
};

static uint64_t now_ns(const struct loadgen *lg)
{
	return uv_hrtime() - lg->start;
}

static enum loadgen_fail cause_of(int uverr)
{
	switch (uverr) {
	case UV_ECONNREFUSED:
		return LOADGEN_FAIL_CONNECT_REFUSED;
	case UV_ECONNRESET:
	case UV_EPIPE:
	case UV_EOF:
	case UV_ECONNABORTED:
		return LOADGEN_FAIL_RESET;
	case UV_ETIMEDOUT:
		return LOADGEN_FAIL_TIMEOUT;
	default:
		return LOADGEN_FAIL_OTHER;
	}
}

static void advance(struct loadgen *lg)
{
	double t;

	if (loadgen_sched_next(lg->sched, &lg->cur, &t) != 0) {
		lg->sched_done = true;
		return;
	}
	lg->next_due = (uint64_t)(t * (double)NS_PER_S);
	lg->next_body = loadgen_sched_body(lg->sched, &lg->cur);
}

static void fail(struct loadgen *lg, enum loadgen_fail cause)
{
	lg->sec.failed[cause]++;
	lg->last_outcome = now_ns(lg);
}

static void on_close(uv_handle_t *h);

/* Every read lands in the one buffer: it is parsed before the next read. */
static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	struct conn *c = h->data;

	buf->base = c->lg->rbuf;
	buf->len = sizeof c->lg->rbuf;
}
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void maybe_connect(struct loadgen *lg);

/* Closes the socket; the connection is FREE again in on_close(). */
static void conn_close(struct conn *c)
{
	struct loadgen *lg = c->lg;

	if (c->state == C_FREE || c->state == C_CLOSING)
		return;
	if (c->state == C_CONNECTING)
		lg->nconnecting--;
	if (c->state == C_BUSY)
		lg->nbusy--;
	if (c->listed) {
		struct conn **pp = &lg->idle_top;

		while (*pp != NULL && *pp != c)
			pp = &(*pp)->next;
		if (*pp == c)
			*pp = c->next;
		c->listed = false;
	}
	c->state = C_CLOSING;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->tcp, on_close);
}

/* Fails the request in flight (if any) with cause and closes. */
static void conn_fail(struct conn *c, enum loadgen_fail cause)
{
	if (c->state == C_BUSY)
		fail(c->lg, cause);
	conn_close(c);
}

static void on_timeout(uv_timer_t *t)
{
	struct conn *c = t->data;

	conn_fail(c, LOADGEN_FAIL_TIMEOUT);
}

static void on_write(uv_write_t *w, int status)
{
	struct conn *c = w->data;

	if (status < 0 && c->state == C_BUSY)
		conn_fail(c, cause_of(status));
}

/* Puts the request due at `due`, with body `body`, on the idle
 * connection c. */
static void send_on(struct conn *c, uint64_t due, unsigned body)
{
	struct loadgen *lg = c->lg;
	uint64_t now = now_ns(lg), deadline = due + lg->timeout_ns;
	const struct buf *req = &lg->reqs[body];
	uv_buf_t b = uv_buf_init(req->data, (unsigned)req->len);
	int r;

	c->due = due;
	c->state = C_BUSY;
	c->done = false;
	lg->nbusy++;
	hparse_init(&c->parser, HPARSE_RESPONSE, &response_settings, c);
	r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	if (r == UV_EAGAIN)
		r = 0;
	if (r < 0) {
		conn_fail(c, cause_of(r));
		return;
	}
	if ((size_t)r < req->len) {
		b = uv_buf_init(req->data + r, (unsigned)(req->len - r));
		r = uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_write);
		if (r < 0) {
			conn_fail(c, cause_of(r));
			return;
		}
	}
	uv_timer_start(&c->timer, on_timeout,
		       deadline > now ? (deadline - now + NS_PER_MS - 1) /
						NS_PER_MS : 0, 0);
}

/* The connection c is idle: it takes the oldest queued request still in
 * time, or goes on the idle stack. */
static void conn_ready(struct conn *c)
{
	struct loadgen *lg = c->lg;
	uint64_t now = now_ns(lg);
	struct qent q;

	while (lg->qlen > 0) {
		q = lg->queue[lg->qhead];
		lg->qhead = (lg->qhead + 1) % LOADGEN_QUEUE_MAX;
		lg->qlen--;
		if (q.due + lg->timeout_ns <= now) {
			fail(lg, LOADGEN_FAIL_TIMEOUT);
			continue;
		}
		send_on(c, q.due, q.body);
		return;
	}
	c->state = C_IDLE;
	c->listed = true;
	c->next = lg->idle_top;
	lg->idle_top = c;
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	struct loadgen *lg = c->lg;

	if (c->state != C_CONNECTING)
		return; /* closed meanwhile */
	if (status < 0) {
		if (lg->qlen > 0) {
			lg->qhead = (lg->qhead + 1) % LOADGEN_QUEUE_MAX;
			lg->qlen--;
			fail(lg, cause_of(status));
		}
		conn_close(c);
		return;
	}
	lg->nconnecting--;
	uv_timer_stop(&c->timer);
	c->state = C_IDLE; /* for conn_close() if reading fails */
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
		conn_close(c);
		return;
	}
	conn_ready(c);
}

static void start_connect(struct conn *c)
{
	struct loadgen *lg = c->lg;
	int r;

	uv_tcp_init(&lg->loop, &c->tcp);
	c->tcp.data = c;
	c->connect.data = c;
	uv_tcp_nodelay(&c->tcp, 1);
	c->state = C_CONNECTING;
	lg->nconnecting++;
	lg->res->connects++;
	r = uv_tcp_connect(&c->connect, &c->tcp,
			   (const struct sockaddr *)&lg->addr, on_connect);
	if (r < 0) {
		if (lg->qlen > 0) {
			lg->qhead = (lg->qhead + 1) % LOADGEN_QUEUE_MAX;
			lg->qlen--;
			fail(lg, cause_of(r));
		}
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_timeout,
		       (lg->timeout_ns + NS_PER_MS - 1) / NS_PER_MS, 0);
}

/* Opens connections while more requests wait than are being connected
 * for, up to the limit. */
static void maybe_connect(struct loadgen *lg)
{
	struct conn *c;

	while (!lg->finishing && lg->qlen > lg->nconnecting &&
	       lg->free_top != NULL) {
		c = lg->free_top;
		lg->free_top = c->next;
		start_connect(c);
	}
}

static void on_close(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct loadgen *lg = c->lg;

	c->state = C_FREE;
	c->next = lg->free_top;
	lg->free_top = c;
	maybe_connect(lg);
}

static void complete(struct conn *c)
{
	struct loadgen *lg = c->lg;
	uint64_t now = now_ns(lg);
	unsigned status = hparse_status(&c->parser);

	uv_timer_stop(&c->timer);
	lg->nbusy--;
	c->state = C_IDLE;
	hdr_record(lg->sec_lat, now > c->due ? (now - c->due) / 1000 : 0);
	if (status >= 200 && status < 300)
		lg->sec.succeeded++;
	else
		lg->sec.failed[LOADGEN_FAIL_NON_2XX]++;
	lg->last_outcome = now;
	if (!c->keep_alive || lg->finishing) {
		conn_close(c);
		return;
	}
	conn_ready(c);
}

static int on_headers_complete(struct hparse *p)
{
	struct conn *c = p->data;

	/* A response to HEAD has no body, whatever its Content-Length. */
	return c->lg->head_method ? 1 : 0;
}

static int on_message_complete(struct hparse *p)
{
	struct conn *c = p->data;

	c->done = true;
	c->keep_alive = hparse_keep_alive(p);
	hparse_pause(p, true);
	return 0;
}

static const struct hparse_settings response_settings = {
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_message_complete,
};

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	if (nread == 0)
		return;
	if (c->state != C_BUSY) {
		/* The server closed an idle connection, or talks out of
		 * turn: either way this connection is done. */
		conn_close(c);
		return;
	}
	if (nread > 0) {
		hparse_execute(&c->parser, buf->base, (size_t)nread);
		if (c->done)
			complete(c);
		else if (hparse_error(&c->parser) != HPARSE_OK)
			conn_fail(c, LOADGEN_FAIL_OTHER);
		return;
	}
	if (nread == UV_EOF) {
		/* A response framed by the end of the connection ends here. */
		hparse_execute(&c->parser, NULL, 0);
		if (c->done) {
			c->keep_alive = false;
			complete(c);
			return;
		}
	}
	conn_fail(c, cause_of((int)nread));
}

/* Hands the second's books to the callback and folds them into the total. */
static void emit_second(struct loadgen *lg)
{
	struct loadgen_counts *t = &lg->res->total;
	unsigned i;

	lg->second++;
	if (lg->on_second != NULL)
		lg->on_second(lg->arg, lg->second, &lg->sec, lg->sec_lat);
	t->sent += lg->sec.sent;
	t->succeeded += lg->sec.succeeded;
	t->dropped_overload += lg->sec.dropped_overload;
	for (i = 0; i < LOADGEN_FAIL_N; i++)
		t->failed[i] += lg->sec.failed[i];
	hdr_add(lg->res->lat, lg->sec_lat);
	hdr_reset(lg->sec_lat);
	memset(&lg->sec, 0, sizeof lg->sec);
	lg->sec_end += NS_PER_S;
}

static bool second_is_empty(const struct loadgen *lg)
{
	static const struct loadgen_counts zero;

	return memcmp(&lg->sec, &zero, sizeof zero) == 0 &&
	       hdr_count(lg->sec_lat) == 0;
}

static void dispatch(struct loadgen *lg, uint64_t due, unsigned body)
{
	struct conn *c;

	if (lg->qlen == 0 && lg->idle_top != NULL) {
		c = lg->idle_top;
		lg->idle_top = c->next;
		c->listed = false;
		lg->sec.sent++;
		send_on(c, due, body);
		return;
	}
	if (lg->qlen >= LOADGEN_QUEUE_MAX) {
		lg->sec.dropped_overload++;
		return;
	}
	lg->queue[(lg->qhead + lg->qlen) % LOADGEN_QUEUE_MAX] =
		(struct qent){ due, body };
	lg->qlen++;
	lg->sec.sent++;
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Ends the run: the last (partial) second, then every handle. */
static void finish(struct loadgen *lg)
{
	unsigned i;

	if (lg->finishing)
		return;
	lg->finishing = true;
	if (lg->res->interrupted)
		lg->res->unfinished = lg->qlen + lg->nbusy;
	if (lg->second == 0 || !second_is_empty(lg))
		emit_second(lg);
	for (i = 0; i < lg->nconns; i++) {
		struct conn *c = &lg->conns[i];

		if (c->state != C_FREE && c->state != C_CLOSING) {
			c->state = C_CLOSING;
			uv_close((uv_handle_t *)&c->tcp, on_close);
		}
		close_handle((uv_handle_t *)&c->timer);
	}
	lg->nbusy = 0;
	lg->nconnecting = 0;
	close_handle((uv_handle_t *)&lg->tick);
	close_handle((uv_handle_t *)&lg->sigint);
	close_handle((uv_handle_t *)&lg->sigterm);
}

/* Arms the tick for the next due time, within [TICK_MIN_NS, TICK_MAX_NS]
 * from now. */
static void arm_tick(struct loadgen *lg, uint64_t now)
{
	struct itimerspec its;
	uint64_t wait = TICK_MAX_NS;

	if (!lg->sched_done && lg->next_due < now + wait)
		wait = lg->next_due > now ? lg->next_due - now : 0;
	if (wait < TICK_MIN_NS)
		wait = TICK_MIN_NS;
	memset(&its, 0, sizeof its);
	its.it_value.tv_sec = (time_t)(wait / NS_PER_S);
	its.it_value.tv_nsec = (long)(wait % NS_PER_S);
	timerfd_settime(lg->tfd, 0, &its, NULL);
}

static void on_tick(uv_poll_t *p, int status, int events)
{
	struct loadgen *lg = p->data;
	uint64_t now = now_ns(lg), expirations;

	/* Drain the timerfd; EAGAIN is only a spurious wake-up. */
	if (read(lg->tfd, &expirations, sizeof expirations) < 0)
		expirations = 0;
	if (lg->finishing)
		return;

	for (;;) {
		while (!lg->sched_done && lg->next_due <= now &&
		       lg->next_due < lg->sec_end) {
			if (now - lg->next_due > lg->lag_max)
				lg->lag_max = now - lg->next_due;
			dispatch(lg, lg->next_due, lg->next_body);
			advance(lg);
		}
		if (now < lg->sec_end || (lg->sched_done && lg->qlen == 0 &&
					  lg->nbusy == 0))
			break;
		emit_second(lg);
	}
	while (lg->qlen > 0 &&
	       lg->queue[lg->qhead].due + lg->timeout_ns <= now) {
		lg->qhead = (lg->qhead + 1) % LOADGEN_QUEUE_MAX;
		lg->qlen--;
		fail(lg, LOADGEN_FAIL_TIMEOUT);
	}
	maybe_connect(lg);
	if (lg->sched_done && lg->qlen == 0 && lg->nbusy == 0)
		finish(lg);
	else
		arm_tick(lg, now);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct loadgen *lg = s->data;

	lg->res->interrupted = 1;
	finish(lg);
}

/* -- preparing a run -- */

static bool is_tchar(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* Checks a "Name: value" header; returns the name's length or 0. */
static size_t header_name_len(const char *h)
{
	size_t i = 0;

	while (h[i] != '\0' && is_tchar((unsigned char)h[i]))
		i++;
	if (i == 0 || h[i] != ':')
		return 0;
	if (strpbrk(h, "\r\n") != NULL)
		return 0;
	return i;
}

static bool name_is(const char *h, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(h, name, len) == 0;
}

/* Renders one request into r: the head, Content-Length when there is a
 * body or the method has one, the body. Returns 0 or -1 (too large). */
static int render(struct buf *r, const struct buf *head, bool with_len,
		  const void *body, size_t len)
{
	int rc;

	buf_init(r, HEAD_MAX + len);
	rc = buf_add(r, head->data, head->len);
	if (rc == 0 && (len > 0 || with_len))
		rc = buf_printf(r, "Content-Length: %zu\r\n", len);
	if (rc == 0)
		rc = buf_addstr(r, "\r\n");
	if (rc == 0 && len > 0)
		rc = buf_add(r, body, len);
	return rc;
}

/* Renders every request: one, or one a body of o->bodies. */
static int render_all(struct loadgen *lg, const struct loadgen_opts *o,
		      const struct buf *head, bool with_len)
{
	size_t i;

	if (o->nbodies == 0) {
		lg->nreqs = 1;
		lg->reqs = xcalloc(1, sizeof *lg->reqs);
		return render(&lg->reqs[0], head, with_len, o->body,
			      o->body_len);
	}
	lg->nreqs = o->nbodies;
	lg->reqs = xcalloc(o->nbodies, sizeof *lg->reqs);
	for (i = 0; i < o->nbodies; i++)
		if (render(&lg->reqs[i], head, with_len, o->bodies[i].data,
			   o->bodies[i].len) != 0)
			return -1;
	return 0;
}

/* Checks the bodies' sizes and that the schedule's indexes fit them. */
static int check_bodies(const struct loadgen_opts *o, char *diag,
			size_t diagsz)
{
	const struct loadgen_sched *s = o->sched;
	size_t i;

	if (o->body_len > BODY_MAX) {
		mds_diag(diag, diagsz, "the body is over %u MiB", BODY_MAX >> 20);
		return MDS_E_LIMIT;
	}
	if (o->nbodies > LOADGEN_BODIES_MAX) {
		mds_diag(diag, diagsz, "more than %u bodies",
			 LOADGEN_BODIES_MAX);
		return MDS_E_LIMIT;
	}
	for (i = 0; i < o->nbodies; i++) {
		if (o->bodies[i].len > BODY_MAX) {
			mds_diag(diag, diagsz, "body %zu is over %u MiB", i,
				 BODY_MAX >> 20);
			return MDS_E_LIMIT;
		}
	}
	for (i = 0; s->body_of != NULL && i < s->ndue; i++) {
		if (s->body_of[i] >= (o->nbodies > 0 ? o->nbodies : 1)) {
			mds_diag(diag, diagsz, "request %zu wants body %u of "
				 "%zu", i + 1, s->body_of[i], o->nbodies);
			return MDS_E_INVAL;
		}
	}
	return 0;
}

/* Resolves the URL into lg->addr and renders the requests into lg->reqs. */
static int prepare(struct loadgen *lg, const struct loadgen_opts *o,
		   char *diag, size_t diagsz)
{
	struct hparse_url u;
	struct buf head;
	struct addrinfo hints, *ai = NULL;
	const char *url = o->url, *method = o->method, *path;
	char host[256], port[8];
	size_t i, len, hlen, plen;
	bool has_host = false, is_v6;
	int rc;

	len = url != NULL ? strlen(url) : 0;
	if (len == 0) {
		mds_diag(diag, diagsz, "a URL is needed");
		return MDS_E_INVAL;
	}
	if (hparse_url(url, len, &u) != 0 || !u.schema.set || !u.host.set ||
	    u.schema.len != 4 ||
	    strncasecmp(url + u.schema.off, "http", 4) != 0 ||
	    u.userinfo.set) {
		mds_diag(diag, diagsz, "bad URL '%s': it must be "
			 "http://HOST[:PORT][/PATH]", url);
		return MDS_E_INVAL;
	}
	hlen = u.host.len;
	if (hlen >= sizeof host) {
		mds_diag(diag, diagsz, "bad URL: the host name is too long");
		return MDS_E_INVAL;
	}
	memcpy(host, url + u.host.off, hlen);
	host[hlen] = '\0';
	is_v6 = strchr(host, ':') != NULL;
	snprintf(port, sizeof port, "%u",
		 u.port != 0 ? (unsigned)u.port : 80u);
	if (u.path.set) {
		path = url + u.path.off;
		plen = len - u.path.off;
		if (u.fragment.set)
			plen = u.fragment.off - 1 - u.path.off;
	} else {
		path = "/";
		plen = 1;
	}
	if (method == NULL)
		method = o->body_len > 0 ? "POST" : "GET";
	for (i = 0; method[i] != '\0' && is_tchar((unsigned char)method[i]); i++)
		;
	if (i == 0 || method[i] != '\0' || i > METHOD_MAX) {
		mds_diag(diag, diagsz, "bad method '%s'", method);
		return MDS_E_INVAL;
	}
	lg->head_method = strcmp(method, "HEAD") == 0;
	rc = check_bodies(o, diag, diagsz);
	if (rc != 0)
		return rc;
	if (o->nheaders > LOADGEN_HEADERS_MAX) {
		mds_diag(diag, diagsz, "more than %u headers",
			 LOADGEN_HEADERS_MAX);
		return MDS_E_LIMIT;
	}
	buf_init(&head, HEAD_MAX);
	rc = buf_printf(&head, "%s %.*s HTTP/1.1\r\n", method, (int)plen,
			path);
	for (i = 0; rc == 0 && i < o->nheaders; i++) {
		const char *h = o->headers[i];
		size_t n = header_name_len(h);

		if (n == 0) {
			mds_diag(diag, diagsz, "bad header '%s': it must be "
				 "'Name: value' on one line", h);
			buf_free(&head);
			return MDS_E_INVAL;
		}
		if (name_is(h, n, "Content-Length") ||
		    name_is(h, n, "Transfer-Encoding")) {
			mds_diag(diag, diagsz, "the header %.*s is set from "
				 "the body", (int)n, h);
			buf_free(&head);
			return MDS_E_INVAL;
		}
		if (name_is(h, n, "Host"))
			has_host = true;
		rc = buf_printf(&head, "%s\r\n", h);
	}
	if (rc == 0 && !has_host)
		rc = buf_printf(&head, "Host: %s%s%s%s%s\r\n",
				is_v6 ? "[" : "", host, is_v6 ? "]" : "",
				u.port != 0 ? ":" : "",
				u.port != 0 ? port : "");
	if (rc == 0)
		rc = buf_printf(&head, "User-Agent: mdscale-load/%s\r\n",
				MDS_VERSION);
	if (rc == 0)
		rc = render_all(lg, o, &head, strcmp(method, "POST") == 0 ||
				strcmp(method, "PUT") == 0 ||
				strcmp(method, "PATCH") == 0);
	buf_free(&head);
	if (rc != 0) {
		mds_diag(diag, diagsz, "the request head is over %u KiB",
			 HEAD_MAX >> 10);
		return MDS_E_LIMIT;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0 || ai == NULL) {
		mds_diag(diag, diagsz, "cannot resolve '%s': %s", host,
			 rc != 0 ? gai_strerror(rc) : "no address");
		return MDS_E_UNAVAIL;
	}
	memcpy(&lg->addr, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

int loadgen_run(const struct loadgen_opts *o, struct loadgen_result *res,
		char *diag, size_t diagsz)
{
	struct loadgen *lg;
	unsigned i;
	int rc;

	memset(res, 0, sizeof *res);
	if (o->sched == NULL || (o->sched->n == 0 && o->sched->ndue == 0) ||
	    o->connections < 1 ||
	    o->connections > LOADGEN_CONN_MAX || o->timeout_ms < 1) {
		mds_diag(diag, diagsz, "bad load options");
		return MDS_E_INVAL;
	}
	lg = xcalloc(1, sizeof *lg);
	lg->tfd = -1;
	rc = prepare(lg, o, diag, diagsz);
	if (rc != 0)
		goto out;
	lg->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (lg->tfd < 0) {
		mds_diag(diag, diagsz, "timerfd: %s", strerror(errno));
		rc = MDS_E_SYS;
		goto out;
	}
	rc = uv_loop_init(&lg->loop);
	if (rc == 0) {
		rc = uv_poll_init(&lg->loop, &lg->tick, lg->tfd);
		if (rc != 0)
			uv_loop_close(&lg->loop);
	}
	if (rc != 0) {
		mds_diag(diag, diagsz, "cannot start the loop: %s",
			 uv_strerror(rc));
		rc = MDS_E_SYS;
		goto out;
	}
	lg->tick.data = lg;
	hdr_new(LOADGEN_LAT_HIGHEST, 2, &res->lat);
	hdr_new(LOADGEN_LAT_HIGHEST, 2, &lg->sec_lat);
	lg->res = res;
	lg->sched = o->sched;
	lg->timeout_ns = o->timeout_ms * NS_PER_MS;
	lg->on_second = o->on_second;
	lg->arg = o->arg;
	lg->queue = xcalloc(LOADGEN_QUEUE_MAX, sizeof *lg->queue);
	lg->nconns = o->connections;
	lg->conns = xcalloc(lg->nconns, sizeof *lg->conns);
	for (i = lg->nconns; i-- > 0;) {
		struct conn *c = &lg->conns[i];

		c->lg = lg;
		c->write.data = c;
		uv_timer_init(&lg->loop, &c->timer);
		c->timer.data = c;
		c->next = lg->free_top;
		lg->free_top = c;
	}
	uv_signal_init(&lg->loop, &lg->sigint);
	uv_signal_init(&lg->loop, &lg->sigterm);
	lg->sigint.data = lg;
	lg->sigterm.data = lg;
	uv_signal_start(&lg->sigint, on_signal, SIGINT);
	uv_signal_start(&lg->sigterm, on_signal, SIGTERM);
	signal(SIGPIPE, SIG_IGN);

	lg->start = uv_hrtime();
	lg->sec_end = NS_PER_S;
	advance(lg);
	uv_poll_start(&lg->tick, UV_READABLE, on_tick);
	arm_tick(lg, 0);
	uv_run(&lg->loop, UV_RUN_DEFAULT);

	res->elapsed_s = (double)lg->last_outcome / (double)NS_PER_S;
	if (res->interrupted)
		res->elapsed_s = (double)now_ns(lg) / (double)NS_PER_S;
	else if (res->elapsed_s < o->sched->seconds)
		res->elapsed_s = o->sched->seconds;
	res->lag_max_ms = (double)lg->lag_max / (double)NS_PER_MS;
	uv_loop_close(&lg->loop);
	free(lg->queue);
	free(lg->conns);
	hdr_free(lg->sec_lat);
out:
	if (lg->tfd >= 0)
		close(lg->tfd);
	for (i = 0; i < lg->nreqs; i++)
		buf_free(&lg->reqs[i]);
	free(lg->reqs);
	free(lg);
	return rc;
}
