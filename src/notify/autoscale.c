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
#include "notify/autoscale_config.h"
#include "deploy/deploy.h"
#include "notify/functions.h"
#include "monitoring/monitoring.h"
#include "notify/notifications.h"
#include "store/store.h"
#include "util/ids.h"
#include "api/jsonx.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

#define KIND "autoscale"
#define KIND_CONFIG "autoscale-config"
#define CONFIG_DEFAULT "default"
#define HISTORY "scaling"
#define HISTORY_KEPT 1000
#define FUNCTION_NAME "autoscale"
/* The alarm id of a message made from an Alertmanager alert
 * (core/amalert.h). */
#define ALERTMANAGER_PREFIX "alertmanager:"

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

/* Reads a stored configuration over c; false if there is none. */
static bool stored_config(struct autoscale *a, json_t *o, struct fn_config *c)
{
	struct fault f;

	if (!json_is_object(o))
		return false;
	if (fn_config_apply(&a->env.config->shapes, o, c, &f) != 0)
		log_warn("autoscale", "a stored configuration is "
			 "unreadable: %s", f.message);
	return true;
}

/* The default configuration: the user's, else the default profile. */
static void default_config(struct autoscale *a, struct fn_config *c)
{
	char *text = NULL;
	json_t *o;

	memset(c, 0, sizeof(*c));
	policy_default(&c->policy);
	if (store_get(a->env.store, KIND_CONFIG, CONFIG_DEFAULT, &text) != 0)
		return;
	o = json_loads(text, 0, NULL);
	free(text);
	stored_config(a, o, c);
	json_decref(o);
}

/* ---- the per-deployment record ---- */

#define OWN_ALARMS_MAX 16

struct record {
	struct fn_config cfg;   /* own_config ? its own : the default */
	bool own_config;
	struct policy_history hist;
	/* What mdscale made for the deployment, and only that is deleted
	 * with it. */
	char topic[64], subscription[64];
	char alarms[OWN_ALARMS_MAX][64];
	size_t nalarms;
	bool set_up; /* autoscale_setup() ran */
};

static void load_record(struct autoscale *a, const char *dep_id,
			struct record *r)
{
	char *text = NULL;
	json_t *o, *v;
	size_t i;

	memset(r, 0, sizeof(*r));
	default_config(a, &r->cfg);
	if (store_get(a->env.store, KIND, dep_id, &text) != 0)
		return;
	o = json_loads(text, 0, NULL);
	free(text);
	if (o == NULL)
		return;
	if (json_is_object(json_object_get(o, "policy"))) {
		/* Its own configuration starts from the default profile,
		 * not from the user's default. */
		memset(&r->cfg, 0, sizeof(r->cfg));
		policy_default(&r->cfg.policy);
		r->own_config = stored_config(a, json_object_get(o, "policy"),
					    &r->cfg);
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
	json_array_foreach(json_object_get(o, "createdAlarmIds"), i, v) {
		if (r->nalarms < OWN_ALARMS_MAX && json_is_string(v))
			snprintf(r->alarms[r->nalarms++], sizeof(r->alarms[0]),
				 "%s", json_string_value(v));
	}
	r->set_up = json_is_true(json_object_get(o, "setUp"));
	json_decref(o);
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
		json_object_set_new(o, "policy", fn_config_json(&r->cfg));
	return o;
}

static int save_record(struct autoscale *a, const char *dep_id,
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

static void remember_alarm(struct record *r, const char *id)
{
	if (r->nalarms < OWN_ALARMS_MAX)
		snprintf(r->alarms[r->nalarms++], sizeof(r->alarms[0]), "%s",
			 id);
}

static void forget_alarm(struct record *r, const char *id)
{
	for (size_t i = 0; i < r->nalarms; i++)
		if (strcmp(r->alarms[i], id) == 0) {
			memmove(r->alarms[i], r->alarms[i + 1],
				(r->nalarms - i - 1) * sizeof(r->alarms[0]));
			r->nalarms--;
			return;
		}
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

/* The alarm of that id, or NULL; a new reference. */
static json_t *alarm_get(struct autoscale *a, const char *id)
{
	struct fault f;

	return monitoring_alarm_get(a->env.monitoring, id, &f);
}

/* Whether any of an alarm's destinations reaches this function. */
static bool reaches(struct autoscale *a, json_t *destinations)
{
	size_t i;
	json_t *v;

	json_array_foreach(destinations, i, v) {
		if (json_is_string(v) &&
		    notifications_topic_reaches(a->env.notifications,
						json_string_value(v),
						FUNCTION_NAME))
			return true;
	}
	return false;
}

/*
 * What a scale-up does about its scale-down twin, decided before the
 * deployment changes: nothing (an alarm from Alertmanager brings its own
 * rule), keep one that works, repair one whose destinations reach nothing,
 * or create one.
 */
struct low_plan {
	enum { LOW_SKIP, LOW_KEEP, LOW_REPAIR, LOW_CREATE } what;
	char id[64];           /* KEEP, REPAIR: the alarm */
	json_t *destinations;  /* REPAIR, CREATE: where it sends */
	char severity[16];
};

/* Where the twin sends: the firing alarm's destinations when they reach
 * this function, else the deployment's autoscale topic when it does. */
static json_t *twin_destinations(struct autoscale *a, const char *firing_id,
				 const struct record *r, char *severity,
				 size_t sevsz)
{
	json_t *firing = alarm_get(a, firing_id), *d = NULL;
	const char *sev = jpath_str(firing, "severity");

	snprintf(severity, sevsz, "%s", sev ? sev : "INFO");
	if (firing != NULL && reaches(a, json_object_get(firing,
							 "destinations")))
		d = json_incref(json_object_get(firing, "destinations"));
	else if (r->topic[0] != '\0' &&
		 notifications_topic_reaches(a->env.notifications, r->topic,
					     FUNCTION_NAME))
		d = json_pack("[s]", r->topic);
	json_decref(firing);
	return d;
}

static bool firing_exists(struct autoscale *a, const char *id)
{
	json_t *o = alarm_get(a, id);
	bool yes = o != NULL;

	json_decref(o);
	return yes;
}

/* Plans the twin; MDS_E_INVAL with why filled when no destination would
 * reach this function (nothing is to change then). */
static int plan_low_alarm(struct autoscale *a, const char *which,
			  const char *dep_id, const char *firing_id,
			  const struct record *r, struct low_plan *lp,
			  char *why, size_t whysz)
{
	const char *title = strcmp(which, "cpu") == 0 ? POLICY_TITLE_LOW_CPU
						      : POLICY_TITLE_LOW_MEM;
	json_t *existing;
	bool works = false;

	memset(lp, 0, sizeof(*lp));
	if (strncmp(firing_id, ALERTMANAGER_PREFIX,
		    strlen(ALERTMANAGER_PREFIX)) == 0) {
		/* A Prometheus rule through Alertmanager: its scale-down
		 * rule lives where it does. */
		lp->what = LOW_SKIP;
		return 0;
	}
	if (monitoring_alarm_find(a->env.monitoring, title, dep_id, lp->id,
				  sizeof(lp->id)) == 0) {
		existing = alarm_get(a, lp->id);
		works = reaches(a, json_object_get(existing, "destinations"));
		json_decref(existing);
		if (works) {
			lp->what = LOW_KEEP;
			return 0;
		}
	}
	lp->destinations = twin_destinations(a, firing_id, r, lp->severity,
					     sizeof(lp->severity));
	if (lp->destinations == NULL) {
		snprintf(why, whysz, "no %s alarm could reach the %s function: "
			 "the alarm '%.64s' %s, and the deployment has no "
			 "autoscale topic with a subscription to it; nothing "
			 "was changed", title, FUNCTION_NAME, firing_id,
			 firing_exists(a, firing_id)
				 ? "sends to no topic subscribed to it"
				 : "does not exist");
		return MDS_E_INVAL;
	}
	lp->what = lp->id[0] != '\0' ? LOW_REPAIR : LOW_CREATE;
	return 0;
}

/* Carries the plan out after the move; fills res with what it did. */
static void apply_low_alarm(struct autoscale *a, const char *which,
			    const char *dep_id, struct record *r,
			    struct low_plan *lp, json_t *res)
{
	bool cpu = strcmp(which, "cpu") == 0;
	const struct policy *p = &r->cfg.policy;
	const char *title = cpu ? POLICY_TITLE_LOW_CPU : POLICY_TITLE_LOW_MEM;
	json_t *spec, *out = NULL;
	struct fault f;
	int rc;

	if (lp->what == LOW_SKIP) {
		log_info("autoscale", "an alarm from Alertmanager: no %s for "
			 "%s", title, dep_id);
		return;
	}
	if (lp->what == LOW_KEEP) {
		json_object_set_new(res, "existingAlarmId",
				    json_string(lp->id));
		return;
	}
	if (lp->what == LOW_REPAIR) {
		spec = json_pack("{s:O}", "destinations", lp->destinations);
		rc = monitoring_alarm_update(a->env.monitoring, lp->id, spec,
					     &out, &f);
		json_decref(spec);
		json_decref(out);
		if (rc == 0)
			json_object_set_new(res, "repairedAlarmId",
					    json_string(lp->id));
		else
			log_warn("autoscale", "cannot repair %s: %s", lp->id,
				 f.message);
		return;
	}
	spec = alarm_spec(title, cpu ? "CpuUtilization" : "MemoryUtilization",
			  p->low_window, p->low_statistic, dep_id, "<",
			  cpu ? p->cpu_low : p->mem_low, p->low_pending,
			  p->low_repeat, lp->severity, lp->destinations,
			  cpu ? "Low cpu for model deployment. Instances can "
				"be scaled down to reduce costs"
			      : "Low memory for model deployment. The shape "
				"can be scaled down to reduce costs");
	rc = monitoring_alarm_create(a->env.monitoring, spec, &out, &f);
	json_decref(spec);
	if (rc != 0) {
		log_warn("autoscale", "cannot create %s for %s: %s", title,
			 dep_id, f.message);
		return;
	}
	remember_alarm(r, jpath_str(out, "id"));
	json_object_set_new(res, "createdAlarmId",
			    json_string(jpath_str(out, "id")));
	json_decref(out);
}

/* ---- the function ---- */

static void record_decision(struct autoscale *a, const char *dep_id,
			    json_t *entry, int64_t t)
{
	char *s = json_dumps(entry, JSON_COMPACT);

	if (store_event_add(a->env.store, HISTORY, dep_id, t, s) != 0)
		log_error("autoscale", "cannot record a decision on %s",
			  dep_id);
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

/* What a message says; strings borrowed from its JSON. */
struct alarm_msg {
	const char *type, *title, *alarm_id, *dep_id;
};

/* Reads the fields the function needs; MDS_E_INVAL with why filled. */
static int read_message(json_t *msg, struct alarm_msg *m, char *why,
			size_t whysz)
{
	json_t *meta = json_array_get(json_object_get(msg, "alarmMetaData"), 0);
	json_t *dims = json_array_get(json_object_get(meta, "dimensions"), 0);

	m->type = jpath_str(msg, "type");
	m->title = jpath_str(msg, "title");
	m->alarm_id = jpath_str(meta, "id");
	m->dep_id = jpath_str(dims, "resourceId");
	if (m->type != NULL && m->title != NULL && json_is_object(meta) &&
	    m->alarm_id != NULL && m->dep_id != NULL)
		return 0;
	snprintf(why, whysz, "the message has no %s%s",
		 m->type == NULL ? "type"
		 : m->title == NULL ? "title"
		 : !json_is_object(meta) ? "alarmMetaData[0]"
		 : m->alarm_id == NULL ? "alarmMetaData[0].id"
				       : "alarmMetaData[0].dimensions[0]"
					 ".resourceId",
		 m->alarm_id != NULL && m->dep_id == NULL
			 ? " (an alarm whose query groups its streams, "
			   "with .grouping(), has no dimensions: filter it "
			   "on resourceId instead)"
			 : "");
	return MDS_E_INVAL;
}

/* Asks for the move's update; on refusal turns the decision into none. */
static void carry_out(struct autoscale *a, const char *dep_id,
		      const struct policy_input *in,
		      struct policy_decision *dec, struct record *r,
		      json_t *res)
{
	json_t *upd, *wr = NULL;
	struct fault f;
	int rc;

	upd = dec->move == POLICY_SCALE_OUT || dec->move == POLICY_SCALE_IN
		      ? json_pack("{s:i}", "instanceCount", (int)dec->new_count)
		      : json_pack("{s:s}", "instanceShapeName", dec->new_shape);
	rc = deploy_update(a->env.deploy, dep_id, upd, &wr, &f);
	json_decref(upd);
	if (rc != 0) {
		snprintf(dec->reason, sizeof(dec->reason),
			 "the update was refused: %.200s", f.message);
		json_object_set_new(res, "action", json_string("NONE"));
		dec->move = POLICY_NONE;
		dec->create_low_alarm = NULL;
		dec->delete_alarm = false;
		return;
	}
	json_object_set_new(res, "workRequestId", json_string(jstr(wr, "id")));
	json_object_set_new(res, "to",
			    json_pack("{s:i, s:s}", "instanceCount",
				      (int)dec->new_count, "instanceShapeName",
				      dec->new_shape));
	json_decref(wr);
	if (dec->move == POLICY_SCALE_OUT)
		r->hist.last_out_ms = in->now_ms;
	else if (dec->move == POLICY_SCALE_IN)
		r->hist.last_in_ms = in->now_ms;
	else if (dec->move == POLICY_SHAPE_UP)
		r->hist.last_up_ms = in->now_ms;
	else
		r->hist.last_down_ms = in->now_ms;
}

/* The deployment's state as the policy needs it, and the metric now. */
static void gather(struct autoscale *a, json_t *dep, const struct alarm_msg *m,
		   const struct shape_ladder *ladder, struct policy_input *in)
{
	const char *dep_id = jpath_str(dep, "id");
	bool mem = strcmp(m->title, POLICY_TITLE_HIGH_MEM) == 0 ||
		   strcmp(m->title, POLICY_TITLE_LOW_MEM) == 0;
	double value = NAN;

	monitoring_latest(a->env.monitoring,
			  mem ? "MemoryUtilization" : "CpuUtilization", dep_id,
			  10000, &value);
	*in = (struct policy_input){
		.type = m->type, .title = m->title,
		.lifecycle_state = jpath_str(dep, "lifecycleState"),
		.instance_count = (uint32_t)json_integer_value(
			json_object_get(dep, "instanceCount")),
		.shape = jpath_str(dep, "instanceShapeName"), .ladder = ladder,
		.value = value, .now_ms = ids_now_ms(),
	};
}

/* Decides and acts on a firing message for the deployment dep. Returns 0
 * with the decision in *out, or MDS_E_INVAL with why filled. */
static int decide(struct autoscale *a, json_t *dep, const struct alarm_msg *m,
		  json_t **out, char *why, size_t whysz)
{
	const char *dep_id = jpath_str(dep, "id");
	struct shape_ladder ladder;
	struct policy_input in;
	struct policy_decision dec;
	struct low_plan lp = { .what = LOW_SKIP };
	struct record rec;
	struct fault f;
	char summary[600], reason[900];
	json_t *res;
	int rc;

	load_record(a, dep_id, &rec);
	fn_config_ladder(&a->env.config->shapes, &rec.cfg, &ladder);
	gather(a, dep, m, &ladder, &in);
	rc = policy_decide(&rec.cfg.policy, &rec.hist, &in, &dec);
	if (rc != 0) {
		snprintf(why, whysz, "%s", dec.reason);
		return rc;
	}
	if (dec.move != POLICY_NONE && dec.create_low_alarm != NULL) {
		rc = plan_low_alarm(a, dec.create_low_alarm, dep_id,
				    m->alarm_id, &rec, &lp, why, whysz);
		if (rc != 0)
			return rc;
	}
	res = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:{s:i, s:s}}",
			"action", policy_move_name(dec.move), "deploymentId",
			dep_id, "alarmId", m->alarm_id, "alarmTitle", m->title,
			"messageType", m->type, "value",
			isnan(in.value) ? json_null() : json_real(in.value),
			"from", "instanceCount", (int)in.instance_count,
			"instanceShapeName", in.shape);
	if (dec.move != POLICY_NONE)
		carry_out(a, dep_id, &in, &dec, &rec, res);
	if (dec.move != POLICY_NONE && dec.create_low_alarm != NULL)
		apply_low_alarm(a, dec.create_low_alarm, dep_id, &rec, &lp,
				res);
	json_decref(lp.destinations);
	if (dec.delete_alarm &&
	    (strcmp(m->title, POLICY_TITLE_LOW_CPU) == 0 ||
	     strcmp(m->title, POLICY_TITLE_LOW_MEM) == 0) &&
	    monitoring_alarm_delete(a->env.monitoring, m->alarm_id, &f) == 0) {
		json_object_set_new(res, "deletedAlarmId",
				    json_string(m->alarm_id));
		forget_alarm(&rec, m->alarm_id);
	}
	if (dec.move != POLICY_NONE || dec.delete_alarm)
		save_record(a, dep_id, &rec);
	fn_config_summary(&rec.cfg, rec.own_config, summary, sizeof(summary));
	snprintf(reason, sizeof(reason), "%s; %s", dec.reason, summary);
	json_object_set_new(res, "reason", json_string(reason));
	json_object_set_new(res, "config", fn_config_json(&rec.cfg));
	json_object_set_new(res, "configSource",
			    json_string(rec.own_config ? "deployment"
						       : "default"));
	json_object_set_new(res, "time", jsonx_time(in.now_ms));
	record_decision(a, dep_id, res, in.now_ms);
	*out = res;
	return 0;
}

static void invoke(void *ctx, const char *message, size_t len,
		   functions_done_fn *done, void *arg)
{
	struct autoscale *a = ctx;
	json_t *msg, *dep = NULL, *res = NULL;
	struct alarm_msg m;
	struct fault f;
	char why[600];
	json_error_t jerr;
	int rc;

	msg = json_loadb(message, len, 0, &jerr);
	if (!json_is_object(msg)) {
		snprintf(why, sizeof(why), "the message is not a JSON "
			 "object: %s", msg ? "" : jerr.text);
		rc = MDS_E_INVAL;
		goto out;
	}
	rc = read_message(msg, &m, why, sizeof(why));
	if (rc != 0)
		goto out;
	if (strcmp(m.type, "OK_TO_FIRING") != 0 &&
	    strcmp(m.type, "REPEAT") != 0) {
		snprintf(why, sizeof(why), "message type %s: only "
			 "OK_TO_FIRING and REPEAT act", m.type);
		res = json_pack("{s:s, s:s, s:s}", "action", "NONE",
				"deploymentId", m.dep_id, "reason", why);
		goto out;
	}
	dep = deploy_get(a->env.deploy, m.dep_id, &f);
	if (dep == NULL) {
		/* Bad input, not a failure of the function: the same message
		 * would name the same missing deployment again. */
		snprintf(why, sizeof(why), "the message names no deployment "
			 "'%.80s'", m.dep_id);
		rc = MDS_E_INVAL;
		goto out;
	}
	rc = decide(a, dep, &m, &res, why, sizeof(why));
out:
	finish(done, arg, rc, rc == 0 ? res : NULL, why);
	if (rc != 0)
		json_decref(res);
	json_decref(dep);
	json_decref(msg);
}

/* ---- set-up and tear-down ---- */

static void undo(struct autoscale *a, struct record *r)
{
	struct fault f;

	for (size_t i = 0; i < r->nalarms; i++)
		monitoring_alarm_delete(a->env.monitoring, r->alarms[i], &f);
	if (r->subscription[0])
		notifications_subscription_delete(a->env.notifications,
						  r->subscription, &f);
	if (r->topic[0])
		notifications_topic_delete(a->env.notifications, r->topic, &f);
}

/* Makes the topic and the subscription of this function to it. */
static int setup_topic(struct autoscale *a, const char *dep_id,
		       struct record *r, struct fault *f)
{
	json_t *o = NULL, *spec;
	int rc;

	spec = json_pack("{s:s, s:s}", "name", "", "description",
			 "autoscale messages of a deployment");
	json_object_set_new(spec, "name", json_sprintf("autoscale-%s", dep_id));
	rc = notifications_topic_create(a->env.notifications, spec, &o, f);
	json_decref(spec);
	if (rc != 0)
		return rc;
	snprintf(r->topic, sizeof(r->topic), "%s", jpath_str(o, "topicId"));
	json_decref(o);
	spec = json_pack("{s:s, s:s, s:s}", "topicId", r->topic, "protocol",
			 "FUNCTION", "endpoint", FUNCTION_NAME);
	rc = notifications_subscription_create(a->env.notifications, spec, &o,
					       f);
	json_decref(spec);
	if (rc != 0)
		return rc;
	snprintf(r->subscription, sizeof(r->subscription), "%s",
		 jpath_str(o, "id"));
	json_decref(o);
	return 0;
}

/* Makes the high alarm k (0 cpu, 1 mem) unless the user has one for the
 * deployment: that one is the user's and stays as it is. */
static int setup_alarm(struct autoscale *a, const char *dep_id, int k,
		       struct record *r, json_t *ids, struct fault *f)
{
	const struct policy *p = &r->cfg.policy;
	const char *title = k == 0 ? POLICY_TITLE_HIGH_CPU
				   : POLICY_TITLE_HIGH_MEM;
	json_t *o = NULL, *spec, *dest;
	char id[64];
	int rc;

	if (monitoring_alarm_find(a->env.monitoring, title, dep_id, id,
				  sizeof(id)) == 0) {
		log_info("autoscale", "%s: keeping the existing %s (%s)",
			 dep_id, title, id);
		json_array_append_new(ids, json_string(id));
		return 0;
	}
	dest = json_pack("[s]", r->topic);
	spec = alarm_spec(title, k == 0 ? "CpuUtilization" : "MemoryUtilization",
			  p->high_window, p->high_statistic, dep_id, ">",
			  k == 0 ? p->cpu_high : p->mem_high, p->high_pending,
			  p->high_repeat, "INFO", dest,
			  k == 0 ? "High cpu for model deployment"
				 : "High memory for model deployment");
	json_decref(dest);
	rc = monitoring_alarm_create(a->env.monitoring, spec, &o, f);
	json_decref(spec);
	if (rc != 0)
		return rc;
	remember_alarm(r, jpath_str(o, "id"));
	json_array_append(ids, json_object_get(o, "id"));
	json_decref(o);
	return 0;
}

/* Sets the chain up with policy p, keeping old's history and shape
 * ladder (the cooldowns still count). */
static int setup_with(struct autoscale *a, const char *deployment_id,
		      const struct policy *p, const struct record *old,
		      json_t **out, struct fault *f)
{
	struct record r;
	json_t *ids = json_array();
	int rc;

	memset(&r, 0, sizeof(r));
	r.cfg = old->cfg;
	r.cfg.policy = *p;
	if (!old->own_config)
		r.cfg.nshapes = 0;
	r.own_config = true;
	r.hist = old->hist;
	rc = setup_topic(a, deployment_id, &r, f);
	for (int k = 0; k < 2 && rc == 0; k++)
		rc = setup_alarm(a, deployment_id, k, &r, ids, f);
	r.set_up = true;
	if (rc == 0) {
		rc = save_record(a, deployment_id, &r);
		if (rc != 0)
			fault_set(f, rc, "", "cannot store the autoscale "
				  "record: %s", mds_strerror(rc));
	}
	if (rc != 0) {
		undo(a, &r);
		json_decref(ids);
		return rc;
	}
	*out = json_pack("{s:o, s:s, s:s, s:o}", "policy",
			 autoscale_policy_json(p), "topicId", r.topic,
			 "subscriptionId", r.subscription, "alarmIds", ids);
	return 0;
}

int autoscale_setup(struct autoscale *a, const char *deployment_id,
		    const struct policy *p, json_t **out, struct fault *f)
{
	struct record old;

	load_record(a, deployment_id, &old);
	return setup_with(a, deployment_id, p, &old, out, f);
}

int autoscale_replace(struct autoscale *a, const char *deployment_id,
		      const struct policy *p, struct autoscale_removed *gone,
		      json_t **out, struct fault *f)
{
	struct record old;

	load_record(a, deployment_id, &old);
	autoscale_teardown(a, deployment_id, gone);
	return setup_with(a, deployment_id, p, &old, out, f);
}

void autoscale_teardown(struct autoscale *a, const char *deployment_id,
			struct autoscale_removed *out)
{
	struct record r;
	struct fault f;

	memset(out, 0, sizeof(*out));
	load_record(a, deployment_id, &r);
	for (size_t i = 0; i < r.nalarms; i++)
		if (monitoring_alarm_delete(a->env.monitoring, r.alarms[i],
					    &f) == 0 &&
		    out->nalarms < AUTOSCALE_REMOVED_MAX)
			snprintf(out->alarm_ids[out->nalarms++],
				 sizeof(out->alarm_ids[0]), "%s", r.alarms[i]);
	if (r.subscription[0] &&
	    notifications_subscription_delete(a->env.notifications,
					      r.subscription, &f) == 0)
		snprintf(out->subscription_id, sizeof(out->subscription_id),
			 "%s", r.subscription);
	if (r.topic[0] &&
	    notifications_topic_delete(a->env.notifications, r.topic, &f) == 0)
		snprintf(out->topic_id, sizeof(out->topic_id), "%s", r.topic);
	store_delete(a->env.store, KIND, deployment_id);
}

/* ---- the configuration through the API ---- */

/* The configuration in force for a deployment (or the default with
 * deployment_id NULL) and where it comes from. */
json_t *autoscale_config_get(struct autoscale *a, const char *deployment_id,
			     struct fault *f)
{
	struct fn_config c;
	struct record r;
	json_t *dep, *o;

	if (deployment_id == NULL) {
		default_config(a, &c);
		return json_pack("{s:s, s:o}", "source", "default", "config",
				 fn_config_json(&c));
	}
	dep = deploy_get(a->env.deploy, deployment_id, f);
	if (dep == NULL)
		return NULL;
	load_record(a, jpath_str(dep, "id"), &r);
	o = json_pack("{s:s, s:s, s:o}", "deploymentId", jpath_str(dep, "id"),
		      "source", r.own_config ? "deployment" : "default",
		      "config", fn_config_json(&r.cfg));
	json_decref(dep);
	return o;
}

int autoscale_config_set(struct autoscale *a, const char *deployment_id,
			 json_t *spec, json_t **out, struct fault *f)
{
	struct fn_config c;
	struct record r;
	json_t *dep = NULL, *o;
	char *text;
	int rc;

	if (deployment_id == NULL) {
		default_config(a, &c);
		rc = fn_config_apply(&a->env.config->shapes, spec, &c, f);
		if (rc != 0)
			return rc;
		o = fn_config_json(&c);
		text = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		rc = store_put(a->env.store, KIND_CONFIG, CONFIG_DEFAULT, text);
		free(text);
		if (rc != 0)
			return fault_set(f, rc, "", "cannot store the "
					 "configuration: %s", mds_strerror(rc));
		*out = autoscale_config_get(a, NULL, f);
		return 0;
	}
	dep = deploy_get(a->env.deploy, deployment_id, f);
	if (dep == NULL)
		return f->err;
	load_record(a, jpath_str(dep, "id"), &r);
	rc = fn_config_apply(&a->env.config->shapes, spec, &r.cfg, f);
	if (rc == 0) {
		r.own_config = true;
		rc = save_record(a, jpath_str(dep, "id"), &r);
		if (rc != 0)
			fault_set(f, rc, "", "cannot store the configuration: "
				  "%s", mds_strerror(rc));
	}
	if (rc == 0)
		*out = autoscale_config_get(a, jpath_str(dep, "id"), f);
	json_decref(dep);
	return rc;
}

int autoscale_config_reset(struct autoscale *a, const char *deployment_id,
			   struct fault *f)
{
	json_t *dep = deploy_get(a->env.deploy, deployment_id, f);
	struct record r;
	int rc;

	if (dep == NULL)
		return f->err;
	load_record(a, jpath_str(dep, "id"), &r);
	r.own_config = false;
	rc = save_record(a, jpath_str(dep, "id"), &r);
	json_decref(dep);
	if (rc != 0)
		return fault_set(f, rc, "", "cannot store the configuration: "
				 "%s", mds_strerror(rc));
	return 0;
}

struct hist_walk {
	json_t *items;
};

static int collect(void *arg, const char *ref, const char *json)
{
	struct hist_walk *w = arg;
	json_t *o = json_loads(json, 0, NULL);

	(void)ref;
	/* Decisions recorded before times were RFC 3339 held epoch ms. */
	if (json_is_integer(json_object_get(o, "time")))
		json_object_set_new(o, "time",
				    jsonx_time(json_integer_value(
					    json_object_get(o, "time"))));
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
	static const char *const last[][2] = {
		{ "lastOutMs", "timeLastScaleOut" },
		{ "lastInMs", "timeLastScaleIn" },
		{ "lastUpMs", "timeLastShapeUp" },
		{ "lastDownMs", "timeLastShapeDown" },
	};

	load_record(a, jpath_str(dep, "id"), &r);
	o = record_json(jpath_str(dep, "id"), &r);
	json_decref(dep);
	/* The API speaks RFC 3339 (null: never). */
	for (size_t i = 0; i < sizeof(last) / sizeof(last[0]); i++) {
		json_object_set_new(o, last[i][1],
				    jsonx_time(json_integer_value(
					    json_object_get(o, last[i][0]))));
		json_object_del(o, last[i][0]);
	}
	json_object_set_new(o, "policy", fn_config_json(&r.cfg));
	json_object_set_new(o, "configSource",
			    json_string(r.own_config ? "deployment"
						     : "default"));
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
