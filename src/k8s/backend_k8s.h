/*
 * backend_k8s.h - the `kubernetes` backend: a deployment is an apps/v1
 * Deployment (ref "NAMESPACE/NAME") that Kubernetes scales and rolls
 * itself (BACKEND_CAP_PLATFORM); see backend.h for each op's contract.
 *
 * Horizontal: spec.replicas through the scale subresource, written with
 * the resourceVersion just read; a 409 Conflict is read again and retried
 * (at most K8S_APPLY_ATTEMPTS times), never overwritten blindly. The work
 * request ends when status.observedGeneration has caught up and the
 * updated, ready and total replicas all equal the target, and fails when
 * the Progressing condition says ProgressDeadlineExceeded.
 *
 * Vertical: a shape is the model container's requests and limits (both
 * set to the shape's CPU and memory). Where the API server serves the pod
 * resize subresource (1.33 and later, found by discovery), running pods
 * are resized in place; otherwise the pod template is patched with
 * maxUnavailable 0 and the rollout followed to its end. The Deployment's
 * annotation mdscale.io/shape records the shape either way; after an
 * in-place resize, pods the Deployment makes later from the unchanged
 * template are resized too (see K8S_TEMPLATE_ANNOTATION).
 *
 * One change at a time per Deployment: apply refuses (MDS_E_CONFLICT)
 * while another apply of this backend runs or the Deployment is still
 * rolling out. read() says when a HorizontalPodAutoscaler or
 * VerticalPodAutoscaler targets the Deployment.
 *
 * Every Deployment read or changed is followed with list-then-watch (see
 * k8s_target.h); list() and usage() answer from that, never waiting.
 */
#ifndef MDS_BACKEND_K8S_H
#define MDS_BACKEND_K8S_H

#include <stdint.h>
#include <uv.h>

#include "core/shape.h"
#include "deploy/backend.h"

struct httpc;
struct k8s_target_stats;

#define K8S_APPLY_ATTEMPTS 5
#define K8S_SHAPE_ANNOTATION "mdscale.io/shape"
/* The template's shape when a shape was applied in place. While the
 * template still has it, the Deployment's shape is the one applied in
 * place, and pods made later are resized to it; once someone changes the
 * template, the template's shape counts again. */
#define K8S_TEMPLATE_ANNOTATION "mdscale.io/template-shape"

struct backend_k8s_env {
	uv_loop_t *loop;
	struct httpc *httpc;               /* borrowed */
	const struct shape_ladder *shapes; /* copied */
	const char *kubeconfig; /* NULL: in-cluster when
				   KUBERNETES_SERVICE_HOST is set, else
				   $KUBECONFIG or ~/.kube/config */
	const char *context;    /* NULL: the current context */
	const char *container;  /* the model's container; NULL: the first */
	uint32_t metrics_ms;    /* PodMetrics interval; 0: 15000 */
	uint32_t watch_timeout_s; /* 0: 300 */
};

/*
 * Makes the backend: loads the credentials (see kubeconfig.h). Returns 0
 * and a new backend in *out (freed with its ops->close), or the error of
 * the credentials with the reason in diag.
 */
int backend_k8s_new(const struct backend_k8s_env *env, struct backend **out,
		    char *diag, size_t diagsz);

/*
 * Splits ref "NAMESPACE/NAME" into ns and name (each checked as a
 * Kubernetes name: DNS-1123 label / subdomain). Returns 0 or MDS_E_INVAL
 * with the reason in diag.
 */
int backend_k8s_parse_ref(const char *ref, char *ns, size_t nssz, char *name,
			  size_t namesz, char *diag, size_t diagsz);

/* The watch counters of ref (for tests and `top`). Returns 0, or
 * MDS_E_NOTFOUND when ref is not followed. */
int backend_k8s_stats(struct backend *b, const char *ref,
		      struct k8s_target_stats *out);

#endif
