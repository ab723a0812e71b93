/* sim_metrics.c - the alarm path over a metric sequence (sim_metrics.h). */
#include "sim/sim_metrics.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/xalloc.h"

#define FIELDS_MAX 3
#define SECONDS_MAX 1e9
/* The virtual clock starts a day in: time 0 means "never" to the chain. */
#define BASE_MS 86400000

struct field {
	const char *p;
	size_t len, col;
};

/* Splits one line at commas into at most FIELDS_MAX + 1 fields (one more
 * than allowed, so that too many is seen), trimming blanks. */
static size_t split(const char *p, size_t len, struct field *f)
{
	size_t n = 0, i = 0, start;

	while (n <= FIELDS_MAX) {
		start = i;
		while (i < len && p[i] != ',')
			i++;
		f[n].p = p + start;
		f[n].len = i - start;
		f[n].col = start + 1;
		while (f[n].len > 0 && (*f[n].p == ' ' || *f[n].p == '\t')) {
			f[n].p++;
			f[n].len--;
			f[n].col++;
		}
		while (f[n].len > 0 && (f[n].p[f[n].len - 1] == ' ' ||
					f[n].p[f[n].len - 1] == '\t' ||
					f[n].p[f[n].len - 1] == '\r'))
			f[n].len--;
		n++;
		if (i >= len)
			break;
		i++;
	}
	return n;
}

static bool number(const struct field *f, double *out)
{
	char tmp[64], *end;

	if (f->len == 0 || f->len >= sizeof(tmp))
		return false;
	memcpy(tmp, f->p, f->len);
	tmp[f->len] = '\0';
	errno = 0;
	*out = strtod(tmp, &end);
	return *end == '\0' && errno == 0 && isfinite(*out);
}

/* Reads one record into *m; returns 0, 1 for a header, or an error. */
static int record(const char *p, size_t len, size_t lineno, bool first,
		  int64_t prev_ms, struct sim_metric *m, char *diag,
		  size_t diagsz)
{
	static const double hi[FIELDS_MAX] = { SECONDS_MAX, 1000, 100 };
	static const char *const what[FIELDS_MAX] = {
		"a time in seconds", "a CPU utilization", "a memory utilization"
	};
	struct field f[FIELDS_MAX + 1];
	double v[FIELDS_MAX] = { 0, 0, 0 };
	size_t n = split(p, len, f);

	if (n < 2 || n > FIELDS_MAX) {
		mds_diag(diag, diagsz, "line %zu, column 1: expected "
			 "seconds,cpu[,mem], found %zu field%s", lineno, n,
			 n == 1 ? "" : "s");
		return MDS_E_PARSE;
	}
	for (size_t i = 0; i < n; i++) {
		if (!number(&f[i], &v[i])) {
			if (i == 0 && first)
				return 1;
			mds_diag(diag, diagsz, "line %zu, column %zu: %s must "
				 "be a number", lineno, f[i].col, what[i]);
			return MDS_E_PARSE;
		}
		if (v[i] < 0 || v[i] > hi[i]) {
			mds_diag(diag, diagsz, "line %zu, column %zu: %s must "
				 "be from 0 to %g", lineno, f[i].col, what[i],
				 hi[i]);
			return MDS_E_INVAL;
		}
	}
	m->t_ms = (int64_t)llround(v[0] * 1000);
	m->cpu = v[1];
	m->mem = v[2];
	if (m->t_ms < prev_ms) {
		mds_diag(diag, diagsz, "line %zu, column 1: the time goes "
			 "backwards", lineno);
		return MDS_E_PARSE;
	}
	return 0;
}

int sim_metrics_parse(const char *text, size_t len, struct sim_metric **out,
		      size_t *n, char *diag, size_t diagsz)
{
	struct sim_metric *v = NULL, m;
	size_t nv = 0, cap = 0, pos = 0, lineno = 0, end, i;
	bool first = true;
	int rc = 0;

	while (rc == 0 && pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);

		end = nl != NULL ? (size_t)(nl - text) : len;
		lineno++;
		for (i = pos; i < end && (text[i] == ' ' || text[i] == '\t' ||
					  text[i] == '\r'); i++)
			;
		if (i < end && text[i] != '#') {
			rc = record(text + pos, end - pos, lineno, first,
				    nv > 0 ? v[nv - 1].t_ms : 0, &m, diag,
				    diagsz);
			first = false;
			if (rc == 1) {
				rc = 0;
			} else if (rc == 0 && nv == SIM_METRICS_MAX) {
				mds_diag(diag, diagsz, "more than %u samples",
					 SIM_METRICS_MAX);
				rc = MDS_E_LIMIT;
			} else if (rc == 0) {
				if (nv == cap) {
					cap = cap ? cap * 2 : 256;
					v = xreallocarray(v, cap, sizeof(*v));
				}
				v[nv++] = m;
			}
		}
		pos = end + 1;
	}
	if (rc == 0 && nv == 0) {
		mds_diag(diag, diagsz, "no sample");
		rc = MDS_E_INVAL;
	}
	if (rc != 0) {
		free(v);
		return rc;
	}
	*out = v;
	*n = nv;
	return 0;
}

int sim_metrics_run(const struct policy *p, const struct sim_metric *v,
		    size_t n, const struct sim_metrics_opts *o,
		    struct sim_decision **log, size_t *nlog, uint32_t *final,
		    char *diag, size_t diagsz)
{
	struct sim_alarms *a = NULL;
	const struct sim_decision *d;
	struct sim_decision *copy = NULL;
	int64_t t, end, busy_until = 0;
	uint32_t count = o->initial, want;
	size_t next = 0, nd;
	int rc;

	if (o->eval_ms <= 0 || o->busy_ms < 0 || o->initial < 1 || n == 0) {
		mds_diag(diag, diagsz, "the evaluation period must be above "
			 "0, the initial count at least 1");
		return MDS_E_INVAL;
	}
	rc = policy_validate(p, diag, diagsz);
	if (rc == 0)
		rc = sim_alarms_new(p, &a, diag, diagsz);
	if (rc != 0)
		return rc;
	end = o->end_ms >= 0 ? o->end_ms : v[n - 1].t_ms;
	for (t = o->eval_ms; rc == 0 && t <= end; t += o->eval_ms) {
		/* Samples are stored at their own times, as posted. */
		for (; rc == 0 && next < n && v[next].t_ms <= t; next++)
			rc = sim_alarms_sample(a, 0, BASE_MS + v[next].t_ms,
					       v[next].cpu, v[next].mem);
		if (rc == 0)
			rc = sim_alarms_tick(a, BASE_MS + t, count,
					     t < busy_until ? "UPDATING"
							    : "ACTIVE", &want);
		if (rc == 0 && want != count) {
			count = want;
			busy_until = t + o->busy_ms;
		}
	}
	if (rc == 0) {
		d = sim_alarms_log(a, &nd);
		if (nd > 0) {
			copy = xreallocarray(NULL, nd, sizeof(*copy));
			memcpy(copy, d, nd * sizeof(*copy));
			for (size_t i = 0; i < nd; i++)
				copy[i].t_ms -= BASE_MS;
		}
		*log = copy;
		*nlog = nd;
		*final = count;
	} else {
		mds_diag(diag, diagsz, "the alarm evaluation failed: %s",
			 mds_strerror(rc));
	}
	sim_alarms_free(a);
	return rc;
}
