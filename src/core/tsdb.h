/*
 * tsdb.h - the in-memory time-series store behind monitoring.
 *
 * A series is identified by a namespace, a metric name and a set of up to
 * TSDB_MAX_DIMS dimensions (key=value pairs such as resourceId and
 * instanceId; their order does not matter). All these strings are interned
 * once per store and live until tsdb_free(), so the pointers the store hands
 * out (series names, dimensions) stay valid for the store's whole life.
 *
 * Retention, per series, with the defaults of tsdb_options_default():
 *
 *   raw      a ring of (time, value) samples covering the last raw_window_ms
 *            (15 min) before the series' newest sample, holding at most
 *            raw_capacity samples (9000: 10 samples/s for 15 min).
 *            16 bytes a sample: at most 144,000 bytes.
 *   minute   a ring of one-minute aggregates (min, max, sum, count, last)
 *            covering agg_window_ms (24 h): at most 1440 buckets of 56
 *            bytes, 80,640 bytes.
 *
 * Both rings start small (4 samples, 2 minutes) and double up to those
 * bounds, so a series costs what its data needs: about 400 bytes of
 * bookkeeping (its record, dimension slots and first rings) and 65 to
 * 100 per dimension whose value is its own (the string's record and index
 * slot, its posting and index slot, by the indexes' load), plus 16 bytes
 * per retained sample and 56 per retained minute, rounded up to a power
 * of two, plus its strings not shared with others (at most 2 x 256 bytes
 * a dimension). No array of the store is ever copied whole to grow, and
 * its hash indexes double a step at a time (util/htab.h), so adding a
 * series costs the same however large the store.
 * A series fed once every 10 s for a day holds 90 samples and 1440 buckets,
 * about 83 KB; the worst case (10 samples/s) is about 225 KB. The store
 * holds at most max_series series (100,000 by default), so its memory is
 * bounded by max_series times the per-series worst case plus the interned
 * strings (each at most TSDB_MAX_STR bytes).
 *
 * Samples may arrive out of order within the raw window; older ones are
 * rejected. Time is milliseconds since the epoch, passed in by the caller;
 * the store never reads a clock. Not thread-safe: one owner at a time.
 */
#ifndef MDS_TSDB_H
#define MDS_TSDB_H

#include <stddef.h>
#include <stdint.h>

#define TSDB_MAX_DIMS 16  /* dimensions per series */
#define TSDB_MAX_STR 255  /* bytes in a namespace, name, key or value */
#define TSDB_BUCKET_MS 60000LL
/* Sample times must lie in [0, TSDB_MAX_TIME_MS]: year 0 to 9999 AD. */
#define TSDB_MAX_TIME_MS 253402300799999LL

struct tsdb;
struct tsdb_series;

/* One dimension. In what the store returns, both point to interned strings. */
struct tsdb_dim {
	const char *key;
	const char *value;
};

struct tsdb_options {
	size_t max_series;     /* series in the store; default 100,000 */
	size_t max_string_bytes; /* interned strings, terminators included;
				    default 512 MiB */
	size_t raw_capacity;   /* raw samples per series; default 9000 */
	int64_t raw_window_ms; /* raw retention; default 15 min */
	int64_t agg_window_ms; /* minute retention; default 24 h */
};

/* Fills opt with the defaults listed above. */
void tsdb_options_default(struct tsdb_options *opt);

/*
 * Creates an empty store. opt may be NULL for the defaults. Returns 0 and
 * sets *out (the caller frees it with tsdb_free), or MDS_E_INVAL with diag if
 * an option is out of range: max_series 1..16M, max_string_bytes 64 KiB..
 * 1 TiB, raw_capacity 1..16M,
 * raw_window_ms 1 s..agg_window_ms, agg_window_ms a whole number of minutes
 * up to 7 days.
 */
int tsdb_create(const struct tsdb_options *opt, struct tsdb **out, char *diag,
		size_t diagsz);

/* Frees the store, its series and its strings. NULL is fine. */
void tsdb_free(struct tsdb *db);

/* Returns the options the store was created with. */
const struct tsdb_options *tsdb_options(const struct tsdb *db);

/* Returns the number of series in the store. */
size_t tsdb_series_count(const struct tsdb *db);

/*
 * Finds the series (namespace, name, dims), creating it if needed. dims are
 * in any order; the strings are copied. *out stays valid until tsdb_free().
 * Returns 0; MDS_E_INVAL (diag) for an empty namespace, name or key, or a
 * key given twice; MDS_E_LIMIT (diag) past TSDB_MAX_DIMS, TSDB_MAX_STR,
 * max_series or max_string_bytes. Nothing is created on error.
 */
int tsdb_series_get_or_create(struct tsdb *db, const char *ns,
			      const char *name, const struct tsdb_dim *dims,
			      size_t ndims, struct tsdb_series **out,
			      char *diag, size_t diagsz);

/*
 * What tsdb_series_get_or_create() would add for (namespace, name, dims),
 * changing nothing: *series is 0 if the series exists, else 1; *bytes the
 * interned bytes of its strings the store lacks (a string repeated within
 * the identity counted each time). Returns 0, or the identity errors of
 * tsdb_series_get_or_create() with diag.
 */
int tsdb_series_cost(const struct tsdb *db, const char *ns, const char *name,
		     const struct tsdb_dim *dims, size_t ndims, size_t *series,
		     size_t *bytes, char *diag, size_t diagsz);

/*
 * Whether the store has room for series more series and bytes more bytes
 * of interned strings. Returns 0, or MDS_E_LIMIT with diag naming the
 * limit (max_series or max_string_bytes) and what the store holds.
 */
int tsdb_room(const struct tsdb *db, size_t series, size_t bytes,
	      char *diag, size_t diagsz);

/* Returns the series (namespace, name, dims) or NULL; never creates. */
struct tsdb_series *tsdb_series_find(const struct tsdb *db, const char *ns,
				     const char *name,
				     const struct tsdb_dim *dims, size_t ndims);

/*
 * The fast path: appends a sample to a resolved series. Returns 0, or
 * MDS_E_INVAL if value is NaN or infinite, t_ms is outside
 * [0, TSDB_MAX_TIME_MS], or t_ms is older than the raw window (before the
 * series' newest sample minus raw_window_ms). Pointers from an earlier
 * tsdb_series_read() of this series are invalid afterwards.
 */
int tsdb_series_append(struct tsdb_series *s, int64_t t_ms, double value);

/*
 * Appends by name: tsdb_series_get_or_create() then tsdb_series_append().
 * Returns 0 or their errors, with diag.
 */
int tsdb_append(struct tsdb *db, const char *ns, const char *name,
		const struct tsdb_dim *dims, size_t ndims, int64_t t_ms,
		double value, char *diag, size_t diagsz);

/*
 * Returns a hash of the contents of n dimensions in the order given (a key,
 * its value, the next key...): equal dimensions in equal order give equal
 * hashes, wherever their strings are. Costs a pass over every byte; a
 * series keeps the hash of its own (tsdb_series_dims_hash()).
 */
uint64_t tsdb_dims_hash(const struct tsdb_dim *dims, size_t n);

/* Accessors; the strings are interned and live until tsdb_free(). */
const char *tsdb_series_namespace(const struct tsdb_series *s);
const char *tsdb_series_name(const struct tsdb_series *s);
/* Returns the dimensions sorted by key; *ndims receives their count. */
const struct tsdb_dim *tsdb_series_dims(const struct tsdb_series *s,
					size_t *ndims);
/* Returns the value of dimension key, or NULL if the series lacks it. */
const char *tsdb_series_dim(const struct tsdb_series *s, const char *key);
/* Returns tsdb_dims_hash() of the series' dimensions (sorted by key),
 * computed once when the series was created. */
uint64_t tsdb_series_dims_hash(const struct tsdb_series *s);
/* Returns the time of the newest sample ever appended, or -1 if none. */
int64_t tsdb_series_newest(const struct tsdb_series *s);

/* Returns the series' place in creation order: 0 for the store's first. */
uint32_t tsdb_series_index(const struct tsdb_series *s);
/* Returns the series of creation index i, or NULL past the last. */
struct tsdb_series *tsdb_series_at(const struct tsdb *db, size_t i);

/*
 * Returns the bytes of memory the store holds (its arrays, hash tables,
 * series, rings and interned strings; the allocator's own overhead aside).
 * Kept as the store changes: O(1).
 */
size_t tsdb_memory(const struct tsdb *db);
/* Returns the bytes of interned strings (each stored once). */
size_t tsdb_strings_bytes(const struct tsdb *db);

/* How a dimension filter term compares the series' value with its own. */
enum tsdb_match {
	TSDB_MATCH_EQ,       /* equal */
	TSDB_MATCH_NE,       /* not equal, or the series lacks the key */
	TSDB_MATCH_GLOB,     /* matches, '*' standing for any run of bytes */
	TSDB_MATCH_NOT_GLOB, /* does not match, or the series lacks the key */
};

struct tsdb_term {
	const char *key;
	const char *value;
	enum tsdb_match op;
};

/* A clause holds when any of its terms does (terms joined by "or"). */
struct tsdb_clause {
	const struct tsdb_term *terms;
	size_t nterms;
};

/* Called per selected series; a nonzero return stops the selection. */
typedef int (*tsdb_select_fn)(const struct tsdb_series *s, void *arg);

/*
 * Calls fn for every series of (ns, name) for which all clauses hold, in
 * creation order. A clause made of one TSDB_MATCH_EQ term is answered from
 * an index by dimension value, so an exact resourceId filter costs a few
 * hash lookups, not a scan. Returns 0 (also when nothing matches) or the
 * first nonzero value fn returned.
 */
int tsdb_select(const struct tsdb *db, const char *ns, const char *name,
		const struct tsdb_clause *clauses, size_t nclauses,
		tsdb_select_fn fn, void *arg);

/*
 * tsdb_select() from position *pos of the list it walks (0: the first
 * series), setting *pos past the last series it looked at. Series are
 * only ever added, at the end of that list: a selection stopped by fn can
 * go on later from *pos, in another turn, and sees each series once.
 */
int tsdb_select_from(const struct tsdb *db, const char *ns, const char *name,
		     const struct tsdb_clause *clauses, size_t nclauses,
		     uint32_t *pos, tsdb_select_fn fn, void *arg);

/*
 * tsdb_select_from() looking at max_look series at most (each costs a
 * check of the clauses, selected or not): *more is set if it stopped
 * there, with series left to look at from *pos.
 */
int tsdb_select_some(const struct tsdb *db, const char *ns, const char *name,
		     const struct tsdb_clause *clauses, size_t nclauses,
		     uint32_t *pos, size_t max_look, int *more,
		     tsdb_select_fn fn, void *arg);

/* Returns 1 if text matches pattern, in which '*' matches any run. */
int tsdb_glob_match(const char *pattern, const char *text);

struct tsdb_sample {
	int64_t t;
	double v;
};

/* The aggregate of the samples whose time falls in [t, t + 1 min). */
struct tsdb_bucket {
	int64_t t;      /* bucket start, a multiple of TSDB_BUCKET_MS */
	int64_t last_t; /* time of the sample that gave last */
	double min, max, sum, last;
	uint32_t count;
};

enum tsdb_resolution { TSDB_RES_RAW, TSDB_RES_MINUTE };

/*
 * A window read: the samples (or buckets) in time order, as at most two
 * contiguous runs of the series' ring. The pointers stay valid until the
 * next append to the series.
 */
struct tsdb_read {
	enum tsdb_resolution res;
	const struct tsdb_sample *raw[2]; /* when res is TSDB_RES_RAW */
	const struct tsdb_bucket *agg[2]; /* when res is TSDB_RES_MINUTE */
	size_t n[2];
};

/*
 * Reads the window [start_ms, end_ms) of a series: the raw samples when raw
 * retention still holds everything since start_ms, else the minute buckets
 * whose start lies in [start_ms, end_ms). Never fails; an empty window gives
 * n[0] == n[1] == 0.
 */
void tsdb_series_read(const struct tsdb_series *s, int64_t start_ms,
		      int64_t end_ms, struct tsdb_read *out);

/*
 * Receives the image in chunks; returns 0 to continue or a negative code,
 * which tsdb_dump() stops at and returns.
 */
typedef int (*tsdb_write_fn)(void *arg, const void *data, size_t len);

/*
 * Writes a compact binary image of every series (identity, raw ring, minute
 * ring) through fn. The format is little-endian and versioned; see
 * docs/monitoring.md. Returns 0 or the first error fn returned.
 */
int tsdb_dump(const struct tsdb *db, tsdb_write_fn fn, void *arg);

/*
 * Writes one series' record, in the format of the records of tsdb_dump():
 * what an incremental log keeps of a series. Returns 0 or the first error
 * fn returned.
 */
int tsdb_dump_series(const struct tsdb_series *s, tsdb_write_fn fn,
		     void *arg);

/*
 * Reads one record written by tsdb_dump_series() at the start of data,
 * creating its series or replacing the data of the one that exists.
 * Returns 0 with *used (the record's bytes) and *out (the series, owned by
 * the store); MDS_E_PARSE (diag) for a malformed or truncated record,
 * MDS_E_LIMIT (diag) past max_series; nothing changes on error.
 */
int tsdb_load_series(struct tsdb *db, const void *data, size_t len,
		     size_t *used, struct tsdb_series **out, char *diag,
		     size_t diagsz);

/*
 * Loads an image written by tsdb_dump() into db, creating the series it
 * names and replacing the data of those that exist. Rings larger than this
 * store's retention keep their newest part. The whole image is checked
 * before anything changes: returns 0, MDS_E_PARSE (diag) for a malformed or
 * truncated image, MDS_E_LIMIT (diag) if it needs more than max_series;
 * db is unchanged on error. data is only read during the call.
 */
int tsdb_load(struct tsdb *db, const void *data, size_t len, char *diag,
	      size_t diagsz);

#endif
