/*
 * hdr.c - a log-linear histogram; see hdr.h.
 *
 * The layout is HdrHistogram's with a lowest unit of 1. Bucket 0 counts the
 * values 0..S-1 one by one (S = sub_count, the power of two at or above
 * 2 * 10^digits). Each later bucket k covers [S/2 * 2^k, S * 2^k) with S/2
 * slots of width 2^k, so the relative width of a slot never exceeds 2/S, and
 * the slots of all buckets are one flat array: bucket 0's S slots, then S/2
 * for each bucket after it.
 */
#include <stdlib.h>
#include <string.h>

#include "core/hdr.h"
#include "util/err.h"
#include "util/xalloc.h"

struct hdr {
	uint64_t highest;
	int digits;
	unsigned half_mag;  /* log2(sub_count / 2) */
	uint64_t sub_half;  /* sub_count / 2 */
	uint64_t sub_mask;  /* sub_count - 1 */
	size_t ncounts;
	uint64_t total, clamped, min, max;
	double sum;
	uint64_t *counts;
};

/* Returns the position of the highest set bit plus one (0 for 0). */
static unsigned bit_length(uint64_t v)
{
	return v == 0 ? 0 : 64u - (unsigned)__builtin_clzll(v);
}

static size_t index_of(const struct hdr *h, uint64_t v)
{
	unsigned bucket = bit_length(v | h->sub_mask) - (h->half_mag + 1);
	uint64_t sub = v >> bucket;

	return ((size_t)(bucket + 1) << h->half_mag) + (size_t)(sub - h->sub_half);
}

/* Returns the highest value that lands in slot i. */
static uint64_t highest_of(const struct hdr *h, size_t i)
{
	long bucket = (long)(i >> h->half_mag) - 1;
	uint64_t sub = (i & (h->sub_half - 1)) + h->sub_half;

	if (bucket < 0) {
		sub -= h->sub_half;
		bucket = 0;
	}
	return (sub << bucket) + ((uint64_t)1 << bucket) - 1;
}

int hdr_new(uint64_t highest, int digits, struct hdr **out)
{
	uint64_t want = 2, sub_count = 1, top;
	unsigned nbuckets = 1;
	struct hdr *h;
	int i;

	*out = NULL;
	if (highest < 1 || highest >= ((uint64_t)1 << 62) || digits < 1 ||
	    digits > 4)
		return MDS_E_INVAL;
	for (i = 0; i < digits; i++)
		want *= 10;
	while (sub_count < want)
		sub_count <<= 1;
	for (top = sub_count; top <= highest; top <<= 1)
		nbuckets++;
	h = xcalloc(1, sizeof *h);
	h->highest = highest;
	h->digits = digits;
	h->sub_half = sub_count / 2;
	h->sub_mask = sub_count - 1;
	h->half_mag = bit_length(h->sub_half) - 1;
	h->ncounts = (size_t)(nbuckets + 1) * h->sub_half;
	h->counts = xcalloc(h->ncounts, sizeof *h->counts);
	*out = h;
	return 0;
}

void hdr_free(struct hdr *h)
{
	if (h == NULL)
		return;
	free(h->counts);
	free(h);
}

void hdr_reset(struct hdr *h)
{
	memset(h->counts, 0, h->ncounts * sizeof *h->counts);
	h->total = 0;
	h->clamped = 0;
	h->min = 0;
	h->max = 0;
	h->sum = 0;
}

void hdr_record_n(struct hdr *h, uint64_t value, uint64_t count)
{
	uint64_t v = value;

	if (count == 0)
		return;
	if (v > h->highest) {
		v = h->highest;
		h->clamped += count;
	}
	h->counts[index_of(h, v)] += count;
	if (h->total == 0 || value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
	h->total += count;
	h->sum += (double)value * (double)count;
}

void hdr_record(struct hdr *h, uint64_t value)
{
	hdr_record_n(h, value, 1);
}

int hdr_add(struct hdr *dst, const struct hdr *src)
{
	size_t i;

	if (dst->highest != src->highest || dst->digits != src->digits)
		return MDS_E_INVAL;
	if (src->total == 0)
		return 0;
	for (i = 0; i < src->ncounts; i++)
		dst->counts[i] += src->counts[i];
	if (dst->total == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->total += src->total;
	dst->clamped += src->clamped;
	dst->sum += src->sum;
	return 0;
}

uint64_t hdr_count(const struct hdr *h)
{
	return h->total;
}

uint64_t hdr_min(const struct hdr *h)
{
	return h->min;
}

uint64_t hdr_max(const struct hdr *h)
{
	return h->max;
}

double hdr_mean(const struct hdr *h)
{
	return h->total == 0 ? 0 : h->sum / (double)h->total;
}

uint64_t hdr_clamped(const struct hdr *h)
{
	return h->clamped;
}

uint64_t hdr_percentile(const struct hdr *h, double p)
{
	uint64_t want, seen = 0, v;
	double exact;
	size_t i;

	if (h->total == 0)
		return 0;
	if (!(p > 0))
		p = 0;
	if (p > 100)
		p = 100;
	exact = p / 100.0 * (double)h->total;
	want = (uint64_t)exact;
	if ((double)want < exact)
		want++;
	if (want < 1)
		want = 1;
	for (i = 0; i < h->ncounts; i++) {
		seen += h->counts[i];
		if (seen >= want)
			break;
	}
	v = i < h->ncounts ? highest_of(h, i) : h->max;
	if (v > h->max)
		v = h->max;
	if (v < h->min)
		v = h->min;
	return v;
}
