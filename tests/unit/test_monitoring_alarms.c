/* test_monitoring_alarms.c - the monitoring module's alarm definitions
 * inside a transaction of the caller's: created and deleted with it when
 * it commits, untouched when it is rolled back. A real store on files in a
 * temporary folder, the module on a real loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "monitoring/monitoring.h"
#include "store/store.h"
#include "tmpstore.h"
#include "util/err.h"

#define QUERY "CpuUtilization[1m]{resourceId = \"dep-1\"}.max() > 80"

struct fixture {
	struct tmpstore s;
	uv_loop_t loop;
	struct monitoring *m;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct monitoring_env env = { 0 };
	char diag[256];

	if (tmpstore_open(&fx->s, "alarms") != 0 ||
	    uv_loop_init(&fx->loop) != 0)
		return -1;
	env.loop = &fx->loop;
	env.store = fx->s.st;
	env.data_dir = fx->s.dir;
	env.sample_ms = 1000;
	env.eval_ms = 1000;
	if (monitoring_open(&env, &fx->m, diag, sizeof(diag)) != 0)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	monitoring_close(fx->m);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&fx->loop) != 0 || tmpstore_close(&fx->s) != 0)
		return -1;
	free(fx);
	return 0;
}

/* Creates an alarm on dep-1's CPU; its id goes into id (64 bytes). */
static int create(struct fixture *fx, char *id)
{
	struct monitoring_alarm_spec spec = {
		.given = MONITORING_ALARM_DISPLAY_NAME |
			 MONITORING_ALARM_NAMESPACE | MONITORING_ALARM_QUERY,
		.display_name = "high",
		.namespace = MONITORING_NAMESPACE,
		.query = QUERY,
	};
	struct monitoring_alarm a;
	struct fault f;
	int rc = monitoring_alarm_create(fx->m, &spec, &a, &f);

	if (rc == 0)
		snprintf(id, 64, "%s", a.id);
	return rc;
}

/* Whether alarm id is in the module, and whether its row is stored. */
static bool known(struct fixture *fx, const char *id)
{
	struct monitoring_alarm a;
	struct fault f;

	return monitoring_alarm_get(fx->m, id, &a, &f) == 0;
}

static bool stored(struct fixture *fx, const char *id)
{
	char *json = NULL;
	int rc = store_get(fx->s.st, "alarm", id, &json);

	free(json);
	return rc == 0;
}

static void create_rolled_back_leaves_nothing(void **state)
{
	struct fixture *fx = *state;
	char id[64], found[64];

	assert_int_equal(store_begin(fx->s.st), 0);
	assert_int_equal(create(fx, id), 0);
	/* Not evaluated, not found, before the commit. */
	assert_false(known(fx, id));
	assert_int_equal(monitoring_alarm_find(fx->m, "high", "dep-1", found,
					       sizeof(found)),
			 MDS_E_NOTFOUND);
	assert_int_equal(store_rollback(fx->s.st), 0);
	assert_false(known(fx, id));
	assert_false(stored(fx, id));
}

static void create_committed_is_there(void **state)
{
	struct fixture *fx = *state;
	char id[64], found[64];

	assert_int_equal(store_begin(fx->s.st), 0);
	assert_int_equal(create(fx, id), 0);
	assert_int_equal(store_commit(fx->s.st), 0);
	assert_true(known(fx, id));
	assert_true(stored(fx, id));
	assert_int_equal(monitoring_alarm_find(fx->m, "high", "dep-1", found,
					       sizeof(found)),
			 0);
	assert_string_equal(found, id);
}

static bool skip_all(void *arg, const char *id)
{
	(void)arg;
	(void)id;
	return true;
}

static void delete_rolled_back_keeps_the_alarm(void **state)
{
	struct fixture *fx = *state;
	struct fault f;
	char id[64], found[64];

	assert_int_equal(create(fx, id), 0);
	assert_true(known(fx, id));
	assert_int_equal(store_begin(fx->s.st), 0);
	assert_int_equal(monitoring_alarm_delete(fx->m, id, &f), 0);
	/* Still evaluated until the commit. */
	assert_true(known(fx, id));
	assert_int_equal(store_rollback(fx->s.st), 0);
	assert_true(known(fx, id));
	assert_true(stored(fx, id));
	assert_int_equal(monitoring_alarm_find_other(fx->m, "high", "dep-1",
						     skip_all, NULL, found,
						     sizeof(found)),
			 MDS_E_NOTFOUND);

	assert_int_equal(store_begin(fx->s.st), 0);
	assert_int_equal(monitoring_alarm_delete(fx->m, id, &f), 0);
	assert_int_equal(store_commit(fx->s.st), 0);
	assert_false(known(fx, id));
	assert_false(stored(fx, id));
}

static void outside_a_transaction_at_once(void **state)
{
	struct fixture *fx = *state;
	struct fault f;
	char id[64];

	assert_int_equal(create(fx, id), 0);
	assert_true(known(fx, id));
	assert_int_equal(monitoring_alarm_delete(fx->m, id, &f), 0);
	assert_false(known(fx, id));
	assert_false(stored(fx, id));
	assert_int_equal(monitoring_alarm_delete(fx->m, id, &f),
			 MDS_E_NOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			create_rolled_back_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(create_committed_is_there,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			delete_rolled_back_keeps_the_alarm, setup, teardown),
		cmocka_unit_test_setup_teardown(outside_a_transaction_at_once,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
