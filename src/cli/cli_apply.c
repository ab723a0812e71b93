/*
 * cli_apply.c - `mdscale apply -f FILE`: makes deployments, alarms,
 * topics, subscriptions, functions and the autoscale settings match a file
 * (JSON or YAML; "-" reads stdin), the way kubectl apply does.
 *
 * The file holds objects as `NOUN get|list -o yaml|json` prints them: one
 * object, a list's {"items": [...]}, an array, or several YAML documents;
 * each one's kind is its "kind" member or its shape (cli_apply_kind.c).
 * Read-only fields are ignored. A new object is created, an existing one
 * gets an update of the fields that differ, and one that matches is left
 * alone. Objects name each other by name (an alarm's destination topics,
 * a subscription's topic, autoscale settings' deployment) and are sent in
 * dependency order. Every change is first checked by the daemon
 * (dryRun=true), so a file with an error changes nothing; what only the
 * real call can check (a subscription to a topic the file creates) is
 * undone if it fails.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli/cli_apply.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define APPLY_FILE_MAX (4u << 20) /* bytes of one file */
#define APPLY_OBJECTS_MAX 1024
#define UNDO_WAIT_MS (600 * 1000L) /* for a creation to finish */
#define UNDO_POLL_MS 500L

/* One object of the file and what applying it does. */
struct item {
	int kind;           /* enum apply_kind_id */
	char *name;         /* its name in the output */
	const json_t *orig; /* the file's object (borrowed from the file) */
	json_t *want;       /* the file's fields, read-only ones removed */
	const json_t *live; /* the live object, or NULL (borrowed) */
	json_t *body;       /* what is sent: the whole object, or changes */
	char *path;         /* POST or PUT path, without the query */
	const char *method; /* NULL: nothing to send */
	const char *action; /* "created", "updated", "unchanged" */
	bool refs_new;      /* it names an object this run creates */
	char *created;      /* the id of what it created, for undoing */
};

/* The file and the live state. */
struct plan {
	struct item *items;
	long n;
	json_t *objs;            /* the file's objects */
	json_t *live[APPLY__N];  /* each kind's live list (autoscale: none) */
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

/* The item of the file that creates an object of kind named name, or
 * NULL. */
static const struct item *created_in_file(const struct plan *p, int kind,
	const char *name)
{
	for (long i = 0; i < p->n; i++)
		if (p->items[i].kind == kind &&
		    p->items[i].action != NULL && p->items[i].live == NULL &&
		    strcmp(p->items[i].name, name) == 0)
			return &p->items[i];
	return NULL;
}

/* Makes the item of file object o (index: its place in the file). */
static int item_init(struct plan *p, struct item *it, const json_t *o,
	size_t index)
{
	memset(it, 0, sizeof(*it));
	it->kind = apply_kind_of(o, index);
	if (it->kind < 0)
		return CLI_EXIT_FAIL;
	it->name = apply_label(it->kind, o, index);
	if (it->name == NULL)
		return CLI_EXIT_FAIL;
	it->orig = o;
	it->want = json_deep_copy(o);
	apply_strip(it->kind, it->want);
	for (long k = 0; k < p->n; k++)
		if (p->items[k].kind == it->kind &&
		    strcmp(p->items[k].name, it->name) == 0 &&
		    (it->kind != APPLY_ALARM ||
		     !json_is_string(json_object_get(o, "id"))))
			return cli_fail("apply: %s %s is in the file twice",
				apply_kinds[it->kind].name, it->name);
	return 0;
}

/* An alarm's destinations as topic ids: a live topic's name becomes its
 * id; a topic the file creates stays a name until it exists (refs_new). */
static void resolve_destinations(struct plan *p, struct item *it)
{
	json_t *dest = json_object_get(it->want, "destinations"), *x;
	size_t i;

	json_array_foreach(dest, i, x) {
		const char *key = json_string_value(x);
		const json_t *t;

		if (key == NULL)
			continue;
		t = apply_find_topic(p->live[APPLY_TOPIC], key);
		if (t != NULL)
			json_array_set_new(dest, i,
				json_string(cli_json_str(t, "topicId")));
		else if (created_in_file(p, APPLY_TOPIC, key) != NULL)
			it->refs_new = true;
	}
}

/* The fields of want that differ from the live object (a new object). */
static json_t *changes(const struct item *it, const json_t *live)
{
	json_t *body = json_object(), *v;
	const char *key;

	json_object_foreach(it->want, key, v) {
		if (!apply_create_only(it->kind, key) &&
		    !apply_equal(v, json_object_get(live, key)))
			json_object_set(body, key, v);
	}
	return body;
}

/* Plans autoscale settings: PUT of the config when a value differs. */
static int plan_autoscale(struct cli_ctx *ctx, struct plan *p,
	struct item *it)
{
	const char *dep = json_string_value(json_object_get(it->want,
		"deploymentId"));
	json_t *cur = NULL, *want = json_object_get(it->want, "config");
	char *esc = dep ? cli_escape(dep) : NULL;
	long status = 0;
	int ret = 0;

	it->path = dep ? xasprintf("/v1/functions/autoscale/config?"
		"deploymentId=%s", esc) : xstrdup("/v1/functions/autoscale/config");
	free(esc);
	it->action = "updated";
	if (dep != NULL && created_in_file(p, APPLY_DEPLOYMENT, dep) != NULL) {
		it->refs_new = true;
	} else {
		ret = cli_request(ctx, "GET", it->path, NULL, &status, &cur);
		if (ret != 0 || status >= 300) {
			ret = cli_request_error(ctx, ret, status, cur);
			goto out;
		}
		if (json_object_size(want) > 0) {
			json_t *diff = json_object(), *v;
			const char *key;

			json_object_foreach(want, key, v)
				if (!apply_equal(v, json_object_get(
					    json_object_get(cur, "config"), key)))
					json_object_set(diff, key, v);
			if (json_object_size(diff) == 0) {
				json_decref(diff);
				it->action = "unchanged";
				goto out;
			}
			json_decref(diff);
		}
	}
	it->method = "PUT";
	it->body = json_incref(want);
out:
	json_decref(cur);
	return ret;
}

/* Decides what applying it does against the live state. */
static int item_plan(struct cli_ctx *ctx, struct plan *p, struct item *it)
{
	const struct apply_kind *k = &apply_kinds[it->kind];
	const json_t *live;
	int ret;

	if (it->kind == APPLY_AUTOSCALE)
		return plan_autoscale(ctx, p, it);
	ret = apply_match(it->kind, it->orig, it->name,
		(const json_t *const *)p->live, &live);
	if (ret != 0)
		return ret;
	it->live = live;
	if (it->kind == APPLY_ALARM)
		resolve_destinations(p, it);
	if (it->kind == APPLY_SUBSCRIPTION) {
		const char *proto = cli_json_str(it->want, "protocol");

		const char *topic = cli_json_str(it->want, "topicId");
		const json_t *t = apply_find_topic(p->live[APPLY_TOPIC], topic);

		if (t != NULL) /* compared and sent as its id */
			json_object_set_new(it->want, "topicId", json_string(
				cli_json_str(t, "topicId")));
		topic = cli_json_str(it->want, "topicId");
		it->refs_new = (apply_find_topic(p->live[APPLY_TOPIC],
			topic) == NULL && created_in_file(p, APPLY_TOPIC, topic))
			|| (strcasecmp(proto, "FUNCTION") == 0 && created_in_file(p,
			 APPLY_FUNCTION, cli_json_str(it->want, "endpoint")));
	}
	if (live == NULL) {
		it->method = "POST";
		it->path = xasprintf("/v1/%s", k->collection);
		it->body = json_incref(it->want);
		it->action = "created";
		return 0;
	}
	it->body = changes(it, live);
	if (json_object_size(it->body) == 0) {
		it->action = "unchanged";
		return 0;
	}
	it->method = "PUT";
	it->path = cli_item_path(k->collection,
		cli_json_str(live, k->id_field), "");
	it->action = "updated";
	return 0;
}

/* What a dry run of it sends: references to objects this run creates
 * cannot be checked yet, so an alarm's are left out and autoscale
 * settings of a new deployment are checked as the default's. NULL: the
 * dry run cannot check it without its reference (a subscription to a new
 * topic or function); the real call checks it, and is undone on failure. */
static json_t *dry_body(const struct plan *p, const struct item *it,
	char **path)
{
	json_t *body, *dest, *x;
	size_t i;

	*path = NULL;
	if (!it->refs_new) {
		*path = xasprintf("%s%sdryRun=true", it->path,
			strchr(it->path, '?') ? "&" : "?");
		return json_incref(it->body);
	}
	if (it->kind == APPLY_AUTOSCALE) {
		*path = xstrdup("/v1/functions/autoscale/config?dryRun=true");
		return json_incref(it->body);
	}
	if (it->kind != APPLY_ALARM)
		return NULL;
	body = json_deep_copy(it->body);
	dest = json_object_get(body, "destinations");
	for (i = json_array_size(dest); i-- > 0;) {
		x = json_array_get(dest, i);
		if (created_in_file(p, APPLY_TOPIC, json_string_value(x)))
			json_array_remove(dest, i);
	}
	*path = xasprintf("%s?dryRun=true", it->path);
	return body;
}

/* Just before the real call: the topics this run created, by id. */
static void resolve_new_refs(const struct plan *p, struct item *it)
{
	json_t *dest = json_object_get(it->body, "destinations"), *x;
	const struct item *t;
	size_t i;

	if (it->kind != APPLY_ALARM)
		return;
	json_array_foreach(dest, i, x) {
		t = created_in_file(p, APPLY_TOPIC, json_string_value(x));
		if (t != NULL && t->created != NULL)
			json_array_set_new(dest, i, json_string(t->created));
	}
}

/* Whether a deployment's update answer says it changed nothing: a
 * secret environment value is never shown back, so a file holding one
 * always differs from the live object, and only the daemon can tell that
 * it matched (200 with the deployment as it was, no work request). */
static bool same_time_updated(const json_t *live, const json_t *resp)
{
	const char *a = json_string_value(json_object_get(live, "timeUpdated"));
	const char *b = json_string_value(json_object_get(resp, "timeUpdated"));

	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Sends it (dry: only checked). Returns 0, or the exit status after one
 * line naming the object. */
static int item_send(struct cli_ctx *ctx, struct plan *p, struct item *it,
	bool dry)
{
	const struct apply_kind *k = &apply_kinds[it->kind];
	char *path = NULL;
	json_t *resp = NULL, *body;
	long status = 0;
	int rc;

	if (dry) {
		body = dry_body(p, it, &path);
		if (body == NULL)
			return 0;
	} else {
		resolve_new_refs(p, it);
		body = json_incref(it->body);
		path = xstrdup(it->path);
	}
	rc = cli_request(ctx, it->method, path, body, &status, &resp);
	free(path);
	json_decref(body);
	if (rc == 0 && status < 300) {
		if (!dry && strcmp(it->method, "POST") == 0 && k->id_field)
			it->created = xstrdup(cli_json_str(resp, k->id_field));
		if (!dry && it->kind == APPLY_DEPLOYMENT && it->live != NULL &&
		    status == 200 && same_time_updated(it->live, resp))
			it->action = "unchanged";
		json_decref(resp);
		return 0;
	}
	if (rc == 0 && json_is_string(json_object_get(resp, "message")))
		rc = cli_fail("apply: %s %s: %s%s", k->name, it->name,
			json_string_value(json_object_get(resp, "message")),
			dry ? " (nothing was changed)" : "");
	else
		rc = cli_request_error(ctx, rc, status, resp);
	json_decref(resp);
	return rc;
}

/* After a failed real call: deletes what this run created, newest first,
 * so that the file changes nothing. A deployment still being created
 * cannot be deleted yet (409): its creation is waited for, up to
 * UNDO_WAIT_MS. What cannot be undone is said, a line each. */
static void undo_created(struct cli_ctx *ctx, struct plan *p)
{
	for (long i = p->n; i-- > 0;) {
		const struct apply_kind *k;
		struct item *it = &p->items[i];
		long long deadline = cli_now_ms() + UNDO_WAIT_MS;
		json_t *resp = NULL;
		long status = 0;
		char *path;
		int rc;

		if (it->created == NULL)
			continue;
		k = &apply_kinds[it->kind];
		path = cli_item_path(k->collection, it->created, "");
		for (;;) {
			rc = cli_request(ctx, "DELETE", path, NULL, &status,
				&resp);
			if (rc != 0 || status != 409 ||
			    cli_now_ms() >= deadline)
				break;
			json_decref(resp);
			resp = NULL;
			cli_sleep_ms(UNDO_POLL_MS);
		}
		if (rc != 0 || (status >= 300 && status != 404))
			fprintf(stderr, "mdscale: apply: the %s %s it created "
				"is still there: %s\n", k->name, it->name,
				rc == 0 && json_is_string(json_object_get(
					resp, "message"))
					? json_string_value(json_object_get(
						  resp, "message"))
					: "the daemon did not answer");
		json_decref(resp);
		free(path);
	}
}

/* The live deployment named name in list, or NULL. */
static const json_t *find_live(const json_t *list, const char *name)
{
	const json_t *x;
	size_t i;

	json_array_foreach(json_object_get(list, "items"), i, x) {
		if (strcmp(cli_json_str(x, "displayName"), name) == 0)
			return x;
	}
	return NULL;
}

/* Loads the file into p's items. Returns 0, or the exit status after
 * printing why. */
static int load_items(const char *file, struct plan *p)
{
	char diag[256], *text;
	json_t *docs, *doc;
	size_t len = 0, i;

	p->objs = json_array();
	text = read_file(file, &len);
	if (text == NULL)
		return CLI_EXIT_FAIL;
	docs = cli_yaml_load(text, len, diag, sizeof diag);
	free(text);
	if (docs == NULL)
		return cli_fail("%s: not YAML or JSON: %s", file, diag);
	json_array_foreach(docs, i, doc) {
		if (!json_is_null(doc) && flatten(doc, p->objs) != 0) {
			json_decref(docs);
			return CLI_EXIT_FAIL;
		}
	}
	json_decref(docs);
	if (json_array_size(p->objs) > APPLY_OBJECTS_MAX)
		return cli_fail("%s: more than %d objects", file,
			APPLY_OBJECTS_MAX);
	p->items = xcalloc(json_array_size(p->objs) + 1, sizeof(*p->items));
	for (i = 0; i < json_array_size(p->objs); i++) {
		int ret = item_init(p, &p->items[p->n],
			json_array_get(p->objs, i), i);

		p->n++;
		if (ret != 0)
			return ret;
	}
	return 0;
}

/* Reads the live lists of the kinds the file holds. */
static int load_live(struct cli_ctx *ctx, struct plan *p)
{
	bool need[APPLY__N] = {false};
	char *path;
	int ret;

	for (long i = 0; i < p->n; i++)
		need[p->items[i].kind] = true;
	need[APPLY_TOPIC] = need[APPLY_TOPIC] || need[APPLY_ALARM] ||
		need[APPLY_SUBSCRIPTION];
	for (int k = 0; k < APPLY__N; k++) {
		if (!need[k] || apply_kinds[k].collection == NULL)
			continue;
		path = xasprintf("/v1/%s", apply_kinds[k].collection);
		ret = cli_call(ctx, "GET", path, NULL, &p->live[k]);
		free(path);
		if (ret != 0)
			return ret;
	}
	return 0;
}

/* Whether every deployment the run changed is ACTIVE or FAILED in list
 * (a failed one sets *failed). */
static bool all_settled(const struct plan *p, const json_t *list,
	const char **failed)
{
	for (long i = 0; i < p->n; i++) {
		const struct item *it = &p->items[i];
		const json_t *cur;
		const char *st;

		if (it->method == NULL || it->kind != APPLY_DEPLOYMENT)
			continue;
		cur = find_live(list, it->name);
		st = cur ? json_string_value(json_object_get(cur,
			"lifecycleState")) : "";
		if (st != NULL && strcmp(st, "FAILED") == 0)
			*failed = it->name;
		else if (st == NULL || strcmp(st, "ACTIVE") != 0)
			return false;
	}
	return true;
}

/* --wait: long-polls the list until every changed deployment is ACTIVE or
 * FAILED, or timeout_s pass. Returns 0, or the exit status after one line.
 * The other kinds change synchronously. */
static int wait_settled(struct cli_ctx *ctx, const struct plan *p,
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
		if (all_settled(p, list, &failed)) {
			json_decref(list);
			return failed == NULL ? 0
				: cli_fail("apply: deployment %s is FAILED",
					failed);
		}
		json_decref(list);
		list = NULL;
	}
}

/* Makes the creations (creating) or the other changes, rank by rank.
 * Returns 0, or the exit status of the first refusal. */
static int send_all(struct cli_ctx *ctx, struct plan *p, bool creating,
	long *changed)
{
	for (int rank = 0; rank <= 2; rank++)
		for (long i = 0; i < p->n; i++) {
			struct item *it = &p->items[i];
			int ret;

			if (apply_kinds[it->kind].rank != rank ||
			    it->method == NULL ||
			    (strcmp(it->action, "created") == 0) != creating)
				continue;
			ret = item_send(ctx, p, it, false);
			if (ret != 0)
				return ret;
			if (strcmp(it->action, "unchanged") != 0)
				(*changed)++;
		}
	return 0;
}

/* Plans every item, then checks every change (dryRun=true), then makes
 * them, rank by rank: the creations, then the updates. Returns 0 with
 * *changed set, or the exit status. */
static int run(struct cli_ctx *ctx, struct plan *p, long *changed)
{
	int ret;

	/* In rank order: a reference's target is planned first. */
	for (int rank = 0; rank <= 2; rank++)
		for (long i = 0; i < p->n; i++)
			if (apply_kinds[p->items[i].kind].rank == rank &&
			    (ret = item_plan(ctx, p, &p->items[i])) != 0)
				return ret;
	/* Check everything before changing anything. */
	for (int rank = 0; rank <= 2; rank++)
		for (long i = 0; i < p->n; i++) {
			struct item *it = &p->items[i];

			if (apply_kinds[it->kind].rank == rank &&
			    it->method != NULL &&
			    (ret = item_send(ctx, p, it, true)) != 0)
				return ret;
		}
	/* Every creation first: what only the real call can refuse (a
	 * reference to a new object, the last free uid of instanceUids) is
	 * mostly a creation's, and creations are undone on a refusal; the
	 * updates then follow. */
	ret = send_all(ctx, p, true, changed);
	if (ret == 0)
		ret = send_all(ctx, p, false, changed);
	if (ret != 0)
		undo_created(ctx, p);
	return ret;
}

static void plan_free(struct plan *p)
{
	for (long i = 0; i < p->n; i++) {
		free(p->items[i].name);
		json_decref(p->items[i].want);
		json_decref(p->items[i].body);
		free(p->items[i].path);
		free(p->items[i].created);
	}
	free(p->items);
	for (int k = 0; k < APPLY__N; k++)
		json_decref(p->live[k]);
	json_decref(p->objs);
}

/* Prints what was done: a line per object (none when nothing changed),
 * or {"items": [{"kind", "displayName", "action"}]}. */
static void report(const struct cli_ctx *ctx, const struct plan *p,
	long changed)
{
	json_t *items, *o;

	if (!cli_structured(ctx)) {
		for (long i = 0; changed > 0 && i < p->n; i++)
			printf("%s %s %s\n", apply_kinds[p->items[i].kind].name,
				p->items[i].name, p->items[i].action);
		return;
	}
	items = json_array();
	for (long i = 0; i < p->n; i++)
		json_array_append_new(items, json_pack("{s:s, s:s, s:s}",
			"kind", apply_kinds[p->items[i].kind].name,
			"displayName", p->items[i].name,
			"action", p->items[i].action));
	o = json_pack("{s:o}", "items", items);
	cli_print_json(ctx, o);
	json_decref(o);
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
	struct plan p;
	long changed = 0, timeout = 120;
	int ret;

	memset(&p, 0, sizeof p);
	ret = cli_parse_args(ctx, argc, argv, apply_opts, NULL, NULL, val);
	if (ret != 0)
		return cli_opt_exit(ret);
	if (val[0] == NULL)
		return cli_usage_error(ctx, "give -f FILE (or -f - for stdin)");
	if (val[2] != NULL && (val[1] == NULL || cli_parse_long(ctx,
		    "timeout", val[2], 1, 86400, &timeout) != 0))
		return val[1] == NULL ? cli_usage_error(ctx,
			"--timeout goes with --wait") : CLI_EXIT_USAGE;
	ret = load_items(val[0], &p);
	if (ret == 0)
		ret = load_live(ctx, &p);
	if (ret == 0)
		ret = run(ctx, &p, &changed);
	if (ret == 0 && val[1] != NULL && changed > 0)
		ret = wait_settled(ctx, &p, timeout);
	if (ret == 0)
		report(ctx, &p, changed);
	plan_free(&p);
	return ret;
}
