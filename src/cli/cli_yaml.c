/*
 * cli_yaml.c - reads YAML (and so JSON, a subset of it) into jansson
 * values with libyaml's parser, for `mdscale apply -f`. A plain scalar is
 * null, a boolean or a number when it reads as one, else a string; a
 * quoted scalar is always a string, as the -o yaml emitter writes them.
 * Anchors, aliases and tags are refused; nesting and size are capped.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cli/cli.h"

#define YAML_DEPTH_MAX 64

struct loader {
	yaml_parser_t parser;
	char *diag;
	size_t diagsz;
};

static json_t *fail(struct loader *l, const char *what, size_t line)
{
	snprintf(l->diag, l->diagsz, "line %zu: %s", line + 1, what);
	return NULL;
}

/* The value of a plain scalar. */
static json_t *plain(const char *s)
{
	char *end;
	long long i;
	double d;

	if (s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0)
		return json_null();
	if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0)
		return json_true();
	if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0)
		return json_false();
	errno = 0;
	i = strtoll(s, &end, 10);
	if (*end == '\0' && errno == 0)
		return json_integer(i);
	d = strtod(s, &end);
	if (*end == '\0' && errno == 0 && strchr("+-.0123456789", s[0]))
		return json_real(d);
	return json_string(s);
}

static json_t *node(struct loader *l, yaml_event_t *ev, int depth);

/* Reads the rest of a mapping or a sequence whose start was read. */
static json_t *collection(struct loader *l, bool map, int depth)
{
	json_t *out = map ? json_object() : json_array();
	yaml_event_t ev;

	for (;;) {
		json_t *key = NULL, *v;

		if (!yaml_parser_parse(&l->parser, &ev))
			goto bad;
		if (ev.type == (map ? YAML_MAPPING_END_EVENT
				    : YAML_SEQUENCE_END_EVENT)) {
			yaml_event_delete(&ev);
			return out;
		}
		if (map) {
			key = node(l, &ev, depth + 1);
			yaml_event_delete(&ev);
			if (key == NULL)
				goto fail;
			if (!json_is_string(key) && !json_is_integer(key)) {
				json_decref(key);
				json_decref(out);
				return fail(l, "a key must be a string",
					    l->parser.mark.line);
			}
			if (!yaml_parser_parse(&l->parser, &ev)) {
				json_decref(key);
				goto bad;
			}
		}
		v = node(l, &ev, depth + 1);
		yaml_event_delete(&ev);
		if (v == NULL) {
			json_decref(key);
			goto fail;
		}
		if (map) {
			char num[32];
			const char *k = json_string_value(key);

			if (k == NULL) {
				snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
					 json_integer_value(key));
				k = num;
			}
			json_object_set_new(out, k, v);
			json_decref(key);
		} else {
			json_array_append_new(out, v);
		}
	}
bad:
	fail(l, l->parser.problem ? l->parser.problem : "not YAML",
	     l->parser.problem_mark.line);
fail:
	json_decref(out);
	return NULL;
}

/* The value starting with ev (which the caller deletes). */
static json_t *node(struct loader *l, yaml_event_t *ev, int depth)
{
	if (depth > YAML_DEPTH_MAX)
		return fail(l, "nested too deep", ev->start_mark.line);
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		if (ev->data.scalar.anchor != NULL)
			break;
		if (ev->data.scalar.plain_implicit &&
		    ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
			return plain((const char *)ev->data.scalar.value);
		return json_stringn((const char *)ev->data.scalar.value,
				    ev->data.scalar.length);
	case YAML_SEQUENCE_START_EVENT:
		if (ev->data.sequence_start.anchor != NULL)
			break;
		return collection(l, false, depth);
	case YAML_MAPPING_START_EVENT:
		if (ev->data.mapping_start.anchor != NULL)
			break;
		return collection(l, true, depth);
	default:
		break;
	}
	return fail(l, "anchors and aliases are not supported",
		    ev->start_mark.line);
}

json_t *cli_yaml_load(const char *text, size_t len, char *diag,
	size_t diagsz)
{
	struct loader l = { .diag = diag, .diagsz = diagsz };
	json_t *docs = json_array(), *v;
	yaml_event_t ev;

	yaml_parser_initialize(&l.parser);
	yaml_parser_set_input_string(&l.parser, (const unsigned char *)text,
		len);
	for (;;) {
		if (!yaml_parser_parse(&l.parser, &ev)) {
			fail(&l, l.parser.problem ? l.parser.problem : "not YAML",
			     l.parser.problem_mark.line);
			goto err;
		}
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type != YAML_DOCUMENT_START_EVENT) {
			yaml_event_delete(&ev);
			continue; /* stream start, document end */
		}
		yaml_event_delete(&ev);
		if (!yaml_parser_parse(&l.parser, &ev)) {
			fail(&l, l.parser.problem ? l.parser.problem : "not YAML",
			     l.parser.problem_mark.line);
			goto err;
		}
		v = node(&l, &ev, 0);
		yaml_event_delete(&ev);
		if (v == NULL)
			goto err;
		json_array_append_new(docs, v);
	}
	yaml_parser_delete(&l.parser);
	return docs;
err:
	yaml_parser_delete(&l.parser);
	json_decref(docs);
	return NULL;
}
