/*
 * oci_receiver.h - the receiver for OCI Notifications HTTPS subscriptions.
 *
 * OCI Monitoring alarms for `oci` deployments fire in OCI; OCI
 * Notifications delivers them to a CUSTOM_HTTPS subscription whose endpoint
 * is mdscale's POST /v1/oci/notifications/{topic}. This module decides what
 * such a POST may do, per local topic:
 *
 *  - Off by default: a topic accepts nothing until enabled.
 *  - The first message of a subscription is its confirmation (header
 *    X-OCI-NS-MessageType: SubscriptionConfirmation, the link in
 *    X-OCI-NS-ConfirmationURL and in the body's ConfirmationURL). The
 *    receiver fetches that link (an https URL on an OCI host of the
 *    subscription's own path), and only when OCI answers 2xx does the
 *    subscription become the topic's confirmed one. One subscription per
 *    topic: a confirmation from another one is refused until the topic is
 *    reset.
 *  - Every later message must carry the confirmed subscription's id
 *    (X-OCI-NS-SubscriptionId) and, when present, its OCI topic
 *    (X-OCI-NS-TopicOcid); it is then published on the local topic, exactly
 *    as a local alarm message, so its subscriptions (the autoscale function)
 *    get it.
 *
 * The settings and the confirmed subscription are kept in the store.
 */
#ifndef MDS_OCI_RECEIVER_H
#define MDS_OCI_RECEIVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/fault.h"

struct oci_receiver;
struct store;
struct httpc;
struct notifications;

struct oci_receiver_env {
	uv_loop_t *loop;
	struct store *store;
	struct httpc *httpc;       /* fetches confirmation URLs */
	struct notifications *notifications;
	const char *ca_file;       /* CA bundle for those fetches; NULL:
				    * the system's (copied) */
};

/* The default for the hosts a confirmation URL may point at. */
#define OCI_RECEIVER_HOST_SUFFIX ".oraclecloud.com"

/* What an operator sets for one topic. Strings are borrowed. */
struct oci_receiver_settings {
	int enabled;
	const char *subscription_id; /* accept only this one; NULL/"": the
				      * first to confirm */
	const char *host_suffix;     /* NULL: OCI_RECEIVER_HOST_SUFFIX; a
				      * leading '.' matches subdomains, else
				      * the host must equal it */
};

/* One topic's receiver as shown by the API. Strings are borrowed until the
 * next call into the module. */
struct oci_receiver_view {
	const char *topic_id;
	int enabled;
	const char *state;          /* DISABLED, WAITING_FOR_CONFIRMATION,
				     * CONFIRMING, CONFIRMED */
	const char *subscription_id;  /* the confirmed one, or "" */
	const char *pinned_subscription_id; /* or "" */
	const char *oci_topic_id;   /* of the confirmed subscription, or "" */
	const char *host_suffix;
	int64_t confirmed_ms;       /* 0 when not confirmed */
	const char *last_error;     /* the last refusal, or "" */
	uint64_t accepted, refused; /* messages since the daemon started */
};

/* A POST to the receiver. Strings are borrowed; NULL or "" when absent. */
struct oci_ns_message {
	const char *topic_id;         /* from the path */
	const char *message_type;     /* X-OCI-NS-MessageType */
	const char *subscription_id;  /* X-OCI-NS-SubscriptionId */
	const char *topic_ocid;       /* X-OCI-NS-TopicOcid */
	const char *confirmation_url; /* header or body ConfirmationURL */
	const char *body;             /* the message, a JSON object */
	const char *dedupe_key;       /* the alarm message's dedupeKey */
};

/*
 * Opens the receiver and loads its topics from the store. Returns 0 and a
 * new receiver in *out, or MDS_E_DB with diag. Close it with
 * oci_receiver_close().
 */
int oci_receiver_open(const struct oci_receiver_env *env,
		      struct oci_receiver **out, char *diag, size_t diagsz);

/*
 * Answers every confirmation still in flight (MDS_E_UNAVAIL) at once,
 * cancels their fetches and frees the receiver once they have ended (the
 * caller keeps running the loop, and closes httpc after this). NULL is
 * accepted.
 */
void oci_receiver_close(struct oci_receiver *r);

/*
 * Enables, disables or changes a topic's receiver. A new pinned
 * subscription other than the confirmed one drops the confirmation.
 * Returns 0, MDS_E_NOTFOUND for an unknown topic, MDS_E_INVAL for a bad
 * setting, MDS_E_DB when it could not be stored (nothing changes); f says
 * which.
 */
int oci_receiver_configure(struct oci_receiver *r, const char *topic_id,
			   const struct oci_receiver_settings *s,
			   struct fault *f);

/* Forgets a topic's receiver and its confirmation. Returns 0,
 * MDS_E_NOTFOUND, MDS_E_CONFLICT while a confirmation runs, MDS_E_DB. */
int oci_receiver_forget(struct oci_receiver *r, const char *topic_id,
			struct fault *f);

/* Fills v for a topic. Returns 0, or MDS_E_NOTFOUND when the topic has no
 * receiver settings. */
int oci_receiver_get(struct oci_receiver *r, const char *topic_id,
		     struct oci_receiver_view *v, struct fault *f);

/* Calls fn for every topic with receiver settings, oldest first. */
void oci_receiver_each(struct oci_receiver *r,
		       void (*fn)(void *arg, const struct oci_receiver_view *v),
		       void *arg);

/* Called once when a confirmation ends: f is NULL when OCI accepted it,
 * else why not; subscription_id is the subscription's. */
typedef void oci_receiver_done_fn(void *arg, const struct fault *f,
				  const char *subscription_id);

/* oci_receiver_post() started a confirmation; done will be called. */
#define OCI_RECEIVER_PENDING 1

/*
 * Handles one POST. For an alarm message from the confirmed subscription:
 * publishes it on the topic, copies the new message's id into message_id
 * (idsz bytes) and returns 0. For a confirmation that passes the checks:
 * starts fetching its URL and returns OCI_RECEIVER_PENDING; done(arg, ...)
 * runs exactly once, later, on the loop. Otherwise returns the refusal with
 * f filled and changes nothing: MDS_E_NOTFOUND (no such topic, or its
 * receiver is not enabled), MDS_E_UNAUTH (not from the confirmed
 * subscription, or none is confirmed yet), MDS_E_INVAL (a malformed
 * confirmation), MDS_E_CONFLICT (a confirmation is already running),
 * MDS_E_LIMIT, MDS_E_DB or MDS_E_UNAVAIL from publishing.
 */
int oci_receiver_post(struct oci_receiver *r, const struct oci_ns_message *m,
		      char *message_id, size_t idsz, struct fault *f,
		      oci_receiver_done_fn *done, void *arg);

#endif
