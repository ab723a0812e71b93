/*
 * cli_alarm.c - `mdscale alarm create|list|get|update|delete|status|history`.
 *
 * The flags map one to one onto the API's alarm fields (docs/api.md); the
 * daemon checks the values, so a bad query or duration is reported with the
 * daemon's message (the column of a query error, the field to blame).
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/xalloc.h"

enum { A_NAME, A_QUERY, A_NAMESPACE, A_SEVERITY, A_PENDING, A_REPEAT,
	A_DESTINATION, A_BODY, A_FORMAT, A_DISABLED, A_ENABLED, A_WAIT,
	A__N };

static const struct cli_opt alarm_opts[] = {
	[A_NAME] = {"name", 1},
	[A_QUERY] = {"query", 1},
	[A_NAMESPACE] = {"namespace", 1},
	[A_SEVERITY] = {"severity", 1},
	[A_PENDING] = {"pending", 1},
	[A_REPEAT] = {"repeat", 1},
	[A_DESTINATION] = {"destination", 1},
	[A_BODY] = {"body", 1},
	[A_FORMAT] = {"format", 1},
	[A_DISABLED] = {"disabled", 0},
	[A_ENABLED] = {"enabled", 0},
	[A_WAIT] = {"wait", 0},
	[A__N] = {NULL, 0},
};

/* The options whose value goes into the body as a string. */
static const struct {
	const char *key;
	int opt;
} alarm_fields[] = {
	{"displayName", A_NAME},
	{"query", A_QUERY},
	{"namespace", A_NAMESPACE},
	{"severity", A_SEVERITY},
	{"pendingDuration", A_PENDING},
	{"repeatNotificationDuration", A_REPEAT},
	{"messageFormat", A_FORMAT},
	{"body", A_BODY},
};

static void enabled_cell(struct cli_table *t, const json_t *a)
{
	const json_t *en = json_object_get(a, "isEnabled");

	cli_table_add(t, "%s", json_is_boolean(en) ?
		(json_is_true(en) ? "yes" : "no") : "-");
}

static void destinations_cell(struct cli_table *t, const json_t *a)
{
	const json_t *d = json_object_get(a, "destinations"), *x;
	char line[256];
	size_t i, n = 0;

	line[0] = '\0';
	json_array_foreach(d, i, x)
		if (json_is_string(x) && n < sizeof line)
			n += (size_t)snprintf(line + n, sizeof line - n, "%s%s",
				n ? "," : "", json_string_value(x));
	cli_table_add(t, "%s", n ? line : "-");
}

/* Prints one alarm, or the items of a list when list is set. */
static void print_alarms(const struct cli_ctx *ctx, const json_t *body,
	int list)
{
	static const struct cli_column cols[] = {
		{"ID", "id", NULL, 0},
		{"NAME", "displayName", NULL, 0},
		{"SEVERITY", "severity", NULL, 0},
		{"ENABLED", NULL, enabled_cell, 0},
		{"PENDING", "pendingDuration", NULL, 0},
		{"REPEAT", "repeatNotificationDuration", NULL, 0},
		{"QUERY", "query", NULL, 0},
		{"DESTINATIONS", NULL, destinations_cell, 1},
		{"BODY", "body", NULL, 1},
		{NULL, NULL, NULL, 0},
	};

	cli_print_rows(ctx, body, list, cols);
}

/*
 * Parses the arguments of create or update into body: the alarm ID into
 * *id (update; id NULL for create), the number of fields given into *nset,
 * --wait into *wait.
 * Returns 0, or CLI_OPT_HELP or CLI_OPT_USAGE (for cli_opt_exit()) after
 * printing the help or the usage error.
 */
static int parse(struct cli_ctx *ctx, int argc, char **argv, const char **id,
	json_t *body, int *nset, int *wait)
{
	struct cli_getopt g = {.argc = argc, .argv = argv, .index = 1};
	const char *val[A__N] = {NULL};
	json_t *dest = json_array(), *s;
	size_t i;
	int o;

	*nset = 0;
	for (;;) {
		o = cli_getopt(ctx, &g, alarm_opts);
		if (o == CLI_OPT_END)
			break;
		if (o == CLI_OPT_ARG && (id == NULL || *id != NULL)) {
			cli_usage_error(ctx, "unexpected argument '%s'",
				g.value);
			o = CLI_OPT_USAGE;
		} else if (o == CLI_OPT_ARG) {
			*id = g.value;
			continue;
		}
		if (o < 0) {
			json_decref(dest);
			return o;
		}
		if (o == A_WAIT) {
			*wait = 1;
			continue;
		}
		(*nset)++;
		val[o] = o == A_DISABLED || o == A_ENABLED ? "" : g.value;
		if (o == A_DESTINATION &&
		    json_array_append_new(dest,
			cli_topic_id(ctx, g.value)) != 0) {
			json_decref(dest);
			cli_usage_error(ctx,
				"--destination is not valid UTF-8");
			return CLI_OPT_USAGE;
		}
	}
	if (val[A_DESTINATION] != NULL)
		json_object_set_new(body, "destinations", dest);
	else
		json_decref(dest);
	if (id != NULL && *id == NULL) {
		cli_usage_error(ctx, "missing the alarm ID");
		return CLI_OPT_USAGE;
	}
	if (val[A_DISABLED] != NULL && val[A_ENABLED] != NULL) {
		cli_usage_error(ctx, "give --enabled or --disabled, not both");
		return CLI_OPT_USAGE;
	}
	if (val[A_DISABLED] != NULL || val[A_ENABLED] != NULL)
		json_object_set_new(body, "isEnabled",
			json_boolean(val[A_ENABLED] != NULL));
	if (val[A_REPEAT] != NULL && strcmp(val[A_REPEAT], "none") == 0)
		json_object_set_new(body, "repeatNotificationDuration",
			json_null());
	for (i = 0; i < sizeof alarm_fields / sizeof alarm_fields[0]; i++) {
		const char *v = val[alarm_fields[i].opt];

		if (v == NULL || (alarm_fields[i].opt == A_REPEAT &&
		    strcmp(v, "none") == 0))
			continue;
		s = json_string(v);
		if (s == NULL) {
			cli_usage_error(ctx, "--%s is not valid UTF-8",
				alarm_opts[alarm_fields[i].opt].name);
			return CLI_OPT_USAGE;
		}
		json_object_set_new(body, alarm_fields[i].key, s);
	}
	return 0;
}

static int print_final(struct cli_ctx *ctx, const json_t *resp, int wait);

int cli_alarm_create(struct cli_ctx *ctx, int argc, char **argv)
{
	json_t *req = json_object(), *resp = NULL;
	int ret, nset, wait = 0;

	ret = parse(ctx, argc, argv, NULL, req, &nset, &wait);
	if (ret != 0) {
		ret = cli_opt_exit(ret);
		goto out;
	}
	if (json_object_get(req, "displayName") == NULL)
		ret = cli_usage_error(ctx, "missing --name");
	else if (json_object_get(req, "query") == NULL)
		ret = cli_usage_error(ctx, "missing --query");
	else
		ret = cli_call(ctx, "POST", "/v1/alarms", req, &resp);
	if (ret == 0)
		ret = print_final(ctx, resp, wait);
out:
	json_decref(req);
	json_decref(resp);
	return ret;
}

int cli_alarm_update(struct cli_ctx *ctx, int argc, char **argv)
{
	json_t *req = json_object(), *resp = NULL;
	const char *id = NULL;
	char *path = NULL;
	int ret, nset, wait = 0;

	ret = parse(ctx, argc, argv, &id, req, &nset, &wait);
	if (ret != 0) {
		ret = cli_opt_exit(ret);
		goto out;
	}
	if (nset == 0)
		ret = cli_usage_error(ctx, "give at least one field to change");
	if (ret == 0) {
		path = cli_item_path("alarms", id, "");
		ret = cli_call(ctx, "PUT", path, req, &resp);
	}
	if (ret == 0)
		ret = print_final(ctx, resp, wait);
out:
	json_decref(req);
	json_decref(resp);
	free(path);
	return ret;
}

static void print_alarm_list(const struct cli_ctx *ctx, const json_t *body)
{
	print_alarms(ctx, body, 1);
}

int cli_alarm_list(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_list_def def = {
		.collection = "alarms", .name_param = "displayName",
	};

	return cli_list_cmd(ctx, argc, argv, &def, print_alarm_list);
}

/* Runs a command that takes one alarm ID and calls method on the path. */
static int by_id(struct cli_ctx *ctx, int argc, char **argv,
	const char *method, const char *suffix, json_t **resp,
	const char **id)
{
	char *path;
	int ret;

	ret = cli_parse_simple(ctx, argc, argv, "the alarm ID", id);
	if (ret != 0)
		return cli_opt_exit(ret);
	path = cli_item_path("alarms", *id, suffix);
	ret = cli_call(ctx, method, path, NULL, resp);
	free(path);
	return ret;
}

/* Prints one alarm: its row, then (table) its namespace, format,
 * destinations and body. */
static void print_alarm_one(const struct cli_ctx *ctx, const json_t *resp)
{
	const json_t *d;
	size_t i;

	print_alarms(ctx, resp, 0);
	if (cli_structured(ctx))
		return;
	printf("\nnamespace:     %s\nmessageFormat: %s\ndestinations: ",
		cli_json_str(resp, "namespace"),
		cli_json_str(resp, "messageFormat"));
	json_array_foreach(json_object_get(resp, "destinations"), i, d)
		printf(" %s", json_string_value(d));
	printf("%s\nbody:          %s\n",
		json_array_size(json_object_get(resp, "destinations")) ? ""
			: " -",
		*cli_json_str(resp, "body") ? cli_json_str(resp, "body") : "-");
}

int cli_alarm_get(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_get_cmd(ctx, argc, argv, "alarm", "alarms", NULL,
		print_alarm_one);
}

int cli_alarm_delete(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_delete_cmd(ctx, argc, argv, "alarm", "alarms", "deleted",
		print_alarm_one);
}

/* Prints a created or updated alarm: the answer, or with --wait the alarm
 * read back. Returns an exit status. */
static int print_final(struct cli_ctx *ctx, const json_t *resp, int wait)
{
	char *path, *what;
	int ret;

	if (!wait) {
		print_alarms(ctx, resp, 0);
		return CLI_EXIT_OK;
	}
	path = cli_item_path("alarms", cli_json_str(resp, "id"), "");
	what = xasprintf("alarm %s", cli_json_str(resp, "id"));
	ret = cli_wait_readback(ctx, path, what, print_alarm_one);
	free(path);
	free(what);
	return ret;
}

int cli_alarm_status(struct cli_ctx *ctx, int argc, char **argv)
{
	json_t *resp = NULL, *s;
	struct cli_table *t;
	const char *id;
	size_t i;
	int ret;

	ret = by_id(ctx, argc, argv, "GET", "/status", &resp, &id);
	if (ret != 0)
		return ret;
	if (cli_structured(ctx)) {
		cli_print_json(ctx, resp);
		json_decref(resp);
		return CLI_EXIT_OK;
	}
	t = cli_table_new("ID NAME STATUS FIRING TRIGGERED EVALUATED");
	cli_table_json(t, resp, "id");
	cli_table_json(t, resp, "displayName");
	cli_table_json(t, resp, "status");
	cli_table_json(t, resp, "totalMetricsFiring");
	cli_table_json(t, resp, "timestampTriggered");
	cli_table_json(t, resp, "lastEvaluated");
	cli_table_print(t, stdout);
	cli_table_free(t);
	if (json_array_size(json_object_get(resp, "streams")) > 0) {
		fputc('\n', stdout);
		t = cli_table_new("DIMENSIONS STATUS SINCE VALUE");
		json_array_foreach(json_object_get(resp, "streams"), i, s) {
			cli_query_dims(t, json_object_get(s, "dimensions"));
			cli_table_json(t, s, "status");
			cli_table_json(t, s, "since");
			cli_table_add(t, "%.6g", json_number_value(
				json_object_get(s, "value")));
		}
		cli_table_print(t, stdout);
		cli_table_free(t);
	}
	json_decref(resp);
	return CLI_EXIT_OK;
}

int cli_alarm_history(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {{"limit", 1}, {NULL, 0}};
	const char *id = NULL, *lim = NULL;
	json_t *resp = NULL, *ev, *streams, *first;
	struct cli_table *t;
	long limit = 100;
	char *path, *base;
	size_t i;
	int ret;

	ret = cli_parse_args(ctx, argc, argv, opts, "the alarm ID", &id, &lim);
	if (ret != 0)
		return cli_opt_exit(ret);
	if (lim != NULL &&
	    cli_parse_long(ctx, "limit", lim, 1, 1000, &limit) != 0)
		return CLI_EXIT_USAGE;
	base = cli_item_path("alarms", id, "/history");
	path = xasprintf("%s?limit=%ld", base, limit);
	free(base);
	ret = cli_call(ctx, "GET", path, NULL, &resp);
	free(path);
	if (ret != 0)
		return ret;
	if (cli_structured(ctx)) {
		cli_print_json(ctx, resp);
		json_decref(resp);
		return CLI_EXIT_OK;
	}
	t = cli_table_new("TIME TYPE STATUS FIRING VALUE DIMENSIONS");
	json_array_foreach(json_object_get(resp, "items"), i, ev) {
		streams = json_object_get(ev, "streams");
		first = json_array_get(streams, 0);
		cli_table_json(t, ev, "timestamp");
		cli_table_json(t, ev, "type");
		cli_table_json(t, ev, "status");
		cli_table_json(t, ev, "totalMetricsFiring");
		if (first != NULL) {
			cli_table_add(t, "%.6g", json_number_value(
				json_object_get(first, "value")));
			cli_query_dims(t, json_object_get(first, "dimensions"));
		} else {
			cli_table_add(t, "-");
			cli_table_add(t, "-");
		}
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(resp);
	return CLI_EXIT_OK;
}
