/*
 * rules.h - the decision rules of the known autoscalers, and mdscale's.
 *
 * Each rule sees one observation a second (CPU utilization, concurrency:
 * the time-average of requests in flight at the gateway) and, every
 * tick_ms, says how many instances it wants:
 *
 *   hpa      Kubernetes' HPA: every 15 s, ratio = cpu / target over the
 *            last up_window; inside the tolerance (0.1) nothing, else
 *            desired = ceil(current x ratio); scale-up limited to
 *            max(current + 4, 2 x current) a tick; scale-down to the
 *            highest desired of the last down_window (300 s
 *            stabilization).
 *   kpa      Knative's: every 2 s, stable = mean concurrency over 60 s
 *            (down_window), panic = over 6 s (up_window); desired =
 *            ceil(conc / target); panic mode when the panic desire reaches
 *            panic_threshold (2.0: 200%) x the ready instances; in panic it
 *            never scales down, and it leaves panic after a stable window
 *            without one.
 *   mdscale  every second: the offered load (the service time of what
 *            arrived, as the gateway measures it) over up_window, at a
 *            utilization of target: up at once to ceil(work / target),
 *            plus the backlog's share when requests queue (concurrency
 *            above the ready instances); the instances still starting
 *            count as capacity on the way; down only to the highest such
 *            desire of the last down_window, by at most half a tick.
 *
 * Pure: the caller feeds observations and the clock.
 */
#ifndef MDS_RULES_H
#define MDS_RULES_H

#include <stddef.h>
#include <stdint.h>

#define RULE_HISTORY 1024 /* seconds of observations kept */

enum rule_kind { RULE_HPA, RULE_KPA, RULE_MDSCALE };

struct rule_params {
	enum rule_kind kind;
	int64_t tick_ms;         /* decision period */
	double target;           /* hpa: CPU percent; else concurrency per
				    instance */
	double tolerance;        /* hpa */
	int64_t up_window_ms;    /* hpa: metric window; kpa: panic window;
				    mdscale: detection window */
	int64_t down_window_ms;  /* hpa: stabilization; kpa: stable window;
				    mdscale: scale-down window */
	double panic_threshold;  /* kpa */
	uint32_t max_up_abs;     /* hpa: +4 pods a tick */
	double max_up_ratio;     /* hpa: +100% a tick (1.0) */
};

/* The documented defaults of each rule. */
void rule_params_default(enum rule_kind kind, struct rule_params *p);

struct rule_obs {
	double cpu;  /* mean CpuUtilization of the ready instances, percent */
	double conc; /* requests in flight, time-averaged over the second */
	double work; /* service time of the requests that arrived in the
			second, seconds: the offered load in instances */
};

struct rule_state {
	struct rule_obs obs[RULE_HISTORY];
	uint32_t want[RULE_HISTORY]; /* the desire recorded each second */
	uint64_t nobs;               /* seconds observed */
	int64_t panic_until_ms;      /* kpa: in panic before this; 0 none */
	uint32_t panic_max;          /* kpa: highest desire in this panic */
};

/* Empties the state. */
void rule_state_init(struct rule_state *s);

/* Records the observation of the second that just ended. */
void rule_observe(struct rule_state *s, const struct rule_obs *o);

/*
 * Decides at now_ms (a multiple of tick_ms) for a deployment of current
 * instances (started, not draining) of which ready are routed. Returns the
 * instances wanted, within [min, max].
 */
uint32_t rule_decide(const struct rule_params *p, struct rule_state *s,
		     int64_t now_ms, uint32_t current, uint32_t ready,
		     uint32_t min, uint32_t max);

#endif
