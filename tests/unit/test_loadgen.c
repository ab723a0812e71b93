/* test_loadgen.c - the load generator's schedule: parsing and due times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cli/loadgen.h"
#include "util/err.h"

/* Walks the whole schedule; returns the number of requests, checking that
 * due times never go backwards nor past the end. */
static uint64_t count_due(const struct loadgen_sched *s, double *first,
			  double *last)
{
	struct loadgen_cursor c;
	double t, prev = -1;
	uint64_t n = 0;

	memset(&c, 0, sizeof c);
	while (loadgen_sched_next(s, &c, &t) == 0) {
		assert_true(t >= prev);
		assert_true(t < s->seconds);
		if (n == 0 && first != NULL)
			*first = t;
		prev = t;
		n++;
	}
	if (last != NULL)
		*last = prev;
	return n;
}

static void constant_rate_is_evenly_spaced(void **state)
{
	struct loadgen_sched s;
	struct loadgen_cursor c;
	double t;
	int i;

	(void)state;
	loadgen_sched_init(&s);
	assert_int_equal(loadgen_sched_add(&s, 2, 10, 10, NULL, 0), 0);
	memset(&c, 0, sizeof c);
	for (i = 0; i < 20; i++) {
		assert_int_equal(loadgen_sched_next(&s, &c, &t), 0);
		assert_true(t > i * 0.1 - 1e-9 && t < i * 0.1 + 1e-9);
	}
	assert_int_equal(loadgen_sched_next(&s, &c, &t), MDS_E_NOTFOUND);
	assert_int_equal(loadgen_sched_next(&s, &c, &t), MDS_E_NOTFOUND);
	loadgen_sched_free(&s);
}

static void fractional_counts(void **state)
{
	struct loadgen_sched s;

	(void)state;
	loadgen_sched_init(&s);
	assert_int_equal(loadgen_sched_add(&s, 0.3, 10, 10, NULL, 0), 0);
	assert_int_equal(count_due(&s, NULL, NULL), 3);
	loadgen_sched_free(&s);
	loadgen_sched_init(&s);
	assert_int_equal(loadgen_sched_add(&s, 1, 0.5, 0.5, NULL, 0), 0);
	assert_int_equal(count_due(&s, NULL, NULL), 1);
	loadgen_sched_free(&s);
}

static void ramps_integrate_the_rate(void **state)
{
	struct loadgen_sched s;
	double first, last;

	(void)state;
	loadgen_sched_init(&s);
	/* Up from 0 to 1000/s over 10 s: 5000 requests, denser at the end. */
	assert_int_equal(loadgen_sched_add(&s, 10, 0, 1000, NULL, 0), 0);
	assert_in_range(count_due(&s, &first, &last), 4999, 5001);
	assert_true(first == 0);
	assert_true(last > 9.9);
	loadgen_sched_free(&s);
	/* And down again. */
	loadgen_sched_init(&s);
	assert_int_equal(loadgen_sched_add(&s, 10, 1000, 0, NULL, 0), 0);
	assert_in_range(count_due(&s, &first, &last), 4999, 5001);
	assert_true(last < 9.9);
	loadgen_sched_free(&s);
}

static void parse_steps_ramps_comments(void **state)
{
	static const char text[] =
		"# a warm-up, then a ramp\n"
		"\n"
		"2 100\n"
		"  ramp 4 100 300   # up\r\n"
		"1 0\n"
		"1\t50";
	struct loadgen_sched s;
	char diag[128];

	(void)state;
	loadgen_sched_init(&s);
	assert_int_equal(loadgen_sched_parse(&s, text, strlen(text), diag,
					     sizeof diag), 0);
	assert_int_equal(s.n, 4);
	assert_true(s.seconds == 8);
	assert_true(s.requests == 200 + 800 + 0 + 50);
	assert_in_range(count_due(&s, NULL, NULL), 1049, 1051);
	assert_true(s.v[1].from == 100 && s.v[1].to == 300);
	loadgen_sched_free(&s);
}

static void parse_errors_name_the_line(void **state)
{
	static const struct {
		const char *text;
		int rc;
		const char *diag;
	} cases[] = {
		{"1 100\nramp 1 100\n", MDS_E_PARSE, "line 2"},
		{"1 abc\n", MDS_E_PARSE, "'abc' is not a number"},
		{"1 100 200\n", MDS_E_PARSE, "line 1"},
		{"0 100\n", MDS_E_INVAL, "line 1: the duration"},
		{"1 -5\n", MDS_E_INVAL, "line 1: a rate"},
		{"1 1e99\n", MDS_E_INVAL, "a rate"},
		{"1 nan\n", MDS_E_PARSE, "not a number"},
		{"# nothing\n\n", MDS_E_INVAL, "no steps"},
		{"", MDS_E_INVAL, "no steps"},
		{"86400 1\n1 1\n", MDS_E_LIMIT, "line 2: the schedule is longer"},
	};
	struct loadgen_sched s;
	char diag[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		loadgen_sched_init(&s);
		diag[0] = '\0';
		assert_int_equal(loadgen_sched_parse(&s, cases[i].text,
						     strlen(cases[i].text), diag,
						     sizeof diag), cases[i].rc);
		if (strstr(diag, cases[i].diag) == NULL) {
			print_error("case %zu: diag '%s' lacks '%s'\n", i, diag,
				    cases[i].diag);
			fail();
		}
		loadgen_sched_free(&s);
	}
}

static void long_lines_are_refused(void **state)
{
	char text[2048];
	struct loadgen_sched s;
	char diag[128];

	(void)state;
	memset(text, ' ', sizeof text);
	memcpy(text + sizeof text - 6, "1 100\n", 6);
	loadgen_sched_init(&s);
	assert_int_equal(loadgen_sched_parse(&s, text, sizeof text, diag,
					     sizeof diag), MDS_E_LIMIT);
	loadgen_sched_free(&s);
}

static void fail_names(void **state)
{
	(void)state;
	assert_string_equal(loadgen_fail_name(LOADGEN_FAIL_CONNECT_REFUSED),
			    "connect_refused");
	assert_string_equal(loadgen_fail_name(LOADGEN_FAIL_NON_2XX), "non_2xx");
	assert_string_equal(loadgen_fail_name(LOADGEN_FAIL_N), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(constant_rate_is_evenly_spaced),
		cmocka_unit_test(fractional_counts),
		cmocka_unit_test(ramps_integrate_the_rate),
		cmocka_unit_test(parse_steps_ramps_comments),
		cmocka_unit_test(parse_errors_name_the_line),
		cmocka_unit_test(long_lines_are_refused),
		cmocka_unit_test(fail_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
