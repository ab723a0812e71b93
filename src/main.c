/*
 * main.c - the one mdscale binary: `mdscale serve` is the daemon, the hidden
 * `__instance` verb starts an instance inside its cgroup, and every other
 * verb is a client of the daemon's REST API (cli/cli.h).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "daemon/serve.h"

int main(int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : NULL;

	if (verb != NULL && strcmp(verb, "help") == 0 && argc > 2)
		return cli_help_noun(argv[2]);
	if (verb == NULL || strcmp(verb, "help") == 0 ||
	    strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0) {
		cli_print_usage(stdout);
		return 0;
	}
	if (strcmp(verb, "--version") == 0 || strcmp(verb, "version") == 0) {
		printf("mdscale %s\n", MDS_VERSION);
		return 0;
	}
	if (strcmp(verb, "serve") == 0)
		return serve_main(argc - 1, argv + 1);
	if (strcmp(verb, "__doc") == 0)
		return cli_doc(argc - 1, argv + 1);
	if (strcmp(verb, "__instance") == 0)
		return serve_instance_exec(argc - 1, argv + 1);
	return cli_main(argc, argv);
}
