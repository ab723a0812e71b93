/*
 * backend_oci.c - the `oci` backend; see backend_oci.h and deploy/backend.h.
 *
 * Each op that talks to OCI is a struct op: one request, or a chain (apply
 * is a GET then a PUT), ending in the op's callback, always from the OCI
 * client's done callback, so never inside the op's call. Pending ops are
 * listed so that close() can cancel them and wait for their callbacks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci/backend_oci.h"
#include "oci/client.h"
#include "oci/datascience.h"
#include "oci/metrics.h"
#include "oci/ocid.h"
#include "oci/shapes.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

/* OCI work requests for a model deployment update take minutes. */
#define DEFAULT_POLL_MS 2000
#define DS_API "/20190101"
#define MODEL_DEPLOYMENT_TYPE "datasciencemodeldeployment"

enum op_kind { OP_READ, OP_APPLY_READ, OP_APPLY_PUT, OP_PROGRESS };

struct oci_backend;

struct op {
	struct oci_backend *ob;
	struct op *prev, *next;
	enum op_kind kind;
	char ref[BACKEND_REF_MAX];
	char url[1024];
	struct backend_target want;
	struct oci_call *call;
	union {
		backend_read_cb read;
		backend_apply_cb apply;
		backend_progress_cb progress;
	} cb;
	void *arg;
};

struct oci_backend {
	struct backend base;
	uv_loop_t *loop;
	struct oci_client *client;
	char *region;
	char *endpoint;
	struct shape_ladder shapes;
	struct oci_metrics *metrics;
	struct op *ops;
	int closing;
	void (*close_done)(void *arg);
	void *close_arg;
};

int backend_oci_check_ref(const char *ref, const char *region,
			  char out[64], char *diag, size_t diagsz)
{
	struct ocid id;
	int rc;

	out[0] = '\0';
	rc = ocid_parse(ref, &id, diag, diagsz);
	if (rc != 0)
		return rc;
	if (strcmp(id.type, MODEL_DEPLOYMENT_TYPE) != 0) {
		mds_diag(diag, diagsz,
			 "%s is the OCID of a %s, not of a model deployment "
			 "(ocid1." MODEL_DEPLOYMENT_TYPE ".*)",
			 ref, id.type);
		return MDS_E_INVAL;
	}
	if (!id.region[0] && !(region && *region)) {
		mds_diag(diag, diagsz, "%s names no region and none is "
			 "configured: set region in the OCI config", ref);
		return MDS_E_INVAL;
	}
	snprintf(out, 64, "%s", id.region[0] ? id.region : region);
	return 0;
}

/* Builds the Data Science URL of path for ref into op->url. */
static int op_url(struct op *op, const char *fmt, const char *id)
{
	char region[64], diag[256], *base;
	int n;

	if (backend_oci_check_ref(op->ref, op->ob->region, region, diag,
				  sizeof(diag)) != 0)
		return MDS_E_INVAL;
	base = oci_endpoint("datascience", region, op->ob->endpoint);
	n = snprintf(op->url, sizeof(op->url), "%s" DS_API, base);
	free(base);
	if (n < 0 || (size_t)n >= sizeof(op->url))
		return MDS_E_INVAL;
	n += snprintf(op->url + n, sizeof(op->url) - (size_t)n, fmt, id);
	return (size_t)n < sizeof(op->url) ? 0 : MDS_E_INVAL;
}

static struct op *op_new(struct oci_backend *ob, enum op_kind kind,
			 const char *ref, void *arg)
{
	struct op *op = xcalloc(1, sizeof(*op));

	op->ob = ob;
	op->kind = kind;
	snprintf(op->ref, sizeof(op->ref), "%s", ref);
	op->arg = arg;
	return op;
}

static void op_link(struct op *op)
{
	struct oci_backend *ob = op->ob;

	op->next = ob->ops;
	if (ob->ops)
		ob->ops->prev = op;
	ob->ops = op;
}

static void close_finish(struct oci_backend *ob);

/* Unlinks and frees op; the last op of a closing backend finishes it. */
static void op_free(struct op *op)
{
	struct oci_backend *ob = op->ob;

	if (op->prev)
		op->prev->next = op->next;
	else if (ob->ops == op)
		ob->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	free(op);
	if (ob->closing && !ob->ops)
		close_finish(ob);
}

static void on_response(void *arg, const struct oci_response *res);

static int op_send(struct op *op, const char *method, const char *body,
		   const char *if_match)
{
	struct oci_request req = {
		.method = method, .url = op->url, .body = body,
		.body_len = body ? strlen(body) : 0, .if_match = if_match,
	};

	return oci_client_send(op->ob->client, &req, on_response, op,
			       &op->call);
}

/* Sends op's GET of the path fmt with id and links it; on failure op is
 * freed and the error returned. */
static int op_get(struct op *op, const char *fmt, const char *id)
{
	int rc = op_url(op, fmt, id);

	if (rc == 0)
		rc = op_send(op, "GET", NULL, NULL);
	if (rc != 0) {
		free(op);
		return rc;
	}
	op_link(op);
	return 0;
}

/* The error of an answer that is not 2xx, in the backend's words. */
static int answer_error(const struct op *op, const struct oci_response *res,
			char *diag, size_t diagsz)
{
	char oci[512];

	if (res->error) {
		mds_diag(diag, diagsz, "%s: %s", op->url, res->detail);
		return res->error;
	}
	oci_error_text(res->body, res->body_len, oci, sizeof(oci));
	switch (res->status) {
	case 401:
		mds_diag(diag, diagsz, "OCI refused the request signature "
			 "(401 %s): check user, fingerprint and key", oci);
		return MDS_E_UNAUTH;
	case 404:
		mds_diag(diag, diagsz, "%s does not exist or is not visible "
			 "to this user (404 %s)", op->ref, oci);
		return MDS_E_NOTFOUND;
	case 409:
		mds_diag(diag, diagsz, "%s is busy (409 %s); nothing changed",
			 op->ref, oci);
		return MDS_E_CONFLICT;
	case 412:
		mds_diag(diag, diagsz, "%s changed since it was read (412 %s); "
			 "nothing changed", op->ref, oci);
		return MDS_E_CONFLICT;
	case 400:
		mds_diag(diag, diagsz, "OCI refused the update of %s (400 %s)",
			 op->ref, oci);
		return MDS_E_INVAL;
	default:
		mds_diag(diag, diagsz, "%s: HTTP %ld %s", op->ref, res->status,
			 oci);
		return res->status == 429 || res->status >= 500
			       ? MDS_E_UNAVAIL
			       : MDS_E_IO;
	}
}

/* The ladder rung a deployment runs: its shape, or its Flex rung. */
static void md_rung(const struct oci_md *md, char out[SHAPE_NAME_MAX + 1])
{
	if (md->ocpus > 0)
		oci_flex_rung_name(md->shape, md->ocpus, md->memory_gb, out);
	else
		snprintf(out, SHAPE_NAME_MAX + 1, "%s", md->shape);
}

static void md_target(const struct oci_md *md, const char *etag,
		      struct backend_target *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->state, sizeof(t->state), "%s", md->state);
	t->count = md->count;
	md_rung(md, t->shape);
	snprintf(t->etag, sizeof(t->etag), "%s", etag);
	snprintf(t->message, sizeof(t->message), "%.*s",
		 (int)sizeof(t->message) - 1, md->display_name);
}

static void done_read(struct op *op, const struct oci_response *res)
{
	struct backend_target t;
	struct oci_md md;
	char diag[512] = "";
	int rc;

	if (res->error || res->status != 200) {
		rc = answer_error(op, res, diag, sizeof(diag));
		op->cb.read(op->arg, rc, NULL, diag);
		return;
	}
	rc = oci_md_parse(res->body, res->body_len, &md, diag, sizeof(diag));
	if (rc == 0) {
		md_target(&md, res->etag, &t);
		oci_metrics_track(op->ob->metrics, md.id, md.compartment_id,
				  md.state);
	}
	op->cb.read(op->arg, rc, rc == 0 ? &t : NULL, diag);
}

/*
 * The change that takes md to want; returns 0 and fills ch (count 0 and
 * shape NULL when md is at want already), or MDS_E_INVAL for a shape not
 * on the ladder. shape holds the OCI shape name ch->shape points to.
 */
static int plan_change(struct oci_backend *ob, const struct oci_md *md,
		       const struct backend_target *want,
		       struct oci_md_change *ch, char *shape, size_t shapesz,
		       char *diag, size_t diagsz)
{
	char rung[SHAPE_NAME_MAX + 1];

	memset(ch, 0, sizeof(*ch));
	md_rung(md, rung);
	if (want->count > 0 && want->count != md->count)
		ch->count = want->count;
	if (want->shape[0] && strcmp(want->shape, rung) != 0) {
		if (shape_index(&ob->shapes, want->shape) < 0) {
			mds_diag(diag, diagsz, "shape %s is not on the oci "
				 "shape ladder", want->shape);
			return MDS_E_INVAL;
		}
		if (oci_shape_split(want->shape, shape, shapesz, &ch->ocpus,
				    &ch->memory_gb) != 0) {
			mds_diag(diag, diagsz, "shape %s: not an OCI shape",
				 want->shape);
			return MDS_E_INVAL;
		}
		ch->shape = shape;
	}
	return 0;
}

/* apply, step 1: the deployment as it is now decides what to send. */
static void done_apply_read(struct op *op, const struct oci_response *res)
{
	struct oci_backend *ob = op->ob;
	struct oci_md_change ch;
	struct oci_md md;
	char diag[512] = "", shape[SHAPE_NAME_MAX + 1], *body;
	const char *etag;
	int rc;

	if (res->error || res->status != 200) {
		rc = answer_error(op, res, diag, sizeof(diag));
		goto fail;
	}
	if (ob->closing) {
		rc = MDS_E_UNAVAIL;
		mds_diag(diag, sizeof(diag), "the oci backend is closing");
		goto fail;
	}
	rc = oci_md_parse(res->body, res->body_len, &md, diag, sizeof(diag));
	if (rc == 0)
		oci_metrics_track(ob->metrics, md.id, md.compartment_id,
				  md.state);
	if (rc == 0)
		rc = plan_change(ob, &md, &op->want, &ch, shape, sizeof(shape),
				 diag, sizeof(diag));
	if (rc != 0)
		goto fail;
	if (!ch.count && !ch.shape) {
		/* Already there (also after a crash that cut an earlier
		 * apply short): nothing to send. */
		op->cb.apply(op->arg, 0, "", "already at the wanted count "
			     "and shape");
		return;
	}
	if (strcmp(md.state, "ACTIVE") != 0) {
		mds_diag(diag, sizeof(diag),
			 "%s is %s, not ACTIVE; nothing sent", op->ref,
			 md.state);
		rc = MDS_E_CONFLICT;
		goto fail;
	}
	etag = op->want.etag[0] ? op->want.etag : res->etag;
	body = oci_md_update_body(md.model_id, &ch);
	op->kind = OP_APPLY_PUT;
	rc = op_send(op, "PUT", body, etag[0] ? etag : NULL);
	log_event(LOG_INFO, "oci", NULL, "%s: UpdateModelDeployment %s", op->ref,
		  body);
	free(body);
	if (rc == 0)
		return; /* on_response keeps op */
	mds_diag(diag, sizeof(diag), "cannot send the update of %s", op->ref);
fail:
	op->cb.apply(op->arg, rc, NULL, diag);
}

/* apply, step 2: OCI accepted the update, or refused it. */
static void done_apply_put(struct op *op, const struct oci_response *res)
{
	char diag[512] = "";
	int rc;

	if (res->error || (res->status != 200 && res->status != 202)) {
		rc = answer_error(op, res, diag, sizeof(diag));
		log_event(LOG_WARN, "oci", NULL, "%s: update refused: %s "
			  "(opc-request-id %s)", op->ref, diag,
			  res->opc_request_id);
		op->cb.apply(op->arg, rc, NULL, diag);
		return;
	}
	log_event(LOG_INFO, "oci", LOG_IDS(.work_request_id =
						   res->opc_work_request_id),
		  "%s: update accepted, OCI work request %s "
		  "(opc-request-id %s)",
		  op->ref, res->opc_work_request_id, res->opc_request_id);
	op->cb.apply(op->arg, 0, res->opc_work_request_id, "");
}

static enum backend_work_status work_status(const char *s)
{
	if (strcmp(s, "SUCCEEDED") == 0)
		return BACKEND_WORK_SUCCEEDED;
	if (strcmp(s, "FAILED") == 0 || strcmp(s, "CANCELED") == 0)
		return BACKEND_WORK_FAILED;
	if (strcmp(s, "ACCEPTED") == 0)
		return BACKEND_WORK_ACCEPTED;
	return BACKEND_WORK_IN_PROGRESS; /* IN_PROGRESS, CANCELING */
}

static void done_progress(struct op *op, const struct oci_response *res)
{
	struct backend_progress p = { 0 };
	struct oci_wr wr;
	char diag[512] = "";
	int rc;

	if (res->error || res->status != 200) {
		rc = answer_error(op, res, diag, sizeof(diag));
		op->cb.progress(op->arg, rc, NULL, diag);
		return;
	}
	rc = oci_wr_parse(res->body, res->body_len, &wr, diag, sizeof(diag));
	if (rc != 0) {
		op->cb.progress(op->arg, rc, NULL, diag);
		return;
	}
	p.status = work_status(wr.status);
	p.percent = wr.percent;
	snprintf(p.message, sizeof(p.message), "OCI work request %s",
		 wr.status);
	op->cb.progress(op->arg, 0, &p, "");
}

static void on_response(void *arg, const struct oci_response *res)
{
	struct op *op = arg;

	op->call = NULL;
	switch (op->kind) {
	case OP_READ:
		done_read(op, res);
		break;
	case OP_APPLY_READ:
		done_apply_read(op, res);
		if (op->call)
			return; /* the PUT is under way */
		break;
	case OP_APPLY_PUT:
		done_apply_put(op, res);
		break;
	case OP_PROGRESS:
		done_progress(op, res);
		break;
	}
	op_free(op);
}

static struct oci_backend *impl(struct backend *b)
{
	return b->impl;
}

static int oci_read(struct backend *b, const char *ref, backend_read_cb cb,
		    void *arg)
{
	struct op *op;

	if (impl(b)->closing)
		return MDS_E_UNAVAIL;
	op = op_new(impl(b), OP_READ, ref, arg);
	op->cb.read = cb;
	return op_get(op, "/modelDeployments/%s", ref);
}

static int oci_apply(struct backend *b, const char *ref,
		     const struct backend_target *want, backend_apply_cb cb,
		     void *arg)
{
	struct op *op;

	if (impl(b)->closing)
		return MDS_E_UNAVAIL;
	if (want->shape[0] && shape_index(&impl(b)->shapes, want->shape) < 0)
		return MDS_E_INVAL;
	op = op_new(impl(b), OP_APPLY_READ, ref, arg);
	op->cb.apply = cb;
	op->want = *want;
	return op_get(op, "/modelDeployments/%s", ref);
}

static int oci_progress(struct backend *b, const char *ref,
			const char *work_id, backend_progress_cb cb, void *arg)
{
	struct op *op;

	if (impl(b)->closing)
		return MDS_E_UNAVAIL;
	if (!work_id || !*work_id || strchr(work_id, '/') ||
	    strchr(work_id, '?'))
		return MDS_E_INVAL;
	op = op_new(impl(b), OP_PROGRESS, ref, arg);
	op->cb.progress = cb;
	return op_get(op, "/workRequests/%s", work_id);
}

static int oci_usage(struct backend *b, const struct backend_instance *in,
		     struct backend_usage *out)
{
	double cpu, mem;
	const char *ref = in->handle[0] ? in->handle : in->id;

	memset(out, 0, sizeof(*out));
	out->cpu_percent = -1;
	out->mem_percent = -1;
	if (oci_metrics_get(impl(b)->metrics, ref, &cpu, &mem) != 0)
		return MDS_E_NOTFOUND;
	out->cpu_percent = cpu;
	out->mem_percent = mem;
	return 0;
}

/* A background read of a deployment to watch. */
struct learn {
	struct oci_backend *ob;
	char ref[BACKEND_REF_MAX];
};

static void learned(void *arg, int rc, const struct backend_target *t,
		    const char *diag)
{
	struct learn *l = arg;

	(void)t;
	if (rc != 0) {
		/* Forgotten, so that a later list tries again. */
		oci_metrics_forget(l->ob->metrics, l->ref);
		if (rc != MDS_E_UNAVAIL || !l->ob->closing)
			log_warn("oci", "cannot read %s to watch it: %s",
				 l->ref, diag);
	}
	free(l);
}

/* OCI does not show a model deployment's instances: the deployment is
 * the one thing listed (id "oci-" and the OCID's end, handle the OCID),
 * ready while ACTIVE or UPDATING (the old configuration serves until the
 * new one is ready). A deployment the backend has not read since it
 * started (a daemon restart) is read first, in the background. */
static int oci_list(struct backend *b, const char *ref,
		    void (*fn)(void *arg, const struct backend_listed *x),
		    void *arg)
{
	char state[32], id[BACKEND_ID_MAX];
	struct backend_listed x;
	size_t n;

	if (!ref)
		return 0;
	if (oci_metrics_state(impl(b)->metrics, ref, state, sizeof(state)) !=
	    0) {
		/* Tracked at once, so that one read is under way at most. */
		struct learn *l;

		if (oci_metrics_track(impl(b)->metrics, ref, "", "") != 0)
			return 0;
		l = xcalloc(1, sizeof(*l));
		l->ob = impl(b);
		snprintf(l->ref, sizeof(l->ref), "%s", ref);
		if (oci_read(b, ref, learned, l) != 0) {
			oci_metrics_forget(impl(b)->metrics, ref);
			free(l);
		}
		return 0;
	}
	if (!state[0])
		return 0; /* its read is under way */
	n = strlen(ref);
	snprintf(id, sizeof(id), "oci-%s", ref + (n > 16 ? n - 16 : 0));
	x = (struct backend_listed){
		.id = id, .handle = ref,
		.ready = strcmp(state, "ACTIVE") == 0 ||
			 strcmp(state, "UPDATING") == 0,
	};
	fn(arg, &x);
	return 0;
}

static const struct shape_ladder *oci_shapes(struct backend *b)
{
	return &impl(b)->shapes;
}

static void close_finish(struct oci_backend *ob)
{
	void (*done)(void *) = ob->close_done;
	void *arg = ob->close_arg;

	if (ob->metrics)
		return; /* metrics_closed finishes */
	free(ob->region);
	free(ob->endpoint);
	free(ob);
	if (done)
		done(arg);
}

static void metrics_closed(void *arg)
{
	struct oci_backend *ob = arg;

	ob->metrics = NULL;
	if (!ob->ops)
		close_finish(ob);
}

static void oci_close(struct backend *b, void (*done)(void *arg), void *arg)
{
	struct oci_backend *ob = impl(b);

	ob->closing = 1;
	ob->close_done = done;
	ob->close_arg = arg;
	for (struct op *op = ob->ops; op; op = op->next)
		if (op->call)
			oci_client_cancel(ob->client, op->call);
	oci_metrics_close(ob->metrics, metrics_closed, ob);
}

static const struct backend_ops oci_ops = {
	.name = "oci",
	.caps = BACKEND_CAP_PLATFORM | BACKEND_CAP_USAGE,
	.read = oci_read,
	.apply = oci_apply,
	.progress = oci_progress,
	.poll_ms = DEFAULT_POLL_MS,
	.usage = oci_usage,
	.list = oci_list,
	.shapes = oci_shapes,
	.close = oci_close,
};

int backend_oci_new(const struct backend_oci_env *env, struct backend **out,
		    char *diag, size_t diagsz)
{
	struct oci_backend *ob;

	*out = NULL;
	if (!env->loop || !env->client) {
		mds_diag(diag, diagsz, "oci backend: no loop or client");
		return MDS_E_INVAL;
	}
	ob = xcalloc(1, sizeof(*ob));
	ob->base.ops = &oci_ops;
	ob->base.impl = ob;
	ob->loop = env->loop;
	ob->client = env->client;
	ob->region = xstrdup(env->region ? env->region : "");
	ob->endpoint = env->endpoint ? xstrdup(env->endpoint) : NULL;
	if (env->shapes)
		ob->shapes = *env->shapes;
	else
		oci_shapes_default(&ob->shapes);
	ob->metrics = oci_metrics_new(env->loop, env->client, ob->region,
				      ob->endpoint, env->metrics_ms);
	*out = &ob->base;
	return 0;
}
