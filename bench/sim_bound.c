/*
 * sim_bound.c - what a schedule without reversals can cost at best, in
 * hindsight, on a trace.
 *
 * The simulator's oracle (sim_oracle_hindsight()) may move every second;
 * a policy that must not flap may not reverse a move within the flap
 * window. This finds the cheapest schedule in hindsight that meets the
 * goal (99%) with no reversal within F seconds, for each F given, with
 * sim_oracle_steady() (what `mdscale simulate --steady` prints for the
 * model's own window):
 *
 *   miss(k, s)  the requests of second s that miss the target in a run at
 *               a fixed k instances all along (k from 1 to the first count
 *               that misses none), as the oracle estimates them;
 *   schedule    per second a ready count k(s), costing k(s) + lambda x
 *               miss(k(s), s) a second and the start-up delay for each
 *               instance added (it is billed from its start); a dynamic
 *               programme over (count, last move's direction, seconds
 *               since it) finds the cheapest for lambda in which no move
 *               reverses the one before within F seconds as billed (a
 *               move up is billed startupMs ahead);
 *   lambda      bisected (of its logarithm) as the oracle's is; each
 *               schedule is run through the model, which decides whether
 *               it meets the goal (the misses of a second depend on the
 *               queue the ones before left, which miss(k, s) estimates).
 *
 * It prints, per F, the cheapest schedule found that meets the goal when
 * run (instance-seconds, the ratio to the oracle, attainment, actions and
 * reversals within the model's 120 s flap window) and a lower bound: for
 * every lambda, the programme's optimum minus lambda x the goal's miss
 * budget bounds from below every schedule without such a reversal whose
 * estimated misses are within the budget (Lagrangian duality). The bound
 * holds for the estimated misses, not exactly for the run: with F = 0 it
 * is 1 to 2% above the oracle's cost on the Azure trace, which moves
 * every second and recovers from a queue faster than miss(k, s) says.
 * The oracle is sim_oracle_hindsight() with counts up to the same k; on
 * the Azure trace at --scale 100 it is the oracle `mdscale simulate`
 * prints (7,787 instance-seconds).
 *
 * Usage: bench_sim_bound [--scale X] [--compress X] [--flap S[,S...]]
 *        TRACE
 * (flap windows in seconds, default 0,30,60,90,120; a few seconds of CPU
 * each on the Azure trace.)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"
#include "util/err.h"
#include "util/xalloc.h"

#define GOAL 0.99
#define KMAX 32
#define MAX_FLAPS 16

struct ctx {
	const struct trace *t;
	const struct sim_model *m;
	size_t ns;
	uint32_t nmax, k0;
};

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = xmalloc((size_t)n + 1);
		if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

/* Runs counts through the model m (its flap window counts reversals). */
static int run_counts(const struct trace *t, const struct sim_model *m,
		      const uint16_t *counts, size_t n, struct sim_result *r)
{
	struct sim_policy p;
	char diag[128];

	memset(&p, 0, sizeof(p));
	snprintf(p.name, sizeof(p.name), "bound");
	p.kind = SIM_SCHEDULE;
	p.min_instances = 1;
	p.max_instances = SIM_MAX_INSTANCES;
	p.schedule = counts;
	p.nschedule = n;
	p.initial = sim_initial(&p, counts, n);
	return sim_run(t, m, &p, NULL, 0, r, diag, sizeof(diag));
}

/* Prints the row for flap window flap_s: sim_oracle_steady() with it,
 * the reversals of its schedule counted within the model's own window. */
static void bound(const struct ctx *c, uint32_t flap_s, double oracle_is)
{
	struct sim_model fm = *c->m;
	struct sim_result keep, r;
	uint16_t *counts;
	size_t n;
	double lb;
	int rc;

	fm.flap_window_ms = (int64_t)flap_s * 1000;
	rc = sim_oracle_steady(c->t, &fm, c->k0, c->nmax, GOAL, &counts, &n,
			       &keep, &lb);
	if (rc == MDS_E_NOTFOUND) {
		printf("%8u  %9s  %7s  %8s  %7s  %9s  %9.0f  %7.3f\n", flap_s,
		       "-", "-", "-", "-", "-", lb, lb / oracle_is);
		return;
	}
	if (rc != 0 || run_counts(c->t, c->m, counts, n, &r) != 0) {
		fprintf(stderr, "run failed\n");
		exit(1);
	}
	printf("%8u  %9.0f  %7.3f  %8.3f  %7u  %9u  %9.0f  %7.3f\n", flap_s,
	       keep.instance_seconds, keep.instance_seconds / oracle_is,
	       100.0 * (double)keep.within_slo / (double)keep.requests,
	       keep.actions, r.reversals, lb, lb / oracle_is);
	sim_result_clear(&keep);
	sim_result_clear(&r);
	free(counts);
}

/* A number from lo to hi, the whole of s. */
static int number(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (*s == '\0' || *end != '\0' || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: bench_sim_bound [--scale X] [--compress X] "
			"[--flap S[,S...]] TRACE\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct trace_opts o = { TRACE_AUTO, 0, 0 };
	const char *path = NULL, *flaps = "0,30,60,90,120";
	struct sim_model m;
	struct trace *t;
	struct ctx c = { 0 };
	struct sim_result orr;
	uint16_t *oc;
	size_t len, on, nflap = 0;
	uint32_t flap[MAX_FLAPS];
	uint64_t missed_before = 0;
	char diag[256], *text;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
			if (number(argv[++i], 1e-6, TRACE_SCALE_MAX,
				   &o.scale) != 0)
				return usage();
		} else if (strcmp(argv[i], "--compress") == 0 &&
			   i + 1 < argc) {
			if (number(argv[++i], 1e-6, TRACE_COMPRESS_MAX,
				   &o.compress) != 0)
				return usage();
		} else if (strcmp(argv[i], "--flap") == 0 && i + 1 < argc)
			flaps = argv[++i];
		else if (argv[i][0] != '-' && path == NULL)
			path = argv[i];
		else
			return usage();
	}
	if (path == NULL)
		return usage();
	for (const char *p = flaps; *p != '\0' || nflap == 0;) {
		size_t n = strcspn(p, ",");
		char tok[16];
		double f;

		snprintf(tok, sizeof(tok), "%.*s", (int)(n < 15 ? n : 15), p);
		if (nflap == MAX_FLAPS || n > 15 ||
		    number(tok, 0, 600, &f) != 0 || f != floor(f)) {
			fprintf(stderr, "--flap: up to %d whole numbers of "
				"seconds from 0 to 600, not '%s'\n",
				MAX_FLAPS, flaps);
			return 1;
		}
		flap[nflap++] = (uint32_t)f;
		p += n + (p[n] == ',');
	}
	text = slurp(path, &len);
	if (text == NULL) {
		fprintf(stderr, "%s: cannot read\n", path);
		return 1;
	}
	if (trace_parse(text, len, &o, &t, diag, sizeof(diag)) != 0) {
		fprintf(stderr, "%s: %s\n", path, diag);
		return 1;
	}
	free(text);
	sim_model_default(&m);
	c.t = t;
	c.m = &m;
	c.ns = (size_t)(t->span_us / 1000000) + 1;
	/* Counts up to the first past which more instances miss no fewer:
	 * none, or only requests too long for the SLO even on an idle
	 * instance. */
	for (uint32_t k = 1; k <= KMAX && c.nmax == 0; k++) {
		uint16_t one = (uint16_t)k;
		struct sim_result r;

		if (run_counts(t, &m, &one, 1, &r) != 0)
			return 1;
		if (r.within_slo == r.requests)
			c.nmax = k;
		else if (k > 1 && r.requests - r.within_slo == missed_before)
			c.nmax = k - 1;
		missed_before = r.requests - r.within_slo;
		sim_result_clear(&r);
	}
	if (c.nmax == 0) {
		fprintf(stderr, "%u instances still miss: too much load\n",
			KMAX);
		return 1;
	}
	if (sim_oracle_hindsight(t, &m, 1, c.nmax, GOAL, &oc, &on, &orr) != 0) {
		fprintf(stderr, "no oracle\n");
		return 1;
	}
	c.k0 = oc[0];
	printf("trace: %zu requests over %zu s; oracle %.0f instance-seconds "
	       "(counts 1 to %u), %.3f%% within the SLO\n", t->n, c.ns,
	       orr.instance_seconds, c.nmax,
	       100.0 * (double)orr.within_slo / (double)orr.requests);
	printf("FLAP-S       INST-S  xORACLE      SLO%%  ACTIONS  REV(120S)  "
	       "  BOUND-S   xBOUND\n");
	for (size_t i = 0; i < nflap; i++) {
		if (fflush(stdout) != 0)
			return 1;
		bound(&c, flap[i], orr.instance_seconds);
	}
	free(oc);
	sim_result_clear(&orr);
	trace_free(t);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("stdout");
		return 1;
	}
	return 0;
}
