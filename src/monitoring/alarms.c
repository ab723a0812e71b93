/*
 * alarms.c - the monitoring module's alarms: their definitions (created,
 * changed and deleted through the API, kept in the store) and their
 * evaluation on a tick; see monitoring.h and docs/monitoring.md.
 *
 * Alarm definitions live in memory, in creation order, and in the store
 * (kind "alarm", the API's JSON shape, read and written by
 * api/alarm_json.h); their transitions are the events of stream
 * "alarm-history", each an OCI alarm message with its delivery outcome.
 * The alarm state machines (core/alarm.h) are not persisted: after a
 * restart every alarm starts OK and fires again once its condition has held
 * for its pending duration.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/alarm_json.h"
#include "api/jsonx.h"
#include "core/iso8601.h"
#include "core/jsonw.h"
#include "monitoring/module.h"
#include "store/store.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/turn.h"
#include "util/xalloc.h"

#define MAX_ALARMS 10000
#define PENDING_MIN_MS 1000LL
#define PENDING_MAX_MS 3600000LL
#define PENDING_DEFAULT_MS 60000LL
#define SLACK_MIN_MS 1000LL
#define SLACK_MAX_MS 7200000LL /* PT2H, as in OCI */
#define HISTORY_STREAM "alarm-history"
#define HISTORY_KEEP_MS (90LL * 86400 * 1000)
#define HISTORY_MAX_LIMIT 1000
#define ALARM_KIND "alarm"
#define ALARM_ID_LEN 22 /* "alarm-" + 16 hex digits */
/* A history record: the message and the streams again (at most
 * ALARM_EVENT_MAX_STREAMS, each no larger than in the message). */
#define RECORD_MAX (2 * MONITORING_MESSAGE_MAX)

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
	alarm_def_set_resource_group(d, s->resource_group);
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
	d->notification_title = dup_or_null(s->notification_title);
	d->per_dimension = s->per_dimension;
	d->version = s->version;
	d->reset_ms = s->reset_ms;
	d->suppress_from_ms = s->suppress_from_ms;
	d->suppress_until_ms = s->suppress_until_ms;
	d->suppress_description = dup_or_null(s->suppress_description);
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

/* Fills *out with e as the API shows it (borrowing e's strings). */
static void view(const struct alarm_entry *e, struct monitoring_alarm *out)
{
	const struct alarm_def *d = &e->def;

	*out = (struct monitoring_alarm){
		.id = d->id,
		.display_name = d->display_name,
		.namespace = d->namespace,
		.query = d->query_text,
		.compartment_id = e->compartment_id,
		.metric_compartment_id = e->metric_compartment_id,
		.severity = d->severity,
		.pending_ms = d->pending_ms,
		.repeat_ms = d->repeat_ms,
		.destinations = (const char *const *)d->destinations,
		.ndestinations = d->ndestinations,
		.body = d->body,
		.message_format = d->message_format,
		.is_enabled = d->is_enabled,
		.created_ms = e->created_ms,
		.updated_ms = e->updated_ms,
		.notification_title = d->notification_title,
		.per_dimension = d->per_dimension,
		.version = d->version,
		.reset_ms = d->reset_ms,
		.suppress_from_ms = d->suppress_from_ms,
		.suppress_until_ms = d->suppress_until_ms,
		.suppress_description = d->suppress_description,
		.resource_group = d->resource_group,
	};
}

static void set_str(char **slot, const char *s)
{
	free(*slot);
	*slot = dup_or_null(s);
}

/* Checks a duration in [min, max]; range names them for the message. */
static int check_duration(const char *name, int64_t ms, int64_t min,
			  int64_t max, const char *range, struct fault *f)
{
	char s[ISO8601_DURATION_BUFSZ];

	if (ms >= min && ms <= max)
		return 0;
	if (iso8601_duration_format(ms, s, sizeof(s)) != 0)
		snprintf(s, sizeof(s), "%lld ms", (long long)ms);
	return fault_set(f, MDS_E_INVAL, name, "%s must be from %s, not %s",
			 name, range, s);
}

static int apply_destinations(struct monitoring *m,
			      const struct monitoring_alarm_spec *spec,
			      struct alarm_def *d, int check_topics,
			      struct fault *f)
{
	size_t i, k;

	if (spec->ndestinations > ALARM_MAX_DESTINATIONS)
		return fault_set(f, MDS_E_LIMIT, "destinations",
				 "destinations: at most %d topics",
				 ALARM_MAX_DESTINATIONS);
	for (i = 0; i < d->ndestinations; i++)
		free(d->destinations[i]);
	d->ndestinations = 0;
	for (i = 0; i < spec->ndestinations; i++) {
		const char *id = spec->destinations[i];

		if (id == NULL || *id == '\0' || strlen(id) > ALARM_MAX_STR)
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
static int apply_names(const struct monitoring_alarm_spec *spec,
		       struct alarm_entry *e, int creating,
		       int *query_changed, struct fault *f)
{
	struct alarm_def *d = &e->def;
	const char *why;

	if (spec->given & MONITORING_ALARM_DISPLAY_NAME)
		set_str(&d->display_name, spec->display_name);
	else if (creating)
		return fault_set(f, MDS_E_INVAL, "displayName",
				 "displayName is required");
	if (!(spec->given & MONITORING_ALARM_NAMESPACE))
		return 0;
	why = monitoring_ns_problem(spec->namespace, 1);
	if (why != NULL)
		return fault_set(f, MDS_E_INVAL, "namespace", "namespace %s",
				 why);
	if (strcmp(spec->namespace, d->namespace) != 0)
		*query_changed = 1;
	set_str(&d->namespace, spec->namespace);
	return 0;
}

static int apply_query(const struct monitoring_alarm_spec *spec,
		       struct alarm_def *d, int creating, int *query_changed,
		       struct fault *f)
{
	char diag[512];
	int rc;

	if (!(spec->given & MONITORING_ALARM_QUERY))
		return creating ? fault_set(f, MDS_E_INVAL, "query",
					    "query is required")
				: 0;
	rc = alarm_def_set_query(d, spec->query, diag, sizeof(diag));
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

/* severity, messageFormat and the durations. */
static int apply_settings(const struct monitoring_alarm_spec *spec,
			  struct alarm_def *d, struct fault *f)
{
	unsigned g = spec->given;
	int rc = 0;

	if (g & MONITORING_ALARM_SEVERITY)
		d->severity = spec->severity;
	if (g & MONITORING_ALARM_FORMAT)
		d->message_format = spec->message_format;
	if (g & MONITORING_ALARM_PENDING)
		rc = check_duration("pendingDuration", spec->pending_ms,
				    PENDING_MIN_MS, PENDING_MAX_MS,
				    "PT1S to PT1H", f);
	if (rc != 0)
		return rc;
	if (g & MONITORING_ALARM_PENDING)
		d->pending_ms = spec->pending_ms;
	if ((g & MONITORING_ALARM_REPEAT) && spec->repeat_ms != 0)
		rc = check_duration("repeatNotificationDuration",
				    spec->repeat_ms, ALARM_MIN_REPEAT_MS,
				    ALARM_MAX_REPEAT_MS, "PT1S to P30D", f);
	if (rc == 0 && (g & MONITORING_ALARM_REPEAT))
		d->repeat_ms = spec->repeat_ms;
	if (rc == 0 && (g & MONITORING_ALARM_SLACK))
		rc = check_duration("evaluationSlackDuration", spec->reset_ms,
				    SLACK_MIN_MS, SLACK_MAX_MS, "PT1S to PT2H",
				    f);
	if (rc == 0 && (g & MONITORING_ALARM_SLACK))
		d->reset_ms = spec->reset_ms;
	return rc;
}

/* The notification fields: title, grouping, version, suppression. */
static int apply_notifications(const struct monitoring_alarm_spec *spec,
			       struct alarm_def *d, struct fault *f)
{
	unsigned g = spec->given;

	if ((g & MONITORING_ALARM_SUPPRESSION) && spec->has_suppression &&
	    spec->suppress_until_ms <= spec->suppress_from_ms)
		return fault_set(f, MDS_E_INVAL, "suppression",
				 "suppression.timeSuppressUntil must be after "
				 "timeSuppressFrom");

	if (g & MONITORING_ALARM_TITLE)
		set_str(&d->notification_title, spec->notification_title);
	if (g & MONITORING_ALARM_PER_DIMENSION)
		d->per_dimension = spec->per_dimension;
	if (g & MONITORING_ALARM_VERSION)
		d->version = spec->version;
	if (!(g & MONITORING_ALARM_SUPPRESSION))
		return 0;
	d->suppress_from_ms = spec->has_suppression ? spec->suppress_from_ms
						    : 0;
	d->suppress_until_ms = spec->has_suppression
				       ? spec->suppress_until_ms : 0;
	set_str(&d->suppress_description,
		spec->has_suppression ? spec->suppress_description : NULL);
	return 0;
}

/* resourceGroup: the query sees only that group's metrics. */
static int apply_resource_group(const struct monitoring_alarm_spec *spec,
				struct alarm_def *d, int *query_changed,
				struct fault *f)
{
	char diag[512];
	char *text;
	int rc;

	if (!(spec->given & MONITORING_ALARM_RESOURCE_GROUP))
		return 0;
	alarm_def_set_resource_group(d, spec->resource_group);
	*query_changed = 1;
	if (d->query_text == NULL)
		return 0;
	text = xstrdup(d->query_text);
	rc = alarm_def_set_query(d, text, diag, sizeof(diag));
	free(text);
	if (rc != 0)
		return fault_set(f, rc, "resourceGroup", "resourceGroup: %s",
				 diag);
	return 0;
}

/* body, isEnabled and the compartment ids. */
static void apply_extras(const struct monitoring_alarm_spec *spec,
			 struct alarm_entry *e)
{
	unsigned g = spec->given;

	if (g & MONITORING_ALARM_BODY)
		set_str(&e->def.body, spec->body);
	if (g & MONITORING_ALARM_ENABLED)
		e->def.is_enabled = spec->is_enabled;
	if (g & MONITORING_ALARM_COMPARTMENT)
		set_str(&e->compartment_id, spec->compartment_id);
	if (g & MONITORING_ALARM_METRIC_COMPARTMENT)
		set_str(&e->metric_compartment_id,
			spec->metric_compartment_id);
}

/*
 * Applies an alarm spec (from a POST or PUT body, the autoscale function,
 * or a stored document) to e: every given field replaces the old value;
 * when creating, the required fields must be there and the others get
 * their defaults. Returns 0 or the refusal in f; e is then half changed and
 * the caller drops it. *query_changed tells whether query or namespace
 * changed.
 */
static int apply_spec(struct monitoring *m,
		      const struct monitoring_alarm_spec *spec,
		      struct alarm_entry *e, int creating, int check_topics,
		      int *query_changed, struct fault *f)
{
	struct alarm_def *d = &e->def;
	char diag[512];
	int rc;

	*query_changed = creating;
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
		rc = apply_settings(spec, d, f);
	if (rc == 0)
		rc = apply_resource_group(spec, d, query_changed, f);
	if (rc == 0 && (spec->given & MONITORING_ALARM_DESTINATIONS))
		rc = apply_destinations(m, spec, d, check_topics, f);
	if (rc != 0)
		return rc;
	apply_extras(spec, e);
	rc = apply_notifications(spec, d, f);
	if (rc != 0)
		return rc;
	if (alarm_def_validate(d, diag, sizeof(diag)) != 0)
		return fault_set(f, MDS_E_INVAL, "", "%s", diag);
	return 0;
}

/* Writes the alarm to the store. */
static int alarm_persist(struct monitoring *m, const struct alarm_entry *e,
			 struct fault *f)
{
	struct monitoring_alarm a;
	json_t *o;
	char *s;
	int rc;

	view(e, &a);
	o = alarm_json_new(&a);
	s = json_dumps(o, JSON_COMPACT);
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

static void alarms_add(struct monitoring *m, struct alarm_entry *e)
{
	e->st = alarm_state_new();
	/* The alarms are evaluated one at a time on the loop, as queries
	 * are: one result serves them all. */
	alarm_state_share_result(e->st, &m->qres);
	if (m->nalarms == m->alarms_cap) {
		m->alarms_cap = m->alarms_cap ? m->alarms_cap * 2 : 16;
		m->alarms = xreallocarray(m->alarms, m->alarms_cap,
					  sizeof(*m->alarms));
	}
	m->alarms[m->nalarms++] = e;
}

/* Reads one stored alarm: the API's shape, read as a body would be (its
 * id and times aside). */
static int load_alarm(void *arg, const char *id, const char *json)
{
	struct monitoring *m = arg;
	struct alarm_entry *e = xcalloc(1, sizeof(*e));
	json_t *doc = json_loads(json, 0, NULL), *spec = NULL;
	struct alarm_json_spec *js = xcalloc(1, sizeof(*js));
	struct fault f = { 0 };
	int changed;

	alarm_def_init(&e->def);
	e->def.id = xstrdup(id);
	if (doc == NULL || !json_is_object(doc)) {
		fault_set(&f, MDS_E_PARSE, "", "not a JSON object");
		goto bad;
	}
	spec = json_copy(doc);
	json_object_del(spec, "id");
	json_object_del(spec, "lifecycleState");
	json_object_del(spec, "timeCreated");
	json_object_del(spec, "timeUpdated");
	if (alarm_json_read(spec, js, &f) != 0 ||
	    apply_spec(m, &js->spec, e, 1, 0, &changed, &f) != 0)
		goto bad;
	e->created_ms = time_member(doc, "timeCreated");
	e->updated_ms = time_member(doc, "timeUpdated");
	alarms_add(m, e);
	e = NULL;
	goto out;
bad:
	log_error(SRC, "alarm %s in the store is not valid (%s); ignored", id,
		  f.message);
out:
	alarm_json_spec_free(js);
	free(js);
	json_decref(spec);
	json_decref(doc);
	entry_free(e);
	return 0;
}

int alarms_open(struct monitoring *m)
{
	return store_each(m->env.store, ALARM_KIND, load_alarm, m);
}

void alarms_free(struct monitoring *m)
{
	for (size_t i = 0; i < m->nalarms; i++)
		entry_free(m->alarms[i]);
	free(m->alarms);
	for (size_t i = 0; i < m->nrecs; i++) {
		free(m->recs[i].alarm_id);
		free(m->recs[i].json);
	}
	free(m->recs);
}

/*
 * The in-memory side of a create or a delete, applied once its rows are
 * committed (store_on_commit()): inside a transaction of the caller's,
 * the alarm comes or goes with the rest of the change, or not at all.
 */
struct alarm_change {
	struct monitoring *m;
	struct alarm_entry *e; /* a create's new alarm */
	char *id;              /* a delete's alarm */
};

static struct alarm_change *change_new(struct monitoring *m,
				       struct alarm_entry *e, const char *id)
{
	struct alarm_change *c = xcalloc(1, sizeof(*c));

	c->m = m;
	c->e = e;
	c->id = id != NULL ? xstrdup(id) : NULL;
	return c;
}

static void change_free(struct alarm_change *c)
{
	entry_free(c->e);
	free(c->id);
	free(c);
}

static void created(void *arg)
{
	struct alarm_change *c = arg;
	struct alarm_entry *e = c->e;

	c->e = NULL;
	alarms_add(c->m, e);
	log_info(SRC, "alarm %s created: '%s' %s", e->def.id,
		 e->def.display_name, e->def.query_text);
	change_free(c);
}

static void deleted(void *arg)
{
	struct alarm_change *c = arg;
	struct monitoring *m = c->m;
	struct alarm_entry *e;
	size_t i;

	e = alarm_find_id(m, c->id, &i);
	if (e != NULL) {
		if (m->events_of == e) { /* events not yet handled: none now */
			alarm_events_reset(&m->events);
			m->events_next = 0;
			m->events_of = NULL;
		}
		memmove(&m->alarms[i], &m->alarms[i + 1],
			(m->nalarms - i - 1) * sizeof(*m->alarms));
		m->nalarms--;
		log_info(SRC, "alarm %s deleted", c->id);
		entry_free(e);
	}
	change_free(c);
}

/* A change whose transaction was rolled back: nothing happens. */
static void dropped(void *arg)
{
	change_free(arg);
}

int monitoring_alarm_create(struct monitoring *m,
			    const struct monitoring_alarm_spec *spec,
			    struct monitoring_alarm *out, struct fault *f)
{
	struct alarm_entry *e;
	char id[ALARM_ID_LEN + 1];
	int changed, rc;

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
	if (rc != 0 || spec->check_only)
		goto fail;
	e->created_ms = e->updated_ms = ids_now_ms();
	rc = alarm_persist(m, e, f);
	if (rc != 0)
		goto fail;
	view(e, out);
	store_on_commit(m->env.store, created, dropped,
			change_new(m, e, NULL));
	return 0;
fail:
	entry_free(e);
	return rc;
}

int monitoring_alarm_update(struct monitoring *m, const char *id,
			    const struct monitoring_alarm_spec *spec,
			    struct monitoring_alarm *out, struct fault *f)
{
	struct alarm_entry *e, *draft;
	int changed, rc;

	e = alarm_find_id(m, id, NULL);
	if (e == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "", "no alarm '%s'", id);
	draft = entry_copy(e);
	rc = apply_spec(m, spec, draft, 0, 1, &changed, f);
	if (rc != 0 || spec->check_only)
		goto out;
	draft->updated_ms = ids_now_ms();
	rc = alarm_persist(m, draft, f);
	if (rc != 0)
		goto out;
	/* The draft becomes the alarm; the state stays unless what it
	 * watches changed. A pass under way borrows the old definition. */
	alarm_state_end_pass(e->st);
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
	view(e, out);
out:
	entry_free(draft);
	return rc;
}

int monitoring_alarm_delete(struct monitoring *m, const char *id,
			    struct fault *f)
{
	int rc;

	if (alarm_find_id(m, id, NULL) == NULL)
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
	store_on_commit(m->env.store, deleted, dropped,
			change_new(m, NULL, id));
	return 0;
}

int monitoring_alarm_get(struct monitoring *m, const char *id,
			 struct monitoring_alarm *out, struct fault *f)
{
	struct alarm_entry *e = alarm_find_id(m, id, NULL);

	if (e == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "", "no alarm '%s'", id);
	view(e, out);
	return 0;
}

static void summarize(const struct alarm_entry *e,
		      struct monitoring_alarm_summary *s)
{
	*s = (struct monitoring_alarm_summary){
		.id = e->def.id,
		.display_name = e->def.display_name,
		.severity = alarm_severity_name(e->def.severity),
		.firing = alarm_state_status(e->st) == ALARM_FIRING,
		.streams_firing = alarm_state_firing(e->st),
	};
}

void monitoring_alarm_list(struct monitoring *m, const char *display_name,
			   monitoring_alarm_fn *fn, void *arg)
{
	for (size_t i = 0; i < m->nalarms; i++) {
		const struct alarm_entry *e = m->alarms[i];
		struct monitoring_alarm_summary s;
		struct monitoring_alarm a;

		if (display_name != NULL &&
		    strcmp(e->def.display_name, display_name) != 0)
			continue;
		view(e, &a);
		summarize(e, &s);
		fn(arg, &a, &s);
	}
}

void monitoring_alarm_each(struct monitoring *m,
			   void (*fn)(void *arg,
				      const struct monitoring_alarm_summary *s),
			   void *arg)
{
	for (size_t i = 0; i < m->nalarms; i++) {
		struct monitoring_alarm_summary s;

		summarize(m->alarms[i], &s);
		fn(arg, &s);
	}
}

int monitoring_alarm_status(struct monitoring *m, const char *id,
			    struct monitoring_alarm_status *out,
			    struct fault *f)
{
	struct alarm_entry *e = alarm_find_id(m, id, NULL);

	if (e == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "", "no alarm '%s'", id);
	view(e, &out->alarm);
	out->status = alarm_state_status(e->st);
	out->triggered_ms = out->status == ALARM_FIRING ? e->triggered_ms : 0;
	out->evaluated_ms = e->evaluated_ms;
	out->dedupe_key = alarm_state_dedupe_key(e->st);
	out->total_firing = alarm_state_firing(e->st);
	out->suppressed = alarm_def_suppressed(&e->def, ids_now_ms());
	out->state = e->st;
	return 0;
}

/* The records of a history answer take at most this many bytes (the
 * newest record always goes): a thousand records of up to 0.9 MB read and
 * copied in one turn held the loop for a second. */
#define HISTORY_MAX_BYTES ((size_t)4 << 20)

/* The newest records, newest first, up to HISTORY_MAX_BYTES. */
struct history_call {
	char **v;
	size_t n, bytes;
	int truncated;
};

static int history_one(void *arg, const char *id, const char *json)
{
	struct history_call *h = arg;
	size_t len = strlen(json);

	(void)id;
	if (h->n > 0 && h->bytes + len > HISTORY_MAX_BYTES) {
		h->truncated = 1;
		return 1; /* stops the walk */
	}
	h->v = xreallocarray(h->v, h->n + 1, sizeof(*h->v));
	h->v[h->n++] = xstrdup(json);
	h->bytes += len;
	return 0;
}

int monitoring_alarm_history(struct monitoring *m, const char *id,
			     size_t limit,
			     void (*fn)(void *arg, const char *record),
			     void *arg, bool *truncated, struct fault *f)
{
	struct history_call h = { 0 };
	int rc;

	*truncated = false;
	if (alarm_find_id(m, id, NULL) == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "", "no alarm '%s'", id);
	if (limit == 0 || limit > HISTORY_MAX_LIMIT)
		return fault_set(f, MDS_E_INVAL, "limit",
				 "limit must be from 1 to %d",
				 HISTORY_MAX_LIMIT);
	rc = store_event_each_newest(m->env.store, HISTORY_STREAM, id, limit,
				     history_one, &h);
	if (rc == 1)
		rc = 0;
	for (size_t i = h.n; i-- > 0;) {
		if (rc == 0)
			fn(arg, h.v[i]);
		free(h.v[i]);
	}
	free(h.v);
	if (rc != 0)
		return fault_set(f, rc, "", "cannot read the history: %s",
				 mds_strerror(rc));
	*truncated = h.truncated;
	return 0;
}

int monitoring_alarm_find(struct monitoring *m, const char *display_name,
			  const char *resource_id, char *id, size_t idsz)
{
	return monitoring_alarm_find_other(m, display_name, resource_id, NULL,
					   NULL, id, idsz);
}

int monitoring_alarm_find_other(struct monitoring *m,
				const char *display_name,
				const char *resource_id,
				bool (*skip)(void *arg, const char *id),
				void *arg, char *id, size_t idsz)
{
	for (size_t i = 0; i < m->nalarms; i++) {
		const struct alarm_def *d = &m->alarms[i]->def;
		const char *r = mql_filter_value(d->query, "resourceId");

		if (strcmp(d->display_name, display_name) != 0 || r == NULL ||
		    strcmp(r, resource_id) != 0 ||
		    (skip != NULL && skip(arg, d->id)))
			continue;
		if (strlen(d->id) >= idsz)
			return MDS_E_LIMIT;
		memcpy(id, d->id, strlen(d->id) + 1);
		return 0;
	}
	return MDS_E_NOTFOUND;
}

/* ---- alarms: evaluation ---- */

/* Queues a history record; takes json (a string of its own). */
static void record_push(struct monitoring *m, const char *alarm_id,
			int64_t t, char *json)
{
	if (m->nrecs == m->recs_cap) {
		m->recs_cap = m->recs_cap ? m->recs_cap * 2 : 8;
		m->recs = xreallocarray(m->recs, m->recs_cap, sizeof(*m->recs));
	}
	m->recs[m->nrecs++] = (struct record){
		.alarm_id = xstrdup(alarm_id),
		.t_ms = t,
		.json = json,
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

/* What became of an event's message at one destination. */
struct delivery {
	const char *topic, *status, *error;
};

/* Hands the message (NULL: too large) to each destination of d. */
static void publish(struct monitoring *m, const struct alarm_def *d,
		    const struct alarm_event *ev, const char *msg,
		    int suppressed, struct delivery *out)
{
	for (size_t i = 0; i < d->ndestinations; i++) {
		struct delivery *dl = &out[i];
		int rc;

		*dl = (struct delivery){ d->destinations[i], "QUEUED", NULL };
		if (msg == NULL) {
			dl->status = "FAILED";
			dl->error = "the message is too large";
		} else if (suppressed) {
			dl->status = "SUPPRESSED";
		} else if (m->publish == NULL) {
			dl->status = "NOT_SENT";
			dl->error = "no notifications module is running";
		} else {
			rc = m->publish(m->publish_arg, dl->topic, d->id,
					ev->dedupe_key, msg);
			if (rc != 0) {
				dl->status = "FAILED";
				dl->error = mds_strerror(rc);
				log_warn(SRC, "alarm %s: publishing to %s: %s",
					 d->id, dl->topic, dl->error);
			}
		}
	}
}

/*
 * Writes the history record of ev into b: written as text, the message
 * copied in as it was sent, not parsed back into a tree and printed again
 * (with 100 streams of 16 dimensions of 255 bytes, the record is 0.9 MB:
 * that round trip held the loop for tens of milliseconds).
 */
static int record_json(const struct alarm_event *ev, int suppressed,
		       const char *msg, const struct delivery *dl, size_t ndl,
		       struct buf *b)
{
	struct jsonw w;

	jsonw_init(&w, b, 0);
	jsonw_object_begin(&w);
	jsonw_key(&w, "timestamp");
	jsonx_write_time(&w, ev->t_ms);
	jsonw_key(&w, "timestampEpochMillis");
	jsonw_int(&w, ev->t_ms);
	jsonw_key(&w, "type");
	jsonw_string(&w, alarm_event_type_name(ev->type));
	jsonw_key(&w, "status");
	jsonw_string(&w, alarm_status_name(ev->status));
	jsonw_key(&w, "dedupeKey");
	jsonw_string(&w, ev->dedupe_key);
	jsonw_key(&w, "totalMetricsFiring");
	jsonw_int(&w, (int64_t)ev->total_firing);
	jsonw_key(&w, "streams");
	jsonw_array_begin(&w);
	for (size_t i = 0; i < ev->nstreams; i++) {
		const struct alarm_stream *s = &ev->streams[i];

		jsonw_object_begin(&w);
		jsonw_key(&w, "dimensions");
		jsonx_write_dims(&w, s->dims, s->ndims);
		jsonw_key(&w, "value");
		jsonw_real(&w, s->value);
		jsonw_key(&w, "timestamp");
		jsonx_write_time(&w, s->t);
		jsonw_object_end(&w);
	}
	jsonw_array_end(&w);
	jsonw_key(&w, "suppressed");
	jsonw_bool(&w, suppressed);
	jsonw_key(&w, "message");
	if (msg != NULL)
		jsonw_raw(&w, msg);
	else
		jsonw_null(&w);
	jsonw_key(&w, "deliveries");
	jsonw_array_begin(&w);
	for (size_t i = 0; i < ndl; i++) {
		jsonw_object_begin(&w);
		jsonw_key(&w, "topicId");
		jsonw_string(&w, dl[i].topic);
		jsonw_key(&w, "status");
		jsonw_string(&w, dl[i].status);
		jsonw_key(&w, "error");
		jsonw_string(&w, dl[i].error);
		jsonw_object_end(&w);
	}
	jsonw_array_end(&w);
	jsonw_object_end(&w);
	return jsonw_finish(&w);
}

static void handle_event(struct monitoring *m, struct alarm_entry *e,
			 const struct alarm_event *ev)
{
	const struct alarm_def *d = &e->def;
	int suppressed = alarm_def_suppressed(d, ev->t_ms);
	struct delivery dl[ALARM_MAX_DESTINATIONS];
	char *url = xasprintf("%s/v1/alarms/%s", m->api_url, d->id);
	const char *msg = NULL;
	struct buf rec;
	int rc;

	buf_reset(&m->msg);
	rc = alarm_message_json(d, ev, url, &m->msg);
	free(url);
	if (rc == 0)
		msg = buf_str(&m->msg);
	else
		log_error(SRC, "alarm %s: the message is larger than %zu "
			  "bytes; not sent", d->id, MONITORING_MESSAGE_MAX);
	publish(m, d, ev, msg, suppressed, dl);
	if (ev->type == ALARM_OK_TO_FIRING)
		e->triggered_ms = ev->t_ms;
	log_info(SRC, "alarm %s '%s': %s (%zu firing)%s", d->id,
		 d->display_name, alarm_event_type_name(ev->type),
		 ev->total_firing, suppressed ? ", suppressed" : "");
	buf_init(&rec, RECORD_MAX);
	if (record_json(ev, suppressed, msg, dl, d->ndestinations, &rec) == 0)
		record_push(m, d->id, ev->t_ms, buf_steal(&rec));
	else
		log_error(SRC, "alarm %s: the history record is larger than "
			  "%zu bytes; not recorded", d->id, RECORD_MAX);
	buf_free(&rec);
}

/* A pass over the alarms yields the loop once it has run this long, so
 * that alarms over many series do not add up in one turn; an alarm over
 * many series is itself evaluated this many series at a time, and can
 * yield between them; its events are handled one at a time, and can yield
 * between them too (and before the history records are written). */
#define EVAL_SLICE_NS (2 * 1000 * 1000)
#define EVAL_PART_SERIES 4096

static int slice_over(uint64_t end)
{
	return uv_hrtime() >= end;
}

/* Handles the pending events of m->events_of until the slice is over.
 * Returns 1 if some remain. */
static int handle_events(struct monitoring *m, uint64_t end)
{
	while (m->events_next < m->events.n) {
		if (slice_over(end))
			return 1;
		handle_event(m, m->events_of, &m->events.v[m->events_next++]);
	}
	alarm_events_reset(&m->events);
	m->events_next = 0;
	m->events_of = NULL;
	return 0;
}

void alarms_on_eval(uv_timer_t *t)
{
	struct monitoring *m = t->data;
	/* EVAL_SLICE_NS, or less when the turn has spent its budget. */
	uint64_t end = uv_hrtime() + turn_slice_ns(EVAL_SLICE_NS);
	int busy;

	/* A store half read would look like missing data. */
	if (metrics_loading(m))
		return;
	if (!m->eval_busy) {
		m->eval_pass_ms = ids_now_ms();
		m->eval_busy = 1;
	}
	records_flush(m); /* those of a slice that ran out of time */
	while (!handle_events(m, end) && m->eval_next < m->nalarms &&
	       !slice_over(end)) {
		struct alarm_entry *e = m->alarms[m->eval_next];
		int rc, more;

		rc = alarm_eval_part(e->st, &e->def, m->db, m->eval_pass_ms,
				     EVAL_PART_SERIES, &m->events, &more);
		if (!more) {
			m->eval_next++;
			e->evaluated_ms = m->eval_pass_ms;
		}
		if (rc != 0) {
			log_debug(SRC, "alarm %s: %s", e->def.id,
				  mds_strerror(rc));
			alarm_events_reset(&m->events);
		} else {
			m->events_of = e;
		}
	}
	busy = m->events.n > 0 || m->eval_next < m->nalarms;
	/* Records of a few MB take milliseconds to write: in a turn of
	 * their own once the slice is over. */
	if (m->nrecs > 0 && slice_over(end))
		busy = 1;
	else
		records_flush(m);
	if (busy) {
		/* The rest in a later turn (1 ms: a timer due now would run
		 * again before the loop polls); the period counts from the
		 * last slice. */
		uv_timer_start(t, alarms_on_eval, 1, m->env.eval_ms);
	} else {
		m->eval_next = 0;
		m->eval_busy = 0;
	}
}
