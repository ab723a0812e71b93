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
#include <stdlib.h>

#include "util/err.h"
#include "util/xalloc.h"

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
	for (size_t s = 0; s < ns; s++) {
		uint16_t best = need[s];

		for (size_t j = s + 1; j <= s + ahead && j < ns; j++)
			if (need[j] > best)
				best = need[j];
		out[s] = best;
		billed += best;
	}
	free(work);
	free(need);
	*counts = out;
	*n = ns;
	*cost = billed / 3600.0 * m->price_hour;
	return 0;
}
