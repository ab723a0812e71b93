/*
 * api_logs.c - GET /v1/logs: search the structured log, or follow it.
 *
 * A search runs on a worker thread (logging_query()) and answers
 * {"items": [...], "count": N, "truncated": bool}. With follow=true the
 * answer is a stream of JSON lines (chunked): first the matching history,
 * then every new matching line as it is logged, until the client goes
 * away. The follower is registered before the history is read, with a mark
 * where the history stops, so nothing is missed or repeated; lines that
 * arrive meanwhile wait in a capped buffer. A client that reads too slowly
 * loses lines rather than growing memory: the next line it gets is a notice
 * with the count. A stream lasts as long as its token: once the token is
 * revoked or rotated, the next line ends it instead of going out.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_bodies.h"
#include "api/api_tokens.h"
#include "core/iso8601.h"
#include "deploy/deploy.h"
#include "logging/logging.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/rfc3339.h"
#include "util/xalloc.h"

#define VALUE_MAX API_LOGS_VALUE_MAX
#define PENDING_MAX (1024 * 1024)

/* One GET /v1/logs while it runs. */
struct logs_call {
	struct logging *lg;
	struct http_req *req;
	struct api_logs_filter q; /* what it wants */
	bool querying; /* the history is being read */
	bool live;     /* the history is sent: lines go out as they come */
	bool gone;     /* the client went away */
	struct logstore_follower *follower;
	struct buf pending; /* lines logged while the history is read */
	uint64_t dropped;   /* lines the client missed, not yet told */
	const struct tokens *tokens; /* the API's, borrowed */
	char *authorization;         /* the request's, copied */
	unsigned long token_gen;     /* tokens_generation() when checked */
};

static void call_free(struct logs_call *lc)
{
	buf_free(&lc->pending);
	free(lc->authorization);
	free(lc);
}

/* ---- parsing the query ---- */

static const char *const known[] = {
	"source", "deploymentId", "deployment", "instanceId", "workRequestId",
	"alarmId", "function", "subscriptionId", "stream", "level", "since",
	"until", "text", "limit", "follow",
};

/* Names the first parameter that is not a known filter, in bad. */
static bool unknown_param(const char *query, char *bad, size_t badsz)
{
	const char *p = query;

	while (*p != '\0') {
		size_t len = strcspn(p, "&");
		size_t klen = strcspn(p, "=&");
		bool ok = klen == 0;

		for (size_t i = 0; !ok && i < sizeof(known) / sizeof(known[0]);
		     i++)
			ok = strlen(known[i]) == klen &&
			     strncmp(known[i], p, klen) == 0;
		if (!ok) {
			snprintf(bad, badsz, "%.*s",
				 (int)(klen > 64 ? 64 : klen), p);
			return true;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	return false;
}

/*
 * Parses a time: RFC 3339, or a duration back from now ("30s", "5m", "1h",
 * "2d", "1w"; also "PT5M"). Returns 0 or MDS_E_INVAL.
 */
static int parse_time(const char *s, int64_t now_ms, int64_t *out)
{
	static const struct {
		char unit;
		int64_t ms;
	} units[] = {
		{ 's', 1000 }, { 'm', 60000 }, { 'h', 3600000 },
		{ 'd', 86400000 }, { 'w', 7 * 86400000LL },
	};
	char *end;
	long long n;
	int64_t d;

	if (s[0] >= '0' && s[0] <= '9') {
		errno = 0;
		n = strtoll(s, &end, 10);
		if (errno == 0 && end[0] != '\0' && end[1] == '\0' &&
		    n <= 100000) {
			for (size_t i = 0; i < sizeof(units) / sizeof(units[0]);
			     i++) {
				if (units[i].unit == end[0]) {
					*out = now_ms - n * units[i].ms;
					return 0;
				}
			}
		}
	}
	if (s[0] == 'P' && iso8601_duration_parse(s, &d, NULL, 0) == 0) {
		*out = now_ms - d;
		return 0;
	}
	return iso8601_time_parse(s, out, NULL, 0) == 0 ? 0 : MDS_E_INVAL;
}

/* Copies parameter key into out if present; false (and f filled) if it
 * is too long. */
static bool get_param(const char *query, const char *key, char *out,
		      size_t outsz, bool *present, struct fault *f)
{
	int rc = http_query_get(query, key, out, outsz);

	*present = rc == 0;
	if (rc == MDS_E_LIMIT) {
		fault_set(f, MDS_E_INVAL, key, "%s is longer than %zu bytes",
			  key, outsz - 1);
		return false;
	}
	if (!*present)
		out[0] = '\0';
	return true;
}

int api_logs_filter_parse(const char *query, struct deploy *d, int64_t now,
			  struct api_logs_filter *lc, struct fault *fault)
{
	struct logstore_filter *f = &lc->f;
	char v[VALUE_MAX], bad[80], depid[VALUE_MAX];
	bool has, has_depid;
	struct {
		const char *key;
		char *out;
		const char **field;
	} strs[] = {
		{ "source", lc->source, &f->source },
		{ "instanceId", lc->inst, &f->ids.instance_id },
		{ "workRequestId", lc->wr, &f->ids.work_request_id },
		{ "alarmId", lc->alarm, &f->ids.alarm_id },
		{ "function", lc->fn, &f->ids.function },
		{ "subscriptionId", lc->sub, &f->ids.subscription_id },
		{ "text", lc->text, &f->text },
	};

	memset(lc, 0, sizeof(*lc));
	logstore_filter_init(f);
	if (unknown_param(query, bad, sizeof(bad)))
		return fault_set(fault, MDS_E_INVAL, bad,
				 "unknown filter '%s' (known: source, "
				 "deploymentId, deployment, instanceId, level, "
				 "since, until, text, limit, follow, ...)",
				 bad);
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (!get_param(query, strs[i].key, strs[i].out, VALUE_MAX,
			       &has, fault))
			return MDS_E_INVAL;
		if (has && strs[i].out[0] != '\0')
			*strs[i].field = strs[i].out;
	}
	if (!get_param(query, "deploymentId", depid, sizeof(depid),
		       &has_depid, fault) ||
	    !get_param(query, "deployment", v, sizeof(v), &has, fault))
		return MDS_E_INVAL;
	if (has && has_depid)
		return fault_set(fault, MDS_E_INVAL, "deployment",
				 "give deploymentId or deployment, not both");
	if (has_depid && depid[0] != '\0') {
		snprintf(lc->dep, sizeof(lc->dep), "%s", depid);
		f->ids.deployment_id = lc->dep;
	} else if (has && v[0] != '\0') {
		/* A name resolves to the id of the live deployment that has
		 * it; anything else is taken as an id (a deleted deployment
		 * still has its lines). */
		struct fault ignored;
		char id[DEPLOY_ID_MAX];
		bool found = d != NULL &&
			     deploy_resolve(d, v, id, &ignored) == 0;

		snprintf(lc->dep, sizeof(lc->dep), "%s", found ? id : v);
		f->ids.deployment_id = lc->dep;
	}
	if (!get_param(query, "stream", lc->stream, sizeof(lc->stream), &has,
		       fault))
		return MDS_E_INVAL;
	if (has) {
		if (strcmp(lc->stream, "stdout") != 0 &&
		    strcmp(lc->stream, "stderr") != 0)
			return fault_set(fault, MDS_E_INVAL, "stream",
					 "stream must be stdout or stderr");
		f->ids.stream = lc->stream;
	}
	if (!get_param(query, "level", v, sizeof(v), &has, fault))
		return MDS_E_INVAL;
	if (has && log_level_parse(v, &f->level) != 0)
		return fault_set(fault, MDS_E_INVAL, "level",
				 "level must be error, warn, info or debug "
				 "(the least severe to show)");
	if (!get_param(query, "since", v, sizeof(v), &has, fault))
		return MDS_E_INVAL;
	if (has && parse_time(v, now, &f->since_ms) != 0)
		return fault_set(fault, MDS_E_INVAL, "since",
				 "since must be an RFC 3339 time "
				 "(2024-05-01T10:00:00Z) or a duration back "
				 "from now (30s, 5m, 1h, 2d)");
	if (!get_param(query, "until", v, sizeof(v), &has, fault))
		return MDS_E_INVAL;
	if (has && parse_time(v, now, &f->until_ms) != 0)
		return fault_set(fault, MDS_E_INVAL, "until",
				 "until must be an RFC 3339 time "
				 "(2024-05-01T10:00:00Z) or a duration back "
				 "from now (30s, 5m, 1h, 2d)");
	if (f->since_ms > f->until_ms)
		return fault_set(fault, MDS_E_INVAL, "since",
				 "since is after until");
	if (!get_param(query, "limit", v, sizeof(v), &has, fault))
		return MDS_E_INVAL;
	if (has) {
		char *end;
		long n;

		errno = 0;
		n = strtol(v, &end, 10);
		if (v[0] == '\0' || *end != '\0' || errno != 0 || n < 1 ||
		    n > LOGSTORE_LIMIT_MAX)
			return fault_set(fault, MDS_E_INVAL, "limit",
					 "limit must be an integer from 1 to "
					 "10000");
		f->limit = (uint32_t)n;
	}
	if (!get_param(query, "follow", v, sizeof(v), &has, fault))
		return MDS_E_INVAL;
	if (has) {
		if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
			return fault_set(fault, MDS_E_INVAL, "follow",
					 "follow must be true or false");
		lc->follow = strcmp(v, "true") == 0;
	}
	if (lc->follow && f->until_ms != INT64_MAX)
		return fault_set(fault, MDS_E_INVAL, "until",
				 "until cannot be used with follow");
	return 0;
}

/* ---- a search ---- */

static void on_searched(void *arg, int rc, struct logstore_result *res)
{
	struct logs_call *lc = arg;
	struct api_call c = { .req = lc->req };
	struct buf body;
	const char *p, *end;

	if (rc != 0) {
		api_reply_error(&c, 500, "InternalServerError", NULL,
				"the log could not be searched");
		call_free(lc);
		return;
	}
	buf_init(&body, res->lines.len + res->count + 256);
	buf_addstr(&body, "{\"items\":[");
	p = buf_str(&res->lines);
	end = p + res->lines.len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (p != buf_str(&res->lines))
			buf_add(&body, ",", 1);
		buf_add(&body, p, n);
		p += n + 1;
	}
	buf_printf(&body, "],\"count\":%zu,\"truncated\":%s}", res->count,
		   res->truncated ? "true" : "false");
	http_respond(lc->req, 200, "application/json", buf_str(&body),
		     body.len, NULL);
	buf_free(&body);
	call_free(lc);
}

/* ---- following ---- */

/* Sends a line (with its '\n') to the client, telling it first how many it
 * missed. */
static void send_line(struct logs_call *lc, const char *line, size_t len)
{
	if (lc->dropped > 0) {
		char when[RFC3339_BUFSZ], notice[256];
		int n;

		rfc3339_format(ids_now_ms(), RFC3339_MILLIS, when,
			       sizeof(when));
		n = snprintf(notice, sizeof(notice),
			     "{\"time\":\"%s\",\"level\":\"warn\",\"source\":"
			     "\"logging\",\"message\":\"%llu lines were not "
			     "sent: the client reads too slowly\",\"dropped\":"
			     "%llu}\n", when, (unsigned long long)lc->dropped,
			     (unsigned long long)lc->dropped);
		if (http_respond_chunk(lc->req, notice, (size_t)n) != 0) {
			lc->dropped++;
			return;
		}
		lc->dropped = 0;
	}
	if (http_respond_chunk(lc->req, line, len) == MDS_E_LIMIT)
		lc->dropped++;
}

static void on_gone(void *arg);

/* True while the stream's token is still valid; checked again only after a
 * token was revoked or rotated. */
static bool token_valid(struct logs_call *lc)
{
	unsigned long gen = tokens_generation(lc->tokens);

	if (gen == lc->token_gen)
		return true;
	lc->token_gen = gen;
	return tokens_role(lc->tokens, lc->authorization) != API_ROLE_NONE;
}

static void on_line(void *arg, const struct log_record *rec,
		    const char *line, size_t len)
{
	struct logs_call *lc = arg;

	if (lc->gone)
		return;
	/* A revoked token's stream ends, from the history on (not before:
	 * logs_get() still holds lc until then). */
	if ((lc->querying || lc->live) && !token_valid(lc)) {
		on_gone(lc);
		return;
	}
	if (!logstore_match(&lc->q.f, rec))
		return;
	if (!lc->live) {
		if (buf_add(&lc->pending, line, len) != 0)
			lc->dropped++;
		return;
	}
	send_line(lc, line, len);
}

static void on_gone(void *arg)
{
	struct logs_call *lc = arg;

	lc->gone = true;
	logstore_unfollow(logging_store(lc->lg), lc->follower);
	lc->follower = NULL;
	if (lc->querying)
		return; /* on_history finishes */
	http_respond_end(lc->req);
	call_free(lc);
}

static void on_history(void *arg, int rc, struct logstore_result *res)
{
	struct logs_call *lc = arg;

	lc->querying = false;
	if (lc->gone) {
		http_respond_end(lc->req);
		call_free(lc);
		return;
	}
	if (rc != 0) {
		struct api_call c = { .req = lc->req };

		logstore_unfollow(logging_store(lc->lg), lc->follower);
		api_reply_error(&c, 500, "InternalServerError", NULL,
				"the log could not be searched");
		call_free(lc);
		return;
	}
	if (http_respond_start(lc->req, 200, "application/x-ndjson", NULL) ==
	    0) {
		http_respond_chunk(lc->req, res->lines.data, res->lines.len);
		http_respond_chunk(lc->req, lc->pending.data, lc->pending.len);
	}
	buf_free(&lc->pending);
	lc->live = true;
	/* From here on, on_gone() ends it. */
}

static void logs_get(struct api_call *c)
{
	struct logs_call *lc;
	struct logstore_mark mark;
	struct fault f;
	int rc;

	if (c->api->logging == NULL) {
		api_reply_error(c, 503, "ServiceUnavailable", NULL,
				"logging is not running");
		return;
	}
	lc = xcalloc(1, sizeof(*lc));
	lc->lg = c->api->logging;
	lc->req = c->req;
	lc->tokens = c->api->tokens;
	lc->authorization = c->req->authorization != NULL
				    ? xstrdup(c->req->authorization)
				    : NULL;
	lc->token_gen = tokens_generation(lc->tokens);
	buf_init(&lc->pending, PENDING_MAX);
	if (api_logs_filter_parse(c->req->query, c->api->deploy, ids_now_ms(),
				  &lc->q, &f) != 0) {
		api_reply_fault(c, &f);
		call_free(lc);
		return;
	}
	if (!lc->q.follow) {
		rc = logging_query(lc->lg, &lc->q.f, NULL, on_searched, lc);
	} else {
		lc->follower = logstore_follow(logging_store(lc->lg), on_line,
					       lc);
		if (lc->follower == NULL) {
			api_reply_error(c, 429, "TooManyRequests", NULL,
					"too many clients follow the log");
			call_free(lc);
			return;
		}
		logstore_mark(logging_store(lc->lg), &mark);
		rc = logging_query(lc->lg, &lc->q.f, &mark, on_history, lc);
		if (rc == 0) {
			lc->querying = true;
			http_req_on_close(c->req, on_gone, lc);
		} else {
			logstore_unfollow(logging_store(lc->lg), lc->follower);
		}
	}
	if (rc == 0)
		return;
	if (rc == MDS_E_LIMIT)
		api_reply_error(c, 429, "TooManyRequests", NULL,
				"too many log searches are running");
	else
		api_reply_error(c, 503, "ServiceUnavailable", NULL,
				mds_strerror(rc));
	call_free(lc);
}

const struct api_route logs_routes[] = {
	{ "GET", "/v1/logs", logs_get },
	{ NULL, NULL, NULL },
};
