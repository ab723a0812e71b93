/*
 * fuzz_api_server.c - libFuzzer harness for the API's HTTP server as a
 * client meets it: the input goes over a real loopback connection to
 * http_server (src/http/http_server.c), in writes as long as its first byte
 * says, then the client half-closes and reads until the server closes. It
 * covers what the parser wrapper's harness does not: the server's head
 * caps (URL, head size, header count), the Authorization capture, the
 * refusals it writes itself (400, 408, 413, 414, 431) and its lingering
 * close, keep-alive and pipelining. The handler answers every request and
 * checks what the server hands it: a path, a query, a body without NUL
 * whose length is body_len, under the cap.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "http/http_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BODY 4096
#define ROUNDS 20000 /* loop turns per input, at most */

static uv_loop_t loop;
static struct http_server *srv;

static void handle(void *arg, struct http_req *req)
{
	(void)arg;
	if (req->method == NULL || req->path == NULL || req->query == NULL ||
	    req->body == NULL || req->body_len > MAX_BODY ||
	    strlen(req->body) != req->body_len)
		abort();
	http_respond(req, 200, NULL, "{}", 2, NULL);
}

static void start_once(void)
{
	char diag[128];

	if (srv != NULL)
		return;
	if (uv_loop_init(&loop) != 0 ||
	    http_server_start(&loop, "127.0.0.1", 0, MAX_BODY, handle, NULL,
			      &srv, diag, sizeof(diag)) != 0)
		abort();
}

static int connect_client(void)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		abort();
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)http_server_port(srv));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
	    errno != EINPROGRESS)
		abort();
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t step, off = 1;
	bool shut = false;
	char buf[65536];
	int fd;

	if (size == 0)
		return 0;
	start_once();
	step = data[0] == 0 ? size : data[0];
	fd = connect_client();
	for (int i = 0; i < ROUNDS; i++) {
		ssize_t n;

		uv_run(&loop, UV_RUN_NOWAIT);
		if (off < size) {
			size_t len = size - off < step ? size - off : step;

			n = send(fd, data + off, len, MSG_NOSIGNAL);
			if (n > 0)
				off += (size_t)n;
			else if (n < 0 && errno != EAGAIN && errno != ENOTCONN)
				off = size; /* the server is gone */
		} else if (!shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
		}
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != ENOTCONN))
			break;
	}
	close(fd);
	/* Let the server see the close and free the connection. */
	for (int i = 0; i < 50; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	return 0;
}
