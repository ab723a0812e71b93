/*
 * signer.c - OCI HTTP signatures with OpenSSL; see signer.h.
 *
 * The signing string and the Authorization header follow OCI's "Request
 * Signatures" page (draft-cavage-http-signatures-08, rsa-sha256): the
 * headers are signed in the order they are listed, names in lower case.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "oci/signer_impl.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/xalloc.h"

/* The signing string of one request is a few headers and a path: a request
 * path past this is refused rather than signed. */
#define SIGNING_STRING_MAX (64 * 1024)

#define HEADERS_PLAIN "date (request-target) host"
#define HEADERS_BODY " content-length content-type x-content-sha256"

int oci_sign_method_has_body(const char *method)
{
	return method && (strcasecmp(method, "POST") == 0 ||
			  strcasecmp(method, "PUT") == 0 ||
			  strcasecmp(method, "PATCH") == 0);
}

char *oci_base64(const unsigned char *data, size_t len)
{
	size_t outlen = 4 * ((len + 2) / 3) + 1;
	char *out = xmalloc(outlen);

	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

static int body_headers(const struct oci_sign_input *in,
			struct oci_sign_output *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *b64;

	if (!EVP_Digest(in->body ? in->body : "", in->body_len, md, &mdlen,
			EVP_sha256(), NULL))
		return MDS_E_INTERNAL;
	b64 = oci_base64(md, mdlen);
	snprintf(out->x_content_sha256, sizeof(out->x_content_sha256), "%s",
		 b64);
	free(b64);
	snprintf(out->content_length, sizeof(out->content_length), "%zu",
		 in->body_len);
	return 0;
}

int oci_sign_string(const struct oci_sign_input *in, char **signing_string,
		    struct oci_sign_output *out)
{
	struct buf b;
	int rc;

	*signing_string = NULL;
	out->authorization = NULL;
	out->x_content_sha256[0] = '\0';
	out->content_length[0] = '\0';
	if (!in->method || !in->path || (!in->host && !in->no_host) ||
	    !in->date ||
	    in->path[0] != '/')
		return MDS_E_INVAL;
	buf_init(&b, SIGNING_STRING_MAX);
	rc = buf_printf(&b, "date: %s\n(request-target): ", in->date);
	for (const char *m = in->method; rc == 0 && *m; m++) {
		char c = *m >= 'A' && *m <= 'Z' ? (char)(*m - 'A' + 'a') : *m;
		rc = buf_add(&b, &c, 1);
	}
	if (rc == 0)
		rc = buf_printf(&b, " %s", in->path);
	if (rc == 0 && !in->no_host)
		rc = buf_printf(&b, "\nhost: %s", in->host);
	if (rc == 0 && in->with_body) {
		rc = body_headers(in, out);
		if (rc == 0)
			rc = buf_printf(&b,
					"\ncontent-length: %s\ncontent-type: "
					"%s\nx-content-sha256: %s",
					out->content_length,
					in->content_type ? in->content_type
							 : "application/json",
					out->x_content_sha256);
	}
	if (rc != 0) {
		buf_free(&b);
		return rc == MDS_E_LIMIT ? MDS_E_INVAL : rc;
	}
	*signing_string = buf_steal(&b);
	return 0;
}

/* RSA-SHA256 (PKCS#1 v1.5) of data as base64, a new string, or NULL. */
static char *rsa_sha256_b64(EVP_PKEY *pkey, const char *data, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *sig = NULL;
	size_t siglen = 0;
	char *b64 = NULL;

	if (!ctx)
		goto out;
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
	    EVP_DigestSign(ctx, NULL, &siglen, (const unsigned char *)data,
			   len) != 1)
		goto out;
	sig = xmalloc(siglen);
	if (EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)data,
			   len) != 1)
		goto out;
	b64 = oci_base64(sig, siglen);
out:
	free(sig);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return b64;
}

int oci_sign(struct oci_signer *s, const struct oci_sign_input *in,
	     struct oci_sign_output *out, char *diag, size_t diagsz)
{
	char *str = NULL, *sig = NULL;
	int rc;

	rc = oci_sign_string(in, &str, out);
	if (rc != 0) {
		mds_diag(diag, diagsz,
			 "cannot sign: method, path, host and date are needed");
		return rc;
	}
	if (s->ops->before_sign)
		s->ops->before_sign(s);
	if (!s->pkey || !s->key_id) {
		mds_diag(diag, diagsz,
			 "cannot sign: the %s signer has no key yet",
			 s->ops->kind);
		rc = MDS_E_UNAUTH;
		goto out;
	}
	sig = rsa_sha256_b64(s->pkey, str, strlen(str));
	if (!sig) {
		mds_diag(diag, diagsz, "cannot sign: RSA-SHA256 failed");
		rc = MDS_E_INTERNAL;
		goto out;
	}
	out->authorization = xasprintf(
		"Signature version=\"1\",headers=\"%s%s\",keyId=\"%s\","
		"algorithm=\"rsa-sha256\",signature=\"%s\"",
		in->no_host ? "date (request-target)" : HEADERS_PLAIN,
		in->with_body ? HEADERS_BODY : "", s->key_id, sig);
out:
	free(sig);
	free(str);
	return rc;
}

void oci_sign_output_free(struct oci_sign_output *out)
{
	if (!out)
		return;
	free(out->authorization);
	out->authorization = NULL;
}

/* What the PEM password callback saw: called at all means encrypted. */
struct pass_ctx {
	const char *passphrase;
	int asked;
};

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
	struct pass_ctx *p = u;
	size_t n;

	(void)rwflag;
	p->asked = 1;
	if (!p->passphrase)
		return -1;
	n = strlen(p->passphrase);
	if (n > (size_t)size)
		return -1;
	memcpy(buf, p->passphrase, n);
	return (int)n;
}

int oci_pem_private_key(const char *pem, const char *passphrase,
			EVP_PKEY **out, char *diag, size_t diagsz)
{
	struct pass_ctx pc = { .passphrase = passphrase, .asked = 0 };
	BIO *bio;
	EVP_PKEY *pkey;

	*out = NULL;
	bio = BIO_new_mem_buf(pem, -1);
	if (!bio)
		return MDS_E_INTERNAL;
	pkey = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, &pc);
	BIO_free(bio);
	ERR_clear_error();
	if (!pkey) {
		if (pc.asked && !passphrase) {
			mds_diag(diag, diagsz,
				 "the private key is protected by a "
				 "passphrase: set pass_phrase");
			return MDS_E_UNAUTH;
		}
		if (pc.asked) {
			mds_diag(diag, diagsz,
				 "the passphrase does not decrypt the "
				 "private key");
			return MDS_E_UNAUTH;
		}
		mds_diag(diag, diagsz, "not a PEM private key");
		return MDS_E_PARSE;
	}
	if (EVP_PKEY_base_id(pkey) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pkey);
		mds_diag(diag, diagsz, "the private key is not an RSA key");
		return MDS_E_PARSE;
	}
	*out = pkey;
	return 0;
}

static const struct oci_signer_ops pem_ops = {
	.kind = "api_key",
	.destroy = NULL,
};

struct oci_signer *oci_signer_new(const struct oci_signer_ops *ops,
				  void *impl)
{
	struct oci_signer *s = xcalloc(1, sizeof(*s));

	s->ops = ops;
	s->impl = impl;
	s->region = xstrdup("");
	s->tenancy = xstrdup("");
	return s;
}

void oci_signer_set_key(struct oci_signer *s, const char *key_id,
			EVP_PKEY *pkey)
{
	free(s->key_id);
	EVP_PKEY_free(s->pkey);
	s->key_id = xstrdup(key_id);
	s->pkey = pkey;
}

void oci_signer_set_region(struct oci_signer *s, const char *region)
{
	free(s->region);
	s->region = xstrdup(region ? region : "");
}

void oci_signer_set_tenancy(struct oci_signer *s, const char *tenancy)
{
	free(s->tenancy);
	s->tenancy = xstrdup(tenancy ? tenancy : "");
}

int oci_signer_from_pem(const char *key_id, const char *pem,
			const char *passphrase, struct oci_signer **out,
			char *diag, size_t diagsz)
{
	EVP_PKEY *pkey;
	int rc;

	*out = NULL;
	rc = oci_pem_private_key(pem, passphrase, &pkey, diag, diagsz);
	if (rc != 0)
		return rc;
	*out = oci_signer_new(&pem_ops, NULL);
	oci_signer_set_key(*out, key_id, pkey);
	return 0;
}

int oci_signer_fingerprint(struct oci_signer *s, char out[48])
{
	unsigned char *der = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int len;

	out[0] = '\0';
	if (!s->pkey)
		return MDS_E_UNAUTH;
	len = i2d_PUBKEY(s->pkey, &der);
	if (len <= 0)
		return MDS_E_INTERNAL;
	if (!EVP_Digest(der, (size_t)len, md, &mdlen, EVP_md5(), NULL) ||
	    mdlen != 16) {
		OPENSSL_free(der);
		return MDS_E_INTERNAL;
	}
	OPENSSL_free(der);
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(out + 3 * i, 4, i + 1 < mdlen ? "%02x:" : "%02x",
			 md[i]);
	return 0;
}

const char *oci_signer_key_id(struct oci_signer *s)
{
	return s->key_id;
}

const char *oci_signer_kind(const struct oci_signer *s)
{
	return s->ops->kind;
}

const char *oci_signer_region(const struct oci_signer *s)
{
	return s->region;
}

const char *oci_signer_tenancy(const struct oci_signer *s)
{
	return s->tenancy;
}

void oci_signer_free(struct oci_signer *s)
{
	if (!s)
		return;
	if (s->ops->destroy)
		s->ops->destroy(s->impl);
	free(s->key_id);
	EVP_PKEY_free(s->pkey);
	free(s->region);
	free(s->tenancy);
	free(s);
}
