/*
 * autoscale_config.h - the autoscale function's configuration, inside the
 * autoscale module: what it decides by, as an OCI function's configuration
 * (MAX_INSTANCES, the thresholds, VM_SHAPES, the cooldowns), and its JSON
 * form for the API and the store.
 */
#ifndef MDS_AUTOSCALE_CONFIG_H
#define MDS_AUTOSCALE_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/policy.h"
#include "core/shape.h"
#include "util/fault.h"

/* The policy and the shape ladder: names of the daemon's shapes, small to
 * large; none means the daemon's whole ladder. */
struct fn_config {
	struct policy policy;
	char shapes[SHAPE_LADDER_MAX][SHAPE_NAME_MAX + 1];
	size_t nshapes;
};

/* The policy's fields as JSON, with "profile"; a new reference. */
json_t *autoscale_policy_json(const struct policy *p);

/* The configuration as JSON: the policy's fields and "shapes"; a new
 * reference. */
json_t *fn_config_json(const struct fn_config *c);

/*
 * Applies spec (an object) over c: "profile" starts over from that
 * profile, the other fields override; "shapes" must name shapes of all,
 * each once. Validates the result. Returns 0, or MDS_E_INVAL with f filled
 * (c may be half changed then: apply to a copy).
 */
int fn_config_apply(const struct shape_ladder *all, json_t *spec,
		    struct fn_config *c, struct fault *f);

/* The ladder c names, in its order, from all (all itself when c names
 * none). */
void fn_config_ladder(const struct shape_ladder *all,
		      const struct fn_config *c, struct shape_ladder *l);

/* One line of what a decision was made by ("config (deployment): ..."),
 * for its reason; own says whether it is the deployment's own. */
void fn_config_summary(const struct fn_config *c, bool own, char *out,
		       size_t outsz);

#endif
