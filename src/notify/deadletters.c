/* deadletters.c - the dead letters in the store; see deadletters.h. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/deadletters.h"
#include "api/jsonx.h"
#include "store/store.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/xalloc.h"

#define KIND DEADLETTERS_KIND
#define ID_MAX 64

/* Collects the documents of one subscription (all when sub_id is NULL). */
struct walk {
	const char *sub_id;
	json_t *docs;
};

static int collect(void *arg, const char *id, const char *json)
{
	struct walk *w = arg;
	json_t *d = json_loads(json, 0, NULL);

	if (json_is_object(d) && strlen(id) < ID_MAX &&
	    (w->sub_id == NULL ||
	     strcmp(jsonx_str(d, "subscriptionId", ""), w->sub_id) == 0)) {
		json_object_set_new(d, "id", json_string(id));
		json_array_append(w->docs, d);
	}
	json_decref(d);
	return 0;
}

static int by_created(const void *x, const void *y)
{
	int64_t a = json_integer_value(
		json_object_get(*(json_t *const *)x, "createdMs"));
	int64_t b = json_integer_value(
		json_object_get(*(json_t *const *)y, "createdMs"));

	return a < b ? -1 : a > b;
}

/* The documents of sub_id, oldest first, into a new array of n borrowed
 * references (owned by *docs). */
static int sorted(struct store *st, const char *sub_id, json_t **docs,
		  json_t ***v, size_t *n)
{
	struct walk w = { sub_id, json_array() };
	int rc = store_each(st, KIND, collect, &w);

	*docs = w.docs;
	*v = NULL;
	*n = 0;
	if (rc != 0)
		return rc;
	*n = json_array_size(w.docs);
	*v = xcalloc(*n + 1, sizeof(**v));
	for (size_t i = 0; i < *n; i++)
		(*v)[i] = json_array_get(w.docs, i);
	qsort(*v, *n, sizeof(**v), by_created);
	return 0;
}

int deadletters_add(struct store *st, const struct deadletter_new *d,
		    size_t count, bool *dropped)
{
	char id[ID_MAX], *txt;
	json_t *docs = NULL, **v = NULL, *o;
	size_t n = 0;
	int rc = 0;

	*dropped = false;
	if (count >= DEAD_LETTERS_MAX) {
		rc = sorted(st, d->sub_id, &docs, &v, &n);
		if (rc == 0 && n > 0) {
			rc = store_delete(st, KIND, jsonx_str(v[0], "id", ""));
			*dropped = rc == 0;
		}
		free(v);
		json_decref(docs);
		if (rc != 0)
			return rc;
	}
	ids_new(id, sizeof(id), "dead-");
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:I}",
		      "subscriptionId", d->sub_id, "topicId", d->topic_id,
		      "messageId", d->message_id, "dedupeKey", d->dedupe_key,
		      "orderingKey", d->ordering_key, "message", d->message,
		      "outcome", d->outcome, "reason",
		      d->reason ? d->reason : "", "attempts", d->attempts,
		      "createdMs", (json_int_t)d->now_ms);
	if (o == NULL)
		return MDS_E_INVAL;
	txt = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	rc = store_put(st, KIND, id, txt);
	free(txt);
	return rc;
}

int deadletters_each(struct store *st, const char *sub_id,
		     void (*fn)(void *arg,
				const struct notifications_dead_letter *dl),
		     void *arg)
{
	json_t *docs, **v;
	size_t n;
	int rc = sorted(st, sub_id, &docs, &v, &n);

	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct notifications_dead_letter dl = {
			.id = jsonx_str(v[i], "id", ""),
			.subscription_id = sub_id,
			.topic_id = jsonx_str(v[i], "topicId", ""),
			.message_id = jsonx_str(v[i], "messageId", ""),
			.dedupe_key = jsonx_str(v[i], "dedupeKey", ""),
			.message = jsonx_str(v[i], "message", ""),
			.outcome = jsonx_str(v[i], "outcome", ""),
			.reason = jsonx_str(v[i], "reason", ""),
			.attempts = (int)json_integer_value(
				json_object_get(v[i], "attempts")),
			.created_ms = json_integer_value(
				json_object_get(v[i], "createdMs")),
		};

		fn(arg, &dl);
	}
	free(v);
	json_decref(docs);
	return rc;
}

int deadletters_get(struct store *st, const char *sub_id, const char *id,
		    struct deadletter_copy *out)
{
	char *txt = NULL;
	json_t *d;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = store_get(st, KIND, id, &txt);
	if (rc != 0)
		return rc == MDS_E_DB ? MDS_E_DB : MDS_E_NOTFOUND;
	d = json_loads(txt, 0, NULL);
	free(txt);
	if (!json_is_object(d) ||
	    strcmp(jsonx_str(d, "subscriptionId", ""), sub_id) != 0) {
		json_decref(d);
		return MDS_E_NOTFOUND;
	}
	out->message_id = xstrdup(jsonx_str(d, "messageId", ""));
	out->dedupe_key = xstrdup(jsonx_str(d, "dedupeKey", ""));
	out->ordering_key = xstrdup(jsonx_str(d, "orderingKey", ""));
	out->message = xstrdup(jsonx_str(d, "message", ""));
	json_decref(d);
	return 0;
}

void deadletters_copy_free(struct deadletter_copy *c)
{
	if (c == NULL)
		return;
	free(c->message_id);
	free(c->dedupe_key);
	free(c->ordering_key);
	free(c->message);
	memset(c, 0, sizeof(*c));
}

int deadletters_delete(struct store *st, const char *id)
{
	return store_delete(st, KIND, id);
}

int deadletters_delete_all(struct store *st, const char *sub_id)
{
	json_t *docs, **v;
	size_t n;
	int rc = sorted(st, sub_id, &docs, &v, &n);

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = store_delete(st, KIND, jsonx_str(v[i], "id", ""));
	free(v);
	json_decref(docs);
	return rc;
}

int deadletters_scan(struct store *st,
		     int (*fn)(void *arg, const char *id, const char *sub_id),
		     void *arg)
{
	json_t *docs, **v;
	size_t n;
	int rc = sorted(st, NULL, &docs, &v, &n);

	for (size_t i = 0; rc == 0 && i < n; i++)
		if (fn(arg, jsonx_str(v[i], "id", ""),
		       jsonx_str(v[i], "subscriptionId", "")))
			break;
	free(v);
	json_decref(docs);
	return rc;
}
