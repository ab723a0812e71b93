/*
 * module.h - what the monitoring module's files share (not for other
 * modules: they include monitoring.h).
 *
 *   monitoring.c  the module's life cycle and the name rules
 *   metrics.c     sampling, posted metrics
 *   query.c       queries, evaluated across loop turns
 *   mlog.c        the metrics log on disk (mlog.h)
 *   alarms.c      alarm definitions and their evaluation
 */
#ifndef MDS_MONITORING_MODULE_H
#define MDS_MONITORING_MODULE_H

#include <stdint.h>
#include <uv.h>

#include "core/alarm.h"
#include "core/mql.h"
#include "core/tsdb.h"
#include "monitoring/monitoring.h"
#include "util/buf.h"
#include "util/htab.h"

#define SRC "monitoring"

#define MONITORING_MESSAGE_MAX ((size_t)4 << 20) /* one alarm message */

/* An entry of a map; embedded first in the structs the map holds. */
struct map_entry {
	char *key;
	uint64_t gen; /* the sampling period that last saw it */
};

/* Entries by key, in insertion order, indexed by their keys' hashes. */
struct map {
	struct map_entry **v;
	size_t n, cap;
	struct htab ix;
};

struct alarm_entry;
struct mlog;
struct record;

struct monitoring {
	struct monitoring_env env;
	char *data_dir, *api_url;
	struct tsdb *db;
	uv_timer_t sample_timer, eval_timer, log_timer;

	/* metrics.c */
	uint64_t gen;
	unsigned ncpu;
	struct map insts, deps;
	struct mql_result qres; /* scratch of the alarms */
	struct mlog *log; /* NULL if it could not be opened */

	/* alarms.c */
	struct alarm_entry **alarms;
	size_t nalarms, alarms_cap;
	size_t eval_next;     /* the next alarm of a pass split over turns */
	int64_t eval_pass_ms; /* the time the pass evaluates at */
	int eval_busy;        /* a pass is under way */
	struct alarm_events events; /* of the part just evaluated */
	struct alarm_entry *events_of; /* whose events they are */
	size_t events_next;   /* the next one to handle */
	struct record *recs;
	size_t nrecs, recs_cap;
	struct buf msg;
	monitoring_publish_fn *publish;
	monitoring_topic_exists_fn *topic_exists;
	void *publish_arg;

	/* query.c: the queries under way, worked on in turn. */
	struct monitoring_query_job *queries[MONITORING_QUERIES_MAX];
	size_t nqueries, query_next;
	uv_idle_t query_idle;

	int closing;
	int pending; /* handles and jobs to finish before the free */
};

/* monitoring.c */

/* Why ns is not a namespace mdscale takes, or NULL: [a-z][a-z0-9_]*, at
 * most 255 bytes; "oci_" is reserved for the platform's own namespaces
 * (allowed when allow_oci, i.e. for alarms and queries, or for mdscale's
 * own). */
const char *monitoring_ns_problem(const char *ns, int allow_oci);
/* Whether s is a metric name: a letter, then letters, digits, '.', '_',
 * '-' and '$', at most TSDB_MAX_STR bytes (dimension keys may also start
 * with '_' when key). */
int monitoring_name_ok(const char *s, int key);
/* Frees the module once nothing of it runs any more. */
void monitoring_free(struct monitoring *m);

/* metrics.c */

/* Replays the metrics log and starts observing the gateway. */
void metrics_open(struct monitoring *m);
void metrics_on_sample(uv_timer_t *t);
/* Whether the store is still being read from the log: no sampling, no
 * posts, no queries and no alarm evaluation until it is whole. */
int metrics_loading(const struct monitoring *m);
/* Fills f (MDS_E_UNAVAIL) with how far the loading is; returns f's code. */
int metrics_loading_fault(const struct monitoring *m, struct fault *f);
/* The log's fsync and compaction; re-arms t for when the log wants it. */
void metrics_on_log_tick(uv_timer_t *t);
/* Takes a last sample (as a sampling tick, the failure logged), stops
 * observing and closes the log; may leave an fsync pending (then
 * m->pending counts it and its end frees the module). */
void metrics_close(struct monitoring *m);
void metrics_free(struct monitoring *m);

/* query.c */

/* Starts the queries' handle. */
void query_open(struct monitoring *m);
/* Ends every query under way (their done callbacks see MDS_E_UNAVAIL)
 * and closes the handle; m->pending counts it. */
void query_close(struct monitoring *m);

/* alarms.c */

/* Loads the alarms from the store. Returns 0 or the store's error. */
int alarms_open(struct monitoring *m);
void alarms_on_eval(uv_timer_t *t);
void alarms_free(struct monitoring *m);

#endif
