/*
 * alarm_json.h - an alarm's JSON shape, in one place for the API and the
 * store: a body read into a spec (through the field table, api/fields.h),
 * and an alarm written as the API shows it (which is also what the store
 * keeps). See docs/api.md for the shape.
 */
#ifndef MDS_ALARM_JSON_H
#define MDS_ALARM_JSON_H

#include <jansson.h>

#include "core/alarm.h"
#include "core/mql.h"
#include "monitoring/monitoring.h"
#include "util/fault.h"

struct field;

/* The suppression object of a body. */
struct alarm_json_suppression {
	int64_t from_ms, until_ms;
	char description[ALARM_MAX_BODY + 1];
};

/* A spec read from JSON, and the storage its members point into. */
struct alarm_json_spec {
	struct monitoring_alarm_spec spec;
	char display_name[ALARM_MAX_STR + 1];
	char namespace[ALARM_MAX_STR + 1];
	char query[MQL_MAX_QUERY + 1];
	char body[ALARM_MAX_BODY + 1];
	char compartment_id[ALARM_MAX_STR + 1];
	char metric_compartment_id[ALARM_MAX_STR + 1];
	char **destinations;
	int severity, message_format;
	bool is_enabled;
	int64_t pending_ms, repeat_ms;
	char notification_title[ALARM_MAX_STR + 1];
	bool per_dimension;
	int version, resolution;
	int64_t slack_ms;
	struct alarm_json_suppression suppression;
	char resource_group[ALARM_MAX_STR + 1];
};

/*
 * Reads an alarm's POST or PUT body (borrowed) into *out, which must be
 * zeroed: the fields present go into out->spec.given. Only the shape is
 * checked here (fields, types, lengths, ISO-8601 durations); the module
 * checks the rest. Returns 0, or MDS_E_INVAL with f filled. Release with
 * alarm_json_spec_free() either way.
 */
int alarm_json_read(const json_t *body, struct alarm_json_spec *out,
		    struct fault *f);

/* Returns the alarm body's field table (for the reference docs' test). */
const struct field *alarm_json_fields(void);

/* Frees what alarm_json_read() allocated in s (not s). */
void alarm_json_spec_free(struct alarm_json_spec *s);

/* Returns the alarm's suppression object, or JSON null when it has none:
 * a new reference. */
json_t *alarm_json_suppression(const struct monitoring_alarm *a);

/* Returns the alarm as the API shows it: a new reference. */
json_t *alarm_json_new(const struct monitoring_alarm *a);

#endif
