/* planner.c - zero-downtime update plans; see planner.h. */
#include <stdbool.h>
#include <string.h>

#include "core/planner.h"
#include "util/err.h"

static void add(struct plan *p, enum plan_step_kind kind, int target)
{
	p->steps[p->n].kind = kind;
	p->steps[p->n].target = target;
	p->n++;
}

static bool live(const struct plan_instance *in)
{
	return in->state == PLAN_STARTING || in->state == PLAN_READY;
}

/* Whether in may stay as one of the want_shape instances. */
static bool keepable(const struct plan_instance *in, const char *want_shape)
{
	return live(in) && !in->stale && want_shape != NULL &&
	       strcmp(in->shape, want_shape) == 0;
}

/*
 * Orders candidates for removal: not-ready before ready, then newest first.
 * Returns true if a should go before b.
 */
static bool remove_before(const struct plan_instance *a,
			  const struct plan_instance *b)
{
	if (a->state != b->state)
		return a->state == PLAN_STARTING;
	return a->started_ms > b->started_ms;
}

int planner_plan(const struct plan_instance *cur, size_t ncur, uint32_t want,
		 const char *want_shape, struct plan *out)
{
	bool keep[PLAN_MAX_INSTANCES], old[PLAN_MAX_INSTANCES];
	size_t nkeep = 0, nold = 0, nlive_same = 0;

	memset(out, 0, sizeof(*out));
	if (ncur > PLAN_MAX_INSTANCES || want > PLAN_MAX_INSTANCES)
		return MDS_E_LIMIT;

	/* Keep live instances of the wanted shape, the best ones first, up to
	 * want; every other live instance is old and will go. */
	for (size_t i = 0; i < ncur; i++) {
		keep[i] = false;
		old[i] = false;
		if (keepable(&cur[i], want_shape))
			nlive_same++;
	}
	while (nkeep < want && nkeep < nlive_same) {
		int best = -1;

		for (size_t i = 0; i < ncur; i++) {
			if (keep[i] || !keepable(&cur[i], want_shape))
				continue;
			/* Keep the opposite of what we would remove first. */
			if (best < 0 || remove_before(&cur[best], &cur[i]))
				best = (int)i;
		}
		if (best < 0) /* nlive_same counted them: cannot happen */
			break;
		keep[best] = true;
		nkeep++;
	}
	for (size_t i = 0; i < ncur; i++) {
		if (live(&cur[i]) && !keep[i]) {
			old[i] = true;
			nold++;
		}
	}

	out->new_instances = want - (uint32_t)nkeep;
	/* Another shape or spec in service: the new set is held until all are ready,
	 * then replaces the old set at once. */
	out->held = out->new_instances > 0 && nold > 0;

	for (uint32_t k = 0; k < out->new_instances; k++)
		add(out, PLAN_START_INSTANCE, (int)k);
	if (out->new_instances > 0)
		add(out, PLAN_WAIT_READY, -1);
	if (out->held)
		add(out, PLAN_ROUTE, -1);

	/* Drain and stop the old ones, in removal order, then any instance
	 * an earlier update left draining. */
	for (size_t done = 0; done < nold; done++) {
		int next = -1;

		for (size_t i = 0; i < ncur; i++) {
			if (!old[i])
				continue;
			if (next < 0 || remove_before(&cur[i], &cur[next]))
				next = (int)i;
		}
		if (next < 0) /* nold counted them: cannot happen */
			break;
		old[next] = false;
		add(out, PLAN_DRAIN_INSTANCE, next);
	}
	for (size_t i = 0; i < ncur; i++)
		if (cur[i].state == PLAN_DRAINING)
			add(out, PLAN_DRAIN_INSTANCE, (int)i);
	for (size_t s = 0, n = out->n; s < n; s++)
		if (out->steps[s].kind == PLAN_DRAIN_INSTANCE)
			add(out, PLAN_STOP_INSTANCE, out->steps[s].target);
	return 0;
}

const char *planner_step_name(enum plan_step_kind kind)
{
	switch (kind) {
	case PLAN_START_INSTANCE:
		return "START_INSTANCE";
	case PLAN_WAIT_READY:
		return "WAIT_READY";
	case PLAN_ROUTE:
		return "ROUTE";
	case PLAN_DRAIN_INSTANCE:
		return "DRAIN_INSTANCE";
	case PLAN_STOP_INSTANCE:
		return "STOP_INSTANCE";
	}
	return "UNKNOWN";
}
