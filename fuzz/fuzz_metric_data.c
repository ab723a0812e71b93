/*
 * fuzz_metric_data.c - libFuzzer harness for PostMetricData (POST
 * /v1/metrics): the body, parsed as the API parses every body (jansson,
 * duplicate keys refused), read item by item as the route reads it
 * (api_metric_data_read()), then posted to a real monitoring module over an
 * SQLite store in a temporary directory (monitoring_post(): namespaces,
 * names, dimensions, timestamps and values checked there). The module is
 * opened again every few thousand inputs so that the series the fuzzer
 * makes up do not pile up; its loop never runs. A refusal must say why;
 * every item is either stored or has its reason.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "fuzz_dir.h"
#include "api/api_bodies.h"
#include "monitoring/monitoring.h"
#include "store/store.h"
#include "util/fault.h"
#include "util/log.h"

#define REOPEN_EVERY 4096 /* inputs */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static struct store *st;
static struct monitoring *mon;
static unsigned long inputs;

static struct monitoring *module(void)
{
	struct monitoring_env env = { 0 };
	char path[128], diag[256];

	if (mon != NULL && ++inputs % REOPEN_EVERY != 0)
		return mon;
	if (mon == NULL) {
		log_set_level("error");
		fuzz_dir_make();
		if (uv_loop_init(&loop) != 0)
			abort();
		snprintf(path, sizeof(path), "%s/mdscale.db", fuzz_dir);
		if (store_open(path, &st, diag, sizeof(diag)) != 0)
			abort();
	} else {
		monitoring_close(mon);
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	env.loop = &loop;
	env.store = st;
	env.data_dir = fuzz_dir;
	env.sample_ms = 1000;
	env.eval_ms = 1000;
	if (monitoring_open(&env, &mon, diag, sizeof(diag)) != 0)
		abort();
	return mon;
}

static void check_refusal(const struct fault *f)
{
	if (f->message[0] == '\0' ||
	    memchr(f->message, '\0', sizeof(f->message)) == NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct monitoring *m = module();
	struct monitoring_item *items;
	json_error_t jerr;
	size_t n, nfailed, refused = 0;
	bool atomic;
	json_t *body;
	struct fault f;

	body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES,
			  &jerr);
	if (body == NULL)
		return 0;
	memset(&f, 0, sizeof(f));
	if (api_metric_data_read(body, &items, &n, &atomic, &f) != 0) {
		check_refusal(&f);
	} else if (monitoring_post(m, items, n, atomic, &nfailed, &f) != 0) {
		check_refusal(&f);
	} else {
		for (size_t i = 0; i < n; i++)
			refused += items[i].why[0] != '\0';
		if (refused != nfailed)
			abort();
	}
	api_metric_data_free(items, n);
	json_decref(body);
	return 0;
}
