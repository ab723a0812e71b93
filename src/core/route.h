/*
 * route.h - choosing the instance that gets the next request.
 *
 * Least outstanding requests first; ties go round-robin from a cursor the
 * caller keeps, so equal instances share the load evenly. Pure and O(n).
 */
#ifndef MDS_ROUTE_H
#define MDS_ROUTE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Returns the index (0..n-1) of the entry with the fewest outstanding
 * requests, preferring among equals the first at or after *cursor, and
 * advances *cursor past it. Returns -1 when n is 0. The caller owns both
 * arrays; nothing is kept.
 */
int route_pick(const uint32_t *outstanding, size_t n, uint32_t *cursor);

#endif
