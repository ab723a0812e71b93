/*
 * k8s_target.c - list-then-watch of one Deployment and its pods, and their
 * metrics; see k8s_target.h.
 */
#include "k8s/k8s_target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/k8s_client.h"
#include "k8s/k8s_quantity.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define SELECTOR_WAIT_MS 200
#define MAX_PODS 4096

enum feed_kind { FEED_DEPLOYMENT, FEED_PODS };

/* One kind of object, listed then watched. */
struct feed {
	struct k8s_target *t;
	enum feed_kind kind;
	char rv[64];          /* resourceVersion to resume from */
	json_t *objs;         /* name -> object */
	struct k8s_stream *stream;
	uv_timer_t retry;
	uint32_t backoff_ms;
	int expired;          /* saw a 410: list again */
	unsigned gone_streak; /* 410s with no event between: back off */
	int synced;
};

struct k8s_target {
	struct k8s_target_env env;
	char *ns, *name;
	char *selector;       /* the pods' label selector, once known */
	struct feed dep, pods;
	uv_timer_t metrics_timer;
	json_t *usage;        /* pod -> [cpu%, mem%] */
	struct k8s_target_stats stats;
	char error[K8S_MSG_MAX];
	unsigned pending;     /* calls and streams whose callbacks are due */
	unsigned open_timers;
	int closing;
	void (*done)(void *arg);
	void *done_arg;
};

static void feed_list(struct feed *f);
static void feed_watch(struct feed *f);

/* ---- closing ----------------------------------------------------------- */

static void maybe_free(struct k8s_target *t)
{
	if (!t->closing || t->pending > 0 || t->open_timers > 0)
		return;
	json_decref(t->dep.objs);
	json_decref(t->pods.objs);
	json_decref(t->usage);
	free(t->ns);
	free(t->name);
	free(t->selector);
	if (t->done != NULL)
		t->done(t->done_arg);
	free(t);
}

static void timer_closed(uv_handle_t *h)
{
	struct k8s_target *t = h->data;

	t->open_timers--;
	maybe_free(t);
}

/* Called at the top of every callback of a call or stream; returns 1 when
 * the target is closing (and may now be freed: do nothing more). */
static int call_back(struct k8s_target *t)
{
	t->pending--;
	if (t->closing) {
		maybe_free(t);
		return 1;
	}
	return 0;
}

static void set_error(struct k8s_target *t, const char *msg)
{
	if (strcmp(t->error, msg) != 0)
		log_warn("k8s", "%s/%s: %s", t->ns, t->name, msg);
	snprintf(t->error, sizeof(t->error), "%s", msg);
}

/* ---- paths --------------------------------------------------------------- */

static char *feed_path(const struct feed *f, int watch)
{
	struct k8s_target *t = f->t;
	char *sel, *path, *rv = k8s_escape(f->rv);

	if (f->kind == FEED_DEPLOYMENT) {
		char *fs = xasprintf("metadata.name=%s", t->name);

		sel = k8s_escape(fs);
		free(fs);
		path = xasprintf("/apis/apps/v1/namespaces/%s/deployments?"
				 "fieldSelector=%s", t->ns, sel);
	} else {
		sel = k8s_escape(t->selector);
		path = xasprintf("/api/v1/namespaces/%s/pods?labelSelector=%s",
				 t->ns, sel);
	}
	if (watch) {
		char *w = xasprintf("%s&watch=1&resourceVersion=%s&"
				    "allowWatchBookmarks=true&"
				    "timeoutSeconds=%u", path, rv,
				    t->env.watch_timeout_s);

		free(path);
		path = w;
	}
	free(sel);
	free(rv);
	return path;
}

/* The pods' selector from the Deployment's spec.selector.matchLabels. */
static void learn_selector(struct k8s_target *t, json_t *dep)
{
	json_t *ml = json_object_get(json_object_get(json_object_get(dep,
				     "spec"), "selector"), "matchLabels");
	const char *k;
	json_t *v;
	char buf[1024] = "";
	size_t n = 0;

	if (t->selector != NULL || !json_is_object(ml))
		return;
	json_object_foreach(ml, k, v) {
		if (!json_is_string(v))
			continue;
		n += (size_t)snprintf(buf + n, n < sizeof(buf) ? sizeof(buf) - n
							       : 0,
				      "%s%s=%s", n > 0 ? "," : "", k,
				      json_string_value(v));
	}
	if (n > 0 && n < sizeof(buf))
		t->selector = xstrdup(buf);
}

/* ---- retry ----------------------------------------------------------------- */

static void retry_cb(uv_timer_t *h)
{
	struct feed *f = h->data;

	if (f->t->closing)
		return;
	if (f->expired || !f->synced || f->rv[0] == '\0')
		feed_list(f);
	else
		feed_watch(f);
}

static void feed_retry_later(struct feed *f, uint32_t ms)
{
	uv_timer_start(&f->retry, retry_cb, ms, 0);
}

static void feed_backoff(struct feed *f)
{
	f->backoff_ms = f->backoff_ms == 0 ? BACKOFF_MIN_MS
					   : f->backoff_ms * 2;
	if (f->backoff_ms > BACKOFF_MAX_MS)
		f->backoff_ms = BACKOFF_MAX_MS;
	feed_retry_later(f, f->backoff_ms);
}

/* ---- list ------------------------------------------------------------------ */

static const char *obj_name(json_t *o)
{
	return json_string_value(json_object_get(json_object_get(o,
					"metadata"), "name"));
}

static const char *obj_rv(json_t *o)
{
	return json_string_value(json_object_get(json_object_get(o,
					"metadata"), "resourceVersion"));
}

static void list_done(void *arg, const struct k8s_response *r)
{
	struct feed *f = arg;
	struct k8s_target *t = f->t;
	json_t *items, *o;
	const char *rv;
	size_t i;

	if (call_back(t))
		return;
	items = json_object_get(r->obj, "items");
	rv = obj_rv(r->obj);
	if (r->error != 0 || !json_is_array(items) || rv == NULL) {
		set_error(t, r->error != 0 ? r->message
					   : "a list answer without items");
		feed_backoff(f);
		return;
	}
	t->stats.lists++;
	if (f->expired)
		t->stats.relists++;
	json_object_clear(f->objs);
	json_array_foreach(items, i, o) {
		const char *n = obj_name(o);

		if (n != NULL && i < MAX_PODS)
			json_object_set(f->objs, n, o);
	}
	snprintf(f->rv, sizeof(f->rv), "%s", rv);
	f->expired = 0;
	f->synced = 1;
	f->backoff_ms = 0;
	t->error[0] = '\0';
	if (f->kind == FEED_DEPLOYMENT)
		learn_selector(t, json_object_get(f->objs, t->name));
	if (t->env.changed != NULL)
		t->env.changed(t->env.arg, t);
	if (!t->closing)
		feed_watch(f);
}

static void feed_list(struct feed *f)
{
	struct k8s_target *t = f->t;
	char diag[K8S_MSG_MAX];
	char *path;
	int rc;

	if (f->kind == FEED_PODS && t->selector == NULL) {
		feed_retry_later(f, SELECTOR_WAIT_MS);
		return;
	}
	path = feed_path(f, 0);
	rc = k8s_call(t->env.client, "GET", path, NULL, NULL, list_done, f,
		      diag, sizeof(diag));
	free(path);
	if (rc != 0) {
		set_error(t, diag);
		feed_backoff(f);
		return;
	}
	t->pending++;
}

/* ---- watch ------------------------------------------------------------------ */

static void watch_event(void *arg, const char *type, json_t *obj)
{
	struct feed *f = arg;
	struct k8s_target *t = f->t;
	const char *n = obj_name(obj), *rv = obj_rv(obj);

	if (t->closing)
		return;
	if (strcmp(type, "ERROR") == 0) {
		json_t *code = json_object_get(obj, "code");
		const char *msg = json_string_value(json_object_get(obj,
							"message"));

		if (json_integer_value(code) == 410)
			f->expired = 1;
		set_error(t, msg != NULL ? msg : "an ERROR watch event");
		k8s_watch_cancel(f->stream);
		return;
	}
	if (rv != NULL)
		snprintf(f->rv, sizeof(f->rv), "%s", rv);
	f->gone_streak = 0;
	if (strcmp(type, "BOOKMARK") == 0 || n == NULL)
		return;
	if (strcmp(type, "DELETED") == 0) {
		json_object_del(f->objs, n);
		json_object_del(t->usage, n);
	} else if (json_object_size(f->objs) < MAX_PODS ||
		   json_object_get(f->objs, n) != NULL) {
		json_object_set(f->objs, n, obj);
	}
	if (f->kind == FEED_DEPLOYMENT)
		learn_selector(t, obj);
	if (t->env.changed != NULL)
		t->env.changed(t->env.arg, t);
}

static void watch_end(void *arg, const struct k8s_response *r)
{
	struct feed *f = arg;
	struct k8s_target *t = f->t;

	f->stream = NULL;
	if (call_back(t))
		return;
	if (r->status == 410)
		f->expired = 1;
	if (f->expired && f->gone_streak++ > 0) {
		/* 410 again right after a list: do not spin. */
		feed_backoff(f);
	} else if (f->expired) {
		feed_list(f);
	} else if (r->error == 0) {
		/* The server ended it (timeoutSeconds): go on from rv. */
		t->stats.resumes++;
		feed_watch(f);
	} else {
		set_error(t, r->message);
		feed_backoff(f);
	}
}

static void feed_watch(struct feed *f)
{
	struct k8s_target *t = f->t;
	char diag[K8S_MSG_MAX];
	char *path = feed_path(f, 1);
	int rc = k8s_watch(t->env.client, path,
			   (t->env.watch_timeout_s + 30) * 1000, watch_event,
			   watch_end, f, &f->stream, diag, sizeof(diag));

	free(path);
	if (rc != 0) {
		set_error(t, diag);
		feed_backoff(f);
		return;
	}
	t->stats.watches++;
	t->pending++;
}

/* ---- metrics ---------------------------------------------------------------- */

/* The container of pod that is the model's (by name, or the first). */
static json_t *model_container(const struct k8s_target *t, json_t *list)
{
	json_t *c;
	size_t i;

	if (t->env.container == NULL)
		return json_array_get(list, 0);
	json_array_foreach(list, i, c) {
		const char *n = json_string_value(json_object_get(c, "name"));

		if (n != NULL && strcmp(n, t->env.container) == 0)
			return c;
	}
	return NULL;
}

/* used over limit in percent, or -1 without a limit. */
static double percent(json_t *usage, json_t *limits, const char *res)
{
	int64_t used, lim;

	if (k8s_quantity_milli(json_string_value(json_object_get(usage, res)),
			       &used) != 0 ||
	    k8s_quantity_milli(json_string_value(json_object_get(limits, res)),
			       &lim) != 0 ||
	    lim <= 0)
		return -1;
	return 100.0 * (double)used / (double)lim;
}

static void metrics_done(void *arg, const struct k8s_response *r)
{
	struct k8s_target *t = arg;
	json_t *items = json_object_get(r->obj, "items"), *pm;
	size_t i;

	if (call_back(t))
		return;
	if (r->error != 0 || !json_is_array(items)) {
		set_error(t, r->error != 0 ? r->message
					   : "a PodMetrics answer without items");
		return;
	}
	t->stats.metrics++;
	json_array_foreach(items, i, pm) {
		const char *n = obj_name(pm);
		json_t *pod = n != NULL ? json_object_get(t->pods.objs, n)
					: NULL;
		json_t *spec_c, *use_c, *limits;
		const char *cname;

		spec_c = model_container(t, json_object_get(
				json_object_get(pod, "spec"), "containers"));
		if (spec_c == NULL)
			continue;
		cname = json_string_value(json_object_get(spec_c, "name"));
		use_c = NULL;
		{
			json_t *c;
			size_t k;

			json_array_foreach(json_object_get(pm, "containers"),
					   k, c) {
				const char *un = json_string_value(
					json_object_get(c, "name"));

				if (un != NULL && cname != NULL &&
				    strcmp(un, cname) == 0)
					use_c = c;
			}
		}
		if (use_c == NULL)
			continue;
		limits = json_object_get(json_object_get(spec_c, "resources"),
					 "limits");
		json_object_set_new(
			t->usage, n,
			json_pack("[ff]",
				  percent(json_object_get(use_c, "usage"),
					  limits, "cpu"),
				  percent(json_object_get(use_c, "usage"),
					  limits, "memory")));
	}
}

static void metrics_cb(uv_timer_t *h)
{
	struct k8s_target *t = h->data;
	char diag[K8S_MSG_MAX];
	char *sel, *path;

	if (t->closing || t->selector == NULL || !t->pods.synced)
		return;
	sel = k8s_escape(t->selector);
	path = xasprintf("/apis/metrics.k8s.io/v1beta1/namespaces/%s/pods?"
			 "labelSelector=%s", t->ns, sel);
	if (k8s_call(t->env.client, "GET", path, NULL, NULL, metrics_done, t,
		     diag, sizeof(diag)) == 0)
		t->pending++;
	else
		set_error(t, diag);
	free(sel);
	free(path);
}

/* ---- the interface ---------------------------------------------------------- */

static void feed_init(struct k8s_target *t, struct feed *f,
		      enum feed_kind kind)
{
	f->t = t;
	f->kind = kind;
	f->objs = json_object();
	uv_timer_init(t->env.loop, &f->retry);
	f->retry.data = f;
	t->open_timers++;
}

int k8s_target_new(const struct k8s_target_env *env, const char *ns,
		   const char *name, struct k8s_target **out)
{
	struct k8s_target *t;

	if (env == NULL || env->loop == NULL || env->client == NULL ||
	    ns == NULL || name == NULL || ns[0] == '\0' || name[0] == '\0')
		return MDS_E_INVAL;
	t = xcalloc(1, sizeof(*t));
	t->env = *env;
	if (t->env.metrics_ms == 0)
		t->env.metrics_ms = 15000;
	if (t->env.watch_timeout_s == 0)
		t->env.watch_timeout_s = 300;
	t->ns = xstrdup(ns);
	t->name = xstrdup(name);
	t->usage = json_object();
	feed_init(t, &t->dep, FEED_DEPLOYMENT);
	feed_init(t, &t->pods, FEED_PODS);
	uv_timer_init(env->loop, &t->metrics_timer);
	t->metrics_timer.data = t;
	t->open_timers++;
	/* The first fetch soon after the pods are listed, then every
	 * metrics_ms. */
	uv_timer_start(&t->metrics_timer, metrics_cb,
		       t->env.metrics_ms < 1000 ? t->env.metrics_ms : 1000,
		       t->env.metrics_ms);
	feed_list(&t->dep);
	feed_list(&t->pods);
	*out = t;
	return 0;
}

json_t *k8s_target_deployment(const struct k8s_target *t)
{
	return json_object_get(t->dep.objs, t->name);
}

void k8s_target_each_pod(const struct k8s_target *t,
			 void (*fn)(void *arg, json_t *pod), void *arg)
{
	const char *k;
	json_t *v;

	json_object_foreach(t->pods.objs, k, v)
		fn(arg, v);
}

int k8s_target_usage(const struct k8s_target *t, const char *pod,
		     double *cpu_percent, double *mem_percent)
{
	json_t *u = json_object_get(t->usage, pod);

	if (u == NULL)
		return MDS_E_NOTFOUND;
	*cpu_percent = json_real_value(json_array_get(u, 0));
	*mem_percent = json_real_value(json_array_get(u, 1));
	return 0;
}

struct k8s_target_stats k8s_target_stats(const struct k8s_target *t)
{
	return t->stats;
}

const char *k8s_target_error(const struct k8s_target *t)
{
	return t->error;
}

int k8s_target_synced(const struct k8s_target *t)
{
	return t->dep.synced && t->pods.synced;
}

void k8s_target_close(struct k8s_target *t, void (*done)(void *arg),
		      void *arg)
{
	if (t == NULL || t->closing)
		return;
	t->closing = 1;
	t->done = done;
	t->done_arg = arg;
	k8s_watch_cancel(t->dep.stream);
	k8s_watch_cancel(t->pods.stream);
	t->dep.retry.data = t;
	t->pods.retry.data = t;
	uv_close((uv_handle_t *)&t->dep.retry, timer_closed);
	uv_close((uv_handle_t *)&t->pods.retry, timer_closed);
	uv_close((uv_handle_t *)&t->metrics_timer, timer_closed);
}
