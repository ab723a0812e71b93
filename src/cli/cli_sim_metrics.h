/*
 * cli_sim_metrics.h - `mdscale simulate --metrics FILE`: the alarm path
 * over a given metric sequence (sim/sim_metrics.h).
 */
#ifndef MDS_CLI_SIM_METRICS_H
#define MDS_CLI_SIM_METRICS_H

#include "cli/cli.h"
#include "sim/sim.h"

/*
 * Reads the metric sequence in path and runs policy p's alarm chain over it
 * with model m's evalMs (evaluation period) and startupMs (how long a move
 * keeps the deployment UPDATING); prints the moves (a table, or one JSON
 * object with --output json). p must be an alarm policy. Returns
 * CLI_EXIT_OK, or CLI_EXIT_FAIL after one line on stderr.
 */
int cli_simulate_metrics(struct cli_ctx *ctx, const char *path,
			 const struct sim_policy *p, const struct sim_model *m);

#endif
