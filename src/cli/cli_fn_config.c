/*
 * cli_fn_config.c - `mdscale fn config get|set|reset`: the autoscale
 * function's configuration, the default or one deployment's, as
 * GET/PUT/DELETE /v1/functions/autoscale/config.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/xalloc.h"

/* The recipe's names for the API's keys. */
static const struct {
	const char *recipe, *api;
} aliases[] = {
	{"MAX_INSTANCES", "maxInstances"},
	{"MIN_INSTANCES", "minInstances"},
	{"LOW_CPU_THRESHOLD", "cpuLow"},
	{"HIGH_CPU_THRESHOLD", "cpuHigh"},
	{"LOW_MEM_THRESHOLD", "memLow"},
	{"HIGH_MEM_THRESHOLD", "memHigh"},
	{"VM_SHAPES", "shapes"},
};

static const char *api_key(const char *key)
{
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (strcmp(aliases[i].recipe, key) == 0)
			return aliases[i].api;
	return key;
}

/* A value as JSON: shapes a comma-separated list, a number or true/false
 * as such, anything else a string. NULL when not UTF-8. */
static json_t *value_json(const char *key, const char *v)
{
	json_t *o;

	if (strcmp(key, "shapes") == 0) {
		json_t *a = json_array();
		const char *p = v;

		while (*p != '\0') {
			size_t n = strcspn(p, ",");

			if (n > 0)
				json_array_append_new(a, json_stringn(p, n));
			p += n;
			if (*p == ',')
				p++;
		}
		return a;
	}
	o = json_loads(v, JSON_DECODE_ANY, NULL);
	if (json_is_number(o) || json_is_boolean(o))
		return o;
	json_decref(o);
	return json_string(v);
}

static void print_config(const struct cli_ctx *ctx, const json_t *resp)
{
	const json_t *cfg = json_object_get(resp, "config"), *v;
	const char *key;

	if (cli_structured(ctx)) {
		cli_print_json(ctx, resp);
		return;
	}
	if (json_is_string(json_object_get(resp, "deploymentId")))
		printf("deployment: %s\n",
			cli_json_str(resp, "deploymentId"));
	printf("source: %s\n", cli_json_str(resp, "source"));
	json_object_foreach((json_t *)cfg, key, v) {
		char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

		printf("%s: %s\n", key, s ? s : "");
		free(s);
	}
}

int cli_fn_config(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {{"deployment", 1}, {"wait", 0},
		{NULL, 0}};
	struct cli_getopt g = {.argc = argc, .argv = argv, .index = 1};
	const char *verb = NULL, *dep = NULL, *method;
	json_t *body = json_object(), *resp = NULL, *v;
	char *path = NULL, *esc;
	int o, ret = CLI_EXIT_USAGE, wait = 0;

	for (;;) {
		o = cli_getopt(ctx, &g, opts);
		if (o == CLI_OPT_END)
			break;
		if (o == 0) {
			dep = g.value;
			continue;
		}
		if (o == 1) {
			wait = 1;
			continue;
		}
		if (o != CLI_OPT_ARG) {
			ret = cli_opt_exit(o);
			goto out;
		}
		if (verb == NULL) {
			verb = g.value;
			continue;
		}
		if (strcmp(g.value, "autoscale") == 0 &&
		    json_object_size(body) == 0)
			continue;
		{
			const char *eq = strchr(g.value, '=');
			char *key;

			if (eq == NULL || eq == g.value ||
			    strcmp(verb, "set") != 0) {
				cli_usage_error(ctx, "unexpected argument "
					"'%s' (set takes KEY=VALUE)", g.value);
				goto out;
			}
			key = xstrndup(g.value, (size_t)(eq - g.value));
			v = value_json(api_key(key), eq + 1);
			if (v == NULL) {
				free(key);
				cli_usage_error(ctx, "'%s' is not valid UTF-8",
					g.value);
				goto out;
			}
			json_object_set_new(body, api_key(key), v);
			free(key);
		}
	}
	if (verb == NULL || (strcmp(verb, "get") != 0 &&
	    strcmp(verb, "set") != 0 && strcmp(verb, "reset") != 0)) {
		cli_usage_error(ctx, "give get, set or reset");
		goto out;
	}
	if (strcmp(verb, "set") == 0 && json_object_size(body) == 0) {
		cli_usage_error(ctx, "set needs at least one KEY=VALUE");
		goto out;
	}
	if (strcmp(verb, "reset") == 0 && dep == NULL) {
		cli_usage_error(ctx, "reset needs --deployment");
		goto out;
	}
	esc = dep != NULL ? cli_escape(dep) : NULL;
	path = xasprintf("/v1/functions/autoscale/config%s%s",
		esc ? "?deploymentId=" : "", esc ? esc : "");
	free(esc);
	method = strcmp(verb, "get") == 0 ? "GET"
		: strcmp(verb, "set") == 0 ? "PUT" : "DELETE";
	ret = cli_call(ctx, method, path,
		strcmp(verb, "set") == 0 ? body : NULL, &resp);
	if (ret == 0 && wait && strcmp(method, "GET") != 0)
		ret = cli_wait_readback(ctx, path, "the configuration",
			print_config);
	else if (ret == 0)
		print_config(ctx, resp);
out:
	free(path);
	json_decref(body);
	json_decref(resp);
	return ret;
}
