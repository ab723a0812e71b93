/* test_turn.c - the loop turn's shared budget (util/turn.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/turn.h"

#define MS 1000000u

/* Spends CPU on this thread until the turn has used at least ns. */
static void spend(uint64_t ns)
{
	volatile uint64_t x = 0;

	while (turn_spent_ns() < ns)
		for (int i = 0; i < 10000; i++)
			x += (uint64_t)i;
}

/* Before any turn begins (a thread without a loop), a slice is what it
 * asks for, even past the budget. */
static void no_turn_no_cut(void **state)
{
	(void)state;
	assert_int_equal(turn_spent_ns(), 0);
	assert_int_equal(turn_slice_ns(4 * MS), 4 * MS);
	assert_int_equal(turn_slice_ns(20 * MS), 20 * MS);
}

/* In a turn, a slice gets what is left of the budget, never less than the
 * minimum nor more than it asked for; a new turn starts afresh. */
static void slices_share_the_budget(void **state)
{
	uint64_t s;

	(void)state;
	(void)turn_begin();
	assert_true(turn_spent_ns() < TURN_BUDGET_NS);
	assert_int_equal(turn_slice_ns(TURN_MIN_SLICE_NS / 2),
			 TURN_MIN_SLICE_NS / 2);
	spend(3 * MS);
	s = turn_slice_ns(4 * MS);
	assert_true(s <= TURN_BUDGET_NS - 3 * MS);
	assert_true(s >= TURN_MIN_SLICE_NS);
	spend(TURN_BUDGET_NS + MS);
	assert_int_equal(turn_slice_ns(4 * MS), TURN_MIN_SLICE_NS);
	assert_int_equal(turn_slice_ns(TURN_MIN_SLICE_NS / 4),
			 TURN_MIN_SLICE_NS / 4);
	/* The turn that ends took what was spent in it. */
	assert_true(turn_begin() >= TURN_BUDGET_NS + MS);
	assert_true(turn_spent_ns() < MS);
	assert_true(turn_slice_ns(4 * MS) > 3 * MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(no_turn_no_cut),
		cmocka_unit_test(slices_share_the_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
