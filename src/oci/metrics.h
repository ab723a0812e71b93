/*
 * metrics.h - CpuUtilization and MemoryUtilization of OCI model
 * deployments, from OCI Monitoring, for display.
 *
 * The deployments to watch are those the oci backend has read (tracked
 * with their compartment and lifecycle state). Once per period, for each
 * compartment and region, one SummarizeMetricsData call per metric covers
 * all its deployments: namespace oci_datascience_modeldeploy, query
 * "CpuUtilization[1m]{resourceId =~ \"A|B\"}.mean()" over the last five
 * minutes; the newest datapoint of each deployment is kept.
 */
#ifndef MDS_OCI_METRICS_H
#define MDS_OCI_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct oci_client;
struct oci_metrics;

/* At most this many deployments are watched; more are not tracked. */
#define OCI_METRICS_MAX 256

/*
 * Starts watching with client (borrowed). region is for deployments whose
 * OCID has none; endpoint (may be NULL) replaces every region's
 * Monitoring endpoint. period_ms 0 means 60000. Returns a new watcher;
 * oci_metrics_close frees it.
 */
struct oci_metrics *oci_metrics_new(uv_loop_t *loop, struct oci_client *client,
				    const char *region, const char *endpoint,
				    uint32_t period_ms);

/* Tracks (or updates) deployment id: its compartment and state. Copies
 * the strings. Returns 0 or MDS_E_LIMIT past OCI_METRICS_MAX. */
int oci_metrics_track(struct oci_metrics *m, const char *id,
		      const char *compartment, const char *state);

/* Stops tracking id. */
void oci_metrics_forget(struct oci_metrics *m, const char *id);

/* The last values of id (percent; -1 for a metric with no datapoint yet).
 * Returns 0, or MDS_E_NOTFOUND when id is not tracked or has no value. */
int oci_metrics_get(struct oci_metrics *m, const char *id, double *cpu,
		    double *mem);

/* The last lifecycle state of id. Returns 0 or MDS_E_NOTFOUND. */
int oci_metrics_state(struct oci_metrics *m, const char *id, char *out,
		      size_t outsz);

/* Runs one fetch now (for tests and at start-up); no-op while one runs. */
void oci_metrics_fetch(struct oci_metrics *m);

/* Returns how many SummarizeMetricsData calls have completed. */
uint64_t oci_metrics_calls(const struct oci_metrics *m);

/* Cancels what is pending and frees m once its handles closed, then calls
 * done(arg) (may be NULL). NULL m: done runs at once. */
void oci_metrics_close(struct oci_metrics *m, void (*done)(void *arg),
		       void *arg);

#endif
