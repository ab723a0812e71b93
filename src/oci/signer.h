/*
 * signer.h - OCI request signing (HTTP signatures, "Signature version 1").
 *
 * Every request to an OCI API carries an Authorization header
 *
 *	Signature version="1",headers="date (request-target) host",
 *	keyId="...",algorithm="rsa-sha256",signature="<base64>"
 *
 * where the signature is RSA-SHA256 (PKCS#1 v1.5) over the signing string,
 * the listed headers as "name: value" lines joined by "\n" (no trailing
 * newline), with (request-target) = lower-case method, a space, the path and
 * query. Requests with a body (POST, PUT, PATCH) also sign content-length,
 * content-type and x-content-sha256 (base64 of the body's SHA-256, also for
 * an empty body).
 *
 * A signer is a key and the keyId that names it, behind an ops table with
 * three sources: an API signing key from the OCI config file (config.h),
 * and the two principals of code running inside OCI (principal.h), whose
 * keyId is "ST$" and a session token. This module and principal.c are the
 * only ones that include OpenSSL's headers.
 */
#ifndef MDS_OCI_SIGNER_H
#define MDS_OCI_SIGNER_H

#include <stddef.h>

struct oci_signer;

/* What a request looks like to the signer; everything is borrowed. */
struct oci_sign_input {
	const char *method;       /* "GET", "PUT", ... (any case) */
	const char *path;         /* path and query, as sent: "/2019/x?a=b" */
	const char *host;         /* the Host header: "host" or "host:port" */
	const char *date;         /* RFC 7231 date: "Thu, 05 Jan 2014 ..." */
	const char *content_type; /* with a body; NULL: "application/json" */
	const void *body;         /* NULL with body_len 0: no body */
	size_t body_len;
	int with_body;            /* sign the body headers (POST/PUT/PATCH) */
	int no_host;              /* leave host out: the federation request
				     of instance principals signs without */
};

/* The headers a signed request must carry besides its own. */
struct oci_sign_output {
	char *authorization;          /* allocated: the Authorization value */
	char x_content_sha256[48];    /* "" when the body is not signed */
	char content_length[24];      /* "" when the body is not signed */
};

/* Returns 1 if requests with this method carry signed body headers. */
int oci_sign_method_has_body(const char *method);

/*
 * Signs a request. out->authorization is allocated (the caller frees it,
 * or calls oci_sign_output_free). Returns 0; MDS_E_INVAL for a missing
 * field; MDS_E_UNAUTH if the signer has no valid key yet (a principal whose
 * token is not fetched), MDS_E_INTERNAL if OpenSSL fails; diag says which.
 */
int oci_sign(struct oci_signer *s, const struct oci_sign_input *in,
	     struct oci_sign_output *out, char *diag, size_t diagsz);

/* Frees what oci_sign allocated in out; out itself is the caller's. */
void oci_sign_output_free(struct oci_sign_output *out);

/*
 * Builds the signing string of a request into a new string (the caller
 * frees it), and the body headers into out (its authorization is left
 * NULL). Exposed for tests and for the stand-in's verification; oci_sign
 * uses it. Returns 0 or MDS_E_INVAL.
 */
int oci_sign_string(const struct oci_sign_input *in, char **signing_string,
		    struct oci_sign_output *out);

/*
 * Creates a signer for keyId key_id with the private key in pem (PKCS#1 or
 * PKCS#8, RSA only), decrypted with passphrase (NULL: none). Returns 0 and
 * a new signer in *out (oci_signer_free), or MDS_E_UNAUTH when the key is
 * encrypted and no passphrase or a wrong one was given, MDS_E_PARSE when it
 * is not an RSA private key; diag says which.
 */
int oci_signer_from_pem(const char *key_id, const char *pem,
			const char *passphrase, struct oci_signer **out,
			char *diag, size_t diagsz);

/*
 * Writes the OCI fingerprint of the signer's public key (MD5 of its DER
 * SubjectPublicKeyInfo, as "aa:bb:...", 47 characters) into out (48 bytes).
 * Returns 0, or MDS_E_UNAUTH when the signer has no key yet.
 */
int oci_signer_fingerprint(struct oci_signer *s, char out[48]);

/* Returns the signer's current keyId (owned by the signer, valid until the
 * next refresh or free), or NULL when it has none yet. */
const char *oci_signer_key_id(struct oci_signer *s);

/* Returns the source's name: "api_key", "instance_principal",
 * "resource_principal"; static storage. */
const char *oci_signer_kind(const struct oci_signer *s);

/* Returns the region the signer's source named ("" when none); owned by
 * the signer. */
const char *oci_signer_region(const struct oci_signer *s);

/* Returns the tenancy OCID the signer's source named ("" when none). */
const char *oci_signer_tenancy(const struct oci_signer *s);

/* Replaces the region or the tenancy the signer reports (copied; NULL:
 * ""). */
void oci_signer_set_region(struct oci_signer *s, const char *region);
void oci_signer_set_tenancy(struct oci_signer *s, const char *tenancy);

/* Frees a signer and its key. NULL is accepted. */
void oci_signer_free(struct oci_signer *s);

#endif
