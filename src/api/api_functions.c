/* api_functions.c - the REST routes of functions. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_watch.h"
#include "api/fields.h"
#include "api/jsonx.h"
#include "notify/functions.h"
#include "util/err.h"
#include "util/xalloc.h"

/* An invocation waiting for its function: the request is answered from
 * the done callback. */
struct invocation {
	struct api *api;
	struct http_req *req;
};

static const struct field function_fields[] = {
	{ .name = "name", .type = FIELD_STRING,
	  FIELD_AT(struct functions_spec, name), .required = true, .min = 1,
	  .max = FUNCTIONS_NAME_MAX,
	  .chars = "abcdefghijklmnopqrstuvwxyz0123456789-",
	  .chars_desc = "a-z 0-9 -", .doc = "unique among functions" },
	{ .name = "command", .type = FIELD_STRV,
	  FIELD_AT(struct functions_spec, command), .required = true,
	  .min = 1, .max = FUNCTIONS_ARGV_MAX, .item_max = FUNCTIONS_ARG_MAX,
	  .doc = "the program and its arguments, run without a shell" },
	{ .name = "description", .type = FIELD_STRING,
	  FIELD_AT(struct functions_spec, description),
	  .max = FUNCTIONS_DESC_MAX, .doc = "free text" },
	{ .name = "timeoutSeconds", .type = FIELD_INTEGER,
	  FIELD_AT(struct functions_spec, timeout_s), .min = 1,
	  .max = FUNCTIONS_TIMEOUT_MAX_S, .doc = "per invocation" },
	FIELD_END
};

/* PUT /v1/functions/{name}: what may change (absent: unchanged). */
struct function_update {
	char **command;
	char description[FUNCTIONS_DESC_MAX + 1];
	uint32_t timeout_s;
};

static const struct field function_update_fields[] = {
	{ .name = "command", .type = FIELD_STRV,
	  FIELD_AT(struct function_update, command), .min = 1,
	  .max = FUNCTIONS_ARGV_MAX, .item_max = FUNCTIONS_ARG_MAX,
	  .doc = "the program and its arguments, for the next invocations" },
	{ .name = "description", .type = FIELD_STRING,
	  FIELD_AT(struct function_update, description),
	  .max = FUNCTIONS_DESC_MAX, .doc = "free text" },
	{ .name = "timeoutSeconds", .type = FIELD_INTEGER,
	  FIELD_AT(struct function_update, timeout_s), .min = 1,
	  .max = FUNCTIONS_TIMEOUT_MAX_S, .doc = "per invocation" },
	FIELD_END
};

const struct field *api_function_fields(void)
{
	return function_fields;
}

const struct field *api_function_update_fields(void)
{
	return function_update_fields;
}

static json_t *function_json(const struct functions_info *fn)
{
	json_t *o = json_pack("{s:s, s:s, s:b}", "name", fn->name,
			      "description", fn->description, "builtin",
			      fn->builtin);

	if (!fn->builtin) {
		json_object_set_new(o, "command", jsonx_strv_json(fn->command));
		json_object_set_new(o, "timeoutSeconds",
				    json_integer(fn->timeout_s));
		json_object_set_new(o, "timeCreated",
				    jsonx_time(fn->created_ms));
		if (fn->uid != 0)
			json_object_set_new(o, "runUid",
					    json_integer((json_int_t)fn->uid));
	}
	json_object_set_new(o, "invocations",
			    json_integer((json_int_t)fn->invocations));
	json_object_set_new(o, "failures",
			    json_integer((json_int_t)fn->failures));
	json_object_set_new(o, "lastError",
			    fn->last_error ? json_string(fn->last_error)
					   : json_null());
	json_object_set_new(o, "timeLastInvoked",
			    jsonx_time(fn->last_invoked_ms));
	return o;
}

static void add_function(void *arg, const struct functions_info *fn)
{
	json_array_append_new(arg, function_json(fn));
}

static bool available(struct api_call *c)
{
	if (c->api->functions != NULL)
		return true;
	api_reply_error(c, 503, "ServiceUnavailable", NULL,
			"the daemon is shutting down");
	return false;
}

/* Built-in functions first, then user functions: GET /v1/functions
 * filters and sorts them (api_watch.h). */
static json_t *render_functions(struct api_call *c, struct fault *f)
{
	json_t *items;

	if (c->api->functions == NULL) {
		fault_set(f, MDS_E_UNAVAIL, "", "the daemon is shutting down");
		return NULL;
	}
	items = json_array();
	functions_each(c->api->functions, add_function, items);
	return json_pack("{s:o}", "items", items);
}

static const char *const function_sort_keys[] = { "name", "invocations",
						  "failures", NULL };
static const struct api_list_spec function_list = {
	.name_param = "name", .name_field = "name",
	.sort_keys = function_sort_keys,
};

static void functions_list_route(struct api_call *c)
{
	api_list_answer(c, &function_list, render_functions);
}

static void functions_create_route(struct api_call *c)
{
	struct functions_spec spec = { .name = "" };
	struct functions_info fn;
	struct fault f;

	if (!available(c))
		return;
	spec.check_only = api_dry_run(c);
	if (fields_parse(function_fields, c->body, &spec, "", NULL, &f) != 0 ||
	    functions_create(c->api->functions, &spec, &fn, &f) != 0) {
		fields_free(function_fields, &spec);
		api_reply_fault(c, &f);
		return;
	}
	fields_free(function_fields, &spec);
	if (spec.check_only)
		api_reply_dry_run(c);
	else
		api_reply(c, 201, function_json(&fn), NULL);
}

static json_t *render_function(struct api_call *c, struct fault *f)
{
	struct functions_info fn;

	if (c->api->functions == NULL) {
		fault_set(f, MDS_E_UNAVAIL, "", "the daemon is shutting down");
		return NULL;
	}
	if (functions_get(c->api->functions, c->id, &fn, f) != 0)
		return NULL;
	return function_json(&fn);
}

static void functions_get_route(struct api_call *c)
{
	api_item_answer(c, render_function);
}

/* PUT: with dryRun=true, only checked (api_watch.h). */
static void functions_update_route(struct api_call *c)
{
	struct function_update u = { .description = "" };
	struct functions_spec spec = { .name = "" };
	struct functions_info fn;
	uint64_t seen = 0;
	struct fault f;
	int rc;

	if (!available(c))
		return;
	if (!json_is_object(c->body) || json_object_size(c->body) == 0) {
		api_reply_error(c, 400, "InvalidParameter", NULL,
				"give command, description or "
				"timeoutSeconds");
		return;
	}
	if (strlen(c->id) >= sizeof(spec.name)) { /* longer than any name */
		api_reply_error(c, 404, "NotFound", NULL, "no such function");
		return;
	}
	rc = fields_parse(function_update_fields, c->body, &u, "", &seen, &f);
	if (rc == 0) {
		memcpy(spec.name, c->id, strlen(c->id) + 1);
		spec.command = u.command;
		spec.timeout_s = u.timeout_s;
		spec.check_only = api_dry_run(c);
		rc = functions_update(c->api->functions, &spec,
				      fields_given(function_update_fields,
						   seen, "description")
					      ? u.description : NULL,
				      &fn, &f);
	}
	if (rc != 0)
		api_reply_fault(c, &f);
	else if (spec.check_only)
		api_reply_dry_run(c);
	else
		api_reply(c, 200, function_json(&fn), NULL);
	fields_free(function_update_fields, &u);
}

static void functions_delete_route(struct api_call *c)
{
	struct fault f;

	if (!available(c))
		return;
	if (functions_delete(c->api->functions, c->id, &f) != 0)
		api_reply_fault(c, &f);
	else
		http_respond(c->req, 204, "application/json", "", 0, NULL);
}

/*
 * The result as the body: its JSON if it is JSON, else {"output": ...}.
 * The error contract (docs/api.md): 400 MessageRefused when the function
 * refuses the message (bad input, MDS_E_INVAL: the same message would be
 * refused again), 502 FunctionFailed when the function itself fails (it
 * crashed, timed out, ...).
 */
static void on_invoked(void *arg, int error, const char *result,
		       const char *message)
{
	struct invocation *inv = arg;
	struct api_call c = { .api = inv->api, .req = inv->req };
	json_t *o;

	free(inv);
	if (error != 0) {
		const char *why = message && message[0] ? message
						       : mds_strerror(error);

		if (error == MDS_E_INVAL)
			api_reply_error(&c, 400, "MessageRefused", NULL, why);
		else
			api_reply_error(&c, 502, "FunctionFailed", NULL, why);
		return;
	}
	o = json_loads(result, JSON_DECODE_ANY, NULL);
	if (o == NULL)
		o = json_pack("{s:s}", "output", result);
	if (o == NULL) /* not UTF-8 */
		o = json_pack("{s:s}", "output", "(output is not UTF-8 text)");
	api_reply(&c, 200, o, NULL);
}

static void functions_invoke_route(struct api_call *c)
{
	struct invocation *inv;
	int rc;

	if (!available(c))
		return;
	inv = xcalloc(1, sizeof(*inv));
	inv->api = c->api;
	inv->req = c->req;
	rc = functions_invoke(c->api->functions, c->id, c->req->body,
			      c->req->body_len, on_invoked, inv);
	if (rc == 0)
		return;
	free(inv);
	if (rc == MDS_E_NOTFOUND)
		api_reply_error(c, 404, "NotFound", NULL,
				"no such function");
	else if (rc == MDS_E_LIMIT)
		api_reply_error(c, 429, "TooManyRequests", NULL,
				"too many function invocations are running");
	else
		api_reply_error(c, 503, "ServiceUnavailable", NULL,
				mds_strerror(rc));
}

const struct api_route functions_routes[] = {
	{ "GET", "/v1/functions", functions_list_route },
	{ "POST", "/v1/functions", functions_create_route },
	{ "GET", "/v1/functions/*", functions_get_route },
	{ "PUT", "/v1/functions/*", functions_update_route },
	{ "DELETE", "/v1/functions/*", functions_delete_route },
	{ "POST", "/v1/functions/*/invoke", functions_invoke_route },
	{ NULL, NULL, NULL },
};
