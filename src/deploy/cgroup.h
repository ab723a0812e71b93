/*
 * cgroup.h - the control groups that hold the instances.
 *
 * One cgroup per instance, named by a relative path such as
 * "mdscale/mi-0123abcd", enforcing the instance's shape: a CPU quota (in
 * millicores) and a memory limit (in bytes). Works on cgroup v2 (a unified
 * hierarchy with the cpu and memory controllers) and on cgroup v1 (separate
 * cpu, cpuacct and memory hierarchies), detected at start. This is the only
 * module that touches cgroup files.
 */
#ifndef MDS_CGROUP_H
#define MDS_CGROUP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum cgroup_version { CGROUP_NONE = 0, CGROUP_V1 = 1, CGROUP_V2 = 2 };

struct cgroup_sys;

struct cgroup_usage {
	uint64_t cpu_usage_ns;   /* CPU time used since creation */
	uint64_t mem_bytes;      /* memory in use now: the working set,
				  * usage minus inactive file cache */
	uint64_t mem_limit;      /* memory limit, bytes (0 if none) */
	uint64_t cpu_quota_mcpu; /* CPU quota in millicores (0 if none) */
	uint64_t oom_kills;      /* times the memory limit killed a process */
};

/*
 * Detects the cgroup hierarchy under root (normally "/sys/fs/cgroup").
 * Returns 0 and a handle in *out; if no writable cpu and memory controllers
 * are found, returns 0 with version CGROUP_NONE (every later call then
 * returns MDS_E_UNAVAIL) and the reason in diag. The caller frees *out with
 * cgroup_sys_free().
 */
int cgroup_detect(const char *root, struct cgroup_sys **out, char *diag,
		  size_t diagsz);
void cgroup_sys_free(struct cgroup_sys *sys);
enum cgroup_version cgroup_version(const struct cgroup_sys *sys);
/* Returns "v1", "v2" or "none". */
const char *cgroup_version_name(const struct cgroup_sys *sys);

/*
 * Creates (or updates, if it exists) the cgroup name with the given limits.
 * Parents are created as needed (and on v2 the controllers enabled in them).
 * name is a relative path of [A-Za-z0-9._-] components (MDS_E_INVAL
 * otherwise). cpu_mcpu 0 means no CPU limit, else 10..1024000 (the CFS
 * period is 100 ms, the quota cpu_mcpu * 100 us); mem_bytes 0 means no
 * memory limit. Swap is disabled for the cgroup where the kernel allows it.
 * A cgroup this call created but could not configure is removed again.
 */
int cgroup_create(const struct cgroup_sys *sys, const char *name,
		  uint64_t cpu_mcpu, uint64_t mem_bytes, char *diag,
		  size_t diagsz);

/*
 * Makes the cgroup name in every hierarchy, with no limits of its own (on
 * v2 with the cpu and memory controllers enabled down to it): the parent
 * of the instances' cgroups, made at start while the daemon has root's
 * full powers. A hierarchy's root may be closed to uid 0 without
 * CAP_DAC_OVERRIDE (mode 0555, as some hosts mount cgroup v1); a
 * directory made here is uid 0's own, so the instances' cgroups can be
 * made in it after that capability is dropped.
 */
int cgroup_prepare(const struct cgroup_sys *sys, const char *name,
		   char *diag, size_t diagsz);

/* Moves process pid (0: the caller) into the cgroup. */
int cgroup_attach(const struct cgroup_sys *sys, const char *name, pid_t pid);

/* Reads the cgroup's usage now. MDS_E_NOTFOUND if it does not exist. */
int cgroup_usage(const struct cgroup_sys *sys, const char *name,
		 struct cgroup_usage *out);

/*
 * Fills pids with up to max process ids in the cgroup; *n gets the count
 * stored. If the cgroup holds more than max, the first max are stored and
 * MDS_E_LIMIT is returned.
 */
int cgroup_pids(const struct cgroup_sys *sys, const char *name, pid_t *pids,
		size_t max, size_t *n);

/*
 * Sends sig to every process in the cgroup. On v2 SIGKILL goes through
 * cgroup.kill (atomic, where the kernel has it); otherwise each listed pid
 * is signalled, and a process forking at that very moment can escape one
 * call, so a caller stopping an instance repeats kill and destroy until
 * destroy succeeds. MDS_E_NOTFOUND if the cgroup does not exist.
 */
int cgroup_kill(const struct cgroup_sys *sys, const char *name, int sig);

/*
 * Removes the cgroup. Fails with MDS_E_CONFLICT if processes remain (the
 * caller kills them first). A cgroup that does not exist is not an error.
 */
int cgroup_destroy(const struct cgroup_sys *sys, const char *name);

/*
 * Returns the cgroup.procs files of the cgroup, joined by ':', newly
 * allocated: what an instance's launcher passes to cgroup_join() in the
 * child, before exec, so that the model server starts inside its limits.
 */
char *cgroup_procs_files(const struct cgroup_sys *sys, const char *name);

/* Writes the calling process's pid into each file of a ':'-joined list. */
int cgroup_join(const char *procs_files);

/* Returns the absolute path of the cgroup in the memory (v1) or unified
 * (v2) hierarchy, for display; the caller frees it. NULL for a bad name or
 * without cgroups. */
char *cgroup_path(const struct cgroup_sys *sys, const char *name);

/*
 * Returns the absolute path of the cgroup in the hierarchy that holds
 * controller ("cpu", "cpuacct" or "memory"; on v2 always the unified one),
 * for display and tests; the caller frees it. NULL for an unknown
 * controller, a bad name or without cgroups.
 */
char *cgroup_controller_path(const struct cgroup_sys *sys,
			     const char *controller, const char *name);

#endif
