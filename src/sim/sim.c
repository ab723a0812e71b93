/*
 * sim.c - the simulated deployment and the run loop (see sim.h).
 *
 * Time is in microseconds. An instance serves its requests one at a time
 * in arrival order, so a request's start and completion are known when it
 * is routed: its completion goes into the instance's ring of outstanding
 * requests (completions are increasing) and its busy interval into the
 * instance's busy blocks, which the sampler turns into CpuUtilization.
 * The control loop ticks every TICK_US: readiness, drains, sampling, the
 * policy's decisions; a rule's early check (rule_decide_early()) at the
 * ticks inside a second, on the service time arrived in it so far.
 */
#include "sim/sim.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hdr.h"
#include "core/planner.h"
#include "core/route.h"
#include "sim/sim_alarms.h"
#include "util/err.h"
#include "util/xalloc.h"

#define TICK_US 100000LL
#define MEM_BASE_BYTES (24ull << 20)  /* the model server at rest */
#define MEM_ENTRY_BYTES 2400ull      /* a cache entry */
#define MEM_ENTRIES_MAX 20000ull     /* the cache's bound */

void sim_model_default(struct sim_model *m)
{
	*m = (struct sim_model){
		.service_ms = 2.04, .startup_ms = 300, .sample_ms = 1000,
		.eval_ms = 1000, .timeout_ms = 60000, .max_clients = 10000,
		.cpu_mcpu = 250, .mem_bytes = 1ull << 30, .price_hour = 0.0125,
		.slo_ms = 0, .flap_window_ms = 120000,
	};
}

int sim_model_validate(const struct sim_model *m, char *diag, size_t diagsz)
{
	const char *bad = NULL;

	if (!(m->service_ms > 0) || m->service_ms > 60000)
		bad = "serviceMs must be above 0 and at most 60000";
	else if (m->startup_ms < 0 || m->startup_ms > 3600000)
		bad = "startupMs must be from 0 to 3600000";
	else if (m->sample_ms < 100 || m->sample_ms > 60000 ||
		 m->sample_ms % 100 != 0)
		bad = "sampleMs must be a multiple of 100 from 100 to 60000";
	else if (m->eval_ms < 100 || m->eval_ms > 60000 || m->eval_ms % 100)
		bad = "evalMs must be a multiple of 100 from 100 to 60000";
	else if (m->timeout_ms < 1 || m->max_clients < 1 || m->cpu_mcpu < 1 ||
		 m->mem_bytes < 1)
		bad = "timeoutMs, maxClients, cpu and memory must be positive";
	else if (!(m->price_hour >= 0) || m->slo_ms < 0)
		bad = "price and sloMs must not be negative";
	if (bad == NULL)
		return 0;
	mds_diag(diag, diagsz, "%s", bad);
	return MDS_E_INVAL;
}

struct ring {
	int64_t *v;
	size_t head, len, cap;
};

static void ring_push(struct ring *r, int64_t x)
{
	if (r->len == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		int64_t *v = xmalloc(cap * sizeof(*v));

		for (size_t i = 0; i < r->len; i++)
			v[i] = r->v[(r->head + i) % r->cap];
		free(r->v);
		r->v = v;
		r->head = 0;
		r->cap = cap;
	}
	r->v[(r->head + r->len++) % r->cap] = x;
}

static int64_t ring_at(const struct ring *r, size_t i)
{
	return r->v[(r->head + i) % r->cap];
}

static void ring_pop(struct ring *r, size_t k)
{
	r->head = (r->head + k) % (r->cap ? r->cap : 1);
	r->len -= k;
}

enum inst_state { I_STARTING, I_READY, I_DRAINING, I_STOPPED };

struct inst {
	enum inst_state state;
	int64_t start_us, ready_us, drain_us, stop_us;
	int64_t free_us;       /* when the request in service ends */
	struct ring done;      /* completions of outstanding requests */
	struct ring busy;      /* busy blocks as start, end pairs */
	uint64_t served;
	double cpu, mem;       /* the last samples, percent */
	size_t serial;         /* stable identity, for the metrics */
};

struct run {
	const struct trace *t;
	const struct sim_model *m;
	const struct sim_policy *p;
	struct inst *in;       /* not stopped; the stopped are billed and
				  removed */
	size_t nin, cap, serial;
	uint32_t outstanding;  /* over all instances */
	uint32_t cursor;       /* route_pick's */
	int64_t last_change_us;
	int last_dir;          /* +1 out, -1 in, 0 none yet */
	double *inflight;      /* per second: integral of requests in flight
				  (request-seconds) */
	double *work;          /* per second: service time arrived, s */
	struct hdr *all, *sec;
	struct sim_result *r;
	struct rule_state *rs;
	struct sim_alarms *al;
	int64_t horizon_us;
	double cpu_mean;       /* of the ready instances, the last sample */
};

/* Instances that count: started and not draining or stopped. */
static uint32_t current(const struct run *u, uint32_t *ready)
{
	uint32_t n = 0, k = 0;

	for (size_t i = 0; i < u->nin; i++) {
		n += u->in[i].state == I_STARTING || u->in[i].state == I_READY;
		k += u->in[i].state == I_READY;
	}
	if (ready)
		*ready = k;
	return n;
}

static bool updating(const struct run *u)
{
	for (size_t i = 0; i < u->nin; i++)
		if (u->in[i].state == I_STARTING ||
		    u->in[i].state == I_DRAINING)
			return true;
	return false;
}

static void start_instance(struct run *u, int64_t now)
{
	struct inst *x;

	if (u->nin == u->cap) {
		u->cap = u->cap ? u->cap * 2 : 16;
		u->in = xreallocarray(u->in, u->cap, sizeof(*u->in));
	}
	x = &u->in[u->nin++];
	memset(x, 0, sizeof(*x));
	x->state = I_STARTING;
	x->start_us = now;
	x->ready_us = now + u->m->startup_ms * 1000;
	x->stop_us = -1;
	x->free_us = now;
	x->serial = u->serial++;
}

/* Bills a stopped instance and takes it out of the array. */
static void retire(struct run *u, size_t i)
{
	struct inst *x = &u->in[i];
	int64_t end = x->stop_us < u->horizon_us ? x->stop_us : u->horizon_us;

	u->r->instance_seconds += (double)(end - x->start_us) / 1e6;
	free(x->done.v);
	free(x->busy.v);
	/*
	 * The last instance takes its place. memcpy rather than assignment:
	 * clang's analyzer takes a struct assigned from an element at a
	 * variable index for one still holding the rings just freed.
	 */
	if (i != --u->nin)
		memcpy(&u->in[i], &u->in[u->nin], sizeof(u->in[i]));
}

/* Completes what has finished by now on every instance; stops the
 * drained ones. */
static void settle(struct run *u, int64_t now)
{
	for (size_t i = 0; i < u->nin;) {
		struct inst *x = &u->in[i];
		size_t k = 0;

		while (k < x->done.len && ring_at(&x->done, k) <= now)
			k++;
		ring_pop(&x->done, k);
		u->outstanding -= (uint32_t)k;
		if (x->state == I_STARTING && x->ready_us <= now)
			x->state = I_READY;
		if (x->state == I_DRAINING && x->done.len == 0) {
			x->state = I_STOPPED;
			x->stop_us = x->free_us > x->drain_us ? x->free_us
							       : x->drain_us;
			retire(u, i);
			continue;
		}
		i++;
	}
}

/* Adds request-seconds of flight [a, b) to the per-second integral. */
static void add_inflight(struct run *u, int64_t a, int64_t b)
{
	size_t n = (size_t)(u->horizon_us / 1000000) + 1;

	for (int64_t s = a / 1000000; s * 1000000 < b && (size_t)s < n; s++) {
		int64_t lo = a > s * 1000000 ? a : s * 1000000;
		int64_t hi = b < (s + 1) * 1000000 ? b : (s + 1) * 1000000;

		u->inflight[s] += (double)(hi - lo) / 1e6;
	}
}

static void arrive(struct run *u, const struct trace_req *q)
{
	uint32_t outs[SIM_MAX_INSTANCES];
	size_t idx[SIM_MAX_INSTANCES], n = 0;
	struct sim_result *r = u->r;
	int64_t slo_us = (int64_t)(r->slo_ms * 1000);
	size_t sec = (size_t)(q->t_us / 1000000);

	settle(u, q->t_us);
	r->requests++;
	if (sec < r->nseconds)
		r->seconds[sec].arrivals++;
	for (size_t i = 0; i < u->nin && n < SIM_MAX_INSTANCES; i++)
		if (u->in[i].state == I_READY) {
			idx[n] = i;
			outs[n++] = (uint32_t)u->in[i].done.len;
		}
	if (n == 0 || u->outstanding >= u->m->max_clients) {
		r->refused++;
		if (sec < r->nseconds)
			r->seconds[sec].missed++;
		return;
	}
	struct inst *x = &u->in[idx[route_pick(outs, n, &u->cursor)]];
	int64_t svc = (int64_t)(u->m->service_ms * 1000 * q->cost);
	int64_t start = x->free_us > q->t_us ? x->free_us : q->t_us;
	int64_t end = start + (svc > 0 ? svc : 1);
	int64_t lat = end - q->t_us;

	if (x->busy.len > 0 && ring_at(&x->busy, x->busy.len - 1) == start)
		x->busy.v[(x->busy.head + x->busy.len - 1) % x->busy.cap] = end;
	else {
		ring_push(&x->busy, start);
		ring_push(&x->busy, end);
	}
	x->free_us = end;
	x->served++;
	ring_push(&x->done, end);
	u->outstanding++;
	add_inflight(u, q->t_us, end);
	if (sec < r->nseconds)
		u->work[sec] += (double)(end - start) / 1e6;
	hdr_record(u->all, (uint64_t)lat);
	hdr_record(u->sec, (uint64_t)lat);
	if (lat > u->m->timeout_ms * 1000)
		r->timed_out++;
	if (lat <= u->m->timeout_ms * 1000 && lat <= slo_us)
		r->within_slo++;
	else if (sec < r->nseconds)
		r->seconds[sec].missed++;
}

/* Busy time of x in [a, b), dropping the blocks that end by b. */
static int64_t busy_in(struct inst *x, int64_t a, int64_t b)
{
	int64_t sum = 0;
	size_t k = 0;

	for (size_t i = 0; i + 1 < x->busy.len; i += 2) {
		int64_t s = ring_at(&x->busy, i), e = ring_at(&x->busy, i + 1);

		if (s >= b)
			break;
		sum += (e < b ? e : b) - (s > a ? s : a);
		if (e <= b)
			k = i + 2;
	}
	ring_pop(&x->busy, k);
	return sum;
}

/* The sampler: utilization of every started instance over the period. */
static double sample(struct run *u, int64_t now)
{
	int64_t period = u->m->sample_ms * 1000;
	double sum = 0;
	uint32_t n = 0;

	for (size_t i = 0; i < u->nin; i++) {
		struct inst *x = &u->in[i];
		uint64_t entries = x->served < MEM_ENTRIES_MAX
					   ? x->served
					   : MEM_ENTRIES_MAX;

		if (x->state == I_STOPPED)
			continue;
		x->cpu = 100.0 * (double)busy_in(x, now - period, now) /
			 (double)period;
		x->mem = 100.0 * (double)(MEM_BASE_BYTES +
					  entries * MEM_ENTRY_BYTES) /
			 (double)u->m->mem_bytes;
		if (x->state == I_READY) {
			sum += x->cpu;
			n++;
		}
	}
	return n ? sum / n : 0;
}

/* Moves to want instances with the planner's steps. */
static int apply(struct run *u, uint32_t want, int64_t now)
{
	struct plan_instance cur[SIM_MAX_INSTANCES];
	size_t map[SIM_MAX_INSTANCES], n = 0;
	static const enum plan_inst_state st[] = {
		[I_STARTING] = PLAN_STARTING, [I_READY] = PLAN_READY,
		[I_DRAINING] = PLAN_DRAINING, [I_STOPPED] = PLAN_STOPPED,
	};
	struct plan *plan;
	uint32_t have = current(u, NULL);
	int rc;

	if (want == have)
		return 0;
	for (size_t i = 0; i < u->nin; i++) {
		if (u->in[i].state == I_STOPPED)
			continue;
		if (n == SIM_MAX_INSTANCES)
			return MDS_E_LIMIT;
		cur[n] = (struct plan_instance){
			.shape = "sim",
			.state = st[u->in[i].state],
			.started_ms = (uint64_t)(u->in[i].start_us / 1000),
		};
		map[n++] = i;
	}
	plan = xmalloc(sizeof(*plan));
	rc = planner_plan(cur, n, want, "sim", plan);
	for (size_t i = 0; rc == 0 && i < plan->n; i++) {
		const struct plan_step *s = &plan->steps[i];

		if (s->kind == PLAN_START_INSTANCE)
			start_instance(u, now);
		else if (s->kind == PLAN_DRAIN_INSTANCE) {
			u->in[map[s->target]].state = I_DRAINING;
			u->in[map[s->target]].drain_us = now;
		}
	}
	free(plan);
	if (rc != 0)
		return rc;
	int dir = want > have ? 1 : -1;

	u->r->actions++;
	if (u->last_dir != 0 && dir != u->last_dir &&
	    now - u->last_change_us <= u->m->flap_window_ms * 1000)
		u->r->reversals++;
	u->last_dir = dir;
	u->last_change_us = now;
	return 0;
}

static int decide(struct run *u, int64_t now)
{
	const struct sim_policy *p = u->p;
	int64_t now_ms = now / 1000;
	uint32_t ready, have = current(u, &ready), want = have;

	if (p->kind == SIM_ALARMS) {
		if (now_ms % u->m->eval_ms != 0)
			return 0;
		int rc = sim_alarms_tick(u->al, now_ms, have,
					 updating(u) ? "UPDATING" : "ACTIVE",
					 &want);
		return rc != 0 ? rc : apply(u, want, now);
	}
	if (p->kind == SIM_SCHEDULE) {
		size_t s = (size_t)(now_ms / 1000);

		if (now_ms % 1000 != 0 || p->nschedule == 0)
			return 0;
		want = p->schedule[s < p->nschedule ? s : p->nschedule - 1];
		return apply(u, want, now);
	}
	if (now_ms % 1000 != 0) {
		/* Inside a second: the early check on the work arrived in it
		 * so far. */
		int rc = apply(u, rule_decide_early(&p->rule, u->rs, now_ms,
						    u->work[now_ms / 1000],
						    now_ms % 1000, have,
						    p->min_instances,
						    p->max_instances),
			       now);

		if (rc != 0)
			return rc;
		have = current(u, &ready);
	}
	if (now_ms % p->rule.tick_ms != 0)
		return 0;
	want = rule_decide(&p->rule, u->rs, now_ms, have, ready,
			   p->min_instances, p->max_instances);
	return apply(u, want, now);
}

/* At the end of each sample period: the samples, the metrics' store, the
 * rule's observation. */
static int observe(struct run *u, int64_t now)
{
	u->cpu_mean = sample(u, now);
	if (u->p->kind != SIM_ALARMS)
		return 0;
	for (size_t i = 0; i < u->nin; i++)
		if (u->in[i].state != I_STOPPED) {
			int rc = sim_alarms_sample(u->al, u->in[i].serial,
						   now / 1000,
						   u->in[i].cpu, u->in[i].mem);
			if (rc != 0)
				return rc;
		}
	return 0;
}

static void second_done(struct run *u, int64_t now)
{
	size_t s = (size_t)(now / 1000000) - 1;
	uint32_t ready, billed = 0;

	if (s >= u->r->nseconds)
		return;
	for (size_t i = 0; i < u->nin; i++)
		billed += u->in[i].state != I_STOPPED;
	current(u, &ready);
	u->r->seconds[s].instances = (uint16_t)billed;
	u->r->seconds[s].ready = (uint16_t)ready;
	u->r->seconds[s].p99_ms =
		hdr_count(u->sec) ? (float)hdr_percentile(u->sec, 99) / 1000.0f
				  : 0;
	hdr_reset(u->sec);
}

static int loop(struct run *u)
{
	size_t next = 0;
	int rc = 0;

	for (int64_t now = TICK_US; now <= u->horizon_us && rc == 0;
	     now += TICK_US) {
		while (next < u->t->n && u->t->reqs[next].t_us < now)
			arrive(u, &u->t->reqs[next++]);
		settle(u, now);
		if ((now / 1000) % u->m->sample_ms == 0)
			rc = observe(u, now);
		if (rc == 0 && now % 1000000 == 0) {
			second_done(u, now);
			if (u->p->kind != SIM_ALARMS)
				rule_observe(u->rs, &(struct rule_obs){
					u->cpu_mean,
					u->inflight[now / 1000000 - 1],
					u->work[now / 1000000 - 1] });
		}
		if (rc == 0)
			rc = decide(u, now);
	}
	return rc;
}

static void account(struct run *u, const uint16_t *oracle, size_t noracle)
{
	struct sim_result *r = u->r;

	for (size_t i = 0; i < u->nin; i++)
		r->instance_seconds +=
			(double)(u->horizon_us - u->in[i].start_us) / 1e6;
	r->cost = r->instance_seconds / 3600.0 * u->m->price_hour;
	r->p50_ms = (double)hdr_percentile(u->all, 50) / 1000.0;
	r->p99_ms = (double)hdr_percentile(u->all, 99) / 1000.0;
	for (size_t s = 0; oracle && s < r->nseconds && s < noracle; s++) {
		if (r->seconds[s].instances > oracle[s])
			r->over_s += 1;
		else if (r->seconds[s].instances < oracle[s])
			r->under_s += 1;
	}
}

int sim_run(const struct trace *t, const struct sim_model *m,
	    const struct sim_policy *p, const uint16_t *oracle,
	    size_t noracle, struct sim_result *out, char *diag,
	    size_t diagsz)
{
	struct run u = { .t = t, .m = m, .p = p };
	struct sim_result r = { 0 };
	int rc = sim_model_validate(m, diag, diagsz);

	if (rc == 0)
		rc = sim_policy_validate(p, diag, diagsz);
	if (rc != 0)
		return rc;
	snprintf(r.name, sizeof(r.name), "%s", p->name);
	r.slo_ms = m->slo_ms > 0 ? m->slo_ms : 5 * m->service_ms;
	/* Whole seconds, past the last arrival. */
	u.horizon_us = (t->span_us / 1000000 + 1) * 1000000;
	r.nseconds = (size_t)(u.horizon_us / 1000000);
	r.seconds = xcalloc(r.nseconds, sizeof(*r.seconds));
	u.inflight = xcalloc(r.nseconds + 1, sizeof(*u.inflight));
	u.work = xcalloc(r.nseconds + 1, sizeof(*u.work));
	u.r = &r;
	hdr_new((uint64_t)m->timeout_ms * 4000, 2, &u.all);
	hdr_new((uint64_t)m->timeout_ms * 4000, 2, &u.sec);
	if (p->kind == SIM_ALARMS)
		rc = sim_alarms_new(&p->alarms, &u.al, diag, diagsz);
	else {
		u.rs = xmalloc(sizeof(*u.rs));
		rule_state_init(u.rs);
	}
	for (uint32_t i = 0, k = sim_initial(p, oracle, noracle);
	     rc == 0 && i < k; i++) {
		start_instance(&u, 0);
		u.in[i].ready_us = 0;
		u.in[i].state = I_READY;
	}
	if (rc == 0)
		rc = loop(&u);
	if (rc == 0)
		account(&u, oracle, noracle);
	else if (rc == MDS_E_LIMIT)
		mds_diag(diag, diagsz, "more than %d instances",
			 SIM_MAX_INSTANCES);
	for (size_t i = 0; i < u.nin; i++) {
		free(u.in[i].done.v);
		free(u.in[i].busy.v);
	}
	free(u.in);
	free(u.inflight);
	free(u.work);
	free(u.rs);
	sim_alarms_free(u.al);
	hdr_free(u.all);
	hdr_free(u.sec);
	if (rc != 0) {
		sim_result_clear(&r);
		return rc;
	}
	*out = r;
	return 0;
}

uint32_t sim_initial(const struct sim_policy *p, const uint16_t *oracle,
		     size_t noracle)
{
	uint32_t k = p->min_instances;

	if (p->initial != 0)
		return p->initial;
	if (oracle != NULL && noracle > 0)
		k = oracle[0];
	if (k < p->min_instances)
		k = p->min_instances;
	return k > p->max_instances ? p->max_instances : k;
}

void sim_result_clear(struct sim_result *r)
{
	if (r == NULL)
		return;
	free(r->seconds);
	memset(r, 0, sizeof(*r));
}
