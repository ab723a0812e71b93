/*
 * deploy_view.c - what other modules read of deployments: copies of a
 * deployment, its work requests and its instances, taken so that the
 * reader keeps nothing of the engine's own; see deploy.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/backend_offline.h"
#include "deploy/deploy_int.h"
#include "util/err.h"
#include "util/xalloc.h"

/* ---- views ---- */

static void inst_fill(const struct instance *in,
		      struct deploy_instance_view *v)
{
	const struct backend_instance *b = &in->bi;

	memset(v, 0, sizeof(*v));
	deploy_copy_str(v->id, sizeof(v->id), b->id);
	v->state = deploy_inst_state_names[in->state];
	v->port = b->port;
	if (b->port > 0) /* see gateway_upstream: host NULL */
		deploy_copy_str(v->address, sizeof(v->address), "127.0.0.1");
	v->pid = b->alive ? b->pid : 0;
	deploy_copy_str(v->shape, sizeof(v->shape), b->shape);
	v->restarts = b->restarts;
	v->started_ms = b->started_ms;
	deploy_copy_str(v->location, sizeof(v->location), b->handle);
	deploy_copy_str(v->last_exit, sizeof(v->last_exit), b->last_exit);
	v->ready = in->state == PLAN_READY && !in->held;
}

struct listed_views {
	struct deploy_instance_view *v;
	size_t n;
};

static void add_listed(void *arg, const struct backend_listed *x)
{
	struct listed_views *l = arg;
	struct deploy_instance_view *v;

	if (l->n >= PLAN_MAX_INSTANCES)
		return;
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	v = &l->v[l->n++];
	memset(v, 0, sizeof(*v));
	deploy_copy_str(v->id, sizeof(v->id), x->id);
	deploy_copy_str(v->location, sizeof(v->location), x->handle);
	v->state = x->ready ? "READY" : "STARTING";
	v->ready = x->ready;
	if (deploy_listed_routable(x)) {
		deploy_copy_str(v->address, sizeof(v->address), x->addr);
		v->port = x->port;
	}
}

static void view_fill(struct deploy *d, const struct deployment *dep,
		      struct deploy_view *v)
{
	struct backend *b = dep->backend;

	memset(v, 0, sizeof(*v));
	deploy_copy_str(v->id, sizeof(v->id), dep->id);
	v->name = xstrdup(dep->name);
	v->tags = xstrvndup((const char *const *)dep->tags, dep->ntags);
	v->ntags = dep->ntags;
	v->state = deploy_dep_state_names[dep->state];
	deploy_copy_str(v->details, sizeof(v->details), dep->details);
	if (backend_offline_why(b) != NULL)
		snprintf(v->details, sizeof(v->details),
			 "backend %s unavailable: %s; read-only until the "
			 "daemon starts with it", b->ops->name,
			 backend_offline_why(b));
	v->backend = b->ops->name;
	deploy_copy_str(v->ref, sizeof(v->ref), dep->ref);
	v->argv = xstrvndup((const char *const *)dep->spec.argv,
			    dep->spec.argc);
	v->argc = dep->spec.argc;
	v->shell = dep->spec.shell;
	v->env = xstrvndup((const char *const *)dep->spec.env, dep->spec.nenv);
	v->nenv = dep->spec.nenv;
	v->secret = xstrvndup((const char *const *)dep->spec.secret,
			      dep->spec.nsecret);
	v->nsecret = dep->spec.nsecret;
	v->health_path = xstrdup(dep->spec.health_path);
	deploy_copy_str(v->shape, sizeof(v->shape), dep->shape);
	v->count = dep->count;
	v->ready_timeout_s = dep->ready_timeout_s;
	v->drain_timeout_s = dep->drain_timeout_s;
	v->replay_all = dep->replay_all;
	v->uid = deploy_uids_on(d, b) ? dep->spec.uid : 0;
	v->created_ms = dep->created_ms;
	v->updated_ms = dep->updated_ms;
	deploy_copy_str(v->wr_id, sizeof(v->wr_id), dep->wr ? dep->wr->id
							     : "");
	v->endpoint = xasprintf("%s/%s", d->env.gateway_url, dep->id);
	if (backend_can(b, BACKEND_CAP_PLATFORM)) {
		struct listed_views l = { NULL, 0 };

		if (b->ops->list != NULL)
			b->ops->list(b, dep->ref, add_listed, &l);
		v->inst = l.v;
		v->ninst = l.n;
		return;
	}
	v->inst = xcalloc(dep->ninst ? dep->ninst : 1, sizeof(*v->inst));
	for (size_t i = 0; i < dep->ninst; i++)
		inst_fill(dep->inst[i], &v->inst[i]);
	v->ninst = dep->ninst;
}

static void view_clear(struct deploy_view *v)
{
	for (size_t i = 0; i < v->argc; i++)
		free(v->argv[i]);
	free(v->argv);
	for (size_t i = 0; i < v->nenv; i++)
		free(v->env[i]);
	free(v->env);
	for (size_t i = 0; i < v->nsecret; i++)
		free(v->secret[i]);
	free(v->secret);
	xstrvfree(v->tags);
	free(v->name);
	free(v->health_path);
	free(v->endpoint);
	free(v->inst);
}

struct deploy_view *deploy_view_new(struct deploy *d, const char *key,
				    struct fault *f)
{
	struct deployment *dep = deploy_find(d, key);
	struct deploy_view *v;

	if (dep == NULL) {
		fault_set(f, MDS_E_NOTFOUND, "", "no deployment '%s'", key);
		return NULL;
	}
	v = xmalloc(sizeof(*v));
	view_fill(d, dep, v);
	return v;
}

void deploy_view_free(struct deploy_view *v)
{
	if (v == NULL)
		return;
	view_clear(v);
	free(v);
}

void deploy_each(struct deploy *d, const char *name,
		 void (*fn)(void *arg, const struct deploy_view *v), void *arg)
{
	for (struct deployment *p = d->deps; p; p = p->next) {
		struct deploy_view v;

		if (p->state == DS_DELETED ||
		    (name != NULL && strcmp(name, p->name) != 0))
			continue;
		view_fill(d, p, &v);
		fn(arg, &v);
		view_clear(&v);
	}
}

void deploy_workreq_fill(const struct workreq *wr,
			 struct deploy_workreq_view *v)
{
	size_t done = 0;
	bool following = false;

	memset(v, 0, sizeof(*v));
	deploy_copy_str(v->id, sizeof(v->id), wr->id);
	deploy_copy_str(v->dep_id, sizeof(v->dep_id), wr->dep_id);
	v->op = deploy_wr_op_names[wr->op];
	v->status = deploy_wr_status_names[wr->status];
	v->from_n = wr->from_n;
	v->to_n = wr->to_n;
	deploy_copy_str(v->from_shape, sizeof(v->from_shape), wr->from_shape);
	deploy_copy_str(v->to_shape, sizeof(v->to_shape), wr->to_shape);
	deploy_copy_str(v->error, sizeof(v->error), wr->error);
	deploy_copy_str(v->platform_id, sizeof(v->platform_id),
			wr->platform_id);
	v->accepted = wr->accepted;
	v->started = wr->started;
	v->finished = wr->finished;
	v->steps = xcalloc(wr->nsteps ? wr->nsteps : 1, sizeof(*v->steps));
	v->nsteps = wr->nsteps;
	for (size_t i = 0; i < wr->nsteps; i++) {
		const struct wr_step *s = &wr->steps[i];
		struct deploy_step_view *sv = &v->steps[i];

		if (s->status == ST_SUCCEEDED || s->status == ST_SKIPPED ||
		    s->status == ST_FAILED)
			done++;
		following |= s->kind == STEP_FOLLOW_PLATFORM &&
			     s->status == ST_IN_PROGRESS;
		sv->kind = deploy_step_kind_names[s->kind];
		deploy_copy_str(sv->inst, sizeof(sv->inst), s->inst);
		sv->status = deploy_step_status_names[s->status];
		sv->t0 = s->t0;
		sv->t1 = s->t1;
		deploy_copy_str(sv->msg, sizeof(sv->msg), s->msg);
	}
	if (wr->status >= WR_SUCCEEDED)
		v->percent = 100;
	else if (wr->nsteps > 0)
		v->percent = (int)((done * 100 +
				    (following ? (size_t)wr->platform_percent
					       : 0)) /
				   wr->nsteps);
}

struct deploy_workreq_view *deploy_workreq_view_new(struct deploy *d,
						    const char *id,
						    struct fault *f)
{
	struct deploy_workreq_view *v;
	struct workreq *wr;

	for (struct deployment *p = d->deps; p; p = p->next) {
		/* A finished one the store has not taken yet is newer in
		 * memory. */
		wr = p->wr != NULL && strcmp(p->wr->id, id) == 0 ? p->wr
		     : p->ended_wr != NULL && strcmp(p->ended_wr->id, id) == 0
			     ? p->ended_wr
			     : NULL;
		if (wr != NULL) {
			v = xmalloc(sizeof(*v));
			deploy_workreq_fill(wr, v);
			return v;
		}
	}
	wr = deploy_store_workreq(d, id);
	if (wr == NULL) {
		fault_set(f, MDS_E_NOTFOUND, "", "no work request '%s'", id);
		return NULL;
	}
	v = xmalloc(sizeof(*v));
	deploy_workreq_fill(wr, v);
	deploy_wr_free(wr);
	return v;
}

void deploy_workreq_view_free(struct deploy_workreq_view *v)
{
	if (v == NULL)
		return;
	free(v->steps);
	free(v);
}

struct wr_list {
	const char *dep_id;
	struct workreq **v;
	size_t n;
};

static void keep_wr(void *arg, struct workreq *wr)
{
	struct wr_list *l = arg;

	if (l->dep_id != NULL && strcmp(wr->dep_id, l->dep_id) != 0) {
		deploy_wr_free(wr);
		return;
	}
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = wr;
}

void deploy_each_workreq(struct deploy *d, const char *key,
			 void (*fn)(void *arg,
				    const struct deploy_workreq_view *v),
			 void *arg)
{
	struct deployment *dep = key ? deploy_find(d, key) : NULL;
	struct wr_list l = { dep ? dep->id : key, NULL, 0 };

	deploy_store_each_workreq(d, keep_wr, &l);
	for (size_t i = l.n; i-- > 0;) {
		struct deploy_workreq_view v;

		deploy_workreq_fill(l.v[i], &v);
		fn(arg, &v);
		free(v.steps);
		deploy_wr_free(l.v[i]);
	}
	free(l.v);
}

/* ---- instances for monitoring ---- */

struct listed_usage {
	struct backend *b;
	const struct deployment *dep;
	void (*fn)(void *arg, const struct deploy_instance_info *in);
	void *arg;
};

static void usage_of(struct backend *b, const struct backend_instance *bi,
		     struct deploy_instance_info *info)
{
	info->usage_rc = MDS_E_UNAVAIL;
	if (backend_can(b, BACKEND_CAP_USAGE) && b->ops->usage != NULL)
		info->usage_rc = b->ops->usage(b, bi, &info->usage);
}

static void listed_usage(void *arg, const struct backend_listed *x)
{
	struct listed_usage *l = arg;
	struct backend_instance bi;
	struct deploy_instance_info info;

	memset(&bi, 0, sizeof(bi));
	deploy_copy_str(bi.deployment_id, sizeof(bi.deployment_id),
			l->dep->id);
	deploy_copy_str(bi.id, sizeof(bi.id), x->id);
	deploy_copy_str(bi.handle, sizeof(bi.handle), x->handle);
	deploy_copy_str(bi.shape, sizeof(bi.shape), l->dep->shape);
	memset(&info, 0, sizeof(info));
	info.deployment_id = l->dep->id;
	info.instance_id = x->id;
	info.shape = l->dep->shape;
	info.ready = x->ready;
	usage_of(l->b, &bi, &info);
	l->fn(l->arg, &info);
}

void deploy_each_instance(struct deploy *d,
			  void (*fn)(void *arg,
				     const struct deploy_instance_info *in),
			  void *arg)
{
	for (struct deployment *dep = d->deps; dep; dep = dep->next) {
		struct backend *b = dep->backend;

		if (backend_can(b, BACKEND_CAP_PLATFORM)) {
			struct listed_usage l = { b, dep, fn, arg };

			if (dep->state != DS_DELETED && b->ops->list != NULL)
				b->ops->list(b, dep->ref, listed_usage, &l);
			continue;
		}
		for (size_t i = 0; i < dep->ninst; i++) {
			struct instance *in = dep->inst[i];
			struct deploy_instance_info info = {
				.deployment_id = dep->id,
				.instance_id = in->bi.id,
				.shape = in->bi.shape,
				.ready = in->state == PLAN_READY && !in->held,
			};

			if (!in->bi.alive)
				continue;
			usage_of(b, &in->bi, &info);
			fn(arg, &info);
		}
	}
}
