/* store.c - SQLite persistence; see store.h. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

enum stmt {
	S_BEGIN, S_COMMIT, S_ROLLBACK, S_PUT, S_DELETE, S_GET, S_EACH,
	S_EVENT_ADD, S_EVENT_EACH, S_EVENT_EACH_ALL, S_EVENT_NEWEST,
	S_EVENT_TRIM,
	S_EVENT_TRIM_ALL, S__COUNT
};

static const char *const sql[S__COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_PUT] = "INSERT INTO objects(kind, id, body) VALUES (?1, ?2, ?3) "
		  "ON CONFLICT(kind, id) DO UPDATE SET body = excluded.body",
	[S_DELETE] = "DELETE FROM objects WHERE kind = ?1 AND id = ?2",
	[S_GET] = "SELECT body FROM objects WHERE kind = ?1 AND id = ?2",
	[S_EACH] = "SELECT id, body FROM objects WHERE kind = ?1 ORDER BY seq",
	[S_EVENT_ADD] = "INSERT INTO events(stream, ref, time_ms, body) "
			"VALUES (?1, ?2, ?3, ?4)",
	[S_EVENT_EACH] = "SELECT ref, body FROM (SELECT seq, ref, body FROM "
			 "events WHERE stream = ?1 AND ref = ?2 AND time_ms >= ?3 "
			 "ORDER BY seq DESC LIMIT ?4) ORDER BY seq",
	[S_EVENT_EACH_ALL] = "SELECT ref, body FROM (SELECT seq, ref, body "
			     "FROM events WHERE stream = ?1 AND time_ms >= ?3 "
			     "ORDER BY seq DESC LIMIT ?4) ORDER BY seq",
	/* Newest first, read a row at a time: a walk stopped early reads no
	 * more bodies than it took. */
	[S_EVENT_NEWEST] = "SELECT ref, body FROM events WHERE stream = ?1 "
			   "AND ref = ?2 ORDER BY seq DESC LIMIT ?3",
	[S_EVENT_TRIM] = "DELETE FROM events WHERE stream = ?1 AND ref = ?2 "
			 "AND time_ms < ?3",
	[S_EVENT_TRIM_ALL] = "DELETE FROM events WHERE stream = ?1 "
			     "AND time_ms < ?3",
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS objects ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,"
	" UNIQUE(kind, id));"
	"CREATE TABLE IF NOT EXISTS events ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" stream TEXT NOT NULL, ref TEXT NOT NULL, time_ms INTEGER NOT NULL,"
	" body TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS events_by_ref ON events(stream, ref, seq);"
	"PRAGMA user_version = 1;"; /* SCHEMA_VERSION */

struct hook {
	store_hook_fn *done, *drop;
	void *arg;
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[S__COUNT];
	int depth; /* open store_begin() calls */
	struct hook *hooks; /* store_on_commit() of the open transaction */
	size_t nhooks, hooks_cap;
	char *reserve_path; /* the space reserve, beside the database */
	bool reserve_held;  /* it is there, whole */
};

/* Makes the space reserve when it is missing and the device has room for
 * it; a partial one is removed, so that it never holds less than it
 * says. Quiet: on a full device it is simply tried again later. */
static void reserve_make(struct store *st)
{
	int fd;

	if (st->reserve_held || st->reserve_path == NULL)
		return;
	fd = open(st->reserve_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	st->reserve_held = posix_fallocate(fd, 0, STORE_RESERVE_BYTES) == 0;
	close(fd);
	if (!st->reserve_held)
		unlink(st->reserve_path);
	else
		log_info("store", "%d bytes of space kept in %s for writes "
			 "that must work on a full device",
			 STORE_RESERVE_BYTES, st->reserve_path);
}

/* A full device (or a full quota) is told apart from other failures: the
 * API answers it with 507 and the daemon goes on serving reads until space
 * returns. */
static int fail(struct store *st, const char *what)
{
	int code = sqlite3_errcode(st->db) & 0xff;
	int sys = sqlite3_system_errno(st->db);
	bool full = code == SQLITE_FULL ||
		    (code == SQLITE_IOERR &&
		     (sys == ENOSPC || sys == EDQUOT));

	log_error("store", "%s: %s", what, sqlite3_errmsg(st->db));
	return full ? MDS_E_NOSPACE : MDS_E_DB;
}

/* The schema version this code writes; a store at it needs no setup, so a
 * store on a full device still opens. */
#define SCHEMA_VERSION 1

static int schema_version(sqlite3 *db)
{
	sqlite3_stmt *s = NULL;
	int v = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

int store_open(const char *path, struct store **out, char *diag,
	       size_t diagsz)
{
	struct store *st = xcalloc(1, sizeof(*st));
	char *err = NULL;
	int rc;

	rc = sqlite3_open_v2(path, &st->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		mds_diag(diag, diagsz, "cannot open %s: %s", path,
			 st->db ? sqlite3_errmsg(st->db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(st->db, 5000);
	rc = sqlite3_exec(st->db,
			  "PRAGMA journal_mode = WAL;"
			  "PRAGMA synchronous = FULL;"
			  "PRAGMA foreign_keys = ON;",
			  NULL, NULL, &err);
	if (rc == SQLITE_OK && schema_version(st->db) != SCHEMA_VERSION)
		rc = sqlite3_exec(st->db, schema, NULL, NULL, &err);
	if (rc != SQLITE_OK) {
		mds_diag(diag, diagsz, "cannot set up %s: %s", path,
			 err ? err : sqlite3_errmsg(st->db));
		sqlite3_free(err);
		goto out;
	}
	for (int i = 0; i < S__COUNT; i++) {
		rc = sqlite3_prepare_v3(st->db, sql[i], -1,
					SQLITE_PREPARE_PERSISTENT,
					&st->stmt[i], NULL);
		if (rc != SQLITE_OK) {
			mds_diag(diag, diagsz, "cannot prepare '%s': %s",
				 sql[i], sqlite3_errmsg(st->db));
			goto out;
		}
	}
	st->reserve_path = xasprintf("%s-reserve", path);
	reserve_make(st);
	*out = st;
	return 0;
out:
	store_close(st);
	return MDS_E_DB;
}

/* Runs the hooks of the transaction that just ended: done when it was
 * written, drop when not. A hook may open a transaction of its own. */
static void end_hooks(struct store *st, bool written)
{
	struct hook *h = st->hooks;
	size_t n = st->nhooks;

	st->hooks = NULL;
	st->nhooks = st->hooks_cap = 0;
	for (size_t i = 0; i < n; i++) {
		store_hook_fn *fn = written ? h[i].done : h[i].drop;

		if (fn != NULL)
			fn(h[i].arg);
	}
	free(h);
}

void store_on_commit(struct store *st, store_hook_fn *done,
		     store_hook_fn *drop, void *arg)
{
	if (st->depth == 0) {
		if (done != NULL)
			done(arg);
		return;
	}
	if (st->nhooks == st->hooks_cap) {
		st->hooks_cap = st->hooks_cap ? 2 * st->hooks_cap : 8;
		st->hooks = xreallocarray(st->hooks, st->hooks_cap,
					  sizeof(*st->hooks));
	}
	st->hooks[st->nhooks++] = (struct hook){ done, drop, arg };
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	end_hooks(st, false);
	for (int i = 0; i < S__COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	free(st->reserve_path);
	free(st);
}

/* Runs a statement that returns no rows, then resets it. */
static int run(struct store *st, enum stmt s)
{
	int rc = sqlite3_step(st->stmt[s]);

	sqlite3_reset(st->stmt[s]);
	sqlite3_clear_bindings(st->stmt[s]);
	if (rc != SQLITE_DONE)
		return fail(st, sql[s]);
	/* A write went through, so there may be room again for the
	 * reserve a critical write used. */
	if (st->depth == 0)
		reserve_make(st);
	return 0;
}

int store_critical(struct store *st, store_write_fn *write, void *arg)
{
	int rc = write(st, arg);

	if (rc != MDS_E_NOSPACE || !st->reserve_held)
		return rc;
	log_warn("store", "the device is full: the space reserve %s is "
		 "freed for a write that must not fail", st->reserve_path);
	if (unlink(st->reserve_path) != 0) {
		log_error("store", "cannot free the space reserve %s: %s",
			  st->reserve_path, strerror(errno));
		return rc;
	}
	st->reserve_held = false;
	return write(st, arg);
}

int store_begin(struct store *st)
{
	if (st->depth++ > 0)
		return 0;
	return run(st, S_BEGIN);
}

int store_commit(struct store *st)
{
	int rc;

	if (st->depth == 0 || --st->depth > 0)
		return 0;
	rc = run(st, S_COMMIT);
	/* A failed COMMIT (a full device) may leave the transaction open:
	 * end it, so that nothing of it is written later by accident. */
	if (rc != 0 && !sqlite3_get_autocommit(st->db)) {
		sqlite3_step(st->stmt[S_ROLLBACK]);
		sqlite3_reset(st->stmt[S_ROLLBACK]);
	}
	end_hooks(st, rc == 0);
	return rc;
}

int store_rollback(struct store *st)
{
	int rc;

	if (st->depth == 0)
		return 0;
	st->depth = 0;
	rc = run(st, S_ROLLBACK);
	end_hooks(st, false);
	return rc;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

int store_put(struct store *st, const char *kind, const char *id,
	      const char *json)
{
	bind_text(st->stmt[S_PUT], 1, kind);
	bind_text(st->stmt[S_PUT], 2, id);
	bind_text(st->stmt[S_PUT], 3, json);
	return run(st, S_PUT);
}

int store_delete(struct store *st, const char *kind, const char *id)
{
	bind_text(st->stmt[S_DELETE], 1, kind);
	bind_text(st->stmt[S_DELETE], 2, id);
	return run(st, S_DELETE);
}

int store_get(struct store *st, const char *kind, const char *id,
	      char **json)
{
	sqlite3_stmt *s = st->stmt[S_GET];
	int rc;

	bind_text(s, 1, kind);
	bind_text(s, 2, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*json = xstrdup((const char *)sqlite3_column_text(s, 0));
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = MDS_E_NOTFOUND;
	} else {
		rc = fail(st, sql[S_GET]);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

/* Steps a two-column query, calling fn per row. */
static int walk(struct store *st, enum stmt which, store_each_fn *fn,
		void *arg)
{
	sqlite3_stmt *s = st->stmt[which];
	int rc, ret = 0;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		ret = fn(arg, (const char *)sqlite3_column_text(s, 0),
			 (const char *)sqlite3_column_text(s, 1));
		if (ret != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = fail(st, sql[which]);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int store_each(struct store *st, const char *kind, store_each_fn *fn,
	       void *arg)
{
	bind_text(st->stmt[S_EACH], 1, kind);
	return walk(st, S_EACH, fn, arg);
}

int store_event_add(struct store *st, const char *stream, const char *ref,
		    int64_t time_ms, const char *json)
{
	sqlite3_stmt *s = st->stmt[S_EVENT_ADD];

	bind_text(s, 1, stream);
	bind_text(s, 2, ref);
	sqlite3_bind_int64(s, 3, time_ms);
	bind_text(s, 4, json);
	return run(st, S_EVENT_ADD);
}

int store_event_each(struct store *st, const char *stream, const char *ref,
		     int64_t since_ms, size_t limit, store_each_fn *fn,
		     void *arg)
{
	enum stmt which = ref ? S_EVENT_EACH : S_EVENT_EACH_ALL;
	sqlite3_stmt *s = st->stmt[which];

	bind_text(s, 1, stream);
	if (ref != NULL)
		bind_text(s, 2, ref);
	sqlite3_bind_int64(s, 3, since_ms);
	sqlite3_bind_int64(s, 4, limit ? (sqlite3_int64)limit : -1);
	return walk(st, which, fn, arg);
}

int store_event_each_newest(struct store *st, const char *stream,
			    const char *ref, size_t limit, store_each_fn *fn,
			    void *arg)
{
	sqlite3_stmt *s = st->stmt[S_EVENT_NEWEST];

	bind_text(s, 1, stream);
	bind_text(s, 2, ref);
	sqlite3_bind_int64(s, 3, limit ? (sqlite3_int64)limit : -1);
	return walk(st, S_EVENT_NEWEST, fn, arg);
}

int store_event_trim(struct store *st, const char *stream, const char *ref,
		     int64_t before_ms)
{
	enum stmt which = ref ? S_EVENT_TRIM : S_EVENT_TRIM_ALL;
	sqlite3_stmt *s = st->stmt[which];

	bind_text(s, 1, stream);
	if (ref != NULL)
		bind_text(s, 2, ref);
	sqlite3_bind_int64(s, 3, before_ms);
	return run(st, which);
}
