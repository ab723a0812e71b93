/*
 * gateway_route.c - routing a request: the least-outstanding choice among
 * its deployment's instances not tried yet (core/route.h), and the request
 * head written for the instance chosen. A deployment with no instance
 * holds the request instead (gateway_hold.c).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/route.h"
#include "gateway/gateway_path.h"
#include "http/hparse.h"
#include "util/buf.h"
#include "util/err.h"

/* Writes v as 16 hex digits at p, a byte (two digits) at a time. */
static void put_hex(char *p, uint64_t v)
{
	static const char digit[] = "0123456789abcdef";

	for (int i = 14; i >= 0; i -= 2, v >>= 8) {
		p[i] = digit[(v >> 4) & 15];
		p[i + 1] = digit[v & 15];
	}
}

/* Writes the request head for an instance into w. */
static int build_req_head(struct client *c, struct wreq *w,
			  const struct inst *in)
{
	const struct head *h = &c->head;
	const struct request *r = &c->req;
	const char *raw = buf_str(&h->raw);
	const struct hdr *xff = NULL;
	struct buf *o = &w->own;
	unsigned conn = conn_tokens(h);
	bool ok, rid = false;

	ok = buf_add(o, r->method, r->method_len) == 0 &&
	     buf_add(o, " ", 1) == 0;
	if (r->path_len > 0)
		ok = ok && buf_add(o, raw + r->path_off, r->path_len) == 0;
	else
		ok = ok && buf_add(o, "/", 1) == 0;
	if (r->query_len > 0)
		ok = ok && buf_add(o, "?", 1) == 0 &&
		     buf_add(o, raw + r->query_off, r->query_len) == 0;
	ok = ok && buf_addstr(o, " HTTP/1.1\r\n") == 0;
	for (uint32_t i = 0; ok && i < h->n; i++) {
		const struct hdr *x = &h->h[i];

		if (xff == NULL && HDR_IS(h, x, "x-forwarded-for")) {
			xff = x;
			continue;
		}
		if (HDR_IS(h, x, "x-request-id"))
			rid = true;
		if (HDR_IS(h, x, "host") || hdr_dropped(h, x, conn))
			continue;
		ok = put_hdr(o, h, x);
	}
	ok = ok && buf_add(o, in->host, in->host_len) == 0 &&
	     buf_addstr(o, "X-Forwarded-For: ") == 0;
	if (ok && xff != NULL)
		ok = buf_add(o, raw + xff->val, xff->val_len) == 0 &&
		     buf_add(o, ", ", 2) == 0;
	ok = ok && buf_add(o, c->ip, c->ip_len) == 0 &&
	     buf_add(o, "\r\n", 2) == 0;
	if (ok && !rid) {
		char id[48] = "X-Request-Id: ";

		/* The worker's seed, then the request's number. */
		memcpy(id + 14, c->gw->rid_seed_hex, 16);
		put_hex(id + 30, r->rid);
		memcpy(id + 46, "\r\n", 2);
		ok = buf_add(o, id, sizeof(id)) == 0;
	}
	ok = ok && buf_add(o, "\r\n", 2) == 0;
	if (!ok)
		return MDS_E_LIMIT;
	wreq_own(w, 0);
	return 0;
}

/* (Re)writes the retained request head for the instance chosen. */
static int req_head(struct client *c, const struct inst *in)
{
	struct request *r = &c->req;
	struct wreq *w = r->headw;
	size_t old = 0;
	int rc;

	if (w == NULL) {
		w = wreq_get(c->gw);
		w->state = W_PENDING;
		w->retained = true;
		w->next = r->rq_head;
		r->rq_head = w;
		if (r->rq_tail == NULL)
			r->rq_tail = w;
		r->headw = w;
	} else {
		old = w->bytes;
		wreq_clear(w);
	}
	rc = build_req_head(c, w, in);
	if (w->state == W_PENDING)
		r->up_queued = r->up_queued - old + w->bytes;
	r->retained = r->retained - old + w->bytes;
	return rc;
}

/* Picks the least loaded instance not tried yet; NULL when none is left. */
static struct inst *req_pick(struct request *r)
{
	struct dep *d = r->dep;
	int i;

	if (d->n == 0 || r->ntried >= d->n || r->ntried >= MAX_TRIES)
		return NULL;
	for (size_t k = 0; k < d->n; k++) {
		d->load[k] = __atomic_load_n(&d->ups[k]->sh->outstanding,
					     __ATOMIC_RELAXED);
		for (unsigned t = 0; t < r->ntried; t++)
			if (r->tried[t] == d->ups[k])
				d->load[k] = UINT32_MAX;
	}
	i = route_pick(d->load, d->n, &d->cursor);
	return d->load[i] == UINT32_MAX ? NULL : d->ups[i];
}

void req_route(struct client *c)
{
	struct request *r = &c->req;
	struct inst *in = req_pick(r);

	if (in == NULL) {
		if (r->ntried == 0 && r->dep->n == 0 && r->dep->holdable &&
		    hold_add(c))
			return;
		if (r->ntried == 0)
			local_error(c, 503, "NoReadyInstance",
				    "deployment %s has no ready instance",
				    r->dep->id);
		else
			local_error(c, 502, "BadGateway",
				    "no instance of deployment %s could be "
				    "reached", r->dep->id);
		return;
	}
	r->tried[r->ntried++] = in;
	r->inst = in;
	SHARED_ADD(in->inflight, 1);
	__atomic_fetch_add(&in->sh->outstanding, 1, __ATOMIC_RELAXED);
	in->refs++;
	if (req_head(c, in) != 0) {
		r->keepalive = false;
		local_error(c, 431, "RequestHeaderFieldsTooLarge",
			    "request head too large");
		return;
	}
	req_attach(c, true);
}
