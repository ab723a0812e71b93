/*
 * metrics.c - OCI Monitoring utilization of model deployments; see
 * metrics.h.
 *
 * A fetch walks the tracked deployments, groups them by compartment and
 * region, and sends one SummarizeMetricsData per metric and group. The
 * answer is a list of {dimensions.resourceId, aggregatedDatapoints[]}; the
 * last datapoint of each becomes the deployment's value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "oci/client.h"
#include "oci/metrics.h"
#include "oci/ocid.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/rfc3339.h"
#include "util/xalloc.h"

#define DEFAULT_PERIOD_MS 60000
#define WINDOW_MS (5 * 60 * 1000)
#define NAMESPACE "oci_datascience_modeldeploy"
/* The query's resourceId alternation stays well under OCI's query limit. */
#define QUERY_MAX (64 * 1024)

struct entry {
	char id[OCID_MAX + 1];
	char compartment[OCID_MAX + 1];
	char region[OCID_REGION_MAX];
	char state[32];
	double cpu, mem;   /* -1: none yet */
	int fetching;      /* part of the fetch in flight */
};

struct fetch {
	struct oci_metrics *m;
	int is_mem;
	struct oci_call *call;
	struct fetch *next;
};

struct oci_metrics {
	uv_loop_t *loop;
	struct oci_client *client;
	char *region;
	char *endpoint;
	uv_timer_t timer;
	struct entry e[OCI_METRICS_MAX];
	size_t n;
	struct fetch *pending;
	uint64_t calls;
	int closing;
	void (*done)(void *arg);
	void *done_arg;
};

static struct entry *find(struct oci_metrics *m, const char *id)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->e[i].id, id) == 0)
			return &m->e[i];
	return NULL;
}

int oci_metrics_track(struct oci_metrics *m, const char *id,
		      const char *compartment, const char *state)
{
	struct entry *e;
	struct ocid o;

	if (!m)
		return 0;
	e = find(m, id);
	if (!e) {
		if (m->n >= OCI_METRICS_MAX)
			return MDS_E_LIMIT;
		e = &m->e[m->n++];
		memset(e, 0, sizeof(*e));
		snprintf(e->id, sizeof(e->id), "%s", id);
		e->cpu = -1;
		e->mem = -1;
		if (ocid_parse(id, &o, NULL, 0) == 0 && o.region[0])
			snprintf(e->region, sizeof(e->region), "%s", o.region);
		else
			snprintf(e->region, sizeof(e->region), "%s",
				 m->region);
	}
	snprintf(e->compartment, sizeof(e->compartment), "%s",
		 compartment ? compartment : "");
	snprintf(e->state, sizeof(e->state), "%s", state ? state : "");
	return 0;
}

void oci_metrics_forget(struct oci_metrics *m, const char *id)
{
	struct entry *e = m ? find(m, id) : NULL;

	if (!e)
		return;
	*e = m->e[--m->n];
}

int oci_metrics_get(struct oci_metrics *m, const char *id, double *cpu,
		    double *mem)
{
	struct entry *e = m ? find(m, id) : NULL;

	if (!e || (e->cpu < 0 && e->mem < 0))
		return MDS_E_NOTFOUND;
	*cpu = e->cpu;
	*mem = e->mem;
	return 0;
}

int oci_metrics_state(struct oci_metrics *m, const char *id, char *out,
		      size_t outsz)
{
	struct entry *e = m ? find(m, id) : NULL;

	if (!e)
		return MDS_E_NOTFOUND;
	snprintf(out, outsz, "%s", e->state);
	return 0;
}

uint64_t oci_metrics_calls(const struct oci_metrics *m)
{
	return m->calls;
}

static void unlink_fetch(struct oci_metrics *m, struct fetch *f)
{
	for (struct fetch **p = &m->pending; *p; p = &(*p)->next) {
		if (*p == f) {
			*p = f->next;
			return;
		}
	}
}

static void metrics_timer_closed(uv_handle_t *h)
{
	struct oci_metrics *m = h->data;
	void (*done)(void *) = m->done;
	void *arg = m->done_arg;

	free(m->region);
	free(m->endpoint);
	free(m);
	if (done)
		done(arg);
}

static void maybe_finish_close(struct oci_metrics *m)
{
	if (m->closing && !m->pending)
		uv_close((uv_handle_t *)&m->timer, metrics_timer_closed);
}

/* Stores the newest datapoint of each series in the answer. */
static void take_answer(struct oci_metrics *m, int is_mem, const char *body,
			size_t len)
{
	json_t *root = json_loadb(body, len, 0, NULL);
	size_t i;
	json_t *series;

	if (!json_is_array(root)) {
		log_warn("oci", "SummarizeMetricsData: the answer is not a "
			 "list");
		json_decref(root);
		return;
	}
	json_array_foreach(root, i, series) {
		json_t *rid = json_object_get(
			json_object_get(series, "dimensions"), "resourceId");
		json_t *pts = json_object_get(series, "aggregatedDatapoints");
		json_t *last = json_array_get(pts, json_array_size(pts) - 1);
		json_t *v = json_object_get(last, "value");
		struct entry *e;

		if (!json_is_string(rid) || !json_is_number(v))
			continue;
		e = find(m, json_string_value(rid));
		if (!e)
			continue;
		if (is_mem)
			e->mem = json_number_value(v);
		else
			e->cpu = json_number_value(v);
	}
	json_decref(root);
}

static void fetch_done(void *arg, const struct oci_response *res)
{
	struct fetch *f = arg;
	struct oci_metrics *m = f->m;

	unlink_fetch(m, f);
	m->calls++;
	if (!res->error && res->status == 200)
		take_answer(m, f->is_mem, res->body, res->body_len);
	else if (res->error != MDS_E_UNAVAIL || !m->closing)
		log_warn("oci", "SummarizeMetricsData: HTTP %ld %s "
			 "(opc-request-id %s)",
			 res->status, res->error ? res->detail : "",
			 res->opc_request_id);
	free(f);
	maybe_finish_close(m);
}

/* The query of one metric over the entries of one group (marked). */
static int group_query(struct oci_metrics *m, const char *metric,
		       struct buf *q)
{
	int rc = buf_printf(q, "%s[1m]{resourceId =~ \"", metric);
	int first = 1;

	for (size_t i = 0; rc == 0 && i < m->n; i++) {
		if (!m->e[i].fetching)
			continue;
		rc = buf_printf(q, "%s%s", first ? "" : "|", m->e[i].id);
		first = 0;
	}
	return rc == 0 ? buf_addstr(q, "\"}.mean()") : rc;
}

static void send_one(struct oci_metrics *m, const struct entry *g, int is_mem)
{
	char start[40], end[40], *base, *url, *body;
	int64_t now = ids_now_ms();
	struct fetch *f;
	struct buf q;
	json_t *doc;
	struct oci_request req = { .method = "POST" };

	buf_init(&q, QUERY_MAX);
	if (group_query(m, is_mem ? "MemoryUtilization" : "CpuUtilization",
			&q) != 0) {
		buf_free(&q);
		return;
	}
	(void)rfc3339_format(now - WINDOW_MS, RFC3339_MILLIS, start,
			     sizeof(start));
	(void)rfc3339_format(now, RFC3339_MILLIS, end, sizeof(end));
	doc = json_pack("{s:s,s:s,s:s,s:s}", "namespace", NAMESPACE, "query",
			buf_str(&q), "startTime", start, "endTime", end);
	body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	buf_free(&q);
	base = oci_endpoint("telemetry", g->region, m->endpoint);
	url = xasprintf("%s/20180401/metrics/actions/summarizeMetricsData"
			"?compartmentId=%s",
			base, g->compartment);
	req.url = url;
	req.body = body;
	req.body_len = strlen(body);
	f = xcalloc(1, sizeof(*f));
	f->m = m;
	f->is_mem = is_mem;
	if (oci_client_send(m->client, &req, fetch_done, f, &f->call) == 0) {
		f->next = m->pending;
		m->pending = f;
	} else {
		free(f);
	}
	free(url);
	free(base);
	free(body);
}

void oci_metrics_fetch(struct oci_metrics *m)
{
	if (m->closing || m->pending)
		return;
	for (size_t i = 0; i < m->n; i++)
		m->e[i].fetching = 0;
	/* Each pass takes the first entry not yet sent and every entry of
	 * its compartment and region. */
	for (size_t i = 0; i < m->n; i++) {
		const struct entry *g = &m->e[i];
		int sent = 0;

		if (!g->compartment[0] || !g->region[0])
			continue;
		for (size_t j = 0; j < i; j++)
			if (strcmp(m->e[j].compartment, g->compartment) == 0 &&
			    strcmp(m->e[j].region, g->region) == 0)
				sent = 1;
		if (sent)
			continue;
		for (size_t j = 0; j < m->n; j++)
			m->e[j].fetching =
				strcmp(m->e[j].compartment, g->compartment) ==
					0 &&
				strcmp(m->e[j].region, g->region) == 0;
		send_one(m, g, 0);
		send_one(m, g, 1);
	}
}

static void tick(uv_timer_t *t)
{
	oci_metrics_fetch(t->data);
}

struct oci_metrics *oci_metrics_new(uv_loop_t *loop, struct oci_client *client,
				    const char *region, const char *endpoint,
				    uint32_t period_ms)
{
	struct oci_metrics *m = xcalloc(1, sizeof(*m));

	m->loop = loop;
	m->client = client;
	m->region = xstrdup(region ? region : "");
	m->endpoint = endpoint ? xstrdup(endpoint) : NULL;
	uv_timer_init(loop, &m->timer);
	m->timer.data = m;
	if (!period_ms)
		period_ms = DEFAULT_PERIOD_MS;
	uv_timer_start(&m->timer, tick, period_ms, period_ms);
	/* The timer alone must not keep a loop alive that has nothing else
	 * to do (tests, a daemon shutting down). */
	uv_unref((uv_handle_t *)&m->timer);
	return m;
}

void oci_metrics_close(struct oci_metrics *m, void (*done)(void *arg),
		       void *arg)
{
	if (!m) {
		if (done)
			done(arg);
		return;
	}
	m->closing = 1;
	m->done = done;
	m->done_arg = arg;
	uv_timer_stop(&m->timer);
	for (struct fetch *f = m->pending; f; f = f->next)
		oci_client_cancel(m->client, f->call);
	maybe_finish_close(m);
}
