/* sim_alarms.c - the live alarm path on the virtual clock (sim_alarms.h). */
#include "sim/sim_alarms.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alarm.h"
#include "core/iso8601.h"
#include "core/mql.h"
#include "core/shape.h"
#include "core/tsdb.h"
#include "monitoring/monitoring.h"
#include "util/err.h"
#include "util/xalloc.h"

#define RESOURCE "sim-deployment"
#define LATEST_MS 10000 /* the window the function reads the value over */
#define LOG_MAX 100000

enum { HIGH_CPU, HIGH_MEM, LOW_CPU, LOW_MEM, NALARMS };

static const char *const titles[NALARMS] = {
	POLICY_TITLE_HIGH_CPU, POLICY_TITLE_HIGH_MEM,
	POLICY_TITLE_LOW_CPU, POLICY_TITLE_LOW_MEM,
};

struct last {
	int64_t t;
	double cpu, mem;
};

struct sim_alarms {
	struct policy p;
	struct policy_history hist;
	struct tsdb *db;
	struct alarm_def def[NALARMS];
	struct alarm_state *st[NALARMS];
	bool on[NALARMS];
	struct alarm_events ev;
	struct shape_ladder ladder;
	struct last *last;
	size_t nlast;
	struct sim_decision *log;
	size_t nlog, caplog;
};

static int make(struct sim_alarms *a, int k, char *diag, size_t diagsz)
{
	char query[MQL_MAX_QUERY + 1], id[16];
	bool high = k == HIGH_CPU || k == HIGH_MEM;
	bool mem = k == HIGH_MEM || k == LOW_MEM;
	struct alarm_def *d = &a->def[k];
	int rc;

	alarm_def_clear(d);
	snprintf(id, sizeof(id), "alarm-%d", k);
	d->id = xstrdup(id);
	d->display_name = xstrdup(titles[k]);
	d->namespace = xstrdup(MONITORING_NAMESPACE);
	policy_alarm_query(&a->p, high, mem, RESOURCE, query, sizeof(query));
	rc = alarm_def_set_query(d, query, diag, diagsz);
	if (rc == 0)
		rc = iso8601_duration_parse(high ? a->p.high_pending
						 : a->p.low_pending,
					    &d->pending_ms, diag, diagsz);
	if (rc == 0)
		rc = iso8601_duration_parse(high ? a->p.high_repeat
						 : a->p.low_repeat,
					    &d->repeat_ms, diag, diagsz);
	if (rc != 0)
		return rc;
	alarm_state_reset(a->st[k]);
	a->on[k] = true;
	return 0;
}

int sim_alarms_new(const struct policy *p, struct sim_alarms **out,
		   char *diag, size_t diagsz)
{
	struct sim_alarms *a = xcalloc(1, sizeof(*a));
	int rc;

	a->p = *p;
	alarm_events_init(&a->ev);
	shape_ladder_init(&a->ladder);
	rc = tsdb_create(NULL, &a->db, diag, diagsz);
	for (int k = 0; k < NALARMS; k++) {
		alarm_def_init(&a->def[k]);
		a->st[k] = alarm_state_new();
	}
	if (rc == 0)
		rc = shape_ladder_add(&a->ladder, "sim", 250, 1ull << 30, diag,
				      diagsz);
	if (rc == 0)
		rc = make(a, HIGH_CPU, diag, diagsz);
	if (rc == 0)
		rc = make(a, HIGH_MEM, diag, diagsz);
	if (rc != 0) {
		sim_alarms_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

void sim_alarms_free(struct sim_alarms *a)
{
	if (a == NULL)
		return;
	for (int k = 0; k < NALARMS; k++) {
		alarm_def_clear(&a->def[k]);
		alarm_state_free(a->st[k]);
	}
	alarm_events_free(&a->ev);
	tsdb_free(a->db);
	free(a->last);
	free(a->log);
	free(a);
}

int sim_alarms_sample(struct sim_alarms *a, size_t inst, int64_t t_ms,
		      double cpu, double mem)
{
	char id[32];
	struct tsdb_dim dims[2] = { { "instanceId", id },
				    { "resourceId", RESOURCE } };
	int rc;

	snprintf(id, sizeof(id), "sim-instance-%zu", inst);
	rc = tsdb_append(a->db, MONITORING_NAMESPACE, "CpuUtilization", dims,
			 2, t_ms, cpu, NULL, 0);
	if (rc == 0)
		rc = tsdb_append(a->db, MONITORING_NAMESPACE,
				 "MemoryUtilization", dims, 2, t_ms, mem, NULL,
				 0);
	if (inst >= a->nlast) {
		size_t n = inst + 16;

		a->last = xreallocarray(a->last, n, sizeof(*a->last));
		memset(a->last + a->nlast, 0, (n - a->nlast) * sizeof(*a->last));
		a->nlast = n;
	}
	a->last[inst] = (struct last){ t_ms, cpu, mem };
	return rc;
}

/* The value the function reads: the newest sample of the last 10 s, the
 * highest over the instances; NaN without data. */
static double latest(const struct sim_alarms *a, bool mem, int64_t now_ms)
{
	double v = NAN;

	for (size_t i = 0; i < a->nlast; i++) {
		const struct last *l = &a->last[i];
		double x = mem ? l->mem : l->cpu;

		if (l->t > 0 && l->t > now_ms - LATEST_MS &&
		    (isnan(v) || x > v))
			v = x;
	}
	return v;
}

static void note(struct sim_alarms *a, int64_t now_ms, int k,
		 enum alarm_event_type type, const struct policy_decision *d,
		 uint32_t from)
{
	if (a->nlog == LOG_MAX)
		return;
	if (a->nlog == a->caplog) {
		a->caplog = a->caplog ? a->caplog * 2 : 64;
		a->log = xreallocarray(a->log, a->caplog, sizeof(*a->log));
	}
	a->log[a->nlog++] = (struct sim_decision){
		now_ms, titles[k], alarm_event_type_name(type), d->move, from,
		d->new_count,
	};
}

/* The function's handling of one message of alarm k. */
static int handle(struct sim_alarms *a, int k, enum alarm_event_type type,
		  int64_t now_ms, const char *state, uint32_t *count,
		  char *diag, size_t diagsz)
{
	bool mem = k == HIGH_MEM || k == LOW_MEM;
	struct policy_input in = {
		.type = alarm_event_type_name(type), .title = titles[k],
		.lifecycle_state = state, .instance_count = *count,
		.shape = "sim", .ladder = &a->ladder,
		.value = latest(a, mem, now_ms), .now_ms = now_ms,
	};
	struct policy_decision d;
	int rc = policy_decide(&a->p, &a->hist, &in, &d);

	if (rc != 0)
		return rc;
	if (d.move == POLICY_SCALE_OUT || d.move == POLICY_SCALE_IN) {
		note(a, now_ms, k, type, &d, *count);
		*count = d.new_count;
		policy_history_note(&a->hist, d.move, now_ms);
	}
	if (d.move != POLICY_NONE && d.create_low_alarm != NULL) {
		int low = strcmp(d.create_low_alarm, "mem") == 0 ? LOW_MEM
								 : LOW_CPU;
		if (!a->on[low])
			rc = make(a, low, diag, diagsz);
	}
	if (d.delete_alarm && (k == LOW_CPU || k == LOW_MEM)) {
		alarm_def_clear(&a->def[k]);
		a->on[k] = false;
	}
	return rc;
}

int sim_alarms_tick(struct sim_alarms *a, int64_t now_ms, uint32_t count,
		    const char *state, uint32_t *want)
{
	uint32_t before = count;
	char diag[256];
	int rc = 0;

	for (int k = 0; k < NALARMS && rc == 0; k++) {
		if (!a->on[k])
			continue;
		alarm_events_reset(&a->ev);
		rc = alarm_eval(a->st[k], &a->def[k], a->db, now_ms, &a->ev);
		for (size_t i = 0; rc == 0 && i < a->ev.n; i++) {
			enum alarm_event_type t = a->ev.v[i].type;

			if (t == ALARM_OK_TO_FIRING || t == ALARM_REPEAT)
				rc = handle(a, k, t, now_ms, state, &count,
					    diag, sizeof(diag));
			/* Only one move per tick: the deployment is then
			 * updating. */
			if (count != before)
				state = "UPDATING";
		}
	}
	*want = count;
	return rc;
}

const struct sim_decision *sim_alarms_log(const struct sim_alarms *a,
					  size_t *n)
{
	*n = a->nlog;
	return a->log;
}
