/* test_policy.c - the autoscale decision as a pure function. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "core/policy.h"
#include "util/err.h"

static struct shape_ladder ladder;

static struct policy_input input(const char *title, uint32_t n,
				 const char *shape, double value)
{
	struct policy_input in = {
		.type = "OK_TO_FIRING", .title = title,
		.lifecycle_state = "ACTIVE", .instance_count = n,
		.shape = shape, .ladder = &ladder, .value = value,
		.now_ms = 1000000,
	};

	return in;
}

static int setup(void **state)
{
	(void)state;
	shape_ladder_default(&ladder);
	return 0;
}

static void recipe_moves(void **state)
{
	struct policy p;
	struct policy_history h = { 0 };
	struct policy_input in;
	struct policy_decision d;

	(void)state;
	policy_recipe(&p);
	in = input(POLICY_TITLE_HIGH_CPU, 1, "local.s", NAN);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_SCALE_OUT);
	assert_int_equal(d.new_count, 2);
	assert_string_equal(d.create_low_alarm, "cpu");
	in = input(POLICY_TITLE_LOW_CPU, 3, "local.s", NAN);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_SCALE_IN);
	assert_int_equal(d.new_count, 2);
	assert_false(d.delete_alarm);
	in = input(POLICY_TITLE_HIGH_MEM, 2, "local.s", NAN);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_SHAPE_UP);
	assert_string_equal(d.new_shape, "local.m");
	assert_int_equal(d.new_count, 2);
	assert_string_equal(d.create_low_alarm, "mem");
	in = input(POLICY_TITLE_LOW_MEM, 2, "local.m", NAN);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_SHAPE_DOWN);
	assert_string_equal(d.new_shape, "local.s");
	assert_false(d.delete_alarm);
}

static void recipe_bounds(void **state)
{
	struct policy p;
	struct policy_history h = { 0 };
	struct policy_input in;
	struct policy_decision d;

	(void)state;
	policy_recipe(&p);
	in = input(POLICY_TITLE_HIGH_CPU, p.max_instances, "local.s", NAN);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_NONE);
	assert_non_null(strstr(d.reason, "maximum"));
	/* At the floor the scale-down alarm is deleted, nothing scales. */
	in = input(POLICY_TITLE_LOW_CPU, 1, "local.s", NAN);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_NONE);
	assert_true(d.delete_alarm);
	/* Reaching the floor deletes it too. */
	in = input(POLICY_TITLE_LOW_CPU, 2, "local.s", NAN);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.new_count, 1);
	assert_true(d.delete_alarm);
	in = input(POLICY_TITLE_HIGH_MEM, 1, "local.l", NAN);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_NONE);
	in = input(POLICY_TITLE_LOW_MEM, 1, "local.xs", NAN);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_NONE);
	assert_true(d.delete_alarm);
	in = input(POLICY_TITLE_LOW_MEM, 1, "local.s", NAN);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_string_equal(d.new_shape, "local.xs");
	assert_true(d.delete_alarm);
}

static void only_firing_messages_on_active_deployments_act(void **state)
{
	struct policy p;
	struct policy_history h = { 0 };
	struct policy_input in;
	struct policy_decision d;
	const char *types[] = { "FIRING_TO_OK", "RESET", "", NULL };

	(void)state;
	policy_recipe(&p);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		in = input(POLICY_TITLE_HIGH_CPU, 1, "local.s", NAN);
		in.type = types[i];
		assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
		assert_int_equal(d.move, POLICY_NONE);
	}
	in = input(POLICY_TITLE_HIGH_CPU, 1, "local.s", NAN);
	in.type = "REPEAT";
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_SCALE_OUT);
	in.lifecycle_state = "UPDATING";
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_NONE);
	assert_non_null(strstr(d.reason, "UPDATING"));
	in = input("something_else", 1, "local.s", NAN);
	assert_int_equal(policy_decide(&p, &h, &in, &d), MDS_E_INVAL);
	assert_non_null(strstr(d.reason, "something_else"));
}

static void cooldown_gives_one_scale_out_per_load_step(void **state)
{
	struct policy p;
	struct policy_history h = { 0 };
	struct policy_input in;
	struct policy_decision d;

	(void)state;
	policy_default(&p);
	in = input(POLICY_TITLE_HIGH_CPU, 1, "local.s", 90);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_SCALE_OUT);
	h.last_out_ms = in.now_ms;
	/* REPEATs during the cooldown do nothing. */
	in.type = "REPEAT";
	in.instance_count = 2;
	in.now_ms += p.cooldown_out_ms - 1;
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_NONE);
	assert_non_null(strstr(d.reason, "cooldown"));
	in.now_ms += 1;
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_SCALE_OUT);
	/* A scale-in right after a scale-out waits too. */
	in = input(POLICY_TITLE_LOW_CPU, 2, "local.s", 5);
	in.now_ms = h.last_out_ms + 1000;
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_NONE);
}

static void proportional_step_bounded_by_maximum(void **state)
{
	struct policy p;
	struct policy_history h = { 0 };
	struct policy_input in;
	struct policy_decision d;

	(void)state;
	policy_default(&p);
	p.max_instances = 8;
	p.cpu_target = 30;
	/* 90% against a 30% target: three times the capacity needed. */
	in = input(POLICY_TITLE_HIGH_CPU, 2, "local.s", 90);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.new_count, 6);
	in = input(POLICY_TITLE_HIGH_CPU, 4, "local.s", 90);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.new_count, 8);
	/* A small overload is still at least one step. */
	in = input(POLICY_TITLE_HIGH_CPU, 4, "local.s", 31);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.new_count, 5);
}

static void hysteresis_refuses_flapping_moves(void **state)
{
	struct policy p;
	struct policy_history h = { 0 };
	struct policy_input in;
	struct policy_decision d;

	(void)state;
	policy_default(&p); /* cpu_high 70, mem_high 80 */
	/* 40% on 2 instances would be 80% on 1: refused. */
	in = input(POLICY_TITLE_LOW_CPU, 2, "local.s", 40);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_NONE);
	assert_non_null(strstr(d.reason, "hysteresis"));
	in.value = 20; /* 40% on 1: fine */
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_SCALE_IN);
	/* 50% of 1 GiB would be 100% of 512 MiB: refused. */
	in = input(POLICY_TITLE_LOW_MEM, 1, "local.m", 50);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_NONE);
	in.value = 25;
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_SHAPE_DOWN);
}

static void validation(void **state)
{
	struct policy p;
	char diag[128];

	(void)state;
	policy_default(&p);
	assert_int_equal(policy_validate(&p, diag, sizeof(diag)), 0);
	policy_recipe(&p);
	assert_int_equal(policy_validate(&p, diag, sizeof(diag)), 0);
	p.min_instances = 0; /* scale to zero when idle */
	assert_int_equal(policy_validate(&p, diag, sizeof(diag)), 0);
	p.max_instances = 0;
	assert_int_equal(policy_validate(&p, diag, sizeof(diag)), MDS_E_INVAL);
	policy_recipe(&p);
	p.cpu_low = 90;
	assert_int_equal(policy_validate(&p, diag, sizeof(diag)), MDS_E_INVAL);
	assert_non_null(strstr(diag, "low < high"));
	assert_string_equal(policy_move_name(POLICY_SHAPE_UP), "SHAPE_UP");
}

/* The mdscale profile: the rule sets the count, so CPU alarms do nothing;
 * memory still moves the shape. Its rule settings are checked. */
static void mdscale_profile_leaves_the_count_to_the_rule(void **state)
{
	struct policy p;
	struct policy_history h = { 0 };
	struct policy_input in;
	struct policy_decision d;
	char diag[200];

	(void)state;
	assert_int_equal(policy_profile("mdscale", &p), 0);
	assert_string_equal(p.profile, "mdscale");
	assert_true(policy_uses_rule(&p));
	assert_int_equal(policy_validate(&p, diag, sizeof(diag)), 0);
	in = input(POLICY_TITLE_HIGH_CPU, 1, "local.s", 95);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_NONE);
	assert_non_null(strstr(d.reason, "mdscale"));
	in = input(POLICY_TITLE_LOW_CPU, 3, "local.s", 1);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_NONE);
	in = input(POLICY_TITLE_HIGH_MEM, 1, "local.s", 95);
	assert_int_equal(policy_decide(&p, &h, &in, &d), 0);
	assert_int_equal(d.move, POLICY_SHAPE_UP);
	/* The other profiles do not use it. */
	assert_int_equal(policy_profile("recipe", &p), 0);
	assert_false(policy_uses_rule(&p));
	assert_int_equal(policy_profile("fastest", &p), MDS_E_NOTFOUND);
	/* Its settings, validated. */
	policy_mdscale(&p);
	p.rule_target = 0;
	assert_int_equal(policy_validate(&p, diag, sizeof(diag)), MDS_E_INVAL);
	assert_non_null(strstr(diag, "targetUtilization"));
	policy_mdscale(&p);
	p.rule_up_ms = 0;
	assert_int_equal(policy_validate(&p, diag, sizeof(diag)), MDS_E_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(recipe_moves),
		cmocka_unit_test(recipe_bounds),
		cmocka_unit_test(only_firing_messages_on_active_deployments_act),
		cmocka_unit_test(cooldown_gives_one_scale_out_per_load_step),
		cmocka_unit_test(proportional_step_bounded_by_maximum),
		cmocka_unit_test(hysteresis_refuses_flapping_moves),
		cmocka_unit_test(validation),
		cmocka_unit_test(mdscale_profile_leaves_the_count_to_the_rule),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
