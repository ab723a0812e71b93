/*
 * gateway_accept.c - a worker's listening socket and the connections it
 * accepts: the limits on clients in total and per address, counted over
 * every worker (gateway.nclients and gateway.addrs), and who makes room
 * when every slot is taken.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "gateway/gateway_path.h"
#include "http/hparse.h"
#include "http/tls.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xalloc.h"

static void reject_close_cb(uv_handle_t *h)
{
	free(h);
}

/* Accepts a connection and closes it at once. */
static void reject(struct worker *gw, uv_stream_t *server)
{
	uv_tcp_t *t = xmalloc(sizeof(*t));

	uv_tcp_init(gw->loop, t);
	(void)uv_accept(server, (uv_stream_t *)t);
	uv_close((uv_handle_t *)t, reject_close_cb);
}

/* The client newc takes the place of when all slots are
 * taken: the one that has waited longest without a complete request (idle,
 * or sending one slowly) from the same address if there is one, else from
 * any address; NULL if every client has a request in the works. So clients
 * that open many connections crowd out their own first. Only the worker's
 * own clients are looked at (the others are on other threads): a worker
 * whose clients are all busy refuses the new one, even while another
 * worker has one waiting. */
static struct client *oldest_waiting(struct worker *gw,
				     const struct client *newc)
{
	struct client *any = NULL, *own = NULL;
	uint64_t any_at = 0, own_at = 0;

	for (struct link *l = gw->clients.next; l != &gw->clients;
	     l = l->next) {
		struct client *c = container_of(l, struct client, link);
		uint64_t at;

		if (c == newc || c->closing || c->req.in_done ||
		    c->req.status != 0)
			continue;
		at = c->req.active ? c->head_at : c->active_at;
		/* Newest first in the list: on a tie, the older wins. */
		if (any == NULL || at <= any_at) {
			any = c;
			any_at = at;
		}
		if (strcmp(c->ip, newc->ip) == 0 &&
		    (own == NULL || at <= own_at)) {
			own = c;
			own_at = at;
		}
	}
	return own != NULL ? own : any;
}

/* Counts c in its address's clients, unless the address has its limit
 * already; false then. */
static bool addr_count(struct client *c)
{
	struct worker *gw = c->gw;
	const struct tally_max max = {
		.n = gw->lim.max_clients_per_addr,
		.n_total = UINT32_MAX,
		.bytes = UINT64_MAX,
		.bytes_total = UINT64_MAX,
	};

	if (tally_take(&gw->group->addrs, c->ip, 0, &max, &c->addr_ix) !=
	    TALLY_OK)
		return false;
	c->addr_counted = true;
	return true;
}

void client_uncount(struct client *c)
{
	if (!c->addr_counted)
		return;
	c->addr_counted = false;
	tally_give(&c->gw->group->addrs, c->addr_ix, 0);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct worker *gw = server->data;
	struct gateway *g = gw->group;
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	struct client *c;

	if (status < 0) {
		gw_log(gw, LOG_WARN, "accept: %s", uv_strerror(status));
		return;
	}
	if (__atomic_add_fetch(&g->nclients, 1, __ATOMIC_RELAXED) >
	    2 * (uint64_t)gw->lim.max_clients) {
		/* Closing clients not gone yet: no room even to look. */
		__atomic_sub_fetch(&g->nclients, 1, __ATOMIC_RELAXED);
		reject(gw, server);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->gw = gw;
	uv_tcp_init(gw->loop, &c->tcp);
	uv_timer_init(gw->loop, &c->timer);
	gw->nclients++;
	c->tcp.data = c;
	c->timer.data = c;
	list_add(&gw->clients, &c->link);
	buf_init(&c->head.raw, HEAD_MAX);
	hparse_init(&c->parser, HPARSE_REQUEST, &creq_settings, c);
	c->req.retain = true;
	if (gw->tls != NULL)
		c->tls = tls_conn_new(gw->tls);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		client_close(c, false);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET6)
			uv_ip6_name((struct sockaddr_in6 *)&ss, c->ip,
				    sizeof(c->ip));
		else
			uv_ip4_name((struct sockaddr_in *)&ss, c->ip,
				    sizeof(c->ip));
	}
	c->ip_len = strlen(c->ip);
	if (!addr_count(c)) {
		client_close(c, false);
		return;
	}
	if (__atomic_load_n(&g->nclients, __ATOMIC_RELAXED) >
	    gw->lim.max_clients) {
		/* Over the gateway's limit: this worker makes room among its
		 * own clients, or refuses the new one. */
		struct client *victim = oldest_waiting(gw, c);

		if (victim == NULL) {
			client_close(c, false);
			return;
		}
		client_close(victim, false);
	}
	client_arm(c);
	client_update_read(c);
}

/* Binds a socket of its own with SO_REUSEPORT, so that every worker's
 * listener takes the same port and the kernel spreads the connections
 * (libuv 1.44 has no flag for it). */
static int bind_reuseport(uv_tcp_t *t, const struct sockaddr *sa)
{
	socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in);
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int on = 1, rc;

	if (fd < 0)
		return uv_translate_sys_error(errno);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
	    bind(fd, sa, len) != 0) {
		rc = uv_translate_sys_error(errno);
		close(fd);
		return rc;
	}
	rc = uv_tcp_open(t, fd);
	if (rc != 0)
		close(fd);
	return rc;
}

int worker_listen(struct worker *gw, const struct sockaddr *sa,
		  bool reuseport)
{
	int rc;

	gw->listener.data = gw;
	rc = reuseport ? bind_reuseport(&gw->listener, sa)
		       : uv_tcp_bind(&gw->listener, sa, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&gw->listener, 511,
			       on_connection);
	return rc;
}
