/* delivery.c - which deliveries start, and what a failure is; see
 * delivery.h. */
#include <string.h>

#include "core/delivery.h"
#include "util/err.h"

enum delivery_verdict delivery_http_verdict(bool answered, long status)
{
	if (!answered)
		return DELIVERY_TRANSIENT;
	if (status >= 200 && status < 300)
		return DELIVERY_OK;
	if (status == 408 || status == 429 || status >= 500 || status < 200)
		return DELIVERY_TRANSIENT;
	return DELIVERY_PERMANENT;
}

enum delivery_verdict delivery_function_verdict(int error)
{
	if (error == 0)
		return DELIVERY_OK;
	return error == MDS_E_INVAL ? DELIVERY_PERMANENT : DELIVERY_TRANSIENT;
}

/* Whether a delivery before i has the key of i. */
static bool earlier_key(const struct delivery_slot *q, size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (strcmp(q[k].key, q[i].key) == 0)
			return true;
	return false;
}

size_t delivery_pick(const struct delivery_slot *q, size_t n, int64_t now,
		     size_t max_start, size_t *ready, int64_t *next)
{
	size_t nready = 0;

	*next = INT64_MAX;
	for (size_t i = 0; i < n; i++) {
		if (q[i].inflight || earlier_key(q, i))
			continue;
		if (q[i].next_ms > now) {
			if (q[i].next_ms < *next)
				*next = q[i].next_ms;
			continue;
		}
		if (nready < max_start)
			ready[nready++] = i;
	}
	return nready;
}
