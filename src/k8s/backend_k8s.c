/*
 * backend_k8s.c - the `kubernetes` backend; see backend_k8s.h.
 *
 * read, apply and progress are small state machines over API calls: an
 * `op` remembers where it is and what it read, and each answer moves it to
 * its next step (step_*()) until it calls the engine back once.
 */
#include "k8s/backend_k8s.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "k8s/k8s_client.h"
#include "k8s/k8s_quantity.h"
#include "k8s/k8s_target.h"
#include "k8s/k8s_view.h"
#include "k8s/kubeconfig.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

#define NS_MAX 63
#define NAME_MAX_LEN 253

/* A followed Deployment. */
struct followed {
	struct kb *kb;
	char *ref;
	char ns[NS_MAX + 1];
	struct k8s_target *target;
	int busy;                 /* an apply runs on it */
	json_t *resized;          /* pods asked to resize since the shape was
				     applied in place: name -> shape */
	struct followed *next;
};

/* Pods remembered as resized; past this the memory starts over. */
#define RESIZED_MAX 4096

struct kb {
	struct backend base;
	uv_loop_t *loop;
	struct k8s_client *client;
	struct shape_ladder shapes;
	char *container;
	uint32_t metrics_ms, watch_timeout_s;
	int resize;               /* pods/resize served: 1, not: -1, 0 ask
				     (asked again by every apply: a cluster
				     may be upgraded while mdscale runs) */
	struct followed *followed;
	unsigned pending;         /* ops and targets not yet finished */
	int closing;
	void (*done)(void *arg);
	void *done_arg;
};

enum op_kind { OP_READ, OP_APPLY, OP_PROGRESS };


struct op {
	struct kb *kb;
	enum op_kind kind;
	char ref[BACKEND_REF_MAX];
	char ns[NS_MAX + 1], name[NAME_MAX_LEN + 1];
	struct followed *fw;
	int step;
	int attempts;
	struct k8s_view dv;
	struct backend_target want;
	struct backend_target got;   /* read */
	char work_id[BACKEND_WORK_ID_MAX];
	enum backend_work_status wstatus; /* progress: the answer */
	int percent;
	json_t *pods;                /* resize: pods still to resize */
	size_t pod_next;
	backend_read_cb read_cb;
	backend_apply_cb apply_cb;
	backend_progress_cb progress_cb;
	void *arg;
};

static void op_next(struct op *op, const struct k8s_response *r);
static void maybe_free(struct kb *kb);

/* ---- refs, shapes, views ------------------------------------------------- */

static int dns_name(const char *s, size_t max, int dots)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || s[0] == '-' || s[n - 1] == '-' ||
	    s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || (dots && ch == '.')))
			return 0;
	}
	return 1;
}

int backend_k8s_parse_ref(const char *ref, char *ns, size_t nssz, char *name,
			  size_t namesz, char *diag, size_t diagsz)
{
	const char *slash = ref != NULL ? strchr(ref, '/') : NULL;

	if (slash == NULL || (size_t)(slash - ref) >= nssz ||
	    strlen(slash + 1) >= namesz) {
		mds_diag(diag, diagsz, "a Kubernetes Deployment is named "
			 "NAMESPACE/NAME, not \"%s\"", ref != NULL ? ref : "");
		return MDS_E_INVAL;
	}
	snprintf(ns, nssz, "%.*s", (int)(slash - ref), ref);
	snprintf(name, namesz, "%s", slash + 1);
	if (!dns_name(ns, NS_MAX, 0)) {
		mds_diag(diag, diagsz, "\"%s\" is not a Kubernetes namespace "
			 "name (lower-case letters, digits and '-')", ns);
		return MDS_E_INVAL;
	}
	if (!dns_name(name, NAME_MAX_LEN, 1)) {
		mds_diag(diag, diagsz, "\"%s\" is not a Kubernetes Deployment "
			 "name (lower-case letters, digits, '-' and '.')",
			 name);
		return MDS_E_INVAL;
	}
	return 0;
}

/* ---- following --------------------------------------------------------- */

static struct followed *find_followed(struct kb *kb, const char *ref)
{
	for (struct followed *f = kb->followed; f != NULL; f = f->next)
		if (strcmp(f->ref, ref) == 0)
			return f;
	return NULL;
}

/* What check_pod_shape() looks for. */
struct resize_scan {
	struct followed *f;
	const struct shape *want;
};

struct resize_call {
	struct kb *kb;
	char pod[BACKEND_HANDLE_MAX];
};

static void resize_answered(void *arg, const struct k8s_response *r)
{
	struct resize_call *rc = arg;
	struct kb *kb = rc->kb;

	if (r->error != 0)
		log_warn("k8s", "resizing new pod %s: %s", rc->pod, r->message);
	free(rc);
	kb->pending--;
	maybe_free(kb);
}

/* Resizes pod in place to s (a pod the Deployment made after the shape was
 * applied in place, from a template that still has the old one). */
static void resize_pod(struct followed *f, json_t *pod, const char *pname,
		       const struct shape *s)
{
	struct kb *kb = f->kb;
	json_t *c = k8s_view_container(kb->container, json_object_get(json_object_get(pod,
							"spec"), "containers"));
	struct resize_call *rc = xcalloc(1, sizeof(*rc));
	char diag[K8S_MSG_MAX];
	char *path;
	json_t *body;

	rc->kb = kb;
	snprintf(rc->pod, sizeof(rc->pod), "%s", pname);
	body = json_pack("{s{s[{ssso}]}}", "spec", "containers", "name",
			 json_string_value(json_object_get(c, "name")),
			 "resources", k8s_view_resources(s));
	path = xasprintf("/api/v1/namespaces/%s/pods/%s/resize", f->ns, pname);
	if (k8s_call(kb->client, "PATCH", path,
		     "application/strategic-merge-patch+json", body,
		     resize_answered, rc, diag, sizeof(diag)) == 0) {
		kb->pending++;
		log_info("k8s", "%s: resizing new pod %s to %s in place", f->ref,
			 pname, s->name);
	} else {
		free(rc);
	}
	json_decref(body);
	free(path);
}

/* For each pod: resize it if it runs another shape than scan->want and
 * was not asked before. */
static void check_pod_shape(void *arg, json_t *pod)
{
	struct resize_scan *scan = arg;
	struct followed *f = scan->f;
	const char *pname = json_string_value(json_object_get(
		json_object_get(pod, "metadata"), "name"));
	json_t *c = k8s_view_container(f->kb->container, json_object_get(json_object_get(pod,
							"spec"), "containers"));
	const char *asked;

	if (pname == NULL || c == NULL ||
	    json_object_get(pod, "metadata") == NULL ||
	    k8s_view_shape(&f->kb->shapes, json_object_get(json_object_get(c, "resources"),
					    "limits")) == scan->want)
		return;
	asked = json_string_value(json_object_get(f->resized, pname));
	if (asked != NULL && strcmp(asked, scan->want->name) == 0)
		return;
	json_object_set_new(f->resized, pname, json_string(scan->want->name));
	resize_pod(f, pod, pname, scan->want);
}

/*
 * After the Deployment or a pod changed: when the shape was applied in
 * place (the annotation names a shape the template does not have), pods
 * that still run another shape are resized to it, once each.
 */
static void target_changed(void *arg, struct k8s_target *t)
{
	struct followed *f = arg;
	struct kb *kb = f->kb;
	json_t *dep = k8s_target_deployment(t);
	const char *ann = json_string_value(json_object_get(json_object_get(
		json_object_get(dep, "metadata"), "annotations"),
		K8S_SHAPE_ANNOTATION));
	const struct shape *want = ann != NULL ? shape_find(&kb->shapes, ann)
					       : NULL;
	struct resize_scan scan = { f, want };
	struct k8s_view dv;

	if (kb->closing)
		return;
	backend_instances_changed(&kb->base, f->ref);
	if (want == NULL || f->busy)
		return;
	k8s_view_read(&kb->shapes, kb->container, dep, &dv);
	/* Only while the shape applied in place counts, and the template
	 * does not have it (else pods are made with it). */
	if (strcmp(dv.shape, want->name) != 0 ||
	    strcmp(dv.template_shape, want->name) == 0)
		return;
	if (json_object_size(f->resized) > RESIZED_MAX)
		json_object_clear(f->resized);
	k8s_target_each_pod(t, check_pod_shape, &scan);
}

/* Starts list-then-watch of ref if not yet. */
static struct followed *follow(struct kb *kb, const char *ref, const char *ns,
			       const char *name)
{
	struct followed *f = find_followed(kb, ref);
	struct k8s_target_env env = {
		.loop = kb->loop,
		.client = kb->client,
		.metrics_ms = kb->metrics_ms,
		.watch_timeout_s = kb->watch_timeout_s,
		.container = kb->container,
		.changed = target_changed,
	};

	if (f != NULL)
		return f;
	f = xcalloc(1, sizeof(*f));
	f->kb = kb;
	f->ref = xstrdup(ref);
	snprintf(f->ns, sizeof(f->ns), "%s", ns);
	f->resized = json_object();
	env.arg = f;
	if (k8s_target_new(&env, ns, name, &f->target) != 0) {
		json_decref(f->resized);
		free(f->ref);
		free(f);
		return NULL;
	}
	f->next = kb->followed;
	kb->followed = f;
	return f;
}

/* ---- ops ------------------------------------------------------------------ */

static struct op *op_new(struct kb *kb, enum op_kind kind, const char *ref,
			 void *arg, char *diag, size_t diagsz, int *rc)
{
	struct op *op = xcalloc(1, sizeof(*op));

	op->kb = kb;
	op->kind = kind;
	op->arg = arg;
	*rc = backend_k8s_parse_ref(ref, op->ns, sizeof(op->ns), op->name,
				    sizeof(op->name), diag, diagsz);
	if (*rc == 0 && kb->closing)
		*rc = MDS_E_UNAVAIL;
	if (*rc != 0) {
		free(op);
		return NULL;
	}
	snprintf(op->ref, sizeof(op->ref), "%s", ref);
	op->fw = follow(kb, ref, op->ns, op->name);
	return op;
}

/* Calls the engine back once with rc (and diag when rc != 0), frees op. */
static void op_finish(struct op *op, int rc, const char *diag)
{
	struct kb *kb = op->kb;

	if (op->kind == OP_APPLY && op->fw != NULL)
		op->fw->busy = 0;
	if (rc != 0)
		log_warn("k8s", "%s: %s", op->ref, diag);
	switch (op->kind) {
	case OP_READ:
		op->read_cb(op->arg, rc, rc == 0 ? &op->got : NULL, diag);
		break;
	case OP_APPLY:
		op->apply_cb(op->arg, rc, rc == 0 ? op->work_id : "", diag);
		break;
	case OP_PROGRESS: {
		struct backend_progress p = { 0 };

		if (rc == 0) {
			p.status = op->wstatus;
			p.percent = op->percent;
			snprintf(p.message, sizeof(p.message), "%s",
				 op->got.message);
		}
		op->progress_cb(op->arg, rc, rc == 0 ? &p : NULL, diag);
		break;
	}
	}
	json_decref(op->pods);
	free(op);
	kb->pending--;
	maybe_free(kb);
}

static void op_answer(void *arg, const struct k8s_response *r)
{
	op_next(arg, r);
}

/* Sends one call for op; on a failure to send, finishes op. */
static void op_call(struct op *op, const char *method, const char *path,
		    const char *ctype, json_t *body)
{
	char diag[K8S_MSG_MAX];

	if (k8s_call(op->kb->client, method, path, ctype, body, op_answer, op,
		     diag, sizeof(diag)) != 0)
		op_finish(op, MDS_E_UNAVAIL, diag);
	json_decref(body);
}

static void get_deployment(struct op *op, const char *sub)
{
	char *path = xasprintf("/apis/apps/v1/namespaces/%s/deployments/%s%s",
			       op->ns, op->name, sub);

	op_call(op, "GET", path, NULL, NULL);
	free(path);
}

/* ---- read ---------------------------------------------------------------- */

enum { R_DEPLOYMENT, R_HPA, R_VPA };

/* Appends "a NAME targets it" notes for the autoscalers in list. */
static void autoscaler_note(struct op *op, json_t *list, const char *what,
			    const char *refkey)
{
	json_t *it;
	size_t i;

	json_array_foreach(json_object_get(list, "items"), i, it) {
		json_t *tr = json_object_get(json_object_get(it, "spec"),
					     refkey);
		const char *kind = json_string_value(json_object_get(tr,
							"kind"));
		const char *n = json_string_value(json_object_get(tr, "name"));
		size_t len = strlen(op->got.message);

		if (kind == NULL || n == NULL ||
		    strcmp(kind, "Deployment") != 0 ||
		    strcmp(n, op->name) != 0)
			continue;
		snprintf(op->got.message + len, sizeof(op->got.message) - len,
			 "%s%s %s targets it; its changes and mdscale's would "
			 "fight", len > 0 ? "; " : "", what,
			 json_string_value(json_object_get(json_object_get(
				 it, "metadata"), "name")));
	}
}

static void read_step(struct op *op, const struct k8s_response *r)
{
	char *path;

	if (op->step == R_DEPLOYMENT) {
		struct k8s_view *dv = &op->dv;

		k8s_view_read(&op->kb->shapes, op->kb->container, r->obj, dv);
		snprintf(op->got.state, sizeof(op->got.state), "%s",
			 dv->deadline_exceeded ? "FAILED"
			 : k8s_view_rolling(dv)         ? "UPDATING"
					       : "ACTIVE");
		op->got.count = (uint32_t)dv->replicas;
		snprintf(op->got.shape, sizeof(op->got.shape), "%s",
			 dv->shape);
		snprintf(op->got.etag, sizeof(op->got.etag), "%s", dv->rv);
		op->step = R_HPA;
		path = xasprintf("/apis/autoscaling/v2/namespaces/%s/"
				 "horizontalpodautoscalers", op->ns);
	} else if (op->step == R_HPA) {
		autoscaler_note(op, r->obj, "HorizontalPodAutoscaler",
				"scaleTargetRef");
		op->step = R_VPA;
		path = xasprintf("/apis/autoscaling.k8s.io/v1/namespaces/%s/"
				 "verticalpodautoscalers", op->ns);
	} else {
		autoscaler_note(op, r->obj, "VerticalPodAutoscaler",
				"targetRef");
		if (op->got.message[0] != '\0')
			log_warn("k8s", "%s: %s", op->ref, op->got.message);
		op_finish(op, 0, "");
		return;
	}
	op_call(op, "GET", path, NULL, NULL);
	free(path);
}

static int k_read(struct backend *b, const char *ref, backend_read_cb cb,
		  void *arg)
{
	struct kb *kb = b->impl;
	char diag[BACKEND_MSG_MAX];
	int rc;
	struct op *op = op_new(kb, OP_READ, ref, arg, diag, sizeof(diag), &rc);

	if (op == NULL)
		return rc;
	op->read_cb = cb;
	op->step = R_DEPLOYMENT;
	kb->pending++;
	get_deployment(op, "");
	return 0;
}

/* ---- apply ---------------------------------------------------------------- */

enum {
	A_READ,      /* GET the Deployment */
	A_DISCOVER,  /* GET /api/v1: is pods/resize served? */
	A_SCALE_GET, /* GET .../scale */
	A_SCALE_PUT, /* PUT .../scale with its resourceVersion */
	A_GENERATION,/* GET the Deployment: the generation to wait for */
	A_PATCH,     /* PATCH the pod template (rolling, maxUnavailable 0) */
	A_PODS,      /* GET the pods to resize */
	A_RESIZE,    /* PATCH pods/NAME/resize, one pod at a time */
	A_ANNOTATE,  /* PATCH the shape annotation, with resourceVersion */
};

/* The name of the model container in the template of the Deployment
 * answer, or NULL. */
static const char *template_container(struct op *op, json_t *dep)
{
	json_t *c = k8s_view_container(op->kb->container, json_object_get(json_object_get(
		json_object_get(json_object_get(dep, "spec"), "template"),
		"spec"), "containers"));

	return json_string_value(json_object_get(c, "name"));
}

static void send_scale_put(struct op *op, json_t *scale)
{
	const char *rv = json_string_value(json_object_get(json_object_get(
		scale, "metadata"), "resourceVersion"));
	char *path = xasprintf("/apis/apps/v1/namespaces/%s/deployments/%s/"
			       "scale", op->ns, op->name);
	json_t *body = json_pack("{sssss{ssssss}s{si}}", "apiVersion",
				 "autoscaling/v1", "kind", "Scale", "metadata",
				 "name", op->name, "namespace", op->ns,
				 "resourceVersion", rv != NULL ? rv : "",
				 "spec", "replicas", (int)op->want.count);

	op->step = A_SCALE_PUT;
	op_call(op, "PUT", path, "application/json", body);
	free(path);
}

/* The template patch: the shape's resources on the model container,
 * replicas, maxUnavailable 0, the annotation; conditional on rv. */
static void send_template_patch(struct op *op, json_t *dep)
{
	const struct shape *s = shape_find(&op->kb->shapes, op->want.shape);
	const char *cname = template_container(op, dep);
	char *path;
	json_t *body;

	if (cname == NULL) {
		op_finish(op, MDS_E_NOTFOUND, "the Deployment has no such "
			  "container to size");
		return;
	}
	body = json_pack(
		"{s{sss{sssn}}s{sis{sss{sisi}}s{s{s[{ssso}]}}}}", "metadata",
		"resourceVersion", op->dv.rv, "annotations",
		K8S_SHAPE_ANNOTATION, s->name, K8S_TEMPLATE_ANNOTATION,
		"spec", "replicas",
		(int)op->want.count, "strategy", "type", "RollingUpdate",
		"rollingUpdate",
		"maxUnavailable", 0, "maxSurge", 1, "template", "spec",
		"containers", "name", cname, "resources", k8s_view_resources(s));
	path = xasprintf("/apis/apps/v1/namespaces/%s/deployments/%s", op->ns,
			 op->name);
	op->step = A_PATCH;
	op_call(op, "PATCH", path, "application/strategic-merge-patch+json",
		body);
	free(path);
}

/* Resizes the next pod, or annotates the Deployment after the last. */
static void send_next_resize(struct op *op)
{
	const struct shape *s = shape_find(&op->kb->shapes, op->want.shape);
	json_t *pod = json_array_get(op->pods, op->pod_next++);
	char *path;
	json_t *body;

	if (pod == NULL) {
		body = json_pack("{s{sss{ssss}}}", "metadata",
				 "resourceVersion", op->dv.rv, "annotations",
				 K8S_SHAPE_ANNOTATION, s->name,
				 K8S_TEMPLATE_ANNOTATION,
				 op->dv.template_shape);
		path = xasprintf("/apis/apps/v1/namespaces/%s/deployments/%s",
				 op->ns, op->name);
		op->step = A_ANNOTATE;
		op_call(op, "PATCH", path, "application/merge-patch+json",
			body);
		free(path);
		return;
	}
	body = json_pack("{s{s[{ssso}]}}", "spec", "containers", "name",
			 json_string_value(json_object_get(
				 k8s_view_container(op->kb->container,
					      json_object_get(json_object_get(
						      pod, "spec"),
							      "containers")),
				 "name")),
			 "resources", k8s_view_resources(s));
	path = xasprintf("/api/v1/namespaces/%s/pods/%s/resize", op->ns,
			 json_string_value(json_object_get(
				 json_object_get(pod, "metadata"), "name")));
	op->step = A_RESIZE;
	op_call(op, "PATCH", path, "application/strategic-merge-patch+json",
		body);
	free(path);
}

/* After the first read: decide what to change, or nothing. */
static void apply_decide(struct op *op, json_t *dep)
{
	struct k8s_view *dv = &op->dv;
	char msg[K8S_MSG_MAX];
	int shape_change;

	k8s_view_read(&op->kb->shapes, op->kb->container, dep, dv);
	shape_change = op->want.shape[0] != '\0' &&
		       strcmp(op->want.shape, dv->shape) != 0;
	if (!shape_change && (int64_t)op->want.count == dv->replicas) {
		op_finish(op, 0, ""); /* at want, or already going there */
		return;
	}
	if (k8s_view_rolling(dv) && !dv->deadline_exceeded) {
		snprintf(msg, sizeof(msg), "Deployment %s is still rolling out "
			 "(generation %" PRId64 ", observed %" PRId64 ", %"
			 PRId64 "/%" PRId64 " ready); one change at a time",
			 op->ref, dv->generation, dv->observed, dv->ready,
			 dv->replicas);
		op_finish(op, MDS_E_CONFLICT, msg);
		return;
	}
	if (!shape_change) {
		op->step = A_SCALE_GET;
		get_deployment(op, "/scale");
	} else if ((int64_t)op->want.count != dv->replicas ||
		   op->kb->resize < 0) {
		send_template_patch(op, dep);
	} else if (op->kb->resize == 0) {
		op->step = A_DISCOVER;
		op_call(op, "GET", "/api/v1", NULL, NULL);
	} else {
		char *sel = k8s_escape(dv->selector);
		char *path = xasprintf("/api/v1/namespaces/%s/pods?"
				       "labelSelector=%s", op->ns, sel);

		op->step = A_PODS;
		op_call(op, "GET", path, NULL, NULL);
		free(sel);
		free(path);
	}
}

/* Whether the APIResourceList serves pods/resize. */
static int serves_resize(json_t *list)
{
	json_t *res;
	size_t i;

	json_array_foreach(json_object_get(list, "resources"), i, res) {
		const char *n = json_string_value(json_object_get(res, "name"));

		if (n != NULL && strcmp(n, "pods/resize") == 0)
			return 1;
	}
	return 0;
}

/* A 409 on a conditional write: read again and retry, a few times. */
static void apply_conflict(struct op *op, const struct k8s_response *r)
{
	char msg[K8S_MSG_MAX];

	if (++op->attempts >= K8S_APPLY_ATTEMPTS) {
		snprintf(msg, sizeof(msg), "Deployment %s kept changing under "
			 "us (%d conflicts); nothing was overwritten: %s",
			 op->ref, op->attempts, r->message);
		op_finish(op, MDS_E_CONFLICT, msg);
		return;
	}
	log_info("k8s", "%s: conflict, reading again (attempt %d)", op->ref,
		 op->attempts + 1);
	op->step = op->step == A_SCALE_PUT ? A_SCALE_GET : A_READ;
	get_deployment(op, op->step == A_SCALE_GET ? "/scale" : "");
}

/* Sets the work id from a Deployment whose generation carries the
 * change. */
static void apply_done(struct op *op, json_t *dep)
{
	snprintf(op->work_id, sizeof(op->work_id), "rollout:%" PRId64 ":%u",
		 (int64_t)json_integer_value(json_object_get(
			 json_object_get(dep, "metadata"), "generation")),
		 op->want.count);
	op_finish(op, 0, "");
}

static void apply_step(struct op *op, const struct k8s_response *r)
{
	if (r->status == 409 &&
	    (op->step == A_SCALE_PUT || op->step == A_PATCH ||
	     op->step == A_ANNOTATE)) {
		apply_conflict(op, r);
		return;
	}
	if (r->error != 0 && !(op->step == A_DISCOVER)) {
		op_finish(op, r->error, r->message);
		return;
	}
	switch (op->step) {
	case A_READ:
		apply_decide(op, r->obj);
		break;
	case A_DISCOVER:
		op->kb->resize = r->error == 0 && serves_resize(r->obj) ? 1
									  : -1;
		op->step = A_READ;
		get_deployment(op, "");
		break;
	case A_SCALE_GET:
		send_scale_put(op, r->obj);
		break;
	case A_SCALE_PUT:
		op->step = A_GENERATION;
		get_deployment(op, "");
		break;
	case A_GENERATION:
	case A_PATCH:
		apply_done(op, r->obj);
		break;
	case A_PODS:
		/* Again after a conflict: the pods read before go. */
		json_decref(op->pods);
		op->pods = json_incref(json_object_get(r->obj, "items"));
		op->pod_next = 0;
		send_next_resize(op);
		break;
	case A_RESIZE:
		send_next_resize(op);
		break;
	case A_ANNOTATE:
		snprintf(op->work_id, sizeof(op->work_id), "resize:%s",
			 op->want.shape);
		op_finish(op, 0, "");
		break;
	}
}

static int k_apply(struct backend *b, const char *ref,
		   const struct backend_target *want, backend_apply_cb cb,
		   void *arg)
{
	struct kb *kb = b->impl;
	char diag[BACKEND_MSG_MAX];
	int rc;
	struct op *op;

	if (want->shape[0] != '\0' &&
	    shape_find(&kb->shapes, want->shape) == NULL)
		return MDS_E_INVAL;
	if (want->count > INT32_MAX)
		return MDS_E_INVAL;
	op = op_new(kb, OP_APPLY, ref, arg, diag, sizeof(diag), &rc);
	if (op == NULL)
		return rc;
	if (op->fw != NULL && op->fw->busy) {
		log_warn("k8s", "%s: a change is already under way; one at a "
			 "time", ref);
		free(op);
		return MDS_E_CONFLICT;
	}
	if (op->fw != NULL)
		op->fw->busy = 1;
	op->apply_cb = cb;
	op->want = *want;
	kb->resize = 0;
	op->step = A_READ;
	kb->pending++;
	get_deployment(op, "");
	return 0;
}

/* ---- progress ------------------------------------------------------------- */

/* Whether every pod's model container runs with the shape's limits; any
 * pod whose resize is Infeasible fails it (msg filled). */
static enum backend_work_status resize_status(struct op *op, json_t *pods,
					      const struct shape *s,
					      char *msg, size_t msgsz)
{
	json_t *pod, *cs, *cond;
	size_t i, k;
	int done = 1;

	json_array_foreach(pods, i, pod) {
		json_t *st = json_object_get(pod, "status");
		const struct shape *at = NULL;

		json_array_foreach(json_object_get(st, "conditions"), k, cond) {
			const char *type = json_string_value(json_object_get(
				cond, "type"));
			const char *reason = json_string_value(
				json_object_get(cond, "reason"));

			if (type != NULL && reason != NULL &&
			    strcmp(type, "PodResizePending") == 0 &&
			    strcmp(reason, "Infeasible") == 0) {
				snprintf(msg, msgsz, "pod resize infeasible: "
					 "%s", json_string_value(json_object_get(
						       cond, "message"))
						       ? json_string_value(
								 json_object_get(
									 cond,
									 "message"))
						       : "");
				return BACKEND_WORK_FAILED;
			}
		}
		cs = k8s_view_container(op->kb->container, json_object_get(st,
							"containerStatuses"));
		at = k8s_view_shape(&op->kb->shapes, json_object_get(json_object_get(cs,
						"resources"), "limits"));
		if (at != s)
			done = 0;
	}
	return done ? BACKEND_WORK_SUCCEEDED : BACKEND_WORK_IN_PROGRESS;
}

/* The rollout's progress from the Deployment. */
static void rollout_progress(struct op *op, json_t *dep, int64_t gen,
			     unsigned count)
{
	struct k8s_view *dv = &op->dv;

	k8s_view_read(&op->kb->shapes, op->kb->container, dep, dv);
	if (dv->deadline_exceeded) {
		op->wstatus = BACKEND_WORK_FAILED;
		snprintf(op->got.message, sizeof(op->got.message), "%s",
			 dv->condition_msg);
	} else if (dv->observed >= gen && dv->updated == count &&
		   dv->ready == count && dv->st_replicas == count) {
		op->wstatus = BACKEND_WORK_SUCCEEDED;
	} else {
		op->wstatus = BACKEND_WORK_IN_PROGRESS;
		snprintf(op->got.message, sizeof(op->got.message),
			 "%" PRId64 " of %u ready, %" PRId64 " updated, %"
			 PRId64 " in all", dv->ready, count, dv->updated,
			 dv->st_replicas);
	}
	if (op->wstatus == BACKEND_WORK_SUCCEEDED || count == 0)
		op->percent = 100;
	else
		op->percent = dv->ready >= count ? 99
						 : (int)(dv->ready * 99 / count);
}

enum { P_DEPLOYMENT, P_PODS };

static void progress_step(struct op *op, const struct k8s_response *r)
{
	int64_t gen = 0;
	unsigned count = 0;

	if (r->error != 0) {
		op_finish(op, r->error, r->message);
		return;
	}
	if (sscanf(op->work_id, "rollout:%" SCNd64 ":%u", &gen, &count) == 2) {
		rollout_progress(op, r->obj, gen, count);
	} else if (op->step == P_DEPLOYMENT) {
		/* A resize: the pods, by the Deployment's selector. */
		char *esc, *path;

		k8s_view_read(&op->kb->shapes, op->kb->container, r->obj, &op->dv);
		esc = k8s_escape(op->dv.selector);
		path = xasprintf("/api/v1/namespaces/%s/pods?labelSelector=%s",
				 op->ns, esc);
		op->step = P_PODS;
		op_call(op, "GET", path, NULL, NULL);
		free(esc);
		free(path);
		return;
	} else {
		op->wstatus = resize_status(
			op, json_object_get(r->obj, "items"),
			shape_find(&op->kb->shapes, op->work_id + 7),
			op->got.message, sizeof(op->got.message));
		op->percent = op->wstatus == BACKEND_WORK_SUCCEEDED ? 100 : 50;
	}
	op_finish(op, 0, "");
}

static int k_progress(struct backend *b, const char *ref, const char *work_id,
		      backend_progress_cb cb, void *arg)
{
	struct kb *kb = b->impl;
	char diag[BACKEND_MSG_MAX];
	int rc;
	struct op *op;

	if (strncmp(work_id, "rollout:", 8) != 0 &&
	    !(strncmp(work_id, "resize:", 7) == 0 &&
	      shape_find(&kb->shapes, work_id + 7) != NULL))
		return MDS_E_INVAL;
	op = op_new(kb, OP_PROGRESS, ref, arg, diag, sizeof(diag), &rc);
	if (op == NULL)
		return rc;
	op->progress_cb = cb;
	snprintf(op->work_id, sizeof(op->work_id), "%s", work_id);
	op->step = P_DEPLOYMENT;
	kb->pending++;
	get_deployment(op, "");
	return 0;
}

static void op_next(struct op *op, const struct k8s_response *r)
{
	switch (op->kind) {
	case OP_READ:
		if (r->error != 0 &&
		    !(op->step == R_VPA && r->status == 404)) {
			op_finish(op, r->error, r->message);
			return;
		}
		read_step(op, r);
		break;
	case OP_APPLY:
		apply_step(op, r);
		break;
	case OP_PROGRESS:
		progress_step(op, r);
		break;
	}
}

/* ---- list, usage, shapes, close ----------------------------------------- */

struct list_ctx {
	const struct kb *kb;
	void (*fn)(void *arg, const struct backend_listed *x);
	void *arg;
};

/* The model container's first containerPort, or 0. */
static int pod_port(const struct kb *kb, json_t *pod)
{
	json_t *c = k8s_view_container(kb->container, json_object_get(
		json_object_get(pod, "spec"), "containers"));
	json_int_t port = json_integer_value(json_object_get(json_array_get(
		json_object_get(c, "ports"), 0), "containerPort"));

	return port > 0 && port <= 65535 ? (int)port : 0;
}

static void list_pod(void *arg, json_t *pod)
{
	struct list_ctx *lc = arg;
	json_t *cond;
	size_t i;
	const char *n = json_string_value(json_object_get(json_object_get(
		pod, "metadata"), "name"));
	struct backend_listed x = { .id = n, .handle = n, .ready = false };

	if (n == NULL)
		return;
	/* Only a pod that runs and is not going away is reached. */
	if (json_object_get(json_object_get(pod, "metadata"),
			    "deletionTimestamp") == NULL) {
		x.addr = json_string_value(json_object_get(json_object_get(
			pod, "status"), "podIP"));
		x.port = pod_port(lc->kb, pod);
	}
	json_array_foreach(json_object_get(json_object_get(pod, "status"),
					   "conditions"), i, cond) {
		const char *type = json_string_value(json_object_get(cond,
							"type"));
		const char *st = json_string_value(json_object_get(cond,
							"status"));

		if (type != NULL && st != NULL && strcmp(type, "Ready") == 0)
			x.ready = strcmp(st, "True") == 0;
	}
	lc->fn(lc->arg, &x);
}

static int k_list(struct backend *b, const char *ref,
		  void (*fn)(void *arg, const struct backend_listed *x),
		  void *arg)
{
	struct kb *kb = b->impl;
	struct followed *f = ref != NULL ? find_followed(kb, ref) : NULL;
	struct list_ctx lc = { kb, fn, arg };

	if (ref == NULL) {
		for (f = kb->followed; f != NULL; f = f->next)
			k8s_target_each_pod(f->target, list_pod, &lc);
		return 0;
	}
	if (f == NULL) {
		char ns[NS_MAX + 1], name[NAME_MAX_LEN + 1];
		int rc = backend_k8s_parse_ref(ref, ns, sizeof(ns), name,
					       sizeof(name), NULL, 0);

		if (rc != 0)
			return rc;
		follow(kb, ref, ns, name);
		return MDS_E_UNAVAIL; /* nothing known yet */
	}
	if (!k8s_target_synced(f->target))
		return MDS_E_UNAVAIL;
	k8s_target_each_pod(f->target, list_pod, &lc);
	return 0;
}

static int k_usage(struct backend *b, const struct backend_instance *in,
		   struct backend_usage *out)
{
	struct kb *kb = b->impl;
	const char *pod = in->handle[0] != '\0' ? in->handle : in->id;

	for (struct followed *f = kb->followed; f != NULL; f = f->next) {
		double cpu, mem;

		if (k8s_target_usage(f->target, pod, &cpu, &mem) == 0) {
			memset(out, 0, sizeof(*out));
			out->cpu_percent = cpu;
			out->mem_percent = mem;
			return 0;
		}
	}
	return MDS_E_NOTFOUND;
}

static const struct shape_ladder *k_shapes(struct backend *b)
{
	return &((struct kb *)b->impl)->shapes;
}

static void maybe_free(struct kb *kb)
{
	if (!kb->closing || kb->pending > 0)
		return;
	k8s_client_free(kb->client);
	free(kb->container);
	if (kb->done != NULL)
		kb->done(kb->done_arg);
	free(kb);
}

static void target_closed(void *arg)
{
	struct kb *kb = arg;

	kb->pending--;
	maybe_free(kb);
}

static void k_close(struct backend *b, void (*done)(void *arg), void *arg)
{
	struct kb *kb = b->impl;

	kb->closing = 1;
	kb->done = done;
	kb->done_arg = arg;
	while (kb->followed != NULL) {
		struct followed *f = kb->followed;

		kb->followed = f->next;
		kb->pending++;
		k8s_target_close(f->target, target_closed, kb);
		json_decref(f->resized);
		free(f->ref);
		free(f);
	}
	kb->pending++;
	target_closed(kb); /* frees now if nothing is pending */
}

int backend_k8s_stats(struct backend *b, const char *ref,
		      struct k8s_target_stats *out)
{
	struct followed *f = find_followed(b->impl, ref);

	if (f == NULL)
		return MDS_E_NOTFOUND;
	*out = k8s_target_stats(f->target);
	return 0;
}

static int k_check_ref(struct backend *b, const char *ref, char *diag,
		       size_t diagsz)
{
	char ns[NS_MAX + 1], name[NAME_MAX_LEN + 1];

	(void)b;
	return backend_k8s_parse_ref(ref, ns, sizeof(ns), name, sizeof(name),
				     diag, diagsz);
}

static const struct backend_ops k8s_ops = {
	.name = "kubernetes",
	.caps = BACKEND_CAP_PLATFORM | BACKEND_CAP_USAGE | BACKEND_CAP_ZERO,
	.read = k_read,
	.apply = k_apply,
	.progress = k_progress,
	.poll_ms = 1000,
	.check_ref = k_check_ref,
	.usage = k_usage,
	.list = k_list,
	.shapes = k_shapes,
	.close = k_close,
};

int backend_k8s_new(const struct backend_k8s_env *env, struct backend **out,
		    char *diag, size_t diagsz)
{
	struct k8s_cred *cred = NULL;
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	struct kb *kb;
	int rc;

	if (env == NULL || env->loop == NULL || env->httpc == NULL ||
	    env->shapes == NULL || out == NULL)
		return MDS_E_INVAL;
	if (env->kubeconfig == NULL && host != NULL && host[0] != '\0')
		rc = kubeconfig_incluster(NULL, &cred, diag, diagsz);
	else
		rc = kubeconfig_load(env->kubeconfig, env->context, &cred,
				     diag, diagsz);
	if (rc != 0)
		return rc;
	kb = xcalloc(1, sizeof(*kb));
	rc = k8s_client_new(env->loop, env->httpc, cred, &kb->client);
	if (rc != 0) {
		k8s_cred_free(cred);
		free(kb);
		return rc;
	}
	kb->loop = env->loop;
	kb->shapes = *env->shapes;
	kb->container = env->container != NULL ? xstrdup(env->container)
						: NULL;
	kb->metrics_ms = env->metrics_ms;
	kb->watch_timeout_s = env->watch_timeout_s;
	kb->base.ops = &k8s_ops;
	kb->base.impl = kb;
	*out = &kb->base;
	return 0;
}
