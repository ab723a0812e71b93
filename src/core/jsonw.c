/* jsonw.c - streaming JSON writer; see jsonw.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonw.h"
#include "util/err.h"
#include "util/jsonstr.h"

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

static void put_escaped(struct jsonw *w, const char *str)
{
	put(w, "\"", 1);
	if (w->rc == 0)
		w->rc = jsonstr_escape(w->b, str);
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

/* The shortest text that reads back as v (finite), with ".0" added when it
 * reads as an integer and as_real is set. */
static void put_double(struct jsonw *w, double v, int as_real)
{
	char tmp[40];
	size_t n;

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
	n = strlen(tmp);
	if (as_real && strpbrk(tmp, ".e") == NULL) {
		memcpy(tmp + n, ".0", 3);
		n += 2;
	}
	put(w, tmp, n);
}

void jsonw_double(struct jsonw *w, double v)
{
	put_double(w, v, 0);
}

void jsonw_real(struct jsonw *w, double v)
{
	put_double(w, v, 1);
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
