/*
 * deploy.c - the deployments engine: durable work requests, the planner's
 * steps run through a backend, and recovery after a restart; see deploy.h.
 *
 * One timer (env.tick_ms) advances the work requests. Backends report what
 * they observe (an instance ready, exited, stopped) through
 * backend_events; the engine folds it into its own instance states, pushes
 * routes to the gateway and writes every change that matters to the store
 * before the API sees it. Nothing here knows how an instance runs: that is
 * the backend's (backend_local.c for processes in cgroups). The steps of
 * a work request run in deploy_steps.c, the API operations are in
 * deploy_ops.c and what they read in deploy_view.c, the store rows in
 * deploy_store.c.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/uidpool.h"
#include "deploy/backend_offline.h"
#include "deploy/deploy_int.h"
#include "gateway/gateway.h"
#include "store/store.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/xalloc.h"

#define TICK_MS 100
#define RECONCILE_MS 1000

const char *const deploy_dep_state_names[DS__N] = {
	"CREATING", "ACTIVE", "UPDATING", "FAILED", "DELETING", "DELETED" };

const char *const deploy_inst_state_names[PLAN_FAILED + 1] = {
	[PLAN_STARTING] = "STARTING", [PLAN_READY] = "READY",
	[PLAN_DRAINING] = "DRAINING", [PLAN_STOPPED] = "STOPPED",
	[PLAN_FAILED] = "FAILED" };

const char *const deploy_wr_op_names[OP__N] = {
	"CREATE_DEPLOYMENT", "UPDATE_DEPLOYMENT", "DELETE_DEPLOYMENT" };

const char *const deploy_wr_status_names[WR__N] = {
	"ACCEPTED", "IN_PROGRESS", "SUCCEEDED", "FAILED" };

const char *deploy_workreq_name(bool status, size_t i)
{
	if (status)
		return i < WR__N ? deploy_wr_status_names[i] : NULL;
	return i < OP__N ? deploy_wr_op_names[i] : NULL;
}

const char *const deploy_step_status_names[ST__N] = {
	"PENDING", "IN_PROGRESS", "SUCCEEDED", "FAILED", "SKIPPED" };

const char *const deploy_step_kind_names[STEP__N] = {
	[PLAN_START_INSTANCE] = "START_INSTANCE",
	[PLAN_WAIT_READY] = "WAIT_READY", [PLAN_ROUTE] = "ROUTE",
	[PLAN_DRAIN_INSTANCE] = "DRAIN_INSTANCE",
	[PLAN_STOP_INSTANCE] = "STOP_INSTANCE",
	[STEP_READ_PLATFORM] = "READ_PLATFORM", [STEP_APPLY] = "APPLY",
	[STEP_FOLLOW_PLATFORM] = "FOLLOW_PLATFORM" };

/* ---- small helpers ---- */

int deploy_lookup(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] != NULL && s != NULL && strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

void deploy_copy_str(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

bool deploy_inst_live(const struct instance *in)
{
	return in->state == PLAN_STARTING || in->state == PLAN_READY;
}

static bool is_platform(const struct deployment *dep)
{
	return backend_can(dep->backend, BACKEND_CAP_PLATFORM);
}

/* Whether the backend looks after the instance now (a start or stop is
 * under way, or it runs). */
bool deploy_inst_managed(const struct instance *in)
{
	return in->bi.alive || (in->bi.state != BACKEND_NEW &&
				in->bi.state != BACKEND_STOPPED &&
				in->bi.state != BACKEND_FAILED);
}

struct deployment *deploy_find(struct deploy *d, const char *key)
{
	for (struct deployment *p = d->deps; p; p = p->next)
		if (p->state != DS_DELETED && strcmp(p->id, key) == 0)
			return p;
	for (struct deployment *p = d->deps; p; p = p->next)
		if (p->state != DS_DELETED && strcmp(p->name, key) == 0)
			return p;
	/* A platform's alarms name its target (an OCI alarm's resourceId is
	 * the model deployment's OCID). */
	for (struct deployment *p = d->deps; p; p = p->next)
		if (p->state != DS_DELETED && p->ref[0] &&
		    strcmp(p->ref, key) == 0)
			return p;
	for (struct deployment *p = d->deps; p; p = p->next)
		if (strcmp(p->id, key) == 0)
			return p;
	return NULL;
}

struct instance *deploy_find_inst(struct deployment *dep, const char *id)
{
	for (size_t i = 0; i < dep->ninst; i++)
		if (strcmp(dep->inst[i]->bi.id, id) == 0)
			return dep->inst[i];
	return NULL;
}

struct backend *deploy_backend(struct deploy *d, const char *name)
{
	for (size_t i = 0; i < d->env.nbackends; i++)
		if (name == NULL || strcmp(d->env.backends[i]->ops->name,
					   name) == 0)
			return d->env.backends[i];
	return NULL;
}

const char *deploy_missing_why(struct deploy *d, const char *name)
{
	for (size_t i = 0; i < d->env.nmissing; i++)
		if (strcmp(d->env.missing[i].backend, name) == 0)
			return d->env.missing[i].why;
	return NULL;
}

struct backend *deploy_backend_kept(struct deploy *d, const char *name)
{
	struct backend *b = deploy_backend(d, name);
	const char *why;

	for (size_t i = 0; b == NULL && i < d->noffline; i++)
		if (strcmp(d->offline[i]->ops->name, name) == 0)
			b = d->offline[i];
	if (b != NULL || d->noffline == OFFLINE_BACKENDS_MAX ||
	    name[0] == '\0' || strlen(name) >= BACKEND_OFFLINE_NAME_MAX)
		return b;
	why = deploy_missing_why(d, name);
	b = backend_offline_new(name, why != NULL ? why
					      : "this daemon has no backend "
						"of that name");
	d->offline[d->noffline++] = b;
	log_warn("deploy", "the %s backend is unavailable (%s): its "
		 "deployments are kept as they are, readable, and refuse "
		 "changes until the daemon starts with it", name,
		 backend_offline_why(b));
	return b;
}

bool deploy_dep_offline(const struct deployment *dep)
{
	return backend_can(dep->backend, BACKEND_CAP_OFFLINE);
}

/* Frees the offline place holders. */
static void offline_free(struct deploy *d)
{
	for (size_t i = 0; i < d->noffline; i++)
		d->offline[i]->ops->close(d->offline[i], NULL, NULL);
	d->noffline = 0;
}

const struct shape_ladder *deploy_shapes(struct deploy *d,
					 const struct backend *b)
{
	if (b != NULL && b->ops->shapes != NULL)
		return b->ops->shapes((struct backend *)b);
	return &d->env.config->shapes;
}

const struct shape_ladder *deploy_backend_shapes(struct deploy *d,
						 const char *backend)
{
	return deploy_shapes(d, deploy_backend(d, backend));
}

void deploy_link(struct deploy *d, struct deployment *dep)
{
	struct deployment **tail;

	for (tail = &d->deps; *tail; tail = &(*tail)->next)
		;
	*tail = dep;
}

/* ---- watching ---- */

struct deploy_watch {
	uint64_t since;
	int64_t deadline_ms;
	void (*fn)(void *arg);
	void *arg;
	struct deploy_watch *next;
};

uint64_t deploy_version(const struct deploy *d)
{
	return d->version;
}

struct deploy_watch *deploy_watch(struct deploy *d, uint64_t since,
				  uint32_t timeout_ms,
				  void (*fn)(void *arg), void *arg)
{
	struct deploy_watch *w;

	if (d->nwatches >= DEPLOY_WATCHERS_MAX)
		return NULL;
	w = xcalloc(1, sizeof(*w));
	w->since = since;
	w->deadline_ms = ids_now_ms() + timeout_ms;
	w->fn = fn;
	w->arg = arg;
	w->next = d->watches;
	d->watches = w;
	d->nwatches++;
	return w;
}

void deploy_unwatch(struct deploy *d, struct deploy_watch *w)
{
	for (struct deploy_watch **p = &d->watches; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			d->nwatches--;
			free(w);
			return;
		}
	}
}

/* Runs the watches that are due (all of them when all is set). A watch's
 * fn may add or remove watches: each is unlinked before it runs. */
static void watches_fire(struct deploy *d, int64_t now, bool all)
{
	struct deploy_watch **p = &d->watches;

	while (*p != NULL) {
		struct deploy_watch *w = *p;

		if (!all && w->since == d->version && now < w->deadline_ms) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		d->nwatches--;
		w->fn(w->arg);
		free(w);
		p = &d->watches; /* the list may have changed */
	}
}

/* ---- persistence and routing ---- */

/* What a save settles, once the store has it: memory is no longer ahead,
 * and the ended work request's last row is written. */
static void persist_saved(void *arg)
{
	struct deployment *dep = arg;

	if (dep->unsaved)
		log_info("deploy", "deployment %s saved again", dep->id);
	dep->unsaved = false;
	deploy_wr_free(dep->ended_wr);
	dep->ended_wr = NULL;
}

/* A save inside a caller's transaction that did not commit: memory is
 * ahead of the store again (the caller may undo its change, and then
 * what unsaved was before with it). */
static void persist_dropped(void *arg)
{
	struct deployment *dep = arg;

	dep->unsaved = true;
}

int deploy_persist(struct deploy *d, struct deployment *dep)
{
	int rc;

	if (d->closing || d->detaching)
		return 0; /* a shutdown leaves the stored state as it was */
	dep->updated_ms = ids_now_ms();
	d->version++; /* watchers see what memory holds, saved or not yet */
	rc = store_begin(d->env.store);
	if (rc == 0)
		rc = deploy_store_save(d, dep);
	if (rc == 0)
		rc = store_commit(d->env.store);
	if (rc != 0) {
		store_rollback(d->env.store);
		if (!dep->unsaved)
			log_error("deploy", "cannot save deployment %s: %s; "
				  "trying again", dep->id, mds_strerror(rc));
		dep->unsaved = true;
		return rc;
	}
	/* Inside a caller's transaction, settled only once it commits. */
	store_on_commit(d->env.store, persist_saved, persist_dropped, dep);
	return 0;
}

/* A platform's instances that the gateway can reach, as list() reports
 * them; the strings are copied, since they live only during the call. */
struct reachable {
	struct gateway_upstream ups[PLAN_MAX_INSTANCES];
	size_t n;
	char ids[PLAN_MAX_INSTANCES][BACKEND_HANDLE_MAX];
	char addrs[PLAN_MAX_INSTANCES][16];
};

bool deploy_listed_routable(const struct backend_listed *x)
{
	struct in_addr a;

	/* The gateway reaches IPv4 addresses only: a pod of an IPv6-only
	 * cluster is not routed to. */
	return x->ready && x->addr != NULL && x->port > 0 &&
	       x->port <= 65535 && inet_pton(AF_INET, x->addr, &a) == 1;
}

static void add_reachable(void *arg, const struct backend_listed *x)
{
	struct reachable *r = arg;
	size_t i = r->n;

	if (i >= PLAN_MAX_INSTANCES || !deploy_listed_routable(x) ||
	    strlen(x->id) >= sizeof(r->ids[0]))
		return;
	deploy_copy_str(r->ids[i], sizeof(r->ids[i]), x->id);
	deploy_copy_str(r->addrs[i], sizeof(r->addrs[i]), x->addr);
	r->ups[i].instance_id = r->ids[i];
	r->ups[i].host = r->addrs[i];
	r->ups[i].port = (uint16_t)x->port;
	r->n++;
}

/* Fills r with the ready pods (or the like) of a platform deployment that
 * have an address and a port. The gateway routes to them as to local
 * instances (the activator path: a Deployment at zero replicas is woken by
 * the requests held for it). Returns false when the backend does not know
 * its instances yet (just after a start: the first list is on its way). */
static bool platform_routes(struct deployment *dep, struct reachable *r)
{
	struct backend *b = dep->backend;

	if (deploy_dep_offline(dep) || b->ops->list == NULL ||
	    dep->ref[0] == '\0')
		return true;
	return b->ops->list(b, dep->ref, add_reachable, r) != MDS_E_UNAVAIL;
}

void deploy_platform_instances(void *arg, const char *ref)
{
	struct deploy *d = arg;

	if (d->closing || d->detaching)
		return;
	for (struct deployment *dep = d->deps; dep; dep = dep->next)
		if (dep->state != DS_DELETED && is_platform(dep) &&
		    strcmp(dep->ref, ref) == 0)
			deploy_routes_update(d, dep);
}

/* Fills ups with a local deployment's ready instances; returns how many. */
static size_t local_routes(const struct deployment *dep,
			   struct gateway_upstream *ups)
{
	size_t n = 0;

	for (size_t i = 0; i < dep->ninst && n < PLAN_MAX_INSTANCES; i++) {
		const struct instance *in = dep->inst[i];

		if (in->state == PLAN_READY && !in->held && in->bi.alive &&
		    in->bi.state == BACKEND_READY && in->bi.port > 0) {
			ups[n].instance_id = in->bi.id;
			ups[n].port = (uint16_t)in->bi.port;
			ups[n].host = NULL;
			n++;
		}
	}
	return n;
}

void deploy_routes_update(struct deploy *d, struct deployment *dep)
{
	struct gateway_upstream ups[PLAN_MAX_INSTANCES];
	bool unknown = false;

	if (d->env.gateway == NULL || d->detaching)
		return;
	if (dep->state == DS_DELETED) {
		gateway_remove(d->env.gateway, dep->id);
		return;
	}
	if (is_platform(dep)) {
		struct reachable *r = xcalloc(1, sizeof(*r));

		unknown = !platform_routes(dep, r);
		gateway_set_routes(d->env.gateway, dep->id, dep->name, r->ups,
				   r->n);
		free(r);
	} else {
		gateway_set_routes(d->env.gateway, dep->id, dep->name, ups,
				   local_routes(dep, ups));
	}
	gateway_set_replay(d->env.gateway, dep->id,
			   dep->replay_all ? GATEWAY_REPLAY_ALL
					   : GATEWAY_REPLAY_SAFE);
	/* At zero, or waking from it: the gateway holds requests (a
	 * platform's too: its pods are routed to once ready). So it does
	 * while a platform's pods are not known yet, after a start: they are
	 * routed to as soon as they are. */
	gateway_set_holdable(d->env.gateway, dep->id,
			     unknown || dep->count == 0 ||
				     (dep->state == DS_UPDATING &&
				      dep->wr != NULL &&
				      dep->wr->from_n == 0));
}

/* ---- instances, through the backend ---- */

struct instance *deploy_inst_new(struct deployment *dep, const char *shape,
				 const char *wr_id, bool held)
{
	struct instance *in = xcalloc(1, sizeof(*in));

	ids_new(in->bi.id, ID_LEN, "mi-");
	deploy_copy_str(in->bi.deployment_id, ID_LEN, dep->id);
	deploy_copy_str(in->bi.shape, sizeof(in->bi.shape), shape);
	in->bi.spec = &dep->spec;
	in->spec_gen = dep->spec_gen;
	in->bi.restart = true;
	in->bi.state = BACKEND_NEW;
	in->bi.engine_data = in;
	in->dep = dep;
	in->state = PLAN_STARTING;
	in->held = held;
	in->created_ms = ids_now_ms();
	deploy_copy_str(in->wr_id, sizeof(in->wr_id), wr_id);
	dep->inst = xreallocarray(dep->inst, dep->ninst + 1,
				  sizeof(*dep->inst));
	dep->inst[dep->ninst++] = in;
	return in;
}

/* Logs a process the backend started, once per process. */
static void note_started(struct instance *in)
{
	struct deployment *dep = in->dep;

	if (!in->bi.alive || in->bi.pid == 0 || in->bi.pid == in->logged_pid)
		return;
	in->logged_pid = in->bi.pid;
	log_event(LOG_INFO, "deploy",
		  LOG_IDS(.deployment_id = dep->id, .instance_id = in->bi.id,
			  .work_request_id = dep->wr ? dep->wr->id : NULL),
		  "instance %s of %s started: pid %d port %d shape %s",
		  in->bi.id, dep->name, in->bi.pid, in->bi.port,
		  in->bi.shape);
}

void deploy_inst_start(struct deploy *d, struct instance *in)
{
	struct backend *b = in->dep->backend;

	(void)d;
	in->bi.restart = true;
	b->ops->start(b, &in->bi);
	note_started(in);
}

void deploy_inst_stop(struct deploy *d, struct instance *in)
{
	struct backend *b = in->dep->backend;

	in->bi.restart = false;
	b->ops->stop(b, &in->bi, d->env.config->stop_grace_s * 1000);
}

/* Lets the backend forget the instance, then frees the record. */
static void inst_free(struct deploy *d, struct instance *in)
{
	struct backend *b = in->dep->backend;

	(void)d;
	if (b != NULL && b->ops->release != NULL)
		b->ops->release(b, &in->bi);
	free(in);
}

/* Folds what the backend observes of an instance into the engine's
 * state of it. */
static void fold(struct instance *in)
{
	struct backend_instance *bi = &in->bi;
	struct deployment *dep = in->dep;

	switch (bi->state) {
	case BACKEND_READY:
		if (in->state == PLAN_STARTING) {
			in->state = PLAN_READY;
			log_event(LOG_INFO, "deploy",
				  LOG_IDS(.deployment_id = dep->id,
					  .instance_id = bi->id),
				  "instance %s of %s is ready", bi->id,
				  dep->name);
		}
		break;
	case BACKEND_STARTING:
		if (in->state == PLAN_READY)
			in->state = PLAN_STARTING;
		note_started(in);
		break;
	case BACKEND_STOPPED:
		if (in->state != PLAN_FAILED) {
			in->state = PLAN_STOPPED;
			log_event(LOG_INFO, "deploy",
				  LOG_IDS(.deployment_id = dep->id,
					  .instance_id = bi->id),
				  "instance %s of %s stopped", bi->id,
				  dep->name);
		}
		break;
	case BACKEND_FAILED:
		in->state = in->state == PLAN_DRAINING ? PLAN_STOPPED
						       : PLAN_FAILED;
		break;
	case BACKEND_NEW:
	case BACKEND_STOPPING:
		break;
	}
}

/* The backend observed a change of an instance. */
static void on_changed(void *arg, struct backend_instance *bi)
{
	struct deploy *d = arg;
	struct instance *in = bi->engine_data;
	struct deployment *dep = in->dep;

	fold(in);
	if (d->closing || d->detaching) {
		deploy_maybe_closed(d);
		return;
	}
	deploy_routes_update(d, dep);
	deploy_persist(d, dep);
}

/* Forgets stopped instances beyond the few kept for display. */
void deploy_prune(struct deploy *d, struct deployment *dep)
{
	size_t dead = 0, j = 0;

	for (size_t i = 0; i < dep->ninst; i++)
		if (!deploy_inst_live(dep->inst[i]) &&
		    !deploy_inst_managed(dep->inst[i]))
			dead++;
	for (size_t i = 0; i < dep->ninst; i++) {
		struct instance *in = dep->inst[i];

		if (dead > DEAD_RECORDS_KEPT && !deploy_inst_live(in) &&
		    !deploy_inst_managed(in) && in->state != PLAN_DRAINING) {
			inst_free(d, in);
			dead--;
			continue;
		}
		dep->inst[j++] = in;
	}
	dep->ninst = j;
}

/* ---- work requests ---- */

void deploy_wr_free(struct workreq *wr)
{
	if (wr == NULL)
		return;
	free(wr->steps);
	free(wr);
}

void deploy_wr_add_step(struct workreq *wr, int kind, const char *inst)
{
	struct wr_step *s;

	wr->steps = xreallocarray(wr->steps, wr->nsteps + 1, sizeof(*s));
	s = &wr->steps[wr->nsteps++];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	deploy_copy_str(s->inst, sizeof(s->inst), inst);
}

/* The planner's steps for an instance backend. */
static void plan_instances(struct deployment *dep, struct workreq *wr,
			   uint32_t count, const char *shape)
{
	struct plan_instance cur[PLAN_MAX_INSTANCES];
	struct instance *slots[PLAN_MAX_INSTANCES];
	struct instance *old[PLAN_MAX_INSTANCES];
	struct plan *plan = xmalloc(sizeof(*plan));
	size_t n = 0;

	for (size_t i = 0; i < dep->ninst && n < PLAN_MAX_INSTANCES; i++) {
		cur[n].shape = dep->inst[i]->bi.shape;
		cur[n].state = dep->inst[i]->state;
		cur[n].started_ms = (uint64_t)dep->inst[i]->created_ms;
		cur[n].stale = dep->inst[i]->spec_gen != dep->spec_gen;
		old[n++] = dep->inst[i];
	}
	planner_plan(cur, n, count, shape, plan);
	for (uint32_t k = 0; k < plan->new_instances; k++)
		slots[k] = deploy_inst_new(dep, shape, wr->id, plan->held);
	for (size_t i = 0; i < plan->n; i++) {
		const struct plan_step *ps = &plan->steps[i];
		const char *id = "";

		if (ps->kind == PLAN_START_INSTANCE)
			id = slots[ps->target]->bi.id;
		else if (ps->target >= 0)
			id = old[ps->target]->bi.id;
		deploy_wr_add_step(wr, ps->kind, id);
	}
	free(plan);
}

struct workreq *deploy_wr_start(struct deploy *d, struct deployment *dep,
				enum wr_op op, uint32_t count,
				const char *shape)
{
	struct workreq *wr = xcalloc(1, sizeof(*wr));

	(void)d;
	ids_new(wr->id, ID_LEN, "wr-");
	deploy_copy_str(wr->dep_id, sizeof(wr->dep_id), dep->id);
	wr->op = op;
	wr->status = WR_ACCEPTED;
	wr->accepted = ids_now_ms();
	wr->from_n = op == OP_CREATE ? 0 : dep->count;
	deploy_copy_str(wr->from_shape, sizeof(wr->from_shape),
			op == OP_CREATE ? "" : dep->shape);
	wr->to_n = count;
	deploy_copy_str(wr->to_shape, sizeof(wr->to_shape), shape);
	if (!is_platform(dep)) {
		plan_instances(dep, wr, count, shape);
	} else if (op == OP_CREATE) {
		deploy_wr_add_step(wr, STEP_READ_PLATFORM, "");
	} else if (op == OP_UPDATE) {
		deploy_wr_add_step(wr, STEP_APPLY, "");
		deploy_wr_add_step(wr, STEP_FOLLOW_PLATFORM, "");
	} /* a delete only forgets the record: no step */
	dep->wr = wr;
	return wr;
}

void deploy_wr_discard(struct deploy *d, struct deployment *dep,
		       struct workreq *prev)
{
	struct workreq *wr = dep->wr;
	size_t j = 0;

	for (size_t i = 0; i < dep->ninst; i++) {
		struct instance *in = dep->inst[i];

		if (wr != NULL && strcmp(in->wr_id, wr->id) == 0 &&
		    in->bi.state == BACKEND_NEW && !in->bi.alive)
			inst_free(d, in);
		else
			dep->inst[j++] = in;
	}
	dep->ninst = j;
	deploy_wr_free(wr);
	dep->wr = prev;
}

/* ---- the tick ---- */

static void reconcile(struct deploy *d, struct deployment *dep);

static void on_tick(uv_timer_t *t)
{
	struct deploy *d = t->data;
	int64_t now = ids_now_ms();

	if (d->closing || d->detaching) {
		watches_fire(d, now, true);
		deploy_maybe_closed(d);
		return;
	}
	for (struct deployment *dep = d->deps; dep; dep = dep->next)
		if (dep->wr != NULL && !deploy_dep_offline(dep))
			deploy_wr_advance(d, dep, now);
	if (now >= d->next_reconcile_ms) {
		d->next_reconcile_ms = now + RECONCILE_MS;
		for (struct deployment *dep = d->deps; dep; dep = dep->next)
			reconcile(d, dep);
	}
	watches_fire(d, now, false);
}

/* ---- desired against actual, and recovery ---- */

/* Whether the running work request is still to start in (its START step
 * has not begun). */
static bool start_pending(const struct deployment *dep,
			  const struct instance *in)
{
	const struct workreq *wr = dep->wr;

	for (size_t i = 0; wr != NULL && i < wr->nsteps; i++)
		if (wr->steps[i].kind == PLAN_START_INSTANCE &&
		    wr->steps[i].status == ST_PENDING &&
		    strcmp(wr->steps[i].inst, in->bi.id) == 0)
			return true;
	return false;
}

/*
 * Starts n new instances for an ACTIVE deployment that runs too few. Their
 * records are committed first: an instance the store does not know of
 * would outlive a crash as an orphan. Returns whether any started.
 */
static bool add_missing(struct deploy *d, struct deployment *dep,
			uint32_t n)
{
	size_t first = dep->ninst;

	for (uint32_t k = 0; k < n; k++)
		deploy_inst_new(dep, dep->shape, "", false);
	if (deploy_persist(d, dep) != 0) {
		for (size_t i = first; i < dep->ninst; i++)
			inst_free(d, dep->inst[i]);
		dep->ninst = first;
		return false;
	}
	for (size_t i = first; i < dep->ninst; i++)
		deploy_inst_start(d, dep->inst[i]);
	return true;
}

/*
 * The desired-vs-actual check of one deployment: an instance that should
 * run (STARTING or READY) but that its backend does not look after is
 * started again, whatever it was doing when it was lost (waiting out a
 * restart backoff when the daemon died, say); one that is done (STOPPED,
 * FAILED) but still runs is stopped; an ACTIVE deployment with no work
 * request that runs fewer instances than its count gets new ones. Runs
 * after recovery and every RECONCILE_MS.
 */
static void reconcile(struct deploy *d, struct deployment *dep)
{
	uint32_t live = 0;
	bool changed = false;

	if (is_platform(dep) || dep->state == DS_DELETED)
		return;
	for (size_t i = 0; i < dep->ninst; i++) {
		struct instance *in = dep->inst[i];

		if (deploy_inst_live(in)) {
			live++;
			if (deploy_inst_managed(in) || start_pending(dep, in) ||
			    dep->state == DS_FAILED)
				continue;
			log_event(LOG_WARN, "deploy",
				  LOG_IDS(.deployment_id = dep->id,
					  .instance_id = in->bi.id),
				  "instance %s of %s should run and does not: "
				  "starting it", in->bi.id, dep->name);
			deploy_inst_start(d, in);
			changed = true;
		} else if ((in->state == PLAN_STOPPED ||
			    in->state == PLAN_FAILED) &&
			   in->bi.alive && in->bi.state != BACKEND_STOPPING) {
			deploy_inst_stop(d, in);
			changed = true;
		}
	}
	if (dep->wr == NULL && dep->state == DS_ACTIVE && live < dep->count)
		changed |= add_missing(d, dep, dep->count - live);
	if (changed || dep->unsaved) {
		deploy_routes_update(d, dep);
		deploy_persist(d, dep);
	}
}

/* Takes over one instance after a restart: adopts it if it still runs;
 * else settles its state (reconcile() starts what should run). */
static void recover_inst(struct deployment *dep, struct instance *in)
{
	struct backend *b = dep->backend;
	int rc = MDS_E_NOTFOUND;

	if (backend_can(b, BACKEND_CAP_ADOPT) && b->ops->adopt != NULL) {
		rc = b->ops->adopt(b, &in->bi);
	} else { /* nothing outlives a daemon on this backend */
		in->bi.alive = false;
		in->bi.pid = 0;
		if (in->bi.state != BACKEND_NEW)
			in->bi.state = BACKEND_STOPPED;
	}
	if (rc == 0) {
		log_event(LOG_INFO, "deploy",
			  LOG_IDS(.deployment_id = dep->id,
				  .instance_id = in->bi.id),
			  "instance %s of %s adopted: pid %d", in->bi.id,
			  dep->name, in->bi.pid);
		in->logged_pid = in->bi.pid;
		fold(in); /* it may have become ready while we were away */
		return;
	}
	if (in->state == PLAN_DRAINING)
		in->state = PLAN_STOPPED;
	else if (deploy_inst_live(in) && in->bi.state == BACKEND_FAILED)
		in->state = PLAN_FAILED;
	else if (in->state == PLAN_READY)
		in->state = PLAN_STARTING;
}

/* A deployment stored without a uid (made before instanceUids, or while
 * the daemon was not root) gets one before any instance of it starts
 * again; its instances still running keep the user they have. */
static void recover_uid(struct deploy *d, struct deployment *dep)
{
	struct fault f;

	/* Two live deployments never share one (a record edited by hand):
	 * the later one gets another. */
	for (struct deployment *p = d->deps; p != dep && dep->spec.uid != 0;
	     p = p->next)
		if (p->state != DS_DELETED && p->spec.uid == dep->spec.uid) {
			log_warn("deploy", "deployment %s had the uid %u of "
				 "%s as well", dep->name, dep->spec.uid,
				 p->name);
			dep->spec.uid = 0;
		}
	if (dep->spec.uid == 0 && deploy_uids_on(d, dep->backend)) {
		if (uidpool_pick(d->uids, &dep->spec.uid, &f) == 0)
			log_event(LOG_INFO, "deploy",
				  LOG_IDS(.deployment_id = dep->id),
				  "deployment %s: its instances run as uid %u "
				  "from now on", dep->name, dep->spec.uid);
		else
			log_event(LOG_WARN, "deploy",
				  LOG_IDS(.deployment_id = dep->id),
				  "deployment %s: %s; its instances run as "
				  "runAsUser %s", dep->name, f.message,
				  d->env.config->run_as_user);
	}
	if (dep->prev_spec != NULL)
		dep->prev_spec->uid = dep->spec.uid;
}

/* The pool's holder: a deployment being deleted keeps its uid until its
 * instances are gone (DELETED). */
static void hold_uids(void *arg, struct uidpool_ids *ids)
{
	const struct deploy *d = arg;

	for (const struct deployment *p = d->deps; p; p = p->next)
		if (p->state != DS_DELETED)
			uidpool_ids_add(ids, p->spec.uid);
}

/* After a restart: adopt the instances that outlived the daemon and
 * settle the deployment's state (reconcile() then brings it to what it
 * should be). */
static void recover(struct deploy *d, struct deployment *dep)
{
	if (dep->state != DS_DELETING)
		recover_uid(d, dep);
	for (size_t i = 0; !is_platform(dep) && i < dep->ninst; i++)
		recover_inst(dep, dep->inst[i]);
	if (dep->wr == NULL && (dep->state == DS_CREATING ||
				dep->state == DS_UPDATING ||
				dep->state == DS_DELETING))
		dep->state = dep->state == DS_DELETING ? DS_DELETED
						       : DS_ACTIVE;
	deploy_persist(d, dep);
}

int deploy_open(const struct deploy_env *env, struct deploy **out,
		char *diag, size_t diagsz)
{
	struct deploy *d;
	int rc;

	if (env->nbackends == 0) {
		mds_diag(diag, diagsz, "no backend for deployments");
		return MDS_E_INVAL;
	}
	d = xcalloc(1, sizeof(*d));
	d->env = *env;
	if (d->env.tick_ms == 0)
		d->env.tick_ms = TICK_MS;
	for (size_t i = 0; i < env->nbackends; i++)
		env->backends[i]->events = (struct backend_events){
			.changed = on_changed,
			.progress = deploy_platform_pushed,
			.instances = deploy_platform_instances,
			.arg = d };
	d->uids = env->uids;
	if (d->uids == NULL)
		d->uids = d->owned_uids = uidpool_from_config(env->config);
	uidpool_hold(d->uids, hold_uids, d);
	rc = deploy_store_load(d);
	if (rc != 0) {
		mds_diag(diag, diagsz, "cannot load deployments");
		while (d->deps != NULL) {
			struct deployment *next = d->deps->next;

			deploy_dep_free(d->deps);
			d->deps = next;
		}
		offline_free(d);
		uidpool_forget(d->uids, d);
		uidpool_free(d->owned_uids);
		free(d);
		return rc;
	}
	/* One transaction for the adoptions: one sync, not one per
	 * deployment. A full device fails it: the daemon starts all the same
	 * and writes the deployments when space returns. New instances start
	 * only after, each once its record is committed. */
	store_begin(env->store);
	for (struct deployment *dep = d->deps; dep; dep = dep->next)
		if (dep->state != DS_DELETED)
			recover(d, dep);
	if (store_commit(env->store) != 0) {
		store_rollback(env->store);
		for (struct deployment *dep = d->deps; dep; dep = dep->next)
			dep->unsaved = dep->state != DS_DELETED;
	}
	for (struct deployment *dep = d->deps; dep; dep = dep->next) {
		if (dep->state == DS_DELETED)
			continue;
		reconcile(d, dep);
		deploy_routes_update(d, dep);
	}
	uv_timer_init(env->loop, &d->tick);
	d->tick.data = d;
	uv_timer_start(&d->tick, on_tick, d->env.tick_ms, d->env.tick_ms);
	*out = d;
	return 0;
}

/* ---- closing ---- */

void deploy_spec_clear(struct backend_spec *sp)
{
	if (sp == NULL)
		return;
	for (size_t i = 0; sp->argv != NULL && i < sp->argc; i++)
		free(sp->argv[i]);
	free(sp->argv);
	for (size_t i = 0; sp->env != NULL && i < sp->nenv; i++)
		free(sp->env[i]);
	free(sp->env);
	for (size_t i = 0; sp->secret != NULL && i < sp->nsecret; i++)
		free(sp->secret[i]);
	free(sp->secret);
	free((char *)sp->health_path);
	memset(sp, 0, sizeof(*sp));
}

void deploy_respec(struct deployment *dep)
{
	for (size_t i = 0; i < dep->ninst; i++) {
		struct instance *in = dep->inst[i];

		in->bi.spec = in->spec_gen == dep->spec_gen ||
					      dep->prev_spec == NULL
				      ? &dep->spec
				      : dep->prev_spec;
	}
}

void deploy_dep_free(struct deployment *dep)
{
	for (size_t i = 0; i < dep->ninst; i++)
		inst_free(dep->owner, dep->inst[i]);
	free(dep->inst);
	deploy_spec_clear(&dep->spec);
	deploy_spec_clear(dep->prev_spec);
	free(dep->prev_spec);
	xstrvfree(dep->tags);
	free(dep->name);
	deploy_wr_free(dep->wr);
	deploy_wr_free(dep->ended_wr);
	free(dep);
}

static void on_tick_closed(uv_handle_t *h)
{
	struct deploy *d = h->data;
	void (*done)(void *) = d->done;
	void *arg = d->done_arg;

	watches_fire(d, 0, true); /* answered while the records exist */
	while (d->deps != NULL) {
		struct deployment *next = d->deps->next;

		deploy_dep_free(d->deps);
		d->deps = next;
	}
	for (size_t i = 0; i < d->env.nbackends; i++)
		d->env.backends[i]->events = (struct backend_events){ 0 };
	offline_free(d);
	uidpool_forget(d->uids, d);
	uidpool_free(d->owned_uids);
	free(d);
	if (done != NULL)
		done(arg);
}

void deploy_maybe_closed(struct deploy *d)
{
	for (struct deployment *dep = d->deps; dep; dep = dep->next) {
		if (dep->wr != NULL && dep->wr->waiting)
			return;
		for (size_t i = 0; d->closing && i < dep->ninst; i++)
			if (dep->inst[i]->bi.alive ||
			    dep->inst[i]->bi.state == BACKEND_STOPPING)
				return;
	}
	if (!uv_is_closing((uv_handle_t *)&d->tick))
		uv_close((uv_handle_t *)&d->tick, on_tick_closed);
}

void deploy_close(struct deploy *d, void (*done)(void *arg), void *arg)
{
	/* Mark what this shutdown stops before stopping it: the next start
	 * brings it back without taking its absence for a crash, and a
	 * shutdown cut short (SIGKILL, a second signal) leaves a state that
	 * adoption reads as before. */
	for (struct deployment *dep = d->deps; dep; dep = dep->next) {
		bool any = false;

		for (size_t i = 0; !is_platform(dep) && i < dep->ninst; i++) {
			struct instance *in = dep->inst[i];

			if (deploy_inst_managed(in) && in->bi.alive &&
			    in->bi.restart) {
				in->bi.shutdown_stop = true;
				any = true;
			}
		}
		if (any)
			deploy_persist(d, dep);
	}
	d->closing = true;
	d->done = done;
	d->done_arg = arg;
	for (struct deployment *dep = d->deps; dep; dep = dep->next)
		for (size_t i = 0; !is_platform(dep) && i < dep->ninst; i++)
			if (deploy_inst_managed(dep->inst[i]))
				deploy_inst_stop(d, dep->inst[i]);
	deploy_maybe_closed(d);
}

void deploy_detach(struct deploy *d, void (*done)(void *arg), void *arg)
{
	d->detaching = true;
	d->done = done;
	d->done_arg = arg;
	deploy_maybe_closed(d);
}

void deploy_each_ended(struct deploy *d,
		       void (*fn)(void *arg, const char *operation,
				  const char *status, uint64_t n),
		       void *arg)
{
	for (size_t op = 0; op < OP__N; op++)
		for (size_t k = 0; k < 2; k++)
			fn(arg, deploy_wr_op_names[op],
			   deploy_wr_status_names[k ? WR_FAILED
						   : WR_SUCCEEDED],
			   d->ended[op][k]);
}
