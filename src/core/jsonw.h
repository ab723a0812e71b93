/*
 * jsonw.h - a small streaming JSON writer over a capped struct buf.
 *
 * The core builds alarm messages without a JSON library. Calls append
 * values in document order; commas, colons and (when pretty) newlines and
 * two-space indentation are inserted automatically. Errors are sticky: the
 * first one (the buffer's cap reached, nesting past JSONW_MAX_DEPTH, a key
 * outside an object) is kept, later calls do nothing, and jsonw_finish()
 * reports it, so a caller checks once at the end.
 */
#ifndef MDS_JSONW_H
#define MDS_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define JSONW_MAX_DEPTH 32

struct jsonw {
	struct buf *b;
	int pretty;
	int rc;
	int depth;
	int after_key;
	unsigned char empty[JSONW_MAX_DEPTH]; /* 1 until a member is written */
	unsigned char is_obj[JSONW_MAX_DEPTH];
};

/* Starts writing into b (appending to what it holds); b stays the caller's. */
void jsonw_init(struct jsonw *w, struct buf *b, int pretty);

void jsonw_object_begin(struct jsonw *w);
void jsonw_object_end(struct jsonw *w);
void jsonw_array_begin(struct jsonw *w);
void jsonw_array_end(struct jsonw *w);
/* Writes an object member's key; the next call writes its value. */
void jsonw_key(struct jsonw *w, const char *key);
/* Writes a string, escaped; invalid UTF-8 becomes U+FFFD. NULL is null. */
void jsonw_string(struct jsonw *w, const char *s);
void jsonw_int(struct jsonw *w, int64_t v);
/* Writes the shortest text that reads back as v; NaN and inf as null. */
void jsonw_double(struct jsonw *w, double v);
/* jsonw_double(), with ".0" after a number that would read as an integer
 * (99.0, not 99), as JSON libraries write a real. */
void jsonw_real(struct jsonw *w, double v);
void jsonw_bool(struct jsonw *w, int v);
void jsonw_null(struct jsonw *w);
/* Writes text as is: the caller vouches that it is one valid JSON value. */
void jsonw_raw(struct jsonw *w, const char *text);

/*
 * Returns 0 if a complete document was written; MDS_E_LIMIT if the buffer's
 * cap was reached, MDS_E_INVAL for unbalanced or misplaced calls.
 */
int jsonw_finish(struct jsonw *w);

#endif
