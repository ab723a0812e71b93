/*
 * tsdb_int.h - inside the time-series store (core/tsdb.h), for tsdb.c,
 * tsdb_ring.c and tsdb_image.c only: the store's records and the few
 * helpers the three share.
 *
 * tsdb.c holds identity (interned strings, series, metrics, postings) and
 * selection; tsdb_ring.c the rings (appending and reading samples);
 * tsdb_image.c the image (tsdb_dump, tsdb_load and their one-series forms).
 */
#ifndef MDS_TSDB_INT_H
#define MDS_TSDB_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/tsdb.h"
#include "util/htab.h"
#include "util/segvec.h"

#define RAW_INITIAL 4
#define AGG_INITIAL 2

struct tsdb_series {
	struct tsdb *db;
	const char *ns, *name;
	struct tsdb_dim *dims;
	uint32_t ndims;
	uint32_t metric;
	uint32_t index; /* creation order */
	uint64_t hash;
	uint64_t dims_hash; /* tsdb_dims_hash(dims, ndims) */
	int64_t newest;    /* -1 while empty */
	int64_t raw_floor; /* raw holds every kept sample at or after this */
	struct tsdb_sample *raw;
	uint32_t raw_cap, raw_head, raw_n;
	struct tsdb_bucket *agg;
	uint32_t agg_cap, agg_head, agg_n;
};

struct tsdb {
	struct tsdb_options opt;
	uint32_t agg_capacity; /* minute buckets per series */
	struct arena *arena;
	/* The arrays are segmented (util/segvec.h): however large the store,
	 * adding to it never copies one of them whole. */
	struct segvec strs; /* struct istr */
	size_t str_bytes; /* interned bytes, terminators included */
	size_t var_bytes; /* arenas, series, dims, rings and id arrays */
	struct htab strs_ht;
	struct segvec series; /* struct tsdb_series * */
	size_t nseries;
	struct htab series_ht;
	struct segvec metrics; /* struct metric */
	struct htab metrics_ht;
	struct segvec postings; /* struct posting */
	struct htab postings_ht;
};

/* A series identity from the caller, validated, sorted and hashed. */
struct ident {
	const char *s[2 + 2 * TSDB_MAX_DIMS];  /* ns, name, k0, v0, k1, ... */
	uint32_t len[2 + 2 * TSDB_MAX_DIMS];
	uint64_t h[2 + 2 * TSDB_MAX_DIMS];
	size_t nstr;
	uint64_t hash;
};

/* Validates, sorts (by key) and hashes a series identity into id. Returns
 * 0, or MDS_E_INVAL / MDS_E_LIMIT with diag (which may be NULL). */
int tsdb_ident_prepare(struct ident *id, const char *ns, const char *name,
		       const struct tsdb_dim *dims, size_t ndims, char *diag,
		       size_t diagsz);

/* The i-th oldest raw sample / minute bucket of s (i below raw_n /
 * agg_n). */
static inline struct tsdb_sample *raw_at(const struct tsdb_series *s,
					 uint32_t i)
{
	uint32_t j = s->raw_head + i;

	if (j >= s->raw_cap)
		j -= s->raw_cap;
	return &s->raw[j];
}

static inline struct tsdb_bucket *agg_at(const struct tsdb_series *s,
					 uint32_t i)
{
	uint32_t j = s->agg_head + i;

	if (j >= s->agg_cap)
		j -= s->agg_cap;
	return &s->agg[j];
}

#endif
