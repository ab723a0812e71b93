/*
 * cli_oci_receiver.c - `mdscale oci-receiver list|get|enable|disable|reset`:
 * the daemon's receiver for OCI Notifications HTTPS subscriptions, per
 * local topic (docs/notifications.md).
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/xalloc.h"

static void print_receivers(const struct cli_ctx *ctx, const json_t *body,
	int list)
{
	static const struct cli_column cols[] = {
		{"TOPIC", "topicId", NULL, 0},
		{"STATE", "state", NULL, 0},
		{"SUBSCRIPTION", "subscriptionId", NULL, 0},
		{"CONFIRMED", "timeConfirmed", NULL, 0},
		{"ACCEPTED", "messagesAccepted", NULL, 0},
		{"REFUSED", "messagesRefused", NULL, 0},
		{"OCI-TOPIC", "ociTopicId", NULL, 1},
		{"LAST-ERROR", "lastError", NULL, 1},
		{NULL, NULL, NULL, 0},
	};

	cli_print_rows(ctx, body, list, cols);
}

int cli_oci_receiver_list(struct cli_ctx *ctx, int argc, char **argv)
{
	json_t *resp = NULL;
	int ret = cli_parse_simple(ctx, argc, argv, NULL, NULL);

	if (ret != 0)
		return cli_opt_exit(ret);
	ret = cli_call(ctx, "GET", "/v1/oci/receivers", NULL, &resp);
	if (ret == 0)
		print_receivers(ctx, resp, 1);
	json_decref(resp);
	return ret;
}

int cli_oci_receiver_get(struct cli_ctx *ctx, int argc, char **argv)
{
	json_t *resp = NULL;
	const char *id;
	int ret = cli_call_item(ctx, argc, argv, "the topic ID", "GET",
		"oci/receivers", &id, &resp);

	if (ret == 0)
		print_receivers(ctx, resp, 0);
	json_decref(resp);
	return ret;
}

/* PUTs the settings of topic id; enabled says which. */
static int put_settings(struct cli_ctx *ctx, const char *id, int enabled,
	const char *sub, const char *host)
{
	char *path = cli_item_path("oci/receivers", id, "");
	json_t *body = json_pack("{s:b}", "enabled", enabled), *resp = NULL;
	int ret;

	if (sub != NULL)
		json_object_set_new(body, "subscriptionId", json_string(sub));
	if (host != NULL)
		json_object_set_new(body, "confirmationHostSuffix",
			json_string(host));
	ret = cli_call(ctx, "PUT", path, body, &resp);
	if (ret == 0)
		print_receivers(ctx, resp, 0);
	json_decref(body);
	json_decref(resp);
	free(path);
	return ret;
}

int cli_oci_receiver_enable(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {
		{"subscription", 1}, {"confirmation-host", 1}, {NULL, 0},
	};
	const char *val[2] = {NULL, NULL}, *id;
	int ret = cli_parse_args(ctx, argc, argv, opts, "the topic ID", &id,
		val);

	if (ret != 0)
		return cli_opt_exit(ret);
	return put_settings(ctx, id, 1, val[0], val[1]);
}

int cli_oci_receiver_disable(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *id;
	int ret = cli_parse_simple(ctx, argc, argv, "the topic ID", &id);

	if (ret != 0)
		return cli_opt_exit(ret);
	return put_settings(ctx, id, 0, NULL, NULL);
}

int cli_oci_receiver_reset(struct cli_ctx *ctx, int argc, char **argv)
{
	json_t *resp = NULL;
	const char *id;
	int ret = cli_call_item(ctx, argc, argv, "the topic ID", "DELETE",
		"oci/receivers", &id, &resp);

	json_decref(resp);
	if (ret == 0)
		printf("forgot the OCI receiver of topic %s\n", id);
	return ret;
}
