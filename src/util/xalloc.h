/*
 * xalloc.h - allocation that aborts on failure.
 *
 * Running out of memory is not recoverable for a daemon that must keep its
 * promises; what matters instead is that no outside input can make memory grow
 * without a bound (every buffer and collection has a cap).
 */
#ifndef MDS_XALLOC_H
#define MDS_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Reallocates an array of nmemb elements of size bytes, checking overflow. */
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a newly allocated formatted string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Returns a new copy of a NULL-terminated string vector (an argv); free it
 * with xstrvfree(). */
char **xstrvdup(const char *const *v);
/* The same for the first n strings of v, NULL-terminated in the copy. */
char **xstrvndup(const char *const *v, size_t n);
/* Returns n bytes (a multiple of the page size) of fresh anonymous pages,
 * zero and not yet resident: the kernel provides each page when it is
 * first touched. Free with xunmap(), whole or a page-aligned part at a
 * time. */
void *xmap(size_t n);
/* Returns the pages [p, p + n) of an xmap() block to the system. */
void xunmap(void *p, size_t n);
/* Frees a vector from xstrvdup() and its strings; NULL is accepted. */
void xstrvfree(char **v);

#endif
