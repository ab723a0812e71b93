/* htab.c - see htab.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/htab.h"
#include "util/xalloc.h"

#define HTAB_MIN_SLOTS 16

static void drop_old(struct htab *t)
{
	free(t->old_hash);
	free(t->old_val);
	t->old_hash = NULL;
	t->old_val = NULL;
	t->old_mask = t->old_pos = 0;
}

void htab_free(struct htab *t)
{
	if (t == NULL)
		return;
	free(t->hash);
	free(t->val);
	drop_old(t);
	memset(t, 0, sizeof(*t));
}

void htab_clear(struct htab *t)
{
	if (t->val != NULL)
		memset(t->val, 0, (t->mask + 1) * sizeof(*t->val));
	drop_old(t);
	t->n = 0;
}

/* A slot holds its value plus one: 0, what calloc() gives, is a free slot.
 * So a new table is not written through when it is allocated (a large one
 * comes as fresh zero pages from the kernel): its pages are touched as the
 * puts and the moves fill it, a little with each put, and doubling a table
 * of millions of slots costs no more at once than any other put. */
#define SLOT_FREE 0u

static void alloc_slots(struct htab *t, size_t slots)
{
	t->hash = xreallocarray(NULL, slots, sizeof(*t->hash));
	t->val = xcalloc(slots, sizeof(*t->val));
	t->mask = slots - 1;
}

/* Puts a slot's stored value (the value plus one) under h. */
static void put_slot(struct htab *t, uint64_t h, uint32_t stored)
{
	size_t i = h & t->mask;

	while (t->val[i] != SLOT_FREE)
		i = (i + 1) & t->mask;
	t->hash[i] = h;
	t->val[i] = stored;
}

/* Moves up to n slots of the old table into the new one. */
static void move_old(struct htab *t, size_t n)
{
	while (t->old_val != NULL && n-- > 0) {
		size_t i = t->old_pos++;

		if (t->old_val[i] != SLOT_FREE)
			put_slot(t, t->old_hash[i], t->old_val[i]);
		if (t->old_pos > t->old_mask)
			drop_old(t);
	}
}

void htab_put(struct htab *t, uint64_t h, uint32_t v)
{
	if (t->val == NULL) {
		alloc_slots(t, HTAB_MIN_SLOTS);
	} else if ((t->n + 1) * 4 > (t->mask + 1) * 3) {
		/* The previous doubling has moved everything by now (a put
		 * moves HTAB_MOVE_STEP slots, the old table had fewer than
		 * HTAB_MOVE_STEP times the puts since); finish it anyway. */
		move_old(t, SIZE_MAX);
		t->old_hash = t->hash;
		t->old_val = t->val;
		t->old_mask = t->mask;
		t->old_pos = 0;
		alloc_slots(t, (t->mask + 1) * 2);
	}
	move_old(t, HTAB_MOVE_STEP);
	put_slot(t, h, v + 1);
	t->n++;
}

/* The value at or after slot it->i whose hash is it->h; the slot after it
 * is where the next search starts. Searches the table, then the slots of
 * the old one that have not moved yet. */
static uint32_t scan(struct htab_iter *it)
{
	const struct htab *t = it->t;

	if (t->val == NULL)
		return HTAB_NONE;
	if (!it->in_old) {
		for (; t->val[it->i] != SLOT_FREE;
		     it->i = (it->i + 1) & t->mask) {
			if (t->hash[it->i] == it->h) {
				uint32_t v = t->val[it->i] - 1;

				it->i = (it->i + 1) & t->mask;
				return v;
			}
		}
		if (t->old_val == NULL)
			return HTAB_NONE;
		it->in_old = 1;
		it->i = it->h & t->old_mask;
	}
	/* A moved slot still ends no chain: only a free one does. */
	for (; t->old_val[it->i] != SLOT_FREE;
	     it->i = (it->i + 1) & t->old_mask) {
		if (it->i >= t->old_pos && t->old_hash[it->i] == it->h) {
			uint32_t v = t->old_val[it->i] - 1;

			it->i = (it->i + 1) & t->old_mask;
			return v;
		}
	}
	return HTAB_NONE;
}

uint32_t htab_first(const struct htab *t, uint64_t h, struct htab_iter *it)
{
	it->t = t;
	it->h = h;
	it->i = h & t->mask;
	it->in_old = 0;
	return scan(it);
}

uint32_t htab_next(struct htab_iter *it)
{
	return scan(it);
}

size_t htab_count(const struct htab *t)
{
	return t->n;
}

uint64_t hash_fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t hash_mix(uint64_t h, uint64_t v)
{
	return h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

uint64_t hash_fin(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

uint64_t hash_bytes(const void *p, size_t n)
{
	return hash_fin(hash_fnv1a(HASH_SEED, p, n));
}

uint64_t hash_str(const char *s)
{
	return hash_bytes(s, strlen(s));
}
