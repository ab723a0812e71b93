/* amalert.c - Alertmanager alerts as OCI alarm events; see amalert.h. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/amalert.h"
#include "util/err.h"
#include "util/xalloc.h"

const char *amalert_label(const struct amalert *a, const char *name)
{
	for (size_t i = 0; i < a->nlabels; i++)
		if (strcmp(a->labels[i].name, name) == 0)
			return a->labels[i].value;
	return NULL;
}

int amalert_fingerprint_ok(const char *fp)
{
	size_t n = 0;

	if (fp == NULL)
		return 0;
	for (; fp[n] != '\0'; n++)
		if (n >= AMALERT_FP_MAX || !isalnum((unsigned char)fp[n]))
			return 0;
	return n > 0;
}

/* ---- the set: an array sorted by fingerprint ---- */

struct entry {
	char fp[AMALERT_FP_MAX + 1];
	int64_t starts_ms;
};

struct amalert_set {
	struct entry *v;
	size_t n, cap;
};

struct amalert_set *amalert_set_new(void)
{
	return xcalloc(1, sizeof(struct amalert_set));
}

void amalert_set_free(struct amalert_set *s)
{
	if (s == NULL)
		return;
	free(s->v);
	free(s);
}

size_t amalert_set_count(const struct amalert_set *s)
{
	return s->n;
}

void amalert_set_entry(const struct amalert_set *s, size_t i, const char **fp,
		       int64_t *starts_ms)
{
	*fp = s->v[i].fp;
	*starts_ms = s->v[i].starts_ms;
}

/* Returns the index of fp in s, or where it would go with *found 0. */
static size_t find(const struct amalert_set *s, const char *fp, int *found)
{
	size_t lo = 0, hi = s->n;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->v[mid].fp, fp);

		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int amalert_set_has(const struct amalert_set *s, const char *fp)
{
	int found;

	find(s, fp, &found);
	return found;
}

int amalert_set_put(struct amalert_set *s, const char *fp, int64_t starts_ms)
{
	int found;
	size_t i;

	if (!amalert_fingerprint_ok(fp))
		return MDS_E_INVAL;
	i = find(s, fp, &found);
	if (found) {
		s->v[i].starts_ms = starts_ms;
		return 0;
	}
	if (s->n >= AMALERT_MAX_FIRING)
		return MDS_E_LIMIT;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
	}
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
	memset(&s->v[i], 0, sizeof(s->v[i]));
	memcpy(s->v[i].fp, fp, strlen(fp));
	s->v[i].starts_ms = starts_ms;
	s->n++;
	return 0;
}

static void set_remove(struct amalert_set *s, const char *fp)
{
	int found;
	size_t i = find(s, fp, &found);

	if (!found)
		return;
	memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(*s->v));
	s->n--;
}

/* ---- events ---- */

int amalert_decide(const struct amalert_set *s, const struct amalert *a,
		   enum alarm_event_type *type)
{
	int found;
	size_t i = find(s, a->fingerprint, &found);

	if (!a->firing) {
		if (!found)
			return 0;
		*type = ALARM_FIRING_TO_OK;
		return 1;
	}
	*type = found && s->v[i].starts_ms == a->starts_ms ? ALARM_REPEAT
							   : ALARM_OK_TO_FIRING;
	return 1;
}

int amalert_commit(struct amalert_set *s, const struct amalert *a)
{
	if (a->firing)
		return amalert_set_put(s, a->fingerprint, a->starts_ms);
	set_remove(s, a->fingerprint);
	return 0;
}

/* ---- the message ---- */

static enum alarm_severity severity_of(const char *label)
{
	static const struct {
		const char *name;
		enum alarm_severity sev;
	} names[] = {
		{ "critical", ALARM_CRITICAL }, { "error", ALARM_ERROR },
		{ "warning", ALARM_WARNING },   { "info", ALARM_INFO },
	};

	for (size_t i = 0; label && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(label, names[i].name) == 0)
			return names[i].sev;
	return ALARM_CRITICAL;
}

int amalert_message_json(const struct amalert *a, enum alarm_event_type type,
			 const char *resource_label, int64_t now_ms,
			 struct buf *out)
{
	const char *title = amalert_label(a, "alertname");
	const char *resource = amalert_label(a, resource_label);
	struct tsdb_dim dims[AMALERT_MAX_LABELS + 1];
	struct alarm_stream stream = { .dims = dims };
	struct alarm_event ev = { .type = type };
	struct alarm_def def;
	char id[ALARM_MAX_STR + 1];
	int rc;

	if (title == NULL || resource == NULL ||
	    !amalert_fingerprint_ok(a->fingerprint))
		return MDS_E_INVAL;
	dims[stream.ndims++] = (struct tsdb_dim){ "resourceId", resource };
	for (size_t i = 0; i < a->nlabels &&
			   stream.ndims < sizeof(dims) / sizeof(dims[0]); i++)
		if (strcmp(a->labels[i].name, "alertname") != 0 &&
		    strcmp(a->labels[i].name, resource_label) != 0)
			dims[stream.ndims++] = (struct tsdb_dim){
				a->labels[i].name, a->labels[i].value };
	snprintf(id, sizeof(id), "alertmanager:%s", title);
	memcpy(ev.dedupe_key, a->fingerprint, strlen(a->fingerprint) + 1);
	ev.t_ms = type == ALARM_OK_TO_FIRING ? a->starts_ms
		  : type == ALARM_FIRING_TO_OK && a->ends_ms > 0 ? a->ends_ms
								 : now_ms;
	ev.status = a->firing ? ALARM_FIRING : ALARM_OK;
	ev.total_firing = a->firing ? 1 : 0;
	ev.streams = &stream;
	ev.nstreams = 1;
	/* The definition only lends its strings to the writer. */
	alarm_def_init(&def);
	def.id = id;
	def.display_name = (char *)title;
	def.namespace = (char *)AMALERT_NAMESPACE;
	def.query_text = (char *)(a->expr ? a->expr : "");
	def.body = (char *)a->summary;
	def.severity = severity_of(amalert_label(a, "severity"));
	def.message_format = ALARM_FORMAT_ONS_OPTIMIZED;
	rc = alarm_message_json(&def, &ev, a->generator_url, out);
	return rc;
}
