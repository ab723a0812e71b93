/* rules.c - the decision rules of rules.h. */
#include "core/rules.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void rule_params_default(enum rule_kind kind, struct rule_params *p)
{
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	switch (kind) {
	case RULE_HPA:
		p->tick_ms = 15000;
		p->target = 80;
		p->tolerance = 0.1;
		p->up_window_ms = 15000;
		p->down_window_ms = 300000;
		p->max_up_abs = 4;
		p->max_up_ratio = 1.0;
		break;
	case RULE_KPA:
		/* containerConcurrency 1 (one request at a time) at the
		 * default target utilization of 70%. */
		p->tick_ms = 2000;
		p->target = 0.7;
		p->up_window_ms = 6000;
		p->down_window_ms = 60000;
		p->panic_threshold = 2.0;
		break;
	case RULE_MDSCALE:
		p->tick_ms = 1000;
		p->target = 0.9;
		p->tolerance = 0.3;
		p->up_window_ms = 2000;
		p->down_window_ms = 180000;
		p->latency_ratio = 20;
		p->spread = 1.0;
		p->quantile = 0.98;
		p->hold_ms = 120000;
		p->burst_hold_ms = 400000;
		p->lead_ms = 2000;
		p->damp_max = 4;
		p->damp_half_life_ms = 900000;
		p->early = true;
		break;
	}
}

void rule_state_init(struct rule_state *s)
{
	memset(s, 0, sizeof(*s));
}

void rule_observe(struct rule_state *s, const struct rule_obs *o)
{
	s->obs[s->nobs % RULE_HISTORY] = *o;
	s->want[s->nobs % RULE_HISTORY] = 0;
	s->nobs++;
}

/* Mean of the last window_ms of observations (at least one second). */
static struct rule_obs mean_over(const struct rule_state *s,
				 int64_t window_ms)
{
	uint64_t k = (uint64_t)((window_ms + 999) / 1000);
	struct rule_obs m = { 0, 0, 0 };

	if (k < 1)
		k = 1;
	if (k > RULE_HISTORY)
		k = RULE_HISTORY;
	if (k > s->nobs)
		k = s->nobs;
	for (uint64_t i = 0; i < k; i++) {
		const struct rule_obs *o =
			&s->obs[(s->nobs - 1 - i) % RULE_HISTORY];

		m.cpu += o->cpu;
		m.conc += o->conc;
		m.work += o->work;
	}
	if (k > 0) {
		m.cpu /= (double)k;
		m.conc /= (double)k;
		m.work /= (double)k;
	}
	return m;
}

/* Records w as this second's desire and returns the highest desire of the
 * last window_ms (the scale-down stabilization). */
static uint32_t stabilized(struct rule_state *s, uint32_t w,
			   int64_t window_ms)
{
	uint64_t k = (uint64_t)(window_ms / 1000);
	uint32_t best = w;

	if (s->nobs == 0)
		return w;
	s->want[(s->nobs - 1) % RULE_HISTORY] = w;
	if (k > RULE_HISTORY)
		k = RULE_HISTORY;
	if (k > s->nobs)
		k = s->nobs;
	for (uint64_t i = 0; i < k; i++) {
		uint32_t v = s->want[(s->nobs - 1 - i) % RULE_HISTORY];

		if (v > best)
			best = v;
	}
	return best;
}

static uint32_t clamp(double v, uint32_t min, uint32_t max)
{
	if (!(v > min))
		return min;
	if (v > max)
		return max;
	return (uint32_t)v;
}

static uint32_t hpa(const struct rule_params *p, struct rule_state *s,
		    uint32_t current, uint32_t min, uint32_t max)
{
	struct rule_obs m = mean_over(s, p->up_window_ms);
	double ratio = m.cpu / p->target;
	uint32_t desired = current;

	if (fabs(ratio - 1.0) > p->tolerance)
		desired = clamp(ceil((double)current * ratio), min, max);
	/* Down only to the highest recommendation of the window. */
	uint32_t stab = stabilized(s, desired, p->down_window_ms);

	if (desired < current)
		desired = stab < current ? stab : current;
	double limit = fmax((double)current + p->max_up_abs,
			    (double)current * (1.0 + p->max_up_ratio));
	if (desired > limit)
		desired = (uint32_t)limit;
	return clamp(desired, min, max);
}

static uint32_t kpa(const struct rule_params *p, struct rule_state *s,
		    int64_t now_ms, uint32_t ready, uint32_t min, uint32_t max)
{
	struct rule_obs st = mean_over(s, p->down_window_ms);
	struct rule_obs pa = mean_over(s, p->up_window_ms);
	double pods = ready ? (double)ready : 1.0;
	double dspc = ceil(st.conc / p->target - 1e-9);
	double dppc = ceil(pa.conc / p->target - 1e-9);
	/* Knative's rate limits: max-scale-down-rate 2 (to no fewer than
	 * half the ready pods a tick), max-scale-up-rate 1000. */
	double lo = floor(pods / 2), hi = ceil(1000 * pods);
	uint32_t want_st = clamp(fmin(fmax(dspc, lo), hi), min, max);
	uint32_t want_pa = clamp(fmin(fmax(dppc, lo), hi), min, max);

	if (dppc / pods >= p->panic_threshold)
		s->panic_until_ms = now_ms + p->down_window_ms;
	else if (s->panic_until_ms != 0 && now_ms > s->panic_until_ms) {
		s->panic_until_ms = 0;
		s->panic_max = 0;
	}
	if (s->panic_until_ms == 0)
		return want_st;
	/* In panic: the larger desire, never less than earlier in it. */
	if (want_pa > want_st)
		want_st = want_pa;
	if (want_st > s->panic_max)
		s->panic_max = want_st;
	return s->panic_max;
}

/* Mean requests in flight over the window_ms before the last window_ms. */
static double conc_before(const struct rule_state *s, int64_t window_ms)
{
	uint64_t k = (uint64_t)((window_ms + 999) / 1000);
	double sum = 0;

	if (k < 1)
		k = 1;
	if (2 * k > RULE_HISTORY || 2 * k > s->nobs)
		return 0;
	for (uint64_t i = k; i < 2 * k; i++)
		sum += s->obs[(s->nobs - 1 - i) % RULE_HISTORY].conc;
	return sum / (double)k;
}

/*
 * Mean, spread and least-squares slope (per second) of the offered load
 * over the last window_ms. The spread is the standard deviation as the
 * successive differences estimate it (von Neumann: sqrt(mean((w[i] -
 * w[i-1])^2) / 2)), so that a shift of the level, up or down, does not
 * pass for noise.
 */
static void work_stats(const struct rule_state *s, int64_t window_ms,
		       double *mean, double *sd, double *slope)
{
	uint64_t k = (uint64_t)((window_ms + 999) / 1000);
	double sw = 0, sdd = 0, sx = 0, sxx = 0, sxw = 0, prev = 0;

	if (k > RULE_HISTORY)
		k = RULE_HISTORY;
	if (k > s->nobs)
		k = s->nobs;
	*mean = *sd = *slope = 0;
	if (k == 0)
		return;
	for (uint64_t i = 0; i < k; i++) {
		double w = s->obs[(s->nobs - k + i) % RULE_HISTORY].work;
		double x = (double)i;

		if (i > 0)
			sdd += (w - prev) * (w - prev);
		prev = w;
		sw += w;
		sx += x;
		sxx += x * x;
		sxw += x * w;
	}
	*mean = sw / (double)k;
	if (k >= 2)
		*sd = sqrt(sdd / (double)(k - 1) / 2);
	if (k >= 3)
		*slope = ((double)k * sxw - sx * sw) /
			 ((double)k * sxx - sx * sx);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The q-quantile of the offered load over the last window_ms (the
 * nearest rank). */
static double work_quantile(const struct rule_state *s, int64_t window_ms,
			    double q)
{
	double v[RULE_HISTORY];
	uint64_t k = (uint64_t)((window_ms + 999) / 1000);
	size_t r;

	if (k > RULE_HISTORY)
		k = RULE_HISTORY;
	if (k > s->nobs)
		k = s->nobs;
	if (k == 0)
		return 0;
	for (uint64_t i = 0; i < k; i++)
		v[i] = s->obs[(s->nobs - k + i) % RULE_HISTORY].work;
	qsort(v, (size_t)k, sizeof(v[0]), cmp_double);
	r = (size_t)ceil(q * (double)k - 1e-9);
	return v[r > 0 ? r - 1 : 0];
}

/* The level mdscale provisions for: mean plus spread standard deviations
 * of the offered load over window_ms, or its quantile, with a rising trend
 * carried lead_ms ahead. */
static double md_level(const struct rule_params *p,
		       const struct rule_state *s, int64_t window_ms)
{
	double mean, sd, slope, base;

	work_stats(s, window_ms, &mean, &sd, &slope);
	base = p->quantile > 0
		       ? work_quantile(s, window_ms, p->quantile)
		       : mean + p->spread * sd;
	return base + (slope > 0 ? slope * (double)p->lead_ms / 1000.0 : 0);
}

/*
 * A burst: requests spend latency_ratio times their service time in
 * flight (in flight / offered load over the short window m, by Little's
 * law). Returns the instances it wants: the short window's load at
 * target, and one more than current when the same burst's queue is still
 * growing once what its move up started is ready (lead_ms). Its move up
 * is one since its first second began: an early move inside that second
 * (rule_decide_early()) is the burst's too. 0: no burst.
 */
static uint32_t md_burst(const struct rule_params *p, struct rule_state *s,
			 const struct rule_obs *m, int64_t now_ms,
			 uint32_t current, uint32_t min, uint32_t max)
{
	uint32_t want;

	if (!(p->latency_ratio > 0 && m->work > 0 &&
	      m->conc > p->latency_ratio * m->work))
		return 0;
	if (s->last_burst_ms != now_ms - p->tick_ms || s->burst_start_ms == 0)
		s->burst_start_ms = now_ms;
	s->last_burst_ms = now_ms;
	want = clamp(ceil(m->work / p->target - 1e-9), min, max);
	if (want <= current && s->moved_up &&
	    s->last_up_ms > s->burst_start_ms - p->tick_ms &&
	    now_ms - s->last_up_ms >= p->lead_ms &&
	    m->conc > conc_before(s, p->up_window_ms))
		want = clamp((double)current + 1, min, max);
	return want;
}

/*
 * Flap damping: the scale-down window now. A move up within hold_ms of a
 * move down (the load came back: a reversal) doubles it, up to damp_max
 * times the configured one and the history kept; damp_half_life_ms
 * without one halves it again.
 */
static int64_t md_window(const struct rule_params *p, struct rule_state *s,
			 int64_t now_ms)
{
	int64_t w;

	if (s->damp < 1)
		s->damp = 1;
	w = p->down_window_ms * s->damp;
	if (w > RULE_HISTORY * 1000LL)
		w = RULE_HISTORY * 1000LL;
	if (s->damp > 1 && now_ms - s->damp_ms > p->damp_half_life_ms) {
		s->damp /= 2;
		s->damp_ms = now_ms;
	}
	return w;
}

static void md_reversal(const struct rule_params *p, struct rule_state *s,
			int64_t now_ms)
{
	if (!s->moved_down || now_ms - s->last_down_ms > p->hold_ms ||
	    p->damp_max < 2)
		return;
	if (s->damp * 2 <= p->damp_max)
		s->damp *= 2;
	s->damp_ms = now_ms;
	s->moved_down = false; /* one reversal a move down */
}

/* The bookkeeping of a move up at now_ms; burst: the count it adds above
 * the level's and the shortfall's is a burst's. */
static void md_up(const struct rule_params *p, struct rule_state *s,
		  int64_t now_ms, bool burst)
{
	md_reversal(p, s, now_ms);
	s->last_up_ms = now_ms;
	s->moved_up = true;
	s->burst_up = burst;
}

static uint32_t mdscale(const struct rule_params *p, struct rule_state *s,
			int64_t now_ms, uint32_t current, uint32_t min,
			uint32_t max)
{
	struct rule_obs m = mean_over(s, p->up_window_ms);
	double level = md_level(p, s, md_window(p, s, now_ms));
	/* Up: the level at target, or a shortfall over the short window at
	 * full utilization. A queue alone is no reason: its requests are
	 * milliseconds of work each, drained before a new instance is
	 * ready; the load that built it shows in the offered load. But a
	 * burst (md_burst()) is. */
	uint32_t base = clamp(fmax(ceil(level / p->target - 1e-9),
				   ceil(m.work - 1e-9)), min, max);
	uint32_t burst = md_burst(p, s, &m, now_ms, current, min, max);
	uint32_t want = burst > base ? burst : base;
	/* Down: to the level at the stricter target, by at most half a
	 * tick, and never within hold_ms of a move up, its end included (a
	 * move back exactly hold_ms after is still within a flap window of
	 * that length). */
	uint32_t down = clamp(ceil(level / (p->target * (1 - p->tolerance)) -
				   1e-9), min, max);

	if (want > current) {
		md_up(p, s, now_ms, want > base);
		return want;
	}
	if (base >= current)
		s->burst_up = false;
	if (s->moved_up && now_ms - s->last_up_ms <= p->hold_ms)
		return clamp(current, min, max);
	/* What a burst added goes burst_hold_ms after the last burst, back
	 * to the level at target: bursts cluster, but not for long. */
	if (s->burst_up && p->burst_hold_ms > 0 &&
	    now_ms - s->last_burst_ms >= p->burst_hold_ms && base < down)
		down = base;
	if (down >= current || s->nobs * 1000 < (uint64_t)p->down_window_ms)
		return clamp(current, min, max);
	if (down < current - current / 2)
		down = current - current / 2;
	if (down <= base)
		s->burst_up = false;
	down = clamp(down, min, max);
	if (down < current) {
		s->last_down_ms = now_ms;
		s->moved_down = true;
	}
	return down;
}

uint32_t rule_decide(const struct rule_params *p, struct rule_state *s,
		     int64_t now_ms, uint32_t current, uint32_t ready,
		     uint32_t min, uint32_t max)
{
	switch (p->kind) {
	case RULE_HPA:
		return hpa(p, s, current, min, max);
	case RULE_KPA:
		return kpa(p, s, now_ms, ready, min, max);
	case RULE_MDSCALE:
		return mdscale(p, s, now_ms, current, min, max);
	}
	return current;
}

uint32_t rule_decide_early(const struct rule_params *p, struct rule_state *s,
			   int64_t now_ms, double work_so_far,
			   int64_t elapsed_ms, uint32_t current, uint32_t min,
			   uint32_t max)
{
	double level;
	uint32_t want;

	if (p->kind != RULE_MDSCALE || !p->early || elapsed_ms <= 0 ||
	    elapsed_ms >= 1000 || !(work_so_far > (double)current))
		return current;
	/*
	 * The arrived work alone, not a rate extrapolated from elapsed_ms:
	 * a tenth of a second holds a handful of requests, and a burst of
	 * them would pass for a second's worth. What has arrived is certain
	 * and never more than the whole second's work. The second's own
	 * decision then sees the higher count: it moves again only for a
	 * shortfall larger than this one.
	 */
	level = md_level(p, s, md_window(p, s, now_ms));
	want = clamp(fmax(ceil(level / p->target - 1e-9),
			  ceil(work_so_far / p->target - 1e-9)), min, max);
	if (want <= current)
		return current;
	/* A shortfall's move, not a burst's: what it adds waits for the
	 * level like the end-of-second shortfall's. */
	md_up(p, s, now_ms, false);
	return want;
}
