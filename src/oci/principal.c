/*
 * principal.c - resource and instance principal signers; see principal.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "http/httpc.h"
#include "oci/client.h"
#include "oci/principal.h"
#include "oci/signer_impl.h"
#include "util/base64.h"
#include "util/err.h"
#include "util/file.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/xalloc.h"

/* Tokens, keys and certificates are a few KB. */
#define DOC_MAX (64 * 1024)
#define DEFAULT_METADATA "http://169.254.169.254/opc/v2"
#define DEFAULT_TIMEOUT_MS 10000
/* Renew this long before the token expires, and retry this soon after a
 * failed renewal. */
#define RENEW_BEFORE_S 300
#define RETRY_MS 60000
/* and at least this often, whatever the token says */
#define RENEW_MAX_S 3600
#define SESSION_KEY_BITS 2048

/* ---- JWT claims ---- */

int oci_jwt_claims(const char *jwt, char *tenancy, size_t tenancysz,
		   long long *exp)
{
	const char *dot1 = strchr(jwt, '.'), *dot2;
	static const char *const claims[] = { "res_tenant", "tenant",
					      "opc-tenant" };
	char *payload = NULL;
	size_t plen;
	json_t *root, *v;

	*exp = 0;
	if (tenancysz)
		tenancy[0] = '\0';
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (!dot2 || dot2 - dot1 - 1 > DOC_MAX)
		return MDS_E_PARSE;
	if (base64_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload,
			  &plen) != 0)
		return MDS_E_PARSE;
	root = json_loadb(payload, plen, 0, NULL);
	free(payload);
	if (!json_is_object(root)) {
		json_decref(root);
		return MDS_E_PARSE;
	}
	v = json_object_get(root, "exp");
	if (json_is_integer(v))
		*exp = json_integer_value(v);
	for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
		v = json_object_get(root, claims[i]);
		if (json_is_string(v)) {
			snprintf(tenancy, tenancysz, "%s", json_string_value(v));
			break;
		}
	}
	json_decref(root);
	return 0;
}

/* ---- resource principals ---- */

struct rp {
	char *rpst_path;    /* NULL: the token came inline */
	long long exp;
};

/* The value of env var name, or the content of the file it names when it
 * starts with '/'. Returns a new string or NULL (diag says why). */
static char *value_or_file(const char *name, int required, char *diag,
			   size_t diagsz)
{
	const char *v = getenv(name);
	char *out = NULL, sub[256];
	size_t n;

	if (!v || !*v) {
		if (required)
			mds_diag(diag, diagsz, "%s is not set", name);
		return NULL;
	}
	if (v[0] != '/')
		return xstrdup(v);
	if (file_read_all(v, DOC_MAX, &out, NULL, sub, sizeof(sub)) != 0) {
		mds_diag(diag, diagsz, "%s: %s", name, sub);
		return NULL;
	}
	n = strlen(out);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	return out;
}

static void rp_destroy(void *impl)
{
	struct rp *rp = impl;

	free(rp->rpst_path);
	free(rp);
}

/* A token read from a file is read again once it has expired: the
 * platform renews the file. */
static void rp_before_sign(struct oci_signer *s)
{
	struct rp *rp = s->impl;
	char *token = NULL, *key_id, tenancy[256];
	long long exp;

	if (!rp->rpst_path || rp->exp == 0 ||
	    ids_now_ms() / 1000 < rp->exp - 60)
		return;
	if (file_read_all(rp->rpst_path, DOC_MAX, &token, NULL, NULL, 0) != 0)
		return;
	token[strcspn(token, "\r\n")] = '\0';
	if (oci_jwt_claims(token, tenancy, sizeof(tenancy), &exp) == 0) {
		EVP_PKEY *pkey = s->pkey;

		/* same key, new keyId */
		EVP_PKEY_up_ref(pkey);
		key_id = xasprintf("ST$%s", token);
		oci_signer_set_key(s, key_id, pkey);
		free(key_id);
		rp->exp = exp;
	}
	free(token);
}

static const struct oci_signer_ops rp_ops = {
	.kind = "resource_principal",
	.destroy = rp_destroy,
	.before_sign = rp_before_sign,
};

int oci_signer_resource_principal(struct oci_signer **out, char *diag,
				  size_t diagsz)
{
	const char *version = getenv("OCI_RESOURCE_PRINCIPAL_VERSION");
	const char *region = getenv("OCI_RESOURCE_PRINCIPAL_REGION");
	const char *rpst_env = getenv("OCI_RESOURCE_PRINCIPAL_RPST");
	char *token = NULL, *pem = NULL, *pass = NULL, *key_id = NULL;
	char tenancy[256], sub[256];
	EVP_PKEY *pkey = NULL;
	struct rp *rp;
	long long exp;
	int rc = MDS_E_INVAL;

	*out = NULL;
	if (!version || strcmp(version, "2.2") != 0) {
		mds_diag(diag, diagsz, "OCI_RESOURCE_PRINCIPAL_VERSION is %s%s%s;"
			 " mdscale reads version 2.2",
			 version ? "\"" : "not set", version ? version : "",
			 version ? "\"" : "");
		goto out;
	}
	if (!region || !*region) {
		mds_diag(diag, diagsz, "OCI_RESOURCE_PRINCIPAL_REGION is not "
			 "set");
		goto out;
	}
	token = value_or_file("OCI_RESOURCE_PRINCIPAL_RPST", 1, diag, diagsz);
	pem = token ? value_or_file("OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM", 1,
				    diag, diagsz)
		    : NULL;
	if (!token || !pem)
		goto out;
	pass = value_or_file("OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM_PASSPHRASE",
			     0, NULL, 0);
	if (oci_jwt_claims(token, tenancy, sizeof(tenancy), &exp) != 0) {
		mds_diag(diag, diagsz, "OCI_RESOURCE_PRINCIPAL_RPST is not a "
			 "token (a JWT)");
		rc = MDS_E_PARSE;
		goto out;
	}
	rc = oci_pem_private_key(pem, pass, &pkey, sub, sizeof(sub));
	if (rc != 0) {
		mds_diag(diag, diagsz, "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM: %s",
			 sub);
		goto out;
	}
	rp = xcalloc(1, sizeof(*rp));
	rp->exp = exp;
	if (rpst_env && rpst_env[0] == '/')
		rp->rpst_path = xstrdup(rpst_env);
	*out = oci_signer_new(&rp_ops, rp);
	key_id = xasprintf("ST$%s", token);
	oci_signer_set_key(*out, key_id, pkey);
	oci_signer_set_region(*out, region);
	oci_signer_set_tenancy(*out, tenancy);
	rc = 0;
out:
	free(key_id);
	free(token);
	if (pem) {
		memset(pem, 0, strlen(pem));
		free(pem);
	}
	if (pass) {
		memset(pass, 0, strlen(pass));
		free(pass);
	}
	return rc;
}

/* ---- instance principals ---- */

enum ip_step { IP_CERT, IP_INTERMEDIATE, IP_KEY, IP_REGION, IP_FEDERATE };

static const char *const ip_paths[] = {
	[IP_CERT] = "/identity/cert.pem",
	[IP_INTERMEDIATE] = "/identity/intermediate.pem",
	[IP_KEY] = "/identity/key.pem",
	[IP_REGION] = "/instance/canonicalRegionName",
};

struct ip {
	struct oci_signer *s;     /* NULL once the signer is freed */
	struct httpc *http;
	char *metadata_url;
	char *federation_url;     /* NULL: from the region */
	char *ca_file;
	uint32_t timeout_ms;
	uv_timer_t timer;
	int timer_open;
	struct httpc_req *req;
	enum ip_step step;
	char *doc[IP_REGION + 1]; /* what the metadata service answered */
	EVP_PKEY *session;        /* the key the pending token will be for */
	oci_principal_ready_fn *ready;
	void *ready_arg;
};

static void ip_clear_docs(struct ip *ip)
{
	for (size_t i = 0; i <= IP_REGION; i++) {
		if (ip->doc[i])
			memset(ip->doc[i], 0, strlen(ip->doc[i]));
		free(ip->doc[i]);
		ip->doc[i] = NULL;
	}
	EVP_PKEY_free(ip->session);
	ip->session = NULL;
}

static void ip_free_if_done(struct ip *ip)
{
	if (ip->s || ip->req || ip->timer_open)
		return;
	ip_clear_docs(ip);
	free(ip->metadata_url);
	free(ip->federation_url);
	free(ip->ca_file);
	free(ip);
}

static void ip_timer_closed(uv_handle_t *h)
{
	struct ip *ip = h->data;

	ip->timer_open = 0;
	ip_free_if_done(ip);
}

static void ip_destroy(void *impl)
{
	struct ip *ip = impl;

	ip->s = NULL;
	if (ip->req)
		httpc_cancel(ip->http, ip->req);
	uv_close((uv_handle_t *)&ip->timer, ip_timer_closed);
}

static const struct oci_signer_ops ip_ops = {
	.kind = "instance_principal",
	.destroy = ip_destroy,
};

static void ip_start(struct ip *ip);

static void ip_timer_cb(uv_timer_t *t)
{
	ip_start(t->data);
}

/* Ends a round: tells ready once and schedules the next round. */
static void ip_round_end(struct ip *ip, int rc, const char *diag,
			 uint64_t next_ms)
{
	oci_principal_ready_fn *ready = ip->ready;

	ip_clear_docs(ip);
	if (rc != 0)
		log_warn("oci", "instance principal: %s", diag);
	uv_timer_start(&ip->timer, ip_timer_cb, next_ms, 0);
	if (ready && (rc == 0 || !ip->s->key_id)) {
		ip->ready = NULL;
		ready(ip->ready_arg, rc, diag);
	}
}

/* The tenancy OCID in the certificate's subject ("opc-tenant:..." or
 * "opc-identity:..." in an OU or O entry). */
static int cert_tenancy(X509 *cert, char *out, size_t outsz)
{
	const X509_NAME *name = X509_get_subject_name(cert);
	static const char *const prefixes[] = { "opc-tenant:", "opc-identity:" };

	for (int i = 0; i < X509_NAME_entry_count(name); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
		const ASN1_STRING *d = X509_NAME_ENTRY_get_data(e);
		const char *v = (const char *)ASN1_STRING_get0_data(d);
		int len = ASN1_STRING_length(d);

		for (size_t p = 0; p < 2; p++) {
			size_t pl = strlen(prefixes[p]);

			if (len > (int)pl && strncmp(v, prefixes[p], pl) == 0) {
				snprintf(out, outsz, "%.*s", len - (int)pl,
					 v + pl);
				return 0;
			}
		}
	}
	return MDS_E_PARSE;
}

static X509 *pem_cert(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	ERR_clear_error();
	return x;
}

/* Base64 of a certificate's DER; a new string or NULL. */
static char *cert_b64(X509 *x)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	char *b64;

	if (n <= 0)
		return NULL;
	b64 = oci_base64(der, (size_t)n);
	OPENSSL_free(der);
	return b64;
}

/* "<tenancy>/fed-x509-sha256/AA:BB:..." for the certificate. */
static char *fed_key_id(X509 *cert, const char *tenancy)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char fp[3 * EVP_MAX_MD_SIZE + 1] = "";

	if (!X509_digest(cert, EVP_sha256(), md, &n))
		return NULL;
	for (unsigned i = 0; i < n; i++)
		snprintf(fp + 3 * i, 4, i + 1 < n ? "%02X:" : "%02X", md[i]);
	return xasprintf("%s/fed-x509-sha256/%s", tenancy, fp);
}

/* The body of the federation request; a new string or NULL. */
static char *fed_body(X509 *cert, X509 *inter, EVP_PKEY *session)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(session, &der);
	char *c = cert_b64(cert), *i = inter ? cert_b64(inter) : NULL;
	char *pub = n > 0 ? oci_base64(der, (size_t)n) : NULL, *s = NULL;
	json_t *doc;

	OPENSSL_free(der);
	if (c && pub) {
		doc = json_pack("{s:s,s:s,s:[],s:s,s:s}", "certificate", c,
				"publicKey", pub, "intermediateCertificates",
				"purpose", "DEFAULT", "fingerprintAlgorithm",
				"SHA256");
		if (i)
			json_array_append_new(
				json_object_get(doc, "intermediateCertificates"),
				json_string(i));
		s = json_dumps(doc, JSON_COMPACT);
		json_decref(doc);
	}
	free(c);
	free(i);
	free(pub);
	return s;
}

static const struct oci_signer_ops fed_ops = { .kind = "federation" };

/* Signs and sends POST /v1/x509. Returns 0 or an error with diag. */
static int ip_send_federation(struct ip *ip, const char *url, const char *path,
			      const char *key_id, EVP_PKEY *leaf,
			      const char *body, char *diag, size_t diagsz);

static void ip_http_done(void *arg, const struct httpc_result *res);

static int ip_federate(struct ip *ip, char *diag, size_t diagsz)
{
	X509 *cert = pem_cert(ip->doc[IP_CERT]);
	X509 *inter = pem_cert(ip->doc[IP_INTERMEDIATE]);
	EVP_PKEY *leaf = NULL;
	char tenancy[256], *key_id = NULL, *body = NULL, *base = NULL, *url;
	int rc = MDS_E_PARSE;

	if (!cert || cert_tenancy(cert, tenancy, sizeof(tenancy)) != 0) {
		mds_diag(diag, diagsz, "the instance certificate names no "
			 "tenancy (opc-tenant:)");
		goto out;
	}
	rc = oci_pem_private_key(ip->doc[IP_KEY], NULL, &leaf, diag, diagsz);
	if (rc != 0)
		goto out;
	EVP_PKEY_free(ip->session);
	ip->session = EVP_RSA_gen(SESSION_KEY_BITS);
	key_id = fed_key_id(cert, tenancy);
	body = ip->session && key_id ? fed_body(cert, inter, ip->session)
				     : NULL;
	if (!body) {
		mds_diag(diag, diagsz, "cannot make a session key");
		rc = MDS_E_INTERNAL;
		goto out;
	}
	base = ip->federation_url
		       ? xstrdup(ip->federation_url)
		       : xasprintf("https://auth.%s.oraclecloud.com",
				   ip->doc[IP_REGION]);
	url = xasprintf("%s/v1/x509", base);
	rc = ip_send_federation(ip, url, strstr(url + 8, "/"), key_id, leaf,
				body, diag, diagsz);
	free(url);
out:
	free(base);
	free(body);
	free(key_id);
	EVP_PKEY_free(leaf);
	X509_free(cert);
	X509_free(inter);
	return rc;
}

static int ip_send_federation(struct ip *ip, const char *url, const char *path,
			      const char *key_id, EVP_PKEY *leaf,
			      const char *body, char *diag, size_t diagsz)
{
	struct oci_signer *fed = oci_signer_new(&fed_ops, NULL);
	struct oci_sign_output so = { 0 };
	char date[32], h[3][128], *auth = NULL;
	const char *hdrs[5];
	struct oci_sign_input in;
	struct httpc_opts o;
	int rc;

	EVP_PKEY_up_ref(leaf);
	oci_signer_set_key(fed, key_id, leaf);
	oci_http_date(ids_now_ms() / 1000, date);
	in = (struct oci_sign_input){
		.method = "POST", .path = path, .date = date, .no_host = 1,
		.content_type = "application/json", .body = body,
		.body_len = strlen(body), .with_body = 1,
	};
	rc = oci_sign(fed, &in, &so, diag, diagsz);
	oci_signer_free(fed);
	if (rc != 0)
		return rc;
	snprintf(h[0], sizeof(h[0]), "date: %s", date);
	snprintf(h[1], sizeof(h[1]), "content-type: application/json");
	snprintf(h[2], sizeof(h[2]), "x-content-sha256: %s",
		 so.x_content_sha256);
	auth = xasprintf("authorization: %s", so.authorization);
	hdrs[0] = h[0];
	hdrs[1] = h[1];
	hdrs[2] = h[2];
	hdrs[3] = auth;
	hdrs[4] = NULL;
	o = (struct httpc_opts){ .method = "POST", .headers = hdrs,
				 .body = body, .body_len = strlen(body),
				 .timeout_ms = ip->timeout_ms,
				 .ca_file = ip->ca_file, .max_body = DOC_MAX };
	rc = httpc_request(ip->http, url, &o, ip_http_done, ip, &ip->req);
	if (rc != 0)
		mds_diag(diag, diagsz, "cannot send to %s", url);
	free(auth);
	oci_sign_output_free(&so);
	return rc;
}

/* The token came: the signer signs with the session key from now on. */
static void ip_take_token(struct ip *ip, const struct httpc_result *res)
{
	json_t *root = json_loadb(res->body, res->body_len, 0, NULL);
	const char *token = json_string_value(json_object_get(root, "token"));
	char tenancy[256], diag[256], *key_id;
	long long exp = 0, now = ids_now_ms() / 1000, next;

	if (!token || oci_jwt_claims(token, tenancy, sizeof(tenancy), &exp)) {
		json_decref(root);
		mds_diag(diag, sizeof(diag), "the federation endpoint "
			 "answered no token");
		ip_round_end(ip, MDS_E_PARSE, diag, RETRY_MS);
		return;
	}
	key_id = xasprintf("ST$%s", token);
	oci_signer_set_key(ip->s, key_id, ip->session);
	ip->session = NULL;
	free(key_id);
	oci_signer_set_region(ip->s, ip->doc[IP_REGION]);
	if (tenancy[0])
		oci_signer_set_tenancy(ip->s, tenancy);
	json_decref(root);
	next = exp > 0 ? exp - RENEW_BEFORE_S - now : 15 * 60;
	if (next < 60)
		next = 60;
	if (next > RENEW_MAX_S)
		next = RENEW_MAX_S;
	log_info("oci", "instance principal: session token for region %s, "
		 "renewed in %llds", oci_signer_region(ip->s), next);
	ip_round_end(ip, 0, "", (uint64_t)next * 1000);
}

static int ip_get(struct ip *ip)
{
	char *url = xasprintf("%s%s", ip->metadata_url, ip_paths[ip->step]);
	const char *hdrs[] = { "Authorization: Bearer Oracle", NULL };
	struct httpc_opts o = { .headers = hdrs, .timeout_ms = ip->timeout_ms,
				.max_body = DOC_MAX };
	int rc = httpc_request(ip->http, url, &o, ip_http_done, ip, &ip->req);

	free(url);
	return rc;
}

static void ip_http_done(void *arg, const struct httpc_result *res)
{
	struct ip *ip = arg;
	char diag[512];
	int rc;

	ip->req = NULL;
	if (!ip->s) {
		ip_free_if_done(ip);
		return;
	}
	if (res->error || res->status != 200) {
		mds_diag(diag, sizeof(diag), "%s: %s%ld",
			 ip->step == IP_FEDERATE ? "federation endpoint"
						 : ip_paths[ip->step],
			 res->error ? res->detail : "HTTP ",
			 res->error ? 0L : res->status);
		ip_round_end(ip, res->error ? res->error : MDS_E_UNAUTH, diag,
			     RETRY_MS);
		return;
	}
	if (ip->step == IP_FEDERATE) {
		ip_take_token(ip, res);
		return;
	}
	ip->doc[ip->step] = xstrndup(res->body, res->body_len);
	if (ip->step == IP_REGION)
		ip->doc[IP_REGION][strcspn(ip->doc[IP_REGION], " \r\n")] = '\0';
	ip->step++;
	rc = ip->step == IP_FEDERATE ? ip_federate(ip, diag, sizeof(diag))
				     : ip_get(ip);
	if (rc != 0) {
		if (ip->step != IP_FEDERATE)
			mds_diag(diag, sizeof(diag), "cannot reach the "
				 "instance metadata service");
		ip_round_end(ip, rc, diag, RETRY_MS);
	}
}

static void ip_start(struct ip *ip)
{
	ip_clear_docs(ip);
	ip->step = IP_CERT;
	if (ip_get(ip) != 0)
		ip_round_end(ip, MDS_E_UNAVAIL,
			     "cannot reach the instance metadata service",
			     RETRY_MS);
}

int oci_signer_instance_principal(uv_loop_t *loop, struct httpc *http,
				  const struct oci_instance_principal_opts *o,
				  oci_principal_ready_fn *ready, void *arg,
				  struct oci_signer **out)
{
	struct ip *ip = xcalloc(1, sizeof(*ip));
	const char *md = o && o->metadata_url ? o->metadata_url
					      : DEFAULT_METADATA;

	ip->http = http;
	ip->metadata_url = xstrndup(md, strlen(md) -
						(md[strlen(md) - 1] == '/'));
	ip->federation_url = o && o->federation_url
				     ? xstrdup(o->federation_url)
				     : NULL;
	ip->ca_file = o && o->ca_file ? xstrdup(o->ca_file) : NULL;
	ip->timeout_ms = o && o->timeout_ms ? o->timeout_ms
					    : DEFAULT_TIMEOUT_MS;
	ip->ready = ready;
	ip->ready_arg = arg;
	uv_timer_init(loop, &ip->timer);
	ip->timer.data = ip;
	ip->timer_open = 1;
	uv_unref((uv_handle_t *)&ip->timer);
	ip->s = oci_signer_new(&ip_ops, ip);
	*out = ip->s;
	/* The first round starts from the loop: ready never runs inside
	 * this call. */
	uv_timer_start(&ip->timer, ip_timer_cb, 0, 0);
	return 0;
}
