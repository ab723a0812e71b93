/*
 * autoscale.c - the built-in autoscale function; see autoscale.h.
 *
 * The decision is core/policy.c; this file reads the message, gathers the
 * inputs (the deployment, the metric now, the policy and when each move
 * last happened), carries the decision out, and writes it down.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/autoscale.h"
#include "deploy/deploy.h"
#include "notify/functions.h"
#include "monitoring/monitoring.h"
#include "notify/notifications.h"
#include "store/store.h"
#include "util/ids.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

#define KIND "autoscale"
#define HISTORY "scaling"
#define HISTORY_KEPT 1000

struct autoscale {
	struct autoscale_env env;
};

/* Returns the string member key of o, or NULL. */
static const char *jpath_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Returns the string member key of o, or "". */
static const char *jstr(json_t *o, const char *key)
{
	const char *s = jpath_str(o, key);

	return s ? s : "";
}

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

static json_t *policy_json(const struct policy *p)
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

int autoscale_policy_parse(json_t *spec, struct policy *p, struct fault *f)
{
	const char *key, *profile = "default";
	char why[200];
	json_t *v;

	if (json_is_true(spec)) {
		policy_default(p);
		return 0;
	}
	if (!json_is_object(spec))
		return fault_set(f, MDS_E_INVAL, "autoscale",
				 "autoscale: true, or an object with a "
				 "profile and overrides");
	v = json_object_get(spec, "profile");
	if (v != NULL)
		profile = json_string_value(v) ? json_string_value(v) : "";
	if (strcmp(profile, "default") == 0)
		policy_default(p);
	else if (strcmp(profile, "recipe") == 0)
		policy_recipe(p);
	else
		return fault_set(f, MDS_E_INVAL, "autoscale.profile",
				 "autoscale.profile: 'default' or 'recipe'");
	json_object_foreach(spec, key, v) {
		bool known = strcmp(key, "profile") == 0;

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
	if (policy_validate(p, why, sizeof(why)) != 0)
		return fault_set(f, MDS_E_INVAL, "autoscale", "autoscale: %s",
				 why);
	return 0;
}

/* ---- the per-deployment record ---- */

struct record {
	struct policy policy;
	struct policy_history hist;
	char topic[64], subscription[64];
	bool set_up; /* autoscale_setup() made the topic and alarms */
};

static void load_record(struct autoscale *a, const char *dep_id,
			struct record *r)
{
	char *text = NULL;
	json_t *o;
	struct fault f;

	memset(r, 0, sizeof(*r));
	policy_default(&r->policy);
	if (store_get(a->env.store, KIND, dep_id, &text) != 0)
		return;
	o = json_loads(text, 0, NULL);
	free(text);
	if (o == NULL)
		return;
	if (autoscale_policy_parse(json_object_get(o, "policy"), &r->policy,
				   &f) != 0)
		log_warn("autoscale", "%s: stored policy unreadable: %s",
			 dep_id, f.message);
	r->hist.last_out_ms = json_integer_value(json_object_get(o, "lastOutMs"));
	r->hist.last_in_ms = json_integer_value(json_object_get(o, "lastInMs"));
	r->hist.last_up_ms = json_integer_value(json_object_get(o, "lastUpMs"));
	r->hist.last_down_ms =
		json_integer_value(json_object_get(o, "lastDownMs"));
	snprintf(r->topic, sizeof(r->topic), "%s",
		 jstr(o, "topicId"));
	snprintf(r->subscription, sizeof(r->subscription), "%s",
		 jstr(o, "subscriptionId"));
	r->set_up = json_is_true(json_object_get(o, "setUp"));
	json_decref(o);
}

static json_t *record_json(const char *dep_id, const struct record *r)
{
	return json_pack("{s:s, s:o, s:b, s:s, s:s, s:I, s:I, s:I, s:I}",
			 "deploymentId", dep_id, "policy",
			 policy_json(&r->policy), "setUp", r->set_up,
			 "topicId", r->topic, "subscriptionId",
			 r->subscription, "lastOutMs",
			 (json_int_t)r->hist.last_out_ms, "lastInMs",
			 (json_int_t)r->hist.last_in_ms, "lastUpMs",
			 (json_int_t)r->hist.last_up_ms, "lastDownMs",
			 (json_int_t)r->hist.last_down_ms);
}

static void save_record(struct autoscale *a, const char *dep_id,
			const struct record *r)
{
	json_t *o = record_json(dep_id, r);
	char *s = json_dumps(o, JSON_COMPACT);

	if (store_put(a->env.store, KIND, dep_id, s) != 0)
		log_error("autoscale", "cannot save the policy of %s", dep_id);
	free(s);
	json_decref(o);
}

/* ---- alarms ---- */

static json_t *alarm_spec(const char *title, const char *metric,
			  const char *window, const char *stat,
			  const char *dep_id, const char *op, double threshold,
			  const char *pending, const char *repeat,
			  const char *severity, json_t *destinations,
			  const char *body)
{
	json_t *o = json_pack(
		"{s:s, s:s, s:o, s:s, s:s, s:s, s:O, s:s, s:s, s:b}",
		"displayName", title, "namespace", MONITORING_NAMESPACE,
		"query",
		json_sprintf("%s[%s]{resourceId = \"%s\"}.%s() %s %g", metric,
			     window, dep_id, stat, op, threshold),
		"severity", severity, "pendingDuration", pending,
		"repeatNotificationDuration", repeat, "destinations",
		destinations, "body", body, "messageFormat", "ONS_OPTIMIZED",
		"isEnabled", 1);

	return o;
}

/* Creates the scale-down twin of a firing alarm, unless one exists for the
 * deployment. Copies the id of the alarm (new or found) into id and returns
 * 0; MDS_E_NOTFOUND (nothing made) when the firing alarm is not one of
 * mdscale's own. */
static int ensure_low_alarm(struct autoscale *a, const char *which,
			    const char *dep_id, const char *firing_alarm_id,
			    const struct policy *p, char *id, size_t idsz,
			    bool *created)
{
	bool cpu = strcmp(which, "cpu") == 0;
	const char *title = cpu ? POLICY_TITLE_LOW_CPU : POLICY_TITLE_LOW_MEM;
	json_t *firing, *spec, *out = NULL, *dest;
	const char *severity = "INFO";
	struct fault f;
	int rc;

	*created = false;
	if (monitoring_alarm_find(a->env.monitoring, title, dep_id, id, idsz) ==
	    0)
		return 0;
	firing = monitoring_alarm_get(a->env.monitoring, firing_alarm_id, &f);
	if (firing == NULL) {
		/* Not one of mdscale's alarms (a Prometheus rule through
		 * Alertmanager, say): its scale-down rule lives where it
		 * does, and a twin here would have nowhere to send. */
		log_info("autoscale", "%s is not an alarm of mdscale: no %s "
			 "for %s", firing_alarm_id, title, dep_id);
		return MDS_E_NOTFOUND;
	}
	dest = json_object_get(firing, "destinations");
	if (json_is_string(json_object_get(firing, "severity")))
		severity = json_string_value(json_object_get(firing,
							     "severity"));
	dest = dest ? json_incref(dest) : json_array();
	spec = alarm_spec(title, cpu ? "CpuUtilization" : "MemoryUtilization",
			  p->low_window, p->low_statistic, dep_id, "<",
			  cpu ? p->cpu_low : p->mem_low, p->low_pending,
			  p->low_repeat, severity, dest,
			  cpu ? "Low cpu for model deployment. Instances can "
				"be scaled down to reduce costs"
			      : "Low memory for model deployment. The shape "
				"can be scaled down to reduce costs");
	json_decref(dest);
	rc = monitoring_alarm_create(a->env.monitoring, spec, &out, &f);
	json_decref(spec);
	json_decref(firing);
	if (rc != 0) {
		log_warn("autoscale", "cannot create %s for %s: %s", title,
			 dep_id, f.message);
		return rc;
	}
	snprintf(id, idsz, "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);
	*created = true;
	return 0;
}

/* ---- the function ---- */


static void record_decision(struct autoscale *a, const char *dep_id,
			    json_t *entry)
{
	char *s = json_dumps(entry, JSON_COMPACT);
	int64_t t = ids_now_ms();

	store_event_add(a->env.store, HISTORY, dep_id, t, s);
	free(s);
}

/* Replies through done with a JSON result, and logs it. */
static void finish(functions_done_fn *done, void *arg, int err, json_t *res,
		   const char *msg)
{
	char *s = res ? json_dumps(res, JSON_COMPACT) : NULL;

	if (err != 0)
		log_warn("autoscale", "refused: %s", msg);
	else
		log_info("autoscale", "%s", s);
	done(arg, err, s, msg);
	free(s);
	json_decref(res);
}

static void invoke(void *ctx, const char *message, size_t len,
		   functions_done_fn *done, void *arg)
{
	struct autoscale *a = ctx;
	json_t *msg, *meta, *dims, *dep = NULL, *res = NULL, *upd, *wr = NULL;
	const char *type, *title, *alarm_id, *dep_id, *state, *shape;
	char reason[320], low_id[64] = "", errbuf[300];
	struct policy_input in;
	struct policy_decision dec;
	struct record rec;
	struct fault f;
	json_error_t jerr;
	double value = NAN;
	bool created = false;
	int rc;

	msg = json_loadb(message, len, 0, &jerr);
	if (!json_is_object(msg)) {
		snprintf(errbuf, sizeof(errbuf), "the message is not a JSON "
			 "object: %s", msg ? "" : jerr.text);
		json_decref(msg);
		finish(done, arg, MDS_E_INVAL, NULL, errbuf);
		return;
	}
	type = jpath_str(msg, "type");
	title = jpath_str(msg, "title");
	meta = json_array_get(json_object_get(msg, "alarmMetaData"), 0);
	dims = json_array_get(json_object_get(meta, "dimensions"), 0);
	alarm_id = jpath_str(meta, "id");
	dep_id = jpath_str(dims, "resourceId");
	if (type == NULL || title == NULL || !json_is_object(meta) ||
	    alarm_id == NULL || dep_id == NULL) {
		snprintf(errbuf, sizeof(errbuf), "the message has no %s",
			 type == NULL ? "type"
			 : title == NULL ? "title"
			 : !json_is_object(meta) ? "alarmMetaData[0]"
			 : alarm_id == NULL ? "alarmMetaData[0].id"
					    : "alarmMetaData[0].dimensions[0]"
					      ".resourceId");
		json_decref(msg);
		finish(done, arg, MDS_E_INVAL, NULL, errbuf);
		return;
	}
	if (strcmp(type, "OK_TO_FIRING") != 0 && strcmp(type, "REPEAT") != 0) {
		res = json_pack("{s:s, s:s, s:s}", "action", "NONE",
				"deploymentId", dep_id, "reason", "");
		snprintf(reason, sizeof(reason), "message type %s: only "
			 "OK_TO_FIRING and REPEAT act", type);
		json_object_set_new(res, "reason", json_string(reason));
		json_decref(msg);
		finish(done, arg, 0, res, NULL);
		return;
	}
	dep = deploy_get(a->env.deploy, dep_id, &f);
	if (dep == NULL) {
		snprintf(errbuf, sizeof(errbuf), "no deployment '%s'", dep_id);
		json_decref(msg);
		finish(done, arg, MDS_E_NOTFOUND, NULL, errbuf);
		return;
	}
	dep_id = jpath_str(dep, "id");
	state = jpath_str(dep, "lifecycleState");
	shape = jpath_str(dep, "instanceShapeName");
	load_record(a, dep_id, &rec);
	if (strcmp(title, POLICY_TITLE_HIGH_MEM) == 0 ||
	    strcmp(title, POLICY_TITLE_LOW_MEM) == 0)
		monitoring_latest(a->env.monitoring, "MemoryUtilization",
				  dep_id, 10000, &value);
	else
		monitoring_latest(a->env.monitoring, "CpuUtilization", dep_id,
				  10000, &value);
	in = (struct policy_input){
		.type = type, .title = title, .lifecycle_state = state,
		.instance_count = (uint32_t)json_integer_value(
			json_object_get(dep, "instanceCount")),
		.shape = shape, .ladder = &a->env.config->shapes,
		.value = value, .now_ms = ids_now_ms(),
	};
	rc = policy_decide(&rec.policy, &rec.hist, &in, &dec);
	if (rc != 0) {
		json_decref(msg);
		json_decref(dep);
		finish(done, arg, rc, NULL, dec.reason);
		return;
	}
	res = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:{s:i, s:s}}",
			"action", policy_move_name(dec.move), "deploymentId",
			dep_id, "alarmId", alarm_id, "alarmTitle", title,
			"messageType", type, "value",
			isnan(value) ? json_null() : json_real(value), "from",
			"instanceCount", (int)in.instance_count,
			"instanceShapeName", shape);
	if (dec.move != POLICY_NONE) {
		upd = dec.move == POLICY_SCALE_OUT || dec.move == POLICY_SCALE_IN
			      ? json_pack("{s:i}", "instanceCount",
					  (int)dec.new_count)
			      : json_pack("{s:s}", "instanceShapeName",
					  dec.new_shape);
		rc = deploy_update(a->env.deploy, dep_id, upd, &wr, &f);
		json_decref(upd);
		if (rc != 0) {
			snprintf(dec.reason, sizeof(dec.reason),
				 "the update was refused: %.200s", f.message);
			json_object_set_new(res, "action", json_string("NONE"));
			dec.move = POLICY_NONE;
			dec.create_low_alarm = NULL;
			dec.delete_alarm = false;
		} else {
			json_object_set_new(
				res, "workRequestId",
				json_string(jstr(wr, "id")));
			json_object_set_new(res, "to",
					    json_pack("{s:i, s:s}",
						      "instanceCount",
						      (int)dec.new_count,
						      "instanceShapeName",
						      dec.new_shape));
			json_decref(wr);
			if (dec.move == POLICY_SCALE_OUT)
				rec.hist.last_out_ms = in.now_ms;
			else if (dec.move == POLICY_SCALE_IN)
				rec.hist.last_in_ms = in.now_ms;
			else if (dec.move == POLICY_SHAPE_UP)
				rec.hist.last_up_ms = in.now_ms;
			else
				rec.hist.last_down_ms = in.now_ms;
			save_record(a, dep_id, &rec);
		}
	}
	if (dec.create_low_alarm != NULL &&
	    ensure_low_alarm(a, dec.create_low_alarm, dep_id, alarm_id,
			     &rec.policy, low_id, sizeof(low_id),
			     &created) == 0)
		json_object_set_new(res, created ? "createdAlarmId"
						 : "existingAlarmId",
				    json_string(low_id));
	if (dec.delete_alarm &&
	    (strcmp(title, POLICY_TITLE_LOW_CPU) == 0 ||
	     strcmp(title, POLICY_TITLE_LOW_MEM) == 0) &&
	    monitoring_alarm_delete(a->env.monitoring, alarm_id, &f) == 0) {
		json_object_set_new(res, "deletedAlarmId",
				    json_string(alarm_id));
	}
	json_object_set_new(res, "reason", json_string(dec.reason));
	json_object_set_new(res, "time", json_integer(in.now_ms));
	record_decision(a, dep_id, res);
	json_decref(msg);
	json_decref(dep);
	finish(done, arg, 0, res, NULL);
}

/* ---- set-up and tear-down ---- */

static void undo(struct autoscale *a, struct record *r, const char *alarms[],
		 size_t nalarms)
{
	struct fault f;

	for (size_t i = 0; i < nalarms; i++)
		monitoring_alarm_delete(a->env.monitoring, alarms[i], &f);
	if (r->subscription[0])
		notifications_subscription_delete(a->env.notifications,
						  r->subscription, &f);
	if (r->topic[0])
		notifications_topic_delete(a->env.notifications, r->topic, &f);
}

int autoscale_setup(struct autoscale *a, const char *deployment_id,
		    const struct policy *p, json_t **out, struct fault *f)
{
	struct record r;
	json_t *o = NULL, *spec, *dest, *ids = json_array();
	char *alarm_ids[2] = { NULL, NULL };
	const char *undo_ids[2];
	size_t nalarms = 0;
	int rc;

	memset(&r, 0, sizeof(r));
	r.policy = *p;
	spec = json_pack("{s:s, s:s}", "name", "", "description",
			 "autoscale messages of a deployment");
	json_object_set_new(spec, "name",
			    json_sprintf("autoscale-%s", deployment_id));
	rc = notifications_topic_create(a->env.notifications, spec, &o, f);
	json_decref(spec);
	if (rc != 0)
		goto fail;
	snprintf(r.topic, sizeof(r.topic), "%s", jpath_str(o, "topicId"));
	json_decref(o);
	spec = json_pack("{s:s, s:s, s:s}", "topicId", r.topic, "protocol",
			 "FUNCTION", "endpoint", "autoscale");
	rc = notifications_subscription_create(a->env.notifications, spec, &o,
					       f);
	json_decref(spec);
	if (rc != 0)
		goto fail;
	snprintf(r.subscription, sizeof(r.subscription), "%s",
		 jpath_str(o, "id"));
	json_decref(o);
	for (int k = 0; k < 2; k++) {
		dest = json_pack("[s]", r.topic);
		spec = k == 0 ? alarm_spec(POLICY_TITLE_HIGH_CPU,
					   "CpuUtilization", p->high_window,
					   p->high_statistic, deployment_id,
					   ">", p->cpu_high, p->high_pending,
					   p->high_repeat, "INFO", dest,
					   "High cpu for model deployment")
			      : alarm_spec(POLICY_TITLE_HIGH_MEM,
					   "MemoryUtilization", p->high_window,
					   p->high_statistic, deployment_id,
					   ">", p->mem_high, p->high_pending,
					   p->high_repeat, "INFO", dest,
					   "High memory for model deployment");
		json_decref(dest);
		rc = monitoring_alarm_create(a->env.monitoring, spec, &o, f);
		json_decref(spec);
		if (rc != 0)
			goto fail;
		alarm_ids[nalarms] = xstrdup(jpath_str(o, "id"));
		undo_ids[nalarms] = alarm_ids[nalarms];
		nalarms++;
		json_array_append(ids, json_object_get(o, "id"));
		json_decref(o);
	}
	r.set_up = true;
	save_record(a, deployment_id, &r);
	*out = json_pack("{s:o, s:s, s:s, s:o}", "policy", policy_json(p),
			 "topicId", r.topic, "subscriptionId", r.subscription,
			 "alarmIds", ids);
	for (size_t i = 0; i < nalarms; i++)
		free(alarm_ids[i]);
	return 0;
fail:
	undo(a, &r, undo_ids, nalarms);
	for (size_t i = 0; i < nalarms; i++)
		free(alarm_ids[i]);
	json_decref(ids);
	return rc;
}

void autoscale_teardown(struct autoscale *a, const char *deployment_id)
{
	static const char *const titles[] = {
		POLICY_TITLE_HIGH_CPU, POLICY_TITLE_LOW_CPU,
		POLICY_TITLE_HIGH_MEM, POLICY_TITLE_LOW_MEM };
	struct record r;
	struct fault f;
	char id[64];

	load_record(a, deployment_id, &r);
	for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]); i++)
		while (monitoring_alarm_find(a->env.monitoring, titles[i],
					     deployment_id, id,
					     sizeof(id)) == 0 &&
		       monitoring_alarm_delete(a->env.monitoring, id, &f) == 0)
			;
	undo(a, &r, NULL, 0);
	store_delete(a->env.store, KIND, deployment_id);
}

struct hist_walk {
	json_t *items;
};

static int collect(void *arg, const char *ref, const char *json)
{
	struct hist_walk *w = arg;
	json_t *o = json_loads(json, 0, NULL);

	(void)ref;
	if (o != NULL)
		json_array_append_new(w->items, o);
	return 0;
}

json_t *autoscale_history(struct autoscale *a, const char *deployment_id,
			  struct fault *f)
{
	json_t *dep = deploy_get(a->env.deploy, deployment_id, f);
	struct hist_walk w = { json_array() };

	if (dep == NULL) {
		json_decref(w.items);
		return NULL;
	}
	store_event_each(a->env.store, HISTORY, jpath_str(dep, "id"), 0,
			 HISTORY_KEPT, collect, &w);
	json_decref(dep);
	return json_pack("{s:o}", "items", w.items);
}

json_t *autoscale_get(struct autoscale *a, const char *deployment_id,
		      struct fault *f)
{
	json_t *dep = deploy_get(a->env.deploy, deployment_id, f), *o;
	struct record r;

	if (dep == NULL)
		return NULL;
	load_record(a, jpath_str(dep, "id"), &r);
	o = record_json(jpath_str(dep, "id"), &r);
	json_decref(dep);
	return o;
}

int autoscale_open(const struct autoscale_env *env, struct autoscale **out,
		   char *diag, size_t diagsz)
{
	struct autoscale *a = xcalloc(1, sizeof(*a));

	(void)diag;
	(void)diagsz;
	a->env = *env;
	functions_register_builtin(env->functions, "autoscale",
				   "scales a deployment on an OCI alarm message "
				   "(model_deployment_high_cpu, _low_cpu, "
				   "_high_mem, _low_mem)",
				   invoke, a);
	*out = a;
	return 0;
}

void autoscale_close(struct autoscale *a)
{
	free(a);
}
