/* autoscale_config.c - the shape ladder and the summary of the autoscale
 * function's configuration; see autoscale_config.h. */
#include <stdio.h>
#include <string.h>

#include "notify/autoscale_config.h"
#include "util/err.h"

void autoscale_config_ladder(const struct shape_ladder *all,
			     const struct autoscale_config *c,
			     struct shape_ladder *l)
{
	if (c->nshapes == 0) {
		*l = *all;
		return;
	}
	shape_ladder_init(l);
	for (size_t i = 0; i < c->nshapes && l->n < SHAPE_LADDER_MAX; i++) {
		const struct shape *sh = shape_find(all, c->shapes[i]);

		if (sh != NULL)
			l->v[l->n++] = *sh;
	}
}

int autoscale_config_check_shapes(const struct shape_ladder *all,
				  const struct autoscale_config *c,
				  char *diag, size_t diagsz)
{
	for (size_t i = 0; i < c->nshapes; i++) {
		if (shape_find(all, c->shapes[i]) == NULL) {
			mds_diag(diag, diagsz, "shapes: '%.80s' is not a shape "
				 "of the daemon (mdscale shape list)",
				 c->shapes[i]);
			return MDS_E_INVAL;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(c->shapes[k], c->shapes[i]) == 0) {
				mds_diag(diag, diagsz, "shapes: '%.80s' "
					 "twice", c->shapes[i]);
				return MDS_E_INVAL;
			}
	}
	return 0;
}

void autoscale_config_summary(const struct autoscale_config *c, bool own,
			      char *out, size_t outsz)
{
	const struct policy *p = &c->policy;
	int k;
	size_t n;

	k = snprintf(out, outsz,
		     "config (%s): minInstances=%u maxInstances=%u "
		     "cpuHigh=%g cpuLow=%g memHigh=%g memLow=%g "
		     "cooldownOutSeconds=%lld cooldownInSeconds=%lld "
		     "cooldownUpSeconds=%lld cooldownDownSeconds=%lld shapes=",
		     own ? "deployment" : "default", p->min_instances,
		     p->max_instances, p->cpu_high, p->cpu_low, p->mem_high,
		     p->mem_low, (long long)(p->cooldown_out_ms / 1000),
		     (long long)(p->cooldown_in_ms / 1000),
		     (long long)(p->cooldown_up_ms / 1000),
		     (long long)(p->cooldown_down_ms / 1000));
	n = k < 0 ? 0 : (size_t)k;
	for (size_t i = 0; i < c->nshapes && n < outsz; i++)
		n += (size_t)snprintf(out + n, outsz - n, "%s%s",
				      i ? "," : "", c->shapes[i]);
	if (c->nshapes == 0 && n < outsz)
		snprintf(out + n, outsz - n, "(all)");
}
