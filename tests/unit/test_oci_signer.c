/*
 * test_oci_signer.c - OCI request signatures and API key configuration.
 *
 * The two signatures are OCI's published test values ("Request Signatures",
 * Test Values: the draft-cavage test key, a fixed date, a GET and a POST);
 * both must come out byte for byte. The configuration tests write real
 * config and key files into a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oci/config.h"
#include "oci/signer.h"
#include "util/err.h"

#include "oci_test_key.h"


/* The same key as PKCS#8, encrypted with AES-256-CBC, passphrase "secret". */
static const char test_key_encrypted[] =
	"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
	"MIIC3TBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQINCW+ZPm69eUCAggA\n"
	"MAwGCCqGSIb3DQIJBQAwHQYJYIZIAWUDBAEqBBCLJAliGayYXjWtq1SyWPxXBIIC\n"
	"gGFw9xbEf/+EnlufqmUv6MxcTrqXrQ6A6eS4KFE1FFCath1mWhdVDt01QSwArrcN\n"
	"9PSrKyxKpH3RV89YZnqZukesE9uZYQdbx+PMsIOSSZjzyx4pmlV8bPAf2Y50D+j3\n"
	"6+oxNiI2fULeF3Ifuh71efBrQzWvjp/PIUQhi4YnFfGaVEGXEKwl0ei9EBVG8mI1\n"
	"9qOrgN8dR5sKEmxtdIPzEEogJmTQNXw63BFjgGuvsH7egpagDazaHYc7qIlRSCqW\n"
	"bwH+0u50V45flocaOBkYD36D8GGXqWgRdVjF1/ZBw4R8v7Mxz9yrPXC9fCyYgrOb\n"
	"eNXtryANcfeV+peHegDGu80ZWYpkT+c6uesH1WGNikAFBEa3JN9cW09bV+DYXPCr\n"
	"jREY0Ni8xNzm+N+zh3bmEVXl7jcAC7uJ3A/2kUT78jYtOWWaDXk4TOKjPai1Bsxr\n"
	"Mpnqv66xr1PoaDhwMaRrdiYICBME2Zw8dSYqfoChL4dqkPLn5H8rMQ2s+HpeDSi8\n"
	"vw9NOJMkOmc7Zcl5I4pxeaC0Nzz2IOM/p3aZz0C0U3Z0QNWSSIHKujVlDQTrOD0x\n"
	"fXfuPZQ6LD0XMis9IHMssn/4WMiHjQHptamPWDLgW2nwaJ4Mlqa/5nhLlJneRPW6\n"
	"8tzqQof/+Rz1jLmdd4kpiZsmqYTGrg1vmuLRkhcbuIg9cGArN4qzk+wo0rj9Kppg\n"
	"hi0A05nbco9JZ41D0kaSHk5QAONymeROGNDdCvdx0japt4N9a1bU2JWBwdhhgTu/\n"
	"41awFqST8TtxqADmm+BNgy+A3rujt0aIkg795zPG00X/1sGiaL8naG7naTa9GrME\n"
	"c5i4ukPFcFqnN/x4i0qQvyo=\n"
	"-----END ENCRYPTED PRIVATE KEY-----\n";

#define TENANCY                                                               \
	"ocid1.tenancy.oc1..aaaaaaaaba3pv6wkcr4jqae5f15p2b2m2yt2j6rx32uzr4h25v" \
	"qstifsfdsq"
#define USER                                                                  \
	"ocid1.user.oc1..aaaaaaaat5nvwcna5j6aqzjcaty5eqbb6qt2jvpkanghtgdaqedqw" \
	"3rynjq"
/* The fingerprint OCI's example prints in its keyId... */
#define VECTOR_FP "20:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34"
/* ...and the one the test key really has (MD5 of its public key DER). */
#define REAL_FP "73:61:a2:21:67:e0:df:be:7e:4b:93:1e:15:98:a5:b7"
#define KEY_ID TENANCY "/" USER "/" VECTOR_FP
#define DATE "Thu, 05 Jan 2014 21:31:40 GMT"
#define HOST "iaas.us-phoenix-1.oraclecloud.com"

static const char get_path[] = "/20160918/instances?availabilityDomain=Pjwf%3A%20PHX-AD-1&compartmentId=ocid1.compartment.oc1..aaaaaaaam3we6vgnherjq5q2idnccdflvjsnog7mlr6rtdb25gilchfeyjxa&displayName=TeamXInstances&volumeId=ocid1.volume.oc1.phx.abyhqljrgvttnlx73nmrwfaux7kcvzfs3s66izvxf2h4lgvyndsdsnoiwr5q";

static const char post_body[] =
	"{\n"
	"    \"compartmentId\": \"ocid1.compartment.oc1..aaaaaaaam3we6vgnherjq5q2idnccdflvjsnog7mlr6rtdb25gilchfeyjxa\",\n"
	"    \"instanceId\": \"ocid1.instance.oc1.phx.abuw4ljrlsfiqw6vzzxb43vyypt4pkodawglp3wqxjqofakrwvou52gb6s5a\",\n"
	"    \"volumeId\": \"ocid1.volume.oc1.phx.abyhqljrgvttnlx73nmrwfaux7kcvzfs3s66izvxf2h4lgvyndsdsnoiwr5q\"\n"
	"}";

static const char get_signing_string[] =
	"date: " DATE "\n"
	"(request-target): get /20160918/instances?availabilityDomain=Pjwf%3A%20PHX-AD-1&compartmentId=ocid1.compartment.oc1..aaaaaaaam3we6vgnherjq5q2idnccdflvjsnog7mlr6rtdb25gilchfeyjxa&displayName=TeamXInstances&volumeId=ocid1.volume.oc1.phx.abyhqljrgvttnlx73nmrwfaux7kcvzfs3s66izvxf2h4lgvyndsdsnoiwr5q\n"
	"host: " HOST;

static const char post_signing_string[] =
	"date: " DATE "\n"
	"(request-target): post /20160918/volumeAttachments\n"
	"host: " HOST "\n"
	"content-length: 316\n"
	"content-type: application/json\n"
	"x-content-sha256: V9Z20UJTvkvpJ50flBzKE32+6m2zJjweHpDMX/U4Uy0=";

static const char get_authorization[] =
	"Signature version=\"1\",headers=\"date (request-target) host\","
	"keyId=\"" KEY_ID "\",algorithm=\"rsa-sha256\",signature=\""
	"GBas7grhyrhSKHP6AVIj/h5/Vp8bd/peM79H9Wv8kjoaCivujVXlpbKLjMPeDUhxkFIWtTtLBj3sUzaFj34XE6YZAHc9r2DmE4pMwOAy/kiITcZxa1oHPOeRheC0jP2dqbTll8fmTZVwKZOKHYPtrLJIJQHJjNvxFWeHQjMaR7M=\"";

static const char post_authorization[] =
	"Signature version=\"1\",headers=\"date (request-target) host "
	"content-length content-type x-content-sha256\","
	"keyId=\"" KEY_ID "\",algorithm=\"rsa-sha256\",signature=\""
	"Mje8vIDPlwIHmD/cTDwRxE7HaAvBg16JnVcsuqaNRim23fFPgQfLoOOxae6WqKb1uPjYEl0qIdazWaBy/Ml8DRhqlocMwoSXv0fbukP8J5N80LCmzT/FFBvIvTB91XuXI3hYfP9Zt1l7S6ieVadHUfqBedWH0itrtPJBgKmrWso=\"";

static struct oci_signer *test_signer(void)
{
	struct oci_signer *s = NULL;
	char diag[256] = "";

	assert_int_equal(oci_signer_from_pem(KEY_ID, test_key, NULL, &s, diag,
					     sizeof(diag)),
			 0);
	return s;
}

static void test_vector_get(void **state)
{
	struct oci_signer *s = test_signer();
	struct oci_sign_input in = {
		.method = "GET", .path = get_path, .host = HOST, .date = DATE,
	};
	struct oci_sign_output out;
	char *str = NULL, diag[256] = "";

	(void)state;
	assert_int_equal(oci_sign_string(&in, &str, &out), 0);
	assert_string_equal(str, get_signing_string);
	free(str);
	assert_int_equal(oci_sign(s, &in, &out, diag, sizeof(diag)), 0);
	assert_string_equal(out.authorization, get_authorization);
	assert_string_equal(out.x_content_sha256, "");
	assert_string_equal(out.content_length, "");
	oci_sign_output_free(&out);
	oci_signer_free(s);
}

static void test_vector_post(void **state)
{
	struct oci_signer *s = test_signer();
	struct oci_sign_input in = {
		.method = "POST", .path = "/20160918/volumeAttachments",
		.host = HOST, .date = DATE, .content_type = "application/json",
		.body = post_body, .body_len = strlen(post_body),
		.with_body = 1,
	};
	struct oci_sign_output out;
	char *str = NULL, diag[256] = "";

	(void)state;
	assert_int_equal(strlen(post_body), 316);
	assert_int_equal(oci_sign_string(&in, &str, &out), 0);
	assert_string_equal(str, post_signing_string);
	free(str);
	assert_int_equal(oci_sign(s, &in, &out, diag, sizeof(diag)), 0);
	assert_string_equal(out.authorization, post_authorization);
	assert_string_equal(out.x_content_sha256,
			    "V9Z20UJTvkvpJ50flBzKE32+6m2zJjweHpDMX/U4Uy0=");
	assert_string_equal(out.content_length, "316");
	oci_sign_output_free(&out);
	oci_signer_free(s);
}

/* An empty PUT still signs the body headers, with the empty body's hash. */
static void test_empty_body(void **state)
{
	struct oci_sign_input in = {
		.method = "PUT", .path = "/x", .host = "h", .date = DATE,
		.with_body = oci_sign_method_has_body("PUT"),
	};
	struct oci_sign_output out;
	char *str = NULL;

	(void)state;
	assert_true(in.with_body);
	assert_false(oci_sign_method_has_body("GET"));
	assert_int_equal(oci_sign_string(&in, &str, &out), 0);
	assert_string_equal(out.x_content_sha256,
			    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	assert_string_equal(out.content_length, "0");
	assert_non_null(strstr(str, "(request-target): put /x\n"));
	free(str);
	in.path = "no-slash";
	assert_int_equal(oci_sign_string(&in, &str, &out), MDS_E_INVAL);
	assert_null(str);
}

static void test_fingerprint(void **state)
{
	struct oci_signer *s = test_signer();
	char fp[48];

	(void)state;
	assert_int_equal(oci_signer_fingerprint(s, fp), 0);
	assert_string_equal(fp, REAL_FP);
	assert_string_equal(oci_signer_kind(s), "api_key");
	assert_string_equal(oci_signer_key_id(s), KEY_ID);
	oci_signer_free(s);
}

static void test_bad_keys(void **state)
{
	struct oci_signer *s = NULL;
	char diag[256] = "";

	(void)state;
	assert_int_equal(oci_signer_from_pem("k", test_key_encrypted, NULL, &s,
					     diag, sizeof(diag)),
			 MDS_E_UNAUTH);
	assert_null(s);
	assert_non_null(strstr(diag, "pass_phrase"));
	assert_int_equal(oci_signer_from_pem("k", test_key_encrypted, "wrong",
					     &s, diag, sizeof(diag)),
			 MDS_E_UNAUTH);
	assert_non_null(strstr(diag, "passphrase does not decrypt"));
	assert_int_equal(oci_signer_from_pem("k", "not a key", NULL, &s, diag,
					     sizeof(diag)),
			 MDS_E_PARSE);
	assert_int_equal(oci_signer_from_pem("k", test_key_encrypted, "secret",
					     &s, diag, sizeof(diag)),
			 0);
	oci_signer_free(s);
}

static void test_config_parse(void **state)
{
	static const char text[] =
		"# comment\n"
		"[DEFAULT]\n"
		"user=ocid1.user.oc1..default\n"
		"region = us-ashburn-1\n"
		"\n"
		"[OTHER]\n"
		"; another comment\n"
		"user=ocid1.user.oc1..other\n"
		"tenancy=ocid1.tenancy.oc1..t\n";
	struct oci_profile p;
	char diag[256] = "";

	(void)state;
	assert_int_equal(oci_config_parse(text, "OTHER", &p, diag,
					  sizeof(diag)),
			 0);
	assert_string_equal(p.user, "ocid1.user.oc1..other");
	assert_string_equal(p.region, "us-ashburn-1");
	assert_string_equal(p.tenancy, "ocid1.tenancy.oc1..t");
	assert_null(p.key_file);
	oci_profile_free(&p);

	assert_int_equal(oci_config_parse(text, NULL, &p, diag, sizeof(diag)),
			 0);
	assert_string_equal(p.user, "ocid1.user.oc1..default");
	oci_profile_free(&p);

	assert_int_equal(oci_config_parse(text, "NOPE", &p, diag,
					  sizeof(diag)),
			 MDS_E_NOTFOUND);
	assert_string_equal(diag, "profile [NOPE] not found");
	oci_profile_free(&p);

	assert_int_equal(oci_config_parse("[A]\njunk line\n", "A", &p, diag,
					  sizeof(diag)),
			 MDS_E_PARSE);
	assert_non_null(strstr(diag, "line 2"));
	oci_profile_free(&p);
}

/* A temporary directory with a config file and key files. */
struct cfgdir {
	char dir[64];
	char config[128];
	char key[128];
	char enc[128];
};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int cfg_setup(void **state)
{
	struct cfgdir *d = calloc(1, sizeof(*d));

	snprintf(d->dir, sizeof(d->dir), "/tmp/mds-oci-XXXXXX");
	if (!mkdtemp(d->dir))
		return -1;
	snprintf(d->config, sizeof(d->config), "%s/config", d->dir);
	snprintf(d->key, sizeof(d->key), "%s/key.pem", d->dir);
	snprintf(d->enc, sizeof(d->enc), "%s/enc.pem", d->dir);
	write_file(d->key, test_key);
	write_file(d->enc, test_key_encrypted);
	*state = d;
	return 0;
}

static int cfg_teardown(void **state)
{
	struct cfgdir *d = *state;

	unlink(d->config);
	unlink(d->key);
	unlink(d->enc);
	rmdir(d->dir);
	free(d);
	return 0;
}

/* Writes a config with profiles GOOD, BADFP, NOKEY, ENC, ENCPASS, NOREGION,
 * MISSINGKEYFILE. */
static void write_config(const struct cfgdir *d)
{
	char text[4096];

	snprintf(text, sizeof(text),
		 "[GOOD]\nuser=" USER "\nfingerprint=" REAL_FP
		 "\nkey_file=%s\ntenancy=" TENANCY "\nregion=us-phoenix-1\n"
		 "[BADFP]\nuser=" USER "\nfingerprint=" VECTOR_FP
		 "\nkey_file=%s\ntenancy=" TENANCY "\nregion=us-phoenix-1\n"
		 "[ENC]\nuser=" USER "\nfingerprint=" REAL_FP
		 "\nkey_file=%s\ntenancy=" TENANCY "\nregion=us-phoenix-1\n"
		 "[ENCPASS]\nuser=" USER "\nfingerprint=" REAL_FP
		 "\nkey_file=%s\ntenancy=" TENANCY "\nregion=us-phoenix-1\n"
		 "pass_phrase=secret\n"
		 "[NOREGION]\nuser=" USER "\nfingerprint=" REAL_FP
		 "\nkey_file=%s\ntenancy=" TENANCY "\n"
		 "[MISSINGKEYFILE]\nuser=" USER "\nfingerprint=" REAL_FP
		 "\nkey_file=%s/absent.pem\ntenancy=" TENANCY
		 "\nregion=us-phoenix-1\n",
		 d->key, d->key, d->enc, d->enc, d->key, d->dir);
	write_file(d->config, text);
}

static int load(const struct cfgdir *d, const char *profile, char *diag,
		struct oci_signer **s)
{
	*s = NULL;
	return oci_signer_from_config(d->config, profile, s, diag, 256);
}

static void test_config_signer(void **state)
{
	struct cfgdir *d = *state;
	struct oci_signer *s;
	char diag[256] = "";

	write_config(d);
	assert_int_equal(load(d, "GOOD", diag, &s), 0);
	assert_string_equal(oci_signer_key_id(s),
			    TENANCY "/" USER "/" REAL_FP);
	assert_string_equal(oci_signer_region(s), "us-phoenix-1");
	assert_string_equal(oci_signer_tenancy(s), TENANCY);
	oci_signer_free(s);

	assert_int_equal(load(d, "ENCPASS", diag, &s), 0);
	oci_signer_free(s);
}

static void test_config_bad_input(void **state)
{
	struct cfgdir *d = *state;
	struct oci_signer *s;
	char diag[256] = "", absent[160];

	snprintf(absent, sizeof(absent), "%s/nothing", d->dir);
	assert_int_equal(oci_signer_from_config(absent, "GOOD", &s, diag,
						sizeof(diag)),
			 MDS_E_NOTFOUND);
	assert_non_null(strstr(diag, absent));
	assert_null(s);

	/* A directory is not a readable config. */
	assert_int_equal(oci_signer_from_config(d->dir, "GOOD", &s, diag,
						sizeof(diag)) != 0,
			 1);
	assert_null(s);

	write_config(d);
	assert_int_equal(load(d, "NOPE", diag, &s), MDS_E_NOTFOUND);
	assert_non_null(strstr(diag, "profile [NOPE] not found"));

	assert_int_equal(load(d, "BADFP", diag, &s), MDS_E_INVAL);
	assert_non_null(strstr(diag, "has fingerprint " REAL_FP));
	assert_non_null(strstr(diag, "not the configured " VECTOR_FP));
	assert_null(s);

	assert_int_equal(load(d, "ENC", diag, &s), MDS_E_UNAUTH);
	assert_non_null(strstr(diag, "set pass_phrase"));

	assert_int_equal(load(d, "NOREGION", diag, &s), MDS_E_INVAL);
	assert_non_null(strstr(diag, "lacks region"));

	assert_int_equal(load(d, "MISSINGKEYFILE", diag, &s), MDS_E_NOTFOUND);
	assert_non_null(strstr(diag, "absent.pem"));
	assert_null(s);
}

static void test_config_default_path(void **state)
{
	char *p;

	(void)state;
	setenv("OCI_CONFIG_FILE", "/some/where", 1);
	p = oci_config_default_path();
	assert_string_equal(p, "/some/where");
	free(p);
	unsetenv("OCI_CONFIG_FILE");
	setenv("HOME", "/home/u", 1);
	p = oci_config_default_path();
	assert_string_equal(p, "/home/u/.oci/config");
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector_get),
		cmocka_unit_test(test_vector_post),
		cmocka_unit_test(test_empty_body),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_bad_keys),
		cmocka_unit_test(test_config_parse),
		cmocka_unit_test_setup_teardown(test_config_signer, cfg_setup,
						cfg_teardown),
		cmocka_unit_test_setup_teardown(test_config_bad_input,
						cfg_setup, cfg_teardown),
		cmocka_unit_test(test_config_default_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
