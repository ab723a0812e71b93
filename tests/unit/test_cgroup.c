/*
 * test_cgroup.c - cgroups for instances, on the real hierarchy of this
 * machine and on a fake v2 tree.
 *
 * The real tests need root and writable cgroups (v1 or v2). Without them they
 * fail, printing why: CI runs them as root, and a silent skip would hide a
 * broken runner. Every cgroup they make is below "mdscale-test", removed
 * (processes killed first) before the tests and after them, whatever the
 * outcome.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "deploy/cgroup.h"
#include "util/err.h"

#define PREFIX "mdscale-test"
#define MIB (UINT64_C(1) << 20)
#define MAX_CHILDREN 8

enum child_mode { CHILD_BURN, CHILD_HOG, CHILD_SLEEP };

struct fixture {
	struct cgroup_sys *sys;
	char diag[512];
	pid_t children[MAX_CHILDREN];
	int nchildren;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Reads a small file into buf without its trailing newline; "" if absent. */
static const char *slurp(const char *path, char *buf, size_t size)
{
	size_t off = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	buf[0] = '\0';
	if (fd < 0)
		return buf;
	while (off < size - 1) {
		n = read(fd, buf + off, size - 1 - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	buf[off] = '\0';
	while (off > 0 && buf[off - 1] == '\n')
		buf[--off] = '\0';
	return buf;
}

static void spit(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* The content of file in the cgroup name, in controller's hierarchy. */
static const char *cg_file(struct fixture *f, const char *controller,
			   const char *name, const char *file, char *buf,
			   size_t size)
{
	char path[4096];
	char *dir = cgroup_controller_path(f->sys, controller, name);

	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	free(dir);
	return slurp(path, buf, size);
}

static int cg_exists(struct fixture *f, const char *controller,
		     const char *name)
{
	struct stat st;
	char *dir = cgroup_controller_path(f->sys, controller, name);
	int rc;

	assert_non_null(dir);
	rc = stat(dir, &st) == 0;
	free(dir);
	return rc;
}

static void reap_any(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* Kills everything in name and removes it, retrying while the killed
 * processes exit. */
static void kill_and_destroy(struct cgroup_sys *sys, const char *name)
{
	for (int i = 0; i < 300; i++) {
		if (cgroup_kill(sys, name, SIGKILL) == MDS_E_NOTFOUND)
			return;
		reap_any();
		if (cgroup_destroy(sys, name) == 0)
			return;
		sleep_s(0.01);
	}
	fprintf(stderr, "test_cgroup: could not remove cgroup %s\n", name);
}

/* Removes rel and every cgroup below it in controller's hierarchy. */
static void remove_tree(struct cgroup_sys *sys, const char *controller,
			const char *rel)
{
	char *dir = cgroup_controller_path(sys, controller, rel);
	DIR *d;
	struct dirent *e;

	if (dir == NULL)
		return;
	d = opendir(dir);
	free(dir);
	if (d == NULL)
		return;
	for (;;) {
		char sub[512];

		e = readdir(d);
		if (e == NULL)
			break;
		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", rel, e->d_name);
		remove_tree(sys, controller, sub);
	}
	closedir(d);
	kill_and_destroy(sys, rel);
}

static void cleanup_all(struct fixture *f)
{
	static const char *const ctls[] = { "cpu", "cpuacct", "memory" };

	for (int i = 0; i < f->nchildren; i++) {
		kill(f->children[i], SIGKILL);
		waitpid(f->children[i], NULL, 0);
	}
	f->nchildren = 0;
	if (cgroup_version(f->sys) == CGROUP_NONE)
		return;
	for (size_t i = 0; i < sizeof(ctls) / sizeof(ctls[0]); i++)
		remove_tree(f->sys, ctls[i], PREFIX);
}

static int group_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (cgroup_detect("/sys/fs/cgroup", &f->sys, f->diag,
			  sizeof(f->diag)) != 0)
		return -1;
	cleanup_all(f);
	*state = f;
	return 0;
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;

	cleanup_all(f);
	cgroup_sys_free(f->sys);
	free(f);
	return 0;
}

/* Fails the test, saying why, unless real cgroups are usable. */
static struct fixture *require_real(void **state)
{
	struct fixture *f = *state;

	if (geteuid() != 0)
		fail_msg("the cgroup tests must run as root (euid %ld; %s); "
			 "CI runs them as root",
			 (long)geteuid(),
			 f->diag[0] != '\0' ? f->diag : "cgroups detected");
	if (cgroup_version(f->sys) == CGROUP_NONE)
		fail_msg("no writable cgroups on this machine: %s", f->diag);
	return f;
}

static void test_name(char *buf, size_t size, const char *what)
{
	snprintf(buf, size, PREFIX "/%ld-%s", (long)getpid(), what);
}

/* Forks a child that waits for a byte on a pipe (so the parent can attach it
 * first), then burns CPU for 1 s, touches 200 MiB, or sleeps. Returns its pid
 * and in *go the pipe end that starts it. */
static pid_t spawn(struct fixture *f, enum child_mode mode, int *go)
{
	int p[2];
	pid_t pid;
	char c;

	assert_true(f->nchildren < MAX_CHILDREN);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			_exit(2);
		if (mode == CHILD_BURN) {
			double end = now_s() + 1.0;
			volatile uint64_t x = 0;

			while (now_s() < end)
				for (int i = 0; i < 10000; i++)
					x += (uint64_t)i;
			_exit(x == UINT64_MAX ? 4 : 0);
		}
		if (mode == CHILD_HOG) {
			size_t len = 200 * MIB;
			volatile char *m = mmap(NULL, len,
						PROT_READ | PROT_WRITE,
						MAP_PRIVATE | MAP_ANONYMOUS,
						-1, 0);

			if (m == MAP_FAILED)
				_exit(3);
			for (size_t i = 0; i < len; i += 4096)
				m[i] = 1;
			_exit(0);
		}
		for (;;)
			pause();
	}
	close(p[0]);
	*go = p[1];
	f->children[f->nchildren++] = pid;
	return pid;
}

static void start(int go)
{
	assert_int_equal(write(go, "g", 1), 1);
	close(go);
}

/* Waits for pid (bounded) and forgets it; returns its wait status. */
static int wait_child(struct fixture *f, pid_t pid, double timeout_s)
{
	double end = now_s() + timeout_s;
	int status = 0;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (now_s() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("child %ld did not exit in %.1f s", (long)pid,
				 timeout_s);
		}
		sleep_s(0.01);
	}
	for (int i = 0; i < f->nchildren; i++) {
		if (f->children[i] == pid) {
			f->children[i] = f->children[--f->nchildren];
			break;
		}
	}
	return status;
}

static void detects_real_hierarchy(void **state)
{
	struct fixture *f = require_real(state);
	struct cgroup_sys *u = NULL;
	char diag[512] = "";
	struct stat st;

	print_message("cgroup %s\n", cgroup_version_name(f->sys));
	assert_true(cgroup_version(f->sys) == CGROUP_V1 ||
		    cgroup_version(f->sys) == CGROUP_V2);
	/* A cgroup2 mount without controllers (the "unified" mount of a
	 * hybrid v1 system) is no usable v2. */
	if (stat("/sys/fs/cgroup/unified/cgroup.controllers", &st) == 0) {
		assert_int_equal(cgroup_detect("/sys/fs/cgroup/unified", &u,
					       diag, sizeof(diag)),
				 0);
		assert_int_equal(cgroup_version(u), CGROUP_NONE);
		assert_string_equal(cgroup_version_name(u), "none");
		assert_non_null(strstr(diag, "controller"));
		assert_int_equal(cgroup_create(u, "x", 100, MIB, NULL, 0),
				 MDS_E_UNAVAIL);
		cgroup_sys_free(u);
	}
}

static void rejects_bad_names(void **state)
{
	struct fixture *f = require_real(state);
	static const char *const bad[] = { "", "/abs", "a//b", "../x", "a/..",
					   "a/./b", "a b", "a/", "x\n" };
	char diag[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		diag[0] = '\0';
		assert_int_equal(cgroup_create(f->sys, bad[i], 100, MIB, diag,
					       sizeof(diag)),
				 MDS_E_INVAL);
		assert_true(diag[0] != '\0');
		assert_null(cgroup_path(f->sys, bad[i]));
	}
	assert_int_equal(cgroup_create(f->sys, NULL, 100, MIB, NULL, 0),
			 MDS_E_INVAL);
	/* 5 mcpu is below the kernel's 1 ms minimum quota. */
	assert_int_equal(cgroup_create(f->sys, PREFIX "/q", 5, MIB, NULL, 0),
			 MDS_E_INVAL);
}

static void writes_limits(void **state)
{
	struct fixture *f = require_real(state);
	struct cgroup_usage u;
	char name[128], buf[128], memsw[128], diag[256] = "";
	int v1 = cgroup_version(f->sys) == CGROUP_V1;

	test_name(name, sizeof(name), "limits");
	assert_int_equal(cgroup_create(f->sys, name, 250, 64 * MIB, diag,
				       sizeof(diag)),
			 0);
	if (v1) {
		assert_string_equal(cg_file(f, "cpu", name, "cpu.cfs_period_us",
					    buf, sizeof(buf)),
				    "100000");
		assert_string_equal(cg_file(f, "cpu", name, "cpu.cfs_quota_us",
					    buf, sizeof(buf)),
				    "25000");
		assert_string_equal(cg_file(f, "memory", name,
					    "memory.limit_in_bytes", buf,
					    sizeof(buf)),
				    "67108864");
		cg_file(f, "memory", name, "memory.memsw.limit_in_bytes",
			memsw, sizeof(memsw));
		if (memsw[0] != '\0')
			assert_string_equal(memsw, "67108864");
		assert_true(cg_exists(f, "cpuacct", name));
	} else {
		assert_string_equal(cg_file(f, "cpu", name, "cpu.max", buf,
					    sizeof(buf)),
				    "25000 100000");
		assert_string_equal(cg_file(f, "memory", name, "memory.max",
					    buf, sizeof(buf)),
				    "67108864");
	}
	assert_int_equal(cgroup_usage(f->sys, name, &u), 0);
	assert_int_equal(u.mem_limit, 64 * MIB);
	assert_int_equal(u.cpu_quota_mcpu, 250);
	assert_int_equal(u.oom_kills, 0);

	/* Raising the memory limit must get past memsw (v1 keeps
	 * memsw >= limit at every step), lowering too. */
	assert_int_equal(cgroup_create(f->sys, name, 1500, 256 * MIB, diag,
				       sizeof(diag)),
			 0);
	assert_int_equal(cgroup_usage(f->sys, name, &u), 0);
	assert_int_equal(u.mem_limit, 256 * MIB);
	assert_int_equal(u.cpu_quota_mcpu, 1500);
	assert_int_equal(cgroup_create(f->sys, name, 0, 32 * MIB, diag,
				       sizeof(diag)),
			 0);
	assert_int_equal(cgroup_usage(f->sys, name, &u), 0);
	assert_int_equal(u.mem_limit, 32 * MIB);
	assert_int_equal(u.cpu_quota_mcpu, 0);
	if (v1 && memsw[0] != '\0')
		assert_string_equal(cg_file(f, "memory", name,
					    "memory.memsw.limit_in_bytes", buf,
					    sizeof(buf)),
				    "33554432");

	assert_int_equal(cgroup_destroy(f->sys, name), 0);
	assert_false(cg_exists(f, "cpu", name));
	assert_false(cg_exists(f, "cpuacct", name));
	assert_false(cg_exists(f, "memory", name));
}

static void cpu_quota_bounds_usage(void **state)
{
	struct fixture *f = require_real(state);
	struct cgroup_usage u0, u1, u2;
	char name[128], diag[256] = "";
	pid_t pids[4], child;
	size_t n = 0;
	double t0, t1, cpu_s, wall_s;
	int go, status;

	test_name(name, sizeof(name), "cpu");
	assert_int_equal(cgroup_create(f->sys, name, 250, 64 * MIB, diag,
				       sizeof(diag)),
			 0);
	child = spawn(f, CHILD_BURN, &go);
	assert_int_equal(cgroup_attach(f->sys, name, child), 0);
	assert_int_equal(cgroup_pids(f->sys, name, pids, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pids[0], child);
	assert_int_equal(cgroup_usage(f->sys, name, &u0), 0);

	t0 = now_s();
	start(go);
	sleep_s(0.5);
	assert_int_equal(cgroup_usage(f->sys, name, &u1), 0);
	status = wait_child(f, child, 10.0);
	t1 = now_s();
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(cgroup_usage(f->sys, name, &u2), 0);

	cpu_s = (double)(u2.cpu_usage_ns - u0.cpu_usage_ns) / 1e9;
	wall_s = t1 - t0;
	print_message("250 mcpu quota: %.3f s CPU in %.3f s wall (%.2f cores); "
		      "after 0.5 s %.3f s; mem %llu bytes\n",
		      cpu_s, wall_s, cpu_s / wall_s,
		      (double)(u1.cpu_usage_ns - u0.cpu_usage_ns) / 1e9,
		      (unsigned long long)u2.mem_bytes);
	assert_true(u1.cpu_usage_ns > u0.cpu_usage_ns);
	assert_true(u2.cpu_usage_ns > u1.cpu_usage_ns);
	/* The quota allows 0.25 s per second; anything near a full core means
	 * it is not enforced. */
	assert_true(cpu_s > 0.05);
	assert_true(cpu_s < 0.6 * wall_s);

	assert_int_equal(cgroup_pids(f->sys, name, pids, 4, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(cgroup_destroy(f->sys, name), 0);
}

static void memory_limit_oom_kills(void **state)
{
	struct fixture *f = require_real(state);
	struct cgroup_usage u;
	char name[128], diag[256] = "";
	pid_t child;
	int go, status;

	test_name(name, sizeof(name), "oom");
	assert_int_equal(cgroup_create(f->sys, name, 1000, 64 * MIB, diag,
				       sizeof(diag)),
			 0);
	child = spawn(f, CHILD_HOG, &go);
	assert_int_equal(cgroup_attach(f->sys, name, child), 0);
	start(go);
	status = wait_child(f, child, 30.0);
	if (!WIFSIGNALED(status))
		fail_msg("the 200 MiB child was not killed (exit status %d)",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_int_equal(cgroup_usage(f->sys, name, &u), 0);
	print_message("64 MiB limit: oom_kills %llu, mem now %llu bytes\n",
		      (unsigned long long)u.oom_kills,
		      (unsigned long long)u.mem_bytes);
	assert_true(u.oom_kills >= 1);
	assert_true(u.mem_bytes <= 64 * MIB);
	assert_int_equal(cgroup_destroy(f->sys, name), 0);
}

static void kill_then_destroy(void **state)
{
	struct fixture *f = require_real(state);
	struct cgroup_usage u;
	char name[128], diag[256] = "";
	pid_t pids[4], a, b;
	size_t n = 0;
	int go_a, go_b, status;
	char *path;

	test_name(name, sizeof(name), "kill");
	assert_int_equal(cgroup_create(f->sys, name, 100, 32 * MIB, diag,
				       sizeof(diag)),
			 0);
	path = cgroup_path(f->sys, name);
	assert_non_null(path);
	assert_non_null(strstr(path, name));
	free(path);
	a = spawn(f, CHILD_SLEEP, &go_a);
	b = spawn(f, CHILD_SLEEP, &go_b);
	assert_int_equal(cgroup_attach(f->sys, name, a), 0);
	assert_int_equal(cgroup_attach(f->sys, name, b), 0);
	start(go_a);
	start(go_b);
	assert_int_equal(cgroup_pids(f->sys, name, pids, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_true((pids[0] == a && pids[1] == b) ||
		    (pids[0] == b && pids[1] == a));
	assert_int_equal(cgroup_pids(f->sys, name, pids, 1, &n), MDS_E_LIMIT);
	assert_int_equal(n, 1);
	assert_int_equal(cgroup_usage(f->sys, name, &u), 0);
	print_message("two sleeping children: mem %llu bytes, cpu %llu ns\n",
		      (unsigned long long)u.mem_bytes,
		      (unsigned long long)u.cpu_usage_ns);

	/* Processes inside: destroy refuses and removes nothing. */
	assert_int_equal(cgroup_destroy(f->sys, name), MDS_E_CONFLICT);
	assert_true(cg_exists(f, "cpu", name));
	assert_true(cg_exists(f, "memory", name));

	assert_int_equal(cgroup_kill(f->sys, name, SIGKILL), 0);
	status = wait_child(f, a, 5.0);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	status = wait_child(f, b, 5.0);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_int_equal(cgroup_destroy(f->sys, name), 0);
	assert_false(cg_exists(f, "cpu", name));
	assert_false(cg_exists(f, "cpuacct", name));
	assert_false(cg_exists(f, "memory", name));

	/* Gone: destroying again is fine, the rest says not found. */
	assert_int_equal(cgroup_destroy(f->sys, name), 0);
	assert_int_equal(cgroup_usage(f->sys, name, &u), MDS_E_NOTFOUND);
	assert_int_equal(cgroup_kill(f->sys, name, SIGKILL), MDS_E_NOTFOUND);
	assert_int_equal(cgroup_attach(f->sys, name, 0), MDS_E_NOTFOUND);
}

/* A fake v2 tree: a directory with the files a real one would have. It
 * checks file formats on machines without a real v2 with controllers. */
static void fake_v2_file_formats(void **state)
{
	struct cgroup_sys *sys = NULL;
	struct cgroup_usage u;
	char root[] = "/tmp/mdscale-fakecg-XXXXXX";
	char path[512], buf[256], diag[256] = "";
	pid_t pids[4];
	size_t n = 0;
	static const char *const leaf_files[] = {
		"cgroup.procs", "cpu.max", "memory.max", "memory.swap.max",
		"cgroup.subtree_control"
	};

	(void)state;
	assert_non_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/cgroup.controllers", root);
	spit(path, "cpuset cpu io memory pids\n");
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", root);
	spit(path, "");
	snprintf(path, sizeof(path), "%s/a", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/a/cgroup.subtree_control", root);
	spit(path, "");
	snprintf(path, sizeof(path), "%s/a/b", root);
	assert_int_equal(mkdir(path, 0755), 0);
	for (size_t i = 0; i < sizeof(leaf_files) / sizeof(leaf_files[0]);
	     i++) {
		snprintf(path, sizeof(path), "%s/a/b/%s", root, leaf_files[i]);
		spit(path, "max\n");
	}

	assert_int_equal(cgroup_detect(root, &sys, diag, sizeof(diag)), 0);
	assert_int_equal(cgroup_version(sys), CGROUP_V2);
	assert_string_equal(cgroup_version_name(sys), "v2");

	/* The instances' parent, made at start: no limits, the controllers
	 * enabled down to it. Then undone, for create's own checks. */
	assert_int_equal(cgroup_prepare(sys, "a", diag, sizeof(diag)), 0);
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", root);
	assert_string_equal(slurp(path, buf, sizeof(buf)), "+cpu +memory");
	spit(path, "");
	snprintf(path, sizeof(path), "%s/a/cgroup.subtree_control", root);
	assert_string_equal(slurp(path, buf, sizeof(buf)), "+cpu +memory");
	spit(path, "");
	snprintf(path, sizeof(path), "%s/a/cpu.max", root);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(cgroup_prepare(sys, "../a", diag, sizeof(diag)),
			 MDS_E_INVAL);

	assert_int_equal(cgroup_create(sys, "a/b", 1500, 128 * MIB, diag,
				       sizeof(diag)),
			 0);
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", root);
	assert_string_equal(slurp(path, buf, sizeof(buf)), "+cpu +memory");
	snprintf(path, sizeof(path), "%s/a/cgroup.subtree_control", root);
	assert_string_equal(slurp(path, buf, sizeof(buf)), "+cpu +memory");
	snprintf(path, sizeof(path), "%s/a/b/cgroup.subtree_control", root);
	assert_string_equal(slurp(path, buf, sizeof(buf)), "max");
	snprintf(path, sizeof(path), "%s/a/b/cpu.max", root);
	assert_string_equal(slurp(path, buf, sizeof(buf)), "150000 100000");
	snprintf(path, sizeof(path), "%s/a/b/memory.max", root);
	assert_string_equal(slurp(path, buf, sizeof(buf)), "134217728");
	snprintf(path, sizeof(path), "%s/a/b/memory.swap.max", root);
	assert_string_equal(slurp(path, buf, sizeof(buf)), "0");

	/* No limits: "max" in both. */
	assert_int_equal(cgroup_create(sys, "a/b", 0, 0, diag, sizeof(diag)),
			 0);
	snprintf(path, sizeof(path), "%s/a/b/cpu.max", root);
	assert_string_equal(slurp(path, buf, sizeof(buf)), "max 100000");
	snprintf(path, sizeof(path), "%s/a/b/memory.max", root);
	assert_string_equal(slurp(path, buf, sizeof(buf)), "max");
	assert_int_equal(cgroup_create(sys, "a/b", 250, 64 * MIB, diag,
				       sizeof(diag)),
			 0);

	/* Usage, as the kernel formats it. */
	snprintf(path, sizeof(path), "%s/a/b/cpu.stat", root);
	spit(path, "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n");
	snprintf(path, sizeof(path), "%s/a/b/memory.current", root);
	spit(path, "1000000\n");
	snprintf(path, sizeof(path), "%s/a/b/memory.stat", root);
	spit(path, "anon 900000\nfile 100000\nactive_file 4096\n"
		   "inactive_file 8192\n");
	snprintf(path, sizeof(path), "%s/a/b/memory.events", root);
	spit(path, "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n");
	assert_int_equal(cgroup_usage(sys, "a/b", &u), 0);
	assert_int_equal(u.cpu_usage_ns, 1500000);
	assert_int_equal(u.mem_bytes, 1000000 - 8192);
	assert_int_equal(u.mem_limit, 64 * MIB);
	assert_int_equal(u.cpu_quota_mcpu, 250);
	assert_int_equal(u.oom_kills, 2);

	snprintf(path, sizeof(path), "%s/a/b/cgroup.procs", root);
	spit(path, "12\n345\n");
	assert_int_equal(cgroup_pids(sys, "a/b", pids, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(pids[0], 12);
	assert_int_equal(pids[1], 345);
	assert_int_equal(cgroup_attach(sys, "a/b", 678), 0);
	assert_string_equal(slurp(path, buf, sizeof(buf)), "678");
	assert_int_equal(cgroup_destroy(sys, "a/b"), MDS_E_CONFLICT);

	/* A new cgroup whose control files do not appear (controller not
	 * there): create fails naming the file, and removes what it made. */
	diag[0] = '\0';
	assert_int_equal(cgroup_create(sys, "a/c", 250, 64 * MIB, diag,
				       sizeof(diag)),
			 MDS_E_NOTFOUND);
	assert_non_null(strstr(diag, "cpu.max"));
	snprintf(path, sizeof(path), "%s/a/c", root);
	assert_int_equal(access(path, F_OK), -1);
	cgroup_sys_free(sys);

	/* Controllers missing: no v2, and no v1 below this root either. */
	snprintf(path, sizeof(path), "%s/cgroup.controllers", root);
	spit(path, "cpuset io pids\n");
	assert_int_equal(cgroup_detect(root, &sys, diag, sizeof(diag)), 0);
	assert_int_equal(cgroup_version(sys), CGROUP_NONE);
	assert_non_null(strstr(diag, "cpu or memory"));
	assert_int_equal(cgroup_usage(sys, "a/b", &u), MDS_E_UNAVAIL);
	assert_int_equal(cgroup_destroy(sys, "a/b"), MDS_E_UNAVAIL);
	assert_null(cgroup_path(sys, "a/b"));
	cgroup_sys_free(sys);
	cgroup_sys_free(NULL);

	/* Remove the fake tree. */
	for (size_t i = 0; i < sizeof(leaf_files) / sizeof(leaf_files[0]);
	     i++) {
		snprintf(path, sizeof(path), "%s/a/b/%s", root, leaf_files[i]);
		unlink(path);
	}
	static const char *const rest[] = {
		"a/b/cpu.stat", "a/b/memory.current", "a/b/memory.stat",
		"a/b/memory.events", "a/cgroup.subtree_control",
		"cgroup.controllers", "cgroup.subtree_control"
	};
	for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", root, rest[i]);
		assert_int_equal(unlink(path), 0);
	}
	snprintf(path, sizeof(path), "%s/a/b", root);
	assert_int_equal(rmdir(path), 0);
	snprintf(path, sizeof(path), "%s/a", root);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(rmdir(root), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fake_v2_file_formats),
		cmocka_unit_test(detects_real_hierarchy),
		cmocka_unit_test(rejects_bad_names),
		cmocka_unit_test(writes_limits),
		cmocka_unit_test(cpu_quota_bounds_usage),
		cmocka_unit_test(memory_limit_oom_kills),
		cmocka_unit_test(kill_then_destroy),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
