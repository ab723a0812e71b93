/* test_planner.c - zero-downtime update plans. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/planner.h"
#include "util/err.h"

/* Renders a plan as "S0 S1 W R D2 X2" for compact assertions. */
static const char *render(const struct plan *p)
{
	static char out[512];
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < p->n; i++) {
		const char *k = "?";

		switch (p->steps[i].kind) {
		case PLAN_START_INSTANCE: k = "S"; break;
		case PLAN_WAIT_READY: k = "W"; break;
		case PLAN_ROUTE: k = "R"; break;
		case PLAN_DRAIN_INSTANCE: k = "D"; break;
		case PLAN_STOP_INSTANCE: k = "X"; break;
		}
		if (p->steps[i].target >= 0)
			len += (size_t)snprintf(out + len, sizeof(out) - len,
						"%s%s%d", len ? " " : "", k,
						p->steps[i].target);
		else
			len += (size_t)snprintf(out + len, sizeof(out) - len,
						"%s%s", len ? " " : "", k);
	}
	return out;
}

static void create_starts_all_then_waits(void **state)
{
	struct plan p;

	(void)state;
	assert_int_equal(planner_plan(NULL, 0, 3, "s", &p), 0);
	assert_string_equal(render(&p), "S0 S1 S2 W");
	assert_int_equal(p.new_instances, 3);
	assert_false(p.held);
}

static void scale_out_keeps_existing(void **state)
{
	struct plan_instance cur[] = { { "s", PLAN_READY, 10, false } };
	struct plan p;

	(void)state;
	assert_int_equal(planner_plan(cur, 1, 3, "s", &p), 0);
	assert_string_equal(render(&p), "S0 S1 W");
	assert_false(p.held);
}

static void scale_in_removes_unready_then_newest(void **state)
{
	struct plan_instance cur[] = {
		{ "s", PLAN_READY, 10, false },
		{ "s", PLAN_READY, 30, false },
		{ "s", PLAN_STARTING, 20, false },
		{ "s", PLAN_READY, 20, false },
	};
	struct plan p;

	(void)state;
	assert_int_equal(planner_plan(cur, 4, 2, "s", &p), 0);
	/* The starting one first, then the newest ready one (index 1). */
	assert_string_equal(render(&p), "D2 D1 X2 X1");
	assert_int_equal(p.new_instances, 0);
}

static void shape_change_replaces_whole_set_held(void **state)
{
	struct plan_instance cur[] = {
		{ "s", PLAN_READY, 10, false },
		{ "s", PLAN_READY, 20, false },
	};
	struct plan p;

	(void)state;
	assert_int_equal(planner_plan(cur, 2, 2, "m", &p), 0);
	assert_string_equal(render(&p), "S0 S1 W R D1 D0 X1 X0");
	assert_true(p.held);
}

static void shape_change_with_new_count(void **state)
{
	struct plan_instance cur[] = { { "s", PLAN_READY, 10, false } };
	struct plan p;

	(void)state;
	assert_int_equal(planner_plan(cur, 1, 3, "m", &p), 0);
	assert_string_equal(render(&p), "S0 S1 S2 W R D0 X0");
}

/* A new command on the same shape: the stale set is replaced held, and a
 * stale instance is never kept even when the count shrinks. */
static void stale_spec_replaces_whole_set_held(void **state)
{
	struct plan_instance cur[] = {
		{ "s", PLAN_READY, 10, true },
		{ "s", PLAN_READY, 20, true },
		{ "s", PLAN_READY, 30, false },
	};
	struct plan p;

	(void)state;
	assert_int_equal(planner_plan(cur, 3, 2, "s", &p), 0);
	assert_string_equal(render(&p), "S0 W R D1 D0 X1 X0");
	assert_int_equal(p.new_instances, 1);
	assert_true(p.held);
}

static void nothing_to_do(void **state)
{
	struct plan_instance cur[] = {
		{ "s", PLAN_READY, 10, false },
		{ "s", PLAN_STOPPED, 5, false },
		{ "m", PLAN_FAILED, 6, false },
	};
	struct plan p;

	(void)state;
	assert_int_equal(planner_plan(cur, 3, 1, "s", &p), 0);
	assert_int_equal(p.n, 0);
}

static void delete_drains_everything(void **state)
{
	struct plan_instance cur[] = {
		{ "s", PLAN_READY, 10, false },
		{ "m", PLAN_STARTING, 20, false },
		{ "s", PLAN_STOPPED, 5, false },
	};
	struct plan p;

	(void)state;
	assert_int_equal(planner_plan(cur, 3, 0, NULL, &p), 0);
	assert_string_equal(render(&p), "D1 D0 X1 X0");
}

static void resume_after_interrupted_shape_change(void **state)
{
	/* A crash after two of three new instances started: planning again
	 * keeps them, starts the third, and still holds routing. */
	struct plan_instance cur[] = {
		{ "s", PLAN_READY, 10, false },
		{ "m", PLAN_READY, 40, false },
		{ "m", PLAN_STARTING, 41, false },
	};
	struct plan p;

	(void)state;
	assert_int_equal(planner_plan(cur, 3, 3, "m", &p), 0);
	assert_string_equal(render(&p), "S0 W R D0 X0");
	assert_true(p.held);
}

static void resume_after_switch_finishes_drain(void **state)
{
	/* A crash after the switch: the new set serves, the old one is
	 * draining; planning again only drains and stops. */
	struct plan_instance cur[] = {
		{ "s", PLAN_DRAINING, 10, false },
		{ "m", PLAN_READY, 40, false },
	};
	struct plan p;

	(void)state;
	assert_int_equal(planner_plan(cur, 2, 1, "m", &p), 0);
	assert_string_equal(render(&p), "D0 X0");
}

static void too_many_is_refused(void **state)
{
	struct plan p;

	(void)state;
	assert_int_equal(planner_plan(NULL, 0, PLAN_MAX_INSTANCES + 1, "s", &p),
			 MDS_E_LIMIT);
	assert_string_equal(planner_step_name(PLAN_ROUTE), "ROUTE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_starts_all_then_waits),
		cmocka_unit_test(scale_out_keeps_existing),
		cmocka_unit_test(scale_in_removes_unready_then_newest),
		cmocka_unit_test(shape_change_replaces_whole_set_held),
		cmocka_unit_test(shape_change_with_new_count),
		cmocka_unit_test(stale_spec_replaces_whole_set_held),
		cmocka_unit_test(nothing_to_do),
		cmocka_unit_test(delete_drains_everything),
		cmocka_unit_test(resume_after_interrupted_shape_change),
		cmocka_unit_test(resume_after_switch_finishes_drain),
		cmocka_unit_test(too_many_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
