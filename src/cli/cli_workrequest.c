/*
 * cli_workrequest.c - `mdscale workrequest get|list`, and the work request
 * summary that deployment update and delete print.
 */
#include <stdlib.h>

#include "cli/cli.h"
#include "util/xalloc.h"

/* Appends "COUNT x SHAPE" of a work request's from or to, "-" if null. */
static void add_target(struct cli_table *t, const json_t *side)
{
	if (!json_is_object(side)) {
		cli_table_add(t, "-");
		return;
	}
	cli_table_add(t, "%" JSON_INTEGER_FORMAT " x %s",
		json_integer_value(json_object_get(side, "instanceCount")),
		cli_json_str(side, "instanceShapeName"));
}

static struct cli_table *summary_table(void)
{
	return cli_table_new("ID OPERATION DEPLOYMENT STATUS PERCENT FROM TO");
}

static void add_summary_row(struct cli_table *t, const json_t *wr)
{
	cli_table_json(t, wr, "id");
	cli_table_json(t, wr, "operationType");
	cli_table_json(t, wr, "deploymentId");
	cli_table_json(t, wr, "status");
	cli_table_json(t, wr, "percentComplete");
	add_target(t, json_object_get(wr, "from"));
	add_target(t, json_object_get(wr, "to"));
}

void cli_workrequest_print(const struct cli_ctx *ctx, const json_t *wr)
{
	struct cli_table *t;

	if (cli_structured(ctx)) {
		cli_print_json(ctx, wr);
		return;
	}
	t = summary_table();
	add_summary_row(t, wr);
	cli_table_print(t, stdout);
	cli_table_free(t);
}

/* Prints a work request and, in a table, its steps. */
static void print_one(const struct cli_ctx *ctx, const json_t *resp)
{
	struct cli_table *t;
	const json_t *step;
	const char *error;
	size_t i;

	cli_workrequest_print(ctx, resp);
	if (cli_structured(ctx))
		return;
	error = cli_json_str(resp, "errorMessage");
	if (*error != '\0')
		printf("error: %s\n", error);
	t = cli_table_new("INDEX KIND INSTANCE STATUS STARTED FINISHED MESSAGE");
	json_array_foreach(json_object_get(resp, "steps"), i, step) {
		cli_table_json(t, step, "index");
		cli_table_json(t, step, "kind");
		cli_table_json(t, step, "instanceId");
		cli_table_json(t, step, "status");
		cli_table_json(t, step, "timeStarted");
		cli_table_json(t, step, "timeFinished");
		cli_table_json(t, step, "message");
	}
	fputc('\n', stdout);
	cli_table_print(t, stdout);
	cli_table_free(t);
}

/* Work requests change with their deployments: --watch long-polls the
 * deployments' list, whose version moves with every step. */
int cli_workrequest_get(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_get_cmd(ctx, argc, argv, "work request", "workrequests",
		"/v1/deployments", print_one);
}

static void print_list(const struct cli_ctx *ctx, const json_t *resp)
{
	struct cli_table *t;
	const json_t *wr;
	size_t i;

	if (cli_structured(ctx)) {
		cli_print_json(ctx, resp);
		return;
	}
	t = summary_table();
	json_array_foreach(json_object_get(resp, "items"), i, wr)
		add_summary_row(t, wr);
	cli_table_print(t, stdout);
	cli_table_free(t);
}

int cli_workrequest_list(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_list_opt extra[] = {
		{"deployment", "deploymentId", 0},
		{"operation", "operationType", 0},
		{"limit", "limit", 0},
		{"page", "page", 0},
		{NULL, NULL, 0},
	};
	static const struct cli_list_def def = {
		.collection = "workrequests", .extra = extra,
		.state_param = "status", .trigger = "/v1/deployments",
	};

	return cli_list_cmd(ctx, argc, argv, &def, print_list);
}
