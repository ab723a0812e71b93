/*
 * gateway_owner.c - the gateway on its owner's thread: starting the
 * workers (gateway_int.h), handing every call to each of them, summing
 * their counters, and delivering their notes to the owner's callbacks.
 *
 * Every worker enforces the gateway's limits whole, on counts they all
 * share (gateway_int.h): the client limits (max_clients,
 * max_clients_per_addr) and the hold limits (requests and bytes, per
 * deployment and in total) hold for the gateway, whatever the number of
 * workers and however the kernel spreads the connections among them.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "gateway/gateway.h"
#include "gateway/gateway_int.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

/* Calls. */

/* Runs fn(gw, arg) on the worker's thread and waits for it to return;
 * before gateway_serve(), runs it here. */
static void call_on_thread(struct worker *gw,
			   void (*fn)(struct worker *gw, void *arg),
			   void *arg)
{
	struct call k = { .fn = fn, .arg = arg };
	struct call **tail;

	if (!gw->serving) {
		fn(gw, arg);
		return;
	}

	uv_mutex_lock(&gw->mu);
	for (tail = &gw->calls; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = &k;
	uv_mutex_unlock(&gw->mu);
	uv_async_send(&gw->wake);
	uv_mutex_lock(&gw->mu);
	while (!k.done)
		uv_cond_wait(&gw->called, &gw->mu);
	uv_mutex_unlock(&gw->mu);
}

/* Runs fn(w, arg) on every worker's thread, one after the other. */
static void call_on_all(struct gateway *g,
			void (*fn)(struct worker *gw, void *arg), void *arg)
{
	for (unsigned i = 0; i < g->n; i++)
		call_on_thread(g->w[i], fn, arg);
}

/* Instances' shared state. */

/* Returns the shared state of instance id on addr:port, made if new. */
static struct ishared *shared_get(struct gateway *g, const char *id,
				  uint32_t addr, uint16_t port)
{
	struct ishared *sh;

	for (struct link *l = g->shared.next; l != &g->shared; l = l->next) {
		sh = container_of(l, struct ishared, link);
		if (sh->port == port && sh->addr == addr &&
		    strcmp(sh->id, id) == 0)
			return sh;
	}
	sh = xcalloc(1, sizeof(*sh));
	sh->id = xstrdup(id);
	sh->addr = addr;
	sh->port = port;
	list_add(&g->shared, &sh->link);
	return sh;
}

/* Frees the shared state no worker's instance holds any more (all of it,
 * with all true). Only the owner hands out references, so one that fell
 * to zero stays there. */
static void shared_prune(struct gateway *g, bool all)
{
	struct link *l, *next;

	for (l = g->shared.next; l != &g->shared; l = next) {
		struct ishared *sh = container_of(l, struct ishared, link);

		next = l->next;
		if (!all && __atomic_load_n(&sh->refs, __ATOMIC_ACQUIRE) > 0)
			continue;
		list_del(&sh->link);
		free(sh->id);
		free(sh);
	}
}

/* Notes, on the owner's loop. */

static void notes_free(struct notes *ns)
{
	free(ns->v);
	free(ns->text);
	free(ns->ob);
}

static void gateway_free(struct gateway *g)
{
	void (*done)(void *arg) = g->done;
	void *arg = g->done_arg;

	shared_prune(g, true);
	tally_free(&g->addrs);
	tally_free(&g->held);
	free(g->w);
	free(g);
	if (done != NULL)
		done(arg);
}

static void notify_closed(uv_handle_t *h)
{
	struct worker *gw = h->data;
	struct gateway *g = gw->group;

	notes_free(&gw->out);
	notes_free(&gw->spare);
	uv_cond_destroy(&gw->called);
	uv_mutex_destroy(&gw->mu);
	free(gw);
	if (++g->nclosed == g->n)
		gateway_free(g);
}

static const char *note_text(const struct notes *ns, uint32_t off)
{
	return off == NOTE_NONE ? NULL : ns->text + off;
}

static void deliver_access(const struct gateway *g, const struct notes *ns,
			   const struct note *n)
{
	const char *method = note_text(ns, n->str[2]);
	const char *path = note_text(ns, n->str[3]);
	struct gateway_access a = {
		.method = method != NULL ? method : "-",
		.path = path != NULL ? path : "",
		.status = n->status,
		.latency_us = n->latency_us,
		.deployment_id = note_text(ns, n->str[0]),
		.instance_id = note_text(ns, n->str[1]),
	};

	g->access_log(g->access_log_arg, &a);
}

/* Hands a worker's notes to the observer, and to the access log and the
 * log in order. */
static void notes_deliver(const struct gateway *g, const struct notes *ns)
{
	for (size_t i = 0; g->observe != NULL && i < ns->nob; i++)
		g->observe(g->observe_arg, note_text(ns, ns->ob[i].dep),
			   &ns->ob[i].o);
	for (size_t i = 0; i < ns->n; i++) {
		const struct note *n = &ns->v[i];
		const char *dep = note_text(ns, n->str[0]);

		if (n->kind == NOTE_LOG) {
			log_write((enum log_level)n->status, "gateway", "%s",
				  dep);
			continue;
		}
		if (n->kind == NOTE_COLD) {
			if (g->cold != NULL && dep != NULL)
				g->cold(g->cold_arg, dep);
			continue;
		}
		if (g->access_log != NULL)
			deliver_access(g, ns, n);
	}
}

/* Delivers the notes a worker has posted so far; returns whether its loop
 * has ended. */
static bool notes_take(struct worker *gw)
{
	struct notes ns;
	uint64_t unnoted;
	bool ended;

	uv_mutex_lock(&gw->mu);
	ns = gw->out;
	gw->out = gw->spare;
	unnoted = gw->unnoted;
	gw->unnoted = 0;
	ended = gw->ended;
	uv_mutex_unlock(&gw->mu);
	notes_deliver(gw->group, &ns);
	ns.n = ns.len = ns.nob = 0;
	gw->spare = ns;
	if (unnoted > 0)
		log_warn("gateway", "%" PRIu64 " finished requests went "
			 "unnoted: the daemon's loop fell behind", unnoted);
	return ended;
}

static void drain_check(struct gateway *g);

static void notify_cb(uv_async_t *a)
{
	struct worker *gw = a->data;
	bool ended = notes_take(gw);

	drain_check(gw->group);

	if (ended && !uv_is_closing((uv_handle_t *)&gw->notify)) {
		if (gw->serving)
			uv_thread_join(&gw->thread);
		uv_close((uv_handle_t *)&gw->notify, notify_closed);
	}
}

/* Starting. */

/* Makes a worker with its loop and listener handle; NULL if no loop. */
static struct worker *worker_new(struct gateway *g)
{
	struct worker *gw = xcalloc(1, sizeof(*gw));

	gw->group = g;
	gw->loop = &gw->own;
	list_init(&gw->deps);
	list_init(&gw->insts);
	list_init(&gw->clients);
	list_init(&gw->ups);
	list_init(&gw->observed);
	gw->lim = g->lim;
	gw->hold = g->hold;
	if (uv_random(NULL, NULL, &gw->rid_seed, sizeof(gw->rid_seed), 0,
		      NULL) != 0)
		gw->rid_seed = uv_hrtime() ^ (uint64_t)(uintptr_t)gw;
	{
		char hex[17];

		snprintf(hex, sizeof(hex), "%016" PRIx64, gw->rid_seed);
		memcpy(gw->rid_seed_hex, hex, sizeof(gw->rid_seed_hex));
	}
	if (uv_loop_init(&gw->own) != 0) {
		free(gw);
		return NULL;
	}
	uv_mutex_init(&gw->mu);
	uv_cond_init(&gw->called);
	uv_tcp_init(gw->loop, &gw->listener);
	return gw;
}

/* Releases a worker whose thread never ran, with only its listener. */
static void worker_discard(struct worker *gw)
{
	uv_close((uv_handle_t *)&gw->listener, NULL);
	uv_run(gw->loop, UV_RUN_DEFAULT);
	(void)uv_loop_close(gw->loop);
	uv_cond_destroy(&gw->called);
	uv_mutex_destroy(&gw->mu);
	free(gw);
}

/* Makes the workers and binds their listeners: the first one's port, if
 * port was 0, is everyone's. */
static int workers_listen(struct gateway *g, struct sockaddr_storage *ss,
			  const char *host, int port, char *diag,
			  size_t diagsz)
{
	struct sockaddr_storage bound;
	int len = sizeof(bound);
	int rc = 0;

	for (unsigned i = 0; i < g->n && rc == 0; i++) {
		g->w[i] = worker_new(g);
		if (g->w[i] == NULL) {
			mds_diag(diag, diagsz, "gateway: cannot make a loop");
			return MDS_E_SYS;
		}
		rc = worker_listen(g->w[i], (const struct sockaddr *)ss,
				   g->n > 1);
		if (rc == 0 && i == 0)
			rc = uv_tcp_getsockname(&g->w[0]->listener,
						(struct sockaddr *)&bound,
						&len);
		if (rc == 0 && i == 0) {
			/* The same port for the others. */
			if (bound.ss_family == AF_INET6)
				((struct sockaddr_in6 *)ss)->sin6_port =
					((struct sockaddr_in6 *)&bound)
						->sin6_port;
			else
				((struct sockaddr_in *)ss)->sin_port =
					((struct sockaddr_in *)&bound)
						->sin_port;
			g->port = ntohs(bound.ss_family == AF_INET6
				? ((struct sockaddr_in6 *)&bound)->sin6_port
				: ((struct sockaddr_in *)&bound)->sin_port);
		}
	}
	if (rc != 0) {
		mds_diag(diag, diagsz, "gateway: listen on %s:%d: %s", host,
			 port, uv_strerror(rc));
		return MDS_E_SYS;
	}
	return 0;
}

int gateway_start_threads(uv_loop_t *loop, const char *host, int port,
			  unsigned threads, struct gateway **out, char *diag,
			  size_t diagsz)
{
	struct sockaddr_storage ss;
	struct gateway *g;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (loop == NULL || host == NULL || out == NULL || port < 0 ||
	    port > 65535 || threads < 1 || threads > GATEWAY_THREADS_MAX) {
		mds_diag(diag, diagsz, "gateway: bad arguments");
		return MDS_E_INVAL;
	}
	memset(&ss, 0, sizeof(ss));
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
		mds_diag(diag, diagsz, "gateway: bad listen address '%s'",
			 host);
		return MDS_E_INVAL;
	}
	g = xcalloc(1, sizeof(*g));
	g->owner = loop;
	g->n = threads;
	g->w = xcalloc(threads, sizeof(*g->w));
	list_init(&g->shared);
	g->lim = (struct gateway_limits){
		.response_timeout_ms = 60000,
		.idle_timeout_ms = 60000,
		.max_clients = 10000,
		.max_idle_per_instance = 64,
		.head_timeout_ms = 10000,
		.body_min_rate = 1024,
		.max_clients_per_addr = 512,
	};
	g->hold = (struct gateway_hold){
		.max_requests = 1000,
		.max_bytes = 64u << 20,
		.max_requests_total = 10000,
		.max_bytes_total = 256u << 20,
		.timeout_ms = 60000,
	};
	tally_init(&g->addrs);
	tally_init(&g->held);
	rc = workers_listen(g, &ss, host, port, diag, diagsz);
	if (rc != 0) {
		/* No thread runs the workers' loops: release them here. */
		for (unsigned i = 0; i < threads && g->w[i] != NULL; i++)
			worker_discard(g->w[i]);
		tally_free(&g->addrs);
		tally_free(&g->held);
		free(g->w);
		free(g);
		return rc;
	}
	for (unsigned i = 0; i < threads; i++) {
		struct worker *gw = g->w[i];

		worker_handles(gw);
		uv_async_init(loop, &gw->notify, notify_cb);
		gw->notify.data = gw;
	}
	*out = g;
	return 0;
}

int gateway_start(uv_loop_t *loop, const char *host, int port,
		  struct gateway **out, char *diag, size_t diagsz)
{
	return gateway_start_threads(loop, host, port, 1, out, diag, diagsz);
}

void gateway_serve(struct gateway *g)
{
	int rc;

	if (g->serving)
		return;
	for (unsigned i = 0; i < g->n; i++) {
		rc = uv_thread_create(&g->w[i]->thread, worker_thread,
				      g->w[i]);
		if (rc != 0) {
			/* As for memory: nothing sensible goes on without
			 * it. */
			fprintf(stderr, "mdscale: gateway: cannot start a "
				"thread: %s\n", uv_strerror(rc));
			abort();
		}
		g->w[i]->serving = true;
	}
	g->serving = true;
}

unsigned gateway_threads(const struct gateway *g)
{
	return g->n;
}

void gateway_set_tls(struct gateway *g, struct tls_ctx *tls)
{
	for (unsigned i = 0; i < g->n; i++)
		g->w[i]->tls = tls;
}

int gateway_port(const struct gateway *g)
{
	return g->port;
}

/* Settings. */

static void set_limits_fn(struct worker *gw, void *arg)
{
	gw->lim = *(const struct gateway_limits *)arg;
}

void gateway_set_limits(struct gateway *g, const struct gateway_limits *lim)
{
	if (lim->response_timeout_ms > 0)
		g->lim.response_timeout_ms = lim->response_timeout_ms;
	if (lim->idle_timeout_ms > 0)
		g->lim.idle_timeout_ms = lim->idle_timeout_ms;
	if (lim->max_clients > 0)
		g->lim.max_clients = lim->max_clients;
	if (lim->head_timeout_ms > 0)
		g->lim.head_timeout_ms = lim->head_timeout_ms;
	if (lim->body_min_rate > 0)
		g->lim.body_min_rate = lim->body_min_rate;
	if (lim->max_clients_per_addr > 0)
		g->lim.max_clients_per_addr = lim->max_clients_per_addr;
	if (lim->max_idle_per_instance > 0)
		g->lim.max_idle_per_instance = lim->max_idle_per_instance;
	call_on_all(g, set_limits_fn, &g->lim);
}

static void set_hold_fn(struct worker *gw, void *arg)
{
	gw->hold = *(const struct gateway_hold *)arg;
}

void gateway_set_hold(struct gateway *g, const struct gateway_hold *h)
{
	g->hold = *h;
	call_on_all(g, set_hold_fn, &g->hold);
}

int gateway_set_routes(struct gateway *g, const char *deployment_id,
		       const char *display_name,
		       const struct gateway_upstream *ups, size_t n)
{
	struct routes rt = { deployment_id, display_name, ups, NULL, n };
	uint32_t *addr;

	if (g == NULL || deployment_id == NULL || *deployment_id == '\0' ||
	    (n > 0 && ups == NULL))
		return MDS_E_INVAL;
	if (n > ROUTES_MAX)
		return MDS_E_LIMIT;
	addr = xcalloc(n > 0 ? n : 1, sizeof(*addr));
	for (size_t i = 0; i < n; i++) {
		struct in_addr a = { htonl(INADDR_LOOPBACK) };

		if (ups[i].instance_id == NULL || ups[i].port == 0 ||
		    (ups[i].host != NULL &&
		     inet_pton(AF_INET, ups[i].host, &a) != 1)) {
			free(addr);
			return MDS_E_INVAL;
		}
		addr[i] = a.s_addr;
	}
	rt.sh = xcalloc(n > 0 ? n : 1, sizeof(*rt.sh));
	for (size_t i = 0; i < n; i++)
		rt.sh[i] = shared_get(g, ups[i].instance_id, addr[i],
				      ups[i].port);
	free(addr);
	call_on_all(g, worker_set_routes, &rt);
	free(rt.sh);
	shared_prune(g, false);
	return 0;
}

struct replay_call {
	const char *deployment_id;
	enum gateway_replay replay;
	int rc;
};

static void set_replay_fn(struct worker *gw, void *arg)
{
	struct replay_call *rc = arg;
	struct dep *d = worker_dep(gw, rc->deployment_id);

	if (d == NULL) {
		rc->rc = MDS_E_NOTFOUND;
		return;
	}
	d->replay = rc->replay;
}

int gateway_set_replay(struct gateway *g, const char *deployment_id,
		       enum gateway_replay replay)
{
	struct replay_call rc = { deployment_id, replay, 0 };

	if (g == NULL || deployment_id == NULL ||
	    (replay != GATEWAY_REPLAY_SAFE && replay != GATEWAY_REPLAY_ALL))
		return MDS_E_INVAL;
	call_on_all(g, set_replay_fn, &rc);
	return rc.rc;
}

void gateway_remove(struct gateway *g, const char *deployment_id)
{
	struct routes rt = { .deployment_id = deployment_id };

	call_on_all(g, worker_remove, &rt);
	shared_prune(g, false);
}

struct holdable {
	const char *id;
	bool on;
};

static void set_holdable_fn(struct worker *gw, void *arg)
{
	const struct holdable *h = arg;
	struct dep *d = worker_dep(gw, h->id);

	if (d != NULL)
		d->holdable = h->on;
}

void gateway_set_holdable(struct gateway *g, const char *deployment_id,
			  bool on)
{
	struct holdable h = { deployment_id, on };

	call_on_all(g, set_holdable_fn, &h);
}

static void set_want(struct gateway *g)
{
	int want = (g->observe != NULL ? WANT_OBSERVE : 0) |
		   (g->access_log != NULL ? WANT_ACCESS : 0);

	__atomic_store_n(&g->want, want, __ATOMIC_RELAXED);
}

void gateway_set_observer(struct gateway *g, gateway_observe_fn *fn,
			  void *arg)
{
	g->observe = fn;
	g->observe_arg = arg;
	set_want(g);
}

void gateway_set_cold_start(struct gateway *g, gateway_cold_fn *fn,
			    void *arg)
{
	g->cold = fn;
	g->cold_arg = arg;
}

void gateway_set_access_log(struct gateway *g, gateway_access_fn *fn,
			    void *arg)
{
	g->access_log = fn;
	g->access_log_arg = arg;
	set_want(g);
}

/* Counters, summed over the workers. */

uint32_t gateway_instance_inflight(const struct gateway *g,
				   const char *instance_id)
{
	uint32_t sum = 0;

	for (unsigned i = 0; i < g->n; i++) {
		struct worker *gw = g->w[i];

		uv_mutex_lock(&gw->mu);
		for (const struct link *l = gw->insts.next; l != &gw->insts;
		     l = l->next) {
			struct inst *in = container_of(l, struct inst, link);

			if (strcmp(in->id, instance_id) == 0)
				sum += SHARED_GET(in->inflight);
		}
		uv_mutex_unlock(&gw->mu);
	}
	return sum;
}

static void counters_add(struct gateway_counters *out,
			 struct gateway_counters *k)
{
	out->requests += SHARED_GET(k->requests);
	for (int i = 0; i < 6; i++)
		out->by_class[i] += SHARED_GET(k->by_class[i]);
	out->proxy_errors += SHARED_GET(k->proxy_errors);
	out->latency_us_sum += SHARED_GET(k->latency_us_sum);
	for (int i = 0; i < GATEWAY_LAT_BUCKETS; i++)
		out->latency_hist[i] += SHARED_GET(k->latency_hist[i]);
	out->inflight += SHARED_GET(k->inflight);
	out->held += SHARED_GET(k->held);
	out->held_us_sum += SHARED_GET(k->held_us_sum);
	out->held_done += SHARED_GET(k->held_done);
}

int gateway_counters(const struct gateway *g, const char *deployment_id,
		     struct gateway_counters *out)
{
	struct gateway_counters sum = { 0 };
	bool found = false;

	for (unsigned i = 0; i < g->n; i++) {
		struct worker *gw = g->w[i];
		struct dep *d;

		uv_mutex_lock(&gw->mu);
		d = worker_dep(gw, deployment_id);
		if (d != NULL) {
			counters_add(&sum, &d->ctr);
			found = true;
		}
		uv_mutex_unlock(&gw->mu);
	}
	if (!found)
		return MDS_E_NOTFOUND;
	*out = sum;
	return 0;
}

int gateway_status_counts(const struct gateway *g, const char *deployment_id,
			  uint64_t out[GATEWAY_STATUS_CODES])
{
	bool found = false;

	for (unsigned i = 0; i < g->n; i++) {
		struct worker *gw = g->w[i];
		struct dep *d;

		uv_mutex_lock(&gw->mu);
		d = worker_dep(gw, deployment_id);
		if (d != NULL && !found)
			memset(out, 0, GATEWAY_STATUS_CODES * sizeof(*out));
		for (int k = 0; d != NULL && k < GATEWAY_STATUS_CODES; k++)
			out[k] += SHARED_GET(d->by_status[k]);
		found = found || d != NULL;
		uv_mutex_unlock(&gw->mu);
	}
	return found ? 0 : MDS_E_NOTFOUND;
}

/* Stopping and closing. */

static void drain_timer_closed(uv_handle_t *h)
{
	free(h);
}

/* Ends what is still under way, hands the finished requests over, and
 * tells the caller of gateway_stop(). */
static void stop_now(struct gateway *g)
{
	void (*cb)(void *arg, unsigned cut) = g->stopped_cb;
	void *arg = g->stopped_arg;
	unsigned cut = 0;

	if (g->drain_timer != NULL) {
		uv_close((uv_handle_t *)g->drain_timer, drain_timer_closed);
		g->drain_timer = NULL;
	}
	g->stopped_cb = NULL;
	call_on_all(g, worker_stop, NULL);
	/* Each worker has noted what it ended before its call returned. */
	for (unsigned i = 0; i < g->n; i++) {
		(void)notes_take(g->w[i]);
		cut += g->w[i]->cut;
	}
	if (cut > 0)
		log_warn("gateway", "the stop's deadline passed: requests "
			 "cut under way: %u", cut);
	if (cb != NULL)
		cb(arg, cut);
}

/* Once every worker has drained, the stop completes. */
static void drain_check(struct gateway *g)
{
	bool all = true;

	if (g->drain_timer == NULL || g->close_called)
		return;
	for (unsigned i = 0; all && i < g->n; i++) {
		uv_mutex_lock(&g->w[i]->mu);
		all = g->w[i]->drained;
		uv_mutex_unlock(&g->w[i]->mu);
	}
	if (all)
		stop_now(g);
}

static void drain_deadline(uv_timer_t *t)
{
	stop_now(t->data);
}

void gateway_stop(struct gateway *g, uint64_t timeout_ms,
		  void (*done)(void *arg, unsigned cut), void *arg)
{
	if (g == NULL || g->stopped || g->close_called) {
		if (done != NULL)
			done(arg, 0);
		return;
	}
	g->stopped = true;
	g->stopped_cb = done;
	g->stopped_arg = arg;
	if (!g->serving) {
		stop_now(g);
		return;
	}
	g->drain_timer = xmalloc(sizeof(*g->drain_timer));
	uv_timer_init(g->owner, g->drain_timer);
	g->drain_timer->data = g;
	uv_timer_start(g->drain_timer, drain_deadline, timeout_ms, 0);
	call_on_all(g, worker_drain, NULL);
	drain_check(g); /* none had a request under way */
}

void gateway_close(struct gateway *g, void (*done)(void *arg), void *arg)
{
	if (g == NULL || g->close_called)
		return;
	g->close_called = true;
	if (g->drain_timer != NULL) { /* a stop under way: never completes */
		uv_close((uv_handle_t *)g->drain_timer, drain_timer_closed);
		g->drain_timer = NULL;
	}
	g->done = done;
	g->done_arg = arg;
	call_on_all(g, worker_close, NULL);
	if (!g->serving)
		for (unsigned i = 0; i < g->n; i++)
			worker_run(g->w[i]); /* the handles close here */
}
