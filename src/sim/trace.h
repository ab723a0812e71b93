/*
 * trace.h - request traces for the simulator: arrival times and a cost each.
 *
 * Three formats, all CSV with one record a line ('#' lines and blank lines
 * are skipped):
 *
 *   azure  - the Azure LLM inference trace (Patel et al., "Splitwise",
 *            ISCA 2024, CC BY 4.0): a header "TIMESTAMP,ContextTokens,
 *            GeneratedTokens", then "YYYY-MM-DD HH:MM:SS[.fffffff]" and two
 *            token counts. A request's cost comes from its token counts (see
 *            trace_token_weight()), normalised so that the trace's mean
 *            cost is 1.
 *   times  - one arrival a line: seconds (a decimal number) or a timestamp
 *            as above, and optionally a second column with the request's
 *            relative cost (> 0; default 1). An optional header line whose
 *            first field is not a number or timestamp is skipped.
 *   rates  - one line per second: "rate" or "second,rate", rate in
 *            requests per second (>= 0, fractions carried over between
 *            seconds); the arrivals are spread evenly through each second.
 *            An optional header ("rate" or "second,rate") is skipped.
 *
 * Arrival times are relative to the first record (the first arrival is at 0
 * for azure and times; the first second starts at 0 for rates) and must not
 * go backwards. Options: time compression divides every time by a factor
 * (10 plays an hour in six minutes) and rate scaling keeps a share of the
 * requests (below 1, thinning evenly) or repeats them (above 1: the copies
 * spread over the second after their original, at deterministic offsets),
 * so the shape of the load is kept. Rate scaling is applied before time
 * compression.
 *
 * Pure: parses a buffer the caller has read; no I/O, no globals.
 */
#ifndef MDS_TRACE_H
#define MDS_TRACE_H

#include <stddef.h>
#include <stdint.h>

/* Most requests a trace may expand to (after rate scaling). */
#define TRACE_MAX_REQUESTS 20000000u

/* Rate scaling above 1 spreads the copies of a request over this long
 * after it (see trace_parse()). */
#define TRACE_SPREAD_US 1000000

/* Bounds of the options. */
#define TRACE_COMPRESS_MAX 10000.0
#define TRACE_SCALE_MAX 1000.0
/* Highest rate a line of a rates file may give, requests per second. */
#define TRACE_RATE_MAX 1000000.0

enum trace_format {
	TRACE_AUTO = 0, /* from the header: azure's, "rate"; else times */
	TRACE_AZURE,
	TRACE_TIMES,
	TRACE_RATES,
};

struct trace_opts {
	enum trace_format format;
	double compress; /* time compression factor, > 0; 0 means 1 */
	double scale;    /* rate scaling factor, > 0; 0 means 1 */
};

struct trace_req {
	int64_t t_us;          /* arrival, microseconds after the start */
	uint32_t ctx_tokens;   /* azure: ContextTokens, else 0 */
	uint32_t gen_tokens;   /* azure: GeneratedTokens, else 0 */
	double cost;           /* relative service cost, > 0 */
};

struct trace {
	struct trace_req *reqs; /* n requests in arrival order */
	size_t n;
	enum trace_format format; /* the format that was read */
	double compress;          /* the options applied */
	double scale;
	int64_t span_us;          /* from 0 to the last arrival (rates: to the
				     end of the last second) */
	size_t source_records;    /* records read before rate scaling */
};

/*
 * Parses len bytes of text as a trace. Returns 0 and a new trace in *out
 * (the caller frees it with trace_free()); MDS_E_PARSE with "line L, column
 * C: ..." in diag for a record that does not parse or a time that goes
 * backwards; MDS_E_INVAL for bad options or an impossible value (a negative
 * rate, a cost <= 0) with its line and column; MDS_E_LIMIT past
 * TRACE_MAX_REQUESTS; MDS_E_INVAL for a trace with no request. *out is
 * written only on success.
 */
int trace_parse(const char *text, size_t len, const struct trace_opts *opts,
		struct trace **out, char *diag, size_t diagsz);

/* Frees a trace from trace_parse(); NULL is accepted. */
void trace_free(struct trace *t);

/*
 * The unnormalised work of one LLM request from its token counts: the
 * prompt is processed in one batched pass and each generated token costs a
 * decode step, so weight = ctx + TRACE_DECODE_WEIGHT * gen (in prompt-token
 * equivalents). trace_parse() divides by the trace's mean weight.
 */
#define TRACE_DECODE_WEIGHT 10.0
double trace_token_weight(uint32_t ctx_tokens, uint32_t gen_tokens);

/* The name of a format ("azure", "times", "rates", "auto"); static. */
const char *trace_format_name(enum trace_format f);

/* Parses a format name into *out. Returns 0 or MDS_E_INVAL. */
int trace_format_parse(const char *name, enum trace_format *out);

#endif
