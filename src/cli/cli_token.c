/* cli_token.c - `mdscale token create|list|rotate|revoke`: the API tokens
 * (docs/api.md, "Authentication"); these need the data directory's token. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/xalloc.h"

static void print_tokens(const struct cli_ctx *ctx, const json_t *body,
	int list)
{
	static const struct cli_column cols[] = {
		{"ID", "id", NULL, 0},
		{"NAME", "displayName", NULL, 0},
		{"READ-ONLY", "readOnly", NULL, 0},
		{"CREATED", "timeCreated", NULL, 0},
		{"ROTATED", "timeRotated", NULL, 0},
		{NULL, NULL, NULL, 0},
	};

	cli_print_rows(ctx, body, list, cols);
}

/* An answer that carries a new secret: the table form prints it alone on
 * its own last line, so that `| tail -n 1` gets it; -o json shows it as
 * the "token" member. */
static void print_secret(const struct cli_ctx *ctx, const json_t *resp)
{
	if (cli_structured(ctx)) {
		cli_print_json(ctx, resp);
		return;
	}
	print_tokens(ctx, resp, 0);
	printf("\nThe token (shown only now; keep it, it cannot be read back):"
	       "\n%s\n", cli_json_str(resp, "token"));
}

int cli_token_create(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {
		{"name", 1}, {"read-only", 0}, {NULL, 0},
	};
	const char *val[2] = {NULL, NULL}, *name;
	json_t *body, *resp = NULL;
	int ret, read_only;

	ret = cli_parse_args(ctx, argc, argv, opts, NULL, NULL, val);
	if (ret != 0)
		return cli_opt_exit(ret);
	name = val[0];
	read_only = val[1] != NULL;
	body = json_pack("{s:b}", "readOnly", read_only);
	if (name != NULL) {
		json_t *s = json_string(name);

		if (s == NULL) {
			json_decref(body);
			return cli_usage_error(ctx, "--name must be UTF-8 text");
		}
		json_object_set_new(body, "displayName", s);
	}
	ret = cli_call(ctx, "POST", "/v1/tokens", body, &resp);
	json_decref(body);
	if (ret != 0)
		return ret;
	print_secret(ctx, resp);
	json_decref(resp);
	return CLI_EXIT_OK;
}

int cli_token_list(struct cli_ctx *ctx, int argc, char **argv)
{
	json_t *resp = NULL;
	const char *none = NULL;
	int ret;

	ret = cli_parse_simple(ctx, argc, argv, NULL, &none);
	if (ret != 0)
		return cli_opt_exit(ret);
	ret = cli_call(ctx, "GET", "/v1/tokens", NULL, &resp);
	if (ret == 0)
		print_tokens(ctx, resp, 1);
	json_decref(resp);
	return ret;
}

int cli_token_rotate(struct cli_ctx *ctx, int argc, char **argv)
{
	json_t *resp = NULL, *body;
	const char *id = NULL;
	char *path;
	int ret;

	ret = cli_parse_simple(ctx, argc, argv, "the token ID", &id);
	if (ret != 0)
		return cli_opt_exit(ret);
	path = cli_item_path("tokens", id, "/rotate");
	body = json_object();
	ret = cli_call(ctx, "POST", path, body, &resp);
	json_decref(body);
	free(path);
	if (ret == 0)
		print_secret(ctx, resp);
	json_decref(resp);
	return ret;
}

int cli_token_revoke(struct cli_ctx *ctx, int argc, char **argv)
{
	json_t *resp = NULL;
	const char *id;
	int ret;

	ret = cli_call_item(ctx, argc, argv, "the token ID", "DELETE", "tokens",
		&id, &resp);
	json_decref(resp);
	if (ret == 0 && !cli_structured(ctx))
		printf("token %s revoked\n", id);
	return ret;
}
