/*
 * test_oci_principal.c - resource principal and instance principal
 * signers.
 *
 * Resource principals: the OCI_RESOURCE_PRINCIPAL_* variables, inline and
 * as files. Instance principals: the daemon's own HTTP server on
 * 127.0.0.1 plays the instance metadata service and the federation
 * endpoint (both base URLs are options); it checks the IMDSv2 header, the
 * federation request's keyId, signed headers, signature and body, and
 * answers a token. The certificate is made with the openssl CLI.
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

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <uv.h>

#include "http/http_server.h"
#include "http/httpc.h"
#include "oci/client.h"
#include "oci/principal.h"
#include "oci/signer.h"
#include "util/err.h"
#include "util/file.h"
#include "util/ids.h"

#include "oci_test_key.h"


/* JWTs (unsigned test tokens): res_tenant rptenancy, exp 2100-01-01 and
 * exp 1970; tenant iptenancy, exp 2100-01-01. */
#define RPST_LIVE                                                             \
	"eyJhbGciOiAiUlMyNTYiLCAidHlwIjogIkpXVCJ9.eyJyZXNfdGVuYW50IjogIm9jaWQx" \
	"LnRlbmFuY3kub2MxLi5ycHRlbmFuY3kiLCAiZXhwIjogNDEwMjQ0NDgwMH0.c2ln"
#define RPST_EXPIRED                                                          \
	"eyJhbGciOiAiUlMyNTYiLCAidHlwIjogIkpXVCJ9.eyJyZXNfdGVuYW50IjogIm9jaWQx" \
	"LnRlbmFuY3kub2MxLi5ycHRlbmFuY3kiLCAiZXhwIjogMTAwMH0.c2ln"
#define IP_TOKEN                                                              \
	"eyJhbGciOiAiUlMyNTYiLCAidHlwIjogIkpXVCJ9.eyJ0ZW5hbnQiOiAib2NpZDEudGVu" \
	"YW5jeS5vYzEuLmlwdGVuYW5jeSIsICJleHAiOiA0MTAyNDQ0ODAwfQ.c2ln"
#define IP_TENANCY "ocid1.tenancy.oc1..iptenancy"

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
}

static void clear_env(void)
{
	unsetenv("OCI_RESOURCE_PRINCIPAL_VERSION");
	unsetenv("OCI_RESOURCE_PRINCIPAL_RPST");
	unsetenv("OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM");
	unsetenv("OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM_PASSPHRASE");
	unsetenv("OCI_RESOURCE_PRINCIPAL_REGION");
}

static void set_rp_env(const char *rpst, const char *pem)
{
	clear_env();
	setenv("OCI_RESOURCE_PRINCIPAL_VERSION", "2.2", 1);
	setenv("OCI_RESOURCE_PRINCIPAL_RPST", rpst, 1);
	setenv("OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM", pem, 1);
	setenv("OCI_RESOURCE_PRINCIPAL_REGION", "eu-frankfurt-1", 1);
}

/* Signs one GET with s; returns the Authorization (caller frees). */
static char *sign_get(struct oci_signer *s)
{
	struct oci_sign_input in = { .method = "GET", .path = "/x",
				     .host = "h", .date = "d" };
	struct oci_sign_output out;
	char diag[256];

	assert_int_equal(oci_sign(s, &in, &out, diag, sizeof(diag)), 0);
	return out.authorization;
}

static void jwt_claims(void **state)
{
	char tenancy[128];
	long long exp;

	(void)state;
	assert_int_equal(oci_jwt_claims(RPST_LIVE, tenancy, sizeof(tenancy),
					&exp),
			 0);
	assert_string_equal(tenancy, "ocid1.tenancy.oc1..rptenancy");
	assert_int_equal(exp, 4102444800LL);
	assert_int_equal(oci_jwt_claims(IP_TOKEN, tenancy, sizeof(tenancy),
					&exp),
			 0);
	assert_string_equal(tenancy, IP_TENANCY);
	assert_int_equal(oci_jwt_claims("nodots", tenancy, sizeof(tenancy),
					&exp),
			 MDS_E_PARSE);
	assert_int_equal(oci_jwt_claims("a.!!!.c", tenancy, sizeof(tenancy),
					&exp),
			 MDS_E_PARSE);
}

static void resource_principal_inline(void **state)
{
	struct oci_signer *s = NULL, *ref = NULL;
	char diag[256], *a, *b;

	(void)state;
	set_rp_env(RPST_LIVE, test_key);
	assert_int_equal(oci_signer_resource_principal(&s, diag, sizeof(diag)),
			 0);
	assert_string_equal(oci_signer_kind(s), "resource_principal");
	assert_string_equal(oci_signer_key_id(s), "ST$" RPST_LIVE);
	assert_string_equal(oci_signer_region(s), "eu-frankfurt-1");
	assert_string_equal(oci_signer_tenancy(s),
			    "ocid1.tenancy.oc1..rptenancy");
	/* The same signature as the session key with keyId ST$token. */
	assert_int_equal(oci_signer_from_pem("ST$" RPST_LIVE, test_key, NULL,
					     &ref, diag, sizeof(diag)),
			 0);
	a = sign_get(s);
	b = sign_get(ref);
	assert_string_equal(a, b);
	free(a);
	free(b);
	oci_signer_free(s);
	oci_signer_free(ref);
	clear_env();
}

static void resource_principal_files_renewed(void **state)
{
	char dir[] = "/tmp/mds-rp-XXXXXX", tok[64], pem[64], diag[256];
	struct oci_signer *s = NULL;
	char *a;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(tok, sizeof(tok), "%s/rpst", dir);
	snprintf(pem, sizeof(pem), "%s/key.pem", dir);
	write_file(tok, RPST_EXPIRED "\n");
	write_file(pem, test_key);
	set_rp_env(tok, pem);
	assert_int_equal(oci_signer_resource_principal(&s, diag, sizeof(diag)),
			 0);
	assert_string_equal(oci_signer_key_id(s), "ST$" RPST_EXPIRED);
	/* The platform renewed the file: the next signature uses it. */
	write_file(tok, RPST_LIVE "\n");
	a = sign_get(s);
	assert_non_null(strstr(a, "keyId=\"ST$" RPST_LIVE "\""));
	free(a);
	oci_signer_free(s);
	unlink(tok);
	unlink(pem);
	rmdir(dir);
	clear_env();
}

static void resource_principal_bad_input(void **state)
{
	struct oci_signer *s = NULL;
	char diag[256];

	(void)state;
	clear_env();
	assert_int_equal(oci_signer_resource_principal(&s, diag, sizeof(diag)),
			 MDS_E_INVAL);
	assert_non_null(strstr(diag, "OCI_RESOURCE_PRINCIPAL_VERSION"));
	set_rp_env(RPST_LIVE, test_key);
	setenv("OCI_RESOURCE_PRINCIPAL_VERSION", "1.1", 1);
	assert_int_equal(oci_signer_resource_principal(&s, diag, sizeof(diag)),
			 MDS_E_INVAL);
	assert_non_null(strstr(diag, "2.2"));
	set_rp_env(RPST_LIVE, test_key);
	unsetenv("OCI_RESOURCE_PRINCIPAL_REGION");
	assert_int_equal(oci_signer_resource_principal(&s, diag, sizeof(diag)),
			 MDS_E_INVAL);
	assert_non_null(strstr(diag, "OCI_RESOURCE_PRINCIPAL_REGION"));
	set_rp_env(RPST_LIVE, test_key);
	unsetenv("OCI_RESOURCE_PRINCIPAL_RPST");
	assert_int_equal(oci_signer_resource_principal(&s, diag, sizeof(diag)),
			 MDS_E_INVAL);
	assert_non_null(strstr(diag, "OCI_RESOURCE_PRINCIPAL_RPST"));
	set_rp_env("not-a-token", test_key);
	assert_int_equal(oci_signer_resource_principal(&s, diag, sizeof(diag)),
			 MDS_E_PARSE);
	set_rp_env(RPST_LIVE, "/nonexistent/key.pem");
	assert_int_equal(oci_signer_resource_principal(&s, diag, sizeof(diag)),
			 MDS_E_INVAL);
	assert_non_null(strstr(diag, "/nonexistent/key.pem"));
	set_rp_env(RPST_LIVE, "garbage");
	assert_int_equal(oci_signer_resource_principal(&s, diag, sizeof(diag)),
			 MDS_E_PARSE);
	assert_null(s);
	clear_env();
}

/* ---- instance principals ---- */

struct ipfix {
	uv_loop_t loop;
	struct http_server *srv;
	struct httpc *http;
	char dir[32];
	char *cert;
	char fingerprint[128]; /* SHA-256, "AA:BB:..." */
	int fail_metadata;     /* answer 404 for cert.pem */
	int metadata_calls;
	int bearer_missing;
	int federation_calls;
	int federation_ok;     /* every check passed */
	char fed_problem[256];
	char session_pub[1024]; /* base64 DER from the body */
	int ready_calls;
	int ready_rc;
	char ready_diag[256];
};

static int federation_signature_ok(struct ipfix *f, struct http_req *req,
				   const char *key_id)
{
	struct oci_signer *leaf;
	char diag[256];
	int64_t now = ids_now_ms() / 1000;
	int ok = 0;

	assert_int_equal(oci_signer_from_pem(key_id, test_key, NULL, &leaf,
					     diag, sizeof(diag)),
			 0);
	for (int64_t t = now - 2; t <= now && !ok; t++) {
		char date[32];
		struct oci_sign_output out;
		struct oci_sign_input in = {
			.method = "POST", .path = "/v1/x509", .date = date,
			.no_host = 1, .body = req->body,
			.body_len = req->body_len, .with_body = 1,
		};

		oci_http_date(t, date);
		assert_int_equal(oci_sign(leaf, &in, &out, diag, sizeof(diag)),
				 0);
		ok = strcmp(out.authorization, req->authorization) == 0;
		oci_sign_output_free(&out);
	}
	oci_signer_free(leaf);
	return ok;
}

static void check_federation(struct ipfix *f, struct http_req *req)
{
	char key_id[256];
	json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
	const char *prefix =
		"Signature version=\"1\",headers=\"date (request-target) "
		"content-length content-type x-content-sha256\",keyId=\"";

	snprintf(key_id, sizeof(key_id), IP_TENANCY "/fed-x509-sha256/%s",
		 f->fingerprint);
	f->federation_calls++;
	if (!req->authorization ||
	    strncmp(req->authorization, prefix, strlen(prefix)) != 0 ||
	    strncmp(req->authorization + strlen(prefix), key_id,
		    strlen(key_id)) != 0)
		snprintf(f->fed_problem, sizeof(f->fed_problem),
			 "authorization %s", req->authorization);
	else if (!federation_signature_ok(f, req, key_id))
		snprintf(f->fed_problem, sizeof(f->fed_problem),
			 "signature does not verify");
	else if (!json_is_string(json_object_get(body, "certificate")) ||
		 !json_is_string(json_object_get(body, "publicKey")) ||
		 json_array_size(json_object_get(body,
						 "intermediateCertificates")) !=
			 1 ||
		 strcmp(json_string_value(json_object_get(body, "purpose")),
			"DEFAULT") != 0 ||
		 strcmp(json_string_value(json_object_get(
				body, "fingerprintAlgorithm")),
			"SHA256") != 0)
		snprintf(f->fed_problem, sizeof(f->fed_problem), "body %.*s",
			 (int)req->body_len, req->body);
	else
		f->federation_ok = 1;
	if (f->federation_ok)
		snprintf(f->session_pub, sizeof(f->session_pub), "%s",
			 json_string_value(json_object_get(body, "publicKey")));
	json_decref(body);
}

static void ip_handler(void *arg, struct http_req *req)
{
	struct ipfix *f = arg;
	const char *token = "{\"token\":\"" IP_TOKEN "\"}";

	if (strcmp(req->path, "/v1/x509") == 0 &&
	    strcmp(req->method, "POST") == 0) {
		check_federation(f, req);
		http_respond(req, 200, "application/json", token,
			     strlen(token), NULL);
		return;
	}
	f->metadata_calls++;
	if (!req->authorization ||
	    strcmp(req->authorization, "Bearer Oracle") != 0)
		f->bearer_missing++;
	if (strcmp(req->path, "/opc/v2/identity/cert.pem") == 0 &&
	    !f->fail_metadata)
		http_respond(req, 200, "text/plain", f->cert, strlen(f->cert),
			     NULL);
	else if (strcmp(req->path, "/opc/v2/identity/intermediate.pem") == 0)
		http_respond(req, 200, "text/plain", f->cert, strlen(f->cert),
			     NULL);
	else if (strcmp(req->path, "/opc/v2/identity/key.pem") == 0)
		http_respond(req, 200, "text/plain", test_key,
			     strlen(test_key), NULL);
	else if (strcmp(req->path, "/opc/v2/instance/canonicalRegionName") ==
		 0)
		http_respond(req, 200, "text/plain", "us-ashburn-1\n", 13,
			     NULL);
	else
		http_respond(req, 404, "text/plain", "no", 2, NULL);
}

static int ip_setup(void **state)
{
	struct ipfix *f = calloc(1, sizeof(*f));
	char cmd[512], path[64], diag[256], *fp;
	FILE *p;

	snprintf(f->dir, sizeof(f->dir), "/tmp/mds-ip-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/key.pem", f->dir);
	write_file(path, test_key);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -new -key %s/key.pem -days 2 -subj "
		 "'/CN=instance/OU=opc-instance:ocid1.instance.oc1.iad.x/"
		 "OU=opc-tenant:" IP_TENANCY "' -out %s/cert.pem 2>/dev/null",
		 f->dir, f->dir);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/cert.pem", f->dir);
	assert_int_equal(file_read_all(path, 65536, &f->cert, NULL, diag,
				       sizeof(diag)),
			 0);
	snprintf(cmd, sizeof(cmd),
		 "openssl x509 -noout -fingerprint -sha256 -in %s", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(cmd, sizeof(cmd), p));
	pclose(p);
	fp = strchr(cmd, '=');
	assert_non_null(fp);
	snprintf(f->fingerprint, sizeof(f->fingerprint), "%s", fp + 1);
	f->fingerprint[strcspn(f->fingerprint, "\n")] = '\0';
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(http_server_start(&f->loop, "127.0.0.1", 0, 65536,
					   ip_handler, f, &f->srv, diag,
					   sizeof(diag)),
			 0);
	assert_int_equal(httpc_new(&f->loop, &f->http), 0);
	*state = f;
	return 0;
}

static int ip_teardown(void **state)
{
	struct ipfix *f = *state;
	char cmd[128];

	httpc_close(f->http);
	http_server_close(f->srv, NULL, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f->cert);
	free(f);
	return 0;
}

static void on_ready(void *arg, int rc, const char *diag)
{
	struct ipfix *f = arg;

	f->ready_calls++;
	f->ready_rc = rc;
	snprintf(f->ready_diag, sizeof(f->ready_diag), "%s", diag);
}

static struct oci_signer *start_ip(struct ipfix *f)
{
	char md[64], fed[64];
	struct oci_signer *s = NULL;
	struct oci_instance_principal_opts o = { .metadata_url = md,
						 .federation_url = fed };
	uint64_t start;

	snprintf(md, sizeof(md), "http://127.0.0.1:%d/opc/v2",
		 http_server_port(f->srv));
	snprintf(fed, sizeof(fed), "http://127.0.0.1:%d",
		 http_server_port(f->srv));
	assert_int_equal(oci_signer_instance_principal(&f->loop, f->http, &o,
						       on_ready, f, &s),
			 0);
	assert_int_equal(f->ready_calls, 0);
	start = uv_now(&f->loop);
	while (f->ready_calls == 0 && uv_now(&f->loop) - start < 10000)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(f->ready_calls, 1);
	return s;
}

/* Verifies the signature in an Authorization value over the signing
 * string of a GET /x with the session public key (base64 DER). */
static int session_signature_ok(const char *pub_b64, const char *auth)
{
	unsigned char der[1024], sig[1024];
	const unsigned char *p = der;
	const char *sig_b64 = strstr(auth, "signature=\"");
	const char *str = "date: d\n(request-target): get /x\nhost: h";
	char sigtxt[1024];
	int derlen, siglen, ok;
	EVP_PKEY *pub;
	EVP_MD_CTX *ctx;

	derlen = EVP_DecodeBlock(der, (const unsigned char *)pub_b64,
				 (int)strlen(pub_b64));
	pub = d2i_PUBKEY(NULL, &p, derlen);
	if (!pub || !sig_b64)
		return 0;
	snprintf(sigtxt, sizeof(sigtxt), "%s", sig_b64 + 11);
	sigtxt[strcspn(sigtxt, "\"")] = '\0';
	siglen = EVP_DecodeBlock(sig, (unsigned char *)sigtxt,
				 (int)strlen(sigtxt));
	while (siglen > 0 && sigtxt[0] && strlen(sigtxt) > 0 &&
	       sigtxt[strlen(sigtxt) - 1] == '=') {
		sigtxt[strlen(sigtxt) - 1] = '\0';
		siglen--;
	}
	ctx = EVP_MD_CTX_new();
	ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1 &&
	     EVP_DigestVerify(ctx, sig, (size_t)siglen,
			      (const unsigned char *)str, strlen(str)) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pub);
	return ok;
}

static void instance_principal_token(void **state)
{
	struct ipfix *f = *state;
	struct oci_signer *s = start_ip(f);
	char *auth;

	assert_int_equal(f->ready_rc, 0);
	assert_int_equal(f->bearer_missing, 0);
	assert_int_equal(f->metadata_calls, 4);
	assert_int_equal(f->federation_calls, 1);
	if (!f->federation_ok)
		fail_msg("federation request: %s", f->fed_problem);
	assert_string_equal(oci_signer_kind(s), "instance_principal");
	assert_string_equal(oci_signer_key_id(s), "ST$" IP_TOKEN);
	assert_string_equal(oci_signer_region(s), "us-ashburn-1");
	assert_string_equal(oci_signer_tenancy(s), IP_TENANCY);
	/* Requests are signed with the session key the token was asked
	 * for, not with the instance key. */
	auth = sign_get(s);
	assert_true(session_signature_ok(f->session_pub, auth));
	free(auth);
	oci_signer_free(s);
}

static void instance_principal_no_metadata(void **state)
{
	struct ipfix *f = *state;
	struct oci_signer *s;
	struct oci_sign_input in = { .method = "GET", .path = "/x",
				     .host = "h", .date = "d" };
	struct oci_sign_output out;
	char diag[256];

	f->fail_metadata = 1;
	s = start_ip(f);
	assert_int_not_equal(f->ready_rc, 0);
	assert_non_null(strstr(f->ready_diag, "cert.pem"));
	assert_int_equal(f->federation_calls, 0);
	assert_int_equal(oci_sign(s, &in, &out, diag, sizeof(diag)),
			 MDS_E_UNAUTH);
	assert_non_null(strstr(diag, "no key yet"));
	oci_signer_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(jwt_claims),
		cmocka_unit_test(resource_principal_inline),
		cmocka_unit_test(resource_principal_files_renewed),
		cmocka_unit_test(resource_principal_bad_input),
		cmocka_unit_test_setup_teardown(instance_principal_token,
						ip_setup, ip_teardown),
		cmocka_unit_test_setup_teardown(instance_principal_no_metadata,
						ip_setup, ip_teardown),
	};
	int rc;

	httpc_global_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	httpc_global_cleanup();
	return rc;
}
