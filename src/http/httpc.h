/*
 * httpc.h - the asynchronous HTTP client, libcurl multi on the libuv loop.
 *
 * Used for readiness checks of instances now, and for deliveries to HTTP(S)
 * endpoints later. One client per loop; requests complete through a
 * callback on the loop thread. This is the only module that includes curl.h.
 */
#ifndef MDS_HTTPC_H
#define MDS_HTTPC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct httpc;
struct httpc_req;

struct httpc_result {
	int error;          /* 0, or a negative MDS_E_* (connect, timeout...) */
	const char *detail; /* what went wrong, when error != 0 */
	long status;        /* HTTP status, 0 when there was none */
	const char *body;   /* response body, NUL-terminated (capped) */
	size_t body_len;
	uint64_t elapsed_us;
	/* The final response's header lines ("Name: value\r\n" each), when
	 * opts.want_headers was set; else "". Read with httpc_header(). */
	const char *headers;
};

/* Called once per request; result and its strings live until it returns. */
typedef void httpc_done_fn(void *arg, const struct httpc_result *res);

/*
 * For a streamed response (a watch): called with each piece of the body as
 * it arrives, from inside libcurl, so it must not call httpc_* functions;
 * it returns 0 to go on, anything else to stop the transfer (done then
 * runs with MDS_E_IO). status is the response's HTTP status.
 */
typedef int httpc_data_fn(void *arg, long status, const char *data,
			  size_t len);

/* More TLS settings of one request; every field optional. PEM data is
 * copied. */
struct httpc_tls {
	const void *ca_pem;       /* trust these CAs instead of the system's */
	size_t ca_pem_len;
	const char *cert_file;    /* client certificate and key (PEM) */
	const char *key_file;
	const void *cert_pem;
	size_t cert_pem_len;
	const void *key_pem;
	size_t key_pem_len;
	int insecure;             /* skip verifying the server */
};

struct httpc_opts {
	const char *method;       /* "GET" (default when NULL), "POST", ... */
	const char *const *headers; /* NULL-terminated "Name: value" lines */
	const void *body;         /* copied; may be NULL */
	size_t body_len;
	uint32_t timeout_ms;      /* whole request; 0: 10 s */
	size_t max_body;          /* response cap; 0: 1 MiB, past it: error */
	const char *ca_file;      /* PEM CA bundle for https; NULL: system's */
	int want_headers;         /* keep the response headers (16 KiB cap) */
	const struct httpc_tls *tls; /* NULL: the system's CAs, no client
					certificate */
	httpc_data_fn *on_data;   /* set: the body goes here, not into the
				     result (max_body does not apply) */
	void *data_arg;
};

/*
 * Copies the value of the response header name (case-insensitive, the
 * last one if repeated, surrounding blanks removed) into out (outsz bytes,
 * truncated). Returns 1 if present, 0 if not (out is then "").
 */
int httpc_header(const struct httpc_result *res, const char *name, char *out,
		 size_t outsz);

/*
 * Initializes and releases libcurl's process-wide state (curl_global_init
 * and curl_global_cleanup). main() calls httpc_global_init() once, before
 * any thread starts and before httpc_new(), and httpc_global_cleanup() once
 * at exit, after every client has closed. Kept out of httpc_new() because
 * libcurl's global init is not meant to run per client and mdscale keeps no
 * mutable globals to count clients. Returns 0 or MDS_E_INTERNAL.
 */
int httpc_global_init(void);
void httpc_global_cleanup(void);

/*
 * Creates a client on loop (requires httpc_global_init()). Connections are
 * kept alive and reused between requests to the same host. The caller frees
 * the client with httpc_close(), then runs the loop until the client's
 * handles have closed. Returns 0, or MDS_E_INTERNAL if libcurl fails.
 */
int httpc_new(uv_loop_t *loop, struct httpc **out);

/*
 * Starts a request to url (http or https; url and opts are not kept, the
 * body is copied). done is called exactly once, later, on the loop, never
 * from inside an httpc_* call (also when the request is cancelled or the
 * client closes: error MDS_E_UNAVAIL). *out (if not NULL) gets a handle for
 * httpc_cancel(), valid until done runs.
 *
 * Any HTTP status is a success (error 0, status set). Errors: MDS_E_TIMEOUT
 * past timeout_ms, MDS_E_LIMIT for a body over max_body, MDS_E_UNAVAIL when
 * the host cannot be resolved or connected to, MDS_E_INVAL for a bad URL,
 * MDS_E_IO for other transfer failures; detail has libcurl's message.
 *
 * Returns 0; or MDS_E_UNAVAIL after httpc_close(), MDS_E_LIMIT when 4096
 * requests are already pending, MDS_E_INVAL or MDS_E_INTERNAL, and then
 * done is never called.
 */
int httpc_request(struct httpc *c, const char *url,
		  const struct httpc_opts *opts, httpc_done_fn *done,
		  void *arg, struct httpc_req **out);

/* Cancels a pending request; its done callback runs later, on the loop,
 * with MDS_E_UNAVAIL. Does nothing if the request has already finished and
 * only waits for its callback. */
void httpc_cancel(struct httpc *c, struct httpc_req *req);

/* Cancels everything pending and frees the client once its handles are
 * closed: the caller keeps running the loop, during which every pending
 * done callback runs once with MDS_E_UNAVAIL. NULL is accepted. From the
 * call on, c only refuses new requests (inside those callbacks). */
void httpc_close(struct httpc *c);

#endif
