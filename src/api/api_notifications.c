/* api_notifications.c - the REST routes of topics and subscriptions. */
#include <stdbool.h>
#include <string.h>

#include "api/api.h"
#include "api/jsonx.h"
#include "notify/notifications.h"
#include "util/err.h"

/* Answers 503 while the daemon shuts down (the module is gone). */
static bool available(struct api_call *c)
{
	if (c->api->notifications != NULL)
		return true;
	api_reply_error(c, 503, "ServiceUnavailable", NULL,
			"the daemon is shutting down");
	return false;
}

static void no_content(struct api_call *c)
{
	http_respond(c->req, 204, "application/json", "", 0, NULL);
}

static void topics_list(struct api_call *c)
{
	char name[300];
	int rc = http_query_get(c->req->query, "name", name, sizeof(name));

	if (!available(c))
		return;
	if (rc == MDS_E_LIMIT) { /* longer than any name */
		api_reply(c, 200, json_pack("{s:[]}", "items"), NULL);
		return;
	}
	api_reply(c, 200,
		  notifications_topic_list(c->api->notifications,
					   rc == 0 ? name : NULL),
		  NULL);
}

static void topics_create(struct api_call *c)
{
	struct fault f;
	json_t *out = NULL;

	if (!available(c))
		return;
	if (notifications_topic_create(c->api->notifications, c->body, &out,
				       &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	api_reply(c, 201, out, NULL);
}

static void topics_get(struct api_call *c)
{
	struct fault f;

	if (!available(c))
		return;
	api_reply_or_fault(c,
			   notifications_topic_get(c->api->notifications,
						   c->id, &f),
			   &f);
}

static void topics_delete(struct api_call *c)
{
	struct fault f;

	if (!available(c))
		return;
	if (notifications_topic_delete(c->api->notifications, c->id, &f) != 0)
		api_reply_fault(c, &f);
	else
		no_content(c);
}

static void topics_publish(struct api_call *c)
{
	const char *dedupe;
	char id[64];
	int rc;

	if (!available(c))
		return;
	if (!json_is_object(c->body)) {
		api_reply_error(c, 400, "InvalidParameter", NULL,
				"the message must be a JSON object");
		return;
	}
	dedupe = json_string_value(json_object_get(c->body, "dedupeKey"));
	rc = notifications_publish_id(c->api->notifications, c->id, dedupe,
				      c->req->body, id, sizeof(id));
	switch (rc) {
	case 0:
		api_reply(c, 202, json_pack("{s:s}", "messageId", id), NULL);
		break;
	case MDS_E_NOTFOUND:
		api_reply_error(c, 404, "NotFound", NULL, "no such topic");
		break;
	case MDS_E_LIMIT:
		api_reply_error(c, 400, "LimitExceeded", NULL,
				"the message is larger than 1 MiB");
		break;
	default:
		api_reply_error(c, 500, "InternalServerError", NULL,
				mds_strerror(rc));
		break;
	}
}

static void subscriptions_list(struct api_call *c)
{
	char topic[128];
	int rc = http_query_get(c->req->query, "topicId", topic,
				sizeof(topic));

	if (!available(c))
		return;
	if (rc == MDS_E_LIMIT) { /* longer than any id */
		api_reply(c, 200, json_pack("{s:[]}", "items"), NULL);
		return;
	}
	api_reply(c, 200,
		  notifications_subscription_list(c->api->notifications,
						  rc == 0 ? topic : NULL),
		  NULL);
}

static void subscriptions_create(struct api_call *c)
{
	struct fault f;
	json_t *out = NULL;

	if (!available(c))
		return;
	if (notifications_subscription_create(c->api->notifications, c->body,
					      &out, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	api_reply(c, 201, out, NULL);
}

static void subscriptions_get(struct api_call *c)
{
	struct fault f;

	if (!available(c))
		return;
	api_reply_or_fault(c,
			   notifications_subscription_get(
				   c->api->notifications, c->id, &f),
			   &f);
}

static void subscriptions_delete(struct api_call *c)
{
	struct fault f;

	if (!available(c))
		return;
	if (notifications_subscription_delete(c->api->notifications, c->id,
					      &f) != 0)
		api_reply_fault(c, &f);
	else
		no_content(c);
}

static void subscriptions_deliveries(struct api_call *c)
{
	struct fault f;

	if (!available(c))
		return;
	api_reply_or_fault(c,
			   notifications_deliveries(c->api->notifications,
						    c->id, &f),
			   &f);
}

static void add_dead_letter(void *arg,
			    const struct notifications_dead_letter *dl)
{
	json_t *msg = json_loads(dl->message, 0, NULL);

	if (msg == NULL)
		msg = json_string(dl->message);
	json_array_append_new(
		arg, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:o, "
			       "s:o}",
			       "id", dl->id, "topicId", dl->topic_id,
			       "messageId", dl->message_id, "dedupeKey",
			       dl->dedupe_key, "outcome", dl->outcome,
			       "reason", dl->reason, "attempts", dl->attempts,
			       "timeCreated", jsonx_time(dl->created_ms),
			       "message", msg ? msg : json_null()));
}

static void subscriptions_dead_letters(struct api_call *c)
{
	struct fault f;
	json_t *items;

	if (!available(c))
		return;
	items = json_array();
	if (notifications_dead_letters_each(c->api->notifications, c->id,
					    add_dead_letter, items, &f) != 0) {
		json_decref(items);
		api_reply_fault(c, &f);
		return;
	}
	api_reply(c, 200, json_pack("{s:o}", "items", items), NULL);
}

static void subscriptions_replay(struct api_call *c)
{
	struct fault f;
	char id[64];

	if (!available(c))
		return;
	if (notifications_dead_letter_replay(c->api->notifications, c->id,
					     c->sub, id, sizeof(id),
					     &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	api_reply(c, 202,
		  json_pack("{s:s, s:s, s:s}", "subscriptionId", c->id,
			    "deadLetterId", c->sub, "deliveryId", id),
		  NULL);
}

const struct api_route notifications_routes[] = {
	{ "GET", "/v1/topics", topics_list },
	{ "POST", "/v1/topics", topics_create },
	{ "GET", "/v1/topics/*", topics_get },
	{ "DELETE", "/v1/topics/*", topics_delete },
	{ "POST", "/v1/topics/*/messages", topics_publish },
	{ "GET", "/v1/subscriptions", subscriptions_list },
	{ "POST", "/v1/subscriptions", subscriptions_create },
	{ "GET", "/v1/subscriptions/*", subscriptions_get },
	{ "DELETE", "/v1/subscriptions/*", subscriptions_delete },
	{ "GET", "/v1/subscriptions/*/deliveries", subscriptions_deliveries },
	{ "GET", "/v1/subscriptions/*/dead-letters",
	  subscriptions_dead_letters },
	{ "POST", "/v1/subscriptions/*/dead-letters/*/replay",
	  subscriptions_replay },
	{ NULL, NULL, NULL },
};
