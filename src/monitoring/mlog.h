/*
 * mlog.h - the metrics store's append-only log, DATA/metrics.log.
 *
 * Every datapoint the store takes (posted or sampled) is written to the log
 * before it enters the store, in frames of a few records:
 *
 *   frame   u32 payload length, u32 check (FNV-1a of the payload), payload
 *   'R'     u32 length, one tsdb_dump_series() record: a series' identity
 *           and, after a compaction, its rings; the n-th R record of a log
 *           is the store's series of creation index n
 *   'D'     u32 series index, i64 time (ms), f64 value
 *
 * So a post costs a write(2) of its own bytes, never a rewrite of the
 * store. When the log has grown to twice its size after the last
 * compaction (and at least MLOG_COMPACT_MIN), it is compacted: the store's
 * series are written as R records to metrics.log.new in slices of at most
 * MLOG_SLICE_MS of the loop (less when other work of the same loop turn
 * has spent its budget: util/turn.h), the datapoints taken meanwhile are written to
 * both files, and the new file, synced, is renamed over the log. At start
 * the log is replayed for MLOG_OPEN_MS before the daemon answers (all of
 * a small log), then by mlog_tick() in slices of the same length; until
 * the replay is done (mlog_loading()) the log takes nothing and the store is incomplete. A torn or corrupt frame
 * ends the replay (the file is cut there and the loss logged).
 *
 * Durability: a write(2) done before the answer survives a crash of the
 * daemon (SIGKILL) at once; the log is fsynced at most MLOG_SYNC_MS later,
 * so a crash of the machine loses at most the last second of datapoints.
 * All functions run on the loop thread.
 */
#ifndef MDS_MONITORING_MLOG_H
#define MDS_MONITORING_MLOG_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/tsdb.h"

#define MLOG_SYNC_MS 1000                      /* fsync period */
#define MLOG_SLICE_MS 4                        /* loop time per slice */
#define MLOG_OPEN_MS 200  /* replay before the daemon answers */
#define MLOG_COMPACT_MIN ((uint64_t)64 << 20)  /* never compact below */
#define MLOG_FRAME_MAX ((size_t)64 << 20)      /* one frame's payload */

struct mlog;

/*
 * Opens DATA/metrics.log for its replay into db (which must be empty and
 * take no series before the replay ends: see mlog_loading()); if
 * there is no log but a DATA/metrics.snap from an older version, loads it
 * and writes it out as a compacted log, then removes it. Returns 0 and sets
 * *out (freed by mlog_close), or MDS_E_IO with diag if the log cannot be
 * opened or created.
 */
int mlog_open(struct tsdb *db, uv_loop_t *loop, const char *data_dir,
	      struct mlog **out, char *diag, size_t diagsz);

/*
 * Adds the datapoint (s, t_ms, value) to the frame being built, with s's R
 * record first if the log does not have it yet. Call before appending the
 * datapoint to the store; nothing is written before mlog_commit().
 */
void mlog_add(struct mlog *l, const struct tsdb_series *s, int64_t t_ms,
	      double value);

/*
 * Writes the frame built since the last commit (nothing if empty). Returns
 * 0, or with diag MDS_E_NOSPACE (the device or a size limit is full) or
 * MDS_E_IO (another failure): the file is cut back to where it was and the
 * frame dropped; the caller must not acknowledge its datapoints.
 */
int mlog_commit(struct mlog *l, char *diag, size_t diagsz);

/*
 * Drops the frame built since the last commit (the caller refuses its
 * datapoints).
 */
void mlog_abort(struct mlog *l);

/*
 * The log's periodic work: replays a slice of the log while it loads,
 * starts an fsync in the thread pool when
 * something was written since the last, starts a compaction when due and
 * runs one slice of it. Returns the milliseconds until it wants to run
 * again (MLOG_SYNC_MS, or 1 while compacting).
 */
uint64_t mlog_tick(struct mlog *l);

/*
 * Returns 1 while the log is being replayed (nothing may be added), with
 * the bytes replayed and the log's in *done and *total (either may be
 * NULL); 0 once the store holds everything.
 */
int mlog_loading(const struct mlog *l, uint64_t *done, uint64_t *total);
/* Nanoseconds the replay took (so far, while it runs). */
uint64_t mlog_load_ns(const struct mlog *l);

/* Bytes of the log file, and whether a compaction is running. */
uint64_t mlog_bytes(const struct mlog *l);
int mlog_compacting(const struct mlog *l);

/*
 * Writes what is pending, syncs the log and frees it; a running compaction
 * is abandoned (its file removed). If an fsync is still in the thread pool,
 * returns 1 and calls done(arg) once it has finished and l is freed;
 * otherwise returns 0 with l freed. NULL is fine (returns 0).
 */
int mlog_close(struct mlog *l, void (*done)(void *arg), void *arg);

#endif
