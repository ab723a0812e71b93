/*
 * sim_plot.h - the simulator's plot: a PNG of load, instances and p99
 * latency over time, one line per policy, on shared time axes.
 */
#ifndef MDS_SIM_PLOT_H
#define MDS_SIM_PLOT_H

#include <stddef.h>

#include "sim/sim.h"

/* The colour of policy i's lines (the oracle's is black), as 0xRRGGBB. */
unsigned sim_plot_colour(size_t i);

/*
 * Draws three panels, top to bottom: requests per second (the trace's),
 * billed instances, p99 latency of each second (log scale, the SLO as a
 * grey line); policy i in sim_plot_colour(i), the oracle's instances in
 * black. Writes path through a temporary file renamed into place: on error
 * nothing is left at path. Returns 0, or MDS_E_IO with diag.
 */
int sim_plot_write(const char *path, const struct sim_result *res, size_t n,
		   const struct sim_result *oracle, char *diag, size_t diagsz);

#endif
