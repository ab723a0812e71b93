/*
 * rfc3339.h - the one formatter of UTC timestamps (RFC 3339).
 *
 * Every time mdscale writes (the API's JSON, alarm messages, log lines, the
 * CLI's tables) comes from here, so they all read the same way:
 * "2026-11-28T06:14:31.123Z". Pure: no clock, no locale, no time zone
 * database (the civil calendar is computed, years 0000 to 9999). Parsing
 * lives with the ISO-8601 durations (core/iso8601.h).
 */
#ifndef MDS_RFC3339_H
#define MDS_RFC3339_H

#include <stddef.h>
#include <stdint.h>

/* A buffer size that always suffices. */
#define RFC3339_BUFSZ 32

enum rfc3339_precision {
	RFC3339_MILLIS,  /* always ".123" before the "Z" */
	RFC3339_AUTO,    /* ".123" only when ms is not a whole second */
	RFC3339_SECONDS, /* whole seconds, the milliseconds dropped */
};

/*
 * Writes ms since the epoch as UTC "2022-07-08T22:45:00.123Z" into out
 * (outsz bytes, NUL-terminated), with the precision p. Returns 0;
 * MDS_E_INVAL outside years 0000 to 9999, MDS_E_LIMIT if outsz is too small
 * (out is then "" when outsz > 0).
 */
int rfc3339_format(int64_t ms, enum rfc3339_precision p, char *out,
		   size_t outsz);

#endif
