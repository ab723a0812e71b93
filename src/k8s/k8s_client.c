/*
 * k8s_client.c - calls to a Kubernetes API server; see k8s_client.h.
 */
#include "k8s/k8s_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/httpc.h"
#include "k8s/kubeconfig.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/xalloc.h"

#define CALL_TIMEOUT_MS 15000

struct k8s_client {
	uv_loop_t *loop;
	struct httpc *http;
	struct k8s_cred *cred;
	struct httpc_tls tls;
};

struct call {
	struct k8s_client *c;
	k8s_done_fn *done;
	void *arg;
};

/* One parsed event waiting to be handed over. */
struct queued {
	char type[16];
	json_t *obj;
	struct queued *next;
};

struct k8s_stream {
	struct k8s_client *c;
	struct httpc_req *req;
	k8s_event_fn *event;
	k8s_done_fn *end;
	void *arg;
	uv_timer_t kick;      /* hands queued events over, outside libcurl */
	struct buf line;      /* the event being read */
	struct buf errbody;   /* the body of a non-2xx answer */
	struct queued *head, *tail;
	size_t nqueued;
	int overflow;         /* an event line or the queue passed its cap */
	int ended;
};

int k8s_client_new(uv_loop_t *loop, struct httpc *http, struct k8s_cred *cred,
		   struct k8s_client **out)
{
	struct k8s_client *c;

	if (loop == NULL || http == NULL || cred == NULL || out == NULL)
		return MDS_E_INVAL;
	c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->http = http;
	c->cred = cred;
	*out = c;
	return 0;
}

void k8s_client_free(struct k8s_client *c)
{
	if (c == NULL)
		return;
	k8s_cred_free(c->cred);
	free(c);
}

const struct k8s_cred *k8s_client_cred(const struct k8s_client *c)
{
	return c->cred;
}

char *k8s_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = xmalloc(strlen(s) * 3 + 1), *p = out;

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~", ch) != NULL) {
			*p++ = (char)ch;
		} else {
			*p++ = '%';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		}
	}
	*p = '\0';
	return out;
}

/* The code for a non-2xx HTTP status. */
static int status_error(long status)
{
	switch (status) {
	case 400:
	case 415:
	case 422:
		return MDS_E_INVAL;
	case 401:
	case 403:
		return MDS_E_UNAUTH;
	case 404:
	case 410:
		return MDS_E_NOTFOUND;
	case 409:
		return MDS_E_CONFLICT;
	case 429:
		return MDS_E_UNAVAIL;
	default:
		return status >= 500 ? MDS_E_UNAVAIL : MDS_E_IO;
	}
}

/* Writes the message for a failed answer: the Status' reason and message,
 * and for a 401 where the refused credentials came from. */
static void status_message(const struct k8s_client *c, long status,
			   json_t *obj, char *msg, size_t msgsz)
{
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	const char *reason = NULL, *text = NULL;

	if (kind != NULL && strcmp(kind, "Status") == 0) {
		reason = json_string_value(json_object_get(obj, "reason"));
		text = json_string_value(json_object_get(obj, "message"));
	}
	if (status == 401) {
		snprintf(msg, msgsz, "Kubernetes API %s answered 401 "
			 "Unauthorized: it refused the credentials of %s%s%s "
			 "(an expired or revoked token, or a certificate it "
			 "does not trust)", c->cred->server, c->cred->source,
			 c->cred->context[0] != '\0' ? ", context " : "",
			 c->cred->context);
		return;
	}
	snprintf(msg, msgsz, "Kubernetes API: %ld %s: %s", status,
		 reason != NULL ? reason : "error",
		 text != NULL ? text : "(no Status in the answer)");
}

/* Header lines and TLS settings for one request, from the current
 * credentials. hdrs has room for 5 entries. */
static int prepare(struct k8s_client *c, const char *ctype, char *auth,
		   size_t authsz, char *ct, size_t ctsz, const char **hdrs,
		   char *diag, size_t diagsz)
{
	struct k8s_cred *cr = c->cred;
	size_t n = 0;
	int rc = k8s_cred_refresh(cr, ids_now_ms(), diag, diagsz);

	if (rc != 0)
		return rc;
	hdrs[n++] = "Accept: application/json";
	hdrs[n++] = "User-Agent: mdscale";
	if (cr->token != NULL) {
		snprintf(auth, authsz, "Authorization: Bearer %s", cr->token);
		hdrs[n++] = auth;
	}
	if (ctype != NULL) {
		snprintf(ct, ctsz, "Content-Type: %s", ctype);
		hdrs[n++] = ct;
	}
	hdrs[n] = NULL;
	c->tls = (struct httpc_tls){
		.ca_pem = cr->ca_pem,
		.ca_pem_len = cr->ca_pem_len,
		.cert_file = cr->cert_file,
		.key_file = cr->key_file,
		.cert_pem = cr->cert_pem,
		.cert_pem_len = cr->cert_pem_len,
		.key_pem = cr->key_pem,
		.key_pem_len = cr->key_pem_len,
		.insecure = cr->insecure,
	};
	return 0;
}

/* Fills r from an HTTP result (obj parsed by the caller). */
static void fill_response(struct k8s_client *c, const struct httpc_result *h,
			  json_t *obj, struct k8s_response *r, char *msg,
			  size_t msgsz)
{
	msg[0] = '\0';
	r->status = h->status;
	r->obj = obj;
	r->message = msg;
	if (h->error != 0) {
		r->error = h->error;
		snprintf(msg, msgsz, "Kubernetes API %s: %s", c->cred->server,
			 h->detail != NULL && h->detail[0] != '\0'
				 ? h->detail
				 : mds_strerror(h->error));
	} else if (h->status < 200 || h->status > 299) {
		r->error = status_error(h->status);
		status_message(c, h->status, obj, msg, msgsz);
		if (h->status == 401)
			k8s_cred_invalidate(c->cred);
	} else if (obj == NULL && h->body_len > 0) {
		r->error = MDS_E_PARSE;
		snprintf(msg, msgsz, "Kubernetes API %s: the answer is not "
			 "JSON", c->cred->server);
	} else {
		r->error = 0;
	}
}

static void call_done(void *arg, const struct httpc_result *h)
{
	struct call *call = arg;
	json_t *obj = h->body_len > 0 ? json_loadb(h->body, h->body_len, 0,
						   NULL)
				      : NULL;
	struct k8s_response r;
	char msg[K8S_MSG_MAX];

	fill_response(call->c, h, obj, &r, msg, sizeof(msg));
	call->done(call->arg, &r);
	json_decref(obj);
	free(call);
}

int k8s_call(struct k8s_client *c, const char *method, const char *path,
	     const char *content_type, json_t *body, k8s_done_fn *done,
	     void *arg, char *diag, size_t diagsz)
{
	const char *hdrs[6];
	char auth[8192], ct[128];
	char *url, *text = NULL;
	struct call *call;
	struct httpc_opts o = { 0 };
	int rc;

	if (body != NULL && content_type == NULL)
		content_type = "application/json";
	rc = prepare(c, body != NULL ? content_type : NULL, auth, sizeof(auth),
		     ct, sizeof(ct), hdrs, diag, diagsz);
	if (rc != 0)
		return rc;
	if (body != NULL)
		text = json_dumps(body, JSON_COMPACT);
	url = xasprintf("%s%s", c->cred->server, path);
	call = xcalloc(1, sizeof(*call));
	call->c = c;
	call->done = done;
	call->arg = arg;
	o.method = method;
	o.headers = hdrs;
	o.body = text;
	o.body_len = text != NULL ? strlen(text) : 0;
	o.timeout_ms = CALL_TIMEOUT_MS;
	o.max_body = K8S_MAX_BODY;
	o.ca_file = c->cred->ca_file;
	o.tls = &c->tls;
	rc = httpc_request(c->http, url, &o, call_done, call, NULL);
	if (rc != 0) {
		mds_diag(diag, diagsz, "cannot send %s %s: %s", method, path,
			 mds_strerror(rc));
		free(call);
	}
	free(url);
	free(text);
	return rc;
}

/* ---- watch streams ----------------------------------------------------- */

static void stream_closed(uv_handle_t *h)
{
	struct k8s_stream *s = h->data;

	buf_free(&s->line);
	buf_free(&s->errbody);
	free(s);
}

/* Hands every queued event over. */
static void deliver(struct k8s_stream *s)
{
	while (s->head != NULL) {
		struct queued *q = s->head;

		s->head = q->next;
		if (s->head == NULL)
			s->tail = NULL;
		s->nqueued--;
		s->event(s->arg, q->type, q->obj);
		json_decref(q->obj);
		free(q);
	}
}

static void kick_cb(uv_timer_t *t)
{
	deliver(t->data);
}

/* Parses one event line into the queue. */
static int queue_line(struct k8s_stream *s, const char *line, size_t len)
{
	json_t *ev, *obj;
	const char *type;
	struct queued *q;

	if (len == 0)
		return 0;
	ev = json_loadb(line, len, 0, NULL);
	type = json_string_value(json_object_get(ev, "type"));
	obj = json_object_get(ev, "object");
	if (type == NULL || !json_is_object(obj) || strlen(type) >= 16 ||
	    s->nqueued >= K8S_MAX_QUEUED) {
		json_decref(ev);
		return -1;
	}
	q = xcalloc(1, sizeof(*q));
	snprintf(q->type, sizeof(q->type), "%s", type);
	q->obj = json_incref(obj);
	json_decref(ev);
	if (s->tail != NULL)
		s->tail->next = q;
	else
		s->head = q;
	s->tail = q;
	s->nqueued++;
	uv_timer_start(&s->kick, kick_cb, 0, 0);
	return 0;
}

/* Inside libcurl: splits the body into lines; no httpc_* calls here. */
static int stream_data(void *arg, long status, const char *data, size_t len)
{
	struct k8s_stream *s = arg;

	if (status < 200 || status > 299)
		return buf_add(&s->errbody, data, len) != 0;
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl != NULL ? (size_t)(nl - data) : len;

		if (buf_add(&s->line, data, n) != 0) {
			s->overflow = 1;
			return 1;
		}
		if (nl == NULL)
			break;
		if (queue_line(s, s->line.data, s->line.len) != 0) {
			s->overflow = 1;
			return 1;
		}
		buf_reset(&s->line);
		data += n + 1;
		len -= n + 1;
	}
	return 0;
}

static void stream_done(void *arg, const struct httpc_result *h)
{
	struct k8s_stream *s = arg;
	json_t *obj = NULL;
	struct k8s_response r;
	char msg[K8S_MSG_MAX];

	deliver(s);
	if (h->status < 200 || h->status > 299)
		obj = json_loadb(buf_str(&s->errbody), s->errbody.len, 0, NULL);
	fill_response(s->c, h, obj, &r, msg, sizeof(msg));
	if (s->overflow) {
		r.error = MDS_E_LIMIT;
		snprintf(msg, sizeof(msg), "Kubernetes API %s: a watch event "
			 "was over %d bytes, or not an event", s->c->cred->server,
			 K8S_MAX_EVENT);
	}
	s->ended = 1;
	s->end(s->arg, &r);
	json_decref(obj);
	uv_close((uv_handle_t *)&s->kick, stream_closed);
}

int k8s_watch(struct k8s_client *c, const char *path, uint32_t timeout_ms,
	      k8s_event_fn *event, k8s_done_fn *end, void *arg,
	      struct k8s_stream **out, char *diag, size_t diagsz)
{
	const char *hdrs[6];
	char auth[8192], ct[8];
	struct httpc_opts o = { 0 };
	struct k8s_stream *s;
	char *url;
	int rc;

	rc = prepare(c, NULL, auth, sizeof(auth), ct, sizeof(ct), hdrs, diag,
		     diagsz);
	if (rc != 0)
		return rc;
	s = xcalloc(1, sizeof(*s));
	s->c = c;
	s->event = event;
	s->end = end;
	s->arg = arg;
	buf_init(&s->line, K8S_MAX_EVENT);
	buf_init(&s->errbody, 64 * 1024);
	uv_timer_init(c->loop, &s->kick);
	s->kick.data = s;
	url = xasprintf("%s%s", c->cred->server, path);
	o.headers = hdrs;
	o.timeout_ms = timeout_ms;
	o.ca_file = c->cred->ca_file;
	o.tls = &c->tls;
	o.on_data = stream_data;
	o.data_arg = s;
	rc = httpc_request(c->http, url, &o, stream_done, s, &s->req);
	free(url);
	if (rc != 0) {
		mds_diag(diag, diagsz, "cannot watch %s: %s", path,
			 mds_strerror(rc));
		uv_close((uv_handle_t *)&s->kick, stream_closed);
		return rc;
	}
	*out = s;
	return 0;
}

void k8s_watch_cancel(struct k8s_stream *s)
{
	if (s != NULL && !s->ended)
		httpc_cancel(s->c->http, s->req);
}
