/*
 * api_ui.c - serves the web dashboard (ui/, docs/dashboard.md) at /ui/.
 *
 * The files are compiled into the binary (ui_assets.h), so a plain
 * `mdscale serve` needs nothing on disk. A request names a file by its exact
 * base name in that table; anything else is a 404 JSON error, so no path
 * can reach outside it. The pages read the same GET routes as any client,
 * plus one of their own: GET /ui/api/query, the read-only metrics query
 * (POST /v1/metrics/query) with its fields in the query string, because a
 * POST needs the bearer token and a page in a browser has none.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "monitoring/monitoring.h"
#include "api/ui_assets.h"
#include "util/err.h"

/* The pages change only with the binary; no-cache makes the browser
 * revalidate (cheap on loopback) so an upgraded daemon is seen at once. */
#define UI_HEADERS                                                       \
	"Cache-Control: no-cache\r\n"                                    \
	"X-Content-Type-Options: nosniff\r\n"

static const struct ui_asset *find(const char *name)
{
	for (const struct ui_asset *a = ui_assets; a->name != NULL; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

static void send_asset(struct api_call *c, const char *name)
{
	const struct ui_asset *a = find(name);

	if (a == NULL) {
		api_reply_error(c, 404, "NotFound", NULL,
				"no such file in the dashboard");
		return;
	}
	http_respond(c->req, 200, a->content_type, (const char *)a->data,
		     a->len, UI_HEADERS);
}

/* "/ui" and "/ui/" both match this route: the first is sent to the second
 * so that the page's relative links resolve under /ui/. */
static void ui_index(struct api_call *c)
{
	static const char body[] = "{\"location\":\"/ui/\"}";

	if (strcmp(c->req->path, "/ui") == 0) {
		http_respond(c->req, 301, "application/json", body,
			     sizeof(body) - 1, "Location: /ui/\r\n");
		return;
	}
	send_asset(c, "index.html");
}

static void ui_file(struct api_call *c)
{
	send_asset(c, c->id);
}

static bool all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* GET /ui/api/query?query=Q[&startTime=T&endTime=T&resolution=R]: as
 * POST /v1/metrics/query; times are ms since the epoch or RFC 3339. */
static void ui_query(struct api_call *c)
{
	static const char *const keys[] = { "query", "startTime", "endTime",
					    "resolution" };
	json_t *body;
	char val[2048];

	if (c->api->monitoring == NULL) {
		api_reply_error(c, 503, "ServiceUnavailable", NULL,
				"monitoring is not running (the daemon is "
				"starting or stopping)");
		return;
	}
	body = json_object();
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		int rc = http_query_get(c->req->query, keys[i], val,
					sizeof(val));

		if (rc != 0 && rc != MDS_E_NOTFOUND) {
			json_decref(body);
			api_reply_error(c, 400, "InvalidParameter", keys[i],
					"the value is too long");
			return;
		}
		if (rc != 0)
			continue;
		if (i != 0 && i != 3 && all_digits(val) && strlen(val) < 16)
			json_object_set_new(body, keys[i],
					    json_integer(strtoll(val, NULL,
								 10)));
		else
			json_object_set_new(body, keys[i], json_string(val));
	}
	api_monitoring_query(c, body);
	json_decref(body);
}

const struct api_route ui_routes[] = {
	{ "GET", "/ui/api/query", ui_query },
	{ "GET", "/ui", ui_index },
	{ "GET", "/ui/*", ui_file },
	{ NULL, NULL, NULL },
};
