/*
 * gateway_timer.c - a client's one timer: the head's deadline, the body's
 * minimum rate, the response and idle timeouts, and lingering after a
 * graceful close. The timer re-arms itself lazily (client_touch() only
 * stamps the time).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "gateway/gateway_path.h"

static void client_check_pace(struct client *c);

/* Whether the client is sending a request: its head, then its body. */
static bool client_sending(const struct client *c)
{
	return c->req.active && !c->req.in_done && c->req.status == 0;
}

/* The timeout of the client's state: the head's deadline, then the end of
 * the body's rate window, while it sends a request; the response timeout
 * once its request is complete; else the idle timeout. */
static uint64_t client_timeout(const struct client *c)
{
	uint64_t now = uv_now(c->gw->loop), end;

	if (client_sending(c)) {
		end = c->head.done ? c->window_at + BODY_WINDOW_MS
				   : c->head_at + c->gw->lim.head_timeout_ms;
		return end > now ? end - now : 0;
	}
	return c->req.in_done && !c->req.out_done
		       ? c->gw->lim.response_timeout_ms
		       : c->gw->lim.idle_timeout_ms;
}

/* Arms the timer when the state changes, unless it already fires soon
 * enough (then it re-checks and re-arms itself). */
void client_arm(struct client *c)
{
	uint64_t tmo = client_timeout(c);

	if (c->closing)
		return;
	client_touch(c);
	if (uv_is_active((uv_handle_t *)&c->timer) && tmo >= c->armed)
		return;
	c->armed = tmo;
	uv_timer_start(&c->timer, client_timer_cb, tmo, 0);
}

void client_timer_cb(uv_timer_t *t)
{
	struct client *c = t->data;
	struct request *r = &c->req;

	uint64_t idle = uv_now(c->gw->loop) - c->active_at;

	if (c->closing) {
		client_close_handles(c);
	} else if (r->held) {
		if (hold_timer(c))
			client_settle(c);
	} else if (client_sending(c)) {
		client_check_pace(c);
	} else if (idle < client_timeout(c)) {
		c->armed = client_timeout(c) - idle;
		uv_timer_start(t, client_timer_cb, c->armed, 0);
	} else if (r->in_done && r->status == 0) {
		local_error(c, 504, "GatewayTimeout",
			    "instance of deployment %s did not answer in %"
			    PRIu64 " ms", r->dep ? r->dep->id : "?",
			    c->gw->lim.response_timeout_ms);
		client_settle(c);
	} else {
		client_close(c, false);
	}
}

/* Answers 408 to a request whose head or body is too slow, and closes
 * (or just closes, once a response has begun). */
static void client_too_slow(struct client *c, const char *what)
{
	struct request *r = &c->req;

	block_unref(c->pend);
	c->pend = NULL;
	r->keepalive = false;
	r->in_done = true;
	local_error(c, 408, "RequestTimeout", "%s", what);
	client_settle(c);
}

/* The timer of a client that sends a request: past the head's deadline,
 * or at the end of a body window slower than the minimum rate, 408. A
 * window in which the gateway held the body back (the instance read
 * slowly) does not count. */
static void client_check_pace(struct client *c)
{
	const struct gateway_limits *lim = &c->gw->lim;
	uint64_t left = client_timeout(c);

	if (left > 0) {
		c->armed = left;
		uv_timer_start(&c->timer, client_timer_cb, left, 0);
	} else if (!c->head.done) {
		client_too_slow(c, "the request head did not arrive in time");
	} else if (c->window_bytes >=
			   (uint64_t)lim->body_min_rate * BODY_WINDOW_MS / 1000 ||
		   c->req.throttled || c->pend != NULL) {
		c->window_at = uv_now(c->gw->loop);
		c->window_bytes = 0;
		c->armed = BODY_WINDOW_MS;
		uv_timer_start(&c->timer, client_timer_cb, BODY_WINDOW_MS, 0);
	} else {
		client_too_slow(c, "the request body arrived too slowly");
	}
}
