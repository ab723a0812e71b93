/*
 * api.h - the REST API: routes requests to the modules, checks the bearer
 * token on every request that changes state, and turns refusals into JSON
 * errors (see docs/api.md).
 */
#ifndef MDS_API_H
#define MDS_API_H

#include "config.h"
#include "http_server.h"

struct deploy;

struct api {
	struct deploy *deploy;
	const struct config *config;
	const char *token;       /* the bearer token */
	const char *cgroup_name; /* "v1", "v2" or "none", for /v1/health */
};

/* The http_server handler; arg is a struct api *. */
void api_handle(void *arg, struct http_req *req);

#endif
