/*
 * deploy_store.c - the deployments' store rows: a deployment (with its
 * instance records) per "deployment" row and a work request per
 * "workrequest" row, as JSON. The only place in the module that reads or
 * writes JSON; the rows are internal (the API's shapes are built in
 * api/api_deploy.c from views).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/deploy_int.h"
#include "api/jsonx.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

static int64_t jint(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* Reads o's integer key into *out if it lies within [0, max]; false if it
 * does not (a damaged or hand-edited row). */
static bool juint(json_t *o, const char *key, uint32_t max, uint32_t *out)
{
	int64_t v = jint(o, key);

	if (v < 0 || v > (int64_t)max)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* ---- writing ---- */

static json_t *inst_row(const struct instance *in)
{
	const struct backend_instance *b = &in->bi;

	return json_pack(
		"{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:b, s:b, s:i, s:I, s:I, "
		"s:s, s:s, s:s, s:b, s:I}",
		"id", b->id, "instanceShapeName", b->shape, "state",
		deploy_inst_state_names[in->state], "backendState",
		backend_state_name(b->state), "port", b->port, "pid", b->pid,
		"restarts", b->restarts, "held", in->held, "everReady",
		b->ever_ready, "startFailures", b->start_failures, "createdMs",
		(json_int_t)in->created_ms, "procStartedMs",
		(json_int_t)b->started_ms, "workRequestId", in->wr_id,
		"handle", b->handle, "lastExit", b->last_exit, "shutdownStop",
		b->shutdown_stop, "specGeneration", (json_int_t)in->spec_gen);
}

static json_t *secret_row(const struct backend_spec *sp)
{
	json_t *a = json_array();

	for (size_t i = 0; i < sp->nsecret; i++)
		json_array_append_new(a, json_string(sp->secret[i]));
	return a;
}

static json_t *env_row(const struct backend_spec *sp)
{
	return jsonx_pairs(sp->env, sp->nenv);
}

/* The "KEY=value" strings of an object of strings; *n their number. */
static char **pairs_from_row(json_t *o, size_t *n)
{
	char **v = xcalloc(json_object_size(o) + 1, sizeof(char *));
	const char *key;
	json_t *x;

	*n = 0;
	json_object_foreach(o, key, x) {
		const char *val = json_string_value(x);

		v[(*n)++] = xasprintf("%s=%s", key, val ? val : "");
	}
	return v;
}

static json_t *dep_row(const struct deployment *dep)
{
	json_t *o, *arr = json_array();

	for (size_t i = 0; i < dep->ninst; i++)
		json_array_append_new(arr, inst_row(dep->inst[i]));
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, "
		      "s:i, s:o, s:i, s:i, s:I, s:I, s:o, s:o}",
		      "id", dep->id, "displayName", dep->name,
		      "lifecycleState", deploy_dep_state_names[dep->state],
		      "lifecycleDetails", dep->details, "backend",
		      dep->backend->ops->name, "ref", dep->ref, "etag",
		      dep->etag, "command", jsonx_command(dep->spec.shell, dep->spec.argv),
		      "healthPath",
		      dep->spec.health_path ? dep->spec.health_path : "",
		      "instanceShapeName", dep->shape, "instanceCount",
		      (int)dep->count, "environment", env_row(&dep->spec),
		      "readyTimeoutSeconds", (int)dep->ready_timeout_s,
		      "drainTimeoutSeconds", (int)dep->drain_timeout_s,
		      "createdMs", (json_int_t)dep->created_ms, "updatedMs",
		      (json_int_t)dep->updated_ms, "currentWorkRequestId",
		      dep->wr ? json_string(dep->wr->id) : json_null(),
		      "instances", arr);
	json_object_set_new(o, "replayNonIdempotent",
			    json_boolean(dep->replay_all));
	json_object_set_new(o, "secretEnvironment", secret_row(&dep->spec));
	json_object_set_new(o, "freeformTags",
			    jsonx_pairs(dep->tags, dep->ntags));
	json_object_set_new(o, "specGeneration",
			    json_integer((json_int_t)dep->spec_gen));
	if (dep->spec.uid != 0)
		json_object_set_new(o, "runUid",
				    json_integer((json_int_t)dep->spec.uid));
	if (dep->prev_spec != NULL)
		json_object_set_new(
			o, "previousSpec",
			json_pack("{s:o, s:o, s:s}", "command",
				  jsonx_command(dep->prev_spec->shell, dep->prev_spec->argv), "environment",
				  env_row(dep->prev_spec), "healthPath",
				  dep->prev_spec->health_path));
	return o;
}

static json_t *wr_row(const struct workreq *wr)
{
	json_t *steps = json_array();

	for (size_t i = 0; i < wr->nsteps; i++) {
		const struct wr_step *s = &wr->steps[i];

		json_array_append_new(
			steps,
			json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "kind",
				  deploy_step_kind_names[s->kind],
				  "instanceId", s->inst, "status",
				  deploy_step_status_names[s->status],
				  "t0Ms", (json_int_t)s->t0, "t1Ms",
				  (json_int_t)s->t1, "message", s->msg));
	}
	return json_pack(
		"{s:s, s:s, s:s, s:s, s:{s:i, s:s}, s:{s:i, s:s}, s:s, s:b, "
		"s:I, s:I, s:I, s:s, s:i, s:o}",
		"id", wr->id, "deploymentId", wr->dep_id, "operationType",
		deploy_wr_op_names[wr->op], "status",
		deploy_wr_status_names[wr->status], "from", "instanceCount",
		(int)wr->from_n, "instanceShapeName", wr->from_shape, "to",
		"instanceCount", (int)wr->to_n, "instanceShapeName",
		wr->to_shape, "errorMessage", wr->error, "rollback",
		wr->rollback, "acceptedMs", (json_int_t)wr->accepted,
		"startedMs", (json_int_t)wr->started, "finishedMs",
		(json_int_t)wr->finished, "platformWorkRequestId",
		wr->platform_id, "platformPercent", wr->platform_percent,
		"steps", steps);
}

static int put_row(struct deploy *d, const char *kind, const char *id,
		   json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	int rc = s ? store_put(d->env.store, kind, id, s) : MDS_E_INTERNAL;

	free(s);
	json_decref(o);
	return rc;
}

int deploy_store_save(struct deploy *d, const struct deployment *dep)
{
	int rc = put_row(d, "deployment", dep->id, dep_row(dep));

	if (rc == 0 && dep->wr != NULL)
		rc = put_row(d, "workrequest", dep->wr->id, wr_row(dep->wr));
	if (rc == 0 && dep->ended_wr != NULL)
		rc = put_row(d, "workrequest", dep->ended_wr->id,
			     wr_row(dep->ended_wr));
	return rc;
}

/* ---- reading ---- */

static struct workreq *wr_from_row(json_t *o)
{
	struct workreq *wr = xcalloc(1, sizeof(*wr));
	json_t *steps = json_object_get(o, "steps"), *s;
	size_t i;

	deploy_copy_str(wr->id, sizeof(wr->id), jsonx_str(o, "id", ""));
	deploy_copy_str(wr->dep_id, sizeof(wr->dep_id),
			jsonx_str(o, "deploymentId", ""));
	wr->op = (enum wr_op)DEPLOY_LOOKUP(deploy_wr_op_names,
					   jsonx_str(o, "operationType", ""));
	wr->status = (enum wr_status)DEPLOY_LOOKUP(deploy_wr_status_names,
						   jsonx_str(o, "status", ""));
	wr->from_n = (uint32_t)jint(json_object_get(o, "from"),
				    "instanceCount");
	deploy_copy_str(wr->from_shape, sizeof(wr->from_shape),
			jsonx_str(json_object_get(o, "from"),
				  "instanceShapeName", ""));
	wr->to_n = (uint32_t)jint(json_object_get(o, "to"), "instanceCount");
	deploy_copy_str(wr->to_shape, sizeof(wr->to_shape),
			jsonx_str(json_object_get(o, "to"), "instanceShapeName",
			     ""));
	deploy_copy_str(wr->error, sizeof(wr->error),
			jsonx_str(o, "errorMessage", ""));
	wr->rollback = json_is_true(json_object_get(o, "rollback"));
	wr->accepted = jint(o, "acceptedMs");
	wr->started = jint(o, "startedMs");
	wr->finished = jint(o, "finishedMs");
	deploy_copy_str(wr->platform_id, sizeof(wr->platform_id),
			jsonx_str(o, "platformWorkRequestId", ""));
	wr->platform_percent = (int)jint(o, "platformPercent");
	json_array_foreach(steps, i, s) {
		struct wr_step *st;
		int kind = DEPLOY_LOOKUP(deploy_step_kind_names,
					 jsonx_str(s, "kind", ""));

		deploy_wr_add_step(wr, kind < 0 ? PLAN_ROUTE : kind,
				   jsonx_str(s, "instanceId", ""));
		st = &wr->steps[wr->nsteps - 1];
		st->status = (enum step_status)DEPLOY_LOOKUP(
			deploy_step_status_names, jsonx_str(s, "status", ""));
		if ((int)st->status < 0)
			st->status = ST_PENDING;
		st->t0 = jint(s, "t0Ms");
		st->t1 = jint(s, "t1Ms");
		deploy_copy_str(st->msg, sizeof(st->msg),
				jsonx_str(s, "message", ""));
	}
	if ((int)wr->op < 0 || (int)wr->status < 0) {
		deploy_wr_free(wr);
		return NULL;
	}
	return wr;
}

struct workreq *deploy_store_workreq(struct deploy *d, const char *id)
{
	char *text = NULL;
	struct workreq *wr = NULL;
	json_t *o;

	if (store_get(d->env.store, "workrequest", id, &text) != 0)
		return NULL;
	o = json_loads(text, 0, NULL);
	free(text);
	if (o != NULL)
		wr = wr_from_row(o);
	json_decref(o);
	return wr;
}

struct wr_walk {
	void (*fn)(void *arg, struct workreq *wr);
	void *arg;
};

static int each_wr(void *arg, const char *id, const char *text)
{
	struct wr_walk *w = arg;
	json_t *o = json_loads(text, 0, NULL);
	struct workreq *wr = o ? wr_from_row(o) : NULL;

	(void)id;
	json_decref(o);
	if (wr != NULL)
		w->fn(w->arg, wr);
	return 0;
}

void deploy_store_each_workreq(struct deploy *d,
			       void (*fn)(void *arg, struct workreq *wr),
			       void *arg)
{
	struct wr_walk w = { fn, arg };

	store_each(d->env.store, "workrequest", each_wr, &w);
}

static void inst_from_row(struct deployment *dep, json_t *x)
{
	struct instance *in = xcalloc(1, sizeof(*in));
	struct backend_instance *b = &in->bi;
	int st;

	in->dep = dep;
	b->engine_data = in;
	b->spec = &dep->spec;
	deploy_copy_str(b->deployment_id, sizeof(b->deployment_id), dep->id);
	deploy_copy_str(b->id, sizeof(b->id), jsonx_str(x, "id", ""));
	deploy_copy_str(b->shape, sizeof(b->shape),
			jsonx_str(x, "instanceShapeName", ""));
	st = DEPLOY_LOOKUP(deploy_inst_state_names, jsonx_str(x, "state", ""));
	in->state = st < 0 ? PLAN_STOPPED : (enum plan_inst_state)st;
	for (int k = BACKEND_NEW; k <= BACKEND_FAILED; k++)
		if (strcmp(backend_state_name((enum backend_state)k),
			   jsonx_str(x, "backendState", "")) == 0)
			b->state = (enum backend_state)k;
	b->restart = deploy_inst_live(in);
	b->port = (int)jint(x, "port");
	b->pid = (int)jint(x, "pid");
	b->restarts = (int)jint(x, "restarts");
	in->held = json_is_true(json_object_get(x, "held"));
	b->ever_ready = json_is_true(json_object_get(x, "everReady"));
	b->shutdown_stop = json_is_true(json_object_get(x, "shutdownStop"));
	b->start_failures = (int)jint(x, "startFailures");
	in->created_ms = jint(x, "createdMs");
	b->started_ms = jint(x, "procStartedMs");
	deploy_copy_str(in->wr_id, sizeof(in->wr_id),
			jsonx_str(x, "workRequestId", ""));
	deploy_copy_str(b->handle, sizeof(b->handle),
			jsonx_str(x, "handle", ""));
	deploy_copy_str(b->last_exit, sizeof(b->last_exit),
			jsonx_str(x, "lastExit", ""));
	in->spec_gen = (uint32_t)jint(x, "specGeneration");
	dep->inst = xreallocarray(dep->inst, dep->ninst + 1,
				  sizeof(*dep->inst));
	dep->inst[dep->ninst++] = in;
}

/* Fills sp from the row's command, environment and healthPath; returns
 * false if the command is missing (a platform deployment has an empty
 * array). */
static bool spec_from_row(struct backend_spec *sp, json_t *o)
{
	json_t *cmd = json_object_get(o, "command"), *env, *v;
	const char *key;
	size_t i;

	if (json_is_string(cmd)) {
		sp->shell = true;
		sp->argv = xcalloc(2, sizeof(char *));
		sp->argv[sp->argc++] = xstrdup(json_string_value(cmd));
	} else if (json_is_array(cmd)) {
		sp->argv = xcalloc(json_array_size(cmd) + 1, sizeof(char *));
		json_array_foreach(cmd, i, v) {
			const char *a = json_string_value(v);

			sp->argv[sp->argc++] = xstrdup(a ? a : "");
		}
	} else {
		return false;
	}
	env = json_object_get(o, "environment");
	sp->env = xcalloc(json_object_size(env) + 1, sizeof(char *));
	json_object_foreach(env, key, v) {
		const char *val = json_string_value(v);

		sp->env[sp->nenv++] = xasprintf("%s=%s", key, val ? val : "");
	}
	/* Rows written before secrets existed have no list: none secret. */
	env = json_object_get(o, "secretEnvironment");
	sp->secret = xcalloc(json_array_size(env) + 1, sizeof(char *));
	json_array_foreach(env, i, v) {
		if (json_is_string(v))
			sp->secret[sp->nsecret++] = xstrdup(json_string_value(v));
	}
	sp->health_path = xstrdup(jsonx_str(o, "healthPath", "/health"));
	return true;
}

static int load_dep(void *arg, const char *id, const char *text)
{
	struct deploy *d = arg;
	struct deployment *dep;
	json_t *o = json_loads(text, 0, NULL), *arr, *x;
	const char *wr_id;
	bool counts_ok;
	int st;
	size_t i;

	if (o == NULL) {
		log_error("deploy", "deployment %s: unreadable record", id);
		return 0;
	}
	dep = xcalloc(1, sizeof(*dep));
	dep->owner = d;
	deploy_copy_str(dep->id, sizeof(dep->id), id);
	dep->name = xstrdup(jsonx_str(o, "displayName", id));
	dep->backend = deploy_backend_kept(d, jsonx_str(o, "backend", "local"));
	deploy_copy_str(dep->ref, sizeof(dep->ref), jsonx_str(o, "ref", ""));
	deploy_copy_str(dep->etag, sizeof(dep->etag), jsonx_str(o, "etag", ""));
	deploy_copy_str(dep->shape, sizeof(dep->shape),
			jsonx_str(o, "instanceShapeName", ""));
	/* Not the configured maximum: it may have been lowered since. */
	counts_ok = juint(o, "instanceCount", CONFIG_INSTANCES_MAX,
			  &dep->count) &&
		    juint(o, "readyTimeoutSeconds", UINT32_MAX,
			  &dep->ready_timeout_s) &&
		    juint(o, "drainTimeoutSeconds", UINT32_MAX,
			  &dep->drain_timeout_s);
	dep->replay_all = json_is_true(json_object_get(o,
						      "replayNonIdempotent"));
	st = DEPLOY_LOOKUP(deploy_dep_state_names,
			   jsonx_str(o, "lifecycleState", ""));
	dep->state = (enum dep_state)st;
	deploy_copy_str(dep->details, sizeof(dep->details),
			jsonx_str(o, "lifecycleDetails", ""));
	dep->created_ms = jint(o, "createdMs");
	dep->updated_ms = jint(o, "updatedMs");
	dep->spec_gen = (uint32_t)jint(o, "specGeneration");
	/* Rows written before instanceUids have none: 0, given one at
	 * recovery. */
	counts_ok = counts_ok && juint(o, "runUid", IDRANGE_ID_MAX,
				       &dep->spec.uid);
	dep->tags = pairs_from_row(json_object_get(o, "freeformTags"),
				   &dep->ntags);
	if (json_is_object(json_object_get(o, "previousSpec"))) {
		dep->prev_spec = xcalloc(1, sizeof(*dep->prev_spec));
		spec_from_row(dep->prev_spec,
			      json_object_get(o, "previousSpec"));
	}
	if (dep->backend == NULL || st < 0 || !counts_ok ||
	    !spec_from_row(&dep->spec, o)) {
		log_error("deploy", "deployment %s: bad record (or unknown "
			  "backend '%s'), skipped", id,
			  jsonx_str(o, "backend", "local"));
		json_decref(o);
		deploy_dep_free(dep);
		return 0;
	}
	if (dep->prev_spec != NULL)
		dep->prev_spec->uid = dep->spec.uid;
	arr = json_object_get(o, "instances");
	json_array_foreach(arr, i, x) {
		inst_from_row(dep, x);
	}
	deploy_respec(dep);
	wr_id = jsonx_str(o, "currentWorkRequestId", NULL);
	if (wr_id != NULL) {
		dep->wr = deploy_store_workreq(d, wr_id);
		/* A step cut short by the crash runs again: all are
		 * idempotent. */
		for (i = 0; dep->wr != NULL && i < dep->wr->nsteps; i++)
			if (dep->wr->steps[i].status == ST_IN_PROGRESS)
				dep->wr->steps[i].status = ST_PENDING;
	}
	json_decref(o);
	deploy_link(d, dep);
	return 0;
}

int deploy_store_load(struct deploy *d)
{
	return store_each(d->env.store, "deployment", load_dep, d);
}
