/*
 * test_backend_local.c - the local backend with real processes, without
 * root: no cgroups (a cgroup root that does not exist), a launcher script
 * standing in for `mdscale __instance`, and a small Python HTTP server as
 * the instance, whose health path the backend checks over loopback.
 *
 * What it checks: an instance becomes READY through its health path; a
 * crash is restarted after a backoff that doubles from 250 ms, also for
 * an instance that was ready before each crash; a stopped instance is
 * gone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/config.h"
#include "deploy/backend.h"
#include "deploy/backend_local.h"
#include "deploy/cgroup.h"
#include "http/httpc.h"
#include "util/log.h"
#include "util/xalloc.h"

/* Answers 200 to every GET, on the port given. */
#define SERVER                                                               \
	"import http.server, sys\n"                                          \
	"class H(http.server.BaseHTTPRequestHandler):\n"                     \
	"    def do_GET(self):\n"                                            \
	"        self.send_response(200); self.end_headers()\n"              \
	"    def log_message(self, *a): pass\n"                              \
	"http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H)"         \
	".serve_forever()\n"

struct t {
	uv_loop_t loop;
	struct config cfg;
	char dir[64];
	char exe[128];
	struct cgroup_sys *cg;
	struct httpc *httpc;
	struct backend *b;
	struct backend_spec spec;
	struct backend_instance in;
	int changes;
};

static char *server_argv[] = { "python3", "-c", SERVER, "$PORT", NULL };

static void on_changed(void *arg, struct backend_instance *in)
{
	struct t *t = arg;

	(void)in;
	t->changes++;
}

static int setup(void **state)
{
	struct t *t = xcalloc(1, sizeof(*t));
	char diag[256];
	FILE *fp;

	log_current_level = LOG_ERROR;
	uv_loop_init(&t->loop);
	config_defaults(&t->cfg);
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_backend_local.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	/* The launcher: drops "__instance PROCS USER --" and runs the
	 * command (as whoever runs the test). */
	snprintf(t->exe, sizeof(t->exe), "%s/launcher", t->dir);
	fp = fopen(t->exe, "w");
	assert_non_null(fp);
	fputs("#!/bin/sh\nshift 4\nexec \"$@\"\n", fp);
	fclose(fp);
	assert_int_equal(chmod(t->exe, 0755), 0);
	assert_int_equal(cgroup_detect("/nonexistent-cgroup-root", &t->cg,
				       diag, sizeof(diag)),
			 0);
	assert_int_equal(cgroup_version(t->cg), CGROUP_NONE);
	assert_int_equal(httpc_new(&t->loop, &t->httpc), 0);
	assert_int_equal(
		backend_local_new(
			&(struct backend_local_env){
				.loop = &t->loop, .cgroups = t->cg,
				.httpc = t->httpc, .config = &t->cfg,
				.data_dir = t->dir, .self_exe = t->exe },
			&t->b, diag, sizeof(diag)),
		0);
	t->b->events = (struct backend_events){ .changed = on_changed,
						.arg = t };
	t->spec = (struct backend_spec){ .argv = server_argv, .argc = 4,
					 .health_path = "/health" };
	t->spec.env = xcalloc(1, sizeof(char *));
	snprintf(t->in.deployment_id, sizeof(t->in.deployment_id),
		 "md-test");
	snprintf(t->in.id, sizeof(t->in.id), "mi-test");
	snprintf(t->in.shape, sizeof(t->in.shape), "%s", t->cfg.shapes.v[0].name);
	t->in.spec = &t->spec;
	t->in.restart = true;
	*state = t;
	return 0;
}

static void wait_for(struct t *t, bool (*cond)(struct t *t), const char *what)
{
	uint64_t end = uv_hrtime() + 10000000000ull;

	while (!cond(t)) {
		if (uv_hrtime() > end)
			fail_msg("timed out waiting for %s (state %s)", what,
				 backend_state_name(t->in.state));
		uv_run(&t->loop, UV_RUN_ONCE);
	}
}

static bool is_ready(struct t *t)
{
	return t->in.state == BACKEND_READY;
}

static bool is_stopped(struct t *t)
{
	return t->in.state == BACKEND_STOPPED;
}

static int teardown(void **state)
{
	struct t *t = *state;
	char path[160];

	if (t->in.alive) {
		t->b->ops->stop(t->b, &t->in, 1000);
		wait_for(t, is_stopped, "the stop");
	}
	t->b->ops->close(t->b, NULL, NULL);
	httpc_close(t->httpc);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&t->loop), 0);
	cgroup_sys_free(t->cg);
	free(t->spec.env);
	snprintf(path, sizeof(path), "%s/instances/mi-test.out.log", t->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/instances/mi-test.err.log", t->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/instances", t->dir);
	rmdir(path);
	unlink(t->exe);
	rmdir(t->dir);
	free(t);
	return 0;
}

/* Kills the ready instance's process and returns how long it took the
 * backend to start the next one, in ms. */
static double crash_and_time_restart(struct t *t)
{
	int pid = t->in.pid;
	uint64_t t0, end = uv_hrtime() + 60000000000ull;

	assert_true(pid > 0);
	assert_int_equal(t->b->ops->signal(t->b, &t->in, SIGKILL), 0);
	t0 = uv_hrtime();
	while (!(t->in.alive && t->in.pid != pid)) {
		assert_true(uv_hrtime() < end);
		uv_run(&t->loop, UV_RUN_ONCE);
	}
	return (double)(uv_hrtime() - t0) / 1e6;
}

static void test_restart_backoff_doubles_after_ready(void **state)
{
	struct t *t = *state;
	double d1, d2, d3;

	assert_int_equal(t->b->ops->start(t->b, &t->in), 0);
	assert_true(t->in.alive);
	wait_for(t, is_ready, "ready");
	assert_true(t->changes > 0);

	d1 = crash_and_time_restart(t);
	wait_for(t, is_ready, "ready after the first restart");
	d2 = crash_and_time_restart(t);
	wait_for(t, is_ready, "ready after the second restart");
	d3 = crash_and_time_restart(t);
	wait_for(t, is_ready, "ready after the third restart");
	print_message("restarts after %.0f, %.0f, %.0f ms\n", d1, d2, d3);
	/* 250, 500, 1000 ms, plus up to one tick (100 ms) of the backend's
	 * timer. */
	assert_true(d1 >= 240);
	assert_true(d2 >= 490);
	assert_true(d3 >= 990);
	assert_int_equal(t->in.restarts, 3);
	assert_true(t->in.ever_ready);
	/* Killed by the test, not by the memory limit. */
	assert_string_equal(t->in.last_exit, "killed by signal 9");
}

static void test_stop_ends_the_process(void **state)
{
	struct t *t = *state;
	int pid;

	assert_int_equal(t->b->ops->start(t->b, &t->in), 0);
	wait_for(t, is_ready, "ready");
	pid = t->in.pid;
	t->b->ops->stop(t->b, &t->in, 2000);
	assert_int_equal(t->in.state, BACKEND_STOPPING);
	wait_for(t, is_stopped, "the stop");
	assert_false(t->in.alive);
	assert_int_equal(kill(pid, 0), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_restart_backoff_doubles_after_ready, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_stop_ends_the_process,
						setup, teardown),
	};

	httpc_global_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
