/*
 * monitoring.h - the monitoring module: metrics in, alarms out.
 *
 * Samples every instance's cgroup (CpuUtilization, MemoryUtilization) and
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

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

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
};

/* Opens the module: loads alarms and the metrics snapshot, starts the
 * sampling and evaluation timers. The caller closes it. */
int monitoring_open(const struct monitoring_env *env, struct monitoring **out,
		    char *diag, size_t diagsz);

/* Saves the metrics snapshot and frees the module. */
void monitoring_close(struct monitoring *m);

/* Sets where alarm messages go, and how destinations are checked. */
void monitoring_set_publisher(struct monitoring *m, monitoring_publish_fn *fn,
			      monitoring_topic_exists_fn *exists, void *arg);

/* POST /v1/metrics: {"metricData": [...]} in OCI's PostMetricData shape.
 * Returns 0 with {"failedMetricsCount": N, "failedMetrics": [...]} in
 * *out (bad items are refused one by one, good ones kept), or a negative
 * code with f filled when the whole batch is refused. */
int monitoring_post(struct monitoring *m, json_t *body, json_t **out,
		    struct fault *f);

/* POST /v1/metrics/query: {"query", "namespace"?, "startTime"?,
 * "endTime"?, "resolution"?}. Returns 0 with {"items": [series...]}. */
int monitoring_query(struct monitoring *m, json_t *body, json_t **out,
		     struct fault *f);

/* Alarms, in OCI's shape (see docs/api.md). The create and update return
 * the alarm in *out; all fill f on refusal and change nothing then. */
int monitoring_alarm_create(struct monitoring *m, json_t *spec, json_t **out,
			    struct fault *f);
int monitoring_alarm_update(struct monitoring *m, const char *id,
			    json_t *spec, json_t **out, struct fault *f);
int monitoring_alarm_delete(struct monitoring *m, const char *id,
			    struct fault *f);
json_t *monitoring_alarm_get(struct monitoring *m, const char *id,
			     struct fault *f);
/* {"items": [...]}, filtered by displayName when it is not NULL. */
json_t *monitoring_alarm_list(struct monitoring *m, const char *display_name);
json_t *monitoring_alarm_status(struct monitoring *m, const char *id,
				struct fault *f);

/* What /metrics and `mdscale top` show of one alarm; borrowed for a call. */
struct monitoring_alarm_summary {
	const char *id, *display_name, *severity;
	bool firing;           /* the alarm's status is FIRING */
	size_t streams_firing; /* its streams (dimension sets) FIRING */
};

/* Calls fn for every alarm, in creation order; fn must not change alarms. */
void monitoring_alarm_each(struct monitoring *m,
			   void (*fn)(void *arg,
				      const struct monitoring_alarm_summary *s),
			   void *arg);
json_t *monitoring_alarm_history(struct monitoring *m, const char *id,
				 struct fault *f);
/* The history ({"items": [...]}, oldest first) limited to the newest limit
 * transitions, 1..1000 (MDS_E_INVAL otherwise); history() uses 100. */
json_t *monitoring_alarm_history_limit(struct monitoring *m, const char *id,
				       size_t limit, struct fault *f);

/*
 * Finds an alarm by displayName whose query watches resource_id (its
 * resourceId filter). Copies its id into id (idsz bytes) and returns 0, or
 * MDS_E_NOTFOUND.
 */
int monitoring_alarm_find(struct monitoring *m, const char *display_name,
			  const char *resource_id, char *id, size_t idsz);

/* The newest value of a metric of one resource over the last window_ms,
 * aggregated with max over its instances; MDS_E_NOTFOUND without data. */
int monitoring_latest(struct monitoring *m, const char *metric,
		      const char *resource_id, int64_t window_ms,
		      double *value);

/* The same for one instance (its instanceId dimension). */
int monitoring_latest_instance(struct monitoring *m, const char *metric,
			       const char *instance_id, int64_t window_ms,
			       double *value);

#endif
