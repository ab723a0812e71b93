/*
 * tsdb_ring.c - the time-series store's rings: appending samples and
 * reading windows; see tsdb.h (and tsdb_int.h for the records).
 *
 * Each series keeps its raw samples and its minute buckets in two rings
 * that start small and double up to their bounds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/tsdb.h"
#include "core/tsdb_int.h"
#include "util/err.h"
#include "util/xalloc.h"

/* --- rings --------------------------------------------------------------- */

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
