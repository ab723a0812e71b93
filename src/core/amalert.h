/*
 * amalert.h - Alertmanager alerts as OCI alarm events.
 *
 * Alertmanager's webhook posts a group of alerts, and posts the group again
 * (every repeat_interval, or when an alert joins or leaves it) with the
 * alerts it already sent. An alarm message in OCI's format says what
 * changed instead: OK_TO_FIRING when an episode starts, REPEAT while it
 * goes on, FIRING_TO_OK when it ends. The difference is state: the set of
 * alerts (by fingerprint) that are firing as far as one topic knows, each
 * with the start of its episode.
 *
 * amalert_decide() names the event an alert is, given that set;
 * amalert_commit() records the alert in it; amalert_message_json() writes
 * the OCI alarm message (core/alarm.h's format) of the event. Pure: no I/O,
 * time passed in, JSON only as written output.
 */
#ifndef MDS_AMALERT_H
#define MDS_AMALERT_H

#include <stddef.h>
#include <stdint.h>

#include "core/alarm.h"
#include "util/buf.h"

#define AMALERT_MAX_FIRING 4096 /* firing alerts one topic keeps track of */
#define AMALERT_MAX_LABELS 64   /* labels (and annotations) of one alert */
#define AMALERT_FP_MAX 36       /* bytes of a fingerprint (the dedupeKey) */
#define AMALERT_NAMESPACE "prometheus"

struct amalert_label {
	const char *name;
	const char *value;
};

/* One alert of a webhook. Every pointer is borrowed for the call. */
struct amalert {
	int firing;                 /* 1: "firing", 0: "resolved" */
	const char *fingerprint;    /* 1..AMALERT_FP_MAX of [0-9A-Za-z] */
	int64_t starts_ms;          /* startsAt */
	int64_t ends_ms;            /* endsAt; <= 0: none */
	const struct amalert_label *labels;
	size_t nlabels;
	const char *summary;        /* annotation summary or description, or
				       NULL */
	const char *generator_url;  /* or NULL */
	const char *expr;           /* the rule's expression, or NULL */
};

/* Returns the value of label name of a, or NULL. */
const char *amalert_label(const struct amalert *a, const char *name);

/* Returns 1 if fp is a fingerprint as Alertmanager writes them (1 to
 * AMALERT_FP_MAX letters and digits), else 0. */
int amalert_fingerprint_ok(const char *fp);

/* The firing alerts of one topic: fingerprint -> start of the episode. */
struct amalert_set;

/* Returns a new, empty set; free it with amalert_set_free(). */
struct amalert_set *amalert_set_new(void);
/* NULL is fine. */
void amalert_set_free(struct amalert_set *s);
size_t amalert_set_count(const struct amalert_set *s);
/* Entry i (< amalert_set_count()), in fingerprint order; fp is owned by s
 * and valid until s changes. */
void amalert_set_entry(const struct amalert_set *s, size_t i, const char **fp,
		       int64_t *starts_ms);
/* Returns 1 if fp is in s, else 0. */
int amalert_set_has(const struct amalert_set *s, const char *fp);
/*
 * Records fp as firing since starts_ms (replacing what was there). Returns
 * 0; MDS_E_INVAL for a fingerprint amalert_fingerprint_ok() refuses;
 * MDS_E_LIMIT when AMALERT_MAX_FIRING are tracked already.
 */
int amalert_set_put(struct amalert_set *s, const char *fp, int64_t starts_ms);

/*
 * The event alert a is for a topic whose firing alerts are s: firing and
 * unknown, or known with another start: OK_TO_FIRING (a new episode);
 * firing and known with the same start: REPEAT; resolved and known:
 * FIRING_TO_OK. Returns 1 with *type set, or 0 when there is nothing to say
 * (resolved, and not firing as far as s knows). s is not changed.
 */
int amalert_decide(const struct amalert_set *s, const struct amalert *a,
		   enum alarm_event_type *type);

/*
 * Records a in s: a firing alert is put (amalert_set_put()), a resolved one
 * removed. Returns 0 or amalert_set_put()'s errors, s unchanged then.
 */
int amalert_commit(struct amalert_set *s, const struct amalert *a);

/*
 * Appends the OCI alarm message of event type for alert a to out:
 * dedupeKey the fingerprint; title the alertname label; body the summary;
 * severity from the severity label (critical, error, warning, info in any
 * case; CRITICAL otherwise, as OCI's default); timestamp the start
 * (OK_TO_FIRING), the end (FIRING_TO_OK, now_ms without one) or now_ms
 * (REPEAT); alarmMetaData[0] with id "alertmanager:" and the alertname,
 * namespace AMALERT_NAMESPACE, query the rule's expression, and one
 * dimensions object: resourceId (the value of label resource_label) first,
 * then every other label but alertname; alarmUrl the generator URL.
 * Returns 0; MDS_E_INVAL if a has no alertname or no resource_label label;
 * MDS_E_LIMIT if out's cap is reached.
 */
int amalert_message_json(const struct amalert *a, enum alarm_event_type type,
			 const char *resource_label, int64_t now_ms,
			 struct buf *out);

#endif
