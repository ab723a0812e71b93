/* test_rfc3339.c - the one timestamp formatter (util/rfc3339.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "util/err.h"
#include "util/rfc3339.h"

static void expect(int64_t ms, enum rfc3339_precision p, const char *want)
{
	char out[RFC3339_BUFSZ];

	assert_int_equal(rfc3339_format(ms, p, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

static void precisions(void **state)
{
	(void)state;
	expect(1657320300000LL, RFC3339_AUTO, "2022-07-08T22:45:00Z");
	expect(1657320300000LL, RFC3339_MILLIS, "2022-07-08T22:45:00.000Z");
	expect(1657320300000LL, RFC3339_SECONDS, "2022-07-08T22:45:00Z");
	expect(951782400123LL, RFC3339_AUTO, "2000-02-29T00:00:00.123Z");
	expect(951782400123LL, RFC3339_MILLIS, "2000-02-29T00:00:00.123Z");
	expect(951782400123LL, RFC3339_SECONDS, "2000-02-29T00:00:00Z");
	expect(0, RFC3339_AUTO, "1970-01-01T00:00:00Z");
}

/* Before 1970 the milliseconds count back from the next second. */
static void negative_times(void **state)
{
	(void)state;
	expect(-1, RFC3339_AUTO, "1969-12-31T23:59:59.999Z");
	expect(-1, RFC3339_SECONDS, "1969-12-31T23:59:59Z");
	expect(-62167219200000LL, RFC3339_MILLIS, "0000-01-01T00:00:00.000Z");
	expect(253402300799999LL, RFC3339_MILLIS, "9999-12-31T23:59:59.999Z");
}

static void refusals(void **state)
{
	char out[RFC3339_BUFSZ], small[24];

	(void)state;
	assert_int_equal(rfc3339_format(253402300800000LL, RFC3339_AUTO, out,
					sizeof(out)), MDS_E_INVAL);
	assert_string_equal(out, "");
	assert_int_equal(rfc3339_format(-62167219200001LL, RFC3339_AUTO, out,
					sizeof(out)), MDS_E_INVAL);
	/* 24 characters need 25 bytes. */
	assert_int_equal(rfc3339_format(0, RFC3339_MILLIS, small,
					sizeof(small)), MDS_E_LIMIT);
	assert_string_equal(small, "");
	assert_int_equal(rfc3339_format(0, RFC3339_SECONDS, small,
					sizeof(small)), 0);
	assert_string_equal(small, "1970-01-01T00:00:00Z");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(precisions),
		cmocka_unit_test(negative_times),
		cmocka_unit_test(refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
