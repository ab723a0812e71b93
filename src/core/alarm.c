/* alarm.c - alarm state machine and OCI alarm messages; see alarm.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alarm.h"
#include "core/iso8601.h"
#include "core/jsonw.h"
#include "util/err.h"
#include "util/htab.h"
#include "util/rfc3339.h"
#include "util/xalloc.h"

#define NONE SIZE_MAX

/* What becomes of a tracked stream at an evaluation. */
enum fate {
	FATE_KEEP,  /* the condition holds, or a 1.5 stream waits for data */
	FATE_CLEAR, /* data shows the condition no longer holds */
	FATE_RESET, /* no data for the reset period */
};

/* A stream the state machine tracks: PENDING or FIRING. */
struct tracked {
	struct alarm_stream_status pub;
	struct tsdb_dim *dims; /* one block: the array, then its strings */
	uint64_t hash; /* tsdb_dims_hash(), as the stream carried it */
	int64_t t;              /* the last evaluation with data */
	int64_t last_notify_ms; /* per dimension: its last message */
	char dedupe_key[ALARM_DEDUPE_KEY_LEN + 1]; /* per dimension */
	int seen;               /* the condition held at this evaluation */
	int has_data;           /* in the result at this evaluation */
	int fired_now;          /* PENDING -> FIRING at this evaluation */
	enum fate fate;
};

struct alarm_state {
	enum alarm_status status;
	int64_t last_notify_ms;
	char dedupe_key[ALARM_DEDUPE_KEY_LEN + 1];
	struct tracked *s;
	size_t n, cap;
	struct htab ix; /* the streams' hashes to their index in s */
	struct mql_result own, *res; /* res: &own, or a shared one */
	struct mql_part part; /* a pass split over calls */
	int in_pass;          /* part is a pass under way */
	int64_t pass_ms;      /* its evaluation time */
};

/* --- names --------------------------------------------------------------- */

static const char *const severity_names[] = { "CRITICAL", "ERROR",
					      "WARNING", "INFO" };
static const char *const format_names[] = { "RAW", "PRETTY_JSON",
					    "ONS_OPTIMIZED" };
static const char *const status_names[] = { "OK", "PENDING", "FIRING" };
static const char *const event_names[] = { "OK_TO_FIRING", "FIRING_TO_OK",
					   "REPEAT", "RESET" };
static const char *const version_names[] = { "1.3", "1.5" };

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_of(const char *const *names, size_t n, unsigned v)
{
	return v < n ? names[v] : "UNKNOWN";
}

static int index_of(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

const char *alarm_severity_name(enum alarm_severity sev)
{
	return name_of(severity_names, NELEM(severity_names), sev);
}

const char *alarm_format_name(enum alarm_format fmt)
{
	return name_of(format_names, NELEM(format_names), fmt);
}

const char *alarm_status_name(enum alarm_status status)
{
	return name_of(status_names, NELEM(status_names), status);
}

const char *alarm_event_type_name(enum alarm_event_type type)
{
	return name_of(event_names, NELEM(event_names), type);
}

const char *alarm_version_name(enum alarm_version v)
{
	return name_of(version_names, NELEM(version_names), v);
}

int alarm_version_parse(const char *name, enum alarm_version *out)
{
	int i = index_of(version_names, NELEM(version_names), name);

	if (i < 0 && strcmp(name, "1.X") == 0)
		i = ALARM_VERSION_1_5;
	if (i < 0)
		return MDS_E_INVAL;
	*out = (enum alarm_version)i;
	return 0;
}

int alarm_severity_parse(const char *name, enum alarm_severity *out)
{
	int i = index_of(severity_names, NELEM(severity_names), name);

	if (i < 0)
		return MDS_E_INVAL;
	*out = (enum alarm_severity)i;
	return 0;
}

int alarm_format_parse(const char *name, enum alarm_format *out)
{
	int i = index_of(format_names, NELEM(format_names), name);

	if (i < 0)
		return MDS_E_INVAL;
	*out = (enum alarm_format)i;
	return 0;
}

/* --- definitions --------------------------------------------------------- */

void alarm_def_init(struct alarm_def *def)
{
	memset(def, 0, sizeof(*def));
	def->severity = ALARM_CRITICAL;
	def->message_format = ALARM_FORMAT_RAW;
	def->is_enabled = 1;
	def->version = ALARM_VERSION_1_3;
	def->reset_ms = ALARM_DEFAULT_RESET_MS;
}

void alarm_def_clear(struct alarm_def *def)
{
	if (def == NULL)
		return;
	free(def->id);
	free(def->display_name);
	free(def->namespace);
	free(def->query_text);
	mql_free(def->query);
	free(def->body);
	for (size_t i = 0; i < def->ndestinations; i++)
		free(def->destinations[i]);
	free(def->destinations);
	free(def->notification_title);
	free(def->suppress_description);
	free(def->resource_group);
	alarm_def_init(def);
}

int alarm_def_set_query(struct alarm_def *def, const char *text, char *diag,
			size_t diagsz)
{
	struct mql_query *q;
	int rc;

	rc = mql_parse(text, &q, diag, diagsz);
	if (rc != 0)
		return rc;
	if (def->resource_group != NULL &&
	    mql_add_filter(q, "resourceGroup", def->resource_group) != 0) {
		mql_free(q);
		mds_diag(diag, diagsz, "query: no room for the resourceGroup "
			 "filter (32 filters at most)");
		return MDS_E_LIMIT;
	}
	mql_free(def->query);
	free(def->query_text);
	def->query = q;
	def->query_text = xstrdup(text);
	return 0;
}

int alarm_def_set_resource_group(struct alarm_def *def, const char *group)
{
	free(def->resource_group);
	def->resource_group = group != NULL ? xstrdup(group) : NULL;
	return 0;
}

int alarm_def_add_destination(struct alarm_def *def, const char *topic_id,
			      char *diag, size_t diagsz)
{
	if (def->ndestinations == ALARM_MAX_DESTINATIONS) {
		mds_diag(diag, diagsz, "destinations: more than %d",
			 ALARM_MAX_DESTINATIONS);
		return MDS_E_LIMIT;
	}
	def->destinations = xreallocarray(def->destinations,
					  def->ndestinations + 1,
					  sizeof(*def->destinations));
	def->destinations[def->ndestinations++] = xstrdup(topic_id);
	return 0;
}

static int check_field(const char *field, const char *v, size_t max,
		       char *diag, size_t diagsz)
{
	size_t len = v ? strnlen(v, max + 1) : 0;

	if (len == 0 || len > max) {
		mds_diag(diag, diagsz, "%s must be 1 to %zu bytes", field,
			 max);
		return MDS_E_INVAL;
	}
	return 0;
}

int alarm_def_validate(const struct alarm_def *def, char *diag,
		       size_t diagsz)
{
	int rc;

	rc = check_field("id", def->id, ALARM_MAX_STR, diag, diagsz);
	if (rc == 0)
		rc = check_field("displayName", def->display_name,
				 ALARM_MAX_STR, diag, diagsz);
	if (rc == 0)
		rc = check_field("namespace", def->namespace, ALARM_MAX_STR,
				 diag, diagsz);
	if (rc != 0)
		return rc;
	if (def->query == NULL || def->query_text == NULL) {
		mds_diag(diag, diagsz, "query is missing");
		return MDS_E_INVAL;
	}
	if (def->pending_ms < 0 || def->pending_ms > ALARM_MAX_PENDING_MS) {
		mds_diag(diag, diagsz,
			 "pendingDuration must be from PT0S to P1D");
		return MDS_E_INVAL;
	}
	if (def->repeat_ms != 0 && (def->repeat_ms < ALARM_MIN_REPEAT_MS ||
				    def->repeat_ms > ALARM_MAX_REPEAT_MS)) {
		mds_diag(diag, diagsz, "repeatNotificationDuration must be "
			 "from PT1S to P30D");
		return MDS_E_INVAL;
	}
	if (def->notification_title != NULL &&
	    check_field("notificationTitle", def->notification_title,
			ALARM_MAX_STR, diag, diagsz) != 0)
		return MDS_E_INVAL;
	if (def->reset_ms < 1000) {
		mds_diag(diag, diagsz, "evaluationSlackDuration must be at "
			 "least PT1S");
		return MDS_E_INVAL;
	}
	if (def->suppress_until_ms != 0 &&
	    def->suppress_until_ms <= def->suppress_from_ms) {
		mds_diag(diag, diagsz, "suppression.timeSuppressUntil must be "
			 "after timeSuppressFrom");
		return MDS_E_INVAL;
	}
	if (def->body != NULL && strnlen(def->body, ALARM_MAX_BODY + 1) >
				     ALARM_MAX_BODY) {
		mds_diag(diag, diagsz, "body is longer than %d bytes",
			 ALARM_MAX_BODY);
		return MDS_E_INVAL;
	}
	return 0;
}

int alarm_def_suppressed(const struct alarm_def *def, int64_t now_ms)
{
	return def->suppress_until_ms != 0 &&
	       now_ms >= def->suppress_from_ms &&
	       now_ms < def->suppress_until_ms;
}

/* --- events -------------------------------------------------------------- */

/* Copies dims into one allocation: the array, then the strings. */
static struct tsdb_dim *dims_copy(const struct tsdb_dim *d, size_t n)
{
	size_t bytes = n * sizeof(*d) + 1;
	struct tsdb_dim *out;
	char *p;

	for (size_t i = 0; i < n; i++)
		bytes += strlen(d[i].key) + strlen(d[i].value) + 2;
	out = xmalloc(bytes);
	p = (char *)(out + n);
	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(d[i].key) + 1, vl = strlen(d[i].value) + 1;

		memcpy(p, d[i].key, kl);
		out[i].key = p;
		p += kl;
		memcpy(p, d[i].value, vl);
		out[i].value = p;
		p += vl;
	}
	return out;
}

void alarm_events_init(struct alarm_events *ev)
{
	memset(ev, 0, sizeof(*ev));
}

void alarm_events_reset(struct alarm_events *ev)
{
	for (size_t i = 0; i < ev->n; i++) {
		for (size_t k = 0; k < ev->v[i].nstreams; k++)
			free(ev->v[i].streams[k].dims);
		free(ev->v[i].streams);
	}
	ev->n = 0;
}

void alarm_events_free(struct alarm_events *ev)
{
	if (ev == NULL)
		return;
	alarm_events_reset(ev);
	free(ev->v);
	memset(ev, 0, sizeof(*ev));
}

/* --- state --------------------------------------------------------------- */

struct alarm_state *alarm_state_new(void)
{
	struct alarm_state *st = xcalloc(1, sizeof(*st));

	st->status = ALARM_OK;
	mql_result_init(&st->own);
	st->res = &st->own;
	return st;
}

static void forget_streams(struct alarm_state *st)
{
	for (size_t i = 0; i < st->n; i++)
		free(st->s[i].dims);
	st->n = 0;
	htab_clear(&st->ix);
}

void alarm_state_free(struct alarm_state *st)
{
	if (st == NULL)
		return;
	forget_streams(st);
	mql_part_free(&st->part);
	free(st->s);
	htab_free(&st->ix);
	mql_result_free(&st->own);
	free(st);
}

void alarm_state_share_result(struct alarm_state *st,
			      struct mql_result *scratch)
{
	mql_result_free(&st->own);
	st->res = scratch;
}

void alarm_state_reset(struct alarm_state *st)
{
	forget_streams(st);
	alarm_state_end_pass(st);
	st->status = ALARM_OK;
	st->last_notify_ms = 0;
	st->dedupe_key[0] = '\0';
}

void alarm_state_end_pass(struct alarm_state *st)
{
	mql_part_free(&st->part);
	st->in_pass = 0;
}

enum alarm_status alarm_state_status(const struct alarm_state *st)
{
	return st->status;
}

size_t alarm_state_firing(const struct alarm_state *st)
{
	size_t n = 0;

	for (size_t i = 0; i < st->n; i++)
		n += st->s[i].pub.status == ALARM_FIRING;
	return n;
}

size_t alarm_state_nstreams(const struct alarm_state *st)
{
	return st->n;
}

const struct alarm_stream_status *alarm_state_stream(
	const struct alarm_state *st, size_t i)
{
	return &st->s[i].pub;
}

const char *alarm_state_dedupe_key(const struct alarm_state *st)
{
	return st->dedupe_key;
}

static int dims_equal(const struct tsdb_dim *a, size_t na,
		      const struct tsdb_dim *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i].key, b[i].key) != 0 ||
		    strcmp(a[i].value, b[i].value) != 0)
			return 0;
	return 1;
}

/* Indexes the tracked streams again, after some were dropped. */
static void reindex(struct alarm_state *st)
{
	htab_clear(&st->ix);
	for (size_t i = 0; i < st->n; i++)
		htab_put(&st->ix, st->s[i].hash, (uint32_t)i);
}

/*
 * Whether a duration from since has passed at now. The daemon's passes
 * come a few milliseconds early or late on the wall clock; a pass at most
 * ALARM_CLOCK_SLACK_MS short of the duration counts, so that a duration
 * of k periods ends at the k-th pass, as it does on the simulator's exact
 * clock, not one pass later.
 */
static int reached(int64_t now, int64_t since, int64_t duration)
{
	return now - since + ALARM_CLOCK_SLACK_MS >= duration;
}

static size_t find_stream(const struct alarm_state *st, uint64_t h,
			  const struct tsdb_dim *d, size_t n)
{
	struct htab_iter it;

	for (uint32_t v = htab_first(&st->ix, h, &it); v != HTAB_NONE;
	     v = htab_next(&it)) {
		const struct tracked *t = &st->s[v];

		if (dims_equal(t->pub.dims, t->pub.ndims, d, n))
			return v;
	}
	return NONE;
}

static size_t add_stream(struct alarm_state *st, uint64_t h,
			 const struct tsdb_dim *d, size_t n, int64_t now)
{
	struct tracked *t;

	if (st->n == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 4;
		st->s = xreallocarray(st->s, st->cap, sizeof(*st->s));
	}
	t = &st->s[st->n++];
	memset(t, 0, sizeof(*t));
	t->dims = dims_copy(d, n);
	t->hash = h;
	t->pub.dims = t->dims;
	t->pub.ndims = n;
	t->pub.status = ALARM_PENDING;
	t->pub.since_ms = now;
	htab_put(&st->ix, h, (uint32_t)(st->n - 1));
	return st->n - 1;
}

/* A UUID-shaped key, stable for one alarm and one firing episode. */
static void dedupe_key(const char *id, int64_t episode_ms, char *out)
{
	uint64_t a = hash_mix(hash_str(id), (uint64_t)episode_ms);
	uint64_t b;

	a ^= a >> 33;
	a *= 0xff51afd7ed558ccdULL;
	a ^= a >> 33;
	b = (a ^ 0x9e3779b97f4a7c15ULL) * 0xc4ceb9fe1a85ec53ULL;
	b ^= b >> 29;
	/* Version 8 (custom) and the RFC 4122 variant, as a UUID would. */
	snprintf(out, ALARM_DEDUPE_KEY_LEN + 1,
		 "%08x-%04x-8%03x-%04x-%012llx", (unsigned)(a >> 32),
		 (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
		 (unsigned)(0x8000 | ((b >> 48) & 0x3fff)),
		 (unsigned long long)(b & 0xffffffffffffULL));
}

/* Starts an event of the alarm at now, with dedupe key key. */
static struct alarm_event *emit(struct alarm_state *st,
				enum alarm_event_type type, int64_t now,
				size_t total_firing, const char *key,
				struct alarm_events *out)
{
	struct alarm_event *ev;

	if (out->n == out->cap) {
		out->cap = out->cap ? out->cap * 2 : 4;
		out->v = xreallocarray(out->v, out->cap, sizeof(*out->v));
	}
	ev = &out->v[out->n++];
	memset(ev, 0, sizeof(*ev));
	ev->type = type;
	ev->t_ms = now;
	ev->status = st->status;
	ev->total_firing = total_firing;
	snprintf(ev->dedupe_key, sizeof(ev->dedupe_key), "%s", key);
	return ev;
}

/* Adds a copy of tracked stream t to ev (up to the event's limit). */
static void add_to(struct alarm_event *ev, const struct tracked *t)
{
	if (ev->nstreams == ALARM_EVENT_MAX_STREAMS)
		return;
	if (ev->streams == NULL)
		ev->streams = xmalloc(ALARM_EVENT_MAX_STREAMS *
				      sizeof(*ev->streams));
	ev->streams[ev->nstreams++] = (struct alarm_stream){
		.dims = dims_copy(t->pub.dims, t->pub.ndims),
		.ndims = t->pub.ndims,
		.value = t->pub.value,
		.has_value = t->fate != FATE_RESET,
		.t = t->t,
	};
}

/* Adds every FIRING stream of fate `fate` to ev. */
static void add_firing(struct alarm_event *ev, const struct alarm_state *st,
		       enum fate fate)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->s[i].pub.status == ALARM_FIRING &&
		    st->s[i].fate == fate)
			add_to(ev, &st->s[i]);
}

/* Notes a stream of the result: holding, or only with data. */
static void observe_stream(struct alarm_state *st,
			   const struct mql_stream *ms, int64_t now)
{
	const struct mql_point *pt = &ms->points[0];
	size_t k;
	struct tracked *t;

	/* The common case, an OK stream while none is tracked. */
	if (!pt->holds && st->n == 0)
		return;
	/* The stream carries the hash of its dimensions (a series' from the
	 * store): no pass over up to 16 values of 255 bytes per stream. */
	k = find_stream(st, ms->hash, ms->dims, ms->ndims);
	if (!pt->holds && k == NONE)
		return; /* an OK stream */
	if (k == NONE)
		k = add_stream(st, ms->hash, ms->dims, ms->ndims, now);
	t = &st->s[k];
	t->has_data = pt->present;
	t->t = now;
	if (pt->present)
		t->pub.value = pt->value;
	if (!pt->holds)
		return; /* clearing */
	t->seen = 1; /* PENDING to FIRING at the pass's end */
}

/* Starts a pass: no tracked stream seen yet. */
static void pass_begin(struct alarm_state *st, int64_t now)
{
	for (size_t i = 0; i < st->n; i++) {
		st->s[i].seen = st->s[i].has_data = st->s[i].fired_now = 0;
		st->s[i].fate = FATE_KEEP;
	}
	mql_part_free(&st->part);
	st->pass_ms = now;
	st->in_pass = 1;
}

/* Evaluates the pass's next part and notes its streams. */
static int observe_part(struct alarm_state *st, const struct alarm_def *def,
			const struct tsdb *db)
{
	int rc;

	rc = mql_eval_part(def->query, db, def->namespace, st->pass_ms,
			   &st->part, st->res);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < st->res->nstreams; i++)
		observe_stream(st, &st->res->streams[i], st->pass_ms);
	return 0;
}

/*
 * Decides each tracked stream's fate at the end of a pass. Returns the
 * number of streams FIRING that stay so in *nfiring.
 */
static void pass_end(struct alarm_state *st, const struct alarm_def *def,
		     int64_t now, size_t *nfiring)
{
	int hold = def->version == ALARM_VERSION_1_5 &&
		   mql_statistic(def->query) != MQL_STAT_ABSENT;

	st->in_pass = 0;
	*nfiring = 0;
	for (size_t i = 0; i < st->n; i++) {
		struct tracked *t = &st->s[i];

		if (t->seen) {
			t->fate = FATE_KEEP;
			if (t->pub.status == ALARM_PENDING &&
			    reached(now, t->pub.since_ms, def->pending_ms)) {
				t->pub.status = ALARM_FIRING;
				t->fired_now = 1;
			}
		} else if (hold && t->pub.status == ALARM_FIRING && !t->has_data)
			t->fate = reached(now, t->t, def->reset_ms) ? FATE_RESET
							       : FATE_KEEP;
		else
			t->fate = FATE_CLEAR;
		*nfiring += t->fate == FATE_KEEP &&
			    t->pub.status == ALARM_FIRING;
	}
}

/* Counts the FIRING streams of fate `fate`. */
static size_t count_firing(const struct alarm_state *st, enum fate fate)
{
	size_t n = 0;

	for (size_t i = 0; i < st->n; i++)
		n += st->s[i].pub.status == ALARM_FIRING &&
		     st->s[i].fate == fate;
	return n;
}

/* The events of a grouped alarm: the alarm's own transitions. */
static void events_grouped(struct alarm_state *st, const struct alarm_def *def,
			   int64_t now, size_t nfiring,
			   struct alarm_events *out)
{
	size_t nreset = count_firing(st, FATE_RESET);
	size_t ncleared = count_firing(st, FATE_CLEAR);
	struct alarm_event *ev;

	if (st->status == ALARM_OK) {
		if (nfiring == 0)
			return;
		st->status = ALARM_FIRING;
		st->last_notify_ms = now;
		dedupe_key(def->id ? def->id : "", now, st->dedupe_key);
		ev = emit(st, ALARM_OK_TO_FIRING, now, nfiring,
			  st->dedupe_key, out);
		add_firing(ev, st, FATE_KEEP);
		return;
	}
	if (nreset > 0) {
		if (nfiring == 0 && ncleared == 0)
			st->status = ALARM_OK;
		ev = emit(st, ALARM_RESET, now, nfiring, st->dedupe_key, out);
		add_firing(ev, st, FATE_RESET);
	}
	if (nfiring == 0 && st->status == ALARM_FIRING) {
		st->status = ALARM_OK;
		ev = emit(st, ALARM_FIRING_TO_OK, now, 0, st->dedupe_key, out);
		add_firing(ev, st, FATE_CLEAR);
	} else if (nfiring > 0 && def->repeat_ms > 0 &&
		   reached(now, st->last_notify_ms, def->repeat_ms)) {
		st->last_notify_ms = now;
		ev = emit(st, ALARM_REPEAT, now, nfiring, st->dedupe_key, out);
		add_firing(ev, st, FATE_KEEP);
	}
}

/* The events of a per-dimension alarm: each stream's own transitions. */
static void events_split(struct alarm_state *st, const struct alarm_def *def,
			 int64_t now, size_t nfiring, struct alarm_events *out)
{
	const char *id = def->id ? def->id : "";
	struct alarm_event *ev;

	if (st->status == ALARM_OK && nfiring > 0) {
		st->last_notify_ms = now;
		dedupe_key(id, now, st->dedupe_key);
	}
	st->status = nfiring > 0 ? ALARM_FIRING : ALARM_OK;
	for (size_t i = 0; i < st->n; i++) {
		struct tracked *t = &st->s[i];
		enum alarm_event_type type;

		if (t->pub.status != ALARM_FIRING)
			continue;
		if (t->fired_now) {
			type = ALARM_OK_TO_FIRING;
		} else if (t->fate == FATE_CLEAR) {
			type = ALARM_FIRING_TO_OK;
		} else if (t->fate == FATE_RESET) {
			type = ALARM_RESET;
		} else if (def->repeat_ms > 0 &&
			   reached(now, t->last_notify_ms, def->repeat_ms)) {
			type = ALARM_REPEAT;
		} else {
			continue;
		}
		if (t->dedupe_key[0] == '\0') /* it fired while grouped */
			dedupe_key(id, (int64_t)hash_mix(t->hash, (uint64_t)
						 t->pub.since_ms),
				   t->dedupe_key);
		t->last_notify_ms = now;
		ev = emit(st, type, now, nfiring, t->dedupe_key, out);
		ev->per_stream = 1;
		add_to(ev, t);
	}
}

int alarm_eval(struct alarm_state *st, const struct alarm_def *def,
	       const struct tsdb *db, int64_t now, struct alarm_events *out)
{
	int more;

	st->in_pass = 0;
	return alarm_eval_part(st, def, db, now, SIZE_MAX, out, &more);
}

int alarm_eval_part(struct alarm_state *st, const struct alarm_def *def,
		    const struct tsdb *db, int64_t now, size_t max_series,
		    struct alarm_events *out, int *more)
{
	size_t nfiring, kept = 0;
	int rc;

	*more = 0;
	if (!def->is_enabled) {
		alarm_state_reset(st);
		return 0;
	}
	if (def->query == NULL || def->namespace == NULL)
		return MDS_E_INVAL;
	if (!st->in_pass || now != st->pass_ms)
		pass_begin(st, now);
	st->part.max_series = max_series;
	now = st->pass_ms;
	rc = observe_part(st, def, db);
	if (rc != 0) {
		st->in_pass = 0;
		return rc;
	}
	if (st->part.more) {
		*more = 1;
		return 0;
	}
	pass_end(st, def, now, &nfiring);
	if (def->per_dimension)
		events_split(st, def, now, nfiring, out);
	else
		events_grouped(st, def, now, nfiring, out);

	/* Streams that cleared or reset go back to OK: forget them. */
	for (size_t i = 0; i < st->n; i++) {
		if (st->s[i].fate == FATE_KEEP)
			st->s[kept++] = st->s[i];
		else
			free(st->s[i].dims);
	}
	if (kept != st->n) {
		st->n = kept;
		for (size_t i = 0; i < st->n; i++)
			st->s[i].pub.dims = st->s[i].dims;
		reindex(st);
	}
	return 0;
}

/* --- messages ------------------------------------------------------------ */

static const char *title_of(const struct alarm_def *def)
{
	if (def->notification_title != NULL)
		return def->notification_title;
	return def->display_name ? def->display_name : "";
}

/* The 1.5 alarmSummary: what state the alarm is in, and why. */
static void write_summary(struct jsonw *w, const struct alarm_def *def,
			  const struct alarm_event *ev)
{
	char delay[ISO8601_DURATION_BUFSZ], text[ALARM_MAX_STR + 4200];
	const char *q = def->query_text ? def->query_text : "";

	if (iso8601_duration_format(def->pending_ms, delay, sizeof(delay)) != 0)
		snprintf(delay, sizeof(delay), "PT0S");
	if (ev->type == ALARM_RESET)
		snprintf(text, sizeof(text), "Alarm \"%s\" is in a \"%s\" "
			 "state; %zu metric streams reset after no data for "
			 "the reset period; %zu metrics meet the trigger rule: "
			 "\"%s\"", title_of(def), alarm_status_name(ev->status),
			 ev->nstreams, ev->total_firing, q);
	else if (ev->status == ALARM_FIRING)
		snprintf(text, sizeof(text), "Alarm \"%s\" is in a \"FIRING\" "
			 "state; because %zu metrics meet the trigger rule: "
			 "\"%s\", with a trigger delay of %s", title_of(def),
			 ev->total_firing, q, delay);
	else
		snprintf(text, sizeof(text), "Alarm \"%s\" is in a \"OK\" "
			 "state; because no metrics meet the trigger rule: "
			 "\"%s\"", title_of(def), q);
	jsonw_key(w, "alarmSummary");
	jsonw_string(w, text);
}

/* The 1.5 metricValues: {"<query without condition>": "<value>"} per
 * stream with a value. */
static void write_values(struct jsonw *w, const struct alarm_def *def,
			 const struct alarm_event *ev)
{
	char key[MQL_MAX_QUERY + 1], val[32];
	size_t n = 0;

	if (def->query != NULL && def->query_text != NULL) {
		n = mql_expression_len(def->query);
		memcpy(key, def->query_text, n);
	}
	key[n] = '\0';
	jsonw_key(w, "metricValues");
	jsonw_array_begin(w);
	for (size_t i = 0; i < ev->nstreams; i++) {
		if (!ev->streams[i].has_value)
			continue;
		snprintf(val, sizeof(val), "%.15g", ev->streams[i].value);
		jsonw_object_begin(w);
		jsonw_key(w, key);
		jsonw_string(w, val);
		jsonw_object_end(w);
	}
	jsonw_array_end(w);
}

/* alarmMetaData[0]: the alarm, the streams, and for 1.5 summary, values. */
static void write_metadata(struct jsonw *w, const struct alarm_def *def,
			   const struct alarm_event *ev, const char *alarm_url)
{
	jsonw_object_begin(w);
	jsonw_key(w, "id");
	jsonw_string(w, def->id ? def->id : "");
	jsonw_key(w, "status");
	jsonw_string(w, alarm_status_name(ev->status));
	jsonw_key(w, "severity");
	jsonw_string(w, alarm_severity_name(def->severity));
	jsonw_key(w, "namespace");
	jsonw_string(w, def->namespace ? def->namespace : "");
	jsonw_key(w, "query");
	jsonw_string(w, def->query_text ? def->query_text : "");
	jsonw_key(w, "totalMetricsFiring");
	jsonw_int(w, (int64_t)ev->total_firing);
	jsonw_key(w, "dimensions");
	jsonw_array_begin(w);
	for (size_t i = 0; i < ev->nstreams; i++) {
		jsonw_object_begin(w);
		for (size_t k = 0; k < ev->streams[i].ndims; k++) {
			jsonw_key(w, ev->streams[i].dims[k].key);
			jsonw_string(w, ev->streams[i].dims[k].value);
		}
		jsonw_object_end(w);
	}
	jsonw_array_end(w);
	jsonw_key(w, "alarmUrl");
	jsonw_string(w, alarm_url ? alarm_url : "");
	if (def->version == ALARM_VERSION_1_5) {
		write_summary(w, def, ev);
		write_values(w, def, ev);
	}
	jsonw_object_end(w);
}

int alarm_message_json(const struct alarm_def *def,
		       const struct alarm_event *ev, const char *alarm_url,
		       struct buf *out)
{
	char ts[RFC3339_BUFSZ];
	struct jsonw w;

	rfc3339_format(ev->t_ms, RFC3339_AUTO, ts, sizeof(ts)); /* "" if bad */
	jsonw_init(&w, out, def->message_format == ALARM_FORMAT_PRETTY_JSON);
	jsonw_object_begin(&w);
	jsonw_key(&w, "dedupeKey");
	jsonw_string(&w, ev->dedupe_key);
	jsonw_key(&w, "title");
	jsonw_string(&w, title_of(def));
	jsonw_key(&w, "body");
	jsonw_string(&w, def->body);
	jsonw_key(&w, "type");
	jsonw_string(&w, alarm_event_type_name(ev->type));
	jsonw_key(&w, "severity");
	jsonw_string(&w, alarm_severity_name(def->severity));
	jsonw_key(&w, "timestampEpochMillis");
	jsonw_int(&w, ev->t_ms);
	jsonw_key(&w, "timestamp");
	jsonw_string(&w, ts);
	jsonw_key(&w, "alarmMetaData");
	jsonw_array_begin(&w);
	write_metadata(&w, def, ev, alarm_url);
	jsonw_array_end(&w);
	if (def->version == ALARM_VERSION_1_5) {
		jsonw_key(&w, "notificationType");
		jsonw_string(&w, def->per_dimension
					 ? "Split messages per metric stream"
					 : "Group notifications across metric "
					   "streams");
	}
	jsonw_key(&w, "version");
	jsonw_raw(&w, alarm_version_name(def->version));
	jsonw_object_end(&w);
	return jsonw_finish(&w);
}
