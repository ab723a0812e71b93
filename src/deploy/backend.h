/*
 * backend.h - where a deployment's instances run, behind one ops table.
 *
 * The deployments engine (deploy.c) plans and records work; a backend does
 * what the engine asks on a platform. A backend is a `struct backend`: a
 * pointer to its `const struct backend_ops` (the same table for every
 * backend of a kind, in the style of curl's connection filter types) and
 * its private state. Two kinds of backend exist, and each says which it is
 * in ops->caps:
 *
 *   BACKEND_CAP_INSTANCES  mdscale starts, drains and stops instances one
 *                          by one (`local`: processes in cgroups; a
 *                          simulated backend). The engine runs the
 *                          planner's steps and calls start/stop per
 *                          instance. Ops: start, stop, signal, status,
 *                          usage, adopt, release, list, shapes.
 *   BACKEND_CAP_PLATFORM   the platform changes the instance count or the
 *                          shape itself and reports the progress of its own
 *                          work request (an OCI model deployment, a
 *                          Kubernetes Deployment). The engine asks `apply`
 *                          for the desired count and shape, then follows
 *                          the platform's work request with `progress`
 *                          (polled) or backend_progress_report() (pushed),
 *                          and mirrors it into its own work request. Ops:
 *                          read, apply, progress, list, usage, shapes.
 *
 * Every op runs on the daemon's libuv loop and never blocks it: results
 * that take time come back through callbacks, always later on the loop,
 * never from inside the call that started them (so the caller's state is
 * consistent when a callback runs), unless the op's comment says otherwise.
 * A negative return value from an op means the op did not start and no
 * callback will come.
 *
 * Ownership: the engine owns every struct backend_instance; the backend may
 * hang its runtime state on in->backend_data between start (or adopt) and
 * the moment the instance is STOPPED, FAILED or released, and must not
 * touch the record after release() returns or after it reported the
 * instance STOPPED or FAILED.
 */
#ifndef MDS_BACKEND_H
#define MDS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/shape.h"

#define BACKEND_ID_MAX 24       /* "mi-" / "md-" ids and their NUL */
#define BACKEND_HANDLE_MAX 128  /* a backend's own name for an instance */
#define BACKEND_REF_MAX 256     /* an OCID, NAMESPACE/NAME */
#define BACKEND_WORK_ID_MAX 256 /* a platform work request id */
#define BACKEND_MSG_MAX 160

/* What a backend can do; ops->caps holds one kind and any extras. */
enum backend_caps {
	BACKEND_CAP_INSTANCES = 1 << 0, /* per-instance start/stop */
	BACKEND_CAP_PLATFORM = 1 << 1,  /* apply + platform progress */
	BACKEND_CAP_SIGNAL = 1 << 2,    /* signal() sends POSIX signals */
	BACKEND_CAP_USAGE = 1 << 3,     /* usage() reads CPU and memory */
	BACKEND_CAP_ADOPT = 1 << 4,     /* instances outlive the daemon */
	BACKEND_CAP_ZERO = 1 << 5,      /* may hold zero instances (scale
					   to zero and back) */
	BACKEND_CAP_OFFLINE = 1 << 6,   /* a place holder for a backend
					   this daemon does not have: no op
					   may be called (backend_offline.h) */
};

/*
 * An instance's state as the backend observes it. Transitions the backend
 * reports: STARTING -> READY -> STARTING (unready or crashed and being
 * restarted) ...; any -> STOPPING -> STOPPED after stop(); STARTING ->
 * FAILED when it exited max_start_attempts times without ever being ready;
 * STARTING/READY -> STOPPED when it exits and in->restart is false.
 */
enum backend_state {
	BACKEND_NEW,      /* never started: the record only */
	BACKEND_STARTING, /* running or (re)starting, not ready yet */
	BACKEND_READY,    /* running and answering its health path */
	BACKEND_STOPPING, /* stop() was called; not gone yet */
	BACKEND_STOPPED,  /* not running, and will not be restarted */
	BACKEND_FAILED,   /* gave up starting it; last_exit says why */
};

/* What to run, per deployment; owned by the engine, constant while any of
 * the deployment's instances exists. */
struct backend_spec {
	char **argv;       /* the command; NULL-terminated */
	size_t argc;
	bool shell;        /* argv[0] is one line for /bin/sh -c */
	char **env;        /* "NAME=value" strings; NULL-terminated */
	size_t nenv;
	char **secret;     /* the NAMEs of env whose values are secret, never
			      shown back; NULL-terminated */
	size_t nsecret;
	const char *health_path; /* "/health": 2xx means ready */
	uint32_t uid; /* the uid and gid the deployment's instances run as
			 (config instanceUids); 0: the backend's user */
};

/*
 * One instance. Fields are grouped by who writes them; the engine persists
 * the whole record (except the pointers) and gives it back to adopt() after
 * a daemon restart.
 */
struct backend_instance {
	/* Written by the engine before start/adopt; read-only to the
	 * backend. */
	char deployment_id[BACKEND_ID_MAX];
	char id[BACKEND_ID_MAX];
	char shape[SHAPE_NAME_MAX + 1];
	const struct backend_spec *spec;
	bool restart; /* keep it running: restart it after an exit (false
			 once the engine drains it) */
	bool shutdown_stop; /* persisted: stopped by a clean shutdown of the
			       daemon, so a process found gone at the next
			       start is no crash (adopt clears it) */

	/* Written by the backend; read by the engine. */
	enum backend_state state;
	bool alive;          /* a process (pod, ...) exists now */
	int pid;             /* for display; 0 if none or not a process */
	int port;            /* loopback port the gateway routes to; 0: none */
	char handle[BACKEND_HANDLE_MAX]; /* the backend's own name for it
					    (cgroup, pod), persisted */
	int restarts;        /* exits after which it was started again */
	int start_failures;  /* exits before ever being ready */
	bool ever_ready;
	int64_t started_ms;  /* when the current process started; 0 */
	char last_exit[BACKEND_MSG_MAX]; /* why it last exited; "" */

	/* Runtime only, never persisted. */
	void *backend_data; /* the backend's; NULL when it holds nothing */
	void *engine_data;  /* the engine's; the backend leaves it alone */
};

/* CPU and memory of one instance, as last observed. */
struct backend_usage {
	uint64_t cpu_ns;     /* CPU time used since it started; 0 unknown */
	uint64_t cpu_mcpu;   /* CPU it may use, millicores; 0 no quota */
	uint64_t mem_bytes;  /* working set now */
	uint64_t mem_limit;  /* bytes; 0 no limit */
	/* Platforms that report utilization directly (OCI Monitoring, a
	 * metrics API) fill these instead of the counters; -1 when absent. */
	double cpu_percent;
	double mem_percent;
};

/* One instance a backend runs, as list() reports it. */
struct backend_listed {
	const char *id;          /* the engine's instance id when the
				    backend knows it (local: from the name),
				    else the platform's (a pod name) */
	const char *handle;
	bool ready;
	/* Where the gateway reaches it, for a platform whose instances it
	 * routes to (a pod's IPv4 address and its model container's first
	 * containerPort); NULL and 0 when not known or not reachable. */
	const char *addr;
	int port;
};

/* ---- platform backends ---- */

/* What a platform target is now (read), or what is wanted (apply). */
struct backend_target {
	char state[32];   /* lifecycle state, e.g. "ACTIVE", "UPDATING" */
	uint32_t count;   /* instances */
	char shape[SHAPE_NAME_MAX + 1];
	char etag[BACKEND_HANDLE_MAX]; /* version read; "" none */
	char message[BACKEND_MSG_MAX];
};

enum backend_work_status {
	BACKEND_WORK_ACCEPTED,
	BACKEND_WORK_IN_PROGRESS,
	BACKEND_WORK_SUCCEEDED,
	BACKEND_WORK_FAILED,
};

/* The progress of a platform's own work request. */
struct backend_progress {
	enum backend_work_status status;
	int percent;                   /* 0..100 */
	char message[BACKEND_MSG_MAX]; /* the platform's words; "" */
};

/* Result of read(): rc 0 and t, or a negative MDS_E_* with diag. */
typedef void (*backend_read_cb)(void *arg, int rc,
				const struct backend_target *t,
				const char *diag);
/* Result of apply(): rc 0 and the platform's work request id (copied by
 * the engine; "" when the platform had nothing to do), or a negative
 * MDS_E_* with diag (MDS_E_CONFLICT: the target is busy or changed under
 * us, nothing was sent or accepted). */
typedef void (*backend_apply_cb)(void *arg, int rc, const char *work_id,
				 const char *diag);
/* Result of progress(): rc 0 and p, or a negative MDS_E_* with diag (a
 * transient failure: the engine asks again later). */
typedef void (*backend_progress_cb)(void *arg, int rc,
				    const struct backend_progress *p,
				    const char *diag);

struct backend;

/*
 * The ops table. Ops a backend does not have are NULL; which may be NULL
 * follows from caps (the engine checks caps, never a NULL pointer, before
 * calling). b is always the backend the op belongs to.
 */
struct backend_ops {
	const char *name; /* "local", "oci", "kubernetes": the deployment
			     record's "backend" */
	unsigned caps;    /* enum backend_caps */

	/* ---- instance backends (BACKEND_CAP_INSTANCES) ---- */

	/*
	 * Starts in (spec, shape and ids set by the engine; state NEW,
	 * STOPPED or FAILED). Returns 0 once the start is under way: the
	 * backend sets state STARTING (alive once something runs) before
	 * returning and reports every later change through
	 * backend_changed(). From then on the backend keeps the instance
	 * running while in->restart is true: it restarts it after an exit,
	 * with a backoff that doubles from 250 ms to 30 s, and reports
	 * FAILED after the configured number of exits before it was ever
	 * ready. Returns a negative MDS_E_* if the start could not even be
	 * tried (unknown shape, no port): then state is FAILED or STARTING
	 * with a restart scheduled, last_exit says why, and
	 * backend_changed() is still called later.
	 */
	int (*start)(struct backend *b, struct backend_instance *in);

	/*
	 * Stops in: graceful first (SIGTERM for a process), forced after
	 * grace_ms (SIGKILL), and no restart. Sets state STOPPING (or
	 * STOPPED at once if nothing runs) and reports STOPPED through
	 * backend_changed() when it is gone and its resources (cgroup) are
	 * released. Calling it again while STOPPING does nothing.
	 */
	void (*stop)(struct backend *b, struct backend_instance *in,
		     uint32_t grace_ms);

	/*
	 * Sends sig to every process of in (BACKEND_CAP_SIGNAL). Returns 0,
	 * MDS_E_NOTFOUND if nothing runs, MDS_E_UNAVAIL without the cap.
	 */
	int (*signal)(struct backend *b, struct backend_instance *in, int sig);

	/*
	 * Tells whether in is alive and ready now, from what the backend
	 * last observed (its health checks run on their own; this never
	 * waits). Returns 0 and fills *alive and *ready.
	 */
	int (*status)(struct backend *b, const struct backend_instance *in,
		      bool *alive, bool *ready);

	/*
	 * After a daemon restart: takes over in as it was persisted (pid,
	 * port, handle...). Returns 0 if it still runs and is the same
	 * instance (alive true; READY stays READY until its health checks
	 * say otherwise, any other state becomes STARTING), or
	 * MDS_E_NOTFOUND if it is gone (alive false, resources released,
	 * the exit counted in restarts and last_exit; state STOPPED, or
	 * FAILED when that exit used up its start attempts; the engine
	 * decides whether to start it again). Calls no callback before
	 * returning.
	 */
	int (*adopt)(struct backend *b, struct backend_instance *in);

	/*
	 * Forgets in without stopping it: pending checks cancelled, runtime
	 * state freed, in->backend_data NULL. For a daemon that exits while
	 * instances keep running, and before the engine frees a record.
	 * No callback follows.
	 */
	void (*release)(struct backend *b, struct backend_instance *in);

	/* ---- platform backends (BACKEND_CAP_PLATFORM) ---- */

	/*
	 * Reads the platform target ref (an OCID, NAMESPACE/NAME): its
	 * state, count, shape and version. For import and for recovery.
	 * Returns 0 and calls cb later, or a negative MDS_E_* (bad ref).
	 */
	int (*read)(struct backend *b, const char *ref, backend_read_cb cb,
		    void *arg);

	/*
	 * Asks the platform to run want->count instances of want->shape
	 * (want->etag: the version read, for a conditional update; "" for
	 * none). Must be idempotent: the engine calls it again after a crash
	 * that cut it short before the platform's work request id was
	 * recorded, so a backend reads first and sends nothing (work_id "")
	 * when the target is already at want or already changing to it.
	 * Returns 0 and calls cb later, or a negative MDS_E_*.
	 */
	int (*apply)(struct backend *b, const char *ref,
		     const struct backend_target *want, backend_apply_cb cb,
		     void *arg);

	/*
	 * Reads the progress of the platform work request work_id on ref.
	 * The engine calls it at most every ops->poll_ms while its own work
	 * request follows one, never with a call outstanding, and again
	 * after a daemon restart for the id it recorded. Returns 0 and
	 * calls cb later, or a negative MDS_E_*.
	 */
	int (*progress)(struct backend *b, const char *ref,
			const char *work_id, backend_progress_cb cb,
			void *arg);
	uint32_t poll_ms; /* progress polling interval; 0: 1000 */

	/*
	 * Checks the form of a platform ref (NAMESPACE/NAME, an OCID) without
	 * asking the platform, so that an import of a malformed one is
	 * refused before anything is recorded. Returns 0, or MDS_E_INVAL
	 * with the reason in diag. May be NULL (every ref is tried).
	 */
	int (*check_ref)(struct backend *b, const char *ref, char *diag,
			 size_t diagsz);

	/* ---- both kinds ---- */

	/*
	 * Reads in's CPU and memory from what the backend last observed;
	 * never waits (a backend that fetches metrics remotely answers from
	 * its last fetch). Returns 0, MDS_E_NOTFOUND when nothing is known,
	 * MDS_E_UNAVAIL without BACKEND_CAP_USAGE. For platform backends
	 * only in->id and in->handle are set (from list()).
	 */
	int (*usage)(struct backend *b, const struct backend_instance *in,
		     struct backend_usage *out);

	/*
	 * Calls fn for every instance the backend runs now: ref NULL for all
	 * of an instance backend's (to find strays), or a platform target's
	 * instances (pods). fn's strings live only during the call. Never
	 * waits. Returns 0, MDS_E_UNAVAIL when a platform target's instances
	 * are not known yet (its first list has not been answered: fn was
	 * not called, and the instances event comes once they are), or
	 * another negative MDS_E_*.
	 */
	int (*list)(struct backend *b, const char *ref,
		    void (*fn)(void *arg, const struct backend_listed *x),
		    void *arg);

	/* Returns the shapes this backend offers, smallest first; owned by
	 * the backend, valid until it is freed. */
	const struct shape_ladder *(*shapes)(struct backend *b);

	/*
	 * Frees the backend. The engine has released or stopped every
	 * instance first. Calls done(arg) (may be NULL) once its handles are
	 * closed; b is invalid after that.
	 */
	void (*close)(struct backend *b, void (*done)(void *arg), void *arg);
};

/* How the backend tells the engine about changes it observed. */
struct backend_events {
	/* An instance's observed fields changed (state, alive, pid, port,
	 * restarts, last_exit): the engine re-reads the record. */
	void (*changed)(void *arg, struct backend_instance *in);
	/* A platform work request moved (pushed, e.g. from a watch): the
	 * same as a progress() answer. May be NULL. */
	void (*progress)(void *arg, const char *ref, const char *work_id,
			 const struct backend_progress *p);
	/* A platform target's instances changed (came, went, became ready
	 * or unready): what list() reports for ref is new. May be NULL. */
	void (*instances)(void *arg, const char *ref);
	void *arg;
};

/*
 * A backend instance: its ops, its private state, and where its events
 * go. Made by the backend's own constructor (backend_local_new(), ...);
 * the engine sets events when it takes the backend.
 */
struct backend {
	const struct backend_ops *ops;
	void *impl;
	struct backend_events events;
};

/* Reports a change of in to the engine (a no-op before the engine set
 * events). For backends. */
static inline void backend_changed(struct backend *b,
				   struct backend_instance *in)
{
	if (b->events.changed != NULL)
		b->events.changed(b->events.arg, in);
}

/* Pushes platform progress to the engine. For backends. */
static inline void backend_progress_report(struct backend *b,
					   const char *ref,
					   const char *work_id,
					   const struct backend_progress *p)
{
	if (b->events.progress != NULL)
		b->events.progress(b->events.arg, ref, work_id, p);
}

/* Tells the engine that list(ref) has changed. For platform backends. */
static inline void backend_instances_changed(struct backend *b,
					     const char *ref)
{
	if (b->events.instances != NULL)
		b->events.instances(b->events.arg, ref);
}

/* Returns whether b has every capability in caps. */
static inline bool backend_can(const struct backend *b, unsigned caps)
{
	return (b->ops->caps & caps) == caps;
}

/* Returns "NEW", "STARTING", "READY", "STOPPING", "STOPPED", "FAILED". */
const char *backend_state_name(enum backend_state s);

/* Returns "ACCEPTED", "IN_PROGRESS", "SUCCEEDED", "FAILED". */
const char *backend_work_status_name(enum backend_work_status s);

#endif
