/*
 * mql_expr.h - inside MQL (core/mql.h), for mql.c, mql_eval.c and
 * mql_expr.c only: the parsed query, and the expressions around simple
 * queries.
 *
 * A simple query is one metric: Metric[i]{filters}.grouping.stat() cond.
 * An expression combines simple queries:
 *
 *   expr    := join
 *   join    := cmp { ("&&" | "||") cmp }        && binds tighter than ||
 *   cmp     := sum [ condition ]
 *   sum     := product { ("+" | "-") product }
 *   product := unary { ("*" | "/") unary }
 *   unary   := "-" unary | primary
 *   primary := number | query | "(" expr ")" [ .grouping.stat() ]
 *
 * A parenthesized expression followed by a statistic is a nested query: the
 * statistic aggregates the inner streams at each point (see
 * docs/monitoring.md). Expressions nest at most MQL_MAX_DEPTH deep and hold
 * at most MQL_MAX_LEAVES simple queries, so parsing stays linear.
 */
#ifndef MDS_MQL_EXPR_H
#define MDS_MQL_EXPR_H

#include <stddef.h>
#include <stdint.h>

#include "core/mql.h"
#include "core/tsdb.h"

#define MQL_MAX_DEPTH 16  /* nested parentheses and unary minus */
#define MQL_MAX_LEAVES 16 /* simple queries in one expression */

struct mql_node;

/* A parsed query (mql.c parses, mql_eval.c evaluates). */
struct mql_query {
	char *pool; /* every string of the query, NUL-separated */
	size_t pool_used;
	const char *metric;
	int64_t interval_ms;
	struct tsdb_term *terms;
	size_t nterms, terms_cap;
	struct tsdb_clause clauses[MQL_MAX_FILTERS];
	size_t clause_first[MQL_MAX_FILTERS]; /* index of its first term */
	size_t nclauses;
	enum mql_grouping grouping;
	const char *group_keys[MQL_MAX_GROUP_KEYS];
	size_t ngroup_keys;
	enum mql_stat stat;
	double percentile;
	int64_t absent_ms;
	enum mql_cmp cmp;
	double a, b;
	size_t expr_len; /* bytes of text before the condition */
	char *extra;     /* mql_add_filter()'s key and value */
	struct mql_node *expr;       /* an expression (mql_expr.h), or NULL */
	const struct mql_query *lead; /* its first simple query */
	int expr_cond;               /* its result is a condition's */
};

/* The simple query an accessor describes: the first of an expression. */
#define LEAD(q) ((q)->lead != NULL ? (q)->lead : (q))

/* The parse position, shared by both parsers. err_at is where the last
 * error was found. */
struct mql_cursor {
	const char *text, *p;
	char *diag;
	size_t diagsz;
	const char *err_at;
};

/* From mql.c. Each returns 0 or MDS_E_PARSE / MDS_E_LIMIT with
 * "column N: ..." in the cursor's diag, as mql_parse() does. */
void mql_cur_ws(struct mql_cursor *c);
int mql_cur_fail(struct mql_cursor *c, const char *at, const char *expected);
int mql_cur_number(struct mql_cursor *c, double *out, const char *expected);
/* A simple query without a condition at c->p, into a new *out. */
int mql_cur_query(struct mql_cursor *c, struct mql_query **out);
/* A condition (> 1, in (a, b), ...) at c->p. */
int mql_cur_condition(struct mql_cursor *c, enum mql_cmp *cmp, double *a,
		      double *b);
/* Whether v meets cmp with operands a and b. */
int mql_cmp_holds(enum mql_cmp cmp, double a, double b, double v);
/* A character of a name after its first. */
int mql_is_name_char(char c);
/* Evaluates a simple query at nsteps points first_t + k * step into r.
 * Stops as soon as more than max_returned streams would be returned (see
 * mql_eval_range_max(); SIZE_MAX for no limit), returning MDS_E_LIMIT with
 * *over (which may be NULL otherwise) set to 1. */
int mql_run(const struct mql_query *q, const struct tsdb *db, const char *ns,
	    int64_t first_t, int64_t step, size_t nsteps, int all_streams,
	    size_t max_returned, int *over, struct mql_result *r);

struct mql_node;

/* From mql_expr.c. Parses the whole text as an expression into a new
 * *out; *lead gets its first simple query (owned by the tree). *has_cond
 * says whether its result is a condition's; *expr_len is the length of the
 * text before its top condition (the whole text if none). */
int mql_expr_parse(struct mql_cursor *c, struct mql_node **out,
		   const struct mql_query **lead, int *has_cond,
		   size_t *expr_len);
/* NULL is fine. */
void mql_expr_free(struct mql_node *n);
/* mql_add_filter() on every simple query of n. */
int mql_expr_add_filter(struct mql_node *n, const char *key,
			const char *value);
/* Evaluates n at nsteps points first_t + k * step into out, whose streams
 * then keep only steps with data (all of them when all_streams). */
int mql_expr_eval(const struct mql_node *n, const struct tsdb *db,
		  const char *ns, int64_t first_t, int64_t step, size_t nsteps,
		  struct mql_result *out);
/* Lists n's simple queries into out (at most max), each once, and
 * returns their count. */
size_t mql_expr_leaves(const struct mql_node *n,
		       const struct mql_query **out, size_t max);
/* mql_expr_eval() with the streams of its simple queries evaluated
 * already: leaf i's mql_run() result is res[i] (as mql_expr_eval() runs
 * it), for the nleaves queries of mql_expr_leaves(). */
int mql_expr_eval_with(const struct mql_node *n, const struct tsdb *db,
		       const char *ns, int64_t first_t, int64_t step,
		       size_t nsteps, const struct mql_query *const *leaves,
		       const struct mql_result *res, size_t nleaves,
		       struct mql_result *out);

#endif
