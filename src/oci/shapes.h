/*
 * shapes.h - the shape ladder of `oci` deployments.
 *
 * The default is the recipe's ladder, VM.Standard2.1 -> .2 -> .4 -> .8 ->
 * .16 -> .24 (1 OCPU and 15 GB per step of the name, 320 GB at .24). Any
 * ordered list of OCI shapes may replace it. A Flex shape becomes a ladder
 * of rungs between a minimum and a maximum in OCPUs and memory; each rung
 * is named "SHAPE-OCPUS-MEMORYGB" ("VM.Standard.E4.Flex-2-32"), which is
 * also how the backend reports a Flex deployment's shape.
 */
#ifndef MDS_OCI_SHAPES_H
#define MDS_OCI_SHAPES_H

#include <stddef.h>

#include "core/shape.h"

/* A Flex ladder: steps + 1 rungs from (min) to (max), evenly spaced. */
struct oci_flex {
	const char *shape;    /* "VM.Standard.E4.Flex" */
	double ocpus_min, ocpus_max;
	double memory_gb_min, memory_gb_max;
	unsigned steps;       /* >= 1 */
};

/* Fills l with the recipe's VM.Standard2 ladder. */
void oci_shapes_default(struct shape_ladder *l);

/*
 * Appends an OCI shape by name, with its OCPUs and memory (GB) for the
 * ladder's ordering. Returns 0, or MDS_E_INVAL / MDS_E_LIMIT (diag).
 */
int oci_shapes_add(struct shape_ladder *l, const char *name, double ocpus,
		   double memory_gb, char *diag, size_t diagsz);

/* Fills l with the rungs of a Flex ladder. Returns 0, or MDS_E_INVAL
 * (a bound that is not positive or a max below its min) with diag. */
int oci_shapes_flex(struct shape_ladder *l, const struct oci_flex *f,
		    char *diag, size_t diagsz);

/* Writes the rung name of a Flex configuration into out. */
void oci_flex_rung_name(const char *shape, double ocpus, double memory_gb,
			char out[SHAPE_NAME_MAX + 1]);

/*
 * Splits a rung name into the OCI shape (into shape, shapesz bytes) and,
 * for a Flex rung, its OCPUs and memory (else both 0). Returns 0, or
 * MDS_E_INVAL for a name that does not fit.
 */
int oci_shape_split(const char *rung, char *shape, size_t shapesz,
		    double *ocpus, double *memory_gb);

#endif
