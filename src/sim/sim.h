/*
 * sim.h - replaying a trace against a scaling policy on a virtual clock.
 *
 * The deployment is a model, not processes: instances of one shape, each
 * serving one request at a time in arrival order (as the example model
 * server does per connection), for service_ms x the request's cost; the
 * gateway's routing (core/route.h: least outstanding first) and its limits
 * (max_clients outstanding requests, else refused; response_timeout, else
 * timed out); start-up and readiness delay; drain on scale-in (the planner's
 * steps, core/planner.h). Utilization is computed as the live sampler does:
 * CpuUtilization = busy time x quota / (quota x the sample period), sampled
 * every sample_ms; MemoryUtilization grows with the requests served as the
 * model server's cache does.
 *
 * Policies: SIM_ALARMS runs the live code on the virtual clock: samples go
 * into a core/tsdb.h store, the policy's MQL alarms (core/alarm.h) evaluate
 * every eval_ms with their pending and repeat durations, each firing or
 * repeat message goes to core/policy.h's policy_decide() as the autoscale
 * function does, scale-down alarms are created and deleted as it does, and
 * the planner gives the steps. SIM_HPA, SIM_KPA and SIM_MDSCALE are decision
 * rules (core/rules.h) over the same observations.
 *
 * Pure: no I/O, no clock, deterministic.
 */
#ifndef MDS_SIM_H
#define MDS_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "core/policy.h"
#include "core/rules.h"
#include "sim/trace.h"

#define SIM_MAX_INSTANCES 256
#define SIM_NAME_MAX 31

/* The deployment model; sim_model_default() documents each default. */
struct sim_model {
	double service_ms;     /* unloaded service time of a cost-1 request */
	int64_t startup_ms;    /* from start to ready (routed) */
	int64_t sample_ms;     /* metrics sampling period */
	int64_t eval_ms;       /* alarm evaluation period */
	int64_t timeout_ms;    /* gateway response timeout */
	uint32_t max_clients;  /* outstanding requests past which the gateway
				  refuses */
	uint32_t cpu_mcpu;     /* the shape's CPU quota, millicores */
	uint64_t mem_bytes;    /* the shape's memory limit */
	double price_hour;     /* price of one instance-hour of the shape */
	double slo_ms;         /* latency target; 0: 5 x service_ms */
	int64_t flap_window_ms; /* a move reversed within it is a reversal */
};

/*
 * The defaults, from the example model server on the development machine
 * (examples/model-server/server.c): 0.51 ms of CPU per request held to a
 * quarter CPU is 2.04 ms of service; ready 0.3 s after start (process
 * start, weights load and the first health check: 0.29 to 0.31 s from a
 * start asked for to READY in bench/sim_to_real.py and bench/reaction.py,
 * a cold start's first answer 0.30 s in bench/coldstart.py); sampling
 * and alarm evaluation every second, the gateway's 60 s timeout and
 * 10,000 clients;
 * 250 millicores and 1 GiB at a price of 0.0125 per instance-hour (a
 * quarter of an OCPU at 0.05 an OCPU-hour).
 */
void sim_model_default(struct sim_model *m);

/* Sets one field of the model from text (serviceMs, startupMs, sampleMs,
 * evalMs, timeoutMs, maxClients, priceHour, sloMs, flapWindowMs). Returns
 * 0, MDS_E_NOTFOUND for an unknown key, MDS_E_INVAL (diag). */
int sim_model_set(struct sim_model *m, const char *key, const char *value,
		  char *diag, size_t diagsz);

/* Checks the model; MDS_E_INVAL with the field in diag. */
int sim_model_validate(const struct sim_model *m, char *diag, size_t diagsz);

/* SIM_SCHEDULE follows a given per-second count (the oracle's), starting
 * instances startup_ms ahead. */
enum sim_kind { SIM_ALARMS, SIM_HPA, SIM_KPA, SIM_MDSCALE, SIM_SCHEDULE };

/* A policy under test. */
struct sim_policy {
	char name[SIM_NAME_MAX + 1];
	enum sim_kind kind;
	uint32_t min_instances, max_instances;
	uint32_t initial;            /* ready at the start; 0 (auto, the
					built-ins' default): the oracle's count
					for second 0 (sim_run()) */
	struct policy alarms;        /* SIM_ALARMS */
	struct rule_params rule;     /* the rules */
	const uint16_t *schedule;    /* SIM_SCHEDULE: count per second */
	size_t nschedule;
};

/* One second of a run, for the plot. */
struct sim_second {
	uint32_t arrivals;
	uint16_t instances;   /* billed (started, not yet stopped) */
	uint16_t ready;
	uint32_t missed;      /* of its arrivals: refused, timed out or over
				 the SLO */
	float p99_ms;         /* of the requests that arrived in it; 0: none */
};

struct sim_result {
	char name[SIM_NAME_MAX + 1];
	uint64_t requests, within_slo, refused, timed_out;
	double slo_ms;
	double p50_ms, p99_ms;
	double instance_seconds, cost;
	uint32_t actions, reversals;
	double over_s, under_s;   /* seconds above / below the oracle's count */
	double cpu_seconds;       /* of the simulation itself, set by caller */
	struct sim_second *seconds; /* nseconds entries, owned */
	size_t nseconds;
};

/*
 * Runs trace t against policy p on model m. Returns 0 and fills *out (free
 * its contents with sim_result_clear()); MDS_E_INVAL for a bad model or
 * policy (diag); MDS_E_LIMIT past SIM_MAX_INSTANCES. oracle, if not NULL,
 * is the oracle's instance count per second (from sim_oracle()) against
 * which over- and under-provisioned time is counted. The run starts with
 * sim_initial(p, oracle, noracle) instances ready.
 */
int sim_run(const struct trace *t, const struct sim_model *m,
	    const struct sim_policy *p, const uint16_t *oracle,
	    size_t noracle, struct sim_result *out, char *diag,
	    size_t diagsz);

/*
 * The instances p starts with, ready at time 0: p->initial if set; else
 * (auto) the oracle's count for second 0, oracle[0], which is what the
 * oracle itself starts with, kept within p's min and max; min when there
 * is no oracle. So every policy and the oracle start alike, and nothing,
 * the oracle included, has capacity at time 0 that was started on
 * knowledge of later seconds than the first start-up delay's.
 */
uint32_t sim_initial(const struct sim_policy *p, const uint16_t *oracle,
		     size_t noracle);

/* Frees what sim_run() put in r; NULL is fine. */
void sim_result_clear(struct sim_result *r);

/*
 * The oracle: the cheapest instance schedule in hindsight that meets the
 * latency target given the start-up delay. Per second it needs the fewest
 * instances whose capacity at target utilization rho carries the second's
 * work (sum of costs x service time); an instance needed at second s must
 * have been started startup_ms before, and is billed from then. Writes a
 * new array of per-second counts (*counts, caller frees, *n entries) and
 * its cost into *cost. Returns 0 or MDS_E_INVAL.
 */
int sim_oracle(const struct trace *t, const struct sim_model *m,
	       uint32_t min_instances, double rho, uint16_t **counts,
	       size_t *n, double *cost);

/*
 * The oracle refined in hindsight, per second rather than at one
 * utilization: with miss(k, s) the requests of second s that miss the
 * target in a run at a fixed k instances all along (k from 1 to nmax),
 * each second gets the k from min_instances to nmax that minimizes k +
 * lambda x miss(k, s), each started startup_ms ahead (the highest count
 * of the next start-up delay, as sim_oracle()); lambda, the instance-
 * seconds a miss is worth, is searched (bisection of its logarithm over
 * [1e-6, 1], 14 schedules) for the cheapest schedule that, run through
 * the model, has at least goal of its requests within the target. The
 * misses of a second depend on the queue left by the ones before, which
 * the fixed-count runs only estimate; the run is what decides. Returns 0
 * with that schedule (*counts, a new array of *n counts, caller frees)
 * and its run (*res, free with sim_result_clear()); MDS_E_NOTFOUND when
 * no lambda tried meets the goal; MDS_E_INVAL for bad arguments, or
 * sim_run()'s error.
 */
int sim_oracle_hindsight(const struct trace *t, const struct sim_model *m,
			 uint32_t min_instances, uint32_t nmax, double goal,
			 uint16_t **counts, size_t *n, struct sim_result *res);

/*
 * The steady oracle: the cheapest schedule in hindsight that meets goal
 * with no move reversed within the model's flap window (as the results
 * count reversals: a move up billed startup_ms before its instances are
 * ready). Counts from 1 to nmax, k0 at second 0, each second priced k +
 * lambda x miss(k, s) as sim_oracle_hindsight() does, in a dynamic
 * programme over the count, the last move's direction and the seconds
 * since it; lambda bisected (20 schedules), each run through the model.
 * *bound: below it no schedule without such a reversal whose estimated
 * misses are within the goal's budget costs (instance-seconds; the
 * programme's optimum less lambda x the budget, the best over the lambdas
 * tried). Returns as sim_oracle_hindsight().
 */
int sim_oracle_steady(const struct trace *t, const struct sim_model *m,
		      uint32_t k0, uint32_t nmax, double goal, uint16_t **counts,
		      size_t *n, struct sim_result *res, double *bound);

/* The built-in policies: "recipe", "oci-native", "hpa", "kpa",
 * "mdscale". Returns 0 or MDS_E_NOTFOUND. */
int sim_policy_builtin(const char *name, struct sim_policy *out);

/*
 * Sets one field of a policy from text ("kind", "min", "max", "initial",
 * the rule's fields and the alarm policy's; docs/simulate.md lists them).
 * Returns 0, MDS_E_NOTFOUND for an unknown key, MDS_E_INVAL for a bad
 * value (diag).
 */
int sim_policy_set(struct sim_policy *p, const char *key, const char *value,
		   char *diag, size_t diagsz);

/*
 * Parses a policy file: "key = value" lines, '#' comments; "base = NAME"
 * first starts from a built-in. Returns 0 with *out filled; MDS_E_PARSE or
 * MDS_E_INVAL with "line L: ..." in diag. The policy is validated.
 */
int sim_policy_parse(const char *text, size_t len, struct sim_policy *out,
		     char *diag, size_t diagsz);

/* Checks a policy: min >= 1, max >= min, max <= SIM_MAX_INSTANCES,
 * initial 0 (auto) or from min to max, and the kind's own fields.
 * MDS_E_INVAL with the reason in diag. */
int sim_policy_validate(const struct sim_policy *p, char *diag,
			size_t diagsz);

#endif
