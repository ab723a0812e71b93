/* test_amalert.c - Alertmanager alerts as OCI alarm events, and their
 * messages (read back with jansson). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/amalert.h"
#include "util/err.h"

static const struct amalert_label labels[] = {
	{ "alertname", "model_deployment_high_cpu" },
	{ "deployment", "md-0123456789abcdef" },
	{ "severity", "Warning" },
	{ "job", "mdscale" },
};

static struct amalert alert(const char *fp, int firing, int64_t starts_ms)
{
	struct amalert a = {
		.firing = firing, .fingerprint = fp, .starts_ms = starts_ms,
		.ends_ms = firing ? -62135596800000LL : starts_ms + 60000,
		.labels = labels, .nlabels = 4,
		.summary = "CPU above 80% for 1m",
		.generator_url = "http://127.0.0.1:9090/graph?g0.expr=x",
		.expr = "max by (deployment) (x) > 0.8",
	};

	return a;
}

static void episodes_repeat_and_resolve(void **state)
{
	struct amalert_set *s = amalert_set_new();
	struct amalert a = alert("1a30ba71cca2921f", 1, 1000);
	enum alarm_event_type t;

	(void)state;
	/* First sight of a firing alert: an episode starts. */
	assert_int_equal(amalert_decide(s, &a, &t), 1);
	assert_int_equal(t, ALARM_OK_TO_FIRING);
	assert_int_equal(amalert_commit(s, &a), 0);
	/* The same alert posted again: REPEAT, as often as it comes. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(amalert_decide(s, &a, &t), 1);
		assert_int_equal(t, ALARM_REPEAT);
		assert_int_equal(amalert_commit(s, &a), 0);
	}
	assert_int_equal(amalert_set_count(s), 1);
	/* Resolved: FIRING_TO_OK once, then nothing. */
	a = alert("1a30ba71cca2921f", 0, 1000);
	assert_int_equal(amalert_decide(s, &a, &t), 1);
	assert_int_equal(t, ALARM_FIRING_TO_OK);
	assert_int_equal(amalert_commit(s, &a), 0);
	assert_int_equal(amalert_set_count(s), 0);
	assert_int_equal(amalert_decide(s, &a, &t), 0);
	/* Firing again after the end: a new episode. */
	a = alert("1a30ba71cca2921f", 1, 90000);
	assert_int_equal(amalert_decide(s, &a, &t), 1);
	assert_int_equal(t, ALARM_OK_TO_FIRING);
	assert_int_equal(amalert_commit(s, &a), 0);
	/* A missed resolve (send_resolved off): a new start is a new
	 * episode, not a REPEAT of the old one. */
	a = alert("1a30ba71cca2921f", 1, 150000);
	assert_int_equal(amalert_decide(s, &a, &t), 1);
	assert_int_equal(t, ALARM_OK_TO_FIRING);
	assert_int_equal(amalert_commit(s, &a), 0);
	a.starts_ms = 150000;
	assert_int_equal(amalert_decide(s, &a, &t), 1);
	assert_int_equal(t, ALARM_REPEAT);
	amalert_set_free(s);
}

static void set_is_sorted_bounded_and_checks_fingerprints(void **state)
{
	struct amalert_set *s = amalert_set_new();
	const char *fp;
	int64_t t;
	char key[32];

	(void)state;
	assert_int_equal(amalert_set_put(s, "bb", 2), 0);
	assert_int_equal(amalert_set_put(s, "aa", 1), 0);
	assert_int_equal(amalert_set_put(s, "cc", 3), 0);
	assert_int_equal(amalert_set_put(s, "bb", 20), 0);
	assert_int_equal(amalert_set_count(s), 3);
	assert_true(amalert_set_has(s, "bb"));
	assert_false(amalert_set_has(s, "b"));
	amalert_set_entry(s, 0, &fp, &t);
	assert_string_equal(fp, "aa");
	assert_int_equal(t, 1);
	amalert_set_entry(s, 1, &fp, &t);
	assert_string_equal(fp, "bb");
	assert_int_equal(t, 20);
	assert_int_equal(amalert_set_put(s, "", 1), MDS_E_INVAL);
	assert_int_equal(amalert_set_put(s, "a\"b", 1), MDS_E_INVAL);
	assert_int_equal(amalert_set_put(s, "0123456789012345678901234567890123456",
					 1), MDS_E_INVAL);
	assert_true(amalert_fingerprint_ok("012345678901234567890123456789012345"));
	for (int i = 3; i < AMALERT_MAX_FIRING; i++) {
		snprintf(key, sizeof(key), "k%05d", i);
		assert_int_equal(amalert_set_put(s, key, i), 0);
	}
	assert_int_equal(amalert_set_put(s, "zz", 1), MDS_E_LIMIT);
	/* A known one can still move to a new episode at the cap. */
	assert_int_equal(amalert_set_put(s, "aa", 5), 0);
	assert_int_equal(amalert_set_count(s), AMALERT_MAX_FIRING);
	amalert_set_free(s);
	amalert_set_free(NULL);
}

static json_t *message(const struct amalert *a, enum alarm_event_type t,
		       const char *resource_label)
{
	struct buf b;
	json_t *o;

	buf_init(&b, 1 << 16);
	assert_int_equal(amalert_message_json(a, t, resource_label, 777000, &b),
			 0);
	o = json_loads(buf_str(&b), 0, NULL);
	assert_non_null(o);
	buf_free(&b);
	return o;
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	assert_non_null(s);
	return s;
}

static void message_has_the_oci_format(void **state)
{
	struct amalert a = alert("1a30ba71cca2921f", 1, 1657320300000LL);
	json_t *o, *meta, *dims;
	const char *key;
	json_t *v;
	int k = 0;

	(void)state;
	o = message(&a, ALARM_OK_TO_FIRING, "deployment");
	assert_string_equal(str(o, "dedupeKey"), "1a30ba71cca2921f");
	assert_string_equal(str(o, "title"), "model_deployment_high_cpu");
	assert_string_equal(str(o, "body"), "CPU above 80% for 1m");
	assert_string_equal(str(o, "type"), "OK_TO_FIRING");
	assert_string_equal(str(o, "severity"), "WARNING");
	assert_int_equal(json_integer_value(json_object_get(
				 o, "timestampEpochMillis")),
			 1657320300000LL);
	assert_string_equal(str(o, "timestamp"), "2022-07-08T22:45:00Z");
	assert_true(json_is_number(json_object_get(o, "version")));
	meta = json_array_get(json_object_get(o, "alarmMetaData"), 0);
	assert_string_equal(str(meta, "id"),
			    "alertmanager:model_deployment_high_cpu");
	assert_string_equal(str(meta, "status"), "FIRING");
	assert_string_equal(str(meta, "namespace"), "prometheus");
	assert_string_equal(str(meta, "query"), "max by (deployment) (x) > 0.8");
	assert_string_equal(str(meta, "alarmUrl"),
			    "http://127.0.0.1:9090/graph?g0.expr=x");
	assert_int_equal(json_integer_value(json_object_get(
				 meta, "totalMetricsFiring")), 1);
	dims = json_object_get(meta, "dimensions");
	assert_int_equal(json_array_size(dims), 1);
	/* resourceId first (the autoscale function reads dimensions[0]),
	 * then the other labels, without alertname and the resource label. */
	json_object_foreach(json_array_get(dims, 0), key, v) {
		static const char *const want[][2] = {
			{ "resourceId", "md-0123456789abcdef" },
			{ "severity", "Warning" }, { "job", "mdscale" } };

		assert_true(k < 3);
		assert_string_equal(key, want[k][0]);
		assert_string_equal(json_string_value(v), want[k][1]);
		k++;
	}
	assert_int_equal(k, 3);
	json_decref(o);

	/* REPEAT: now; FIRING_TO_OK: the end. */
	o = message(&a, ALARM_REPEAT, "deployment");
	assert_string_equal(str(o, "type"), "REPEAT");
	assert_int_equal(json_integer_value(json_object_get(
				 o, "timestampEpochMillis")), 777000);
	json_decref(o);
	a = alert("1a30ba71cca2921f", 0, 1000);
	o = message(&a, ALARM_FIRING_TO_OK, "deployment");
	assert_string_equal(str(o, "type"), "FIRING_TO_OK");
	assert_int_equal(json_integer_value(json_object_get(
				 o, "timestampEpochMillis")), 61000);
	meta = json_array_get(json_object_get(o, "alarmMetaData"), 0);
	assert_string_equal(str(meta, "status"), "OK");
	assert_int_equal(json_integer_value(json_object_get(
				 meta, "totalMetricsFiring")), 0);
	json_decref(o);
	/* Another resource label; no severity label: CRITICAL. */
	a.nlabels = 2;
	o = message(&a, ALARM_FIRING_TO_OK, "alertname");
	assert_string_equal(str(o, "severity"), "CRITICAL");
	json_decref(o);
}

static void message_refuses_alerts_it_cannot_name(void **state)
{
	struct amalert a = alert("1a30ba71cca2921f", 1, 1000);
	struct buf b;

	(void)state;
	buf_init(&b, 1 << 16);
	assert_int_equal(amalert_message_json(&a, ALARM_OK_TO_FIRING, "pod",
					       0, &b),
			 MDS_E_INVAL);
	a.labels = &labels[1];
	a.nlabels = 3;
	assert_int_equal(amalert_message_json(&a, ALARM_OK_TO_FIRING,
					       "deployment", 0, &b),
			 MDS_E_INVAL);
	buf_free(&b);
	/* A cap too small for the message. */
	a = alert("1a30ba71cca2921f", 1, 1000);
	buf_init(&b, 64);
	assert_int_equal(amalert_message_json(&a, ALARM_OK_TO_FIRING,
					       "deployment", 0, &b),
			 MDS_E_LIMIT);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(episodes_repeat_and_resolve),
		cmocka_unit_test(set_is_sorted_bounded_and_checks_fingerprints),
		cmocka_unit_test(message_has_the_oci_format),
		cmocka_unit_test(message_refuses_alerts_it_cannot_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
