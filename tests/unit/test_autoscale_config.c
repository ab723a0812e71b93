/* test_autoscale_config.c - what the autoscale function makes of its
 * configuration: the shape ladder it names, the check of its shapes, and
 * the line every decision's reason ends with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

static void set_shapes(struct autoscale_config *c, const char *const *names,
		       size_t n)
{
	for (size_t i = 0; i < n; i++)
		snprintf(c->shapes[i], sizeof(c->shapes[i]), "%s", names[i]);
	c->nshapes = n;
}

static void the_ladder_is_the_users(void **state)
{
	static const char *const two[] = { "xs", "m" };
	struct shape_ladder all, l;
	struct autoscale_config c;

	(void)state;
	ladder(&all);
	memset(&c, 0, sizeof(c));
	policy_default(&c.policy);
	autoscale_config_ladder(&all, &c, &l);
	assert_int_equal(l.n, 3);
	set_shapes(&c, two, 2);
	autoscale_config_ladder(&all, &c, &l);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].name, "xs");
	assert_string_equal(l.v[1].name, "m");
	/* xs steps up to m, skipping s; m is the top. */
	assert_string_equal(shape_step(&l, "xs", 1)->name, "m");
	assert_null(shape_step(&l, "m", 1));
	assert_null(shape_find(&l, "s"));
}

static void shapes_are_checked(void **state)
{
	static const char *const good[] = { "s", "m" };
	static const char *const unknown[] = { "xs", "xl" };
	static const char *const twice[] = { "s", "s" };
	struct shape_ladder all;
	struct autoscale_config c;
	char why[200];

	(void)state;
	ladder(&all);
	memset(&c, 0, sizeof(c));
	assert_int_equal(autoscale_config_check_shapes(&all, &c, why,
						       sizeof(why)), 0);
	set_shapes(&c, good, 2);
	assert_int_equal(autoscale_config_check_shapes(&all, &c, why,
						       sizeof(why)), 0);
	set_shapes(&c, unknown, 2);
	assert_int_equal(autoscale_config_check_shapes(&all, &c, why,
						       sizeof(why)),
			 MDS_E_INVAL);
	assert_non_null(strstr(why, "'xl'"));
	set_shapes(&c, twice, 2);
	assert_int_equal(autoscale_config_check_shapes(&all, &c, why,
						       sizeof(why)),
			 MDS_E_INVAL);
	assert_non_null(strstr(why, "twice"));
}

static void summary_quotes_the_numbers(void **state)
{
	static const char *const two[] = { "xs", "s" };
	struct autoscale_config c;
	char line[600];

	(void)state;
	memset(&c, 0, sizeof(c));
	policy_recipe(&c.policy);
	autoscale_config_summary(&c, false, line, sizeof(line));
	assert_non_null(strstr(line, "config (default):"));
	assert_non_null(strstr(line, "maxInstances=5"));
	assert_non_null(strstr(line, "cpuLow=20"));
	assert_non_null(strstr(line, "shapes=(all)"));
	c.policy.max_instances = 2;
	c.policy.cooldown_out_ms = 9000;
	set_shapes(&c, two, 2);
	autoscale_config_summary(&c, true, line, sizeof(line));
	assert_non_null(strstr(line, "config (deployment):"));
	assert_non_null(strstr(line, "maxInstances=2"));
	assert_non_null(strstr(line, "cooldownOutSeconds=9"));
	assert_non_null(strstr(line, "shapes=xs,s"));
	/* A short buffer is cut, never overrun. */
	autoscale_config_summary(&c, true, line, 20);
	assert_int_equal(strlen(line), 19);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_ladder_is_the_users),
		cmocka_unit_test(shapes_are_checked),
		cmocka_unit_test(summary_quotes_the_numbers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
