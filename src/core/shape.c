/* shape.c - the shape ladder; see shape.h. */
#include <string.h>

#include "core/shape.h"
#include "util/err.h"

void shape_ladder_init(struct shape_ladder *l)
{
	l->n = 0;
}

void shape_ladder_default(struct shape_ladder *l)
{
	static const struct {
		const char *name;
		uint32_t mcpu;
		uint64_t mib;
	} rungs[] = {
		{ "local.xs", 250, 256 },
		{ "local.s", 500, 512 },
		{ "local.m", 1000, 1024 },
		{ "local.l", 2000, 2048 },
	};

	shape_ladder_init(l);
	for (size_t i = 0; i < sizeof(rungs) / sizeof(rungs[0]); i++)
		shape_ladder_add(l, rungs[i].name, rungs[i].mcpu,
				 rungs[i].mib << 20, NULL, 0);
}

static int valid_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > SHAPE_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

int shape_ladder_add(struct shape_ladder *l, const char *name, uint32_t mcpu,
		     uint64_t mem_bytes, char *diag, size_t diagsz)
{
	const struct shape *prev;
	struct shape *s;

	if (l->n >= SHAPE_LADDER_MAX) {
		mds_diag(diag, diagsz, "at most %d shapes", SHAPE_LADDER_MAX);
		return MDS_E_LIMIT;
	}
	if (!valid_name(name)) {
		mds_diag(diag, diagsz,
			 "shape name '%.80s': 1 to %d characters of "
			 "A-Z a-z 0-9 . _ -", name, SHAPE_NAME_MAX);
		return MDS_E_INVAL;
	}
	if (shape_index(l, name) >= 0) {
		mds_diag(diag, diagsz, "shape '%s' is listed twice", name);
		return MDS_E_INVAL;
	}
	if (mcpu == 0 || mem_bytes == 0) {
		mds_diag(diag, diagsz, "shape '%s': cpus and memory must be "
			 "positive", name);
		return MDS_E_INVAL;
	}
	if (l->n > 0) {
		prev = &l->v[l->n - 1];
		if (mcpu < prev->mcpu || mem_bytes < prev->mem_bytes ||
		    (mcpu == prev->mcpu && mem_bytes == prev->mem_bytes)) {
			mds_diag(diag, diagsz,
				 "shape '%s' is not larger than '%s': list "
				 "shapes smallest first", name, prev->name);
			return MDS_E_INVAL;
		}
	}
	s = &l->v[l->n++];
	memset(s->name, 0, sizeof(s->name));
	memcpy(s->name, name, strlen(name));
	s->mcpu = mcpu;
	s->mem_bytes = mem_bytes;
	return 0;
}

int shape_index(const struct shape_ladder *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return (int)i;
	return -1;
}

const struct shape *shape_find(const struct shape_ladder *l, const char *name)
{
	int i = shape_index(l, name);

	return i < 0 ? NULL : &l->v[i];
}

const struct shape *shape_step(const struct shape_ladder *l, const char *name,
			       int steps)
{
	int i = shape_index(l, name);
	long j;

	if (i < 0)
		return NULL;
	j = (long)i + steps;
	if (j < 0 || j >= (long)l->n)
		return NULL;
	return &l->v[j];
}
