/*
 * fuzz_log_filter.c - libFuzzer harness for log searches (GET /v1/logs):
 * the input's first line is the query string, read by
 * api_logs_filter_parse() as the route reads it (percent-decoding, times
 * absolute and relative, levels, limits); the rest is written as the log
 * file (DIR/mdscale.log, in /dev/shm when there is one) and searched with
 * the filter by logstore_query(), which reads every line back (JSON lines
 * the daemon wrote, holding what instances printed, or a file damaged on
 * disk). A refused query says why; a search counts the lines it returns.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_bodies.h"
#include "logging/logstore.h"
#include "util/fault.h"

/* A fixed now, so that relative times give the same filter every run:
 * 2024-05-01T10:00:00Z. */
#define NOW_MS 1714557600000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char file[128];

/* Removes the log file when the run ends. */
static void remove_dir(void)
{
	unlink(file);
	rmdir(dir);
}

static void open_once(void)
{
	if (dir[0] != '\0')
		return;
	snprintf(dir, sizeof(dir), "%s/mdscale-fuzz-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(file, sizeof(file), "%s/mdscale.log", dir);
	atexit(remove_dir);
}

static void write_log(const uint8_t *p, size_t n)
{
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		abort();
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k <= 0)
			abort();
		p += k;
		n -= (size_t)k;
	}
	close(fd);
}

static size_t count_lines(const struct logstore_result *res)
{
	size_t n = 0;

	for (size_t i = 0; i < res->lines.len; i++)
		n += res->lines.data[i] == '\n';
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t qlen = nl != NULL ? (size_t)(nl - data) : size;
	struct api_logs_filter *q = malloc(sizeof(*q));
	struct logstore_result res;
	char *query = malloc(qlen + 1);
	struct fault f;

	if (q == NULL || query == NULL)
		abort();
	open_once();
	memcpy(query, data, qlen);
	query[qlen] = '\0';
	memset(&f, 0, sizeof(f));
	if (api_logs_filter_parse(query, NULL, NOW_MS, q, &f) != 0) {
		if (f.message[0] == '\0' ||
		    memchr(f.message, '\0', sizeof(f.message)) == NULL)
			abort();
	} else {
		write_log(nl != NULL ? nl + 1 : data + size,
			  nl != NULL ? size - qlen - 1 : 0);
		if (logstore_query(dir, 0, &q->f, NULL, &res) != 0)
			abort();
		if (count_lines(&res) != res.count || res.count > q->f.limit)
			abort();
		logstore_result_free(&res);
	}
	free(query);
	free(q);
	return 0;
}
