/* test_delivery.c - which deliveries start, and what a failure is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/delivery.h"
#include "util/err.h"

#define NOW 1000000

static void http_verdicts(void **state)
{
	(void)state;
	assert_int_equal(delivery_http_verdict(true, 200), DELIVERY_OK);
	assert_int_equal(delivery_http_verdict(true, 204), DELIVERY_OK);
	/* No answer at all (connection refused, timeout): transient. */
	assert_int_equal(delivery_http_verdict(false, 0), DELIVERY_TRANSIENT);
	assert_int_equal(delivery_http_verdict(false, 200),
			 DELIVERY_TRANSIENT);
	assert_int_equal(delivery_http_verdict(true, 500), DELIVERY_TRANSIENT);
	assert_int_equal(delivery_http_verdict(true, 503), DELIVERY_TRANSIENT);
	assert_int_equal(delivery_http_verdict(true, 429), DELIVERY_TRANSIENT);
	assert_int_equal(delivery_http_verdict(true, 408), DELIVERY_TRANSIENT);
	assert_int_equal(delivery_http_verdict(true, 100), DELIVERY_TRANSIENT);
	/* The receiver refused these bytes: retrying cannot change it. */
	assert_int_equal(delivery_http_verdict(true, 400), DELIVERY_PERMANENT);
	assert_int_equal(delivery_http_verdict(true, 404), DELIVERY_PERMANENT);
	assert_int_equal(delivery_http_verdict(true, 413), DELIVERY_PERMANENT);
	assert_int_equal(delivery_http_verdict(true, 301), DELIVERY_PERMANENT);
}

static void function_verdicts(void **state)
{
	(void)state;
	assert_int_equal(delivery_function_verdict(0), DELIVERY_OK);
	assert_int_equal(delivery_function_verdict(MDS_E_INVAL),
			 DELIVERY_PERMANENT);
	assert_int_equal(delivery_function_verdict(MDS_E_IO),
			 DELIVERY_TRANSIENT);
	assert_int_equal(delivery_function_verdict(MDS_E_TIMEOUT),
			 DELIVERY_TRANSIENT);
	assert_int_equal(delivery_function_verdict(MDS_E_NOTFOUND),
			 DELIVERY_TRANSIENT);
}

/* A message of key A in backoff holds up A's next one, not B's. */
static void a_retrying_key_holds_up_only_itself(void **state)
{
	const struct delivery_slot q[] = {
		{ "A", false, NOW + 4000 }, /* retrying in 4 s */
		{ "A", false, NOW },
		{ "B", false, NOW },
		{ "C", false, NOW + 50 },
	};
	size_t ready[4];
	int64_t next;

	(void)state;
	assert_int_equal(delivery_pick(q, 4, NOW, 4, ready, &next), 1);
	assert_int_equal(ready[0], 2);
	assert_int_equal(next, NOW + 50);
	/* Once due, the head of A goes, still before A's second. */
	assert_int_equal(delivery_pick(q, 4, NOW + 4000, 4, ready, &next), 3);
	assert_int_equal(ready[0], 0);
	assert_int_equal(ready[1], 2);
	assert_int_equal(ready[2], 3);
	assert_int_equal(next, INT64_MAX);
}

/* An attempt in flight holds its key; others start beside it. */
static void inflight_holds_its_key(void **state)
{
	const struct delivery_slot q[] = {
		{ "A", true, NOW },
		{ "A", false, NOW },
		{ "", false, NOW },
		{ "", false, NOW },
		{ "B", false, NOW },
	};
	size_t ready[5];
	int64_t next;

	(void)state;
	assert_int_equal(delivery_pick(q, 5, NOW, 5, ready, &next), 2);
	/* Keyless messages keep their order among themselves. */
	assert_int_equal(ready[0], 2);
	assert_int_equal(ready[1], 4);
	assert_int_equal(next, INT64_MAX);
}

static void at_most_max_start(void **state)
{
	const struct delivery_slot q[] = {
		{ "A", false, NOW }, { "B", false, NOW }, { "C", false, NOW },
	};
	size_t ready[3];
	int64_t next;

	(void)state;
	assert_int_equal(delivery_pick(q, 3, NOW, 2, ready, &next), 2);
	assert_int_equal(ready[0], 0);
	assert_int_equal(ready[1], 1);
	assert_int_equal(delivery_pick(q, 3, NOW, 0, ready, &next), 0);
	assert_int_equal(delivery_pick(q, 0, NOW, 3, ready, &next), 0);
	assert_int_equal(next, INT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(http_verdicts),
		cmocka_unit_test(function_verdicts),
		cmocka_unit_test(a_retrying_key_holds_up_only_itself),
		cmocka_unit_test(inflight_holds_its_key),
		cmocka_unit_test(at_most_max_start),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
