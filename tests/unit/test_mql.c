/* test_mql.c - MQL parsing (fields, exact diagnostics, limits) and eval. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mql.h"
#include "core/tsdb.h"
#include "util/err.h"
#include "util/xalloc.h"

#define NS "oci_datascience_modeldeploy"

static struct mql_query *parse_ok(const char *text)
{
	struct mql_query *q = NULL;
	char diag[256] = "";
	int rc = mql_parse(text, &q, diag, sizeof(diag));

	if (rc != 0)
		fail_msg("'%s': %s", text, diag);
	return q;
}

static void parse_err(const char *text, int code, const char *want)
{
	struct mql_query *q = NULL;
	char diag[256] = "";

	int rc = mql_parse(text, &q, diag, sizeof(diag));

	if (rc != code)
		fail_msg("'%s': returned %d (%s)", text, rc, diag);
	assert_null(q);
	if (want != NULL)
		assert_string_equal(diag, want);
}

static void test_parse_recipe_queries(void **state)
{
	struct mql_query *q;
	const struct tsdb_clause *c;
	const char *const *keys;
	double a, b;
	size_t n;

	(void)state;
	q = parse_ok("CpuUtilization[1m]{resourceId = \"X\"}.max() > 80");
	assert_string_equal(mql_metric(q), "CpuUtilization");
	assert_int_equal(mql_interval_ms(q), 60000);
	assert_int_equal(mql_statistic(q), MQL_STAT_MAX);
	assert_int_equal(mql_grouping(q), MQL_GROUP_NONE);
	assert_true(mql_has_condition(q));
	assert_int_equal(mql_condition(q, &a, NULL), MQL_CMP_GT);
	assert_true(a == 80);
	c = mql_filters(q, &n);
	assert_int_equal(n, 1);
	assert_int_equal(c[0].nterms, 1);
	assert_string_equal(c[0].terms[0].key, "resourceId");
	assert_string_equal(c[0].terms[0].value, "X");
	assert_int_equal(c[0].terms[0].op, TSDB_MATCH_EQ);
	assert_string_equal(mql_filter_value(q, "resourceId"), "X");
	assert_null(mql_filter_value(q, "instanceId"));
	mql_free(q);

	q = parse_ok("CpuUtilization[5m]{resourceId = \"X\", instanceId != "
		     "\"Y\"}.grouping().mean() >= 80");
	assert_int_equal(mql_interval_ms(q), 300000);
	assert_int_equal(mql_grouping(q), MQL_GROUP_ALL);
	assert_int_equal(mql_statistic(q), MQL_STAT_MEAN);
	assert_int_equal(mql_condition(q, &a, NULL), MQL_CMP_GE);
	c = mql_filters(q, &n);
	assert_int_equal(n, 2);
	assert_int_equal(c[1].terms[0].op, TSDB_MATCH_NE);
	assert_string_equal(c[1].terms[0].value, "Y");
	mql_free(q);

	q = parse_ok("PredictLatency[1m]{resourceId =~ \"md-*\"}"
		     ".groupBy(resourceId).percentile(0.99) > 200");
	assert_int_equal(mql_grouping(q), MQL_GROUP_BY);
	keys = mql_group_keys(q, &n);
	assert_int_equal(n, 1);
	assert_string_equal(keys[0], "resourceId");
	assert_int_equal(mql_statistic(q), MQL_STAT_PERCENTILE);
	assert_true(mql_percentile(q) == 0.99);
	c = mql_filters(q, &n);
	assert_int_equal(c[0].terms[0].op, TSDB_MATCH_GLOB);
	assert_null(mql_filter_value(q, "resourceId"));
	mql_free(q);

	q = parse_ok("MemoryUtilization[1m]{resourceId = \"ocid1.md.oc1..x\"}"
		     ".max() < 20");
	assert_int_equal(mql_condition(q, &a, NULL), MQL_CMP_LT);
	assert_true(a == 20);
	mql_free(q);

	q = parse_ok("Cpu[1m].mean() in (60, 80)");
	assert_int_equal(mql_condition(q, &a, &b), MQL_CMP_IN);
	assert_true(a == 60 && b == 80);
	assert_true(mql_condition_holds(q, 60));
	assert_true(mql_condition_holds(q, 80));
	assert_false(mql_condition_holds(q, 80.5));
	mql_free(q);

	q = parse_ok("Cpu[1m].mean() not in (0, 50)");
	assert_int_equal(mql_condition(q, &a, &b), MQL_CMP_NOT_IN);
	assert_false(mql_condition_holds(q, 0));
	assert_true(mql_condition_holds(q, -0.1));
	assert_true(mql_condition_holds(q, 50.1));
	mql_free(q);
}

static void test_parse_forms(void **state)
{
	static const struct {
		const char *text;
		enum mql_stat stat;
		int64_t interval;
		enum mql_cmp cmp;
		double a;
	} cases[] = {
		{ "M[10s].rate()", MQL_STAT_RATE, 10000, MQL_CMP_NONE, 0 },
		{ "M[1s].count() == 0", MQL_STAT_COUNT, 1000, MQL_CMP_EQ, 0 },
		{ "M[1h].sum() != 3", MQL_STAT_SUM, 3600000, MQL_CMP_NE, 3 },
		{ "M[1d].min() <= -1.5e2", MQL_STAT_MIN, 86400000, MQL_CMP_LE,
		  -150 },
		{ "M[1440m].last() > .5", MQL_STAT_LAST, 86400000,
		  MQL_CMP_GT, 0.5 },
		{ "M[24h].avg() >= +7", MQL_STAT_MEAN, 86400000, MQL_CMP_GE,
		  7 },
		{ "M[1m].absent()", MQL_STAT_ABSENT, 60000, MQL_CMP_EQ, 1 },
		{ "M[1m].absent() == 0", MQL_STAT_ABSENT, 60000, MQL_CMP_EQ,
		  0 },
		{ "  M_x.y-z$ [ 1m ]  { a = \"b\" } . max ( ) < 3  ",
		  MQL_STAT_MAX, 60000, MQL_CMP_LT, 3 },
		{ "M[1m]\n{a=\"b\",\tc=\"d\"}\n.grouping()\n.count()",
		  MQL_STAT_COUNT, 60000, MQL_CMP_NONE, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mql_query *q = parse_ok(cases[i].text);
		double a = -1;

		assert_int_equal(mql_statistic(q), cases[i].stat);
		assert_int_equal(mql_interval_ms(q), cases[i].interval);
		assert_int_equal(mql_condition(q, &a, NULL), cases[i].cmp);
		if (cases[i].cmp != MQL_CMP_NONE)
			assert_true(a == cases[i].a);
		assert_int_equal(mql_has_condition(q),
				 cases[i].cmp != MQL_CMP_NONE);
		mql_free(q);
	}
}

static void test_parse_filters(void **state)
{
	struct mql_query *q;
	const struct tsdb_clause *c;
	size_t n;

	(void)state;
	q = parse_ok("M[1m]{a = \"x\" || a = \"y\", b = \"p*\", "
		     "c != \"q*\", d =~ \"ol8|ol7*\", e = \"x\\\"y\\\\z\"}"
		     ".max()");
	c = mql_filters(q, &n);
	assert_int_equal(n, 5);
	assert_int_equal(c[0].nterms, 2);
	assert_string_equal(c[0].terms[1].value, "y");
	/* Only =~ matches patterns: a '*' after = or != is literal. */
	assert_int_equal(c[1].terms[0].op, TSDB_MATCH_EQ);
	assert_string_equal(c[1].terms[0].value, "p*");
	assert_string_equal(mql_filter_value(q, "b"), "p*");
	assert_int_equal(c[2].terms[0].op, TSDB_MATCH_NE);
	assert_int_equal(c[3].nterms, 2);
	assert_string_equal(c[3].terms[0].value, "ol8");
	assert_string_equal(c[3].terms[1].value, "ol7*");
	assert_int_equal(c[3].terms[1].op, TSDB_MATCH_GLOB);
	assert_string_equal(c[4].terms[0].value, "x\"y\\z");
	assert_string_equal(mql_filter_value(q, "e"), "x\"y\\z");
	mql_free(q);

	q = parse_ok("M[1m].groupBy(resourceId, instanceId).absent(20)");
	{
		size_t nk;
		const char *const *k = mql_group_keys(q, &nk);

		assert_int_equal(nk, 2);
		assert_string_equal(k[1], "instanceId");
	}
	assert_int_equal(mql_absent_period_ms(q), 20 * 3600000LL);
	mql_free(q);
	assert_string_equal(mql_stat_name(MQL_STAT_MEAN), "mean");
	assert_string_equal(mql_stat_name(MQL_STAT_PERCENTILE), "percentile");
}

#define STATS "absent, avg, count, first, increment, last, max, mean, min, " \
	"percentile, rate, sum"

static void test_parse_errors(void **state)
{
	(void)state;
	parse_err("CpuUtilization[1m]{resourceId = \"X\"}.Max() > 80",
		  MDS_E_PARSE, "column 38: expected a statistic (" STATS
		  ") or grouping function, found 'Max'");
	parse_err("Cpu[1m].grouping().median()", MDS_E_PARSE,
		  "column 20: expected a statistic (" STATS "), found "
		  "'median'");
	parse_err("CpuUtilization[1m{resourceId = \"X\"}.max() > 80",
		  MDS_E_PARSE, "column 18: expected ']', found '{'");
	parse_err("CpuUtilization[1m].max() > abc", MDS_E_PARSE,
		  "column 28: expected a number, found 'abc'");
	parse_err("CpuUtilization[0m].max()", MDS_E_PARSE,
		  "column 16: expected an interval from 1s to 1d, found '0m'");
	parse_err("CpuUtilization[2d].max()", MDS_E_PARSE,
		  "column 16: expected an interval from 1s to 1d, found '2d'");
	parse_err("CpuUtilization[86401s].max()", MDS_E_PARSE, NULL);
	/* 213503982335 days overflow int64_t milliseconds to about 9.5 h. */
	parse_err("CpuUtilization[213503982335d].max()", MDS_E_PARSE,
		  "column 16: expected an interval from 1s to 1d, found "
		  "'213503982335d'");
	parse_err("Cpu[999999999999h].max()", MDS_E_PARSE, NULL);
	parse_err("Cpu[999999999999s].max()", MDS_E_PARSE, NULL);
	parse_err("Cpu[1x].max()", MDS_E_PARSE,
		  "column 6: expected an interval unit (s, m, h or d), found "
		  "'x'");
	parse_err("Cpu[m].max()", MDS_E_PARSE,
		  "column 5: expected an interval like 1m, 5m or 1h, found "
		  "'m'");
	parse_err("CpuUtilization[1m].percentile(1.5)", MDS_E_PARSE,
		  "column 31: expected a percentile between 0 and 1, found "
		  "'1.5'");
	parse_err("Cpu[1m].percentile(0)", MDS_E_PARSE, NULL);
	parse_err("Cpu[1m].percentile()", MDS_E_PARSE,
		  "column 20: expected a percentile like 0.9, found ')'");
	parse_err("Cpu[1m]{a = \"x\"", MDS_E_PARSE,
		  "column 16: expected ',', '||' or '}', found end of input");
	parse_err("Cpu[1m]{a = \"x}.max()", MDS_E_PARSE,
		  "column 22: expected a closing '\"', found end of input");
	parse_err("Cpu[1m].max() >", MDS_E_PARSE,
		  "column 16: expected a number, found end of input");
	parse_err("Cpu[1m].max() in (50, 10)", MDS_E_PARSE,
		  "column 23: expected an upper bound not below the lower "
		  "bound, found '10'");
	parse_err("Cpu[1m].max() in (50 10)", MDS_E_PARSE,
		  "column 22: expected ',', found '10'");
	parse_err("Cpu[1m].max() not (1, 2)", MDS_E_PARSE,
		  "column 19: expected 'in', found '('");
	parse_err("Cpu[1m].max() 80", MDS_E_PARSE,
		  "column 15: expected end of input or a condition (>, >=, ==, "
		  "!=, <, <=, in, not in), found '80'");
	parse_err("Cpu[1m].max() > 80 extra", MDS_E_PARSE,
		  "column 20: expected end of input, found 'extra'");
	parse_err("[1m].max()", MDS_E_PARSE,
		  "column 1: expected a metric name, found '['");
	parse_err("", MDS_E_PARSE,
		  "column 1: expected a metric name, found end of input");
	parse_err("Cpu", MDS_E_PARSE,
		  "column 4: expected '[', found end of input");
	parse_err("Cpu[1m]", MDS_E_PARSE,
		  "column 8: expected '.', found end of input");
	parse_err("Cpu[1m].groupBy().max()", MDS_E_PARSE,
		  "column 17: expected a dimension name, found ')'");
	parse_err("Cpu[1m].groupBy(a b).max()", MDS_E_PARSE,
		  "column 19: expected ',' or ')', found 'b'");
	parse_err("Cpu[1m]{a == \"x\"}.max()", MDS_E_PARSE,
		  "column 12: expected a quoted value, found '='");
	parse_err("Cpu[1m]{a < \"x\"}.max()", MDS_E_PARSE,
		  "column 11: expected '=', '!=' or '=~', found '<'");
	parse_err("Cpu[1m]{}.max()", MDS_E_PARSE,
		  "column 9: expected a dimension name, found '}'");
	parse_err("Cpu[1m]{a = \"x\\n\"}.max()", MDS_E_PARSE,
		  "column 16: expected '\"' or '\\' after '\\', found 'n'");
	parse_err("Cpu[1m].grouping().max", MDS_E_PARSE,
		  "column 23: expected '(', found end of input");
	parse_err("Cpu[1m].max(1)", MDS_E_PARSE,
		  "column 13: expected ')', found '1'");
	parse_err("Cpu[1m].absent(0)", MDS_E_PARSE,
		  "column 16: expected a whole number of hours from 1 to 72, "
		  "found '0'");
	parse_err("Cpu[1m].max() > 1e999", MDS_E_PARSE,
		  "column 17: expected a finite number, found '1e999'");
	parse_err("Cpu[1m].max() > 80\x01", MDS_E_PARSE,
		  "column 19: expected end of input, found byte 0x01");
}

static void test_parse_limits(void **state)
{
	char *text = xmalloc(MQL_MAX_QUERY + 64);
	size_t len;

	(void)state;
	/* 33 clauses. */
	len = (size_t)snprintf(text, MQL_MAX_QUERY, "M[1m]{");
	for (int i = 0; i < 33; i++)
		len += (size_t)snprintf(text + len, MQL_MAX_QUERY - len,
					"%sk%d = \"v\"", i ? ", " : "", i);
	snprintf(text + len, MQL_MAX_QUERY - len, "}.max()");
	parse_err(text, MDS_E_LIMIT, NULL);
	/* 32 clauses are fine. */
	len = (size_t)snprintf(text, MQL_MAX_QUERY, "M[1m]{");
	for (int i = 0; i < 32; i++)
		len += (size_t)snprintf(text + len, MQL_MAX_QUERY - len,
					"%sk%d = \"v\"", i ? ", " : "", i);
	snprintf(text + len, MQL_MAX_QUERY - len, "}.max()");
	mql_free(parse_ok(text));
	/* 33 alternatives, also when made by =~ "a|b|...". */
	len = (size_t)snprintf(text, MQL_MAX_QUERY, "M[1m]{");
	for (int i = 0; i < 33; i++)
		len += (size_t)snprintf(text + len, MQL_MAX_QUERY - len,
					"%sk = \"%d\"", i ? " || " : "", i);
	snprintf(text + len, MQL_MAX_QUERY - len, "}.max()");
	parse_err(text, MDS_E_LIMIT,
		  "column 381: more than 32 alternatives in a filter");
	len = (size_t)snprintf(text, MQL_MAX_QUERY, "M[1m]{k =~ \"");
	for (int i = 0; i < 33; i++)
		len += (size_t)snprintf(text + len, MQL_MAX_QUERY - len,
					"%s%d", i ? "|" : "", i);
	snprintf(text + len, MQL_MAX_QUERY - len, "\"}.max()");
	parse_err(text, MDS_E_LIMIT, NULL);
	/* 17 groupBy keys. */
	len = (size_t)snprintf(text, MQL_MAX_QUERY, "M[1m].groupBy(");
	for (int i = 0; i < 17; i++)
		len += (size_t)snprintf(text + len, MQL_MAX_QUERY - len,
					"%sk%d", i ? ", " : "", i);
	snprintf(text + len, MQL_MAX_QUERY - len, ").max()");
	parse_err(text, MDS_E_LIMIT, NULL);
	/* A 256-byte value, a 256-byte name. */
	len = (size_t)snprintf(text, MQL_MAX_QUERY, "M[1m]{k = \"");
	memset(text + len, 'v', 256);
	snprintf(text + len + 256, 64, "\"}.max()");
	parse_err(text, MDS_E_LIMIT,
		  "column 11: value longer than 255 bytes");
	memset(text, 'M', 256);
	snprintf(text + 256, 64, "[1m].max()");
	parse_err(text, MDS_E_LIMIT, "column 1: name longer than 255 bytes");
	/* Longer than 4096 bytes, even if otherwise fine. */
	len = (size_t)snprintf(text, MQL_MAX_QUERY, "M[1m].max()");
	memset(text + len, ' ', MQL_MAX_QUERY + 1 - len);
	text[MQL_MAX_QUERY + 1] = '\0';
	parse_err(text, MDS_E_LIMIT, "query longer than 4096 bytes");
	text[MQL_MAX_QUERY] = '\0';
	mql_free(parse_ok(text));
	free(text);
}

/* Pathological inputs: each 4 KB, each must finish in well under 1 s. */
static void test_parse_pathological(void **state)
{
	static const char *const units[] = {
		"(", "{", "[", ".", "a", "\"", "||", "M[1m]{a=\"x\"||",
		"a=\"*\"||", "*", "\\", " ", ".max()", "=~", "1",
	};
	char *text = xmalloc(MQL_MAX_QUERY + 1);
	struct timespec t0, t1;
	double secs;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		size_t ul = strlen(units[u]), len = 0;

		while (len + ul <= MQL_MAX_QUERY) {
			memcpy(text + len, units[u], ul);
			len += ul;
		}
		text[len] = '\0';
		for (int rep = 0; rep < 50; rep++) {
			struct mql_query *q = NULL;
			char diag[256];

			if (mql_parse(text, &q, diag, sizeof(diag)) == 0)
				mql_free(q);
		}
		/* Also behind a valid prefix, inside a filter value. */
		memcpy(text, "M[1m]{a=\"", 9);
		for (int rep = 0; rep < 50; rep++) {
			struct mql_query *q = NULL;

			if (mql_parse(text, &q, NULL, 0) == 0)
				mql_free(q);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(secs < 0.5);
	free(text);
}

/* --- evaluation on a small fixed store ------------------------------------ */

struct fixture {
	struct tsdb *db;
	struct mql_result r;
};

static void add(struct tsdb *db, const char *rid, const char *iid,
		int64_t t, double v)
{
	struct tsdb_dim d[2] = { { "resourceId", rid }, { "instanceId", iid } };
	char diag[128];

	if (tsdb_append(db, NS, "Cpu", d, 2, t, v, diag, sizeof(diag)) != 0)
		fail_msg("append: %s", diag);
}

/*
 * At now = 600000 the 1m window is [540000, 600000):
 *   A md1/i1: 530000:-1000 | 540000:10 ... 590000:60 (every 10 s) | 600000:1000
 *   B md1/i2: 545000:5, 595000:95
 *   C md2/i1: 541000:7
 *   D md3/i1: 100000:1 (no data in the window)
 */
static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	assert_int_equal(tsdb_create(NULL, &f->db, NULL, 0), 0);
	add(f->db, "md3", "i1", 100000, 1);
	add(f->db, "md1", "i1", 530000, -1000);
	for (int k = 0; k < 6; k++)
		add(f->db, "md1", "i1", 540000 + k * 10000, 10 * (k + 1));
	add(f->db, "md1", "i1", 600000, 1000);
	add(f->db, "md1", "i2", 545000, 5);
	add(f->db, "md1", "i2", 595000, 95);
	add(f->db, "md2", "i1", 541000, 7);
	mql_result_init(&f->r);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	mql_result_free(&f->r);
	tsdb_free(f->db);
	free(f);
	return 0;
}

/* Evaluates text at 600000; returns the number of streams. */
static size_t eval(struct fixture *f, const char *text, int64_t now)
{
	struct mql_query *q = parse_ok(text);

	assert_int_equal(mql_eval(q, f->db, NS, now, &f->r), 0);
	mql_free(q);
	for (size_t i = 0; i < f->r.nstreams; i++) {
		assert_int_equal(f->r.streams[i].npoints, 1);
		assert_int_equal(f->r.streams[i].points[0].t, now);
	}
	return f->r.nstreams;
}

static double value(const struct fixture *f, size_t i)
{
	assert_true(i < f->r.nstreams);
	assert_true(f->r.streams[i].points[0].present);
	return f->r.streams[i].points[0].value;
}

static const char *dim(const struct fixture *f, size_t i, const char *key)
{
	const struct mql_stream *s = &f->r.streams[i];

	for (size_t k = 0; k < s->ndims; k++)
		if (strcmp(s->dims[k].key, key) == 0)
			return s->dims[k].value;
	return NULL;
}

static void test_eval_statistics(void **state)
{
	static const struct {
		const char *stat;
		double a, b;
	} cases[] = {
		{ "max()", 60, 95 },       { "min()", 10, 5 },
		{ "sum()", 210, 100 },     { "count()", 6, 2 },
		{ "mean()", 35, 50 },      { "avg()", 35, 50 },
		{ "last()", 60, 95 },      { "rate()", 1.0, 1.8 },
		/* first: 540000:10 and 545000:5; increment: last - first. */
		{ "first()", 10, 5 },      { "increment()", 50, 90 },
		{ "percentile(0.9)", 55, 86 },
		{ "percentile(0.5)", 35, 50 },
	};
	struct fixture *f = *state;
	char text[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text),
			 "Cpu[1m]{resourceId = \"md1\"}.%s", cases[i].stat);
		assert_int_equal(eval(f, text, 600000), 2);
		assert_string_equal(dim(f, 0, "instanceId"), "i1");
		assert_string_equal(dim(f, 0, "resourceId"), "md1");
		assert_string_equal(dim(f, 1, "instanceId"), "i2");
		if (fabs(value(f, 0) - cases[i].a) > 1e-9 ||
		    fabs(value(f, 1) - cases[i].b) > 1e-9)
			fail_msg("%s: got %g, %g; want %g, %g", cases[i].stat,
				 value(f, 0), value(f, 1), cases[i].a,
				 cases[i].b);
		assert_false(f->r.streams[0].points[0].holds);
	}
}

/* A '*' after = is the byte '*'; =~ is the only pattern match. */
static void test_eval_star_is_literal(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(eval(f, "Cpu[1m]{resourceId = \"md*\"}.max()",
			      600000), 0);
	assert_int_equal(eval(f, "Cpu[1m]{resourceId != \"md*\"}.max()",
			      600000), 3);
	assert_int_equal(eval(f, "Cpu[1m]{resourceId =~ \"md*\"}.max()",
			      600000), 3);
	assert_int_equal(eval(f, "Cpu[1m]{resourceId =~ \"md2|x\"}.max()",
			      600000), 1);
	assert_int_equal(eval(f, "Nothing[1m].max()", 600000), 0);
}

/* Looks up the stream with resourceId rid and instanceId iid (NULL:
 * none); returns its index or fails. */
static size_t find(const struct fixture *f, const char *rid, const char *iid)
{
	for (size_t i = 0; i < f->r.nstreams; i++) {
		const char *r = dim(f, i, "resourceId");
		const char *n = dim(f, i, "instanceId");

		if ((rid == NULL ? r == NULL : r && !strcmp(r, rid)) &&
		    (iid == NULL ? n == NULL : n && !strcmp(n, iid)))
			return i;
	}
	fail_msg("no stream %s/%s", rid ? rid : "-", iid ? iid : "-");
	return 0;
}

static void assert_near(double got, double want)
{
	if (fabs(got - want) > 1e-9)
		fail_msg("got %g, want %g", got, want);
}

/* Arithmetic: with numbers, between queries (joined on dimensions). */
static void test_eval_arithmetic(void **state)
{
	struct fixture *f = *state;

	/* md1: i1 max 60, i2 max 95. */
	assert_int_equal(eval(f, "100 - Cpu[1m]{resourceId = \"md1\"}.max()",
			      600000), 2);
	assert_near(value(f, find(f, "md1", "i1")), 40);
	assert_near(value(f, find(f, "md1", "i2")), 5);
	/* max - min per stream: 60-10, 95-5, 7-7. */
	assert_int_equal(eval(f, "Cpu[1m].max() - Cpu[1m].min()", 600000), 3);
	assert_near(value(f, find(f, "md1", "i1")), 50);
	assert_near(value(f, find(f, "md1", "i2")), 90);
	assert_near(value(f, find(f, "md2", "i1")), 0);
	/* Precedence: * and / before + and -; unary minus. */
	assert_int_equal(eval(f, "Cpu[1m].max() / 2 + 1", 600000), 3);
	assert_near(value(f, find(f, "md1", "i1")), 31);
	assert_near(value(f, find(f, "md1", "i2")), 48.5);
	assert_near(value(f, find(f, "md2", "i1")), 4.5);
	assert_int_equal(eval(f, "-Cpu[1m]{resourceId = \"md2\"}.max() * 2",
			      600000), 1);
	assert_near(value(f, 0), -14);
	assert_int_equal(eval(f, "(Cpu[1m].max() + Cpu[1m].min()) * 10",
			      600000), 3);
	assert_near(value(f, find(f, "md1", "i2")), 1000);
	/* No common dimensions: no streams; x / 0 has no value. */
	assert_int_equal(eval(f, "Cpu[1m]{resourceId = \"md1\"}.max() + "
			      "Cpu[1m]{resourceId = \"md2\"}.max()", 600000),
			 0);
	assert_int_equal(eval(f, "Cpu[1m].max() / 0", 600000), 0);
	/* A condition over arithmetic. */
	assert_int_equal(eval(f, "100 - Cpu[1m].max() > 30", 600000), 3);
	assert_true(f->r.streams[find(f, "md1", "i1")].points[0].holds);
	assert_false(f->r.streams[find(f, "md1", "i2")].points[0].holds);
	assert_true(f->r.streams[find(f, "md2", "i1")].points[0].holds);
}

/* && and || join conditions stream by stream. */
static void test_eval_joins(void **state)
{
	struct fixture *f = *state;

	/* i1: max 60, mean 35; i2: 95, 50; md2: 7, 7. */
	assert_int_equal(eval(f, "Cpu[1m].max() > 50 && Cpu[1m].mean() < 40",
			      600000), 3);
	assert_true(f->r.streams[find(f, "md1", "i1")].points[0].holds);
	assert_false(f->r.streams[find(f, "md1", "i2")].points[0].holds);
	assert_false(f->r.streams[find(f, "md2", "i1")].points[0].holds);
	/* i1: 60 > 90 no, min 10 < 8 no; i2: yes; md2: min 7 < 8. */
	assert_int_equal(eval(f, "Cpu[1m].max() > 90 || Cpu[1m].min() < 8",
			      600000), 3);
	assert_false(f->r.streams[find(f, "md1", "i1")].points[0].holds);
	assert_true(f->r.streams[find(f, "md1", "i2")].points[0].holds);
	assert_true(f->r.streams[find(f, "md2", "i1")].points[0].holds);
	/* && binds tighter than ||: false && x || true. */
	assert_int_equal(eval(f, "Cpu[1m].max() > 1000 && Cpu[1m].max() > 0 "
			      "|| Cpu[1m].min() < 8", 600000), 3);
	assert_true(f->r.streams[find(f, "md2", "i1")].points[0].holds);
	assert_false(f->r.streams[find(f, "md1", "i1")].points[0].holds);
	/* || keeps a stream only one side has. */
	assert_int_equal(eval(f, "Cpu[1m]{resourceId = \"md1\"}.max() > 90 || "
			      "Cpu[1m]{resourceId = \"md2\"}.max() > 5",
			      600000), 3);
	assert_true(f->r.streams[find(f, "md2", "i1")].points[0].holds);
	assert_true(f->r.streams[find(f, "md1", "i2")].points[0].holds);
	assert_false(f->r.streams[find(f, "md1", "i1")].points[0].holds);
}

/* A nested query aggregates the inner streams at each point. */
static void test_eval_nested(void **state)
{
	struct fixture *f = *state;

	/* Streams with max > 50: i1 (60) and i2 (95). */
	assert_int_equal(eval(f, "(Cpu[1m].max() > 50).grouping().sum()",
			      600000), 1);
	assert_int_equal(f->r.streams[0].ndims, 0);
	assert_near(value(f, 0), 2);
	assert_int_equal(eval(f, "(Cpu[1m].max() > 50).grouping().count()",
			      600000), 1);
	assert_near(value(f, 0), 2);
	assert_int_equal(eval(f, "(Cpu[1m].max()).grouping().mean()", 600000),
			 1);
	assert_near(value(f, 0), (60.0 + 95 + 7) / 3);
	assert_int_equal(eval(f, "(Cpu[1m].max()).groupBy(resourceId).max()",
			      600000), 2);
	assert_near(value(f, find(f, "md1", NULL)), 95);
	assert_near(value(f, find(f, "md2", NULL)), 7);
	assert_int_equal(eval(f, "(Cpu[1m].max()).groupBy(resourceId).min()",
			      600000), 2);
	assert_near(value(f, find(f, "md1", NULL)), 60);
	/* A condition on the nested result. */
	assert_int_equal(eval(f, "(Cpu[1m].max() > 50).grouping().sum() >= 2",
			      600000), 1);
	assert_true(f->r.streams[0].points[0].holds);
	assert_int_equal(eval(f, "(Cpu[1m].max() > 50).grouping().sum() > 2",
			      600000), 1);
	assert_false(f->r.streams[0].points[0].holds);
}

static void test_parse_expressions(void **state)
{
	struct mql_query *q;

	(void)state;
	q = parse_ok("100 - CpuUtilization[1m]{resourceId = \"X\"}.mean() > 20");
	assert_true(mql_has_condition(q));
	assert_string_equal(mql_metric(q), "CpuUtilization");
	assert_string_equal(mql_filter_value(q, "resourceId"), "X");
	assert_int_equal(mql_expression_len(q),
			 strlen("100 - CpuUtilization[1m]{resourceId = \"X\"}"
				".mean()"));
	mql_free(q);
	q = parse_ok("A[1m].max() > 1 && B[5m].min() < 2");
	assert_true(mql_has_condition(q));
	assert_string_equal(mql_metric(q), "A");
	assert_int_equal(mql_interval_ms(q), 60000);
	assert_int_equal(mql_expression_len(q),
			 strlen("A[1m].max() > 1 && B[5m].min() < 2"));
	assert_int_equal(mql_add_filter(q, "resourceGroup", "g"), 0);
	mql_free(q);
	q = parse_ok("A[1m].max() * 2");
	assert_false(mql_has_condition(q));
	mql_free(q);
	/* Errors point at the column. */
	parse_err("Cpu[1m].max() + ", MDS_E_PARSE,
		  "column 17: expected a metric name, found end of input");
	parse_err("(Cpu[1m].max() > 1", MDS_E_PARSE,
		  "column 19: expected ')', found end of input");
	parse_err("Cpu[1m].max() & Cpu[1m].min()", MDS_E_PARSE,
		  "column 15: expected end of input, an operator (+ - * / "
		  "&& ||) or a condition, found '&'");
	parse_err("(Cpu[1m].max()).nope()", MDS_E_PARSE,
		  "column 17: expected a statistic of streams (count, max, "
		  "mean, avg, min, sum) or grouping function, found 'nope'");
	parse_err("1 + 2", MDS_E_PARSE, "column 1: expected a metric query "
		  "in the expression, found '1'");
	parse_err("Cpu[1m].max() > 1 && Mem[1m].Max() > 1", MDS_E_PARSE,
		  "column 30: expected a statistic (" STATS ") or grouping "
		  "function, found 'Max'");
	parse_err("((((((((((((((((((Cpu[1m].max()))))))))))))))))))",
		  MDS_E_PARSE, "column 17: expected at most 16 levels of "
		  "parentheses, found '('");
}

static void test_eval_grouping(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(eval(f, "Cpu[1m]{resourceId = \"md1\"}.grouping()"
			      ".max()", 600000), 1);
	assert_int_equal(f->r.streams[0].ndims, 0);
	assert_true(value(f, 0) == 95);
	eval(f, "Cpu[1m]{resourceId = \"md1\"}.grouping().count()", 600000);
	assert_true(value(f, 0) == 8);
	eval(f, "Cpu[1m]{resourceId = \"md1\"}.grouping().rate()", 600000);
	assert_true(fabs(value(f, 0) - 2.8) < 1e-9);
	eval(f, "Cpu[1m]{resourceId = \"md1\"}.grouping().last()", 600000);
	assert_true(value(f, 0) == 95);
	eval(f, "Cpu[1m]{resourceId = \"md1\"}.grouping().percentile(0.5)",
	     600000);
	assert_true(value(f, 0) == 35);

	assert_int_equal(eval(f, "Cpu[1m].groupBy(resourceId).count()",
			      600000), 2);
	assert_int_equal(f->r.streams[0].ndims, 1);
	assert_string_equal(dim(f, 0, "resourceId"), "md1");
	assert_true(value(f, 0) == 8);
	assert_string_equal(dim(f, 1, "resourceId"), "md2");
	assert_true(value(f, 1) == 1);

	assert_int_equal(eval(f, "Cpu[1m].groupBy(instanceId).sum()", 600000),
			 2);
	assert_string_equal(dim(f, 0, "instanceId"), "i1");
	assert_true(value(f, 0) == 217);
	assert_string_equal(dim(f, 1, "instanceId"), "i2");
	assert_true(value(f, 1) == 100);

	/* A groupBy key no series has: one stream, no dims. */
	assert_int_equal(eval(f, "Cpu[1m].groupBy(zone).count()", 600000), 1);
	assert_int_equal(f->r.streams[0].ndims, 0);
	assert_true(value(f, 0) == 9);
}

/* Asserts that every stream of the result carries the hash of its dims. */
static void assert_hashes(const struct fixture *f, const char *text)
{
	for (size_t i = 0; i < f->r.nstreams; i++) {
		const struct mql_stream *s = &f->r.streams[i];

		if (s->hash != tsdb_dims_hash(s->dims, s->ndims))
			fail_msg("'%s', stream %zu: hash %llx, its dims' %llx",
				 text, i, (unsigned long long)s->hash,
				 (unsigned long long)tsdb_dims_hash(s->dims,
								    s->ndims));
	}
}

/*
 * Each stream carries the hash of its dimensions, whichever way it was
 * made (a series, a group, an expression, a nested query): equal
 * dimensions in equal order give equal hashes, different ones different.
 */
static void test_eval_stream_hash(void **state)
{
	static const char *const queries[] = {
		"Cpu[1m].max()",
		"Cpu[1m].max() > 50",
		"Cpu[1m].grouping().max()",
		"Cpu[1m].groupBy(resourceId).max()",
		"Cpu[1m].groupBy(instanceId, resourceId).max()",
		"Cpu[1m].groupBy(zone).count()",
		"Cpu[1m].max() * 2",
		"2 - Cpu[1m].max()",
		"Cpu[1m].max() > 50 || Cpu[1m].min() < 6",
		"Cpu[1m].max() + Cpu[1m].min()",
		"(Cpu[1m].max()).groupBy(resourceId).max()",
		"(Cpu[1m].max() > 50).grouping().count()",
		"Mem[1m].max()",
	};
	struct fixture *f = *state;
	struct tsdb_dim md1 = { "resourceId", "md1" }, mine[2];
	char key[] = "resourceId", value[] = "md1";
	struct mql_query *q;
	uint64_t h_series, h_group;

	assert_int_equal(tsdb_append(f->db, NS, "Mem", &md1, 1, 590000, 3,
				     NULL, 0), 0);
	for (size_t i = 0; i < sizeof(queries) / sizeof(*queries); i++) {
		assert_true(eval(f, queries[i], 600000) > 0);
		assert_hashes(f, queries[i]);
	}
	/* The series md1 of Mem, the group md1 of Cpu and dims built here
	 * from other strings: one hash. */
	assert_int_equal(eval(f, "Mem[1m].max()", 600000), 1);
	h_series = f->r.streams[0].hash;
	assert_int_equal(eval(f, "Cpu[1m].groupBy(resourceId).max()",
			      600000), 2);
	h_group = f->r.streams[find(f, "md1", NULL)].hash;
	assert_true(h_group == h_series);
	assert_true(f->r.streams[find(f, "md2", NULL)].hash != h_series);
	mine[0] = (struct tsdb_dim){ key, value };
	assert_true(tsdb_dims_hash(mine, 1) == h_series);
	/* A series' stream and the group of all its dims, in its order. */
	assert_int_equal(eval(f, "Cpu[1m].max()", 600000), 3);
	h_series = f->r.streams[find(f, "md1", "i2")].hash;
	assert_int_equal(eval(f, "Cpu[1m].groupBy(instanceId, resourceId)"
			      ".max()", 600000), 3);
	assert_true(f->r.streams[find(f, "md1", "i2")].hash == h_series);
	assert_true(f->r.streams[find(f, "md1", "i1")].hash != h_series);
	mine[0] = (struct tsdb_dim){ "instanceId", "i2" };
	mine[1] = (struct tsdb_dim){ "resourceId", "md1" };
	assert_true(tsdb_dims_hash(mine, 2) == h_series);
	/* An expression keeps the hash of the streams it is made of. */
	assert_int_equal(eval(f, "Cpu[1m].max() * 2 + 1", 600000), 3);
	assert_true(f->r.streams[find(f, "md1", "i2")].hash == h_series);
	/* Over a range, too. */
	q = parse_ok("Cpu[1m].max()");
	assert_int_equal(mql_eval_range(q, f->db, NS, 420000, 600000, 60000,
					&f->r), 0);
	mql_free(q);
	assert_hashes(f, "Cpu[1m].max() over a range");
	assert_true(f->r.streams[find(f, "md1", "i2")].hash == h_series);
}

/* A range evaluation with a stream limit stops past it, counting only the
 * streams whose last point holds when the query has a condition. */
static void test_eval_range_max(void **state)
{
	static const struct {
		const char *query;
		size_t max;
		int over;
		size_t nstreams;
	} cases[] = {
		{ "Cpu[1m].max()", 2, 1, 0 },
		{ "Cpu[1m].max()", 3, 0, 3 },
		{ "Cpu[1m].max() > 50", 1, 1, 0 },
		{ "Cpu[1m].max() > 50", 2, 0, 3 }, /* md2/i1 (7) not counted */
		{ "Cpu[1m].groupBy(resourceId).max()", 1, 1, 0 },
		{ "Cpu[1m].groupBy(resourceId).max()", 2, 0, 2 },
		{ "Cpu[1m].max() * 2", 2, 1, 0 },
		{ "Cpu[1m].max() * 2", 3, 0, 3 },
		{ "Cpu[1m].max() * 2 > 100", 2, 0, 3 },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct mql_query *q = parse_ok(cases[i].query);
		int over = -1;
		int rc = mql_eval_range_max(q, f->db, NS, 420000, 600000,
					    60000, cases[i].max, &over,
					    &f->r);

		mql_free(q);
		if (rc != (cases[i].over ? MDS_E_LIMIT : 0) ||
		    over != cases[i].over ||
		    f->r.nstreams != cases[i].nstreams)
			fail_msg("'%s' at most %zu: rc %d, over %d, %zu "
				 "streams", cases[i].query, cases[i].max, rc,
				 over, f->r.nstreams);
	}
}

static void test_eval_conditions(void **state)
{
	struct fixture *f = *state;

	eval(f, "Cpu[1m]{resourceId = \"md1\"}.max() > 80", 600000);
	assert_false(f->r.streams[0].points[0].holds);
	assert_true(f->r.streams[1].points[0].holds);
	eval(f, "Cpu[1m]{resourceId = \"md1\"}.max() in (60, 95)", 600000);
	assert_true(f->r.streams[0].points[0].holds);
	assert_true(f->r.streams[1].points[0].holds);
	eval(f, "Cpu[1m]{resourceId = \"md1\"}.max() not in (60, 95)",
	     600000);
	assert_false(f->r.streams[0].points[0].holds);
	assert_false(f->r.streams[1].points[0].holds);
	/* Filters: alternatives, globs, negation. */
	assert_int_equal(eval(f, "Cpu[1m]{resourceId = \"md2\" || "
			      "resourceId = \"md1\", instanceId != \"i2\"}"
			      ".max()", 600000), 2);
	assert_int_equal(eval(f, "Cpu[1m]{resourceId =~ \"md*\"}.max()",
			      600000), 3);
	assert_int_equal(eval(f, "Cpu[1m]{resourceId =~ \"md*\", "
			      "instanceId =~ \"x|i2\"}.max()", 600000), 1);
	/* Nothing there is not an error. */
	assert_int_equal(eval(f, "Nope[1m].max()", 600000), 0);
	assert_int_equal(eval(f, "Cpu[1m]{resourceId = \"zz\"}.max()",
			      600000), 0);
	/* A series without data in the window has no stream. */
	assert_int_equal(eval(f, "Cpu[1m]{resourceId = \"md3\"}.max()",
			      600000), 0);
	/* Another namespace sees nothing. */
	{
		struct mql_query *q = parse_ok("Cpu[1m].max()");

		assert_int_equal(mql_eval(q, f->db, "other", 600000, &f->r),
				 0);
		assert_int_equal(f->r.nstreams, 0);
		mql_free(q);
	}
}

static void test_eval_absent(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(eval(f, "Cpu[1m]{resourceId = \"md3\"}.absent()",
			      600000), 1);
	assert_true(value(f, 0) == 1);
	assert_true(f->r.streams[0].points[0].holds);
	assert_int_equal(eval(f, "Cpu[1m]{resourceId = \"md1\"}.absent()",
			      600000), 2);
	assert_true(value(f, 0) == 0);
	assert_false(f->r.streams[0].points[0].holds);
	/* Past the detection period (the raw window, 15 min), md3 is gone. */
	assert_int_equal(eval(f, "Cpu[1m]{resourceId = \"md3\"}.absent()",
			      1000001), 0);
	/* absent(hours) widens the detection period. */
	assert_int_equal(eval(f, "Cpu[1m]{resourceId = \"md3\"}.absent(1)",
			      1000001), 1);
	/* Grouped: absent only when no series of the group has data. */
	assert_int_equal(eval(f, "Cpu[1m].groupBy(instanceId).absent()",
			      600000), 2);
	assert_true(value(f, 0) == 0);
	assert_int_equal(eval(f, "Cpu[1m].groupBy(resourceId).absent()",
			      600000), 3);
	assert_string_equal(dim(f, 0, "resourceId"), "md3");
	assert_true(value(f, 0) == 1);
}

static void test_eval_range(void **state)
{
	struct fixture *f = *state;
	struct mql_query *q = parse_ok("Cpu[1m]{resourceId = \"md1\", "
				       "instanceId = \"i1\"}.count()");
	const struct mql_stream *s;

	assert_int_equal(mql_eval_range(q, f->db, NS, 420000, 600000, 60000,
					&f->r), 0);
	assert_int_equal(f->r.nstreams, 1);
	s = &f->r.streams[0];
	assert_int_equal(s->npoints, 3);
	assert_int_equal(s->points[0].t, 480000);
	assert_false(s->points[0].present);
	assert_int_equal(s->points[1].t, 540000);
	assert_true(s->points[1].present && s->points[1].value == 1);
	assert_int_equal(s->points[2].t, 600000);
	assert_true(s->points[2].value == 6);
	/* No data at all in the range: no stream. */
	assert_int_equal(mql_eval_range(q, f->db, NS, 200000, 400000, 60000,
					&f->r), 0);
	assert_int_equal(f->r.nstreams, 0);
	assert_int_equal(mql_eval_range(q, f->db, NS, 600000, 600000, 60000,
					&f->r), MDS_E_INVAL);
	assert_int_equal(mql_eval_range(q, f->db, NS, 0, 600000, 0, &f->r),
			 MDS_E_INVAL);
	assert_int_equal(mql_eval_range(q, f->db, NS, 0, 86400000LL * 30, 1,
					&f->r), MDS_E_LIMIT);
	mql_free(q);
}

/*
 * A group of many series over many steps is read series by series (each
 * series for every step); each point must be the one a query at that step
 * alone gives, which goes step by step.
 */
static void test_eval_range_groups_match_steps(void **state)
{
	static const char *const queries[] = {
		"Cpu[1m].grouping().count()",
		"Cpu[1m].grouping().mean()",
		"Cpu[1m].grouping().sum() > 20",
		"Cpu[1m].grouping().min()",
		"Cpu[1m].grouping().max()",
		"Cpu[1m].grouping().first()",
		"Cpu[1m].grouping().last()",
		"Cpu[1m].grouping().rate()",
		"Cpu[1m].grouping().increment()",
		"Cpu[1m].grouping().percentile(0.9)",
		"Cpu[2m].groupBy(resourceId).mean()",
		"Cpu[1m].groupBy(instanceId).sum()",
	};
	struct fixture *f = *state;
	struct mql_result one;
	size_t checked = 0;

	mql_result_init(&one);
	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		struct mql_query *q = parse_ok(queries[i]);

		assert_int_equal(mql_eval_range(q, f->db, NS, 420000, 600000,
						10000, &f->r), 0);
		assert_true(f->r.nstreams > 0);
		for (size_t s = 0; s < f->r.nstreams; s++) {
			const struct mql_stream *st = &f->r.streams[s];

			assert_int_equal(st->npoints, 18);
			for (size_t k = 0; k < st->npoints; k++) {
				const struct mql_point *p = &st->points[k];
				const struct mql_stream *m = NULL;

				assert_int_equal(mql_eval(q, f->db, NS, p->t,
							  &one), 0);
				for (size_t j = 0; j < one.nstreams; j++)
					if (one.streams[j].hash == st->hash)
						m = &one.streams[j];
				if (m == NULL) {
					/* No data at that step alone. */
					assert_false(p->present);
					continue;
				}
				assert_int_equal(p->present,
						 m->points[0].present);
				assert_true(p->value == m->points[0].value);
				assert_int_equal(p->holds, m->points[0].holds);
				checked += p->present;
			}
		}
		mql_free(q);
	}
	/* Enough points had data for the comparison to mean something. */
	assert_true(checked >= 90);
	mql_result_free(&one);
}

/* A store of n series with irregular samples from a seeded generator:
 * resourceId among 4 values, instanceId among 7, a third dimension on
 * some; metrics Cpu and Mem. */
static struct tsdb *random_store(unsigned seed, int n)
{
	static const char *const rids[] = { "md1", "md2", "md3", "md4" };
	static const char *const zones[] = { "a", "b" };
	struct tsdb *db;
	uint64_t x = seed * 2654435761u + 1;

	assert_int_equal(tsdb_create(NULL, &db, NULL, 0), 0);
	for (int i = 0; i < n; i++) {
		char iid[16];
		struct tsdb_dim d[3];
		size_t nd = 2;
		int64_t t;

		x = x * 6364136223846793005u + 1442695040888963407u;
		snprintf(iid, sizeof(iid), "i%d", (int)((x >> 33) % 7));
		d[0] = (struct tsdb_dim){ "resourceId", rids[(x >> 40) % 4] };
		d[1] = (struct tsdb_dim){ "instanceId", iid };
		if ((x >> 50) % 3 == 0)
			d[nd++] = (struct tsdb_dim){ "zone",
						     zones[(x >> 20) % 2] };
		t = (int64_t)((x >> 24) % 60000);
		while (t < 600000) {
			double v;

			x = x * 6364136223846793005u + 1442695040888963407u;
			v = (double)((x >> 30) % 100000) / 997.0 - 20;
			/* Series of a lower i also skip to Mem; a few stop
			 * early, so absent() has something to say. */
			(void)tsdb_append(db, NS, i % 5 == 4 ? "Mem" : "Cpu",
					  d, nd, t, v, NULL, 0);
			t += 1000 + (int64_t)((x >> 45) % 25000);
			if (i % 11 == 3 && t > 450000)
				break;
		}
	}
	return db;
}

/* Whether two results are the same, point for point and bit for bit. */
static void assert_same_result(const char *text, size_t budget,
			       const struct mql_result *a,
			       const struct mql_result *b)
{
	if (a->nstreams != b->nstreams)
		fail_msg("%s, budget %zu: %zu streams, one-shot %zu", text,
			 budget, a->nstreams, b->nstreams);
	for (size_t i = 0; i < a->nstreams; i++) {
		const struct mql_stream *x = &a->streams[i], *y = &b->streams[i];

		assert_int_equal(x->hash, y->hash);
		assert_int_equal(x->ndims, y->ndims);
		for (size_t d = 0; d < x->ndims; d++) {
			assert_string_equal(x->dims[d].key, y->dims[d].key);
			assert_string_equal(x->dims[d].value,
					    y->dims[d].value);
		}
		assert_int_equal(x->npoints, y->npoints);
		for (size_t k = 0; k < x->npoints; k++) {
			const struct mql_point *p = &x->points[k];
			const struct mql_point *q = &y->points[k];

			if (p->t != q->t || p->present != q->present ||
			    p->holds != q->holds ||
			    memcmp(&p->value, &q->value, sizeof(double)))
				fail_msg("%s, budget %zu: stream %zu point %zu:"
					 " %g (%d) where one-shot has %g (%d)",
					 text, budget, i, k, p->value,
					 p->present, q->value, q->present);
		}
	}
}

/*
 * Evaluated over many calls of a small budget, every form of query gives
 * exactly what mql_eval_range_max() gives in one call, over stores of
 * several shapes: groupings, every statistic, conditions, filters,
 * absent(), expressions, and the limit on streams.
 */
static const char *const all_forms[] = {
	"Cpu[1m].count()", "Cpu[1m].mean()", "Cpu[1m].sum() > 20",
	"Cpu[1m].min()", "Cpu[1m].max() >= 60", "Cpu[1m].first()",
	"Cpu[1m].last()", "Cpu[1m].rate()", "Cpu[1m].increment()",
	"Cpu[1m].percentile(0.9)", "Cpu[5m].absent()",
	"Cpu[1m].absent(1) == 1",
	"Cpu[1m].grouping().count()", "Cpu[2m].grouping().mean()",
	"Cpu[1m].grouping().sum() > 20",
	"Cpu[1m].grouping().percentile(0.5)",
	"Cpu[1m].grouping().rate()", "Cpu[1m].grouping().absent()",
	"Cpu[2m].groupBy(resourceId).mean()",
	"Cpu[1m].groupBy(instanceId, zone).sum() in (10, 400)",
	"Cpu[1m].groupBy(zone).percentile(0.25)",
	"Cpu[1m].groupBy(resourceId).last() not in (0, 10)",
	"Cpu[1m]{resourceId = \"md2\"}.max()",
	"Cpu[1m]{resourceId =~ \"md1|md3\", zone != \"a\"}.mean()",
	"Cpu[1m]{instanceId =~ \"i*\"}.groupBy(resourceId).count()",
	"Cpu[1m].mean() + Mem[1m].mean()",
	"Cpu[1m].max() > 50 && Mem[1m].max() > 50",
	"Cpu[1m].max() > 70 || Cpu[1m].min() < 0",
	"(Cpu[1m].mean() * 2 - 1).groupBy(resourceId).max()",
	"(Cpu[1m].grouping().sum() / Mem[1m].grouping().sum()) > 1",
	"-Cpu[1m].groupBy(resourceId).min() + 3",
	"(Cpu[1m].mean()).grouping().count()",
	"Mem[1m].rate() > 0",
	"Nothing[1m].mean()",
};

static void test_job_matches_one_shot(void **state)
{
	const char *const *queries = all_forms;
	static const size_t budgets[] = { 1, 2, 3, 7, 50, 1000 };
	static const int sizes[] = { 0, 1, 9, 60 };
	static const size_t maxes[] = { SIZE_MAX, 5 };
	size_t compared = 0;

	(void)state;
	for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
		struct tsdb *db = random_store((unsigned)z + 1, sizes[z]);

		for (size_t i = 0; i < sizeof(all_forms) / sizeof(all_forms[0]);
		     i++) {
			struct mql_query *q = parse_ok(queries[i]);

			for (size_t m = 0; m < 2; m++) {
				struct mql_result one;
				int over1 = 0, rc1;

				mql_result_init(&one);
				rc1 = mql_eval_range_max(q, db, NS, 420000,
							 600000, 10000,
							 maxes[m], &over1,
							 &one);
				for (size_t b = 0;
				     b < sizeof(budgets) / sizeof(budgets[0]);
				     b++) {
					struct mql_job *j = NULL;
					int done = 0, over = 0, rc = 0;
					size_t calls = 0;

					assert_int_equal(
						mql_job_start(q, db, NS, 420000,
							      600000, 10000,
							      maxes[m], &j),
						0);
					while (!done) {
						rc = mql_job_run(j, budgets[b],
								 &done);
						calls++;
					}
					if (rc != rc1)
						fail_msg("%s, budget %zu: "
							 "returned %d, "
							 "one-shot %d",
							 queries[i],
							 budgets[b], rc, rc1);
					assert_same_result(
						queries[i], budgets[b],
						mql_job_result(j, &over),
						&one);
					assert_int_equal(over, over1);
					/* A small budget did cut it. */
					if (budgets[b] == 1 && sizes[z] > 1 &&
					    one.nstreams > 0)
						assert_true(calls > 10);
					compared += one.nstreams;
					mql_job_free(j);
				}
				mql_result_free(&one);
			}
			mql_free(q);
		}
		tsdb_free(db);
	}
	/* The comparisons had streams to compare. */
	assert_true(compared > 1000);
}

/* One stream of a part, copied: a part's result is overwritten by the
 * next. */
struct seen {
	uint64_t hash;
	struct mql_point pt;
};

/*
 * mql_eval_part() over parts of three series (or as much work) gives the
 * streams of mql_eval(), for every form: per series, a part at a time;
 * grouped, expressions and absent() all with the last part.
 */
static void test_eval_part_matches_eval(void **state)
{
	size_t compared = 0;

	(void)state;
	for (unsigned z = 0; z < 3; z++) {
		struct tsdb *db = random_store(z + 7, (int)(z * 20 + 1));

		for (size_t i = 0; i < sizeof(all_forms) / sizeof(all_forms[0]);
		     i++) {
			struct mql_query *q = parse_ok(all_forms[i]);
			struct mql_part part = { .max_series = 3 };
			struct mql_result one, r;
			struct seen *got = NULL;
			size_t n = 0, parts = 0;

			mql_result_init(&one);
			mql_result_init(&r);
			assert_int_equal(mql_eval(q, db, NS, 600000, &one), 0);
			do {
				assert_int_equal(mql_eval_part(q, db, NS,
							       600000, &part,
							       &r), 0);
				got = xreallocarray(got, n + r.nstreams + 1,
						    sizeof(*got));
				for (size_t k = 0; k < r.nstreams; k++)
					got[n++] = (struct seen){
						r.streams[k].hash,
						r.streams[k].points[0] };
				parts++;
			} while (part.more);
			if (n != one.nstreams)
				fail_msg("%s: %zu streams in parts, %zu whole",
					 all_forms[i], n, one.nstreams);
			for (size_t k = 0; k < n; k++) {
				const struct mql_point *p = &got[k].pt;
				const struct mql_point *w =
					&one.streams[k].points[0];

				assert_int_equal(got[k].hash,
						 one.streams[k].hash);
				assert_int_equal(p->present, w->present);
				assert_int_equal(p->holds, w->holds);
				assert_memory_equal(&p->value, &w->value,
						    sizeof(double));
			}
			if (z > 0 && one.nstreams > 0)
				assert_true(parts > 1);
			compared += n;
			mql_part_free(&part);
			free(got);
			mql_result_free(&one);
			mql_result_free(&r);
			mql_free(q);
		}
		tsdb_free(db);
	}
	assert_true(compared > 300);
}

/* Windows older than the raw retention are computed from minute buckets. */
static void test_eval_downsampled(void **state)
{
	struct tsdb_options opt;
	struct tsdb *db;
	struct mql_result r;
	struct mql_query *q;
	static const struct {
		const char *text;
		double want;
	} cases[] = {
		{ "X[10m].max()", 1790 },   { "X[10m].min()", 1200 },
		{ "X[10m].count()", 60 },   { "X[10m].mean()", 1495 },
		{ "X[10m].last()", 1790 },  { "X[10m].rate()", 1.0 },
		{ "X[10m].sum()", 89700 },
	};

	(void)state;
	tsdb_options_default(&opt);
	opt.raw_window_ms = 60000;
	assert_int_equal(tsdb_create(&opt, &db, NULL, 0), 0);
	/* A sample every 10 s for 30 min; the value is the time in s. */
	for (int64_t t = 0; t < 1800000; t += 10000)
		assert_int_equal(tsdb_append(db, NS, "X", NULL, 0, t,
					     (double)t / 1000, NULL, 0), 0);
	mql_result_init(&r);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		q = parse_ok(cases[i].text);
		assert_int_equal(mql_eval(q, db, NS, 1800000, &r), 0);
		assert_int_equal(r.nstreams, 1);
		if (fabs(r.streams[0].points[0].value - cases[i].want) > 1e-9)
			fail_msg("%s: got %g, want %g", cases[i].text,
				 r.streams[0].points[0].value, cases[i].want);
		mql_free(q);
	}
	/* Inside the raw window the raw samples are used: exact. */
	q = parse_ok("X[30s].count()");
	assert_int_equal(mql_eval(q, db, NS, 1800000, &r), 0);
	assert_true(r.streams[0].points[0].value == 3);
	mql_free(q);
	mql_result_free(&r);
	mql_result_free(NULL);
	tsdb_free(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_recipe_queries),
		cmocka_unit_test(test_parse_forms),
		cmocka_unit_test(test_parse_filters),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_parse_pathological),
		cmocka_unit_test_setup_teardown(test_eval_statistics, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_eval_star_is_literal,
						setup, teardown),
		cmocka_unit_test(test_parse_expressions),
		cmocka_unit_test_setup_teardown(test_eval_arithmetic, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_eval_joins, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_eval_nested, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_eval_grouping, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_eval_stream_hash, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_eval_range_max, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_eval_conditions, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_eval_absent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_eval_range, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_eval_range_groups_match_steps, setup, teardown),
		cmocka_unit_test(test_eval_downsampled),
		cmocka_unit_test(test_job_matches_one_shot),
		cmocka_unit_test(test_eval_part_matches_eval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
