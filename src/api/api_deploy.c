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
#include <strings.h>

#include "api/api.h"
#include "api/api_bodies.h"
#include "api/api_deploy.h"
#include "api/api_watch.h"
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
	return json_pack("{s:s, s:s, s:o, s:i, s:i, s:s, s:i, s:o, s:o, s:o}",
			 "id", in->id, "state", in->state, "address",
			 str_or_null(in->address), "port", in->port,
			 "pid", in->pid, "instanceShapeName", in->shape,
			 "restarts", in->restarts, "timeStarted",
			 jsonx_time(in->started_ms), "cgroup",
			 str_or_null(in->location), "lastExit",
			 str_or_null(in->last_exit));
}

static bool is_secret(const struct deploy_view *v, const char *name)
{
	for (size_t i = 0; i < v->nsecret; i++)
		if (strcmp(v->secret[i], name) == 0)
			return true;
	return false;
}

/* The environment as the API shows it: a secret value never leaves the
 * daemon, only the placeholder does. */
static json_t *env_json(const struct deploy_view *v)
{
	json_t *o = json_object();

	for (size_t i = 0; i < v->nenv; i++) {
		const char *eq = strchr(v->env[i], '=');
		char *k = xstrndup(v->env[i], (size_t)(eq - v->env[i]));

		if (is_secret(v, k))
			json_object_set_new(o, k, json_pack("{s:s, s:b}",
				"value", API_SECRET_PLACEHOLDER, "secret", 1));
		else
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
		      jsonx_command(v->shell, v->argv), "healthPath",
		      v->health_path,
		      "instanceShapeName", v->shape, "instanceCount",
		      (int)v->count, "environment", env_json(v),
		      "readyTimeoutSeconds", (int)v->ready_timeout_s,
		      "drainTimeoutSeconds", (int)v->drain_timeout_s,
		      "timeCreated", jsonx_time(v->created_ms), "timeUpdated",
		      jsonx_time(v->updated_ms), "currentWorkRequestId",
		      str_or_null(v->wr_id));
	json_object_set_new(o, "replayNonIdempotent",
			    json_boolean(v->replay_all));
	json_object_set_new(o, "endpoint", json_string(v->endpoint));
	if (v->uid != 0)
		json_object_set_new(o, "instanceUid",
				    json_integer((json_int_t)v->uid));
	json_object_set_new(o, "freeformTags", jsonx_pairs(v->tags, v->ntags));
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

/* ---- request bodies -> structs, through field tables ---- */

/* The command: a line for /bin/sh -c, or an argument vector. */
struct body_command {
	char **argv; /* new, NULL-terminated (xstrvfree) */
	size_t argc;
	bool shell;
};

struct body_env {
	char **env;    /* "NAME=value", new (xstrvfree) */
	char **secret; /* the NAMEs given as {"value", "secret": true}, new */
};

/* A PUT /v1/deployments/{id} body; a POST body holds one too. */
struct change_body {
	uint32_t count;
	char shape[SHAPE_NAME_MAX + 1];
	struct body_command command;
	struct body_env env;
	char health_path[DEPLOY_HEALTH_PATH_MAX + 1];
	uint32_t ready_timeout_s;
	uint32_t drain_timeout_s;
	char **tags; /* "KEY=value", new (xstrvfree) */
};

/* A POST /v1/deployments body: the fields a PUT may change, and those
 * fixed at creation. */
struct create_body {
	char name[DEPLOY_NAME_MAX + 1];
	struct change_body common;
	bool replay_all;
};

static int parse_command(const json_t *v, void *dst, const struct field *fd,
			 const char *path, struct fault *f)
{
	struct body_command *c = dst;
	char item[FIELD_PATH_MAX];
	size_t i;
	json_t *x;

	(void)fd;
	if (json_is_string(v)) {
		if (json_string_length(v) == 0 ||
		    json_string_length(v) > DEPLOY_COMMAND_MAX)
			return fault_set(f, MDS_E_INVAL, path,
					 "%s must be a string of length from 1 "
					 "to %d", path, DEPLOY_COMMAND_MAX);
		c->argv = xcalloc(2, sizeof(char *));
		c->argv[0] = xstrdup(json_string_value(v));
		c->argc = 1;
		c->shell = true;
		return 0;
	}
	if (!json_is_array(v))
		return fields_fault_type(f, path, "a string or an array of "
					 "strings");
	if (json_array_size(v) == 0 || json_array_size(v) > DEPLOY_ARGV_MAX)
		return fault_set(f, MDS_E_INVAL, path,
				 "%s must be an array of length from 1 to %d",
				 path, DEPLOY_ARGV_MAX);
	json_array_foreach(v, i, x) {
		snprintf(item, sizeof(item), "%s[%zu]", path, i);
		if (!json_is_string(x))
			return fields_fault_type(f, item, "a string");
		if (json_string_length(x) > DEPLOY_COMMAND_MAX)
			return fault_set(f, MDS_E_INVAL, item,
					 "%s must be a string of length from 0 "
					 "to %d", item, DEPLOY_COMMAND_MAX);
	}
	c->argv = jsonx_strv(v, DEPLOY_ARGV_MAX);
	c->argc = json_array_size(v);
	return 0;
}

/* An object of strings into "NAME=value" strings (new, NULL-terminated)
 * in *dst: at most max of them, names (noun in errors) non-empty and
 * without '='. */
static int parse_pairs(const json_t *v, char ***dst, size_t max,
		       const char *noun, const char *path, struct fault *f)
{
	char ***env = dst;
	char item[FIELD_PATH_MAX];
	const char *key;
	json_t *x;
	size_t n = 0;

	if (!json_is_object(v))
		return fields_fault_type(f, path, "an object of strings");
	if (json_object_size(v) > max)
		return fault_set(f, MDS_E_INVAL, path,
				 "%s must hold at most %zu entries", path,
				 max);
	json_object_foreach((json_t *)v, key, x) {
		fields_path(item, sizeof(item), path, key);
		if (key[0] == '\0' || strchr(key, '=') != NULL)
			return fault_set(f, MDS_E_INVAL, path,
					 "%s: a %s must be non-empty and "
					 "must not hold '='", item, noun);
		if (!json_is_string(x)) /* the field is the object */
			return fault_set(f, MDS_E_INVAL, path,
					 "%s must be a string", item);
	}
	*env = xcalloc(json_object_size(v) + 1, sizeof(char *));
	json_object_foreach((json_t *)v, key, x)
		(*env)[n++] = xasprintf("%s=%s", key, json_string_value(x));
	return 0;
}

/* One variable given as an object: {"value": "...", "secret": true}. The
 * field blamed is the environment (path), as for a bad string; item names
 * the variable in the message. */
static int check_env_object(const json_t *x, const char *path,
			    const char *item, struct fault *f)
{
	const char *k;
	json_t *m;

	if (!json_is_object(x))
		return fault_set(f, MDS_E_INVAL, path,
				 "%s must be a string or an object "
				 "{\"value\", \"secret\"}", item);
	json_object_foreach((json_t *)x, k, m) {
		if (strcmp(k, "value") != 0 && strcmp(k, "secret") != 0)
			return fault_set(f, MDS_E_INVAL, path,
					 "unknown field '%s.%s'", item, k);
	}
	if (!json_is_string(json_object_get(x, "value")))
		return fault_set(f, MDS_E_INVAL, path,
				 "%s.value must be a string", item);
	m = json_object_get(x, "secret");
	if (m != NULL && !json_is_boolean(m))
		return fault_set(f, MDS_E_INVAL, path,
				 "%s.secret must be true or false", item);
	return 0;
}

static int parse_env(const json_t *v, void *dst, const struct field *fd,
		     const char *path, struct fault *f)
{
	struct body_env *env = dst;
	char item[FIELD_PATH_MAX];
	const char *key;
	json_t *x;
	size_t n = 0, ns = 0;

	(void)fd;
	if (!json_is_object(v))
		return fields_fault_type(f, path, "an object of strings");
	if (json_object_size(v) > DEPLOY_ENV_MAX)
		return fault_set(f, MDS_E_INVAL, path,
				 "%s must hold at most %d variables", path,
				 DEPLOY_ENV_MAX);
	json_object_foreach((json_t *)v, key, x) {
		fields_path(item, sizeof(item), path, key);
		if (key[0] == '\0' || strchr(key, '=') != NULL)
			return fault_set(f, MDS_E_INVAL, path,
					 "%s: a name must be non-empty and "
					 "must not hold '='", item);
		if (json_is_string(x))
			continue;
		if (check_env_object(x, path, item, f) != 0)
			return MDS_E_INVAL;
	}
	env->env = xcalloc(json_object_size(v) + 1, sizeof(char *));
	env->secret = xcalloc(json_object_size(v) + 1, sizeof(char *));
	json_object_foreach((json_t *)v, key, x) {
		const json_t *val = json_is_string(x)
			? x : json_object_get(x, "value");

		env->env[n++] = xasprintf("%s=%s", key, json_string_value(val));
		if (json_is_true(json_object_get(x, "secret")))
			env->secret[ns++] = xstrdup(key);
	}
	return 0;
}

/* Freeform tags; the deployments module checks OCI's limits. */
static int parse_tags(const json_t *v, void *dst, const struct field *fd,
		      const char *path, struct fault *f)
{
	(void)fd;
	return parse_pairs(v, dst, DEPLOY_TAGS_MAX, "key", path, f);
}

static size_t strv_len(char *const *v)
{
	size_t n = 0;

	while (v != NULL && v[n] != NULL)
		n++;
	return n;
}

#define NAME_CHARS                                                           \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

static const struct field create_fields[] = {
	{ .name = "displayName", .type = FIELD_STRING,
	  FIELD_AT(struct create_body, name), .required = true, .min = 1,
	  .max = DEPLOY_NAME_MAX, .chars = NAME_CHARS,
	  .chars_desc = "A-Z a-z 0-9 . _ -",
	  .doc = "unique among live deployments; not starting with md-" },
	{ .name = "command", .type = FIELD_CUSTOM,
	  FIELD_AT(struct create_body, common.command), .required = true,
	  .parse = parse_command,
	  .doc = "a string or an array of strings" },
	{ .name = "instanceShapeName", .type = FIELD_STRING,
	  FIELD_AT(struct create_body, common.shape), .min = 1,
	  .doc = "a shape of the ladder; default from the config" },
	{ .name = "instanceCount", .type = FIELD_INTEGER,
	  FIELD_AT(struct create_body, common.count), .min = 0, .max = 256,
	  .doc = "default 1; at most the configured maximum" },
	{ .name = "healthPath", .type = FIELD_STRING,
	  FIELD_AT(struct create_body, common.health_path), .min = 1,
	  .doc = "default /health; starts with /" },
	{ .name = "environment", .type = FIELD_CUSTOM,
	  FIELD_AT(struct create_body, common.env), .parse = parse_env,
	  .doc = "an object of strings, or of {\"value\", \"secret\"}" },
	{ .name = "readyTimeoutSeconds", .type = FIELD_INTEGER,
	  FIELD_AT(struct create_body, common.ready_timeout_s),
	  .min = DEPLOY_READY_TIMEOUT_MIN, .max = DEPLOY_READY_TIMEOUT_MAX,
	  .doc = "default from the config" },
	{ .name = "drainTimeoutSeconds", .type = FIELD_INTEGER,
	  FIELD_AT(struct create_body, common.drain_timeout_s), .min = 0,
	  .max = DEPLOY_DRAIN_TIMEOUT_MAX, .doc = "default from the config" },
	{ .name = "replayNonIdempotent", .type = FIELD_BOOL,
	  FIELD_AT(struct create_body, replay_all),
	  .doc = "default false: when a kept-alive connection to an instance "
		 "dies before answering, the gateway replays only what was "
		 "not sent or is idempotent (never a POST), as nginx; true "
		 "replays POST and PATCH too" },
	{ .name = "freeformTags", .type = FIELD_CUSTOM,
	  FIELD_AT(struct create_body, common.tags), .parse = parse_tags,
	  .doc = "an object of strings: at most 64, keys of 1–100 characters "
		 "without . = or white space, values of at most 256" },
	FIELD_END
};

static const struct field change_fields[] = {
	{ .name = "instanceCount", .type = FIELD_INTEGER,
	  FIELD_AT(struct change_body, count), .min = 0, .max = 256,
	  .doc = "at most the configured maximum" },
	{ .name = "instanceShapeName", .type = FIELD_STRING,
	  FIELD_AT(struct change_body, shape), .min = 1,
	  .doc = "a shape of the ladder" },
	{ .name = "command", .type = FIELD_CUSTOM,
	  FIELD_AT(struct change_body, command), .parse = parse_command,
	  .doc = "a string or an array of strings; replaces every instance" },
	{ .name = "environment", .type = FIELD_CUSTOM,
	  FIELD_AT(struct change_body, env), .parse = parse_env,
	  .doc = "an object of strings, or of {\"value\", \"secret\"}, "
		 "replacing the whole environment; replaces every instance" },
	{ .name = "healthPath", .type = FIELD_STRING,
	  FIELD_AT(struct change_body, health_path), .min = 1,
	  .doc = "starts with /; replaces every instance" },
	{ .name = "readyTimeoutSeconds", .type = FIELD_INTEGER,
	  FIELD_AT(struct change_body, ready_timeout_s),
	  .min = DEPLOY_READY_TIMEOUT_MIN, .max = DEPLOY_READY_TIMEOUT_MAX,
	  .doc = "changes at once" },
	{ .name = "drainTimeoutSeconds", .type = FIELD_INTEGER,
	  FIELD_AT(struct change_body, drain_timeout_s), .min = 0,
	  .max = DEPLOY_DRAIN_TIMEOUT_MAX, .doc = "changes at once" },
	{ .name = "freeformTags", .type = FIELD_CUSTOM,
	  FIELD_AT(struct change_body, tags), .parse = parse_tags,
	  .doc = "replaces all the tags; changes at once" },
	FIELD_END
};

const struct field *api_deployment_fields(void)
{
	return create_fields;
}

const struct field *api_deployment_update_fields(void)
{
	return change_fields;
}

static void change_body_free(struct change_body *b)
{
	xstrvfree(b->command.argv);
	xstrvfree(b->env.env);
	xstrvfree(b->env.secret);
	xstrvfree(b->tags);
	b->command.argv = NULL;
	b->env.env = NULL;
	b->env.secret = NULL;
	b->tags = NULL;
}

static void create_body_free(struct create_body *b)
{
	change_body_free(&b->common);
}

/* Parses a request body into b (size bytes, zeroed first) by table,
 * setting seen as fields_parse() does. */
static int parse_body(const struct field *table, json_t *body, void *b,
		      size_t size, uint64_t *seen, struct fault *f)
{
	memset(b, 0, size);
	*seen = 0;
	if (!json_is_object(body))
		return fields_fault_type(f, "", "a JSON object");
	return fields_parse(table, body, b, "", seen, f);
}

/*
 * Points the members that struct deploy_spec and struct deploy_change
 * share (the same names, the same meaning) at the change_body b, whose
 * fields were parsed by table into the mask seen. One copy for both
 * structs, which C can only write as a macro.
 */
#define BORROW_CHANGE_BODY(out, b, table, seen)                              \
	do {                                                                 \
		(out)->argv = (const char *const *)(b)->command.argv;        \
		(out)->argc = (b)->command.argc;                             \
		(out)->shell = (b)->command.shell;                           \
		(out)->env = (const char *const *)(b)->env.env;              \
		(out)->nenv = strv_len((b)->env.env);                        \
		(out)->secret = (const char *const *)(b)->env.secret;        \
		(out)->nsecret = strv_len((b)->env.secret);                  \
		if (fields_given(table, seen, "instanceShapeName"))          \
			(out)->shape = (b)->shape;                           \
		(out)->has_count =                                           \
			fields_given(table, seen, "instanceCount");          \
		(out)->count = (b)->count;                                   \
		if (fields_given(table, seen, "healthPath"))                 \
			(out)->health_path = (b)->health_path;               \
		(out)->has_ready_timeout =                                   \
			fields_given(table, seen, "readyTimeoutSeconds");    \
		(out)->ready_timeout_s = (b)->ready_timeout_s;               \
		(out)->has_drain_timeout =                                   \
			fields_given(table, seen, "drainTimeoutSeconds");    \
		(out)->drain_timeout_s = (b)->drain_timeout_s;               \
		(out)->tags = (const char *const *)(b)->tags;                \
		(out)->ntags = strv_len((b)->tags);                          \
	} while (0)

/* Turns a POST body into a deploy_spec that borrows from b (which the
 * caller frees with create_body_free()). */
static int body_spec(json_t *body, struct create_body *b,
		     struct deploy_spec *s, struct fault *f)
{
	uint64_t seen;
	int rc;

	memset(s, 0, sizeof(*s));
	rc = parse_body(create_fields, body, b, sizeof(*b), &seen, f);
	if (rc != 0)
		return rc;
	s->name = b->name;
	s->replay_all = b->replay_all;
	BORROW_CHANGE_BODY(s, &b->common, create_fields, seen);
	return 0;
}

/* Turns a PUT body into a deploy_change that borrows from b (which the
 * caller frees with change_body_free()). */
static int body_change(json_t *body, struct change_body *b,
		       struct deploy_change *c, struct fault *f)
{
	uint64_t seen;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = parse_body(change_fields, body, b, sizeof(*b), &seen, f);
	if (rc != 0)
		return rc;
	if (seen == 0)
		return fault_set(f, MDS_E_INVAL, "",
				 "give at least one field to change: "
				 "instanceCount, instanceShapeName, command, "
				 "environment, healthPath, readyTimeoutSeconds, "
				 "drainTimeoutSeconds or freeformTags");
	BORROW_CHANGE_BODY(c, b, change_fields, seen);
	c->has_env = b->env.env != NULL;
	c->has_tags = b->tags != NULL;
	return 0;
}

#undef BORROW_CHANGE_BODY

/* ---- the routes ---- */

/* What GET /v1/deployments keeps and how it orders them. */
struct list_query {
	char name[DEPLOY_NAME_MAX + 1];
	char state[32];
	char tag[DEPLOY_TAG_KEY_MAX + DEPLOY_TAG_VALUE_MAX + 2]; /* KEY=VALUE */
	const char *sort_key;  /* a field of the answer */
	bool desc;
};

/* The fields a list sorts by, besides timeCreated (creation order). */
static const char *const sort_keys[] = { "displayName", "lifecycleState",
					 "instanceCount" };

/* Parses displayName, lifecycleState, tag, sortBy and sortOrder. Returns
 * 0, or MDS_E_INVAL with f filled. */
static int list_query_parse(struct api_call *c, struct list_query *q,
			    struct fault *f)
{
	char by[32], order[8];

	memset(q, 0, sizeof(*q));
	if (!api_query_param(c, "displayName", q->name, sizeof(q->name), f) ||
	    !api_query_param(c, "lifecycleState", q->state, sizeof(q->state),
			     f) ||
	    !api_query_param(c, "tag", q->tag, sizeof(q->tag), f) ||
	    !api_query_param(c, "sortBy", by, sizeof(by), f) ||
	    !api_query_param(c, "sortOrder", order, sizeof(order), f))
		return MDS_E_INVAL;
	if (q->tag[0] != '\0' &&
	    (strchr(q->tag, '=') == NULL || q->tag[0] == '='))
		return fault_set(f, MDS_E_INVAL, "tag",
				 "tag must be KEY=VALUE");
	for (size_t i = 0; i < sizeof(sort_keys) / sizeof(sort_keys[0]); i++)
		if (strcmp(by, sort_keys[i]) == 0)
			q->sort_key = sort_keys[i];
	if (q->sort_key == NULL && by[0] != '\0' &&
	    strcmp(by, "timeCreated") != 0) /* the default: creation order */
		return fault_set(f, MDS_E_INVAL, "sortBy",
				 "sortBy must be timeCreated, displayName, "
				 "lifecycleState or instanceCount, not '%s'",
				 by);
	if (order[0] != '\0' && strcasecmp(order, "ASC") != 0 &&
	    strcasecmp(order, "DESC") != 0)
		return fault_set(f, MDS_E_INVAL, "sortOrder",
				 "sortOrder must be ASC or DESC");
	q->desc = strcasecmp(order, "DESC") == 0;
	return 0;
}

/* Whether deployment o passes the filters of q. */
static bool list_keeps(const struct list_query *q, json_t *o)
{
	const char *eq = strchr(q->tag, '=');
	json_t *tags = json_object_get(o, "freeformTags");

	if (q->name[0] != '\0' &&
	    strcmp(q->name, json_string_value(json_object_get(
				    o, "displayName"))) != 0)
		return false;
	if (q->state[0] != '\0' &&
	    strcasecmp(q->state, json_string_value(json_object_get(
					 o, "lifecycleState"))) != 0)
		return false;
	if (eq != NULL) {
		char *key = xstrndup(q->tag, (size_t)(eq - q->tag));
		const char *v = json_string_value(json_object_get(tags, key));

		free(key);
		if (v == NULL || strcmp(v, eq + 1) != 0)
			return false;
	}
	return true;
}

/* The order of two items by sort key k: strings or integers. */
static int item_cmp(json_t *a, json_t *b, const char *k)
{
	json_t *x = json_object_get(a, k), *y = json_object_get(b, k);

	if (json_is_integer(x) && json_is_integer(y))
		return (json_integer_value(x) > json_integer_value(y)) -
		       (json_integer_value(x) < json_integer_value(y));
	return strcmp(json_is_string(x) ? json_string_value(x) : "",
		      json_is_string(y) ? json_string_value(y) : "");
}

/* Sorts items in place by q (stable: insertion sort, creation order for
 * ties; a list holds at most maxDeployments items). */
static void list_sort(const struct list_query *q, json_t *items)
{
	size_t n = json_array_size(items);
	json_t **v = xcalloc(n + 1, sizeof(*v));

	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(items, i));
	for (size_t i = 1; i < n; i++) {
		json_t *x = v[i];
		size_t j = i;

		while (j > 0) {
			int c = q->sort_key
					? item_cmp(v[j - 1], x, q->sort_key)
					: 0;

			if ((q->desc ? -c : c) <= 0)
				break;
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
	if (q->sort_key == NULL && q->desc)
		for (size_t i = 0; i < n / 2; i++) {
			json_t *t = v[i];

			v[i] = v[n - 1 - i];
			v[n - 1 - i] = t;
		}
	json_array_clear(items);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, v[i]);
	free(v);
}

/* Answers the list of q (version v), filtered and sorted. */
static void list_reply(struct api_call *c, const struct list_query *q)
{
	json_t *all, *items, *kept = json_array(), *x;
	size_t i;

	all = api_deploy_list_json(c->api->deploy,
				   q->name[0] ? q->name : NULL);
	items = json_object_get(all, "items");
	json_array_foreach(items, i, x) {
		if (list_keeps(q, x))
			json_array_append(kept, x);
	}
	list_sort(q, kept);
	json_object_set_new(all, "items", kept);
	json_object_set_new(all, "resourceVersion",
			    json_integer((json_int_t)deploy_version(
				    c->api->deploy)));
	api_reply(c, 200, all, NULL);
}

#define WATCH_TIMEOUT_S_DEFAULT 30
#define WATCH_TIMEOUT_S_MAX 300

/* A long-poll on the list, waiting for the version to move. */
struct list_watch {
	struct api_call call; /* a copy; req stays valid until answered */
	struct list_query q;
	struct deploy_watch *w;
};

static void watch_fire(void *arg)
{
	struct list_watch *lw = arg;

	http_req_on_close(lw->call.req, NULL, NULL);
	if (api_token_still_valid(&lw->call))
		list_reply(&lw->call, &lw->q);
	free(lw);
}

static void watch_closed(void *arg)
{
	struct list_watch *lw = arg;

	/* The client went away: nobody reads the answer, which releases
	 * the request. */
	deploy_unwatch(lw->call.api->deploy, lw->w);
	api_reply_error(&lw->call, 503, "ServiceUnavailable", NULL,
			"the watch ended");
	free(lw);
}

/*
 * Reads the watch parameters (api_watch_parse()). Returns 1 when the
 * answer must wait (version N is the current one) with *timeout_ms set, 0
 * to answer at once, or MDS_E_INVAL with f filled.
 */
static int watch_parse(struct api_call *c, uint32_t *timeout_ms,
		       struct fault *f)
{
	uint64_t since = 0;
	int rc = api_watch_parse(c, &since, timeout_ms, f);

	if (rc != 1)
		return rc;
	return since == deploy_version(c->api->deploy) ? 1 : 0;
}

/*
 * GET /v1/deployments: the live deployments, filtered by displayName,
 * lifecycleState and tag=KEY=VALUE, in creation order or sorted by sortBy
 * (timeCreated, displayName, lifecycleState, instanceCount) and sortOrder
 * (ASC, DESC), with the version they are at. With watch=true and the
 * resourceVersion of an earlier answer, the answer waits until something
 * changes (or timeoutSeconds pass): a long-poll.
 */
static void deployments_list(struct api_call *c)
{
	struct list_query q;
	struct list_watch *lw;
	struct fault f;
	uint32_t timeout_ms = 0;
	int rc = list_query_parse(c, &q, &f);

	if (rc == 0)
		rc = watch_parse(c, &timeout_ms, &f);
	if (rc < 0) {
		api_reply_fault(c, &f);
		return;
	}
	if (rc == 0) {
		list_reply(c, &q);
		return;
	}
	lw = xcalloc(1, sizeof(*lw));
	lw->call = *c;
	lw->call.body = NULL;
	lw->q = q;
	lw->w = deploy_watch(c->api->deploy, deploy_version(c->api->deploy),
			     timeout_ms, watch_fire, lw);
	if (lw->w == NULL) {
		free(lw);
		api_reply_error(c, 503, "TooManyRequests", NULL,
				"too many watches wait at once; try again");
		return;
	}
	http_req_on_close(c->req, watch_closed, lw);
}

/* Whether the request asks only for its checks (dryRun=true): nothing
 * changes, the answer is 200 {"dryRun": true} or the refusal. */
static bool dry_run(struct api_call *c)
{
	char v[8];

	return http_query_get(c->req->query, "dryRun", v, sizeof(v)) == 0 &&
	       strcmp(v, "true") == 0;
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

json_t *api_deploy_workreq_by_id(struct deploy *d, const char *id,
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

int api_deployment_body_check(const json_t *body, bool update,
			      struct fault *f)
{
	json_t *copy = json_copy((json_t *)body);
	json_t *as = NULL;
	int rc = 0;

	if (!update) {
		struct create_body b;
		struct deploy_spec s;
		struct policy p;

		as = take_autoscale(copy);
		if (as != NULL)
			rc = api_autoscale_policy_parse(as, &p, "autoscale",
							f);
		memset(&b, 0, sizeof(b));
		if (rc == 0)
			rc = body_spec(copy, &b, &s, f);
		create_body_free(&b);
	} else {
		struct change_body b;
		struct deploy_change c;

		memset(&b, 0, sizeof(b));
		rc = body_change(copy, &b, &c, f);
		change_body_free(&b);
	}
	json_decref(as);
	json_decref(copy);
	return rc;
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
	struct create_body body;
	json_t *out, *chain = NULL, *as = take_autoscale(c->body);
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX];
	int rc;

	rc = as != NULL ? api_autoscale_policy_parse(as, &policy, "autoscale",
						     &f)
			: 0;
	json_decref(as);
	memset(&body, 0, sizeof(body));
	if (rc == 0)
		rc = body_spec(c->body, &body, &spec, &f);
	if (rc == 0 && dry_run(c)) {
		rc = deploy_check(c->api->deploy, &spec, &f);
		create_body_free(&body);
		if (rc != 0)
			api_reply_fault(c, &f);
		else
			api_reply(c, 200, json_pack("{s:b}", "dryRun", 1),
				  NULL);
		return;
	}
	/* With a setting, the deployment and its chain are made together or
	 * not at all. */
	if (rc == 0)
		rc = as != NULL ? api_autoscale_create_deployment(
					  c->api, &spec, &policy, id, wr,
					  &chain, &f)
				: deploy_create(c->api->deploy, &spec, id, wr,
						&f);
	create_body_free(&body);
	if (rc != 0) {
		api_reply_fault(c, &f);
		return;
	}
	out = deployment_json(c->api->deploy, id, &f);
	if (chain != NULL)
		json_object_set_new(out, "autoscale", chain);
	with_wr_header(c, 201, out, wr);
}

/* The body of an import. */
struct import_body {
	char backend[32];
	char ref[BACKEND_REF_MAX];
	char name[DEPLOY_NAME_MAX + 1];
};

static const struct field import_fields[] = {
	{ .name = "backend", .type = FIELD_STRING,
	  FIELD_AT(struct import_body, backend), .required = true, .min = 1,
	  .doc = "a backend whose platform runs it: kubernetes, oci" },
	{ .name = "ref", .type = FIELD_STRING,
	  FIELD_AT(struct import_body, ref), .required = true, .min = 1,
	  .doc = "the platform's name for it: NAMESPACE/NAME, an OCID" },
	{ .name = "displayName", .type = FIELD_STRING,
	  FIELD_AT(struct import_body, name), .min = 1,
	  .max = DEPLOY_NAME_MAX, .chars = NAME_CHARS,
	  .chars_desc = "A-Z a-z 0-9 . _ -",
	  .doc = "default: ref's part after its last /" },
	FIELD_END
};

/*
 * An oci ref must be a model deployment's OCID of a known region, checked
 * before anything is recorded; its default name is "oci-" and the OCID's
 * end (an OCID is longer than a name may be). Returns 0 or fills f.
 */
static int import_oci_ref(const struct import_body *b, char *name,
			  size_t namesz, struct fault *f)
{
	char region[64], why[256];
	size_t n = strlen(b->ref);

	if (backend_oci_check_ref(b->ref, NULL, region, why, sizeof(why)) !=
		    0 &&
	    strstr(why, "names no region") == NULL)
		return fault_set(f, MDS_E_INVAL, "ref", "%s", why);
	snprintf(name, namesz, "oci-%s", b->ref + (n > 12 ? n - 12 : 0));
	return 0;
}

/*
 * POST /v1/deployments/import {"backend", "ref", "displayName"?}: takes a
 * deployment that lives on a platform (a Kubernetes Deployment
 * NAMESPACE/NAME, an OCI model deployment's OCID) under mdscale's care.
 */
/* Reads an import's body into b; *name gets the deployment's name (in b
 * or oci_name). Returns 0 or fills f. */
static int import_read(const json_t *body, struct import_body *b,
		       char *oci_name, size_t oci_namesz, const char **name,
		       struct fault *f)
{
	uint64_t seen = 0;
	int rc;

	memset(b, 0, sizeof(*b));
	rc = json_is_object(body)
		     ? fields_parse(import_fields, body, b, "", &seen, f)
		     : fields_fault_type(f, "", "a JSON object");
	if (rc != 0)
		return rc;
	*name = strrchr(b->ref, '/') != NULL ? strrchr(b->ref, '/') + 1
					     : b->ref;
	if (strcmp(b->backend, "oci") == 0) {
		rc = import_oci_ref(b, oci_name, oci_namesz, f);
		*name = oci_name;
	}
	if (fields_given(import_fields, seen, "displayName"))
		*name = b->name;
	return rc;
}

int api_deployment_import_check(const json_t *body, struct fault *f)
{
	struct import_body b;
	char oci_name[32];
	const char *name;

	return import_read(body, &b, oci_name, sizeof(oci_name), &name, f);
}

static void deployments_import(struct api_call *c)
{
	struct import_body b;
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX], oci_name[32];
	const char *name;
	struct fault f;
	int rc;

	rc = import_read(c->body, &b, oci_name, sizeof(oci_name), &name, &f);
	if (rc == 0) {
		rc = deploy_import(c->api->deploy, b.backend, b.ref, name, id,
				   wr, &f);
		if (rc != 0 && strcmp(f.field, "backend") == 0 &&
		    strcmp(b.backend, "oci") == 0)
			fault_set(&f, MDS_E_INVAL, "backend",
				  "this daemon runs no oci backend: add an "
				  "\"oci\" object to its configuration");
	}
	if (rc != 0) {
		api_reply_fault(c, &f);
		return;
	}
	with_wr_header(c, 201, deployment_json(c->api->deploy, id, &f), wr);
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
	struct change_body body;
	char wr[DEPLOY_ID_MAX];

	int rc = body_change(c->body, &body, &ch, &f);

	if (rc == 0 && dry_run(c)) {
		rc = deploy_change_check(c->api->deploy, c->id, &ch, &f);
		change_body_free(&body);
		if (rc != 0)
			api_reply_fault(c, &f);
		else
			api_reply(c, 200, json_pack("{s:b}", "dryRun", 1),
				  NULL);
		return;
	}
	if (rc == 0)
		rc = deploy_change(c->api->deploy, c->id, &ch, wr, &f);
	change_body_free(&body);
	if (rc != 0) {
		api_reply_fault(c, &f);
		return;
	}
	if (wr[0] == '\0') { /* nothing to change */
		deployments_get(c);
		return;
	}
	with_wr_header(c, 202, api_deploy_workreq_by_id(c->api->deploy, wr, &f),
		       wr);
}

static void deployments_delete(struct api_call *c)
{
	struct fault f;
	struct autoscale_removed gone;
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX];
	json_t *o;

	if (api_autoscale_module(c) == NULL)
		return;
	/* Only what mdscale made for the deployment goes with it (the
	 * response says what), in the deletion's own transaction: a delete
	 * the store refuses (a full device) changes nothing. The deletion is
	 * checked first, so that a conflict is answered as one. */
	if (deploy_resolve(c->api->deploy, c->id, id, &f) != 0 ||
	    deploy_delete_check(c->api->deploy, id, &f) != 0 ||
	    autoscale_delete_deployment(c->api->autoscale, id, wr, &gone,
					&f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	o = api_deploy_workreq_by_id(c->api->deploy, wr, &f);
	if (json_is_object(o))
		json_object_set_new(o, "deleted", api_autoscale_removed(&gone));
	with_wr_header(c, 202, o, wr);
}

const struct api_route deploy_routes[] = {
	{ "GET", "/v1/deployments", deployments_list },
	{ "POST", "/v1/deployments", deployments_create },
	{ "POST", "/v1/deployments/import", deployments_import },
	{ "GET", "/v1/deployments/*", deployments_get },
	{ "PUT", "/v1/deployments/*", deployments_update },
	{ "DELETE", "/v1/deployments/*", deployments_delete },
	{ NULL, NULL, NULL },
};
