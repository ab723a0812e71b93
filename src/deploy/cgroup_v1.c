/*
 * cgroup_v1.c - the cgroup v1 layout: the cpu, cpuacct and memory
 * hierarchies found in /proc/self/mountinfo (they may be co-mounted, e.g.
 * "cpu,cpuacct"), limits in cpu.cfs_period_us/cpu.cfs_quota_us and
 * memory.limit_in_bytes (with memory.memsw.limit_in_bytes), usage from
 * cpuacct.usage and memory.stat. The rest is cgroup.c's; see cgroup.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/cgroup_int.h"
#include "util/err.h"
#include "util/xalloc.h"

#define MOUNTINFO "/proc/self/mountinfo"

/* Decodes mountinfo's octal escapes ("\040" for a space) in place. */
static void unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r != '\0'; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' &&
		    r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 +
				      (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/* Splits line at spaces in place into at most max fields; returns the
 * count. */
static int split(char *line, char **fields, int max)
{
	int n = 0;
	char *p = line;

	while (*p != '\0' && n < max) {
		while (*p == ' ')
			p++;
		if (*p == '\0' || *p == '\n')
			break;
		fields[n++] = p;
		p += strcspn(p, " \n");
		if (*p != '\0')
			*p++ = '\0';
	}
	return n;
}

/* Tells whether path is root or below it. */
static int under(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (n == 1 && root[0] == '/')
		return path[0] == '/';
	return strncmp(path, root, n) == 0 &&
	       (path[n] == '/' || path[n] == '\0');
}

/* Records, from one mountinfo line, the mount points of the v1 hierarchies
 * that hold the controllers mdscale uses. A mountinfo line reads
 * "id parent maj:min root mountpoint opts [optional...] - fstype source
 * superopts"; the controllers are among the comma-separated superopts. */
static void scan_mount(struct cgroup_sys *sys, char *line, const char *root)
{
	char *f[64];
	int n = split(line, f, 64), dash = -1;

	for (int i = 6; i < n; i++) {
		if (strcmp(f[i], "-") == 0) {
			dash = i;
			break;
		}
	}
	if (dash < 0 || dash + 3 >= n || strcmp(f[dash + 1], "cgroup") != 0)
		return;
	unescape(f[4]);
	if (!under(f[4], root))
		return;
	for (char *opt = f[dash + 3]; *opt != '\0';) {
		size_t len = strcspn(opt, ",");

		for (int c = 0; c < CTL_COUNT; c++) {
			if (sys->base[c] == NULL &&
			    strlen(cgroup_ctl_names[c]) == len &&
			    strncmp(opt, cgroup_ctl_names[c], len) == 0)
				sys->base[c] = xstrdup(f[4]);
		}
		opt += len;
		if (*opt == ',')
			opt++;
	}
}

int cgroup_v1_detect(struct cgroup_sys *sys, const char *root, char *why,
		     size_t whysz)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;

	f = fopen(MOUNTINFO, "re");
	if (f == NULL) {
		mds_diag(why, whysz, "cannot read %s: %s", MOUNTINFO,
			 strerror(errno));
		return MDS_E_UNAVAIL;
	}
	while (getline(&line, &cap, f) >= 0)
		scan_mount(sys, line, root);
	free(line);
	fclose(f);
	for (int c = 0; c < CTL_COUNT; c++) {
		if (sys->base[c] == NULL) {
			mds_diag(why, whysz,
				 "no cgroup v1 %s hierarchy mounted under %s",
				 cgroup_ctl_names[c], root);
			rc = MDS_E_UNAVAIL;
			goto out;
		}
	}
	/* Co-mounted controllers share a hierarchy: keep each once. */
	sys->ndirs = 0;
	for (int c = 0; c < CTL_COUNT; c++) {
		int seen = 0;

		for (int d = 0; d < sys->ndirs; d++)
			seen |= strcmp(sys->dirs[d], sys->base[c]) == 0;
		if (!seen)
			sys->dirs[sys->ndirs++] = sys->base[c];
	}
	for (int d = 0; d < sys->ndirs; d++) {
		rc = cgroup_probe(sys->dirs[d], why, whysz);
		if (rc != 0)
			goto out;
	}
	sys->version = CGROUP_V1;
out:
	if (rc != 0) {
		for (int c = 0; c < CTL_COUNT; c++) {
			free(sys->base[c]);
			sys->base[c] = NULL;
		}
		sys->ndirs = 0;
	}
	return rc;
}

int cgroup_v1_limits(const struct cgroup_sys *sys, const char *name,
		     uint64_t cpu_mcpu, uint64_t mem_bytes, char *diag,
		     size_t diagsz)
{
	const char *mem = sys->base[CTL_MEMORY];
	char val[64], path[PATH_MAX];
	int rc, memsw;

	snprintf(val, sizeof(val), "%d", CPU_PERIOD_US);
	rc = cgroup_set_file(sys->base[CTL_CPU], name, "cpu.cfs_period_us", val,
			     diag, diagsz);
	if (rc != 0)
		return rc;
	if (cpu_mcpu == 0)
		snprintf(val, sizeof(val), "-1");
	else
		snprintf(val, sizeof(val), "%" PRIu64, cpu_mcpu * 100);
	rc = cgroup_set_file(sys->base[CTL_CPU], name, "cpu.cfs_quota_us", val,
			     diag, diagsz);
	if (rc != 0)
		return rc;

	if (mem_bytes == 0)
		snprintf(val, sizeof(val), "-1");
	else
		snprintf(val, sizeof(val), "%" PRIu64, mem_bytes);
	rc = cgroup_join_path(path, sizeof(path), mem, name,
			      "memory.memsw.limit_in_bytes");
	if (rc != 0)
		return rc;
	memsw = cgroup_file_exists(path);
	/* The kernel keeps memsw >= limit at every step: lowering sets the
	 * limit first, raising must set memsw first, and the limit refuses
	 * (EINVAL) to pass memsw. Try the limit first, memsw first on EINVAL. */
	rc = cgroup_set_file(mem, name, "memory.limit_in_bytes", val, diag,
			     diagsz);
	if (rc == MDS_E_INVAL && memsw) {
		rc = cgroup_write_file(path, val, diag, diagsz);
		if (rc != 0)
			return rc;
		rc = cgroup_set_file(mem, name, "memory.limit_in_bytes", val,
				     diag, diagsz);
	}
	if (rc != 0)
		return rc;
	if (memsw)
		rc = cgroup_write_file(path, val, diag, diagsz);
	return rc;
}

int cgroup_v1_usage(const struct cgroup_sys *sys, const char *name,
		    struct cgroup_usage *u)
{
	const char *mem = sys->base[CTL_MEMORY], *cpu = sys->base[CTL_CPU];
	uint64_t usage = 0, inactive = 0, quota = 0, period = 0;
	int rc, unlimited;

	rc = cgroup_get_u64(sys->base[CTL_CPUACCT], name, "cpuacct.usage",
			    &u->cpu_usage_ns, NULL);
	if (rc != 0)
		return rc;
	rc = cgroup_get_u64(mem, name, "memory.usage_in_bytes", &usage, NULL);
	if (rc != 0)
		return rc;
	rc = cgroup_get_keyed(mem, name, "memory.stat", "total_inactive_file",
			      &inactive);
	if (rc != 0)
		return rc;
	u->mem_bytes = usage > inactive ? usage - inactive : 0;
	rc = cgroup_get_u64(mem, name, "memory.limit_in_bytes", &u->mem_limit,
			    NULL);
	if (rc != 0)
		return rc;
	if (u->mem_limit >= UNLIMITED_BYTES)
		u->mem_limit = 0;
	rc = cgroup_get_u64(cpu, name, "cpu.cfs_quota_us", &quota, &unlimited);
	if (rc != 0)
		return rc;
	rc = cgroup_get_u64(cpu, name, "cpu.cfs_period_us", &period, NULL);
	if (rc != 0)
		return rc;
	if (!unlimited && period != 0)
		u->cpu_quota_mcpu = quota * 1000 / period;
	/* The oom_kill line exists since Linux 4.13; older kernels give 0. */
	return cgroup_get_keyed(mem, name, "memory.oom_control", "oom_kill",
				&u->oom_kills);
}
