/*
 * datadir.h - the daemon's data directory: created private, checked at
 * start, and locked so that one daemon at a time uses it.
 */
#ifndef MDS_DATADIR_H
#define MDS_DATADIR_H

#include <stddef.h>

/* Name of the lock file inside the data directory; it holds the pid. */
#define DATADIR_LOCK_FILE "lock"

/*
 * Prepares dir for the daemon: creates it (and missing parents) with mode
 * 0700, refuses an existing one that its group or others may read, write or
 * enter (MDS_E_INVAL; diag says how to fix it), and takes an exclusive lock
 * on <dir>/lock, writing our pid into it. A lock held by another daemon is
 * MDS_E_CONFLICT, with that daemon's pid in diag. On success *lock_fd is
 * the lock's descriptor (close-on-exec): keep it open for as long as the
 * daemon runs; closing it (or exiting) releases the lock.
 */
int datadir_open(const char *dir, int *lock_fd, char *diag, size_t diagsz);

/*
 * Makes path (an existing file with secrets) mode 0600, or creates it
 * empty with that mode. Returns 0, or MDS_E_IO with detail in diag.
 */
int datadir_private_file(const char *path, char *diag, size_t diagsz);

#endif
