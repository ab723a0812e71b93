/*
 * config.h - the OCI config file (~/.oci/config) and API signing keys.
 *
 * The file is INI-like: "[PROFILE]" sections of "key=value" lines, '#' or
 * ';' comments; keys of [DEFAULT] are inherited by every profile. A profile
 * for API signing keys has user, fingerprint, key_file, tenancy and region,
 * and pass_phrase when the key is encrypted. The path is OCI_CONFIG_FILE,
 * else ~/.oci/config; key_file may start with "~/".
 */
#ifndef MDS_OCI_CONFIG_H
#define MDS_OCI_CONFIG_H

#include <stddef.h>

struct oci_signer;

/* One profile's values; each field is allocated, NULL when absent. */
struct oci_profile {
	char *name;
	char *user;
	char *fingerprint;
	char *key_file;   /* with "~/" expanded */
	char *tenancy;
	char *region;
	char *pass_phrase;
};

/* Writes the config path to use (OCI_CONFIG_FILE, else $HOME/.oci/config)
 * into a new string; the caller frees it. */
char *oci_config_default_path(void);

/*
 * Parses config text (for tests and for oci_config_load) and fills *out
 * with profile (NULL: "DEFAULT"). Returns 0; MDS_E_NOTFOUND if the profile
 * is absent; MDS_E_PARSE for a line that is neither a section, a comment
 * nor key=value; diag names the line or the profile. The caller frees out
 * with oci_profile_free, also on error.
 */
int oci_config_parse(const char *text, const char *profile,
		     struct oci_profile *out, char *diag, size_t diagsz);

/* Reads the file at path (NULL: the default path), then as
 * oci_config_parse; MDS_E_NOTFOUND or MDS_E_IO when the file is missing or
 * unreadable, with the path in diag. */
int oci_config_load(const char *path, const char *profile,
		    struct oci_profile *out, char *diag, size_t diagsz);

/* Frees the fields of a profile (not p itself). NULL is accepted. */
void oci_profile_free(struct oci_profile *p);

/*
 * Loads profile from the config at path (NULL: default) and creates an API
 * key signer (keyId "tenancy/user/fingerprint", region and tenancy from the
 * profile). Checks that every required key is present, that the key file
 * reads and decrypts, and that its public key matches fingerprint.
 * Returns 0 and a new signer in *out (oci_signer_free); MDS_E_NOTFOUND,
 * MDS_E_IO, MDS_E_PARSE, MDS_E_INVAL (a missing key, a fingerprint that
 * does not match) or MDS_E_UNAUTH (passphrase missing or wrong); diag says
 * what to fix.
 */
int oci_signer_from_config(const char *path, const char *profile,
			   struct oci_signer **out, char *diag,
			   size_t diagsz);

#endif
