/* tmpstore.c - a store in a temporary directory; see tmpstore.h. */
#include "tmpstore.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/store.h"

int tmpstore_open(struct tmpstore *ts, const char *tag)
{
	char diag[256];

	snprintf(ts->dir, sizeof(ts->dir), "/tmp/mdscale-%s-XXXXXX", tag);
	if (mkdtemp(ts->dir) == NULL) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(ts->path, sizeof(ts->path), "%s/t.db", ts->dir);
	if (store_open(ts->path, &ts->st, diag, sizeof(diag)) != 0) {
		fprintf(stderr, "store_open %s: %s\n", ts->path, diag);
		return -1;
	}
	return 0;
}

static int unlink_one(const char *path, const struct stat *sb, int flag,
		      struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int tmpstore_close(struct tmpstore *ts)
{
	store_close(ts->st);
	ts->st = NULL;
	return nftw(ts->dir, unlink_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0
									: -1;
}
