/*
 * alertmanager.c - Alertmanager's webhook as OCI alarm messages; see
 * alertmanager.h.
 *
 * The firing alerts of a topic live in the store as one document, kind
 * "alertmanager", id the topic: {"firing": {fingerprint: startsAt ms}}. It
 * is read and written per webhook (webhooks come seconds apart, and a topic
 * tracks at most AMALERT_MAX_FIRING alerts), so nothing is cached that
 * could go stale.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "notify/alertmanager.h"
#include "notify/notifications.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/xalloc.h"

#define KIND "alertmanager"
#define MESSAGE_MAX (1024 * 1024) /* the notifications' own cap */

struct alertmanager {
	struct alertmanager_env env;
};

struct alertmanager *alertmanager_open(const struct alertmanager_env *env)
{
	struct alertmanager *am = xcalloc(1, sizeof(*am));

	am->env = *env;
	return am;
}

void alertmanager_close(struct alertmanager *am)
{
	free(am);
}

/* Returns the topic's firing alerts from the store (empty if none). */
static struct amalert_set *load(struct alertmanager *am, const char *topic_id)
{
	struct amalert_set *s = amalert_set_new();
	char *text = NULL;
	const char *fp;
	json_t *o, *v;

	if (store_get(am->env.store, KIND, topic_id, &text) != 0)
		return s;
	o = json_loads(text, 0, NULL);
	free(text);
	json_object_foreach(json_object_get(o, "firing"), fp, v)
		if (amalert_set_put(s, fp, json_integer_value(v)) != 0)
			log_warn("alertmanager", "topic %s: stored fingerprint "
				 "'%s' dropped", topic_id, fp);
	json_decref(o);
	return s;
}

static int save(struct alertmanager *am, const char *topic_id,
		const struct amalert_set *s)
{
	json_t *firing = json_object(), *o;
	const char *fp;
	int64_t t;
	char *text;
	int rc;

	for (size_t i = 0; i < amalert_set_count(s); i++) {
		amalert_set_entry(s, i, &fp, &t);
		json_object_set_new(firing, fp, json_integer(t));
	}
	o = json_pack("{s:o}", "firing", firing);
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	rc = amalert_set_count(s) == 0
		     ? store_delete(am->env.store, KIND, topic_id)
		     : store_put(am->env.store, KIND, topic_id, text);
	free(text);
	json_decref(o);
	return rc;
}

/* Checks what can be checked before anything is sent. */
static int precheck(const struct amalert_set *s, const char *resource_label,
		    const struct amalert *alerts, size_t n, struct fault *f)
{
	size_t added = 0;

	for (size_t i = 0; i < n; i++) {
		const char *missing =
			amalert_label(&alerts[i], "alertname") == NULL
				? "alertname"
			: amalert_label(&alerts[i], resource_label) == NULL
				? resource_label
				: NULL;
		char field[64];

		if (missing != NULL) {
			snprintf(field, sizeof(field), "alerts[%zu].labels.%s",
				 i, missing);
			return fault_set(f, MDS_E_INVAL, field,
					 "%s: the alert (fingerprint %s) has "
					 "no label '%s'%s",
					 field, alerts[i].fingerprint, missing,
					 missing == resource_label
						 ? ", whose value is the "
						   "message's resourceId (the "
						   "deployment); set another "
						   "label with ?resourceLabel="
						 : "");
		}
		added += alerts[i].firing &&
			 !amalert_set_has(s, alerts[i].fingerprint);
	}
	if (amalert_set_count(s) + added > AMALERT_MAX_FIRING)
		return fault_set(f, MDS_E_LIMIT, "alerts",
				 "the topic would track more than %d firing "
				 "alerts", AMALERT_MAX_FIRING);
	return 0;
}

/* Publishes the message of alert a as event type. */
static int publish(struct alertmanager *am, const char *topic_id,
		   const char *resource_label, const struct amalert *a,
		   enum alarm_event_type type, int64_t now_ms,
		   struct alertmanager_outcome *out, struct fault *f)
{
	struct buf b;
	int rc;

	buf_init(&b, MESSAGE_MAX);
	rc = amalert_message_json(a, type, resource_label, now_ms, &b);
	if (rc == 0)
		rc = notifications_publish_id(am->env.notifications, topic_id,
					      a->fingerprint, buf_str(&b),
					      out->message_id,
					      sizeof(out->message_id));
	buf_free(&b);
	if (rc != 0)
		return fault_set(f, rc, "", "the message of alert %s could "
				 "not be queued: %s", a->fingerprint,
				 mds_strerror(rc));
	out->published = 1;
	out->type = type;
	return 0;
}

int alertmanager_receive(struct alertmanager *am, const char *topic_id,
			 const char *resource_label,
			 const struct amalert *alerts, size_t n,
			 struct alertmanager_outcome *out, struct fault *f)
{
	struct amalert_set *s;
	int64_t now_ms = ids_now_ms();
	size_t done = 0;
	bool began = false;
	int rc;

	if (!notifications_topic_exists(am->env.notifications, topic_id))
		return fault_set(f, MDS_E_NOTFOUND, "topic",
				 "no topic '%s'", topic_id);
	s = load(am, topic_id);
	rc = precheck(s, resource_label, alerts, n, f);
	/* One transaction: the messages go out only with the state that
	 * says they went out, and neither without the other. */
	if (rc == 0) {
		rc = store_begin(am->env.store);
		began = rc == 0;
		if (rc != 0)
			rc = fault_set(f, rc, "", "the store cannot take the "
				       "change now: %s", mds_strerror(rc));
	}
	for (; rc == 0 && done < n; done++) {
		enum alarm_event_type type;

		out[done] = (struct alertmanager_outcome){ 0 };
		if (amalert_decide(s, &alerts[done], &type))
			rc = publish(am, topic_id, resource_label,
				     &alerts[done], type, now_ms, &out[done],
				     f);
		if (rc == 0 && amalert_commit(s, &alerts[done]) != 0)
			rc = fault_set(f, MDS_E_INVAL, "alerts",
				       "alert %s cannot be recorded",
				       alerts[done].fingerprint);
	}
	if (rc == 0 && n > 0) {
		int src = save(am, topic_id, s);

		if (src == 0)
			src = store_commit(am->env.store);
		if (src != 0)
			rc = fault_set(f, src, "", "the firing alerts of topic "
				       "%s could not be stored (%s): no message "
				       "was sent; send the webhook again",
				       topic_id, mds_strerror(src));
	} else if (rc == 0) {
		rc = store_commit(am->env.store);
	}
	if (rc != 0) {
		if (began)
			store_rollback(am->env.store);
		for (size_t i = 0; i < done; i++)
			out[i].published = 0;
	}
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (out[i].published)
			log_info("alertmanager", "topic %s: %s %s (%s) as "
				 "message %s", topic_id,
				 alarm_event_type_name(out[i].type),
				 amalert_label(&alerts[i], "alertname"),
				 alerts[i].fingerprint, out[i].message_id);
	amalert_set_free(s);
	return rc;
}
