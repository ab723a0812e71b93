/*
 * monitoring.h - the monitoring module: metrics in, alarms out.
 *
 * Samples every instance's usage through the deployments' backends
 * (CpuUtilization, MemoryUtilization) and
 * the gateway's requests (PredictRequestCount, PredictLatency,
 * PredictResponse, PredictInFlight) into the core metrics store
 * (core/tsdb.h), takes metrics posted in OCI's PostMetricData shape,
 * answers MQL queries, and evaluates alarms (core/alarm.h) on a tick.
 * Every alarm transition becomes an OCI-format alarm message, recorded in
 * the alarm's history and handed to the publisher (the notifications
 * module) for each destination topic. Alarms and their histories are
 * durable; the metrics store is saved to DATA/metrics.snap periodically and
 * at close, and loaded at start.
 */
#ifndef MDS_MONITORING_H
#define MDS_MONITORING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/alarm.h"
#include "core/mql.h"
#include "core/tsdb.h"
#include "util/fault.h"

struct monitoring;
struct store;
struct cgroup_sys;
struct gateway;
struct deploy;

/* The namespace of the metrics mdscale emits itself. */
#define MONITORING_NAMESPACE "oci_datascience_modeldeploy"

/*
 * Hands one alarm message to one destination topic. message is the JSON
 * text (owned by the caller, valid during the call). Returns 0 once the
 * message is durably queued, or a negative MDS_E_* (the message is then
 * kept in the alarm's history with the failure).
 */
typedef int monitoring_publish_fn(void *arg, const char *topic_id,
				  const char *alarm_id,
				  const char *dedupe_key,
				  const char *message);

/* Whether a topic id exists (for validating alarm destinations). */
typedef int monitoring_topic_exists_fn(void *arg, const char *topic_id);

struct monitoring_env {
	uv_loop_t *loop;
	struct store *store;
	struct cgroup_sys *cgroups;
	struct gateway *gateway;
	struct deploy *deploy;
	const char *data_dir;
	const char *api_url;  /* for alarmUrl in messages */
	uint32_t sample_ms;   /* instance sampling period, >= 100 */
	uint32_t eval_ms;     /* alarm evaluation period, >= 100 */
	/* What POST /v1/metrics may fill the store to (series, bytes of
	 * interned strings); 0: 100,000 and 512 MiB. The daemon's own
	 * metrics are not refused past them. */
	size_t max_series;
	size_t max_string_bytes;
};

/* Opens the module: loads alarms and the metrics snapshot, starts the
 * sampling and evaluation timers. The caller closes it. */
int monitoring_open(const struct monitoring_env *env, struct monitoring **out,
		    char *diag, size_t diagsz);

/* Takes a last sample of the instances and of the gateway's requests and
 * writes it to the metrics log (a failure is logged), then frees the
 * module. The owner stops the gateway first (gateway_stop()), so that the
 * sample has every request it answered. */
void monitoring_close(struct monitoring *m);

/* Sets where alarm messages go, and how destinations are checked. */
void monitoring_set_publisher(struct monitoring *m, monitoring_publish_fn *fn,
			      monitoring_topic_exists_fn *exists, void *arg);

/* ---- posted metrics (POST /v1/metrics, OCI's PostMetricData) ---- */

#define MONITORING_POST_MAX_ITEMS 50
#define MONITORING_POST_MAX_DATAPOINTS 10000
/* Default limits of what posts may fill the store to (monitoring_env). */
#define MONITORING_MAX_SERIES 100000
#define MONITORING_MAX_STRING_BYTES ((size_t)512 << 20)

/* One datapoint of a posted item. */
struct monitoring_point {
	int64_t t_ms;
	double value;
};

/*
 * One metricData item as the edge read it; everything borrowed for the
 * call. The edge checks the shape (fields, types); the module checks the
 * rest (names, the time window) and says why it refuses the item in why.
 */
struct monitoring_item {
	const char *namespace, *name;
	struct tsdb_dim dims[TSDB_MAX_DIMS];
	size_t ndims;
	const struct monitoring_point *points;
	size_t npoints;
	char why[512]; /* "" while accepted; the edge may fill it first */
};

/*
 * Stores the items that are valid (each whole or not at all) and fills the
 * why of the others; with atomic, one refused item refuses the batch and
 * nothing is stored. Returns 0 with *nfailed the items refused, or a
 * negative code with f filled when the whole batch is refused (too many
 * items or datapoints, or new series that would take the store past the
 * env's max_series or max_string_bytes: MDS_E_LIMIT; atomic: MDS_E_INVAL;
 * the log cannot be written: MDS_E_NOSPACE, MDS_E_IO).
 */
int monitoring_post(struct monitoring *m, struct monitoring_item *items,
		    size_t nitems, bool atomic, size_t *nfailed,
		    struct fault *f);

/* ---- queries (POST /v1/metrics/query) ---- */

/* A query as the edge read it; NULL or 0 members take their defaults. */
struct monitoring_query {
	const char *query;      /* MQL text; required */
	const char *namespace;  /* NULL: MONITORING_NAMESPACE */
	bool has_start, has_end;
	int64_t start_ms, end_ms; /* default: the hour before now */
	int64_t resolution_ms;  /* 0: the query's interval, at most 1 min */
};

/* One series of a query's result; borrowed for the call of the callback.
 * points lists every step, present or not. */
struct monitoring_series {
	const char *namespace, *name;
	const struct tsdb_dim *dims;
	size_t ndims;
	const struct mql_point *points;
	size_t npoints;
	bool condition_met; /* the query has a condition (and it holds) */
};

typedef void monitoring_series_fn(void *arg,
				  const struct monitoring_series *s);

/* Queries under way at once, at most; one more is refused (503). */
#define MONITORING_QUERIES_MAX 32

struct monitoring_query_job;

/* Called once a query's work ends: its series were all given, it failed,
 * or it was ended early (the module closes, live said so); j is freed
 * when it returns. */
typedef void monitoring_query_done_fn(void *arg,
				      struct monitoring_query_job *j);
/* Asked each turn before a query is worked on: false ends it at once
 * (its done is called, the work freed), e.g. when the caller's token was
 * revoked meanwhile. */
typedef bool monitoring_query_live_fn(void *arg);

/*
 * Starts a query. It is evaluated across turns of the loop, all queries
 * under way together taking about 2 ms of a turn, so that a query over
 * every series never holds the loop; then series(arg, s) is called for
 * every series of the result, in order (with a condition, only those
 * where it holds at the last step), a few at a time across turns too;
 * then done(arg, j). live (may be NULL) is asked before each turn's work.
 * Returns 0 with *out set (for monitoring_query_cancel() until done), or
 * a negative code with f filled and nothing called: a bad query,
 * namespace or range, the store still loading, or MONITORING_QUERIES_MAX
 * under way (MDS_E_UNAVAIL).
 */
int monitoring_query_start(struct monitoring *m,
			   const struct monitoring_query *q,
			   monitoring_query_live_fn *live,
			   monitoring_series_fn *series,
			   monitoring_query_done_fn *done, void *arg,
			   struct monitoring_query_job **out, struct fault *f);

/*
 * From done: returns 0 if every series of the result was given, or a
 * negative code with f filled (the series given, if any, are not the
 * whole answer): too many streams or points (before any), or the query
 * was ended early (MDS_E_UNAVAIL: the module closed, or live said so).
 */
int monitoring_query_result(struct monitoring_query_job *j,
			    struct fault *f);

/* Drops a query before its done is called (its client went away): the
 * work stops and is freed now. NULL is fine. */
void monitoring_query_cancel(struct monitoring_query_job *j);

/* ---- alarms, in OCI's shape (see docs/api.md) ---- */

/* The fields of an alarm spec; a spec sets those in its given mask. */
enum {
	MONITORING_ALARM_DISPLAY_NAME = 1u << 0,
	MONITORING_ALARM_NAMESPACE = 1u << 1,
	MONITORING_ALARM_QUERY = 1u << 2,
	MONITORING_ALARM_SEVERITY = 1u << 3,
	MONITORING_ALARM_PENDING = 1u << 4,
	MONITORING_ALARM_REPEAT = 1u << 5,
	MONITORING_ALARM_DESTINATIONS = 1u << 6,
	MONITORING_ALARM_BODY = 1u << 7,
	MONITORING_ALARM_FORMAT = 1u << 8,
	MONITORING_ALARM_ENABLED = 1u << 9,
	MONITORING_ALARM_COMPARTMENT = 1u << 10,
	MONITORING_ALARM_METRIC_COMPARTMENT = 1u << 11,
	MONITORING_ALARM_TITLE = 1u << 12,
	MONITORING_ALARM_PER_DIMENSION = 1u << 13,
	MONITORING_ALARM_VERSION = 1u << 14,
	MONITORING_ALARM_RESOLUTION = 1u << 15,
	MONITORING_ALARM_SLACK = 1u << 16,
	MONITORING_ALARM_SUPPRESSION = 1u << 17,
	MONITORING_ALARM_RESOURCE_GROUP = 1u << 18,
};

/*
 * What a POST or PUT body (or the autoscale function) sets of an alarm.
 * Strings are borrowed for the call. A member counts only when its bit is
 * in given; a nullable member given as null is given as NULL (or 0).
 */
struct monitoring_alarm_spec {
	unsigned given;
	const char *display_name, *namespace, *query;
	enum alarm_severity severity;
	int64_t pending_ms;
	int64_t repeat_ms; /* 0: no repeats */
	const char *const *destinations;
	size_t ndestinations;
	const char *body; /* NULL: none */
	enum alarm_format message_format;
	bool is_enabled;
	const char *compartment_id, *metric_compartment_id; /* NULL: none */
	const char *notification_title; /* NULL: the displayName */
	bool per_dimension;
	enum alarm_version version;
	int64_t reset_ms;               /* evaluationSlackDuration */
	bool has_suppression;           /* false: given as null (none) */
	int64_t suppress_from_ms, suppress_until_ms;
	const char *suppress_description; /* NULL: none */
	const char *resource_group;     /* NULL: none */
	bool check_only;  /* create and update only check it (a dry run) */
};

/* An alarm as the API shows it (and the store keeps it). Borrowed: valid
 * until alarms change. */
struct monitoring_alarm {
	const char *id, *display_name, *namespace, *query;
	const char *compartment_id, *metric_compartment_id; /* NULL: none */
	enum alarm_severity severity;
	int64_t pending_ms, repeat_ms; /* repeat 0: none */
	const char *const *destinations;
	size_t ndestinations;
	const char *body; /* NULL: none */
	enum alarm_format message_format;
	bool is_enabled;
	int64_t created_ms, updated_ms;
	const char *notification_title; /* NULL: none */
	bool per_dimension;
	enum alarm_version version;
	int64_t reset_ms;
	int64_t suppress_from_ms, suppress_until_ms; /* until 0: none */
	const char *suppress_description; /* NULL: none */
	const char *resource_group;     /* NULL: none */
};

/*
 * Creates an alarm from spec (displayName and query are required, the
 * rest gets its defaults), or changes the given fields of alarm id. With
 * spec->check_only, only checks it: 0 (out untouched) or the same refusal,
 * and nothing changes. On success *out shows the alarm; on refusal f is
 * filled and nothing
 * changed.
 *
 * A create or a delete called inside a transaction of the caller's
 * (store_begin() on the module's store) takes effect with it: the alarm
 * is evaluated (or stops being) once that transaction commits, and never
 * when it is rolled back or its commit fails. Until then a created alarm
 * is not listed, and *out borrows it only until the transaction ends.
 */
int monitoring_alarm_create(struct monitoring *m,
			    const struct monitoring_alarm_spec *spec,
			    struct monitoring_alarm *out, struct fault *f);
int monitoring_alarm_update(struct monitoring *m, const char *id,
			    const struct monitoring_alarm_spec *spec,
			    struct monitoring_alarm *out, struct fault *f);
int monitoring_alarm_delete(struct monitoring *m, const char *id,
			    struct fault *f);
/* Fills *out with alarm id; MDS_E_NOTFOUND (f filled) if there is none. */
int monitoring_alarm_get(struct monitoring *m, const char *id,
			 struct monitoring_alarm *out, struct fault *f);

/* What /metrics, `mdscale top` and GET .../status show of one alarm's
 * state; borrowed for a call. */
struct monitoring_alarm_summary {
	const char *id, *display_name, *severity;
	bool firing;           /* the alarm's status is FIRING */
	size_t streams_firing; /* its streams (dimension sets) FIRING */
};

typedef void monitoring_alarm_fn(void *arg,
				 const struct monitoring_alarm *a,
				 const struct monitoring_alarm_summary *s);

/* Calls fn for every alarm, in creation order, or only for those named
 * display_name when it is not NULL; fn must not change alarms. */
void monitoring_alarm_list(struct monitoring *m, const char *display_name,
			   monitoring_alarm_fn *fn, void *arg);

/* Calls fn for every alarm, in creation order; fn must not change alarms. */
void monitoring_alarm_each(struct monitoring *m,
			   void (*fn)(void *arg,
				      const struct monitoring_alarm_summary *s),
			   void *arg);

/* An alarm's state (GET /v1/alarms/{id}/status); borrowed for a call. */
struct monitoring_alarm_status {
	struct monitoring_alarm alarm;
	enum alarm_status status;
	int64_t triggered_ms;     /* the last OK_TO_FIRING while FIRING; 0 */
	int64_t evaluated_ms;     /* the last evaluation; 0: none */
	const char *dedupe_key;   /* "" while OK */
	size_t total_firing;
	bool suppressed;          /* its suppression covers now */
	const struct alarm_state *state; /* its streams: alarm_state_stream() */
};

/* Fills *out with the state of alarm id; MDS_E_NOTFOUND (f filled). */
int monitoring_alarm_status(struct monitoring *m, const char *id,
			    struct monitoring_alarm_status *out,
			    struct fault *f);

/* Calls fn with each of the newest limit (1 to 1000) transitions of alarm
 * id, oldest first: each a history record, JSON text as the store keeps it
 * (borrowed for the call). Past 4 MiB of records the older ones are left
 * out (the newest always goes), and *truncated is set. Returns 0,
 * MDS_E_NOTFOUND, MDS_E_INVAL for the limit, or the store's error; f
 * filled on error. */
int monitoring_alarm_history(struct monitoring *m, const char *id,
			     size_t limit,
			     void (*fn)(void *arg, const char *record),
			     void *arg, bool *truncated, struct fault *f);

/*
 * Finds an alarm by displayName whose query watches resource_id (its
 * resourceId filter). Copies its id into id (idsz bytes) and returns 0, or
 * MDS_E_NOTFOUND.
 */
int monitoring_alarm_find(struct monitoring *m, const char *display_name,
			  const char *resource_id, char *id, size_t idsz);
/* As monitoring_alarm_find(), passing over every alarm whose id
 * skip(arg, id) is true for. */
int monitoring_alarm_find_other(struct monitoring *m,
				const char *display_name,
				const char *resource_id,
				bool (*skip)(void *arg, const char *id),
				void *arg, char *id, size_t idsz);

/* The newest value of a metric of one resource over the last window_ms,
 * aggregated with max over its instances; MDS_E_NOTFOUND without data. */
int monitoring_latest(struct monitoring *m, const char *metric,
		      const char *resource_id, int64_t window_ms,
		      double *value);

/* The same for one instance (its instanceId dimension). */
int monitoring_latest_instance(struct monitoring *m, const char *metric,
			       const char *instance_id, int64_t window_ms,
			       double *value);

/* What the metrics store costs: its series, the bytes of memory it holds
 * (tsdb_memory), of its interned strings, and of its log. */
struct monitoring_store_stats {
	size_t series, memory_bytes, string_bytes;
	size_t max_series, max_string_bytes; /* what posts may fill it to */
	uint64_t log_bytes;
	int loading;      /* the log is still being replayed */
	uint64_t load_ns; /* how long the replay took (so far) */
};

/* Fills st; never fails. */
void monitoring_store_stats(const struct monitoring *m,
			    struct monitoring_store_stats *st);

#endif
