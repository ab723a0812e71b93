/*
 * fuzz_deploy_rows.c - libFuzzer harness for the deployments module's
 * store rows as it reads them at start: a damaged or hand-edited
 * mdscale.db must not crash the daemon, leak or reach undefined behaviour
 * when deploy_open() loads its deployments and work requests and resumes
 * them. Each line of the input is one row, "KIND ID JSON" (the document's
 * text as stored; any bytes up to the line's end), KIND being
 * "deployment" or "workrequest" (deploy/deploy_store.c).
 *
 * The rows are put into a fresh SQLite store in a temporary directory (in
 * /dev/shm when there is one), the module is opened over a backend named
 * "local" that runs nothing (so no pid a row names is ever signalled: its
 * instances are never found again, start at once and never become ready),
 * then dropped as a crash would (deploy_detach()), and the rows are deleted.
 * The module may refuse to open; one that opens must detach cleanly.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "fuzz_dir.h"
#include "fuzz_rows.h"
#include "daemon/config.h"
#include "deploy/backend.h"
#include "deploy/deploy.h"
#include "gateway/gateway.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const kinds[] = { "deployment", "workrequest" };

static uv_loop_t loop;
static struct store *st;
static struct gateway *gw;
static struct config cfg;

/* ---- a backend that runs nothing ---- */

static int idle_start(struct backend *b, struct backend_instance *in)
{
	in->backend_data = b;
	in->state = BACKEND_STARTING;
	in->alive = true;
	in->pid = 0;
	return 0;
}

static void idle_stop(struct backend *b, struct backend_instance *in,
		      uint32_t grace_ms)
{
	(void)grace_ms;
	in->backend_data = b;
	in->restart = false;
	if (in->alive)
		in->state = BACKEND_STOPPING;
}

static int idle_status(struct backend *b, const struct backend_instance *in,
		       bool *alive, bool *ready)
{
	(void)b;
	*alive = in->alive;
	*ready = false;
	return 0;
}

/* What a row names is never running here: gone, as after a reboot. */
static int idle_adopt(struct backend *b, struct backend_instance *in)
{
	(void)b;
	in->alive = false;
	in->pid = 0;
	if (in->state != BACKEND_NEW)
		in->state = BACKEND_STOPPED;
	return MDS_E_NOTFOUND;
}

static void idle_release(struct backend *b, struct backend_instance *in)
{
	(void)b;
	in->backend_data = NULL;
}

static const struct shape_ladder *idle_shapes(struct backend *b)
{
	(void)b;
	return &cfg.shapes;
}

static void idle_close(struct backend *b, void (*done)(void *), void *arg)
{
	(void)b;
	if (done != NULL)
		done(arg);
}

static const struct backend_ops idle_ops = {
	.name = "local",
	.caps = BACKEND_CAP_INSTANCES | BACKEND_CAP_ADOPT,
	.start = idle_start,
	.stop = idle_stop,
	.status = idle_status,
	.adopt = idle_adopt,
	.release = idle_release,
	.shapes = idle_shapes,
	.close = idle_close,
};

static struct backend idle = { .ops = &idle_ops };

static void open_once(void)
{
	char path[128], diag[256];

	if (st != NULL)
		return;
	log_set_level("error");
	fuzz_dir_make();
	if (uv_loop_init(&loop) != 0)
		abort();
	config_defaults(&cfg);
	snprintf(path, sizeof(path), "%s/mdscale.db", fuzz_dir);
	if (store_open(path, &st, diag, sizeof(diag)) != 0)
		abort();
	/* Listening, never serving: routes are set on this thread. */
	if (gateway_start(&loop, "127.0.0.1", 0, &gw, diag, sizeof(diag)) != 0)
		abort();
}


/* The ids of one kind's rows, to delete them after. */
struct ids {
	char *id[256];
	size_t n;
};

static int collect(void *arg, const char *id, const char *text)
{
	struct ids *ids = arg;

	(void)text;
	if (ids->n < sizeof(ids->id) / sizeof(ids->id[0]))
		ids->id[ids->n++] = strdup(id);
	return 0;
}

/* Deletes every row of kind (the module may write rows of its own). */
static void empty_kind(const char *kind)
{
	struct ids ids = { .n = 0 };

	if (store_each(st, kind, collect, &ids) != 0)
		abort();
	for (size_t i = 0; i < ids.n; i++) {
		if (ids.id[i] == NULL || store_delete(st, kind, ids.id[i]) != 0)
			abort();
		free(ids.id[i]);
	}
}

static void detached(void *arg)
{
	*(int *)arg = 1;
}

/* Opens the module over the rows, as the daemon's start does, then drops
 * it as a crash would. */
static void open_module(void)
{
	struct backend *const backends[] = { &idle };
	struct deploy_env env = {
		.loop = &loop, .store = st, .gateway = gw, .config = &cfg,
		.gateway_url = "http://127.0.0.1:1", .backends = backends,
		.nbackends = 1, .tick_ms = 1000,
	};
	struct deploy *d = NULL;
	char diag[256];
	int done = 0;

	if (deploy_open(&env, &d, diag, sizeof(diag)) != 0)
		return;
	deploy_detach(d, detached, &done);
	while (!done)
		uv_run(&loop, UV_RUN_ONCE);
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
	open_module();
	/* Whatever the module wrote back goes too: the next input starts
	 * from an empty store. */
	if (store_begin(st) != 0)
		abort();
	empty_kind("deployment");
	empty_kind("workrequest");
	if (store_commit(st) != 0)
		abort();
	free(text);
	return 0;
}
