/* fields.c - the declarative field tables; see fields.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/fields.h"
#include "util/err.h"
#include "util/xalloc.h"

/* ---- the four messages ---- */

int fields_fault_unknown(struct fault *f, const char *path)
{
	return fault_set(f, MDS_E_INVAL, path, "unknown field '%s'", path);
}

int fields_fault_type(struct fault *f, const char *path, const char *what)
{
	if (path[0] == '\0')
		return fault_set(f, MDS_E_INVAL, "", "the body must be %s",
				 what);
	return fault_set(f, MDS_E_INVAL, path, "%s must be %s", path, what);
}

int fields_fault_range(struct fault *f, const char *path,
		       const struct field *fd)
{
	const char *what;

	switch (fd->type) {
	case FIELD_STRING:
		what = "a string of length";
		break;
	case FIELD_ARRAY:
	case FIELD_STRV:
		what = "an array of length";
		break;
	case FIELD_NUMBER:
		what = "a number";
		break;
	default:
		what = "an integer";
		break;
	}
	return fault_set(f, MDS_E_INVAL, path, "%s must be %s from %.15g to "
			 "%.15g", path, what, fd->min, fd->max);
}

int fields_fault_missing(struct fault *f, const char *path)
{
	return fault_set(f, MDS_E_INVAL, path, "%s is required", path);
}

/* ---- helpers ---- */

void fields_path(char *out, size_t outsz, const char *path,
		 const char *name)
{
	snprintf(out, outsz, "%s%s%s", path, path[0] ? "." : "", name);
}

const struct field *fields_find(const struct field *table, const char *name)
{
	for (const struct field *fd = table; fd->name != NULL; fd++)
		if (strcmp(fd->name, name) == 0)
			return fd;
	return NULL;
}

bool fields_given(const struct field *table, uint64_t seen,
		  const char *name)
{
	const struct field *fd = fields_find(table, name);

	return fd != NULL && (seen >> (fd - table) & 1) != 0;
}

const char *fields_type_desc(const struct field *fd, char *buf, size_t bufsz)
{
	size_t n;

	switch (fd->type) {
	case FIELD_STRING:
		if (fd->chars_desc != NULL)
			snprintf(buf, bufsz, "a string of %s", fd->chars_desc);
		else
			snprintf(buf, bufsz, "a string");
		break;
	case FIELD_INTEGER:
		snprintf(buf, bufsz, "an integer");
		break;
	case FIELD_NUMBER:
		snprintf(buf, bufsz, "a number");
		break;
	case FIELD_BOOL:
		snprintf(buf, bufsz, "true or false");
		break;
	case FIELD_ENUM:
		snprintf(buf, bufsz, "one of");
		for (size_t i = 0; fd->choices[i] != NULL; i++) {
			n = strlen(buf);
			if (n >= bufsz)
				break;
			snprintf(buf + n, bufsz - n, "%s %s",
				 i == 0 ? "" : ",", fd->choices[i]);
		}
		break;
	case FIELD_DURATION:
		snprintf(buf, bufsz, "an integer (%s)",
			 fd->unit_ms == 1 ? "milliseconds"
			 : fd->unit_ms == 60000 ? "minutes" : "seconds");
		break;
	case FIELD_OBJECT:
		snprintf(buf, bufsz, "an object");
		break;
	case FIELD_ARRAY:
		snprintf(buf, bufsz, "an array");
		break;
	case FIELD_STRV:
		snprintf(buf, bufsz, "an array of strings");
		break;
	case FIELD_CUSTOM:
		snprintf(buf, bufsz, "%s", fd->doc ? fd->doc : "a valid value");
		break;
	}
	return buf;
}

/* The field's bounds as they apply: for a string, its member's size caps
 * the length; a max of 0 means none for a count or a length, and bounds
 * of 0 and 0 none for a value. */
static struct field effective(const struct field *fd)
{
	struct field e = *fd;

	if (fd->type == FIELD_STRING && fd->size > 0) {
		double cap = fd->size > 0 ? (double)(fd->size - 1) : 0;

		if (e.max == 0 || e.max > cap)
			e.max = cap;
	} else if ((fd->type == FIELD_ARRAY || fd->type == FIELD_STRV) &&
		   e.max == 0) {
		e.max = (double)SIZE_MAX;
	}
	return e;
}

static bool out_of_range(const struct field *fd, double x)
{
	struct field e = effective(fd);

	if (e.min == 0 && e.max == 0)
		return false;
	return x < e.min || x > e.max;
}

static int range_fault(const struct field *fd, const char *path,
		       struct fault *f)
{
	struct field e = effective(fd);

	return fields_fault_range(f, path, &e);
}

static int type_fault(const struct field *fd, const char *path,
		      struct fault *f)
{
	char what[200];

	return fields_fault_type(f, path,
				 fields_type_desc(fd, what, sizeof(what)));
}

/* Stores x into an integer member of fd->size bytes. */
static void store_int(void *dst, size_t size, int64_t x)
{
	switch (size) {
	case 1: { uint8_t v = (uint8_t)x; memcpy(dst, &v, 1); break; }
	case 2: { uint16_t v = (uint16_t)x; memcpy(dst, &v, 2); break; }
	case 4: { uint32_t v = (uint32_t)x; memcpy(dst, &v, 4); break; }
	default: memcpy(dst, &x, sizeof(x)); break;
	}
}

/* ---- the value parsers, one per type ---- */

static int parse_string(const struct field *fd, const json_t *v, char *dst,
			const char *path, struct fault *f)
{
	const char *s = json_string_value(v);
	size_t len;

	if (s == NULL)
		return type_fault(fd, path, f);
	len = json_string_length(v);
	if (strlen(s) != len ||
	    (fd->chars != NULL && strspn(s, fd->chars) != len))
		return type_fault(fd, path, f);
	if (out_of_range(fd, (double)len))
		return range_fault(fd, path, f);
	memcpy(dst, s, len + 1);
	return 0;
}

static int parse_number(const struct field *fd, const json_t *v, void *dst,
			const char *path, struct fault *f)
{
	double x;

	if (fd->type == FIELD_NUMBER ? !json_is_number(v)
				     : !json_is_integer(v))
		return type_fault(fd, path, f);
	x = json_number_value(v);
	if (out_of_range(fd, x))
		return range_fault(fd, path, f);
	if (fd->type == FIELD_NUMBER) {
		memcpy(dst, &x, sizeof(x));
	} else if (fd->type == FIELD_DURATION) {
		int64_t ms = (int64_t)json_integer_value(v) *
			     (fd->unit_ms > 0 ? fd->unit_ms : 1000);

		memcpy(dst, &ms, sizeof(ms));
	} else {
		store_int(dst, fd->size, (int64_t)json_integer_value(v));
	}
	return 0;
}

static int parse_enum(const struct field *fd, const json_t *v, void *dst,
		      const char *path, struct fault *f)
{
	const char *s = json_string_value(v);

	for (int i = 0; s != NULL && fd->choices[i] != NULL; i++)
		if (strcmp(fd->choices[i], s) == 0) {
			memcpy(dst, &i, sizeof(i));
			return 0;
		}
	return type_fault(fd, path, f);
}

static int check_count(const struct field *fd, const json_t *v,
		       const char *path, struct fault *f)
{
	if (!json_is_array(v))
		return type_fault(fd, path, f);
	if (out_of_range(fd, (double)json_array_size(v)))
		return range_fault(fd, path, f);
	return 0;
}

static int parse_strv(const struct field *fd, const json_t *v, void *dst,
		      const char *path, struct fault *f)
{
	size_t n = json_array_size(v);
	struct field item = { .name = "", .type = FIELD_STRING,
			      .max = (double)fd->item_max };
	char at[FIELD_PATH_MAX], **argv;
	int rc = check_count(fd, v, path, f);

	if (rc != 0)
		return rc;
	argv = xcalloc(n + 1, sizeof(*argv));
	for (size_t i = 0; i < n; i++) {
		const json_t *s = json_array_get(v, i);

		snprintf(at, sizeof(at), "%s[%zu]", path, i);
		if (!json_is_string(s) ||
		    strlen(json_string_value(s)) != json_string_length(s)) {
			fields_strv_free(argv);
			return type_fault(&item, at, f);
		}
		if (out_of_range(&item, (double)json_string_length(s))) {
			fields_strv_free(argv);
			return range_fault(&item, at, f);
		}
		argv[i] = xstrdup(json_string_value(s));
	}
	memcpy(dst, &argv, sizeof(argv));
	return 0;
}

static int parse_any(const struct field *fd, const json_t *v, void *base,
		     const char *path, int depth, struct fault *f);

static int parse_object(const struct field *table, const json_t *obj,
			void *base, const char *path, int depth,
			uint64_t *seen, struct fault *f);

static void free_member(const struct field *fd, void *base);

static int parse_array(const struct field *fd, const json_t *v, void *dst,
		       const char *path, int depth, struct fault *f)
{
	size_t n = json_array_size(v), count = 0;
	char at[FIELD_PATH_MAX];
	char *items;
	int rc = check_count(fd, v, path, f);

	if (rc != 0)
		return rc;
	items = xcalloc(n > 0 ? n : 1, fd->elem_size);
	for (; count < n; count++) {
		snprintf(at, sizeof(at), "%s[%zu]", path, count);
		rc = parse_any(fd->elem, json_array_get(v, count),
			       items + count * fd->elem_size, at, depth + 1,
			       f);
		if (rc != 0)
			break;
	}
	if (rc != 0) {
		for (size_t i = 0; i < count; i++)
			free_member(fd->elem, items + i * fd->elem_size);
		free(items);
		return rc;
	}
	memcpy(dst, &items, sizeof(items));
	memcpy((char *)dst - fd->offset + fd->count_offset, &n, sizeof(n));
	return 0;
}

/* Parses v against fd into base + fd->offset, then runs fd->check. */
static int parse_any(const struct field *fd, const json_t *v, void *base,
		     const char *path, int depth, struct fault *f)
{
	char *dst = (char *)base + fd->offset;
	int rc;

	if (depth > FIELD_DEPTH_MAX)
		return fault_set(f, MDS_E_INVAL, path, "%s is nested more "
				 "than %d deep", path, FIELD_DEPTH_MAX);
	switch (fd->type) {
	case FIELD_STRING:
		rc = parse_string(fd, v, dst, path, f);
		break;
	case FIELD_INTEGER:
	case FIELD_NUMBER:
	case FIELD_DURATION:
		rc = parse_number(fd, v, dst, path, f);
		break;
	case FIELD_BOOL:
		if (!json_is_boolean(v))
			return type_fault(fd, path, f);
		store_int(dst, fd->size > 0 ? fd->size : sizeof(bool),
			  json_is_true(v));
		rc = 0;
		break;
	case FIELD_ENUM:
		rc = parse_enum(fd, v, dst, path, f);
		break;
	case FIELD_OBJECT:
		rc = parse_object(fd->table, v, dst, path, depth + 1, NULL, f);
		break;
	case FIELD_ARRAY:
		rc = parse_array(fd, v, dst, path, depth, f);
		break;
	case FIELD_STRV:
		rc = parse_strv(fd, v, dst, path, f);
		break;
	case FIELD_CUSTOM:
		rc = fd->parse(v, dst, fd, path, f);
		break;
	default:
		rc = fault_set(f, MDS_E_INTERNAL, path, "%s: bad field table",
			       path);
		break;
	}
	if (rc == 0 && fd->check != NULL) {
		rc = fd->check(dst, fd, path, f);
		if (rc != 0)
			free_member(fd, base);
	}
	return rc;
}

static int parse_object(const struct field *table, const json_t *obj,
			void *base, const char *path, int depth,
			uint64_t *seen, struct fault *f)
{
	char at[FIELD_PATH_MAX];
	const char *key;
	json_t *v;
	uint64_t mask = 0;
	int rc;

	if (!json_is_object(obj))
		return fields_fault_type(f, path, "an object");
	json_object_foreach((json_t *)obj, key, v) {
		if (fields_find(table, key) == NULL) {
			fields_path(at, sizeof(at), path, key);
			return fields_fault_unknown(f, at);
		}
	}
	for (const struct field *fd = table; fd->name != NULL; fd++) {
		fields_path(at, sizeof(at), path, fd->name);
		v = json_object_get(obj, fd->name);
		if (v == NULL) {
			if (fd->required) {
				fields_free(table, base);
				return fields_fault_missing(f, at);
			}
			continue;
		}
		rc = parse_any(fd, v, base, at, depth, f);
		if (rc != 0) {
			fields_free(table, base);
			return rc;
		}
		if (fd - table < FIELD_TABLE_MAX)
			mask |= (uint64_t)1 << (fd - table);
	}
	if (seen != NULL)
		*seen = mask;
	return 0;
}

/* ---- the API ---- */

int fields_parse(const struct field *table, const json_t *obj, void *base,
		 const char *path, uint64_t *seen, struct fault *f)
{
	return parse_object(table, obj, base, path, 0, seen, f);
}

int fields_parse_value(const struct field *fd, const json_t *v, void *base,
		       const char *path, struct fault *f)
{
	return parse_any(fd, v, base, path, 0, f);
}

void fields_strv_free(char **v)
{
	xstrvfree(v);
}

static void free_member(const struct field *fd, void *base)
{
	char *dst = (char *)base + fd->offset;

	if (fd->type == FIELD_STRV) {
		char **argv;

		memcpy(&argv, dst, sizeof(argv));
		fields_strv_free(argv);
		argv = NULL;
		memcpy(dst, &argv, sizeof(argv));
	} else if (fd->type == FIELD_ARRAY) {
		char *items;
		size_t n;

		memcpy(&items, dst, sizeof(items));
		memcpy(&n, (char *)base + fd->count_offset, sizeof(n));
		for (size_t i = 0; items != NULL && i < n; i++)
			free_member(fd->elem, items + i * fd->elem_size);
		free(items);
		items = NULL;
		n = 0;
		memcpy(dst, &items, sizeof(items));
		memcpy((char *)base + fd->count_offset, &n, sizeof(n));
	} else if (fd->type == FIELD_OBJECT) {
		fields_free(fd->table, dst);
	}
}

void fields_free(const struct field *table, void *base)
{
	for (const struct field *fd = table; fd->name != NULL; fd++)
		free_member(fd, base);
}

/* ---- back to JSON ---- */

static json_t *int_json(const struct field *fd, const char *at)
{
	bool sign = fd->min < 0;

	switch (fd->size) {
	case 1: {
		uint8_t v;

		memcpy(&v, at, 1);
		return json_integer(sign ? (int8_t)v : v);
	}
	case 2: {
		uint16_t v;

		memcpy(&v, at, 2);
		return json_integer(sign ? (int16_t)v : v);
	}
	case 4: {
		uint32_t v;

		memcpy(&v, at, 4);
		return json_integer(sign ? (json_int_t)(int32_t)v
					 : (json_int_t)v);
	}
	default: {
		int64_t v;

		memcpy(&v, at, sizeof(v));
		return json_integer((json_int_t)v);
	}
	}
}

static json_t *value_json(const struct field *fd, const char *at)
{
	switch (fd->type) {
	case FIELD_STRING:
		return json_string(at);
	case FIELD_INTEGER:
		return int_json(fd, at);
	case FIELD_NUMBER: {
		double v;

		memcpy(&v, at, sizeof(v));
		return json_real(v);
	}
	case FIELD_BOOL: {
		size_t n = fd->size > 0 && fd->size <= 8 ? fd->size : 1;
		bool on = false;

		for (size_t i = 0; i < n; i++)
			on = on || at[i] != 0;
		return json_boolean(on);
	}
	case FIELD_ENUM: {
		int v;

		memcpy(&v, at, sizeof(v));
		return json_string(fd->choices[v]);
	}
	case FIELD_DURATION: {
		int64_t ms;

		memcpy(&ms, at, sizeof(ms));
		return json_integer(ms / (fd->unit_ms > 0 ? fd->unit_ms : 1000));
	}
	case FIELD_OBJECT:
		return fields_to_json(fd->table, at);
	case FIELD_STRV: {
		char **v;
		json_t *a = json_array();

		memcpy(&v, at, sizeof(v));
		for (size_t i = 0; v != NULL && v[i] != NULL; i++)
			json_array_append_new(a, json_string(v[i]));
		return a;
	}
	default:
		return NULL;
	}
}

json_t *fields_to_json(const struct field *table, const void *base)
{
	json_t *o = json_object();

	for (const struct field *fd = table; fd->name != NULL; fd++) {
		const char *at = (const char *)base + fd->offset;
		json_t *v;

		if (fd->type == FIELD_ARRAY) {
			const char *items;
			size_t n;

			memcpy(&items, at, sizeof(items));
			memcpy(&n, (const char *)base + fd->count_offset,
			       sizeof(n));
			v = json_array();
			for (size_t i = 0; i < n; i++)
				json_array_append_new(
					v, value_json(fd->elem,
						      items + i * fd->elem_size));
		} else {
			v = value_json(fd, at);
		}
		if (v != NULL)
			json_object_set_new(o, fd->name, v);
	}
	return o;
}
