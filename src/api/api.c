/* api.c - the REST API's routes; see api.h and docs/api.md. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_tokens.h"
#include "util/fault.h"
#include "util/err.h"
#include "util/log.h"
#include "util/version.h"
#include "util/xalloc.h"

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
	workreqs_routes,
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
	tokens_routes,
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

/* Who may call a route. */
enum api_access {
	API_OPEN,  /* anyone, without a token: nothing secret in it */
	API_READ,  /* any token, read-only included */
	API_WRITE, /* a full token: the route changes state */
	API_ADMIN, /* only the data directory's token */
};

/*
 * Every route needs a token. By default a GET needs any one (API_READ) and
 * every other method a full one (API_WRITE); these are the exceptions, in
 * one place so that what is open can be read at a glance.
 */
static const struct {
	const char *method, *pattern;
	enum api_access access;
} access_rules[] = {
	/* Liveness probes (a load balancer, systemd, the harness waiting for
	 * start) carry no token; the answer is status, version and cgroup
	 * mode only. */
	{ "GET", "/v1/health", API_OPEN },
	/* The dashboard's files: static, the same in every binary. Its data
	 * comes from the routes below, with the token the page asks for. */
	{ "GET", "/ui", API_OPEN },
	{ "GET", "/ui/*", API_OPEN },
	/* OCI Notifications' CUSTOM_HTTPS subscriptions call it without
	 * mdscale's token; it accepts only what the receiver allows
	 * (api_oci.c, notify/oci_receiver.h): confirmed topics, enabled by a
	 * full token through /v1/oci/receivers. */
	{ "POST", "/v1/oci/notifications/*", API_OPEN },
	/* A POST that only reads. */
	{ "POST", "/v1/metrics/query", API_READ },
	{ "GET", "/v1/tokens", API_ADMIN },
	{ "POST", "/v1/tokens", API_ADMIN },
	{ "GET", "/v1/tokens/*", API_ADMIN },
	{ "DELETE", "/v1/tokens/*", API_ADMIN },
	{ "POST", "/v1/tokens/*/rotate", API_ADMIN },
};

static enum api_access access_of(const struct api_route *r)
{
	for (size_t i = 0; i < sizeof(access_rules) / sizeof(access_rules[0]);
	     i++)
		if (strcmp(access_rules[i].method, r->method) == 0 &&
		    strcmp(access_rules[i].pattern, r->pattern) == 0)
			return access_rules[i].access;
	return strcmp(r->method, "GET") == 0 ? API_READ : API_WRITE;
}

static void reply_unauthenticated(struct api_call *c)
{
	api_reply_error(c, 401, "NotAuthenticated", NULL,
			"this request needs 'Authorization: Bearer <token>' "
			"(the token is in the daemon's data directory, or one "
			"issued by POST /v1/tokens)");
}

bool api_token_still_valid(struct api_call *c)
{
	if (tokens_role(c->api->tokens, c->req->authorization) !=
	    API_ROLE_NONE)
		return true;
	reply_unauthenticated(c);
	return false;
}

/* Whether the caller may call route r; if not, answers 401 or 403 naming
 * why and returns false. */
static bool allowed(struct api_call *c, const struct api_route *r)
{
	enum api_access need = access_of(r);
	enum api_role role;

	if (need == API_OPEN)
		return true;
	role = tokens_role(c->api->tokens, c->req->authorization);
	if (role == API_ROLE_NONE) {
		reply_unauthenticated(c);
		return false;
	}
	if (need == API_ADMIN && role != API_ROLE_ADMIN) {
		api_reply_error(c, 403, "NotAuthorized", NULL,
				"managing tokens needs the data directory's "
				"token (the administrator's)");
		return false;
	}
	if (need == API_WRITE && role == API_ROLE_READ) {
		char msg[300];

		snprintf(msg, sizeof(msg),
			 "this token is read-only: %s %.200s changes state "
			 "and needs a full token", r->method, c->req->path);
		api_reply_error(c, 403, "NotAuthorized", NULL, msg);
		return false;
	}
	return true;
}

/* A request whose body is parsed in the thread pool. */
struct parse_away {
	uv_work_t work;
	struct api_call c;
	const struct api_route *r;
	json_error_t jerr;
};

static bool reply_bad_json(struct api_call *c, const json_error_t *jerr)
{
	char msg[256];

	if (c->body != NULL)
		return false;
	snprintf(msg, sizeof(msg), "the body is not valid JSON: %s (line %d, "
		 "column %d)", jerr->text, jerr->line, jerr->column);
	api_reply_error(c, 400, "InvalidJson", NULL, msg);
	return true;
}

/* On a worker thread: touches nothing but the request's bytes. */
static void parse_work(uv_work_t *w)
{
	struct parse_away *pa = w->data;

	pa->c.body = json_loadb(pa->c.req->body, pa->c.req->body_len,
				JSON_REJECT_DUPLICATES, &pa->jerr);
}

/* Back on the loop: the route goes on as if the body had been parsed in
 * api_handle() (if the client went away meanwhile, its answer is
 * dropped). */
static void parse_done(uv_work_t *w, int status)
{
	struct parse_away *pa = w->data;

	(void)status;
	if (!reply_bad_json(&pa->c, &pa->jerr))
		pa->r->fn(&pa->c);
	json_decref(pa->c.body);
	free(pa);
}

/* Queues the parse of a large body; false if it cannot be queued (then
 * the caller parses it on the loop). */
static bool parse_away(const struct api_call *c, const struct api_route *r)
{
	struct parse_away *pa;

	if (c->api->loop == NULL || c->req->body_len < API_PARSE_AWAY)
		return false;
	pa = xcalloc(1, sizeof(*pa));
	pa->c = *c;
	pa->r = r;
	pa->work.data = pa;
	if (uv_queue_work(c->api->loop, &pa->work, parse_work,
			  parse_done) != 0) {
		free(pa);
		return false;
	}
	return true;
}

void api_handle(void *arg, struct http_req *req)
{
	struct api_call c = { .api = arg, .req = req };
	const struct api_route *r = NULL;
	bool path_known = false;
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
	if (!allowed(&c, r))
		return;
	if (strcmp(req->method, "POST") == 0 ||
	    strcmp(req->method, "PUT") == 0) {
		if (parse_away(&c, r))
			return;
		c.body = json_loadb(req->body, req->body_len,
				    JSON_REJECT_DUPLICATES, &jerr);
		if (reply_bad_json(&c, &jerr))
			return;
	}
	r->fn(&c);
	json_decref(c.body);
}
