/* test_autoscale_config.c - the autoscale function's configuration: merges
 * over what is in force, the shape ladder, and the line every decision's
 * reason ends with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "notify/autoscale_config.h"
#include "util/err.h"

static void ladder(struct shape_ladder *l)
{
	shape_ladder_init(l);
	assert_int_equal(shape_ladder_add(l, "xs", 250, 64u << 20, NULL, 0), 0);
	assert_int_equal(shape_ladder_add(l, "s", 500, 128u << 20, NULL, 0), 0);
	assert_int_equal(shape_ladder_add(l, "m", 1000, 256u << 20, NULL, 0),
			 0);
}

static int apply(const struct shape_ladder *all, const char *json,
		 struct fn_config *c, struct fault *f)
{
	json_t *o = json_loads(json, 0, NULL);
	int rc;

	assert_non_null(o);
	rc = fn_config_apply(all, o, c, f);
	json_decref(o);
	return rc;
}

static void merges_over_what_is_in_force(void **state)
{
	struct shape_ladder all;
	struct fn_config c;
	struct fault f;

	(void)state;
	ladder(&all);
	memset(&c, 0, sizeof(c));
	policy_recipe(&c.policy);
	assert_int_equal(apply(&all, "{\"maxInstances\": 3, \"cpuLow\": 25}",
			       &c, &f), 0);
	assert_int_equal(c.policy.max_instances, 3);
	assert_true(c.policy.cpu_low == 25);
	/* What was not named stays the recipe's. */
	assert_true(c.policy.cpu_high == 80);
	assert_string_equal(c.policy.profile, "recipe");
	assert_int_equal(apply(&all, "{\"cooldownInSeconds\": 7}", &c, &f), 0);
	assert_int_equal(c.policy.max_instances, 3);
	assert_int_equal(c.policy.cooldown_in_ms, 7000);
	/* A profile starts over. */
	assert_int_equal(apply(&all, "{\"profile\": \"default\"}", &c, &f), 0);
	assert_string_equal(c.policy.profile, "default");
	assert_int_equal(c.policy.max_instances, 4);
}

static void refuses_bad_fields(void **state)
{
	struct shape_ladder all;
	struct fn_config c;
	struct fault f;

	(void)state;
	ladder(&all);
	memset(&c, 0, sizeof(c));
	policy_default(&c.policy);
	assert_int_equal(apply(&all, "{\"maxInstances\": 0}", &c, &f),
			 MDS_E_INVAL);
	assert_string_equal(f.field, "maxInstances");
	assert_int_equal(apply(&all, "{\"nope\": 1}", &c, &f), MDS_E_INVAL);
	assert_string_equal(f.field, "nope");
	assert_int_equal(apply(&all, "{\"shapes\": [\"xl\"]}", &c, &f),
			 MDS_E_INVAL);
	assert_non_null(strstr(f.message, "'xl'"));
	assert_int_equal(apply(&all, "{\"shapes\": [\"s\", \"s\"]}", &c, &f),
			 MDS_E_INVAL);
	assert_int_equal(apply(&all, "{\"shapes\": \"s\"}", &c, &f),
			 MDS_E_INVAL);
	/* minInstances above maxInstances: the policy's own check. */
	assert_int_equal(apply(&all, "{\"minInstances\": 9, "
			       "\"maxInstances\": 2}", &c, &f), MDS_E_INVAL);
	assert_int_equal(apply(&all, "[]", &c, &f), MDS_E_INVAL);
}

static void the_ladder_is_the_users(void **state)
{
	struct shape_ladder all, l;
	struct fn_config c;
	struct fault f;

	(void)state;
	ladder(&all);
	memset(&c, 0, sizeof(c));
	policy_default(&c.policy);
	fn_config_ladder(&all, &c, &l);
	assert_int_equal(l.n, 3);
	assert_int_equal(apply(&all, "{\"shapes\": [\"xs\", \"m\"]}", &c, &f),
			 0);
	fn_config_ladder(&all, &c, &l);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].name, "xs");
	assert_string_equal(l.v[1].name, "m");
	/* xs steps up to m, skipping s. */
	assert_string_equal(shape_step(&l, "xs", 1)->name, "m");
	assert_null(shape_step(&l, "m", 1));
}

static void summary_quotes_the_numbers(void **state)
{
	struct shape_ladder all;
	struct fn_config c;
	struct fault f;
	char line[600];

	(void)state;
	ladder(&all);
	memset(&c, 0, sizeof(c));
	policy_recipe(&c.policy);
	fn_config_summary(&c, false, line, sizeof(line));
	assert_non_null(strstr(line, "config (default):"));
	assert_non_null(strstr(line, "maxInstances=5"));
	assert_non_null(strstr(line, "cpuLow=20"));
	assert_non_null(strstr(line, "shapes=(all)"));
	assert_int_equal(apply(&all, "{\"maxInstances\": 2, \"shapes\": "
			       "[\"xs\", \"s\"], \"cooldownOutSeconds\": 9}",
			       &c, &f), 0);
	fn_config_summary(&c, true, line, sizeof(line));
	assert_non_null(strstr(line, "config (deployment):"));
	assert_non_null(strstr(line, "maxInstances=2"));
	assert_non_null(strstr(line, "cooldownOutSeconds=9"));
	assert_non_null(strstr(line, "shapes=xs,s"));
	/* A short buffer is cut, never overrun. */
	fn_config_summary(&c, true, line, 20);
	assert_int_equal(strlen(line), 19);
}

static void json_round_trip(void **state)
{
	struct shape_ladder all;
	struct fn_config c, d;
	struct fault f;
	json_t *o;

	(void)state;
	ladder(&all);
	memset(&c, 0, sizeof(c));
	policy_default(&c.policy);
	assert_int_equal(apply(&all, "{\"memLow\": 12.5, \"shapes\": "
			       "[\"s\"]}", &c, &f), 0);
	o = fn_config_json(&c);
	memset(&d, 0, sizeof(d));
	policy_recipe(&d.policy);
	assert_int_equal(fn_config_apply(&all, o, &d, &f), 0);
	json_decref(o);
	assert_memory_equal(&c.policy, &d.policy, sizeof(c.policy));
	assert_int_equal(d.nshapes, 1);
	assert_string_equal(d.shapes[0], "s");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(merges_over_what_is_in_force),
		cmocka_unit_test(refuses_bad_fields),
		cmocka_unit_test(the_ladder_is_the_users),
		cmocka_unit_test(summary_quotes_the_numbers),
		cmocka_unit_test(json_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
