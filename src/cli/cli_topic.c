/* cli_topic.c - `mdscale topic create|list|get|delete|publish`. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/xalloc.h"

static void print_topic(const struct cli_ctx *ctx, const json_t *body);

static void print_topics(const struct cli_ctx *ctx, const json_t *body,
	int list)
{
	static const struct cli_column cols[] = {
		{"ID", "topicId", NULL, 0},
		{"NAME", "name", NULL, 0},
		{"STATE", "lifecycleState", NULL, 0},
		{"CREATED", "timeCreated", NULL, 0},
		{"DESCRIPTION", "description", NULL, 0},
		{NULL, NULL, NULL, 0},
	};

	cli_print_rows(ctx, body, list, cols);
}

int cli_topic_create(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {
		{"name", 1}, {"description", 1}, {"wait", 0}, {NULL, 0},
	};
	const char *val[3] = {NULL, NULL, NULL}, *name, *desc;
	json_t *body, *resp = NULL;
	int ret, wait;

	ret = cli_parse_args(ctx, argc, argv, opts, NULL, NULL, val);
	if (ret != 0)
		return cli_opt_exit(ret);
	name = val[0];
	desc = val[1];
	wait = val[2] != NULL;
	if (name == NULL)
		return cli_usage_error(ctx, "missing --name");
	body = json_pack("{s:s}", "name", name);
	if (body == NULL)
		return cli_usage_error(ctx, "--name must be UTF-8 text");
	if (desc != NULL)
		json_object_set_new(body, "description", json_string(desc));
	ret = cli_call(ctx, "POST", "/v1/topics", body, &resp);
	json_decref(body);
	if (ret == 0 && wait) {
		char *path = cli_item_path("topics",
			cli_json_str(resp, "topicId"), "");
		char *what = xasprintf("topic %s", name);

		ret = cli_wait_readback(ctx, path, what, print_topic);
		free(path);
		free(what);
	} else if (ret == 0) {
		print_topics(ctx, resp, 0);
	}
	json_decref(resp);
	return ret;
}

static void print_topic(const struct cli_ctx *ctx, const json_t *body)
{
	print_topics(ctx, body, 0);
}

static void print_topic_list(const struct cli_ctx *ctx, const json_t *body)
{
	print_topics(ctx, body, 1);
}

int cli_topic_list(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_list_def def = {
		.collection = "topics", .name_param = "name",
	};

	return cli_list_cmd(ctx, argc, argv, &def, print_topic_list);
}

int cli_topic_get(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_get_cmd(ctx, argc, argv, "topic", "topics", NULL,
		print_topic);
}

int cli_topic_delete(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_delete_cmd(ctx, argc, argv, "topic", "topics",
		"deleted, with its subscriptions", print_topic);
}

json_t *cli_topic_id(struct cli_ctx *ctx, const char *key)
{
	json_t *resp = NULL, *id = NULL;
	long status = 0;
	char *path = cli_item_path("topics", key, "");

	if (cli_request(ctx, "GET", path, NULL, &status, &resp) == 0 &&
	    status == 200 && json_is_string(json_object_get(resp, "topicId")))
		id = json_incref(json_object_get(resp, "topicId"));
	free(path);
	json_decref(resp);
	return id != NULL ? id : json_string(key);
}

int cli_topic_publish(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {{"file", 1}, {NULL, 0}};
	const char *id = NULL, *file = NULL;
	json_t *msg = NULL, *resp = NULL;
	char *path;
	int ret;

	ret = cli_parse_args(ctx, argc, argv, opts, "the topic ID", &id, &file);
	if (ret != 0)
		return cli_opt_exit(ret);
	if (file == NULL)
		return cli_usage_error(ctx, "missing --file (a path, or - "
			"for stdin)");
	ret = cli_read_json(file, &msg);
	if (ret != 0)
		return ret;
	if (!json_is_object(msg)) {
		json_decref(msg);
		return cli_fail("the message must be a JSON object");
	}
	path = cli_item_path("topics", id, "/messages");
	ret = cli_call(ctx, "POST", path, msg, &resp);
	free(path);
	json_decref(msg);
	if (ret != 0)
		return ret;
	if (cli_structured(ctx))
		cli_print_json(ctx, resp);
	else
		printf("%s\n", cli_json_str(resp, "messageId"));
	json_decref(resp);
	return CLI_EXIT_OK;
}
