/*
 * notifications_int.h - what the files of the notifications module share,
 * and no other module sees: the records (topic, subscription, queued
 * delivery, attempt) and the few calls between notifications.c (topics,
 * subscriptions, dead letters, loading) and notifications_delivery.c
 * (publishing, the queues and their attempts).
 */
#ifndef MDS_NOTIFICATIONS_INT_H
#define MDS_NOTIFICATIONS_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "notify/notifications.h"

#define K_DELIVERY "delivery"
#define STREAM "deliveries"

#define ID_LEN (NOTIFICATIONS_ID_MAX + 1)
#define DEDUPE_MAX 256
#define MAX_PENDING 10000
#define DELIVERIES_KEPT 1000

enum proto {
	P_FUNCTION = NOTIFICATIONS_FUNCTION,
	P_HTTPS = NOTIFICATIONS_HTTPS,
	P_HTTP = NOTIFICATIONS_HTTP,
	P_COMMAND = NOTIFICATIONS_COMMAND,
	P__COUNT
};
#define proto_names notifications_protocols

/* A topic: what messages are published to. */
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

/* A subscription: where a topic's messages go, with what limits, and its
 * queue of pending deliveries. */
struct sub {
	struct sub *next;
	char id[ID_LEN];
	char topic_id[ID_LEN];
	enum proto proto;
	char *endpoint;   /* function name or URL; NULL for COMMAND */
	char **command;   /* COMMAND: argv, NULL-terminated */
	uint32_t uid;     /* COMMAND: its own (instanceUids); 0: none */
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

/* The module: the topics, the subscriptions and the one timer that drives
 * every queue. */
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

/* ---- notifications.c ---- */

/* Puts doc into the store as kind/id unless *rc is already an error; sets
 * *rc to the store's answer. */
void notifications_save(struct notifications *n, const char *kind,
			const char *id, json_t *doc, int *rc);
/* The topic with id key, else the one named key, or NULL. */
struct topic *notifications_find_topic(struct notifications *n,
				       const char *key);

/* ---- notifications_delivery.c ---- */

/* Appends p to the queue of s. */
void notifications_sub_push(struct sub *s, struct pending *p);
/* Frees s and its queue (its attempts must be orphaned first). */
void notifications_sub_free(struct sub *s);
/* Lets go of every attempt of s in flight: each is cancelled where
 * possible, and its completion will only free it. */
void notifications_orphan(struct notifications *n, struct sub *s);
/* Sleeps until the earliest delivery that can start. */
void notifications_arm(struct notifications *n);

#endif
