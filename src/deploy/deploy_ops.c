/*
 * deploy_ops.c - the operations other modules call on deployments: create,
 * import, change, delete (each checked, then started as a work request by
 * the engine); see deploy.h. What they read is in deploy_view.c.
 *
 * Checks here are about meaning (a name that is free, a program that can
 * run, a shape the backend offers, a count within the limits); the shapes
 * of request bodies are checked at the API's edge.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/uidpool.h"
#include "deploy/backend_offline.h"
#include "deploy/deploy_int.h"
#include "store/store.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/xalloc.h"

/* ---- checks ---- */

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > DEPLOY_NAME_MAX || strncmp(s, "md-", 3) == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

/* Returns true if prog (a path, or a name looked up on PATH) can run. */
static bool runnable(const char *prog)
{
	const char *path = getenv("PATH");
	bool ok = false;

	if (strchr(prog, '/') != NULL)
		return access(prog, X_OK) == 0;
	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (!ok && *path != '\0') {
		const char *end = strchr(path, ':');
		size_t n = end ? (size_t)(end - path) : strlen(path);
		char *full = xasprintf("%.*s/%s", (int)n, n ? path : ".", prog);
		struct stat st;

		ok = stat(full, &st) == 0 && S_ISREG(st.st_mode) &&
		     access(full, X_OK) == 0;
		free(full);
		path = end ? end + 1 : path + n;
	}
	return ok;
}

/*
 * For a shell command line, finds the program its first simple command
 * runs, when that is plain enough to tell without a shell (no quoting,
 * expansion or builtins other than exec). Returns NULL when it can't tell.
 */
static char *shell_program(const char *cmd)
{
	static const char *const builtins[] = {
		"cd", "export", "set", "if", "for", "while", "case", ".",
		"eval", "test", "[", "true", "false", "echo", "printf", "read",
		"trap", "ulimit", "umask", "wait", "command", "until", "{",
		"(", "!", "unset", "shift", "exit", "return", "source", ":",
		"sleep" };
	const char *p = cmd;

	for (int words = 0; words < 2; words++) {
		const char *start;
		char *w;
		bool builtin = false;

		while (*p == ' ' || *p == '\t')
			p++;
		start = p;
		while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\n' &&
		       *p != ';' && *p != '&' && *p != '|')
			p++;
		if (p == start)
			return NULL;
		w = xstrndup(start, (size_t)(p - start));
		if (strpbrk(w, "=$'\"`\\*?[]~(){}<>") != NULL) {
			free(w);
			return NULL;
		}
		if (strcmp(w, "exec") == 0) {
			free(w);
			continue;
		}
		for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
			builtin |= strcmp(w, builtins[i]) == 0;
		if (builtin) {
			free(w);
			return NULL;
		}
		return w;
	}
	return NULL;
}

static int check_command(const struct deploy_spec *s, struct fault *f)
{
	char *prog = NULL;
	int rc = 0;

	if (s->argv == NULL || s->argc == 0) {
		if (s->shell)
			return fault_set(f, MDS_E_INVAL, "command",
					 "command must be a string of length "
					 "from 1 to %d", DEPLOY_COMMAND_MAX);
		return fault_set(f, MDS_E_INVAL, "command",
				 s->argv ? "command must be an array of length "
					   "from 1 to 256"
					 : "command is required");
	}
	if (s->shell) {
		if (s->argv[0][0] == '\0' ||
		    strlen(s->argv[0]) > DEPLOY_COMMAND_MAX)
			return fault_set(f, MDS_E_INVAL, "command",
					 "command must be a string of length "
					 "from 1 to %d", DEPLOY_COMMAND_MAX);
		prog = shell_program(s->argv[0]);
	} else {
		if (s->argc > DEPLOY_ARGV_MAX)
			return fault_set(f, MDS_E_INVAL, "command",
					 "command must be an array of length "
					 "from 1 to %d", DEPLOY_ARGV_MAX);
		for (size_t i = 0; i < s->argc; i++)
			if (s->argv[i] == NULL ||
			    strlen(s->argv[i]) > DEPLOY_COMMAND_MAX)
				return fault_set(f, MDS_E_INVAL, "command",
						 "command[%zu] must be a string",
						 i);
		prog = xstrdup(s->argv[0]);
	}
	if (prog != NULL && !runnable(prog))
		rc = fault_set(f, MDS_E_INVAL, "command",
			       "command: '%s' is not an executable file or a "
			       "program on PATH", prog);
	free(prog);
	return rc;
}

static int check_range(const char *key, uint32_t v, uint32_t lo,
		       uint32_t hi, struct fault *f)
{
	if (v < lo || v > hi)
		return fault_set(f, MDS_E_INVAL, key,
				 "%s must be an integer from %u to %u", key,
				 lo, hi);
	return 0;
}

/* 0 if backend b can hold zero instances, else MDS_E_INVAL with f naming
 * field and why. */
static int zero_allowed(const struct backend *b, const char *field,
			struct fault *f)
{
	if (b->ops->caps & BACKEND_CAP_ZERO)
		return 0;
	return fault_set(f, MDS_E_INVAL, field,
			 "%s 0: the %s backend cannot hold zero instances%s",
			 field, b->ops->name,
			 strcmp(b->ops->name, "oci") == 0
				 ? " (OCI model deployments have at least "
				   "one instance)"
				 : "");
}

/*
 * Checks an instance count for backend b: from 1 (0 where the backend can
 * hold zero instances) to the daemon's maxInstances. Returns 0 or
 * MDS_E_INVAL with f set.
 */
static int check_count(struct deploy *d, const struct backend *b,
		       uint32_t count, struct fault *f)
{
	if (count == 0 && zero_allowed(b, "instanceCount", f) != 0)
		return f->err;
	return check_range("instanceCount", count, 0,
			   d->env.config->max_instances, f);
}

static int check_shape(const struct shape_ladder *l, const char *shape,
		       struct fault *f)
{
	char names[512];
	size_t n = 0;

	if (shape_find(l, shape) != NULL)
		return 0;
	names[0] = '\0';
	for (size_t i = 0; i < l->n && n < sizeof(names); i++)
		n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s",
				      i ? ", " : "", l->v[i].name);
	return fault_set(f, MDS_E_INVAL, "instanceShapeName",
			 "instanceShapeName: unknown shape '%s'; known "
			 "shapes: %s", shape, names);
}

static int check_health_path(const char *p, struct fault *f)
{
	if (p[0] != '/' || strlen(p) > DEPLOY_HEALTH_PATH_MAX ||
	    strpbrk(p, " \r\n\t") != NULL)
		return fault_set(f, MDS_E_INVAL, "healthPath",
				 "healthPath must be a path starting with "
				 "'/', without spaces");
	return 0;
}

static int check_env(const struct deploy_spec *s, struct fault *f)
{
	if (s->nenv > DEPLOY_ENV_MAX)
		return fault_set(f, MDS_E_INVAL, "environment",
				 "environment must hold at most %d "
				 "variables", DEPLOY_ENV_MAX);
	for (size_t i = 0; i < s->nenv; i++) {
		const char *eq = strchr(s->env[i], '=');

		/* The name ends at the first '=': it cannot hold one. */
		if (eq == NULL || eq == s->env[i])
			return fault_set(f, MDS_E_INVAL, "environment",
					 "environment: each variable must be "
					 "NAME=value with a non-empty NAME");
	}
	return 0;
}

static int check_tags(const char *const *tags, size_t n, struct fault *f)
{
	if (n > DEPLOY_TAGS_MAX)
		return fault_set(f, MDS_E_INVAL, "freeformTags",
				 "freeformTags must hold at most %d tags",
				 DEPLOY_TAGS_MAX);
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(tags[i], '=');
		size_t klen = eq ? (size_t)(eq - tags[i]) : 0;

		if (eq == NULL || klen == 0 || klen > DEPLOY_TAG_KEY_MAX ||
		    strcspn(tags[i], ". \t\r\n") < klen)
			return fault_set(f, MDS_E_INVAL, "freeformTags",
					 "freeformTags: a key must be 1 to %d "
					 "characters without '.', '=' or "
					 "white space", DEPLOY_TAG_KEY_MAX);
		if (strlen(eq + 1) > DEPLOY_TAG_VALUE_MAX)
			return fault_set(f, MDS_E_INVAL, "freeformTags",
					 "freeformTags: the value of '%.*s' "
					 "must be at most %d characters",
					 (int)klen, tags[i],
					 DEPLOY_TAG_VALUE_MAX);
	}
	return 0;
}

static int check_name(struct deploy *d, const char *name, struct fault *f)
{
	if (name == NULL)
		return fault_set(f, MDS_E_INVAL, "displayName",
				 "displayName is required");
	if (!valid_name(name))
		return fault_set(f, MDS_E_INVAL, "displayName",
				 "displayName must be 1 to %d characters of "
				 "A-Z a-z 0-9 . _ -, not starting with 'md-'",
				 DEPLOY_NAME_MAX);
	for (struct deployment *p = d->deps; p; p = p->next)
		if (p->state != DS_DELETED && strcmp(p->name, name) == 0)
			return fault_set(f, MDS_E_EXISTS, "displayName",
					 "displayName: a deployment named "
					 "'%s' exists (%s)", p->name, p->id);
	return 0;
}

static int check_room(struct deploy *d, struct fault *f)
{
	size_t n = 0;

	for (struct deployment *p = d->deps; p; p = p->next)
		n += p->state != DS_DELETED;
	if (n >= d->env.config->max_deployments)
		return fault_set(f, MDS_E_LIMIT, "",
				 "at most %u deployments (maxDeployments)",
				 d->env.config->max_deployments);
	return 0;
}

/* ---- instance uids ---- */

bool deploy_uids_on(const struct deploy *d, const struct backend *b)
{
	return uidpool_on(d->uids) && backend_can(b, BACKEND_CAP_INSTANCES);
}

/* The uid a new deployment on b would run as, into *uid (0: none). */
static int check_uid(struct deploy *d, const struct backend *b,
		     uint32_t *uid, struct fault *f)
{
	*uid = 0;
	if (!deploy_uids_on(d, b))
		return 0;
	return uidpool_pick(d->uids, uid, f);
}

static int check_spec(struct deploy *d, const struct backend *b,
		      const struct deploy_spec *s, struct fault *f)
{
	uint32_t uid;
	int rc;

	if ((rc = check_name(d, s->name, f)) != 0 ||
	    (rc = check_command(s, f)) != 0)
		return rc;
	if (s->shape != NULL &&
	    (rc = check_shape(deploy_shapes(d, b), s->shape, f)) != 0)
		return rc;
	if ((s->has_count && (rc = check_count(d, b, s->count, f)) != 0) ||
	    (s->has_ready_timeout &&
	     (rc = check_range("readyTimeoutSeconds", s->ready_timeout_s,
			       DEPLOY_READY_TIMEOUT_MIN,
			       DEPLOY_READY_TIMEOUT_MAX, f)) != 0) ||
	    (s->has_drain_timeout &&
	     (rc = check_range("drainTimeoutSeconds", s->drain_timeout_s, 0,
			       DEPLOY_DRAIN_TIMEOUT_MAX, f)) != 0))
		return rc;
	if (s->health_path != NULL &&
	    (rc = check_health_path(s->health_path, f)) != 0)
		return rc;
	if ((rc = check_env(s, f)) != 0 ||
	    (rc = check_tags(s->tags, s->ntags, f)) != 0)
		return rc;
	if ((rc = check_room(d, f)) != 0)
		return rc;
	return check_uid(d, b, &uid, f);
}

/* ---- operations ---- */

static struct deployment *dep_new(struct deploy *d, struct backend *b,
				  const char *name)
{
	struct deployment *dep = xcalloc(1, sizeof(*dep));

	dep->owner = d;
	dep->backend = b;
	ids_new(dep->id, ID_LEN, "md-");
	dep->name = xstrdup(name);
	dep->created_ms = ids_now_ms();
	dep->state = DS_CREATING;
	return dep;
}

int deploy_check(struct deploy *d, const struct deploy_spec *s,
		 struct fault *f)
{
	return check_spec(d, d->env.backends[0], s, f);
}

/* The refusal of a change the store did not take. */
static int not_stored(int rc, struct fault *f)
{
	if (rc == MDS_E_NOSPACE)
		return fault_set(f, rc, "",
				 "the data directory's device is full: the "
				 "change was not stored, nothing changed; "
				 "free some space and try again");
	return fault_set(f, rc, "", "the change could not be stored (%s); "
			 "nothing changed", mds_strerror(rc));
}

/* Undoes an accepted update or delete whose commit failed: the deployment
 * is again as it was (prev: a copy of it from before), nothing started. */
static void undo(struct deploy *d, struct deployment *dep,
		 const struct deployment *prev)
{
	deploy_wr_discard(d, dep, prev->wr);
	dep->state = prev->state;
	dep->count = prev->count;
	deploy_copy_str(dep->shape, sizeof(dep->shape), prev->shape);
	dep->updated_ms = prev->updated_ms;
}

static int unaccepted(struct deploy *d, struct deployment *dep,
		      const struct deployment *prev, int rc, struct fault *f)
{
	undo(d, dep, prev);
	return not_stored(rc, f);
}

/* Forgets a new deployment that was never stored. */
static void forget_new(struct deploy *d, struct deployment *dep)
{
	struct deployment **p;

	for (p = &d->deps; *p != dep; p = &(*p)->next)
		;
	*p = dep->next;
	deploy_wr_discard(d, dep, NULL);
	deploy_dep_free(dep);
}

static int unaccepted_new(struct deploy *d, struct deployment *dep, int rc,
			  struct fault *f)
{
	forget_new(d, dep);
	return not_stored(rc, f);
}

/* A creation taken in memory, until its transaction ends. */
struct creation {
	struct deploy *d;
	struct deployment *dep;
};

/* Stored: the gateway learns its name. */
static void creation_taken(void *arg)
{
	struct creation *x = arg;
	struct deployment *dep = x->dep;

	deploy_routes_update(x->d, dep);
	log_event(LOG_INFO, "deploy",
		  LOG_IDS(.deployment_id = dep->id,
			  .work_request_id = dep->wr->id),
		  "deployment %s (%s) created: %u x %s", dep->name, dep->id,
		  dep->count, dep->shape);
	free(x);
}

/* The caller's transaction did not commit: the deployment never was. Its
 * work request has started nothing: the tick drives it, and no tick runs
 * inside a transaction. */
static void creation_dropped(void *arg)
{
	struct creation *x = arg;

	forget_new(x->d, x->dep);
	free(x);
}

int deploy_create(struct deploy *d, const struct deploy_spec *s, char *id,
		  char *wr_id, struct fault *f)
{
	const struct config *cfg = d->env.config;
	struct backend *b = d->env.backends[0];
	struct deployment *dep;
	struct creation *x;
	uint32_t uid;
	int rc = check_spec(d, b, s, f);

	if (rc != 0)
		return rc;
	/* check_spec() found a free uid; this is the one taken. */
	if ((rc = check_uid(d, b, &uid, f)) != 0)
		return rc;
	dep = dep_new(d, b, s->name);
	dep->spec.uid = uid;
	dep->spec.argv = xstrvndup(s->argv, s->argc);
	dep->spec.argc = s->argc;
	dep->spec.shell = s->shell;
	dep->spec.env = xstrvndup(s->env, s->nenv);
	dep->spec.nenv = s->nenv;
	dep->spec.secret = xstrvndup(s->secret, s->nsecret);
	dep->spec.nsecret = s->nsecret;
	dep->spec.health_path =
		xstrdup(s->health_path ? s->health_path : "/health");
	dep->tags = xstrvndup(s->tags, s->ntags);
	dep->ntags = s->ntags;
	deploy_copy_str(dep->shape, sizeof(dep->shape),
			s->shape ? s->shape : cfg->default_shape);
	dep->count = s->has_count ? s->count : 1;
	dep->ready_timeout_s = s->has_ready_timeout ? s->ready_timeout_s
						    : cfg->ready_timeout_s;
	dep->drain_timeout_s = s->has_drain_timeout ? s->drain_timeout_s
						    : cfg->drain_timeout_s;
	dep->replay_all = s->replay_all;
	deploy_link(d, dep);
	deploy_wr_start(d, dep, OP_CREATE, dep->count, dep->shape);
	if ((rc = deploy_persist(d, dep)) != 0)
		return unaccepted_new(d, dep, rc, f);
	deploy_copy_str(id, ID_LEN, dep->id);
	deploy_copy_str(wr_id, ID_LEN, dep->wr->id);
	x = xmalloc(sizeof(*x));
	*x = (struct creation){ .d = d, .dep = dep };
	store_on_commit(d->env.store, creation_taken, creation_dropped, x);
	return 0;
}

int deploy_import(struct deploy *d, const char *backend, const char *ref,
		  const char *name, char *id, char *wr_id, struct fault *f)
{
	struct backend *b = deploy_backend(d, backend ? backend : "");
	struct deployment *dep;
	int rc;

	if (b == NULL && backend != NULL && deploy_missing_why(d, backend))
		return fault_set(f, MDS_E_UNAVAIL, "backend",
				 "backend: %s is unavailable (%s)", backend,
				 deploy_missing_why(d, backend));
	if (b == NULL || !backend_can(b, BACKEND_CAP_PLATFORM))
		return fault_set(f, MDS_E_INVAL, "backend",
				 "backend: '%s' is not a backend that "
				 "deployments can be imported from",
				 backend ? backend : "");
	if (ref == NULL || ref[0] == '\0' || strlen(ref) >= BACKEND_REF_MAX)
		return fault_set(f, MDS_E_INVAL, "ref",
				 "ref: must be 1 to %d characters",
				 BACKEND_REF_MAX - 1);
	if (b->ops->check_ref != NULL) {
		char why[256];

		if (b->ops->check_ref(b, ref, why, sizeof(why)) != 0)
			return fault_set(f, MDS_E_INVAL, "ref", "ref: %s",
					 why);
	}
	for (struct deployment *p = d->deps; p; p = p->next)
		if (p->state != DS_DELETED && p->backend == b &&
		    strcmp(p->ref, ref) == 0)
			return fault_set(f, MDS_E_EXISTS, "ref",
					 "ref: '%s' is kept as %s (%s)", ref,
					 p->name, p->id);
	if ((rc = check_name(d, name, f)) != 0 || (rc = check_room(d, f)) != 0)
		return rc;
	dep = dep_new(d, b, name);
	deploy_copy_str(dep->ref, sizeof(dep->ref), ref);
	dep->spec.argv = xcalloc(1, sizeof(char *));
	dep->spec.env = xcalloc(1, sizeof(char *));
	dep->spec.secret = xcalloc(1, sizeof(char *));
	dep->spec.health_path = xstrdup("/health");
	dep->tags = xcalloc(1, sizeof(char *));
	dep->ready_timeout_s = d->env.config->ready_timeout_s;
	dep->drain_timeout_s = d->env.config->drain_timeout_s;
	deploy_link(d, dep);
	deploy_wr_start(d, dep, OP_CREATE, 0, "");
	if ((rc = deploy_persist(d, dep)) != 0)
		return unaccepted_new(d, dep, rc, f);
	log_event(LOG_INFO, "deploy",
		  LOG_IDS(.deployment_id = dep->id,
			  .work_request_id = dep->wr->id),
		  "deployment %s (%s) imported from %s %s", dep->name, dep->id,
		  b->ops->name, ref);
	deploy_copy_str(id, ID_LEN, dep->id);
	deploy_copy_str(wr_id, ID_LEN, dep->wr->id);
	return 0;
}

static int busy(struct deployment *dep, struct fault *f)
{
	fault_set(f, MDS_E_CONFLICT, "",
		  "deployment %s is %s (work request %s); try again when it "
		  "is ACTIVE", dep->name, deploy_dep_state_names[dep->state],
		  dep->wr ? dep->wr->id : "-");
	f->code = "IncorrectState";
	return MDS_E_CONFLICT;
}

/* Checks the spec fields of c (as check_spec() does for a create). */
static int check_change_spec(const struct deployment *dep,
			     const struct deploy_change *c, struct fault *f)
{
	struct deploy_spec s = { .argv = c->argv, .argc = c->argc,
				 .shell = c->shell, .env = c->env,
				 .nenv = c->nenv };
	int rc;

	if ((c->argv != NULL || c->has_env || c->health_path != NULL) &&
	    backend_can(dep->backend, BACKEND_CAP_PLATFORM))
		return fault_set(f, MDS_E_INVAL, c->argv ? "command" : "",
				 "deployment %s is kept on the %s backend: "
				 "its command, environment and health path "
				 "are the platform's", dep->name,
				 dep->backend->ops->name);
	if (c->argv != NULL && (rc = check_command(&s, f)) != 0)
		return rc;
	if (c->has_env && (rc = check_env(&s, f)) != 0)
		return rc;
	if (c->health_path != NULL &&
	    (rc = check_health_path(c->health_path, f)) != 0)
		return rc;
	return 0;
}

static bool strv_equal(char *const *a, size_t na, const char *const *b,
		       size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

/* Whether c asks for a spec other than dep's. */
static bool spec_differs(const struct deployment *dep,
			 const struct deploy_change *c)
{
	const struct backend_spec *sp = &dep->spec;

	return (c->argv != NULL &&
		(c->shell != sp->shell ||
		 !strv_equal(sp->argv, sp->argc, c->argv, c->argc))) ||
	       (c->has_env && !strv_equal(sp->env, sp->nenv, c->env, c->nenv)) ||
	       (c->health_path != NULL &&
		strcmp(c->health_path, sp->health_path) != 0);
}

/* Makes c's spec the deployment's; the running instances keep the old
 * one (dep->prev_spec) until the update replaces them. */
static void spec_replace(struct deployment *dep, const struct deploy_change *c)
{
	struct backend_spec *sp = &dep->spec;
	struct backend_spec *old = xcalloc(1, sizeof(*old));

	*old = *sp;
	sp->argv = c->argv ? xstrvndup(c->argv, c->argc)
			   : xstrvndup((const char *const *)old->argv,
				       old->argc);
	sp->argc = c->argv ? c->argc : old->argc;
	sp->shell = c->argv ? c->shell : old->shell;
	sp->env = c->has_env ? xstrvndup(c->env, c->nenv)
			     : xstrvndup((const char *const *)old->env,
					 old->nenv);
	sp->nenv = c->has_env ? c->nenv : old->nenv;
	sp->health_path = xstrdup(c->health_path ? c->health_path
						 : old->health_path);
	/* A new environment brings its own secret names; otherwise they
	 * stay. Each spec owns its copy. */
	sp->secret = c->has_env ? xstrvndup(c->secret, c->nsecret)
				: xstrvndup((const char *const *)old->secret,
					    old->nsecret);
	sp->nsecret = c->has_env ? c->nsecret : old->nsecret;
	deploy_spec_clear(dep->prev_spec);
	free(dep->prev_spec);
	dep->prev_spec = old;
	dep->spec_gen++;
	deploy_respec(dep);
}

/* Applies the timeouts and tags of c; returns whether one changed. The
 * tags replaced go to *old_tags (NULL when they stay), for the caller to
 * free, or to put back when the change is not stored. */
static bool timeouts_apply(struct deployment *dep,
			   const struct deploy_change *c, char ***old_tags)
{
	bool changed = false;

	*old_tags = NULL;
	if (c->has_tags && !strv_equal(dep->tags, dep->ntags, c->tags,
				       c->ntags)) {
		*old_tags = dep->tags;
		dep->tags = xstrvndup(c->tags, c->ntags);
		dep->ntags = c->ntags;
		changed = true;
	}
	if (c->has_ready_timeout && c->ready_timeout_s != dep->ready_timeout_s) {
		dep->ready_timeout_s = c->ready_timeout_s;
		changed = true;
	}
	if (c->has_drain_timeout && c->drain_timeout_s != dep->drain_timeout_s) {
		dep->drain_timeout_s = c->drain_timeout_s;
		changed = true;
	}
	return changed;
}

/* Refuses any change of a deployment whose backend is offline: nothing can
 * carry it out, and the record must stay as the backend left it. */
static int check_online(const struct deployment *dep, struct fault *f)
{
	const char *why = backend_offline_why(dep->backend);

	if (why == NULL)
		return 0;
	return fault_set(f, MDS_E_UNAVAIL, "backend",
			 "deployment %s cannot change: its backend %s is "
			 "unavailable (%s); it stays readable, and changes "
			 "once the daemon starts with that backend",
			 dep->name, dep->backend->ops->name, why);
}

static int check_change(struct deploy *d, const struct deployment *dep,
			const struct deploy_change *c, struct fault *f)
{
	int rc;

	if ((rc = check_online(dep, f)) != 0)
		return rc;
	if (c->has_count &&
	    (rc = check_count(d, dep->backend, c->count, f)) != 0)
		return rc;
	if (c->shape != NULL &&
	    (rc = check_shape(deploy_shapes(d, dep->backend), c->shape,
			      f)) != 0)
		return rc;
	if ((c->has_ready_timeout &&
	     (rc = check_range("readyTimeoutSeconds", c->ready_timeout_s,
			       DEPLOY_READY_TIMEOUT_MIN,
			       DEPLOY_READY_TIMEOUT_MAX, f)) != 0) ||
	    (c->has_drain_timeout &&
	     (rc = check_range("drainTimeoutSeconds", c->drain_timeout_s, 0,
			       DEPLOY_DRAIN_TIMEOUT_MAX, f)) != 0) ||
	    (c->has_tags && (rc = check_tags(c->tags, c->ntags, f)) != 0))
		return rc;
	return check_change_spec(dep, c, f);
}

int deploy_check_idle_zero(struct deploy *d, const char *key,
			   const char *field, bool own, struct fault *f)
{
	struct deployment *dep = deploy_find(d, key);

	if (dep == NULL || dep->state == DS_DELETED)
		return fault_set(f, MDS_E_NOTFOUND, "", "no deployment '%s'",
				 key);
	if (zero_allowed(dep->backend, field, f) != 0)
		return f->err;
	if (!own && backend_can(dep->backend, BACKEND_CAP_PLATFORM))
		return fault_set(f, MDS_E_INVAL, field,
				 "%s 0 of the default configuration: a %s "
				 "deployment may be served through its own "
				 "Service, which mdscale's gateway does not "
				 "see; give it its own minInstances 0",
				 field, dep->backend->ops->name);
	return 0;
}

int deploy_change_check(struct deploy *d, const char *key,
			const struct deploy_change *c, struct fault *f)
{
	struct deployment *dep = deploy_find(d, key);
	int rc;

	if (dep == NULL || dep->state == DS_DELETED)
		return fault_set(f, MDS_E_NOTFOUND, "", "no deployment '%s'",
				 key);
	if ((rc = check_change(d, dep, c, f)) != 0)
		return rc;
	return dep->state == DS_ACTIVE ? 0 : busy(dep, f);
}

/* Undoes spec_replace() for an update that was not stored. */
static void spec_unreplace(struct deployment *dep)
{
	deploy_spec_clear(&dep->spec);
	dep->spec = *dep->prev_spec;
	free(dep->prev_spec);
	dep->prev_spec = NULL;
	dep->spec_gen--;
	deploy_respec(dep);
}

/* Puts back the timeouts and tags of prev (old_tags: the tags replaced,
 * or NULL) after a change that was not stored. */
static void timeouts_unapply(struct deployment *dep,
			     const struct deployment *prev, char **old_tags)
{
	dep->ready_timeout_s = prev->ready_timeout_s;
	dep->drain_timeout_s = prev->drain_timeout_s;
	if (old_tags != NULL) {
		xstrvfree(dep->tags);
		dep->tags = old_tags;
		dep->ntags = prev->ntags;
	}
}

int deploy_change(struct deploy *d, const char *key,
		  const struct deploy_change *c, char *wr_id, struct fault *f)
{
	struct deployment *dep = deploy_find(d, key), prev;
	char shape[SHAPE_NAME_MAX + 1], **old_tags;
	uint32_t count;
	bool respec, retimed;
	int rc;

	wr_id[0] = '\0';
	if (dep == NULL || dep->state == DS_DELETED)
		return fault_set(f, MDS_E_NOTFOUND, "", "no deployment '%s'",
				 key);
	if ((rc = check_change(d, dep, c, f)) != 0)
		return rc;
	count = c->has_count ? c->count : dep->count;
	deploy_copy_str(shape, sizeof(shape), c->shape ? c->shape
						       : dep->shape);
	if (dep->state != DS_ACTIVE)
		return busy(dep, f);
	prev = *dep;
	respec = spec_differs(dep, c);
	retimed = timeouts_apply(dep, c, &old_tags);
	if (count == dep->count && strcmp(shape, dep->shape) == 0 &&
	    !respec) {
		if (retimed && (rc = deploy_persist(d, dep)) != 0) {
			timeouts_unapply(dep, &prev, old_tags);
			dep->updated_ms = prev.updated_ms;
			return not_stored(rc, f);
		}
		xstrvfree(old_tags);
		return 0;
	}
	if (respec)
		spec_replace(dep, c);
	dep->state = DS_UPDATING;
	deploy_wr_start(d, dep, OP_UPDATE, count, shape);
	dep->count = count;
	deploy_copy_str(dep->shape, sizeof(dep->shape), shape);
	if ((rc = deploy_persist(d, dep)) != 0) {
		rc = unaccepted(d, dep, &prev, rc, f);
		if (respec)
			spec_unreplace(dep);
		timeouts_unapply(dep, &prev, old_tags);
		return rc;
	}
	xstrvfree(old_tags);
	log_event(LOG_INFO, "deploy",
		  LOG_IDS(.deployment_id = dep->id,
			  .work_request_id = dep->wr->id),
		  "deployment %s: update %u x %s -> %u x %s%s (%s)", dep->name,
		  dep->wr->from_n, dep->wr->from_shape, count, shape,
		  respec ? ", new spec" : "", dep->wr->id);
	deploy_copy_str(wr_id, ID_LEN, dep->wr->id);
	return 0;
}

int deploy_wake(struct deploy *d, const char *id, struct fault *f)
{
	struct deployment *dep = deploy_find(d, id);
	struct deploy_change c = { .has_count = true, .count = 1 };
	char wr_id[DEPLOY_ID_MAX];

	if (dep == NULL || dep->state == DS_DELETED)
		return fault_set(f, MDS_E_NOTFOUND, "", "no deployment '%s'",
				 id);
	if (dep->count > 0)
		return 0;
	return deploy_change(d, id, &c, wr_id, f);
}

int deploy_delete_check(struct deploy *d, const char *key, struct fault *f)
{
	struct deployment *dep = deploy_find(d, key);
	int rc;

	if (dep == NULL || dep->state == DS_DELETED)
		return fault_set(f, MDS_E_NOTFOUND, "", "no deployment '%s'",
				 key);
	if ((rc = check_online(dep, f)) != 0)
		return rc;
	if (dep->state == DS_DELETING || dep->wr != NULL)
		return busy(dep, f);
	return 0;
}

/* A deletion taken in memory, until its transaction ends. */
struct deletion {
	struct deploy *d;
	struct deployment *dep, prev;
};

static void deletion_taken(void *arg)
{
	struct deletion *x = arg;
	struct deployment *dep = x->dep;

	log_event(LOG_INFO, "deploy",
		  LOG_IDS(.deployment_id = dep->id,
			  .work_request_id = dep->wr->id),
		  "deployment %s: delete (%s)", dep->name, dep->wr->id);
	free(x);
}

/* The caller's transaction did not commit: the deployment is again as it
 * was, as after a refused write of its own. Its work request has not run
 * a step: the tick drives it, and no tick runs inside a transaction. */
static void deletion_dropped(void *arg)
{
	struct deletion *x = arg;

	undo(x->d, x->dep, &x->prev);
	x->dep->unsaved = x->prev.unsaved;
	free(x);
}

int deploy_delete(struct deploy *d, const char *key, char *wr_id,
		  struct fault *f)
{
	struct deployment *dep = deploy_find(d, key), prev;
	struct deletion *x;
	int rc;

	wr_id[0] = '\0';
	if ((rc = deploy_delete_check(d, key, f)) != 0)
		return rc;
	prev = *dep;
	dep->state = DS_DELETING;
	deploy_wr_start(d, dep, OP_DELETE, 0, "");
	if ((rc = deploy_persist(d, dep)) != 0)
		return unaccepted(d, dep, &prev, rc, f);
	deploy_copy_str(wr_id, ID_LEN, dep->wr->id);
	x = xmalloc(sizeof(*x));
	*x = (struct deletion){ .d = d, .dep = dep, .prev = prev };
	store_on_commit(d->env.store, deletion_taken, deletion_dropped, x);
	return 0;
}

int deploy_resolve(struct deploy *d, const char *key, char *id,
		   struct fault *f)
{
	struct deployment *dep = deploy_find(d, key);

	if (dep == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "", "no deployment '%s'",
				 key);
	deploy_copy_str(id, ID_LEN, dep->id);
	return 0;
}
