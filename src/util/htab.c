/* htab.c - see htab.h. */
#include <stdlib.h>
#include <string.h>

#include "util/htab.h"
#include "util/xalloc.h"

#define HTAB_MIN_SLOTS 16

void htab_free(struct htab *t)
{
	if (t == NULL)
		return;
	free(t->hash);
	free(t->val);
	memset(t, 0, sizeof(*t));
}

void htab_clear(struct htab *t)
{
	if (t->val != NULL)
		memset(t->val, 0xff, (t->mask + 1) * sizeof(*t->val));
	t->n = 0;
}

static void alloc_slots(struct htab *t, size_t slots)
{
	t->hash = xreallocarray(NULL, slots, sizeof(*t->hash));
	t->val = xreallocarray(NULL, slots, sizeof(*t->val));
	memset(t->val, 0xff, slots * sizeof(*t->val));
	t->mask = slots - 1;
}

static void put_slot(struct htab *t, uint64_t h, uint32_t v)
{
	size_t i = h & t->mask;

	while (t->val[i] != HTAB_NONE)
		i = (i + 1) & t->mask;
	t->hash[i] = h;
	t->val[i] = v;
}

void htab_put(struct htab *t, uint64_t h, uint32_t v)
{
	if (t->val == NULL) {
		alloc_slots(t, HTAB_MIN_SLOTS);
	} else if ((t->n + 1) * 4 > (t->mask + 1) * 3) {
		struct htab old = *t;

		alloc_slots(t, (old.mask + 1) * 2);
		for (size_t i = 0; i <= old.mask; i++)
			if (old.val[i] != HTAB_NONE)
				put_slot(t, old.hash[i], old.val[i]);
		free(old.hash);
		free(old.val);
	}
	put_slot(t, h, v);
	t->n++;
}

/* The value at or after slot it->i whose hash is it->h; the slot after it
 * is where the next search starts. */
static uint32_t scan(struct htab_iter *it)
{
	const struct htab *t = it->t;

	if (t->val == NULL)
		return HTAB_NONE;
	for (; t->val[it->i] != HTAB_NONE; it->i = (it->i + 1) & t->mask) {
		if (t->hash[it->i] == it->h) {
			uint32_t v = t->val[it->i];

			it->i = (it->i + 1) & t->mask;
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
