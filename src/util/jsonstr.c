/* jsonstr.c - see jsonstr.h. */
#include <stdio.h>
#include <string.h>

#include "util/err.h"
#include "util/jsonstr.h"

/* Length of the valid UTF-8 sequence at s, or 0 if it is not valid. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* The escape of the byte at s (not a valid start of UTF-8 when invalid),
 * into tmp if it needs building. */
static const char *escape_of(const unsigned char *s, int invalid,
			     char tmp[8])
{
	if (invalid)
		return "\xef\xbf\xbd"; /* U+FFFD */
	switch (*s) {
	case '"': return "\\\"";
	case '\\': return "\\\\";
	case '\n': return "\\n";
	case '\r': return "\\r";
	case '\t': return "\\t";
	default:
		snprintf(tmp, 8, "\\u%04x", *s);
		return tmp;
	}
}

int jsonstr_escape(struct buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	const unsigned char *run = s;
	int rc = 0;

	while (*s != '\0' && rc == 0) {
		size_t n = utf8_len(s);
		char tmp[8];
		const char *esc;

		if (n > 1) {
			s += n;
			continue;
		}
		if (n == 1 && *s >= 0x20 && *s != '"' && *s != '\\') {
			s++;
			continue;
		}
		esc = escape_of(s, n == 0, tmp);
		rc = buf_add(b, run, (size_t)(s - run));
		if (rc == 0)
			rc = buf_add(b, esc, strlen(esc));
		s++;
		run = s;
	}
	if (rc == 0)
		rc = buf_add(b, run, (size_t)(s - run));
	return rc;
}

bool jsonstr_is_plain(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\' ||
		    (unsigned char)*s >= 0x80)
			return false;
	return true;
}
