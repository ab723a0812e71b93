/* test_shape.c - the shape ladder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/shape.h"
#include "util/err.h"

static void default_ladder_is_ordered(void **state)
{
	struct shape_ladder l;

	(void)state;
	shape_ladder_default(&l);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.v[0].name, "local.xs");
	for (size_t i = 1; i < l.n; i++) {
		assert_true(l.v[i].mcpu >= l.v[i - 1].mcpu);
		assert_true(l.v[i].mem_bytes > l.v[i - 1].mem_bytes);
	}
	/* The largest rung fits a 2-core machine. */
	assert_true(l.v[l.n - 1].mcpu <= 2000);
}

static void step_up_and_down_within_bounds(void **state)
{
	struct shape_ladder l;

	(void)state;
	shape_ladder_default(&l);
	assert_string_equal(shape_step(&l, "local.s", 1)->name, "local.m");
	assert_string_equal(shape_step(&l, "local.s", -1)->name, "local.xs");
	assert_string_equal(shape_step(&l, "local.xs", 3)->name, "local.l");
	assert_null(shape_step(&l, "local.l", 1));
	assert_null(shape_step(&l, "local.xs", -1));
	assert_null(shape_step(&l, "nope", 1));
	assert_int_equal(shape_index(&l, "local.m"), 2);
	assert_int_equal(shape_index(&l, "LOCAL.M"), -1);
}

static void add_rejects_bad_rungs(void **state)
{
	struct shape_ladder l;
	char diag[128];

	(void)state;
	shape_ladder_init(&l);
	assert_int_equal(shape_ladder_add(&l, "a", 500, 1 << 20, diag,
					  sizeof(diag)), 0);
	assert_int_equal(shape_ladder_add(&l, "a", 600, 2 << 20, diag,
					  sizeof(diag)), MDS_E_INVAL);
	assert_non_null(strstr(diag, "twice"));
	assert_int_equal(shape_ladder_add(&l, "b", 400, 2 << 20, diag,
					  sizeof(diag)), MDS_E_INVAL);
	assert_non_null(strstr(diag, "smallest first"));
	assert_int_equal(shape_ladder_add(&l, "c", 500, 1 << 20, diag,
					  sizeof(diag)), MDS_E_INVAL);
	assert_int_equal(shape_ladder_add(&l, "has space", 900, 4 << 20, diag,
					  sizeof(diag)), MDS_E_INVAL);
	assert_int_equal(shape_ladder_add(&l, "", 900, 4 << 20, diag,
					  sizeof(diag)), MDS_E_INVAL);
	assert_int_equal(shape_ladder_add(&l, "z", 0, 4 << 20, diag,
					  sizeof(diag)), MDS_E_INVAL);
	assert_int_equal(l.n, 1);
	for (int i = 1; i < SHAPE_LADDER_MAX; i++) {
		char name[16];

		snprintf(name, sizeof(name), "r%d", i);
		assert_int_equal(shape_ladder_add(&l, name, 500 + (uint32_t)i,
						  1 << 20, NULL, 0), 0);
	}
	assert_int_equal(shape_ladder_add(&l, "over", 10000, 1ull << 40, diag,
					  sizeof(diag)), MDS_E_LIMIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(default_ladder_is_ordered),
		cmocka_unit_test(step_up_and_down_within_bounds),
		cmocka_unit_test(add_rejects_bad_rungs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
