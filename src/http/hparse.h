/*
 * hparse.h - the one wrapper around the HTTP/1.x message parser.
 *
 * Every user of the parser (the API server, the gateway, the load generator,
 * the example model server) goes through this header, so that moving to
 * another parser (llhttp, once Debian packages it) touches hparse.c and this
 * file only. The interface is http_parser's, minus what nobody uses:
 * callbacks on a struct hparse, execute, pause, and a few accessors.
 *
 * Requests are parsed strictly (RFC 9112), on top of what the parser itself
 * checks: a header name holds token characters only (so whitespace before
 * the colon is refused), a line that starts with whitespace (obs-fold) is
 * refused, a CR must be followed by LF, and a head holds at most
 * HPARSE_FIELDS_MAX header lines. Trailer names of a chunked body follow
 * the same name rule and count (neither server passes trailers on).
 * Responses are parsed as the parser does; the usual response head (see
 * hparse.c), whole in one buffer, with a Content-Length body, is read by
 * hparse.c itself, which gives the same callbacks, values and errors as
 * the parser (tests/unit/test_hparse.c and fuzz/fuzz_http_response.c
 * compare the two on the same bytes) and leaves anything else to it.
 */
#ifndef MDS_HTTP_HPARSE_H
#define MDS_HTTP_HPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h> /* for the size of struct hparse only */

/* Header lines allowed in one request head (Apache's default). */
#define HPARSE_FIELDS_MAX 100

enum hparse_type { HPARSE_REQUEST, HPARSE_RESPONSE };

/* What hparse_error() tells. */
enum hparse_error {
	HPARSE_OK = 0,
	HPARSE_PAUSED,       /* a callback paused; call hparse_pause(h, false) */
	HPARSE_E_SYNTAX,     /* not valid HTTP/1.x */
	HPARSE_E_TOO_LARGE,  /* too many header lines, or the parser's own
				head size cap */
	HPARSE_E_CALLBACK,   /* a callback returned an error */
};

struct hparse;

/* One header line of a head read whole (see hparse_whole()): offsets of
 * its name and value from the head's first byte, and their lengths. */
struct hparse_field {
	uint16_t name, nlen, val, vlen;
};

/* A head the fast path read whole, at its first byte (hparse_whole()). */
struct hparse_whole {
	const char *data;
	size_t len;                  /* through the blank line's LF */
	size_t first_off, first_len; /* the reason phrase, or the target */
	const struct hparse_field *f;
	unsigned n;                  /* header lines, in order; each ends in
					CRLF right before the next */
};

typedef int hparse_cb(struct hparse *h);
typedef int hparse_data_cb(struct hparse *h, const char *at, size_t len);

/* Callbacks; any may be NULL. A non-zero return stops parsing with
 * HPARSE_E_CALLBACK, except from on_headers_complete, where 1 means "this
 * message has no body" (a response to HEAD) and 2 "no body, and no further
 * message on this connection" (as http_parser). Data pointers point into
 * the buffer given to hparse_execute() and live only as long as it. Only
 * on_headers_complete, on_body and on_message_complete may pause; a pause
 * from another callback is an error (HPARSE_E_CALLBACK). */
struct hparse_settings {
	/* When set, a head that hparse_whole() gives in on_headers_complete
	 * got no on_url, on_status, on_header_field nor on_header_value
	 * calls: on_headers_complete reads it there. */
	bool whole_heads;
	hparse_cb *on_message_begin;
	hparse_data_cb *on_url;
	hparse_data_cb *on_status;
	hparse_data_cb *on_header_field;
	hparse_data_cb *on_header_value;
	hparse_cb *on_headers_complete;
	hparse_data_cb *on_body;
	hparse_cb *on_message_complete;
};

/* One parser. Embed it; only data is the caller's, the rest is private. */
struct hparse {
	void *data; /* the caller's */
	const struct hparse_settings *settings;
	enum hparse_type type;
	enum hparse_error strict_err; /* a strictness refusal, or HPARSE_OK */
	const char *strict_text;      /* and what it was (static) */
	int scan;           /* the strict scanner's state (hparse.c) */
	unsigned nfields;   /* header lines of the current request head and
			       its trailers */
	bool in_field;      /* the last callback was a header name */
	bool in_body;       /* past the head: names are trailers */
	bool self_paused;   /* paused by hparse.c, not by a callback */
	bool at_start;      /* the parser waits for a new message, which the
			       fast path may read */
	bool no_fast;       /* tests: every message through http_parser */
	int fast;           /* the fast path's state (hparse.c) */
	uint64_t fast_left; /* body bytes it has still to read */
	uint32_t nfast;     /* messages it read (for the tests) */
	const struct hparse_whole *whole; /* in on_headers_complete */
	bool fast_msg;      /* the current (or last) message is the fast
			       path's */
	http_parser p;
};

/* One part of a URL: an offset into the string given to hparse_url(). */
struct hparse_span {
	size_t off, len;
	bool set; /* the part is present */
};

/* A decomposed URL; port is 0 when the URL names none. */
struct hparse_url {
	struct hparse_span schema, host, userinfo, path, query, fragment;
	uint16_t port;
};

/* Starts (or restarts) h for a stream of messages of the given type, with
 * the given callbacks (borrowed: they must outlive h) and user data. */
void hparse_init(struct hparse *h, enum hparse_type type,
		 const struct hparse_settings *settings, void *data);

/* Parses [data, data + len); len 0 tells the end of input (a response
 * delimited by the connection's close). Returns the bytes consumed; fewer
 * than len when a callback paused or on an error (see hparse_error()). */
size_t hparse_execute(struct hparse *h, const char *data, size_t len);

/* Pauses (from a callback) or resumes the parser. */
void hparse_pause(struct hparse *h, bool paused);

/* The parser's state after hparse_execute(), and a description of it
 * (static string). */
enum hparse_error hparse_error(const struct hparse *h);
const char *hparse_error_text(const struct hparse *h);

/* The request method's name ("GET"; static string), and a comparison. */
const char *hparse_method(const struct hparse *h);
bool hparse_method_is(const struct hparse *h, const char *name);

/* Valid from on_headers_complete on: the response status, whether the
 * connection may carry another message, whether the body is chunked, has
 * a Content-Length (and its value), whether the request asks for an
 * upgrade, and whether the message is HTTP/1.1 or later. */
unsigned hparse_status(const struct hparse *h);

/* In on_headers_complete: the head, when the fast path read it whole in
 * the buffer given to hparse_execute() (valid until the callback returns),
 * else NULL. Such a head is a response of status 200 to 599 but 204 and
 * 304, or a request of a usual method and an origin-form target; HTTP/1.0
 * or 1.1; one Content-Length at most (exactly one in a response); no
 * Transfer-Encoding, Upgrade nor Proxy-Connection; and no Connection
 * header but of the value "keep-alive". */
const struct hparse_whole *hparse_whole(const struct hparse *h);
bool hparse_keep_alive(const struct hparse *h);
bool hparse_chunked(const struct hparse *h);
bool hparse_has_length(const struct hparse *h);
uint64_t hparse_length(const struct hparse *h);
bool hparse_upgrade(const struct hparse *h);
bool hparse_http11(const struct hparse *h);

/* The reason phrase of an HTTP status ("Not Found"; static string). */
const char *hparse_reason(int status);

/* Splits a URL or a request target (origin or absolute form) into its
 * parts. Returns 0, or -1 if it is not a valid one. */
int hparse_url(const char *url, size_t len, struct hparse_url *out);

#endif
