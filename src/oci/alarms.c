/*
 * alarms.c - scale-down alarms in OCI Monitoring; see alarms.h.
 *
 * ensure is three requests in a row: GetAlarm of the firing alarm (for
 * the fields to copy), ListAlarms in its compartment by display name (an
 * alarm whose query names the deployment means done), then CreateAlarm
 * with an opc-retry-token so that a retried POST makes one alarm.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "oci/alarms.h"
#include "oci/client.h"
#include "oci/datascience.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/xalloc.h"

#define ALARMS_API "/20180401/alarms"

enum step { GET_FIRING, LIST, CREATE, DELETE };

struct aop {
	struct oci_client *c;
	enum step step;
	char *base;
	char *title, *deployment_id, *firing_id, *query, *body, *repeat;
	json_t *firing;    /* GetAlarm's answer */
	char retry_token[33]; /* CreateAlarm's opc-retry-token */
	oci_alarm_done_fn *done;
	void *arg;
};

static void aop_free(struct aop *op)
{
	free(op->base);
	free(op->title);
	free(op->deployment_id);
	free(op->firing_id);
	free(op->query);
	free(op->body);
	free(op->repeat);
	json_decref(op->firing);
	free(op);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void on_answer(void *arg, const struct oci_response *res);

static int send_req(struct aop *op, const char *method, const char *url,
		    const char *body)
{
	struct oci_request req = { .method = method, .url = url, .body = body,
				   .body_len = body ? strlen(body) : 0,
				   .retry_token = op->retry_token };

	return oci_client_send(op->c, &req, on_answer, op, NULL);
}

static void finish(struct aop *op, int rc, const char *id, int created,
		   const char *diag)
{
	op->done(op->arg, rc, id, created, diag);
	aop_free(op);
}

static void fail(struct aop *op, const struct oci_response *res,
		 const char *what)
{
	char diag[512], oci[256] = "";

	if (!res->error)
		oci_error_text(res->body, res->body_len, oci, sizeof(oci));
	mds_diag(diag, sizeof(diag), "%s: %s%ld %s (opc-request-id %s)", what,
		 res->error ? res->detail : "HTTP ",
		 res->error ? 0L : res->status, oci, res->opc_request_id);
	finish(op, res->error ? res->error
	       : res->status == 404 ? MDS_E_NOTFOUND
				    : MDS_E_IO,
	       NULL, 0, diag);
}

/* The existing alarm for the deployment in a ListAlarms answer, or NULL. */
static const char *existing(struct aop *op, json_t *list)
{
	size_t i;
	json_t *a;

	json_array_foreach(list, i, a) {
		const char *q = json_string_value(json_object_get(a, "query"));
		const char *id = json_string_value(json_object_get(a, "id"));

		if (q && id && strstr(q, op->deployment_id))
			return id;
	}
	return NULL;
}

static char *create_body(struct aop *op)
{
	json_t *f = op->firing, *doc;
	char *s;

	doc = json_pack(
		"{s:s,s:O,s:O,s:O,s:s,s:O,s:O,s:b,s:s,s:s}", "displayName",
		op->title, "compartmentId", json_object_get(f, "compartmentId"),
		"metricCompartmentId", json_object_get(f, "metricCompartmentId"),
		"namespace", json_object_get(f, "namespace"), "query",
		op->query, "severity", json_object_get(f, "severity"),
		"destinations", json_object_get(f, "destinations"), "isEnabled",
		1, "repeatNotificationDuration", op->repeat ? op->repeat : "PT5M",
		"messageFormat", "ONS_OPTIMIZED");
	if (!doc)
		return NULL; /* the firing alarm lacked a field */
	if (op->body)
		json_object_set_new(doc, "body", json_string(op->body));
	s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return s;
}

/* Next request after GetAlarm: ListAlarms by compartment and name. */
static int after_firing(struct aop *op, const struct oci_response *res)
{
	const char *comp;
	char *url;
	int rc;

	op->firing = json_loadb(res->body, res->body_len, 0, NULL);
	comp = json_string_value(json_object_get(op->firing, "compartmentId"));
	if (!comp || strpbrk(comp, "&?#/ ") || strpbrk(op->title, "&?#/ "))
		return MDS_E_PARSE;
	url = xasprintf("%s" ALARMS_API "?compartmentId=%s&displayName=%s",
			op->base, comp, op->title);
	op->step = LIST;
	rc = send_req(op, "GET", url, NULL);
	free(url);
	return rc;
}

static int after_list(struct aop *op, const struct oci_response *res,
		      int *done)
{
	json_t *list = json_loadb(res->body, res->body_len, 0, NULL);
	const char *id = existing(op, list);
	char *url, *body;
	int rc;

	*done = 0;
	if (id) {
		*done = 1;
		finish(op, 0, id, 0, "");
		json_decref(list);
		return 0;
	}
	json_decref(list);
	body = create_body(op);
	if (!body)
		return MDS_E_PARSE;
	url = xasprintf("%s" ALARMS_API, op->base);
	op->step = CREATE;
	ids_random_hex(op->retry_token, 16);
	rc = send_req(op, "POST", url, body);
	free(url);
	free(body);
	return rc;
}

static void on_answer(void *arg, const struct oci_response *res)
{
	struct aop *op = arg;
	int ok = !res->error && res->status >= 200 && res->status < 300;
	int rc = 0, done = 0;

	switch (op->step) {
	case GET_FIRING:
		if (!ok)
			return fail(op, res, "GetAlarm of the firing alarm");
		rc = after_firing(op, res);
		break;
	case LIST:
		if (!ok)
			return fail(op, res, "ListAlarms");
		rc = after_list(op, res, &done);
		if (done)
			return;
		break;
	case CREATE: {
		json_t *a;

		if (!ok)
			return fail(op, res, "CreateAlarm");
		a = json_loadb(res->body, res->body_len, 0, NULL);
		log_info("oci", "created alarm %s for %s in OCI Monitoring",
			 op->title, op->deployment_id);
		finish(op, 0, json_string_value(json_object_get(a, "id")), 1,
		       "");
		json_decref(a);
		return;
	}
	case DELETE:
		if (!ok && !(res->status == 404 && !res->error))
			return fail(op, res, "DeleteAlarm");
		finish(op, 0, op->firing_id, 0, "");
		return;
	}
	if (rc != 0)
		finish(op, rc, NULL, 0,
		       "the firing alarm's answer lacks a field the new alarm "
		       "copies");
}

int oci_alarm_ensure(struct oci_client *c, const char *monitoring,
		     const struct oci_alarm_want *w, oci_alarm_done_fn *done,
		     void *arg)
{
	struct aop *op;
	char *url;
	int rc;

	if (!w->title || !w->deployment_id || !w->firing_alarm_id ||
	    !w->query || strpbrk(w->firing_alarm_id, "/?#"))
		return MDS_E_INVAL;
	op = xcalloc(1, sizeof(*op));
	op->c = c;
	op->base = xstrdup(monitoring);
	op->title = xstrdup(w->title);
	op->deployment_id = xstrdup(w->deployment_id);
	op->firing_id = xstrdup(w->firing_alarm_id);
	op->query = xstrdup(w->query);
	op->body = dup_or_null(w->body);
	op->repeat = dup_or_null(w->repeat);
	op->done = done;
	op->arg = arg;
	op->step = GET_FIRING;
	url = xasprintf("%s" ALARMS_API "/%s", monitoring, w->firing_alarm_id);
	rc = send_req(op, "GET", url, NULL);
	free(url);
	if (rc != 0)
		aop_free(op);
	return rc;
}

int oci_alarm_delete(struct oci_client *c, const char *monitoring,
		     const char *alarm_id, oci_alarm_done_fn *done, void *arg)
{
	struct aop *op;
	char *url;
	int rc;

	if (!alarm_id || !*alarm_id || strpbrk(alarm_id, "/?#"))
		return MDS_E_INVAL;
	op = xcalloc(1, sizeof(*op));
	op->c = c;
	op->firing_id = xstrdup(alarm_id);
	op->done = done;
	op->arg = arg;
	op->step = DELETE;
	url = xasprintf("%s" ALARMS_API "/%s", monitoring, alarm_id);
	rc = send_req(op, "DELETE", url, NULL);
	free(url);
	if (rc != 0)
		aop_free(op);
	return rc;
}
