/*
 * cli.c - the command table, option parsing, dispatch and the one-line
 * error messages of the CLI; see cli.h.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/err.h"

/* Every client command, in the order `mdscale help` lists them. */
static const struct cli_cmd cli_cmds[] = {
	{
		.name = "deployment create",
		.usage = "--name NAME (--command 'STRING' | --argv ARG [--argv ARG ...])\n"
			 "\t[--shape S] [--count N] [--health-path P] [--env K=V ...]\n"
			 "\t[--ready-timeout SECONDS] [--drain-timeout SECONDS]\n"
			 "\t[--wait [--timeout SECONDS]]",
		.help = "Creates a deployment.\n"
			"--command runs through /bin/sh -c; --argv gives the argument\n"
			"vector, run without a shell. $PORT is where each instance must\n"
			"listen. --wait waits (default 120 s) until it is ACTIVE, and\n"
			"fails if it becomes FAILED.",
		.exec = cli_deployment_create,
	},
	{
		.name = "deployment list",
		.usage = "",
		.help = "Lists the live deployments, oldest first.",
		.exec = cli_deployment_list,
	},
	{
		.name = "deployment get",
		.usage = "ID|NAME",
		.help = "Shows a deployment and its instances.",
		.exec = cli_deployment_get,
	},
	{
		.name = "deployment update",
		.usage = "ID|NAME [--count N] [--shape S] [--wait [--timeout SECONDS]]",
		.help = "Changes the instance count and/or shape.\n"
			"Without downtime: old instances serve until new ones are\n"
			"ready. Prints the work request; --wait waits until it is done.",
		.exec = cli_deployment_update,
	},
	{
		.name = "deployment delete",
		.usage = "ID|NAME [--wait [--timeout SECONDS]]",
		.help = "Deletes a deployment.\n"
			"Its instances drain first. Prints the work request; --wait\n"
			"waits until the deployment is DELETED.",
		.exec = cli_deployment_delete,
	},
	{
		.name = "workrequest get",
		.usage = "ID",
		.help = "Shows a work request and its steps.",
		.exec = cli_workrequest_get,
	},
	{
		.name = "workrequest list",
		.usage = "--deployment ID|NAME",
		.help = "Lists the work requests of a deployment, newest first.",
		.exec = cli_workrequest_list,
	},
	{
		.name = "shape list",
		.usage = "",
		.help = "Lists the instance shapes, smallest first.",
		.exec = cli_shape_list,
	},
};

#define CLI_NCMDS (sizeof cli_cmds / sizeof cli_cmds[0])

static const struct cli_opt global_opts[] = {
	{"url", 1}, {"token", 1}, {"data", 1}, {"output", 1}, {NULL, 0},
};

static const char global_usage[] =
	"Global options, before or after the command:\n"
	"  --url URL              the daemon (else $MDSCALE_URL, else "
	CLI_DEFAULT_URL ")\n"
	"  --token TOKEN          the API token (else $MDSCALE_TOKEN, else "
	"DIR/token)\n"
	"  --data DIR             the daemon's data directory\n"
	"  --output json|table    the output format (default table)\n";

/* Prints "mdscale: " and the message on stderr as one line: control
 * characters (a newline in a server message) become spaces. */
static void vprint_line(const char *fmt, va_list ap)
{
	char line[1024];
	size_t i;

	vsnprintf(line, sizeof line, fmt, ap);
	for (i = 0; line[i] != '\0'; i++) {
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = ' ';
	}
	fprintf(stderr, "mdscale: %s\n", line);
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint_line(fmt, ap);
	va_end(ap);
	return CLI_EXIT_FAIL;
}

int cli_usage_error(struct cli_ctx *ctx, const char *fmt, ...)
{
	char what[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (ctx->cmd != NULL)
		cli_fail("%s; see 'mdscale %s --help'", what, ctx->cmd->name);
	else
		cli_fail("%s; see 'mdscale --help'", what);
	return CLI_EXIT_USAGE;
}

void cli_print_usage(FILE *out)
{
	size_t i;

	fputs("usage: mdscale [global options] COMMAND [ARGS]\n\n"
	      "Commands:\n"
	      "  serve                  Runs the daemon "
	      "(see 'mdscale serve --help').\n", out);
	for (i = 0; i < CLI_NCMDS; i++)
		fprintf(out, "  %-22s %.*s\n", cli_cmds[i].name,
			(int)strcspn(cli_cmds[i].help, "\n"), cli_cmds[i].help);
	fputs("  version                Prints the version.\n"
	      "  help                   Prints this list.\n\n", out);
	fputs(global_usage, out);
	fputs("\nRun 'mdscale COMMAND --help' for a command's arguments.\n", out);
}

static void print_cmd_help(const struct cli_cmd *cmd, FILE *out)
{
	fprintf(out, "usage: mdscale %s%s%s\n\n%s\n\n%s", cmd->name,
		*cmd->usage != '\0' ? " " : "", cmd->usage, cmd->help,
		global_usage);
}

/* Returns the index of the option named by the len bytes at name, or -1. */
static int find_opt(const struct cli_opt *opts, const char *name, size_t len)
{
	int i;

	for (i = 0; opts[i].name != NULL; i++) {
		if (strncmp(opts[i].name, name, len) == 0 &&
		    opts[i].name[len] == '\0')
			return i;
	}
	return -1;
}

static int set_global(struct cli_ctx *ctx, int which, const char *value)
{
	if (*value == '\0')
		return cli_usage_error(ctx, "--%s needs a non-empty value",
			global_opts[which].name);
	switch (which) {
	case 0:
		ctx->url = value;
		break;
	case 1:
		ctx->token = value;
		break;
	case 2:
		ctx->data_dir = value;
		break;
	default:
		if (strcmp(value, "json") == 0)
			ctx->output = CLI_OUTPUT_JSON;
		else if (strcmp(value, "table") == 0)
			ctx->output = CLI_OUTPUT_TABLE;
		else
			return cli_usage_error(ctx,
				"--output must be json or table, not '%s'", value);
		break;
	}
	return 0;
}

int cli_getopt(struct cli_ctx *ctx, struct cli_getopt *g,
	const struct cli_opt *opts)
{
	const struct cli_opt *opt;
	const char *arg, *name, *eq;
	size_t len;
	int i, global;

	for (;;) {
		if (g->index >= g->argc)
			return CLI_OPT_END;
		arg = g->argv[g->index++];
		if (g->no_more_opts || arg[0] != '-' || arg[1] == '\0') {
			g->value = arg;
			return CLI_OPT_ARG;
		}
		if (strcmp(arg, "--") == 0) {
			g->no_more_opts = 1;
			continue;
		}
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			if (ctx->cmd != NULL)
				print_cmd_help(ctx->cmd, stdout);
			else
				cli_print_usage(stdout);
			return CLI_OPT_HELP;
		}
		if (arg[1] != '-') {
			cli_usage_error(ctx, "unknown option '%s'", arg);
			return CLI_OPT_USAGE;
		}
		name = arg + 2;
		eq = strchr(name, '=');
		len = eq != NULL ? (size_t)(eq - name) : strlen(name);
		global = 0;
		i = find_opt(opts, name, len);
		if (i < 0) {
			global = 1;
			i = find_opt(global_opts, name, len);
		}
		if (i < 0) {
			cli_usage_error(ctx, "unknown option '--%.*s'", (int)len,
				name);
			return CLI_OPT_USAGE;
		}
		opt = global ? &global_opts[i] : &opts[i];
		g->value = NULL;
		if (!opt->has_value && eq != NULL) {
			cli_usage_error(ctx, "--%s takes no value", opt->name);
			return CLI_OPT_USAGE;
		}
		if (opt->has_value && eq != NULL) {
			g->value = eq + 1;
		} else if (opt->has_value) {
			if (g->index >= g->argc) {
				cli_usage_error(ctx, "--%s needs a value",
					opt->name);
				return CLI_OPT_USAGE;
			}
			g->value = g->argv[g->index++];
		}
		if (!global)
			return i;
		if (set_global(ctx, i, g->value) != 0)
			return CLI_OPT_USAGE;
	}
}

int cli_opt_exit(int code)
{
	return code == CLI_OPT_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

int cli_parse_simple(struct cli_ctx *ctx, int argc, char **argv,
	const char *label, const char **out)
{
	static const struct cli_opt no_opts[] = {{NULL, 0}};
	struct cli_getopt g = {.argc = argc, .argv = argv, .index = 1};
	const char *pos = NULL;
	int o;

	for (;;) {
		o = cli_getopt(ctx, &g, no_opts);
		if (o == CLI_OPT_END)
			break;
		if (o != CLI_OPT_ARG)
			return o;
		if (label == NULL || pos != NULL) {
			cli_usage_error(ctx, "unexpected argument '%s'", g.value);
			return CLI_OPT_USAGE;
		}
		pos = g.value;
	}
	if (label != NULL && pos == NULL) {
		cli_usage_error(ctx, "missing %s", label);
		return CLI_OPT_USAGE;
	}
	if (out != NULL)
		*out = pos;
	return 0;
}

int cli_parse_long(struct cli_ctx *ctx, const char *opt, const char *s,
	long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if ((*s != '-' && !isdigit((unsigned char)*s)) || *end != '\0' ||
	    (errno != 0 && errno != ERANGE))
		return cli_usage_error(ctx, "--%s must be an integer, not '%s'",
			opt, s);
	if (errno == ERANGE || v < min || v > max)
		return cli_usage_error(ctx, "--%s must be from %ld to %ld, not %s",
			opt, min, max, s);
	*out = v;
	return 0;
}

const char *cli_json_str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : "";
}

void cli_print_json(const json_t *json)
{
	json_dumpf(json, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
}

int cli_request_error(struct cli_ctx *ctx, int rc, long status,
	const json_t *json)
{
	const char *message = cli_json_str(json, "message");

	if (rc == MDS_E_UNAVAIL) {
		cli_fail("cannot reach the daemon at %s: %s", ctx->url_owned,
			ctx->diag);
		return CLI_EXIT_UNREACHABLE;
	}
	if (rc == MDS_E_INVAL)
		return cli_usage_error(ctx, "%s", ctx->diag);
	if (rc < 0)
		return cli_fail("%s", ctx->diag);
	if (*message == '\0')
		return cli_fail("the daemon answered HTTP %ld", status);
	if (status == 401 && ctx->token_note != NULL)
		return cli_fail("%s (%s, HTTP %ld); %s", message,
			cli_json_str(json, "code"), status, ctx->token_note);
	return cli_fail("%s (%s, HTTP %ld)", message,
		cli_json_str(json, "code"), status);
}

int cli_call(struct cli_ctx *ctx, const char *method, const char *path,
	const json_t *body, json_t **json)
{
	long status;
	int rc, ret;

	rc = cli_request(ctx, method, path, body, &status, json);
	if (rc == 0 && status >= 200 && status < 300)
		return CLI_EXIT_OK;
	ret = cli_request_error(ctx, rc, status, *json);
	json_decref(*json);
	*json = NULL;
	return ret;
}

/* Finds the command named by argv[0] and argv[1]; prints the group's
 * commands for `mdscale GROUP --help`. */
static int dispatch(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *next = argc > 1 ? argv[1] : NULL;
	size_t i, glen = strlen(argv[0]);
	int group = 0;

	for (i = 0; i < CLI_NCMDS; i++) {
		const char *name = cli_cmds[i].name;

		if (strncmp(name, argv[0], glen) != 0 || name[glen] != ' ')
			continue;
		group = 1;
		if (next != NULL && strcmp(name + glen + 1, next) == 0) {
			ctx->cmd = &cli_cmds[i];
			return cli_cmds[i].exec(ctx, argc - 1, argv + 1);
		}
	}
	if (group && next != NULL &&
	    (strcmp(next, "--help") == 0 || strcmp(next, "-h") == 0)) {
		for (i = 0; i < CLI_NCMDS; i++) {
			if (strncmp(cli_cmds[i].name, argv[0], glen) == 0 &&
			    cli_cmds[i].name[glen] == ' ')
				fprintf(stdout, "usage: mdscale %s%s%s\n",
					cli_cmds[i].name,
					*cli_cmds[i].usage != '\0' ? " " : "",
					cli_cmds[i].usage);
		}
		return CLI_EXIT_OK;
	}
	if (!group)
		return cli_usage_error(ctx, "unknown command '%s'", argv[0]);
	if (next == NULL)
		cli_fail("'%s' needs a command; see 'mdscale %s --help'",
			argv[0], argv[0]);
	else
		cli_fail("unknown command '%s %s'; see 'mdscale %s --help'",
			argv[0], next, argv[0]);
	return CLI_EXIT_USAGE;
}

int cli_main(int argc, char **argv)
{
	static const struct cli_opt no_opts[] = {{NULL, 0}};
	struct cli_ctx ctx;
	struct cli_getopt g = {.argc = argc, .argv = argv, .index = 1};
	int o, ret;

	memset(&ctx, 0, sizeof ctx);
	o = cli_getopt(&ctx, &g, no_opts);
	if (o == CLI_OPT_END) {
		cli_print_usage(stdout);
		return CLI_EXIT_OK;
	}
	if (o != CLI_OPT_ARG)
		return cli_opt_exit(o);
	if (strcmp(g.value, "help") == 0) {
		cli_print_usage(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(g.value, "version") == 0) {
		printf("mdscale %s\n", MDS_VERSION);
		return CLI_EXIT_OK;
	}
	ret = dispatch(&ctx, argc - g.index + 1, argv + g.index - 1);
	cli_request_cleanup(&ctx);
	return ret;
}
