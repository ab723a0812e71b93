/*
 * fuzz_store_rows.c - libFuzzer harness for the store's rows as the
 * modules read them at start: a damaged or hand-edited mdscale.db must not
 * crash the daemon, leak or reach undefined behaviour. Each line of the
 * input is one row, "KIND ID JSON" (the document's text as stored; any
 * bytes up to the line's end), KIND being one of
 *
 *   api_token      tokens_open()           (api/api_tokens.c)
 *   function       functions_open()        (notify/functions.c)
 *   topic, subscription, delivery, deadletter
 *                  notifications_open()    (notify/notifications.c)
 *   oci_receiver   oci_receiver_open()     (notify/oci_receiver.c)
 *   alarm          monitoring_open()       (monitoring/alarms.c)
 *
 * The rows are put into a fresh SQLite store in a temporary directory (in
 * /dev/shm when there is one), the modules are opened in the daemon's order
 * and closed again, and the rows are deleted. A module may refuse to open;
 * one that opens must close cleanly. Not reached: deployments and work
 * requests (deploy's recovery signals the pids its rows name) and the rows
 * read later than the start (autoscale records, alertmanager state).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "fuzz_dir.h"
#include "fuzz_rows.h"
#include "api/api_tokens.h"
#include "monitoring/monitoring.h"
#include "notify/functions.h"
#include "notify/notifications.h"
#include "notify/oci_receiver.h"
#include "store/store.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const kinds[] = {
	"api_token",  "function",     "topic", "subscription", "delivery",
	"deadletter", "oci_receiver", "alarm",
};

static uv_loop_t loop;
static struct store *st;

static void open_once(void)
{
	char path[128], diag[256];

	if (st != NULL)
		return;
	log_set_level("error");
	fuzz_dir_make();
	if (uv_loop_init(&loop) != 0)
		abort();
	snprintf(path, sizeof(path), "%s/mdscale.db", fuzz_dir);
	if (store_open(path, &st, diag, sizeof(diag)) != 0)
		abort();
}


static void closed(void *arg)
{
	*(int *)arg = 1;
}

/* Opens every module that reads rows at start, as the daemon does, and
 * closes them again. */
static void open_modules(void)
{
	struct tokens *tokens = NULL;
	struct functions *fns = NULL;
	struct notifications *notes = NULL;
	struct oci_receiver *receiver = NULL;
	struct monitoring *mon = NULL;
	struct functions_env fenv = { .loop = &loop, .store = st,
				      .data_dir = fuzz_dir };
	struct notifications_env nenv = { .loop = &loop, .store = st,
					  .data_dir = fuzz_dir };
	struct oci_receiver_env renv = { .loop = &loop, .store = st };
	struct monitoring_env menv = { .loop = &loop, .store = st,
				       .data_dir = fuzz_dir, .sample_ms = 1000,
				       .eval_ms = 1000 };
	char diag[256];
	int done = 0;

	(void)tokens_open(st, "fuzz-admin-token", &tokens, diag, sizeof(diag));
	if (functions_open(&fenv, &fns, diag, sizeof(diag)) == 0) {
		nenv.functions = fns;
		if (notifications_open(&nenv, &notes, diag, sizeof(diag)) ==
		    0) {
			renv.notifications = notes;
			(void)oci_receiver_open(&renv, &receiver, diag,
						sizeof(diag));
		}
	}
	(void)monitoring_open(&menv, &mon, diag, sizeof(diag));
	monitoring_close(mon);
	oci_receiver_close(receiver);
	if (notes != NULL)
		notifications_close(notes, closed, &done);
	functions_close(fns);
	tokens_free(tokens);
	while (uv_run(&loop, UV_RUN_NOWAIT) != 0 || (notes != NULL && !done))
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct row rows[ROWS_MAX];
	char *text = malloc(size + 1);
	size_t n;

	if (text == NULL)
		abort();
	open_once();
	memcpy(text, data, size);
	text[size] = '\0';
	n = rows_split(text, kinds, sizeof(kinds) / sizeof(kinds[0]), rows);
	rows_store(st, rows, n);
	open_modules();
	if (store_begin(st) != 0)
		abort();
	for (size_t i = 0; i < n; i++)
		if (store_delete(st, rows[i].kind, rows[i].id) != 0)
			abort();
	if (store_commit(st) != 0)
		abort();
	free(text);
	return 0;
}
