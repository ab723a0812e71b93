/* test_alarm.c - the alarm state machine on a virtual clock, and messages. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alarm.h"
#include "core/mql.h"
#include "core/tsdb.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/xalloc.h"

#define NS "oci_datascience_modeldeploy"
#define MIN 60000LL

struct fixture {
	struct tsdb *db;
	struct alarm_def def;
	struct alarm_state *st;
	struct alarm_events ev;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	assert_int_equal(tsdb_create(NULL, &f->db, NULL, 0), 0);
	alarm_def_init(&f->def);
	f->def.id = xstrdup("ocid1.alarm.oc1..high");
	f->def.display_name = xstrdup("model_deployment_high_cpu");
	f->def.namespace = xstrdup(NS);
	f->def.severity = ALARM_INFO;
	assert_int_equal(alarm_def_set_query(&f->def,
		"CpuUtilization[1m]{resourceId = \"md1\"}.max() > 80", NULL, 0),
		0);
	f->st = alarm_state_new();
	alarm_events_init(&f->ev);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	alarm_events_free(&f->ev);
	alarm_state_free(f->st);
	alarm_def_clear(&f->def);
	tsdb_free(f->db);
	free(f);
	return 0;
}

/* Feeds a sample every 10 s in [from, to) to instance iid of md1. */
static void feed(struct fixture *f, const char *iid, int64_t from, int64_t to,
		 double v)
{
	struct tsdb_dim d[2] = { { "resourceId", "md1" }, { "instanceId", iid } };

	for (int64_t t = from; t < to; t += 10000)
		assert_int_equal(tsdb_append(f->db, NS, "CpuUtilization", d, 2,
					     t, v, NULL, 0), 0);
}

/* Evaluates at now; returns the type of the one event, or -1 if none. */
static int tick(struct fixture *f, int64_t now)
{
	alarm_events_reset(&f->ev);
	assert_int_equal(alarm_eval(f->st, &f->def, f->db, now, &f->ev), 0);
	assert_true(f->ev.n <= 1);
	return f->ev.n ? (int)f->ev.v[0].type : -1;
}

static const char *ev_dim(const struct alarm_event *e, size_t i,
			  const char *key)
{
	assert_true(i < e->nstreams);
	for (size_t k = 0; k < e->streams[i].ndims; k++)
		if (strcmp(e->streams[i].dims[k].key, key) == 0)
			return e->streams[i].dims[k].value;
	return NULL;
}

static void test_pending_then_firing(void **state)
{
	struct fixture *f = *state;
	const struct alarm_event *e;

	f->def.pending_ms = MIN;
	feed(f, "i1", 0, 10 * MIN, 90);
	assert_int_equal(tick(f, 1 * MIN), -1);
	assert_int_equal(alarm_state_status(f->st), ALARM_OK);
	assert_int_equal(alarm_state_nstreams(f->st), 1);
	assert_int_equal(alarm_state_stream(f->st, 0)->status, ALARM_PENDING);
	assert_int_equal(alarm_state_stream(f->st, 0)->since_ms, MIN);
	assert_int_equal(tick(f, 1 * MIN + 30000), -1);
	assert_int_equal(tick(f, 2 * MIN), ALARM_OK_TO_FIRING);
	e = &f->ev.v[0];
	assert_int_equal(e->t_ms, 2 * MIN);
	assert_int_equal(e->status, ALARM_FIRING);
	assert_int_equal(e->total_firing, 1);
	assert_int_equal(e->nstreams, 1);
	assert_string_equal(ev_dim(e, 0, "resourceId"), "md1");
	assert_string_equal(ev_dim(e, 0, "instanceId"), "i1");
	assert_true(e->streams[0].value == 90);
	assert_int_equal(alarm_state_status(f->st), ALARM_FIRING);
	assert_int_equal(alarm_state_firing(f->st), 1);
	/* Firing without a repeat interval: quiet. */
	assert_int_equal(tick(f, 3 * MIN), -1);
	assert_int_equal(tick(f, 9 * MIN), -1);
}

static void test_pending_interrupted(void **state)
{
	struct fixture *f = *state;

	f->def.pending_ms = 2 * MIN;
	feed(f, "i1", 0, 2 * MIN, 90);
	feed(f, "i1", 2 * MIN, 3 * MIN, 50);
	feed(f, "i1", 3 * MIN, 8 * MIN, 95);
	assert_int_equal(tick(f, 1 * MIN), -1);
	assert_int_equal(tick(f, 2 * MIN), -1);
	/* The condition breaks: the pending stream is forgotten. */
	assert_int_equal(tick(f, 3 * MIN), -1);
	assert_int_equal(alarm_state_nstreams(f->st), 0);
	/* It holds again from 4 min: it must hold 2 more minutes. */
	assert_int_equal(tick(f, 4 * MIN), -1);
	assert_int_equal(tick(f, 5 * MIN), -1);
	assert_int_equal(tick(f, 6 * MIN), ALARM_OK_TO_FIRING);
}

static void test_repeat_and_recovery(void **state)
{
	struct fixture *f = *state;
	char key[ALARM_DEDUPE_KEY_LEN + 1];
	int repeats = 0;

	f->def.repeat_ms = 5 * MIN;
	feed(f, "i1", 0, 20 * MIN, 90);
	feed(f, "i1", 20 * MIN, 25 * MIN, 10);
	assert_int_equal(tick(f, 1 * MIN), ALARM_OK_TO_FIRING);
	memcpy(key, f->ev.v[0].dedupe_key, sizeof(key));
	for (int64_t m = 2; m <= 20; m++) {
		int type = tick(f, m * MIN);

		if (m == 6 || m == 11 || m == 16) {
			assert_int_equal(type, ALARM_REPEAT);
			assert_string_equal(f->ev.v[0].dedupe_key, key);
			assert_int_equal(f->ev.v[0].total_firing, 1);
			assert_int_equal(f->ev.v[0].nstreams, 1);
			repeats++;
		} else {
			assert_int_equal(type, -1);
		}
	}
	assert_int_equal(repeats, 3);
	/* From 20 min on the values are low: back to OK at 21 min. */
	assert_int_equal(tick(f, 21 * MIN), ALARM_FIRING_TO_OK);
	assert_int_equal(f->ev.v[0].status, ALARM_OK);
	assert_int_equal(f->ev.v[0].total_firing, 0);
	assert_int_equal(f->ev.v[0].nstreams, 1); /* the stream that cleared */
	assert_string_equal(f->ev.v[0].dedupe_key, key);
	assert_int_equal(alarm_state_status(f->st), ALARM_OK);
	assert_int_equal(alarm_state_nstreams(f->st), 0);
	assert_int_equal(tick(f, 22 * MIN), -1);
	/* A new episode gets a new dedupe key. */
	feed(f, "i1", 25 * MIN, 27 * MIN, 99);
	assert_int_equal(tick(f, 26 * MIN), ALARM_OK_TO_FIRING);
	assert_string_not_equal(f->ev.v[0].dedupe_key, key);
}

static void test_gap_in_data(void **state)
{
	struct fixture *f = *state;

	feed(f, "i1", 0, 3 * MIN, 90);
	assert_int_equal(tick(f, 2 * MIN), ALARM_OK_TO_FIRING);
	assert_int_equal(tick(f, 3 * MIN), -1);
	/* No sample in [3 min, 4 min): the stream stops meeting it. */
	assert_int_equal(tick(f, 4 * MIN), ALARM_FIRING_TO_OK);
	assert_int_equal(f->ev.v[0].nstreams, 1);
	feed(f, "i1", 5 * MIN, 6 * MIN, 90);
	assert_int_equal(tick(f, 6 * MIN), ALARM_OK_TO_FIRING);
}

static void test_absent(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(alarm_def_set_query(&f->def,
		"CpuUtilization[1m]{resourceId = \"md1\"}.absent()", NULL, 0),
		0);
	alarm_state_reset(f->st);
	/* Never seen: no stream, nothing to say. */
	assert_int_equal(tick(f, 1 * MIN), -1);
	feed(f, "i1", 1 * MIN, 3 * MIN, 50);
	assert_int_equal(tick(f, 3 * MIN), -1);
	/* The metric stops: absent from 4 min. */
	assert_int_equal(tick(f, 4 * MIN), ALARM_OK_TO_FIRING);
	assert_string_equal(ev_dim(&f->ev.v[0], 0, "instanceId"), "i1");
	assert_true(f->ev.v[0].streams[0].value == 1);
	assert_int_equal(tick(f, 5 * MIN), -1);
	feed(f, "i1", 5 * MIN, 6 * MIN, 50);
	assert_int_equal(tick(f, 6 * MIN), ALARM_FIRING_TO_OK);
	/* Silent long enough (past the 15 min detection period): gone. */
	assert_int_equal(tick(f, 8 * MIN), ALARM_OK_TO_FIRING);
	assert_int_equal(tick(f, 20 * MIN), -1);
	assert_int_equal(tick(f, 21 * MIN), ALARM_FIRING_TO_OK);
}

static void test_multiple_streams(void **state)
{
	struct fixture *f = *state;
	const struct alarm_event *e;

	f->def.repeat_ms = 2 * MIN;
	feed(f, "i1", 0, 6 * MIN, 90);
	feed(f, "i2", 0, 2 * MIN, 10);
	feed(f, "i2", 2 * MIN, 8 * MIN, 85);
	feed(f, "i1", 6 * MIN, 10 * MIN, 5);
	feed(f, "i2", 8 * MIN, 10 * MIN, 5);
	assert_int_equal(tick(f, 1 * MIN), ALARM_OK_TO_FIRING);
	assert_int_equal(f->ev.v[0].total_firing, 1);
	/* i2 starts firing too: no alarm-level event, two streams. */
	assert_int_equal(tick(f, 2 * MIN), -1);
	assert_int_equal(tick(f, 3 * MIN), ALARM_REPEAT);
	e = &f->ev.v[0];
	assert_int_equal(e->total_firing, 2);
	assert_int_equal(e->nstreams, 2);
	assert_string_equal(ev_dim(e, 0, "instanceId"), "i1");
	assert_string_equal(ev_dim(e, 1, "instanceId"), "i2");
	assert_int_equal(alarm_state_firing(f->st), 2);
	/* i1 clears at 7 min; i2 still fires. */
	assert_int_equal(tick(f, 7 * MIN), ALARM_REPEAT);
	assert_int_equal(f->ev.v[0].total_firing, 1);
	assert_string_equal(ev_dim(&f->ev.v[0], 0, "instanceId"), "i2");
	assert_int_equal(tick(f, 9 * MIN), ALARM_FIRING_TO_OK);
	assert_int_equal(f->ev.v[0].nstreams, 1);
	assert_string_equal(ev_dim(&f->ev.v[0], 0, "instanceId"), "i2");
}

static void test_disabled(void **state)
{
	struct fixture *f = *state;

	feed(f, "i1", 0, 5 * MIN, 90);
	assert_int_equal(tick(f, 1 * MIN), ALARM_OK_TO_FIRING);
	f->def.is_enabled = 0;
	assert_int_equal(tick(f, 2 * MIN), -1);
	assert_int_equal(alarm_state_status(f->st), ALARM_OK);
	assert_int_equal(alarm_state_nstreams(f->st), 0);
	assert_int_equal(tick(f, 3 * MIN), -1);
	f->def.is_enabled = 1;
	assert_int_equal(tick(f, 4 * MIN), ALARM_OK_TO_FIRING);
	/* No query: refused. */
	mql_free(f->def.query);
	f->def.query = NULL;
	assert_int_equal(alarm_eval(f->st, &f->def, f->db, 5 * MIN, &f->ev),
			 MDS_E_INVAL);
}

static void test_grouped_stream(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(alarm_def_set_query(&f->def,
		"CpuUtilization[1m]{resourceId = \"md1\"}.groupBy(resourceId)"
		".mean() > 80", NULL, 0), 0);
	feed(f, "i1", 0, 2 * MIN, 100);
	feed(f, "i2", 0, 2 * MIN, 70);
	assert_int_equal(tick(f, 1 * MIN), ALARM_OK_TO_FIRING);
	assert_int_equal(f->ev.v[0].nstreams, 1);
	assert_int_equal(f->ev.v[0].streams[0].ndims, 1);
	assert_string_equal(ev_dim(&f->ev.v[0], 0, "resourceId"), "md1");
	assert_true(f->ev.v[0].streams[0].value == 85);
}

static void test_dedupe_key_shape(void **state)
{
	struct fixture *f = *state;
	const char *k;

	feed(f, "i1", 0, 2 * MIN, 90);
	assert_int_equal(tick(f, 1 * MIN), ALARM_OK_TO_FIRING);
	k = f->ev.v[0].dedupe_key;
	assert_int_equal(strlen(k), 36);
	assert_true(k[8] == '-' && k[13] == '-' && k[18] == '-' &&
		    k[23] == '-');
	assert_true(k[14] == '8');
	assert_non_null(strchr("89ab", k[19]));
	assert_string_equal(alarm_state_dedupe_key(f->st), k);
}

/* The message, compared with the recipe's sample field by field. */
static void test_message_json(void **state)
{
	struct fixture *f = *state;
	struct buf b;
	char want[2048];

	f->def.pending_ms = 0;
	feed(f, "instance:1234567890ABCDEF", 1657320240000LL,
	     1657320300000LL, 90);
	assert_int_equal(tick(f, 1657320300000LL), ALARM_OK_TO_FIRING);
	buf_init(&b, 1 << 16);
	assert_int_equal(alarm_message_json(&f->def, &f->ev.v[0], NULL, &b),
			 0);
	snprintf(want, sizeof(want),
		 "{\"dedupeKey\":\"%s\","
		 "\"title\":\"model_deployment_high_cpu\","
		 "\"body\":null,"
		 "\"type\":\"OK_TO_FIRING\","
		 "\"severity\":\"INFO\","
		 "\"timestampEpochMillis\":1657320300000,"
		 "\"timestamp\":\"2022-07-08T22:45:00Z\","
		 "\"alarmMetaData\":[{"
		 "\"id\":\"ocid1.alarm.oc1..high\","
		 "\"status\":\"FIRING\","
		 "\"severity\":\"INFO\","
		 "\"namespace\":\"oci_datascience_modeldeploy\","
		 "\"query\":\"CpuUtilization[1m]{resourceId = \\\"md1\\\"}"
		 ".max() > 80\","
		 "\"totalMetricsFiring\":1,"
		 "\"dimensions\":[{\"instanceId\":"
		 "\"instance:1234567890ABCDEF\",\"resourceId\":\"md1\"}],"
		 "\"alarmUrl\":\"\"}],"
		 "\"version\":1.3}",
		 f->ev.v[0].dedupe_key);
	assert_string_equal(buf_str(&b), want);

	/* Pretty, with a body that needs escaping and a URL. */
	buf_reset(&b);
	f->def.message_format = ALARM_FORMAT_PRETTY_JSON;
	f->def.body = xstrdup("High \"cpu\"\n\tscale up \x01 \xff ok \xc3\xa9");
	assert_int_equal(alarm_message_json(&f->def, &f->ev.v[0],
					    "https://x/a", &b), 0);
	assert_non_null(strstr(buf_str(&b), "{\n  \"dedupeKey\": \""));
	assert_non_null(strstr(buf_str(&b),
			       "\"body\": \"High \\\"cpu\\\"\\n\\tscale up "
			       "\\u0001 \xef\xbf\xbd ok \xc3\xa9\""));
	assert_non_null(strstr(buf_str(&b), "\n      \"dimensions\": [\n"));
	assert_non_null(strstr(buf_str(&b), "\"alarmUrl\": \"https://x/a\""));
	assert_non_null(strstr(buf_str(&b), "\n  \"version\": 1.3\n}"));
	buf_free(&b);

	/* A buffer too small: MDS_E_LIMIT. */
	buf_init(&b, 100);
	assert_int_equal(alarm_message_json(&f->def, &f->ev.v[0], NULL, &b),
			 MDS_E_LIMIT);
	buf_free(&b);
}

/* Evaluates at now; returns the number of events. */
static size_t ticks(struct fixture *f, int64_t now)
{
	alarm_events_reset(&f->ev);
	assert_int_equal(alarm_eval(f->st, &f->def, f->db, now, &f->ev), 0);
	return f->ev.n;
}

/* Version 1.5, hand-written: summary, metricValues, notificationType. */
static void test_message_json_1_5(void **state)
{
	struct fixture *f = *state;
	struct buf b;
	char want[4096];

	f->def.pending_ms = 60000;
	f->def.version = ALARM_VERSION_1_5;
	f->def.notification_title = xstrdup("High CPU on md1");
	f->def.body = xstrdup("scale up");
	feed(f, "i1", 1657320180000LL, 1657320300000LL, 90);
	feed(f, "i1", 1657320300000LL, 1657320310000LL, 97.5);
	assert_int_equal(tick(f, 1657320250000LL), -1); /* PENDING */
	assert_int_equal(tick(f, 1657320310000LL), ALARM_OK_TO_FIRING);
	buf_init(&b, 1 << 16);
	assert_int_equal(alarm_message_json(&f->def, &f->ev.v[0], "u", &b),
			 0);
	snprintf(want, sizeof(want),
		 "{\"dedupeKey\":\"%s\","
		 "\"title\":\"High CPU on md1\","
		 "\"body\":\"scale up\","
		 "\"type\":\"OK_TO_FIRING\","
		 "\"severity\":\"INFO\","
		 "\"timestampEpochMillis\":1657320310000,"
		 "\"timestamp\":\"2022-07-08T22:45:10Z\","
		 "\"alarmMetaData\":[{"
		 "\"id\":\"ocid1.alarm.oc1..high\","
		 "\"status\":\"FIRING\","
		 "\"severity\":\"INFO\","
		 "\"namespace\":\"oci_datascience_modeldeploy\","
		 "\"query\":\"CpuUtilization[1m]{resourceId = \\\"md1\\\"}"
		 ".max() > 80\","
		 "\"totalMetricsFiring\":1,"
		 "\"dimensions\":[{\"instanceId\":\"i1\","
		 "\"resourceId\":\"md1\"}],"
		 "\"alarmUrl\":\"u\","
		 "\"alarmSummary\":\"Alarm \\\"High CPU on md1\\\" is in a "
		 "\\\"FIRING\\\" state; because 1 metrics meet the trigger "
		 "rule: \\\"CpuUtilization[1m]{resourceId = \\\"md1\\\"}"
		 ".max() > 80\\\", with a trigger delay of PT1M\","
		 "\"metricValues\":[{\"CpuUtilization[1m]{resourceId = "
		 "\\\"md1\\\"}.max()\":\"97.5\"}]}],"
		 "\"notificationType\":\"Group notifications across metric "
		 "streams\","
		 "\"version\":1.5}",
		 f->ev.v[0].dedupe_key);
	assert_string_equal(buf_str(&b), want);
	buf_free(&b);
}

/* 1.3 clears a stream without data at once; 1.5 holds it, then RESET. */
static void test_reset_after_absence(void **state)
{
	struct fixture *f = *state;
	struct buf b;

	f->def.pending_ms = 0;
	f->def.version = ALARM_VERSION_1_5;
	f->def.reset_ms = 3 * MIN;
	f->def.repeat_ms = 2 * MIN;
	feed(f, "i1", 0, 2 * MIN, 90);
	feed(f, "i2", 0, 6 * MIN, 95);
	assert_int_equal(tick(f, 1 * MIN), ALARM_OK_TO_FIRING);
	assert_int_equal(f->ev.v[0].nstreams, 2);
	/* i1 has no data in [2m, 3m) and after: still FIRING, held. */
	assert_int_equal(tick(f, 3 * MIN), ALARM_REPEAT);
	assert_int_equal(f->ev.v[0].nstreams, 2);
	assert_int_equal(alarm_state_firing(f->st), 2);
	/* Its last data was at the evaluation at 1m: it resets at 4m. */
	assert_int_equal(tick(f, 4 * MIN - ALARM_CLOCK_SLACK_MS - 1), -1);
	assert_int_equal(tick(f, 4 * MIN - ALARM_CLOCK_SLACK_MS), ALARM_RESET);
	assert_int_equal(f->ev.v[0].status, ALARM_FIRING);
	assert_int_equal(f->ev.v[0].total_firing, 1);
	assert_int_equal(f->ev.v[0].nstreams, 1);
	assert_string_equal(ev_dim(&f->ev.v[0], 0, "instanceId"), "i1");
	assert_false(f->ev.v[0].streams[0].has_value);
	buf_init(&b, 1 << 16);
	assert_int_equal(alarm_message_json(&f->def, &f->ev.v[0], NULL, &b),
			 0);
	assert_non_null(strstr(buf_str(&b), "\"type\":\"RESET\""));
	assert_non_null(strstr(buf_str(&b), "\"metricValues\":[]"));
	buf_free(&b);
	assert_int_equal(alarm_state_firing(f->st), 1);
	/* i2 repeats alone, then stops: the last stream resets and the
	 * alarm is OK. */
	assert_int_equal(tick(f, 6 * MIN), ALARM_REPEAT);
	assert_int_equal(f->ev.v[0].nstreams, 1);
	assert_int_equal(tick(f, 7 * MIN), -1);
	assert_int_equal(tick(f, 9 * MIN), ALARM_RESET);
	assert_int_equal(f->ev.v[0].status, ALARM_OK);
	assert_int_equal(alarm_state_status(f->st), ALARM_OK);

	/* 1.3: the same absence clears at once, FIRING_TO_OK. */
	alarm_state_reset(f->st);
	f->def.version = ALARM_VERSION_1_3;
	feed(f, "i1", 20 * MIN, 21 * MIN, 90);
	assert_int_equal(tick(f, 21 * MIN), ALARM_OK_TO_FIRING);
	assert_int_equal(tick(f, 23 * MIN), ALARM_FIRING_TO_OK);
}

/* Per dimension: each stream fires, repeats and clears on its own. */
static void test_per_dimension(void **state)
{
	struct fixture *f = *state;
	char k1[ALARM_DEDUPE_KEY_LEN + 1];

	f->def.pending_ms = 0;
	f->def.per_dimension = 1;
	f->def.repeat_ms = 5 * MIN;
	feed(f, "i1", 0, 10 * MIN, 90);
	feed(f, "i2", 2 * MIN, 4 * MIN, 95);
	feed(f, "i2", 4 * MIN, 10 * MIN, 10);
	assert_int_equal(ticks(f, 1 * MIN), 1);
	assert_int_equal(f->ev.v[0].type, ALARM_OK_TO_FIRING);
	assert_true(f->ev.v[0].per_stream);
	assert_string_equal(ev_dim(&f->ev.v[0], 0, "instanceId"), "i1");
	snprintf(k1, sizeof(k1), "%s", f->ev.v[0].dedupe_key);
	/* i2 fires while i1 is firing: its own OK_TO_FIRING, own key. */
	assert_int_equal(ticks(f, 3 * MIN), 1);
	assert_int_equal(f->ev.v[0].type, ALARM_OK_TO_FIRING);
	assert_string_equal(ev_dim(&f->ev.v[0], 0, "instanceId"), "i2");
	assert_int_equal(f->ev.v[0].total_firing, 2);
	assert_string_not_equal(f->ev.v[0].dedupe_key, k1);
	/* i2 clears with data below the threshold; i1 is untouched. */
	assert_int_equal(ticks(f, 5 * MIN), 1);
	assert_int_equal(f->ev.v[0].type, ALARM_FIRING_TO_OK);
	assert_string_equal(ev_dim(&f->ev.v[0], 0, "instanceId"), "i2");
	assert_true(f->ev.v[0].streams[0].value == 10);
	assert_int_equal(f->ev.v[0].status, ALARM_FIRING);
	/* i1 repeats 5 minutes after its own first message. */
	assert_int_equal(ticks(f, 6 * MIN - ALARM_CLOCK_SLACK_MS - 1), 0);
	assert_int_equal(ticks(f, 6 * MIN - ALARM_CLOCK_SLACK_MS), 1);
	assert_int_equal(f->ev.v[0].type, ALARM_REPEAT);
	assert_string_equal(f->ev.v[0].dedupe_key, k1);
	/* Grouped, the same data gives one OK_TO_FIRING only. */
	alarm_state_reset(f->st);
	f->def.per_dimension = 0;
	assert_int_equal(ticks(f, 1 * MIN), 1);
	assert_int_equal(ticks(f, 3 * MIN), 0);
}

/*
 * A tracked stream is found again at each evaluation by the hash its
 * dimensions carry, among streams of series created after it (in any
 * order): it stays the one stream tracked, keeps its dedupe key (the same
 * as before the stream carried its hash) and clears when its value does.
 */
static void test_tracked_among_new_series(void **state)
{
	struct fixture *f = *state;
	char key[ALARM_DEDUPE_KEY_LEN + 1], iid[16];

	f->def.pending_ms = 0;
	f->def.per_dimension = 1;
	/* i0, created first, has data from 1 min: i1's stream is the first
	 * of the first result and the second of the next ones. */
	feed(f, "i0", MIN, 6 * MIN, 20);
	feed(f, "i1", 0, 4 * MIN, 90);
	feed(f, "i1", 4 * MIN, 6 * MIN, 10);
	assert_int_equal(ticks(f, 1 * MIN), 1);
	assert_int_equal(f->ev.v[0].type, ALARM_OK_TO_FIRING);
	snprintf(key, sizeof(key), "%s", f->ev.v[0].dedupe_key);
	assert_string_equal(key, "729ecbbd-4664-8b13-a9f3-0ef8b796593d");
	for (int i = 40; i >= 2; i--) {
		struct tsdb_dim d[2] = { { "instanceId", iid },
					 { "resourceId", "md1" } };

		snprintf(iid, sizeof(iid), "i%d", i);
		for (int64_t t = MIN; t < 6 * MIN; t += 10000)
			assert_int_equal(tsdb_append(f->db, NS,
						     "CpuUtilization", d, 2, t,
						     i % 7 ? 20 : 50, NULL, 0),
					 0);
	}
	for (int64_t now = 2 * MIN; now <= 4 * MIN; now += MIN) {
		assert_int_equal(ticks(f, now), 0);
		assert_int_equal(alarm_state_nstreams(f->st), 1);
		assert_int_equal(alarm_state_stream(f->st, 0)->status,
				 ALARM_FIRING);
		assert_int_equal(alarm_state_stream(f->st, 0)->since_ms, MIN);
	}
	assert_int_equal(ticks(f, 5 * MIN), 1);
	assert_int_equal(f->ev.v[0].type, ALARM_FIRING_TO_OK);
	assert_string_equal(ev_dim(&f->ev.v[0], 0, "instanceId"), "i1");
	assert_string_equal(f->ev.v[0].dedupe_key, key);
	assert_int_equal(alarm_state_nstreams(f->st), 0);
	assert_int_equal(alarm_state_status(f->st), ALARM_OK);
}

/* Evaluates st in parts of max series until the pass ends; returns the
 * number of calls. */
static int eval_parts(struct alarm_state *st, const struct alarm_def *def,
		      const struct tsdb *db, int64_t now, size_t max,
		      struct alarm_events *ev)
{
	int calls = 0, more;

	alarm_events_reset(ev);
	do {
		assert_int_equal(alarm_eval_part(st, def, db, now, max, ev,
						 &more), 0);
		calls++;
		if (more)
			assert_int_equal(ev->n, 0); /* events at the end */
	} while (more);
	return calls;
}

/* The same events, in the same order, for the same streams. */
static void assert_same_events(const struct alarm_events *a,
			       const struct alarm_events *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t k = 0; k < a->n; k++) {
		assert_int_equal(a->v[k].type, b->v[k].type);
		assert_int_equal(a->v[k].nstreams, b->v[k].nstreams);
		assert_string_equal(a->v[k].dedupe_key, b->v[k].dedupe_key);
		assert_string_equal(ev_dim(&a->v[k], 0, "instanceId"),
				    ev_dim(&b->v[k], 0, "instanceId"));
	}
}

/* A pass in parts of a few series decides as one evaluation does; a
 * series added during a pass is taken by a later part; a pass left
 * unfinished is started again, and loses no event; a query over groups is
 * evaluated at once. */
static void test_parts(void **state)
{
	struct fixture *f = *state;
	struct alarm_state *st = alarm_state_new();
	struct alarm_events ev;
	struct alarm_def grouped;
	char iid[16];
	int more;
	size_t parts;

	alarm_events_init(&ev);
	f->def.pending_ms = MIN;
	f->def.per_dimension = 1;
	for (int i = 0; i < 20; i++) {
		snprintf(iid, sizeof(iid), "i%d", i);
		feed(f, iid, 0, i ? 11 * MIN : 8 * MIN, i % 3 ? 20 : 90);
	}
	feed(f, "i0", 8 * MIN, 11 * MIN, 10);
	for (int64_t now = MIN; now <= 10 * MIN; now += MIN) {
		if (now == 2 * MIN) {
			/* One part of a pass, then a pass at another time:
			 * i0, in that part, is due to fire at both; its
			 * OK_TO_FIRING comes with the pass that ends. */
			alarm_events_reset(&ev);
			assert_int_equal(alarm_eval_part(st, &f->def, f->db,
				now - 1, 3, &ev, &more), 0);
			assert_true(more);
		}
		if (now == 4 * MIN) {
			/* i20 comes while the pass is under way. */
			alarm_events_reset(&ev);
			assert_int_equal(alarm_eval_part(st, &f->def, f->db,
				now, 3, &ev, &more), 0);
			assert_true(more);
			feed(f, "i20", 0, 11 * MIN, 90);
			assert_int_equal(eval_parts(st, &f->def, f->db, now, 3,
						    &ev), 7);
		} else {
			/* 20 series in 7 parts; 21 in 7 full ones and one
			 * that finds the end. */
			assert_int_equal(eval_parts(st, &f->def, f->db, now, 3,
						    &ev), now < 4 * MIN ? 7 : 8);
		}
		alarm_events_reset(&f->ev);
		assert_int_equal(alarm_eval(f->st, &f->def, f->db, now,
					    &f->ev), 0);
		assert_same_events(&f->ev, &ev);
		assert_int_equal(alarm_state_nstreams(st),
				 alarm_state_nstreams(f->st));
		assert_int_equal(alarm_state_firing(st),
				 alarm_state_firing(f->st));
		if (now == 2 * MIN) /* i0, i3, ... i18 */
			assert_int_equal(f->ev.n, 7);
		if (now == 4 * MIN) /* i20 tracked, PENDING */
			assert_int_equal(alarm_state_nstreams(st), 8);
		if (now == 5 * MIN) {
			assert_int_equal(ev.n, 1);
			assert_string_equal(ev_dim(&ev.v[0], 0, "instanceId"),
					    "i20");
		}
	}
	assert_int_equal(alarm_state_firing(st), 7); /* i0 cleared */

	alarm_def_init(&grouped);
	grouped.id = xstrdup("ocid1.alarm.oc1..grouped");
	grouped.namespace = xstrdup(NS);
	assert_int_equal(alarm_def_set_query(&grouped,
		"CpuUtilization[1m]{resourceId = \"md1\"}.groupBy(instanceId)"
		".max() > 80", NULL, 0), 0);
	alarm_state_reset(st);
	alarm_events_reset(&ev);
	/* A grouped query goes in parts of as much work too; its streams
	 * come with the last. */
	parts = 0;
	do {
		assert_int_equal(alarm_eval_part(st, &grouped, f->db, 7 * MIN,
						 3, &ev, &more), 0);
		if (more)
			assert_int_equal(alarm_state_firing(st), 0);
		parts++;
	} while (more);
	assert_true(parts > 3);
	assert_int_equal(alarm_state_firing(st), 8);
	alarm_def_clear(&grouped);
	alarm_events_free(&ev);
	alarm_state_free(st);
}

/* Two alarms evaluated one after the other into one shared result: each
 * tracks, fires and clears its own stream. */
static void test_shared_result(void **state)
{
	struct fixture *f = *state;
	struct tsdb_dim d[2] = { { "resourceId", "md2" }, { "instanceId", "j" } };
	struct alarm_def def2;
	struct alarm_state *st2 = alarm_state_new();
	struct mql_result scratch;

	mql_result_init(&scratch);
	alarm_def_init(&def2);
	def2.id = xstrdup("ocid1.alarm.oc1..md2");
	def2.namespace = xstrdup(NS);
	assert_int_equal(alarm_def_set_query(&def2,
		"CpuUtilization[1m]{resourceId = \"md2\"}.max() > 80", NULL, 0),
		0);
	def2.pending_ms = f->def.pending_ms = 0;
	alarm_state_share_result(f->st, &scratch);
	alarm_state_share_result(st2, &scratch);
	feed(f, "i1", 0, 2 * MIN, 90);
	feed(f, "i1", 2 * MIN, 4 * MIN, 10);
	for (int64_t t = 0; t < 4 * MIN; t += 10000)
		assert_int_equal(tsdb_append(f->db, NS, "CpuUtilization", d, 2,
					     t, t < 3 * MIN ? 95 : 5, NULL, 0),
				 0);
	for (int64_t now = MIN; now <= 4 * MIN; now += MIN) {
		enum alarm_status want1 = now <= 2 * MIN ? ALARM_FIRING
							 : ALARM_OK;
		enum alarm_status want2 = now <= 3 * MIN ? ALARM_FIRING
							 : ALARM_OK;

		tick(f, now);
		alarm_events_reset(&f->ev);
		assert_int_equal(alarm_eval(st2, &def2, f->db, now, &f->ev),
				 0);
		assert_int_equal(alarm_state_status(f->st), want1);
		assert_int_equal(alarm_state_status(st2), want2);
		assert_int_equal(alarm_state_nstreams(f->st),
				 want1 == ALARM_FIRING);
		assert_int_equal(alarm_state_nstreams(st2),
				 want2 == ALARM_FIRING);
		if (want2 == ALARM_FIRING)
			assert_string_equal(alarm_state_stream(st2, 0)
						    ->dims[1].value, "md2");
	}
	alarm_state_free(st2);
	alarm_def_clear(&def2);
	alarm_state_free(f->st);
	f->st = alarm_state_new(); /* the fixture frees its own */
	mql_result_free(&scratch);
}

static void test_suppression_and_version(void **state)
{
	struct fixture *f = *state;
	enum alarm_version v;
	char diag[128] = "";

	assert_false(alarm_def_suppressed(&f->def, 0));
	f->def.suppress_from_ms = 1000;
	f->def.suppress_until_ms = 2000;
	assert_false(alarm_def_suppressed(&f->def, 999));
	assert_true(alarm_def_suppressed(&f->def, 1000));
	assert_true(alarm_def_suppressed(&f->def, 1999));
	assert_false(alarm_def_suppressed(&f->def, 2000));
	assert_int_equal(alarm_def_validate(&f->def, diag, sizeof(diag)), 0);
	f->def.suppress_until_ms = 1000;
	assert_int_equal(alarm_def_validate(&f->def, diag, sizeof(diag)),
			 MDS_E_INVAL);
	assert_string_equal(diag, "suppression.timeSuppressUntil must be "
			    "after timeSuppressFrom");
	assert_int_equal(alarm_version_parse("1.3", &v), 0);
	assert_int_equal(v, ALARM_VERSION_1_3);
	assert_int_equal(alarm_version_parse("1.X", &v), 0);
	assert_int_equal(v, ALARM_VERSION_1_5);
	assert_int_equal(alarm_version_parse("1.4", &v), MDS_E_INVAL);
	assert_string_equal(alarm_version_name(ALARM_VERSION_1_5), "1.5");
	assert_int_equal(mql_expression_len(f->def.query),
			 strlen("CpuUtilization[1m]{resourceId = \"md1\"}"
				".max()"));
}

static void test_def(void **state)
{
	struct fixture *f = *state;
	enum alarm_severity sev;
	enum alarm_format fmt;
	char diag[128] = "";

	assert_int_equal(alarm_def_validate(&f->def, diag, sizeof(diag)), 0);
	f->def.repeat_ms = 10;
	assert_int_equal(alarm_def_validate(&f->def, diag, sizeof(diag)),
			 MDS_E_INVAL);
	assert_string_equal(diag, "repeatNotificationDuration must be from "
			    "PT1S to P30D");
	f->def.repeat_ms = 30 * 24 * 60 * MIN; /* P30D, OCI's most */
	assert_int_equal(alarm_def_validate(&f->def, diag, sizeof(diag)), 0);
	f->def.repeat_ms = 30 * 24 * 60 * MIN + 1000;
	assert_int_equal(alarm_def_validate(&f->def, diag, sizeof(diag)),
			 MDS_E_INVAL);
	f->def.repeat_ms = 0;
	f->def.pending_ms = -1;
	assert_int_equal(alarm_def_validate(&f->def, diag, sizeof(diag)),
			 MDS_E_INVAL);
	f->def.pending_ms = 0;
	free(f->def.display_name);
	f->def.display_name = NULL;
	assert_int_equal(alarm_def_validate(&f->def, diag, sizeof(diag)),
			 MDS_E_INVAL);
	assert_string_equal(diag, "displayName must be 1 to 255 bytes");
	/* A bad query leaves the old one. */
	assert_int_equal(alarm_def_set_query(&f->def, "Cpu[1m].nope()", diag,
					     sizeof(diag)), MDS_E_PARSE);
	assert_string_equal(f->def.query_text,
			    "CpuUtilization[1m]{resourceId = \"md1\"}.max() > 80");
	for (int i = 0; i < ALARM_MAX_DESTINATIONS; i++)
		assert_int_equal(alarm_def_add_destination(&f->def, "topic",
							   diag, sizeof(diag)),
				 0);
	assert_int_equal(alarm_def_add_destination(&f->def, "topic", diag,
						   sizeof(diag)), MDS_E_LIMIT);
	assert_int_equal(alarm_severity_parse("WARNING", &sev), 0);
	assert_int_equal(sev, ALARM_WARNING);
	assert_int_equal(alarm_severity_parse("warning", &sev), MDS_E_INVAL);
	assert_int_equal(alarm_format_parse("ONS_OPTIMIZED", &fmt), 0);
	assert_int_equal(fmt, ALARM_FORMAT_ONS_OPTIMIZED);
	assert_string_equal(alarm_format_name(ALARM_FORMAT_PRETTY_JSON),
			    "PRETTY_JSON");
	assert_string_equal(alarm_event_type_name(ALARM_RESET), "RESET");
	assert_string_equal(alarm_status_name(ALARM_FIRING), "FIRING");
	alarm_def_clear(NULL);
	alarm_state_free(NULL);
	alarm_events_free(NULL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_message_json_1_5),
		T(test_reset_after_absence),
		T(test_per_dimension),
		T(test_tracked_among_new_series),
		T(test_shared_result),
		T(test_parts),
		T(test_suppression_and_version),
		T(test_pending_then_firing), T(test_pending_interrupted),
		T(test_repeat_and_recovery), T(test_gap_in_data),
		T(test_absent),              T(test_multiple_streams),
		T(test_disabled),            T(test_grouped_stream),
		T(test_dedupe_key_shape),    T(test_message_json),
		T(test_def),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
