/*
 * planner.h - turns "the instances now" and "what is wanted" into the
 * ordered steps of a zero-downtime update.
 *
 * The plan keeps the serving capacity up throughout:
 *   - more instances of the same shape: start them; each serves once ready;
 *   - fewer: take the extra ones out of routing, let their in-flight
 *     requests finish, then stop them (not-ready ones go first, then the
 *     newest);
 *   - another shape, or instances that run an older spec (command,
 *     environment, health path: marked stale): start the whole new set
 *     "held" (ready but not yet routed), wait until every one is ready,
 *     switch routing to them in one step, then drain and stop the old
 *     set.
 * Running the same plan again after a crash is safe: every step is
 * idempotent, and planning again from what is observed resumes the work.
 * Pure: no I/O, no clock.
 */
#ifndef MDS_PLANNER_H
#define MDS_PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLAN_MAX_INSTANCES 256
#define PLAN_MAX_STEPS (3 * PLAN_MAX_INSTANCES + 4)

enum plan_inst_state {
	PLAN_STARTING,
	PLAN_READY,
	PLAN_DRAINING,
	PLAN_STOPPED,
	PLAN_FAILED,
};

/* An instance as the planner sees it. */
struct plan_instance {
	const char *shape;
	enum plan_inst_state state;
	uint64_t started_ms; /* for choosing the newest to remove first */
	bool stale;          /* runs an older spec: replaced, never kept */
};

enum plan_step_kind {
	PLAN_START_INSTANCE,
	PLAN_WAIT_READY,
	PLAN_ROUTE,
	PLAN_DRAIN_INSTANCE,
	PLAN_STOP_INSTANCE,
};

struct plan_step {
	enum plan_step_kind kind;
	/* START: the new instance's slot, 0..new_instances-1.
	 * DRAIN, STOP: the index of the existing instance.
	 * WAIT_READY, ROUTE: -1. */
	int target;
};

struct plan {
	struct plan_step steps[PLAN_MAX_STEPS];
	size_t n;
	uint32_t new_instances; /* how many START steps */
	int held;               /* new instances wait for the ROUTE step */
};

/*
 * Plans the move from the ncur instances in cur to want instances of
 * want_shape (want 0: stop everything, as for a delete); stale instances
 * are replaced like those of another shape. Instances that are
 * STOPPED or FAILED are records only and are left alone. Returns 0, or
 * MDS_E_LIMIT when more than PLAN_MAX_INSTANCES are involved. The caller
 * owns cur and out; nothing is kept.
 */
int planner_plan(const struct plan_instance *cur, size_t ncur, uint32_t want,
		 const char *want_shape, struct plan *out);

/* Returns "START_INSTANCE", "WAIT_READY", ... */
const char *planner_step_name(enum plan_step_kind kind);

#endif
