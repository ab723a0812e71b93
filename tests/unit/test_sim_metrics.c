/* test_sim_metrics.c - the alarm path over a given metric sequence
 * (sim/sim_metrics.h): parsing, and the recipe's moves on a burst. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sim/sim_metrics.h"
#include "util/err.h"

/* The e2e test's sequence: 30 % for 3 s, 95 % for 17 s, 5 % for 20 s. */
static void burst(struct sim_metric *v)
{
	for (int i = 0; i < 40; i++)
		v[i] = (struct sim_metric){ i * 1000,
					    i < 3 ? 30 : i < 20 ? 95 : 5, 0 };
}

/* The recipe with seconds instead of minutes, high pending `pending`. */
static void fast_recipe(struct policy *p, const char *pending)
{
	policy_recipe(p);
	p->max_instances = 3;
	snprintf(p->high_window, sizeof(p->high_window), "5s");
	snprintf(p->low_window, sizeof(p->low_window), "5s");
	snprintf(p->high_pending, sizeof(p->high_pending), "%s", pending);
	snprintf(p->low_pending, sizeof(p->low_pending), "PT3S");
	snprintf(p->high_repeat, sizeof(p->high_repeat), "PT8S");
	snprintf(p->low_repeat, sizeof(p->low_repeat), "PT8S");
}

static void recipe_moves_on_a_burst(void **state)
{
	struct sim_metrics_opts o = { 1, 1000, 1500, -1 };
	struct sim_metric v[40];
	struct sim_decision *d = NULL;
	struct policy p;
	size_t n = 0;
	uint32_t final = 0;
	char diag[256];
	static const int64_t want_t[] = { 10000, 18000, 28000, 36000 };
	static const uint32_t want_to[] = { 2, 3, 2, 1 };

	(void)state;
	burst(v);
	fast_recipe(&p, "PT3S");
	assert_int_equal(sim_metrics_run(&p, v, 40, &o, &d, &n, &final, diag,
					 sizeof(diag)), 0);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(d[i].t_ms, want_t[i]);
		assert_int_equal(d[i].to, want_to[i]);
		assert_int_equal(d[i].move, i < 2 ? POLICY_SCALE_OUT
						 : POLICY_SCALE_IN);
	}
	assert_string_equal(d[0].type, "OK_TO_FIRING");
	assert_string_equal(d[1].type, "REPEAT");
	assert_string_equal(d[2].title, POLICY_TITLE_LOW_CPU);
	assert_int_equal(final, 1);
	free(d);
	/* A longer pending duration fires later: the chain is live. */
	fast_recipe(&p, "PT6S");
	assert_int_equal(sim_metrics_run(&p, v, 40, &o, &d, &n, &final, diag,
					 sizeof(diag)), 0);
	assert_true(n >= 1 && d[0].t_ms == 13000);
	free(d);
	/* While UPDATING a message does nothing: a move that keeps the
	 * deployment busy past the repeat loses the second scale-out. */
	o.busy_ms = 9000;
	fast_recipe(&p, "PT3S");
	assert_int_equal(sim_metrics_run(&p, v, 40, &o, &d, &n, &final, diag,
					 sizeof(diag)), 0);
	assert_true(n >= 1 && d[0].to == 2);
	assert_true(n < 2 || d[1].move == POLICY_SCALE_IN);
	free(d);
}

static void parse_and_errors(void **state)
{
	const char *ok = "seconds,cpu,mem\n# c\n\n0,10\n1.5, 20 ,3\n";
	struct sim_metric *v = NULL;
	size_t n = 0;
	char diag[256];

	(void)state;
	assert_int_equal(sim_metrics_parse(ok, strlen(ok), &v, &n, diag,
					   sizeof(diag)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[1].t_ms, 1500);
	assert_true(v[1].cpu == 20 && v[1].mem == 3);
	free(v);
	assert_int_equal(sim_metrics_parse("0,1\n2,x\n", 8, &v, &n, diag,
					   sizeof(diag)), MDS_E_PARSE);
	assert_non_null(strstr(diag, "line 2, column 3"));
	assert_int_equal(sim_metrics_parse("2,1\n1,1\n", 8, &v, &n, diag,
					   sizeof(diag)), MDS_E_PARSE);
	assert_non_null(strstr(diag, "line 2, column 1"));
	assert_int_equal(sim_metrics_parse("0,-1\n", 5, &v, &n, diag,
					   sizeof(diag)), MDS_E_INVAL);
	assert_int_equal(sim_metrics_parse("0,1,2,3\n", 8, &v, &n, diag,
					   sizeof(diag)), MDS_E_PARSE);
	assert_int_equal(sim_metrics_parse("# none\n", 7, &v, &n, diag,
					   sizeof(diag)), MDS_E_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(recipe_moves_on_a_burst),
		cmocka_unit_test(parse_and_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
