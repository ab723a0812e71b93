/*
 * cli_sim_metrics.c - `mdscale simulate --metrics FILE`; see
 * cli_sim_metrics.h. The file is read whole and checked before anything
 * runs; errors are one line naming the line and column.
 */
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "cli/cli_sim_metrics.h"
#include "sim/sim_metrics.h"
#include "util/err.h"
#include "util/file.h"

#define METRICS_FILE_MAX (512u << 20)

static void print_json(const struct sim_policy *p, const struct sim_model *m,
		       size_t nsamples, const struct sim_decision *d,
		       size_t nd, uint32_t final)
{
	json_t *moves = json_array(), *o;

	for (size_t i = 0; i < nd; i++)
		json_array_append_new(moves, json_pack(
			"{s:f, s:s, s:s, s:s, s:i, s:i}",
			"seconds", (double)d[i].t_ms / 1000.0, "alarm",
			d[i].title, "type", d[i].type, "move",
			policy_move_name(d[i].move), "from", (int)d[i].from,
			"to", (int)d[i].to));
	o = json_pack("{s:s, s:I, s:I, s:I, s:i, s:o, s:i}", "policy",
		      p->name, "samples", (json_int_t)nsamples, "evalMs",
		      (json_int_t)m->eval_ms, "updatingMs",
		      (json_int_t)m->startup_ms, "initial",
		      (int)sim_initial(p, NULL, 0),
		      "decisions", moves, "instances", (int)final);
	json_dumpf(o, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(o);
}

static void print_table(const struct sim_policy *p, size_t nsamples,
			const struct sim_decision *d, size_t nd,
			uint32_t final)
{
	printf("policy %s over %zu samples: %zu move%s, %u instance%s at "
	       "the end\n", p->name, nsamples, nd, nd == 1 ? "" : "s", final,
	       final == 1 ? "" : "s");
	if (nd > 0)
		printf("%10s  %-26s %-13s %-10s %4s %4s\n", "SECONDS",
		       "ALARM", "TYPE", "MOVE", "FROM", "TO");
	for (size_t i = 0; i < nd; i++)
		printf("%10.3f  %-26s %-13s %-10s %4u %4u\n",
		       (double)d[i].t_ms / 1000.0, d[i].title, d[i].type,
		       policy_move_name(d[i].move), d[i].from, d[i].to);
}

int cli_simulate_metrics(struct cli_ctx *ctx, const char *path,
			 const struct sim_policy *p, const struct sim_model *m)
{
	struct sim_metrics_opts o = { sim_initial(p, NULL, 0), m->eval_ms,
				      m->startup_ms, -1 };
	struct sim_metric *v = NULL;
	struct sim_decision *d = NULL;
	char diag[256], *text = NULL;
	size_t len, n = 0, nd = 0;
	uint32_t final = 0;
	int rc;

	if (p->kind != SIM_ALARMS)
		return cli_fail("--metrics: policy %s is not an alarm policy "
				"(kind = alarms)", p->name);
	rc = file_read_all(path, METRICS_FILE_MAX, &text, &len, diag,
			   sizeof(diag));
	if (rc != 0)
		return cli_fail("--metrics %s: %s", path,
				rc == MDS_E_NOTFOUND ? "no such file" : diag);
	rc = sim_metrics_parse(text, len, &v, &n, diag, sizeof(diag));
	free(text);
	if (rc != 0)
		return cli_fail("--metrics %s: %s", path, diag);
	rc = sim_metrics_run(&p->alarms, v, n, &o, &d, &nd, &final, diag,
			     sizeof(diag));
	free(v);
	if (rc != 0)
		return cli_fail("--policy %s: %s", p->name, diag);
	if (cli_structured(ctx))
		print_json(p, m, n, d, nd, final);
	else
		print_table(p, n, d, nd, final);
	free(d);
	return CLI_EXIT_OK;
}
