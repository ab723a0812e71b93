/*
 * test_deploy.c - the deployments engine with a fake backend.
 *
 * The engine runs for real: its work requests, the planner, recovery, a
 * real SQLite store in a temporary file, a real gateway on a loopback port
 * (its routes only; no request goes through it). Only the backend is a
 * fake: "processes" are entries in a table that outlives the engine, so a
 * test can drop the engine without stopping anything (what a crash does),
 * open a new one on the same store file, and check that it adopts what
 * runs and brings every deployment to what was asked. Every answer the
 * fake gives comes later, on the loop, as the interface requires.
 *
 * The fake platform backend stands in for a backend whose platform
 * changes the instance count itself (OCI, Kubernetes): it answers read,
 * apply and progress from a scripted work request.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/config.h"
#include "deploy/backend.h"
#include "deploy/deploy.h"
#include "gateway/gateway.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

#define MAX_PROCS 512
#define MAX_PENDING 512

/* ---- the fake instance backend ---- */

/* A "process": survives the engine, like a detached child. */
struct fproc {
	char id[BACKEND_ID_MAX];
	char shape[SHAPE_NAME_MAX + 1];
	bool running;
	bool ready;
	int pid;
	struct backend_instance *rec; /* the engine's record; NULL */
};

/* A change to report later, as a real backend would. */
struct fevent {
	struct backend_instance *in;
	enum backend_state to;
	unsigned round; /* the fake_fire() round that is due to deliver it */
};

struct fake {
	struct backend b;
	const struct config *cfg;
	uv_timer_t timer;
	struct fproc procs[MAX_PROCS];
	size_t nprocs;
	struct fevent ev[MAX_PENDING];
	size_t nev;
	unsigned round; /* of the next fake_fire() */
	const char *fail_shape; /* starts of this shape fail */
	bool hold_ready;        /* no instance becomes ready meanwhile */
	int next_pid;
	int starts, stops, adopts;
};

static struct fake *fake_of(struct backend *b)
{
	return b->impl;
}

static struct fproc *fproc_find(struct fake *f, const char *id)
{
	for (size_t i = 0; i < f->nprocs; i++)
		if (strcmp(f->procs[i].id, id) == 0)
			return &f->procs[i];
	return NULL;
}

static void later(struct fake *f, struct backend_instance *in,
		  enum backend_state to)
{
	assert_true(f->nev < MAX_PENDING);
	f->ev[f->nev].in = in;
	f->ev[f->nev].to = to;
	f->ev[f->nev].round = f->round;
	f->nev++;
}

/* Drops the pending events of in: it no longer has a process here, and
 * the engine may free it next. */
static void fake_forget(struct fake *f, const struct backend_instance *in)
{
	size_t kept = 0;

	for (size_t i = 0; i < f->nev; i++)
		if (f->ev[i].in != in)
			f->ev[kept++] = f->ev[i];
	f->nev = kept;
}

/* Takes the first pending event due by round out of the queue into *e;
 * false when there is none. The queue stays live while events are
 * delivered, so that an instance released meanwhile loses its events. */
static bool fake_next(struct fake *f, unsigned round, struct fevent *e)
{
	for (size_t i = 0; i < f->nev; i++) {
		if (f->ev[i].round > round)
			continue;
		*e = f->ev[i];
		memmove(&f->ev[i], &f->ev[i + 1],
			(f->nev - i - 1) * sizeof(f->ev[0]));
		f->nev--;
		return true;
	}
	return false;
}

static void fake_fire(uv_timer_t *t)
{
	struct fake *f = t->data;
	unsigned round = f->round++; /* what this fires adds waits a round */
	struct fevent e;

	while (fake_next(f, round, &e)) {
		struct backend_instance *in = e.in;
		struct fproc *p = fproc_find(f, in->id);

		if (in->backend_data == NULL)
			continue; /* released meanwhile */
		switch (e.to) {
		case BACKEND_READY:
			if (f->hold_ready) {
				later(f, in, BACKEND_READY);
				continue;
			}
			if (p == NULL || !p->running ||
			    in->state != BACKEND_STARTING)
				continue;
			p->ready = true;
			in->ever_ready = true;
			break;
		case BACKEND_STOPPED:
			if (p != NULL)
				p->running = p->ready = false;
			in->alive = false;
			in->pid = 0;
			in->backend_data = NULL;
			fake_forget(f, in);
			break;
		case BACKEND_FAILED:
			in->alive = false;
			in->start_failures = (int)f->cfg->max_start_attempts;
			snprintf(in->last_exit, sizeof(in->last_exit),
				 "exited with status 1");
			in->backend_data = NULL;
			fake_forget(f, in);
			break;
		default:
			break;
		}
		in->state = e.to;
		backend_changed(&f->b, in);
	}
}

static int fake_start(struct backend *b, struct backend_instance *in)
{
	struct fake *f = fake_of(b);
	struct fproc *p = fproc_find(f, in->id);

	f->starts++;
	in->backend_data = f;
	in->state = BACKEND_STARTING;
	if (f->fail_shape != NULL && strcmp(in->shape, f->fail_shape) == 0) {
		later(f, in, BACKEND_FAILED);
		return 0;
	}
	if (p == NULL) {
		assert_true(f->nprocs < MAX_PROCS);
		p = &f->procs[f->nprocs++];
		snprintf(p->id, sizeof(p->id), "%s", in->id);
	}
	assert_false(p->running); /* never two processes for one record */
	snprintf(p->shape, sizeof(p->shape), "%s", in->shape);
	p->running = true;
	p->ready = false;
	p->pid = ++f->next_pid;
	p->rec = in;
	in->alive = true;
	in->pid = p->pid;
	in->port = 40000 + p->pid;
	snprintf(in->handle, sizeof(in->handle), "fake/%s", in->id);
	later(f, in, BACKEND_READY);
	return 0;
}

static void fake_stop(struct backend *b, struct backend_instance *in,
		      uint32_t grace_ms)
{
	struct fake *f = fake_of(b);

	(void)grace_ms;
	f->stops++;
	in->backend_data = f;
	in->restart = false;
	if (in->state == BACKEND_STOPPING)
		return;
	in->state = in->alive ? BACKEND_STOPPING : in->state;
	later(f, in, BACKEND_STOPPED);
}

static int fake_status(struct backend *b, const struct backend_instance *in,
		       bool *alive, bool *ready)
{
	(void)b;
	*alive = in->alive;
	*ready = in->state == BACKEND_READY;
	return 0;
}

static int fake_adopt(struct backend *b, struct backend_instance *in)
{
	struct fake *f = fake_of(b);
	struct fproc *p = fproc_find(f, in->id);

	f->adopts++;
	if (p == NULL || !p->running) {
		in->alive = false;
		in->pid = 0;
		if (in->state != BACKEND_NEW)
			in->state = BACKEND_STOPPED;
		return MDS_E_NOTFOUND;
	}
	in->backend_data = f;
	in->alive = true;
	in->pid = p->pid;
	in->port = 40000 + p->pid;
	p->rec = in;
	if (in->state == BACKEND_STOPPING) {
		later(f, in, BACKEND_STOPPED);
	} else if (p->ready) {
		in->state = BACKEND_READY;
	} else {
		in->state = BACKEND_STARTING;
		later(f, in, BACKEND_READY);
	}
	return 0;
}

static void fake_release(struct backend *b, struct backend_instance *in)
{
	struct fproc *p = fproc_find(fake_of(b), in->id);

	if (p != NULL && p->rec == in)
		p->rec = NULL;
	in->backend_data = NULL;
	fake_forget(fake_of(b), in); /* as the contract says */
}

/*
 * The process of instance id exits on its own: the backend counts it and
 * would start it again after a backoff, as the local backend does; the
 * fake never does (a test crashes the engine before it would).
 */
static void fake_crash(struct fake *f, const char *id)
{
	struct fproc *p = fproc_find(f, id);
	struct backend_instance *in = p->rec;

	assert_non_null(in);
	p->running = p->ready = false;
	in->alive = false;
	in->pid = 0;
	in->restarts++;
	in->state = BACKEND_STARTING;
	snprintf(in->last_exit, sizeof(in->last_exit), "killed by signal 9");
	backend_changed(&f->b, in);
}

static int fake_usage(struct backend *b, const struct backend_instance *in,
		      struct backend_usage *out)
{
	struct fproc *p = fproc_find(fake_of(b), in->id);

	if (p == NULL || !p->running)
		return MDS_E_NOTFOUND;
	*out = (struct backend_usage){ .cpu_ns = 1000, .cpu_mcpu = 250,
				       .mem_bytes = 64, .mem_limit = 256,
				       .cpu_percent = -1, .mem_percent = -1 };
	return 0;
}

static int fake_list(struct backend *b, const char *ref,
		     void (*fn)(void *arg, const struct backend_listed *x),
		     void *arg)
{
	struct fake *f = fake_of(b);

	(void)ref;
	for (size_t i = 0; i < f->nprocs; i++)
		if (f->procs[i].running)
			fn(arg, &(struct backend_listed){
					.id = f->procs[i].id,
					.handle = "",
					.ready = f->procs[i].ready });
	return 0;
}

static const struct shape_ladder *fake_shapes(struct backend *b)
{
	return &fake_of(b)->cfg->shapes;
}

static void fake_close(struct backend *b, void (*done)(void *), void *arg)
{
	(void)b;
	if (done != NULL)
		done(arg);
}

static const struct backend_ops fake_ops = {
	.name = "local",
	.caps = BACKEND_CAP_INSTANCES | BACKEND_CAP_USAGE | BACKEND_CAP_ADOPT,
	.start = fake_start,
	.stop = fake_stop,
	.status = fake_status,
	.adopt = fake_adopt,
	.release = fake_release,
	.usage = fake_usage,
	.list = fake_list,
	.shapes = fake_shapes,
	.close = fake_close,
};

/* ---- the fake platform backend ---- */

enum { PLAT_IDLE, PLAT_WORKING };

struct plat {
	struct backend b;
	const struct config *cfg;
	uv_timer_t timer;
	/* The platform's deployment. */
	uint32_t count;
	char shape[SHAPE_NAME_MAX + 1];
	/* Its work request: a script of progress answers. */
	char work_id[BACKEND_WORK_ID_MAX];
	uint32_t want_count;
	char want_shape[SHAPE_NAME_MAX + 1];
	int polls;
	bool fail;        /* the work request ends FAILED */
	int applies, reads;
	/* One answer outstanding at a time, delivered by the timer. */
	int pending;      /* 0 none, 1 read, 2 apply, 3 progress */
	void *cb, *cb_arg;
};

static void plat_fire(uv_timer_t *t)
{
	struct plat *p = t->data;
	int what = p->pending;
	void *cb = p->cb, *arg = p->cb_arg;

	p->pending = 0;
	if (what == 1) {
		struct backend_target tg = { .state = "ACTIVE",
					     .count = p->count,
					     .etag = "etag-1" };

		snprintf(tg.shape, sizeof(tg.shape), "%s", p->shape);
		((backend_read_cb)cb)(arg, 0, &tg, NULL);
	} else if (what == 2) {
		((backend_apply_cb)cb)(arg, 0, p->work_id, NULL);
	} else if (what == 3) {
		struct backend_progress pr = { BACKEND_WORK_ACCEPTED, 0, "" };

		p->polls++;
		if (p->polls == 2) {
			pr.status = BACKEND_WORK_IN_PROGRESS;
			pr.percent = 50;
			snprintf(pr.message, sizeof(pr.message),
				 "scaling to %u", p->want_count);
		} else if (p->polls >= 3 && p->fail) {
			pr.status = BACKEND_WORK_FAILED;
			pr.percent = 50;
			snprintf(pr.message, sizeof(pr.message),
				 "out of capacity for %s", p->want_shape);
		} else if (p->polls >= 3) {
			pr.status = BACKEND_WORK_SUCCEEDED;
			pr.percent = 100;
			p->count = p->want_count;
			snprintf(p->shape, sizeof(p->shape), "%s",
				 p->want_shape);
		}
		((backend_progress_cb)cb)(arg, 0, &pr, NULL);
	}
}

static void plat_later(struct plat *p, int what, void *cb, void *arg)
{
	assert_int_equal(p->pending, 0); /* never two calls outstanding */
	p->pending = what;
	p->cb = cb;
	p->cb_arg = arg;
	uv_timer_start(&p->timer, plat_fire, 2, 0);
}

static int plat_read(struct backend *b, const char *ref, backend_read_cb cb,
		     void *arg)
{
	struct plat *p = b->impl;

	assert_string_equal(ref, "ocid1.datasciencemodeldeployment.oc1..x");
	p->reads++;
	plat_later(p, 1, (void *)cb, arg);
	return 0;
}

static int plat_apply(struct backend *b, const char *ref,
		      const struct backend_target *want, backend_apply_cb cb,
		      void *arg)
{
	struct plat *p = b->impl;

	(void)ref;
	assert_string_equal(want->etag, "etag-1");
	p->applies++;
	p->want_count = want->count;
	snprintf(p->want_shape, sizeof(p->want_shape), "%s", want->shape);
	snprintf(p->work_id, sizeof(p->work_id), "ocid1.wr.%d", p->applies);
	p->polls = 0;
	plat_later(p, 2, (void *)cb, arg);
	return 0;
}

static int plat_progress(struct backend *b, const char *ref,
			 const char *work_id, backend_progress_cb cb,
			 void *arg)
{
	struct plat *p = b->impl;

	(void)ref;
	assert_string_equal(work_id, p->work_id);
	plat_later(p, 3, (void *)cb, arg);
	return 0;
}

static int plat_list(struct backend *b, const char *ref,
		     void (*fn)(void *arg, const struct backend_listed *x),
		     void *arg)
{
	struct plat *p = b->impl;
	char id[32];

	(void)ref;
	for (uint32_t i = 0; i < p->count; i++) {
		snprintf(id, sizeof(id), "pod-%u", i);
		fn(arg, &(struct backend_listed){ .id = id, .handle = id,
						   .ready = true });
	}
	return 0;
}

static const struct shape_ladder *plat_shapes(struct backend *b)
{
	return &((struct plat *)b->impl)->cfg->shapes;
}

static const struct backend_ops plat_ops = {
	.name = "platform",
	.caps = BACKEND_CAP_PLATFORM,
	.read = plat_read,
	.apply = plat_apply,
	.progress = plat_progress,
	.poll_ms = 5,
	.list = plat_list,
	.shapes = plat_shapes,
	.close = fake_close,
};

/* ---- the fixture ---- */

struct t {
	uv_loop_t loop;
	struct config cfg;
	char path[64];
	struct store *store;
	struct gateway *gw;
	struct fake fake;
	struct plat plat;
	struct backend *backends[2];
	struct deploy *d;
};

/* Opens the engine on the first nbackends backends, the others said to be
 * missing as missing says (NULL: none). */
static void open_engine_with(struct t *t, size_t nbackends,
			     const struct deploy_missing *missing)
{
	struct deploy_env env = {
		.loop = &t->loop, .store = t->store, .gateway = t->gw,
		.config = &t->cfg, .gateway_url = "http://127.0.0.1:1",
		.backends = t->backends, .nbackends = nbackends,
		.missing = missing, .nmissing = missing != NULL,
		.tick_ms = 2,
	};
	char diag[256];

	assert_int_equal(store_open(t->path, &t->store, diag, sizeof(diag)),
			 0);
	env.store = t->store;
	assert_int_equal(deploy_open(&env, &t->d, diag, sizeof(diag)), 0);
}

static void open_engine(struct t *t)
{
	open_engine_with(t, 2, NULL);
}

static void on_closed(void *arg)
{
	*(bool *)arg = true;
}

/* Drops the engine as a crash would: nothing stopped, nothing written. */
static void crash(struct t *t)
{
	bool done = false;

	deploy_detach(t->d, on_closed, &done);
	while (!done)
		uv_run(&t->loop, UV_RUN_ONCE);
	t->d = NULL;
	store_close(t->store);
	t->store = NULL;
	t->fake.nev = 0; /* the engine's records are gone */
}

static int setup(void **state)
{
	struct t *t = xcalloc(1, sizeof(*t));
	char diag[256];
	int fd;

	log_current_level = LOG_ERROR;
	uv_loop_init(&t->loop);
	config_defaults(&t->cfg);
	t->cfg.max_start_attempts = 3;
	snprintf(t->path, sizeof(t->path), "/tmp/test_deploy.XXXXXX");
	fd = mkstemp(t->path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(gateway_start(&t->loop, "127.0.0.1", 0, &t->gw, diag,
				       sizeof(diag)),
			 0);
	t->fake.b = (struct backend){ .ops = &fake_ops, .impl = &t->fake };
	t->fake.cfg = &t->cfg;
	uv_timer_init(&t->loop, &t->fake.timer);
	t->fake.timer.data = &t->fake;
	uv_timer_start(&t->fake.timer, fake_fire, 1, 1);
	t->plat.b = (struct backend){ .ops = &plat_ops, .impl = &t->plat };
	t->plat.cfg = &t->cfg;
	t->plat.count = 2;
	snprintf(t->plat.shape, sizeof(t->plat.shape), "local.xs");
	uv_timer_init(&t->loop, &t->plat.timer);
	t->plat.timer.data = &t->plat;
	t->backends[0] = &t->fake.b;
	t->backends[1] = &t->plat.b;
	open_engine(t);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;
	bool done = false;

	if (t->d != NULL) {
		deploy_close(t->d, on_closed, &done);
		while (!done)
			uv_run(&t->loop, UV_RUN_ONCE);
		t->fake.nev = 0; /* the records are gone */
	}
	gateway_close(t->gw, NULL, NULL);
	uv_close((uv_handle_t *)&t->fake.timer, NULL);
	uv_close((uv_handle_t *)&t->plat.timer, NULL);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&t->loop), 0);
	store_close(t->store);
	unlink(t->path);
	free(t);
	return 0;
}

/* ---- helpers ---- */

/* Prints a deployment's instances and work request, for a failure. */
static void dump(struct t *t, const struct deploy_view *v)
{
	struct deploy_workreq_view *w;
	struct fault f;

	for (size_t i = 0; i < v->ninst; i++) {
		struct fproc *p = fproc_find(&t->fake, v->inst[i].id);

		print_message("  instance %s %s pid %d shape %s%s\n",
			      v->inst[i].id, v->inst[i].state, v->inst[i].pid,
			      v->inst[i].shape,
			      p && p->running ? " (runs)" : "");
	}
	w = v->wr_id[0] ? deploy_workreq_view_new(t->d, v->wr_id, &f) : NULL;
	for (size_t i = 0; w != NULL && i < w->nsteps; i++)
		print_message("  step %zu %s %s %s %s\n", i, w->steps[i].kind,
			      w->steps[i].inst, w->steps[i].status,
			      w->steps[i].msg);
	deploy_workreq_view_free(w);
}

/* Runs the loop until the deployment is in state (and has no work
 * request), or fails the test after 5 s. */
static void wait_state(struct t *t, const char *id, const char *state)
{
	uint64_t end = uv_hrtime() + 5000000000ull;
	struct fault f;

	for (;;) {
		struct deploy_view *v = deploy_view_new(t->d, id, &f);
		bool ok;

		assert_non_null(v);
		ok = strcmp(v->state, state) == 0 && v->wr_id[0] == '\0';
		if (!ok && uv_hrtime() > end) {
			dump(t, v);
			fail_msg("deployment %s is %s (work request '%s'), "
				 "expected %s", id, v->state, v->wr_id, state);
		}
		deploy_view_free(v);
		if (ok)
			return;
		uv_run(&t->loop, UV_RUN_ONCE);
	}
}

static const char *const sleep_argv[] = { "/bin/sleep", "1000" };

static void create(struct t *t, const char *name, uint32_t count,
		   const char *shape, char *id, char *wr)
{
	struct deploy_spec s = { .name = name, .argv = sleep_argv, .argc = 2,
				 .shape = shape, .has_count = true,
				 .count = count };
	struct fault f;

	if (deploy_create(t->d, &s, id, wr, &f) != 0)
		fail_msg("create refused: %s", f.message);
}

static int change(struct t *t, const char *id, int count, const char *shape,
		  char *wr, struct fault *f)
{
	struct deploy_change c = { .has_count = count > 0,
				   .count = count > 0 ? (uint32_t)count : 0,
				   .shape = shape };

	return deploy_change(t->d, id, &c, wr, f);
}

static const char *wr_status(struct t *t, const char *wr, char *err,
			     size_t errsz)
{
	struct fault f;
	struct deploy_workreq_view *v = deploy_workreq_view_new(t->d, wr, &f);
	const char *s;

	assert_non_null(v);
	s = v->status;
	if (err != NULL)
		snprintf(err, errsz, "%s", v->error);
	deploy_workreq_view_free(v);
	return s;
}

/* Checks that dep runs exactly count READY instances of shape, that the
 * fake runs exactly those (no stray, none missing). */
static void check_runs(struct t *t, const char *id, uint32_t count,
		       const char *shape)
{
	struct fault f;
	struct deploy_view *v = deploy_view_new(t->d, id, &f);
	uint32_t ready = 0, running = 0;

	assert_non_null(v);
	assert_int_equal(v->count, count);
	assert_string_equal(v->shape, shape);
	for (size_t i = 0; i < v->ninst; i++) {
		const struct deploy_instance_view *in = &v->inst[i];
		struct fproc *p = fproc_find(&t->fake, in->id);
		bool live = strcmp(in->state, "READY") == 0;

		if (live) {
			ready++;
			assert_string_equal(in->shape, shape);
			assert_true(in->ready);
			assert_non_null(p);
			assert_true(p->running);
		} else if (p != NULL && p->running) {
			fail_msg("instance %s is %s but still runs", in->id,
				 in->state);
		}
	}
	for (size_t i = 0; i < t->fake.nprocs; i++)
		running += t->fake.procs[i].running;
	if (ready != count || running != count)
		fail_msg("%s: %u ready, %u running, want %u", id, ready,
			 running, count);
	deploy_view_free(v);
}

/* ---- tests ---- */

static void test_create_scale_out_and_in(void **state)
{
	struct t *t = *state;
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX];
	struct fault f;

	create(t, "web", 2, "local.xs", id, wr);
	wait_state(t, id, "ACTIVE");
	assert_string_equal(wr_status(t, wr, NULL, 0), "SUCCEEDED");
	check_runs(t, id, 2, "local.xs");

	assert_int_equal(change(t, id, 4, NULL, wr, &f), 0);
	assert_string_not_equal(wr, "");
	wait_state(t, id, "ACTIVE");
	assert_string_equal(wr_status(t, wr, NULL, 0), "SUCCEEDED");
	check_runs(t, id, 4, "local.xs");

	assert_int_equal(change(t, "web", 1, NULL, wr, &f), 0);
	wait_state(t, id, "ACTIVE");
	assert_string_equal(wr_status(t, wr, NULL, 0), "SUCCEEDED");
	check_runs(t, id, 1, "local.xs");

	/* The same size again changes nothing. */
	assert_int_equal(change(t, id, 1, "local.xs", wr, &f), 0);
	assert_string_equal(wr, "");
}

static void test_shape_change(void **state)
{
	struct t *t = *state;
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX];
	struct fault f;
	struct deploy_workreq_view *v;
	bool routed = false;

	create(t, "web", 2, "local.xs", id, wr);
	wait_state(t, id, "ACTIVE");
	assert_int_equal(change(t, id, 0, "local.m", wr, &f), 0);
	wait_state(t, id, "ACTIVE");
	check_runs(t, id, 2, "local.m");
	/* The new set was started held, switched in one ROUTE step, then
	 * the old set drained and stopped. */
	v = deploy_workreq_view_new(t->d, wr, &f);
	assert_non_null(v);
	assert_string_equal(v->status, "SUCCEEDED");
	assert_int_equal(v->percent, 100);
	for (size_t i = 0; i < v->nsteps; i++) {
		if (strcmp(v->steps[i].kind, "ROUTE") == 0)
			routed = true;
		if (strcmp(v->steps[i].kind, "STOP_INSTANCE") == 0)
			assert_true(routed);
	}
	assert_true(routed);
	deploy_workreq_view_free(v);
}

static void test_backend_that_fails_to_start(void **state)
{
	struct t *t = *state;
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX], err[300];
	char id2[DEPLOY_ID_MAX], wr2[DEPLOY_ID_MAX];
	struct fault f;

	/* A create that cannot start fails the deployment. */
	t->fake.fail_shape = "local.l";
	create(t, "broken", 1, "local.l", id, wr);
	wait_state(t, id, "FAILED");
	assert_string_equal(wr_status(t, wr, err, sizeof(err)), "FAILED");
	assert_non_null(strstr(err, "exited with status 1"));

	/* An update to a shape that cannot start rolls back: the old set
	 * keeps running and the deployment is ACTIVE at its old size. */
	create(t, "web", 2, "local.xs", id2, wr2);
	wait_state(t, id2, "ACTIVE");
	assert_int_equal(change(t, id2, 0, "local.l", wr2, &f), 0);
	wait_state(t, id2, "ACTIVE");
	assert_string_equal(wr_status(t, wr2, err, sizeof(err)), "FAILED");
	assert_non_null(strstr(err, "exited with status 1"));
	check_runs(t, id2, 2, "local.xs");
}

static void test_update_refused_while_one_runs(void **state)
{
	struct t *t = *state;
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX], wr2[DEPLOY_ID_MAX];
	struct fault f;

	create(t, "web", 1, "local.xs", id, wr);
	/* Still creating. */
	assert_int_equal(change(t, id, 3, NULL, wr2, &f), MDS_E_CONFLICT);
	assert_string_equal(f.code, "IncorrectState");
	assert_string_equal(wr2, "");
	wait_state(t, id, "ACTIVE");
	assert_int_equal(change(t, id, 3, NULL, wr, &f), 0);
	assert_int_equal(change(t, id, 2, NULL, wr2, &f), MDS_E_CONFLICT);
	assert_non_null(strstr(f.message, "UPDATING"));
	assert_int_equal(deploy_delete(t->d, id, wr2, &f), MDS_E_CONFLICT);
	wait_state(t, id, "ACTIVE");
	check_runs(t, id, 3, "local.xs");
	/* Bad values are refused with the field named, nothing changes. */
	assert_int_equal(change(t, id, 100000, NULL, wr2, &f), MDS_E_INVAL);
	assert_string_equal(f.field, "instanceCount");
	assert_int_equal(change(t, id, 0, "huge", wr2, &f), MDS_E_INVAL);
	assert_string_equal(f.field, "instanceShapeName");
	assert_int_equal(change(t, "nope", 2, NULL, wr2, &f),
			 MDS_E_NOTFOUND);
	check_runs(t, id, 3, "local.xs");
}

static void test_delete_stops_everything(void **state)
{
	struct t *t = *state;
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX];
	struct fault f;
	struct deploy_view *v;

	create(t, "web", 3, "local.xs", id, wr);
	wait_state(t, id, "ACTIVE");
	assert_int_equal(deploy_delete(t->d, id, wr, &f), 0);
	wait_state(t, id, "DELETED");
	for (size_t i = 0; i < t->fake.nprocs; i++)
		assert_false(t->fake.procs[i].running);
	v = deploy_view_new(t->d, "web", &f); /* a deleted one, by id only */
	assert_null(v);
	assert_int_equal(f.err, MDS_E_NOTFOUND);
}

/* A delete inside a transaction of the caller's holds only when that
 * commits: rolled back, the deployment is ACTIVE again with no work
 * request, nothing of it stopped (no step ran before the end of the
 * transaction) or stored; committed, it goes. */
static void test_delete_follows_the_callers_transaction(void **state)
{
	struct t *t = *state;
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX];
	struct fault f;
	struct deploy_view *v;
	uint64_t end;

	create(t, "web", 2, "local.xs", id, wr);
	wait_state(t, id, "ACTIVE");
	assert_int_equal(store_begin(t->store), 0);
	assert_int_equal(deploy_delete(t->d, id, wr, &f), 0);
	v = deploy_view_new(t->d, id, &f);
	assert_non_null(v);
	assert_string_equal(v->state, "DELETING");
	deploy_view_free(v);
	assert_int_equal(store_rollback(t->store), 0);
	v = deploy_view_new(t->d, id, &f);
	assert_non_null(v);
	assert_string_equal(v->state, "ACTIVE");
	assert_string_equal(v->wr_id, "");
	deploy_view_free(v);
	assert_null(deploy_workreq_view_new(t->d, wr, &f));
	/* Ticks later, nothing of the deletion has run. */
	end = uv_hrtime() + 100000000ull;
	while (uv_hrtime() < end)
		uv_run(&t->loop, UV_RUN_ONCE);
	check_runs(t, id, 2, "local.xs");
	crash(t);
	open_engine(t);
	wait_state(t, id, "ACTIVE");
	check_runs(t, id, 2, "local.xs");
	assert_null(deploy_workreq_view_new(t->d, wr, &f));

	assert_int_equal(store_begin(t->store), 0);
	assert_int_equal(deploy_delete(t->d, id, wr, &f), 0);
	assert_int_equal(store_commit(t->store), 0);
	wait_state(t, id, "DELETED");
	for (size_t i = 0; i < t->fake.nprocs; i++)
		assert_false(t->fake.procs[i].running);
}

/* A signature of a work request's progress: it grows with every step
 * that starts or ends. */
static int progress_of(struct t *t, const char *wr)
{
	struct fault f;
	struct deploy_workreq_view *v = deploy_workreq_view_new(t->d, wr, &f);
	int sum = 0;

	if (v == NULL)
		return 0;
	for (size_t i = 0; i < v->nsteps; i++)
		sum += strcmp(v->steps[i].status, "PENDING") == 0       ? 0
		       : strcmp(v->steps[i].status, "IN_PROGRESS") == 0 ? 1
									: 2;
	sum += strcmp(v->status, "SUCCEEDED") == 0 ? 1 : 0;
	deploy_workreq_view_free(v);
	return sum;
}

/*
 * Runs an update from (n0, s0) to (n1, s1) and crashes the engine when
 * its progress reaches k, then reopens it on the same store file and
 * checks that it resumes to exactly what was asked. Returns whether the
 * work request got as far as k (false: k is past its end).
 */
static bool crash_at(struct t *t, int k, uint32_t n0, const char *s0,
		     uint32_t n1, const char *s1)
{
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX];
	char name[32];
	struct fault f;
	uint64_t end;
	bool reached = false;

	snprintf(name, sizeof(name), "crash-%d", k);
	create(t, name, n0, s0, id, wr);
	wait_state(t, id, "ACTIVE");
	assert_int_equal(change(t, id, (int)n1, s1, wr, &f), 0);
	end = uv_hrtime() + 5000000000ull;
	while (uv_hrtime() < end) {
		int p = progress_of(t, wr);

		if (p >= k) {
			reached = true;
			break;
		}
		if (strcmp(wr_status(t, wr, NULL, 0), "SUCCEEDED") == 0)
			break;
		uv_run(&t->loop, UV_RUN_ONCE);
	}
	crash(t);
	open_engine(t);
	wait_state(t, id, "ACTIVE");
	check_runs(t, id, n1, s1);
	/* Clean up for the next round: delete and forget the processes. */
	assert_int_equal(deploy_delete(t->d, id, wr, &f), 0);
	wait_state(t, id, "DELETED");
	t->fake.nprocs = 0;
	return reached;
}

static void crash_every_step(struct t *t, uint32_t n0, const char *s0,
			     uint32_t n1, const char *s1)
{
	int k = 0;

	while (crash_at(t, k, n0, s0, n1, s1))
		k++;
	assert_true(k > 3); /* it did crash inside the work request */
}

static void test_crash_in_every_step_of_scale_out(void **state)
{
	crash_every_step(*state, 1, "local.xs", 3, "local.xs");
}

static void test_crash_in_every_step_of_scale_in(void **state)
{
	crash_every_step(*state, 3, "local.xs", 1, "local.xs");
}

static void test_crash_in_every_step_of_shape_change(void **state)
{
	crash_every_step(*state, 2, "local.xs", 2, "local.s");
}

/*
 * The daemon dies while an instance waits out its restart backoff in the
 * middle of a work request: recovery must start it again, and the
 * deployment must end with as many ready instances as it says. The
 * instance lost is an old one (outside the work request's steps) or the
 * new one (its START step done, WAIT_READY waiting for it).
 */
static void crash_during_backoff(struct t *t, bool lose_new)
{
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX], lost[DEPLOY_ID_MAX];
	struct fault f;
	struct deploy_view *v;

	create(t, "web", 1, "local.xs", id, wr);
	wait_state(t, id, "ACTIVE");
	t->fake.hold_ready = true;
	assert_int_equal(change(t, id, 2, NULL, wr, &f), 0);
	while (progress_of(t, wr) < 3) /* START done, WAIT_READY waits */
		uv_run(&t->loop, UV_RUN_ONCE);
	v = deploy_view_new(t->d, id, &f);
	assert_int_equal(v->ninst, 2);
	snprintf(lost, sizeof(lost), "%s", v->inst[lose_new ? 1 : 0].id);
	deploy_view_free(v);
	fake_crash(&t->fake, lost);
	crash(t);
	t->fake.hold_ready = false;
	open_engine(t);
	wait_state(t, id, "ACTIVE");
	assert_string_equal(wr_status(t, wr, NULL, 0), "SUCCEEDED");
	check_runs(t, id, 2, "local.xs");
}

static void test_crash_during_restart_backoff_of_old_instance(void **state)
{
	crash_during_backoff(*state, false);
}

static void test_crash_during_restart_backoff_of_new_instance(void **state)
{
	crash_during_backoff(*state, true);
}

static void test_crash_during_create_then_recovery(void **state)
{
	struct t *t = *state;
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX];

	create(t, "web", 2, "local.xs", id, wr);
	uv_run(&t->loop, UV_RUN_ONCE);
	crash(t);
	open_engine(t);
	wait_state(t, id, "ACTIVE");
	check_runs(t, id, 2, "local.xs");
	assert_string_equal(wr_status(t, wr, NULL, 0), "SUCCEEDED");
}

/* Monitoring reads usage through the interface. */
static void on_instance(void *arg, const struct deploy_instance_info *in)
{
	int *n = arg;

	assert_int_equal(in->usage_rc, 0);
	assert_int_equal(in->usage.mem_limit, 256);
	(*n)++;
}

static void test_usage_through_the_backend(void **state)
{
	struct t *t = *state;
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX];
	int n = 0;

	create(t, "web", 2, "local.xs", id, wr);
	wait_state(t, id, "ACTIVE");
	deploy_each_instance(t->d, on_instance, &n);
	assert_int_equal(n, 2);
}

/* ---- the platform path ---- */

static void import(struct t *t, char *id)
{
	char wr[DEPLOY_ID_MAX];
	struct fault f;

	if (deploy_import(t->d, "platform",
			  "ocid1.datasciencemodeldeployment.oc1..x", "remote",
			  id, wr, &f) != 0)
		fail_msg("import refused: %s", f.message);
	wait_state(t, id, "ACTIVE");
	assert_string_equal(wr_status(t, wr, NULL, 0), "SUCCEEDED");
	assert_int_equal(t->plat.reads, 1);
}

static void test_platform_apply_and_progress(void **state)
{
	struct t *t = *state;
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX];
	struct fault f;
	struct deploy_view *v;
	struct deploy_workreq_view *w;
	int saw_half = 0;

	import(t, id);
	v = deploy_view_new(t->d, id, &f);
	assert_int_equal(v->count, 2);
	assert_string_equal(v->shape, "local.xs");
	assert_string_equal(v->backend, "platform");
	assert_int_equal(v->ninst, 2); /* from the platform's list */
	deploy_view_free(v);

	assert_int_equal(change(t, id, 3, NULL, wr, &f), 0);
	for (uint64_t end = uv_hrtime() + 5000000000ull;
	     uv_hrtime() < end;) {
		w = deploy_workreq_view_new(t->d, wr, &f);
		if (strcmp(w->status, "IN_PROGRESS") == 0 &&
		    w->platform_id[0] != '\0' && w->percent > 50 &&
		    w->percent < 100)
			saw_half++;
		if (strcmp(w->status, "SUCCEEDED") == 0) {
			assert_string_equal(w->platform_id, "ocid1.wr.1");
			deploy_workreq_view_free(w);
			break;
		}
		deploy_workreq_view_free(w);
		uv_run(&t->loop, UV_RUN_ONCE);
	}
	assert_true(saw_half > 0); /* the platform's 50% was mirrored */
	wait_state(t, id, "ACTIVE");
	assert_string_equal(wr_status(t, wr, NULL, 0), "SUCCEEDED");
	assert_int_equal(t->plat.applies, 1);
	assert_int_equal(t->plat.count, 3);
	v = deploy_view_new(t->d, id, &f);
	assert_int_equal(v->count, 3);
	deploy_view_free(v);
}

static void test_platform_failure(void **state)
{
	struct t *t = *state;
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX], err[300];
	struct fault f;
	struct deploy_view *v;

	import(t, id);
	t->plat.fail = true;
	assert_int_equal(change(t, id, 0, "local.l", wr, &f), 0);
	wait_state(t, id, "ACTIVE");
	assert_string_equal(wr_status(t, wr, err, sizeof(err)), "FAILED");
	assert_string_equal(err, "out of capacity for local.l");
	v = deploy_view_new(t->d, id, &f);
	assert_int_equal(v->count, 2);
	assert_string_equal(v->shape, "local.xs");
	deploy_view_free(v);
}

static void test_platform_crash_follows_the_same_work_request(void **state)
{
	struct t *t = *state;
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX];
	struct fault f;
	uint64_t end = uv_hrtime() + 5000000000ull;

	import(t, id);
	assert_int_equal(change(t, id, 4, NULL, wr, &f), 0);
	/* Until the platform's work request is recorded, then crash. */
	for (;;) {
		struct deploy_workreq_view *w =
			deploy_workreq_view_new(t->d, wr, &f);
		bool applied = w->platform_id[0] != '\0';

		deploy_workreq_view_free(w);
		if (applied)
			break;
		assert_true(uv_hrtime() < end);
		uv_run(&t->loop, UV_RUN_ONCE);
	}
	/* The answer in flight is dropped with the engine. */
	while (t->plat.pending != 0)
		uv_run(&t->loop, UV_RUN_ONCE);
	crash(t);
	open_engine(t);
	wait_state(t, id, "ACTIVE");
	assert_string_equal(wr_status(t, wr, NULL, 0), "SUCCEEDED");
	assert_int_equal(t->plat.applies, 1); /* no second apply */
	assert_int_equal(t->plat.count, 4);
}

static void test_delete_of_platform_deployment_only_forgets(void **state)
{
	struct t *t = *state;
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX];
	struct fault f;

	import(t, id);
	assert_int_equal(deploy_delete(t->d, id, wr, &f), 0);
	wait_state(t, id, "DELETED");
	assert_int_equal(t->plat.applies, 0);
	assert_int_equal(t->plat.count, 2);
}

/* A daemon started without the platform backend keeps its deployment:
 * listed, readable, saying why, every change refused, its running work
 * request left as it was until the backend is back. */
static void test_platform_deployment_kept_while_backend_missing(void **state)
{
	static const struct deploy_missing missing = {
		"platform", "no credentials for the platform" };
	struct t *t = *state;
	char id[DEPLOY_ID_MAX], wr[DEPLOY_ID_MAX], wr2[DEPLOY_ID_MAX];
	struct deploy_change c = { .has_count = true, .count = 5 };
	struct deploy_view *v;
	struct fault f;

	import(t, id);
	assert_int_equal(change(t, id, 4, NULL, wr, &f), 0);
	while (t->plat.applies == 0 || t->plat.pending != 0)
		uv_run(&t->loop, UV_RUN_ONCE);
	assert_string_equal(wr_status(t, wr, NULL, 0), "IN_PROGRESS");
	crash(t);
	open_engine_with(t, 1, &missing);
	for (int i = 0; i < 50; i++) /* ticks: nothing may move */
		uv_run(&t->loop, UV_RUN_ONCE);
	v = deploy_view_new(t->d, "remote", &f);
	assert_non_null(v);
	assert_string_equal(v->id, id);
	assert_string_equal(v->backend, "platform");
	assert_string_equal(v->state, "UPDATING");
	assert_string_equal(v->wr_id, wr);
	assert_non_null(strstr(v->details, "backend platform unavailable: "
				       "no credentials for the platform"));
	deploy_view_free(v);
	assert_string_equal(wr_status(t, wr, NULL, 0), "IN_PROGRESS");
	assert_int_equal(deploy_change(t->d, id, &c, wr2, &f), MDS_E_UNAVAIL);
	assert_string_equal(f.field, "backend");
	assert_non_null(strstr(f.message, "no credentials for the platform"));
	assert_int_equal(deploy_change_check(t->d, id, &c, &f),
			 MDS_E_UNAVAIL);
	assert_int_equal(deploy_delete(t->d, id, wr2, &f), MDS_E_UNAVAIL);
	assert_int_equal(deploy_import(t->d, "platform", "ocid1.other", "b",
				       id, wr2, &f),
			 MDS_E_UNAVAIL);
	assert_int_equal(t->plat.applies, 1);

	crash(t);
	open_engine(t);
	wait_state(t, id, "ACTIVE");
	assert_string_equal(wr_status(t, wr, NULL, 0), "SUCCEEDED");
	assert_int_equal(t->plat.count, 4);
	v = deploy_view_new(t->d, id, &f);
	assert_null(strstr(v->details, "unavailable"));
	deploy_view_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_create_scale_out_and_in),
		T(test_shape_change),
		T(test_backend_that_fails_to_start),
		T(test_update_refused_while_one_runs),
		T(test_delete_stops_everything),
		T(test_delete_follows_the_callers_transaction),
		T(test_crash_during_create_then_recovery),
		T(test_crash_during_restart_backoff_of_old_instance),
		T(test_crash_during_restart_backoff_of_new_instance),
		T(test_crash_in_every_step_of_scale_out),
		T(test_crash_in_every_step_of_scale_in),
		T(test_crash_in_every_step_of_shape_change),
		T(test_usage_through_the_backend),
		T(test_platform_apply_and_progress),
		T(test_platform_failure),
		T(test_platform_crash_follows_the_same_work_request),
		T(test_delete_of_platform_deployment_only_forgets),
		T(test_platform_deployment_kept_while_backend_missing),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
