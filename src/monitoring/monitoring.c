/*
 * monitoring.c - the monitoring module's life cycle; see monitoring.h and
 * docs/monitoring.md. Its work is in metrics.c (sampling, the snapshot,
 * posted metrics, queries) and alarms.c (definitions and evaluation).
 *
 * Everything runs on the daemon's loop, driven by three timers:
 *
 *   sample    reads every instance's usage through its backend (the
 *             local one reads cgroup pseudo-files, which never wait on a
 *             disk; others answer from what they last fetched) and
 *             appends the utilization and the gateway's request
 *             aggregates of the period to the metrics store;
 *   eval      evaluates every alarm once; each transition becomes an OCI
 *             alarm message, handed to the publisher per destination and
 *             recorded, with the delivery outcome, in the alarm's history
 *             (one SQLite transaction per tick);
 *   snapshot  every 30 s serializes the metrics store in memory on the loop
 *             and has the thread pool write it to DATA/metrics.snap.tmp,
 *             fsync it and rename it over DATA/metrics.snap, so the loop
 *             never waits on the disk for it.
 *
 * Alarm definitions live in memory, in creation order, and in the store
 * (kind "alarm", the API's JSON shape); their transitions are the events of
 * stream "alarm-history". The alarm state machines (core/alarm.h) are not
 * persisted: after a restart every alarm starts OK and fires again once its
 * condition has held for its pending duration.
 */
#include <stdlib.h>
#include <string.h>

#include "monitoring/mlog.h"
#include "monitoring/module.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

/* ---- the name rules ---- */

/* Whether s is 1..TSDB_MAX_STR bytes: a first character that first()
 * accepts, then characters that rest() accepts. */
static int well_formed(const char *s, int (*first)(int), int (*rest)(int))
{
	size_t n = 0;

	if (!first((unsigned char)s[0]))
		return 0;
	for (n = 1; s[n] != '\0'; n++)
		if (!rest((unsigned char)s[n]) || n >= TSDB_MAX_STR)
			return 0;
	return 1;
}

static int is_lower(int c)
{
	return c >= 'a' && c <= 'z';
}

static int is_alpha(int c)
{
	return is_lower(c) || (c >= 'A' && c <= 'Z');
}

static int is_alpha_(int c)
{
	return is_alpha(c) || c == '_';
}

static int ns_char(int c)
{
	return is_lower(c) || (c >= '0' && c <= '9') || c == '_';
}

/* What MQL reads as a metric name or dimension key, after the first. */
static int name_char(int c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
	       c == '-' || c == '$';
}

const char *monitoring_ns_problem(const char *ns, int allow_oci)
{
	if (!well_formed(ns, is_lower, ns_char))
		return "must be 1 to 255 characters of a-z, 0-9 and _, "
		       "starting with a letter";
	if (!allow_oci && strncmp(ns, "oci_", 4) == 0 &&
	    strcmp(ns, MONITORING_NAMESPACE) != 0)
		return "the prefix oci_ is reserved (only "
		       MONITORING_NAMESPACE " may be posted to)";
	if (!allow_oci && strncmp(ns, "oracle_", 7) == 0)
		return "the prefix oracle_ is reserved";
	return NULL;
}

int monitoring_name_ok(const char *s, int key)
{
	return well_formed(s, key ? is_alpha_ : is_alpha, name_char);
}

/* ---- the life cycle ---- */

void monitoring_set_publisher(struct monitoring *m, monitoring_publish_fn *fn,
			      monitoring_topic_exists_fn *exists, void *arg)
{
	m->publish = fn;
	m->topic_exists = exists;
	m->publish_arg = arg;
}

int monitoring_open(const struct monitoring_env *env, struct monitoring **out,
		    char *diag, size_t diagsz)
{
	struct tsdb_options opt;
	struct monitoring *m;
	int rc;

	*out = NULL;
	if (env->loop == NULL || env->store == NULL || env->data_dir == NULL ||
	    env->sample_ms < 100 || env->eval_ms < 100) {
		mds_diag(diag, diagsz, "monitoring: a loop, a store and a data "
			 "directory are needed, and periods of at least "
			 "100 ms");
		return MDS_E_INVAL;
	}
	m = xcalloc(1, sizeof(*m));
	m->env = *env;
	m->data_dir = xstrdup(env->data_dir);
	m->api_url = xstrdup(env->api_url != NULL ? env->api_url : "");
	m->env.data_dir = m->data_dir;
	m->env.api_url = m->api_url;
	m->ncpu = uv_available_parallelism();
	alarm_events_init(&m->events);
	buf_init(&m->msg, MONITORING_MESSAGE_MAX);
	mql_result_init(&m->qres);
	if (m->env.max_series == 0)
		m->env.max_series = MONITORING_MAX_SERIES;
	if (m->env.max_string_bytes == 0)
		m->env.max_string_bytes = MONITORING_MAX_STRING_BYTES;
	/* The store's own limits are its widest: posts are held to the
	 * configured ones (metrics.c), the log's replay and the daemon's
	 * own series never are. */
	tsdb_options_default(&opt);
	opt.max_series = 1u << 24;
	opt.max_string_bytes = (size_t)1 << 40;
	rc = tsdb_create(&opt, &m->db, diag, diagsz);
	if (rc != 0) {
		monitoring_free(m);
		return rc;
	}
	rc = alarms_open(m);
	if (rc != 0) {
		mds_diag(diag, diagsz, "monitoring: cannot load the alarms: %s",
			 mds_strerror(rc));
		monitoring_free(m);
		return rc;
	}
	metrics_open(m);
	query_open(m);
	uv_timer_init(env->loop, &m->sample_timer);
	uv_timer_init(env->loop, &m->eval_timer);
	uv_timer_init(env->loop, &m->log_timer);
	m->sample_timer.data = m->eval_timer.data = m->log_timer.data = m;
	uv_timer_start(&m->sample_timer, metrics_on_sample, env->sample_ms,
		       env->sample_ms);
	uv_timer_start(&m->eval_timer, alarms_on_eval, env->eval_ms,
		       env->eval_ms);
	uv_timer_start(&m->log_timer, metrics_on_log_tick, 0, 0);
	log_info(SRC, "%zu alarms, %zu metric series; sampling every %u ms, "
		 "evaluating every %u ms", m->nalarms,
		 tsdb_series_count(m->db), env->sample_ms, env->eval_ms);
	*out = m;
	return 0;
}

void monitoring_free(struct monitoring *m)
{
	alarms_free(m);
	alarm_events_free(&m->events);
	buf_free(&m->msg);
	metrics_free(m);
	mql_result_free(&m->qres);
	tsdb_free(m->db);
	free(m->data_dir);
	free(m->api_url);
	free(m);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct monitoring *m = h->data;

	if (--m->pending == 0)
		monitoring_free(m);
}

void monitoring_close(struct monitoring *m)
{
	if (m == NULL || m->closing)
		return;
	m->closing = 1;
	m->pending = 3;
	uv_close((uv_handle_t *)&m->sample_timer, on_timer_closed);
	uv_close((uv_handle_t *)&m->eval_timer, on_timer_closed);
	uv_close((uv_handle_t *)&m->log_timer, on_timer_closed);
	metrics_close(m);
	query_close(m);
}
