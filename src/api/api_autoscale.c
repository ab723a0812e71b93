/* api_autoscale.c - the REST routes of a deployment's autoscaling. */
#include <string.h>

#include "api/api.h"
#include "notify/autoscale.h"
#include "deploy/deploy.h"

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

/* PUT replaces the policy and sets the chain up again. */
static void put(struct api_call *c)
{
	struct policy p;
	struct fault f;
	json_t *out = NULL;
	char id[DEPLOY_ID_MAX];

	if (autoscale_policy_parse(c->body, &p, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	if (deploy_resolve(c->api->deploy, c->id, id, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	autoscale_teardown(c->api->autoscale, id);
	if (autoscale_setup(c->api->autoscale, id, &p, &out, &f) != 0)
		api_reply_fault(c, &f);
	else
		api_reply(c, 200, out, NULL);
}

static void del(struct api_call *c)
{
	struct fault f;
	char id[DEPLOY_ID_MAX];

	if (deploy_resolve(c->api->deploy, c->id, id, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	autoscale_teardown(c->api->autoscale, id);
	api_reply(c, 200, json_object(), NULL);
}

const struct api_route autoscale_routes[] = {
	{ "GET", "/v1/deployments/*/scaling-history", history },
	{ "GET", "/v1/deployments/*/autoscale", get },
	{ "PUT", "/v1/deployments/*/autoscale", put },
	{ "DELETE", "/v1/deployments/*/autoscale", del },
	{ NULL, NULL, NULL },
};
