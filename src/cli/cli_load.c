/*
 * cli_load.c - `mdscale load`: open-loop HTTP load against any URL.
 *
 * The engine is loadgen.h; this file reads the options and files, prints a
 * line per second on stderr while the run goes (table output), and the
 * report at the end: a summary on stdout, or with --output json one JSON
 * object holding the totals and every second. Latencies are from each
 * request's due time. Unlike the other commands it does not talk to the
 * daemon: --url is the target.
 *
 * Exit: 0 once the run completed (failed requests are in the report, not in
 * the status), 1 when something stopped it (a file that cannot be read, a
 * host that does not resolve), 2 for a usage error.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/loadgen.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/xalloc.h"

#define BODY_FILE_MAX (16u << 20)
#define SCHED_FILE_MAX (1u << 20)
#define DEFAULT_DURATION_S 10.0
#define DEFAULT_CONNECTIONS 64
#define DEFAULT_TIMEOUT_S 10.0
#define TIMEOUT_MAX_S 3600.0
#define ROWS_MAX 100000u /* seconds kept for the JSON report */

enum {
	O_URL, O_RATE, O_DURATION, O_SCHEDULE, O_BODY, O_METHOD, O_HEADER,
	O_CONNECTIONS, O_TIMEOUT,
};

static const struct cli_opt load_opts[] = {
	[O_URL] = {"url", 1},
	[O_RATE] = {"rate", 1},
	[O_DURATION] = {"duration", 1},
	[O_SCHEDULE] = {"schedule", 1},
	[O_BODY] = {"body", 1},
	[O_METHOD] = {"method", 1},
	[O_HEADER] = {"header", 1},
	[O_CONNECTIONS] = {"connections", 1},
	[O_TIMEOUT] = {"timeout", 1},
	{NULL, 0},
};

/* The percentiles of one histogram, in microseconds. */
struct lat {
	uint64_t p50, p90, p99, p999, max, mean;
};

struct row {
	struct loadgen_counts c;
	struct lat lat;
};

struct report {
	struct cli_ctx *ctx;
	struct row *rows;
	size_t nrows, cap;
	int truncated;
};

static void lat_of(const struct hdr *h, struct lat *l)
{
	l->p50 = hdr_percentile(h, 50);
	l->p90 = hdr_percentile(h, 90);
	l->p99 = hdr_percentile(h, 99);
	l->p999 = hdr_percentile(h, 99.9);
	l->max = hdr_max(h);
	l->mean = (uint64_t)llround(hdr_mean(h));
}

static uint64_t failed_sum(const struct loadgen_counts *c)
{
	uint64_t n = 0;
	unsigned i;

	for (i = 0; i < LOADGEN_FAIL_N; i++)
		n += c->failed[i];
	return n;
}

/* Parses a number within (min, max]; prints the usage error otherwise. */
static int parse_double(struct cli_ctx *ctx, const char *opt, const char *s,
	double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || !isfinite(v))
		return cli_usage_error(ctx, "--%s must be a number, not '%s'",
			opt, s);
	if (!(v > min) || v > max)
		return cli_usage_error(ctx, "--%s must be above %g and at most "
			"%g, not %s", opt, min, max, s);
	*out = v;
	return 0;
}

/* Reads a whole file of at most max bytes into b. Prints the error line and
 * returns CLI_EXIT_FAIL when it cannot. */
static int read_file(const char *opt, const char *path, size_t max,
	struct buf *b)
{
	char chunk[16384];
	size_t n;
	FILE *f;
	int ret = 0;

	buf_init(b, max);
	f = fopen(path, "rb");
	if (f == NULL)
		return cli_fail("--%s: cannot open %s: %s", opt, path,
			strerror(errno));
	for (;;) {
		n = fread(chunk, 1, sizeof chunk, f);
		if (n == 0)
			break;
		if (buf_add(b, chunk, n) != 0) {
			ret = cli_fail("--%s: %s is larger than %zu bytes", opt,
				path, max);
			break;
		}
	}
	if (ret == 0 && ferror(f))
		ret = cli_fail("--%s: cannot read %s: %s", opt, path,
			strerror(errno));
	fclose(f);
	return ret;
}

static void print_ms(FILE *out, uint64_t us)
{
	fprintf(out, " %9.3f", (double)us / 1000.0);
}

static void on_second(void *arg, unsigned second,
	const struct loadgen_counts *c, const struct hdr *h)
{
	struct report *r = arg;
	struct row row;

	row.c = *c;
	lat_of(h, &row.lat);
	if (!cli_structured(r->ctx)) {
		if (second == 1)
			fprintf(stderr, "%6s %8s %8s %8s %9s %9s %9s %9s %9s\n",
				"SECOND", "SENT", "OK", "FAILED", "P50_MS",
				"P90_MS", "P99_MS", "P99.9_MS", "MAX_MS");
		fprintf(stderr, "%6u %8llu %8llu %8llu", second,
			(unsigned long long)c->sent,
			(unsigned long long)c->succeeded,
			(unsigned long long)(failed_sum(c) +
					     c->dropped_overload));
		print_ms(stderr, row.lat.p50);
		print_ms(stderr, row.lat.p90);
		print_ms(stderr, row.lat.p99);
		print_ms(stderr, row.lat.p999);
		print_ms(stderr, row.lat.max);
		fputc('\n', stderr);
		return;
	}
	if (r->nrows >= ROWS_MAX) {
		r->truncated = 1;
		return;
	}
	if (r->nrows == r->cap) {
		r->cap = r->cap == 0 ? 64 : r->cap * 2;
		r->rows = xreallocarray(r->rows, r->cap, sizeof *r->rows);
	}
	r->rows[r->nrows++] = row;
}

static json_t *json_counts(const struct loadgen_counts *c, json_t *o)
{
	json_t *f = json_object();
	unsigned i;

	json_object_set_new(o, "sent", json_integer((json_int_t)c->sent));
	json_object_set_new(o, "succeeded",
		json_integer((json_int_t)c->succeeded));
	for (i = 0; i < LOADGEN_FAIL_N; i++)
		json_object_set_new(f, loadgen_fail_name(i),
			json_integer((json_int_t)c->failed[i]));
	json_object_set_new(o, "failed", f);
	json_object_set_new(o, "failed_total",
		json_integer((json_int_t)failed_sum(c)));
	json_object_set_new(o, "dropped_overload",
		json_integer((json_int_t)c->dropped_overload));
	return o;
}

static json_t *json_lat(const struct lat *l)
{
	json_t *o = json_object();

	json_object_set_new(o, "p50", json_integer((json_int_t)l->p50));
	json_object_set_new(o, "p90", json_integer((json_int_t)l->p90));
	json_object_set_new(o, "p99", json_integer((json_int_t)l->p99));
	json_object_set_new(o, "p99_9", json_integer((json_int_t)l->p999));
	json_object_set_new(o, "max", json_integer((json_int_t)l->max));
	json_object_set_new(o, "mean", json_integer((json_int_t)l->mean));
	return o;
}

static void print_json(const struct report *r, const struct loadgen_opts *o,
	const struct loadgen_result *res, const struct lat *l)
{
	json_t *j = json_object(), *secs = json_array(), *sc;
	size_t i;

	json_object_set_new(j, "url", json_string(o->url));
	json_object_set_new(j, "method", o->method != NULL ?
		json_string(o->method) :
		json_string(o->body_len > 0 ? "POST" : "GET"));
	json_object_set_new(j, "connections", json_integer(o->connections));
	json_object_set_new(j, "timeout_s",
		json_real((double)o->timeout_ms / 1000.0));
	json_object_set_new(j, "schedule_s", json_real(o->sched->seconds));
	json_object_set_new(j, "scheduled_requests",
		json_integer((json_int_t)llround(o->sched->requests)));
	json_counts(&res->total, j);
	json_object_set_new(j, "unfinished",
		json_integer((json_int_t)res->unfinished));
	json_object_set_new(j, "interrupted", json_boolean(res->interrupted));
	json_object_set_new(j, "latency_us", json_lat(l));
	json_object_set_new(j, "elapsed_s", json_real(res->elapsed_s));
	json_object_set_new(j, "rate_target",
		json_real(o->sched->requests / o->sched->seconds));
	json_object_set_new(j, "rate_achieved",
		json_real((double)res->total.succeeded / res->elapsed_s));
	json_object_set_new(j, "generator_lag_max_ms",
		json_real(res->lag_max_ms));
	json_object_set_new(j, "connects",
		json_integer((json_int_t)res->connects));
	for (i = 0; i < r->nrows; i++) {
		sc = json_object();
		json_object_set_new(sc, "second", json_integer((json_int_t)i + 1));
		json_counts(&r->rows[i].c, sc);
		json_object_set_new(sc, "latency_us", json_lat(&r->rows[i].lat));
		json_array_append_new(secs, sc);
	}
	json_object_set_new(j, "seconds", secs);
	if (r->truncated)
		json_object_set_new(j, "seconds_truncated", json_true());
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
		JSON_REAL_PRECISION(6));
	fputc('\n', stdout);
	json_decref(j);
}

static void print_table(const struct loadgen_opts *o,
	const struct loadgen_result *res, const struct lat *l)
{
	const struct loadgen_counts *c = &res->total;
	unsigned i;

	printf("target      %s (%s, %u connections, timeout %.3g s)\n", o->url,
		o->method != NULL ? o->method : o->body_len > 0 ? "POST" : "GET",
		o->connections, (double)o->timeout_ms / 1000.0);
	printf("schedule    %.1f s, %.0f requests (%.1f/s)\n",
		o->sched->seconds, o->sched->requests,
		o->sched->requests / o->sched->seconds);
	printf("sent        %llu\n", (unsigned long long)c->sent);
	printf("succeeded   %llu (%.1f/s over %.2f s)\n",
		(unsigned long long)c->succeeded,
		(double)c->succeeded / res->elapsed_s, res->elapsed_s);
	printf("failed      %llu (", (unsigned long long)failed_sum(c));
	for (i = 0; i < LOADGEN_FAIL_N; i++)
		printf("%s%s %llu", i > 0 ? ", " : "", loadgen_fail_name(i),
			(unsigned long long)c->failed[i]);
	printf(")\n");
	printf("dropped     %llu (queue of %u full)\n",
		(unsigned long long)c->dropped_overload, LOADGEN_QUEUE_MAX);
	if (res->interrupted)
		printf("interrupted %llu requests unfinished\n",
			(unsigned long long)res->unfinished);
	printf("latency     p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  "
		"max %.3f  mean %.3f ms (from the due time)\n",
		(double)l->p50 / 1000, (double)l->p90 / 1000,
		(double)l->p99 / 1000, (double)l->p999 / 1000,
		(double)l->max / 1000, (double)l->mean / 1000);
	printf("generator   lag max %.1f ms, %llu connections opened\n",
		res->lag_max_ms, (unsigned long long)res->connects);
}

int cli_load(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cli_getopt g = {.argc = argc, .argv = argv, .index = 1};
	const char *val[O_TIMEOUT + 1] = {NULL};
	const char *headers[LOADGEN_HEADERS_MAX];
	struct loadgen_opts o;
	struct loadgen_result res;
	struct loadgen_sched sched;
	struct report rep;
	struct buf body, text;
	struct lat lat;
	char diag[512];
	double rate = 0, duration = DEFAULT_DURATION_S;
	double timeout = DEFAULT_TIMEOUT_S;
	long conns = DEFAULT_CONNECTIONS;
	size_t nheaders = 0;
	int opt, ret, rc;

	memset(&o, 0, sizeof o);
	memset(&rep, 0, sizeof rep);
	memset(&res, 0, sizeof res);
	buf_init(&body, 0);
	buf_init(&text, 0);
	loadgen_sched_init(&sched);
	rep.ctx = ctx;
	for (;;) {
		opt = cli_getopt(ctx, &g, load_opts);
		if (opt == CLI_OPT_END)
			break;
		if (opt == CLI_OPT_ARG) {
			ret = cli_usage_error(ctx, "unexpected argument '%s'",
				g.value);
			goto out;
		}
		if (opt < 0) {
			ret = cli_opt_exit(opt);
			goto out;
		}
		if (opt == O_HEADER) {
			if (nheaders == LOADGEN_HEADERS_MAX) {
				ret = cli_usage_error(ctx,
					"more than %u --header options",
					LOADGEN_HEADERS_MAX);
				goto out;
			}
			headers[nheaders++] = g.value;
			continue;
		}
		val[opt] = g.value;
	}
	ret = CLI_EXIT_USAGE;
	if (val[O_URL] == NULL)
		val[O_URL] = ctx->url; /* `mdscale --url URL load ...` */
	if (val[O_URL] == NULL) {
		cli_usage_error(ctx, "missing --url");
		goto out;
	}
	if (val[O_SCHEDULE] != NULL &&
	    (val[O_RATE] != NULL || val[O_DURATION] != NULL)) {
		cli_usage_error(ctx, "--schedule gives the rates: it excludes "
			"--rate and --duration");
		goto out;
	}
	if (val[O_SCHEDULE] == NULL && val[O_RATE] == NULL) {
		cli_usage_error(ctx, "missing --rate (or --schedule)");
		goto out;
	}
	if ((val[O_RATE] != NULL && parse_double(ctx, "rate", val[O_RATE], 0,
		     LOADGEN_RATE_MAX, &rate) != 0) ||
	    (val[O_DURATION] != NULL && parse_double(ctx, "duration",
		     val[O_DURATION], 0, LOADGEN_SECONDS_MAX, &duration) != 0) ||
	    (val[O_TIMEOUT] != NULL && parse_double(ctx, "timeout",
		     val[O_TIMEOUT], 0, TIMEOUT_MAX_S, &timeout) != 0) ||
	    (val[O_CONNECTIONS] != NULL && cli_parse_long(ctx, "connections",
		     val[O_CONNECTIONS], 1, LOADGEN_CONN_MAX, &conns) != 0))
		goto out;
	if (val[O_SCHEDULE] != NULL) {
		ret = read_file("schedule", val[O_SCHEDULE], SCHED_FILE_MAX,
			&text);
		if (ret != 0)
			goto out;
		rc = loadgen_sched_parse(&sched, text.data, text.len, diag,
			sizeof diag);
		if (rc != 0) {
			ret = cli_usage_error(ctx, "--schedule %s: %s",
				val[O_SCHEDULE], diag);
			goto out;
		}
	} else if (loadgen_sched_add(&sched, duration, rate, rate, diag,
			   sizeof diag) != 0) {
		ret = cli_usage_error(ctx, "%s", diag);
		goto out;
	}
	if (val[O_BODY] != NULL) {
		ret = read_file("body", val[O_BODY], BODY_FILE_MAX, &body);
		if (ret != 0)
			goto out;
	}
	o.url = val[O_URL];
	o.method = val[O_METHOD];
	o.headers = headers;
	o.nheaders = nheaders;
	o.body = body.data;
	o.body_len = body.len;
	o.sched = &sched;
	o.connections = (unsigned)conns;
	o.timeout_ms = (uint64_t)llround(timeout * 1000.0);
	if (o.timeout_ms == 0)
		o.timeout_ms = 1;
	o.on_second = on_second;
	o.arg = &rep;
	fflush(stdout);
	rc = loadgen_run(&o, &res, diag, sizeof diag);
	if (rc == MDS_E_INVAL || rc == MDS_E_LIMIT) {
		ret = cli_usage_error(ctx, "%s", diag);
		goto out;
	}
	if (rc != 0) {
		ret = cli_fail("%s", diag);
		goto out;
	}
	lat_of(res.lat, &lat);
	if (cli_structured(ctx))
		print_json(&rep, &o, &res, &lat);
	else
		print_table(&o, &res, &lat);
	ret = CLI_EXIT_OK;
out:
	hdr_free(res.lat);
	free(rep.rows);
	buf_free(&body);
	buf_free(&text);
	loadgen_sched_free(&sched);
	return ret;
}
