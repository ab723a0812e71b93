/*
 * log.h - leveled logging for the daemon.
 *
 * The level is the one mutable global of the program. The macros test the
 * level before evaluating their arguments, so a disabled debug line costs a
 * comparison. Lines go to stderr as "time level source: message" (for the
 * daemon in the foreground), and each one is also handed, as a struct
 * log_record, to the sink set once at start-up: the daemon's structured
 * log (see logstore.h and docs/logging.md).
 *
 * A line may carry the ids it is about (a deployment, an instance, ...):
 *
 *	log_event(LOG_INFO, "deploy",
 *		  LOG_IDS(.deployment_id = dep->id, .instance_id = in->id),
 *		  "instance %s ready", in->id);
 */
#ifndef MDS_LOG_H
#define MDS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_current_level;

/* The ids a line is about; every field may be NULL (or ""), meaning none.
 * Each becomes a field of the structured log line (its JSON name in
 * brackets). */
struct log_ids {
	const char *deployment_id;   /* [deploymentId] */
	const char *instance_id;     /* [instanceId] */
	const char *alarm_id;        /* [alarmId] */
	const char *work_request_id; /* [workRequestId] */
	const char *function;        /* [function]: a function's name */
	const char *subscription_id; /* [subscriptionId] */
	const char *stream;          /* [stream]: "stdout" or "stderr" */
};

/* Makes a const struct log_ids * from designated initializers; it lives
 * until the end of the enclosing block. */
#define LOG_IDS(...) (&(const struct log_ids){ __VA_ARGS__ })

/* One line, as a sink gets it. Everything is borrowed for the call. */
struct log_record {
	int64_t time_ms;            /* wall clock, ms since the epoch */
	enum log_level level;
	const char *source;         /* the module: "deploy", "gateway", ... */
	const char *message;        /* one line, NUL-terminated */
	const struct log_ids *ids;  /* NULL: none */
};

/* Receives every line log_write() prints, on the thread that logs it. */
typedef void log_sink_fn(void *arg, const struct log_record *rec);

/* Parses "error", "warn", "info" or "debug"; returns 0 or MDS_E_INVAL. */
int log_set_level(const char *name);

/* Parses a level name into *out without changing the current level;
 * returns 0 or MDS_E_INVAL. */
int log_level_parse(const char *name, enum log_level *out);

/* Returns "error", "warn", "info" or "debug"; static storage. */
const char *log_level_name(enum log_level level);

/*
 * Sets the sink (fn NULL: none). The daemon sets it once at start-up,
 * before its loop runs, and clears it before the sink's owner is freed:
 * configuration, not state, so it stays out of the rule of one mutable
 * global. Not thread-safe: only the loop's thread may log while a sink is
 * set.
 */
void log_set_sink(log_sink_fn *fn, void *arg);

void log_write(enum log_level level, const char *source, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* log_write() with ids (ids may be NULL). */
void log_write_ids(enum log_level level, const char *source,
		   const struct log_ids *ids, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* How lines go to stderr: "time level source: message" for a terminal or a
 * file; for the systemd journal (stderr connected to it, see
 * log_stderr_detect()), "<N>source: message" with N the syslog priority
 * (3 error, 4 warning, 6 info, 7 debug) and no time, which journald adds;
 * or as JSON, the log file's objects (log_format_json()), behind "<N>" too
 * when stderr is the journal. */
enum log_stderr_format { LOG_STDERR_TEXT, LOG_STDERR_JOURNAL };

/* Chooses the stderr format: the journal's when $JOURNAL_STREAM names the
 * device and inode of stderr (as systemd sets it), text otherwise; json
 * writes JSON objects in either case. Call once at start-up. Returns the
 * format chosen. */
enum log_stderr_format log_stderr_detect(bool json);

/* The id fields of struct log_ids with their JSON names, in line order. */
struct log_id_field {
	const char *key;
	size_t off; /* offsetof(struct log_ids, ...) */
};
#define LOG_N_IDS 7
extern const struct log_id_field log_id_fields[LOG_N_IDS];

/* Returns id field i of ids, or NULL when ids is NULL or the field is
 * unset or empty. */
const char *log_id_get(const struct log_ids *ids, size_t i);

/*
 * Formats rec as one JSON line, newline included, into out (reset first):
 * {"time", "level", "source", "message", the ids that are set, and
 * "dropped" when dropped > 0}. The structured log's files and stderr in
 * JSON use it. Returns 0, or MDS_E_LIMIT past out's cap.
 */
int log_format_json(const struct log_record *rec, uint64_t dropped,
		    struct buf *out);

#define LOG_AT(lvl, src, ...)                                                 \
	do {                                                                  \
		if ((lvl) <= log_current_level)                               \
			log_write((lvl), (src), __VA_ARGS__);                 \
	} while (0)
#define log_error(src, ...) LOG_AT(LOG_ERROR, src, __VA_ARGS__)
#define log_warn(src, ...) LOG_AT(LOG_WARN, src, __VA_ARGS__)
#define log_info(src, ...) LOG_AT(LOG_INFO, src, __VA_ARGS__)
#define log_debug(src, ...) LOG_AT(LOG_DEBUG, src, __VA_ARGS__)

/* A line with ids: log_event(LOG_INFO, "deploy", LOG_IDS(...), fmt, ...). */
#define log_event(lvl, src, ids, ...)                                         \
	do {                                                                  \
		if ((lvl) <= log_current_level)                               \
			log_write_ids((lvl), (src), (ids), __VA_ARGS__);      \
	} while (0)

#endif
