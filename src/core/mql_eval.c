/* mql_eval.c - evaluating simple MQL queries over the store; see mql.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mql.h"
#include "core/mql_expr.h"
#include "util/err.h"
#include "util/htab.h"
#include "util/xalloc.h"

/* --- evaluation ---------------------------------------------------------- */

void mql_result_init(struct mql_result *r)
{
	memset(r, 0, sizeof(*r));
}

void mql_result_free(struct mql_result *r)
{
	if (r == NULL)
		return;
	free(r->streams);
	free(r->points);
	free(r->dims);
	free(r->sel);
	free(r->order);
	free(r->gstart);
	free(r->vals);
	memset(r, 0, sizeof(*r));
}

/* Makes room for `more` elements past n in a vector. */
static void *reserve(void *v, size_t n, size_t more, size_t *cap,
		     size_t elem)
{
	size_t want = n + more;

	if (want <= *cap)
		return v;
	*cap = *cap ? *cap : 8;
	while (*cap < want)
		*cap *= 2;
	return xreallocarray(v, *cap, elem);
}

struct select_ctx {
	struct mql_result *r;
	int64_t seen_since; /* absent: only series with data since then */
	size_t max;         /* stop the selection at this many series */
};

static int collect(const struct tsdb_series *s, void *arg)
{
	struct select_ctx *ctx = arg;
	struct mql_result *r = ctx->r;

	if (tsdb_series_newest(s) < ctx->seen_since)
		return 0;
	r->sel = reserve(r->sel, r->nsel, 1, &r->sel_cap, sizeof(*r->sel));
	r->sel[r->nsel++] = s;
	return r->nsel >= ctx->max;
}

/* Returns the dimension key of s, or NULL if s lacks it. */
static const struct tsdb_dim *dim_of(const struct tsdb_series *s,
				     const char *key)
{
	size_t n;
	const struct tsdb_dim *d = tsdb_series_dims(s, &n);

	for (size_t i = 0; i < n; i++)
		if (strcmp(d[i].key, key) == 0)
			return &d[i];
	return NULL;
}

/* Same groupBy values? Values are interned, so pointers compare. */
static int same_group(const struct mql_query *q, const struct tsdb_series *a,
		      const struct tsdb_series *b)
{
	for (size_t k = 0; k < q->ngroup_keys; k++) {
		const struct tsdb_dim *x = dim_of(a, q->group_keys[k]);
		const struct tsdb_dim *y = dim_of(b, q->group_keys[k]);

		if ((x ? x->value : NULL) != (y ? y->value : NULL))
			return 0;
	}
	return 1;
}

/* Values are interned: their addresses stand for them within one store. */
static uint64_t group_hash(const struct mql_query *q,
			   const struct tsdb_series *s)
{
	uint64_t h = 0;

	for (size_t k = 0; k < q->ngroup_keys; k++) {
		const struct tsdb_dim *d = dim_of(s, q->group_keys[k]);

		h = hash_mix(h, (uint64_t)(uintptr_t)(d ? d->value : NULL));
	}
	return hash_fin(h);
}

/*
 * Sorts the selected series into groups: r->order lists series indices
 * group after group, and group g owns order[gstart[g] .. gstart[g + 1]).
 * Groups come in the order of their first series. Returns the group count.
 */
static size_t make_groups(const struct mql_query *q, struct mql_result *r)
{
	size_t n = r->nsel, ngroups = 0;
	struct htab firsts = { 0 }; /* a group's hash to its first series */
	uint32_t *gid, *count;

	r->order = reserve(r->order, 0, n, &r->order_cap, sizeof(*r->order));
	r->gstart = reserve(r->gstart, 0, n + 2, &r->gstart_cap,
			    sizeof(*r->gstart));
	if (q->grouping != MQL_GROUP_BY || n == 0) {
		for (size_t i = 0; i < n; i++)
			r->order[i] = (uint32_t)i;
		if (q->grouping == MQL_GROUP_NONE) {
			for (size_t i = 0; i <= n; i++)
				r->gstart[i] = (uint32_t)i;
			return n;
		}
		r->gstart[0] = 0;
		r->gstart[1] = (uint32_t)n;
		return n > 0 ? 1 : 0;
	}
	gid = xmalloc(n * sizeof(*gid));
	count = xcalloc(n + 1, sizeof(*count));
	for (size_t i = 0; i < n; i++) {
		uint64_t h = group_hash(q, r->sel[i]);
		struct htab_iter it;
		uint32_t f = htab_first(&firsts, h, &it);

		while (f != HTAB_NONE && !same_group(q, r->sel[f], r->sel[i]))
			f = htab_next(&it);
		if (f == HTAB_NONE) {
			htab_put(&firsts, h, (uint32_t)i);
			gid[i] = (uint32_t)ngroups++;
		} else {
			gid[i] = gid[f];
		}
		count[gid[i]]++;
	}
	r->gstart[0] = 0;
	for (size_t g = 0; g < ngroups; g++)
		r->gstart[g + 1] = r->gstart[g] + count[g];
	memset(count, 0, (n + 1) * sizeof(*count));
	for (size_t i = 0; i < n; i++)
		r->order[r->gstart[gid[i]] + count[gid[i]]++] = (uint32_t)i;
	htab_free(&firsts);
	free(gid);
	free(count);
	return ngroups;
}

struct acc {
	uint64_t count;
	double sum, min, max, first, last, rate;
	int64_t first_t, last_t;
	int nrate;
};

/* Adds count values with these min, max and sum. */
static void acc_add(struct acc *a, double min, double max, double sum,
		    uint64_t count)
{
	if (a->count == 0 || min < a->min)
		a->min = min;
	if (a->count == 0 || max > a->max)
		a->max = max;
	a->sum += sum;
	a->count += count;
}

/* Keeps the latest sample; a tie keeps the one seen first. */
static void acc_last(struct acc *a, int64_t t, double v, int first)
{
	if (first || t > a->last_t) {
		a->last_t = t;
		a->last = v;
	}
}

/* Keeps the earliest sample; a tie keeps the one seen first. */
static void acc_first(struct acc *a, int64_t t, double v, int first)
{
	if (first || t < a->first_t) {
		a->first_t = t;
		a->first = v;
	}
}

static void acc_rate(struct acc *a, int64_t t0, double v0, int64_t t1,
		     double v1)
{
	if (t1 > t0) {
		a->rate += (v1 - v0) * 1000.0 / (double)(t1 - t0);
		a->nrate++;
	}
}

static void push_val(struct mql_result *r, double v)
{
	r->vals = reserve(r->vals, r->nvals, 1, &r->vals_cap,
			  sizeof(*r->vals));
	r->vals[r->nvals++] = v;
}

/* Adds the window [t0, t1) of one series to the accumulator. */
static void accumulate(const struct mql_query *q, struct mql_result *r,
		       const struct tsdb_series *s, int64_t t0, int64_t t1,
		       struct acc *a)
{
	int want_vals = q->stat == MQL_STAT_PERCENTILE;
	uint64_t before = a->count;
	struct tsdb_read rd;

	tsdb_series_read(s, t0, t1, &rd);
	if (rd.n[0] + rd.n[1] == 0)
		return;
	if (rd.res == TSDB_RES_RAW) {
		const struct tsdb_sample *first = &rd.raw[0][0];
		const struct tsdb_sample *last = rd.n[1] ?
			&rd.raw[1][rd.n[1] - 1] : &rd.raw[0][rd.n[0] - 1];

		for (int part = 0; part < 2; part++)
			for (size_t i = 0; i < rd.n[part]; i++) {
				double v = rd.raw[part][i].v;

				acc_add(a, v, v, v, 1);
				if (want_vals)
					push_val(r, v);
			}
		acc_last(a, last->t, last->v, before == 0);
		acc_first(a, first->t, first->v, before == 0);
		acc_rate(a, first->t, first->v, last->t, last->v);
	} else {
		const struct tsdb_bucket *first = &rd.agg[0][0];
		const struct tsdb_bucket *last = rd.n[1] ?
			&rd.agg[1][rd.n[1] - 1] : &rd.agg[0][rd.n[0] - 1];

		for (int part = 0; part < 2; part++)
			for (size_t i = 0; i < rd.n[part]; i++) {
				const struct tsdb_bucket *b = &rd.agg[part][i];

				acc_add(a, b->min, b->max, b->sum, b->count);
				if (want_vals)
					push_val(r, b->sum / b->count);
			}
		acc_last(a, last->last_t, last->last, before == 0);
		/* Buckets keep no first sample: the earliest minute's last
		 * stands for it, as it does for rate(). */
		acc_first(a, first->last_t, first->last, before == 0);
		acc_rate(a, first->last_t, first->last, last->last_t,
			 last->last);
	}
}

static int cmp_double(const void *pa, const void *pb)
{
	double a = *(const double *)pa, b = *(const double *)pb;

	return (a > b) - (a < b);
}

/* Linear interpolation between the closest ranks, as numpy's default. */
static double percentile(double *v, size_t n, double p)
{
	double pos = p * (double)(n - 1);
	size_t lo = (size_t)pos;

	qsort(v, n, sizeof(*v), cmp_double);
	if (lo + 1 >= n)
		return v[n - 1];
	return v[lo] + (v[lo + 1] - v[lo]) * (pos - (double)lo);
}

/* Computes one point of the group whose members are order[from..to). */
/* The point at t of what a holds (and r->vals, for percentile()). */
static void finish_point(const struct mql_query *q, struct mql_result *r,
			 const struct acc *acc, int64_t t,
			 struct mql_point *pt)
{
	const struct acc a = *acc;

	pt->t = t;
	pt->value = 0;
	pt->present = a.count > 0;
	switch (q->stat) {
	case MQL_STAT_ABSENT:
		pt->value = a.count == 0 ? 1 : 0;
		pt->present = 1;
		break;
	case MQL_STAT_COUNT:
		pt->value = (double)a.count;
		break;
	case MQL_STAT_FIRST:
		pt->value = a.first;
		break;
	case MQL_STAT_INCREMENT:
		pt->value = a.last - a.first;
		break;
	case MQL_STAT_LAST:
		pt->value = a.last;
		break;
	case MQL_STAT_MAX:
		pt->value = a.max;
		break;
	case MQL_STAT_MEAN:
		pt->value = a.count ? a.sum / (double)a.count : 0;
		break;
	case MQL_STAT_MIN:
		pt->value = a.min;
		break;
	case MQL_STAT_PERCENTILE:
		pt->value = r->nvals ? percentile(r->vals, r->nvals,
						  q->percentile) : 0;
		break;
	case MQL_STAT_RATE:
		pt->present = a.nrate > 0;
		pt->value = a.rate;
		break;
	case MQL_STAT_SUM:
		pt->value = a.sum;
		break;
	}
	if (!pt->present)
		pt->value = 0;
	pt->holds = pt->present && mql_condition_holds(q, pt->value);
}

/*
 * The points of the group order[from .. to) at first_t, first_t + step, ...
 * Each series is read for every step before the next one is, so that a
 * group of many series is fetched from memory once, not once per step;
 * the sums take the series in the same order either way. percentile(),
 * which keeps every value of a step, goes step by step.
 */
static void eval_steps(const struct mql_query *q, struct mql_result *r,
		       size_t from, size_t to, int64_t first_t, int64_t step,
		       size_t nsteps, struct mql_point *pts)
{
	struct acc one;
	int by_series = q->stat != MQL_STAT_PERCENTILE && nsteps > 1 &&
			to - from > 1;

	if (by_series) {
		struct acc *acc = xcalloc(nsteps, sizeof(*acc));

		for (size_t i = from; i < to; i++)
			for (size_t k = 0; k < nsteps; k++) {
				int64_t t = first_t + (int64_t)k * step;

				accumulate(q, r, r->sel[r->order[i]],
					   t - q->interval_ms, t, &acc[k]);
			}
		for (size_t k = 0; k < nsteps; k++)
			finish_point(q, r, &acc[k],
				     first_t + (int64_t)k * step, &pts[k]);
		free(acc);
		return;
	}
	for (size_t k = 0; k < nsteps; k++) {
		int64_t t = first_t + (int64_t)k * step;

		memset(&one, 0, sizeof(one));
		r->nvals = 0;
		for (size_t i = from; i < to; i++)
			accumulate(q, r, r->sel[r->order[i]],
				   t - q->interval_ms, t, &one);
		finish_point(q, r, &one, t, &pts[k]);
	}
}

/* Appends the dims of group g's stream to r->dims; returns their count,
 * and their tsdb_dims_hash() in *hash (a pass over the group's values: a
 * few keys, where a series' stream has up to TSDB_MAX_DIMS). */
static size_t group_dims(const struct mql_query *q, struct mql_result *r,
			 const struct tsdb_series *first, uint64_t *hash)
{
	size_t n = 0;

	*hash = tsdb_dims_hash(NULL, 0);
	if (q->grouping == MQL_GROUP_ALL)
		return 0;
	r->dims = reserve(r->dims, r->ndims, q->ngroup_keys, &r->dims_cap,
			  sizeof(*r->dims));
	for (size_t k = 0; k < q->ngroup_keys; k++) {
		const struct tsdb_dim *d = dim_of(first, q->group_keys[k]);

		if (d != NULL)
			r->dims[r->ndims + n++] = *d;
	}
	*hash = tsdb_dims_hash(r->dims + r->ndims, n);
	r->ndims += n;
	return n;
}

/* mql_run() over the series of one part (part NULL: all of them). */
static int run(const struct mql_query *q, const struct tsdb *db,
	       const char *ns, int64_t first_t, int64_t step, size_t nsteps,
	       int all_streams, size_t max_returned, int *over,
	       struct mql_part *part, struct mql_result *r)
{
	struct select_ctx ctx = { .r = r, .seen_since = INT64_MIN,
				  .max = part ? part->max_series : SIZE_MAX };
	size_t ngroups, ns_kept = 0, nreturned = 0;
	int cond = mql_has_condition(q);
	size_t *dim_off;

	r->nstreams = r->npoints = r->ndims = r->nsel = 0;
	if (q->stat == MQL_STAT_ABSENT) {
		int64_t period = q->absent_ms ? q->absent_ms :
				 tsdb_options(db)->raw_window_ms;

		ctx.seen_since = first_t - period;
	}
	if (part != NULL)
		part->more = tsdb_select_from(db, ns, q->metric, q->clauses,
					      q->nclauses, &part->pos,
					      collect, &ctx) != 0;
	else
		tsdb_select(db, ns, q->metric, q->clauses, q->nclauses,
			    collect, &ctx);
	ngroups = make_groups(q, r);
	if (ngroups > 0 && nsteps > MQL_MAX_POINTS / ngroups)
		return MDS_E_LIMIT;
	r->streams = reserve(r->streams, 0, ngroups, &r->streams_cap,
			     sizeof(*r->streams));
	r->points = reserve(r->points, 0, ngroups * nsteps, &r->points_cap,
			    sizeof(*r->points));
	dim_off = xmalloc((ngroups + 1) * sizeof(*dim_off));
	for (size_t g = 0; g < ngroups; g++) {
		struct mql_stream *st = &r->streams[ns_kept];
		struct mql_point *pts = r->points + r->npoints;
		const struct tsdb_series *first = r->sel[r->order[r->gstart[g]]];
		int any = 0;

		eval_steps(q, r, r->gstart[g], r->gstart[g + 1], first_t, step,
			   nsteps, pts);
		for (size_t k = 0; k < nsteps; k++)
			any |= pts[k].present;
		if (!any && !all_streams)
			continue;
		/* Past the caller's limit, the rest is not evaluated. */
		nreturned += any && (!cond || pts[nsteps - 1].holds);
		if (nreturned > max_returned) {
			if (over != NULL)
				*over = 1;
			r->nstreams = r->npoints = r->ndims = 0;
			free(dim_off);
			return MDS_E_LIMIT;
		}
		r->npoints += nsteps;
		st->npoints = nsteps;
		if (q->grouping == MQL_GROUP_NONE) {
			st->dims = tsdb_series_dims(first, &st->ndims);
			st->hash = tsdb_series_dims_hash(first);
			dim_off[ns_kept] = SIZE_MAX;
		} else {
			dim_off[ns_kept] = r->ndims;
			st->ndims = group_dims(q, r, first, &st->hash);
		}
		ns_kept++;
	}
	/* Pools are final now: point the streams into them. */
	for (size_t i = 0; i < ns_kept; i++) {
		r->streams[i].points = r->points + i * nsteps;
		if (dim_off[i] != SIZE_MAX)
			r->streams[i].dims = r->ndims ? r->dims + dim_off[i] :
					     NULL;
	}
	free(dim_off);
	r->nstreams = ns_kept;
	return 0;
}

int mql_run(const struct mql_query *q, const struct tsdb *db,
	    const char *ns, int64_t first_t, int64_t step, size_t nsteps,
	    int all_streams, size_t max_returned, int *over,
	    struct mql_result *r)
{
	return run(q, db, ns, first_t, step, nsteps, all_streams,
		   max_returned, over, NULL, r);
}

int mql_eval_part(const struct mql_query *q, const struct tsdb *db,
		  const char *ns, int64_t now_ms, struct mql_part *part,
		  struct mql_result *out)
{
	if (q->expr != NULL || q->grouping != MQL_GROUP_NONE ||
	    q->stat == MQL_STAT_ABSENT || part->max_series == 0) {
		part->more = 0;
		return mql_eval(q, db, ns, now_ms, out);
	}
	return run(q, db, ns, now_ms, 0, 1, 0, SIZE_MAX, NULL, part, out);
}

int mql_eval(const struct mql_query *q, const struct tsdb *db,
	     const char *ns, int64_t now_ms, struct mql_result *out)
{
	if (q->expr != NULL)
		return mql_expr_eval(q->expr, db, ns, now_ms, 0, 1, out);
	return mql_run(q, db, ns, now_ms, 0, 1, q->stat == MQL_STAT_ABSENT,
		       SIZE_MAX, NULL, out);
}

/* The streams of r that mql_eval_range_max() counts. */
static size_t count_returned(const struct mql_query *q,
			     const struct mql_result *r)
{
	int cond = mql_has_condition(q);
	size_t n = 0;

	for (size_t i = 0; i < r->nstreams; i++) {
		const struct mql_stream *s = &r->streams[i];

		n += !cond ||
		     (s->npoints > 0 && s->points[s->npoints - 1].holds);
	}
	return n;
}

int mql_eval_range(const struct mql_query *q, const struct tsdb *db,
		   const char *ns, int64_t start_ms, int64_t end_ms,
		   int64_t resolution_ms, struct mql_result *out)
{
	return mql_eval_range_max(q, db, ns, start_ms, end_ms, resolution_ms,
				  SIZE_MAX, NULL, out);
}

int mql_eval_range_max(const struct mql_query *q, const struct tsdb *db,
		       const char *ns, int64_t start_ms, int64_t end_ms,
		       int64_t resolution_ms, size_t max_streams, int *over,
		       struct mql_result *out)
{
	int64_t steps;
	int rc;

	if (over != NULL)
		*over = 0;

	if (start_ms < 0 || end_ms > TSDB_MAX_TIME_MS || end_ms <= start_ms ||
	    resolution_ms < 1)
		return MDS_E_INVAL;
	steps = (end_ms - start_ms) / resolution_ms;
	if (steps < 1)
		return MDS_E_INVAL;
	if (steps > MQL_MAX_POINTS)
		return MDS_E_LIMIT;
	if (q->expr == NULL)
		return mql_run(q, db, ns, start_ms + resolution_ms,
			       resolution_ms, (size_t)steps, 0, max_streams,
			       over, out);
	/* An expression's streams are known only at its end. */
	rc = mql_expr_eval(q->expr, db, ns, start_ms + resolution_ms,
			   resolution_ms, (size_t)steps, out);
	if (rc == 0 && count_returned(q, out) > max_streams) {
		if (over != NULL)
			*over = 1;
		out->nstreams = out->npoints = out->ndims = 0;
		rc = MDS_E_LIMIT;
	}
	return rc;
}
