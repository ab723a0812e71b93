/*
 * cli_apply.c - `mdscale apply -f FILE`: makes the deployments match a
 * file (JSON or YAML; "-" reads stdin), the way kubectl apply does.
 *
 * The file holds deployment objects as `get -o yaml|json` prints them: one
 * object, a list's {"items": [...]}, an array, or several YAML documents.
 * Read-only fields (id, lifecycleState, instances, ...) are ignored. Each
 * object is matched by displayName: a new one is created, an existing one
 * gets an update of the fields that differ, and one that matches is left
 * alone. Every change is first checked by the daemon (dryRun=true), so a
 * file with an error changes nothing.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli/cli.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define APPLY_FILE_MAX (4u << 20) /* bytes of one file */
#define APPLY_OBJECTS_MAX 1024

/* What the daemon sets, never the file: ignored when present. */
static const char *const read_only[] = {
	"id", "lifecycleState", "lifecycleDetails", "instances",
	"timeCreated", "timeUpdated", "currentWorkRequestId", "endpoint",
	"backend", "ref", "kind", "resourceVersion",
};

/* One object of the file and what applying it does. */
struct item {
	const char *name;
	json_t *want;   /* the file's fields, read-only ones removed */
	json_t *body;   /* what is sent: the whole object, or the changes */
	char *path;     /* POST or PUT path */
	const char *method;
	const char *action; /* "created", "updated", "unchanged" */
};

/* Reads path ("-": stdin) into a new NUL-terminated string; NULL after
 * printing why. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char chunk[65536], *out = NULL;
	struct buf b;
	size_t n;

	if (f == NULL) {
		cli_fail("cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	buf_init(&b, APPLY_FILE_MAX);
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (buf_add(&b, chunk, n) != 0) {
			cli_fail("%s: larger than %u bytes", path,
				APPLY_FILE_MAX);
			goto out;
		}
	}
	if (ferror(f)) {
		cli_fail("cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	*len = b.len;
	out = xstrndup(buf_str(&b), b.len);
out:
	if (f != stdin)
		fclose(f);
	buf_free(&b);
	return out;
}

/* Appends the objects of one document to objs: a list's items, an
 * array's elements, or the object itself. */
static int flatten(json_t *doc, json_t *objs)
{
	json_t *items = json_object_get(doc, "items"), *x;
	size_t i;

	if (json_is_array(items))
		doc = items;
	if (json_is_object(doc)) {
		json_array_append(objs, doc);
		return 0;
	}
	if (!json_is_array(doc))
		return cli_fail("apply: a document must be an object, a list "
			"with items, or an array of objects");
	json_array_foreach(doc, i, x) {
		if (!json_is_object(x))
			return cli_fail("apply: item %zu is not an object", i);
		json_array_append(objs, x);
	}
	return 0;
}

/* Checks that o is a deployment and makes its item (want: a copy without
 * the read-only fields). */
static int item_init(struct item *it, json_t *o, size_t index)
{
	const char *kind = json_string_value(json_object_get(o, "kind"));

	memset(it, 0, sizeof(*it));
	if (kind != NULL && strcasecmp(kind, "deployment") != 0)
		return cli_fail("apply: object %zu: kind '%s': apply makes "
			"deployments only", index, kind);
	it->want = json_deep_copy(o);
	for (size_t i = 0; i < sizeof read_only / sizeof read_only[0]; i++)
		json_object_del(it->want, read_only[i]);
	it->name = json_string_value(json_object_get(it->want, "displayName"));
	if (it->name == NULL)
		return cli_fail("apply: object %zu: displayName is required "
			"(a string)", index);
	return 0;
}

/* Decides what applying it does, against the live deployment cur (NULL
 * when there is none). */
static void item_plan(struct item *it, const json_t *cur)
{
	const char *key;
	json_t *v;

	if (cur == NULL) {
		it->method = "POST";
		it->path = xstrdup("/v1/deployments");
		it->body = json_incref(it->want);
		it->action = "created";
		return;
	}
	it->body = json_object();
	json_object_foreach(it->want, key, v) {
		if (strcmp(key, "displayName") == 0 ||
		    strcmp(key, "autoscale") == 0) /* set up at create only */
			continue;
		if (!json_equal(v, json_object_get(cur, key)))
			json_object_set(it->body, key, v);
	}
	if (json_object_size(it->body) == 0) {
		it->action = "unchanged";
		return;
	}
	it->method = "PUT";
	it->path = cli_item_path("deployments",
		json_string_value(json_object_get(cur, "id")), "");
	it->action = "updated";
}

/* Sends it (dry: only checked). Returns 0, or the exit status after one
 * line naming the deployment. */
static int item_send(struct cli_ctx *ctx, const struct item *it, bool dry)
{
	char *path = xasprintf("%s%s", it->path, dry ? "?dryRun=true" : "");
	json_t *resp = NULL;
	long status = 0;
	int rc = cli_request(ctx, it->method, path, it->body, &status, &resp);

	free(path);
	if (rc == 0 && status < 300) {
		json_decref(resp);
		return 0;
	}
	if (rc == 0 && json_is_string(json_object_get(resp, "message")))
		rc = cli_fail("apply: deployment %s: %s%s", it->name,
			json_string_value(json_object_get(resp, "message")),
			dry ? " (nothing was changed)" : "");
	else
		rc = cli_request_error(ctx, rc, status, resp);
	json_decref(resp);
	return rc;
}

/* The live deployment named name in list, or NULL. */
static const json_t *find_live(const json_t *list, const char *name)
{
	const json_t *x;
	size_t i;

	json_array_foreach(json_object_get(list, "items"), i, x) {
		if (strcmp(json_string_value(json_object_get(x, "displayName")),
			    name) == 0)
			return x;
	}
	return NULL;
}

/* Loads the file into its items; returns their number, or -1. */
static long load_items(const char *file, struct item **out)
{
	char diag[256], *text;
	json_t *docs, *doc, *objs = json_array();
	struct item *items = NULL;
	size_t len = 0, i, n = 0;
	long ret = -1;

	text = read_file(file, &len);
	if (text == NULL)
		goto out;
	docs = cli_yaml_load(text, len, diag, sizeof diag);
	free(text);
	if (docs == NULL) {
		cli_fail("%s: not YAML or JSON: %s", file, diag);
		goto out;
	}
	json_array_foreach(docs, i, doc) {
		if (!json_is_null(doc) && flatten(doc, objs) != 0) {
			json_decref(docs);
			goto out;
		}
	}
	json_decref(docs);
	if (json_array_size(objs) > APPLY_OBJECTS_MAX) {
		cli_fail("%s: more than %d objects", file, APPLY_OBJECTS_MAX);
		goto out;
	}
	items = xcalloc(json_array_size(objs) + 1, sizeof(*items));
	for (n = 0; n < json_array_size(objs); n++) {
		if (item_init(&items[n], json_array_get(objs, n), n) != 0) {
			n++;
			goto out;
		}
		for (size_t k = 0; k < n; k++)
			if (strcmp(items[k].name, items[n].name) == 0) {
				cli_fail("apply: deployment %s is in the file "
					"twice", items[n].name);
				n++;
				goto out;
			}
	}
	ret = (long)n;
out:
	if (ret < 0) {
		for (size_t k = 0; k < n; k++)
			json_decref(items[k].want);
		free(items);
		items = NULL;
	}
	*out = items;
	json_decref(objs);
	return ret;
}

/* Whether every changed deployment of items is ACTIVE or FAILED in list
 * (a failed one sets *failed). */
static bool all_settled(const struct item *items, long n, const json_t *list,
	const char **failed)
{
	for (long i = 0; i < n; i++) {
		const json_t *cur = find_live(list, items[i].name);
		const char *st = cur ? json_string_value(json_object_get(cur,
			"lifecycleState")) : "";

		if (items[i].method == NULL)
			continue;
		if (st != NULL && strcmp(st, "FAILED") == 0)
			*failed = items[i].name;
		else if (st == NULL || strcmp(st, "ACTIVE") != 0)
			return false;
	}
	return true;
}

/* --wait: long-polls the list until every changed deployment is ACTIVE or
 * FAILED, or timeout_s pass. Returns 0, or the exit status after one line. */
static int wait_settled(struct cli_ctx *ctx, const struct item *items, long n,
	long timeout_s)
{
	struct timespec t0, now;
	json_t *list = NULL;
	json_int_t version = -1;
	const char *failed = NULL;
	char path[128];
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		long left;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = timeout_s - (long)(now.tv_sec - t0.tv_sec);
		if (left <= 0)
			return cli_fail("apply: timed out after %ld s waiting "
				"for the deployments to be ACTIVE", timeout_s);
		if (version < 0)
			snprintf(path, sizeof path, "/v1/deployments");
		else
			snprintf(path, sizeof path, "/v1/deployments?watch=true"
				"&resourceVersion=%" JSON_INTEGER_FORMAT
				"&timeoutSeconds=%ld", version, left < 30 ? left : 30);
		ret = cli_call(ctx, "GET", path, NULL, &list);
		if (ret != 0)
			return ret;
		version = json_integer_value(json_object_get(list,
			"resourceVersion"));
		if (all_settled(items, n, list, &failed)) {
			json_decref(list);
			return failed == NULL ? 0
				: cli_fail("apply: deployment %s is FAILED",
					failed);
		}
		json_decref(list);
		list = NULL;
	}
}

static const struct cli_opt apply_opts[] = {
	{"filename", 1},
	{"wait", 0},
	{"timeout", 1},
	{NULL, 0},
};

int cli_apply(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *val[3] = {NULL};
	struct item *items = NULL;
	json_t *live = NULL, *report = json_array();
	long n = 0, changed = 0, timeout = 120;
	int ret;

	ret = cli_parse_args(ctx, argc, argv, apply_opts, NULL, NULL, val);
	if (ret != 0) {
		json_decref(report);
		return cli_opt_exit(ret);
	}
	if (val[0] == NULL) {
		json_decref(report);
		return cli_usage_error(ctx, "give -f FILE (or -f - for stdin)");
	}
	if (val[2] != NULL && (val[1] == NULL || cli_parse_long(ctx,
		    "timeout", val[2], 1, 86400, &timeout) != 0)) {
		json_decref(report);
		return val[1] == NULL ? cli_usage_error(ctx,
			"--timeout goes with --wait") : CLI_EXIT_USAGE;
	}
	n = load_items(val[0], &items);
	if (n < 0) {
		ret = CLI_EXIT_FAIL;
		goto out;
	}
	ret = cli_call(ctx, "GET", "/v1/deployments", NULL, &live);
	if (ret != 0)
		goto out;
	/* Plan and check everything before changing anything. */
	for (long i = 0; i < n; i++) {
		item_plan(&items[i], find_live(live, items[i].name));
		if (items[i].method != NULL &&
		    (ret = item_send(ctx, &items[i], true)) != 0)
			goto out;
	}
	for (long i = 0; i < n; i++) {
		if (items[i].method != NULL &&
		    (ret = item_send(ctx, &items[i], false)) != 0)
			goto out;
		changed += items[i].method != NULL;
		json_array_append_new(report, json_pack("{s:s, s:s, s:s}",
			"kind", "deployment", "displayName", items[i].name,
			"action", items[i].action));
	}
	if (val[1] != NULL && changed > 0 &&
	    (ret = wait_settled(ctx, items, n, timeout)) != 0)
		goto out;
	if (cli_structured(ctx)) {
		json_t *o = json_pack("{s:O}", "items", report);

		cli_print_json(ctx, o);
		json_decref(o);
	} else if (changed > 0) {
		for (long i = 0; i < n; i++)
			printf("deployment %s %s\n", items[i].name,
				items[i].action);
	}
out:
	for (long i = 0; i < n; i++) {
		json_decref(items[i].want);
		json_decref(items[i].body);
		free(items[i].path);
	}
	free(items);
	json_decref(live);
	json_decref(report);
	return ret;
}
