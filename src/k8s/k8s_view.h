/*
 * k8s_view.h - what a Deployment's JSON says, for the kubernetes backend:
 * its version, generations and replica counts, its shape (a rung of the
 * shape ladder, from the model container's limits or the shape applied in
 * place), its pods' selector and whether its progress deadline passed.
 * Also a shape as a container's resources. JSON in, plain values out; no
 * I/O.
 */
#ifndef MDS_K8S_VIEW_H
#define MDS_K8S_VIEW_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/shape.h"
#include "deploy/backend.h"

/* What a Deployment says, read from its JSON. */
struct k8s_view {
	char rv[64];
	int64_t generation, observed;
	int64_t replicas, st_replicas, updated, ready;
	char shape[SHAPE_NAME_MAX + 1]; /* "" when no rung matches */
	char template_shape[SHAPE_NAME_MAX + 1]; /* the template's; "" */
	char selector[512];
	int deadline_exceeded;
	char condition_msg[BACKEND_MSG_MAX];
};

/*
 * Reads dep (an apps/v1 Deployment) into v. l is the shape ladder,
 * container the model container's name (NULL: the first). Missing fields
 * read as 0 or "".
 */
void k8s_view_read(const struct shape_ladder *l, const char *container,
		   json_t *dep, struct k8s_view *v);

/* Whether the Deployment is still rolling out (see k8s_view.c). */
int k8s_view_rolling(const struct k8s_view *v);

/* The model container in a list of containers (by name; NULL: the first),
 * or NULL. Borrowed from list. */
json_t *k8s_view_container(const char *container, json_t *list);

/* The rung whose CPU and memory equal these limits, or NULL. */
const struct shape *k8s_view_shape(const struct shape_ladder *l,
				   json_t *limits);

/* The Deployment's spec.selector.matchLabels as "k=v,k=v" into out. */
void k8s_view_selector(json_t *dep, char *out, size_t outsz);

/* A shape as container resources: requests and limits both its CPU and
 * memory. Returns a new reference. */
json_t *k8s_view_resources(const struct shape *s);

#endif
