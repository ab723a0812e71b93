/*
 * kubeconfig.h - how mdscale reaches a Kubernetes API server.
 *
 * Either from a kubeconfig file (KUBECONFIG, or ~/.kube/config; the current
 * context unless one is named) or, inside a pod, from the service account
 * mounted under /var/run/secrets/kubernetes.io/serviceaccount and
 * KUBERNETES_SERVICE_HOST/PORT. The result is one struct k8s_cred: the
 * server URL, how to trust it (CA file or PEM data), and how to
 * authenticate (bearer token, client certificate and key, or an `exec`
 * credential plugin that prints a client.authentication.k8s.io/v1
 * ExecCredential). This is the only module that includes yaml.h.
 */
#ifndef MDS_K8S_KUBECONFIG_H
#define MDS_K8S_KUBECONFIG_H

#include <stddef.h>
#include <stdint.h>

/* Caps on outside input. */
#define KUBECONFIG_MAX_BYTES (1024 * 1024)
#define KUBECONFIG_MAX_DEPTH 32
#define K8S_EXEC_MAX_ARGS 32
#define K8S_EXEC_MAX_OUTPUT (256 * 1024)
#define K8S_EXEC_TIMEOUT_MS 10000

/* An `exec` credential plugin (users[].user.exec). */
struct k8s_exec {
	char *command;
	char *argv[K8S_EXEC_MAX_ARGS + 2]; /* command, args..., NULL */
	char *env[K8S_EXEC_MAX_ARGS + 1];  /* "NAME=value", ..., NULL */
	char *api_version;
};

struct k8s_cred {
	char *source;     /* the file it came from, or "in-cluster" */
	char *context;    /* context name ("" in-cluster) */
	char *server;     /* "https://host:port", no trailing slash */
	char *ns;         /* the context's namespace, or "default" */
	int insecure;     /* insecure-skip-tls-verify: true */
	char *ca_file;    /* certificate-authority, or NULL */
	char *ca_pem;     /* certificate-authority-data decoded, or NULL */
	size_t ca_pem_len;
	char *token;      /* bearer token (from token or tokenFile), or NULL */
	char *token_file; /* re-read when set (service-account tokens rotate) */
	char *cert_file, *key_file;  /* client-certificate, client-key */
	char *cert_pem, *key_pem;    /* ...-data decoded, or NULL */
	size_t cert_pem_len, key_pem_len;
	struct k8s_exec *exec;       /* or NULL */
	int64_t token_expiry_ms;     /* 0: unknown; from ExecCredential or a
					JWT's exp claim */
};

/*
 * Loads a kubeconfig. path NULL: $KUBECONFIG (its first entry), else
 * $HOME/.kube/config. context NULL or "": the file's current-context.
 * Returns 0 with a new k8s_cred in *out (free with k8s_cred_free), or
 * MDS_E_IO (unreadable file), MDS_E_PARSE (not YAML, or not a kubeconfig),
 * MDS_E_NOTFOUND (no such context, cluster or user), MDS_E_INVAL (a field
 * of the wrong kind, bad base64), MDS_E_LIMIT (over a cap); diag says which
 * file and which field.
 */
int kubeconfig_load(const char *path, const char *context,
		    struct k8s_cred **out, char *diag, size_t diagsz);

/*
 * Loads the in-cluster credentials: root/var/run/secrets/kubernetes.io/
 * serviceaccount/{token,ca.crt,namespace} and KUBERNETES_SERVICE_HOST and
 * _PORT (root NULL: "", for the real mount; tests pass a directory).
 * Returns 0 with a new k8s_cred, MDS_E_NOTFOUND when not in a pod, or
 * MDS_E_IO; diag says what is missing.
 */
int kubeconfig_incluster(const char *root, struct k8s_cred **out, char *diag,
			 size_t diagsz);

/*
 * Makes sure c->token is current: re-reads token_file, or runs the exec
 * plugin (synchronously, at most K8S_EXEC_TIMEOUT_MS) when there is no
 * token yet or it expires within a minute of now_ms. Returns 0; MDS_E_UNAUTH
 * when the token has expired (diag says when, and where it came from);
 * MDS_E_IO, MDS_E_TIMEOUT or MDS_E_PARSE when the plugin fails.
 */
int k8s_cred_refresh(struct k8s_cred *c, int64_t now_ms, char *diag,
		     size_t diagsz);

/* Forgets the current token so the next refresh runs the plugin again
 * (after a 401). Does nothing for static tokens. */
void k8s_cred_invalidate(struct k8s_cred *c);

/* Frees a k8s_cred; NULL is accepted. */
void k8s_cred_free(struct k8s_cred *c);

/*
 * Reads the exp claim of a JWT (a service-account token) into *exp_ms.
 * Returns 0, or MDS_E_NOTFOUND when token is not a JWT with an exp claim.
 */
int k8s_jwt_expiry(const char *token, int64_t *exp_ms);

#endif
