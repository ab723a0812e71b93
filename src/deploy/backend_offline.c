/* backend_offline.c - the place holder of a missing backend; see
 * backend_offline.h. */
#include "deploy/backend_offline.h"

#include <stdio.h>
#include <stdlib.h>

#include "util/xalloc.h"

struct offline {
	struct backend b;
	struct backend_ops ops; /* per backend: its name is the record's */
	char name[BACKEND_OFFLINE_NAME_MAX];
	char why[BACKEND_OFFLINE_WHY_MAX];
};

static void offline_close(struct backend *b, void (*done)(void *arg),
			  void *arg)
{
	free(b->impl);
	if (done != NULL)
		done(arg);
}

struct backend *backend_offline_new(const char *name, const char *why)
{
	struct offline *o = xcalloc(1, sizeof(*o));

	snprintf(o->name, sizeof(o->name), "%s", name);
	snprintf(o->why, sizeof(o->why), "%s", why);
	o->ops.name = o->name;
	o->ops.caps = BACKEND_CAP_PLATFORM | BACKEND_CAP_OFFLINE;
	o->ops.close = offline_close;
	o->b.ops = &o->ops;
	o->b.impl = o;
	return &o->b;
}

const char *backend_offline_why(const struct backend *b)
{
	if (!backend_can(b, BACKEND_CAP_OFFLINE))
		return NULL;
	return ((const struct offline *)b->impl)->why;
}
