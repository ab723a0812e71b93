/*
 * fuzz_monitoring_body.c - libFuzzer harness for alarm definitions as the
 * API takes them (POST and PUT /v1/alarms: query, durations, message
 * fields, destinations all come from the client): the body (after a first
 * byte kept for the corpus's sake) parsed as the API parses every body
 * (jansson, duplicate keys refused), read through its field table
 * (alarm_json_read()), then created in a real monitoring module over an
 * SQLite store in a temporary directory, which lives for the whole run; its
 * loop never runs (no timers fire). A refusal must say why; an alarm that
 * was created is shown (alarm_json_new()) and deleted again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "api/alarm_json.h"
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
	struct alarm_json_spec spec;
	struct monitoring_alarm a;
	json_error_t jerr;
	json_t *body;
	struct fault f, g;

	if (size == 0)
		return 0;
	body = json_loadb((const char *)data + 1, size - 1,
			  JSON_REJECT_DUPLICATES, &jerr);
	if (body == NULL)
		return 0;
	memset(&spec, 0, sizeof(spec));
	memset(&f, 0, sizeof(f));
	if (alarm_json_read(body, &spec, &f) != 0) {
		check_refusal(&f);
	} else if (monitoring_alarm_create(m, &spec.spec, &a, &f) != 0) {
		check_refusal(&f);
	} else {
		json_t *shown = alarm_json_new(&a);

		if (shown == NULL || a.id == NULL)
			abort();
		json_decref(shown);
		if (monitoring_alarm_delete(m, a.id, &g) != 0)
			abort();
	}
	alarm_json_spec_free(&spec);
	json_decref(body);
	return 0;
}
