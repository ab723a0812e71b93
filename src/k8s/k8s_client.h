/*
 * k8s_client.h - calls to a Kubernetes API server on the daemon's loop.
 *
 * JSON requests and answers over the shared HTTP client (src/http/httpc),
 * authenticated as the k8s_cred says (bearer token, client certificate,
 * exec plugin), trusting the CA it names. An answer other than 2xx is read
 * as a v1 Status and turned into an MDS_E_* code and one readable message
 * (for a 403: which verb on which resource is missing). Watch streams are
 * read line by line, one JSON event per line; events are handed over on
 * the loop, outside libcurl.
 */
#ifndef MDS_K8S_CLIENT_H
#define MDS_K8S_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

struct httpc;
struct k8s_cred;
struct k8s_client;
struct k8s_stream;

#define K8S_MSG_MAX 512
#define K8S_MAX_BODY (8 * 1024 * 1024)  /* one answer (a pod list) */
#define K8S_MAX_EVENT (1024 * 1024)     /* one watch event line */
#define K8S_MAX_QUEUED 4096             /* events parsed, not yet handed */

struct k8s_response {
	int error;       /* 0, or MDS_E_*: UNAUTH (401, 403), NOTFOUND (404),
			    CONFLICT (409), INVAL (400, 415, 422), UNAVAIL
			    (429, 5xx, no connection), TIMEOUT, IO... */
	long status;     /* HTTP status; 0 when there was no answer */
	json_t *obj;     /* the answer (borrowed: valid during the callback;
			    take a reference to keep it), or NULL */
	const char *message; /* "" on success, else one line for a person */
};

typedef void k8s_done_fn(void *arg, const struct k8s_response *r);

/* A watch event: type "ADDED", "MODIFIED", "DELETED", "BOOKMARK" or
 * "ERROR" (object is then a Status; 410 means relist). object borrowed. */
typedef void k8s_event_fn(void *arg, const char *type, json_t *object);

/*
 * Creates a client that takes ownership of cred. Returns 0 with the client
 * in *out (free with k8s_client_free), or MDS_E_INTERNAL.
 */
int k8s_client_new(uv_loop_t *loop, struct httpc *http, struct k8s_cred *cred,
		   struct k8s_client **out);

/* Frees the client and its cred. Calls and streams must have ended (their
 * callbacks run) first. NULL is accepted. */
void k8s_client_free(struct k8s_client *c);

/* The credentials in use (namespace, server, source); owned by c. */
const struct k8s_cred *k8s_client_cred(const struct k8s_client *c);

/*
 * Sends method path (with its query; already escaped) with body (JSON,
 * borrowed, may be NULL) as content_type (NULL: application/json). done
 * runs once, later, on the loop. Returns 0; or a negative MDS_E_* with
 * the reason in diag when it could not be sent (an expired token: the
 * message says so), and then done never runs.
 */
int k8s_call(struct k8s_client *c, const char *method, const char *path,
	     const char *content_type, json_t *body, k8s_done_fn *done,
	     void *arg, char *diag, size_t diagsz);

/*
 * Opens a watch stream on path (which carries watch=1 and its
 * resourceVersion). event runs for each event, on the loop; end runs once
 * when the stream is over (the server ended it: error 0; a non-2xx answer
 * or a transport error: error set; cancelled: MDS_E_UNAVAIL). Returns 0
 * and the stream in *out (valid until end has run), or a negative MDS_E_*
 * with diag, and then no callback runs.
 */
int k8s_watch(struct k8s_client *c, const char *path, uint32_t timeout_ms,
	      k8s_event_fn *event, k8s_done_fn *end, void *arg,
	      struct k8s_stream **out, char *diag, size_t diagsz);

/* Ends a stream; its end callback runs later with MDS_E_UNAVAIL. */
void k8s_watch_cancel(struct k8s_stream *s);

/*
 * Percent-escapes s for a query value into a new string (caller frees).
 */
char *k8s_escape(const char *s);

#endif
