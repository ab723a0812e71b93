/*
 * api_metrics.c - GET /metrics: the daemon's figures in the Prometheus text
 * exposition format 0.0.4 (see docs/observability.md).
 *
 * Everything is read on the loop thread from the modules' own views (the
 * deployments' and alarms' JSON, the gateway's counters, the latest samples
 * of monitoring), so one scrape is one consistent snapshot. Every series of
 * a family is written together, after its HELP and TYPE lines, as the
 * format requires. The answer has a hard cap (METRICS_MAX); past it the
 * scrape fails with 500 rather than growing without a bound.
 *
 * As Prometheus users expect: counters only grow (work requests are counted
 * by the deployments module as they end), status codes are the label
 * "code", an instance is "instance_id" (Prometheus sets "instance" on every
 * target itself), and the process is described by the process_* metrics of
 * the client libraries.
 *
 * GET /v1/top gives the figures `mdscale top` shows as one JSON document:
 * per deployment its state, ready/desired instances, the largest CPU and
 * memory sample over its instances and the gateway's raw counters (the
 * client turns two of them into rates and percentiles).
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api/api.h"
#include "api/api_deploy.h"
#include "deploy/deploy.h"
#include "gateway/gateway.h"
#include "daemon/looplag.h"
#include "monitoring/monitoring.h"
#include "notify/notifications.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/version.h"

#define METRICS_MAX (8u * 1024 * 1024)
#define METRICS_CTYPE "text/plain; version=0.0.4; charset=utf-8"
/* How old a CPU or memory sample may be and still be reported. */
#define SAMPLE_WINDOW_MS 120000

struct out {
	struct buf b;
	int rc; /* the first error of an append; 0 while all fit */
};

static void put(struct out *o, const char *s)
{
	if (o->rc == 0)
		o->rc = buf_addstr(&o->b, s);
}

static void family(struct out *o, const char *name, const char *type,
		   const char *help)
{
	if (o->rc == 0)
		o->rc = buf_printf(&o->b, "# HELP %s %s\n# TYPE %s %s\n", name,
				   help, name, type);
}

/* Appends a label value, escaping backslash, double quote and newline as
 * the format says. */
static void put_escaped(struct out *o, const char *v)
{
	while (o->rc == 0 && *v != '\0') {
		size_t n = strcspn(v, "\\\"\n");

		if (n > 0)
			o->rc = buf_add(&o->b, v, n);
		v += n;
		if (*v == '\0')
			break;
		put(o, *v == '\n' ? "\\n" : *v == '"' ? "\\\"" : "\\\\");
		v++;
	}
}

/* Appends a series' name and labels: name{k1="v1",...}. labels is a
 * NULL-ended list of key, value pairs, or NULL. */
static void series(struct out *o, const char *name,
		   const char *const *labels)
{
	put(o, name);
	if (labels == NULL || labels[0] == NULL)
		return;
	put(o, "{");
	for (size_t i = 0; labels[i] != NULL; i += 2) {
		put(o, i ? "," : "");
		put(o, labels[i]);
		put(o, "=\"");
		put_escaped(o, labels[i + 1] ? labels[i + 1] : "");
		put(o, "\"");
	}
	put(o, "}");
}

static void sample(struct out *o, const char *name, const char *const *labels,
		   double value)
{
	char num[64];

	series(o, name, labels);
	snprintf(num, sizeof(num), " %.15g\n", value);
	put(o, num);
}

/* Integers print exactly, whatever their size. */
static void sample_u64(struct out *o, const char *name,
		       const char *const *labels, uint64_t value)
{
	char num[32];

	series(o, name, labels);
	snprintf(num, sizeof(num), " %" PRIu64 "\n", value);
	put(o, num);
}

/* The samples of one histogram: count[b] is bucket b's own count (not
 * cumulative), bounds[b] its upper bound in units of unit seconds, the
 * last bucket (b == n - 1) +Inf; sum in seconds. key and value label
 * every sample (key NULL: none). */
static void histogram(struct out *o, const char *name, const char *key,
		      const char *value, const uint64_t *count,
		      const uint64_t *bounds, size_t n, double unit, double sum)
{
	char full[128], le[32];
	uint64_t cum = 0;
	const char *l[] = { key, value, NULL };
	const char *lb[] = { key ? key : "le", key ? value : le,
			     key ? "le" : NULL, le, NULL };

	snprintf(full, sizeof(full), "%s_bucket", name);
	for (size_t b = 0; b < n; b++) {
		cum += count[b];
		if (b == n - 1)
			snprintf(le, sizeof(le), "+Inf");
		else
			snprintf(le, sizeof(le), "%g", (double)bounds[b] * unit);
		sample_u64(o, full, lb, cum);
	}
	snprintf(full, sizeof(full), "%s_sum", name);
	sample(o, full, key ? l : NULL, sum);
	snprintf(full, sizeof(full), "%s_count", name);
	sample_u64(o, full, key ? l : NULL, cum);
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* ---- deployments, instances and the gateway ---- */

static void deployments(struct out *o, struct api *api, json_t *deps)
{
	size_t i, j;
	json_t *d, *in;

	family(o, "mdscale_deployment_info", "gauge",
	       "A deployment, always 1; its state is a label.");
	json_array_foreach(deps, i, d) {
		const char *l[] = { "deployment", str(d, "id"), "name",
				    str(d, "displayName"), "shape",
				    str(d, "instanceShapeName"),
				    "lifecycle_state", str(d, "lifecycleState"),
				    NULL };

		sample(o, "mdscale_deployment_info", l, 1);
	}
	family(o, "mdscale_deployment_instances", "gauge",
	       "Instances of a deployment: desired (instanceCount) and "
	       "ready.");
	json_array_foreach(deps, i, d) {
		json_t *insts = json_object_get(d, "instances");
		uint64_t ready = 0;
		const char *l[] = { "deployment", str(d, "id"), "name",
				    str(d, "displayName"), "shape",
				    str(d, "instanceShapeName"), "state",
				    "desired", NULL };

		json_array_foreach(insts, j, in)
			ready += strcmp(str(in, "state"), "READY") == 0;
		sample_u64(o, "mdscale_deployment_instances", l,
			   (uint64_t)json_integer_value(
				   json_object_get(d, "instanceCount")));
		l[7] = "ready";
		sample_u64(o, "mdscale_deployment_instances", l, ready);
	}

	static const char *const ratios[][3] = {
		{ "mdscale_instance_cpu_utilization_ratio", "CpuUtilization",
		  "CPU use of an instance over its shape's CPUs, 0..1 (the "
		  "latest sample)." },
		{ "mdscale_instance_memory_utilization_ratio",
		  "MemoryUtilization",
		  "Memory use of an instance over its shape's memory, 0..1 "
		  "(the latest sample)." },
	};
	for (size_t k = 0; k < 2; k++) {
		family(o, ratios[k][0], "gauge", ratios[k][2]);
		if (api->monitoring == NULL)
			continue;
		json_array_foreach(deps, i, d) {
			json_array_foreach(json_object_get(d, "instances"), j,
					   in) {
				const char *l[] = { "deployment",
						    str(d, "id"),
						    "instance_id",
						    str(in, "id"), NULL };
				double v;

				if (monitoring_latest_instance(
					    api->monitoring, ratios[k][1],
					    str(in, "id"), SAMPLE_WINDOW_MS,
					    &v) == 0)
					sample(o, ratios[k][0], l, v / 100.0);
			}
		}
	}
	family(o, "mdscale_instance_restarts_total", "counter",
	       "Times an instance's process was restarted.");
	json_array_foreach(deps, i, d) {
		json_array_foreach(json_object_get(d, "instances"), j, in) {
			const char *l[] = { "deployment", str(d, "id"),
					    "instance_id", str(in, "id"),
					    NULL };

			sample_u64(o, "mdscale_instance_restarts_total", l,
				   (uint64_t)json_integer_value(
					   json_object_get(in, "restarts")));
		}
	}
}

/* Requests by status code: the codes seen so far, and "none" (the client
 * went away before a status) always. */
static void requests_by_code(struct out *o, struct gateway *gw, json_t *deps)
{
	uint64_t by_status[GATEWAY_STATUS_CODES];
	struct gateway_counters k;
	char code[8];
	size_t i;
	json_t *d;

	family(o, "mdscale_gateway_requests_total", "counter",
	       "Requests the gateway finished, by the status code sent (none: "
	       "the client went away before a status).");
	json_array_foreach(deps, i, d) {
		const char *l[] = { "deployment", str(d, "id"), "code", code,
				    NULL };

		if (gw == NULL || gateway_counters(gw, str(d, "id"), &k) != 0 ||
		    gateway_status_counts(gw, str(d, "id"), by_status) != 0)
			continue;
		for (size_t s = 0; s < GATEWAY_STATUS_CODES; s++) {
			if (by_status[s] == 0)
				continue;
			snprintf(code, sizeof(code), "%zu",
				 s + GATEWAY_STATUS_MIN);
			sample_u64(o, "mdscale_gateway_requests_total", l,
				   by_status[s]);
		}
		snprintf(code, sizeof(code), "none");
		sample_u64(o, "mdscale_gateway_requests_total", l,
			   k.by_class[0]);
	}
}

static void gateway(struct out *o, struct gateway *gw, json_t *deps)
{
	struct gateway_counters k;
	size_t i;
	json_t *d;

	requests_by_code(o, gw, deps);
	family(o, "mdscale_gateway_request_duration_seconds", "histogram",
	       "Gateway latency, first byte in to last byte out.");
	json_array_foreach(deps, i, d) {
		if (gw != NULL && gateway_counters(gw, str(d, "id"), &k) == 0)
			histogram(o, "mdscale_gateway_request_duration_seconds",
				  "deployment", str(d, "id"), k.latency_hist,
				  gateway_lat_bounds_us, GATEWAY_LAT_BUCKETS,
				  1e-6, k.latency_us_sum / 1e6);
	}
	family(o, "mdscale_gateway_inflight_requests", "gauge",
	       "Requests the gateway is serving now.");
	json_array_foreach(deps, i, d) {
		const char *l[] = { "deployment", str(d, "id"), NULL };

		if (gw != NULL && gateway_counters(gw, str(d, "id"), &k) == 0)
			sample_u64(o, "mdscale_gateway_inflight_requests", l,
				   k.inflight);
	}
}

/* ---- alarms, deliveries, work requests ---- */

static void alarm_firing(void *arg, const struct monitoring_alarm_summary *a)
{
	const char *l[] = { "alarm", a->id, "name", a->display_name,
			    "severity", a->severity, NULL };

	sample(arg, "mdscale_alarm_firing", l, a->firing);
}

static void alarm_streams(void *arg, const struct monitoring_alarm_summary *a)
{
	const char *l[] = { "alarm", a->id, NULL };

	sample_u64(arg, "mdscale_alarm_streams_firing", l, a->streams_firing);
}

static void alarms(struct out *o, struct monitoring *m)
{
	if (m == NULL)
		return;
	family(o, "mdscale_alarm_firing", "gauge",
	       "1 while an alarm is FIRING, else 0.");
	monitoring_alarm_each(m, alarm_firing, o);
	family(o, "mdscale_alarm_streams_firing", "gauge",
	       "Streams (dimension sets) of an alarm that are FIRING.");
	monitoring_alarm_each(m, alarm_streams, o);
}

struct subs {
	struct out *o;
	int pass; /* 0: totals, 1: pending */
};

static void sub_stats(void *arg, const struct notifications_stats *st)
{
	struct subs *w = arg;
	static const char *const outcomes[3] = { "succeeded", "failed",
						  "retrying" };
	const uint64_t v[3] = { st->succeeded, st->failed, st->retrying };

	if (w->pass == 1) {
		const char *l[] = { "subscription", st->subscription_id,
				    "topic", st->topic_id, NULL };

		sample_u64(w->o, "mdscale_notification_pending_deliveries", l,
			   st->pending);
		return;
	}
	for (size_t k = 0; k < 3; k++) {
		const char *l[] = { "subscription", st->subscription_id,
				    "topic", st->topic_id, "outcome",
				    outcomes[k], NULL };

		sample_u64(w->o, "mdscale_notification_deliveries_total", l,
			   v[k]);
	}
}

static void deliveries(struct out *o, struct notifications *n)
{
	struct subs w = { o, 0 };

	if (n == NULL)
		return;
	family(o, "mdscale_notification_deliveries_total", "counter",
	       "Delivery attempts since the daemon started, by outcome.");
	notifications_each_stats(n, sub_stats, &w);
	w.pass = 1;
	family(o, "mdscale_notification_pending_deliveries", "gauge",
	       "Deliveries queued for a subscription.");
	notifications_each_stats(n, sub_stats, &w);
}

static void wr_ended(void *arg, const char *operation, const char *status,
		     uint64_t n)
{
	const char *l[] = { "operation", operation, "status", status, NULL };

	sample_u64(arg, "mdscale_workrequests_total", l, n);
}

/* Work requests are counted as they end, so the counter only grows (from
 * zero at each start of the daemon, as Prometheus expects of a counter). */
static void workrequests(struct out *o, struct deploy *d)
{
	family(o, "mdscale_workrequests_total", "counter",
	       "Work requests that ended since the daemon started, by "
	       "operation and final status.");
	deploy_each_ended(d, wr_ended, o);
}

/* ---- the process ---- */

/* Writes a family of one unlabelled sample. */
static void process_family(struct out *o, const char *name, const char *type,
			   const char *help, double value)
{
	family(o, name, type, help);
	sample(o, name, NULL, value);
}

/* Counts the open descriptors, or returns -1. */
static double open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	double n = 0;

	if (dir == NULL)
		return -1;
	while ((e = readdir(dir)) != NULL)
		n += e->d_name[0] != '.';
	closedir(dir);
	return n - 1; /* the directory's own descriptor */
}

/* The metrics every Prometheus client library exports about its process,
 * under their usual names, so that dashboards made for them work. */
static void process(struct out *o, struct api *api)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned long size = 0, rss = 0;
	struct rlimit nofile = { 0 }, as = { 0 };
	struct rusage ru;
	double fds = open_fds(), cpu = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f != NULL) {
		if (fscanf(f, "%lu %lu", &size, &rss) != 2)
			size = rss = 0;
		fclose(f);
	}
	if (page <= 0)
		page = 4096;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
		      (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	getrlimit(RLIMIT_NOFILE, &nofile);
	getrlimit(RLIMIT_AS, &as);
	process_family(o, "process_cpu_seconds_total", "counter",
		       "Total user and system CPU time spent in seconds.", cpu);
	if (fds >= 0)
		process_family(o, "process_open_fds", "gauge",
			       "Number of open file descriptors.", fds);
	process_family(o, "process_max_fds", "gauge",
		       "Maximum number of open file descriptors.",
		       (double)nofile.rlim_cur);
	process_family(o, "process_virtual_memory_bytes", "gauge",
		       "Virtual memory size in bytes.", (double)size * page);
	process_family(o, "process_virtual_memory_max_bytes", "gauge",
		       "Maximum amount of virtual memory available in bytes.",
		       (double)as.rlim_cur);
	process_family(o, "process_resident_memory_bytes", "gauge",
		       "Resident memory size in bytes.", (double)rss * page);
	process_family(o, "process_start_time_seconds", "gauge",
		       "Start time of the process since unix epoch in "
		       "seconds.", api->start_time_s);
}

/* What the metrics store costs. */
static void store_figures(struct out *o, struct monitoring *m)
{
	struct monitoring_store_stats st;

	if (m == NULL)
		return;
	monitoring_store_stats(m, &st);
	family(o, "mdscale_metrics_series", "gauge",
	       "Series in the metrics store.");
	sample(o, "mdscale_metrics_series", NULL, (double)st.series);
	family(o, "mdscale_metrics_store_bytes", "gauge",
	       "Memory the metrics store holds, interned strings included.");
	sample(o, "mdscale_metrics_store_bytes", NULL,
	       (double)st.memory_bytes);
	family(o, "mdscale_metrics_string_bytes", "gauge",
	       "Interned namespaces, names and dimension keys and values.");
	sample(o, "mdscale_metrics_string_bytes", NULL,
	       (double)st.string_bytes);
	family(o, "mdscale_metrics_bytes_per_series", "gauge",
	       "The store's memory divided by its series (0 when empty).");
	sample(o, "mdscale_metrics_bytes_per_series", NULL,
	       st.series ? (double)st.memory_bytes / (double)st.series : 0);
	family(o, "mdscale_metrics_max_series", "gauge",
	       "Series posted metrics may fill the store to "
	       "(metricsMaxSeries).");
	sample(o, "mdscale_metrics_max_series", NULL, (double)st.max_series);
	family(o, "mdscale_metrics_max_string_bytes", "gauge",
	       "Interned string bytes posted metrics may fill the store to "
	       "(metricsMaxStringMB).");
	sample(o, "mdscale_metrics_max_string_bytes", NULL,
	       (double)st.max_string_bytes);
	family(o, "mdscale_metrics_log_bytes", "gauge",
	       "Size of the metrics log on disk (DATA/metrics.log).");
	sample(o, "mdscale_metrics_log_bytes", NULL, (double)st.log_bytes);
	family(o, "mdscale_metrics_loading", "gauge",
	       "1 while the metrics log is being read at start, then 0.");
	sample(o, "mdscale_metrics_loading", NULL, st.loading);
	family(o, "mdscale_metrics_load_seconds", "gauge",
	       "How long reading the metrics log at start took.");
	sample(o, "mdscale_metrics_load_seconds", NULL, st.load_ns / 1e9);
}

/* Every turn of the loop by its CPU time: how often it stalled, not only
 * its worst. */
static void loop_turns(struct out *o, const struct looplag *lag)
{
	struct looplag_turns t;

	looplag_turns(lag, &t);
	family(o, "mdscale_event_loop_turn_cpu_seconds", "histogram",
	       "CPU time of each loop turn.");
	histogram(o, "mdscale_event_loop_turn_cpu_seconds", NULL, NULL,
		  t.count, looplag_turn_bounds_ns, LOOPLAG_TURN_BUCKETS, 1e-9,
		  t.sum_ns / 1e9);
}

/* The daemon's own figures beside the process ones. */
static void daemon_figures(struct out *o, struct api *api)
{
	const char *v[] = { "version", MDS_VERSION, NULL };
	uint64_t last_ns, max_ns;

	looplag_get(api->looplag, &last_ns, &max_ns);
	family(o, "mdscale_event_loop_lag_seconds", "gauge",
	       "How late the last 100 ms loop timer fired.");
	sample(o, "mdscale_event_loop_lag_seconds", NULL, last_ns / 1e9);
	family(o, "mdscale_event_loop_lag_max_seconds", "gauge",
	       "The largest loop lag since the daemon started.");
	sample(o, "mdscale_event_loop_lag_max_seconds", NULL, max_ns / 1e9);
	family(o, "mdscale_event_loop_turn_cpu_max_seconds", "gauge",
	       "The largest CPU time one loop turn took since the daemon "
	       "started (lag without the waits for a CPU).");
	sample(o, "mdscale_event_loop_turn_cpu_max_seconds", NULL,
	       looplag_turn_cpu_max(api->looplag) / 1e9);
	loop_turns(o, api->looplag);
	family(o, "mdscale_build_info", "gauge",
	       "The daemon's version, always 1.");
	sample(o, "mdscale_build_info", v, 1);
}

static void metrics(struct api_call *c)
{
	struct api *api = c->api;
	struct out o = { .rc = 0 };
	json_t *list = NULL, *deps;

	buf_init(&o.b, METRICS_MAX);
	if (api->deploy != NULL)
		list = api_deploy_list_json(api->deploy, NULL);
	deps = json_object_get(list, "items");
	deployments(&o, api, deps);
	gateway(&o, api->gateway, deps);
	alarms(&o, api->monitoring);
	store_figures(&o, api->monitoring);
	deliveries(&o, api->notifications);
	if (api->deploy != NULL)
		workrequests(&o, api->deploy);
	process(&o, api);
	daemon_figures(&o, api);
	json_decref(list);
	if (o.rc != 0)
		api_reply_error(c, 500, "InternalServerError", NULL,
				"the metrics do not fit in the answer's cap");
	else
		http_respond(c->req, 200, METRICS_CTYPE, buf_str(&o.b),
			     o.b.len, NULL);
	buf_free(&o.b);
}

/* ---- GET /v1/top: the same figures as JSON, for `mdscale top` ---- */

/* The latest sample of metric for one instance, as a JSON number, or
 * null; the largest so far goes to *max. */
static json_t *top_latest(struct api *api, const char *metric,
			  const char *instance_id, double *max)
{
	double v;

	if (api->monitoring == NULL ||
	    monitoring_latest_instance(api->monitoring, metric, instance_id,
				       SAMPLE_WINDOW_MS, &v) != 0)
		return json_null();
	if (v > *max)
		*max = v;
	return json_real(v);
}

static json_t *top_deployment(struct api *api, json_t *d)
{
	json_t *o, *hist = json_array(), *in, *insts = json_array();
	struct gateway_counters k = { 0 };
	double cpu = -1, mem = -1;
	int64_t ready = 0;
	size_t j;

	json_array_foreach(json_object_get(d, "instances"), j, in) {
		ready += strcmp(str(in, "state"), "READY") == 0;
		json_array_append_new(insts, json_pack(
			"{s:s, s:s, s:I, s:o, s:o}", "id", str(in, "id"),
			"state", str(in, "state"), "restarts",
			json_integer_value(json_object_get(in, "restarts")),
			"cpuPercent",
			top_latest(api, "CpuUtilization", str(in, "id"), &cpu),
			"memoryPercent",
			top_latest(api, "MemoryUtilization", str(in, "id"),
				   &mem)));
	}
	if (api->gateway != NULL)
		gateway_counters(api->gateway, str(d, "id"), &k);
	for (size_t b = 0; b < GATEWAY_LAT_BUCKETS; b++)
		json_array_append_new(hist,
				      json_integer((json_int_t)k.latency_hist[b]));
	o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:O, s:I, s:I, s:I, s:o}",
		      "id", str(d, "id"), "displayName", str(d, "displayName"),
		      "lifecycleState", str(d, "lifecycleState"),
		      "instanceShapeName", str(d, "instanceShapeName"),
		      "ready", (json_int_t)ready, "instanceCount",
		      json_object_get(d, "instanceCount"), "requests",
		      (json_int_t)k.requests, "errors5xx",
		      (json_int_t)k.by_class[5], "inflight",
		      (json_int_t)k.inflight, "latencyHistogram", hist);
	json_object_set_new(o, "cpuPercent",
			    cpu >= 0 ? json_real(cpu) : json_null());
	json_object_set_new(o, "memoryPercent",
			    mem >= 0 ? json_real(mem) : json_null());
	json_object_set_new(o, "instances", insts);
	return o;
}

static void top_firing(void *arg, const struct monitoring_alarm_summary *a)
{
	if (a->firing)
		json_array_append_new(arg, json_pack("{s:s, s:s, s:s}", "id",
						     a->id, "displayName",
						     a->display_name,
						     "severity", a->severity));
}

static void top(struct api_call *c)
{
	struct api *api = c->api;
	json_t *o, *list = NULL, *deps = json_array(), *bounds = json_array();
	json_t *firing = json_array(), *d;
	uint64_t last_ns, max_ns;
	size_t i;

	for (size_t b = 0; b + 1 < GATEWAY_LAT_BUCKETS; b++)
		json_array_append_new(bounds,
				      json_real(gateway_lat_bounds_us[b] / 1e6));
	if (api->deploy != NULL)
		list = api_deploy_list_json(api->deploy, NULL);
	json_array_foreach(json_object_get(list, "items"), i, d)
		json_array_append_new(deps, top_deployment(api, d));
	json_decref(list);
	if (api->monitoring != NULL)
		monitoring_alarm_each(api->monitoring, top_firing, firing);
	looplag_get(api->looplag, &last_ns, &max_ns);
	o = json_pack("{s:s, s:s, s:f, s:f, s:o, s:o, s:o}", "status",
		      api->monitoring != NULL ? "ok" : "stopping", "version",
		      MDS_VERSION, "startTimeSeconds", api->start_time_s,
		      "loopLagSeconds", last_ns / 1e9, "latencyBoundsSeconds",
		      bounds, "deployments", deps, "firingAlarms", firing);
	api_reply(c, 200, o, NULL);
}

const struct api_route metrics_routes[] = {
	{ "GET", "/metrics", metrics },
	{ "GET", "/v1/top", top },
	{ NULL, NULL, NULL },
};
