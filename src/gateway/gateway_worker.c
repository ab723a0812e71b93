/*
 * gateway_worker.c - a worker's life on its own thread: its deployments
 * and instances, the calls the owner posts (routes, removal, stop and
 * close, which end every connection), running its loop, and freeing what
 * the loop held.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "gateway/gateway_path.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xalloc.h"

/* Deployments and instances. */

struct dep *worker_dep(const struct worker *gw, const char *id)
{
	for (struct link *l = gw->deps.next; l != &gw->deps; l = l->next) {
		struct dep *d = container_of(l, struct dep, link);

		if (strcmp(d->id, id) == 0)
			return d;
	}
	return NULL;
}

void dep_unref(struct dep *d)
{
	if (d == NULL || --d->refs > 0)
		return;
	free(d->id);
	free(d->name);
	free(d->ups);
	free(d->load);
	free(d);
}

/* Lets go of a worker's hold on shared instance state: the owner frees it
 * once no worker holds it (see prune_shared()). */
static void ishared_unref(struct ishared *sh)
{
	__atomic_fetch_sub(&sh->refs, 1, __ATOMIC_RELEASE);
}

void inst_unref(struct inst *in, struct worker *gw)
{
	if (in == NULL || --in->refs > 0)
		return;
	uv_mutex_lock(&gw->mu);
	list_del(&in->link);
	uv_mutex_unlock(&gw->mu);
	ishared_unref(in->sh);
	free(in->id);
	free(in);
}

/* Takes an instance out of routing: idle connections close, and it lives
 * on while requests or connections still hold it. */
static void inst_unroute(struct worker *gw, struct inst *in)
{
	in->routed = false;
	while (!list_empty(&in->idle))
		up_close(container_of(in->idle.next, struct upconn, idle));
	inst_unref(in, gw);
}

/* The gateway, on its thread. */

/* Frees what the worker's loop held, once every handle is closed. */
static void worker_teardown(struct worker *gw)
{
	struct link *l, *next;

	uv_mutex_lock(&gw->mu);
	for (l = gw->deps.next; l != &gw->deps; l = next) {
		struct dep *d = container_of(l, struct dep, link);

		next = l->next;
		list_del(&d->link);
		d->refs = 1;
		dep_unref(d);
	}
	for (l = gw->insts.next; l != &gw->insts; l = next) {
		struct inst *in = container_of(l, struct inst, link);

		next = l->next;
		list_del(&in->link);
		ishared_unref(in->sh);
		free(in->id);
		free(in);
	}
	uv_mutex_unlock(&gw->mu);
	while (gw->free_blocks != NULL) {
		struct block *b = gw->free_blocks;

		gw->free_blocks = b->next;
		free(b);
	}
	while (gw->free_wreqs != NULL) {
		struct wreq *w = gw->free_wreqs;

		gw->free_wreqs = w->next;
		buf_free(&w->own);
		free(w);
	}
}

/* Runs the calls the owner posted, in order, and tells it they are done. */
static void wake_cb(uv_async_t *a)
{
	struct worker *gw = a->data;
	struct call *list, *next;

	uv_mutex_lock(&gw->mu);
	list = gw->calls;
	gw->calls = NULL;
	uv_mutex_unlock(&gw->mu);
	for (struct call *k = list; k != NULL; k = k->next)
		k->fn(gw, k->arg);
	uv_mutex_lock(&gw->mu);
	for (struct call *k = list; k != NULL; k = next) {
		next = k->next; /* k lives on the owner's stack until done */
		k->done = true;
	}
	uv_cond_broadcast(&gw->called);
	uv_mutex_unlock(&gw->mu);
}

/* Runs the worker's loop until worker_close() has closed every handle. */
void worker_run(struct worker *gw)
{
	uv_run(gw->loop, UV_RUN_DEFAULT);
	gw->loop_over = true;
	obs_flush(gw);
	worker_teardown(gw);
	if (uv_loop_close(gw->loop) != 0)
		gw_log(gw, LOG_WARN, "loop closed with handles open");
	uv_mutex_lock(&gw->mu);
	gw->ended = true;
	uv_mutex_unlock(&gw->mu);
	uv_async_send(&gw->notify);
}

void worker_thread(void *arg)
{
	sigset_t all;

	/* Signals are the owner's loop's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	worker_run(arg);
}

void worker_handles(struct worker *gw)
{
	uv_async_init(gw->loop, &gw->wake, wake_cb);
	gw->wake.data = gw;
	uv_timer_init(gw->loop, &gw->flush);
	gw->flush.data = gw;
}

/* Calls from the owner, on the worker's thread. */

static struct inst *inst_new(struct worker *gw, const char *id,
			     struct ishared *sh)
{
	struct inst *in = xcalloc(1, sizeof(*in));
	struct in_addr a = { sh->addr };
	char ip[INET_ADDRSTRLEN];

	in->sh = sh;
	__atomic_fetch_add(&sh->refs, 1, __ATOMIC_RELAXED);
	in->id = xstrdup(id);
	in->id_len = strlen(id);
	in->addr = sh->addr;
	in->port = sh->port;
	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	in->host_len = (size_t)snprintf(in->host, sizeof(in->host),
					"Host: %s:%u\r\n", ip,
					(unsigned)in->port);
	in->refs = 1;
	in->routed = true;
	list_init(&in->idle);
	uv_mutex_lock(&gw->mu);
	list_add(&gw->insts, &in->link);
	uv_mutex_unlock(&gw->mu);
	return in;
}

void worker_set_routes(struct worker *gw, void *arg)
{
	const struct routes *rt = arg;
	const struct gateway_upstream *ups = rt->ups;
	struct inst **next;
	struct dep *d;
	size_t k = 0;

	d = worker_dep(gw, rt->deployment_id);
	if (d == NULL) {
		d = xcalloc(1, sizeof(*d));
		d->id = xstrdup(rt->deployment_id);
		d->id_len = strlen(d->id);
		d->refs = 1;
		list_init(&d->held);
		list_init(&d->observed);
		uv_mutex_lock(&gw->mu);
		list_add(&gw->deps, &d->link);
		uv_mutex_unlock(&gw->mu);
	}
	free(d->name);
	d->name = NULL;
	d->name_len = 0;
	if (rt->display_name != NULL && *rt->display_name != '\0') {
		d->name = xstrdup(rt->display_name);
		d->name_len = strlen(d->name);
	}
	for (size_t j = 0; j < d->n; j++)
		d->ups[j]->keep = false;
	next = xcalloc(rt->n > 0 ? rt->n : 1, sizeof(*next));
	for (size_t i = 0; i < rt->n; i++) {
		struct inst *in = NULL;
		bool dup = false;

		for (size_t j = 0; j < k; j++)
			dup = dup || strcmp(next[j]->id,
					    ups[i].instance_id) == 0;
		if (dup)
			continue;
		for (size_t j = 0; in == NULL && j < d->n; j++)
			if (strcmp(d->ups[j]->id, ups[i].instance_id) == 0 &&
			    d->ups[j]->port == ups[i].port &&
			    d->ups[j]->addr == rt->sh[i]->addr)
				in = d->ups[j];
		if (in == NULL)
			in = inst_new(gw, ups[i].instance_id, rt->sh[i]);
		in->keep = true;
		next[k++] = in;
	}
	for (size_t j = 0; j < d->n; j++)
		if (!d->ups[j]->keep)
			inst_unroute(gw, d->ups[j]);
	free(d->ups);
	d->ups = next;
	d->n = k;
	d->load = xreallocarray(d->load, k > 0 ? k : 1, sizeof(*d->load));
	hold_release(d);
}

void worker_remove(struct worker *gw, void *arg)
{
	const struct routes *rt = arg;
	struct dep *d = worker_dep(gw, rt->deployment_id);

	if (d == NULL)
		return;
	uv_mutex_lock(&gw->mu);
	list_del(&d->link);
	uv_mutex_unlock(&gw->mu);
	for (size_t j = 0; j < d->n; j++)
		inst_unroute(gw, d->ups[j]);
	d->n = 0;
	hold_gone(d);
	dep_unref(d);
}

void worker_drain_check(struct worker *gw)
{
	bool first;

	if (!gw->draining || gw->stopped || gw->nclients > 0)
		return;
	obs_flush(gw);
	uv_mutex_lock(&gw->mu);
	first = !gw->drained;
	gw->drained = true;
	uv_mutex_unlock(&gw->mu);
	if (first)
		uv_async_send(&gw->notify);
}

void worker_drain(struct worker *gw, void *arg)
{
	struct link *l, *next;

	(void)arg;
	if (gw->stopped || gw->draining)
		return;
	gw->draining = true; /* no keep-alive, no pooling */
	uv_close((uv_handle_t *)&gw->listener, NULL);
	for (l = gw->clients.next; l != &gw->clients; l = next) {
		struct client *c = container_of(l, struct client, link);
		struct request *r = &c->req;

		next = l->next;
		if (c->closing)
			continue; /* lingering: its handles close soon */
		if (!r->active) {
			client_close(c, true); /* idle between requests */
			continue;
		}
		/* Its response, not begun yet, says Connection: close. */
		if (!r->resp_head && r->status == 0)
			r->keepalive = false;
	}
	for (l = gw->ups.next; l != &gw->ups; l = next) {
		struct upconn *up = container_of(l, struct upconn, link);

		next = l->next;
		if (up->state == UP_IDLE)
			up_close(up);
	}
	worker_drain_check(gw);
}

void worker_stop(struct worker *gw, void *arg)
{
	struct link *l, *next;

	(void)arg;
	if (gw->stopped)
		return;
	gw->stopped = true;
	gw->closing = true; /* no keep-alive, no pooling, notes at once */
	if (!gw->draining)
		uv_close((uv_handle_t *)&gw->listener, NULL);
	for (l = gw->clients.next; l != &gw->clients; l = next) {
		struct client *c = container_of(l, struct client, link);

		next = l->next;
		if (!c->closing && c->req.active)
			gw->cut++;
		client_close(c, false);
		client_close_handles(c);
	}
	for (l = gw->ups.next; l != &gw->ups; l = next) {
		next = l->next;
		up_close(container_of(l, struct upconn, link));
	}
	obs_flush(gw);
}

void worker_close(struct worker *gw, void *arg)
{
	worker_stop(gw, arg);
	uv_close((uv_handle_t *)&gw->wake, NULL);
	uv_close((uv_handle_t *)&gw->flush, NULL);
	obs_flush(gw);
	uv_async_send(&gw->notify); /* what the timer held back */
}
