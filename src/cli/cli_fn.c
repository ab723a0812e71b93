/*
 * cli_fn.c - `mdscale fn list|create|delete|invoke`, and reading a JSON
 * message from a file or stdin (cli_read_json(), shared with `topic
 * publish`).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/buf.h"
#include "util/xalloc.h"

/* The daemon takes request bodies up to 1 MiB. */
#define MESSAGE_MAX (1024 * 1024)

int cli_read_json(const char *path, json_t **out)
{
	const char *label = path == NULL || strcmp(path, "-") == 0
				    ? "stdin" : path;
	FILE *f = stdin;
	struct buf b;
	char chunk[8192];
	json_error_t jerr;
	size_t n;
	int ret = CLI_EXIT_OK;

	*out = NULL;
	if (path != NULL && strcmp(path, "-") != 0) {
		f = fopen(path, "rb");
		if (f == NULL)
			return cli_fail("cannot read %s: %s", path,
				strerror(errno));
	}
	buf_init(&b, MESSAGE_MAX);
	for (;;) {
		n = fread(chunk, 1, sizeof chunk, f);
		if (n == 0)
			break;
		if (buf_add(&b, chunk, n) != 0) {
			ret = cli_fail("%s: the message is larger than 1 MiB",
				label);
			goto out;
		}
	}
	if (ferror(f)) {
		ret = cli_fail("cannot read %s: %s", label, strerror(errno));
		goto out;
	}
	*out = json_loadb(buf_str(&b), b.len, JSON_REJECT_DUPLICATES, &jerr);
	if (*out == NULL)
		ret = cli_fail("%s: not valid JSON: %s (line %d, column %d)",
			label, jerr.text, jerr.line, jerr.column);
out:
	buf_free(&b);
	if (f != stdin)
		fclose(f);
	return ret;
}

static void builtin_cell(struct cli_table *t, const json_t *fn)
{
	cli_table_add(t, "%s",
		json_is_true(json_object_get(fn, "builtin")) ? "yes" : "no");
}

static void print_fns(const struct cli_ctx *ctx, const json_t *body,
	int list)
{
	static const struct cli_column cols[] = {
		{"NAME", "name", NULL, 0},
		{"BUILTIN", NULL, builtin_cell, 0},
		{"INVOCATIONS", "invocations", NULL, 0},
		{"FAILURES", "failures", NULL, 0},
		{"LAST-INVOKED", "timeLastInvoked", NULL, 0},
		{"LAST-ERROR", "lastError", NULL, 0},
		{"DESCRIPTION", "description", NULL, 1},
		{NULL, NULL, NULL, 0},
	};

	cli_print_rows(ctx, body, list, cols);
}

static void print_fn(const struct cli_ctx *ctx, const json_t *body)
{
	print_fns(ctx, body, 0);
}

static void print_fn_list(const struct cli_ctx *ctx, const json_t *body)
{
	print_fns(ctx, body, 1);
}

int cli_fn_list(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_list_def def = {
		.collection = "functions", .name_param = "name",
	};

	return cli_list_cmd(ctx, argc, argv, &def, print_fn_list);
}

int cli_fn_get(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_get_cmd(ctx, argc, argv, "function", "functions", NULL,
		print_fn);
}

int cli_fn_create(struct cli_ctx *ctx, int argc, char **argv)
{
	enum { F_NAME, F_COMMAND, F_DESC, F_TIMEOUT, F_WAIT };
	static const struct cli_opt opts[] = {
		[F_NAME] = {"name", 1}, [F_COMMAND] = {"command", 1},
		[F_DESC] = {"description", 1}, [F_TIMEOUT] = {"timeout", 1},
		[F_WAIT] = {"wait", 0}, {NULL, 0},
	};
	struct cli_getopt g = {.argc = argc, .argv = argv, .index = 1};
	const char *name = NULL, *desc = NULL;
	json_t *cmd = json_array(), *body = NULL, *resp = NULL;
	long timeout = 0;
	int o, ret, wait = 0;

	for (;;) {
		o = cli_getopt(ctx, &g, opts);
		if (o == CLI_OPT_END)
			break;
		if (o == CLI_OPT_ARG || o == F_COMMAND) {
			/* Positional arguments (after --) extend the vector. */
			json_array_append_new(cmd, json_string(g.value));
			continue;
		}
		if (o < 0) {
			ret = cli_opt_exit(o);
			goto out;
		}
		if (o == F_NAME) {
			name = g.value;
		} else if (o == F_DESC) {
			desc = g.value;
		} else if (o == F_WAIT) {
			wait = 1;
		} else {
			ret = cli_parse_long(ctx, "timeout", g.value, 1, 3600,
				&timeout);
			if (ret != 0)
				goto out;
		}
	}
	if (name == NULL) {
		ret = cli_usage_error(ctx, "missing --name");
		goto out;
	}
	if (json_array_size(cmd) == 0) {
		ret = cli_usage_error(ctx, "missing --command");
		goto out;
	}
	body = json_pack("{s:s, s:O}", "name", name, "command", cmd);
	if (body == NULL) {
		ret = cli_usage_error(ctx, "--name and --command must be "
			"UTF-8 text");
		goto out;
	}
	if (desc != NULL)
		json_object_set_new(body, "description", json_string(desc));
	if (timeout > 0)
		json_object_set_new(body, "timeoutSeconds",
			json_integer(timeout));
	ret = cli_call(ctx, "POST", "/v1/functions", body, &resp);
	if (ret == 0 && wait) {
		char *path = cli_item_path("functions", name, "");
		char *what = xasprintf("function %s", name);

		ret = cli_wait_readback(ctx, path, what, print_fn);
		free(path);
		free(what);
	} else if (ret == 0) {
		print_fns(ctx, resp, 0);
	}
out:
	json_decref(cmd);
	json_decref(body);
	json_decref(resp);
	return ret;
}

int cli_fn_delete(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_delete_cmd(ctx, argc, argv, "function", "functions",
		"deleted", print_fn);
}

int cli_fn_invoke(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {{"file", 1}, {NULL, 0}};
	const char *name = NULL, *file = NULL;
	json_t *msg = NULL, *resp = NULL;
	char *path;
	int ret;

	ret = cli_parse_args(ctx, argc, argv, opts, "the function name", &name,
		&file);
	if (ret != 0)
		return cli_opt_exit(ret);
	ret = cli_read_json(file, &msg);
	if (ret != 0)
		return ret;
	path = cli_item_path("functions", name, "/invoke");
	ret = cli_call(ctx, "POST", path, msg, &resp);
	free(path);
	json_decref(msg);
	if (ret != 0)
		return ret;
	cli_print_json(ctx, resp);
	json_decref(resp);
	return CLI_EXIT_OK;
}
