/*
 * gateway_msg.c - what the gateway's messages are made of: write requests
 * (batches of slices, referenced in their read blocks or copied) and heads
 * (parsed, filtered of hop-by-hop headers, and written again). The small
 * helpers the data path inlines are in gateway_path.h.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "gateway/gateway_path.h"
#include "http/hparse.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/xalloc.h"

/* Write requests. */

struct wreq *wreq_get(struct worker *gw)
{
	struct wreq *w = gw->free_wreqs;

	if (w != NULL) {
		gw->free_wreqs = w->next;
		gw->nfree_wreqs--;
	} else {
		w = xcalloc(1, sizeof(*w));
		w->gw = gw;
		buf_init(&w->own, OWN_MAX);
	}
	w->next = NULL;
	w->n = 0;
	w->bytes = 0;
	w->state = W_BUILD;
	w->retained = false;
	buf_reset(&w->own);
	return w;
}

void wreq_put(struct wreq *w)
{
	struct worker *gw;

	if (w == NULL)
		return;
	gw = w->gw;
	wreq_clear(w);
	if (w->own.cap > OWN_KEEP + 1)
		buf_free(&w->own);
	if (gw->nfree_wreqs < WREQ_POOL_MAX) {
		w->next = gw->free_wreqs;
		gw->free_wreqs = w;
		gw->nfree_wreqs++;
	} else {
		buf_free(&w->own);
		free(w);
	}
}

/* Makes own[from..len) the next bytes of the write. */
void wreq_own(struct wreq *w, size_t from)
{
	struct slice *last = w->n > 0 ? &w->s[w->n - 1] : NULL;
	size_t len = w->own.len - from;

	if (len == 0)
		return;
	if (last != NULL && last->blk == NULL && last->off + last->len == from)
		last->len += len;
	else
		w->s[w->n++] = (struct slice){ NULL, from, len };
	w->bytes += len;
}

/* Adds body bytes, referencing their block unless they are short. */
void wreq_ref(struct wreq *w, struct block *b, const char *p,
	      size_t len)
{
	if (b == NULL || len <= COPY_MAX) {
		wreq_copy(w, p, len);
		return;
	}
	b->refs++;
	w->s[w->n++] = (struct slice){ b, (size_t)(p - b->data), len };
	w->bytes += len;
}

/*
 * Writes w to s: what the socket takes at once with uv_try_write(), the rest
 * queued with uv_write() (cb runs then). Trying first keeps small messages
 * free of write requests, and libuv 1.44 re-arms epoll after each request.
 * Returns 1 if all was written, 0 if queued, or a negative libuv error.
 */
int wreq_write(struct wreq *w, uv_stream_t *s, uv_write_cb cb)
{
	uv_buf_t iov[WREQ_SLICES];
	unsigned i = 0;
	size_t done;
	int rc;

	for (unsigned k = 0; k < w->n; k++) {
		const struct slice *sl = &w->s[k];

		iov[k] = uv_buf_init(sl->blk ? sl->blk->data + sl->off
					     : w->own.data + sl->off,
				     (unsigned)sl->len);
	}
	rc = uv_try_write(s, iov, w->n);
	if (rc < 0 && rc != UV_EAGAIN)
		return rc;
	done = rc > 0 ? (size_t)rc : 0;
	if (done == w->bytes)
		return 1;
	while (done >= iov[i].len)
		done -= iov[i++].len;
	iov[i].base += done;
	iov[i].len -= (unsigned)done;
	rc = uv_write(&w->req, s, iov + i, w->n - i, cb);
	return rc < 0 ? rc : 0;
}

/* Heads. */

int head_field(struct head *h, const char *at, size_t len)
{
	struct hdr *x;

	if (h->done)
		return 0;
	if (h->last != 1) {
		if (h->n == HDR_MAX) {
			h->overflow = 431;
			return -1;
		}
		if (h->n == h->cap) {
			h->cap = h->cap ? h->cap * 2 : 32;
			h->h = xreallocarray(h->h, h->cap, sizeof(*h->h));
		}
		x = &h->h[h->n++];
		x->name = x->val = (uint32_t)h->raw.len;
		x->name_len = x->val_len = 0;
		h->last = 1;
	}
	if (buf_add(&h->raw, at, len) != 0) {
		h->overflow = 431;
		return -1;
	}
	h->h[h->n - 1].name_len += (uint32_t)len;
	return 0;
}

/* Whether the header name p (len bytes, a token) is hop-by-hop (RFC 9110
 * 7.6.1): such headers never cross the proxy. */
static bool hop_by_hop_name(const char *p, size_t len)
{
	switch (len) {
	case 2:
		return name_eq(p, len, "te", 2);
	case 7:
		return name_eq(p, len, "trailer", 7) ||
		       name_eq(p, len, "upgrade", 7);
	case 10:
		return name_eq(p, len, "connection", 10) ||
		       name_eq(p, len, "keep-alive", 10);
	case 16:
		return name_eq(p, len, "proxy-connection", 16);
	default:
		return false;
	}
}

bool hop_by_hop(const struct head *h, const struct hdr *x)
{
	return hop_by_hop_name(h->raw.data + x->name, x->name_len);
}

/* The next token of a Connection value from *p, which it moves past the
 * token, with its length in *n; NULL at the value's end. */
static const char *conn_token(const char **p, const char *end, size_t *n)
{
	const char *q = *p, *tok;

	while (q < end && (*q == ' ' || *q == '\t' || *q == ','))
		q++;
	tok = q;
	while (q < end && *q != ',' && *q != ' ' && *q != '\t')
		q++;
	*p = q;
	*n = (size_t)(q - tok);
	return *n > 0 ? tok : NULL;
}

/* Tells whether a Connection header names x, making it hop-by-hop too. */
bool conn_listed(const struct head *h, const struct hdr *x)
{
	if (!h->conn)
		return false;
	for (uint32_t i = 0; i < h->n; i++) {
		const struct hdr *ch = &h->h[i];
		const char *p = h->raw.data + ch->val, *tok;
		const char *end = p + ch->val_len;
		size_t n;

		if (!HDR_IS(h, ch, "connection"))
			continue;
		while ((tok = conn_token(&p, end, &n)) != NULL)
			if (n == x->name_len &&
			    strncasecmp(tok, h->raw.data + x->name, n) == 0)
				return true;
	}
	return false;
}

unsigned conn_tokens(const struct head *h)
{
	unsigned found = 0;

	if (!h->conn)
		return 0;
	for (uint32_t i = 0; i < h->n; i++) {
		const struct hdr *ch = &h->h[i];
		const char *p = h->raw.data + ch->val, *tok;
		const char *end = p + ch->val_len;
		size_t n;

		if (!HDR_IS(h, ch, "connection"))
			continue;
		while ((tok = conn_token(&p, end, &n)) != NULL) {
			if (n == 5 && strncasecmp(tok, "close", 5) == 0)
				found |= CONN_CLOSE;
			else if (n != 10 ||
				 strncasecmp(tok, "keep-alive", 10) != 0)
				found |= CONN_OTHER;
		}
	}
	return found;
}

bool put_hdr(struct buf *o, const struct head *h, const struct hdr *x)
{
	return buf_add(o, h->raw.data + x->name, x->name_len) == 0 &&
	       buf_add(o, ": ", 2) == 0 &&
	       buf_add(o, h->raw.data + x->val, x->val_len) == 0 &&
	       buf_add(o, "\r\n", 2) == 0;
}

static void buf_truncate(struct buf *o, size_t len)
{
	o->len = len;
	if (o->data != NULL)
		o->data[len] = '\0';
}

/* Appends "Connection: close" or "Connection: keep-alive" when the client
 * needs it told, and the blank line. */
static bool put_conn_end(struct buf *o, const struct client *c, bool final)
{
	bool ok = true;

	if (final && !c->req.keepalive)
		ok = buf_addstr(o, "Connection: close\r\n") == 0;
	else if (final && !client_http11(c))
		ok = buf_addstr(o, "Connection: keep-alive\r\n") == 0;
	return ok && buf_add(o, "\r\n", 2) == 0;
}

/*
 * Appends a final response head that the parser read whole (wh) to w: its
 * status line as HTTP/1.1, then its header lines as they came, in runs,
 * but the hop-by-hop ones. Such a head has no Connection but of
 * "keep-alive", so no other header is named by one, and no
 * Transfer-Encoding (see hparse_whole()).
 */
static int put_whole_head(struct client *c, const struct hparse_whole *wh,
			  struct wreq *w)
{
	const char *d = wh->data;
	struct buf *o = &w->own;
	size_t from = o->len, run = 8; /* what remains to copy begins here */
	bool ok = buf_add(o, "HTTP/1.1", 8) == 0;

	for (unsigned k = 0; ok && k < wh->n; k++) {
		const struct hparse_field *x = &wh->f[k];

		if (!hop_by_hop_name(d + x->name, x->nlen))
			continue;
		ok = buf_add(o, d + run, x->name - run) == 0;
		run = (size_t)x->val + x->vlen + 2;
	}
	/* Up to the blank line, which put_conn_end() writes. */
	ok = ok && buf_add(o, d + run, wh->len - 2 - run) == 0 &&
	     put_conn_end(o, c, true);
	if (!ok) {
		buf_truncate(o, from);
		return MDS_E_LIMIT;
	}
	wreq_own(w, from);
	return 0;
}

/* Appends a response head from the upstream to w (final or interim). */
int build_resp_head(struct client *c, struct upconn *up,
		    struct wreq *w, bool final, bool drop_te,
		    bool add_te)
{
	const struct head *h = &up->head;
	const struct hparse_whole *wh = hparse_whole(&up->parser);
	struct buf *o = &w->own;
	size_t from = o->len;
	unsigned conn, st;
	bool ok;

	if (wh != NULL && final && !drop_te && !add_te)
		return put_whole_head(c, wh, w);
	conn = conn_tokens(h);
	st = hparse_status(&up->parser);
	char line[13] = { 'H', 'T', 'T', 'P', '/', '1', '.', '1', ' ',
			  (char)('0' + st / 100 % 10), (char)('0' + st / 10 % 10),
			  (char)('0' + st % 10), ' ' };

	ok = buf_add(o, line, sizeof(line)) == 0 &&
	     buf_add(o, buf_str(&h->raw), h->first_len) == 0 &&
	     buf_add(o, "\r\n", 2) == 0;
	for (uint32_t i = 0; ok && i < h->n; i++) {
		const struct hdr *x = &h->h[i];

		if (hdr_dropped(h, x, conn) ||
		    (drop_te && HDR_IS(h, x, "transfer-encoding")))
			continue;
		ok = put_hdr(o, h, x);
	}
	if (ok && add_te)
		ok = buf_addstr(o, "Transfer-Encoding: chunked\r\n") == 0;
	ok = ok && put_conn_end(o, c, final);
	if (!ok) {
		buf_truncate(o, from);
		return MDS_E_LIMIT;
	}
	wreq_own(w, from);
	return 0;
}
