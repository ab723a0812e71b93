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

int sim_oracle_hindsight(const struct trace *t, const struct sim_model *m,
			 uint32_t min_instances, uint32_t nmax, double goal,
			 uint16_t **counts, size_t *n, struct sim_result *res)
{
	size_t ns = (size_t)(t->span_us / 1000000) + 1;
	size_t ahead = (size_t)((m->startup_ms + 999) / 1000);
	double lo = log(1e-6), hi = log(1.0);
	uint32_t *miss;
	uint16_t *need, *cur, *best = NULL;
	struct sim_result r, kept = { 0 };
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
		if (met && (best == NULL ||
			    r.instance_seconds < kept.instance_seconds)) {
			uint16_t *swap = best;

			best = cur;
			cur = swap ? swap : xcalloc(ns, sizeof(*cur));
			sim_result_clear(&kept);
			kept = r;
		} else
			sim_result_clear(&r);
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
	if (rc != 0 || best == NULL) {
		free(best);
		sim_result_clear(&kept);
		return rc != 0 ? rc : MDS_E_NOTFOUND;
	}
	*counts = best;
	*n = ns;
	*res = kept;
	return 0;
}
