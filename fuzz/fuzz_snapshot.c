/*
 * fuzz_snapshot.c - libFuzzer harness for the metrics snapshot as read at
 * start (tsdb_load(): the file the daemon wrote, or one damaged on disk).
 * A load either fails and leaves the store as it was, or succeeds; then the
 * store must dump and load again into a fresh store.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tsdb.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int collect(void *arg, const void *data, size_t len)
{
	return buf_add(arg, data, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tsdb *db, *again;
	struct buf img;
	char diag[256];

	if (tsdb_create(NULL, &db, NULL, 0) != 0)
		abort();
	if (tsdb_load(db, data, size, diag, sizeof(diag)) == 0) {
		buf_init(&img, (size_t)1 << 28);
		if (tsdb_dump(db, collect, &img) != 0)
			abort();
		if (tsdb_create(NULL, &again, NULL, 0) != 0 ||
		    tsdb_load(again, img.data, img.len, diag,
			      sizeof(diag)) != 0)
			abort();
		tsdb_free(again);
		buf_free(&img);
	}
	tsdb_free(db);
	return 0;
}
