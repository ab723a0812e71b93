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
#include "util/err.h"
#include "util/htab.h"
#include "util/xalloc.h"

#define ARENA_BLOCK 65536
#define RAW_INITIAL 4
#define AGG_INITIAL 2
#define DUMP_MAGIC "MDSTSDB1"
#define DUMP_VERSION 1
#define DUMP_CHUNK 65536

struct istr {
	const char *s;
	uint64_t h;
	uint32_t len;
};

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
};

/* The series of one metric that carry one dimension key=value. Most
 * values (instance ids, hostile ones) name one series: its id is kept in
 * place, the array is allocated from the second one on (cap > 0). */
struct posting {
	uint32_t metric;
	const char *key, *value;
	union {
		uint32_t one;  /* while cap == 0 */
		uint32_t *ids; /* once cap > 0 */
	} u;
	uint32_t n, cap;
};

struct tsdb_series {
	struct tsdb *db;
	const char *ns, *name;
	struct tsdb_dim *dims;
	uint32_t ndims;
	uint32_t metric;
	uint32_t index; /* creation order */
	uint64_t hash;
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
	struct istr *strs;
	size_t nstrs, strs_cap;
	size_t str_bytes; /* interned bytes, terminators included */
	size_t var_bytes; /* arenas, series, dims, rings and id arrays */
	struct htab strs_ht;
	struct tsdb_series **series;
	size_t nseries, series_cap;
	struct htab series_ht;
	struct metric *metrics;
	size_t nmetrics, metrics_cap;
	struct htab metrics_ht;
	struct posting *postings;
	size_t npostings, postings_cap;
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

/* Grows a vector of elements so that one more fits. */
static void *grow_vec(void *v, size_t n, size_t *cap, size_t elem)
{
	if (n < *cap)
		return v;
	*cap = *cap ? *cap * 2 : 8;
	return xreallocarray(v, *cap, elem);
}

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
	uint32_t first = p->u.one;

	if (p->n == 0) {
		p->u.one = id;
		p->n = 1;
		return;
	}
	if (p->cap == 0) {
		p->u.ids = NULL;
		p->n = 0;
		push_id(db, &p->u.ids, &p->n, &p->cap, first);
	}
	push_id(db, &p->u.ids, &p->n, &p->cap, id);
}

static const uint32_t *posting_ids(const struct posting *p)
{
	return p->cap > 0 ? p->u.ids : &p->u.one;
}

/* --- interned strings ---------------------------------------------------- */

static const char *intern_find(const struct tsdb *db, const char *s,
			       uint32_t len, uint64_t h)
{
	struct htab_iter it;

	for (uint32_t v = htab_first(&db->strs_ht, h, &it); v != HTAB_NONE;
	     v = htab_next(&it)) {
		const struct istr *is = &db->strs[v];

		if (is->len == len && memcmp(is->s, s, len) == 0)
			return is->s;
	}
	return NULL;
}

static const char *intern_add(struct tsdb *db, const char *s, uint32_t len,
			      uint64_t h)
{
	const char *found = intern_find(db, s, len, h);
	struct arena *a = db->arena;
	char *copy;

	if (found != NULL)
		return found;
	if (a == NULL || ARENA_BLOCK - a->used < (size_t)len + 1) {
		a = xmalloc(sizeof(*a));
		db->var_bytes += sizeof(*a);
		a->next = db->arena;
		a->used = 0;
		db->arena = a;
	}
	copy = a->data + a->used;
	memcpy(copy, s, len);
	copy[len] = '\0';
	a->used += (size_t)len + 1;
	db->str_bytes += (size_t)len + 1;
	db->strs = grow_vec(db->strs, db->nstrs, &db->strs_cap,
			    sizeof(*db->strs));
	db->strs[db->nstrs] = (struct istr){ .s = copy, .h = h, .len = len };
	htab_put(&db->strs_ht, h, (uint32_t)db->nstrs);
	db->nstrs++;
	return copy;
}

/* Looks up an arbitrary C string; NULL if the store has never seen it. */
static const char *intern_lookup(const struct tsdb *db, const char *s,
				 uint64_t *h_out)
{
	size_t len = strlen(s);
	uint64_t h;

	if (len > TSDB_MAX_STR)
		return NULL;
	h = hash_bytes(s, len);
	if (h_out != NULL)
		*h_out = h;
	return intern_find(db, s, (uint32_t)len, h);
}

/* --- creation ------------------------------------------------------------ */

void tsdb_options_default(struct tsdb_options *opt)
{
	opt->max_series = 100000;
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
	db->agg_capacity = (uint32_t)(opt->agg_window_ms / TSDB_BUCKET_MS);
	*out = db;
	return 0;
}

void tsdb_free(struct tsdb *db)
{
	if (db == NULL)
		return;
	for (size_t i = 0; i < db->nseries; i++) {
		free(db->series[i]->dims);
		free(db->series[i]->raw);
		free(db->series[i]->agg);
		free(db->series[i]);
	}
	for (size_t i = 0; i < db->nmetrics; i++)
		free(db->metrics[i].ids);
	for (size_t i = 0; i < db->npostings; i++)
		if (db->postings[i].cap > 0)
			free(db->postings[i].u.ids);
	while (db->arena != NULL) {
		struct arena *next = db->arena->next;

		free(db->arena);
		db->arena = next;
	}
	free(db->strs);
	free(db->series);
	free(db->metrics);
	free(db->postings);
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

static int ident_prepare(struct ident *id, const char *ns, const char *name,
			 const struct tsdb_dim *dims, size_t ndims,
			 char *diag, size_t diagsz)
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
		struct metric *m = &db->metrics[v];

		if (m->ns == ns && m->name == name)
			return m;
	}
	return NULL;
}

static struct posting *posting_find(const struct tsdb *db, uint32_t metric,
				    const char *key, const char *value,
				    uint64_t h)
{
	struct htab_iter it;

	for (uint32_t v = htab_first(&db->postings_ht, h, &it);
	     v != HTAB_NONE; v = htab_next(&it)) {
		struct posting *p = &db->postings[v];

		if (p->metric == metric && p->key == key && p->value == value)
			return p;
	}
	return NULL;
}

/* Finds a series whose identity strings are all interned already. */
static struct tsdb_series *series_find_ident(const struct tsdb *db,
					     const struct ident *id)
{
	const char *in[2 + 2 * TSDB_MAX_DIMS] = { NULL };
	struct htab_iter it;

	for (size_t i = 0; i < id->nstr; i++) {
		in[i] = intern_find(db, id->s[i], id->len[i], id->h[i]);
		if (in[i] == NULL)
			return NULL;
	}
	for (uint32_t v = htab_first(&db->series_ht, id->hash, &it);
	     v != HTAB_NONE; v = htab_next(&it)) {
		struct tsdb_series *s = db->series[v];
		size_t k;

		if (s->ns != in[0] ||
		    s->name != in[1] || 2 + 2 * (size_t)s->ndims != id->nstr)
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

static struct tsdb_series *series_create(struct tsdb *db,
					 const struct ident *id)
{
	struct tsdb_series *s = xcalloc(1, sizeof(*s));
	uint32_t sid = (uint32_t)db->nseries;
	struct metric *m;
	uint64_t mh;

	s->db = db;
	s->ns = intern_add(db, id->s[0], id->len[0], id->h[0]);
	s->name = intern_add(db, id->s[1], id->len[1], id->h[1]);
	s->ndims = (uint32_t)(id->nstr - 2) / 2;
	s->dims = xmalloc((s->ndims ? s->ndims : 1) * sizeof(*s->dims));
	db->var_bytes += sizeof(*s) + (s->ndims ? s->ndims : 1) *
					  sizeof(*s->dims);
	for (uint32_t k = 0; k < s->ndims; k++) {
		s->dims[k].key = intern_add(db, id->s[2 + 2 * k],
					    id->len[2 + 2 * k],
					    id->h[2 + 2 * k]);
		s->dims[k].value = intern_add(db, id->s[3 + 2 * k],
					      id->len[3 + 2 * k],
					      id->h[3 + 2 * k]);
	}
	s->hash = id->hash;
	s->index = sid;
	s->newest = -1;
	s->raw_floor = INT64_MIN;
	db->series = grow_vec(db->series, db->nseries, &db->series_cap,
			      sizeof(*db->series));
	db->series[db->nseries++] = s;
	htab_put(&db->series_ht, s->hash, sid);

	mh = metric_hash(id->h[0], id->h[1]);
	m = metric_find(db, s->ns, s->name, mh);
	if (m == NULL) {
		db->metrics = grow_vec(db->metrics, db->nmetrics,
				       &db->metrics_cap, sizeof(*db->metrics));
		m = &db->metrics[db->nmetrics];
		*m = (struct metric){ .ns = s->ns, .name = s->name };
		htab_put(&db->metrics_ht, mh, (uint32_t)db->nmetrics);
		db->nmetrics++;
	}
	s->metric = (uint32_t)(m - db->metrics);
	push_id(db, &m->ids, &m->n, &m->cap, sid);

	for (uint32_t k = 0; k < s->ndims; k++) {
		uint64_t ph = posting_hash(s->metric, id->h[2 + 2 * k],
					   id->h[3 + 2 * k]);
		struct posting *p = posting_find(db, s->metric,
						 s->dims[k].key,
						 s->dims[k].value, ph);

		if (p == NULL) {
			db->postings = grow_vec(db->postings, db->npostings,
						&db->postings_cap,
						sizeof(*db->postings));
			p = &db->postings[db->npostings];
			*p = (struct posting){ .metric = s->metric,
					       .key = s->dims[k].key,
					       .value = s->dims[k].value };
			htab_put(&db->postings_ht, ph,
				 (uint32_t)db->npostings);
			db->npostings++;
		}
		posting_add(db, p, sid);
	}
	return s;
}

int tsdb_series_get_or_create(struct tsdb *db, const char *ns,
			      const char *name, const struct tsdb_dim *dims,
			      size_t ndims, struct tsdb_series **out,
			      char *diag, size_t diagsz)
{
	struct ident id;
	struct tsdb_series *s;
	int rc;

	rc = ident_prepare(&id, ns, name, dims, ndims, diag, diagsz);
	if (rc != 0)
		return rc;
	s = series_find_ident(db, &id);
	if (s == NULL) {
		if (db->nseries >= db->opt.max_series) {
			mds_diag(diag, diagsz,
				 "the store holds its maximum of %zu series",
				 db->opt.max_series);
			return MDS_E_LIMIT;
		}
		s = series_create(db, &id);
	}
	*out = s;
	return 0;
}

struct tsdb_series *tsdb_series_find(const struct tsdb *db, const char *ns,
				     const char *name,
				     const struct tsdb_dim *dims, size_t ndims)
{
	struct ident id;

	if (ident_prepare(&id, ns, name, dims, ndims, NULL, 0) != 0)
		return NULL;
	return series_find_ident(db, &id);
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
	return i < db->nseries ? db->series[i] : NULL;
}

size_t tsdb_strings_bytes(const struct tsdb *db)
{
	return db->str_bytes;
}

/* What a hash table holds: a hash and a value per slot. */
static size_t htab_bytes(const struct htab *t)
{
	size_t slots = (t->mask == 0 ? 0 : t->mask + 1) +
		       (t->old_val == NULL ? 0 : t->old_mask + 1);

	return slots * (sizeof(uint64_t) + sizeof(uint32_t));
}

size_t tsdb_memory(const struct tsdb *db)
{
	size_t n = sizeof(*db) + db->var_bytes;

	n += db->strs_cap * sizeof(*db->strs);
	n += db->series_cap * sizeof(*db->series);
	n += db->metrics_cap * sizeof(*db->metrics);
	n += db->postings_cap * sizeof(*db->postings);
	n += htab_bytes(&db->strs_ht) + htab_bytes(&db->series_ht) +
	     htab_bytes(&db->metrics_ht) + htab_bytes(&db->postings_ht);
	return n;
}

/* --- rings --------------------------------------------------------------- */

static struct tsdb_sample *raw_at(const struct tsdb_series *s, uint32_t i)
{
	uint32_t j = s->raw_head + i;

	if (j >= s->raw_cap)
		j -= s->raw_cap;
	return &s->raw[j];
}

static struct tsdb_bucket *agg_at(const struct tsdb_series *s, uint32_t i)
{
	uint32_t j = s->agg_head + i;

	if (j >= s->agg_cap)
		j -= s->agg_cap;
	return &s->agg[j];
}

/* Moves the ring into a new array of cap elements, oldest first. */
static void *ring_resize(void *ring, uint32_t *head, uint32_t n,
			 uint32_t oldcap, uint32_t cap, size_t elem)
{
	char *fresh = xmalloc((size_t)cap * elem);
	uint32_t first = oldcap - *head < n ? oldcap - *head : n;

	if (n > 0) {
		memcpy(fresh, (char *)ring + (size_t)*head * elem,
		       (size_t)first * elem);
		memcpy(fresh + (size_t)first * elem, ring,
		       (size_t)(n - first) * elem);
	}
	free(ring);
	*head = 0;
	return fresh;
}

static uint32_t next_cap(uint32_t cap, uint32_t initial, uint32_t max)
{
	uint64_t c = cap ? (uint64_t)cap * 2 : initial;

	return c > max ? max : (uint32_t)c;
}

static void raw_pop_front(struct tsdb_series *s)
{
	int64_t t = s->raw[s->raw_head].t;

	if (t + 1 > s->raw_floor)
		s->raw_floor = t + 1;
	s->raw_head = s->raw_head + 1 == s->raw_cap ? 0 : s->raw_head + 1;
	s->raw_n--;
}

/* Makes room for one more raw sample; returns 0 if the oldest went. */
static int raw_make_room(struct tsdb_series *s)
{
	uint32_t max = (uint32_t)s->db->opt.raw_capacity;

	if (s->raw_n < s->raw_cap)
		return 1;
	if (s->raw_cap < max) {
		uint32_t cap = next_cap(s->raw_cap, RAW_INITIAL, max);

		s->raw = ring_resize(s->raw, &s->raw_head, s->raw_n,
				     s->raw_cap, cap, sizeof(*s->raw));
		s->db->var_bytes += (size_t)(cap - s->raw_cap) *
				    sizeof(*s->raw);
		s->raw_cap = cap;
		return 1;
	}
	raw_pop_front(s);
	return 0;
}

static void bucket_init(struct tsdb_bucket *b, int64_t bt, int64_t t, double v)
{
	*b = (struct tsdb_bucket){ .t = bt, .last_t = t, .min = v, .max = v,
				   .sum = v, .last = v, .count = 1 };
}

static void agg_add(struct tsdb_series *s, int64_t t, double v)
{
	int64_t bt = t - t % TSDB_BUCKET_MS;
	uint32_t max = s->db->agg_capacity;
	uint32_t i = s->agg_n;
	struct tsdb_bucket *b;

	while (i > 0 && agg_at(s, i - 1)->t > bt)
		i--;
	if (i > 0 && agg_at(s, i - 1)->t == bt) {
		b = agg_at(s, i - 1);
		b->count++;
		b->sum += v;
		if (v < b->min)
			b->min = v;
		if (v > b->max)
			b->max = v;
		if (t >= b->last_t) {
			b->last = v;
			b->last_t = t;
		}
		return;
	}
	if (s->agg_n == s->agg_cap) {
		if (s->agg_cap < max) {
			uint32_t cap = next_cap(s->agg_cap, AGG_INITIAL, max);

			s->agg = ring_resize(s->agg, &s->agg_head, s->agg_n,
					     s->agg_cap, cap, sizeof(*s->agg));
			s->db->var_bytes += (size_t)(cap - s->agg_cap) *
					    sizeof(*s->agg);
			s->agg_cap = cap;
		} else {
			if (i == 0)
				return; /* older than everything kept */
			s->agg_head = s->agg_head + 1 == s->agg_cap ?
				      0 : s->agg_head + 1;
			s->agg_n--;
			i--;
		}
	}
	for (uint32_t j = s->agg_n; j > i; j--)
		*agg_at(s, j) = *agg_at(s, j - 1);
	s->agg_n++;
	bucket_init(agg_at(s, i), bt, t, v);
	/* Drop the buckets that fell out of the minute window. */
	bt = agg_at(s, s->agg_n - 1)->t - (int64_t)(max - 1) * TSDB_BUCKET_MS;
	while (s->agg_n > 0 && s->agg[s->agg_head].t < bt) {
		s->agg_head = s->agg_head + 1 == s->agg_cap ?
			      0 : s->agg_head + 1;
		s->agg_n--;
	}
}

int tsdb_series_append(struct tsdb_series *s, int64_t t, double v)
{
	int64_t window = s->db->opt.raw_window_ms;
	uint32_t i;

	if (!isfinite(v) || t < 0 || t > TSDB_MAX_TIME_MS ||
	    t < s->newest - window)
		return MDS_E_INVAL;
	if (t >= s->newest) {
		raw_make_room(s);
		*raw_at(s, s->raw_n) = (struct tsdb_sample){ .t = t, .v = v };
		s->raw_n++;
		s->newest = t;
		while (s->raw[s->raw_head].t < t - window)
			raw_pop_front(s);
	} else {
		/* Out of order: insert in place, shifting the newer ones. */
		i = s->raw_n;
		while (i > 0 && raw_at(s, i - 1)->t > t)
			i--;
		if (i == 0 && (t < s->raw_floor ||
			       (s->raw_n == s->raw_cap &&
				s->raw_cap == s->db->opt.raw_capacity)))
			return MDS_E_INVAL; /* older than the kept samples */
		if (raw_make_room(s) == 0)
			i--;
		for (uint32_t j = s->raw_n; j > i; j--)
			*raw_at(s, j) = *raw_at(s, j - 1);
		*raw_at(s, i) = (struct tsdb_sample){ .t = t, .v = v };
		s->raw_n++;
	}
	agg_add(s, t, v);
	return 0;
}

int tsdb_append(struct tsdb *db, const char *ns, const char *name,
		const struct tsdb_dim *dims, size_t ndims, int64_t t_ms,
		double value, char *diag, size_t diagsz)
{
	struct tsdb_series *s;
	int rc;

	/* Check the sample first, so a bad one creates no series. */
	if (!isfinite(value)) {
		mds_diag(diag, diagsz, "value is not a finite number");
		return MDS_E_INVAL;
	}
	if (t_ms < 0 || t_ms > TSDB_MAX_TIME_MS) {
		mds_diag(diag, diagsz, "time %lld is out of range",
			 (long long)t_ms);
		return MDS_E_INVAL;
	}
	rc = tsdb_series_get_or_create(db, ns, name, dims, ndims, &s, diag,
				       diagsz);
	if (rc != 0)
		return rc;
	rc = tsdb_series_append(s, t_ms, value);
	if (rc != 0)
		mds_diag(diag, diagsz, "time %lld is older than the raw "
			 "window (newest sample %lld, window %lld ms)",
			 (long long)t_ms, (long long)s->newest,
			 (long long)db->opt.raw_window_ms);
	return rc;
}

/* --- reading ------------------------------------------------------------- */

static uint32_t raw_lower_bound(const struct tsdb_series *s, int64_t t)
{
	uint32_t lo = 0, hi = s->raw_n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (raw_at(s, mid)->t < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint32_t agg_lower_bound(const struct tsdb_series *s, int64_t t)
{
	uint32_t lo = 0, hi = s->agg_n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (agg_at(s, mid)->t < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Splits the logical range [a, b) of a ring into its physical runs. */
static void split(uint32_t head, uint32_t cap, uint32_t a, uint32_t b,
		  size_t off[2], size_t n[2])
{
	uint32_t pa = head + a;

	if (pa >= cap)
		pa -= cap;
	off[0] = pa;
	off[1] = 0;
	if (a >= b) {
		n[0] = n[1] = 0;
	} else if (pa + (b - a) <= cap) {
		n[0] = b - a;
		n[1] = 0;
	} else {
		n[0] = cap - pa;
		n[1] = (b - a) - n[0];
	}
}

void tsdb_series_read(const struct tsdb_series *s, int64_t start,
		      int64_t end, struct tsdb_read *out)
{
	size_t off[2];

	memset(out, 0, sizeof(*out));
	if (start >= s->raw_floor) {
		uint32_t a = raw_lower_bound(s, start);
		uint32_t b = raw_lower_bound(s, end);

		out->res = TSDB_RES_RAW;
		split(s->raw_head, s->raw_cap, a, b, off, out->n);
		if (out->n[0] > 0)
			out->raw[0] = s->raw + off[0];
		if (out->n[1] > 0)
			out->raw[1] = s->raw + off[1];
	} else {
		uint32_t a = agg_lower_bound(s, start);
		uint32_t b = agg_lower_bound(s, end);

		out->res = TSDB_RES_MINUTE;
		split(s->agg_head, s->agg_cap, a, b, off, out->n);
		if (out->n[0] > 0)
			out->agg[0] = s->agg + off[0];
		if (out->n[1] > 0)
			out->agg[1] = s->agg + off[1];
	}
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
	struct rterm local[16], *rt = local;
	size_t nterms = 0, ri = 0;
	const uint32_t *ids;
	uint32_t nids;
	const char *ins, *iname;
	const struct metric *m;
	const struct posting *index = NULL;
	uint64_t nsh = 0, nameh = 0;
	int rc = 0;

	ins = intern_lookup(db, ns, &nsh);
	iname = intern_lookup(db, name, &nameh);
	if (ins == NULL || iname == NULL)
		return 0;
	m = metric_find(db, ins, iname, metric_hash(nsh, nameh));
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

			r->op = t->op;
			r->key = intern_lookup(db, t->key, &kh);
			r->value = t->value;
			if (t->op == TSDB_MATCH_EQ || t->op == TSDB_MATCH_NE)
				r->value = intern_lookup(db, t->value, &vh);
			if (clauses[c].nterms != 1 || t->op != TSDB_MATCH_EQ ||
			    index != NULL)
				continue;
			/* An exact single-term clause: use the index. */
			if (r->key == NULL || r->value == NULL)
				goto out; /* nothing can match */
			index = posting_find(db, (uint32_t)(m - db->metrics),
					     r->key, r->value,
					     posting_hash((uint32_t)(m -
								     db->metrics),
							  kh, vh));
			if (index == NULL)
				goto out;
		}
	}
	ids = index != NULL ? posting_ids(index) : m->ids;
	nids = index != NULL ? index->n : m->n;
	for (uint32_t i = 0; i < nids && rc == 0; i++) {
		const struct tsdb_series *s = db->series[ids[i]];
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
	}
out:
	if (rt != local)
		free(rt);
	return rc;
}

/* --- dump and load ------------------------------------------------------- */

struct writer {
	unsigned char *buf;
	size_t n;
	tsdb_write_fn fn;
	void *arg;
	int rc;
};

static void w_flush(struct writer *w)
{
	if (w->rc == 0 && w->n > 0)
		w->rc = w->fn(w->arg, w->buf, w->n);
	w->n = 0;
}

static void w_bytes(struct writer *w, const void *p, size_t len)
{
	const unsigned char *b = p;

	while (len > 0 && w->rc == 0) {
		size_t k = DUMP_CHUNK - w->n < len ? DUMP_CHUNK - w->n : len;

		memcpy(w->buf + w->n, b, k);
		w->n += k;
		b += k;
		len -= k;
		if (w->n == DUMP_CHUNK)
			w_flush(w);
	}
}

static void w_uint(struct writer *w, uint64_t v, int nbytes)
{
	unsigned char b[8];

	for (int i = 0; i < nbytes; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	w_bytes(w, b, (size_t)nbytes);
}

static void w_double(struct writer *w, double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	w_uint(w, v, 8);
}

static void w_str(struct writer *w, const char *s)
{
	size_t len = strlen(s);

	w_uint(w, len, 2);
	w_bytes(w, s, len);
}

/* Writes one series record: identity, raw ring, minute ring. */
static void w_series(struct writer *w, const struct tsdb_series *s)
{
	w_str(w, s->ns);
	w_str(w, s->name);
	w_uint(w, s->ndims, 1);
	for (uint32_t k = 0; k < s->ndims; k++) {
		w_str(w, s->dims[k].key);
		w_str(w, s->dims[k].value);
	}
	w_uint(w, (uint64_t)s->newest, 8);
	w_uint(w, (uint64_t)s->raw_floor, 8);
	w_uint(w, s->raw_n, 4);
	for (uint32_t k = 0; k < s->raw_n; k++) {
		w_uint(w, (uint64_t)raw_at(s, k)->t, 8);
		w_double(w, raw_at(s, k)->v);
	}
	w_uint(w, s->agg_n, 4);
	for (uint32_t k = 0; k < s->agg_n; k++) {
		const struct tsdb_bucket *b = agg_at(s, k);

		w_uint(w, (uint64_t)b->t, 8);
		w_uint(w, (uint64_t)b->last_t, 8);
		w_double(w, b->min);
		w_double(w, b->max);
		w_double(w, b->sum);
		w_double(w, b->last);
		w_uint(w, b->count, 4);
	}
}

int tsdb_dump(const struct tsdb *db, tsdb_write_fn fn, void *arg)
{
	struct writer w = { .buf = xmalloc(DUMP_CHUNK), .fn = fn, .arg = arg };

	w_bytes(&w, DUMP_MAGIC, 8);
	w_uint(&w, DUMP_VERSION, 4);
	w_uint(&w, db->nseries, 4);
	for (size_t i = 0; i < db->nseries && w.rc == 0; i++)
		w_series(&w, db->series[i]);
	w_flush(&w);
	free(w.buf);
	return w.rc;
}

int tsdb_dump_series(const struct tsdb_series *s, tsdb_write_fn fn,
		     void *arg)
{
	struct writer w = { .buf = xmalloc(DUMP_CHUNK), .fn = fn, .arg = arg };

	w_series(&w, s);
	w_flush(&w);
	free(w.buf);
	return w.rc;
}

struct reader {
	const unsigned char *p, *end;
	int bad;
};

static uint64_t r_uint(struct reader *r, int nbytes)
{
	uint64_t v = 0;

	if (r->bad || r->end - r->p < nbytes) {
		r->bad = 1;
		return 0;
	}
	for (int i = 0; i < nbytes; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += nbytes;
	return v;
}

static double r_double(struct reader *r)
{
	uint64_t v = r_uint(r, 8);
	double d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

/* Copies a length-prefixed string into out (TSDB_MAX_STR + 1 bytes). */
static void r_str(struct reader *r, char *out)
{
	size_t len = (size_t)r_uint(r, 2);

	out[0] = '\0';
	if (r->bad || len > TSDB_MAX_STR || (size_t)(r->end - r->p) < len) {
		r->bad = 1;
		return;
	}
	memcpy(out, r->p, len);
	out[len] = '\0';
	if (strlen(out) != len)
		r->bad = 1; /* an embedded NUL */
	r->p += len;
}

/* One series record of an image; samples stay in the image, unparsed. */
struct record {
	char strs[2 + 2 * TSDB_MAX_DIMS][TSDB_MAX_STR + 1];
	struct tsdb_dim dims[TSDB_MAX_DIMS];
	size_t ndims;
	int64_t newest, raw_floor;
	uint32_t nraw, nagg;
	const unsigned char *raw, *agg;
};

#define RAW_REC 16
#define AGG_REC 52

/* Reads and checks one series record (its identity too when check_ident;
 * tsdb_series_get_or_create() checks it as well). Returns 0 or
 * MDS_E_PARSE. */
static int read_record(struct reader *r, struct record *rec, int check_ident,
		       char *diag, size_t diagsz)
{
	struct reader sub;
	int64_t prev = -1;
	char why[128] = "truncated";

	r_str(r, rec->strs[0]);
	r_str(r, rec->strs[1]);
	rec->ndims = (size_t)r_uint(r, 1);
	if (rec->ndims > TSDB_MAX_DIMS)
		r->bad = 1;
	for (size_t k = 0; k < rec->ndims && !r->bad; k++) {
		r_str(r, rec->strs[2 + 2 * k]);
		r_str(r, rec->strs[3 + 2 * k]);
		rec->dims[k].key = rec->strs[2 + 2 * k];
		rec->dims[k].value = rec->strs[3 + 2 * k];
	}
	rec->newest = (int64_t)r_uint(r, 8);
	rec->raw_floor = (int64_t)r_uint(r, 8);
	rec->nraw = (uint32_t)r_uint(r, 4);
	if (r->bad || (size_t)(r->end - r->p) / RAW_REC < rec->nraw)
		goto bad;
	rec->raw = r->p;
	r->p += (size_t)rec->nraw * RAW_REC;
	rec->nagg = (uint32_t)r_uint(r, 4);
	if (r->bad || (size_t)(r->end - r->p) / AGG_REC < rec->nagg)
		goto bad;
	rec->agg = r->p;
	r->p += (size_t)rec->nagg * AGG_REC;
	if (check_ident &&
	    ident_prepare(&(struct ident){ 0 }, rec->strs[0], rec->strs[1],
			  rec->dims, rec->ndims, why, sizeof(why)) != 0)
		goto bad;
	snprintf(why, sizeof(why), "bad sample");
	if (rec->newest < -1 || rec->newest > TSDB_MAX_TIME_MS)
		goto bad;
	sub = (struct reader){ .p = rec->raw, .end = r->p };
	for (uint32_t k = 0; k < rec->nraw; k++) {
		int64_t t = (int64_t)r_uint(&sub, 8);

		if (t < 0 || t < prev || t > rec->newest ||
		    !isfinite(r_double(&sub)))
			goto bad;
		prev = t;
	}
	snprintf(why, sizeof(why), "bad minute bucket");
	prev = -1;
	sub = (struct reader){ .p = rec->agg, .end = r->p };
	for (uint32_t k = 0; k < rec->nagg; k++) {
		int64_t t = (int64_t)r_uint(&sub, 8);
		int64_t last_t = (int64_t)r_uint(&sub, 8);
		double mn = r_double(&sub), mx = r_double(&sub);
		double sum = r_double(&sub), last = r_double(&sub);
		uint32_t count = (uint32_t)r_uint(&sub, 4);

		if (t <= prev || t < 0 || t > TSDB_MAX_TIME_MS ||
		    t % TSDB_BUCKET_MS != 0 || last_t < t ||
		    last_t >= t + TSDB_BUCKET_MS || count == 0 ||
		    !isfinite(mn) || !isfinite(mx) || !isfinite(sum) ||
		    !isfinite(last) || mn > mx)
			goto bad;
		prev = t;
	}
	return 0;
bad:
	r->bad = 1;
	mds_diag(diag, diagsz, "image series record: %s", why);
	return MDS_E_PARSE;
}

/* Replaces a series' rings by a checked record, keeping what fits. */
static void apply_record(struct tsdb_series *s, const struct record *rec)
{
	const struct tsdb *db = s->db;
	struct reader r = { .p = rec->raw, .end = rec->agg };
	uint32_t skip = 0, keep, cap;
	int64_t bt_min;

	s->newest = rec->newest;
	s->raw_floor = rec->raw_floor;
	keep = rec->nraw;
	if (keep > db->opt.raw_capacity)
		keep = (uint32_t)db->opt.raw_capacity;
	skip = rec->nraw - keep;
	for (cap = RAW_INITIAL; cap < keep; cap *= 2)
		;
	if (cap > db->opt.raw_capacity)
		cap = (uint32_t)db->opt.raw_capacity;
	free(s->raw);
	s->raw = xmalloc((size_t)cap * sizeof(*s->raw));
	s->db->var_bytes += (size_t)cap * sizeof(*s->raw);
	s->db->var_bytes -= (size_t)s->raw_cap * sizeof(*s->raw);
	s->raw_cap = cap;
	s->raw_head = 0;
	s->raw_n = 0;
	for (uint32_t k = 0; k < rec->nraw; k++) {
		int64_t t = (int64_t)r_uint(&r, 8);
		double v = r_double(&r);

		if (k < skip || t < s->newest - db->opt.raw_window_ms) {
			if (t + 1 > s->raw_floor)
				s->raw_floor = t + 1;
			continue;
		}
		s->raw[s->raw_n++] = (struct tsdb_sample){ .t = t, .v = v };
	}

	r = (struct reader){ .p = rec->agg, .end = rec->agg +
				(size_t)rec->nagg * AGG_REC };
	keep = rec->nagg < db->agg_capacity ? rec->nagg : db->agg_capacity;
	skip = rec->nagg - keep;
	for (cap = AGG_INITIAL; cap < keep; cap *= 2)
		;
	if (cap > db->agg_capacity)
		cap = db->agg_capacity;
	free(s->agg);
	s->agg = xmalloc((size_t)cap * sizeof(*s->agg));
	s->db->var_bytes += (size_t)cap * sizeof(*s->agg);
	s->db->var_bytes -= (size_t)s->agg_cap * sizeof(*s->agg);
	s->agg_cap = cap;
	s->agg_head = 0;
	s->agg_n = 0;
	bt_min = rec->newest - rec->newest % TSDB_BUCKET_MS -
		 (int64_t)(db->agg_capacity - 1) * TSDB_BUCKET_MS;
	for (uint32_t k = 0; k < rec->nagg; k++) {
		struct tsdb_bucket b;

		b.t = (int64_t)r_uint(&r, 8);
		b.last_t = (int64_t)r_uint(&r, 8);
		b.min = r_double(&r);
		b.max = r_double(&r);
		b.sum = r_double(&r);
		b.last = r_double(&r);
		b.count = (uint32_t)r_uint(&r, 4);
		if (k >= skip && b.t >= bt_min)
			s->agg[s->agg_n++] = b;
	}
}

int tsdb_load(struct tsdb *db, const void *data, size_t len, char *diag,
	      size_t diagsz)
{
	struct reader r = { .p = data, .end = (const unsigned char *)data +
						 len };
	struct record *rec = xmalloc(sizeof(*rec));
	const unsigned char *body;
	uint32_t nseries;
	size_t fresh = 0;
	int rc = 0;

	if (len < 16 || memcmp(data, DUMP_MAGIC, 8) != 0) {
		mds_diag(diag, diagsz, "not a tsdb image");
		rc = MDS_E_PARSE;
		goto out;
	}
	r.p += 8;
	if (r_uint(&r, 4) != DUMP_VERSION) {
		mds_diag(diag, diagsz, "unsupported tsdb image version");
		rc = MDS_E_PARSE;
		goto out;
	}
	nseries = (uint32_t)r_uint(&r, 4);
	body = r.p;
	/* First pass: check everything and count the series to create. */
	for (uint32_t i = 0; i < nseries; i++) {
		rc = read_record(&r, rec, 1, diag, diagsz);
		if (rc != 0)
			goto out;
		if (tsdb_series_find(db, rec->strs[0], rec->strs[1],
				     rec->dims, rec->ndims) == NULL)
			fresh++;
	}
	if (r.p != r.end) {
		mds_diag(diag, diagsz, "trailing bytes after the last series");
		rc = MDS_E_PARSE;
		goto out;
	}
	if (fresh > db->opt.max_series - db->nseries) {
		mds_diag(diag, diagsz, "the image needs %zu new series, the "
			 "store has room for %zu", fresh,
			 db->opt.max_series - db->nseries);
		rc = MDS_E_LIMIT;
		goto out;
	}
	/* Second pass: nothing can fail any more. */
	r.p = body;
	for (uint32_t i = 0; i < nseries; i++) {
		struct tsdb_series *s;

		read_record(&r, rec, 0, NULL, 0);
		if (tsdb_series_get_or_create(db, rec->strs[0], rec->strs[1],
					      rec->dims, rec->ndims, &s, NULL,
					      0) == 0)
			apply_record(s, rec);
	}
out:
	free(rec);
	return rc;
}

int tsdb_load_series(struct tsdb *db, const void *data, size_t len,
		     size_t *used, struct tsdb_series **out, char *diag,
		     size_t diagsz)
{
	struct reader r = { .p = data, .end = (const unsigned char *)data +
						 len };
	struct record *rec = xmalloc(sizeof(*rec));
	struct tsdb_series *s = NULL;
	int rc;

	rc = read_record(&r, rec, 0, diag, diagsz);
	if (rc == 0)
		rc = tsdb_series_get_or_create(db, rec->strs[0], rec->strs[1],
					       rec->dims, rec->ndims, &s, diag,
					       diagsz);
	if (rc == 0) {
		apply_record(s, rec);
		*used = (size_t)(r.p - (const unsigned char *)data);
		*out = s;
	}
	free(rec);
	return rc;
}
