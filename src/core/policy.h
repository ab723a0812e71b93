/*
 * policy.h - the autoscale decision, as a pure function.
 *
 * Given an alarm message's type and title, the deployment as it is now, the
 * deployment's policy and the clock, decides what to do: one of the
 * recipe's four moves (an instance more or fewer, the next larger or
 * smaller shape) or nothing, and why. On top of the recipe it adds a
 * cooldown per direction (one load step gives one scale-out, not several),
 * hysteresis (no scale-in or shape-down that would push utilization past
 * the high threshold), and a step proportional to the overload.
 * No I/O, no clock of its own.
 */
#ifndef MDS_POLICY_H
#define MDS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/shape.h"

#define POLICY_TITLE_HIGH_CPU "model_deployment_high_cpu"
#define POLICY_TITLE_LOW_CPU "model_deployment_low_cpu"
#define POLICY_TITLE_HIGH_MEM "model_deployment_high_mem"
#define POLICY_TITLE_LOW_MEM "model_deployment_low_mem"

/* One deployment's policy; every number of the recipe is here. */
struct policy {
	char profile[16];        /* "default", "recipe" or "mdscale": where
				    it started */
	uint32_t min_instances;  /* never below; 0: scale to zero when idle */
	uint32_t max_instances;  /* never above */
	uint32_t step;           /* instances per scale-out or scale-in */
	bool proportional;       /* scale out to ceil(n * cpu / cpu_target) */
	double cpu_target;       /* utilization aimed at by proportional steps */
	double cpu_high, cpu_low;   /* alarm thresholds, percent */
	double mem_high, mem_low;
	bool hysteresis;         /* refuse moves that would cross cpu_high */
	int64_t cooldown_out_ms, cooldown_in_ms;   /* per direction */
	int64_t cooldown_up_ms, cooldown_down_ms;
	int64_t idle_ms;         /* min_instances 0: no request this long
				    takes it to zero; 0 never */
	/* The alarms' windows and timings, as MQL interval and ISO-8601. */
	char high_window[8], low_window[8];
	char high_statistic[12], low_statistic[12];
	char high_pending[16], low_pending[16];
	char high_repeat[16], low_repeat[16];
	/* The mdscale profile's rule (core/rules.h, RULE_MDSCALE): it sets
	 * the instance count every second from the gateway's load; the
	 * other profiles keep these at the rule's defaults, unused. */
	double rule_target;      /* utilization of an instance aimed at, 0-1 */
	int64_t rule_up_ms;      /* detection window */
	int64_t rule_down_ms;    /* scale-down window */
	int64_t rule_hold_ms;    /* no move down this long after one up */
	bool rule_early;         /* the early check inside a second */
};

/* Whether p's instance count is set by the mdscale rule, not by CPU
 * alarms. */
bool policy_uses_rule(const struct policy *p);

/* The three documented profiles. */
void policy_default(struct policy *p);
void policy_recipe(struct policy *p);
void policy_mdscale(struct policy *p);

/* Starts p from the profile named name. Returns 0, or MDS_E_NOTFOUND for a
 * name that is none of them (p untouched). */
int policy_profile(const char *name, struct policy *p);

/* Validates a policy; MDS_E_INVAL with the reason in diag. */
int policy_validate(const struct policy *p, char *diag, size_t diagsz);

enum policy_move {
	POLICY_NONE,
	POLICY_SCALE_OUT,
	POLICY_SCALE_IN,
	POLICY_SHAPE_UP,
	POLICY_SHAPE_DOWN,
};

/* When each move last happened, for the cooldowns (0: never). */
struct policy_history {
	int64_t last_out_ms, last_in_ms, last_up_ms, last_down_ms;
};

struct policy_input {
	const char *type;            /* OK_TO_FIRING, REPEAT, ... */
	const char *title;           /* the alarm's displayName */
	const char *lifecycle_state; /* the deployment's */
	uint32_t instance_count;
	const char *shape;
	const struct shape_ladder *ladder;
	double value;                /* the metric now, percent; NaN unknown */
	int64_t now_ms;
};

struct policy_decision {
	enum policy_move move;
	uint32_t new_count;
	char new_shape[SHAPE_NAME_MAX + 1];
	/* After the move: create the matching scale-down alarm ("cpu" or
	 * "mem"), or delete the firing scale-down alarm (the floor). */
	const char *create_low_alarm;
	bool delete_alarm;
	char reason[256];
};

/*
 * Decides. Returns 0 with the decision in *out (move POLICY_NONE with a
 * reason when nothing is to be done), or MDS_E_INVAL for a title the
 * policy does not know (the reason in out->reason).
 */
int policy_decide(const struct policy *p, const struct policy_history *h,
		  const struct policy_input *in, struct policy_decision *out);

/*
 * Writes the MQL query of one of the policy's alarms into out (outsz
 * bytes, NUL-terminated, truncated if short): high (1) or low (0), on
 * memory (mem 1) or CPU, for the deployment whose resourceId is
 * resource_id, e.g. CpuUtilization[5m]{resourceId = "x"}.mean() > 80.
 * The live function and the simulator write their alarms with it.
 */
void policy_alarm_query(const struct policy *p, int high, int mem,
			const char *resource_id, char *out, size_t outsz);

/* Records in h that move was carried out at now_ms (for the cooldowns);
 * POLICY_NONE changes nothing. */
void policy_history_note(struct policy_history *h, enum policy_move move,
			 int64_t now_ms);

/* "SCALE_OUT", "SCALE_IN", "SHAPE_UP", "SHAPE_DOWN" or "NONE". */
const char *policy_move_name(enum policy_move m);

#endif
