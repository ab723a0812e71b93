/* alarm_json.c - see alarm_json.h. */
#include <string.h>

#include "api/alarm_json.h"
#include "api/fields.h"
#include "api/jsonx.h"
#include "core/iso8601.h"
#include "util/err.h"

static const char *const severities[] = { "CRITICAL", "ERROR", "WARNING",
					  "INFO", NULL };
static const char *const formats[] = { "RAW", "PRETTY_JSON",
				       "ONS_OPTIMIZED", NULL };
/* notificationVersion: OCI's "1.X" is the newest 1.x, 1.5. */
static const char *const versions[] = { "1.3", "1.5", "1.X", NULL };
/* resolution: OCI evaluates alarms at 1m only. */
static const char *const resolutions[] = { "1m", NULL };

/* An ISO-8601 duration ("PT1M") into an int64_t of milliseconds. */
static int parse_duration(const json_t *v, void *dst, const struct field *fd,
			  const char *path, struct fault *f)
{
	const char *s = json_string_value(v);
	char diag[128];
	int64_t ms;

	(void)fd;
	if (s == NULL)
		return fields_fault_type(f, path, "an ISO-8601 duration "
					 "string");
	if (iso8601_duration_parse(s, &ms, diag, sizeof(diag)) != 0)
		return fault_set(f, MDS_E_INVAL, path,
				 "%s: '%.64s' is not an ISO-8601 duration such "
				 "as PT1M or PT5S (%s)", path, s, diag);
	memcpy(dst, &ms, sizeof(ms));
	return 0;
}

/* An RFC 3339 time ("2026-12-06T20:00:00Z") into an int64_t of ms. */
static int parse_time(const json_t *v, void *dst, const struct field *fd,
		      const char *path, struct fault *f)
{
	const char *s = json_string_value(v);
	int64_t ms;

	(void)fd;
	if (s == NULL)
		return fields_fault_type(f, path, "an RFC 3339 time string");
	if (iso8601_time_parse(s, &ms, NULL, 0) != 0)
		return fault_set(f, MDS_E_INVAL, path,
				 "%s: '%.64s' is not an RFC 3339 time such as "
				 "2026-01-02T03:04:05Z", path, s);
	memcpy(dst, &ms, sizeof(ms));
	return 0;
}

#define SUP(member) FIELD_AT(struct alarm_json_suppression, member)

static const struct field suppression_fields[] = {
	{ .name = "timeSuppressFrom", .type = FIELD_CUSTOM, SUP(from_ms),
	  .required = true, .parse = parse_time,
	  .doc = "start of the window, RFC 3339" },
	{ .name = "timeSuppressUntil", .type = FIELD_CUSTOM, SUP(until_ms),
	  .required = true, .parse = parse_time,
	  .doc = "end of the window (excluded), RFC 3339" },
	{ .name = "description", .type = FIELD_STRING, SUP(description),
	  .doc = "why, free text" },
	FIELD_END
};

#define AT(member) FIELD_AT(struct alarm_json_spec, member)

static const struct field alarm_fields[] = {
	{ .name = "displayName", .type = FIELD_STRING, AT(display_name),
	  .min = 1, .doc = "the alarm's name (required when creating)" },
	{ .name = "namespace", .type = FIELD_STRING, AT(namespace), .min = 1,
	  .doc = "the metrics' namespace; default "
		 MONITORING_NAMESPACE },
	{ .name = "query", .type = FIELD_STRING, AT(query), .min = 1,
	  .doc = "an MQL query with a condition (required when creating)" },
	{ .name = "severity", .type = FIELD_ENUM, AT(severity),
	  .choices = severities, .doc = "default INFO" },
	{ .name = "pendingDuration", .type = FIELD_CUSTOM, AT(pending_ms),
	  .parse = parse_duration,
	  .doc = "how long the condition must hold, PT1S to PT1H; default "
		 "PT1M" },
	{ .name = "repeatNotificationDuration", .type = FIELD_CUSTOM,
	  AT(repeat_ms), .parse = parse_duration,
	  .doc = "how often a FIRING alarm repeats, PT1S to P1D, or null" },
	{ .name = "destinations", .type = FIELD_STRV, AT(destinations),
	  .item_max = ALARM_MAX_STR,
	  .doc = "topic ids, at most 16, or null" },
	{ .name = "body", .type = FIELD_STRING, AT(body),
	  .doc = "text for the message, or null" },
	{ .name = "messageFormat", .type = FIELD_ENUM, AT(message_format),
	  .choices = formats, .doc = "default ONS_OPTIMIZED" },
	{ .name = "isEnabled", .type = FIELD_BOOL, AT(is_enabled),
	  .doc = "default true" },
	{ .name = "compartmentId", .type = FIELD_STRING, AT(compartment_id),
	  .min = 1, .doc = "echoed as given, or null" },
	{ .name = "metricCompartmentId", .type = FIELD_STRING,
	  AT(metric_compartment_id), .min = 1,
	  .doc = "echoed as given, or null" },
	{ .name = "notificationTitle", .type = FIELD_STRING,
	  AT(notification_title), .min = 1,
	  .doc = "the messages' title, or null for the displayName" },
	{ .name = "isNotificationsPerMetricDimensionEnabled",
	  .type = FIELD_BOOL, AT(per_dimension),
	  .doc = "one message per stream; default false" },
	{ .name = "notificationVersion", .type = FIELD_ENUM, AT(version),
	  .choices = versions,
	  .doc = "the message format version; default 1.3 (1.X: 1.5)" },
	{ .name = "resolution", .type = FIELD_ENUM, AT(resolution),
	  .choices = resolutions, .doc = "1m, the only value, as in OCI" },
	{ .name = "evaluationSlackDuration", .type = FIELD_CUSTOM,
	  AT(slack_ms), .parse = parse_duration,
	  .doc = "the reset period of a 1.5 alarm, PT1S to PT2H; default "
		 "PT3M" },
	{ .name = "suppression", .type = FIELD_OBJECT, AT(suppression),
	  .table = suppression_fields,
	  .doc = "{timeSuppressFrom, timeSuppressUntil, description?}: no "
		 "messages in that window, or null" },
	{ .name = "resourceGroup", .type = FIELD_STRING, AT(resource_group),
	  .min = 1, .doc = "only metrics of that resource group, or null" },
	FIELD_END
};

const struct field *alarm_json_fields(void)
{
	return alarm_fields;
}

/* Each field's bit in the spec's given mask, in the table's order. */
static const unsigned given_bits[] = {
	MONITORING_ALARM_DISPLAY_NAME, MONITORING_ALARM_NAMESPACE,
	MONITORING_ALARM_QUERY, MONITORING_ALARM_SEVERITY,
	MONITORING_ALARM_PENDING, MONITORING_ALARM_REPEAT,
	MONITORING_ALARM_DESTINATIONS, MONITORING_ALARM_BODY,
	MONITORING_ALARM_FORMAT, MONITORING_ALARM_ENABLED,
	MONITORING_ALARM_COMPARTMENT, MONITORING_ALARM_METRIC_COMPARTMENT,
	MONITORING_ALARM_TITLE, MONITORING_ALARM_PER_DIMENSION,
	MONITORING_ALARM_VERSION, MONITORING_ALARM_RESOLUTION,
	MONITORING_ALARM_SLACK, MONITORING_ALARM_SUPPRESSION,
	MONITORING_ALARM_RESOURCE_GROUP,
};

/* The fields that take null for "none". */
static const char *const nullable[] = {
	"repeatNotificationDuration", "destinations", "body",
	"compartmentId", "metricCompartmentId", "notificationTitle",
	"suppression", "resourceGroup",
};

/* Points the spec's members at what the table filled. */
static void fill_spec(struct alarm_json_spec *s, uint64_t seen,
		      unsigned nulls)
{
	struct monitoring_alarm_spec *p = &s->spec;
	size_t n = 0;

	for (size_t i = 0; i < sizeof(given_bits) / sizeof(given_bits[0]);
	     i++)
		if (seen >> i & 1)
			p->given |= given_bits[i];
	p->given |= nulls;
	p->display_name = s->display_name;
	p->namespace = s->namespace;
	p->query = s->query;
	p->severity = (enum alarm_severity)s->severity;
	p->pending_ms = s->pending_ms;
	p->repeat_ms = s->repeat_ms;
	for (; s->destinations != NULL && s->destinations[n] != NULL; n++)
		;
	p->destinations = (const char *const *)s->destinations;
	p->ndestinations = n;
	p->body = nulls & MONITORING_ALARM_BODY ? NULL : s->body;
	p->message_format = (enum alarm_format)s->message_format;
	p->is_enabled = s->is_enabled;
	p->compartment_id = nulls & MONITORING_ALARM_COMPARTMENT
				    ? NULL : s->compartment_id;
	p->metric_compartment_id = nulls & MONITORING_ALARM_METRIC_COMPARTMENT
					   ? NULL : s->metric_compartment_id;
	p->notification_title = nulls & MONITORING_ALARM_TITLE
					? NULL : s->notification_title;
	p->per_dimension = s->per_dimension;
	p->version = s->version == 0 ? ALARM_VERSION_1_3 : ALARM_VERSION_1_5;
	p->reset_ms = s->slack_ms;
	p->has_suppression = !(nulls & MONITORING_ALARM_SUPPRESSION);
	p->suppress_from_ms = s->suppression.from_ms;
	p->suppress_until_ms = s->suppression.until_ms;
	p->suppress_description = s->suppression.description[0] != '\0'
					  ? s->suppression.description : NULL;
	p->resource_group = nulls & MONITORING_ALARM_RESOURCE_GROUP
				    ? NULL : s->resource_group;
}

int alarm_json_read(const json_t *body, struct alarm_json_spec *out,
		    struct fault *f)
{
	json_t *rest, *sup;
	uint64_t seen = 0;
	unsigned nulls = 0;
	int rc;

	if (!json_is_object(body))
		return fields_fault_type(f, "", "a JSON object");
	/* Null means "none" for some fields: the table reads the others. */
	rest = json_copy((json_t *)body);
	for (size_t i = 0; i < sizeof(nullable) / sizeof(nullable[0]); i++) {
		if (!json_is_null(json_object_get(rest, nullable[i])))
			continue;
		nulls |= given_bits[fields_find(alarm_fields, nullable[i]) -
				    alarm_fields];
		json_object_del(rest, nullable[i]);
	}
	/* suppression.description may be null too (as the alarm shows it). */
	sup = json_object_get(rest, "suppression");
	if (json_is_object(sup) &&
	    json_is_null(json_object_get(sup, "description"))) {
		sup = json_deep_copy(sup);
		json_object_del(sup, "description");
		json_object_set_new(rest, "suppression", sup);
	}
	rc = fields_parse(alarm_fields, rest, out, "", &seen, f);
	json_decref(rest);
	if (rc == 0)
		fill_spec(out, seen, nulls);
	return rc;
}

void alarm_json_spec_free(struct alarm_json_spec *s)
{
	fields_free(alarm_fields, s);
}

static json_t *duration_json(int64_t ms)
{
	char s[ISO8601_DURATION_BUFSZ];

	if (iso8601_duration_format(ms, s, sizeof(s)) != 0)
		return json_null();
	return json_string(s);
}

static json_t *str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

json_t *alarm_json_suppression(const struct monitoring_alarm *a)
{
	if (a->suppress_until_ms == 0)
		return json_null();
	return json_pack("{s:o, s:o, s:o}", "timeSuppressFrom",
			 jsonx_time(a->suppress_from_ms), "timeSuppressUntil",
			 jsonx_time(a->suppress_until_ms), "description",
			 str_or_null(a->suppress_description));
}

json_t *alarm_json_new(const struct monitoring_alarm *a)
{
	json_t *o = json_object(), *dest = json_array();

	for (size_t i = 0; i < a->ndestinations; i++)
		json_array_append_new(dest, json_string(a->destinations[i]));
	json_object_set_new(o, "id", json_string(a->id));
	json_object_set_new(o, "displayName", json_string(a->display_name));
	if (a->compartment_id != NULL)
		json_object_set_new(o, "compartmentId",
				    json_string(a->compartment_id));
	if (a->metric_compartment_id != NULL)
		json_object_set_new(o, "metricCompartmentId",
				    json_string(a->metric_compartment_id));
	json_object_set_new(o, "namespace", json_string(a->namespace));
	json_object_set_new(o, "query", json_string(a->query));
	json_object_set_new(o, "severity",
			    json_string(alarm_severity_name(a->severity)));
	json_object_set_new(o, "pendingDuration", duration_json(a->pending_ms));
	json_object_set_new(o, "repeatNotificationDuration",
			    a->repeat_ms ? duration_json(a->repeat_ms)
					 : json_null());
	json_object_set_new(o, "destinations", dest);
	json_object_set_new(o, "body", str_or_null(a->body));
	json_object_set_new(o, "messageFormat",
			    json_string(alarm_format_name(a->message_format)));
	json_object_set_new(o, "isEnabled", json_boolean(a->is_enabled));
	json_object_set_new(o, "notificationTitle",
			    str_or_null(a->notification_title));
	json_object_set_new(o, "isNotificationsPerMetricDimensionEnabled",
			    json_boolean(a->per_dimension));
	json_object_set_new(o, "notificationVersion",
			    json_string(alarm_version_name(a->version)));
	json_object_set_new(o, "resolution", json_string("1m"));
	json_object_set_new(o, "evaluationSlackDuration",
			    duration_json(a->reset_ms));
	json_object_set_new(o, "suppression", alarm_json_suppression(a));
	json_object_set_new(o, "resourceGroup", str_or_null(a->resource_group));
	json_object_set_new(o, "lifecycleState", json_string("ACTIVE"));
	json_object_set_new(o, "timeCreated", jsonx_time(a->created_ms));
	json_object_set_new(o, "timeUpdated", jsonx_time(a->updated_ms));
	return o;
}
