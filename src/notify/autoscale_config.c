/*
 * autoscale_config.c - the autoscale function's configuration and its JSON:
 * the policy fields (one declarative table: name, member, type, bounds)
 * and the shape ladder. See autoscale_config.h.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "notify/autoscale.h"
#include "notify/autoscale_config.h"
#include "util/err.h"

/* ---- policy <-> JSON ---- */

struct num_field {
	const char *name;
	size_t offset;
	char type; /* 'u' uint32, 'd' double, 'b' bool, 'm' ms from seconds */
	double lo, hi;
};

#define F(name, member, type, lo, hi)                                         \
	{ name, offsetof(struct policy, member), type, lo, hi }
static const struct num_field num_fields[] = {
	F("minInstances", min_instances, 'u', 1, 256),
	F("maxInstances", max_instances, 'u', 1, 256),
	F("step", step, 'u', 1, 256),
	F("proportional", proportional, 'b', 0, 1),
	F("cpuTarget", cpu_target, 'd', 1, 1000),
	F("cpuHigh", cpu_high, 'd', 0, 1000),
	F("cpuLow", cpu_low, 'd', 0, 1000),
	F("memHigh", mem_high, 'd', 0, 100),
	F("memLow", mem_low, 'd', 0, 100),
	F("hysteresis", hysteresis, 'b', 0, 1),
	F("cooldownOutSeconds", cooldown_out_ms, 'm', 0, 86400),
	F("cooldownInSeconds", cooldown_in_ms, 'm', 0, 86400),
	F("cooldownUpSeconds", cooldown_up_ms, 'm', 0, 86400),
	F("cooldownDownSeconds", cooldown_down_ms, 'm', 0, 86400),
};

struct str_field {
	const char *name;
	size_t offset;
	size_t size;
};

#define S(name, member)                                                       \
	{ name, offsetof(struct policy, member),                              \
	  sizeof(((struct policy *)0)->member) }
static const struct str_field str_fields[] = {
	S("highWindow", high_window),
	S("lowWindow", low_window),
	S("highStatistic", high_statistic),
	S("lowStatistic", low_statistic),
	S("highPendingDuration", high_pending),
	S("lowPendingDuration", low_pending),
	S("highRepeatDuration", high_repeat),
	S("lowRepeatDuration", low_repeat),
};

json_t *autoscale_policy_json(const struct policy *p)
{
	json_t *o = json_pack("{s:s}", "profile", p->profile);

	for (size_t i = 0; i < sizeof(num_fields) / sizeof(num_fields[0]); i++) {
		const struct num_field *nf = &num_fields[i];
		const char *at = (const char *)p + nf->offset;
		json_t *v = NULL;

		switch (nf->type) {
		case 'u': v = json_integer(*(const uint32_t *)at); break;
		case 'd': v = json_real(*(const double *)at); break;
		case 'b': v = json_boolean(*(const bool *)at); break;
		case 'm': v = json_integer(*(const int64_t *)at / 1000); break;
		}
		json_object_set_new(o, nf->name, v);
	}
	for (size_t i = 0; i < sizeof(str_fields) / sizeof(str_fields[0]); i++)
		json_object_set_new(o, str_fields[i].name,
				    json_string((const char *)p +
						str_fields[i].offset));
	return o;
}

/* Applies the policy fields of spec over p; "profile" and "shapes" are
 * left to the caller. */
static int apply_fields(json_t *spec, struct policy *p, struct fault *f)
{
	const char *key;
	json_t *v;

	json_object_foreach(spec, key, v) {
		bool known = strcmp(key, "profile") == 0 ||
			     strcmp(key, "shapes") == 0;

		for (size_t i = 0; !known && i < sizeof(num_fields) /
						   sizeof(num_fields[0]); i++) {
			const struct num_field *nf = &num_fields[i];
			char *at = (char *)p + nf->offset;
			double x;

			if (strcmp(key, nf->name) != 0)
				continue;
			known = true;
			if (nf->type == 'b') {
				if (!json_is_boolean(v))
					return fault_set(f, MDS_E_INVAL, key,
							 "autoscale.%s: must be "
							 "true or false", key);
				*(bool *)at = json_is_true(v);
				continue;
			}
			x = json_number_value(v);
			if (!json_is_number(v) || x < nf->lo || x > nf->hi ||
			    (nf->type != 'd' && x != floor(x)))
				return fault_set(f, MDS_E_INVAL, key,
						 "autoscale.%s: must be %s from "
						 "%g to %g", key,
						 nf->type == 'd' ? "a number"
								 : "an integer",
						 nf->lo, nf->hi);
			if (nf->type == 'u')
				*(uint32_t *)at = (uint32_t)x;
			else if (nf->type == 'd')
				*(double *)at = x;
			else
				*(int64_t *)at = (int64_t)x * 1000;
		}
		for (size_t i = 0; !known && i < sizeof(str_fields) /
						   sizeof(str_fields[0]); i++) {
			const struct str_field *sf = &str_fields[i];

			if (strcmp(key, sf->name) != 0)
				continue;
			known = true;
			if (!json_is_string(v) || json_string_length(v) == 0 ||
			    json_string_length(v) >= sf->size ||
			    strpbrk(json_string_value(v), "\"{}()[] ") != NULL)
				return fault_set(f, MDS_E_INVAL, key,
						 "autoscale.%s: a short string "
						 "such as 1m or PT1M", key);
			snprintf((char *)p + sf->offset, sf->size, "%s",
				 json_string_value(v));
		}
		if (!known)
			return fault_set(f, MDS_E_INVAL, key,
					 "autoscale.%s: unknown field", key);
	}
	return 0;
}

/* Resets p to the profile spec names ("default" when it names none). */
static int apply_profile(json_t *spec, struct policy *p, struct fault *f)
{
	json_t *v = json_object_get(spec, "profile");
	const char *profile = "default";

	if (v != NULL)
		profile = json_string_value(v) ? json_string_value(v) : "";
	if (strcmp(profile, "default") == 0)
		policy_default(p);
	else if (strcmp(profile, "recipe") == 0)
		policy_recipe(p);
	else
		return fault_set(f, MDS_E_INVAL, "autoscale.profile",
				 "autoscale.profile: 'default' or 'recipe'");
	return 0;
}

int autoscale_policy_parse(json_t *spec, struct policy *p, struct fault *f)
{
	char why[200];
	int rc;

	if (json_is_true(spec)) {
		policy_default(p);
		return 0;
	}
	if (!json_is_object(spec))
		return fault_set(f, MDS_E_INVAL, "autoscale",
				 "autoscale: true, or an object with a "
				 "profile and overrides");
	if (json_object_get(spec, "shapes") != NULL)
		return fault_set(f, MDS_E_INVAL, "autoscale.shapes",
				 "autoscale.shapes: set the shape ladder "
				 "with the function's configuration");
	rc = apply_profile(spec, p, f);
	if (rc == 0)
		rc = apply_fields(spec, p, f);
	if (rc != 0)
		return rc;
	if (policy_validate(p, why, sizeof(why)) != 0)
		return fault_set(f, MDS_E_INVAL, "autoscale", "autoscale: %s",
				 why);
	return 0;
}

/* ---- the function's configuration ---- */


json_t *fn_config_json(const struct fn_config *c)
{
	json_t *o = autoscale_policy_json(&c->policy), *names = json_array();

	for (size_t i = 0; i < c->nshapes; i++)
		json_array_append_new(names, json_string(c->shapes[i]));
	json_object_set_new(o, "shapes", names);
	return o;
}

/* Applies spec over c: a "profile" starts over from it, the other fields
 * override. Checks the shapes against the daemon's ladder. */
int fn_config_apply(const struct shape_ladder *all, json_t *spec,
		    struct fn_config *c, struct fault *f)
{
	json_t *names, *v;
	char why[200];
	size_t i;
	int rc;

	if (!json_is_object(spec))
		return fault_set(f, MDS_E_INVAL, "", "the configuration must "
				 "be a JSON object");
	if (json_object_get(spec, "profile") != NULL) {
		rc = apply_profile(spec, &c->policy, f);
		if (rc != 0)
			return rc;
	}
	rc = apply_fields(spec, &c->policy, f);
	if (rc != 0)
		return rc;
	names = json_object_get(spec, "shapes");
	if (names != NULL) {
		if (!json_is_array(names) ||
		    json_array_size(names) > SHAPE_LADDER_MAX)
			return fault_set(f, MDS_E_INVAL, "shapes",
					 "shapes: a list of at most %d shape "
					 "names, small to large",
					 SHAPE_LADDER_MAX);
		json_array_foreach(names, i, v) {
			const char *name = json_string_value(v);

			if (name == NULL ||
			    shape_find(all, name) == NULL)
				return fault_set(f, MDS_E_INVAL, "shapes",
						 "shapes: '%.80s' is not a shape "
						 "of the daemon (mdscale shape "
						 "list)", name ? name : "?");
			for (size_t k = 0; k < i; k++)
				if (strcmp(c->shapes[k], name) == 0)
					return fault_set(f, MDS_E_INVAL,
							 "shapes",
							 "shapes: '%.80s' "
							 "twice", name);
			snprintf(c->shapes[i], sizeof(c->shapes[i]), "%s",
				 name);
		}
		c->nshapes = json_array_size(names);
	}
	if (policy_validate(&c->policy, why, sizeof(why)) != 0)
		return fault_set(f, MDS_E_INVAL, "", "%s", why);
	return 0;
}

/* The ladder the configuration names, in its order. */
void fn_config_ladder(const struct shape_ladder *all,
		      const struct fn_config *c, struct shape_ladder *l)
{
	if (c->nshapes == 0) {
		*l = *all;
		return;
	}
	shape_ladder_init(l);
	for (size_t i = 0; i < c->nshapes; i++) {
		const struct shape *sh = shape_find(all, c->shapes[i]);

		if (sh != NULL)
			l->v[l->n++] = *sh;
	}
}

/* One line of what a decision was made by, for its reason. */
void fn_config_summary(const struct fn_config *c, bool own, char *out,
			   size_t outsz)
{
	const struct policy *p = &c->policy;
	size_t n;

	n = (size_t)snprintf(out, outsz,
			     "config (%s): minInstances=%u maxInstances=%u "
			     "cpuHigh=%g cpuLow=%g memHigh=%g memLow=%g "
			     "cooldownOutSeconds=%lld cooldownInSeconds=%lld "
			     "cooldownUpSeconds=%lld cooldownDownSeconds=%lld "
			     "shapes=",
			     own ? "deployment" : "default", p->min_instances,
			     p->max_instances, p->cpu_high, p->cpu_low,
			     p->mem_high, p->mem_low,
			     (long long)(p->cooldown_out_ms / 1000),
			     (long long)(p->cooldown_in_ms / 1000),
			     (long long)(p->cooldown_up_ms / 1000),
			     (long long)(p->cooldown_down_ms / 1000));
	for (size_t i = 0; i < c->nshapes && n < outsz; i++)
		n += (size_t)snprintf(out + n, outsz - n, "%s%s",
				      i ? "," : "", c->shapes[i]);
	if (c->nshapes == 0 && n < outsz)
		snprintf(out + n, outsz - n, "(all)");
}

