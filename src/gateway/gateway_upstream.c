/*
 * gateway_upstream.c - the upstream side of the data path: connections to
 * the instances and their per-instance pools, writing the request toward
 * the instance (and keeping it for a replay), reading and forwarding the
 * response, and what a lost connection means for its request. See
 * gateway.c for the life of an upstream connection.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "gateway/gateway_path.h"
#include "http/hparse.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xalloc.h"

static void up_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void up_connect_cb(uv_connect_t *req, int status);
static const struct hparse_settings ures_settings;

/* Pool and reading. */

static struct upconn *pool_pop(struct inst *in)
{
	struct upconn *up;

	if (list_empty(&in->idle))
		return NULL;
	up = container_of(in->idle.next, struct upconn, idle);
	list_del(&up->idle);
	in->nidle--;
	up->state = UP_ACTIVE;
	up->reused = true;
	return up;
}

static void up_alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	struct upconn *up = h->data;
	struct block *b = block_get(up->gw);

	(void)size;
	*buf = uv_buf_init(b->data, BLOCK_SIZE);
}

void up_update_read(struct upconn *up)
{
	bool want = up->state == UP_IDLE ||
		    (up->state == UP_ACTIVE &&
		     (up->client == NULL || !up->client->out_throttled));

	set_reading((uv_stream_t *)&up->tcp, &up->reading, want, up_alloc_cb,
		    up_read_cb);
}

static void req_throttle(struct client *c)
{
	struct request *r = &c->req;

	if (r->up_queued >= QUEUE_HIGH) {
		r->throttled = true;
	} else if (r->throttled && r->up_queued <= QUEUE_LOW) {
		r->throttled = false;
		if (!c->in_parse)
			client_update_read(c);
	}
}

/* Writes toward the upstream. */

static inline void up_write_done(struct upconn *up, struct wreq *w,
				 int status)
{
	struct client *c = up->client;

	up->nwrites--;
	if (c != NULL)
		c->req.up_queued -= w->bytes;
	if (w->retained)
		w->state = W_DONE;
	else
		wreq_put(w);
	if (status < 0 && status != UV_ECANCELED)
		up_close(up);
	if (c != NULL && !c->closing) {
		client_touch(c);
		req_throttle(c);
	}
}

static void up_write_cb(uv_write_t *req, int status)
{
	up_write_done(req->handle->data,
		      container_of(req, struct wreq, req), status);
}

static void up_submit(struct upconn *up, struct wreq *w)
{
	int rc;

	w->state = W_INFLIGHT;
	up->nwrites++;
	rc = wreq_write(w, (uv_stream_t *)&up->tcp, up_write_cb);
	/* Bytes handed to the kernel may reach the instance even if the
	 * connection fails later: from here on the request counts as sent. */
	if (rc >= 0 && w->bytes > 0)
		up->sent = true;
	if (rc != 0)
		up_write_done(up, w, rc > 0 ? 0 : rc);
}

/* Drops the writes kept for a replay; those in flight free themselves. */
void req_unretain(struct request *r)
{
	struct wreq *w = r->rq_head, *next;

	for (; w != NULL; w = next) {
		next = w->next;
		w->next = NULL;
		w->retained = false;
		if (w->state == W_INFLIGHT)
			continue;
		if (w->state == W_PENDING)
			r->up_queued -= w->bytes;
		wreq_put(w);
	}
	r->rq_head = r->rq_tail = r->headw = NULL;
	r->retained = 0;
	r->retain = false;
}

static bool up_writable(const struct upconn *up)
{
	return up != NULL && up->state == UP_ACTIVE;
}

/* Sends what waited for the connection, or all again on a replay. */
static void req_submit_retained(struct client *c)
{
	struct request *r = &c->req;

	for (struct wreq *w = r->rq_head; w != NULL && up_writable(r->up);
	     w = w->next) {
		if (w->state == W_DONE) {
			r->up_queued += w->bytes;
			up_submit(r->up, w);
		} else if (w->state == W_PENDING) {
			up_submit(r->up, w);
		}
	}
	req_throttle(c);
}

void up_flush(struct client *c)
{
	struct request *r = &c->req;
	struct wreq *w = r->ub;

	if (w == NULL)
		return;
	r->ub = NULL;
	if (w->bytes == 0 || r->discard ||
	    (!r->retain && !up_writable(r->up))) {
		wreq_put(w);
		return;
	}
	w->state = W_PENDING;
	r->up_queued += w->bytes;
	if (r->retain) {
		w->retained = true;
		if (r->rq_tail != NULL)
			r->rq_tail->next = w;
		else
			r->rq_head = w;
		r->rq_tail = w;
		r->retained += w->bytes;
	}
	if (up_writable(r->up))
		up_submit(r->up, w);
	if (r->retain && r->retained > RETAIN_MAX && up_writable(r->up))
		req_unretain(r);
	req_throttle(c);
}

struct wreq *up_batch(struct client *c)
{
	struct request *r = &c->req;

	if (r->ub != NULL && wreq_full(r->ub))
		up_flush(c);
	if (r->ub == NULL)
		r->ub = wreq_get(c->gw);
	return r->ub;
}

static struct upconn *up_new(struct worker *gw, struct inst *in)
{
	struct upconn *up = xcalloc(1, sizeof(*up));
	struct sockaddr_in sa;
	int rc;

	up->gw = gw;
	up->inst = in;
	up->port = in->port;
	in->refs++;
	list_init(&up->idle);
	list_add(&gw->ups, &up->link);
	buf_init(&up->head.raw, HEAD_MAX);
	uv_tcp_init(gw->loop, &up->tcp);
	up->tcp.data = up;
	up->state = UP_CONNECTING;
	uv_tcp_nodelay(&up->tcp, 1);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = in->addr;
	sa.sin_port = htons(in->port);
	rc = uv_tcp_connect(&up->connect, &up->tcp,
			    (const struct sockaddr *)&sa, up_connect_cb);
	if (rc != 0) {
		gw_log(gw, LOG_WARN, "connect to instance %s (port %u): %s",
		       in->id, (unsigned)in->port, uv_strerror(rc));
		up_close(up);
	}
	return up;
}

/* Gives the request a connection to its instance: pooled or new. */
void req_attach(struct client *c, bool pooled)
{
	struct request *r = &c->req;
	struct upconn *up = pooled ? pool_pop(r->inst) : NULL;

	if (up == NULL)
		up = up_new(c->gw, r->inst);
	up->client = c;
	up->got_bytes = false;
	up->sent = false;
	up->keepalive = false;
	up->resp_done = false;
	hparse_init(&up->parser, HPARSE_RESPONSE, &ures_settings, up);
	head_reset(&up->head);
	r->up = up;
	if (up_writable(up)) {
		up_update_read(up);
		req_submit_retained(c);
	}
}

/* Decides what a lost upstream connection means for its request: another
 * instance, one replay, a 502, or the end of the client connection. */
static void req_upstream_lost(struct client *c, const struct upconn *up)
{
	struct request *r = &c->req;

	if (c->closing || !r->active || r->out_done)
		return;
	if (!up->connected && r->retain) {
		if (!up->inst->down)
			gw_log(c->gw, LOG_WARN, "instance %s (port %u) of %s "
			       "is unreachable", up->inst->id,
			       (unsigned)up->port, r->dep->id);
		up->inst->down = true;
		req_release_inst(c->gw, r);
		req_route(c);
	} else if (up->reused && !up->got_bytes && r->retain && !r->retried &&
		   (!up->sent || !r->unsafe ||
		    r->dep->replay == GATEWAY_REPLAY_ALL)) {
		r->retried = true;
		req_attach(c, false);
	} else if (r->status == 0) {
		local_error(c, 502, "BadGateway",
			    "instance %s of deployment %s failed%s",
			    up->inst->id, r->dep->id,
			    r->unsafe && up->sent && up->reused
			    ? " (the request may have run: it is not replayed)"
			    : "");
	} else {
		client_close(c, false);
		return;
	}
	client_settle(c);
}

/* The upstream's response parser. */

static int ures_begin(struct hparse *p)
{
	struct upconn *up = p->data;

	head_reset(&up->head);
	return 0;
}

static int ures_status(struct hparse *p, const char *at, size_t len)
{
	struct upconn *up = p->data;

	return head_first(&up->head, at, len, 1024, 502);
}

static int ures_field(struct hparse *p, const char *at, size_t len)
{
	return head_field(&((struct upconn *)p->data)->head, at, len);
}

static int ures_value(struct hparse *p, const char *at, size_t len)
{
	return head_value(&((struct upconn *)p->data)->head, at, len);
}

/* Forwards the response head, choosing how the body goes to the client. */
static int ures_headers(struct hparse *p)
{
	struct upconn *up = p->data;
	struct client *c = up->client;
	struct request *r = &c->req;
	unsigned status = hparse_status(p);
	bool skip, c11 = client_http11(c), drop_te = false, add_te = false;

	up->head.done = true;
	if (status < 100 || status == 101)
		return -1;
	if (status < 200) {
		if (c11 && build_resp_head(c, up, client_batch(c), false,
					   false, false) != 0)
			return -1;
		return 1;
	}
	skip = r->head_method || status == 204 || status == 304;
	if (skip) {
		r->out_frame = FRAME_NONE;
	} else if (hparse_chunked(p)) {
		r->out_frame = c11 ? FRAME_CHUNKED : FRAME_RAW;
		drop_te = !c11;
		if (!c11)
			r->keepalive = false;
	} else if (hparse_has_length(p)) {
		r->out_frame = FRAME_RAW;
	} else {
		/* Delimited by the upstream closing: chunked to the client
		 * when it can take it, else delimited by our close too. */
		r->out_frame = c11 ? FRAME_CHUNKED : FRAME_RAW;
		add_te = c11;
		if (!c11)
			r->keepalive = false;
	}
	if (build_resp_head(c, up, client_batch(c), true, drop_te, add_te) !=
	    0)
		return -1;
	r->resp_head = true;
	r->status = (int)status;
	return skip ? 1 : 0;
}

static int ures_body(struct hparse *p, const char *at, size_t len)
{
	struct upconn *up = p->data;
	struct client *c = up->client;
	struct wreq *w = client_batch(c);

	if (c->req.out_frame == FRAME_CHUNKED) {
		wreq_chunk(w, len);
		wreq_ref(w, up->cur, at, len);
		wreq_copy(w, "\r\n", 2);
	} else {
		wreq_ref(w, up->cur, at, len);
	}
	return 0;
}

static int ures_complete(struct hparse *p)
{
	struct upconn *up = p->data;
	struct request *r = &up->client->req;

	if (hparse_status(p) < 200)
		return 0;
	if (r->out_frame == FRAME_CHUNKED)
		wreq_copy(client_batch(up->client), "0\r\n\r\n", 5);
	r->out_done = true;
	r->t_end = uv_hrtime();
	up->resp_done = true;
	up->keepalive = hparse_keep_alive(p);
	hparse_pause(p, true);
	return 0;
}

static const struct hparse_settings ures_settings = {
	.whole_heads = true, /* build_resp_head() takes them as they are */
	.on_message_begin = ures_begin,
	.on_status = ures_status,
	.on_header_field = ures_field,
	.on_header_value = ures_value,
	.on_headers_complete = ures_headers,
	.on_body = ures_body,
	.on_message_complete = ures_complete,
};

static void up_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct upconn *up = s->data;
	struct client *c = up->client;
	struct block *b = block_of(buf);
	enum hparse_error err;
	size_t n;

	if (nread == 0 || up->state == UP_CLOSING) {
		block_unref(b);
		return;
	}
	if (nread < 0 || c == NULL) {
		/* An idle connection closed or spoke out of turn, or the
		 * upstream closed: the end of a close-delimited body, or an
		 * error the close callback sorts out. */
		block_unref(b);
		if (c != NULL && nread == UV_EOF && c->req.resp_head &&
		    !c->req.out_done) {
			up->cur = NULL;
			hparse_execute(&up->parser, NULL, 0);
			if (c->req.out_done) {
				up->keepalive = false;
				client_settle(c);
				return;
			}
		}
		up_close(up);
		return;
	}
	b->len = (uint32_t)nread;
	up->got_bytes = true;
	if (c->req.retain)
		req_unretain(&c->req);
	up->cur = b;
	n = hparse_execute(&up->parser, b->data, (size_t)nread);
	up->cur = NULL;
	block_unref(b);
	err = hparse_error(&up->parser);
	if (err == HPARSE_PAUSED && n < (size_t)nread)
		up->keepalive = false; /* bytes past the response */
	if (err != HPARSE_OK && err != HPARSE_PAUSED) {
		gw_log(up->gw, LOG_WARN,
		       "instance %s (port %u): bad response: %s",
		       up->inst->id, (unsigned)up->port,
		       hparse_error_text(&up->parser));
		client_flush(c);
		up_close(up);
		return;
	}
	client_touch(c);
	client_settle(c);
}

/* Upstream connection life. */

static void up_connect_cb(uv_connect_t *req, int status)
{
	struct upconn *up = container_of(req, struct upconn, connect);
	struct client *c = up->client;

	if (up->state == UP_CLOSING)
		return;
	if (status < 0) {
		gw_log(up->gw, LOG_DEBUG, "connect to port %u: %s",
		       (unsigned)up->port, uv_strerror(status));
		up_close(up);
		return;
	}
	up->state = UP_ACTIVE;
	up->connected = true;
	up->inst->down = false;
	if (c == NULL) {
		up_close(up);
		return;
	}
	up_update_read(up);
	req_submit_retained(c);
	client_touch(c);
}

void up_close_cb(uv_handle_t *h)
{
	struct upconn *up = h->data;
	struct worker *gw = up->gw;
	struct client *c = up->client;

	list_del(&up->link);
	if (c != NULL) {
		c->req.up = NULL;
		if (!gw->closing)
			req_upstream_lost(c, up);
	}
	inst_unref(up->inst, gw);
	head_free(&up->head);
	free(up);
}
