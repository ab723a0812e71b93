/*
 * cli_logs.c - `mdscale logs`: search the daemon's structured log, or
 * follow it (GET /v1/logs, see docs/logging.md).
 *
 * Lines print as "TIME LEVEL SOURCE [ids] message", or as the JSON objects
 * themselves, one a line, with --output json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/buf.h"
#include "util/xalloc.h"

/* The ids a line may carry, in the order they print. */
static const char *const id_keys[] = {
	"deploymentId", "instanceId", "workRequestId", "alarmId",
	"function", "subscriptionId", "stream",
};

/* Prints s with control characters blanked: one line stays one line. */
static void put_clean(const char *s)
{
	for (; *s != '\0'; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s,
			stdout);
}

static void print_record(const struct cli_ctx *ctx, const json_t *o)
{
	json_t *dropped = json_object_get(o, "dropped");
	size_t i, nids = 0;
	char *text;

	if (cli_structured(ctx)) {
		text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (text != NULL)
			puts(text);
		free(text);
		return;
	}
	printf("%s %-5s %-8s ", cli_json_str(o, "time"),
		cli_json_str(o, "level"), cli_json_str(o, "source"));
	for (i = 0; i < sizeof id_keys / sizeof id_keys[0]; i++) {
		const char *v = cli_json_str(o, id_keys[i]);

		if (*v == '\0')
			continue;
		fputs(nids++ == 0 ? "[" : " ", stdout);
		put_clean(v);
	}
	if (nids > 0)
		fputs("] ", stdout);
	put_clean(cli_json_str(o, "message"));
	if (json_is_integer(dropped))
		printf(" (%" JSON_INTEGER_FORMAT " lines lost before this one)",
			json_integer_value(dropped));
	fputc('\n', stdout);
}

/* For --follow: prints each line as it arrives. */
static int on_line(void *arg, const char *line, size_t len)
{
	const struct cli_ctx *ctx = arg;
	json_t *o;

	if (len == 0)
		return 0;
	o = json_loadb(line, len, 0, NULL);
	if (json_is_object(o))
		print_record(ctx, o);
	json_decref(o);
	fflush(stdout);
	return ferror(stdout) ? -1 : 0; /* a closed pipe ends it */
}

/* Appends "&key=value" (escaped) to the query. */
static void add_param(struct buf *q, const char *key, const char *value)
{
	char *esc = cli_escape(value);

	buf_printf(q, "%s%s=%s", q->len > 0 ? "&" : "", key, esc);
	free(esc);
}

int cli_logs(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {
		{"source", 1}, {"deployment", 1}, {"instance", 1},
		{"level", 1}, {"since", 1}, {"until", 1}, {"text", 1},
		{"limit", 1}, {"stream", 1}, {"follow", 0}, {NULL, 0},
	};
	/* The query parameter of each option with a value, in order. */
	static const char *const params[] = {
		"source", "deployment", "instanceId", "level", "since",
		"until", "text", "limit", "stream",
	};
	struct cli_getopt g = {.argc = argc, .argv = argv, .index = 1};
	const json_t *item;
	json_t *resp = NULL;
	struct buf q;
	char *path;
	long status, n;
	size_t i;
	int o, rc, ret, follow = 0;

	buf_init(&q, 64 * 1024);
	for (;;) {
		o = cli_getopt(ctx, &g, opts);
		if (o == CLI_OPT_END)
			break;
		if (o == CLI_OPT_ARG) {
			ret = cli_usage_error(ctx, "unexpected argument '%s'",
				g.value);
			goto out;
		}
		if (o < 0) {
			ret = cli_opt_exit(o);
			goto out;
		}
		if (strcmp(opts[o].name, "follow") == 0) {
			follow = 1;
			continue;
		}
		if (strcmp(opts[o].name, "limit") == 0) {
			ret = cli_parse_long(ctx, "limit", g.value, 1, 10000,
				&n);
			if (ret != 0)
				goto out;
		}
		add_param(&q, params[o], g.value);
	}
	if (follow)
		add_param(&q, "follow", "true");
	path = xasprintf("/v1/logs%s%s", q.len > 0 ? "?" : "", buf_str(&q));
	if (follow) {
		rc = cli_request_stream(ctx, path, on_line, ctx, &status,
			&resp);
		free(path);
		if (rc == 0 && status >= 200 && status < 300)
			ret = CLI_EXIT_OK;
		else
			ret = cli_request_error(ctx, rc, status, resp);
		json_decref(resp);
		goto out;
	}
	ret = cli_call(ctx, "GET", path, NULL, &resp);
	free(path);
	if (ret != 0)
		goto out;
	json_array_foreach(json_object_get(resp, "items"), i, item)
		print_record(ctx, item);
	if (json_is_true(json_object_get(resp, "truncated")))
		fprintf(stderr, "mdscale: older lines were left out; narrow "
			"the search (--since, --text, ...) or raise --limit\n");
	json_decref(resp);
out:
	buf_free(&q);
	return ret;
}
