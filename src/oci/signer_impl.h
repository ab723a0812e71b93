/*
 * signer_impl.h - what the sources of signing keys share (signer.c,
 * config.c, principal.c); not for other modules.
 *
 * A signer is the generic part (the key and keyId used by oci_sign) and a
 * source behind an ops table: the source may replace the key and keyId
 * (a principal's session token is renewed) and frees its own state.
 */
#ifndef MDS_OCI_SIGNER_IMPL_H
#define MDS_OCI_SIGNER_IMPL_H

#include <openssl/evp.h>

#include "oci/signer.h"

struct oci_signer_ops {
	const char *kind;                /* "api_key", ... */
	void (*destroy)(void *impl);     /* frees impl; may be NULL */
	/* Runs before each signature (may be NULL): a source whose token
	 * lives in a file reads it again once it has expired. */
	void (*before_sign)(struct oci_signer *s);
};

struct oci_signer {
	const struct oci_signer_ops *ops;
	void *impl;
	char *key_id;    /* NULL until the source has one */
	EVP_PKEY *pkey;  /* NULL until the source has one */
	char *region;
	char *tenancy;
};

/* Creates a signer of a source with no key yet (region, tenancy may be
 * NULL). Returns a new signer; oci_signer_free() frees it and impl. */
struct oci_signer *oci_signer_new(const struct oci_signer_ops *ops,
				  void *impl);

/* Replaces the signer's key and keyId: takes pkey over, copies key_id. */
void oci_signer_set_key(struct oci_signer *s, const char *key_id,
			EVP_PKEY *pkey);

/*
 * Reads an RSA private key from PEM text (PKCS#1 or PKCS#8, encrypted or
 * not) with passphrase (NULL: none). Returns 0 and a new key in *out
 * (EVP_PKEY_free), MDS_E_UNAUTH for an encrypted key without the right
 * passphrase, MDS_E_PARSE otherwise; diag says which.
 */
int oci_pem_private_key(const char *pem, const char *passphrase,
			EVP_PKEY **out, char *diag, size_t diagsz);

/* Writes base64 (standard alphabet, padded, no newlines) of data into a
 * new string; the caller frees it. */
char *oci_base64(const unsigned char *data, size_t len);

#endif
