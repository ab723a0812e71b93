/* htab.c - see htab.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/htab.h"
#include "util/xalloc.h"

#define HTAB_MIN_SLOTS 16

/* A slot holds its value plus one: 0 is a free slot. */
#define SLOT_FREE 0u

/* A table of n slots is one block: n hashes, then n values. A large one is
 * pages of its own (xmap), so that it can be freed a step at a time. */
static size_t tab_bytes(size_t slots)
{
	return slots * 2 * sizeof(uint32_t);
}

static int tab_big(size_t slots)
{
	return slots >= HTAB_BIG_SLOTS;
}

/* Allocates a table of slots slots, not cleared. */
static void tab_alloc(size_t slots, uint32_t **hash, uint32_t **val)
{
	unsigned char *b = tab_big(slots) ? xmap(tab_bytes(slots))
					  : xmalloc(tab_bytes(slots));

	*hash = (uint32_t *)b;
	*val = (uint32_t *)(b + slots * sizeof(uint32_t));
}

static void tab_free(uint32_t *hash, size_t slots)
{
	if (hash == NULL)
		return;
	if (tab_big(slots))
		xunmap(hash, tab_bytes(slots));
	else
		free(hash);
}

/* Clears slots [from, to) of a table. */
static void tab_clear(uint32_t *hash, uint32_t *val, size_t from, size_t to)
{
	memset(hash + from, 0, (to - from) * sizeof(*hash));
	memset(val + from, 0, (to - from) * sizeof(*val));
}

/* Gives back what is left of a freed table: all of it, or one step. */
static void dead_free(struct htab *t, size_t max)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t k = max < t->dead_len ? (max + page - 1) / page * page
				     : t->dead_len;

	if (k > t->dead_len)
		k = t->dead_len;
	xunmap(t->dead, k);
	t->dead += k;
	t->dead_len -= k;
	if (t->dead_len == 0)
		t->dead = NULL;
}

/* Forgets the old table (its slots have moved, or are dropped). */
static void drop_old(struct htab *t)
{
	size_t slots = t->old_mask + 1;

	if (t->old_hash != NULL && tab_big(slots)) {
		if (t->dead != NULL)
			dead_free(t, SIZE_MAX);
		t->dead = (unsigned char *)t->old_hash;
		t->dead_len = tab_bytes(slots);
	} else {
		tab_free(t->old_hash, slots);
	}
	t->old_hash = NULL;
	t->old_val = NULL;
	t->old_mask = t->old_pos = 0;
}

/* Drops every table but the current one, at once. */
static void drop_spare(struct htab *t)
{
	drop_old(t);
	if (t->dead != NULL)
		dead_free(t, SIZE_MAX);
	if (t->next_hash != NULL)
		tab_free(t->next_hash, 2 * (t->mask + 1));
	t->next_hash = NULL;
	t->next_val = NULL;
	t->next_ready = 0;
}

void htab_free(struct htab *t)
{
	if (t == NULL)
		return;
	drop_spare(t);
	if (t->hash != NULL)
		tab_free(t->hash, t->mask + 1);
	memset(t, 0, sizeof(*t));
}

void htab_clear(struct htab *t)
{
	drop_spare(t);
	if (t->val != NULL)
		memset(t->val, 0, (t->mask + 1) * sizeof(*t->val));
	t->n = 0;
}

/* A slot keeps a hash folded to 32 bits, which also picks its slot. */
static uint32_t fold(uint64_t h)
{
	return (uint32_t)(h ^ (h >> 32));
}

/* Puts a slot's stored value (the value plus one) under folded hash h. */
static void put_slot(struct htab *t, uint32_t h, uint32_t stored)
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

/* The put that passes 3/4 load: the next table (ready, or made so now)
 * takes the current one's place, which becomes the old one. */
static void double_now(struct htab *t)
{
	size_t slots = 2 * (t->mask + 1);

	/* The previous doubling has moved everything by now (a put moves
	 * HTAB_MOVE_STEP slots, the old table had fewer than HTAB_MOVE_STEP
	 * times the puts since); finish it anyway. */
	move_old(t, SIZE_MAX);
	if (t->next_hash == NULL) {
		tab_alloc(slots, &t->next_hash, &t->next_val);
		t->next_ready = 0;
	}
	tab_clear(t->next_hash, t->next_val, t->next_ready, slots);
	t->old_hash = t->hash;
	t->old_val = t->val;
	t->old_mask = t->mask;
	t->old_pos = 0;
	t->hash = t->next_hash;
	t->val = t->next_val;
	t->mask = slots - 1;
	t->next_hash = NULL;
	t->next_val = NULL;
	t->next_ready = 0;
}

/* From 5/8 load on, a large table's successor is allocated and cleared a
 * slice per put, so that it is whole when the doubling comes. */
static void prepare_next(struct htab *t)
{
	size_t slots = t->mask + 1, next = 2 * slots;
	size_t left, puts, k;

	if (t->next_hash == NULL) {
		if (!tab_big(next) || t->n * 8 < slots * 5)
			return;
		tab_alloc(next, &t->next_hash, &t->next_val);
		t->next_ready = 0;
	}
	left = next - t->next_ready;
	/* The doubling comes with the put that finds n at 3/4 of slots. */
	puts = slots / 4 * 3 > t->n ? slots / 4 * 3 - t->n : 1;
	k = (left + puts - 1) / puts;
	if (k < HTAB_PREP_STEP)
		k = HTAB_PREP_STEP;
	if (k > left)
		k = left;
	tab_clear(t->next_hash, t->next_val, t->next_ready,
		  t->next_ready + k);
	t->next_ready += k;
}

void htab_put(struct htab *t, uint64_t h, uint32_t v)
{
	if (t->val == NULL) {
		tab_alloc(HTAB_MIN_SLOTS, &t->hash, &t->val);
		tab_clear(t->hash, t->val, 0, HTAB_MIN_SLOTS);
		t->mask = HTAB_MIN_SLOTS - 1;
	} else if ((t->n + 1) * 4 > (t->mask + 1) * 3) {
		double_now(t);
	}
	prepare_next(t);
	move_old(t, HTAB_MOVE_STEP);
	if (t->dead != NULL && t->n % HTAB_FREE_EVERY == 0)
		dead_free(t, HTAB_FREE_STEP);
	put_slot(t, fold(h), v + 1);
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
	it->h = fold(h);
	it->i = it->h & t->mask;
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

size_t htab_bytes(const struct htab *t)
{
	size_t n = t->dead_len;

	if (t->val != NULL)
		n += tab_bytes(t->mask + 1);
	if (t->old_val != NULL)
		n += tab_bytes(t->old_mask + 1);
	if (t->next_val != NULL)
		n += tab_bytes(2 * (t->mask + 1));
	return n;
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
