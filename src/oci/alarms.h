/*
 * alarms.h - the recipe's scale-down alarms, kept in OCI Monitoring for
 * `oci` deployments.
 *
 * After a scale-up the recipe creates the matching scale-down alarm
 * (model_deployment_low_cpu or _low_mem) for the deployment, unless one
 * exists, copying the firing alarm's compartment, metric compartment,
 * namespace, severity and destinations; at the floor it deletes the
 * scale-down alarm that fired. For an `oci` deployment these alarms live
 * in OCI Monitoring (its alarms fire through OCI Notifications to the
 * daemon's receiver), so these calls go to the Monitoring API:
 * GetAlarm, ListAlarms (by compartment and display name), CreateAlarm,
 * DeleteAlarm.
 */
#ifndef MDS_OCI_ALARMS_H
#define MDS_OCI_ALARMS_H

#include <stddef.h>

struct oci_client;

/* The scale-down alarm wanted; strings are copied. */
struct oci_alarm_want {
	const char *title;           /* "model_deployment_low_cpu" */
	const char *deployment_id;   /* the OCID its query names */
	const char *firing_alarm_id; /* the alarm whose copy it is */
	const char *query;           /* the MQL query */
	const char *body;            /* the alarm's message body; may be
					NULL */
	const char *repeat;          /* repeatNotificationDuration; NULL:
					"PT5M" */
};

/* Result: rc 0 and the alarm's OCID (created 1 if it was made now, 0 if
 * one existed), or a negative MDS_E_* with diag. */
typedef void oci_alarm_done_fn(void *arg, int rc, const char *alarm_id,
			       int created, const char *diag);

/*
 * Ensures the scale-down alarm exists. monitoring is the Monitoring base
 * URL (oci_endpoint("telemetry", region, override)). Returns 0 and calls
 * done later on the loop, or MDS_E_INVAL for a missing field.
 */
int oci_alarm_ensure(struct oci_client *c, const char *monitoring,
		     const struct oci_alarm_want *w, oci_alarm_done_fn *done,
		     void *arg);

/* Deletes alarm_id. done gets rc 0 (also when it was already gone) or a
 * negative MDS_E_*. Returns 0 or MDS_E_INVAL. */
int oci_alarm_delete(struct oci_client *c, const char *monitoring,
		     const char *alarm_id, oci_alarm_done_fn *done, void *arg);

#endif
