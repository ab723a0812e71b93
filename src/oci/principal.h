/*
 * principal.h - the signers of code running inside OCI: resource
 * principals and instance principals.
 *
 * Both sign with a session key and keyId "ST$<token>", the token a JWT
 * from OCI's identity service whose claims name the tenancy and when it
 * expires.
 *
 * Resource principals (OCI Functions, Data Science jobs and notebooks)
 * come from the environment, version 2.2:
 *   OCI_RESOURCE_PRINCIPAL_VERSION        "2.2"
 *   OCI_RESOURCE_PRINCIPAL_RPST           the token, or the path of a file
 *                                         holding it (read again when the
 *                                         token it held has expired)
 *   OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM    the session key, or its path
 *   OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM_PASSPHRASE   optional, or its path
 *   OCI_RESOURCE_PRINCIPAL_REGION         the region
 *
 * Instance principals (a compute instance in a dynamic group): the
 * instance's certificate, intermediate certificate and key from the
 * instance metadata service (IMDSv2, "Authorization: Bearer Oracle"), a
 * new session key pair, and a token from the federation endpoint
 * (POST /v1/x509, signed with the instance key, keyId
 * "<tenancy>/fed-x509-sha256/<SHA-256 fingerprint of the certificate>",
 * the tenancy from the certificate's "opc-tenant:" subject OU). The token
 * is renewed before it expires, with a new session key.
 */
#ifndef MDS_OCI_PRINCIPAL_H
#define MDS_OCI_PRINCIPAL_H

#include <stddef.h>
#include <uv.h>

struct httpc;
struct oci_signer;

/*
 * Creates a resource principal signer from the environment. Returns 0 and
 * a new signer (oci_signer_free); MDS_E_INVAL naming the variable that is
 * missing or wrong (version other than 2.2, no region), MDS_E_UNAUTH for a
 * key that does not decrypt, MDS_E_PARSE for a token that is not a JWT,
 * with diag.
 */
int oci_signer_resource_principal(struct oci_signer **out, char *diag,
				  size_t diagsz);

struct oci_instance_principal_opts {
	const char *metadata_url;   /* NULL: http://169.254.169.254/opc/v2 */
	const char *federation_url; /* NULL: https://auth.REGION.oraclecloud
				       .com */
	const char *ca_file;        /* for the federation endpoint */
	uint32_t timeout_ms;        /* per request; 0: 10 s */
};

/* Told once when the first token came (rc 0) or could not be had. */
typedef void oci_principal_ready_fn(void *arg, int rc, const char *diag);

/*
 * Creates an instance principal signer on loop, fetching through http
 * (borrowed; must outlive the signer). The signer exists at once but has
 * no key until the token comes (oci_sign answers MDS_E_UNAUTH meanwhile);
 * ready (may be NULL) runs later on the loop, once. A failed renewal is
 * retried after a minute; the old token serves until it expires. Returns
 * 0 and the signer in *out (oci_signer_free; it cancels what is pending).
 */
int oci_signer_instance_principal(uv_loop_t *loop, struct httpc *http,
				  const struct oci_instance_principal_opts *o,
				  oci_principal_ready_fn *ready, void *arg,
				  struct oci_signer **out);

/*
 * Reads the claims of a JWT: writes the tenancy ("res_tenant", else
 * "tenant", else "opc-tenant") into tenancy and the expiry (seconds since
 * the epoch; 0 when absent) into *exp. Returns 0 or MDS_E_PARSE.
 */
int oci_jwt_claims(const char *jwt, char *tenancy, size_t tenancysz,
		   long long *exp);

#endif
