/*
 * autoscale.c - the built-in autoscale function; see autoscale.h.
 *
 * The decision is core/policy.c; this file reads the message, gathers the
 * inputs (the deployment, the metric now, the policy and when each move
 * last happened), carries the decision out, and writes it down.
 */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/autoscale.h"
#include "core/iso8601.h"
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

	if (profile != NULL && strcmp(profile, "recipe") == 0)
		policy_recipe(p);
	else
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
	char *text = NULL, why[200];
	json_t *o;

	memset(r, 0, sizeof(*r));
	policy_default(&r->policy);
	if (store_get(a->env.store, KIND, dep_id, &text) != 0)
		return;
	o = json_loads(text, 0, NULL);
	free(text);
	if (o == NULL)
		return;
	if (policy_load(json_object_get(o, "policy"), &r->policy, why,
			sizeof(why)) != 0) {
		log_warn("autoscale", "%s: stored policy unreadable: %s",
			 dep_id, why);
		policy_default(&r->policy);
	}
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

/* An alarm of the policy, as monitoring takes it; its query is written
 * into query (qsz bytes), which the spec borrows, as it does the other
 * strings. The severity and destinations are the caller's to set. */
static void alarm_spec(struct monitoring_alarm_spec *s, char *query,
		       size_t qsz, const char *title, const char *metric,
		       const char *window, const char *stat,
		       const char *dep_id, const char *op, double threshold,
		       const char *pending, const char *repeat,
		       const char *body)
{
	snprintf(query, qsz, "%s[%s]{resourceId = \"%s\"}.%s() %s %g", metric,
		 window, dep_id, stat, op, threshold);
	*s = (struct monitoring_alarm_spec){
		.given = MONITORING_ALARM_DISPLAY_NAME |
			 MONITORING_ALARM_NAMESPACE | MONITORING_ALARM_QUERY |
			 MONITORING_ALARM_SEVERITY | MONITORING_ALARM_PENDING |
			 MONITORING_ALARM_REPEAT |
			 MONITORING_ALARM_DESTINATIONS | MONITORING_ALARM_BODY |
			 MONITORING_ALARM_FORMAT | MONITORING_ALARM_ENABLED,
		.display_name = title,
		.namespace = MONITORING_NAMESPACE,
		.query = query,
		.severity = ALARM_INFO,
		.body = body,
		.message_format = ALARM_FORMAT_ONS_OPTIMIZED,
		.is_enabled = true,
	};
	/* The policy's timings were checked when it was set. */
	iso8601_duration_parse(pending, &s->pending_ms, NULL, 0);
	iso8601_duration_parse(repeat, &s->repeat_ms, NULL, 0);
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
	struct monitoring_alarm_spec spec;
	struct monitoring_alarm firing, out;
	char query[MQL_MAX_QUERY + 1];
	struct fault f;
	int rc;

	*created = false;
	if (monitoring_alarm_find(a->env.monitoring, title, dep_id, id, idsz) ==
	    0)
		return 0;
	if (monitoring_alarm_get(a->env.monitoring, firing_alarm_id, &firing,
				 &f) != 0) {
		/* Not one of mdscale's alarms (a Prometheus rule through
		 * Alertmanager, say): its scale-down rule lives where it
		 * does, and a twin here would have nowhere to send. */
		log_info("autoscale", "%s is not an alarm of mdscale: no %s "
			 "for %s", firing_alarm_id, title, dep_id);
		return MDS_E_NOTFOUND;
	}
	alarm_spec(&spec, query, sizeof(query), title,
		   cpu ? "CpuUtilization" : "MemoryUtilization",
		   p->low_window, p->low_statistic, dep_id, "<",
		   cpu ? p->cpu_low : p->mem_low, p->low_pending, p->low_repeat,
		   cpu ? "Low cpu for model deployment. Instances can be "
			 "scaled down to reduce costs"
		       : "Low memory for model deployment. The shape can be "
			 "scaled down to reduce costs");
	/* The twin tells the same topics, as severely. */
	spec.severity = firing.severity;
	spec.destinations = firing.destinations;
	spec.ndestinations = firing.ndestinations;
	rc = monitoring_alarm_create(a->env.monitoring, &spec, &out, &f);
	if (rc != 0) {
		log_warn("autoscale", "cannot create %s for %s: %s", title,
			 dep_id, f.message);
		return rc;
	}
	snprintf(id, idsz, "%s", out.id);
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
	json_t *msg, *meta, *dims, *res = NULL;
	struct deploy_view *dep;
	struct deploy_change change;
	const char *type, *title, *alarm_id, *dep_id, *state, *shape;
	char reason[320], low_id[64] = "", errbuf[300], wr[DEPLOY_ID_MAX];
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
	dep = deploy_view_new(a->env.deploy, dep_id, &f);
	if (dep == NULL) {
		snprintf(errbuf, sizeof(errbuf), "no deployment '%s'", dep_id);
		json_decref(msg);
		finish(done, arg, MDS_E_NOTFOUND, NULL, errbuf);
		return;
	}
	dep_id = dep->id;
	state = dep->state;
	shape = dep->shape;
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
		.instance_count = dep->count,
		.shape = shape, .ladder = &a->env.config->shapes,
		.value = value, .now_ms = ids_now_ms(),
	};
	rc = policy_decide(&rec.policy, &rec.hist, &in, &dec);
	if (rc != 0) {
		json_decref(msg);
		deploy_view_free(dep);
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
		memset(&change, 0, sizeof(change));
		if (dec.move == POLICY_SCALE_OUT ||
		    dec.move == POLICY_SCALE_IN) {
			change.has_count = true;
			change.count = dec.new_count;
		} else {
			change.shape = dec.new_shape;
		}
		rc = deploy_change(a->env.deploy, dep_id, &change, wr, &f);
		if (rc != 0) {
			snprintf(dec.reason, sizeof(dec.reason),
				 "the update was refused: %.200s", f.message);
			json_object_set_new(res, "action", json_string("NONE"));
			dec.move = POLICY_NONE;
			dec.create_low_alarm = NULL;
			dec.delete_alarm = false;
		} else {
			json_object_set_new(res, "workRequestId",
					    wr[0] ? json_string(wr)
						  : json_null());
			json_object_set_new(res, "to",
					    json_pack("{s:i, s:s}",
						      "instanceCount",
						      (int)dec.new_count,
						      "instanceShapeName",
						      dec.new_shape));
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
	deploy_view_free(dep);
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

/* Makes the topic of a deployment's alarms and subscribes the function. */
static int make_topic(struct autoscale *a, const char *deployment_id,
		      struct record *r, struct fault *f)
{
	struct notifications_topic_spec ts = { .name = "" };
	struct notifications_subscription_spec ss;
	struct notifications_topic t;
	struct notifications_subscription sub;
	int rc;

	snprintf(ts.name, sizeof(ts.name), "autoscale-%s", deployment_id);
	snprintf(ts.description, sizeof(ts.description),
		 "autoscale messages of a deployment");
	rc = notifications_topic_create(a->env.notifications, &ts, &t, f);
	if (rc != 0)
		return rc;
	snprintf(r->topic, sizeof(r->topic), "%s", t.id);
	notifications_subscription_spec_init(&ss);
	snprintf(ss.topic_id, sizeof(ss.topic_id), "%s", t.id);
	ss.protocol = NOTIFICATIONS_FUNCTION;
	snprintf(ss.endpoint, sizeof(ss.endpoint), "autoscale");
	rc = notifications_subscription_create(a->env.notifications, &ss, &sub,
					       f);
	if (rc != 0)
		return rc;
	snprintf(r->subscription, sizeof(r->subscription), "%s", sub.id);
	return 0;
}

int autoscale_setup(struct autoscale *a, const char *deployment_id,
		    const struct policy *p, struct autoscale_chain *out,
		    struct fault *f)
{
	struct record r;
	const char *undo_ids[2] = { NULL, NULL };
	size_t nalarms = 0;
	int rc;

	memset(&r, 0, sizeof(r));
	memset(out, 0, sizeof(*out));
	r.policy = *p;
	rc = make_topic(a, deployment_id, &r, f);
	if (rc != 0)
		goto fail;
	for (int k = 0; k < 2; k++) {
		static const struct {
			const char *title, *metric, *body;
		} high[2] = {
			{ POLICY_TITLE_HIGH_CPU, "CpuUtilization",
			  "High cpu for model deployment" },
			{ POLICY_TITLE_HIGH_MEM, "MemoryUtilization",
			  "High memory for model deployment" },
		};
		const char *topic = r.topic;
		struct monitoring_alarm_spec as;
		struct monitoring_alarm o_alarm;
		char query[MQL_MAX_QUERY + 1];

		alarm_spec(&as, query, sizeof(query), high[k].title,
			   high[k].metric, p->high_window, p->high_statistic,
			   deployment_id, ">", k == 0 ? p->cpu_high : p->mem_high,
			   p->high_pending, p->high_repeat, high[k].body);
		as.destinations = &topic;
		as.ndestinations = 1;
		rc = monitoring_alarm_create(a->env.monitoring, &as, &o_alarm,
					     f);
		if (rc != 0)
			goto fail;
		snprintf(out->alarm_ids[nalarms], sizeof(out->alarm_ids[0]),
			 "%s", o_alarm.id);
		undo_ids[nalarms] = out->alarm_ids[nalarms];
		nalarms++;
	}
	r.set_up = true;
	save_record(a, deployment_id, &r);
	out->nalarms = nalarms;
	snprintf(out->topic_id, sizeof(out->topic_id), "%s", r.topic);
	snprintf(out->subscription_id, sizeof(out->subscription_id), "%s",
		 r.subscription);
	return 0;
fail:
	undo(a, &r, undo_ids, nalarms);
	memset(out, 0, sizeof(*out));
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

int autoscale_get(struct autoscale *a, const char *deployment_id,
		  struct autoscale_state *out, struct fault *f)
{
	char id[DEPLOY_ID_MAX];
	struct record r;

	if (deploy_resolve(a->env.deploy, deployment_id, id, f) != 0)
		return f->err;
	load_record(a, id, &r);
	memset(out, 0, sizeof(*out));
	snprintf(out->deployment_id, sizeof(out->deployment_id), "%s", id);
	out->policy = r.policy;
	out->set_up = r.set_up;
	snprintf(out->topic_id, sizeof(out->topic_id), "%s", r.topic);
	snprintf(out->subscription_id, sizeof(out->subscription_id), "%s",
		 r.subscription);
	out->hist = r.hist;
	return 0;
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
