/*
 * cli_deployment.c - `mdscale deployment create|import|list|get|update|
 * delete`.
 *
 * --wait polls the daemon every 200 ms over one kept-alive connection; the
 * daemon does the work, the CLI only watches it.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "util/rfc3339.h"
#include "util/xalloc.h"

#define POLL_MS 200
#define WAIT_DEFAULT_S 120
#define WAIT_MAX_S 86400

/* An option whose value goes as is into the request body. */
struct field {
	const char *key; /* the API's field */
	int opt;         /* index in the option tables */
	int integer;     /* sent as a number, checked by the CLI */
};

/* Returns whether s is one of the space-separated words of list. */
static int is_one_of(const char *s, const char *list)
{
	size_t n, len = strlen(s);

	for (; *list != '\0'; list += n + (list[n] == ' ')) {
		n = strcspn(list, " ");
		if (n == len && strncmp(list, s, n) == 0)
			return 1;
	}
	return 0;
}

/* Checks --wait/--timeout and sets *timeout to the seconds to wait. */
static int wait_timeout(struct cli_ctx *ctx, int wait, const char *arg,
	long *timeout)
{
	*timeout = WAIT_DEFAULT_S;
	if (arg == NULL)
		return 0;
	if (!wait)
		return cli_usage_error(ctx, "--timeout needs --wait");
	return cli_parse_long(ctx, "timeout", arg, 1, WAIT_MAX_S, timeout);
}

/*
 * Polls GET path until its member field is one of the space-separated
 * finals, or the path answers 404. Returns 0 with *out the last body (NULL
 * after a 404; the caller decrefs), or the exit status after printing why it
 * stopped: the timeout or a failed request. what names the object waited
 * for, in the timeout message.
 */
static int poll(struct cli_ctx *ctx, const char *path, const char *field,
	const char *finals, long timeout_s, const char *what, json_t **out)
{
	long long deadline = cli_now_ms() + timeout_s * 1000LL;
	json_t *body;
	long status;
	int rc;

	*out = NULL;
	for (;;) {
		rc = cli_request(ctx, "GET", path, NULL, &status, &body);
		if (rc == 0 && status == 404) {
			json_decref(body);
			return CLI_EXIT_OK;
		}
		if (rc != 0 || status >= 300) {
			rc = cli_request_error(ctx, rc, status, body);
			json_decref(body);
			return rc;
		}
		if (is_one_of(cli_json_str(body, field), finals)) {
			*out = body;
			return CLI_EXIT_OK;
		}
		if (cli_now_ms() >= deadline) {
			rc = cli_fail("timed out after %ld s waiting for %s (%s %s)",
				timeout_s, what, field, cli_json_str(body, field));
			json_decref(body);
			return rc;
		}
		json_decref(body);
		cli_sleep_ms(POLL_MS);
	}
}

static void ready_cell(struct cli_table *t, const json_t *d)
{
	const json_t *insts = json_object_get(d, "instances"), *inst;
	size_t i, ready = 0;

	json_array_foreach(insts, i, inst)
		ready += strcmp(cli_json_str(inst, "state"), "READY") == 0;
	if (json_is_array(insts))
		cli_table_add(t, "%zu/%" JSON_INTEGER_FORMAT, ready,
			json_integer_value(json_object_get(d, "instanceCount")));
	else
		cli_table_add(t, "-");
}

/* The freeform tags as KEY=VALUE,KEY=VALUE, or "-". */
static void tags_cell(struct cli_table *t, const json_t *d)
{
	const json_t *tags = json_object_get(d, "freeformTags"), *v;
	char buf[512];
	const char *k;
	size_t n = 0;

	buf[0] = '\0';
	json_object_foreach((json_t *)tags, k, v) {
		int w = snprintf(buf + n, sizeof(buf) - n, "%s%s=%s",
			n ? "," : "", k, json_string_value(v));

		if (w < 0 || (size_t)w >= sizeof(buf) - n)
			break;
		n += (size_t)w;
	}
	cli_table_add(t, "%s", n ? buf : "-");
}

/* Prints one deployment, or the items of a list when list is set. */
static void print_deployments(const struct cli_ctx *ctx, const json_t *body,
	int list)
{
	static const struct cli_column cols[] = {
		{"ID", "id", NULL, 0},
		{"NAME", "displayName", NULL, 0},
		{"STATE", "lifecycleState", NULL, 0},
		{"SHAPE", "instanceShapeName", NULL, 0},
		{"COUNT", "instanceCount", NULL, 0},
		{"READY", NULL, ready_cell, 0},
		{"ENDPOINT", "endpoint", NULL, 0},
		{"HEALTH", "healthPath", NULL, 1},
		{"TAGS", NULL, tags_cell, 1},
		{"CREATED", "timeCreated", NULL, 1},
		{"UPDATED", "timeUpdated", NULL, 1},
		{"DETAILS", "lifecycleDetails", NULL, 1},
		{NULL, NULL, NULL, 0},
	};

	cli_print_rows(ctx, body, list, cols);
}

/* The options of create, update and delete: one table and one parser for
 * the three; each command says which ones it takes. */
enum { O_NAME, O_COMMAND, O_ARGV, O_SHAPE, O_COUNT, O_HEALTH, O_ENV,
	O_READY, O_DRAIN, O_WAIT, O_TIMEOUT, O_AUTOSCALE, O_PROFILE,
	O_MAX_INSTANCES, O_TAG, O__N };

static const struct cli_opt change_opts[] = {
	[O_NAME] = {"name", 1},
	[O_COMMAND] = {"command", 1},
	[O_ARGV] = {"argv", 1},
	[O_SHAPE] = {"shape", 1},
	[O_COUNT] = {"count", 1},
	[O_HEALTH] = {"health-path", 1},
	[O_ENV] = {"env", 1},
	[O_READY] = {"ready-timeout", 1},
	[O_DRAIN] = {"drain-timeout", 1},
	[O_WAIT] = {"wait", 0},
	[O_TIMEOUT] = {"timeout", 1},
	[O_AUTOSCALE] = {"autoscale", 0},
	[O_PROFILE] = {"autoscale-profile", 1},
	[O_MAX_INSTANCES] = {"max-instances", 1},
	[O_TAG] = {"tag", 1},
	[O__N] = {NULL, 0},
};

#define BIT(o) (1u << (o))
#define WAIT_OPTS (BIT(O_WAIT) | BIT(O_TIMEOUT))
#define CREATE_OPTS (BIT(O__N) - 1)
#define UPDATE_OPTS (BIT(O_SHAPE) | BIT(O_COUNT) | BIT(O_COMMAND) | \
	BIT(O_ARGV) | BIT(O_ENV) | BIT(O_HEALTH) | BIT(O_READY) | \
	BIT(O_DRAIN) | BIT(O_TAG) | WAIT_OPTS)
#define DELETE_OPTS WAIT_OPTS

/* The options whose value goes into the request body as is. */
static const struct field body_fields[] = {
	{"displayName", O_NAME, 0},
	{"command", O_COMMAND, 0},
	{"instanceShapeName", O_SHAPE, 0},
	{"instanceCount", O_COUNT, 1},
	{"healthPath", O_HEALTH, 0},
	{"readyTimeoutSeconds", O_READY, 1},
	{"drainTimeoutSeconds", O_DRAIN, 1},
};

/*
 * Adds the value given for each body field to obj. Returns 0, or the exit
 * status after a usage error (a bad integer, a string that is not UTF-8).
 */
static int put_fields(struct cli_ctx *ctx, json_t *obj,
	const char *const *val)
{
	json_t *j;
	size_t i;
	long l;
	int rc;

	for (i = 0; i < sizeof body_fields / sizeof body_fields[0]; i++) {
		const char *v = val[body_fields[i].opt];
		const char *opt = change_opts[body_fields[i].opt].name;

		if (v == NULL)
			continue;
		if (body_fields[i].integer) {
			rc = cli_parse_long(ctx, opt, v, 0, INT_MAX, &l);
			if (rc != 0)
				return rc;
			j = json_integer(l);
		} else {
			j = json_string(v);
		}
		if (j == NULL)
			return cli_usage_error(ctx, "--%s is not valid UTF-8", opt);
		json_object_set_new(obj, body_fields[i].key, j);
	}
	return 0;
}

/* Adds one --argv, --env or --tag value to the command array, the
 * environment or the tags. */
static int add_repeated(struct cli_ctx *ctx, int o, const char *v,
	json_t *body)
{
	const char *eq = strchr(v, '='), *opt, *field;
	json_t *s;
	char *key;
	int rc;

	if (o == O_ARGV) {
		s = json_string(v);
		if (s == NULL)
			return cli_usage_error(ctx, "--argv is not valid UTF-8");
		if (!json_is_array(json_object_get(body, "command")))
			json_object_set_new(body, "command", json_array());
		json_array_append_new(json_object_get(body, "command"), s);
		return 0;
	}
	opt = o == O_ENV ? "env" : "tag";
	field = o == O_ENV ? "environment" : "freeformTags";
	if (eq == NULL || eq == v)
		return cli_usage_error(ctx, "--%s needs KEY=VALUE, not '%s'",
			opt, v);
	if (json_object_get(body, field) == NULL)
		json_object_set_new(body, field, json_object());
	key = xstrndup(v, (size_t)(eq - v));
	s = json_string(eq + 1);
	rc = s != NULL ? json_object_set_new(json_object_get(body, field),
		key, s) : -1;
	free(key);
	return rc == 0 ? 0 : cli_usage_error(ctx, "--%s is not valid UTF-8",
		opt);
}

/*
 * Parses the arguments of create, update or delete: the deployment ID into
 * *id (none for create: id NULL), the options into val ("" for --wait) and
 * body (--argv and --env too), --timeout into *timeout. Returns 0, or
 * CLI_OPT_HELP or CLI_OPT_USAGE after printing the help or the error.
 */
static int parse(struct cli_ctx *ctx, int argc, char **argv, unsigned allowed,
	const char **val, const char **id, json_t *body, long *timeout)
{
	struct cli_getopt g = {.argc = argc, .argv = argv, .index = 1};
	int o;

	for (;;) {
		o = cli_getopt(ctx, &g, change_opts);
		if (o == CLI_OPT_END)
			break;
		if (o >= 0 && (allowed & BIT(o)) == 0) {
			cli_usage_error(ctx, "unknown option '--%s'",
				change_opts[o].name);
			return CLI_OPT_USAGE;
		}
		if (o == CLI_OPT_ARG && (id == NULL || *id != NULL)) {
			cli_usage_error(ctx, "unexpected argument '%s'", g.value);
			return CLI_OPT_USAGE;
		}
		if (o == CLI_OPT_ARG)
			*id = g.value;
		else if (o < 0)
			return o;
		else if (o == O_WAIT || o == O_ARGV || o == O_ENV ||
			 o == O_AUTOSCALE || o == O_TAG)
			val[o] = "";
		else
			val[o] = g.value;
		if ((o == O_ARGV || o == O_ENV || o == O_TAG) &&
		    add_repeated(ctx, o, g.value, body) != 0)
			return CLI_OPT_USAGE;
	}
	if (id != NULL && *id == NULL) {
		cli_usage_error(ctx, "missing the deployment ID or NAME");
		return CLI_OPT_USAGE;
	}
	if (wait_timeout(ctx, val[O_WAIT] != NULL, val[O_TIMEOUT],
		    timeout) != 0 || put_fields(ctx, body, val) != 0)
		return CLI_OPT_USAGE;
	return 0;
}

/* Adds "autoscale": {"profile", "maxInstances"} to a create's body. */
static int add_autoscale(struct cli_ctx *ctx, json_t *req,
	const char *const *val)
{
	json_t *as = json_object();
	long l;
	int rc;

	if (val[O_PROFILE] != NULL)
		json_object_set_new(as, "profile", json_string(val[O_PROFILE]));
	if (val[O_MAX_INSTANCES] != NULL) {
		rc = cli_parse_long(ctx, "max-instances", val[O_MAX_INSTANCES],
			1, 256, &l);
		if (rc != 0) {
			json_decref(as);
			return rc;
		}
		json_object_set_new(as, "maxInstances", json_integer(l));
	}
	json_object_set_new(req, "autoscale", as);
	return 0;
}

/* Waits until work request wr ends (SUCCEEDED or FAILED); returns 0 with
 * its last state in *last (the caller decrefs), or the exit status after
 * printing why it stopped. */
static int wait_workrequest(struct cli_ctx *ctx, const char *wr,
	long timeout, json_t **last)
{
	char *path = cli_item_path("workrequests", wr, "");
	char *what = xasprintf("work request %s to finish", wr);
	int ret;

	ret = poll(ctx, path, "status", "SUCCEEDED FAILED", timeout, what,
		last);
	if (ret == 0 && *last == NULL)
		ret = cli_fail("work request %s disappeared", wr);
	free(path);
	free(what);
	return ret;
}

/*
 * Waits up to timeout seconds for the deployment of resp (a create's or an
 * import's answer) to be ACTIVE or FAILED and prints it. Errors say
 * "WHAT REF failed" / "deployment REF disappeared". Returns the exit
 * status.
 */
static int wait_active(struct cli_ctx *ctx, const json_t *resp,
	long timeout, const char *ref, const char *what)
{
	char *path = cli_item_path("deployments", cli_json_str(resp, "id"), "");
	char *waiting = xasprintf("deployment %s to be ACTIVE",
		cli_json_str(resp, "displayName"));
	json_t *last = NULL;
	int ret = poll(ctx, path, "lifecycleState", "ACTIVE FAILED", timeout,
		waiting, &last);

	if (ret == 0 && last == NULL)
		ret = cli_fail("deployment %s disappeared", ref);
	if (ret == 0) {
		print_deployments(ctx, last, 0);
		if (strcmp(cli_json_str(last, "lifecycleState"), "FAILED") == 0)
			ret = cli_fail("%s %s failed: %s", what, ref,
				cli_json_str(last, "lifecycleDetails"));
	}
	json_decref(last);
	free(path);
	free(waiting);
	return ret;
}

int cli_deployment_create(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *val[O__N] = {NULL};
	json_t *req = json_object(), *resp = NULL;
	const char *name;
	long timeout;
	int ret;

	ret = parse(ctx, argc, argv, CREATE_OPTS, val, NULL, req,
		&timeout);
	if (ret != 0) {
		ret = cli_opt_exit(ret);
		goto out;
	}
	name = val[O_NAME];
	if (name == NULL)
		ret = cli_usage_error(ctx, "missing --name");
	else if (val[O_COMMAND] != NULL && val[O_ARGV] != NULL)
		ret = cli_usage_error(ctx, "give --command or --argv, not both");
	else if (val[O_COMMAND] == NULL && val[O_ARGV] == NULL)
		ret = cli_usage_error(ctx, "missing --command or --argv");
	if (ret == 0 && (val[O_AUTOSCALE] != NULL || val[O_PROFILE] != NULL ||
			 val[O_MAX_INSTANCES] != NULL))
		ret = add_autoscale(ctx, req, val);
	if (ret != 0)
		goto out;
	ret = cli_call(ctx, "POST", "/v1/deployments", req, &resp);
	if (ret != 0)
		goto out;
	if (val[O_WAIT] == NULL) {
		print_deployments(ctx, resp, 0);
		goto out;
	}
	ret = wait_active(ctx, resp, timeout, name, "deployment");
out:
	json_decref(req);
	json_decref(resp);
	return ret;
}

/* The options of list: filters and order, sent as query parameters. */
enum { L_NAME, L_STATE, L_TAG, L_SORT_BY, L_SORT_ORDER, L_WATCH, L__N };

static const struct cli_opt list_opts[] = {
	[L_NAME] = {"name", 1},
	[L_STATE] = {"state", 1},
	[L_TAG] = {"tag", 1},
	[L_SORT_BY] = {"sort-by", 1},
	[L_SORT_ORDER] = {"sort-order", 1},
	[L_WATCH] = {"watch", 0},
	[L__N] = {NULL, 0},
};

/* The query parameter of each list option (NULL: none). */
static const char *const list_params[L__N] = {
	[L_NAME] = "displayName",
	[L_STATE] = "lifecycleState",
	[L_TAG] = "tag",
	[L_SORT_BY] = "sortBy",
	[L_SORT_ORDER] = "sortOrder",
};

/* How long one long-poll of --watch waits on the daemon, in seconds (the
 * CLI's request timeout is 60 s). */
#define WATCH_POLL_S 30

/*
 * Sends GET path (which already holds a '?') as a long-poll: the answer
 * comes once the deployments' version is no longer *version (or after
 * WATCH_POLL_S); *version gets the new one. Returns 0 with *json the list
 * (caller decrefs), or the exit status after printing the error.
 */
static int watch_next(struct cli_ctx *ctx, const char *path,
	json_int_t *version, json_t **json)
{
	char *p;
	int ret;

	if (*version < 0)
		p = xasprintf("%s&watch=true", path);
	else
		p = xasprintf("%s&watch=true&resourceVersion=%" JSON_INTEGER_FORMAT
			"&timeoutSeconds=%d", path, *version, WATCH_POLL_S);
	ret = cli_call(ctx, "GET", p, NULL, json);
	free(p);
	if (ret == 0)
		*version = json_integer_value(json_object_get(*json,
			"resourceVersion"));
	return ret;
}

int cli_deployment_list(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *val[L__N] = {NULL};
	json_t *resp = NULL, *shown = NULL;
	char *path = xstrdup("/v1/deployments?"), *next, *esc;
	json_int_t version = -1;
	int ret, n = 0;

	ret = cli_parse_args(ctx, argc, argv, list_opts, NULL, NULL, val);
	if (ret != 0) {
		free(path);
		return cli_opt_exit(ret);
	}
	for (int i = 0; i < L__N; i++) {
		if (val[i] == NULL || list_params[i] == NULL)
			continue;
		esc = cli_escape(val[i]);
		next = xasprintf("%s%s%s=%s", path, n++ ? "&" : "",
			list_params[i], esc);
		free(esc);
		free(path);
		path = next;
	}
	if (val[L_WATCH] == NULL) {
		ret = cli_call(ctx, "GET", path, NULL, &resp);
		if (ret == 0)
			print_deployments(ctx, resp, 1);
		goto out;
	}
	/* --watch: print the list, then again each time it changes, until
	 * interrupted. */
	while ((ret = watch_next(ctx, path, &version, &resp)) == 0) {
		if (shown == NULL || !json_equal(json_object_get(resp, "items"),
			    json_object_get(shown, "items"))) {
			print_deployments(ctx, resp, 1);
			fflush(stdout);
			json_decref(shown);
			shown = json_incref(resp);
		}
		json_decref(resp);
		resp = NULL;
	}
out:
	json_decref(resp);
	json_decref(shown);
	free(path);
	return ret;
}

/* An instance's address and port, where the gateway reaches it; "-"
 * when it does not. */
static void address_cell(struct cli_table *t, const json_t *inst)
{
	const char *addr = cli_json_str(inst, "address");
	json_int_t port = json_integer_value(json_object_get(inst, "port"));

	if (addr[0] == '\0' || port <= 0)
		cli_table_add(t, "-");
	else
		cli_table_add(t, "%s:%" JSON_INTEGER_FORMAT, addr, port);
}

/* Prints a deployment and, in a table, its instances. */
static void print_one(const struct cli_ctx *ctx, const json_t *resp)
{
	const json_t *inst;
	struct cli_table *t;
	size_t i;

	print_deployments(ctx, resp, 0);
	if (cli_structured(ctx))
		return;
	t = cli_table_new("ID STATE ADDRESS PID SHAPE RESTARTS STARTED");
	json_array_foreach(json_object_get(resp, "instances"), i, inst) {
		cli_table_json(t, inst, "id");
		cli_table_json(t, inst, "state");
		address_cell(t, inst);
		cli_table_json(t, inst, "pid");
		cli_table_json(t, inst, "instanceShapeName");
		cli_table_json(t, inst, "restarts");
		cli_table_json(t, inst, "timeStarted");
	}
	fputc('\n', stdout);
	cli_table_print(t, stdout);
	cli_table_free(t);
}

/* get --watch: prints the deployment, then again each time it changes;
 * ends (0) once it is gone. */
static int watch_one(struct cli_ctx *ctx, const char *path, const char *id)
{
	json_t *list = NULL, *cur = NULL, *shown = NULL;
	json_int_t version = -1;
	long status;
	int ret;

	while ((ret = watch_next(ctx, "/v1/deployments?", &version,
		    &list)) == 0) {
		json_decref(list);
		list = NULL;
		ret = cli_request(ctx, "GET", path, NULL, &status, &cur);
		if (ret == 0 && status == 404 && shown != NULL) {
			if (!cli_structured(ctx))
				printf("deployment %s is gone\n", id);
			break;
		}
		if (ret != 0 || status >= 300) {
			ret = cli_request_error(ctx, ret, status, cur);
			break;
		}
		if (shown == NULL || !json_equal(cur, shown)) {
			print_one(ctx, cur);
			fflush(stdout);
			json_decref(shown);
			shown = json_incref(cur);
		}
		json_decref(cur);
		cur = NULL;
	}
	json_decref(cur);
	json_decref(shown);
	return ret;
}

static const struct cli_opt get_opts[] = {
	{"watch", 0},
	{NULL, 0},
};

int cli_deployment_get(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *val[1] = {NULL};
	json_t *resp = NULL;
	const char *id;
	char *path;
	int ret;

	ret = cli_parse_args(ctx, argc, argv, get_opts,
		"the deployment ID or NAME", &id, val);
	if (ret != 0)
		return cli_opt_exit(ret);
	path = cli_item_path("deployments", id, "");
	if (val[0] != NULL) {
		ret = watch_one(ctx, path, id);
		free(path);
		return ret;
	}
	ret = cli_call(ctx, "GET", path, NULL, &resp);
	free(path);
	if (ret != 0)
		return ret;
	print_one(ctx, resp);
	json_decref(resp);
	return CLI_EXIT_OK;
}

/*
 * --wait's final state after work request wr ended: the work request,
 * then the deployment at path read back (or "deployment ID is gone");
 * with -o json|yaml one document, the work request with a "deployment"
 * member (null when gone). Returns an exit status.
 */
static int print_final(struct cli_ctx *ctx, json_t *wr, const char *path,
	const char *id)
{
	json_t *dep = NULL;
	long status = 0;
	int rc = cli_request(ctx, "GET", path, NULL, &status, &dep);

	if (rc != 0 || (status >= 300 && status != 404)) {
		rc = cli_request_error(ctx, rc, status, dep);
		json_decref(dep);
		return rc;
	}
	if (status == 404) {
		json_decref(dep);
		dep = NULL;
	}
	if (cli_structured(ctx)) {
		json_object_set_new(wr, "deployment",
			dep ? json_incref(dep) : json_null());
		cli_print_json(ctx, wr);
	} else {
		cli_workrequest_print(ctx, wr);
		fputc('\n', stdout);
		if (dep != NULL)
			print_one(ctx, dep);
		else
			printf("deployment %s is gone\n", id);
	}
	json_decref(dep);
	return CLI_EXIT_OK;
}

int cli_deployment_update(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *val[O__N] = {NULL};
	json_t *req = json_object(), *resp = NULL, *last = NULL;
	char *path = NULL;
	const char *id = NULL, *wr;
	long timeout;
	int ret;

	ret = parse(ctx, argc, argv, UPDATE_OPTS, val, &id, req, &timeout);
	if (ret != 0) {
		ret = cli_opt_exit(ret);
		goto out;
	}
	if (json_object_size(req) == 0) {
		ret = cli_usage_error(ctx, "give at least one of --count, "
			"--shape, --command, --argv, --env, --health-path, "
			"--ready-timeout, --drain-timeout");
		goto out;
	}
	if (val[O_COMMAND] != NULL && val[O_ARGV] != NULL) {
		ret = cli_usage_error(ctx, "give --command or --argv, not both");
		goto out;
	}
	path = cli_item_path("deployments", id, "");
	ret = cli_call(ctx, "PUT", path, req, &resp);
	if (ret != 0)
		goto out;
	if (json_object_get(resp, "operationType") == NULL) {
		/* 200 without a work request: the change (timeouts, tags,
		 * or none) is done already; this is the final state. */
		print_one(ctx, resp);
		goto out;
	}
	if (val[O_WAIT] == NULL) {
		cli_workrequest_print(ctx, resp);
		goto out;
	}
	wr = cli_json_str(resp, "id");
	ret = wait_workrequest(ctx, wr, timeout, &last);
	if (ret != 0)
		goto out;
	ret = print_final(ctx, last, path, id);
	if (ret == 0 && strcmp(cli_json_str(last, "status"), "FAILED") == 0)
		ret = cli_fail("update of deployment %s failed: %s (work request %s)",
			id, cli_json_str(last, "errorMessage"), wr);
out:
	json_decref(req);
	json_decref(resp);
	json_decref(last);
	free(path);
	return ret;
}

int cli_deployment_delete(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *val[O__N] = {NULL};
	json_t *resp = NULL, *last = NULL;
	char *path = NULL;
	const char *id = NULL;
	long timeout;
	int ret;

	ret = parse(ctx, argc, argv, DELETE_OPTS, val, &id, NULL, &timeout);
	if (ret != 0)
		return cli_opt_exit(ret);
	path = cli_item_path("deployments", id, "");
	ret = cli_call(ctx, "DELETE", path, NULL, &resp);
	if (ret != 0)
		goto out;
	if (val[O_WAIT] == NULL) {
		cli_workrequest_print(ctx, resp);
		goto out;
	}
	ret = wait_workrequest(ctx, cli_json_str(resp, "id"), timeout, &last);
	if (ret != 0)
		goto out;
	ret = print_final(ctx, last, path, id);
	if (ret == 0 && strcmp(cli_json_str(last, "status"), "FAILED") == 0)
		ret = cli_fail("deletion of deployment %s failed: %s (work "
			"request %s)", id, cli_json_str(last, "errorMessage"),
			cli_json_str(last, "id"));
out:
	json_decref(resp);
	json_decref(last);
	free(path);
	return ret;
}

/* Formats epoch milliseconds as UTC "2026-11-28T06:14:31Z". */
static void format_ms(json_int_t ms, char *out, size_t size)
{
	rfc3339_format((int64_t)ms, RFC3339_SECONDS, out, size);
}

/* Formats {"instanceCount", "instanceShapeName"} as "2 x local.s". */
static void format_size(const json_t *o, char *out, size_t size)
{
	if (o == NULL)
		snprintf(out, size, "-");
	else
		snprintf(out, size, "%" JSON_INTEGER_FORMAT " x %s",
			json_integer_value(json_object_get(o, "instanceCount")),
			cli_json_str(o, "instanceShapeName"));
}

int cli_deployment_history(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *id = NULL;
	json_t *resp = NULL, *e;
	struct cli_table *t;
	char *path;
	size_t i;
	int ret;

	ret = cli_parse_simple(ctx, argc, argv, "the deployment ID or NAME",
		&id);
	if (ret != 0)
		return cli_opt_exit(ret);
	path = cli_item_path("deployments", id, "/scaling-history");
	ret = cli_call(ctx, "GET", path, NULL, &resp);
	free(path);
	if (ret != 0 || cli_structured(ctx)) {
		if (ret == 0)
			cli_print_json(ctx, resp);
		json_decref(resp);
		return ret;
	}
	t = cli_table_new("TIME ALARM TYPE VALUE ACTION FROM TO WORKREQUEST "
			  "REASON");
	json_array_foreach(json_object_get(resp, "items"), i, e) {
		json_t *v = json_object_get(e, "value");
		char cell[128];

		if (json_is_string(json_object_get(e, "time")))
			cli_table_json(t, e, "time");
		else {
			format_ms(json_integer_value(json_object_get(e,
				"time")), cell, sizeof cell);
			cli_table_add(t, "%s", cell);
		}
		cli_table_json(t, e, "alarmTitle");
		cli_table_json(t, e, "messageType");
		if (json_is_number(v))
			cli_table_add(t, "%.1f", json_number_value(v));
		else
			cli_table_add(t, "-");
		cli_table_json(t, e, "action");
		format_size(json_object_get(e, "from"), cell, sizeof cell);
		cli_table_add(t, "%s", cell);
		format_size(json_object_get(e, "to"), cell, sizeof cell);
		cli_table_add(t, "%s", cell);
		cli_table_json(t, e, "workRequestId");
		cli_table_json(t, e, "reason");
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(resp);
	return 0;
}

enum { I_BACKEND, I_NAME, I_WAIT, I_TIMEOUT, I__N };

static const struct cli_opt import_opts[] = {
	[I_BACKEND] = {"backend", 1},
	[I_NAME] = {"name", 1},
	[I_WAIT] = {"wait", 0},
	[I_TIMEOUT] = {"timeout", 1},
	[I__N] = {NULL, 0},
};

/* Parses import's arguments: the options into val, the ref into *ref. */
static int parse_import(struct cli_ctx *ctx, int argc, char **argv,
	const char **val, const char **ref)
{
	struct cli_getopt g = {.argc = argc, .argv = argv, .index = 1};
	int o;

	while ((o = cli_getopt(ctx, &g, import_opts)) != CLI_OPT_END) {
		if (o == CLI_OPT_ARG && *ref != NULL) {
			cli_usage_error(ctx, "unexpected argument '%s'", g.value);
			return CLI_OPT_USAGE;
		}
		if (o == CLI_OPT_ARG)
			*ref = g.value;
		else if (o < 0)
			return o;
		else
			val[o] = o == I_WAIT ? "" : g.value;
	}
	if (val[I_BACKEND] == NULL) {
		cli_usage_error(ctx, "missing --backend");
		return CLI_OPT_USAGE;
	}
	if (*ref == NULL) {
		cli_usage_error(ctx, "missing what to import (NAMESPACE/NAME "
			"for kubernetes, an OCID for oci)");
		return CLI_OPT_USAGE;
	}
	return 0;
}

int cli_deployment_import(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *val[I__N] = {NULL}, *ref = NULL;
	json_t *req = NULL, *resp = NULL;
	long timeout;
	int ret;

	ret = parse_import(ctx, argc, argv, val, &ref);
	if (ret == 0)
		ret = wait_timeout(ctx, val[I_WAIT] != NULL, val[I_TIMEOUT],
			&timeout) != 0 ? CLI_OPT_USAGE : 0;
	if (ret != 0)
		return cli_opt_exit(ret);
	req = json_pack("{s:s, s:s}", "backend", val[I_BACKEND], "ref", ref);
	if (val[I_NAME] != NULL)
		json_object_set_new(req, "displayName",
			json_string(val[I_NAME]));
	ret = cli_call(ctx, "POST", "/v1/deployments/import", req, &resp);
	if (ret != 0 || val[I_WAIT] == NULL) {
		if (ret == 0)
			print_deployments(ctx, resp, 0);
		goto out;
	}
	ret = wait_active(ctx, resp, timeout, ref, "importing");
out:
	json_decref(req);
	json_decref(resp);
	return ret;
}
