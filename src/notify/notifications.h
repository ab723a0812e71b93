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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/fault.h"

struct notifications;
struct store;
struct httpc;
struct functions;
struct uidpool;

struct notifications_env {
	uv_loop_t *loop;
	struct store *store;
	struct httpc *httpc;
	struct functions *functions;
	const char *data_dir;
	/* The uids of instanceUids, shared with deployments and functions
	 * (borrowed, must outlive the module; NULL: none). When on, each
	 * COMMAND subscription gets one of its own on create, kept with it,
	 * and its command runs as it rather than as runAsUser. */
	struct uidpool *uids;
};

int notifications_open(const struct notifications_env *env,
		       struct notifications **out, char *diag, size_t diagsz);
/* Stops delivering (pending ones stay queued) and frees the module once
 * running attempts are cancelled; then calls done(arg). */
void notifications_close(struct notifications *n, void (*done)(void *arg),
			 void *arg);

/*
 * Gives a uid to each COMMAND subscription stored without one (or sharing
 * one with another owner), and stores it; as functions_settle_uids(), once
 * every module holding uids has loaded.
 */
void notifications_settle_uids(struct notifications *n);

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
 * queued then) and MDS_E_UNAVAIL while closing. Called inside a
 * transaction of the caller's (store_begin() on the module's store), the
 * message is queued when that transaction commits, and dropped with it
 * when it is rolled back: it goes out only with the rest of the change.
 */
int notifications_publish_id(struct notifications *n, const char *topic_id,
			     const char *dedupe_key, const char *message,
			     char *message_id, size_t idsz);

/* Whether topic_id (an id) exists and has a FUNCTION subscription to the
 * function named function. */
bool notifications_topic_reaches(struct notifications *n,
				 const char *topic_id, const char *function);

/* Returns 1 if the topic exists; for monitoring_topic_exists_fn. */
int notifications_topic_exists(void *n, const char *topic_id);

/* The bounds of what a topic or a subscription holds. */
#define NOTIFICATIONS_ID_MAX 23          /* "topic-<16hex>", "sub-..." */
#define NOTIFICATIONS_NAME_MAX 256       /* a topic's name */
#define NOTIFICATIONS_DESC_MAX 1024      /* a topic's description */
#define NOTIFICATIONS_URL_MAX 2048       /* an HTTP(S) endpoint */
#define NOTIFICATIONS_SECRET_MIN 16
#define NOTIFICATIONS_SECRET_MAX 256
#define NOTIFICATIONS_ATTEMPTS_DEFAULT 8
#define NOTIFICATIONS_ATTEMPTS_MAX 100
#define NOTIFICATIONS_TIMEOUT_DEFAULT_S 10
#define NOTIFICATIONS_TIMEOUT_MAX_S 600

/* A new topic. name: 1 to NOTIFICATIONS_NAME_MAX of A-Z a-z 0-9 _ -. */
struct notifications_topic_spec {
	char name[NOTIFICATIONS_NAME_MAX + 1];
	char description[NOTIFICATIONS_DESC_MAX + 1];
	bool check_only; /* only check it: a dry run, nothing changes */
};

/* A topic as the module holds it. The strings are borrowed: valid until
 * the next call that changes the module. */
struct notifications_topic {
	const char *id;
	const char *name;
	const char *description;
	int64_t created_ms;
};

/*
 * Creates a topic (with spec->check_only: only checks it, and returns 0
 * without touching *out). Returns 0 and the topic in *out (may be NULL), or
 * MDS_E_INVAL (a bad name), MDS_E_EXISTS (the name is taken), MDS_E_LIMIT
 * (1000 topics) or MDS_E_DB, with f filled. Called inside a transaction
 * of the caller's, the topic is there at once (to subscribe to, to send
 * alarms to) and goes again if that transaction is rolled back.
 */
int notifications_topic_create(struct notifications *n,
			       const struct notifications_topic_spec *spec,
			       struct notifications_topic *out,
			       struct fault *f);
/*
 * Changes a topic's description (the topic by id or name; its name never
 * changes, as in OCI). With check_only, only checks (0, *out untouched).
 * Returns 0 and the topic in *out (may be NULL), or MDS_E_NOTFOUND /
 * MDS_E_DB with f filled and nothing changed.
 */
int notifications_topic_update(struct notifications *n, const char *id,
			       const char *description, bool check_only,
			       struct notifications_topic *out,
			       struct fault *f);

/* Deletes a topic (by id or name) with its subscriptions, their pending
 * deliveries and history. Returns 0, or MDS_E_NOTFOUND / MDS_E_DB /
 * MDS_E_NOSPACE (f filled). Called inside a transaction of the caller's,
 * the topic goes when that transaction commits, and stays (delivering) if
 * it is rolled back. */
int notifications_topic_delete(struct notifications *n, const char *id,
			       struct fault *f);
/* Finds a topic by id or name: 0 and *out, or MDS_E_NOTFOUND (f filled). */
int notifications_topic_get(struct notifications *n, const char *id,
			    struct notifications_topic *out, struct fault *f);
/* Calls fn for every topic (only those named name, if not NULL), oldest
 * first. */
void notifications_topic_each(struct notifications *n, const char *name,
			      void (*fn)(void *arg,
					 const struct notifications_topic *t),
			      void *arg);

/* How a subscription delivers; notifications_protocols[] names them. */
enum notifications_protocol {
	NOTIFICATIONS_FUNCTION,
	NOTIFICATIONS_HTTPS,
	NOTIFICATIONS_HTTP,
	NOTIFICATIONS_COMMAND,
};

/* "FUNCTION", "HTTPS", "HTTP", "COMMAND", NULL: in the enum's order. */
extern const char *const notifications_protocols[];

/* A new subscription; notifications_subscription_spec_init() fills the
 * defaults. The bounds in the comments are the caller's to keep (the API
 * checks them with its field table). */
struct notifications_subscription_spec {
	/* The topic's id or its name. */
	char topic_id[NOTIFICATIONS_NAME_MAX + 1];
	int protocol;         /* enum notifications_protocol */
	/* FUNCTION: a function's name; HTTP(S): the URL; COMMAND: "". */
	char endpoint[NOTIFICATIONS_URL_MAX + 1];
	/* COMMAND: the argument vector, NULL-terminated (borrowed); else
	 * NULL. */
	char **command;
	uint32_t max_attempts;  /* 1 to NOTIFICATIONS_ATTEMPTS_MAX */
	uint32_t timeout_s;     /* 1 to NOTIFICATIONS_TIMEOUT_MAX_S */
	char secret[NOTIFICATIONS_SECRET_MAX + 1]; /* "": a random one */
	bool check_only; /* only check it: a dry run, nothing changes */
};

void notifications_subscription_spec_init(
	struct notifications_subscription_spec *spec);

/* A subscription as the module holds it; borrowed like a topic. */
struct notifications_subscription {
	const char *id;
	const char *topic_id;
	enum notifications_protocol protocol;
	const char *endpoint;        /* NULL for COMMAND */
	const char *const *command;  /* COMMAND's argv; else NULL */
	uint32_t max_attempts;
	uint32_t timeout_s;
	/* Only from create (shown once), and only for HTTP and HTTPS,
	 * whose deliveries are signed with it; else NULL. */
	const char *secret;
	int64_t created_ms;
	uint32_t uid;        /* COMMAND: the uid its command runs as; 0:
				runAsUser's (or the daemon's) */
	size_t pending;      /* queued deliveries */
	size_t dead_letters; /* kept, to read and replay */
};

/*
 * Creates a subscription (with spec->check_only: only checks it, and
 * returns 0 without touching *out). Checks what the spec's fields cannot
 * say alone: the topic exists (spec->topic_id: its id or its name), the
 * endpoint or the command fits the protocol, the function exists, the URL
 * names a host, the program can run; a COMMAND subscription gets a uid of
 * its own when the pool is on. Returns 0
 * and the subscription in *out (may be NULL; its secret set), or
 * MDS_E_INVAL / MDS_E_LIMIT (also: no free uid) / MDS_E_DB with f filled.
 * Inside a caller's transaction it is there at once and goes again with a
 * rollback, as a topic does.
 */
int notifications_subscription_create(
	struct notifications *n,
	const struct notifications_subscription_spec *spec,
	struct notifications_subscription *out, struct fault *f);
/*
 * Changes how a subscription delivers from its next attempt on:
 * max_attempts and timeout_s (each 0: unchanged; the caller keeps their
 * bounds). The topic, protocol and endpoint never change. With
 * check_only, only checks. Returns 0 and the subscription in *out (may be
 * NULL), or MDS_E_NOTFOUND / MDS_E_DB with f filled and nothing changed.
 */
int notifications_subscription_update(
	struct notifications *n, const char *id, uint32_t max_attempts,
	uint32_t timeout_s, bool check_only,
	struct notifications_subscription *out, struct fault *f);

/* Deletes a subscription with its pending deliveries and history.
 * Returns 0, or MDS_E_NOTFOUND / MDS_E_DB / MDS_E_NOSPACE (f filled).
 * Inside a caller's transaction it goes at the commit, as a topic does. */
int notifications_subscription_delete(struct notifications *n,
				      const char *id, struct fault *f);
/* 0 and *out, or MDS_E_NOTFOUND (f filled). */
int notifications_subscription_get(struct notifications *n, const char *id,
				   struct notifications_subscription *out,
				   struct fault *f);
/* Calls fn for every subscription (of one topic only, by its id or its
 * name, if topic_id is not NULL). */
void notifications_subscription_each(
	struct notifications *n, const char *topic_id,
	void (*fn)(void *arg, const struct notifications_subscription *s),
	void *arg);

/* One attempt at a delivery, as recorded. Strings borrowed for the call. */
struct notifications_attempt {
	const char *message_id;
	const char *dedupe_key;
	int attempt;            /* 1 for the first */
	int64_t started_ms;     /* 0 if unknown */
	int64_t finished_ms;
	const char *outcome;    /* "SUCCEEDED", "FAILED" or "RETRYING" */
	long status;            /* the HTTP status; -1 if none */
	const char *error;      /* NULL on success */
	uint64_t duration_ms;
};

/*
 * Calls fn for each of the last attempts of a subscription's deliveries,
 * oldest first. Returns 0, MDS_E_NOTFOUND or MDS_E_DB (f filled).
 */
int notifications_attempts_each(
	struct notifications *n, const char *id,
	void (*fn)(void *arg, const struct notifications_attempt *at),
	void *arg, struct fault *f);

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
