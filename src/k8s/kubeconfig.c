/*
 * kubeconfig.c - kubeconfig files, in-cluster credentials and exec
 * credential plugins; see kubeconfig.h.
 *
 * The YAML file is read with libyaml's event parser into a jansson tree
 * (every scalar a string; anchors and aliases refused), capped in size and
 * depth, and the context, cluster and user are then looked up in that tree.
 */
#include "k8s/kubeconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <yaml.h>

#include "core/iso8601.h"
#include "util/base64.h"
#include "util/buf.h"
#include "util/rfc3339.h"
#include "util/err.h"
#include "util/file.h"
#include "util/xalloc.h"

extern char **environ;

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define EXEC_API "client.authentication.k8s.io/v1"
#define REFRESH_MARGIN_MS 60000

/* ---- reading files ---------------------------------------------------- */

/* Reads a whole file of at most max bytes (file_read_all()). Returns 0
 * with a new NUL-terminated buffer, MDS_E_IO (a missing file too: here
 * it is one more file that cannot be read) or MDS_E_LIMIT, with diag
 * "cannot read PATH: why". */
static int read_file(const char *path, size_t max, char **out, size_t *len,
		     char *diag, size_t diagsz)
{
	char why[512];
	int rc = file_read_all(path, max, out, len, why, sizeof(why));

	if (rc == MDS_E_NOTFOUND)
		rc = MDS_E_IO;
	if (rc != 0)
		mds_diag(diag, diagsz, "cannot read %s", why);
	return rc;
}

/* ---- YAML into a jansson tree ----------------------------------------- */

struct yctx {
	yaml_parser_t p;
	const char *path;
	char *diag;
	size_t diagsz;
};

static int ynode(struct yctx *y, yaml_event_t *ev, int depth, json_t **out);

static int ynext(struct yctx *y, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&y->p, ev)) {
		mds_diag(y->diag, y->diagsz, "%s is not YAML: %s at line %zu",
			 y->path, y->p.problem ? y->p.problem : "error",
			 y->p.problem_mark.line + 1);
		return MDS_E_PARSE;
	}
	return 0;
}

/* Reads the children of a sequence or mapping whose start event was just
 * read, up to its end event. */
static int ycollection(struct yctx *y, int mapping, int depth, json_t *into)
{
	for (;;) {
		yaml_event_t ev;
		json_t *key = NULL, *val = NULL;
		int rc = ynext(y, &ev);

		if (rc != 0)
			return rc;
		if (ev.type == YAML_SEQUENCE_END_EVENT ||
		    ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		rc = ynode(y, &ev, depth + 1, mapping ? &key : &val);
		yaml_event_delete(&ev);
		if (rc != 0)
			return rc;
		if (mapping) {
			if (!json_is_string(key)) {
				json_decref(key);
				mds_diag(y->diag, y->diagsz,
					 "%s: a mapping key is not a string",
					 y->path);
				return MDS_E_PARSE;
			}
			rc = ynext(y, &ev);
			if (rc == 0) {
				rc = ynode(y, &ev, depth + 1, &val);
				yaml_event_delete(&ev);
			}
			if (rc == 0)
				json_object_set_new(into, json_string_value(key),
						    val);
			json_decref(key);
			if (rc != 0)
				return rc;
		} else {
			json_array_append_new(into, val);
		}
	}
}

/* Turns the node that starts with ev into a json value in *out. */
static int ynode(struct yctx *y, yaml_event_t *ev, int depth, json_t **out)
{
	if (depth > KUBECONFIG_MAX_DEPTH) {
		mds_diag(y->diag, y->diagsz, "%s nests deeper than %d levels",
			 y->path, KUBECONFIG_MAX_DEPTH);
		return MDS_E_LIMIT;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT: {
		const char *v = (const char *)ev->data.scalar.value;
		size_t n = ev->data.scalar.length;

		/* A plain empty or "null"/"~" scalar is null, as YAML says. */
		if (ev->data.scalar.plain_implicit &&
		    (n == 0 || strcmp(v, "null") == 0 || strcmp(v, "~") == 0))
			*out = json_null();
		else
			*out = json_stringn(v, n);
		if (*out == NULL) {
			mds_diag(y->diag, y->diagsz, "%s: a value is not "
				 "UTF-8", y->path);
			return MDS_E_PARSE;
		}
		return 0;
	}
	case YAML_SEQUENCE_START_EVENT:
		*out = json_array();
		break;
	case YAML_MAPPING_START_EVENT:
		*out = json_object();
		break;
	case YAML_ALIAS_EVENT:
		mds_diag(y->diag, y->diagsz, "%s: YAML aliases are not "
			 "accepted in a kubeconfig", y->path);
		return MDS_E_PARSE;
	default:
		mds_diag(y->diag, y->diagsz, "%s: unexpected YAML structure",
			 y->path);
		return MDS_E_PARSE;
	}
	{
		int rc = ycollection(y, ev->type == YAML_MAPPING_START_EVENT,
				     depth, *out);

		if (rc != 0) {
			json_decref(*out);
			*out = NULL;
		}
		return rc;
	}
}

/* Parses the first document of text into a jansson tree (new reference). */
static int yaml_to_json(const char *text, size_t len, const char *path,
			json_t **out, char *diag, size_t diagsz)
{
	struct yctx y = { .path = path, .diag = diag, .diagsz = diagsz };
	yaml_event_t ev;
	int rc;

	*out = NULL;
	if (!yaml_parser_initialize(&y.p))
		return MDS_E_INTERNAL;
	yaml_parser_set_input_string(&y.p, (const unsigned char *)text, len);
	/* STREAM-START, then DOCUMENT-START (or STREAM-END: empty file). */
	for (;;) {
		rc = ynext(&y, &ev);
		if (rc != 0)
			goto out;
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			mds_diag(diag, diagsz, "%s is empty", path);
			rc = MDS_E_PARSE;
			goto out;
		}
		if (ev.type != YAML_STREAM_START_EVENT &&
		    ev.type != YAML_DOCUMENT_START_EVENT)
			break;
		yaml_event_delete(&ev);
	}
	rc = ynode(&y, &ev, 0, out);
	yaml_event_delete(&ev);
out:
	yaml_parser_delete(&y.p);
	return rc;
}

/* ---- looking things up ------------------------------------------------ */

/* The string at key of obj, or NULL (also when it is not a string). */
static const char *str_at(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* Finds the entry of list (clusters, contexts, users) named name and
 * returns its inner object (entry[inner]), or NULL. */
static json_t *named(json_t *root, const char *list, const char *name,
		     const char *inner)
{
	json_t *arr = json_object_get(root, list), *e;
	size_t i;

	json_array_foreach(arr, i, e) {
		const char *n = str_at(e, "name");

		if (n != NULL && strcmp(n, name) == 0) {
			json_t *in = json_object_get(e, inner);

			/* An entry without its object: fields come up empty. */
			return json_is_object(in) ? in : e;
		}
	}
	return NULL;
}

/* A path as written in the kubeconfig: relative to the file's folder. */
static char *resolve_path(const char *cfgpath, const char *p)
{
	const char *slash = strrchr(cfgpath, '/');

	if (p[0] == '/' || slash == NULL)
		return xstrdup(p);
	return xasprintf("%.*s/%s", (int)(slash - cfgpath), cfgpath, p);
}

/* Decodes the base64 field key of obj into *pem (if present). */
static int data_field(json_t *obj, const char *key, const char *where,
		      char **pem, size_t *len, char *diag, size_t diagsz)
{
	const char *v = str_at(obj, key);

	if (v == NULL)
		return 0;
	if (base64_decode(v, strlen(v), pem, len) != 0) {
		mds_diag(diag, diagsz, "%s: %s is not valid base64", where,
			 key);
		return MDS_E_INVAL;
	}
	return 0;
}

static int load_exec(json_t *ex, const char *where, struct k8s_cred *c,
		     char *diag, size_t diagsz)
{
	struct k8s_exec *e = xcalloc(1, sizeof(*e));
	json_t *args = json_object_get(ex, "args"), *env, *v;
	const char *cmd = str_at(ex, "command");
	const char *api = str_at(ex, "apiVersion");
	size_t i, n = 0;

	c->exec = e;
	if (cmd == NULL || cmd[0] == '\0') {
		mds_diag(diag, diagsz, "%s: exec.command is missing", where);
		return MDS_E_INVAL;
	}
	if (api != NULL && strcmp(api, EXEC_API) != 0 &&
	    strcmp(api, "client.authentication.k8s.io/v1beta1") != 0) {
		mds_diag(diag, diagsz, "%s: exec.apiVersion %s is not "
			 "supported (use %s)", where, api, EXEC_API);
		return MDS_E_INVAL;
	}
	e->api_version = xstrdup(api != NULL ? api : EXEC_API);
	e->command = xstrdup(cmd);
	e->argv[n++] = xstrdup(cmd);
	if (json_array_size(args) > K8S_EXEC_MAX_ARGS) {
		mds_diag(diag, diagsz, "%s: exec.args has more than %d entries",
			 where, K8S_EXEC_MAX_ARGS);
		return MDS_E_LIMIT;
	}
	json_array_foreach(args, i, v) {
		if (!json_is_string(v)) {
			mds_diag(diag, diagsz, "%s: exec.args[%zu] is not a "
				 "string", where, i);
			return MDS_E_INVAL;
		}
		e->argv[n++] = xstrdup(json_string_value(v));
	}
	env = json_object_get(ex, "env");
	if (json_array_size(env) > K8S_EXEC_MAX_ARGS) {
		mds_diag(diag, diagsz, "%s: exec.env has more than %d entries",
			 where, K8S_EXEC_MAX_ARGS);
		return MDS_E_LIMIT;
	}
	n = 0;
	json_array_foreach(env, i, v) {
		const char *name = str_at(v, "name"), *val = str_at(v, "value");

		if (name == NULL || val == NULL) {
			mds_diag(diag, diagsz, "%s: exec.env[%zu] needs a name "
				 "and a value", where, i);
			return MDS_E_INVAL;
		}
		e->env[n++] = xasprintf("%s=%s", name, val);
	}
	return 0;
}

/* Fills the user part of c from users[].user. */
static int load_user(json_t *u, const char *path, const char *where,
		     struct k8s_cred *c, char *diag, size_t diagsz)
{
	const char *tok = str_at(u, "token"), *tf = str_at(u, "tokenFile");
	const char *cf = str_at(u, "client-certificate");
	const char *kf = str_at(u, "client-key");
	json_t *ex = json_object_get(u, "exec");
	int rc;

	if (tok != NULL)
		c->token = xstrdup(tok);
	else if (tf != NULL)
		c->token_file = resolve_path(path, tf);
	if (cf != NULL)
		c->cert_file = resolve_path(path, cf);
	if (kf != NULL)
		c->key_file = resolve_path(path, kf);
	rc = data_field(u, "client-certificate-data", where, &c->cert_pem,
			&c->cert_pem_len, diag, diagsz);
	if (rc == 0)
		rc = data_field(u, "client-key-data", where, &c->key_pem,
				&c->key_pem_len, diag, diagsz);
	if (rc != 0)
		return rc;
	if ((c->cert_file != NULL || c->cert_pem != NULL) !=
	    (c->key_file != NULL || c->key_pem != NULL)) {
		mds_diag(diag, diagsz, "%s: a client certificate needs its key "
			 "(client-certificate and client-key go together)",
			 where);
		return MDS_E_INVAL;
	}
	if (json_object_get(u, "auth-provider") != NULL) {
		mds_diag(diag, diagsz, "%s: auth-provider is not supported; "
			 "use an exec credential plugin", where);
		return MDS_E_INVAL;
	}
	if (json_is_object(ex))
		return load_exec(ex, where, c, diag, diagsz);
	if (c->token == NULL && c->token_file == NULL && c->cert_file == NULL &&
	    c->cert_pem == NULL) {
		mds_diag(diag, diagsz, "%s: no credentials (token, tokenFile, "
			 "client certificate or exec)", where);
		return MDS_E_INVAL;
	}
	return 0;
}

static int load_cluster(json_t *cl, const char *path, const char *where,
			struct k8s_cred *c, char *diag, size_t diagsz)
{
	const char *server = str_at(cl, "server");
	const char *ca = str_at(cl, "certificate-authority");
	const char *insecure = str_at(cl, "insecure-skip-tls-verify");
	size_t n;

	if (server == NULL || strncmp(server, "https://", 8) != 0) {
		mds_diag(diag, diagsz, "%s: server must be an https:// URL",
			 where);
		return MDS_E_INVAL;
	}
	n = strlen(server);
	while (n > 8 && server[n - 1] == '/')
		n--;
	c->server = xstrndup(server, n);
	c->insecure = insecure != NULL && strcmp(insecure, "true") == 0;
	if (ca != NULL)
		c->ca_file = resolve_path(path, ca);
	return data_field(cl, "certificate-authority-data", where, &c->ca_pem,
			  &c->ca_pem_len, diag, diagsz);
}

/* The kubeconfig to read when none is named. */
static char *default_path(void)
{
	const char *kc = getenv("KUBECONFIG");
	const char *home = getenv("HOME");

	if (kc != NULL && kc[0] != '\0') {
		const char *colon = strchr(kc, ':');

		return colon != NULL ? xstrndup(kc, (size_t)(colon - kc))
				     : xstrdup(kc);
	}
	return xasprintf("%s/.kube/config", home != NULL ? home : "");
}

/* Resolves context -> cluster and user in the parsed file. */
static int resolve(json_t *root, const char *path, const char *context,
		   struct k8s_cred *c, char *diag, size_t diagsz)
{
	const char *ctxname = context, *cluster, *user, *ns;
	json_t *ctx, *cl, *u;
	char where[192];
	int rc;

	if (!json_is_object(root) || (str_at(root, "kind") != NULL &&
				      strcmp(str_at(root, "kind"), "Config"))) {
		mds_diag(diag, diagsz, "%s is not a kubeconfig (kind: Config)",
			 path);
		return MDS_E_PARSE;
	}
	if (ctxname == NULL || ctxname[0] == '\0')
		ctxname = str_at(root, "current-context");
	if (ctxname == NULL || ctxname[0] == '\0') {
		mds_diag(diag, diagsz, "%s has no current-context; name one",
			 path);
		return MDS_E_NOTFOUND;
	}
	ctx = named(root, "contexts", ctxname, "context");
	if (ctx == NULL) {
		mds_diag(diag, diagsz, "%s has no context \"%s\"", path,
			 ctxname);
		return MDS_E_NOTFOUND;
	}
	c->context = xstrdup(ctxname);
	cluster = str_at(ctx, "cluster");
	user = str_at(ctx, "user");
	ns = str_at(ctx, "namespace");
	c->ns = xstrdup(ns != NULL && ns[0] != '\0' ? ns : "default");
	cl = cluster != NULL ? named(root, "clusters", cluster, "cluster")
			     : NULL;
	if (cl == NULL) {
		mds_diag(diag, diagsz, "%s: context \"%s\" names cluster "
			 "\"%s\", which is not in the file", path, ctxname,
			 cluster != NULL ? cluster : "");
		return MDS_E_NOTFOUND;
	}
	u = user != NULL ? named(root, "users", user, "user") : NULL;
	if (u == NULL) {
		mds_diag(diag, diagsz, "%s: context \"%s\" names user \"%s\", "
			 "which is not in the file", path, ctxname,
			 user != NULL ? user : "");
		return MDS_E_NOTFOUND;
	}
	snprintf(where, sizeof(where), "%s: cluster \"%s\"", path, cluster);
	rc = load_cluster(cl, path, where, c, diag, diagsz);
	if (rc != 0)
		return rc;
	snprintf(where, sizeof(where), "%s: user \"%s\"", path, user);
	return load_user(u, path, where, c, diag, diagsz);
}

int kubeconfig_load(const char *path, const char *context,
		    struct k8s_cred **out, char *diag, size_t diagsz)
{
	struct k8s_cred *c = xcalloc(1, sizeof(*c));
	char *file = path != NULL ? xstrdup(path) : default_path();
	char *text = NULL;
	json_t *root = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	c->source = file;
	rc = read_file(file, KUBECONFIG_MAX_BYTES, &text, &len, diag, diagsz);
	if (rc == 0)
		rc = yaml_to_json(text, len, file, &root, diag, diagsz);
	if (rc == 0)
		rc = resolve(root, file, context, c, diag, diagsz);
	if (rc == 0 && c->token != NULL)
		k8s_jwt_expiry(c->token, &c->token_expiry_ms);
	free(text);
	json_decref(root);
	if (rc != 0) {
		k8s_cred_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* ---- in-cluster ------------------------------------------------------- */

int kubeconfig_incluster(const char *root, struct k8s_cred **out, char *diag,
			 size_t diagsz)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	struct k8s_cred *c;
	char *nsfile, *ns = NULL;
	int rc;

	*out = NULL;
	if (host == NULL || host[0] == '\0' || port == NULL ||
	    port[0] == '\0') {
		mds_diag(diag, diagsz, "not in a pod: KUBERNETES_SERVICE_HOST "
			 "and KUBERNETES_SERVICE_PORT are not set");
		return MDS_E_NOTFOUND;
	}
	if (root == NULL)
		root = "";
	c = xcalloc(1, sizeof(*c));
	c->source = xstrdup("in-cluster");
	c->context = xstrdup("");
	/* An IPv6 service address goes in brackets. */
	c->server = strchr(host, ':') != NULL
			    ? xasprintf("https://[%s]:%s", host, port)
			    : xasprintf("https://%s:%s", host, port);
	c->token_file = xasprintf("%s%s/token", root, SA_DIR);
	c->ca_file = xasprintf("%s%s/ca.crt", root, SA_DIR);
	nsfile = xasprintf("%s%s/namespace", root, SA_DIR);
	rc = read_file(nsfile, 256, &ns, NULL, NULL, 0);
	free(nsfile);
	if (rc == 0) {
		ns[strcspn(ns, " \r\n")] = '\0';
		c->ns = ns[0] != '\0' ? ns : xstrdup("default");
		if (c->ns != ns)
			free(ns);
	} else {
		c->ns = xstrdup("default");
	}
	if (access(c->ca_file, R_OK) != 0) {
		mds_diag(diag, diagsz, "cannot read the service account's CA "
			 "%s: %s", c->ca_file, strerror(errno));
		k8s_cred_free(c);
		return MDS_E_IO;
	}
	rc = k8s_cred_refresh(c, 0, diag, diagsz);
	if (rc != 0) {
		k8s_cred_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* ---- tokens: files, JWT expiry, exec plugins -------------------------- */

int k8s_jwt_expiry(const char *token, int64_t *exp_ms)
{
	const char *dot1 = strchr(token, '.'), *dot2;
	char *payload = NULL;
	size_t len;
	json_t *claims;
	json_t *exp;
	int rc = MDS_E_NOTFOUND;

	if (dot1 == NULL)
		return MDS_E_NOTFOUND;
	dot2 = strchr(dot1 + 1, '.');
	if (dot2 == NULL ||
	    base64_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload,
			  &len) != 0)
		return MDS_E_NOTFOUND;
	claims = json_loadb(payload, len, 0, NULL);
	exp = json_object_get(claims, "exp");
	if (json_is_integer(exp) && json_integer_value(exp) > 0) {
		*exp_ms = (int64_t)json_integer_value(exp) * 1000;
		rc = 0;
	}
	json_decref(claims);
	free(payload);
	return rc;
}

/* Reads the plugin's output from fd into b until it closes it, within
 * K8S_EXEC_TIMEOUT_MS and K8S_EXEC_MAX_OUTPUT (past either the plugin is
 * killed). Returns 0, MDS_E_TIMEOUT or MDS_E_LIMIT. */
static int read_plugin(const struct k8s_exec *e, int fd, pid_t pid,
		       struct buf *b, char *diag, size_t diagsz)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char chunk[4096];
		long left;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &t);
		left = K8S_EXEC_TIMEOUT_MS - ((t.tv_sec - t0.tv_sec) * 1000 +
					      (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
			mds_diag(diag, diagsz, "the exec credential plugin %s "
				 "did not finish within %d ms", e->command,
				 K8S_EXEC_TIMEOUT_MS);
			kill(pid, SIGKILL);
			return MDS_E_TIMEOUT;
		}
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		if (buf_add(b, chunk, (size_t)n) != 0) {
			mds_diag(diag, diagsz, "the exec credential plugin %s "
				 "printed more than %d bytes", e->command,
				 K8S_EXEC_MAX_OUTPUT);
			kill(pid, SIGKILL);
			return MDS_E_LIMIT;
		}
	}
}

/* Runs the plugin; returns its stdout (new buffer) or an error. */
static int exec_run(const struct k8s_exec *e, char **out, char *diag,
		    size_t diagsz)
{
	posix_spawn_file_actions_t fa;
	struct buf b;
	char **envp = NULL;
	char *info;
	size_t nenv = 0, k = 0;
	int fds[2], status = 0, rc = 0;
	pid_t pid;

	for (char **ep = environ; *ep != NULL; ep++)
		nenv++;
	envp = xcalloc(nenv + K8S_EXEC_MAX_ARGS + 2, sizeof(*envp));
	for (size_t i = 0; i < nenv; i++)
		envp[k++] = environ[i];
	for (size_t i = 0; e->env[i] != NULL; i++)
		envp[k++] = e->env[i];
	info = xasprintf("KUBERNETES_EXEC_INFO={\"apiVersion\":\"%s\","
			 "\"kind\":\"ExecCredential\",\"spec\":"
			 "{\"interactive\":false}}", e->api_version);
	envp[k++] = info;
	if (pipe2(fds, O_CLOEXEC) != 0) {
		free(envp);
		free(info);
		return MDS_E_SYS;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	rc = posix_spawnp(&pid, e->command, &fa, NULL, e->argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	free(envp);
	free(info);
	if (rc != 0) {
		close(fds[0]);
		mds_diag(diag, diagsz, "cannot run the exec credential plugin "
			 "%s: %s", e->command, strerror(rc));
		return MDS_E_IO;
	}
	buf_init(&b, K8S_EXEC_MAX_OUTPUT);
	rc = read_plugin(e, fds[0], pid, &b, diag, diagsz);
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		mds_diag(diag, diagsz, "the exec credential plugin %s failed "
			 "(exit status %d)", e->command,
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		rc = MDS_E_IO;
	}
	if (rc != 0) {
		buf_free(&b);
		return rc;
	}
	*out = b.data != NULL ? buf_steal(&b) : xstrdup("");
	return 0;
}

/* Runs the plugin and takes the token (or certificate) it prints. */
static int exec_refresh(struct k8s_cred *c, int64_t now_ms, char *diag,
			size_t diagsz)
{
	const struct k8s_exec *e = c->exec;
	char *text = NULL;
	json_t *doc, *st;
	const char *tok, *cert, *key, *exp, *kind;
	int64_t exp_ms = 0;
	int rc = exec_run(e, &text, diag, diagsz);

	if (rc != 0)
		return rc;
	doc = json_loads(text, 0, NULL);
	free(text);
	kind = str_at(doc, "kind");
	st = json_object_get(doc, "status");
	if (kind == NULL || strcmp(kind, "ExecCredential") != 0 ||
	    !json_is_object(st)) {
		mds_diag(diag, diagsz, "the exec credential plugin %s did not "
			 "print an ExecCredential with a status", e->command);
		rc = MDS_E_PARSE;
		goto out;
	}
	tok = str_at(st, "token");
	cert = str_at(st, "clientCertificateData");
	key = str_at(st, "clientKeyData");
	exp = str_at(st, "expirationTimestamp");
	if (tok == NULL && (cert == NULL || key == NULL)) {
		mds_diag(diag, diagsz, "the exec credential plugin %s gave "
			 "neither a token nor a client certificate and key",
			 e->command);
		rc = MDS_E_PARSE;
		goto out;
	}
	if (exp != NULL &&
	    iso8601_time_parse(exp, &exp_ms, NULL, 0) != 0) {
		mds_diag(diag, diagsz, "the exec credential plugin %s gave a "
			 "bad expirationTimestamp \"%s\"", e->command, exp);
		rc = MDS_E_PARSE;
		goto out;
	}
	if (exp_ms != 0 && now_ms != 0 && exp_ms <= now_ms) {
		mds_diag(diag, diagsz, "the exec credential plugin %s gave a "
			 "token that expired at %s", e->command, exp);
		rc = MDS_E_UNAUTH;
		goto out;
	}
	free(c->token);
	c->token = tok != NULL ? xstrdup(tok) : NULL;
	if (cert != NULL && key != NULL) {
		free(c->cert_pem);
		free(c->key_pem);
		c->cert_pem = xstrdup(cert);
		c->cert_pem_len = strlen(cert);
		c->key_pem = xstrdup(key);
		c->key_pem_len = strlen(key);
	}
	c->token_expiry_ms = exp_ms;
out:
	json_decref(doc);
	return rc;
}

int k8s_cred_refresh(struct k8s_cred *c, int64_t now_ms, char *diag,
		     size_t diagsz)
{
	char expiry[40] = "";

	if (c->exec != NULL) {
		if (c->token != NULL || c->cert_pem != NULL) {
			if (c->token_expiry_ms == 0 ||
			    c->token_expiry_ms - REFRESH_MARGIN_MS > now_ms)
				return 0;
		}
		return exec_refresh(c, now_ms, diag, diagsz);
	}
	if (c->token_file != NULL) {
		char *tok = NULL;
		int rc = read_file(c->token_file, 64 * 1024, &tok, NULL, diag,
				   diagsz);

		if (rc != 0)
			return rc;
		tok[strcspn(tok, "\r\n")] = '\0';
		free(c->token);
		c->token = tok;
		c->token_expiry_ms = 0;
		k8s_jwt_expiry(tok, &c->token_expiry_ms);
	}
	if (c->token != NULL && c->token_expiry_ms != 0 && now_ms != 0 &&
	    c->token_expiry_ms <= now_ms) {
		rfc3339_format(c->token_expiry_ms, RFC3339_AUTO, expiry,
			       sizeof(expiry));
		mds_diag(diag, diagsz, "the bearer token of %s%s%s expired at "
			 "%s; get a new one", c->source,
			 c->context[0] != '\0' ? ", context " : "",
			 c->context, expiry);
		return MDS_E_UNAUTH;
	}
	return 0;
}

void k8s_cred_invalidate(struct k8s_cred *c)
{
	if (c != NULL && c->exec != NULL)
		c->token_expiry_ms = 1;
}

void k8s_cred_free(struct k8s_cred *c)
{
	if (c == NULL)
		return;
	free(c->source);
	free(c->context);
	free(c->server);
	free(c->ns);
	free(c->ca_file);
	free(c->ca_pem);
	free(c->token);
	free(c->token_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->cert_pem);
	free(c->key_pem);
	if (c->exec != NULL) {
		free(c->exec->command);
		free(c->exec->api_version);
		for (size_t i = 0; c->exec->argv[i] != NULL; i++)
			free(c->exec->argv[i]);
		for (size_t i = 0; c->exec->env[i] != NULL; i++)
			free(c->exec->env[i]);
		free(c->exec);
	}
	free(c);
}
