/* route.c - least-outstanding routing choice; see route.h. */
#include "core/route.h"

int route_pick(const uint32_t *outstanding, size_t n, uint32_t *cursor)
{
	size_t start, best;

	if (n == 0)
		return -1;
	start = *cursor % n;
	best = start;
	for (size_t k = 1; k < n; k++) {
		size_t i = (start + k) % n;

		if (outstanding[i] < outstanding[best])
			best = i;
	}
	*cursor = (uint32_t)(best + 1);
	return (int)best;
}
