/*
 * gateway.h - the reverse proxy in front of the model instances.
 *
 * Listens for HTTP/1.1 on its own address and proxies
 * /{deploymentId or displayName}/{path} to a ready instance of that
 * deployment (least outstanding requests first, see core/route.h), with
 * keep-alive on both sides and bodies streamed in both directions. It counts
 * every request per deployment and its in-flight requests per instance, so
 * that the deployments module can drain an instance and monitoring can read
 * the request metrics.
 *
 * The gateway runs on threads and loops of its own (gatewayThreads of them,
 * each accepting on the same port with SO_REUSEPORT when there are
 * several), so that nothing else the daemon does on its loop delays a
 * request. Every function here is
 * called on the owner's thread (the one running the loop given to
 * gateway_start()), and the callbacks (observer, access log, close) run on
 * that loop. A call that changes the gateway returns once the gateway's
 * thread has made the change. The deployments module owns the routing table
 * and pushes it with gateway_set_routes() whenever the set of ready
 * instances changes.
 */
#ifndef MDS_GATEWAY_H
#define MDS_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct gateway;

/* One routable instance: it is ready and listens on host:port. */
struct gateway_upstream {
	const char *instance_id;
	uint16_t port;
	const char *host; /* an IPv4 address, dotted ("10.1.2.3", a pod's);
			     NULL: 127.0.0.1 (a local instance) */
};

/* Latency histogram bucket upper bounds, in microseconds (last is +Inf). */
#define GATEWAY_LAT_BUCKETS 16
extern const uint64_t gateway_lat_bounds_us[GATEWAY_LAT_BUCKETS];

/* Counters of one deployment since the gateway started. */
struct gateway_counters {
	uint64_t requests;       /* requests finished, whatever the outcome */
	uint64_t by_class[6];    /* [1..5]: 1xx..5xx sent to the client;
				    [0]: client went away before a status */
	uint64_t proxy_errors;   /* 502/503/504 made by the gateway itself */
	uint64_t latency_us_sum; /* first byte in to last byte out */
	uint64_t latency_hist[GATEWAY_LAT_BUCKETS];
	uint32_t inflight;       /* requests currently being served */
	uint64_t held;           /* requests held for a cold start */
	uint64_t held_done;      /* of them, no longer held */
	uint64_t held_us_sum;    /* the time those waited */
};

/* Requests of one deployment that finished in a moment, summed. */
struct gateway_observed {
	uint64_t requests;
	uint64_t by_class[6];    /* as gateway_counters' by_class */
	uint64_t latency_us_sum; /* first byte in to last byte out */
	uint64_t latency_us_max;
};

/*
 * Called with a deployment's finished requests, summed over a moment (a
 * worker sums them for at most 10 ms), on the owner's loop, shortly after
 * they ended. Every finished request of a deployment is in exactly one
 * call, also one that ends while the gateway closes or after the
 * deployment was removed.
 */
typedef void gateway_observe_fn(void *arg, const char *deployment_id,
				const struct gateway_observed *o);

/*
 * Starts listening on host:port (port 0 picks a free one, see
 * gateway_port()), without accepting yet (see gateway_serve()); loop is the
 * owner's.
 * Returns 0 and a new gateway in *out, or a negative MDS_E_* code with
 * detail in diag (MDS_E_INVAL: bad arguments or address; MDS_E_SYS: bind or
 * listen failed). The caller owns the gateway and releases it with
 * gateway_close().
 */
int gateway_start(uv_loop_t *loop, const char *host, int port,
		  struct gateway **out, char *diag, size_t diagsz);

/* The most threads a gateway runs. */
#define GATEWAY_THREADS_MAX 64

/*
 * As gateway_start(), with threads loops (1 to GATEWAY_THREADS_MAX), each on
 * a thread of its own with its own listening socket (SO_REUSEPORT on the
 * same port), connections, upstream pools and counters; the counters read
 * here are their sums. The limits of gateway_set_limits() and
 * gateway_set_hold() on clients and held requests hold for the gateway as a
 * whole: the loops count against them together. Errors as
 * gateway_start()'s.
 */
int gateway_start_threads(uv_loop_t *loop, const char *host, int port,
			  unsigned threads, struct gateway **out, char *diag,
			  size_t diagsz);

/* Returns the number of the gateway's threads. */
unsigned gateway_threads(const struct gateway *gw);

/*
 * Starts the gateway's threads, which accept connections from then on.
 * Before, connections wait in the listen backlog and calls take effect
 * directly on the caller's thread: an owner restores its routes first, so
 * that no early request finds a deployment missing. Aborts the program if
 * no thread can be made, as for memory.
 */
void gateway_serve(struct gateway *gw);

struct tls_ctx;

/*
 * Serves HTTPS with tls (borrowed; it must outlive the gateway; it may be
 * reloaded from any thread, see http/tls.h). Call before gateway_serve().
 * Without it the gateway speaks plain HTTP on the zero-copy path.
 */
void gateway_set_tls(struct gateway *gw, struct tls_ctx *tls);

/* Tunables; gateway_start() begins with the defaults noted. */
struct gateway_limits {
	uint64_t response_timeout_ms;   /* 60000: request sent, no response
					   progress -> 504 (or close if the
					   response had started) */
	uint64_t idle_timeout_ms;       /* 60000: client silent between
					   requests or while sending one */
	uint32_t max_clients;           /* 10000: beyond, a new client closes
					   the one of its loop that has
					   waited longest without a complete
					   request, from its own address
					   first (or, if none, is closed
					   itself) */
	uint32_t max_idle_per_instance; /* 64 pooled upstream connections,
					   per loop */
	uint64_t head_timeout_ms;       /* 10000: a request head must arrive
					   whole within this of its first
					   byte, else 408 */
	uint32_t body_min_rate;         /* 1024: bytes/s a request body must
					   keep up over each 5 s (while the
					   gateway reads it), else 408 */
	uint32_t max_clients_per_addr;  /* 512: connections from one client
					   address; beyond, accept and close */
};

/* Replaces the tunables; a zero field keeps its current value. Running
 * timers keep their old timeout. The caller keeps lim. */
void gateway_set_limits(struct gateway *gw, const struct gateway_limits *lim);

/* Returns the port the gateway listens on. */
int gateway_port(const struct gateway *gw);

/* Which requests the gateway sends again, on a fresh connection, when a
 * kept-alive connection to an instance dies before any response byte. */
enum gateway_replay {
	GATEWAY_REPLAY_SAFE = 0, /* the default, as nginx's: only a request
				    none of whose bytes was sent, or one with
				    an idempotent method (not POST, PATCH,
				    LOCK); the others get 502 */
	GATEWAY_REPLAY_ALL,      /* every request (the instance's handlers
				    are all safe to run twice) */
};

/* Sets a deployment's replay policy (a new deployment starts with
 * GATEWAY_REPLAY_SAFE; call after its first gateway_set_routes()).
 * Returns 0, MDS_E_NOTFOUND if the gateway has no such deployment, or
 * MDS_E_INVAL. A request that was never connected anywhere goes to another
 * instance whatever the policy. */
int gateway_set_replay(struct gateway *gw, const char *deployment_id,
		       enum gateway_replay replay);

/*
 * Replaces the routable instances of a deployment (creating the deployment's
 * entry if new). Instances no longer listed get no new requests; their
 * in-flight requests finish normally and their idle upstream connections are
 * closed. n may be 0: requests are then held until routes with an
 * instance come (see gateway_set_hold()), or get 503 at once when holding
 * is off. Strings are copied. Returns 0, MDS_E_INVAL (an upstream without
 * an id or a port, or whose host is not an IPv4 address) or MDS_E_LIMIT.
 */
int gateway_set_routes(struct gateway *gw, const char *deployment_id,
		       const char *display_name,
		       const struct gateway_upstream *ups, size_t n);

/* Forgets a deployment: later requests to it get 404. */
void gateway_remove(struct gateway *gw, const char *deployment_id);

/* Returns the requests in flight to one instance (0 if unknown). A request
 * stops counting before the last bytes of its response go out. */
uint32_t gateway_instance_inflight(const struct gateway *gw,
				   const char *instance_id);

/* Copies a deployment's counters; MDS_E_NOTFOUND if it is unknown. A request
 * is counted before the last bytes of its response go out. */
int gateway_counters(const struct gateway *gw, const char *deployment_id,
		     struct gateway_counters *out);

/* Statuses counted one by one: GATEWAY_STATUS_MIN (100) to 599. */
#define GATEWAY_STATUS_MIN 100
#define GATEWAY_STATUS_CODES 500

/* Copies a deployment's finished requests by the status sent: out[s -
 * GATEWAY_STATUS_MIN] for status s (a request whose client went away before
 * a status is by_class[0] of gateway_counters()). Returns 0, or
 * MDS_E_NOTFOUND if the deployment is unknown (out untouched). */
int gateway_status_counts(const struct gateway *gw, const char *deployment_id,
			  uint64_t out[GATEWAY_STATUS_CODES]);

/* Sets (or clears, with NULL) the observer of finished requests. */
void gateway_set_observer(struct gateway *gw, gateway_observe_fn *fn,
			  void *arg);

/* One finished request, for the access log. Strings live for the call. */
struct gateway_access {
	const char *method;        /* "GET", ...; "-" if none was read */
	const char *path;          /* as the client sent it, without the
				      query; cut at 512 bytes */
	int status;                /* 0: the client went away first */
	uint64_t latency_us;       /* first byte in to last byte out */
	const char *deployment_id; /* NULL if it matched no deployment */
	const char *instance_id;   /* NULL if no instance answered */
};

typedef void gateway_access_fn(void *arg, const struct gateway_access *a);

/*
 * Sets (or clears, with NULL) the access log hook, called once per finished
 * request, in order, on the owner's loop, as the observer is. If that loop
 * falls more than about a million requests behind, the excess goes unlogged
 * (and that is logged).
 * Separate from the observer, which monitoring owns.
 */
void gateway_set_access_log(struct gateway *gw, gateway_access_fn *fn,
			    void *arg);

/*
 * Holding requests for a deployment with no routable instance (see
 * gateway_hold.c): per deployment and in total, how many requests and
 * bytes (head + Content-Length) wait, and for how long at most. Beyond, 503
 * with Retry-After. max_requests or timeout_ms 0: no holding (503 at once).
 */
struct gateway_hold {
	uint32_t max_requests;       /* 1000 per deployment */
	uint64_t max_bytes;          /* 64 MiB per deployment */
	uint32_t max_requests_total; /* 10000 */
	uint64_t max_bytes_total;    /* 256 MiB */
	uint64_t timeout_ms;         /* 60000 */
};

/* Replaces the hold limits (all fields; the caller keeps h). */
void gateway_set_hold(struct gateway *gw, const struct gateway_hold *h);

/*
 * Called on the owner's loop, with the notes, when a request for a
 * deployment with no routable instance is held: the owner should start an
 * instance now. Called again only after the deployment had an instance.
 */
typedef void gateway_cold_fn(void *arg, const char *deployment_id);

/*
 * Whether requests for a deployment without a routable instance are held
 * (it is at zero instances, or waking from zero) or answered 503 at once
 * (starting, failed: the default). Takes effect after
 * gateway_set_routes() made the deployment known.
 */
void gateway_set_holdable(struct gateway *gw, const char *deployment_id,
			  bool on);

/* Sets (or clears, with NULL) the cold-start callback. */
void gateway_set_cold_start(struct gateway *gw, gateway_cold_fn *fn,
			    void *arg);

/*
 * Stops the gateway gracefully: it stops listening and closes the idle
 * connections (between requests) and pooled upstream ones; every request
 * under way (being read, held for a cold start, forwarded, answered) goes
 * on to its response, which says Connection: close, and then its
 * connection closes. Once none is left, or timeout_ms after the call, when
 * what is still under way is cut (cut counts those requests, each counted
 * as a request that ended there, and a warning is logged), every finished
 * request has been handed to the observer and the access log; then
 * done(arg, cut) runs on the owner's loop (done may be NULL; it may run
 * before the return: nothing was under way, the gateway does not serve,
 * or it was stopped already). The
 * gateway stays: its calls still work (routes are kept for no one;
 * counters read what was counted) until gateway_close(), which, during a
 * stop, ends it without calling done.
 */
void gateway_stop(struct gateway *gw, uint64_t timeout_ms,
		  void (*done)(void *arg, unsigned cut), void *arg);

/*
 * Stops listening, closes every connection, ends the gateway's threads, and
 * frees the gateway once all handles are closed; then calls done(arg), on
 * the owner's loop, if done is not NULL. Nothing else may be called on gw
 * after this.
 */
void gateway_close(struct gateway *gw, void (*done)(void *arg), void *arg);

#endif
