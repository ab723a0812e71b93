/*
 * autoscale_config.h - what the autoscale function makes of its
 * configuration (struct autoscale_config, autoscale.h): the shape ladder it
 * names, and the line every decision's reason ends with. Pure helpers
 * inside the autoscale module.
 */
#ifndef MDS_AUTOSCALE_CONFIG_H
#define MDS_AUTOSCALE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/shape.h"
#include "notify/autoscale.h"

/* The ladder c names, in its order, from all (all itself when c names
 * none). Names not in all are left out. */
void autoscale_config_ladder(const struct shape_ladder *all,
			     const struct autoscale_config *c,
			     struct shape_ladder *l);

/*
 * Checks c's shapes against all: each one of all's, none twice. Returns
 * 0, or MDS_E_INVAL with the reason in diag.
 */
int autoscale_config_check_shapes(const struct shape_ladder *all,
				  const struct autoscale_config *c,
				  char *diag, size_t diagsz);

/* One line of what a decision was made by ("config (deployment): ..."),
 * for its reason; own says whether it is the deployment's own. Cut to
 * outsz. */
void autoscale_config_summary(const struct autoscale_config *c, bool own,
			      char *out, size_t outsz);

#endif
