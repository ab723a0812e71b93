/*
 * hparse.c - the HTTP/1.x parser wrapper over http_parser; see hparse.h.
 *
 * http_parser calls back with its own struct; the trampolines below find the
 * struct hparse around it and call the caller's settings. For requests, a
 * small scanner runs over each head before the parser sees it, and hands the
 * parser only the bytes up to the first refused one, so that no callback
 * ever sees a head that is refused (the gateway routes on headers complete).
 */
#include <string.h>
#include <strings.h>

#include "http/hparse.h"

#define PARSER_OF(p) \
	((struct hparse *)(void *)((char *)(p) - offsetof(struct hparse, p)))

/* The strict scanner's states, over one request head. */
enum {
	SC_START,      /* before the request line (blank lines are skipped) */
	SC_FIRST,      /* in the request line */
	SC_LINE_START, /* at the start of a header line, or of the blank one */
	SC_NAME,       /* in a header name */
	SC_VALUE,      /* after the colon, to the end of the line */
	SC_LINE_CR,    /* a CR that ends a line: an LF must follow */
	SC_END_CR,     /* a CR at the start of a line: the head ends */
	SC_BODY,       /* past the head: not scanned */
};

/* Byte classes: C_TCHAR, RFC 9110 5.6.2 tchar; C_TEXT, visible ASCII,
 * space and tab (a reason phrase's or a field value's byte, as the fast
 * path takes them). */
#define C_TCHAR 1
#define C_TEXT 2

static const unsigned char cls[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	2, 3, 2, 3, 3, 3, 3, 3, 2, 2, 3, 3, 2, 3, 3, 2,
	3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2,
	2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
	3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 3, 3,
	3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
	3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 3, 2, 3, 0,
	/* 0x80 to 0xff: none */
};

static bool is_tchar(unsigned char ch)
{
	return (cls[ch] & C_TCHAR) != 0;
}

/* The end of the line from data[i]: the index of its CR or LF, or len. */
static size_t line_end(const char *data, size_t i, size_t len)
{
	while (i < len && data[i] != '\r' && data[i] != '\n')
		i++;
	return i;
}

static size_t refuse(struct hparse *h, size_t at, enum hparse_error err,
		     const char *text)
{
	h->strict_err = err;
	h->strict_text = text;
	return at;
}

/* Scans [data, data + len) of a request head. Returns how many of those
 * bytes the parser may see: all of them, up to the end of the head (the
 * state is then SC_BODY), or up to a refused byte (strict_err is set). */
static size_t scan(struct hparse *h, const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)data[i];

		switch (h->scan) {
		case SC_START:
			if (ch != '\r' && ch != '\n') {
				h->scan = SC_FIRST;
				h->nfields = 0;
			}
			break;
		case SC_FIRST:
		case SC_VALUE:
			i = line_end(data, i, len);
			if (i == len)
				return len;
			ch = (unsigned char)data[i];
			if (ch == '\n')
				h->scan = SC_LINE_START;
			else if (ch == '\r')
				h->scan = SC_LINE_CR;
			break;
		case SC_LINE_CR:
			if (ch != '\n')
				return refuse(h, i, HPARSE_E_SYNTAX,
					      "a CR not followed by LF");
			h->scan = SC_LINE_START;
			break;
		case SC_LINE_START:
			if (ch == '\r') {
				h->scan = SC_END_CR;
			} else if (ch == '\n') {
				h->scan = SC_BODY;
				return i + 1;
			} else if (ch == ' ' || ch == '\t') {
				return refuse(h, i, HPARSE_E_SYNTAX,
					      "a header line starts with "
					      "whitespace (obsolete line "
					      "folding)");
			} else if (++h->nfields > HPARSE_FIELDS_MAX) {
				return refuse(h, i, HPARSE_E_TOO_LARGE,
					      "too many header lines");
			} else if (!is_tchar(ch)) {
				return refuse(h, i, HPARSE_E_SYNTAX,
					      "invalid character in a header "
					      "name");
			} else {
				h->scan = SC_NAME;
			}
			break;
		case SC_NAME:
			if (ch == ':')
				h->scan = SC_VALUE;
			else if (!is_tchar(ch))
				return refuse(h, i, HPARSE_E_SYNTAX,
					      ch == ' ' || ch == '\t'
					      ? "whitespace between a header "
						"name and its colon"
					      : "invalid character in a header "
						"name");
			break;
		case SC_END_CR:
			if (ch != '\n')
				return refuse(h, i, HPARSE_E_SYNTAX,
					      "a CR not followed by LF");
			h->scan = SC_BODY;
			return i + 1;
		default:
			return i;
		}
	}
	return len;
}

/* A head callback's result: a pause from it is an error (hparse.h), on
 * both paths alike. */
static int head_rc(const struct hparse *h, int rc)
{
	return rc == 0 && HTTP_PARSER_ERRNO(&h->p) == HPE_PAUSED ? -1 : rc;
}

static int t_begin(http_parser *p)
{
	struct hparse *h = PARSER_OF(p);

	h->in_body = false;
	h->at_start = false;
	h->fast_msg = false;
	return h->settings->on_message_begin
	       ? head_rc(h, h->settings->on_message_begin(h)) : 0;
}

static int t_url(http_parser *p, const char *at, size_t len)
{
	struct hparse *h = PARSER_OF(p);

	return h->settings->on_url ? head_rc(h, h->settings->on_url(h, at, len))
				   : 0;
}

static int t_status(http_parser *p, const char *at, size_t len)
{
	struct hparse *h = PARSER_OF(p);

	return h->settings->on_status
	       ? head_rc(h, h->settings->on_status(h, at, len)) : 0;
}

/* The head's names were scanned; a chunked body's trailer names are
 * checked here, with the same rules and the same count. */
static int check_trailer(struct hparse *h, const char *at, size_t len)
{
	if (!h->in_field && ++h->nfields > HPARSE_FIELDS_MAX) {
		refuse(h, 0, HPARSE_E_TOO_LARGE, "too many header lines");
		return -1;
	}
	h->in_field = true;
	for (size_t i = 0; i < len; i++) {
		if (!is_tchar((unsigned char)at[i])) {
			refuse(h, 0, HPARSE_E_SYNTAX,
			       "invalid character in a trailer name");
			return -1;
		}
	}
	return 0;
}

static int t_field(http_parser *p, const char *at, size_t len)
{
	struct hparse *h = PARSER_OF(p);

	if (h->type == HPARSE_REQUEST && h->in_body &&
	    check_trailer(h, at, len) != 0)
		return -1;
	return h->settings->on_header_field
	       ? head_rc(h, h->settings->on_header_field(h, at, len)) : 0;
}

static int t_value(http_parser *p, const char *at, size_t len)
{
	struct hparse *h = PARSER_OF(p);

	h->in_field = false;
	return h->settings->on_header_value
	       ? head_rc(h, h->settings->on_header_value(h, at, len)) : 0;
}

static int t_headers(http_parser *p)
{
	struct hparse *h = PARSER_OF(p);

	h->in_body = true;
	return h->settings->on_headers_complete
	       ? h->settings->on_headers_complete(h) : 0;
}

static int t_body(http_parser *p, const char *at, size_t len)
{
	struct hparse *h = PARSER_OF(p);

	return h->settings->on_body ? h->settings->on_body(h, at, len) : 0;
}

/* The next request's head is scanned before the parser reads it: pause
 * here, if the caller did not, and go on from hparse_execute(). */
static int t_complete(http_parser *p)
{
	struct hparse *h = PARSER_OF(p);
	int rc = h->settings->on_message_complete
		 ? h->settings->on_message_complete(h) : 0;

	h->at_start = http_should_keep_alive(p) != 0;
	if (h->type == HPARSE_REQUEST) {
		h->scan = SC_START;
		if (rc == 0 && HTTP_PARSER_ERRNO(p) == HPE_OK) {
			http_parser_pause(p, 1);
			h->self_paused = true;
		}
	}
	return rc;
}

static const http_parser_settings trampolines = {
	.on_message_begin = t_begin,
	.on_url = t_url,
	.on_status = t_status,
	.on_header_field = t_field,
	.on_header_value = t_value,
	.on_headers_complete = t_headers,
	.on_body = t_body,
	.on_message_complete = t_complete,
};

/*
 * The fast path. An instance's answer is nearly always a head like
 *
 *	HTTP/1.1 200 OK\r\n
 *	Content-Type: application/json\r\n
 *	Content-Length: 33\r\n
 *	\r\n
 *
 * whole in one read, and a body of that length; a client's request, a
 * "GET /dep/path HTTP/1.1" line and a few plain header lines. When a
 * message begins and its head is whole in the buffer, fast_res_head() or
 * fast_req_head() checks all of it first, without calling anything: for a
 * response HTTP/1.0 or 1.1, a status of 200 to 599 but 204 and 304, a
 * reason phrase of visible ASCII, space and tab; then lines that end in
 * CRLF, header names of token characters, values of visible ASCII, space
 * and tab that neither are empty nor end in whitespace, at most one
 * Content-Length (exactly one for a response) of at most 15 digits, no
 * Transfer-Encoding (nor a name that begins with it), Upgrade or
 * Proxy-Connection, a Connection of "keep-alive" only (needed for 1.0), at
 * most FAST_FIELDS header lines and FAST_HEAD_MAX bytes. Every such head is
 * valid for http_parser (and for the strict scan), and the message keeps
 * the connection alive, so the parser is left waiting for the next message
 * as it would be. Anything else goes to http_parser, which this path then
 * never touches in the middle of a message. fast_start() gives the head's
 * callbacks and sets the parser's public fields (status or method,
 * version, flags, length) as http_parser does, and fast_run() reads the
 * body, stopping, pausing and resuming at the same bytes
 * (fuzz/hparse_diff.h compares both, in tests/unit/test_hparse.c and the
 * two HTTP fuzz targets).
 */
enum {
	FAST_NONE, /* not in a message of the fast path */
	FAST_LF,   /* paused at headers complete: the head's last LF next */
	FAST_BODY, /* fast_left body bytes next */
	FAST_LAST, /* paused at the body's last byte: it comes again */
};

#define FAST_FIELDS 32
#define FAST_HEAD_MAX (16u * 1024)

/* What fast_res_head() or fast_req_head() found. */
struct fast_res {
	size_t head_len;   /* through the blank line's LF */
	size_t first_off, first_len; /* the reason phrase, or the target */
	uint64_t length;   /* UINT64_MAX: no Content-Length */
	unsigned status, method, minor, n;
	bool keep_alive;   /* a Connection: keep-alive */
	struct hparse_field f[FAST_FIELDS];
};

static bool is_text(unsigned char ch)
{
	return (cls[ch] & C_TEXT) != 0;
}

static uint64_t load8(const char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

#define ONES 0x0101010101010101u
#define HIGHS 0x8080808080808080u

/*
 * Whether a byte of v is outside lo to 0x7e (lo at most 0x7f), and
 * skip_visible(): skips bytes of lo to 0x7e from d[i], eight at a time
 * while eight are left, and returns where the eight that are not all such
 * bytes, or the last fewer than eight, begin: the caller goes on byte by
 * byte. A byte below lo borrows into its high bit when lo is subtracted
 * (and had it clear); one above 0x7e has it set, or sets it when 1 is
 * added; a borrow or carry out of one byte changes only the answer for a
 * word that has such a byte already.
 */
static uint64_t outside(uint64_t v, unsigned lo)
{
	return (((v - ONES * lo) & ~v) | (v + ONES) | v) & HIGHS;
}

static size_t skip_visible(const char *d, size_t i, size_t len, unsigned lo)
{
	while (len - i >= 8 && !outside(load8(d + i), lo))
		i += 8;
	return i;
}

/* Whether a byte of v is 0. */
static uint64_t zero_byte(uint64_t v)
{
	return (v - ONES) & ~v & HIGHS;
}

/* Skips token characters from d[i], four at a time while four are left,
 * then one at a time. */
static size_t skip_tchars(const char *d, size_t i, size_t len)
{
	const unsigned char *u = (const unsigned char *)d;

	while (len - i >= 4 &&
	       (cls[u[i]] & cls[u[i + 1]] & cls[u[i + 2]] & cls[u[i + 3]] &
		C_TCHAR))
		i += 4;
	while (i < len && is_tchar(u[i]))
		i++;
	return i;
}

/* Compares n bytes of tokens or text with a literal of lower-case letters
 * and '-', ignoring case: OR-ing 0x20 maps no other byte of either class
 * to one of those. Eight bytes at a time: the first eight and the last
 * eight, for literals of 8 to 16 bytes. */
static bool name_is(const char *at, size_t len, const char *lit, size_t n)
{
	const uint64_t lower = 0x2020202020202020u;

	if (len != n)
		return false;
	if (n < 8) {
		for (size_t i = 0; i < n; i++) {
			if (((unsigned char)at[i] | 0x20) !=
			    (unsigned char)lit[i])
				return false;
		}
		return true;
	}
	return (load8(at) | lower) == load8(lit) &&
	       (load8(at + n - 8) | lower) == load8(lit + n - 8) &&
	       (n <= 16 || name_is(at + 8, n - 16, lit + 8, n - 16));
}

/* Checks one header line's name and value for fast_fields(). Returns false
 * to leave the message to http_parser. */
static bool fast_field(const char *name, size_t nlen, const char *val,
		       size_t vlen, struct fast_res *f)
{
	/* http_parser takes any name that begins with Transfer-Encoding for
	 * one (found by fuzz_http_response). */
	if (nlen >= 17 && name_is(name, 17, "transfer-encoding", 17))
		return false;
	switch (nlen) {
	case 7:
		return !name_is(name, nlen, "upgrade", 7);
	case 10:
		if (!name_is(name, nlen, "connection", 10))
			return true;
		if (!name_is(val, vlen, "keep-alive", 10))
			return false;
		f->keep_alive = true;
		return true;
	case 14:
		if (!name_is(name, nlen, "content-length", 14))
			return true;
		if (f->length != UINT64_MAX || vlen > 15)
			return false;
		f->length = 0;
		for (size_t i = 0; i < vlen; i++) {
			if (val[i] < '0' || val[i] > '9')
				return false;
			f->length = f->length * 10 + (uint64_t)(val[i] - '0');
		}
		return true;
	case 16:
		return !name_is(name, nlen, "proxy-connection", 16);
	default:
		return true;
	}
}

/* Checks the header lines of a head from d[i] to its blank line, and
 * notes them in f. Returns false to leave the message to http_parser. */
static bool fast_fields(const char *d, size_t i, size_t len,
			struct fast_res *f)
{
	unsigned nf = 0;

	f->length = UINT64_MAX;
	f->keep_alive = false;
	for (;;) {
		size_t name = i, nlen, val;

		if (len - i < 2)
			return false;
		if (d[i] == '\r') {
			if (d[i + 1] != '\n')
				return false;
			f->head_len = i + 2;
			break;
		}
		i = skip_tchars(d, i, len);
		nlen = i - name;
		if (nlen == 0 || i == len || d[i] != ':' || nf == FAST_FIELDS)
			return false;
		i++;
		while (i < len && (d[i] == ' ' || d[i] == '\t'))
			i++;
		val = i;
		i = skip_visible(d, i, len, ' ');
		while (i < len && is_text((unsigned char)d[i]))
			i++;
		if (i == val || len - i < 2 || d[i] != '\r' ||
		    d[i + 1] != '\n' || d[i - 1] == ' ' || d[i - 1] == '\t' ||
		    !fast_field(d + name, nlen, d + val, i - val, f))
			return false;
		f->f[nf++] = (struct hparse_field){ (uint16_t)name,
						  (uint16_t)nlen,
						  (uint16_t)val,
						  (uint16_t)(i - val) };
		i += 2;
	}
	f->n = nf;
	return f->minor == 1 || f->keep_alive;
}

/* Checks a response head at the start of d (see above). Returns false to
 * leave it to http_parser. */
static bool fast_res_head(const char *d, size_t len, struct fast_res *f)
{
	size_t i = 13;

	if (len > FAST_HEAD_MAX)
		len = FAST_HEAD_MAX;
	if (len < 17 || memcmp(d, "HTTP/1.", 7) != 0 ||
	    (d[7] != '0' && d[7] != '1') || d[8] != ' ' ||
	    d[9] < '2' || d[9] > '5' || d[10] < '0' || d[10] > '9' ||
	    d[11] < '0' || d[11] > '9' || d[12] != ' ')
		return false;
	f->minor = (unsigned)(d[7] - '0');
	f->status = (unsigned)(d[9] - '0') * 100 +
		    (unsigned)(d[10] - '0') * 10 + (unsigned)(d[11] - '0');
	if (f->status == 204 || f->status == 304)
		return false;
	f->method = 0; /* as a response parser has it */
	i = skip_visible(d, i, len, ' ');
	while (i < len && is_text((unsigned char)d[i]))
		i++;
	f->first_off = 13;
	f->first_len = i - 13;
	if (f->first_len == 0 || len - i < 2 || d[i] != '\r' ||
	    d[i + 1] != '\n')
		return false;
	return fast_fields(d, i + 2, len, f) && f->length != UINT64_MAX;
}

/* The methods of the request fast path, and http_parser's numbers. */
static const struct {
	char name[8];
	unsigned len, method;
} fast_methods[] = {
	{ "GET ", 4, HTTP_GET },         { "POST ", 5, HTTP_POST },
	{ "PUT ", 4, HTTP_PUT },         { "HEAD ", 5, HTTP_HEAD },
	{ "DELETE ", 7, HTTP_DELETE },   { "PATCH ", 6, HTTP_PATCH },
	{ "OPTIONS ", 8, HTTP_OPTIONS },
};

/*
 * Checks a request head at the start of d as fast_res_head() does a
 * response's: one of the methods above, one space, an origin-form target
 * of visible ASCII, " HTTP/1.0" or " HTTP/1.1", CRLF, header lines as in
 * a response, and at most one Content-Length (none: no body). Every such
 * head passes the strict scan too: token names right before their colon,
 * no line that starts with whitespace, no CR without LF, fewer lines than
 * HPARSE_FIELDS_MAX.
 */
static bool fast_req_head(const char *d, size_t len, struct fast_res *f)
{
	size_t i = 0, k;

	if (len > FAST_HEAD_MAX)
		len = FAST_HEAD_MAX;
	for (k = 0; k < sizeof(fast_methods) / sizeof(fast_methods[0]);
	     k++) {
		if (len > fast_methods[k].len &&
		    memcmp(d, fast_methods[k].name, fast_methods[k].len) == 0)
			break;
	}
	if (k == sizeof(fast_methods) / sizeof(fast_methods[0]))
		return false;
	f->method = fast_methods[k].method;
	i = fast_methods[k].len;
	f->first_off = i;
	if (d[i] != '/')
		return false;
	i = skip_visible(d, i, len, ' ' + 1);
	while (i < len && (unsigned char)d[i] > ' ' &&
	       (unsigned char)d[i] < 0x7f)
		i++;
	f->first_len = i - f->first_off;
	if (len - i < 13 || memcmp(d + i, " HTTP/1.", 8) != 0 ||
	    (d[i + 8] != '0' && d[i + 8] != '1') || d[i + 9] != '\r' ||
	    d[i + 10] != '\n')
		return false;
	f->minor = (unsigned)(d[i + 8] - '0');
	f->status = 0;
	return fast_fields(d, i + 11, len, f);
}

/* A callback's result as http_parser takes it: non-zero is the error err.
 * Returns false when the parser must stop (an error or a pause). */
static bool fast_cb(struct hparse *h, int rc, enum http_errno err)
{
	if (rc != 0)
		h->p.http_errno = err;
	return HTTP_PARSER_ERRNO(&h->p) == HPE_OK;
}

/* Gives the callbacks of the head f checked at d, up to the blank line.
 * Returns 0, or the bytes http_parser would have consumed when a callback
 * stopped it. */
static size_t fast_give_head(struct hparse *h, const char *d,
			     const struct fast_res *f)
{
	const struct hparse_settings *s = h->settings;
	bool req = h->type == HPARSE_REQUEST;

	h->at_start = false;
	h->in_body = false;
	h->in_field = false;
	h->p.flags = (f->length != UINT64_MAX ? F_CONTENTLENGTH : 0) |
		     (f->keep_alive ? F_CONNECTION_KEEP_ALIVE : 0);
	h->p.uses_transfer_encoding = 0;
	h->p.content_length = f->length;
	h->p.status_code = f->status & 0xffff;
	h->p.method = f->method & 0xff;
	h->p.http_major = 1;
	h->p.http_minor = (unsigned short)f->minor;
	h->p.upgrade = 0;
	h->fast_left = f->length != UINT64_MAX ? f->length : 0;
	h->nfast++;
	h->fast_msg = true;
	if (s->on_message_begin &&
	    !fast_cb(h, head_rc(h, s->on_message_begin(h)),
		     HPE_CB_message_begin))
		return 1;
	if (s->whole_heads)
		return 0; /* on_headers_complete reads it (hparse_whole()) */
	if (req && s->on_url &&
	    !fast_cb(h, head_rc(h, s->on_url(h, d + f->first_off,
					     f->first_len)),
		     HPE_CB_url))
		return f->first_off + f->first_len + 1;
	if (!req && s->on_status &&
	    !fast_cb(h, head_rc(h, s->on_status(h, d + f->first_off,
						f->first_len)),
		     HPE_CB_status))
		return f->first_off + f->first_len + 1;
	for (unsigned k = 0; k < f->n; k++) {
		const struct hparse_field *x = &f->f[k];

		if (s->on_header_field &&
		    !fast_cb(h, head_rc(h, s->on_header_field(h, d + x->name,
							      x->nlen)),
			     HPE_CB_header_field))
			return (size_t)x->name + x->nlen + 1;
		if (s->on_header_value &&
		    !fast_cb(h, head_rc(h, s->on_header_value(h, d + x->val,
							      x->vlen)),
			     HPE_CB_header_value))
			return (size_t)x->val + x->vlen + 1;
	}
	return 0;
}

/*
 * Goes on with the fast path's message where it paused or ran out of bytes,
 * over [d, d + len). Returns the bytes consumed; *more tells that the
 * message is over and the rest of d may be parsed.
 */
static size_t fast_run(struct hparse *h, const char *d, size_t len,
		       bool *more)
{
	const struct hparse_settings *s = h->settings;
	size_t i = 0;
	uint64_t take;

	*more = false;
	if (h->fast == FAST_LAST) {
		i = 1; /* the body's last byte, again */
		goto complete;
	}
	if (h->fast == FAST_LF) {
		i = 1; /* the head's last LF, again */
		if (h->p.upgrade || (h->p.flags & F_SKIPBODY) ||
		    h->fast_left == 0)
			goto complete;
		h->fast = FAST_BODY;
	}
	take = h->fast_left < len - i ? h->fast_left : len - i;
	if (take == 0)
		return i;
	h->fast_left -= take;
	h->p.content_length -= take;
	if (h->fast_left > 0) {
		if (s->on_body)
			fast_cb(h, s->on_body(h, d + i, (size_t)take),
				HPE_CB_body);
		return len;
	}
	if (s->on_body &&
	    !fast_cb(h, s->on_body(h, d + i, (size_t)take), HPE_CB_body)) {
		h->fast = FAST_LAST;
		return i + (size_t)take - 1;
	}
	i += (size_t)take;
complete:
	h->fast = FAST_NONE;
	h->at_start = true;
	h->scan = SC_START;
	if (s->on_message_complete &&
	    !fast_cb(h, s->on_message_complete(h), HPE_CB_message_complete))
		return i;
	/* After an upgrade http_parser stops; for requests hparse_execute()
	 * goes on past its own pause all the same. */
	*more = h->p.upgrade == 0 || h->type == HPARSE_REQUEST;
	return i;
}

/* Reads the message whose head fast_res_head() or fast_req_head() checked
 * (f) from d: the head's callbacks, then on to the body as fast_run(). */
static size_t fast_start(struct hparse *h, const char *d, size_t len,
			 const struct fast_res *f, bool *more)
{
	const struct hparse_settings *s = h->settings;
	size_t i = fast_give_head(h, d, f);

	*more = false;
	if (i != 0)
		return i;
	/* The head's last LF: http_parser calls on_headers_complete on it,
	 * and reads it again after, as fast_run() does in FAST_LF. */
	i = f->head_len - 1;
	h->in_body = true;
	if (s->on_headers_complete) {
		struct hparse_whole whole = {
			d, f->head_len, f->first_off, f->first_len, f->f, f->n
		};
		int rc;

		h->whole = &whole;
		rc = s->on_headers_complete(h);
		h->whole = NULL;
		switch (rc) {
		case 0:
			break;
		case 2:
			h->p.upgrade = 1;
			h->p.flags |= F_SKIPBODY;
			break;
		case 1:
			h->p.flags |= F_SKIPBODY;
			break;
		default:
			h->p.http_errno = HPE_CB_headers_complete;
			return i;
		}
	}
	h->fast = FAST_LF;
	if (HTTP_PARSER_ERRNO(&h->p) != HPE_OK)
		return i;
	return i + fast_run(h, d + i, len - i, more);
}

/* The fast path's part of hparse_execute(): goes on with its message, or
 * reads a new one whose head it takes at data. Returns false, having done
 * nothing, when the message is http_parser's; else true, with *n the bytes
 * consumed and *more whether the rest may be parsed. */
static bool fast_step(struct hparse *h, const char *data, size_t len,
		      size_t *n, bool *more)
{
	struct fast_res f;

	if (h->fast != FAST_NONE) {
		*n = fast_run(h, data, len, more);
		return true;
	}
	if (!h->at_start || h->no_fast)
		return false;
	if (h->type == HPARSE_RESPONSE ? !fast_res_head(data, len, &f)
	    : h->scan != SC_START || !fast_req_head(data, len, &f))
		return false;
	*n = fast_start(h, data, len, &f, more);
	return true;
}


void hparse_init(struct hparse *h, enum hparse_type type,
		 const struct hparse_settings *settings, void *data)
{
	memset(h, 0, sizeof(*h));
	h->data = data;
	h->settings = settings;
	h->type = type;
	h->scan = SC_START;
	h->at_start = true;
	h->fast = FAST_NONE;
	http_parser_init(&h->p, type == HPARSE_REQUEST ? HTTP_REQUEST
							: HTTP_RESPONSE);
}

size_t hparse_execute(struct hparse *h, const char *data, size_t len)
{
	size_t pos = 0;

	if (len == 0) {
		if (h->fast == FAST_NONE || HTTP_PARSER_ERRNO(&h->p) != HPE_OK)
			return http_parser_execute(&h->p, &trampolines, data,
						   len);
		h->p.http_errno = HPE_INVALID_EOF_STATE; /* as the parser */
		return 1;
	}
	if (h->strict_err != HPARSE_OK)
		return 0;
	for (;;) {
		size_t end = len - pos, n;
		enum http_errno err;
		bool more;

		if (HTTP_PARSER_ERRNO(&h->p) != HPE_OK)
			return pos;
		if (fast_step(h, data + pos, len - pos, &n, &more)) {
			pos += n;
			if (!more || pos == len)
				return pos;
			continue;
		}
		if (h->type == HPARSE_RESPONSE)
			return pos + http_parser_execute(&h->p, &trampolines,
							 data + pos,
							 len - pos);
		if (h->scan != SC_BODY)
			end = scan(h, data + pos, len - pos);
		n = http_parser_execute(&h->p, &trampolines, data + pos, end);
		pos += n;
		err = HTTP_PARSER_ERRNO(&h->p);
		if (err == HPE_PAUSED && h->self_paused) {
			http_parser_pause(&h->p, 0);
			h->self_paused = false;
		} else if (err != HPE_OK || n < end) {
			return pos;
		}
		if (h->strict_err != HPARSE_OK || pos == len)
			return pos;
	}
}

void hparse_pause(struct hparse *h, bool paused)
{
	enum http_errno err = HTTP_PARSER_ERRNO(&h->p);

	/* What http_parser_pause() does, without the call, where it acts. */
	if (err == HPE_OK || err == HPE_PAUSED)
		h->p.http_errno = paused ? HPE_PAUSED : HPE_OK;
	else
		http_parser_pause(&h->p, paused ? 1 : 0);
	if (!paused)
		h->self_paused = false;
}

enum hparse_error hparse_error(const struct hparse *h)
{
	enum http_errno err = HTTP_PARSER_ERRNO(&h->p);

	if (h->strict_err != HPARSE_OK)
		return h->strict_err;
	switch (err) {
	case HPE_OK:
		return HPARSE_OK;
	case HPE_PAUSED:
		return HPARSE_PAUSED;
	case HPE_HEADER_OVERFLOW:
		return HPARSE_E_TOO_LARGE;
	case HPE_CB_message_begin:
	case HPE_CB_url:
	case HPE_CB_header_field:
	case HPE_CB_header_value:
	case HPE_CB_headers_complete:
	case HPE_CB_body:
	case HPE_CB_message_complete:
	case HPE_CB_status:
	case HPE_CB_chunk_header:
	case HPE_CB_chunk_complete:
		return HPARSE_E_CALLBACK;
	default:
		return HPARSE_E_SYNTAX;
	}
}

const char *hparse_error_text(const struct hparse *h)
{
	if (h->strict_err != HPARSE_OK)
		return h->strict_text;
	return http_errno_description(HTTP_PARSER_ERRNO(&h->p));
}

const char *hparse_method(const struct hparse *h)
{
	return http_method_str((enum http_method)h->p.method);
}

bool hparse_method_is(const struct hparse *h, const char *name)
{
	const char *m = hparse_method(h);

	return m[0] == name[0] && strcmp(m, name) == 0;
}

unsigned hparse_status(const struct hparse *h)
{
	return h->p.status_code;
}

const struct hparse_whole *hparse_whole(const struct hparse *h)
{
	return h->whole;
}

bool hparse_keep_alive(const struct hparse *h)
{
	/* Every message of the fast path keeps the connection alive. */
	return h->fast_msg || http_should_keep_alive(&h->p) != 0;
}

bool hparse_chunked(const struct hparse *h)
{
	return (h->p.flags & F_CHUNKED) != 0;
}

bool hparse_has_length(const struct hparse *h)
{
	return (h->p.flags & F_CONTENTLENGTH) != 0;
}

uint64_t hparse_length(const struct hparse *h)
{
	return hparse_has_length(h) ? h->p.content_length : 0;
}

bool hparse_upgrade(const struct hparse *h)
{
	return h->p.upgrade != 0;
}

bool hparse_http11(const struct hparse *h)
{
	return h->p.http_major > 1 ||
	       (h->p.http_major == 1 && h->p.http_minor >= 1);
}

const char *hparse_reason(int status)
{
	return http_status_str((enum http_status)status);
}

static struct hparse_span span_of(const struct http_parser_url *u,
				  enum http_parser_url_fields f)
{
	struct hparse_span sp = {0, 0, false};

	if (u->field_set & (1 << f)) {
		sp.off = u->field_data[f].off;
		sp.len = u->field_data[f].len;
		sp.set = true;
	}
	return sp;
}

/*
 * Splits an origin-form target of visible ASCII ("/path?query#fragment"),
 * the request target of nearly every request, into the parts
 * http_parser_parse_url() gives, without its general state machine: the
 * path up to the first '?' or '#'; the query after that '?' up to the
 * first '#', if not empty; the fragment after the first '#' and any '#'
 * right after it, if not empty (tests/unit/test_hparse.c checks that both
 * agree). Returns false, leaving out as it is, for any other URL.
 */
static bool split_origin(const char *url, size_t len, struct hparse_url *out)
{
	size_t q = len, f = len, k, i = 0;

	if (len == 0 || url[0] != '/')
		return false;
	/* Words of visible bytes but '?' and '#' first: nothing to note. */
	while (len - i >= 8) {
		uint64_t v = load8(url + i);

		if (outside(v, 0x21) || zero_byte(v ^ (ONES * '?')) ||
		    zero_byte(v ^ (ONES * '#')))
			break;
		i += 8;
	}
	for (; i < len; i++) {
		unsigned char ch = (unsigned char)url[i];

		if (ch <= ' ' || ch >= 0x7f)
			return false;
		if (ch == '#' && f == len)
			f = i;
		else if (ch == '?' && q == len && f == len)
			q = i;
	}
	out->path = (struct hparse_span){ 0, q < f ? q : f, true };
	if (q < f && f - q > 1)
		out->query = (struct hparse_span){ q + 1, f - q - 1, true };
	for (k = f; k < len && url[k] == '#'; k++)
		;
	if (k < len)
		out->fragment = (struct hparse_span){ k, len - k, true };
	return true;
}

int hparse_url(const char *url, size_t len, struct hparse_url *out)
{
	struct http_parser_url u;

	memset(out, 0, sizeof(*out));
	if (split_origin(url, len, out))
		return 0;
	http_parser_url_init(&u);
	if (http_parser_parse_url(url, len, 0, &u) != 0)
		return -1;
	out->schema = span_of(&u, UF_SCHEMA);
	out->host = span_of(&u, UF_HOST);
	out->userinfo = span_of(&u, UF_USERINFO);
	out->path = span_of(&u, UF_PATH);
	out->query = span_of(&u, UF_QUERY);
	out->fragment = span_of(&u, UF_FRAGMENT);
	out->port = (u.field_set & (1 << UF_PORT)) ? u.port : 0;
	return 0;
}
