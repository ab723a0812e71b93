/* test_config.c - the configuration file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"
#include "util/err.h"

static char path[64];

static void write_file(const char *text)
{
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/mdscale-config-%d.json",
		 (int)getpid());
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void defaults_are_sane(void **state)
{
	struct config c;

	(void)state;
	config_defaults(&c);
	assert_string_equal(c.listen_host, "127.0.0.1");
	assert_int_equal(c.listen_port, 7070);
	assert_int_equal(c.gateway_port, 8080);
	assert_non_null(shape_find(&c.shapes, c.default_shape));
}

static void full_file_is_read(void **state)
{
	struct config c;
	char diag[256];

	(void)state;
	config_defaults(&c);
	write_file("{\"listen\": \"127.0.0.2:9000\", \"gateway\": \":9001\","
		   " \"shapes\": [{\"name\": \"a\", \"cpus\": 0.1, "
		   "\"memoryInMBs\": 64}, {\"name\": \"b\", \"cpus\": 1.5, "
		   "\"memoryInMBs\": 128}], \"defaultShape\": \"b\","
		   " \"maxInstancesPerDeployment\": 4,"
		   " \"readyTimeoutSeconds\": 5}");
	assert_int_equal(config_load(path, &c, diag, sizeof(diag)), 0);
	assert_string_equal(c.listen_host, "127.0.0.2");
	assert_int_equal(c.listen_port, 9000);
	assert_string_equal(c.gateway_host, "127.0.0.1");
	assert_int_equal(c.gateway_port, 9001);
	assert_int_equal(c.shapes.n, 2);
	assert_int_equal(c.shapes.v[0].mcpu, 100);
	assert_int_equal(c.shapes.v[1].mem_bytes, 128u << 20);
	assert_string_equal(c.default_shape, "b");
	assert_int_equal(c.max_instances, 4);
	assert_int_equal(c.ready_timeout_s, 5);
	unlink(path);
}

static void errors_name_the_problem(void **state)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
		{ "{\"lisen\": \"x\"}", "unknown field 'lisen'" },
		{ "{\"listen\": \"nope\"}", "listen must be" },
		{ "{\"shapes\": []}", "shapes must be an array of length from 1" },
		{ "{\"shapes\": [{\"name\": \"a\", \"cpus\": 0, "
		  "\"memoryInMBs\": 64}]}", "shapes[0].cpus must be a number" },
		{ "{\"shapes\": [{\"name\": \"a\", \"cpus\": 1}]}",
		  "shapes[0].memoryInMBs is required" },
		{ "{\"accessLog\": 1}", "accessLog must be true or false" },
		{ "{\"shapes\": [{\"name\": \"a\", \"cpus\": 1, "
		  "\"memoryInMBs\": 64}, {\"name\": \"b\", \"cpus\": 0.5, "
		  "\"memoryInMBs\": 32}]}", "smallest first" },
		{ "{\"defaultShape\": \"huge\"}", "not in shapes" },
		{ "{\"maxInstancesPerDeployment\": 0}", "from 1 to 256" },
		{ "{\"listen\": ", "1:" },
		{ "[1]", "must be a JSON object" },
	};
	struct config c;
	char diag[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		config_defaults(&c);
		write_file(cases[i].text);
		assert_true(config_load(path, &c, diag, sizeof(diag)) < 0);
		if (strstr(diag, cases[i].want) == NULL)
			fail_msg("case %zu: '%s' does not say '%s'", i, diag,
				 cases[i].want);
	}
	unlink(path);
	assert_int_equal(config_load("/nonexistent.json", &c, diag,
				     sizeof(diag)), MDS_E_IO);
}

static void oci_section(void **state)
{
	struct config c;
	char diag[256];
	static const struct {
		const char *json;
		const char *want;
	} bad[] = {
		{ "{\"oci\": {\"auth\": \"password\"}}", "oci.auth" },
		{ "{\"oci\": {\"flex\": {\"shape\": \"VM.Standard.E4.Flex\","
		  " \"ocpusMin\": 4, \"ocpusMax\": 2, \"memoryInGBsMin\": 16,"
		  " \"memoryInGBsMax\": 64}}}",
		  "oci.flex" },
		{ "{\"oci\": {\"flex\": {\"shape\": \"VM.Standard2.1\","
		  " \"ocpusMin\": 1, \"ocpusMax\": 2, \"memoryInGBsMin\": 16,"
		  " \"memoryInGBsMax\": 64}}}",
		  ".Flex" },
		{ "{\"oci\": {\"shapes\": [{\"name\": \"VM.Standard2.1\","
		  " \"ocpus\": 1, \"memoryInGBs\": 15}], \"flex\": {\"shape\":"
		  " \"VM.Standard.E4.Flex\", \"ocpusMin\": 1, \"ocpusMax\": 2,"
		  " \"memoryInGBsMin\": 16, \"memoryInGBsMax\": 64}}}",
		  "both set" },
		{ "{\"oci\": {\"shapes\": [{\"name\": \"VM.Standard2.2\","
		  " \"ocpus\": 2, \"memoryInGBs\": 30}, {\"name\":"
		  " \"VM.Standard2.1\", \"ocpus\": 1, \"memoryInGBs\": 15}]}}",
		  "oci.shapes[1]" },
		{ "{\"oci\": {\"region\": \"x\"}}", "unknown field 'oci.region'" },
	};

	(void)state;
	config_defaults(&c);
	assert_false(c.oci.enabled);
	write_file("{\"oci\": {\"profile\": \"PROD\", \"endpoint\":"
		   " \"https://127.0.0.1:9\", \"flex\": {\"shape\":"
		   " \"VM.Standard.E4.Flex\", \"ocpusMin\": 1, \"ocpusMax\": 4,"
		   " \"memoryInGBsMin\": 16, \"memoryInGBsMax\": 64,"
		   " \"steps\": 3}, \"metricsIntervalSeconds\": 30}}");
	assert_int_equal(config_load(path, &c, diag, sizeof(diag)), 0);
	assert_true(c.oci.enabled);
	assert_int_equal(c.oci.auth, CONFIG_OCI_API_KEY);
	assert_string_equal(c.oci.profile, "PROD");
	assert_string_equal(c.oci.flex.shape, "VM.Standard.E4.Flex");
	assert_int_equal(c.oci.flex.steps, 3);
	assert_int_equal(c.oci.metrics_s, 30);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		config_defaults(&c);
		write_file(bad[i].json);
		assert_true(config_load(path, &c, diag, sizeof(diag)) < 0);
		if (!strstr(diag, bad[i].want))
			fail_msg("case %zu: '%s' lacks '%s'", i, diag,
				 bad[i].want);
		assert_false(c.oci.enabled);
	}
	unlink(path);
}

/* Who instances run as: each deployment's uid from instanceUids (the
 * default), runAsUser when the file names it alone (an explicit named
 * user), or when instanceUids is "". */
static void instance_uids_and_their_precedence(void **state)
{
	static const struct {
		const char *text;
		uint32_t lo, hi;
		int uids_on;
	} cases[] = {
		{ "{}", 60000, 60999, 1 },
		{ "{\"instanceUids\": \"70000-70009\"}", 70000, 70009, 1 },
		{ "{\"runAsUser\": \"svc\"}", 60000, 60999, 0 },
		{ "{\"runAsUser\": \"svc\", \"instanceUids\": \"5-6\"}", 5,
		  6, 1 },
		{ "{\"instanceUids\": \"\"}", 0, 0, 0 },
	};
	struct config c;
	char diag[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		config_defaults(&c);
		write_file(cases[i].text);
		assert_int_equal(config_load(path, &c, diag, sizeof(diag)), 0);
		assert_int_equal(c.instance_uids.lo, cases[i].lo);
		assert_int_equal(c.instance_uids.hi, cases[i].hi);
		assert_int_equal(config_uids_on(&c), cases[i].uids_on);
	}
	config_defaults(&c);
	write_file("{\"instanceUids\": \"60999-60000\"}");
	assert_int_equal(config_load(path, &c, diag, sizeof(diag)),
			 MDS_E_INVAL);
	assert_non_null(strstr(diag, "instanceUids: '60999-60000'"));
	write_file("{\"instanceUids\": 60000}");
	assert_int_equal(config_load(path, &c, diag, sizeof(diag)),
			 MDS_E_INVAL);
	assert_non_null(strstr(diag, "instanceUids must be a string"));
	/* Nothing changed. */
	assert_int_equal(c.instance_uids.lo, 60000);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_are_sane),
		cmocka_unit_test(full_file_is_read),
		cmocka_unit_test(errors_name_the_problem),
		cmocka_unit_test(oci_section),
		cmocka_unit_test(instance_uids_and_their_precedence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
