/*
 * cli_top.c - `mdscale top`: a live view of the daemon in the terminal,
 * refreshed every second (see docs/observability.md).
 *
 * Each refresh reads GET /v1/top (states, instance counts, the largest CPU
 * and memory sample per deployment, the gateway's raw counters, the firing
 * alarms) and the scaling history of the deployments shown. Request rates
 * and p50/p99 latencies come from the difference between two refreshes of
 * the gateway's counters and latency histogram, so they describe the last
 * second. Sparklines keep the last SPARK_N refreshes.
 *
 * The screen is drawn with plain ANSI escape codes (alternate screen, cursor
 * home, clear to end of line), sized for 80x24. The terminal is put in raw
 * mode (termios) so that 'q' quits at once; it is restored on every way
 * out, SIGINT and SIGTERM included. With --once, or when stdout is not a
 * terminal, one plain snapshot (two reads one second apart, no escape
 * codes) is printed instead.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/xalloc.h"

/* A deployment's STATE cell: IDLE for one ACTIVE at zero instances (scaled
 * to zero: requests wake it), not a broken one. */
static const char *top_state(const json_t *d)
{
	const char *st = cli_json_str(d, "lifecycleState");

	if (strcmp(st, "ACTIVE") == 0 &&
	    json_integer_value(json_object_get(d, "instanceCount")) == 0)
		return "IDLE";
	return st;
}

#define TOP_MAX_DEPS 32   /* deployments followed; the rest are counted */
#define TOP_NBUCKETS 16   /* as the daemon's latency histogram */
#define SPARK_N 60        /* refreshes kept for the sparklines */
#define SPARK_W 16        /* sparkline width on screen */
#define HISTORY_SHOWN 3   /* scaling decisions shown */
#define NAME_W 15

/* Set by the SIGINT and SIGTERM handlers: the one mutable global a signal
 * handler needs. */
static volatile sig_atomic_t top_stop;

/* What one deployment looked like at the previous refresh. */
struct dep_track {
	char id[64];
	int seen;                    /* present in the latest read */
	double t;                    /* when it was read, monotonic seconds */
	long long requests;
	long long hist[TOP_NBUCKETS];
	double rps;                  /* over the last interval; <0: unknown */
	double p50, p99;             /* seconds; <0: no requests */
	double cpu[SPARK_N], mem[SPARK_N], req[SPARK_N];
	size_t nspark;               /* samples in the rings, up to SPARK_N */
};

/* The orders of the deployment table: --sort, or 's' in the live view. */
enum top_sort { SORT_NAME, SORT_CPU, SORT_MEM, SORT_RPS, SORT_P99, SORT__N };

static const char *const sort_names[SORT__N] = { "name", "cpu", "mem", "rps",
						  "p99" };

struct top {
	struct cli_ctx *ctx;
	enum top_sort sort;
	const char *filter;          /* --filter: a part of name, state or
					shape; NULL shows all */
	int instances;               /* --instances (or 'i'): a row per
					instance instead of sparklines */
	struct dep_track deps[TOP_MAX_DEPS];
	size_t ndeps;
	double bounds[TOP_NBUCKETS]; /* seconds; the last is +Inf */
	int tty;
	int raw;                     /* the terminal is in raw mode */
	struct termios saved;
	char status[256];            /* the header's last error, if any */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct dep_track *track(struct top *t, const char *id)
{
	for (size_t i = 0; i < t->ndeps; i++)
		if (strcmp(t->deps[i].id, id) == 0)
			return &t->deps[i];
	if (t->ndeps == TOP_MAX_DEPS)
		return NULL;
	memset(&t->deps[t->ndeps], 0, sizeof(t->deps[0]));
	snprintf(t->deps[t->ndeps].id, sizeof(t->deps[0].id), "%s", id);
	t->deps[t->ndeps].requests = -1;
	t->deps[t->ndeps].rps = -1;
	t->deps[t->ndeps].p50 = t->deps[t->ndeps].p99 = -1;
	return &t->deps[t->ndeps++];
}

/* Appends one refresh to the sparkline rings, dropping the oldest. */
static void push(struct dep_track *k, double cpu, double mem, double req)
{
	if (k->nspark == SPARK_N) {
		memmove(k->cpu, k->cpu + 1, (SPARK_N - 1) * sizeof(double));
		memmove(k->mem, k->mem + 1, (SPARK_N - 1) * sizeof(double));
		memmove(k->req, k->req + 1, (SPARK_N - 1) * sizeof(double));
		k->nspark--;
	}
	k->cpu[k->nspark] = cpu;
	k->mem[k->nspark] = mem;
	k->req[k->nspark++] = req;
}

/*
 * The q-quantile of a histogram of counts per bucket (not cumulative),
 * interpolated linearly inside its bucket; the +Inf bucket answers its
 * lower bound. Returns -1 for an empty histogram.
 */
static double quantile(const double *bounds, const long long *counts,
		       double q)
{
	long long total = 0, cum = 0;
	double rank;

	for (size_t b = 0; b < TOP_NBUCKETS; b++)
		total += counts[b];
	if (total <= 0)
		return -1;
	rank = q * (double)total;
	for (size_t b = 0; b < TOP_NBUCKETS; b++) {
		double lo = b ? bounds[b - 1] : 0;

		if (counts[b] <= 0 || (double)(cum + counts[b]) < rank) {
			cum += counts[b];
			continue;
		}
		if (b == TOP_NBUCKETS - 1)
			return lo;
		return lo + (bounds[b] - lo) * (rank - (double)cum) /
				    (double)counts[b];
	}
	return bounds[TOP_NBUCKETS - 2];
}

/* Folds one read of GET /v1/top into the tracks. */
static void update(struct top *t, const json_t *doc, double when)
{
	const json_t *d, *v;
	size_t i, b;

	json_array_foreach(json_object_get(doc, "latencyBoundsSeconds"), i, v)
		if (i < TOP_NBUCKETS - 1)
			t->bounds[i] = json_number_value(v);
	t->bounds[TOP_NBUCKETS - 1] = INFINITY;
	for (i = 0; i < t->ndeps; i++)
		t->deps[i].seen = 0;
	json_array_foreach(json_object_get(doc, "deployments"), i, d) {
		struct dep_track *k = track(t, cli_json_str(d, "id"));
		long long req = json_integer_value(json_object_get(d,
								   "requests"));
		long long hist[TOP_NBUCKETS] = { 0 }, delta[TOP_NBUCKETS];
		const json_t *cpu = json_object_get(d, "cpuPercent");
		const json_t *mem = json_object_get(d, "memoryPercent");

		if (k == NULL)
			continue;
		json_array_foreach(json_object_get(d, "latencyHistogram"), b,
				   v)
			if (b < TOP_NBUCKETS)
				hist[b] = json_integer_value(v);
		k->seen = 1;
		if (k->requests >= 0 && when > k->t && req >= k->requests) {
			k->rps = (double)(req - k->requests) / (when - k->t);
			for (b = 0; b < TOP_NBUCKETS; b++)
				delta[b] = hist[b] - k->hist[b];
			k->p50 = quantile(t->bounds, delta, 0.5);
			k->p99 = quantile(t->bounds, delta, 0.99);
			push(k, json_is_number(cpu) ? json_number_value(cpu) : 0,
			     json_is_number(mem) ? json_number_value(mem) : 0,
			     k->rps);
		}
		k->requests = req;
		memcpy(k->hist, hist, sizeof(hist));
		k->t = when;
	}
}

/* ---- drawing ---- */

/* Writes s cut to w columns (bytes; names are ASCII) and padded. */
static void cell(FILE *out, const char *s, int w)
{
	int n = 0;

	for (; *s != '\0' && n < w; s++, n++)
		fputc((unsigned char)*s < 0x20 ? ' ' : *s, out);
	for (; n < w; n++)
		fputc(' ', out);
}

static void fmt_num(char *out, size_t n, double v, const char *fmt)
{
	if (v < 0 || isnan(v))
		snprintf(out, n, "-");
	else
		snprintf(out, n, fmt, v);
}

/* The largest of the last SPARK_W values, at least floor. */
static double spark_peak(const double *v, size_t n, double floor)
{
	double max = floor;

	for (size_t i = n > SPARK_W ? n - SPARK_W : 0; i < n; i++)
		if (v[i] > max)
			max = v[i];
	return max;
}

/* Draws the last SPARK_W values on an axis from 0 to max: 0-100 for a
 * utilization, so that a full bar always means 100%. */
static void spark(FILE *out, const double *v, size_t n, double max)
{
	static const char *const bars[8] = { "\u2581", "\u2582", "\u2583",
					      "\u2584", "\u2585", "\u2586",
					      "\u2587", "\u2588" };
	size_t from = n > SPARK_W ? n - SPARK_W : 0;

	for (size_t i = from; i < n; i++) {
		int k = (int)(v[i] / max * 7.0 + 0.5);

		fputs(bars[k < 0 ? 0 : k > 7 ? 7 : k], out);
	}
	for (size_t i = n - from; i < SPARK_W; i++)
		fputc(' ', out);
}

/* Ends a line: in the live view, also clears what the last frame left. */
static void eol(const struct top *t, FILE *out)
{
	fputs(t->tty ? "\033[K\n" : "\n", out);
}

/* The scaling decisions of the deployments shown, newest last. */
static json_t *decisions(struct top *t, const json_t *deps)
{
	json_t *all = json_array(), *resp, *x;
	const json_t *d;
	size_t i, j;
	long status;

	json_array_foreach(deps, i, d) {
		char *path = cli_item_path("deployments", cli_json_str(d, "id"),
					   "/scaling-history");

		resp = NULL;
		if (i < 8 &&
		    cli_request(t->ctx, "GET", path, NULL, &status, &resp) ==
			    0 &&
		    status == 200) {
			json_t *items = json_object_get(resp, "items");
			size_t n = json_array_size(items);

			for (j = n > HISTORY_SHOWN ? n - HISTORY_SHOWN : 0;
			     j < n; j++) {
				x = json_array_get(items, j);
				json_object_set_new(
					x, "name",
					json_string(cli_json_str(
						d, "displayName")));
				json_array_append(all, x);
			}
		}
		json_decref(resp);
		free(path);
	}
	return all;
}

/* Orders scaling decisions by their time: RFC 3339 strings of one format
 * compare as text; numbers (epoch milliseconds) as numbers. */
static int by_time(const void *a, const void *b)
{
	const json_t *x = json_object_get(*(json_t *const *)a, "time");
	const json_t *y = json_object_get(*(json_t *const *)b, "time");

	if (json_is_number(x) && json_is_number(y))
		return (json_number_value(x) > json_number_value(y)) -
		       (json_number_value(x) < json_number_value(y));
	return strcmp(json_is_string(x) ? json_string_value(x) : "",
		      json_is_string(y) ? json_string_value(y) : "");
}

/* One row of the deployment table, with what it sorts by. */
struct row {
	const json_t *d;
	struct dep_track *k;
	double key;
};

static double num_or(const json_t *d, const char *field, double dflt)
{
	const json_t *v = json_object_get(d, field);

	return json_is_number(v) ? json_number_value(v) : dflt;
}

/* Largest first; ties (and SORT_NAME) by name. */
static int by_key(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? 1 : -1;
	return strcmp(cli_json_str(x->d, "displayName"),
		      cli_json_str(y->d, "displayName"));
}

static int matches(const char *filter, const json_t *d)
{
	return filter == NULL ||
	       strstr(cli_json_str(d, "displayName"), filter) != NULL ||
	       strstr(cli_json_str(d, "lifecycleState"), filter) != NULL ||
	       strstr(cli_json_str(d, "instanceShapeName"), filter) != NULL;
}

/* The deployments to show, filtered and sorted, into rows (at most
 * TOP_MAX_DEPS); returns how many. */
static size_t table_rows_of(struct top *t, const json_t *deps,
			    struct row *rows)
{
	const json_t *d;
	size_t i, n = 0;

	json_array_foreach(deps, i, d) {
		struct row *r;

		if (n == TOP_MAX_DEPS || !matches(t->filter, d))
			continue;
		r = &rows[n++];
		r->d = d;
		r->k = track(t, cli_json_str(d, "id"));
		switch (t->sort) {
		case SORT_CPU: r->key = num_or(d, "cpuPercent", -1); break;
		case SORT_MEM: r->key = num_or(d, "memoryPercent", -1); break;
		case SORT_RPS: r->key = r->k ? r->k->rps : -1; break;
		case SORT_P99: r->key = r->k ? r->k->p99 : -1; break;
		default: r->key = 0; break;
		}
	}
	qsort(rows, n, sizeof(rows[0]), by_key);
	return n;
}

/* The per-instance rows of one deployment; returns how many. */
static size_t draw_instances(const struct top *t, const json_t *d, FILE *out)
{
	const json_t *in;
	size_t i;

	json_array_foreach(json_object_get(d, "instances"), i, in) {
		char cpu[16], mem[16];

		fmt_num(cpu, sizeof(cpu), num_or(in, "cpuPercent", -1), "%.1f");
		fmt_num(mem, sizeof(mem), num_or(in, "memoryPercent", -1),
			"%.1f");
		fputs("  ", out);
		cell(out, cli_json_str(in, "id"), NAME_W + 9);
		fputc(' ', out);
		cell(out, cli_json_str(in, "state"), 11);
		fprintf(out, "          %5s %5s  restarts %lld", cpu, mem,
			(long long)json_integer_value(
				json_object_get(in, "restarts")));
		eol(t, out);
	}
	return i;
}

static void draw(struct top *t, const json_t *doc, FILE *out, int rows)
{
	const json_t *deps = json_object_get(doc, "deployments"), *d, *a;
	json_t *dec = decisions(t, deps), *x, *sorted[HISTORY_SHOWN * 8];
	struct row rows_shown[TOP_MAX_DEPS];
	size_t i, n, shown = 0, ndec = 0;
	char when[32], lag[32], head[512];
	const char *url = t->ctx->url_owned ? t->ctx->url_owned : "";
	time_t now = time(NULL);
	double up;
	struct tm tm;
	/* What is left once the header (2 lines), the table head, a blank,
	 * the alarms, the decisions (1 + HISTORY_SHOWN), a "more" line and
	 * the footer are counted; a deployment takes 2 lines when live. */
	int table_rows = rows - 2 - 1 - 1 - 1 - (1 + HISTORY_SHOWN) - 1 - 1;

	if (strncmp(url, "http://", 7) == 0)
		url += 7;
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	snprintf(lag, sizeof(lag), "%.1f ms",
		 json_number_value(json_object_get(doc, "loopLagSeconds")) *
			 1e3);
	if (t->tty)
		fputs("\033[H", out);
	up = (double)now -
	     json_number_value(json_object_get(doc, "startTimeSeconds"));
	snprintf(head, sizeof(head),
		 "mdscale top  %.60s  %s %.200s  up %dh%02dm  loop lag %s  %s UTC",
		 url, t->status[0] ? "ERROR:" : cli_json_str(doc, "status"),
		 t->status[0] ? t->status : cli_json_str(doc, "version"),
		 (int)(up / 3600), (int)(up / 60) % 60, lag, when);
	cell(out, head, 79);
	eol(t, out);
	eol(t, out);
	if (t->tty)
		fputs("\033[7m", out);
	fprintf(out, "%-*s %-8s %-11s %-8s %5s %5s %7s %6s %6s", NAME_W,
		"NAME", "STATE", "READY/COUNT", "SHAPE", "CPU%", "MEM%",
		"REQ/S", "P50ms", "P99ms");
	if (t->tty)
		fputs("\033[0m", out);
	eol(t, out);
	n = table_rows_of(t, deps, rows_shown);
	for (i = 0; i < n; i++) {
		struct dep_track *k = rows_shown[i].k;
		char rc[24], cpu[16], mem[16], rps[16], p50[16], p99[16];

		d = rows_shown[i].d;
		if ((int)shown >= table_rows / (t->tty ? 2 : 1))
			break;
		snprintf(rc, sizeof(rc), "%lld/%lld",
			 (long long)json_integer_value(json_object_get(d,
								       "ready")),
			 (long long)json_integer_value(
				 json_object_get(d, "instanceCount")));
		fmt_num(cpu, sizeof(cpu),
			json_is_number(json_object_get(d, "cpuPercent"))
				? json_number_value(json_object_get(
					  d, "cpuPercent"))
				: -1,
			"%.1f");
		fmt_num(mem, sizeof(mem),
			json_is_number(json_object_get(d, "memoryPercent"))
				? json_number_value(json_object_get(
					  d, "memoryPercent"))
				: -1,
			"%.1f");
		fmt_num(rps, sizeof(rps), k ? k->rps : -1, "%.1f");
		fmt_num(p50, sizeof(p50), k && k->p50 >= 0 ? k->p50 * 1e3 : -1,
			"%.1f");
		fmt_num(p99, sizeof(p99), k && k->p99 >= 0 ? k->p99 * 1e3 : -1,
			"%.1f");
		cell(out, cli_json_str(d, "displayName"), NAME_W);
		fputc(' ', out);
		cell(out, top_state(d), 8);
		fprintf(out, " %-11s ", rc);
		cell(out, cli_json_str(d, "instanceShapeName"), 8);
		fprintf(out, " %5s %5s %7s %6s %6s", cpu, mem, rps, p50, p99);
		eol(t, out);
		if (t->instances) {
			shown += draw_instances(t, d, out);
		} else if (t->tty && k != NULL) {
			double peak = spark_peak(k->req, k->nspark, 1.0);

			fputs("  cpu ", out);
			spark(out, k->cpu, k->nspark, 100.0);
			fputs(" mem ", out);
			spark(out, k->mem, k->nspark, 100.0);
			fprintf(out, " req/s (peak %.0f) ", peak);
			spark(out, k->req, k->nspark, peak);
			eol(t, out);
		}
		shown++;
	}
	if (shown < json_array_size(deps)) {
		fprintf(out, "(%zu more deployments%s)",
			json_array_size(deps) - shown,
			t->filter != NULL ? ", filtered or not shown" : "");
		eol(t, out);
	}
	eol(t, out);
	fputs("FIRING ALARMS: ", out);
	if (json_array_size(json_object_get(doc, "firingAlarms")) == 0)
		fputs("none", out);
	json_array_foreach(json_object_get(doc, "firingAlarms"), i, a) {
		if (i > 0)
			fputs(", ", out);
		if (i == 3) {
			fprintf(out, "+%zu more",
				json_array_size(json_object_get(
					doc, "firingAlarms")) -
					3);
			break;
		}
		fprintf(out, "%.30s (%s)", cli_json_str(a, "displayName"),
			cli_json_str(a, "severity"));
	}
	eol(t, out);
	fputs("LAST SCALING DECISIONS:", out);
	eol(t, out);
	json_array_foreach(dec, i, x) {
		if (ndec < sizeof(sorted) / sizeof(sorted[0]))
			sorted[ndec++] = x;
	}
	qsort(sorted, ndec, sizeof(sorted[0]), by_time);
	if (ndec == 0) {
		fputs("  none", out);
		eol(t, out);
	}
	for (i = ndec > HISTORY_SHOWN ? ndec - HISTORY_SHOWN : 0; i < ndec;
	     i++) {
		char buf[160];

		snprintf(buf, sizeof(buf), "  %.19s %-12.12s %-10s %s",
			 cli_json_str(sorted[i], "time"),
			 cli_json_str(sorted[i], "name"),
			 cli_json_str(sorted[i], "action"),
			 cli_json_str(sorted[i], "reason"));
		cell(out, buf, 79);
		eol(t, out);
	}
	json_decref(dec);
	if (t->tty) {
		/* Clear what a longer previous frame left below. */
		fputs("\033[J", out);
		fprintf(out, "\033[%d;1H\033[7m q: quit  s: sort (by %s)  "
			"i: instances \033[0m", rows, sort_names[t->sort]);
	}
	fflush(out);
}

/* ---- the terminal ---- */

static void on_stop(int sig)
{
	(void)sig;
	top_stop = 1;
}

static void term_restore(struct top *t)
{
	if (!t->tty)
		return;
	/* Cursor shown again, alternate screen left. */
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	if (t->raw)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &t->saved);
	t->raw = 0;
}

static void term_setup(struct top *t)
{
	struct sigaction sa;
	struct termios raw;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: the wait in poll() ends at the signal. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t->saved) == 0) {
		raw = t->saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0)
			t->raw = 1;
	}
	fputs("\033[?1049h\033[?25l\033[2J", stdout);
	fflush(stdout);
}

static int term_rows(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row >= 10)
		return ws.ws_row;
	return 24;
}

/* Waits up to ms for a key; returns 1 when it is time to quit. */
static int wait_key(struct top *t, int ms)
{
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	double until = now_s() + ms / 1e3;
	char c;

	while (!top_stop) {
		int left = (int)((until - now_s()) * 1e3);

		if (left <= 0)
			return 0;
		if (!t->raw) {
			/* No keyboard: sleep, still woken by a signal. */
			poll(NULL, 0, left);
			continue;
		}
		if (poll(&p, 1, left) <= 0)
			continue;
		if (read(STDIN_FILENO, &c, 1) != 1)
			return 0; /* end of input: keep refreshing */
		if (c == 'q' || c == 'Q')
			return 1;
		if (c == 's' || c == 'S') {
			t->sort = (t->sort + 1) % SORT__N;
			return 0; /* redraw at once */
		}
		if (c == 'i' || c == 'I') {
			t->instances = !t->instances;
			return 0;
		}
	}
	return 1;
}

/* One read of GET /v1/top into *doc; 0, or the exit status (printed only
 * when quiet is 0; otherwise kept in t->status). */
static int fetch(struct top *t, json_t **doc, int quiet)
{
	long status;
	int rc;

	*doc = NULL;
	if (!quiet)
		return cli_call(t->ctx, "GET", "/v1/top", NULL, doc);
	rc = cli_request(t->ctx, "GET", "/v1/top", NULL, &status, doc);
	if (rc != 0 || status != 200) {
		snprintf(t->status, sizeof(t->status), "%s",
			 rc != 0 ? t->ctx->diag : "GET /v1/top failed");
		json_decref(*doc);
		*doc = NULL;
		return CLI_EXIT_FAIL;
	}
	t->status[0] = '\0';
	return 0;
}

int cli_top(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = { { "once", 0 }, { "sort", 1 },
					       { "filter", 1 }, { "instances", 0 },
					       { NULL, 0 } };
	struct cli_getopt g = { .argc = argc, .argv = argv, .index = 1 };
	struct top *t = xcalloc(1, sizeof(*t));
	json_t *doc = NULL, *last = NULL;
	int once = 0, rc = CLI_EXIT_OK, o;

	t->ctx = ctx;
	while ((o = cli_getopt(ctx, &g, opts)) != CLI_OPT_END) {
		if (o == 0) {
			once = 1;
		} else if (o == 1) {
			size_t k;

			for (k = 0; k < SORT__N; k++)
				if (strcmp(g.value, sort_names[k]) == 0)
					break;
			if (k == SORT__N) {
				rc = cli_usage_error(ctx, "--sort: one of name, "
					"cpu, mem, rps, p99, not '%s'", g.value);
				goto out;
			}
			t->sort = (enum top_sort)k;
		} else if (o == 2) {
			t->filter = g.value;
		} else if (o == 3) {
			t->instances = 1;
		} else if (o == CLI_OPT_ARG) {
			rc = cli_usage_error(ctx, "unexpected argument '%s'",
					     g.value);
			goto out;
		} else if (o < 0) {
			rc = cli_opt_exit(o);
			goto out;
		}
	}
	t->tty = !once && isatty(STDOUT_FILENO);
	if (!t->tty) {
		/* Two reads a second apart give the rates. */
		rc = fetch(t, &doc, 0);
		if (rc != 0)
			goto out;
		update(t, doc, now_s());
		json_decref(doc);
		doc = NULL;
		sleep(1);
		rc = fetch(t, &doc, 0);
		if (rc != 0)
			goto out;
		update(t, doc, now_s());
		draw(t, doc, stdout, 24);
		goto out;
	}
	term_setup(t);
	while (!top_stop) {
		if (fetch(t, &doc, 1) == 0) {
			update(t, doc, now_s());
			json_decref(last);
			last = doc;
			doc = NULL;
		}
		if (last != NULL)
			draw(t, last, stdout, term_rows());
		else
			printf("\033[Hmdscale top: %s\033[K", t->status);
		fflush(stdout);
		if (wait_key(t, 1000))
			break;
	}
	term_restore(t);
out:
	json_decref(doc);
	json_decref(last);
	free(t);
	return rc;
}
