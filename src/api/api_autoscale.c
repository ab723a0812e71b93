/* api_autoscale.c - the REST routes of a deployment's autoscaling. */
#include <stdbool.h>
#include <string.h>

#include "api/api.h"
#include "notify/autoscale.h"
#include "deploy/deploy.h"
#include "util/err.h"

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

static void history(struct api_call *c)
{
	struct fault f;

	api_reply_or_fault(c, autoscale_history(c->api->autoscale, c->id, &f),
			   &f);
}

static void get(struct api_call *c)
{
	struct fault f;

	api_reply_or_fault(c, autoscale_get(c->api->autoscale, c->id, &f), &f);
}

/* PUT replaces the policy and sets the chain mdscale made up again; the
 * user's own alarms, topics and subscriptions stay. */
static void put(struct api_call *c)
{
	struct policy p;
	struct fault f;
	json_t *dep, *out = NULL;
	struct autoscale_removed gone;
	char id[64];

	if (autoscale_policy_parse(c->body, &p, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	dep = deploy_get(c->api->deploy, c->id, &f);
	if (dep == NULL) {
		api_reply_fault(c, &f);
		return;
	}
	snprintf(id, sizeof(id), "%s",
		 json_string_value(json_object_get(dep, "id")));
	json_decref(dep);
	if (autoscale_replace(c->api->autoscale, id, &p, &gone, &out,
			      &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	/* What the replaced chain was (only what mdscale had made). */
	json_object_set_new(out, "deleted", api_autoscale_removed(&gone));
	api_reply(c, 200, out, NULL);
}

static void del(struct api_call *c)
{
	struct fault f;
	struct autoscale_removed gone;
	json_t *dep = deploy_get(c->api->deploy, c->id, &f);

	if (dep == NULL) {
		api_reply_fault(c, &f);
		return;
	}
	autoscale_teardown(c->api->autoscale,
			   json_string_value(json_object_get(dep, "id")),
			   &gone);
	json_decref(dep);
	api_reply(c, 200,
		  json_pack("{s:o}", "deleted", api_autoscale_removed(&gone)),
		  NULL);
}

/*
 * The function's configuration: /v1/functions/autoscale/config, the
 * default, or with ?deploymentId= one deployment's. Only the autoscale
 * function has one.
 */
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
	return true;
}

static void config_get(struct api_call *c)
{
	struct fault f;
	char dep[128];
	bool by_dep;

	if (!config_target(c, dep, sizeof(dep), &by_dep))
		return;
	api_reply_or_fault(c,
			   autoscale_config_get(c->api->autoscale,
						by_dep ? dep : NULL, &f),
			   &f);
}

static void config_put(struct api_call *c)
{
	struct fault f;
	json_t *out = NULL;
	char dep[128];
	bool by_dep;

	if (!config_target(c, dep, sizeof(dep), &by_dep))
		return;
	if (autoscale_config_set(c->api->autoscale, by_dep ? dep : NULL,
				 c->body, &out, &f) != 0)
		api_reply_fault(c, &f);
	else
		api_reply_or_fault(c, out, &f);
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
				"deploymentId: is required (the default "
				"configuration is set, not deleted)");
		return;
	}
	if (autoscale_config_reset(c->api->autoscale, dep, &f) != 0)
		api_reply_fault(c, &f);
	else
		api_reply_or_fault(c,
				   autoscale_config_get(c->api->autoscale,
							dep, &f),
				   &f);
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
