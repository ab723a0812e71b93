/*
 * api.h - the REST API: routes requests to the modules, checks the bearer
 * token on every request but the few open ones, and turns refusals into JSON
 * errors (see docs/api.md).
 *
 * Each module brings its own table of routes (struct api_route) and
 * answers through api_reply() and friends; api.c holds the list of tables.
 * Who may call what is one table in api.c (access_rules): by default a GET
 * needs any token and every other method a full one; what each token may
 * do is in api_tokens.h.
 */
#ifndef MDS_API_H
#define MDS_API_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "daemon/config.h"
#include "util/fault.h"
#include "http/http_server.h"

struct deploy;
struct monitoring;
struct notifications;
struct functions;
struct autoscale;
struct logging;
struct gateway;
struct looplag;
struct oci_receiver;
struct alertmanager;
struct whsig_seen;
struct tokens;
struct uv_loop_s;

/* The daemon's modules, as the routes see them. Borrowed. */
struct api {
	struct deploy *deploy;
	struct monitoring *monitoring;
	struct notifications *notifications;
	struct functions *functions;
	struct autoscale *autoscale;
	struct logging *logging;
	struct oci_receiver *oci_receiver;
	const struct config *config;
	struct tokens *tokens;   /* who may call; see api_tokens.h */
	const char *cgroup_name; /* "v1", "v2" or "none", for /v1/health */
	struct gateway *gateway; /* for /metrics; may be NULL */
	struct looplag *looplag; /* for /metrics; may be NULL */
	struct alertmanager *alertmanager; /* NULL while stopping */
	double start_time_s;     /* the daemon's start, Unix seconds */
	struct whsig_seen *webhook_seen; /* receivers' replay check; owned
					    by the daemon */
	struct uv_loop_s *loop;  /* the loop the watches wait on; bodies of
				    API_PARSE_AWAY bytes or more are parsed
				    in its thread pool (NULL: on it) */
	unsigned nwatches;       /* watches waiting now (api_watch.h) */
};

/* A request body at least this large is parsed off the loop (a 50-item
 * PostMetricData with long dimensions is 220 KB: several ms of parsing). */
#define API_PARSE_AWAY (64 * 1024)

/* One request on its way through a route. */
struct api_call {
	struct api *api;
	struct http_req *req;
	json_t *body;   /* the parsed body of a POST or PUT; else NULL */
	char id[128];   /* the path's first '*' segment */
	char sub[128];  /* the path's second '*' segment, if any */
	char webhook_id[257]; /* the accepted webhook-id (WHSIG_ID_MAX + 1
				bytes), "" if none */
	int webhook_open; /* api_webhook_verify() left a transaction open */
};

typedef void api_route_fn(struct api_call *c);

struct api_route {
	const char *method;
	const char *pattern; /* '*' matches one path segment */
	api_route_fn *fn;
};

/* Answers with o (the reference is taken) and optional extra headers. */
void api_reply(struct api_call *c, int status, json_t *o,
	       const char *headers);
/* Answers {"code", "message", "field"}. */
void api_reply_error(struct api_call *c, int status, const char *code,
		     const char *field, const char *message);
/* Answers a refusal, choosing the status from f->err. */
void api_reply_fault(struct api_call *c, const struct fault *f);
/* Answers 200 with o, or the fault when o is NULL. */
void api_reply_or_fault(struct api_call *c, json_t *o, const struct fault *f);
/* For an answer that waited (a long-poll): true while the request's token
 * still works; else answers 401 and returns false. A token revoked or
 * rotated while the request waited gets nothing more. */
bool api_token_still_valid(struct api_call *c);

struct field;
struct policy;

/* The field tables of the request bodies (api/fields.h), for the check
 * of the docs against them. Static storage. */
const struct field *api_topic_fields(void);
const struct field *api_subscription_fields(void);
const struct field *api_function_fields(void);
/* The field tables of PUT /v1/topics/{id}, /v1/subscriptions/{id} and
 * /v1/functions/{name}. */
const struct field *api_topic_update_fields(void);
const struct field *api_subscription_update_fields(void);
const struct field *api_function_update_fields(void);
/* The field tables of a deployment's create and update bodies. */
const struct field *api_deployment_fields(void);
const struct field *api_deployment_update_fields(void);
const struct field *api_autoscale_policy_fields(void);

/*
 * Reads an autoscale policy: true (the default profile), or an object with
 * "profile" and overrides of its values. path names v in messages ("" for a
 * whole body, "autoscale" for a deployment's member). Returns 0, or
 * MDS_E_INVAL with f filled.
 */
int api_autoscale_policy_parse(const json_t *v, struct policy *p,
			       const char *path, struct fault *f);
/* A policy as the API shows it. A new reference. */
json_t *api_autoscale_policy_json(const struct policy *p);
/* Creates a deployment set up for autoscaling, all or nothing
 * (autoscale_create_deployment()); *out gets the setting's summary the API
 * shows, a new reference. Returns 0 or the fault's code. */
struct deploy_spec;
int api_autoscale_create_deployment(struct api *api,
				    const struct deploy_spec *spec,
				    const struct policy *p, char *id,
				    char *wr_id, json_t **out,
				    struct fault *f);

struct autoscale;

/* The autoscale function, or NULL after answering 503: it closes first
 * when the daemon stops, while the API still answers. */
struct autoscale *api_autoscale_module(struct api_call *c);

/* What the API shows instead of a secret environment value. */
#define API_SECRET_PLACEHOLDER "(secret)"

struct autoscale_removed;

/* What autoscale_teardown() deleted, as the API says it:
 * {"alarmIds": [...], "topicId", "subscriptionId"} (null for none). A new
 * reference. */
json_t *api_autoscale_removed(const struct autoscale_removed *r);

/*
 * For mdscale's own webhook receivers: when config's webhookReceiver
 * secret is set and enabled (the receiver's flag in that section) is not
 * 0, checks the request's Standard Webhooks signature, timestamp (within
 * toleranceSeconds) and id (never seen before, also before a restart).
 * Returns 0 to go on, or a negative code after answering 401 (unsigned,
 * bad signature, stale), 409 (a replayed id), 429 (too many ids inside
 * the window), 507 (the id could not be stored: a full device) or 503
 * (another store failure) with a JSON error.
 *
 * On 0 the id's record is written in a transaction left open, so that it
 * commits with the delivery's effect or not at all: the receiver acts,
 * then calls api_webhook_commit() before answering success, or
 * api_webhook_end(c, 0) when the action failed (the id is then not kept,
 * and a resend is taken). Both do nothing when nothing was verified.
 */
int api_webhook_verify(struct api_call *c, int enabled);
/* Ends the transaction of api_webhook_verify(): commits it when ok, else
 * rolls it back. Returns 0 or the store's error (nothing was kept). */
int api_webhook_end(struct api_call *c, int ok);
/* api_webhook_end(c, 1) that answers its failure: 507 for a full device,
 * 503 otherwise, saying that nothing was done. Returns 0 or the error
 * (then answered). */
int api_webhook_commit(struct api_call *c);

/* The http_server handler; arg is a struct api *. */
void api_handle(void *arg, struct http_req *req);

/* The route tables of the modules, each ending with a NULL method. */
extern const struct api_route deploy_routes[];
extern const struct api_route workreqs_routes[];
extern const struct api_route monitoring_routes[];

/* Answers a metrics query given as a JSON body (borrowed), as POST
 * /v1/metrics/query does; for the dashboard's GET form. */
void api_monitoring_query(struct api_call *c, const json_t *body);
extern const struct api_route notifications_routes[];
extern const struct api_route functions_routes[];
extern const struct api_route autoscale_routes[];
extern const struct api_route logs_routes[];
extern const struct api_route ui_routes[];
extern const struct api_route metrics_routes[];
extern const struct api_route oci_routes[];
/* The one table whose routes change state without the bearer token: the
 * OCI Notifications receiver, which checks its callers itself
 * (oci_receiver.h). */
extern const struct api_route oci_open_routes[];
extern const struct api_route alertmanager_routes[];
extern const struct api_route tokens_routes[];
/* The field table of POST /v1/tokens. Static storage. */
const struct field *api_token_fields(void);

#endif
