/* autoscale_idle.c - taking idle deployments to zero; see
 * autoscale_idle.h. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "notify/autoscale_idle.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/xalloc.h"

#define IDLE_TICK_MS 1000
#define IDLE_TRACKED_MAX 10000

/* What the gateway had counted for a deployment when it last changed. */
struct seen {
	char id[DEPLOY_ID_MAX];
	uint64_t activity; /* requests finished + held */
	uint64_t since;    /* uv_now() of the last change or request */
	bool live;         /* found in this tick */
};

struct autoscale_idle {
	uv_timer_t timer;
	struct autoscale *a;
	struct deploy *d;
	struct gateway *gw;
	struct seen *v;
	size_t n, cap;
	/* Candidates of one tick: ids of ACTIVE deployments with instances. */
	char (*ids)[DEPLOY_ID_MAX];
	size_t nids, capids;
};

static struct seen *seen_find(struct autoscale_idle *w, const char *id,
			      uint64_t now)
{
	for (size_t i = 0; i < w->n; i++)
		if (strcmp(w->v[i].id, id) == 0)
			return &w->v[i];
	if (w->n >= IDLE_TRACKED_MAX)
		return NULL;
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->v = xreallocarray(w->v, w->cap, sizeof(*w->v));
	}
	memset(&w->v[w->n], 0, sizeof(w->v[0]));
	snprintf(w->v[w->n].id, sizeof(w->v[0].id), "%s", id);
	w->v[w->n].since = now;
	return &w->v[w->n++];
}

static void collect(void *arg, const struct deploy_view *v)
{
	struct autoscale_idle *w = arg;

	if (strcmp(v->state, "ACTIVE") != 0)
		return;
	if (w->nids == w->capids) {
		w->capids = w->capids ? w->capids * 2 : 16;
		w->ids = xreallocarray(w->ids, w->capids, sizeof(*w->ids));
	}
	snprintf(w->ids[w->nids++], DEPLOY_ID_MAX, "%s", v->id);
}

/* Scales deployment id to zero if its policy and its backend allow and it
 * was idle for long enough. False when that was tried and failed (tried
 * again after another idle period, not every tick). */
static bool maybe_zero(struct autoscale_idle *w, const char *id,
		       uint64_t idle_ms)
{
	struct autoscale_config_view cv;
	struct deploy_change c = { .has_count = true, .count = 0 };
	struct fault f = { 0 };
	char wr_id[DEPLOY_ID_MAX];
	const struct policy *p = &cv.config.policy;

	if (autoscale_config_get(w->a, id, &cv, &f) != 0 ||
	    p->min_instances != 0 || p->idle_ms <= 0 ||
	    idle_ms < (uint64_t)p->idle_ms)
		return true;
	/* The default configuration's minInstances 0 applies where it can
	 * (local deployments), silently; a platform deployment's own. */
	if (deploy_check_idle_zero(w->d, id, "", cv.own, &f) != 0)
		return true;
	if (deploy_change(w->d, id, &c, wr_id, &f) != 0) {
		log_warn("autoscale", "%s idle for %llu s: cannot scale to "
			 "zero: %s", id, (unsigned long long)(idle_ms / 1000),
			 f.message);
		return false;
	}
	log_info("autoscale", "%s: no request for %llu s (idleSeconds "
		 "%lld): scaling to zero instances (%s)", id,
		 (unsigned long long)(idle_ms / 1000),
		 (long long)(p->idle_ms / 1000), wr_id);
	return true;
}

/*
 * A deployment at zero: true. If requests wait at the gateway for it (the
 * gateway's own call could not start an instance, e.g. while the scale to
 * zero was still under way), starts one now.
 */
static bool at_zero(struct autoscale_idle *w, const char *id,
		    const struct gateway_counters *gc)
{
	struct deploy_view *v;
	struct fault f = { 0 };
	bool zero;

	v = deploy_view_new(w->d, id, &f);
	if (v == NULL)
		return true;
	zero = v->count == 0;
	deploy_view_free(v);
	if (zero && gc->inflight > 0 && deploy_wake(w->d, id, &f) != 0)
		log_warn("autoscale", "%s: requests held: cannot start an "
			 "instance: %s", id, f.message);
	return zero;
}

static void tick(uv_timer_t *t)
{
	struct autoscale_idle *w = t->data;
	uint64_t now = uv_now(t->loop);

	w->nids = 0;
	deploy_each(w->d, NULL, collect, w);
	for (size_t i = 0; i < w->n; i++)
		w->v[i].live = false;
	for (size_t i = 0; i < w->nids; i++) {
		struct gateway_counters gc;
		struct seen *s = seen_find(w, w->ids[i], now);
		uint64_t act;

		if (s == NULL)
			continue;
		s->live = true;
		if (gateway_counters(w->gw, s->id, &gc) != 0)
			continue;
		if (at_zero(w, s->id, &gc))
			continue;
		act = gc.requests + gc.held;
		if (act != s->activity || gc.inflight > 0) {
			s->activity = act;
			s->since = now;
			continue;
		}
		if (!maybe_zero(w, s->id, now - s->since))
			s->since = now;
	}
	/* Forget deployments gone, at zero or busy: they start over. */
	for (size_t i = 0; i < w->n;) {
		if (!w->v[i].live)
			w->v[i] = w->v[--w->n];
		else
			i++;
	}
}

struct autoscale_idle *autoscale_idle_open(uv_loop_t *loop,
					   struct autoscale *a,
					   struct deploy *d,
					   struct gateway *gw)
{
	struct autoscale_idle *w = xcalloc(1, sizeof(*w));

	w->a = a;
	w->d = d;
	w->gw = gw;
	uv_timer_init(loop, &w->timer);
	w->timer.data = w;
	uv_timer_start(&w->timer, tick, IDLE_TICK_MS, IDLE_TICK_MS);
	return w;
}

static void closed(uv_handle_t *h)
{
	struct autoscale_idle *w = h->data;

	free(w->v);
	free(w->ids);
	free(w);
}

void autoscale_idle_close(struct autoscale_idle *w)
{
	if (w == NULL)
		return;
	uv_close((uv_handle_t *)&w->timer, closed);
}
