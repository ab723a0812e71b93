/* iso8601.c - ISO-8601 durations and UTC timestamps; see iso8601.h. */
#include <stdio.h>
#include <string.h>

#include "core/iso8601.h"
#include "util/err.h"

#define MS_SECOND 1000LL
#define MS_MINUTE (60 * MS_SECOND)
#define MS_HOUR (60 * MS_MINUTE)
#define MS_DAY (24 * MS_HOUR)
#define MS_WEEK (7 * MS_DAY)

/* Describes what sits at p for a diagnostic: "end of input" or 'c'. */
static void found(const char *p, char *out, size_t outsz)
{
	if (*p == '\0')
		snprintf(out, outsz, "end of input");
	else
		snprintf(out, outsz, "'%c'", *p);
}

static int fail_at(const char *text, const char *p, const char *expected,
		   char *diag, size_t diagsz)
{
	char what[16];

	found(p, what, sizeof(what));
	mds_diag(diag, diagsz, "column %d: expected %s, found %s",
		 (int)(p - text) + 1, expected, what);
	return MDS_E_PARSE;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The rank orders designators; a component must outrank the previous one. */
static int designator(char c, int in_time, int64_t *unit)
{
	if (!in_time && c == 'W') {
		*unit = MS_WEEK;
		return 1;
	}
	if (!in_time && c == 'D') {
		*unit = MS_DAY;
		return 2;
	}
	if (in_time && c == 'H') {
		*unit = MS_HOUR;
		return 3;
	}
	if (in_time && c == 'M') {
		*unit = MS_MINUTE;
		return 4;
	}
	if (in_time && c == 'S') {
		*unit = MS_SECOND;
		return 5;
	}
	return 0;
}

int iso8601_duration_parse(const char *text, int64_t *out_ms, char *diag,
			   size_t diagsz)
{
	const char *p = text;
	int64_t total = 0;
	int in_time = 0, last_rank = 0, components = 0;

	if (*p != 'P')
		return fail_at(text, p, "'P'", diag, diagsz);
	p++;
	for (;;) {
		int64_t whole = 0, frac = 0, unit = 0, add;
		int ndigits = 0, nfrac = 0, rank;

		if (*p == '\0')
			break;
		if (*p == 'T' && !in_time) {
			in_time = 1;
			p++;
			if (!is_digit(*p))
				return fail_at(text, p, "a number", diag,
					       diagsz);
			continue;
		}
		if (!is_digit(*p))
			return fail_at(text, p, in_time ? "a number" :
				       "a number or 'T'", diag, diagsz);
		while (is_digit(*p)) {
			if (++ndigits > 12) {
				mds_diag(diag, diagsz,
					 "column %d: number too large",
					 (int)(p - text) + 1);
				return MDS_E_INVAL;
			}
			whole = whole * 10 + (*p++ - '0');
		}
		if (*p == '.' || *p == ',') {
			p++;
			if (!is_digit(*p))
				return fail_at(text, p, "a digit", diag,
					       diagsz);
			while (is_digit(*p)) {
				if (++nfrac > 3) {
					mds_diag(diag, diagsz,
						 "column %d: finer than a "
						 "millisecond",
						 (int)(p - text) + 1);
					return MDS_E_INVAL;
				}
				frac = frac * 10 + (*p++ - '0');
			}
			for (int i = nfrac; i < 3; i++)
				frac *= 10;
		}
		if (!in_time && (*p == 'Y' || *p == 'M')) {
			mds_diag(diag, diagsz,
				 "column %d: years and months have no fixed "
				 "length; use weeks, days or hours",
				 (int)(p - text) + 1);
			return MDS_E_INVAL;
		}
		rank = designator(*p, in_time, &unit);
		if (rank == 0 || rank <= last_rank)
			return fail_at(text, p, in_time ? "'H', 'M' or 'S'" :
				       "'W', 'D' or 'T'", diag, diagsz);
		if (nfrac > 0 && unit != MS_SECOND)
			return fail_at(text, p, "'S' after a fraction", diag,
				       diagsz);
		p++;
		/* Checked before multiplying: 12 digits of weeks overflow
		 * int64_t. frac is below a second, so whole * unit + frac
		 * stays in range once whole * unit is at most the maximum. */
		if (whole > ISO8601_DURATION_MAX_MS / unit ||
		    (add = whole * unit + frac) > ISO8601_DURATION_MAX_MS ||
		    total > ISO8601_DURATION_MAX_MS - add) {
			mds_diag(diag, diagsz, "duration longer than %lld days",
				 ISO8601_DURATION_MAX_MS / MS_DAY);
			return MDS_E_INVAL;
		}
		total += add;
		last_rank = rank;
		components++;
	}
	if (components == 0)
		return fail_at(text, p, "a number", diag, diagsz);
	*out_ms = total;
	return 0;
}

int iso8601_duration_format(int64_t ms, char *out, size_t outsz)
{
	char tmp[ISO8601_DURATION_BUFSZ];
	int64_t d, h, m, s, f;
	size_t len = 0;
	int n;

	if (ms < 0 || ms > ISO8601_DURATION_MAX_MS)
		return MDS_E_INVAL;
	d = ms / MS_DAY;
	h = ms % MS_DAY / MS_HOUR;
	m = ms % MS_HOUR / MS_MINUTE;
	s = ms % MS_MINUTE / MS_SECOND;
	f = ms % MS_SECOND;
	tmp[len++] = 'P';
	if (d > 0)
		len += (size_t)snprintf(tmp + len, sizeof(tmp) - len, "%lldD",
					(long long)d);
	if (h > 0 || m > 0 || s > 0 || f > 0 || d == 0) {
		tmp[len++] = 'T';
		if (h > 0)
			len += (size_t)snprintf(tmp + len, sizeof(tmp) - len,
						"%lldH", (long long)h);
		if (m > 0)
			len += (size_t)snprintf(tmp + len, sizeof(tmp) - len,
						"%lldM", (long long)m);
		if (f > 0)
			len += (size_t)snprintf(tmp + len, sizeof(tmp) - len,
						"%lld.%03lldS", (long long)s,
						(long long)f);
		else if (s > 0 || (h == 0 && m == 0))
			len += (size_t)snprintf(tmp + len, sizeof(tmp) - len,
						"%lldS", (long long)s);
	}
	tmp[len] = '\0';
	/* Trim trailing zeros of a fraction: "1.500S" reads as "1.5S". */
	if (f > 0) {
		char *dot = strchr(tmp, '.');
		char *z = tmp + len - 2;

		while (z > dot && *z == '0')
			z--;
		if (z == dot)
			z--;
		z[1] = 'S';
		z[2] = '\0';
	}
	n = snprintf(out, outsz, "%s", tmp);
	if (n < 0 || (size_t)n >= outsz)
		return MDS_E_LIMIT;
	return 0;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * Reads exactly n digits at *pp, in [min, max], into *out; on error the
 * diagnostic points at the field's first column.
 */
static int field(const char *text, const char **pp, int n, int64_t min,
		 int64_t max, const char *expected, int64_t *out, char *diag,
		 size_t diagsz)
{
	int64_t v = 0;

	for (int i = 0; i < n; i++) {
		if (!is_digit((*pp)[i]))
			return fail_at(text, *pp, expected, diag, diagsz);
		v = v * 10 + ((*pp)[i] - '0');
	}
	if (v < min || v > max)
		return fail_at(text, *pp, expected, diag, diagsz);
	*pp += n;
	*out = v;
	return 0;
}

static int expect_char(const char *text, const char **pp, char c, char *diag,
		       size_t diagsz)
{
	char what[8];

	if (**pp == c) {
		(*pp)++;
		return 0;
	}
	snprintf(what, sizeof(what), "'%c'", c);
	return fail_at(text, *pp, what, diag, diagsz);
}

int iso8601_time_parse(const char *text, int64_t *out_ms, char *diag,
		       size_t diagsz)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31 };
	const char *p = text;
	int64_t y, mo, d, h, mi, s, frac = 0, off = 0, ms;
	int rc, leap;

	rc = field(text, &p, 4, 0, 9999, "a 4-digit year", &y, diag, diagsz);
	if (rc == 0)
		rc = expect_char(text, &p, '-', diag, diagsz);
	if (rc == 0)
		rc = field(text, &p, 2, 1, 12, "a month 01-12", &mo, diag,
			   diagsz);
	if (rc == 0)
		rc = expect_char(text, &p, '-', diag, diagsz);
	if (rc != 0)
		return rc;
	leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
	rc = field(text, &p, 2, 1, mdays[mo - 1] - (mo == 2 && !leap),
		   "a valid day", &d, diag, diagsz);
	if (rc != 0)
		return rc;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return fail_at(text, p, "'T'", diag, diagsz);
	p++;
	rc = field(text, &p, 2, 0, 23, "an hour 00-23", &h, diag, diagsz);
	if (rc == 0)
		rc = expect_char(text, &p, ':', diag, diagsz);
	if (rc == 0)
		rc = field(text, &p, 2, 0, 59, "minutes 00-59", &mi, diag,
			   diagsz);
	if (rc == 0)
		rc = expect_char(text, &p, ':', diag, diagsz);
	if (rc == 0)
		rc = field(text, &p, 2, 0, 60, "seconds 00-60", &s, diag,
			   diagsz);
	if (rc != 0)
		return rc;
	if (*p == '.') {
		int nd = 0;

		p++;
		if (!is_digit(*p))
			return fail_at(text, p, "a digit", diag, diagsz);
		while (is_digit(*p)) {
			if (nd < 3) {
				frac = frac * 10 + (*p - '0');
				nd++;
			}
			p++;
		}
		for (; nd < 3; nd++)
			frac *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int64_t oh, om;
		int sign = *p == '-' ? -1 : 1;

		p++;
		rc = field(text, &p, 2, 0, 23, "an offset hour", &oh, diag,
			   diagsz);
		if (rc == 0)
			rc = expect_char(text, &p, ':', diag, diagsz);
		if (rc == 0)
			rc = field(text, &p, 2, 0, 59, "offset minutes", &om,
				   diag, diagsz);
		if (rc != 0)
			return rc;
		off = sign * (oh * MS_HOUR + om * MS_MINUTE);
	} else {
		return fail_at(text, p, "'Z' or an offset", diag, diagsz);
	}
	if (*p != '\0')
		return fail_at(text, p, "end of input", diag, diagsz);
	ms = days_from_civil(y, mo, d) * MS_DAY + h * MS_HOUR +
	     mi * MS_MINUTE + s * MS_SECOND + frac - off;
	*out_ms = ms;
	return 0;
}
