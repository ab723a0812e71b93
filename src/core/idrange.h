/*
 * idrange.h - a range of user ids handed out one per owner, as systemd's
 * DynamicUser does: the local backend runs each deployment's instances
 * under a uid (and the gid of the same number) of its own, taken from the
 * configured range "LO-HI" (config instanceUids). Pure: no I/O; what else
 * holds an id (a user of the system) is asked through a callback.
 */
#ifndef MDS_IDRANGE_H
#define MDS_IDRANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The highest id a range may hold: below (uid_t)-1 and 65534's overflow
 * ids is not enough, an id must also fit a signed 32-bit integer. */
#define IDRANGE_ID_MAX 2147483646u
/* "2147483646-2147483646" and its NUL. */
#define IDRANGE_TEXT_MAX 24

/* A range of ids, both ends included; lo 0: no range (turned off). */
struct idrange {
	uint32_t lo, hi;
};

/*
 * Parses "LO-HI" (decimal, 1 <= LO <= HI <= IDRANGE_ID_MAX; uid 0 is
 * root's and never in a range) into r; "" gives the empty range (lo 0).
 * Returns 0, or MDS_E_INVAL with what is wrong in diag.
 */
int idrange_parse(const char *s, struct idrange *r, char *diag,
		  size_t diagsz);

/* Writes r as "LO-HI" ("" when empty) into buf (IDRANGE_TEXT_MAX). */
void idrange_format(const struct idrange *r, char *buf, size_t bufsz);

/* The number of ids in r. */
uint64_t idrange_size(const struct idrange *r);

/* Whether id lies in r. */
bool idrange_has(const struct idrange *r, uint32_t id);

/*
 * Picks the lowest id of r that is neither among the n ids of used (any
 * order, ids outside r allowed; borrowed) nor taken by someone else as
 * taken(arg, id) says (NULL: nobody else). Returns 0 with the id in *out,
 * or MDS_E_LIMIT when every id of r is held (or r is empty).
 */
int idrange_pick(const struct idrange *r, const uint32_t *used, size_t n,
		 bool (*taken)(void *arg, uint32_t id), void *arg,
		 uint32_t *out);

#endif
