/* rfc3339.c - see rfc3339.h. */
#include <stdio.h>

#include "util/err.h"
#include "util/rfc3339.h"

#define MS_SECOND 1000LL
#define MS_MINUTE (60 * MS_SECOND)
#define MS_HOUR (60 * MS_MINUTE)
#define MS_DAY (24 * MS_HOUR)

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z. */
#define TIME_MIN_MS (-62167219200000LL)
#define TIME_MAX_MS (253402300799999LL)

/* The civil date of a day count since 1970-01-01 (Howard Hinnant's
 * algorithm). */
static void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yoe + era * 400 + (*m <= 2);
}

int rfc3339_format(int64_t ms, enum rfc3339_precision p, char *out,
		   size_t outsz)
{
	int64_t days, rem, y, mo, d;
	char frac[8] = "";
	int n;

	if (outsz > 0)
		out[0] = '\0';
	if (ms < TIME_MIN_MS || ms > TIME_MAX_MS)
		return MDS_E_INVAL;
	days = ms / MS_DAY;
	rem = ms % MS_DAY;
	if (rem < 0) {
		rem += MS_DAY;
		days--;
	}
	civil_from_days(days, &y, &mo, &d);
	if (p == RFC3339_MILLIS ||
	    (p == RFC3339_AUTO && rem % MS_SECOND != 0))
		snprintf(frac, sizeof(frac), ".%03lld",
			 (long long)(rem % MS_SECOND));
	n = snprintf(out, outsz, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld%sZ",
		     (long long)y, (long long)mo, (long long)d,
		     (long long)(rem / MS_HOUR),
		     (long long)(rem % MS_HOUR / MS_MINUTE),
		     (long long)(rem % MS_MINUTE / MS_SECOND), frac);
	if (n < 0 || (size_t)n >= outsz) {
		if (outsz > 0)
			out[0] = '\0';
		return MDS_E_LIMIT;
	}
	return 0;
}
