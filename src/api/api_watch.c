/* api_watch.c - list filters, order and the long-poll; see api_watch.h. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "api/api_watch.h"
#include "util/err.h"
#include "util/htab.h"
#include "util/ids.h"
#include "util/xalloc.h"

#define WATCH_TIMEOUT_S_DEFAULT 30
#define WATCH_TIMEOUT_S_MAX 300
#define NAME_PARAM_MAX 512 /* longer than any name: matches none */

/* The share of the loop's time waiting watches may take re-rendering
 * their answers: a check that took t ms waits at least
 * t * (watches waiting) * WATCH_COST_FACTOR ms before the next one, so
 * that large lists and many watchers are checked less often instead of
 * starving the loop (1/20: 5%). */
#define WATCH_COST_FACTOR 20

/* The resourceVersion is a JSON integer that survives a double: 53 bits. */
#define VERSION_MASK ((UINT64_C(1) << 53) - 1)

/* What a list's query asks for. */
struct list_query {
	char name[NAME_PARAM_MAX];
	bool has_name;
	bool name_too_long;
	char state[32];
	const char *sort_key; /* NULL: creation order */
	bool desc;
};

/* A GET waiting for its answer to change. */
struct waiter {
	struct api_call call; /* a copy; req stays valid until answered */
	api_render_fn *render;
	const struct api_list_spec *spec; /* NULL: one object */
	struct list_query q;
	uint64_t since;
	int64_t deadline_ms;
	uv_timer_t timer;
};

bool api_dry_run(const struct api_call *c)
{
	char v[8];

	return http_query_get(c->req->query, "dryRun", v, sizeof(v)) == 0 &&
	       strcmp(v, "true") == 0;
}

void api_reply_dry_run(struct api_call *c)
{
	api_reply(c, 200, json_pack("{s:b}", "dryRun", 1), NULL);
}

/* Reads one query parameter into out ("" when absent); false with f
 * filled when it does not fit. */
bool api_query_param(const struct api_call *c, const char *key, char *out,
		     size_t outsz, struct fault *f)
{
	int rc = http_query_get(c->req->query, key, out, outsz);

	if (rc == MDS_E_LIMIT) {
		fault_set(f, MDS_E_INVAL, key, "%s is too long", key);
		return false;
	}
	if (rc != 0)
		out[0] = '\0';
	return true;
}

/* The allowed sortBy values, for the refusal. */
static void sort_keys_text(const struct api_list_spec *s, char *out,
			   size_t outsz)
{
	size_t n = (size_t)snprintf(out, outsz, "timeCreated");

	for (size_t i = 0; s->sort_keys[i] != NULL && n < outsz; i++)
		n += (size_t)snprintf(out + n, outsz - n, "%s%s",
				      s->sort_keys[i + 1] ? ", " : " or ",
				      s->sort_keys[i]);
}

/* Parses the filters and the order. Returns 0 or MDS_E_INVAL (f). */
static int query_parse(const struct api_call *c,
		       const struct api_list_spec *s, struct list_query *q,
		       struct fault *f)
{
	char by[64], order[16], allowed[256];
	int rc;

	memset(q, 0, sizeof(*q));
	rc = s->name_param != NULL
		     ? http_query_get(c->req->query, s->name_param, q->name,
				      sizeof(q->name))
		     : MDS_E_NOTFOUND;
	q->has_name = rc != MDS_E_NOTFOUND;
	q->name_too_long = rc == MDS_E_LIMIT;
	if (!api_query_param(c, "lifecycleState", q->state, sizeof(q->state), f) ||
	    !api_query_param(c, "sortBy", by, sizeof(by), f) ||
	    !api_query_param(c, "sortOrder", order, sizeof(order), f))
		return MDS_E_INVAL;
	for (size_t i = 0; s->sort_keys[i] != NULL; i++)
		if (strcasecmp(by, s->sort_keys[i]) == 0)
			q->sort_key = s->sort_keys[i];
	if (q->sort_key == NULL && by[0] != '\0' &&
	    strcasecmp(by, "timeCreated") != 0) {
		sort_keys_text(s, allowed, sizeof(allowed));
		return fault_set(f, MDS_E_INVAL, "sortBy",
				 "sortBy must be %s, not '%.64s'", allowed,
				 by);
	}
	if (order[0] != '\0' && strcasecmp(order, "ASC") != 0 &&
	    strcasecmp(order, "DESC") != 0)
		return fault_set(f, MDS_E_INVAL, "sortOrder",
				 "sortOrder must be ASC or DESC, not '%.16s'",
				 order);
	q->desc = strcasecmp(order, "DESC") == 0;
	return 0;
}

static bool keeps(const struct list_query *q, const struct api_list_spec *s,
		  const json_t *o)
{
	const char *name = json_string_value(json_object_get(o,
							     s->name_field));
	const char *state = json_string_value(json_object_get(o,
							      "lifecycleState"));

	if (q->has_name &&
	    (q->name_too_long || name == NULL || strcmp(name, q->name) != 0))
		return false;
	if (q->state[0] != '\0' &&
	    (state == NULL || strcasecmp(state, q->state) != 0))
		return false;
	return true;
}

/* One item being sorted: its sort key and its place (ties keep it). */
struct sort_item {
	json_t *item;
	const json_t *key;
	size_t index;
	bool desc;
};

/* The order of two items by their keys (integers, else strings), then
 * by their places: a stable order from qsort(). */
static int sort_cmp(const void *pa, const void *pb)
{
	const struct sort_item *a = pa, *b = pb;
	const json_t *x = a->key, *y = b->key;
	int c;

	if (json_is_integer(x) && json_is_integer(y))
		c = (json_integer_value(x) > json_integer_value(y)) -
		    (json_integer_value(x) < json_integer_value(y));
	else
		c = strcmp(json_is_string(x) ? json_string_value(x) : "",
			   json_is_string(y) ? json_string_value(y) : "");
	if (a->desc)
		c = -c;
	if (c == 0)
		c = (a->index > b->index) - (a->index < b->index);
	return c;
}

/* Filters and sorts body's items in place (O(n log n); the lists are
 * capped by their modules). */
static void list_shape(const struct list_query *q,
		       const struct api_list_spec *s, json_t *body)
{
	json_t *items = json_object_get(body, "items");
	size_t n = json_array_size(items), k = 0;
	struct sort_item *v = xcalloc(n + 1, sizeof(*v));

	for (size_t i = 0; i < n; i++) {
		json_t *x = json_array_get(items, i);

		if (!keeps(q, s, x))
			continue;
		v[k] = (struct sort_item){
			.item = json_incref(x),
			.key = q->sort_key ? json_object_get(x, q->sort_key)
					   : NULL,
			.index = q->sort_key || !q->desc ? i : n - i,
			.desc = q->desc,
		};
		k++;
	}
	if (q->sort_key != NULL || q->desc)
		qsort(v, k, sizeof(*v), sort_cmp);
	json_array_clear(items);
	for (size_t i = 0; i < k; i++)
		json_array_append_new(items, v[i].item);
	free(v);
}

/* The version of an answer: a hash of its canonical text. */
static uint64_t version_of(const json_t *body)
{
	/* The answers are built in a fixed order: no need to sort keys. */
	char *s = json_dumps(body, JSON_COMPACT);
	uint64_t h = hash_fin(hash_fnv1a(HASH_SEED, s, s ? strlen(s) : 0));

	free(s);
	return h & VERSION_MASK;
}

/* Renders the answer of c (filtered and sorted when spec is set), or NULL
 * with f filled; *version gets its version. */
static json_t *render_now(struct api_call *c, const struct api_list_spec *s,
			  const struct list_query *q, api_render_fn *render,
			  uint64_t *version, struct fault *f)
{
	json_t *body = render(c, f);

	if (body == NULL)
		return NULL;
	if (s != NULL)
		list_shape(q, s, body);
	*version = version_of(body);
	return body;
}

/* Answers body (taken) with its version. */
static void reply_versioned(struct api_call *c, json_t *body,
			    uint64_t version)
{
	json_object_set_new(body, "resourceVersion",
			    json_integer((json_int_t)version));
	api_reply(c, 200, body, NULL);
}

int api_watch_parse(const struct api_call *c, uint64_t *since,
		    uint32_t *timeout_ms, struct fault *f)
{
	char watch[8], rv[24], tmo[16], *end;
	long t = WATCH_TIMEOUT_S_DEFAULT;

	if (!api_query_param(c, "watch", watch, sizeof(watch), f) ||
	    !api_query_param(c, "resourceVersion", rv, sizeof(rv), f) ||
	    !api_query_param(c, "timeoutSeconds", tmo, sizeof(tmo), f))
		return MDS_E_INVAL;
	if (strcmp(watch, "true") != 0)
		return 0;
	if (tmo[0] != '\0') {
		t = strtol(tmo, &end, 10);
		if (*end != '\0' || t < 1 || t > WATCH_TIMEOUT_S_MAX)
			return fault_set(f, MDS_E_INVAL, "timeoutSeconds",
					 "timeoutSeconds must be an integer "
					 "from 1 to %d", WATCH_TIMEOUT_S_MAX);
	}
	*timeout_ms = (uint32_t)t * 1000u;
	if (rv[0] == '\0')
		return 0; /* nothing seen yet: the current answer */
	*since = strtoull(rv, &end, 10);
	if (*end != '\0' || rv[0] < '0' || rv[0] > '9')
		return fault_set(f, MDS_E_INVAL, "resourceVersion",
				 "resourceVersion must be a number from an "
				 "earlier answer");
	return 1;
}

static void waiter_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Ends a waiter: answers (body taken; NULL: f) unless gone, and frees it
 * once its timer is closed. */
static void waiter_end(struct waiter *w, json_t *body, uint64_t version,
		       const struct fault *f)
{
	http_req_on_close(w->call.req, NULL, NULL);
	if (body != NULL && !api_token_still_valid(&w->call))
		json_decref(body);
	else if (body != NULL)
		reply_versioned(&w->call, body, version);
	else
		api_reply_fault(&w->call, f);
	w->call.api->nwatches--;
	uv_timer_stop(&w->timer);
	uv_close((uv_handle_t *)&w->timer, waiter_closed);
}

static void waiter_tick(uv_timer_t *t);

/* Arms the next check of w, after a check that took cost_ns. */
static void waiter_arm(struct waiter *w, uint64_t cost_ns)
{
	uint64_t ms = cost_ns / 1000000u * w->call.api->nwatches *
		      WATCH_COST_FACTOR;
	int64_t left = w->deadline_ms - ids_now_ms();

	if (ms < API_WATCH_CHECK_MS)
		ms = API_WATCH_CHECK_MS;
	if (left > 0 && (uint64_t)left < ms)
		ms = (uint64_t)left;
	uv_timer_start(&w->timer, waiter_tick, ms, 0);
}

static void waiter_tick(uv_timer_t *t)
{
	struct waiter *w = t->data;
	uint64_t version = 0, t0 = uv_hrtime();
	struct fault f;
	json_t *body = render_now(&w->call, w->spec, &w->q, w->render,
				  &version, &f);

	if (body != NULL && version == w->since &&
	    ids_now_ms() < w->deadline_ms) {
		json_decref(body);
		waiter_arm(w, uv_hrtime() - t0);
		return;
	}
	waiter_end(w, body, version, &f);
}

/* The client went away: nobody reads the answer, which releases the
 * request. */
static void waiter_gone(void *arg)
{
	struct waiter *w = arg;
	struct fault f;

	fault_set(&f, MDS_E_UNAVAIL, "", "the watch ended");
	waiter_end(w, NULL, 0, &f);
}

/* Answers c now, or registers a waiter when the answer is at since. */
static void answer(struct api_call *c, const struct api_list_spec *s,
		   const struct list_query *q, api_render_fn *render)
{
	struct waiter *w;
	uint64_t since = 0, version = 0;
	uint32_t timeout_ms = 0;
	struct fault f;
	json_t *body;
	int rc = api_watch_parse(c, &since, &timeout_ms, &f);

	if (rc < 0) {
		api_reply_fault(c, &f);
		return;
	}
	body = render_now(c, s, q, render, &version, &f);
	if (body == NULL) {
		api_reply_fault(c, &f);
		return;
	}
	if (rc == 0 || version != since) {
		reply_versioned(c, body, version);
		return;
	}
	json_decref(body);
	if (c->api->loop == NULL || c->api->nwatches >= API_WATCHES_MAX) {
		api_reply_error(c, 503, "TooManyRequests", NULL,
				"too many watches wait at once; try again");
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->call = *c;
	w->call.body = NULL;
	w->render = render;
	w->spec = s;
	if (q != NULL)
		w->q = *q;
	w->since = since;
	w->deadline_ms = ids_now_ms() + timeout_ms;
	uv_timer_init(c->api->loop, &w->timer);
	w->timer.data = w;
	c->api->nwatches++;
	waiter_arm(w, 0);
	http_req_on_close(c->req, waiter_gone, w);
}

void api_list_answer(struct api_call *c, const struct api_list_spec *spec,
		     api_render_fn *render)
{
	struct list_query q;
	struct fault f;

	if (query_parse(c, spec, &q, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	answer(c, spec, &q, render);
}

void api_item_answer(struct api_call *c, api_render_fn *render)
{
	char watch[8];

	if (http_query_get(c->req->query, "watch", watch, sizeof(watch)) != 0) {
		struct fault f;
		json_t *o = render(c, &f);

		if (o == NULL)
			api_reply_fault(c, &f);
		else
			api_reply(c, 200, o, NULL);
		return;
	}
	answer(c, NULL, NULL, render);
}
