/*
 * headers.h - lookups in a block of HTTP header lines.
 *
 * Both the HTTP server (request headers) and the HTTP client (response
 * headers) keep a message's headers as one string of "Name: value\r\n"
 * lines; this finds one of them.
 */
#ifndef MDS_HEADERS_H
#define MDS_HEADERS_H

#include <stddef.h>

/*
 * Copies the value of header name (case-insensitive; the last one if it is
 * repeated; surrounding blanks removed) from lines (may be NULL) into out
 * (outsz bytes, truncated). Returns 1 if present, 0 if not (out is then
 * "").
 */
int headers_get(const char *lines, const char *name, char *out, size_t outsz);

#endif
