/*
 * api_monitoring.c - the REST routes of metrics, queries and alarms (see
 * docs/api.md and docs/monitoring.md). The module does the work; these
 * routes only pick the pieces out of the request and choose the status.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "monitoring/monitoring.h"
#include "util/err.h"

/* Answers 503 while the module is not (or no longer) running. */
static struct monitoring *module(struct api_call *c)
{
	if (c->api->monitoring == NULL)
		api_reply_error(c, 503, "ServiceUnavailable", NULL,
				"monitoring is not running (the daemon is "
				"starting or stopping)");
	return c->api->monitoring;
}

static void metrics_post(struct api_call *c)
{
	struct monitoring *m = module(c);
	struct fault f;
	json_t *out;

	if (m == NULL)
		return;
	if (monitoring_post(m, c->body, &out, &f) != 0)
		api_reply_fault(c, &f);
	else
		api_reply(c, 200, out, NULL);
}

static void metrics_query(struct api_call *c)
{
	struct monitoring *m = module(c);
	struct fault f;
	json_t *out;

	if (m == NULL)
		return;
	if (monitoring_query(m, c->body, &out, &f) != 0)
		api_reply_fault(c, &f);
	else
		api_reply(c, 200, out, NULL);
}

static void alarms_list(struct api_call *c)
{
	struct monitoring *m = module(c);
	char name[512];
	int rc;

	if (m == NULL)
		return;
	rc = http_query_get(c->req->query, "displayName", name, sizeof(name));
	if (rc == MDS_E_LIMIT) /* longer than any displayName */
		api_reply(c, 200, json_pack("{s:[]}", "items"), NULL);
	else
		api_reply(c, 200,
			  monitoring_alarm_list(m, rc == 0 ? name : NULL),
			  NULL);
}

static void alarms_create(struct api_call *c)
{
	struct monitoring *m = module(c);
	struct fault f;
	json_t *out;

	if (m == NULL)
		return;
	if (monitoring_alarm_create(m, c->body, &out, &f) != 0)
		api_reply_fault(c, &f);
	else
		api_reply(c, 201, out, NULL);
}

static void alarms_get(struct api_call *c)
{
	struct monitoring *m = module(c);
	struct fault f;

	if (m != NULL)
		api_reply_or_fault(c, monitoring_alarm_get(m, c->id, &f), &f);
}

static void alarms_update(struct api_call *c)
{
	struct monitoring *m = module(c);
	struct fault f;
	json_t *out;

	if (m == NULL)
		return;
	if (monitoring_alarm_update(m, c->id, c->body, &out, &f) != 0)
		api_reply_fault(c, &f);
	else
		api_reply(c, 200, out, NULL);
}

/* Answers 200 with the alarm as it was, lifecycleState DELETED. */
static void alarms_delete(struct api_call *c)
{
	struct monitoring *m = module(c);
	struct fault f;
	json_t *o;

	if (m == NULL)
		return;
	o = monitoring_alarm_get(m, c->id, &f);
	if (o == NULL || monitoring_alarm_delete(m, c->id, &f) != 0) {
		json_decref(o);
		api_reply_fault(c, &f);
		return;
	}
	json_object_set_new(o, "lifecycleState", json_string("DELETED"));
	api_reply(c, 200, o, NULL);
}

static void alarms_status(struct api_call *c)
{
	struct monitoring *m = module(c);
	struct fault f;

	if (m != NULL)
		api_reply_or_fault(c, monitoring_alarm_status(m, c->id, &f),
				   &f);
}

static void alarms_history(struct api_call *c)
{
	struct monitoring *m = module(c);
	char arg[32], *end = arg;
	long limit = 100;
	struct fault f;
	int rc;

	if (m == NULL)
		return;
	rc = http_query_get(c->req->query, "limit", arg, sizeof(arg));
	if (rc != MDS_E_NOTFOUND) {
		errno = 0;
		if (rc == 0)
			limit = strtol(arg, &end, 10);
		if (rc != 0 || arg[0] < '0' || arg[0] > '9' || *end != '\0' ||
		    errno != 0 || limit < 1 || limit > 1000) {
			api_reply_error(c, 400, "InvalidParameter", "limit",
					"limit must be an integer from 1 to "
					"1000");
			return;
		}
	}
	api_reply_or_fault(c,
			   monitoring_alarm_history_limit(m, c->id,
							  (size_t)limit, &f),
			   &f);
}

const struct api_route monitoring_routes[] = {
	{ "POST", "/v1/metrics", metrics_post },
	{ "POST", "/v1/metrics/query", metrics_query },
	{ "GET", "/v1/alarms", alarms_list },
	{ "POST", "/v1/alarms", alarms_create },
	{ "GET", "/v1/alarms/*", alarms_get },
	{ "PUT", "/v1/alarms/*", alarms_update },
	{ "DELETE", "/v1/alarms/*", alarms_delete },
	{ "GET", "/v1/alarms/*/status", alarms_status },
	{ "GET", "/v1/alarms/*/history", alarms_history },
	{ NULL, NULL, NULL },
};
