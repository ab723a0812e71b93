/*
 * cli_apply_kind.c - the kinds of object `mdscale apply` knows: how each
 * is recognised in a file, named, matched to a live object and changed
 * (see cli_apply.h and docs/apply.md).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli_apply.h"
#include "util/xalloc.h"

static const char *const topic_ro[] = {
	"topicId", "lifecycleState", "timeCreated", NULL };
static const char *const function_ro[] = {
	"builtin", "invocations", "failures", "lastError", "timeLastInvoked",
	"timeCreated", "runUid", NULL };
static const char *const subscription_ro[] = {
	"id", "lifecycleState", "timeCreated", "deadLetters",
	"pendingDeliveries", "runUid", NULL };
static const char *const deployment_ro[] = {
	"id", "lifecycleState", "lifecycleDetails", "instances",
	"timeCreated", "timeUpdated", "currentWorkRequestId", "endpoint",
	"backend", "ref", "instanceUid", NULL };
static const char *const alarm_ro[] = {
	"id", "lifecycleState", "timeCreated", "timeUpdated", NULL };
static const char *const autoscale_ro[] = { "source", NULL };

/* Fields used when the object is created, never compared. */
static const char *const subscription_create_only[] = { "secret", NULL };
static const char *const deployment_create_only[] = { "autoscale", NULL };
static const char *const none[] = { NULL };

/* In dependency order: an object's references point to earlier ranks. */
const struct apply_kind apply_kinds[] = {
	[APPLY_TOPIC] = { "topic", "topics", "name", "topicId", 0,
			  topic_ro, none },
	[APPLY_FUNCTION] = { "function", "functions", "name", "name", 0,
			     function_ro, none },
	[APPLY_DEPLOYMENT] = { "deployment", "deployments", "displayName",
			       "id", 1, deployment_ro, deployment_create_only },
	[APPLY_SUBSCRIPTION] = { "subscription", "subscriptions", NULL, "id",
				 1, subscription_ro,
				 subscription_create_only },
	[APPLY_ALARM] = { "alarm", "alarms", "displayName", "id", 2,
			  alarm_ro, none },
	[APPLY_AUTOSCALE] = { "autoscale", NULL, NULL, NULL, 2,
			      autoscale_ro, none },
};

/* Whether o has member key. */
static bool has(const json_t *o, const char *key)
{
	return json_object_get(o, key) != NULL;
}

int apply_kind_of(const json_t *o, size_t index)
{
	const char *kind = json_string_value(json_object_get(o, "kind"));

	if (kind != NULL) {
		for (int k = 0; k < APPLY__N; k++)
			if (strcasecmp(kind, apply_kinds[k].name) == 0)
				return k;
		cli_fail("apply: object %zu: kind '%s' is not one of "
			"deployment, alarm, topic, subscription, function, "
			"autoscale", index, kind);
		return -1;
	}
	/* The shapes `NOUN get -o yaml` prints. */
	if (has(o, "protocol"))
		return APPLY_SUBSCRIPTION;
	if (has(o, "query"))
		return APPLY_ALARM;
	if (has(o, "config") && (has(o, "source") || has(o, "deploymentId")))
		return APPLY_AUTOSCALE;
	if (has(o, "topicId") && has(o, "name"))
		return APPLY_TOPIC;
	if (has(o, "builtin") || (has(o, "name") && has(o, "command")))
		return APPLY_FUNCTION;
	if (has(o, "displayName") || has(o, "command") ||
	    has(o, "instanceShapeName") || has(o, "instanceCount"))
		return APPLY_DEPLOYMENT;
	cli_fail("apply: object %zu: cannot tell its kind; add "
		"kind: deployment|alarm|topic|subscription|function|autoscale",
		index);
	return -1;
}

bool apply_equal(const json_t *a, const json_t *b)
{
	const char *key;
	json_t *v;
	size_t i;

	if (a == NULL || b == NULL)
		return a == b;
	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b);
	if (json_is_array(a) && json_is_array(b)) {
		if (json_array_size(a) != json_array_size(b))
			return false;
		json_array_foreach((json_t *)a, i, v)
			if (!apply_equal(v, json_array_get(b, i)))
				return false;
		return true;
	}
	if (json_is_object(a) && json_is_object(b)) {
		if (json_object_size(a) != json_object_size(b))
			return false;
		json_object_foreach((json_t *)a, key, v)
			if (!apply_equal(v, json_object_get(b, key)))
				return false;
		return true;
	}
	return json_equal(a, b);
}

/* A subscription's name in messages: "TOPIC PROTOCOL ENDPOINT". */
static char *subscription_label(const json_t *o)
{
	const json_t *cmd = json_object_get(o, "command");
	const char *target = json_is_array(cmd)
		? json_string_value(json_array_get(cmd, 0))
		: json_string_value(json_object_get(o, "endpoint"));

	return xasprintf("%s %s %s", cli_json_str(o, "topicId"),
		cli_json_str(o, "protocol"), target ? target : "-");
}

char *apply_label(int kind, const json_t *o, size_t index)
{
	const struct apply_kind *k = &apply_kinds[kind];
	const char *name;

	if (kind == APPLY_SUBSCRIPTION) {
		if (!json_is_string(json_object_get(o, "topicId")) ||
		    !json_is_string(json_object_get(o, "protocol"))) {
			cli_fail("apply: object %zu: a subscription needs "
				"topicId (a topic's id or name) and protocol",
				index);
			return NULL;
		}
		return subscription_label(o);
	}
	if (kind == APPLY_AUTOSCALE) {
		if (!json_is_object(json_object_get(o, "config"))) {
			cli_fail("apply: object %zu: autoscale settings need "
				"config (an object)", index);
			return NULL;
		}
		name = json_string_value(json_object_get(o, "deploymentId"));
		return xstrdup(name != NULL ? name : "default");
	}
	name = json_string_value(json_object_get(o, k->name_field));
	if (name == NULL) {
		cli_fail("apply: object %zu: %s is required (a string)", index,
			k->name_field);
		return NULL;
	}
	return xstrdup(name);
}

/* The live topic whose id or name is key, in topics (a list), or NULL. */
const json_t *apply_find_topic(const json_t *topics, const char *key)
{
	const json_t *x;
	size_t i;

	json_array_foreach(json_object_get(topics, "items"), i, x) {
		if (strcmp(cli_json_str(x, "topicId"), key) == 0 ||
		    strcmp(cli_json_str(x, "name"), key) == 0)
			return x;
	}
	return NULL;
}

/* Whether live subscription s delivers what o asks for: same topic (o's
 * topicId resolved through topics), protocol and endpoint or command. */
static bool same_subscription(const json_t *s, const json_t *o,
	const json_t *topics)
{
	const json_t *t = apply_find_topic(topics, cli_json_str(o, "topicId"));

	return t != NULL &&
	       strcmp(cli_json_str(s, "topicId"),
		      cli_json_str(t, "topicId")) == 0 &&
	       strcmp(cli_json_str(s, "protocol"),
		      cli_json_str(o, "protocol")) == 0 &&
	       apply_equal(json_object_get(s, "endpoint"),
			   json_object_get(o, "endpoint")) &&
	       apply_equal(json_object_get(s, "command"),
			   json_object_get(o, "command"));
}

int apply_match(int kind, const json_t *orig, const char *label,
	const json_t *const *live, const json_t **out)
{
	const struct apply_kind *k = &apply_kinds[kind];
	const json_t *list = live[kind], *x, *found = NULL;
	const char *id = json_string_value(json_object_get(orig, "id"));
	size_t i, n = 0;

	*out = NULL;
	json_array_foreach(json_object_get(list, "items"), i, x) {
		if (kind == APPLY_SUBSCRIPTION) {
			if (same_subscription(x, orig, live[APPLY_TOPIC]))
				found = x, n++;
			continue;
		}
		/* An alarm's id picks it among alarms of one name. */
		if (kind == APPLY_ALARM && id != NULL &&
		    strcmp(cli_json_str(x, "id"), id) == 0) {
			*out = x;
			return 0;
		}
		if (strcmp(cli_json_str(x, k->name_field), label) == 0)
			found = x, n++;
	}
	if (n > 1)
		return cli_fail("apply: %s %s: %zu live ones have this name; "
			"give the id of the one to change", k->name, label, n);
	*out = found;
	return 0;
}

void apply_strip(int kind, json_t *o)
{
	const struct apply_kind *k = &apply_kinds[kind];

	json_object_del(o, "kind");
	json_object_del(o, "resourceVersion");
	for (size_t i = 0; k->read_only[i] != NULL; i++)
		json_object_del(o, k->read_only[i]);
}

bool apply_create_only(int kind, const char *key)
{
	const struct apply_kind *k = &apply_kinds[kind];

	/* An alarm is matched by its id too: its name may change. */
	if (k->name_field != NULL && kind != APPLY_ALARM &&
	    strcmp(key, k->name_field) == 0)
		return true;
	for (size_t i = 0; k->create_only[i] != NULL; i++)
		if (strcmp(key, k->create_only[i]) == 0)
			return true;
	return false;
}
