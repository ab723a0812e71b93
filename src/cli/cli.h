/*
 * cli.h - the command-line client: every verb but `serve` talks to the
 * daemon over its REST API (docs/api.md).
 *
 * Like tmux, each command is one const entry {name, usage, help, exec} in a
 * single table (cli.c); the command groups live in files named after them
 * (cli_deployment.c, cli_workrequest.c, cli_shape.c). The HTTP layer is
 * cli_request.c, the only CLI file that includes curl.h; JSON is jansson.
 *
 * Exit statuses are fixed for scripts: 0 success, 1 the daemon refused or the
 * operation failed, 2 a usage error, 3 the daemon cannot be reached. Every
 * failure prints exactly one line on stderr, starting with "mdscale: ".
 */
#ifndef MDS_CLI_H
#define MDS_CLI_H

#include <stdio.h>

#include <jansson.h>

#include "util/version.h"

#define CLI_DEFAULT_URL "http://127.0.0.1:7070"

enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAIL = 1,
	CLI_EXIT_USAGE = 2,
	CLI_EXIT_UNREACHABLE = 3,
	/* Not a process status: the command printed its help and is done.
	 * A helper returns it so that its caller stops; cli_main() exits 0. */
	CLI_EXIT_HELPED = 256,
};

/* -o/--output: a table (wide: with every column), or a structured form of
 * the API's answer (cli_output.c). */
enum cli_output {
	CLI_OUTPUT_TABLE,
	CLI_OUTPUT_WIDE,
	CLI_OUTPUT_JSON,
	CLI_OUTPUT_YAML,
	CLI_OUTPUT_NAME,
	CLI_OUTPUT_JSONPATH,
};

/*
 * The state of one CLI invocation. Option strings point into argv or the
 * environment; the *_owned fields and the curl handle are freed by
 * cli_main() through cli_request_cleanup().
 */
struct cli_ctx {
	const struct cli_cmd *cmd; /* the running command; NULL before dispatch */
	const char *url;           /* --url, else resolved on the first request */
	const char *token;         /* --token, else resolved at the first request */
	const char *data_dir;      /* --data, where the token file is */
	const char *cacert;        /* --cacert, else $MDSCALE_CACERT, or NULL */
	enum cli_output output;
	const char *jsonpath;      /* the template of -o jsonpath=TEMPLATE */
	char *url_owned;           /* the resolved base URL, without a final '/' */
	char *socket_owned;        /* the daemon's Unix socket, if used */
	char *token_owned;         /* the token read from the token file */
	char *token_note;          /* why no token file could be read, if so */
	int token_tried;           /* the token file has been looked at */
	void *curl;                /* a CURL easy handle, reused for keep-alive */
	char *next_page;           /* the last answer's opc-next-page, or NULL */
	char diag[256];            /* why the last cli_request() failed */
};

/*
 * A command. exec gets the arguments after the command's words (argv[0] is
 * the last word of name) and returns an exit status from enum cli_exit,
 * having printed the one error line itself on failure.
 */
struct cli_cmd {
	const char *name;  /* "deployment create" */
	const char *usage; /* the arguments, after the name */
	const char *help;  /* one paragraph */
	int (*exec)(struct cli_ctx *ctx, int argc, char **argv);
};

/* Does the output print the API's answer (json, yaml, name, jsonpath)
 * rather than a table? */
static inline int cli_structured(const struct cli_ctx *ctx)
{
	return ctx->output != CLI_OUTPUT_TABLE && ctx->output != CLI_OUTPUT_WIDE;
}

/* Checks a jsonpath template; returns 0, or -1 with the reason in *why. */
int cli_jsonpath_check(const char *tmpl, const char **why);

/* Runs the client on the whole command line; returns the exit status. */
int cli_main(int argc, char **argv);

/* Prints the list of all commands, for `mdscale help`. */
void cli_print_usage(FILE *out);

/* The command table, in order: entry i, or NULL past the end. */
const struct cli_cmd *cli_cmd_at(size_t i);

/* The text that describes the global options (several lines). */
const char *cli_global_usage(void);

/* Prints the first sentence of a help paragraph on one line (its line breaks
 * become spaces), without a final newline. */
void cli_print_summary(FILE *out, const char *help);

/*
 * `mdscale help NOUN`: every command whose first word is NOUN (or the one
 * command named NOUN), with its usage and full help. Returns CLI_EXIT_OK, or
 * CLI_EXIT_USAGE after one error line when no command matches.
 */
int cli_help_noun(const char *noun);

/*
 * Documentation generated from the command table, so that it cannot drift
 * from --help: `mdscale __doc man` prints the mdscale(1) man page in roff,
 * `mdscale __doc bash` and `mdscale __doc zsh` print completion scripts.
 * Returns an exit status.
 */
int cli_doc(int argc, char **argv);

/*
 * Option parsing, getopt_long-like, for a command's arguments. opts ends
 * with {NULL, 0}; options are written --name VALUE or --name=VALUE. The
 * global options (--url, --token, --data, --output) are accepted anywhere and
 * stored in ctx; -h/--help prints the command's help. cli_getopt() returns
 * the index in opts of the next option (its value in g->value), or one of the
 * CLI_OPT_* codes. After CLI_OPT_HELP or CLI_OPT_USAGE (line printed), the
 * command returns cli_opt_exit(code): CLI_EXIT_HELPED or CLI_EXIT_USAGE,
 * neither of them 0, so that a caller of a helper stops there too.
 */
struct cli_opt {
	const char *name; /* without the dashes */
	int has_value;
};

struct cli_getopt {
	int argc;
	char **argv;
	int index;         /* the next element of argv to read; start at 1 */
	int no_more_opts;  /* "--" was seen */
	const char *value; /* the option's value, or the positional argument */
};

#define CLI_OPT_END (-1)   /* no arguments left */
#define CLI_OPT_ARG (-2)   /* a positional argument, in g->value */
#define CLI_OPT_HELP (-3)  /* help was printed */
#define CLI_OPT_USAGE (-4) /* a usage error was printed */

int cli_getopt(struct cli_ctx *ctx, struct cli_getopt *g,
	const struct cli_opt *opts);
int cli_opt_exit(int code);

/*
 * Parses the arguments of a command without options of its own: exactly one
 * positional argument, described by label for errors ("the ID"), into *out;
 * or none when label is NULL. Returns 0, or CLI_OPT_HELP or CLI_OPT_USAGE
 * (for cli_opt_exit()) after printing the help or the usage error.
 */
int cli_parse_simple(struct cli_ctx *ctx, int argc, char **argv,
	const char *label, const char **out);

/*
 * cli_parse_simple() for a command with options too: the value of option i
 * of opts goes to val[i] ("" for an option without a value; val has one
 * slot per option; untouched when the option is absent).
 */
int cli_parse_args(struct cli_ctx *ctx, int argc, char **argv,
	const struct cli_opt *opts, const char *label, const char **out,
	const char **val);

/*
 * Parses a whole decimal integer within [min, max] into *out. Returns 0, or
 * prints a usage error naming the option and returns CLI_EXIT_USAGE.
 */
int cli_parse_long(struct cli_ctx *ctx, const char *opt, const char *s,
	long min, long max, long *out);

/* Prints "mdscale: <what>; see 'mdscale <cmd> --help'"; returns 2. */
int cli_usage_error(struct cli_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prints "mdscale: <what>"; returns CLI_EXIT_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Sends one request to the daemon: method ("GET", "POST", ...), path below
 * the base URL ("/v1/shapes", already escaped), body serialized if not NULL
 * (borrowed). Adds the bearer token to every request when one can be found. Returns 0 once any HTTP response arrived, with *status set,
 * ctx->next_page its opc-next-page header (NULL without one) and
 * *json the parsed body (NULL when empty or not JSON on an error status; the
 * caller decrefs it). Returns MDS_E_UNAVAIL when the daemon cannot be
 * reached, MDS_E_INVAL for a bad base URL, MDS_E_LIMIT for a body over
 * 8 MiB, MDS_E_PARSE for a success body that is not JSON; ctx->diag says why.
 */
int cli_request(struct cli_ctx *ctx, const char *method, const char *path,
	const json_t *body, long *status, json_t **json);

/*
 * Prints the one line for a failed cli_request() (rc < 0) or an error
 * response (status >= 300) and returns the exit status for it.
 */
int cli_request_error(struct cli_ctx *ctx, int rc, long status,
	const json_t *json);

/*
 * cli_request() for the common case: returns 0 with *json the body (caller
 * decrefs) on a 2xx status; otherwise prints the error and returns its exit
 * status.
 */
int cli_call(struct cli_ctx *ctx, const char *method, const char *path,
	const json_t *body, json_t **json);

/*
 * A GET whose answer is a stream of lines (GET /v1/logs?follow=true):
 * calls on_line(arg, line, len) for every line as it arrives (line
 * NUL-terminated, without its '\n'; a line past 8 MiB is cut), without an
 * overall timeout, until the daemon ends the answer or on_line returns
 * non-zero. Returns 0 with *status set; on an error status, *json is its
 * body (caller decrefs) and no line was passed. Returns MDS_E_UNAVAIL when
 * the daemon cannot be reached or the stream broke, MDS_E_INVAL for a bad
 * base URL; ctx->diag says why.
 */
int cli_request_stream(struct cli_ctx *ctx, const char *path,
	int (*on_line)(void *arg, const char *line, size_t len), void *arg,
	long *status, json_t **json);

/* Frees the curl handle and the resolved strings of ctx. */
void cli_request_cleanup(struct cli_ctx *ctx);

/* Returns s percent-encoded for one path segment or query value; the caller
 * frees it. */
char *cli_escape(const char *s);

/* The monotonic clock in milliseconds, and a sleep that resumes after a
 * signal: for the commands that poll. */
long long cli_now_ms(void);
void cli_sleep_ms(long ms);

/* Returns "/v1/<collection>/<escaped id><suffix>", newly allocated. */
char *cli_item_path(const char *collection, const char *id,
	const char *suffix);

/*
 * The shape of every "VERB ID" command: parses exactly one argument (label
 * names it in errors) into *id, then calls method on /v1/<collection>/<id>.
 * Returns 0 with the answer in *resp (the caller releases it), or the exit
 * status after printing the error.
 */
int cli_call_item(struct cli_ctx *ctx, int argc, char **argv,
	const char *label, const char *method, const char *collection,
	const char **id, json_t **resp);

/* Prints an API answer in the structured form -o asked for: JSON pretty in
 * the daemon's field order (also the default), YAML, ids, or a jsonpath
 * template. */
void cli_print_json(const struct cli_ctx *ctx, const json_t *json);

/* Returns the string member key of obj, or "" if absent or not a string. */
const char *cli_json_str(const json_t *obj, const char *key);

/*
 * A table printed like `kubectl get`: uppercase header row, column widths from
 * the content, "-" for empty cells, control characters blanked.
 */
struct cli_table;

/* Creates a table; headers are space-separated ("ID NAME STATE"). */
struct cli_table *cli_table_new(const char *headers);
/* Appends one cell; rows fill left to right. */
void cli_table_add(struct cli_table *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends the JSON scalar obj[key] as a cell ("-" when null or absent). */
void cli_table_json(struct cli_table *t, const json_t *obj, const char *key);
void cli_table_print(const struct cli_table *t, FILE *out);
/* Frees the table; NULL is fine. */
void cli_table_free(struct cli_table *t);

/*
 * One column of a command's table: its header, and either the JSON field
 * it shows (cli_table_json) or a function that adds the cell. A wide column
 * appears only with -o wide. A column list ends with a NULL header.
 */
struct cli_column {
	const char *header;
	const char *field;
	void (*cell)(struct cli_table *t, const json_t *o);
	int wide;
};

/*
 * Prints body in the structured form -o asked for, or as a table of these
 * columns: one row for body itself, or one for each of its "items" when
 * list is set.
 */
void cli_print_rows(const struct cli_ctx *ctx, const json_t *body, int list,
	const struct cli_column *cols);

/* Prints an API answer (one object, or a list) as its command does. */
typedef void cli_print_fn(const struct cli_ctx *ctx, const json_t *body);

/*
 * --watch (cli_watch.c): prints GET path, then again each time it changes,
 * until interrupted or (what not NULL: an object) the object is gone,
 * which prints "WHAT is gone" and returns 0. The long-poll is on path
 * itself (watch=true&resourceVersion=N), or on trigger when it is not NULL
 * (a list whose version covers path, such as /v1/deployments for work
 * requests), after which path is read. Returns the exit status after
 * printing the error that ended it.
 */
int cli_watch(struct cli_ctx *ctx, const char *path, const char *trigger,
	const char *what, cli_print_fn *print);

/*
 * --wait after a synchronous change: reads path back and prints the final
 * state, or "WHAT is gone" (-o json|yaml: {"name", "lifecycleState":
 * "DELETED"}) when it answers 404. Returns an exit status.
 */
int cli_wait_readback(struct cli_ctx *ctx, const char *path,
	const char *what, cli_print_fn *print);

/* One more option of a list, sent as it is as a query parameter. */
struct cli_list_opt {
	const char *opt;   /* "topic"; NULL ends a list of them */
	const char *param; /* what it sends ("topicId") */
	int required;
};

/* The most options a list may add to the common ones. */
#define CLI_LIST_EXTRA_MAX 6

/* A noun's list command: GET /v1/<collection> with the options as query
 * parameters. */
struct cli_list_def {
	const char *collection;  /* "alarms" */
	const char *name_param;  /* what --name sends; NULL: no --name */
	const char *state_param; /* what --state sends; NULL:
				    lifecycleState */
	const struct cli_list_opt *extra; /* its own options, at most
					     CLI_LIST_EXTRA_MAX; or NULL */
	const char *trigger;     /* --watch long-polls this list instead */
};

/*
 * Runs "NOUN list [--name N] [--state S] [--sort-by F] [--sort-order
 * asc|desc] [--watch] [--EXTRA V ...]": the daemon filters, sorts and
 * pages (and refuses a bad value with a 400). When the answer carries
 * opc-next-page (a paged list, --limit), "mdscale: more: --page TOKEN"
 * follows on stderr, whatever -o is: stdout is the answer alone. Returns
 * an exit status.
 */
int cli_list_cmd(struct cli_ctx *ctx, int argc, char **argv,
	const struct cli_list_def *def, cli_print_fn *print);

/* Runs "NOUN get ID [--watch]" on /v1/<collection>/<ID> (trigger as in
 * cli_watch()). Returns an exit status. */
int cli_get_cmd(struct cli_ctx *ctx, int argc, char **argv,
	const char *noun, const char *collection, const char *trigger,
	cli_print_fn *print);

/*
 * Runs "NOUN delete ID [--wait]": DELETE /v1/<collection>/<ID>, then
 * prints "NOUN ID <done>" (-o json|yaml: the answer, if any), or with
 * --wait the state read back (cli_wait_readback()). Returns an exit
 * status.
 */
int cli_delete_cmd(struct cli_ctx *ctx, int argc, char **argv,
	const char *noun, const char *collection, const char *done,
	cli_print_fn *print);

/*
 * Reads YAML (or JSON) text: returns a new array of its documents' values,
 * or NULL with the line and the problem in diag.
 */
json_t *cli_yaml_load(const char *text, size_t len, char *diag,
	size_t diagsz);

/* The commands, one exec per table entry. */
int cli_apply(struct cli_ctx *ctx, int argc, char **argv);
int cli_deployment_create(struct cli_ctx *ctx, int argc, char **argv);
int cli_deployment_import(struct cli_ctx *ctx, int argc, char **argv);
int cli_deployment_list(struct cli_ctx *ctx, int argc, char **argv);
int cli_deployment_get(struct cli_ctx *ctx, int argc, char **argv);
int cli_deployment_update(struct cli_ctx *ctx, int argc, char **argv);
int cli_deployment_delete(struct cli_ctx *ctx, int argc, char **argv);
int cli_deployment_history(struct cli_ctx *ctx, int argc, char **argv);
int cli_workrequest_get(struct cli_ctx *ctx, int argc, char **argv);
int cli_workrequest_list(struct cli_ctx *ctx, int argc, char **argv);
/* Prints a work request's summary row (or, with --output json, its body). */
void cli_workrequest_print(const struct cli_ctx *ctx, const json_t *wr);

int cli_shape_list(struct cli_ctx *ctx, int argc, char **argv);

int cli_logs(struct cli_ctx *ctx, int argc, char **argv);

/* `mdscale top`: the live terminal view (cli_top.c). */
int cli_top(struct cli_ctx *ctx, int argc, char **argv);

/* `mdscale simulate`: a trace against policies, virtual time
 * (cli_simulate.c). */
int cli_simulate(struct cli_ctx *ctx, int argc, char **argv);

/* `mdscale load`: open-loop HTTP load against any URL (cli_load.c). */
int cli_load(struct cli_ctx *ctx, int argc, char **argv);

int cli_query(struct cli_ctx *ctx, int argc, char **argv);
int cli_metric_post(struct cli_ctx *ctx, int argc, char **argv);
/* Appends a JSON dimensions object to a table as one "k=v,k=v" cell. */
void cli_query_dims(struct cli_table *t, const json_t *dims);

/* A topic's id from its id or its name, as a new JSON string: the daemon's
 * answer for the topic, or key itself when it has none (the daemon then
 * names the problem). NULL when key is not UTF-8. */
json_t *cli_topic_id(struct cli_ctx *ctx, const char *key);

int cli_alarm_create(struct cli_ctx *ctx, int argc, char **argv);
int cli_alarm_list(struct cli_ctx *ctx, int argc, char **argv);
int cli_alarm_get(struct cli_ctx *ctx, int argc, char **argv);
int cli_alarm_update(struct cli_ctx *ctx, int argc, char **argv);
int cli_alarm_delete(struct cli_ctx *ctx, int argc, char **argv);
int cli_alarm_status(struct cli_ctx *ctx, int argc, char **argv);
int cli_alarm_history(struct cli_ctx *ctx, int argc, char **argv);

int cli_topic_create(struct cli_ctx *ctx, int argc, char **argv);
int cli_topic_list(struct cli_ctx *ctx, int argc, char **argv);
int cli_topic_get(struct cli_ctx *ctx, int argc, char **argv);
int cli_topic_delete(struct cli_ctx *ctx, int argc, char **argv);
int cli_topic_publish(struct cli_ctx *ctx, int argc, char **argv);
int cli_token_create(struct cli_ctx *ctx, int argc, char **argv);
int cli_token_list(struct cli_ctx *ctx, int argc, char **argv);
int cli_token_rotate(struct cli_ctx *ctx, int argc, char **argv);
int cli_token_revoke(struct cli_ctx *ctx, int argc, char **argv);

int cli_subscription_create(struct cli_ctx *ctx, int argc, char **argv);
int cli_subscription_list(struct cli_ctx *ctx, int argc, char **argv);
int cli_subscription_get(struct cli_ctx *ctx, int argc, char **argv);
int cli_subscription_delete(struct cli_ctx *ctx, int argc, char **argv);
int cli_subscription_dead_letters(struct cli_ctx *ctx, int argc,
	char **argv);
int cli_subscription_replay(struct cli_ctx *ctx, int argc, char **argv);
int cli_fn_config(struct cli_ctx *ctx, int argc, char **argv);
int cli_subscription_deliveries(struct cli_ctx *ctx, int argc, char **argv);

/* `mdscale oci setup`: the recipe's OCI alarms, topic and subscription
 * for one model deployment (cli_oci.c). */
int cli_oci_setup(struct cli_ctx *ctx, int argc, char **argv);
/* `mdscale oci-receiver ...` (cli_oci_receiver.c). */
int cli_oci_receiver_list(struct cli_ctx *ctx, int argc, char **argv);
int cli_oci_receiver_get(struct cli_ctx *ctx, int argc, char **argv);
int cli_oci_receiver_enable(struct cli_ctx *ctx, int argc, char **argv);
int cli_oci_receiver_disable(struct cli_ctx *ctx, int argc, char **argv);
int cli_oci_receiver_reset(struct cli_ctx *ctx, int argc, char **argv);

int cli_fn_list(struct cli_ctx *ctx, int argc, char **argv);
int cli_fn_get(struct cli_ctx *ctx, int argc, char **argv);
int cli_fn_create(struct cli_ctx *ctx, int argc, char **argv);
int cli_fn_delete(struct cli_ctx *ctx, int argc, char **argv);
int cli_fn_invoke(struct cli_ctx *ctx, int argc, char **argv);
/*
 * Reads a JSON document (at most 1 MiB) from path, or from stdin when path
 * is NULL or "-", into *out (the caller decrefs). Returns 0, or prints the
 * one error line (unreadable, too large, not JSON: with line and column)
 * and returns CLI_EXIT_FAIL.
 */
int cli_read_json(const char *path, json_t **out);

#endif
