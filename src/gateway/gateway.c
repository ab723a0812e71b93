/*
 * gateway.c - the reverse proxy in front of the model instances; see
 * gateway.h.
 *
 * The data path of one worker (see gateway_int.h for the threads and what
 * they share, gateway_owner.c for the owner's side). This file is its
 * client side: reading and parsing requests, writing responses, and a
 * request's end; gateway_path.h lists the other files of the data path
 * (the upstream side, routing, holding, timers, ...). One struct worker
 * holds everything of one loop: the listener, the client and upstream
 * connections, the routing table, the per-instance pools of idle upstream
 * connections, and two free lists (read blocks, write requests), so that
 * the steady state allocates nothing per request. Each worker's loop runs
 * on a thread of its own, so that nothing the rest of the daemon does on
 * its loop (an SQLite fsync, evaluating thousands of alarms, a large API
 * response) delays a request.
 *
 * Data path. Every read lands in a refcounted 64 KiB block and the HTTP
 * parser runs over it. Heads are copied (they outlive the read and get rewritten);
 * body bytes are not: each on_body slice is referenced in place (the block's
 * count goes up until the write completes), or copied when it is short. The
 * slices of one read go out as one writev (uv_try_write, the rest queued),
 * re-framed: a Content-Length body as is, a chunked one as chunks of what
 * on_body gave. Past QUEUE_HIGH bytes not yet written on one side, the other
 * side stops reading until the queue drains below QUEUE_LOW.
 *
 * Client connection: head -> routed, body streamed upstream -> request
 * complete (the parser pauses; input that arrives meanwhile, a pipelined
 * request, is held in its one block and reading stops) -> response
 * forwarded -> next request, or close. A request ends when both its message
 * and its response are complete. Timeouts use one timer per client that
 * re-arms itself lazily.
 *
 * Upstream connection: connecting -> active (serving one request) -> idle in
 * its instance's pool (LIFO) -> reused, or closed. Until the first response
 * byte a request keeps every write it sent (up to RETAIN_MAX bytes) so it can
 * be replayed: on another instance when the connect failed, or once on a
 * fresh connection when a reused one died before answering. The second is
 * done only for what may run twice (as nginx does by default): a request
 * none of whose bytes was sent, or an idempotent method, unless the
 * deployment allows every replay (gateway_set_replay()). That decision is
 * taken in the upstream's close callback, when all its writes have called
 * back and may be written again.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "core/route.h"
#include "gateway/gateway.h"
#include "gateway/gateway_int.h"
#include "gateway/gateway_path.h"
#include "http/tls.h"
#include "http/hparse.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/jsonstr.h"
#include "util/log.h"
#include "util/xalloc.h"

static void client_process(struct client *c);
static void client_read_cb(uv_stream_t *s, ssize_t nread,
			   const uv_buf_t *buf);

/* Deployments. */

/* Finds the deployment a path segment names: an id first, else a name. */
static struct dep *dep_route(const struct worker *gw, const char *seg,
			     size_t len)
{
	struct dep *by_name = NULL;

	for (struct link *l = gw->deps.next; l != &gw->deps; l = l->next) {
		struct dep *d = container_of(l, struct dep, link);

		if (d->id_len == len && memcmp(d->id, seg, len) == 0)
			return d;
		if (by_name == NULL && d->name != NULL &&
		    d->name_len == len && memcmp(d->name, seg, len) == 0)
			by_name = d;
	}
	return by_name;
}

/* Reading. */

static void client_alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	struct client *c = h->data;
	struct block *b = block_get(c->gw);

	(void)size;
	*buf = uv_buf_init(b->data, c->tls ? TLS_READ_MAX : BLOCK_SIZE);
}

/*
 * Reads from the client unless the upstream is behind or unparsed input is
 * held: a pipelined request waits in its one block until the current one is
 * done. Reading on while a response is pending spares two epoll_ctl calls
 * per request and notices a client that resets.
 */
void client_update_read(struct client *c)
{
	bool want;

	if (c->handles_closed)
		return;
	want = !c->eof &&
	       (c->closing || (c->pend == NULL && !c->req.throttled));
	set_reading((uv_stream_t *)&c->tcp, &c->reading, want,
		    client_alloc_cb, client_read_cb);
}

/* Writes toward the client. */

static void client_write_cb(uv_write_t *req, int status)
{
	struct wreq *w = container_of(req, struct wreq, req);
	struct client *c = req->handle->data;

	c->out_queued -= w->bytes;
	wreq_put(w);
	if (status < 0) {
		client_close(c, false);
		return;
	}
	if (c->out_throttled && c->out_queued <= QUEUE_LOW) {
		c->out_throttled = false;
		if (c->req.up != NULL)
			up_update_read(c->req.up);
	}
	if (c->req.active && !c->req.out_done)
		client_touch(c);
}

static void tls_write_cb(uv_write_t *req, int status)
{
	struct tls_write *t = container_of(req, struct tls_write, req);
	struct client *c = req->handle->data;

	c->out_queued -= t->len;
	free(t->data);
	free(t);
	if (status < 0) {
		client_close(c, false);
		return;
	}
	if (c->out_throttled && c->out_queued <= QUEUE_LOW) {
		c->out_throttled = false;
		if (c->req.up != NULL)
			up_update_read(c->req.up);
	}
	if (c->req.active && !c->req.out_done)
		client_touch(c);
}

/* TLS: queues the ciphertext waiting in the client's session. Returns 0,
 * or a negative code (the caller marks the client broken). */
static int tls_send(struct client *c)
{
	struct tls_write *t;
	uv_buf_t b;
	char *data;
	size_t len = tls_conn_take_out(c->tls, &data);

	if (len == 0)
		return 0;
	t = xcalloc(1, sizeof(*t));
	t->data = data;
	t->len = len;
	b = uv_buf_init(data, (unsigned)len);
	if (uv_write(&t->req, (uv_stream_t *)&c->tcp, &b, 1,
		     tls_write_cb) < 0) {
		free(data);
		free(t);
		return MDS_E_SYS;
	}
	c->out_queued += len;
	return 0;
}

/* TLS: encrypts the batch w (released here) and queues the records. */
static int tls_flush(struct client *c, struct wreq *w)
{
	int rc = 0;

	for (unsigned k = 0; k < w->n && rc == 0; k++) {
		const struct slice *sl = &w->s[k];

		rc = tls_conn_write(c->tls, sl->blk ? sl->blk->data + sl->off
						    : w->own.data + sl->off,
				    sl->len);
	}
	wreq_put(w);
	return rc != 0 ? rc : tls_send(c);
}

void client_flush(struct client *c)
{
	struct wreq *w = c->cb;
	int rc;

	if (w == NULL)
		return;
	c->cb = NULL;
	if (w->bytes == 0 || c->closing || c->broken) {
		wreq_put(w);
		return;
	}
	if (c->tls != NULL) {
		c->broken = tls_flush(c, w) != 0;
		if (c->out_queued >= QUEUE_HIGH && !c->out_throttled) {
			c->out_throttled = true;
			if (c->req.up != NULL)
				up_update_read(c->req.up);
		}
		return;
	}
	w->state = W_INFLIGHT;
	rc = wreq_write(w, (uv_stream_t *)&c->tcp, client_write_cb);
	if (rc != 0) {
		/* Written at once, or failed: closing here could pull state
		 * from under a parser callback; the next safe point does. */
		c->broken = rc < 0;
		wreq_put(w);
		return;
	}
	c->out_queued += w->bytes;
	if (c->out_queued >= QUEUE_HIGH && !c->out_throttled) {
		c->out_throttled = true;
		if (c->req.up != NULL)
			up_update_read(c->req.up);
	}
}

struct wreq *client_batch(struct client *c)
{
	if (c->cb != NULL && wreq_full(c->cb))
		client_flush(c);
	if (c->cb == NULL)
		c->cb = wreq_get(c->gw);
	return c->cb;
}

/* Requests: errors made here, ending. */

void req_release_inst(struct worker *gw, struct request *r)
{
	if (r->inst == NULL)
		return;
	SHARED_SUB(r->inst->inflight, 1);
	__atomic_fetch_sub(&r->inst->sh->outstanding, 1, __ATOMIC_RELAXED);
	inst_unref(r->inst, gw);
	r->inst = NULL;
}

/* Lets go of the upstream: back to its pool if it can serve again. */
static void req_release_up(struct client *c, bool reusable)
{
	struct request *r = &c->req;
	struct upconn *up = r->up;
	struct inst *in;

	if (up == NULL)
		return;
	r->up = NULL;
	up->client = NULL;
	in = up->inst;
	if (reusable && up->state == UP_ACTIVE && up->keepalive &&
	    up->resp_done && up->nwrites == 0 && in->routed &&
	    in->nidle < c->gw->lim.max_idle_per_instance && !c->gw->closing &&
	    !c->gw->draining) {
		up->state = UP_IDLE;
		list_add(&in->idle, &up->idle);
		in->nidle++;
		up_update_read(up);
		return;
	}
	up_close(up);
}

void local_error(struct client *c, int status, const char *code,
		 const char *fmt, ...)
{
	struct request *r = &c->req;
	char msg[384];
	struct buf body;
	struct wreq *w;
	size_t from;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Always fits: the code is a short constant, msg is capped. */
	buf_init(&body, sizeof(msg) * JSONSTR_MAX_GROWTH + 96);
	buf_printf(&body, "{\"code\":\"%s\",\"message\":\"", code);
	jsonstr_escape(&body, msg);
	buf_addstr(&body, "\"}");

	req_unretain(r);
	wreq_put(r->ub);
	r->ub = NULL;
	if (r->up != NULL) {
		struct upconn *up = r->up;

		r->up = NULL;
		up->client = NULL;
		up_close(up);
	}
	req_release_inst(c->gw, r);
	r->up_queued = 0;
	r->throttled = false;
	r->discard = true;

	w = client_batch(c);
	from = w->own.len;
	if (buf_printf(&w->own, "HTTP/1.1 %d %s\r\n"
		       "Content-Type: application/json\r\n"
		       "Content-Length: %zu\r\n%s%s\r\n%s", status,
		       hparse_reason(status), body.len,
		       status == 503 ? "Retry-After: 1\r\n" : "",
		       r->keepalive ? (client_http11(c) ? ""
				       : "Connection: keep-alive\r\n")
				    : "Connection: close\r\n",
		       buf_str(&body)) == 0)
		wreq_own(w, from);
	buf_free(&body);
	r->status = status;
	r->gw_error = status >= 502 && status <= 504;
	r->out_done = true;
	r->t_end = uv_hrtime();
}

/* Accounts the request if both its directions are complete. */
static void req_account_done(struct client *c)
{
	if (c->req.active && c->req.in_done && c->req.out_done)
		req_account(c);
}

/* Accounts a request that is over and frees what it held. */
static void req_end(struct client *c)
{
	struct request *r = &c->req;

	hold_drop(c);
	req_account(c);
	if (r->dep != NULL)
		dep_unref(r->dep);
	req_release_up(c, r->in_done && r->out_done);
	req_unretain(r);
	wreq_put(r->ub);
	memset(r, 0, sizeof(*r));
	r->retain = true;
}

/* Ends the request once both directions are complete; then the client
 * goes on with its next request or closes. */
static inline void req_maybe_finish(struct client *c)
{
	struct request *r = &c->req;
	bool keep;

	if (c->closing || !r->active || !r->in_done || !r->out_done)
		return;
	keep = r->keepalive && !c->gw->closing && !c->gw->draining &&
	       !c->eof;
	req_end(c);
	if (!keep) {
		client_close(c, true);
		return;
	}
	client_arm(c);
	if (!c->in_parse)
		client_process(c);
}

/* Moves a request on after something happened outside its parser. */
void client_settle(struct client *c)
{
	if (c->closing)
		return;
	up_flush(c);
	req_account_done(c);
	client_flush(c);
	if (c->broken) {
		client_close(c, false);
		return;
	}
	req_maybe_finish(c);
	if (!c->closing && !c->in_parse)
		client_update_read(c);
}

/* The client's request parser. */

static int creq_begin(struct hparse *p)
{
	struct client *c = p->data;

	head_reset(&c->head);
	c->req.active = true;
	c->req.t0 = uv_hrtime();
	c->head_at = uv_now(c->gw->loop);
	c->arm_due = true;
	return 0;
}

static int creq_url(struct hparse *p, const char *at, size_t len)
{
	struct client *c = p->data;

	return head_first(&c->head, at, len, URL_MAX, 414);
}

static int creq_field(struct hparse *p, const char *at, size_t len)
{
	return head_field(&((struct client *)p->data)->head, at, len);
}

static int creq_value(struct hparse *p, const char *at, size_t len)
{
	return head_value(&((struct client *)p->data)->head, at, len);
}

/* Takes a head the parser read whole (hparse_whole()) into h as the
 * callbacks above would have. Returns -1 (h->overflow set) past a limit. */
static int creq_whole(struct head *h, const struct hparse_whole *wh)
{
	const char *d = wh->data;

	if (head_first(h, d + wh->first_off, wh->first_len, URL_MAX, 414) != 0)
		return -1;
	for (unsigned k = 0; k < wh->n; k++) {
		const struct hparse_field *x = &wh->f[k];

		if (head_field(h, d + x->name, x->nlen) != 0 ||
		    head_value(h, d + x->val, x->vlen) != 0)
			return -1;
	}
	return 0;
}

/* Whether the request's method is name. */
#define method_is(r, name) \
	((r)->method_len == sizeof(name) - 1 && \
	 memcmp((r)->method, (name), sizeof(name) - 1) == 0)

static int creq_headers(struct hparse *p)
{
	struct client *c = p->data;
	struct request *r = &c->req;
	const struct hparse_whole *wh = hparse_whole(p);
	const char *url, *path, *seg;
	struct hparse_url u;
	size_t plen, slen;

	if (wh != NULL && creq_whole(&c->head, wh) != 0)
		return -1;
	url = buf_str(&c->head.raw);
	c->head.done = true;
	c->window_at = uv_now(c->gw->loop);
	c->window_bytes = 0;
	c->arm_due = true;
	r->keepalive = hparse_keep_alive(p) && !c->gw->closing &&
		       !c->gw->draining;
	r->method = hparse_method(p);
	r->method_len = strlen(r->method);
	r->head_method = method_is(r, "HEAD");
	r->unsafe = method_is(r, "POST") || method_is(r, "PATCH") ||
		    method_is(r, "LOCK");
	r->chunked_in = hparse_chunked(p);
	r->rid = ++c->gw->rid_seq;
	if (method_is(r, "CONNECT")) {
		r->keepalive = false;
		local_error(c, 405, "MethodNotAllowed",
			    "CONNECT is not supported");
		return 0;
	}
	if (hparse_url(url, c->head.first_len, &u) != 0 || !u.path.set) {
		r->keepalive = false;
		local_error(c, 400, "BadRequest", "malformed request URL");
		return 0;
	}
	path = url + u.path.off;
	plen = u.path.len;
	seg = path + 1;
	slen = 0;
	while (1 + slen < plen && seg[slen] != '/')
		slen++;
	if (plen == 0 || path[0] != '/')
		slen = 0;
	else
		r->path_off = (uint32_t)(seg + slen - url);
	r->path_len = plen > 0 ? (uint32_t)(plen - 1 - slen) : 0;
	if (u.query.set) {
		r->query_off = (uint32_t)u.query.off;
		r->query_len = (uint32_t)u.query.len;
	}
	r->dep = slen > 0 ? dep_route(c->gw, seg, slen) : NULL;
	if (r->dep == NULL) {
		local_error(c, 404, "NotFound", "deployment %.*s not found",
			    (int)(slen > 256 ? 256 : slen), seg);
		return 0;
	}
	r->dep->refs++;
	SHARED_ADD(r->dep->ctr.inflight, 1);
	req_route(c);
	return 0;
}

static int creq_body(struct hparse *p, const char *at, size_t len)
{
	struct client *c = p->data;
	struct wreq *w;

	c->window_bytes += len;
	if (c->req.discard)
		return 0;
	w = up_batch(c);
	if (c->req.chunked_in) {
		wreq_chunk(w, len);
		wreq_ref(w, c->pend, at, len);
		wreq_copy(w, "\r\n", 2);
	} else {
		wreq_ref(w, c->pend, at, len);
	}
	return 0;
}

static int creq_complete(struct hparse *p)
{
	struct client *c = p->data;
	struct request *r = &c->req;

	if (r->chunked_in && !r->discard)
		wreq_copy(up_batch(c), "0\r\n\r\n", 5);
	r->in_done = true;
	c->arm_due = true;
	hparse_pause(p, true);
	return 0;
}

const struct hparse_settings creq_settings = {
	.whole_heads = true, /* creq_headers() takes them in one step */
	.on_message_begin = creq_begin,
	.on_url = creq_url,
	.on_header_field = creq_field,
	.on_header_value = creq_value,
	.on_headers_complete = creq_headers,
	.on_body = creq_body,
	.on_message_complete = creq_complete,
};

/* Answers input that is not HTTP, or too large, and closes. */
static void client_bad_request(struct client *c, enum hparse_error err)
{
	struct request *r = &c->req;
	int status = c->head.overflow ? c->head.overflow
		     : err == HPARSE_E_TOO_LARGE ? 431 : 400;

	block_unref(c->pend);
	c->pend = NULL;
	if (r->status != 0) {
		client_close(c, false);
		return;
	}
	if (!r->active) {
		r->active = true;
		r->t0 = uv_hrtime();
	}
	r->keepalive = false;
	r->in_done = true;
	if (status == 414)
		local_error(c, 414, "URITooLong",
			    "request URL longer than %u bytes", URL_MAX);
	else if (status == 431 && c->head.overflow == 0)
		local_error(c, 431, "RequestHeaderFieldsTooLarge", "%s",
			    hparse_error_text(&c->parser));
	else if (status == 431)
		local_error(c, 431, "RequestHeaderFieldsTooLarge",
			    "request head larger than %u bytes", HEAD_MAX);
	else
		local_error(c, 400, "BadRequest", "malformed request: %s",
			    hparse_error_text(&c->parser));
}

/* Parses buffered client input up to the end of the current request. */
static void client_process(struct client *c)
{
	struct request *r = &c->req;

	if (c->in_parse)
		return;
	c->in_parse = true;
	while (!c->closing && c->pend != NULL && !r->in_done) {
		struct block *b = c->pend;
		size_t left = b->len - c->pend_off, n;
		enum hparse_error err;

		hparse_pause(&c->parser, false);
		n = hparse_execute(&c->parser, b->data + c->pend_off, left);
		err = hparse_error(&c->parser);
		/* Once for what the callbacks did: a request read whole in
		 * one step (begun, head, complete) waits for its response. */
		if (c->arm_due) {
			c->arm_due = false;
			client_arm(c);
		}
		c->pend_off += n;
		if (c->pend_off >= b->len || (err == HPARSE_OK && n < left)) {
			c->pend = NULL;
			block_unref(b);
		}
		if (err != HPARSE_OK && err != HPARSE_PAUSED)
			client_bad_request(c, err);
		up_flush(c);
		req_account_done(c);
		client_flush(c);
		if (c->broken)
			client_close(c, false);
		req_maybe_finish(c);
	}
	c->in_parse = false;
	if (!c->closing)
		client_update_read(c);
}

/*
 * TLS: turns the nread bytes of ciphertext in b into plaintext in place
 * and answers the handshake. Returns the plaintext's length (0: none
 * yet), or UV_EOF when the client ended TLS, or a negative code.
 */
static ssize_t tls_input(struct client *c, struct block *b, ssize_t nread)
{
	size_t len = 0, got;
	int rc = tls_conn_push(c->tls, b->data, (size_t)nread);

	while (rc == 0) {
		rc = tls_conn_pull(c->tls, b->data + len, BLOCK_SIZE - len,
				   &got);
		if (got == 0)
			break;
		len += got;
	}
	if (tls_send(c) != 0 || rc < 0)
		return UV_EPROTO;
	if (rc == 1 && len == 0)
		return UV_EOF;
	if (len == BLOCK_SIZE) /* cannot be, given TLS_READ_MAX */
		return UV_ENOBUFS;
	return (ssize_t)len;
}

static void client_read_cb(uv_stream_t *s, ssize_t nread,
			   const uv_buf_t *buf)
{
	struct client *c = s->data;
	struct block *b = block_of(buf);

	if (c->tls != NULL && nread > 0 && !c->closing) {
		nread = tls_input(c, b, nread);
		if (nread == 0) {
			block_unref(b);
			return;
		}
	}
	if (nread <= 0 || c->closing) {
		/* While lingering, input is dropped until the peer closes. A
		 * client that half-closes after a complete request still
		 * gets its response (then the connection closes), unless
		 * the request is still held: that one is dropped. */
		block_unref(b);
		if (nread < 0 && c->closing) {
			client_close_handles(c);
		} else if (nread == UV_EOF && c->req.in_done &&
			   !c->req.held) {
			c->eof = true;
			client_update_read(c);
		} else if (nread < 0) {
			client_close(c, false);
		}
		return;
	}
	b->len = (uint32_t)nread;
	c->pend = b;
	c->pend_off = 0;
	client_touch(c);
	client_process(c);
}

/* Client connection life. */

void client_close_cb(uv_handle_t *h)
{
	struct client *c = h->data;
	struct worker *gw = c->gw;

	if (--c->nopen > 0)
		return;
	list_del(&c->link);
	client_uncount(c);
	gw->nclients--;
	__atomic_sub_fetch(&gw->group->nclients, 1, __ATOMIC_RELAXED);
	head_free(&c->head);
	tls_conn_free(c->tls);
	free(c);
	worker_drain_check(gw);
}

static void client_shutdown_cb(uv_shutdown_t *req, int status)
{
	struct client *c = req->handle->data;

	if (status < 0 || c->eof)
		client_close_handles(c);
}

/*
 * Closes a client: graceful after a complete response (flush, FIN, then read
 * and drop until the peer closes or LINGER_MS pass, so that unread input
 * does not turn into a reset that eats our response), abortive otherwise.
 */
void client_close(struct client *c, bool graceful)
{
	if (c->closing)
		return;
	c->closing = true;
	client_uncount(c);
	if (c->req.active)
		req_end(c);
	wreq_put(c->cb);
	c->cb = NULL;
	block_unref(c->pend);
	c->pend = NULL;
	if (!graceful || c->broken ||
	    uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp,
			client_shutdown_cb) != 0) {
		client_close_handles(c);
		return;
	}
	uv_timer_start(&c->timer, client_timer_cb, LINGER_MS, 0);
	client_update_read(c);
}
