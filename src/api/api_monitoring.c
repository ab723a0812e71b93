/*
 * api_monitoring.c - the REST routes of metrics, queries and alarms (see
 * docs/api.md and docs/monitoring.md): the JSON edge of the monitoring
 * module. Bodies are read here into the module's C structs (through field
 * tables, api/fields.h; alarms through api/alarm_json.h) and its answers
 * are written back as JSON; the module checks what needs its state.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/alarm_json.h"
#include "api/api.h"
#include "api/api_bodies.h"
#include "api/api_tokens.h"
#include "api/api_watch.h"
#include "api/fields.h"
#include "api/jsonx.h"
#include "core/iso8601.h"
#include "monitoring/monitoring.h"
#include "util/err.h"
#include "util/xalloc.h"

#define POST_MAX_METADATA 10

/* Answers 503 while the module is not (or no longer) running. */
static struct monitoring *module(struct api_call *c)
{
	if (c->api->monitoring == NULL)
		api_reply_error(c, 503, "ServiceUnavailable", NULL,
				"monitoring is not running (the daemon is "
				"starting or stopping)");
	return c->api->monitoring;
}

/* ---- values the tables read through custom parsers ---- */

/* A time: RFC 3339 text or an integer of ms since the epoch, into an
 * int64_t; it must lie in the store's range. */
static int parse_time(const json_t *v, void *dst, const struct field *fd,
		      const char *path, struct fault *f)
{
	char diag[160] = "out of range";
	int64_t t = -1;

	(void)fd;
	if (json_is_integer(v))
		t = json_integer_value(v);
	else if (!json_is_string(v))
		return fields_fault_type(f, path, "an RFC 3339 time or "
					 "milliseconds since the epoch");
	else if (iso8601_time_parse(json_string_value(v), &t, diag,
				    sizeof(diag)) != 0)
		t = -1;
	if (t < 0 || t > TSDB_MAX_TIME_MS)
		return fault_set(f, MDS_E_INVAL, path, "%s: %s", path, diag);
	memcpy(dst, &t, sizeof(t));
	return 0;
}

/* Any string, kept nowhere (fields mdscale takes and ignores). */
static int parse_ignored_string(const json_t *v, void *dst,
				const struct field *fd, const char *path,
				struct fault *f)
{
	(void)dst;
	(void)fd;
	if (!json_is_string(v))
		return fields_fault_type(f, path, "a string");
	return 0;
}

/* ---- POST /v1/metrics ---- */

/* What the table reads of one datapoint. */
struct point_json {
	int64_t t_ms;
	double value;
	int64_t count;
};

/* What the table reads of one metricData item. */
struct item_json {
	char namespace[TSDB_MAX_STR + 1];
	char name[TSDB_MAX_STR + 1];
	struct monitoring_item *it; /* where the dimensions go */
	struct point_json *points;
	size_t npoints;
};

/* The dimensions: an object of strings, borrowed into the item. */
static int parse_dims(const json_t *v, void *dst, const struct field *fd,
		      const char *path, struct fault *f)
{
	struct monitoring_item *it = *(struct monitoring_item **)dst;
	const char *key;
	json_t *x;

	(void)fd;
	if (!json_is_object(v))
		return fields_fault_type(f, path, "an object of strings");
	if (json_object_size(v) > TSDB_MAX_DIMS)
		return fault_set(f, MDS_E_INVAL, path, "%s: at most %d", path,
				 TSDB_MAX_DIMS);
	json_object_foreach((json_t *)v, key, x) {
		const char *s = json_string_value(x);

		if (s == NULL || *s == '\0' ||
		    json_string_length(x) > TSDB_MAX_STR ||
		    strlen(s) != json_string_length(x))
			return fault_set(f, MDS_E_INVAL, path,
					 "%s.%s must be a string of 1 to %d "
					 "bytes", path, key, TSDB_MAX_STR);
		it->dims[it->ndims++] = (struct tsdb_dim){ key, s };
	}
	return 0;
}

/*
 * resourceGroup: kept as the item's dimension "resourceGroup", which an
 * alarm's resourceGroup filters on. Read after the dimensions (table
 * order); one named so already must agree.
 */
static int parse_resource_group(const json_t *v, void *dst,
				const struct field *fd, const char *path,
				struct fault *f)
{
	struct monitoring_item *it = *(struct monitoring_item **)dst;
	const char *s = json_string_value(v);

	(void)fd;
	if (s == NULL || *s == '\0' || json_string_length(v) > TSDB_MAX_STR ||
	    strlen(s) != json_string_length(v))
		return fault_set(f, MDS_E_INVAL, path, "%s must be a string "
				 "of 1 to %d bytes", path, TSDB_MAX_STR);
	for (size_t i = 0; i < it->ndims; i++) {
		if (strcmp(it->dims[i].key, "resourceGroup") != 0)
			continue;
		if (strcmp(it->dims[i].value, s) == 0)
			return 0;
		return fault_set(f, MDS_E_INVAL, path, "%s '%s' disagrees "
				 "with dimensions.resourceGroup '%s'", path, s,
				 it->dims[i].value);
	}
	if (it->ndims == TSDB_MAX_DIMS)
		return fault_set(f, MDS_E_INVAL, path, "%s: no room for it "
				 "beside %d dimensions", path, TSDB_MAX_DIMS);
	it->dims[it->ndims++] = (struct tsdb_dim){ "resourceGroup", s };
	return 0;
}

/* metadata: an object of at most POST_MAX_METADATA strings, ignored. */
static int parse_metadata(const json_t *v, void *dst, const struct field *fd,
			  const char *path, struct fault *f)
{
	const char *key;
	json_t *x;

	(void)dst;
	(void)fd;
	if (!json_is_object(v) || json_object_size(v) > POST_MAX_METADATA)
		return fault_set(f, MDS_E_INVAL, path, "%s must be an object "
				 "of at most %d strings", path,
				 POST_MAX_METADATA);
	json_object_foreach((json_t *)v, key, x)
		if (!json_is_string(x))
			return fields_fault_type(f, path, "an object of "
						 "strings");
	return 0;
}

static const struct field point_fields[] = {
	{ .name = "timestamp", .type = FIELD_CUSTOM,
	  FIELD_AT(struct point_json, t_ms), .parse = parse_time,
	  .required = true, .doc = "RFC 3339, or ms since the epoch" },
	{ .name = "value", .type = FIELD_NUMBER,
	  FIELD_AT(struct point_json, value), .required = true,
	  .doc = "the value" },
	{ .name = "count", .type = FIELD_INTEGER,
	  FIELD_AT(struct point_json, count), .min = 1, .max = 1e15,
	  .doc = "how many samples the value stands for (ignored)" },
	FIELD_END
};

static const struct field point_field = {
	.name = "", .type = FIELD_OBJECT, .table = point_fields,
};

static const struct field item_fields[] = {
	{ .name = "namespace", .type = FIELD_STRING,
	  FIELD_AT(struct item_json, namespace), .required = true,
	  .doc = "[a-z][a-z0-9_]*; oci_ only for " MONITORING_NAMESPACE },
	{ .name = "name", .type = FIELD_STRING,
	  FIELD_AT(struct item_json, name), .required = true,
	  .doc = "the metric's name" },
	{ .name = "dimensions", .type = FIELD_CUSTOM,
	  FIELD_AT(struct item_json, it), .parse = parse_dims,
	  .required = true, .doc = "an object of strings, at most 16" },
	{ .name = "datapoints", .type = FIELD_ARRAY,
	  FIELD_AT(struct item_json, points), .elem = &point_field,
	  .elem_size = sizeof(struct point_json),
	  .count_offset = offsetof(struct item_json, npoints),
	  .required = true, .doc = "{timestamp, value, count?} objects" },
	{ .name = "compartmentId", .type = FIELD_CUSTOM,
	  .parse = parse_ignored_string, .doc = "ignored" },
	{ .name = "metadata", .type = FIELD_CUSTOM, .parse = parse_metadata,
	  .doc = "at most 10 strings, ignored" },
	{ .name = "resourceGroup", .type = FIELD_CUSTOM,
	  FIELD_AT(struct item_json, it), .parse = parse_resource_group,
	  .doc = "kept as the dimension resourceGroup" },
	FIELD_END
};

/* The body: metricData is read item by item, so that a bad item is
 * refused alone. */
struct post_json {
	const json_t *data;
	int atomicity;
};

static int parse_borrow_array(const json_t *v, void *dst,
			      const struct field *fd, const char *path,
			      struct fault *f)
{
	(void)fd;
	if (!json_is_array(v))
		return fields_fault_type(f, path, "an array");
	memcpy(dst, &v, sizeof(v));
	return 0;
}

static const char *const atomicities[] = { "NON_ATOMIC", "ATOMIC", NULL };

static const struct field post_fields[] = {
	{ .name = "metricData", .type = FIELD_CUSTOM,
	  FIELD_AT(struct post_json, data), .parse = parse_borrow_array,
	  .required = true, .doc = "the items, 1 to 50" },
	{ .name = "batchAtomicity", .type = FIELD_ENUM,
	  FIELD_AT(struct post_json, atomicity), .choices = atomicities,
	  .doc = "ATOMIC: one bad item refuses the batch" },
	FIELD_END
};

/* Reads one item into it (its why says what is wrong with it). The
 * points go into a new array the caller frees. */
static void read_item(const json_t *v, struct monitoring_item *it)
{
	struct item_json ij = { .it = it };
	struct monitoring_point *pts;
	struct fault f;

	if (!json_is_object(v)) {
		snprintf(it->why, sizeof(it->why),
			 "a metricData item must be an object");
		return;
	}
	if (fields_parse(item_fields, v, &ij, "", NULL, &f) != 0) {
		snprintf(it->why, sizeof(it->why), "%s", f.message);
		it->ndims = 0;
		return;
	}
	it->namespace = json_string_value(json_object_get(v, "namespace"));
	it->name = json_string_value(json_object_get(v, "name"));
	pts = xcalloc(ij.npoints ? ij.npoints : 1, sizeof(*pts));
	for (size_t i = 0; i < ij.npoints; i++)
		pts[i] = (struct monitoring_point){ ij.points[i].t_ms,
						    ij.points[i].value };
	it->points = pts;
	it->npoints = ij.npoints;
	fields_free(item_fields, &ij);
}

int api_metric_data_read(const json_t *body, struct monitoring_item **items,
			 size_t *n, bool *atomic, struct fault *f)
{
	struct post_json pj = { 0 };
	int rc = fields_parse(post_fields, body, &pj, "", NULL, f);

	*items = NULL;
	*n = 0;
	*atomic = false;
	if (rc != 0)
		return rc;
	*n = json_array_size(pj.data);
	*items = xcalloc(*n ? *n : 1, sizeof(**items));
	for (size_t i = 0; i < *n; i++)
		read_item(json_array_get(pj.data, i), &(*items)[i]);
	*atomic = pj.atomicity == 1;
	return 0;
}

void api_metric_data_free(struct monitoring_item *items, size_t n)
{
	for (size_t i = 0; items != NULL && i < n; i++)
		free((void *)items[i].points);
	free(items);
}

static void metrics_post(struct api_call *c)
{
	struct monitoring *m = module(c);
	struct monitoring_item *items;
	const json_t *data;
	size_t n, nfailed;
	bool atomic;
	json_t *failed;
	struct fault f;

	if (m == NULL)
		return;
	if (api_metric_data_read(c->body, &items, &n, &atomic, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	if (monitoring_post(m, items, n, atomic, &nfailed, &f) != 0) {
		api_reply_fault(c, &f);
		goto out;
	}
	data = json_object_get(c->body, "metricData");
	failed = json_array();
	for (size_t i = 0; i < n; i++)
		if (items[i].why[0] != '\0')
			json_array_append_new(
				failed,
				json_pack("{s:O, s:s}", "metricData",
					  json_array_get(data, i),
					  "message", items[i].why));
	api_reply(c, 200,
		  json_pack("{s:I, s:o}", "failedMetricsCount",
			    (json_int_t)nfailed, "failedMetrics", failed),
		  NULL);
out:
	api_metric_data_free(items, n);
}

/* ---- POST /v1/metrics/query ---- */

struct query_json {
	char query[MQL_MAX_QUERY + 1];
	char namespace[TSDB_MAX_STR + 1];
	int64_t start_ms, end_ms, resolution_ms;
};

/* A time, or null for the default. */
static int parse_time_or_null(const json_t *v, void *dst,
			      const struct field *fd, const char *path,
			      struct fault *f)
{
	return json_is_null(v) ? 0 : parse_time(v, dst, fd, path, f);
}

/* A resolution: "1m", "10s", "1h", "1d" or an ISO-8601 duration. */
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

static int parse_resolution(const json_t *v, void *dst,
			    const struct field *fd, const char *path,
			    struct fault *f)
{
	int64_t ms = 0;

	(void)fd;
	if (!json_is_string(v) ||
	    read_resolution(json_string_value(v), &ms) != 0 || ms <= 0)
		return fault_set(f, MDS_E_INVAL, path,
				 "%s must be a duration from 1s to 1d such as "
				 "\"1m\", \"10s\" or \"PT1M\"", path);
	memcpy(dst, &ms, sizeof(ms));
	return 0;
}

static const struct field query_fields[] = {
	{ .name = "query", .type = FIELD_STRING,
	  FIELD_AT(struct query_json, query), .required = true,
	  .doc = "the MQL query" },
	{ .name = "namespace", .type = FIELD_STRING,
	  FIELD_AT(struct query_json, namespace),
	  .doc = "default " MONITORING_NAMESPACE },
	{ .name = "startTime", .type = FIELD_CUSTOM,
	  FIELD_AT(struct query_json, start_ms), .parse = parse_time_or_null,
	  .doc = "default: an hour before endTime" },
	{ .name = "endTime", .type = FIELD_CUSTOM,
	  FIELD_AT(struct query_json, end_ms), .parse = parse_time_or_null,
	  .doc = "default: now" },
	{ .name = "resolution", .type = FIELD_CUSTOM,
	  FIELD_AT(struct query_json, resolution_ms),
	  .parse = parse_resolution,
	  .doc = "the step, 1s to 1d; default the query's interval, at most "
		 "1m" },
	{ .name = "compartmentId", .type = FIELD_CUSTOM,
	  .parse = parse_ignored_string, .doc = "ignored" },
	FIELD_END
};

const struct field *api_metrics_query_fields(void)
{
	return query_fields;
}

/* An answer of 2,000 streams of 16 dimensions of 255 bytes and their
 * points is about 10 MB; a dimension value of control characters,
 * escaped, takes six times its bytes. */
#define QUERY_ANSWER_MAX ((size_t)128 << 20)

/* A query under way (monitoring_query_start()): its request waits, and
 * its answer is written as the series come, a few a turn, as text (a
 * jansson tree of 2,000 such streams took a third of a second). */
struct query_wait {
	struct api_call call; /* a copy; req stays valid until answered */
	struct monitoring_query_job *job;
	struct buf b;
	struct jsonw w;
};

static void add_series(void *arg, const struct monitoring_series *s)
{
	struct jsonw *w = &((struct query_wait *)arg)->w;

	jsonw_object_begin(w);
	jsonw_key(w, "namespace");
	jsonw_string(w, s->namespace);
	jsonw_key(w, "name");
	jsonw_string(w, s->name);
	jsonw_key(w, "dimensions");
	jsonx_write_dims(w, s->dims, s->ndims);
	jsonw_key(w, "aggregatedDatapoints");
	jsonw_array_begin(w);
	for (size_t k = 0; k < s->npoints; k++) {
		if (!s->points[k].present)
			continue;
		jsonw_object_begin(w);
		jsonw_key(w, "timestamp");
		jsonx_write_time(w, s->points[k].t);
		jsonw_key(w, "value");
		jsonw_real(w, s->points[k].value);
		jsonw_object_end(w);
	}
	jsonw_array_end(w);
	if (s->condition_met) {
		jsonw_key(w, "conditionMet");
		jsonw_bool(w, 1);
	}
	jsonw_object_end(w);
}

static void query_wait_free(struct query_wait *w)
{
	buf_free(&w->b);
	free(w);
}

/* The query is over: answers, unless the token was revoked or rotated
 * meanwhile (401). */
static void query_done(void *arg, struct monitoring_query_job *j)
{
	struct query_wait *w = arg;
	struct fault f;

	http_req_on_close(w->call.req, NULL, NULL);
	if (!api_token_still_valid(&w->call)) {
		query_wait_free(w);
		return;
	}
	if (monitoring_query_result(j, &f) != 0) {
		api_reply_fault(&w->call, &f);
		query_wait_free(w);
		return;
	}
	jsonw_array_end(&w->w);
	jsonw_object_end(&w->w);
	if (jsonw_finish(&w->w) == 0) {
		size_t len = w->b.len;

		http_respond_take(w->call.req, 200, "application/json",
				  buf_steal(&w->b), len, NULL);
	} else
		api_reply_error(&w->call, 500, "InternalServerError", NULL,
				"the answer is too large to write");
	query_wait_free(w);
}

/* Whether the query's token still works: a revoked one ends the work at
 * once (and gets 401). */
static bool query_live(void *arg)
{
	struct query_wait *w = arg;

	return tokens_role(w->call.api->tokens, w->call.req->authorization) !=
	       API_ROLE_NONE;
}

/* The client went away: the evaluation stops now, and the answer nobody
 * reads releases the request. */
static void query_gone(void *arg)
{
	struct query_wait *w = arg;
	struct fault f;

	monitoring_query_cancel(w->job);
	fault_set(&f, MDS_E_UNAVAIL, "", "the client went away");
	api_reply_fault(&w->call, &f);
	query_wait_free(w);
}

void api_monitoring_query(struct api_call *c, const json_t *body)
{
	struct monitoring *m = module(c);
	struct query_json *qj;
	struct monitoring_query q;
	struct query_wait *w;
	uint64_t seen = 0;
	struct fault f;

	if (m == NULL)
		return;
	qj = xcalloc(1, sizeof(*qj));
	if (fields_parse(query_fields, body, qj, "", &seen, &f) != 0) {
		api_reply_fault(c, &f);
		goto out;
	}
	q = (struct monitoring_query){
		.query = qj->query,
		.namespace = fields_given(query_fields, seen, "namespace")
				     ? qj->namespace : NULL,
		.has_start = fields_given(query_fields, seen, "startTime") &&
			     !json_is_null(json_object_get(body, "startTime")),
		.has_end = fields_given(query_fields, seen, "endTime") &&
			   !json_is_null(json_object_get(body, "endTime")),
		.start_ms = qj->start_ms,
		.end_ms = qj->end_ms,
		.resolution_ms = qj->resolution_ms,
	};
	w = xcalloc(1, sizeof(*w));
	w->call = *c;
	w->call.body = NULL;
	buf_init(&w->b, QUERY_ANSWER_MAX);
	jsonw_init(&w->w, &w->b, 0);
	jsonw_object_begin(&w->w);
	jsonw_key(&w->w, "items");
	jsonw_array_begin(&w->w);
	if (monitoring_query_start(m, &q, query_live, add_series, query_done,
				   w, &w->job, &f) != 0) {
		query_wait_free(w);
		api_reply_fault(c, &f);
		goto out;
	}
	http_req_on_close(c->req, query_gone, w);
out:
	free(qj);
}

static void metrics_query(struct api_call *c)
{
	api_monitoring_query(c, c->body);
}

/* ---- alarms ---- */

static void add_alarm(void *arg, const struct monitoring_alarm *a,
		      const struct monitoring_alarm_summary *s)
{
	(void)s;
	json_array_append_new(arg, alarm_json_new(a));
}

/* Every alarm, in creation order: GET /v1/alarms filters and sorts them
 * (api_watch.h). */
static json_t *render_alarms(struct api_call *c, struct fault *f)
{
	json_t *items;

	if (c->api->monitoring == NULL) {
		fault_set(f, MDS_E_UNAVAIL, "", "monitoring is not running "
			  "(the daemon is starting or stopping)");
		return NULL;
	}
	items = json_array();
	monitoring_alarm_list(c->api->monitoring, NULL, add_alarm, items);
	return json_pack("{s:o}", "items", items);
}

static const char *const alarm_sort_keys[] = { "displayName", "severity",
					       "timeUpdated", NULL };
static const struct api_list_spec alarm_list = {
	.name_param = "displayName", .name_field = "displayName",
	.sort_keys = alarm_sort_keys,
};

static void alarms_list(struct api_call *c)
{
	api_list_answer(c, &alarm_list, render_alarms);
}

/* POST (id NULL) or PUT: reads the body and has the module apply it. */
static void alarm_write(struct api_call *c, const char *id)
{
	struct monitoring *m = module(c);
	struct alarm_json_spec *js;
	struct monitoring_alarm a;
	struct fault f;
	int rc;

	if (m == NULL)
		return;
	js = xcalloc(1, sizeof(*js));
	rc = alarm_json_read(c->body, js, &f);
	js->spec.check_only = api_dry_run(c);
	if (rc == 0)
		rc = id == NULL
			     ? monitoring_alarm_create(m, &js->spec, &a, &f)
			     : monitoring_alarm_update(m, id, &js->spec, &a,
						       &f);
	if (rc != 0)
		api_reply_fault(c, &f);
	else if (js->spec.check_only)
		api_reply_dry_run(c);
	else
		api_reply(c, id == NULL ? 201 : 200, alarm_json_new(&a), NULL);
	alarm_json_spec_free(js);
	free(js);
}

static void alarms_create(struct api_call *c)
{
	alarm_write(c, NULL);
}

static void alarms_update(struct api_call *c)
{
	alarm_write(c, c->id);
}

static json_t *render_alarm(struct api_call *c, struct fault *f)
{
	struct monitoring_alarm a;

	if (c->api->monitoring == NULL) {
		fault_set(f, MDS_E_UNAVAIL, "", "monitoring is not running "
			  "(the daemon is starting or stopping)");
		return NULL;
	}
	if (monitoring_alarm_get(c->api->monitoring, c->id, &a, f) != 0)
		return NULL;
	return alarm_json_new(&a);
}

static void alarms_get(struct api_call *c)
{
	api_item_answer(c, render_alarm);
}

/* Answers 200 with the alarm as it was, lifecycleState DELETED. */
static void alarms_delete(struct api_call *c)
{
	struct monitoring *m = module(c);
	struct monitoring_alarm a;
	struct fault f;
	json_t *o;

	if (m == NULL)
		return;
	if (monitoring_alarm_get(m, c->id, &a, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	o = alarm_json_new(&a);
	if (monitoring_alarm_delete(m, c->id, &f) != 0) {
		json_decref(o);
		api_reply_fault(c, &f);
		return;
	}
	json_object_set_new(o, "lifecycleState", json_string("DELETED"));
	api_reply(c, 200, o, NULL);
}

/* The streams a status lists: at most this many, and none more once they
 * take this many bytes (a stream of 16 dimensions of 255 bytes is 4.3 KB:
 * a thousand of them took over 100 ms to write). */
#define STATUS_MAX_STREAMS 1000
#define STATUS_MAX_STREAM_BYTES ((size_t)512 << 10)
/* The answer: the streams, a stream past them, the alarm's fields. */
#define STATUS_MAX_BYTES ((size_t)4 << 20)

/* Writes an alarm's status as text (a jansson tree of a thousand streams
 * of many dimensions cost several times as much). */
static int status_write(const struct monitoring_alarm_status *st,
			struct buf *b)
{
	size_t n = alarm_state_nstreams(st->state), i;
	json_t *sup = alarm_json_suppression(&st->alarm);
	char *sup_text = json_dumps(sup, JSON_COMPACT | JSON_ENCODE_ANY);
	struct jsonw w;
	size_t start;

	json_decref(sup);
	jsonw_init(&w, b, 0);
	jsonw_object_begin(&w);
	jsonw_key(&w, "id");
	jsonw_string(&w, st->alarm.id);
	jsonw_key(&w, "displayName");
	jsonw_string(&w, st->alarm.display_name);
	jsonw_key(&w, "severity");
	jsonw_string(&w, alarm_severity_name(st->alarm.severity));
	jsonw_key(&w, "isEnabled");
	jsonw_bool(&w, st->alarm.is_enabled);
	jsonw_key(&w, "status");
	jsonw_string(&w, alarm_status_name(st->status));
	jsonw_key(&w, "timestampTriggered");
	jsonx_write_time(&w, st->status == ALARM_FIRING ? st->triggered_ms
							 : 0);
	jsonw_key(&w, "dedupeKey");
	jsonw_string(&w, *st->dedupe_key != '\0' ? st->dedupe_key : NULL);
	jsonw_key(&w, "totalMetricsFiring");
	jsonw_int(&w, (int64_t)st->total_firing);
	jsonw_key(&w, "lastEvaluated");
	jsonx_write_time(&w, st->evaluated_ms);
	jsonw_key(&w, "suppression");
	jsonw_raw(&w, sup_text != NULL ? sup_text : "null");
	free(sup_text);
	jsonw_key(&w, "isSuppressed");
	jsonw_bool(&w, st->suppressed);
	jsonw_key(&w, "streams");
	jsonw_array_begin(&w);
	start = b->len;
	for (i = 0; i < n && i < STATUS_MAX_STREAMS &&
		    b->len - start < STATUS_MAX_STREAM_BYTES;
	     i++) {
		const struct alarm_stream_status *s =
			alarm_state_stream(st->state, i);

		jsonw_object_begin(&w);
		jsonw_key(&w, "dimensions");
		jsonx_write_dims(&w, s->dims, s->ndims);
		jsonw_key(&w, "status");
		jsonw_string(&w, alarm_status_name(s->status));
		jsonw_key(&w, "since");
		jsonx_write_time(&w, s->since_ms);
		jsonw_key(&w, "value");
		jsonw_real(&w, s->value);
		jsonw_object_end(&w);
	}
	jsonw_array_end(&w);
	if (i < n) {
		jsonw_key(&w, "streamsTruncated");
		jsonw_bool(&w, 1);
	}
	jsonw_object_end(&w);
	return jsonw_finish(&w);
}

static void alarms_status(struct api_call *c)
{
	struct monitoring *m = module(c);
	struct monitoring_alarm_status st;
	struct fault f;
	struct buf b;

	if (m == NULL)
		return;
	if (monitoring_alarm_status(m, c->id, &st, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	buf_init(&b, STATUS_MAX_BYTES);
	if (status_write(&st, &b) == 0)
		http_respond(c->req, 200, "application/json", buf_str(&b),
			     b.len, NULL);
	else
		api_reply_error(c, 500, "InternalServerError", NULL,
				"the status is too large to answer");
	buf_free(&b);
}

/* A history record, as the store keeps it (JSON text the daemon wrote),
 * into the items as it is: parsing records of up to a few MB and printing
 * them again would hold the loop for tens of milliseconds each. */
static void add_record(void *arg, const char *record)
{
	struct buf *b = arg;

	if (b->data[b->len - 1] != '[')
		buf_addstr(b, ",");
	buf_addstr(b, record);
}

static void alarms_history(struct api_call *c)
{
	struct monitoring *m = module(c);
	char arg[32], *end = arg;
	long limit = 100;
	struct buf items;
	bool truncated;
	struct fault f;
	int rc;

	if (m == NULL)
		return;
	rc = http_query_get(c->req->query, "limit", arg, sizeof(arg));
	if (rc != MDS_E_NOTFOUND) {
		errno = 0;
		if (rc == 0)
			limit = strtol(arg, &end, 10);
		if (rc != 0 || arg[0] < '0' || arg[0] > '9' || *end != '\0' ||
		    errno != 0 || limit < 1 || limit > 1000) {
			api_reply_error(c, 400, "InvalidParameter", "limit",
					"limit must be an integer from 1 to "
					"1000");
			return;
		}
	}
	buf_init(&items, SIZE_MAX - 1);
	buf_addstr(&items, "{\"items\":[");
	if (monitoring_alarm_history(m, c->id, (size_t)limit, add_record,
				     &items, &truncated, &f) != 0) {
		buf_free(&items);
		api_reply_fault(c, &f);
		return;
	}
	buf_addstr(&items, truncated ? "],\"truncated\":true}" : "]}");
	http_respond(c->req, 200, "application/json", buf_str(&items),
		     items.len, NULL);
	buf_free(&items);
}

const struct api_route monitoring_routes[] = {
	{ "POST", "/v1/metrics", metrics_post },
	{ "POST", "/v1/metrics/query", metrics_query },
	{ "GET", "/v1/alarms", alarms_list },
	{ "POST", "/v1/alarms", alarms_create },
	{ "GET", "/v1/alarms/*", alarms_get },
	{ "PUT", "/v1/alarms/*", alarms_update },
	{ "DELETE", "/v1/alarms/*", alarms_delete },
	{ "GET", "/v1/alarms/*/status", alarms_status },
	{ "GET", "/v1/alarms/*/history", alarms_history },
	{ NULL, NULL, NULL },
};
