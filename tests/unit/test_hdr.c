/* test_hdr.c - the log-linear latency histogram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/hdr.h"
#include "util/err.h"

#define SIXTY_S 60000000u /* in microseconds */

static struct hdr *make(uint64_t highest, int digits)
{
	struct hdr *h = NULL;

	assert_int_equal(hdr_new(highest, digits, &h), 0);
	assert_non_null(h);
	return h;
}

static void rejects_bad_arguments(void **state)
{
	struct hdr *h = (struct hdr *)1;

	(void)state;
	assert_int_equal(hdr_new(0, 2, &h), MDS_E_INVAL);
	assert_null(h);
	assert_int_equal(hdr_new(SIXTY_S, 0, &h), MDS_E_INVAL);
	assert_int_equal(hdr_new(SIXTY_S, 5, &h), MDS_E_INVAL);
	assert_int_equal(hdr_new((uint64_t)1 << 62, 2, &h), MDS_E_INVAL);
	hdr_free(NULL);
}

static void empty_reports_zero(void **state)
{
	struct hdr *h = make(SIXTY_S, 2);

	(void)state;
	assert_int_equal(hdr_count(h), 0);
	assert_int_equal(hdr_percentile(h, 50), 0);
	assert_int_equal(hdr_percentile(h, 100), 0);
	assert_int_equal(hdr_min(h), 0);
	assert_int_equal(hdr_max(h), 0);
	assert_true(hdr_mean(h) == 0);
	hdr_free(h);
}

/* Below 2 * 10^digits every value has its own slot. */
static void small_values_are_exact(void **state)
{
	struct hdr *h = make(SIXTY_S, 2);
	uint64_t v;

	(void)state;
	for (v = 1; v <= 200; v++)
		hdr_record(h, v);
	assert_int_equal(hdr_count(h), 200);
	assert_int_equal(hdr_min(h), 1);
	assert_int_equal(hdr_max(h), 200);
	assert_int_equal(hdr_percentile(h, 50), 100);
	assert_int_equal(hdr_percentile(h, 90), 180);
	assert_int_equal(hdr_percentile(h, 99), 198);
	assert_int_equal(hdr_percentile(h, 100), 200);
	assert_int_equal(hdr_percentile(h, 0), 1);
	assert_true(hdr_mean(h) > 100.49 && hdr_mean(h) < 100.51);
	hdr_free(h);
}

/*
 * Over the whole range, the value reported for a bucket is at most 1% above
 * any value recorded into it (2 significant digits), and never below it.
 */
static void two_digits_everywhere(void **state)
{
	struct hdr *h = make(SIXTY_S, 2);
	uint64_t v, got;

	(void)state;
	for (v = 1; v <= SIXTY_S; v += v / 7 + 1) {
		hdr_reset(h);
		hdr_record(h, v);
		hdr_record(h, SIXTY_S);
		hdr_record(h, SIXTY_S);
		got = hdr_percentile(h, 33);
		if (got < v || got > v + v / 100) {
			print_error("value %llu reported as %llu\n",
				(unsigned long long)v, (unsigned long long)got);
			fail();
		}
	}
	hdr_free(h);
}

static void uniform_percentiles(void **state)
{
	struct hdr *h = make(SIXTY_S, 2);
	uint64_t v;

	(void)state;
	for (v = 1; v <= 100000; v++)
		hdr_record(h, v);
	assert_in_range(hdr_percentile(h, 50), 50000, 50500);
	assert_in_range(hdr_percentile(h, 90), 90000, 90900);
	assert_in_range(hdr_percentile(h, 99), 99000, 99990);
	assert_in_range(hdr_percentile(h, 99.9), 99900, 100000);
	assert_int_equal(hdr_percentile(h, 100), 100000);
	assert_int_equal(hdr_max(h), 100000);
	assert_int_equal(hdr_min(h), 1);
	hdr_free(h);
}

/* One slow request in a thousand shows at p99.9, not at p99. */
static void tail_is_visible(void **state)
{
	struct hdr *h = make(SIXTY_S, 2);

	(void)state;
	hdr_record_n(h, 300, 998);
	hdr_record_n(h, 5000000, 2);
	assert_int_equal(hdr_count(h), 1000);
	assert_in_range(hdr_percentile(h, 99), 300, 303);
	assert_in_range(hdr_percentile(h, 99.9), 5000000, 5050000);
	assert_int_equal(hdr_max(h), 5000000);
	hdr_free(h);
}

static void clamps_above_highest(void **state)
{
	struct hdr *h = make(SIXTY_S, 2);

	(void)state;
	hdr_record(h, 10);
	hdr_record(h, 3ull * SIXTY_S);
	assert_int_equal(hdr_count(h), 2);
	assert_int_equal(hdr_clamped(h), 1);
	assert_int_equal(hdr_max(h), 3ull * SIXTY_S);
	assert_in_range(hdr_percentile(h, 100), SIXTY_S,
		SIXTY_S + SIXTY_S / 100);
	hdr_record(h, UINT64_MAX);
	assert_int_equal(hdr_clamped(h), 2);
	hdr_free(h);
}

static void add_merges_counts(void **state)
{
	struct hdr *a = make(SIXTY_S, 2), *b = make(SIXTY_S, 2);
	struct hdr *other = make(SIXTY_S, 3);

	(void)state;
	hdr_record_n(a, 100, 50);
	hdr_record_n(b, 1000, 50);
	hdr_record(b, 7);
	assert_int_equal(hdr_add(a, b), 0);
	assert_int_equal(hdr_count(a), 101);
	assert_int_equal(hdr_min(a), 7);
	assert_int_equal(hdr_max(a), 1000);
	assert_int_equal(hdr_percentile(a, 50), 100);
	assert_in_range(hdr_percentile(a, 60), 1000, 1010);
	assert_int_equal(hdr_count(b), 51);
	assert_int_equal(hdr_add(a, other), MDS_E_INVAL);
	assert_int_equal(hdr_count(a), 101);
	hdr_reset(a);
	assert_int_equal(hdr_count(a), 0);
	assert_int_equal(hdr_max(a), 0);
	assert_int_equal(hdr_add(a, other), MDS_E_INVAL);
	hdr_free(a);
	hdr_free(b);
	hdr_free(other);
}

static void other_precisions(void **state)
{
	struct hdr *h1 = make(1000000, 1), *h3 = make(1000000, 3);

	(void)state;
	hdr_record(h1, 12345);
	hdr_record(h3, 12345);
	assert_in_range(hdr_percentile(h1, 50), 12345, 12345 + 12345 / 10);
	assert_in_range(hdr_percentile(h3, 50), 12345, 12345 + 12345 / 1000);
	hdr_record(h1, 10);
	assert_int_equal(hdr_percentile(h1, 1), 10);
	hdr_free(h1);
	hdr_free(h3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rejects_bad_arguments),
		cmocka_unit_test(empty_reports_zero),
		cmocka_unit_test(small_values_are_exact),
		cmocka_unit_test(two_digits_everywhere),
		cmocka_unit_test(uniform_percentiles),
		cmocka_unit_test(tail_is_visible),
		cmocka_unit_test(clamps_above_highest),
		cmocka_unit_test(add_merges_counts),
		cmocka_unit_test(other_precisions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
