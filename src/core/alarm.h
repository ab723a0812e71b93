/*
 * alarm.h - alarm definitions, the per-alarm state machine, and the OCI
 * alarm message.
 *
 * An alarm evaluates its MQL query on a tick. Each result stream (a set of
 * dimension values) moves OK -> PENDING when the condition starts to hold,
 * PENDING -> FIRING once it has held for pending_ms, and back to OK as soon
 * as its data shows the condition does not hold. A FIRING stream with no
 * data in the window goes back to OK at once under message version 1.3;
 * under 1.5 it stays FIRING until it has had no data for reset_ms, then
 * resets (a RESET event). absent() streams are defined by missing data and
 * are not held. The alarm is FIRING while at least one stream fires.
 *
 * Grouped (the default), the alarm reports its own transitions: one
 * OK_TO_FIRING, REPEAT every repeat_ms while FIRING, FIRING_TO_OK, and a
 * RESET for the streams that reset. Per dimension (OCI's
 * isNotificationsPerMetricDimensionEnabled), every stream reports its own:
 * one event per stream and transition, each with the stream's own dedupe
 * key and repeat schedule.
 *
 * Pure: time comes in as an argument, nothing is read or sent; the shell
 * turns events into messages with alarm_message_json() and asks
 * alarm_def_suppressed() whether to send them.
 */
#ifndef MDS_ALARM_H
#define MDS_ALARM_H

#include <stddef.h>
#include <stdint.h>

#include "core/mql.h"
#include "core/tsdb.h"
#include "util/buf.h"

#define ALARM_MAX_STR 255           /* id, display name, namespace */
#define ALARM_MAX_BODY 1000         /* bytes of body, as in OCI */
#define ALARM_MAX_DESTINATIONS 16
#define ALARM_MAX_PENDING_MS 86400000LL
#define ALARM_MIN_REPEAT_MS 1000LL
#define ALARM_MAX_REPEAT_MS (30LL * 86400000LL) /* P30D, as in OCI */
#define ALARM_DEFAULT_RESET_MS 180000LL         /* PT3M */
/* How far short of a duration a pass may be and still end it (the wall
 * clock's jitter between passes; well under the 100-ms shortest period). */
#define ALARM_CLOCK_SLACK_MS 20
#define ALARM_EVENT_MAX_STREAMS 100 /* streams detailed in one event */
#define ALARM_DEDUPE_KEY_LEN 36

enum alarm_severity {
	ALARM_CRITICAL,
	ALARM_ERROR,
	ALARM_WARNING,
	ALARM_INFO,
};

enum alarm_format {
	ALARM_FORMAT_RAW,
	ALARM_FORMAT_PRETTY_JSON,
	ALARM_FORMAT_ONS_OPTIMIZED,
};

/* The alarm message format version (OCI's notificationVersion). */
enum alarm_version {
	ALARM_VERSION_1_3,
	ALARM_VERSION_1_5,
};

enum alarm_status {
	ALARM_OK,
	ALARM_PENDING, /* streams only */
	ALARM_FIRING,
};

enum alarm_event_type {
	ALARM_OK_TO_FIRING,
	ALARM_FIRING_TO_OK,
	ALARM_REPEAT,
	ALARM_RESET,
};

/* Names as in OCI ("CRITICAL", "PRETTY_JSON", "FIRING", "OK_TO_FIRING"). */
const char *alarm_severity_name(enum alarm_severity sev);
const char *alarm_format_name(enum alarm_format fmt);
const char *alarm_status_name(enum alarm_status status);
const char *alarm_event_type_name(enum alarm_event_type type);
/* "1.3" or "1.5". */
const char *alarm_version_name(enum alarm_version v);
/* Parse those names (exact, upper case); return 0 or MDS_E_INVAL. */
int alarm_severity_parse(const char *name, enum alarm_severity *out);
int alarm_format_parse(const char *name, enum alarm_format *out);
/* "1.3", "1.5", or OCI's "1.X" (the newest 1.x: 1.5). */
int alarm_version_parse(const char *name, enum alarm_version *out);

/*
 * An alarm definition. Every pointer is owned by the definition and freed by
 * alarm_def_clear(); set strings with xstrdup(), the query with
 * alarm_def_set_query() and destinations with alarm_def_add_destination().
 */
struct alarm_def {
	char *id;
	char *display_name;       /* the message title */
	char *namespace;
	char *query_text;
	struct mql_query *query;  /* parsed query_text */
	enum alarm_severity severity;
	int64_t pending_ms;       /* trigger delay */
	int64_t repeat_ms;        /* 0: no repeat */
	char *body;               /* NULL: none */
	enum alarm_format message_format;
	int is_enabled;
	char **destinations;      /* topic ids */
	size_t ndestinations;
	char *notification_title; /* NULL: the display name is the title */
	int per_dimension;        /* one message per stream */
	enum alarm_version version;
	int64_t reset_ms;         /* 1.5: no data this long resets a stream */
	/* Suppression: no notifications in [from, until); until 0: none. */
	int64_t suppress_from_ms, suppress_until_ms;
	char *suppress_description; /* NULL: none */
	char *resource_group;     /* NULL: none; set it before the query */
};

/* Empties def: no strings, severity CRITICAL, RAW format, enabled,
 * version 1.3, grouped, reset after ALARM_DEFAULT_RESET_MS. */
void alarm_def_init(struct alarm_def *def);
/* Frees what def owns and re-initializes it. NULL is fine. */
void alarm_def_clear(struct alarm_def *def);

/*
 * Parses text and, on success, makes it def's query (replacing the old
 * one). Returns 0 or mql_parse()'s errors with diag; def is unchanged on
 * error.
 */
int alarm_def_set_query(struct alarm_def *def, const char *text, char *diag,
			size_t diagsz);

/*
 * Makes group (NULL: none) def's resource group: its query then sees only
 * metrics whose resourceGroup dimension is group. Set it before
 * alarm_def_set_query(), or set the query again after. Returns 0.
 */
int alarm_def_set_resource_group(struct alarm_def *def, const char *group);

/* Appends a copy of topic_id. Returns 0 or MDS_E_LIMIT with diag. */
int alarm_def_add_destination(struct alarm_def *def, const char *topic_id,
			      char *diag, size_t diagsz);

/*
 * Checks that def is complete and in range: id, display name and namespace
 * of 1..255 bytes, a query, pending_ms in [0, 1 day], repeat_ms 0 or in
 * [1 s, 30 days], a body of at most 1000 bytes, a notification title of
 * 1..255 bytes when set, reset_ms of at least 1 s, a suppression whose end
 * is after its start. Returns 0 or MDS_E_INVAL with the field name in diag.
 */
int alarm_def_validate(const struct alarm_def *def, char *diag,
		       size_t diagsz);

/* Returns 1 if def's suppression covers now_ms (from <= now < until). */
int alarm_def_suppressed(const struct alarm_def *def, int64_t now_ms);

/* One stream of an event: owned copies of its dimensions, its value. */
struct alarm_stream {
	struct tsdb_dim *dims; /* owned, with owned strings */
	size_t ndims;
	double value;
	int has_value;         /* 0 for a stream that reset (no data) */
	int64_t t;
};

struct alarm_event {
	enum alarm_event_type type;
	int64_t t_ms;
	enum alarm_status status; /* of the alarm after the event */
	char dedupe_key[ALARM_DEDUPE_KEY_LEN + 1];
	size_t total_firing;      /* streams firing after the event */
	int per_stream;           /* a per-dimension event: one stream */
	/* The firing streams (OK_TO_FIRING, REPEAT), those that just
	 * cleared (FIRING_TO_OK) or reset (RESET), at most
	 * ALARM_EVENT_MAX_STREAMS. */
	struct alarm_stream *streams;
	size_t nstreams;
};

/* A list of events; alarm_eval() appends to it. */
struct alarm_events {
	struct alarm_event *v;
	size_t n, cap;
};

void alarm_events_init(struct alarm_events *ev);
/* Frees the events' contents and empties the list, keeping its array. */
void alarm_events_reset(struct alarm_events *ev);
/* Frees everything. NULL is fine. */
void alarm_events_free(struct alarm_events *ev);

/* What the state machine knows about one stream. */
struct alarm_stream_status {
	const struct tsdb_dim *dims; /* owned by the state */
	size_t ndims;
	enum alarm_status status;    /* PENDING or FIRING */
	int64_t since_ms;            /* when the condition started to hold */
	double value;                /* at the last evaluation */
};

struct alarm_state;

/* Returns a new state: OK, no streams. Free it with alarm_state_free(). */
struct alarm_state *alarm_state_new(void);
/* NULL is fine. */
void alarm_state_free(struct alarm_state *st);
/*
 * Makes st evaluate its query into scratch instead of a result of its own
 * (freed then): states evaluated one after another can share one, so that
 * the memory of a result of many streams is allocated and touched once,
 * not once per alarm (a first evaluation into new memory of 100,000
 * streams costs several times a later one). The caller owns scratch and
 * keeps it until alarm_state_free(st); st only uses it in alarm_eval().
 */
void alarm_state_share_result(struct alarm_state *st,
			      struct mql_result *scratch);
/* Back to OK without events, e.g. after the definition's query changed. */
void alarm_state_reset(struct alarm_state *st);
/* Abandons a pass under way (alarm_eval_part()), e.g. when the definition
 * it borrows is replaced; the next call starts a new one. */
void alarm_state_end_pass(struct alarm_state *st);
/* Returns ALARM_OK or ALARM_FIRING. */
enum alarm_status alarm_state_status(const struct alarm_state *st);
/* Returns the number of streams FIRING. */
size_t alarm_state_firing(const struct alarm_state *st);
/* Returns the number of streams tracked (PENDING or FIRING). */
size_t alarm_state_nstreams(const struct alarm_state *st);
/* Returns tracked stream i (< alarm_state_nstreams()); owned by st. */
const struct alarm_stream_status *alarm_state_stream(
	const struct alarm_state *st, size_t i);
/* Returns the dedupe key of the current (or last) firing episode, or "". */
const char *alarm_state_dedupe_key(const struct alarm_state *st);

/*
 * Evaluates def once at now_ms against db and appends the resulting
 * events, if any, to out: grouped, at most a RESET then one of
 * OK_TO_FIRING, FIRING_TO_OK or REPEAT; per dimension, one per stream that
 * changed or repeats. A disabled alarm goes back to OK silently and
 * produces nothing. The state
 * must only ever be used with the one definition; reset it when the query
 * changes. Returns 0; MDS_E_INVAL if def has no query; MDS_E_LIMIT from
 * mql_eval().
 */
int alarm_eval(struct alarm_state *st, const struct alarm_def *def,
	       const struct tsdb *db, int64_t now_ms,
	       struct alarm_events *out);

/*
 * alarm_eval() in parts, so that a pass over many series need not run in
 * one go: each call evaluates at most max_series more series of a query
 * that makes each series its own stream, or about as much work of any
 * other query (mql_eval_part(); def is borrowed until the pass ends, or
 * alarm_state_end_pass()) and sets *more while some remain; the call that ends the pass
 * decides each tracked stream's fate and appends the events. Every call
 * of a pass gives the same now_ms: a call with another one abandons the
 * pass under way and starts a new one, as alarm_state_reset() abandons it.
 * alarm_eval() is one call with no limit.
 */
int alarm_eval_part(struct alarm_state *st, const struct alarm_def *def,
		    const struct tsdb *db, int64_t now_ms, size_t max_series,
		    struct alarm_events *out, int *more);

/*
 * Appends the OCI alarm message for ev to out (whose cap bounds it), in
 * def's version. 1.3: dedupeKey, title, body, type, severity,
 * timestampEpochMillis, timestamp, alarmMetaData[{id, status, severity,
 * namespace, query, totalMetricsFiring, dimensions[], alarmUrl}], version.
 * 1.5 adds alarmSummary and metricValues[] (one {"<query without its
 * condition>": "<value>"} per stream with a value, in the order of
 * dimensions) to the metadata and notificationType before version. The
 * title is def's notification title, else its display name. Indented when
 * def's message format is PRETTY_JSON, compact otherwise. alarm_url may be
 * NULL (written as ""). Returns 0; MDS_E_LIMIT if out's cap is reached (out
 * then holds a truncated prefix).
 */
int alarm_message_json(const struct alarm_def *def,
		       const struct alarm_event *ev, const char *alarm_url,
		       struct buf *out);

#endif
