/* rules.c - the decision rules of rules.h. */
#include "core/rules.h"

#include <math.h>
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
		p->target = 0.6;
		p->up_window_ms = 2000;
		p->down_window_ms = 60000;
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
		    int64_t now_ms, uint32_t current, uint32_t ready,
		    uint32_t min, uint32_t max)
{
	struct rule_obs st = mean_over(s, p->down_window_ms);
	struct rule_obs pa = mean_over(s, p->up_window_ms);
	uint32_t want_st = clamp(ceil(st.conc / p->target), min, max);
	uint32_t want_pa = clamp(ceil(pa.conc / p->target), min, max);

	if ((double)want_pa >= p->panic_threshold * (double)(ready ? ready : 1)) {
		if (s->panic_until_ms == 0)
			s->panic_max = current;
		s->panic_until_ms = now_ms + p->down_window_ms;
	}
	if (s->panic_until_ms != 0 && now_ms >= s->panic_until_ms) {
		s->panic_until_ms = 0;
		s->panic_max = 0;
	}
	if (s->panic_until_ms != 0) {
		/* In panic: the panic window's desire, never down. */
		if (want_pa > s->panic_max)
			s->panic_max = want_pa;
		return s->panic_max;
	}
	return want_st;
}

static uint32_t mdscale(const struct rule_params *p, struct rule_state *s,
			uint32_t current, uint32_t ready, uint32_t min,
			uint32_t max)
{
	struct rule_obs m = mean_over(s, p->up_window_ms);
	double backlog = m.conc > (double)ready ? m.conc - (double)ready : 0;
	uint32_t want = clamp(ceil(m.work / p->target - 1e-9) +
				      ceil(backlog / 2),
			      min, max);
	uint32_t keep = stabilized(s, want, p->down_window_ms);

	if (want >= current)
		return want;
	/* Down: to the highest recent desire, by at most half at a time. */
	if (keep >= current)
		return current;
	if (keep < current - current / 2)
		keep = current - current / 2;
	return clamp(keep, min, max);
}

uint32_t rule_decide(const struct rule_params *p, struct rule_state *s,
		     int64_t now_ms, uint32_t current, uint32_t ready,
		     uint32_t min, uint32_t max)
{
	switch (p->kind) {
	case RULE_HPA:
		return hpa(p, s, current, min, max);
	case RULE_KPA:
		return kpa(p, s, now_ms, current, ready, min, max);
	case RULE_MDSCALE:
		return mdscale(p, s, current, ready, min, max);
	}
	return current;
}
