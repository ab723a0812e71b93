/* test_trace.c - the simulator's trace readers: formats, options, errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "sim/trace.h"
#include "util/err.h"

static struct trace *parse_ok(const char *text, enum trace_format fmt,
			      double compress, double scale)
{
	struct trace_opts o = { fmt, compress, scale };
	struct trace *t = NULL;
	char diag[200] = "";
	int rc = trace_parse(text, strlen(text), &o, &t, diag, sizeof(diag));

	if (rc != 0)
		print_error("unexpected error %s: %s\n", mds_err_name(rc), diag);
	assert_int_equal(rc, 0);
	assert_non_null(t);
	return t;
}

/* Checks that text is refused under o with code and diag_want, leaving
 * the trace pointer untouched. */
static void expect_refusal(const char *text, const struct trace_opts *o,
			   int code, const char *diag_want)
{
	struct trace *t = (struct trace *)o; /* must stay untouched */
	char diag[200] = "";

	assert_int_equal(trace_parse(text, strlen(text), o, &t, diag,
				     sizeof(diag)),
			 code);
	assert_ptr_equal(t, (struct trace *)o);
	assert_string_equal(diag, diag_want);
}

static void expect_error(const char *text, enum trace_format fmt, int code,
			 const char *diag_want)
{
	expect_refusal(text, &(struct trace_opts){ fmt, 0, 0 }, code,
		       diag_want);
}

static const char azure[] =
	"TIMESTAMP,ContextTokens,GeneratedTokens\n"
	"2023-11-16 18:15:46.6805900,374,44\n"
	"2023-11-16 18:15:50.9951690,396,109\r\n"
	"2023-11-16 18:15:51.2224670,879,55\n"
	"2023-11-16 18:16:01.0000000,0,0\n";

static void test_azure(void **state)
{
	struct trace *t = parse_ok(azure, TRACE_AUTO, 0, 0);
	double w[4] = { trace_token_weight(374, 44), trace_token_weight(396, 109),
			trace_token_weight(879, 55), trace_token_weight(0, 0) };
	double mean = (w[0] + w[1] + w[2] + w[3]) / 4;

	(void)state;
	assert_int_equal(t->format, TRACE_AZURE);
	assert_int_equal(t->n, 4);
	assert_int_equal(t->source_records, 4);
	assert_int_equal(t->reqs[0].t_us, 0);
	assert_int_equal(t->reqs[1].t_us, 4314579);
	assert_int_equal(t->reqs[2].t_us, 4541877);
	assert_int_equal(t->reqs[3].t_us, 14319410);
	assert_int_equal(t->span_us, 14319410);
	assert_int_equal(t->reqs[1].ctx_tokens, 396);
	assert_int_equal(t->reqs[1].gen_tokens, 109);
	for (size_t i = 0; i < 4; i++)
		assert_true(fabs(t->reqs[i].cost - w[i] / mean) < 1e-9);
	/* Decode tokens weigh more than prompt tokens. */
	assert_true(t->reqs[1].cost > t->reqs[0].cost);
	trace_free(t);
}

static void test_azure_across_midnight(void **state)
{
	struct trace *t = parse_ok("TIMESTAMP,ContextTokens,GeneratedTokens\n"
				   "2023-12-31 23:59:59.5,1,1\n"
				   "2024-01-01 00:00:00.25,1,1\n",
				   TRACE_AZURE, 0, 0);

	(void)state;
	assert_int_equal(t->reqs[1].t_us, 750000);
	trace_free(t);
}

static void test_times(void **state)
{
	struct trace *t = parse_ok("time,cost\n# comment\n\n10.5\n10.5,2\n"
				   "12.25, 0.5\n", TRACE_AUTO, 0, 0);

	(void)state;
	assert_int_equal(t->format, TRACE_TIMES);
	assert_int_equal(t->n, 3);
	assert_int_equal(t->reqs[0].t_us, 0);
	assert_int_equal(t->reqs[1].t_us, 0);
	assert_int_equal(t->reqs[2].t_us, 1750000);
	assert_true(t->reqs[0].cost == 1.0);
	assert_true(t->reqs[1].cost == 2.0);
	assert_true(t->reqs[2].cost == 0.5);
	trace_free(t);

	/* No header; timestamps instead of seconds. */
	t = parse_ok("2024-01-01T00:00:00\n2024-01-01T00:00:01.5\n",
		     TRACE_AUTO, 0, 0);
	assert_int_equal(t->format, TRACE_TIMES);
	assert_int_equal(t->reqs[1].t_us, 1500000);
	trace_free(t);
}

static void test_rates(void **state)
{
	struct trace *t = parse_ok("rate\n2\n0\n0.5\n0.5\n", TRACE_AUTO, 0, 0);

	(void)state;
	assert_int_equal(t->format, TRACE_RATES);
	assert_int_equal(t->n, 3);
	assert_int_equal(t->reqs[0].t_us, 250000);
	assert_int_equal(t->reqs[1].t_us, 750000);
	/* Half a request in second 2 and half in second 3 make one. */
	assert_int_equal(t->reqs[2].t_us, 3500000);
	assert_int_equal(t->span_us, 4000000);
	trace_free(t);

	/* With seconds: a gap is a second with no request. */
	t = parse_ok("second,rate\n100,1\n103,1\n", TRACE_AUTO, 0, 0);
	assert_int_equal(t->n, 2);
	assert_int_equal(t->reqs[0].t_us, 500000);
	assert_int_equal(t->reqs[1].t_us, 3500000);
	assert_int_equal(t->span_us, 4000000);
	trace_free(t);
}

static void test_compress_and_scale(void **state)
{
	struct trace *t = parse_ok("0\n10\n20\n30\n", TRACE_TIMES, 10, 0);

	(void)state;
	assert_int_equal(t->reqs[3].t_us, 3000000);
	assert_int_equal(t->span_us, 3000000);
	assert_true(t->compress == 10);
	trace_free(t);

	t = parse_ok("0\n10\n20\n30\n", TRACE_TIMES, 0, 0.5);
	assert_int_equal(t->n, 2);
	assert_int_equal(t->source_records, 4);
	assert_int_equal(t->reqs[0].t_us, 10000000);
	assert_int_equal(t->reqs[1].t_us, 30000000);
	trace_free(t);

	/* Tripling: each original stays; its copies land within the second
	 * after it, in order, the same every time. */
	t = parse_ok("0\n10\n20\n", TRACE_TIMES, 2, 3);
	assert_int_equal(t->n, 9);
	assert_int_equal(t->reqs[0].t_us, 0);
	assert_int_equal(t->reqs[3].t_us, 5000000);
	assert_int_equal(t->reqs[6].t_us, 10000000);
	for (size_t i = 1; i < t->n; i++) {
		assert_true(t->reqs[i].t_us >= t->reqs[i - 1].t_us);
		/* Within half a second of compressed time of an original. */
		assert_true(t->reqs[i].t_us % 5000000 < 500000);
	}
	assert_true(t->reqs[1].t_us > 0);
	assert_true(t->reqs[1].t_us != t->reqs[2].t_us);
	trace_free(t);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("TIMESTAMP,ContextTokens,GeneratedTokens\n"
		     "2023-11-16 18:15:46.6805900,374,44\n"
		     "2023-11-16 18:15:4x.0,1,1\n",
		     TRACE_AUTO, MDS_E_PARSE,
		     "line 3, column 19: expected a timestamp YYYY-MM-DD "
		     "HH:MM:SS[.fraction]");
	expect_error("TIMESTAMP,ContextTokens,GeneratedTokens\n"
		     "2023-11-16 18:15:46.6805900,374,-4\n",
		     TRACE_AUTO, MDS_E_PARSE,
		     "line 2, column 33: expected a token count (a whole "
		     "number below 10^9)");
	expect_error("TIMESTAMP,ContextTokens,GeneratedTokens\n"
		     "2023-11-16 18:15:46.6805900,374\n",
		     TRACE_AUTO, MDS_E_PARSE,
		     "line 2, column 32: expected 3 fields, found 2");
	expect_error("TIMESTAMP,ContextTokens,GeneratedTokens\n"
		     "2023-11-16 18:15:46.6,1,1\n"
		     "2023-11-16 18:15:46.5,1,1\n",
		     TRACE_AUTO, MDS_E_PARSE,
		     "line 3, column 1: timestamps out of order (this one is "
		     "before the previous one)");
	expect_error("1\n2\n1.5\n", TRACE_AUTO, MDS_E_PARSE,
		     "line 3, column 1: timestamps out of order (this one is "
		     "before the previous one)");
	expect_error("1\n2,abc\n", TRACE_AUTO, MDS_E_PARSE,
		     "line 2, column 3: expected a cost (a number)");
	expect_error("1\n2,0\n", TRACE_AUTO, MDS_E_INVAL,
		     "line 2, column 3: a cost must be above 0 and at most "
		     "10^6");
	expect_error("rate\n1\n-2\n", TRACE_AUTO, MDS_E_INVAL,
		     "line 3, column 1: a rate must be between 0 and 1000000 "
		     "requests per second");
	expect_error("second,rate\n5,1\n4,1\n", TRACE_AUTO, MDS_E_PARSE,
		     "line 3, column 1: timestamps out of order (this one is "
		     "before the previous one)");
	expect_error("1\nnan\n", TRACE_TIMES, MDS_E_PARSE,
		     "line 2, column 1: expected a time in seconds or a "
		     "timestamp");
	expect_error("0.5\n", TRACE_AZURE, MDS_E_PARSE,
		     "line 1, column 1: expected the header "
		     "TIMESTAMP,ContextTokens,GeneratedTokens");
	expect_error("rate\n0\n0\n", TRACE_AUTO, MDS_E_INVAL,
		     "the trace has no request");
	expect_error("", TRACE_AUTO, MDS_E_INVAL, "the trace has no request");
}

static void test_bad_options(void **state)
{
	(void)state;
	expect_refusal("1\n", &(struct trace_opts){ TRACE_TIMES, -1, 0 },
		       MDS_E_INVAL,
		       "time compression must be above 0 and at most 10000");
	expect_refusal("1\n", &(struct trace_opts){ TRACE_TIMES, 1, -0.5 },
		       MDS_E_INVAL,
		       "rate scaling must be above 0 and at most 1000");
}

static void test_format_names(void **state)
{
	enum trace_format f;

	(void)state;
	assert_int_equal(trace_format_parse("rates", &f), 0);
	assert_int_equal(f, TRACE_RATES);
	assert_string_equal(trace_format_name(TRACE_AZURE), "azure");
	assert_int_equal(trace_format_parse("csv", &f), MDS_E_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_azure),
		cmocka_unit_test(test_azure_across_midnight),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_compress_and_scale),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_format_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
