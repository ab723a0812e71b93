/* api_autoscale.c - the REST routes of a deployment's autoscaling, and the
 * policy's body (also the "autoscale" member of a new deployment). */
#include <stdbool.h>
#include <string.h>

#include "api/api.h"
#include "api/api_bodies.h"
#include "api/api_watch.h"
#include "api/fields.h"
#include "notify/autoscale.h"
#include "notify/autoscale_config.h"
#include "deploy/deploy.h"
#include "util/err.h"
#include "api/jsonx.h"

/* ---- the policy ---- */

/* "profile": where the policy starts from. */
static int check_profile(const void *member, const struct field *fd,
			 const char *path, struct fault *f)
{
	(void)fd;
	struct policy p;

	if (policy_profile(member, &p) != 0)
		return fields_fault_type(f, path,
					 "one of default, recipe, mdscale");
	return 0;
}

/* An alarm's window, statistic or duration goes into an MQL query or an
 * ISO 8601 field as it is: nothing that could break out of either. */
static int check_token(const void *member, const struct field *fd,
		       const char *path, struct fault *f)
{
	(void)fd;
	if (strpbrk(member, "\"{}()[] ") != NULL)
		return fields_fault_type(f, path,
					 "a short string such as 1m or PT1M");
	return 0;
}

#define P_UINT(key, member, text)                                            \
	{ .name = key, .type = FIELD_INTEGER, FIELD_AT(struct policy, member), \
	  .min = 1, .max = 256, .doc = text }
#define P_NUM(key, member, lo, hi, text)                                     \
	{ .name = key, .type = FIELD_NUMBER, FIELD_AT(struct policy, member),  \
	  .min = lo, .max = hi, .doc = text }
#define P_BOOL(key, member, text)                                            \
	{ .name = key, .type = FIELD_BOOL, FIELD_AT(struct policy, member),    \
	  .doc = text }
#define P_COOLDOWN(key, member, text)                                        \
	{ .name = key, .type = FIELD_DURATION,                               \
	  FIELD_AT(struct policy, member), .unit_ms = 1000, .min = 0,        \
	  .max = 86400, .doc = text }
#define P_TOKEN(key, member, text)                                           \
	{ .name = key, .type = FIELD_STRING, FIELD_AT(struct policy, member),  \
	  .min = 1, .check = check_token, .doc = text }

/* The policy, field by field; docs/autoscale.md lists the same. */
static const struct field policy_fields[] = {
	{ .name = "profile", .type = FIELD_STRING,
	  FIELD_AT(struct policy, profile), .check = check_profile,
	  .doc = "default, recipe or mdscale: the values the others "
		 "override" },
	{ .name = "minInstances", .type = FIELD_INTEGER,
	  FIELD_AT(struct policy, min_instances), .min = 0, .max = 256,
	  .doc = "never fewer instances (0: to zero after idleSeconds, "
		 "where the backend can)" },
	P_UINT("maxInstances", max_instances, "never more instances"),
	P_UINT("step", step, "instances per scale-out or scale-in"),
	P_BOOL("proportional", proportional,
	       "scale out to ceil(n * cpu / cpuTarget)"),
	P_NUM("cpuTarget", cpu_target, 1, 1000,
	      "utilization aimed at by proportional steps"),
	P_NUM("cpuHigh", cpu_high, 0, 1000, "the high-cpu alarm's threshold"),
	P_NUM("cpuLow", cpu_low, 0, 1000, "the low-cpu alarm's threshold"),
	P_NUM("memHigh", mem_high, 0, 100, "the high-mem alarm's threshold"),
	P_NUM("memLow", mem_low, 0, 100, "the low-mem alarm's threshold"),
	P_BOOL("hysteresis", hysteresis,
	       "refuse moves that would cross cpuHigh"),
	P_COOLDOWN("cooldownOutSeconds", cooldown_out_ms,
		   "after a scale-out, before the next"),
	P_COOLDOWN("cooldownInSeconds", cooldown_in_ms,
		   "after a scale-in, before the next"),
	P_COOLDOWN("cooldownUpSeconds", cooldown_up_ms,
		   "after a shape-up, before the next"),
	P_COOLDOWN("cooldownDownSeconds", cooldown_down_ms,
		   "after a shape-down, before the next"),
	P_COOLDOWN("idleSeconds", idle_ms,
		   "minInstances 0: no request for this long scales to zero "
		   "(0: never)"),
	P_TOKEN("highWindow", high_window, "the high alarms' MQL window"),
	P_TOKEN("lowWindow", low_window, "the low alarms' MQL window"),
	P_TOKEN("highStatistic", high_statistic,
		"the high alarms' statistic"),
	P_TOKEN("lowStatistic", low_statistic, "the low alarms' statistic"),
	P_TOKEN("highPendingDuration", high_pending,
		"the high alarms' pending duration"),
	P_TOKEN("lowPendingDuration", low_pending,
		"the low alarms' pending duration"),
	P_TOKEN("highRepeatDuration", high_repeat,
		"the high alarms' repeat duration"),
	P_TOKEN("lowRepeatDuration", low_repeat,
		"the low alarms' repeat duration"),
	P_NUM("targetUtilization", rule_target, 0.05, 1,
	      "mdscale: the share of an instance's capacity aimed at"),
	{ .name = "upWindowSeconds", .type = FIELD_DURATION,
	  FIELD_AT(struct policy, rule_up_ms), .unit_ms = 1000, .min = 1,
	  .max = 60, .doc = "mdscale: the load's window for scaling out" },
	{ .name = "downWindowSeconds", .type = FIELD_DURATION,
	  FIELD_AT(struct policy, rule_down_ms), .unit_ms = 1000, .min = 0,
	  .max = 900, .doc = "mdscale: the load's window for scaling in" },
	{ .name = "holdSeconds", .type = FIELD_DURATION,
	  FIELD_AT(struct policy, rule_hold_ms), .unit_ms = 1000, .min = 0,
	  .max = 3600, .doc = "mdscale: no scale-in this long after a "
			      "scale-out" },
	P_BOOL("earlyCheck", rule_early,
	       "mdscale: scale out inside a second once its shortfall is "
	       "certain"),
	FIELD_END
};

const struct field *api_autoscale_policy_fields(void)
{
	return policy_fields;
}

int api_autoscale_policy_parse(const json_t *v, struct policy *p,
			       const char *path, struct fault *f)
{
	const struct field *profile = fields_find(policy_fields, "profile");
	const json_t *given = json_object_get(v, "profile");
	char at[FIELD_PATH_MAX], why[200];
	int rc;

	policy_default(p);
	if (json_is_true(v))
		return 0;
	if (!json_is_object(v))
		return fields_fault_type(f, path, "true, or an object with a "
					 "profile and overrides");
	/* The profile first: the other fields override its values. */
	fields_path(at, sizeof(at), path, "profile");
	if (given != NULL) {
		rc = fields_parse_value(profile, given, p, at, f);
		if (rc != 0)
			return rc;
		policy_profile(p->profile, p);
	}
	rc = fields_parse(policy_fields, v, p, path, NULL, f);
	if (rc != 0)
		return rc;
	if (policy_validate(p, why, sizeof(why)) != 0)
		return fault_set(f, MDS_E_INVAL, path[0] ? path : "autoscale",
				 "%s: %s", path[0] ? path : "autoscale", why);
	return 0;
}

json_t *api_autoscale_policy_json(const struct policy *p)
{
	return fields_to_json(policy_fields, p);
}

/* ---- the answers ---- */

static json_t *chain_json(const struct policy *p,
			  const struct autoscale_chain *ch)
{
	json_t *ids = json_array();

	for (size_t i = 0; i < ch->nalarms; i++)
		json_array_append_new(ids, json_string(ch->alarm_ids[i]));
	return json_pack("{s:o, s:s, s:s, s:o}", "policy",
			 api_autoscale_policy_json(p), "topicId",
			 ch->topic_id, "subscriptionId", ch->subscription_id,
			 "alarmIds", ids);
}

static json_t *state_json(const struct autoscale_state *st)
{
	/* The API speaks RFC 3339 (null: never). */
	return json_pack("{s:s, s:o, s:s, s:b, s:s, s:s, s:o, s:o, s:o, s:o}",
			 "deploymentId", st->deployment_id, "policy",
			 api_autoscale_policy_json(&st->policy),
			 "configSource",
			 st->own_config ? "deployment" : "default", "setUp",
			 st->set_up, "topicId", st->topic_id,
			 "subscriptionId", st->subscription_id,
			 "timeLastScaleOut", jsonx_time(st->hist.last_out_ms),
			 "timeLastScaleIn", jsonx_time(st->hist.last_in_ms),
			 "timeLastShapeUp", jsonx_time(st->hist.last_up_ms),
			 "timeLastShapeDown",
			 jsonx_time(st->hist.last_down_ms));
}

json_t *api_autoscale_removed(const struct autoscale_removed *r)
{
	json_t *alarms = json_array();

	for (size_t i = 0; i < r->nalarms; i++)
		json_array_append_new(alarms, json_string(r->alarm_ids[i]));
	return json_pack("{s:o, s:o, s:o}", "alarmIds", alarms, "topicId",
			 r->topic_id[0] ? json_string(r->topic_id)
					: json_null(),
			 "subscriptionId",
			 r->subscription_id[0]
				 ? json_string(r->subscription_id)
				 : json_null());
}

struct autoscale *api_autoscale_module(struct api_call *c)
{
	if (c->api->autoscale == NULL)
		api_reply_error(c, 503, "ServiceUnavailable", NULL,
				"the autoscale function is not running (the "
				"daemon is stopping)");
	return c->api->autoscale;
}

int api_autoscale_create_deployment(struct api *api,
				    const struct deploy_spec *spec,
				    const struct policy *p, char *id,
				    char *wr_id, json_t **out,
				    struct fault *f)
{
	struct autoscale_chain ch;
	int rc;

	if (api->autoscale == NULL)
		return fault_set(f, MDS_E_UNAVAIL, "", "the autoscale function "
				 "is not running (the daemon is stopping)");
	rc = autoscale_create_deployment(api->autoscale, spec, p, id, wr_id,
					 &ch, f);
	if (rc == 0)
		*out = chain_json(p, &ch);
	return rc;
}

/* ---- the routes ---- */

static void add_decision(void *arg, const char *decision)
{
	json_t *o = json_loads(decision, 0, NULL);

	/* Decisions recorded before times were RFC 3339 held epoch ms. */
	if (json_is_integer(json_object_get(o, "time")))
		json_object_set_new(o, "time",
				    jsonx_time(json_integer_value(
					    json_object_get(o, "time"))));
	if (o != NULL)
		json_array_append_new(arg, o);
}

static void history(struct api_call *c)
{
	struct autoscale *a = api_autoscale_module(c);
	json_t *items;
	struct fault f;

	if (a == NULL)
		return;
	items = json_array();
	if (autoscale_history_each(a, c->id, add_decision, items, &f) != 0) {
		json_decref(items);
		api_reply_fault(c, &f);
		return;
	}
	api_reply(c, 200, json_pack("{s:o}", "items", items), NULL);
}

static void get(struct api_call *c)
{
	struct autoscale *a = api_autoscale_module(c);
	struct autoscale_state st;
	struct fault f;

	if (a == NULL)
		return;
	if (autoscale_get(a, c->id, &st, &f) != 0)
		api_reply_fault(c, &f);
	else
		api_reply(c, 200, state_json(&st), NULL);
}

/* PUT replaces the policy and sets the chain mdscale made up again; the
 * user's own alarms, topics and subscriptions stay. */
static void put(struct api_call *c)
{
	struct autoscale_removed gone;
	struct autoscale_chain ch;
	struct policy p;
	struct fault f;
	json_t *out;
	char id[DEPLOY_ID_MAX];
	struct autoscale *a = api_autoscale_module(c);

	if (a == NULL)
		return;
	if (api_autoscale_policy_parse(c->body, &p, "", &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	if (deploy_resolve(c->api->deploy, c->id, id, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	if (autoscale_replace(a, id, &p, &gone, &ch, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	out = chain_json(&p, &ch);
	/* What the replaced chain was (only what mdscale had made). */
	json_object_set_new(out, "deleted", api_autoscale_removed(&gone));
	api_reply(c, 200, out, NULL);
}

static void del(struct api_call *c)
{
	struct autoscale_removed gone;
	struct fault f;
	char id[DEPLOY_ID_MAX];
	struct autoscale *a = api_autoscale_module(c);

	if (a == NULL)
		return;
	if (deploy_resolve(c->api->deploy, c->id, id, &f) != 0 ||
	    autoscale_teardown(a, id, &gone, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	api_reply(c, 200,
		  json_pack("{s:o}", "deleted", api_autoscale_removed(&gone)),
		  NULL);
}

/* ---- the function's configuration ----
 *
 * /v1/functions/autoscale/config: the default, or with ?deploymentId= one
 * deployment's. The body is the policy's fields (the table above) and
 * "shapes", merged over the configuration in force.
 */

static json_t *config_json(const struct autoscale_config_view *v)
{
	json_t *o = api_autoscale_policy_json(&v->config.policy);
	json_t *names = json_array();

	for (size_t i = 0; i < v->config.nshapes; i++)
		json_array_append_new(names,
				      json_string(v->config.shapes[i]));
	json_object_set_new(o, "shapes", names);
	o = json_pack("{s:s, s:o}", "source",
		      v->own ? "deployment" : "default", "config", o);
	if (v->deployment_id[0] != '\0')
		json_object_set_new(o, "deploymentId",
				    json_string(v->deployment_id));
	return o;
}

/* Reads "shapes": a list of shape names, small to large. */
static int parse_shapes(const json_t *v, struct autoscale_config *c,
			struct fault *f)
{
	size_t i;
	const json_t *x;

	if (!json_is_array(v))
		return fields_fault_type(f, "shapes", "an array of strings");
	if (json_array_size(v) > SHAPE_LADDER_MAX)
		return fault_set(f, MDS_E_INVAL, "shapes",
				 "shapes must list at most %d shapes",
				 SHAPE_LADDER_MAX);
	json_array_foreach(v, i, x) {
		char at[FIELD_PATH_MAX];

		snprintf(at, sizeof(at), "shapes[%zu]", i);
		if (!json_is_string(x) || json_string_length(x) == 0 ||
		    json_string_length(x) > SHAPE_NAME_MAX)
			return fields_fault_type(f, at, "a shape's name");
		snprintf(c->shapes[i], sizeof(c->shapes[i]), "%s",
			 json_string_value(x));
	}
	c->nshapes = json_array_size(v);
	return 0;
}

int api_autoscale_config_parse(const json_t *body, struct autoscale_config *c,
			       struct fault *f)
{
	const struct field *profile = fields_find(policy_fields, "profile");
	json_t *rest;
	struct policy tmp;
	int rc = 0;

	if (!json_is_object(body))
		return fields_fault_type(f, "", "an object");
	if (json_object_get(body, "profile") != NULL) {
		rc = fields_parse_value(profile,
					json_object_get(body, "profile"), &tmp,
					"profile", f);
		if (rc != 0)
			return rc;
		policy_profile(tmp.profile, &c->policy);
	}
	rest = json_copy((json_t *)body);
	json_object_del(rest, "shapes");
	rc = fields_parse(policy_fields, rest, &c->policy, "", NULL, f);
	json_decref(rest);
	if (rc == 0 && json_object_get(body, "shapes") != NULL)
		rc = parse_shapes(json_object_get(body, "shapes"), c, f);
	return rc;
}

/* Which configuration the path and query name; false after answering
 * (also 503 while the autoscale function is not running). */
static bool config_target(struct api_call *c, char *dep, size_t depsz,
			  bool *by_dep)
{
	int rc;

	if (strcmp(c->id, "autoscale") != 0) {
		api_reply_error(c, 404, "NotFound", NULL,
				"only the autoscale function has a "
				"configuration");
		return false;
	}
	rc = http_query_get(c->req->query, "deploymentId", dep, depsz);
	if (rc == MDS_E_LIMIT) {
		api_reply_error(c, 404, "NotFound", "deploymentId",
				"no such deployment");
		return false;
	}
	*by_dep = rc == 0;
	return api_autoscale_module(c) != NULL;
}

static void config_reply(struct api_call *c, const char *dep)
{
	struct autoscale_config_view v;
	struct fault f;

	if (autoscale_config_get(c->api->autoscale, dep, &v, &f) != 0)
		api_reply_fault(c, &f);
	else
		api_reply(c, 200, config_json(&v), NULL);
}

static void config_get(struct api_call *c)
{
	char dep[128];
	bool by_dep;

	if (config_target(c, dep, sizeof(dep), &by_dep))
		config_reply(c, by_dep ? dep : NULL);
}

/* The mdscale rule runs for a deployment set up with it: as the default
 * configuration, which hand-built alarm chains decide by, it would only
 * silence their CPU alarms. Returns 0, or MDS_E_INVAL with f filled. */
static int default_rule(bool by_dep, const struct policy *p,
			struct fault *f)
{
	if (by_dep || !policy_uses_rule(p))
		return 0;
	return fault_set(f, MDS_E_INVAL, "profile", "profile: mdscale is "
			 "chosen per deployment (--autoscale-profile, PUT "
			 "/v1/deployments/{id}/autoscale), not as the default "
			 "configuration");
}

/* PUT: with dryRun=true, only checked (api_watch.h). */
static void config_put(struct api_call *c)
{
	struct autoscale_config_view v;
	struct fault f;
	char dep[128];
	bool by_dep;

	if (!config_target(c, dep, sizeof(dep), &by_dep))
		return;
	if (autoscale_config_get(c->api->autoscale, by_dep ? dep : NULL, &v,
				 &f) != 0 ||
	    api_autoscale_config_parse(c->body, &v.config, &f) != 0 ||
	    default_rule(by_dep, &v.config.policy, &f) != 0 ||
	    (api_dry_run(c) ? autoscale_config_check(c->api->autoscale,
						     by_dep ? dep : NULL,
						     &v.config, &f)
			    : autoscale_config_set(c->api->autoscale,
						   by_dep ? dep : NULL,
						   &v.config, &f)) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	if (api_dry_run(c))
		api_reply_dry_run(c);
	else
		config_reply(c, by_dep ? dep : NULL);
}

static void config_delete(struct api_call *c)
{
	struct fault f;
	char dep[128];
	bool by_dep;

	if (!config_target(c, dep, sizeof(dep), &by_dep))
		return;
	if (!by_dep) {
		api_reply_error(c, 400, "MissingParameter", "deploymentId",
				"deploymentId is required (the default "
				"configuration is set, not deleted)");
		return;
	}
	if (autoscale_config_reset(c->api->autoscale, dep, &f) != 0)
		api_reply_fault(c, &f);
	else
		config_reply(c, dep);
}

const struct api_route autoscale_routes[] = {
	{ "GET", "/v1/deployments/*/scaling-history", history },
	{ "GET", "/v1/deployments/*/autoscale", get },
	{ "PUT", "/v1/deployments/*/autoscale", put },
	{ "DELETE", "/v1/deployments/*/autoscale", del },
	{ "GET", "/v1/functions/*/config", config_get },
	{ "PUT", "/v1/functions/*/config", config_put },
	{ "DELETE", "/v1/functions/*/config", config_delete },
	{ NULL, NULL, NULL },
};
