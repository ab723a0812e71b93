/* test_store.c - the SQLite store, on real files in a temporary folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "tmpstore.h"
#include "util/err.h"

struct fixture {
	struct tmpstore s;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (tmpstore_open(&fx->s, "store") != 0)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	if (tmpstore_close(&fx->s) != 0)
		return -1;
	free(fx);
	return 0;
}

struct seen {
	char ids[8][32];
	char bodies[8][64];
	int n;
};

static int collect(void *arg, const char *id, const char *json)
{
	struct seen *s = arg;

	snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", id);
	snprintf(s->bodies[s->n], sizeof(s->bodies[0]), "%s", json);
	s->n++;
	return 0;
}

static void put_get_delete_keep_order(void **state)
{
	struct fixture *fx = *state;
	struct seen s = { 0 };
	char *json = NULL;

	assert_int_equal(store_put(fx->s.st, "dep", "b", "{\"v\":1}"), 0);
	assert_int_equal(store_put(fx->s.st, "dep", "a", "{\"v\":2}"), 0);
	assert_int_equal(store_put(fx->s.st, "other", "c", "{}"), 0);
	/* Replacing keeps the first position. */
	assert_int_equal(store_put(fx->s.st, "dep", "b", "{\"v\":3}"), 0);
	assert_int_equal(store_each(fx->s.st, "dep", collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.ids[0], "b");
	assert_string_equal(s.bodies[0], "{\"v\":3}");
	assert_string_equal(s.ids[1], "a");
	assert_int_equal(store_get(fx->s.st, "dep", "a", &json), 0);
	assert_string_equal(json, "{\"v\":2}");
	free(json);
	assert_int_equal(store_delete(fx->s.st, "dep", "a"), 0);
	assert_int_equal(store_get(fx->s.st, "dep", "a", &json), MDS_E_NOTFOUND);
	assert_int_equal(store_delete(fx->s.st, "dep", "missing"), 0);
}

static void survives_reopen(void **state)
{
	struct fixture *fx = *state;
	char diag[256], *json = NULL;
	struct stat st;
	char wal[128];

	assert_int_equal(store_put(fx->s.st, "dep", "x", "{\"kept\":true}"), 0);
	/* WAL mode is on: the -wal file exists while the store is open. */
	snprintf(wal, sizeof(wal), "%s-wal", fx->s.path);
	assert_int_equal(stat(wal, &st), 0);
	store_close(fx->s.st);
	assert_int_equal(store_open(fx->s.path, &fx->s.st, diag, sizeof(diag)), 0);
	assert_int_equal(store_get(fx->s.st, "dep", "x", &json), 0);
	assert_string_equal(json, "{\"kept\":true}");
	free(json);
}

static void rollback_discards(void **state)
{
	struct fixture *fx = *state;
	char *json = NULL;

	assert_int_equal(store_begin(fx->s.st), 0);
	assert_int_equal(store_begin(fx->s.st), 0); /* nested */
	assert_int_equal(store_put(fx->s.st, "dep", "y", "{}"), 0);
	assert_int_equal(store_commit(fx->s.st), 0); /* inner: no write yet */
	assert_int_equal(store_rollback(fx->s.st), 0);
	assert_int_equal(store_get(fx->s.st, "dep", "y", &json), MDS_E_NOTFOUND);
	assert_int_equal(store_begin(fx->s.st), 0);
	assert_int_equal(store_put(fx->s.st, "dep", "z", "{}"), 0);
	assert_int_equal(store_commit(fx->s.st), 0);
	assert_int_equal(store_get(fx->s.st, "dep", "z", &json), 0);
	free(json);
}

static void events_newest_window(void **state)
{
	struct fixture *fx = *state;
	struct seen s = { 0 };
	char body[32];

	for (int i = 0; i < 6; i++) {
		snprintf(body, sizeof(body), "{\"i\":%d}", i);
		assert_int_equal(store_event_add(fx->s.st, "hist", "r1",
						 1000 + i, body), 0);
	}
	assert_int_equal(store_event_add(fx->s.st, "hist", "r2", 5, "{}"), 0);
	/* The 3 newest of r1, oldest first. */
	assert_int_equal(store_event_each(fx->s.st, "hist", "r1", 0, 3, collect,
					  &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.bodies[0], "{\"i\":3}");
	assert_string_equal(s.bodies[2], "{\"i\":5}");
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_event_trim(fx->s.st, "hist", "r1", 1004), 0);
	assert_int_equal(store_event_each(fx->s.st, "hist", NULL, 0, 0, collect,
					  &s), 0);
	assert_int_equal(s.n, 3); /* i=4, i=5 of r1 and the r2 event */
	/* Without a ref, the trim reaches every ref of the stream only. */
	assert_int_equal(store_event_add(fx->s.st, "other", "r1", 1, "{}"), 0);
	assert_int_equal(store_event_trim(fx->s.st, "hist", NULL, 1005), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_event_each(fx->s.st, "hist", NULL, 0, 0, collect,
					  &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.bodies[0], "{\"i\":5}");
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_event_each(fx->s.st, "other", NULL, 0, 0, collect,
					  &s), 0);
	assert_int_equal(s.n, 1);
}

static void bad_path_is_a_clear_error(void **state)
{
	struct store *st = NULL;
	char diag[256] = "";

	(void)state;
	assert_int_equal(store_open("/nonexistent-dir/x/y.db", &st, diag,
				    sizeof(diag)), MDS_E_DB);
	assert_null(st);
	assert_non_null(strstr(diag, "/nonexistent-dir/x/y.db"));
}

/* Fills the file at path until the device has no byte left. */
static void fill(const char *path)
{
	static const char chunk[4096];
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	setvbuf(f, NULL, _IONBF, 0);
	while (fwrite(chunk, 1, sizeof(chunk), f) == sizeof(chunk))
		;
	while (fwrite(chunk, 1, 1, f) == 1)
		;
	fclose(f);
}

/* A store on a small tmpfs of its own, unmounted by teardown_full() even
 * when the test fails. */
static int setup_full(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char diag[256];

	*state = fx;
	if (geteuid() != 0)
		return 0; /* the test says why it cannot run */
	snprintf(fx->s.dir, sizeof(fx->s.dir), "/tmp/mdscale-full-XXXXXX");
	if (mkdtemp(fx->s.dir) == NULL ||
	    mount("tmpfs", fx->s.dir, "tmpfs", 0, "size=2m") != 0)
		return -1;
	snprintf(fx->s.path, sizeof(fx->s.path), "%s/t.db", fx->s.dir);
	return store_open(fx->s.path, &fx->s.st, diag, sizeof(diag)) == 0 ? 0 : -1;
}

static int teardown_full(void **state)
{
	struct fixture *fx = *state;

	store_close(fx->s.st);
	if (fx->s.dir[0] != '\0') {
		umount2(fx->s.dir, MNT_DETACH);
		rmdir(fx->s.dir);
	}
	free(fx);
	return 0;
}

/* The store on a full device (its tmpfs filled by a file): the write is
 * MDS_E_NOSPACE, nothing of it stays, reads work, the store opens on it,
 * and writes work again once space returns. */
static void full_device_is_nospace_and_changes_nothing(void **state)
{
	struct fixture *fx = *state;
	char filler[80], diag[256], *big, *json = NULL;
	struct store *second = NULL;
	int rc;

	if (geteuid() != 0)
		fail_msg("this test mounts a tmpfs: it must run as root (euid "
			 "%ld); CI runs it as root", (long)geteuid());
	snprintf(filler, sizeof(filler), "%s/filler", fx->s.dir);
	assert_int_equal(store_put(fx->s.st, "k", "a", "{\"v\":1}"), 0);
	big = malloc(256 << 10);
	memset(big, 'x', (256 << 10) - 1);
	big[0] = '"';
	big[(256 << 10) - 2] = '"';
	big[(256 << 10) - 1] = '\0';
	fill(filler);

	assert_int_equal(store_begin(fx->s.st), 0);
	rc = store_put(fx->s.st, "k", "big", big);
	if (rc == 0)
		rc = store_commit(fx->s.st);
	assert_int_equal(rc, MDS_E_NOSPACE);
	store_rollback(fx->s.st);
	assert_int_equal(store_get(fx->s.st, "k", "big", &json), MDS_E_NOTFOUND);
	assert_int_equal(store_get(fx->s.st, "k", "a", &json), 0);
	assert_string_equal(json, "{\"v\":1}");
	free(json);
	assert_int_equal(store_open(fx->s.path, &second, diag, sizeof(diag)), 0);
	store_close(second);

	assert_int_equal(unlink(filler), 0);
	assert_int_equal(store_put(fx->s.st, "k", "big", big), 0);
	assert_int_equal(store_get(fx->s.st, "k", "big", &json), 0);
	assert_int_equal(strlen(json), (256 << 10) - 1);
	free(json);
	free(big);
}

static int put_b(struct store *st, void *arg)
{
	return store_put(st, "k", "b", arg);
}

static off_t reserve_size(const struct fixture *fx)
{
	char path[128];
	struct stat sb;

	snprintf(path, sizeof(path), "%s-reserve", fx->s.path);
	return stat(path, &sb) == 0 ? sb.st_size : -1;
}

/* On a full device, a critical write takes the reserve's space and works
 * where any other write fails; the reserve comes back with the space. */
static void reserve_lets_a_critical_write_through(void **state)
{
	struct fixture *fx = *state;
	char filler[80], *json = NULL;

	if (geteuid() != 0)
		fail_msg("this test mounts a tmpfs: it must run as root (euid "
			 "%ld); CI runs it as root", (long)geteuid());
	assert_int_equal(reserve_size(fx), STORE_RESERVE_BYTES);
	snprintf(filler, sizeof(filler), "%s/filler", fx->s.dir);
	fill(filler);
	assert_int_equal(store_put(fx->s.st, "k", "a", "{}"), MDS_E_NOSPACE);
	assert_int_equal(reserve_size(fx), STORE_RESERVE_BYTES);
	assert_int_equal(store_critical(fx->s.st, put_b, "{\"v\":2}"), 0);
	assert_int_equal(reserve_size(fx), -1);
	assert_int_equal(store_get(fx->s.st, "k", "b", &json), 0);
	assert_string_equal(json, "{\"v\":2}");
	free(json);
	assert_int_equal(store_get(fx->s.st, "k", "a", &json), MDS_E_NOTFOUND);

	assert_int_equal(unlink(filler), 0);
	assert_int_equal(store_put(fx->s.st, "k", "a", "{}"), 0);
	assert_int_equal(reserve_size(fx), STORE_RESERVE_BYTES);
}

/* What the commit hooks saw: 'd' for done, 'x' for drop, in order. */
struct trail {
	char s[16];
	size_t n;
};

struct mark {
	struct trail *t;
	char c;
};

static void mark_done(void *arg)
{
	struct mark *m = arg;

	m->t->s[m->t->n++] = m->c;
}

static void mark_drop(void *arg)
{
	struct mark *m = arg;

	m->t->s[m->t->n++] = 'x';
}

/* A hook runs after the outermost commit only, in order; a rollback (of
 * any level) or a failed commit drops them; outside a transaction, at
 * once. */
static void commit_hooks_follow_the_outermost_transaction(void **state)
{
	struct fixture *fx = *state;
	struct trail t = { 0 };
	struct mark a = { &t, 'a' }, b = { &t, 'b' }, c = { &t, 'c' };

	store_on_commit(fx->s.st, mark_done, mark_drop, &a);
	assert_string_equal(t.s, "a");
	assert_int_equal(store_begin(fx->s.st), 0);
	assert_int_equal(store_put(fx->s.st, "k", "1", "{}"), 0);
	store_on_commit(fx->s.st, mark_done, mark_drop, &b);
	assert_int_equal(store_begin(fx->s.st), 0);
	store_on_commit(fx->s.st, mark_done, mark_drop, &c);
	assert_int_equal(store_commit(fx->s.st), 0);
	assert_string_equal(t.s, "a"); /* nested: not written yet */
	assert_int_equal(store_commit(fx->s.st), 0);
	assert_string_equal(t.s, "abc");

	assert_int_equal(store_begin(fx->s.st), 0);
	store_on_commit(fx->s.st, mark_done, mark_drop, &a);
	assert_int_equal(store_begin(fx->s.st), 0);
	store_on_commit(fx->s.st, mark_done, mark_drop, &b);
	assert_int_equal(store_rollback(fx->s.st), 0);
	assert_string_equal(t.s, "abcxx");
	assert_int_equal(store_commit(fx->s.st), 0); /* harmless: nothing */
	assert_string_equal(t.s, "abcxx");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(put_get_delete_keep_order,
						setup, teardown),
		cmocka_unit_test_setup_teardown(survives_reopen, setup,
						teardown),
		cmocka_unit_test_setup_teardown(rollback_discards, setup,
						teardown),
		cmocka_unit_test_setup_teardown(events_newest_window, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			commit_hooks_follow_the_outermost_transaction, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			full_device_is_nospace_and_changes_nothing,
			setup_full, teardown_full),
		cmocka_unit_test_setup_teardown(
			reserve_lets_a_critical_write_through, setup_full,
			teardown_full),
		cmocka_unit_test(bad_path_is_a_clear_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
