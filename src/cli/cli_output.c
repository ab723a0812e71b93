/*
 * cli_output.c - the structured outputs of every command (-o/--output):
 * json, yaml (libyaml's emitter), name (one id per line) and a JSONPath
 * template in kubectl's form, -o jsonpath='{.items[*].id}'.
 *
 * The template language is kubectl's subset that scripts use: literal text,
 * and {PATH} where PATH is a chain of .field, [N] and [*] (all elements or
 * all values); several values of one {} are joined by a space. A path that
 * names nothing prints nothing, like kubectl.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "cli/cli.h"

/* How deep a template path may go. */
#define PATH_MAX_STEPS 32

/* ---- yaml ---- */

static int emit(yaml_emitter_t *em, yaml_event_t *ev)
{
	return yaml_emitter_emit(em, ev) ? 0 : -1;
}

static int emit_scalar(yaml_emitter_t *em, const char *s, bool plain_ok)
{
	yaml_event_t ev;

	yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s,
		(int)strlen(s), plain_ok, !plain_ok,
		plain_ok ? YAML_ANY_SCALAR_STYLE
			 : YAML_DOUBLE_QUOTED_SCALAR_STYLE);
	return emit(em, &ev);
}

static int emit_value(yaml_emitter_t *em, const json_t *v)
{
	yaml_event_t ev;
	const char *key;
	const json_t *x;
	char num[64];
	size_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
			YAML_BLOCK_MAPPING_STYLE);
		if (emit(em, &ev) != 0)
			return -1;
		json_object_foreach((json_t *)v, key, x) {
			if (emit_scalar(em, key, true) != 0 ||
			    emit_value(em, x) != 0)
				return -1;
		}
		yaml_mapping_end_event_initialize(&ev);
		return emit(em, &ev);
	case JSON_ARRAY:
		yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
			YAML_BLOCK_SEQUENCE_STYLE);
		if (emit(em, &ev) != 0)
			return -1;
		json_array_foreach(v, i, x) {
			if (emit_value(em, x) != 0)
				return -1;
		}
		yaml_sequence_end_event_initialize(&ev);
		return emit(em, &ev);
	case JSON_STRING:
		/* Quoted, so that "true", "123" or "null" stay strings. */
		return emit_scalar(em, json_string_value(v), false);
	case JSON_INTEGER:
		snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT,
			json_integer_value(v));
		return emit_scalar(em, num, true);
	case JSON_REAL:
		snprintf(num, sizeof num, "%.17g", json_real_value(v));
		return emit_scalar(em, num, true);
	case JSON_TRUE:
		return emit_scalar(em, "true", true);
	case JSON_FALSE:
		return emit_scalar(em, "false", true);
	default:
		return emit_scalar(em, "null", true);
	}
}

static int write_yaml(void *out, unsigned char *buf, size_t size)
{
	return fwrite(buf, 1, size, out) == size;
}

/* Prints v as one YAML document. Returns 0, or -1 if libyaml refused. */
static int print_yaml(FILE *out, const json_t *v)
{
	yaml_emitter_t em;
	yaml_event_t ev;
	int rc = -1;

	if (!yaml_emitter_initialize(&em))
		return -1;
	yaml_emitter_set_output(&em, write_yaml, out);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1);
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	if (emit(&em, &ev) != 0)
		goto out;
	yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
	if (emit(&em, &ev) != 0 || emit_value(&em, v) != 0)
		goto out;
	yaml_document_end_event_initialize(&ev, 1);
	if (emit(&em, &ev) != 0)
		goto out;
	yaml_stream_end_event_initialize(&ev);
	rc = emit(&em, &ev);
out:
	yaml_emitter_delete(&em);
	return rc;
}

/* ---- jsonpath ---- */

/* One step of a path: a field name (borrowed from the template, len bytes),
 * an index, or every element/value. */
struct step {
	enum { STEP_FIELD, STEP_INDEX, STEP_ALL } kind;
	const char *name;
	size_t len;
	size_t index;
};

/* Parses ".a.b[0][*]" (the inside of {}, len bytes) into steps. Returns the
 * number of steps, or -1 with the reason in why. */
static int parse_path(const char *p, size_t len, struct step *steps,
	const char **why)
{
	const char *end = p + len;
	int n = 0;

	if (p < end && *p == '$')
		p++;
	while (p < end) {
		if (n == PATH_MAX_STEPS) {
			*why = "too many steps";
			return -1;
		}
		if (*p == '.') {
			const char *s = ++p;

			while (p < end && *p != '.' && *p != '[')
				p++;
			if (p == s) {
				/* "{.}": the whole value. */
				if (p == end && n == 0)
					return 0;
				*why = "an empty field name";
				return -1;
			}
			steps[n++] = (struct step){STEP_FIELD, s,
				(size_t)(p - s), 0};
		} else if (*p == '[') {
			const char *close = memchr(p, ']', (size_t)(end - p));
			char *stop;

			if (close == NULL) {
				*why = "a '[' without ']'";
				return -1;
			}
			if (close == p + 2 && p[1] == '*') {
				steps[n++] = (struct step){STEP_ALL, NULL, 0, 0};
			} else {
				unsigned long v = strtoul(p + 1, &stop, 10);

				if (stop != close || close == p + 1) {
					*why = "an index that is not a number "
					       "or *";
					return -1;
				}
				steps[n++] = (struct step){STEP_INDEX, NULL, 0,
					(size_t)v};
			}
			p = close + 1;
		} else {
			*why = "a path that does not start with '.' or '['";
			return -1;
		}
	}
	return n;
}

static void print_scalar(FILE *out, const json_t *v, bool *first)
{
	if (!*first)
		fputc(' ', out);
	*first = false;
	if (json_is_string(v))
		fputs(json_string_value(v), out);
	else if (json_is_object(v) || json_is_array(v))
		json_dumpf(v, out, JSON_COMPACT | JSON_PRESERVE_ORDER);
	else if (json_is_integer(v))
		fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		fprintf(out, "%.17g", json_real_value(v));
	else if (json_is_true(v))
		fputs("true", out);
	else if (json_is_false(v))
		fputs("false", out);
	else
		fputs("null", out);
}

/* Prints every value that steps[0..n) reaches from v. */
static void walk(FILE *out, const json_t *v, const struct step *steps,
	int n, bool *first)
{
	const json_t *x;
	const char *key;
	char name[256];
	size_t i;

	if (v == NULL)
		return;
	if (n == 0) {
		print_scalar(out, v, first);
		return;
	}
	switch (steps->kind) {
	case STEP_FIELD:
		if (steps->len >= sizeof name)
			return;
		memcpy(name, steps->name, steps->len);
		name[steps->len] = '\0';
		walk(out, json_object_get(v, name), steps + 1, n - 1, first);
		break;
	case STEP_INDEX:
		walk(out, json_array_get(v, steps->index), steps + 1, n - 1,
			first);
		break;
	case STEP_ALL:
		if (json_is_array(v)) {
			json_array_foreach(v, i, x)
				walk(out, x, steps + 1, n - 1, first);
		} else if (json_is_object(v)) {
			json_object_foreach((json_t *)v, key, x)
				walk(out, x, steps + 1, n - 1, first);
		}
		break;
	}
}

int cli_jsonpath_check(const char *tmpl, const char **why)
{
	struct step steps[PATH_MAX_STEPS];
	const char *p = tmpl, *close;

	while ((p = strchr(p, '{')) != NULL) {
		close = strchr(p, '}');
		if (close == NULL) {
			*why = "a '{' without '}'";
			return -1;
		}
		if (parse_path(p + 1, (size_t)(close - p - 1), steps, why) < 0)
			return -1;
		p = close + 1;
	}
	return 0;
}

/* Prints the template with each {path} replaced; the template was checked
 * when the option was read. */
static void print_jsonpath(FILE *out, const char *tmpl, const json_t *v)
{
	struct step steps[PATH_MAX_STEPS];
	const char *p = tmpl, *open, *close, *why;
	bool first;
	int n;

	while ((open = strchr(p, '{')) != NULL &&
	       (close = strchr(open, '}')) != NULL) {
		fwrite(p, 1, (size_t)(open - p), out);
		n = parse_path(open + 1, (size_t)(close - open - 1), steps, &why);
		first = true;
		if (n >= 0)
			walk(out, v, steps, n, &first);
		p = close + 1;
	}
	fputs(p, out);
	fputc('\n', out);
}

/* ---- name ---- */

static void print_names(FILE *out, const json_t *v)
{
	const json_t *items = json_object_get(v, "items"), *x;
	size_t i;

	if (json_is_array(items)) {
		json_array_foreach(items, i, x)
			print_names(out, x);
		return;
	}
	/* Most items are named by "id"; topics, as in OCI, by "topicId";
	 * functions by their name. */
	x = json_object_get(v, "id");
	if (!json_is_string(x))
		x = json_object_get(v, "topicId");
	if (!json_is_string(x))
		x = json_object_get(v, "name");
	if (json_is_string(x))
		fprintf(out, "%s\n", json_string_value(x));
}

void cli_print_json(const struct cli_ctx *ctx, const json_t *json)
{
	switch (ctx->output) {
	case CLI_OUTPUT_YAML:
		if (print_yaml(stdout, json) != 0)
			cli_fail("cannot write YAML");
		break;
	case CLI_OUTPUT_NAME:
		print_names(stdout, json);
		break;
	case CLI_OUTPUT_JSONPATH:
		print_jsonpath(stdout, ctx->jsonpath, json);
		break;
	default:
		json_dumpf(json, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		break;
	}
}
