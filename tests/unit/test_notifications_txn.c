/* test_notifications_txn.c - topics and subscriptions inside a transaction
 * of the caller's: a creation is there at once and goes with a rollback, a
 * deletion takes effect when the transaction commits and none when it is
 * rolled back. A real store on files in a temporary folder, the module on
 * a real loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "notify/notifications.h"
#include "store/store.h"
#include "tmpstore.h"
#include "util/err.h"

struct fixture {
	struct tmpstore s;
	uv_loop_t loop;
	struct notifications *n;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct notifications_env env = { 0 };
	char diag[256];

	if (tmpstore_open(&fx->s, "notify") != 0 ||
	    uv_loop_init(&fx->loop) != 0)
		return -1;
	env.loop = &fx->loop;
	env.store = fx->s.st;
	env.data_dir = fx->s.dir;
	if (notifications_open(&env, &fx->n, diag, sizeof(diag)) != 0)
		return -1;
	*state = fx;
	return 0;
}

static void closed(void *arg)
{
	*(bool *)arg = true;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	bool done = false;

	notifications_close(fx->n, closed, &done);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	if (!done || uv_loop_close(&fx->loop) != 0 ||
	    tmpstore_close(&fx->s) != 0)
		return -1;
	free(fx);
	return 0;
}

/* Makes a topic named name and a COMMAND subscription to it; their ids
 * go into topic and sub (64 bytes each). */
static void make(struct fixture *fx, const char *name, char *topic,
		 char *sub)
{
	struct notifications_topic_spec ts = { .name = "" };
	struct notifications_subscription_spec ss;
	struct notifications_topic t;
	struct notifications_subscription s;
	char *argv[] = { "/bin/true", NULL };
	struct fault f;

	snprintf(ts.name, sizeof(ts.name), "%s", name);
	assert_int_equal(notifications_topic_create(fx->n, &ts, &t, &f), 0);
	snprintf(topic, 64, "%s", t.id);
	notifications_subscription_spec_init(&ss);
	snprintf(ss.topic_id, sizeof(ss.topic_id), "%s", topic);
	ss.protocol = NOTIFICATIONS_COMMAND;
	ss.command = argv;
	assert_int_equal(notifications_subscription_create(fx->n, &ss, &s, &f),
			 0);
	snprintf(sub, 64, "%s", s.id);
}

/* Whether the topic (the subscription) is in the module, and whether its
 * row is stored. */
static bool topic_known(struct fixture *fx, const char *id)
{
	struct notifications_topic t;
	struct fault f;

	return notifications_topic_get(fx->n, id, &t, &f) == 0;
}

static bool sub_known(struct fixture *fx, const char *id)
{
	struct notifications_subscription s;
	struct fault f;

	return notifications_subscription_get(fx->n, id, &s, &f) == 0;
}

static bool stored(struct fixture *fx, const char *kind, const char *id)
{
	char *json = NULL;
	int rc = store_get(fx->s.st, kind, id, &json);

	free(json);
	return rc == 0;
}

static void create_rolled_back_leaves_nothing(void **state)
{
	struct fixture *fx = *state;
	char topic[64], sub[64];

	assert_int_equal(store_begin(fx->s.st), 0);
	/* The subscription finds the topic made in the same transaction. */
	make(fx, "t1", topic, sub);
	assert_true(topic_known(fx, topic));
	assert_true(sub_known(fx, sub));
	assert_int_equal(store_rollback(fx->s.st), 0);
	assert_false(topic_known(fx, topic));
	assert_false(sub_known(fx, sub));
	assert_false(stored(fx, "topic", topic));
	assert_false(stored(fx, "subscription", sub));
	/* Its name is free again. */
	make(fx, "t1", topic, sub);
	assert_true(stored(fx, "topic", topic));
}

static void create_committed_is_there(void **state)
{
	struct fixture *fx = *state;
	char topic[64], sub[64];

	assert_int_equal(store_begin(fx->s.st), 0);
	make(fx, "t1", topic, sub);
	assert_int_equal(store_commit(fx->s.st), 0);
	assert_true(topic_known(fx, topic));
	assert_true(sub_known(fx, sub));
	assert_true(stored(fx, "topic", topic));
	assert_true(stored(fx, "subscription", sub));
}

static void delete_rolled_back_keeps_them(void **state)
{
	struct fixture *fx = *state;
	struct fault f;
	char topic[64], sub[64];

	make(fx, "t1", topic, sub);
	assert_int_equal(store_begin(fx->s.st), 0);
	assert_int_equal(notifications_subscription_delete(fx->n, sub, &f), 0);
	assert_int_equal(notifications_topic_delete(fx->n, topic, &f), 0);
	/* Both stay until the commit. */
	assert_true(topic_known(fx, topic));
	assert_true(sub_known(fx, sub));
	assert_int_equal(store_rollback(fx->s.st), 0);
	assert_true(topic_known(fx, topic));
	assert_true(sub_known(fx, sub));
	assert_true(stored(fx, "topic", topic));
	assert_true(stored(fx, "subscription", sub));

	assert_int_equal(store_begin(fx->s.st), 0);
	assert_int_equal(notifications_subscription_delete(fx->n, sub, &f), 0);
	assert_int_equal(notifications_topic_delete(fx->n, topic, &f), 0);
	assert_int_equal(store_commit(fx->s.st), 0);
	assert_false(topic_known(fx, topic));
	assert_false(sub_known(fx, sub));
	assert_false(stored(fx, "topic", topic));
	assert_false(stored(fx, "subscription", sub));
}

static void outside_a_transaction_at_once(void **state)
{
	struct fixture *fx = *state;
	struct fault f;
	char topic[64], sub[64];

	make(fx, "t1", topic, sub);
	assert_true(stored(fx, "topic", topic));
	assert_int_equal(notifications_subscription_delete(fx->n, sub, &f), 0);
	assert_false(sub_known(fx, sub));
	assert_false(stored(fx, "subscription", sub));
	assert_int_equal(notifications_subscription_delete(fx->n, sub, &f),
			 MDS_E_NOTFOUND);
	make(fx, "t2", topic, sub);
	/* A topic takes its subscriptions with it. */
	assert_int_equal(notifications_topic_delete(fx->n, topic, &f), 0);
	assert_false(topic_known(fx, topic));
	assert_false(sub_known(fx, sub));
	assert_false(stored(fx, "subscription", sub));
	assert_int_equal(notifications_topic_delete(fx->n, topic, &f),
			 MDS_E_NOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			create_rolled_back_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(create_committed_is_there,
						setup, teardown),
		cmocka_unit_test_setup_teardown(delete_rolled_back_keeps_them,
						setup, teardown),
		cmocka_unit_test_setup_teardown(outside_a_transaction_at_once,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
