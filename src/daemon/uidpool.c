/* uidpool.c - the uids of instanceUids and their holders; see uidpool.h. */
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/uidpool.h"
#include "util/err.h"
#include "util/xalloc.h"

struct uidpool_ids {
	uint32_t *v;
	size_t n, cap;
};

struct holder {
	uidpool_each_fn *each;
	void *arg;
};

struct uidpool {
	struct idrange range;
	bool on;
	struct holder holders[UIDPOOL_HOLDERS_MAX];
	size_t nholders;
};

struct uidpool *uidpool_new(const struct idrange *range, bool on)
{
	struct uidpool *p = xcalloc(1, sizeof(*p));

	p->range = *range;
	p->on = on && range->lo != 0;
	return p;
}

struct uidpool *uidpool_from_config(const struct config *cfg)
{
	return uidpool_new(&cfg->instance_uids,
			   geteuid() == 0 && config_uids_on(cfg));
}

void uidpool_free(struct uidpool *p)
{
	free(p);
}

bool uidpool_on(const struct uidpool *p)
{
	return p != NULL && p->on;
}

void uidpool_hold(struct uidpool *p, uidpool_each_fn *each, void *arg)
{
	if (p == NULL)
		return;
	if (p->nholders == UIDPOOL_HOLDERS_MAX)
		abort(); /* a wiring mistake, not an input */
	p->holders[p->nholders++] = (struct holder){ each, arg };
}

void uidpool_forget(struct uidpool *p, void *arg)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nholders; i++)
		if (p->holders[i].arg == arg) {
			p->holders[i] = p->holders[--p->nholders];
			return;
		}
}

void uidpool_ids_add(struct uidpool_ids *ids, uint32_t uid)
{
	if (uid == 0)
		return;
	if (ids->n == ids->cap) {
		ids->cap = ids->cap ? ids->cap * 2 : 64;
		ids->v = xrealloc(ids->v, ids->cap * sizeof(*ids->v));
	}
	ids->v[ids->n++] = uid;
}

/* Every uid held, over all holders; free ids.v after. */
static void collect(struct uidpool *p, struct uidpool_ids *ids)
{
	*ids = (struct uidpool_ids){ 0 };
	for (size_t i = 0; i < p->nholders; i++)
		p->holders[i].each(p->holders[i].arg, ids);
}

/* Whether a user or group of this system has id: never given out. */
static bool system_holds(void *arg, uint32_t id)
{
	(void)arg;
	return getpwuid((uid_t)id) != NULL || getgrgid((gid_t)id) != NULL;
}

int uidpool_pick(struct uidpool *p, uint32_t *uid, struct fault *f)
{
	struct uidpool_ids ids;
	char text[IDRANGE_TEXT_MAX];
	int rc;

	collect(p, &ids);
	rc = idrange_pick(&p->range, ids.v, ids.n, system_holds, NULL, uid);
	free(ids.v);
	if (rc == 0)
		return 0;
	idrange_format(&p->range, text, sizeof(text));
	return fault_set(f, MDS_E_LIMIT, "",
			 "no free uid in instanceUids %s: each is held by a "
			 "live deployment, function or COMMAND subscription, "
			 "or is the id of a user or group of this system; "
			 "delete one of them or widen instanceUids", text);
}

size_t uidpool_count(struct uidpool *p, uint32_t uid)
{
	struct uidpool_ids ids;
	size_t n = 0;

	if (p == NULL || uid == 0)
		return 0;
	collect(p, &ids);
	for (size_t i = 0; i < ids.n; i++)
		n += ids.v[i] == uid;
	free(ids.v);
	return n;
}
