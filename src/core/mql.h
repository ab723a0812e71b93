/*
 * mql.h - the OCI Monitoring Query Language, as alarms and queries use it.
 *
 *   MetricName[interval]{filters}.grouping.statistic() condition
 *
 * e.g. CpuUtilization[1m]{resourceId = "X"}.max() > 80. The filter block,
 * the grouping function and the condition are optional:
 *
 *   interval   N followed by s, m, h or d, from 1s to 1d (OCI allows 1m to
 *              1d; mdscale also accepts seconds).
 *   filters    comma-separated clauses that must all hold; a clause is one
 *              or more terms joined by "||". A term is key = "v", key != "v"
 *              or key =~ "p". The value of = or != is literal (a '*' in it
 *              is a '*'); only =~ matches patterns: '*' wildcards and '|'
 *              between alternatives ("ol8|ol7*"). At most 32 clauses of 32
 *              alternatives each.
 *   grouping   grouping() (one stream of everything) or groupBy(k1, ...)
 *              (one stream per distinct value of those keys, at most 16).
 *   statistic  absent(), absent(hours), count(), first(), increment()
 *              (last - first), last(), max(), mean(), avg() (= mean), min(),
 *              percentile(p) with 0 < p < 1, rate(), sum().
 *   condition  > >= == != < <= N, in (a, b) (a <= v <= b, inclusive as in
 *              OCI), not in (a, b). absent() without one means "== 1".
 *
 * Identifiers are case-sensitive; whitespace between tokens is free. A query
 * is at most MQL_MAX_QUERY bytes. A simple query is parsed in a single
 * linear pass with no recursion. Simple queries combine into expressions
 * (&&, ||, + - * /, numbers, nested queries; core/mql_expr.h) whose
 * recursion is bounded, so any input is accepted or rejected in time
 * linear in its length. Statistics are defined in docs/monitoring.md.
 */
#ifndef MDS_MQL_H
#define MDS_MQL_H

#include <stddef.h>
#include <stdint.h>

#include "core/tsdb.h"

#define MQL_MAX_QUERY 4096       /* bytes of query text */
#define MQL_MAX_FILTERS 32       /* clauses in {...} */
#define MQL_MAX_ALTERNATIVES 32  /* terms in one clause */
#define MQL_MAX_GROUP_KEYS 16    /* keys in groupBy(...) */
#define MQL_MIN_INTERVAL_MS 1000LL
#define MQL_MAX_INTERVAL_MS 86400000LL
#define MQL_MAX_ABSENT_HOURS 72
#define MQL_MAX_POINTS 1000000   /* points in one result (streams x steps) */

struct mql_query;

enum mql_stat {
	MQL_STAT_ABSENT,
	MQL_STAT_COUNT,
	MQL_STAT_FIRST,
	MQL_STAT_INCREMENT,
	MQL_STAT_LAST,
	MQL_STAT_MAX,
	MQL_STAT_MEAN,
	MQL_STAT_MIN,
	MQL_STAT_PERCENTILE,
	MQL_STAT_RATE,
	MQL_STAT_SUM,
};

enum mql_grouping {
	MQL_GROUP_NONE, /* one stream per series */
	MQL_GROUP_ALL,  /* grouping(): one stream */
	MQL_GROUP_BY,   /* groupBy(keys): one stream per key values */
};

enum mql_cmp {
	MQL_CMP_NONE,
	MQL_CMP_GT,
	MQL_CMP_GE,
	MQL_CMP_EQ,
	MQL_CMP_NE,
	MQL_CMP_LT,
	MQL_CMP_LE,
	MQL_CMP_IN,     /* a <= v <= b */
	MQL_CMP_NOT_IN, /* v < a or v > b */
};

/*
 * Parses text into a new query; the caller frees *out with mql_free().
 * Returns 0; MDS_E_PARSE with "column N: expected X, found Y" (N 1-based)
 * in diag for a syntax error, an unknown statistic, an interval or
 * percentile out of range; MDS_E_LIMIT with diag past MQL_MAX_QUERY,
 * MQL_MAX_FILTERS, MQL_MAX_ALTERNATIVES, MQL_MAX_GROUP_KEYS or
 * TSDB_MAX_STR bytes in a string. *out is set only on success.
 */
int mql_parse(const char *text, struct mql_query **out, char *diag,
	      size_t diagsz);

/*
 * Adds the clause key = "value" (exact) to q's filters, e.g. an alarm's
 * resource group. At most one such clause per query. Returns 0 or
 * MDS_E_LIMIT (a second one, 32 clauses already, a string past
 * TSDB_MAX_STR).
 */
int mql_add_filter(struct mql_query *q, const char *key, const char *value);

/* Frees a query. NULL is fine. */
void mql_free(struct mql_query *q);

/* Accessors. Strings and arrays are owned by the query. */
const char *mql_metric(const struct mql_query *q);
int64_t mql_interval_ms(const struct mql_query *q);
enum mql_stat mql_statistic(const struct mql_query *q);
/* Returns the name of a statistic as written in MQL ("max"). */
const char *mql_stat_name(enum mql_stat stat);
/* Returns p of percentile(p), 0 for other statistics. */
double mql_percentile(const struct mql_query *q);
/* Returns absent()'s detection period in ms, 0 for the store's default. */
int64_t mql_absent_period_ms(const struct mql_query *q);
enum mql_grouping mql_grouping(const struct mql_query *q);
/* Returns the groupBy() keys in query order; *n receives their count. */
const char *const *mql_group_keys(const struct mql_query *q, size_t *n);
/* Returns the filter clauses (all must hold); *n receives their count. */
const struct tsdb_clause *mql_filters(const struct mql_query *q, size_t *n);
/*
 * Returns the value v of a clause that is exactly key = "v" (no wildcard,
 * no alternatives), e.g. the deployment an alarm watches; NULL if none.
 */
const char *mql_filter_value(const struct mql_query *q, const char *key);
/* Returns the length of the query's text before its condition, without
 * the blanks that precede it: "M[1m].max() > 1" gives 11 ("M[1m].max()"),
 * as OCI keys metricValues. */
size_t mql_expression_len(const struct mql_query *q);
/* Returns 1 if the query has a condition, explicit or (absent) implicit. */
int mql_has_condition(const struct mql_query *q);
/* Returns the comparison; a and b (may be NULL) receive its operands. */
enum mql_cmp mql_condition(const struct mql_query *q, double *a, double *b);
/* Returns 1 if value meets the condition, 0 if not or if there is none. */
int mql_condition_holds(const struct mql_query *q, double value);

/* One value of a stream: the statistic over [t - interval, t). */
struct mql_point {
	int64_t t;
	double value;
	int present; /* 0: no data in the window (value is 0) */
	int holds;   /* the condition holds (0 when not present) */
};

struct mql_stream {
	const struct tsdb_dim *dims; /* the series' dims, the groupBy dims, or
					none for grouping() */
	size_t ndims;
	/* tsdb_dims_hash(dims, ndims), whichever way the stream was made: a
	 * series' stream carries the hash the store keeps, so that a caller
	 * can find a stream among others without a pass over its strings. */
	uint64_t hash;
	const struct mql_point *points;
	size_t npoints;
};

/*
 * The streams of an evaluation. Everything it points to (dims are interned
 * strings of the store) is valid until the next evaluation into the same
 * result, mql_result_free() or tsdb_free(). The fields after nstreams are
 * private scratch, kept between evaluations to avoid reallocating.
 */
struct mql_result {
	struct mql_stream *streams;
	size_t nstreams;

	size_t streams_cap;
	struct mql_point *points;
	size_t npoints, points_cap;
	struct tsdb_dim *dims;
	size_t ndims, dims_cap;
	const struct tsdb_series **sel;
	size_t nsel, sel_cap;
	uint32_t *order, *gstart;
	size_t order_cap, gstart_cap;
	double *vals;
	size_t nvals, vals_cap;
};

/* Initializes an empty result. */
void mql_result_init(struct mql_result *r);
/* Frees what the result holds; it may be reused after mql_result_init().
 * NULL is fine. */
void mql_result_free(struct mql_result *r);

/*
 * Evaluates q at now_ms over the series of namespace ns in db: one point per
 * stream at t = now_ms, over the window [now_ms - interval, now_ms). Streams
 * without data in the window are left out, except for absent(), whose
 * streams are the matching series with a sample in the detection period
 * before now_ms (the store's raw window unless absent(hours) says).
 * A metric the store has never seen gives no streams, not an error.
 * Returns 0 or MDS_E_LIMIT past MQL_MAX_POINTS; out is overwritten.
 */
int mql_eval(const struct mql_query *q, const struct tsdb *db,
	     const char *ns, int64_t now_ms, struct mql_result *out);

struct mql_job;

/* Where a pass over a query's series in parts stands (mql_eval_part()). A
 * zeroed one starts a pass; mql_part_free() ends one early. */
struct mql_part {
	uint32_t pos;      /* the store's position: 0 for a pass's first part */
	size_t max_series; /* how many series a part takes at most */
	int more;          /* set while series remain after this part */
	struct mql_job *job; /* any other query's evaluation under way */
};

/*
 * mql_eval() over the next part->max_series series of a query that makes
 * each series its own stream (no grouping, no expression, not absent()),
 * from part->pos, which it moves on; part->more says whether any remain.
 * Series added meanwhile are taken by a later part. Any other query is
 * evaluated over the parts (about max_series units of mql_job_run() each,
 * q, db and ns borrowed until the last), and its streams all come with
 * the last part, with more 0: the parts before it give none. Either way
 * the streams are those of mql_eval().
 */
int mql_eval_part(const struct mql_query *q, const struct tsdb *db,
		  const char *ns, int64_t now_ms, struct mql_part *part,
		  struct mql_result *out);

/* Ends a pass under way, freeing what it holds, and zeroes part. NULL is
 * fine. */
void mql_part_free(struct mql_part *part);

/*
 * Evaluates q over a time range for the query API: points at
 * t_k = start_ms + (k + 1) * resolution_ms for every t_k <= end_ms, each
 * over [t_k - interval, t_k), so the last point equals mql_eval(end_ms)
 * when (end - start) is a multiple of the resolution. A stream is returned
 * when one of its points is present; its other points have present == 0.
 * Returns 0; MDS_E_INVAL if end_ms <= start_ms, start_ms < 0, end_ms >
 * TSDB_MAX_TIME_MS or resolution_ms < 1; MDS_E_LIMIT past MQL_MAX_POINTS.
 */
int mql_eval_range(const struct mql_query *q, const struct tsdb *db,
		   const char *ns, int64_t start_ms, int64_t end_ms,
		   int64_t resolution_ms, struct mql_result *out);

/*
 * mql_eval_range() for an answer of at most max_streams streams, counting
 * those a caller returns: every stream of a query without a condition, and
 * of one with a condition those whose last point holds. Past max_streams it
 * returns MDS_E_LIMIT with *over (which may be NULL) set to 1, and out holds
 * no stream; a simple query stops there, without evaluating the groups left
 * (an expression's streams are counted once it is evaluated). Otherwise as
 * mql_eval_range(), with *over set to 0.
 */
int mql_eval_range_max(const struct mql_query *q, const struct tsdb *db,
		       const char *ns, int64_t start_ms, int64_t end_ms,
		       int64_t resolution_ms, size_t max_streams, int *over,
		       struct mql_result *out);

/*
 * mql_eval_range_max() done over several calls, so that a caller on an
 * event loop can answer other work between them: mql_job_start() checks
 * the range as mql_eval_range_max() does (MDS_E_INVAL, MDS_E_LIMIT) and
 * sets *out, which the caller frees with mql_job_free(). q, db and ns are
 * borrowed until then; the store may take samples and series meanwhile
 * (a series added is seen if the selection has not passed it).
 */
int mql_job_start(const struct mql_query *q, const struct tsdb *db,
		  const char *ns, int64_t start_ms, int64_t end_ms,
		  int64_t resolution_ms, size_t max_streams,
		  struct mql_job **out);

/*
 * Does about budget units of j's work (a series selected, grouped, or read
 * for one step; an expression's last step, which combines its queries'
 * streams, in one go) and sets *done once it is finished. Returns 0, or
 * once done what mql_eval_range_max() returns. Over the same store, the
 * result is the same whatever the budgets.
 */
int mql_job_run(struct mql_job *j, size_t budget, int *done);

/* The result of a finished job (owned by it); *over (may be NULL) as
 * mql_eval_range_max() sets it. */
const struct mql_result *mql_job_result(const struct mql_job *j, int *over);

/* NULL is fine. */
void mql_job_free(struct mql_job *j);

#endif
