/*
 * cgroup_int.h - what the files of the cgroup code share, and no other
 * module sees: the layout cgroup_detect() found and the helpers that read
 * and write control files. cgroup.c holds the calls of cgroup.h and the
 * v2 layout; cgroup_v1.c the v1 layout's specifics.
 */
#ifndef MDS_CGROUP_INT_H
#define MDS_CGROUP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "deploy/cgroup.h"

#define CPU_PERIOD_US 100000
/* v1 reports "no limit" as a page-rounded LLONG_MAX; anything this large is
 * treated as unlimited. */
#define UNLIMITED_BYTES (UINT64_C(1) << 62)

/* The controllers mdscale uses, indexing cgroup_sys.base. */
enum ctl { CTL_CPU, CTL_CPUACCT, CTL_MEMORY, CTL_COUNT };

/* Their names, as in cgroup.controllers and v1 mount options. */
extern const char *const cgroup_ctl_names[CTL_COUNT];

struct cgroup_sys {
	enum cgroup_version version;
	/* The directory holding each controller's hierarchy root (on v2 all
	 * three are the unified root). */
	char *base[CTL_COUNT];
	/* The distinct hierarchy roots, where cgroups are made and removed:
	 * one on v2, two or three on v1. Pointers into base. */
	const char *dirs[CTL_COUNT];
	int ndirs;
};

/* ---- cgroup.c: control files ---- */

/* Joins base, name and file (either of the last two may be NULL) with '/'
 * into out. Returns 0 or MDS_E_LIMIT if it does not fit. */
int cgroup_join_path(char *out, size_t size, const char *base,
		     const char *name, const char *file);
/* Writes s to the existing file path, whole. Returns 0 or a code from the
 * errno (MDS_E_NOTFOUND for a missing file, MDS_E_INVAL for a value the
 * kernel refuses), with diag filled. Never creates the file. */
int cgroup_write_file(const char *path, const char *s, char *diag,
		      size_t diagsz);
/* Whether path exists. */
int cgroup_file_exists(const char *path);
/* Writes value into the control file of the cgroup name under base;
 * returns as cgroup_write_file(). */
int cgroup_set_file(const char *base, const char *name, const char *file,
		    const char *value, char *diag, size_t diagsz);
/* Reads one number file of the cgroup; a "max" value or a negative one
 * (v1's "-1") reads as 0 with *unlimited set, when unlimited is not NULL.
 * Returns 0 or an error code. */
int cgroup_get_u64(const char *base, const char *name, const char *file,
		   uint64_t *out, int *unlimited);
/* Reads key from a flat-keyed file; a missing key reads as 0. Returns 0
 * or an error code. */
int cgroup_get_keyed(const char *base, const char *name, const char *file,
		     const char *key, uint64_t *out);
/* Creates and removes a probe cgroup in dir, proving it is writable.
 * Returns 0, or an error code with diag filled. */
int cgroup_probe(const char *dir, char *diag, size_t diagsz);

/* ---- cgroup_v1.c: the v1 layout ---- */

/* Finds the cpu, cpuacct and memory hierarchies mounted under root and
 * fills sys (version CGROUP_V1). Returns 0, or MDS_E_UNAVAIL (or a probe's
 * error) with why filled and sys left without bases. */
int cgroup_v1_detect(struct cgroup_sys *sys, const char *root, char *why,
		     size_t whysz);
/* Sets the CFS quota and the memory limits (0: none) of the cgroup name.
 * Returns 0, or an error code with diag filled. */
int cgroup_v1_limits(const struct cgroup_sys *sys, const char *name,
		     uint64_t cpu_mcpu, uint64_t mem_bytes, char *diag,
		     size_t diagsz);
/* Reads the usage of the cgroup name into u. Returns 0 or an error
 * code. */
int cgroup_v1_usage(const struct cgroup_sys *sys, const char *name,
		    struct cgroup_usage *u);

#endif
