/*
 * api_oci.c - the REST routes of the OCI Notifications HTTPS receiver.
 *
 * POST /v1/oci/notifications/{topic} is what an OCI Notifications
 * CUSTOM_HTTPS subscription calls; it is the only route that changes state
 * without the bearer token, so it accepts only what oci_receiver.h allows.
 * /v1/oci/receivers/{topic} (token required to change) enables it per
 * topic. See docs/notifications.md. With webhookReceiver's secret set (and
 * its ociNotifications flag not false), a request must also carry a fresh
 * Standard Webhooks signature (api_webhook_verify()).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_bodies.h"
#include "api/jsonx.h"
#include "notify/oci_receiver.h"
#include "notify/whsig.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

#define OCI_HEADER_MAX 2048

static bool available(struct api_call *c)
{
	if (c->api->oci_receiver != NULL)
		return true;
	api_reply_error(c, 503, "ServiceUnavailable", NULL,
			"the daemon is shutting down");
	return false;
}

/* The receiver's refusals: a message not from the confirmed subscription
 * is 403, a failed fetch of the confirmation link 502. */
static void reply_fault(struct api_call *c, const struct fault *f)
{
	switch (f->err) {
	case MDS_E_UNAUTH:
		api_reply_error(c, 403, "NotAuthorized", f->field, f->message);
		break;
	case MDS_E_UNAVAIL:
		api_reply_error(c, 502, "ConfirmationFailed", f->field,
				f->message);
		break;
	case MDS_E_DB:
		api_reply_error(c, 500, "InternalServerError", f->field,
				f->message);
		break;
	default:
		api_reply_fault(c, f);
		break;
	}
}

static json_t *view_json(const struct oci_receiver_view *v)
{
	return json_pack("{s:s, s:b, s:s, s:s?, s:s?, s:s?, s:s, s:o, s:s?, "
			 "s:I, s:I}",
			 "topicId", v->topic_id, "enabled", v->enabled, "state",
			 v->state, "subscriptionId",
			 v->subscription_id[0] ? v->subscription_id : NULL,
			 "pinnedSubscriptionId",
			 v->pinned_subscription_id[0]
				 ? v->pinned_subscription_id
				 : NULL,
			 "ociTopicId",
			 v->oci_topic_id[0] ? v->oci_topic_id : NULL,
			 "confirmationHostSuffix", v->host_suffix,
			 "timeConfirmed", jsonx_time(v->confirmed_ms), "lastError",
			 v->last_error[0] ? v->last_error : NULL,
			 "messagesAccepted", (json_int_t)v->accepted,
			 "messagesRefused", (json_int_t)v->refused);
}

/* ---- the receiver itself (no token) ---- */

/* A confirmation waiting for OCI's answer to its link. */
struct pending {
	struct api_call c; /* c.req stays valid until answered */
};

static void on_confirmed(void *arg, const struct fault *f,
			 const char *subscription_id)
{
	struct pending *p = arg;

	/* A failed confirmation forgets its webhook-id, committed when the
	 * confirmation started, so that its resend is taken. */
	if (f != NULL && p->c.webhook_id[0] != '\0' &&
	    p->c.api->webhook_seen != NULL &&
	    whsig_seen_forget(p->c.api->webhook_seen, p->c.webhook_id) != 0)
		log_warn("oci-receiver", "webhook-id '%s' of a failed "
			 "confirmation could not be forgotten: its resend is "
			 "refused until the window ends", p->c.webhook_id);
	if (f != NULL)
		reply_fault(&p->c, f);
	else
		api_reply(&p->c, 200,
			  json_pack("{s:s, s:s}", "status", "CONFIRMED",
				    "subscriptionId", subscription_id),
			  NULL);
	free(p);
}

static void header(struct api_call *c, const char *name, char *out,
		   size_t outsz)
{
	http_req_header(c->req, name, out, outsz);
}

int api_oci_message_read(const json_t *body, const char *url_header,
			 struct oci_ns_message *m, struct fault *f)
{
	const char *body_url = json_string_value(
		json_object_get(body, "ConfirmationURL"));

	if (url_header[0] && body_url != NULL &&
	    strcmp(url_header, body_url) != 0)
		return fault_set(f, MDS_E_INVAL, "ConfirmationURL",
				 "the X-OCI-NS-ConfirmationURL header and the "
				 "body's ConfirmationURL differ");
	m->confirmation_url = url_header[0] ? url_header : body_url;
	m->dedupe_key = json_string_value(json_object_get(body, "dedupeKey"));
	return 0;
}

static void receive(struct api_call *c)
{
	char type[64], sub[OCI_HEADER_MAX], topic[OCI_HEADER_MAX];
	char url[OCI_HEADER_MAX + 1], id[64];
	struct oci_ns_message m = { 0 };
	struct pending *p;
	struct fault f;
	int rc;

	if (!available(c))
		return;
	if (api_webhook_verify(c, c->api->config->receiver.oci) != 0)
		return;
	if (!json_is_object(c->body)) {
		api_webhook_end(c, 0);
		api_reply_error(c, 400, "InvalidParameter", NULL,
				"the message must be a JSON object");
		return;
	}
	header(c, "X-OCI-NS-MessageType", type, sizeof(type));
	header(c, "X-OCI-NS-SubscriptionId", sub, sizeof(sub));
	header(c, "X-OCI-NS-TopicOcid", topic, sizeof(topic));
	header(c, "X-OCI-NS-ConfirmationURL", url, sizeof(url));
	if (api_oci_message_read(c->body, url, &m, &f) != 0) {
		api_webhook_end(c, 0);
		api_reply_fault(c, &f);
		return;
	}
	m.topic_id = c->id;
	m.message_type = type;
	m.subscription_id = sub;
	m.topic_ocid = topic;
	m.body = c->req->body;
	p = xmalloc(sizeof(*p));
	p->c = *c;
	p->c.body = NULL;
	rc = oci_receiver_post(c->api->oci_receiver, &m, id, sizeof(id), &f,
			       on_confirmed, p);
	if (rc == OCI_RECEIVER_PENDING) {
		/* The answer comes with the confirmation's end; its id is
		 * kept meanwhile, or, if that cannot be, not at all. */
		if (api_webhook_end(c, 1) != 0)
			p->c.webhook_id[0] = '\0';
		p->c.webhook_open = 0;
		return;
	}
	free(p);
	if (rc != 0) {
		api_webhook_end(c, 0);
		reply_fault(c, &f);
	} else if (api_webhook_commit(c) == 0) {
		api_reply(c, 202, json_pack("{s:s}", "messageId", id), NULL);
	}
}

/* ---- settings (token required to change) ---- */

int api_oci_settings_read(const json_t *body,
			  struct oci_receiver_settings *s, struct fault *f)
{
	const char *key;
	json_t *val, *en;

	memset(s, 0, sizeof(*s));
	if (!json_is_object(body))
		return fault_set(f, MDS_E_INVAL, "",
				 "the body must be a JSON object");
	json_object_foreach((json_t *)body, key, val) {
		if (strcmp(key, "enabled") != 0 &&
		    strcmp(key, "subscriptionId") != 0 &&
		    strcmp(key, "confirmationHostSuffix") != 0)
			return fault_set(f, MDS_E_INVAL, key,
					 "unknown field (known: enabled, "
					 "subscriptionId, "
					 "confirmationHostSuffix)");
		if (strcmp(key, "enabled") != 0 && !json_is_string(val) &&
		    !json_is_null(val))
			return fault_set(f, MDS_E_INVAL, key,
					 "must be a string");
	}
	en = json_object_get(body, "enabled");
	if (!json_is_boolean(en))
		return fault_set(f, MDS_E_INVAL, "enabled",
				 "enabled is required (true or false)");
	s->enabled = json_is_true(en);
	s->subscription_id = json_string_value(json_object_get(body,
							       "subscriptionId"));
	s->host_suffix = json_string_value(
		json_object_get(body, "confirmationHostSuffix"));
	return 0;
}

static void receivers_put(struct api_call *c)
{
	struct oci_receiver_settings s;
	struct oci_receiver_view v;
	struct fault f;

	if (!available(c))
		return;
	if (api_oci_settings_read(c->body, &s, &f) != 0 ||
	    oci_receiver_configure(c->api->oci_receiver, c->id, &s, &f) != 0 ||
	    oci_receiver_get(c->api->oci_receiver, c->id, &v, &f) != 0) {
		reply_fault(c, &f);
		return;
	}
	api_reply(c, 200, view_json(&v), NULL);
}

static void receivers_get(struct api_call *c)
{
	struct oci_receiver_view v;
	struct fault f;

	if (!available(c))
		return;
	if (oci_receiver_get(c->api->oci_receiver, c->id, &v, &f) != 0)
		reply_fault(c, &f);
	else
		api_reply(c, 200, view_json(&v), NULL);
}

static void add_view(void *arg, const struct oci_receiver_view *v)
{
	json_array_append_new(arg, view_json(v));
}

static void receivers_list(struct api_call *c)
{
	json_t *items;

	if (!available(c))
		return;
	items = json_array();
	oci_receiver_each(c->api->oci_receiver, add_view, items);
	api_reply(c, 200, json_pack("{s:o}", "items", items), NULL);
}

static void receivers_delete(struct api_call *c)
{
	struct fault f;

	if (!available(c))
		return;
	if (oci_receiver_forget(c->api->oci_receiver, c->id, &f) != 0)
		reply_fault(c, &f);
	else
		http_respond(c->req, 204, "application/json", "", 0, NULL);
}

const struct api_route oci_open_routes[] = {
	{ "POST", "/v1/oci/notifications/*", receive },
	{ NULL, NULL, NULL },
};

const struct api_route oci_routes[] = {
	{ "GET", "/v1/oci/receivers", receivers_list },
	{ "GET", "/v1/oci/receivers/*", receivers_get },
	{ "PUT", "/v1/oci/receivers/*", receivers_put },
	{ "DELETE", "/v1/oci/receivers/*", receivers_delete },
	{ NULL, NULL, NULL },
};
