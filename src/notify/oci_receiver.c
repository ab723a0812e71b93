/* oci_receiver.c - the OCI Notifications HTTPS receiver; see
 * oci_receiver.h and docs/notifications.md. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/jsonx.h"
#include "http/httpc.h"
#include "notify/notifications.h"
#include "notify/oci_receiver.h"
#include "store/store.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/xalloc.h"

#define KIND "oci_receiver"
/* Caps on what a POST may carry into the receiver's state. */
#define OCID_MAX 255
#define URL_MAX 2048
#define SUFFIX_MAX 127
/* A confirmation fetch; OCI's delivery waits for our answer meanwhile. */
#define CONFIRM_TIMEOUT_MS 8000
#define CONFIRM_MAX_BODY (64 * 1024)
/* How many topics may have receiver settings. */
#define TOPICS_MAX 1024

struct topic {
	struct topic *next;
	char topic_id[128];
	bool enabled;
	char pinned[OCID_MAX + 1];
	char host_suffix[SUFFIX_MAX + 1];
	char subscription_id[OCID_MAX + 1]; /* confirmed; "" if none */
	char oci_topic_id[OCID_MAX + 1];
	int64_t confirmed_ms;
	char last_error[256];
	struct confirm *confirming;         /* the fetch in flight, or NULL */
	uint64_t accepted, refused;
};

struct confirm {
	struct oci_receiver *r;
	struct topic *t;                    /* NULL once the topic is gone */
	char subscription_id[OCID_MAX + 1];
	char oci_topic_id[OCID_MAX + 1];
	struct httpc_req *req;
	oci_receiver_done_fn *done;         /* NULL once answered */
	void *arg;
	struct confirm *next;
};

struct oci_receiver {
	struct oci_receiver_env env;
	char *ca_file;
	struct topic *topics;               /* oldest first */
	size_t ntopics;
	struct confirm *pending;
	bool closing;
};

static const char *state_name(const struct topic *t)
{
	if (!t->enabled)
		return "DISABLED";
	if (t->confirming != NULL)
		return "CONFIRMING";
	return t->subscription_id[0] ? "CONFIRMED" : "WAITING_FOR_CONFIRMATION";
}

static struct topic *find(struct oci_receiver *r, const char *topic_id)
{
	for (struct topic *t = r->topics; t; t = t->next)
		if (strcmp(t->topic_id, topic_id) == 0)
			return t;
	return NULL;
}

/* Copies src (NULL: "") into dst of n bytes, truncating. */
static void copy(char *dst, size_t n, const char *src)
{
	size_t len = src ? strnlen(src, n - 1) : 0;

	if (len > 0)
		memcpy(dst, src, len);
	dst[len] = '\0';
}

/* ---- the store ---- */

static int save(struct oci_receiver *r, const struct topic *t)
{
	json_t *o = json_pack(
		"{s:s, s:b, s:s, s:s, s:s, s:s, s:I, s:s}", "topicId",
		t->topic_id, "enabled", t->enabled, "pinnedSubscriptionId",
		t->pinned, "confirmationHostSuffix", t->host_suffix,
		"subscriptionId", t->subscription_id, "ociTopicId",
		t->oci_topic_id, "timeConfirmed", (json_int_t)t->confirmed_ms,
		"lastError", t->last_error);
	char *s = json_dumps(o, JSON_COMPACT);
	int rc = store_put(r->env.store, KIND, t->topic_id, s);

	free(s);
	json_decref(o);
	return rc;
}

static int load_one(void *arg, const char *id, const char *json)
{
	struct oci_receiver *r = arg;
	json_t *o = json_loads(json, 0, NULL);
	struct topic *t, **tail;

	if (o == NULL) {
		log_warn("oci-receiver", "stored settings of topic %s are not "
			 "JSON; ignored", id);
		return 0;
	}
	t = xcalloc(1, sizeof(*t));
	copy(t->topic_id, sizeof(t->topic_id), id);
	t->enabled = json_is_true(json_object_get(o, "enabled"));
	copy(t->pinned, sizeof(t->pinned),
	     jsonx_str(o, "pinnedSubscriptionId", ""));
	copy(t->host_suffix, sizeof(t->host_suffix),
	     jsonx_str(o, "confirmationHostSuffix", ""));
	copy(t->subscription_id, sizeof(t->subscription_id),
	     jsonx_str(o, "subscriptionId", ""));
	copy(t->oci_topic_id, sizeof(t->oci_topic_id),
	     jsonx_str(o, "ociTopicId", ""));
	t->confirmed_ms = json_integer_value(json_object_get(o,
							     "timeConfirmed"));
	copy(t->last_error, sizeof(t->last_error),
	     jsonx_str(o, "lastError", ""));
	json_decref(o);
	for (tail = &r->topics; *tail; tail = &(*tail)->next)
		;
	*tail = t;
	r->ntopics++;
	return 0;
}

int oci_receiver_open(const struct oci_receiver_env *env,
		      struct oci_receiver **out, char *diag, size_t diagsz)
{
	struct oci_receiver *r = xcalloc(1, sizeof(*r));
	int rc;

	r->env = *env;
	r->ca_file = env->ca_file ? xstrdup(env->ca_file) : NULL;
	r->env.ca_file = r->ca_file;
	rc = store_each(env->store, KIND, load_one, r);
	if (rc != 0) {
		mds_diag(diag, diagsz, "cannot load the OCI receivers: %s",
			 mds_strerror(rc));
		r->closing = true;
		oci_receiver_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

static void free_receiver(struct oci_receiver *r)
{
	while (r->topics) {
		struct topic *t = r->topics;

		r->topics = t->next;
		free(t);
	}
	free(r->ca_file);
	free(r);
}

void oci_receiver_close(struct oci_receiver *r)
{
	struct fault f;

	if (r == NULL)
		return;
	r->closing = true;
	fault_set(&f, MDS_E_UNAVAIL, "", "the daemon is shutting down; the "
		  "confirmation was not completed (OCI resends it)");
	for (struct confirm *c = r->pending; c; c = c->next) {
		if (c->done != NULL)
			c->done(c->arg, &f, c->subscription_id);
		c->done = NULL;
		if (c->t != NULL)
			c->t->confirming = NULL;
		c->t = NULL;
		httpc_cancel(r->env.httpc, c->req);
	}
	if (r->pending == NULL)
		free_receiver(r);
}

/* ---- settings ---- */

static int check_settings(const struct oci_receiver_settings *s,
			  struct fault *f)
{
	const char *pin = s->subscription_id;
	const char *sfx = s->host_suffix;

	if (pin != NULL && pin[0] != '\0' &&
	    (strncmp(pin, "ocid1.onssubscription.", 22) != 0 ||
	     strlen(pin) > OCID_MAX))
		return fault_set(f, MDS_E_INVAL, "subscriptionId",
				 "subscriptionId must be an OCI subscription "
				 "OCID (ocid1.onssubscription....)");
	if (sfx != NULL &&
	    (sfx[0] == '\0' || strlen(sfx) > SUFFIX_MAX ||
	     strspn(sfx, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") !=
		     strlen(sfx)))
		return fault_set(f, MDS_E_INVAL, "confirmationHostSuffix",
				 "confirmationHostSuffix must be a host name "
				 "or a domain starting with '.' (at most %d "
				 "characters)", SUFFIX_MAX);
	return 0;
}

int oci_receiver_configure(struct oci_receiver *r, const char *topic_id,
			   const struct oci_receiver_settings *s,
			   struct fault *f)
{
	struct topic *t = find(r, topic_id);
	struct topic next;
	bool is_new = t == NULL;
	int rc;

	if (!notifications_topic_exists(r->env.notifications, topic_id))
		return fault_set(f, MDS_E_NOTFOUND, "", "no topic '%.80s'",
				 topic_id);
	rc = check_settings(s, f);
	if (rc != 0)
		return rc;
	if (is_new && r->ntopics >= TOPICS_MAX)
		return fault_set(f, MDS_E_LIMIT, "", "at most %d topics may "
				 "have an OCI receiver", TOPICS_MAX);
	if (is_new) {
		memset(&next, 0, sizeof(next));
		copy(next.topic_id, sizeof(next.topic_id), topic_id);
	} else {
		next = *t;
	}
	next.enabled = s->enabled != 0;
	copy(next.pinned, sizeof(next.pinned), s->subscription_id);
	copy(next.host_suffix, sizeof(next.host_suffix),
	     s->host_suffix ? s->host_suffix : OCI_RECEIVER_HOST_SUFFIX);
	if (next.pinned[0] && next.subscription_id[0] &&
	    strcmp(next.pinned, next.subscription_id) != 0) {
		next.subscription_id[0] = '\0';
		next.oci_topic_id[0] = '\0';
		next.confirmed_ms = 0;
	}
	rc = save(r, &next);
	if (rc != 0)
		return fault_set(f, MDS_E_DB, "", "cannot store the receiver "
				 "settings: %s", mds_strerror(rc));
	if (is_new) {
		struct topic **tail;

		t = xmalloc(sizeof(*t));
		*t = next;
		for (tail = &r->topics; *tail; tail = &(*tail)->next)
			;
		*tail = t;
		r->ntopics++;
	} else {
		*t = next;
	}
	log_info("oci-receiver", "topic %s: receiver %s%s%s", topic_id,
		 t->enabled ? "enabled" : "disabled",
		 t->pinned[0] ? ", only for subscription " : "", t->pinned);
	return 0;
}

int oci_receiver_forget(struct oci_receiver *r, const char *topic_id,
			struct fault *f)
{
	struct topic **pp = &r->topics;
	int rc;

	while (*pp && strcmp((*pp)->topic_id, topic_id) != 0)
		pp = &(*pp)->next;
	if (*pp == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "", "topic '%.80s' has no "
				 "OCI receiver", topic_id);
	if ((*pp)->confirming != NULL)
		return fault_set(f, MDS_E_CONFLICT, "", "a confirmation is "
				 "running for topic '%.80s'; try again",
				 topic_id);
	rc = store_delete(r->env.store, KIND, topic_id);
	if (rc != 0)
		return fault_set(f, MDS_E_DB, "", "cannot delete the receiver "
				 "settings: %s", mds_strerror(rc));
	{
		struct topic *t = *pp;

		*pp = t->next;
		free(t);
		r->ntopics--;
	}
	return 0;
}

static void view(const struct topic *t, struct oci_receiver_view *v)
{
	v->topic_id = t->topic_id;
	v->enabled = t->enabled;
	v->state = state_name(t);
	v->subscription_id = t->subscription_id;
	v->pinned_subscription_id = t->pinned;
	v->oci_topic_id = t->oci_topic_id;
	v->host_suffix = t->host_suffix;
	v->confirmed_ms = t->confirmed_ms;
	v->last_error = t->last_error;
	v->accepted = t->accepted;
	v->refused = t->refused;
}

int oci_receiver_get(struct oci_receiver *r, const char *topic_id,
		     struct oci_receiver_view *v, struct fault *f)
{
	struct topic *t = find(r, topic_id);

	if (t == NULL)
		return fault_set(f, MDS_E_NOTFOUND, "", "topic '%.80s' has no "
				 "OCI receiver", topic_id);
	view(t, v);
	return 0;
}

void oci_receiver_each(struct oci_receiver *r,
		       void (*fn)(void *arg, const struct oci_receiver_view *v),
		       void *arg)
{
	struct oci_receiver_view v;

	for (struct topic *t = r->topics; t; t = t->next) {
		view(t, &v);
		fn(arg, &v);
	}
}

/* ---- messages ---- */

/* Records a refusal on the topic (kept for GET) and returns f->err. */
static int refuse(struct topic *t, struct fault *f)
{
	if (t != NULL) {
		t->refused++;
		copy(t->last_error, sizeof(t->last_error), f->message);
	}
	log_warn("oci-receiver", "topic %s: refused: %s",
		 t ? t->topic_id : "?", f->message);
	return f->err;
}

/* Checks that url is https on an allowed host and is the confirmation
 * link of subscription sub_id. */
static int check_confirmation_url(const struct topic *t, const char *url,
				  const char *sub_id, struct fault *f)
{
	const char *host, *host_end, *path;
	char want[OCID_MAX + 64];
	size_t hn, sn = strlen(t->host_suffix);
	const char *colon;

	if (strlen(url) > URL_MAX)
		return fault_set(f, MDS_E_INVAL, "ConfirmationURL",
				 "the ConfirmationURL is longer than %d "
				 "characters", URL_MAX);
	if (strncmp(url, "https://", 8) != 0)
		return fault_set(f, MDS_E_INVAL, "ConfirmationURL",
				 "the ConfirmationURL must be an https:// URL");
	host = url + 8;
	host_end = host + strcspn(host, "/?#");
	path = host_end;
	if (memchr(host, '@', (size_t)(host_end - host)) != NULL)
		return fault_set(f, MDS_E_INVAL, "ConfirmationURL",
				 "the ConfirmationURL must not carry user "
				 "information");
	colon = memchr(host, ':', (size_t)(host_end - host));
	hn = (size_t)((colon ? colon : host_end) - host);
	if (t->host_suffix[0] == '.'
		    ? !(hn > sn && strncasecmp(host + hn - sn, t->host_suffix,
					       sn) == 0)
		    : !(hn == sn && strncasecmp(host, t->host_suffix, sn) == 0))
		return fault_set(f, MDS_E_INVAL, "ConfirmationURL",
				 "the ConfirmationURL's host %.*s is not an "
				 "OCI Notifications host (allowed: %s; see "
				 "confirmationHostSuffix)", (int)hn, host,
				 t->host_suffix);
	snprintf(want, sizeof(want), "/20181201/subscriptions/%s/confirmation",
		 sub_id);
	if (strncmp(path, want, strlen(want)) != 0 ||
	    (path[strlen(want)] != '\0' && path[strlen(want)] != '?'))
		return fault_set(f, MDS_E_INVAL, "ConfirmationURL",
				 "the ConfirmationURL is not the confirmation "
				 "link of subscription %s", sub_id);
	return 0;
}

static void confirm_unlink(struct oci_receiver *r, struct confirm *c)
{
	for (struct confirm **pp = &r->pending; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
}

/* Why OCI refused a confirmation, from its {code, message} body. */
static void oci_message(const char *body, char *out, size_t n)
{
	json_t *o = json_loads(body ? body : "", 0, NULL);
	const char *m = json_string_value(json_object_get(o, "message"));

	copy(out, n, m ? m : "no message");
	json_decref(o);
}

static void confirmed(struct oci_receiver *r, struct confirm *c,
		      struct fault *f)
{
	struct topic *t = c->t;
	struct topic saved = *t;
	int rc;

	copy(t->subscription_id, sizeof(t->subscription_id),
	     c->subscription_id);
	copy(t->oci_topic_id, sizeof(t->oci_topic_id), c->oci_topic_id);
	t->confirmed_ms = ids_now_ms();
	t->last_error[0] = '\0';
	rc = save(r, t);
	if (rc != 0) {
		saved.confirming = t->confirming;
		*t = saved;
		fault_set(f, MDS_E_DB, "", "OCI confirmed subscription %s but "
			  "it could not be stored (%s); resend the "
			  "confirmation", c->subscription_id, mds_strerror(rc));
		return;
	}
	log_info("oci-receiver", "topic %s: subscription %s confirmed "
		 "(OCI topic %s)", t->topic_id, t->subscription_id,
		 t->oci_topic_id[0] ? t->oci_topic_id : "-");
	f->err = 0;
}

static void on_confirm_fetched(void *arg, const struct httpc_result *res)
{
	struct confirm *c = arg;
	struct oci_receiver *r = c->r;
	struct fault f = { 0 };
	char why[200];

	confirm_unlink(r, c);
	if (c->t == NULL || c->done == NULL)
		goto out; /* closed meanwhile: already answered */
	c->t->confirming = NULL;
	if (res->error != 0) {
		fault_set(&f, MDS_E_UNAVAIL, "ConfirmationURL",
			  "could not fetch the ConfirmationURL: %s; the "
			  "subscription stays unconfirmed",
			  res->detail ? res->detail : mds_strerror(res->error));
	} else if (res->status < 200 || res->status > 299) {
		oci_message(res->body, why, sizeof(why));
		fault_set(&f, res->status >= 500 ? MDS_E_UNAVAIL : MDS_E_INVAL,
			  "ConfirmationURL",
			  "OCI refused the ConfirmationURL (HTTP %ld: %s); a "
			  "confirmation link is valid for three days: resend "
			  "the confirmation of subscription %s in OCI",
			  res->status, why, c->subscription_id);
	} else {
		confirmed(r, c, &f);
	}
	if (f.err != 0) {
		refuse(c->t, &f);
		c->done(c->arg, &f, c->subscription_id);
	} else {
		c->done(c->arg, NULL, c->subscription_id);
	}
out:
	free(c);
	if (r->closing && r->pending == NULL)
		free_receiver(r);
}

static int start_confirmation(struct oci_receiver *r, struct topic *t,
			      const struct oci_ns_message *m, struct fault *f,
			      oci_receiver_done_fn *done, void *arg)
{
	const char *url = m->confirmation_url;
	struct confirm *c;
	struct httpc_opts o = { .method = "GET",
				.timeout_ms = CONFIRM_TIMEOUT_MS,
				.max_body = CONFIRM_MAX_BODY,
				.ca_file = r->ca_file };
	int rc;

	if (m->subscription_id == NULL || m->subscription_id[0] == '\0' ||
	    strlen(m->subscription_id) > OCID_MAX)
		return fault_set(f, MDS_E_INVAL, "X-OCI-NS-SubscriptionId",
				 "the confirmation has no X-OCI-NS-"
				 "SubscriptionId header");
	if (t->pinned[0] && strcmp(t->pinned, m->subscription_id) != 0)
		return fault_set(f, MDS_E_UNAUTH, "X-OCI-NS-SubscriptionId",
				 "topic %s accepts only subscription %s, not "
				 "%s", t->topic_id, t->pinned,
				 m->subscription_id);
	if (t->subscription_id[0] &&
	    strcmp(t->subscription_id, m->subscription_id) != 0)
		return fault_set(f, MDS_E_UNAUTH, "X-OCI-NS-SubscriptionId",
				 "topic %s is confirmed for subscription %s; "
				 "a confirmation from %s is refused (reset the "
				 "receiver to change it)", t->topic_id,
				 t->subscription_id, m->subscription_id);
	if (t->confirming != NULL)
		return fault_set(f, MDS_E_CONFLICT, "", "a confirmation is "
				 "already running for topic %s", t->topic_id);
	if (url == NULL || url[0] == '\0')
		return fault_set(f, MDS_E_INVAL, "ConfirmationURL",
				 "the confirmation has no ConfirmationURL");
	rc = check_confirmation_url(t, url, m->subscription_id, f);
	if (rc != 0)
		return rc;
	if (m->topic_ocid != NULL && strlen(m->topic_ocid) > OCID_MAX)
		return fault_set(f, MDS_E_INVAL, "X-OCI-NS-TopicOcid",
				 "X-OCI-NS-TopicOcid is too long");
	c = xcalloc(1, sizeof(*c));
	c->r = r;
	c->t = t;
	copy(c->subscription_id, sizeof(c->subscription_id),
	     m->subscription_id);
	copy(c->oci_topic_id, sizeof(c->oci_topic_id), m->topic_ocid);
	c->done = done;
	c->arg = arg;
	rc = httpc_request(r->env.httpc, url, &o, on_confirm_fetched, c,
			   &c->req);
	if (rc != 0) {
		free(c);
		return fault_set(f, MDS_E_UNAVAIL, "", "cannot fetch the "
				 "ConfirmationURL: %s", mds_strerror(rc));
	}
	c->next = r->pending;
	r->pending = c;
	t->confirming = c;
	log_info("oci-receiver", "topic %s: confirming subscription %s",
		 t->topic_id, c->subscription_id);
	return OCI_RECEIVER_PENDING;
}

static int accept_message(struct oci_receiver *r, struct topic *t,
			  const struct oci_ns_message *m, char *message_id,
			  size_t idsz, struct fault *f)
{
	int rc;

	if (!t->subscription_id[0])
		return fault_set(f, MDS_E_UNAUTH, "", "topic %s has no "
				 "confirmed OCI subscription yet: messages "
				 "are accepted only after the subscription's "
				 "confirmation", t->topic_id);
	if (m->subscription_id == NULL || m->subscription_id[0] == '\0')
		return fault_set(f, MDS_E_UNAUTH, "X-OCI-NS-SubscriptionId",
				 "the message has no X-OCI-NS-SubscriptionId "
				 "header: it does not come from OCI "
				 "Notifications");
	if (strcmp(m->subscription_id, t->subscription_id) != 0)
		return fault_set(f, MDS_E_UNAUTH, "X-OCI-NS-SubscriptionId",
				 "the message comes from subscription %.*s; "
				 "topic %s accepts only its confirmed "
				 "subscription %s", OCID_MAX, m->subscription_id,
				 t->topic_id, t->subscription_id);
	if (m->topic_ocid != NULL && m->topic_ocid[0] && t->oci_topic_id[0] &&
	    strcmp(m->topic_ocid, t->oci_topic_id) != 0)
		return fault_set(f, MDS_E_UNAUTH, "X-OCI-NS-TopicOcid",
				 "the message comes from OCI topic %.*s, not "
				 "the confirmed subscription's topic %s",
				 OCID_MAX, m->topic_ocid, t->oci_topic_id);
	rc = notifications_publish_id(r->env.notifications, t->topic_id,
				      m->dedupe_key, m->body, message_id,
				      idsz);
	switch (rc) {
	case 0:
		return 0;
	case MDS_E_NOTFOUND:
		return fault_set(f, rc, "", "no topic '%.80s'", t->topic_id);
	case MDS_E_LIMIT:
		return fault_set(f, rc, "", "the message is larger than 1 MiB");
	default:
		return fault_set(f, rc, "", "cannot publish the message: %s",
				 mds_strerror(rc));
	}
}

int oci_receiver_post(struct oci_receiver *r, const struct oci_ns_message *m,
		      char *message_id, size_t idsz, struct fault *f,
		      oci_receiver_done_fn *done, void *arg)
{
	struct topic *t = find(r, m->topic_id);
	bool confirmation;
	int rc;

	if (r->closing)
		return fault_set(f, MDS_E_UNAVAIL, "", "the daemon is shutting "
				 "down");
	if (t == NULL || !t->enabled ||
	    !notifications_topic_exists(r->env.notifications, m->topic_id)) {
		fault_set(f, MDS_E_NOTFOUND, "", "no OCI Notifications receiver "
			  "is enabled for topic '%.80s' (enable it with PUT "
			  "/v1/oci/receivers/{topic})", m->topic_id);
		return refuse(t, f);
	}
	confirmation = (m->message_type != NULL &&
			strcmp(m->message_type, "SubscriptionConfirmation") ==
				0) ||
		       ((m->message_type == NULL || !m->message_type[0]) &&
			m->confirmation_url != NULL && m->confirmation_url[0]);
	if (confirmation)
		rc = start_confirmation(r, t, m, f, done, arg);
	else
		rc = accept_message(r, t, m, message_id, idsz, f);
	if (rc == 0) {
		t->accepted++;
		log_info("oci-receiver", "topic %s: message %s from "
			 "subscription %s published", t->topic_id, message_id,
			 t->subscription_id);
	} else if (rc != OCI_RECEIVER_PENDING) {
		refuse(t, f);
	}
	return rc;
}
