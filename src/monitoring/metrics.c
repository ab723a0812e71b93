/*
 * metrics.c - the monitoring module's metrics: sampling the instances and
 * the gateway, posted metrics (written to the log, mlog.h), queries
 * and the latest values the autoscale function reads; see monitoring.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deploy/deploy.h"
#include "gateway/gateway.h"
#include "monitoring/mlog.h"
#include "monitoring/module.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/xalloc.h"

#define POST_MAX_FUTURE_MS (10LL * 60 * 1000) /* OCI's PostMetricData */

/* The previous reading of one instance, to turn counters into rates. */
struct inst {
	struct map_entry e; /* key: instance id */
	int primed;     /* cpu_ns and mono_ns hold a reading */
	int broken;     /* its series could not be created (logged once) */
	uint64_t cpu_ns, mono_ns;
	struct tsdb_series *cpu, *mem;
};

/* The gateway series of one deployment. */
enum {
	DS_COUNT,
	DS_LATENCY,
	DS_LATENCY_MAX,
	DS_2XX,
	DS_4XX,
	DS_5XX,
	DS_INFLIGHT,
	DS_HELD,
	DS_HELD_TIME,
	DS__N
};

static const char *const dep_metric[DS__N] = {
	"PredictRequestCount", "PredictLatency", "PredictLatencyMax",
	"PredictResponse", "PredictResponse", "PredictResponse",
	"PredictInFlight", "PredictHeldRequests", "PredictHeldTime",
};
static const char *const status_class[3] = { "2xx", "4xx", "5xx" };

/* One deployment's requests over the current sampling period. */
struct dep {
	struct map_entry e; /* key: deployment id */
	uint64_t count, lat_sum_us, lat_max_us, by_class[3];
	uint64_t held, held_done, held_us; /* the gateway's, last period */
	int resolved, broken;
	struct tsdb_series *s[DS__N];
};

static void record(struct monitoring *m, struct tsdb_series *s, int64_t t,
		   double v);
static int commit_samples(struct monitoring *m, char *diag, size_t diagsz);

/* ---- the maps of instances and deployments ---- */

static struct map_entry *map_find(const struct map *m, const char *key)
{
	struct htab_iter it;

	for (uint32_t v = htab_first(&m->ix, hash_str(key), &it);
	     v != HTAB_NONE; v = htab_next(&it))
		if (strcmp(m->v[v]->key, key) == 0)
			return m->v[v];
	return NULL;
}

/* Inserts e, whose key is set and not yet in the map. */
static void map_insert(struct map *m, struct map_entry *e)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 16;
		m->v = xreallocarray(m->v, m->cap, sizeof(*m->v));
	}
	htab_put(&m->ix, hash_str(e->key), (uint32_t)m->n);
	m->v[m->n++] = e;
}

/* Removes and frees (key and entry) every entry not seen in period gen;
 * gen UINT64_MAX removes everything. */
static void map_sweep(struct map *m, uint64_t gen)
{
	size_t kept = 0;

	for (size_t i = 0; i < m->n; i++) {
		if (m->v[i]->gen == gen) {
			m->v[kept++] = m->v[i];
			continue;
		}
		free(m->v[i]->key);
		free(m->v[i]);
	}
	if (kept == m->n)
		return;
	m->n = kept;
	htab_clear(&m->ix);
	for (size_t i = 0; i < m->n; i++)
		htab_put(&m->ix, hash_str(m->v[i]->key), (uint32_t)i);
}

static void map_free(struct map *m)
{
	map_sweep(m, UINT64_MAX);
	free(m->v);
	htab_free(&m->ix);
	memset(m, 0, sizeof(*m));
}

/* ---- sampling ---- */

static void resolve_fail(struct monitoring *m, const char *what,
			 const char *id, const char *diag)
{
	(void)m;
	log_warn(SRC, "no %s metrics for %s: %s", what, id, diag);
}

static struct dep *dep_get(struct monitoring *m, const char *id)
{
	struct dep *d = (struct dep *)map_find(&m->deps, id);

	if (d == NULL) {
		d = xcalloc(1, sizeof(*d));
		d->e.key = xstrdup(id);
		map_insert(&m->deps, &d->e);
	}
	d->e.gen = m->gen;
	return d;
}

static struct inst *inst_get(struct monitoring *m,
			     const struct deploy_instance_info *in)
{
	struct inst *x = (struct inst *)map_find(&m->insts, in->instance_id);
	struct tsdb_dim dims[2] = {
		{ "instanceId", in->instance_id },
		{ "resourceId", in->deployment_id },
	};
	char diag[256];

	if (x != NULL)
		return x;
	x = xcalloc(1, sizeof(*x));
	x->e.key = xstrdup(in->instance_id);
	map_insert(&m->insts, &x->e);
	if (tsdb_series_get_or_create(m->db, MONITORING_NAMESPACE,
				      "CpuUtilization", dims, 2, &x->cpu,
				      diag, sizeof(diag)) != 0 ||
	    tsdb_series_get_or_create(m->db, MONITORING_NAMESPACE,
				      "MemoryUtilization", dims, 2, &x->mem,
				      diag, sizeof(diag)) != 0) {
		x->broken = 1;
		resolve_fail(m, "utilization", in->instance_id, diag);
	}
	return x;
}

static void sample_instance(void *arg, const struct deploy_instance_info *in)
{
	struct monitoring *m = arg;
	const struct backend_usage *u = &in->usage;
	struct inst *x;
	uint64_t mono, mcpu;
	int64_t t = ids_now_ms();

	dep_get(m, in->deployment_id);
	if (in->usage_rc == MDS_E_UNAVAIL || in->usage_rc == MDS_E_NOTFOUND)
		return; /* no usage to read (no cgroup, say) */
	x = inst_get(m, in);
	x->e.gen = m->gen;
	if (x->broken || in->usage_rc != 0)
		return;
	/* A platform that gives utilization directly is taken as is. */
	if (u->cpu_percent >= 0 || u->mem_percent >= 0) {
		if (u->cpu_percent >= 0)
			record(m, x->cpu, t, u->cpu_percent);
		if (u->mem_percent >= 0)
			record(m, x->mem, t, u->mem_percent);
		return;
	}
	mono = uv_hrtime();
	mcpu = u->cpu_mcpu ? u->cpu_mcpu : (uint64_t)m->ncpu * 1000;
	/* A counter that went back (a new cgroup of the same name) primes
	 * again instead of giving a negative rate. */
	if (x->primed && u->cpu_ns >= x->cpu_ns && mono > x->mono_ns) {
		double used = (double)(u->cpu_ns - x->cpu_ns);
		double avail = (double)(mono - x->mono_ns) * (double)mcpu /
			       1000.0;

		record(m, x->cpu, t, 100.0 * used / avail);
	}
	x->primed = 1;
	x->cpu_ns = u->cpu_ns;
	x->mono_ns = mono;
	if (u->mem_limit > 0)
		record(m, x->mem, t, 100.0 * (double)u->mem_bytes /
				     (double)u->mem_limit);
}

static void dep_resolve(struct monitoring *m, struct dep *d)
{
	struct tsdb_dim dims[2] = { { "resourceId", d->e.key },
				    { "statusClass", NULL } };
	char diag[256];

	d->resolved = 1;
	for (int i = 0; i < DS__N; i++) {
		size_t n = 1;

		if (i >= DS_2XX && i <= DS_5XX) {
			dims[1].value = status_class[i - DS_2XX];
			n = 2;
		}
		if (tsdb_series_get_or_create(m->db, MONITORING_NAMESPACE,
					      dep_metric[i], dims, n, &d->s[i],
					      diag, sizeof(diag)) != 0) {
			d->broken = 1;
			resolve_fail(m, "request", d->e.key, diag);
			return;
		}
	}
}

/* Requests held for a cold start in the period, and the mean time (ms)
 * of those that left the hold queue in it. */
static void emit_held(struct monitoring *m, struct dep *d,
		      const struct gateway_counters *gc, int64_t t)
{
	uint64_t done = gc->held_done - d->held_done;

	record(m, d->s[DS_HELD], t, (double)(gc->held - d->held));
	if (done > 0)
		record(m, d->s[DS_HELD_TIME], t,
				   (double)(gc->held_us_sum - d->held_us) /
					   (double)done / 1000.0);
	d->held = gc->held;
	d->held_done = gc->held_done;
	d->held_us = gc->held_us_sum;
}

/* Appends one deployment's request metrics of the period and resets it. */
static void dep_emit(struct monitoring *m, struct dep *d, int64_t t)
{
	struct gateway_counters gc;

	if (!d->resolved)
		dep_resolve(m, d);
	if (d->broken)
		goto out;
	record(m, d->s[DS_COUNT], t, (double)d->count);
	if (d->count > 0) {
		record(m, d->s[DS_LATENCY], t,
		       (double)d->lat_sum_us / (double)d->count / 1000.0);
		record(m, d->s[DS_LATENCY_MAX], t,
		       (double)d->lat_max_us / 1000.0);
	}
	for (int i = 0; i < 3; i++)
		record(m, d->s[DS_2XX + i], t, (double)d->by_class[i]);
	if (m->env.gateway != NULL &&
	    gateway_counters(m->env.gateway, d->e.key, &gc) == 0) {
		record(m, d->s[DS_INFLIGHT], t, (double)gc.inflight);
		emit_held(m, d, &gc, t);
	}
out:
	d->count = d->lat_sum_us = d->lat_max_us = 0;
	memset(d->by_class, 0, sizeof(d->by_class));
}

static void on_requests(void *arg, const char *deployment_id,
			const struct gateway_observed *o)
{
	struct monitoring *m = arg;
	struct dep *d;

	if (m->closing)
		return;
	d = dep_get(m, deployment_id);
	d->count += o->requests;
	d->lat_sum_us += o->latency_us_sum;
	if (o->latency_us_max > d->lat_max_us)
		d->lat_max_us = o->latency_us_max;
	d->by_class[0] += o->by_class[2];
	d->by_class[1] += o->by_class[4];
	d->by_class[2] += o->by_class[5];
}

/* A deployment at zero instances keeps its request series (PredictHeld*
 * count from where they were when the first request wakes it). */
static void keep_at_zero(void *arg, const struct deploy_view *v)
{
	if (v->count == 0)
		dep_get(arg, v->id);
}

int metrics_loading(const struct monitoring *m)
{
	return m->log != NULL && mlog_loading(m->log, NULL, NULL);
}

/* Fills f: the store is still being read from the log. */
int metrics_loading_fault(const struct monitoring *m, struct fault *f)
{
	uint64_t done = 0, total = 0;

	mlog_loading(m->log, &done, &total);
	return fault_set(f, MDS_E_UNAVAIL, "", "the metrics store is "
			 "loading (%llu of %llu MB read); try again shortly",
			 (unsigned long long)(done >> 20),
			 (unsigned long long)(total >> 20));
}

/* Appends a sample of every instance's usage and of each deployment's
 * requests since the last one to the store and the log's frame, then
 * writes the frame. Returns 0, or the log's error with diag filled (the
 * samples stay in memory); nothing is sampled while the store loads. */
static int sample(struct monitoring *m, char *diag, size_t diagsz)
{
	int64_t now;

	/* Series created now would take the places of the log's. */
	if (metrics_loading(m))
		return 0;

	if (m->env.deploy != NULL) {
		deploy_each_instance(m->env.deploy, sample_instance, m);
		deploy_each(m->env.deploy, NULL, keep_at_zero, m);
	}
	now = ids_now_ms();
	for (size_t i = 0; i < m->deps.n; i++)
		if (m->deps.v[i]->gen == m->gen)
			dep_emit(m, (struct dep *)m->deps.v[i], now);
	/* Instances and deployments not seen in this period are gone. */
	map_sweep(&m->insts, m->gen);
	map_sweep(&m->deps, m->gen);
	m->gen++;
	return commit_samples(m, diag, diagsz);
}

void metrics_on_sample(uv_timer_t *t)
{
	struct monitoring *m = t->data;
	char diag[256];

	/* The samples stay in memory: they were never acknowledged to
	 * anyone. */
	if (sample(m, diag, sizeof(diag)) != 0)
		log_error(SRC, "sampled metrics not saved: %s", diag);
}

/* ---- the log ---- */

/* Appends a sampled datapoint to the log's frame, then to the store; the
 * sampling tick commits the frame. */
static void record(struct monitoring *m, struct tsdb_series *s, int64_t t,
		   double v)
{
	if (m->log != NULL)
		mlog_add(m->log, s, t, v);
	tsdb_series_append(s, t, v);
}

/* Writes the sampling tick's frame. Returns 0 (also without a log: the
 * failure to open it was logged), or the log's error with diag filled. */
static int commit_samples(struct monitoring *m, char *diag, size_t diagsz)
{
	return m->log != NULL ? mlog_commit(m->log, diag, diagsz) : 0;
}

void metrics_on_log_tick(uv_timer_t *t)
{
	struct monitoring *m = t->data;

	if (m->log != NULL)
		uv_timer_start(t, metrics_on_log_tick, mlog_tick(m->log), 0);
}

/* ---- posted metrics ---- */

/* Records why an item is refused; returns -1. */
static int bad(struct monitoring_item *it, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int bad(struct monitoring_item *it, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(it->why, sizeof(it->why), fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Checks what the edge cannot: the names, and each datapoint's time in
 * [now - raw window, now + 2 h] with a finite value. Returns 0, or -1
 * with the reason in it->why.
 */
static int check_item(const struct monitoring *m, struct monitoring_item *it,
		      int64_t now)
{
	const int64_t raw_ms = tsdb_options(m->db)->raw_window_ms;
	const char *why = monitoring_ns_problem(it->namespace, 0);

	if (why != NULL)
		return bad(it, "namespace %s", why);
	if (!monitoring_name_ok(it->name, 0))
		return bad(it, "name must be 1 to 255 characters of A-Z, "
			   "a-z, 0-9, '.', '_', '-' and '$', starting with "
			   "a letter");
	for (size_t i = 0; i < it->ndims; i++)
		if (!monitoring_name_ok(it->dims[i].key, 1))
			return bad(it, "dimensions: the key '%.64s' must be 1 "
				   "to 255 characters of A-Z, a-z, 0-9, '.', "
				   "'_', '-' and '$', starting with a letter "
				   "or '_'", it->dims[i].key);
	if (it->npoints == 0)
		return bad(it, "datapoints is required (a non-empty array)");
	for (size_t i = 0; i < it->npoints; i++) {
		const struct monitoring_point *p = &it->points[i];

		if (p->t_ms < now - raw_ms)
			return bad(it, "datapoints[%zu].timestamp is more than "
				   "%lld minutes old (the raw retention)", i,
				   (long long)(raw_ms / 60000));
		if (p->t_ms > now + POST_MAX_FUTURE_MS)
			return bad(it, "datapoints[%zu].timestamp is more than "
				   "10 minutes in the future", i);
		if (!isfinite(p->value))
			return bad(it, "datapoints[%zu].value must be finite",
				   i);
	}
	return 0;
}

/* Finds or creates a checked item's series and checks that the store will
 * take every datapoint, so that the item is kept whole or not at all.
 * Returns the series, or NULL with it->why filled. */
static struct tsdb_series *resolve_item(struct monitoring *m,
					struct monitoring_item *it)
{
	const int64_t raw_ms = tsdb_options(m->db)->raw_window_ms;
	struct tsdb_series *s;
	int64_t floor, max_t = -1;
	char diag[256];
	size_t i;

	if (tsdb_series_get_or_create(m->db, it->namespace, it->name, it->dims,
				      it->ndims, &s, diag, sizeof(diag)) != 0) {
		mds_diag(it->why, sizeof(it->why), "%s", diag);
		return NULL;
	}
	for (i = 0; i < it->npoints; i++)
		if (it->points[i].t_ms > max_t)
			max_t = it->points[i].t_ms;
	floor = (tsdb_series_newest(s) > max_t ? tsdb_series_newest(s)
					       : max_t) - raw_ms;
	for (i = 0; i < it->npoints; i++) {
		if (it->points[i].t_ms < floor) {
			mds_diag(it->why, sizeof(it->why),
				 "datapoints[%zu].timestamp is more than %lld "
				 "minutes before the newest datapoint of "
				 "this series", i,
				 (long long)(raw_ms / 60000));
			return NULL;
		}
	}
	return s;
}

/* Whether the store has room for the new series of the items still good
 * (their strings the store lacks counted per item, so strings shared
 * between new series count more than once). Far from the limits, the
 * most the items could add is enough to know. Returns 0, or MDS_E_LIMIT
 * with f naming the limit and its configuration key. */
static int post_room(const struct monitoring *m,
		     const struct monitoring_item *items, size_t nitems,
		     struct fault *f)
{
	size_t series = 0, bytes = 0, have_s, have_b;

	have_s = tsdb_series_count(m->db);
	have_b = tsdb_strings_bytes(m->db);
	bytes = nitems * (2 + 2 * TSDB_MAX_DIMS) * (TSDB_MAX_STR + 1);
	if (have_s + nitems <= m->env.max_series &&
	    have_b + bytes <= m->env.max_string_bytes)
		return 0;
	bytes = 0;
	for (size_t i = 0; i < nitems; i++) {
		const struct monitoring_item *it = &items[i];
		size_t one, b;

		/* An identity the store refuses is refused with the item. */
		if (it->why[0] == '\0' &&
		    tsdb_series_cost(m->db, it->namespace, it->name, it->dims,
				     it->ndims, &one, &b, NULL, 0) == 0) {
			series += one;
			bytes += b;
		}
	}
	if (series == 0)
		return 0;
	if (have_s + series > m->env.max_series)
		return fault_set(f, MDS_E_LIMIT, "metricData", "the metric "
				 "store holds %zu series and the request "
				 "adds %zu; the limit is %zu "
				 "(metricsMaxSeries); nothing was stored",
				 have_s, series, m->env.max_series);
	if (have_b + bytes > m->env.max_string_bytes)
		return fault_set(f, MDS_E_LIMIT, "metricData", "the metric "
				 "store holds %zu bytes of names and "
				 "dimensions and the request adds %zu; the "
				 "limit is %zu (metricsMaxStringMB); nothing "
				 "was stored", have_b, bytes,
				 m->env.max_string_bytes);
	return 0;
}

/* Resolves every item still good; in an atomic batch the first refusal
 * refuses the batch. Returns 0 or MDS_E_INVAL/MDS_E_LIMIT with f. */
static int resolve_items(struct monitoring *m, struct monitoring_item *items,
			 size_t nitems, bool atomic,
			 struct tsdb_series **ser, struct fault *f)
{
	for (size_t i = 0; i < nitems; i++) {
		ser[i] = NULL;
		if (items[i].why[0] != '\0')
			continue;
		ser[i] = resolve_item(m, &items[i]);
		if (ser[i] == NULL && atomic)
			return fault_set(f, MDS_E_INVAL, "metricData",
					 "metricData[%zu]: %s; nothing was "
					 "stored (batchAtomicity ATOMIC)", i,
					 items[i].why);
	}
	return 0;
}

/* Writes the resolved items to the log, then to the store. Returns 0, or
 * MDS_E_NOSPACE or MDS_E_IO with f (nothing stored) if the log cannot be
 * written. */
static int store_items(struct monitoring *m, struct monitoring_item *items,
		       size_t nitems, struct tsdb_series **ser,
		       struct fault *f)
{
	char diag[256];
	int rc;

	if (m->log == NULL)
		return fault_set(f, MDS_E_UNAVAIL, "metricData", "the metrics "
				 "log is not open; nothing was stored");
	for (size_t i = 0; i < nitems; i++)
		for (size_t k = 0; ser[i] != NULL && k < items[i].npoints; k++)
			mlog_add(m->log, ser[i], items[i].points[k].t_ms,
				 items[i].points[k].value);
	rc = mlog_commit(m->log, diag, sizeof(diag));
	if (rc != 0)
		return fault_set(f, rc, "metricData", "%s; nothing was "
				 "stored", diag);
	for (size_t i = 0; i < nitems; i++)
		for (size_t k = 0; ser[i] != NULL && k < items[i].npoints; k++)
			/* Checked by resolve_item: cannot be refused. */
			(void)tsdb_series_append(ser[i],
						 items[i].points[k].t_ms,
						 items[i].points[k].value);
	return 0;
}

int monitoring_post(struct monitoring *m, struct monitoring_item *items,
		    size_t nitems, bool atomic, size_t *nfailed,
		    struct fault *f)
{
	struct tsdb_series *ser[MONITORING_POST_MAX_ITEMS];
	size_t i, npoints = 0, failed = 0;
	int64_t now = ids_now_ms();
	int rc;

	*nfailed = 0;
	if (metrics_loading(m))
		return metrics_loading_fault(m, f);
	if (nitems == 0)
		return fault_set(f, MDS_E_INVAL, "metricData",
				 "metricData must be a non-empty array");
	if (nitems > MONITORING_POST_MAX_ITEMS)
		return fault_set(f, MDS_E_LIMIT, "metricData",
				 "metricData has %zu items; at most %d per "
				 "request", nitems, MONITORING_POST_MAX_ITEMS);
	for (i = 0; i < nitems; i++)
		npoints += items[i].npoints;
	if (npoints > MONITORING_POST_MAX_DATAPOINTS)
		return fault_set(f, MDS_E_LIMIT, "metricData",
				 "the request has %zu datapoints; at most %d "
				 "per request", npoints,
				 MONITORING_POST_MAX_DATAPOINTS);
	for (i = 0; i < nitems; i++)
		if (items[i].why[0] != '\0' ||
		    check_item(m, &items[i], now) != 0)
			failed++;
	if (atomic && failed > 0) {
		for (i = 0; items[i].why[0] == '\0'; i++)
			;
		return fault_set(f, MDS_E_INVAL, "metricData",
				 "metricData[%zu]: %s; nothing was stored "
				 "(batchAtomicity ATOMIC)", i, items[i].why);
	}
	rc = post_room(m, items, nitems, f);
	if (rc == 0)
		rc = resolve_items(m, items, nitems, atomic, ser, f);
	if (rc == 0)
		rc = store_items(m, items, nitems, ser, f);
	if (rc != 0)
		return rc;
	for (i = 0; i < nitems; i++)
		if (items[i].why[0] != '\0')
			(*nfailed)++;
	return 0;
}

/* ---- latest value, for the autoscale function ---- */

struct latest {
	int64_t start, end;
	double max;
	int found;
};

static int latest_one(const struct tsdb_series *s, void *arg)
{
	struct latest *l = arg;
	struct tsdb_read rd;
	double v;
	int k;

	tsdb_series_read(s, l->start, l->end, &rd);
	k = rd.n[1] > 0 ? 1 : 0;
	if (rd.n[k] == 0)
		return 0;
	if (rd.res == TSDB_RES_RAW)
		v = rd.raw[k][rd.n[k] - 1].v;
	else
		v = rd.agg[k][rd.n[k] - 1].last;
	if (!l->found || v > l->max)
		l->max = v;
	l->found = 1;
	return 0;
}

/* The newest value of metric among the series whose dimension key is
 * value, over the last window_ms; the max when several series match. */
static int latest_by(struct monitoring *m, const char *metric,
		     const char *key, const char *value, int64_t window_ms,
		     double *out)
{
	struct tsdb_term term = { key, value, TSDB_MATCH_EQ };
	struct tsdb_clause clause = { &term, 1 };
	struct latest l = { 0 };

	l.end = ids_now_ms() + 1;
	l.start = l.end - 1 - window_ms;
	tsdb_select(m->db, MONITORING_NAMESPACE, metric, &clause, 1,
		    latest_one, &l);
	if (!l.found)
		return MDS_E_NOTFOUND;
	*out = l.max;
	return 0;
}

int monitoring_latest(struct monitoring *m, const char *metric,
		      const char *resource_id, int64_t window_ms,
		      double *value)
{
	return latest_by(m, metric, "resourceId", resource_id, window_ms,
			 value);
}

int monitoring_latest_instance(struct monitoring *m, const char *metric,
			       const char *instance_id, int64_t window_ms,
			       double *value)
{
	return latest_by(m, metric, "instanceId", instance_id, window_ms,
			 value);
}
void monitoring_store_stats(const struct monitoring *m,
			    struct monitoring_store_stats *st)
{
	st->series = tsdb_series_count(m->db);
	st->memory_bytes = tsdb_memory(m->db);
	st->string_bytes = tsdb_strings_bytes(m->db);
	st->max_series = m->env.max_series;
	st->max_string_bytes = m->env.max_string_bytes;
	st->log_bytes = m->log != NULL ? mlog_bytes(m->log) : 0;
	st->loading = metrics_loading(m);
	st->load_ns = m->log != NULL ? mlog_load_ns(m->log) : 0;
}

/* ---- the life cycle ---- */

void metrics_open(struct monitoring *m)
{
	char diag[256];

	if (mlog_open(m->db, m->env.loop, m->data_dir, &m->log, diag,
		      sizeof(diag)) != 0)
		log_error(SRC, "metrics will not be saved, and posts are "
			  "refused: %s", diag);
	if (m->env.gateway != NULL)
		gateway_set_observer(m->env.gateway, on_requests, m);
}

static void on_log_closed(void *arg)
{
	struct monitoring *m = arg;

	if (--m->pending == 0)
		monitoring_free(m);
}

void metrics_close(struct monitoring *m)
{
	struct mlog *l;
	char diag[256];

	/* The last sample: the requests and usage since the last tick, the
	 * gateway's stop included, when the owner stopped it first. */
	if (sample(m, diag, sizeof(diag)) != 0)
		log_error(SRC, "the last sample of metrics was not saved: %s",
			  diag);
	if (m->env.gateway != NULL)
		gateway_set_observer(m->env.gateway, NULL, NULL);
	l = m->log;
	m->log = NULL;
	m->pending++;
	if (mlog_close(l, on_log_closed, m) == 0)
		m->pending--;
}

void metrics_free(struct monitoring *m)
{
	map_free(&m->insts);
	map_free(&m->deps);
}
