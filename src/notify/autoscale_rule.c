/* autoscale_rule.c - the mdscale profile's live loop; see
 * autoscale_rule.h. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/autoscale_rule.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/xalloc.h"

#define SAMPLE_MS 100        /* the in-flight count's sampling */
#define SAMPLES_A_SECOND 10  /* one observation every this many samples */
#define CPU_WINDOW_MS 2000   /* the newest CPU sample no older than this */
#define TRACKED_MAX 10000
/* Below this many requests in flight per ready instance, a finished
 * request's latency is taken as its service time. */
#define UNQUEUED_CONC 0.5
#define SERVICE_WEIGHT 0.3   /* of a new second in the moving average */

void autoscale_rule_observation(const struct autoscale_rule_counts *prev,
				const struct autoscale_rule_counts *cur,
				double elapsed_s, double conc, double busy_gw,
				double cpu, uint32_t ready, double *service_s,
				struct rule_obs *out)
{
	uint64_t done = cur->requests >= prev->requests
				? cur->requests - prev->requests : 0;
	double arrived = (double)done + (double)cur->inflight -
			 (double)prev->inflight;
	double busy = cpu / 100.0 * (double)ready;

	if (busy < busy_gw)
		busy = busy_gw;

	if (elapsed_s <= 0)
		elapsed_s = 1;
	if (arrived < 0)
		arrived = 0;
	if (done > 0 && cur->latency_us_sum >= prev->latency_us_sum &&
	    conc < UNQUEUED_CONC * (double)(ready ? ready : 1)) {
		double s = (double)(cur->latency_us_sum -
				    prev->latency_us_sum) /
			   (double)done / 1e6;

		/* Latency only ever overstates the service time (a cold
		 * instance, a busy host): a lower second is taken at once. */
		*service_s = *service_s > 0 && s > *service_s
				     ? (1 - SERVICE_WEIGHT) * *service_s +
					       SERVICE_WEIGHT * s
				     : s;
	}
	/* What the instances did, scaled up by what arrived over what they
	 * finished: the offered load of a saturated deployment. */
	if (done > 0 && arrived > (double)done)
		busy *= arrived / (double)done;
	out->cpu = cpu;
	out->conc = conc;
	out->work = arrived * *service_s / elapsed_s;
	if (out->work < busy)
		out->work = busy;
}

/* One deployment under the rule. */
struct track {
	char id[DEPLOY_ID_MAX];
	struct rule_state *rs;
	struct autoscale_rule_counts prev; /* at the second's start */
	uint64_t prev_t;                   /* uv_now() then */
	double conc_sum;                   /* in-flight samples since */
	double busy_sum;                   /* min(in flight, ready) */
	uint32_t nconc;
	uint32_t ready;                    /* at the last second */
	uint32_t current;                  /* started, then */
	double cpu;                        /* the ready ones' CPU, then */
	double service_s;                  /* learned; 0 unknown */
	bool live;                         /* still under the rule */
};

struct autoscale_rule {
	uv_timer_t timer;
	struct autoscale *a;
	struct deploy *d;
	struct gateway *gw;
	struct monitoring *m;
	uint64_t ticks;
	struct track *v;
	size_t n, cap;
	char (*ids)[DEPLOY_ID_MAX]; /* candidates of one second */
	size_t nids, capids;
};

static void counts_read(struct autoscale_rule *w, const char *id,
			struct autoscale_rule_counts *c)
{
	struct gateway_counters gc;

	memset(c, 0, sizeof(*c));
	if (gateway_counters(w->gw, id, &gc) != 0)
		return;
	c->requests = gc.requests;
	c->latency_us_sum = gc.latency_us_sum;
	c->inflight = gc.inflight;
}

/* The deployment's track; a new one starts its first second now. */
static struct track *track_get(struct autoscale_rule *w, const char *id,
			       uint64_t now)
{
	struct track *t;

	for (size_t i = 0; i < w->n; i++)
		if (strcmp(w->v[i].id, id) == 0)
			return &w->v[i];
	if (w->n >= TRACKED_MAX)
		return NULL;
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 8;
		w->v = xreallocarray(w->v, w->cap, sizeof(*w->v));
	}
	t = &w->v[w->n++];
	memset(t, 0, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "%s", id);
	t->rs = xcalloc(1, sizeof(*t->rs));
	rule_state_init(t->rs);
	counts_read(w, id, &t->prev);
	t->prev_t = now;
	return t;
}

static void collect(void *arg, const struct deploy_view *v)
{
	struct autoscale_rule *w = arg;

	if (strcmp(v->state, "ACTIVE") != 0 &&
	    strcmp(v->state, "UPDATING") != 0)
		return;
	if (w->nids == w->capids) {
		w->capids = w->capids ? w->capids * 2 : 16;
		w->ids = xreallocarray(w->ids, w->capids, sizeof(*w->ids));
	}
	snprintf(w->ids[w->nids++], DEPLOY_ID_MAX, "%s", v->id);
}

/* The instances started and not draining, the ready ones, and the mean
 * CPU of the ready ones (0 without samples). */
static double instances(struct autoscale_rule *w, const struct deploy_view *v,
			uint32_t *current, uint32_t *ready)
{
	double sum = 0;
	uint32_t n = 0;

	*current = *ready = 0;
	for (size_t i = 0; i < v->ninst; i++) {
		const struct deploy_instance_view *in = &v->inst[i];
		double cpu;

		if (strcmp(in->state, "STARTING") == 0 ||
		    strcmp(in->state, "READY") == 0)
			(*current)++;
		if (!in->ready)
			continue;
		(*ready)++;
		if (monitoring_latest_instance(w->m, "CpuUtilization", in->id,
					       CPU_WINDOW_MS, &cpu) == 0) {
			sum += cpu;
			n++;
		}
	}
	return n ? sum / n : 0;
}

/* The rule's parameters from the deployment's policy, and its lowest
 * count. */
static uint32_t params(const struct policy *p, struct rule_params *rp)
{
	uint32_t min = p->min_instances ? p->min_instances : 1;

	rule_params_default(RULE_MDSCALE, rp);
	rp->target = p->rule_target;
	rp->up_window_ms = p->rule_up_ms;
	rp->down_window_ms = p->rule_down_ms;
	rp->hold_ms = p->rule_hold_ms;
	rp->early = p->rule_early;
	return min > p->max_instances ? p->max_instances : min;
}

/* Whether the rule may move v: at zero the gateway and the idle rule
 * decide; while an update runs, it finishes first. */
static bool movable(const struct deploy_view *v)
{
	return v->count != 0 && strcmp(v->state, "ACTIVE") == 0 &&
	       v->wr_id[0] == '\0';
}

/* Moves v to want instances for the rule, early or at the second. */
static void move(struct autoscale_rule *w, const struct policy *p,
		 const struct deploy_view *v, const struct rule_obs *seen,
		 uint32_t ready, uint32_t want, bool early)
{
	struct fault f = { 0 };
	char why[340], wr[DEPLOY_ID_MAX];

	snprintf(why, sizeof(why), "mdscale rule%s: offered load %.2f "
		 "instances at a target of %.2f each, %.1f requests in flight "
		 "on %u ready, CPU %.0f%%: %u -> %u instances",
		 early ? " (early check: the second's shortfall certain "
			 "before its end)" : "",
		 seen->work, p->rule_target, seen->conc, ready, seen->cpu,
		 v->count, want);
	if (autoscale_rule_move(w->a, v, want, seen, why, wr, &f) != 0)
		log_warn("autoscale", "%s: the mdscale rule's update to %u "
			 "instances was refused: %s", v->id, want, f.message);
}

/* The rule's decision on v after the observation seen; a different count
 * starts an update when the deployment can take one. */
static void decide(struct autoscale_rule *w, struct track *t,
		   const struct policy *p, const struct deploy_view *v,
		   const struct rule_obs *seen, uint32_t current,
		   uint32_t ready)
{
	struct rule_params rp;
	uint32_t min = params(p, &rp);
	uint32_t want;

	/* Called every second, acting or not: the rule keeps its desires
	 * for the scale-down window. */
	want = rule_decide(&rp, t->rs, (int64_t)t->rs->nobs * rp.tick_ms,
			   current, ready, min, p->max_instances);
	if (want != v->count && movable(v))
		move(w, p, v, seen, ready, want, false);
}

/* The second that ended for deployment id: observe, decide. */
static void second(struct autoscale_rule *w, const char *id, uint64_t now)
{
	struct autoscale_state st;
	struct autoscale_rule_counts cur;
	struct deploy_view *v;
	struct track *t;
	struct rule_obs seen;
	struct fault f = { 0 };
	uint32_t current, ready;
	double cpu, conc, busy;

	if (autoscale_get(w->a, id, &st, &f) != 0 || !st.set_up ||
	    !policy_uses_rule(&st.policy))
		return;
	t = track_get(w, id, now);
	if (t == NULL)
		return;
	t->live = true;
	if (now == t->prev_t)
		return; /* new: its first second starts now */
	v = deploy_view_new(w->d, id, &f);
	if (v == NULL)
		return;
	counts_read(w, id, &cur);
	cpu = instances(w, v, &current, &ready);
	conc = t->nconc ? t->conc_sum / t->nconc : cur.inflight;
	busy = t->nconc ? t->busy_sum / t->nconc : 0;
	autoscale_rule_observation(&t->prev, &cur,
				   (double)(now - t->prev_t) / 1000.0, conc,
				   busy, cpu, ready, &t->service_s, &seen);
	rule_observe(t->rs, &seen);
	decide(w, t, &st.policy, v, &seen, current, ready);
	deploy_view_free(v);
	t->prev = cur;
	t->prev_t = now;
	t->conc_sum = 0;
	t->busy_sum = 0;
	t->nconc = 0;
	t->ready = ready;
	t->current = current;
	t->cpu = cpu;
}

/*
 * The work arrived at deployment t in the elapsed_s seconds since its
 * second began, in instance-seconds (not a rate), reckoned as the
 * second's observation is, into *seen; the service time is not learned
 * from it.
 */
static double so_far(struct autoscale_rule *w, const struct track *t,
		     double elapsed_s, double cpu, uint32_t ready,
		     struct rule_obs *seen)
{
	struct autoscale_rule_counts cur;
	double service_s = t->service_s;

	counts_read(w, t->id, &cur);
	autoscale_rule_observation(&t->prev, &cur, elapsed_s,
				   t->conc_sum / t->nconc,
				   t->busy_sum / t->nconc, cpu, ready,
				   &service_s, seen);
	return seen->work * elapsed_s;
}

/*
 * The early check of deployment t at a sample elapsed ms into its second:
 * the work arrived so far goes to rule_decide_early(), which moves up at
 * once when the current instances cannot serve it in the whole second.
 * Most ticks cost the gateway's counters alone: the deployment and its
 * policy are read only when that work, with the CPU of the last second,
 * passes the count then, or every ready instance was busy (a saturated
 * deployment's CPU may show more work than the gateway does).
 */
static void early(struct autoscale_rule *w, struct track *t, uint64_t now)
{
	struct autoscale_state st;
	struct deploy_view *v = NULL;
	struct rule_params rp;
	struct rule_obs seen;
	struct fault f = { 0 };
	double elapsed_s, work, cpu;
	uint32_t current, ready, min, want;
	int64_t elapsed = (int64_t)(now - t->prev_t);

	if (elapsed <= 0 || elapsed >= 1000 || t->nconc == 0)
		return;
	elapsed_s = (double)elapsed / 1000.0;
	work = so_far(w, t, elapsed_s, t->cpu, t->ready, &seen);
	if (!(work > (double)t->current) &&
	    t->busy_sum / t->nconc < (double)t->ready)
		return;
	if (autoscale_get(w->a, t->id, &st, &f) != 0 ||
	    !policy_uses_rule(&st.policy))
		return;
	v = deploy_view_new(w->d, t->id, &f);
	if (v == NULL || !movable(v))
		goto out;
	cpu = instances(w, v, &current, &ready);
	work = so_far(w, t, elapsed_s, cpu, ready, &seen);
	min = params(&st.policy, &rp);
	want = rule_decide_early(&rp, t->rs,
				 (int64_t)t->rs->nobs * rp.tick_ms + elapsed,
				 work, elapsed, current, min,
				 st.policy.max_instances);
	if (want > current && want > v->count) {
		move(w, &st.policy, v, &seen, ready, want, true);
		t->current = want;
	}
out:
	deploy_view_free(v);
}

static void each_second(struct autoscale_rule *w, uint64_t now)
{
	size_t kept = 0;

	w->nids = 0;
	deploy_each(w->d, NULL, collect, w);
	for (size_t i = 0; i < w->n; i++)
		w->v[i].live = false;
	for (size_t i = 0; i < w->nids; i++)
		second(w, w->ids[i], now);
	/*
	 * Deployments gone, or no longer under the rule, start over: the live
	 * tracks move down over them, each read once and in order.
	 */
	for (size_t i = 0; i < w->n; i++) {
		if (!w->v[i].live)
			free(w->v[i].rs);
		else
			w->v[kept++] = w->v[i];
	}
	w->n = kept;
}

static void tick(uv_timer_t *timer)
{
	struct autoscale_rule *w = timer->data;

	for (size_t i = 0; i < w->n; i++) {
		struct autoscale_rule_counts c;

		counts_read(w, w->v[i].id, &c);
		w->v[i].conc_sum += c.inflight;
		w->v[i].busy_sum += c.inflight < w->v[i].ready
					    ? c.inflight : w->v[i].ready;
		w->v[i].nconc++;
	}
	if (++w->ticks % SAMPLES_A_SECOND == 0) {
		each_second(w, uv_now(timer->loop));
		return;
	}
	for (size_t i = 0; i < w->n; i++)
		early(w, &w->v[i], uv_now(timer->loop));
}

struct autoscale_rule *autoscale_rule_open(uv_loop_t *loop,
					   struct autoscale *a,
					   struct deploy *d, struct gateway *gw,
					   struct monitoring *m)
{
	struct autoscale_rule *w = xcalloc(1, sizeof(*w));

	w->a = a;
	w->d = d;
	w->gw = gw;
	w->m = m;
	uv_timer_init(loop, &w->timer);
	w->timer.data = w;
	uv_timer_start(&w->timer, tick, SAMPLE_MS, SAMPLE_MS);
	return w;
}

static void closed(uv_handle_t *h)
{
	struct autoscale_rule *w = h->data;

	for (size_t i = 0; i < w->n; i++)
		free(w->v[i].rs);
	free(w->v);
	free(w->ids);
	free(w);
}

void autoscale_rule_close(struct autoscale_rule *w)
{
	if (w == NULL)
		return;
	uv_close((uv_handle_t *)&w->timer, closed);
}
