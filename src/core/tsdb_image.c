/*
 * tsdb_image.c - the time-series store's image: tsdb_dump() and
 * tsdb_load(), and the one-series records the metrics log is made of;
 * see tsdb.h for the format.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tsdb.h"
#include "core/tsdb_int.h"
#include "util/err.h"
#include "util/xalloc.h"

#define DUMP_MAGIC "MDSTSDB1"
#define DUMP_VERSION 1
#define DUMP_CHUNK 65536

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
		w_series(&w, tsdb_series_at(db, i));
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
	    tsdb_ident_prepare(&(struct ident){ 0 }, rec->strs[0], rec->strs[1],
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
	size_t fresh = 0, fresh_bytes = 0, one, bytes;
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
		rc = tsdb_series_cost(db, rec->strs[0], rec->strs[1],
				      rec->dims, rec->ndims, &one, &bytes,
				      diag, diagsz);
		if (rc != 0)
			goto out;
		fresh += one;
		fresh_bytes += bytes;
	}
	if (r.p != r.end) {
		mds_diag(diag, diagsz, "trailing bytes after the last series");
		rc = MDS_E_PARSE;
		goto out;
	}
	/* Strings shared between new series are counted for each: an
	 * image near the limits may be refused though it would fit. */
	rc = tsdb_room(db, fresh, fresh_bytes, diag, diagsz);
	if (rc != 0)
		goto out;
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
