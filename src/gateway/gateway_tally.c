/*
 * gateway_tally.c - counts per key that every worker of the gateway
 * updates (struct tally, gateway_int.h): the clients per address and the
 * requests and bytes held per deployment, so that their limits hold for
 * the gateway as a whole.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "gateway/gateway_int.h"
#include "util/htab.h"
#include "util/xalloc.h"

/* The index may hold this many stale entries beyond the live ones before
 * it is made again. */
#define TALLY_SLACK 64u

void tally_init(struct tally *t)
{
	memset(t, 0, sizeof(*t));
	t->free = HTAB_NONE;
	uv_mutex_init(&t->mu);
}

void tally_free(struct tally *t)
{
	if (t == NULL)
		return;
	for (uint32_t i = 0; i < t->len; i++)
		free(t->v[i].key);
	free(t->v);
	htab_free(&t->ix);
	uv_mutex_destroy(&t->mu);
}

/* The live entry of key, or HTAB_NONE. */
static uint32_t tally_find(const struct tally *t, const char *key,
			   uint64_t h)
{
	struct htab_iter it;

	for (uint32_t v = htab_first(&t->ix, h, &it); v != HTAB_NONE;
	     v = htab_next(&it))
		if (t->v[v].key != NULL && strcmp(t->v[v].key, key) == 0)
			return v;
	return HTAB_NONE;
}

/* A new entry for key, counting nothing yet. */
static uint32_t tally_add(struct tally *t, const char *key, uint64_t h)
{
	uint32_t i = t->free;

	if (i != HTAB_NONE) {
		t->free = t->v[i].n;
	} else {
		if (t->len == t->cap) {
			t->cap = t->cap != 0 ? 2 * t->cap : 16;
			t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
		}
		i = t->len++;
	}
	t->v[i] = (struct tally_entry){ .key = xstrdup(key) };
	t->live++;
	htab_put(&t->ix, h, i);
	return i;
}

enum tally_full tally_take(struct tally *t, const char *key, uint64_t bytes,
			   const struct tally_max *max, uint32_t *ix)
{
	uint64_t h = hash_str(key);
	enum tally_full full = TALLY_OK;
	uint32_t i, n = 0;
	uint64_t b = 0;

	uv_mutex_lock(&t->mu);
	i = tally_find(t, key, h);
	if (i != HTAB_NONE) {
		n = t->v[i].n;
		b = t->v[i].bytes;
	}
	if (n >= max->n)
		full = TALLY_FULL_N;
	else if (t->n >= max->n_total)
		full = TALLY_FULL_N_TOTAL;
	else if (b + bytes > max->bytes)
		full = TALLY_FULL_BYTES;
	else if (t->bytes + bytes > max->bytes_total)
		full = TALLY_FULL_BYTES_TOTAL;
	if (full == TALLY_OK) {
		if (i == HTAB_NONE)
			i = tally_add(t, key, h);
		t->v[i].n++;
		t->v[i].bytes += bytes;
		t->n++;
		t->bytes += bytes;
		*ix = i;
	}
	uv_mutex_unlock(&t->mu);
	return full;
}

/* Makes the index again from the live entries. */
static void tally_reindex(struct tally *t)
{
	htab_clear(&t->ix);
	for (uint32_t i = 0; i < t->len; i++)
		if (t->v[i].key != NULL)
			htab_put(&t->ix, hash_str(t->v[i].key), i);
}

void tally_give(struct tally *t, uint32_t ix, uint64_t bytes)
{
	struct tally_entry *e;

	uv_mutex_lock(&t->mu);
	e = &t->v[ix];
	e->n--;
	e->bytes -= bytes;
	t->n--;
	t->bytes -= bytes;
	if (e->n == 0) {
		free(e->key);
		e->key = NULL;
		e->n = t->free;
		t->free = ix;
		t->live--;
		if (htab_count(&t->ix) > 2 * (size_t)t->live + TALLY_SLACK)
			tally_reindex(t);
	}
	uv_mutex_unlock(&t->mu);
}
