/* idrange.c - ids handed out from a range; see idrange.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/idrange.h"
#include "util/err.h"
#include "util/xalloc.h"

/* Reads the decimal number at *s up to a byte not a digit; false when
 * there is none, or it passes IDRANGE_ID_MAX. */
static bool read_id(const char **s, uint32_t *out)
{
	uint64_t v = 0;
	const char *p = *s;

	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > IDRANGE_ID_MAX)
			return false;
	}
	*out = (uint32_t)v;
	*s = p;
	return true;
}

int idrange_parse(const char *s, struct idrange *r, char *diag,
		  size_t diagsz)
{
	struct idrange x = { 0, 0 };
	const char *p = s;

	if (s[0] == '\0') {
		*r = x;
		return 0;
	}
	if (!read_id(&p, &x.lo) || *p++ != '-' || !read_id(&p, &x.hi) ||
	    *p != '\0') {
		mds_diag(diag, diagsz, "'%s' is not a range LO-HI of ids "
			 "(decimal, at most %u), e.g. \"60000-60999\", or "
			 "\"\" for none", s, IDRANGE_ID_MAX);
		return MDS_E_INVAL;
	}
	if (x.lo == 0 || x.lo > x.hi) {
		mds_diag(diag, diagsz, "'%s': the range must start above 0 "
			 "(root's id) and not end before it starts", s);
		return MDS_E_INVAL;
	}
	*r = x;
	return 0;
}

void idrange_format(const struct idrange *r, char *buf, size_t bufsz)
{
	if (r->lo == 0 && bufsz > 0)
		buf[0] = '\0';
	else
		snprintf(buf, bufsz, "%u-%u", r->lo, r->hi);
}

uint64_t idrange_size(const struct idrange *r)
{
	return r->lo == 0 ? 0 : (uint64_t)r->hi - r->lo + 1;
}

bool idrange_has(const struct idrange *r, uint32_t id)
{
	return r->lo != 0 && id >= r->lo && id <= r->hi;
}

static int cmp_id(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

int idrange_pick(const struct idrange *r, const uint32_t *used, size_t n,
		 bool (*taken)(void *arg, uint32_t id), void *arg,
		 uint32_t *out)
{
	uint32_t *sorted;
	size_t i = 0;
	int rc = MDS_E_LIMIT;

	if (r->lo == 0)
		return MDS_E_LIMIT;
	sorted = xcalloc(n + 1, sizeof(*sorted));
	if (n > 0)
		memcpy(sorted, used, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_id);
	/* One walk up the range beside the sorted ids held: each id of the
	 * range is looked at once, and the walk ends at the first free one
	 * (after at most n + the ids others take). */
	for (uint64_t id = r->lo; id <= r->hi; id++) {
		while (i < n && sorted[i] < id)
			i++;
		if (i < n && sorted[i] == id)
			continue;
		if (taken != NULL && taken(arg, (uint32_t)id))
			continue;
		*out = (uint32_t)id;
		rc = 0;
		break;
	}
	free(sorted);
	return rc;
}
