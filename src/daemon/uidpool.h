/*
 * uidpool.h - the uids of instanceUids and who holds them: deployments
 * (their instances), user functions and COMMAND subscriptions (their
 * programs). One pool for all of them, so no two live owners ever share a
 * uid, whichever module they belong to.
 *
 * The pool keeps no copy of who holds what: each module that hands out
 * uids registers a holder, a callback that adds the uid of each of its
 * live owners, and a pick asks every holder. So a uid is free again as
 * soon as its owner is gone from its module (a deleted deployment once its
 * instances are gone, a deleted function once its last program ended), with
 * nothing to release. The lowest free id is picked (core/idrange.h); ids a
 * user or group of the system has are never given out.
 */
#ifndef MDS_UIDPOOL_H
#define MDS_UIDPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/idrange.h"
#include "util/fault.h"

struct config;
struct uidpool;
/* What a holder fills: the uids its live owners hold. */
struct uidpool_ids;

/* A holder: calls uidpool_ids_add(ids, uid) for each uid held. */
typedef void uidpool_each_fn(void *arg, struct uidpool_ids *ids);

/* At most this many holders (deployments, functions, subscriptions). */
#define UIDPOOL_HOLDERS_MAX 4

/*
 * A pool over range (copied); on false: nobody gets a uid (the daemon is
 * not root, or its instances run as runAsUser). Free with uidpool_free().
 */
struct uidpool *uidpool_new(const struct idrange *range, bool on);

/* The pool of a daemon with cfg (borrowed for the call): on when the
 * daemon runs as root and cfg gives uids (config_uids_on()). */
struct uidpool *uidpool_from_config(const struct config *cfg);

/* Frees p (its holders are not called); NULL is fine. */
void uidpool_free(struct uidpool *p);

/* Whether owners get a uid of their own; false for a NULL pool. */
bool uidpool_on(const struct uidpool *p);

/* Adds a holder (each and arg borrowed until uidpool_forget(p, arg)). At
 * most UIDPOOL_HOLDERS_MAX; a NULL pool ignores it. */
void uidpool_hold(struct uidpool *p, uidpool_each_fn *each, void *arg);

/* Removes the holder of arg (a module closing); NULL pool is fine. */
void uidpool_forget(struct uidpool *p, void *arg);

/* For a holder: adds uid (0 is ignored). */
void uidpool_ids_add(struct uidpool_ids *ids, uint32_t uid);

/*
 * Picks the lowest uid of the range that no holder holds and no user or
 * group of the system has, into *uid. Returns 0, or MDS_E_LIMIT with f
 * naming the range (as "400 LimitExceeded" to the API). The uid is the
 * caller's once its owner is in the caller's holder.
 */
int uidpool_pick(struct uidpool *p, uint32_t *uid, struct fault *f);

/* How many live owners, over every holder, hold uid (0 for uid 0). */
size_t uidpool_count(struct uidpool *p, uint32_t uid);

#endif
