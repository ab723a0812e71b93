/*
 * file.h - reading a whole small file, with a cap.
 */
#ifndef MDS_FILE_H
#define MDS_FILE_H

#include <stddef.h>

/*
 * Reads the file at path into a new NUL-terminated string (*out, the caller
 * frees it; *len_out, if not NULL, gets its length). Returns 0; MDS_E_NOTFOUND
 * if it does not exist, MDS_E_IO if it cannot be opened or read (diag has
 * strerror), MDS_E_LIMIT if it is longer than max bytes.
 */
int file_read_all(const char *path, size_t max, char **out, size_t *len_out,
		  char *diag, size_t diagsz);

#endif
