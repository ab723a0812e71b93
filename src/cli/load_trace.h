/*
 * load_trace.h - a recorded trace as a load schedule (`mdscale load
 * --schedule TRACE`).
 *
 * The trace is read by the simulator's reader (sim/trace.h), with the same
 * formats, options and errors; this turns it into a list of arrivals for
 * the load generator (loadgen.h): a slice [start, start + duration) of the
 * played timeline (after compression) re-based to 0, and, when asked, each
 * request's cost as a body the example model server charges for: its cost
 * is the number of instances in POST /predict's "instances" array (each
 * runs the network once; examples/model-server/server.c). A request of
 * cost c with N instances a unit of cost carries k = floor(c x N + u)
 * instances, u in [0, 1) a deterministic low-discrepancy sequence, so the
 * mean is kept; k is clamped to 1..LOAD_TRACE_INSTANCES_MAX.
 *
 * Pure: no I/O.
 */
#ifndef MDS_LOAD_TRACE_H
#define MDS_LOAD_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "cli/loadgen.h"
#include "sim/trace.h"
#include "util/buf.h"

/* The model server's most instances a request. */
#define LOAD_TRACE_INSTANCES_MAX 64u

struct load_trace_opts {
	double start_s;      /* the slice's start on the played timeline */
	double duration_s;   /* its length; 0: to the end of the trace */
	unsigned cost_instances; /* instances a unit of cost; 0: costs
				    are ignored */
};

/*
 * Makes the empty schedule s the slice of t that o selects. With
 * o->cost_instances > 0 each request's body index is its instance count
 * less one (bodies from load_trace_bodies()); *instances (if not NULL) gets
 * the instances of the whole slice (its requests when costs are ignored).
 * Returns 0; MDS_E_INVAL with the reason in diag for bad options or a slice
 * without a request; MDS_E_LIMIT for a slice longer than the load
 * generator's longest schedule.
 */
int load_trace_sched(const struct trace *t, const struct load_trace_opts *o,
		     struct loadgen_sched *s, uint64_t *instances,
		     char *diag, size_t diagsz);

/* The instance count of request i of cost `cost` (see above). */
unsigned load_trace_instances(double cost, unsigned cost_instances,
			      size_t i);

/*
 * Renders the model server's request bodies from a body file's text (JSON:
 * an object with a non-empty "instances" array): bodies[k - 1] holds the
 * first instance k times, k = 1..LOAD_TRACE_INSTANCES_MAX. The buffers are
 * initialised here; the caller frees each with buf_free(). Returns 0 or
 * MDS_E_INVAL with the reason in diag (then nothing is left to free).
 */
int load_trace_bodies(const char *text, size_t len,
		      struct buf bodies[LOAD_TRACE_INSTANCES_MAX],
		      char *diag, size_t diagsz);

#endif
