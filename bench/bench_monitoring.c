/*
 * bench_monitoring.c - throughput of the monitoring core on one core.
 *
 *   append, resolved series   tsdb_series_append() round-robin over 1000
 *                             series, 10 samples/s each (rings full and
 *                             evicting). Target: >= 5 M samples/s.
 *   append, by name           tsdb_append() with 2 dimensions, same load.
 *   alarm eval                10,000 alarms CpuUtilization[1m]{resourceId =
 *                             "md-N"}.max() > 80 over 10,000 series of 60
 *                             raw samples. Target: < 20 ms per round.
 *
 * Usage: bench_monitoring [-q] [-n runs]. -q prints one line per figure.
 * Exits 1 if a target is missed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alarm.h"
#include "core/mql.h"
#include "core/tsdb.h"
#include "util/xalloc.h"

#define NS "oci_datascience_modeldeploy"
#define APPEND_SERIES 1000
#define APPEND_STEPS 20000    /* 20 M samples through the fast path */
#define BYNAME_STEPS 2000     /* 2 M samples by name */
#define ALARMS 10000
#define SAMPLES 60
#define NOW 1700000000000LL

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static struct tsdb *new_db(void)
{
	struct tsdb *db;
	char diag[128];

	if (tsdb_create(NULL, &db, diag, sizeof(diag)) != 0) {
		fprintf(stderr, "tsdb_create: %s\n", diag);
		exit(2);
	}
	return db;
}

static double bench_fast_path(void)
{
	struct tsdb *db = new_db();
	struct tsdb_series **s = xmalloc(APPEND_SERIES * sizeof(*s));
	char rid[32];
	double t0, secs;
	int bad = 0;

	for (int i = 0; i < APPEND_SERIES; i++) {
		struct tsdb_dim d[2] = { { "resourceId", rid },
					 { "instanceId", "i0" } };

		snprintf(rid, sizeof(rid), "md-%d", i);
		tsdb_series_get_or_create(db, NS, "CpuUtilization", d, 2, &s[i],
					  NULL, 0);
	}
	t0 = now_s();
	for (int k = 0; k < APPEND_STEPS; k++) {
		int64_t t = NOW + (int64_t)k * 100;

		for (int i = 0; i < APPEND_SERIES; i++)
			bad |= tsdb_series_append(s[i], t, (double)((k + i) % 100));
	}
	secs = now_s() - t0;
	if (bad)
		fprintf(stderr, "fast path: an append failed\n");
	free(s);
	tsdb_free(db);
	return (double)APPEND_SERIES * APPEND_STEPS / secs;
}

static double bench_by_name(void)
{
	struct tsdb *db = new_db();
	char (*rid)[32] = xmalloc(APPEND_SERIES * sizeof(*rid));
	double t0, secs;
	int bad = 0;

	for (int i = 0; i < APPEND_SERIES; i++)
		snprintf(rid[i], sizeof(rid[i]), "md-%d", i);
	t0 = now_s();
	for (int k = 0; k < BYNAME_STEPS; k++) {
		int64_t t = NOW + (int64_t)k * 100;

		for (int i = 0; i < APPEND_SERIES; i++) {
			struct tsdb_dim d[2] = { { "resourceId", rid[i] },
						 { "instanceId", "i0" } };

			bad |= tsdb_append(db, NS, "CpuUtilization", d, 2, t,
					   (double)((k + i) % 100), NULL, 0);
		}
	}
	secs = now_s() - t0;
	if (bad)
		fprintf(stderr, "by name: an append failed\n");
	free(rid);
	tsdb_free(db);
	return (double)APPEND_SERIES * BYNAME_STEPS / secs;
}

/* Returns the median time of one round over all alarms, in ms. */
static double bench_alarms(int runs, double *parse_ms, size_t *firing)
{
	struct tsdb *db = new_db();
	struct alarm_def *defs = xcalloc(ALARMS, sizeof(*defs));
	struct alarm_state **st = xcalloc(ALARMS, sizeof(*st));
	double *ms = xcalloc((size_t)runs, sizeof(*ms));
	struct alarm_events ev;
	char rid[32], query[128], diag[256];
	double t0, median;

	for (int i = 0; i < ALARMS; i++) {
		struct tsdb_dim d = { "resourceId", rid };
		struct tsdb_series *s;

		snprintf(rid, sizeof(rid), "md-%d", i);
		tsdb_series_get_or_create(db, NS, "CpuUtilization", &d, 1, &s,
					  NULL, 0);
		/* One in ten deployments runs hot. */
		for (int k = 0; k < SAMPLES; k++)
			tsdb_series_append(s, NOW - 60000 + k * 1000,
					   (i % 10 == 0 ? 85 : 40) + k % 7);
	}
	t0 = now_s();
	for (int i = 0; i < ALARMS; i++) {
		alarm_def_init(&defs[i]);
		defs[i].id = xasprintf("ocid1.alarm.%d", i);
		defs[i].display_name = xstrdup("model_deployment_high_cpu");
		defs[i].namespace = xstrdup(NS);
		snprintf(query, sizeof(query),
			 "CpuUtilization[1m]{resourceId = \"md-%d\"}.max() > 80",
			 i);
		if (alarm_def_set_query(&defs[i], query, diag,
					sizeof(diag)) != 0) {
			fprintf(stderr, "parse: %s\n", diag);
			exit(2);
		}
		st[i] = alarm_state_new();
	}
	*parse_ms = (now_s() - t0) * 1000;
	alarm_events_init(&ev);
	for (int r = 0; r < runs; r++) {
		alarm_events_reset(&ev);
		t0 = now_s();
		for (int i = 0; i < ALARMS; i++)
			alarm_eval(st[i], &defs[i], db, NOW, &ev);
		ms[r] = (now_s() - t0) * 1000;
	}
	*firing = 0;
	for (int i = 0; i < ALARMS; i++)
		*firing += alarm_state_status(st[i]) == ALARM_FIRING;
	qsort(ms, (size_t)runs, sizeof(*ms), cmp_double);
	median = ms[runs / 2];
	alarm_events_free(&ev);
	for (int i = 0; i < ALARMS; i++) {
		alarm_state_free(st[i]);
		alarm_def_clear(&defs[i]);
	}
	free(defs);
	free(st);
	free(ms);
	tsdb_free(db);
	return median;
}

int main(int argc, char **argv)
{
	int runs = 5, quiet = 0, ok = 1;
	double fast, byname, eval_ms, parse_ms;
	size_t firing;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-q") == 0) {
			quiet = 1;
		} else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
			runs = (int)strtol(argv[++i], NULL, 10);
			if (runs < 1)
				runs = 1;
		} else {
			fprintf(stderr, "usage: %s [-q] [-n runs]\n", argv[0]);
			return 2;
		}
	}
	fast = bench_fast_path();
	byname = bench_by_name();
	eval_ms = bench_alarms(runs, &parse_ms, &firing);
	ok = fast >= 5e6 && eval_ms < 20;
	if (quiet) {
		printf("append_fast_samples_per_s %.0f\n", fast);
		printf("append_by_name_samples_per_s %.0f\n", byname);
		printf("alarm_eval_10k_ms %.2f\n", eval_ms);
		return ok ? 0 : 1;
	}
	printf("append, resolved series: %6.1f M samples/s  (target >= 5)\n",
	       fast / 1e6);
	printf("append, by name:         %6.1f M samples/s\n", byname / 1e6);
	printf("parse 10,000 alarm queries: %.1f ms\n", parse_ms);
	printf("eval 10,000 alarms over 10,000 series x %d samples: "
	       "median %.2f ms of %d runs  (target < 20), %zu firing\n",
	       SAMPLES, eval_ms, runs, firing);
	printf("%s\n", ok ? "targets met" : "TARGET MISSED");
	return ok ? 0 : 1;
}
