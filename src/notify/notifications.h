/*
 * notifications.h - topics, subscriptions and at-least-once delivery.
 *
 * A message published on a topic is queued durably (in the store) for every
 * subscription of the topic before publish returns, and delivered in order
 * per subscription and dedupe key (messages of different keys do not wait
 * for each other). A transient failure (timeout, crash, HTTP 408, 429,
 * 5xx) is retried with exponential backoff up to a bounded number of
 * attempts; a permanent one (the function refuses the message, another
 * HTTP 4xx) is not. Either way a delivery that ends failed is kept as a
 * dead letter, with its reason, to read and replay. Protocols: FUNCTION (an mdscale function by name),
 * HTTP and HTTPS (POST with an HMAC-SHA256 signature header over the body),
 * COMMAND (a program run without a shell, the message on stdin). Every
 * attempt is recorded. Pending deliveries survive a restart.
 */
#ifndef MDS_NOTIFICATIONS_H
#define MDS_NOTIFICATIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/fault.h"

struct notifications;
struct store;
struct httpc;
struct functions;

struct notifications_env {
	uv_loop_t *loop;
	struct store *store;
	struct httpc *httpc;
	struct functions *functions;
	const char *data_dir;
};

int notifications_open(const struct notifications_env *env,
		       struct notifications **out, char *diag, size_t diagsz);
/* Stops delivering (pending ones stay queued) and frees the module once
 * running attempts are cancelled; then calls done(arg). */
void notifications_close(struct notifications *n, void (*done)(void *arg),
			 void *arg);

/*
 * Queues message (JSON text, copied) for every subscription of topic_id.
 * Returns 0 once it is stored, MDS_E_NOTFOUND for an unknown topic.
 */
int notifications_publish(struct notifications *n, const char *topic_id,
			  const char *dedupe_key, const char *message);

/*
 * notifications_publish() that also copies the new message's id
 * ("msg-<16hex>") into message_id (idsz bytes; may be NULL). A NULL or
 * empty dedupe_key means the message id. Also returns MDS_E_LIMIT for a
 * message over 1 MiB, MDS_E_DB when it could not be stored (nothing is
 * queued then) and MDS_E_UNAVAIL while closing.
 */
int notifications_publish_id(struct notifications *n, const char *topic_id,
			     const char *dedupe_key, const char *message,
			     char *message_id, size_t idsz);

/* Whether topic_id (an id) exists and has a FUNCTION subscription to the
 * function named function. */
bool notifications_topic_reaches(struct notifications *n,
				 const char *topic_id, const char *function);

/* The id of the topic with that id or name, or NULL; borrowed until the
 * topic is deleted. */
const char *notifications_topic_id(struct notifications *n, const char *key);

/* Returns 1 if the topic exists; for monitoring_topic_exists_fn. */
int notifications_topic_exists(void *n, const char *topic_id);

/* Topics: {"name", "description"?} → {"topicId", "name", ...}. */
int notifications_topic_create(struct notifications *n, json_t *spec,
			       json_t **out, struct fault *f);
int notifications_topic_delete(struct notifications *n, const char *id,
			       struct fault *f);
json_t *notifications_topic_get(struct notifications *n, const char *id,
				struct fault *f);
json_t *notifications_topic_list(struct notifications *n, const char *name);

/* Subscriptions: {"topicId", "protocol", "endpoint", ...}; topicId and
 * the list's filter take a topic's id or its name. The create's answer
 * shows the secret (once) only for HTTP and HTTPS, which sign with it. */
int notifications_subscription_create(struct notifications *n, json_t *spec,
				      json_t **out, struct fault *f);
int notifications_subscription_delete(struct notifications *n,
				      const char *id, struct fault *f);
json_t *notifications_subscription_get(struct notifications *n,
				       const char *id, struct fault *f);
json_t *notifications_subscription_list(struct notifications *n,
					const char *topic_id);
json_t *notifications_deliveries(struct notifications *n, const char *id,
				 struct fault *f);

/* One dead letter; every string is borrowed for the call. */
struct notifications_dead_letter {
	const char *id, *subscription_id, *topic_id, *message_id;
	const char *dedupe_key;
	const char *message;  /* the message as published */
	const char *outcome;  /* REFUSED (permanent) or FAILED (attempts
			       * used up) */
	const char *reason;   /* the last attempt's error */
	int attempts;
	int64_t created_ms;
};

/*
 * Calls fn for each dead letter of a subscription, oldest first. Returns
 * 0, or MDS_E_NOTFOUND / MDS_E_DB with f filled.
 */
int notifications_dead_letters_each(
	struct notifications *n, const char *sub_id,
	void (*fn)(void *arg, const struct notifications_dead_letter *dl),
	void *arg, struct fault *f);

/*
 * Queues a dead letter again as a new delivery of its subscription (its
 * attempts start over) and removes it from the dead letters, in one
 * commit. Copies the new delivery's id into delivery_id (idsz bytes; may
 * be NULL). Returns 0, or MDS_E_NOTFOUND (no such subscription or dead
 * letter), MDS_E_LIMIT (the queue is full), MDS_E_DB, MDS_E_UNAVAIL, with
 * f filled.
 */
int notifications_dead_letter_replay(struct notifications *n,
				     const char *sub_id, const char *dead_id,
				     char *delivery_id, size_t idsz,
				     struct fault *f);

/* The delivery counts of one subscription since the daemon started. */
struct notifications_stats {
	const char *subscription_id; /* borrowed for the call */
	const char *topic_id;
	size_t pending;              /* queued, including one in flight */
	uint64_t succeeded, failed, retrying; /* attempts by outcome */
};

/* Calls fn for every subscription, on the loop thread. */
void notifications_each_stats(
	struct notifications *n,
	void (*fn)(void *arg, const struct notifications_stats *st),
	void *arg);

#endif
