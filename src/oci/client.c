/*
 * client.c - signed, retried requests to OCI APIs; see client.h.
 *
 * A call lives from oci_client_send until its done callback has run and
 * its retry timer has closed. Between attempts it waits on that timer; an
 * attempt in flight is an httpc request. Calls are kept in a list so that
 * oci_client_free can cancel them all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/httpc.h"
#include "oci/client.h"
#include "oci/signer.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/xalloc.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_ATTEMPTS 5
#define DEFAULT_BASE_MS 1000
#define DEFAULT_MAX_MS 30000
#define DEFAULT_MAX_BODY (4 * 1024 * 1024)
/* A URL's host and path, as signed, fit in this. */
#define URL_MAX 4096
#define HDR_MAX 256

struct oci_client {
	uv_loop_t *loop;
	struct httpc *http;
	struct oci_signer *signer;
	struct oci_client_opts opts;
	struct oci_call *calls;
	int freeing;
};

struct oci_call {
	struct oci_client *client;
	struct oci_call *prev, *next;
	char *method, *url, *body, *if_match, *retry_token;
	size_t body_len;
	char host[256];
	const char *path;            /* into url */
	char request_id[33];
	int attempts;
	struct httpc_req *inflight;  /* NULL while waiting or done */
	uv_timer_t timer;
	int done_called;
	int cancelled;               /* ends when its attempt comes back */
	oci_done_fn *done;
	void *arg;
};

char *oci_endpoint(const char *service, const char *region,
		   const char *override)
{
	size_t n;

	if (override && *override) {
		n = strlen(override);
		while (n > 0 && override[n - 1] == '/')
			n--;
		return xstrndup(override, n);
	}
	/* Data Science lives under oci.oraclecloud.com, the older services
	 * under oraclecloud.com (realm oc1). */
	return xasprintf("https://%s.%s.%s", service, region,
			 strcmp(service, "datascience") == 0
				 ? "oci.oraclecloud.com"
				 : "oraclecloud.com");
}

void oci_http_date(int64_t t, char out[32])
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed",
					    "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
					      "May", "Jun", "Jul", "Aug",
					      "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	/* Not strftime: the names must not follow the locale. */
	snprintf(out, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT",
		 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

uint32_t oci_backoff_ms(int attempt, int64_t retry_after_ms, uint32_t base_ms,
			uint32_t max_ms, uint32_t rnd)
{
	uint64_t full;
	int shift = attempt - 2;

	if (retry_after_ms >= 0)
		return retry_after_ms > max_ms ? max_ms
					       : (uint32_t)retry_after_ms;
	if (shift < 0)
		shift = 0;
	if (shift > 20)
		shift = 20;
	full = (uint64_t)base_ms << shift;
	if (full > max_ms)
		full = max_ms;
	return (uint32_t)(full / 2 + (full - full / 2) * (uint64_t)rnd /
					     UINT32_MAX);
}

int oci_retryable(int error, long status)
{
	if (error != 0)
		return error == MDS_E_UNAVAIL || error == MDS_E_TIMEOUT ||
		       error == MDS_E_IO;
	/* 501 Not Implemented will not change by asking again. */
	return status == 429 || (status >= 500 && status <= 599 &&
				 status != 501);
}

struct oci_client *oci_client_new(uv_loop_t *loop, struct httpc *http,
				  struct oci_signer *signer,
				  const struct oci_client_opts *opts)
{
	struct oci_client *c = xcalloc(1, sizeof(*c));

	c->loop = loop;
	c->http = http;
	c->signer = signer;
	if (opts)
		c->opts = *opts;
	if (c->opts.ca_file)
		c->opts.ca_file = xstrdup(c->opts.ca_file);
	if (!c->opts.timeout_ms)
		c->opts.timeout_ms = DEFAULT_TIMEOUT_MS;
	if (c->opts.max_attempts <= 0)
		c->opts.max_attempts = DEFAULT_ATTEMPTS;
	if (!c->opts.backoff_base_ms)
		c->opts.backoff_base_ms = DEFAULT_BASE_MS;
	if (!c->opts.backoff_max_ms)
		c->opts.backoff_max_ms = DEFAULT_MAX_MS;
	if (!c->opts.max_body)
		c->opts.max_body = DEFAULT_MAX_BODY;
	return c;
}

static void call_closed(uv_handle_t *h)
{
	struct oci_call *call = h->data;
	struct oci_client *c = call->client;

	if (call->prev)
		call->prev->next = call->next;
	else
		c->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	free(call->method);
	free(call->url);
	free(call->body);
	free(call->if_match);
	free(call->retry_token);
	free(call);
	if (c->freeing && !c->calls) {
		free((char *)c->opts.ca_file);
		free(c);
	}
}

/* Runs done once and closes the call's timer (which frees the call). */
static void call_finish(struct oci_call *call, struct oci_response *res)
{
	if (call->done_called)
		return;
	call->done_called = 1;
	res->opc_request_id = call->request_id;
	res->attempts = call->attempts;
	call->done(call->arg, res);
	uv_close((uv_handle_t *)&call->timer, call_closed);
}

static void call_fail(struct oci_call *call, int error, const char *detail)
{
	struct oci_response res = {
		.error = error, .detail = detail, .body = "", .etag = "",
		.opc_work_request_id = "",
	};

	call_finish(call, &res);
}

static void attempt(struct oci_call *call);

static void timer_cb(uv_timer_t *t)
{
	struct oci_call *call = t->data;

	if (call->cancelled || call->client->freeing)
		call_fail(call, MDS_E_UNAVAIL, "request cancelled");
	else
		attempt(call);
}

/* Parses retry-after (delay-seconds only); -1 when absent or a date. */
static int64_t retry_after_ms(const struct httpc_result *r)
{
	char v[64], *end;
	long secs;

	if (!httpc_header(r, "retry-after", v, sizeof(v)))
		return -1;
	secs = strtol(v, &end, 10);
	if (end == v || *end != '\0' || secs < 0)
		return -1;
	return (int64_t)secs * 1000;
}

static void http_done(void *arg, const struct httpc_result *r)
{
	struct oci_call *call = arg;
	struct oci_client *c = call->client;
	char etag[HDR_MAX], wr[HDR_MAX];
	struct oci_response res;
	uint32_t delay, rnd;
	char rh[9];

	call->inflight = NULL;
	log_event(oci_retryable(r->error, r->status) ? LOG_WARN : LOG_INFO,
		  "oci", NULL, "%s %s: %ld%s%s (opc-request-id %s, attempt %d)",
		  call->method, call->url, r->status, r->error ? ", " : "",
		  r->error ? r->detail : "", call->request_id,
		  call->attempts);
	if (c->freeing || call->cancelled) {
		call_fail(call, MDS_E_UNAVAIL, "request cancelled");
		return;
	}
	if (oci_retryable(r->error, r->status) &&
	    call->attempts < c->opts.max_attempts) {
		ids_random_hex(rh, 4);
		rnd = (uint32_t)strtoul(rh, NULL, 16);
		delay = oci_backoff_ms(call->attempts + 1, retry_after_ms(r),
				       c->opts.backoff_base_ms,
				       c->opts.backoff_max_ms, rnd);
		uv_timer_start(&call->timer, timer_cb, delay, 0);
		return;
	}
	httpc_header(r, "etag", etag, sizeof(etag));
	httpc_header(r, "opc-work-request-id", wr, sizeof(wr));
	res = (struct oci_response){
		.error = r->error, .detail = r->detail, .status = r->status,
		.body = r->body ? r->body : "", .body_len = r->body_len,
		.etag = etag, .opc_work_request_id = wr,
	};
	call_finish(call, &res);
}

/* Signs and sends one attempt; a failure to do so ends the call. */
static void attempt(struct oci_call *call)
{
	struct oci_client *c = call->client;
	struct oci_sign_output so = { 0 };
	struct oci_sign_input in;
	char date[32], diag[256], h[8][HDR_MAX + 64], *auth;
	const char *hdrs[11];
	int n = 0, rc, with_body = oci_sign_method_has_body(call->method);
	struct httpc_opts o;

	oci_http_date(ids_now_ms() / 1000, date);
	in = (struct oci_sign_input){
		.method = call->method, .path = call->path, .host = call->host,
		.date = date, .content_type = "application/json",
		.body = call->body, .body_len = call->body_len,
		.with_body = with_body,
	};
	rc = oci_sign(c->signer, &in, &so, diag, sizeof(diag));
	if (rc != 0) {
		log_error("oci", "%s %s: %s (opc-request-id %s)", call->method,
			  call->url, diag, call->request_id);
		call_fail(call, rc, diag);
		return;
	}
	snprintf(h[0], sizeof(h[0]), "date: %s", date);
	snprintf(h[1], sizeof(h[1]), "host: %s", call->host);
	snprintf(h[2], sizeof(h[2]), "opc-request-id: %s", call->request_id);
	snprintf(h[3], sizeof(h[3]), "accept: application/json");
	for (int i = 0; i < 4; i++)
		hdrs[n++] = h[i];
	if (with_body) {
		snprintf(h[4], sizeof(h[4]), "content-type: application/json");
		snprintf(h[5], sizeof(h[5]), "x-content-sha256: %s",
			 so.x_content_sha256);
		hdrs[n++] = h[4];
		hdrs[n++] = h[5];
	}
	if (call->if_match) {
		snprintf(h[6], sizeof(h[6]), "if-match: %s", call->if_match);
		hdrs[n++] = h[6];
	}
	if (call->retry_token) {
		snprintf(h[7], sizeof(h[7]), "opc-retry-token: %s",
			 call->retry_token);
		hdrs[n++] = h[7];
	}
	/* The Authorization value is long (a 4096-bit key's signature); it
	 * gets its own allocation. */
	auth = xasprintf("authorization: %s", so.authorization);
	hdrs[n++] = auth;
	hdrs[n] = NULL;
	o = (struct httpc_opts){
		.method = call->method, .headers = hdrs,
		.body = with_body ? (call->body ? call->body : "") : NULL,
		.body_len = call->body_len, .timeout_ms = c->opts.timeout_ms,
		.max_body = c->opts.max_body, .ca_file = c->opts.ca_file,
		.want_headers = 1,
	};
	call->attempts++;
	rc = httpc_request(c->http, call->url, &o, http_done, call,
			   &call->inflight);
	free(auth);
	oci_sign_output_free(&so);
	if (rc != 0)
		call_fail(call, rc, "the HTTP client refused the request");
}

/* Splits an absolute URL into host (authority) and path ("/" if none). */
static int split_url(struct oci_call *call)
{
	const char *p = strstr(call->url, "://"), *slash;
	size_t n;

	if (!p || strlen(call->url) > URL_MAX)
		return MDS_E_INVAL;
	p += 3;
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	if (n == 0 || n >= sizeof(call->host) || !slash)
		return MDS_E_INVAL;
	memcpy(call->host, p, n);
	call->host[n] = '\0';
	call->path = slash;
	return 0;
}

int oci_client_send(struct oci_client *c, const struct oci_request *req,
		    oci_done_fn *done, void *arg, struct oci_call **out)
{
	struct oci_call *call;

	if (out)
		*out = NULL;
	if (!req->method || !req->url || (req->body_len && !req->body))
		return MDS_E_INVAL;
	call = xcalloc(1, sizeof(*call));
	call->client = c;
	call->method = xstrdup(req->method);
	call->url = xstrdup(req->url);
	if (split_url(call) != 0) {
		free(call->method);
		free(call->url);
		free(call);
		return MDS_E_INVAL;
	}
	call->body = req->body ? xstrndup(req->body, req->body_len) : NULL;
	call->body_len = req->body_len;
	call->if_match = req->if_match ? xstrdup(req->if_match) : NULL;
	call->retry_token = req->retry_token ? xstrdup(req->retry_token)
					     : NULL;
	ids_random_hex(call->request_id, 16);
	call->done = done;
	call->arg = arg;
	uv_timer_init(c->loop, &call->timer);
	call->timer.data = call;
	call->next = c->calls;
	if (c->calls)
		c->calls->prev = call;
	c->calls = call;
	/* The first attempt starts from the loop, so done never runs inside
	 * this call (signing may fail at once). */
	uv_timer_start(&call->timer, timer_cb, 0, 0);
	if (out)
		*out = call;
	return 0;
}

void oci_client_cancel(struct oci_client *c, struct oci_call *call)
{
	if (!call || call->done_called || call->cancelled)
		return;
	if (call->inflight) {
		/* http_done follows, on the loop, and ends the call. */
		call->cancelled = 1;
		httpc_cancel(c->http, call->inflight);
		return;
	}
	/* Waiting: the timer fires at once and ends the call from the loop. */
	call->cancelled = 1;
	uv_timer_start(&call->timer, timer_cb, 0, 0);
}

void oci_client_free(struct oci_client *c)
{
	struct oci_call *call, *next;

	if (!c)
		return;
	c->freeing = 1;
	for (call = c->calls; call; call = next) {
		next = call->next;
		oci_client_cancel(c, call);
	}
	if (!c->calls) {
		free((char *)c->opts.ca_file);
		free(c);
	}
}
