/* test_uidpool.c - one pool of instanceUids for every module that hands
 * them out: a pick asks every holder, a uid is free once no holder has it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>

#include "daemon/uidpool.h"
#include "util/err.h"

/* A range no user or group of a test machine has (checked). */
#define LO 64200u
#define HI 64203u

/* A holder: the uids its owners hold (0: a free slot). */
struct owners {
	uint32_t uid[4];
};

static void hold(void *arg, struct uidpool_ids *ids)
{
	const struct owners *o = arg;

	for (size_t i = 0; i < 4; i++)
		uidpool_ids_add(ids, o->uid[i]);
}

static int setup(void **state)
{
	(void)state;
	for (uint32_t id = LO; id <= HI; id++)
		if (getpwuid(id) != NULL || getgrgid(id) != NULL)
			return -1;
	return 0;
}

static void pick_asks_every_holder(void **state)
{
	struct idrange r = { LO, HI };
	struct uidpool *p = uidpool_new(&r, true);
	struct owners deps = { { 0 } }, fns = { { 0 } };
	struct fault f;
	uint32_t uid;

	(void)state;
	assert_true(uidpool_on(p));
	uidpool_hold(p, hold, &deps);
	uidpool_hold(p, hold, &fns);
	assert_int_equal(uidpool_pick(p, &uid, &f), 0);
	assert_int_equal(uid, LO);
	deps.uid[0] = uid;
	assert_int_equal(uidpool_pick(p, &uid, &f), 0);
	assert_int_equal(uid, LO + 1);
	fns.uid[0] = uid;
	fns.uid[1] = LO + 3;
	assert_int_equal(uidpool_pick(p, &uid, &f), 0);
	assert_int_equal(uid, LO + 2);
	deps.uid[1] = uid;
	assert_int_equal(uidpool_count(p, LO + 1), 1);
	assert_int_equal(uidpool_count(p, 0), 0);

	/* Full: refused, naming the range. */
	assert_int_equal(uidpool_pick(p, &uid, &f), MDS_E_LIMIT);
	assert_non_null(strstr(f.message, "instanceUids 64200-64203"));

	/* An owner gone from its holder frees its uid. */
	fns.uid[0] = 0;
	assert_int_equal(uidpool_pick(p, &uid, &f), 0);
	assert_int_equal(uid, LO + 1);

	/* Two owners of one uid are counted. */
	fns.uid[0] = LO;
	assert_int_equal(uidpool_count(p, LO), 2);

	/* A holder forgotten (its module closed) holds nothing. */
	uidpool_forget(p, &deps);
	assert_int_equal(uidpool_count(p, LO + 2), 0);
	uidpool_free(p);
}

static void off_gives_nothing(void **state)
{
	struct idrange r = { LO, HI }, none = { 0, 0 };
	struct uidpool *p = uidpool_new(&r, false);

	(void)state;
	assert_false(uidpool_on(p));
	uidpool_free(p);
	p = uidpool_new(&none, true);
	assert_false(uidpool_on(p));
	uidpool_free(p);
	assert_false(uidpool_on(NULL));
	uidpool_hold(NULL, hold, NULL);
	uidpool_forget(NULL, NULL);
	uidpool_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pick_asks_every_holder),
		cmocka_unit_test(off_gives_nothing),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
