/*
 * cgroup.c - the control groups that hold the instances; see cgroup.h.
 *
 * Two layouts are supported behind one set of functions:
 *
 * - cgroup v2: one unified hierarchy at the root given to cgroup_detect().
 *   Limits go to cpu.max, memory.max and memory.swap.max; each ancestor
 *   gets "+cpu +memory" in its cgroup.subtree_control so the controllers
 *   reach the leaf.
 * - cgroup v1: the cpu, cpuacct and memory hierarchies, found in
 *   /proc/self/mountinfo (they may be co-mounted, e.g. "cpu,cpuacct"). A
 *   cgroup is the same relative directory in every distinct hierarchy.
 *   Limits go to cpu.cfs_period_us/cpu.cfs_quota_us and
 *   memory.limit_in_bytes (plus memory.memsw.limit_in_bytes, so swap cannot
 *   bypass the limit). What only v1 does is in cgroup_v1.c.
 *
 * Memory in use is reported as the "working set", the number docker and
 * cAdvisor report and the one the kernel's OOM decision tracks most
 * closely: total usage (v1 memory.usage_in_bytes, v2 memory.current) minus
 * the inactive file cache (total_inactive_file, inactive_file in
 * memory.stat), which the kernel reclaims before it kills anything.
 *
 * Control files are small; they are read into stack buffers of SMALL_FILE
 * bytes, and a file larger than that is an error rather than a truncation.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "deploy/cgroup_int.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

/* The kernel refuses CFS quotas below 1 ms; that is 10 millicores. */
#define MIN_QUOTA_US 1000
/* 1024 cores: keeps mcpu * 100 far from overflow and from kernel limits. */
#define MAX_MCPU (1024u * 1000u)
#define NAME_MAX_LEN 200
#define SMALL_FILE 8192
#define DIAG_LEN 256
#define DEFAULT_ROOT "/sys/fs/cgroup"

const char *const cgroup_ctl_names[CTL_COUNT] = { "cpu", "cpuacct",
						  "memory" };

/* Maps an errno value to the error table. */
static int from_errno(int e)
{
	switch (e) {
	case ENOENT:
	case ESRCH:
		return MDS_E_NOTFOUND;
	case EEXIST:
		return MDS_E_EXISTS;
	case EBUSY:
	case ENOTEMPTY:
		return MDS_E_CONFLICT;
	case EINVAL:
	case ERANGE:
		return MDS_E_INVAL;
	case ENAMETOOLONG:
		return MDS_E_LIMIT;
	default:
		return MDS_E_SYS;
	}
}

/* Joins base, name and file (either of the last two may be NULL) with '/'
 * into out. Returns 0 or MDS_E_LIMIT if it does not fit. */
int cgroup_join_path(char *out, size_t size, const char *base, const char *name,
		     const char *file)
{
	int n;

	n = snprintf(out, size, "%s%s%s%s%s", base, name ? "/" : "",
		     name ? name : "", file ? "/" : "", file ? file : "");
	if (n < 0 || (size_t)n >= size)
		return MDS_E_LIMIT;
	return 0;
}

/* Writes s to the existing file path, whole, retrying on EINTR and short
 * writes. Never creates the file: a missing control file means a missing
 * cgroup or controller, and must not turn into a plain file. */
int cgroup_write_file(const char *path, const char *s, char *diag,
		      size_t diagsz)
{
	size_t len = strlen(s), off = 0;
	int fd, e = 0, rc = 0;

	do {
		fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		e = errno;
		goto out;
	}
	while (off < len) {
		ssize_t n = write(fd, s + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			break;
		}
		if (n == 0) {
			e = EIO;
			break;
		}
		off += (size_t)n;
	}
	/* Linux closes the descriptor even when close() fails; never retry. */
	if (close(fd) != 0 && e == 0 && errno != EINTR)
		e = errno;
out:
	if (e != 0) {
		rc = from_errno(e);
		mds_diag(diag, diagsz, "write \"%s\" to %s: %s", s, path,
			 strerror(e));
	}
	return rc;
}

/* Reads the whole of the small file path into buf as a NUL-terminated
 * string. MDS_E_LIMIT if it does not fit in size - 1 bytes. */
static int read_file(const char *path, char *buf, size_t size, char *diag,
		     size_t diagsz)
{
	size_t off = 0;
	int fd, e = 0, rc = 0;

	do {
		fd = open(path, O_RDONLY | O_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		e = errno;
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (off == size - 1) {
			char extra;

			/* Full: only an immediate EOF makes it fit. */
			do {
				n = read(fd, &extra, 1);
			} while (n < 0 && errno == EINTR);
			if (n != 0)
				e = n < 0 ? errno : EFBIG;
			break;
		}
		n = read(fd, buf + off, size - 1 - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			break;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	close(fd);
out:
	buf[off] = '\0';
	if (e == EFBIG) {
		rc = MDS_E_LIMIT;
		mds_diag(diag, diagsz, "read %s: larger than %zu bytes", path,
			 size - 1);
	} else if (e != 0) {
		rc = from_errno(e);
		mds_diag(diag, diagsz, "read %s: %s", path, strerror(e));
	}
	return rc;
}

int cgroup_file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Parses a decimal unsigned number that makes up the whole of s (surrounding
 * white space aside). Returns 0 or MDS_E_PARSE. */
static int parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return MDS_E_PARSE;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return MDS_E_PARSE;
	while (*end == ' ' || *end == '\t' || *end == '\n')
		end++;
	if (*end != '\0')
		return MDS_E_PARSE;
	*out = (uint64_t)v;
	return 0;
}

/* Parses a number that ends at white space or the end of s. */
static int parse_u64_word(const char *s, uint64_t *out)
{
	char word[32];
	size_t n = strcspn(s, " \t\n");

	if (n == 0 || n >= sizeof(word))
		return MDS_E_PARSE;
	memcpy(word, s, n);
	word[n] = '\0';
	return parse_u64(word, out);
}

/* Finds the line "key value" in a flat-keyed file (cpu.stat, memory.stat,
 * memory.events, memory.oom_control) and parses its value. Returns
 * MDS_E_NOTFOUND when no line has that key. */
static int keyed_u64(const char *text, const char *key, uint64_t *out)
{
	size_t klen = strlen(key);
	const char *line = text;

	while (*line != '\0') {
		const char *nl = strchr(line, '\n');

		if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
			return parse_u64_word(line + klen + 1, out);
		if (nl == NULL)
			break;
		line = nl + 1;
	}
	return MDS_E_NOTFOUND;
}

/* Tells whether the white-space separated list has the word w (a leading
 * '+', as written into subtree_control, is ignored). */
static int has_word(const char *list, const char *w)
{
	size_t wlen = strlen(w);
	const char *p = list;

	while (*p != '\0') {
		size_t n;

		p += strspn(p, " \t\n");
		if (*p == '+')
			p++;
		n = strcspn(p, " \t\n");
		if (n == wlen && strncmp(p, w, n) == 0)
			return 1;
		p += n;
	}
	return 0;
}

/* A cgroup name is a relative path of components made of [A-Za-z0-9._-],
 * none of them "." or "..", at most NAME_MAX_LEN bytes. */
static int check_name(const char *name)
{
	size_t len, comp = 0;

	if (name == NULL)
		return MDS_E_INVAL;
	len = strlen(name);
	if (len == 0 || len > NAME_MAX_LEN)
		return MDS_E_INVAL;
	for (size_t i = 0; i <= len; i++) {
		char ch = name[i];

		if (ch == '/' || ch == '\0') {
			if (comp == 0)
				return MDS_E_INVAL;
			if ((comp == 1 && name[i - 1] == '.') ||
			    (comp == 2 && name[i - 1] == '.' &&
			     name[i - 2] == '.'))
				return MDS_E_INVAL;
			comp = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		      ch == '-'))
			return MDS_E_INVAL;
		comp++;
	}
	return 0;
}

/* Common entry checks of every call that takes a name. */
static int check_call(const struct cgroup_sys *sys, const char *name,
		      char *diag, size_t diagsz)
{
	if (sys == NULL)
		return MDS_E_INVAL;
	if (sys->version == CGROUP_NONE) {
		mds_diag(diag, diagsz, "no usable cgroups on this system");
		return MDS_E_UNAVAIL;
	}
	if (check_name(name) != 0) {
		mds_diag(diag, diagsz,
			 "bad cgroup name \"%s\" (want a relative path of "
			 "[A-Za-z0-9._-] components)",
			 name ? name : "(null)");
		return MDS_E_INVAL;
	}
	return 0;
}

/* Creates and removes a probe cgroup in dir, proving it is writable. */
int cgroup_probe(const char *dir, char *diag, size_t diagsz)
{
	char path[PATH_MAX], leaf[64];
	int e;

	snprintf(leaf, sizeof(leaf), "mdscale-probe-%ld", (long)getpid());
	if (cgroup_join_path(path, sizeof(path), dir, leaf, NULL) != 0) {
		mds_diag(diag, diagsz, "path too long under %s", dir);
		return MDS_E_LIMIT;
	}
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		e = errno;
		mds_diag(diag, diagsz, "cannot create a cgroup in %s: %s", dir,
			 strerror(e));
		return from_errno(e);
	}
	if (rmdir(path) != 0) {
		e = errno;
		mds_diag(diag, diagsz, "cannot remove probe cgroup %s: %s",
			 path, strerror(e));
		return from_errno(e);
	}
	return 0;
}

static int detect_v2(struct cgroup_sys *sys, const char *root, char *why,
		     size_t whysz)
{
	char path[PATH_MAX], text[SMALL_FILE];
	int rc;

	rc = cgroup_join_path(path, sizeof(path), root, "cgroup.controllers",
			      NULL);
	if (rc != 0)
		return rc;
	rc = read_file(path, text, sizeof(text), NULL, 0);
	if (rc != 0) {
		mds_diag(why, whysz, "no cgroup v2 at %s (%s unreadable)", root,
			 path);
		return rc;
	}
	if (!has_word(text, "cpu") || !has_word(text, "memory")) {
		mds_diag(why, whysz,
			 "cgroup v2 at %s lacks the cpu or memory controller "
			 "(controllers: \"%.*s\")",
			 root, (int)strcspn(text, "\n"), text);
		return MDS_E_UNAVAIL;
	}
	rc = cgroup_probe(root, why, whysz);
	if (rc != 0)
		return rc;
	for (int i = 0; i < CTL_COUNT; i++)
		sys->base[i] = xstrdup(root);
	sys->dirs[0] = sys->base[0];
	sys->ndirs = 1;
	sys->version = CGROUP_V2;
	return 0;
}

int cgroup_detect(const char *root, struct cgroup_sys **out, char *diag,
		  size_t diagsz)
{
	struct cgroup_sys *sys;
	char why2[DIAG_LEN] = "", why1[DIAG_LEN] = "";
	char *r;
	size_t len;

	if (out == NULL)
		return MDS_E_INVAL;
	r = xstrdup(root != NULL && root[0] != '\0' ? root : DEFAULT_ROOT);
	len = strlen(r);
	while (len > 1 && r[len - 1] == '/')
		r[--len] = '\0';
	sys = xcalloc(1, sizeof(*sys));
	if (detect_v2(sys, r, why2, sizeof(why2)) == 0)
		goto out;
	if (cgroup_v1_detect(sys, r, why1, sizeof(why1)) == 0)
		goto out;
	sys->version = CGROUP_NONE;
	mds_diag(diag, diagsz, "no usable cgroups: %s; %s", why2, why1);
out:
	if (sys->version != CGROUP_NONE)
		log_debug("cgroup", "using cgroup %s under %s",
			  cgroup_version_name(sys), r);
	free(r);
	*out = sys;
	return 0;
}

void cgroup_sys_free(struct cgroup_sys *sys)
{
	if (sys == NULL)
		return;
	for (int c = 0; c < CTL_COUNT; c++)
		free(sys->base[c]);
	free(sys);
}

enum cgroup_version cgroup_version(const struct cgroup_sys *sys)
{
	return sys != NULL ? sys->version : CGROUP_NONE;
}

const char *cgroup_version_name(const struct cgroup_sys *sys)
{
	switch (cgroup_version(sys)) {
	case CGROUP_V1:
		return "v1";
	case CGROUP_V2:
		return "v2";
	default:
		return "none";
	}
}

/* On v2, makes sure the controllers are enabled for dir's children. */
static int enable_controllers(const char *dir, char *diag, size_t diagsz)
{
	char path[PATH_MAX], text[SMALL_FILE];
	int rc;

	rc = cgroup_join_path(path, sizeof(path), dir, "cgroup.subtree_control",
			      NULL);
	if (rc != 0)
		return rc;
	rc = read_file(path, text, sizeof(text), diag, diagsz);
	if (rc != 0)
		return rc;
	if (has_word(text, "cpu") && has_word(text, "memory"))
		return 0;
	return cgroup_write_file(path, "+cpu +memory", diag, diagsz);
}

/* Creates name below dir, parents first ("mkdir -p"); on v2 enables the
 * controllers in each ancestor. *created tells whether the leaf is new. */
static int make_dirs(const struct cgroup_sys *sys, const char *dir,
		     const char *name, int *created, char *diag, size_t diagsz)
{
	char path[PATH_MAX];
	size_t len = strlen(name), off = 0;
	int rc;

	*created = 0;
	rc = cgroup_join_path(path, sizeof(path), dir, NULL, NULL);
	if (rc != 0)
		return rc;
	while (off < len) {
		size_t comp = strcspn(name + off, "/");
		size_t plen = strlen(path);

		if (sys->version == CGROUP_V2) {
			rc = enable_controllers(path, diag, diagsz);
			if (rc != 0)
				return rc;
		}
		if (plen + 1 + comp >= sizeof(path))
			return MDS_E_LIMIT;
		path[plen] = '/';
		memcpy(path + plen + 1, name + off, comp);
		path[plen + 1 + comp] = '\0';
		off += comp + 1;
		if (mkdir(path, 0755) == 0) {
			*created = off >= len;
		} else if (errno != EEXIST) {
			int e = errno;

			mds_diag(diag, diagsz, "mkdir %s: %s", path,
				 strerror(e));
			return from_errno(e);
		}
	}
	return 0;
}

/* Writes value into the control file of the cgroup name under base. */
int cgroup_set_file(const char *base, const char *name, const char *file,
		    const char *value, char *diag, size_t diagsz)
{
	char path[PATH_MAX];
	int rc;

	rc = cgroup_join_path(path, sizeof(path), base, name, file);
	if (rc != 0) {
		mds_diag(diag, diagsz, "path too long for %s", file);
		return rc;
	}
	return cgroup_write_file(path, value, diag, diagsz);
}

static int limits_v2(const struct cgroup_sys *sys, const char *name,
		     uint64_t cpu_mcpu, uint64_t mem_bytes, char *diag,
		     size_t diagsz)
{
	const char *base = sys->base[CTL_MEMORY];
	char val[64], path[PATH_MAX];
	int rc;

	if (cpu_mcpu == 0)
		snprintf(val, sizeof(val), "max %d", CPU_PERIOD_US);
	else
		snprintf(val, sizeof(val), "%" PRIu64 " %d", cpu_mcpu * 100,
			 CPU_PERIOD_US);
	rc = cgroup_set_file(base, name, "cpu.max", val, diag, diagsz);
	if (rc != 0)
		return rc;
	if (mem_bytes == 0)
		snprintf(val, sizeof(val), "max");
	else
		snprintf(val, sizeof(val), "%" PRIu64, mem_bytes);
	rc = cgroup_set_file(base, name, "memory.max", val, diag, diagsz);
	if (rc != 0)
		return rc;
	/* Without swap accounting (or without swap) the file is absent. */
	rc = cgroup_join_path(path, sizeof(path), base, name,
			      "memory.swap.max");
	if (rc != 0)
		return rc;
	if (!cgroup_file_exists(path))
		return 0;
	return cgroup_write_file(path, "0", diag, diagsz);
}

int cgroup_create(const struct cgroup_sys *sys, const char *name,
		  uint64_t cpu_mcpu, uint64_t mem_bytes, char *diag,
		  size_t diagsz)
{
	int created[CTL_COUNT] = { 0 };
	int rc;

	rc = check_call(sys, name, diag, diagsz);
	if (rc != 0)
		return rc;
	if (cpu_mcpu != 0 &&
	    (cpu_mcpu * 100 < MIN_QUOTA_US || cpu_mcpu > MAX_MCPU)) {
		mds_diag(diag, diagsz,
			 "cpu quota %" PRIu64 " mcpu out of range (%d..%u)",
			 cpu_mcpu, MIN_QUOTA_US / 100, MAX_MCPU);
		return MDS_E_INVAL;
	}
	if (mem_bytes > UNLIMITED_BYTES) {
		mds_diag(diag, diagsz, "memory limit %" PRIu64 " too large",
			 mem_bytes);
		return MDS_E_INVAL;
	}
	for (int d = 0; d < sys->ndirs; d++) {
		rc = make_dirs(sys, sys->dirs[d], name, &created[d], diag,
			       diagsz);
		if (rc != 0)
			goto out;
	}
	if (sys->version == CGROUP_V2)
		rc = limits_v2(sys, name, cpu_mcpu, mem_bytes, diag, diagsz);
	else
		rc = cgroup_v1_limits(sys, name, cpu_mcpu, mem_bytes, diag,
				      diagsz);
out:
	/* A cgroup this call made but could not configure is removed again,
	 * so a failed create leaves nothing half set up. */
	if (rc != 0) {
		for (int d = 0; d < sys->ndirs; d++) {
			char path[PATH_MAX];

			if (created[d] &&
			    cgroup_join_path(path, sizeof(path), sys->dirs[d],
					     name, NULL) == 0)
				rmdir(path);
		}
	}
	return rc;
}

int cgroup_prepare(const struct cgroup_sys *sys, const char *name,
		   char *diag, size_t diagsz)
{
	char path[PATH_MAX];
	int created, rc;

	rc = check_call(sys, name, diag, diagsz);
	if (rc != 0)
		return rc;
	for (int d = 0; d < sys->ndirs; d++) {
		rc = make_dirs(sys, sys->dirs[d], name, &created, diag, diagsz);
		if (rc != 0)
			return rc;
		if (sys->version != CGROUP_V2)
			continue;
		rc = cgroup_join_path(path, sizeof(path), sys->dirs[d], name,
				      NULL);
		if (rc != 0)
			return rc;
		rc = enable_controllers(path, diag, diagsz);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int cgroup_attach(const struct cgroup_sys *sys, const char *name, pid_t pid)
{
	char diag[DIAG_LEN], val[32];
	int rc;

	rc = check_call(sys, name, NULL, 0);
	if (rc != 0)
		return rc;
	if (pid < 0)
		return MDS_E_INVAL;
	snprintf(val, sizeof(val), "%ld", (long)(pid != 0 ? pid : getpid()));
	for (int d = 0; d < sys->ndirs; d++) {
		rc = cgroup_set_file(sys->dirs[d], name, "cgroup.procs", val,
				     diag, sizeof(diag));
		if (rc != 0) {
			if (rc != MDS_E_NOTFOUND)
				log_warn("cgroup", "attach %s to %s: %s", val,
					 name, diag);
			return rc;
		}
	}
	return 0;
}

/* Reads the control file of the cgroup name under base into buf (size
 * bytes) as read_file() does. */
static int read_control(const char *base, const char *name, const char *file,
			char *buf, size_t size)
{
	char path[PATH_MAX];
	int rc;

	rc = cgroup_join_path(path, sizeof(path), base, name, file);
	if (rc != 0)
		return rc;
	return read_file(path, buf, size, NULL, 0);
}

/* Reads one number file of the cgroup; a "max" value or a negative one
 * (v1's "-1") reads as 0 with *unlimited set, when unlimited is not NULL. */
int cgroup_get_u64(const char *base, const char *name, const char *file,
		   uint64_t *out, int *unlimited)
{
	char text[64];
	int rc;

	rc = read_control(base, name, file, text, sizeof(text));
	if (rc != 0)
		return rc;
	if (unlimited != NULL) {
		*unlimited = strncmp(text, "max", 3) == 0 || text[0] == '-';
		if (*unlimited) {
			*out = 0;
			return 0;
		}
	}
	return parse_u64(text, out);
}

/* Reads key from a flat-keyed file; a missing key reads as 0. */
int cgroup_get_keyed(const char *base, const char *name, const char *file,
		     const char *key, uint64_t *out)
{
	char text[SMALL_FILE];
	int rc;

	*out = 0;
	rc = read_control(base, name, file, text, sizeof(text));
	if (rc != 0)
		return rc;
	rc = keyed_u64(text, key, out);
	return rc == MDS_E_NOTFOUND ? 0 : rc;
}

static int usage_v2(const struct cgroup_sys *sys, const char *name,
		    struct cgroup_usage *u)
{
	const char *b = sys->base[CTL_MEMORY];
	char text[64];
	uint64_t usec = 0, cur = 0, inactive = 0, quota = 0, period = 0;
	int rc, unlimited;

	rc = cgroup_get_keyed(b, name, "cpu.stat", "usage_usec", &usec);
	if (rc != 0)
		return rc;
	u->cpu_usage_ns = usec * 1000;
	rc = cgroup_get_u64(b, name, "memory.current", &cur, NULL);
	if (rc != 0)
		return rc;
	rc = cgroup_get_keyed(b, name, "memory.stat", "inactive_file",
			      &inactive);
	if (rc != 0)
		return rc;
	u->mem_bytes = cur > inactive ? cur - inactive : 0;
	rc = cgroup_get_u64(b, name, "memory.max", &u->mem_limit, &unlimited);
	if (rc != 0)
		return rc;
	rc = read_control(b, name, "cpu.max", text, sizeof(text));
	if (rc != 0)
		return rc;
	/* "QUOTA PERIOD" or "max PERIOD". */
	if (strncmp(text, "max", 3) != 0) {
		const char *sp = strchr(text, ' ');

		rc = parse_u64_word(text, &quota);
		if (rc == 0 && sp != NULL)
			rc = parse_u64(sp + 1, &period);
		if (rc != 0)
			return rc;
		if (period != 0)
			u->cpu_quota_mcpu = quota * 1000 / period;
	}
	return cgroup_get_keyed(b, name, "memory.events", "oom_kill",
				&u->oom_kills);
}

int cgroup_usage(const struct cgroup_sys *sys, const char *name,
		 struct cgroup_usage *out)
{
	int rc;

	rc = check_call(sys, name, NULL, 0);
	if (rc != 0)
		return rc;
	if (out == NULL)
		return MDS_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (sys->version == CGROUP_V2)
		rc = usage_v2(sys, name, out);
	else
		rc = cgroup_v1_usage(sys, name, out);
	if (rc != 0 && rc != MDS_E_NOTFOUND)
		log_warn("cgroup", "usage of %s: %s", name, mds_strerror(rc));
	return rc;
}

/* Calls fn for every pid listed in the cgroup.procs file at path, reading it
 * in chunks so a cgroup with many processes needs no large buffer. fn
 * returns 0 to go on or an error to stop with. */
static int for_each_pid(const char *path, int (*fn)(pid_t pid, void *arg),
			void *arg)
{
	char chunk[4096];
	uint64_t cur = 0;
	int fd, rc = 0, digits = 0;

	do {
		fd = open(path, O_RDONLY | O_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return from_errno(errno);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = from_errno(errno);
			break;
		}
		/* EOF ends a last line that has no newline. */
		if (n == 0) {
			if (digits > 0)
				rc = fn((pid_t)cur, arg);
			break;
		}
		for (ssize_t i = 0; i < n && rc == 0; i++) {
			char ch = chunk[i];

			if (ch >= '0' && ch <= '9') {
				if (cur > (uint64_t)INT32_MAX) {
					rc = MDS_E_PARSE;
					break;
				}
				cur = cur * 10 + (uint64_t)(ch - '0');
				digits++;
			} else if (ch == '\n') {
				if (digits > 0)
					rc = fn((pid_t)cur, arg);
				cur = 0;
				digits = 0;
			} else {
				rc = MDS_E_PARSE;
			}
		}
		if (rc != 0)
			break;
	}
	close(fd);
	return rc;
}

struct pid_list {
	pid_t *pids;
	size_t max;
	size_t n;
	int more;
};

static int collect_pid(pid_t pid, void *arg)
{
	struct pid_list *l = arg;

	if (l->n < l->max)
		l->pids[l->n++] = pid;
	else
		l->more = 1;
	return 0;
}

int cgroup_pids(const struct cgroup_sys *sys, const char *name, pid_t *pids,
		size_t max, size_t *n)
{
	struct pid_list l = { pids, max, 0, 0 };
	char path[PATH_MAX];
	int rc;

	if (n != NULL)
		*n = 0;
	rc = check_call(sys, name, NULL, 0);
	if (rc != 0)
		return rc;
	if (n == NULL || (pids == NULL && max > 0))
		return MDS_E_INVAL;
	rc = cgroup_join_path(path, sizeof(path), sys->base[CTL_MEMORY], name,
			      "cgroup.procs");
	if (rc != 0)
		return rc;
	rc = for_each_pid(path, collect_pid, &l);
	*n = l.n;
	if (rc == 0 && l.more)
		rc = MDS_E_LIMIT;
	return rc;
}

struct kill_ctx {
	int sig;
	int failed; /* errno of the first failing kill(), or 0 */
};

static int kill_pid(pid_t pid, void *arg)
{
	struct kill_ctx *k = arg;

	/* A process that exited meanwhile is fine. */
	if (kill(pid, k->sig) != 0 && errno != ESRCH && k->failed == 0)
		k->failed = errno;
	return 0;
}

int cgroup_kill(const struct cgroup_sys *sys, const char *name, int sig)
{
	struct kill_ctx k = { sig, 0 };
	char path[PATH_MAX];
	int rc;

	rc = check_call(sys, name, NULL, 0);
	if (rc != 0)
		return rc;
	rc = cgroup_join_path(path, sizeof(path), sys->dirs[0], name, NULL);
	if (rc != 0)
		return rc;
	if (!cgroup_file_exists(path))
		return MDS_E_NOTFOUND;
	/* cgroup.kill (v2, Linux 5.14) kills atomically, forks included, but
	 * only ever with SIGKILL. */
	if (sys->version == CGROUP_V2 && sig == SIGKILL) {
		rc = cgroup_join_path(path, sizeof(path), sys->dirs[0], name,
				      "cgroup.kill");
		if (rc != 0)
			return rc;
		if (cgroup_file_exists(path))
			return cgroup_write_file(path, "1", NULL, 0);
	}
	/* Every distinct hierarchy, in case an attach got only halfway. */
	for (int d = 0; d < sys->ndirs; d++) {
		rc = cgroup_join_path(path, sizeof(path), sys->dirs[d], name,
				      "cgroup.procs");
		if (rc == 0)
			rc = for_each_pid(path, kill_pid, &k);
		if (rc == MDS_E_NOTFOUND)
			rc = 0;
		if (rc != 0)
			return rc;
	}
	if (k.failed != 0) {
		log_warn("cgroup", "kill -%d in %s: %s", sig, name,
			 strerror(k.failed));
		return from_errno(k.failed);
	}
	return 0;
}

static int count_pid(pid_t pid, void *arg)
{
	(void)pid;
	(*(size_t *)arg)++;
	return 0;
}

int cgroup_destroy(const struct cgroup_sys *sys, const char *name)
{
	char path[PATH_MAX];
	int rc;

	rc = check_call(sys, name, NULL, 0);
	if (rc != 0)
		return rc;
	/* Check every hierarchy before removing any, so a cgroup with
	 * processes is left whole rather than half removed. */
	for (int d = 0; d < sys->ndirs; d++) {
		size_t count = 0;

		rc = cgroup_join_path(path, sizeof(path), sys->dirs[d], name,
				      "cgroup.procs");
		if (rc != 0)
			return rc;
		rc = for_each_pid(path, count_pid, &count);
		if (rc != 0 && rc != MDS_E_NOTFOUND)
			return rc;
		if (count > 0)
			return MDS_E_CONFLICT;
	}
	for (int d = 0; d < sys->ndirs; d++) {
		rc = cgroup_join_path(path, sizeof(path), sys->dirs[d], name,
				      NULL);
		if (rc != 0)
			return rc;
		if (rmdir(path) != 0 && errno != ENOENT) {
			int e = errno;

			log_warn("cgroup", "rmdir %s: %s", path, strerror(e));
			return from_errno(e);
		}
	}
	return 0;
}

char *cgroup_controller_path(const struct cgroup_sys *sys,
			     const char *controller, const char *name)
{
	char path[PATH_MAX];

	if (check_call(sys, name, NULL, 0) != 0 || controller == NULL)
		return NULL;
	for (int c = 0; c < CTL_COUNT; c++) {
		if (strcmp(controller, cgroup_ctl_names[c]) == 0) {
			if (cgroup_join_path(path, sizeof(path), sys->base[c],
					     name, NULL) != 0)
				return NULL;
			return xstrdup(path);
		}
	}
	return NULL;
}

char *cgroup_path(const struct cgroup_sys *sys, const char *name)
{
	return cgroup_controller_path(sys, "memory", name);
}

char *cgroup_procs_files(const struct cgroup_sys *sys, const char *name)
{
	char path[PATH_MAX];
	struct buf b;

	if (check_call(sys, name, NULL, 0) != 0)
		return NULL;
	buf_init(&b, (size_t)CTL_COUNT * PATH_MAX);
	for (int i = 0; i < sys->ndirs; i++) {
		if (cgroup_join_path(path, sizeof(path), sys->dirs[i], name,
				     "cgroup.procs") != 0) {
			buf_free(&b);
			return NULL;
		}
		if (i > 0)
			buf_addstr(&b, ":");
		buf_addstr(&b, path);
	}
	return buf_steal(&b);
}

int cgroup_join(const char *procs_files)
{
	char pid[32], path[PATH_MAX];
	const char *p = procs_files;

	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	while (*p != '\0') {
		size_t n = strcspn(p, ":");
		int rc;

		if (n == 0 || n >= sizeof(path))
			return MDS_E_INVAL;
		memcpy(path, p, n);
		path[n] = '\0';
		rc = cgroup_write_file(path, pid, NULL, 0);
		if (rc != 0)
			return rc;
		p += n;
		if (*p == ':')
			p++;
	}
	return 0;
}
