/*
 * api_alertmanager.c - POST /v1/alertmanager/{topicId}: Alertmanager's
 * webhook (payload version 4) as OCI alarm messages on a topic.
 *
 * The whole payload is checked before anything is published: a body that
 * is not Alertmanager's format answers 400 naming the first field at fault,
 * an unknown topic 404, and nothing changes. ?resourceLabel=NAME names the
 * label whose value becomes the messages' resourceId (default
 * "deployment", the label of mdscale's own metrics). Like every POST, it
 * needs the bearer token (Alertmanager's http_config.authorization), and,
 * when the configuration's webhookReceiver has a secret, a Standard
 * Webhooks signature that is fresh and not a replay (api_webhook_verify()).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_bodies.h"
#include "core/iso8601.h"
#include "notify/alertmanager.h"
#include "util/err.h"
#include "util/xalloc.h"

#define AM_MAX_ALERTS 1000     /* alerts in one webhook */
#define AM_LABEL_NAME_MAX 128  /* bytes of ?resourceLabel= */
#define AM_EXPR_MAX 4096       /* bytes of the expression kept from the
				  generator URL */
#define AM_DEFAULT_RESOURCE_LABEL "deployment"

/* The parsed alerts; strings are borrowed from the request's JSON. */
struct payload {
	struct amalert *alerts;
	size_t n;
};

static void payload_free(struct payload *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free((void *)p->alerts[i].labels);
		free((void *)p->alerts[i].expr);
	}
	free(p->alerts);
}

/* Reads string member key of o into *out; NULL allowed when !required. */
static int get_str(json_t *o, const char *key, const char *where,
		   bool required, const char **out, struct fault *f)
{
	json_t *v = json_object_get(o, key);
	char field[64];

	snprintf(field, sizeof(field), "%s%s", where, key);
	*out = json_string_value(v);
	if (v == NULL && !required)
		return 0;
	if (v == NULL)
		return fault_set(f, MDS_E_INVAL, field,
				 "%s is required (an Alertmanager webhook "
				 "payload, version 4)", field);
	if (*out == NULL)
		return fault_set(f, MDS_E_INVAL, field, "%s: must be a string",
				 field);
	return 0;
}

/* Reads an object of string values (labels, annotations). */
static int get_labels(json_t *o, const char *key, const char *where,
		      struct amalert_label **out, size_t *n, struct fault *f)
{
	json_t *m = json_object_get(o, key), *v;
	const char *name;
	char field[64];
	size_t k = 0;

	snprintf(field, sizeof(field), "%s%s", where, key);
	*out = NULL;
	*n = 0;
	if (!json_is_object(m))
		return fault_set(f, MDS_E_INVAL, field,
				 "%s: must be an object of strings", field);
	if (json_object_size(m) > AMALERT_MAX_LABELS)
		return fault_set(f, MDS_E_LIMIT, field,
				 "%s: more than %d entries", field,
				 AMALERT_MAX_LABELS);
	*out = xcalloc(json_object_size(m) + 1, sizeof(**out));
	json_object_foreach(m, name, v) {
		if (!json_is_string(v)) {
			free(*out);
			*out = NULL;
			return fault_set(f, MDS_E_INVAL, field,
					 "%s.%s: must be a string", field,
					 name);
		}
		(*out)[k++] = (struct amalert_label){ name,
						      json_string_value(v) };
	}
	*n = k;
	return 0;
}

static int get_time(json_t *o, const char *key, const char *where,
		    int64_t *out, struct fault *f)
{
	const char *s;
	char diag[128], field[64];
	int rc = get_str(o, key, where, true, &s, f);

	if (rc != 0)
		return rc;
	snprintf(field, sizeof(field), "%s%s", where, key);
	if (iso8601_time_parse(s, out, diag, sizeof(diag)) != 0)
		return fault_set(f, MDS_E_INVAL, field,
				 "%s: not an RFC 3339 time: %s", field, diag);
	return 0;
}

/* The rule's expression, from a generator URL's g0.expr, or NULL. */
static char *expr_of(const char *url)
{
	const char *q = url ? strchr(url, '?') : NULL;
	char *out;

	if (q == NULL)
		return NULL;
	out = xmalloc(AM_EXPR_MAX);
	if (http_query_get(q + 1, "g0.expr", out, AM_EXPR_MAX) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static int get_status(json_t *o, const char *where, int *firing,
		      struct fault *f)
{
	const char *s;
	int rc = get_str(o, "status", where, true, &s, f);

	if (rc != 0)
		return rc;
	if (strcmp(s, "firing") != 0 && strcmp(s, "resolved") != 0) {
		char field[64];

		snprintf(field, sizeof(field), "%sstatus", where);
		return fault_set(f, MDS_E_INVAL, field,
				 "%s: 'firing' or 'resolved', not '%s'",
				 field, s);
	}
	*firing = strcmp(s, "firing") == 0;
	return 0;
}

static int parse_alert(json_t *o, size_t i, struct amalert *a,
		       struct fault *f)
{
	struct amalert_label *ann, *labels = NULL;
	size_t nann;
	char where[32];
	int rc;

	snprintf(where, sizeof(where), "alerts[%zu].", i);
	if (!json_is_object(o))
		return fault_set(f, MDS_E_INVAL, "alerts",
				 "alerts[%zu]: must be an object", i);
	rc = get_status(o, where, &a->firing, f);
	if (rc == 0)
		rc = get_str(o, "fingerprint", where, true, &a->fingerprint,
			     f);
	if (rc == 0 && !amalert_fingerprint_ok(a->fingerprint)) {
		char field[64];

		snprintf(field, sizeof(field), "%sfingerprint", where);
		rc = fault_set(f, MDS_E_INVAL, field,
			       "%s: 1 to %d letters and digits", field,
			       AMALERT_FP_MAX);
	}
	if (rc == 0)
		rc = get_time(o, "startsAt", where, &a->starts_ms, f);
	if (rc == 0)
		rc = get_time(o, "endsAt", where, &a->ends_ms, f);
	if (rc == 0)
		rc = get_str(o, "generatorURL", where, false,
			     &a->generator_url, f);
	if (rc == 0)
		rc = get_labels(o, "annotations", where, &ann, &nann, f);
	if (rc == 0) {
		for (size_t k = 0; k < nann && a->summary == NULL; k++)
			if (strcmp(ann[k].name, "summary") == 0)
				a->summary = ann[k].value;
		for (size_t k = 0; k < nann && a->summary == NULL; k++)
			if (strcmp(ann[k].name, "description") == 0)
				a->summary = ann[k].value;
		free(ann);
		rc = get_labels(o, "labels", where, &labels, &a->nlabels,
				f);
		a->labels = labels;
	}
	if (rc == 0)
		a->expr = expr_of(a->generator_url);
	return rc;
}

static int parse(json_t *body, struct payload *p, struct fault *f)
{
	json_t *alerts = json_object_get(body, "alerts");
	const char *version, *key;
	int firing, rc;

	if (!json_is_object(body))
		return fault_set(f, MDS_E_INVAL, "", "the body is not an "
				 "Alertmanager webhook payload (a JSON "
				 "object, version 4)");
	rc = get_str(body, "version", "", true, &version, f);
	if (rc == 0 && strcmp(version, "4") != 0)
		rc = fault_set(f, MDS_E_INVAL, "version", "version: '4' "
			       "(Alertmanager's webhook payload), not '%s'",
			       version);
	if (rc == 0)
		rc = get_status(body, "", &firing, f);
	if (rc == 0)
		rc = get_str(body, "groupKey", "", true, &key, f);
	if (rc == 0 && !json_is_array(alerts))
		rc = fault_set(f, MDS_E_INVAL, "alerts",
			       "alerts: must be an array");
	if (rc == 0 && json_array_size(alerts) > AM_MAX_ALERTS)
		rc = fault_set(f, MDS_E_LIMIT, "alerts",
			       "alerts: more than %d in one webhook",
			       AM_MAX_ALERTS);
	if (rc != 0)
		return rc;
	p->alerts = xcalloc(json_array_size(alerts) + 1, sizeof(*p->alerts));
	for (size_t i = 0; rc == 0 && i < json_array_size(alerts); i++) {
		rc = parse_alert(json_array_get(alerts, i), i, &p->alerts[i],
				 f);
		p->n = i + 1; /* freed, whatever parse_alert() got to */
	}
	return rc;
}

int api_alertmanager_payload_check(const json_t *body, struct fault *f)
{
	struct payload p = { 0 };
	int rc = parse((json_t *)body, &p, f);

	payload_free(&p);
	return rc;
}

static int resource_label(struct api_call *c, char *out, size_t outsz)
{
	int rc = http_query_get(c->req->query, "resourceLabel", out, outsz);

	if (rc == MDS_E_NOTFOUND) {
		snprintf(out, outsz, "%s", AM_DEFAULT_RESOURCE_LABEL);
		return 0;
	}
	if (rc != 0 || out[0] == '\0' ||
	    !(isalpha((unsigned char)out[0]) || out[0] == '_'))
		return MDS_E_INVAL;
	for (const char *s = out; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return MDS_E_INVAL;
	return 0;
}

static json_t *result(const char *topic_id, const struct payload *p,
		      const struct alertmanager_outcome *out)
{
	json_t *items = json_array();

	for (size_t i = 0; i < p->n; i++) {
		json_t *o = json_pack(
			"{s:s, s:s, s:s}", "fingerprint",
			p->alerts[i].fingerprint, "alertname",
			amalert_label(&p->alerts[i], "alertname"), "status",
			p->alerts[i].firing ? "firing" : "resolved");

		json_object_set_new(
			o, "type",
			out[i].published
				? json_string(alarm_event_type_name(out[i].type))
				: json_null());
		json_object_set_new(o, "messageId",
				    out[i].published
					    ? json_string(out[i].message_id)
					    : json_null());
		json_array_append_new(items, o);
	}
	return json_pack("{s:s, s:o}", "topicId", topic_id, "alerts", items);
}

static void receive(struct api_call *c)
{
	struct payload p = { 0 };
	struct alertmanager_outcome *out = NULL;
	char label[AM_LABEL_NAME_MAX];
	struct fault f;

	if (c->api->alertmanager == NULL) {
		api_reply_error(c, 503, "ServiceUnavailable", NULL,
				"the daemon is shutting down");
		return;
	}
	if (resource_label(c, label, sizeof(label)) != 0) {
		api_reply_error(c, 400, "InvalidParameter", "resourceLabel",
				"resourceLabel: a Prometheus label name "
				"([a-zA-Z_][a-zA-Z0-9_]*, at most 127 bytes)");
		return;
	}
	if (api_webhook_verify(c, c->api->config->receiver.alertmanager) != 0)
		return;
	/* The webhook's id (if signed) is kept only with what the webhook
	 * did: a failure forgets it, so that the resend is taken. */
	if (parse(c->body, &p, &f) != 0) {
		api_webhook_end(c, 0);
		api_reply_fault(c, &f);
		goto out;
	}
	out = xcalloc(p.n + 1, sizeof(*out));
	if (alertmanager_receive(c->api->alertmanager, c->id, label,
				 p.alerts, p.n, out, &f) != 0) {
		api_webhook_end(c, 0);
		api_reply_fault(c, &f);
		goto out;
	}
	if (api_webhook_commit(c) != 0)
		goto out;
	api_reply(c, 200, result(c->id, &p, out), NULL);
out:
	free(out);
	payload_free(&p);
}

const struct api_route alertmanager_routes[] = {
	{ "POST", "/v1/alertmanager/*", receive },
	{ NULL, NULL, NULL },
};
