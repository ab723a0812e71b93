/*
 * jsonstr.h - the one JSON string escaper.
 *
 * Whatever writes JSON text by hand (the core's streaming writer, the
 * gateway's own error answers) escapes strings here: '"' and '\\' with a
 * backslash; \n, \r and \t by name; other control characters as \u00XX;
 * valid UTF-8 as it is; a byte that does not start valid UTF-8 becomes
 * U+FFFD, so the output is always valid JSON whatever the input.
 */
#ifndef MDS_JSONSTR_H
#define MDS_JSONSTR_H

#include <stdbool.h>

#include "util/buf.h"

/* How much longer escaping can make a string, at most: a control
 * character becomes 6 bytes. */
#define JSONSTR_MAX_GROWTH 6

/*
 * Appends s, escaped, to b: the inside of a JSON string, without the
 * quotes. Returns 0, or MDS_E_LIMIT when b's cap is reached (b then holds
 * a part of it).
 */
int jsonstr_escape(struct buf *b, const char *s);

/* Whether jsonstr_escape() writes s unchanged (plain ASCII text with no
 * '"', '\\' or control characters). */
bool jsonstr_is_plain(const char *s);

#endif
