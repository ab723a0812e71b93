/*
 * backend.c - mdscale-bench-backend: a trivial, fast HTTP/1.1 server for
 * benchmarks of the gateway (bench/gateway.sh).
 *
 *   mdscale-bench-backend [--port N] [--threads T] [--lifetime SECONDS]
 *
 * Answers every request, whatever its method and path, with 200 OK and a
 * small fixed JSON body; keeps connections alive (HTTP/1.1, or 1.0 that asks
 * for it) and answers pipelined requests in order, one write per read.
 * Each of the T threads runs its own libuv loop on its own listening socket
 * bound with SO_REUSEPORT, so the kernel spreads connections over them.
 *
 * It listens on 127.0.0.1 only (the port from --port, else $PORT) and stops
 * by itself after --lifetime seconds (default 3600; 0: never). Nothing per
 * request is allocated but the rare write the socket cannot take at once.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <http_parser.h>
#include <uv.h>

#define THREADS_MAX 64
#define READ_SIZE (64 * 1024)
#define IOV_MAX_BATCH 64 /* responses per write call */
#define BODY "{\"prediction\":42,\"model\":\"bench\"}"
#define BODY_LEN "33" /* checked below */

static const char resp_keep[] =
	"HTTP/1.1 200 OK\r\n"
	"Content-Type: application/json\r\n"
	"Connection: keep-alive\r\n"
	"Content-Length: " BODY_LEN "\r\n"
	"\r\n" BODY;
static const char resp_close[] =
	"HTTP/1.1 200 OK\r\n"
	"Content-Type: application/json\r\n"
	"Connection: close\r\n"
	"Content-Length: " BODY_LEN "\r\n"
	"\r\n" BODY;

_Static_assert(sizeof BODY - 1 == 33, "BODY_LEN is wrong");

struct worker {
	pthread_t thread;
	uv_loop_t loop;
	uv_tcp_t listener;
	int fd;
	char rbuf[READ_SIZE];
};

struct conn {
	uv_tcp_t tcp;
	http_parser parser;
	struct worker *w;
	unsigned pending; /* complete requests not answered yet */
	int close_after;  /* the last one asked to close */
	int closing;
};

struct wreq {
	uv_write_t req;
	struct conn *c;
	int close_after;
};

static void on_close(uv_handle_t *h)
{
	free(h->data);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	uv_close((uv_handle_t *)&c->tcp, on_close);
}

static int on_message_complete(http_parser *p)
{
	struct conn *c = p->data;

	c->pending++;
	if (!http_should_keep_alive(p)) {
		c->close_after = 1;
		http_parser_pause(p, 1); /* nothing after it is answered */
	}
	return 0;
}

static const http_parser_settings settings = {
	.on_message_complete = on_message_complete,
};

static void on_write(uv_write_t *req, int status)
{
	struct wreq *wr = (struct wreq *)req;

	if (status < 0 || wr->close_after)
		conn_close(wr->c);
	free(wr);
}

/* Writes the pending responses (the last one "Connection: close" when
 * the client asked for it): what the socket takes now, the rest queued with
 * uv_write. */
static void answer(struct conn *c)
{
	uv_buf_t iov[IOV_MAX_BATCH];
	unsigned n, i;
	struct wreq *wr;
	int written, last_batch;

	while (c->pending > 0 && !c->closing) {
		n = c->pending < IOV_MAX_BATCH ? c->pending : IOV_MAX_BATCH;
		for (i = 0; i < n; i++)
			iov[i] = uv_buf_init((char *)resp_keep,
					     sizeof resp_keep - 1);
		c->pending -= n;
		last_batch = c->pending == 0 && c->close_after;
		if (last_batch && n > 0)
			iov[n - 1] = uv_buf_init((char *)resp_close,
						 sizeof resp_close - 1);
		written = uv_try_write((uv_stream_t *)&c->tcp, iov, n);
		if (written == UV_EAGAIN)
			written = 0;
		if (written < 0) {
			conn_close(c);
			return;
		}
		for (i = 0; i < n && (size_t)written >= iov[i].len; i++)
			written -= (int)iov[i].len;
		if (i == n) {
			if (last_batch)
				conn_close(c);
			continue;
		}
		/* Queue what is left, from inside the first unwritten one. */
		iov[i].base += written;
		iov[i].len -= (size_t)written;
		wr = malloc(sizeof *wr);
		if (wr == NULL)
			abort();
		wr->c = c;
		wr->close_after = last_batch;
		if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, iov + i, n - i,
			     on_write) != 0) {
			free(wr);
			conn_close(c);
			return;
		}
	}
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	struct conn *c = h->data;

	buf->base = c->w->rbuf;
	buf->len = sizeof c->w->rbuf;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	size_t used;

	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (nread == 0 || c->close_after)
		return;
	used = http_parser_execute(&c->parser, &settings, buf->base,
				   (size_t)nread);
	if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK &&
	    HTTP_PARSER_ERRNO(&c->parser) != HPE_PAUSED) {
		conn_close(c);
		return;
	}
	(void)used;
	if (c->close_after)
		uv_read_stop(s);
	answer(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct worker *w = server->data;
	struct conn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof *c);
	if (c == NULL)
		abort();
	c->w = w;
	uv_tcp_init(&w->loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* Opens 127.0.0.1:port with SO_REUSEPORT; returns the fd or -1. */
static int listen_socket(int port)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void *run_worker(void *arg)
{
	struct worker *w = arg;

	uv_run(&w->loop, UV_RUN_DEFAULT);
	return NULL;
}

static int parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int usage(const char *why)
{
	fprintf(stderr, "mdscale-bench-backend: %s\n"
		"usage: mdscale-bench-backend [--port N] [--threads T] "
		"[--lifetime SECONDS]\n", why);
	return 2;
}

int main(int argc, char **argv)
{
	static struct worker workers[THREADS_MAX];
	const char *port_s = getenv("PORT");
	long port = 0, threads = 1, lifetime = 3600;
	int i, rc;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (i + 1 >= argc)
			return usage("every option needs a value");
		if (strcmp(a, "--port") == 0)
			port_s = argv[++i];
		else if (strcmp(a, "--threads") == 0) {
			if (parse_int(argv[++i], 1, THREADS_MAX, &threads) != 0)
				return usage("--threads must be 1..64");
		} else if (strcmp(a, "--lifetime") == 0) {
			if (parse_int(argv[++i], 0, 86400 * 7, &lifetime) != 0)
				return usage("--lifetime must be 0..604800");
		} else {
			return usage("unknown option");
		}
	}
	if (port_s == NULL || parse_int(port_s, 1, 65535, &port) != 0)
		return usage("--port (or $PORT) must be 1..65535");
	signal(SIGPIPE, SIG_IGN);
	if (lifetime > 0)
		alarm((unsigned)lifetime); /* SIGALRM ends the process */
	for (i = 0; i < threads; i++) {
		struct worker *w = &workers[i];

		w->fd = listen_socket((int)port);
		if (w->fd < 0) {
			fprintf(stderr, "mdscale-bench-backend: cannot listen on "
				"127.0.0.1:%ld: %s\n", port, strerror(errno));
			return 1;
		}
		uv_loop_init(&w->loop);
		uv_tcp_init(&w->loop, &w->listener);
		w->listener.data = w;
		rc = uv_tcp_open(&w->listener, w->fd);
		if (rc == 0)
			rc = uv_listen((uv_stream_t *)&w->listener, 1024,
				       on_connection);
		if (rc != 0) {
			fprintf(stderr, "mdscale-bench-backend: listen: %s\n",
				uv_strerror(rc));
			return 1;
		}
	}
	fprintf(stderr, "mdscale-bench-backend: listening on 127.0.0.1:%ld, "
		"%ld thread(s)\n", port, threads);
	for (i = 1; i < threads; i++) {
		if (pthread_create(&workers[i].thread, NULL, run_worker,
				   &workers[i]) != 0) {
			fprintf(stderr, "mdscale-bench-backend: cannot start a "
				"thread\n");
			return 1;
		}
	}
	run_worker(&workers[0]);
	return 0;
}
