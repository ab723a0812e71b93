/* mql_expr.c - MQL expressions: joins, arithmetic, nested queries; see
 * core/mql_expr.h and docs/monitoring.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mql_expr.h"
#include "util/err.h"
#include "util/htab.h"
#include "util/xalloc.h"

enum kind {
	N_QUERY, N_NUMBER, N_NEG, N_ADD, N_SUB, N_MUL, N_DIV,
	N_COND, N_AND, N_OR, N_NEST,
};

struct mql_node {
	enum kind kind;
	struct mql_node *l, *r;  /* operands; N_NEG, N_COND, N_NEST: l */
	struct mql_query *q;     /* N_QUERY */
	double k;                /* N_NUMBER */
	enum mql_cmp cmp;        /* N_COND */
	double a, b;
	enum mql_grouping grouping; /* N_NEST */
	char *keys[MQL_MAX_GROUP_KEYS];
	size_t nkeys;
	enum mql_stat stat;
};

/* --- parsing ------------------------------------------------------------- */

struct eparser {
	struct mql_cursor *c;
	int depth;
	size_t nleaves;
	const struct mql_query *lead;
	size_t cond_at; /* where the top condition starts, if any */
};

static struct mql_node *node(enum kind kind, struct mql_node *l,
			     struct mql_node *r)
{
	struct mql_node *n = xcalloc(1, sizeof(*n));

	n->kind = kind;
	n->l = l;
	n->r = r;
	return n;
}

void mql_expr_free(struct mql_node *n)
{
	if (n == NULL)
		return;
	mql_expr_free(n->l);
	mql_expr_free(n->r);
	mql_free(n->q);
	for (size_t i = 0; i < n->nkeys; i++)
		free(n->keys[i]);
	free(n);
}

static int p_join(struct eparser *e, struct mql_node **out);

/* Reads a word of letters without moving. */
static size_t word_len(const char *p)
{
	size_t n = 0;

	while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z'))
		n++;
	return n;
}

static int at_word(const char *p, const char *w)
{
	size_t n = word_len(p);

	return n == strlen(w) && memcmp(p, w, n) == 0;
}

static int expect(struct eparser *e, char ch, const char *what)
{
	mql_cur_ws(e->c);
	if (*e->c->p != ch)
		return mql_cur_fail(e->c, e->c->p, what);
	e->c->p++;
	return 0;
}

/* groupBy(k1, ...) of a nested query. */
static int p_keys(struct eparser *e, struct mql_node *n)
{
	int rc = expect(e, '(', "'('");

	while (rc == 0) {
		const char *s;

		mql_cur_ws(e->c);
		s = e->c->p;
		if (n->nkeys == MQL_MAX_GROUP_KEYS)
			return mql_cur_fail(e->c, s, "at most 16 groupBy keys");
		while (mql_is_name_char(*e->c->p))
			e->c->p++;
		if (e->c->p == s || (size_t)(e->c->p - s) > TSDB_MAX_STR)
			return mql_cur_fail(e->c, s, "a dimension name");
		n->keys[n->nkeys] = xmalloc((size_t)(e->c->p - s) + 1);
		memcpy(n->keys[n->nkeys], s, (size_t)(e->c->p - s));
		n->keys[n->nkeys++][e->c->p - s] = '\0';
		mql_cur_ws(e->c);
		if (*e->c->p == ')') {
			e->c->p++;
			return 0;
		}
		rc = expect(e, ',', "',' or ')'");
	}
	return rc;
}

/* .grouping().stat() or .groupBy(k).stat() or .stat() after "(expr)". */
static int p_nest(struct eparser *e, struct mql_node **inner)
{
	static const struct {
		const char *name;
		enum mql_stat stat;
	} stats[] = {
		{ "count", MQL_STAT_COUNT }, { "max", MQL_STAT_MAX },
		{ "mean", MQL_STAT_MEAN },   { "avg", MQL_STAT_MEAN },
		{ "min", MQL_STAT_MIN },     { "sum", MQL_STAT_SUM },
	};
	struct mql_node *n = node(N_NEST, *inner, NULL);
	const char *at;
	int rc = 0;

	*inner = n;
	e->c->p++; /* '.' */
	mql_cur_ws(e->c);
	at = e->c->p;
	if (at_word(at, "grouping") || at_word(at, "groupBy")) {
		int all = at_word(at, "grouping");

		e->c->p += word_len(at);
		n->grouping = all ? MQL_GROUP_ALL : MQL_GROUP_BY;
		if (all) {
			rc = expect(e, '(', "'('");
			if (rc == 0)
				rc = expect(e, ')', "')'");
		} else {
			rc = p_keys(e, n);
		}
		if (rc == 0)
			rc = expect(e, '.', "'.'");
		if (rc != 0)
			return rc;
		mql_cur_ws(e->c);
		at = e->c->p;
	}
	for (size_t i = 0; i < sizeof(stats) / sizeof(stats[0]); i++) {
		if (!at_word(at, stats[i].name))
			continue;
		n->stat = stats[i].stat;
		e->c->p += word_len(at);
		rc = expect(e, '(', "'('");
		return rc == 0 ? expect(e, ')', "')'") : rc;
	}
	return mql_cur_fail(e->c, at, "a statistic of streams (count, max, "
			    "mean, avg, min, sum) or grouping function");
}

static int p_primary(struct eparser *e, struct mql_node **out)
{
	struct mql_cursor *c = e->c;
	int rc;

	mql_cur_ws(c);
	if (*c->p == '(') {
		if (++e->depth > MQL_MAX_DEPTH)
			return mql_cur_fail(c, c->p, "at most 16 levels of "
					    "parentheses");
		c->p++;
		rc = p_join(e, out);
		if (rc == 0)
			rc = expect(e, ')', "')'");
		e->depth--;
		if (rc != 0)
			return rc;
		mql_cur_ws(c);
		return *c->p == '.' ? p_nest(e, out) : 0;
	}
	if ((*c->p >= '0' && *c->p <= '9') || *c->p == '.') {
		*out = node(N_NUMBER, NULL, NULL);
		return mql_cur_number(c, &(*out)->k, "a number");
	}
	if (e->nleaves == MQL_MAX_LEAVES)
		return mql_cur_fail(c, c->p, "at most 16 queries in one "
				    "expression");
	*out = node(N_QUERY, NULL, NULL);
	rc = mql_cur_query(c, &(*out)->q);
	if (rc == 0 && e->nleaves++ == 0)
		e->lead = (*out)->q;
	return rc;
}

static int p_unary(struct eparser *e, struct mql_node **out)
{
	int rc;

	mql_cur_ws(e->c);
	if (*e->c->p != '-')
		return p_primary(e, out);
	if (++e->depth > MQL_MAX_DEPTH)
		return mql_cur_fail(e->c, e->c->p, "at most 16 levels of "
				    "nesting");
	e->c->p++;
	*out = node(N_NEG, NULL, NULL);
	rc = p_unary(e, &(*out)->l);
	e->depth--;
	return rc;
}

/* Left-associative binary operators over `next`. */
static int p_binary(struct eparser *e, struct mql_node **out,
		    int (*next)(struct eparser *, struct mql_node **),
		    const char *ops, const enum kind *kinds, int twice)
{
	int rc = next(e, out);

	while (rc == 0) {
		const char *op;

		mql_cur_ws(e->c);
		op = *e->c->p ? strchr(ops, *e->c->p) : NULL;
		if (op == NULL || (twice && e->c->p[1] != *e->c->p))
			return 0;
		e->c->p += twice ? 2 : 1;
		*out = node(kinds[op - ops], *out, NULL);
		rc = next(e, &(*out)->r);
	}
	return rc;
}

static int p_product(struct eparser *e, struct mql_node **out)
{
	static const enum kind kinds[] = { N_MUL, N_DIV };

	return p_binary(e, out, p_unary, "*/", kinds, 0);
}

static int p_sum(struct eparser *e, struct mql_node **out)
{
	static const enum kind kinds[] = { N_ADD, N_SUB };

	return p_binary(e, out, p_product, "+-", kinds, 0);
}

static int p_cmp(struct eparser *e, struct mql_node **out)
{
	struct mql_cursor *c = e->c;
	struct mql_node *n;
	int rc = p_sum(e, out);

	if (rc != 0)
		return rc;
	mql_cur_ws(c);
	if (!strchr("<>=!", *c->p) && !at_word(c->p, "in") &&
	    !at_word(c->p, "not"))
		return 0;
	if (*c->p == '\0')
		return 0;
	e->cond_at = (size_t)(c->p - c->text);
	n = node(N_COND, *out, NULL);
	*out = n;
	return mql_cur_condition(c, &n->cmp, &n->a, &n->b);
}

static int p_and(struct eparser *e, struct mql_node **out)
{
	static const enum kind kinds[] = { N_AND };

	return p_binary(e, out, p_cmp, "&", kinds, 1);
}

static int p_join(struct eparser *e, struct mql_node **out)
{
	static const enum kind kinds[] = { N_OR };

	return p_binary(e, out, p_and, "|", kinds, 1);
}

int mql_expr_parse(struct mql_cursor *c, struct mql_node **out,
		   const struct mql_query **lead, int *has_cond,
		   size_t *expr_len)
{
	struct eparser e = { .c = c };
	struct mql_node *n = NULL;
	size_t len;
	int rc;

	rc = p_join(&e, &n);
	if (rc == 0) {
		mql_cur_ws(c);
		if (*c->p != '\0')
			rc = mql_cur_fail(c, c->p, "end of input, an operator "
					  "(+ - * / && ||) or a condition");
	}
	if (rc == 0 && e.lead == NULL)
		rc = mql_cur_fail(c, c->text, "a metric query in the "
				  "expression");
	if (rc != 0) {
		mql_expr_free(n);
		return rc;
	}
	*out = n;
	*lead = e.lead;
	*has_cond = n->kind == N_COND || n->kind == N_AND || n->kind == N_OR;
	len = strlen(c->text);
	if (n->kind == N_COND)
		len = e.cond_at;
	while (len > 0 && strchr(" \t\r\n", c->text[len - 1]))
		len--;
	*expr_len = len;
	return 0;
}

int mql_expr_add_filter(struct mql_node *n, const char *key,
			const char *value)
{
	int rc = 0;

	if (n == NULL)
		return 0;
	if (n->kind == N_QUERY)
		return mql_add_filter(n->q, key, value);
	rc = mql_expr_add_filter(n->l, key, value);
	return rc != 0 ? rc : mql_expr_add_filter(n->r, key, value);
}

/* --- evaluation ---------------------------------------------------------- */

/* One stream of a node's value: dims (the array owned, the strings the
 * store's), their tsdb_dims_hash() and one point per step. */
struct vstream {
	struct tsdb_dim *dims;
	size_t ndims;
	uint64_t hash;
	struct mql_point *pts;
};

/* A node's value: streams, or a number (scalar). */
struct vec {
	struct vstream *s;
	size_t n, cap;
	int scalar;
	double k;
	int cond; /* the points' holds are a condition's */
};

struct ectx {
	const struct tsdb *db;
	const char *ns;
	int64_t first_t, step;
	size_t nsteps;
	/* Simple queries evaluated already (mql_expr_eval_with()). */
	const struct mql_query *const *leaves;
	const struct mql_result *res;
	size_t nleaves;
};

static void vec_free(struct vec *v)
{
	for (size_t i = 0; i < v->n; i++) {
		free(v->s[i].dims);
		free(v->s[i].pts);
	}
	free(v->s);
	memset(v, 0, sizeof(*v));
}

/* Adds a stream of dims (their tsdb_dims_hash() is hash). */
static struct vstream *vec_add(struct vec *v, const struct tsdb_dim *dims,
			       size_t ndims, uint64_t hash, size_t nsteps)
{
	struct vstream *s;

	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 8;
		v->s = xreallocarray(v->s, v->cap, sizeof(*v->s));
	}
	s = &v->s[v->n++];
	s->dims = xmalloc((ndims + 1) * sizeof(*s->dims));
	if (ndims > 0)
		memcpy(s->dims, dims, ndims * sizeof(*dims));
	s->ndims = ndims;
	s->hash = hash;
	s->pts = xcalloc(nsteps, sizeof(*s->pts));
	return s;
}

/* Order-insensitive: a stream's dimensions as a set. */
static uint64_t dims_hash(const struct tsdb_dim *d, size_t n)
{
	uint64_t h = 0;

	for (size_t i = 0; i < n; i++)
		h += hash_fin(hash_mix(hash_str(d[i].key),
				       hash_str(d[i].value)));
	return hash_fin(h + n);
}

static int dims_same(const struct vstream *a, const struct vstream *b)
{
	if (a->ndims != b->ndims)
		return 0;
	for (size_t i = 0; i < a->ndims; i++) {
		size_t k = 0;

		while (k < b->ndims && strcmp(a->dims[i].key, b->dims[k].key))
			k++;
		if (k == b->ndims ||
		    strcmp(a->dims[i].value, b->dims[k].value) != 0)
			return 0;
	}
	return 1;
}

static int eval_node(const struct mql_node *n, const struct ectx *x,
		     struct vec *out);

static int eval_query(const struct mql_query *q, const struct ectx *x,
		      struct vec *out)
{
	struct mql_result own;
	const struct mql_result *r = &own;
	int rc = 0;

	mql_result_init(&own);
	for (size_t i = 0; i < x->nleaves; i++)
		if (x->leaves[i] == q)
			r = &x->res[i];
	if (r == &own)
		rc = mql_run(q, x->db, x->ns, x->first_t, x->step, x->nsteps,
			     x->nsteps == 1 &&
				     mql_statistic(q) == MQL_STAT_ABSENT,
			     SIZE_MAX, NULL, &own);
	for (size_t i = 0; rc == 0 && i < r->nstreams; i++) {
		struct vstream *s = vec_add(out, r->streams[i].dims,
					    r->streams[i].ndims,
					    r->streams[i].hash, x->nsteps);

		memcpy(s->pts, r->streams[i].points,
		       x->nsteps * sizeof(*s->pts));
		for (size_t k = 0; k < x->nsteps; k++)
			s->pts[k].holds = 0;
	}
	mql_result_free(&own);
	return rc;
}

static double arith(enum kind kind, double a, double b, int *ok)
{
	switch (kind) {
	case N_ADD:
		return a + b;
	case N_SUB:
		return a - b;
	case N_MUL:
		return a * b;
	case N_DIV:
		if (b == 0) {
			*ok = 0;
			return 0;
		}
		return a / b;
	default:
		*ok = 0;
		return 0;
	}
}

/* One point of a binary node where one operand has no point here: only OR
 * has a value then. */
static void combine_one(enum kind kind, const struct mql_point *a,
			const struct mql_point *b, struct mql_point *o)
{
	*o = (struct mql_point){ 0 };
	if (a != NULL) {
		o->t = a->t;
		if (kind == N_OR) {
			o->present = a->present;
			o->holds = a->holds;
			o->value = a->present ? a->value : 0;
		}
	} else if (b != NULL) {
		o->t = b->t;
		if (kind == N_OR) {
			o->present = b->present;
			o->holds = b->holds;
			o->value = b->value;
		}
	}
}

/* One point of a binary node from the operands' points (either may be
 * NULL: no point on that side). */
static void combine(enum kind kind, const struct mql_point *a,
		    const struct mql_point *b, struct mql_point *o)
{
	int ok = 1;

	if (a == NULL || b == NULL) {
		combine_one(kind, a, b, o);
		return;
	}
	o->t = a->t;
	if (kind == N_AND) {
		o->present = a->present && b->present;
		o->holds = a->holds && b->holds;
		o->value = a->value;
	} else if (kind == N_OR) {
		o->present = a->present || b->present;
		o->holds = a->holds || b->holds;
		o->value = a->present ? a->value : b->value;
	} else {
		o->value = arith(kind, a->value, b->value, &ok);
		o->present = a->present && b->present && ok &&
			     isfinite(o->value);
		o->holds = 0;
		if (!o->present)
			o->value = 0;
	}
}

/* The streams of a and b with the same dimensions, combined (|| also
 * keeps those of either alone). */
static void join(enum kind kind, const struct vec *a, const struct vec *b,
		 size_t nsteps, struct vec *out)
{
	struct htab ix = { 0 };
	char *used = xcalloc(b->n + 1, 1);

	for (size_t i = 0; i < b->n; i++)
		htab_put(&ix, dims_hash(b->s[i].dims, b->s[i].ndims),
			 (uint32_t)i);
	for (size_t i = 0; i < a->n; i++) {
		const struct vstream *sa = &a->s[i], *sb = NULL;
		struct htab_iter it;
		struct vstream *o;

		for (uint32_t v = htab_first(&ix, dims_hash(sa->dims,
							    sa->ndims), &it);
		     v != HTAB_NONE; v = htab_next(&it)) {
			if (dims_same(sa, &b->s[v])) {
				sb = &b->s[v];
				used[v] = 1;
				break;
			}
		}
		if (sb == NULL && kind != N_OR)
			continue;
		o = vec_add(out, sa->dims, sa->ndims, sa->hash, nsteps);
		for (size_t k = 0; k < nsteps; k++)
			combine(kind, &sa->pts[k], sb ? &sb->pts[k] : NULL,
				&o->pts[k]);
	}
	for (size_t i = 0; kind == N_OR && i < b->n; i++) {
		struct vstream *o;

		if (used[i])
			continue;
		o = vec_add(out, b->s[i].dims, b->s[i].ndims, b->s[i].hash,
			    nsteps);
		for (size_t k = 0; k < nsteps; k++)
			combine(kind, NULL, &b->s[i].pts[k], &o->pts[k]);
	}
	htab_free(&ix);
	free(used);
}

/* Arithmetic with a number on one side. */
static void arith_scalar(enum kind kind, const struct vec *v, double k,
			 int k_left, size_t nsteps, struct vec *out)
{
	for (size_t i = 0; i < v->n; i++) {
		struct vstream *o = vec_add(out, v->s[i].dims, v->s[i].ndims,
					    v->s[i].hash, nsteps);

		for (size_t p = 0; p < nsteps; p++) {
			struct mql_point num = { .t = v->s[i].pts[p].t,
						 .value = k, .present = 1 };

			if (k_left)
				combine(kind, &num, &v->s[i].pts[p],
					&o->pts[p]);
			else
				combine(kind, &v->s[i].pts[p], &num,
					&o->pts[p]);
		}
	}
}

static int eval_binary(const struct mql_node *n, const struct ectx *x,
		       struct vec *out)
{
	struct vec a = { 0 }, b = { 0 };
	int rc = eval_node(n->l, x, &a);

	if (rc == 0)
		rc = eval_node(n->r, x, &b);
	if (rc == 0 && a.scalar && b.scalar) {
		int ok = 1;

		out->scalar = 1;
		out->k = arith(n->kind, a.k, b.k, &ok);
		if (!ok || !isfinite(out->k))
			out->scalar = 0; /* no value: no streams */
	} else if (rc == 0 && (a.scalar || b.scalar)) {
		/* && and || join streams: a number has none. */
		if (n->kind != N_AND && n->kind != N_OR)
			arith_scalar(n->kind, a.scalar ? &b : &a,
				     a.scalar ? a.k : b.k, a.scalar,
				     x->nsteps, out);
	} else if (rc == 0) {
		join(n->kind, &a, &b, x->nsteps, out);
	}
	out->cond = n->kind == N_AND || n->kind == N_OR;
	vec_free(&a);
	vec_free(&b);
	return rc;
}

/* The values one inner point gives a nested statistic. */
static int inner_value(const struct vec *v, const struct mql_point *p,
		       double *value)
{
	if (v->cond) {
		*value = 1;
		return p->holds;
	}
	*value = p->value;
	return p->present;
}

/* Which outer group an inner stream belongs to; the group's dims. */
static size_t nest_group(const struct mql_node *n, const struct vstream *s,
			 struct vec *out, size_t nsteps)
{
	struct tsdb_dim d[MQL_MAX_GROUP_KEYS];
	struct vstream probe;
	size_t nd = 0;

	if (n->grouping == MQL_GROUP_NONE) {
		vec_add(out, s->dims, s->ndims, s->hash, nsteps);
		return out->n - 1;
	}
	for (size_t k = 0; n->grouping == MQL_GROUP_BY && k < n->nkeys; k++)
		for (size_t i = 0; i < s->ndims; i++)
			if (strcmp(s->dims[i].key, n->keys[k]) == 0)
				d[nd++] = s->dims[i];
	probe = (struct vstream){ .dims = d, .ndims = nd };
	for (size_t g = 0; g < out->n; g++)
		if (dims_same(&probe, &out->s[g]))
			return g;
	vec_add(out, d, nd, tsdb_dims_hash(d, nd), nsteps);
	return out->n - 1;
}

/* Adds value to point p of a nested group, by its statistic. */
static void nest_add(enum mql_stat stat, struct mql_point *p, double v)
{
	uint64_t n = (uint64_t)p->holds; /* the count so far */

	switch (stat) {
	case MQL_STAT_MAX:
		p->value = n == 0 || v > p->value ? v : p->value;
		break;
	case MQL_STAT_MIN:
		p->value = n == 0 || v < p->value ? v : p->value;
		break;
	case MQL_STAT_COUNT:
		p->value = (double)(n + 1);
		break;
	default: /* sum, and mean until the end */
		p->value += v;
		break;
	}
	p->holds = (int)(n + 1);
	p->present = 1;
}

static int eval_nest(const struct mql_node *n, const struct ectx *x,
		     struct vec *out)
{
	struct vec in = { 0 };
	int rc = eval_node(n->l, x, &in);

	for (size_t i = 0; rc == 0 && i < in.n; i++) {
		size_t g = nest_group(n, &in.s[i], out, x->nsteps);

		for (size_t k = 0; k < x->nsteps; k++) {
			double v;

			out->s[g].pts[k].t = in.s[i].pts[k].t;
			if (inner_value(&in, &in.s[i].pts[k], &v))
				nest_add(n->stat, &out->s[g].pts[k], v);
		}
	}
	/* holds carried the counts; the means divide by them. */
	for (size_t g = 0; g < out->n; g++)
		for (size_t k = 0; k < x->nsteps; k++) {
			struct mql_point *p = &out->s[g].pts[k];

			if (n->stat == MQL_STAT_MEAN && p->holds > 0)
				p->value /= p->holds;
			p->holds = 0;
		}
	vec_free(&in);
	return rc;
}

static int eval_node(const struct mql_node *n, const struct ectx *x,
		     struct vec *out)
{
	int rc;

	switch (n->kind) {
	case N_QUERY:
		return eval_query(n->q, x, out);
	case N_NUMBER:
		out->scalar = 1;
		out->k = n->k;
		return 0;
	case N_NEG: {
		struct vec v = { 0 };

		rc = eval_node(n->l, x, &v);
		if (rc == 0 && v.scalar) {
			out->scalar = 1;
			out->k = -v.k;
		} else if (rc == 0) {
			arith_scalar(N_SUB, &v, 0, 1, x->nsteps, out);
		}
		vec_free(&v);
		return rc;
	}
	case N_COND:
		rc = eval_node(n->l, x, out);
		if (rc != 0 || out->scalar) {
			out->scalar = 0; /* a number is no stream */
			return rc;
		}
		for (size_t i = 0; i < out->n; i++)
			for (size_t k = 0; k < x->nsteps; k++) {
				struct mql_point *p = &out->s[i].pts[k];

				p->holds = p->present &&
					   mql_cmp_holds(n->cmp, n->a, n->b,
							 p->value);
			}
		out->cond = 1;
		return 0;
	case N_NEST:
		return eval_nest(n, x, out);
	default:
		return eval_binary(n, x, out);
	}
}

/* Moves the streams with data (any when all) into the result's pools. */
static int fill_result(const struct vec *v, const struct ectx *x,
		       struct mql_result *r)
{
	size_t ndims = 0, nkept = 0, *off;

	r->nstreams = r->npoints = r->ndims = 0;
	if (v->n > 0 && x->nsteps > MQL_MAX_POINTS / v->n)
		return MDS_E_LIMIT;
	off = xmalloc((v->n + 1) * sizeof(*off));
	for (size_t i = 0; i < v->n; i++)
		ndims += v->s[i].ndims;
	r->streams = xreallocarray(r->streams, v->n + 1, sizeof(*r->streams));
	r->streams_cap = v->n + 1;
	r->points = xreallocarray(r->points, v->n * x->nsteps + 1,
				  sizeof(*r->points));
	r->points_cap = v->n * x->nsteps + 1;
	r->dims = xreallocarray(r->dims, ndims + 1, sizeof(*r->dims));
	r->dims_cap = ndims + 1;
	for (size_t i = 0; i < v->n; i++) {
		const struct vstream *s = &v->s[i];
		int any = 0;

		for (size_t k = 0; k < x->nsteps; k++)
			any |= s->pts[k].present;
		if (!any)
			continue;
		memcpy(r->points + r->npoints, s->pts,
		       x->nsteps * sizeof(*s->pts));
		if (s->ndims > 0)
			memcpy(r->dims + r->ndims, s->dims,
			       s->ndims * sizeof(*s->dims));
		off[nkept] = r->ndims;
		r->streams[nkept] = (struct mql_stream){
			.ndims = s->ndims, .hash = s->hash,
			.npoints = x->nsteps };
		r->npoints += x->nsteps;
		r->ndims += s->ndims;
		nkept++;
	}
	for (size_t i = 0; i < nkept; i++) {
		r->streams[i].points = r->points + i * x->nsteps;
		r->streams[i].dims = r->streams[i].ndims ? r->dims + off[i]
							 : NULL;
	}
	r->nstreams = nkept;
	free(off);
	return 0;
}

size_t mql_expr_leaves(const struct mql_node *n,
		       const struct mql_query **out, size_t max)
{
	size_t k = 0;

	if (n == NULL)
		return 0;
	if (n->kind == N_QUERY && max > 0) {
		out[0] = n->q;
		return 1;
	}
	k = mql_expr_leaves(n->l, out, max);
	return k + mql_expr_leaves(n->r, out + k, max - k);
}

int mql_expr_eval(const struct mql_node *n, const struct tsdb *db,
		  const char *ns, int64_t first_t, int64_t step, size_t nsteps,
		  struct mql_result *out)
{
	return mql_expr_eval_with(n, db, ns, first_t, step, nsteps, NULL,
				  NULL, 0, out);
}

int mql_expr_eval_with(const struct mql_node *n, const struct tsdb *db,
		       const char *ns, int64_t first_t, int64_t step,
		       size_t nsteps, const struct mql_query *const *leaves,
		       const struct mql_result *res, size_t nleaves,
		       struct mql_result *out)
{
	struct ectx x = { .db = db, .ns = ns, .first_t = first_t,
			  .step = step, .nsteps = nsteps, .leaves = leaves,
			  .res = res, .nleaves = nleaves };
	struct vec v = { 0 };
	int rc = eval_node(n, &x, &v);

	if (rc == 0 && v.scalar) {
		/* A number alone: one stream without dimensions. */
		struct vstream *s = vec_add(&v, NULL, 0,
					    tsdb_dims_hash(NULL, 0), nsteps);

		for (size_t k = 0; k < nsteps; k++)
			s->pts[k] = (struct mql_point){
				.t = first_t + (int64_t)k * step,
				.value = v.k, .present = 1 };
	}
	if (rc == 0)
		rc = fill_result(&v, &x, out);
	vec_free(&v);
	return rc;
}
