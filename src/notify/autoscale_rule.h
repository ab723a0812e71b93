/*
 * autoscale_rule.h - the mdscale profile, live: once a second, for every
 * deployment whose autoscale policy is the mdscale profile, the gateway's
 * counters and the instances' CPU become one observation of the rule of
 * core/rules.h (RULE_MDSCALE), the rule says how many instances it wants,
 * and a different count starts an update through the autoscale function's
 * path (autoscale_rule_move(): the deployments' planner, zero downtime).
 * At the 100-ms samples in between, the early check: the work arrived
 * so far in the second, reckoned as the second's observation is, goes to
 * rule_decide_early(), and a move up it wants starts at once (its history
 * reason names the early check) when the deployment can take an update.
 * No alarm is involved; the memory alarms keep moving the shape.
 */
#ifndef MDSCALE_NOTIFY_AUTOSCALE_RULE_H
#define MDSCALE_NOTIFY_AUTOSCALE_RULE_H

#include <stdint.h>
#include <uv.h>

#include "core/rules.h"
#include "deploy/deploy.h"
#include "gateway/gateway.h"
#include "monitoring/monitoring.h"
#include "notify/autoscale.h"

/* What the gateway had counted for a deployment at one moment. */
struct autoscale_rule_counts {
	uint64_t requests;       /* finished */
	uint64_t latency_us_sum; /* of the finished ones */
	uint32_t inflight;       /* in flight now */
};

/*
 * One second's observation, from the gateway's counters at its start
 * (prev) and end (cur), elapsed_s seconds apart (> 0), the mean of the
 * requests in flight sampled over it (conc), the mean over the same
 * samples of min(in flight, ready): the instances busy as the gateway
 * sees them (busy), the mean CPU utilization of the ready instances (cpu,
 * percent of their shape) and how many are ready.
 *
 * conc is taken as it is. work, the service time of what arrived, is the
 * requests that arrived (finished + the change in flight) times the
 * service time of one request, *service_s: learned from the mean latency
 * of the second's finished requests only in seconds where less than half
 * an instance's worth of requests was in flight, so queueing does not
 * count; a lower value at once, a higher one as a moving average (latency
 * only ever overstates it); 0 until then. work is never less than the busy instances (the
 * larger of busy and cpu / 100 x ready: an instance starved of CPU is
 * busy all the same) times the requests that arrived over those that
 * finished when more arrived: a saturated deployment is seen with its
 * whole offered load before any latency was learned. Pure.
 */
void autoscale_rule_observation(const struct autoscale_rule_counts *prev,
				const struct autoscale_rule_counts *cur,
				double elapsed_s, double conc, double busy,
				double cpu, uint32_t ready, double *service_s,
				struct rule_obs *out);

struct autoscale_rule;

/*
 * Starts the rule's loop on loop: the gateway's in-flight count sampled
 * every 100 ms with the early check, one observation and decision per
 * deployment every second. a, d, gw and m must outlive it. Returns a new loop; close it
 * with autoscale_rule_close().
 */
struct autoscale_rule *autoscale_rule_open(uv_loop_t *loop,
					   struct autoscale *a,
					   struct deploy *d, struct gateway *gw,
					   struct monitoring *m);

/* Stops the loop and frees it once its timer is closed; NULL is fine. */
void autoscale_rule_close(struct autoscale_rule *r);

#endif
