/*
 * sim_policy.c - the built-in policies, policy files and the settings of
 * the model, from one table of keys each.
 */
#include "sim/sim.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

#define MAX_DEFAULT 64

enum ktype { K_U32, K_I64, K_DBL, K_BOOL, K_STR };

struct key {
	const char *name;
	enum ktype type;
	size_t off;
	size_t size; /* K_STR */
	double lo, hi;
};

#define P(f) offsetof(struct sim_policy, f)
#define PS(f) P(f), sizeof(((struct sim_policy *)0)->f)

static const struct key policy_keys[] = {
	{ "min", K_U32, P(min_instances), 0, 1, SIM_MAX_INSTANCES },
	{ "max", K_U32, P(max_instances), 0, 1, SIM_MAX_INSTANCES },
	{ "initial", K_U32, P(initial), 0, 1, SIM_MAX_INSTANCES },
	/* The rules (hpa, kpa, mdscale). */
	{ "tickMs", K_I64, P(rule.tick_ms), 0, 100, 3600000 },
	{ "target", K_DBL, P(rule.target), 0, 0.01, 1000 },
	{ "tolerance", K_DBL, P(rule.tolerance), 0, 0, 1 },
	{ "upWindowMs", K_I64, P(rule.up_window_ms), 0, 1000, 3600000 },
	{ "downWindowMs", K_I64, P(rule.down_window_ms), 0, 0, 1000000 },
	{ "panicThreshold", K_DBL, P(rule.panic_threshold), 0, 1, 100 },
	{ "maxUpAbs", K_U32, P(rule.max_up_abs), 0, 1, SIM_MAX_INSTANCES },
	{ "maxUpRatio", K_DBL, P(rule.max_up_ratio), 0, 0, 100 },
	{ "spread", K_DBL, P(rule.spread), 0, 0, 100 },
	{ "holdMs", K_I64, P(rule.hold_ms), 0, 0, 86400000 },
	{ "leadMs", K_I64, P(rule.lead_ms), 0, 0, 3600000 },
	{ "latencyRatio", K_DBL, P(rule.latency_ratio), 0, 0, 1e6 },
	{ "quantile", K_DBL, P(rule.quantile), 0, 0, 1 },
	{ "burstHoldMs", K_I64, P(rule.burst_hold_ms), 0, 0, 3600000 },
	{ "dampMax", K_U32, P(rule.damp_max), 0, 0, 64 },
	{ "dampHalfLifeMs", K_I64, P(rule.damp_half_life_ms), 0, 0, 3600000 },
	{ "early", K_BOOL, P(rule.early), 0, 0, 1 },
	/* The alarm policy (recipe, oci-native): core/policy.h's fields. */
	{ "step", K_U32, P(alarms.step), 0, 1, 256 },
	{ "proportional", K_BOOL, P(alarms.proportional), 0, 0, 1 },
	{ "cpuTarget", K_DBL, P(alarms.cpu_target), 0, 1, 100 },
	{ "cpuHigh", K_DBL, P(alarms.cpu_high), 0, 0, 100 },
	{ "cpuLow", K_DBL, P(alarms.cpu_low), 0, 0, 100 },
	{ "memHigh", K_DBL, P(alarms.mem_high), 0, 0, 100 },
	{ "memLow", K_DBL, P(alarms.mem_low), 0, 0, 100 },
	{ "hysteresis", K_BOOL, P(alarms.hysteresis), 0, 0, 1 },
	{ "cooldownOutMs", K_I64, P(alarms.cooldown_out_ms), 0, 0, 86400000 },
	{ "cooldownInMs", K_I64, P(alarms.cooldown_in_ms), 0, 0, 86400000 },
	{ "highWindow", K_STR, PS(alarms.high_window), 0, 0 },
	{ "lowWindow", K_STR, PS(alarms.low_window), 0, 0 },
	{ "highStatistic", K_STR, PS(alarms.high_statistic), 0, 0 },
	{ "lowStatistic", K_STR, PS(alarms.low_statistic), 0, 0 },
	{ "highPending", K_STR, PS(alarms.high_pending), 0, 0 },
	{ "lowPending", K_STR, PS(alarms.low_pending), 0, 0 },
	{ "highRepeat", K_STR, PS(alarms.high_repeat), 0, 0 },
	{ "lowRepeat", K_STR, PS(alarms.low_repeat), 0, 0 },
};

#define M(f) offsetof(struct sim_model, f)

static const struct key model_keys[] = {
	{ "serviceMs", K_DBL, M(service_ms), 0, 0.001, 60000 },
	{ "startupMs", K_I64, M(startup_ms), 0, 0, 3600000 },
	{ "sampleMs", K_I64, M(sample_ms), 0, 100, 60000 },
	{ "evalMs", K_I64, M(eval_ms), 0, 100, 60000 },
	{ "timeoutMs", K_I64, M(timeout_ms), 0, 1, 3600000 },
	{ "maxClients", K_U32, M(max_clients), 0, 1, 10000000 },
	{ "priceHour", K_DBL, M(price_hour), 0, 0, 1e6 },
	{ "sloMs", K_DBL, M(slo_ms), 0, 0.001, 3600000 },
	{ "flapWindowMs", K_I64, M(flap_window_ms), 0, 0, 86400000 },
};

static const struct key *find(const struct key *t, size_t n,
			      const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].name, name) == 0)
			return &t[i];
	return NULL;
}

static int set(const struct key *k, void *base, const char *value,
	       char *diag, size_t diagsz)
{
	char *p = (char *)base + k->off;
	char *end;
	double v;

	if (k->type == K_STR) {
		if (strlen(value) == 0 || strlen(value) >= k->size) {
			mds_diag(diag, diagsz, "%s: 1 to %zu characters",
				 k->name, k->size - 1);
			return MDS_E_INVAL;
		}
		memcpy(p, value, strlen(value) + 1);
		return 0;
	}
	if (k->type == K_BOOL) {
		bool b = strcmp(value, "true") == 0;

		if (!b && strcmp(value, "false") != 0) {
			mds_diag(diag, diagsz, "%s: true or false, not '%s'",
				 k->name, value);
			return MDS_E_INVAL;
		}
		memcpy(p, &b, sizeof(b));
		return 0;
	}
	v = strtod(value, &end);
	if (*value == '\0' || *end != '\0' || !isfinite(v) || v < k->lo ||
	    v > k->hi || (k->type != K_DBL && v != floor(v))) {
		mds_diag(diag, diagsz, "%s: a %snumber from %g to %g, not "
			 "'%s'", k->name, k->type == K_DBL ? "" : "whole ",
			 k->lo, k->hi, value);
		return MDS_E_INVAL;
	}
	if (k->type == K_U32) {
		uint32_t u = (uint32_t)v;

		memcpy(p, &u, sizeof(u));
	} else if (k->type == K_I64) {
		int64_t i = (int64_t)v;

		memcpy(p, &i, sizeof(i));
	} else {
		memcpy(p, &v, sizeof(v));
	}
	return 0;
}

static void base_policy(struct sim_policy *out, const char *name,
			enum sim_kind kind)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->kind = kind;
	out->min_instances = 1;
	out->max_instances = MAX_DEFAULT;
	out->initial = 0; /* auto: sim_initial() */
	policy_recipe(&out->alarms);
}

int sim_policy_builtin(const char *name, struct sim_policy *out)
{
	if (strcmp(name, "recipe") == 0) {
		base_policy(out, name, SIM_ALARMS);
	} else if (strcmp(name, "oci-native") == 0) {
		/* OCI's threshold autoscaling: the metric's mean over a
		 * minute past the threshold for a 3-minute pending duration,
		 * a 300 s cooldown, a fixed step of one. */
		base_policy(out, name, SIM_ALARMS);
		struct policy *p = &out->alarms;

		snprintf(p->profile, sizeof(p->profile), "oci-native");
		snprintf(p->high_window, sizeof(p->high_window), "1m");
		snprintf(p->low_window, sizeof(p->low_window), "1m");
		snprintf(p->low_statistic, sizeof(p->low_statistic), "mean");
		snprintf(p->high_pending, sizeof(p->high_pending), "PT3M");
		snprintf(p->low_pending, sizeof(p->low_pending), "PT3M");
		snprintf(p->high_repeat, sizeof(p->high_repeat), "PT1M");
		snprintf(p->low_repeat, sizeof(p->low_repeat), "PT1M");
		p->cooldown_out_ms = p->cooldown_in_ms = 300000;
	} else if (strcmp(name, "hpa") == 0) {
		base_policy(out, name, SIM_HPA);
		rule_params_default(RULE_HPA, &out->rule);
	} else if (strcmp(name, "kpa") == 0) {
		base_policy(out, name, SIM_KPA);
		rule_params_default(RULE_KPA, &out->rule);
	} else if (strcmp(name, "mdscale") == 0) {
		base_policy(out, name, SIM_MDSCALE);
		rule_params_default(RULE_MDSCALE, &out->rule);
	} else {
		return MDS_E_NOTFOUND;
	}
	out->alarms.max_instances = out->max_instances;
	return 0;
}

int sim_policy_set(struct sim_policy *p, const char *key, const char *value,
		   char *diag, size_t diagsz)
{
	const struct key *k = find(policy_keys, sizeof(policy_keys) /
					sizeof(policy_keys[0]), key);
	int rc = 0;

	if (k == NULL) {
		mds_diag(diag, diagsz, "unknown policy field '%s'", key);
		return MDS_E_NOTFOUND;
	}
	if (strcmp(key, "initial") == 0 && strcmp(value, "auto") == 0)
		p->initial = 0;
	else
		rc = set(k, p, value, diag, diagsz);
	p->alarms.min_instances = p->min_instances;
	p->alarms.max_instances = p->max_instances;
	return rc;
}

int sim_model_set(struct sim_model *m, const char *key, const char *value,
		  char *diag, size_t diagsz)
{
	const struct key *k = find(model_keys, sizeof(model_keys) /
				       sizeof(model_keys[0]), key);

	if (k == NULL) {
		mds_diag(diag, diagsz, "unknown model field '%s'", key);
		return MDS_E_NOTFOUND;
	}
	return set(k, m, value, diag, diagsz);
}

int sim_policy_validate(const struct sim_policy *p, char *diag,
			size_t diagsz)
{
	if (p->min_instances < 1 || p->max_instances < p->min_instances ||
	    p->max_instances > SIM_MAX_INSTANCES) {
		mds_diag(diag, diagsz, "%s: min must be at least 1 and max "
			 "from min to %d", p->name, SIM_MAX_INSTANCES);
		return MDS_E_INVAL;
	}
	if (p->initial != 0 && (p->initial < p->min_instances ||
				p->initial > p->max_instances)) {
		mds_diag(diag, diagsz, "%s: initial must be auto or from min "
			 "to max", p->name);
		return MDS_E_INVAL;
	}
	if (p->kind == SIM_ALARMS)
		return policy_validate(&p->alarms, diag, diagsz);
	if (p->kind == SIM_SCHEDULE)
		return 0;
	if (p->rule.tick_ms < 100 || p->rule.tick_ms % 100 != 0 ||
	    !(p->rule.target > 0)) {
		mds_diag(diag, diagsz, "%s: tickMs must be a multiple of 100 "
			 "and target above 0", p->name);
		return MDS_E_INVAL;
	}
	return 0;
}

static const char *const kinds[] = {
	[SIM_ALARMS] = "alarms", [SIM_HPA] = "hpa", [SIM_KPA] = "kpa",
	[SIM_MDSCALE] = "mdscale",
};
/* Kinds a file may name: not the oracle's schedule. */
#define NKINDS 4

/* One "key = value" line into p; "base" and "kind" are special. */
static int line(struct sim_policy *p, char *key, char *value, bool first,
		char *diag, size_t diagsz)
{
	if (strcmp(key, "base") == 0) {
		char name[SIM_NAME_MAX + 1];

		if (!first) {
			mds_diag(diag, diagsz, "base must be the first field");
			return MDS_E_INVAL;
		}
		memcpy(name, p->name, sizeof(name));
		if (sim_policy_builtin(value, p) != 0) {
			mds_diag(diag, diagsz, "unknown base policy '%s' "
				 "(recipe, oci-native, hpa, kpa, mdscale)",
				 value);
			return MDS_E_INVAL;
		}
		if (name[0])
			memcpy(p->name, name, sizeof(name));
		return 0;
	}
	if (strcmp(key, "name") == 0) {
		if (strlen(value) == 0 || strlen(value) > SIM_NAME_MAX) {
			mds_diag(diag, diagsz, "name: 1 to %d characters",
				 SIM_NAME_MAX);
			return MDS_E_INVAL;
		}
		snprintf(p->name, sizeof(p->name), "%s", value);
		return 0;
	}
	if (strcmp(key, "kind") == 0) {
		for (size_t i = 0; i < NKINDS; i++)
			if (strcmp(value, kinds[i]) == 0) {
				p->kind = (enum sim_kind)i;
				if (i != SIM_ALARMS)
					rule_params_default(
						(enum rule_kind)(i - 1),
						&p->rule);
				return 0;
			}
		mds_diag(diag, diagsz, "kind: alarms, hpa, kpa or mdscale, "
			 "not '%s'", value);
		return MDS_E_INVAL;
	}
	return sim_policy_set(p, key, value, diag, diagsz);
}

static char *trim(char *s)
{
	char *e = s + strlen(s);

	while (*s == ' ' || *s == '\t')
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

int sim_policy_parse(const char *text, size_t len, struct sim_policy *out,
		     char *diag, size_t diagsz)
{
	struct sim_policy p;
	char buf[512], why[256];
	size_t pos = 0, no = 0;
	bool first = true;
	int rc = 0;

	sim_policy_builtin("mdscale", &p);
	snprintf(p.name, sizeof(p.name), "custom");
	while (pos < len && rc == 0) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		char *eq, *s;

		no++;
		if (end - pos >= sizeof(buf)) {
			mds_diag(diag, diagsz, "line %zu: longer than %zu "
				 "characters", no, sizeof(buf) - 1);
			return MDS_E_PARSE;
		}
		memcpy(buf, text + pos, end - pos);
		buf[end - pos] = '\0';
		pos = end + 1;
		s = trim(buf);
		if (*s == '\0' || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (eq == NULL) {
			mds_diag(diag, diagsz, "line %zu: expected key = value",
				 no);
			return MDS_E_PARSE;
		}
		*eq = '\0';
		rc = line(&p, trim(s), trim(eq + 1), first, why, sizeof(why));
		first = false;
		if (rc != 0) {
			mds_diag(diag, diagsz, "line %zu: %s", no, why);
			return rc == MDS_E_NOTFOUND ? MDS_E_INVAL : rc;
		}
	}
	rc = sim_policy_validate(&p, why, sizeof(why));
	if (rc != 0) {
		mds_diag(diag, diagsz, "%s", why);
		return rc;
	}
	*out = p;
	return 0;
}
