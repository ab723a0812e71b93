/*
 * deploy_steps.c - running a work request: each step begun, checked on
 * every tick until it is done or failed, a failure turned into its
 * rollback, the end recorded; and, for platform backends, the requests a
 * step sends and the answers that come back through tickets. The engine
 * that ticks (and owns the records) is deploy.c.
 */
#include <stdlib.h>
#include <string.h>

#include "deploy/deploy_int.h"
#include "gateway/gateway.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

#define POLL_MS 1000

/* What a check of a step finds: wait on, done, or failed. */
enum check { WAIT, DONE, FAIL };

/* ---- platform backends: answers come back through tickets ---- */

/* What a backend callback needs to find its work request again. */
struct ticket {
	struct deploy *d;
	char dep_id[ID_LEN];
	char wr_id[ID_LEN];
	int kind; /* the step that asked */
};

static struct ticket *ticket_new(struct deploy *d, struct deployment *dep,
				 int kind)
{
	struct ticket *t = xcalloc(1, sizeof(*t));

	t->d = d;
	deploy_copy_str(t->dep_id, sizeof(t->dep_id), dep->id);
	deploy_copy_str(t->wr_id, sizeof(t->wr_id), dep->wr->id);
	t->kind = kind;
	dep->wr->waiting = true;
	return t;
}

/* Returns the in-progress step of kind that t asked for, or NULL when the
 * work request moved on (or the module is going away); frees nothing. */
static struct wr_step *ticket_step(struct ticket *t, struct deployment **out)
{
	struct deployment *dep = deploy_find(t->d, t->dep_id);
	struct workreq *wr = dep ? dep->wr : NULL;

	if (wr == NULL || strcmp(wr->id, t->wr_id) != 0)
		return NULL;
	wr->waiting = false;
	if (t->d->closing || t->d->detaching)
		return NULL;
	*out = dep;
	for (size_t i = 0; i < wr->nsteps; i++)
		if (wr->steps[i].kind == t->kind &&
		    wr->steps[i].status == ST_IN_PROGRESS)
			return &wr->steps[i];
	return NULL;
}

/* Records a backend's answer to step s (ok, or failed with msg); the
 * next check of the step acts on it. */
static void step_answer(struct wr_step *s, bool ok, const char *msg)
{
	s->answer = ok ? 1 : -1;
	deploy_copy_str(s->msg, sizeof(s->msg), msg);
}

/* What a step that waits for a backend answer should do now. */
static enum check answered(const struct wr_step *s)
{
	return s->answer == 0 ? WAIT : s->answer > 0 ? DONE : FAIL;
}

static void ticket_done(struct ticket *t)
{
	struct deploy *d = t->d;

	free(t);
	if (d->closing || d->detaching)
		deploy_maybe_closed(d);
}

static void on_read(void *arg, int rc, const struct backend_target *t,
		    const char *diag)
{
	struct ticket *tk = arg;
	struct deployment *dep = NULL;
	struct wr_step *s = ticket_step(tk, &dep);

	if (s != NULL && rc == 0) {
		dep->count = t->count;
		deploy_copy_str(dep->shape, sizeof(dep->shape), t->shape);
		deploy_copy_str(dep->etag, sizeof(dep->etag), t->etag);
		dep->wr->to_n = t->count;
		deploy_copy_str(dep->wr->to_shape, sizeof(dep->wr->to_shape),
				t->shape);
		char msg[sizeof(s->msg)];

		snprintf(msg, sizeof(msg), "%s: %u x %s", t->state, t->count,
			 t->shape);
		step_answer(s, true, msg);
	} else if (s != NULL) {
		step_answer(s, false, diag ? diag : mds_strerror(rc));
	}
	ticket_done(tk);
}

static void on_apply(void *arg, int rc, const char *work_id,
		     const char *diag)
{
	struct ticket *tk = arg;
	struct deployment *dep = NULL;
	struct wr_step *s = ticket_step(tk, &dep);

	if (s != NULL && rc == 0) {
		deploy_copy_str(dep->wr->platform_id,
				sizeof(dep->wr->platform_id), work_id);
		step_answer(s, true, work_id && work_id[0]
					     ? work_id
					     : "nothing to change");
	} else if (s != NULL) {
		step_answer(s, false, diag ? diag : mds_strerror(rc));
	}
	if (dep != NULL)
		deploy_persist(tk->d, dep);
	ticket_done(tk);
}

/* Mirrors platform progress into the FOLLOW_PLATFORM step. */
static void mirror(struct deploy *d, struct deployment *dep,
		   struct wr_step *s, const struct backend_progress *p)
{
	struct workreq *wr = dep->wr;

	wr->platform_percent = p->percent < 0 ? 0
			       : p->percent > 100 ? 100 : p->percent;
	deploy_copy_str(s->msg, sizeof(s->msg), p->message);
	if (p->status == BACKEND_WORK_SUCCEEDED)
		step_answer(s, true, p->message);
	else if (p->status == BACKEND_WORK_FAILED)
		step_answer(s, false, p->message[0]
					      ? p->message
					      : "the platform's work request "
						"failed");
	deploy_persist(d, dep);
}

static void on_progress(void *arg, int rc, const struct backend_progress *p,
			const char *diag)
{
	struct ticket *tk = arg;
	struct deployment *dep = NULL;
	struct wr_step *s = ticket_step(tk, &dep);

	if (s != NULL && rc == 0)
		mirror(tk->d, dep, s, p);
	else if (s != NULL)
		log_warn("deploy", "work request %s: cannot read progress of "
			 "%s: %s", dep->wr->id, dep->wr->platform_id,
			 diag ? diag : mds_strerror(rc));
	ticket_done(tk);
}

void deploy_platform_pushed(void *arg, const char *ref, const char *work_id,
			    const struct backend_progress *p)
{
	struct deploy *d = arg;

	if (d->closing || d->detaching)
		return;
	for (struct deployment *dep = d->deps; dep; dep = dep->next) {
		struct workreq *wr = dep->wr;

		if (wr == NULL || strcmp(dep->ref, ref) != 0 ||
		    strcmp(wr->platform_id, work_id) != 0)
			continue;
		for (size_t i = 0; i < wr->nsteps; i++)
			if (wr->steps[i].kind == STEP_FOLLOW_PLATFORM &&
			    wr->steps[i].status == ST_IN_PROGRESS)
				mirror(d, dep, &wr->steps[i], p);
	}
}

/* Sends the platform request a step needs, if none is outstanding. */
static void platform_ask(struct deploy *d, struct deployment *dep,
			 struct wr_step *s, int64_t now)
{
	struct backend *b = dep->backend;
	struct workreq *wr = dep->wr;
	struct backend_target want;
	struct ticket *t;
	int rc = 0;

	if (wr->waiting)
		return;
	t = ticket_new(d, dep, s->kind);
	if (s->kind == STEP_READ_PLATFORM) {
		rc = b->ops->read(b, dep->ref, on_read, t);
	} else if (s->kind == STEP_APPLY) {
		memset(&want, 0, sizeof(want));
		want.count = wr->to_n;
		deploy_copy_str(want.shape, sizeof(want.shape), wr->to_shape);
		deploy_copy_str(want.etag, sizeof(want.etag), dep->etag);
		rc = b->ops->apply(b, dep->ref, &want, on_apply, t);
	} else {
		wr->next_poll_ms = now + (b->ops->poll_ms ? b->ops->poll_ms
							  : POLL_MS);
		rc = b->ops->progress(b, dep->ref, wr->platform_id,
				      on_progress, t);
	}
	if (rc != 0) {
		wr->waiting = false;
		free(t);
		if (s->kind != STEP_FOLLOW_PLATFORM)
			step_answer(s, false, mds_strerror(rc));
	}
}

/* ---- the steps ---- */

static void step_begin(struct deploy *d, struct deployment *dep,
		       struct wr_step *s)
{
	struct instance *in =
		s->inst[0] ? deploy_find_inst(dep, s->inst) : NULL;

	switch (s->kind) {
	case PLAN_START_INSTANCE:
		if (in != NULL && !deploy_inst_managed(in) &&
		    deploy_inst_live(in))
			deploy_inst_start(d, in);
		break;
	case PLAN_WAIT_READY:
		break;
	case PLAN_ROUTE:
		for (size_t i = 0; i < dep->ninst; i++) {
			struct instance *x = dep->inst[i];

			if (strcmp(x->wr_id, dep->wr->id) == 0) {
				x->held = false;
			} else if (deploy_inst_live(x)) {
				x->state = PLAN_DRAINING;
				x->bi.restart = false;
			}
		}
		deploy_routes_update(d, dep);
		break;
	case PLAN_DRAIN_INSTANCE:
		if (in != NULL && in->state != PLAN_STOPPED &&
		    in->state != PLAN_FAILED) {
			in->state = PLAN_DRAINING;
			in->bi.restart = false;
			deploy_routes_update(d, dep);
		}
		break;
	case PLAN_STOP_INSTANCE:
		if (in != NULL)
			deploy_inst_stop(d, in);
		break;
	case STEP_APPLY:
		/* Applied before a crash: follow what the platform took. */
		if (dep->wr->platform_id[0] != '\0')
			step_answer(s, true, dep->wr->platform_id);
		break;
	default:
		break;
	}
}

static enum check wait_ready(struct deployment *dep, struct wr_step *s,
			     int64_t now)
{
	bool all = true;

	for (size_t i = 0; i < dep->ninst; i++) {
		struct instance *x = dep->inst[i];

		if (strcmp(x->wr_id, dep->wr->id) != 0)
			continue;
		if (x->state == PLAN_FAILED) {
			snprintf(s->msg, sizeof(s->msg),
				 "instance %s could not start: %.120s "
				 "(%d attempts)", x->bi.id, x->bi.last_exit,
				 x->bi.start_failures);
			return FAIL;
		}
		if (x->state != PLAN_READY)
			all = false;
	}
	if (all)
		return DONE;
	if (now - s->t0 > (int64_t)dep->ready_timeout_s * 1000) {
		snprintf(s->msg, sizeof(s->msg),
			 "instances not ready within %us: %s did not "
			 "answer 2xx", dep->ready_timeout_s,
			 dep->spec.health_path);
		return FAIL;
	}
	return WAIT;
}

static enum check step_check(struct deploy *d, struct deployment *dep,
			     struct wr_step *s, int64_t now)
{
	struct instance *in =
		s->inst[0] ? deploy_find_inst(dep, s->inst) : NULL;
	uint32_t inflight;

	switch (s->kind) {
	case PLAN_START_INSTANCE:
		if (in == NULL || in->bi.alive || in->state == PLAN_READY)
			return DONE;
		if (in->state == PLAN_FAILED) {
			snprintf(s->msg, sizeof(s->msg), "instance %s: %.150s",
				 in->bi.id, in->bi.last_exit);
			return FAIL;
		}
		return WAIT;
	case PLAN_WAIT_READY:
		return wait_ready(dep, s, now);
	case PLAN_ROUTE:
		return DONE;
	case PLAN_DRAIN_INSTANCE:
		if (in == NULL || !in->bi.alive)
			return DONE;
		inflight = d->env.gateway
				   ? gateway_instance_inflight(d->env.gateway,
							       in->bi.id)
				   : 0;
		if (inflight == 0)
			return DONE;
		if (now - s->t0 > (int64_t)dep->drain_timeout_s * 1000) {
			snprintf(s->msg, sizeof(s->msg),
				 "drain timeout: %u requests still in flight",
				 inflight);
			return DONE;
		}
		return WAIT;
	case PLAN_STOP_INSTANCE:
		if (in == NULL || !deploy_inst_managed(in))
			return DONE;
		return WAIT;
	case STEP_FOLLOW_PLATFORM:
		if (dep->wr->platform_id[0] == '\0')
			return DONE; /* the platform had nothing to do */
		if (s->answer == 0 && now >= dep->wr->next_poll_ms)
			platform_ask(d, dep, s, now);
		return answered(s);
	case STEP_READ_PLATFORM:
	case STEP_APPLY:
		if (s->answer == 0)
			platform_ask(d, dep, s, now);
		return answered(s);
	}
	return DONE;
}

/* Turns a failed work request into its rollback: the new instances go. */
static void wr_fail(struct deploy *d, struct deployment *dep, const char *msg)
{
	struct workreq *wr = dep->wr;

	(void)d;
	log_event(LOG_WARN, "deploy",
		  LOG_IDS(.deployment_id = dep->id, .work_request_id = wr->id),
		  "work request %s on %s failed: %s", wr->id, dep->name, msg);
	if (wr->error[0] == '\0')
		deploy_copy_str(wr->error, sizeof(wr->error), msg);
	for (size_t i = 0; i < wr->nsteps; i++)
		if (wr->steps[i].status == ST_PENDING)
			wr->steps[i].status = ST_SKIPPED;
	if (wr->rollback || wr->op == OP_DELETE)
		return;
	wr->rollback = true;
	for (size_t i = 0; i < dep->ninst; i++) {
		struct instance *x = dep->inst[i];

		if (strcmp(x->wr_id, wr->id) == 0 &&
		    (deploy_inst_live(x) || x->bi.alive))
			deploy_wr_add_step(wr, PLAN_DRAIN_INSTANCE, x->bi.id);
	}
	for (size_t i = 0, n = wr->nsteps; i < n; i++) {
		char id[ID_LEN];

		/* Copied: adding a step may move the array. */
		if (wr->steps[i].status != ST_PENDING)
			continue;
		deploy_copy_str(id, sizeof(id), wr->steps[i].inst);
		deploy_wr_add_step(wr, PLAN_STOP_INSTANCE, id);
	}
	if (wr->op == OP_UPDATE) {
		dep->count = wr->from_n;
		deploy_copy_str(dep->shape, sizeof(dep->shape),
				wr->from_shape);
	}
	if (wr->op == OP_UPDATE && dep->prev_spec != NULL) {
		/* The old spec is the deployment's again; the new one stays
		 * only for the instances being stopped. */
		struct backend_spec tmp = dep->spec;

		dep->spec = *dep->prev_spec;
		*dep->prev_spec = tmp;
		dep->spec_gen--;
		deploy_respec(dep);
	}
}

/* Ends a change of spec: every record runs, or ran, the current one. */
static void spec_settle(struct deployment *dep)
{
	if (dep->prev_spec == NULL)
		return;
	for (size_t i = 0; i < dep->ninst; i++)
		dep->inst[i]->bi.spec = &dep->spec;
	deploy_spec_clear(dep->prev_spec);
	free(dep->prev_spec);
	dep->prev_spec = NULL;
}

static void wr_finish(struct deploy *d, struct deployment *dep, int64_t now)
{
	struct workreq *wr = dep->wr;

	wr->finished = now;
	if (wr->rollback) {
		wr->status = WR_FAILED;
		if (wr->op == OP_CREATE) {
			dep->state = DS_FAILED;
			deploy_copy_str(dep->details, sizeof(dep->details),
					wr->error);
		} else {
			dep->state = DS_ACTIVE;
		}
	} else {
		wr->status = WR_SUCCEEDED;
		dep->details[0] = '\0';
		dep->state = wr->op == OP_DELETE ? DS_DELETED : DS_ACTIVE;
	}
	d->ended[wr->op][wr->status == WR_FAILED]++;
	log_event(LOG_INFO, "deploy",
		  LOG_IDS(.deployment_id = dep->id, .work_request_id = wr->id),
		  "work request %s on %s %s", wr->id, dep->name,
		  deploy_wr_status_names[wr->status]);
	deploy_prune(d, dep);
	spec_settle(dep);
	/* The deployment without its work request and the work request's
	 * last row go in one commit; kept in memory until the store takes
	 * them. */
	dep->wr = NULL;
	deploy_wr_free(dep->ended_wr);
	dep->ended_wr = wr;
	deploy_persist(d, dep);
	deploy_routes_update(d, dep);
}

static bool step_finished(const struct wr_step *s)
{
	return s->status == ST_SUCCEEDED || s->status == ST_SKIPPED ||
	       s->status == ST_FAILED;
}

/* Runs the group of same-kind steps from i; returns false when the work
 * request must wait (or failed). */
static bool run_group(struct deploy *d, struct deployment *dep, size_t i,
		      int64_t now, bool *changed)
{
	struct workreq *wr = dep->wr;
	bool all_done = true;
	size_t j = i;

	while (j < wr->nsteps && wr->steps[j].kind == wr->steps[i].kind)
		j++;
	for (size_t k = i; k < j; k++) {
		struct wr_step *s = &wr->steps[k];
		enum check c;

		if (s->status == ST_PENDING) {
			s->status = ST_IN_PROGRESS;
			s->t0 = now;
			*changed = true;
			step_begin(d, dep, s);
		}
		c = step_check(d, dep, s, now);
		if (c == DONE) {
			s->status = ST_SUCCEEDED;
			s->t1 = now;
			*changed = true;
		} else if (c == FAIL) {
			s->status = ST_FAILED;
			s->t1 = now;
			wr_fail(d, dep, s->msg);
			deploy_persist(d, dep);
			return false;
		} else {
			all_done = false;
		}
	}
	return all_done;
}

void deploy_wr_advance(struct deploy *d, struct deployment *dep,
		       int64_t now)
{
	struct workreq *wr = dep->wr;

	if (wr->status == WR_ACCEPTED) {
		wr->status = WR_IN_PROGRESS;
		wr->started = now;
		deploy_persist(d, dep);
	}
	for (;;) {
		size_t i = 0;
		bool changed = false, go_on;

		while (i < wr->nsteps && step_finished(&wr->steps[i]))
			i++;
		if (i == wr->nsteps) {
			wr_finish(d, dep, now);
			return;
		}
		go_on = run_group(d, dep, i, now, &changed);
		if (changed && dep->wr == wr)
			deploy_persist(d, dep);
		if (!go_on)
			return;
	}
}
