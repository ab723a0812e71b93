/*
 * load_trace.c - a recorded trace as a load schedule; see load_trace.h.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/load_trace.h"
#include "util/err.h"
#include "util/xalloc.h"

#define BODY_MAX (16u << 20)

/* The fractional part of i x the golden ratio's inverse: spread evenly
 * over [0, 1) for any run of consecutive i. */
static double spread(size_t i)
{
	double x = (double)(i % 1000003u) * 0.6180339887498949;

	return x - floor(x);
}

unsigned load_trace_instances(double cost, unsigned cost_instances, size_t i)
{
	double k;

	if (cost_instances == 0)
		return 1;
	k = floor(cost * (double)cost_instances + spread(i));
	if (!(k >= 1))
		return 1;
	if (k > LOAD_TRACE_INSTANCES_MAX)
		return LOAD_TRACE_INSTANCES_MAX;
	return (unsigned)k;
}

/* The first and one-past-last requests of the slice. */
static void slice(const struct trace *t, int64_t from_us, int64_t to_us,
		  size_t *first, size_t *end)
{
	size_t i = 0;

	while (i < t->n && t->reqs[i].t_us < from_us)
		i++;
	*first = i;
	while (i < t->n && (to_us < 0 || t->reqs[i].t_us < to_us))
		i++;
	*end = i;
}

int load_trace_sched(const struct trace *t, const struct load_trace_opts *o,
		     struct loadgen_sched *s, uint64_t *instances,
		     char *diag, size_t diagsz)
{
	int64_t from_us, to_us = -1;
	uint64_t *due, total = 0;
	uint8_t *body_of = NULL;
	size_t first, end, i;
	unsigned k;
	double seconds;

	if (!isfinite(o->start_s) || o->start_s < 0 ||
	    !isfinite(o->duration_s) || o->duration_s < 0 ||
	    o->start_s > LOADGEN_SECONDS_MAX * 1000 ||
	    o->duration_s > LOADGEN_SECONDS_MAX) {
		mds_diag(diag, diagsz, "the start and duration must be from 0 "
			 "to %.0f s", LOADGEN_SECONDS_MAX);
		return MDS_E_INVAL;
	}
	from_us = (int64_t)llround(o->start_s * 1e6);
	if (o->duration_s > 0)
		to_us = from_us + (int64_t)llround(o->duration_s * 1e6);
	slice(t, from_us, to_us, &first, &end);
	if (first == end) {
		mds_diag(diag, diagsz, "no request from %g s%s (the trace "
			 "plays for %.3f s)", o->start_s,
			 o->duration_s > 0 ? " in the duration" : "",
			 (double)t->span_us / 1e6);
		return MDS_E_INVAL;
	}
	due = xcalloc(end - first, sizeof *due);
	if (o->cost_instances > 0)
		body_of = xcalloc(end - first, sizeof *body_of);
	for (i = first; i < end; i++) {
		due[i - first] = (uint64_t)(t->reqs[i].t_us - from_us) * 1000u;
		k = load_trace_instances(t->reqs[i].cost, o->cost_instances,
					 i);
		if (body_of != NULL)
			body_of[i - first] = (uint8_t)(k - 1);
		total += k;
	}
	seconds = o->duration_s > 0 ? o->duration_s
		: (double)(t->span_us - from_us) / 1e6;
	if (instances != NULL)
		*instances = total;
	return loadgen_sched_arrivals(s, due, body_of, end - first, seconds,
				      diag, diagsz);
}

int load_trace_bodies(const char *text, size_t len,
		      struct buf bodies[LOAD_TRACE_INSTANCES_MAX],
		      char *diag, size_t diagsz)
{
	json_error_t jerr;
	json_t *root, *insts;
	char *one = NULL;
	unsigned k, j;
	int rc = 0;

	root = json_loadb(text, len, 0, &jerr);
	if (root == NULL) {
		mds_diag(diag, diagsz, "line %d, column %d: %s", jerr.line,
			 jerr.column, jerr.text);
		return MDS_E_INVAL;
	}
	insts = json_object_get(root, "instances");
	if (json_array_size(insts) > 0)
		one = json_dumps(json_array_get(insts, 0), JSON_COMPACT);
	json_decref(root);
	if (one == NULL) {
		mds_diag(diag, diagsz, "the body must be an object with a "
			 "non-empty \"instances\" array");
		return MDS_E_INVAL;
	}
	for (k = 1; k <= LOAD_TRACE_INSTANCES_MAX; k++) {
		struct buf *b = &bodies[k - 1];

		buf_init(b, BODY_MAX);
		rc = buf_addstr(b, "{\"instances\":[");
		for (j = 0; rc == 0 && j < k; j++)
			rc = buf_printf(b, "%s%s", j > 0 ? "," : "", one);
		if (rc == 0)
			rc = buf_addstr(b, "]}");
		if (rc != 0)
			break;
	}
	free(one);
	if (rc != 0) {
		for (j = 0; j < k && j < LOAD_TRACE_INSTANCES_MAX; j++)
			buf_free(&bodies[j]);
		mds_diag(diag, diagsz, "the body's first instance is too "
			 "large to repeat %u times", LOAD_TRACE_INSTANCES_MAX);
		return MDS_E_INVAL;
	}
	return 0;
}
