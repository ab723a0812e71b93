/*
 * fields.h - one declarative table per JSON body: what each field is, where
 * it goes in a C struct, its bounds, whether it is required, and a line
 * that documents it.
 *
 * Request bodies and the configuration file are read at the edge (the API
 * handlers, the config loader) by fields_parse(), which walks a table and
 * fills a C struct; the modules behind the edge only ever see the struct.
 * Every refusal comes from one of four messages, whatever the body:
 *
 *   unknown field 'PATH'                      (fields_fault_unknown)
 *   PATH must be a string | an integer | ...  (fields_fault_type)
 *   PATH must be an integer from LO to HI     (fields_fault_range)
 *   PATH is required                          (fields_fault_missing)
 *
 * PATH is the field's place in the body, "maxAttempts" at the top level,
 * "autoscale.maxInstances" in a nested object, "command[2]" in an array;
 * it also goes into the fault's field. All four fill an MDS_E_INVAL fault.
 *
 * A table is an array of designated initializers ending with FIELD_END, in
 * the manner of tmux's options table:
 *
 *   struct topic_spec {
 *           char name[257];
 *           char description[1025];
 *           int kind;
 *           uint32_t max_attempts;
 *           int64_t timeout_ms;
 *   };
 *
 *   static const char *const kinds[] = { "PLAIN", "FANCY", NULL };
 *
 *   static const struct field topic_fields[] = {
 *           { .name = "name", .type = FIELD_STRING,
 *             FIELD_AT(struct topic_spec, name), .required = true,
 *             .min = 1, .max = 256, .chars = FIELD_CHARS_NAME,
 *             .chars_desc = "A-Z a-z 0-9 _ -",
 *             .doc = "the topic's name, unique" },
 *           { .name = "description", .type = FIELD_STRING,
 *             FIELD_AT(struct topic_spec, description), .max = 1024,
 *             .doc = "free text" },
 *           { .name = "kind", .type = FIELD_ENUM,
 *             FIELD_AT(struct topic_spec, kind), .choices = kinds,
 *             .doc = "how it looks" },
 *           { .name = "maxAttempts", .type = FIELD_INTEGER,
 *             FIELD_AT(struct topic_spec, max_attempts), .min = 1,
 *             .max = 100, .doc = "attempts per delivery" },
 *           { .name = "timeoutSeconds", .type = FIELD_DURATION,
 *             FIELD_AT(struct topic_spec, timeout_ms), .unit_ms = 1000,
 *             .min = 1, .max = 600, .doc = "per attempt" },
 *           FIELD_END
 *   };
 *
 *   struct topic_spec spec = { .max_attempts = 8, .timeout_ms = 10000 };
 *   struct fault f;
 *
 *   if (fields_parse(topic_fields, c->body, &spec, "", NULL, &f) != 0) {
 *           api_reply_fault(c, &f);
 *           return;
 *   }
 *
 * The caller fills the struct with its defaults first; fields_parse() only
 * writes the members of the fields present. It allocates only for
 * FIELD_STRV and FIELD_ARRAY (and what a custom parser allocates);
 * fields_free() releases that. Limits: 64 fields per table, a path of at
 * most FIELD_PATH_MAX - 1 bytes (longer paths are cut in messages), objects
 * nested at most FIELD_DEPTH_MAX deep.
 *
 * The docs follow the tables: give the body's page a table whose rows
 * start with each field's name in backticks, after a line
 * `<!-- fields: NAME -->`, and register the table in
 * tests/unit/test_fields_docs.c; the test fails when the two disagree.
 */
#ifndef MDS_FIELDS_H
#define MDS_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/fault.h"

#define FIELD_PATH_MAX 64   /* the size of struct fault's field */
#define FIELD_DEPTH_MAX 8   /* nested objects and arrays */
#define FIELD_TABLE_MAX 64  /* entries per table (the seen mask) */

enum field_type {
	/* A JSON string into a char[] member of .size bytes (FIELD_AT sets
	 * it). Bounds: its length in bytes, at most .size - 1. A NUL inside
	 * the string is refused; .chars, if set, lists the bytes allowed. */
	FIELD_STRING,
	/* A JSON integer (not 2.0) into an integer member of .size 1, 2, 4
	 * or 8 bytes (signed or not: the bounds keep it in range). */
	FIELD_INTEGER,
	/* Any JSON number into a double member. */
	FIELD_NUMBER,
	/* true or false into a bool (or int) member: 1 or 0. */
	FIELD_BOOL,
	/* One of the strings of .choices into an int member: its index. */
	FIELD_ENUM,
	/* A JSON integer count of .unit_ms milliseconds ("timeoutSeconds":
	 * unit_ms 1000) into an int64_t member, in milliseconds. Bounds are
	 * in the JSON's unit. */
	FIELD_DURATION,
	/* A JSON object parsed against .table into the member (a struct). */
	FIELD_OBJECT,
	/* A JSON array of items each described by .elem (whose offset is 0)
	 * into a new array (xcalloc) of .elem_size bytes per item stored in
	 * the member (a pointer); the count goes to the size_t member at
	 * .count_offset. Bounds: the number of items. Freed by fields_free().
	 */
	FIELD_ARRAY,
	/* A JSON array of strings into a new NULL-terminated char ** (an
	 * argument vector) stored in the member. Bounds: the number of
	 * strings; each string at most .item_max bytes (0: any). Freed by
	 * fields_free(). */
	FIELD_STRV,
	/* Anything: .parse reads the JSON value into the member. */
	FIELD_CUSTOM,
};

struct field;

/*
 * A custom parser: reads v (borrowed) into dst (the member) and returns 0,
 * or fills f (use the fields_fault_*() messages where they fit) and
 * returns its code. path is the field's path for messages.
 */
typedef int field_parse_fn(const json_t *v, void *dst,
			   const struct field *fd, const char *path,
			   struct fault *f);

/*
 * A check run after a field is stored, for what a table cannot say (a URL,
 * an executable on PATH): gets the member and returns 0, or fills f and
 * returns its code.
 */
typedef int field_check_fn(const void *member, const struct field *fd,
			   const char *path, struct fault *f);

struct field {
	const char *name;          /* the JSON key; NULL ends the table */
	enum field_type type;
	size_t offset;             /* of the member in the struct */
	size_t size;               /* of the member (FIELD_AT fills both) */
	bool required;             /* absent: "PATH is required" */
	/* Bounds, inclusive: a value, a length or a count (see the types).
	 * For a value, min and max both 0: unbounded. For a length or a
	 * count, max 0: no upper bound but the member's size. */
	double min, max;
	const char *chars;         /* FIELD_STRING: the bytes allowed */
	const char *chars_desc;    /* how messages name them ("A-Z _ -") */
	const char *const *choices; /* FIELD_ENUM: NULL-terminated */
	int64_t unit_ms;           /* FIELD_DURATION: ms per JSON unit */
	const struct field *table; /* FIELD_OBJECT: the nested table */
	const struct field *elem;  /* FIELD_ARRAY: one item (offset 0) */
	size_t elem_size;          /* FIELD_ARRAY: bytes per item */
	size_t count_offset;       /* FIELD_ARRAY: the size_t count */
	size_t item_max;           /* FIELD_STRV: longest string, bytes */
	field_parse_fn *parse;     /* FIELD_CUSTOM */
	field_check_fn *check;     /* optional, any type */
	const char *doc;           /* one line for the reference docs */
};

/* The member of a struct a field fills: .offset and .size together. */
#define FIELD_AT(type, member)                                               \
	.offset = offsetof(type, member),                                    \
	.size = sizeof(((type *)0)->member)

/* Ends a table. */
#define FIELD_END { .name = NULL }

/* Bytes allowed in names: letters, digits, '_' and '-'. */
#define FIELD_CHARS_NAME                                                     \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
/* Printable ASCII without blanks (0x21 to 0x7e). */
#define FIELD_CHARS_PRINTABLE                                                \
	"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`" \
	"abcdefghijklmnopqrstuvwxyz{|}~"

/*
 * Parses obj (borrowed; must be a JSON object) against table into base,
 * the struct the offsets point into. path is the body's own path: "" for a
 * request body or a file, "autoscale" for an object nested in one. seen, if
 * not NULL, gets bit i set for every table[i] present in obj. Returns 0,
 * or MDS_E_INVAL with f filled (the first problem in table order: unknown
 * fields first, then each field in turn). On failure base may hold some
 * fields already; anything allocated is released (fields_free()).
 */
int fields_parse(const struct field *table, const json_t *obj, void *base,
		 const char *path, uint64_t *seen, struct fault *f);

/* Parses one value v (borrowed) against the single field fd into base. The
 * building block of fields_parse(), for bodies that are not objects
 * ("autoscale": true, or a policy). Same errors. */
int fields_parse_value(const struct field *fd, const json_t *v, void *base,
		       const char *path, struct fault *f);

/*
 * The reverse of fields_parse(): returns the members of base as a JSON
 * object with the table's names, in table order (a new reference).
 * FIELD_CUSTOM fields are left out (the caller adds them); an integer
 * member whose min is below 0 is read as signed, else as unsigned.
 */
json_t *fields_to_json(const struct field *table, const void *base);

/* Releases what fields_parse() allocated in base (arrays, argument
 * vectors, recursively) and sets those members to NULL. Accepts a base
 * that was never parsed as long as it is zeroed. */
void fields_free(const struct field *table, void *base);

/* Frees an argument vector from FIELD_STRV; NULL is accepted. */
void fields_strv_free(char **v);

/* Returns the entry named name in table, or NULL. */
const struct field *fields_find(const struct field *table, const char *name);

/* Whether the field named name was present, by the seen mask of
 * fields_parse(). */
bool fields_given(const struct field *table, uint64_t seen,
		  const char *name);

/* The JSON kind a field takes, as the type message says it: "a string",
 * "an integer", "true or false", "one of A, B, C", ...; into buf
 * (truncated), which it returns. */
const char *fields_type_desc(const struct field *fd, char *buf, size_t bufsz);

/* Joins path and name into out ("a" + "b" -> "a.b", "" + "b" -> "b"). */
void fields_path(char *out, size_t outsz, const char *path,
		 const char *name);

/* The four messages. Each fills f (MDS_E_INVAL, field = path) and returns
 * MDS_E_INVAL. what is the type wanted ("a string"); fields_fault_range()
 * says what is bounded by the field's type: a value, or the length of a
 * string or an array. */
int fields_fault_unknown(struct fault *f, const char *path);
int fields_fault_type(struct fault *f, const char *path, const char *what);
int fields_fault_range(struct fault *f, const char *path,
		       const struct field *fd);
int fields_fault_missing(struct fault *f, const char *path);

#endif
