/*
 * ocid.c - parsing OCIDs; see ocid.h.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "oci/ocid.h"
#include "util/err.h"

/* OCI's region keys and names (commercial realm oc1), from OCI's "Regions
 * and Availability Domains" page. */
static const char *const region_keys[][2] = {
	{ "iad", "us-ashburn-1" },	{ "phx", "us-phoenix-1" },
	{ "sjc", "us-sanjose-1" },	{ "ord", "us-chicago-1" },
	{ "yul", "ca-montreal-1" },	{ "yyz", "ca-toronto-1" },
	{ "gru", "sa-saopaulo-1" },	{ "vcp", "sa-vinhedo-1" },
	{ "scl", "sa-santiago-1" },	{ "bog", "sa-bogota-1" },
	{ "qro", "mx-queretaro-1" },	{ "mty", "mx-monterrey-1" },
	{ "lhr", "uk-london-1" },	{ "cwl", "uk-cardiff-1" },
	{ "fra", "eu-frankfurt-1" },	{ "ams", "eu-amsterdam-1" },
	{ "zrh", "eu-zurich-1" },	{ "cdg", "eu-paris-1" },
	{ "mrs", "eu-marseille-1" },	{ "lin", "eu-milan-1" },
	{ "arn", "eu-stockholm-1" },	{ "mad", "eu-madrid-1" },
	{ "jed", "me-jeddah-1" },	{ "dxb", "me-dubai-1" },
	{ "auh", "me-abudhabi-1" },	{ "mtz", "il-jerusalem-1" },
	{ "jnb", "af-johannesburg-1" }, { "bom", "ap-mumbai-1" },
	{ "hyd", "ap-hyderabad-1" },	{ "sin", "ap-singapore-1" },
	{ "icn", "ap-seoul-1" },	{ "yny", "ap-chuncheon-1" },
	{ "nrt", "ap-tokyo-1" },	{ "kix", "ap-osaka-1" },
	{ "syd", "ap-sydney-1" },	{ "mel", "ap-melbourne-1" },
};

const char *ocid_region_of_key(const char *key)
{
	for (size_t i = 0; i < sizeof(region_keys) / sizeof(region_keys[0]);
	     i++)
		if (strcasecmp(region_keys[i][0], key) == 0)
			return region_keys[i][1];
	return NULL;
}

/* A full region name: lower-case words joined by '-', ending in a number
 * ("us-ashburn-1"). */
static int region_name_ok(const char *r)
{
	size_t n = strlen(r);

	if (n < 4 || !strchr(r, '-') || !isdigit((unsigned char)r[n - 1]))
		return 0;
	for (const char *p = r; *p; p++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) &&
		    *p != '-')
			return 0;
	return 1;
}

/* Copies the dot-separated field at *p into out (cap bytes); 0 or -1. */
static int field(const char **p, char *out, size_t cap)
{
	const char *dot = strchr(*p, '.');
	size_t n = dot ? (size_t)(dot - *p) : strlen(*p);

	if (!dot || n >= cap)
		return -1;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p = dot + 1;
	return 0;
}

int ocid_parse(const char *s, struct ocid *out, char *diag, size_t diagsz)
{
	char version[8], region[OCID_REGION_MAX];
	const char *p = s, *mapped;

	memset(out, 0, sizeof(*out));
	if (!s || strlen(s) > OCID_MAX || field(&p, version, sizeof(version)) ||
	    strcmp(version, "ocid1") != 0 ||
	    field(&p, out->type, sizeof(out->type)) || !out->type[0] ||
	    field(&p, out->realm, sizeof(out->realm)) || !out->realm[0] ||
	    field(&p, region, sizeof(region)) || !*p) {
		mds_diag(diag, diagsz,
			 "\"%s\" is not an OCID "
			 "(ocid1.<type>.<realm>.<region>.<id>)",
			 s ? s : "");
		return MDS_E_INVAL;
	}
	for (const char *c = s; *c; c++) {
		if (!isalnum((unsigned char)*c) && !strchr(".-_", *c)) {
			mds_diag(diag, diagsz, "OCID \"%s\" has a character "
				 "OCIDs do not have", s);
			return MDS_E_INVAL;
		}
	}
	if (region[0] == '\0' || region_name_ok(region)) {
		snprintf(out->region, sizeof(out->region), "%s", region);
		return 0;
	}
	mapped = ocid_region_of_key(region);
	if (!mapped) {
		mds_diag(diag, diagsz, "OCID %s names region \"%s\", which is "
			 "neither a region name nor a known region key",
			 s, region);
		return MDS_E_INVAL;
	}
	snprintf(out->region, sizeof(out->region), "%s", mapped);
	return 0;
}
