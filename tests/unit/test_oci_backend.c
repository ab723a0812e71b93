/*
 * test_oci_backend.c - contract tests of the oci backend against the OCI
 * API STAND-IN (tests/standin/oci_standin.py), not against OCI.
 *
 * The stand-in runs as a child process serving HTTPS on 127.0.0.1; it
 * checks every request's signature with the test key and every body
 * against the documented API shapes, and records violations, which must
 * be none at the end of each test. The backend signs with an API key read
 * from a real OCI config file written by the test. Scripting goes through
 * the stand-in's unsigned control endpoint (/_standin/...).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "deploy/backend.h"
#include "http/httpc.h"
#include "oci/alarms.h"
#include "oci/backend_oci.h"
#include "oci/client.h"
#include "oci/config.h"
#include "oci/shapes.h"
#include "oci/signer.h"
#include "util/err.h"

#include "oci_test_key.h"


#define TENANCY                                                               \
	"ocid1.tenancy.oc1..aaaaaaaaba3pv6wkcr4jqae5f15p2b2m2yt2j6rx32uzr4h25v" \
	"qstifsfdsq"
#define USER                                                                  \
	"ocid1.user.oc1..aaaaaaaat5nvwcna5j6aqzjcaty5eqbb6qt2jvpkanghtgdaqedqw" \
	"3rynjq"
#define FINGERPRINT "73:61:a2:21:67:e0:df:be:7e:4b:93:1e:15:98:a5:b7"

struct fixture {
	uv_loop_t loop;
	pid_t standin;
	char dir[64];
	char url[128];
	char ca[256];
	struct httpc *http;
	struct oci_signer *signer;
	struct oci_client *client;
	struct backend *b;
	struct shape_ladder flex;
	int closed;
};

/* What a backend callback saw. */
struct result {
	int calls;
	int rc;
	struct backend_target t;
	struct backend_progress p;
	char work_id[BACKEND_WORK_ID_MAX];
	char diag[512];
};

/* ---- the stand-in process ---- */

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
}

/* Starts the stand-in and reads its URL and CA from its first line. */
static void start_standin(struct fixture *f)
{
	const char *script = getenv("OCI_STANDIN");
	int pipefd[2];
	char line[512] = "";
	FILE *out;

	assert_non_null(script);
	assert_int_equal(pipe(pipefd), 0);
	f->standin = fork();
	assert_true(f->standin >= 0);
	if (f->standin == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		/* Ends with the test process, however it ends. */
		alarm(300);
		execlp("python3", "python3", script, "--dir", f->dir,
		       (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	out = fdopen(pipefd[0], "r");
	assert_non_null(out);
	assert_non_null(fgets(line, sizeof(line), out));
	fclose(out);
	printf("# %s", line);
	assert_int_equal(sscanf(line, "OCI stand-in listening on %127s (CA: %255[^)])",
				f->url, f->ca),
			 2);
}

static void stop_standin(struct fixture *f)
{
	int status;

	kill(f->standin, SIGTERM);
	waitpid(f->standin, &status, 0);
}

/* ---- the loop ---- */

static void run_until(struct fixture *f, const int *flag, int want)
{
	uint64_t start = uv_now(&f->loop);

	while (*flag < want && uv_now(&f->loop) - start < 20000) {
		uv_run(&f->loop, UV_RUN_ONCE);
		uv_update_time(&f->loop);
	}
	assert_int_equal(*flag, want);
}

static void wake_cb(uv_timer_t *t)
{
	(*(int *)t->data)++;
}

/* Runs the loop for ms, with a timer keeping it alive as a daemon's
 * handles would. */
static void run_for(struct fixture *f, uint64_t ms)
{
	uv_timer_t t;
	int fired = 0;

	uv_timer_init(&f->loop, &t);
	t.data = &fired;
	uv_timer_start(&t, wake_cb, ms, 0);
	run_until(f, &fired, 1);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* ---- the control endpoint ---- */

struct ctl_call {
	int done;
	long status;
	json_t *body;
};

static void ctl_done(void *arg, const struct httpc_result *res)
{
	struct ctl_call *c = arg;

	c->done = 1;
	c->status = res->status;
	c->body = res->body_len ? json_loadb(res->body, res->body_len, 0, NULL)
				: NULL;
}

/* Calls the control endpoint; returns the answer's JSON (new reference,
 * may be NULL). */
static json_t *ctl(struct fixture *f, const char *method, const char *path,
		   const char *body)
{
	char url[256];
	struct ctl_call c = { 0 };
	const char *hdrs[] = { "Content-Type: application/json", NULL };
	struct httpc_opts o = { .method = method, .headers = hdrs,
				.body = body, .body_len = body ? strlen(body) : 0,
				.ca_file = f->ca };

	snprintf(url, sizeof(url), "%s/_standin/%s", f->url, path);
	assert_int_equal(httpc_request(f->http, url, &o, ctl_done, &c, NULL),
			 0);
	run_until(f, &c.done, 1);
	assert_true(c.status >= 200 && c.status < 300);
	return c.body;
}

/* Seeds a deployment; returns its OCID in out. */
static void seed(struct fixture *f, const char *doc, char *out, size_t outsz)
{
	json_t *d = ctl(f, "POST", "deployments", doc);

	snprintf(out, outsz, "%s", json_string_value(json_object_get(d, "id")));
	json_decref(d);
}

/* Counts logged API requests with method whose path contains part. */
static int count_requests(struct fixture *f, const char *method,
			  const char *part, json_t **last_body)
{
	json_t *log = ctl(f, "GET", "log", NULL), *e;
	size_t i;
	int n = 0;

	json_array_foreach(json_object_get(log, "items"), i, e) {
		const char *m = json_string_value(json_object_get(e, "method"));
		const char *p = json_string_value(json_object_get(e, "path"));

		if (strcmp(m, method) == 0 && strstr(p, part)) {
			n++;
			if (last_body) {
				json_decref(*last_body);
				*last_body = json_incref(json_object_get(e, "body"));
			}
		}
	}
	json_decref(log);
	return n;
}

static void assert_no_violations(struct fixture *f)
{
	json_t *v = ctl(f, "GET", "violations", NULL);
	json_t *items = json_object_get(v, "items");

	if (json_array_size(items) > 0) {
		char *s = json_dumps(items, JSON_INDENT(1));

		print_error("stand-in violations: %s\n", s);
		free(s);
	}
	assert_int_equal(json_array_size(items), 0);
	json_decref(v);
}

/* ---- set-up ---- */

static void new_backend(struct fixture *f)
{
	char diag[256];
	struct oci_client_opts co = { .ca_file = f->ca, .backoff_base_ms = 50,
				      .backoff_max_ms = 3000 };
	struct backend_oci_env env = {
		.loop = &f->loop, .region = oci_signer_region(f->signer),
		.endpoint = f->url, .metrics_ms = 300,
	};

	f->client = oci_client_new(&f->loop, f->http, f->signer, &co);
	env.client = f->client;
	assert_int_equal(backend_oci_new(&env, &f->b, diag, sizeof(diag)), 0);
}

static void on_closed(void *arg)
{
	(*(int *)arg)++;
}

/* Closes the backend and its client as a daemon that stops would. */
static void close_backend(struct fixture *f)
{
	int closed = 0;

	f->b->ops->close(f->b, on_closed, &closed);
	run_until(f, &closed, 1);
	oci_client_free(f->client);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	f->b = NULL;
	f->client = NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[160], text[1024], diag[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/mds-ocibe-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/key.pem", f->dir);
	write_file(path, test_key);
	snprintf(text, sizeof(text),
		 "[DEFAULT]\nuser=" USER "\nfingerprint=" FINGERPRINT
		 "\nkey_file=%s\ntenancy=" TENANCY "\nregion=us-ashburn-1\n",
		 path);
	snprintf(path, sizeof(path), "%s/config", f->dir);
	write_file(path, text);
	assert_int_equal(oci_signer_from_config(path, NULL, &f->signer, diag,
						sizeof(diag)),
			 0);
	start_standin(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(httpc_new(&f->loop, &f->http), 0);
	new_backend(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	assert_no_violations(f);
	if (f->b)
		close_backend(f);
	httpc_close(f->http);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	oci_signer_free(f->signer);
	stop_standin(f);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* ---- backend calls, waited for ---- */

static void read_cb(void *arg, int rc, const struct backend_target *t,
		    const char *diag)
{
	struct result *r = arg;

	r->calls++;
	r->rc = rc;
	if (t)
		r->t = *t;
	snprintf(r->diag, sizeof(r->diag), "%s", diag ? diag : "");
}

static void apply_cb(void *arg, int rc, const char *work_id, const char *diag)
{
	struct result *r = arg;

	r->calls++;
	r->rc = rc;
	snprintf(r->work_id, sizeof(r->work_id), "%s", work_id ? work_id : "");
	snprintf(r->diag, sizeof(r->diag), "%s", diag ? diag : "");
}

static void progress_cb(void *arg, int rc, const struct backend_progress *p,
			const char *diag)
{
	struct result *r = arg;

	r->calls++;
	r->rc = rc;
	if (p)
		r->p = *p;
	snprintf(r->diag, sizeof(r->diag), "%s", diag ? diag : "");
}

static struct result do_read(struct fixture *f, const char *ref)
{
	struct result r = { 0 };

	assert_int_equal(f->b->ops->read(f->b, ref, read_cb, &r), 0);
	assert_int_equal(r.calls, 0); /* never inside the call */
	run_until(f, &r.calls, 1);
	return r;
}

static struct result do_apply(struct fixture *f, const char *ref,
			      uint32_t count, const char *shape,
			      const char *etag)
{
	struct result r = { 0 };
	struct backend_target want = { .count = count };

	snprintf(want.shape, sizeof(want.shape), "%s", shape ? shape : "");
	snprintf(want.etag, sizeof(want.etag), "%s", etag ? etag : "");
	assert_int_equal(f->b->ops->apply(f->b, ref, &want, apply_cb, &r), 0);
	run_until(f, &r.calls, 1);
	return r;
}

/* Polls progress until the work request ends; returns the statuses seen
 * as a bit set of (1 << status). */
static unsigned follow(struct fixture *f, const char *ref, const char *wr,
		       enum backend_work_status *last)
{
	unsigned seen = 0;

	for (int i = 0; i < 50; i++) {
		struct result r = { 0 };

		assert_int_equal(f->b->ops->progress(f->b, ref, wr,
						     progress_cb, &r),
				 0);
		run_until(f, &r.calls, 1);
		assert_int_equal(r.rc, 0);
		seen |= 1u << r.p.status;
		*last = r.p.status;
		if (r.p.status == BACKEND_WORK_SUCCEEDED ||
		    r.p.status == BACKEND_WORK_FAILED)
			return seen;
		assert_true(r.p.percent >= 0 && r.p.percent <= 100);
	}
	fail_msg("work request %s never ended", wr);
	return seen;
}

/* ---- the tests ---- */

static void standin_read(void **state)
{
	struct fixture *f = *state;
	char ocid[256];
	struct result r;

	seed(f, "{\"instanceShapeName\":\"VM.Standard2.2\","
		"\"instanceCount\":3}", ocid, sizeof(ocid));
	r = do_read(f, ocid);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.t.state, "ACTIVE");
	assert_int_equal(r.t.count, 3);
	assert_string_equal(r.t.shape, "VM.Standard2.2");
	assert_true(strlen(r.t.etag) > 0);
	assert_int_equal(count_requests(f, "GET", ocid, NULL), 1);
}

static void standin_scale_count_follows_work_request(void **state)
{
	struct fixture *f = *state;
	char ocid[256];
	struct result r;
	enum backend_work_status last;
	unsigned seen;
	json_t *body = NULL, *mc;

	seed(f, "{\"instanceCount\":1}", ocid, sizeof(ocid));
	r = do_read(f, ocid);
	r = do_apply(f, ocid, 2, NULL, r.t.etag);
	assert_int_equal(r.rc, 0);
	assert_true(strncmp(r.work_id, "ocid1.datascienceworkrequest.", 29) ==
		    0);
	seen = follow(f, ocid, r.work_id, &last);
	assert_int_equal(last, BACKEND_WORK_SUCCEEDED);
	assert_true(seen & (1u << BACKEND_WORK_ACCEPTED));
	assert_true(seen & (1u << BACKEND_WORK_IN_PROGRESS));
	r = do_read(f, ocid);
	assert_int_equal(r.t.count, 2);
	assert_string_equal(r.t.state, "ACTIVE");
	assert_int_equal(count_requests(f, "PUT", ocid, &body), 1);
	mc = json_object_get(json_object_get(body,
					     "modelDeploymentConfigurationDetails"),
			     "modelConfigurationDetails");
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(mc, "scalingPolicy"),
				 "instanceCount")),
			 2);
	assert_null(json_object_get(mc, "instanceConfiguration"));
	json_decref(body);
}

static void standin_scale_shape(void **state)
{
	struct fixture *f = *state;
	char ocid[256];
	struct result r;
	enum backend_work_status last;
	json_t *body = NULL, *ic;

	seed(f, "{\"instanceShapeName\":\"VM.Standard2.1\"}", ocid,
	     sizeof(ocid));
	r = do_apply(f, ocid, 0, "VM.Standard2.2", NULL);
	assert_int_equal(r.rc, 0);
	follow(f, ocid, r.work_id, &last);
	assert_int_equal(last, BACKEND_WORK_SUCCEEDED);
	r = do_read(f, ocid);
	assert_string_equal(r.t.shape, "VM.Standard2.2");
	assert_int_equal(count_requests(f, "PUT", ocid, &body), 1);
	ic = json_object_get(
		json_object_get(json_object_get(body,
						"modelDeploymentConfigurationDetails"),
				"modelConfigurationDetails"),
		"instanceConfiguration");
	assert_string_equal(json_string_value(json_object_get(
				    ic, "instanceShapeName")),
			    "VM.Standard2.2");
	json_decref(body);
}

static void standin_work_request_failed(void **state)
{
	struct fixture *f = *state;
	char ocid[256];
	struct result r;
	enum backend_work_status last;

	seed(f, "{\"instanceCount\":1}", ocid, sizeof(ocid));
	json_decref(ctl(f, "POST", "workrequests",
			"{\"fail_next_update\":true}"));
	r = do_apply(f, ocid, 2, NULL, NULL);
	assert_int_equal(r.rc, 0);
	follow(f, ocid, r.work_id, &last);
	assert_int_equal(last, BACKEND_WORK_FAILED);
	r = do_read(f, ocid);
	assert_int_equal(r.t.count, 1);
}

static void standin_not_active_sends_nothing(void **state)
{
	struct fixture *f = *state;
	char ocid[256], path[300];
	struct result r;

	seed(f, "{\"instanceCount\":1}", ocid, sizeof(ocid));
	snprintf(path, sizeof(path), "state/%s", ocid);
	json_decref(ctl(f, "POST", path, "{\"lifecycleState\":\"UPDATING\"}"));
	r = do_apply(f, ocid, 2, NULL, NULL);
	assert_int_equal(r.rc, MDS_E_CONFLICT);
	assert_non_null(strstr(r.diag, "UPDATING"));
	assert_int_equal(count_requests(f, "PUT", ocid, NULL), 0);
}

static void standin_409_while_updating(void **state)
{
	struct fixture *f = *state;
	char ocid[256], fault[512];
	struct result r;

	seed(f, "{\"instanceCount\":1}", ocid, sizeof(ocid));
	/* OCI went UPDATING between the read and the PUT. */
	snprintf(fault, sizeof(fault),
		 "{\"method\":\"PUT\",\"path\":\"%s\",\"status\":409}", ocid);
	json_decref(ctl(f, "POST", "faults", fault));
	r = do_apply(f, ocid, 2, NULL, NULL);
	assert_int_equal(r.rc, MDS_E_CONFLICT);
	assert_non_null(strstr(r.diag, "409"));
	/* not retried */
	assert_int_equal(count_requests(f, "PUT", ocid, NULL), 1);
	r = do_read(f, ocid);
	assert_int_equal(r.t.count, 1);
}

static void standin_412_stale_etag(void **state)
{
	struct fixture *f = *state;
	char ocid[256];
	struct result r;

	seed(f, "{\"instanceCount\":1}", ocid, sizeof(ocid));
	r = do_apply(f, ocid, 2, NULL, "0123456789abcdef-stale");
	assert_int_equal(r.rc, MDS_E_CONFLICT);
	assert_non_null(strstr(r.diag, "412"));
	assert_int_equal(count_requests(f, "PUT", ocid, NULL), 1);
	r = do_read(f, ocid);
	assert_int_equal(r.t.count, 1);
	assert_string_equal(r.t.state, "ACTIVE");
}

static void standin_429_retry_after(void **state)
{
	struct fixture *f = *state;
	char ocid[256], fault[512];
	struct result r;
	uint64_t t0;

	seed(f, "{\"instanceCount\":1}", ocid, sizeof(ocid));
	snprintf(fault, sizeof(fault),
		 "{\"method\":\"PUT\",\"path\":\"%s\",\"status\":429,"
		 "\"retryAfter\":1}",
		 ocid);
	json_decref(ctl(f, "POST", "faults", fault));
	t0 = uv_hrtime();
	r = do_apply(f, ocid, 2, NULL, NULL);
	assert_int_equal(r.rc, 0);
	assert_true(r.work_id[0] != '\0');
	/* retry-after: 1 was honoured (the base backoff is 50 ms) */
	assert_true((uv_hrtime() - t0) / 1000000 >= 950);
	assert_int_equal(count_requests(f, "PUT", ocid, NULL), 2);
}

static void standin_500_then_success(void **state)
{
	struct fixture *f = *state;
	char ocid[256], fault[512];
	struct result r;

	seed(f, "{\"instanceCount\":4}", ocid, sizeof(ocid));
	snprintf(fault, sizeof(fault),
		 "{\"method\":\"GET\",\"path\":\"%s\",\"status\":500}", ocid);
	json_decref(ctl(f, "POST", "faults", fault));
	r = do_read(f, ocid);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.t.count, 4);
	assert_int_equal(count_requests(f, "GET", ocid, NULL), 2);
}

/* A daemon killed after OCI accepted the update follows the same work
 * request after its restart and sends no second PUT. */
static void standin_restart_follows_same_work_request(void **state)
{
	struct fixture *f = *state;
	char ocid[256], wr[BACKEND_WORK_ID_MAX];
	struct result r;
	enum backend_work_status last;

	seed(f, "{\"instanceCount\":1}", ocid, sizeof(ocid));
	json_decref(ctl(f, "POST", "workrequests", "{\"hold\":true}"));
	r = do_apply(f, ocid, 3, NULL, NULL);
	assert_int_equal(r.rc, 0);
	snprintf(wr, sizeof(wr), "%s", r.work_id);
	{
		struct result p = { 0 };

		assert_int_equal(f->b->ops->progress(f->b, ocid, wr,
						     progress_cb, &p),
				 0);
		run_until(f, &p.calls, 1);
		assert_int_equal(p.p.status, BACKEND_WORK_ACCEPTED);
	}
	/* The daemon goes away; a new one starts with the recorded id. */
	close_backend(f);
	new_backend(f);
	/* The engine re-applies only if no id was recorded; with an id it
	 * follows it. Either way no second PUT: */
	r = do_apply(f, ocid, 3, NULL, NULL);
	assert_int_equal(r.rc, MDS_E_CONFLICT); /* UPDATING: nothing sent */
	json_decref(ctl(f, "POST", "workrequests", "{\"hold\":false}"));
	{
		char path[400];

		snprintf(path, sizeof(path), "workrequests/%s", wr);
		json_decref(ctl(f, "POST", path, "{\"status\":\"SUCCEEDED\"}"));
	}
	follow(f, ocid, wr, &last);
	assert_int_equal(last, BACKEND_WORK_SUCCEEDED);
	/* Applying the same target again is a no-op now. */
	r = do_apply(f, ocid, 3, NULL, NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.work_id, "");
	assert_int_equal(count_requests(f, "PUT", ocid, NULL), 1);
}

static void standin_flex_shape_steps(void **state)
{
	struct fixture *f = *state;
	char ocid[256], diag[256];
	struct result r;
	enum backend_work_status last;
	json_t *body = NULL, *sc;
	struct oci_flex flex = { .shape = "VM.Standard.E4.Flex",
				 .ocpus_min = 1, .ocpus_max = 4,
				 .memory_gb_min = 16, .memory_gb_max = 64,
				 .steps = 3 };
	struct backend_oci_env env = {
		.loop = &f->loop, .client = f->client,
		.region = "us-ashburn-1", .endpoint = f->url,
		.shapes = &f->flex,
	};
	const struct shape *next;
	int closed = 0;

	assert_int_equal(oci_shapes_flex(&f->flex, &flex, diag, sizeof(diag)),
			 0);
	assert_int_equal(f->flex.n, 4);
	assert_string_equal(f->flex.v[0].name, "VM.Standard.E4.Flex-1-16");
	assert_string_equal(f->flex.v[3].name, "VM.Standard.E4.Flex-4-64");
	f->b->ops->close(f->b, on_closed, &closed);
	run_until(f, &closed, 1);
	assert_int_equal(backend_oci_new(&env, &f->b, diag, sizeof(diag)), 0);

	seed(f, "{\"instanceShapeName\":\"VM.Standard.E4.Flex\",\"ocpus\":1,"
		"\"memoryInGBs\":16}", ocid, sizeof(ocid));
	r = do_read(f, ocid);
	assert_string_equal(r.t.shape, "VM.Standard.E4.Flex-1-16");
	next = shape_step(f->b->ops->shapes(f->b), r.t.shape, 1);
	assert_non_null(next);
	assert_string_equal(next->name, "VM.Standard.E4.Flex-2-32");
	r = do_apply(f, ocid, 0, next->name, NULL);
	assert_int_equal(r.rc, 0);
	follow(f, ocid, r.work_id, &last);
	assert_int_equal(last, BACKEND_WORK_SUCCEEDED);
	r = do_read(f, ocid);
	assert_string_equal(r.t.shape, "VM.Standard.E4.Flex-2-32");
	count_requests(f, "PUT", ocid, &body);
	sc = json_object_get(
		json_object_get(
			json_object_get(json_object_get(body,
							"modelDeploymentConfigurationDetails"),
					"modelConfigurationDetails"),
			"instanceConfiguration"),
		"modelDeploymentInstanceShapeConfigDetails");
	assert_true(json_number_value(json_object_get(sc, "ocpus")) == 2.0);
	assert_true(json_number_value(json_object_get(sc, "memoryInGBs")) ==
		    32.0);
	json_decref(body);
}

static void standin_bad_input(void **state)
{
	struct fixture *f = *state;
	struct result r;
	struct backend_target want = { .count = 2 };
	char region[64], diag[256], ocid[256];
	struct shape_ladder odd;

	/* Refused before anything is sent: no callback. */
	assert_int_equal(f->b->ops->read(f->b, "not-an-ocid", read_cb, &r),
			 MDS_E_INVAL);
	assert_int_equal(backend_oci_check_ref(
				 "ocid1.datasciencemodel.oc1.iad.abc", NULL,
				 region, diag, sizeof(diag)),
			 MDS_E_INVAL);
	assert_non_null(strstr(diag, "not of a model deployment"));
	assert_int_equal(backend_oci_check_ref(
				 "ocid1.datasciencemodeldeployment.oc1.zzz.abc",
				 NULL, region, diag, sizeof(diag)),
			 MDS_E_INVAL);
	assert_non_null(strstr(diag, "region"));
	assert_int_equal(backend_oci_check_ref(
				 "ocid1.datasciencemodeldeployment.oc1.iad.abc",
				 NULL, region, diag, sizeof(diag)),
			 0);
	assert_string_equal(region, "us-ashburn-1");
	snprintf(want.shape, sizeof(want.shape), "VM.Standard2.48");
	assert_int_equal(f->b->ops->apply(f->b,
					  "ocid1.datasciencemodeldeployment."
					  "oc1.us-ashburn-1.x",
					  &want, apply_cb, &r),
			 MDS_E_INVAL);

	/* A deployment that does not exist (or is not visible). */
	r = do_read(f, "ocid1.datasciencemodeldeployment.oc1.us-ashburn-1."
		       "doesnotexist");
	assert_int_equal(r.rc, MDS_E_NOTFOUND);
	assert_non_null(strstr(r.diag, "does not exist or is not visible"));

	/* A shape the region does not offer: OCI's 400, nothing changes. */
	shape_ladder_init(&odd);
	assert_int_equal(oci_shapes_add(&odd, "VM.Standard2.1", 1, 15, diag,
					sizeof(diag)),
			 0);
	assert_int_equal(oci_shapes_add(&odd, "VM.GPU9.1", 12, 72, diag,
					sizeof(diag)),
			 0);
	{
		int closed = 0;
		struct backend_oci_env env = {
			.loop = &f->loop, .client = f->client,
			.region = "us-ashburn-1", .endpoint = f->url,
			.shapes = &odd,
		};

		f->b->ops->close(f->b, on_closed, &closed);
		run_until(f, &closed, 1);
		assert_int_equal(backend_oci_new(&env, &f->b, diag,
						 sizeof(diag)),
				 0);
	}
	seed(f, "{\"instanceShapeName\":\"VM.Standard2.1\"}", ocid,
	     sizeof(ocid));
	r = do_apply(f, ocid, 0, "VM.GPU9.1", NULL);
	assert_int_equal(r.rc, MDS_E_INVAL);
	assert_non_null(strstr(r.diag, "not offered"));
	r = do_read(f, ocid);
	assert_string_equal(r.t.shape, "VM.Standard2.1");
	assert_string_equal(r.t.state, "ACTIVE");
}

static void list_one(void *arg, const struct backend_listed *x)
{
	struct backend_listed *out = arg;

	*out = *x;
	out->id = "seen";
}

/* The usage the backend has for deployment id. */
static int usage_of(struct fixture *f, const char *id,
		    struct backend_usage *u)
{
	struct backend_instance in = { 0 };

	snprintf(in.handle, sizeof(in.handle), "%.*s",
		 (int)sizeof(in.handle) - 1, id);
	return f->b->ops->usage(f->b, &in, u);
}

static void standin_metrics(void **state)
{
	struct fixture *f = *state;
	char a[256], b[256], doc[512];
	struct backend_instance in = { 0 };
	struct backend_usage u = { 0 };
	struct backend_listed x = { 0 };
	json_t *log, *e;
	size_t i;
	int summarize = 0;

	seed(f, "{}", a, sizeof(a));
	seed(f, "{}", b, sizeof(b));
	snprintf(doc, sizeof(doc), "{\"name\":\"CpuUtilization\","
		 "\"resourceId\":\"%s\",\"value\":81.5}", a);
	json_decref(ctl(f, "POST", "metrics", doc));
	snprintf(doc, sizeof(doc), "{\"name\":\"MemoryUtilization\","
		 "\"resourceId\":\"%s\",\"value\":42}", a);
	json_decref(ctl(f, "POST", "metrics", doc));
	snprintf(doc, sizeof(doc), "{\"name\":\"CpuUtilization\","
		 "\"resourceId\":\"%s\",\"value\":7}", b);
	json_decref(ctl(f, "POST", "metrics", doc));
	do_read(f, a);
	do_read(f, b);
	/* The period is 300 ms in this test, CPU and memory one call each; a
	 * loaded machine may take a few periods to answer every figure (or
	 * poll between the two reads): wait up to 10 s for them. */
	for (i = 0; i < 100 && !(usage_of(f, a, &u) == 0 &&
				 u.cpu_percent == 81.5 &&
				 u.mem_percent == 42 &&
				 usage_of(f, b, &u) == 0 &&
				 u.cpu_percent == 7); i++)
		run_for(f, 100);
	snprintf(in.handle, sizeof(in.handle), "%.*s",
		 (int)sizeof(in.handle) - 1, a);
	assert_int_equal(f->b->ops->usage(f->b, &in, &u), 0);
	assert_true(u.cpu_percent == 81.5);
	assert_true(u.mem_percent == 42);
	snprintf(in.handle, sizeof(in.handle), "%.*s",
		 (int)sizeof(in.handle) - 1, b);
	assert_int_equal(f->b->ops->usage(f->b, &in, &u), 0);
	assert_true(u.cpu_percent == 7);
	assert_true(u.mem_percent == -1);
	assert_int_equal(f->b->ops->list(f->b, a, list_one, &x), 0);
	assert_string_equal(x.id, "seen");
	assert_true(x.ready);
	/* Batched: once both deployments are known, each call covers both
	 * (a poll may fall between the two reads on a slow machine, and
	 * cover a alone). */
	log = ctl(f, "GET", "log", NULL);
	json_array_foreach(json_object_get(log, "items"), i, e) {
		const char *q;
		int has_b;

		if (!strstr(json_string_value(json_object_get(e, "path")),
			    "summarizeMetricsData"))
			continue;
		q = json_string_value(json_object_get(
			json_object_get(e, "body"), "query"));
		has_b = strstr(q, b) != NULL;
		assert_true(has_b || summarize == 0);
		if (has_b) {
			assert_non_null(strstr(q, a));
			summarize++;
		}
	}
	json_decref(log);
	assert_true(summarize >= 2);
	/* A deployment that was never read has no usage. */
	snprintf(in.handle, sizeof(in.handle), "%s",
		 "ocid1.datasciencemodeldeployment.oc1.us-ashburn-1.never");
	assert_int_equal(f->b->ops->usage(f->b, &in, &u), MDS_E_NOTFOUND);
}

struct listed_copy {
	int calls;
	char id[BACKEND_ID_MAX];
	char handle[BACKEND_HANDLE_MAX];
	bool ready;
};

static void list_copy(void *arg, const struct backend_listed *x)
{
	struct listed_copy *l = arg;

	l->calls++;
	snprintf(l->id, sizeof(l->id), "%s", x->id);
	snprintf(l->handle, sizeof(l->handle), "%s", x->handle);
	l->ready = x->ready;
}

/* After a daemon restart the backend has read nothing: the engine's first
 * list of a deployment starts a read, and the next one lists it. */
static void standin_list_reads_an_unknown_deployment(void **state)
{
	struct fixture *f = *state;
	struct listed_copy l = { 0 };
	char ocid[256];
	uint64_t start;

	seed(f, "{}", ocid, sizeof(ocid));
	assert_int_equal(f->b->ops->list(f->b, ocid, list_copy, &l), 0);
	assert_int_equal(l.calls, 0);
	/* a second list while the read runs starts no second read */
	assert_int_equal(f->b->ops->list(f->b, ocid, list_copy, &l), 0);
	start = uv_now(&f->loop);
	while (l.calls == 0 && uv_now(&f->loop) - start < 10000) {
		run_for(f, 50);
		assert_int_equal(f->b->ops->list(f->b, ocid, list_copy, &l), 0);
	}
	assert_int_equal(l.calls, 1);
	assert_true(strncmp(l.id, "oci-", 4) == 0);
	assert_string_equal(l.handle, ocid);
	assert_true(l.ready);
	assert_int_equal(count_requests(f, "GET", ocid, NULL), 1);
}

/* ---- scale-down alarms in OCI Monitoring ---- */

#define COMPARTMENT                                                           \
	"ocid1.compartment.oc1..aaaaaaaam3we6vgnherjq5q2idnccdflvjsnog7mlr6rtdb" \
	"25gilchfeyjxa"

struct alarm_result {
	int calls;
	int rc;
	int created;
	char id[256];
	char diag[512];
};

static void alarm_cb(void *arg, int rc, const char *id, int created,
		     const char *diag)
{
	struct alarm_result *r = arg;

	r->calls++;
	r->rc = rc;
	r->created = created;
	snprintf(r->id, sizeof(r->id), "%s", id ? id : "");
	snprintf(r->diag, sizeof(r->diag), "%s", diag);
}

struct sync_call {
	int done;
	long status;
	json_t *body;
};

static void sync_cb(void *arg, const struct oci_response *res)
{
	struct sync_call *c = arg;

	c->done = 1;
	c->status = res->status;
	c->body = json_loadb(res->body, res->body_len, 0, NULL);
}

static struct alarm_result ensure(struct fixture *f, const char *firing,
				  const char *dep)
{
	struct alarm_result r = { 0 };
	char query[512];
	struct oci_alarm_want w = {
		.title = "model_deployment_low_cpu", .deployment_id = dep,
		.firing_alarm_id = firing, .query = query,
		.body = "Low cpu for model deployment.",
	};

	snprintf(query, sizeof(query),
		 "CpuUtilization[1m]{resourceId = \"%s\"}.max() < 20", dep);
	assert_int_equal(oci_alarm_ensure(f->client, f->url, &w, alarm_cb, &r),
			 0);
	run_until(f, &r.calls, 1);
	return r;
}

static void standin_scale_down_alarms(void **state)
{
	struct fixture *f = *state;
	char url[256], doc[1024], firing[256], dep[256];
	const char *topic;
	struct sync_call c = { 0 };
	struct oci_request req = {
		.method = "POST", .url = url,
		.body = "{\"name\":\"model-deployment-autoscaling\","
			"\"compartmentId\":\"" COMPARTMENT "\"}",
	};
	struct alarm_result r, again, del;
	json_t *a;

	seed(f, "{}", dep, sizeof(dep));
	snprintf(url, sizeof(url), "%s/20181201/topics", f->url);
	req.body_len = strlen(req.body);
	assert_int_equal(oci_client_send(f->client, &req, sync_cb, &c, NULL),
			 0);
	run_until(f, &c.done, 1);
	assert_int_equal(c.status, 200);
	topic = json_string_value(json_object_get(c.body, "topicId"));
	assert_non_null(topic);
	snprintf(doc, sizeof(doc),
		 "{\"displayName\":\"model_deployment_high_cpu\","
		 "\"query\":\"CpuUtilization[5m]{resourceId = \\\"%s\\\"}"
		 ".max() > 80\",\"destinations\":[\"%s\"]}",
		 dep, topic);
	a = ctl(f, "POST", "alarms", doc);
	snprintf(firing, sizeof(firing), "%s",
		 json_string_value(json_object_get(a, "id")));
	json_decref(a);
	json_decref(c.body);

	r = ensure(f, firing, dep);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.created, 1);
	/* No duplicates: a second scale-up finds it. */
	again = ensure(f, firing, dep);
	assert_int_equal(again.rc, 0);
	assert_int_equal(again.created, 0);
	assert_string_equal(again.id, r.id);
	assert_int_equal(count_requests(f, "POST", "/20180401/alarms", NULL),
			 1);
	/* At the floor the scale-down alarm goes. */
	memset(&del, 0, sizeof(del));
	assert_int_equal(oci_alarm_delete(f->client, f->url, r.id, alarm_cb,
					  &del),
			 0);
	run_until(f, &del.calls, 1);
	assert_int_equal(del.rc, 0);
	assert_int_equal(count_requests(f, "DELETE", r.id, NULL), 1);
	/* A firing alarm that does not exist: nothing is created. */
	r = ensure(f, "ocid1.alarm.oc1.us-ashburn-1.nothere", dep);
	assert_int_equal(r.rc, MDS_E_NOTFOUND);
	assert_int_equal(count_requests(f, "POST", "/20180401/alarms", NULL),
			 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(standin_read),
		T(standin_scale_count_follows_work_request),
		T(standin_scale_shape),
		T(standin_work_request_failed),
		T(standin_not_active_sends_nothing),
		T(standin_409_while_updating),
		T(standin_412_stale_etag),
		T(standin_429_retry_after),
		T(standin_500_then_success),
		T(standin_restart_follows_same_work_request),
		T(standin_flex_shape_steps),
		T(standin_bad_input),
		T(standin_metrics),
		T(standin_scale_down_alarms),
		T(standin_list_reads_an_unknown_deployment),
#undef T
	};
	int rc;

	printf("# contract tests against the OCI API stand-in (not OCI)\n");
	httpc_global_init();
	rc = cmocka_run_group_tests_name("oci backend vs the OCI stand-in",
					 tests, NULL, NULL);
	httpc_global_cleanup();
	return rc;
}
