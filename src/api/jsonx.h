/*
 * jsonx.h - small jansson helpers the API modules share.
 */
#ifndef MDS_JSONX_H
#define MDS_JSONX_H

#include <jansson.h>
#include <stdint.h>

/* Returns ms as an RFC 3339 string with milliseconds, or null when ms <= 0.
 * A new reference. */
json_t *jsonx_time(int64_t ms);

#endif
