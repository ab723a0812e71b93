/* test_fields.c - the declarative field tables (src/api/fields.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/fields.h"
#include "core/policy.h"
#include "util/err.h"

struct limits {
	uint32_t max_instances;
	double cpu_high;
};

struct point {
	char name[8];
	int64_t at;
};

struct spec {
	char name[9];
	char secret[33];
	int proto;
	uint32_t attempts;
	int64_t big;
	uint8_t small;
	double ratio;
	bool on;
	int64_t timeout_ms;
	struct limits limits;
	char **argv;
	struct point *points;
	size_t npoints;
	int odd;
	char url[32];
};

static const char *const protos[] = { "HTTP", "HTTPS", NULL };

/* A custom parser: an odd integer. */
static int parse_odd(const json_t *v, void *dst, const struct field *fd,
		     const char *path, struct fault *f)
{
	(void)fd;
	if (!json_is_integer(v) || json_integer_value(v) % 2 == 0)
		return fields_fault_type(f, path, "an odd integer");
	*(int *)dst = (int)json_integer_value(v);
	return 0;
}

/* A check: the URL starts with http://. */
static int check_url(const void *member, const struct field *fd,
		     const char *path, struct fault *f)
{
	(void)fd;
	if (strncmp(member, "http://", 7) != 0)
		return fault_set(f, MDS_E_INVAL, path, "%s: not http://",
				 path);
	return 0;
}

static const struct field limit_fields[] = {
	{ .name = "maxInstances", .type = FIELD_INTEGER,
	  FIELD_AT(struct limits, max_instances), .min = 1, .max = 256,
	  .doc = "most instances" },
	{ .name = "cpuHigh", .type = FIELD_NUMBER,
	  FIELD_AT(struct limits, cpu_high), .min = 0, .max = 100,
	  .doc = "percent" },
	FIELD_END
};

static const struct field point_fields[] = {
	{ .name = "name", .type = FIELD_STRING, FIELD_AT(struct point, name),
	  .required = true, .doc = "a name" },
	{ .name = "at", .type = FIELD_DURATION, FIELD_AT(struct point, at),
	  .unit_ms = 1, .min = 0, .max = 1000, .doc = "when" },
	FIELD_END
};

static const struct field point_item = {
	.name = "", .type = FIELD_OBJECT, .table = point_fields,
};

static const struct field spec_fields[] = {
	{ .name = "name", .type = FIELD_STRING, FIELD_AT(struct spec, name),
	  .required = true, .min = 1, .chars = FIELD_CHARS_NAME,
	  .chars_desc = "A-Z a-z 0-9 _ -", .doc = "the name" },
	{ .name = "secret", .type = FIELD_STRING,
	  FIELD_AT(struct spec, secret), .min = 4, .max = 32,
	  .chars = FIELD_CHARS_PRINTABLE, .doc = "a key" },
	{ .name = "protocol", .type = FIELD_ENUM, FIELD_AT(struct spec, proto),
	  .choices = protos, .doc = "how" },
	{ .name = "maxAttempts", .type = FIELD_INTEGER,
	  FIELD_AT(struct spec, attempts), .min = 1, .max = 100,
	  .doc = "attempts" },
	{ .name = "big", .type = FIELD_INTEGER, FIELD_AT(struct spec, big),
	  .min = -1e15, .max = 1e15, .doc = "a big one" },
	{ .name = "small", .type = FIELD_INTEGER, FIELD_AT(struct spec, small),
	  .min = 0, .max = 255, .doc = "a byte" },
	{ .name = "ratio", .type = FIELD_NUMBER, FIELD_AT(struct spec, ratio),
	  .doc = "any number" },
	{ .name = "on", .type = FIELD_BOOL, FIELD_AT(struct spec, on),
	  .doc = "a switch" },
	{ .name = "timeoutSeconds", .type = FIELD_DURATION,
	  FIELD_AT(struct spec, timeout_ms), .unit_ms = 1000, .min = 1,
	  .max = 600, .doc = "per attempt" },
	{ .name = "limits", .type = FIELD_OBJECT,
	  FIELD_AT(struct spec, limits), .table = limit_fields,
	  .doc = "bounds" },
	{ .name = "command", .type = FIELD_STRV, FIELD_AT(struct spec, argv),
	  .min = 1, .max = 4, .item_max = 6, .doc = "argv" },
	{ .name = "points", .type = FIELD_ARRAY,
	  FIELD_AT(struct spec, points), .elem = &point_item,
	  .elem_size = sizeof(struct point),
	  .count_offset = offsetof(struct spec, npoints), .max = 3,
	  .doc = "points" },
	{ .name = "odd", .type = FIELD_CUSTOM, FIELD_AT(struct spec, odd),
	  .parse = parse_odd, .doc = "an odd integer" },
	{ .name = "url", .type = FIELD_STRING, FIELD_AT(struct spec, url),
	  .check = check_url, .doc = "a URL" },
	FIELD_END
};

/* Parses text into s (zeroed, attempts preset to 8); returns the code. */
static int parse(const char *text, struct spec *s, uint64_t *seen,
		 struct fault *f)
{
	json_t *o = json_loads(text, JSON_ALLOW_NUL, NULL);
	int rc;

	assert_non_null(o);
	memset(s, 0, sizeof(*s));
	s->attempts = 8;
	memset(f, 0, sizeof(*f));
	rc = fields_parse(spec_fields, o, s, "", seen, f);
	json_decref(o);
	return rc;
}

/* Asserts that text is refused blaming field with message. */
static void refused(const char *text, const char *field, const char *message)
{
	struct spec s;
	struct fault f;

	assert_int_equal(parse(text, &s, NULL, &f), MDS_E_INVAL);
	assert_int_equal(f.err, MDS_E_INVAL);
	assert_string_equal(f.field, field);
	assert_string_equal(f.message, message);
	/* Nothing stays allocated on failure. */
	assert_null(s.argv);
	assert_null(s.points);
}

static void parses_every_type(void **state)
{
	struct spec s;
	struct fault f;
	uint64_t seen = 0;

	(void)state;
	assert_int_equal(
		parse("{\"name\": \"a_b-1\", \"secret\": \"k{e}y!\", "
		      "\"protocol\": \"HTTPS\", \"big\": -5000000000, "
		      "\"small\": 255, \"ratio\": 2, \"on\": true, "
		      "\"timeoutSeconds\": 30, \"limits\": {\"maxInstances\": "
		      "7, \"cpuHigh\": 70.5}, \"command\": [\"/bin/x\", \"-v\"], "
		      "\"points\": [{\"name\": \"p\", \"at\": 9}, {\"name\": "
		      "\"q\"}], \"odd\": 3, \"url\": \"http://h/\"}",
		      &s, &seen, &f),
		0);
	assert_string_equal(s.name, "a_b-1");
	assert_string_equal(s.secret, "k{e}y!");
	assert_int_equal(s.proto, 1);
	assert_int_equal(s.attempts, 8); /* absent: the default stays */
	assert_true(s.big == -5000000000LL);
	assert_int_equal(s.small, 255);
	assert_true(s.ratio == 2.0);
	assert_true(s.on);
	assert_int_equal(s.timeout_ms, 30000);
	assert_int_equal(s.limits.max_instances, 7);
	assert_true(s.limits.cpu_high == 70.5);
	assert_string_equal(s.argv[0], "/bin/x");
	assert_string_equal(s.argv[1], "-v");
	assert_null(s.argv[2]);
	assert_int_equal(s.npoints, 2);
	assert_string_equal(s.points[0].name, "p");
	assert_int_equal(s.points[0].at, 9);
	assert_string_equal(s.points[1].name, "q");
	assert_int_equal(s.odd, 3);
	assert_string_equal(s.url, "http://h/");
	assert_true(fields_given(spec_fields, seen, "protocol"));
	assert_false(fields_given(spec_fields, seen, "maxAttempts"));
	assert_false(fields_given(spec_fields, seen, "nosuch"));
	fields_free(spec_fields, &s);
	assert_null(s.argv);
	assert_null(s.points);
	assert_int_equal(s.npoints, 0);
	fields_free(spec_fields, &s); /* twice is harmless */
}

static void one_unknown_message(void **state)
{
	(void)state;
	refused("{\"name\": \"a\", \"colour\": 1}", "colour",
		"unknown field 'colour'");
	refused("{\"name\": \"a\", \"limits\": {\"minInstances\": 1}}",
		"limits.minInstances", "unknown field 'limits.minInstances'");
	refused("{\"name\": \"a\", \"points\": [{\"name\": \"p\", "
		"\"x\": 1}]}",
		"points[0].x", "unknown field 'points[0].x'");
}

static void one_missing_message(void **state)
{
	(void)state;
	refused("{}", "name", "name is required");
	refused("{\"name\": \"a\", \"points\": [{\"name\": \"p\"}, {}]}",
		"points[1].name", "points[1].name is required");
}

static void one_type_message(void **state)
{
	(void)state;
	refused("[1]", "", "the body must be an object");
	refused("{\"name\": 5}", "name",
		"name must be a string of A-Z a-z 0-9 _ -");
	refused("{\"name\": \"has space\"}", "name",
		"name must be a string of A-Z a-z 0-9 _ -");
	refused("{\"name\": \"a\", \"secret\": \"no blanks\"}", "secret",
		"secret must be a string");
	refused("{\"name\": \"a\", \"maxAttempts\": \"5\"}", "maxAttempts",
		"maxAttempts must be an integer");
	refused("{\"name\": \"a\", \"maxAttempts\": 5.0}", "maxAttempts",
		"maxAttempts must be an integer");
	refused("{\"name\": \"a\", \"ratio\": null}", "ratio",
		"ratio must be a number");
	refused("{\"name\": \"a\", \"on\": 1}", "on",
		"on must be true or false");
	refused("{\"name\": \"a\", \"protocol\": \"SMTP\"}", "protocol",
		"protocol must be one of HTTP, HTTPS");
	refused("{\"name\": \"a\", \"timeoutSeconds\": 1.5}", "timeoutSeconds",
		"timeoutSeconds must be an integer (seconds)");
	refused("{\"name\": \"a\", \"limits\": true}", "limits",
		"limits must be an object");
	refused("{\"name\": \"a\", \"limits\": {\"cpuHigh\": \"x\"}}",
		"limits.cpuHigh", "limits.cpuHigh must be a number");
	refused("{\"name\": \"a\", \"command\": \"/bin/x\"}", "command",
		"command must be an array of strings");
	refused("{\"name\": \"a\", \"command\": [\"/bin/x\", 2]}",
		"command[1]", "command[1] must be a string");
	refused("{\"name\": \"a\", \"points\": {}}", "points",
		"points must be an array");
	refused("{\"name\": \"a\", \"points\": [3]}", "points[0]",
		"points[0] must be an object");
	refused("{\"name\": \"a\", \"odd\": 2}", "odd",
		"odd must be an odd integer");
	refused("{\"name\": \"a\", \"url\": \"ftp://x\"}", "url",
		"url: not http://");
}

static void one_range_message(void **state)
{
	(void)state;
	refused("{\"name\": \"\"}", "name",
		"name must be a string of length from 1 to 8");
	refused("{\"name\": \"abcdefghi\"}", "name",
		"name must be a string of length from 1 to 8");
	refused("{\"name\": \"a\", \"secret\": \"abc\"}", "secret",
		"secret must be a string of length from 4 to 32");
	refused("{\"name\": \"a\", \"maxAttempts\": 0}", "maxAttempts",
		"maxAttempts must be an integer from 1 to 100");
	refused("{\"name\": \"a\", \"maxAttempts\": 101}", "maxAttempts",
		"maxAttempts must be an integer from 1 to 100");
	refused("{\"name\": \"a\", \"big\": 1000000000000001}", "big",
		"big must be an integer from -1e+15 to 1e+15");
	refused("{\"name\": \"a\", \"small\": 256}", "small",
		"small must be an integer from 0 to 255");
	refused("{\"name\": \"a\", \"timeoutSeconds\": 601}", "timeoutSeconds",
		"timeoutSeconds must be an integer from 1 to 600");
	refused("{\"name\": \"a\", \"limits\": {\"cpuHigh\": 100.5}}",
		"limits.cpuHigh",
		"limits.cpuHigh must be a number from 0 to 100");
	refused("{\"name\": \"a\", \"command\": []}", "command",
		"command must be an array of length from 1 to 4");
	refused("{\"name\": \"a\", \"command\": [\"/bin/x\", \"1234567\"]}",
		"command[1]",
		"command[1] must be a string of length from 0 to 6");
	refused("{\"name\": \"a\", \"points\": [{\"name\": \"p\"}, {\"name\": "
		"\"p\"}, {\"name\": \"p\"}, {\"name\": \"p\"}]}",
		"points", "points must be an array of length from 0 to 3");
	refused("{\"name\": \"a\", \"points\": [{\"name\": \"p\"}, {\"name\": "
		"\"p\", \"at\": 1001}]}",
		"points[1].at", "points[1].at must be an integer from 0 to "
		"1000");
}

static void nul_inside_a_string_is_refused(void **state)
{
	(void)state;
	refused("{\"name\": \"a\", \"url\": \"http://a\\u0000b\"}", "url",
		"url must be a string");
}

static void parses_a_single_value_and_a_nested_path(void **state)
{
	static const struct field limits_field = {
		.name = "limits", .type = FIELD_OBJECT, .table = limit_fields,
	};
	struct limits l = { 0 };
	struct fault f;
	json_t *v = json_pack("{s:i}", "maxInstances", 300);

	(void)state;
	assert_int_equal(fields_parse_value(&limits_field, v, &l, "autoscale",
					    &f),
			 MDS_E_INVAL);
	assert_string_equal(f.field, "autoscale.maxInstances");
	assert_string_equal(f.message, "autoscale.maxInstances must be an "
			    "integer from 1 to 256");
	json_decref(v);
	v = json_true();
	assert_int_equal(fields_parse(limit_fields, v, &l, "autoscale", NULL,
				      &f),
			 MDS_E_INVAL);
	assert_string_equal(f.message, "autoscale must be an object");
	json_decref(v);
}

/* fields_to_json() gives back what fields_parse() read. */
static void round_trips_to_json(void **state)
{
	const char *text =
		"{\"name\": \"a\", \"secret\": \"abcd\", \"protocol\": "
		"\"HTTPS\", \"maxAttempts\": 3, \"big\": -7, \"small\": 200, "
		"\"ratio\": 0.5, \"on\": true, \"timeoutSeconds\": 30, "
		"\"limits\": {\"maxInstances\": 7, \"cpuHigh\": 70.5}, "
		"\"command\": [\"/bin/x\"], \"points\": [{\"name\": \"p\", "
		"\"at\": 9}], \"url\": \"http://h/\"}";
	json_t *in = json_loads(text, 0, NULL), *out;
	struct spec s;
	struct fault f;

	(void)state;
	assert_int_equal(parse(text, &s, NULL, &f), 0);
	out = fields_to_json(spec_fields, &s);
	/* "odd" is a custom field: the caller's to add. */
	assert_null(json_object_get(out, "odd"));
	json_object_set_new(out, "odd", json_integer(s.odd));
	json_object_set_new(in, "odd", json_integer(0));
	if (!json_equal(in, out)) {
		char *a = json_dumps(in, JSON_SORT_KEYS);
		char *b = json_dumps(out, JSON_SORT_KEYS);

		fail_msg("in %s\nout %s", a, b);
	}
	json_decref(in);
	json_decref(out);
	fields_free(spec_fields, &s);
}

/* The autoscale policy: true, a profile, overrides, the whole checked. */
static void reads_an_autoscale_policy(void **state)
{
	static const struct {
		const char *text;
		const char *field;
		const char *message;
	} bad[] = {
		{ "{\"maxInstances\": 300}", "autoscale.maxInstances",
		  "autoscale.maxInstances must be an integer from 1 to 256" },
		{ "{\"profile\": \"fast\"}", "autoscale.profile",
		  "autoscale.profile must be one of default, recipe, "
		  "mdscale" },
		{ "{\"profile\": \"mdscale\", \"targetUtilization\": 0}",
		  "autoscale.targetUtilization",
		  "autoscale.targetUtilization must be a number from 0.05 to "
		  "1" },
		{ "{\"upWindowSeconds\": 0}", "autoscale.upWindowSeconds",
		  "autoscale.upWindowSeconds must be an integer from 1 to "
		  "60" },
		{ "{\"downWindowSeconds\": 901}",
		  "autoscale.downWindowSeconds",
		  "autoscale.downWindowSeconds must be an integer from 0 to "
		  "900" },
		{ "{\"highWindow\": \"1m]\"}", "autoscale.highWindow",
		  "autoscale.highWindow must be a short string such as 1m or "
		  "PT1M" },
		{ "{\"cooldownOutSeconds\": -1}", "autoscale.cooldownOutSeconds",
		  "autoscale.cooldownOutSeconds must be an integer from 0 to "
		  "86400" },
		{ "{\"earlyCheck\": 1}", "autoscale.earlyCheck",
		  "autoscale.earlyCheck must be true or false" },
		{ "{\"colour\": 1}", "autoscale.colour",
		  "unknown field 'autoscale.colour'" },
		{ "5", "autoscale", "autoscale must be true, or an object with "
		  "a profile and overrides" },
	};
	struct policy p, want;
	struct fault f;
	json_t *v;

	(void)state;
	v = json_true();
	assert_int_equal(api_autoscale_policy_parse(v, &p, "autoscale", &f), 0);
	policy_default(&want);
	assert_memory_equal(&p, &want, sizeof(p));
	json_decref(v);

	/* The profile applies first, whatever the order of the keys. */
	v = json_loads("{\"maxInstances\": 7, \"cooldownInSeconds\": 3, "
		       "\"profile\": \"recipe\"}", 0, NULL);
	assert_int_equal(api_autoscale_policy_parse(v, &p, "autoscale", &f), 0);
	policy_recipe(&want);
	assert_string_equal(p.profile, "recipe");
	assert_int_equal(p.max_instances, 7);
	assert_int_equal(p.cooldown_in_ms, 3000);
	assert_true(p.cpu_high == want.cpu_high);
	json_decref(v);

	/* The mdscale profile: the default's numbers, the rule's windows. */
	v = json_loads("{\"profile\": \"mdscale\", \"downWindowSeconds\": "
		       "20}", 0, NULL);
	assert_int_equal(api_autoscale_policy_parse(v, &p, "autoscale", &f), 0);
	policy_mdscale(&want);
	assert_string_equal(p.profile, "mdscale");
	assert_true(policy_uses_rule(&p));
	assert_int_equal(p.max_instances, want.max_instances);
	assert_true(p.rule_target == want.rule_target);
	assert_int_equal(p.rule_up_ms, want.rule_up_ms);
	assert_int_equal(p.rule_down_ms, 20000);
	assert_true(p.rule_early); /* the early check: on by default */
	json_decref(v);
	v = json_loads("{\"profile\": \"mdscale\", \"earlyCheck\": false}",
		       0, NULL);
	assert_int_equal(api_autoscale_policy_parse(v, &p, "autoscale", &f), 0);
	assert_false(p.rule_early);
	json_decref(v);

	/* The policy as a whole: minInstances above maxInstances. */
	v = json_loads("{\"minInstances\": 5, \"maxInstances\": 2}", 0,
		       NULL);
	assert_int_equal(api_autoscale_policy_parse(v, &p, "", &f),
			 MDS_E_INVAL);
	assert_string_equal(f.field, "autoscale");
	assert_non_null(strstr(f.message, "minInstances"));
	json_decref(v);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = json_loads(bad[i].text, JSON_DECODE_ANY, NULL);
		assert_non_null(v);
		assert_int_equal(api_autoscale_policy_parse(v, &p, "autoscale",
							    &f),
				 MDS_E_INVAL);
		assert_string_equal(f.field, bad[i].field);
		assert_string_equal(f.message, bad[i].message);
		json_decref(v);
	}
}

/* The policy's JSON is its table's: what it writes, it reads back. */
static void a_policy_round_trips(void **state)
{
	struct policy p, back;
	struct fault f;
	json_t *o;

	(void)state;
	policy_recipe(&p);
	p.max_instances = 9;
	p.cooldown_up_ms = 42000;
	o = api_autoscale_policy_json(&p);
	assert_int_equal(json_integer_value(json_object_get(o,
							    "maxInstances")),
			 9);
	assert_int_equal(json_integer_value(json_object_get(
				 o, "cooldownUpSeconds")),
			 42);
	assert_int_equal(api_autoscale_policy_parse(o, &back, "", &f), 0);
	assert_memory_equal(&p, &back, sizeof(p));
	json_decref(o);
}

static void type_descriptions(void **state)
{
	char buf[64];

	(void)state;
	assert_string_equal(fields_type_desc(&spec_fields[2], buf, sizeof(buf)),
			    "one of HTTP, HTTPS");
	assert_string_equal(fields_type_desc(&spec_fields[2], buf, 8),
			    "one of ");
	assert_non_null(fields_find(spec_fields, "limits"));
	assert_null(fields_find(spec_fields, "limit"));
	fields_path(buf, sizeof(buf), "", "a");
	assert_string_equal(buf, "a");
	fields_path(buf, sizeof(buf), "a", "b");
	assert_string_equal(buf, "a.b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_every_type),
		cmocka_unit_test(one_unknown_message),
		cmocka_unit_test(one_missing_message),
		cmocka_unit_test(one_type_message),
		cmocka_unit_test(one_range_message),
		cmocka_unit_test(nul_inside_a_string_is_refused),
		cmocka_unit_test(parses_a_single_value_and_a_nested_path),
		cmocka_unit_test(round_trips_to_json),
		cmocka_unit_test(reads_an_autoscale_policy),
		cmocka_unit_test(a_policy_round_trips),
		cmocka_unit_test(type_descriptions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
