/*
 * fuzz_metrics_log.c - libFuzzer harness for the metrics log as replayed
 * at start (mlog_open(): DATA/metrics.log, the file the daemon appended
 * to, or one torn or damaged on disk). The input's first byte chooses how
 * the rest becomes the file:
 *
 *   even  frames: the rest is cut into payloads, each a u16 length and
 *         that many bytes, written as frames with their right check, so
 *         that the records inside them (R: a series, D: a datapoint) are
 *         reached rather than stopped by the check;
 *   odd   the rest as it is, after the log's magic: frame heads, lengths
 *         and checks as damage would leave them.
 *
 * A replay must end without a crash, a leak or undefined behaviour, and
 * leave a log that takes new datapoints: once each series has one more,
 * opening the log again replays the same series and cuts nothing.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "fuzz_dir.h"
#include "core/tsdb.h"
#include "monitoring/mlog.h"
#include "util/htab.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static char log_path[128];

static void open_once(void)
{
	if (log_path[0] != '\0')
		return;
	log_set_level("error");
	fuzz_dir_make();
	if (uv_loop_init(&loop) != 0)
		abort();
	snprintf(log_path, sizeof(log_path), "%s/metrics.log", fuzz_dir);
}

static void put(int fd, const void *p, size_t n)
{
	if (write(fd, p, n) != (ssize_t)n)
		abort();
}

static off_t file_size(void)
{
	struct stat sb;

	if (stat(log_path, &sb) != 0)
		abort();
	return sb.st_size;
}

/* Writes the input as the log file, as the first byte says. */
static void write_log(const uint8_t *data, size_t size)
{
	int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		      0600);
	size_t at = 1;

	if (fd < 0)
		abort();
	put(fd, "MDSMLOG1", 8);
	if (data[0] & 1) {
		put(fd, data + 1, size - 1);
	} else {
		while (at + 2 <= size) {
			size_t len = (size_t)data[at] | (size_t)data[at + 1] << 8;
			unsigned char head[8];
			uint32_t check;

			at += 2;
			if (len > size - at)
				len = size - at;
			check = (uint32_t)hash_bytes(data + at, len);
			for (int i = 0; i < 4; i++) {
				head[i] = (unsigned char)(len >> (8 * i));
				head[4 + i] = (unsigned char)(check >> (8 * i));
			}
			put(fd, head, sizeof(head));
			put(fd, data + at, len);
			at += len;
		}
	}
	close(fd);
}

/* Replays the log into a fresh store, then, if add, commits a datapoint
 * of each series; returns the store's series and the log's bytes after the
 * replay. */
static void replay(int add, size_t *series, uint64_t *bytes)
{
	struct tsdb *db;
	struct mlog *l;
	char diag[256];

	if (tsdb_create(NULL, &db, NULL, 0) != 0)
		abort();
	if (mlog_open(db, &loop, fuzz_dir, &l, diag, sizeof(diag)) != 0)
		abort();
	while (mlog_loading(l, NULL, NULL))
		(void)mlog_tick(l);
	*series = tsdb_series_count(db);
	*bytes = mlog_bytes(l);
	for (size_t i = 0; add && i < *series; i++) {
		mlog_add(l, tsdb_series_at(db, i), 1700000000000LL, 1.0);
		if (mlog_commit(l, diag, sizeof(diag)) != 0)
			abort();
	}
	if (mlog_close(l, NULL, NULL) != 0)
		(void)uv_run(&loop, UV_RUN_DEFAULT);
	tsdb_free(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t series, series2;
	uint64_t bytes, bytes2;

	if (size < 1)
		return 0;
	open_once();
	write_log(data, size);
	replay(1, &series, &bytes);
	bytes = (uint64_t)file_size();
	replay(0, &series2, &bytes2);
	if (series2 != series || bytes2 != bytes)
		abort();
	unlink(log_path);
	return 0;
}
