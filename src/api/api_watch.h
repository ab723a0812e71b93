/*
 * api_watch.h - the GET side shared by the collections that are not
 * deployments (alarms, topics, subscriptions, functions): filters and order
 * as query parameters, as OCI's list calls take them (displayName or name,
 * lifecycleState, sortBy, sortOrder), and the long-poll watch=true.
 *
 * The version of an answer (resourceVersion) is a hash of its content: it
 * changes with every change a reader could see (a new alarm, a new
 * description, a subscription's pending deliveries), whatever module made
 * it. A watch with the resourceVersion of an earlier answer waits until the
 * answer differs, checking every API_WATCH_CHECK_MS on the loop (less
 * often when the checks are costly: they take at most about 5% of the
 * loop), or until timeoutSeconds (1 to 300, default 30) pass; the client
 * does not poll.
 */
#ifndef MDS_API_WATCH_H
#define MDS_API_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api/api.h"

#define API_WATCH_CHECK_MS 200   /* how often, at most, a waiting watch
				    looks again */
#define API_WATCHES_MAX 256      /* watches waiting at once, all routes */

/*
 * Renders what a GET answers: a list {"items": [...]} or one object (a new
 * reference), or NULL with f filled (not found, module not running).
 */
typedef json_t *api_render_fn(struct api_call *c, struct fault *f);

/* How one collection's list is filtered and sorted. */
struct api_list_spec {
	const char *name_param;  /* query parameter of the name filter;
				    NULL: none */
	const char *name_field;  /* the items' field it matches exactly */
	const char *const *sort_keys; /* fields sortBy takes besides
					 timeCreated; NULL-terminated */
};

/*
 * GET of a list: renders it, keeps the items whose name and
 * lifecycleState match the query (lifecycleState without regard to case),
 * sorts them by sortBy (timeCreated, the creation order, by default; a
 * field of sort_keys, compared as integers or strings; OCI's upper-case
 * spelling is accepted) and sortOrder (ASC, DESC), and answers with
 * "resourceVersion" added. An unknown sortBy or sortOrder is a 400 naming
 * the allowed values. With watch=true, waits as the header says.
 */
void api_list_answer(struct api_call *c, const struct api_list_spec *spec,
		     api_render_fn *render);

/*
 * GET of one object: answers what render gives; with watch=true, waits
 * as the header says, and answers "resourceVersion" in the object. An
 * object that is gone answers its 404 at once.
 */
void api_item_answer(struct api_call *c, api_render_fn *render);

/*
 * Reads query parameter key of c into out (empty when absent). Returns
 * true, or false with f filled (MDS_E_INVAL) when the value does not fit.
 */
bool api_query_param(const struct api_call *c, const char *key, char *out,
		     size_t outsz, struct fault *f);

/*
 * Reads watch=true, resourceVersion=N and timeoutSeconds=T. Returns 1
 * when the answer must wait for a version after N (*since and
 * *timeout_ms set), 0 to answer at once, or MDS_E_INVAL with f filled.
 */
int api_watch_parse(const struct api_call *c, uint64_t *since,
		    uint32_t *timeout_ms, struct fault *f);

/* Whether the request asks only for its checks (dryRun=true): the route
 * then changes nothing and answers 200 {"dryRun": true}, or the refusal
 * the real call would give. */
bool api_dry_run(const struct api_call *c);

/* Answers 200 {"dryRun": true}. */
void api_reply_dry_run(struct api_call *c);

#endif
