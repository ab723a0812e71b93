/* api.c - the REST API's routes; see api.h and docs/api.md. */
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "util/fault.h"
#include "util/err.h"
#include "util/log.h"
#include "util/version.h"

void api_reply(struct api_call *c, int status, json_t *o,
	       const char *headers)
{
	char *s = json_dumps(o, JSON_COMPACT);

	http_respond(c->req, status, "application/json", s, strlen(s), headers);
	free(s);
	json_decref(o);
}

void api_reply_error(struct api_call *c, int status, const char *code,
		     const char *field, const char *message)
{
	json_t *o = json_pack("{s:s, s:s}", "code", code, "message", message);

	if (field != NULL && field[0] != '\0')
		json_object_set_new(o, "field", json_string(field));
	api_reply(c, status, o, NULL);
}

void api_reply_fault(struct api_call *c, const struct fault *f)
{
	int status = 500;
	const char *code = "InternalServerError";

	switch (f->err) {
	case MDS_E_INVAL:
		status = 400;
		code = strstr(f->message, "is required") ? "MissingParameter"
							 : "InvalidParameter";
		break;
	case MDS_E_NOTFOUND:
		status = 404;
		code = "NotFound";
		break;
	case MDS_E_EXISTS:
	case MDS_E_CONFLICT:
		status = 409;
		code = "Conflict";
		break;
	case MDS_E_LIMIT:
		status = 400;
		code = "LimitExceeded";
		break;
	case MDS_E_NOSPACE: /* RFC 4918: the change could not be stored */
		status = 507;
		code = "InsufficientStorage";
		break;
	case MDS_E_UNAVAIL:
	case MDS_E_DB:
		status = 503;
		code = "ServiceUnavailable";
		break;
	default:
		break;
	}
	api_reply_error(c, status, f->code ? f->code : code, f->field, f->message);
}

void api_reply_or_fault(struct api_call *c, json_t *o, const struct fault *f)
{
	if (o == NULL)
		api_reply_fault(c, f);
	else
		api_reply(c, 200, o, NULL);
}

/* ---- the daemon's own routes ---- */

static void health(struct api_call *c)
{
	api_reply(c, 200,
	      json_pack("{s:s, s:s, s:s}", "status", "ok", "version",
			MDS_VERSION, "cgroup", c->api->cgroup_name),
	      NULL);
}

static void shapes(struct api_call *c)
{
	const struct shape_ladder *l = &c->api->config->shapes;
	json_t *items = json_array();

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(
			items,
			json_pack("{s:s, s:f, s:I}", "name", l->v[i].name,
				  "cpus", l->v[i].mcpu / 1000.0, "memoryInMBs",
				  (json_int_t)(l->v[i].mem_bytes >> 20)));
	api_reply(c, 200, json_pack("{s:o}", "items", items), NULL);
}

static const struct api_route core_routes[] = {
	{ "GET", "/v1/health", health },
	{ "GET", "/v1/shapes", shapes },
	{ NULL, NULL, NULL },
};

static const struct api_route *const tables[] = {
	core_routes,
	deploy_routes,
	monitoring_routes,
	notifications_routes,
	functions_routes,
	autoscale_routes,
	logs_routes,
	ui_routes,
	metrics_routes,
	oci_routes,
	oci_open_routes,
	alertmanager_routes,
};

/* Matches path against pattern, copying the '*' segments into id and
 * sub. */
static bool match(const char *pattern, const char *path, char *id, char *sub,
		  size_t idsz)
{
	int stars = 0;

	while (*pattern != '\0') {
		if (*pattern == '*') {
			size_t n = strcspn(path, "/");
			char *out = stars++ == 0 ? id : sub;

			if (n == 0 || n >= idsz)
				return false;
			memcpy(out, path, n);
			out[n] = '\0';
			path += n;
			pattern++;
			continue;
		}
		if (*pattern++ != *path++)
			return false;
	}
	return *path == '\0' || (path[0] == '/' && path[1] == '\0');
}

static bool authorized(const struct api *api, const char *header)
{
	size_t n = strlen(api->token);

	if (header == NULL || strncmp(header, "Bearer ", 7) != 0)
		return false;
	header += 7;
	return strlen(header) == n && CRYPTO_memcmp(header, api->token, n) == 0;
}

void api_handle(void *arg, struct http_req *req)
{
	struct api_call c = { .api = arg, .req = req };
	const struct api_route *r = NULL;
	bool path_known = false, open = false;
	json_error_t jerr;

	for (size_t t = 0; r == NULL && t < sizeof(tables) / sizeof(tables[0]);
	     t++) {
		for (const struct api_route *x = tables[t]; x->method; x++) {
			if (!match(x->pattern, req->path, c.id, c.sub,
				   sizeof(c.id)))
				continue;
			path_known = true;
			if (strcmp(x->method, req->method) == 0) {
				r = x;
				open = tables[t] == oci_open_routes;
				break;
			}
		}
	}
	if (r == NULL) {
		if (path_known)
			api_reply_error(&c, 405, "MethodNotAllowed", NULL,
				    "method not allowed on this path");
		else
			api_reply_error(&c, 404, "NotFound", NULL,
				    "no such API path");
		return;
	}
	if (strcmp(req->method, "GET") != 0 && !open &&
	    !authorized(c.api, req->authorization)) {
		api_reply_error(&c, 401, "NotAuthenticated", NULL,
			    "this request needs 'Authorization: Bearer "
			    "<token>' (the token is in the daemon's data "
			    "directory)");
		return;
	}
	if (req->body_too_large) {
		api_reply_error(&c, 413, "PayloadTooLarge", NULL,
			    "the request body is too large");
		return;
	}
	if (strcmp(req->method, "POST") == 0 ||
	    strcmp(req->method, "PUT") == 0) {
		c.body = json_loadb(req->body, req->body_len,
				    JSON_REJECT_DUPLICATES, &jerr);
		if (c.body == NULL) {
			char msg[256];

			snprintf(msg, sizeof(msg),
				 "the body is not valid JSON: %s (line %d, "
				 "column %d)", jerr.text, jerr.line,
				 jerr.column);
			api_reply_error(&c, 400, "InvalidJson", NULL, msg);
			return;
		}
	}
	r->fn(&c);
	json_decref(c.body);
}
