/*
 * bench_tsdb_volume.c - the metrics store alone under hostile volume.
 *
 * Puts N series (100,000 by default) into a tsdb, each with 16 dimensions
 * whose 255-byte values are its own (bench/volume.py's identities), one
 * sample each; then writes each series' record (tsdb_dump_series) and
 * loads them one by one into a new store, as the metrics log's replay
 * does at start. Reports, in the thread's CPU time (the store's own work,
 * without waits for a CPU), the costliest new series, the costliest run
 * of 50 (one post), the costliest run of 16 loaded (a replay slice checks
 * its clock every 16 records), and the store's memory per series.
 *
 * Usage: bench_tsdb_volume [N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/tsdb.h"
#include "util/buf.h"

#define DIMS 16
#define VALUE_BYTES 255
#define POST 50
#define SLICE 16
#define T0 1700000000000LL

static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The largest of the costs of runs of n consecutive items. */
struct worst {
	size_t n, in_run, seen, one_at;
	double run, one, of_runs;
};

static void worst_add(struct worst *w, double ms)
{
	if (ms > w->one) {
		w->one = ms;
		w->one_at = w->seen;
	}
	w->seen++;
	w->run += ms;
	if (++w->in_run == w->n) {
		if (w->run > w->of_runs)
			w->of_runs = w->run;
		w->run = 0;
		w->in_run = 0;
	}
}

static int add_chunk(void *arg, const void *data, size_t len)
{
	return buf_add(arg, data, len);
}

/* Series i's identity: keys dim00..dim15, values unique to i. */
static void identity(size_t i, char keys[DIMS][8],
		     char vals[DIMS][VALUE_BYTES + 1], struct tsdb_dim *dims)
{
	for (int k = 0; k < DIMS; k++) {
		int len;

		snprintf(keys[k], sizeof(keys[k]), "dim%02d", k);
		len = snprintf(vals[k], sizeof(vals[k]), "s%08zu-d%02d-", i, k);
		memset(vals[k] + len, 'x', (size_t)(VALUE_BYTES - len));
		vals[k][VALUE_BYTES] = '\0';
		dims[k].key = keys[k];
		dims[k].value = vals[k];
	}
}

static struct tsdb *create(void)
{
	struct tsdb *db;
	char diag[256];

	if (tsdb_create(NULL, &db, diag, sizeof(diag)) != 0) {
		fprintf(stderr, "tsdb_create: %s\n", diag);
		exit(1);
	}
	return db;
}

int main(int argc, char **argv)
{
	static char keys[DIMS][8], vals[DIMS][VALUE_BYTES + 1];
	struct tsdb_dim dims[DIMS];
	struct worst put = { .n = POST }, load = { .n = SLICE };
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
	size_t *at = malloc((n + 1) * sizeof(*at));
	struct tsdb *db = create();
	char diag[256];
	struct buf image;

	buf_init(&image, (size_t)1 << 34);
	for (size_t i = 0; i < n; i++) {
		struct tsdb_series *s;
		double t;

		identity(i, keys, vals, dims);
		t = cpu_ms();
		if (tsdb_series_get_or_create(db, "bench_volume", "Hostile",
					      dims, DIMS, &s, diag,
					      sizeof(diag)) != 0) {
			fprintf(stderr, "series %zu: %s\n", i, diag);
			return 1;
		}
		tsdb_series_append(s, T0, (double)(i % 100));
		worst_add(&put, cpu_ms() - t);
	}
	printf("%zu series: %.0f bytes a series (store %.1f MiB, strings "
	       "%.1f MiB)\n", n, (double)tsdb_memory(db) / (double)n,
	       (double)tsdb_memory(db) / 1048576.0,
	       (double)tsdb_strings_bytes(db) / 1048576.0);
	printf("new series: costliest %.2f ms (series %zu), costliest %d in "
	       "a row %.2f ms\n", put.one, put.one_at, POST, put.of_runs);
	for (size_t i = 0; i < n; i++) {
		at[i] = image.len;
		if (tsdb_dump_series(tsdb_series_at(db, i), add_chunk,
				     &image) != 0) {
			fprintf(stderr, "image past its cap\n");
			return 1;
		}
	}
	at[n] = image.len;
	tsdb_free(db);
	db = create();
	for (size_t i = 0; i < n; i++) {
		struct tsdb_series *s;
		size_t used;
		double t = cpu_ms();

		if (tsdb_load_series(db, image.data + at[i], at[i + 1] - at[i],
				     &used, &s, diag, sizeof(diag)) != 0) {
			fprintf(stderr, "load %zu: %s\n", i, diag);
			return 1;
		}
		worst_add(&load, cpu_ms() - t);
	}
	printf("loaded series: costliest %.2f ms (series %zu), costliest %d "
	       "in a row %.2f ms\n", load.one, load.one_at, SLICE,
	       load.of_runs);
	tsdb_free(db);
	buf_free(&image);
	free(at);
	return 0;
}
