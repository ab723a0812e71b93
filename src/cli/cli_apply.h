/*
 * cli_apply.h - the kinds of object `mdscale apply -f FILE` makes match
 * the file (cli_apply_kind.c), for cli_apply.c; docs/apply.md says what
 * the user sees.
 */
#ifndef MDS_CLI_APPLY_H
#define MDS_CLI_APPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/cli.h"

/* The kinds, in the order their lists are read. */
enum apply_kind_id {
	APPLY_TOPIC,
	APPLY_FUNCTION,
	APPLY_DEPLOYMENT,
	APPLY_SUBSCRIPTION,
	APPLY_ALARM,
	APPLY_AUTOSCALE,
	APPLY__N,
};

struct apply_kind {
	const char *name;        /* "topic", as `kind:` and the output say */
	const char *collection;  /* /v1/<collection>; NULL: autoscale */
	const char *name_field;  /* the field that names it; NULL: none */
	const char *id_field;    /* the field of its id in the API's answers */
	int rank;                /* references point to lower ranks */
	const char *const *read_only;   /* ignored in a file; NULL-ended */
	const char *const *create_only; /* sent at creation only */
};

extern const struct apply_kind apply_kinds[APPLY__N];

/*
 * The kind of file object o (index names it in errors): its "kind"
 * member, else the shape `NOUN get -o yaml` prints. Returns a kind, or
 * -1 after printing why.
 */
int apply_kind_of(const json_t *o, size_t index);

/* The name o goes by in the output (a new string), or NULL after printing
 * why it has none. */
char *apply_label(int kind, const json_t *o, size_t index);

/*
 * Finds the live object that file object orig (named label) stands for,
 * in live[kind] (a list answer; live[APPLY_TOPIC] resolves topic names).
 * Returns 0 with *out the object or NULL for none, or CLI_EXIT_FAIL after
 * printing why (several alarms of that name and no id).
 */
int apply_match(int kind, const json_t *orig, const char *label,
	const json_t *const *live, const json_t **out);

/* Whether two values are the same, numbers by value (the YAML of
 * `-o yaml` reads 60.0 back as the integer 60), NULLs alike. */
bool apply_equal(const json_t *a, const json_t *b);

/* Removes the fields the daemon sets (and "kind") from o. */
void apply_strip(int kind, json_t *o);

/* Whether field key of the kind is never compared with the live object
 * (its name, or a field used at creation only). */
bool apply_create_only(int kind, const char *key);

/* The live topic whose id or name is key in a topic list, or NULL. */
const json_t *apply_find_topic(const json_t *topics, const char *key);

#endif
