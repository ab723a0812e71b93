/*
 * backend_local.c - the `local` backend: instances as processes in cgroups
 * on this machine; see backend_local.h and backend.h.
 *
 * Each instance the backend looks after has a struct lproc (its
 * backend_data): the child process handle, the health check in flight,
 * the restart and stop timers. One timer (TICK_MS) drives what waits:
 * health checks, restarts with backoff, stop escalation, liveness of
 * adopted processes, and the removal of cgroups that were busy. An lproc
 * outlives its record when it still waits for a process exit, a health
 * answer or a cgroup to empty; it is freed when nothing is left.
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

#include "deploy/backend_local.h"
#include "deploy/cgroup.h"
#include "http/httpc.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/xalloc.h"

#define TICK_MS 100
#define HEALTH_STARTING_MS 200
/* A starting instance is checked often with a short timeout; a ready one
 * gets more slack, since its health path may queue behind a backlog of
 * predictions (a crash is seen at once through the process's exit). */
#define HEALTH_TIMEOUT_MS 2000
#define HEALTH_READY_TIMEOUT_MS 5000
#define HEALTH_FAILS_UNREADY 5
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000
/* Ready this long, an instance that exits starts its backoff over: its
 * crash is not a loop. */
#define BACKOFF_RESET_MS 60000
#define CGROUP_NAME_MAX 64
#define CGROUP_PARENT "mdscale" /* the instances' cgroups are in it */

struct local;

struct lproc {
	struct local *l;
	struct backend_instance *in; /* NULL once released or finished */
	char cgname[CGROUP_NAME_MAX]; /* "mdscale/ID"; "" without cgroups */
	uv_process_t *proc; /* our child; NULL for an adopted process */
	bool stopping;
	int64_t kill_at_ms;
	int64_t respawn_at_ms; /* 0: none scheduled */
	int64_t next_health_ms;
	int health_fails;
	int exits;           /* in a row: what the backoff doubles on */
	int64_t ready_since; /* 0: not ready */
	struct httpc_req *hreq;
	bool cgroup_dirty; /* to remove once empty */
	bool notify;       /* a change to report on the next tick */
	struct lproc *next;
};

struct local {
	struct backend b;
	struct backend_local_env env;
	uv_timer_t tick;
	struct lproc *procs;
	bool closing;
	void (*done)(void *);
	void *done_arg;
};

static struct local *local_of(struct backend *b)
{
	return b->impl;
}

/* ---- the records ---- */

static struct lproc *lp_attach(struct local *l, struct backend_instance *in)
{
	struct lproc *lp = in->backend_data;

	if (lp != NULL)
		return lp;
	lp = xcalloc(1, sizeof(*lp));
	lp->l = l;
	lp->in = in;
	if (cgroup_version(l->env.cgroups) != CGROUP_NONE)
		snprintf(lp->cgname, sizeof(lp->cgname), CGROUP_PARENT "/%s",
			 in->id);
	lp->next = l->procs;
	l->procs = lp;
	in->backend_data = lp;
	return lp;
}

/* Cuts the link to the record: the engine may free it from now on. */
static void lp_detach(struct lproc *lp)
{
	if (lp->in != NULL)
		lp->in->backend_data = NULL;
	lp->in = NULL;
	lp->respawn_at_ms = 0;
	lp->notify = false;
}

/* Frees the detached lprocs that wait for nothing any more. */
static void lp_gc(struct local *l)
{
	struct lproc **pp = &l->procs;

	while (*pp != NULL) {
		struct lproc *lp = *pp;

		if (lp->in == NULL && lp->proc == NULL && lp->hreq == NULL &&
		    !lp->cgroup_dirty) {
			*pp = lp->next;
			free(lp);
		} else {
			pp = &lp->next;
		}
	}
}

/* Reports lp's change to the engine; lp->in may be gone afterwards. */
static void report(struct lproc *lp)
{
	struct backend_instance *in = lp->in;

	lp->notify = false;
	if (in == NULL)
		return;
	if (in->state == BACKEND_STOPPED || in->state == BACKEND_FAILED)
		lp_detach(lp);
	backend_changed(&lp->l->b, in);
}

/* ---- processes ---- */

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

static void cgroup_cleanup(struct lproc *lp)
{
	struct local *l = lp->l;

	if (lp->cgname[0] == '\0' ||
	    cgroup_version(l->env.cgroups) == CGROUP_NONE)
		return;
	cgroup_kill(l->env.cgroups, lp->cgname, SIGKILL);
	lp->cgroup_dirty = cgroup_destroy(l->env.cgroups, lp->cgname) != 0;
}

/* Whether the memory limit of lp's cgroup has killed a process: what
 * tells an out-of-memory kill from a SIGKILL sent by someone. */
static bool oom_killed(const struct lproc *lp)
{
	struct cgroup_usage u;

	return lp->cgname[0] != '\0' &&
	       cgroup_usage(lp->l->env.cgroups, lp->cgname, &u) == 0 &&
	       u.oom_kills > 0;
}

/*
 * The instance's process is gone (status -1: it ended while the daemon
 * was away or unwatched). Decides between STOPPED, FAILED and a restart
 * after a backoff. Reports at once, or on the next tick when deferred (we
 * are inside an op called by the engine).
 */
static void exited(struct lproc *lp, int64_t status, int sig, bool deferred)
{
	struct local *l = lp->l;
	struct backend_instance *in = lp->in;
	uint32_t backoff;
	int n;

	if (lp->hreq != NULL)
		httpc_cancel(l->env.httpc, lp->hreq);
	if (in == NULL) {
		cgroup_cleanup(lp);
		return;
	}
	in->alive = false;
	if (lp->stopping) {
		lp->stopping = false;
		in->state = BACKEND_STOPPED;
		cgroup_cleanup(lp);
		goto out;
	}
	if (lp->ready_since != 0 &&
	    ids_now_ms() - lp->ready_since >= BACKOFF_RESET_MS)
		lp->exits = 0;
	lp->ready_since = 0;
	lp->exits++;
	if (in->pid > 0) {
		if (sig == SIGKILL && oom_killed(lp))
			snprintf(in->last_exit, sizeof(in->last_exit),
				 "killed by signal %d: its memory limit was "
				 "reached", sig);
		else if (sig != 0)
			snprintf(in->last_exit, sizeof(in->last_exit),
				 "killed by signal %d", sig);
		else if (status >= 0)
			snprintf(in->last_exit, sizeof(in->last_exit),
				 "exited with status %d", (int)status);
		else
			snprintf(in->last_exit, sizeof(in->last_exit),
				 "exited while the daemon was away");
		in->restarts++;
	}
	in->pid = 0;
	if (!in->ever_ready)
		in->start_failures++;
	cgroup_cleanup(lp);
	if (!in->restart) {
		in->state = BACKEND_STOPPED;
	} else if (!in->ever_ready &&
		   in->start_failures >=
			   (int)l->env.config->max_start_attempts) {
		in->state = BACKEND_FAILED;
		log_event(LOG_WARN, "deploy",
			  LOG_IDS(.deployment_id = in->deployment_id,
				  .instance_id = in->id),
			  "instance %s failed: %s", in->id, in->last_exit);
	} else {
		n = lp->exits;
		backoff = BACKOFF_MIN_MS << (n > 7 ? 7 : n - 1);
		if (backoff > BACKOFF_MAX_MS)
			backoff = BACKOFF_MAX_MS;
		in->state = BACKEND_STARTING;
		lp->respawn_at_ms = ids_now_ms() + backoff;
		log_event(LOG_WARN, "deploy",
			  LOG_IDS(.deployment_id = in->deployment_id,
				  .instance_id = in->id),
			  "instance %s %s; restart in %u ms", in->id,
			  in->last_exit, backoff);
	}
out:
	if (deferred)
		lp->notify = true;
	else
		report(lp);
}

static void on_proc_exit(uv_process_t *p, int64_t status, int sig)
{
	struct lproc *lp = p->data;

	lp->proc = NULL;
	uv_close((uv_handle_t *)p, (uv_close_cb)free);
	exited(lp, status, sig, false);
}

/* Who the launcher switches to, newly allocated: "UID:GID", the
 * deployment's own uid (instanceUids) when the daemon runs as root; else
 * the runAsUser name; else "-" (the daemon's own user: not root, it cannot
 * switch; or runAsUser ""). */
static char *run_as(const struct local *l, const struct backend_spec *sp)
{
	const struct config *cfg = l->env.config;

	if (geteuid() != 0)
		return xstrdup("-");
	if (config_uids_on(cfg) && sp->uid != 0)
		return xasprintf("%u:%u", sp->uid, sp->uid);
	return xstrdup(cfg->run_as_user[0] != '\0' ? cfg->run_as_user : "-");
}

/* The launcher's argv: mdscale __instance PROCS USER -- command... */
static char **build_args(struct local *l, const struct backend_spec *sp,
			 char *procs, int port)
{
	char **args = xcalloc(sp->argc + 9, sizeof(char *));
	size_t n = 0;

	args[n++] = xstrdup(l->env.self_exe);
	args[n++] = xstrdup("__instance");
	args[n++] = procs ? procs : xstrdup("-");
	args[n++] = run_as(l, sp);
	args[n++] = xstrdup("--");
	if (sp->shell) {
		args[n++] = xstrdup("/bin/sh");
		args[n++] = xstrdup("-c");
		args[n++] = xstrdup(sp->argv[0]);
	} else {
		for (size_t i = 0; i < sp->argc; i++)
			args[n++] = subst_port(sp->argv[i], port);
	}
	args[n] = NULL;
	return args;
}

/*
 * The instance's environment, clean: PATH, LANG and HOME of the daemon's
 * (the launcher sets HOME to the instance user's when it switches), then
 * what the deployment sets, then PORT and mdscale's own MDSCALE_*. Nothing
 * else of the daemon's environment reaches an instance.
 */
static char **build_env(const struct backend_instance *in,
			const struct shape *sh, int port)
{
	static const char *const kept[] = { "PATH", "LANG", "HOME" };
	const struct backend_spec *sp = in->spec;
	size_t n = 0;
	char **envp;

	envp = xcalloc(sp->nenv + 12, sizeof(char *));
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		const char *v = getenv(kept[i]);

		if (v == NULL && strcmp(kept[i], "PATH") == 0)
			v = "/usr/local/bin:/usr/bin:/bin";
		if (v != NULL)
			envp[n++] = xasprintf("%s=%s", kept[i], v);
	}
	for (size_t i = 0; i < sp->nenv; i++)
		envp[n++] = xstrdup(sp->env[i]);
	envp[n++] = xasprintf("PORT=%d", port);
	envp[n++] = xasprintf("MDSCALE_DEPLOYMENT_ID=%s", in->deployment_id);
	envp[n++] = xasprintf("MDSCALE_INSTANCE_ID=%s", in->id);
	envp[n++] = xasprintf("MDSCALE_SHAPE=%s", in->shape);
	envp[n++] = xasprintf("MDSCALE_CPUS=%.3f", sh->mcpu / 1000.0);
	envp[n++] = xasprintf("MDSCALE_MEMORY_BYTES=%llu",
			      (unsigned long long)sh->mem_bytes);
	envp[n] = NULL;
	return envp;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

/* Opens one of the instance's output files; -1 if it cannot. */
static int open_output(struct local *l, const char *id, const char *stream)
{
	char *path = xasprintf("%s/instances/%s.%s.log", l->env.data_dir, id,
			       stream);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	free(path);
	return fd;
}

/* Makes the cgroup; returns the launcher's procs files ("" none) or NULL
 * on failure (last_exit set). */
static char *make_cgroup(struct lproc *lp, const struct shape *sh)
{
	struct local *l = lp->l;
	char diag[256], *path;

	if (lp->cgname[0] == '\0')
		return xstrdup("");
	if (cgroup_create(l->env.cgroups, lp->cgname, sh->mcpu, sh->mem_bytes,
			  diag, sizeof(diag)) != 0) {
		snprintf(lp->in->last_exit, sizeof(lp->in->last_exit),
			 "cannot create cgroup: %.120s", diag);
		return NULL;
	}
	path = cgroup_path(l->env.cgroups, lp->cgname);
	snprintf(lp->in->handle, sizeof(lp->in->handle), "%s",
		 path ? path : "");
	free(path);
	return cgroup_procs_files(l->env.cgroups, lp->cgname);
}

/* Starts the instance's process; on failure it counts as an exit. */
static int spawn(struct lproc *lp, bool deferred)
{
	struct local *l = lp->l;
	struct backend_instance *in = lp->in;
	const struct shape *sh = shape_find(&l->env.config->shapes, in->shape);
	uv_process_options_t opt;
	uv_stdio_container_t stdio[3];
	char **args, **envp, *procs;
	int fd, errfd, rc;

	lp->respawn_at_ms = 0;
	lp->health_fails = 0;
	in->port = pick_port();
	if (sh == NULL || in->port < 0) {
		snprintf(in->last_exit, sizeof(in->last_exit),
			 sh ? "no free port" : "unknown shape");
		exited(lp, 127, 0, deferred);
		return sh ? MDS_E_UNAVAIL : MDS_E_INVAL;
	}
	procs = make_cgroup(lp, sh);
	if (procs == NULL) {
		exited(lp, 127, 0, deferred);
		return MDS_E_SYS;
	}
	args = build_args(l, in->spec, procs[0] ? procs : NULL, in->port);
	if (procs[0] == '\0')
		free(procs);
	envp = build_env(in, sh, in->port);

	/* Files, not pipes: an instance outlives a SIGKILLed daemon. Logging
	 * tails them (O_APPEND lets it truncate them once read). */
	fd = open_output(l, in->id, "out");
	errfd = open_output(l, in->id, "err");
	if (l->env.instance_output != NULL)
		l->env.instance_output(l->env.instance_output_arg,
				       in->deployment_id, in->id);
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
	lp->proc = xcalloc(1, sizeof(*lp->proc));
	lp->proc->data = lp;
	rc = uv_spawn(l->env.loop, lp->proc, &opt);
	if (fd >= 0)
		close(fd);
	if (errfd >= 0)
		close(errfd);
	free_strv(args);
	free_strv(envp);
	if (rc != 0) {
		uv_close((uv_handle_t *)lp->proc, (uv_close_cb)free);
		lp->proc = NULL;
		snprintf(in->last_exit, sizeof(in->last_exit),
			 "cannot start: %s", uv_strerror(rc));
		exited(lp, 127, 0, deferred);
		return MDS_E_SYS;
	}
	in->pid = lp->proc->pid;
	in->alive = true;
	lp->stopping = false;
	in->started_ms = ids_now_ms();
	lp->next_health_ms = in->started_ms + 50;
	in->state = BACKEND_STARTING;
	if (deferred)
		lp->notify = true;
	else
		report(lp);
	return 0;
}

/* ---- health ---- */

static void on_health(void *arg, const struct httpc_result *res)
{
	struct lproc *lp = arg;
	struct local *l = lp->l;
	struct backend_instance *in = lp->in;
	bool ok = res->error == 0 && res->status >= 200 && res->status < 300;

	lp->hreq = NULL;
	if (in == NULL || !in->alive || lp->stopping)
		return; /* cancelled, or no longer of interest */
	lp->next_health_ms =
		ids_now_ms() + (in->state == BACKEND_READY
					? l->env.config->health_interval_ms
					: HEALTH_STARTING_MS);
	if (ok) {
		lp->health_fails = 0;
		if (in->state == BACKEND_STARTING) {
			in->state = BACKEND_READY;
			in->ever_ready = true;
			in->start_failures = 0;
			lp->ready_since = ids_now_ms();
			lp->next_health_ms = ids_now_ms() +
					     l->env.config->health_interval_ms;
			report(lp);
		}
	} else if (in->state == BACKEND_READY &&
		   ++lp->health_fails >= HEALTH_FAILS_UNREADY) {
		in->state = BACKEND_STARTING;
		lp->ready_since = 0;
		lp->next_health_ms = ids_now_ms() + HEALTH_STARTING_MS;
		log_event(LOG_WARN, "deploy",
			  LOG_IDS(.deployment_id = in->deployment_id,
				  .instance_id = in->id),
			  "instance %s is not ready: %s", in->id,
			  res->error ? res->detail : "health check failed");
		report(lp);
	}
}

static void health_check(struct lproc *lp)
{
	struct local *l = lp->l;
	struct backend_instance *in = lp->in;
	struct httpc_opts opt;
	char *url;

	memset(&opt, 0, sizeof(opt));
	opt.timeout_ms = in->state == BACKEND_READY ? HEALTH_READY_TIMEOUT_MS
						    : HEALTH_TIMEOUT_MS;
	opt.max_body = 64 * 1024;
	url = xasprintf("http://127.0.0.1:%d%s", in->port,
			in->spec->health_path);
	if (httpc_request(l->env.httpc, url, &opt, on_health, lp,
			  &lp->hreq) != 0)
		lp->hreq = NULL;
	free(url);
}

/* ---- the tick ---- */

static void lp_tick(struct lproc *lp, int64_t now)
{
	struct local *l = lp->l;
	struct backend_instance *in = lp->in;

	if (lp->cgroup_dirty && (in == NULL || !in->alive))
		lp->cgroup_dirty =
			cgroup_destroy(l->env.cgroups, lp->cgname) != 0;
	if (in == NULL)
		return;
	if (lp->notify) {
		report(lp);
		return;
	}
	if (in->alive && lp->proc == NULL && in->pid > 0 &&
	    kill(in->pid, 0) != 0 && errno == ESRCH) {
		exited(lp, -1, 0, false); /* an adopted process ended */
		return;
	}
	if (in->alive && lp->stopping && now >= lp->kill_at_ms) {
		if (in->pid > 0)
			kill(-in->pid, SIGKILL);
		if (lp->cgname[0] != '\0')
			cgroup_kill(l->env.cgroups, lp->cgname, SIGKILL);
		lp->kill_at_ms = now + 1000;
	}
	if (!in->alive && lp->respawn_at_ms != 0 && now >= lp->respawn_at_ms) {
		if (in->restart) {
			spawn(lp, false);
		} else { /* drained while waiting to restart */
			lp->respawn_at_ms = 0;
			in->state = BACKEND_STOPPED;
			report(lp);
		}
		return;
	}
	if (in->alive && !lp->stopping && lp->hreq == NULL &&
	    now >= lp->next_health_ms)
		health_check(lp);
}

static void maybe_closed(struct local *l);

static void on_tick(uv_timer_t *t)
{
	struct local *l = t->data;
	int64_t now = ids_now_ms();

	/* A report may release records (lp->in becomes NULL) or start new
	 * ones (prepended): neither frees an lproc before lp_gc(). */
	for (struct lproc *lp = l->procs; lp != NULL; lp = lp->next)
		lp_tick(lp, now);
	lp_gc(l);
	if (l->closing)
		maybe_closed(l);
}

/* ---- the ops ---- */

static int local_start(struct backend *b, struct backend_instance *in)
{
	struct lproc *lp = lp_attach(local_of(b), in);

	lp->stopping = false;
	in->state = BACKEND_STARTING;
	return spawn(lp, true);
}

static void local_stop(struct backend *b, struct backend_instance *in,
		       uint32_t grace_ms)
{
	struct lproc *lp = lp_attach(local_of(b), in);
	struct local *l = lp->l;

	lp->respawn_at_ms = 0;
	if (!in->alive) {
		if (in->state != BACKEND_FAILED)
			in->state = BACKEND_STOPPED;
		cgroup_cleanup(lp);
		lp->notify = true;
		return;
	}
	if (lp->stopping)
		return;
	lp->stopping = true;
	in->state = BACKEND_STOPPING;
	lp->kill_at_ms = ids_now_ms() + grace_ms;
	if (in->pid > 0)
		kill(-in->pid, SIGTERM);
	if (lp->cgname[0] != '\0')
		cgroup_kill(l->env.cgroups, lp->cgname, SIGTERM);
	else if (in->pid > 0)
		kill(in->pid, SIGTERM);
}

static int local_signal(struct backend *b, struct backend_instance *in,
			int sig)
{
	struct lproc *lp = in->backend_data;

	(void)b;
	if (lp == NULL || !in->alive)
		return MDS_E_NOTFOUND;
	if (lp->cgname[0] != '\0' &&
	    cgroup_kill(lp->l->env.cgroups, lp->cgname, sig) == 0)
		return 0;
	if (in->pid > 0 && kill(in->pid, sig) == 0)
		return 0;
	return MDS_E_NOTFOUND;
}

static int local_status(struct backend *b, const struct backend_instance *in,
			bool *alive, bool *ready)
{
	(void)b;
	*alive = in->alive;
	*ready = in->alive && in->state == BACKEND_READY;
	return 0;
}

/* Whether pid is still the instance we started (it lives in its cgroup). */
static bool still_ours(struct lproc *lp)
{
	struct local *l = lp->l;
	pid_t pids[64];
	size_t n = 0;

	if (lp->in->pid <= 0 || kill(lp->in->pid, 0) != 0)
		return false;
	if (lp->cgname[0] == '\0')
		return true;
	if (cgroup_pids(l->env.cgroups, lp->cgname, pids, 64, &n) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (pids[i] == lp->in->pid)
			return true;
	return false;
}

static int local_adopt(struct backend *b, struct backend_instance *in)
{
	struct local *l = local_of(b);
	struct lproc *lp = lp_attach(l, in);
	/* A process stopped by the daemon's own clean shutdown is expected
	 * to be gone: starting it again is no restart after a crash. */
	bool was_running = (in->pid > 0 || in->state == BACKEND_READY) &&
			   !in->shutdown_stop;

	if (l->env.instance_output != NULL)
		l->env.instance_output(l->env.instance_output_arg,
				       in->deployment_id, in->id);
	lp->stopping = in->state == BACKEND_STOPPING;
	in->shutdown_stop = false;
	if (in->state != BACKEND_STOPPED && in->state != BACKEND_FAILED &&
	    in->state != BACKEND_NEW && still_ours(lp)) {
		in->alive = true;
		if (in->state != BACKEND_STOPPING &&
		    in->state != BACKEND_READY)
			in->state = BACKEND_STARTING;
		if (in->state == BACKEND_READY)
			lp->ready_since = ids_now_ms();
		lp->next_health_ms = ids_now_ms();
		if (lp->stopping)
			lp->kill_at_ms = ids_now_ms();
		return 0;
	}
	/* Gone: count the exit as if we had seen it, then leave the
	 * decision to start it again to the engine. */
	in->alive = false;
	if (in->state == BACKEND_STOPPED || in->state == BACKEND_FAILED ||
	    in->state == BACKEND_NEW) {
		cgroup_cleanup(lp);
	} else if (was_running) {
		snprintf(in->last_exit, sizeof(in->last_exit),
			 "exited while the daemon was away");
		in->restarts++;
		in->pid = 0;
		if (!in->ever_ready)
			in->start_failures++;
		cgroup_cleanup(lp);
		in->state = in->restart && !lp->stopping && !in->ever_ready &&
					    in->start_failures >=
						    (int)l->env.config
							    ->max_start_attempts
				    ? BACKEND_FAILED
				    : BACKEND_STOPPED;
	} else {
		cgroup_cleanup(lp);
		in->state = BACKEND_STOPPED;
	}
	lp->stopping = false;
	lp_detach(lp);
	return MDS_E_NOTFOUND;
}

static void local_release(struct backend *b, struct backend_instance *in)
{
	struct lproc *lp = in->backend_data;

	(void)b;
	if (lp == NULL)
		return;
	if (lp->hreq != NULL)
		httpc_cancel(lp->l->env.httpc, lp->hreq);
	if (lp->proc != NULL) {
		/* Keep the process running, unwatched: the handle goes,
		 * the child stays (it is detached). */
		uv_close((uv_handle_t *)lp->proc, (uv_close_cb)free);
		lp->proc = NULL;
	}
	lp_detach(lp);
}

static int local_usage(struct backend *b, const struct backend_instance *in,
		       struct backend_usage *out)
{
	struct local *l = local_of(b);
	struct lproc *lp = in->backend_data;
	struct cgroup_usage u;
	int rc;

	if (lp == NULL || lp->cgname[0] == '\0')
		return MDS_E_NOTFOUND;
	rc = cgroup_usage(l->env.cgroups, lp->cgname, &u);
	if (rc != 0)
		return rc;
	*out = (struct backend_usage){
		.cpu_ns = u.cpu_usage_ns, .cpu_mcpu = u.cpu_quota_mcpu,
		.mem_bytes = u.mem_bytes, .mem_limit = u.mem_limit,
		.cpu_percent = -1, .mem_percent = -1,
	};
	return 0;
}

static int local_list(struct backend *b, const char *ref,
		      void (*fn)(void *arg, const struct backend_listed *x),
		      void *arg)
{
	struct local *l = local_of(b);

	(void)ref;
	for (struct lproc *lp = l->procs; lp != NULL; lp = lp->next) {
		struct backend_listed x;

		if (lp->in == NULL || !lp->in->alive)
			continue;
		x.id = lp->in->id;
		x.handle = lp->in->handle;
		x.ready = lp->in->state == BACKEND_READY;
		fn(arg, &x);
	}
	return 0;
}

static const struct shape_ladder *local_shapes(struct backend *b)
{
	return &local_of(b)->env.config->shapes;
}

static void on_tick_closed(uv_handle_t *h)
{
	struct local *l = h->data;
	void (*done)(void *) = l->done;
	void *arg = l->done_arg;

	while (l->procs != NULL) {
		struct lproc *next = l->procs->next;

		free(l->procs);
		l->procs = next;
	}
	free(l);
	if (done != NULL)
		done(arg);
}

/* Closes the timer once no health answer is outstanding (each cancelled
 * request still calls back, with its lproc as argument). */
static void maybe_closed(struct local *l)
{
	for (struct lproc *lp = l->procs; lp != NULL; lp = lp->next)
		if (lp->hreq != NULL)
			return;
	if (!uv_is_closing((uv_handle_t *)&l->tick))
		uv_close((uv_handle_t *)&l->tick, on_tick_closed);
}

static void local_close(struct backend *b, void (*done)(void *arg),
			void *arg)
{
	struct local *l = local_of(b);

	l->closing = true;
	l->done = done;
	l->done_arg = arg;
	/* Whatever is still watched is let go: the processes stay. */
	for (struct lproc *lp = l->procs; lp != NULL; lp = lp->next) {
		if (lp->in != NULL)
			local_release(b, lp->in);
		if (lp->hreq != NULL)
			httpc_cancel(l->env.httpc, lp->hreq);
		if (lp->proc != NULL) {
			uv_close((uv_handle_t *)lp->proc, (uv_close_cb)free);
			lp->proc = NULL;
		}
	}
	maybe_closed(l);
}

static const struct backend_ops local_ops = {
	.name = "local",
	.caps = BACKEND_CAP_INSTANCES | BACKEND_CAP_SIGNAL |
		BACKEND_CAP_USAGE | BACKEND_CAP_ADOPT | BACKEND_CAP_ZERO,
	.start = local_start,
	.stop = local_stop,
	.signal = local_signal,
	.status = local_status,
	.adopt = local_adopt,
	.release = local_release,
	.usage = local_usage,
	.list = local_list,
	.shapes = local_shapes,
	.close = local_close,
};

int backend_local_new(const struct backend_local_env *env,
		      struct backend **out, char *diag, size_t diagsz)
{
	struct local *l;
	char *dir = xasprintf("%s/instances", env->data_dir);
	char cgdiag[256];

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		mds_diag(diag, diagsz, "cannot create %s: %s", dir,
			 strerror(errno));
		free(dir);
		return MDS_E_IO;
	}
	free(dir);
	/* The instances' parent cgroup, made while the daemon is still root
	 * with all its powers (backend_local.h). */
	if (cgroup_version(env->cgroups) != CGROUP_NONE &&
	    cgroup_prepare(env->cgroups, CGROUP_PARENT, cgdiag,
			   sizeof(cgdiag)) != 0)
		log_warn("local", "cannot make the instances' cgroup %s: %s; "
			 "instances will not start", CGROUP_PARENT, cgdiag);
	l = xcalloc(1, sizeof(*l));
	l->b.ops = &local_ops;
	l->b.impl = l;
	l->env = *env;
	uv_timer_init(env->loop, &l->tick);
	l->tick.data = l;
	uv_timer_start(&l->tick, on_tick, TICK_MS, TICK_MS);
	*out = &l->b;
	return 0;
}
