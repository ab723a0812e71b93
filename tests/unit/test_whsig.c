/*
 * test_whsig.c - Standard Webhooks signatures: the specification's
 * published test vector, the tolerance window, replays, bad secrets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "notify/whsig.h"
#include "store/store.h"
#include "util/err.h"

/* The test vector of the Standard Webhooks specification. */
#define V_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define V_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define V_TS 1614265330
#define V_TS_S "1614265330"
#define V_BODY "{\"test\": 2432232314}"
#define V_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static int verify(const char *secret, const char *id, const char *ts,
		  const char *sig, int64_t now, struct whsig_seen *seen,
		  char *why)
{
	return whsig_verify(secret, id, ts, sig, V_BODY, strlen(V_BODY), now,
			    300, seen, why, 256);
}

static void test_spec_vector(void **state)
{
	char sig[WHSIG_SIG_MAX], why[256];

	(void)state;
	assert_int_equal(whsig_sign(V_SECRET, V_ID, V_TS, V_BODY,
				    strlen(V_BODY), sig), 0);
	assert_string_equal(sig, V_SIG);
	assert_int_equal(verify(V_SECRET, V_ID, V_TS_S, V_SIG, V_TS, NULL,
				why), 0);
	/* One matching entry in a list is enough (key rotation). */
	assert_int_equal(verify(V_SECRET, V_ID, V_TS_S,
				"v1,AAAA v1a,xyz " V_SIG, V_TS, NULL, why),
			 0);
}

static void test_refusals(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(verify(V_SECRET, V_ID, V_TS_S, V_SIG, V_TS + 301,
				NULL, why), MDS_E_UNAUTH);
	assert_non_null(strstr(why, "tolerance"));
	assert_int_equal(verify(V_SECRET, V_ID, V_TS_S, V_SIG, V_TS - 301,
				NULL, why), MDS_E_UNAUTH);
	assert_int_equal(verify(V_SECRET, V_ID, V_TS_S, V_SIG, V_TS + 300,
				NULL, why), 0);
	assert_int_equal(verify(V_SECRET, "msg_other", V_TS_S, V_SIG, V_TS,
				NULL, why), MDS_E_UNAUTH);
	assert_non_null(strstr(why, "no v1 signature"));
	assert_int_equal(verify(V_SECRET, V_ID, "1614265331", V_SIG,
				V_TS, NULL, why), MDS_E_UNAUTH);
	assert_int_equal(verify(V_SECRET, V_ID, "16142653x0", V_SIG, V_TS,
				NULL, why), MDS_E_UNAUTH);
	assert_int_equal(verify(V_SECRET, V_ID, "99999999999999999999",
				V_SIG, V_TS, NULL, why), MDS_E_UNAUTH);
	assert_int_equal(verify(V_SECRET, NULL, V_TS_S, V_SIG, V_TS, NULL,
				why), MDS_E_UNAUTH);
	assert_non_null(strstr(why, "missing webhook-id"));
	assert_int_equal(verify(V_SECRET, V_ID, V_TS_S, NULL, V_TS, NULL,
				why), MDS_E_UNAUTH);
	/* A plain secret is keyed by its bytes: not the vector's key. */
	assert_int_equal(verify("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", V_ID,
				V_TS_S, V_SIG, V_TS, NULL, why),
			 MDS_E_UNAUTH);
}

static void test_replay(void **state)
{
	struct whsig_seen *seen = whsig_seen_new();
	char why[256];

	(void)state;
	assert_int_equal(verify(V_SECRET, V_ID, V_TS_S, V_SIG, V_TS, seen,
				why), 0);
	assert_int_equal(verify(V_SECRET, V_ID, V_TS_S, V_SIG, V_TS + 10,
				seen, why), MDS_E_EXISTS);
	assert_non_null(strstr(why, "replay"));
	/* Past the window the timestamp refuses it, whatever the record. */
	assert_int_equal(verify(V_SECRET, V_ID, V_TS_S, V_SIG, V_TS + 301,
				seen, why), MDS_E_UNAUTH);
	whsig_seen_free(seen);
	whsig_seen_free(NULL);
}

static void test_seen_is_bounded(void **state)
{
	struct whsig_seen *seen = whsig_seen_new();
	char id[32], sig[WHSIG_SIG_MAX], why[256];
	int rc = 0;

	(void)state;
	for (int i = 0; i <= WHSIG_SEEN_MAX && rc == 0; i++) {
		snprintf(id, sizeof(id), "msg-%d", i);
		whsig_sign(V_SECRET, id, V_TS, V_BODY, strlen(V_BODY), sig);
		rc = verify(V_SECRET, id, V_TS_S, sig, V_TS, seen, why);
		if (i < WHSIG_SEEN_MAX)
			assert_int_equal(rc, 0);
	}
	assert_int_equal(rc, MDS_E_LIMIT);
	/* Once the ids leave the window, room comes back. */
	whsig_sign(V_SECRET, "msg-late", V_TS + 301, V_BODY, strlen(V_BODY),
		   sig);
	assert_int_equal(verify(V_SECRET, "msg-late", "1614265631", sig,
				V_TS + 301, seen, why), 0);
	whsig_seen_free(seen);
}

/* A record backed by a store at path, as the daemon loads it at start. */
static struct whsig_seen *seen_at(const char *path, struct store **st,
				  int64_t now)
{
	struct whsig_seen *seen = whsig_seen_new();
	char diag[256];

	assert_int_equal(store_open(path, st, diag, sizeof(diag)), 0);
	assert_int_equal(whsig_seen_load(seen, *st, now, 300), 0);
	return seen;
}

static int count_rows(void *arg, const char *id, const char *json)
{
	(void)id;
	(void)json;
	(*(int *)arg)++;
	return 0;
}

static void test_seen_survives_reopen(void **state)
{
	char dir[] = "/tmp/mdscale-whsig-XXXXXX", path[64], cmd[96];
	char sig[WHSIG_SIG_MAX], why[256];
	struct whsig_seen *seen;
	struct store *st;
	int rows = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t.db", dir);
	seen = seen_at(path, &st, V_TS);
	assert_int_equal(verify(V_SECRET, V_ID, V_TS_S, V_SIG, V_TS, seen,
				why), 0);
	whsig_seen_free(seen);
	store_close(st);

	/* A new process: the id is a replay still. */
	seen = seen_at(path, &st, V_TS + 10);
	assert_int_equal(verify(V_SECRET, V_ID, V_TS_S, V_SIG, V_TS + 10,
				seen, why), MDS_E_EXISTS);
	assert_non_null(strstr(why, "replay"));
	whsig_sign(V_SECRET, "msg-next", V_TS, V_BODY, strlen(V_BODY), sig);
	assert_int_equal(verify(V_SECRET, "msg-next", V_TS_S, sig, V_TS + 10,
				seen, why), 0);
	whsig_seen_free(seen);
	store_close(st);

	/* Ids past the window are neither loaded nor kept: an id accepted
	 * later deletes them from the store. */
	seen = seen_at(path, &st, V_TS + 400);
	whsig_sign(V_SECRET, "msg-late", V_TS + 400, V_BODY, strlen(V_BODY),
		   sig);
	assert_int_equal(verify(V_SECRET, "msg-late", "1614265730", sig,
				V_TS + 400, seen, why), 0);
	assert_int_equal(store_event_each(st, WHSIG_STREAM, NULL, 0, 0,
					  count_rows, &rows), 0);
	assert_int_equal(rows, 1);
	whsig_seen_free(seen);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_keys(void **state)
{
	unsigned char key[WHSIG_KEY_MAX];
	size_t len = 0;
	char sig[WHSIG_SIG_MAX];

	(void)state;
	assert_int_equal(whsig_key(V_SECRET, key, &len), 0);
	assert_int_equal(len, 24);
	assert_int_equal(whsig_key("plain-secret", key, &len), 0);
	assert_int_equal(len, 12);
	assert_memory_equal(key, "plain-secret", 12);
	assert_int_equal(whsig_key("whsec_not*base64", key, &len),
			 MDS_E_INVAL);
	assert_int_equal(whsig_key("whsec_", key, &len), MDS_E_INVAL);
	assert_int_equal(whsig_sign("whsec_***", V_ID, V_TS, V_BODY,
				    strlen(V_BODY), sig), MDS_E_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_vector),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_seen_is_bounded),
		cmocka_unit_test(test_seen_survives_reopen),
		cmocka_unit_test(test_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
