/*
 * api_workreqs.c - GET /v1/workrequests and /v1/workrequests/{id}: the
 * deployments' work requests, filtered, sorted and paged as OCI Data
 * Science's ListWorkRequests takes them (id, operationType, status,
 * sortBy, sortOrder, limit, page with opc-next-page), plus deploymentId
 * (docs/api.md).
 *
 * A page token is the id of the last work request of the page before: the
 * next page starts after it in the same order, so that work requests
 * accepted meanwhile neither repeat nor skip an item of a list sorted by
 * timeAccepted.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/api_deploy.h"
#include "api/api_watch.h"
#include "deploy/deploy.h"
#include "util/err.h"
#include "util/xalloc.h"

#define WORKREQS_LIMIT_MAX 100 /* limit: OCI's 1 to 100 */

/* The fields sortBy takes; the first is the default. */
static const char *const sort_keys[] = { "timeAccepted", "operationType",
					 "status", NULL };

struct wr_query {
	char dep[128];              /* deploymentId; "" all */
	char id[DEPLOY_ID_MAX];     /* id; "" any */
	const char *op;             /* operationType (static); NULL any */
	const char *status;         /* status (static); NULL any */
	const char *sort_key;       /* one of sort_keys */
	bool asc;                   /* sortOrder ASC; DESC by default */
	unsigned limit;             /* 0: no limit */
	char page[DEPLOY_ID_MAX];   /* the token; "" the first page */
};

/* One item, its sort key and its place in the newest-first list. */
struct wr_item {
	json_t *o;       /* borrowed from the list */
	const char *key; /* its field sortBy names, borrowed */
	size_t age;      /* 0 newest */
};

/*
 * Reads query parameter key into *out as one of the names deploy gives
 * (status: the statuses, else the operations), case-insensitively.
 * Returns true (absent: *out NULL), or false with f naming the values.
 */
static bool parse_name(const struct api_call *c, const char *key,
		       bool status, const char **out, struct fault *f)
{
	char v[32], allowed[160];
	size_t n = 0;

	*out = NULL;
	if (!api_query_param(c, key, v, sizeof(v), f))
		return false;
	if (v[0] == '\0')
		return true;
	allowed[0] = '\0';
	for (size_t i = 0; deploy_workreq_name(status, i) != NULL; i++) {
		const char *name = deploy_workreq_name(status, i);

		if (strcasecmp(v, name) == 0) {
			*out = name;
			return true;
		}
		n += (size_t)snprintf(allowed + n, sizeof(allowed) - n, "%s%s",
				      i ? ", " : "", name);
		if (n >= sizeof(allowed))
			n = sizeof(allowed) - 1;
	}
	fault_set(f, MDS_E_INVAL, key, "%s must be one of %s, not '%.32s'",
		  key, allowed, v);
	return false;
}

/* Reads limit: 1 to WORKREQS_LIMIT_MAX, or absent (0). */
static bool parse_limit(const struct api_call *c, unsigned *limit,
			struct fault *f)
{
	char v[16], *end;
	unsigned long n;

	*limit = 0;
	if (!api_query_param(c, "limit", v, sizeof(v), f))
		return false;
	if (v[0] == '\0')
		return true;
	n = v[0] >= '0' && v[0] <= '9' ? strtoul(v, &end, 10) : 0;
	if (n < 1 || n > WORKREQS_LIMIT_MAX || *end != '\0') {
		fault_set(f, MDS_E_INVAL, "limit",
			  "limit must be an integer from 1 to %d",
			  WORKREQS_LIMIT_MAX);
		return false;
	}
	*limit = (unsigned)n;
	return true;
}

/* Reads sortBy (a field of sort_keys, any case) and sortOrder. */
static bool parse_sort(const struct api_call *c, struct wr_query *q,
		       struct fault *f)
{
	char by[32], order[8];

	if (!api_query_param(c, "sortBy", by, sizeof(by), f) ||
	    !api_query_param(c, "sortOrder", order, sizeof(order), f))
		return false;
	q->sort_key = by[0] == '\0' ? sort_keys[0] : NULL;
	for (size_t i = 0; q->sort_key == NULL && sort_keys[i]; i++)
		if (strcasecmp(by, sort_keys[i]) == 0)
			q->sort_key = sort_keys[i];
	if (q->sort_key == NULL) {
		fault_set(f, MDS_E_INVAL, "sortBy",
			  "sortBy must be timeAccepted, operationType or "
			  "status, not '%.32s'", by);
		return false;
	}
	if (order[0] != '\0' && strcasecmp(order, "ASC") != 0 &&
	    strcasecmp(order, "DESC") != 0) {
		fault_set(f, MDS_E_INVAL, "sortOrder",
			  "sortOrder must be ASC or DESC");
		return false;
	}
	q->asc = strcasecmp(order, "ASC") == 0;
	return true;
}

/* Parses the whole query. Returns true, or false with f filled. */
static bool query_parse(const struct api_call *c, struct wr_query *q,
			struct fault *f)
{
	memset(q, 0, sizeof(*q));
	return api_query_param(c, "deploymentId", q->dep, sizeof(q->dep),
			       f) &&
	       api_query_param(c, "id", q->id, sizeof(q->id), f) &&
	       parse_name(c, "operationType", false, &q->op, f) &&
	       parse_name(c, "status", true, &q->status, f) &&
	       parse_sort(c, q, f) && parse_limit(c, &q->limit, f) &&
	       api_query_param(c, "page", q->page, sizeof(q->page), f);
}

static const char *field(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

/* Whether work request o passes the filters of q. */
static bool keeps(const struct wr_query *q, json_t *o)
{
	const char *op = field(o, "operationType");
	const char *status = field(o, "status");

	return (q->id[0] == '\0' || strcmp(q->id, field(o, "id")) == 0) &&
	       (q->op == NULL || strcmp(q->op, op) == 0) &&
	       (q->status == NULL || strcmp(q->status, status) == 0);
}

/* Oldest first by the sort key; ties oldest first: a total order, so
 * that a page token finds its place again. */
static int cmp_asc(const void *pa, const void *pb)
{
	const struct wr_item *a = pa, *b = pb;
	int c = strcmp(a->key, b->key);

	if (c != 0)
		return c;
	return (a->age < b->age) - (a->age > b->age);
}

static int cmp_desc(const void *pa, const void *pb)
{
	return cmp_asc(pb, pa);
}

/* Answers the page of items (newest first) that q asks for: filtered,
 * sorted, from after the page token, at most limit, with opc-next-page
 * when more follow. */
static void list_page(struct api_call *c, const struct wr_query *q,
		      json_t *items)
{
	size_t n = json_array_size(items), k = 0, from = 0, to;
	struct wr_item *v = xcalloc(n + 1, sizeof(*v));
	json_t *page = json_array();
	char hdr[DEPLOY_ID_MAX + 32] = "";

	for (size_t i = 0; i < n; i++) {
		json_t *o = json_array_get(items, i);

		if (keeps(q, o))
			v[k++] = (struct wr_item){ o, field(o, q->sort_key),
						   i };
	}
	qsort(v, k, sizeof(*v), q->asc ? cmp_asc : cmp_desc);
	if (q->page[0] != '\0') {
		while (from < k && strcmp(field(v[from].o, "id"), q->page))
			from++;
		if (from == k) {
			free(v);
			json_decref(page);
			api_reply_error(c, 400, "InvalidParameter", "page",
					"page: no work request of this list "
					"is the token given; list again "
					"from the first page");
			return;
		}
		from++;
	}
	to = q->limit != 0 && k - from > q->limit ? from + q->limit : k;
	for (size_t i = from; i < to; i++)
		json_array_append(page, v[i].o);
	if (to < k && to > from)
		snprintf(hdr, sizeof(hdr), "opc-next-page: %s\r\n",
			 field(v[to - 1].o, "id"));
	free(v);
	api_reply(c, 200, json_pack("{s:o}", "items", page),
		  hdr[0] ? hdr : NULL);
}

static void workrequests_list(struct api_call *c)
{
	struct wr_query q;
	struct fault f;
	json_t *all;

	if (!query_parse(c, &q, &f)) {
		api_reply_fault(c, &f);
		return;
	}
	all = api_deploy_workreqs_json(c->api->deploy,
				       q.dep[0] ? q.dep : NULL);
	list_page(c, &q, json_object_get(all, "items"));
	json_decref(all);
}

static void workrequests_get(struct api_call *c)
{
	struct fault f;
	json_t *o = api_deploy_workreq_by_id(c->api->deploy, c->id, &f);

	api_reply_or_fault(c, o, &f);
}

const struct api_route workreqs_routes[] = {
	{ "GET", "/v1/workrequests", workrequests_list },
	{ "GET", "/v1/workrequests/*", workrequests_get },
	{ NULL, NULL, NULL },
};
