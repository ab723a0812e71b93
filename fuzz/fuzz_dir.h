/*
 * fuzz_dir.h - the temporary directory of a harness whose modules keep
 * files (an SQLite store, the metrics log): made once under /dev/shm when
 * it is writable (fast fsync), else /tmp, and emptied and removed when the
 * run ends.
 */
#ifndef MDS_FUZZ_DIR_H
#define MDS_FUZZ_DIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_dir[64];

/* Removes fuzz_dir's files (it holds no subdirectory) and fuzz_dir. */
static void fuzz_dir_remove(void)
{
	DIR *d = opendir(fuzz_dir);
	struct dirent *e;
	char path[384];

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", fuzz_dir, e->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
	rmdir(fuzz_dir);
}

/* Makes fuzz_dir and has it removed at exit; aborts on failure. */
static void fuzz_dir_make(void)
{
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/mdscale-fuzz-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (mkdtemp(fuzz_dir) == NULL)
		abort();
	atexit(fuzz_dir_remove);
}

#endif
