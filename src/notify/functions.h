/*
 * functions.h - functions: what subscriptions deliver messages to.
 *
 * A function takes one message (bytes, normally an OCI alarm message) and
 * returns a result. Built-in functions are C (the autoscale function);
 * user functions are programs registered by name, run without a shell with
 * the message on stdin, their stdout (up to 1 MiB) the result and their
 * stderr logged line by line. Invocations run on the loop; the result
 * comes back through a callback. See docs/notifications.md.
 */
#ifndef MDS_FUNCTIONS_H
#define MDS_FUNCTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/fault.h"

struct functions;
struct store;
struct uidpool;

/*
 * The outcome of one invocation: error 0 and a JSON result (or text), or a
 * negative MDS_E_* with message saying why. MDS_E_INVAL means the function
 * refuses the message (bad input: retrying it cannot help, so a
 * subscription makes it a dead letter at once); any other code means the
 * function failed (the program crashed, timed out, ...), which a retry may
 * cure. Both strings live until the callback returns.
 */
typedef void functions_done_fn(void *arg, int error, const char *result,
			       const char *message);

/*
 * A built-in function: gets the message and must call done exactly once,
 * now or later, on the loop thread.
 */
typedef void functions_builtin_fn(void *ctx, const char *message, size_t len,
				  functions_done_fn *done, void *arg);

struct functions_env {
	uv_loop_t *loop;
	struct store *store;
	const char *data_dir;
	uint32_t timeout_ms; /* per invocation of a program; 0: 30 s */
	/* The user programs run as when the daemon runs as root ("" or
	 * NULL: the daemon's own); borrowed, must outlive the module. */
	const char *run_as_user;
	/* The uids of instanceUids, shared with deployments (borrowed, must
	 * outlive the module; NULL: none). When on, each user function gets
	 * one of its own on create, kept with it, and its programs run as it
	 * rather than run_as_user. */
	struct uidpool *uids;
};

/* Loads the user functions from the store. Returns 0 and the module in
 * *out, or a negative MDS_E_* with detail in diag. */
int functions_open(const struct functions_env *env, struct functions **out,
		   char *diag, size_t diagsz);
/*
 * Closes the module: every invocation and run still pending gets its done
 * callback now, with MDS_E_UNAVAIL, and running programs are killed. A
 * built-in that calls its done later is ignored then. The caller keeps
 * running the loop until the killed programs' handles have closed. NULL is
 * accepted.
 */
void functions_close(struct functions *fns);

/*
 * Gives a uid to each user function stored without one (by a daemon that
 * gave none, or one sharing the uid of another owner: the deployment keeps
 * it), and stores it. Called once every module holding uids has loaded,
 * so the pick sees them all. A full range leaves the function on
 * run_as_user, with a warning; a store that fails leaves the uid in
 * memory, stored by the next change.
 */
void functions_settle_uids(struct functions *fns);

/* Registers a built-in function (name copied; ctx borrowed). */
void functions_register_builtin(struct functions *fns, const char *name,
				const char *description,
				functions_builtin_fn *fn, void *ctx);

/*
 * Invokes function name with message (copied). Returns 0 and later calls
 * done exactly once (never from inside this call); or MDS_E_NOTFOUND (no
 * such function), MDS_E_LIMIT (too many invocations running) or
 * MDS_E_UNAVAIL (closing) without calling it.
 */
int functions_invoke(struct functions *fns, const char *name,
		     const char *message, size_t len, functions_done_fn *done,
		     void *arg);

/* Whether a function of that name exists. */
int functions_exists(struct functions *fns, const char *name);

/* The bounds of a user function. */
#define FUNCTIONS_NAME_MAX 64       /* a-z 0-9 - */
#define FUNCTIONS_DESC_MAX 1024
#define FUNCTIONS_ARGV_MAX 256      /* strings in a command */
#define FUNCTIONS_ARG_MAX 4096      /* bytes in one of them */
#define FUNCTIONS_TIMEOUT_MAX_S 3600

/* A new user function. The bounds are the caller's to keep (the API checks
 * them with its field table). */
struct functions_spec {
	char name[FUNCTIONS_NAME_MAX + 1];
	char **command;       /* argv, NULL-terminated; borrowed */
	char description[FUNCTIONS_DESC_MAX + 1];
	uint32_t timeout_s;   /* 1 to FUNCTIONS_TIMEOUT_MAX_S; 0: default */
	bool check_only;      /* only check it: a dry run, nothing changes */
};

/* A function as the module holds it. The strings are borrowed: valid
 * until the next call that changes the module. */
struct functions_info {
	const char *name;
	const char *description;
	bool builtin;
	const char *const *command; /* user functions: argv; else NULL */
	uint32_t timeout_s;         /* user functions */
	int64_t created_ms;         /* user functions */
	uint32_t uid;               /* the uid its programs run as; 0:
				       run_as_user's (or the daemon's) */
	uint64_t invocations, failures;
	const char *last_error;     /* NULL if none */
	int64_t last_invoked_ms;    /* 0 if never */
};

/*
 * Creates a user function after checking its name (a-z 0-9 -, not taken)
 * and its command (functions_check_argv()), and gives it a uid of its own
 * when the pool is on; with spec->check_only it only checks them (0, *out
 * untouched). Returns 0 and the function in *out (may be NULL), or
 * MDS_E_INVAL / MDS_E_EXISTS / MDS_E_LIMIT (also: no free uid) / MDS_E_DB
 * with f filled.
 */
/*
 * Changes a user function named spec->name: its command when
 * spec->command is not NULL, its description when description is not
 * NULL, its timeout when spec->timeout_s is not 0; invocations already
 * running keep the old ones. With spec->check_only, only checks. Returns 0
 * and the function in *out (may be NULL), or MDS_E_NOTFOUND,
 * MDS_E_CONFLICT (a built-in), MDS_E_INVAL (the command) / MDS_E_DB with f
 * filled and nothing changed.
 */
int functions_update(struct functions *fns, const struct functions_spec *spec,
		     const char *description, struct functions_info *out,
		     struct fault *f);

int functions_create(struct functions *fns, const struct functions_spec *spec,
		     struct functions_info *out, struct fault *f);
/* Deletes a user function. Returns 0, or MDS_E_NOTFOUND, MDS_E_CONFLICT
 * (a built-in) or MDS_E_DB (f filled). */
int functions_delete(struct functions *fns, const char *name,
		     struct fault *f);
/* Calls fn for every function, built-ins first. */
void functions_each(struct functions *fns,
		    void (*fn)(void *arg, const struct functions_info *info),
		    void *arg);
/* 0 and *out, or MDS_E_NOTFOUND (f filled). */
int functions_get(struct functions *fns, const char *name,
		  struct functions_info *out, struct fault *f);

/*
 * Checks the program of an argument vector run without a shell: argv[0]
 * is an absolute path to an executable file or the name of one on PATH.
 * Returns 0, or MDS_E_INVAL with f filled, blaming field.
 */
int functions_check_argv(const char *const *argv, const char *field,
			 struct fault *f);

/*
 * Running programs: what user functions and COMMAND subscriptions share.
 * The program gets input on stdin (a pipe, closed after it), runs in its
 * own process group without a shell, and is killed (the whole group, with
 * SIGKILL) past its timeout. Its stdout is logged line by line and, when
 * capture_max is not 0, also captured up to capture_max bytes; its stderr is
 * logged line by line. Logged lines are capped in length and number.
 */
struct functions_run;

struct functions_run_result {
	int error;            /* 0: exit status 0; MDS_E_IO: other exit status
			       * or a signal; MDS_E_TIMEOUT; MDS_E_LIMIT:
			       * stdout over capture_max; MDS_E_SYS: could not
			       * start; MDS_E_UNAVAIL: cancelled or closing */
	int exit_status;      /* the exit status, -1 if none */
	int term_signal;      /* the signal that ended it, 0 if none */
	const char *output;   /* captured stdout, NUL-terminated; "" if none */
	size_t output_len;
	const char *message;  /* why, when error != 0; else "" */
	uint64_t elapsed_ms;
};

/* Called once per run; res and its strings live until it returns. */
typedef void functions_run_done_fn(void *arg,
				   const struct functions_run_result *res);

struct functions_run_opts {
	const char *const *argv; /* NULL-terminated; copied */
	const char *input;       /* copied; may be NULL */
	size_t input_len;
	uint32_t timeout_ms;     /* 0: the module's default */
	size_t capture_max;      /* 0: stdout is only logged, not captured */
	const char *log_tag;     /* names the run in log lines; copied */
	const char *function;    /* the function's name for the log; copied */
	const char *subscription_id; /* the subscription, likewise */
	uint32_t uid;            /* run as this uid and the gid of the same
				    number (when the pool of the env is on);
				    0: as run_as_user */
};

/*
 * Starts a program. Returns 0 and calls done exactly once, later, on the
 * loop (also when the program could not start); *out (if not NULL) gets a
 * handle for functions_run_cancel(), valid until done runs. Returns
 * MDS_E_LIMIT when too many programs run already (256), MDS_E_UNAVAIL
 * after functions_close(), MDS_E_INVAL for an empty argv; done is then
 * never called.
 */
int functions_run(struct functions *fns, const struct functions_run_opts *o,
		  functions_run_done_fn *done, void *arg,
		  struct functions_run **out);

/* Kills a running program; its done callback runs later with
 * MDS_E_UNAVAIL. */
void functions_run_cancel(struct functions *fns, struct functions_run *run);

#endif
