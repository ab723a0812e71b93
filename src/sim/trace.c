/*
 * trace.c - reading request traces (see trace.h for the formats).
 *
 * One pass over the text: each line is split at commas, each field parsed
 * with its 1-based column known so that an error can name it. Records land
 * in a growing array capped at TRACE_MAX_REQUESTS; then the costs are
 * normalised (azure), the rate scaling and the time compression applied.
 */
#include "sim/trace.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/xalloc.h"

#define AZURE_HEADER "TIMESTAMP,ContextTokens,GeneratedTokens"
#define MAX_FIELDS 4
#define NUM_MAX 64 /* longest numeric field */

struct field {
	const char *p;
	size_t len;
	size_t col; /* 1-based */
};

struct line {
	const char *p;
	size_t len;
	size_t no; /* 1-based */
	struct field f[MAX_FIELDS];
	size_t nf;
};

struct reqs {
	struct trace_req *v;
	size_t n, cap;
};

static int push(struct reqs *r, int64_t t_us, uint32_t ctx, uint32_t gen,
		double cost, char *diag, size_t diagsz)
{
	if (r->n >= TRACE_MAX_REQUESTS) {
		mds_diag(diag, diagsz, "the trace has more than %u requests",
			 TRACE_MAX_REQUESTS);
		return MDS_E_LIMIT;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 1024;
		r->v = xreallocarray(r->v, r->cap, sizeof(*r->v));
	}
	r->v[r->n++] = (struct trace_req){ .t_us = t_us, .ctx_tokens = ctx,
					   .gen_tokens = gen, .cost = cost };
	return 0;
}

/* Splits a line at commas; trims spaces around each field. */
static int split(struct line *l, char *diag, size_t diagsz)
{
	size_t start = 0;

	l->nf = 0;
	for (size_t i = 0; i <= l->len; i++) {
		if (i < l->len && l->p[i] != ',')
			continue;
		if (l->nf == MAX_FIELDS) {
			mds_diag(diag, diagsz, "line %zu, column %zu: too many "
				 "fields", l->no, start + 1);
			return MDS_E_PARSE;
		}
		size_t a = start, b = i;

		while (a < b && (l->p[a] == ' ' || l->p[a] == '\t'))
			a++;
		while (b > a && (l->p[b - 1] == ' ' || l->p[b - 1] == '\t'))
			b--;
		l->f[l->nf++] = (struct field){ l->p + a, b - a, a + 1 };
		start = i + 1;
	}
	return 0;
}

static bool digits(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return n > 0;
}

static int64_t num(const char *p, size_t n)
{
	int64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = v * 10 + (p[i] - '0');
	return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's method). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

/*
 * Parses "YYYY-MM-DD[ T]HH:MM:SS[.f...]" (fractions to the microsecond,
 * finer digits dropped) into microseconds since the epoch. Returns 0, or
 * -1 with *bad the 0-based offset of the first wrong character.
 */
static int parse_datetime(const char *p, size_t n, int64_t *us, size_t *bad)
{
	static const char shape[] = "dddd-dd-dd?dd:dd:dd";
	size_t k = sizeof(shape) - 1;

	for (size_t i = 0; i < k; i++) {
		char c = i < n ? p[i] : '\0';
		bool ok = shape[i] == 'd' ? (c >= '0' && c <= '9')
			: shape[i] == '?' ? (c == ' ' || c == 'T')
			: c == shape[i];
		if (!ok) {
			*bad = i;
			return -1;
		}
	}
	int64_t y = num(p, 4), mo = num(p + 5, 2), d = num(p + 8, 2);
	int64_t h = num(p + 11, 2), mi = num(p + 14, 2), s = num(p + 17, 2);

	if (mo < 1 || mo > 12) {
		*bad = 5;
		return -1;
	}
	if (d < 1 || d > 31) {
		*bad = 8;
		return -1;
	}
	if (h > 23 || mi > 59 || s > 60) {
		*bad = h > 23 ? 11 : mi > 59 ? 14 : 17;
		return -1;
	}
	int64_t frac = 0;

	if (k < n) {
		if (p[k] != '.' || !digits(p + k + 1, n - k - 1)) {
			*bad = p[k] != '.' ? k : k + 1;
			for (size_t i = k + 1; p[k] == '.' && i < n; i++)
				if (p[i] < '0' || p[i] > '9') {
					*bad = i;
					break;
				}
			return -1;
		}
		for (size_t i = 0; i < 6; i++)
			frac = frac * 10 + (k + 1 + i < n ? p[k + 1 + i] - '0' : 0);
	}
	*us = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) *
	       1000000) + frac;
	return 0;
}

/* Parses a finite decimal number filling the whole field. */
static int parse_double(const struct field *f, double *out)
{
	char tmp[NUM_MAX];
	char *end;

	if (f->len == 0 || f->len >= sizeof(tmp))
		return -1;
	memcpy(tmp, f->p, f->len);
	tmp[f->len] = '\0';
	/* Only plain decimals: no hex, inf or nan that strtod would take. */
	for (size_t i = 0; i < f->len; i++)
		if (!strchr("0123456789.-+eE", tmp[i]))
			return -1;
	*out = strtod(tmp, &end);
	return (*end == '\0' && isfinite(*out)) ? 0 : -1;
}

static int field_error(const struct line *l, const struct field *f,
		       const char *what, char *diag, size_t diagsz)
{
	mds_diag(diag, diagsz, "line %zu, column %zu: %s", l->no, f->col,
		 what);
	return MDS_E_PARSE;
}

static int want_fields(const struct line *l, size_t lo, size_t hi,
		       char *diag, size_t diagsz)
{
	if (l->nf >= lo && l->nf <= hi)
		return 0;
	if (lo == hi)
		mds_diag(diag, diagsz, "line %zu, column %zu: expected %zu "
			 "fields, found %zu", l->no,
			 l->nf > hi ? l->f[hi].col : l->len + 1, lo, l->nf);
	else
		mds_diag(diag, diagsz, "line %zu, column %zu: expected %zu to "
			 "%zu fields, found %zu", l->no,
			 l->nf > hi ? l->f[hi].col : l->len + 1, lo, hi, l->nf);
	return MDS_E_PARSE;
}

static int backwards(const struct line *l, char *diag, size_t diagsz)
{
	mds_diag(diag, diagsz, "line %zu, column 1: timestamps out of order "
		 "(this one is before the previous one)", l->no);
	return MDS_E_PARSE;
}

struct reader {
	struct reqs r;
	enum trace_format fmt;
	bool started;
	int64_t first_us; /* azure, times */
	int64_t last_us;
	double carry;     /* rates: fractional requests carried over */
	int64_t second;   /* rates: the next second */
};

static int parse_tokens(const struct line *l, const struct field *f,
			uint32_t *out, char *diag, size_t diagsz)
{
	if (!digits(f->p, f->len) || f->len > 9)
		return field_error(l, f, "expected a token count (a whole "
				   "number below 10^9)", diag, diagsz);
	*out = (uint32_t)num(f->p, f->len);
	return 0;
}

/* Parses a time field (seconds or a timestamp) into microseconds. */
static int parse_time(const struct line *l, const struct field *f,
		      bool datetime_only, int64_t *us, char *diag,
		      size_t diagsz)
{
	size_t bad = 0;
	double s;

	if (f->len >= 10 && f->p[4] == '-') {
		if (parse_datetime(f->p, f->len, us, &bad) == 0)
			return 0;
		mds_diag(diag, diagsz, "line %zu, column %zu: expected a "
			 "timestamp YYYY-MM-DD HH:MM:SS[.fraction]", l->no,
			 f->col + bad);
		return MDS_E_PARSE;
	}
	if (datetime_only)
		return field_error(l, f, "expected a timestamp YYYY-MM-DD "
				   "HH:MM:SS[.fraction]", diag, diagsz);
	if (parse_double(f, &s) != 0)
		return field_error(l, f, "expected a time in seconds or a "
				   "timestamp", diag, diagsz);
	if (s < 0 || s > 1e9) {
		mds_diag(diag, diagsz, "line %zu, column %zu: a time must be "
			 "between 0 and 10^9 seconds", l->no, f->col);
		return MDS_E_INVAL;
	}
	*us = llround(s * 1e6);
	return 0;
}

static int arrival(struct reader *rd, const struct line *l, int64_t us,
		   uint32_t ctx, uint32_t gen, double cost, char *diag,
		   size_t diagsz)
{
	if (!rd->started) {
		rd->started = true;
		rd->first_us = us;
	} else if (us < rd->last_us) {
		return backwards(l, diag, diagsz);
	}
	rd->last_us = us;
	return push(&rd->r, us - rd->first_us, ctx, gen, cost, diag, diagsz);
}

static int read_azure(struct reader *rd, const struct line *l, char *diag,
		      size_t diagsz)
{
	uint32_t ctx, gen;
	int64_t us;
	int rc = want_fields(l, 3, 3, diag, diagsz);

	if (rc == 0)
		rc = parse_time(l, &l->f[0], true, &us, diag, diagsz);
	if (rc == 0)
		rc = parse_tokens(l, &l->f[1], &ctx, diag, diagsz);
	if (rc == 0)
		rc = parse_tokens(l, &l->f[2], &gen, diag, diagsz);
	if (rc == 0)
		rc = arrival(rd, l, us, ctx, gen, trace_token_weight(ctx, gen),
			     diag, diagsz);
	return rc;
}

static int read_times(struct reader *rd, const struct line *l, char *diag,
		      size_t diagsz)
{
	double cost = 1.0;
	int64_t us;
	int rc = want_fields(l, 1, 2, diag, diagsz);

	if (rc == 0)
		rc = parse_time(l, &l->f[0], false, &us, diag, diagsz);
	if (rc == 0 && l->nf == 2) {
		if (parse_double(&l->f[1], &cost) != 0)
			return field_error(l, &l->f[1], "expected a cost (a "
					   "number)", diag, diagsz);
		if (!(cost > 0) || cost > 1e6) {
			mds_diag(diag, diagsz, "line %zu, column %zu: a cost "
				 "must be above 0 and at most 10^6", l->no,
				 l->f[1].col);
			return MDS_E_INVAL;
		}
	}
	if (rc == 0)
		rc = arrival(rd, l, us, 0, 0, cost, diag, diagsz);
	return rc;
}

static int read_rates(struct reader *rd, const struct line *l, char *diag,
		      size_t diagsz)
{
	const struct field *rf = &l->f[l->nf - 1];
	double rate;
	int64_t sec = rd->second;
	int rc = want_fields(l, 1, 2, diag, diagsz);

	if (rc != 0)
		return rc;
	if (l->nf == 2) {
		if (!digits(l->f[0].p, l->f[0].len) || l->f[0].len > 9)
			return field_error(l, &l->f[0], "expected a second "
					   "(a whole number)", diag, diagsz);
		sec = num(l->f[0].p, l->f[0].len);
		if (rd->started && sec < rd->second)
			return backwards(l, diag, diagsz);
		if (!rd->started)
			rd->first_us = sec;
	}
	if (parse_double(rf, &rate) != 0)
		return field_error(l, rf, "expected a rate (requests per "
				   "second)", diag, diagsz);
	if (rate < 0 || rate > TRACE_RATE_MAX) {
		mds_diag(diag, diagsz, "line %zu, column %zu: a rate must be "
			 "between 0 and %.0f requests per second", l->no,
			 rf->col, TRACE_RATE_MAX);
		return MDS_E_INVAL;
	}
	if (!rd->started) {
		rd->started = true;
		if (l->nf == 1)
			rd->first_us = 0;
	}
	rd->carry += rate;
	int64_t k = (int64_t)floor(rd->carry + 1e-9);
	int64_t base = (sec - rd->first_us) * 1000000;

	rd->carry -= (double)k;
	for (int64_t j = 0; j < k && rc == 0; j++)
		rc = push(&rd->r, base + (int64_t)((j + 0.5) * 1e6 / (double)k),
			  0, 0, 1.0, diag, diagsz);
	rd->second = sec + 1;
	rd->last_us = rd->second * 1000000 - rd->first_us * 1000000;
	return rc;
}

/* Whether a first line is a header, and of which format. */
static bool header(const struct line *l, enum trace_format *fmt)
{
	if (l->len == strlen(AZURE_HEADER) &&
	    memcmp(l->p, AZURE_HEADER, l->len) == 0) {
		*fmt = TRACE_AZURE;
		return true;
	}
	const struct field *last = &l->f[l->nf - 1];
	const char *p = l->f[0].p;

	if (l->nf >= 1 && l->nf <= 2 && last->len == 4 &&
	    strncmp(last->p, "rate", 4) == 0) {
		*fmt = TRACE_RATES;
		return true;
	}
	/* Any other first field that is not a number or timestamp. */
	if (l->f[0].len > 0 && !(p[0] >= '0' && p[0] <= '9') && p[0] != '.' &&
	    p[0] != '-' && p[0] != '+') {
		*fmt = TRACE_TIMES;
		return true;
	}
	return false;
}

static int read_lines(struct reader *rd, const char *text, size_t len,
		      char *diag, size_t diagsz)
{
	struct line l = { 0 };
	bool first = true;
	size_t pos = 0;
	int rc = 0;

	while (pos < len && rc == 0) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;

		l.p = text + pos;
		l.len = end - pos;
		l.no++;
		pos = end + 1;
		if (l.len > 0 && l.p[l.len - 1] == '\r')
			l.len--;
		if (l.len == 0 || l.p[0] == '#')
			continue;
		rc = split(&l, diag, diagsz);
		if (rc != 0)
			break;
		if (first) {
			enum trace_format hf;

			first = false;
			if (header(&l, &hf)) {
				if (rd->fmt == TRACE_AUTO)
					rd->fmt = hf;
				else if (rd->fmt == TRACE_AZURE &&
					 hf != TRACE_AZURE)
					rc = field_error(&l, &l.f[0],
						"expected the header "
						AZURE_HEADER, diag, diagsz);
				continue;
			}
			if (rd->fmt == TRACE_AUTO)
				rd->fmt = TRACE_TIMES;
			if (rd->fmt == TRACE_AZURE) {
				rc = field_error(&l, &l.f[0], "expected the "
					"header " AZURE_HEADER, diag, diagsz);
				break;
			}
		}
		rc = rd->fmt == TRACE_AZURE   ? read_azure(rd, &l, diag, diagsz)
		     : rd->fmt == TRACE_RATES ? read_rates(rd, &l, diag, diagsz)
					      : read_times(rd, &l, diag, diagsz);
	}
	return rc;
}

static int by_time(const void *a, const void *b)
{
	const struct trace_req *x = a, *y = b;

	if (x->t_us != y->t_us)
		return x->t_us < y->t_us ? -1 : 1;
	if (x->cost != y->cost)
		return x->cost < y->cost ? -1 : 1;
	if (x->ctx_tokens != y->ctx_tokens)
		return x->ctx_tokens < y->ctx_tokens ? -1 : 1;
	return x->gen_tokens < y->gen_tokens ? -1
	       : x->gen_tokens > y->gen_tokens;
}

/*
 * Thins (scale < 1: every request whose share crosses a whole number is
 * kept) or repeats (scale > 1) the requests. A copy lands within
 * TRACE_SPREAD_US after its original, at a deterministic low-discrepancy
 * offset, so the load per second is multiplied without turning each
 * request into a burst of identical arrivals.
 */
static int rescale(struct reqs *r, double scale, char *diag, size_t diagsz)
{
	static const double phi = 0.6180339887498949;
	struct reqs out = { 0 };
	int rc = 0;

	for (size_t i = 0; i < r->n && rc == 0; i++) {
		int64_t copies = (int64_t)floor((double)(i + 1) * scale + 1e-9) -
				 (int64_t)floor((double)i * scale + 1e-9);
		for (int64_t k = 0; k < copies && rc == 0; k++) {
			struct trace_req q = r->v[i];
			double f = fmod((double)(out.n + 1) * phi, 1.0);

			rc = push(&out, q.t_us + (scale > 1 && k > 0
					? (int64_t)(f * TRACE_SPREAD_US) : 0),
				  q.ctx_tokens, q.gen_tokens, q.cost, diag,
				  diagsz);
		}
	}
	free(r->v);
	*r = out;
	if (rc == 0 && scale > 1 && r->n > 1) /* copies, out of order */
		qsort(r->v, r->n, sizeof(*r->v), by_time);
	return rc;
}

static int check_opts(const struct trace_opts *o, double *compress,
		      double *scale, char *diag, size_t diagsz)
{
	*compress = o && o->compress != 0 ? o->compress : 1.0;
	*scale = o && o->scale != 0 ? o->scale : 1.0;
	if (!(*compress > 0) || *compress > TRACE_COMPRESS_MAX) {
		mds_diag(diag, diagsz, "time compression must be above 0 and "
			 "at most %.0f", TRACE_COMPRESS_MAX);
		return MDS_E_INVAL;
	}
	if (!(*scale > 0) || *scale > TRACE_SCALE_MAX) {
		mds_diag(diag, diagsz, "rate scaling must be above 0 and at "
			 "most %.0f", TRACE_SCALE_MAX);
		return MDS_E_INVAL;
	}
	return 0;
}

int trace_parse(const char *text, size_t len, const struct trace_opts *opts,
		struct trace **out, char *diag, size_t diagsz)
{
	struct reader rd = { .fmt = opts ? opts->format : TRACE_AUTO };
	double compress, scale, wsum = 0;
	size_t source;
	int rc = check_opts(opts, &compress, &scale, diag, diagsz);

	if (rc == 0)
		rc = read_lines(&rd, text, len, diag, diagsz);
	if (rc == 0 && rd.r.n == 0) {
		mds_diag(diag, diagsz, "the trace has no request");
		rc = MDS_E_INVAL;
	}
	source = rd.r.n;
	if (rc == 0 && rd.fmt == TRACE_AZURE) {
		for (size_t i = 0; i < rd.r.n; i++)
			wsum += rd.r.v[i].cost;
		for (size_t i = 0; i < rd.r.n; i++)
			rd.r.v[i].cost /= wsum / (double)rd.r.n;
	}
	if (rc == 0 && scale != 1.0)
		rc = rescale(&rd.r, scale, diag, diagsz);
	if (rc == 0 && rd.r.n == 0) {
		mds_diag(diag, diagsz, "rate scaling %g leaves no request",
			 scale);
		rc = MDS_E_INVAL;
	}
	if (rc != 0) {
		free(rd.r.v);
		return rc;
	}
	struct trace *t = xcalloc(1, sizeof(*t));
	int64_t span = rd.fmt == TRACE_RATES ? rd.last_us
					     : rd.r.v[rd.r.n - 1].t_us;

	for (size_t i = 0; i < rd.r.n; i++)
		rd.r.v[i].t_us = (int64_t)((double)rd.r.v[i].t_us / compress);
	*t = (struct trace){ .reqs = rd.r.v, .n = rd.r.n, .format = rd.fmt,
			     .compress = compress, .scale = scale,
			     .span_us = (int64_t)((double)span / compress),
			     .source_records = source };
	*out = t;
	return 0;
}

void trace_free(struct trace *t)
{
	if (!t)
		return;
	free(t->reqs);
	free(t);
}

double trace_token_weight(uint32_t ctx_tokens, uint32_t gen_tokens)
{
	/* One more unit so that an empty request still costs something. */
	return 1.0 + (double)ctx_tokens + TRACE_DECODE_WEIGHT * gen_tokens;
}

static const char *const format_names[] = {
	[TRACE_AUTO] = "auto", [TRACE_AZURE] = "azure",
	[TRACE_TIMES] = "times", [TRACE_RATES] = "rates",
};

const char *trace_format_name(enum trace_format f)
{
	return (unsigned)f < sizeof(format_names) / sizeof(format_names[0])
		       ? format_names[f]
		       : "?";
}

int trace_format_parse(const char *name, enum trace_format *out)
{
	for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]);
	     i++)
		if (strcmp(name, format_names[i]) == 0) {
			*out = (enum trace_format)i;
			return 0;
		}
	return MDS_E_INVAL;
}
