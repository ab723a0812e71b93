/*
 * notifications_delivery.c - publishing to a topic and delivering: the
 * queue of each subscription, its attempts over HTTP(S), a command or a
 * function, and their outcomes; see notifications.h and
 * docs/notifications.md. Topics and subscriptions themselves are
 * notifications.c's.
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
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/jsonx.h"
#include "core/delivery.h"
#include "http/httpc.h"
#include "notify/deadletters.h"
#include "notify/functions.h"
#include "notify/notifications_int.h"
#include "notify/whsig.h"
#include "store/store.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/version.h"
#include "util/xalloc.h"

#define MESSAGE_MAX (1024 * 1024)
#define BACKOFF_BASE_MS 1000
#define BACKOFF_MAX_MS (5 * 60 * 1000)
#define TRIM_EVERY 50
#define RESPONSE_MAX (64 * 1024)
/* Deliveries of one subscription in flight at once, and how far down its
 * queue a tick looks for one that may start. */
#define MAX_INFLIGHT 8
#define SCAN_MAX 256

/* ---- small helpers ---- */

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

/* ---- the queues ---- */

void notifications_sub_push(struct sub *s, struct pending *p)
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
void notifications_orphan(struct notifications *n, struct sub *s)
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

void notifications_sub_free(struct sub *s)
{
	while (s->head != NULL)
		sub_drop(s, s->head);
	free(s->endpoint);
	free(s->secret);
	xstrvfree(s->command);
	free(s);
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
		rc = add_event(n, s, jsonx_str(a->doc, "messageId", ""),
			       jsonx_str(a->doc, "dedupeKey", ""), a->number,
			       a->started_ms, now, outcome,
			       status >= 0 ? json_integer(status)
					   : json_null(),
			       error, took);
	if (retrying(outcome)) {
		json_object_set_new(a->doc, "attempts",
				    json_integer(p->attempts));
		json_object_set_new(a->doc, "nextAttemptMs",
				    json_integer(p->next_ms));
		notifications_save(n, K_DELIVERY, p->id, a->doc, &rc);
	} else {
		if (rc == 0 && outcome[0] != 'S') {
			struct deadletter_new d = {
				.sub_id = s->id,
				.topic_id = jsonx_str(a->doc, "topicId", ""),
				.message_id =
					jsonx_str(a->doc, "messageId", ""),
				.dedupe_key =
					jsonx_str(a->doc, "dedupeKey", ""),
				.ordering_key =
					jsonx_str(a->doc, "orderingKey", ""),
				.message = jsonx_str(a->doc, "message", ""),
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
		notifications_arm(n);
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
			 "%llu ms)", s->id, jsonx_str(a->doc, "messageId", ""),
			 a->number, (unsigned long long)took);
	else
		log_warn("notify", "%s: message %s attempt %d/%u failed: %s%s",
			 s->id, jsonx_str(a->doc, "messageId", ""), a->number,
			 s->max_attempts, error ? error : "",
			 v == V_PERMANENT ? " (refused: a dead letter, not "
					    "retried)"
			 : outcome[0] == 'F' ? " (giving up: a dead letter)"
					     : "");
	if (!(retrying(outcome)))
		sub_drop(s, p);
	trim(n, s);
	attempt_free(a);
	notifications_arm(n);
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
			 jsonx_str(a->doc, "dedupeKey", ""));
	h[2] = xasprintf("X-Mdscale-Message-Id: %s",
			 jsonx_str(a->doc, "messageId", ""));
	h[3] = xasprintf("X-Mdscale-Subscription-Id: %s", s->id);
	h[4] = xasprintf("X-Mdscale-Attempt: %d", a->number);
	h[5] = xasprintf("X-Mdscale-Signature: sha256=%s", hex);
	h[6] = xstrdup("User-Agent: mdscale-notifications/" MDS_VERSION);
	h[7] = xstrdup("Expect:");
	/* Standard Webhooks: the message id (the same on every attempt, for
	 * the receiver's deduplication), this attempt's time, and the
	 * signature of both with the body. */
	if (whsig_sign(s->secret, jsonx_str(a->doc, "messageId", ""), now_s,
		       msg, len, sig) != 0)
		sig[0] = '\0';
	h[8] = xasprintf("webhook-id: %s", jsonx_str(a->doc, "messageId", ""));
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
		.log_tag = tag, .subscription_id = s->id, .uid = s->uid,
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
		  s->id, a->number, p->id, jsonx_str(doc, "messageId", ""));
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
	/* delivery_pick() returns indexes below n: at[] is set there. */
	for (size_t i = 0; i < k; i++)
		ready[i] = at[idx[i]]; // cppcheck-suppress uninitvar
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
	notifications_arm(n);
}

/* Sleeps until the earliest delivery that can start. */
void notifications_arm(struct notifications *n)
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

/* The deliveries of one message, stored in a transaction that may be the
 * caller's: they join the subscriptions' queues once it is committed. */
struct staged {
	struct notifications *n;
	struct pending **added;
	struct sub **owners;
	size_t nadded;
};

static void staged_free(struct staged *st, bool with_pending)
{
	for (size_t i = 0; with_pending && i < st->nadded; i++) {
		free(st->added[i]->key);
		free(st->added[i]);
	}
	free(st->added);
	free(st->owners);
	free(st);
}

static void staged_push(void *arg)
{
	struct staged *st = arg;

	for (size_t i = 0; i < st->nadded; i++)
		notifications_sub_push(st->owners[i], st->added[i]);
	notifications_arm(st->n);
	staged_free(st, false);
}

static void staged_drop(void *arg)
{
	staged_free(arg, true);
}

int notifications_publish_id(struct notifications *n, const char *topic_id,
			     const char *dedupe_key, const char *message,
			     char *message_id, size_t idsz)
{
	struct topic *t;
	struct staged *st;
	size_t nsubs = 0, refused = 0, nadded = 0;
	char mid[ID_LEN], key[DEDUPE_MAX + 1], err[160];
	const char *okey;
	int64_t now = ids_now_ms();
	json_t *doc;
	int rc = 0;

	if (n->closing)
		return MDS_E_UNAVAIL;
	t = notifications_find_topic(n, topic_id);
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

	st = xcalloc(1, sizeof(*st));
	st->n = n;
	st->added = xcalloc(n->nsubs + 1, sizeof(*st->added));
	st->owners = xcalloc(n->nsubs + 1, sizeof(*st->owners));
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
			notifications_save(n, K_DELIVERY, p->id, doc, &rc);
		json_decref(doc);
		st->added[st->nadded] = p;
		st->owners[st->nadded++] = s;
	}
	if (rc == 0) {
		/* Queued once written: at this commit, or at the caller's
		 * when this is part of a larger transaction. */
		nadded = st->nadded;
		store_on_commit(n->env.store, staged_push, staged_drop, st);
		rc = store_commit(n->env.store);
	} else {
		store_rollback(n->env.store);
		staged_drop(st);
	}
	if (rc != 0) {
		log_error("notify", "topic %s: cannot queue message %s: %s",
			  t->id, mid, mds_strerror(rc));
		return rc;
	}
	if (refused > 0)
		log_error("notify", "topic %s: message %s refused by %zu "
			  "subscriptions with %d pending deliveries", t->id,
			  mid, refused, MAX_PENDING);
	log_info("notify", "topic %s: message %s (dedupe key %s) stored for "
		 "%zu of %zu subscriptions", t->id, mid, key, nadded, nsubs);
	return 0;
}

int notifications_publish(struct notifications *n, const char *topic_id,
			  const char *dedupe_key, const char *message)
{
	return notifications_publish_id(n, topic_id, dedupe_key, message,
					NULL, 0);
}
