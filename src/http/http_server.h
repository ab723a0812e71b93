/*
 * http_server.h - a small HTTP/1.1 server for the REST API.
 *
 * Requests are read whole (head capped at 64 KiB, body at a cap the caller
 * sets) and handed to one handler; the handler answers at once or later with
 * http_respond(). One request per connection is in progress at a time
 * (pipelined requests wait), keep-alive is honoured, idle connections close
 * after a timeout. Runs on the loop's thread.
 */
#ifndef MDS_HTTP_SERVER_H
#define MDS_HTTP_SERVER_H

#include <stddef.h>
#include <uv.h>

struct http_server;

/* A request. Fields are valid until http_respond() (or, when streaming,
 * http_respond_end()) is called. */
struct http_req {
	const char *method;        /* "GET", "POST", ... */
	const char *path;          /* the path, percent-decoded, no query */
	const char *query;         /* the raw query string, "" if none */
	const char *authorization; /* header value, or NULL */
	const char *headers;       /* every header, "Name: value\r\n" lines */
	const char *body;          /* NUL-terminated, holds no other NUL;
				      "" if none */
	size_t body_len;
	const char *peer;          /* "127.0.0.1:5555" */
};

/* Called once per request; it must lead to exactly one http_respond(). */
typedef void http_handler_fn(void *arg, struct http_req *req);

/*
 * Listens on host:port (port 0 picks one). max_body caps request bodies:
 * the server itself answers 413 to a larger one (on its Content-Length,
 * before reading it), 400 to a body with a NUL byte, and 400/431 to a
 * malformed or oversized head, and closes. Returns 0 and the server in
 * *out, or a negative MDS_E_* with detail in diag.
 */
int http_server_start(uv_loop_t *loop, const char *host, int port,
		      size_t max_body, http_handler_fn *handler, void *arg,
		      struct http_server **out, char *diag, size_t diagsz);

int http_server_port(const struct http_server *srv);

struct tls_ctx;

/* Serves HTTPS with tls (borrowed; it must outlive the server) on the
 * connections accepted from now on; NULL: plain HTTP. */
void http_server_set_tls(struct http_server *srv, struct tls_ctx *tls);

/*
 * Sends the response and releases req. body is copied; headers, if not
 * NULL, is a block of "Name: value\r\n" lines added as they are. Safe to
 * call after the client went away (the response is then dropped).
 */
void http_respond(struct http_req *req, int status, const char *content_type,
		  const char *body, size_t len, const char *headers);

/* http_respond() with a body of malloc()ed memory that it takes and sends
 * as it is, uncopied: a body of many MB written in the turn it is ready
 * would cost a copy into fresh memory. */
void http_respond_take(struct http_req *req, int status,
		       const char *content_type, char *body, size_t len,
		       const char *headers);

/*
 * Streaming: a handler may answer with a body of unknown length, sent as it
 * comes (chunked transfer encoding): http_respond_start(), then any number
 * of http_respond_chunk(), then http_respond_end(), which releases req. The
 * connection closes after a streamed response; input the client sends
 * meanwhile is dropped, but its going away is seen at once (see
 * http_req_on_close()). Do not mix with http_respond().
 */

/*
 * Sends the status line and headers (headers as for http_respond()).
 * Returns 0, or MDS_E_UNAVAIL if the client is gone (req still needs
 * http_respond_end()).
 */
int http_respond_start(struct http_req *req, int status,
		       const char *content_type, const char *headers);

/*
 * Sends len bytes of data (copied) as one chunk; len 0 sends nothing.
 * Returns 0; MDS_E_UNAVAIL once the client is gone; MDS_E_LIMIT when more
 * than HTTP_STREAM_QUEUE_MAX bytes wait to be written to a slow client
 * (the data is then not sent; the caller may count it as dropped).
 */
#define HTTP_STREAM_QUEUE_MAX (1024 * 1024)
int http_respond_chunk(struct http_req *req, const char *data, size_t len);

/* Ends a streamed response (if the client is still there) and releases
 * req. */
void http_respond_end(struct http_req *req);

/*
 * Asks for fn(arg) to be called once if the client goes away (or the
 * server closes) before req is answered; not called after http_respond()
 * or http_respond_end(). req stays valid in fn, and must still be
 * released with http_respond_end() or http_respond(), from fn or later.
 */
void http_req_on_close(struct http_req *req, void (*fn)(void *arg),
		       void *arg);

/*
 * Finds key in a query string and copies its percent-decoded value into out
 * (NUL-terminated). Returns 0, MDS_E_NOTFOUND, or MDS_E_LIMIT if the value
 * does not fit.
 */
int http_query_get(const char *query, const char *key, char *out,
		   size_t outsz);

/*
 * Copies the value of request header name (case-insensitive, the last one
 * if repeated) into out (outsz bytes, truncated). Returns 1 if present, 0
 * if not (out is then "").
 */
int http_req_header(const struct http_req *req, const char *name, char *out,
		    size_t outsz);

/* Returns the reason phrase of a status code ("Not Found"). */
const char *http_reason(int status);

/* Stops listening, closes every connection, frees the server once closed,
 * then calls done(arg) if not NULL. */
void http_server_close(struct http_server *srv, void (*done)(void *arg),
		       void *arg);

/*
 * Also listens on a Unix socket at path (an existing file there is
 * replaced; it is made mode 0600): the local administrator's way in, which
 * the connection caps and eviction of TCP clients never touch. Requests
 * from it have peer "local". Returns 0, or MDS_E_IO / MDS_E_SYS with
 * detail in diag; at most one per server. The socket file is removed by
 * http_server_close().
 */
int http_server_listen_local(struct http_server *srv, const char *path,
			     char *diag, size_t diagsz);

#endif
