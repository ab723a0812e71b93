/* test_tsdb.c - the time-series store: identity, bounds, reads, images. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/tsdb.h"
#include "util/buf.h"
#include "util/err.h"

#define NS "oci_datascience_modeldeploy"

static struct tsdb *make_db(size_t max_series, size_t raw_cap,
			    int64_t raw_window, int64_t agg_window)
{
	struct tsdb_options opt;
	struct tsdb *db = NULL;
	char diag[128];

	tsdb_options_default(&opt);
	if (max_series)
		opt.max_series = max_series;
	if (raw_cap)
		opt.raw_capacity = raw_cap;
	if (raw_window)
		opt.raw_window_ms = raw_window;
	if (agg_window)
		opt.agg_window_ms = agg_window;
	assert_int_equal(tsdb_create(&opt, &db, diag, sizeof(diag)), 0);
	return db;
}

/* Flattens a read into arrays of times and values; returns the count. */
static size_t flatten(const struct tsdb_read *rd, int64_t *t, double *v,
		      size_t max)
{
	size_t n = 0;

	assert_int_equal(rd->res, TSDB_RES_RAW);
	for (int part = 0; part < 2; part++)
		for (size_t i = 0; i < rd->n[part]; i++) {
			assert_true(n < max);
			t[n] = rd->raw[part][i].t;
			v[n] = rd->raw[part][i].v;
			n++;
		}
	return n;
}

static void test_create_options(void **state)
{
	struct tsdb_options opt;
	struct tsdb *db = NULL;
	char diag[128] = "";

	(void)state;
	tsdb_options_default(&opt);
	assert_int_equal(opt.max_series, 100000);
	assert_int_equal(opt.raw_capacity, 9000);
	assert_int_equal(opt.raw_window_ms, 900000);
	assert_int_equal(opt.agg_window_ms, 86400000);
	opt.agg_window_ms = 90000;
	assert_int_equal(tsdb_create(&opt, &db, diag, sizeof(diag)),
			 MDS_E_INVAL);
	assert_null(db);
	assert_string_equal(diag, "agg_window_ms must be a whole number of "
			    "minutes, 1 minute to 7 days");
	tsdb_options_default(&opt);
	opt.raw_window_ms = opt.agg_window_ms + 1;
	assert_int_equal(tsdb_create(&opt, &db, diag, sizeof(diag)),
			 MDS_E_INVAL);
	opt.raw_window_ms = 1000;
	opt.max_series = 0;
	assert_int_equal(tsdb_create(&opt, &db, diag, sizeof(diag)),
			 MDS_E_INVAL);
	assert_int_equal(tsdb_create(NULL, &db, diag, sizeof(diag)), 0);
	tsdb_free(db);
	tsdb_free(NULL);
}

static void test_identity(void **state)
{
	struct tsdb *db = make_db(0, 0, 0, 0);
	struct tsdb_dim a[] = { { "resourceId", "md1" },
				{ "instanceId", "i1" } };
	struct tsdb_dim b[] = { { "instanceId", "i1" },
				{ "resourceId", "md1" } };
	struct tsdb_series *s1, *s2, *s3;
	const struct tsdb_dim *d;
	size_t nd;

	(void)state;
	assert_int_equal(tsdb_series_get_or_create(db, NS, "CpuUtilization",
						   a, 2, &s1, NULL, 0), 0);
	assert_int_equal(tsdb_series_get_or_create(db, NS, "CpuUtilization",
						   b, 2, &s2, NULL, 0), 0);
	assert_ptr_equal(s1, s2);
	assert_int_equal(tsdb_series_get_or_create(db, NS, "MemoryUtilization",
						   b, 2, &s3, NULL, 0), 0);
	assert_ptr_not_equal(s1, s3);
	assert_int_equal(tsdb_series_count(db), 2);
	assert_ptr_equal(tsdb_series_find(db, NS, "CpuUtilization", b, 2), s1);
	assert_null(tsdb_series_find(db, NS, "CpuUtilization", a, 1));
	assert_null(tsdb_series_find(db, "other", "CpuUtilization", a, 2));
	assert_string_equal(tsdb_series_namespace(s1), NS);
	assert_string_equal(tsdb_series_name(s1), "CpuUtilization");
	d = tsdb_series_dims(s1, &nd);
	assert_int_equal(nd, 2);
	assert_string_equal(d[0].key, "instanceId"); /* sorted by key */
	assert_string_equal(d[1].key, "resourceId");
	assert_string_equal(tsdb_series_dim(s1, "resourceId"), "md1");
	assert_null(tsdb_series_dim(s1, "nope"));
	/* Interned: both series share the same string for "md1". */
	assert_ptr_equal(tsdb_series_dim(s1, "resourceId"),
			 tsdb_series_dim(s3, "resourceId"));
	assert_int_equal(tsdb_series_newest(s1), -1);
	tsdb_free(db);
}

static void test_limits(void **state)
{
	struct tsdb *db = make_db(2, 0, 0, 0);
	struct tsdb_dim dims[TSDB_MAX_DIMS + 1];
	char keys[TSDB_MAX_DIMS + 1][16], big[TSDB_MAX_STR + 2];
	struct tsdb_dim one = { "resourceId", "x" };
	char diag[128] = "";

	(void)state;
	for (int i = 0; i <= TSDB_MAX_DIMS; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		dims[i] = (struct tsdb_dim){ keys[i], "v" };
	}
	assert_int_equal(tsdb_append(db, NS, "m", dims, TSDB_MAX_DIMS + 1, 0,
				     1, diag, sizeof(diag)), MDS_E_LIMIT);
	assert_string_equal(diag, "more than 16 dimensions");
	assert_int_equal(tsdb_append(db, NS, "m", dims, TSDB_MAX_DIMS, 0, 1,
				     diag, sizeof(diag)), 0);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	one.value = big;
	assert_int_equal(tsdb_append(db, NS, "m", &one, 1, 0, 1, diag,
				     sizeof(diag)), MDS_E_LIMIT);
	assert_string_equal(diag, "dimension value is longer than 255 bytes");
	big[TSDB_MAX_STR] = '\0'; /* exactly 255 is fine */
	assert_int_equal(tsdb_append(db, NS, "m", &one, 1, 0, 1, diag,
				     sizeof(diag)), 0);
	assert_int_equal(tsdb_append(db, "", "m", NULL, 0, 0, 1, diag,
				     sizeof(diag)), MDS_E_INVAL);
	assert_string_equal(diag, "namespace is empty");
	dims[1].key = dims[0].key;
	assert_int_equal(tsdb_append(db, NS, "m", dims, 2, 0, 1, diag,
				     sizeof(diag)), MDS_E_INVAL);
	assert_string_equal(diag, "dimension 'k0' given twice");
	/* The store is full: a third series is refused, known ones work. */
	assert_int_equal(tsdb_append(db, NS, "other", NULL, 0, 0, 1, diag,
				     sizeof(diag)), MDS_E_LIMIT);
	assert_string_equal(diag, "the store holds 2 series; 1 more would "
			    "pass its maximum of 2 series");
	assert_int_equal(tsdb_series_count(db), 2);
	assert_int_equal(tsdb_append(db, NS, "m", &one, 1, 1000, 2, diag,
				     sizeof(diag)), 0);
	/* Bad samples create nothing and are refused. */
	assert_int_equal(tsdb_append(db, NS, "m", &one, 1, 2000, NAN, diag,
				     sizeof(diag)), MDS_E_INVAL);
	assert_string_equal(diag, "value is not a finite number");
	assert_int_equal(tsdb_append(db, NS, "m", &one, 1, 2000, INFINITY,
				     diag, sizeof(diag)), MDS_E_INVAL);
	assert_int_equal(tsdb_append(db, NS, "m", &one, 1, -1, 1, diag,
				     sizeof(diag)), MDS_E_INVAL);
	tsdb_free(db);
}

/* A value of 255 bytes unique to (i, k). */
static void hostile_value(char *out, int i, int k)
{
	int n = snprintf(out, TSDB_MAX_STR + 1, "s%06d-d%02d-", i, k);

	memset(out + n, 'x', (size_t)(TSDB_MAX_STR - n));
	out[TSDB_MAX_STR] = '\0';
}

/* The interned strings are capped in total: a series whose new strings
 * would pass max_string_bytes is refused whole and changes nothing;
 * known strings cost nothing, so series made of them still fit. */
static void test_string_cap(void **state)
{
	static char vals[TSDB_MAX_DIMS][TSDB_MAX_STR + 1];
	static const char *keys[TSDB_MAX_DIMS] = {
		"d00", "d01", "d02", "d03", "d04", "d05", "d06", "d07",
		"d08", "d09", "d10", "d11", "d12", "d13", "d14", "d15" };
	struct tsdb_dim dims[TSDB_MAX_DIMS];
	struct tsdb_options opt;
	struct tsdb *db = NULL;
	struct tsdb_series *s;
	size_t n = 0, series, bytes, before, mem;
	char diag[256];
	int rc, i;

	(void)state;
	tsdb_options_default(&opt);
	assert_int_equal(opt.max_string_bytes, (size_t)512 << 20);
	opt.max_string_bytes = 64 << 10;
	assert_int_equal(tsdb_create(&opt, &db, diag, sizeof(diag)), 0);
	for (int k = 0; k < TSDB_MAX_DIMS; k++)
		dims[k] = (struct tsdb_dim){ .key = keys[k], .value = vals[k] };
	for (i = 0;; i++) {
		for (int k = 0; k < TSDB_MAX_DIMS; k++)
			hostile_value(vals[k], i, k);
		/* The cost is what the series would add, nothing more. */
		assert_int_equal(tsdb_series_cost(db, NS, "m", dims,
						  TSDB_MAX_DIMS, &series,
						  &bytes, diag, sizeof(diag)),
				 0);
		assert_int_equal(series, 1);
		assert_int_equal(bytes, i == 0 ? 16 * 256 + 16 * 4 +
						 sizeof(NS) + 2
					       : 16 * 256);
		before = tsdb_strings_bytes(db);
		mem = tsdb_memory(db);
		rc = tsdb_append(db, NS, "m", dims, TSDB_MAX_DIMS, 0, i, diag,
				 sizeof(diag));
		if (rc != 0)
			break;
		assert_int_equal(tsdb_strings_bytes(db), before + bytes);
		n++;
	}
	/* 64 KiB hold 15 such series (and the shared strings). */
	assert_int_equal(rc, MDS_E_LIMIT);
	assert_int_equal(n, 15);
	assert_non_null(strstr(diag, "its maximum of 65536 bytes"));
	assert_int_equal(tsdb_series_count(db), n);
	assert_int_equal(tsdb_strings_bytes(db), before);
	assert_int_equal(tsdb_memory(db), mem);
	assert_int_equal(tsdb_room(db, 0, 65536 - before, NULL, 0), 0);
	assert_int_equal(tsdb_room(db, 0, 65536 - before + 1, diag,
				   sizeof(diag)), MDS_E_LIMIT);
	/* A known series costs nothing and still takes samples. */
	hostile_value(vals[0], 3, 0);
	for (int k = 1; k < TSDB_MAX_DIMS; k++)
		hostile_value(vals[k], 3, k);
	assert_int_equal(tsdb_series_cost(db, NS, "m", dims, TSDB_MAX_DIMS,
					  &series, &bytes, NULL, 0), 0);
	assert_int_equal(series, 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(tsdb_append(db, NS, "m", dims, TSDB_MAX_DIMS, 1000,
				     1, diag, sizeof(diag)), 0);
	/* A new series of known strings only costs no string bytes. */
	hostile_value(vals[1], 4, 1);
	assert_int_equal(tsdb_series_cost(db, NS, "m", dims, TSDB_MAX_DIMS,
					  &series, &bytes, NULL, 0), 0);
	assert_int_equal(series, 1);
	assert_int_equal(bytes, 0);
	assert_int_equal(tsdb_series_get_or_create(db, NS, "m", dims,
						   TSDB_MAX_DIMS, &s, diag,
						   sizeof(diag)), 0);
	assert_int_equal(tsdb_series_count(db), n + 1);
	/* Bad identities cost nothing: they are refused. */
	assert_int_equal(tsdb_series_cost(db, NS, "", dims, 1, &series,
					  &bytes, diag, sizeof(diag)),
			 MDS_E_INVAL);
	tsdb_free(db);
	db = NULL;
	opt.max_string_bytes = 1000;
	assert_int_equal(tsdb_create(&opt, &db, diag, sizeof(diag)),
			 MDS_E_INVAL);
	assert_string_equal(diag, "max_string_bytes must be 64 KiB to 1 TiB");
	assert_null(db);
}

static void test_window_and_order(void **state)
{
	struct tsdb *db = make_db(0, 0, 10000, 0);
	struct tsdb_series *s;
	struct tsdb_read rd;
	int64_t t[16];
	double v[16];
	char diag[160];

	(void)state;
	assert_int_equal(tsdb_series_get_or_create(db, NS, "m", NULL, 0, &s,
						   NULL, 0), 0);
	assert_int_equal(tsdb_series_append(s, 100000, 1), 0);
	assert_int_equal(tsdb_series_append(s, 103000, 3), 0);
	assert_int_equal(tsdb_series_append(s, 102000, 2), 0); /* late */
	assert_int_equal(tsdb_series_append(s, 93000, 0), 0);  /* in window */
	assert_int_equal(tsdb_series_append(s, 92999, 0), MDS_E_INVAL);
	assert_int_equal(tsdb_series_append(s, 104000, NAN), MDS_E_INVAL);
	assert_int_equal(tsdb_series_append(s, 104000, -INFINITY),
			 MDS_E_INVAL);
	assert_int_equal(tsdb_append(db, NS, "m", NULL, 0, 50000, 1, diag,
				     sizeof(diag)), MDS_E_INVAL);
	assert_string_equal(diag, "time 50000 is older than the raw window "
			    "(newest sample 103000, window 10000 ms)");
	assert_int_equal(tsdb_series_newest(s), 103000);
	tsdb_series_read(s, 0, 200000, &rd);
	assert_int_equal(flatten(&rd, t, v, 16), 4);
	assert_int_equal(t[0], 93000);
	assert_int_equal(t[1], 100000);
	assert_int_equal(t[2], 102000);
	assert_int_equal(t[3], 103000);
	/* Half-open window. */
	tsdb_series_read(s, 100000, 103000, &rd);
	assert_int_equal(flatten(&rd, t, v, 16), 2);
	assert_int_equal(t[0], 100000);
	assert_int_equal(t[1], 102000);
	/* Moving on evicts what falls out of the raw window. */
	assert_int_equal(tsdb_series_append(s, 111000, 4), 0);
	tsdb_series_read(s, 101000, 200000, &rd);
	assert_int_equal(flatten(&rd, t, v, 16), 3);
	assert_int_equal(t[0], 102000);
	/* A window reaching before the evicted data reads minute buckets. */
	tsdb_series_read(s, 0, 200000, &rd);
	assert_int_equal(rd.res, TSDB_RES_MINUTE);
	tsdb_free(db);
}

static void test_ring_capacity(void **state)
{
	struct tsdb *db = make_db(0, 5, 0, 0);
	struct tsdb_series *s;
	struct tsdb_read rd;
	int64_t t[16];
	double v[16];
	size_t n;

	(void)state;
	assert_int_equal(tsdb_series_get_or_create(db, NS, "m", NULL, 0, &s,
						   NULL, 0), 0);
	for (int i = 0; i < 23; i++)
		assert_int_equal(tsdb_series_append(s, i * 1000, i), 0);
	/* Only the newest 5 are raw; they wrap around the ring's end. */
	tsdb_series_read(s, 18000, 100000, &rd);
	n = flatten(&rd, t, v, 16);
	assert_int_equal(n, 5);
	assert_int_not_equal(rd.n[1], 0);
	for (size_t i = 0; i < n; i++)
		assert_true(v[i] == 18 + (double)i);
	tsdb_series_read(s, 20000, 22000, &rd);
	assert_int_equal(flatten(&rd, t, v, 16), 2);
	assert_true(v[0] == 20 && v[1] == 21);
	/* A late sample older than everything kept in a full ring: refused. */
	assert_int_equal(tsdb_series_append(s, 17500, 1), MDS_E_INVAL);
	/* One among the kept ones is taken, the oldest goes. */
	assert_int_equal(tsdb_series_append(s, 19500, 99), 0);
	tsdb_series_read(s, 19000, 100000, &rd);
	n = flatten(&rd, t, v, 16);
	assert_int_equal(n, 5);
	assert_true(v[0] == 19 && v[1] == 99 && v[2] == 20);
	tsdb_free(db);
}

static void test_minute_buckets(void **state)
{
	struct tsdb *db = make_db(0, 0, 60000, 5 * 60000);
	struct tsdb_series *s;
	struct tsdb_read rd;

	(void)state;
	assert_int_equal(tsdb_series_get_or_create(db, NS, "m", NULL, 0, &s,
						   NULL, 0), 0);
	/* Every 10 s for 10 minutes: value = minute * 10 + index (0..5). */
	for (int m = 0; m < 10; m++)
		for (int k = 0; k < 6; k++)
			assert_int_equal(tsdb_series_append(s,
				(int64_t)m * 60000 + k * 10000, m * 10 + k), 0);
	/* A late sample inside the raw window updates its bucket. */
	assert_int_equal(tsdb_series_append(s, 9 * 60000 + 5000, 100), 0);
	tsdb_series_read(s, 0, 10 * 60000, &rd);
	assert_int_equal(rd.res, TSDB_RES_MINUTE);
	/* The minute window keeps 5 buckets: minutes 5..9. */
	assert_int_equal(rd.n[0] + rd.n[1], 5);
	{
		const struct tsdb_bucket *b[5];
		size_t n = 0;

		for (int part = 0; part < 2; part++)
			for (size_t i = 0; i < rd.n[part]; i++)
				b[n++] = &rd.agg[part][i];
		for (int i = 0; i < 4; i++) {
			int m = 5 + i;

			assert_int_equal(b[i]->t, (int64_t)m * 60000);
			assert_int_equal(b[i]->count, 6);
			assert_true(b[i]->min == m * 10);
			assert_true(b[i]->max == m * 10 + 5);
			assert_true(b[i]->sum == 6 * m * 10 + 15);
			assert_true(b[i]->last == m * 10 + 5);
			assert_int_equal(b[i]->last_t,
					 (int64_t)m * 60000 + 50000);
		}
		assert_int_equal(b[4]->count, 7);
		assert_true(b[4]->max == 100);
		assert_true(b[4]->last == 95); /* the late one is not last */
	}
	/* Buckets are chosen by start time within the window. */
	tsdb_series_read(s, 6 * 60000 + 1, 8 * 60000 + 1, &rd);
	assert_int_equal(rd.res, TSDB_RES_MINUTE);
	assert_int_equal(rd.n[0] + rd.n[1], 2);
	tsdb_free(db);
}

static int count_cb(const struct tsdb_series *s, void *arg)
{
	(void)s;
	(*(int *)arg)++;
	return 0;
}

static int stop_cb(const struct tsdb_series *s, void *arg)
{
	(void)s;
	(*(int *)arg)++;
	return 7;
}

static int selected(const struct tsdb *db, const char *name,
		    const struct tsdb_term *terms, const size_t *sizes,
		    size_t nclauses)
{
	struct tsdb_clause c[8];
	int n = 0;

	for (size_t i = 0; i < nclauses; i++) {
		c[i].terms = terms;
		c[i].nterms = sizes[i];
		terms += sizes[i];
	}
	assert_int_equal(tsdb_select(db, NS, name, c, nclauses, count_cb, &n),
			 0);
	return n;
}

static void test_select(void **state)
{
	struct tsdb *db = make_db(0, 0, 0, 0);
	char rid[16], iid[16];
	int n = 0;

	(void)state;
	/* md-0..md-4, each with instances i0..i2; md-9 has no instanceId. */
	for (int r = 0; r < 5; r++)
		for (int i = 0; i < 3; i++) {
			struct tsdb_dim d[2] = { { "resourceId", rid },
						 { "instanceId", iid } };

			snprintf(rid, sizeof(rid), "md-%d", r);
			snprintf(iid, sizeof(iid), "i%d", i);
			assert_int_equal(tsdb_append(db, NS, "Cpu", d, 2, 0, 1,
						     NULL, 0), 0);
		}
	assert_int_equal(tsdb_append(db, NS, "Cpu",
				     &(struct tsdb_dim){ "resourceId", "md-9" },
				     1, 0, 1, NULL, 0), 0);
	assert_int_equal(tsdb_append(db, NS, "Mem",
				     &(struct tsdb_dim){ "resourceId", "md-1" },
				     1, 0, 1, NULL, 0), 0);

	assert_int_equal(selected(db, "Cpu", NULL, NULL, 0), 16);
	assert_int_equal(selected(db, "Nope", NULL, NULL, 0), 0);
	{
		struct tsdb_term t[] = {
			{ "resourceId", "md-1", TSDB_MATCH_EQ } };
		size_t sz[] = { 1 };

		assert_int_equal(selected(db, "Cpu", t, sz, 1), 3);
		assert_int_equal(selected(db, "Mem", t, sz, 1), 1);
	}
	{
		struct tsdb_term t[] = {
			{ "resourceId", "md-1", TSDB_MATCH_EQ },
			{ "instanceId", "i2", TSDB_MATCH_NE } };
		size_t sz[] = { 1, 1 };

		assert_int_equal(selected(db, "Cpu", t, sz, 2), 2);
	}
	{
		/* NE holds for a series that lacks the key (md-9). */
		struct tsdb_term t[] = { { "instanceId", "i0", TSDB_MATCH_NE } };
		size_t sz[] = { 1 };

		assert_int_equal(selected(db, "Cpu", t, sz, 1), 11);
	}
	{
		struct tsdb_term t[] = {
			{ "resourceId", "md-*", TSDB_MATCH_GLOB },
			{ "instanceId", "*1", TSDB_MATCH_GLOB } };
		size_t sz[] = { 1, 1 };

		assert_int_equal(selected(db, "Cpu", t, sz, 2), 5);
	}
	{
		struct tsdb_term t[] = {
			{ "resourceId", "md-1", TSDB_MATCH_EQ },
			{ "resourceId", "md-3", TSDB_MATCH_EQ },
			{ "resourceId", "md-9", TSDB_MATCH_EQ },
			{ "instanceId", "i1", TSDB_MATCH_NOT_GLOB } };
		size_t sz[] = { 3, 1 };

		/* (md-1 or md-3 or md-9) and not instance i1. */
		assert_int_equal(selected(db, "Cpu", t, sz, 2), 5);
	}
	{
		/* Unknown key or value through the index: nothing. */
		struct tsdb_term t[] = { { "resourceId", "md-7",
					   TSDB_MATCH_EQ } };
		struct tsdb_term u[] = { { "zone", "a", TSDB_MATCH_EQ } };
		size_t sz[] = { 1 };

		assert_int_equal(selected(db, "Cpu", t, sz, 1), 0);
		assert_int_equal(selected(db, "Cpu", u, sz, 1), 0);
	}
	/* A nonzero return stops the walk and is passed back. */
	assert_int_equal(tsdb_select(db, NS, "Cpu", NULL, 0, stop_cb, &n), 7);
	assert_int_equal(n, 1);
	tsdb_free(db);
}

/* Collects the creation indices of the selected series, in order. */
struct picked {
	uint32_t idx[256];
	size_t n;
};

static int pick_cb(const struct tsdb_series *s, void *arg)
{
	struct picked *p = arg;

	assert_true(p->n < sizeof(p->idx) / sizeof(p->idx[0]));
	p->idx[p->n++] = tsdb_series_index(s);
	return 0;
}

/* The index by value holds a value's series in place while there is one,
 * then in an array that grows at 4, 8, 16 ...: every count across those
 * steps gives back exactly its series, in creation order; and thousands of
 * values (the store's arrays past many segments) are each found. */
static void test_postings_across_growth(void **state)
{
	static const size_t counts[] = { 1, 2, 3, 4, 5, 8, 9, 16, 17, 100 };
	struct tsdb *db = make_db(0, 0, 0, 0);
	char val[32], other[32];

	(void)state;
	/* Series of the different values interleaved, so that each value's
	 * ids are not consecutive. */
	for (size_t round = 0; round < 100; round++)
		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]);
		     c++) {
			struct tsdb_dim d[2] = { { "shared", val },
						 { "own", other } };

			if (round >= counts[c])
				continue;
			snprintf(val, sizeof(val), "v%zu", counts[c]);
			snprintf(other, sizeof(other), "%zu-%zu", counts[c],
				 round);
			assert_int_equal(tsdb_append(db, NS, "Cpu", d, 2, 0, 1,
						     NULL, 0), 0);
		}
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		struct tsdb_term t[] = { { "shared", val, TSDB_MATCH_EQ } };
		struct tsdb_clause cl = { t, 1 };
		struct picked p = { .n = 0 };

		snprintf(val, sizeof(val), "v%zu", counts[c]);
		assert_int_equal(tsdb_select(db, NS, "Cpu", &cl, 1, pick_cb,
					     &p), 0);
		assert_int_equal(p.n, counts[c]);
		for (size_t i = 0; i < p.n; i++) {
			const struct tsdb_series *s = tsdb_series_at(db,
								     p.idx[i]);

			assert_string_equal(tsdb_series_dim(s, "shared"), val);
			if (i > 0)
				assert_true(p.idx[i] > p.idx[i - 1]);
		}
	}
	/* 20,000 values of their own: past many 64 KiB segments of
	 * strings, series and postings. */
	for (int i = 0; i < 20000; i++) {
		struct tsdb_dim d = { "own", other };

		snprintf(other, sizeof(other), "solo-%d", i);
		assert_int_equal(tsdb_append(db, NS, "Mem", &d, 1, 0, 1, NULL,
					     0), 0);
	}
	for (int i = 0; i < 20000; i += 7) {
		struct tsdb_term t[] = { { "own", other, TSDB_MATCH_EQ } };
		struct tsdb_clause cl = { t, 1 };
		struct picked p = { .n = 0 };

		snprintf(other, sizeof(other), "solo-%d", i);
		assert_int_equal(tsdb_select(db, NS, "Mem", &cl, 1, pick_cb,
					     &p), 0);
		assert_int_equal(p.n, 1);
		assert_string_equal(tsdb_series_dim(tsdb_series_at(db,
								   p.idx[0]),
						    "own"), other);
	}
	tsdb_free(db);
}

static void test_glob(void **state)
{
	(void)state;
	assert_true(tsdb_glob_match("md-*", "md-123"));
	assert_true(tsdb_glob_match("md-*", "md-"));
	assert_false(tsdb_glob_match("md-*", "xmd-1"));
	assert_true(tsdb_glob_match("*", ""));
	assert_true(tsdb_glob_match("a*b*c", "aXXbYYbc"));
	assert_false(tsdb_glob_match("a*b*c", "aXXbYYb"));
	assert_true(tsdb_glob_match("**a", "a"));
	assert_true(tsdb_glob_match("abc", "abc"));
	assert_false(tsdb_glob_match("abc", "abcd"));
	assert_false(tsdb_glob_match("", "a"));
}

static int to_buf(void *arg, const void *data, size_t len)
{
	return buf_add(arg, data, len);
}

static struct tsdb *sample_db(void)
{
	struct tsdb *db = make_db(10, 100, 60000, 3600000);

	for (int r = 0; r < 3; r++) {
		char rid[16];
		struct tsdb_dim d[2] = { { "resourceId", rid },
					 { "instanceId", "i\"\\x" } };

		snprintf(rid, sizeof(rid), "md-%d", r);
		for (int k = 0; k < 400; k++)
			assert_int_equal(tsdb_append(db, NS, "Cpu", d, 2,
						     1000000 + k * 997,
						     k * 0.5 + r, NULL, 0), 0);
		assert_int_equal(tsdb_append(db, NS, "Cpu", d, 2,
					     1000000 + 399 * 997 - 5, -1,
					     NULL, 0), 0);
	}
	assert_int_equal(tsdb_append(db, "other", "Empty", NULL, 0, 5, 1,
				     NULL, 0), 0);
	return db;
}

static void test_dump_load(void **state)
{
	struct tsdb *db = sample_db(), *db2 = make_db(10, 100, 60000, 3600000);
	struct buf img, img2;
	struct tsdb_dim d[2] = { { "resourceId", "md-1" },
				 { "instanceId", "i\"\\x" } };
	const struct tsdb_series *s1, *s2;
	struct tsdb_read r1, r2;
	char diag[128];

	(void)state;
	buf_init(&img, 1 << 24);
	buf_init(&img2, 1 << 24);
	assert_int_equal(tsdb_dump(db, to_buf, &img), 0);
	assert_int_equal(tsdb_load(db2, img.data, img.len, diag,
				   sizeof(diag)), 0);
	assert_int_equal(tsdb_series_count(db2), 4);
	assert_int_equal(tsdb_dump(db2, to_buf, &img2), 0);
	assert_int_equal(img.len, img2.len);
	assert_memory_equal(img.data, img2.data, img.len);

	s1 = tsdb_series_find(db, NS, "Cpu", d, 2);
	s2 = tsdb_series_find(db2, NS, "Cpu", d, 2);
	assert_non_null(s1);
	assert_non_null(s2);
	assert_int_equal(tsdb_series_newest(s1), tsdb_series_newest(s2));
	tsdb_series_read(s1, 1000000 + 350 * 997, INT64_MAX, &r1);
	tsdb_series_read(s2, 1000000 + 350 * 997, INT64_MAX, &r2);
	assert_int_equal(r1.res, TSDB_RES_RAW);
	assert_int_equal(r2.res, TSDB_RES_RAW);
	assert_int_equal(r1.n[0] + r1.n[1], r2.n[0] + r2.n[1]);
	tsdb_series_read(s1, 0, INT64_MAX, &r1);
	tsdb_series_read(s2, 0, INT64_MAX, &r2);
	assert_int_equal(r1.res, TSDB_RES_MINUTE);
	assert_int_equal(r2.n[0] + r2.n[1], r1.n[0] + r1.n[1]);

	/* Loading again replaces the data rather than duplicating it. */
	assert_int_equal(tsdb_load(db2, img.data, img.len, diag,
				   sizeof(diag)), 0);
	assert_int_equal(tsdb_series_count(db2), 4);
	buf_free(&img2);
	tsdb_free(db);
	tsdb_free(db2);
	buf_free(&img);
}

/* tsdb_select_some() looks at so many series a call, selected or not,
 * and together its calls select what one tsdb_select() does, once each. */
static void test_select_some_bounds_the_look(void **state)
{
	struct tsdb *db;
	struct tsdb_term t = { "k", "x*1*", TSDB_MATCH_GLOB };
	struct tsdb_clause cl = { &t, 1 };
	uint32_t pos = 0;
	int n = 0, all = 0, more = 1, calls = 0;

	(void)state;
	assert_int_equal(tsdb_create(NULL, &db, NULL, 0), 0);
	for (int i = 0; i < 40; i++) {
		char v[16];
		struct tsdb_dim d = { "k", v };

		snprintf(v, sizeof(v), "x%d", i);
		assert_int_equal(tsdb_append(db, NS, "Cpu", &d, 1, 1000, i,
					     NULL, 0), 0);
	}
	assert_int_equal(tsdb_select(db, NS, "Cpu", &cl, 1, count_cb, &all),
			 0);
	while (more) {
		uint32_t before = pos;

		assert_int_equal(tsdb_select_some(db, NS, "Cpu", &cl, 1, &pos,
						  3, &more, count_cb, &n), 0);
		assert_true(pos - before <= 3);
		calls++;
	}
	assert_int_equal(n, all);
	assert_int_equal(all, 13); /* x1, x10..x19, x21, x31 */
	assert_int_equal(calls, 14);
	tsdb_free(db);
}

/* Hostile identities: 16 dimensions of 255-byte values. Strings shared
 * between series are stored once, and the memory of a series stays under
 * the bound the header documents, whatever its identity. */
static void test_interning_and_memory_bound(void **state)
{
	struct tsdb *db = make_db(1000, 0, 0, 0);
	char vals[TSDB_MAX_DIMS][TSDB_MAX_STR + 1];
	char keys[TSDB_MAX_DIMS][8];
	struct tsdb_dim dims[TSDB_MAX_DIMS];
	size_t strs0, strs1, mem0, mem1, per;
	struct tsdb_series *s;

	(void)state;
	for (int k = 0; k < TSDB_MAX_DIMS; k++) {
		snprintf(keys[k], sizeof(keys[k]), "k%02d", k);
		memset(vals[k], 'a' + k, TSDB_MAX_STR);
		vals[k][TSDB_MAX_STR] = '\0';
		dims[k] = (struct tsdb_dim){ keys[k], vals[k] };
	}
	assert_int_equal(tsdb_series_get_or_create(db, NS, "m", dims,
						   TSDB_MAX_DIMS, &s, NULL,
						   0), 0);
	strs0 = tsdb_strings_bytes(db);
	/* ns, name, 16 keys of 3 bytes, 16 values of 255, with NULs. */
	assert_int_equal(strs0, sizeof(NS) + 2 + 16 * 4 + 16 * 256);
	/* 100 more series that differ in one value: 256 bytes each. */
	for (int i = 0; i < 100; i++) {
		snprintf(vals[0], 12, "%08d", i);
		vals[0][8] = 'z';
		assert_int_equal(tsdb_series_get_or_create(db, NS, "m", dims,
							   TSDB_MAX_DIMS, &s,
							   NULL, 0), 0);
		assert_int_equal(tsdb_series_index(s), i + 1);
		assert_ptr_equal(tsdb_series_at(db, (size_t)i + 1), s);
		/* The 15 other values are the first series' strings. */
		assert_ptr_equal(tsdb_series_dim(s, "k05"),
				 tsdb_series_dim(tsdb_series_at(db, 0), "k05"));
	}
	assert_null(tsdb_series_at(db, 101));
	strs1 = tsdb_strings_bytes(db);
	assert_int_equal(strs1 - strs0, 100 * 256);
	/* Each series, all 16 values its own and one sample appended,
	 * costs less than 16 * (256 + 256) bytes of strings plus 4 KiB. */
	mem0 = tsdb_memory(db);
	for (int i = 0; i < 100; i++) {
		for (int k = 0; k < TSDB_MAX_DIMS; k++) {
			snprintf(vals[k], 16, "u%05d-%02d", i, k);
			vals[k][9] = 'q';
		}
		assert_int_equal(tsdb_append(db, NS, "m", dims, TSDB_MAX_DIMS,
					     1000, 1, NULL, 0), 0);
	}
	mem1 = tsdb_memory(db);
	per = (mem1 - mem0) / 100;
	assert_true(per >= 16 * 256);
	assert_true(per < 16 * 512 + 4096);
	tsdb_free(db);
}

/* A series written alone and read back alone: the log's records. */
static void test_dump_load_series(void **state)
{
	struct tsdb *db = sample_db(), *db2 = make_db(10, 100, 60000, 3600000);
	struct buf one, img, img2;
	struct tsdb_series *s;
	size_t used = 0, at = 0;
	char diag[128];

	(void)state;
	buf_init(&one, 1 << 24);
	buf_init(&img, 1 << 24);
	buf_init(&img2, 1 << 24);
	for (size_t i = 0; i < tsdb_series_count(db); i++)
		assert_int_equal(tsdb_dump_series(tsdb_series_at(db, i),
						  to_buf, &one), 0);
	for (size_t i = 0; i < tsdb_series_count(db); i++) {
		assert_int_equal(tsdb_load_series(db2, one.data + at,
						  one.len - at, &used, &s,
						  diag, sizeof(diag)), 0);
		assert_int_equal(tsdb_series_index(s), i);
		at += used;
	}
	assert_int_equal(at, one.len);
	/* The same store, series for series (db2 keeps what its smaller
	 * retention allows, as tsdb_load() does). */
	assert_int_equal(tsdb_dump(db2, to_buf, &img), 0);
	tsdb_free(db2);
	db2 = make_db(10, 100, 60000, 3600000);
	assert_int_equal(tsdb_dump(db, to_buf, &img2), 0);
	assert_int_equal(tsdb_load(db2, img2.data, img2.len, diag,
				   sizeof(diag)), 0);
	buf_reset(&img2);
	assert_int_equal(tsdb_dump(db2, to_buf, &img2), 0);
	assert_int_equal(img.len, img2.len);
	assert_memory_equal(img.data, img2.data, img.len);
	/* A truncated record is refused and creates nothing. */
	tsdb_free(db2);
	db2 = make_db(10, 100, 60000, 3600000);
	assert_int_equal(tsdb_load_series(db2, one.data, 20, &used, &s, diag,
					  sizeof(diag)), MDS_E_PARSE);
	assert_int_equal(tsdb_series_count(db2), 0);
	buf_free(&one);
	buf_free(&img);
	buf_free(&img2);
	tsdb_free(db);
	tsdb_free(db2);
}

static void test_load_errors(void **state)
{
	struct tsdb *db = sample_db(), *small = make_db(2, 0, 0, 0);
	struct tsdb *db2 = make_db(10, 0, 0, 0);
	struct buf img;
	char diag[128] = "";

	(void)state;
	buf_init(&img, 1 << 24);
	assert_int_equal(tsdb_dump(db, to_buf, &img), 0);
	/* Every truncation is refused and leaves the store untouched. */
	for (size_t len = 0; len < img.len; len += 1 + len / 8) {
		assert_int_equal(tsdb_load(db2, img.data, len, diag,
					   sizeof(diag)), MDS_E_PARSE);
		assert_int_equal(tsdb_series_count(db2), 0);
	}
	assert_int_equal(tsdb_load(small, img.data, img.len, diag,
				   sizeof(diag)), MDS_E_LIMIT);
	assert_string_equal(diag, "the store holds 0 series; 4 more would "
			    "pass its maximum of 2 series");
	assert_int_equal(tsdb_series_count(small), 0);
	img.data[0] = 'X';
	assert_int_equal(tsdb_load(db2, img.data, img.len, diag,
				   sizeof(diag)), MDS_E_PARSE);
	assert_string_equal(diag, "not a tsdb image");
	img.data[0] = 'M';
	assert_int_equal(tsdb_load(small, img.data, img.len, NULL, 0),
			 MDS_E_LIMIT);
	buf_free(&img);
	tsdb_free(db);
	tsdb_free(db2);
	tsdb_free(small);
}

static void test_load_shrinks(void **state)
{
	struct tsdb *db = sample_db(), *tiny = make_db(10, 8, 60000, 600000);
	struct tsdb_dim d[2] = { { "resourceId", "md-0" },
				 { "instanceId", "i\"\\x" } };
	const struct tsdb_series *s;
	struct tsdb_read rd;
	struct buf img;

	(void)state;
	buf_init(&img, 1 << 24);
	assert_int_equal(tsdb_dump(db, to_buf, &img), 0);
	assert_int_equal(tsdb_load(tiny, img.data, img.len, NULL, 0), 0);
	s = tsdb_series_find(tiny, NS, "Cpu", d, 2);
	assert_non_null(s);
	tsdb_series_read(s, 1000000 + 393 * 997, INT64_MAX, &rd);
	assert_int_equal(rd.res, TSDB_RES_RAW);
	assert_int_equal(rd.n[0] + rd.n[1], 8);
	tsdb_series_read(s, 0, INT64_MAX, &rd);
	assert_int_equal(rd.res, TSDB_RES_MINUTE);
	assert_true(rd.n[0] + rd.n[1] <= 10);
	buf_free(&img);
	tsdb_free(db);
	tsdb_free(tiny);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_options),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_string_cap),
		cmocka_unit_test(test_window_and_order),
		cmocka_unit_test(test_ring_capacity),
		cmocka_unit_test(test_minute_buckets),
		cmocka_unit_test(test_select),
		cmocka_unit_test(test_postings_across_growth),
		cmocka_unit_test(test_glob),
		cmocka_unit_test(test_dump_load),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_load_shrinks),
		cmocka_unit_test(test_interning_and_memory_bound),
		cmocka_unit_test(test_dump_load_series),
		cmocka_unit_test(test_select_some_bounds_the_look),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
