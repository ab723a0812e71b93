/*
 * tmpstore.h - for the unit tests: an SQLite store (store/store.h) in a
 * new temporary directory, and the directory gone after.
 */
#ifndef MDS_TEST_TMPSTORE_H
#define MDS_TEST_TMPSTORE_H

struct store;

struct tmpstore {
	char dir[64];   /* /tmp/mdscale-TAG-XXXXXX */
	char path[96];  /* dir/t.db */
	struct store *st;
};

/* Makes the directory (tag names the test in it) and opens the store in
 * it. Returns 0, or -1 with the reason on stderr. */
int tmpstore_open(struct tmpstore *ts, const char *tag);

/* Closes the store and removes the directory with all in it. 0 or -1. */
int tmpstore_close(struct tmpstore *ts);

#endif
