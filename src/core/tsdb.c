/*
 * tsdb.c - the in-memory time-series store; see tsdb.h.
 *
 * Everything is addressed by index: interned strings, series, metrics (one
 * per namespace + name) and postings (one per metric + dimension key +
 * value, listing its series) sit in growable arrays, found through hash
 * tables of indices (util/htab.h). Hashes are computed from string
 * contents, so iteration orders (creation order) never depend on addresses.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tsdb.h"
#include "core/tsdb_int.h"
#include "util/err.h"
#include "util/htab.h"
#include "util/xalloc.h"

#define ARENA_BLOCK 65536

struct arena {
	struct arena *next;
	size_t used;
	char data[ARENA_BLOCK];
};

/* The series of one (namespace, metric name). */
struct metric {
	const char *ns, *name;
	uint32_t *ids;
	uint32_t n, cap;
	uint32_t index; /* its own */
};

/* The series of one metric that carry one dimension key=value (key and
 * value as indices of interned strings). Most values (instance ids,
 * hostile ones) name one series: its id is kept in place; from the second
 * one on they are in an array of 4 ids, then of the power of two at or
 * above n. */
struct posting {
	uint32_t metric, key, value;
	uint32_t n;
	union {
		uint32_t one;  /* while n == 1 */
		uint32_t *ids; /* once n > 1 */
	} u;
};

static void push_id(struct tsdb *db, uint32_t **ids, uint32_t *n,
		    uint32_t *cap, uint32_t id)
{
	if (*n == *cap) {
		db->var_bytes += (size_t)(*cap ? *cap : 4) * sizeof(**ids);
		*cap = *cap ? *cap * 2 : 4;
		*ids = xreallocarray(*ids, *cap, sizeof(**ids));
	}
	(*ids)[(*n)++] = id;
}

static void posting_add(struct tsdb *db, struct posting *p, uint32_t id)
{
	if (p->n == 0) {
		p->u.one = id;
	} else if (p->n == 1) {
		uint32_t first = p->u.one;

		p->u.ids = xreallocarray(NULL, 4, sizeof(*p->u.ids));
		db->var_bytes += 4 * sizeof(*p->u.ids);
		p->u.ids[0] = first;
	} else if (p->n >= 4 && (p->n & (p->n - 1)) == 0) {
		/* Full: 4, 8, 16 ... ids. */
		p->u.ids = xreallocarray(p->u.ids, 2 * (size_t)p->n,
					 sizeof(*p->u.ids));
		db->var_bytes += (size_t)p->n * sizeof(*p->u.ids);
	}
	if (p->n > 0)
		p->u.ids[p->n] = id;
	p->n++;
}

static const uint32_t *posting_ids(const struct posting *p)
{
	return p->n > 1 ? p->u.ids : &p->u.one;
}

/* --- interned strings ---------------------------------------------------- */

/* An interned string: in an arena, after a byte that holds its length
 * (at most TSDB_MAX_STR) and before its terminator; the store keeps its
 * address by index. */
static const char *istr_at(const struct tsdb *db, uint32_t i)
{
	return *(const char *const *)segvec_at(&db->strs, i);
}

_Static_assert(TSDB_MAX_STR <= 255, "a string's length fits its byte");

static uint32_t istr_len(const char *s)
{
	return (unsigned char)s[-1];
}

static struct metric *metric_at(const struct tsdb *db, uint32_t i)
{
	return segvec_at(&db->metrics, i);
}

static struct posting *posting_at(const struct tsdb *db, uint32_t i)
{
	return segvec_at(&db->postings, i);
}

/* The index of the interned copy of s (len bytes, hash h), or HTAB_NONE. */
static uint32_t intern_find(const struct tsdb *db, const char *s,
			    uint32_t len, uint64_t h)
{
	struct htab_iter it;

	for (uint32_t v = htab_first(&db->strs_ht, h, &it); v != HTAB_NONE;
	     v = htab_next(&it)) {
		const char *is = istr_at(db, v);

		if (istr_len(is) == len && memcmp(is, s, len) == 0)
			return v;
	}
	return HTAB_NONE;
}

/* Stores a string the store lacks (intern_find() said so); returns its
 * index. */
static uint32_t intern_store(struct tsdb *db, const char *s, uint32_t len,
			     uint64_t h)
{
	struct arena *a = db->arena;
	uint32_t i = (uint32_t)db->strs.n;
	char *copy;

	if (a == NULL || ARENA_BLOCK - a->used < (size_t)len + 2) {
		a = xmalloc(sizeof(*a));
		db->var_bytes += sizeof(*a);
		a->next = db->arena;
		a->used = 0;
		db->arena = a;
	}
	copy = a->data + a->used + 1;
	copy[-1] = (char)len;
	memcpy(copy, s, len);
	copy[len] = '\0';
	a->used += (size_t)len + 2;
	db->str_bytes += (size_t)len + 1;
	*(const char **)segvec_push(&db->strs) = copy;
	htab_put(&db->strs_ht, h, i);
	return i;
}

/* Completes ix[] (what series_find_ident() found of id's strings): the
 * strings not found are stored, each once however often id repeats it. */
static void intern_ident(struct tsdb *db, const struct ident *id,
			 uint32_t *ix)
{
	for (size_t i = 0; i < id->nstr; i++) {
		for (size_t j = 0; j < i && ix[i] == HTAB_NONE; j++)
			if (id->h[j] == id->h[i] && id->len[j] == id->len[i] &&
			    memcmp(id->s[j], id->s[i], id->len[i]) == 0)
				ix[i] = ix[j];
		if (ix[i] == HTAB_NONE)
			ix[i] = intern_store(db, id->s[i], id->len[i],
					     id->h[i]);
	}
}

/* Looks up an arbitrary C string: the index of its interned copy, or
 * HTAB_NONE if the store has never seen it. */
static uint32_t intern_lookup(const struct tsdb *db, const char *s,
			      uint64_t *h_out)
{
	size_t len = strlen(s);
	uint64_t h;

	if (len > TSDB_MAX_STR)
		return HTAB_NONE;
	h = hash_bytes(s, len);
	if (h_out != NULL)
		*h_out = h;
	return intern_find(db, s, (uint32_t)len, h);
}

/* --- creation ------------------------------------------------------------ */

void tsdb_options_default(struct tsdb_options *opt)
{
	opt->max_series = 100000;
	opt->max_string_bytes = (size_t)512 << 20;
	opt->raw_capacity = 9000;
	opt->raw_window_ms = 15 * 60 * 1000LL;
	opt->agg_window_ms = 24 * 60 * 60 * 1000LL;
}

int tsdb_create(const struct tsdb_options *opt, struct tsdb **out, char *diag,
		size_t diagsz)
{
	struct tsdb_options def;
	struct tsdb *db;

	if (opt == NULL) {
		tsdb_options_default(&def);
		opt = &def;
	}
	if (opt->max_series < 1 || opt->max_series > (1u << 24)) {
		mds_diag(diag, diagsz, "max_series must be 1 to %u",
			 1u << 24);
		return MDS_E_INVAL;
	}
	if (opt->max_string_bytes < ((size_t)64 << 10) ||
	    (uint64_t)opt->max_string_bytes > ((uint64_t)1 << 40)) {
		mds_diag(diag, diagsz, "max_string_bytes must be 64 KiB to "
			 "1 TiB");
		return MDS_E_INVAL;
	}
	if (opt->raw_capacity < 1 || opt->raw_capacity > (1u << 24)) {
		mds_diag(diag, diagsz, "raw_capacity must be 1 to %u",
			 1u << 24);
		return MDS_E_INVAL;
	}
	if (opt->agg_window_ms < TSDB_BUCKET_MS ||
	    opt->agg_window_ms > 7 * 86400000LL ||
	    opt->agg_window_ms % TSDB_BUCKET_MS != 0) {
		mds_diag(diag, diagsz, "agg_window_ms must be a whole number "
			 "of minutes, 1 minute to 7 days");
		return MDS_E_INVAL;
	}
	if (opt->raw_window_ms < 1000 ||
	    opt->raw_window_ms > opt->agg_window_ms) {
		mds_diag(diag, diagsz,
			 "raw_window_ms must be 1 s to agg_window_ms");
		return MDS_E_INVAL;
	}
	db = xcalloc(1, sizeof(*db));
	db->opt = *opt;
	segvec_init(&db->strs, sizeof(const char *));
	segvec_init(&db->series, sizeof(struct tsdb_series *));
	segvec_init(&db->metrics, sizeof(struct metric));
	segvec_init(&db->postings, sizeof(struct posting));
	db->agg_capacity = (uint32_t)(opt->agg_window_ms / TSDB_BUCKET_MS);
	*out = db;
	return 0;
}

void tsdb_free(struct tsdb *db)
{
	if (db == NULL)
		return;
	for (size_t i = 0; i < db->nseries; i++) {
		struct tsdb_series *s = tsdb_series_at(db, i);

		free(s->dims);
		free(s->raw);
		free(s->agg);
		free(s);
	}
	for (size_t i = 0; i < db->metrics.n; i++)
		free(metric_at(db, (uint32_t)i)->ids);
	for (size_t i = 0; i < db->postings.n; i++)
		if (posting_at(db, (uint32_t)i)->n > 1)
			free(posting_at(db, (uint32_t)i)->u.ids);
	while (db->arena != NULL) {
		struct arena *next = db->arena->next;

		free(db->arena);
		db->arena = next;
	}
	segvec_free(&db->strs);
	segvec_free(&db->series);
	segvec_free(&db->metrics);
	segvec_free(&db->postings);
	htab_free(&db->strs_ht);
	htab_free(&db->series_ht);
	htab_free(&db->metrics_ht);
	htab_free(&db->postings_ht);
	free(db);
}

const struct tsdb_options *tsdb_options(const struct tsdb *db)
{
	return &db->opt;
}

size_t tsdb_series_count(const struct tsdb *db)
{
	return db->nseries;
}

/* --- series identity ----------------------------------------------------- */

static int check_str(const char *what, const char *s, int may_be_empty,
		     uint32_t *len_out, char *diag, size_t diagsz)
{
	size_t len;

	if (s == NULL) {
		mds_diag(diag, diagsz, "%s is missing", what);
		return MDS_E_INVAL;
	}
	len = strnlen(s, TSDB_MAX_STR + 1);
	if (len > TSDB_MAX_STR) {
		mds_diag(diag, diagsz, "%s is longer than %d bytes", what,
			 TSDB_MAX_STR);
		return MDS_E_LIMIT;
	}
	if (len == 0 && !may_be_empty) {
		mds_diag(diag, diagsz, "%s is empty", what);
		return MDS_E_INVAL;
	}
	*len_out = (uint32_t)len;
	return 0;
}

int tsdb_ident_prepare(struct ident *id, const char *ns, const char *name,
		       const struct tsdb_dim *dims, size_t ndims, char *diag,
		       size_t diagsz)
{
	const struct tsdb_dim *sorted[TSDB_MAX_DIMS];
	int rc;

	if (ndims > TSDB_MAX_DIMS) {
		mds_diag(diag, diagsz, "more than %d dimensions",
			 TSDB_MAX_DIMS);
		return MDS_E_LIMIT;
	}
	rc = check_str("namespace", ns, 0, &id->len[0], diag, diagsz);
	if (rc == 0)
		rc = check_str("metric name", name, 0, &id->len[1], diag,
			       diagsz);
	if (rc != 0)
		return rc;
	id->s[0] = ns;
	id->s[1] = name;
	/* Insertion sort by key: at most 16 entries. */
	for (size_t i = 0; i < ndims; i++) {
		size_t j = i;

		rc = check_str("dimension key", dims[i].key, 0,
			       &id->len[2], diag, diagsz);
		if (rc == 0)
			rc = check_str("dimension value", dims[i].value, 1,
				       &id->len[3], diag, diagsz);
		if (rc != 0)
			return rc;
		while (j > 0 && strcmp(sorted[j - 1]->key, dims[i].key) > 0) {
			sorted[j] = sorted[j - 1];
			j--;
		}
		sorted[j] = &dims[i];
	}
	for (size_t i = 0; i < ndims; i++) {
		if (i > 0 && strcmp(sorted[i - 1]->key, sorted[i]->key) == 0) {
			mds_diag(diag, diagsz, "dimension '%s' given twice",
				 sorted[i]->key);
			return MDS_E_INVAL;
		}
		id->s[2 + 2 * i] = sorted[i]->key;
		id->s[3 + 2 * i] = sorted[i]->value;
	}
	id->nstr = 2 + 2 * ndims;
	id->hash = 0;
	for (size_t i = 0; i < id->nstr; i++) {
		id->len[i] = (uint32_t)strlen(id->s[i]);
		id->h[i] = hash_bytes(id->s[i], id->len[i]);
		id->hash = hash_mix(id->hash, id->h[i]);
	}
	id->hash = hash_fin(id->hash);
	return 0;
}

/* Folds the hashes of a key, its value, the next key... (hash_str() of
 * each) into tsdb_dims_hash(). */
static uint64_t dims_hash_of(const uint64_t *h, size_t n)
{
	uint64_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc = hash_mix(hash_mix(acc, h[2 * i]), h[2 * i + 1]);
	return hash_fin(acc);
}

uint64_t tsdb_dims_hash(const struct tsdb_dim *dims, size_t n)
{
	uint64_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc = hash_mix(hash_mix(acc, hash_str(dims[i].key)),
			       hash_str(dims[i].value));
	return hash_fin(acc);
}

static uint64_t metric_hash(uint64_t ns_h, uint64_t name_h)
{
	return hash_fin(hash_mix(hash_mix(0, ns_h), name_h));
}

static uint64_t posting_hash(uint32_t metric, uint64_t key_h, uint64_t val_h)
{
	return hash_fin(hash_mix(hash_mix(hash_mix(1, metric), key_h), val_h));
}

static struct metric *metric_find(const struct tsdb *db, const char *ns,
				  const char *name, uint64_t h)
{
	struct htab_iter it;

	for (uint32_t v = htab_first(&db->metrics_ht, h, &it); v != HTAB_NONE;
	     v = htab_next(&it)) {
		struct metric *m = metric_at(db, v);

		if (m->ns == ns && m->name == name)
			return m;
	}
	return NULL;
}

static struct posting *posting_find(const struct tsdb *db, uint32_t metric,
				    uint32_t key, uint32_t value, uint64_t h)
{
	struct htab_iter it;

	for (uint32_t v = htab_first(&db->postings_ht, h, &it);
	     v != HTAB_NONE; v = htab_next(&it)) {
		struct posting *p = posting_at(db, v);

		if (p->metric == metric && p->key == key && p->value == value)
			return p;
	}
	return NULL;
}

/* Finds a series by its identity; *bytes (if not NULL) receives the
 * interned bytes of the identity's strings the store lacks, and ix[] (if
 * not NULL; 2 + 2 * TSDB_MAX_DIMS entries) the indices of the interned
 * copies found (HTAB_NONE for those it lacks). */
static struct tsdb_series *series_find_ident(const struct tsdb *db,
					     const struct ident *id,
					     size_t *bytes, uint32_t *ix)
{
	uint32_t mine[2 + 2 * TSDB_MAX_DIMS];
	const char *in[2 + 2 * TSDB_MAX_DIMS] = { NULL }; /* id->nstr set */
	size_t missing = 0;
	struct htab_iter it;

	if (ix == NULL)
		ix = mine;
	for (size_t i = 0; i < id->nstr; i++) {
		ix[i] = intern_find(db, id->s[i], id->len[i], id->h[i]);
		if (ix[i] == HTAB_NONE)
			missing += (size_t)id->len[i] + 1;
	}
	if (bytes != NULL)
		*bytes = missing;
	if (missing > 0)
		return NULL;
	for (size_t i = 0; i < id->nstr; i++)
		in[i] = istr_at(db, ix[i]);
	for (uint32_t v = htab_first(&db->series_ht, id->hash, &it);
	     v != HTAB_NONE; v = htab_next(&it)) {
		struct tsdb_series *s = tsdb_series_at(db, v);
		size_t k;

		/* The count first: in[] past id->nstr is not the identity's. */
		if (2 + 2 * (size_t)s->ndims != id->nstr ||
		    s->ns != in[0] || s->name != in[1])
			continue;
		for (k = 0; k < s->ndims; k++)
			if (s->dims[k].key != in[2 + 2 * k] ||
			    s->dims[k].value != in[3 + 2 * k])
				break;
		if (k == s->ndims)
			return s;
	}
	return NULL;
}

/* The metric (ns, name) of the new series s, created if need be. */
static uint32_t metric_get(struct tsdb *db, const struct ident *id,
			   const struct tsdb_series *s)
{
	uint64_t mh = metric_hash(id->h[0], id->h[1]);
	struct metric *m = metric_find(db, s->ns, s->name, mh);

	if (m != NULL)
		return m->index;
	m = segvec_push(&db->metrics);
	*m = (struct metric){ .ns = s->ns, .name = s->name,
			      .index = (uint32_t)(db->metrics.n - 1) };
	htab_put(&db->metrics_ht, mh, m->index);
	return m->index;
}

/* Adds the new series s (of id, interned as ix[]) to the posting of each
 * of its dimensions. */
static void postings_add(struct tsdb *db, const struct ident *id,
			 const uint32_t *ix, const struct tsdb_series *s)
{
	for (uint32_t k = 0; k < s->ndims; k++) {
		uint32_t key = ix[2 + 2 * k], value = ix[3 + 2 * k];
		uint64_t ph = posting_hash(s->metric, id->h[2 + 2 * k],
					   id->h[3 + 2 * k]);
		struct posting *p = posting_find(db, s->metric, key, value,
						 ph);

		if (p == NULL) {
			p = segvec_push(&db->postings);
			*p = (struct posting){ .metric = s->metric,
					       .key = key, .value = value };
			htab_put(&db->postings_ht, ph,
				 (uint32_t)(db->postings.n - 1));
		}
		posting_add(db, p, s->index);
	}
}

/* Creates the series of id; ix[] as series_find_ident() left it. */
static struct tsdb_series *series_create(struct tsdb *db,
					 const struct ident *id,
					 uint32_t *ix)
{
	struct tsdb_series *s = xcalloc(1, sizeof(*s));
	uint32_t sid = (uint32_t)db->nseries;

	intern_ident(db, id, ix);
	s->db = db;
	s->ns = istr_at(db, ix[0]);
	s->name = istr_at(db, ix[1]);
	s->ndims = (uint32_t)(id->nstr - 2) / 2;
	s->dims = xmalloc((s->ndims ? s->ndims : 1) * sizeof(*s->dims));
	db->var_bytes += sizeof(*s) + (s->ndims ? s->ndims : 1) *
					  sizeof(*s->dims);
	for (uint32_t k = 0; k < s->ndims; k++) {
		s->dims[k].key = istr_at(db, ix[2 + 2 * k]);
		s->dims[k].value = istr_at(db, ix[3 + 2 * k]);
	}
	s->hash = id->hash;
	/* From the hashes the identity has already: no pass over the
	 * strings. */
	s->dims_hash = dims_hash_of(id->h + 2, s->ndims);
	s->index = sid;
	s->newest = -1;
	s->raw_floor = INT64_MIN;
	*(struct tsdb_series **)segvec_push(&db->series) = s;
	db->nseries++;
	htab_put(&db->series_ht, s->hash, sid);
	s->metric = metric_get(db, id, s);
	{
		struct metric *m = metric_at(db, s->metric);

		push_id(db, &m->ids, &m->n, &m->cap, sid);
	}
	postings_add(db, id, ix, s);
	return s;
}

int tsdb_room(const struct tsdb *db, size_t series, size_t bytes,
	      char *diag, size_t diagsz)
{
	if (series > db->opt.max_series - db->nseries) {
		mds_diag(diag, diagsz, "the store holds %zu series; %zu more "
			 "would pass its maximum of %zu series", db->nseries,
			 series, db->opt.max_series);
		return MDS_E_LIMIT;
	}
	if (bytes > db->opt.max_string_bytes - db->str_bytes) {
		mds_diag(diag, diagsz, "the store holds %zu bytes of "
			 "dimension and metric strings; %zu more would pass "
			 "its maximum of %zu bytes", db->str_bytes, bytes,
			 db->opt.max_string_bytes);
		return MDS_E_LIMIT;
	}
	return 0;
}

int tsdb_series_cost(const struct tsdb *db, const char *ns, const char *name,
		     const struct tsdb_dim *dims, size_t ndims, size_t *series,
		     size_t *bytes, char *diag, size_t diagsz)
{
	struct ident id;
	int rc;

	rc = tsdb_ident_prepare(&id, ns, name, dims, ndims, diag, diagsz);
	if (rc != 0)
		return rc;
	*series = series_find_ident(db, &id, bytes, NULL) == NULL ? 1 : 0;
	return 0;
}

int tsdb_series_get_or_create(struct tsdb *db, const char *ns,
			      const char *name, const struct tsdb_dim *dims,
			      size_t ndims, struct tsdb_series **out,
			      char *diag, size_t diagsz)
{
	uint32_t ix[2 + 2 * TSDB_MAX_DIMS];
	struct ident id;
	struct tsdb_series *s;
	size_t bytes;
	int rc;

	rc = tsdb_ident_prepare(&id, ns, name, dims, ndims, diag, diagsz);
	if (rc != 0)
		return rc;
	s = series_find_ident(db, &id, &bytes, ix);
	if (s == NULL) {
		rc = tsdb_room(db, 1, bytes, diag, diagsz);
		if (rc != 0)
			return rc;
		s = series_create(db, &id, ix);
	}
	*out = s;
	return 0;
}

struct tsdb_series *tsdb_series_find(const struct tsdb *db, const char *ns,
				     const char *name,
				     const struct tsdb_dim *dims, size_t ndims)
{
	struct ident id;

	if (tsdb_ident_prepare(&id, ns, name, dims, ndims, NULL, 0) != 0)
		return NULL;
	return series_find_ident(db, &id, NULL, NULL);
}

const char *tsdb_series_namespace(const struct tsdb_series *s)
{
	return s->ns;
}

const char *tsdb_series_name(const struct tsdb_series *s)
{
	return s->name;
}

const struct tsdb_dim *tsdb_series_dims(const struct tsdb_series *s,
					size_t *ndims)
{
	*ndims = s->ndims;
	return s->dims;
}

const char *tsdb_series_dim(const struct tsdb_series *s, const char *key)
{
	for (uint32_t k = 0; k < s->ndims; k++)
		if (strcmp(s->dims[k].key, key) == 0)
			return s->dims[k].value;
	return NULL;
}

uint64_t tsdb_series_dims_hash(const struct tsdb_series *s)
{
	return s->dims_hash;
}

int64_t tsdb_series_newest(const struct tsdb_series *s)
{
	return s->newest;
}

uint32_t tsdb_series_index(const struct tsdb_series *s)
{
	return s->index;
}

struct tsdb_series *tsdb_series_at(const struct tsdb *db, size_t i)
{
	return i < db->nseries ? *(struct tsdb_series **)segvec_at(&db->series,
								   i)
			       : NULL;
}

size_t tsdb_strings_bytes(const struct tsdb *db)
{
	return db->str_bytes;
}

size_t tsdb_memory(const struct tsdb *db)
{
	size_t n = sizeof(*db) + db->var_bytes;

	n += segvec_bytes(&db->strs) + segvec_bytes(&db->series) +
	     segvec_bytes(&db->metrics) + segvec_bytes(&db->postings);
	n += htab_bytes(&db->strs_ht) + htab_bytes(&db->series_ht) +
	     htab_bytes(&db->metrics_ht) + htab_bytes(&db->postings_ht);
	return n;
}

/* --- selection ----------------------------------------------------------- */

int tsdb_glob_match(const char *pat, const char *text)
{
	const char *star = NULL, *resume = NULL;

	/* Greedy with one backtrack point: linear in practice, O(n*m) worst. */
	while (*text != '\0') {
		if (*pat == '*') {
			star = ++pat;
			resume = text;
		} else if (*pat == *text) {
			pat++;
			text++;
		} else if (star != NULL) {
			pat = star;
			text = ++resume;
		} else {
			return 0;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

/* A term with its key (and, for EQ/NE, value) resolved to interned strings. */
struct rterm {
	const char *key;   /* NULL: no series has this key */
	const char *value; /* interned for EQ/NE (NULL: unseen), else pattern */
	enum tsdb_match op;
};

static int term_holds(const struct tsdb_series *s, const struct rterm *t)
{
	const char *v = NULL;

	if (t->key != NULL)
		for (uint32_t k = 0; k < s->ndims; k++)
			if (s->dims[k].key == t->key) {
				v = s->dims[k].value;
				break;
			}
	switch (t->op) {
	case TSDB_MATCH_EQ:
		return v != NULL && v == t->value;
	case TSDB_MATCH_NE:
		return v == NULL || v != t->value;
	case TSDB_MATCH_GLOB:
		return v != NULL && tsdb_glob_match(t->value, v);
	case TSDB_MATCH_NOT_GLOB:
		return v == NULL || !tsdb_glob_match(t->value, v);
	}
	return 0;
}

int tsdb_select(const struct tsdb *db, const char *ns, const char *name,
		const struct tsdb_clause *clauses, size_t nclauses,
		tsdb_select_fn fn, void *arg)
{
	uint32_t pos = 0;

	return tsdb_select_from(db, ns, name, clauses, nclauses, &pos, fn,
				arg);
}

int tsdb_select_from(const struct tsdb *db, const char *ns, const char *name,
		     const struct tsdb_clause *clauses, size_t nclauses,
		     uint32_t *pos, tsdb_select_fn fn, void *arg)
{
	int more;

	return tsdb_select_some(db, ns, name, clauses, nclauses, pos,
				SIZE_MAX, &more, fn, arg);
}

int tsdb_select_some(const struct tsdb *db, const char *ns, const char *name,
		     const struct tsdb_clause *clauses, size_t nclauses,
		     uint32_t *pos, size_t max_look, int *more,
		     tsdb_select_fn fn, void *arg)
{
	struct rterm local[16], *rt = local;
	size_t nterms = 0, ri = 0;
	const uint32_t *ids;
	uint32_t nids;
	uint32_t ins, iname;
	const struct metric *m;
	const struct posting *index = NULL;
	uint64_t nsh = 0, nameh = 0;
	int rc = 0;

	*more = 0;
	ins = intern_lookup(db, ns, &nsh);
	iname = intern_lookup(db, name, &nameh);
	if (ins == HTAB_NONE || iname == HTAB_NONE)
		return 0;
	m = metric_find(db, istr_at(db, ins), istr_at(db, iname),
			metric_hash(nsh, nameh));
	if (m == NULL)
		return 0;
	for (size_t c = 0; c < nclauses; c++)
		nterms += clauses[c].nterms;
	if (nterms > sizeof(local) / sizeof(local[0]))
		rt = xmalloc(nterms * sizeof(*rt));
	for (size_t c = 0; c < nclauses; c++) {
		for (size_t k = 0; k < clauses[c].nterms; k++) {
			const struct tsdb_term *t = &clauses[c].terms[k];
			struct rterm *r = &rt[ri++];
			uint64_t kh = 0, vh = 0;
			uint32_t kx, vx = HTAB_NONE;

			r->op = t->op;
			kx = intern_lookup(db, t->key, &kh);
			r->key = kx != HTAB_NONE ? istr_at(db, kx) : NULL;
			r->value = t->value;
			if (t->op == TSDB_MATCH_EQ || t->op == TSDB_MATCH_NE) {
				vx = intern_lookup(db, t->value, &vh);
				r->value = vx != HTAB_NONE ? istr_at(db, vx)
							   : NULL;
			}
			if (clauses[c].nterms != 1 || t->op != TSDB_MATCH_EQ ||
			    index != NULL)
				continue;
			/* An exact single-term clause: use the index. */
			if (r->key == NULL || r->value == NULL)
				goto out; /* nothing can match */
			index = posting_find(db, m->index, kx, vx,
					     posting_hash(m->index, kh, vh));
			if (index == NULL)
				goto out;
		}
	}
	ids = index != NULL ? posting_ids(index) : m->ids;
	nids = index != NULL ? index->n : m->n;
	for (uint32_t i = *pos; i < nids && rc == 0; i++) {
		if (max_look-- == 0) {
			*more = 1;
			break;
		}

		const struct tsdb_series *s = tsdb_series_at(db, ids[i]);
		const struct rterm *r = rt;
		int all = 1;

		for (size_t c = 0; c < nclauses && all; c++) {
			int any = 0;

			for (size_t k = 0; k < clauses[c].nterms; k++)
				if (!any && term_holds(s, &r[k]))
					any = 1;
			r += clauses[c].nterms;
			all = any;
		}
		if (all)
			rc = fn(s, arg);
		*pos = i + 1;
	}
out:
	if (rt != local)
		free(rt);
	return rc;
}
