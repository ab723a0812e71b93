/*
 * fuzz_rows.h - the input format of the harnesses that fuzz store rows:
 * one row a line, "KIND ID JSON" (the document's text as stored; any bytes
 * up to the line's end), lines of other kinds skipped.
 */
#ifndef MDS_FUZZ_ROWS_H
#define MDS_FUZZ_ROWS_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define ROWS_MAX 16

/* One row of the input; its strings point into the text it was split
 * from. */
struct row {
	const char *kind;
	char *id;
	char *json;
};

/* Splits text (modified) into at most ROWS_MAX rows of the nkinds kinds;
 * returns how many. */
static size_t rows_split(char *text, const char *const *kinds, size_t nkinds,
			 struct row *rows)
{
	size_t n = 0;
	char *line = text;

	while (line != NULL && n < ROWS_MAX) {
		char *next = strchr(line, '\n'), *sp, *sp2;

		if (next != NULL)
			*next++ = '\0';
		sp = strchr(line, ' ');
		sp2 = sp != NULL ? strchr(sp + 1, ' ') : NULL;
		if (sp2 != NULL) {
			*sp = *sp2 = '\0';
			for (size_t k = 0; k < nkinds; k++) {
				if (strcmp(line, kinds[k]) == 0) {
					rows[n++] = (struct row){ kinds[k],
								  sp + 1,
								  sp2 + 1 };
					break;
				}
			}
		}
		line = next;
	}
	return n;
}

/* Puts rows[0..n) into st in one transaction; aborts if the store fails
 * (the harness's own fault, not the input's). */
static void rows_store(struct store *st, const struct row *rows, size_t n)
{
	if (store_begin(st) != 0)
		abort();
	for (size_t i = 0; i < n; i++)
		if (store_put(st, rows[i].kind, rows[i].id, rows[i].json) != 0)
			abort();
	if (store_commit(st) != 0)
		abort();
}

#endif
