/*
 * base64.c - decoding base64; see base64.h.
 */
#include "util/base64.h"

#include <stdint.h>
#include <stdlib.h>

#include "util/err.h"
#include "util/xalloc.h"

/* The value of one character in either alphabet, or -1. */
static int sextet(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+' || ch == '-')
		return 62;
	if (ch == '/' || ch == '_')
		return 63;
	return -1;
}

int base64_decode(const char *src, size_t len, char **out, size_t *outlen)
{
	char *dst = xmalloc(len / 4 * 3 + 4);
	size_t n = 0, pad = 0;
	uint32_t acc = 0;
	unsigned bits = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = src[i];
		int v;

		if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
			continue;
		if (ch == '=') {
			pad++;
			continue;
		}
		v = sextet(ch);
		if (v < 0 || pad > 0)
			goto bad;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			dst[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	/* Left-over bits: 0, 2 or 4 are fine (unpadded ends); 6 is not. */
	if (bits >= 6 || pad > 2)
		goto bad;
	dst[n] = '\0';
	*out = dst;
	*outlen = n;
	return 0;
bad:
	free(dst);
	return MDS_E_INVAL;
}
