/*
 * serve.h - the daemon: `mdscale serve`.
 */
#ifndef MDS_SERVE_H
#define MDS_SERVE_H

#include <stdio.h>

/* Prints the usage line(s) of `mdscale serve`. */
void serve_usage(FILE *out);
/* Prints the usage line(s), then every option with one line of help: what
 * `mdscale serve --help` and `mdscale help serve` show. */
void serve_help(FILE *out);

/*
 * Runs the daemon with the arguments after "serve" (argv[0] is "serve").
 * Returns the process exit status: 0 after a clean shutdown (SIGINT or
 * SIGTERM), 1 on a start-up error (printed as one line on stderr), 2 on a
 * usage error.
 */
int serve_main(int argc, char **argv);

/*
 * The hidden verb the daemon uses to start an instance: `mdscale
 * __instance CGROUP-SPEC USER -- ARGV...` joins the cgroup, switches to
 * USER ("-": stays) for good, sets no_new_privs and clears its ambient
 * capabilities, closes every descriptor above 2, then execs ARGV. Returns only on failure (exit status 127, reason on stderr).
 */
int serve_instance_exec(int argc, char **argv);

#endif
