/*
 * logstore.h - the daemon's structured log: JSON lines in files, rotated by
 * size, pruned by age, searchable, and followed as lines arrive.
 *
 * Every line is one JSON object (see docs/logging.md):
 *
 *   {"time":"2024-05-01T10:00:00.123Z","level":"info","source":"deploy",
 *    "message":"...","deploymentId":"md-...","instanceId":"mi-..."}
 *
 * written to DIR/mdscale.log. Past max_file_bytes the file is rotated:
 * mdscale.log becomes mdscale.log.1, .1 becomes .2, and so on up to
 * max_files; rotated files older than retention_days are deleted by
 * logstore_maintain().
 *
 * Writes are synchronous: each line is one write(2) on an O_APPEND
 * descriptor, from the thread that logs (the loop's). A local append is
 * cheap, and it keeps memory flat: nothing is buffered, so nothing can grow.
 * A write that fails (a full disk, an I/O error) never blocks or fails the
 * caller: the line is counted as dropped, and the next line that is written
 * carries the count ("dropped": N). A short write leaves a broken line,
 * which the next write ends first; readers skip lines that are not JSON.
 *
 * The store itself has no event loop: the daemon's logging module
 * (logging.h) calls logstore_maintain() on a timer and runs
 * logstore_query() on a worker thread. logstore_query() only reads files
 * and touches no struct logstore, so it is safe on any thread; every other
 * function belongs to the thread that writes.
 */
#ifndef MDS_LOGSTORE_H
#define MDS_LOGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/log.h"

#define LOGSTORE_FILE "mdscale.log"
/* Bytes of a message kept; the rest is cut (and the line says so). */
#define LOGSTORE_MESSAGE_MAX (16 * 1024)
/* A query answers at most this many lines, and this many bytes of them. */
#define LOGSTORE_LIMIT_MAX 10000
#define LOGSTORE_RESULT_MAX (6u << 20)
/* Followers at once. */
#define LOGSTORE_FOLLOWERS_MAX 64

struct logstore;

struct logstore_opts {
	const char *dir;         /* created (one level) if missing */
	uint64_t max_file_bytes; /* rotate once the next line would pass it */
	uint32_t max_files;      /* rotated files kept: .1 to .max_files */
	uint32_t retention_days; /* rotated files older go; 0: no age limit */
};

/*
 * Opens (or creates) DIR/mdscale.log for appending, after deleting rotated
 * files past max_files. Returns 0 and the store in *out (the caller frees it
 * with logstore_close()), or MDS_E_INVAL for a bad option (detail in diag).
 * A directory or file that cannot be made is no error: the store starts
 * degraded (one line on stderr), counts the lines it cannot write, and
 * tries the file again every second.
 */
int logstore_open(const struct logstore_opts *o, struct logstore **out,
		  char *diag, size_t diagsz);

/* Closes the file and frees the store and its followers. NULL is fine. */
void logstore_close(struct logstore *ls);

/*
 * Writes one line and hands it to every follower. Never fails for the
 * caller: see the top of this file. rec and its strings are borrowed; a
 * message past LOGSTORE_MESSAGE_MAX bytes is cut.
 */
void logstore_append(struct logstore *ls, const struct log_record *rec);

/* A log_sink_fn (util/log.h) whose arg is a struct logstore *. */
void logstore_sink(void *arg, const struct log_record *rec);

/*
 * Deletes rotated files numbered past max_files and, if retention_days is
 * not 0, those last written before now_ms minus retention_days. Returns the
 * number of files deleted.
 */
int logstore_maintain(struct logstore *ls, int64_t now_ms);

/* Lines dropped by failed writes since the store was opened. */
uint64_t logstore_dropped_total(const struct logstore *ls);

/*
 * Where the log ends now: a query given this mark reads only the lines
 * written before it, and a follower added at the same time gets exactly
 * the lines written after it, so the two meet without a gap or a repeat.
 */
struct logstore_mark {
	bool valid;
	uint64_t dev, ino; /* the current file */
	uint64_t offset;   /* its length */
};

void logstore_mark(const struct logstore *ls, struct logstore_mark *m);

/*
 * Followers get every line appended from now on (also those a full disk
 * kept out of the file): the record and its JSON text, line[len - 1] being
 * the '\n'. All borrowed for the call. A follower may unfollow itself or
 * another from its callback; lines logged from inside a callback are
 * written but not handed to followers.
 */
typedef void logstore_follow_fn(void *arg, const struct log_record *rec,
				const char *line, size_t len);
struct logstore_follower;

/* Adds a follower; returns NULL when LOGSTORE_FOLLOWERS_MAX follow. */
struct logstore_follower *logstore_follow(struct logstore *ls,
					  logstore_follow_fn *fn, void *arg);
/* Removes and frees a follower. NULL is fine. */
void logstore_unfollow(struct logstore *ls, struct logstore_follower *f);

/* Which lines a query or a follower wants. Strings are borrowed. */
struct logstore_filter {
	const char *source;   /* exact; NULL: any */
	struct log_ids ids;   /* every field set must be equal */
	enum log_level level; /* this or more severe; LOG_DEBUG: all */
	int64_t since_ms;     /* inclusive; INT64_MIN: no bound */
	int64_t until_ms;     /* inclusive; INT64_MAX: no bound */
	const char *text;     /* a substring of the message; NULL: any */
	uint32_t limit;       /* a query keeps the newest this many */
};

/* Sets every field to "anything", limit to 1000. */
void logstore_filter_init(struct logstore_filter *f);

bool logstore_match(const struct logstore_filter *f,
		    const struct log_record *rec);

struct logstore_result {
	struct buf lines;  /* the matches, oldest first, one JSON object and
			      '\n' each */
	size_t count;      /* lines in it */
	bool truncated;    /* older matches left out by the limit or the
			      LOGSTORE_RESULT_MAX byte cap */
	uint64_t scanned;  /* lines read */
};

/*
 * Reads DIR/mdscale.log.max_files ... .1 and DIR/mdscale.log, oldest
 * first, and keeps the newest f->limit lines that match (lines that are not
 * JSON objects are skipped). With stop (may be NULL), reading ends where
 * the mark is. Only reads files: safe on a worker thread. Returns 0 with
 * res filled (free it with logstore_result_free()); MDS_E_INVAL for a limit
 * of 0 or past LOGSTORE_LIMIT_MAX. Files that are missing are no error.
 */
int logstore_query(const char *dir, uint32_t max_files,
		   const struct logstore_filter *f,
		   const struct logstore_mark *stop,
		   struct logstore_result *res);

void logstore_result_free(struct logstore_result *res);

#endif
