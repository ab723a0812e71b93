/*
 * hparse.c - the HTTP/1.x parser wrapper over http_parser; see hparse.h.
 *
 * http_parser calls back with its own struct; the trampolines below find the
 * struct hparse around it and call the caller's settings.
 */
#include <string.h>

#include "http/hparse.h"

#define PARSER_OF(p) \
	((struct hparse *)(void *)((char *)(p) - offsetof(struct hparse, p)))

static int t_begin(http_parser *p)
{
	struct hparse *h = PARSER_OF(p);

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

static int t_field(http_parser *p, const char *at, size_t len)
{
	struct hparse *h = PARSER_OF(p);

	return h->settings->on_header_field
	       ? h->settings->on_header_field(h, at, len) : 0;
}

static int t_value(http_parser *p, const char *at, size_t len)
{
	struct hparse *h = PARSER_OF(p);

	return h->settings->on_header_value
	       ? h->settings->on_header_value(h, at, len) : 0;
}

static int t_headers(http_parser *p)
{
	struct hparse *h = PARSER_OF(p);

	return h->settings->on_headers_complete
	       ? h->settings->on_headers_complete(h) : 0;
}

static int t_body(http_parser *p, const char *at, size_t len)
{
	struct hparse *h = PARSER_OF(p);

	return h->settings->on_body ? h->settings->on_body(h, at, len) : 0;
}

static int t_complete(http_parser *p)
{
	struct hparse *h = PARSER_OF(p);

	return h->settings->on_message_complete
	       ? h->settings->on_message_complete(h) : 0;
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
	http_parser_init(&h->p, type == HPARSE_REQUEST ? HTTP_REQUEST
							: HTTP_RESPONSE);
}

size_t hparse_execute(struct hparse *h, const char *data, size_t len)
{
	return http_parser_execute(&h->p, &trampolines, data, len);
}

void hparse_pause(struct hparse *h, bool paused)
{
	http_parser_pause(&h->p, paused ? 1 : 0);
}

enum hparse_error hparse_error(const struct hparse *h)
{
	enum http_errno err = HTTP_PARSER_ERRNO(&h->p);

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
	return http_errno_description(HTTP_PARSER_ERRNO(&h->p));
}

const char *hparse_method(const struct hparse *h)
{
	return http_method_str((enum http_method)h->p.method);
}

bool hparse_method_is(const struct hparse *h, const char *name)
{
	return strcmp(hparse_method(h), name) == 0;
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

int hparse_url(const char *url, size_t len, struct hparse_url *out)
{
	struct http_parser_url u;

	memset(out, 0, sizeof(*out));
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
