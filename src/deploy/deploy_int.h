/*
 * deploy_int.h - what the files of the deployments module share, and no
 * other module sees: the records (deployment, instance, work request) and
 * the engine's entry points for the API operations (deploy_ops.c), their
 * views (deploy_view.c), the store rows (deploy_store.c) and the steps of
 * a work request (deploy_steps.c). The engine itself is deploy.c.
 */
#ifndef MDS_DEPLOY_INT_H
#define MDS_DEPLOY_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/planner.h"
#include "core/shape.h"
#include "deploy/backend.h"
#include "deploy/deploy.h"

#define ID_LEN DEPLOY_ID_MAX
#define DEAD_RECORDS_KEPT 8
#define OFFLINE_BACKENDS_MAX 8 /* distinct missing backends kept */

enum dep_state { DS_CREATING, DS_ACTIVE, DS_UPDATING, DS_FAILED,
		 DS_DELETING, DS_DELETED, DS__N };

enum wr_op { OP_CREATE, OP_UPDATE, OP_DELETE, OP__N };

enum wr_status { WR_ACCEPTED, WR_IN_PROGRESS, WR_SUCCEEDED, WR_FAILED,
		 WR__N };

enum step_status { ST_PENDING, ST_IN_PROGRESS, ST_SUCCEEDED, ST_FAILED,
		   ST_SKIPPED, ST__N };

/* The planner's step kinds (enum plan_step_kind, 0..4), then the steps of
 * a platform backend's work request. */
enum step_kind {
	STEP_READ_PLATFORM = PLAN_STOP_INSTANCE + 1, /* import: read it */
	STEP_APPLY,            /* ask the platform for count and shape */
	STEP_FOLLOW_PLATFORM,  /* follow the platform's work request */
	STEP__N
};

struct deployment;

struct instance {
	struct backend_instance bi; /* ids, shape, spec; what the backend
				       observes */
	struct deployment *dep;
	enum plan_inst_state state; /* the engine's: planner states */
	bool held;      /* ready but not routed until the ROUTE step */
	int64_t created_ms;
	char wr_id[ID_LEN];
	int logged_pid; /* runtime: the process last logged as started */
	uint32_t spec_gen; /* the deployment's spec_gen it was started with */
};

struct wr_step {
	int kind; /* enum plan_step_kind or enum step_kind */
	char inst[ID_LEN];
	enum step_status status;
	int64_t t0, t1;
	char msg[200];
	int answer; /* runtime: a backend's answer to the step, 1 ok, -1
		       failed, 0 none yet */
};

struct workreq {
	char id[ID_LEN];
	char dep_id[ID_LEN];
	enum wr_op op;
	enum wr_status status;
	uint32_t from_n, to_n;
	char from_shape[SHAPE_NAME_MAX + 1], to_shape[SHAPE_NAME_MAX + 1];
	char error[300];
	bool rollback;
	int64_t accepted, started, finished;
	struct wr_step *steps;
	size_t nsteps;
	/* Platform backends: the platform's work request and its progress. */
	char platform_id[BACKEND_WORK_ID_MAX];
	int platform_percent;
	bool waiting;        /* a backend answer is outstanding */
	int64_t next_poll_ms;
};

struct deployment {
	char id[ID_LEN];
	char *name;
	struct backend *backend;
	char ref[BACKEND_REF_MAX];  /* platform target; "" for instances */
	struct backend_spec spec;   /* owned: argv, env, health_path */
	/* While an update replaces the spec: the one the older instances
	 * run (owned; NULL otherwise). Instances whose spec_gen is not
	 * spec_gen point at it. */
	struct backend_spec *prev_spec;
	uint32_t spec_gen;          /* bumped by every change of spec */
	char **tags;                /* freeform "KEY=value", owned,
				       NULL-terminated */
	size_t ntags;
	char shape[SHAPE_NAME_MAX + 1];
	uint32_t count;
	uint32_t ready_timeout_s, drain_timeout_s;
	bool replay_all; /* replayNonIdempotent: see gateway_set_replay() */
	enum dep_state state;
	char details[300];
	char etag[BACKEND_HANDLE_MAX]; /* platform version last read */
	int64_t created_ms, updated_ms;
	struct workreq *wr;
	/* A finished work request whose last row the store has not taken yet
	 * (a full device): saved with the deployment's next write. */
	struct workreq *ended_wr;
	bool unsaved; /* memory is ahead of the store: a write failed */
	struct instance **inst;
	size_t ninst;
	struct deploy *owner;
	struct deployment *next;
};

struct deploy {
	struct deploy_env env;
	uv_timer_t tick;
	struct deployment *deps; /* in creation order */
	uint64_t ended[OP__N][2]; /* work requests ended since the start, by
				     enum wr_op and [0] SUCCEEDED, [1] FAILED */
	uint64_t version;        /* bumped by every persist */
	struct deploy_watch *watches;
	size_t nwatches;
	/* Place holders of the backends stored deployments name and the
	 * daemon does not have; owned. */
	struct backend *offline[OFFLINE_BACKENDS_MAX];
	size_t noffline;
	struct uidpool *uids;    /* env.uids, or owned_uids */
	struct uidpool *owned_uids;
	bool closing;
	bool detaching;
	int64_t next_reconcile_ms;
	void (*done)(void *);
	void *done_arg;
};

/* ---- deploy.c: names, lookups, the engine ---- */

extern const char *const deploy_dep_state_names[DS__N];
extern const char *const deploy_inst_state_names[PLAN_FAILED + 1];
extern const char *const deploy_wr_op_names[OP__N];
extern const char *const deploy_wr_status_names[WR__N];
extern const char *const deploy_step_status_names[ST__N];
extern const char *const deploy_step_kind_names[STEP__N];

/* Index of s in names[0..n), or -1. */
int deploy_lookup(const char *const *names, size_t n, const char *s);
#define DEPLOY_LOOKUP(names, s)                                              \
	deploy_lookup(names, sizeof(names) / sizeof(names[0]), s)

void deploy_copy_str(char *dst, size_t size, const char *src);

/* Whether the gateway routes to a platform's listed instance: it is ready
 * and has an IPv4 address and a port. */
bool deploy_listed_routable(const struct backend_listed *x);

/* Whether the instance should be running (STARTING or READY). */
bool deploy_inst_live(const struct instance *in);

/* The live deployment with id, name or platform target (ref) key (then
 * any by id), or NULL. */
struct deployment *deploy_find(struct deploy *d, const char *key);
/* The backend named name, or NULL. */
struct backend *deploy_backend(struct deploy *d, const char *name);
/* The backend named name, else the offline place holder of that name
 * (made on first use, owned by d), or NULL when OFFLINE_BACKENDS_MAX are
 * made. For the deployments the store holds. */
struct backend *deploy_backend_kept(struct deploy *d, const char *name);
/* Why the daemon has no backend named name (env.missing, borrowed), or
 * NULL when it did not say. */
const char *deploy_missing_why(struct deploy *d, const char *name);
/* Whether dep's backend is offline (nothing may be asked of it). */
bool deploy_dep_offline(const struct deployment *dep);
/* The shapes of dep's backend. */
const struct shape_ladder *deploy_shapes(struct deploy *d,
					 const struct backend *b);

/* Frees what sp holds (not sp itself); NULL is fine. */
void deploy_spec_clear(struct backend_spec *sp);
/* Points each instance of dep at the spec it runs: dep->spec for the
 * current generation, dep->prev_spec (when set) for older ones. */
void deploy_respec(struct deployment *dep);

/* Whether deployments on b get a uid of their own (config instanceUids,
 * the daemon root, b an instance backend). Uids are picked from d->uids
 * (daemon/uidpool.h), where the module holds its live deployments'. */
bool deploy_uids_on(const struct deploy *d, const struct backend *b);

/* Appends dep to the list. */
void deploy_link(struct deploy *d, struct deployment *dep);
/* A new, empty instance record of dep (state STARTING, not started). */
struct instance *deploy_inst_new(struct deployment *dep, const char *shape,
				 const char *wr_id, bool held);
/* Frees a deployment and its records (the backend released them). */
void deploy_dep_free(struct deployment *dep);
void deploy_wr_free(struct workreq *wr);
void deploy_wr_add_step(struct workreq *wr, int kind, const char *inst);

/*
 * Plans and attaches the work request that moves dep to (count, shape):
 * the planner's steps for an instance backend, APPLY + FOLLOW_PLATFORM for
 * a platform one (READ_PLATFORM for an import). Creates the new instances'
 * records. Returns the work request (owned by dep).
 */
struct workreq *deploy_wr_start(struct deploy *d, struct deployment *dep,
				enum wr_op op, uint32_t count,
				const char *shape);

/*
 * Writes dep and its work request to the store, atomically. Returns 0, or
 * MDS_E_NOSPACE / MDS_E_DB when the commit failed: then dep is marked
 * unsaved and the tick writes it again until the store takes it. Inside
 * a caller's transaction, what the save settles (dep no longer unsaved,
 * its ended work request forgotten) waits for the outermost commit; dep
 * must outlive it. When that commit fails, dep is marked unsaved.
 */
int deploy_persist(struct deploy *d, struct deployment *dep);
/*
 * Forgets a work request that deploy_wr_start() made but that the store
 * did not take: its new instance records (never started) go, and dep->wr
 * goes back to prev. The API operations call it to change nothing.
 */
void deploy_wr_discard(struct deploy *d, struct deployment *dep,
		       struct workreq *prev);
/* Pushes dep's ready instances to the gateway. */
void deploy_routes_update(struct deploy *d, struct deployment *dep);

/* dep's instance record with id, or NULL. */
struct instance *deploy_find_inst(struct deployment *dep, const char *id);
/* Whether the backend looks after the instance now (a start or stop is
 * under way, or it runs). */
bool deploy_inst_managed(const struct instance *in);
/* Has the backend start the instance (and restart it when it exits). */
void deploy_inst_start(struct deploy *d, struct instance *in);
/* Has the backend stop the instance, for good, within the configured
 * grace. */
void deploy_inst_stop(struct deploy *d, struct instance *in);
/* Forgets stopped instances beyond the few kept for display. */
void deploy_prune(struct deploy *d, struct deployment *dep);
/* Closing or detaching: closes the tick, which frees the module, once no
 * backend answer is outstanding (and, closing, no instance runs). */
void deploy_maybe_closed(struct deploy *d);

/* ---- deploy_steps.c: running a work request ---- */

/* Takes dep's work request as far as it goes now: steps begun and
 * checked, a failure turned into its rollback, the end recorded and
 * persisted. */
void deploy_wr_advance(struct deploy *d, struct deployment *dep,
		       int64_t now);
/* backend_events.progress (arg: the module): a backend pushed progress of
 * a platform work request, mirrored into its FOLLOW_PLATFORM step. */
void deploy_platform_pushed(void *arg, const char *ref, const char *work_id,
			    const struct backend_progress *p);
/* backend_events.instances (arg: the module): a platform target's
 * instances changed; the routes of its deployments follow (in deploy.c). */
void deploy_platform_instances(void *arg, const char *ref);

/* ---- deploy_store.c: the store rows (JSON) ---- */

/* Writes dep (its work request, and a finished one not yet stored) as
 * store rows; inside a transaction the caller opened. Returns 0 or a store
 * error (MDS_E_NOSPACE, MDS_E_DB). */
int deploy_store_save(struct deploy *d, const struct deployment *dep);
/* Loads every stored deployment into d->deps. Returns 0 or MDS_E_DB. */
int deploy_store_load(struct deploy *d);
/* Reads a stored work request; returns a new record, or NULL. */
struct workreq *deploy_store_workreq(struct deploy *d, const char *id);
/* Calls fn for each stored work request, oldest first; fn may keep wr. */
void deploy_store_each_workreq(struct deploy *d,
			       void (*fn)(void *arg, struct workreq *wr),
			       void *arg);

/* ---- deploy_view.c ---- */

/* Fills a work request view from wr (steps newly allocated). */
void deploy_workreq_fill(const struct workreq *wr,
			 struct deploy_workreq_view *v);

#endif
