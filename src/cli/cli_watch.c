/*
 * cli_watch.c - what the nouns' list, get and mutation commands share:
 * the list options (filters and order, sent as the API's query
 * parameters), --watch over the API's long-poll (watch=true with the
 * resourceVersion of the last answer: the daemon answers when something
 * changed, the CLI does not poll), and --wait's read-back of the final
 * state.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/xalloc.h"

/* How long one long-poll waits on the daemon, in seconds (the CLI's
 * request timeout is 60 s). */
#define WATCH_POLL_S 30

/* Appends key=value (escaped) to the query of *path. */
static void add_param(char **path, const char *key, const char *value)
{
	char *esc = cli_escape(value);
	char *next = xasprintf("%s%c%s=%s", *path,
		strchr(*path, '?') ? '&' : '?', key, esc);

	free(esc);
	free(*path);
	*path = next;
}

/* After a paged answer: the option that reads the next page, on stderr
 * so that stdout stays the answer alone. */
static void note_next_page(const struct cli_ctx *ctx)
{
	if (ctx->next_page == NULL)
		return;
	fflush(stdout);
	fprintf(stderr, "mdscale: more: --page %s\n", ctx->next_page);
}

/* The answer without its resourceVersion, as the plain GET prints it. */
static void print_answer(const struct cli_ctx *ctx, json_t *body,
	cli_print_fn *print)
{
	json_object_del(body, "resourceVersion");
	print(ctx, body);
	note_next_page(ctx);
	fflush(stdout);
}

int cli_watch(struct cli_ctx *ctx, const char *path, const char *trigger,
	const char *what, cli_print_fn *print)
{
	const char *poll = trigger != NULL ? trigger : path;
	json_t *resp = NULL, *cur = NULL, *shown = NULL;
	json_int_t version = -1;
	long status;
	char *p;
	int ret;

	for (;;) {
		p = xstrdup(poll);
		add_param(&p, "watch", "true");
		if (version >= 0) {
			char v[32];

			snprintf(v, sizeof v, "%" JSON_INTEGER_FORMAT, version);
			add_param(&p, "resourceVersion", v);
			snprintf(v, sizeof v, "%d", WATCH_POLL_S);
			add_param(&p, "timeoutSeconds", v);
		}
		ret = cli_request(ctx, "GET", p, NULL, &status, &resp);
		free(p);
		if (ret == 0 && status == 404 && shown != NULL && what != NULL) {
			if (!cli_structured(ctx))
				printf("%s is gone\n", what);
			ret = 0;
			break;
		}
		if (ret != 0 || status >= 300) {
			ret = cli_request_error(ctx, ret, status, resp);
			break;
		}
		version = json_integer_value(json_object_get(resp,
			"resourceVersion"));
		if (trigger != NULL) {
			json_decref(resp);
			resp = NULL;
			ret = cli_call(ctx, "GET", path, NULL, &cur);
			if (ret != 0)
				break;
		} else {
			cur = resp;
			resp = NULL;
		}
		json_object_del(cur, "resourceVersion");
		if (shown == NULL || !json_equal(cur, shown)) {
			print_answer(ctx, cur, print);
			json_decref(shown);
			shown = json_incref(cur);
		}
		json_decref(cur);
		cur = NULL;
	}
	json_decref(resp);
	json_decref(cur);
	json_decref(shown);
	return ret;
}

int cli_wait_readback(struct cli_ctx *ctx, const char *path,
	const char *what, cli_print_fn *print)
{
	json_t *resp = NULL;
	long status = 0;
	int ret = cli_request(ctx, "GET", path, NULL, &status, &resp);

	if (ret == 0 && status == 404) {
		if (cli_structured(ctx)) {
			json_t *o = json_pack("{s:s, s:s}", "name", what,
				"lifecycleState", "DELETED");

			cli_print_json(ctx, o);
			json_decref(o);
		} else {
			printf("%s is gone\n", what);
		}
		json_decref(resp);
		return CLI_EXIT_OK;
	}
	if (ret != 0 || status >= 300) {
		ret = cli_request_error(ctx, ret, status, resp);
		json_decref(resp);
		return ret;
	}
	print(ctx, resp);
	json_decref(resp);
	return CLI_EXIT_OK;
}

/* GETs path and prints it; with watch, prints it again at each change
 * (cli_watch()). Returns the command's exit code. */
static int show(struct cli_ctx *ctx, const char *path, bool watch,
		const char *trigger, const char *what, cli_print_fn *print)
{
	json_t *resp = NULL;
	int ret;

	if (watch)
		return cli_watch(ctx, path, trigger, what, print);
	ret = cli_call(ctx, "GET", path, NULL, &resp);
	if (ret == 0) {
		print(ctx, resp);
		note_next_page(ctx);
	}
	json_decref(resp);
	return ret;
}

/* The options of a list: the common ones, then the list's own. */
enum { L_NAME, L_STATE, L_SORT_BY, L_SORT_ORDER, L_WATCH, L_EXTRA,
       L_MAX = L_EXTRA + CLI_LIST_EXTRA_MAX };

/* Fills opts with the options of def, ended by a NULL name; returns how
 * many of its own def adds. */
static size_t list_opts(const struct cli_list_def *def,
	struct cli_opt opts[L_MAX + 1])
{
	static const struct cli_opt common[L_EXTRA] = {
		[L_NAME] = {"name", 1},
		[L_STATE] = {"state", 1},
		[L_SORT_BY] = {"sort-by", 1},
		[L_SORT_ORDER] = {"sort-order", 1},
		[L_WATCH] = {"watch", 0},
	};
	size_t n = 0;

	memcpy(opts, common, sizeof common);
	for (; def->extra != NULL && def->extra[n].opt != NULL; n++) {
		if (n == CLI_LIST_EXTRA_MAX)
			abort(); /* a list definition with too many */
		opts[L_EXTRA + n] = (struct cli_opt){def->extra[n].opt, 1};
	}
	opts[L_EXTRA + n] = (struct cli_opt){NULL, 0};
	return n;
}

int cli_list_cmd(struct cli_ctx *ctx, int argc, char **argv,
	const struct cli_list_def *def, cli_print_fn *print)
{
	static const char *const params[L_EXTRA] = {
		[L_NAME] = NULL, [L_STATE] = "lifecycleState",
		[L_SORT_BY] = "sortBy", [L_SORT_ORDER] = "sortOrder",
	};
	struct cli_opt opts[L_MAX + 1];
	const char *val[L_MAX] = {NULL};
	size_t n_extra = list_opts(def, opts);
	char *path = xasprintf("/v1/%s", def->collection);
	int ret;

	ret = cli_parse_args(ctx, argc, argv, opts, NULL, NULL, val);
	if (ret != 0) {
		free(path);
		return cli_opt_exit(ret);
	}
	if (def->name_param == NULL && val[L_NAME] != NULL) {
		free(path);
		return cli_usage_error(ctx, "%s have no name to filter on",
			def->collection);
	}
	for (size_t i = 0; i < n_extra; i++) {
		if (def->extra[i].required && val[L_EXTRA + i] == NULL) {
			free(path);
			return cli_usage_error(ctx, "missing --%s",
				def->extra[i].opt);
		}
	}
	if (val[L_NAME] != NULL)
		add_param(&path, def->name_param, val[L_NAME]);
	for (size_t i = 0; i < n_extra; i++)
		if (val[L_EXTRA + i] != NULL)
			add_param(&path, def->extra[i].param, val[L_EXTRA + i]);
	for (int i = L_STATE; i <= L_SORT_ORDER; i++)
		if (val[i] != NULL)
			add_param(&path, i == L_STATE && def->state_param
						 ? def->state_param
						 : params[i], val[i]);
	ret = show(ctx, path, val[L_WATCH] != NULL, def->trigger, NULL,
		   print);
	free(path);
	return ret;
}

int cli_get_cmd(struct cli_ctx *ctx, int argc, char **argv,
	const char *noun, const char *collection, const char *trigger,
	cli_print_fn *print)
{
	static const struct cli_opt opts[] = {{"watch", 0}, {NULL, 0}};
	const char *val[1] = {NULL}, *id;
	char *label = xasprintf("the %s ID", noun), *path, *what;
	int ret;

	ret = cli_parse_args(ctx, argc, argv, opts, label, &id, val);
	free(label);
	if (ret != 0)
		return cli_opt_exit(ret);
	path = cli_item_path(collection, id, "");
	what = xasprintf("%s %s", noun, id);
	ret = show(ctx, path, val[0] != NULL, trigger, what, print);
	free(path);
	free(what);
	return ret;
}

int cli_delete_cmd(struct cli_ctx *ctx, int argc, char **argv,
	const char *noun, const char *collection, const char *done,
	cli_print_fn *print)
{
	static const struct cli_opt opts[] = {{"wait", 0}, {NULL, 0}};
	const char *val[1] = {NULL}, *id;
	char *label = xasprintf("the %s ID", noun), *path, *what;
	json_t *resp = NULL;
	int ret;

	ret = cli_parse_args(ctx, argc, argv, opts, label, &id, val);
	free(label);
	if (ret != 0)
		return cli_opt_exit(ret);
	path = cli_item_path(collection, id, "");
	what = xasprintf("%s %s", noun, id);
	ret = cli_call(ctx, "DELETE", path, NULL, &resp);
	if (ret == 0 && val[0] != NULL)
		ret = cli_wait_readback(ctx, path, what, print);
	else if (ret == 0 && cli_structured(ctx) && resp != NULL)
		cli_print_json(ctx, resp);
	else if (ret == 0 && !cli_structured(ctx))
		printf("%s %s\n", what, done);
	json_decref(resp);
	free(path);
	free(what);
	return ret;
}
