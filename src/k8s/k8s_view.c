/*
 * k8s_view.c - what a Deployment's JSON says; see k8s_view.h.
 */
#include "k8s/k8s_view.h"

#include <stdio.h>
#include <string.h>

#include "k8s/backend_k8s.h"
#include "k8s/k8s_quantity.h"

static int64_t int_at(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* The model container in a list of containers (by name, or the first). */
json_t *k8s_view_container(const char *container, json_t *list)
{
	json_t *c;
	size_t i;

	if (container == NULL)
		return json_array_get(list, 0);
	json_array_foreach(list, i, c) {
		const char *n = json_string_value(json_object_get(c, "name"));

		if (n != NULL && strcmp(n, container) == 0)
			return c;
	}
	return NULL;
}

/* The rung whose CPU and memory equal these limits, or NULL. */
const struct shape *k8s_view_shape(const struct shape_ladder *l,
				  json_t *limits)
{
	int64_t cpu, mem;

	if (k8s_quantity_milli(json_string_value(json_object_get(limits,
				       "cpu")), &cpu) != 0 ||
	    k8s_quantity_milli(json_string_value(json_object_get(limits,
				       "memory")), &mem) != 0)
		return NULL;
	for (size_t i = 0; i < l->n; i++) {
		const struct shape *s = &l->v[i];

		if ((int64_t)s->mcpu == cpu &&
		    (int64_t)s->mem_bytes * 1000 == mem)
			return s;
	}
	return NULL;
}

void k8s_view_selector(json_t *dep, char *out, size_t outsz)
{
	json_t *ml = json_object_get(json_object_get(json_object_get(dep,
				     "spec"), "selector"), "matchLabels");
	const char *k;
	json_t *v;
	size_t n = 0;

	out[0] = '\0';
	json_object_foreach(ml, k, v) {
		if (n < outsz)
			n += (size_t)snprintf(out + n, outsz - n, "%s%s=%s",
					      n > 0 ? "," : "", k,
					      json_string_value(v) != NULL
						      ? json_string_value(v)
						      : "");
	}
}

/* Reads what apply and progress need from a Deployment. */
void k8s_view_read(const struct shape_ladder *l, const char *container,
		   json_t *dep, struct k8s_view *dv)
{
	json_t *meta = json_object_get(dep, "metadata");
	json_t *spec = json_object_get(dep, "spec");
	json_t *st = json_object_get(dep, "status"), *c;
	json_t *tc = k8s_view_container(container, json_object_get(json_object_get(
		json_object_get(spec, "template"), "spec"), "containers"));
	const char *ann = json_string_value(json_object_get(json_object_get(
		meta, "annotations"), K8S_SHAPE_ANNOTATION));
	const char *tann = json_string_value(json_object_get(json_object_get(
		meta, "annotations"), K8S_TEMPLATE_ANNOTATION));
	const struct shape *s;
	size_t i;

	memset(dv, 0, sizeof(*dv));
	snprintf(dv->rv, sizeof(dv->rv), "%s",
		 json_string_value(json_object_get(meta, "resourceVersion"))
			 ? json_string_value(json_object_get(
				   meta, "resourceVersion"))
			 : "");
	dv->generation = int_at(meta, "generation");
	dv->observed = int_at(st, "observedGeneration");
	dv->replicas = int_at(spec, "replicas");
	dv->st_replicas = int_at(st, "replicas");
	dv->updated = int_at(st, "updatedReplicas");
	dv->ready = int_at(st, "readyReplicas");
	s = k8s_view_shape(l, json_object_get(json_object_get(tc, "resources"),
					 "limits"));
	snprintf(dv->template_shape, sizeof(dv->template_shape), "%s",
		 s != NULL ? s->name : "");
	/* A shape applied in place is only in the annotation, and counts
	 * while the template is as it was then. */
	if (ann != NULL && shape_find(l, ann) != NULL && tann != NULL &&
	    strcmp(tann, dv->template_shape) == 0)
		snprintf(dv->shape, sizeof(dv->shape), "%s", ann);
	else
		snprintf(dv->shape, sizeof(dv->shape), "%s",
			 dv->template_shape);
	k8s_view_selector(dep, dv->selector, sizeof(dv->selector));
	json_array_foreach(json_object_get(st, "conditions"), i, c) {
		const char *type = json_string_value(json_object_get(c, "type"));
		const char *reason = json_string_value(json_object_get(c,
							"reason"));

		if (type != NULL && strcmp(type, "Progressing") == 0 &&
		    reason != NULL &&
		    strcmp(reason, "ProgressDeadlineExceeded") == 0) {
			dv->deadline_exceeded = 1;
			snprintf(dv->condition_msg, sizeof(dv->condition_msg),
				 "%s", json_string_value(json_object_get(
					       c, "message"))
					       ? json_string_value(json_object_get(
							 c, "message"))
					       : "ProgressDeadlineExceeded");
		}
	}
}

/* Whether the Deployment is still rolling out: its controller has not
 * seen the last change, or pods of an older template (or too many or too
 * few pods) remain. Pods that are merely not ready (a crash loop) do not
 * count, so that they never block a change that might help. */
int k8s_view_rolling(const struct k8s_view *dv)
{
	return dv->observed < dv->generation || dv->updated != dv->replicas ||
	       dv->st_replicas != dv->replicas;
}

json_t *k8s_view_resources(const struct shape *s)
{
	char cpu[32], mem[32];

	k8s_quantity_cpu(s->mcpu, cpu, sizeof(cpu));
	k8s_quantity_mem(s->mem_bytes, mem, sizeof(mem));
	return json_pack("{s{ssss}s{ssss}}", "requests", "cpu", cpu, "memory",
			 mem, "limits", "cpu", cpu, "memory", mem);
}
