/*
 * backend_oci.h - the `oci` backend: existing OCI Data Science model
 * deployments, scaled by OCI itself.
 *
 * A platform backend (BACKEND_CAP_PLATFORM, see deploy/backend.h): the
 * target ref is a model deployment's OCID. read() is GetModelDeployment;
 * apply() reads again, then sends UpdateModelDeployment (PUT) with
 * if-match and either a FIXED_SIZE scalingPolicy or an
 * instanceConfiguration (with the OCPUs and memory of a Flex rung), and
 * hands back the opc-work-request-id; progress() is GetWorkRequest. The
 * backend never creates or deletes an OCI deployment.
 *
 * Usage: CpuUtilization and MemoryUtilization of every deployment the
 * backend has read, fetched with SummarizeMetricsData once per period, in
 * one call per metric and compartment for all its deployments; usage()
 * answers from the last fetch.
 */
#ifndef MDS_BACKEND_OCI_H
#define MDS_BACKEND_OCI_H

#include <stdint.h>
#include <uv.h>

#include "core/shape.h"
#include "deploy/backend.h"

struct oci_client;

/* What the oci backend runs on; all borrowed, and must outlive it. */
struct backend_oci_env {
	uv_loop_t *loop;
	struct oci_client *client;
	const char *region;     /* for an OCID without one; NULL: "" */
	const char *endpoint;   /* base URL for every OCI service instead of
				   the region's (a stand-in); NULL: none */
	const struct shape_ladder *shapes; /* NULL: the VM.Standard2 ladder */
	uint32_t metrics_ms;    /* metrics period; 0: 60000 */
};

/*
 * Makes the oci backend. Returns 0 and a new backend in *out (freed with
 * its ops->close), or MDS_E_INVAL with detail in diag.
 */
int backend_oci_new(const struct backend_oci_env *env, struct backend **out,
		    char *diag, size_t diagsz);

/*
 * Checks that ref is a model deployment OCID and writes the region to use
 * for it (the OCID's, else region) into out. Returns 0, or MDS_E_INVAL with
 * diag naming what is wrong (not an OCID, another resource type, no
 * region). For the API's and CLI's checks before anything is sent.
 */
int backend_oci_check_ref(const char *ref, const char *region,
			  char out[64], char *diag, size_t diagsz);

#endif
