/*
 * notifications.c - topics, subscriptions and their deliveries; see
 * notifications.h and docs/notifications.md.
 *
 * Durable state, all in the store: topics (kind "topic"), subscriptions
 * (kind "subscription", with their HMAC secret), one document per pending
 * delivery (kind "delivery", holding the message), and the attempts (event
 * stream "deliveries", ref the subscription id, trimmed to about the last
 * DELIVERIES_KEPT).
 *
 * In memory each subscription keeps its pending deliveries as a FIFO of
 * small records (the message stays in the store and is read at each
 * attempt). Ordering is per dedupe key, not per subscription: a delivery
 * waits only for the earlier deliveries of its subscription that carry the
 * same dedupe key (one alarm's firing episode), so a message that keeps
 * failing never holds up another alarm's. Messages published without a
 * dedupe key share one ordering key ("") and keep their order among
 * themselves. One timer drives every queue: it
 * starts each due delivery whose key is free (up to MAX_INFLIGHT per
 * subscription, among the first SCAN_MAX queued), then sleeps until the
 * earliest next due one. An attempt's outcome is committed (event plus
 * queue change, in one transaction) before the queue moves on.
 *
 * A failure is transient (a timeout, a crash, HTTP 408, 429 or 5xx, a
 * connection error: retried with backoff) or permanent (a function that
 * refuses the message, HTTP 4xx otherwise: never retried). A delivery that
 * fails permanently, or uses its last attempt, becomes a dead letter (kind
 * "deadletter", with its reason) that the user can read and replay.
 *
 * An attempt in flight whose subscription goes away (deleted, or the
 * module closes) is orphaned: it is cancelled where that is possible, and
 * its completion only frees it. Its delivery, if still stored, is tried
 * again after a restart: delivery is at least once.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/delivery.h"
#include "notify/deadletters.h"
#include "notify/functions.h"
#include "http/httpc.h"
#include "notify/notifications.h"
#include "notify/whsig.h"
#include "store/store.h"
#include "api/jsonx.h"
#include "core/iso8601.h"
#include "util/ids.h"
#include "util/err.h"
#include "util/log.h"
#include "util/version.h"
#include "util/xalloc.h"

#define K_TOPIC "topic"
#define K_SUB "subscription"
#define K_DELIVERY "delivery"
#define STREAM "deliveries"

#define ID_LEN (NOTIFICATIONS_ID_MAX + 1)
#define DEDUPE_MAX 256
#define MESSAGE_MAX (1024 * 1024)
#define MAX_TOPICS 1000
#define MAX_SUBS 1000
#define MAX_PENDING 10000
#define DEFAULT_ATTEMPTS NOTIFICATIONS_ATTEMPTS_DEFAULT
#define MAX_ATTEMPTS NOTIFICATIONS_ATTEMPTS_MAX
#define DEFAULT_TIMEOUT_S NOTIFICATIONS_TIMEOUT_DEFAULT_S
#define MAX_TIMEOUT_S NOTIFICATIONS_TIMEOUT_MAX_S
#define ARGV_MAX 256
#define BACKOFF_BASE_MS 1000
#define BACKOFF_MAX_MS (5 * 60 * 1000)
#define DELIVERIES_KEPT 1000
#define TRIM_EVERY 50
#define RESPONSE_MAX (64 * 1024)
/* Deliveries of one subscription in flight at once, and how far down its
 * queue a tick looks for one that may start. */
#define MAX_INFLIGHT 8
#define SCAN_MAX 256

enum proto {
	P_FUNCTION = NOTIFICATIONS_FUNCTION,
	P_HTTPS = NOTIFICATIONS_HTTPS,
	P_HTTP = NOTIFICATIONS_HTTP,
	P_COMMAND = NOTIFICATIONS_COMMAND,
	P__COUNT
};
const char *const notifications_protocols[P__COUNT + 1] = {
	"FUNCTION", "HTTPS", "HTTP", "COMMAND", NULL };
#define proto_names notifications_protocols

struct topic {
	struct topic *next;
	char id[ID_LEN];
	char *name;
	char *description;
	int64_t created_ms;
};

struct attempt;

/* One queued delivery; its message is in the store. */
struct pending {
	struct pending *next;
	char id[ID_LEN];
	char *key;        /* the dedupe key: the ordering key */
	int attempts;     /* made so far */
	int64_t next_ms;  /* not before */
	struct attempt *inflight;
};

struct sub {
	struct sub *next;
	char id[ID_LEN];
	char topic_id[ID_LEN];
	enum proto proto;
	char *endpoint;   /* function name or URL; NULL for COMMAND */
	char **command;   /* COMMAND: argv, NULL-terminated */
	uint32_t max_attempts;
	uint32_t timeout_s;
	char *secret;
	int64_t created_ms;
	struct pending *head, *tail;
	size_t npending;
	size_t ninflight;
	size_t ndead;     /* dead letters stored */
	unsigned since_trim;
	uint64_t outcomes[3]; /* SUCCEEDED, FAILED, RETRYING since start */
};

/* One attempt at a queued delivery of a subscription. */
struct attempt {
	struct notifications *n; /* NULL once orphaned */
	struct sub *sub;         /* NULL once orphaned */
	json_t *doc;             /* the delivery document */
	char delivery_id[ID_LEN];
	int number;
	int64_t started_ms;
	uint64_t start_ns;
	struct httpc_req *hreq;
	struct functions_run *run;
};

struct notifications {
	struct notifications_env env;
	struct topic *topics;
	size_t ntopics;
	struct sub *subs;
	size_t nsubs;
	uv_timer_t timer;
	bool closing;
	void (*done)(void *arg);
	void *done_arg;
};

static void arm(struct notifications *n);

/* ---- small helpers ---- */

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static void save(struct notifications *n, const char *kind, const char *id,
		 json_t *doc, int *rc)
{
	char *s = json_dumps(doc, JSON_COMPACT);

	if (*rc == 0)
		*rc = store_put(n->env.store, kind, id, s);
	free(s);
}

static struct topic *find_topic(struct notifications *n, const char *key)
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

/* Copies a dedupe key into a header-safe form: printable ASCII, capped. */
static void clean_key(char *out, size_t outsz, const char *key,
		      const char *fallback)
{
	size_t i = 0;

	if (key != NULL)
		for (; key[i] != '\0' && i + 1 < outsz && i < DEDUPE_MAX; i++)
			out[i] = (key[i] > 0x20 && key[i] < 0x7f) ? key[i]
								   : '_';
	out[i] = '\0';
	if (i == 0)
		snprintf(out, outsz, "%s", fallback);
}

static uint64_t backoff_ms(int attempts)
{
	uint64_t ms = BACKOFF_BASE_MS;

	for (int i = 1; i < attempts && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
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

static void sub_view(const struct sub *s,
		     struct notifications_subscription *v)
{
	*v = (struct notifications_subscription){
		.id = s->id, .topic_id = s->topic_id,
		.protocol = (enum notifications_protocol)s->proto,
		.endpoint = s->endpoint,
		.command = (const char *const *)s->command,
		.max_attempts = s->max_attempts, .timeout_s = s->timeout_s,
		.created_ms = s->created_ms, .pending = s->npending,
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
	return o;
}

/* ---- the queues ---- */

static void sub_push(struct sub *s, struct pending *p)
{
	p->next = NULL;
	if (s->tail != NULL)
		s->tail->next = p;
	else
		s->head = p;
	s->tail = p;
	s->npending++;
}

/* Takes p out of the queue of s and frees it. */
static void sub_drop(struct sub *s, struct pending *p)
{
	struct pending *prev = NULL;

	for (struct pending *q = s->head; q != NULL; prev = q, q = q->next) {
		if (q != p)
			continue;
		if (prev != NULL)
			prev->next = q->next;
		else
			s->head = q->next;
		if (s->tail == q)
			s->tail = prev;
		s->npending--;
		free(q->key);
		free(q);
		return;
	}
}

static struct pending *sub_find_pending(struct sub *s, const char *id)
{
	for (struct pending *p = s->head; p != NULL; p = p->next)
		if (strcmp(p->id, id) == 0)
			return p;
	return NULL;
}

static void attempt_free(struct attempt *a)
{
	json_decref(a->doc);
	free(a);
}

/* Lets go of every attempt in flight: each is cancelled where possible,
 * and its completion will only free it. */
static void orphan(struct notifications *n, struct sub *s)
{
	for (struct pending *p = s->head; p != NULL; p = p->next) {
		struct attempt *a = p->inflight;

		if (a == NULL)
			continue;
		p->inflight = NULL;
		a->sub = NULL;
		a->n = NULL;
		if (a->hreq != NULL)
			httpc_cancel(n->env.httpc, a->hreq);
		else if (a->run != NULL)
			functions_run_cancel(n->env.functions, a->run);
	}
	s->ninflight = 0;
}

static void sub_free(struct sub *s)
{
	while (s->head != NULL)
		sub_drop(s, s->head);
	free(s->endpoint);
	free(s->secret);
	xstrvfree(s->command);
	free(s);
}

static void topic_free(struct topic *t)
{
	free(t->name);
	free(t->description);
	free(t);
}

/* Records one outcome in the subscription's history (inside the caller's
 * transaction). */
static int add_event(struct notifications *n, struct sub *s,
		     const char *message_id, const char *dedupe_key,
		     int attempt, int64_t started, int64_t finished,
		     const char *outcome, json_t *status, const char *error,
		     uint64_t duration_ms)
{
	json_t *o = json_pack("{s:s, s:s, s:i, s:o, s:o, s:s, s:o, s:o, s:I, "
			      "s:I}",
			      "messageId", message_id, "dedupeKey",
			      dedupe_key, "attempt", attempt, "timeStarted",
			      jsonx_time(started), "timeFinished",
			      jsonx_time(finished), "outcome", outcome,
			      "status", status, "error",
			      error && error[0] ? json_string(error)
						: json_null(),
			      "durationMs", (json_int_t)duration_ms, "timeMs",
			      (json_int_t)finished);
	char *txt = json_dumps(o, JSON_COMPACT);
	int rc = store_event_add(n->env.store, STREAM, s->id, finished, txt);

	free(txt);
	json_decref(o);
	s->since_trim++;
	return rc;
}

static int first_time(void *arg, const char *ref, const char *json)
{
	json_t *o = json_loads(json, 0, NULL);

	(void)ref;
	*(int64_t *)arg = json_integer_value(json_object_get(o, "timeMs"));
	json_decref(o);
	return 1; /* only the oldest of the newest DELIVERIES_KEPT */
}

/* Keeps about the last DELIVERIES_KEPT attempts of a subscription. */
static void trim(struct notifications *n, struct sub *s)
{
	int64_t cut = 0;

	if (s->since_trim < TRIM_EVERY)
		return;
	s->since_trim = 0;
	if (store_event_each(n->env.store, STREAM, s->id, 0, DELIVERIES_KEPT,
			     first_time, &cut) == 1 && cut > 0 &&
	    store_event_trim(n->env.store, STREAM, s->id, cut) != 0)
		s->since_trim = TRIM_EVERY; /* try again at the next one */
}

/* How an attempt ended (core/delivery.h). */
enum verdict {
	V_OK = DELIVERY_OK,
	V_TRANSIENT = DELIVERY_TRANSIENT,
	V_PERMANENT = DELIVERY_PERMANENT,
};

static bool retrying(const char *outcome)
{
	return strcmp(outcome, "RETRYING") == 0;
}

/* The outcome an attempt's verdict gives, with the attempts made. */
static const char *outcome_of(enum verdict v, int attempts, uint32_t max)
{
	if (v == V_OK)
		return "SUCCEEDED";
	if (v == V_PERMANENT)
		return "REFUSED";
	return (uint32_t)attempts >= max ? "FAILED" : "RETRYING";
}

/* Commits one attempt's outcome: its event, and the delivery's next
 * attempt, its end, or its move to the dead letters. */
static int record_outcome(struct notifications *n, struct sub *s,
			  struct attempt *a, struct pending *p,
			  const char *outcome, long status, const char *error,
			  uint64_t took, int64_t now, bool *dead_added)
{
	bool dropped = false;
	int rc;

	*dead_added = false;
	rc = store_begin(n->env.store);
	if (rc == 0)
		rc = add_event(n, s, jstr(a->doc, "messageId"),
			       jstr(a->doc, "dedupeKey"), a->number,
			       a->started_ms, now, outcome,
			       status >= 0 ? json_integer(status)
					   : json_null(),
			       error, took);
	if (retrying(outcome)) {
		json_object_set_new(a->doc, "attempts",
				    json_integer(p->attempts));
		json_object_set_new(a->doc, "nextAttemptMs",
				    json_integer(p->next_ms));
		save(n, K_DELIVERY, p->id, a->doc, &rc);
	} else {
		if (rc == 0 && outcome[0] != 'S') {
			struct deadletter_new d = {
				.sub_id = s->id,
				.topic_id = jstr(a->doc, "topicId"),
				.message_id = jstr(a->doc, "messageId"),
				.dedupe_key = jstr(a->doc, "dedupeKey"),
				.ordering_key = jstr(a->doc, "orderingKey"),
				.message = jstr(a->doc, "message"),
				.outcome = outcome, .reason = error,
				.attempts = p->attempts, .now_ms = now,
			};

			rc = deadletters_add(n->env.store, &d, s->ndead,
					     &dropped);
			*dead_added = rc == 0;
		}
		if (rc == 0)
			rc = store_delete(n->env.store, K_DELIVERY, p->id);
	}
	if (rc == 0)
		rc = store_commit(n->env.store);
	if (rc != 0) {
		store_rollback(n->env.store);
		*dead_added = false;
		return rc;
	}
	if (dropped)
		s->ndead--;
	return 0;
}

/*
 * Ends an attempt: records it, and drops its delivery when it succeeded,
 * failed permanently or used its last attempt (the last two become dead
 * letters), or schedules the next one.
 */
static void attempt_end(struct attempt *a, enum verdict v, long status,
			const char *error)
{
	struct notifications *n = a->n;
	struct sub *s = a->sub;
	struct pending *p;
	const char *outcome;
	int64_t now = ids_now_ms();
	uint64_t took = (uv_hrtime() - a->start_ns) / 1000000;
	bool dead = false;
	int rc;

	if (s == NULL) { /* orphaned */
		attempt_free(a);
		return;
	}
	p = sub_find_pending(s, a->delivery_id);
	if (p == NULL || p->inflight != a) {
		log_error("notify", "%s: attempt for %s, not in its queue",
			  s->id, a->delivery_id);
		attempt_free(a);
		arm(n);
		return;
	}
	p->inflight = NULL;
	s->ninflight--;
	p->attempts = a->number;
	outcome = outcome_of(v, p->attempts, s->max_attempts);
	s->outcomes[v == V_OK ? 0 : retrying(outcome)
				    ? 2 : 1]++;
	if (retrying(outcome))
		p->next_ms = now + (int64_t)backoff_ms(p->attempts);
	rc = record_outcome(n, s, a, p, outcome, status, error, took, now,
			    &dead);
	if (rc != 0)
		log_error("notify", "%s: cannot record the attempt on %s: %s",
			  s->id, p->id, mds_strerror(rc));
	if (dead)
		s->ndead++;
	if (v == V_OK)
		log_info("notify", "%s: message %s delivered (attempt %d, "
			 "%llu ms)", s->id, jstr(a->doc, "messageId"),
			 a->number, (unsigned long long)took);
	else
		log_warn("notify", "%s: message %s attempt %d/%u failed: %s%s",
			 s->id, jstr(a->doc, "messageId"), a->number,
			 s->max_attempts, error ? error : "",
			 v == V_PERMANENT ? " (refused: a dead letter, not "
					    "retried)"
			 : outcome[0] == 'F' ? " (giving up: a dead letter)"
					     : "");
	if (!(retrying(outcome)))
		sub_drop(s, p);
	trim(n, s);
	attempt_free(a);
	arm(n);
}

static void on_http_done(void *arg, const struct httpc_result *res)
{
	struct attempt *a = arg;
	char err[300];
	enum verdict v;
	bool ok;

	a->hreq = NULL;
	/* MDS_E_LIMIT: an answer whose body passed RESPONSE_MAX. */
	v = (enum verdict)delivery_http_verdict(
		res->error == 0 || res->error == MDS_E_LIMIT, res->status);
	ok = v == V_OK;
	err[0] = '\0';
	if (!ok && res->error != 0 && res->error != MDS_E_LIMIT) {
		snprintf(err, sizeof(err), "%s: %s", mds_strerror(res->error),
			 res->detail ? res->detail : "");
	} else if (!ok) {
		size_t i, n = 0;
		char body[120];

		for (i = 0; i < res->body_len && n + 1 < sizeof(body); i++)
			body[n++] = (res->body[i] >= 0x20 &&
				     res->body[i] < 0x7f) ? res->body[i] : ' ';
		body[n] = '\0';
		snprintf(err, sizeof(err), "HTTP %ld%s%s", res->status,
			 n ? ": " : "", body);
	}
	attempt_end(a, v, res->status > 0 ? res->status : -1, err);
}

static void on_fn_done(void *arg, int error, const char *result,
		       const char *message)
{
	struct attempt *a = arg;
	char err[300];

	(void)result;
	snprintf(err, sizeof(err), "%s", error == 0 ? ""
					  : message && message[0]
						  ? message
						  : mds_strerror(error));
	attempt_end(a, (enum verdict)delivery_function_verdict(error), -1,
		    err);
}

static void on_run_done(void *arg, const struct functions_run_result *res)
{
	struct attempt *a = arg;

	a->run = NULL;
	attempt_end(a, res->error == 0 ? V_OK : V_TRANSIENT, res->exit_status,
		    res->message);
}

static void start_http(struct notifications *n, struct attempt *a,
		       const char *msg, size_t len)
{
	struct sub *s = a->sub;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	char sig[WHSIG_SIG_MAX];
	char *h[12];
	struct httpc_opts o;
	int64_t now_s = (int64_t)time(NULL);
	int rc;

	HMAC(EVP_sha256(), s->secret, (int)strlen(s->secret),
	     (const unsigned char *)msg, len, mac, &maclen);
	for (unsigned int i = 0; i < maclen; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	hex[2 * maclen] = '\0';
	h[0] = xstrdup("Content-Type: application/json");
	h[1] = xasprintf("X-Mdscale-Dedupe-Key: %s",
			 jstr(a->doc, "dedupeKey"));
	h[2] = xasprintf("X-Mdscale-Message-Id: %s",
			 jstr(a->doc, "messageId"));
	h[3] = xasprintf("X-Mdscale-Subscription-Id: %s", s->id);
	h[4] = xasprintf("X-Mdscale-Attempt: %d", a->number);
	h[5] = xasprintf("X-Mdscale-Signature: sha256=%s", hex);
	h[6] = xstrdup("User-Agent: mdscale-notifications/" MDS_VERSION);
	h[7] = xstrdup("Expect:");
	/* Standard Webhooks: the message id (the same on every attempt, for
	 * the receiver's deduplication), this attempt's time, and the
	 * signature of both with the body. */
	if (whsig_sign(s->secret, jstr(a->doc, "messageId"), now_s, msg, len,
		       sig) != 0)
		sig[0] = '\0';
	h[8] = xasprintf("webhook-id: %s", jstr(a->doc, "messageId"));
	h[9] = xasprintf("webhook-timestamp: %lld", (long long)now_s);
	h[10] = xasprintf("webhook-signature: %s", sig);
	h[11] = NULL;
	o = (struct httpc_opts){
		.method = "POST", .headers = (const char *const *)h,
		.body = msg, .body_len = len,
		.timeout_ms = s->timeout_s * 1000, .max_body = RESPONSE_MAX,
	};
	rc = httpc_request(n->env.httpc, s->endpoint, &o, on_http_done, a,
			   &a->hreq);
	for (int i = 0; h[i] != NULL; i++)
		free(h[i]);
	if (rc != 0) {
		char err[160];

		snprintf(err, sizeof(err), "cannot send: %s",
			 mds_strerror(rc));
		attempt_end(a, V_TRANSIENT, -1, err);
	}
}

static void start_command(struct notifications *n, struct attempt *a,
			  const char *msg, size_t len)
{
	struct sub *s = a->sub;
	struct functions_run_opts o;
	char tag[64];
	int rc;

	snprintf(tag, sizeof(tag), "subscription %s", s->id);
	o = (struct functions_run_opts){
		.argv = (const char *const *)s->command, .input = msg,
		.input_len = len, .timeout_ms = s->timeout_s * 1000,
		.capture_max = 0,
		.log_tag = tag, .subscription_id = s->id,
	};
	rc = functions_run(n->env.functions, &o, on_run_done, a, &a->run);
	if (rc != 0) {
		char err[160];

		snprintf(err, sizeof(err), "cannot run the command: %s",
			 mds_strerror(rc));
		attempt_end(a, V_TRANSIENT, -1, err);
	}
}

static void start_function(struct notifications *n, struct attempt *a,
			   const char *msg, size_t len)
{
	int rc = functions_invoke(n->env.functions, a->sub->endpoint, msg,
				  len, on_fn_done, a);

	if (rc != 0) {
		char err[160];

		if (rc == MDS_E_NOTFOUND)
			snprintf(err, sizeof(err), "no function named '%.80s'",
				 a->sub->endpoint);
		else
			snprintf(err, sizeof(err), "cannot invoke: %s",
				 mds_strerror(rc));
		attempt_end(a, V_TRANSIENT, -1, err);
	}
}

/* Starts an attempt at the queued delivery p of s. */
static void start_attempt(struct notifications *n, struct sub *s,
			  struct pending *p)
{
	struct attempt *a;
	const char *msg;
	char *txt = NULL;
	json_t *doc;
	int rc;

	rc = store_get(n->env.store, K_DELIVERY, p->id, &txt);
	doc = rc == 0 ? json_loads(txt, 0, NULL) : NULL;
	free(txt);
	msg = json_string_value(json_object_get(doc, "message"));
	if (msg == NULL) {
		if (rc == MDS_E_DB) {
			/* Try again later rather than lose it. */
			p->next_ms = ids_now_ms() + (int64_t)backoff_ms(1);
			json_decref(doc);
			return;
		}
		log_error("notify", "%s: delivery %s is gone or unreadable; "
			  "skipped", s->id, p->id);
		if (store_delete(n->env.store, K_DELIVERY, p->id) != 0)
			log_error("notify", "%s: cannot forget delivery %s",
				  s->id, p->id);
		sub_drop(s, p);
		json_decref(doc);
		return;
	}
	a = xcalloc(1, sizeof(*a));
	a->n = n;
	a->sub = s;
	a->doc = doc;
	snprintf(a->delivery_id, sizeof(a->delivery_id), "%s", p->id);
	a->number = p->attempts + 1;
	a->started_ms = ids_now_ms();
	a->start_ns = uv_hrtime();
	p->inflight = a;
	s->ninflight++;
	log_debug("notify", "%s: attempt %d of delivery %s (message %s)",
		  s->id, a->number, p->id, jstr(doc, "messageId"));
	switch (s->proto) {
	case P_HTTP:
	case P_HTTPS:
		start_http(n, a, msg, strlen(msg));
		break;
	case P_COMMAND:
		start_command(n, a, msg, strlen(msg));
		break;
	default:
		start_function(n, a, msg, strlen(msg));
		break;
	}
}

/*
 * Looks down the queue of s (its first SCAN_MAX deliveries) for those that
 * may start now (core/delivery.h) while fewer than MAX_INFLIGHT run. Puts
 * them into ready and returns how many; *next gets the earliest time a
 * waiting one falls due (INT64_MAX if none).
 */
static size_t scan(struct sub *s, int64_t now, struct pending **ready,
		   int64_t *next)
{
	struct delivery_slot q[SCAN_MAX];
	struct pending *at[SCAN_MAX];
	size_t idx[MAX_INFLIGHT], n = 0, k, room;

	for (struct pending *p = s->head; p != NULL && n < SCAN_MAX;
	     p = p->next, n++) {
		q[n] = (struct delivery_slot){ .key = p->key,
					       .inflight = p->inflight != NULL,
					       .next_ms = p->next_ms };
		at[n] = p;
	}
	room = s->ninflight < MAX_INFLIGHT ? MAX_INFLIGHT - s->ninflight : 0;
	k = delivery_pick(q, n, now, room, idx, next);
	for (size_t i = 0; i < k; i++)
		ready[i] = at[idx[i]];
	return k;
}

static void on_tick(uv_timer_t *t)
{
	struct notifications *n = t->data;
	struct pending *ready[MAX_INFLIGHT];
	int64_t now = ids_now_ms(), next;

	for (struct sub *s = n->subs; s && !n->closing; s = s->next) {
		size_t k = scan(s, now, ready, &next);

		/* Starting one may end it at once and drop it, but never
		 * another of ready. */
		for (size_t i = 0; i < k && !n->closing; i++)
			start_attempt(n, s, ready[i]);
	}
	arm(n);
}

/* Sleeps until the earliest delivery that can start. */
static void arm(struct notifications *n)
{
	struct pending *ready[MAX_INFLIGHT];
	int64_t next = INT64_MAX, now = ids_now_ms(), at;

	if (n->closing)
		return;
	for (struct sub *s = n->subs; s; s = s->next) {
		if (scan(s, now, ready, &at) > 0)
			at = now;
		if (at < next)
			next = at;
	}
	if (next == INT64_MAX) {
		uv_timer_stop(&n->timer);
		return;
	}
	uv_timer_start(&n->timer, on_tick,
		       next <= now ? 0 : (uint64_t)(next - now), 0);
}

/* ---- publishing ---- */

int notifications_publish_id(struct notifications *n, const char *topic_id,
			     const char *dedupe_key, const char *message,
			     char *message_id, size_t idsz)
{
	struct topic *t;
	struct pending **added;
	struct sub **owners;
	size_t nadded = 0, nsubs = 0, refused = 0;
	char mid[ID_LEN], key[DEDUPE_MAX + 1], err[160];
	const char *okey;
	int64_t now = ids_now_ms();
	json_t *doc;
	int rc = 0;

	if (n->closing)
		return MDS_E_UNAVAIL;
	t = find_topic(n, topic_id);
	if (t == NULL)
		return MDS_E_NOTFOUND;
	if (strlen(message) > MESSAGE_MAX)
		return MDS_E_LIMIT;
	ids_new(mid, ID_LEN, "msg-");
	clean_key(key, sizeof(key), dedupe_key, mid);
	/* Messages of one dedupe key are delivered in order; those without
	 * one keep their order among themselves. */
	okey = dedupe_key != NULL && dedupe_key[0] != '\0' ? key : "";
	if (message_id != NULL && idsz > 0)
		snprintf(message_id, idsz, "%s", mid);

	added = xcalloc(n->nsubs + 1, sizeof(*added));
	owners = xcalloc(n->nsubs + 1, sizeof(*owners));
	rc = store_begin(n->env.store);
	for (struct sub *s = n->subs; s && rc == 0; s = s->next) {
		struct pending *p;

		if (strcmp(s->topic_id, t->id) != 0)
			continue;
		nsubs++;
		if (s->npending >= MAX_PENDING) {
			snprintf(err, sizeof(err), "refused: %d deliveries "
				 "are pending already (LimitExceeded)",
				 MAX_PENDING);
			rc = add_event(n, s, mid, key, 0, now, now, "FAILED",
				       json_null(), err, 0);
			refused++;
			continue;
		}
		p = xcalloc(1, sizeof(*p));
		ids_new(p->id, ID_LEN, "dl-");
		p->key = xstrdup(okey);
		p->next_ms = now;
		doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, "
				"s:I, s:I}",
				"id", p->id, "subscriptionId", s->id,
				"topicId", t->id, "messageId", mid,
				"dedupeKey", key, "orderingKey", okey,
				"message", message,
				"attempts", 0, "nextAttemptMs",
				(json_int_t)now, "createdMs", (json_int_t)now);
		if (doc == NULL) /* the message is not UTF-8 text */
			rc = MDS_E_INVAL;
		else
			save(n, K_DELIVERY, p->id, doc, &rc);
		json_decref(doc);
		added[nadded] = p;
		owners[nadded++] = s;
	}
	if (rc == 0)
		rc = store_commit(n->env.store);
	if (rc != 0) {
		store_rollback(n->env.store);
		for (size_t i = 0; i < nadded; i++) {
			free(added[i]->key);
			free(added[i]);
		}
		free(added);
		free(owners);
		log_error("notify", "topic %s: cannot queue message %s: %s",
			  t->id, mid, mds_strerror(rc));
		return rc;
	}
	for (size_t i = 0; i < nadded; i++)
		sub_push(owners[i], added[i]);
	free(added);
	free(owners);
	if (refused > 0)
		log_error("notify", "topic %s: message %s refused by %zu "
			  "subscriptions with %d pending deliveries", t->id,
			  mid, refused, MAX_PENDING);
	log_info("notify", "topic %s: message %s (dedupe key %s) queued for "
		 "%zu of %zu subscriptions", t->id, mid, key, nadded, nsubs);
	arm(n);
	return 0;
}

int notifications_publish(struct notifications *n, const char *topic_id,
			  const char *dedupe_key, const char *message)
{
	return notifications_publish_id(n, topic_id, dedupe_key, message,
					NULL, 0);
}

bool notifications_topic_reaches(struct notifications *n,
				 const char *topic_id, const char *function)
{
	struct topic *t = find_topic(n, topic_id);

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
	struct topic *t = find_topic(n, topic_id);

	return t != NULL && strcmp(t->id, topic_id) == 0;
}

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
	save(n, K_TOPIC, t->id, doc, &rc);
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
	if (out != NULL)
		topic_view(t, out);
	return 0;
}

int notifications_topic_update(struct notifications *n, const char *id,
			       const char *description, bool check_only,
			       struct notifications_topic *out,
			       struct fault *f)
{
	struct topic *t = find_topic(n, id);
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
	save(n, K_TOPIC, t->id, doc, &rc);
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

/* Takes s out of the list and frees it (its documents are gone). */
static void sub_remove(struct notifications *n, struct sub *s)
{
	for (struct sub **pp = &n->subs; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	n->nsubs--;
	orphan(n, s);
	sub_free(s);
}

int notifications_topic_delete(struct notifications *n, const char *id,
			       struct fault *f)
{
	struct topic *t = find_topic(n, id);
	struct sub *s, *next;
	int rc;

	if (t == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "",
				 "no topic '%.80s'", id);
	rc = store_begin(n->env.store);
	for (s = n->subs; s && rc == 0; s = s->next)
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
	for (s = n->subs; s; s = next) {
		next = s->next;
		if (strcmp(s->topic_id, t->id) == 0) {
			log_info("notify", "subscription %s deleted with its "
				 "topic", s->id);
			sub_remove(n, s);
		}
	}
	for (struct topic **pp = &n->topics; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	n->ntopics--;
	log_info("notify", "topic %s (%s) deleted", t->id, t->name);
	topic_free(t);
	arm(n);
	return 0;
}

int notifications_topic_get(struct notifications *n, const char *id,
			    struct notifications_topic *out, struct fault *f)
{
	struct topic *t = find_topic(n, id);

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
	json_t *doc;
	int rc;

	if (spec->protocol < 0 || spec->protocol >= P__COUNT)
		return fault_set(f, MDS_E_INVAL, "protocol",
				 "protocol: not a protocol");
	t = find_topic(n, spec->topic_id); /* its id or its name */
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
	if (spec->check_only)
		return 0;

	s = xcalloc(1, sizeof(*s));
	ids_new(s->id, ID_LEN, "sub-");
	snprintf(s->topic_id, sizeof(s->topic_id), "%s", t->id);
	s->proto = (enum proto)spec->protocol;
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
	save(n, K_SUB, s->id, doc, &rc);
	json_decref(doc);
	if (rc != 0) {
		sub_free(s);
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
	if (out != NULL) {
		sub_view(s, out);
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
	log_info("notify", "subscription %s deleted (%zu pending deliveries "
		 "dropped)", s->id, s->npending);
	sub_remove(n, s);
	arm(n);
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
	save(n, K_SUB, s->id, doc, &rc);
	json_decref(doc);
	if (rc != 0) {
		s->max_attempts = old_attempts;
		s->timeout_s = old_timeout;
		return fault_set(f, rc, "", "cannot store the subscription: "
				 "%s", mds_strerror(rc));
	}
	log_info("notify", "subscription %s updated", s->id);
	if (out != NULL)
		sub_view(s, out);
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
	sub_view(s, out);
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
	struct topic *t = topic_id != NULL ? find_topic(n, topic_id) : NULL;

	if (topic_id != NULL && t == NULL)
		return;
	for (struct sub *s = n->subs; s; s = s->next)
		if (t == NULL || strcmp(s->topic_id, t->id) == 0) {
			sub_view(s, &v);
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
		.message_id = jstr(o, "messageId"),
		.dedupe_key = jstr(o, "dedupeKey"),
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
	save(n, K_DELIVERY, p->id, doc, &rc);
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
	sub_push(s, p);
	if (delivery_id != NULL && idsz > 0)
		snprintf(delivery_id, idsz, "%s", p->id);
	log_info("notify", "%s: dead letter %s replayed as delivery %s",
		 s->id, dead_id, p->id);
	arm(n);
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
	t->description = xstrdup(jstr(o, "description"));
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
	int proto = parse_proto(jstr(o, "protocol"));
	struct topic *t = find_topic(n, jstr(o, "topicId"));
	char **cmd = jsonx_strv(json_object_get(o, "command"), ARGV_MAX);
	const char *ep = json_string_value(json_object_get(o, "endpoint"));

	if (t == NULL || strcmp(t->id, jstr(o, "topicId")) != 0) {
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
	s->secret = xstrdup(jstr(o, "secret"));
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
	struct sub *s = find_sub(l->n, jstr(o, "subscriptionId"));
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
	p->key = xstrdup(jstr(o, "orderingKey"));
	json_decref(o);
	/* A queue full before a restart stays full: MAX_PENDING still
	 * bounds what new publishes add. */
	sub_push(s, p);
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
		orphan(n, s);
		sub_free(s);
	}
	while (n->topics != NULL) {
		struct topic *t = n->topics;

		n->topics = t->next;
		topic_free(t);
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
	log_info("notify", "%zu topics, %zu subscriptions, %zu pending "
		 "deliveries loaded", n->ntopics, n->nsubs, pending);
	*out = n;
	arm(n);
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
	n->done = done;
	n->done_arg = arg;
	for (struct sub *s = n->subs; s; s = s->next)
		orphan(n, s);
	uv_timer_stop(&n->timer);
	uv_close((uv_handle_t *)&n->timer, on_timer_closed);
}
