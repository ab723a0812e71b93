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
	FIELD_END
};

/* Each field's bit in the spec's given mask, in the table's order. */
static const unsigned given_bits[] = {
	MONITORING_ALARM_DISPLAY_NAME, MONITORING_ALARM_NAMESPACE,
	MONITORING_ALARM_QUERY, MONITORING_ALARM_SEVERITY,
	MONITORING_ALARM_PENDING, MONITORING_ALARM_REPEAT,
	MONITORING_ALARM_DESTINATIONS, MONITORING_ALARM_BODY,
	MONITORING_ALARM_FORMAT, MONITORING_ALARM_ENABLED,
	MONITORING_ALARM_COMPARTMENT, MONITORING_ALARM_METRIC_COMPARTMENT,
};

/* The fields that take null for "none". */
static const char *const nullable[] = {
	"repeatNotificationDuration", "destinations", "body",
	"compartmentId", "metricCompartmentId",
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
}

int alarm_json_read(const json_t *body, struct alarm_json_spec *out,
		    struct fault *f)
{
	json_t *rest;
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
	json_object_set_new(o, "lifecycleState", json_string("ACTIVE"));
	json_object_set_new(o, "timeCreated", jsonx_time(a->created_ms));
	json_object_set_new(o, "timeUpdated", jsonx_time(a->updated_ms));
	return o;
}
