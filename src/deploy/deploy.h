/*
 * deploy.h - model deployments and the work requests that change them.
 *
 * The deployments module keeps every deployment in memory and in the store,
 * runs each create, update and delete as a durable work request, and runs
 * the instances through a backend (backend.h). For a backend whose
 * instances mdscale runs one by one (`local`) a work request is the steps
 * of core/planner.h, persisted one by one; for a backend whose platform
 * changes the count or shape itself it is "apply" then "follow the
 * platform's work request". After a crash, deploy_open() adopts the
 * instances that outlived the daemon, restarts the ones that did not, and
 * resumes unfinished work requests.
 *
 * Other modules change and read deployments through the C structs below;
 * the REST API's JSON shapes live in api/api_deploy.c. Refusals fill a
 * struct fault.
 */
#ifndef MDS_DEPLOY_H
#define MDS_DEPLOY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/config.h"
#include "deploy/backend.h"
#include "util/fault.h"

#define DEPLOY_ID_MAX BACKEND_ID_MAX
#define DEPLOY_NAME_MAX 63          /* displayName */
#define DEPLOY_COMMAND_MAX 16384    /* bytes of one command string */
#define DEPLOY_ARGV_MAX 256         /* strings of a command array */
#define DEPLOY_ENV_MAX 256          /* environment variables */
#define DEPLOY_HEALTH_PATH_MAX 1024
/* Freeform tags, with OCI's limits: at most 64, a key of 1 to 100
 * characters without '.', '=' or white space, a value of at most 256. */
#define DEPLOY_TAGS_MAX 64
#define DEPLOY_TAG_KEY_MAX 100
#define DEPLOY_TAG_VALUE_MAX 256
#define DEPLOY_READY_TIMEOUT_MIN 1
#define DEPLOY_READY_TIMEOUT_MAX 3600
#define DEPLOY_DRAIN_TIMEOUT_MAX 3600

struct deploy;
struct store;
struct gateway;
struct uidpool;

/* A backend the daemon was started without, and why (for the deployments
 * stored on it: see backend_offline.h). */
struct deploy_missing {
	const char *backend; /* ops->name it would have: "kubernetes" */
	const char *why;     /* "no Kubernetes credentials: ..." */
};

/* What the module runs on; all borrowed, and must outlive the module. */
struct deploy_env {
	uv_loop_t *loop;
	struct store *store;
	struct gateway *gateway;
	const struct config *config;
	const char *gateway_url; /* for the deployments' "endpoint" */
	/* The backends, by ops->name; deployments are created on the first.
	 * The module sets each one's events. */
	struct backend *const *backends;
	size_t nbackends;
	/* The backends the daemon does not have, with the reason each is
	 * missing; may be NULL. A stored deployment on a backend neither
	 * here nor in backends is kept all the same, as on an unknown
	 * backend. */
	const struct deploy_missing *missing;
	size_t nmissing;
	uint32_t tick_ms; /* how often waits are checked; 0: 100 */
	/* The uids of instanceUids, shared with user functions and COMMAND
	 * subscriptions (borrowed, outlives the module); NULL: a pool of
	 * the module's own, from config. */
	struct uidpool *uids;
};

/*
 * Loads the deployments from the store, adopts or restarts their instances
 * and resumes unfinished work requests. A deployment whose backend the
 * daemon does not have is kept on an offline backend of the same name
 * (backend_offline.h): listed, readable, its lifecycleDetails saying why,
 * every change refused with MDS_E_UNAVAIL, its work request left as it is
 * until a daemon with the backend starts. Returns 0 and the module in *out,
 * or a negative MDS_E_* with detail in diag.
 */
int deploy_open(const struct deploy_env *env, struct deploy **out,
		char *diag, size_t diagsz);

/*
 * Stops every instance (graceful, then forced after the grace period),
 * leaving the stored state as it is so the next start brings them back;
 * frees the module when all have exited, then calls done(arg) (may be
 * NULL). The backends stay open: their owner closes them after.
 */
void deploy_close(struct deploy *d, void (*done)(void *arg), void *arg);

/*
 * Frees the module at once, leaving every instance running as it is and
 * writing nothing: what a crash leaves behind, for a later deploy_open()
 * to adopt. Calls done(arg) once the module's handles are closed.
 */
void deploy_detach(struct deploy *d, void (*done)(void *arg), void *arg);

/* A new deployment. Every pointer is borrowed for the call only. */
struct deploy_spec {
	const char *name;          /* displayName; required */
	const char *const *argv;   /* the command; required */
	size_t argc;
	bool shell;                /* argv[0] is a line for /bin/sh -c */
	const char *const *env;    /* "NAME=value"; may be NULL */
	size_t nenv;
	const char *const *secret; /* NAMEs of env that are secret; or NULL */
	size_t nsecret;
	const char *health_path;   /* NULL: "/health" */
	const char *shape;         /* NULL: the configured default */
	bool has_count;
	uint32_t count;            /* default 1 */
	bool has_ready_timeout;
	uint32_t ready_timeout_s;  /* default from the config */
	bool has_drain_timeout;
	uint32_t drain_timeout_s;  /* default from the config */
	bool replay_all;           /* replayNonIdempotent: the gateway may
				      replay POST and PATCH too (see
				      gateway_set_replay()); default false */
	const char *const *tags;   /* freeform tags, "KEY=value"; may be NULL */
	size_t ntags;
};

/*
 * Creates a deployment and starts its creation. Returns 0 with the new
 * deployment's id in id and its work request's in wr_id (both
 * DEPLOY_ID_MAX), or a negative code with f filled (MDS_E_INVAL,
 * MDS_E_EXISTS for a taken name, MDS_E_LIMIT). Nothing changes on
 * failure. Inside a caller's store transaction (store_begin()), the
 * deployment is only there if the outermost commit writes it: when it
 * does not, it is forgotten with no step run, and the gateway never
 * learnt its name (it does at the commit).
 */
int deploy_create(struct deploy *d, const struct deploy_spec *spec,
		  char *id, char *wr_id, struct fault *f);

/* Checks spec as deploy_create() would, changing nothing. Returns 0 or
 * the code deploy_create() would return, with f filled. */
int deploy_check(struct deploy *d, const struct deploy_spec *spec,
		 struct fault *f);

/*
 * Starts keeping an existing platform target ref (an OCID,
 * NAMESPACE/NAME) of backend (ops->name, a BACKEND_CAP_PLATFORM backend)
 * as deployment name: its work request reads the target's count, shape and
 * state through the backend, and the deployment is ACTIVE once it has.
 * Nothing is created on the platform. Returns 0 with the ids as for
 * deploy_create(), or a negative code with f filled (an unknown backend or
 * one that is not a platform, a bad or taken name, a ref already kept).
 */
int deploy_import(struct deploy *d, const char *backend, const char *ref,
		  const char *name, char *id, char *wr_id, struct fault *f);

/*
 * A change of a deployment: any subset of its mutable fields. Pointers
 * are borrowed for the call only; NULL (or has_ false) leaves a field as
 * it is.
 */
struct deploy_change {
	bool has_count;
	uint32_t count;
	const char *shape;
	const char *const *argv;   /* a new command */
	size_t argc;
	bool shell;
	bool has_env;              /* a new environment, replacing it all */
	const char *const *env;    /* "NAME=value" */
	size_t nenv;
	const char *const *secret; /* with has_env: the NAMEs that are
				      secret (never shown back) */
	size_t nsecret;
	const char *health_path;
	bool has_ready_timeout;
	uint32_t ready_timeout_s;
	bool has_drain_timeout;
	uint32_t drain_timeout_s;
	bool has_tags;             /* new freeform tags, replacing them all */
	const char *const *tags;   /* "KEY=value" */
	size_t ntags;
};

/*
 * Starts an update of deployment key (id or displayName) to c. A new
 * count or shape, or a new command, environment or health path (which
 * replace every instance, held until the new set is ready), starts a work
 * request: returns 0 with its id in wr_id (DEPLOY_ID_MAX). The timeouts
 * and the tags change at once, and when nothing else changes wr_id is "". Errors, with
 * f filled and nothing changed: MDS_E_NOTFOUND, MDS_E_INVAL (a count out
 * of range, an unknown shape, a bad command, environment or health path,
 * a command for a deployment kept on a platform), MDS_E_CONFLICT (code
 * "IncorrectState": the deployment is not ACTIVE, e.g. while another work
 * request runs).
 */
int deploy_change(struct deploy *d, const char *key,
		  const struct deploy_change *c, char *wr_id, struct fault *f);

/*
 * Wakes deployment id from zero: if it is ACTIVE with instanceCount 0,
 * starts an update to 1 instance. Returns 0 (started, or nothing to do:
 * instances are wanted already), or a negative code with f filled
 * (MDS_E_NOTFOUND, MDS_E_CONFLICT while another change runs, a store
 * error).
 */
int deploy_wake(struct deploy *d, const char *id, struct fault *f);

/* Checks c as deploy_change() would, changing nothing. Returns 0 or the
 * code deploy_change() would return, with f filled. */
int deploy_change_check(struct deploy *d, const char *key,
			const struct deploy_change *c, struct fault *f);

/*
 * Checks that deployment key may be taken to zero instances when idle: its
 * backend can hold zero instances (local, kubernetes; not oci). own is
 * whether the deployment's own configuration asks for it: the default
 * configuration's minInstances 0 applies to local deployments only, since
 * an imported platform deployment may be served through its own Service,
 * which the gateway does not see (one that asks for it is taken to be
 * served through the gateway). Returns 0, MDS_E_NOTFOUND, or MDS_E_INVAL
 * with f naming field (borrowed, e.g. "minInstances") and why.
 */
int deploy_check_idle_zero(struct deploy *d, const char *key,
			   const char *field, bool own, struct fault *f);

/* Starts the deletion; returns 0 with the work request's id in wr_id, or
 * MDS_E_NOTFOUND / MDS_E_CONFLICT / a store error with f filled (and
 * nothing changed). Inside a caller's store transaction (store_begin()),
 * the deletion holds only if the outermost commit writes it: when it does
 * not, the deployment is again as it was and its work request is gone,
 * with no step run (the tick runs them, never inside a transaction). */
int deploy_delete(struct deploy *d, const char *key, char *wr_id,
		  struct fault *f);
/* Checks a deletion as deploy_delete() would, changing nothing. Returns 0
 * or the code deploy_delete() would return short of a store error, with f
 * filled. */
int deploy_delete_check(struct deploy *d, const char *key, struct fault *f);

/*
 * Returns the shape ladder of backend (ops->name; NULL: the first), the
 * one a deployment of it moves along: the backend's own, else the
 * configuration's. Owned by the backend or the configuration.
 */
const struct shape_ladder *deploy_backend_shapes(struct deploy *d,
						 const char *backend);

/*
 * Resolves key (an id or a displayName; live deployments first) to the
 * deployment's id in id (DEPLOY_ID_MAX). Returns 0 or MDS_E_NOTFOUND with
 * f filled ("no deployment 'key'").
 */
int deploy_resolve(struct deploy *d, const char *key, char *id,
		   struct fault *f);

/* ---- watching for changes ---- */

#define DEPLOY_WATCHERS_MAX 256 /* long-polls waiting at once */

/* The version of the deployments: it grows with every change the module
 * writes (an instance becoming ready, a step of a work request, ...). */
uint64_t deploy_version(const struct deploy *d);

struct deploy_watch;

/*
 * Calls fn(arg) once, from the loop, when the version is no longer since
 * or timeout_ms have passed, whichever comes first (checked every tick),
 * or when the module closes. Returns the watch (the module owns it; it is
 * gone once fn runs), or NULL when DEPLOY_WATCHERS_MAX are waiting.
 */
struct deploy_watch *deploy_watch(struct deploy *d, uint64_t since,
				  uint32_t timeout_ms,
				  void (*fn)(void *arg), void *arg);

/* Forgets a watch whose fn has not run yet; fn will not run. */
void deploy_unwatch(struct deploy *d, struct deploy_watch *w);

/* ---- read-only views: snapshots, owned by the caller ---- */

struct deploy_instance_view {
	char id[DEPLOY_ID_MAX];
	const char *state;   /* "STARTING", "READY", "DRAINING", "STOPPED",
				"FAILED" (static) */
	char address[16];    /* where the gateway reaches it, an IPv4
				address, dotted: 127.0.0.1 for a local
				instance with a port, a Ready pod's podIP;
				"" otherwise (a platform's instance the
				gateway does not route to) */
	int port;            /* with address; 0 when that is "" */
	int pid;             /* 0 unless a process runs now */
	char shape[SHAPE_NAME_MAX + 1];
	int restarts;
	int64_t started_ms;  /* 0: never started */
	char location[BACKEND_HANDLE_MAX]; /* the backend's name for it
					      (local: the cgroup's path); "" */
	char last_exit[BACKEND_MSG_MAX];   /* "" */
	bool ready;          /* routed: ready and not held back */
};

struct deploy_view {
	char id[DEPLOY_ID_MAX];
	char *name;
	const char *state;   /* "CREATING", "ACTIVE", "UPDATING", "FAILED",
				"DELETING", "DELETED" (static) */
	char details[300];
	const char *backend; /* ops->name (static) */
	char ref[BACKEND_REF_MAX]; /* platform target; "" for local */
	char **argv;         /* NULL-terminated */
	size_t argc;
	bool shell;
	char **env;          /* "NAME=value", NULL-terminated; the values of
				the secret ones too: show those as secret */
	size_t nenv;
	char **secret;       /* the NAMEs of env that are secret */
	size_t nsecret;
	char **tags;         /* freeform tags "KEY=value", NULL-terminated */
	size_t ntags;
	char *health_path;
	char shape[SHAPE_NAME_MAX + 1];
	uint32_t count;
	uint32_t ready_timeout_s, drain_timeout_s;
	bool replay_all;     /* replayNonIdempotent */
	uint32_t uid;        /* the uid and gid its instances run as
				(instanceUids); 0: runAsUser's */
	int64_t created_ms, updated_ms;
	char wr_id[DEPLOY_ID_MAX]; /* the running work request; "" */
	char *endpoint;      /* the gateway URL of the deployment */
	struct deploy_instance_view *inst;
	size_t ninst;
};

/* Returns a new view of deployment key, or NULL with f filled
 * (MDS_E_NOTFOUND). Free it with deploy_view_free(). */
struct deploy_view *deploy_view_new(struct deploy *d, const char *key,
				    struct fault *f);
/* Frees a view; NULL is fine. */
void deploy_view_free(struct deploy_view *v);

/* Calls fn with a view of each live deployment (name NULL: all, else only
 * that displayName), in creation order. The view lives for the call. */
void deploy_each(struct deploy *d, const char *name,
		 void (*fn)(void *arg, const struct deploy_view *v),
		 void *arg);

struct deploy_step_view {
	const char *kind;    /* "START_INSTANCE", ..., "APPLY",
				"FOLLOW_PLATFORM" (static) */
	char inst[DEPLOY_ID_MAX]; /* "" when the step has no instance */
	const char *status;  /* "PENDING", "IN_PROGRESS", "SUCCEEDED",
				"FAILED", "SKIPPED" (static) */
	int64_t t0, t1;
	char msg[200];
};

struct deploy_workreq_view {
	char id[DEPLOY_ID_MAX];
	char dep_id[DEPLOY_ID_MAX];
	const char *op;      /* "CREATE_DEPLOYMENT", "UPDATE_DEPLOYMENT",
				"DELETE_DEPLOYMENT" (static) */
	const char *status;  /* "ACCEPTED", "IN_PROGRESS", "SUCCEEDED",
				"FAILED" (static) */
	int percent;
	uint32_t from_n, to_n;
	char from_shape[SHAPE_NAME_MAX + 1], to_shape[SHAPE_NAME_MAX + 1];
	char error[300];
	char platform_id[BACKEND_WORK_ID_MAX]; /* the platform's work request
						  it follows; "" */
	int64_t accepted, started, finished;
	struct deploy_step_view *steps;
	size_t nsteps;
};

/* Returns a new view of work request id (running or finished), or NULL
 * with f filled. Free it with deploy_workreq_view_free(). */
struct deploy_workreq_view *deploy_workreq_view_new(struct deploy *d,
						    const char *id,
						    struct fault *f);
void deploy_workreq_view_free(struct deploy_workreq_view *v);

/* Returns the i-th value a work request view's op (status false) or status
 * (status true) takes, or NULL past the last: for filters. Static. */
const char *deploy_workreq_name(bool status, size_t i);

/* Calls fn for each work request of one deployment (key NULL: all),
 * newest first. The view lives for the call. */
void deploy_each_workreq(struct deploy *d, const char *key,
			 void (*fn)(void *arg,
				    const struct deploy_workreq_view *v),
			 void *arg);

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

/* One instance with something running, as monitoring sees it. */
struct deploy_instance_info {
	const char *deployment_id;
	const char *instance_id;
	const char *shape;
	int ready;
	int usage_rc;               /* 0: usage holds what the backend
				       last observed; else MDS_E_* */
	struct backend_usage usage;
};

/* Calls fn for every instance that has a process (pod, ...), with its
 * usage read through its backend. Strings live for the call. */
void deploy_each_instance(struct deploy *d,
			  void (*fn)(void *arg,
				     const struct deploy_instance_info *in),
			  void *arg);

#endif
