/*
 * fuzz_iso8601.c - libFuzzer harness for ISO 8601 durations (alarm
 * pendingDuration, repeat intervals) and timestamps (query ranges, log
 * filters). A duration that parses must be within the documented maximum
 * and survive a format-and-parse round trip unchanged; so must a timestamp
 * (formatted by util/rfc3339.h).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/iso8601.h"
#include "util/rfc3339.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), out[64], diag[128];
	int64_t ms, again;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (iso8601_duration_parse(text, &ms, diag, sizeof(diag)) == 0) {
		if (ms < 0 || ms > ISO8601_DURATION_MAX_MS)
			abort();
		if (iso8601_duration_format(ms, out, sizeof(out)) != 0 ||
		    iso8601_duration_parse(out, &again, NULL, 0) != 0 ||
		    again != ms)
			abort();
	}
	if (iso8601_time_parse(text, &ms, diag, sizeof(diag)) == 0 &&
	    rfc3339_format(ms, RFC3339_MILLIS, out, sizeof(out)) == 0 &&
	    iso8601_time_parse(out, &again, NULL, 0) == 0 && again != ms)
		abort();
	free(text);
	return 0;
}
