/*
 * k8s_target.h - what mdscale knows of one Kubernetes Deployment: the
 * Deployment itself and its pods, kept current by list-then-watch, and the
 * pods' CPU and memory from metrics.k8s.io.
 *
 * Each of the two kinds (the Deployment, its pods) is listed once, then
 * watched from the list's resourceVersion. A watch that the server ends is
 * reopened from the last resourceVersion seen; one that answers 410 Gone
 * (or an ERROR event with a 410 Status) is dropped and the kind listed
 * again; a failure waits (1 s doubling to 30 s) before trying again.
 * PodMetrics are fetched every metrics_ms and divided by each container's
 * limits, so utilization means what it means for the local backend.
 */
#ifndef MDS_K8S_TARGET_H
#define MDS_K8S_TARGET_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

struct k8s_client;
struct k8s_target;

struct k8s_target_env {
	uv_loop_t *loop;
	struct k8s_client *client;  /* borrowed; outlives the target */
	uint32_t metrics_ms;        /* 0: 15000 */
	uint32_t watch_timeout_s;   /* timeoutSeconds of a watch; 0: 300 */
	const char *container;      /* the model's container; NULL: the
				       first of each pod */
	/* Told after the Deployment or a pod changed (on the loop). */
	void (*changed)(void *arg, struct k8s_target *t);
	void *arg;
};

/* Counters, for tests and logs. */
struct k8s_target_stats {
	unsigned lists;    /* list calls answered (both kinds) */
	unsigned watches;  /* watch streams opened */
	unsigned relists;  /* lists after a 410 */
	unsigned resumes;  /* watches reopened from a resourceVersion */
	unsigned metrics;  /* PodMetrics lists answered */
};

/*
 * Starts following namespace/name. Returns 0 and the target in *out (free
 * with k8s_target_close), or MDS_E_INVAL.
 */
int k8s_target_new(const struct k8s_target_env *env, const char *ns,
		   const char *name, struct k8s_target **out);

/* The Deployment as last seen (borrowed), or NULL before the first list
 * answered or when it does not exist. */
json_t *k8s_target_deployment(const struct k8s_target *t);

/* Calls fn for every pod as last seen (pod borrowed). */
void k8s_target_each_pod(const struct k8s_target *t,
			 void (*fn)(void *arg, json_t *pod), void *arg);

/*
 * The last utilization of pod: CPU and memory used over the container's
 * limits, in percent (-1 where it has no limit). Returns 0, or
 * MDS_E_NOTFOUND when nothing was measured for it yet.
 */
int k8s_target_usage(const struct k8s_target *t, const char *pod,
		     double *cpu_percent, double *mem_percent);

/* Counters since the start. */
struct k8s_target_stats k8s_target_stats(const struct k8s_target *t);

/* The last error seen while following it ("" none); owned by t. */
const char *k8s_target_error(const struct k8s_target *t);

/* Whether the first lists of both kinds have been answered. */
int k8s_target_synced(const struct k8s_target *t);

/* Stops watching and frees t once its calls have ended; done(arg) then
 * runs (may be NULL). */
void k8s_target_close(struct k8s_target *t, void (*done)(void *arg),
		      void *arg);

#endif
