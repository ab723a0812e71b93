/*
 * logging.h - the daemon's logging module: one structured log (logstore.h)
 * and everything that feeds it.
 *
 * - Every line of util/log.h's log_write() and log_event(), through the
 *   sink logging_open() sets.
 * - The instances' stdout and stderr. Instances write to files
 *   (DATA/instances/ID.out.log and ID.err.log, not pipes: they must outlive
 *   a SIGKILLed daemon); a 250 ms timer reads what was appended since the
 *   last offset (every 4 s for a file silent for a minute), puts each line
 *   in the log (source "instance", with deploymentId, instanceId and
 *   stream), and empties a file once it is read and past logMaxFileMB.
 *   Offsets survive restarts in DATA/logs/tail.state, so output written
 *   while the daemon was down is read when it comes back.
 * - The gateway's access log (source "access"), when accessLog is on.
 *
 * The same timer applies the retention (logstore_maintain()) once a minute.
 * Queries run on libuv's worker threads, so a search through large files
 * never holds up the loop. Everything else runs on the loop's thread.
 */
#ifndef MDS_LOGGING_H
#define MDS_LOGGING_H

#include <stddef.h>
#include <uv.h>

#include "daemon/config.h"
#include "logging/logstore.h"

struct logging;
struct gateway_access;

/* Lines longer than this (instance output) are split. */
#define LOGGING_LINE_MAX (16 * 1024)
/* Queries running at once. */
#define LOGGING_QUERIES_MAX 8

/* Borrowed, and must outlive the module. */
struct logging_env {
	uv_loop_t *loop;
	const char *data_dir;
	const struct config *config;
};

/*
 * Opens DATA/logs/mdscale.log, routes log_write() into it, and starts
 * following the instance files. Returns 0 and the module in *out, or a
 * negative MDS_E_* with detail in diag (nothing is left set up).
 */
int logging_open(const struct logging_env *env, struct logging **out,
		 char *diag, size_t diagsz);

/*
 * Reads the instance files one last time, saves the offsets, waits for
 * running queries, unsets the sink, frees the module, then calls done(arg)
 * if not NULL. NULL is fine.
 */
void logging_close(struct logging *lg, void (*done)(void *arg), void *arg);

/* The deployments' hook (deploy_env.instance_output): arg is the module.
 * Starts following an instance's files, or updates its deployment id. */
void logging_instance(void *arg, const char *deployment_id,
		      const char *instance_id);

/* The gateway's access log hook (gateway_access_fn): arg is the module. */
void logging_access(void *arg, const struct gateway_access *a);

/* The store, for followers and marks. Owned by the module. */
struct logstore *logging_store(struct logging *lg);

/*
 * Called once per query, on the loop: rc 0 and res (the caller may take
 * res->lines with buf_steal(); the rest is freed after the call), or a
 * negative MDS_E_* (res then empty).
 */
typedef void logging_query_fn(void *arg, int rc,
			      struct logstore_result *res);

/*
 * Runs logstore_query() on a worker thread over the module's files. f (and
 * its strings) and stop (may be NULL) are borrowed until done is called.
 * Returns 0 and calls done later, never from inside this call; or
 * MDS_E_LIMIT when LOGGING_QUERIES_MAX run already, MDS_E_UNAVAIL while
 * closing (done is then never called).
 */
int logging_query(struct logging *lg, const struct logstore_filter *f,
		  const struct logstore_mark *stop, logging_query_fn *done,
		  void *arg);

#endif
