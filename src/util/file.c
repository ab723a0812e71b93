/*
 * file.c - reading a whole small file, with a cap; see file.h.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/file.h"

int file_read_all(const char *path, size_t max, char **out, size_t *len_out,
		  char *diag, size_t diagsz)
{
	char chunk[4096];
	struct buf b;
	FILE *f;
	size_t n;
	int rc = 0;

	*out = NULL;
	f = fopen(path, "rb");
	if (!f) {
		mds_diag(diag, diagsz, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? MDS_E_NOTFOUND : MDS_E_IO;
	}
	buf_init(&b, max);
	errno = 0;
	while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = buf_add(&b, chunk, n);
	if (rc == 0 && ferror(f)) {
		/* A folder, for one, opens but does not read (EISDIR). */
		mds_diag(diag, diagsz, "%s: %s", path,
			 errno != 0 ? strerror(errno) : "read error");
		rc = MDS_E_IO;
	} else if (rc != 0) {
		mds_diag(diag, diagsz, "%s: longer than %zu bytes", path, max);
	}
	fclose(f);
	if (rc != 0) {
		buf_free(&b);
		return rc;
	}
	if (len_out)
		*len_out = b.len;
	*out = buf_steal(&b);
	return 0;
}
