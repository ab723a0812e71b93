/*
 * iso8601.h - ISO-8601 durations and UTC timestamps, in milliseconds.
 *
 * Alarms carry their trigger delay and repeat interval as ISO-8601 durations
 * ("PT1M", "PT5S", "PT1H30M", "P1D"), and alarm messages carry their time as
 * an ISO-8601 UTC timestamp. Only the calendar-free parts of durations are
 * supported: weeks, days, hours, minutes and seconds (with up to millisecond
 * fractions on the seconds); years and months have no fixed length and are
 * rejected. Pure functions, no locale, no time zone database. Timestamps
 * are written by the one formatter, util/rfc3339.h.
 */
#ifndef MDS_ISO8601_H
#define MDS_ISO8601_H

#include <stddef.h>
#include <stdint.h>

/* Longest duration accepted: 10,000 days, far past any alarm setting. */
#define ISO8601_DURATION_MAX_MS (10000LL * 86400000LL)

/* A buffer size that always suffices for iso8601_duration_format(). */
#define ISO8601_DURATION_BUFSZ 40

/*
 * Parses a duration such as "PT1M", "PT1H30M", "P1DT12H", "P2W" or
 * "PT0.5S" into *out_ms. Designators are upper case and in order
 * (W, D, then after T: H, M, S); at least one component must be present.
 * Returns 0; MDS_E_PARSE for bad syntax (diag names the 1-based column);
 * MDS_E_INVAL for years or months, a fraction finer than milliseconds or a
 * total above ISO8601_DURATION_MAX_MS. *out_ms is written only on success.
 */
int iso8601_duration_parse(const char *text, int64_t *out_ms, char *diag,
			   size_t diagsz);

/*
 * Writes the shortest duration for ms ("PT0S", "PT1M", "PT1H30M", "P1D",
 * "P1DT0.5S") into out, NUL-terminated. Returns 0, MDS_E_INVAL if ms is
 * negative or above ISO8601_DURATION_MAX_MS, MDS_E_LIMIT if outsz is too
 * small (ISO8601_DURATION_BUFSZ always suffices).
 */
int iso8601_duration_format(int64_t ms, char *out, size_t outsz);

/*
 * Parses "YYYY-MM-DDTHH:MM:SS[.fff][Z|+hh:mm|-hh:mm]" (RFC 3339) into ms
 * since the epoch; fractions finer than a millisecond are truncated.
 * Returns 0 or MDS_E_PARSE with the column in diag.
 */
int iso8601_time_parse(const char *text, int64_t *out_ms, char *diag,
		       size_t diagsz);

#endif
