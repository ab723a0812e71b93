/*
 * fuzz_monitoring_body.c - libFuzzer harness for the monitoring API's
 * request bodies, as the API hands them over: PostMetricData (POST
 * /v1/metrics), metric queries (POST /v1/metrics/query) and alarm
 * definitions (POST /v1/alarms, whose query, durations and message fields
 * come from the client). The first byte picks the endpoint, the rest is the
 * body, parsed as the API parses every body (jansson, duplicate keys
 * refused). One monitoring module, over an SQLite store in a temporary
 * directory, lives for the whole run; its loop never runs (no timers fire).
 * A refusal must say why; an alarm that was created is deleted again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "monitoring/monitoring.h"
#include "store/store.h"
#include "util/fault.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/mdscale-fuzz-XXXXXX";

/* Removes the store's files when the run ends. */
static void remove_dir(void)
{
	static const char *const names[] = { "mdscale.db", "mdscale.db-wal",
					     "mdscale.db-shm" };
	char path[64];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static struct monitoring *open_once(void)
{
	static struct monitoring *m;
	static uv_loop_t loop;
	static struct store *st;
	struct monitoring_env env = { 0 };
	char path[64], diag[256];

	if (m != NULL)
		return m;
	log_set_level("error");
	if (mkdtemp(dir) == NULL || uv_loop_init(&loop) != 0)
		abort();
	atexit(remove_dir);
	snprintf(path, sizeof(path), "%s/mdscale.db", dir);
	if (store_open(path, &st, diag, sizeof(diag)) != 0)
		abort();
	env.loop = &loop;
	env.store = st;
	env.data_dir = dir;
	env.sample_ms = 1000;
	env.eval_ms = 1000;
	if (monitoring_open(&env, &m, diag, sizeof(diag)) != 0)
		abort();
	return m;
}

static void check_refusal(const struct fault *f)
{
	if (f->message[0] == '\0' ||
	    memchr(f->message, '\0', sizeof(f->message)) == NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct monitoring *m = open_once();
	json_error_t jerr;
	json_t *body, *out = NULL;
	struct fault f;
	int rc;

	if (size == 0)
		return 0;
	body = json_loadb((const char *)data + 1, size - 1,
			  JSON_REJECT_DUPLICATES, &jerr);
	if (body == NULL)
		return 0;
	memset(&f, 0, sizeof(f));
	switch (data[0] % 3) {
	case 0:
		rc = monitoring_post(m, body, &out, &f);
		break;
	case 1:
		rc = monitoring_query(m, body, &out, &f);
		break;
	default:
		rc = monitoring_alarm_create(m, body, &out, &f);
		if (rc == 0) {
			const char *id = json_string_value(
				json_object_get(out, "id"));
			struct fault g;

			if (id == NULL || monitoring_alarm_delete(m, id, &g) != 0)
				abort();
		}
		break;
	}
	if (rc != 0)
		check_refusal(&f);
	json_decref(out);
	json_decref(body);
	return 0;
}
