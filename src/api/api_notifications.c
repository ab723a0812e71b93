/* api_notifications.c - the REST routes of topics and subscriptions. */
#include <stdbool.h>
#include <string.h>

#include "api/api.h"
#include "api/api_bodies.h"
#include "api/api_watch.h"
#include "api/fields.h"
#include "api/jsonx.h"
#include "notify/functions.h"
#include "notify/notifications.h"
#include "util/err.h"

/* ---- the bodies ---- */

static const struct field topic_fields[] = {
	{ .name = "name", .type = FIELD_STRING,
	  FIELD_AT(struct notifications_topic_spec, name), .required = true,
	  .min = 1, .max = NOTIFICATIONS_NAME_MAX, .chars = FIELD_CHARS_NAME,
	  .chars_desc = "A-Z a-z 0-9 _ -",
	  .doc = "unique among topics" },
	{ .name = "description", .type = FIELD_STRING,
	  FIELD_AT(struct notifications_topic_spec, description),
	  .max = NOTIFICATIONS_DESC_MAX, .doc = "free text" },
	FIELD_END
};

static const struct field subscription_fields[] = {
	{ .name = "topicId", .type = FIELD_STRING,
	  FIELD_AT(struct notifications_subscription_spec, topic_id),
	  .required = true, .min = 1,
	  .doc = "an existing topic's id or name" },
	{ .name = "protocol", .type = FIELD_ENUM,
	  FIELD_AT(struct notifications_subscription_spec, protocol),
	  .required = true, .choices = notifications_protocols,
	  .doc = "how messages are delivered" },
	{ .name = "endpoint", .type = FIELD_STRING,
	  FIELD_AT(struct notifications_subscription_spec, endpoint),
	  .min = 1, .max = NOTIFICATIONS_URL_MAX,
	  .doc = "FUNCTION: a function's name; HTTP(S): a URL" },
	{ .name = "command", .type = FIELD_STRV,
	  FIELD_AT(struct notifications_subscription_spec, command),
	  .min = 1, .max = FUNCTIONS_ARGV_MAX, .item_max = FUNCTIONS_ARG_MAX,
	  .doc = "COMMAND: the program and its arguments" },
	{ .name = "maxAttempts", .type = FIELD_INTEGER,
	  FIELD_AT(struct notifications_subscription_spec, max_attempts),
	  .min = 1, .max = NOTIFICATIONS_ATTEMPTS_MAX,
	  .doc = "attempts per delivery" },
	{ .name = "timeoutSeconds", .type = FIELD_INTEGER,
	  FIELD_AT(struct notifications_subscription_spec, timeout_s),
	  .min = 1, .max = NOTIFICATIONS_TIMEOUT_MAX_S,
	  .doc = "per attempt" },
	{ .name = "secret", .type = FIELD_STRING,
	  FIELD_AT(struct notifications_subscription_spec, secret),
	  .min = NOTIFICATIONS_SECRET_MIN, .max = NOTIFICATIONS_SECRET_MAX,
	  .chars = FIELD_CHARS_PRINTABLE,
	  .chars_desc = "printable ASCII without blanks",
	  .doc = "the HMAC key of HTTP(S) signatures" },
	FIELD_END
};

/* PUT /v1/topics/{id}: what may change of a topic, as in OCI. */
struct topic_update {
	char description[NOTIFICATIONS_DESC_MAX + 1];
};

static const struct field topic_update_fields[] = {
	{ .name = "description", .type = FIELD_STRING,
	  FIELD_AT(struct topic_update, description), .required = true,
	  .max = NOTIFICATIONS_DESC_MAX, .doc = "free text" },
	FIELD_END
};

/* PUT /v1/subscriptions/{id}: how it delivers (0: unchanged). */
struct subscription_update {
	uint32_t max_attempts;
	uint32_t timeout_s;
};

static const struct field subscription_update_fields[] = {
	{ .name = "maxAttempts", .type = FIELD_INTEGER,
	  FIELD_AT(struct subscription_update, max_attempts),
	  .min = 1, .max = NOTIFICATIONS_ATTEMPTS_MAX,
	  .doc = "attempts per delivery, from the next delivery on" },
	{ .name = "timeoutSeconds", .type = FIELD_INTEGER,
	  FIELD_AT(struct subscription_update, timeout_s),
	  .min = 1, .max = NOTIFICATIONS_TIMEOUT_MAX_S,
	  .doc = "per attempt, from the next attempt on" },
	FIELD_END
};

const struct field *api_topic_fields(void)
{
	return topic_fields;
}

const struct field *api_topic_update_fields(void)
{
	return topic_update_fields;
}

const struct field *api_subscription_update_fields(void)
{
	return subscription_update_fields;
}

const struct field *api_subscription_fields(void)
{
	return subscription_fields;
}

/* ---- the answers ---- */

static json_t *topic_json(const struct notifications_topic *t)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:o}", "topicId", t->id,
			 "name", t->name, "description", t->description,
			 "lifecycleState", "ACTIVE", "timeCreated",
			 jsonx_time(t->created_ms));
}

static json_t *subscription_json(const struct notifications_subscription *s)
{
	json_t *o = json_pack("{s:s, s:s, s:s}", "id", s->id, "topicId",
			      s->topic_id, "protocol",
			      notifications_protocols[s->protocol]);

	if (s->protocol == NOTIFICATIONS_COMMAND)
		json_object_set_new(o, "command", jsonx_strv_json(s->command));
	else
		json_object_set_new(o, "endpoint", json_string(s->endpoint));
	json_object_set_new(o, "maxAttempts", json_integer(s->max_attempts));
	json_object_set_new(o, "timeoutSeconds", json_integer(s->timeout_s));
	json_object_set_new(o, "lifecycleState", json_string("ACTIVE"));
	json_object_set_new(o, "timeCreated", jsonx_time(s->created_ms));
	if (s->uid != 0)
		json_object_set_new(o, "runUid",
				    json_integer((json_int_t)s->uid));
	json_object_set_new(o, "deadLetters",
			    json_integer((json_int_t)s->dead_letters));
	json_object_set_new(o, "pendingDeliveries",
			    json_integer((json_int_t)s->pending));
	if (s->secret != NULL)
		json_object_set_new(o, "secret", json_string(s->secret));
	return o;
}

static void add_topic(void *arg, const struct notifications_topic *t)
{
	json_array_append_new(arg, topic_json(t));
}

static void add_subscription(void *arg,
			     const struct notifications_subscription *s)
{
	json_array_append_new(arg, subscription_json(s));
}

static void add_attempt(void *arg, const struct notifications_attempt *at)
{
	json_array_append_new(
		arg,
		json_pack("{s:s, s:s, s:i, s:o, s:o, s:s, s:o, s:o, s:I}",
			  "messageId", at->message_id, "dedupeKey",
			  at->dedupe_key, "attempt", at->attempt,
			  "timeStarted", jsonx_time(at->started_ms),
			  "timeFinished", jsonx_time(at->finished_ms),
			  "outcome", at->outcome, "status",
			  at->status >= 0 ? json_integer(at->status)
					  : json_null(),
			  "error",
			  at->error ? json_string(at->error) : json_null(),
			  "durationMs", (json_int_t)at->duration_ms));
}

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

/* Every topic, oldest first: GET /v1/topics filters and sorts them
 * (api_watch.h). */
static json_t *render_topics(struct api_call *c, struct fault *f)
{
	json_t *items;

	if (c->api->notifications == NULL) {
		fault_set(f, MDS_E_UNAVAIL, "", "the daemon is shutting down");
		return NULL;
	}
	items = json_array();
	notifications_topic_each(c->api->notifications, NULL, add_topic,
				 items);
	return json_pack("{s:o}", "items", items);
}

static const char *const topic_sort_keys[] = { "name", NULL };
static const struct api_list_spec topic_list = {
	.name_param = "name", .name_field = "name",
	.sort_keys = topic_sort_keys,
};

static void topics_list(struct api_call *c)
{
	api_list_answer(c, &topic_list, render_topics);
}

static void topics_create(struct api_call *c)
{
	struct notifications_topic_spec spec = { .name = "" };
	struct notifications_topic t;
	struct fault f;

	if (!available(c))
		return;
	if (fields_parse(topic_fields, c->body, &spec, "", NULL, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	spec.check_only = api_dry_run(c);
	if (notifications_topic_create(c->api->notifications, &spec, &t,
				       &f) != 0)
		api_reply_fault(c, &f);
	else if (spec.check_only)
		api_reply_dry_run(c);
	else
		api_reply(c, 201, topic_json(&t), NULL);
}

static json_t *render_topic(struct api_call *c, struct fault *f)
{
	struct notifications_topic t;

	if (c->api->notifications == NULL) {
		fault_set(f, MDS_E_UNAVAIL, "", "the daemon is shutting down");
		return NULL;
	}
	if (notifications_topic_get(c->api->notifications, c->id, &t, f) != 0)
		return NULL;
	return topic_json(&t);
}

static void topics_get(struct api_call *c)
{
	api_item_answer(c, render_topic);
}

/* PUT: with dryRun=true, only checked (api_watch.h). */
static void topics_update(struct api_call *c)
{
	struct topic_update u = { .description = "" };
	struct notifications_topic t;
	struct fault f;

	if (!available(c))
		return;
	if (fields_parse(topic_update_fields, c->body, &u, "", NULL, &f) != 0 ||
	    notifications_topic_update(c->api->notifications, c->id,
				       u.description, api_dry_run(c), &t,
				       &f) != 0)
		api_reply_fault(c, &f);
	else if (api_dry_run(c))
		api_reply_dry_run(c);
	else
		api_reply(c, 200, topic_json(&t), NULL);
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

/* The subscriptions, oldest first, of the topic ?topicId= names (its id
 * or its name) or all; GET /v1/subscriptions filters and sorts them
 * (api_watch.h). */
static json_t *render_subscriptions(struct api_call *c, struct fault *f)
{
	char topic[128];
	int rc = http_query_get(c->req->query, "topicId", topic,
				sizeof(topic));
	json_t *items;

	if (c->api->notifications == NULL) {
		fault_set(f, MDS_E_UNAVAIL, "", "the daemon is shutting down");
		return NULL;
	}
	items = json_array();
	if (rc != MDS_E_LIMIT) /* longer than any id: none */
		notifications_subscription_each(c->api->notifications,
						rc == 0 ? topic : NULL,
						add_subscription, items);
	return json_pack("{s:o}", "items", items);
}

static const char *const subscription_sort_keys[] = {
	"topicId", "protocol", "pendingDeliveries", "deadLetters", NULL };
static const struct api_list_spec subscription_list = {
	.sort_keys = subscription_sort_keys,
};

static void subscriptions_list(struct api_call *c)
{
	api_list_answer(c, &subscription_list, render_subscriptions);
}

/* Which of endpoint and command the protocol takes, as missing fields. */
static int check_presence(const struct notifications_subscription_spec *s,
			  uint64_t seen, struct fault *f)
{
	bool command = s->protocol == NOTIFICATIONS_COMMAND;

	if (command && !fields_given(subscription_fields, seen, "command") &&
	    !fields_given(subscription_fields, seen, "endpoint"))
		return fields_fault_missing(f, "command");
	if (!command && !fields_given(subscription_fields, seen, "endpoint") &&
	    !fields_given(subscription_fields, seen, "command"))
		return fields_fault_missing(f, "endpoint");
	return 0;
}

int api_subscription_body_read(const json_t *body,
			       struct notifications_subscription_spec *spec,
			       struct fault *f)
{
	uint64_t seen = 0;
	int rc;

	notifications_subscription_spec_init(spec);
	rc = fields_parse(subscription_fields, body, spec, "", &seen, f);
	if (rc == 0)
		rc = check_presence(spec, seen, f);
	return rc;
}

void api_subscription_body_free(struct notifications_subscription_spec *spec)
{
	fields_free(subscription_fields, spec);
}

static void subscriptions_create(struct api_call *c)
{
	struct notifications_subscription_spec spec;
	struct notifications_subscription s;
	struct fault f;
	int rc;

	if (!available(c))
		return;
	rc = api_subscription_body_read(c->body, &spec, &f);
	spec.check_only = api_dry_run(c);
	if (rc != 0 ||
	    notifications_subscription_create(c->api->notifications, &spec,
					      &s, &f) != 0) {
		fields_free(subscription_fields, &spec);
		api_reply_fault(c, &f);
		return;
	}
	fields_free(subscription_fields, &spec);
	if (spec.check_only)
		api_reply_dry_run(c);
	else
		api_reply(c, 201, subscription_json(&s), NULL);
}

static json_t *render_subscription(struct api_call *c, struct fault *f)
{
	struct notifications_subscription s;

	if (c->api->notifications == NULL) {
		fault_set(f, MDS_E_UNAVAIL, "", "the daemon is shutting down");
		return NULL;
	}
	if (notifications_subscription_get(c->api->notifications, c->id, &s,
					   f) != 0)
		return NULL;
	return subscription_json(&s);
}

static void subscriptions_get(struct api_call *c)
{
	api_item_answer(c, render_subscription);
}

/* PUT: with dryRun=true, only checked (api_watch.h). */
static void subscriptions_update(struct api_call *c)
{
	struct subscription_update u = { 0 };
	struct notifications_subscription s;
	struct fault f;

	if (!available(c))
		return;
	if (!json_is_object(c->body) || json_object_size(c->body) == 0) {
		api_reply_error(c, 400, "InvalidParameter", NULL,
				"give maxAttempts or timeoutSeconds");
		return;
	}
	if (fields_parse(subscription_update_fields, c->body, &u, "", NULL,
			 &f) != 0 ||
	    notifications_subscription_update(c->api->notifications, c->id,
					      u.max_attempts, u.timeout_s,
					      api_dry_run(c), &s, &f) != 0)
		api_reply_fault(c, &f);
	else if (api_dry_run(c))
		api_reply_dry_run(c);
	else
		api_reply(c, 200, subscription_json(&s), NULL);
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
	json_t *items;

	if (!available(c))
		return;
	items = json_array();
	if (notifications_attempts_each(c->api->notifications, c->id,
					add_attempt, items, &f) != 0) {
		json_decref(items);
		api_reply_fault(c, &f);
		return;
	}
	api_reply(c, 200, json_pack("{s:o}", "items", items), NULL);
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
	{ "PUT", "/v1/topics/*", topics_update },
	{ "DELETE", "/v1/topics/*", topics_delete },
	{ "POST", "/v1/topics/*/messages", topics_publish },
	{ "GET", "/v1/subscriptions", subscriptions_list },
	{ "POST", "/v1/subscriptions", subscriptions_create },
	{ "GET", "/v1/subscriptions/*", subscriptions_get },
	{ "PUT", "/v1/subscriptions/*", subscriptions_update },
	{ "DELETE", "/v1/subscriptions/*", subscriptions_delete },
	{ "GET", "/v1/subscriptions/*/deliveries", subscriptions_deliveries },
	{ "GET", "/v1/subscriptions/*/dead-letters",
	  subscriptions_dead_letters },
	{ "POST", "/v1/subscriptions/*/dead-letters/*/replay",
	  subscriptions_replay },
	{ NULL, NULL, NULL },
};
