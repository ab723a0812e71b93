/*
 * client.h - signed requests to OCI APIs on the daemon's loop.
 *
 * Each request is signed (signer.h), carries an opc-request-id (logged with
 * its outcome) and goes out through the asynchronous HTTP client (httpc.h),
 * so no request blocks the loop. 429 and 5xx answers and connection
 * failures are retried up to max_attempts, after the answer's retry-after
 * (seconds) if it has one, else after an exponential backoff with full
 * jitter (a random delay between half and all of base * 2^(attempt-1),
 * capped). Each retry is signed again with a fresh date.
 *
 * Endpoints: the service host of a region ("datascience", "telemetry",
 * "notification") under oraclecloud.com, or an override base URL per
 * client (a test's stand-in).
 */
#ifndef MDS_OCI_CLIENT_H
#define MDS_OCI_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct httpc;
struct oci_signer;
struct oci_client;
struct oci_call;

struct oci_client_opts {
	const char *ca_file;       /* PEM CA bundle; NULL: the system's */
	uint32_t timeout_ms;       /* per attempt; 0: 30 s */
	int max_attempts;          /* 0: 5 */
	uint32_t backoff_base_ms;  /* 0: 1000 */
	uint32_t backoff_max_ms;   /* 0: 30000; also caps retry-after */
	size_t max_body;           /* response cap; 0: 4 MiB */
};

/* One request. Everything is borrowed for the call to oci_client_send. */
struct oci_request {
	const char *method;        /* "GET", "PUT", "POST", "DELETE" */
	const char *url;           /* absolute https URL */
	const char *body;          /* JSON, or NULL */
	size_t body_len;
	const char *if_match;      /* an etag, or NULL */
	const char *retry_token;   /* opc-retry-token (a POST that OCI must
				      run once however often it is sent), or
				      NULL */
};

/* What came back; everything lives until the done callback returns. */
struct oci_response {
	int error;                 /* 0 or MDS_E_*: transport, signing */
	const char *detail;        /* why, when error != 0 */
	long status;               /* the last attempt's HTTP status */
	const char *body;          /* NUL-terminated */
	size_t body_len;
	const char *etag;          /* response headers ("" when absent) */
	const char *opc_request_id;      /* the id this request sent */
	const char *opc_work_request_id;
	int attempts;              /* how many were sent */
};

typedef void oci_done_fn(void *arg, const struct oci_response *res);

/*
 * Creates a client that sends through http (borrowed, must outlive the
 * client) and signs with signer (borrowed likewise). Returns a new client;
 * free it with oci_client_free.
 */
struct oci_client *oci_client_new(uv_loop_t *loop, struct httpc *http,
				  struct oci_signer *signer,
				  const struct oci_client_opts *opts);

/*
 * Sends a request. done runs exactly once, later, on the loop (never inside
 * this call), after the last attempt, or with MDS_E_UNAVAIL when the call
 * is cancelled or the client freed. A status that is not retried (2xx, 4xx
 * but 429) or the last attempt's answer is a success with status set.
 * *out (may be NULL) gets a handle for oci_client_cancel, valid until done
 * runs. Returns 0, or MDS_E_INVAL for a URL that is not absolute.
 */
int oci_client_send(struct oci_client *c, const struct oci_request *req,
		    oci_done_fn *done, void *arg, struct oci_call **out);

/* Cancels a call; its done callback runs later with MDS_E_UNAVAIL. */
void oci_client_cancel(struct oci_client *c, struct oci_call *call);

/* Cancels every call (their done callbacks run with MDS_E_UNAVAIL while the
 * loop runs on) and frees the client once they have. NULL is accepted. */
void oci_client_free(struct oci_client *c);

/*
 * Writes the base URL of service in region ("https://datascience.
 * us-ashburn-1.oci.oraclecloud.com"), or override if it is set, into a new
 * string; the caller frees it.
 */
char *oci_endpoint(const char *service, const char *region,
		   const char *override);

/* Formats t (seconds since the epoch) as an HTTP date, "Thu, 05 Jan 2014
 * 21:31:40 GMT", into out (32 bytes). */
void oci_http_date(int64_t t, char out[32]);

/*
 * The retry delay before attempt (2 for the first retry): retry_after_ms
 * when the answer had one (>= 0, capped at max_ms), else a random delay
 * between half and all of base_ms * 2^(attempt-2), capped at max_ms.
 * rnd is a uniform random 32-bit number. Pure; exposed for tests.
 */
uint32_t oci_backoff_ms(int attempt, int64_t retry_after_ms, uint32_t base_ms,
			uint32_t max_ms, uint32_t rnd);

/* Returns 1 if an answer (status, transport error) is worth retrying. */
int oci_retryable(int error, long status);

#endif
