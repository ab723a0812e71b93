/* jsonw.c - streaming JSON writer; see jsonw.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonw.h"
#include "util/err.h"

void jsonw_init(struct jsonw *w, struct buf *b, int pretty)
{
	memset(w, 0, sizeof(*w));
	w->b = b;
	w->pretty = pretty;
}

static void put(struct jsonw *w, const char *s, size_t n)
{
	if (w->rc == 0)
		w->rc = buf_add(w->b, s, n);
}

static void newline(struct jsonw *w)
{
	static const char spaces[] = "                                ";

	if (!w->pretty)
		return;
	put(w, "\n", 1);
	for (int i = 0; i < w->depth; i++)
		put(w, spaces, 2);
}

/* Separates a value from what precedes it; checks that it may go here. */
static int before_value(struct jsonw *w)
{
	if (w->rc != 0)
		return -1;
	if (w->after_key) {
		w->after_key = 0;
		return 0;
	}
	if (w->depth > 0 && w->is_obj[w->depth - 1]) {
		w->rc = MDS_E_INVAL; /* an object member needs a key */
		return -1;
	}
	if (w->depth > 0) {
		if (!w->empty[w->depth - 1])
			put(w, ",", 1);
		w->empty[w->depth - 1] = 0;
		newline(w);
	}
	return w->rc == 0 ? 0 : -1;
}

static void nest_open(struct jsonw *w, char c, int is_obj)
{
	if (before_value(w) != 0)
		return;
	if (w->depth == JSONW_MAX_DEPTH) {
		w->rc = MDS_E_INVAL;
		return;
	}
	put(w, &c, 1);
	w->empty[w->depth] = 1;
	w->is_obj[w->depth] = (unsigned char)is_obj;
	w->depth++;
}

static void nest_close(struct jsonw *w, char c, int is_obj)
{
	if (w->rc != 0)
		return;
	if (w->depth == 0 || w->is_obj[w->depth - 1] != is_obj ||
	    w->after_key) {
		w->rc = MDS_E_INVAL;
		return;
	}
	w->depth--;
	if (!w->empty[w->depth])
		newline(w);
	put(w, &c, 1);
}

void jsonw_object_begin(struct jsonw *w)
{
	nest_open(w, '{', 1);
}

void jsonw_object_end(struct jsonw *w)
{
	nest_close(w, '}', 1);
}

void jsonw_array_begin(struct jsonw *w)
{
	nest_open(w, '[', 0);
}

void jsonw_array_end(struct jsonw *w)
{
	nest_close(w, ']', 0);
}

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

static void put_escaped(struct jsonw *w, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	const unsigned char *run = s;

	put(w, "\"", 1);
	while (*s != '\0') {
		const char *esc = NULL;
		char tmp[8];
		size_t n = utf8_len(s);

		if (n > 1) {
			s += n;
			continue;
		}
		if (n == 1 && *s >= 0x20 && *s != '"' && *s != '\\') {
			s++;
			continue;
		}
		put(w, (const char *)run, (size_t)(s - run));
		if (n == 0)
			esc = "\xef\xbf\xbd"; /* U+FFFD */
		else if (*s == '"')
			esc = "\\\"";
		else if (*s == '\\')
			esc = "\\\\";
		else if (*s == '\n')
			esc = "\\n";
		else if (*s == '\r')
			esc = "\\r";
		else if (*s == '\t')
			esc = "\\t";
		else {
			snprintf(tmp, sizeof(tmp), "\\u%04x", *s);
			esc = tmp;
		}
		put(w, esc, strlen(esc));
		s++;
		run = s;
	}
	put(w, (const char *)run, (size_t)(s - run));
	put(w, "\"", 1);
}

void jsonw_key(struct jsonw *w, const char *key)
{
	if (w->rc != 0)
		return;
	if (w->depth == 0 || !w->is_obj[w->depth - 1] || w->after_key) {
		w->rc = MDS_E_INVAL;
		return;
	}
	if (!w->empty[w->depth - 1])
		put(w, ",", 1);
	w->empty[w->depth - 1] = 0;
	newline(w);
	put_escaped(w, key);
	put(w, w->pretty ? ": " : ":", w->pretty ? 2 : 1);
	w->after_key = 1;
}

void jsonw_string(struct jsonw *w, const char *s)
{
	if (s == NULL) {
		jsonw_null(w);
		return;
	}
	if (before_value(w) == 0)
		put_escaped(w, s);
}

void jsonw_int(struct jsonw *w, int64_t v)
{
	char tmp[24];

	if (before_value(w) != 0)
		return;
	snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
	put(w, tmp, strlen(tmp));
}

void jsonw_double(struct jsonw *w, double v)
{
	char tmp[32];

	if (!isfinite(v)) {
		jsonw_null(w);
		return;
	}
	if (before_value(w) != 0)
		return;
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	put(w, tmp, strlen(tmp));
}

void jsonw_bool(struct jsonw *w, int v)
{
	jsonw_raw(w, v ? "true" : "false");
}

void jsonw_null(struct jsonw *w)
{
	jsonw_raw(w, "null");
}

void jsonw_raw(struct jsonw *w, const char *text)
{
	if (before_value(w) == 0)
		put(w, text, strlen(text));
}

int jsonw_finish(struct jsonw *w)
{
	if (w->rc == 0 && (w->depth != 0 || w->after_key))
		w->rc = MDS_E_INVAL;
	return w->rc;
}
