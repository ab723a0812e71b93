/* api_deploy.c - the REST routes of deployments and work requests. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "notify/autoscale.h"
#include "deploy/deploy.h"

static void deployments_list(struct api_call *c)
{
	char name[128];
	bool by_name = http_query_get(c->req->query, "displayName", name,
				      sizeof(name)) == 0;

	api_reply(c, 200, deploy_list(c->api->deploy, by_name ? name : NULL),
	      NULL);
}

static void with_wr_header(struct api_call *c, int status, json_t *o,
			   const char *wr_id)
{
	char hdr[128];

	snprintf(hdr, sizeof(hdr), "opc-work-request-id: %s\r\n", wr_id);
	api_reply(c, status, o, hdr);
}

/*
 * A create may ask for autoscaling ("autoscale": true or a policy): the
 * policy is checked before anything is created, and the alarms, topic and
 * subscription are set up right after the deployment.
 */
static void deployments_create(struct api_call *c)
{
	struct fault f;
	struct policy policy;
	json_t *out = NULL, *as = NULL, *chain = NULL, *gone = NULL;
	char wr[64];

	if (json_is_object(c->body)) {
		as = json_object_get(c->body, "autoscale");
		if (as != NULL) {
			json_incref(as);
			json_object_del(c->body, "autoscale");
		}
		if (json_is_false(as) || json_is_null(as)) {
			json_decref(as);
			as = NULL;
		}
	}
	if (as != NULL &&
	    api_autoscale_policy_parse(as, &policy, "autoscale", &f) != 0) {
		json_decref(as);
		api_reply_fault(c, &f);
		return;
	}
	json_decref(as);
	if (deploy_create(c->api->deploy, c->body, &out, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	if (as != NULL) {
		const char *id = json_string_value(json_object_get(out, "id"));

		if (api_autoscale_setup(c->api, id, &policy, &chain, &f) !=
		    0) {
			struct fault ignored;

			deploy_delete(c->api->deploy, id, &gone, &ignored);
			json_decref(gone);
			json_decref(out);
			api_reply_fault(c, &f);
			return;
		}
		json_object_set_new(out, "autoscale", chain);
	}
	snprintf(wr, sizeof(wr), "%s",
		 json_string_value(json_object_get(out, "opc-work-request-id")));
	json_object_del(out, "opc-work-request-id");
	with_wr_header(c, 201, out, wr);
}

static void deployments_get(struct api_call *c)
{
	struct fault f;
	json_t *o = deploy_get(c->api->deploy, c->id, &f);

	api_reply_or_fault(c, o, &f);
}

static void deployments_update(struct api_call *c)
{
	struct fault f;
	json_t *wr = NULL;

	if (deploy_update(c->api->deploy, c->id, c->body, &wr, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	if (wr == NULL) { /* nothing to change */
		deployments_get(c);
		return;
	}
	with_wr_header(c, 202, wr,
		       json_string_value(json_object_get(wr, "id")));
}

static void deployments_delete(struct api_call *c)
{
	struct fault f;
	json_t *wr = NULL;

	if (deploy_delete(c->api->deploy, c->id, &wr, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	autoscale_teardown(c->api->autoscale,
			   json_string_value(json_object_get(wr,
							     "deploymentId")));
	with_wr_header(c, 202, wr,
		       json_string_value(json_object_get(wr, "id")));
}

static void workrequests_get(struct api_call *c)
{
	struct fault f;
	json_t *o = deploy_workrequest(c->api->deploy, c->id, &f);

	api_reply_or_fault(c, o, &f);
}

static void workrequests_list(struct api_call *c)
{
	char dep[128];
	bool by_dep = http_query_get(c->req->query, "deploymentId", dep,
				     sizeof(dep)) == 0;

	api_reply(c, 200,
	      deploy_workrequests(c->api->deploy, by_dep ? dep : NULL), NULL);
}

const struct api_route deploy_routes[] = {
	{ "GET", "/v1/deployments", deployments_list },
	{ "POST", "/v1/deployments", deployments_create },
	{ "GET", "/v1/deployments/*", deployments_get },
	{ "PUT", "/v1/deployments/*", deployments_update },
	{ "DELETE", "/v1/deployments/*", deployments_delete },
	{ "GET", "/v1/workrequests", workrequests_list },
	{ "GET", "/v1/workrequests/*", workrequests_get },
	{ NULL, NULL, NULL },
};
