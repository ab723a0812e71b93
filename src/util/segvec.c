/* segvec.c - see segvec.h. */
#include <stdlib.h>
#include <string.h>

#include "util/segvec.h"
#include "util/xalloc.h"

void segvec_init(struct segvec *v, size_t elem)
{
	memset(v, 0, sizeof(*v));
	v->elem = elem;
	while (((size_t)2 << v->shift) * elem <= SEGVEC_SEG_BYTES)
		v->shift++;
}

void segvec_free(struct segvec *v)
{
	size_t elem;

	if (v == NULL)
		return;
	for (size_t i = 0; i < v->nseg; i++)
		free(v->seg[i]);
	free(v->seg);
	elem = v->elem;
	segvec_init(v, elem);
}

void *segvec_push(struct segvec *v)
{
	size_t per = (size_t)1 << v->shift;
	void *e;

	if (v->n == v->nseg * per) {
		if (v->nseg == v->segcap) {
			v->segcap = v->segcap ? 2 * v->segcap : 4;
			v->seg = xreallocarray(v->seg, v->segcap,
					       sizeof(*v->seg));
		}
		v->seg[v->nseg++] = xmalloc(per * v->elem);
	}
	e = segvec_at(v, v->n++);
	memset(e, 0, v->elem);
	return e;
}

size_t segvec_bytes(const struct segvec *v)
{
	return v->nseg * ((size_t)1 << v->shift) * v->elem +
	       v->segcap * sizeof(*v->seg);
}
