/*
 * sim_alarms.h - the live alarm path on the virtual clock.
 *
 * The autoscale function's chain as the daemon runs it, minus the network:
 * instance utilization samples go into a core/tsdb.h store under the
 * daemon's namespace and dimensions; the policy's high-CPU and high-memory
 * alarms (core/alarm.h, the queries of policy_alarm_query()) evaluate with
 * their pending and repeat durations; each OK_TO_FIRING or REPEAT event is
 * decided by policy_decide() with the value the function reads (the newest
 * sample of the last 10 s, the highest over the instances); after a move
 * the scale-down alarm is created, and it is deleted when it fires at the
 * floor; the cooldowns are noted with policy_history_note().
 */
#ifndef MDS_SIM_ALARMS_H
#define MDS_SIM_ALARMS_H

#include <stddef.h>
#include <stdint.h>

#include "core/policy.h"

struct sim_alarms;

/* A new chain for policy p (validated by the caller). Returns 0 and *out
 * (free with sim_alarms_free()), or MDS_E_INVAL with diag. */
int sim_alarms_new(const struct policy *p, struct sim_alarms **out,
		   char *diag, size_t diagsz);

/* NULL is fine. */
void sim_alarms_free(struct sim_alarms *a);

/* Records instance inst's utilization sampled at t_ms. Returns 0 or the
 * store's error. */
int sim_alarms_sample(struct sim_alarms *a, size_t inst, int64_t t_ms,
		      double cpu, double mem);

/*
 * Evaluates the alarms at now_ms for a deployment of count instances in
 * lifecycle state (e.g. "ACTIVE"); *want gets the count after any move
 * (count when none). Each decision is appended to the log (see
 * sim_alarms_log()). Returns 0 or an error of the alarm code.
 */
int sim_alarms_tick(struct sim_alarms *a, int64_t now_ms, uint32_t count,
		    const char *state, uint32_t *want);

/* One decision that moved the deployment. */
struct sim_decision {
	int64_t t_ms;
	const char *title;     /* the alarm's, static */
	const char *type;      /* "OK_TO_FIRING" or "REPEAT", static */
	enum policy_move move;
	uint32_t from, to;
};

/* The moves decided so far, oldest first; owned by a. */
const struct sim_decision *sim_alarms_log(const struct sim_alarms *a,
					  size_t *n);

#endif
