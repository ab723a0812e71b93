/* test_htab.c - the shared hash index and string hash (util/htab.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/htab.h"

/* Collects every value the table returns for h, in a sorted list. */
static size_t lookup_all(const struct htab *t, uint64_t h, uint32_t *out,
			 size_t max)
{
	struct htab_iter it;
	size_t n = 0;

	for (uint32_t v = htab_first(t, h, &it); v != HTAB_NONE;
	     v = htab_next(&it)) {
		assert_true(n < max);
		out[n++] = v;
	}
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && out[k - 1] > out[k]; k--) {
			uint32_t x = out[k];

			out[k] = out[k - 1];
			out[k - 1] = x;
		}
	return n;
}

static void empty_table_finds_nothing(void **state)
{
	struct htab t = { 0 };
	struct htab_iter it;

	(void)state;
	assert_int_equal(htab_first(&t, 42, &it), HTAB_NONE);
	assert_int_equal(htab_count(&t), 0);
	htab_clear(&t);
	htab_free(&t);
	htab_free(NULL);
}

/* Ten thousand strings: each found under its hash, at its index, after
 * the table grew many times; absent strings are not found. */
static void strings_by_index(void **state)
{
	enum { N = 10000 };
	static char keys[N][16];
	struct htab t = { 0 };

	(void)state;
	for (uint32_t i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "key-%u", i);
		htab_put(&t, hash_str(keys[i]), i);
	}
	assert_int_equal(htab_count(&t), N);
	for (uint32_t i = 0; i < N; i++) {
		struct htab_iter it;
		uint32_t v = htab_first(&t, hash_str(keys[i]), &it);

		while (v != HTAB_NONE && strcmp(keys[v], keys[i]) != 0)
			v = htab_next(&it);
		assert_int_equal(v, i);
	}
	for (uint32_t i = N; i < N + 100; i++) {
		char k[16];
		struct htab_iter it;
		uint32_t v;

		snprintf(k, sizeof(k), "key-%u", i);
		v = htab_first(&t, hash_str(k), &it);
		while (v != HTAB_NONE && strcmp(keys[v], k) != 0)
			v = htab_next(&it);
		assert_int_equal(v, HTAB_NONE);
	}
	/* The table holds at most 3/4 of its slots. */
	assert_true(t.n * 4 <= (t.mask + 1) * 3);
	htab_free(&t);
}

/* Values under the same hash all come back; colliding slots (hashes equal
 * in their low bits) keep their values apart. */
static void collisions_return_every_value(void **state)
{
	struct htab t = { 0 };
	uint32_t got[8];
	size_t n;

	(void)state;
	htab_put(&t, 7, 1);
	htab_put(&t, 7, 2);
	htab_put(&t, 7 + (1ULL << 40), 3); /* same slot, another hash */
	htab_put(&t, 8, 4);
	n = lookup_all(&t, 7, got, 8);
	assert_int_equal(n, 2);
	assert_int_equal(got[0], 1);
	assert_int_equal(got[1], 2);
	n = lookup_all(&t, 7 + (1ULL << 40), got, 8);
	assert_int_equal(n, 1);
	assert_int_equal(got[0], 3);
	n = lookup_all(&t, 8, got, 8);
	assert_int_equal(n, 1);
	assert_int_equal(got[0], 4);
	assert_int_equal(lookup_all(&t, 9, got, 8), 0);
	htab_free(&t);
}

/* Clearing keeps the slots, and the table works again after it. */
static void clear_then_reuse(void **state)
{
	struct htab t = { 0 };
	struct htab_iter it;
	size_t slots;

	(void)state;
	for (uint32_t i = 0; i < 100; i++)
		htab_put(&t, hash_fnv1a(HASH_SEED, &i, sizeof(i)), i);
	slots = t.mask + 1;
	htab_clear(&t);
	assert_int_equal(htab_count(&t), 0);
	assert_int_equal(t.mask + 1, slots);
	for (uint32_t i = 0; i < 100; i++)
		assert_int_equal(htab_first(&t, hash_fnv1a(HASH_SEED, &i,
							    sizeof(i)),
					    &it),
				 HTAB_NONE);
	htab_put(&t, 5, 50);
	assert_int_equal(htab_first(&t, 5, &it), 50);
	assert_int_equal(htab_next(&it), HTAB_NONE);
	htab_free(&t);
	assert_null(t.val);
}

/* FNV-1a's published test vectors, streaming in pieces, and the
 * finalizer spreading one changed bit. */
static void hashes(void **state)
{
	uint64_t a, b, diff;
	int bits = 0;

	(void)state;
	assert_true(hash_fnv1a(HASH_SEED, "", 0) == 0xcbf29ce484222325ULL);
	assert_true(hash_fnv1a(HASH_SEED, "a", 1) == 0xaf63dc4c8601ec8cULL);
	assert_true(hash_fnv1a(HASH_SEED, "foobar", 6) ==
		    0x85944171f73967e8ULL);
	assert_true(hash_fnv1a(hash_fnv1a(HASH_SEED, "foo", 3), "bar", 3) ==
		    hash_fnv1a(HASH_SEED, "foobar", 6));
	assert_true(hash_str("foobar") == hash_bytes("foobar", 6));
	assert_true(hash_str("foobar") ==
		    hash_fin(hash_fnv1a(HASH_SEED, "foobar", 6)));
	/* A tuple's order matters. */
	assert_true(hash_mix(hash_mix(0, 1), 2) !=
		    hash_mix(hash_mix(0, 2), 1));
	a = hash_fin(1);
	b = hash_fin(3);
	for (diff = a ^ b; diff != 0; diff &= diff - 1)
		bits++;
	assert_true(bits > 16);
}

/* While a doubling moves its slots (a few per put), every value is found
 * exactly once after every put, colliding hashes included, and no put
 * moves more than HTAB_MOVE_STEP old slots. */
static void doubling_is_incremental(void **state)
{
	struct htab t = { 0 };
	const uint32_t n = 20000;
	int saw_old = 0;

	(void)state;
	for (uint32_t v = 0; v < n; v++) {
		size_t before = t.old_val != NULL ? t.old_pos : 0;
		/* Every 7th value shares its hash with the one before. */
		uint64_t h = hash_fin(v % 7 == 6 ? v - 1 : v);

		htab_put(&t, h, v);
		if (t.old_val != NULL) {
			saw_old = 1;
			assert_true(t.old_pos - (t.old_pos > before ? before : 0)
				    <= HTAB_MOVE_STEP);
		}
		if (v % 97 != 0 && v != n - 1)
			continue;
		for (uint32_t k = 0; k <= v; k++) {
			struct htab_iter it;
			uint64_t hk = hash_fin(k % 7 == 6 ? k - 1 : k);
			int found = 0;

			for (uint32_t x = htab_first(&t, hk, &it);
			     x != HTAB_NONE; x = htab_next(&it))
				if (x == k)
					found++;
			assert_int_equal(found, 1);
		}
	}
	assert_true(saw_old);
	assert_int_equal(htab_count(&t), n);
	htab_clear(&t);
	assert_null(t.old_val);
	htab_free(&t);
}

/* Resident bytes of this process (Linux /proc/self/statm). */
static size_t resident_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, res = 0;

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%lu %lu", &size, &res), 2);
	fclose(f);
	return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* Puts 0, 1, ... into t until it has `slots` slots, no move pending, and
 * `ahead` more puts would pass 3/4 full; returns the next value to put. */
static uint32_t fill_before_doubling(struct htab *t, size_t slots,
				     size_t ahead)
{
	uint32_t v = 0;

	while (t->mask + 1 < slots || (t->n + ahead) * 4 <= slots * 3 ||
	       t->old_val != NULL)
		htab_put(t, hash_fin(v), v), v++;
	return v;
}

/* The put that doubles a large table does not write the new table through
 * (4M slots, 32 MiB): it touches about what any put touches, and the new
 * table's pages come in as later puts fill them. Before, that one put wrote
 * 16 MiB of free-slot markers, a stall that grew with the table. */
static void doubling_costs_no_more_than_a_put(void **state)
{
	struct htab t = { 0 };
	const size_t slots = (size_t)1 << 21;
	uint32_t v = 0;
	size_t before, after;

	(void)state;
	/* Fill until the next put doubles 2M slots, with no move pending. */
	v = fill_before_doubling(&t, slots, 2);
	htab_put(&t, hash_fin(v), v), v++;
	assert_null(t.old_val);
	before = resident_bytes();
	htab_put(&t, hash_fin(v), v), v++;
	after = resident_bytes();
	assert_int_equal(t.mask + 1, 2 * slots);
	assert_non_null(t.old_val);
#if !defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer's allocator writes the memory calloc() returns, so
	 * what this measures (pages left untouched until used) holds only
	 * with the C library's allocator, and ASan's. */
	assert_true(after < before + ((size_t)2 << 20));
#else
	(void)before;
	(void)after;
#endif
	/* Everything is still found, in both tables, while the moves go on. */
	for (uint32_t k = 0; k < v; k += 4099) {
		struct htab_iter it;

		assert_int_equal(htab_first(&t, hash_fin(k), &it), k);
	}
	htab_free(&t);
}

/* Fills t with values 0, 1, ... (under hash_fin(v)) until n values;
 * returns the next value. */
static uint32_t fill(struct htab *t, uint32_t v, size_t n)
{
	while (htab_count(t) < n)
		htab_put(t, hash_fin(v), v), v++;
	return v;
}

/* Every value below n is found exactly once. */
static void all_found(const struct htab *t, uint32_t n, uint32_t stride)
{
	for (uint32_t k = 0; k < n; k += stride) {
		struct htab_iter it;
		int found = 0;

		for (uint32_t x = htab_first(t, hash_fin(k), &it);
		     x != HTAB_NONE; x = htab_next(&it))
			if (x == k)
				found++;
		assert_int_equal(found, 1);
	}
}

/* A large table's successor is cleared a bounded slice per put from 5/8
 * load on, and is whole when the doubling put comes; lookups are right
 * throughout. */
static void next_table_ready_before_doubling(void **state)
{
	struct htab t = { 0 };
	const size_t slots = HTAB_BIG_SLOTS;
	uint32_t v;
	int saw_next = 0;

	(void)state;
	v = fill(&t, 0, slots / 2 + 1); /* the table has 2 x slots now */
	while (t.mask + 1 < 2 * slots || t.old_val != NULL)
		htab_put(&t, hash_fin(v), v), v++;
	assert_null(t.next_val);
	while (t.mask + 1 == 2 * slots) {
		size_t before = t.next_val != NULL ? t.next_ready : 0;

		if (t.n * 8 < (t.mask + 1) * 5)
			assert_null(t.next_val);
		if ((t.n + 1) * 4 > (t.mask + 1) * 3) {
			/* This put doubles: what it takes is whole. */
			assert_non_null(t.next_val);
			assert_int_equal(t.next_ready, 2 * (t.mask + 1));
			for (size_t i = 0; i < t.next_ready; i += 4093)
				assert_int_equal(t.next_val[i], 0);
		}
		htab_put(&t, hash_fin(v), v), v++;
		if (t.next_val != NULL) {
			saw_next = 1;
			assert_true(t.next_ready - before <=
				    2 * HTAB_PREP_STEP);
		}
		if (v % 1009 == 0)
			all_found(&t, v, 7);
	}
	assert_true(saw_next);
	assert_null(t.next_val);
	assert_non_null(t.old_val);
	all_found(&t, v, 1);
	htab_free(&t);
	assert_null(t.val);
}

/* Once its slots have moved, a large old table goes back to the system
 * HTAB_FREE_STEP bytes at a time, and htab_bytes() counts what is left. */
static void old_table_freed_in_steps(void **state)
{
	struct htab t = { 0 };
	size_t dead, cur;
	uint32_t v;
	int steps = 0;

	(void)state;
	/* An old table of several steps (2^19 slots, 4 MiB). */
	v = fill(&t, 0, ((size_t)1 << 19) / 4 * 3);
	assert_null(t.old_val);
	htab_put(&t, hash_fin(v), v), v++; /* doubles: big old table */
	assert_non_null(t.old_val);
	while (t.old_val != NULL)
		htab_put(&t, hash_fin(v), v), v++;
	assert_non_null(t.dead);
	cur = (t.mask + 1) * 2 * sizeof(uint32_t);
	while (t.dead != NULL) {
		dead = t.dead_len;
		assert_int_equal(htab_bytes(&t), cur + dead);
		htab_put(&t, hash_fin(v), v), v++;
		assert_true(dead - t.dead_len <= HTAB_FREE_STEP);
		if (t.dead_len < dead)
			steps++;
	}
	assert_true(steps > 1);
	assert_int_equal(htab_bytes(&t), cur);
	all_found(&t, v, 1);
	htab_free(&t);
}

/* After the doubling of a large table, the puts that follow land on pages
 * already there: a thousand random puts (and their moves) make little
 * resident. Before, each put into the new table faulted in a page or two
 * of it (2,000 pages, 8 MB, for a thousand puts). */
static void puts_after_doubling_touch_ready_pages(void **state)
{
	struct htab t = { 0 };
	const size_t slots = (size_t)1 << 21;
	uint32_t v = 0;
	size_t before, after;

	(void)state;
	v = fill_before_doubling(&t, slots, 1);
	htab_put(&t, hash_fin(v), v), v++; /* the doubling */
	assert_int_equal(t.mask + 1, 2 * slots);
	before = resident_bytes();
	for (int i = 0; i < 1000; i++)
		htab_put(&t, hash_fin(v), v), v++;
	after = resident_bytes();
#if !defined(__SANITIZE_THREAD__)
	assert_true(after < before + ((size_t)1 << 20));
#else
	(void)before;
	(void)after;
#endif
	all_found(&t, v, 4099);
	htab_free(&t);
}

/* Clearing or freeing a table in the middle of any step leaves nothing
 * behind (ASan checks the leaks) and a cleared table works again. */
static void clear_mid_steps(void **state)
{
	const size_t big = 8 * HTAB_BIG_SLOTS; /* 2 MiB */
	size_t stops[3];
	uint32_t v;

	(void)state;
	stops[0] = big / 8 * 5 + 10;  /* preparing next */
	stops[1] = big / 4 * 3 + 10;  /* moving */
	stops[2] = big / 4 * 3 + big / 64 + 10; /* freeing the old table */
	for (int i = 0; i < 3; i++) {
		struct htab t = { 0 };

		v = fill(&t, 0, stops[i]);
		if (i == 0)
			assert_non_null(t.next_val);
		if (i == 1)
			assert_non_null(t.old_val);
		if (i == 2)
			assert_non_null(t.dead);
		htab_clear(&t);
		assert_null(t.next_val);
		assert_null(t.old_val);
		assert_null(t.dead);
		assert_int_equal(htab_count(&t), 0);
		assert_int_equal(htab_first(&t, hash_fin(1), &(struct htab_iter){ 0 }),
				 HTAB_NONE);
		v = fill(&t, 0, stops[i]);
		all_found(&t, v, 1);
		htab_free(&t);
		v = fill(&t, 0, stops[i]);
		htab_free(&t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(empty_table_finds_nothing),
		cmocka_unit_test(strings_by_index),
		cmocka_unit_test(collisions_return_every_value),
		cmocka_unit_test(clear_then_reuse),
		cmocka_unit_test(hashes),
		cmocka_unit_test(doubling_is_incremental),
		cmocka_unit_test(doubling_costs_no_more_than_a_put),
		cmocka_unit_test(next_table_ready_before_doubling),
		cmocka_unit_test(old_table_freed_in_steps),
		cmocka_unit_test(puts_after_doubling_touch_ready_pages),
		cmocka_unit_test(clear_mid_steps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
