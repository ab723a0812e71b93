/*
 * config.c - the OCI config file and API signing key signers; see config.h.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "oci/config.h"
#include "oci/signer.h"
#include "util/err.h"
#include "util/file.h"
#include "util/xalloc.h"

/* A config file holds a few profiles; a key file one PEM key. */
#define CONFIG_MAX (1024 * 1024)
#define KEY_FILE_MAX (64 * 1024)
#define LINE_MAX_LEN 4096

/* The keys mdscale reads, and where each goes; others are ignored. */
struct key_slot {
	const char *key;
	size_t off;
};

static const struct key_slot slots[] = {
	{ "user", offsetof(struct oci_profile, user) },
	{ "fingerprint", offsetof(struct oci_profile, fingerprint) },
	{ "key_file", offsetof(struct oci_profile, key_file) },
	{ "tenancy", offsetof(struct oci_profile, tenancy) },
	{ "region", offsetof(struct oci_profile, region) },
	{ "pass_phrase", offsetof(struct oci_profile, pass_phrase) },
};

char *oci_config_default_path(void)
{
	const char *env = getenv("OCI_CONFIG_FILE");
	const char *home = getenv("HOME");

	if (env && *env)
		return xstrdup(env);
	return xasprintf("%s/.oci/config", home && *home ? home : ".");
}

void oci_profile_free(struct oci_profile *p)
{
	if (!p)
		return;
	free(p->name);
	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		char **f = (char **)((char *)p + slots[i].off);
		free(*f);
		*f = NULL;
	}
	p->name = NULL;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Stores value under key in p; from_default: only where p has none yet,
 * since the profile's own values win over [DEFAULT]'s. */
static void set_key(struct oci_profile *p, const char *key, const char *value,
		    int from_default)
{
	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		char **f = (char **)((char *)p + slots[i].off);

		if (strcmp(slots[i].key, key) != 0)
			continue;
		if (from_default && *f)
			return;
		free(*f);
		*f = xstrdup(value);
		return;
	}
}

/* One line of text. Returns 1 if the profile's section was seen. */
static int parse_line(char *line, int lineno, const char *profile,
		      char **section, struct oci_profile *out, int *rc,
		      char *diag, size_t diagsz)
{
	char *s = trim(line), *eq;

	if (*s == '\0' || *s == '#' || *s == ';')
		return 0;
	if (*s == '[') {
		char *end = strchr(s, ']');

		if (!end || end[1] != '\0') {
			mds_diag(diag, diagsz,
				 "line %d: a section is \"[NAME]\"", lineno);
			*rc = MDS_E_PARSE;
			return 0;
		}
		*end = '\0';
		free(*section);
		*section = xstrdup(trim(s + 1));
		return strcmp(*section, profile) == 0;
	}
	eq = strchr(s, '=');
	if (!eq || !*section) {
		mds_diag(diag, diagsz,
			 "line %d: expected \"key=value\" inside a [PROFILE]",
			 lineno);
		*rc = MDS_E_PARSE;
		return 0;
	}
	*eq = '\0';
	if (strcmp(*section, profile) == 0)
		set_key(out, trim(s), trim(eq + 1), 0);
	else if (strcmp(*section, "DEFAULT") == 0)
		set_key(out, trim(s), trim(eq + 1), 1);
	return 0;
}

int oci_config_parse(const char *text, const char *profile,
		     struct oci_profile *out, char *diag, size_t diagsz)
{
	char line[LINE_MAX_LEN];
	char *section = NULL;
	int lineno = 0, found = 0, rc = 0;
	const char *p = text;

	memset(out, 0, sizeof(*out));
	if (!profile || !*profile)
		profile = "DEFAULT";
	out->name = xstrdup(profile);
	while (rc == 0 && *p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		lineno++;
		if (n >= sizeof(line)) {
			mds_diag(diag, diagsz, "line %d: longer than %d bytes",
				 lineno, LINE_MAX_LEN - 1);
			rc = MDS_E_PARSE;
			break;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		found |= parse_line(line, lineno, profile, &section, out, &rc,
				    diag, diagsz);
		p += nl ? n + 1 : n;
	}
	free(section);
	if (rc == 0 && !found) {
		mds_diag(diag, diagsz, "profile [%s] not found", profile);
		rc = MDS_E_NOTFOUND;
	}
	return rc;
}

/* "~/x" becomes "$HOME/x". */
static void expand_home(char **path)
{
	const char *home = getenv("HOME");
	char *p;

	if (!*path || strncmp(*path, "~/", 2) != 0 || !home)
		return;
	p = xasprintf("%s/%s", home, *path + 2);
	free(*path);
	*path = p;
}

int oci_config_load(const char *path, const char *profile,
		    struct oci_profile *out, char *diag, size_t diagsz)
{
	char *def = NULL, *text = NULL, sub[256];
	int rc;

	memset(out, 0, sizeof(*out));
	if (!path)
		path = def = oci_config_default_path();
	rc = file_read_all(path, CONFIG_MAX, &text, NULL, sub, sizeof(sub));
	if (rc != 0) {
		mds_diag(diag, diagsz, "OCI config: %s", sub);
		goto out;
	}
	rc = oci_config_parse(text, profile, out, sub, sizeof(sub));
	if (rc != 0) {
		mds_diag(diag, diagsz, "OCI config %s: %s", path, sub);
		goto out;
	}
	expand_home(&out->key_file);
out:
	free(text);
	free(def);
	return rc;
}

/* Returns the first required key the profile lacks, or NULL. */
static const char *missing_key(const struct oci_profile *p)
{
	if (!p->user || !*p->user)
		return "user";
	if (!p->fingerprint || !*p->fingerprint)
		return "fingerprint";
	if (!p->key_file || !*p->key_file)
		return "key_file";
	if (!p->tenancy || !*p->tenancy)
		return "tenancy";
	if (!p->region || !*p->region)
		return "region";
	return NULL;
}

/* Reads and decrypts the profile's key and checks its fingerprint. */
static int signer_of_profile(const struct oci_profile *p,
			     struct oci_signer **out, char *diag,
			     size_t diagsz)
{
	char *pem = NULL, *key_id = NULL, fp[48], sub[256];
	int rc;

	rc = file_read_all(p->key_file, KEY_FILE_MAX, &pem, NULL, sub,
			   sizeof(sub));
	if (rc != 0) {
		mds_diag(diag, diagsz, "profile [%s] key_file: %s", p->name,
			 sub);
		goto out;
	}
	key_id = xasprintf("%s/%s/%s", p->tenancy, p->user, p->fingerprint);
	rc = oci_signer_from_pem(key_id, pem, p->pass_phrase, out, sub,
				 sizeof(sub));
	if (rc != 0) {
		mds_diag(diag, diagsz, "profile [%s] key_file %s: %s", p->name,
			 p->key_file, sub);
		goto out;
	}
	rc = oci_signer_fingerprint(*out, fp);
	if (rc == 0 && strcasecmp(fp, p->fingerprint) != 0) {
		mds_diag(diag, diagsz,
			 "profile [%s]: key_file %s has fingerprint %s, not "
			 "the configured %s",
			 p->name, p->key_file, fp, p->fingerprint);
		rc = MDS_E_INVAL;
	}
out:
	if (rc != 0) {
		oci_signer_free(*out);
		*out = NULL;
	}
	free(key_id);
	if (pem) {
		memset(pem, 0, strlen(pem));
		free(pem);
	}
	return rc;
}

int oci_signer_from_config(const char *path, const char *profile,
			   struct oci_signer **out, char *diag, size_t diagsz)
{
	struct oci_profile p;
	const char *missing;
	int rc;

	*out = NULL;
	rc = oci_config_load(path, profile, &p, diag, diagsz);
	if (rc != 0)
		goto out;
	missing = missing_key(&p);
	if (missing) {
		mds_diag(diag, diagsz, "OCI config profile [%s] lacks %s",
			 p.name, missing);
		rc = MDS_E_INVAL;
		goto out;
	}
	rc = signer_of_profile(&p, out, diag, diagsz);
	if (rc != 0)
		goto out;
	oci_signer_set_region(*out, p.region);
	oci_signer_set_tenancy(*out, p.tenancy);
out:
	oci_profile_free(&p);
	return rc;
}
