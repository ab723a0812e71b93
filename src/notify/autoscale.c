/*
 * autoscale.c - the built-in autoscale function; see autoscale.h.
 *
 * The decision is core/policy.c; this file reads the message, gathers the
 * inputs (the deployment, the metric now, the policy and when each move
 * last happened), carries the decision out on the deployment and its
 * alarms, and sets a deployment up and tears it down. What is stored about
 * each deployment (its record, configuration and scaling history) is
 * autoscale_record.c.
 */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/autoscale.h"
#include "notify/autoscale_int.h"
#include "notify/autoscale_config.h"
#include "core/iso8601.h"
#include "deploy/deploy.h"
#include "notify/functions.h"
#include "monitoring/monitoring.h"
#include "notify/notifications.h"
#include "store/store.h"
#include "util/ids.h"
#include "util/rfc3339.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

#define FUNCTION_NAME "autoscale"
/* The alarm id of a message made from an Alertmanager alert
 * (core/amalert.h). */
#define ALERTMANAGER_PREFIX "alertmanager:"

/* Returns the string member key of o, or NULL. */
static const char *jpath_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* ---- alarms ---- */

/* An alarm of the policy, as monitoring takes it; its query is written
 * into query (qsz bytes), which the spec borrows, as it does the other
 * strings. The severity and destinations are the caller's to set. */
static void alarm_spec(struct monitoring_alarm_spec *s, char *query,
		       size_t qsz, const char *title,
		       const struct policy *p, int high, int mem,
		       const char *dep_id, const char *pending,
		       const char *repeat, const char *body)
{
	policy_alarm_query(p, high, mem, dep_id, query, qsz);
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

/* Whether any of the destinations reaches this function. */
static bool reaches(struct autoscale *a, const char *const *dest, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (notifications_topic_reaches(a->env.notifications, dest[i],
						FUNCTION_NAME))
			return true;
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
	char id[64];               /* KEEP, REPAIR: the alarm */
	char dest[64];             /* REPAIR, CREATE: where it sends... */
	bool from_firing;          /* ...or all the firing alarm's */
	enum alarm_severity severity;
};

/* Where the twin sends: the firing alarm's destinations when they reach
 * this function, else the deployment's autoscale topic when it does.
 * Returns false when neither does; *exists says whether the firing alarm
 * does. */
static bool twin_destinations(struct autoscale *a, const char *firing_id,
			      const struct record *r, struct low_plan *lp,
			      bool *exists)
{
	struct monitoring_alarm firing;
	struct fault f;

	lp->severity = ALARM_INFO;
	*exists = monitoring_alarm_get(a->env.monitoring, firing_id, &firing,
				       &f) == 0;
	if (*exists) {
		lp->severity = firing.severity;
		if (reaches(a, firing.destinations, firing.ndestinations)) {
			lp->from_firing = true;
			return true;
		}
	}
	if (r->topic[0] != '\0' &&
	    notifications_topic_reaches(a->env.notifications, r->topic,
					FUNCTION_NAME)) {
		snprintf(lp->dest, sizeof(lp->dest), "%s", r->topic);
		return true;
	}
	return false;
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
	struct monitoring_alarm existing;
	struct fault f;
	bool exists;

	memset(lp, 0, sizeof(*lp));
	if (strncmp(firing_id, ALERTMANAGER_PREFIX,
		    strlen(ALERTMANAGER_PREFIX)) == 0) {
		/* A Prometheus rule through Alertmanager: its scale-down
		 * rule lives where it does. */
		lp->what = LOW_SKIP;
		return 0;
	}
	if (monitoring_alarm_find(a->env.monitoring, title, dep_id, lp->id,
				  sizeof(lp->id)) == 0 &&
	    monitoring_alarm_get(a->env.monitoring, lp->id, &existing,
				 &f) == 0 &&
	    reaches(a, existing.destinations, existing.ndestinations)) {
		lp->what = LOW_KEEP;
		return 0;
	}
	if (!twin_destinations(a, firing_id, r, lp, &exists)) {
		snprintf(why, whysz, "no %s alarm could reach the %s function: "
			 "the alarm '%.64s' %s, and the deployment has no "
			 "autoscale topic with a subscription to it; nothing "
			 "was changed", title, FUNCTION_NAME, firing_id,
			 exists ? "sends to no topic subscribed to it"
				: "does not exist");
		return MDS_E_INVAL;
	}
	lp->what = lp->id[0] != '\0' ? LOW_REPAIR : LOW_CREATE;
	return 0;
}

/* Points spec at the plan's destinations (borrowed from firing, which
 * must live as long as spec). */
static void plan_destinations(struct autoscale *a, const char *firing_id,
			      const struct low_plan *lp,
			      struct monitoring_alarm_spec *spec,
			      const char **one)
{
	struct monitoring_alarm firing;
	struct fault f;

	if (lp->from_firing &&
	    monitoring_alarm_get(a->env.monitoring, firing_id, &firing,
				 &f) == 0) {
		spec->destinations = firing.destinations;
		spec->ndestinations = firing.ndestinations;
		return;
	}
	*one = lp->dest;
	spec->destinations = one;
	spec->ndestinations = 1;
}

/* Carries the plan out after the move; fills res with what it did. */
static void apply_low_alarm(struct autoscale *a, const char *which,
			    const char *dep_id, const char *firing_id,
			    struct record *r, const struct low_plan *lp,
			    json_t *res)
{
	bool cpu = strcmp(which, "cpu") == 0;
	const struct policy *p = &r->cfg.policy;
	const char *title = cpu ? POLICY_TITLE_LOW_CPU : POLICY_TITLE_LOW_MEM;
	struct monitoring_alarm_spec spec;
	struct monitoring_alarm out;
	char query[MQL_MAX_QUERY + 1];
	const char *one = NULL;
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
		memset(&spec, 0, sizeof(spec));
		spec.given = MONITORING_ALARM_DESTINATIONS;
		plan_destinations(a, firing_id, lp, &spec, &one);
		rc = monitoring_alarm_update(a->env.monitoring, lp->id, &spec,
					     &out, &f);
		if (rc == 0)
			json_object_set_new(res, "repairedAlarmId",
					    json_string(lp->id));
		else
			log_warn("autoscale", "cannot repair %s: %s", lp->id,
				 f.message);
		return;
	}
	alarm_spec(&spec, query, sizeof(query), title, p, 0, !cpu, dep_id,
		   p->low_pending, p->low_repeat,
		   cpu ? "Low cpu for model deployment. Instances can be "
			 "scaled down to reduce costs"
		       : "Low memory for model deployment. The shape can be "
			 "scaled down to reduce costs");
	/* The twin is as severe as the alarm that fired. */
	spec.severity = lp->severity;
	plan_destinations(a, firing_id, lp, &spec, &one);
	rc = monitoring_alarm_create(a->env.monitoring, &spec, &out, &f);
	if (rc != 0) {
		log_warn("autoscale", "cannot create %s for %s: %s", title,
			 dep_id, f.message);
		return;
	}
	autoscale_record_add_alarm(r, out.id);
	json_object_set_new(res, "createdAlarmId", json_string(out.id));
}

/* The scale-down twin of a firing alarm, on the deployment's platform. */
static void platform_low_alarm(struct autoscale *a, const char *which,
			       const struct deploy_view *dep,
			       const char *firing_alarm_id,
			       const struct policy *p)
{
	const struct autoscale_platform_alarms *pa = &a->env.platform_alarms;
	bool cpu = strcmp(which, "cpu") == 0;
	char query[512];

	policy_alarm_query(p, 0, !cpu, dep->ref, query, sizeof(query));
	pa->ensure(pa->arg, dep->ref,
		   cpu ? POLICY_TITLE_LOW_CPU : POLICY_TITLE_LOW_MEM,
		   firing_alarm_id, query,
		   cpu ? "Low cpu for model deployment. Instances can be "
			 "scaled down to reduce costs"
		       : "Low memory for model deployment. The shape can be "
			 "scaled down to reduce costs");
}

/* ---- the function ---- */

/* ms as the API's RFC 3339 text; a new reference. */
static json_t *time_json(int64_t ms)
{
	char text[40];

	if (rfc3339_format(ms, RFC3339_MILLIS, text, sizeof(text)) != 0)
		return json_null();
	return json_string(text);
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

int autoscale_message_read(json_t *msg, struct alarm_msg *m, char *why,
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
	struct deploy_change change;
	char wr[DEPLOY_ID_MAX];
	struct fault f;

	memset(&change, 0, sizeof(change));
	if (dec->move == POLICY_SCALE_OUT || dec->move == POLICY_SCALE_IN) {
		change.has_count = true;
		change.count = dec->new_count;
	} else {
		change.shape = dec->new_shape;
	}
	if (deploy_change(a->env.deploy, dep_id, &change, wr, &f) != 0) {
		snprintf(dec->reason, sizeof(dec->reason),
			 "the update was refused: %.200s", f.message);
		json_object_set_new(res, "action", json_string("NONE"));
		dec->move = POLICY_NONE;
		dec->create_low_alarm = NULL;
		dec->delete_alarm = false;
		return;
	}
	json_object_set_new(res, "workRequestId",
			    wr[0] ? json_string(wr) : json_null());
	json_object_set_new(res, "to",
			    json_pack("{s:i, s:s}", "instanceCount",
				      (int)dec->new_count, "instanceShapeName",
				      dec->new_shape));
	policy_history_note(&r->hist, dec->move, in->now_ms);
}

/* The deployment's state as the policy needs it, and the metric now. */
static void gather(struct autoscale *a, const struct deploy_view *dep,
		   const struct alarm_msg *m, const struct shape_ladder *ladder,
		   struct policy_input *in)
{
	const char *dep_id = dep->id;
	bool mem = strcmp(m->title, POLICY_TITLE_HIGH_MEM) == 0 ||
		   strcmp(m->title, POLICY_TITLE_LOW_MEM) == 0;
	double value = NAN;

	monitoring_latest(a->env.monitoring,
			  mem ? "MemoryUtilization" : "CpuUtilization", dep_id,
			  10000, &value);
	*in = (struct policy_input){
		.type = m->type, .title = m->title,
		.lifecycle_state = dep->state,
		.instance_count = dep->count,
		.shape = dep->shape, .ladder = ladder,
		.value = value, .now_ms = ids_now_ms(),
	};
}

/* After the decision on a deployment whose alarms run on its platform:
 * the scale-down twin of a move, or the deletion of the scale-down alarm
 * that fired at the floor, go to the platform; res says so. */
static void platform_alarms_after(struct autoscale *a,
				  const struct deploy_view *dep,
				  const struct alarm_msg *m,
				  const struct policy_decision *dec,
				  const struct policy *p, json_t *res)
{
	if (dec->move != POLICY_NONE && dec->create_low_alarm != NULL) {
		platform_low_alarm(a, dec->create_low_alarm, dep, m->alarm_id,
				   p);
		json_object_set_new(res, "scaleDownAlarm",
				    json_string(dep->backend));
	}
	if (dec->delete_alarm &&
	    (strcmp(m->title, POLICY_TITLE_LOW_CPU) == 0 ||
	     strcmp(m->title, POLICY_TITLE_LOW_MEM) == 0)) {
		a->env.platform_alarms.remove(a->env.platform_alarms.arg,
					      m->alarm_id);
		json_object_set_new(res, "deletedAlarmId",
				    json_string(m->alarm_id));
	}
}

/* Decides and acts on a firing message for the deployment dep. Returns 0
 * with the decision in *out, or MDS_E_INVAL with why filled. */
static int decide(struct autoscale *a, const struct deploy_view *dep,
		  const struct alarm_msg *m, json_t **out, char *why,
		  size_t whysz)
{
	const char *dep_id = dep->id;
	struct shape_ladder ladder;
	struct policy_input in;
	struct policy_decision dec;
	struct low_plan lp = { .what = LOW_SKIP };
	struct record rec;
	struct fault f;
	char summary[600], reason[900];
	json_t *res;
	int rc;
	/* Its alarms run on its platform (an oci deployment's in OCI
	 * Monitoring): the scale-down twin goes there too. */
	bool on_platform = a->env.platform_alarms.backend && dep->backend &&
			   strcmp(dep->backend,
				  a->env.platform_alarms.backend) == 0;

	autoscale_record_load(a, dep_id, &rec);
	/* The ladder of the deployment's backend: an oci deployment moves
	 * along the OCI ladder, not the local one. */
	autoscale_config_ladder(deploy_backend_shapes(a->env.deploy,
						      dep->backend),
				&rec.cfg, &ladder);
	gather(a, dep, m, &ladder, &in);
	rc = policy_decide(&rec.cfg.policy, &rec.hist, &in, &dec);
	if (rc != 0) {
		snprintf(why, whysz, "%s", dec.reason);
		return rc;
	}
	if (dec.move != POLICY_NONE && dec.create_low_alarm != NULL &&
	    !on_platform) {
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
	if (on_platform) {
		platform_alarms_after(a, dep, m, &dec, &rec.cfg.policy, res);
	} else {
		if (dec.move != POLICY_NONE && dec.create_low_alarm != NULL)
			apply_low_alarm(a, dec.create_low_alarm, dep_id,
					m->alarm_id, &rec, &lp, res);
		if (dec.delete_alarm &&
		    (strcmp(m->title, POLICY_TITLE_LOW_CPU) == 0 ||
		     strcmp(m->title, POLICY_TITLE_LOW_MEM) == 0) &&
		    monitoring_alarm_delete(a->env.monitoring, m->alarm_id,
					    &f) == 0) {
			json_object_set_new(res, "deletedAlarmId",
					    json_string(m->alarm_id));
			autoscale_record_drop_alarm(&rec, m->alarm_id);
		}
	}
	if (dec.move != POLICY_NONE || dec.delete_alarm)
		autoscale_record_save(a, dep_id, &rec);
	autoscale_config_summary(&rec.cfg, rec.own_config, summary, sizeof(summary));
	snprintf(reason, sizeof(reason), "%s; %s", dec.reason, summary);
	json_object_set_new(res, "reason", json_string(reason));
	json_object_set_new(res, "config",
			    autoscale_record_config_json(&rec.cfg));
	json_object_set_new(res, "configSource",
			    json_string(rec.own_config ? "deployment"
						       : "default"));
	json_object_set_new(res, "time", time_json(in.now_ms));
	autoscale_record_decision(a, dep_id, res, in.now_ms);
	*out = res;
	return 0;
}

static void invoke(void *ctx, const char *message, size_t len,
		   functions_done_fn *done, void *arg)
{
	struct autoscale *a = ctx;
	json_t *msg, *res = NULL;
	struct deploy_view *dep = NULL;
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
	rc = autoscale_message_read(msg, &m, why, sizeof(why));
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
	dep = deploy_view_new(a->env.deploy, m.dep_id, &f);
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
	deploy_view_free(dep);
	json_decref(msg);
}

/* ---- the mdscale rule's moves ---- */

int autoscale_rule_move(struct autoscale *a, const struct deploy_view *dep,
			uint32_t want, const struct rule_obs *seen,
			const char *why, char *wr_id, struct fault *f)
{
	struct deploy_change change = { .has_count = true, .count = want };
	enum policy_move move = want > dep->count ? POLICY_SCALE_OUT
						  : POLICY_SCALE_IN;
	int64_t now = ids_now_ms();
	struct record rec;
	char summary[600], reason[900];
	json_t *res;
	int rc;

	wr_id[0] = '\0';
	autoscale_record_load(a, dep->id, &rec);
	res = json_pack("{s:s, s:n, s:n, s:n, s:s, s:f, s:{s:f, s:f, s:f}, "
			"s:{s:i, s:s}}",
			"deploymentId", dep->id, "alarmId", "alarmTitle",
			"messageType", "rule", "mdscale", "value", seen->cpu,
			"observed", "cpu", seen->cpu, "concurrency",
			seen->conc, "work", seen->work, "from",
			"instanceCount", (int)dep->count, "instanceShapeName",
			dep->shape);
	rc = deploy_change(a->env.deploy, dep->id, &change, wr_id, f);
	if (rc != 0) {
		snprintf(reason, sizeof(reason), "%s; the update was "
			 "refused: %.200s", why, f->message);
		json_object_set_new(res, "action", json_string("NONE"));
	} else {
		json_object_set_new(res, "action",
				    json_string(policy_move_name(move)));
		json_object_set_new(res, "workRequestId",
				    wr_id[0] ? json_string(wr_id)
					     : json_null());
		json_object_set_new(res, "to",
				    json_pack("{s:i, s:s}", "instanceCount",
					      (int)want, "instanceShapeName",
					      dep->shape));
		policy_history_note(&rec.hist, move, now);
		autoscale_record_save(a, dep->id, &rec);
		snprintf(reason, sizeof(reason), "%s", why);
	}
	autoscale_config_summary(&rec.cfg, rec.own_config, summary,
				 sizeof(summary));
	snprintf(reason + strlen(reason), sizeof(reason) - strlen(reason),
		 "; %s", summary);
	json_object_set_new(res, "reason", json_string(reason));
	json_object_set_new(res, "config",
			    autoscale_record_config_json(&rec.cfg));
	json_object_set_new(res, "configSource",
			    json_string(rec.own_config ? "deployment"
						       : "default"));
	json_object_set_new(res, "time", time_json(now));
	autoscale_record_decision(a, dep->id, res, now);
	log_info("autoscale", "%s: mdscale rule: %s %u -> %u: %s", dep->id,
		 rc == 0 ? policy_move_name(move) : "refused", dep->count, want,
		 reason);
	json_decref(res);
	return rc;
}

/* ---- set-up and tear-down ---- */

/*
 * Every change of a chain (the first setting, a replacement, the removal)
 * is one store transaction over the topic, the subscription, the alarms
 * and the record. Monitoring and notifications make their in-memory side
 * of it follow the transaction (store_on_commit()), so that a change the
 * store refuses (a full device) leaves the chain as it was, with nothing
 * to undo by hand.
 */

/* Subscribes the function to the topic topic_id; the subscription's id
 * goes into r. */
static int make_subscription(struct autoscale *a, const char *topic_id,
			     struct record *r, struct fault *f)
{
	struct notifications_subscription_spec ss;
	struct notifications_subscription sub;
	int rc;

	notifications_subscription_spec_init(&ss);
	snprintf(ss.topic_id, sizeof(ss.topic_id), "%s", topic_id);
	ss.protocol = NOTIFICATIONS_FUNCTION;
	snprintf(ss.endpoint, sizeof(ss.endpoint), "%s", FUNCTION_NAME);
	rc = notifications_subscription_create(a->env.notifications, &ss, &sub,
					       f);
	if (rc != 0)
		return rc;
	snprintf(r->subscription, sizeof(r->subscription), "%s", sub.id);
	return 0;
}

/* Makes the topic of a deployment's alarms and subscribes the function. */
static int make_topic(struct autoscale *a, const char *deployment_id,
		      struct record *r, struct fault *f)
{
	struct notifications_topic_spec ts = { .name = "" };
	struct notifications_topic t;
	int rc;

	snprintf(ts.name, sizeof(ts.name), "autoscale-%s", deployment_id);
	snprintf(ts.description, sizeof(ts.description),
		 "autoscale messages of a deployment");
	rc = notifications_topic_create(a->env.notifications, &ts, &t, f);
	if (rc != 0)
		return rc;
	snprintf(r->topic, sizeof(r->topic), "%s", t.id);
	return make_subscription(a, t.id, r, f);
}

/* Whether alarm id is one the record arg (NULL: none) owns. */
static bool owned(void *arg, const char *id)
{
	const struct record *r = arg;

	for (size_t i = 0; r != NULL && i < r->nalarms; i++)
		if (strcmp(r->alarms[i], id) == 0)
			return true;
	return false;
}

/* Makes the high alarm k (0 cpu, 1 mem) unless the user has one for the
 * deployment: that one is the user's and stays as it is. The alarms that
 * going owns (NULL: none) are on their way out and do not count. */
static int make_high_alarm(struct autoscale *a, const char *dep_id, int k,
			   struct record *r, struct record *going,
			   struct autoscale_chain *out, struct fault *f)
{
	static const struct {
		const char *title, *body;
	} high[2] = {
		{ POLICY_TITLE_HIGH_CPU, "High cpu for model deployment" },
		{ POLICY_TITLE_HIGH_MEM, "High memory for model deployment" },
	};
	const struct policy *p = &r->cfg.policy;
	const char *topic = r->topic;
	struct monitoring_alarm_spec as;
	struct monitoring_alarm o;
	char query[MQL_MAX_QUERY + 1], id[64];
	int rc;

	if (monitoring_alarm_find_other(a->env.monitoring, high[k].title,
					dep_id, owned, going, id,
					sizeof(id)) == 0) {
		log_info("autoscale", "%s: keeping the existing %s (%s)",
			 dep_id, high[k].title, id);
		snprintf(out->alarm_ids[out->nalarms++],
			 sizeof(out->alarm_ids[0]), "%s", id);
		return 0;
	}
	alarm_spec(&as, query, sizeof(query), high[k].title, p, 1, k == 1,
		   dep_id, p->high_pending, p->high_repeat, high[k].body);
	as.destinations = &topic;
	as.ndestinations = 1;
	rc = monitoring_alarm_create(a->env.monitoring, &as, &o, f);
	if (rc != 0)
		return rc;
	autoscale_record_add_alarm(r, o.id);
	snprintf(out->alarm_ids[out->nalarms++], sizeof(out->alarm_ids[0]),
		 "%s", o.id);
	return 0;
}

/* The record of a deployment set up with policy p after old: old's
 * history and shape ladder (the cooldowns still count), nothing made
 * yet. */
static void record_next(const struct record *old, const struct policy *p,
			struct record *r)
{
	memset(r, 0, sizeof(*r));
	r->cfg = old->cfg;
	r->cfg.policy = *p;
	if (!old->own_config)
		r->cfg.nshapes = 0;
	r->own_config = true;
	r->hist = old->hist;
	r->set_up = true;
}

/* What the client asked of the setting a store refusal is about. */
enum setting_change { SETTING_FIRST, SETTING_REPLACE, SETTING_REMOVE };

/* The client asked for a change of the setting: a part of it that could
 * not be stored (its topic, subscription, alarms or record) is the
 * change not stored, and the setting is as it was: none for a first
 * one, the one in force for a replacement or a removal. Other errors
 * keep the fault their part set. */
static void not_stored(struct fault *f, int rc, const char *deployment_id,
		       enum setting_change what)
{
	if (rc != MDS_E_NOSPACE && rc != MDS_E_IO && rc != MDS_E_DB)
		return;
	if (what == SETTING_REPLACE)
		fault_set(f, rc, "", "cannot store the new autoscale setting "
			  "of %s (the one in force stays): %s", deployment_id,
			  mds_strerror(rc));
	else if (what == SETTING_REMOVE)
		fault_set(f, rc, "", "cannot remove the autoscale setting of "
			  "%s (it stays in force): %s", deployment_id,
			  mds_strerror(rc));
	else
		fault_set(f, rc, "", "cannot store the autoscale setting of "
			  "%s: %s", deployment_id, mds_strerror(rc));
}

/* Sets the chain up with policy p, keeping old's history and shape
 * ladder: all or nothing. */
static int setup_with(struct autoscale *a, const char *deployment_id,
		      const struct policy *p, const struct record *old,
		      struct autoscale_chain *out, struct fault *f)
{
	struct record r;
	int rc;

	record_next(old, p, &r);
	memset(out, 0, sizeof(*out));
	rc = store_begin(a->env.store);
	if (rc == 0)
		rc = make_topic(a, deployment_id, &r, f);
	/* Under the mdscale profile the rule sets the count: no high-cpu
	 * alarm, the memory one as in every profile. */
	for (int k = policy_uses_rule(p) ? 1 : 0; k < 2 && rc == 0; k++)
		rc = make_high_alarm(a, deployment_id, k, &r, NULL, out, f);
	if (rc == 0)
		rc = autoscale_record_save(a, deployment_id, &r);
	if (rc == 0)
		rc = store_commit(a->env.store);
	if (rc != 0) {
		store_rollback(a->env.store);
		memset(out, 0, sizeof(*out));
		not_stored(f, rc, deployment_id, SETTING_FIRST);
		return rc;
	}
	snprintf(out->topic_id, sizeof(out->topic_id), "%s", r.topic);
	snprintf(out->subscription_id, sizeof(out->subscription_id), "%s",
		 r.subscription);
	return 0;
}

int autoscale_setup(struct autoscale *a, const char *deployment_id,
		    const struct policy *p, struct autoscale_chain *out,
		    struct fault *f)
{
	struct record old;

	if (autoscale_check_floor(a, deployment_id, p, f) != 0)
		return f->err;
	autoscale_record_load(a, deployment_id, &old);
	return setup_with(a, deployment_id, p, &old, out, f);
}

/*
 * In the caller's transaction: the topic and subscription of a replaced
 * chain, old's when they are still there (their queued messages stay
 * queued), into r; whichever is missing is made.
 */
static int keep_topic(struct autoscale *a, const char *deployment_id,
		      const struct record *old, struct record *r,
		      struct fault *f)
{
	struct notifications_topic t;
	struct notifications_subscription s;
	struct fault none;

	if (old->topic[0] == '\0' ||
	    notifications_topic_get(a->env.notifications, old->topic, &t,
				    &none) != 0)
		return make_topic(a, deployment_id, r, f);
	snprintf(r->topic, sizeof(r->topic), "%s", t.id);
	if (old->subscription[0] != '\0' &&
	    notifications_subscription_get(a->env.notifications,
					   old->subscription, &s,
					   &none) == 0 &&
	    strcmp(s.topic_id, r->topic) == 0) {
		snprintf(r->subscription, sizeof(r->subscription), "%s",
			 s.id);
		return 0;
	}
	return make_subscription(a, r->topic, r, f);
}

/* In the caller's transaction: deletes the alarms r owns (one already
 * gone does not count) and notes them in gone. */
static int delete_alarms(struct autoscale *a, const struct record *r,
			 struct autoscale_removed *gone, struct fault *f)
{
	int rc = 0;

	for (size_t i = 0; i < r->nalarms && rc == 0; i++) {
		rc = monitoring_alarm_delete(a->env.monitoring, r->alarms[i],
					     f);
		if (rc == MDS_E_NOTFOUND)
			rc = 0;
		else if (rc == 0 && gone->nalarms < AUTOSCALE_REMOVED_MAX)
			snprintf(gone->alarm_ids[gone->nalarms++],
				 sizeof(gone->alarm_ids[0]), "%s",
				 r->alarms[i]);
	}
	return rc;
}

/* In the caller's transaction: deletes the alarms old owns, noted in
 * gone, then makes r's alarms. */
static int replace_alarms(struct autoscale *a, const char *deployment_id,
			  struct record *old, struct record *r,
			  struct autoscale_removed *gone,
			  struct autoscale_chain *out, struct fault *f)
{
	int rc = delete_alarms(a, old, gone, f);

	for (int k = policy_uses_rule(&r->cfg.policy) ? 1 : 0;
	     k < 2 && rc == 0; k++)
		rc = make_high_alarm(a, deployment_id, k, r, old, out, f);
	return rc;
}

/*
 * All or nothing: a missing topic or subscription made again, the old
 * alarms' deletion, the new alarms and the new record are one
 * transaction. Until it is committed, and for good when it fails, the old
 * chain stays whole and keeps working.
 */
int autoscale_replace(struct autoscale *a, const char *deployment_id,
		      const struct policy *p, struct autoscale_removed *gone,
		      struct autoscale_chain *out, struct fault *f)
{
	struct record old, r;
	int rc;

	memset(gone, 0, sizeof(*gone));
	memset(out, 0, sizeof(*out));
	if (autoscale_check_floor(a, deployment_id, p, f) != 0)
		return f->err;
	autoscale_record_load(a, deployment_id, &old);
	record_next(&old, p, &r);
	rc = store_begin(a->env.store);
	if (rc == 0)
		rc = keep_topic(a, deployment_id, &old, &r, f);
	if (rc == 0)
		rc = replace_alarms(a, deployment_id, &old, &r, gone, out, f);
	if (rc == 0)
		rc = autoscale_record_save(a, deployment_id, &r);
	if (rc == 0)
		rc = store_commit(a->env.store);
	if (rc != 0) {
		store_rollback(a->env.store);
		memset(gone, 0, sizeof(*gone));
		memset(out, 0, sizeof(*out));
		not_stored(f, rc, deployment_id,
			   old.set_up ? SETTING_REPLACE : SETTING_FIRST);
		return rc;
	}
	snprintf(out->topic_id, sizeof(out->topic_id), "%s", r.topic);
	snprintf(out->subscription_id, sizeof(out->subscription_id), "%s",
		 r.subscription);
	return 0;
}

/* In the caller's transaction: deletes the chain r records, noting in
 * out what went; a part already gone does not count. */
static int remove_chain(struct autoscale *a, const struct record *r,
			struct autoscale_removed *out, struct fault *f)
{
	int rc = delete_alarms(a, r, out, f);

	if (rc == 0 && r->subscription[0]) {
		rc = notifications_subscription_delete(a->env.notifications,
						       r->subscription, f);
		if (rc == 0)
			snprintf(out->subscription_id,
				 sizeof(out->subscription_id), "%s",
				 r->subscription);
		else if (rc == MDS_E_NOTFOUND)
			rc = 0;
	}
	if (rc == 0 && r->topic[0]) {
		rc = notifications_topic_delete(a->env.notifications, r->topic,
						f);
		if (rc == 0)
			snprintf(out->topic_id, sizeof(out->topic_id), "%s",
				 r->topic);
		else if (rc == MDS_E_NOTFOUND)
			rc = 0;
	}
	return rc;
}

/* All or nothing, as a replacement: the alarms, the subscription, the
 * topic and the record go in one transaction, or all stay and work. */
int autoscale_teardown(struct autoscale *a, const char *deployment_id,
		       struct autoscale_removed *out, struct fault *f)
{
	struct record r;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!autoscale_record_load(a, deployment_id, &r))
		return 0; /* nothing stored, nothing made */
	rc = store_begin(a->env.store);
	if (rc == 0)
		rc = remove_chain(a, &r, out, f);
	if (rc == 0)
		rc = autoscale_record_forget(a, deployment_id);
	if (rc == 0)
		rc = store_commit(a->env.store);
	if (rc != 0) {
		store_rollback(a->env.store);
		memset(out, 0, sizeof(*out));
		not_stored(f, rc, deployment_id, SETTING_REMOVE);
		return rc;
	}
	return 0;
}

/* A deployment's change with its chain that the store did not take
 * (rc: MDS_E_NOSPACE, MDS_E_IO, MDS_E_DB) into f, saying what was asked
 * (verb) and what is as it was (kept); another rc keeps its own fault. */
static void not_taken(struct fault *f, int rc, const char *verb,
		      const char *name, const char *kept)
{
	if (rc == MDS_E_NOSPACE)
		fault_set(f, rc, "", "cannot %s deployment %s: the data "
			  "directory's device is full; %s: free some space "
			  "and try again", verb, name, kept);
	else if (rc == MDS_E_IO || rc == MDS_E_DB)
		fault_set(f, rc, "", "cannot %s deployment %s (%s); %s", verb,
			  name, mds_strerror(rc), kept);
}

/* The chain's removal (its monitoring and notifications side applied at
 * the commit) and the deployment's deletion (undone by deploy when the
 * commit fails): one transaction, so that a refusal changes nothing. */
int autoscale_delete_deployment(struct autoscale *a, const char *deployment_id,
				char *wr_id, struct autoscale_removed *out,
				struct fault *f)
{
	int rc = store_begin(a->env.store);

	wr_id[0] = '\0';
	memset(out, 0, sizeof(*out));
	if (rc == 0)
		rc = autoscale_teardown(a, deployment_id, out, f);
	if (rc == 0)
		rc = deploy_delete(a->env.deploy, deployment_id, wr_id, f);
	if (rc == 0)
		rc = store_commit(a->env.store);
	if (rc == 0)
		return 0;
	store_rollback(a->env.store);
	wr_id[0] = '\0';
	memset(out, 0, sizeof(*out));
	not_taken(f, rc, "delete", deployment_id, "nothing changed (the "
		  "deployment stays, with its autoscale setting)");
	return rc;
}

/* The deployment (undone by deploy when the commit fails) and its chain
 * (its monitoring and notifications side applied at the commit): one
 * transaction, so that a refusal leaves nothing. */
int autoscale_create_deployment(struct autoscale *a,
				const struct deploy_spec *spec,
				const struct policy *p, char *id, char *wr_id,
				struct autoscale_chain *out, struct fault *f)
{
	int rc = store_begin(a->env.store);

	id[0] = wr_id[0] = '\0';
	if (rc == 0)
		rc = deploy_create(a->env.deploy, spec, id, wr_id, f);
	if (rc == 0)
		rc = autoscale_setup(a, id, p, out, f);
	if (rc == 0)
		rc = store_commit(a->env.store);
	if (rc == 0)
		return 0;
	store_rollback(a->env.store);
	id[0] = wr_id[0] = '\0';
	not_taken(f, rc, "create", spec->name, "nothing was created "
		  "(neither the deployment nor its autoscale setting)");
	return rc;
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
