/*
 * test_oci_live.c - the oci backend against real OCI.
 *
 * Runs only with MDSCALE_OCI_LIVE=1, an OCI config file (OCI_CONFIG_FILE
 * or ~/.oci/config; profile OCI_CLI_PROFILE or DEFAULT) and
 * MDSCALE_OCI_DEPLOYMENT set to a model deployment's OCID; otherwise it
 * reports itself skipped (exit 77). It reads the deployment and its
 * utilization; with MDSCALE_OCI_LIVE_SCALE=1 also adds one instance,
 * follows OCI's work request to its end, and takes the instance away
 * again (two real updates: minutes, and billed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "deploy/backend.h"
#include "http/httpc.h"
#include "oci/backend_oci.h"
#include "oci/client.h"
#include "oci/config.h"
#include "oci/signer.h"
#include "util/err.h"

#define SKIP 77

struct live {
	uv_loop_t loop;
	struct httpc *http;
	struct oci_signer *signer;
	struct oci_client *client;
	struct backend *b;
	const char *ocid;
};

struct result {
	int calls;
	int rc;
	struct backend_target t;
	struct backend_progress p;
	char work_id[BACKEND_WORK_ID_MAX];
	char diag[512];
};

static struct live L;

static void run_until(const int *flag)
{
	while (*flag == 0)
		uv_run(&L.loop, UV_RUN_ONCE);
}

static void read_cb(void *arg, int rc, const struct backend_target *t,
		    const char *diag)
{
	struct result *r = arg;

	r->calls++;
	r->rc = rc;
	if (t)
		r->t = *t;
	snprintf(r->diag, sizeof(r->diag), "%s", diag);
}

static void apply_cb(void *arg, int rc, const char *work_id, const char *diag)
{
	struct result *r = arg;

	r->calls++;
	r->rc = rc;
	snprintf(r->work_id, sizeof(r->work_id), "%s", work_id ? work_id : "");
	snprintf(r->diag, sizeof(r->diag), "%s", diag);
}

static void progress_cb(void *arg, int rc, const struct backend_progress *p,
			const char *diag)
{
	struct result *r = arg;

	r->calls++;
	r->rc = rc;
	if (p)
		r->p = *p;
	snprintf(r->diag, sizeof(r->diag), "%s", diag);
}

static struct result do_read(void)
{
	struct result r = { 0 };

	assert_int_equal(L.b->ops->read(L.b, L.ocid, read_cb, &r), 0);
	run_until(&r.calls);
	if (r.rc != 0)
		fail_msg("read: %s", r.diag);
	printf("# %s: %s, %u x %s\n", L.ocid, r.t.state, r.t.count,
	       r.t.shape);
	return r;
}

/* Scales to count and follows the work request; returns its end. */
static enum backend_work_status scale_to(uint32_t count, const char *etag)
{
	struct result r = { 0 };
	struct backend_target want = { .count = count };

	snprintf(want.etag, sizeof(want.etag), "%s", etag);
	assert_int_equal(L.b->ops->apply(L.b, L.ocid, &want, apply_cb, &r), 0);
	run_until(&r.calls);
	if (r.rc != 0)
		fail_msg("apply: %s", r.diag);
	printf("# work request %s\n", r.work_id);
	for (;;) {
		struct result p = { 0 };

		sleep(10);
		assert_int_equal(L.b->ops->progress(L.b, L.ocid, r.work_id,
						    progress_cb, &p),
				 0);
		run_until(&p.calls);
		if (p.rc != 0) {
			printf("# progress: %s (asking again)\n", p.diag);
			continue;
		}
		printf("# %s %d%%\n", backend_work_status_name(p.p.status),
		       p.p.percent);
		if (p.p.status == BACKEND_WORK_SUCCEEDED ||
		    p.p.status == BACKEND_WORK_FAILED)
			return p.p.status;
	}
}

static void live_read(void **state)
{
	struct result r = do_read();

	(void)state;
	assert_true(r.t.count >= 1);
	assert_true(r.t.shape[0] != '\0');
	assert_true(r.t.etag[0] != '\0');
}

static void live_scale_out_and_back(void **state)
{
	struct result r;
	uint32_t before;

	(void)state;
	if (!getenv("MDSCALE_OCI_LIVE_SCALE") ||
	    strcmp(getenv("MDSCALE_OCI_LIVE_SCALE"), "1") != 0)
		skip();
	r = do_read();
	assert_string_equal(r.t.state, "ACTIVE");
	before = r.t.count;
	assert_int_equal(scale_to(before + 1, r.t.etag),
			 BACKEND_WORK_SUCCEEDED);
	r = do_read();
	assert_int_equal(r.t.count, before + 1);
	assert_int_equal(scale_to(before, r.t.etag), BACKEND_WORK_SUCCEEDED);
	r = do_read();
	assert_int_equal(r.t.count, before);
}

int main(void)
{
	const char *live = getenv("MDSCALE_OCI_LIVE");
	const char *profile = getenv("OCI_CLI_PROFILE");
	char *path = oci_config_default_path(), diag[512];
	struct backend_oci_env env = { 0 };
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(live_read),
		cmocka_unit_test(live_scale_out_and_back),
	};
	int rc;

	L.ocid = getenv("MDSCALE_OCI_DEPLOYMENT");
	if (!live || strcmp(live, "1") != 0 || access(path, R_OK) != 0 ||
	    !L.ocid) {
		printf("SKIP: the live OCI test needs MDSCALE_OCI_LIVE=1, a "
		       "readable OCI config (%s) and MDSCALE_OCI_DEPLOYMENT\n",
		       path);
		free(path);
		return SKIP;
	}
	free(path);
	if (oci_signer_from_config(NULL, profile, &L.signer, diag,
				   sizeof(diag)) != 0) {
		fprintf(stderr, "%s\n", diag);
		return 1;
	}
	httpc_global_init();
	uv_loop_init(&L.loop);
	httpc_new(&L.loop, &L.http);
	L.client = oci_client_new(&L.loop, L.http, L.signer, NULL);
	env.loop = &L.loop;
	env.client = L.client;
	env.region = oci_signer_region(L.signer);
	if (backend_oci_new(&env, &L.b, diag, sizeof(diag)) != 0) {
		fprintf(stderr, "%s\n", diag);
		return 1;
	}
	rc = cmocka_run_group_tests_name("oci backend against real OCI", tests,
					 NULL, NULL);
	L.b->ops->close(L.b, NULL, NULL);
	oci_client_free(L.client);
	httpc_close(L.http);
	uv_run(&L.loop, UV_RUN_DEFAULT);
	uv_loop_close(&L.loop);
	oci_signer_free(L.signer);
	httpc_global_cleanup();
	return rc;
}
