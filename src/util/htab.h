/*
 * htab.h - the hash index the modules share, and the one string hash.
 *
 * A table maps 64-bit hashes to 32-bit values, normally indices into an
 * array the caller keeps: the items stay where the caller put them (in
 * creation order, so iteration never depends on addresses), and a lookup
 * narrows them to those whose hash folds to the same 32 bits (h ^ h >> 32:
 * the same hash, or about one in four billion others), for the caller to
 * compare keys. A slot is 8 bytes: the folded hash and the value. Open
 * addressing with linear probing; the table doubles at 3/4
 * load, so it grows with its items and no further (the caller caps those).
 *
 * No single put pays for the size of the table, so a large one (of
 * HTAB_BIG_SLOTS slots or more, millions for a store of strings) never
 * stalls its caller's loop:
 * - the doubled table is made ready in advance: from 5/8 load on, each put
 *   clears a slice of it (HTAB_PREP_STEP slots or what is left over the
 *   puts left), so its pages come in a few at a time and not all in the
 *   first puts after the doubling, which land on random pages;
 * - after the doubling, each put moves HTAB_MOVE_STEP old slots, and
 *   lookups search both tables meanwhile;
 * - the old table, once empty, goes back to the system HTAB_FREE_STEP bytes
 *   every HTAB_FREE_EVERY puts (unmapping tens of MB at once takes
 *   milliseconds, and each unmapping costs a system call).
 * Tables below HTAB_BIG_SLOTS are allocated, cleared and freed at once.
 * A zeroed struct htab is an empty table; nothing is allocated before the
 * first htab_put().
 *
 * The hashes: FNV-1a over bytes (streamable, from HASH_SEED), a combiner
 * for tuples and the splitmix64 finalizer that spreads every input bit over
 * the slot index; hash_bytes() and hash_str() apply FNV-1a and the
 * finalizer.
 */
#ifndef MDS_HTAB_H
#define MDS_HTAB_H

#include <stddef.h>
#include <stdint.h>

/* The value no slot holds: what htab_first() and htab_next() return at the
 * end. Never a value of htab_put(). */
#define HTAB_NONE UINT32_MAX

#define HTAB_BIG_SLOTS ((size_t)1 << 15) /* prepared and freed in steps */
#define HTAB_MOVE_STEP 64    /* old slots moved per put while doubling */
#define HTAB_PREP_STEP 32    /* least next-table slots cleared per put */
#define HTAB_FREE_STEP ((size_t)1 << 20) /* bytes of an old table freed */
#define HTAB_FREE_EVERY 256  /* ... every so many puts */

struct htab {
	uint32_t *hash; /* folded */
	uint32_t *val;
	size_t mask; /* slots - 1, or 0 before the first put */
	size_t n;    /* values held, in both tables */
	/* The table before the last doubling, while its slots move: those
	 * before old_pos have moved (their values are ignored there). */
	uint32_t *old_hash;
	uint32_t *old_val;
	size_t old_mask, old_pos;
	/* The table of the next doubling (twice the slots), slots
	 * [0, next_ready) cleared so far; a large table only. */
	uint32_t *next_hash;
	uint32_t *next_val;
	size_t next_ready;
	/* What is left of a large table emptied by its moves, going back to
	 * the system a step a put. */
	unsigned char *dead;
	size_t dead_len;
};

/* A lookup in progress; see htab_first(). */
struct htab_iter {
	const struct htab *t;
	uint32_t h; /* folded */
	size_t i;
	int in_old; /* searching the table before the doubling */
};

/* Frees the table's arrays and leaves it empty (zeroed). NULL is fine. */
void htab_free(struct htab *t);

/* Forgets every value, keeping the allocation for the next puts. */
void htab_clear(struct htab *t);

/*
 * Adds v (not HTAB_NONE) under hash h. The table does not look for a value
 * already there: a caller that wants one value per key looks it up first.
 */
void htab_put(struct htab *t, uint64_t h, uint32_t v);

/*
 * Starts a lookup of h: returns the first value put under h (or under a
 * hash that folds to the same 32 bits: the caller compares keys), or
 * HTAB_NONE; htab_next() returns the following ones. Values come in no
 * particular order. The table must not change during a lookup.
 */
uint32_t htab_first(const struct htab *t, uint64_t h, struct htab_iter *it);
uint32_t htab_next(struct htab_iter *it);

/* The number of values held. */
size_t htab_count(const struct htab *t);

/* The bytes the table's arrays take (current, old, next and what is left of
 * a freed one). */
size_t htab_bytes(const struct htab *t);

/* FNV-1a's offset basis: the h to start hash_fnv1a() from. */
#define HASH_SEED 0xcbf29ce484222325ULL

/* Continues an FNV-1a hash h over n bytes at p; feed pieces in order. */
uint64_t hash_fnv1a(uint64_t h, const void *p, size_t n);

/* Combines h with v (for a tuple of hashes); not commutative. */
uint64_t hash_mix(uint64_t h, uint64_t v);

/* The splitmix64 finalizer: use it on a hash before it picks a slot. */
uint64_t hash_fin(uint64_t h);

/* hash_fin(hash_fnv1a(HASH_SEED, p, n)): a table-ready hash of bytes. */
uint64_t hash_bytes(const void *p, size_t n);

/* hash_bytes(s, strlen(s)). */
uint64_t hash_str(const char *s);

#endif
