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
#include "core/rules.h"
#include "core/shape.h"
#include "util/fault.h"

struct deploy_spec;

struct autoscale;
struct store;
struct deploy;
struct monitoring;
struct notifications;
struct functions;
struct deploy_view;

/*
 * Scale-down alarms of deployments whose alarms run on their platform (an
 * `oci` deployment's run in OCI Monitoring): for a deployment of backend,
 * the function hands them here instead of creating or deleting them in
 * mdscale's monitoring. Both calls only start the work; the platform's
 * answer is logged. ref is the deployment's platform target (an OCID).
 */
struct autoscale_platform_alarms {
	const char *backend; /* ops->name, "oci"; NULL: none */
	void (*ensure)(void *arg, const char *ref, const char *title,
		       const char *firing_alarm_id, const char *query,
		       const char *body);
	void (*remove)(void *arg, const char *alarm_id);
	void *arg;
};

struct autoscale_env {
	struct store *store;
	struct deploy *deploy;
	struct monitoring *monitoring;
	struct notifications *notifications;
	struct functions *functions;
	const struct config *config;
	struct autoscale_platform_alarms platform_alarms;
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
 * policy_validate() by the caller): the alarms, a topic, the subscription
 * and the record, in one store transaction. Returns 0 and what it made in
 * *out, or a negative code with f filled (the store's refusals naming the
 * autoscale setting) and nothing left behind.
 */
int autoscale_setup(struct autoscale *a, const char *deployment_id,
		    const struct policy *p, struct autoscale_chain *out,
		    struct fault *f);

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
 * and the deployment's record, in one store transaction: all or nothing;
 * keeps the history. Returns 0 and what went in *out, or the store's
 * refusal (MDS_E_NOSPACE, MDS_E_DB) with f naming the autoscale setting,
 * and then the chain is as it was and keeps working.
 */
int autoscale_teardown(struct autoscale *a, const char *deployment_id,
		       struct autoscale_removed *out, struct fault *f);

/*
 * Deletes a deployment with its chain: autoscale_teardown() and
 * deploy_delete() in one store transaction, all or nothing. Returns 0,
 * the deletion's work request id in wr_id (DEPLOY_ID_MAX bytes) and what
 * of the chain went in *out; or deploy_delete()'s refusal, or the store's
 * (MDS_E_NOSPACE, MDS_E_DB, MDS_E_IO) with f naming the deployment, and
 * then the deployment and its chain are as they were and keep working.
 * Runs no step of the work request: the deployment's tick does, later.
 */
int autoscale_delete_deployment(struct autoscale *a, const char *deployment_id,
				char *wr_id, struct autoscale_removed *out,
				struct fault *f);

/*
 * Creates a deployment with its chain: deploy_create() and
 * autoscale_setup() in one store transaction, all or nothing. Returns 0
 * with the deployment's id in id and its work request's in wr_id (both
 * DEPLOY_ID_MAX bytes) and the chain in *out; or either one's refusal, or
 * the store's (MDS_E_NOSPACE, MDS_E_DB, MDS_E_IO) with f naming the
 * deployment, and then nothing of either was made: no deployment, no
 * instance started, no alarm, topic or subscription.
 */
int autoscale_create_deployment(struct autoscale *a,
				const struct deploy_spec *spec,
				const struct policy *p, char *id, char *wr_id,
				struct autoscale_chain *out, struct fault *f);

/*
 * Replaces the deployment's chain with one for policy p, keeping when
 * each move last happened (the cooldowns), the deployment's shape ladder,
 * and its topic and subscription when they are still there (whichever is
 * missing is made again). The alarms mdscale made for it go and p's come,
 * with the new record, in one store transaction: all or nothing. Fills
 * *gone with the alarms deleted; returns as autoscale_setup(), the store's
 * refusals (MDS_E_NOSPACE, MDS_E_DB) with f naming the autoscale setting,
 * and then the chain in force is as it was.
 */
int autoscale_replace(struct autoscale *a, const char *deployment_id,
		      const struct policy *p, struct autoscale_removed *gone,
		      struct autoscale_chain *out, struct fault *f);

/*
 * The function's configuration (docs/autoscale.md), as an OCI function
 * has one: the policy (MAX_INSTANCES, the thresholds, the cooldowns) and
 * the shape ladder (VM_SHAPES): names of the daemon's shapes, small to
 * large; none means the daemon's whole ladder.
 */
struct autoscale_config {
	struct policy policy;
	char shapes[SHAPE_LADDER_MAX][SHAPE_NAME_MAX + 1];
	size_t nshapes;
};

/* A configuration in force, and whose it is. */
struct autoscale_config_view {
	char deployment_id[64]; /* "" for the default */
	bool own;               /* the deployment's own, not the default */
	struct autoscale_config config;
};

/*
 * The default configuration (deployment_id NULL), which every deployment
 * without its own uses, or the one in force for a deployment (by id or
 * name). Returns 0, or MDS_E_NOTFOUND (f filled).
 */
int autoscale_config_get(struct autoscale *a, const char *deployment_id,
			 struct autoscale_config_view *out, struct fault *f);
/*
 * Checks c as autoscale_config_set() would, changing nothing: the policy
 * (policy_validate()), that every shape is one of the daemon's, once, and
 * for a deployment's own configuration that a minInstances of 0 is one
 * its backend can hold. Returns 0, or MDS_E_INVAL / MDS_E_NOTFOUND with f
 * filled.
 */
int autoscale_config_check(struct autoscale *a, const char *deployment_id,
			   const struct autoscale_config *c, struct fault *f);
/*
 * Stores c as the default (deployment_id NULL) or as the deployment's own
 * configuration, after autoscale_config_check(). Returns 0, or MDS_E_INVAL /
 * MDS_E_NOTFOUND / MDS_E_DB with f filled and nothing changed. Touches no
 * alarm, topic or subscription.
 */
int autoscale_config_set(struct autoscale *a, const char *deployment_id,
			 const struct autoscale_config *c, struct fault *f);
/* Makes a deployment use the default configuration again. */
int autoscale_config_reset(struct autoscale *a, const char *deployment_id,
			   struct fault *f);

/*
 * Calls fn for each of the deployment's decisions, oldest first: decision
 * is the autoscale function's result as it was recorded (JSON object
 * text, the function's output format), borrowed for the call. Returns 0,
 * or MDS_E_NOTFOUND (no such deployment; f filled).
 */
int autoscale_history_each(struct autoscale *a, const char *deployment_id,
			   void (*fn)(void *arg, const char *decision),
			   void *arg, struct fault *f);

/*
 * Carries out the instance count want (within the policy's bounds) that
 * the mdscale rule decided for dep, which is ACTIVE with no work request
 * running: asks for the update (deploy_change(): zero downtime, draining
 * on the way in), notes the move for the record, and writes the decision
 * down in the scaling history with what the rule saw (seen) and why (a
 * short reason). Returns 0 with the work request's id in wr_id
 * (DEPLOY_ID_MAX), or deploy_change()'s error with f filled (the refusal
 * is recorded as an action NONE; nothing else changes).
 */
int autoscale_rule_move(struct autoscale *a, const struct deploy_view *dep,
			uint32_t want, const struct rule_obs *seen,
			const char *why, char *wr_id, struct fault *f);

/* A deployment's policy and what was set up for it. */
struct autoscale_state {
	char deployment_id[64];
	struct policy policy;    /* the configuration's policy in force */
	bool own_config;         /* the deployment's own, not the default */
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
