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

struct acc {
	uint64_t count;
	double sum, min, max, first, last, rate;
	int64_t first_t, last_t;
	int nrate;
};

/*
 * A simple query's evaluation, resumable: run_work() does a bounded amount
 * of it and returns, and the next call goes on where it stopped. Cut at
 * any point, the work is the same as in one go, in the same order (the
 * sums take the same series in the same order), so the result is too.
 * It borrows q, db and ns and keeps pointers to series of db, which the
 * store keeps until tsdb_free(); series added meanwhile are taken if the
 * selection has not passed them.
 */
enum run_phase { R_SELECT, R_GROUP, R_EVAL, R_DONE };

struct run {
	const struct mql_query *q;
	const struct tsdb *db;
	const char *ns;
	int64_t first_t, step;
	size_t nsteps;
	int all_streams;
	size_t max_returned;
	size_t max_select; /* a part's series (SIZE_MAX: every one) */
	enum run_phase phase;
	int64_t seen_since;
	uint32_t pos; /* R_SELECT: the store's position */
	int more;     /* series remain past max_select */
	/* R_GROUP: series i is next; gid and count as make_groups() says. */
	size_t i, ngroups;
	struct htab firsts; /* a group's hash to its first series */
	uint32_t *gid, *count;
	/* R_EVAL: group g is next, at series si and step sk of it. */
	size_t g, kept, nreturned, *dim_off;
	size_t si, sk;
	int in_group;
	struct acc *acc; /* by series: one per step */
	struct acc one;  /* step by step */
	int over;
};

static void run_free(struct run *st)
{
	htab_free(&st->firsts);
	free(st->gid);
	free(st->count);
	free(st->dim_off);
	free(st->acc);
	st->gid = st->count = NULL;
	st->dim_off = NULL;
	st->acc = NULL;
}

/*
 * Sorts the selected series into groups: r->order lists series indices
 * group after group, and group g owns order[gstart[g] .. gstart[g + 1]).
 * Groups come in the order of their first series. Sets st->ngroups; a
 * groupBy() takes one unit of *budget a series, and returns 0 while some
 * remain.
 */
static int make_groups(struct run *st, struct mql_result *r, size_t *budget)
{
	const struct mql_query *q = st->q;
	size_t n = r->nsel;

	if (st->i == 0) {
		r->order = reserve(r->order, 0, n, &r->order_cap,
				   sizeof(*r->order));
		r->gstart = reserve(r->gstart, 0, n + 2, &r->gstart_cap,
				    sizeof(*r->gstart));
	}
	if (q->grouping != MQL_GROUP_BY || n == 0) {
		for (size_t i = 0; i < n; i++)
			r->order[i] = (uint32_t)i;
		if (q->grouping == MQL_GROUP_NONE) {
			for (size_t i = 0; i <= n; i++)
				r->gstart[i] = (uint32_t)i;
			st->ngroups = n;
			return 1;
		}
		r->gstart[0] = 0;
		r->gstart[1] = (uint32_t)n;
		st->ngroups = n > 0 ? 1 : 0;
		return 1;
	}
	if (st->gid == NULL) {
		st->gid = xmalloc(n * sizeof(*st->gid));
		st->count = xcalloc(n + 1, sizeof(*st->count));
	}
	for (; st->i < n; st->i++) {
		uint64_t h;
		struct htab_iter it;
		uint32_t f;
		size_t i = st->i;

		if (*budget == 0)
			return 0;
		(*budget)--;
		h = group_hash(q, r->sel[i]);
		f = htab_first(&st->firsts, h, &it);
		while (f != HTAB_NONE && !same_group(q, r->sel[f], r->sel[i]))
			f = htab_next(&it);
		if (f == HTAB_NONE) {
			htab_put(&st->firsts, h, (uint32_t)i);
			st->gid[i] = (uint32_t)st->ngroups++;
		} else {
			st->gid[i] = st->gid[f];
		}
		st->count[st->gid[i]]++;
	}
	r->gstart[0] = 0;
	for (size_t g = 0; g < st->ngroups; g++)
		r->gstart[g + 1] = r->gstart[g] + st->count[g];
	memset(st->count, 0, (n + 1) * sizeof(*st->count));
	for (size_t i = 0; i < n; i++)
		r->order[r->gstart[st->gid[i]] + st->count[st->gid[i]]++] =
			(uint32_t)i;
	htab_free(&st->firsts);
	free(st->gid);
	free(st->count);
	st->gid = st->count = NULL;
	return 1;
}

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
 * which keeps every value of a step, goes step by step. A series read for
 * a step takes one unit of *budget; returns 0 while some remain (st's
 * si, sk and accumulators say where), 1 once pts are written.
 */
static int eval_steps(struct run *st, struct mql_result *r, size_t from,
		      size_t to, struct mql_point *pts, size_t *budget)
{
	const struct mql_query *q = st->q;
	size_t nsteps = st->nsteps;
	int64_t first_t = st->first_t, step = st->step;
	int by_series = q->stat != MQL_STAT_PERCENTILE && nsteps > 1 &&
			to - from > 1;

	if (!st->in_group) {
		st->in_group = 1;
		st->si = from;
		st->sk = 0;
		if (by_series)
			st->acc = xcalloc(nsteps, sizeof(*st->acc));
		memset(&st->one, 0, sizeof(st->one));
		r->nvals = 0;
	}
	if (by_series) {
		for (; st->si < to; st->si++, st->sk = 0)
			for (; st->sk < nsteps; st->sk++) {
				int64_t t = first_t + (int64_t)st->sk * step;

				if (*budget == 0)
					return 0;
				(*budget)--;
				accumulate(q, r, r->sel[r->order[st->si]],
					   t - q->interval_ms, t,
					   &st->acc[st->sk]);
			}
		for (size_t k = 0; k < nsteps; k++)
			finish_point(q, r, &st->acc[k],
				     first_t + (int64_t)k * step, &pts[k]);
		free(st->acc);
		st->acc = NULL;
		st->in_group = 0;
		return 1;
	}
	for (; st->sk < nsteps; st->sk++) {
		int64_t t = first_t + (int64_t)st->sk * step;

		for (; st->si < to; st->si++) {
			if (*budget == 0)
				return 0;
			(*budget)--;
			accumulate(q, r, r->sel[r->order[st->si]],
				   t - q->interval_ms, t, &st->one);
		}
		finish_point(q, r, &st->one, t, &pts[st->sk]);
		memset(&st->one, 0, sizeof(st->one));
		r->nvals = 0;
		st->si = from;
	}
	st->in_group = 0;
	return 1;
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

/* Starts st over q's series into r (see struct run). */
static void run_begin(struct run *st, const struct mql_query *q,
		      const struct tsdb *db, const char *ns, int64_t first_t,
		      int64_t step, size_t nsteps, int all_streams,
		      size_t max_returned, struct mql_result *r)
{
	*st = (struct run){ .q = q, .db = db, .ns = ns, .first_t = first_t,
			    .step = step, .nsteps = nsteps,
			    .all_streams = all_streams,
			    .max_returned = max_returned,
			    .max_select = SIZE_MAX, .phase = R_SELECT,
			    .seen_since = INT64_MIN };
	r->nstreams = r->npoints = r->ndims = r->nsel = 0;
	if (q->stat == MQL_STAT_ABSENT) {
		int64_t period = q->absent_ms ? q->absent_ms :
				 tsdb_options(db)->raw_window_ms;

		st->seen_since = first_t - period;
	}
}

/* Selects series, one unit of *budget for each looked at (selected or
 * not). Returns 1 once done. */
static int run_select(struct run *st, struct mql_result *r, size_t *budget)
{
	while (*budget > 0) {
		size_t room = st->max_select - r->nsel, looked;
		struct select_ctx ctx = { .r = r,
					  .seen_since = st->seen_since };
		uint32_t before = st->pos;
		int stopped, more = 0;

		if (room == 0)
			return 1;
		ctx.max = r->nsel + (room < *budget ? room : *budget);
		stopped = tsdb_select_some(st->db, st->ns, st->q->metric,
					   st->q->clauses, st->q->nclauses,
					   &st->pos, *budget, &more, collect,
					   &ctx) != 0;
		looked = st->pos - before;
		*budget -= looked < *budget ? looked : *budget;
		if (!stopped && !more)
			return 1;
		if (r->nsel >= st->max_select) {
			st->more = 1;
			return 1;
		}
	}
	return 0;
}

/* Sizes the pools once the groups are known. */
static int run_pools(struct run *st, struct mql_result *r)
{
	size_t ngroups = st->ngroups;

	if (ngroups > 0 && st->nsteps > MQL_MAX_POINTS / ngroups)
		return MDS_E_LIMIT;
	r->streams = reserve(r->streams, 0, ngroups, &r->streams_cap,
			     sizeof(*r->streams));
	r->points = reserve(r->points, 0, ngroups * st->nsteps,
			    &r->points_cap, sizeof(*r->points));
	st->dim_off = xmalloc((ngroups + 1) * sizeof(*st->dim_off));
	return 0;
}

/* Keeps group g's stream, whose points are written, if the caller wants
 * it. Returns 0, or MDS_E_LIMIT past max_returned streams. */
static int keep_group(struct run *st, struct mql_result *r, size_t g)
{
	const struct mql_query *q = st->q;
	size_t nsteps = st->nsteps;
	struct mql_stream *s = &r->streams[st->kept];
	const struct mql_point *pts = r->points + r->npoints;
	const struct tsdb_series *first = r->sel[r->order[r->gstart[g]]];
	int any = 0;

	for (size_t k = 0; k < nsteps; k++)
		any |= pts[k].present;
	if (!any && !st->all_streams)
		return 0;
	st->nreturned += any &&
			 (!mql_has_condition(q) || pts[nsteps - 1].holds);
	if (st->nreturned > st->max_returned) {
		st->over = 1;
		return MDS_E_LIMIT;
	}
	r->npoints += nsteps;
	s->npoints = nsteps;
	if (q->grouping == MQL_GROUP_NONE) {
		s->dims = tsdb_series_dims(first, &s->ndims);
		s->hash = tsdb_series_dims_hash(first);
		st->dim_off[st->kept] = SIZE_MAX;
	} else {
		st->dim_off[st->kept] = r->ndims;
		s->ndims = group_dims(q, r, first, &s->hash);
	}
	st->kept++;
	return 0;
}

/* Points the kept streams into the pools, which are final now. */
static void run_finish(struct run *st, struct mql_result *r)
{
	for (size_t i = 0; i < st->kept; i++) {
		r->streams[i].points = r->points + i * st->nsteps;
		if (st->dim_off[i] != SIZE_MAX)
			r->streams[i].dims = r->ndims ? r->dims +
							st->dim_off[i]
						      : NULL;
	}
	r->nstreams = st->kept;
}

/*
 * Goes on with st for at most about *budget units of work (a series
 * selected, grouped by groupBy(), or read for a step), taking them off
 * *budget. Returns 0 with st->phase R_DONE once r holds the result, or
 * still short of it once the budget is spent; MDS_E_LIMIT (st->over set
 * past max_returned) ends it with r empty.
 */
static int run_work(struct run *st, struct mql_result *r, size_t *budget)
{
	int rc = 0;

	if (st->phase == R_SELECT) {
		if (!run_select(st, r, budget))
			return 0;
		st->phase = R_GROUP;
	}
	if (st->phase == R_GROUP) {
		if (!make_groups(st, r, budget))
			return 0;
		rc = run_pools(st, r);
		if (rc != 0)
			goto out;
		st->phase = R_EVAL;
	}
	for (; st->g < st->ngroups; st->g++) {
		size_t g = st->g;

		if (!eval_steps(st, r, r->gstart[g], r->gstart[g + 1],
				r->points + r->npoints, budget))
			return 0;
		rc = keep_group(st, r, g);
		if (rc != 0)
			goto out;
	}
	run_finish(st, r);
out:
	if (rc != 0)
		r->nstreams = r->npoints = r->ndims = 0;
	st->phase = R_DONE;
	run_free(st);
	return rc;
}

/* mql_run() over the series of one part (part NULL: all of them). */
static int run(const struct mql_query *q, const struct tsdb *db,
	       const char *ns, int64_t first_t, int64_t step, size_t nsteps,
	       int all_streams, size_t max_returned, int *over,
	       struct mql_part *part, struct mql_result *r)
{
	struct run st;
	size_t budget = SIZE_MAX;
	int rc;

	run_begin(&st, q, db, ns, first_t, step, nsteps, all_streams,
		  max_returned, r);
	if (part != NULL) {
		st.max_select = part->max_series;
		st.pos = part->pos;
	}
	rc = run_work(&st, r, &budget);
	if (part != NULL) {
		part->pos = st.pos;
		part->more = st.more;
	}
	if (over != NULL && st.over)
		*over = 1;
	return rc;
}

int mql_run(const struct mql_query *q, const struct tsdb *db,
	    const char *ns, int64_t first_t, int64_t step, size_t nsteps,
	    int all_streams, size_t max_returned, int *over,
	    struct mql_result *r)
{
	return run(q, db, ns, first_t, step, nsteps, all_streams,
		   max_returned, over, NULL, r);
}

static struct mql_job *job_new(const struct mql_query *q,
			       const struct tsdb *db, const char *ns,
			       int64_t first_t, int64_t step, size_t nsteps,
			       int all_streams, size_t max_streams);
static void job_take_result(struct mql_job *j, struct mql_result *out);

int mql_eval_part(const struct mql_query *q, const struct tsdb *db,
		  const char *ns, int64_t now_ms, struct mql_part *part,
		  struct mql_result *out)
{
	int done = 0, rc;

	if (part->max_series == 0) {
		mql_part_free(part);
		return mql_eval(q, db, ns, now_ms, out);
	}
	if (q->expr == NULL && q->grouping == MQL_GROUP_NONE &&
	    q->stat != MQL_STAT_ABSENT)
		return run(q, db, ns, now_ms, 0, 1, 0, SIZE_MAX, NULL, part,
			   out);
	/* Every stream depends on every series: all come at the end. */
	if (part->job == NULL)
		part->job = job_new(q, db, ns, now_ms, 0, 1,
				    q->stat == MQL_STAT_ABSENT, SIZE_MAX);
	rc = mql_job_run(part->job, part->max_series, &done);
	out->nstreams = out->npoints = out->ndims = 0;
	part->more = !done;
	if (done) {
		if (rc == 0)
			job_take_result(part->job, out);
		mql_job_free(part->job);
		part->job = NULL;
	}
	return rc;
}

void mql_part_free(struct mql_part *part)
{
	if (part == NULL)
		return;
	mql_job_free(part->job);
	memset(part, 0, sizeof(*part));
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

/* The number of steps of resolution_ms from start_ms to end_ms into
 * *steps: 0, MDS_E_INVAL for a range that is not one, or MDS_E_LIMIT past
 * MQL_MAX_POINTS. */
static int range_steps(int64_t start_ms, int64_t end_ms, int64_t resolution_ms,
		       int64_t *steps)
{
	if (start_ms < 0 || end_ms > TSDB_MAX_TIME_MS || end_ms <= start_ms ||
	    resolution_ms < 1)
		return MDS_E_INVAL;
	*steps = (end_ms - start_ms) / resolution_ms;
	if (*steps < 1)
		return MDS_E_INVAL;
	if (*steps > MQL_MAX_POINTS)
		return MDS_E_LIMIT;
	return 0;
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

	rc = range_steps(start_ms, end_ms, resolution_ms, &steps);
	if (rc != 0)
		return rc;
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

/* --- evaluation over several calls -------------------------------------- */

struct mql_job {
	const struct mql_query *q;
	const struct tsdb *db;
	const char *ns;
	int64_t first_t, step;
	size_t nsteps, max_streams;
	/* An expression's simple queries, evaluated one after the other
	 * before the expression itself; a simple query is its own leaf. */
	const struct mql_query *leaves[MQL_MAX_LEAVES];
	struct mql_result lres[MQL_MAX_LEAVES];
	size_t nleaves, leaf;
	int all_streams; /* of a simple query (mql_eval()'s absent()) */
	struct run run;
	int running; /* run holds leaf's evaluation */
	struct mql_result res;
	int done, rc, over;
};

static struct mql_job *job_new(const struct mql_query *q,
			       const struct tsdb *db, const char *ns,
			       int64_t first_t, int64_t step, size_t nsteps,
			       int all_streams, size_t max_streams)
{
	struct mql_job *j = xcalloc(1, sizeof(*j));

	j->q = q;
	j->db = db;
	j->ns = ns;
	j->first_t = first_t;
	j->step = step;
	j->nsteps = nsteps;
	j->all_streams = all_streams;
	j->max_streams = max_streams;
	if (q->expr != NULL)
		j->nleaves = mql_expr_leaves(q->expr, j->leaves,
					     MQL_MAX_LEAVES);
	else
		j->leaves[j->nleaves++] = q;
	for (size_t i = 0; i < j->nleaves; i++)
		mql_result_init(&j->lres[i]);
	mql_result_init(&j->res);
	return j;
}

/* Moves a finished job's result into out, whose old pools j frees. */
static void job_take_result(struct mql_job *j, struct mql_result *out)
{
	struct mql_result old = *out;

	*out = j->res;
	j->res = old;
}

int mql_job_start(const struct mql_query *q, const struct tsdb *db,
		  const char *ns, int64_t start_ms, int64_t end_ms,
		  int64_t resolution_ms, size_t max_streams,
		  struct mql_job **out)
{
	int64_t steps;
	int rc = range_steps(start_ms, end_ms, resolution_ms, &steps);

	if (rc != 0)
		return rc;
	*out = job_new(q, db, ns, start_ms + resolution_ms, resolution_ms,
		       (size_t)steps, 0, max_streams);
	return 0;
}

/* The last step of an expression: combines its evaluated leaves. */
static int job_combine(struct mql_job *j)
{
	int rc = mql_expr_eval_with(j->q->expr, j->db, j->ns, j->first_t,
				    j->step, j->nsteps, j->leaves, j->lres,
				    j->nleaves, &j->res);

	if (rc == 0 && count_returned(j->q, &j->res) > j->max_streams) {
		j->over = 1;
		j->res.nstreams = j->res.npoints = j->res.ndims = 0;
		rc = MDS_E_LIMIT;
	}
	return rc;
}

int mql_job_run(struct mql_job *j, size_t budget, int *done)
{
	int simple = j->q->expr == NULL;

	while (!j->done && budget > 0) {
		struct mql_result *r = simple ? &j->res : &j->lres[j->leaf];
		const struct mql_query *lq;

		if (j->leaf == j->nleaves) {
			j->rc = job_combine(j);
			j->done = 1;
			break;
		}
		lq = j->leaves[j->leaf];
		if (!j->running) {
			/* As mql_expr_eval() runs its leaves. */
			run_begin(&j->run, lq, j->db, j->ns, j->first_t,
				  j->step, j->nsteps,
				  simple ? j->all_streams
					 : j->nsteps == 1 &&
						   lq->stat == MQL_STAT_ABSENT,
				  simple ? j->max_streams : SIZE_MAX, r);
			j->running = 1;
		}
		j->rc = run_work(&j->run, r, &budget);
		if (j->run.phase != R_DONE)
			break;
		j->running = 0;
		j->over = j->run.over;
		j->leaf++;
		if (j->rc != 0 || simple)
			j->done = 1;
	}
	*done = j->done;
	return j->done ? j->rc : 0;
}

const struct mql_result *mql_job_result(const struct mql_job *j, int *over)
{
	if (over != NULL)
		*over = j->over;
	return &j->res;
}

void mql_job_free(struct mql_job *j)
{
	if (j == NULL)
		return;
	run_free(&j->run);
	for (size_t i = 0; i < j->nleaves; i++)
		mql_result_free(&j->lres[i]);
	mql_result_free(&j->res);
	free(j);
}
