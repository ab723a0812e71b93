/*
 * buf.h - a growable byte buffer with a hard cap.
 *
 * Like curl's dynbuf: every buffer fed from outside input is created with a
 * maximum size, and an append past it fails with MDS_E_LIMIT instead of
 * growing memory without a bound. The content is always NUL-terminated.
 */
#ifndef MDS_BUF_H
#define MDS_BUF_H

#include <stddef.h>
#include <string.h>

struct buf {
	char *data;  /* NUL-terminated, or NULL while empty */
	size_t len;  /* bytes used, not counting the NUL */
	size_t cap;  /* bytes allocated */
	size_t max;  /* the most len may ever be */
};

/* Initializes an empty buffer that may hold at most max bytes. */
void buf_init(struct buf *b, size_t max);
/* Frees the content; the buffer may be reused after buf_init. NULL is fine. */
void buf_free(struct buf *b);
/* Empties the buffer, keeping its allocation. */
void buf_reset(struct buf *b);
/* buf_add() when the bytes do not fit the allocation as it is: grows it.
 * Returns 0, or MDS_E_LIMIT (and leaves b unchanged) if max would be
 * passed. */
int buf_add_grow(struct buf *b, const void *data, size_t len);

/* Returns 0, or MDS_E_LIMIT (and leaves b unchanged) if max would be passed.
 * Inline: an append into room already allocated (the usual case of a
 * buffer that is reset and reused) is a copy, not a call. cap is at most
 * max + 1, so what fits below cap is within max. */
static inline int buf_add(struct buf *b, const void *data, size_t len)
{
	if (len >= b->cap - b->len) /* cap 0 (no data yet) included */
		return buf_add_grow(b, data, len);
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

static inline int buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Returns the content ("" while empty); owned by the buffer. */
const char *buf_str(const struct buf *b);
/* Hands the content to the caller (who frees it) and empties the buffer. */
char *buf_steal(struct buf *b);

#endif
