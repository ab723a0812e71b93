/* test_iso8601.c - ISO-8601 durations and timestamps. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/iso8601.h"
#include "util/err.h"

static void test_duration_valid(void **state)
{
	static const struct {
		const char *text;
		int64_t ms;
	} cases[] = {
		{ "PT1M", 60000 },
		{ "PT5S", 5000 },
		{ "PT1H30M", 5400000 },
		{ "P1D", 86400000 },
		{ "P1DT12H", 129600000 },
		{ "P2W", 1209600000 },
		{ "PT0S", 0 },
		{ "PT0.5S", 500 },
		{ "PT1,25S", 1250 },
		{ "PT90M", 5400000 },
		{ "PT1H1M1.001S", 3661001 },
		{ "P10000D", 864000000000LL },
	};
	char diag[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms = -1;

		diag[0] = '\0';
		assert_int_equal(iso8601_duration_parse(cases[i].text, &ms,
							diag, sizeof(diag)),
				 0);
		assert_int_equal(ms, cases[i].ms);
	}
}

static void expect_dur_error(const char *text, int code, const char *diag_want)
{
	char diag[160] = "";
	int64_t ms = 42;

	assert_int_equal(iso8601_duration_parse(text, &ms, diag, sizeof(diag)),
			 code);
	assert_int_equal(ms, 42);
	assert_string_equal(diag, diag_want);
}

static void test_duration_errors(void **state)
{
	(void)state;
	expect_dur_error("", MDS_E_PARSE,
			 "column 1: expected 'P', found end of input");
	expect_dur_error("1M", MDS_E_PARSE, "column 1: expected 'P', found '1'");
	expect_dur_error("P", MDS_E_PARSE,
			 "column 2: expected a number, found end of input");
	expect_dur_error("PT", MDS_E_PARSE,
			 "column 3: expected a number, found end of input");
	expect_dur_error("P1DT", MDS_E_PARSE,
			 "column 5: expected a number, found end of input");
	expect_dur_error("PT1", MDS_E_PARSE,
			 "column 4: expected 'H', 'M' or 'S', found end of "
			 "input");
	expect_dur_error("PT1M1H", MDS_E_PARSE,
			 "column 6: expected 'H', 'M' or 'S', found 'H'");
	expect_dur_error("P1H", MDS_E_PARSE,
			 "column 3: expected 'W', 'D' or 'T', found 'H'");
	expect_dur_error("pt1m", MDS_E_PARSE,
			 "column 1: expected 'P', found 'p'");
	expect_dur_error("PT1.5M", MDS_E_PARSE,
			 "column 6: expected 'S' after a fraction, found 'M'");
	expect_dur_error("P1M", MDS_E_INVAL,
			 "column 3: years and months have no fixed length; "
			 "use weeks, days or hours");
	expect_dur_error("P1Y", MDS_E_INVAL,
			 "column 3: years and months have no fixed length; "
			 "use weeks, days or hours");
	expect_dur_error("PT0.0001S", MDS_E_INVAL,
			 "column 8: finer than a millisecond");
	expect_dur_error("P10001D", MDS_E_INVAL,
			 "duration longer than 10000 days");
	/* Twelve digits of weeks, days or hours overflow int64_t. */
	expect_dur_error("P999999999999W", MDS_E_INVAL,
			 "duration longer than 10000 days");
	expect_dur_error("P213503982335D", MDS_E_INVAL,
			 "duration longer than 10000 days");
	expect_dur_error("PT999999999999H", MDS_E_INVAL,
			 "duration longer than 10000 days");
	expect_dur_error("P9999999999999D", MDS_E_INVAL,
			 "column 14: number too large");
	expect_dur_error("-PT1M", MDS_E_PARSE,
			 "column 1: expected 'P', found '-'");
	expect_dur_error("PT1M ", MDS_E_PARSE,
			 "column 5: expected a number, found ' '");
}

static void test_duration_format(void **state)
{
	static const struct {
		int64_t ms;
		const char *text;
	} cases[] = {
		{ 0, "PT0S" },
		{ 60000, "PT1M" },
		{ 5000, "PT5S" },
		{ 5400000, "PT1H30M" },
		{ 86400000, "P1D" },
		{ 86400500, "P1DT0.5S" },
		{ 1250, "PT1.25S" },
		{ 3661001, "PT1H1M1.001S" },
	};
	char out[ISO8601_DURATION_BUFSZ];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t back;

		assert_int_equal(iso8601_duration_format(cases[i].ms, out,
							 sizeof(out)),
				 0);
		assert_string_equal(out, cases[i].text);
		assert_int_equal(iso8601_duration_parse(out, &back, NULL, 0),
				 0);
		assert_int_equal(back, cases[i].ms);
	}
	assert_int_equal(iso8601_duration_format(-1, out, sizeof(out)),
			 MDS_E_INVAL);
	assert_int_equal(iso8601_duration_format(5400000, out, 4),
			 MDS_E_LIMIT);
}

static void test_time(void **state)
{
	char diag[128];
	int64_t ms;

	(void)state;
	assert_int_equal(iso8601_time_parse("2022-07-08T22:45:00Z", &ms,
					    diag, sizeof(diag)), 0);
	assert_int_equal(ms, 1657320300000LL);
	assert_int_equal(iso8601_time_parse("2022-07-09T00:45:00.5+02:00",
					    &ms, diag, sizeof(diag)), 0);
	assert_int_equal(ms, 1657320300500LL);
	assert_int_equal(iso8601_time_parse("2000-02-29T00:00:00.123456Z",
					    &ms, diag, sizeof(diag)), 0);
	assert_int_equal(ms, 951782400123LL);
	assert_int_equal(iso8601_time_parse("2001-02-29T00:00:00Z", &ms,
					    diag, sizeof(diag)), MDS_E_PARSE);
	assert_string_equal(diag, "column 9: expected a valid day, found "
			    "'2'");
	assert_int_equal(iso8601_time_parse("2022-07-08T22:45:00", &ms,
					    diag, sizeof(diag)), MDS_E_PARSE);
	assert_string_equal(diag, "column 20: expected 'Z' or an offset, "
			    "found end of input");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_valid),
		cmocka_unit_test(test_duration_errors),
		cmocka_unit_test(test_duration_format),
		cmocka_unit_test(test_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
