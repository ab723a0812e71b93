/*
 * k8s_quantity.c - Kubernetes resource quantities; see k8s_quantity.h.
 */
#include "k8s/k8s_quantity.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

/* Suffixes and their scale as a power: 10^p (decimal) or 2^p (binary). */
static const struct {
	const char *s;
	int binary;
	int p;
} suffixes[] = {
	{ "Ki", 1, 10 }, { "Mi", 1, 20 }, { "Gi", 1, 30 }, { "Ti", 1, 40 },
	{ "Pi", 1, 50 }, { "Ei", 1, 60 }, { "n", 0, -9 }, { "u", 0, -6 },
	{ "m", 0, -3 },  { "k", 0, 3 },   { "M", 0, 6 },   { "G", 0, 9 },
	{ "T", 0, 12 },  { "P", 0, 15 },  { "E", 0, 18 },  { "", 0, 0 },
};

int k8s_quantity_milli(const char *q, int64_t *out)
{
	long double v = 0, frac = 0.1L, scale = 1000; /* milli */
	const char *p = q;
	int digits = 0;

	if (q == NULL)
		return MDS_E_PARSE;
	if (*p == '+')
		p++;
	for (; *p >= '0' && *p <= '9'; p++, digits++)
		v = v * 10 + (*p - '0');
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
			v += frac * (*p - '0');
			frac /= 10;
		}
	if (digits == 0)
		return MDS_E_PARSE;
	/* "e3" and "E3" are exponents, a lone "E" (or "Ei") the suffix. */
	if ((*p == 'e' || *p == 'E') &&
	    ((p[1] >= '0' && p[1] <= '9') || p[1] == '+' || p[1] == '-')) {
		int sign = 1, e = 0, ed = 0;

		p++;
		if (*p == '-' || *p == '+')
			sign = *p++ == '-' ? -1 : 1;
		for (; *p >= '0' && *p <= '9' && e < 100; p++, ed++)
			e = e * 10 + (*p - '0');
		if (ed == 0 || *p != '\0')
			return MDS_E_PARSE;
		for (int i = 0; i < e; i++)
			scale = sign > 0 ? scale * 10 : scale / 10;
	} else {
		size_t i;

		for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
			if (strcmp(p, suffixes[i].s) == 0)
				break;
		if (i == sizeof(suffixes) / sizeof(suffixes[0]))
			return MDS_E_PARSE;
		for (int k = 0; k < (suffixes[i].p < 0 ? -suffixes[i].p
						       : suffixes[i].p);
		     k++) {
			long double m = suffixes[i].binary ? 2 : 10;

			scale = suffixes[i].p < 0 ? scale / m : scale * m;
		}
	}
	v *= scale;
	if (v > 9.2e18L)
		return MDS_E_LIMIT;
	/* Round up, as Kubernetes does when it drops precision. */
	*out = (int64_t)v;
	if ((long double)*out < v)
		(*out)++;
	return 0;
}

void k8s_quantity_cpu(uint32_t mcpu, char *out, size_t outsz)
{
	if (mcpu % 1000 == 0)
		snprintf(out, outsz, "%" PRIu32, mcpu / 1000);
	else
		snprintf(out, outsz, "%" PRIu32 "m", mcpu);
}

void k8s_quantity_mem(uint64_t bytes, char *out, size_t outsz)
{
	const uint64_t mi = 1024 * 1024;

	if (bytes != 0 && bytes % mi == 0)
		snprintf(out, outsz, "%" PRIu64 "Mi", bytes / mi);
	else
		snprintf(out, outsz, "%" PRIu64, bytes);
}
