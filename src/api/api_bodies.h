/*
 * api_bodies.h - the readers of the request bodies that have more to them
 * than a field table (api/fields.h), reachable without a running daemon:
 * the routes use them, and so do the fuzzing harnesses of fuzz/, which
 * feed them arbitrary JSON. Each reads a parsed body (borrowed) exactly as
 * its route does and says what is wrong in a fault.
 */
#ifndef MDS_API_BODIES_H
#define MDS_API_BODIES_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "logging/logstore.h"
#include "util/fault.h"

struct autoscale_config;
struct deploy;
struct field;
struct monitoring_item;
struct notifications_subscription_spec;
struct oci_ns_message;
struct oci_receiver_settings;

/*
 * Reads a deployment's create body (POST /v1/deployments; update false) or
 * update body (PUT /v1/deployments/{id}; update true) into the spec the
 * deployments module would get, checks nothing beyond the body itself, and
 * releases it. The "autoscale" member of a create body is read as the
 * create route reads it (body is left unchanged). Returns 0, or MDS_E_INVAL
 * with f filled.
 */
int api_deployment_body_check(const json_t *body, bool update,
			      struct fault *f);

/*
 * Reads a deployment's import body (POST /v1/deployments/import) as the
 * route does, an OCI model deployment's OCID included, and releases it.
 * Returns 0, or MDS_E_INVAL with f filled.
 */
int api_deployment_import_check(const json_t *body, struct fault *f);

/*
 * Merges an autoscale configuration body (PUT
 * /v1/functions/autoscale/config) over c, which holds the configuration it
 * changes: a "profile" starts over from that profile, "shapes" replaces
 * the ladder. Returns 0, or MDS_E_INVAL with f filled (c may hold part of
 * the body then).
 */
int api_autoscale_config_parse(const json_t *body, struct autoscale_config *c,
			       struct fault *f);

/*
 * Reads an OCI receiver's settings body (PUT /v1/oci/receivers/{topic})
 * into s (strings borrowed from body). Returns 0, or MDS_E_INVAL with f
 * filled.
 */
int api_oci_settings_read(const json_t *body,
			  struct oci_receiver_settings *s, struct fault *f);

/*
 * Reads a subscription's create body (POST /v1/subscriptions) into spec,
 * which it initializes first, with the route's check that the protocol's
 * endpoint or command is there. Returns 0, or MDS_E_INVAL with f filled.
 * Either way release spec with api_subscription_body_free().
 */
int api_subscription_body_read(const json_t *body,
			       struct notifications_subscription_spec *spec,
			       struct fault *f);
void api_subscription_body_free(struct notifications_subscription_spec *spec);

/*
 * Reads a PostMetricData body (POST /v1/metrics): *items gets a new array
 * of *n items (each refused item's why says why; strings are borrowed from
 * body), *atomic whether batchAtomicity is ATOMIC. Returns 0, or
 * MDS_E_INVAL with f filled for a body that is refused whole (nothing
 * allocated). Free the items with api_metric_data_free().
 */
int api_metric_data_read(const json_t *body, struct monitoring_item **items,
			 size_t *n, bool *atomic, struct fault *f);

/* Releases what api_metric_data_read() allocated; NULL is fine. */
void api_metric_data_free(struct monitoring_item *items, size_t n);

/* The field table of a metrics query body (POST /v1/metrics/query).
 * Static storage. */
const struct field *api_metrics_query_fields(void);

/*
 * Reads an Alertmanager webhook payload (POST /v1/alertmanager/{topic})
 * as the receiver does, and releases it. Returns 0, or MDS_E_INVAL or
 * MDS_E_LIMIT with f filled.
 */
int api_alertmanager_payload_check(const json_t *body, struct fault *f);

/*
 * Reads what an OCI Notifications message's body (a JSON object) adds to
 * m, the message the receiver gets (POST /v1/oci/notifications/{topic}):
 * the confirmation link (url_header, the X-OCI-NS-ConfirmationURL header,
 * or "" when absent, must agree with the body's ConfirmationURL) and the
 * dedupe key; both borrowed from url_header and body. Returns 0, or
 * MDS_E_INVAL with f filled.
 */
int api_oci_message_read(const json_t *body, const char *url_header,
			 struct oci_ns_message *m, struct fault *f);

#define API_LOGS_VALUE_MAX 1024 /* bytes of one parameter, NUL included */

/* A GET /v1/logs query, read: the filter points into the strings. */
struct api_logs_filter {
	struct logstore_filter f;
	char source[API_LOGS_VALUE_MAX], text[API_LOGS_VALUE_MAX];
	char dep[API_LOGS_VALUE_MAX], inst[API_LOGS_VALUE_MAX],
		wr[API_LOGS_VALUE_MAX], alarm[API_LOGS_VALUE_MAX],
		fn[API_LOGS_VALUE_MAX], sub[API_LOGS_VALUE_MAX], stream[16];
	bool follow;
};

/*
 * Reads the query string of GET /v1/logs (query, without the '?') into q:
 * its filters, relative times counted back from now_ms, a deployment's
 * name resolved through d (NULL: taken as an id). Returns 0, or
 * MDS_E_INVAL with f filled (its field names the parameter).
 */
int api_logs_filter_parse(const char *query, struct deploy *d,
			  int64_t now_ms, struct api_logs_filter *q,
			  struct fault *f);

#endif
