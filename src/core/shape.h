/*
 * shape.h - the ladder of instance shapes.
 *
 * A shape is a name with a CPU quota (millicores) and a memory limit
 * (bytes). The ladder is ordered smallest first; vertical scaling moves one
 * rung up or down. Pure data, no I/O.
 */
#ifndef MDS_SHAPE_H
#define MDS_SHAPE_H

#include <stddef.h>
#include <stdint.h>

#define SHAPE_NAME_MAX 63
#define SHAPE_LADDER_MAX 64

struct shape {
	char name[SHAPE_NAME_MAX + 1];
	uint32_t mcpu;      /* CPU quota, 1/1000 of a CPU */
	uint64_t mem_bytes; /* memory limit */
};

struct shape_ladder {
	struct shape v[SHAPE_LADDER_MAX];
	size_t n;
};

/* Empties the ladder. */
void shape_ladder_init(struct shape_ladder *l);

/*
 * Fills the ladder with the default rungs, sized for a small machine:
 * local.xs (0.25 CPU, 256 MiB), local.s (0.5, 512 MiB), local.m (1, 1 GiB),
 * local.l (2, 2 GiB).
 */
void shape_ladder_default(struct shape_ladder *l);

/*
 * Appends a rung. The name must be 1..63 characters of [A-Za-z0-9._-] and
 * unique; mcpu and mem_bytes positive; the rung must not be smaller than the
 * one before in either resource and larger in at least one. Returns 0,
 * MDS_E_INVAL (with the reason in diag) or MDS_E_LIMIT.
 */
int shape_ladder_add(struct shape_ladder *l, const char *name, uint32_t mcpu,
		     uint64_t mem_bytes, char *diag, size_t diagsz);

/* Returns the rung's index, or -1 if no shape has that name. */
int shape_index(const struct shape_ladder *l, const char *name);

/* Returns the named shape, or NULL. Owned by the ladder. */
const struct shape *shape_find(const struct shape_ladder *l, const char *name);

/*
 * Returns the shape steps rungs away from name (positive: larger), or NULL
 * when name is unknown or the step goes past either end of the ladder.
 */
const struct shape *shape_step(const struct shape_ladder *l, const char *name,
			       int steps);

#endif
