/*
 * functions.c - the function registry and its invocations; see
 * functions.h and docs/notifications.md. Programs run through
 * functions_run.c.
 *
 * Built-in functions are C callbacks registered at start; user functions
 * are programs (an argument vector, no shell) kept in the store as kind
 * "function". Every invocation is a struct call: built-ins wait in a queue
 * and start from a zero timer, so their done never runs inside
 * functions_invoke(); programs run as a struct functions_run.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/uidpool.h"
#include "notify/functions.h"
#include "notify/functions_int.h"
#include "store/store.h"
#include "api/jsonx.h"
#include "util/ids.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

#define KIND "function"
#define NAME_MAX_LEN FUNCTIONS_NAME_MAX
#define ARGV_MAX FUNCTIONS_ARGV_MAX
#define MAX_USER_FUNCTIONS 1000
#define MAX_CALLS 1024
#define DEFAULT_TIMEOUT_MS 30000
#define TIMEOUT_MAX_S FUNCTIONS_TIMEOUT_MAX_S
#define RESULT_MAX (1024 * 1024)

struct fn_entry {
	struct fn_entry *next;
	char *name;
	char *description;
	bool builtin;
	functions_builtin_fn *fn; /* built-in */
	void *ctx;
	char **command;           /* user: argv, NULL-terminated */
	uint32_t timeout_s;
	int64_t created_ms;
	uint32_t uid;             /* user: its own (instanceUids); 0: none */
	uint64_t invocations, failures;
	char last_error[256];
	int64_t last_ms;
};

/* One invocation through functions_invoke(). */
struct call {
	struct functions *fns; /* NULL once functions_close() let go */
	struct call *prev, *next;
	char name[NAME_MAX_LEN + 1];
	bool builtin;
	char *message;
	size_t len;
	struct functions_run *run;
	functions_done_fn *done;
	void *arg;
};

/* ---- small helpers ---- */

static struct fn_entry *find(struct functions *fns, const char *name)
{
	for (struct fn_entry *e = fns->entries; e; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

static void entry_free(struct fn_entry *e)
{
	if (e == NULL)
		return;
	free(e->name);
	free(e->description);
	xstrvfree(e->command);
	free(e);
}

static void entry_unlink(struct functions *fns, struct fn_entry *e)
{
	for (struct fn_entry **p = &fns->entries; *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			return;
		}
}

/* Returns true if prog (an absolute path, or a name looked up on PATH)
 * is a regular file this process may execute. */
static bool runnable(const char *prog)
{
	const char *path = getenv("PATH");
	struct stat st;
	bool ok = false;

	if (prog[0] == '/')
		return stat(prog, &st) == 0 && S_ISREG(st.st_mode) &&
		       access(prog, X_OK) == 0;
	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (!ok && *path != '\0') {
		const char *end = strchr(path, ':');
		size_t n = end ? (size_t)(end - path) : strlen(path);
		char *full;

		if (n > 0 && path[0] == '/') {
			full = xasprintf("%.*s/%s", (int)n, path, prog);
			ok = stat(full, &st) == 0 && S_ISREG(st.st_mode) &&
			     access(full, X_OK) == 0;
			free(full);
		}
		path = end ? end + 1 : path + n;
	}
	return ok;
}

int functions_check_argv(const char *const *argv, const char *field,
			 struct fault *f)
{
	const char *prog = argv != NULL ? argv[0] : NULL;

	if (prog == NULL || prog[0] == '\0')
		return fault_set(f, MDS_E_INVAL, field,
				 "%s[0]: the program must not be empty",
				 field);
	if (prog[0] != '/' && strchr(prog, '/') != NULL)
		return fault_set(f, MDS_E_INVAL, field,
				 "%s[0]: '%.200s' must be an absolute path or "
				 "a program name on PATH", field, prog);
	if (!runnable(prog))
		return fault_set(f, MDS_E_INVAL, field,
				 "%s[0]: '%.200s' is not an executable file "
				 "or a program on PATH", field, prog);
	return 0;
}

/* ---- invocations ---- */

static void call_unlink(struct functions *fns, struct call *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		fns->calls = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	fns->ncalls--;
}

static void call_link(struct functions *fns, struct call *c)
{
	c->prev = NULL;
	c->next = fns->calls;
	if (fns->calls != NULL)
		fns->calls->prev = c;
	fns->calls = c;
}

static void call_free(struct call *c)
{
	free(c->message);
	free(c);
}

/* Counts an outcome in the function's listing. */
static void account(struct functions *fns, const char *name, int error,
		    const char *message)
{
	struct fn_entry *e = find(fns, name);

	if (e == NULL)
		return;
	e->invocations++;
	e->last_ms = ids_now_ms();
	if (error != 0) {
		e->failures++;
		snprintf(e->last_error, sizeof(e->last_error), "%s",
			 message && message[0] ? message
					       : mds_strerror(error));
	}
}

static void call_done(struct call *c, int error, const char *result,
		      const char *message)
{
	struct functions *fns = c->fns;

	if (fns == NULL) { /* functions_close() answered it already */
		call_free(c);
		return;
	}
	call_unlink(fns, c);
	account(fns, c->name, error, message);
	if (error != 0)
		log_info("fn", "function %s failed: %s", c->name,
			 message ? message : mds_strerror(error));
	c->done(c->arg, error, error == 0 && result ? result : "",
		message ? message : "");
	call_free(c);
}

static void builtin_done(void *arg, int error, const char *result,
			 const char *message)
{
	call_done(arg, error, result, message);
}

static void program_done(void *arg, const struct functions_run_result *res)
{
	struct call *c = arg;

	c->run = NULL;
	call_done(c, res->error, res->output, res->message);
}

static void on_kick(uv_timer_t *t)
{
	struct functions *fns = t->data;

	while (fns->queued != NULL && !fns->closing) {
		struct call *c = fns->queued;
		struct fn_entry *e;

		fns->queued = c->next;
		if (fns->queued == NULL)
			fns->queued_tail = NULL;
		call_link(fns, c);
		e = find(fns, c->name);
		if (e == NULL || !e->builtin) {
			call_done(c, MDS_E_NOTFOUND, NULL,
				  "the function no longer exists");
			continue;
		}
		e->fn(e->ctx, c->message, c->len, builtin_done, c);
	}
}

int functions_invoke(struct functions *fns, const char *name,
		     const char *message, size_t len, functions_done_fn *done,
		     void *arg)
{
	struct functions_run_opts o;
	struct fn_entry *e;
	struct call *c;
	char tag[NAME_MAX_LEN + 16];
	int rc;

	if (fns->closing)
		return MDS_E_UNAVAIL;
	e = find(fns, name);
	if (e == NULL)
		return MDS_E_NOTFOUND;
	if (fns->ncalls >= MAX_CALLS)
		return MDS_E_LIMIT;
	c = xcalloc(1, sizeof(*c));
	c->fns = fns;
	snprintf(c->name, sizeof(c->name), "%s", e->name);
	c->builtin = e->builtin;
	c->done = done;
	c->arg = arg;
	if (e->builtin) {
		c->message = xmalloc(len + 1);
		memcpy(c->message, message, len);
		c->message[len] = '\0';
		c->len = len;
		if (fns->queued_tail != NULL)
			fns->queued_tail->next = c;
		else
			fns->queued = c;
		fns->queued_tail = c;
		fns->ncalls++;
		uv_timer_start(&fns->kick, on_kick, 0, 0);
		return 0;
	}
	snprintf(tag, sizeof(tag), "function %s", e->name);
	o = (struct functions_run_opts){
		.argv = (const char *const *)e->command, .input = message,
		.input_len = len,
		.timeout_ms = e->timeout_s * 1000, .capture_max = RESULT_MAX,
		.log_tag = tag, .function = e->name, .uid = e->uid,
	};
	rc = functions_run(fns, &o, program_done, c, &c->run);
	if (rc != 0) {
		free(c);
		return rc;
	}
	call_link(fns, c);
	fns->ncalls++;
	return 0;
}

/* ---- the registry ---- */

void functions_register_builtin(struct functions *fns, const char *name,
				const char *description,
				functions_builtin_fn *fn, void *ctx)
{
	struct fn_entry *e = find(fns, name), **tail;

	if (e != NULL) {
		log_warn("fn", "the built-in function %s replaces the %s "
			 "function of that name", name,
			 e->builtin ? "built-in" : "user");
		if (!e->builtin)
			fns->nuser--;
		entry_unlink(fns, e);
		entry_free(e);
	}
	e = xcalloc(1, sizeof(*e));
	e->name = xstrdup(name);
	e->description = xstrdup(description ? description : "");
	e->builtin = true;
	e->fn = fn;
	e->ctx = ctx;
	for (tail = &fns->entries; *tail; tail = &(*tail)->next)
		;
	*tail = e;
}

int functions_exists(struct functions *fns, const char *name)
{
	return find(fns, name) != NULL;
}

static void entry_info(const struct functions *fns, const struct fn_entry *e,
		       struct functions_info *v)
{
	*v = (struct functions_info){
		.name = e->name, .description = e->description,
		.builtin = e->builtin,
		.command = (const char *const *)e->command,
		.timeout_s = e->timeout_s, .created_ms = e->created_ms,
		.uid = uidpool_on(fns->uids) ? e->uid : 0,
		.invocations = e->invocations, .failures = e->failures,
		.last_error = e->last_error[0] ? e->last_error : NULL,
		.last_invoked_ms = e->last_ms,
	};
}

void functions_each(struct functions *fns,
		    void (*fn)(void *arg, const struct functions_info *info),
		    void *arg)
{
	struct functions_info v;

	for (int pass = 0; pass < 2; pass++)
		for (struct fn_entry *e = fns->entries; e; e = e->next)
			if (e->builtin == (pass == 0)) {
				entry_info(fns, e, &v);
				fn(arg, &v);
			}
}

int functions_get(struct functions *fns, const char *name,
		  struct functions_info *out, struct fault *f)
{
	struct fn_entry *e = find(fns, name);

	if (e == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "",
				 "no function named '%.80s'", name);
	entry_info(fns, e, out);
	return 0;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static json_t *stored_json(const struct fn_entry *e)
{
	json_t *o = json_pack("{s:s, s:o, s:s, s:i, s:I}", "name", e->name,
			      "command",
			      jsonx_strv_json((const char *const *)e->command),
			      "description", e->description, "timeoutSeconds",
			      (int)e->timeout_s, "createdMs",
			      (json_int_t)e->created_ms);

	if (e->uid != 0)
		json_object_set_new(o, "runUid",
				    json_integer((json_int_t)e->uid));
	return o;
}

/* Stores e as it is now. Returns 0 or the store's error. */
static int entry_store(struct functions *fns, const struct fn_entry *e)
{
	json_t *doc = stored_json(e);
	char *s = json_dumps(doc, JSON_COMPACT);
	int rc = store_put(fns->store, KIND, e->name, s);

	json_decref(doc);
	free(s);
	return rc;
}

int functions_create(struct functions *fns, const struct functions_spec *spec,
		     struct functions_info *out, struct fault *f)
{
	struct fn_entry *e, **tail;
	uint32_t uid = 0;
	int rc;

	if (!valid_name(spec->name))
		return fault_set(f, MDS_E_INVAL, "name",
				 "name must be 1 to %d characters of a-z 0-9 -",
				 NAME_MAX_LEN);
	e = find(fns, spec->name);
	if (e != NULL)
		return fault_set(f, MDS_E_EXISTS, "name",
				 "name: a %s function named '%s' exists",
				 e->builtin ? "built-in" : "user", spec->name);
	rc = functions_check_argv((const char *const *)spec->command,
				  "command", f);
	if (rc != 0)
		return rc;
	if (fns->nuser >= MAX_USER_FUNCTIONS)
		return fault_set(f, MDS_E_LIMIT, "",
				 "at most %d user functions may exist",
				 MAX_USER_FUNCTIONS);
	if (uidpool_on(fns->uids)) {
		rc = uidpool_pick(fns->uids, &uid, f);
		if (rc != 0)
			return rc;
	}
	if (spec->check_only)
		return 0;

	e = xcalloc(1, sizeof(*e));
	e->uid = uid;
	e->name = xstrdup(spec->name);
	e->description = xstrdup(spec->description);
	e->command = xstrvdup((const char *const *)spec->command);
	e->timeout_s = spec->timeout_s > 0 ? spec->timeout_s
					   : fns->timeout_ms / 1000;
	e->created_ms = ids_now_ms();
	rc = entry_store(fns, e);
	if (rc != 0) {
		entry_free(e);
		return fault_set(f, rc, "", "cannot store the function: %s",
				 mds_strerror(rc));
	}
	for (tail = &fns->entries; *tail; tail = &(*tail)->next)
		;
	*tail = e;
	fns->nuser++;
	log_info("fn", "function %s created", e->name);
	if (out != NULL)
		entry_info(fns, e, out);
	return 0;
}

int functions_update(struct functions *fns, const struct functions_spec *spec,
		     const char *description, struct functions_info *out,
		     struct fault *f)
{
	struct fn_entry *e = find(fns, spec->name), old;
	int rc;

	if (e == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "",
				 "no function named '%.80s'", spec->name);
	if (e->builtin)
		return fault_set(f, MDS_E_CONFLICT, "",
				 "'%s' is a built-in function; it cannot be "
				 "changed", spec->name);
	if (spec->command != NULL) {
		rc = functions_check_argv((const char *const *)spec->command,
					  "command", f);
		if (rc != 0)
			return rc;
	}
	if (spec->check_only)
		return 0;
	old = *e;
	if (spec->command != NULL)
		e->command = xstrvdup((const char *const *)spec->command);
	if (description != NULL)
		e->description = xstrdup(description);
	if (spec->timeout_s > 0)
		e->timeout_s = spec->timeout_s;
	rc = entry_store(fns, e);
	if (rc != 0) {
		if (e->command != old.command)
			xstrvfree(e->command);
		if (e->description != old.description)
			free(e->description);
		e->command = old.command;
		e->description = old.description;
		e->timeout_s = old.timeout_s;
		return fault_set(f, rc, "", "cannot store the function: %s",
				 mds_strerror(rc));
	}
	if (e->command != old.command)
		xstrvfree(old.command);
	if (e->description != old.description)
		free(old.description);
	log_info("fn", "function %s updated", e->name);
	if (out != NULL)
		entry_info(fns, e, out);
	return 0;
}

int functions_delete(struct functions *fns, const char *name,
		     struct fault *f)
{
	struct fn_entry *e = find(fns, name);
	int rc;

	if (e == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "",
				 "no function named '%.80s'", name);
	if (e->builtin)
		return fault_set(f, MDS_E_CONFLICT, "",
				 "'%s' is a built-in function; it cannot be "
				 "deleted", name);
	rc = store_delete(fns->store, KIND, e->name);
	if (rc != 0)
		return fault_set(f, rc, "", "cannot delete the function: %s",
				 mds_strerror(rc));
	log_info("fn", "function %s deleted", e->name);
	entry_unlink(fns, e);
	entry_free(e);
	fns->nuser--;
	return 0;
}

/* ---- open and close ---- */

static int load_one(void *arg, const char *id, const char *json)
{
	struct functions *fns = arg;
	struct fn_entry *e, **tail;
	json_t *o = json_loads(json, 0, NULL), *v;
	char **cmd = jsonx_strv(json_object_get(o, "command"), ARGV_MAX);
	struct fault f;

	if (!json_is_object(o) || cmd == NULL || find(fns, id) != NULL) {
		log_warn("fn", "skipping the stored function %s: unreadable",
			 id);
		json_decref(o);
		xstrvfree(cmd);
		return 0;
	}
	if (functions_check_argv((const char *const *)cmd, "command", &f) !=
	    0)
		log_warn("fn", "function %s: %s (kept; invocations will "
			 "fail)", id, f.message);
	e = xcalloc(1, sizeof(*e));
	e->name = xstrdup(id);
	v = json_object_get(o, "description");
	e->description = xstrdup(json_is_string(v) ? json_string_value(v)
						   : "");
	e->command = cmd;
	e->timeout_s = (uint32_t)json_integer_value(
		json_object_get(o, "timeoutSeconds"));
	if (e->timeout_s == 0 || e->timeout_s > TIMEOUT_MAX_S)
		e->timeout_s = fns->timeout_ms / 1000;
	e->created_ms = json_integer_value(json_object_get(o, "createdMs"));
	/* Functions stored before instanceUids have none: 0, given one by
	 * functions_settle_uids(). */
	e->uid = jsonx_uint(o, "runUid", IDRANGE_ID_MAX);
	json_decref(o);
	for (tail = &fns->entries; *tail; tail = &(*tail)->next)
		;
	*tail = e;
	fns->nuser++;
	return 0;
}

/* The pool's holder: each user function's uid, and the uid of each
 * program still running (of a function deleted since, too). */
static void hold_uids(void *arg, struct uidpool_ids *ids)
{
	const struct functions *fns = arg;

	for (const struct fn_entry *e = fns->entries; e; e = e->next)
		uidpool_ids_add(ids, e->uid);
	functions_runs_uids(fns, ids);
}

void functions_settle_uids(struct functions *fns)
{
	struct fault f;

	if (!uidpool_on(fns->uids))
		return;
	for (struct fn_entry *e = fns->entries; e; e = e->next) {
		if (e->builtin)
			continue;
		/* A uid held twice (a record edited by hand): one of the
		 * functions gets another; a deployment keeps it. */
		if (e->uid != 0 && uidpool_count(fns->uids, e->uid) > 1) {
			log_warn("fn", "function %s shared the uid %u; it "
				 "gets another", e->name, e->uid);
			e->uid = 0;
		}
		if (e->uid != 0)
			continue;
		if (uidpool_pick(fns->uids, &e->uid, &f) != 0) {
			log_warn("fn", "function %s: %s; its programs run as "
				 "runAsUser", e->name, f.message);
			continue;
		}
		if (entry_store(fns, e) != 0)
			log_warn("fn", "function %s: its uid %u could not be "
				 "stored; it is kept while the daemon runs",
				 e->name, e->uid);
		log_info("fn", "function %s: its programs run as uid %u from "
			 "now on", e->name, e->uid);
	}
}

int functions_open(const struct functions_env *env, struct functions **out,
		   char *diag, size_t diagsz)
{
	struct functions *fns = xcalloc(1, sizeof(*fns));
	int rc;

	fns->loop = env->loop;
	fns->store = env->store;
	fns->run_as_user = env->run_as_user;
	fns->uids = env->uids;
	fns->timeout_ms = env->timeout_ms ? env->timeout_ms
					  : DEFAULT_TIMEOUT_MS;
	if (fns->timeout_ms < 1000)
		fns->timeout_ms = 1000;
	rc = store_each(fns->store, KIND, load_one, fns);
	if (rc != 0) {
		mds_diag(diag, diagsz, "cannot load the functions: %s",
			 mds_strerror(rc));
		for (struct fn_entry *e = fns->entries, *n; e; e = n) {
			n = e->next;
			entry_free(e);
		}
		free(fns);
		return rc;
	}
	uv_timer_init(fns->loop, &fns->kick);
	fns->kick.data = fns;
	uidpool_hold(fns->uids, hold_uids, fns);
	log_info("fn", "%zu user functions loaded", fns->nuser);
	*out = fns;
	return 0;
}

static void on_kick_closed(uv_handle_t *h)
{
	free(h->data);
}

void functions_close(struct functions *fns)
{
	static const char why[] = "the daemon is shutting down";

	if (fns == NULL)
		return;
	fns->closing = true;
	uidpool_forget(fns->uids, fns);
	while (fns->queued != NULL) {
		struct call *c = fns->queued;

		fns->queued = c->next;
		c->done(c->arg, MDS_E_UNAVAIL, "", why);
		call_free(c);
	}
	fns->queued_tail = NULL;
	for (struct call *c = fns->calls, *next; c != NULL; c = next) {
		next = c->next;
		c->prev = c->next = NULL;
		c->done(c->arg, MDS_E_UNAVAIL, "", why);
		if (c->builtin) {
			c->fns = NULL; /* freed when the built-in answers */
		} else {
			if (c->run != NULL)
				functions_run_detach(c->run);
			call_free(c);
		}
	}
	fns->calls = NULL;
	fns->ncalls = 0;
	functions_runs_close(fns, why);
	for (struct fn_entry *e = fns->entries, *n; e; e = n) {
		n = e->next;
		entry_free(e);
	}
	fns->entries = NULL;
	uv_timer_stop(&fns->kick);
	uv_close((uv_handle_t *)&fns->kick, on_kick_closed);
}
