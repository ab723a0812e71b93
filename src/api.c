/* api.c - the REST API's routes; see api.h and docs/api.md. */
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "deploy.h"
#include "fault.h"
#include "util/err.h"
#include "util/log.h"

#define MDSCALE_VERSION "0.1.0"

/* The matched route's arguments: the request, its parsed body, the path's
 * {id} segment. */
struct call {
	struct api *api;
	struct http_req *req;
	json_t *body;
	char id[128];
};

typedef void route_fn(struct call *c);

struct route {
	const char *method;
	const char *pattern; /* '*' matches one path segment */
	route_fn *fn;
};

static void reply(struct call *c, int status, json_t *o, const char *headers)
{
	char *s = json_dumps(o, JSON_COMPACT);

	http_respond(c->req, status, "application/json", s, strlen(s), headers);
	free(s);
	json_decref(o);
}

static void reply_error(struct call *c, int status, const char *code,
			const char *field, const char *message)
{
	json_t *o = json_pack("{s:s, s:s}", "code", code, "message", message);

	if (field != NULL && field[0] != '\0')
		json_object_set_new(o, "field", json_string(field));
	reply(c, status, o, NULL);
}

static void reply_fault(struct call *c, const struct fault *f)
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
	default:
		break;
	}
	reply_error(c, status, f->code ? f->code : code, f->field, f->message);
}

/* ---- handlers ---- */

static void health(struct call *c)
{
	reply(c, 200,
	      json_pack("{s:s, s:s, s:s}", "status", "ok", "version",
			MDSCALE_VERSION, "cgroup", c->api->cgroup_name),
	      NULL);
}

static void shapes(struct call *c)
{
	const struct shape_ladder *l = &c->api->config->shapes;
	json_t *items = json_array();

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(
			items,
			json_pack("{s:s, s:f, s:I}", "name", l->v[i].name,
				  "cpus", l->v[i].mcpu / 1000.0, "memoryInMBs",
				  (json_int_t)(l->v[i].mem_bytes >> 20)));
	reply(c, 200, json_pack("{s:o}", "items", items), NULL);
}

static void deployments_list(struct call *c)
{
	char name[128];
	bool by_name = http_query_get(c->req->query, "displayName", name,
				      sizeof(name)) == 0;

	reply(c, 200, deploy_list(c->api->deploy, by_name ? name : NULL),
	      NULL);
}

static void with_wr_header(struct call *c, int status, json_t *o,
			   const char *wr_id)
{
	char hdr[128];

	snprintf(hdr, sizeof(hdr), "opc-work-request-id: %s\r\n", wr_id);
	reply(c, status, o, hdr);
}

static void deployments_create(struct call *c)
{
	struct fault f;
	json_t *out = NULL;
	char wr[64];

	if (deploy_create(c->api->deploy, c->body, &out, &f) != 0) {
		reply_fault(c, &f);
		return;
	}
	snprintf(wr, sizeof(wr), "%s",
		 json_string_value(json_object_get(out, "opc-work-request-id")));
	json_object_del(out, "opc-work-request-id");
	with_wr_header(c, 201, out, wr);
}

static void deployments_get(struct call *c)
{
	struct fault f;
	json_t *o = deploy_get(c->api->deploy, c->id, &f);

	if (o == NULL)
		reply_fault(c, &f);
	else
		reply(c, 200, o, NULL);
}

static void deployments_update(struct call *c)
{
	struct fault f;
	json_t *wr = NULL;

	if (deploy_update(c->api->deploy, c->id, c->body, &wr, &f) != 0) {
		reply_fault(c, &f);
		return;
	}
	if (wr == NULL) { /* nothing to change */
		deployments_get(c);
		return;
	}
	with_wr_header(c, 202, wr,
		       json_string_value(json_object_get(wr, "id")));
}

static void deployments_delete(struct call *c)
{
	struct fault f;
	json_t *wr = NULL;

	if (deploy_delete(c->api->deploy, c->id, &wr, &f) != 0) {
		reply_fault(c, &f);
		return;
	}
	with_wr_header(c, 202, wr,
		       json_string_value(json_object_get(wr, "id")));
}

static void workrequests_get(struct call *c)
{
	struct fault f;
	json_t *o = deploy_workrequest(c->api->deploy, c->id, &f);

	if (o == NULL)
		reply_fault(c, &f);
	else
		reply(c, 200, o, NULL);
}

static void workrequests_list(struct call *c)
{
	char dep[128];
	bool by_dep = http_query_get(c->req->query, "deploymentId", dep,
				     sizeof(dep)) == 0;

	reply(c, 200,
	      deploy_workrequests(c->api->deploy, by_dep ? dep : NULL), NULL);
}

static const struct route routes[] = {
	{ "GET", "/v1/health", health },
	{ "GET", "/v1/shapes", shapes },
	{ "GET", "/v1/deployments", deployments_list },
	{ "POST", "/v1/deployments", deployments_create },
	{ "GET", "/v1/deployments/*", deployments_get },
	{ "PUT", "/v1/deployments/*", deployments_update },
	{ "DELETE", "/v1/deployments/*", deployments_delete },
	{ "GET", "/v1/workrequests", workrequests_list },
	{ "GET", "/v1/workrequests/*", workrequests_get },
};

/* Matches path against pattern, copying the '*' segment into id. */
static bool match(const char *pattern, const char *path, char *id,
		  size_t idsz)
{
	while (*pattern != '\0') {
		if (*pattern == '*') {
			size_t n = strcspn(path, "/");

			if (n == 0 || n >= idsz)
				return false;
			memcpy(id, path, n);
			id[n] = '\0';
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
	struct call c = { .api = arg, .req = req };
	const struct route *r = NULL;
	bool path_known = false;
	json_error_t jerr;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!match(routes[i].pattern, req->path, c.id, sizeof(c.id)))
			continue;
		path_known = true;
		if (strcmp(routes[i].method, req->method) == 0) {
			r = &routes[i];
			break;
		}
	}
	if (r == NULL) {
		if (path_known)
			reply_error(&c, 405, "MethodNotAllowed", NULL,
				    "method not allowed on this path");
		else
			reply_error(&c, 404, "NotFound", NULL,
				    "no such API path");
		return;
	}
	if (strcmp(req->method, "GET") != 0 &&
	    !authorized(c.api, req->authorization)) {
		reply_error(&c, 401, "NotAuthenticated", NULL,
			    "this request needs 'Authorization: Bearer "
			    "<token>' (the token is in the daemon's data "
			    "directory)");
		return;
	}
	if (req->body_too_large) {
		reply_error(&c, 413, "PayloadTooLarge", NULL,
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
			reply_error(&c, 400, "InvalidJson", NULL, msg);
			return;
		}
	}
	r->fn(&c);
	json_decref(c.body);
}
