/*
 * backend_local.h - the `local` backend: instances are processes on this
 * machine, each in its own cgroup sized by its shape.
 *
 * An instance runs as `mdscale __instance PROCS USER -- command...` (the
 * launcher joins the cgroup, then becomes USER when the daemon is root:
 * "UID:GID", the deployment's own uid from instanceUids, else the
 * configured runAsUser; it sets no_new_privs and closes every inherited
 * descriptor before exec), with a clean environment, detached, with its output in
 * files so that it outlives a daemon killed with SIGKILL. Readiness is an
 * HTTP GET of the deployment's health path on its loopback port; a crashed
 * instance is restarted with a backoff; usage comes from its cgroup. See
 * backend.h for the contract of each op.
 *
 * The instances' cgroups are "mdscale/ID" in each hierarchy. The parent,
 * "mdscale", is made by backend_local_new(), which the daemon calls
 * before it gives up CAP_DAC_OVERRIDE: a hierarchy's root may be open to
 * uid 0 only with it, and the instances' cgroups are made later.
 */
#ifndef MDS_BACKEND_LOCAL_H
#define MDS_BACKEND_LOCAL_H

#include <uv.h>

#include "daemon/config.h"
#include "deploy/backend.h"

struct cgroup_sys;
struct httpc;

/* What the local backend runs on; all borrowed, and must outlive it. */
struct backend_local_env {
	uv_loop_t *loop;
	struct cgroup_sys *cgroups;
	struct httpc *httpc;
	const struct config *config; /* shapes, health interval, start
					attempts */
	const char *data_dir;  /* output goes to data_dir/instances:
				  ID.out.log (stdout), ID.err.log (stderr) */
	const char *self_exe;  /* this binary, for `mdscale __instance` */
	/* Optional: told of every instance whose output files may be
	 * written, when it is adopted and before each start (the files exist
	 * then), so that logging can follow them. */
	void (*instance_output)(void *arg, const char *deployment_id,
				const char *instance_id);
	void *instance_output_arg;
};

/*
 * Makes the local backend. Creates data_dir/instances if needed. Returns 0
 * and a new backend in *out (freed with its ops->close), or MDS_E_IO with
 * detail in diag.
 */
int backend_local_new(const struct backend_local_env *env,
		      struct backend **out, char *diag, size_t diagsz);

#endif
