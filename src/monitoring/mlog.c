/*
 * mlog.c - the metrics store's append-only log; see mlog.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "monitoring/mlog.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/htab.h"
#include "util/log.h"
#include "util/turn.h"
#include "util/xalloc.h"

#define SRC "monitoring"
#define MAGIC "MDSMLOG1"
#define HEADER 8
#define FRAME_HEAD 8
#define SLICE_BYTES ((size_t)256 << 10) /* a compaction frame, about */
#define SNAPSHOT_MAX_BYTES ((size_t)16 << 30)
#define CATCH_UP_MAX 64 /* series written at once when a compaction ends */

struct mlog {
	struct tsdb *db;
	uv_loop_t *loop;
	char *path, *tmp, *snap;
	int fd;
	uint64_t size; /* bytes of the log */
	uint64_t base; /* its size after the last compaction or the replay */
	uint32_t logged, frame_logged; /* series with their R record */
	struct buf frame;  /* the payload being built */
	int frame_bad;     /* a record did not fit: the commit fails */
	struct buf cframe; /* its D records for the compaction's file */
	int dirty;         /* written since the last fsync began */
	uv_fs_t sync_req;  /* the fsync of fd in the thread pool */
	int syncing;
	int retired_fd;    /* the log before a compaction, closed after */
	uv_fs_t close_req; /* its close in the thread pool: the last close of
			    * a replaced file frees its blocks, which can take
			    * tens of ms */
	int closing_fd;

	/* The compaction: cfd >= 0 while one runs. */
	int cfd;
	uint32_t cursor;   /* series [0, cursor) are in the new file */
	uint64_t csize;
	uv_fs_t csync_req; /* the new file's fsync, once every series is in */
	int csyncing;

	/* The replay, in slices, while map != NULL. */
	const unsigned char *map;
	size_t map_len;
	size_t unmapped;  /* [0, unmapped) replayed and unmapped already */
	size_t at;        /* the frame being replayed */
	size_t rec;       /* its next record (0: not started) */
	uint32_t ordinal; /* R records replayed */
	uint32_t frame_ordinal; /* ordinal when the frame began */
	uint64_t load_t0, load_ns;

	int closing;
	void (*done)(void *arg);
	void *done_arg;
};

/* ---- frames ---- */

static void put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static int add_chunk(void *arg, const void *data, size_t len)
{
	return buf_add(arg, data, len);
}

/* Adds s's R record to b. Returns 0 or MDS_E_LIMIT (b unchanged). */
static int add_series(struct buf *b, const struct tsdb_series *s)
{
	size_t at = b->len;
	int rc;

	rc = buf_add(b, "R\0\0\0\0", 5);
	if (rc == 0)
		rc = tsdb_dump_series(s, add_chunk, b);
	if (rc != 0) {
		b->len = at;
		return rc;
	}
	put_u32((unsigned char *)b->data + at + 1,
		(uint32_t)(b->len - at - 5));
	return 0;
}

/* Adds a D record to b. Returns 0 or MDS_E_LIMIT (b unchanged). */
static int add_point(struct buf *b, uint32_t index, int64_t t, double v)
{
	unsigned char rec[21];
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	rec[0] = 'D';
	put_u32(rec + 1, index);
	for (int i = 0; i < 8; i++) {
		rec[5 + i] = (unsigned char)((uint64_t)t >> (8 * i));
		rec[13 + i] = (unsigned char)(bits >> (8 * i));
	}
	return buf_add(b, rec, sizeof(rec));
}

/* Writes one frame holding payload; on failure cuts fd back to *size.
 * Returns 0 (and grows *size) or -1 with errno. */
static int write_frame(int fd, uint64_t *size, const char *payload,
		       size_t len)
{
	unsigned char head[FRAME_HEAD];
	struct iovec iov[2];
	size_t total = FRAME_HEAD + len, done = 0;

	put_u32(head, (uint32_t)len);
	put_u32(head + 4, (uint32_t)hash_bytes(payload, len));
	while (done < total) {
		ssize_t n;

		if (done < FRAME_HEAD) {
			iov[0] = (struct iovec){ head + done, FRAME_HEAD - done };
			iov[1] = (struct iovec){ (void *)payload, len };
			n = writev(fd, iov, 2);
		} else {
			n = write(fd, payload + (done - FRAME_HEAD),
				  total - done);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			if (ftruncate(fd, (off_t)*size) != 0)
				log_error(SRC, "cannot cut the metrics log "
					  "back after a failed write: %s",
					  strerror(errno));
			errno = e;
			return -1;
		}
		done += (size_t)n;
	}
	*size += total;
	return 0;
}

/* When a slice started now ends: MLOG_SLICE_MS, or what is left of the
 * turn's budget when other work has used some of it (util/turn.h). */
static uint64_t slice_deadline(void)
{
	return uv_hrtime() + turn_slice_ns(MLOG_SLICE_MS * 1000000ULL);
}

/* ---- replay ---- */

/* Applies the record at p (before end); returns its bytes, or 0 if it is
 * malformed (why says how). */
static size_t replay_record(struct tsdb *db, const unsigned char *p,
			    const unsigned char *end, uint32_t *ordinal,
			    char *why, size_t whysz)
{
	if (*p == 'R' && end - p >= 5) {
		size_t rlen = (size_t)get_u(p + 1, 4), used = 0;
		struct tsdb_series *s;

		if ((size_t)(end - p - 5) < rlen ||
		    tsdb_load_series(db, p + 5, rlen, &used, &s, why,
				     whysz) != 0)
			return 0;
		if (used != rlen || tsdb_series_index(s) != *ordinal) {
			snprintf(why, whysz, "series record %u out of place",
				 *ordinal);
			return 0;
		}
		(*ordinal)++;
		return 5 + rlen;
	}
	if (*p == 'D' && end - p >= 21) {
		uint32_t index = (uint32_t)get_u(p + 1, 4);
		int64_t t = (int64_t)get_u(p + 5, 8);
		uint64_t bits = get_u(p + 13, 8);
		double v;

		memcpy(&v, &bits, sizeof(v));
		if (index >= *ordinal) {
			snprintf(why, whysz, "datapoint of unknown series %u",
				 index);
			return 0;
		}
		/* Refused only if older than the raw window: what the store
		 * would have refused then as well. */
		(void)tsdb_series_append(tsdb_series_at(db, index), t, v);
		return 21;
	}
	snprintf(why, whysz, "unknown record");
	return 0;
}

/* Checks the frame at l->at; returns its payload length, or -1 (why). */
static long frame_ok(const struct mlog *l, char *why, size_t whysz)
{
	size_t plen;

	if (l->map_len - l->at < FRAME_HEAD) {
		snprintf(why, whysz, "truncated frame");
		return -1;
	}
	plen = (size_t)get_u(l->map + l->at, 4);
	if (plen > MLOG_FRAME_MAX || l->map_len - l->at - FRAME_HEAD < plen) {
		snprintf(why, whysz, "truncated frame");
		return -1;
	}
	if ((uint32_t)hash_bytes(l->map + l->at + FRAME_HEAD, plen) !=
	    (uint32_t)get_u(l->map + l->at + 4, 4)) {
		snprintf(why, whysz, "bad check");
		return -1;
	}
	return (long)plen;
}

/* Unmaps the pages of the log before byte upto (or all of it: map_len),
 * as the replay goes: unmapping a 400 MB log in one call took 5 to 10 ms
 * of the loop. */
static void unmap_through(struct mlog *l, size_t upto)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	if (upto < l->map_len)
		upto -= upto % page;
	if (upto > l->unmapped) {
		munmap((void *)(l->map + l->unmapped), upto - l->unmapped);
		l->unmapped = upto;
	}
}

/* Ends the replay: cuts a bad tail at l->at (a frame whose records were
 * partly applied stays applied in memory, and its series, no longer in
 * the file, are written again with their next datapoints: the log counts
 * only the R records before the cut). Returns 0 or -1 (errno). */
static int replay_end(struct mlog *l, const char *why)
{
	size_t len = l->map_len;

	unmap_through(l, l->map_len);
	l->map = NULL;
	if (l->at < len) {
		log_warn(SRC, "%s: %s at byte %zu; the %zu bytes from there "
			 "are dropped", l->path, why, l->at, len - l->at);
		if (ftruncate(l->fd, (off_t)l->at) != 0)
			return -1;
	}
	l->size = l->base = l->at;
	l->logged = l->at < len ? l->frame_ordinal : l->ordinal;
	l->load_ns = uv_hrtime() - l->load_t0;
	log_info(SRC, "%zu metric series from %s (%llu bytes) in %llu ms",
		 tsdb_series_count(l->db), l->path,
		 (unsigned long long)l->size,
		 (unsigned long long)(l->load_ns / 1000000));
	return 0;
}

/* Replays records until deadline (uv_hrtime ns, 0: the whole log). */
static void replay_slice(struct mlog *l, uint64_t deadline)
{
	char why[256] = "";
	int n = 0;

	while (l->at < l->map_len) {
		const unsigned char *end;
		long plen;

		if (l->rec == 0) {
			l->frame_ordinal = l->ordinal;
			plen = frame_ok(l, why, sizeof(why));
			if (plen < 0)
				break;
			l->rec = l->at + FRAME_HEAD;
		}
		end = l->map + l->at + FRAME_HEAD + get_u(l->map + l->at, 4);
		while (l->map + l->rec < end) {
			size_t k = replay_record(l->db, l->map + l->rec, end,
						 &l->ordinal, why,
						 sizeof(why));

			if (k == 0)
				goto bad;
			l->rec += k;
			if (deadline != 0 && (++n & 15) == 0 &&
			    uv_hrtime() >= deadline) {
				unmap_through(l, l->at);
				return;
			}
		}
		l->at = (size_t)(end - l->map);
		l->rec = 0;
	}
bad:
	if (replay_end(l, why) != 0)
		log_error(SRC, "cannot cut %s: %s", l->path, strerror(errno));
}

/* Maps the log for the replay; starts a new one if it is empty or not a
 * log. Returns 0 or -1 (errno). */
static int load(struct mlog *l)
{
	struct stat sb;
	void *map;

	if (fstat(l->fd, &sb) != 0)
		return -1;
	if (sb.st_size >= HEADER) {
		map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE,
			   l->fd, 0);
		if (map == MAP_FAILED)
			return -1;
		if (memcmp(map, MAGIC, HEADER) == 0) {
			l->map = map;
			l->map_len = (size_t)sb.st_size;
			l->unmapped = 0;
			l->at = HEADER;
			return 0;
		}
		munmap(map, (size_t)sb.st_size);
		log_warn(SRC, "%s is not a metrics log; starting it anew",
			 l->path);
	}
	if (ftruncate(l->fd, 0) != 0 || write(l->fd, MAGIC, HEADER) != HEADER)
		return -1;
	l->size = l->base = HEADER;
	return 0;
}

/* ---- compacted files ---- */

/* Writes series [*cursor, upto) as R frames of about SLICE_BYTES to fd,
 * stopping once deadline (uv_hrtime ns, 0: none) has passed. Returns 0 or
 * -1 with errno. */
static int write_series(struct mlog *l, int fd, uint64_t *size,
			uint32_t *cursor, uint32_t upto, uint64_t deadline)
{
	struct buf b;
	int rc = 0;

	buf_init(&b, MLOG_FRAME_MAX);
	while (*cursor < upto && rc == 0) {
		uint32_t from = *cursor;

		while (*cursor < upto && b.len < SLICE_BYTES &&
		       add_series(&b, tsdb_series_at(l->db, *cursor)) == 0)
			(*cursor)++;
		if (*cursor == from) {
			errno = EFBIG; /* one series past the frame cap */
			rc = -1;
			break;
		}
		rc = write_frame(fd, size, b.data, b.len);
		if (rc != 0)
			*cursor = from;
		buf_reset(&b);
		if (deadline != 0 && uv_hrtime() >= deadline)
			break;
	}
	buf_free(&b);
	return rc;
}

/* Loads an older version's snapshot and writes it out as a compacted log
 * at path (via tmp); removes the snapshot. Returns 0 or -1 (logged). */
static int migrate_snapshot(struct mlog *l)
{
	char diag[256];
	struct stat sb;
	char *data = NULL;
	size_t got = 0;
	uint64_t size = HEADER;
	uint32_t cursor = 0;
	int fd, out = -1, rc = -1;

	fd = open(l->snap, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &sb) != 0 || sb.st_size < 0 ||
	    (uint64_t)sb.st_size > SNAPSHOT_MAX_BYTES)
		goto out;
	data = xmalloc((size_t)sb.st_size + 1);
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, data + got, (size_t)sb.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (tsdb_load(l->db, data, got, diag, sizeof(diag)) != 0) {
		log_warn(SRC, "%s is not a valid snapshot (%s); ignored",
			 l->snap, diag);
		goto out;
	}
	out = open(l->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0 || write(out, MAGIC, HEADER) != HEADER ||
	    write_series(l, out, &size, &cursor,
			 (uint32_t)tsdb_series_count(l->db), 0) != 0 ||
	    fsync(out) != 0 || rename(l->tmp, l->path) != 0) {
		log_error(SRC, "cannot write %s from %s: %s", l->path, l->snap,
			  strerror(errno));
		goto out;
	}
	unlink(l->snap);
	log_info(SRC, "%s: %zu series moved to %s", l->snap,
		 tsdb_series_count(l->db), l->path);
	rc = 0;
out:
	if (out >= 0)
		close(out);
	close(fd);
	free(data);
	return rc;
}

/* ---- open, add, commit ---- */

int mlog_open(struct tsdb *db, uv_loop_t *loop, const char *data_dir,
	      struct mlog **out, char *diag, size_t diagsz)
{
	struct mlog *l = xcalloc(1, sizeof(*l));
	struct stat sb;

	l->db = db;
	l->load_t0 = uv_hrtime();
	l->loop = loop;
	l->fd = l->cfd = l->retired_fd = -1;
	l->path = xasprintf("%s/metrics.log", data_dir);
	l->tmp = xasprintf("%s/metrics.log.new", data_dir);
	l->snap = xasprintf("%s/metrics.snap", data_dir);
	buf_init(&l->frame, MLOG_FRAME_MAX);
	buf_init(&l->cframe, MLOG_FRAME_MAX);
	unlink(l->tmp); /* a compaction cut short */
	if (stat(l->path, &sb) != 0 && errno == ENOENT &&
	    migrate_snapshot(l) != 0)
		log_warn(SRC, "starting without the metrics of %s", l->snap);
	l->fd = open(l->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (l->fd < 0 || load(l) != 0) {
		mds_diag(diag, diagsz, "%s: %s", l->path, strerror(errno));
		mlog_close(l, NULL, NULL);
		return MDS_E_IO;
	}
	/* Nothing is served yet: no loop to hold up. */
	if (l->map != NULL)
		replay_slice(l, uv_hrtime() + MLOG_OPEN_MS * 1000000ULL);
	*out = l;
	return 0;
}

void mlog_add(struct mlog *l, const struct tsdb_series *s, int64_t t_ms,
	      double value)
{
	uint32_t index = tsdb_series_index(s);

	if (l->frame.len == 0 && !l->frame_bad)
		l->frame_logged = l->logged;
	while (l->logged <= index && !l->frame_bad)
		if (add_series(&l->frame,
			       tsdb_series_at(l->db, l->logged++)) != 0)
			l->frame_bad = 1;
	if (!l->frame_bad && add_point(&l->frame, index, t_ms, value) != 0)
		l->frame_bad = 1;
	if (!l->frame_bad && l->cfd >= 0 && index < l->cursor &&
	    add_point(&l->cframe, index, t_ms, value) != 0)
		l->frame_bad = 1;
}

void mlog_abort(struct mlog *l)
{
	if (l->frame.len > 0 || l->frame_bad)
		l->logged = l->frame_logged;
	l->frame_bad = 0;
	buf_reset(&l->frame);
	buf_reset(&l->cframe);
}

static void compaction_abandon(struct mlog *l, const char *why)
{
	if (why != NULL)
		log_error(SRC, "metrics log compaction abandoned: %s", why);
	if (l->cfd >= 0)
		close(l->cfd);
	l->cfd = -1;
	unlink(l->tmp);
	/* Try again once the log has grown as much again. */
	l->base = l->size;
}

int mlog_commit(struct mlog *l, char *diag, size_t diagsz)
{
	int rc = 0;

	if (l->frame.len == 0 && !l->frame_bad)
		return 0;
	if (l->frame_bad ||
	    write_frame(l->fd, &l->size, l->frame.data, l->frame.len) != 0) {
		int full = !l->frame_bad && (errno == ENOSPC ||
					     errno == EDQUOT || errno == EFBIG);

		mds_diag(diag, diagsz, "cannot write the metrics log: %s",
			 l->frame_bad ? "more than a frame holds"
				      : strerror(errno));
		mlog_abort(l);
		return full ? MDS_E_NOSPACE : MDS_E_IO;
	}
	l->dirty = 1;
	if (l->cfd >= 0 && l->cframe.len > 0 &&
	    write_frame(l->cfd, &l->csize, l->cframe.data, l->cframe.len) != 0)
		compaction_abandon(l, strerror(errno));
	buf_reset(&l->frame);
	buf_reset(&l->cframe);
	return rc;
}

/* ---- fsync and compaction ---- */

static void finish_free(struct mlog *l);

static int busy(const struct mlog *l)
{
	return l->syncing || l->csyncing || l->closing_fd;
}

static void on_retired_closed(uv_fs_t *req)
{
	struct mlog *l = req->data;

	uv_fs_req_cleanup(req);
	l->closing_fd = 0;
	if (l->closing && !busy(l))
		finish_free(l);
}

/* Closes the log a compaction replaced, in the thread pool, once no fsync
 * uses it. */
static void retire(struct mlog *l)
{
	if (l->retired_fd < 0 || l->syncing || l->closing_fd)
		return;
	l->close_req.data = l;
	if (uv_fs_close(l->loop, &l->close_req, l->retired_fd,
			on_retired_closed) == 0)
		l->closing_fd = 1;
	else
		close(l->retired_fd);
	l->retired_fd = -1;
}

static void on_synced(uv_fs_t *req)
{
	struct mlog *l = req->data;

	if (req->result < 0)
		log_error(SRC, "cannot sync the metrics log: %s",
			  uv_strerror((int)req->result));
	uv_fs_req_cleanup(req);
	l->syncing = 0;
	retire(l);
	if (l->closing && !busy(l))
		finish_free(l);
}

/* The new file is synced: catch up with the series created meanwhile and
 * put it in the log's place. */
static void on_compacted(uv_fs_t *req)
{
	struct mlog *l = req->data;
	uint32_t n = (uint32_t)tsdb_series_count(l->db);
	int64_t rc = req->result;

	uv_fs_req_cleanup(req);
	l->csyncing = 0;
	if (l->closing) {
		compaction_abandon(l, NULL);
		if (!busy(l))
			finish_free(l);
		return;
	}
	if (rc < 0) {
		compaction_abandon(l, uv_strerror((int)rc));
		return;
	}
	/* Many series created during the fsync: write them in slices, and
	 * sync again, rather than hold the loop here. */
	if (n - l->cursor > CATCH_UP_MAX)
		return;
	if (write_series(l, l->cfd, &l->csize, &l->cursor, n, 0) != 0 ||
	    rename(l->tmp, l->path) != 0) {
		compaction_abandon(l, strerror(errno));
		return;
	}
	log_info(SRC, "metrics log compacted: %llu bytes to %llu, %u series",
		 (unsigned long long)l->size, (unsigned long long)l->csize, n);
	l->retired_fd = l->fd;
	retire(l);
	l->fd = l->cfd;
	l->cfd = -1;
	l->size = l->base = l->csize;
	l->logged = l->cursor;
	l->dirty = 1;
}

static void compaction_slice(struct mlog *l)
{
	uint32_t n = (uint32_t)tsdb_series_count(l->db);
	uint64_t deadline = slice_deadline();

	if (write_series(l, l->cfd, &l->csize, &l->cursor, n, deadline) != 0) {
		compaction_abandon(l, strerror(errno));
		return;
	}
	if (l->cursor < n)
		return;
	l->csync_req.data = l;
	if (uv_fs_fsync(l->loop, &l->csync_req, l->cfd, on_compacted) != 0) {
		compaction_abandon(l, "cannot queue the fsync");
		return;
	}
	l->csyncing = 1;
}

static void compaction_start(struct mlog *l)
{
	l->cfd = open(l->tmp, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC |
			      O_CLOEXEC, 0600);
	if (l->cfd < 0 || write(l->cfd, MAGIC, HEADER) != HEADER) {
		compaction_abandon(l, strerror(errno));
		return;
	}
	l->cursor = 0;
	l->csize = HEADER;
	log_info(SRC, "compacting the metrics log (%llu bytes)",
		 (unsigned long long)l->size);
}

uint64_t mlog_tick(struct mlog *l)
{
	if (l->map != NULL) {
		replay_slice(l, slice_deadline());
		return l->map != NULL ? 1 : MLOG_SYNC_MS;
	}
	if (l->dirty && !l->syncing) {
		l->sync_req.data = l;
		if (uv_fs_fsync(l->loop, &l->sync_req, l->fd, on_synced) == 0) {
			l->syncing = 1;
			l->dirty = 0;
		}
	}
	if (l->cfd < 0 && l->size >= MLOG_COMPACT_MIN &&
	    l->size >= 2 * l->base)
		compaction_start(l);
	if (l->cfd >= 0 && !l->csyncing)
		compaction_slice(l);
	return l->cfd >= 0 && !l->csyncing ? 1 : MLOG_SYNC_MS;
}

uint64_t mlog_bytes(const struct mlog *l)
{
	return l->size;
}

int mlog_compacting(const struct mlog *l)
{
	return l->cfd >= 0;
}

int mlog_loading(const struct mlog *l, uint64_t *done, uint64_t *total)
{
	if (done != NULL)
		*done = l->map != NULL ? l->at : l->size;
	if (total != NULL)
		*total = l->map != NULL ? l->map_len : l->size;
	return l->map != NULL;
}

uint64_t mlog_load_ns(const struct mlog *l)
{
	return l->map != NULL ? uv_hrtime() - l->load_t0 : l->load_ns;
}

/* ---- close ---- */

static void finish_free(struct mlog *l)
{
	void (*done)(void *) = l->done;
	void *arg = l->done_arg;

	if (l->cfd >= 0)
		compaction_abandon(l, NULL);
	if (l->map != NULL)
		unmap_through(l, l->map_len);
	if (l->retired_fd >= 0)
		close(l->retired_fd);
	if (l->fd >= 0)
		close(l->fd);
	buf_free(&l->frame);
	buf_free(&l->cframe);
	free(l->path);
	free(l->tmp);
	free(l->snap);
	free(l);
	if (done != NULL)
		done(arg);
}

int mlog_close(struct mlog *l, void (*done)(void *arg), void *arg)
{
	if (l == NULL)
		return 0;
	mlog_abort(l);
	if (l->fd >= 0 && fsync(l->fd) != 0)
		log_error(SRC, "cannot sync %s: %s", l->path, strerror(errno));
	if (busy(l)) {
		l->closing = 1;
		l->done = done;
		l->done_arg = arg;
		return 1;
	}
	finish_free(l);
	return 0;
}
