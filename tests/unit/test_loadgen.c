/* test_loadgen.c - the load generator's schedule: parsing and due times,
 * and a trace turned into arrivals (load_trace.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "cli/load_trace.h"
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

static void arrivals_are_given_in_order(void **state)
{
	struct loadgen_sched s;
	struct loadgen_cursor c;
	uint64_t *due = calloc(3, sizeof *due);
	uint8_t *body = calloc(3, 1);
	double t;

	(void)state;
	due[0] = 0;
	due[1] = 500000000;
	due[2] = 500000000;
	body[1] = 7;
	loadgen_sched_init(&s);
	assert_int_equal(loadgen_sched_arrivals(&s, due, body, 3, 2, NULL, 0),
			 0);
	assert_true(s.seconds == 2 && s.requests == 3);
	memset(&c, 0, sizeof c);
	assert_int_equal(loadgen_sched_next(&s, &c, &t), 0);
	assert_true(t == 0 && loadgen_sched_body(&s, &c) == 0);
	assert_int_equal(loadgen_sched_next(&s, &c, &t), 0);
	assert_true(t == 0.5 && loadgen_sched_body(&s, &c) == 7);
	assert_int_equal(loadgen_sched_next(&s, &c, &t), 0);
	assert_int_equal(loadgen_sched_next(&s, &c, &t), MDS_E_NOTFOUND);
	/* Segments cannot be added to a list of arrivals. */
	assert_int_equal(loadgen_sched_add(&s, 1, 1, 1, NULL, 0), MDS_E_INVAL);
	loadgen_sched_free(&s);

	due = calloc(2, sizeof *due);
	due[0] = 2;
	due[1] = 1;
	assert_int_equal(loadgen_sched_arrivals(&s, due, NULL, 2, 0, NULL, 0),
			 MDS_E_INVAL);
	loadgen_sched_free(&s);
}

static struct trace *parse(const char *text, double compress)
{
	struct trace_opts o = { TRACE_AUTO, compress, 0 };
	struct trace *t = NULL;
	char diag[128];

	assert_int_equal(trace_parse(text, strlen(text), &o, &t, diag,
				     sizeof diag), 0);
	return t;
}

static void trace_slice_is_rebased(void **state)
{
	struct load_trace_opts o = { 1, 2, 0 };
	struct loadgen_sched s;
	struct trace *t = parse("0\n0.5\n1\n1.5\n2.9\n3\n4\n", 1);
	uint64_t n;
	char diag[128];

	(void)state;
	loadgen_sched_init(&s);
	assert_int_equal(load_trace_sched(t, &o, &s, &n, diag, sizeof diag),
			 0);
	assert_int_equal(s.ndue, 3); /* 1, 1.5, 2.9 and not 3 */
	assert_true(s.due_ns[0] == 0 && s.due_ns[1] == 500000000u &&
		    s.due_ns[2] == 1900000000u);
	assert_null(s.body_of);
	assert_true(s.seconds == 2 && n == 3);
	loadgen_sched_free(&s);
	/* A slice past the end has no request. */
	o.start_s = 10;
	assert_int_equal(load_trace_sched(t, &o, &s, &n, diag, sizeof diag),
			 MDS_E_INVAL);
	assert_non_null(strstr(diag, "no request"));
	loadgen_sched_free(&s);
	trace_free(t);
	/* Compression comes first: the slice is on the played timeline. */
	t = parse("0\n10\n20\n30\n", 10);
	o.start_s = 1;
	o.duration_s = 0;
	loadgen_sched_init(&s);
	assert_int_equal(load_trace_sched(t, &o, &s, &n, diag, sizeof diag),
			 0);
	assert_int_equal(s.ndue, 3);
	assert_true(s.due_ns[2] == 2000000000u);
	loadgen_sched_free(&s);
	trace_free(t);
}

static void costs_become_instances_keeping_the_mean(void **state)
{
	double sum = 0, want = 0;
	size_t i;
	unsigned k;

	(void)state;
	for (i = 0; i < 10000; i++) {
		double cost = 0.25 + (double)(i % 13) * 0.37;

		k = load_trace_instances(cost, 4, i);
		assert_true(k >= 1 && k <= LOAD_TRACE_INSTANCES_MAX);
		assert_true(fabs((double)k - cost * 4) < 1.0);
		sum += k;
		want += cost * 4;
	}
	assert_true(fabs(sum / want - 1) < 0.01);
	assert_int_equal(load_trace_instances(0.01, 1, 5), 1);
	assert_int_equal(load_trace_instances(1000, 1, 5),
			 LOAD_TRACE_INSTANCES_MAX);
	assert_int_equal(load_trace_instances(7.9, 0, 5), 1);
}

static void bodies_repeat_the_first_instance(void **state)
{
	struct buf b[LOAD_TRACE_INSTANCES_MAX];
	const char *in = "{\"instances\": [[1, 2], [3]]}";
	char diag[128];
	unsigned k;

	(void)state;
	assert_int_equal(load_trace_bodies(in, strlen(in), b, diag,
					   sizeof diag), 0);
	assert_string_equal(buf_str(&b[0]), "{\"instances\":[[1,2]]}");
	assert_string_equal(buf_str(&b[2]),
			    "{\"instances\":[[1,2],[1,2],[1,2]]}");
	for (k = 0; k < LOAD_TRACE_INSTANCES_MAX; k++)
		buf_free(&b[k]);
	assert_int_equal(load_trace_bodies("{}", 2, b, diag, sizeof diag),
			 MDS_E_INVAL);
	assert_int_equal(load_trace_bodies("{", 1, b, diag, sizeof diag),
			 MDS_E_INVAL);
	assert_non_null(strstr(diag, "line 1"));
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
		cmocka_unit_test(arrivals_are_given_in_order),
		cmocka_unit_test(trace_slice_is_rebased),
		cmocka_unit_test(costs_become_instances_keeping_the_mean),
		cmocka_unit_test(bodies_repeat_the_first_instance),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
