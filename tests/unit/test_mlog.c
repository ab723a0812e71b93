/*
 * test_mlog.c - the metrics log, on real files in a temporary folder and a
 * real libuv loop: what is committed comes back after a reopen, a torn
 * tail is cut, a failed write stores nothing, and a compaction (with
 * datapoints and new series arriving during it) keeps everything.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "core/tsdb.h"
#include "monitoring/mlog.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/htab.h"

#define NS "e2e_volume"
#define T0 1700000000000LL

static struct tsdb *new_db(void)
{
	struct tsdb *db = NULL;

	assert_int_equal(tsdb_create(NULL, &db, NULL, 0), 0);
	return db;
}

/* Series i: 16 dimensions of 255 bytes of its own. */
static struct tsdb_series *hostile(struct tsdb *db, int i)
{
	static char vals[16][256];
	static const char *keys[16] = { "a", "b", "c", "d", "e", "f", "g",
					"h", "i", "j", "k", "l", "m", "n",
					"o", "p" };
	struct tsdb_dim dims[16];
	struct tsdb_series *s = NULL;

	for (int k = 0; k < 16; k++) {
		memset(vals[k], 'x', 255);
		vals[k][255] = '\0';
		snprintf(vals[k], 16, "%07d-%02d", i, k);
		vals[k][10] = 'x';
		dims[k] = (struct tsdb_dim){ keys[k], vals[k] };
	}
	assert_int_equal(tsdb_series_get_or_create(db, NS, "Hostile", dims, 16,
						   &s, NULL, 0), 0);
	return s;
}

/* Adds and commits one datapoint, log first, as the module does. */
static void put(struct mlog *l, struct tsdb_series *s, int64_t t, double v)
{
	char diag[128];

	mlog_add(l, s, t, v);
	assert_int_equal(mlog_commit(l, diag, sizeof(diag)), 0);
	assert_int_equal(tsdb_series_append(s, t, v), 0);
}

static int to_buf(void *arg, const void *data, size_t len)
{
	return buf_add(arg, data, len);
}

/* Whether two stores hold the same series and data. */
static void assert_same(const struct tsdb *a, const struct tsdb *b)
{
	struct buf x, y;

	buf_init(&x, (size_t)1 << 30);
	buf_init(&y, (size_t)1 << 30);
	assert_int_equal(tsdb_dump(a, to_buf, &x), 0);
	assert_int_equal(tsdb_dump(b, to_buf, &y), 0);
	assert_int_equal(x.len, y.len);
	assert_memory_equal(x.data, y.data, x.len);
	buf_free(&x);
	buf_free(&y);
}

/* Opens the log of dir into a new store and replays it to the end. */
static struct mlog *reopen(uv_loop_t *loop, const char *dir,
			   struct tsdb **db)
{
	struct mlog *l = NULL;
	char diag[256];

	*db = new_db();
	assert_int_equal(mlog_open(*db, loop, dir, &l, diag, sizeof(diag)), 0);
	while (mlog_loading(l, NULL, NULL))
		mlog_tick(l);
	return l;
}

static void close_log(uv_loop_t *loop, struct mlog *l)
{
	if (mlog_close(l, NULL, NULL) != 0)
		uv_run(loop, UV_RUN_DEFAULT);
}

static char *tmpdir(void)
{
	char *dir = strdup("/tmp/test_mlog.XXXXXX");

	assert_non_null(mkdtemp(dir));
	return dir;
}

static void rmdir_all(char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

static off_t file_size(const char *dir, const char *name)
{
	char path[256];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static void test_reopen_and_torn_tail(void **state)
{
	uv_loop_t loop;
	struct tsdb *db = new_db(), *db2;
	struct mlog *l = NULL;
	char *dir = tmpdir(), path[256], diag[256];
	off_t size;
	int fd;

	(void)state;
	uv_loop_init(&loop);
	assert_int_equal(mlog_open(db, &loop, dir, &l, diag, sizeof(diag)), 0);
	for (int i = 0; i < 20; i++)
		for (int k = 0; k < 3; k++)
			put(l, hostile(db, i), T0 + 1000 * k, i * 10 + k);
	/* An aborted frame is neither written nor kept. */
	mlog_add(l, hostile(db, 20), T0, 1);
	mlog_abort(l);
	close_log(&loop, l);

	l = reopen(&loop, dir, &db2);
	assert_int_equal(tsdb_series_count(db2), 20);
	assert_int_equal(tsdb_series_newest(tsdb_series_at(db2, 19)),
			 T0 + 2000);
	/* Writes go on where the replay stopped. */
	put(l, hostile(db2, 20), T0, 5);
	put(l, hostile(db2, 21), T0, 6);
	close_log(&loop, l);
	tsdb_free(db2);

	/* Half a frame at the end, as a power cut leaves it. */
	size = file_size(dir, "metrics.log");
	snprintf(path, sizeof(path), "%s/metrics.log", dir);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "\x40\x00\x00\x00\x01\x02", 6), 6);
	close(fd);
	l = reopen(&loop, dir, &db2);
	assert_int_equal(file_size(dir, "metrics.log"), size);
	assert_int_equal(tsdb_series_count(db2), 22);
	assert_int_equal(tsdb_series_newest(tsdb_series_at(db2, 21)), T0);
	close_log(&loop, l);
	tsdb_free(db2);
	tsdb_free(db);
	uv_loop_close(&loop);
	rmdir_all(dir);
}

static void test_a_failed_write_stores_nothing(void **state)
{
	uv_loop_t loop;
	struct tsdb *db = new_db(), *db2;
	struct mlog *l = NULL;
	char *dir = tmpdir(), diag[256];
	struct rlimit old, lim;
	struct tsdb_series *s;
	off_t size;

	(void)state;
	uv_loop_init(&loop);
	assert_int_equal(mlog_open(db, &loop, dir, &l, diag, sizeof(diag)), 0);
	put(l, hostile(db, 0), T0, 1);
	size = file_size(dir, "metrics.log");
	/* A file size limit stands for a full disk: the write fails. */
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = (rlim_t)size + 100;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	s = hostile(db, 1);
	mlog_add(l, s, T0, 2);
	assert_int_equal(mlog_commit(l, diag, sizeof(diag)), MDS_E_NOSPACE);
	assert_non_null(strstr(diag, "cannot write the metrics log"));
	assert_int_equal(file_size(dir, "metrics.log"), size);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	/* Space is back: the series is written in full with the next one. */
	put(l, s, T0 + 1000, 3);
	close_log(&loop, l);
	l = reopen(&loop, dir, &db2);
	assert_same(db, db2);
	close_log(&loop, l);
	tsdb_free(db2);
	tsdb_free(db);
	uv_loop_close(&loop);
	rmdir_all(dir);
}

/* Past MLOG_COMPACT_MIN the log compacts in slices; datapoints of series
 * already copied and new series arrive meanwhile; all of it is in the
 * compacted log. */
static void test_compaction_keeps_everything(void **state)
{
	uv_loop_t loop;
	struct tsdb *db = new_db(), *db2;
	struct mlog *l = NULL;
	char *dir = tmpdir(), diag[256];
	int n = 0, slices = 0, during = 0;

	(void)state;
	uv_loop_init(&loop);
	assert_int_equal(mlog_open(db, &loop, dir, &l, diag, sizeof(diag)), 0);
	while (mlog_bytes(l) < MLOG_COMPACT_MIN) {
		put(l, hostile(db, n), T0, n);
		n++;
	}
	mlog_tick(l);
	assert_true(mlog_compacting(l));
	while (mlog_compacting(l)) {
		/* One old series gets a datapoint, one new series is made. */
		put(l, tsdb_series_at(db, (size_t)(slices % n)),
		    T0 + 1000 + slices, -slices);
		put(l, hostile(db, n + during), T0, 0.5);
		during++;
		mlog_tick(l);
		slices++;
		uv_run(&loop, UV_RUN_NOWAIT); /* the fsync's end */
	}
	assert_true(slices > 1);
	assert_int_equal(file_size(dir, "metrics.log.new"), -1);
	/* After the swap, writes go to the compacted log. */
	put(l, tsdb_series_at(db, 0), T0 + 999999, 42);
	put(l, hostile(db, n + during), T0, 43);
	close_log(&loop, l);

	l = reopen(&loop, dir, &db2);
	assert_int_equal(tsdb_series_count(db2), (size_t)(n + during + 1));
	assert_same(db, db2);
	close_log(&loop, l);
	tsdb_free(db2);
	tsdb_free(db);
	uv_loop_close(&loop);
	rmdir_all(dir);
}

/* Reads a file of dir whole into b. */
static void read_file(const char *dir, const char *name, struct buf *b)
{
	char path[256], chunk[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		assert_int_equal(buf_add(b, chunk, (size_t)n), 0);
	assert_int_equal(n, 0);
	close(fd);
}

/*
 * A frame whose check holds but whose records end in one the replay
 * cannot take: its first records are in the store, and the file is cut at
 * the frame's start. Those series are no longer in the file, so their next
 * datapoints must bring their R records again; else the next replay meets
 * a datapoint of an unknown series and cuts everything from there.
 */
static void test_a_frame_cut_after_some_records_loses_nothing_later(
	void **state)
{
	uv_loop_t loop;
	struct tsdb *db = new_db(), *db2, *db3;
	struct mlog *l = NULL;
	char *dir = tmpdir(), path[256], diag[256];
	struct buf file, out;
	size_t size1, plen;
	unsigned char head[8];
	uint32_t check;
	int fd;

	(void)state;
	uv_loop_init(&loop);
	assert_int_equal(mlog_open(db, &loop, dir, &l, diag, sizeof(diag)), 0);
	put(l, hostile(db, 0), T0, 1);
	size1 = (size_t)file_size(dir, "metrics.log");
	put(l, hostile(db, 1), T0, 2); /* the frame [R 1, D 1] */
	close_log(&loop, l);
	tsdb_free(db);

	/* The second frame gains a record of an unknown kind; its length
	 * and check are made right again. */
	buf_init(&file, (size_t)1 << 24);
	read_file(dir, "metrics.log", &file);
	plen = file.len - size1 - 8 + 1;
	assert_int_equal(buf_add(&file, "X", 1), 0);
	check = (uint32_t)hash_bytes(file.data + size1 + 8, plen);
	for (int i = 0; i < 4; i++) {
		head[i] = (unsigned char)(plen >> (8 * i));
		head[4 + i] = (unsigned char)(check >> (8 * i));
	}
	memcpy(file.data + size1, head, sizeof(head));
	snprintf(path, sizeof(path), "%s/metrics.log", dir);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, file.data, file.len), (ssize_t)file.len);
	close(fd);
	buf_free(&file);

	l = reopen(&loop, dir, &db2);
	assert_int_equal(file_size(dir, "metrics.log"), (off_t)size1);
	assert_int_equal(tsdb_series_count(db2), 2);
	/* Datapoints after the cut, for the series of the cut frame and for
	 * one before it. */
	put(l, tsdb_series_at(db2, 1), T0 + 1000, 3);
	put(l, tsdb_series_at(db2, 0), T0 + 1000, 4);
	close_log(&loop, l);

	l = reopen(&loop, dir, &db3);
	buf_init(&out, (size_t)1 << 24);
	read_file(dir, "metrics.log", &out);
	assert_int_equal(file_size(dir, "metrics.log"), (off_t)out.len);
	buf_free(&out);
	assert_int_equal(tsdb_series_count(db3), 2);
	assert_int_equal(tsdb_series_newest(tsdb_series_at(db3, 0)),
			 T0 + 1000);
	assert_int_equal(tsdb_series_newest(tsdb_series_at(db3, 1)),
			 T0 + 1000);
	close_log(&loop, l);
	tsdb_free(db3);
	tsdb_free(db2);
	uv_loop_close(&loop);
	rmdir_all(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reopen_and_torn_tail),
		cmocka_unit_test(test_a_failed_write_stores_nothing),
		cmocka_unit_test(test_compaction_keeps_everything),
		cmocka_unit_test(
			test_a_frame_cut_after_some_records_loses_nothing_later),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
