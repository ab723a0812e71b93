/*
 * fuzz_http_request.c - libFuzzer harness for request heads and bodies as
 * the API server and the gateway read them (src/http/hparse.h, which both
 * use, and its strict head scanner).
 *
 * The first input byte picks how the rest is cut into reads (1 to 256
 * bytes, or all at once), so that every split point of a head or a chunked
 * body is tried. Invariants checked: no header name that reaches a callback
 * holds a character outside RFC 9110's tchar, no head passes the field
 * count cap, the parser never reports more bytes than it was given, and a
 * refusal is final. Then the same bytes, in the same pieces, through hparse
 * with its fast path and without (hparse_diff.h), with pauses and
 * on_headers_complete's answer as the last byte says: they must agree.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/hparse.h"

#include "hparse_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct state {
	unsigned fields, messages;
	size_t body;
	bool in_field;
};

static bool tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int on_begin(struct hparse *h)
{
	struct state *s = h->data;

	s->fields = 0;
	s->in_field = false;
	return 0;
}

static int on_field(struct hparse *h, const char *at, size_t len)
{
	struct state *s = h->data;

	for (size_t i = 0; i < len; i++)
		if (!tchar((unsigned char)at[i]))
			abort();
	if (!s->in_field && ++s->fields > HPARSE_FIELDS_MAX)
		abort();
	s->in_field = true;
	return 0;
}

static int on_value(struct hparse *h, const char *at, size_t len)
{
	(void)at;
	(void)len;
	((struct state *)h->data)->in_field = false;
	return 0;
}

static int on_headers(struct hparse *h)
{
	struct hparse_url u;

	(void)hparse_method(h);
	(void)hparse_keep_alive(h);
	(void)hparse_length(h);
	(void)hparse_url("/", 1, &u);
	return 0;
}

static int on_body(struct hparse *h, const char *at, size_t len)
{
	(void)at;
	((struct state *)h->data)->body += len;
	return 0;
}

static int on_complete(struct hparse *h)
{
	((struct state *)h->data)->messages++;
	return 0;
}

static const struct hparse_settings settings = {
	.on_message_begin = on_begin,
	.on_header_field = on_field,
	.on_header_value = on_value,
	.on_headers_complete = on_headers,
	.on_body = on_body,
	.on_message_complete = on_complete,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state st = { 0 };
	struct hparse h;
	size_t step, off = 1;
	char *copy;

	if (size == 0)
		return 0;
	step = data[0] == 0 ? size : data[0];
	/* A copy the size of the input, so that ASan sees any read past it. */
	copy = malloc(size);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	hparse_init(&h, HPARSE_REQUEST, &settings, &st);
	while (off < size) {
		size_t n = size - off < step ? size - off : step;
		size_t used = hparse_execute(&h, copy + off, n);
		enum hparse_error err = hparse_error(&h);

		if (used > n)
			abort();
		off += used;
		if (err == HPARSE_PAUSED) {
			hparse_pause(&h, false);
			continue;
		}
		if (err != HPARSE_OK) {
			/* Refused: nothing more goes through. */
			if (hparse_execute(&h, copy + off, size - off) != 0 &&
			    hparse_error(&h) == HPARSE_OK)
				abort();
			(void)hparse_error_text(&h);
			break;
		}
		if (used < n)
			break; /* an upgrade: the rest is not HTTP */
	}
	if (hparse_diff_req(copy + 1, size - 1, step,
			    (unsigned)data[size - 1] % DIFF_POLICIES,
			    NULL) != NULL)
		abort();
	free(copy);
	return 0;
}
