/* mql.c - parsing simple MQL queries, and the accessors; see mql.h.
 * Evaluation is in mql_eval.c, expressions in mql_expr.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mql.h"
#include "core/mql_expr.h"
#include "util/err.h"
#include "util/htab.h"
#include "util/xalloc.h"

#define MS_HOUR 3600000LL

static const struct {
	const char *name;
	enum mql_stat stat;
} stats[] = {
	{ "absent", MQL_STAT_ABSENT },   { "avg", MQL_STAT_MEAN },
	{ "count", MQL_STAT_COUNT },     { "first", MQL_STAT_FIRST },
	{ "increment", MQL_STAT_INCREMENT }, { "last", MQL_STAT_LAST },
	{ "max", MQL_STAT_MAX },         { "mean", MQL_STAT_MEAN },
	{ "min", MQL_STAT_MIN },         { "percentile", MQL_STAT_PERCENTILE },
	{ "rate", MQL_STAT_RATE },       { "sum", MQL_STAT_SUM },
};

#define STAT_LIST "absent, avg, count, first, increment, last, max, " \
		  "mean, min, percentile, rate, sum"

/* --- parsing ------------------------------------------------------------- */

struct parser {
	const char *text, *p;
	struct mql_query *q;
	char *diag;
	size_t diagsz;
	const char *err_at; /* where the error was found */
	int embedded;       /* in an expression: stop after the statistic */
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
	ps->err_at = at;
	return MDS_E_PARSE;
}

static int limit(struct parser *ps, const char *at, const char *what)
{
	mds_diag(ps->diag, ps->diagsz, "column %d: %s", column(ps, at),
		 what);
	ps->err_at = at;
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
	/* Only =~ matches patterns: a '*' after = or != is itself. */
	if (op == OP_EQ)
		return add_term(ps, at, key, value, TSDB_MATCH_EQ);
	if (op == OP_NE)
		return add_term(ps, at, key, value, TSDB_MATCH_NE);
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
			q->expr_len = (size_t)(ps->p - ps->text);
			if (ps->embedded)
				return 0;
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

/* Points the clauses at their terms, once the terms are final. */
static void finish(struct mql_query *q)
{
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
}

/* Whether a simple query's parse error is where an expression goes on:
 * an operator or a parenthesis, or a number or '(' at the start. */
static int wants_expr(const char *text, const char *at)
{
	const char *start = text;

	while (*start == ' ' || *start == '\t' || *start == '\n' ||
	       *start == '\r')
		start++;
	if (at == NULL || *at == '\0')
		return 0;
	if (strchr("()+-*/&|", *at) != NULL)
		return 1;
	return at == start && (is_digit(*at) || *at == '.');
}

/* Parses text as an expression (core/mql_expr.h) into a new *out. */
static int parse_expression(const char *text, struct mql_query **out,
			    char *diag, size_t diagsz)
{
	struct mql_cursor c = { .text = text, .p = text, .diag = diag,
				.diagsz = diagsz };
	struct mql_query *q = xcalloc(1, sizeof(*q));
	int rc;

	rc = mql_expr_parse(&c, &q->expr, &q->lead, &q->expr_cond,
			    &q->expr_len);
	if (rc != 0) {
		mql_free(q);
		return rc;
	}
	*out = q;
	return 0;
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
		if (rc == MDS_E_PARSE && wants_expr(text, ps.err_at))
			return parse_expression(text, out, diag, diagsz);
		return rc;
	}
	finish(q);
	*out = q;
	return 0;
}

/* --- the pieces expressions are made of (core/mql_expr.h) --------------- */

static struct parser cursor_parser(struct mql_cursor *c,
				   struct mql_query *q)
{
	return (struct parser){ .text = c->text, .p = c->p, .q = q,
				.diag = c->diag, .diagsz = c->diagsz };
}

static int cursor_done(struct mql_cursor *c, const struct parser *ps,
		       int rc)
{
	c->p = ps->p;
	if (rc != 0)
		c->err_at = ps->err_at;
	return rc;
}

void mql_cur_ws(struct mql_cursor *c)
{
	struct parser ps = cursor_parser(c, NULL);

	ws(&ps);
	c->p = ps.p;
}

int mql_cur_fail(struct mql_cursor *c, const char *at, const char *expected)
{
	struct parser ps = cursor_parser(c, NULL);

	return cursor_done(c, &ps, fail(&ps, at, expected));
}

int mql_cur_number(struct mql_cursor *c, double *out, const char *expected)
{
	struct parser ps = cursor_parser(c, NULL);

	return cursor_done(c, &ps, number(&ps, out, expected));
}

int mql_cur_query(struct mql_cursor *c, struct mql_query **out)
{
	struct mql_query *q = xcalloc(1, sizeof(*q));
	struct parser ps = cursor_parser(c, q);
	int rc;

	q->pool = xmalloc(2 * strlen(c->text) + 2);
	ps.embedded = 1;
	rc = cursor_done(c, &ps, parse(&ps));
	if (rc != 0) {
		mql_free(q);
		return rc;
	}
	finish(q);
	*out = q;
	return 0;
}

int mql_cur_condition(struct mql_cursor *c, enum mql_cmp *cmp, double *a,
		      double *b)
{
	struct mql_query tmp = { 0 };
	struct parser ps = cursor_parser(c, &tmp);
	int rc;

	rc = cursor_done(c, &ps, condition(&ps));
	*cmp = tmp.cmp;
	*a = tmp.a;
	*b = tmp.b;
	return rc;
}

int mql_is_name_char(char c)
{
	return is_name(c);
}

void mql_free(struct mql_query *q)
{
	if (q == NULL)
		return;
	free(q->pool);
	free(q->terms);
	free(q->extra);
	mql_expr_free(q->expr);
	free(q);
}

const char *mql_metric(const struct mql_query *q)
{
	return LEAD(q)->metric;
}

int64_t mql_interval_ms(const struct mql_query *q)
{
	return LEAD(q)->interval_ms;
}

enum mql_stat mql_statistic(const struct mql_query *q)
{
	return LEAD(q)->stat;
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
	return LEAD(q)->percentile;
}

int64_t mql_absent_period_ms(const struct mql_query *q)
{
	return LEAD(q)->absent_ms;
}

enum mql_grouping mql_grouping(const struct mql_query *q)
{
	return LEAD(q)->grouping;
}

const char *const *mql_group_keys(const struct mql_query *q, size_t *n)
{
	*n = LEAD(q)->ngroup_keys;
	return LEAD(q)->group_keys;
}

const struct tsdb_clause *mql_filters(const struct mql_query *q, size_t *n)
{
	*n = LEAD(q)->nclauses;
	return LEAD(q)->clauses;
}

const char *mql_filter_value(const struct mql_query *q, const char *key)
{
	q = LEAD(q);
	for (size_t c = 0; c < q->nclauses; c++) {
		const struct tsdb_clause *cl = &q->clauses[c];

		if (cl->nterms == 1 && cl->terms[0].op == TSDB_MATCH_EQ &&
		    strcmp(cl->terms[0].key, key) == 0)
			return cl->terms[0].value;
	}
	return NULL;
}

int mql_add_filter(struct mql_query *q, const char *key, const char *value)
{
	size_t kl = strlen(key), vl = strlen(value);

	if (q->expr != NULL)
		return mql_expr_add_filter(q->expr, key, value);
	if (q->extra != NULL || q->nclauses == MQL_MAX_FILTERS ||
	    kl > TSDB_MAX_STR || vl > TSDB_MAX_STR)
		return MDS_E_LIMIT;
	q->extra = xmalloc(kl + vl + 2);
	memcpy(q->extra, key, kl + 1);
	memcpy(q->extra + kl + 1, value, vl + 1);
	if (q->nterms == q->terms_cap) {
		q->terms_cap = q->terms_cap ? q->terms_cap * 2 : 8;
		q->terms = xreallocarray(q->terms, q->terms_cap,
					 sizeof(*q->terms));
	}
	q->terms[q->nterms] = (struct tsdb_term){
		.key = q->extra, .value = q->extra + kl + 1,
		.op = TSDB_MATCH_EQ };
	q->clause_first[q->nclauses] = q->nterms++;
	q->nclauses++;
	/* The terms may have moved: point every clause at them again. */
	for (size_t c = 0; c < q->nclauses; c++) {
		size_t end = c + 1 < q->nclauses ? q->clause_first[c + 1] :
			     q->nterms;

		q->clauses[c].terms = q->terms + q->clause_first[c];
		q->clauses[c].nterms = end - q->clause_first[c];
	}
	return 0;
}

size_t mql_expression_len(const struct mql_query *q)
{
	return q->expr_len;
}

int mql_has_condition(const struct mql_query *q)
{
	if (q->expr != NULL)
		return q->expr_cond;
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

int mql_cmp_holds(enum mql_cmp cmp, double a, double b, double v)
{
	switch (cmp) {
	case MQL_CMP_NONE:
		return 0;
	case MQL_CMP_GT:
		return v > a;
	case MQL_CMP_GE:
		return v >= a;
	case MQL_CMP_EQ:
		return v == a;
	case MQL_CMP_NE:
		return v != a;
	case MQL_CMP_LT:
		return v < a;
	case MQL_CMP_LE:
		return v <= a;
	case MQL_CMP_IN:
		return v >= a && v <= b;
	case MQL_CMP_NOT_IN:
		return v < a || v > b;
	}
	return 0;
}

int mql_condition_holds(const struct mql_query *q, double v)
{
	return mql_cmp_holds(q->cmp, q->a, q->b, v);
}
