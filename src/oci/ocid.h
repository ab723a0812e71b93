/*
 * ocid.h - Oracle Cloud IDs: "ocid1.<type>.<realm>.[region].<unique>".
 *
 * Pure: no I/O. The region part is a full region name ("us-ashburn-1") or
 * one of OCI's three-letter region keys ("iad"), empty for global
 * resources (tenancies, users, compartments).
 */
#ifndef MDS_OCI_OCID_H
#define MDS_OCI_OCID_H

#include <stddef.h>

#define OCID_MAX 255
#define OCID_REGION_MAX 64

struct ocid {
	char type[64];               /* "datasciencemodeldeployment" */
	char realm[16];              /* "oc1" */
	char region[OCID_REGION_MAX]; /* full name, "" when global */
};

/*
 * Parses s. Returns 0 and fills out (a region key is turned into its full
 * name); MDS_E_INVAL when s is not an OCID or names a region key mdscale
 * does not know, with the reason in diag.
 */
int ocid_parse(const char *s, struct ocid *out, char *diag, size_t diagsz);

/* Returns the full region name of a three-letter region key ("iad" ->
 * "us-ashburn-1", any case), or NULL. Static storage. */
const char *ocid_region_of_key(const char *key);

#endif
