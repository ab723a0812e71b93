/*
 * deploy.h - model deployments and the work requests that change them.
 *
 * The deployments module keeps every deployment in memory and in the store,
 * runs each create, update and delete as a durable work request (the steps
 * of core/planner.h, persisted one by one), and runs the instances through
 * the local backend: processes in cgroups, readiness by HTTP, restarts with
 * backoff, routing pushed to the gateway. After a crash, deploy_open()
 * finds the instances that outlived the daemon, restarts the ones that did
 * not, and resumes unfinished work requests.
 *
 * Requests and answers are JSON (jansson) in the REST API's shapes (see
 * docs/api.md); refusals fill a struct fault.
 */
#ifndef MDS_DEPLOY_H
#define MDS_DEPLOY_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/config.h"
#include "util/fault.h"

struct deploy;
struct store;
struct cgroup_sys;
struct httpc;
struct gateway;

/* What the module runs on; all borrowed, and must outlive the module. */
struct deploy_env {
	uv_loop_t *loop;
	struct store *store;
	struct cgroup_sys *cgroups;
	struct httpc *httpc;
	struct gateway *gateway;
	const struct config *config;
	const char *data_dir;    /* instance output goes to data_dir/instances:
				    ID.out.log (stdout), ID.err.log (stderr) */
	const char *self_exe;    /* this binary, for `mdscale __instance` */
	const char *gateway_url; /* for the deployments' "endpoint" */
	/* Optional: told of every instance whose output files may be
	 * written, at load and before each start (the files exist then), so
	 * that logging can follow them. */
	void (*instance_output)(void *arg, const char *deployment_id,
				const char *instance_id);
	void *instance_output_arg;
};

/*
 * Loads the deployments from the store, adopts or restarts their instances
 * and resumes unfinished work requests. Returns 0 and the module in *out,
 * or a negative MDS_E_* with detail in diag.
 */
int deploy_open(const struct deploy_env *env, struct deploy **out,
		char *diag, size_t diagsz);

/*
 * Stops every instance (SIGTERM, then SIGKILL after the grace period),
 * leaving the stored state as it is so the next start brings them back;
 * frees the module when all have exited, then calls done(arg).
 */
void deploy_close(struct deploy *d, void (*done)(void *arg), void *arg);

/*
 * Creates a deployment from a POST body. Returns 0 with the new deployment
 * in *out (the caller owns the reference), or a negative code with f
 * filled. Nothing changes on failure.
 */
int deploy_create(struct deploy *d, json_t *spec, json_t **out,
		  struct fault *f);

/* Lists live deployments (name NULL: all) as {"items": [...]}. */
json_t *deploy_list(struct deploy *d, const char *name);

/* Returns the deployment by id or displayName, or NULL (f filled). */
json_t *deploy_get(struct deploy *d, const char *id, struct fault *f);

/*
 * Starts an update from a PUT body (instanceCount and/or
 * instanceShapeName). Returns 0 with the work request in *out, or with *out
 * NULL when nothing needs to change; or a negative code with f filled.
 */
int deploy_update(struct deploy *d, const char *id, json_t *spec,
		  json_t **out, struct fault *f);

/* Starts the deletion; returns 0 with the work request in *out. */
int deploy_delete(struct deploy *d, const char *id, json_t **out,
		  struct fault *f);

/* Returns a work request, or NULL (f filled). */
json_t *deploy_workrequest(struct deploy *d, const char *id, struct fault *f);

/* Lists the work requests of one deployment (or all), newest first. */
json_t *deploy_workrequests(struct deploy *d, const char *deployment_id);

/*
 * Calls fn for each operation (CREATE_, UPDATE_, DELETE_DEPLOYMENT) and
 * final status (SUCCEEDED, FAILED) with the number of work requests that
 * ended that way since the module opened: a counter that only grows.
 * Strings are static.
 */
void deploy_each_ended(struct deploy *d,
		       void (*fn)(void *arg, const char *operation,
				  const char *status, uint64_t n),
		       void *arg);

/* One running instance, as monitoring sees it. */
struct deploy_instance_info {
	const char *deployment_id;
	const char *instance_id;
	const char *cgroup;    /* cgroup name, for cgroup_usage() */
	const char *shape;
	int ready;
};

/* Calls fn for every instance that has a process. */
void deploy_each_instance(struct deploy *d,
			  void (*fn)(void *arg,
				     const struct deploy_instance_info *in),
			  void *arg);

#endif
