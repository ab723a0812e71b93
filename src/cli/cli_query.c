/*
 * cli_query.c - `mdscale query` (MQL over the daemon's metrics) and
 * `mdscale metric post` (metrics in OCI's PostMetricData shape).
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/buf.h"

#define POST_MAX_FILE (8u << 20)

/* Adds a time option as the API takes it: digits are milliseconds since
 * the epoch, anything else goes as RFC 3339 text for the daemon to check. */
static void put_time(json_t *body, const char *key, const char *v)
{
	if (v[0] != '\0' && strspn(v, "0123456789") == strlen(v))
		json_object_set_new(body, key,
			json_integer(strtoll(v, NULL, 10)));
	else
		json_object_set_new(body, key, json_string(v));
}

void cli_query_dims(struct cli_table *t, const json_t *dims)
{
	struct buf b;
	const char *key;
	json_t *v;

	buf_init(&b, 4096);
	json_object_foreach((json_t *)dims, key, v) {
		buf_printf(&b, "%s%s=%s", b.len ? "," : "", key,
			json_string_value(v) ? json_string_value(v) : "");
	}
	cli_table_add(t, "%s", b.len ? buf_str(&b) : "-");
	buf_free(&b);
}

enum { Q_NAMESPACE, Q_START, Q_END, Q_RESOLUTION, Q__N };

int cli_query(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {
		[Q_NAMESPACE] = {"namespace", 1},
		[Q_START] = {"start", 1},
		[Q_END] = {"end", 1},
		[Q_RESOLUTION] = {"resolution", 1},
		[Q__N] = {NULL, 0},
	};
	const char *val[Q__N] = {NULL}, *expr = NULL;
	json_t *req = NULL, *resp = NULL, *item, *pts;
	struct cli_table *t;
	size_t i;
	int ret;

	ret = cli_parse_args(ctx, argc, argv, opts, "the query EXPR", &expr,
		val);
	if (ret != 0)
		return cli_opt_exit(ret);
	req = json_pack("{s:s}", "query", expr);
	if (req == NULL)
		return cli_usage_error(ctx, "the query is not valid UTF-8");
	if (val[Q_NAMESPACE] != NULL)
		json_object_set_new(req, "namespace",
			json_string(val[Q_NAMESPACE]));
	if (val[Q_START] != NULL)
		put_time(req, "startTime", val[Q_START]);
	if (val[Q_END] != NULL)
		put_time(req, "endTime", val[Q_END]);
	if (val[Q_RESOLUTION] != NULL)
		json_object_set_new(req, "resolution",
			json_string(val[Q_RESOLUTION]));
	ret = cli_call(ctx, "POST", "/v1/metrics/query", req, &resp);
	json_decref(req);
	if (ret != 0)
		return ret;
	if (cli_structured(ctx)) {
		cli_print_json(ctx, resp);
		json_decref(resp);
		return CLI_EXIT_OK;
	}
	t = cli_table_new("NAME DIMENSIONS POINTS LAST");
	json_array_foreach(json_object_get(resp, "items"), i, item) {
		size_t n;

		pts = json_object_get(item, "aggregatedDatapoints");
		n = json_array_size(pts);
		cli_table_json(t, item, "name");
		cli_query_dims(t, json_object_get(item, "dimensions"));
		cli_table_add(t, "%zu", n);
		if (n > 0)
			cli_table_add(t, "%.6g", json_number_value(
				json_object_get(json_array_get(pts, n - 1),
					"value")));
		else
			cli_table_add(t, "-");
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(resp);
	return CLI_EXIT_OK;
}

/* Reads the PostMetricData body from path ("-": stdin), at most
 * POST_MAX_FILE bytes (the daemon takes 1 MiB; a larger body gets its 413). */
static json_t *read_body(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char chunk[65536];
	json_error_t err;
	struct buf b;
	json_t *o = NULL;
	size_t n;

	if (f == NULL) {
		cli_fail("cannot open %s", path);
		return NULL;
	}
	buf_init(&b, POST_MAX_FILE);
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (buf_add(&b, chunk, n) != 0) {
			cli_fail("%s: larger than %u bytes", path,
				POST_MAX_FILE);
			goto out;
		}
	}
	if (ferror(f)) {
		cli_fail("cannot read %s", path);
		goto out;
	}
	o = json_loadb(buf_str(&b), b.len, JSON_REJECT_DUPLICATES, &err);
	if (o == NULL)
		cli_fail("%s: not valid JSON: %s (line %d, column %d)", path,
			err.text, err.line, err.column);
out:
	if (f != stdin)
		fclose(f);
	buf_free(&b);
	return o;
}

int cli_metric_post(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {{"file", 1}, {NULL, 0}};
	const char *file = NULL;
	json_t *req, *resp = NULL, *item;
	struct cli_table *t;
	json_int_t nfailed;
	size_t i, total;
	int ret;

	ret = cli_parse_args(ctx, argc, argv, opts, NULL, NULL, &file);
	if (ret != 0)
		return cli_opt_exit(ret);
	if (file == NULL)
		return cli_usage_error(ctx, "missing --file FILE");
	req = read_body(file);
	if (req == NULL)
		return CLI_EXIT_FAIL;
	total = json_array_size(json_object_get(req, "metricData"));
	ret = cli_call(ctx, "POST", "/v1/metrics", req, &resp);
	json_decref(req);
	if (ret != 0)
		return ret;
	nfailed = json_integer_value(json_object_get(resp,
		"failedMetricsCount"));
	if (cli_structured(ctx)) {
		cli_print_json(ctx, resp);
	} else if (nfailed == 0) {
		printf("%zu metric items stored\n", total);
	} else {
		t = cli_table_new("NAMESPACE NAME MESSAGE");
		json_array_foreach(json_object_get(resp, "failedMetrics"), i,
			item) {
			cli_table_json(t, json_object_get(item, "metricData"),
				"namespace");
			cli_table_json(t, json_object_get(item, "metricData"),
				"name");
			cli_table_json(t, item, "message");
		}
		cli_table_print(t, stdout);
		cli_table_free(t);
	}
	json_decref(resp);
	if (nfailed > 0)
		return cli_fail("%" JSON_INTEGER_FORMAT " of %zu metric items "
			"were refused", nfailed, total);
	return CLI_EXIT_OK;
}
