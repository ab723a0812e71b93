/*
 * autoscale.h - the built-in autoscale function and its per-deployment
 * policy.
 *
 * Registered as the function "autoscale": it reads an OCI alarm message,
 * asks core/policy.h what to do with the deployment the message names, asks
 * the deployments module for the update, creates the matching scale-down
 * alarm after a scale-up (no duplicates) and deletes it at the floor, and
 * records every decision with its reason in the deployment's scaling
 * history. autoscale_setup() wires a deployment end to end: the high-cpu
 * and high-mem alarms, a topic, and a subscription of this function to it.
 */
#ifndef MDS_AUTOSCALE_H
#define MDS_AUTOSCALE_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/config.h"
#include "core/policy.h"
#include "util/fault.h"

struct autoscale;
struct store;
struct deploy;
struct monitoring;
struct notifications;
struct functions;

struct autoscale_env {
	struct store *store;
	struct deploy *deploy;
	struct monitoring *monitoring;
	struct notifications *notifications;
	struct functions *functions;
	const struct config *config;
};

/* Opens the module and registers the "autoscale" function. */
int autoscale_open(const struct autoscale_env *env, struct autoscale **out,
		   char *diag, size_t diagsz);
void autoscale_close(struct autoscale *a);

/* What autoscale_setup() made for a deployment. */
struct autoscale_chain {
	char topic_id[64];
	char subscription_id[64];
	char alarm_ids[2][64]; /* high cpu, high memory */
	size_t nalarms;
};

/*
 * Sets up autoscaling of a deployment with policy p (checked with
 * policy_validate() by the caller): the alarms, a topic, the subscription.
 * Returns 0 and what it made in *out, or a negative code with f filled
 * (nothing left behind).
 */
int autoscale_setup(struct autoscale *a, const char *deployment_id,
		    const struct policy *p, struct autoscale_chain *out,
		    struct fault *f);

/* Removes what autoscale_setup() and the function created for a
 * deployment (alarms, subscription, topic, policy); keeps the history. */
void autoscale_teardown(struct autoscale *a, const char *deployment_id);

/*
 * Calls fn for each of the deployment's decisions, oldest first: decision
 * is the autoscale function's result as it was recorded (JSON object
 * text, the function's output format), borrowed for the call. Returns 0,
 * or MDS_E_NOTFOUND (no such deployment; f filled).
 */
int autoscale_history_each(struct autoscale *a, const char *deployment_id,
			   void (*fn)(void *arg, const char *decision),
			   void *arg, struct fault *f);

/* A deployment's policy and what was set up for it. */
struct autoscale_state {
	char deployment_id[64];
	struct policy policy;
	bool set_up;             /* autoscale_setup() made the chain */
	char topic_id[64];
	char subscription_id[64];
	struct policy_history hist; /* when each move last happened */
};

/* Fills *out for a deployment (by id or name). Returns 0, or
 * MDS_E_NOTFOUND (f filled). */
int autoscale_get(struct autoscale *a, const char *deployment_id,
		  struct autoscale_state *out, struct fault *f);

#endif
