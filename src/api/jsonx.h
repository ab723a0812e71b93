/*
 * jsonx.h - small jansson helpers the API modules share, and the modules
 * that read their own stored JSON documents.
 */
#ifndef MDS_JSONX_H
#define MDS_JSONX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jsonw.h"
#include "core/tsdb.h"

/* Returns o's string member key, or dflt when o is not an object or the
 * member is missing or not a string. The string is borrowed: it lives as
 * long as o does. */
const char *jsonx_str(const json_t *o, const char *key, const char *dflt);

/* Returns o's integer member key when it is 1 to max, else 0 (missing, not
 * an integer, out of range). */
uint32_t jsonx_uint(const json_t *o, const char *key, uint32_t max);

/* Returns ms as an RFC 3339 string with milliseconds, or null when ms <= 0.
 * A new reference. */
json_t *jsonx_time(int64_t ms);

/* Returns dimensions as an object of strings: a new reference. */
json_t *jsonx_dims(const struct tsdb_dim *dims, size_t n);

/* jsonx_time() and jsonx_dims() for a streaming writer: the same text,
 * without a tree of objects to build and free (an answer or a record with
 * thousands of dimensions is written several times faster). */
void jsonx_write_time(struct jsonw *w, int64_t ms);
void jsonx_write_dims(struct jsonw *w, const struct tsdb_dim *dims,
		      size_t n);

/* Returns a new argv (free with xstrvfree()) from a JSON array of 1 to max
 * strings, or NULL if a is not one. */
char **jsonx_strv(const json_t *a, size_t max);

/* Returns argv as a JSON array of strings. A new reference. */
json_t *jsonx_strv_json(const char *const *argv);

/* Returns a deployment's command as it is shown and stored: with shell,
 * the one line for /bin/sh -c (argv[0], "" if none); else argv as an
 * array. argv is NULL-terminated. A new reference. */
json_t *jsonx_command(bool shell, char *const *argv);

/* Returns {"KEY": "value"} of n "KEY=value" strings. A new reference. */
json_t *jsonx_pairs(char *const *v, size_t n);

#endif
