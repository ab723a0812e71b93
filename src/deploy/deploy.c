/*
 * deploy.c - deployments, their durable work requests, and the local
 * backend's instances (processes in cgroups); see deploy.h.
 *
 * One timer (TICK_MS) drives everything that waits: health checks, restarts
 * with backoff, stop escalation, liveness of adopted processes, and the
 * work request engine. Events (a process exit, a health answer) change
 * state at once; the next tick advances the work requests. Every change
 * that matters is written to the store before the API sees it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deploy/cgroup.h"
#include "core/planner.h"
#include "core/shape.h"
#include "deploy/deploy.h"
#include "gateway/gateway.h"
#include "http/httpc.h"
#include "store/store.h"
#include "util/buf.h"
#include "api/jsonx.h"
#include "util/ids.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

#define TICK_MS 100
#define ID_LEN 24
#define HEALTH_STARTING_MS 200
/* A starting instance is checked often with a short timeout; a ready one
 * gets more slack, since its health path may queue behind a backlog of
 * predictions (a crash is seen at once through the process's exit). */
#define HEALTH_TIMEOUT_MS 2000
#define HEALTH_READY_TIMEOUT_MS 5000
#define HEALTH_FAILS_UNREADY 5
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000
#define DEAD_RECORDS_KEPT 8
#define NAME_MAX_LEN 63

extern char **environ;

enum dep_state { DS_CREATING, DS_ACTIVE, DS_UPDATING, DS_FAILED,
		 DS_DELETING, DS_DELETED };
static const char *const dep_state_names[] = {
	"CREATING", "ACTIVE", "UPDATING", "FAILED", "DELETING", "DELETED" };

static const char *const inst_state_names[] = {
	[PLAN_STARTING] = "STARTING", [PLAN_READY] = "READY",
	[PLAN_DRAINING] = "DRAINING", [PLAN_STOPPED] = "STOPPED",
	[PLAN_FAILED] = "FAILED" };

enum wr_op { OP_CREATE, OP_UPDATE, OP_DELETE };
static const char *const wr_op_names[] = {
	"CREATE_DEPLOYMENT", "UPDATE_DEPLOYMENT", "DELETE_DEPLOYMENT" };

enum wr_status { WR_ACCEPTED, WR_IN_PROGRESS, WR_SUCCEEDED, WR_FAILED };
static const char *const wr_status_names[] = {
	"ACCEPTED", "IN_PROGRESS", "SUCCEEDED", "FAILED" };

enum step_status { ST_PENDING, ST_IN_PROGRESS, ST_SUCCEEDED, ST_FAILED,
		   ST_SKIPPED };
static const char *const step_status_names[] = {
	"PENDING", "IN_PROGRESS", "SUCCEEDED", "FAILED", "SKIPPED" };

static const char *const step_kind_names[] = {
	[PLAN_START_INSTANCE] = "START_INSTANCE",
	[PLAN_WAIT_READY] = "WAIT_READY", [PLAN_ROUTE] = "ROUTE",
	[PLAN_DRAIN_INSTANCE] = "DRAIN_INSTANCE",
	[PLAN_STOP_INSTANCE] = "STOP_INSTANCE" };

struct deployment;

struct instance {
	char id[ID_LEN];
	struct deployment *dep;
	char shape[SHAPE_NAME_MAX + 1];
	enum plan_inst_state state;
	bool held;      /* ready but not routed until the ROUTE step */
	bool ever_ready;
	int port;
	int pid;
	int restarts;
	int start_failures; /* exits before ever being ready */
	int64_t created_ms;
	int64_t proc_started_ms;
	char last_exit[160];
	char wr_id[ID_LEN];
	char cgroup[64];
	/* Runtime only. */
	uv_process_t *proc;  /* our child; NULL for an adopted process */
	bool alive;
	bool stopping;
	int64_t kill_at_ms;
	int64_t respawn_at_ms; /* 0: none scheduled */
	int64_t next_health_ms;
	int health_fails;
	struct httpc_req *hreq;
	bool cgroup_dirty; /* to remove once empty */
};

struct wr_step {
	enum plan_step_kind kind;
	char inst[ID_LEN];
	enum step_status status;
	int64_t t0, t1;
	char msg[200];
};

struct workreq {
	char id[ID_LEN];
	char dep_id[ID_LEN];
	enum wr_op op;
	enum wr_status status;
	uint32_t from_n, to_n;
	char from_shape[SHAPE_NAME_MAX + 1], to_shape[SHAPE_NAME_MAX + 1];
	char error[300];
	bool rollback;
	int64_t accepted, started, finished;
	struct wr_step *steps;
	size_t nsteps;
};

struct deployment {
	char id[ID_LEN];
	char *name;
	json_t *command; /* string or array of strings */
	char *health_path;
	json_t *env;     /* object of strings */
	char shape[SHAPE_NAME_MAX + 1];
	uint32_t count;
	uint32_t ready_timeout_s, drain_timeout_s;
	bool replay_all; /* replayNonIdempotent: see gateway_set_replay() */
	enum dep_state state;
	char details[300];
	int64_t created_ms, updated_ms;
	struct workreq *wr;
	struct instance **inst;
	size_t ninst;
	struct deploy *owner;
	struct deployment *next;
};

struct deploy {
	struct deploy_env env;
	uv_timer_t tick;
	struct deployment *deps; /* in creation order */
	uint64_t ended[3][2];    /* work requests ended since the start, by
				    enum wr_op and [0] SUCCEEDED, [1] FAILED */
	bool closing;
	void (*done)(void *);
	void *done_arg;
};

/* ---- small helpers ---- */

static int lookup(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] != NULL && s != NULL && strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}
#define LOOKUP(names, s) lookup(names, sizeof(names) / sizeof(names[0]), s)

static const char *jstr(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : dflt;
}

static int64_t jint(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void copy_str(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

static bool live(const struct instance *in)
{
	return in->state == PLAN_STARTING || in->state == PLAN_READY;
}

/* ---- lookup ---- */

static struct deployment *find_dep(struct deploy *d, const char *key)
{
	for (struct deployment *p = d->deps; p; p = p->next)
		if (p->state != DS_DELETED && strcmp(p->id, key) == 0)
			return p;
	for (struct deployment *p = d->deps; p; p = p->next)
		if (p->state != DS_DELETED && strcmp(p->name, key) == 0)
			return p;
	for (struct deployment *p = d->deps; p; p = p->next)
		if (strcmp(p->id, key) == 0)
			return p;
	return NULL;
}

static struct instance *find_inst(struct deployment *dep, const char *id)
{
	for (size_t i = 0; i < dep->ninst; i++)
		if (strcmp(dep->inst[i]->id, id) == 0)
			return dep->inst[i];
	return NULL;
}

/* ---- JSON views ---- */

static json_t *inst_json(const struct deploy *d, const struct instance *in,
			 bool internal)
{
	json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:s, s:i, s:o}", "id",
			      in->id, "state", inst_state_names[in->state],
			      "port", in->port, "pid", in->alive ? in->pid : 0,
			      "instanceShapeName", in->shape, "restarts",
			      in->restarts, "timeStarted",
			      jsonx_time(in->proc_started_ms));
	char *path = NULL;

	if (in->cgroup[0] != '\0' && !internal)
		path = cgroup_path(d->env.cgroups, in->cgroup);
	json_object_set_new(o, "cgroup", path ? json_string(path)
					      : json_null());
	free(path);
	json_object_set_new(o, "lastExit", in->last_exit[0]
						   ? json_string(in->last_exit)
						   : json_null());
	if (internal) {
		json_object_set_new(o, "pid", json_integer(in->pid));
		json_object_set_new(o, "held", json_boolean(in->held));
		json_object_set_new(o, "everReady",
				    json_boolean(in->ever_ready));
		json_object_set_new(o, "startFailures",
				    json_integer(in->start_failures));
		json_object_set_new(o, "createdMs",
				    json_integer(in->created_ms));
		json_object_set_new(o, "procStartedMs",
				    json_integer(in->proc_started_ms));
		json_object_set_new(o, "workRequestId", json_string(in->wr_id));
		json_object_set_new(o, "cgroupName", json_string(in->cgroup));
	}
	return o;
}

static json_t *dep_json(const struct deploy *d, const struct deployment *dep,
			bool internal)
{
	json_t *o, *arr = json_array();

	o = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s, s:s, s:i, s:O, s:i, "
		      "s:i, s:o, s:o, s:o}",
		      "id", dep->id, "displayName", dep->name,
		      "lifecycleState", dep_state_names[dep->state],
		      "lifecycleDetails", dep->details, "command",
		      dep->command, "healthPath", dep->health_path,
		      "instanceShapeName", dep->shape, "instanceCount",
		      (int)dep->count, "environment", dep->env,
		      "readyTimeoutSeconds", (int)dep->ready_timeout_s,
		      "drainTimeoutSeconds", (int)dep->drain_timeout_s,
		      "timeCreated", jsonx_time(dep->created_ms), "timeUpdated",
		      jsonx_time(dep->updated_ms), "currentWorkRequestId",
		      dep->wr ? json_string(dep->wr->id) : json_null());
	json_object_set_new(o, "replayNonIdempotent",
			    json_boolean(dep->replay_all));
	json_object_set_new(o, "endpoint",
			    json_sprintf("%s/%s", d->env.gateway_url, dep->id));
	for (size_t i = 0; i < dep->ninst; i++)
		json_array_append_new(arr, inst_json(d, dep->inst[i], internal));
	json_object_set_new(o, "instances", arr);
	if (internal) {
		json_object_set_new(o, "createdMs", json_integer(dep->created_ms));
		json_object_set_new(o, "updatedMs", json_integer(dep->updated_ms));
	}
	return o;
}

static json_t *wr_json(const struct workreq *wr)
{
	json_t *steps = json_array();
	size_t done = 0;

	for (size_t i = 0; i < wr->nsteps; i++) {
		const struct wr_step *s = &wr->steps[i];

		if (s->status == ST_SUCCEEDED || s->status == ST_SKIPPED ||
		    s->status == ST_FAILED)
			done++;
		json_array_append_new(
			steps,
			json_pack("{s:i, s:s, s:o, s:s, s:o, s:o, s:s}",
				  "index", (int)i, "kind",
				  step_kind_names[s->kind], "instanceId",
				  s->inst[0] ? json_string(s->inst)
					     : json_null(),
				  "status", step_status_names[s->status],
				  "timeStarted", jsonx_time(s->t0),
				  "timeFinished", jsonx_time(s->t1),
				  "message", s->msg));
	}
	return json_pack(
		"{s:s, s:s, s:s, s:s, s:i, s:{s:i, s:s}, s:{s:i, s:s}, s:o, "
		"s:o, s:o, s:o, s:o}",
		"id", wr->id, "deploymentId", wr->dep_id, "operationType",
		wr_op_names[wr->op], "status", wr_status_names[wr->status],
		"percentComplete",
		wr->status >= WR_SUCCEEDED
			? 100
			: (int)(wr->nsteps ? done * 100 / wr->nsteps : 0),
		"from", "instanceCount", (int)wr->from_n, "instanceShapeName",
		wr->from_shape, "to", "instanceCount", (int)wr->to_n,
		"instanceShapeName", wr->to_shape, "errorMessage",
		wr->error[0] ? json_string(wr->error) : json_null(),
		"timeAccepted", jsonx_time(wr->accepted), "timeStarted",
		jsonx_time(wr->started), "timeFinished", jsonx_time(wr->finished),
		"steps", steps);
}

/* ---- persistence ---- */

static void save_json(struct deploy *d, const char *kind, const char *id,
		      json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	if (store_put(d->env.store, kind, id, s) != 0)
		log_error("deploy", "cannot save %s %s", kind, id);
	free(s);
	json_decref(o);
}

/* Writes the deployment and its work request, atomically. */
static void persist(struct deploy *d, struct deployment *dep)
{
	if (d->closing)
		return; /* a shutdown leaves the stored state as it was */
	dep->updated_ms = ids_now_ms();
	store_begin(d->env.store);
	save_json(d, "deployment", dep->id, dep_json(d, dep, true));
	if (dep->wr != NULL)
		save_json(d, "workrequest", dep->wr->id, wr_json(dep->wr));
	store_commit(d->env.store);
}

/* ---- routing ---- */

static void routes_update(struct deploy *d, struct deployment *dep)
{
	struct gateway_upstream ups[PLAN_MAX_INSTANCES];
	size_t n = 0;

	if (dep->state == DS_DELETED) {
		gateway_remove(d->env.gateway, dep->id);
		return;
	}
	for (size_t i = 0; i < dep->ninst && n < PLAN_MAX_INSTANCES; i++) {
		struct instance *in = dep->inst[i];

		if (in->state == PLAN_READY && !in->held && in->alive &&
		    !in->stopping) {
			ups[n].instance_id = in->id;
			ups[n].port = (uint16_t)in->port;
			n++;
		}
	}
	gateway_set_routes(d->env.gateway, dep->id, dep->name, ups, n);
	gateway_set_replay(d->env.gateway, dep->id,
			   dep->replay_all ? GATEWAY_REPLAY_ALL
					   : GATEWAY_REPLAY_SAFE);
}

/* ---- instances: processes ---- */

static int pick_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* Replaces every $PORT and ${PORT} in s. */
static char *subst_port(const char *s, int port)
{
	struct buf b;
	char num[16];

	snprintf(num, sizeof(num), "%d", port);
	buf_init(&b, 1 << 20);
	while (*s != '\0') {
		if (strncmp(s, "${PORT}", 7) == 0) {
			buf_addstr(&b, num);
			s += 7;
		} else if (strncmp(s, "$PORT", 5) == 0 &&
			   !(s[5] == '_' || (s[5] >= 'A' && s[5] <= 'Z') ||
			     (s[5] >= 'a' && s[5] <= 'z') ||
			     (s[5] >= '0' && s[5] <= '9'))) {
			buf_addstr(&b, num);
			s += 5;
		} else {
			buf_add(&b, s, 1);
			s++;
		}
	}
	return buf_steal(&b);
}

static void inst_exited(struct deploy *d, struct instance *in,
			int64_t status, int sig);

static void on_proc_exit(uv_process_t *p, int64_t status, int sig)
{
	struct instance *in = p->data;

	in->proc = NULL;
	uv_close((uv_handle_t *)p, (uv_close_cb)free);
	inst_exited(in->dep->owner, in, status, sig);
}

static void inst_spawn(struct deploy *d, struct instance *in)
{
	struct deployment *dep = in->dep;
	const struct shape *sh = shape_find(&d->env.config->shapes, in->shape);
	uv_process_options_t opt;
	uv_stdio_container_t stdio[3];
	char **args = NULL, **envp = NULL, *logpath, *procs = NULL;
	int errfd;
	char diag[256];
	size_t nargs = 0, nenv = 0, i;
	const char *key;
	json_t *v;
	int fd, rc;

	in->respawn_at_ms = 0;
	in->port = pick_port();
	in->health_fails = 0;
	if (sh == NULL || in->port < 0) {
		snprintf(in->last_exit, sizeof(in->last_exit),
			 sh ? "no free port" : "unknown shape");
		inst_exited(d, in, 127, 0);
		return;
	}
	snprintf(in->cgroup, sizeof(in->cgroup), "mdscale/%s", in->id);
	if (cgroup_version(d->env.cgroups) != CGROUP_NONE) {
		rc = cgroup_create(d->env.cgroups, in->cgroup, sh->mcpu,
				   sh->mem_bytes, diag, sizeof(diag));
		if (rc != 0) {
			snprintf(in->last_exit, sizeof(in->last_exit),
				 "cannot create cgroup: %.120s", diag);
			inst_exited(d, in, 127, 0);
			return;
		}
		procs = cgroup_procs_files(d->env.cgroups, in->cgroup);
	} else {
		in->cgroup[0] = '\0';
	}

	/* argv: mdscale __instance PROCS -- command... */
	args = xcalloc(json_array_size(dep->command) + 8, sizeof(char *));
	args[nargs++] = xstrdup(d->env.self_exe);
	args[nargs++] = xstrdup("__instance");
	args[nargs++] = procs ? procs : xstrdup("-");
	args[nargs++] = xstrdup("--");
	if (json_is_string(dep->command)) {
		args[nargs++] = xstrdup("/bin/sh");
		args[nargs++] = xstrdup("-c");
		args[nargs++] = xstrdup(json_string_value(dep->command));
	} else {
		json_array_foreach(dep->command, i, v)
			args[nargs++] = subst_port(json_string_value(v),
						   in->port);
	}
	args[nargs] = NULL;

	for (char **e = environ; *e; e++)
		nenv++;
	envp = xcalloc(nenv + json_object_size(dep->env) + 8, sizeof(char *));
	nenv = 0;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "PORT=", 5) != 0 &&
		    strncmp(*e, "MDSCALE_", 8) != 0)
			envp[nenv++] = xstrdup(*e);
	json_object_foreach(dep->env, key, v)
		envp[nenv++] = xasprintf("%s=%s", key, json_string_value(v));
	envp[nenv++] = xasprintf("PORT=%d", in->port);
	envp[nenv++] = xasprintf("MDSCALE_DEPLOYMENT_ID=%s", dep->id);
	envp[nenv++] = xasprintf("MDSCALE_INSTANCE_ID=%s", in->id);
	envp[nenv++] = xasprintf("MDSCALE_SHAPE=%s", in->shape);
	envp[nenv++] = xasprintf("MDSCALE_CPUS=%.3f", sh->mcpu / 1000.0);
	envp[nenv++] = xasprintf("MDSCALE_MEMORY_BYTES=%llu",
				 (unsigned long long)sh->mem_bytes);
	envp[nenv] = NULL;

	/* Files, not pipes: an instance outlives a SIGKILLed daemon. Logging
	 * tails them (O_APPEND lets it truncate them once read). */
	logpath = xasprintf("%s/instances/%s.out.log", d->env.data_dir, in->id);
	fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	free(logpath);
	logpath = xasprintf("%s/instances/%s.err.log", d->env.data_dir, in->id);
	errfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	free(logpath);
	if (d->env.instance_output != NULL)
		d->env.instance_output(d->env.instance_output_arg, dep->id,
				       in->id);

	memset(&opt, 0, sizeof(opt));
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = fd >= 0 ? UV_INHERIT_FD : UV_IGNORE;
	stdio[1].data.fd = fd;
	stdio[2].flags = errfd >= 0 ? UV_INHERIT_FD : UV_IGNORE;
	stdio[2].data.fd = errfd;
	opt.file = args[0];
	opt.args = args;
	opt.env = envp;
	opt.stdio = stdio;
	opt.stdio_count = 3;
	opt.flags = UV_PROCESS_DETACHED;
	opt.exit_cb = on_proc_exit;
	in->proc = xcalloc(1, sizeof(*in->proc));
	in->proc->data = in;
	rc = uv_spawn(d->env.loop, in->proc, &opt);
	if (fd >= 0)
		close(fd);
	if (errfd >= 0)
		close(errfd);
	for (i = 0; args[i]; i++)
		free(args[i]);
	free(args);
	for (i = 0; envp[i]; i++)
		free(envp[i]);
	free(envp);
	if (rc != 0) {
		uv_close((uv_handle_t *)in->proc, (uv_close_cb)free);
		in->proc = NULL;
		snprintf(in->last_exit, sizeof(in->last_exit),
			 "cannot start: %s", uv_strerror(rc));
		inst_exited(d, in, 127, 0);
		return;
	}
	in->pid = in->proc->pid;
	in->alive = true;
	in->stopping = false;
	in->proc_started_ms = ids_now_ms();
	in->next_health_ms = in->proc_started_ms + 50;
	if (in->state != PLAN_DRAINING)
		in->state = PLAN_STARTING;
	log_event(LOG_INFO, "deploy",
		  LOG_IDS(.deployment_id = dep->id, .instance_id = in->id,
			  .work_request_id = dep->wr ? dep->wr->id : NULL),
		  "instance %s of %s started: pid %d port %d shape %s",
		  in->id, dep->name, in->pid, in->port, in->shape);
	persist(d, dep);
}

static void cgroup_cleanup(struct deploy *d, struct instance *in)
{
	if (in->cgroup[0] == '\0' ||
	    cgroup_version(d->env.cgroups) == CGROUP_NONE)
		return;
	cgroup_kill(d->env.cgroups, in->cgroup, SIGKILL);
	in->cgroup_dirty =
		cgroup_destroy(d->env.cgroups, in->cgroup) != 0;
}

static void inst_exited(struct deploy *d, struct instance *in,
			int64_t status, int sig)
{
	struct deployment *dep = in->dep;
	uint32_t backoff;
	int n;

	in->alive = false;
	if (in->hreq != NULL)
		httpc_cancel(d->env.httpc, in->hreq);
	if (in->stopping) {
		in->stopping = false;
		in->state = PLAN_STOPPED;
		cgroup_cleanup(d, in);
		log_event(LOG_INFO, "deploy",
			  LOG_IDS(.deployment_id = dep->id,
				  .instance_id = in->id),
			  "instance %s of %s stopped", in->id, dep->name);
		persist(d, dep);
		return;
	}
	if (in->pid > 0) {
		if (sig != 0)
			snprintf(in->last_exit, sizeof(in->last_exit),
				 "killed by signal %d%s", sig,
				 sig == SIGKILL ? " (out of memory?)" : "");
		else if (status >= 0)
			snprintf(in->last_exit, sizeof(in->last_exit),
				 "exited with status %d", (int)status);
		else
			snprintf(in->last_exit, sizeof(in->last_exit),
				 "exited while the daemon was away");
		in->restarts++;
	}
	in->pid = 0;
	if (in->state == PLAN_READY)
		in->state = PLAN_STARTING;
	routes_update(d, dep);
	if (!in->ever_ready)
		in->start_failures++;
	cgroup_cleanup(d, in);
	if (in->state == PLAN_DRAINING) {
		in->state = PLAN_STOPPED;
	} else if (!in->ever_ready &&
		   in->start_failures >=
			   (int)d->env.config->max_start_attempts) {
		in->state = PLAN_FAILED;
		log_event(LOG_WARN, "deploy",
			  LOG_IDS(.deployment_id = dep->id,
				  .instance_id = in->id),
			  "instance %s of %s failed: %s", in->id, dep->name,
			  in->last_exit);
	} else if (!d->closing) {
		n = in->start_failures > 0 ? in->start_failures : 1;
		backoff = BACKOFF_MIN_MS << (n > 7 ? 7 : n - 1);
		if (backoff > BACKOFF_MAX_MS)
			backoff = BACKOFF_MAX_MS;
		in->respawn_at_ms = ids_now_ms() + backoff;
		log_event(LOG_WARN, "deploy",
			  LOG_IDS(.deployment_id = dep->id,
				  .instance_id = in->id),
			  "instance %s of %s %s; restart in %u ms", in->id,
			  dep->name, in->last_exit, backoff);
	}
	persist(d, dep);
}

static void inst_stop(struct deploy *d, struct instance *in)
{
	in->respawn_at_ms = 0;
	if (!in->alive) {
		if (in->state != PLAN_FAILED)
			in->state = PLAN_STOPPED;
		cgroup_cleanup(d, in);
		return;
	}
	if (in->stopping)
		return;
	in->stopping = true;
	in->kill_at_ms = ids_now_ms() + (int64_t)d->env.config->stop_grace_s * 1000;
	if (in->pid > 0)
		kill(-in->pid, SIGTERM);
	if (in->cgroup[0] != '\0' &&
	    cgroup_version(d->env.cgroups) != CGROUP_NONE)
		cgroup_kill(d->env.cgroups, in->cgroup, SIGTERM);
	else if (in->pid > 0)
		kill(in->pid, SIGTERM);
}

static void on_health(void *arg, const struct httpc_result *res)
{
	struct instance *in = arg;
	struct deployment *dep = in->dep;
	struct deploy *d = dep->owner;
	int64_t now = ids_now_ms();
	bool ok = res->error == 0 && res->status >= 200 && res->status < 300;

	in->hreq = NULL;
	if (res->error == MDS_E_UNAVAIL && !in->alive)
		return; /* cancelled */
	if (!in->alive || in->stopping)
		return;
	if (ok) {
		in->health_fails = 0;
		if (in->state == PLAN_STARTING) {
			in->state = PLAN_READY;
			in->ever_ready = true;
			in->start_failures = 0;
			log_event(LOG_INFO, "deploy",
				  LOG_IDS(.deployment_id = dep->id,
					  .instance_id = in->id),
				  "instance %s of %s is ready", in->id,
				  dep->name);
			routes_update(d, dep);
			persist(d, dep);
		}
	} else if (in->state == PLAN_READY &&
		   ++in->health_fails >= HEALTH_FAILS_UNREADY) {
		in->state = PLAN_STARTING;
		log_event(LOG_WARN, "deploy",
			  LOG_IDS(.deployment_id = dep->id,
				  .instance_id = in->id),
			  "instance %s of %s is not ready: %s", in->id,
			  dep->name,
			  res->error ? res->detail : "health check failed");
		routes_update(d, dep);
		persist(d, dep);
	}
	in->next_health_ms = now + (in->state == PLAN_READY
					    ? d->env.config->health_interval_ms
					    : HEALTH_STARTING_MS);
}

static void health_check(struct deploy *d, struct instance *in)
{
	struct httpc_opts opt;
	char *url;

	memset(&opt, 0, sizeof(opt));
	opt.timeout_ms = in->state == PLAN_READY ? HEALTH_READY_TIMEOUT_MS
						 : HEALTH_TIMEOUT_MS;
	opt.max_body = 64 * 1024;
	url = xasprintf("http://127.0.0.1:%d%s", in->port,
			in->dep->health_path);
	if (httpc_request(d->env.httpc, url, &opt, on_health, in, &in->hreq) !=
	    0)
		in->hreq = NULL;
	free(url);
}

static void inst_tick(struct deploy *d, struct instance *in, int64_t now)
{
	if (in->alive && in->proc == NULL && in->pid > 0 &&
	    kill(in->pid, 0) != 0 && errno == ESRCH) {
		inst_exited(d, in, -1, 0); /* an adopted process ended */
		return;
	}
	if (in->alive && in->stopping && now >= in->kill_at_ms) {
		if (in->pid > 0)
			kill(-in->pid, SIGKILL);
		if (in->cgroup[0] != '\0')
			cgroup_kill(d->env.cgroups, in->cgroup, SIGKILL);
		in->kill_at_ms = now + 1000;
	}
	if (!in->alive && in->respawn_at_ms != 0 && now >= in->respawn_at_ms &&
	    !d->closing)
		inst_spawn(d, in);
	if (in->alive && !in->stopping && in->hreq == NULL &&
	    now >= in->next_health_ms)
		health_check(d, in);
	if (in->cgroup_dirty && !in->alive)
		in->cgroup_dirty =
			cgroup_destroy(d->env.cgroups, in->cgroup) != 0;
}

static struct instance *inst_new(struct deployment *dep, const char *shape,
				 const char *wr_id, bool held)
{
	struct instance *in = xcalloc(1, sizeof(*in));

	ids_new(in->id, ID_LEN, "mi-");
	in->dep = dep;
	copy_str(in->shape, sizeof(in->shape), shape);
	in->state = PLAN_STARTING;
	in->held = held;
	in->created_ms = ids_now_ms();
	copy_str(in->wr_id, sizeof(in->wr_id), wr_id);
	dep->inst = xreallocarray(dep->inst, dep->ninst + 1,
				  sizeof(*dep->inst));
	dep->inst[dep->ninst++] = in;
	return in;
}

static void inst_free(struct instance *in)
{
	free(in);
}

/* Forgets stopped instances beyond the few kept for display. */
static void prune(struct deployment *dep)
{
	size_t dead = 0, j = 0;

	for (size_t i = 0; i < dep->ninst; i++)
		if (!live(dep->inst[i]) && !dep->inst[i]->alive)
			dead++;
	for (size_t i = 0; i < dep->ninst; i++) {
		struct instance *in = dep->inst[i];

		if (dead > DEAD_RECORDS_KEPT && !live(in) && !in->alive &&
		    in->hreq == NULL && !in->cgroup_dirty &&
		    in->state != PLAN_DRAINING) {
			inst_free(in);
			dead--;
			continue;
		}
		dep->inst[j++] = in;
	}
	dep->ninst = j;
}

/* ---- work requests ---- */

static void wr_free(struct workreq *wr)
{
	if (wr == NULL)
		return;
	free(wr->steps);
	free(wr);
}

static void wr_add_step(struct workreq *wr, enum plan_step_kind kind,
			const char *inst)
{
	struct wr_step *s;

	wr->steps = xreallocarray(wr->steps, wr->nsteps + 1, sizeof(*s));
	s = &wr->steps[wr->nsteps++];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	copy_str(s->inst, sizeof(s->inst), inst);
}

/* Plans the move to (count, shape) and creates the new instances' records. */
static struct workreq *wr_start(struct deploy *d, struct deployment *dep,
				enum wr_op op, uint32_t count,
				const char *shape)
{
	struct plan_instance cur[PLAN_MAX_INSTANCES];
	struct instance *slots[PLAN_MAX_INSTANCES];
	struct instance *old[PLAN_MAX_INSTANCES];
	struct workreq *wr = xcalloc(1, sizeof(*wr));
	struct plan *plan = xmalloc(sizeof(*plan));
	size_t n = 0;

	ids_new(wr->id, ID_LEN, "wr-");
	copy_str(wr->dep_id, sizeof(wr->dep_id), dep->id);
	wr->op = op;
	wr->status = WR_ACCEPTED;
	wr->accepted = ids_now_ms();
	wr->from_n = op == OP_CREATE ? 0 : dep->count;
	copy_str(wr->from_shape, sizeof(wr->from_shape),
		 op == OP_CREATE ? "" : dep->shape);
	wr->to_n = count;
	copy_str(wr->to_shape, sizeof(wr->to_shape), shape ? shape : "");
	for (size_t i = 0; i < dep->ninst && n < PLAN_MAX_INSTANCES; i++) {
		cur[n].shape = dep->inst[i]->shape;
		cur[n].state = dep->inst[i]->state;
		cur[n].started_ms = (uint64_t)dep->inst[i]->created_ms;
		old[n++] = dep->inst[i];
	}
	planner_plan(cur, n, count, shape, plan);
	for (uint32_t k = 0; k < plan->new_instances; k++)
		slots[k] = inst_new(dep, shape, wr->id, plan->held);
	for (size_t i = 0; i < plan->n; i++) {
		const struct plan_step *ps = &plan->steps[i];
		const char *id = "";

		if (ps->kind == PLAN_START_INSTANCE)
			id = slots[ps->target]->id;
		else if (ps->target >= 0)
			id = old[ps->target]->id;
		wr_add_step(wr, ps->kind, id);
	}
	free(plan);
	dep->wr = wr;
	return wr;
}

enum check { WAIT, DONE, FAIL };

static void step_begin(struct deploy *d, struct deployment *dep,
		       struct wr_step *s)
{
	struct instance *in = s->inst[0] ? find_inst(dep, s->inst) : NULL;

	switch (s->kind) {
	case PLAN_START_INSTANCE:
		if (in != NULL && !in->alive && live(in))
			inst_spawn(d, in);
		break;
	case PLAN_WAIT_READY:
		break;
	case PLAN_ROUTE:
		for (size_t i = 0; i < dep->ninst; i++) {
			struct instance *x = dep->inst[i];

			if (strcmp(x->wr_id, dep->wr->id) == 0)
				x->held = false;
			else if (live(x))
				x->state = PLAN_DRAINING;
		}
		routes_update(d, dep);
		break;
	case PLAN_DRAIN_INSTANCE:
		if (in != NULL && in->state != PLAN_STOPPED &&
		    in->state != PLAN_FAILED) {
			in->state = PLAN_DRAINING;
			in->respawn_at_ms = 0;
			routes_update(d, dep);
		}
		break;
	case PLAN_STOP_INSTANCE:
		if (in != NULL)
			inst_stop(d, in);
		break;
	}
}

static enum check step_check(struct deploy *d, struct deployment *dep,
			     struct wr_step *s, int64_t now)
{
	struct instance *in = s->inst[0] ? find_inst(dep, s->inst) : NULL;
	uint32_t inflight;

	switch (s->kind) {
	case PLAN_START_INSTANCE:
		if (in == NULL || in->alive || in->state == PLAN_READY)
			return DONE;
		if (in->state == PLAN_FAILED) {
			snprintf(s->msg, sizeof(s->msg), "instance %s: %.150s",
				 in->id, in->last_exit);
			return FAIL;
		}
		return WAIT;
	case PLAN_WAIT_READY: {
		bool all = true;

		for (size_t i = 0; i < dep->ninst; i++) {
			struct instance *x = dep->inst[i];

			if (strcmp(x->wr_id, dep->wr->id) != 0)
				continue;
			if (x->state == PLAN_FAILED) {
				snprintf(s->msg, sizeof(s->msg),
					 "instance %s could not start: %.120s "
					 "(%d attempts)", x->id, x->last_exit,
					 x->start_failures);
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
				 dep->health_path);
			return FAIL;
		}
		return WAIT;
	}
	case PLAN_ROUTE:
		return DONE;
	case PLAN_DRAIN_INSTANCE:
		if (in == NULL || !in->alive)
			return DONE;
		inflight = gateway_instance_inflight(d->env.gateway, in->id);
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
		if (in == NULL || (!in->alive && !in->stopping))
			return DONE;
		return WAIT;
	}
	return DONE;
}

/* Turns a failed work request into its rollback: the new instances go. */
static void wr_fail(struct deploy *d, struct deployment *dep, const char *msg)
{
	struct workreq *wr = dep->wr;

	log_event(LOG_WARN, "deploy",
		  LOG_IDS(.deployment_id = dep->id, .work_request_id = wr->id),
		  "work request %s on %s failed: %s", wr->id, dep->name, msg);
	if (wr->error[0] == '\0')
		copy_str(wr->error, sizeof(wr->error), msg);
	for (size_t i = 0; i < wr->nsteps; i++)
		if (wr->steps[i].status == ST_PENDING)
			wr->steps[i].status = ST_SKIPPED;
	if (wr->rollback || wr->op == OP_DELETE)
		return;
	wr->rollback = true;
	for (size_t i = 0; i < dep->ninst; i++) {
		struct instance *x = dep->inst[i];

		if (strcmp(x->wr_id, wr->id) == 0 &&
		    (live(x) || x->alive))
			wr_add_step(wr, PLAN_DRAIN_INSTANCE, x->id);
	}
	for (size_t i = 0, n = wr->nsteps; i < n; i++) {
		char id[ID_LEN];

		/* Copied: adding a step may move the array. */
		if (wr->steps[i].status != ST_PENDING)
			continue;
		copy_str(id, sizeof(id), wr->steps[i].inst);
		wr_add_step(wr, PLAN_STOP_INSTANCE, id);
	}
	if (wr->op == OP_UPDATE) {
		dep->count = wr->from_n;
		copy_str(dep->shape, sizeof(dep->shape), wr->from_shape);
	}
}

static void wr_finish(struct deploy *d, struct deployment *dep, int64_t now)
{
	struct workreq *wr = dep->wr;

	wr->finished = now;
	if (wr->rollback) {
		wr->status = WR_FAILED;
		if (wr->op == OP_CREATE) {
			dep->state = DS_FAILED;
			copy_str(dep->details, sizeof(dep->details), wr->error);
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
		  wr_status_names[wr->status]);
	prune(dep);
	persist(d, dep);
	dep->wr = NULL;
	persist(d, dep);
	wr_free(wr);
	routes_update(d, dep);
}

static void wr_advance(struct deploy *d, struct deployment *dep, int64_t now)
{
	struct workreq *wr = dep->wr;

	if (wr->status == WR_ACCEPTED) {
		wr->status = WR_IN_PROGRESS;
		wr->started = now;
		persist(d, dep);
	}
	for (;;) {
		size_t i = 0, j;
		bool all_done = true, changed = false;

		while (i < wr->nsteps && (wr->steps[i].status == ST_SUCCEEDED ||
					  wr->steps[i].status == ST_SKIPPED ||
					  wr->steps[i].status == ST_FAILED))
			i++;
		if (i == wr->nsteps) {
			wr_finish(d, dep, now);
			return;
		}
		j = i;
		while (j < wr->nsteps && wr->steps[j].kind == wr->steps[i].kind)
			j++;
		for (size_t k = i; k < j; k++) {
			struct wr_step *s = &wr->steps[k];
			enum check c;

			if (s->status == ST_PENDING) {
				s->status = ST_IN_PROGRESS;
				s->t0 = now;
				changed = true;
				step_begin(d, dep, s);
			}
			c = step_check(d, dep, s, now);
			if (c == DONE) {
				s->status = ST_SUCCEEDED;
				s->t1 = now;
				changed = true;
			} else if (c == FAIL) {
				s->status = ST_FAILED;
				s->t1 = now;
				wr_fail(d, dep, s->msg);
				persist(d, dep);
				return;
			} else {
				all_done = false;
			}
		}
		if (changed)
			persist(d, dep);
		if (!all_done)
			return;
	}
}

/* ---- the tick ---- */

static void maybe_closed(struct deploy *d);

static void on_tick(uv_timer_t *t)
{
	struct deploy *d = t->data;
	int64_t now = ids_now_ms();

	for (struct deployment *dep = d->deps; dep; dep = dep->next) {
		for (size_t i = 0; i < dep->ninst; i++)
			inst_tick(d, dep->inst[i], now);
		if (dep->wr != NULL && !d->closing)
			wr_advance(d, dep, now);
	}
	if (d->closing)
		maybe_closed(d);
}

/* ---- validation ---- */

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NAME_MAX_LEN || strncmp(s, "md-", 3) == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

/* Returns true if prog (a path, or a name looked up on PATH) can run. */
static bool runnable(const char *prog)
{
	const char *path = getenv("PATH");
	bool ok = false;

	if (strchr(prog, '/') != NULL)
		return access(prog, X_OK) == 0;
	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (!ok && *path != '\0') {
		const char *end = strchr(path, ':');
		size_t n = end ? (size_t)(end - path) : strlen(path);
		char *full = xasprintf("%.*s/%s", (int)n, n ? path : ".", prog);
		struct stat st;

		ok = stat(full, &st) == 0 && S_ISREG(st.st_mode) &&
		     access(full, X_OK) == 0;
		free(full);
		path = end ? end + 1 : path + n;
	}
	return ok;
}

/*
 * For a shell command line, finds the program its first simple command
 * runs, when that is plain enough to tell without a shell (no quoting,
 * expansion or builtins other than exec). Returns NULL when it can't tell.
 */
static char *shell_program(const char *cmd)
{
	static const char *const builtins[] = {
		"cd", "export", "set", "if", "for", "while", "case", ".",
		"eval", "test", "[", "true", "false", "echo", "printf", "read",
		"trap", "ulimit", "umask", "wait", "command", "until", "{",
		"(", "!", "unset", "shift", "exit", "return", "source", ":",
		"sleep" };
	const char *p = cmd;

	for (int words = 0; words < 2; words++) {
		const char *start;
		char *w;
		bool builtin = false;

		while (*p == ' ' || *p == '\t')
			p++;
		start = p;
		while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\n' &&
		       *p != ';' && *p != '&' && *p != '|')
			p++;
		if (p == start)
			return NULL;
		w = xstrndup(start, (size_t)(p - start));
		if (strpbrk(w, "=$'\"`\\*?[]~(){}<>") != NULL) {
			free(w);
			return NULL;
		}
		if (strcmp(w, "exec") == 0) {
			free(w);
			continue;
		}
		for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
			builtin |= strcmp(w, builtins[i]) == 0;
		if (builtin) {
			free(w);
			return NULL;
		}
		return w;
	}
	return NULL;
}

static int check_command(json_t *cmd, struct fault *f)
{
	char *prog = NULL;
	size_t i;
	json_t *v;
	int rc = 0;

	if (json_is_string(cmd)) {
		if (json_string_length(cmd) == 0 ||
		    json_string_length(cmd) > 16384)
			return fault_set(f, MDS_E_INVAL, "command",
					 "command: must be a non-empty string "
					 "of at most 16384 bytes, or an array "
					 "of strings");
		prog = shell_program(json_string_value(cmd));
	} else if (json_is_array(cmd)) {
		if (json_array_size(cmd) == 0 || json_array_size(cmd) > 256)
			return fault_set(f, MDS_E_INVAL, "command",
					 "command: an array must hold 1 to 256 "
					 "strings");
		json_array_foreach(cmd, i, v)
			if (!json_is_string(v) || json_string_length(v) > 16384)
				return fault_set(f, MDS_E_INVAL, "command",
						 "command[%zu]: must be a "
						 "string", i);
		prog = xstrdup(json_string_value(json_array_get(cmd, 0)));
	} else {
		return fault_set(f, cmd ? MDS_E_INVAL : MDS_E_INVAL, "command",
				 "command: %s", cmd ? "must be a string or an "
				 "array of strings" : "is required");
	}
	if (prog != NULL && !runnable(prog))
		rc = fault_set(f, MDS_E_INVAL, "command",
			       "command: '%s' is not an executable file or a "
			       "program on PATH", prog);
	free(prog);
	return rc;
}

static int get_uint_field(json_t *spec, const char *key, uint32_t lo,
			  uint32_t hi, uint32_t *out, struct fault *f)
{
	json_t *v = json_object_get(spec, key);

	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi)
		return fault_set(f, MDS_E_INVAL, key,
				 "%s: must be an integer from %u to %u", key,
				 lo, hi);
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static int check_shape(struct deploy *d, json_t *v, struct fault *f)
{
	const struct shape_ladder *l = &d->env.config->shapes;
	char names[512];
	size_t n = 0;

	if (json_is_string(v) && shape_find(l, json_string_value(v)) != NULL)
		return 0;
	names[0] = '\0';
	for (size_t i = 0; i < l->n && n < sizeof(names); i++)
		n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s",
				      i ? ", " : "", l->v[i].name);
	return fault_set(f, MDS_E_INVAL, "instanceShapeName",
			 "instanceShapeName: %s%s%s; known shapes: %s",
			 json_is_string(v) ? "unknown shape '" : "must be a string",
			 json_is_string(v) ? json_string_value(v) : "",
			 json_is_string(v) ? "'" : "", names);
}

static size_t live_deployments(struct deploy *d)
{
	size_t n = 0;

	for (struct deployment *p = d->deps; p; p = p->next)
		n += p->state != DS_DELETED;
	return n;
}

/* ---- API operations ---- */

int deploy_create(struct deploy *d, json_t *spec, json_t **out,
		  struct fault *f)
{
	static const char *const known[] = {
		"displayName", "command", "instanceShapeName", "instanceCount",
		"healthPath", "environment", "readyTimeoutSeconds",
		"drainTimeoutSeconds", "replayNonIdempotent" };
	const struct config *cfg = d->env.config;
	struct deployment *dep, **tail;
	json_t *v, *env;
	const char *key;
	uint32_t count = 1, ready = cfg->ready_timeout_s,
		 drain = cfg->drain_timeout_s;
	int rc;

	if (!json_is_object(spec))
		return fault_set(f, MDS_E_INVAL, "", "the body must be a JSON "
				 "object");
	json_object_foreach(spec, key, v)
		if (LOOKUP(known, key) < 0)
			return fault_set(f, MDS_E_INVAL, key,
					 "%s: unknown field", key);
	v = json_object_get(spec, "displayName");
	if (v == NULL)
		return fault_set(f, MDS_E_INVAL, "displayName",
				 "displayName: is required");
	if (!json_is_string(v) || !valid_name(json_string_value(v)))
		return fault_set(f, MDS_E_INVAL, "displayName",
				 "displayName: 1 to %d characters of "
				 "A-Z a-z 0-9 . _ -, not starting with 'md-'",
				 NAME_MAX_LEN);
	for (struct deployment *p = d->deps; p; p = p->next)
		if (p->state != DS_DELETED &&
		    strcmp(p->name, json_string_value(v)) == 0)
			return fault_set(f, MDS_E_EXISTS, "displayName",
					 "displayName: a deployment named "
					 "'%s' exists (%s)", p->name, p->id);
	if (json_object_get(spec, "command") == NULL)
		return fault_set(f, MDS_E_INVAL, "command",
				 "command: is required");
	rc = check_command(json_object_get(spec, "command"), f);
	if (rc != 0)
		return rc;
	v = json_object_get(spec, "instanceShapeName");
	if (v != NULL && (rc = check_shape(d, v, f)) != 0)
		return rc;
	if ((rc = get_uint_field(spec, "instanceCount", 1, cfg->max_instances,
				 &count, f)) != 0 ||
	    (rc = get_uint_field(spec, "readyTimeoutSeconds", 1, 3600, &ready,
				 f)) != 0 ||
	    (rc = get_uint_field(spec, "drainTimeoutSeconds", 0, 3600, &drain,
				 f)) != 0)
		return rc;
	v = json_object_get(spec, "healthPath");
	if (v != NULL && (!json_is_string(v) ||
			  json_string_value(v)[0] != '/' ||
			  json_string_length(v) > 1024 ||
			  strpbrk(json_string_value(v), " \r\n\t") != NULL))
		return fault_set(f, MDS_E_INVAL, "healthPath",
				 "healthPath: must be a path starting with "
				 "'/', without spaces");
	v = json_object_get(spec, "replayNonIdempotent");
	if (v != NULL && !json_is_boolean(v))
		return fault_set(f, MDS_E_INVAL, "replayNonIdempotent",
				 "replayNonIdempotent: must be true or false");
	env = json_object_get(spec, "environment");
	if (env != NULL) {
		if (!json_is_object(env) || json_object_size(env) > 256)
			return fault_set(f, MDS_E_INVAL, "environment",
					 "environment: must be an object of at "
					 "most 256 strings");
		json_object_foreach(env, key, v)
			if (!json_is_string(v) || key[0] == '\0' ||
			    strchr(key, '=') != NULL)
				return fault_set(f, MDS_E_INVAL, "environment",
						 "environment.%s: names must "
						 "not hold '=' and values "
						 "must be strings", key);
	}
	if (live_deployments(d) >= cfg->max_deployments)
		return fault_set(f, MDS_E_LIMIT, "",
				 "at most %u deployments (maxDeployments)",
				 cfg->max_deployments);

	dep = xcalloc(1, sizeof(*dep));
	dep->owner = d;
	ids_new(dep->id, ID_LEN, "md-");
	dep->name = xstrdup(json_string_value(json_object_get(spec,
							      "displayName")));
	dep->command = json_deep_copy(json_object_get(spec, "command"));
	dep->health_path = xstrdup(jstr(spec, "healthPath", "/health"));
	dep->replay_all = json_is_true(json_object_get(spec,
						      "replayNonIdempotent"));
	dep->env = env ? json_deep_copy(env) : json_object();
	copy_str(dep->shape, sizeof(dep->shape),
		 jstr(spec, "instanceShapeName", cfg->default_shape));
	dep->count = count;
	dep->ready_timeout_s = ready;
	dep->drain_timeout_s = drain;
	dep->state = DS_CREATING;
	dep->created_ms = ids_now_ms();
	for (tail = &d->deps; *tail; tail = &(*tail)->next)
		;
	*tail = dep;
	wr_start(d, dep, OP_CREATE, count, dep->shape);
	persist(d, dep);
	routes_update(d, dep);
	log_event(LOG_INFO, "deploy",
		  LOG_IDS(.deployment_id = dep->id,
			  .work_request_id = dep->wr->id),
		  "deployment %s (%s) created: %u x %s", dep->name, dep->id,
		  count, dep->shape);
	*out = dep_json(d, dep, false);
	json_object_set_new(*out, "opc-work-request-id",
			    json_string(dep->wr->id));
	return 0;
}

json_t *deploy_list(struct deploy *d, const char *name)
{
	json_t *items = json_array();

	for (struct deployment *p = d->deps; p; p = p->next)
		if (p->state != DS_DELETED &&
		    (name == NULL || strcmp(name, p->name) == 0))
			json_array_append_new(items, dep_json(d, p, false));
	return json_pack("{s:o}", "items", items);
}

json_t *deploy_get(struct deploy *d, const char *id, struct fault *f)
{
	struct deployment *dep = find_dep(d, id);

	if (dep == NULL) {
		fault_set(f, MDS_E_NOTFOUND, "", "no deployment '%s'", id);
		return NULL;
	}
	return dep_json(d, dep, false);
}

static int busy(struct deployment *dep, struct fault *f)
{
	fault_set(f, MDS_E_CONFLICT, "",
		  "deployment %s is %s (work request %s); try again when it "
		  "is ACTIVE", dep->name, dep_state_names[dep->state],
		  dep->wr ? dep->wr->id : "-");
	f->code = "IncorrectState";
	return MDS_E_CONFLICT;
}

int deploy_update(struct deploy *d, const char *id, json_t *spec,
		  json_t **out, struct fault *f)
{
	struct deployment *dep = find_dep(d, id);
	char shape[SHAPE_NAME_MAX + 1];
	uint32_t count;
	const char *key;
	json_t *v;
	int rc;

	*out = NULL;
	if (dep == NULL || dep->state == DS_DELETED)
		return fault_set(f, MDS_E_NOTFOUND, "", "no deployment '%s'",
				 id);
	if (!json_is_object(spec))
		return fault_set(f, MDS_E_INVAL, "", "the body must be a JSON "
				 "object");
	json_object_foreach(spec, key, v)
		if (strcmp(key, "instanceCount") != 0 &&
		    strcmp(key, "instanceShapeName") != 0)
			return fault_set(f, MDS_E_INVAL, key,
					 "%s: unknown or read-only field; an "
					 "update takes instanceCount and "
					 "instanceShapeName", key);
	if (json_object_size(spec) == 0)
		return fault_set(f, MDS_E_INVAL, "",
				 "give instanceCount and/or "
				 "instanceShapeName");
	count = dep->count;
	if ((rc = get_uint_field(spec, "instanceCount", 1,
				 d->env.config->max_instances, &count, f)) != 0)
		return rc;
	v = json_object_get(spec, "instanceShapeName");
	if (v != NULL && (rc = check_shape(d, v, f)) != 0)
		return rc;
	copy_str(shape, sizeof(shape), v ? json_string_value(v) : dep->shape);
	if (dep->state != DS_ACTIVE)
		return busy(dep, f);
	if (count == dep->count && strcmp(shape, dep->shape) == 0)
		return 0;
	dep->state = DS_UPDATING;
	wr_start(d, dep, OP_UPDATE, count, shape);
	dep->count = count;
	copy_str(dep->shape, sizeof(dep->shape), shape);
	persist(d, dep);
	log_event(LOG_INFO, "deploy",
		  LOG_IDS(.deployment_id = dep->id,
			  .work_request_id = dep->wr->id),
		  "deployment %s: update %u x %s -> %u x %s (%s)", dep->name,
		  dep->wr->from_n, dep->wr->from_shape, count, shape,
		  dep->wr->id);
	*out = wr_json(dep->wr);
	return 0;
}

int deploy_delete(struct deploy *d, const char *id, json_t **out,
		  struct fault *f)
{
	struct deployment *dep = find_dep(d, id);

	*out = NULL;
	if (dep == NULL || dep->state == DS_DELETED)
		return fault_set(f, MDS_E_NOTFOUND, "", "no deployment '%s'",
				 id);
	if (dep->state == DS_DELETING || dep->wr != NULL)
		return busy(dep, f);
	dep->state = DS_DELETING;
	wr_start(d, dep, OP_DELETE, 0, NULL);
	persist(d, dep);
	log_event(LOG_INFO, "deploy",
		  LOG_IDS(.deployment_id = dep->id,
			  .work_request_id = dep->wr->id),
		  "deployment %s: delete (%s)", dep->name, dep->wr->id);
	*out = wr_json(dep->wr);
	return 0;
}

json_t *deploy_workrequest(struct deploy *d, const char *id, struct fault *f)
{
	char *s = NULL;
	json_t *o;

	for (struct deployment *p = d->deps; p; p = p->next)
		if (p->wr != NULL && strcmp(p->wr->id, id) == 0)
			return wr_json(p->wr);
	if (store_get(d->env.store, "workrequest", id, &s) != 0) {
		fault_set(f, MDS_E_NOTFOUND, "", "no work request '%s'", id);
		return NULL;
	}
	o = json_loads(s, 0, NULL);
	free(s);
	return o;
}

struct wr_walk {
	const char *dep_id;
	json_t *items;
};

static int collect_wr(void *arg, const char *id, const char *json)
{
	struct wr_walk *w = arg;
	json_t *o = json_loads(json, 0, NULL);

	(void)id;
	if (o != NULL && (w->dep_id == NULL ||
			  strcmp(jstr(o, "deploymentId", ""), w->dep_id) == 0))
		json_array_insert_new(w->items, 0, o);
	else
		json_decref(o);
	return 0;
}

json_t *deploy_workrequests(struct deploy *d, const char *deployment_id)
{
	struct deployment *dep = deployment_id ? find_dep(d, deployment_id)
					       : NULL;
	struct wr_walk w = { dep ? dep->id : deployment_id, json_array() };

	store_each(d->env.store, "workrequest", collect_wr, &w);
	return json_pack("{s:o}", "items", w.items);
}

void deploy_each_instance(struct deploy *d,
			  void (*fn)(void *arg,
				     const struct deploy_instance_info *in),
			  void *arg)
{
	for (struct deployment *dep = d->deps; dep; dep = dep->next) {
		for (size_t i = 0; i < dep->ninst; i++) {
			struct instance *in = dep->inst[i];
			struct deploy_instance_info info = {
				dep->id, in->id, in->cgroup, in->shape,
				in->state == PLAN_READY && !in->held };

			if (in->alive)
				fn(arg, &info);
		}
	}
}

/* ---- loading and recovery ---- */

static struct workreq *wr_from_json(json_t *o)
{
	struct workreq *wr = xcalloc(1, sizeof(*wr));
	json_t *steps = json_object_get(o, "steps"), *s;
	size_t i;

	copy_str(wr->id, sizeof(wr->id), jstr(o, "id", ""));
	copy_str(wr->dep_id, sizeof(wr->dep_id), jstr(o, "deploymentId", ""));
	wr->op = (enum wr_op)LOOKUP(wr_op_names, jstr(o, "operationType", ""));
	wr->status = (enum wr_status)LOOKUP(wr_status_names,
					    jstr(o, "status", ""));
	wr->from_n = (uint32_t)json_integer_value(
		json_object_get(json_object_get(o, "from"), "instanceCount"));
	copy_str(wr->from_shape, sizeof(wr->from_shape),
		 jstr(json_object_get(o, "from"), "instanceShapeName", ""));
	wr->to_n = (uint32_t)json_integer_value(
		json_object_get(json_object_get(o, "to"), "instanceCount"));
	copy_str(wr->to_shape, sizeof(wr->to_shape),
		 jstr(json_object_get(o, "to"), "instanceShapeName", ""));
	copy_str(wr->error, sizeof(wr->error), jstr(o, "errorMessage", ""));
	wr->rollback = wr->error[0] != '\0';
	wr->accepted = wr->started = ids_now_ms();
	json_array_foreach(steps, i, s) {
		struct wr_step *st;

		wr_add_step(wr, (enum plan_step_kind)LOOKUP(step_kind_names,
							    jstr(s, "kind", "")),
			    jstr(s, "instanceId", ""));
		st = &wr->steps[wr->nsteps - 1];
		st->status = (enum step_status)LOOKUP(step_status_names,
						      jstr(s, "status", ""));
		/* A step cut short by the crash runs again: all are
		 * idempotent. */
		if (st->status == ST_IN_PROGRESS)
			st->status = ST_PENDING;
		copy_str(st->msg, sizeof(st->msg), jstr(s, "message", ""));
	}
	if ((int)wr->op < 0 || (int)wr->status < 0) {
		wr_free(wr);
		return NULL;
	}
	return wr;
}

/* Whether pid is still the instance we started (it lives in its cgroup). */
static bool still_ours(struct deploy *d, struct instance *in)
{
	pid_t pids[64];
	size_t n = 0;

	if (in->pid <= 0 || kill(in->pid, 0) != 0)
		return false;
	if (cgroup_version(d->env.cgroups) == CGROUP_NONE || !in->cgroup[0])
		return true;
	if (cgroup_pids(d->env.cgroups, in->cgroup, pids, 64, &n) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (pids[i] == in->pid)
			return true;
	return false;
}

static int load_dep(void *arg, const char *id, const char *text)
{
	struct deploy *d = arg;
	struct deployment *dep, **tail;
	json_t *o = json_loads(text, 0, NULL), *arr, *x;
	const char *wr_id;
	char *wtext = NULL;
	size_t i;

	if (o == NULL) {
		log_error("deploy", "deployment %s: unreadable record", id);
		return 0;
	}
	dep = xcalloc(1, sizeof(*dep));
	dep->owner = d;
	copy_str(dep->id, sizeof(dep->id), id);
	dep->name = xstrdup(jstr(o, "displayName", id));
	dep->command = json_incref(json_object_get(o, "command"));
	dep->health_path = xstrdup(jstr(o, "healthPath", "/health"));
	dep->replay_all = json_is_true(json_object_get(o,
						      "replayNonIdempotent"));
	dep->env = json_incref(json_object_get(o, "environment"));
	if (dep->env == NULL)
		dep->env = json_object();
	copy_str(dep->shape, sizeof(dep->shape),
		 jstr(o, "instanceShapeName", ""));
	dep->count = (uint32_t)jint(o, "instanceCount");
	dep->ready_timeout_s = (uint32_t)jint(o, "readyTimeoutSeconds");
	dep->drain_timeout_s = (uint32_t)jint(o, "drainTimeoutSeconds");
	dep->state = (enum dep_state)LOOKUP(dep_state_names,
					    jstr(o, "lifecycleState", ""));
	copy_str(dep->details, sizeof(dep->details),
		 jstr(o, "lifecycleDetails", ""));
	dep->created_ms = jint(o, "createdMs");
	dep->updated_ms = jint(o, "updatedMs");
	arr = json_object_get(o, "instances");
	json_array_foreach(arr, i, x) {
		struct instance *in = xcalloc(1, sizeof(*in));

		in->dep = dep;
		copy_str(in->id, sizeof(in->id), jstr(x, "id", ""));
		copy_str(in->shape, sizeof(in->shape),
			 jstr(x, "instanceShapeName", ""));
		in->state = (enum plan_inst_state)LOOKUP(inst_state_names,
							 jstr(x, "state", ""));
		in->port = (int)jint(x, "port");
		in->pid = (int)jint(x, "pid");
		in->restarts = (int)jint(x, "restarts");
		in->held = json_is_true(json_object_get(x, "held"));
		in->ever_ready = json_is_true(json_object_get(x, "everReady"));
		in->start_failures = (int)jint(x, "startFailures");
		in->created_ms = jint(x, "createdMs");
		in->proc_started_ms = jint(x, "procStartedMs");
		copy_str(in->wr_id, sizeof(in->wr_id),
			 jstr(x, "workRequestId", ""));
		copy_str(in->cgroup, sizeof(in->cgroup),
			 jstr(x, "cgroupName", ""));
		copy_str(in->last_exit, sizeof(in->last_exit),
			 jstr(x, "lastExit", ""));
		if ((int)in->state < 0)
			in->state = PLAN_STOPPED;
		dep->inst = xreallocarray(dep->inst, dep->ninst + 1,
					  sizeof(*dep->inst));
		dep->inst[dep->ninst++] = in;
	}
	wr_id = jstr(o, "currentWorkRequestId", NULL);
	if (wr_id != NULL &&
	    store_get(d->env.store, "workrequest", wr_id, &wtext) == 0) {
		json_t *w = json_loads(wtext, 0, NULL);

		dep->wr = w ? wr_from_json(w) : NULL;
		json_decref(w);
		free(wtext);
	}
	json_decref(o);
	if ((int)dep->state < 0 || dep->command == NULL) {
		log_error("deploy", "deployment %s: bad record, skipped", id);
		for (i = 0; i < dep->ninst; i++)
			inst_free(dep->inst[i]);
		free(dep->inst);
		json_decref(dep->command);
		json_decref(dep->env);
		free(dep->name);
		free(dep->health_path);
		wr_free(dep->wr);
		free(dep);
		return 0;
	}
	for (tail = &d->deps; *tail; tail = &(*tail)->next)
		;
	*tail = dep;
	for (i = 0; d->env.instance_output != NULL && i < dep->ninst; i++)
		d->env.instance_output(d->env.instance_output_arg, dep->id,
				       dep->inst[i]->id);
	return 0;
}

/* After a restart: adopt the processes that outlived the daemon, restart
 * the ones that did not, and top up deployments that are short. */
static void recover(struct deploy *d, struct deployment *dep)
{
	int64_t now = ids_now_ms();
	uint32_t running = 0;

	for (size_t i = 0; i < dep->ninst; i++) {
		struct instance *in = dep->inst[i];

		if (in->state == PLAN_STOPPED || in->state == PLAN_FAILED) {
			if (in->cgroup[0])
				cgroup_cleanup(d, in);
			continue;
		}
		if (still_ours(d, in)) {
			in->alive = true;
			in->next_health_ms = now;
			log_event(LOG_INFO, "deploy",
				  LOG_IDS(.deployment_id = dep->id,
					  .instance_id = in->id),
				  "instance %s of %s adopted: pid %d", in->id,
				  dep->name, in->pid);
		} else if (in->pid > 0 || in->state == PLAN_READY) {
			in->pid = in->pid > 0 ? in->pid : 1;
			in->alive = true;
			inst_exited(d, in, -1, 0);
			in->respawn_at_ms = in->state == PLAN_STOPPED ? 0 : now;
		} else if (dep->wr == NULL && in->state == PLAN_STARTING) {
			in->respawn_at_ms = now;
		}
		if (live(dep->inst[i]))
			running++;
	}
	if (dep->wr == NULL && (dep->state == DS_ACTIVE) &&
	    running < dep->count) {
		for (uint32_t k = running; k < dep->count; k++) {
			struct instance *in = inst_new(dep, dep->shape, "",
						       false);

			in->respawn_at_ms = now;
		}
	}
	if (dep->wr == NULL && (dep->state == DS_CREATING ||
				dep->state == DS_UPDATING ||
				dep->state == DS_DELETING))
		dep->state = dep->state == DS_DELETING ? DS_DELETED
						       : DS_ACTIVE;
	routes_update(d, dep);
	persist(d, dep);
}

int deploy_open(const struct deploy_env *env, struct deploy **out,
		char *diag, size_t diagsz)
{
	struct deploy *d = xcalloc(1, sizeof(*d));
	char *dir = xasprintf("%s/instances", env->data_dir);
	int rc;

	d->env = *env;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		mds_diag(diag, diagsz, "cannot create %s: %s", dir,
			 strerror(errno));
		free(dir);
		free(d);
		return MDS_E_IO;
	}
	free(dir);
	rc = store_each(env->store, "deployment", load_dep, d);
	if (rc != 0) {
		mds_diag(diag, diagsz, "cannot load deployments");
		free(d);
		return rc;
	}
	/* One transaction for the whole recovery: one sync, not one per
	 * deployment. */
	store_begin(env->store);
	for (struct deployment *dep = d->deps; dep; dep = dep->next)
		if (dep->state != DS_DELETED)
			recover(d, dep);
	store_commit(env->store);
	uv_timer_init(env->loop, &d->tick);
	d->tick.data = d;
	uv_timer_start(&d->tick, on_tick, TICK_MS, TICK_MS);
	*out = d;
	return 0;
}

static void dep_free(struct deployment *dep)
{
	for (size_t i = 0; i < dep->ninst; i++)
		inst_free(dep->inst[i]);
	free(dep->inst);
	json_decref(dep->command);
	json_decref(dep->env);
	free(dep->name);
	free(dep->health_path);
	wr_free(dep->wr);
	free(dep);
}

static void on_tick_closed(uv_handle_t *h)
{
	struct deploy *d = h->data;
	void (*done)(void *) = d->done;
	void *arg = d->done_arg;

	while (d->deps != NULL) {
		struct deployment *next = d->deps->next;

		dep_free(d->deps);
		d->deps = next;
	}
	free(d);
	if (done != NULL)
		done(arg);
}

static void maybe_closed(struct deploy *d)
{
	for (struct deployment *dep = d->deps; dep; dep = dep->next)
		for (size_t i = 0; i < dep->ninst; i++)
			if (dep->inst[i]->alive || dep->inst[i]->proc ||
			    dep->inst[i]->hreq)
				return;
	if (!uv_is_closing((uv_handle_t *)&d->tick))
		uv_close((uv_handle_t *)&d->tick, on_tick_closed);
}

void deploy_close(struct deploy *d, void (*done)(void *arg), void *arg)
{
	d->closing = true;
	d->done = done;
	d->done_arg = arg;
	for (struct deployment *dep = d->deps; dep; dep = dep->next) {
		for (size_t i = 0; i < dep->ninst; i++) {
			struct instance *in = dep->inst[i];

			if (in->hreq != NULL)
				httpc_cancel(d->env.httpc, in->hreq);
			inst_stop(d, in);
		}
	}
	maybe_closed(d);
}

void deploy_each_ended(struct deploy *d,
		       void (*fn)(void *arg, const char *operation,
				  const char *status, uint64_t n),
		       void *arg)
{
	for (size_t op = 0; op < 3; op++)
		for (size_t k = 0; k < 2; k++)
			fn(arg, wr_op_names[op],
			   wr_status_names[k ? WR_FAILED : WR_SUCCEEDED],
			   d->ended[op][k]);
}
