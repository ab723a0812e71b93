/*
 * cli_simulate.c - `mdscale simulate`: replays a trace against scaling
 * policies on a virtual clock (src/sim/) and compares them with the oracle.
 *
 * Everything is read and checked before anything runs: the trace, every
 * policy (built-in name or file), the sweep and the model settings. The
 * plot is written to a temporary file beside the target and renamed into
 * place, so a failed run leaves no half-written file. Does not talk to the
 * daemon.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/cli_sim_metrics.h"
#include "cli/sim_plot.h"
#include "sim/sim.h"
#include "util/err.h"
#include "util/file.h"
#include "util/xalloc.h"

#define TRACE_FILE_MAX (512u << 20)
#define POLICY_FILE_MAX (64u << 10)
#define MAX_POLICIES 16
#define MAX_SWEEP 16
#define MAX_SETS 16
#define MAX_RUNS (MAX_POLICIES * MAX_SWEEP)
#define ORACLE_GOAL 0.99

/* Which oracle the run compares with. */
struct oracle_info {
	double rho;        /* the best single utilization */
	double rho_is;     /* its schedule's instance-seconds */
	bool per_second;   /* the per-second refinement is cheaper: used */
};

enum {
	O_TRACE, O_FORMAT, O_COMPRESS, O_SCALE, O_POLICY, O_PLOT, O_SWEEP,
	O_SET, O_COMPARE, O_METRICS, O_STEADY,
};

static const struct cli_opt sim_opts[] = {
	[O_TRACE] = {"trace", 1},
	[O_FORMAT] = {"format", 1},
	[O_COMPRESS] = {"compress", 1},
	[O_SCALE] = {"scale", 1},
	[O_POLICY] = {"policy", 1},
	[O_PLOT] = {"plot", 1},
	[O_SWEEP] = {"sweep", 1},
	[O_SET] = {"set", 1},
	[O_COMPARE] = {"compare", 1},
	[O_METRICS] = {"metrics", 1},
	[O_STEADY] = {"steady", 0},
	{NULL, 0},
};

static const char *const builtins[] = {
	"recipe", "oci-native", "hpa", "kpa", "mdscale",
};

struct job {
	const char *trace, *format, *compress, *scale, *plot, *compare;
	const char *metrics; /* --metrics: sim_metrics.h instead of a trace */
	const char *policies[MAX_POLICIES];
	size_t npolicies;
	const char *sets[MAX_SETS];
	size_t nsets;
	const char *sweeps[MAX_POLICIES + 1];
	size_t nsweeps;
	bool steady; /* --steady: the steady oracle's row too */
};

/* --sweep [POLICY:]key=a,b,c: scope "" sweeps every policy. */
struct sweep {
	char scope[256];
	char key[64];
	char *values[MAX_SWEEP];
	size_t n;
	char *text; /* owns the values */
};

static int parse_double(const char *opt, const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || !isfinite(*out))
		return cli_fail("--%s: not a number: '%s'", opt, s);
	return 0;
}

/* Returns the trace of --trace (the caller frees it), or NULL after
 * printing why not. */
static struct trace *load_trace(const struct job *j)
{
	struct trace_opts o = { TRACE_AUTO, 0, 0 };
	struct trace *t = NULL;
	char diag[256], *text = NULL;
	size_t len;
	int rc;

	if ((j->format && trace_format_parse(j->format, &o.format) != 0)) {
		cli_fail("--format: auto, azure, times or rates, not '%s'",
			 j->format);
		return NULL;
	}
	if ((j->compress && parse_double("compress", j->compress,
					 &o.compress) != 0) ||
	    (j->scale && parse_double("scale", j->scale, &o.scale) != 0))
		return NULL;
	if ((j->compress && !(o.compress > 0)) ||
	    (j->scale && !(o.scale > 0))) {
		cli_fail("--compress and --scale must be above 0");
		return NULL;
	}
	rc = file_read_all(j->trace, TRACE_FILE_MAX, &text, &len, diag,
			   sizeof(diag));
	if (rc != 0) {
		cli_fail("--trace %s: %s", j->trace,
			 rc == MDS_E_NOTFOUND ? "no such file" : diag);
		return NULL;
	}
	rc = trace_parse(text, len, &o, &t, diag, sizeof(diag));
	free(text);
	if (rc != 0) {
		cli_fail("--trace %s: %s", j->trace, diag);
		return NULL;
	}
	return t;
}

static int load_policy(const char *name, struct sim_policy *p)
{
	char diag[300], *text = NULL;
	size_t len;
	int rc;

	if (sim_policy_builtin(name, p) == 0)
		return 0;
	rc = file_read_all(name, POLICY_FILE_MAX, &text, &len, diag,
			   sizeof(diag));
	if (rc == MDS_E_NOTFOUND)
		return cli_fail("--policy %s: neither a built-in policy "
				"(recipe, oci-native, hpa, kpa, mdscale) nor a "
				"file", name);
	if (rc != 0)
		return cli_fail("--policy %s: %s", name, diag);
	rc = sim_policy_parse(text, len, p, diag, sizeof(diag));
	free(text);
	if (rc != 0)
		return cli_fail("--policy %s: %s", name, diag);
	return 0;
}

/* Applies "key=value" to the model, else to the policy. */
static int apply_setting(struct sim_model *m, struct sim_policy *p,
			 const char *key, const char *value, const char *what)
{
	char diag[256];
	int rc = sim_model_set(m, key, value, diag, sizeof(diag));

	if (rc == MDS_E_NOTFOUND && p != NULL)
		rc = sim_policy_set(p, key, value, diag, sizeof(diag));
	if (rc == MDS_E_NOTFOUND)
		return cli_fail("%s: unknown field '%s' (a model field%s)",
				what, key, p ? " or a policy field" : "");
	if (rc != 0)
		return cli_fail("%s: %s", what, diag);
	return 0;
}

static int parse_sweep(const char *text, struct sweep *s)
{
	const char *eq = strchr(text, '=');
	const char *colon = strchr(text, ':');
	char *v, *comma;

	if (colon != NULL && eq != NULL && colon < eq) {
		if (colon == text || (size_t)(colon - text) >= sizeof(s->scope))
			return cli_fail("--sweep: expected [POLICY:]key=a,b,c, "
					"not '%s'", text);
		memcpy(s->scope, text, (size_t)(colon - text));
		s->scope[colon - text] = '\0';
		text = colon + 1;
	}
	if (eq == NULL || eq == text || (size_t)(eq - text) >= sizeof(s->key))
		return cli_fail("--sweep: expected [POLICY:]key=a,b,c, not "
				"'%s'", text);
	memcpy(s->key, text, (size_t)(eq - text));
	s->key[eq - text] = '\0';
	s->text = xstrdup(eq + 1);
	for (v = s->text; *v != '\0'; v = comma + 1) {
		comma = strchr(v, ',');
		if (comma == NULL)
			comma = v + strlen(v) - 1;
		else
			*comma = '\0';
		if (*v == '\0')
			return cli_fail("--sweep %s: an empty value", s->key);
		if (s->n == MAX_SWEEP)
			return cli_fail("--sweep: at most %d values", MAX_SWEEP);
		s->values[s->n++] = v;
	}
	if (s->n == 0)
		return cli_fail("--sweep %s: no values", s->key);
	return 0;
}

/* Runs the oracle's schedule at utilization rho; *ok says whether it
 * meets the goal. On success *counts (caller frees) and *res are set. */
static int oracle_at(const struct trace *t, const struct sim_model *m,
		     double rho, struct sim_result *res, uint16_t **counts,
		     size_t *n, int *ok)
{
	struct sim_policy p;
	char diag[256];
	double cost;
	int rc;

	sim_policy_builtin("mdscale", &p);
	snprintf(p.name, sizeof(p.name), "oracle");
	p.kind = SIM_SCHEDULE;
	p.max_instances = SIM_MAX_INSTANCES;
	rc = sim_oracle(t, m, 1, rho, counts, n, &cost);
	if (rc == 0) {
		p.schedule = *counts;
		p.nschedule = *n;
		p.initial = sim_initial(&p, *counts, *n);
		rc = sim_run(t, m, &p, NULL, 0, res, diag, sizeof(diag));
		if (rc != 0) {
			free(*counts);
			*counts = NULL;
		}
	} else
		snprintf(diag, sizeof(diag), "utilization %g", rho);
	if (rc != 0) {
		cli_fail("oracle: %s", diag);
		return CLI_EXIT_FAIL;
	}
	*ok = (double)res->within_slo >= ORACLE_GOAL * (double)res->requests;
	return 0;
}

/*
 * The oracle: the highest utilization, to 0.01, whose schedule meets the
 * goal. Tenths from 0.9 down find the first that meets it, then
 * hundredths from the tenth above it down; 0.05 if none does.
 */
static int run_oracle(const struct trace *t, const struct sim_model *m,
		      struct sim_result *res, uint16_t **counts, size_t *n,
		      double *rho_out)
{
	double hi = 1.0, rho = 0.9;
	int ok = 0;

	for (; rho > 0.05 && !ok; rho -= 0.1) {
		if (oracle_at(t, m, rho, res, counts, n, &ok) != 0)
			return CLI_EXIT_FAIL;
		if (ok)
			break;
		hi = rho;
		free(*counts);
		sim_result_clear(res);
	}
	if (!ok) {
		*rho_out = 0.05;
		return oracle_at(t, m, 0.05, res, counts, n, &ok);
	}
	/* rho meets the goal and hi does not (or is 1): the hundredths
	 * between, from the top. */
	for (int k = (int)lround(hi * 100) - 1; k > (int)lround(rho * 100);
	     k--) {
		struct sim_result r2 = { 0 };
		uint16_t *c2 = NULL;
		size_t n2 = 0;

		if (oracle_at(t, m, k / 100.0, &r2, &c2, &n2, &ok) != 0)
			return CLI_EXIT_FAIL;
		if (ok) {
			free(*counts);
			sim_result_clear(res);
			*counts = c2;
			*n = n2;
			*res = r2;
			rho = k / 100.0;
			break;
		}
		free(c2);
		sim_result_clear(&r2);
	}
	*rho_out = rho;
	return 0;
}

/*
 * The oracle refined per second in hindsight (sim_oracle_hindsight()),
 * with counts up to the single-utilization schedule's highest; it
 * replaces *res and *counts when it is cheaper. Its not finding a
 * schedule that meets the goal leaves them.
 */
static int refine_oracle(const struct trace *t, const struct sim_model *m,
			 struct sim_result *res, uint16_t **counts, size_t *n,
			 struct oracle_info *oi)
{
	struct sim_result r2 = { 0 };
	uint16_t *c2 = NULL, nmax = 1;
	size_t n2 = 0;
	int rc;

	oi->rho_is = res->instance_seconds;
	oi->per_second = false;
	for (size_t s = 0; s < *n; s++)
		if ((*counts)[s] > nmax)
			nmax = (*counts)[s];
	rc = sim_oracle_hindsight(t, m, 1, nmax, ORACLE_GOAL, &c2, &n2, &r2);
	if (rc == MDS_E_NOTFOUND)
		return 0;
	if (rc != 0)
		return cli_fail("oracle: %s", mds_strerror(rc));
	if (r2.instance_seconds < res->instance_seconds) {
		free(*counts);
		sim_result_clear(res);
		*counts = c2;
		*n = n2;
		*res = r2;
		oi->per_second = true;
		return 0;
	}
	free(c2);
	sim_result_clear(&r2);
	return 0;
}

/*
 * --steady: the cheapest schedule in hindsight with no reversal within
 * the flap window (sim_oracle_steady()), counts up to the oracle's
 * highest, from its count at second 0. *bound: sim_oracle_steady()'s.
 * None found (no schedule tried meets the goal) leaves *res empty.
 */
static int run_steady(const struct trace *t, const struct sim_model *m,
		      const uint16_t *oc, size_t noc, struct sim_result *res,
		      double *bound)
{
	uint16_t *c = NULL, nmax = 1;
	size_t n = 0;
	int rc;

	for (size_t s = 0; s < noc; s++)
		if (oc[s] > nmax)
			nmax = oc[s];
	rc = sim_oracle_steady(t, m, noc ? oc[0] : 1, nmax, ORACLE_GOAL, &c,
			       &n, res, bound);
	if (rc == MDS_E_NOTFOUND) {
		memset(res, 0, sizeof(*res));
		return 0;
	}
	if (rc != 0)
		return cli_fail("steady oracle: %s", mds_strerror(rc));
	snprintf(res->name, sizeof(res->name), "steady");
	free(c);
	return 0;
}

static double cpu_now(void)
{
	return (double)clock() / CLOCKS_PER_SEC;
}

static double attain(const struct sim_result *r)
{
	return r->requests ? 100.0 * (double)r->within_slo /
				     (double)r->requests
			   : 100.0;
}

static void print_row(const struct sim_result *r,
		      const struct sim_result *oracle)
{
	printf("%-22s %8.3f %8.2f %8.2f %7llu %7llu %9.0f %9.4f %6.2f "
	       "%7u %5u %7.0f %7.0f %6.3f\n",
	       r->name, attain(r), r->p50_ms, r->p99_ms,
	       (unsigned long long)r->refused,
	       (unsigned long long)r->timed_out, r->instance_seconds, r->cost,
	       oracle->cost > 0 ? r->cost / oracle->cost : 0, r->actions,
	       r->reversals, r->over_s, r->under_s, r->cpu_seconds);
}

static void print_table(const struct trace *t, const struct sim_model *m,
			const struct sim_result *res, size_t n,
			const struct sim_result *oracle,
			const struct oracle_info *oi,
			const struct sim_result *steady, double bound)
{
	printf("trace: %s, %zu requests over %.0f s (compressed %gx, rate "
	       "scaled %gx); SLO %.2f ms; ",
	       trace_format_name(t->format), t->n, (double)t->span_us / 1e6,
	       t->compress, t->scale, oracle->slo_ms);
	if (oi->per_second)
		printf("oracle per second in hindsight (at one utilization, "
		       "%.2f, %.2fx its cost)\n", oi->rho,
		       oracle->instance_seconds > 0
			       ? oi->rho_is / oracle->instance_seconds
			       : 0);
	else
		printf("oracle at utilization %.2f\n", oi->rho);
	printf("%-22s %8s %8s %8s %7s %7s %9s %9s %6s %7s %5s %7s %7s %6s\n",
	       "POLICY", "SLO%", "P50ms", "P99ms", "REFUSED", "TIMEOUT",
	       "INST-S", "COST", "xORACLE", "ACTIONS", "FLAPS", "OVER-S",
	       "UNDER-S", "CPU-S");
	for (size_t i = 0; i <= n; i++)
		print_row(i < n ? &res[i] : oracle, oracle);
	if (steady != NULL && steady->requests == 0)
		printf("steady: no schedule found that meets %.0f%% without "
		       "a reversal within %.0f s\n", 100 * ORACLE_GOAL,
		       (double)m->flap_window_ms / 1000);
	else if (steady != NULL) {
		print_row(steady, oracle);
		printf("steady: the cheapest schedule found in hindsight "
		       "without a reversal within %.0f s; none costs less "
		       "than %.0f instance-seconds (%.2fx the oracle) on the "
		       "oracle's estimate of the misses\n",
		       (double)m->flap_window_ms / 1000, bound,
		       oracle->instance_seconds > 0
			       ? bound / oracle->instance_seconds
			       : 0);
	}
}

static json_t *result_json(const struct sim_result *r, double oracle_cost)
{
	return json_pack("{s:s, s:I, s:f, s:f, s:f, s:f, s:I, s:I, s:f, s:f, "
			 "s:f, s:i, s:i, s:f, s:f, s:f}",
			 "policy", r->name, "requests", (json_int_t)r->requests,
			 "sloAttainment", attain(r) / 100.0, "sloMs", r->slo_ms,
			 "p50Ms", r->p50_ms, "p99Ms", r->p99_ms,
			 "refused", (json_int_t)r->refused,
			 "timedOut", (json_int_t)r->timed_out,
			 "instanceSeconds", r->instance_seconds,
			 "cost", r->cost, "costRatioToOracle",
			 oracle_cost > 0 ? r->cost / oracle_cost : 0.0,
			 "scalingActions", (int)r->actions,
			 "reversals", (int)r->reversals,
			 "overProvisionedSeconds", r->over_s,
			 "underProvisionedSeconds", r->under_s,
			 "cpuSeconds", r->cpu_seconds);
}

/* The billed instances at the end of each second, for comparing with a
 * live run (bench/sim_to_real.py). */
static json_t *instances_json(const struct sim_result *r)
{
	json_t *a = json_array();

	for (size_t s = 0; s < r->nseconds; s++)
		json_array_append_new(a, json_integer(r->seconds[s].instances));
	return a;
}

/* --compare NAME: per other policy, the best attainment among its runs
 * that cost no more than NAME's one run. */
struct cmp_row {
	size_t group;       /* index in j->policies */
	size_t runs, at_cost;
	const struct sim_result *best; /* NULL: no run at or below cost */
};

struct cmp {
	const struct sim_result *ref;
	struct cmp_row rows[MAX_POLICIES];
	size_t n;
};

/* Finds the policy called name (as given to --policy, or the name of a
 * run) among the runs: its index in j->policies, or -1. */
static long find_group(const struct job *j, const struct sim_policy *pol,
		       const size_t *group, size_t n, const char *name)
{
	for (size_t k = 0; k < n; k++)
		if (strcmp(j->policies[group[k]], name) == 0 ||
		    strcmp(pol[k].name, name) == 0)
			return (long)group[k];
	return -1;
}

/* Checks --compare before anything runs: the policy is given and runs
 * once (no sweep of its own). */
static int check_compare(const struct job *j, const struct sim_policy *pol,
			 const size_t *group, size_t n, long *ref)
{
	size_t runs = 0;

	*ref = -1;
	if (j->compare == NULL)
		return 0;
	*ref = find_group(j, pol, group, n, j->compare);
	if (*ref < 0)
		return cli_fail("--compare %s: no --policy %s", j->compare,
				j->compare);
	for (size_t k = 0; k < n; k++)
		runs += group[k] == (size_t)*ref;
	if (runs != 1)
		return cli_fail("--compare %s: it must run once (no sweep of "
				"its own)", j->compare);
	return 0;
}

static void compare(const struct job *j, const struct sim_result *res,
		    const size_t *group, size_t n, long ref, struct cmp *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t k = 0; k < n; k++)
		if (group[k] == (size_t)ref)
			c->ref = &res[k];
	for (size_t i = 0; i < j->npolicies; i++) {
		struct cmp_row *r = &c->rows[c->n];

		if (i == (size_t)ref)
			continue;
		r->group = i;
		for (size_t k = 0; k < n; k++) {
			if (group[k] != i)
				continue;
			r->runs++;
			if (res[k].cost > c->ref->cost * (1 + 1e-9))
				continue;
			r->at_cost++;
			if (r->best == NULL || attain(&res[k]) > attain(r->best))
				r->best = &res[k];
		}
		c->n++;
	}
}

static bool cmp_lower(const struct cmp *c, const struct cmp_row *r)
{
	return r->best == NULL || attain(r->best) < attain(c->ref);
}

static void print_compare(const struct job *j, const struct cmp *c)
{
	printf("\nat %s's cost (%.4f) or less; %s: %.3f%% of requests "
	       "within the SLO\n", c->ref->name, c->ref->cost, c->ref->name,
	       attain(c->ref));
	printf("%-22s %5s %8s %9s  %-22s %s\n", "POLICY", "RUNS", "AT-COST",
	       "BEST-SLO%", "BEST-RUN", "LOWER");
	for (size_t i = 0; i < c->n; i++) {
		const struct cmp_row *r = &c->rows[i];

		if (r->best)
			printf("%-22s %5zu %8zu %9.3f  %-22s %s\n",
			       j->policies[r->group], r->runs, r->at_cost,
			       attain(r->best), r->best->name,
			       cmp_lower(c, r) ? "yes" : "no");
		else
			printf("%-22s %5zu %8zu %9s  %-22s %s\n",
			       j->policies[r->group], r->runs, r->at_cost, "-",
			       "-", "yes");
	}
}

static json_t *compare_json(const struct job *j, const struct cmp *c)
{
	json_t *rows = json_array();

	for (size_t i = 0; i < c->n; i++) {
		const struct cmp_row *r = &c->rows[i];

		json_array_append_new(rows, json_pack(
			"{s:s, s:i, s:i, s:o, s:o, s:b}", "policy",
			j->policies[r->group], "runs", (int)r->runs,
			"runsAtOrBelowCost", (int)r->at_cost,
			"bestSloAttainment",
			r->best ? json_real(attain(r->best) / 100.0)
				: json_null(),
			"bestRun", r->best ? json_string(r->best->name)
					   : json_null(),
			"lower", cmp_lower(c, r)));
	}
	return json_pack("{s:s, s:f, s:f, s:o}", "against", c->ref->name,
			 "cost", c->ref->cost, "sloAttainment",
			 attain(c->ref) / 100.0, "policies", rows);
}

static void print_json(const struct trace *t, const struct sim_result *res,
		       size_t n, const struct sim_result *oracle,
		       const struct oracle_info *oi,
		       const struct sim_result *steady, double bound,
		       json_t *comparison)
{
	json_t *pol = json_array();
	json_t *o;

	for (size_t i = 0; i < n; i++) {
		json_t *r = result_json(&res[i], oracle->cost);

		json_object_set_new(r, "instancesPerSecond",
				    instances_json(&res[i]));
		json_array_append_new(pol, r);
	}
	o = json_pack("{s:{s:s, s:I, s:f, s:f, s:f}, s:o, s:o, s:s, s:f, "
		      "s:f}",
		      "trace", "format", trace_format_name(t->format),
		      "requests", (json_int_t)t->n, "seconds",
		      (double)t->span_us / 1e6, "compress", t->compress,
		      "scale", t->scale, "policies", pol, "oracle",
		      result_json(oracle, oracle->cost), "oracleMethod",
		      oi->per_second ? "perSecond" : "utilization",
		      "oracleUtilization", oi->rho,
		      "oracleUtilizationInstanceSeconds", oi->rho_is);
	if (steady != NULL)
		json_object_set_new(
			o, "steady",
			steady->requests == 0
				? json_null()
				: json_pack("{s:o, s:f}", "result",
					    result_json(steady, oracle->cost),
					    "boundInstanceSeconds", bound));
	if (comparison)
		json_object_set_new(o, "comparison", comparison);
	json_dumpf(o, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(o);
}

static int collect(struct cli_ctx *ctx, int argc, char **argv,
		   struct job *j)
{
	struct cli_getopt g = { argc, argv, 1, 0, NULL };
	int opt;

	while ((opt = cli_getopt(ctx, &g, sim_opts)) != CLI_OPT_END) {
		if (opt < 0)
			return cli_opt_exit(opt);
		if (opt == O_STEADY) {
			j->steady = true;
			continue;
		}
		if (opt == O_POLICY || opt == O_SET || opt == O_SWEEP) {
			if ((opt == O_POLICY && j->npolicies == MAX_POLICIES) ||
			    (opt == O_SET && j->nsets == MAX_SETS) ||
			    (opt == O_SWEEP && j->nsweeps == MAX_POLICIES + 1))
				return cli_usage_error(ctx, "too many --%s",
						       sim_opts[opt].name);
			if (opt == O_POLICY)
				j->policies[j->npolicies++] = g.value;
			else if (opt == O_SET)
				j->sets[j->nsets++] = g.value;
			else
				j->sweeps[j->nsweeps++] = g.value;
			continue;
		}
		const char **slot[] = {
			[O_TRACE] = &j->trace, [O_FORMAT] = &j->format,
			[O_COMPRESS] = &j->compress, [O_SCALE] = &j->scale,
			[O_PLOT] = &j->plot, [O_COMPARE] = &j->compare,
			[O_METRICS] = &j->metrics,
		};
		*slot[opt] = g.value;
	}
	if (j->metrics != NULL)
		return j->trace || j->format || j->compress || j->scale ||
		       j->plot || j->nsweeps || j->compare || j->steady ||
		       j->npolicies != 1
		       ? cli_usage_error(ctx, "--metrics takes one --policy "
					 "and --set, nothing of a trace")
		       : 0;
	if (j->trace == NULL)
		return cli_usage_error(ctx, "missing --trace FILE");
	if (j->npolicies == 0)
		for (size_t i = 0; i < 5; i++)
			j->policies[j->npolicies++] = builtins[i];
	return 0;
}

/* The model with every --set applied. */
static int model_of(const struct job *j, struct sim_model *m)
{
	sim_model_default(m);
	for (size_t i = 0; i < j->nsets; i++) {
		char key[64];
		const char *eq = strchr(j->sets[i], '=');

		if (eq == NULL || (size_t)(eq - j->sets[i]) >= sizeof(key))
			return cli_fail("--set: expected key=value, not '%s'",
					j->sets[i]);
		memcpy(key, j->sets[i], (size_t)(eq - j->sets[i]));
		key[eq - j->sets[i]] = '\0';
		if (apply_setting(m, NULL, key, eq + 1, "--set") != 0)
			return CLI_EXIT_FAIL;
	}
	char diag[256];

	if (sim_model_validate(m, diag, sizeof(diag)) != 0)
		return cli_fail("--set: %s", diag);
	return 0;
}

/* The sweep that applies to policy arg (named name): its own, else the
 * one over every policy, else NULL. */
static const struct sweep *sweep_for(const struct sweep *sw, size_t nsw,
				     const char *arg, const char *name)
{
	const struct sweep *all = NULL;

	for (size_t i = 0; i < nsw; i++) {
		if (sw[i].scope[0] == '\0')
			all = &sw[i];
		else if (strcmp(sw[i].scope, arg) == 0 ||
			 strcmp(sw[i].scope, name) == 0)
			return &sw[i];
	}
	return all;
}

/* Each sweep is over every policy (one at most) or names a policy given,
 * once. */
static int check_sweeps(const struct job *j, const struct sweep *sw,
			size_t nsw)
{
	for (size_t i = 0; i < nsw; i++) {
		bool named = sw[i].scope[0] == '\0';

		for (size_t k = 0; k < i; k++)
			if (strcmp(sw[k].scope, sw[i].scope) == 0)
				return cli_fail("--sweep %s%s: a second sweep of "
						"the same %s", sw[i].scope,
						sw[i].scope[0] ? ":" : "",
						sw[i].scope[0] ? "policy"
							       : "runs");
		for (size_t k = 0; k < j->npolicies && !named; k++) {
			struct sim_policy p;

			named = strcmp(sw[i].scope, j->policies[k]) == 0 ||
				(sim_policy_builtin(j->policies[k], &p) == 0 &&
				 strcmp(sw[i].scope, p.name) == 0);
		}
		if (!named)
			return cli_fail("--sweep %s:%s: no --policy %s",
					sw[i].scope, sw[i].key, sw[i].scope);
	}
	return 0;
}

/* The runs: every policy, for every value of its sweep; group[k] is run
 * k's policy (its index in j->policies). */
static int prepare(const struct job *j, const struct sweep *sw, size_t nsw,
		   const struct sim_model *base, struct sim_policy *pol,
		   struct sim_model *models, size_t *group, size_t *n)
{
	*n = 0;
	for (size_t i = 0; i < j->npolicies; i++) {
		struct sim_policy p0;
		const struct sweep *w;

		if (load_policy(j->policies[i], &p0) != 0)
			return CLI_EXIT_FAIL;
		w = sweep_for(sw, nsw, j->policies[i], p0.name);
		for (size_t v = 0; v < (w ? w->n : 1); v++) {
			struct sim_policy *p = &pol[*n];
			struct sim_model *m = &models[*n];
			char diag[256];

			if (*n == MAX_RUNS)
				return cli_fail("--sweep: more than %d runs",
						MAX_RUNS);
			*p = p0;
			*m = *base;
			if (w) {
				size_t len = strlen(p->name);

				if (apply_setting(m, p, w->key, w->values[v],
						  "--sweep") != 0)
					return CLI_EXIT_FAIL;
				snprintf(p->name + len, sizeof(p->name) - len,
					 " %s=%s", w->key, w->values[v]);
			}
			if (sim_policy_validate(p, diag, sizeof(diag)) != 0 ||
			    sim_model_validate(m, diag, sizeof(diag)) != 0)
				return cli_fail("--policy %s: %s",
						j->policies[i], diag);
			group[(*n)++] = i;
		}
	}
	return 0;
}

static int run_all(const struct job *j, const struct trace *t,
		   struct sim_policy *pol, struct sim_model *models, size_t n,
		   const uint16_t *oc, size_t noc, struct sim_result *res)
{
	int tty = isatty(STDERR_FILENO);

	for (size_t i = 0; i < n; i++) {
		char diag[256];
		double c0 = cpu_now();
		int rc;

		if (tty)
			fprintf(stderr, "\rsimulating %zu/%zu: %-30s", i + 1, n,
				pol[i].name);
		rc = sim_run(t, &models[i], &pol[i], oc, noc, &res[i], diag,
			     sizeof(diag));
		if (rc != 0) {
			if (tty)
				fputc('\n', stderr);
			return cli_fail("%s: %s", pol[i].name, diag);
		}
		res[i].cpu_seconds = cpu_now() - c0;
	}
	if (tty)
		fprintf(stderr, "\r%60s\r", "");
	(void)j;
	return 0;
}

int cli_simulate(struct cli_ctx *ctx, int argc, char **argv)
{
	struct job j = { 0 };
	struct sweep sw[MAX_POLICIES + 1];
	struct trace *t = NULL;
	struct sim_model base;
	struct sim_policy *pol = NULL;
	struct sim_model *models = NULL;
	struct sim_result *res = NULL, oracle = { 0 }, steady = { 0 };
	double bound = 0;
	uint16_t *oc = NULL;
	size_t n = 0, noc = 0, *group = NULL;
	struct oracle_info oi = { 0 };
	long ref = -1;
	int ret = collect(ctx, argc, argv, &j);

	memset(sw, 0, sizeof(sw));
	if (ret != 0)
		return ret;
	ret = CLI_EXIT_FAIL;
	if (j.metrics != NULL) {
		struct sim_policy p;

		if (model_of(&j, &base) == 0 &&
		    load_policy(j.policies[0], &p) == 0)
			ret = cli_simulate_metrics(ctx, j.metrics, &p, &base);
		return ret;
	}
	for (size_t i = 0; i < j.nsweeps; i++)
		if (parse_sweep(j.sweeps[i], &sw[i]) != 0)
			goto out;
	if (check_sweeps(&j, sw, j.nsweeps) != 0 || model_of(&j, &base) != 0)
		goto out;
	pol = xcalloc(MAX_RUNS, sizeof(*pol));
	models = xcalloc(MAX_RUNS, sizeof(*models));
	group = xcalloc(MAX_RUNS, sizeof(*group));
	if (prepare(&j, sw, j.nsweeps, &base, pol, models, group, &n) != 0 ||
	    check_compare(&j, pol, group, n, &ref) != 0)
		goto out;
	t = load_trace(&j);
	if (t == NULL)
		goto out;
	if (run_oracle(t, &base, &oracle, &oc, &noc, &oi.rho) != 0 ||
	    refine_oracle(t, &base, &oracle, &oc, &noc, &oi) != 0 ||
	    (j.steady &&
	     run_steady(t, &base, oc, noc, &steady, &bound) != 0))
		goto out;
	res = xcalloc(n, sizeof(*res));
	if (run_all(&j, t, pol, models, n, oc, noc, res) != 0)
		goto out;
	if (j.plot) {
		char diag[256];

		if (sim_plot_write(j.plot, res, n, &oracle, diag,
				   sizeof(diag)) != 0) {
			cli_fail("--plot %s: %s", j.plot, diag);
			goto out;
		}
	}
	struct cmp cmp;

	if (ref >= 0)
		compare(&j, res, group, n, ref, &cmp);
	if (cli_structured(ctx))
		print_json(t, res, n, &oracle, &oi, j.steady ? &steady : NULL,
			   bound, ref >= 0 ? compare_json(&j, &cmp) : NULL);
	else {
		print_table(t, &base, res, n, &oracle, &oi,
			    j.steady ? &steady : NULL, bound);
		if (ref >= 0)
			print_compare(&j, &cmp);
	}
	ret = CLI_EXIT_OK;
out:
	for (size_t i = 0; res && i < n; i++)
		sim_result_clear(&res[i]);
	sim_result_clear(&oracle);
	sim_result_clear(&steady);
	free(res);
	free(oc);
	free(pol);
	free(models);
	free(group);
	for (size_t i = 0; i < j.nsweeps; i++)
		free(sw[i].text);
	trace_free(t);
	return ret;
}
