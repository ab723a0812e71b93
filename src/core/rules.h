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
 *            ceil(conc / target), kept within [floor(ready / 2),
 *            ceil(1000 x ready)] (max-scale-down-rate 2, max-scale-up-rate
 *            1000); panic mode while the panic desire reaches
 *            panic_threshold (2.0: 200%) x the ready instances; in panic
 *            it wants the larger of both desires and never less than it
 *            wanted earlier in the panic; it leaves panic a stable window
 *            after the last crossing.
 *   mdscale  every second, from the offered load W (the service time of
 *            what arrived each second, as the gateway measures it):
 *            level = the quantile (0.98) of W over down_window (the
 *            fourth busiest second of 180), or, with quantile 0, mean +
 *            spread x standard deviation of W over it (estimated from
 *            successive differences, so a shift of the level is not taken
 *            for noise), plus its trend (least-squares slope, if rising)
 *            carried over the start-up delay ahead (lead_ms); wanted =
 *            ceil(level / target). Up at once, also when the mean of W
 *            over up_window exceeds what the current instances can serve
 *            (utilization 1: a real shortfall, not noise), and, in a
 *            burst, to the short window's load at target. A burst is
 *            requests spending latency_ratio (20) times their service
 *            time in flight (conc / work over up_window, by Little's
 *            law); a short queue alone is no reason. When the same
 *            burst's queue still grows lead_ms after its move up (what it
 *            started is ready and not enough: a backlog), one more.
 *            Down to the level at the stricter utilization target x (1 -
 *            tolerance), by at most half a tick, never in the first
 *            down_window nor within hold_ms of a move up (its end
 *            included: hold_ms equal to a flap window of the same length
 *            then makes no reversal); but what a burst added above the
 *            level's count goes burst_hold_ms after the last burst, back
 *            to that count (bursts cluster for minutes, not for the
 *            level's window). A move down never follows a move up within
 *            hold_ms, and a move up within hold_ms of a move down takes
 *            the level to rise by the tolerance band or a burst.
 *            Early (rule_decide_early(), every 100 ms inside a
 *            second): once the work that has arrived so far in the
 *            second exceeds what the current instances serve in a whole
 *            second (utilization 1), the second's shortfall is certain
 *            before it ends; up at once to the larger of the level and
 *            that work at target, with the bookkeeping of a move up (the
 *            hold, flap damping), so the second's own decision sees the
 *            higher count and does not move again for it. Only work
 *            that has arrived counts: a rate extrapolated from a tenth
 *            of a second is mostly noise (a few requests), and the
 *            arrived work is a lower bound on the second's.
 *
 * Pure: the caller feeds observations and the clock.
 */
#ifndef MDS_RULES_H
#define MDS_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RULE_HISTORY 1024 /* seconds of observations kept */

enum rule_kind { RULE_HPA, RULE_KPA, RULE_MDSCALE };

struct rule_params {
	enum rule_kind kind;
	int64_t tick_ms;         /* decision period */
	double target;           /* hpa: CPU percent; kpa: concurrency per
				    instance; mdscale: utilization */
	double tolerance;        /* hpa: dead band; mdscale: scale-down
				    hysteresis */
	int64_t up_window_ms;    /* hpa: metric window; kpa: panic window;
				    mdscale: detection window */
	int64_t down_window_ms;  /* hpa: stabilization; kpa: stable window;
				    mdscale: scale-down window */
	double panic_threshold;  /* kpa */
	uint32_t max_up_abs;     /* hpa: +4 pods a tick */
	double max_up_ratio;     /* hpa: +100% a tick (1.0) */
	double spread;           /* mdscale: standard deviations of headroom */
	int64_t hold_ms;         /* mdscale: no move down within it of a
				    move up, its end included */
	int64_t lead_ms;         /* mdscale: how far ahead the trend is
				    carried (the instances' start-up delay) */
	double latency_ratio;    /* mdscale: time in flight over service time
				    past which the short window is sized at
				    target; 0: never */
	double quantile;         /* mdscale: the level is this quantile of
				    the offered load over down_window; 0:
				    mean + spread x standard deviation */
	int64_t burst_hold_ms;   /* mdscale: instances added for a burst are
				    kept until burst_hold_ms after the last
				    burst, then go; 0: they wait for the
				    level like the others */
	uint32_t damp_max;       /* mdscale: a move up within hold_ms of a
				    move down (a reversal) doubles the
				    scale-down window, up to this many
				    times it; 0 or 1: never */
	int64_t damp_half_life_ms; /* mdscale: and this long without one
				      halves it again */
	bool early;              /* mdscale: move up inside a second once
				    its shortfall is certain
				    (rule_decide_early()) */
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
	int64_t last_up_ms;          /* mdscale: the last move up's time */
	bool moved_up;               /* mdscale: there was one */
	int64_t last_burst_ms;       /* mdscale: the last second in a burst */
	int64_t burst_start_ms;      /* mdscale: its first second */
	bool burst_up;               /* mdscale: the count above the level's
					is a burst's */
	int64_t last_down_ms;        /* mdscale: the last move down's time */
	bool moved_down;             /* mdscale: there was one */
	uint32_t damp;               /* mdscale: the scale-down window's
					multiple now; 0 as 1 */
	int64_t damp_ms;             /* mdscale: when it last changed */
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

/*
 * The early move up, at a tick elapsed_ms (0 < elapsed_ms < 1000) into the
 * second that began at now_ms - elapsed_ms, with work_so_far seconds of
 * service time arrived in it so far (offered load in instance-seconds).
 * mdscale with early set only: when work_so_far > current (more than the
 * current instances serve in the whole second at utilization 1), returns
 * max(ceil(level / target), ceil(work_so_far / target)) within [min, max]
 * and records a move up at now_ms, as rule_decide() would; otherwise, and
 * for the other rules, current, and s is unchanged.
 */
uint32_t rule_decide_early(const struct rule_params *p, struct rule_state *s,
			   int64_t now_ms, double work_so_far,
			   int64_t elapsed_ms, uint32_t current, uint32_t min,
			   uint32_t max);

#endif
