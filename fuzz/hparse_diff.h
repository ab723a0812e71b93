/*
 * hparse_diff.h - hparse.c's fast path against http_parser.
 *
 * hparse_diff() feeds the same bytes, in the same pieces, to a response
 * hparse (whose fast path reads the usual response heads itself) and to
 * http_parser alone; hparse_diff_req() to a request hparse and to one whose
 * fast path is off (the strict scan and http_parser). Both sides have the
 * same callbacks: each logs what it is given (joining the pieces of one
 * datum), and the accessors' values at headers complete and at message
 * complete. The callbacks pause, and on_headers_complete returns 0, 1, 2 or
 * -1, as the policy says, which also says whether hparse's side takes the
 * heads its fast path reads whole (whole_heads). After every piece, and
 * after the end of input, both must have consumed the same bytes, be in the
 * same state and have logged the same. Used by tests/unit/test_hparse.c and
 * fuzz/fuzz_http_response.c; header only, for one thread.
 */
#ifndef MDS_FUZZ_HPARSE_DIFF_H
#define MDS_FUZZ_HPARSE_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <http_parser.h>

#include "http/hparse.h"

/* The policy's bits. */
#define DIFF_PAUSE_HEADERS 1u  /* on_headers_complete pauses */
#define DIFF_PAUSE_BODY 2u     /* on_body pauses */
#define DIFF_PAUSE_COMPLETE 4u /* on_message_complete pauses */
#define DIFF_RC_SHIFT 3        /* 2 bits: on_headers_complete returns
				  0, 1, 2 or -1 */
#define DIFF_WHOLE 32u         /* hparse's settings have whole_heads: a
				  head it reads whole is logged from
				  hparse_whole() */
#define DIFF_POLICIES 64u

#define DIFF_LOG_MAX (32u * 1024)

struct diff_log {
	char text[DIFF_LOG_MAX];
	size_t len;
	char last; /* the kind of the last datum, whose pieces are joined */
	bool overflow;
	unsigned policy;
};

/* What the accessors tell, as one comparable line. */
struct diff_view {
	unsigned status, method;
	bool keep_alive, chunked, has_length, upgrade, http11;
	uint64_t length;
};

static inline void diff_put(struct diff_log *l, const void *p, size_t n)
{
	if (l->overflow || n > DIFF_LOG_MAX - l->len) {
		l->overflow = true;
		return;
	}
	memcpy(l->text + l->len, p, n);
	l->len += n;
}

static inline void diff_datum(struct diff_log *l, char kind, const char *at,
		       size_t len)
{
	if (l->last != kind) {
		char tag[2] = { '\n', kind };

		diff_put(l, tag, 2);
		l->last = kind;
	}
	diff_put(l, at, len);
}

static inline void diff_event(struct diff_log *l, char kind,
		       const struct diff_view *v)
{
	char line[160];
	int n;

	if (v == NULL)
		n = snprintf(line, sizeof(line), "\n%c", kind);
	else
		n = snprintf(line, sizeof(line),
			     "\n%c %u m%u ka%d ch%d hl%d up%d 11%d len%llu",
			     kind, v->status, v->method, v->keep_alive, v->chunked,
			     v->has_length, v->upgrade, v->http11,
			     (unsigned long long)v->length);
	diff_put(l, line, n > 0 ? (size_t)n : 0);
	l->last = 0;
}

static inline int diff_headers_rc(const struct diff_log *l)
{
	static const int rc[4] = { 0, 1, 2, -1 };

	return rc[(l->policy >> DIFF_RC_SHIFT) & 3];
}

/* hparse's side. */

static inline struct diff_view diff_view_h(const struct hparse *h)
{
	struct diff_view v = {
		hparse_status(h), h->p.method, hparse_keep_alive(h),
		hparse_chunked(h),
		hparse_has_length(h), hparse_upgrade(h), hparse_http11(h),
		hparse_length(h),
	};

	return v;
}

static inline int diff_h_begin(struct hparse *h)
{
	diff_event(h->data, 'B', NULL);
	return 0;
}

static inline int diff_h_url(struct hparse *h, const char *at, size_t len)
{
	diff_datum(h->data, 'U', at, len);
	return 0;
}

static inline int diff_h_status(struct hparse *h, const char *at, size_t len)
{
	diff_datum(h->data, 'S', at, len);
	return 0;
}

static inline int diff_h_field(struct hparse *h, const char *at, size_t len)
{
	diff_datum(h->data, 'F', at, len);
	return 0;
}

static inline int diff_h_value(struct hparse *h, const char *at, size_t len)
{
	diff_datum(h->data, 'V', at, len);
	return 0;
}

static inline int diff_h_headers(struct hparse *h)
{
	struct diff_log *l = h->data;
	struct diff_view v = diff_view_h(h);
	const struct hparse_whole *wh = hparse_whole(h);

	if (wh != NULL && h->settings->whole_heads) {
		diff_datum(l, h->type == HPARSE_REQUEST ? 'U' : 'S',
			   wh->data + wh->first_off, wh->first_len);
		for (unsigned k = 0; k < wh->n; k++) {
			const struct hparse_field *x = &wh->f[k];

			diff_datum(l, 'F', wh->data + x->name, x->nlen);
			diff_datum(l, 'V', wh->data + x->val, x->vlen);
		}
	}
	diff_event(l, 'H', &v);
	if (l->policy & DIFF_PAUSE_HEADERS)
		hparse_pause(h, true);
	return diff_headers_rc(l);
}

static inline int diff_h_body(struct hparse *h, const char *at, size_t len)
{
	struct diff_log *l = h->data;

	diff_datum(l, 'D', at, len);
	if (l->policy & DIFF_PAUSE_BODY)
		hparse_pause(h, true);
	return 0;
}

static inline int diff_h_complete(struct hparse *h)
{
	struct diff_log *l = h->data;
	struct diff_view v = diff_view_h(h);

	diff_event(l, 'C', &v);
	if (l->policy & DIFF_PAUSE_COMPLETE)
		hparse_pause(h, true);
	return 0;
}

/* The same callbacks, with heads taken as they come or whole. */
#define DIFF_H_CALLBACKS                                  \
	.on_message_begin = diff_h_begin,                 \
	.on_url = diff_h_url, .on_status = diff_h_status, \
	.on_header_field = diff_h_field,                  \
	.on_header_value = diff_h_value,                  \
	.on_headers_complete = diff_h_headers,            \
	.on_body = diff_h_body, .on_message_complete = diff_h_complete

static const struct hparse_settings diff_h_settings
	__attribute__((unused)) = { DIFF_H_CALLBACKS };

static const struct hparse_settings diff_h_whole_settings
	__attribute__((unused)) = { .whole_heads = true, DIFF_H_CALLBACKS };

/* http_parser's side: the same, with hparse.c's accessors written out. */

static inline struct diff_view diff_view_p(const http_parser *p)
{
	struct diff_view v = {
		p->status_code, p->method, http_should_keep_alive(p) != 0,
		(p->flags & F_CHUNKED) != 0, (p->flags & F_CONTENTLENGTH) != 0,
		p->upgrade != 0,
		p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1),
		(p->flags & F_CONTENTLENGTH) ? p->content_length : 0,
	};

	return v;
}

static inline int diff_p_begin(http_parser *p)
{
	diff_event(p->data, 'B', NULL);
	return 0;
}

static inline int diff_p_status(http_parser *p, const char *at, size_t len)
{
	diff_datum(p->data, 'S', at, len);
	return 0;
}

static inline int diff_p_field(http_parser *p, const char *at, size_t len)
{
	diff_datum(p->data, 'F', at, len);
	return 0;
}

static inline int diff_p_value(http_parser *p, const char *at, size_t len)
{
	diff_datum(p->data, 'V', at, len);
	return 0;
}

static inline int diff_p_headers(http_parser *p)
{
	struct diff_log *l = p->data;
	struct diff_view v = diff_view_p(p);

	diff_event(l, 'H', &v);
	if (l->policy & DIFF_PAUSE_HEADERS)
		http_parser_pause(p, 1);
	return diff_headers_rc(l);
}

static inline int diff_p_body(http_parser *p, const char *at, size_t len)
{
	struct diff_log *l = p->data;

	diff_datum(l, 'D', at, len);
	if (l->policy & DIFF_PAUSE_BODY)
		http_parser_pause(p, 1);
	return 0;
}

static inline int diff_p_complete(http_parser *p)
{
	struct diff_log *l = p->data;
	struct diff_view v = diff_view_p(p);

	diff_event(l, 'C', &v);
	if (l->policy & DIFF_PAUSE_COMPLETE)
		http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings diff_p_settings
	__attribute__((unused)) = {
	.on_message_begin = diff_p_begin,
	.on_status = diff_p_status,
	.on_header_field = diff_p_field,
	.on_header_value = diff_p_value,
	.on_headers_complete = diff_p_headers,
	.on_body = diff_p_body,
	.on_message_complete = diff_p_complete,
};

static inline bool diff_same(const struct diff_log *a, const struct diff_log *b)
{
	return a->overflow == b->overflow && a->len == b->len &&
	       memcmp(a->text, b->text, a->len) == 0;
}

/*
 * Feeds [data, data + size) to both in pieces of step bytes (0: whole),
 * resuming both after a pause, then the end of input. Returns NULL when
 * they agreed throughout, else what differed first (static). *fast, if
 * not NULL, is set to the messages hparse's fast path read.
 */
static inline const char
*hparse_diff(const char *data, size_t size, size_t step,
			       unsigned policy, unsigned *fast)
{
	static struct diff_log a, b;
	struct hparse h;
	http_parser p;
	size_t off = 0;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.policy = b.policy = policy;
	hparse_init(&h, HPARSE_RESPONSE, policy & DIFF_WHOLE
		    ? &diff_h_whole_settings : &diff_h_settings, &a);
	http_parser_init(&p, HTTP_RESPONSE);
	p.data = &b;
	if (fast != NULL)
		*fast = 0;
	while (off < size) {
		size_t n = step == 0 || step > size - off ? size - off : step;
		size_t ua = hparse_execute(&h, data + off, n);
		size_t ub = http_parser_execute(&p, &diff_p_settings,
						data + off, n);
		enum http_errno ea = HTTP_PARSER_ERRNO(&h.p);
		enum http_errno eb = HTTP_PARSER_ERRNO(&p);

		if (fast != NULL)
			*fast = h.nfast;
		if (ua != ub)
			return "bytes consumed";
		if (ea != eb)
			return "parser state";
		if (!diff_same(&a, &b))
			return "callbacks";
		off += ua;
		if (ea == HPE_PAUSED) {
			hparse_pause(&h, false);
			http_parser_pause(&p, 0);
		} else if (ea != HPE_OK || ua < n) {
			return NULL;
		}
	}
	if (hparse_execute(&h, NULL, 0) !=
	    http_parser_execute(&p, &diff_p_settings, NULL, 0))
		return "bytes consumed at the end of input";
	if (HTTP_PARSER_ERRNO(&h.p) != HTTP_PARSER_ERRNO(&p))
		return "parser state at the end of input";
	if (!diff_same(&a, &b))
		return "callbacks at the end of input";
	return NULL;
}

/* The same for requests: hparse with its fast path, and without. */
static inline const char *hparse_diff_req(const char *data, size_t size,
				   size_t step, unsigned policy,
				   unsigned *fast)
{
	static struct diff_log a, b;
	struct hparse h, g;
	size_t off = 0;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.policy = b.policy = policy;
	hparse_init(&h, HPARSE_REQUEST, policy & DIFF_WHOLE
		    ? &diff_h_whole_settings : &diff_h_settings, &a);
	hparse_init(&g, HPARSE_REQUEST, &diff_h_settings, &b);
	g.no_fast = true;
	if (fast != NULL)
		*fast = 0;
	while (off < size) {
		size_t n = step == 0 || step > size - off ? size - off : step;
		size_t ua = hparse_execute(&h, data + off, n);
		size_t ub = hparse_execute(&g, data + off, n);
		enum hparse_error ea = hparse_error(&h);

		if (fast != NULL)
			*fast = h.nfast;
		if (ua != ub)
			return "bytes consumed";
		if (ea != hparse_error(&g) ||
		    HTTP_PARSER_ERRNO(&h.p) != HTTP_PARSER_ERRNO(&g.p) ||
		    strcmp(hparse_error_text(&h), hparse_error_text(&g)) != 0)
			return "parser state";
		if (!diff_same(&a, &b))
			return "callbacks";
		off += ua;
		if (ea == HPARSE_PAUSED) {
			hparse_pause(&h, false);
			hparse_pause(&g, false);
		} else if (ea != HPARSE_OK || ua < n) {
			return NULL;
		}
	}
	if (hparse_execute(&h, NULL, 0) != hparse_execute(&g, NULL, 0))
		return "bytes consumed at the end of input";
	if (hparse_error(&h) != hparse_error(&g) ||
	    HTTP_PARSER_ERRNO(&h.p) != HTTP_PARSER_ERRNO(&g.p))
		return "parser state at the end of input";
	if (!diff_same(&a, &b))
		return "callbacks at the end of input";
	return NULL;
}

#endif
