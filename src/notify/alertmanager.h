/*
 * alertmanager.h - Alertmanager's webhook as a source of OCI alarm
 * messages.
 *
 * A Prometheus alert rule, routed by Alertmanager to
 * POST /v1/alertmanager/{topic}, becomes an alarm message on that topic in
 * OCI's format (core/amalert.h), so the autoscale function and every other
 * subscription act on it as on an alarm of mdscale's own monitoring. Which
 * alerts are firing, per topic, is kept in the store: a webhook that
 * repeats a firing alert is a REPEAT, across restarts of the daemon too.
 */
#ifndef MDS_ALERTMANAGER_H
#define MDS_ALERTMANAGER_H

#include <stddef.h>

#include "core/amalert.h"
#include "util/fault.h"

struct alertmanager;
struct store;
struct notifications;

/* Borrowed; both must outlive the module. */
struct alertmanager_env {
	struct store *store;
	struct notifications *notifications;
};

/* Returns a new module; free it with alertmanager_close(). */
struct alertmanager *alertmanager_open(const struct alertmanager_env *env);
/* NULL is fine. */
void alertmanager_close(struct alertmanager *am);

/* What became of one alert of a webhook. */
struct alertmanager_outcome {
	int published;              /* 1: a message went out, 0: nothing to
				       say (resolved, and not firing here) */
	enum alarm_event_type type; /* if published */
	char message_id[40];        /* if published */
};

/*
 * Publishes the message of every alert that is an event (see
 * amalert_decide()) on topic_id, in order, each with the fingerprint as its
 * dedupe key, and records the topic's firing alerts in the store.
 * resource_label names the label whose value is the message's resourceId.
 * Fills out[i] for alerts[i] and returns 0. Refusals, with f filled and
 * nothing changed: MDS_E_NOTFOUND for an unknown topic, MDS_E_INVAL for an
 * alert without an alertname or resource_label label, MDS_E_LIMIT when the
 * topic would track more than AMALERT_MAX_FIRING firing alerts. The
 * messages and the new state are stored in one transaction (inside the
 * caller's, if one is open), and the messages go out only once it is
 * committed: when a message cannot be stored (notifications_publish_id()'s
 * errors) or the state cannot (MDS_E_NOSPACE for a full device, MDS_E_DB),
 * nothing is sent and nothing recorded, so the same webhook again
 * (Alertmanager retries on a 5xx) is judged afresh and sends each message
 * once.
 */
int alertmanager_receive(struct alertmanager *am, const char *topic_id,
			 const char *resource_label,
			 const struct amalert *alerts, size_t n,
			 struct alertmanager_outcome *out, struct fault *f);

#endif
