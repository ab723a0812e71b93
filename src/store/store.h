/*
 * store.h - durable state in SQLite (WAL).
 *
 * Objects (deployments, work requests, alarms, ...) are stored as JSON
 * documents keyed by (kind, id), listed in the order they were first put;
 * histories are append-only events. Every put is committed (synchronous=FULL)
 * before it returns, so what the API acknowledges survives a crash; group
 * several puts with store_begin()/store_commit() to make them atomic. This
 * is the only module that includes sqlite3.h. One store per thread.
 *
 * Every write returns 0, MDS_E_NOSPACE when the data directory's device is
 * full (nothing of it was written: callers refuse the change, the API with
 * 507, and try again later), or MDS_E_DB for any other failure. Reads work
 * on a full device.
 */
#ifndef MDS_STORE_H
#define MDS_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

/*
 * Opens (creating if needed) the database at path and migrates its schema.
 * Returns 0 and the store in *out, or MDS_E_DB with the reason in diag. The
 * caller closes it with store_close(). A store whose schema is current
 * opens without writing, so it opens on a full device.
 */
int store_open(const char *path, struct store **out, char *diag,
	       size_t diagsz);
void store_close(struct store *st);

/* Transactions nest by count: only the outermost commit writes. A commit
 * that fails rolls the transaction back itself; store_rollback() after it
 * is harmless. */
int store_begin(struct store *st);
int store_commit(struct store *st);
int store_rollback(struct store *st);

/*
 * Work that must follow the commit of what was just written, and only it:
 * an in-memory queue that takes a message once its row is stored, say.
 * Inside a transaction, done(arg) runs once the outermost store_commit()
 * has written it, and drop(arg) instead when it is rolled back or its
 * commit fails; outside one, done(arg) runs at once. Exactly one of them
 * runs, once; either may be NULL, and arg belongs to them. Hooks run in
 * the order they were added.
 */
typedef void store_hook_fn(void *arg);
void store_on_commit(struct store *st, store_hook_fn *done,
		     store_hook_fn *drop, void *arg);

/*
 * Space kept in reserve for the few writes that must work on a full
 * device (revoking or rotating an API token): a file of
 * STORE_RESERVE_BYTES beside the database ("PATH-reserve"), allocated at
 * open and again after any write that succeeds while it is missing, when
 * there is room. store_critical() runs write(st, arg) (one write, or a
 * transaction of several); when that fails with MDS_E_NOSPACE and the
 * reserve is there, it deletes the reserve and runs write once more.
 * Returns write's result. Other writes never free the reserve: on a full
 * device they fail until space returns (or a critical write has freed
 * it: until the space it left is used).
 */
#define STORE_RESERVE_BYTES (1 << 20)
typedef int store_write_fn(struct store *st, void *arg);
int store_critical(struct store *st, store_write_fn *write, void *arg);

/* Inserts or replaces one document. Strings are copied by SQLite. */
int store_put(struct store *st, const char *kind, const char *id,
	      const char *json);
/* Deletes one document; a missing one is not an error. */
int store_delete(struct store *st, const char *kind, const char *id);
/* Copies one document into *json (caller frees); MDS_E_NOTFOUND if none. */
int store_get(struct store *st, const char *kind, const char *id,
	      char **json);

/* Called per document; a non-zero return stops the walk and is returned. */
typedef int store_each_fn(void *arg, const char *id, const char *json);
/* Walks the documents of a kind, oldest first. */
int store_each(struct store *st, const char *kind, store_each_fn *fn,
	       void *arg);

/* Appends an event to the history of (stream, ref). */
int store_event_add(struct store *st, const char *stream, const char *ref,
		    int64_t time_ms, const char *json);
/*
 * Walks the events of (stream, ref) with time >= since_ms, oldest first, at
 * most limit of the newest ones (limit 0: all). ref NULL: every ref.
 */
int store_event_each(struct store *st, const char *stream, const char *ref,
		     int64_t since_ms, size_t limit, store_each_fn *fn,
		     void *arg);
/* Walks the newest limit events of (stream, ref) (limit 0: all), newest
 * first, reading each only when fn is called for it. */
int store_event_each_newest(struct store *st, const char *stream,
			    const char *ref, size_t limit, store_each_fn *fn,
			    void *arg);
/* Deletes the events of (stream, ref) older than before_ms; ref NULL:
 * of every ref. */
int store_event_trim(struct store *st, const char *stream, const char *ref,
		     int64_t before_ms);

#endif
