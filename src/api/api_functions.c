/* api_functions.c - the REST routes of functions. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "notify/functions.h"
#include "util/err.h"
#include "util/xalloc.h"

/* An invocation waiting for its function: the request is answered from
 * the done callback. */
struct invocation {
	struct api *api;
	struct http_req *req;
};

static bool available(struct api_call *c)
{
	if (c->api->functions != NULL)
		return true;
	api_reply_error(c, 503, "ServiceUnavailable", NULL,
			"the daemon is shutting down");
	return false;
}

static void functions_list_route(struct api_call *c)
{
	if (!available(c))
		return;
	api_reply(c, 200, functions_list(c->api->functions), NULL);
}

static void functions_create_route(struct api_call *c)
{
	struct fault f;
	json_t *out = NULL;

	if (!available(c))
		return;
	if (functions_create(c->api->functions, c->body, &out, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	api_reply(c, 201, out, NULL);
}

static void functions_get_route(struct api_call *c)
{
	struct fault f;

	if (!available(c))
		return;
	api_reply_or_fault(c, functions_get(c->api->functions, c->id, &f), &f);
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
	{ "DELETE", "/v1/functions/*", functions_delete_route },
	{ "POST", "/v1/functions/*/invoke", functions_invoke_route },
	{ NULL, NULL, NULL },
};
