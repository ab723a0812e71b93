/*
 * gateway_notes.c - what a worker counts and tells the owner: a finished
 * request in its deployment's counters and in the sums for the observer,
 * and the notes (the sums, finished requests for the access log, log
 * lines, cold starts) queued for the owner's thread (see gateway_int.h).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "gateway/gateway_path.h"
#include "http/hparse.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xalloc.h"

static void note_request(struct client *c, uint64_t us);
static void obs_add(struct worker *gw, struct dep *d, int cls, uint64_t us);

const uint64_t gateway_lat_bounds_us[GATEWAY_LAT_BUCKETS] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
	250000, 500000, 1000000, 2500000, 5000000, UINT64_MAX,
};

static unsigned lat_bucket(uint64_t us)
{
	unsigned i = 0;

	while (i < GATEWAY_LAT_BUCKETS - 1 && us > gateway_lat_bounds_us[i])
		i++;
	return i;
}

/*
 * Counts a request that is over in its deployment's counters and its
 * instance's in-flight count, and in its deployment's sums for the observer
 * or a note for the access log. Runs before the last bytes of a complete
 * response go out, so that a client that has its answer finds it counted;
 * req_end() runs it for the others.
 */
void req_account(struct client *c)
{
	struct request *r = &c->req;
	uint64_t end = r->out_done ? r->t_end : uv_hrtime();
	uint64_t us = (end - r->t0) / 1000;
	int cls = r->status >= 100 && r->status < 600 ? r->status / 100 : 0;
	int want;

	if (r->accounted)
		return;
	r->accounted = true;
	want = __atomic_load_n(&c->gw->group->want, __ATOMIC_RELAXED);
	if (r->dep != NULL) {
		struct gateway_counters *k = &r->dep->ctr;

		SHARED_ADD(k->requests, 1);
		SHARED_ADD(k->by_class[cls], 1);
		if (cls != 0)
			SHARED_ADD(r->dep->by_status[r->status -
						     GATEWAY_STATUS_MIN], 1);
		SHARED_ADD(k->proxy_errors, r->gw_error);
		SHARED_ADD(k->latency_us_sum, us);
		SHARED_ADD(k->latency_hist[lat_bucket(us)], 1);
		SHARED_SUB(k->inflight, 1);
		if (want & WANT_OBSERVE)
			obs_add(c->gw, r->dep, cls, us);
	}
	if (want & WANT_ACCESS)
		note_request(c, us);
	req_release_inst(c->gw, r);
}

/* Notes, from the worker's thread to the owner's. */

/* Makes room for a note; NULL when the owner is too far behind. Under mu. */
struct note *note_new(struct worker *gw, enum note_kind kind)
{
	struct notes *ns = &gw->out;

	if (ns->n >= NOTES_MAX || ns->len >= (size_t)NOTES_MAX * 64)
		return NULL;
	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? ns->cap * 2 : 256;
		ns->v = xreallocarray(ns->v, ns->cap, sizeof(*ns->v));
	}
	ns->v[ns->n] = (struct note){ .kind = kind };
	for (int i = 0; i < 4; i++)
		ns->v[ns->n].str[i] = NOTE_NONE;
	return &ns->v[ns->n++];
}

/* Copies len bytes of s (NULL: none) into the notes; returns its offset.
 * Under mu. */
static uint32_t note_str(struct worker *gw, const char *s, size_t len)
{
	struct notes *ns = &gw->out;
	size_t off = ns->len;

	if (s == NULL)
		return NOTE_NONE;
	if (ns->len + len + 1 > ns->tcap) {
		while (ns->len + len + 1 > ns->tcap)
			ns->tcap = ns->tcap ? ns->tcap * 2 : 4096;
		ns->text = xrealloc(ns->text, ns->tcap);
	}
	memcpy(ns->text + off, s, len);
	ns->text[off + len] = '\0';
	ns->len += len + 1;
	return (uint32_t)off;
}

uint32_t note_cstr(struct worker *gw, const char *s)
{
	return note_str(gw, s, s != NULL ? strlen(s) : 0);
}

static void flush_cb(uv_timer_t *t)
{
	struct worker *gw = t->data;

	obs_flush(gw);
	uv_async_send(&gw->notify);
}

/*
 * Wakes the owner NOTES_DELAY_MS after a note went into an empty queue, so
 * that under load it wakes a hundred times a second, not once a request.
 * Once the gateway closes, or when its loop is over, at once.
 */
void note_posted(struct worker *gw, bool first)
{
	if (!first)
		return;
	if (gw->closing || gw->loop_over)
		uv_async_send(&gw->notify);
	else if (!uv_is_active((uv_handle_t *)&gw->flush))
		uv_timer_start(&gw->flush, flush_cb, NOTES_DELAY_MS, 0);
}

/*
 * Sums a finished request of d for the observer. The first since the last
 * note puts d on gw->observed (which holds a reference, so that a removed
 * deployment's sums are noted too) and makes sure the flush timer runs;
 * once the worker closes, the sums are noted at once.
 */
static void obs_add(struct worker *gw, struct dep *d, int cls, uint64_t us)
{
	struct gateway_observed *o = &d->obs;

	o->by_class[cls]++;
	o->latency_us_sum += us;
	if (us > o->latency_us_max)
		o->latency_us_max = us;
	if (o->requests++ > 0)
		return;
	d->refs++;
	list_add(gw->observed.prev, &d->observed);
	if (gw->closing || gw->loop_over) {
		obs_flush(gw);
		uv_async_send(&gw->notify);
	} else if (!uv_is_active((uv_handle_t *)&gw->flush)) {
		uv_timer_start(&gw->flush, flush_cb, NOTES_DELAY_MS, 0);
	}
}

/* Makes room for a sum in the notes. Under mu. */
static struct obs_note *obs_note_new(struct worker *gw)
{
	struct notes *ns = &gw->out;

	if (ns->nob == ns->obcap) {
		ns->obcap = ns->obcap ? ns->obcap * 2 : 16;
		ns->ob = xreallocarray(ns->ob, ns->obcap, sizeof(*ns->ob));
	}
	return &ns->ob[ns->nob++];
}

/*
 * Sums are noted whatever the queue's length: there is at most one a
 * deployment each NOTES_DELAY_MS, and a finished request is in the
 * observer's metrics exactly once.
 */
void obs_flush(struct worker *gw)
{
	struct link *l, *next;

	if (list_empty(&gw->observed))
		return;
	uv_mutex_lock(&gw->mu);
	for (l = gw->observed.next; l != &gw->observed; l = l->next) {
		struct dep *d = container_of(l, struct dep, observed);
		struct obs_note *n = obs_note_new(gw);

		n->dep = note_str(gw, d->id, d->id_len);
		n->o = d->obs;
		memset(&d->obs, 0, sizeof(d->obs));
	}
	uv_mutex_unlock(&gw->mu);
	for (l = gw->observed.next; l != &gw->observed; l = next) {
		next = l->next;
		list_del(l);
		dep_unref(container_of(l, struct dep, observed));
	}
}

/* Notes a finished request for the access log. */
static void note_request(struct client *c, uint64_t us)
{
	struct worker *gw = c->gw;
	const struct request *r = &c->req;
	const char *url = buf_str(&c->head.raw);
	size_t len = strcspn(url, "?");
	struct note *n;
	bool first = false;

	if (len > c->head.first_len)
		len = c->head.first_len;
	if (len > 512)
		len = 512;
	uv_mutex_lock(&gw->mu);
	n = note_new(gw, NOTE_REQUEST);
	if (n == NULL) {
		gw->unnoted++;
	} else {
		n->status = r->status;
		n->latency_us = us;
		n->str[0] = r->dep != NULL
				    ? note_str(gw, r->dep->id, r->dep->id_len)
				    : NOTE_NONE;
		n->str[1] = r->inst != NULL
				    ? note_str(gw, r->inst->id,
					       r->inst->id_len)
				    : NOTE_NONE;
		n->str[2] = note_cstr(gw, c->head.first_len > 0
						  ? hparse_method(&c->parser)
						  : "-");
		n->str[3] = note_str(gw, url, len);
		first = gw->out.n == 1;
	}
	uv_mutex_unlock(&gw->mu);
	note_posted(gw, first);
}

void gw_log(struct worker *gw, enum log_level level, const char *fmt,
	    ...)
{
	char msg[512];
	struct note *n;
	bool first = false;
	va_list ap;

	if ((int)level > (int)__atomic_load_n(&log_current_level,
					      __ATOMIC_RELAXED))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	uv_mutex_lock(&gw->mu);
	n = note_new(gw, NOTE_LOG);
	if (n != NULL) {
		n->status = (int)level;
		n->str[0] = note_cstr(gw, msg);
		first = gw->out.n == 1;
	}
	uv_mutex_unlock(&gw->mu);
	note_posted(gw, first);
}
