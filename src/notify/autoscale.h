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

#include <jansson.h>
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

/*
 * Reads a policy from the API's JSON: true, or an object with "profile"
 * ("default" or "recipe") and any overrides. Fills p and returns 0, or a
 * negative code with f filled.
 */
int autoscale_policy_parse(json_t *spec, struct policy *p, struct fault *f);

/*
 * Sets up autoscaling of a deployment with policy p: the alarms, a topic,
 * the subscription. Returns 0 and a summary in *out, or a negative code
 * with f filled (nothing left behind).
 */
int autoscale_setup(struct autoscale *a, const char *deployment_id,
		    const struct policy *p, json_t **out, struct fault *f);

/* What autoscale_teardown() deleted; "" for none. */
#define AUTOSCALE_REMOVED_MAX 16
struct autoscale_removed {
	char alarm_ids[AUTOSCALE_REMOVED_MAX][64];
	size_t nalarms;
	char topic_id[64], subscription_id[64];
};

/*
 * Removes what autoscale_setup() and the function created for a
 * deployment (the alarms, subscription and topic it recorded as its own
 * when it made them: never an alarm the user made, whatever its title)
 * and the deployment's record; keeps the history. Fills *out.
 */
void autoscale_teardown(struct autoscale *a, const char *deployment_id,
			struct autoscale_removed *out);

/*
 * autoscale_teardown() then autoscale_setup() with policy p, keeping when
 * each move last happened (the cooldowns) and the deployment's shape
 * ladder. Fills *gone with what the teardown deleted; returns as
 * autoscale_setup().
 */
int autoscale_replace(struct autoscale *a, const char *deployment_id,
		      const struct policy *p, struct autoscale_removed *gone,
		      json_t **out, struct fault *f);

/*
 * The function's configuration (docs/autoscale.md): the policy fields and
 * "shapes", the ladder. With deployment_id NULL the default, which every
 * deployment without its own uses. get returns {"source", "config",
 * "deploymentId"?} (a new reference) or NULL with f filled; set merges
 * spec over the configuration in force ("profile" starts over from that
 * profile), validates, stores, and returns 0 with the new one in *out, or
 * a negative code with f filled and nothing changed; reset makes the
 * deployment use the default again. None touches alarms, topics or
 * subscriptions.
 */
json_t *autoscale_config_get(struct autoscale *a, const char *deployment_id,
			     struct fault *f);
int autoscale_config_set(struct autoscale *a, const char *deployment_id,
			 json_t *spec, json_t **out, struct fault *f);
int autoscale_config_reset(struct autoscale *a, const char *deployment_id,
			   struct fault *f);

/* {"items": [...]} of the deployment's decisions, oldest first. */
json_t *autoscale_history(struct autoscale *a, const char *deployment_id,
			  struct fault *f);

/* The deployment's policy and what was set up for it. */
json_t *autoscale_get(struct autoscale *a, const char *deployment_id,
		      struct fault *f);

#endif
