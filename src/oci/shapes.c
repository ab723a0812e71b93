/*
 * shapes.c - the shape ladder of `oci` deployments; see shapes.h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci/shapes.h"
#include "util/err.h"

#define GB (1000ull * 1000 * 1000)

void oci_shapes_default(struct shape_ladder *l)
{
	static const struct {
		const char *name;
		double ocpus, mem_gb;
	} rungs[] = {
		{ "VM.Standard2.1", 1, 15 },	{ "VM.Standard2.2", 2, 30 },
		{ "VM.Standard2.4", 4, 60 },	{ "VM.Standard2.8", 8, 120 },
		{ "VM.Standard2.16", 16, 240 }, { "VM.Standard2.24", 24, 320 },
	};

	shape_ladder_init(l);
	for (size_t i = 0; i < sizeof(rungs) / sizeof(rungs[0]); i++)
		(void)oci_shapes_add(l, rungs[i].name, rungs[i].ocpus,
				     rungs[i].mem_gb, NULL, 0);
}

int oci_shapes_add(struct shape_ladder *l, const char *name, double ocpus,
		   double memory_gb, char *diag, size_t diagsz)
{
	if (!(ocpus > 0 && ocpus <= 4000) || !(memory_gb > 0 &&
					      memory_gb <= 1e5)) {
		mds_diag(diag, diagsz, "shape %s: OCPUs and memory must be "
			 "positive", name);
		return MDS_E_INVAL;
	}
	return shape_ladder_add(l, name, (uint32_t)lround(ocpus * 1000),
				(uint64_t)llround(memory_gb * GB), diag,
				diagsz);
}

void oci_flex_rung_name(const char *shape, double ocpus, double memory_gb,
			char out[SHAPE_NAME_MAX + 1])
{
	snprintf(out, SHAPE_NAME_MAX + 1, "%s-%g-%g", shape, ocpus,
		 memory_gb);
}

int oci_shapes_flex(struct shape_ladder *l, const struct oci_flex *f,
		    char *diag, size_t diagsz)
{
	char name[SHAPE_NAME_MAX + 1];
	int rc;

	shape_ladder_init(l);
	if (!f->shape || !strstr(f->shape, ".Flex") || f->steps < 1 ||
	    !(f->ocpus_min > 0) || !(f->memory_gb_min > 0) ||
	    f->ocpus_max < f->ocpus_min ||
	    f->memory_gb_max < f->memory_gb_min) {
		mds_diag(diag, diagsz,
			 "flex: a .Flex shape, positive minimums, maximums "
			 "not below them and at least one step are needed");
		return MDS_E_INVAL;
	}
	for (unsigned i = 0; i <= f->steps; i++) {
		/* Whole OCPUs and GB: OCI takes fractions, people read
		 * integers. */
		double o = round(f->ocpus_min + (f->ocpus_max - f->ocpus_min) *
							 i / f->steps);
		double m = round(f->memory_gb_min +
				 (f->memory_gb_max - f->memory_gb_min) * i /
					 f->steps);

		if (o < 1)
			o = 1;
		if (m < 1)
			m = 1;
		if (l->n > 0 && l->v[l->n - 1].mcpu == (uint32_t)(o * 1000) &&
		    l->v[l->n - 1].mem_bytes == (uint64_t)(m * GB))
			continue; /* rounding made two rungs equal */
		oci_flex_rung_name(f->shape, o, m, name);
		rc = oci_shapes_add(l, name, o, m, diag, diagsz);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int oci_shape_split(const char *rung, char *shape, size_t shapesz,
		    double *ocpus, double *memory_gb)
{
	const char *flex = strstr(rung, ".Flex-");
	char *end;

	*ocpus = 0;
	*memory_gb = 0;
	if (!flex) {
		if (strlen(rung) >= shapesz || !*rung)
			return MDS_E_INVAL;
		snprintf(shape, shapesz, "%s", rung);
		return 0;
	}
	if ((size_t)(flex + 5 - rung) >= shapesz)
		return MDS_E_INVAL;
	snprintf(shape, shapesz, "%.*s", (int)(flex + 5 - rung), rung);
	*ocpus = strtod(flex + 6, &end);
	if (end == flex + 6 || *end != '-' || !(*ocpus > 0))
		return MDS_E_INVAL;
	*memory_gb = strtod(end + 1, &end);
	if (*end != '\0' || !(*memory_gb > 0))
		return MDS_E_INVAL;
	return 0;
}
