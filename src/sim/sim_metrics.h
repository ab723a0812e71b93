/*
 * sim_metrics.h - the live alarm path over a given metric sequence.
 *
 * Instead of a trace through the deployment model, a sequence of
 * utilization samples of one instance ("seconds,cpu[,mem]" lines, as
 * PostMetricData would post them) goes straight into the alarm chain of
 * sim_alarms.h on the virtual clock: samples due by each evaluation are
 * stored, the alarms evaluate every eval_ms, and each move leaves the
 * deployment UPDATING for busy_ms (its work request), as the live daemon
 * does. It exists to show that the simulator and the live daemon take the
 * same decisions on the same metric sequence (`mdscale simulate
 * --metrics`, tests/e2e/test_sim_equivalence.py).
 *
 * Pure: no I/O, no clock.
 */
#ifndef MDS_SIM_METRICS_H
#define MDS_SIM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/policy.h"
#include "sim/sim_alarms.h"

#define SIM_METRICS_MAX 10000000u /* samples in one sequence */

/* One sample. */
struct sim_metric {
	int64_t t_ms;   /* after the sequence's start, non-decreasing */
	double cpu;     /* CpuUtilization, percent */
	double mem;     /* MemoryUtilization, percent (0 when not given) */
};

/*
 * Parses len bytes of CSV: "seconds,cpu[,mem]" a line, seconds a decimal
 * number >= 0, percentages from 0 to 1000 (CPU) and 0 to 100 (memory); '#'
 * comments, blank lines and a header line whose first field is not a
 * number are skipped. Returns 0 with a new array in *out (caller frees) and
 * its length in *n; MDS_E_PARSE or MDS_E_INVAL with "line L, column C:
 * ..." in diag (a field that is not a number, a value out of range, a time
 * going backwards, no sample); MDS_E_LIMIT past SIM_METRICS_MAX.
 */
int sim_metrics_parse(const char *text, size_t len, struct sim_metric **out,
		      size_t *n, char *diag, size_t diagsz);

struct sim_metrics_opts {
	uint32_t initial;  /* instances at the start */
	int64_t eval_ms;   /* alarm evaluation period, > 0 */
	int64_t busy_ms;   /* UPDATING after each move */
	int64_t end_ms;    /* the last evaluation at or before it; < 0: at
			      the last sample */
};

/*
 * Runs policy p's alarm chain over the n samples v: evaluations at eval_ms,
 * 2 eval_ms, ..., each after storing the samples due by then. Returns 0
 * with a new array of the moves (*log, caller frees; *nlog entries, their
 * titles and types static) and the final instance count in *final;
 * MDS_E_INVAL with diag for a bad policy or options; or the alarm code's
 * error.
 */
int sim_metrics_run(const struct policy *p, const struct sim_metric *v,
		    size_t n, const struct sim_metrics_opts *o,
		    struct sim_decision **log, size_t *nlog, uint32_t *final,
		    char *diag, size_t diagsz);

#endif
