/*
 * query.c - queries (POST /v1/metrics/query), evaluated across turns of
 * the loop: a query over 100,000 series takes tens of milliseconds, and in
 * one turn it would hold every other client and the gateway's metrics for
 * that long. Each turn, the queries under way are worked on in turn for
 * about QUERY_SLICE_NS in all (core/mql.h's mql_job); the result is the
 * one a single evaluation gives.
 */
#include <stdlib.h>
#include <string.h>

#include "monitoring/module.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/turn.h"
#include "util/xalloc.h"

#define QUERY_DEFAULT_RANGE_MS (3600LL * 1000)
#define QUERY_MAX_STEPS 100000
#define QUERY_MAX_POINTS 200000
/* OCI's limit on the metric streams one SummarizeMetricsData returns. */
#define QUERY_MAX_STREAMS 2000
#define RES_MIN_MS 1000LL
#define RES_MAX_MS 86400000LL

/* The queries' share of a turn, as the alarms' (alarms.c), and the work
 * between two looks at the clock: a few hundred series read for a step,
 * well under a millisecond even with 16 dimensions of 255 bytes. */
#define QUERY_SLICE_NS (2 * 1000 * 1000)
#define QUERY_PART_UNITS 256
/* The series given between two looks at the clock: a series of 16
 * dimensions of 255 bytes is a 4.3 KB answer, 2,000 of them a third of a
 * second to write. */
#define QUERY_PART_SERIES 8

struct monitoring_query_job {
	struct monitoring *m;
	struct mql_query *mq;
	char ns[TSDB_MAX_STR + 1];
	struct mql_job *job;
	monitoring_query_live_fn *live;
	monitoring_series_fn *series;
	monitoring_query_done_fn *done;
	void *arg;
	int rc;      /* the evaluation's, once done */
	int over;    /* past QUERY_MAX_STREAMS */
	int writing; /* evaluated: giving the series, next is the next */
	size_t next;
	int closed; /* ended before it was done */
	const char *why; /* why, then */
};

/* The range and resolution of q, checked. */
static int query_range(const struct monitoring_query *q,
		       const struct mql_query *mq, int64_t *start,
		       int64_t *end, int64_t *res, struct fault *f)
{
	*end = q->has_end ? q->end_ms : ids_now_ms();
	*start = q->has_start ? q->start_ms : *end - QUERY_DEFAULT_RANGE_MS;
	if (*start >= *end)
		return fault_set(f, MDS_E_INVAL, "startTime",
				 "startTime must be before endTime");
	*res = mql_interval_ms(mq) < 60000 ? mql_interval_ms(mq) : 60000;
	if (q->resolution_ms != 0)
		*res = q->resolution_ms;
	if (*res < RES_MIN_MS || *res > RES_MAX_MS)
		return fault_set(f, MDS_E_INVAL, "resolution",
				 "resolution must be a duration from 1s to 1d "
				 "such as \"1m\", \"10s\" or \"PT1M\"");
	if ((*end - *start) / *res < 1)
		return fault_set(f, MDS_E_INVAL, "startTime",
				 "the range from startTime to endTime must "
				 "span at least one resolution");
	if ((*end - *start) / *res > QUERY_MAX_STEPS)
		return fault_set(f, MDS_E_LIMIT, "resolution",
				 "the range holds more than %d points of the "
				 "resolution; shorten it or use a coarser "
				 "resolution", QUERY_MAX_STEPS);
	return 0;
}

/* Whether the stream s of a result is returned: with a condition, only
 * where it holds at the last step. */
static bool returned(const struct mql_query *mq, const struct mql_stream *s)
{
	return !mql_has_condition(mq) ||
	       (s->npoints > 0 && s->points[s->npoints - 1].holds);
}

static void job_free(struct monitoring_query_job *j)
{
	mql_job_free(j->job);
	mql_free(j->mq);
	free(j);
}

/* Takes j off the list of queries under way. */
static void unlist(struct monitoring_query_job *j)
{
	struct monitoring *m = j->m;

	for (size_t i = 0; i < m->nqueries; i++) {
		if (m->queries[i] != j)
			continue;
		memmove(&m->queries[i], &m->queries[i + 1],
			(m->nqueries - i - 1) * sizeof(m->queries[0]));
		m->nqueries--;
		if (m->query_next > i)
			m->query_next--;
		break;
	}
	if (m->nqueries == 0 && !m->closing)
		uv_idle_stop(&m->query_idle);
}

/* Ends j: tells its caller, then frees it. */
static void finish(struct monitoring_query_job *j)
{
	unlist(j);
	j->done(j->arg, j);
	job_free(j);
}

/* The evaluation is over: checks the result's size. Returns 0 to give
 * its series, or the code that ends the query. */
static int check_result(struct monitoring_query_job *j)
{
	const struct mql_result *r = mql_job_result(j->job, &j->over);

	if (j->rc == 0 && !j->over && r->nstreams > 0 &&
	    r->nstreams * r->streams[0].npoints > QUERY_MAX_POINTS)
		j->rc = MDS_E_LIMIT;
	return j->over ? MDS_E_LIMIT : j->rc;
}

/* Gives the next few series of the result. Returns 1 once all are. */
static int give_series(struct monitoring_query_job *j)
{
	const struct mql_result *r = mql_job_result(j->job, NULL);
	size_t end = j->next + QUERY_PART_SERIES;

	for (; j->next < r->nstreams && j->next < end; j->next++) {
		const struct mql_stream *s = &r->streams[j->next];
		struct monitoring_series v = {
			.namespace = j->ns, .name = mql_metric(j->mq),
			.dims = s->dims, .ndims = s->ndims,
			.points = s->points, .npoints = s->npoints,
			.condition_met = mql_has_condition(j->mq),
		};

		if (returned(j->mq, s))
			j->series(j->arg, &v);
	}
	return j->next == r->nstreams;
}

/* A part of j's work. Returns 1 once it is over. */
static int work(struct monitoring_query_job *j)
{
	int done = 0;

	if (j->writing)
		return give_series(j);
	j->rc = mql_job_run(j->job, QUERY_PART_UNITS, &done);
	if (!done)
		return 0;
	if (check_result(j) != 0)
		return 1;
	j->writing = 1;
	return 0;
}

/* A turn's share of work: the queries under way, a part each in turn,
 * until the slice is over. */
static void on_idle(uv_idle_t *h)
{
	struct monitoring *m = h->data;
	/* QUERY_SLICE_NS, or less when the turn has spent its budget. */
	uint64_t end = uv_hrtime() + turn_slice_ns(QUERY_SLICE_NS);

	for (size_t i = 0; i < m->nqueries;) {
		struct monitoring_query_job *j = m->queries[i];

		if (j->live == NULL || j->live(j->arg)) {
			i++;
			continue;
		}
		j->closed = 1;
		j->why = "the request was ended before its answer";
		finish(j);
	}
	while (m->nqueries > 0 && uv_hrtime() < end) {
		struct monitoring_query_job *j;

		if (m->query_next >= m->nqueries)
			m->query_next = 0;
		j = m->queries[m->query_next];
		if (work(j))
			finish(j);
		else
			m->query_next++;
	}
}

void query_open(struct monitoring *m)
{
	uv_idle_init(m->env.loop, &m->query_idle);
	m->query_idle.data = m;
}

static void on_idle_closed(uv_handle_t *h)
{
	struct monitoring *m = h->data;

	if (--m->pending == 0)
		monitoring_free(m);
}

void query_close(struct monitoring *m)
{
	while (m->nqueries > 0) {
		m->queries[0]->closed = 1;
		m->queries[0]->why = "monitoring is not running (the daemon "
				     "is stopping)";
		finish(m->queries[0]);
	}
	m->pending++;
	uv_close((uv_handle_t *)&m->query_idle, on_idle_closed);
}

int monitoring_query_start(struct monitoring *m,
			   const struct monitoring_query *q,
			   monitoring_query_live_fn *live,
			   monitoring_series_fn *series,
			   monitoring_query_done_fn *done, void *arg,
			   struct monitoring_query_job **out, struct fault *f)
{
	const char *ns = q->namespace ? q->namespace : MONITORING_NAMESPACE;
	struct monitoring_query_job *j;
	int64_t start = 0, end = 0, res = 0;
	const char *why;
	char diag[512];
	int rc;

	if (metrics_loading(m))
		return metrics_loading_fault(m, f);
	if (m->closing || m->nqueries == MONITORING_QUERIES_MAX)
		return fault_set(f, MDS_E_UNAVAIL, "", "%d queries are under "
				 "way; try again shortly",
				 MONITORING_QUERIES_MAX);
	why = monitoring_ns_problem(ns, 1);
	if (why != NULL)
		return fault_set(f, MDS_E_INVAL, "namespace", "namespace %s",
				 why);
	j = xcalloc(1, sizeof(*j));
	j->m = m;
	j->live = live;
	j->series = series;
	j->done = done;
	j->arg = arg;
	memcpy(j->ns, ns, strlen(ns) + 1); /* checked: at most 255 bytes */
	rc = mql_parse(q->query, &j->mq, diag, sizeof(diag));
	if (rc != 0) {
		rc = fault_set(f, rc == MDS_E_LIMIT ? rc : MDS_E_INVAL,
			       "query", "query: %s", diag);
		goto fail;
	}
	rc = query_range(q, j->mq, &start, &end, &res, f);
	if (rc != 0)
		goto fail;
	/* More streams than OCI returns are refused as soon as they are
	 * counted, before the rest of the series are evaluated. */
	rc = mql_job_start(j->mq, m->db, j->ns, start, end, res,
			   QUERY_MAX_STREAMS, &j->job);
	if (rc == MDS_E_INVAL) {
		rc = fault_set(f, rc, "startTime", "startTime and endTime "
			       "must lie from 1970 to 9999");
		goto fail;
	}
	if (rc != 0) {
		rc = fault_set(f, rc, "query", "the result would hold more "
			       "than %d points; narrow the query (filters, a "
			       "shorter range or a coarser resolution)",
			       QUERY_MAX_POINTS);
		goto fail;
	}
	if (m->nqueries == 0)
		uv_idle_start(&m->query_idle, on_idle);
	m->queries[m->nqueries++] = j;
	*out = j;
	return 0;
fail:
	job_free(j);
	return rc;
}

int monitoring_query_result(struct monitoring_query_job *j,
			    struct fault *f)
{
	if (j->closed)
		return fault_set(f, MDS_E_UNAVAIL, "", "%s", j->why);
	if (j->over)
		return fault_set(f, MDS_E_LIMIT, "query",
				 "the result would hold more than %d metric "
				 "streams; narrow the query with a dimension "
				 "filter or aggregate it with grouping() or "
				 "groupBy()", QUERY_MAX_STREAMS);
	if (j->rc != 0)
		return fault_set(f, j->rc, "query",
				 "the result would hold more than %d points; "
				 "narrow the query (filters, a shorter range "
				 "or a coarser resolution)", QUERY_MAX_POINTS);
	return 0;
}

void monitoring_query_cancel(struct monitoring_query_job *j)
{
	if (j == NULL)
		return;
	unlist(j);
	job_free(j);
}
