/*
 * hdr.h - a log-linear latency histogram in the manner of HdrHistogram.
 *
 * Values (any unit; the load generator records microseconds) from 0 to a
 * highest trackable value are counted in buckets whose width grows with the
 * value, so that every recorded value is kept to a fixed number of
 * significant decimal digits: with 2 digits, a value and the bucket it lands
 * in differ by less than 1%. Recording is a few shifts and an increment, and
 * the memory is fixed at creation (about 20 KiB for 2 digits over 1 µs..60 s),
 * so a histogram can sit on a hot path and be reset every second.
 *
 * Values above the highest trackable one are counted in the top bucket and
 * in hdr_clamped(); hdr_max() still reports the true largest value.
 *
 * Pure: no I/O, no globals; not thread-safe (one owner at a time).
 */
#ifndef MDS_HDR_H
#define MDS_HDR_H

#include <stddef.h>
#include <stdint.h>

struct hdr;

/*
 * Creates an empty histogram for values 0..highest (1 <= highest < 2^62)
 * kept to digits significant decimal digits (1..4). Returns 0 and the
 * histogram in *out (the caller frees it with hdr_free()), or MDS_E_INVAL.
 */
int hdr_new(uint64_t highest, int digits, struct hdr **out);

/* Frees the histogram; NULL is fine. */
void hdr_free(struct hdr *h);

/* Forgets every recorded value, keeping the allocation. */
void hdr_reset(struct hdr *h);

/* Records one value; values above the highest trackable one are clamped. */
void hdr_record(struct hdr *h, uint64_t value);

/* Records the same value count times. */
void hdr_record_n(struct hdr *h, uint64_t value, uint64_t count);

/*
 * Adds every count of src to dst; both must have been created with the same
 * highest value and digits. Returns 0, or MDS_E_INVAL (dst unchanged) when
 * they differ.
 */
int hdr_add(struct hdr *dst, const struct hdr *src);

/* Returns the number of recorded values. */
uint64_t hdr_count(const struct hdr *h);

/* Returns the smallest and the largest recorded value (unclamped), or 0
 * when the histogram is empty. */
uint64_t hdr_min(const struct hdr *h);
uint64_t hdr_max(const struct hdr *h);

/* Returns the mean of the recorded values (unclamped), or 0 when empty. */
double hdr_mean(const struct hdr *h);

/* Returns how many recorded values were above the highest trackable one. */
uint64_t hdr_clamped(const struct hdr *h);

/*
 * Returns the value at percentile p (0..100; out-of-range p is clamped): the
 * highest value of the bucket that holds the ceil(p/100 * count)-th smallest
 * recorded value, but never more than hdr_max() nor less than hdr_min().
 * Returns 0 when the histogram is empty.
 */
uint64_t hdr_percentile(const struct hdr *h, double p);

#endif
