/* mql.c - MQL parsing and evaluation; see mql.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mql.h"
#include "util/err.h"
#include "util/htab.h"
#include "util/xalloc.h"

#define MS_HOUR 3600000LL

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
};

static const struct {
	const char *name;
	enum mql_stat stat;
} stats[] = {
	{ "absent", MQL_STAT_ABSENT },   { "avg", MQL_STAT_MEAN },
	{ "count", MQL_STAT_COUNT },     { "last", MQL_STAT_LAST },
	{ "max", MQL_STAT_MAX },         { "mean", MQL_STAT_MEAN },
	{ "min", MQL_STAT_MIN },         { "percentile", MQL_STAT_PERCENTILE },
	{ "rate", MQL_STAT_RATE },       { "sum", MQL_STAT_SUM },
};

#define STAT_LIST "absent, avg, count, last, max, mean, min, percentile, " \
		  "rate, sum"

/* --- parsing ------------------------------------------------------------- */

struct parser {
	const char *text, *p;
	struct mql_query *q;
	char *diag;
	size_t diagsz;
};

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Characters of a metric name or dimension key after the first. */
static int is_name(char c)
{
	return is_alpha(c) || is_digit(c) || c == '_' || c == '.' ||
	       c == '-' || c == '$';
}

static void ws(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' ||
	       *ps->p == '\r')
		ps->p++;
}

static int column(const struct parser *ps, const char *at)
{
	return (int)(at - ps->text) + 1;
}

/* Describes the token at `at` for a diagnostic. */
static void describe(const char *at, char *out, size_t outsz)
{
	size_t n = 0;

	if (*at == '\0') {
		snprintf(out, outsz, "end of input");
		return;
	}
	while (is_alpha(at[n]) || is_digit(at[n]) || at[n] == '_' ||
	       at[n] == '.')
		n++;
	if (n > 0)
		snprintf(out, outsz, "'%.*s%s'", n > 32 ? 32 : (int)n, at,
			 n > 32 ? "..." : "");
	else if ((unsigned char)*at >= 0x20 && (unsigned char)*at < 0x7f)
		snprintf(out, outsz, "'%c'", *at);
	else
		snprintf(out, outsz, "byte 0x%02x", (unsigned char)*at);
}

static int fail(struct parser *ps, const char *at, const char *expected)
{
	char what[48];

	describe(at, what, sizeof(what));
	mds_diag(ps->diag, ps->diagsz, "column %d: expected %s, found %s",
		 column(ps, at), expected, what);
	return MDS_E_PARSE;
}

static int limit(struct parser *ps, const char *at, const char *what)
{
	mds_diag(ps->diag, ps->diagsz, "column %d: %s", column(ps, at),
		 what);
	return MDS_E_LIMIT;
}

static int expect(struct parser *ps, char c, const char *expected)
{
	ws(ps);
	if (*ps->p != c)
		return fail(ps, ps->p, expected);
	ps->p++;
	return 0;
}

/* Copies n bytes into the query's pool; returns the NUL-terminated copy. */
static char *pool_add(struct mql_query *q, const char *s, size_t n)
{
	char *dst = q->pool + q->pool_used;

	memcpy(dst, s, n);
	dst[n] = '\0';
	q->pool_used += n + 1;
	return dst;
}

/* Reads a metric name or dimension key. */
static int name(struct parser *ps, const char **out, const char *expected)
{
	const char *s;

	ws(ps);
	s = ps->p;
	if (!is_alpha(*s) && *s != '_')
		return fail(ps, s, expected);
	while (is_name(*ps->p))
		ps->p++;
	if (ps->p - s > TSDB_MAX_STR)
		return limit(ps, s, "name longer than 255 bytes");
	*out = pool_add(ps->q, s, (size_t)(ps->p - s));
	return 0;
}

/* Reads a word of letters (a function name) without copying it. */
static size_t word(struct parser *ps)
{
	size_t n = 0;

	ws(ps);
	while (is_alpha(ps->p[n]))
		n++;
	return n;
}

static int word_is(const char *p, size_t n, const char *w)
{
	return strlen(w) == n && memcmp(p, w, n) == 0;
}

static int number(struct parser *ps, double *out, const char *expected)
{
	const char *s, *p;
	char tmp[64];
	char *end;

	ws(ps);
	s = p = ps->p;
	if (*p == '+' || *p == '-')
		p++;
	if (!is_digit(*p) && !(*p == '.' && is_digit(p[1])))
		return fail(ps, s, expected);
	while (is_digit(*p))
		p++;
	if (*p == '.')
		for (p++; is_digit(*p); p++)
			;
	if ((*p == 'e' || *p == 'E') &&
	    (is_digit(p[1]) || ((p[1] == '+' || p[1] == '-') &&
				is_digit(p[2]))))
		for (p += 2; is_digit(*p); p++)
			;
	if ((size_t)(p - s) >= sizeof(tmp))
		return fail(ps, s, "a number of at most 63 characters");
	memcpy(tmp, s, (size_t)(p - s));
	tmp[p - s] = '\0';
	*out = strtod(tmp, &end);
	if (!isfinite(*out))
		return fail(ps, s, "a finite number");
	ps->p = p;
	return 0;
}

static int interval(struct parser *ps)
{
	const char *s;
	int64_t n = 0, unit;
	int digits = 0;

	ws(ps);
	s = ps->p;
	while (is_digit(*ps->p)) {
		if (digits++ < 12)
			n = n * 10 + (*ps->p - '0');
		ps->p++;
	}
	if (digits == 0)
		return fail(ps, s, "an interval like 1m, 5m or 1h");
	switch (*ps->p) {
	case 's':
		unit = 1000;
		break;
	case 'm':
		unit = 60 * 1000;
		break;
	case 'h':
		unit = MS_HOUR;
		break;
	case 'd':
		unit = 24 * MS_HOUR;
		break;
	default:
		return fail(ps, ps->p, "an interval unit (s, m, h or d)");
	}
	ps->p++;
	/* Checked before multiplying: 12 digits times a day overflows. */
	if (digits > 12 || n > MQL_MAX_INTERVAL_MS / unit ||
	    n * unit < MQL_MIN_INTERVAL_MS)
		return fail(ps, s, "an interval from 1s to 1d");
	ps->q->interval_ms = n * unit;
	return 0;
}

/* Reads a quoted value into the pool; escapes are \" and \\. */
static int string(struct parser *ps, char **out)
{
	struct mql_query *q = ps->q;
	const char *s;
	char *dst;
	size_t n = 0;

	ws(ps);
	s = ps->p;
	if (*s != '"')
		return fail(ps, s, "a quoted value");
	ps->p++;
	dst = q->pool + q->pool_used;
	for (;;) {
		char c = *ps->p;

		if (c == '\0')
			return fail(ps, ps->p, "a closing '\"'");
		if (c == '"')
			break;
		if (c == '\\') {
			ps->p++;
			if (*ps->p != '"' && *ps->p != '\\')
				return fail(ps, ps->p,
					    "'\"' or '\\' after '\\'");
			c = *ps->p;
		}
		if (n == TSDB_MAX_STR)
			return limit(ps, s, "value longer than 255 bytes");
		dst[n++] = c;
		ps->p++;
	}
	ps->p++;
	dst[n] = '\0';
	q->pool_used += n + 1;
	*out = dst;
	return 0;
}

static int add_term(struct parser *ps, const char *at, const char *key,
		    const char *value, enum tsdb_match op)
{
	struct mql_query *q = ps->q;
	size_t first = q->clause_first[q->nclauses];

	if (q->nterms - first == MQL_MAX_ALTERNATIVES)
		return limit(ps, at, "more than 32 alternatives in a filter");
	if (q->nterms == q->terms_cap) {
		q->terms_cap = q->terms_cap ? q->terms_cap * 2 : 8;
		q->terms = xreallocarray(q->terms, q->terms_cap,
					 sizeof(*q->terms));
	}
	q->terms[q->nterms++] = (struct tsdb_term){ .key = key,
						    .value = value, .op = op };
	return 0;
}

/* Reads key op "value", adding one term, or one per =~ alternative. */
static int term(struct parser *ps)
{
	const char *key, *at;
	char *value = NULL;
	enum { OP_EQ, OP_NE, OP_MATCH } op;
	int rc;

	ws(ps);
	at = ps->p;
	rc = name(ps, &key, "a dimension name");
	if (rc != 0)
		return rc;
	ws(ps);
	if (ps->p[0] == '=' && ps->p[1] == '~') {
		op = OP_MATCH;
		ps->p += 2;
	} else if (ps->p[0] == '!' && ps->p[1] == '=') {
		op = OP_NE;
		ps->p += 2;
	} else if (ps->p[0] == '=') {
		op = OP_EQ;
		ps->p++;
	} else {
		return fail(ps, ps->p, "'=', '!=' or '=~'");
	}
	rc = string(ps, &value);
	if (rc != 0)
		return rc;
	if (op == OP_EQ)
		return add_term(ps, at, key, value, strchr(value, '*') ?
				TSDB_MATCH_GLOB : TSDB_MATCH_EQ);
	if (op == OP_NE)
		return add_term(ps, at, key, value, strchr(value, '*') ?
				TSDB_MATCH_NOT_GLOB : TSDB_MATCH_NE);
	/* =~ "a|b*": the alternatives become terms of the same clause. */
	for (char *alt = value;;) {
		char *bar = strchr(alt, '|');

		if (bar != NULL)
			*bar = '\0';
		rc = add_term(ps, at, key, alt, TSDB_MATCH_GLOB);
		if (rc != 0 || bar == NULL)
			return rc;
		alt = bar + 1;
	}
}

static int filters(struct parser *ps)
{
	struct mql_query *q = ps->q;
	int rc;

	ps->p++; /* '{' */
	for (;;) {
		ws(ps);
		if (q->nclauses == MQL_MAX_FILTERS)
			return limit(ps, ps->p,
				     "more than 32 dimension filters");
		q->clause_first[q->nclauses] = q->nterms;
		for (;;) {
			rc = term(ps);
			if (rc != 0)
				return rc;
			ws(ps);
			if (ps->p[0] != '|' || ps->p[1] != '|')
				break;
			ps->p += 2;
		}
		q->nclauses++;
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p == '}') {
			ps->p++;
			return 0;
		}
		return fail(ps, ps->p, "',', '||' or '}'");
	}
}

static int group_by(struct parser *ps)
{
	struct mql_query *q = ps->q;
	int rc;

	rc = expect(ps, '(', "'('");
	for (; rc == 0;) {
		ws(ps);
		if (q->ngroup_keys == MQL_MAX_GROUP_KEYS)
			return limit(ps, ps->p, "more than 16 groupBy keys");
		rc = name(ps, &q->group_keys[q->ngroup_keys],
			  "a dimension name");
		if (rc != 0)
			return rc;
		q->ngroup_keys++;
		ws(ps);
		if (*ps->p == ')') {
			ps->p++;
			return 0;
		}
		rc = expect(ps, ',', "',' or ')'");
	}
	return rc;
}

static int statistic_args(struct parser *ps)
{
	struct mql_query *q = ps->q;
	double v;
	int rc;

	rc = expect(ps, '(', "'('");
	if (rc != 0)
		return rc;
	ws(ps);
	if (q->stat == MQL_STAT_PERCENTILE) {
		const char *s = ps->p;

		rc = number(ps, &v, "a percentile like 0.9");
		if (rc != 0)
			return rc;
		if (!(v > 0 && v < 1))
			return fail(ps, s, "a percentile between 0 and 1");
		q->percentile = v;
	} else if (q->stat == MQL_STAT_ABSENT && *ps->p != ')') {
		const char *s = ps->p;

		rc = number(ps, &v, "')' or a detection period in hours");
		if (rc != 0)
			return rc;
		if (v != floor(v) || v < 1 || v > MQL_MAX_ABSENT_HOURS)
			return fail(ps, s, "a whole number of hours from 1 "
				    "to 72");
		q->absent_ms = (int64_t)v * MS_HOUR;
	}
	return expect(ps, ')', "')'");
}

static int condition(struct parser *ps)
{
	static const struct {
		const char *op;
		enum mql_cmp cmp;
	} ops[] = {
		{ ">=", MQL_CMP_GE }, { "<=", MQL_CMP_LE },
		{ "==", MQL_CMP_EQ }, { "!=", MQL_CMP_NE },
		{ ">", MQL_CMP_GT },  { "<", MQL_CMP_LT },
	};
	struct mql_query *q = ps->q;
	const char *s;
	size_t n;
	int rc;

	n = word(ps);
	if (word_is(ps->p, n, "in") || word_is(ps->p, n, "not")) {
		q->cmp = n == 2 ? MQL_CMP_IN : MQL_CMP_NOT_IN;
		ps->p += n;
		if (q->cmp == MQL_CMP_NOT_IN) {
			n = word(ps);
			if (!word_is(ps->p, n, "in"))
				return fail(ps, ps->p, "'in'");
			ps->p += n;
		}
		rc = expect(ps, '(', "'('");
		if (rc == 0)
			rc = number(ps, &q->a, "a lower bound");
		if (rc == 0)
			rc = expect(ps, ',', "','");
		ws(ps);
		s = ps->p;
		if (rc == 0)
			rc = number(ps, &q->b, "an upper bound");
		if (rc == 0 && q->b < q->a)
			return fail(ps, s, "an upper bound not below the "
				    "lower bound");
		if (rc == 0)
			rc = expect(ps, ')', "')'");
		return rc;
	}
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		size_t len = strlen(ops[i].op);

		if (strncmp(ps->p, ops[i].op, len) == 0) {
			q->cmp = ops[i].cmp;
			ps->p += len;
			return number(ps, &q->a, "a number");
		}
	}
	return fail(ps, ps->p, "end of input or a condition (>, >=, ==, !=, "
		    "<, <=, in, not in)");
}

static int parse(struct parser *ps)
{
	struct mql_query *q = ps->q;
	const char *at;
	size_t n;
	int rc;

	rc = name(ps, &q->metric, "a metric name");
	if (rc == 0)
		rc = expect(ps, '[', "'['");
	if (rc == 0)
		rc = interval(ps);
	if (rc == 0)
		rc = expect(ps, ']', "']'");
	if (rc != 0)
		return rc;
	ws(ps);
	if (*ps->p == '{') {
		rc = filters(ps);
		if (rc != 0)
			return rc;
	}
	rc = expect(ps, '.', "'.'");
	if (rc != 0)
		return rc;
	n = word(ps);
	at = ps->p;
	if (word_is(at, n, "grouping") || word_is(at, n, "groupBy")) {
		ps->p += n;
		if (n == strlen("grouping")) {
			q->grouping = MQL_GROUP_ALL;
			rc = expect(ps, '(', "'('");
			if (rc == 0)
				rc = expect(ps, ')', "')'");
		} else {
			q->grouping = MQL_GROUP_BY;
			rc = group_by(ps);
		}
		if (rc == 0)
			rc = expect(ps, '.', "'.'");
		if (rc != 0)
			return rc;
		n = word(ps);
		at = ps->p;
	}
	for (size_t i = 0; i < sizeof(stats) / sizeof(stats[0]); i++) {
		if (word_is(at, n, stats[i].name)) {
			q->stat = stats[i].stat;
			ps->p += n;
			rc = statistic_args(ps);
			if (rc != 0)
				return rc;
			ws(ps);
			if (*ps->p != '\0') {
				rc = condition(ps);
				if (rc != 0)
					return rc;
			}
			ws(ps);
			if (*ps->p != '\0')
				return fail(ps, ps->p, "end of input");
			return 0;
		}
	}
	return fail(ps, at, q->grouping == MQL_GROUP_NONE ?
		    "a statistic (" STAT_LIST ") or grouping function" :
		    "a statistic (" STAT_LIST ")");
}

int mql_parse(const char *text, struct mql_query **out, char *diag,
	      size_t diagsz)
{
	size_t len = strnlen(text, MQL_MAX_QUERY + 1);
	struct parser ps;
	struct mql_query *q;
	int rc;

	if (len > MQL_MAX_QUERY) {
		mds_diag(diag, diagsz, "query longer than %d bytes",
			 MQL_MAX_QUERY);
		return MDS_E_LIMIT;
	}
	q = xcalloc(1, sizeof(*q));
	/* Every string is a copy of part of the text, each with a NUL. */
	q->pool = xmalloc(2 * len + 2);
	ps = (struct parser){ .text = text, .p = text, .q = q, .diag = diag,
			      .diagsz = diagsz };
	rc = parse(&ps);
	if (rc != 0) {
		mql_free(q);
		return rc;
	}
	for (size_t c = 0; c < q->nclauses; c++) {
		size_t end = c + 1 < q->nclauses ? q->clause_first[c + 1] :
			     q->nterms;

		q->clauses[c].terms = q->terms + q->clause_first[c];
		q->clauses[c].nterms = end - q->clause_first[c];
	}
	if (q->stat == MQL_STAT_ABSENT && q->cmp == MQL_CMP_NONE) {
		q->cmp = MQL_CMP_EQ;
		q->a = 1;
	}
	*out = q;
	return 0;
}

void mql_free(struct mql_query *q)
{
	if (q == NULL)
		return;
	free(q->pool);
	free(q->terms);
	free(q);
}

const char *mql_metric(const struct mql_query *q)
{
	return q->metric;
}

int64_t mql_interval_ms(const struct mql_query *q)
{
	return q->interval_ms;
}

enum mql_stat mql_statistic(const struct mql_query *q)
{
	return q->stat;
}

const char *mql_stat_name(enum mql_stat stat)
{
	for (size_t i = 0; i < sizeof(stats) / sizeof(stats[0]); i++)
		if (stats[i].stat == stat && strcmp(stats[i].name, "avg") != 0)
			return stats[i].name;
	return "?";
}

double mql_percentile(const struct mql_query *q)
{
	return q->percentile;
}

int64_t mql_absent_period_ms(const struct mql_query *q)
{
	return q->absent_ms;
}

enum mql_grouping mql_grouping(const struct mql_query *q)
{
	return q->grouping;
}

const char *const *mql_group_keys(const struct mql_query *q, size_t *n)
{
	*n = q->ngroup_keys;
	return q->group_keys;
}

const struct tsdb_clause *mql_filters(const struct mql_query *q, size_t *n)
{
	*n = q->nclauses;
	return q->clauses;
}

const char *mql_filter_value(const struct mql_query *q, const char *key)
{
	for (size_t c = 0; c < q->nclauses; c++) {
		const struct tsdb_clause *cl = &q->clauses[c];

		if (cl->nterms == 1 && cl->terms[0].op == TSDB_MATCH_EQ &&
		    strcmp(cl->terms[0].key, key) == 0)
			return cl->terms[0].value;
	}
	return NULL;
}

int mql_has_condition(const struct mql_query *q)
{
	return q->cmp != MQL_CMP_NONE;
}

enum mql_cmp mql_condition(const struct mql_query *q, double *a, double *b)
{
	if (a != NULL)
		*a = q->a;
	if (b != NULL)
		*b = q->b;
	return q->cmp;
}

int mql_condition_holds(const struct mql_query *q, double v)
{
	switch (q->cmp) {
	case MQL_CMP_NONE:
		return 0;
	case MQL_CMP_GT:
		return v > q->a;
	case MQL_CMP_GE:
		return v >= q->a;
	case MQL_CMP_EQ:
		return v == q->a;
	case MQL_CMP_NE:
		return v != q->a;
	case MQL_CMP_LT:
		return v < q->a;
	case MQL_CMP_LE:
		return v <= q->a;
	case MQL_CMP_IN:
		return v >= q->a && v <= q->b;
	case MQL_CMP_NOT_IN:
		return v < q->a || v > q->b;
	}
	return 0;
}

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
};

static int collect(const struct tsdb_series *s, void *arg)
{
	struct select_ctx *ctx = arg;
	struct mql_result *r = ctx->r;

	if (tsdb_series_newest(s) < ctx->seen_since)
		return 0;
	r->sel = reserve(r->sel, r->nsel, 1, &r->sel_cap, sizeof(*r->sel));
	r->sel[r->nsel++] = s;
	return 0;
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
	double sum, min, max, last, rate;
	int64_t last_t;
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
static void eval_point(const struct mql_query *q, struct mql_result *r,
		       size_t from, size_t to, int64_t t,
		       struct mql_point *pt)
{
	struct acc a = { 0 };

	r->nvals = 0;
	for (size_t i = from; i < to; i++)
		accumulate(q, r, r->sel[r->order[i]], t - q->interval_ms, t,
			   &a);
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

/* Appends the dims of group g's stream to r->dims; returns their count. */
static size_t group_dims(const struct mql_query *q, struct mql_result *r,
			 const struct tsdb_series *first)
{
	size_t n = 0;

	if (q->grouping == MQL_GROUP_ALL)
		return 0;
	r->dims = reserve(r->dims, r->ndims, q->ngroup_keys, &r->dims_cap,
			  sizeof(*r->dims));
	for (size_t k = 0; k < q->ngroup_keys; k++) {
		const struct tsdb_dim *d = dim_of(first, q->group_keys[k]);

		if (d != NULL)
			r->dims[r->ndims + n++] = *d;
	}
	r->ndims += n;
	return n;
}

static int run(const struct mql_query *q, const struct tsdb *db,
	       const char *ns, int64_t first_t, int64_t step, size_t nsteps,
	       int all_streams, struct mql_result *r)
{
	struct select_ctx ctx = { .r = r, .seen_since = INT64_MIN };
	size_t ngroups, ns_kept = 0;
	size_t *dim_off;

	r->nstreams = r->npoints = r->ndims = r->nsel = 0;
	if (q->stat == MQL_STAT_ABSENT) {
		int64_t period = q->absent_ms ? q->absent_ms :
				 tsdb_options(db)->raw_window_ms;

		ctx.seen_since = first_t - period;
	}
	tsdb_select(db, ns, q->metric, q->clauses, q->nclauses, collect,
		    &ctx);
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

		for (size_t k = 0; k < nsteps; k++) {
			eval_point(q, r, r->gstart[g], r->gstart[g + 1],
				   first_t + (int64_t)k * step, &pts[k]);
			any |= pts[k].present;
		}
		if (!any && !all_streams)
			continue;
		r->npoints += nsteps;
		st->npoints = nsteps;
		if (q->grouping == MQL_GROUP_NONE) {
			st->dims = tsdb_series_dims(first, &st->ndims);
			dim_off[ns_kept] = SIZE_MAX;
		} else {
			dim_off[ns_kept] = r->ndims;
			st->ndims = group_dims(q, r, first);
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

int mql_eval(const struct mql_query *q, const struct tsdb *db,
	     const char *ns, int64_t now_ms, struct mql_result *out)
{
	return run(q, db, ns, now_ms, 0, 1, q->stat == MQL_STAT_ABSENT, out);
}

int mql_eval_range(const struct mql_query *q, const struct tsdb *db,
		   const char *ns, int64_t start_ms, int64_t end_ms,
		   int64_t resolution_ms, struct mql_result *out)
{
	int64_t steps;

	if (start_ms < 0 || end_ms > TSDB_MAX_TIME_MS || end_ms <= start_ms ||
	    resolution_ms < 1)
		return MDS_E_INVAL;
	steps = (end_ms - start_ms) / resolution_ms;
	if (steps < 1)
		return MDS_E_INVAL;
	if (steps > MQL_MAX_POINTS)
		return MDS_E_LIMIT;
	return run(q, db, ns, start_ms + resolution_ms, resolution_ms,
		   (size_t)steps, 0, out);
}
