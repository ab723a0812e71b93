/*
 * autoscale_record.c - what the autoscale function keeps about each
 * deployment in the store: its record (policy, when each move last
 * happened, what set-up made), the default configuration, the scaling
 * history, and the calls of autoscale.h that read and change them.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/autoscale.h"
#include "notify/autoscale_int.h"
#include "notify/autoscale_config.h"
#include "api/jsonx.h"
#include "deploy/deploy.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"

#define KIND "autoscale"
#define KIND_CONFIG "autoscale-config"
#define CONFIG_DEFAULT "default"
#define HISTORY "scaling"
#define HISTORY_KEPT 1000

/* ---- the stored policy ----
 *
 * The record keeps the policy in the API's form (api_autoscale.c checks
 * what comes in; these only map the stored names to the members).
 */

struct num_field {
	const char *name;
	size_t offset;
	char type; /* 'u' uint32, 'd' double, 'b' bool, 'm' ms from seconds */
};

#define F(name, member, type) { name, offsetof(struct policy, member), type }
static const struct num_field num_fields[] = {
	F("minInstances", min_instances, 'u'),
	F("maxInstances", max_instances, 'u'),
	F("step", step, 'u'),
	F("proportional", proportional, 'b'),
	F("cpuTarget", cpu_target, 'd'),
	F("cpuHigh", cpu_high, 'd'),
	F("cpuLow", cpu_low, 'd'),
	F("memHigh", mem_high, 'd'),
	F("memLow", mem_low, 'd'),
	F("hysteresis", hysteresis, 'b'),
	F("cooldownOutSeconds", cooldown_out_ms, 'm'),
	F("cooldownInSeconds", cooldown_in_ms, 'm'),
	F("cooldownUpSeconds", cooldown_up_ms, 'm'),
	F("cooldownDownSeconds", cooldown_down_ms, 'm'),
	F("idleSeconds", idle_ms, 'm'),
	F("targetUtilization", rule_target, 'd'),
	F("upWindowSeconds", rule_up_ms, 'm'),
	F("downWindowSeconds", rule_down_ms, 'm'),
	F("holdSeconds", rule_hold_ms, 'm'),
	F("earlyCheck", rule_early, 'b'),
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

static json_t *policy_json(const struct policy *p)
{
	json_t *o = json_pack("{s:s}", "profile", p->profile);

	for (size_t i = 0; i < sizeof(num_fields) / sizeof(num_fields[0]); i++) {
		const struct num_field *nf = &num_fields[i];
		const char *at = (const char *)p + nf->offset;
		json_t *v = NULL;

		switch (nf->type) {
		case 'u': v = json_integer(*(const uint32_t *)at); break;
		case 'd': {
			double x;

			memcpy(&x, at, sizeof(x));
			v = json_real(x);
			break;
		}
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

/* Reads a stored policy over the profile's defaults; members the record
 * lacks keep them. Returns 0, or MDS_E_INVAL with why in diag. */
static int policy_load(json_t *o, struct policy *p, char *diag,
		       size_t diagsz)
{
	const char *profile = json_string_value(json_object_get(o, "profile"));
	json_t *v;

	if (profile == NULL || policy_profile(profile, p) != 0)
		policy_default(p);
	for (size_t i = 0; i < sizeof(num_fields) / sizeof(num_fields[0]); i++) {
		const struct num_field *nf = &num_fields[i];
		char *at = (char *)p + nf->offset;

		v = json_object_get(o, nf->name);
		if (nf->type == 'b' && json_is_boolean(v))
			*(bool *)at = json_is_true(v);
		else if (nf->type == 'u' && json_is_integer(v))
			*(uint32_t *)at = (uint32_t)json_integer_value(v);
		else if (nf->type == 'd' && json_is_number(v))
			memcpy(at, &(double){ json_number_value(v) },
			       sizeof(double));
		else if (nf->type == 'm' && json_is_integer(v))
			*(int64_t *)at = json_integer_value(v) * 1000;
	}
	for (size_t i = 0; i < sizeof(str_fields) / sizeof(str_fields[0]); i++) {
		v = json_object_get(o, str_fields[i].name);
		if (json_is_string(v))
			snprintf((char *)p + str_fields[i].offset,
				 str_fields[i].size, "%s",
				 json_string_value(v));
	}
	return policy_validate(p, diag, diagsz);
}

/* ---- the configuration in the store ---- */

/* The configuration as the store keeps it: the policy's fields and
 * "shapes". A new reference. */
json_t *autoscale_record_config_json(const struct autoscale_config *c)
{
	json_t *o = policy_json(&c->policy), *names = json_array();

	for (size_t i = 0; i < c->nshapes; i++)
		json_array_append_new(names, json_string(c->shapes[i]));
	json_object_set_new(o, "shapes", names);
	return o;
}

/* Reads a stored configuration into c; the default profile when it is
 * unreadable. */
static void stored_config(json_t *o, struct autoscale_config *c,
			const char *whose)
{
	char why[200];
	size_t i;
	json_t *v;

	memset(c, 0, sizeof(*c));
	if (policy_load(o, &c->policy, why, sizeof(why)) != 0) {
		log_warn("autoscale", "%s: stored policy unreadable: %s",
			 whose, why);
		policy_default(&c->policy);
	}
	json_array_foreach(json_object_get(o, "shapes"), i, v) {
		if (c->nshapes < SHAPE_LADDER_MAX && json_is_string(v))
			snprintf(c->shapes[c->nshapes++], sizeof(c->shapes[0]),
				 "%s", json_string_value(v));
	}
}

/* The default configuration: the user's, else the default profile. */
static void default_config(struct autoscale *a, struct autoscale_config *c)
{
	char *text = NULL;
	json_t *o;

	memset(c, 0, sizeof(*c));
	policy_default(&c->policy);
	if (store_get(a->env.store, KIND_CONFIG, CONFIG_DEFAULT, &text) != 0)
		return;
	o = json_loads(text, 0, NULL);
	free(text);
	if (json_is_object(o))
		stored_config(o, c, "the default configuration");
	json_decref(o);
}

/* ---- the per-deployment record ---- */

bool autoscale_record_load(struct autoscale *a, const char *dep_id,
			   struct record *r)
{
	char *text = NULL;
	json_t *o, *v;
	size_t i;

	memset(r, 0, sizeof(*r));
	default_config(a, &r->cfg);
	if (store_get(a->env.store, KIND, dep_id, &text) != 0)
		return false;
	o = json_loads(text, 0, NULL);
	free(text);
	if (o == NULL)
		return true;
	if (json_is_object(json_object_get(o, "policy"))) {
		stored_config(json_object_get(o, "policy"), &r->cfg, dep_id);
		r->own_config = true;
	}
	r->hist.last_out_ms = json_integer_value(json_object_get(o, "lastOutMs"));
	r->hist.last_in_ms = json_integer_value(json_object_get(o, "lastInMs"));
	r->hist.last_up_ms = json_integer_value(json_object_get(o, "lastUpMs"));
	r->hist.last_down_ms =
		json_integer_value(json_object_get(o, "lastDownMs"));
	snprintf(r->topic, sizeof(r->topic), "%s",
		 jsonx_str(o, "topicId", ""));
	snprintf(r->subscription, sizeof(r->subscription), "%s",
		 jsonx_str(o, "subscriptionId", ""));
	json_array_foreach(json_object_get(o, "createdAlarmIds"), i, v) {
		if (r->nalarms < OWN_ALARMS_MAX && json_is_string(v))
			snprintf(r->alarms[r->nalarms++], sizeof(r->alarms[0]),
				 "%s", json_string_value(v));
	}
	r->set_up = json_is_true(json_object_get(o, "setUp"));
	json_decref(o);
	return true;
}

static json_t *record_json(const char *dep_id, const struct record *r)
{
	json_t *alarms = json_array();
	json_t *o;

	for (size_t i = 0; i < r->nalarms; i++)
		json_array_append_new(alarms, json_string(r->alarms[i]));
	o = json_pack("{s:s, s:b, s:s, s:s, s:o, s:I, s:I, s:I, s:I}",
		      "deploymentId", dep_id, "setUp", r->set_up, "topicId",
		      r->topic, "subscriptionId", r->subscription,
		      "createdAlarmIds", alarms, "lastOutMs",
		      (json_int_t)r->hist.last_out_ms, "lastInMs",
		      (json_int_t)r->hist.last_in_ms, "lastUpMs",
		      (json_int_t)r->hist.last_up_ms, "lastDownMs",
		      (json_int_t)r->hist.last_down_ms);
	if (r->own_config)
		json_object_set_new(o, "policy",
				    autoscale_record_config_json(&r->cfg));
	return o;
}

int autoscale_record_save(struct autoscale *a, const char *dep_id,
			  const struct record *r)
{
	json_t *o = record_json(dep_id, r);
	char *s = json_dumps(o, JSON_COMPACT);
	int rc = store_put(a->env.store, KIND, dep_id, s);

	if (rc != 0)
		log_error("autoscale", "cannot save the record of %s", dep_id);
	free(s);
	json_decref(o);
	return rc;
}

int autoscale_record_forget(struct autoscale *a, const char *dep_id)
{
	return store_delete(a->env.store, KIND, dep_id);
}

void autoscale_record_add_alarm(struct record *r, const char *id)
{
	if (r->nalarms < OWN_ALARMS_MAX)
		snprintf(r->alarms[r->nalarms++], sizeof(r->alarms[0]), "%s",
			 id);
}

void autoscale_record_drop_alarm(struct record *r, const char *id)
{
	for (size_t i = 0; i < r->nalarms; i++)
		if (strcmp(r->alarms[i], id) == 0) {
			memmove(r->alarms[i], r->alarms[i + 1],
				(r->nalarms - i - 1) * sizeof(r->alarms[0]));
			r->nalarms--;
			return;
		}
}

/* ---- the scaling history ---- */

void autoscale_record_decision(struct autoscale *a, const char *dep_id,
			       json_t *entry, int64_t t)
{
	char *s = json_dumps(entry, JSON_COMPACT);

	if (store_event_add(a->env.store, HISTORY, dep_id, t, s) != 0)
		log_error("autoscale", "cannot record a decision on %s",
			  dep_id);
	free(s);
}

struct hist_walk {
	void (*fn)(void *arg, const char *decision);
	void *arg;
};

static int each_decision(void *arg, const char *ref, const char *json)
{
	struct hist_walk *w = arg;

	(void)ref;
	w->fn(w->arg, json);
	return 0;
}

int autoscale_history_each(struct autoscale *a, const char *deployment_id,
			   void (*fn)(void *arg, const char *decision),
			   void *arg, struct fault *f)
{
	char id[DEPLOY_ID_MAX];
	struct hist_walk w = { fn, arg };

	if (deploy_resolve(a->env.deploy, deployment_id, id, f) != 0)
		return f->err;
	store_event_each(a->env.store, HISTORY, id, 0, HISTORY_KEPT,
			 each_decision, &w);
	return 0;
}

/* ---- the configuration ---- */

int autoscale_config_get(struct autoscale *a, const char *deployment_id,
			 struct autoscale_config_view *out, struct fault *f)
{
	char id[DEPLOY_ID_MAX];
	struct record r;

	memset(out, 0, sizeof(*out));
	if (deployment_id == NULL) {
		default_config(a, &out->config);
		return 0;
	}
	if (deploy_resolve(a->env.deploy, deployment_id, id, f) != 0)
		return f->err;
	snprintf(out->deployment_id, sizeof(out->deployment_id), "%s", id);
	autoscale_record_load(a, out->deployment_id, &r);
	out->own = r.own_config;
	out->config = r.cfg;
	return 0;
}

int autoscale_check_floor(struct autoscale *a, const char *dep_id,
			  const struct policy *p, struct fault *f)
{
	if (p->min_instances != 0)
		return 0;
	return deploy_check_idle_zero(a->env.deploy, dep_id, "minInstances",
				      true, f);
}

int autoscale_config_check(struct autoscale *a, const char *deployment_id,
			   const struct autoscale_config *c, struct fault *f)
{
	char why[200], id[DEPLOY_ID_MAX];

	if (policy_validate(&c->policy, why, sizeof(why)) != 0)
		return fault_set(f, MDS_E_INVAL, "", "%s", why);
	if (autoscale_config_check_shapes(&a->env.config->shapes, c, why,
					  sizeof(why)) != 0)
		return fault_set(f, MDS_E_INVAL, "shapes", "%s", why);
	if (deployment_id == NULL)
		return 0;
	if (deploy_resolve(a->env.deploy, deployment_id, id, f) != 0)
		return f->err;
	return autoscale_check_floor(a, id, &c->policy, f);
}

int autoscale_config_set(struct autoscale *a, const char *deployment_id,
			 const struct autoscale_config *c, struct fault *f)
{
	struct record r;
	char id[DEPLOY_ID_MAX];
	json_t *o;
	char *text;
	int rc;

	if (autoscale_config_check(a, deployment_id, c, f) != 0)
		return f->err;
	if (deployment_id == NULL) {
		o = autoscale_record_config_json(c);
		text = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		rc = store_put(a->env.store, KIND_CONFIG, CONFIG_DEFAULT, text);
		free(text);
		if (rc != 0)
			return fault_set(f, rc, "", "cannot store the "
					 "configuration: %s", mds_strerror(rc));
		return 0;
	}
	if (deploy_resolve(a->env.deploy, deployment_id, id, f) != 0)
		return f->err;
	autoscale_record_load(a, id, &r);
	r.cfg = *c;
	r.own_config = true;
	rc = autoscale_record_save(a, id, &r);
	if (rc != 0)
		return fault_set(f, rc, "", "cannot store the configuration: "
				 "%s", mds_strerror(rc));
	return 0;
}

int autoscale_config_reset(struct autoscale *a, const char *deployment_id,
			   struct fault *f)
{
	struct record r;
	char id[DEPLOY_ID_MAX];
	int rc;

	if (deploy_resolve(a->env.deploy, deployment_id, id, f) != 0)
		return f->err;
	autoscale_record_load(a, id, &r);
	r.own_config = false;
	rc = autoscale_record_save(a, id, &r);
	if (rc != 0)
		return fault_set(f, rc, "", "cannot store the configuration: "
				 "%s", mds_strerror(rc));
	return 0;
}

int autoscale_get(struct autoscale *a, const char *deployment_id,
		  struct autoscale_state *out, struct fault *f)
{
	char id[DEPLOY_ID_MAX];
	struct record r;

	if (deploy_resolve(a->env.deploy, deployment_id, id, f) != 0)
		return f->err;
	autoscale_record_load(a, id, &r);
	memset(out, 0, sizeof(*out));
	snprintf(out->deployment_id, sizeof(out->deployment_id), "%s", id);
	out->policy = r.cfg.policy;
	out->own_config = r.own_config;
	out->set_up = r.set_up;
	snprintf(out->topic_id, sizeof(out->topic_id), "%s", r.topic);
	snprintf(out->subscription_id, sizeof(out->subscription_id), "%s",
		 r.subscription);
	out->hist = r.hist;
	return 0;
}
