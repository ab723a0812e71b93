/*
 * segvec.h - a growable array kept in fixed segments.
 *
 * Elements never move, and growing never copies them: an array of millions
 * of elements grows by one segment (at most SEGVEC_SEG_BYTES) at a time,
 * where a doubling realloc() would copy, and fault in, tens of MB in one
 * call (a stall of the caller's loop). Unused room is under one segment.
 * Indexing is a shift and a mask. A zeroed struct segvec is not ready:
 * call segvec_init() first.
 */
#ifndef MDS_SEGVEC_H
#define MDS_SEGVEC_H

#include <stddef.h>

#define SEGVEC_SEG_BYTES 65536 /* at most, for elements up to that size */

struct segvec {
	unsigned char **seg; /* the segments */
	size_t nseg, segcap;
	size_t n;     /* elements */
	size_t elem;  /* bytes an element */
	unsigned shift; /* log2 of the elements a segment holds */
};

/* Makes v an empty array of elements of elem bytes (1..SEGVEC_SEG_BYTES). */
void segvec_init(struct segvec *v, size_t elem);

/* Frees the segments; v is empty (and ready) again. NULL is fine. */
void segvec_free(struct segvec *v);

/* Appends a zeroed element; returns it (it stays where it is until
 * segvec_free()). Aborts if memory runs out, like xmalloc(). */
void *segvec_push(struct segvec *v);

/* The element of index i (below v->n). */
static inline void *segvec_at(const struct segvec *v, size_t i)
{
	return v->seg[i >> v->shift] +
	       (i & (((size_t)1 << v->shift) - 1)) * v->elem;
}

/* The bytes the array takes: its segments and their directory. */
size_t segvec_bytes(const struct segvec *v);

#endif
