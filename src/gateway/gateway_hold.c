/*
 * gateway_hold.c - holding requests for a deployment that scales from
 * zero, until an instance is ready.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "gateway/gateway_path.h"
#include "http/hparse.h"

/*
 * Hold queue. A request for a deployment with no routable instance (scaled
 * to zero, or not ready yet) waits here instead of getting 503: the owner is
 * asked at once for an instance (a NOTE_COLD), and when routes with an
 * instance arrive the held requests are routed in order of arrival. The
 * request's body meanwhile waits in its retained writes (reading stops past
 * QUEUE_HIGH). Bounded by gw->hold: requests and bytes per deployment and in
 * total over every worker (counted in gateway.held: a request counts its
 * head and its declared body; a body of unknown length, chunked, counts as
 * the most read of it while held), and time;
 * beyond, 503 with Retry-After and the reason. A client that goes away
 * leaves the queue at once (req_end); a deployment removed meanwhile
 * answers its held requests 404.
 */

/* The most of a body the gateway reads while its request is held: past
 * QUEUE_HIGH retained, reading stops, after at most one more block. */
#define HELD_BODY_MAX ((uint64_t)QUEUE_HIGH + BLOCK_SIZE)

/* Asks the owner for an instance of d, once until d has one. */
static void hold_ask(struct worker *gw, struct dep *d)
{
	struct note *n;
	bool first = false;

	if (d->cold_asked)
		return;
	d->cold_asked = true;
	uv_mutex_lock(&gw->mu);
	n = note_new(gw, NOTE_COLD);
	if (n != NULL) {
		n->str[0] = note_cstr(gw, d->id);
		first = gw->out.n == 1;
	}
	uv_mutex_unlock(&gw->mu);
	note_posted(gw, first);
}

/* Holds c's request; true when held, or answered 503 past a limit; false
 * (for the caller's 503) when holding is off. Either way the owner is
 * asked for an instance: a retry then finds one. */
bool hold_add(struct client *c)
{
	static const char *const why[] = {
		[TALLY_FULL_N] = "requests held for this deployment",
		[TALLY_FULL_N_TOTAL] = "requests held in total",
		[TALLY_FULL_BYTES] = "bytes held for this deployment",
		[TALLY_FULL_BYTES_TOTAL] = "bytes held in total",
	};
	struct worker *gw = c->gw;
	struct request *r = &c->req;
	struct dep *d = r->dep;
	const struct gateway_hold *h = &gw->hold;
	const struct tally_max max = {
		.n = h->max_requests,
		.n_total = h->max_requests_total,
		.bytes = h->max_bytes,
		.bytes_total = h->max_bytes_total,
	};
	uint64_t bytes = c->head.raw.len;
	enum tally_full full;

	if (h->max_requests == 0 || h->timeout_ms == 0) {
		hold_ask(gw, d);
		return false;
	}
	if (hparse_has_length(&c->parser))
		bytes += hparse_length(&c->parser);
	else if (hparse_chunked(&c->parser))
		bytes += HELD_BODY_MAX;
	full = tally_take(&gw->group->held, d->id, bytes, &max, &r->held_ix);
	hold_ask(gw, d);
	if (full != TALLY_OK) {
		r->keepalive = false;
		local_error(c, 503, "HoldLimit", "deployment %s is starting "
			    "and the limit of %s is reached", d->id,
			    why[full]);
		return true;
	}
	r->held = true;
	r->held_at = uv_now(gw->loop);
	r->held_bytes = bytes;
	list_add(d->held.prev, &r->hold);
	SHARED_ADD(d->ctr.held, 1);
	c->armed = h->timeout_ms;
	uv_timer_start(&c->timer, client_timer_cb, h->timeout_ms, 0);
	return true;
}

/* Takes c's request out of the queue, if held, gives back what it counted
 * in gateway.held, and counts the wait. Every way out of the queue comes
 * here: routed (hold_release), timed out (hold_timer), deployment removed
 * (hold_gone), and the request's end however it comes (req_end: the client
 * gone or closed, the worker stopping or closing). */
void hold_drop(struct client *c)
{
	struct worker *gw = c->gw;
	struct request *r = &c->req;

	if (!r->held)
		return;
	r->held = false;
	list_del(&r->hold);
	tally_give(&gw->group->held, r->held_ix, r->held_bytes);
	SHARED_ADD(r->dep->ctr.held_done, 1);
	SHARED_ADD(r->dep->ctr.held_us_sum,
		   (uv_now(gw->loop) - r->held_at) * 1000);
}

/* The client's timer while held: true (and 503 sent) once the hold timed
 * out, else re-armed for the rest. */
bool hold_timer(struct client *c)
{
	struct request *r = &c->req;
	uint64_t waited = uv_now(c->gw->loop) - r->held_at;
	uint64_t tmo = c->gw->hold.timeout_ms;

	if (waited < tmo) {
		c->armed = tmo - waited;
		uv_timer_start(&c->timer, client_timer_cb, c->armed, 0);
		return false;
	}
	hold_drop(c);
	r->keepalive = false;
	local_error(c, 503, "HoldTimeout", "deployment %s had no ready "
		    "instance within %" PRIu64 " ms", r->dep->id, tmo);
	return true;
}

static struct client *hold_first(struct dep *d)
{
	return container_of(d->held.next, struct client, req.hold);
}

/* Routes d's held requests, oldest first, once d has an instance. */
void hold_release(struct dep *d)
{
	if (d->n == 0)
		return;
	d->cold_asked = false;
	while (!list_empty(&d->held)) {
		struct client *c = hold_first(d);

		hold_drop(c);
		client_arm(c);
		req_route(c);
		client_settle(c);
	}
}

/* Answers d's held requests 404: d was removed. */
void hold_gone(struct dep *d)
{
	while (!list_empty(&d->held)) {
		struct client *c = hold_first(d);

		hold_drop(c);
		c->req.keepalive = false;
		local_error(c, 404, "NotFound", "deployment %s was deleted "
			    "while the request waited for an instance", d->id);
		client_settle(c);
	}
}
