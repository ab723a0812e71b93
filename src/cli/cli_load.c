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
 * --schedule takes either a steps file (loadgen.h) or a recorded trace in
 * one of the simulator's formats (sim/trace.h, read by the same reader:
 * `mdscale simulate` and `mdscale load` replay the same files), turned into
 * arrivals by load_trace.h.
 *
 * Exit: 0 once the run completed (failed requests are in the report, not in
 * the status), 1 when something stopped it (a file that cannot be read or
 * a trace that does not parse, a host that does not resolve), 2 for a
 * usage error.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/load_trace.h"
#include "cli/loadgen.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/file.h"
#include "util/xalloc.h"

#define BODY_FILE_MAX (16u << 20)
#define SCHED_FILE_MAX (1u << 20)
#define TRACE_FILE_MAX (512u << 20) /* as `mdscale simulate` reads */
#define DEFAULT_DURATION_S 10.0
#define DEFAULT_CONNECTIONS 64
#define DEFAULT_TIMEOUT_S 10.0
#define TIMEOUT_MAX_S 3600.0
#define ROWS_MAX 100000u /* seconds kept for the JSON report */

enum {
	O_URL, O_RATE, O_DURATION, O_SCHEDULE, O_BODY, O_METHOD, O_HEADER,
	O_CONNECTIONS, O_TIMEOUT, O_FORMAT, O_COMPRESS, O_SCALE, O_START,
	O_COST_INSTANCES,
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
	[O_FORMAT] = {"format", 1},
	[O_COMPRESS] = {"compress", 1},
	[O_SCALE] = {"scale", 1},
	[O_START] = {"start", 1},
	[O_COST_INSTANCES] = {"cost-instances", 1},
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

/* A trace given to --schedule, for the report; bodies with
 * --cost-instances. */
struct replay {
	int on;
	const char *format;
	size_t source_records, requests;
	double compress, scale, start_s, seconds;
	unsigned cost_instances;
	uint64_t instances;
	struct buf bodies[LOAD_TRACE_INSTANCES_MAX];
	struct loadgen_body body_refs[LOAD_TRACE_INSTANCES_MAX];
	int nbodies;
};

/* Whether a --schedule file is a steps file (loadgen.h) rather than a
 * trace: its first record is "ramp ..." or two numbers apart by blanks. */
static int looks_like_steps(const char *text, size_t len)
{
	size_t i = 0, ntok = 0, start;

	while (i < len) {
		while (i < len && (text[i] == ' ' || text[i] == '\t' ||
				   text[i] == '\r'))
			i++;
		if (i < len && text[i] == '\n') {
			i++;
			continue;
		}
		if (i < len && text[i] == '#') {
			while (i < len && text[i] != '\n')
				i++;
			continue;
		}
		break;
	}
	if (i + 4 <= len && memcmp(text + i, "ramp", 4) == 0)
		return 1;
	while (i < len && text[i] != '\n' && text[i] != '#') {
		if (text[i] == ',')
			return 0;
		if (text[i] == ' ' || text[i] == '\t' || text[i] == '\r') {
			i++;
			continue;
		}
		start = i;
		while (i < len && text[i] != ' ' && text[i] != '\t' &&
		       text[i] != '\r' && text[i] != '\n' && text[i] != '#' &&
		       text[i] != ',')
			i++;
		if (i > start)
			ntok++;
	}
	return ntok == 2;
}

/* The trace-only options, when given with a steps file, are an error. */
static int steps_only(struct cli_ctx *ctx, const char *const *val)
{
	static const int trace_opts[] = { O_COMPRESS, O_SCALE, O_START,
					  O_COST_INSTANCES, O_DURATION };
	size_t i;

	for (i = 0; i < sizeof trace_opts / sizeof trace_opts[0]; i++)
		if (val[trace_opts[i]] != NULL)
			return cli_usage_error(ctx, "--%s applies to a trace, "
				"and --schedule %s is a steps file",
				load_opts[trace_opts[i]].name, val[O_SCHEDULE]);
	return 0;
}

/* Reads the trace options into *topts and *lo. */
static int trace_options(struct cli_ctx *ctx, const char *const *val,
	struct trace_opts *topts, struct load_trace_opts *lo)
{
	long n = 0;

	if (val[O_FORMAT] != NULL &&
	    trace_format_parse(val[O_FORMAT], &topts->format) != 0)
		return cli_usage_error(ctx, "--format: auto, steps, azure, "
			"times or rates, not '%s'", val[O_FORMAT]);
	if ((val[O_COMPRESS] != NULL && parse_double(ctx, "compress",
		     val[O_COMPRESS], 0, TRACE_COMPRESS_MAX,
		     &topts->compress) != 0) ||
	    (val[O_SCALE] != NULL && parse_double(ctx, "scale", val[O_SCALE],
		     0, TRACE_SCALE_MAX, &topts->scale) != 0) ||
	    (val[O_DURATION] != NULL && parse_double(ctx, "duration",
		     val[O_DURATION], 0, LOADGEN_SECONDS_MAX,
		     &lo->duration_s) != 0) ||
	    (val[O_START] != NULL && parse_double(ctx, "start",
		     val[O_START], -HUGE_VAL, LOADGEN_SECONDS_MAX * 1000,
		     &lo->start_s) != 0) ||
	    (val[O_COST_INSTANCES] != NULL && cli_parse_long(ctx,
		     "cost-instances", val[O_COST_INSTANCES], 1,
		     LOAD_TRACE_INSTANCES_MAX, &n) != 0))
		return CLI_EXIT_USAGE;
	if (lo->start_s < 0)
		return cli_usage_error(ctx, "--start must be 0 or more, not %s",
			val[O_START]);
	if (n > 0 && val[O_BODY] == NULL)
		return cli_usage_error(ctx, "--cost-instances needs --body: "
			"the model server's request, whose first instance is "
			"repeated");
	lo->cost_instances = (unsigned)n;
	return 0;
}

/*
 * Turns the trace in text into the schedule: the simulator's reader, then
 * the slice and the costs (load_trace.h). Errors are one line, as
 * `mdscale simulate` prints them.
 */
static int sched_from_trace(struct cli_ctx *ctx, const char *const *val,
	const char *text, size_t len, struct loadgen_sched *sched,
	struct replay *rp)
{
	struct trace_opts topts = { TRACE_AUTO, 0, 0 };
	struct load_trace_opts lo = { 0, 0, 0 };
	struct trace *t = NULL;
	char diag[512];
	int rc;

	rc = trace_options(ctx, val, &topts, &lo);
	if (rc != 0)
		return rc;
	rc = trace_parse(text, len, &topts, &t, diag, sizeof diag);
	if (rc != 0)
		return cli_fail("--schedule %s: %s", val[O_SCHEDULE], diag);
	rc = load_trace_sched(t, &lo, sched, &rp->instances, diag,
		sizeof diag);
	if (rc == 0) {
		rp->on = 1;
		rp->format = trace_format_name(t->format);
		rp->source_records = t->source_records;
		rp->requests = sched->ndue;
		rp->compress = t->compress;
		rp->scale = t->scale;
		rp->start_s = lo.start_s;
		rp->seconds = sched->seconds;
		rp->cost_instances = lo.cost_instances;
	}
	trace_free(t);
	if (rc != 0)
		return cli_fail("--schedule %s: %s", val[O_SCHEDULE], diag);
	return 0;
}

/* A steps file (loadgen.h) as the schedule. */
static int sched_from_steps(struct cli_ctx *ctx, const char *const *val,
	const char *text, size_t len, struct loadgen_sched *sched)
{
	char diag[512];
	int rc = steps_only(ctx, val);

	if (rc != 0)
		return rc;
	if (len > SCHED_FILE_MAX)
		return cli_usage_error(ctx, "--schedule %s: a steps file is at "
			"most %u bytes", val[O_SCHEDULE], SCHED_FILE_MAX);
	if (loadgen_sched_parse(sched, text, len, diag, sizeof diag) != 0)
		return cli_usage_error(ctx, "--schedule %s: %s",
			val[O_SCHEDULE], diag);
	return 0;
}

/* Reads --schedule FILE: a steps file, or a trace. */
static int sched_from_file(struct cli_ctx *ctx, const char *const *val,
	struct loadgen_sched *sched, struct replay *rp)
{
	const char *fmt = val[O_FORMAT];
	char diag[512], *text = NULL;
	size_t len;
	int rc, steps;

	rc = file_read_all(val[O_SCHEDULE], TRACE_FILE_MAX, &text, &len, diag,
		sizeof diag);
	if (rc != 0)
		return cli_fail("--schedule %s: %s", val[O_SCHEDULE],
			rc == MDS_E_NOTFOUND ? "no such file" : diag);
	steps = fmt == NULL || strcmp(fmt, "auto") == 0 ?
		looks_like_steps(text, len) : strcmp(fmt, "steps") == 0;
	if (!steps)
		rc = sched_from_trace(ctx, val, text, len, sched, rp);
	else
		rc = sched_from_steps(ctx, val, text, len, sched);
	free(text);
	return rc;
}

/* The schedule: --rate for --duration, or --schedule FILE; the options
 * that go with one and not the other are refused. */
static int make_sched(struct cli_ctx *ctx, const char *const *val,
	struct loadgen_sched *sched, struct replay *rp)
{
	double rate = 0, duration = DEFAULT_DURATION_S;
	char diag[256];
	int opt;

	if (val[O_SCHEDULE] != NULL) {
		if (val[O_RATE] != NULL)
			return cli_usage_error(ctx, "--schedule gives the "
				"rates: it excludes --rate");
		return sched_from_file(ctx, val, sched, rp);
	}
	for (opt = O_FORMAT; opt <= O_COST_INSTANCES; opt++)
		if (val[opt] != NULL)
			return cli_usage_error(ctx, "--%s applies to "
				"--schedule", load_opts[opt].name);
	if (val[O_RATE] == NULL)
		return cli_usage_error(ctx, "missing --rate (or --schedule)");
	if (parse_double(ctx, "rate", val[O_RATE], 0, LOADGEN_RATE_MAX,
		    &rate) != 0 ||
	    (val[O_DURATION] != NULL && parse_double(ctx, "duration",
		     val[O_DURATION], 0, LOADGEN_SECONDS_MAX, &duration) != 0))
		return CLI_EXIT_USAGE;
	if (loadgen_sched_add(sched, duration, rate, rate, diag,
		    sizeof diag) != 0)
		return cli_usage_error(ctx, "%s", diag);
	return 0;
}

/* The bodies --cost-instances sends, from --body's first instance. */
static int replay_bodies(struct replay *rp, const struct buf *body,
	const char *path)
{
	char diag[256];
	unsigned k;

	if (load_trace_bodies(body->data, body->len, rp->bodies, diag,
		    sizeof diag) != 0)
		return cli_fail("--body %s: %s", path, diag);
	rp->nbodies = LOAD_TRACE_INSTANCES_MAX;
	for (k = 0; k < LOAD_TRACE_INSTANCES_MAX; k++) {
		rp->body_refs[k].data = rp->bodies[k].data;
		rp->body_refs[k].len = rp->bodies[k].len;
	}
	return 0;
}

static json_t *json_replay(const struct replay *rp)
{
	json_t *o = json_object();

	json_object_set_new(o, "format", json_string(rp->format));
	json_object_set_new(o, "records",
		json_integer((json_int_t)rp->source_records));
	json_object_set_new(o, "requests",
		json_integer((json_int_t)rp->requests));
	json_object_set_new(o, "compress", json_real(rp->compress));
	json_object_set_new(o, "scale", json_real(rp->scale));
	json_object_set_new(o, "start_s", json_real(rp->start_s));
	json_object_set_new(o, "seconds", json_real(rp->seconds));
	json_object_set_new(o, "cost", json_string(rp->cost_instances > 0 ?
		"instances" : "ignored"));
	if (rp->cost_instances > 0) {
		json_object_set_new(o, "cost_instances",
			json_integer(rp->cost_instances));
		json_object_set_new(o, "instances",
			json_integer((json_int_t)rp->instances));
	}
	return o;
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
	const struct loadgen_result *res, const struct lat *l,
	const struct replay *rp)
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
	if (rp->on)
		json_object_set_new(j, "trace", json_replay(rp));
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
	const struct loadgen_result *res, const struct lat *l,
	const struct replay *rp)
{
	const struct loadgen_counts *c = &res->total;
	unsigned i;

	printf("target      %s (%s, %u connections, timeout %.3g s)\n", o->url,
		o->method != NULL ? o->method : o->body_len > 0 ? "POST" : "GET",
		o->connections, (double)o->timeout_ms / 1000.0);
	printf("schedule    %.1f s, %.0f requests (%.1f/s)\n",
		o->sched->seconds, o->sched->requests,
		o->sched->requests / o->sched->seconds);
	if (rp->on) {
		printf("trace       %s, %zu of %zu records from %g s "
			"(compressed %gx, rate scaled %gx), cost ",
			rp->format, rp->requests, rp->source_records,
			rp->start_s, rp->compress, rp->scale);
		if (rp->cost_instances > 0)
			printf("as instances (%u a unit, %llu in all)\n",
				rp->cost_instances,
				(unsigned long long)rp->instances);
		else
			printf("ignored\n");
	}
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

/* Runs the load and prints the report; returns the exit status. */
static int run_and_report(struct cli_ctx *ctx, const struct loadgen_opts *o,
	struct report *rep, const struct replay *rp)
{
	struct loadgen_result res;
	struct lat lat;
	char diag[512];
	int rc, ret = CLI_EXIT_OK;

	fflush(stdout);
	rc = loadgen_run(o, &res, diag, sizeof diag);
	if (rc == MDS_E_INVAL || rc == MDS_E_LIMIT) {
		ret = cli_usage_error(ctx, "%s", diag);
	} else if (rc != 0) {
		ret = cli_fail("%s", diag);
	} else {
		lat_of(res.lat, &lat);
		if (cli_structured(ctx))
			print_json(rep, o, &res, &lat, rp);
		else
			print_table(o, &res, &lat, rp);
	}
	hdr_free(res.lat);
	return ret;
}

int cli_load(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cli_getopt g = {.argc = argc, .argv = argv, .index = 1};
	const char *val[O_COST_INSTANCES + 1] = {NULL};
	const char *headers[LOADGEN_HEADERS_MAX];
	struct loadgen_opts o;
	struct loadgen_sched sched;
	struct report rep;
	struct replay rp;
	struct buf body;
	double timeout = DEFAULT_TIMEOUT_S;
	long conns = DEFAULT_CONNECTIONS;
	size_t nheaders = 0;
	int opt, ret;

	memset(&o, 0, sizeof o);
	memset(&rep, 0, sizeof rep);
	memset(&rp, 0, sizeof rp);
	buf_init(&body, 0);
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
	if ((val[O_TIMEOUT] != NULL && parse_double(ctx, "timeout",
		     val[O_TIMEOUT], 0, TIMEOUT_MAX_S, &timeout) != 0) ||
	    (val[O_CONNECTIONS] != NULL && cli_parse_long(ctx, "connections",
		     val[O_CONNECTIONS], 1, LOADGEN_CONN_MAX, &conns) != 0))
		goto out;
	ret = make_sched(ctx, val, &sched, &rp);
	if (ret != 0)
		goto out;
	if (val[O_BODY] != NULL) {
		ret = read_file("body", val[O_BODY], BODY_FILE_MAX, &body);
		if (ret != 0)
			goto out;
	}
	if (rp.cost_instances > 0) {
		ret = replay_bodies(&rp, &body, val[O_BODY]);
		if (ret != 0)
			goto out;
		o.bodies = rp.body_refs;
		o.nbodies = (size_t)rp.nbodies;
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
	ret = run_and_report(ctx, &o, &rep, &rp);
out:
	free(rep.rows);
	buf_free(&body);
	for (opt = 0; opt < rp.nbodies; opt++)
		buf_free(&rp.bodies[opt]);
	loadgen_sched_free(&sched);
	return ret;
}
