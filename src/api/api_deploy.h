/*
 * api_deploy.h - the REST API's JSON shapes of deployments and work
 * requests (docs/api.md), built from the deployments module's views, for
 * the API modules that answer with them (/metrics, /v1/top).
 */
#ifndef MDS_API_DEPLOY_H
#define MDS_API_DEPLOY_H

#include <jansson.h>

#include "deploy/deploy.h"

/* Returns {"items": [...]} of the live deployments (name NULL: all, else
 * only that displayName). A new reference. */
json_t *api_deploy_list_json(struct deploy *d, const char *name);

/* Returns {"items": [...]} of the work requests of deployment key (NULL:
 * all), newest first. A new reference. */
json_t *api_deploy_workreqs_json(struct deploy *d, const char *key);

/* Returns the JSON of a deployment view. A new reference. */
json_t *api_deploy_view_json(const struct deploy_view *v);

/* Returns the JSON of work request id (running or finished), a new
 * reference, or NULL with f filled (MDS_E_NOTFOUND). */
json_t *api_deploy_workreq_by_id(struct deploy *d, const char *id,
				 struct fault *f);

/* Returns the JSON of a work request view. A new reference. */
json_t *api_deploy_workreq_json(const struct deploy_workreq_view *v);

#endif
