/*
 * api_deploy.c - the REST routes of deployments and work requests, and
 * their JSON: request bodies are checked for their shape and turned into
 * the deployments module's structs; its views are turned into the answers
 * of docs/api.md.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_deploy.h"
#include "api/fields.h"
#include "api/jsonx.h"
#include "deploy/deploy.h"
#include "notify/autoscale.h"
#include "oci/backend_oci.h"
#include "util/err.h"
#include "util/xalloc.h"

/* ---- views -> JSON ---- */

static json_t *str_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

static json_t *inst_json(const struct deploy_instance_view *in)
{
	return json_pack("{s:s, s:s, s:i, s:i, s:s, s:i, s:o, s:o, s:o}",
			 "id", in->id, "state", in->state, "port", in->port,
			 "pid", in->pid, "instanceShapeName", in->shape,
			 "restarts", in->restarts, "timeStarted",
			 jsonx_time(in->started_ms), "cgroup",
			 str_or_null(in->location), "lastExit",
			 str_or_null(in->last_exit));
}

static json_t *command_json(const struct deploy_view *v)
{
	json_t *a;

	if (v->shell)
		return json_string(v->argc ? v->argv[0] : "");
	a = json_array();
	for (size_t i = 0; i < v->argc; i++)
		json_array_append_new(a, json_string(v->argv[i]));
	return a;
}

static json_t *env_json(const struct deploy_view *v)
{
	json_t *o = json_object();

	for (size_t i = 0; i < v->nenv; i++) {
		const char *eq = strchr(v->env[i], '=');
		char *k = xstrndup(v->env[i], (size_t)(eq - v->env[i]));

		json_object_set_new(o, k, json_string(eq + 1));
		free(k);
	}
	return o;
}

json_t *api_deploy_view_json(const struct deploy_view *v)
{
	json_t *o, *arr = json_array();

	o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:i, s:o, s:i, "
		      "s:i, s:o, s:o, s:o}",
		      "id", v->id, "displayName", v->name, "lifecycleState",
		      v->state, "lifecycleDetails", v->details, "command",
		      command_json(v), "healthPath", v->health_path,
		      "instanceShapeName", v->shape, "instanceCount",
		      (int)v->count, "environment", env_json(v),
		      "readyTimeoutSeconds", (int)v->ready_timeout_s,
		      "drainTimeoutSeconds", (int)v->drain_timeout_s,
		      "timeCreated", jsonx_time(v->created_ms), "timeUpdated",
		      jsonx_time(v->updated_ms), "currentWorkRequestId",
		      str_or_null(v->wr_id));
	json_object_set_new(o, "endpoint", json_string(v->endpoint));
	for (size_t i = 0; i < v->ninst; i++)
		json_array_append_new(arr, inst_json(&v->inst[i]));
	json_object_set_new(o, "instances", arr);
	if (strcmp(v->backend, "local") != 0) {
		json_object_set_new(o, "backend", json_string(v->backend));
		json_object_set_new(o, "ref", json_string(v->ref));
	}
	return o;
}

json_t *api_deploy_workreq_json(const struct deploy_workreq_view *v)
{
	json_t *steps = json_array(), *o;

	for (size_t i = 0; i < v->nsteps; i++) {
		const struct deploy_step_view *s = &v->steps[i];

		json_array_append_new(
			steps,
			json_pack("{s:i, s:s, s:o, s:s, s:o, s:o, s:s}",
				  "index", (int)i, "kind", s->kind,
				  "instanceId", str_or_null(s->inst),
				  "status", s->status, "timeStarted",
				  jsonx_time(s->t0), "timeFinished",
				  jsonx_time(s->t1), "message", s->msg));
	}
	o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:{s:i, s:s}, s:{s:i, s:s}, "
		      "s:o, s:o, s:o, s:o, s:o}",
		      "id", v->id, "deploymentId", v->dep_id, "operationType",
		      v->op, "status", v->status, "percentComplete",
		      v->percent, "from", "instanceCount", (int)v->from_n,
		      "instanceShapeName", v->from_shape, "to",
		      "instanceCount", (int)v->to_n, "instanceShapeName",
		      v->to_shape, "errorMessage", str_or_null(v->error),
		      "timeAccepted", jsonx_time(v->accepted), "timeStarted",
		      jsonx_time(v->started), "timeFinished",
		      jsonx_time(v->finished), "steps", steps);
	if (v->platform_id[0] != '\0')
		json_object_set_new(o, "platformWorkRequestId",
				    json_string(v->platform_id));
	return o;
}

static void add_view(void *arg, const struct deploy_view *v)
{
	json_array_append_new(arg, api_deploy_view_json(v));
}

json_t *api_deploy_list_json(struct deploy *d, const char *name)
{
	json_t *items = json_array();

	deploy_each(d, name, add_view, items);
	return json_pack("{s:o}", "items", items);
}

static void add_workreq(void *arg, const struct deploy_workreq_view *v)
{
	json_array_append_new(arg, api_deploy_workreq_json(v));
}

json_t *api_deploy_workreqs_json(struct deploy *d, const char *key)
{
	json_t *items = json_array();

	deploy_each_workreq(d, key, add_workreq, items);
	return json_pack("{s:o}", "items", items);
}

/* ---- request bodies -> structs ---- */

/* Checks that every key of body is one of known[]; fills f otherwise. */
static int only_known(json_t *body, const char *const *known, size_t n,
		      const char *hint, struct fault *f)
{
	const char *key;
	json_t *v;

	json_object_foreach(body, key, v) {
		bool ok = false;

		for (size_t i = 0; i < n; i++)
			ok |= strcmp(key, known[i]) == 0;
		if (!ok)
			return fault_set(f, MDS_E_INVAL, key, "%s: %s", key,
					 hint);
	}
	return 0;
}

/* Reads an optional integer field within [lo, hi]. */
static int get_uint(json_t *body, const char *key, uint32_t lo, uint32_t hi,
		    bool *has, uint32_t *out, struct fault *f)
{
	json_t *v = json_object_get(body, key);

	*has = v != NULL;
	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi)
		return fault_set(f, MDS_E_INVAL, key,
				 "%s: must be an integer from %u to %u", key,
				 lo, hi);
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static int shape_not_string(const struct config *cfg, struct fault *f)
{
	char names[512];
	size_t n = 0;

	names[0] = '\0';
	for (size_t i = 0; i < cfg->shapes.n && n < sizeof(names); i++)
		n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s",
				      i ? ", " : "", cfg->shapes.v[i].name);
	return fault_set(f, MDS_E_INVAL, "instanceShapeName",
			 "instanceShapeName: must be a string; known "
			 "shapes: %s", names);
}

/* The strings a deploy_spec borrows from the body. */
struct spec_strings {
	const char **argv;
	const char **env;
};

static int body_command(json_t *cmd, struct deploy_spec *s,
			struct spec_strings *st, struct fault *f)
{
	size_t i;
	json_t *v;

	if (cmd == NULL)
		return fault_set(f, MDS_E_INVAL, "command",
				 "command: is required");
	if (json_is_string(cmd)) {
		st->argv = xcalloc(2, sizeof(char *));
		st->argv[0] = json_string_value(cmd);
		s->argc = 1;
		s->shell = true;
	} else if (json_is_array(cmd)) {
		if (json_array_size(cmd) == 0 ||
		    json_array_size(cmd) > DEPLOY_ARGV_MAX)
			return fault_set(f, MDS_E_INVAL, "command",
					 "command: an array must hold 1 to "
					 "%d strings", DEPLOY_ARGV_MAX);
		st->argv = xcalloc(json_array_size(cmd) + 1, sizeof(char *));
		json_array_foreach(cmd, i, v) {
			if (!json_is_string(v))
				return fault_set(f, MDS_E_INVAL, "command",
						 "command[%zu]: must be a "
						 "string", i);
			st->argv[i] = json_string_value(v);
		}
		s->argc = json_array_size(cmd);
	} else {
		return fault_set(f, MDS_E_INVAL, "command",
				 "command: must be a string or an array of "
				 "strings");
	}
	s->argv = st->argv;
	return 0;
}

static int body_env(json_t *env, struct deploy_spec *s,
		    struct spec_strings *st, struct fault *f)
{
	const char *key;
	json_t *v;
	size_t n = 0;

	if (env == NULL)
		return 0;
	if (!json_is_object(env) || json_object_size(env) > DEPLOY_ENV_MAX)
		return fault_set(f, MDS_E_INVAL, "environment",
				 "environment: must be an object of at most "
				 "%d strings", DEPLOY_ENV_MAX);
	st->env = xcalloc(json_object_size(env) + 1, sizeof(char *));
	json_object_foreach(env, key, v) {
		if (!json_is_string(v) || key[0] == '\0' ||
		    strchr(key, '=') != NULL)
			return fault_set(f, MDS_E_INVAL, "environment",
					 "environment.%s: names must not hold "
					 "'=' and values must be strings",
					 key);
		st->env[n++] = xasprintf("%s=%s", key, json_string_value(v));
	}
	s->env = st->env;
	s->nenv = n;
	return 0;
}

static void spec_strings_free(struct spec_strings *st)
{
	for (size_t i = 0; st->env != NULL && st->env[i] != NULL; i++)
		free((char *)st->env[i]);
	free(st->env);
	free(st->argv);
}

/* Turns a POST body into a deploy_spec (strings borrowed from body or
 * held in st, which the caller frees). */
static int body_spec(const struct config *cfg, json_t *body,
		     struct deploy_spec *s, struct spec_strings *st,
		     struct fault *f)
{
	static const char *const known[] = {
		"displayName", "command", "instanceShapeName", "instanceCount",
		"healthPath", "environment", "readyTimeoutSeconds",
		"drainTimeoutSeconds" };
	json_t *v;
	int rc;

	memset(s, 0, sizeof(*s));
	if (!json_is_object(body))
		return fault_set(f, MDS_E_INVAL, "", "the body must be a JSON "
				 "object");
	if ((rc = only_known(body, known, sizeof(known) / sizeof(known[0]),
			     "unknown field", f)) != 0)
		return rc;
	v = json_object_get(body, "displayName");
	if (v == NULL)
		return fault_set(f, MDS_E_INVAL, "displayName",
				 "displayName: is required");
	if (!json_is_string(v))
		return fault_set(f, MDS_E_INVAL, "displayName",
				 "displayName: 1 to %d characters of "
				 "A-Z a-z 0-9 . _ -, not starting with 'md-'",
				 DEPLOY_NAME_MAX);
	s->name = json_string_value(v);
	if ((rc = body_command(json_object_get(body, "command"), s, st,
			       f)) != 0)
		return rc;
	v = json_object_get(body, "instanceShapeName");
	if (v != NULL && !json_is_string(v))
		return shape_not_string(cfg, f);
	s->shape = json_string_value(v);
	if ((rc = get_uint(body, "instanceCount", 1, cfg->max_instances,
			   &s->has_count, &s->count, f)) != 0 ||
	    (rc = get_uint(body, "readyTimeoutSeconds",
			   DEPLOY_READY_TIMEOUT_MIN, DEPLOY_READY_TIMEOUT_MAX,
			   &s->has_ready_timeout, &s->ready_timeout_s, f)) != 0 ||
	    (rc = get_uint(body, "drainTimeoutSeconds", 0,
			   DEPLOY_DRAIN_TIMEOUT_MAX, &s->has_drain_timeout,
			   &s->drain_timeout_s, f)) != 0)
		return rc;
	v = json_object_get(body, "healthPath");
	if (v != NULL && !json_is_string(v))
		return fault_set(f, MDS_E_INVAL, "healthPath",
				 "healthPath: must be a path starting with "
				 "'/', without spaces");
	s->health_path = json_string_value(v);
	return body_env(json_object_get(body, "environment"), s, st, f);
}

/* Turns a PUT body into a deploy_change (the shape borrowed from body). */
static int body_change(const struct config *cfg, json_t *body,
		       struct deploy_change *c, struct fault *f)
{
	static const char *const known[] = { "instanceCount",
					     "instanceShapeName" };
	json_t *v;
	int rc;

	memset(c, 0, sizeof(*c));
	if (!json_is_object(body))
		return fault_set(f, MDS_E_INVAL, "", "the body must be a JSON "
				 "object");
	if ((rc = only_known(body, known, 2,
			     "unknown or read-only field; an update takes "
			     "instanceCount and instanceShapeName", f)) != 0)
		return rc;
	if (json_object_size(body) == 0)
		return fault_set(f, MDS_E_INVAL, "",
				 "give instanceCount and/or "
				 "instanceShapeName");
	if ((rc = get_uint(body, "instanceCount", 1, cfg->max_instances,
			   &c->has_count, &c->count, f)) != 0)
		return rc;
	v = json_object_get(body, "instanceShapeName");
	if (v != NULL && !json_is_string(v))
		return shape_not_string(cfg, f);
	c->shape = json_string_value(v);
	return 0;
}

/* ---- the routes ---- */

static void deployments_list(struct api_call *c)
{
	char name[128];
	bool by_name = http_query_get(c->req->query, "displayName", name,
				      sizeof(name)) == 0;

	api_reply(c, 200,
		  api_deploy_list_json(c->api->deploy, by_name ? name : NULL),
		  NULL);
}

static void with_wr_header(struct api_call *c, int status, json_t *o,
			   const char *wr_id)
{
	char hdr[128];

	snprintf(hdr, sizeof(hdr), "opc-work-request-id: %s\r\n", wr_id);
	api_reply(c, status, o, hdr);
}

/* Returns the deployment's JSON, or NULL with f filled. */
static json_t *deployment_json(struct deploy *d, const char *key,
			       struct fault *f)
{
	struct deploy_view *v = deploy_view_new(d, key, f);
	json_t *o;

	if (v == NULL)
		return NULL;
	o = api_deploy_view_json(v);
	deploy_view_free(v);
	return o;
}

/* Returns the work request's JSON, or NULL with f filled. */
static json_t *workreq_json(struct deploy *d, const char *id,
			    struct fault *f)
{
	struct deploy_workreq_view *v = deploy_workreq_view_new(d, id, f);
	json_t *o;

	if (v == NULL)
		return NULL;
	o = api_deploy_workreq_json(v);
	deploy_workreq_view_free(v);
	return o;
}

/* Takes "autoscale" out of a create body: NULL when absent or off, else a
 * new reference to it. */
static json_t *take_autoscale(json_t *body)
{
	json_t *as;

	if (!json_is_object(body))
		return NULL;
	as = json_object_get(body, "autoscale");
	if (as == NULL)
		return NULL;
	json_incref(as);
	json_object_del(body, "autoscale");
	if (json_is_false(as) || json_is_null(as)) {
		json_decref(as);
		return NULL;
	}
	return as;
}

/*
 * A create may ask for autoscaling ("autoscale": true or a policy): the
 * policy is checked before anything is created, and the alarms, topic and
 * subscription are set up right after the deployment.
 */
static void deployments_create(struct api_call *c)
{
	struct fault f;
	struct policy policy;
	struct deploy_spec spec;
	struct spec_strings st = { NULL, NULL };
	json_t *out, *chain = NULL, *as = take_autoscale(c->body);
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX], ignored_wr[DEPLOY_ID_MAX];
	int rc;

	rc = as != NULL ? api_autoscale_policy_parse(as, &policy, "autoscale",
						     &f)
			: 0;
	json_decref(as);
	if (rc == 0)
		rc = body_spec(c->api->config, c->body, &spec, &st, &f);
	if (rc == 0)
		rc = deploy_create(c->api->deploy, &spec, id, wr, &f);
	spec_strings_free(&st);
	if (rc != 0) {
		api_reply_fault(c, &f);
		return;
	}
	if (as != NULL &&
	    api_autoscale_setup(c->api, id, &policy, &chain, &f) != 0) {
		struct fault ignored;

		deploy_delete(c->api->deploy, id, ignored_wr, &ignored);
		api_reply_fault(c, &f);
		return;
	}
	out = deployment_json(c->api->deploy, id, &f);
	if (chain != NULL)
		json_object_set_new(out, "autoscale", chain);
	with_wr_header(c, 201, out, wr);
}

static void deployments_get(struct api_call *c)
{
	struct fault f;
	json_t *o = deployment_json(c->api->deploy, c->id, &f);

	api_reply_or_fault(c, o, &f);
}

static void deployments_update(struct api_call *c)
{
	struct fault f;
	struct deploy_change ch;
	char wr[DEPLOY_ID_MAX];

	if (body_change(c->api->config, c->body, &ch, &f) != 0 ||
	    deploy_change(c->api->deploy, c->id, &ch, wr, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	if (wr[0] == '\0') { /* nothing to change */
		deployments_get(c);
		return;
	}
	with_wr_header(c, 202, workreq_json(c->api->deploy, wr, &f), wr);
}

static void deployments_delete(struct api_call *c)
{
	struct fault f;
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX];

	if (deploy_resolve(c->api->deploy, c->id, id, &f) != 0 ||
	    deploy_delete(c->api->deploy, id, wr, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	autoscale_teardown(c->api->autoscale, id);
	with_wr_header(c, 202, workreq_json(c->api->deploy, wr, &f), wr);
}

/* POST /v1/deployments/actions/import: keep an existing platform target
 * (an OCI model deployment) as a deployment. Nothing is created on the
 * platform; the import's work request reads the target. */
struct import_spec {
	char backend[32];
	char ref[BACKEND_REF_MAX];
	char name[128];
};

static const struct field import_fields[] = {
	{ .name = "backend", .type = FIELD_STRING,
	  FIELD_AT(struct import_spec, backend), .required = true, .min = 1,
	  .doc = "the platform backend, \"oci\"" },
	{ .name = "ref", .type = FIELD_STRING,
	  FIELD_AT(struct import_spec, ref), .required = true, .min = 1,
	  .doc = "the target: a model deployment's OCID" },
	{ .name = "displayName", .type = FIELD_STRING,
	  FIELD_AT(struct import_spec, name), .min = 1,
	  .chars = FIELD_CHARS_NAME, .chars_desc = "A-Z a-z 0-9 _ -",
	  .doc = "its name in mdscale; default: oci- and the OCID's end" },
	FIELD_END
};

static void deployments_import(struct api_call *c)
{
	struct import_spec spec = { .backend = "" };
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX], region[64], why[256];
	size_t n;
	struct fault f;

	if (fields_parse(import_fields, c->body, &spec, "", NULL, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	/* An OCID of the wrong type or region is refused before anything
	 * is recorded or sent. */
	if (strcmp(spec.backend, "oci") == 0 &&
	    backend_oci_check_ref(spec.ref, NULL, region, why, sizeof(why)) !=
		    0 &&
	    !strstr(why, "names no region")) {
		fault_set(&f, MDS_E_INVAL, "ref", "%s", why);
		api_reply_fault(c, &f);
		return;
	}
	if (spec.name[0] == '\0') {
		n = strlen(spec.ref);
		snprintf(spec.name, sizeof(spec.name), "oci-%s",
			 spec.ref + (n > 12 ? n - 12 : 0));
	}
	if (deploy_import(c->api->deploy, spec.backend, spec.ref, spec.name,
			  id, wr, &f) != 0) {
		if (strcmp(f.field, "backend") == 0 &&
		    strcmp(spec.backend, "oci") == 0)
			fault_set(&f, MDS_E_INVAL, "backend",
				  "this daemon runs no oci backend: add an "
				  "\"oci\" object to its configuration");
		api_reply_fault(c, &f);
		return;
	}
	with_wr_header(c, 201, deployment_json(c->api->deploy, id, &f), wr);
}

static void workrequests_get(struct api_call *c)
{
	struct fault f;
	json_t *o = workreq_json(c->api->deploy, c->id, &f);

	api_reply_or_fault(c, o, &f);
}

static void workrequests_list(struct api_call *c)
{
	char dep[128];
	bool by_dep = http_query_get(c->req->query, "deploymentId", dep,
				     sizeof(dep)) == 0;

	api_reply(c, 200,
		  api_deploy_workreqs_json(c->api->deploy, by_dep ? dep : NULL),
		  NULL);
}

const struct api_route deploy_routes[] = {
	{ "GET", "/v1/deployments", deployments_list },
	{ "POST", "/v1/deployments", deployments_create },
	{ "POST", "/v1/deployments/actions/import", deployments_import },
	{ "GET", "/v1/deployments/*", deployments_get },
	{ "PUT", "/v1/deployments/*", deployments_update },
	{ "DELETE", "/v1/deployments/*", deployments_delete },
	{ "GET", "/v1/workrequests", workrequests_list },
	{ "GET", "/v1/workrequests/*", workrequests_get },
	{ NULL, NULL, NULL },
};
