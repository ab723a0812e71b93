/*
 * autoscale_int.h - what the files of the autoscale function share, and no
 * other module sees: the function's state, the per-deployment record, and
 * the calls autoscale.c (the message, the decision and its actions,
 * set-up and tear-down) makes into autoscale_record.c (the record, the
 * configuration and the scaling history in the store).
 */
#ifndef MDS_AUTOSCALE_INT_H
#define MDS_AUTOSCALE_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "notify/autoscale.h"

/* What an alarm message says to the function; strings borrowed from its
 * JSON. */
struct alarm_msg {
	const char *type, *title, *alarm_id, *dep_id;
};

/*
 * Reads the fields the function needs from an alarm message (msg, a parsed
 * JSON object, borrowed; the function refuses anything else before): type,
 * title, alarmMetaData[0].id and alarmMetaData[0].dimensions[0].resourceId.
 * Returns 0, or MDS_E_INVAL with why filled. Reached from outside through
 * any topic the function subscribes to.
 */
int autoscale_message_read(json_t *msg, struct alarm_msg *m, char *why,
			   size_t whysz);

struct autoscale {
	struct autoscale_env env;
};

/* ---- the per-deployment record ---- */

#define OWN_ALARMS_MAX 16

struct record {
	struct autoscale_config cfg; /* own_config ? its own : the default */
	bool own_config;
	struct policy_history hist;
	/* What mdscale made for the deployment, and only that is deleted
	 * with it. */
	char topic[64], subscription[64];
	char alarms[OWN_ALARMS_MAX][64];
	size_t nalarms;
	bool set_up; /* autoscale_setup() ran */
};

/* 0 if policy p may apply to deployment dep_id: a minInstances of 0 needs
 * a deployment that may go to zero when idle (deploy_check_idle_zero()).
 * Else MDS_E_INVAL (or
 * MDS_E_NOTFOUND) with f naming minInstances and why. */
int autoscale_check_floor(struct autoscale *a, const char *dep_id,
			  const struct policy *p, struct fault *f);

/* Reads the record of dep_id into r: the stored one, else an empty record
 * with the default configuration. Never fails; an unreadable record reads
 * as an empty one. Returns whether a record is stored. */
bool autoscale_record_load(struct autoscale *a, const char *dep_id,
			   struct record *r);

/* Stores r as the record of dep_id. Returns 0 or the store's error (and
 * logs it). */
int autoscale_record_save(struct autoscale *a, const char *dep_id,
			  const struct record *r);

/* Deletes the record of dep_id. Returns 0 or the store's error. */
int autoscale_record_forget(struct autoscale *a, const char *dep_id);

/* Adds alarm id to what r's deployment owns; ignored past OWN_ALARMS_MAX. */
void autoscale_record_add_alarm(struct record *r, const char *id);

/* Removes alarm id from what r's deployment owns, if it is there. */
void autoscale_record_drop_alarm(struct record *r, const char *id);

/* Returns the configuration as the store and the API show it (the
 * policy's fields and "shapes"): a new reference. */
json_t *autoscale_record_config_json(const struct autoscale_config *c);

/* Appends entry (a decision, not consumed) to dep_id's scaling history at
 * time t ms; a failed write is logged. */
void autoscale_record_decision(struct autoscale *a, const char *dep_id,
			       json_t *entry, int64_t t);

#endif
