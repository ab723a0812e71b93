/*
 * oracle.c - the cheapest schedule in hindsight (sim_oracle() in sim.h).
 *
 * Per second s the work W(s) is the sum of the service times of the
 * requests that arrive in it; n(s) = max(min, ceil(W(s) / rho)) instances
 * carry it at utilization rho. Knowing the future, the oracle starts each
 * instance startup_ms before it is needed, so the count billed at second s
 * is the highest n over [s, s + startup]. The caller picks rho: the
 * highest that still meets the SLO when the schedule is simulated
 * (SIM_SCHEDULE).
 */
#include "sim/sim.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/xalloc.h"

/* The count at each second: the highest needed over the next start-up
 * delay (ahead seconds), so that an instance is ready when needed.
 * Returns the instance-seconds billed. */
static double start_ahead(const uint16_t *need, size_t ns, size_t ahead,
			  uint16_t *out)
{
	double billed = 0;

	for (size_t s = 0; s < ns; s++) {
		uint16_t best = need[s];

		for (size_t j = s + 1; j <= s + ahead && j < ns; j++)
			if (need[j] > best)
				best = need[j];
		out[s] = best;
		billed += best;
	}
	return billed;
}

int sim_oracle(const struct trace *t, const struct sim_model *m,
	       uint32_t min_instances, double rho, uint16_t **counts,
	       size_t *n, double *cost)
{
	size_t ns = (size_t)(t->span_us / 1000000) + 1;
	size_t ahead = (size_t)((m->startup_ms + 999) / 1000);
	double *work, billed = 0;
	uint16_t *need, *out;

	if (!(rho > 0 && rho <= 1) || min_instances < 1)
		return MDS_E_INVAL;
	work = xcalloc(ns, sizeof(*work));
	need = xcalloc(ns, sizeof(*need));
	out = xcalloc(ns, sizeof(*out));
	for (size_t i = 0; i < t->n; i++)
		work[t->reqs[i].t_us / 1000000] +=
			t->reqs[i].cost * m->service_ms / 1000.0;
	for (size_t s = 0; s < ns; s++) {
		double k = ceil(work[s] / rho - 1e-9);

		if (k < min_instances)
			k = min_instances;
		need[s] = (uint16_t)(k > SIM_MAX_INSTANCES ? SIM_MAX_INSTANCES
							   : k);
	}
	billed = start_ahead(need, ns, ahead, out);
	free(work);
	free(need);
	*counts = out;
	*n = ns;
	*cost = billed / 3600.0 * m->price_hour;
	return 0;
}

/* A SIM_SCHEDULE policy following counts, starting with counts[0]. */
static void schedule_policy(struct sim_policy *p, const uint16_t *counts,
			    size_t n)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "oracle");
	p->kind = SIM_SCHEDULE;
	p->min_instances = 1;
	p->max_instances = SIM_MAX_INSTANCES;
	p->schedule = counts;
	p->nschedule = n;
	p->initial = sim_initial(p, counts, n);
}

/* Per second, the misses of a run at a fixed k instances, k from 1 to
 * nmax: miss[(k - 1) * ns + s]. */
static int fixed_misses(const struct trace *t, const struct sim_model *m,
			uint32_t nmax, size_t ns, uint32_t *miss)
{
	for (uint32_t k = 1; k <= nmax; k++) {
		uint16_t c = (uint16_t)k;
		struct sim_policy p;
		struct sim_result r;
		char diag[128];
		int rc;

		schedule_policy(&p, &c, 1);
		rc = sim_run(t, m, &p, NULL, 0, &r, diag, sizeof(diag));
		if (rc != 0)
			return rc;
		for (size_t s = 0; s < ns && s < r.nseconds; s++)
			miss[(k - 1) * ns + s] = r.seconds[s].missed;
		sim_result_clear(&r);
	}
	return 0;
}

/* The schedule for lambda: per second the k minimizing k + lambda x its
 * misses at k, then the highest over the next start-up delay. */
static void lagrange_counts(const uint32_t *miss, uint32_t min,
			    uint32_t nmax, size_t ns, size_t ahead,
			    double lambda, uint16_t *need, uint16_t *out)
{
	for (size_t s = 0; s < ns; s++) {
		uint32_t best = min;
		double v = INFINITY;

		for (uint32_t k = min; k <= nmax; k++) {
			double x = k + lambda * miss[(k - 1) * ns + s];

			if (x < v) {
				v = x;
				best = k;
			}
		}
		need[s] = (uint16_t)best;
	}
	start_ahead(need, ns, ahead, out);
}

/* Runs counts; *met says whether it meets goal. */
static int try_counts(const struct trace *t, const struct sim_model *m,
		      const uint16_t *counts, size_t ns, double goal,
		      struct sim_result *r, bool *met)
{
	struct sim_policy p;
	char diag[128];
	int rc;

	schedule_policy(&p, counts, ns);
	rc = sim_run(t, m, &p, NULL, 0, r, diag, sizeof(diag));
	if (rc == 0)
		*met = (double)r->within_slo >= goal * (double)r->requests;
	return rc;
}

/* The cheapest schedule run so far that met the goal, and its run. */
struct pick {
	uint16_t *best;
	struct sim_result kept;
};

/* Keeps *cur and r when r met the goal for less than the schedule kept
 * (*cur then gets the array it replaces, or a new one); else clears r. */
static void pick_keep(struct pick *k, uint16_t **cur, size_t ns,
		      struct sim_result *r, bool met)
{
	uint16_t *swap;

	if (!met || (k->best != NULL &&
		     r->instance_seconds >= k->kept.instance_seconds)) {
		sim_result_clear(r);
		return;
	}
	swap = k->best;
	k->best = *cur;
	*cur = swap ? swap : xcalloc(ns, sizeof(**cur));
	sim_result_clear(&k->kept);
	k->kept = *r;
}

/* The end of a search that ended with rc: the schedule kept, as the
 * oracles return it, or the error (MDS_E_NOTFOUND: none met the goal). */
static int pick_end(struct pick *k, int rc, size_t ns, uint16_t **counts,
		    size_t *n, struct sim_result *res)
{
	if (rc != 0 || k->best == NULL) {
		free(k->best);
		sim_result_clear(&k->kept);
		return rc != 0 ? rc : MDS_E_NOTFOUND;
	}
	*counts = k->best;
	*n = ns;
	*res = k->kept;
	return 0;
}

int sim_oracle_hindsight(const struct trace *t, const struct sim_model *m,
			 uint32_t min_instances, uint32_t nmax, double goal,
			 uint16_t **counts, size_t *n, struct sim_result *res)
{
	size_t ns = (size_t)(t->span_us / 1000000) + 1;
	size_t ahead = (size_t)((m->startup_ms + 999) / 1000);
	double lo = log(1e-6), hi = log(1.0);
	uint32_t *miss;
	uint16_t *need, *cur;
	struct pick k = { 0 };
	struct sim_result r;
	bool met;
	int rc;

	if (min_instances < 1 || nmax < min_instances ||
	    nmax > SIM_MAX_INSTANCES || !(goal > 0 && goal <= 1))
		return MDS_E_INVAL;
	miss = xcalloc((size_t)nmax * ns, sizeof(*miss));
	need = xcalloc(ns, sizeof(*need));
	cur = xcalloc(ns, sizeof(*cur));
	rc = fixed_misses(t, m, nmax, ns, miss);
	/* Misses weigh more as lambda grows: bisect its logarithm for the
	 * cheapest schedule that meets the goal. */
	for (int i = 0; rc == 0 && i < 14; i++) {
		double mid = i == 0 ? hi : (lo + hi) / 2;

		lagrange_counts(miss, min_instances, nmax, ns, ahead, exp(mid),
				need, cur);
		rc = try_counts(t, m, cur, ns, goal, &r, &met);
		if (rc != 0)
			break;
		pick_keep(&k, &cur, ns, &r, met);
		if (i == 0 && !met)
			break;
		if (met)
			hi = mid;
		else
			lo = mid;
	}
	free(miss);
	free(need);
	free(cur);
	return pick_end(&k, rc, ns, counts, n, res);
}

/*
 * The steady oracle: the cheapest schedule in hindsight with no move
 * reversed within the flap window. A dynamic programme over the ready
 * count k, the last move's direction d (0 none, 1 up, 2 down) and the
 * seconds t since it (saturating at tmax - 1), priced k + lambda x
 * miss(k, s) a second and the start-up delay for each instance added (it
 * is billed from its start).
 */
struct steady {
	uint32_t *miss;       /* miss[(k - 1) * ns + s] */
	size_t ns, ahead;
	uint32_t nmax, k0, tmax;
	uint16_t *from;       /* the previous state of each (second, state) */
	double value;         /* the programme's optimum */
};

static size_t steady_state(const struct steady *c, uint32_t k, uint32_t d,
			   uint32_t t)
{
	return (((size_t)k - 1) * 3 + d) * c->tmax + t;
}

/* One second's step from every state in cur to nxt: a move down at least
 * ud seconds after a move up, a move up at least du after a move down. */
static void steady_step(struct steady *c, size_t s, double lambda,
			uint32_t ud, uint32_t du, const double *cur,
			double *nxt)
{
	size_t nst = (size_t)c->nmax * 3 * c->tmax;

	for (size_t i = 0; i < nst; i++)
		nxt[i] = INFINITY;
	for (size_t i = 0; i < nst; i++) {
		uint32_t k = (uint32_t)(i / (3 * c->tmax)) + 1;
		uint32_t d = (uint32_t)(i / c->tmax % 3);
		uint32_t t = (uint32_t)(i % c->tmax);

		if (!isfinite(cur[i]))
			continue;
		for (uint32_t k2 = 1; k2 <= c->nmax; k2++) {
			double v = cur[i] + k2 +
				   lambda * c->miss[(k2 - 1) * c->ns + s];
			uint32_t d2 = d, t2 = t + 1 < c->tmax ? t + 1 : t;
			size_t j;

			if (k2 != k) {
				d2 = k2 > k ? 1 : 2;
				/* t: seconds since the move, less one */
				if (d != 0 && d2 != d &&
				    t + 1 < (d2 == 2 ? ud : du))
					continue;
				t2 = 0;
				if (d2 == 1)
					v += (double)(k2 - k) *
					     (double)c->ahead;
			}
			j = steady_state(c, k2, d2, t2);
			if (v < nxt[j]) {
				nxt[j] = v;
				c->from[s * nst + j] = (uint16_t)i;
			}
		}
	}
}

/* The cheapest ready counts for lambda (c->value: their price). */
static void steady_programme(struct steady *c, double lambda, uint32_t ud,
			       uint32_t du, uint16_t *ready)
{
	size_t nst = (size_t)c->nmax * 3 * c->tmax, bj = 0;
	double *cur = xmalloc(nst * sizeof(*cur));
	double *nxt = xmalloc(nst * sizeof(*nxt));

	for (size_t i = 0; i < nst; i++)
		cur[i] = INFINITY;
	cur[steady_state(c, c->k0, 0, c->tmax - 1)] =
		c->k0 + lambda * c->miss[(c->k0 - 1) * c->ns];
	for (size_t s = 1; s < c->ns; s++) {
		double *swap = cur;

		steady_step(c, s, lambda, ud, du, cur, nxt);
		cur = nxt;
		nxt = swap;
	}
	c->value = INFINITY;
	for (size_t i = 0; i < nst; i++)
		if (cur[i] < c->value) {
			c->value = cur[i];
			bj = i;
		}
	for (size_t s = c->ns; s-- > 0;) {
		ready[s] = (uint16_t)(bj / (3 * c->tmax) + 1);
		if (s > 0)
			bj = c->from[s * nst + bj];
	}
	free(cur);
	free(nxt);
}

int sim_oracle_steady(const struct trace *t, const struct sim_model *m,
		      uint32_t k0, uint32_t nmax, double goal, uint16_t **counts,
		      size_t *n, struct sim_result *res, double *bound)
{
	struct steady c = { 0 };
	/* A move up is billed (started) the start-up delay before its
	 * instances are ready, a move down when it is made: in ready time a
	 * move down comes flap + 1 - ahead seconds after a move up, and a
	 * move up flap + 1 + ahead after a move down, to be more than the
	 * flap window apart as billed. */
	uint32_t flap = (uint32_t)(m->flap_window_ms / 1000), ud, du;
	double lo = log(1e-6), hi = log(10.0);
	uint16_t *ready, *cur;
	struct pick k = { 0 };
	struct sim_result r;
	bool met;
	int rc;

	if (k0 < 1 || nmax < k0 || nmax > SIM_MAX_INSTANCES ||
	    !(goal > 0 && goal <= 1))
		return MDS_E_INVAL;
	c.ns = (size_t)(t->span_us / 1000000) + 1;
	c.ahead = (size_t)((m->startup_ms + 999) / 1000);
	c.nmax = nmax;
	c.k0 = k0;
	ud = flap + 1 > c.ahead ? flap + 1 - (uint32_t)c.ahead : 0;
	du = flap == 0 ? 0 : flap + 1 + (uint32_t)c.ahead;
	c.tmax = (du > ud ? du : ud) + 1;
	c.miss = xcalloc((size_t)nmax * c.ns, sizeof(*c.miss));
	c.from = xcalloc(c.ns * (size_t)nmax * 3 * c.tmax, sizeof(*c.from));
	ready = xcalloc(c.ns, sizeof(*ready));
	cur = xcalloc(c.ns, sizeof(*cur));
	*bound = -INFINITY;
	rc = fixed_misses(t, m, nmax, c.ns, c.miss);
	for (int i = 0; rc == 0 && i < 20; i++) {
		double mid = i == 0 ? hi : (lo + hi) / 2, lambda = exp(mid);

		steady_programme(&c, lambda, ud, du, ready);
		(void)start_ahead(ready, c.ns, c.ahead, cur);
		rc = try_counts(t, m, cur, c.ns, goal, &r, &met);
		if (rc != 0)
			break;
		/* Lagrangian duality: no schedule without such a reversal
		 * whose estimated misses are within the goal's budget costs
		 * less. */
		if (c.value - lambda * (1 - goal) * (double)r.requests > *bound)
			*bound = c.value - lambda * (1 - goal) *
						   (double)r.requests;
		pick_keep(&k, &cur, c.ns, &r, met);
		if (met)
			hi = mid;
		else
			lo = mid;
	}
	free(c.miss);
	free(c.from);
	free(ready);
	free(cur);
	return pick_end(&k, rc, c.ns, counts, n, res);
}
