/* test_idrange.c - ids handed out from a range (config instanceUids). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/idrange.h"
#include "util/err.h"

static void parse_and_format(void **state)
{
	struct idrange r;
	char diag[200], text[IDRANGE_TEXT_MAX];

	(void)state;
	assert_int_equal(idrange_parse("60000-60999", &r, diag, sizeof(diag)),
			 0);
	assert_int_equal(r.lo, 60000);
	assert_int_equal(r.hi, 60999);
	assert_int_equal(idrange_size(&r), 1000);
	idrange_format(&r, text, sizeof(text));
	assert_string_equal(text, "60000-60999");
	assert_true(idrange_has(&r, 60000) && idrange_has(&r, 60999));
	assert_false(idrange_has(&r, 59999) || idrange_has(&r, 61000));

	assert_int_equal(idrange_parse("7-7", &r, diag, sizeof(diag)), 0);
	assert_int_equal(idrange_size(&r), 1);
	assert_int_equal(idrange_parse("1-2147483646", &r, diag, sizeof(diag)),
			 0);
	idrange_format(&r, text, sizeof(text));
	assert_string_equal(text, "1-2147483646");

	/* "" turns it off. */
	assert_int_equal(idrange_parse("", &r, diag, sizeof(diag)), 0);
	assert_int_equal(r.lo, 0);
	assert_int_equal(idrange_size(&r), 0);
	assert_false(idrange_has(&r, 0));
	idrange_format(&r, text, sizeof(text));
	assert_string_equal(text, "");
}

static void parse_refuses_bad_ranges(void **state)
{
	static const char *const bad[] = {
		"60000", "60000-", "-60999", "60999-60000", "0-10", "a-b",
		"1-2147483647", "1-99999999999999999999", " 1-2", "1 -2",
		"1-2 ", "+1-2", "1--2", "1-2-3", "0x10-0x20",
	};
	struct idrange r = { 5, 6 };
	char diag[200];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		diag[0] = '\0';
		assert_int_equal(idrange_parse(bad[i], &r, diag, sizeof(diag)),
				 MDS_E_INVAL);
		assert_true(diag[0] != '\0');
		/* Nothing changed. */
		assert_int_equal(r.lo, 5);
		assert_int_equal(r.hi, 6);
	}
	assert_int_equal(idrange_parse("0-10", &r, diag, sizeof(diag)),
			 MDS_E_INVAL);
	assert_non_null(strstr(diag, "root"));
}

/* Takes the ids that arg (a NUL-ended list) holds. */
static bool taken_by_list(void *arg, uint32_t id)
{
	const uint32_t *v = arg;

	for (; *v != 0; v++)
		if (*v == id)
			return true;
	return false;
}

static void pick_lowest_free(void **state)
{
	struct idrange r = { 100, 104 };
	uint32_t used[] = { 102, 100, 7, 101, 900 }, id = 0;
	uint32_t others[] = { 103, 0 };

	(void)state;
	assert_int_equal(idrange_pick(&r, NULL, 0, NULL, NULL, &id), 0);
	assert_int_equal(id, 100);
	/* In any order, ids outside the range aside. */
	assert_int_equal(idrange_pick(&r, used, 5, NULL, NULL, &id), 0);
	assert_int_equal(id, 103);
	/* An id someone else holds (a user of the system) is skipped. */
	assert_int_equal(idrange_pick(&r, used, 5, taken_by_list, others,
				      &id), 0);
	assert_int_equal(id, 104);
	/* A freed id is given out again. */
	assert_int_equal(idrange_pick(&r, used + 1, 4, taken_by_list, others,
				      &id), 0);
	assert_int_equal(id, 102);
}

static void pick_refuses_when_exhausted(void **state)
{
	struct idrange r = { 100, 102 }, none = { 0, 0 };
	uint32_t used[] = { 100, 101, 102 }, twice[] = { 100, 100, 101 };
	uint32_t others[] = { 102, 0 }, id = 42;

	(void)state;
	assert_int_equal(idrange_pick(&r, used, 3, NULL, NULL, &id),
			 MDS_E_LIMIT);
	assert_int_equal(id, 42);
	assert_int_equal(idrange_pick(&r, twice, 3, taken_by_list, others,
				      &id), MDS_E_LIMIT);
	assert_int_equal(idrange_pick(&none, NULL, 0, NULL, NULL, &id),
			 MDS_E_LIMIT);
	/* The range's last id, at the top of what a range may hold. */
	r = (struct idrange){ IDRANGE_ID_MAX - 1, IDRANGE_ID_MAX };
	used[0] = IDRANGE_ID_MAX - 1;
	assert_int_equal(idrange_pick(&r, used, 1, NULL, NULL, &id), 0);
	assert_int_equal(id, IDRANGE_ID_MAX);
	used[1] = IDRANGE_ID_MAX;
	assert_int_equal(idrange_pick(&r, used, 2, NULL, NULL, &id),
			 MDS_E_LIMIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_and_format),
		cmocka_unit_test(parse_refuses_bad_ranges),
		cmocka_unit_test(pick_lowest_free),
		cmocka_unit_test(pick_refuses_when_exhausted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
