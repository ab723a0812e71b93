/* cli_shape.c - `mdscale shape list`. */
#include "cli/cli.h"

int cli_shape_list(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cli_table *t;
	const json_t *shape, *mem;
	json_t *resp = NULL;
	size_t i;
	int ret;

	ret = cli_parse_simple(ctx, argc, argv, NULL, NULL);
	if (ret != 0)
		return cli_opt_exit(ret);
	ret = cli_call(ctx, "GET", "/v1/shapes", NULL, &resp);
	if (ret != 0)
		return ret;
	if (cli_structured(ctx)) {
		cli_print_json(ctx, resp);
		json_decref(resp);
		return CLI_EXIT_OK;
	}
	t = cli_table_new("NAME CPUS MEMORY");
	json_array_foreach(json_object_get(resp, "items"), i, shape) {
		cli_table_json(t, shape, "name");
		cli_table_json(t, shape, "cpus");
		mem = json_object_get(shape, "memoryInMBs");
		if (json_is_integer(mem))
			cli_table_add(t, "%" JSON_INTEGER_FORMAT " MB",
				json_integer_value(mem));
		else
			cli_table_add(t, "-");
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(resp);
	return CLI_EXIT_OK;
}
