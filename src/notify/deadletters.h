/*
 * deadletters.h - the dead letters of subscriptions, kept in the store
 * (kind "deadletter", one document each). Part of the notifications
 * module: notifications.c decides what becomes a dead letter and when one
 * is queued again; this file only keeps them. Writes join the caller's
 * transaction.
 */
#ifndef MDS_DEADLETTERS_H
#define MDS_DEADLETTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "notify/notifications.h"

struct store;

/* The store's kind of their documents. */
#define DEADLETTERS_KIND "deadletter"

/* Dead letters kept per subscription; past it the oldest is dropped. */
#define DEAD_LETTERS_MAX 1000

/* A new dead letter; every string borrowed for the call. */
struct deadletter_new {
	const char *sub_id, *topic_id, *message_id, *dedupe_key;
	const char *ordering_key;
	const char *message;
	const char *outcome, *reason;
	int attempts;
	int64_t now_ms;
};

/*
 * Stores d. When count (the subscription's dead letters now) has reached
 * DEAD_LETTERS_MAX, first deletes its oldest and sets *dropped. Returns 0
 * or MDS_E_DB (MDS_E_INVAL for strings that are not UTF-8).
 */
int deadletters_add(struct store *st, const struct deadletter_new *d,
		    size_t count, bool *dropped);

/* Calls fn for each dead letter of sub_id, oldest first. Returns 0 or
 * MDS_E_DB. */
int deadletters_each(struct store *st, const char *sub_id,
		     void (*fn)(void *arg,
				const struct notifications_dead_letter *dl),
		     void *arg);

/* What a replay needs of one dead letter; allocated strings. */
struct deadletter_copy {
	char *message_id, *dedupe_key, *ordering_key, *message;
};

/* Copies dead letter id of sub_id into *out (free it with
 * deadletters_copy_free()). Returns 0, MDS_E_NOTFOUND or MDS_E_DB. */
int deadletters_get(struct store *st, const char *sub_id, const char *id,
		    struct deadletter_copy *out);
void deadletters_copy_free(struct deadletter_copy *c);

/* Deletes one dead letter. Returns 0 or MDS_E_DB. */
int deadletters_delete(struct store *st, const char *id);

/* Deletes every dead letter of sub_id. Returns 0 or MDS_E_DB. */
int deadletters_delete_all(struct store *st, const char *sub_id);

/* Calls fn(arg, id, sub_id) for every stored dead letter, to count them
 * at start; fn returns 0 to go on. Returns 0 or MDS_E_DB. */
int deadletters_scan(struct store *st,
		     int (*fn)(void *arg, const char *id, const char *sub_id),
		     void *arg);

#endif
