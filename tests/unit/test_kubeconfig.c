/*
 * test_kubeconfig.c - kubeconfig files, in-cluster credentials and exec
 * credential plugins, from real files and real plugin processes in a
 * temporary folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "k8s/kubeconfig.h"
#include "util/err.h"
#include "util/xalloc.h"

struct dir {
	char path[64];
};

static int setup(void **state)
{
	struct dir *d = xcalloc(1, sizeof(*d));

	snprintf(d->path, sizeof(d->path), "/tmp/mds-kubeconfig-XXXXXX");
	assert_non_null(mkdtemp(d->path));
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	struct dir *d = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
	assert_int_equal(system(cmd), 0);
	free(d);
	return 0;
}

/* Writes text to dir/name (mode) and returns the new path. */
static char *put(struct dir *d, const char *name, const char *text, int mode)
{
	char *p = xasprintf("%s/%s", d->path, name);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(p, (mode_t)mode), 0);
	return p;
}

#define HEAD                                                                 \
	"apiVersion: v1\n"                                                   \
	"kind: Config\n"                                                     \
	"current-context: dev\n"                                             \
	"clusters:\n"                                                        \
	"- name: c1\n"                                                       \
	"  cluster:\n"                                                       \
	"    server: https://10.0.0.1:6443/\n"                               \
	"    certificate-authority-data: LS0tLS1CRUdJTg==\n"                 \
	"- name: c2\n"                                                       \
	"  cluster:\n"                                                       \
	"    server: https://k8s.example:443\n"                              \
	"    certificate-authority: ca/ca.crt\n"                             \
	"contexts:\n"                                                        \
	"- name: dev\n"                                                      \
	"  context: {cluster: c1, user: alice, namespace: models}\n"         \
	"- name: prod\n"                                                     \
	"  context:\n"                                                       \
	"    cluster: c2\n"                                                  \
	"    user: bob\n"

/* alice has a token, bob a certificate file and a key. */
#define USERS                                                                \
	"users:\n- name: alice\n  user:\n    token: abc\n"                   \
	"- name: bob\n  user:\n"                                             \
	"    client-certificate: b.crt\n"                                    \
	"    client-key-data: a2V5\n"

/* Checks that diag holds want and also (unless NULL), printing them if
 * not. */
static void assert_diag_has(const char *diag, const char *want,
			    const char *also)
{
	if (strstr(diag, want) == NULL)
		fail_msg("diag \"%s\" does not hold \"%s\"", diag, want);
	if (also != NULL && strstr(diag, also) == NULL)
		fail_msg("diag \"%s\" does not hold \"%s\"", diag, also);
}

/* Loads path with context and checks that it fails with code and a diag
 * that holds want and also (unless NULL), giving no credentials. */
static void load_fails(const char *path, const char *context, int code,
		       const char *want, const char *also)
{
	struct k8s_cred *c = NULL;
	char diag[256] = "";

	assert_int_equal(kubeconfig_load(path, context, &c, diag,
					 sizeof(diag)), code);
	assert_diag_has(diag, want, also);
	assert_null(c);
}

/* Refreshes c at a time in 2023 and checks that it fails with code and a
 * diag that holds want and also (unless NULL). */
static void refresh_fails(struct k8s_cred *c, int code, const char *want,
			  const char *also)
{
	char diag[256] = "";

	assert_int_equal(k8s_cred_refresh(c, 1700000000000LL, diag,
					  sizeof(diag)), code);
	assert_diag_has(diag, want, also);
}

static void test_current_context_token(void **state)
{
	char *p = put(*state, "config", HEAD USERS, 0600);
	struct k8s_cred *c = NULL;
	char diag[256] = "";

	assert_int_equal(kubeconfig_load(p, NULL, &c, diag, sizeof(diag)), 0);
	assert_string_equal(c->context, "dev");
	assert_string_equal(c->server, "https://10.0.0.1:6443");
	assert_string_equal(c->ns, "models");
	assert_string_equal(c->token, "abc");
	assert_int_equal(c->ca_pem_len, 10);
	assert_memory_equal(c->ca_pem, "-----BEGIN", 10);
	k8s_cred_free(c);
	free(p);
}

static void test_named_context_cert(void **state)
{
	struct dir *d = *state;
	char *p = put(d, "config", HEAD USERS, 0600);
	char *want_ca = xasprintf("%s/ca/ca.crt", d->path);
	char *want_cert = xasprintf("%s/b.crt", d->path);
	struct k8s_cred *c = NULL;
	char diag[256] = "";

	assert_int_equal(kubeconfig_load(p, "prod", &c, diag, sizeof(diag)),
			 0);
	assert_string_equal(c->server, "https://k8s.example:443");
	assert_string_equal(c->ns, "default");
	assert_null(c->token);
	/* Relative paths are relative to the kubeconfig's folder. */
	assert_string_equal(c->ca_file, want_ca);
	assert_string_equal(c->cert_file, want_cert);
	assert_string_equal(c->key_pem, "key");
	k8s_cred_free(c);
	free(want_ca);
	free(want_cert);
	free(p);
}

static void test_bad_input(void **state)
{
	struct dir *d = *state;
	char *missing = xasprintf("%s/nope", d->path);
	char *unreadable = put(d, "locked", HEAD, 0000);
	char *notyaml = put(d, "bad", "clusters: [\n  - {name: x\n", 0600);
	char *nouser = put(d, "nouser", HEAD "users: []\n", 0600);
	char *nokey = put(d, "nokey",
			  HEAD "users:\n- name: alice\n  user:\n"
			       "    client-certificate-data: Y2VydA==\n",
			  0600);
	char *badb64 = put(d, "b64",
			   HEAD "users:\n- name: alice\n  user:\n"
				"    client-certificate-data: '!!'\n"
				"    client-key-data: a2V5\n",
			   0600);
	char *alias = put(d, "alias", "a: &x 1\nb: *x\n", 0600);
	char *http = put(d, "http",
			 "kind: Config\ncurrent-context: x\nclusters:\n"
			 "- {name: c, cluster: {server: 'http://h'}}\n"
			 "contexts:\n- {name: x, context: {cluster: c, user: "
			 "u}}\nusers:\n- {name: u, user: {token: t}}\n",
			 0600);

	load_fails(missing, NULL, MDS_E_IO, "cannot read", "nope");
	/* A folder opens but cannot be read, even by root. */
	load_fails(d->path, NULL, MDS_E_IO, "Is a directory", NULL);
	if (geteuid() != 0) {
		/* root reads anything; the mode only stops others. */
		load_fails(unreadable, NULL, MDS_E_IO, "Permission denied",
			   NULL);
	}
	load_fails(notyaml, NULL, MDS_E_PARSE, "is not YAML", NULL);
	load_fails(nouser, "staging", MDS_E_NOTFOUND, "no context \"staging\"",
		   NULL);
	load_fails(nouser, NULL, MDS_E_NOTFOUND, "user \"alice\", which is not",
		   NULL);
	load_fails(nokey, NULL, MDS_E_INVAL, "needs its key", NULL);
	load_fails(badb64, NULL, MDS_E_INVAL,
		   "client-certificate-data is not valid", NULL);
	load_fails(alias, NULL, MDS_E_PARSE, "aliases", NULL);
	load_fails(http, NULL, MDS_E_INVAL, "https://", NULL);
	free(missing);
	free(unreadable);
	free(notyaml);
	free(nouser);
	free(nokey);
	free(badb64);
	free(alias);
	free(http);
}

static void test_kubeconfig_env(void **state)
{
	char *p = put(*state, "config",
		      HEAD "users:\n- name: alice\n  user:\n    token: t\n",
		      0600);
	char *env = xasprintf("%s:/nonexistent/other", p);
	struct k8s_cred *c = NULL;
	char diag[256] = "";

	setenv("KUBECONFIG", env, 1);
	assert_int_equal(kubeconfig_load(NULL, NULL, &c, diag, sizeof(diag)),
			 0);
	assert_string_equal(c->source, p);
	unsetenv("KUBECONFIG");
	k8s_cred_free(c);
	free(env);
	free(p);
}

/* A JWT whose payload is {"exp":1000000000} (2001) or 4102444800 (2100). */
#define JWT_OLD "eyJhbGciOiJub25lIn0.eyJleHAiOjEwMDAwMDAwMDB9.c2ln"
#define JWT_NEW "eyJhbGciOiJub25lIn0.eyJleHAiOjQxMDI0NDQ4MDB9.c2ln"

static void test_expired_token(void **state)
{
	char *p = put(*state, "config",
		      HEAD "users:\n- name: alice\n  user:\n    token: " JWT_OLD
			   "\n",
		      0600);
	struct k8s_cred *c = NULL;
	char diag[256] = "";
	int64_t exp = 0;

	assert_int_equal(k8s_jwt_expiry(JWT_NEW, &exp), 0);
	assert_int_equal(exp, 4102444800000LL);
	assert_int_equal(k8s_jwt_expiry("opaque-token", &exp), MDS_E_NOTFOUND);
	assert_int_equal(kubeconfig_load(p, NULL, &c, diag, sizeof(diag)), 0);
	assert_int_equal(c->token_expiry_ms, 1000000000000LL);
	refresh_fails(c, MDS_E_UNAUTH, "expired at 2001-09-09T01:46:40Z",
		      "context dev");
	k8s_cred_free(c);
	free(p);
}

static void test_exec_plugin(void **state)
{
	struct dir *d = *state;
	char *plugin = put(d, "plugin.sh",
			   "#!/bin/sh\n"
			   "case \"$KUBERNETES_EXEC_INFO\" in *ExecCredential*) "
			   ";; *) exit 3;; esac\n"
			   "printf '{\"apiVersion\":\"client.authentication.k8s"
			   ".io/v1\",\"kind\":\"ExecCredential\",\"status\":"
			   "{\"token\":\"tok-%s\",\"expirationTimestamp\":"
			   "\"%s\"}}' \"$1\" \"$EXP\"\n",
			   0700);
	char *text = xasprintf(
		HEAD "users:\n- name: alice\n  user:\n    exec:\n"
		     "      apiVersion: client.authentication.k8s.io/v1\n"
		     "      command: %s\n      args: [one]\n"
		     "      env: [{name: EXP, value: '2100-01-01T00:00:00Z'}]\n"
		     "- name: bob\n  user:\n    exec:\n"
		     "      command: %s\n"
		     "      env: [{name: EXP, value: '2001-01-01T00:00:00Z'}]\n"
		     "- name: carol\n  user:\n    exec:\n"
		     "      command: /nonexistent/plugin\n",
		plugin, plugin);
	char *p = put(d, "config", text, 0600);
	struct k8s_cred *c = NULL;
	char diag[256] = "";

	assert_int_equal(kubeconfig_load(p, NULL, &c, diag, sizeof(diag)), 0);
	assert_null(c->token);
	assert_int_equal(k8s_cred_refresh(c, 1700000000000LL, diag,
					  sizeof(diag)), 0);
	assert_string_equal(c->token, "tok-one");
	assert_int_equal(c->token_expiry_ms, 4102444800000LL);
	k8s_cred_free(c);

	assert_int_equal(kubeconfig_load(p, "prod", &c, diag, sizeof(diag)),
			 0); /* prod uses bob */
	refresh_fails(c, MDS_E_UNAUTH, "expired at 2001-01-01T00:00:00Z", NULL);
	k8s_cred_free(c);
	free(text);
	free(p);

	text = xasprintf("kind: Config\ncurrent-context: x\nclusters:\n"
			 "- {name: c, cluster: {server: 'https://h'}}\n"
			 "contexts:\n- {name: x, context: {cluster: c, user: "
			 "u}}\nusers:\n- {name: u, user: {exec: {command: "
			 "/nonexistent/plugin}}}\n");
	p = put(d, "config2", text, 0600);
	assert_int_equal(kubeconfig_load(p, NULL, &c, diag, sizeof(diag)), 0);
	refresh_fails(c, MDS_E_IO, "/nonexistent/plugin", NULL);
	k8s_cred_free(c);
	free(text);
	free(p);
	free(plugin);
}

static void test_incluster(void **state)
{
	struct dir *d = *state;
	char *sa = xasprintf("%s/var/run/secrets/kubernetes.io/serviceaccount",
			     d->path);
	char *cmd = xasprintf("mkdir -p '%s'", sa);
	struct k8s_cred *c = NULL;
	char diag[256] = "";
	char *f1, *f2, *f3;

	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(kubeconfig_incluster(d->path, &c, diag, sizeof(diag)),
			 MDS_E_NOTFOUND);
	assert_non_null(strstr(diag, "KUBERNETES_SERVICE_HOST"));
	assert_int_equal(system(cmd), 0);
	f1 = put(d, "var/run/secrets/kubernetes.io/serviceaccount/token",
		 JWT_NEW "\n", 0600);
	f2 = put(d, "var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
		 "pem", 0600);
	f3 = put(d, "var/run/secrets/kubernetes.io/serviceaccount/namespace",
		 "models", 0600);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(kubeconfig_incluster(d->path, &c, diag, sizeof(diag)),
			 0);
	assert_string_equal(c->server, "https://[fd00::1]:443");
	assert_string_equal(c->ns, "models");
	assert_string_equal(c->token, JWT_NEW);
	assert_non_null(strstr(c->ca_file, "serviceaccount/ca.crt"));
	k8s_cred_free(c);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	free(sa);
	free(cmd);
	free(f1);
	free(f2);
	free(f3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_current_context_token,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_named_context_cert, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig_env, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_expired_token, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_exec_plugin, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_incluster, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
