/*
 * fuzz_http_response.c - libFuzzer harness for response heads and bodies as
 * the gateway reads an instance's answers and the load generator reads the
 * gateway's (src/http/hparse.h, response side), cut into reads as the first
 * byte says, ended by the end of input as a closing upstream would; then
 * the same bytes, in the same pieces, through hparse and through
 * http_parser alone (hparse_diff.h), with pauses and on_headers_complete's
 * answer as the last byte says: the fast path must agree with the parser
 * on every input, or leave it to the parser.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/hparse.h"

#include "hparse_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_headers(struct hparse *h)
{
	unsigned st = hparse_status(h);

	if (st > 999)
		abort();
	(void)hparse_chunked(h);
	(void)hparse_has_length(h);
	return 0;
}

static int on_complete(struct hparse *h)
{
	hparse_pause(h, true);
	return 0;
}

static const struct hparse_settings settings = {
	.on_headers_complete = on_headers,
	.on_message_complete = on_complete,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hparse h;
	size_t step, off = 1;
	char *copy;

	if (size == 0)
		return 0;
	step = data[0] == 0 ? size : data[0];
	copy = malloc(size);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	hparse_init(&h, HPARSE_RESPONSE, &settings, NULL);
	while (off < size) {
		size_t n = size - off < step ? size - off : step;
		size_t used = hparse_execute(&h, copy + off, n);
		enum hparse_error err = hparse_error(&h);

		if (used > n)
			abort();
		off += used;
		if (err == HPARSE_PAUSED)
			hparse_pause(&h, false);
		else if (err != HPARSE_OK || used < n)
			break;
	}
	if (hparse_error(&h) == HPARSE_OK)
		hparse_execute(&h, NULL, 0);
	(void)hparse_error_text(&h);
	if (hparse_diff(copy + 1, size - 1, step,
			(unsigned)data[size - 1] % DIFF_POLICIES, NULL) != NULL)
		abort();
	free(copy);
	return 0;
}
