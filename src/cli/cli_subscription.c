/*
 * cli_subscription.c - `mdscale subscription
 * create|list|get|delete|deliveries|dead-letters|replay`.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/xalloc.h"

/* The endpoint cell: the URL or function, or a COMMAND's argv joined. */
static void add_endpoint(struct cli_table *t, const json_t *s)
{
	const json_t *cmd = json_object_get(s, "command"), *arg;
	size_t i, len = 0;
	char line[200];

	if (!json_is_array(cmd)) {
		cli_table_json(t, s, "endpoint");
		return;
	}
	line[0] = '\0';
	json_array_foreach(cmd, i, arg) {
		len += (size_t)snprintf(line + len, sizeof line - len, "%s%s",
			i ? " " : "", json_string_value(arg) ?
			json_string_value(arg) : "");
		if (len >= sizeof line)
			break;
	}
	cli_table_add(t, "%s", line);
}

static void print_sub(const struct cli_ctx *ctx, const json_t *body);

static void print_subs(const struct cli_ctx *ctx, const json_t *body,
	int list)
{
	static const struct cli_column cols[] = {
		{"ID", "id", NULL, 0},
		{"TOPIC", "topicId", NULL, 0},
		{"PROTOCOL", "protocol", NULL, 0},
		{"PENDING", "pendingDeliveries", NULL, 0},
		{"DEAD", "deadLetters", NULL, 0},
		{"MAX-ATTEMPTS", "maxAttempts", NULL, 0},
		{"ENDPOINT", NULL, add_endpoint, 0},
		{"STATE", "lifecycleState", NULL, 1},
		{"TIMEOUT", "timeoutSeconds", NULL, 1},
		{"CREATED", "timeCreated", NULL, 1},
		{NULL, NULL, NULL, 0},
	};

	cli_print_rows(ctx, body, list, cols);
}

int cli_subscription_create(struct cli_ctx *ctx, int argc, char **argv)
{
	enum { S_TOPIC, S_PROTOCOL, S_ENDPOINT, S_COMMAND, S_ATTEMPTS,
		S_TIMEOUT, S_SECRET, S_WAIT };
	static const struct cli_opt opts[] = {
		[S_TOPIC] = {"topic", 1}, [S_PROTOCOL] = {"protocol", 1},
		[S_ENDPOINT] = {"endpoint", 1}, [S_COMMAND] = {"command", 1},
		[S_ATTEMPTS] = {"max-attempts", 1},
		[S_TIMEOUT] = {"timeout", 1}, [S_SECRET] = {"secret", 1},
		[S_WAIT] = {"wait", 0}, {NULL, 0},
	};
	struct cli_getopt g = {.argc = argc, .argv = argv, .index = 1};
	const char *topic = NULL, *proto = NULL, *endpoint = NULL;
	const char *secret = NULL;
	json_t *cmd = json_array(), *body = NULL, *resp = NULL;
	long attempts = 0, timeout = 0;
	int o, ret, wait = 0;

	for (;;) {
		o = cli_getopt(ctx, &g, opts);
		if (o == CLI_OPT_END)
			break;
		if (o == CLI_OPT_ARG || o == S_COMMAND) {
			json_array_append_new(cmd, json_string(g.value));
			continue;
		}
		if (o < 0) {
			ret = cli_opt_exit(o);
			goto out;
		}
		ret = 0;
		switch (o) {
		case S_TOPIC: topic = g.value; break;
		case S_PROTOCOL: proto = g.value; break;
		case S_ENDPOINT: endpoint = g.value; break;
		case S_SECRET: secret = g.value; break;
		case S_WAIT: wait = 1; break;
		case S_ATTEMPTS:
			ret = cli_parse_long(ctx, "max-attempts", g.value, 1,
				100, &attempts);
			break;
		default:
			ret = cli_parse_long(ctx, "timeout", g.value, 1, 600,
				&timeout);
			break;
		}
		if (ret != 0)
			goto out;
	}
	ret = CLI_EXIT_USAGE;
	if (topic == NULL) {
		cli_usage_error(ctx, "missing --topic");
		goto out;
	}
	if (proto == NULL) {
		cli_usage_error(ctx, "missing --protocol");
		goto out;
	}
	if ((endpoint != NULL) == (json_array_size(cmd) > 0)) {
		cli_usage_error(ctx, "give either --endpoint or --command");
		goto out;
	}
	body = json_pack("{s:s, s:s}", "topicId", topic, "protocol", proto);
	if (body == NULL) {
		cli_usage_error(ctx, "--topic and --protocol must be UTF-8 "
			"text");
		goto out;
	}
	if (endpoint != NULL)
		json_object_set_new(body, "endpoint", json_string(endpoint));
	else
		json_object_set(body, "command", cmd);
	if (attempts > 0)
		json_object_set_new(body, "maxAttempts",
			json_integer(attempts));
	if (timeout > 0)
		json_object_set_new(body, "timeoutSeconds",
			json_integer(timeout));
	if (secret != NULL)
		json_object_set_new(body, "secret", json_string(secret));
	ret = cli_call(ctx, "POST", "/v1/subscriptions", body, &resp);
	if (ret != 0)
		goto out;
	if (wait) {
		char *path = cli_item_path("subscriptions",
			cli_json_str(resp, "id"), "");
		char *what = xasprintf("subscription %s",
			cli_json_str(resp, "id"));

		ret = cli_wait_readback(ctx, path, what, print_sub);
		free(path);
		free(what);
	} else {
		print_subs(ctx, resp, 0);
	}
	/* Only HTTP(S) deliveries are signed: the others have no secret to
	 * show. */
	if (!cli_structured(ctx) && json_is_string(json_object_get(resp,
		"secret")))
		printf("secret: %s (shown only now: receivers verify "
			"X-Mdscale-Signature with it)\n",
			cli_json_str(resp, "secret"));
out:
	json_decref(cmd);
	json_decref(body);
	json_decref(resp);
	return ret;
}

static void print_sub(const struct cli_ctx *ctx, const json_t *body)
{
	print_subs(ctx, body, 0);
}

static void print_sub_list(const struct cli_ctx *ctx, const json_t *body)
{
	print_subs(ctx, body, 1);
}

int cli_subscription_list(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_list_opt extra[] = {
		{"topic", "topicId", 0}, {NULL, NULL, 0},
	};
	static const struct cli_list_def def = {
		.collection = "subscriptions", .extra = extra,
	};

	return cli_list_cmd(ctx, argc, argv, &def, print_sub_list);
}

int cli_subscription_get(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_get_cmd(ctx, argc, argv, "subscription", "subscriptions",
		NULL, print_sub);
}

int cli_subscription_delete(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_delete_cmd(ctx, argc, argv, "subscription",
		"subscriptions", "deleted", print_sub);
}

/* `subscription NOUN ID`: prints GET /v1/subscriptions/ID/NOUN as a table
 * of cols, or as -o asks. Returns the exit status. */
static int print_sub_items(struct cli_ctx *ctx, int argc, char **argv,
	const char *noun, const struct cli_column *cols)
{
	json_t *resp = NULL;
	const char *id;
	char *path;
	int ret;

	ret = cli_parse_simple(ctx, argc, argv, "the subscription ID", &id);
	if (ret != 0)
		return cli_opt_exit(ret);
	path = cli_item_path("subscriptions", id, noun);
	ret = cli_call(ctx, "GET", path, NULL, &resp);
	free(path);
	if (ret != 0)
		return ret;
	cli_print_rows(ctx, resp, 1, cols);
	json_decref(resp);
	return CLI_EXIT_OK;
}

int cli_subscription_deliveries(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_column cols[] = {
		{"MESSAGE", "messageId", NULL, 0},
		{"ATTEMPT", "attempt", NULL, 0},
		{"OUTCOME", "outcome", NULL, 0},
		{"STATUS", "status", NULL, 0},
		{"MS", "durationMs", NULL, 0},
		{"FINISHED", "timeFinished", NULL, 0},
		{"ERROR", "error", NULL, 0},
		{NULL, NULL, NULL, 0},
	};

	return print_sub_items(ctx, argc, argv, "/deliveries", cols);
}

/* The message's title and type, for the dead letters' table. */
static void add_title(struct cli_table *t, const json_t *d)
{
	const json_t *m = json_object_get(d, "message");

	cli_table_add(t, "%s/%s", json_is_object(m) ?
		cli_json_str(m, "title") : "-", json_is_object(m) ?
		cli_json_str(m, "type") : "-");
}

int cli_subscription_dead_letters(struct cli_ctx *ctx, int argc,
	char **argv)
{
	static const struct cli_column cols[] = {
		{"ID", "id", NULL, 0},
		{"MESSAGE", "messageId", NULL, 0},
		{"TITLE/TYPE", NULL, add_title, 0},
		{"OUTCOME", "outcome", NULL, 0},
		{"ATTEMPTS", "attempts", NULL, 0},
		{"CREATED", "timeCreated", NULL, 0},
		{"REASON", "reason", NULL, 0},
		{NULL, NULL, NULL, 0},
	};

	return print_sub_items(ctx, argc, argv, "/dead-letters", cols);
}

int cli_subscription_replay(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {{NULL, 0}};
	struct cli_getopt g = {.argc = argc, .argv = argv, .index = 1};
	const char *args[2] = {NULL, NULL};
	json_t *resp = NULL, *body;
	char *esc, *path;
	int o, ret, n = 0;

	for (;;) {
		o = cli_getopt(ctx, &g, opts);
		if (o == CLI_OPT_END)
			break;
		if (o != CLI_OPT_ARG)
			return cli_opt_exit(o);
		if (n == 2)
			return cli_usage_error(ctx, "unexpected argument '%s'",
				g.value);
		args[n++] = g.value;
	}
	if (n != 2)
		return cli_usage_error(ctx, "give the subscription ID and the "
			"dead letter ID");
	esc = cli_escape(args[1]);
	path = cli_item_path("subscriptions", args[0], "");
	{
		char *full = xasprintf("%s/dead-letters/%s/replay", path, esc);

		free(path);
		path = full;
	}
	free(esc);
	body = json_object();
	ret = cli_call(ctx, "POST", path, body, &resp);
	json_decref(body);
	free(path);
	if (ret != 0)
		return ret;
	if (cli_structured(ctx))
		cli_print_json(ctx, resp);
	else
		printf("dead letter %s queued again as delivery %s\n",
			args[1], cli_json_str(resp, "deliveryId"));
	json_decref(resp);
	return CLI_EXIT_OK;
}
