/*
 * test_k8s_standin.c - contract tests of the kubernetes backend against
 * the Kubernetes API stand-in (tests/standin/k8s_standin.py).
 *
 * A kube-apiserver cannot run here, so each test starts the stand-in: a
 * local HTTPS server that checks every request against the API's
 * documented shapes and answers as the API documents. It is not
 * Kubernetes; every test's name says "standin". The backend runs as the
 * daemon runs it: on a libuv loop, over the real HTTP client, with the
 * kubeconfig the stand-in wrote. After each test the stand-in's list of
 * violations (requests that broke the documented shapes, scale writes
 * without a resourceVersion) must be empty.
 *
 * argv[1]: the stand-in script.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "core/shape.h"
#include "deploy/backend.h"
#include "http/httpc.h"
#include "k8s/backend_k8s.h"
#include "k8s/k8s_target.h"
#include "util/err.h"
#include "util/xalloc.h"

extern char **environ;

static const char *standin_script;

struct fx {
	char dir[64];
	char url[128];
	char ca[128];
	pid_t pid;
	int to_standin;    /* its stdin: closing it stops it */
	uv_loop_t loop;
	struct httpc *http;
	struct backend *b;
	struct shape_ladder shapes;
	int waiting;
};

/* ---- the stand-in --------------------------------------------------------- */

static void standin_start(struct fx *f)
{
	int in[2], out[2];
	posix_spawn_file_actions_t fa;
	char *argv[] = { "python3", (char *)standin_script, "--dir", f->dir,
			 "--lifetime", "120", NULL };
	char line[256] = "";
	size_t n = 0;

	snprintf(f->dir, sizeof(f->dir), "/tmp/mds-k8s-standin-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_addclose(&fa, in[1]);
	posix_spawn_file_actions_addclose(&fa, out[0]);
	assert_int_equal(posix_spawnp(&f->pid, "python3", &fa, NULL, argv,
				      environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	f->to_standin = in[1];
	/* "k8s stand-in listening on https://127.0.0.1:PORT\n" */
	while (n < sizeof(line) - 1) {
		ssize_t r = read(out[0], line + n, 1);

		if (r <= 0 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	close(out[0]);
	printf("# %s\n", line);
	assert_non_null(strstr(line, "k8s stand-in listening on "));
	snprintf(f->url, sizeof(f->url), "%s", strstr(line, "https://"));
	snprintf(f->ca, sizeof(f->ca), "%s/ca.crt", f->dir);
}

static void standin_stop(struct fx *f)
{
	char cmd[128];
	int st;

	close(f->to_standin);
	waitpid(f->pid, &st, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- running the loop until something happened ---------------------------- */

static void watchdog_cb(uv_timer_t *t)
{
	fail_msg("timed out waiting on the loop for %s",
		 (const char *)t->data);
}

/* Stops the loop before it would block once *flag is set: a callback run
 * in the timers phase sets it, and UV_RUN_ONCE would then still block in
 * poll until the next timer. */
static void prepare_cb(uv_prepare_t *p)
{
	if (*(int *)p->data)
		uv_stop(p->loop);
}

/* Runs the loop until *flag is set (at most 60 s: the machine may be
 * busy). */
#define run_until(f, flag) run_until_at(f, flag, __func__)
static void run_until_at(struct fx *f, int *flag, const char *what)
{
	uv_timer_t wd;
	uv_prepare_t p;

	uv_timer_init(&f->loop, &wd);
	wd.data = (void *)what;
	uv_timer_start(&wd, watchdog_cb, 60000, 0);
	uv_prepare_init(&f->loop, &p);
	p.data = flag;
	uv_prepare_start(&p, prepare_cb);
	while (!*flag)
		uv_run(&f->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&wd, NULL);
	uv_close((uv_handle_t *)&p, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void sleep_cb(uv_timer_t *t)
{
	*(int *)t->data = 1;
}

/* Runs the loop for ms. */
static void run_for(struct fx *f, uint64_t ms)
{
	uv_timer_t t;
	int done = 0;

	uv_timer_init(&f->loop, &t);
	t.data = &done;
	uv_timer_start(&t, sleep_cb, ms, 0);
	run_until(f, &done);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
}

struct ctl {
	int done;
	json_t *answer;
};

static void ctl_done(void *arg, const struct httpc_result *r)
{
	struct ctl *c = arg;

	assert_int_equal(r->error, 0);
	assert_int_equal(r->status, 200);
	c->answer = json_loadb(r->body, r->body_len, 0, NULL);
	c->done = 1;
}

/* POSTs body to the stand-in's control what and returns its answer
 * (a new reference). */
static json_t *standin(struct fx *f, const char *what, const char *body)
{
	char url[256];
	struct ctl c = { 0 };
	struct httpc_opts o = { .method = body != NULL ? "POST" : "GET",
				.body = body,
				.body_len = body != NULL ? strlen(body) : 0,
				.ca_file = f->ca,
				.max_body = 16 * 1024 * 1024 };

	snprintf(url, sizeof(url), "%s/_standin/%s", f->url, what);
	assert_int_equal(httpc_request(f->http, url, &o, ctl_done, &c, NULL),
			 0);
	run_until(f, &c.done);
	return c.answer;
}

static void standin_do(struct fx *f, const char *what, const char *body)
{
	json_decref(standin(f, what, body));
}

/* Runs the stand-in's Deployment controller until nothing changes. */
static void settle(struct fx *f, const char *name)
{
	char body[128];

	snprintf(body, sizeof(body), "{\"name\": \"%s\"}", name);
	standin_do(f, "settle", body);
}

/* Counts logged requests with method whose path ends with suffix (and
 * with status, unless 0). */
static int logged(struct fx *f, const char *method, const char *suffix,
		  int status)
{
	json_t *log = standin(f, "log", NULL), *e;
	size_t i, ls = strlen(suffix);
	int n = 0;

	json_array_foreach(json_object_get(log, "items"), i, e) {
		const char *m = json_string_value(json_object_get(e, "method"));
		const char *p = json_string_value(json_object_get(e, "path"));
		size_t lp = p != NULL ? strlen(p) : 0;

		if (m != NULL && strcmp(m, method) == 0 && lp >= ls &&
		    strcmp(p + lp - ls, suffix) == 0 &&
		    (status == 0 ||
		     json_integer_value(json_object_get(e, "status")) ==
			     status))
			n++;
	}
	json_decref(log);
	return n;
}

/* The Deployment as the stand-in stores it (new reference). */
static json_t *stored(struct fx *f, const char *name)
{
	json_t *st = standin(f, "state", NULL), *d, *out = NULL;
	size_t i;

	json_array_foreach(json_object_get(st, "deployments"), i, d) {
		const char *n = json_string_value(json_object_get(
			json_object_get(d, "metadata"), "name"));

		if (n != NULL && strcmp(n, name) == 0)
			out = json_incref(d);
	}
	json_decref(st);
	assert_non_null(out);
	return out;
}

static int64_t stored_replicas(struct fx *f, const char *name)
{
	json_t *d = stored(f, name);
	int64_t n = json_integer_value(json_object_get(json_object_get(d,
					"spec"), "replicas"));

	json_decref(d);
	return n;
}

/* ---- fixture ------------------------------------------------------------------ */

static struct backend *make_backend(struct fx *f, const char *kubeconfig)
{
	char path[160];
	char diag[256] = "";
	struct backend *b = NULL;
	struct backend_k8s_env env = {
		.loop = &f->loop,
		.httpc = f->http,
		.shapes = &f->shapes,
		.kubeconfig = path,
		.metrics_ms = 200,
		.watch_timeout_s = 30,
	};

	snprintf(path, sizeof(path), "%s/%s", f->dir, kubeconfig);
	if (backend_k8s_new(&env, &b, diag, sizeof(diag)) != 0)
		fail_msg("backend_k8s_new: %s", diag);
	return b;
}

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	char diag[128];

	standin_start(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(httpc_new(&f->loop, &f->http), 0);
	shape_ladder_init(&f->shapes);
	assert_int_equal(shape_ladder_add(&f->shapes, "k8s.s", 500,
					  256u << 20, diag, sizeof(diag)), 0);
	assert_int_equal(shape_ladder_add(&f->shapes, "k8s.m", 1000,
					  512u << 20, diag, sizeof(diag)), 0);
	f->b = make_backend(f, "kubeconfig");
	standin_do(f, "deployments",
		   "{\"name\": \"web\", \"replicas\": 2, \"containers\": "
		   "[{\"name\": \"model\", \"requests\": {\"cpu\": \"500m\", "
		   "\"memory\": \"256Mi\"}, \"limits\": {\"cpu\": \"500m\", "
		   "\"memory\": \"256Mi\"}}]}");
	*state = f;
	return 0;
}

static void closed(void *arg)
{
	*(int *)arg = 1;
}

static void close_backend(struct fx *f, struct backend *b)
{
	int done = 0;

	b->ops->close(b, closed, &done);
	run_until(f, &done);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	json_t *v;

	if (f->b != NULL)
		close_backend(f, f->b);
	v = standin(f, "violations", NULL);
	if (json_array_size(json_object_get(v, "items")) != 0) {
		char *s = json_dumps(v, JSON_INDENT(1));

		fail_msg("the stand-in saw requests that break the API: %s",
			 s);
	}
	json_decref(v);
	httpc_close(f->http);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	standin_stop(f);
	free(f);
	return 0;
}

/* ---- calling the ops and waiting --------------------------------------------- */

struct answer {
	int done;
	int rc;
	struct backend_target t;
	struct backend_progress p;
	char work_id[BACKEND_WORK_ID_MAX];
	char diag[512];
};

static void read_cb(void *arg, int rc, const struct backend_target *t,
		    const char *diag)
{
	struct answer *a = arg;

	a->rc = rc;
	if (t != NULL)
		a->t = *t;
	snprintf(a->diag, sizeof(a->diag), "%s", diag != NULL ? diag : "");
	a->done = 1;
}

static void apply_cb(void *arg, int rc, const char *work_id, const char *diag)
{
	struct answer *a = arg;

	a->rc = rc;
	snprintf(a->work_id, sizeof(a->work_id), "%s", work_id);
	snprintf(a->diag, sizeof(a->diag), "%s", diag != NULL ? diag : "");
	a->done = 1;
}

static void progress_cb(void *arg, int rc, const struct backend_progress *p,
			const char *diag)
{
	struct answer *a = arg;

	a->rc = rc;
	if (p != NULL)
		a->p = *p;
	snprintf(a->diag, sizeof(a->diag), "%s", diag != NULL ? diag : "");
	a->done = 1;
}

static struct answer do_read(struct fx *f, const char *ref)
{
	struct answer a = { 0 };

	assert_int_equal(f->b->ops->read(f->b, ref, read_cb, &a), 0);
	run_until(f, &a.done);
	return a;
}

static struct answer do_apply(struct fx *f, const char *ref, uint32_t count,
			      const char *shape)
{
	struct answer a = { 0 };
	struct backend_target want = { .count = count };

	snprintf(want.shape, sizeof(want.shape), "%s", shape);
	assert_int_equal(f->b->ops->apply(f->b, ref, &want, apply_cb, &a), 0);
	run_until(f, &a.done);
	return a;
}

static struct answer do_progress(struct fx *f, const char *ref,
				 const char *work_id)
{
	struct answer a = { 0 };

	assert_int_equal(f->b->ops->progress(f->b, ref, work_id, progress_cb,
					     &a), 0);
	run_until(f, &a.done);
	return a;
}

/* Advances the stand-in's controller one step at a time, asking progress
 * after each, until the work request is no longer in progress. */
static struct answer follow_work(struct fx *f, const char *ref,
				 const char *work_id, int *steps)
{
	struct answer a = { 0 };

	*steps = 0;
	for (int i = 0; i < 20; i++) {
		a = do_progress(f, ref, work_id);
		assert_int_equal(a.rc, 0);
		if (a.p.status != BACKEND_WORK_IN_PROGRESS &&
		    a.p.status != BACKEND_WORK_ACCEPTED)
			return a;
		standin_do(f, "advance", "{\"name\": \"web\"}");
		(*steps)++;
	}
	fail_msg("work request %s never ended", work_id);
	return a;
}

/* ---- tests ----------------------------------------------------------------------- */

static void test_standin_read(void **state)
{
	struct fx *f = *state;
	struct answer a = do_read(f, "default/web");

	assert_int_equal(a.rc, 0);
	assert_string_equal(a.t.state, "ACTIVE");
	assert_int_equal(a.t.count, 2);
	assert_string_equal(a.t.shape, "k8s.s");
	assert_true(a.t.etag[0] != '\0');
	assert_string_equal(a.t.message, "");

	standin_do(f, "hpa", "{\"name\": \"web-hpa\", \"target\": \"web\"}");
	standin_do(f, "vpa", "{\"name\": \"web-vpa\", \"target\": \"web\"}");
	a = do_read(f, "default/web");
	assert_int_equal(a.rc, 0);
	printf("# read says: %s\n", a.t.message);
	assert_non_null(strstr(a.t.message, "HorizontalPodAutoscaler web-hpa "
					    "targets it"));
	assert_non_null(strstr(a.t.message, "VerticalPodAutoscaler web-vpa"));
}

static void test_standin_bad_ref_and_404(void **state)
{
	struct fx *f = *state;
	struct answer a = { 0 };

	assert_int_equal(f->b->ops->read(f->b, "web", read_cb, &a),
			 MDS_E_INVAL);
	assert_int_equal(f->b->ops->read(f->b, "Default/web", read_cb, &a),
			 MDS_E_INVAL);
	a = do_read(f, "default/nope");
	assert_int_equal(a.rc, MDS_E_NOTFOUND);
	printf("# %s\n", a.diag);
	assert_non_null(strstr(a.diag, "404 NotFound: deployments.apps "
				       "\"nope\" not found"));
}

static void test_standin_scale_out_and_in(void **state)
{
	struct fx *f = *state;
	struct answer a = do_apply(f, "default/web", 4, "k8s.s");
	int steps;

	assert_int_equal(a.rc, 0);
	printf("# work request %s\n", a.work_id);
	assert_string_equal(a.work_id, "rollout:2:4");
	assert_int_equal(stored_replicas(f, "web"), 4);
	/* Read the scale, then write it with its resourceVersion. */
	assert_int_equal(logged(f, "GET", "/deployments/web/scale", 200), 1);
	assert_int_equal(logged(f, "PUT", "/deployments/web/scale", 200), 1);

	a = do_progress(f, "default/web", "rollout:2:4");
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.p.status, BACKEND_WORK_IN_PROGRESS);
	a = follow_work(f, "default/web", "rollout:2:4", &steps);
	assert_int_equal(a.p.status, BACKEND_WORK_SUCCEEDED);
	assert_int_equal(a.p.percent, 100);
	/* observe, create, make ready: not done before the pods are ready */
	assert_true(steps >= 3);

	/* At the target already: nothing is sent. */
	a = do_apply(f, "default/web", 4, "k8s.s");
	assert_int_equal(a.rc, 0);
	assert_string_equal(a.work_id, "");
	assert_int_equal(logged(f, "PUT", "/deployments/web/scale", 0), 1);

	a = do_apply(f, "default/web", 1, "");
	assert_int_equal(a.rc, 0);
	assert_string_equal(a.work_id, "rollout:3:1");
	a = follow_work(f, "default/web", a.work_id, &steps);
	assert_int_equal(a.p.status, BACKEND_WORK_SUCCEEDED);
	assert_int_equal(stored_replicas(f, "web"), 1);
}

static void test_standin_conflict_is_retried(void **state)
{
	struct fx *f = *state;
	struct answer a;

	/* Two concurrent writers move the resourceVersion: two 409s, then
	 * the third write (after reading again) goes through. */
	standin_do(f, "conflict", "{\"count\": 2}");
	a = do_apply(f, "default/web", 3, "");
	assert_int_equal(a.rc, 0);
	assert_int_equal(logged(f, "PUT", "/deployments/web/scale", 409), 2);
	assert_int_equal(logged(f, "PUT", "/deployments/web/scale", 200), 1);
	assert_int_equal(logged(f, "GET", "/deployments/web/scale", 200), 3);
	assert_int_equal(stored_replicas(f, "web"), 3);
	settle(f, "web");

	/* A writer that never stops: give up, overwrite nothing. */
	standin_do(f, "conflict", "{\"count\": 100}");
	a = do_apply(f, "default/web", 5, "");
	assert_int_equal(a.rc, MDS_E_CONFLICT);
	printf("# %s\n", a.diag);
	assert_non_null(strstr(a.diag, "nothing was overwritten"));
	assert_non_null(strstr(a.diag, "409 Conflict"));
	assert_int_equal(logged(f, "PUT", "/deployments/web/scale", 409),
			 2 + K8S_APPLY_ATTEMPTS);
	assert_int_equal(stored_replicas(f, "web"), 3);
}

static void test_standin_forbidden_names_verb(void **state)
{
	struct fx *f = *state;
	struct answer a;

	standin_do(f, "forbid",
		   "{\"verb\": \"update\", \"resource\": \"deployments/scale\"}");
	a = do_apply(f, "default/web", 3, "");
	assert_int_equal(a.rc, MDS_E_UNAUTH);
	printf("# %s\n", a.diag);
	assert_non_null(strstr(a.diag, "403 Forbidden"));
	assert_non_null(strstr(a.diag, "cannot update resource "
				       "\"deployments/scale\" in API group "
				       "\"apps\" in the namespace "
				       "\"default\""));
	assert_int_equal(stored_replicas(f, "web"), 2);
}

static void test_standin_invalid_422(void **state)
{
	struct fx *f = *state;
	struct answer a;

	standin_do(f, "fault",
		   "{\"method\": \"PUT\", \"path\": \"/scale$\", \"status\": "
		   "422, \"reason\": \"Invalid\", \"message\": \"Scale.autoscaling "
		   "\\\"web\\\" is invalid: spec.replicas: Invalid value\"}");
	a = do_apply(f, "default/web", 3, "");
	assert_int_equal(a.rc, MDS_E_INVAL);
	printf("# %s\n", a.diag);
	assert_non_null(strstr(a.diag, "422 Invalid: Scale.autoscaling"));
	assert_int_equal(stored_replicas(f, "web"), 2);
}

static void test_standin_progress_deadline(void **state)
{
	struct fx *f = *state;
	struct answer a;
	int steps;

	standin_do(f, "stall", "{\"name\": \"web\"}");
	a = do_apply(f, "default/web", 3, "");
	assert_int_equal(a.rc, 0);
	a = follow_work(f, "default/web", a.work_id, &steps);
	assert_int_equal(a.p.status, BACKEND_WORK_FAILED);
	printf("# %s\n", a.p.message);
	assert_non_null(strstr(a.p.message, "has timed out progressing"));
	a = do_read(f, "default/web");
	assert_string_equal(a.t.state, "FAILED");
}

static void test_standin_one_change_at_a_time(void **state)
{
	struct fx *f = *state;
	struct answer a = { 0 }, b;
	struct backend_target want = { .count = 3 }, want2 = { .count = 4 };

	/* While one apply runs, another is refused at once. */
	assert_int_equal(f->b->ops->apply(f->b, "default/web", &want, apply_cb,
					  &a), 0);
	assert_int_equal(f->b->ops->apply(f->b, "default/web", &want2,
					  apply_cb, &a), MDS_E_CONFLICT);
	run_until(f, &a.done);
	assert_int_equal(a.rc, 0);
	/* While the Deployment still rolls out, a different change waits. */
	b = do_apply(f, "default/web", 4, "");
	assert_int_equal(b.rc, MDS_E_CONFLICT);
	printf("# %s\n", b.diag);
	assert_non_null(strstr(b.diag, "still rolling out"));
	/* The same target again is not a second change. */
	b = do_apply(f, "default/web", 3, "");
	assert_int_equal(b.rc, 0);
	assert_string_equal(b.work_id, "");
	assert_int_equal(stored_replicas(f, "web"), 3);
}

/* The model container's limits in the stored Deployment's template, or in
 * the first pod. */
static void stored_limits(struct fx *f, int pod, char *cpu, char *mem)
{
	json_t *st = standin(f, "state", NULL);
	json_t *obj = pod ? json_array_get(json_object_get(st, "pods"), 0)
			  : json_array_get(json_object_get(st, "deployments"),
					   0);
	json_t *spec = json_object_get(obj, "spec");
	json_t *c, *lim;

	if (!pod)
		spec = json_object_get(json_object_get(spec, "template"),
				       "spec");
	c = json_array_get(json_object_get(spec, "containers"), 0);
	lim = json_object_get(json_object_get(c, "resources"), "limits");
	snprintf(cpu, 16, "%s", json_string_value(json_object_get(lim, "cpu")));
	snprintf(mem, 16, "%s",
		 json_string_value(json_object_get(lim, "memory")));
	json_decref(st);
}

static void test_standin_rollout_without_resize(void **state)
{
	struct fx *f = *state;
	struct answer a = do_apply(f, "default/web", 2, "k8s.m");
	char cpu[16], mem[16];
	json_t *d;
	int steps;

	assert_int_equal(a.rc, 0);
	assert_string_equal(a.work_id, "rollout:2:2");
	assert_int_equal(logged(f, "PATCH", "/deployments/web", 200), 1);
	assert_int_equal(logged(f, "PATCH", "/resize", 0), 0);
	d = stored(f, "web");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
		json_object_get(json_object_get(d, "spec"), "strategy"),
		"rollingUpdate"), "maxUnavailable")), 0);
	json_decref(d);
	stored_limits(f, 0, cpu, mem);
	assert_string_equal(cpu, "1");
	assert_string_equal(mem, "512Mi");
	a = follow_work(f, "default/web", "rollout:2:2", &steps);
	assert_int_equal(a.p.status, BACKEND_WORK_SUCCEEDED);
	stored_limits(f, 1, cpu, mem);
	assert_string_equal(cpu, "1");
	a = do_read(f, "default/web");
	assert_string_equal(a.t.shape, "k8s.m");
}

/* How many stored pods run the model container with this CPU limit. */
static int all_pods_cpu(struct fx *f, const char *cpu)
{
	json_t *st = standin(f, "state", NULL), *p;
	size_t i;
	int n = 0;

	json_array_foreach(json_object_get(st, "pods"), i, p) {
		json_t *c = json_array_get(json_object_get(json_object_get(p,
						"spec"), "containers"), 0);
		const char *v = json_string_value(json_object_get(
			json_object_get(json_object_get(c, "resources"),
					"limits"), "cpu"));

		n += v != NULL && strcmp(v, cpu) == 0;
	}
	json_decref(st);
	return n;
}

static void test_standin_resize_in_place(void **state)
{
	struct fx *f = *state;
	struct answer a;
	char cpu[16], mem[16];
	int steps;

	standin_do(f, "resize", "{\"enabled\": true}");
	/* The annotation's write meets a concurrent writer once: read again,
	 * resize again (the same), annotate. */
	standin_do(f, "conflict", "{\"count\": 1}");
	a = do_apply(f, "default/web", 2, "k8s.m");
	assert_int_equal(a.rc, 0);
	assert_string_equal(a.work_id, "resize:k8s.m");
	assert_int_equal(logged(f, "GET", "/api/v1", 200), 1);
	assert_int_equal(logged(f, "PATCH", "/deployments/web", 409), 1);
	assert_int_equal(logged(f, "PATCH", "/deployments/web", 200), 1);
	assert_int_equal(logged(f, "PATCH", "/resize", 200), 4);
	/* The template is untouched: no rollout replaces the pods. */
	stored_limits(f, 0, cpu, mem);
	assert_string_equal(cpu, "500m");
	stored_limits(f, 1, cpu, mem);
	assert_string_equal(cpu, "1");
	assert_string_equal(mem, "512Mi");
	a = follow_work(f, "default/web", "resize:k8s.m", &steps);
	assert_int_equal(a.p.status, BACKEND_WORK_SUCCEEDED);
	assert_int_equal(steps, 0);
	a = do_read(f, "default/web");
	assert_string_equal(a.t.shape, "k8s.m");
	assert_string_equal(a.t.state, "ACTIVE");

	/* A pod made later from the unchanged template is resized too. */
	a = do_apply(f, "default/web", 3, "k8s.m");
	assert_int_equal(a.rc, 0);
	assert_string_equal(a.work_id, "rollout:2:3");
	a = follow_work(f, "default/web", a.work_id, &steps);
	assert_int_equal(a.p.status, BACKEND_WORK_SUCCEEDED);
	for (int i = 0; i < 200 && all_pods_cpu(f, "1") != 3; i++)
		run_for(f, 50);
	assert_int_equal(all_pods_cpu(f, "1"), 3);
	assert_int_equal(logged(f, "PATCH", "/resize", 200), 5);
	a = do_read(f, "default/web");
	assert_string_equal(a.t.shape, "k8s.m");
}

struct seen {
	int pods, ready;
};

static void count_pod(void *arg, const struct backend_listed *x)
{
	struct seen *s = arg;

	s->pods++;
	s->ready += x->ready;
}

static struct seen listed(struct fx *f)
{
	struct seen s = { 0 };
	int rc = f->b->ops->list(f->b, "default/web", count_pod, &s);

	/* Before the first lists are answered nothing is known yet. */
	assert_true(rc == 0 || (rc == MDS_E_UNAVAIL && s.pods == 0));
	return s;
}

/* Runs the loop until list() shows n ready pods (at most 10 s). */
static void wait_ready(struct fx *f, int n)
{
	for (int i = 0; i < 200; i++) {
		struct seen s = listed(f);

		if (s.pods == n && s.ready == n)
			return;
		run_for(f, 50);
	}
	fail_msg("list() never showed %d ready pods", n);
}

static void test_standin_watch_resume_and_relist(void **state)
{
	struct fx *f = *state;
	struct k8s_target_stats st;
	struct answer a;

	a = do_read(f, "default/web"); /* starts following it */
	assert_int_equal(a.rc, 0);
	wait_ready(f, 2);
	assert_int_equal(backend_k8s_stats(f->b, "default/web", &st), 0);
	assert_int_equal(st.lists, 2);
	assert_int_equal(st.watches, 2);

	/* Changes arrive through the watch. */
	a = do_apply(f, "default/web", 3, "");
	settle(f, "web");
	wait_ready(f, 3);

	/* The server ends every watch: both resume from their
	 * resourceVersion, without listing again. */
	standin_do(f, "end-watches", "{}");
	run_for(f, 300);
	assert_int_equal(backend_k8s_stats(f->b, "default/web", &st), 0);
	printf("# after the watches ended: %u lists, %u watches, %u resumes\n",
	       st.lists, st.watches, st.resumes);
	assert_int_equal(st.resumes, 2);
	assert_int_equal(st.lists, 2);
	assert_int_equal(st.relists, 0);

	/* The history is gone: a watch resumed from an older
	 * resourceVersion gets 410 Gone and lists again (the Deployment's,
	 * whose last event is older than the pods'); then changes made
	 * meanwhile are seen. */
	standin_do(f, "compact", "{}");
	standin_do(f, "end-watches", "{}");
	run_for(f, 300);
	assert_int_equal(backend_k8s_stats(f->b, "default/web", &st), 0);
	printf("# after 410: %u lists, %u relists\n", st.lists, st.relists);
	assert_true(st.relists >= 1);
	assert_int_equal(st.lists, 2 + st.relists);
	a = do_apply(f, "default/web", 1, "");
	settle(f, "web");
	wait_ready(f, 1);
}

static void test_standin_pod_metrics(void **state)
{
	struct fx *f = *state;
	json_t *st;
	const char *pod;
	char body[256];
	struct backend_instance in = { 0 };
	struct backend_usage u;
	int rc = MDS_E_NOTFOUND;

	/* The figures are set before the backend follows the Deployment, so
	 * that every PodMetrics answer it ever gets has them: set later, a
	 * poll in between (the first comes 200 ms after following starts; a
	 * loaded machine can take longer to get there) would give the pod
	 * the stand-in's 0 first, and usage() would rightly return that. */
	st = standin(f, "state", NULL);
	pod = json_string_value(json_object_get(json_object_get(json_array_get(
		json_object_get(st, "pods"), 0), "metadata"), "name"));
	assert_non_null(pod);
	snprintf(in.handle, sizeof(in.handle), "%s", pod);
	snprintf(body, sizeof(body),
		 "{\"pod\": \"%s\", \"container\": \"model\", \"cpu\": "
		 "\"125000000n\", \"memory\": \"192Mi\"}", pod);
	json_decref(st);
	standin_do(f, "metrics", body);
	(void)do_read(f, "default/web");
	wait_ready(f, 2);
	for (int i = 0; i < 200 && rc != 0; i++) {
		run_for(f, 50);
		rc = f->b->ops->usage(f->b, &in, &u);
	}
	assert_int_equal(rc, 0);
	printf("# %s: cpu %.1f%%, memory %.1f%%\n", in.handle, u.cpu_percent,
	       u.mem_percent);
	/* 125m of a 500m limit; 192 MiB of 256 MiB. */
	assert_true(u.cpu_percent > 24.9 && u.cpu_percent < 25.1);
	assert_true(u.mem_percent > 74.9 && u.mem_percent < 75.1);
}

static void test_standin_client_cert_and_expired_token(void **state)
{
	struct fx *f = *state;
	struct backend *tokb = f->b;
	struct answer a;

	f->b = make_backend(f, "kubeconfig-cert");
	a = do_read(f, "default/web");
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.t.count, 2);
	close_backend(f, f->b);
	f->b = tokb;

	standin_do(f, "expire-token", "{\"token\": \"standin-token\"}");
	a = do_read(f, "default/web");
	assert_int_equal(a.rc, MDS_E_UNAUTH);
	printf("# %s\n", a.diag);
	assert_non_null(strstr(a.diag, "401 Unauthorized"));
	assert_non_null(strstr(a.diag, "refused the credentials of"));
	assert_non_null(strstr(a.diag, "context standin"));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_standin_read, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_standin_bad_ref_and_404,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_standin_scale_out_and_in,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_standin_conflict_is_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_standin_forbidden_names_verb, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standin_invalid_422, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_standin_progress_deadline,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_standin_one_change_at_a_time, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_standin_rollout_without_resize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standin_resize_in_place,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_standin_watch_resume_and_relist, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standin_pod_metrics, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_standin_client_cert_and_expired_token, setup,
			teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s K8S_STANDIN_SCRIPT\n", argv[0]);
		return 2;
	}
	standin_script = argv[1];
	printf("# contract tests against a stand-in of the Kubernetes API "
	       "server (%s), not a real cluster\n", standin_script);
	httpc_global_init();
	return cmocka_run_group_tests_name("kubernetes backend vs stand-in",
					   tests, NULL, NULL);
}
