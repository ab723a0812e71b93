/* datadir.c - the data directory's creation, mode check and lock; see
 * datadir.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/datadir.h"
#include "util/err.h"
#include "util/xalloc.h"

/* mkdir -p with mode 0700 for what it creates. */
static int make_dirs(const char *dir)
{
	char tmp[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, dir, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* Refuses a directory that its group or others can use: the token, the
 * database (deployment environments) and the logs are in it. */
static int check_mode(const char *dir, char *diag, size_t diagsz)
{
	struct stat st;

	if (stat(dir, &st) != 0) {
		mds_diag(diag, diagsz, "cannot read %s: %s", dir,
			 strerror(errno));
		return MDS_E_IO;
	}
	if (!S_ISDIR(st.st_mode)) {
		mds_diag(diag, diagsz, "%s is not a directory", dir);
		return MDS_E_INVAL;
	}
	if ((st.st_mode & 077) != 0) {
		mds_diag(diag, diagsz,
			 "data directory %s has mode %04o: others can read "
			 "the token and the secrets in it; run 'chmod 700 %s' "
			 "and start again",
			 dir, (unsigned)(st.st_mode & 07777), dir);
		return MDS_E_INVAL;
	}
	return 0;
}

/* Reads the pid a running daemon wrote into the lock file; 0 if none. */
static long holder_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	char *end;
	long pid;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	errno = 0;
	pid = strtol(buf, &end, 10);
	return errno == 0 && end != buf && pid > 0 ? pid : 0;
}

static int take_lock(const char *dir, int *lock_fd, char *diag,
		     size_t diagsz)
{
	char *path = xasprintf("%s/%s", dir, DATADIR_LOCK_FILE);
	char pid[32];
	int fd, n, rc = 0;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		mds_diag(diag, diagsz, "cannot open %s: %s", path,
			 strerror(errno));
		rc = MDS_E_IO;
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int err = errno;
		long holder = err == EWOULDBLOCK ? holder_pid(fd) : 0;

		if (err != EWOULDBLOCK)
			mds_diag(diag, diagsz, "cannot lock %s: %s", path,
				 strerror(err));
		else if (holder > 0)
			mds_diag(diag, diagsz,
				 "data directory %s is in use by another "
				 "mdscale daemon (pid %ld); stop it first, or "
				 "give this one another --data", dir, holder);
		else
			mds_diag(diag, diagsz,
				 "data directory %s is in use by another "
				 "mdscale daemon (%s is locked)", dir, path);
		rc = err == EWOULDBLOCK ? MDS_E_CONFLICT : MDS_E_SYS;
		close(fd);
		goto out;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		mds_diag(diag, diagsz, "cannot write %s: %s", path,
			 strerror(errno));
		rc = MDS_E_IO;
		close(fd);
		goto out;
	}
	*lock_fd = fd;
out:
	free(path);
	return rc;
}

int datadir_open(const char *dir, int *lock_fd, char *diag, size_t diagsz)
{
	int rc;

	*lock_fd = -1;
	if (make_dirs(dir) != 0) {
		mds_diag(diag, diagsz, "cannot create %s: %s", dir,
			 strerror(errno));
		return MDS_E_IO;
	}
	rc = check_mode(dir, diag, diagsz);
	if (rc == 0)
		rc = take_lock(dir, lock_fd, diag, diagsz);
	return rc;
}

int datadir_private_file(const char *path, char *diag, size_t diagsz)
{
	int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		      0600);
	int rc = 0;

	if (fd < 0 || fchmod(fd, 0600) != 0) {
		mds_diag(diag, diagsz, "cannot make %s private: %s", path,
			 strerror(errno));
		rc = MDS_E_IO;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}
