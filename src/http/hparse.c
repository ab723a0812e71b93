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

/* RFC 9110 5.6.2 tchar. */
static bool is_tchar(unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9'))
		return true;
	switch (ch) {
	case '!': case '#': case '$': case '%': case '&': case '\'':
	case '*': case '+': case '-': case '.': case '^': case '_':
	case '`': case '|': case '~':
		return true;
	default:
		return false;
	}
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

static int t_begin(http_parser *p)
{
	struct hparse *h = PARSER_OF(p);

	h->in_body = false;
	return h->settings->on_message_begin
	       ? h->settings->on_message_begin(h) : 0;
}

static int t_url(http_parser *p, const char *at, size_t len)
{
	struct hparse *h = PARSER_OF(p);

	return h->settings->on_url ? h->settings->on_url(h, at, len) : 0;
}

static int t_status(http_parser *p, const char *at, size_t len)
{
	struct hparse *h = PARSER_OF(p);

	return h->settings->on_status ? h->settings->on_status(h, at, len)
				      : 0;
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
	       ? h->settings->on_header_field(h, at, len) : 0;
}

static int t_value(http_parser *p, const char *at, size_t len)
{
	struct hparse *h = PARSER_OF(p);

	h->in_field = false;
	return h->settings->on_header_value
	       ? h->settings->on_header_value(h, at, len) : 0;
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

void hparse_init(struct hparse *h, enum hparse_type type,
		 const struct hparse_settings *settings, void *data)
{
	memset(h, 0, sizeof(*h));
	h->data = data;
	h->settings = settings;
	h->type = type;
	h->scan = SC_START;
	http_parser_init(&h->p, type == HPARSE_REQUEST ? HTTP_REQUEST
							: HTTP_RESPONSE);
}

size_t hparse_execute(struct hparse *h, const char *data, size_t len)
{
	size_t pos = 0;

	if (h->type == HPARSE_RESPONSE || len == 0)
		return http_parser_execute(&h->p, &trampolines, data, len);
	if (h->strict_err != HPARSE_OK)
		return 0;
	for (;;) {
		size_t end = len - pos, n;
		enum http_errno err;

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

bool hparse_keep_alive(const struct hparse *h)
{
	return http_should_keep_alive(&h->p) != 0;
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
	size_t q = len, f = len, k;

	if (len == 0 || url[0] != '/')
		return false;
	for (size_t i = 0; i < len; i++) {
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
