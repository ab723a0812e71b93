/* test_route.c - least-outstanding routing choice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/route.h"

static void empty_has_no_choice(void **state)
{
	uint32_t cursor = 0;

	(void)state;
	assert_int_equal(route_pick(NULL, 0, &cursor), -1);
}

static void picks_least_outstanding(void **state)
{
	uint32_t out[] = { 3, 1, 2 };
	uint32_t cursor = 0;

	(void)state;
	assert_int_equal(route_pick(out, 3, &cursor), 1);
	out[1] = 5;
	assert_int_equal(route_pick(out, 3, &cursor), 2);
}

static void ties_rotate_evenly(void **state)
{
	uint32_t out[] = { 0, 0, 0, 0 };
	uint32_t hits[4] = { 0 };
	uint32_t cursor = 0;

	(void)state;
	for (int i = 0; i < 400; i++)
		hits[route_pick(out, 4, &cursor)]++;
	for (int i = 0; i < 4; i++)
		assert_int_equal(hits[i], 100);
}

static void simulated_load_stays_balanced(void **state)
{
	/* Each pick adds a request; every third step the busiest finishes
	 * one. Outstanding counts must never differ by more than one. */
	uint32_t out[3] = { 0 };
	uint32_t cursor = 7;

	(void)state;
	for (int i = 0; i < 300; i++) {
		uint32_t lo = UINT32_MAX, hi = 0;

		out[route_pick(out, 3, &cursor)]++;
		if (i % 3 == 2) {
			int busiest = 0;

			for (int k = 1; k < 3; k++)
				if (out[k] > out[busiest])
					busiest = k;
			out[busiest]--;
		}
		for (int k = 0; k < 3; k++) {
			lo = out[k] < lo ? out[k] : lo;
			hi = out[k] > hi ? out[k] : hi;
		}
		assert_true(hi - lo <= 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(empty_has_no_choice),
		cmocka_unit_test(picks_least_outstanding),
		cmocka_unit_test(ties_rotate_evenly),
		cmocka_unit_test(simulated_load_stays_balanced),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
