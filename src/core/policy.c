/* policy.c - the autoscale decision; see policy.h. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/policy.h"
#include "core/rules.h"
#include "util/err.h"

static void set(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src);
}
#define SET(dst, src) set(dst, sizeof(dst), src)

/* The mdscale rule's settings, at the rule's own defaults. */
static void rule_defaults(struct policy *p)
{
	struct rule_params r;

	rule_params_default(RULE_MDSCALE, &r);
	p->rule_target = r.target;
	p->rule_up_ms = r.up_window_ms;
	p->rule_down_ms = r.down_window_ms;
	p->rule_hold_ms = r.hold_ms;
	p->rule_early = r.early;
}

void policy_default(struct policy *p)
{
	memset(p, 0, sizeof(*p));
	SET(p->profile, "default");
	p->min_instances = 1;
	p->idle_ms = 300000;
	p->max_instances = 4;
	p->step = 1;
	p->proportional = true;
	p->cpu_target = 60;
	p->cpu_high = 70;
	p->cpu_low = 25;
	p->mem_high = 80;
	p->mem_low = 30;
	p->hysteresis = true;
	p->cooldown_out_ms = 10000;
	p->cooldown_in_ms = 30000;
	p->cooldown_up_ms = 30000;
	p->cooldown_down_ms = 60000;
	SET(p->high_window, "2s");
	SET(p->low_window, "20s");
	SET(p->high_statistic, "mean");
	SET(p->low_statistic, "max");
	SET(p->high_pending, "PT1S");
	SET(p->low_pending, "PT10S");
	SET(p->high_repeat, "PT5S");
	SET(p->low_repeat, "PT15S");
	rule_defaults(p);
}

void policy_recipe(struct policy *p)
{
	memset(p, 0, sizeof(*p));
	SET(p->profile, "recipe");
	p->min_instances = 1;
	p->idle_ms = 300000;
	p->max_instances = 5;
	p->step = 1;
	p->proportional = false;
	p->cpu_target = 80;
	p->cpu_high = 80;
	p->cpu_low = 20;
	p->mem_high = 80;
	p->mem_low = 20;
	p->hysteresis = false;
	SET(p->high_window, "5m");
	SET(p->low_window, "1m");
	SET(p->high_statistic, "mean");
	SET(p->low_statistic, "max");
	SET(p->high_pending, "PT1M");
	SET(p->low_pending, "PT1M");
	SET(p->high_repeat, "PT5M");
	SET(p->low_repeat, "PT5M");
	rule_defaults(p);
}

/* The default profile's limits, cooldowns and memory alarms; the count
 * from the rule instead of the CPU alarms. */
void policy_mdscale(struct policy *p)
{
	policy_default(p);
	SET(p->profile, "mdscale");
}

int policy_profile(const char *name, struct policy *p)
{
	if (strcmp(name, "default") == 0)
		policy_default(p);
	else if (strcmp(name, "recipe") == 0)
		policy_recipe(p);
	else if (strcmp(name, "mdscale") == 0)
		policy_mdscale(p);
	else
		return MDS_E_NOTFOUND;
	return 0;
}

bool policy_uses_rule(const struct policy *p)
{
	return strcmp(p->profile, "mdscale") == 0;
}

int policy_validate(const struct policy *p, char *diag, size_t diagsz)
{
	if (p->max_instances < 1 || p->max_instances < p->min_instances ||
	    p->max_instances > 256) {
		mds_diag(diag, diagsz, "minInstances must be at least 0 and at "
			 "most maxInstances (from 1 to 256)");
		return MDS_E_INVAL;
	}
	if (p->step < 1 || p->step > 256) {
		mds_diag(diag, diagsz, "step must be from 1 to 256");
		return MDS_E_INVAL;
	}
	if (!(p->cpu_low >= 0 && p->cpu_low < p->cpu_high &&
	      p->cpu_high <= 1000) ||
	    !(p->mem_low >= 0 && p->mem_low < p->mem_high &&
	      p->mem_high <= 100)) {
		mds_diag(diag, diagsz, "thresholds must satisfy 0 <= low < "
			 "high (cpu <= 1000, memory <= 100)");
		return MDS_E_INVAL;
	}
	if (!(p->cpu_target > 0 && p->cpu_target <= 1000)) {
		mds_diag(diag, diagsz, "cpuTarget must be in (0, 1000]");
		return MDS_E_INVAL;
	}
	if (p->cooldown_out_ms < 0 || p->cooldown_in_ms < 0 ||
	    p->cooldown_up_ms < 0 || p->cooldown_down_ms < 0) {
		mds_diag(diag, diagsz, "cooldowns must not be negative");
		return MDS_E_INVAL;
	}
	if (!(p->rule_target > 0 && p->rule_target <= 1) ||
	    p->rule_up_ms < 1000 || p->rule_down_ms < 0 ||
	    p->rule_up_ms > (int64_t)RULE_HISTORY * 1000 ||
	    p->rule_down_ms > (int64_t)RULE_HISTORY * 1000 ||
	    p->rule_hold_ms < 0 || p->rule_hold_ms > 3600000) {
		mds_diag(diag, diagsz, "targetUtilization must be in (0, 1], "
			 "the windows from 1 s (up) or 0 s (down) to %d s and "
			 "holdSeconds from 0 to 3600", RULE_HISTORY);
		return MDS_E_INVAL;
	}
	return 0;
}

const char *policy_move_name(enum policy_move m)
{
	switch (m) {
	case POLICY_SCALE_OUT: return "SCALE_OUT";
	case POLICY_SCALE_IN: return "SCALE_IN";
	case POLICY_SHAPE_UP: return "SHAPE_UP";
	case POLICY_SHAPE_DOWN: return "SHAPE_DOWN";
	case POLICY_NONE: break;
	}
	return "NONE";
}

/* Fills the reason of a decision to do nothing; returns 0. */
static int nothing(struct policy_decision *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int nothing(struct policy_decision *out, const char *fmt, ...)
{
	va_list ap;

	out->move = POLICY_NONE;
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
	return 0;
}

static bool cooling(int64_t last, int64_t cooldown, int64_t now)
{
	return last > 0 && now - last < cooldown;
}

static int scale_out(const struct policy *p, const struct policy_history *h,
		     const struct policy_input *in, struct policy_decision *out)
{
	uint32_t n = in->instance_count, want;

	if (n >= p->max_instances)
		return nothing(out, "at the maximum of %u instances",
			       p->max_instances);
	if (cooling(h->last_out_ms, p->cooldown_out_ms, in->now_ms))
		return nothing(out, "scale-out cooldown: the last was %.1f s "
			       "ago (cooldown %.0f s)",
			       (in->now_ms - h->last_out_ms) / 1000.0,
			       p->cooldown_out_ms / 1000.0);
	want = n + p->step;
	if (p->proportional && !isnan(in->value) && in->value > 0) {
		double need = ceil(n * in->value / p->cpu_target);

		if (need > want)
			want = need > p->max_instances ? p->max_instances
						       : (uint32_t)need;
	}
	if (want > p->max_instances)
		want = p->max_instances;
	out->move = POLICY_SCALE_OUT;
	out->new_count = want;
	out->create_low_alarm = "cpu";
	if (isnan(in->value))
		snprintf(out->reason, sizeof(out->reason),
			 "CPU high: %u -> %u instances", n, want);
	else
		snprintf(out->reason, sizeof(out->reason),
			 "CPU at %.1f%% (high %.0f%%): %u -> %u instances",
			 in->value, p->cpu_high, n, want);
	return 0;
}

static int scale_in(const struct policy *p, const struct policy_history *h,
		    const struct policy_input *in, struct policy_decision *out)
{
	uint32_t n = in->instance_count, want;
	/* Zero is for an idle deployment (autoscale_idle.c), not low CPU. */
	uint32_t floor = p->min_instances > 0 ? p->min_instances : 1;

	if (n <= floor) {
		nothing(out, "at the minimum of %u instances: the scale-down "
			"alarm goes", floor);
		out->delete_alarm = true;
		return 0;
	}
	if (cooling(h->last_in_ms, p->cooldown_in_ms, in->now_ms) ||
	    cooling(h->last_out_ms, p->cooldown_in_ms, in->now_ms))
		return nothing(out, "scale-in cooldown (%.0f s since the last "
			       "change of size)", p->cooldown_in_ms / 1000.0);
	want = n > floor + p->step ? n - p->step : floor;
	if (p->hysteresis && !isnan(in->value) &&
	    in->value * n / want >= p->cpu_high)
		return nothing(out, "hysteresis: CPU %.1f%% on %u instances "
			       "would be %.1f%% on %u, past the high "
			       "threshold %.0f%%", in->value, n,
			       in->value * n / want, want, p->cpu_high);
	out->move = POLICY_SCALE_IN;
	out->new_count = want;
	out->delete_alarm = want == floor;
	snprintf(out->reason, sizeof(out->reason),
		 "CPU low: %u -> %u instances%s", n, want,
		 out->delete_alarm ? " (the floor: the scale-down alarm goes)"
				   : "");
	return 0;
}

static int shape_up(const struct policy *p, const struct policy_history *h,
		    const struct policy_input *in, struct policy_decision *out)
{
	const struct shape *next = shape_step(in->ladder, in->shape, 1);

	if (shape_find(in->ladder, in->shape) == NULL)
		return nothing(out, "shape '%s' is not on the ladder",
			       in->shape);
	if (next == NULL)
		return nothing(out, "already on the largest shape '%s'",
			       in->shape);
	if (cooling(h->last_up_ms, p->cooldown_up_ms, in->now_ms))
		return nothing(out, "shape-up cooldown: the last was %.1f s "
			       "ago", (in->now_ms - h->last_up_ms) / 1000.0);
	out->move = POLICY_SHAPE_UP;
	SET(out->new_shape, next->name);
	out->create_low_alarm = "mem";
	snprintf(out->reason, sizeof(out->reason),
		 "memory high: shape %s -> %s", in->shape, next->name);
	return 0;
}

static int shape_down(const struct policy *p, const struct policy_history *h,
		      const struct policy_input *in,
		      struct policy_decision *out)
{
	const struct shape *cur = shape_find(in->ladder, in->shape);
	const struct shape *prev = shape_step(in->ladder, in->shape, -1);

	if (cur == NULL)
		return nothing(out, "shape '%s' is not on the ladder",
			       in->shape);
	if (prev == NULL) {
		nothing(out, "already on the smallest shape '%s': the "
			"scale-down alarm goes", in->shape);
		out->delete_alarm = true;
		return 0;
	}
	if (cooling(h->last_down_ms, p->cooldown_down_ms, in->now_ms) ||
	    cooling(h->last_up_ms, p->cooldown_down_ms, in->now_ms))
		return nothing(out, "shape-down cooldown (%.0f s since the "
			       "last change of shape)",
			       p->cooldown_down_ms / 1000.0);
	if (p->hysteresis && !isnan(in->value) &&
	    in->value * (double)cur->mem_bytes / (double)prev->mem_bytes >=
		    p->mem_high)
		return nothing(out, "hysteresis: memory %.1f%% of %s would "
			       "be %.1f%% of %s, past the high threshold "
			       "%.0f%%", in->value, cur->name,
			       in->value * (double)cur->mem_bytes /
				       (double)prev->mem_bytes,
			       prev->name, p->mem_high);
	out->move = POLICY_SHAPE_DOWN;
	SET(out->new_shape, prev->name);
	out->delete_alarm = shape_step(in->ladder, prev->name, -1) == NULL;
	snprintf(out->reason, sizeof(out->reason),
		 "memory low: shape %s -> %s%s", in->shape, prev->name,
		 out->delete_alarm ? " (the smallest: the scale-down alarm "
				     "goes)" : "");
	return 0;
}

int policy_decide(const struct policy *p, const struct policy_history *h,
		  const struct policy_input *in, struct policy_decision *out)
{
	memset(out, 0, sizeof(*out));
	out->new_count = in->instance_count;
	SET(out->new_shape, in->shape ? in->shape : "");
	if (in->title == NULL ||
	    (strcmp(in->title, POLICY_TITLE_HIGH_CPU) != 0 &&
	     strcmp(in->title, POLICY_TITLE_LOW_CPU) != 0 &&
	     strcmp(in->title, POLICY_TITLE_HIGH_MEM) != 0 &&
	     strcmp(in->title, POLICY_TITLE_LOW_MEM) != 0)) {
		snprintf(out->reason, sizeof(out->reason),
			 "unknown alarm title '%.100s': expected "
			 "model_deployment_high_cpu, _low_cpu, _high_mem or "
			 "_low_mem", in->title ? in->title : "");
		return MDS_E_INVAL;
	}
	if (in->type == NULL || (strcmp(in->type, "OK_TO_FIRING") != 0 &&
				 strcmp(in->type, "REPEAT") != 0))
		return nothing(out, "message type %s: only OK_TO_FIRING and "
			       "REPEAT act", in->type ? in->type : "(none)");
	if (in->lifecycle_state == NULL ||
	    strcmp(in->lifecycle_state, "ACTIVE") != 0)
		return nothing(out, "the deployment is %s, not ACTIVE",
			       in->lifecycle_state ? in->lifecycle_state
						   : "unknown");
	if (policy_uses_rule(p) &&
	    (strcmp(in->title, POLICY_TITLE_HIGH_CPU) == 0 ||
	     strcmp(in->title, POLICY_TITLE_LOW_CPU) == 0))
		return nothing(out, "the mdscale profile sets the instance "
			       "count from the gateway's load, not from CPU "
			       "alarms");
	if (strcmp(in->title, POLICY_TITLE_HIGH_CPU) == 0)
		return scale_out(p, h, in, out);
	if (strcmp(in->title, POLICY_TITLE_LOW_CPU) == 0)
		return scale_in(p, h, in, out);
	if (strcmp(in->title, POLICY_TITLE_HIGH_MEM) == 0)
		return shape_up(p, h, in, out);
	return shape_down(p, h, in, out);
}

void policy_alarm_query(const struct policy *p, int high, int mem,
			const char *resource_id, char *out, size_t outsz)
{
	double threshold = mem ? (high ? p->mem_high : p->mem_low)
			       : (high ? p->cpu_high : p->cpu_low);

	snprintf(out, outsz, "%s[%s]{resourceId = \"%s\"}.%s() %s %g",
		 mem ? "MemoryUtilization" : "CpuUtilization",
		 high ? p->high_window : p->low_window, resource_id,
		 high ? p->high_statistic : p->low_statistic, high ? ">" : "<",
		 threshold);
}

void policy_history_note(struct policy_history *h, enum policy_move move,
			 int64_t now_ms)
{
	if (move == POLICY_SCALE_OUT)
		h->last_out_ms = now_ms;
	else if (move == POLICY_SCALE_IN)
		h->last_in_ms = now_ms;
	else if (move == POLICY_SHAPE_UP)
		h->last_up_ms = now_ms;
	else if (move == POLICY_SHAPE_DOWN)
		h->last_down_ms = now_ms;
}
