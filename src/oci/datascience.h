/*
 * datascience.h - the Data Science API's documents mdscale reads and
 * writes: a ModelDeployment, a WorkRequest, UpdateModelDeploymentDetails,
 * and OCI's error body. JSON stays inside this module (and the other OCI
 * API edges); callers see C structs.
 */
#ifndef MDS_OCI_DATASCIENCE_H
#define MDS_OCI_DATASCIENCE_H

#include <stddef.h>
#include <stdint.h>

#include "oci/ocid.h"

/* The parts of a ModelDeployment mdscale uses. */
struct oci_md {
	char id[OCID_MAX + 1];
	char display_name[256];
	char compartment_id[OCID_MAX + 1];
	char model_id[OCID_MAX + 1];
	char state[32];        /* lifecycleState, as OCI spells it */
	uint32_t count;        /* scalingPolicy.instanceCount (FIXED_SIZE) */
	char shape[64];        /* instanceConfiguration.instanceShapeName */
	double ocpus;          /* Flex shape config; 0 when absent */
	double memory_gb;
};

/* A change to ask for; count 0 and shape NULL leave that part alone. */
struct oci_md_change {
	uint32_t count;
	const char *shape;
	double ocpus;          /* > 0 for a Flex shape */
	double memory_gb;
};

/* The parts of a WorkRequest mdscale uses. */
struct oci_wr {
	char status[24]; /* ACCEPTED IN_PROGRESS FAILED SUCCEEDED CANCELING
			    CANCELED */
	int percent;     /* percentComplete, rounded */
};

/*
 * Parses a GetModelDeployment body. Returns 0; MDS_E_PARSE for a body that
 * is not JSON or lacks id, lifecycleState, modelId, instanceShapeName or a
 * FIXED_SIZE instanceCount; diag names the field.
 */
int oci_md_parse(const char *json, size_t len, struct oci_md *out,
		 char *diag, size_t diagsz);

/*
 * Returns a new UpdateModelDeploymentDetails body (the caller frees it):
 * deploymentType SINGLE_MODEL, modelConfigurationDetails with model_id and
 * scalingPolicy {FIXED_SIZE, instanceCount} and/or instanceConfiguration
 * {instanceShapeName[, modelDeploymentInstanceShapeConfigDetails]}.
 */
char *oci_md_update_body(const char *model_id, const struct oci_md_change *ch);

/* Parses a GetWorkRequest body. Returns 0 or MDS_E_PARSE (diag). */
int oci_wr_parse(const char *json, size_t len, struct oci_wr *out,
		 char *diag, size_t diagsz);

/* Writes "code: message" of an OCI error body into out ("" when the body
 * is not one). */
void oci_error_text(const char *json, size_t len, char *out, size_t outsz);

/* Returns 1 if s is one of the documented lifecycle states of a model
 * deployment. */
int oci_md_state_known(const char *s);

#endif
