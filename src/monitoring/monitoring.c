/*
 * monitoring.c - the monitoring module's shell: sampling, the metrics API,
 * alarms and their evaluation; see monitoring.h and docs/monitoring.md.
 *
 * Everything runs on the daemon's loop, driven by three timers:
 *
 *   sample    reads every instance's cgroup (small reads of the cgroup
 *             pseudo-files, which never wait on a disk) and appends the
 *             utilization and the gateway's request aggregates of the
 *             period to the metrics store;
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
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deploy/cgroup.h"
#include "core/alarm.h"
#include "core/iso8601.h"
#include "core/mql.h"
#include "core/tsdb.h"
#include "deploy/deploy.h"
#include "gateway/gateway.h"
#include "monitoring/monitoring.h"
#include "store/store.h"
#include "util/buf.h"
#include "api/jsonx.h"
#include "util/ids.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

#define SRC "monitoring"

#define SNAPSHOT_PERIOD_MS 30000
#define SNAPSHOT_MAX_BYTES ((size_t)16 << 30) /* refuse to load more */
#define MAX_ALARMS 10000
#define POST_MAX_ITEMS 50
#define POST_MAX_DATAPOINTS 10000
#define POST_MAX_FUTURE_MS (2LL * 3600 * 1000)
#define POST_MAX_METADATA 10
#define QUERY_DEFAULT_RANGE_MS (3600LL * 1000)
#define QUERY_MAX_STEPS 100000
#define QUERY_MAX_POINTS 200000
#define RES_MIN_MS 1000LL
#define RES_MAX_MS 86400000LL
#define PENDING_MIN_MS 1000LL
#define PENDING_MAX_MS 3600000LL
#define PENDING_DEFAULT_MS 60000LL
#define HISTORY_STREAM "alarm-history"
#define HISTORY_KEEP_MS (90LL * 86400 * 1000)
#define HISTORY_DEFAULT_LIMIT 100
#define HISTORY_MAX_LIMIT 1000
#define STATUS_MAX_STREAMS 1000
#define MESSAGE_MAX ((size_t)4 << 20)
#define ALARM_KIND "alarm"
#define ALARM_ID_LEN 22 /* "alarm-" + 16 hex digits */

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- a small string-keyed hash map with sweeping ---- */

/* An entry of a map; embedded first in the structs the map holds. */
struct entry {
	struct entry *next;
	char *key;
	uint64_t gen; /* the sampling period that last saw it */
};

struct map {
	struct entry **b;
	size_t nb, n;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct entry *map_find(const struct map *m, const char *key)
{
	struct entry *e;

	if (m->nb == 0)
		return NULL;
	for (e = m->b[hash_str(key) & (m->nb - 1)]; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* Inserts e, whose key is set and not yet in the map. */
static void map_insert(struct map *m, struct entry *e)
{
	size_t i;

	if (m->n >= m->nb) {
		size_t nb = m->nb ? m->nb * 2 : 16;
		struct entry **b = xcalloc(nb, sizeof(*b));

		for (i = 0; i < m->nb; i++) {
			while (m->b[i] != NULL) {
				struct entry *x = m->b[i];
				size_t k = hash_str(x->key) & (nb - 1);

				m->b[i] = x->next;
				x->next = b[k];
				b[k] = x;
			}
		}
		free(m->b);
		m->b = b;
		m->nb = nb;
	}
	i = hash_str(e->key) & (m->nb - 1);
	e->next = m->b[i];
	m->b[i] = e;
	m->n++;
}

/* Removes and frees (key and entry) every entry not seen in period gen;
 * gen UINT64_MAX removes everything. */
static void map_sweep(struct map *m, uint64_t gen)
{
	for (size_t i = 0; i < m->nb; i++) {
		struct entry **pp = &m->b[i];

		while (*pp != NULL) {
			struct entry *e = *pp;

			if (e->gen == gen) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			free(e->key);
			free(e);
			m->n--;
		}
	}
}

static void map_free(struct map *m)
{
	map_sweep(m, UINT64_MAX);
	free(m->b);
	m->b = NULL;
	m->nb = 0;
}

/* ---- the module ---- */

/* The previous reading of one instance, to turn counters into rates. */
struct inst {
	struct entry e; /* key: instance id */
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
	DS__N
};

static const char *const dep_metric[DS__N] = {
	"PredictRequestCount", "PredictLatency", "PredictLatencyMax",
	"PredictResponse", "PredictResponse", "PredictResponse",
	"PredictInFlight",
};
static const char *const status_class[3] = { "2xx", "4xx", "5xx" };

/* One deployment's requests over the current sampling period. */
struct dep {
	struct entry e; /* key: deployment id */
	uint64_t count, lat_sum_us, lat_max_us, by_class[3];
	int resolved, broken;
	struct tsdb_series *s[DS__N];
};

struct alarm_entry {
	struct alarm_def def;
	struct alarm_state *st;
	char *compartment_id;        /* echoed as given; NULL if none */
	char *metric_compartment_id;
	int64_t created_ms, updated_ms;
	int64_t triggered_ms;        /* the last OK_TO_FIRING; 0: none */
	int64_t evaluated_ms;        /* the last evaluation; 0: none */
};

/* A history record waiting for the tick's transaction. */
struct record {
	char *alarm_id;
	int64_t t_ms;
	char *json;
};

/* A snapshot being written by the thread pool. */
struct snap_job {
	uv_work_t req;
	struct monitoring *m;
	struct buf img;
	char *path, *tmp;
	int err;         /* errno of the failed step, 0 on success */
	const char *step;
};

struct monitoring {
	struct monitoring_env env;
	char *data_dir, *api_url;
	struct tsdb *db;
	uv_timer_t sample_timer, eval_timer, snap_timer;
	uint64_t gen;
	unsigned ncpu;
	struct map insts, deps;

	struct alarm_entry **alarms;
	size_t nalarms, alarms_cap;
	struct alarm_events events;
	struct record *recs;
	size_t nrecs, recs_cap;
	struct buf msg;
	struct mql_result qres;

	monitoring_publish_fn *publish;
	monitoring_topic_exists_fn *topic_exists;
	void *publish_arg;

	int closing;
	int pending;      /* handles and jobs to finish before the free */
	int save_running; /* a snapshot job is in the thread pool */
	int final_save;   /* save once the running job is done (closing) */
};

static json_t *dims_json(const struct tsdb_dim *dims, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, dims[i].key, json_string(dims[i].value));
	return o;
}

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

/*
 * Checks a namespace: [a-z][a-z0-9_]*, at most 255 bytes; "oci_" is
 * reserved for the platform's own namespaces (only allowed when
 * allow_oci, i.e. for alarms and queries, or for mdscale's own).
 */
static const char *ns_problem(const char *ns, int allow_oci)
{
	if (!well_formed(ns, is_lower, ns_char))
		return "must be 1 to 255 characters of a-z, 0-9 and _, "
		       "starting with a letter";
	if (!allow_oci && strncmp(ns, "oci_", 4) == 0 &&
	    strcmp(ns, MONITORING_NAMESPACE) != 0)
		return "the prefix oci_ is reserved (only "
		       MONITORING_NAMESPACE " may be posted to)";
	return NULL;
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
			tsdb_series_append(x->cpu, t, u->cpu_percent);
		if (u->mem_percent >= 0)
			tsdb_series_append(x->mem, t, u->mem_percent);
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

		tsdb_series_append(x->cpu, t, 100.0 * used / avail);
	}
	x->primed = 1;
	x->cpu_ns = u->cpu_ns;
	x->mono_ns = mono;
	if (u->mem_limit > 0)
		tsdb_series_append(x->mem, t, 100.0 * (double)u->mem_bytes /
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

/* Appends one deployment's request metrics of the period and resets it. */
static void dep_emit(struct monitoring *m, struct dep *d, int64_t t)
{
	struct gateway_counters gc;

	if (!d->resolved)
		dep_resolve(m, d);
	if (d->broken)
		goto out;
	tsdb_series_append(d->s[DS_COUNT], t, (double)d->count);
	if (d->count > 0) {
		tsdb_series_append(d->s[DS_LATENCY], t,
				   (double)d->lat_sum_us / (double)d->count /
					   1000.0);
		tsdb_series_append(d->s[DS_LATENCY_MAX], t,
				   (double)d->lat_max_us / 1000.0);
	}
	for (int i = 0; i < 3; i++)
		tsdb_series_append(d->s[DS_2XX + i], t,
				   (double)d->by_class[i]);
	if (m->env.gateway != NULL &&
	    gateway_counters(m->env.gateway, d->e.key, &gc) == 0)
		tsdb_series_append(d->s[DS_INFLIGHT], t, (double)gc.inflight);
out:
	d->count = d->lat_sum_us = d->lat_max_us = 0;
	memset(d->by_class, 0, sizeof(d->by_class));
}

static void on_request(void *arg, const char *deployment_id, int status,
		       uint64_t latency_us)
{
	struct monitoring *m = arg;
	struct dep *d;
	int cls = status / 100;

	if (m->closing)
		return;
	d = dep_get(m, deployment_id);
	d->count++;
	d->lat_sum_us += latency_us;
	if (latency_us > d->lat_max_us)
		d->lat_max_us = latency_us;
	if (cls == 2)
		d->by_class[0]++;
	else if (cls == 4)
		d->by_class[1]++;
	else if (cls == 5)
		d->by_class[2]++;
}

static void on_sample(uv_timer_t *t)
{
	struct monitoring *m = t->data;
	int64_t now;

	if (m->env.deploy != NULL)
		deploy_each_instance(m->env.deploy, sample_instance, m);
	now = ids_now_ms();
	for (size_t i = 0; i < m->deps.nb; i++)
		for (struct entry *e = m->deps.b[i]; e != NULL; e = e->next)
			if (e->gen == m->gen)
				dep_emit(m, (struct dep *)e, now);
	/* Instances and deployments not seen in this period are gone. */
	map_sweep(&m->insts, m->gen);
	map_sweep(&m->deps, m->gen);
	m->gen++;
}

/* ---- the snapshot ---- */

static int snap_add(void *arg, const void *data, size_t len)
{
	return buf_add(arg, data, len);
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes the image to tmp, syncs it and renames it over path. Runs in the
 * thread pool (or, at close, on the loop). */
static void snap_write(struct snap_job *j)
{
	int fd;

	j->err = 0;
	j->step = "open";
	fd = open(j->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	j->step = "write";
	if (write_all(fd, j->img.data ? j->img.data : "", j->img.len) != 0)
		goto fail_fd;
	j->step = "fsync";
	if (fsync(fd) != 0)
		goto fail_fd;
	close(fd);
	j->step = "rename";
	if (rename(j->tmp, j->path) != 0)
		goto fail;
	return;
fail_fd:
	j->err = errno;
	close(fd);
	return;
fail:
	j->err = errno;
}

static struct snap_job *snap_job_new(struct monitoring *m)
{
	struct snap_job *j = xcalloc(1, sizeof(*j));

	j->m = m;
	j->req.data = j;
	buf_init(&j->img, SNAPSHOT_MAX_BYTES);
	j->path = xasprintf("%s/metrics.snap", m->data_dir);
	j->tmp = xasprintf("%s/metrics.snap.tmp", m->data_dir);
	if (tsdb_dump(m->db, snap_add, &j->img) != 0) {
		log_error(SRC, "metrics snapshot larger than %zu bytes: not "
			  "saved", SNAPSHOT_MAX_BYTES);
		buf_free(&j->img);
		free(j->path);
		free(j->tmp);
		free(j);
		return NULL;
	}
	return j;
}

static void snap_job_end(struct snap_job *j)
{
	if (j->err != 0)
		log_error(SRC, "cannot save the metrics snapshot (%s %s): %s",
			  j->step, j->tmp, strerror(j->err));
	else
		log_debug(SRC, "metrics snapshot saved: %zu series, %zu bytes",
			  tsdb_series_count(j->m->db), j->img.len);
	buf_free(&j->img);
	free(j->path);
	free(j->tmp);
	free(j);
}

static void save_sync(struct monitoring *m)
{
	struct snap_job *j = snap_job_new(m);

	if (j == NULL)
		return;
	snap_write(j);
	snap_job_end(j);
}

static void free_module(struct monitoring *m);

static void snap_work(uv_work_t *req)
{
	snap_write(req->data);
}

static void snap_after(uv_work_t *req, int status)
{
	struct snap_job *j = req->data;
	struct monitoring *m = j->m;

	(void)status;
	snap_job_end(j);
	m->save_running = 0;
	if (m->final_save) {
		m->final_save = 0;
		save_sync(m);
		if (--m->pending == 0)
			free_module(m);
	}
}

static void on_snapshot(uv_timer_t *t)
{
	struct monitoring *m = t->data;
	struct snap_job *j;

	if (m->save_running)
		return; /* the disk is slower than the period: skip one */
	j = snap_job_new(m);
	if (j == NULL)
		return;
	if (uv_queue_work(m->env.loop, &j->req, snap_work, snap_after) != 0) {
		snap_write(j);
		snap_job_end(j);
		return;
	}
	m->save_running = 1;
}

/* Loads DATA/metrics.snap if there is one; a bad one is logged and left
 * to be overwritten by the next save. */
static void snap_load(struct monitoring *m)
{
	char *path = xasprintf("%s/metrics.snap", m->data_dir);
	char diag[256];
	struct stat sb;
	char *data = NULL;
	size_t got = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			log_warn(SRC, "cannot read %s: %s; starting without "
				 "past metrics", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &sb) != 0 || sb.st_size < 0 ||
	    (uint64_t)sb.st_size > SNAPSHOT_MAX_BYTES) {
		log_warn(SRC, "%s: unreadable or too large; ignored", path);
		goto out;
	}
	data = xmalloc((size_t)sb.st_size + 1);
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, data + got, (size_t)sb.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	rc = tsdb_load(m->db, data, got, diag, sizeof(diag));
	if (rc != 0)
		log_warn(SRC, "%s is not a valid snapshot (%s); starting "
			 "without past metrics", path, diag);
	else
		log_info(SRC, "loaded %zu metric series from %s",
			 tsdb_series_count(m->db), path);
out:
	if (fd >= 0)
		close(fd);
	free(data);
	free(path);
}

/* ---- alarms: definitions ---- */

static void entry_free(struct alarm_entry *e)
{
	if (e == NULL)
		return;
	alarm_def_clear(&e->def);
	alarm_state_free(e->st);
	free(e->compartment_id);
	free(e->metric_compartment_id);
	free(e);
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* A deep copy of src's definition and attributes, without its state. */
static struct alarm_entry *entry_copy(const struct alarm_entry *src)
{
	struct alarm_entry *e = xcalloc(1, sizeof(*e));
	const struct alarm_def *s = &src->def;
	struct alarm_def *d = &e->def;

	alarm_def_init(d);
	d->id = dup_or_null(s->id);
	d->display_name = dup_or_null(s->display_name);
	d->namespace = dup_or_null(s->namespace);
	if (s->query_text != NULL &&
	    alarm_def_set_query(d, s->query_text, NULL, 0) != 0)
		abort(); /* it parsed before */
	d->severity = s->severity;
	d->pending_ms = s->pending_ms;
	d->repeat_ms = s->repeat_ms;
	d->body = dup_or_null(s->body);
	d->message_format = s->message_format;
	d->is_enabled = s->is_enabled;
	for (size_t i = 0; i < s->ndestinations; i++)
		alarm_def_add_destination(d, s->destinations[i], NULL, 0);
	e->compartment_id = dup_or_null(src->compartment_id);
	e->metric_compartment_id = dup_or_null(src->metric_compartment_id);
	e->created_ms = src->created_ms;
	e->updated_ms = src->updated_ms;
	e->triggered_ms = src->triggered_ms;
	e->evaluated_ms = src->evaluated_ms;
	return e;
}

static struct alarm_entry *alarm_find_id(const struct monitoring *m,
					 const char *id, size_t *index)
{
	for (size_t i = 0; i < m->nalarms; i++) {
		if (strcmp(m->alarms[i]->def.id, id) == 0) {
			if (index != NULL)
				*index = i;
			return m->alarms[i];
		}
	}
	return NULL;
}

static json_t *str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *duration_json(int64_t ms)
{
	char s[ISO8601_DURATION_BUFSZ];

	if (iso8601_duration_format(ms, s, sizeof(s)) != 0)
		return json_null();
	return json_string(s);
}

/* The alarm in the API's shape (also what the store keeps). */
static json_t *alarm_json(const struct alarm_entry *e)
{
	const struct alarm_def *d = &e->def;
	json_t *o = json_object(), *dest = json_array();

	for (size_t i = 0; i < d->ndestinations; i++)
		json_array_append_new(dest, json_string(d->destinations[i]));
	json_object_set_new(o, "id", json_string(d->id));
	json_object_set_new(o, "displayName", json_string(d->display_name));
	if (e->compartment_id != NULL)
		json_object_set_new(o, "compartmentId",
				    json_string(e->compartment_id));
	if (e->metric_compartment_id != NULL)
		json_object_set_new(o, "metricCompartmentId",
				    json_string(e->metric_compartment_id));
	json_object_set_new(o, "namespace", json_string(d->namespace));
	json_object_set_new(o, "query", json_string(d->query_text));
	json_object_set_new(o, "severity",
			    json_string(alarm_severity_name(d->severity)));
	json_object_set_new(o, "pendingDuration", duration_json(d->pending_ms));
	json_object_set_new(o, "repeatNotificationDuration",
			    d->repeat_ms ? duration_json(d->repeat_ms)
					 : json_null());
	json_object_set_new(o, "destinations", dest);
	json_object_set_new(o, "body", str_or_null(d->body));
	json_object_set_new(o, "messageFormat",
			    json_string(alarm_format_name(d->message_format)));
	json_object_set_new(o, "isEnabled", json_boolean(d->is_enabled));
	json_object_set_new(o, "lifecycleState", json_string("ACTIVE"));
	json_object_set_new(o, "timeCreated", jsonx_time(e->created_ms));
	json_object_set_new(o, "timeUpdated", jsonx_time(e->updated_ms));
	return o;
}

/* Refuses a body that is not an object or has a field not in fields. */
static int check_body(json_t *body, const char *const *fields, size_t n,
		      struct fault *f)
{
	const char *key;
	json_t *v;

	if (!json_is_object(body))
		return fault_set(f, MDS_E_INVAL, "",
				 "the body must be a JSON object");
	json_object_foreach(body, key, v) {
		size_t k = 0;

		(void)v;
		while (k < n && strcmp(fields[k], key) != 0)
			k++;
		if (k == n)
			return fault_set(f, MDS_E_INVAL, key,
					 "unknown field '%s'", key);
	}
	return 0;
}

static const char *const alarm_fields[] = {
	"displayName", "namespace", "query", "severity", "pendingDuration",
	"repeatNotificationDuration", "destinations", "body",
	"messageFormat", "isEnabled", "compartmentId", "metricCompartmentId",
};

/*
 * Reads an optional string member: 0 with *out NULL when absent; *null set
 * when it is JSON null and nullable; else a string of 1..max bytes.
 */
static int get_str(json_t *spec, const char *key, size_t max, int nullable,
		   const char **out, struct fault *f)
{
	json_t *v = json_object_get(spec, key);

	*out = NULL;
	if (v == NULL || (nullable && json_is_null(v)))
		return 0;
	if (!json_is_string(v))
		return fault_set(f, MDS_E_INVAL, key, "%s must be a string%s",
				 key, nullable ? " or null" : "");
	if (json_string_length(v) == 0 || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return fault_set(f, MDS_E_INVAL, key,
				 "%s must be 1 to %zu bytes (no NUL)", key,
				 max);
	*out = json_string_value(v);
	return 0;
}

static void set_str(char **slot, const char *s)
{
	free(*slot);
	*slot = dup_or_null(s);
}

static int get_duration(json_t *spec, const char *key, int64_t min,
			int64_t max, const char *range, int64_t *out,
			struct fault *f)
{
	const char *s;
	char diag[128];
	int64_t ms;
	int rc;

	rc = get_str(spec, key, 64, 0, &s, f);
	if (rc != 0 || s == NULL)
		return rc;
	if (iso8601_duration_parse(s, &ms, diag, sizeof(diag)) != 0)
		return fault_set(f, MDS_E_INVAL, key,
				 "%s: '%s' is not an ISO-8601 duration such "
				 "as PT1M or PT5S (%s)", key, s, diag);
	if (ms < min || ms > max)
		return fault_set(f, MDS_E_INVAL, key,
				 "%s must be from %s, not %s", key, range, s);
	*out = ms;
	return 0;
}

static int apply_destinations(struct monitoring *m, json_t *v,
			      struct alarm_def *d, int check_topics,
			      struct fault *f)
{
	json_t *x;
	size_t i, k;

	if (json_is_null(v))
		v = NULL;
	if (v != NULL && !json_is_array(v))
		return fault_set(f, MDS_E_INVAL, "destinations",
				 "destinations must be an array of topic ids");
	if (json_array_size(v) > ALARM_MAX_DESTINATIONS)
		return fault_set(f, MDS_E_LIMIT, "destinations",
				 "destinations: at most %d topics",
				 ALARM_MAX_DESTINATIONS);
	for (i = 0; i < d->ndestinations; i++)
		free(d->destinations[i]);
	d->ndestinations = 0;
	json_array_foreach(v, i, x) {
		const char *id = json_string_value(x);

		if (id == NULL || *id == '\0' ||
		    json_string_length(x) > ALARM_MAX_STR ||
		    strlen(id) != json_string_length(x))
			return fault_set(f, MDS_E_INVAL, "destinations",
					 "destinations[%zu] must be a topic "
					 "id (a string of 1 to %d bytes)", i,
					 ALARM_MAX_STR);
		for (k = 0; k < d->ndestinations; k++)
			if (strcmp(d->destinations[k], id) == 0)
				return fault_set(f, MDS_E_INVAL,
						 "destinations",
						 "destinations[%zu]: topic "
						 "'%s' is listed twice", i, id);
		if (check_topics && m->topic_exists != NULL &&
		    !m->topic_exists(m->publish_arg, id))
			return fault_set(f, MDS_E_INVAL, "destinations",
					 "destinations[%zu]: no topic '%s'", i,
					 id);
		alarm_def_add_destination(d, id, NULL, 0);
	}
	return 0;
}

/* displayName and namespace; a new namespace counts as a new query. */
static int apply_names(json_t *spec, struct alarm_entry *e, int creating,
		       int *query_changed, struct fault *f)
{
	struct alarm_def *d = &e->def;
	const char *s, *why;
	int rc;

	rc = get_str(spec, "displayName", ALARM_MAX_STR, 0, &s, f);
	if (rc != 0)
		return rc;
	if (s != NULL)
		set_str(&d->display_name, s);
	else if (creating)
		return fault_set(f, MDS_E_INVAL, "displayName",
				 "displayName is required");
	rc = get_str(spec, "namespace", ALARM_MAX_STR, 0, &s, f);
	if (rc != 0 || s == NULL)
		return rc;
	why = ns_problem(s, 1);
	if (why != NULL)
		return fault_set(f, MDS_E_INVAL, "namespace", "namespace %s",
				 why);
	if (strcmp(s, d->namespace) != 0)
		*query_changed = 1;
	set_str(&d->namespace, s);
	return 0;
}

static int apply_query(json_t *spec, struct alarm_def *d, int creating,
		       int *query_changed, struct fault *f)
{
	char diag[512];
	const char *s;
	int rc;

	rc = get_str(spec, "query", MQL_MAX_QUERY, 0, &s, f);
	if (rc != 0)
		return rc;
	if (s == NULL && creating)
		return fault_set(f, MDS_E_INVAL, "query", "query is required");
	if (s == NULL)
		return 0;
	rc = alarm_def_set_query(d, s, diag, sizeof(diag));
	if (rc != 0)
		return fault_set(f, rc == MDS_E_LIMIT ? rc : MDS_E_INVAL,
				 "query", "query: %s", diag);
	if (!mql_has_condition(d->query))
		return fault_set(f, MDS_E_INVAL, "query",
				 "query: an alarm needs a condition, such as "
				 "'> 80' after the statistic");
	*query_changed = 1;
	return 0;
}

/* severity and messageFormat. */
static int apply_choices(json_t *spec, struct alarm_def *d, struct fault *f)
{
	const char *s;
	int rc;

	rc = get_str(spec, "severity", 32, 0, &s, f);
	if (rc != 0)
		return rc;
	if (s != NULL && alarm_severity_parse(s, &d->severity) != 0)
		return fault_set(f, MDS_E_INVAL, "severity",
				 "severity must be CRITICAL, ERROR, WARNING "
				 "or INFO, not '%s'", s);
	rc = get_str(spec, "messageFormat", 32, 0, &s, f);
	if (rc != 0)
		return rc;
	if (s != NULL && alarm_format_parse(s, &d->message_format) != 0)
		return fault_set(f, MDS_E_INVAL, "messageFormat",
				 "messageFormat must be RAW, PRETTY_JSON or "
				 "ONS_OPTIMIZED, not '%s'", s);
	return 0;
}

static int apply_durations(json_t *spec, struct alarm_def *d,
			   struct fault *f)
{
	json_t *v;
	int rc;

	rc = get_duration(spec, "pendingDuration", PENDING_MIN_MS,
			  PENDING_MAX_MS, "PT1S to PT1H", &d->pending_ms, f);
	if (rc != 0)
		return rc;
	v = json_object_get(spec, "repeatNotificationDuration");
	if (v != NULL && json_is_null(v)) {
		d->repeat_ms = 0;
		return 0;
	}
	return get_duration(spec, "repeatNotificationDuration",
			    ALARM_MIN_REPEAT_MS, ALARM_MAX_REPEAT_MS,
			    "PT1S to P1D", &d->repeat_ms, f);
}

/* body, isEnabled and the compartment ids. */
static int apply_extras(json_t *spec, struct alarm_entry *e, struct fault *f)
{
	struct alarm_def *d = &e->def;
	const char *s;
	json_t *v;
	int rc;

	v = json_object_get(spec, "body");
	if (v != NULL && json_is_null(v)) {
		set_str(&d->body, NULL);
	} else if (v != NULL) {
		if (!json_is_string(v) ||
		    json_string_length(v) > ALARM_MAX_BODY ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return fault_set(f, MDS_E_INVAL, "body",
					 "body must be a string of at most "
					 "%d bytes, or null", ALARM_MAX_BODY);
		set_str(&d->body, json_string_value(v));
	}
	v = json_object_get(spec, "isEnabled");
	if (v != NULL && !json_is_boolean(v))
		return fault_set(f, MDS_E_INVAL, "isEnabled",
				 "isEnabled must be true or false");
	if (v != NULL)
		d->is_enabled = json_is_true(v);
	rc = get_str(spec, "compartmentId", ALARM_MAX_STR, 1, &s, f);
	if (rc != 0)
		return rc;
	if (json_object_get(spec, "compartmentId") != NULL)
		set_str(&e->compartment_id, s);
	rc = get_str(spec, "metricCompartmentId", ALARM_MAX_STR, 1, &s, f);
	if (rc != 0)
		return rc;
	if (json_object_get(spec, "metricCompartmentId") != NULL)
		set_str(&e->metric_compartment_id, s);
	return 0;
}

/*
 * Applies an alarm spec (a POST or PUT body, or a stored document without
 * its id and times) to e: every given field replaces the old value; when
 * creating, the required fields must be there and the others get their
 * defaults. Returns 0 or the refusal in f; e is then half changed and the
 * caller drops it. *query_changed tells whether query or namespace changed.
 */
static int apply_spec(struct monitoring *m, json_t *spec,
		      struct alarm_entry *e, int creating, int check_topics,
		      int *query_changed, struct fault *f)
{
	struct alarm_def *d = &e->def;
	char diag[512];
	json_t *v;
	int rc;

	*query_changed = creating;
	rc = check_body(spec, alarm_fields, NELEM(alarm_fields), f);
	if (rc != 0)
		return rc;
	if (creating) {
		d->severity = ALARM_INFO;
		d->pending_ms = PENDING_DEFAULT_MS;
		d->message_format = ALARM_FORMAT_ONS_OPTIMIZED;
		d->is_enabled = 1;
		set_str(&d->namespace, MONITORING_NAMESPACE);
	}

	rc = apply_names(spec, e, creating, query_changed, f);
	if (rc == 0)
		rc = apply_query(spec, d, creating, query_changed, f);
	if (rc == 0)
		rc = apply_choices(spec, d, f);
	if (rc == 0)
		rc = apply_durations(spec, d, f);
	v = json_object_get(spec, "destinations");
	if (rc == 0 && v != NULL)
		rc = apply_destinations(m, v, d, check_topics, f);
	if (rc == 0)
		rc = apply_extras(spec, e, f);
	if (rc == 0 && alarm_def_validate(d, diag, sizeof(diag)) != 0)
		rc = fault_set(f, MDS_E_INVAL, "", "%s", diag);
	return rc;
}

/* Writes the alarm to the store. */
static int alarm_persist(struct monitoring *m, const struct alarm_entry *e,
			 struct fault *f)
{
	json_t *o = alarm_json(e);
	char *s = json_dumps(o, JSON_COMPACT);
	int rc;

	rc = store_put(m->env.store, ALARM_KIND, e->def.id, s);
	free(s);
	json_decref(o);
	if (rc != 0)
		return fault_set(f, rc, "", "cannot store the alarm: %s",
				 mds_strerror(rc));
	return 0;
}

static int64_t time_member(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	int64_t ms = 0;

	if (s == NULL || iso8601_time_parse(s, &ms, NULL, 0) != 0)
		return 0;
	return ms;
}

static int load_alarm(void *arg, const char *id, const char *json)
{
	struct monitoring *m = arg;
	struct alarm_entry *e = xcalloc(1, sizeof(*e));
	json_t *doc = json_loads(json, 0, NULL), *spec;
	struct fault f = { 0 };
	int changed;

	alarm_def_init(&e->def);
	if (doc == NULL) {
		fault_set(&f, MDS_E_PARSE, "", "not JSON");
		goto bad;
	}
	spec = json_deep_copy(doc);
	json_object_del(spec, "id");
	json_object_del(spec, "lifecycleState");
	json_object_del(spec, "timeCreated");
	json_object_del(spec, "timeUpdated");
	e->def.id = xstrdup(id);
	if (apply_spec(m, spec, e, 1, 0, &changed, &f) != 0) {
		json_decref(spec);
		goto bad;
	}
	json_decref(spec);
	e->created_ms = time_member(doc, "timeCreated");
	e->updated_ms = time_member(doc, "timeUpdated");
	json_decref(doc);
	e->st = alarm_state_new();
	if (m->nalarms == m->alarms_cap) {
		m->alarms_cap = m->alarms_cap ? m->alarms_cap * 2 : 16;
		m->alarms = xreallocarray(m->alarms, m->alarms_cap,
					  sizeof(*m->alarms));
	}
	m->alarms[m->nalarms++] = e;
	return 0;
bad:
	log_error(SRC, "alarm %s in the store is not valid (%s); ignored", id,
		  f.message);
	json_decref(doc);
	entry_free(e);
	return 0;
}

int monitoring_alarm_create(struct monitoring *m, json_t *spec, json_t **out,
			    struct fault *f)
{
	struct alarm_entry *e;
	char id[ALARM_ID_LEN + 1];
	int changed, rc;

	*out = NULL;
	if (m->nalarms >= MAX_ALARMS)
		return fault_set(f, MDS_E_LIMIT, "",
				 "there are already %d alarms, the most "
				 "mdscale keeps; delete some first",
				 MAX_ALARMS);
	e = xcalloc(1, sizeof(*e));
	alarm_def_init(&e->def);
	ids_new(id, sizeof(id), "alarm-");
	e->def.id = xstrdup(id);
	rc = apply_spec(m, spec, e, 1, 1, &changed, f);
	if (rc != 0)
		goto fail;
	e->created_ms = e->updated_ms = ids_now_ms();
	rc = alarm_persist(m, e, f);
	if (rc != 0)
		goto fail;
	e->st = alarm_state_new();
	if (m->nalarms == m->alarms_cap) {
		m->alarms_cap = m->alarms_cap ? m->alarms_cap * 2 : 16;
		m->alarms = xreallocarray(m->alarms, m->alarms_cap,
					  sizeof(*m->alarms));
	}
	m->alarms[m->nalarms++] = e;
	log_info(SRC, "alarm %s created: '%s' %s", e->def.id,
		 e->def.display_name, e->def.query_text);
	*out = alarm_json(e);
	return 0;
fail:
	entry_free(e);
	return rc;
}

int monitoring_alarm_update(struct monitoring *m, const char *id,
			    json_t *spec, json_t **out, struct fault *f)
{
	struct alarm_entry *e, *draft;
	int changed, rc;

	*out = NULL;
	e = alarm_find_id(m, id, NULL);
	if (e == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "", "no alarm '%s'", id);
	draft = entry_copy(e);
	rc = apply_spec(m, spec, draft, 0, 1, &changed, f);
	if (rc != 0)
		goto out;
	draft->updated_ms = ids_now_ms();
	rc = alarm_persist(m, draft, f);
	if (rc != 0)
		goto out;
	/* The draft becomes the alarm; the state stays unless what it
	 * watches changed. */
	alarm_def_clear(&e->def);
	e->def = draft->def;
	alarm_def_init(&draft->def);
	free(e->compartment_id);
	free(e->metric_compartment_id);
	e->compartment_id = draft->compartment_id;
	e->metric_compartment_id = draft->metric_compartment_id;
	draft->compartment_id = draft->metric_compartment_id = NULL;
	e->updated_ms = draft->updated_ms;
	if (changed) {
		alarm_state_reset(e->st);
		e->triggered_ms = 0;
	}
	log_info(SRC, "alarm %s updated%s", id,
		 changed ? " (its state is reset)" : "");
	*out = alarm_json(e);
out:
	entry_free(draft);
	return rc;
}

int monitoring_alarm_delete(struct monitoring *m, const char *id,
			    struct fault *f)
{
	struct alarm_entry *e;
	size_t i;
	int rc;

	e = alarm_find_id(m, id, &i);
	if (e == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "", "no alarm '%s'", id);
	store_begin(m->env.store);
	rc = store_delete(m->env.store, ALARM_KIND, id);
	if (rc == 0)
		rc = store_event_trim(m->env.store, HISTORY_STREAM, id,
				      INT64_MAX);
	if (rc == 0)
		rc = store_commit(m->env.store);
	if (rc != 0) {
		store_rollback(m->env.store);
		return fault_set(f, rc, "", "cannot delete the alarm: %s",
				 mds_strerror(rc));
	}
	memmove(&m->alarms[i], &m->alarms[i + 1],
		(m->nalarms - i - 1) * sizeof(*m->alarms));
	m->nalarms--;
	log_info(SRC, "alarm %s deleted", id);
	entry_free(e);
	return 0;
}

json_t *monitoring_alarm_get(struct monitoring *m, const char *id,
			     struct fault *f)
{
	struct alarm_entry *e = alarm_find_id(m, id, NULL);

	if (e == NULL) {
		fault_set(f, MDS_E_NOTFOUND, "", "no alarm '%s'", id);
		return NULL;
	}
	return alarm_json(e);
}

json_t *monitoring_alarm_list(struct monitoring *m, const char *display_name)
{
	json_t *items = json_array();

	for (size_t i = 0; i < m->nalarms; i++) {
		const struct alarm_entry *e = m->alarms[i];

		if (display_name == NULL ||
		    strcmp(e->def.display_name, display_name) == 0)
			json_array_append_new(items, alarm_json(e));
	}
	return json_pack("{s:o}", "items", items);
}

void monitoring_alarm_each(struct monitoring *m,
			   void (*fn)(void *arg,
				      const struct monitoring_alarm_summary *s),
			   void *arg)
{
	for (size_t i = 0; i < m->nalarms; i++) {
		const struct alarm_entry *e = m->alarms[i];
		struct monitoring_alarm_summary s = {
			.id = e->def.id,
			.display_name = e->def.display_name,
			.severity = alarm_severity_name(e->def.severity),
			.firing = alarm_state_status(e->st) == ALARM_FIRING,
			.streams_firing = alarm_state_firing(e->st),
		};

		fn(arg, &s);
	}
}

json_t *monitoring_alarm_status(struct monitoring *m, const char *id,
				struct fault *f)
{
	struct alarm_entry *e = alarm_find_id(m, id, NULL);
	const char *key;
	json_t *o, *streams;
	size_t n;

	if (e == NULL) {
		fault_set(f, MDS_E_NOTFOUND, "", "no alarm '%s'", id);
		return NULL;
	}
	key = alarm_state_dedupe_key(e->st);
	n = alarm_state_nstreams(e->st);
	streams = json_array();
	for (size_t i = 0; i < n && i < STATUS_MAX_STREAMS; i++) {
		const struct alarm_stream_status *s = alarm_state_stream(e->st,
									i);

		json_array_append_new(
			streams,
			json_pack("{s:o, s:s, s:o, s:f}", "dimensions",
				  dims_json(s->dims, s->ndims), "status",
				  alarm_status_name(s->status), "since",
				  jsonx_time(s->since_ms), "value", s->value));
	}
	o = json_object();
	json_object_set_new(o, "id", json_string(e->def.id));
	json_object_set_new(o, "displayName",
			    json_string(e->def.display_name));
	json_object_set_new(o, "severity", json_string(alarm_severity_name(
						   e->def.severity)));
	json_object_set_new(o, "isEnabled", json_boolean(e->def.is_enabled));
	json_object_set_new(o, "status", json_string(alarm_status_name(
						 alarm_state_status(e->st))));
	json_object_set_new(o, "timestampTriggered",
			    alarm_state_status(e->st) == ALARM_FIRING
				    ? jsonx_time(e->triggered_ms)
				    : json_null());
	json_object_set_new(o, "dedupeKey",
			    *key != '\0' ? json_string(key) : json_null());
	json_object_set_new(o, "totalMetricsFiring",
			    json_integer((json_int_t)alarm_state_firing(
				    e->st)));
	json_object_set_new(o, "lastEvaluated", jsonx_time(e->evaluated_ms));
	json_object_set_new(o, "streams", streams);
	if (n > STATUS_MAX_STREAMS)
		json_object_set_new(o, "streamsTruncated", json_true());
	return o;
}

static int history_add(void *arg, const char *id, const char *json)
{
	json_t *o = json_loads(json, 0, NULL);

	(void)id;
	if (o != NULL)
		json_array_append_new(arg, o);
	return 0;
}

json_t *monitoring_alarm_history_limit(struct monitoring *m, const char *id,
				       size_t limit, struct fault *f)
{
	json_t *items;
	int rc;

	if (alarm_find_id(m, id, NULL) == NULL) {
		fault_set(f, MDS_E_NOTFOUND, "", "no alarm '%s'", id);
		return NULL;
	}
	if (limit == 0 || limit > HISTORY_MAX_LIMIT) {
		fault_set(f, MDS_E_INVAL, "limit",
			  "limit must be from 1 to %d", HISTORY_MAX_LIMIT);
		return NULL;
	}
	items = json_array();
	rc = store_event_each(m->env.store, HISTORY_STREAM, id, 0, limit,
			      history_add, items);
	if (rc != 0) {
		json_decref(items);
		fault_set(f, rc, "", "cannot read the history: %s",
			  mds_strerror(rc));
		return NULL;
	}
	return json_pack("{s:o}", "items", items);
}

json_t *monitoring_alarm_history(struct monitoring *m, const char *id,
				 struct fault *f)
{
	return monitoring_alarm_history_limit(m, id, HISTORY_DEFAULT_LIMIT, f);
}

int monitoring_alarm_find(struct monitoring *m, const char *display_name,
			  const char *resource_id, char *id, size_t idsz)
{
	for (size_t i = 0; i < m->nalarms; i++) {
		const struct alarm_def *d = &m->alarms[i]->def;
		const char *r = mql_filter_value(d->query, "resourceId");

		if (strcmp(d->display_name, display_name) != 0 || r == NULL ||
		    strcmp(r, resource_id) != 0)
			continue;
		if (strlen(d->id) >= idsz)
			return MDS_E_LIMIT;
		memcpy(id, d->id, strlen(d->id) + 1);
		return 0;
	}
	return MDS_E_NOTFOUND;
}

/* ---- alarms: evaluation ---- */

static void record_push(struct monitoring *m, const char *alarm_id,
			int64_t t, json_t *o)
{
	if (m->nrecs == m->recs_cap) {
		m->recs_cap = m->recs_cap ? m->recs_cap * 2 : 8;
		m->recs = xreallocarray(m->recs, m->recs_cap, sizeof(*m->recs));
	}
	m->recs[m->nrecs++] = (struct record){
		.alarm_id = xstrdup(alarm_id),
		.t_ms = t,
		.json = json_dumps(o, JSON_COMPACT),
	};
}

/* Writes the tick's history records in one transaction. */
static void records_flush(struct monitoring *m)
{
	struct store *st = m->env.store;
	int rc = 0;

	if (m->nrecs == 0)
		return;
	store_begin(st);
	for (size_t i = 0; i < m->nrecs && rc == 0; i++) {
		rc = store_event_add(st, HISTORY_STREAM, m->recs[i].alarm_id,
				     m->recs[i].t_ms, m->recs[i].json);
		if (rc == 0)
			rc = store_event_trim(
				st, HISTORY_STREAM, m->recs[i].alarm_id,
				m->recs[i].t_ms - HISTORY_KEEP_MS);
	}
	if (rc == 0)
		rc = store_commit(st);
	if (rc != 0) {
		store_rollback(st);
		log_error(SRC, "cannot record %zu alarm transitions: %s",
			  m->nrecs, mds_strerror(rc));
	}
	for (size_t i = 0; i < m->nrecs; i++) {
		free(m->recs[i].alarm_id);
		free(m->recs[i].json);
	}
	m->nrecs = 0;
}

static void handle_event(struct monitoring *m, struct alarm_entry *e,
			 const struct alarm_event *ev)
{
	const struct alarm_def *d = &e->def;
	json_t *rec, *streams = json_array(), *deliveries = json_array();
	char *url = xasprintf("%s/v1/alarms/%s", m->api_url, d->id);
	const char *msg = NULL;
	int rc;

	buf_reset(&m->msg);
	rc = alarm_message_json(d, ev, url, &m->msg);
	free(url);
	if (rc == 0)
		msg = buf_str(&m->msg);
	else
		log_error(SRC, "alarm %s: the message is larger than %zu "
			  "bytes; not sent", d->id, MESSAGE_MAX);
	for (size_t i = 0; i < d->ndestinations; i++) {
		const char *topic = d->destinations[i];
		const char *status = "QUEUED", *err = NULL;

		if (msg == NULL) {
			status = "FAILED";
			err = "the message is too large";
		} else if (m->publish == NULL) {
			status = "NOT_SENT";
			err = "no notifications module is running";
		} else {
			rc = m->publish(m->publish_arg, topic, d->id,
					ev->dedupe_key, msg);
			if (rc != 0) {
				status = "FAILED";
				err = mds_strerror(rc);
				log_warn(SRC, "alarm %s: publishing to %s: %s",
					 d->id, topic, err);
			}
		}
		json_array_append_new(deliveries,
				      json_pack("{s:s, s:s, s:o}", "topicId",
						topic, "status", status,
						"error", str_or_null(err)));
	}
	for (size_t i = 0; i < ev->nstreams; i++) {
		const struct alarm_stream *s = &ev->streams[i];

		json_array_append_new(
			streams, json_pack("{s:o, s:f, s:o}", "dimensions",
					   dims_json(s->dims, s->ndims),
					   "value", s->value, "timestamp",
					   jsonx_time(s->t)));
	}
	if (ev->type == ALARM_OK_TO_FIRING)
		e->triggered_ms = ev->t_ms;
	log_info(SRC, "alarm %s '%s': %s (%zu firing)", d->id,
		 d->display_name, alarm_event_type_name(ev->type),
		 ev->total_firing);
	rec = json_object();
	json_object_set_new(rec, "timestamp", jsonx_time(ev->t_ms));
	json_object_set_new(rec, "timestampEpochMillis",
			    json_integer(ev->t_ms));
	json_object_set_new(rec, "type",
			    json_string(alarm_event_type_name(ev->type)));
	json_object_set_new(rec, "status",
			    json_string(alarm_status_name(ev->status)));
	json_object_set_new(rec, "dedupeKey", json_string(ev->dedupe_key));
	json_object_set_new(rec, "totalMetricsFiring",
			    json_integer((json_int_t)ev->total_firing));
	json_object_set_new(rec, "streams", streams);
	json_object_set_new(rec, "message", msg != NULL
						    ? json_loads(msg, 0, NULL)
						    : json_null());
	json_object_set_new(rec, "deliveries", deliveries);
	record_push(m, d->id, ev->t_ms, rec);
	json_decref(rec);
}

static void on_eval(uv_timer_t *t)
{
	struct monitoring *m = t->data;
	int64_t now = ids_now_ms();

	for (size_t i = 0; i < m->nalarms; i++) {
		struct alarm_entry *e = m->alarms[i];
		int rc;

		alarm_events_reset(&m->events);
		rc = alarm_eval(e->st, &e->def, m->db, now, &m->events);
		e->evaluated_ms = now;
		if (rc != 0) {
			log_debug(SRC, "alarm %s: %s", e->def.id,
				  mds_strerror(rc));
			continue;
		}
		for (size_t k = 0; k < m->events.n; k++)
			handle_event(m, e, &m->events.v[k]);
	}
	alarm_events_reset(&m->events);
	records_flush(m);
}

/* ---- posted metrics ---- */

static const char *const item_fields[] = {
	"namespace", "name", "dimensions", "datapoints", "compartmentId",
	"metadata", "resourceGroup",
};

/* A validated metricData item: its dimensions point into the item. */
struct item {
	struct tsdb_dim dims[TSDB_MAX_DIMS];
	size_t ndims;
	int64_t max_t;
	char why[512]; /* "" when valid */
};

/* Reads a timestamp: RFC 3339 text or an integer of ms since the epoch. */
static int read_time(json_t *v, int64_t *out, char *diag, size_t diagsz)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		if (*out < 0 || *out > TSDB_MAX_TIME_MS) {
			mds_diag(diag, diagsz, "out of range");
			return MDS_E_INVAL;
		}
		return 0;
	}
	if (!json_is_string(v)) {
		mds_diag(diag, diagsz, "must be an RFC 3339 time or "
			 "milliseconds since the epoch");
		return MDS_E_INVAL;
	}
	if (iso8601_time_parse(json_string_value(v), out, diag, diagsz) != 0)
		return MDS_E_INVAL;
	if (*out < 0 || *out > TSDB_MAX_TIME_MS) {
		mds_diag(diag, diagsz, "out of range");
		return MDS_E_INVAL;
	}
	return 0;
}

/* Records why an item is refused; returns -1. */
static int bad(struct item *it, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int bad(struct item *it, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(it->why, sizeof(it->why), fmt, ap);
	va_end(ap);
	return -1;
}

/* The item's namespace, name and the fields mdscale ignores. */
static int check_names(json_t *item, struct item *it)
{
	const char *key, *ns, *name, *why;
	json_t *v, *x;

	json_object_foreach(item, key, v) {
		size_t k = 0;

		while (k < NELEM(item_fields) && strcmp(item_fields[k], key))
			k++;
		if (k == NELEM(item_fields))
			return bad(it, "unknown field '%s'", key);
	}
	ns = json_string_value(json_object_get(item, "namespace"));
	if (ns == NULL)
		return bad(it, "namespace is required (a string)");
	why = ns_problem(ns, 0);
	if (why != NULL)
		return bad(it, "namespace %s", why);
	name = json_string_value(json_object_get(item, "name"));
	if (name == NULL)
		return bad(it, "name is required (a string)");
	if (!well_formed(name, is_alpha, name_char))
		return bad(it, "name must be 1 to 255 characters of A-Z, "
			   "a-z, 0-9, '.', '_', '-' and '$', starting with "
			   "a letter");
	v = json_object_get(item, "compartmentId");
	if (v != NULL && !json_is_string(v))
		return bad(it, "compartmentId must be a string");
	v = json_object_get(item, "resourceGroup");
	if (v != NULL && !json_is_string(v))
		return bad(it, "resourceGroup must be a string");
	v = json_object_get(item, "metadata");
	if (v == NULL)
		return 0;
	if (!json_is_object(v) || json_object_size(v) > POST_MAX_METADATA)
		return bad(it, "metadata must be an object of at most %d "
			   "strings", POST_MAX_METADATA);
	json_object_foreach(v, key, x)
		if (!json_is_string(x))
			return bad(it, "metadata.%s must be a string", key);
	return 0;
}

/* The dimensions, into it->dims (pointing into the item). */
static int check_dims(json_t *item, struct item *it)
{
	json_t *dims = json_object_get(item, "dimensions"), *v;
	const char *key;

	if (!json_is_object(dims))
		return bad(it, "dimensions is required (an object of "
			   "strings)");
	if (json_object_size(dims) > TSDB_MAX_DIMS)
		return bad(it, "dimensions: at most %d", TSDB_MAX_DIMS);
	json_object_foreach(dims, key, v) {
		const char *s = json_string_value(v);

		if (!well_formed(key, is_alpha_, name_char))
			return bad(it, "dimensions: the key '%.64s' must be 1 "
				   "to 255 characters of A-Z, a-z, 0-9, '.', "
				   "'_', '-' and '$', starting with a letter "
				   "or '_'", key);
		if (s == NULL || *s == '\0' ||
		    json_string_length(v) > TSDB_MAX_STR ||
		    strlen(s) != json_string_length(v))
			return bad(it, "dimensions.%s must be a string of 1 "
				   "to %d bytes", key, TSDB_MAX_STR);
		it->dims[it->ndims++] = (struct tsdb_dim){ key, s };
	}
	return 0;
}

/* One datapoint: a time in [now - raw window, now + 2 h], a finite
 * value. */
static int check_point(json_t *p, size_t i, int64_t now, int64_t raw_ms,
		       struct item *it)
{
	const char *key;
	char diag[160];
	json_t *v;
	int64_t t;

	if (!json_is_object(p))
		return bad(it, "datapoints[%zu] must be an object", i);
	json_object_foreach(p, key, v)
		if (strcmp(key, "timestamp") != 0 &&
		    strcmp(key, "value") != 0 && strcmp(key, "count") != 0)
			return bad(it, "datapoints[%zu]: unknown field '%s'",
				   i, key);
	v = json_object_get(p, "timestamp");
	if (v == NULL)
		return bad(it, "datapoints[%zu].timestamp is required", i);
	if (read_time(v, &t, diag, sizeof(diag)) != 0)
		return bad(it, "datapoints[%zu].timestamp: %s", i, diag);
	if (t < now - raw_ms)
		return bad(it, "datapoints[%zu].timestamp is more than %lld "
			   "minutes old (the raw retention)", i,
			   (long long)(raw_ms / 60000));
	if (t > now + POST_MAX_FUTURE_MS)
		return bad(it, "datapoints[%zu].timestamp is more than 2 "
			   "hours in the future", i);
	v = json_object_get(p, "value");
	if (!json_is_number(v))
		return bad(it, "datapoints[%zu].value must be a number", i);
	if (!isfinite(json_number_value(v)))
		return bad(it, "datapoints[%zu].value must be finite", i);
	v = json_object_get(p, "count");
	if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 1))
		return bad(it, "datapoints[%zu].count must be a positive "
			   "integer", i);
	if (t > it->max_t)
		it->max_t = t;
	return 0;
}

/* Checks one metricData item; returns 0, or -1 with the reason in
 * it->why. */
static int validate_item(const struct monitoring *m, json_t *item,
			 int64_t now, struct item *it)
{
	const int64_t raw_ms = tsdb_options(m->db)->raw_window_ms;
	json_t *points, *p;
	size_t i;

	it->ndims = 0;
	it->max_t = -1;
	if (!json_is_object(item))
		return bad(it, "a metricData item must be an object");
	if (check_names(item, it) != 0 || check_dims(item, it) != 0)
		return -1;
	points = json_object_get(item, "datapoints");
	if (!json_is_array(points) || json_array_size(points) == 0)
		return bad(it, "datapoints is required (a non-empty array)");
	json_array_foreach(points, i, p)
		if (check_point(p, i, now, raw_ms, it) != 0)
			return -1;
	return 0;
}

/* Appends a validated item; fills it->why if the store refuses it. */
static void store_item(struct monitoring *m, json_t *item, struct item *it)
{
	const int64_t raw_ms = tsdb_options(m->db)->raw_window_ms;
	const char *ns = json_string_value(json_object_get(item, "namespace"));
	const char *name = json_string_value(json_object_get(item, "name"));
	json_t *points = json_object_get(item, "datapoints"), *p;
	struct tsdb_series *s;
	int64_t floor;
	char diag[256];
	size_t i;

	if (tsdb_series_get_or_create(m->db, ns, name, it->dims, it->ndims,
				      &s, diag, sizeof(diag)) != 0) {
		mds_diag(it->why, sizeof(it->why), "%s", diag);
		return;
	}
	/* Check the whole item first, so that it is kept whole or not. */
	floor = (tsdb_series_newest(s) > it->max_t ? tsdb_series_newest(s)
						   : it->max_t) - raw_ms;
	json_array_foreach(points, i, p) {
		int64_t t;

		read_time(json_object_get(p, "timestamp"), &t, NULL, 0);
		if (t < floor) {
			mds_diag(it->why, sizeof(it->why),
				 "datapoints[%zu].timestamp is more than %lld "
				 "minutes before the newest datapoint of "
				 "this series", i,
				 (long long)(raw_ms / 60000));
			return;
		}
	}
	json_array_foreach(points, i, p) {
		int64_t t;

		read_time(json_object_get(p, "timestamp"), &t, NULL, 0);
		if (tsdb_series_append(s, t, json_number_value(json_object_get(
						     p, "value"))) != 0) {
			mds_diag(it->why, sizeof(it->why),
				 "datapoints[%zu] was refused by the store",
				 i);
			return;
		}
	}
}

int monitoring_post(struct monitoring *m, json_t *body, json_t **out,
		    struct fault *f)
{
	json_t *data, *item, *v, *failed;
	static const char *const post_fields[] = { "metricData",
						   "batchAtomicity" };
	struct item *items = NULL;
	size_t i, npoints = 0, nfailed = 0;
	int atomic = 0, rc;
	int64_t now = ids_now_ms();

	*out = NULL;
	rc = check_body(body, post_fields, NELEM(post_fields), f);
	if (rc != 0)
		return rc;
	v = json_object_get(body, "batchAtomicity");
	if (v != NULL) {
		const char *s = json_string_value(v);

		if (s == NULL || (strcmp(s, "ATOMIC") != 0 &&
				  strcmp(s, "NON_ATOMIC") != 0))
			return fault_set(f, MDS_E_INVAL, "batchAtomicity",
					 "batchAtomicity must be ATOMIC or "
					 "NON_ATOMIC");
		atomic = strcmp(s, "ATOMIC") == 0;
	}
	data = json_object_get(body, "metricData");
	if (data == NULL)
		return fault_set(f, MDS_E_INVAL, "metricData",
				 "metricData is required");
	if (!json_is_array(data) || json_array_size(data) == 0)
		return fault_set(f, MDS_E_INVAL, "metricData",
				 "metricData must be a non-empty array");
	if (json_array_size(data) > POST_MAX_ITEMS)
		return fault_set(f, MDS_E_LIMIT, "metricData",
				 "metricData has %zu items; at most %d per "
				 "request", json_array_size(data),
				 POST_MAX_ITEMS);
	json_array_foreach(data, i, item)
		npoints += json_array_size(json_object_get(item, "datapoints"));
	if (npoints > POST_MAX_DATAPOINTS)
		return fault_set(f, MDS_E_LIMIT, "metricData",
				 "the request has %zu datapoints; at most %d "
				 "per request", npoints, POST_MAX_DATAPOINTS);

	items = xcalloc(json_array_size(data), sizeof(*items));
	json_array_foreach(data, i, item)
		if (validate_item(m, item, now, &items[i]) != 0)
			nfailed++;
	if (atomic && nfailed > 0) {
		json_array_foreach(data, i, item)
			if (items[i].why[0] != '\0')
				break;
		fault_set(f, MDS_E_INVAL, "metricData",
			  "metricData[%zu]: %s; nothing was stored "
			  "(batchAtomicity ATOMIC)", i, items[i].why);
		free(items);
		return MDS_E_INVAL;
	}
	failed = json_array();
	nfailed = 0;
	json_array_foreach(data, i, item) {
		if (items[i].why[0] == '\0')
			store_item(m, item, &items[i]);
		if (items[i].why[0] == '\0')
			continue;
		nfailed++;
		json_array_append_new(failed,
				      json_pack("{s:O, s:s}", "metricData",
						item, "message",
						items[i].why));
	}
	free(items);
	*out = json_pack("{s:I, s:o}", "failedMetricsCount",
			 (json_int_t)nfailed, "failedMetrics", failed);
	return 0;
}

/* ---- queries ---- */

static int any_series(const struct tsdb_series *s, void *arg)
{
	(void)s;
	(void)arg;
	return 1;
}

/* Reads a resolution: "1m", "10s", "1h", "1d" or an ISO-8601 duration. */
static int read_resolution(const char *s, int64_t *out)
{
	char *end;
	long long n;

	if (s[0] == 'P')
		return iso8601_duration_parse(s, out, NULL, 0);
	if (s[0] < '0' || s[0] > '9')
		return MDS_E_INVAL;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || n <= 0 || n > 86400 || end[0] == '\0' ||
	    end[1] != '\0')
		return MDS_E_INVAL;
	switch (end[0]) {
	case 's': *out = n * 1000; return 0;
	case 'm': *out = n * 60000; return 0;
	case 'h': *out = n * 3600000; return 0;
	case 'd': *out = n * 86400000; return 0;
	default: return MDS_E_INVAL;
	}
}

static int query_time(json_t *body, const char *key, int64_t *out,
		      struct fault *f)
{
	json_t *v = json_object_get(body, key);
	char diag[160];

	if (v == NULL || json_is_null(v))
		return 0;
	if (read_time(v, out, diag, sizeof(diag)) != 0)
		return fault_set(f, MDS_E_INVAL, key, "%s: %s", key, diag);
	return 0;
}

static const char *const query_fields[] = {
	"query", "namespace", "startTime", "endTime", "resolution",
	"compartmentId",
};

int monitoring_query(struct monitoring *m, json_t *body, json_t **out,
		     struct fault *f)
{
	struct mql_query *q = NULL;
	struct mql_result *r = &m->qres;
	const char *text, *ns = MONITORING_NAMESPACE, *why;
	int64_t end = ids_now_ms(), start, res;
	json_t *v, *items;
	char diag[512];
	int rc;

	*out = NULL;
	rc = check_body(body, query_fields, NELEM(query_fields), f);
	if (rc != 0)
		return rc;
	v = json_object_get(body, "query");
	if (v == NULL)
		return fault_set(f, MDS_E_INVAL, "query", "query is required");
	text = json_string_value(v);
	if (text == NULL)
		return fault_set(f, MDS_E_INVAL, "query",
				 "query must be a string");
	v = json_object_get(body, "namespace");
	if (v != NULL) {
		ns = json_string_value(v);
		if (ns == NULL)
			return fault_set(f, MDS_E_INVAL, "namespace",
					 "namespace must be a string");
		why = ns_problem(ns, 1);
		if (why != NULL)
			return fault_set(f, MDS_E_INVAL, "namespace",
					 "namespace %s", why);
	}
	rc = mql_parse(text, &q, diag, sizeof(diag));
	if (rc != 0)
		return fault_set(f, rc == MDS_E_LIMIT ? rc : MDS_E_INVAL,
				 "query", "query: %s", diag);
	rc = query_time(body, "endTime", &end, f);
	start = end - QUERY_DEFAULT_RANGE_MS;
	if (rc == 0)
		rc = query_time(body, "startTime", &start, f);
	if (rc != 0)
		goto out;
	if (start >= end) {
		rc = fault_set(f, MDS_E_INVAL, "startTime",
			       "startTime must be before endTime");
		goto out;
	}
	res = mql_interval_ms(q) < 60000 ? mql_interval_ms(q) : 60000;
	v = json_object_get(body, "resolution");
	if (v != NULL && (!json_is_string(v) ||
			  read_resolution(json_string_value(v), &res) != 0 ||
			  res < RES_MIN_MS || res > RES_MAX_MS)) {
		rc = fault_set(f, MDS_E_INVAL, "resolution",
			       "resolution must be a duration from 1s to 1d "
			       "such as \"1m\", \"10s\" or \"PT1M\"");
		goto out;
	}
	if ((end - start) / res < 1) {
		rc = fault_set(f, MDS_E_INVAL, "startTime",
			       "the range from startTime to endTime must "
			       "span at least one resolution");
		goto out;
	}
	if ((end - start) / res > QUERY_MAX_STEPS) {
		rc = fault_set(f, MDS_E_LIMIT, "resolution",
			       "the range holds more than %d points of the "
			       "resolution; shorten it or use a coarser "
			       "resolution", QUERY_MAX_STEPS);
		goto out;
	}
	if (tsdb_select(m->db, ns, mql_metric(q), NULL, 0, any_series,
			NULL) == 0) {
		rc = fault_set(f, MDS_E_NOTFOUND, "query",
			       "no metric '%s' in namespace '%s'",
			       mql_metric(q), ns);
		goto out;
	}
	rc = mql_eval_range(q, m->db, ns, start, end, res, r);
	if (rc == 0 && r->nstreams > 0 &&
	    r->nstreams * r->streams[0].npoints > QUERY_MAX_POINTS)
		rc = MDS_E_LIMIT;
	if (rc != 0) {
		rc = fault_set(f, rc, "query",
			       "the result would hold more than %d points; "
			       "narrow the query (filters, a shorter range "
			       "or a coarser resolution)", QUERY_MAX_POINTS);
		goto out;
	}
	items = json_array();
	for (size_t i = 0; i < r->nstreams; i++) {
		const struct mql_stream *s = &r->streams[i];
		json_t *points, *o;

		if (mql_has_condition(q) &&
		    (s->npoints == 0 || !s->points[s->npoints - 1].holds))
			continue;
		points = json_array();
		for (size_t k = 0; k < s->npoints; k++)
			if (s->points[k].present)
				json_array_append_new(
					points,
					json_pack("{s:o, s:f}", "timestamp",
						  jsonx_time(s->points[k].t),
						  "value",
						  s->points[k].value));
		o = json_pack("{s:s, s:s, s:o, s:o}", "namespace", ns, "name",
			      mql_metric(q), "dimensions",
			      dims_json(s->dims, s->ndims),
			      "aggregatedDatapoints", points);
		if (mql_has_condition(q))
			json_object_set_new(o, "conditionMet", json_true());
		json_array_append_new(items, o);
	}
	*out = json_pack("{s:o}", "items", items);
out:
	mql_free(q);
	return rc;
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

/* ---- life cycle ---- */

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
	buf_init(&m->msg, MESSAGE_MAX);
	mql_result_init(&m->qres);
	rc = tsdb_create(NULL, &m->db, diag, diagsz);
	if (rc != 0) {
		free_module(m);
		return rc;
	}
	snap_load(m);
	rc = store_each(env->store, ALARM_KIND, load_alarm, m);
	if (rc != 0) {
		mds_diag(diag, diagsz, "monitoring: cannot load the alarms: %s",
			 mds_strerror(rc));
		free_module(m);
		return rc;
	}
	uv_timer_init(env->loop, &m->sample_timer);
	uv_timer_init(env->loop, &m->eval_timer);
	uv_timer_init(env->loop, &m->snap_timer);
	m->sample_timer.data = m->eval_timer.data = m->snap_timer.data = m;
	uv_timer_start(&m->sample_timer, on_sample, env->sample_ms,
		       env->sample_ms);
	uv_timer_start(&m->eval_timer, on_eval, env->eval_ms, env->eval_ms);
	uv_timer_start(&m->snap_timer, on_snapshot, SNAPSHOT_PERIOD_MS,
		       SNAPSHOT_PERIOD_MS);
	if (env->gateway != NULL)
		gateway_set_observer(env->gateway, on_request, m);
	log_info(SRC, "%zu alarms, %zu metric series; sampling every %u ms, "
		 "evaluating every %u ms", m->nalarms,
		 tsdb_series_count(m->db), env->sample_ms, env->eval_ms);
	*out = m;
	return 0;
}

static void free_module(struct monitoring *m)
{
	for (size_t i = 0; i < m->nalarms; i++)
		entry_free(m->alarms[i]);
	free(m->alarms);
	for (size_t i = 0; i < m->nrecs; i++) {
		free(m->recs[i].alarm_id);
		free(m->recs[i].json);
	}
	free(m->recs);
	alarm_events_free(&m->events);
	mql_result_free(&m->qres);
	buf_free(&m->msg);
	map_free(&m->insts);
	map_free(&m->deps);
	tsdb_free(m->db);
	free(m->data_dir);
	free(m->api_url);
	free(m);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct monitoring *m = h->data;

	if (--m->pending == 0)
		free_module(m);
}

void monitoring_close(struct monitoring *m)
{
	if (m == NULL || m->closing)
		return;
	m->closing = 1;
	if (m->env.gateway != NULL)
		gateway_set_observer(m->env.gateway, NULL, NULL);
	m->pending = 3;
	uv_close((uv_handle_t *)&m->sample_timer, on_timer_closed);
	uv_close((uv_handle_t *)&m->eval_timer, on_timer_closed);
	uv_close((uv_handle_t *)&m->snap_timer, on_timer_closed);
	if (m->save_running) {
		/* The job writes the same files: save after it. */
		m->final_save = 1;
		m->pending++;
	} else {
		save_sync(m);
	}
}
