/*
 * test_oci_client.c - the OCI client against a real HTTP server on
 * 127.0.0.1 (the daemon's own http_server) that answers from a script:
 * signatures re-computed on the server's side, retries on 500 and 429
 * (with and without retry-after), no retry on 409 and 412, response headers
 * handed back, cancellation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "http/http_server.h"
#include "http/httpc.h"
#include "oci/client.h"
#include "oci/signer.h"
#include "util/err.h"
#include "util/ids.h"

#include "oci_test_key.h"


#define MAX_STEPS 8

/* One scripted answer. */
struct step {
	int status;
	const char *headers; /* "Name: v\r\n" lines or NULL */
	const char *body;
};

struct fixture {
	uv_loop_t loop;
	struct http_server *srv;
	struct httpc *http;
	struct oci_signer *signer;
	struct oci_client *client;
	char base[64];
	struct step steps[MAX_STEPS];
	int nsteps;
	int served;
	int bad_signatures;
	uint64_t served_ns[MAX_STEPS];
	struct http_req *held; /* a request left unanswered */
	/* the done callback's view */
	int calls;
	int error;
	long status;
	int attempts;
	char body[256];
	char etag[64];
	char wr[64];
	char rid[40];
};

/* Re-signs what the server received for the dates around now and checks
 * one of them gives the Authorization it got. */
static int signature_ok(struct fixture *f, struct http_req *req)
{
	char host[64];
	char path[256];
	int64_t now = ids_now_ms() / 1000;

	snprintf(host, sizeof(host), "127.0.0.1:%d",
		 http_server_port(f->srv));
	snprintf(path, sizeof(path), "%s%s%s", req->path,
		 req->query[0] ? "?" : "", req->query);
	for (int64_t t = now - 2; t <= now; t++) {
		struct oci_sign_output out = { 0 };
		char date[32], diag[128];
		int same;
		struct oci_sign_input in = {
			.method = req->method, .path = path, .host = host,
			.date = date, .body = req->body,
			.body_len = req->body_len,
			.with_body = oci_sign_method_has_body(req->method),
		};

		oci_http_date(t, date);
		if (oci_sign(f->signer, &in, &out, diag, sizeof(diag)) != 0)
			return 0;
		same = req->authorization &&
		       strcmp(out.authorization, req->authorization) == 0;
		oci_sign_output_free(&out);
		if (same)
			return 1;
	}
	return 0;
}

static void handler(void *arg, struct http_req *req)
{
	struct fixture *f = arg;
	struct step *s;

	if (!signature_ok(f, req))
		f->bad_signatures++;
	if (f->served >= f->nsteps) {
		f->held = req;
		f->served++;
		return;
	}
	f->served_ns[f->served] = uv_hrtime();
	s = &f->steps[f->served++];
	http_respond(req, s->status, "application/json", s->body,
		     strlen(s->body), s->headers);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char diag[256];
	struct oci_client_opts o = { .backoff_base_ms = 20,
				     .backoff_max_ms = 2000,
				     .max_attempts = 3,
				     .timeout_ms = 5000 };

	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(http_server_start(&f->loop, "127.0.0.1", 0, 65536,
					   handler, f, &f->srv, diag,
					   sizeof(diag)),
			 0);
	snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d",
		 http_server_port(f->srv));
	assert_int_equal(httpc_new(&f->loop, &f->http), 0);
	assert_int_equal(oci_signer_from_pem("t/u/f", test_key, NULL,
					     &f->signer, diag, sizeof(diag)),
			 0);
	f->client = oci_client_new(&f->loop, f->http, f->signer, &o);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	oci_client_free(f->client);
	if (f->held)
		http_respond(f->held, 503, "text/plain", "", 0, NULL);
	httpc_close(f->http);
	http_server_close(f->srv, NULL, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	oci_signer_free(f->signer);
	free(f);
	return 0;
}

static void on_done(void *arg, const struct oci_response *res)
{
	struct fixture *f = arg;

	f->calls++;
	f->error = res->error;
	f->status = res->status;
	f->attempts = res->attempts;
	snprintf(f->body, sizeof(f->body), "%s", res->body);
	snprintf(f->etag, sizeof(f->etag), "%s", res->etag);
	snprintf(f->wr, sizeof(f->wr), "%s", res->opc_work_request_id);
	snprintf(f->rid, sizeof(f->rid), "%s", res->opc_request_id);
	uv_stop(&f->loop);
}

/* Runs the loop until the done callback ran (or 10 s passed). */
static void run_until_done(struct fixture *f)
{
	uint64_t start = uv_now(&f->loop);

	while (f->calls == 0 && uv_now(&f->loop) - start < 10000) {
		uv_run(&f->loop, UV_RUN_ONCE);
		uv_update_time(&f->loop);
	}
	assert_int_equal(f->calls, 1);
}

static void send_req(struct fixture *f, const char *method, const char *path,
		 const char *body, const char *if_match)
{
	char url[256];
	struct oci_request r = { .method = method, .url = url, .body = body,
				 .body_len = body ? strlen(body) : 0,
				 .if_match = if_match };

	snprintf(url, sizeof(url), "%s%s", f->base, path);
	assert_int_equal(oci_client_send(f->client, &r, on_done, f, NULL), 0);
	/* done never runs inside the call */
	assert_int_equal(f->calls, 0);
}

static void get_signed_with_headers(void **state)
{
	struct fixture *f = *state;

	f->steps[0] = (struct step){ 200, "etag: \"e1\"\r\n"
					  "opc-request-id: server-side\r\n",
				     "{\"id\":\"x\"}" };
	f->nsteps = 1;
	send_req(f, "GET", "/20190101/modelDeployments/x?a=b%20c", NULL, NULL);
	run_until_done(f);
	assert_int_equal(f->error, 0);
	assert_int_equal(f->status, 200);
	assert_int_equal(f->attempts, 1);
	assert_int_equal(f->bad_signatures, 0);
	assert_string_equal(f->body, "{\"id\":\"x\"}");
	assert_string_equal(f->etag, "\"e1\"");
	assert_int_equal(strlen(f->rid), 32);
}

static void put_signed_body_if_match(void **state)
{
	struct fixture *f = *state;

	f->steps[0] = (struct step){ 202, "opc-work-request-id: wr1\r\n",
				     "" };
	f->nsteps = 1;
	send_req(f, "PUT", "/20190101/modelDeployments/x", "{\"a\":1}", "\"e1\"");
	run_until_done(f);
	assert_int_equal(f->status, 202);
	assert_int_equal(f->bad_signatures, 0);
	assert_string_equal(f->wr, "wr1");
}

static void retries_500_then_success(void **state)
{
	struct fixture *f = *state;

	f->steps[0] = (struct step){ 500, NULL, "{\"code\":\"Internal\"}" };
	f->steps[1] = (struct step){ 200, NULL, "ok" };
	f->nsteps = 2;
	send_req(f, "GET", "/x", NULL, NULL);
	run_until_done(f);
	assert_int_equal(f->status, 200);
	assert_int_equal(f->attempts, 2);
	assert_int_equal(f->served, 2);
	assert_int_equal(f->bad_signatures, 0);
}

static void retry_after_honoured(void **state)
{
	struct fixture *f = *state;
	uint64_t waited_ms;

	f->steps[0] = (struct step){ 429, "retry-after: 1\r\n",
				     "{\"code\":\"TooManyRequests\"}" };
	f->steps[1] = (struct step){ 200, NULL, "ok" };
	f->nsteps = 2;
	send_req(f, "GET", "/x", NULL, NULL);
	run_until_done(f);
	assert_int_equal(f->status, 200);
	waited_ms = (f->served_ns[1] - f->served_ns[0]) / 1000000;
	/* the base backoff is 20 ms: only retry-after explains a second */
	assert_true(waited_ms >= 950);
}

static void gives_up_after_max_attempts(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < 3; i++)
		f->steps[i] = (struct step){ 503, NULL, "busy" };
	f->nsteps = 3;
	send_req(f, "GET", "/x", NULL, NULL);
	run_until_done(f);
	assert_int_equal(f->error, 0);
	assert_int_equal(f->status, 503);
	assert_int_equal(f->attempts, 3);
	assert_int_equal(f->served, 3);
}

static void no_retry_on_409_412(void **state)
{
	struct fixture *f = *state;

	f->steps[0] = (struct step){ 409, NULL, "{\"code\":\"Conflict\"}" };
	f->steps[1] = (struct step){ 412, NULL, "{\"code\":\"NoEtagMatch\"}" };
	f->nsteps = 2;
	send_req(f, "PUT", "/x", "{}", "\"old\"");
	run_until_done(f);
	assert_int_equal(f->status, 409);
	assert_int_equal(f->attempts, 1);
	f->calls = 0;
	send_req(f, "PUT", "/x", "{}", "\"old\"");
	run_until_done(f);
	assert_int_equal(f->status, 412);
	assert_int_equal(f->served, 2);
}

static void cancel_in_flight(void **state)
{
	struct fixture *f = *state;
	struct oci_call *call = NULL;
	char url[128];
	struct oci_request r = { .method = "GET", .url = url };

	f->nsteps = 0; /* the server holds the request */
	snprintf(url, sizeof(url), "%s/hold", f->base);
	assert_int_equal(oci_client_send(f->client, &r, on_done, f, &call), 0);
	while (f->served == 0)
		uv_run(&f->loop, UV_RUN_ONCE);
	oci_client_cancel(f->client, call);
	assert_int_equal(f->calls, 0);
	run_until_done(f);
	assert_int_equal(f->error, MDS_E_UNAVAIL);
}

static void bad_url_refused(void **state)
{
	struct fixture *f = *state;
	struct oci_request r = { .method = "GET", .url = "not-a-url" };

	assert_int_equal(oci_client_send(f->client, &r, on_done, f, NULL),
			 MDS_E_INVAL);
	r.url = "https://host-without-path";
	assert_int_equal(oci_client_send(f->client, &r, on_done, f, NULL),
			 MDS_E_INVAL);
}

static void backoff_and_endpoints(void **state)
{
	char *e;
	char date[32];

	(void)state;
	/* retry-after wins, capped */
	assert_int_equal(oci_backoff_ms(2, 3000, 1000, 30000, 0), 3000);
	assert_int_equal(oci_backoff_ms(2, 90000, 1000, 30000, 0), 30000);
	/* full jitter between half and all of base * 2^(n-2) */
	assert_int_equal(oci_backoff_ms(2, -1, 1000, 30000, 0), 500);
	assert_int_equal(oci_backoff_ms(2, -1, 1000, 30000, UINT32_MAX),
			 1000);
	assert_int_equal(oci_backoff_ms(4, -1, 1000, 30000, UINT32_MAX),
			 4000);
	assert_int_equal(oci_backoff_ms(30, -1, 1000, 30000, UINT32_MAX),
			 30000);
	assert_true(oci_retryable(0, 429));
	assert_true(oci_retryable(0, 503));
	assert_false(oci_retryable(0, 501));
	assert_false(oci_retryable(0, 409));
	assert_false(oci_retryable(0, 412));
	assert_true(oci_retryable(MDS_E_UNAVAIL, 0));
	assert_false(oci_retryable(MDS_E_INVAL, 0));
	e = oci_endpoint("datascience", "us-ashburn-1", NULL);
	assert_string_equal(e,
			    "https://datascience.us-ashburn-1.oci.oraclecloud.com");
	free(e);
	e = oci_endpoint("telemetry", "eu-frankfurt-1", NULL);
	assert_string_equal(e, "https://telemetry.eu-frankfurt-1.oraclecloud.com");
	free(e);
	e = oci_endpoint("telemetry", "eu-frankfurt-1", "https://127.0.0.1:9/");
	assert_string_equal(e, "https://127.0.0.1:9");
	free(e);
	oci_http_date(1388957500, date);
	assert_string_equal(date, "Sun, 05 Jan 2014 21:31:40 GMT");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(get_signed_with_headers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(put_signed_body_if_match,
						setup, teardown),
		cmocka_unit_test_setup_teardown(retries_500_then_success,
						setup, teardown),
		cmocka_unit_test_setup_teardown(retry_after_honoured, setup,
						teardown),
		cmocka_unit_test_setup_teardown(gives_up_after_max_attempts,
						setup, teardown),
		cmocka_unit_test_setup_teardown(no_retry_on_409_412, setup,
						teardown),
		cmocka_unit_test_setup_teardown(cancel_in_flight, setup,
						teardown),
		cmocka_unit_test_setup_teardown(bad_url_refused, setup,
						teardown),
		cmocka_unit_test(backoff_and_endpoints),
	};
	int rc;

	httpc_global_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	httpc_global_cleanup();
	return rc;
}
