/*
 * notifications.c - topics and subscriptions: their checks, records and
 * views, the attempts' history, dead letters, and loading it all at open;
 * see notifications.h and docs/notifications.md. Publishing and the
 * queues of deliveries are in notifications_delivery.c.
 *
 * Durable state, all in the store: topics (kind "topic"), subscriptions
 * (kind "subscription", with their HMAC secret), one document per pending
 * delivery (kind "delivery", holding the message), and the attempts (event
 * stream "deliveries", ref the subscription id, trimmed to about the last
 * DELIVERIES_KEPT).
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/uidpool.h"
#include "notify/deadletters.h"
#include "notify/functions.h"
#include "notify/notifications_int.h"
#include "notify/whsig.h"
#include "store/store.h"
#include "api/jsonx.h"
#include "core/iso8601.h"
#include "util/ids.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

#define K_TOPIC "topic"
#define K_SUB "subscription"

#define MAX_TOPICS 1000
#define MAX_SUBS 1000
#define DEFAULT_ATTEMPTS NOTIFICATIONS_ATTEMPTS_DEFAULT
#define MAX_ATTEMPTS NOTIFICATIONS_ATTEMPTS_MAX
#define DEFAULT_TIMEOUT_S NOTIFICATIONS_TIMEOUT_DEFAULT_S
#define MAX_TIMEOUT_S NOTIFICATIONS_TIMEOUT_MAX_S
#define ARGV_MAX 256

const char *const notifications_protocols[P__COUNT + 1] = {
	"FUNCTION", "HTTPS", "HTTP", "COMMAND", NULL };

/* ---- small helpers ---- */

void notifications_save(struct notifications *n, const char *kind,
			const char *id, json_t *doc, int *rc)
{
	char *s = json_dumps(doc, JSON_COMPACT);

	if (*rc == 0)
		*rc = store_put(n->env.store, kind, id, s);
	free(s);
}

struct topic *notifications_find_topic(struct notifications *n, const char *key)
{
	for (struct topic *t = n->topics; t; t = t->next)
		if (strcmp(t->id, key) == 0)
			return t;
	for (struct topic *t = n->topics; t; t = t->next)
		if (strcmp(t->name, key) == 0)
			return t;
	return NULL;
}

static struct sub *find_sub(struct notifications *n, const char *id)
{
	for (struct sub *s = n->subs; s; s = s->next)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

/* Frees a topic record. */
static void topic_free(struct topic *t)
{
	free(t->name);
	free(t->description);
	free(t);
}

/* ---- views and stored documents ---- */

static void topic_view(const struct topic *t, struct notifications_topic *v)
{
	*v = (struct notifications_topic){
		.id = t->id, .name = t->name, .description = t->description,
		.created_ms = t->created_ms,
	};
}

static json_t *topic_doc(const struct topic *t)
{
	return json_pack("{s:s, s:s, s:s, s:I}", "id", t->id, "name", t->name,
			 "description", t->description, "createdMs",
			 (json_int_t)t->created_ms);
}

static void sub_view(const struct notifications *n, const struct sub *s,
		     struct notifications_subscription *v)
{
	*v = (struct notifications_subscription){
		.id = s->id, .topic_id = s->topic_id,
		.protocol = (enum notifications_protocol)s->proto,
		.endpoint = s->endpoint,
		.command = (const char *const *)s->command,
		.max_attempts = s->max_attempts, .timeout_s = s->timeout_s,
		.created_ms = s->created_ms,
		.uid = uidpool_on(n->env.uids) ? s->uid : 0,
		.pending = s->npending,
		.dead_letters = s->ndead,
	};
}

static json_t *sub_doc(const struct sub *s)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:i, s:s, s:I}", "id",
			      s->id, "topicId", s->topic_id, "protocol",
			      proto_names[s->proto], "maxAttempts",
			      (int)s->max_attempts, "timeoutSeconds",
			      (int)s->timeout_s, "secret", s->secret,
			      "createdMs", (json_int_t)s->created_ms);

	if (s->proto == P_COMMAND)
		json_object_set_new(o, "command",
				    jsonx_strv_json((const char *const *)
							    s->command));
	else
		json_object_set_new(o, "endpoint", json_string(s->endpoint));
	if (s->uid != 0)
		json_object_set_new(o, "runUid",
				    json_integer((json_int_t)s->uid));
	return o;
}

/* ---- what a topic reaches ---- */

bool notifications_topic_reaches(struct notifications *n,
				 const char *topic_id, const char *function)
{
	struct topic *t = notifications_find_topic(n, topic_id);

	if (t == NULL || strcmp(t->id, topic_id) != 0)
		return false;
	for (struct sub *s = n->subs; s; s = s->next)
		if (s->proto == P_FUNCTION && strcmp(s->topic_id, t->id) == 0 &&
		    strcmp(s->endpoint, function) == 0)
			return true;
	return false;
}

int notifications_topic_exists(void *arg, const char *topic_id)
{
	struct notifications *n = arg;
	struct topic *t = notifications_find_topic(n, topic_id);

	return t != NULL && strcmp(t->id, topic_id) == 0;
}

/* Takes s out of the list and frees it (its documents are gone). */
static void sub_remove(struct notifications *n, struct sub *s)
{
	for (struct sub **pp = &n->subs; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	n->nsubs--;
	notifications_orphan(n, s);
	notifications_sub_free(s);
}

/* ---- creations and deletions inside a caller's transaction ----
 *
 * The in-memory side of a topic's or a subscription's creation or
 * deletion follows its transaction (store_on_commit()), as monitoring's
 * alarms do. A creation shows at once, so that the same transaction can
 * subscribe to the new topic or point an alarm at it, and goes again when
 * the transaction is rolled back or its commit fails. A deletion takes
 * effect once the transaction is committed: until then, and for good when
 * it is not, the topic or subscription stays and keeps delivering.
 * Outside a transaction both take effect at once.
 */
struct change {
	struct notifications *n;
	char id[ID_LEN];
	const char *what; /* for the log: "deleted", ... */
};

static struct change *change_new(struct notifications *n, const char *id,
				 const char *what)
{
	struct change *c = xcalloc(1, sizeof(*c));

	c->n = n;
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->what = what;
	return c;
}

/* A change with nothing (more) to do. */
static void change_drop(void *arg)
{
	free(arg);
}

/* Takes the subscription c->id out of the module, if it is there. */
static void sub_gone(void *arg)
{
	struct change *c = arg;
	struct sub *s = find_sub(c->n, c->id);

	if (s != NULL) {
		log_info("notify", "subscription %s %s (%zu pending "
			 "deliveries dropped)", s->id, c->what, s->npending);
		sub_remove(c->n, s);
		notifications_arm(c->n);
	}
	free(c);
}

/* Takes the topic c->id and its subscriptions out of the module, if it is
 * there. */
static void topic_gone(void *arg)
{
	struct change *c = arg;
	struct notifications *n = c->n;
	struct topic *t = NULL, **pp;
	struct sub *s, *next;

	for (pp = &n->topics; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->id, c->id) == 0) {
			t = *pp;
			*pp = t->next;
			break;
		}
	if (t == NULL)
		goto out;
	for (s = n->subs; s; s = next) {
		next = s->next;
		if (strcmp(s->topic_id, t->id) == 0) {
			log_info("notify", "subscription %s %s with its "
				 "topic", s->id, c->what);
			sub_remove(n, s);
		}
	}
	n->ntopics--;
	log_info("notify", "topic %s (%s) %s", t->id, t->name, c->what);
	topic_free(t);
	notifications_arm(n);
out:
	free(c);
}

/* The word for a creation that its transaction took back. */
#define UNMADE "taken back (its transaction was not committed)"

/* ---- topics ---- */

static bool valid_topic_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NOTIFICATIONS_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

int notifications_topic_create(struct notifications *n,
			       const struct notifications_topic_spec *spec,
			       struct notifications_topic *out,
			       struct fault *f)
{
	struct topic *t, **tail;
	json_t *doc;
	int rc;

	if (!valid_topic_name(spec->name))
		return fault_set(f, MDS_E_INVAL, "name",
				 "name must be 1 to %d characters of A-Z a-z "
				 "0-9 _ -", NOTIFICATIONS_NAME_MAX);
	for (t = n->topics; t; t = t->next)
		if (strcmp(t->name, spec->name) == 0)
			return fault_set(f, MDS_E_EXISTS, "name",
					 "name: a topic named '%s' exists "
					 "(%s)", spec->name, t->id);
	if (n->ntopics >= MAX_TOPICS)
		return fault_set(f, MDS_E_LIMIT, "",
				 "at most %d topics may exist", MAX_TOPICS);
	if (spec->check_only)
		return 0;
	t = xcalloc(1, sizeof(*t));
	ids_new(t->id, ID_LEN, "topic-");
	t->name = xstrdup(spec->name);
	t->description = xstrdup(spec->description);
	t->created_ms = ids_now_ms();
	doc = topic_doc(t);
	rc = 0;
	notifications_save(n, K_TOPIC, t->id, doc, &rc);
	json_decref(doc);
	if (rc != 0) {
		topic_free(t);
		return fault_set(f, rc, "", "cannot store the topic: %s",
				 mds_strerror(rc));
	}
	for (tail = &n->topics; *tail; tail = &(*tail)->next)
		;
	*tail = t;
	n->ntopics++;
	log_info("notify", "topic %s (%s) created", t->id, t->name);
	store_on_commit(n->env.store, change_drop, topic_gone,
			change_new(n, t->id, UNMADE));
	if (out != NULL)
		topic_view(t, out);
	return 0;
}

int notifications_topic_update(struct notifications *n, const char *id,
			       const char *description, bool check_only,
			       struct notifications_topic *out,
			       struct fault *f)
{
	struct topic *t = notifications_find_topic(n, id);
	char *old;
	json_t *doc;
	int rc = 0;

	if (t == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "", "no topic '%.80s'", id);
	if (check_only)
		return 0;
	old = t->description;
	t->description = xstrdup(description);
	doc = topic_doc(t);
	notifications_save(n, K_TOPIC, t->id, doc, &rc);
	json_decref(doc);
	if (rc != 0) {
		free(t->description);
		t->description = old;
		return fault_set(f, rc, "", "cannot store the topic: %s",
				 mds_strerror(rc));
	}
	free(old);
	log_info("notify", "topic %s (%s) updated", t->id, t->name);
	if (out != NULL)
		topic_view(t, out);
	return 0;
}

/* Deletes a subscription's documents and history (inside the caller's
 * transaction). */
static int sub_unstore(struct notifications *n, struct sub *s)
{
	int rc = 0;

	for (struct pending *p = s->head; p && rc == 0; p = p->next)
		rc = store_delete(n->env.store, K_DELIVERY, p->id);
	if (rc == 0 && s->ndead > 0)
		rc = deadletters_delete_all(n->env.store, s->id);
	if (rc == 0)
		rc = store_delete(n->env.store, K_SUB, s->id);
	if (rc == 0)
		rc = store_event_trim(n->env.store, STREAM, s->id, INT64_MAX);
	return rc;
}

int notifications_topic_delete(struct notifications *n, const char *id,
			       struct fault *f)
{
	struct topic *t = notifications_find_topic(n, id);
	int rc;

	if (t == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "",
				 "no topic '%.80s'", id);
	rc = store_begin(n->env.store);
	for (struct sub *s = n->subs; s && rc == 0; s = s->next)
		if (strcmp(s->topic_id, t->id) == 0)
			rc = sub_unstore(n, s);
	if (rc == 0)
		rc = store_delete(n->env.store, K_TOPIC, t->id);
	if (rc == 0)
		rc = store_commit(n->env.store);
	if (rc != 0) {
		store_rollback(n->env.store);
		return fault_set(f, rc, "", "cannot delete the topic: %s",
				 mds_strerror(rc));
	}
	store_on_commit(n->env.store, topic_gone, change_drop,
			change_new(n, t->id, "deleted"));
	return 0;
}

int notifications_topic_get(struct notifications *n, const char *id,
			    struct notifications_topic *out, struct fault *f)
{
	struct topic *t = notifications_find_topic(n, id);

	if (t == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "", "no topic '%.80s'",
				 id);
	topic_view(t, out);
	return 0;
}

void notifications_topic_each(struct notifications *n, const char *name,
			      void (*fn)(void *arg,
					 const struct notifications_topic *t),
			      void *arg)
{
	struct notifications_topic v;

	for (struct topic *t = n->topics; t; t = t->next)
		if (name == NULL || strcmp(t->name, name) == 0) {
			topic_view(t, &v);
			fn(arg, &v);
		}
}

/* ---- subscriptions ---- */

static int parse_proto(const char *s)
{
	for (int i = 0; i < P__COUNT; i++)
		if (strcmp(proto_names[i], s) == 0)
			return i;
	return -1;
}

/* Checks an HTTP(S) endpoint: the scheme matches the protocol, a host is
 * there, and nothing would break a request line. */
static int check_url(const char *url, enum proto p, struct fault *f)
{
	const char *scheme = p == P_HTTPS ? "https://" : "http://";
	size_t sl = strlen(scheme), len = strlen(url), host;

	if (strncasecmp(url, scheme, sl) != 0)
		return fault_set(f, MDS_E_INVAL, "endpoint",
				 "endpoint: a %s subscription needs a %s URL, "
				 "not '%.200s'", proto_names[p], scheme, url);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
			return fault_set(f, MDS_E_INVAL, "endpoint",
					 "endpoint: the URL holds a blank or "
					 "control character");
	host = strcspn(url + sl, "/?#");
	if (host == 0 || url[sl] == ':' || url[sl] == '@')
		return fault_set(f, MDS_E_INVAL, "endpoint",
				 "endpoint: '%.200s' names no host", url);
	return 0;
}

void notifications_subscription_spec_init(
	struct notifications_subscription_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	spec->protocol = NOTIFICATIONS_FUNCTION;
	spec->max_attempts = DEFAULT_ATTEMPTS;
	spec->timeout_s = DEFAULT_TIMEOUT_S;
}

/* Checks the endpoint or the command against the protocol. */
static int check_target(struct notifications *n,
			const struct notifications_subscription_spec *spec,
			struct fault *f)
{
	if (spec->protocol == P_COMMAND) {
		if (spec->endpoint[0] != '\0')
			return fault_set(f, MDS_E_INVAL, "endpoint",
					 "endpoint: not used by COMMAND "
					 "subscriptions; give the program and "
					 "its arguments in command");
		if (spec->command == NULL || spec->command[0] == NULL)
			return fault_set(f, MDS_E_INVAL, "command",
					 "command: a COMMAND subscription "
					 "runs a program: give its argument "
					 "vector");
		return functions_check_argv(
			(const char *const *)spec->command, "command", f);
	}
	if (spec->command != NULL)
		return fault_set(f, MDS_E_INVAL, "command",
				 "command: only COMMAND subscriptions take "
				 "one");
	if (spec->endpoint[0] == '\0')
		return fault_set(f, MDS_E_INVAL, "endpoint",
				 "endpoint: a %s subscription needs one",
				 proto_names[spec->protocol]);
	if (spec->protocol == P_FUNCTION) {
		if (!functions_exists(n->env.functions, spec->endpoint))
			return fault_set(f, MDS_E_INVAL, "endpoint",
					 "endpoint: no function named "
					 "'%.80s'", spec->endpoint);
		return 0;
	}
	return check_url(spec->endpoint, (enum proto)spec->protocol, f);
}

/* A new subscription's secret when none is given, as Standard Webhooks
 * writes them: "whsec_" and the base64 of 32 random bytes. Allocated. */
static char *new_secret(void)
{
	unsigned char raw[32];
	char *out = xmalloc(6 + 44 + 1);

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		abort(); /* no randomness: nothing safe to sign with */
	memcpy(out, "whsec_", 6);
	EVP_EncodeBlock((unsigned char *)out + 6, raw, sizeof(raw));
	return out;
}

int notifications_subscription_create(
	struct notifications *n,
	const struct notifications_subscription_spec *spec,
	struct notifications_subscription *out, struct fault *f)
{
	struct sub *s, **tail;
	struct topic *t;
	unsigned char key[WHSIG_KEY_MAX];
	size_t keylen;
	uint32_t uid = 0;
	json_t *doc;
	int rc;

	if (spec->protocol < 0 || spec->protocol >= P__COUNT)
		return fault_set(f, MDS_E_INVAL, "protocol",
				 "protocol: not a protocol");
	t = notifications_find_topic(n,
				     spec->topic_id); /* its id or its name */
	if (t == NULL)
		return fault_set(f, MDS_E_INVAL, "topicId",
				 "topicId: no topic with the id or name "
				 "'%.80s'", spec->topic_id);
	rc = check_target(n, spec, f);
	if (rc != 0)
		return rc;
	if (spec->secret[0] != '\0' && whsig_key(spec->secret, key, &keylen) != 0)
		return fault_set(f, MDS_E_INVAL, "secret",
				 "secret: a secret that starts with 'whsec_' "
				 "is base64 of 1 to %d bytes", WHSIG_KEY_MAX);
	if (n->nsubs >= MAX_SUBS)
		return fault_set(f, MDS_E_LIMIT, "",
				 "at most %d subscriptions may exist",
				 MAX_SUBS);
	if (spec->protocol == P_COMMAND && uidpool_on(n->env.uids)) {
		rc = uidpool_pick(n->env.uids, &uid, f);
		if (rc != 0)
			return rc;
	}
	if (spec->check_only)
		return 0;

	s = xcalloc(1, sizeof(*s));
	ids_new(s->id, ID_LEN, "sub-");
	snprintf(s->topic_id, sizeof(s->topic_id), "%s", t->id);
	s->proto = (enum proto)spec->protocol;
	s->uid = uid;
	if (s->proto == P_COMMAND)
		s->command = xstrvdup((const char *const *)spec->command);
	else
		s->endpoint = xstrdup(spec->endpoint);
	s->max_attempts = spec->max_attempts;
	s->timeout_s = spec->timeout_s;
	if (spec->secret[0] != '\0') {
		s->secret = xstrdup(spec->secret);
	} else {
		s->secret = new_secret();
	}
	s->created_ms = ids_now_ms();
	doc = sub_doc(s);
	rc = 0;
	notifications_save(n, K_SUB, s->id, doc, &rc);
	json_decref(doc);
	if (rc != 0) {
		notifications_sub_free(s);
		return fault_set(f, rc, "",
				 "cannot store the subscription: %s",
				 mds_strerror(rc));
	}
	for (tail = &n->subs; *tail; tail = &(*tail)->next)
		;
	*tail = s;
	n->nsubs++;
	log_info("notify", "subscription %s: %s to topic %s", s->id,
		 proto_names[s->proto], t->id);
	store_on_commit(n->env.store, change_drop, sub_gone,
			change_new(n, s->id, UNMADE));
	if (out != NULL) {
		sub_view(n, s, out);
		/* The secret is shown once, here, where it is used: HTTP and
		 * HTTPS deliveries are signed with it. */
		out->secret = s->proto == P_HTTP || s->proto == P_HTTPS
				      ? s->secret : NULL;
	}
	return 0;
}

int notifications_subscription_delete(struct notifications *n,
				      const char *id, struct fault *f)
{
	struct sub *s = find_sub(n, id);
	int rc;

	if (s == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "",
				 "no subscription '%.80s'", id);
	rc = store_begin(n->env.store);
	if (rc == 0)
		rc = sub_unstore(n, s);
	if (rc == 0)
		rc = store_commit(n->env.store);
	if (rc != 0) {
		store_rollback(n->env.store);
		return fault_set(f, rc, "",
				 "cannot delete the subscription: %s",
				 mds_strerror(rc));
	}
	store_on_commit(n->env.store, sub_gone, change_drop,
			change_new(n, s->id, "deleted"));
	return 0;
}

int notifications_subscription_update(
	struct notifications *n, const char *id, uint32_t max_attempts,
	uint32_t timeout_s, bool check_only,
	struct notifications_subscription *out, struct fault *f)
{
	struct sub *s = find_sub(n, id);
	uint32_t old_attempts, old_timeout;
	json_t *doc;
	int rc = 0;

	if (s == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "",
				 "no subscription '%.80s'", id);
	if (check_only)
		return 0;
	old_attempts = s->max_attempts;
	old_timeout = s->timeout_s;
	if (max_attempts > 0)
		s->max_attempts = max_attempts;
	if (timeout_s > 0)
		s->timeout_s = timeout_s;
	doc = sub_doc(s);
	notifications_save(n, K_SUB, s->id, doc, &rc);
	json_decref(doc);
	if (rc != 0) {
		s->max_attempts = old_attempts;
		s->timeout_s = old_timeout;
		return fault_set(f, rc, "", "cannot store the subscription: "
				 "%s", mds_strerror(rc));
	}
	log_info("notify", "subscription %s updated", s->id);
	if (out != NULL)
		sub_view(n, s, out);
	return 0;
}

int notifications_subscription_get(struct notifications *n, const char *id,
				   struct notifications_subscription *out,
				   struct fault *f)
{
	struct sub *s = find_sub(n, id);

	if (s == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "",
				 "no subscription '%.80s'", id);
	sub_view(n, s, out);
	return 0;
}

void notifications_each_stats(
	struct notifications *n,
	void (*fn)(void *arg, const struct notifications_stats *st), void *arg)
{
	for (struct sub *s = n->subs; s; s = s->next) {
		struct notifications_stats st = {
			.subscription_id = s->id,
			.topic_id = s->topic_id,
			.pending = s->npending,
			.succeeded = s->outcomes[0],
			.failed = s->outcomes[1],
			.retrying = s->outcomes[2],
		};

		fn(arg, &st);
	}
}

void notifications_subscription_each(
	struct notifications *n, const char *topic_id,
	void (*fn)(void *arg, const struct notifications_subscription *s),
	void *arg)
{
	struct notifications_subscription v;
	/* The filter takes a topic's id or its name. */
	struct topic *t = topic_id != NULL
				  ? notifications_find_topic(n, topic_id)
				  : NULL;

	if (topic_id != NULL && t == NULL)
		return;
	for (struct sub *s = n->subs; s; s = s->next)
		if (t == NULL || strcmp(s->topic_id, t->id) == 0) {
			sub_view(n, s, &v);
			fn(arg, &v);
		}
}

struct attempt_walk {
	void (*fn)(void *arg, const struct notifications_attempt *at);
	void *arg;
};

/* An RFC 3339 time of a stored record, or 0. */
static int64_t record_time(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	int64_t ms = 0;

	if (s == NULL || iso8601_time_parse(s, &ms, NULL, 0) != 0)
		return 0;
	return ms;
}

/* Reads one stored attempt record into a struct for the walker's fn. */
static int each_attempt(void *arg, const char *ref, const char *json)
{
	struct attempt_walk *w = arg;
	json_t *o = json_loads(json, 0, NULL), *status;
	const char *outcome = json_string_value(json_object_get(o, "outcome"));
	struct notifications_attempt at;

	(void)ref;
	if (!json_is_object(o) || outcome == NULL) {
		json_decref(o);
		return 0;
	}
	status = json_object_get(o, "status");
	at = (struct notifications_attempt){
		.message_id = jsonx_str(o, "messageId", ""),
		.dedupe_key = jsonx_str(o, "dedupeKey", ""),
		.attempt = (int)json_integer_value(json_object_get(o,
								   "attempt")),
		.started_ms = record_time(o, "timeStarted"),
		.finished_ms = record_time(o, "timeFinished"),
		.outcome = outcome,
		.status = json_is_integer(status)
				  ? (long)json_integer_value(status) : -1,
		.error = json_string_value(json_object_get(o, "error")),
		.duration_ms = (uint64_t)json_integer_value(
			json_object_get(o, "durationMs")),
	};
	w->fn(w->arg, &at);
	json_decref(o);
	return 0;
}

int notifications_attempts_each(
	struct notifications *n, const char *id,
	void (*fn)(void *arg, const struct notifications_attempt *at),
	void *arg, struct fault *f)
{
	struct sub *s = find_sub(n, id);
	struct attempt_walk w = { fn, arg };
	int rc;

	if (s == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "",
				 "no subscription '%.80s'", id);
	rc = store_event_each(n->env.store, STREAM, s->id, 0, DELIVERIES_KEPT,
			      each_attempt, &w);
	if (rc != 0)
		return fault_set(f, rc, "", "cannot read the deliveries: %s",
				 mds_strerror(rc));
	return 0;
}

/* ---- dead letters ---- */

int notifications_dead_letters_each(
	struct notifications *n, const char *sub_id,
	void (*fn)(void *arg, const struct notifications_dead_letter *dl),
	void *arg, struct fault *f)
{
	struct sub *s = find_sub(n, sub_id);
	int rc;

	if (s == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "",
				 "no subscription '%.80s'", sub_id);
	rc = deadletters_each(n->env.store, s->id, fn, arg);
	if (rc != 0)
		return fault_set(f, rc, "", "cannot read the dead letters: %s",
				 mds_strerror(rc));
	return 0;
}

int notifications_dead_letter_replay(struct notifications *n,
				     const char *sub_id, const char *dead_id,
				     char *delivery_id, size_t idsz,
				     struct fault *f)
{
	struct sub *s = find_sub(n, sub_id);
	struct deadletter_copy d;
	struct pending *p;
	json_t *doc;
	int64_t now = ids_now_ms();
	int rc;

	if (n->closing)
		return fault_set(f, MDS_E_UNAVAIL, "", "the daemon is closing");
	if (s == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "",
				 "no subscription '%.80s'", sub_id);
	rc = deadletters_get(n->env.store, s->id, dead_id, &d);
	if (rc == MDS_E_DB)
		return fault_set(f, rc, "", "cannot read the dead letter");
	if (rc != 0)
		return fault_set(f, MDS_E_NOTFOUND, "",
				 "subscription %s has no dead letter '%.80s'",
				 s->id, dead_id);
	if (s->npending >= MAX_PENDING) {
		deadletters_copy_free(&d);
		return fault_set(f, MDS_E_LIMIT, "",
				 "%d deliveries are pending already",
				 MAX_PENDING);
	}
	p = xcalloc(1, sizeof(*p));
	ids_new(p->id, ID_LEN, "dl-");
	p->key = xstrdup(d.ordering_key);
	p->next_ms = now;
	doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I}",
			"id", p->id, "subscriptionId", s->id, "topicId",
			s->topic_id, "messageId", d.message_id, "dedupeKey",
			d.dedupe_key, "orderingKey", p->key, "message",
			d.message, "attempts", 0, "nextAttemptMs",
			(json_int_t)now, "createdMs", (json_int_t)now);
	deadletters_copy_free(&d);
	rc = store_begin(n->env.store);
	notifications_save(n, K_DELIVERY, p->id, doc, &rc);
	json_decref(doc);
	if (rc == 0)
		rc = deadletters_delete(n->env.store, dead_id);
	if (rc == 0)
		rc = store_commit(n->env.store);
	if (rc != 0) {
		store_rollback(n->env.store);
		free(p->key);
		free(p);
		return fault_set(f, rc, "", "cannot queue the replay: %s",
				 mds_strerror(rc));
	}
	s->ndead--;
	notifications_sub_push(s, p);
	if (delivery_id != NULL && idsz > 0)
		snprintf(delivery_id, idsz, "%s", p->id);
	log_info("notify", "%s: dead letter %s replayed as delivery %s",
		 s->id, dead_id, p->id);
	notifications_arm(n);
	return 0;
}

/* ---- open and close ---- */

struct loader {
	struct notifications *n;
	json_t *stale; /* [kind, id] pairs to delete after the walk */
};

static int load_topic(void *arg, const char *id, const char *json)
{
	struct loader *l = arg;
	struct topic *t, **tail;
	json_t *o = json_loads(json, 0, NULL);
	const char *name = json_string_value(json_object_get(o, "name"));

	if (name == NULL || strlen(id) >= ID_LEN) {
		log_warn("notify", "skipping the unreadable topic %s", id);
		json_decref(o);
		return 0;
	}
	t = xcalloc(1, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "%s", id);
	t->name = xstrdup(name);
	t->description = xstrdup(jsonx_str(o, "description", ""));
	t->created_ms = json_integer_value(json_object_get(o, "createdMs"));
	json_decref(o);
	for (tail = &l->n->topics; *tail; tail = &(*tail)->next)
		;
	*tail = t;
	l->n->ntopics++;
	return 0;
}

static int load_sub(void *arg, const char *id, const char *json)
{
	struct loader *l = arg;
	struct notifications *n = l->n;
	struct sub *s, **tail;
	json_t *o = json_loads(json, 0, NULL);
	int proto = parse_proto(jsonx_str(o, "protocol", ""));
	struct topic *t =
		notifications_find_topic(n, jsonx_str(o, "topicId", ""));
	char **cmd = jsonx_strv(json_object_get(o, "command"), ARGV_MAX);
	const char *ep = json_string_value(json_object_get(o, "endpoint"));

	if (t == NULL || strcmp(t->id, jsonx_str(o, "topicId", "")) != 0) {
		log_warn("notify", "subscription %s: its topic is gone; "
			 "deleted", id);
		json_array_append_new(l->stale, json_pack("[s,s]", K_SUB, id));
		json_decref(o);
		xstrvfree(cmd);
		return 0;
	}
	if (proto < 0 || strlen(id) >= ID_LEN ||
	    (proto == P_COMMAND ? cmd == NULL : ep == NULL) ||
	    json_string_value(json_object_get(o, "secret")) == NULL) {
		log_warn("notify", "skipping the unreadable subscription %s",
			 id);
		json_decref(o);
		xstrvfree(cmd);
		return 0;
	}
	s = xcalloc(1, sizeof(*s));
	snprintf(s->id, sizeof(s->id), "%s", id);
	snprintf(s->topic_id, sizeof(s->topic_id), "%s", t->id);
	s->proto = (enum proto)proto;
	if (proto == P_COMMAND) {
		s->command = cmd;
		/* Stored before instanceUids: 0, given one by
		 * notifications_settle_uids(). */
		s->uid = jsonx_uint(o, "runUid", IDRANGE_ID_MAX);
	} else {
		s->endpoint = xstrdup(ep);
		xstrvfree(cmd);
	}
	s->max_attempts = (uint32_t)json_integer_value(
		json_object_get(o, "maxAttempts"));
	if (s->max_attempts < 1 || s->max_attempts > MAX_ATTEMPTS)
		s->max_attempts = DEFAULT_ATTEMPTS;
	s->timeout_s = (uint32_t)json_integer_value(
		json_object_get(o, "timeoutSeconds"));
	if (s->timeout_s < 1 || s->timeout_s > MAX_TIMEOUT_S)
		s->timeout_s = DEFAULT_TIMEOUT_S;
	s->secret = xstrdup(jsonx_str(o, "secret", ""));
	s->created_ms = json_integer_value(json_object_get(o, "createdMs"));
	json_decref(o);
	for (tail = &n->subs; *tail; tail = &(*tail)->next)
		;
	*tail = s;
	n->nsubs++;
	return 0;
}

static int load_delivery(void *arg, const char *id, const char *json)
{
	struct loader *l = arg;
	json_t *o = json_loads(json, 0, NULL);
	struct sub *s = find_sub(l->n, jsonx_str(o, "subscriptionId", ""));
	struct pending *p;

	if (s == NULL || strlen(id) >= ID_LEN) {
		json_array_append_new(l->stale,
				      json_pack("[s,s]", K_DELIVERY, id));
		json_decref(o);
		return 0;
	}
	p = xcalloc(1, sizeof(*p));
	snprintf(p->id, sizeof(p->id), "%s", id);
	p->attempts = (int)json_integer_value(json_object_get(o, "attempts"));
	p->next_ms = json_integer_value(json_object_get(o, "nextAttemptMs"));
	p->key = xstrdup(jsonx_str(o, "orderingKey", ""));
	json_decref(o);
	/* A queue full before a restart stays full: MAX_PENDING still
	 * bounds what new publishes add. */
	notifications_sub_push(s, p);
	return 0;
}

static int load_dead(void *arg, const char *id, const char *sub_id)
{
	struct loader *l = arg;
	struct sub *s = find_sub(l->n, sub_id);

	if (s == NULL)
		json_array_append_new(l->stale,
				      json_pack("[s,s]", DEADLETTERS_KIND, id));
	else
		s->ndead++;
	return 0;
}

static void free_all(struct notifications *n)
{
	while (n->subs != NULL) {
		struct sub *s = n->subs;

		n->subs = s->next;
		notifications_orphan(n, s);
		notifications_sub_free(s);
	}
	while (n->topics != NULL) {
		struct topic *t = n->topics;

		n->topics = t->next;
		topic_free(t);
	}
}

/* The pool's holder: each COMMAND subscription's uid (its programs still
 * running hold theirs through the functions module). */
static void hold_uids(void *arg, struct uidpool_ids *ids)
{
	const struct notifications *n = arg;

	for (const struct sub *s = n->subs; s; s = s->next)
		uidpool_ids_add(ids, s->uid);
}

void notifications_settle_uids(struct notifications *n)
{
	struct fault f;
	json_t *doc;
	int rc;

	if (!uidpool_on(n->env.uids))
		return;
	for (struct sub *s = n->subs; s; s = s->next) {
		if (s->proto != P_COMMAND)
			continue;
		/* A uid held twice (a record edited by hand): this one
		 * gets another; a deployment or a function keeps it. */
		if (s->uid != 0 && uidpool_count(n->env.uids, s->uid) > 1) {
			log_warn("notify", "subscription %s shared the uid "
				 "%u; it gets another", s->id, s->uid);
			s->uid = 0;
		}
		if (s->uid != 0)
			continue;
		if (uidpool_pick(n->env.uids, &s->uid, &f) != 0) {
			log_warn("notify", "subscription %s: %s; its command "
				 "runs as runAsUser", s->id, f.message);
			continue;
		}
		rc = 0;
		doc = sub_doc(s);
		notifications_save(n, K_SUB, s->id, doc, &rc);
		json_decref(doc);
		if (rc != 0)
			log_warn("notify", "subscription %s: its uid %u could "
				 "not be stored; it is kept while the daemon "
				 "runs", s->id, s->uid);
		log_info("notify", "subscription %s: its command runs as uid "
			 "%u from now on", s->id, s->uid);
	}
}

int notifications_open(const struct notifications_env *env,
		       struct notifications **out, char *diag, size_t diagsz)
{
	struct notifications *n = xcalloc(1, sizeof(*n));
	struct loader l = { .n = n, .stale = json_array() };
	size_t pending = 0, i;
	json_t *v;
	int rc;

	n->env = *env;
	rc = store_each(env->store, K_TOPIC, load_topic, &l);
	if (rc == 0)
		rc = store_each(env->store, K_SUB, load_sub, &l);
	if (rc == 0)
		rc = store_each(env->store, K_DELIVERY, load_delivery, &l);
	if (rc == 0)
		rc = deadletters_scan(env->store, load_dead, &l);
	if (rc != 0) {
		mds_diag(diag, diagsz, "cannot load topics and "
			 "subscriptions: %s", mds_strerror(rc));
		json_decref(l.stale);
		free_all(n);
		free(n);
		return rc;
	}
	if (json_array_size(l.stale) > 0) {
		store_begin(env->store);
		json_array_foreach(l.stale, i, v) {
			const char *id = json_string_value(
				json_array_get(v, 1));

			store_delete(env->store,
				     json_string_value(json_array_get(v, 0)),
				     id);
			store_event_trim(env->store, STREAM, id, INT64_MAX);
		}
		if (store_commit(env->store) != 0)
			store_rollback(env->store);
	}
	json_decref(l.stale);
	for (struct sub *s = n->subs; s; s = s->next)
		pending += s->npending;
	uv_timer_init(env->loop, &n->timer);
	n->timer.data = n;
	uidpool_hold(env->uids, hold_uids, n);
	log_info("notify", "%zu topics, %zu subscriptions, %zu pending "
		 "deliveries loaded", n->ntopics, n->nsubs, pending);
	*out = n;
	notifications_arm(n);
	return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	struct notifications *n = h->data;
	void (*done)(void *) = n->done;
	void *arg = n->done_arg;

	free_all(n);
	free(n);
	if (done != NULL)
		done(arg);
}

void notifications_close(struct notifications *n, void (*done)(void *arg),
			 void *arg)
{
	if (n == NULL) {
		if (done != NULL)
			done(arg);
		return;
	}
	n->closing = true;
	uidpool_forget(n->env.uids, n);
	n->done = done;
	n->done_arg = arg;
	for (struct sub *s = n->subs; s; s = s->next)
		notifications_orphan(n, s);
	uv_timer_stop(&n->timer);
	uv_close((uv_handle_t *)&n->timer, on_timer_closed);
}
