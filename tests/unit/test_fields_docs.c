/*
 * test_fields_docs.c - the reference docs against the field tables.
 *
 * Each body's table of fields in docs/ follows a marker line
 * `<!-- fields: NAME -->`; its rows start with the field's name in
 * backticks (or several: "`startTime`, `endTime`"). For every table registered below, the test fails when a field
 * of the table has no row, a row names no field of the table, a required
 * field's row does not say "required" (or another's does), or a bounded
 * number's row does not give its bounds as "LO–HI".
 *
 * Run with the docs/ directory as its argument (tests/unit/meson.build).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/alarm_json.h"
#include "api/api.h"
#include "api/fields.h"
#include "daemon/config.h"

/* One body: the page that documents it, its marker, its table. */
struct documented {
	const char *page;
	const char *marker;
	const struct field *(*table)(void);
};

static const struct documented bodies[] = {
	{ "config.md", "config", config_field_table },
	{ "notifications.md", "topic", api_topic_fields },
	{ "notifications.md", "subscription", api_subscription_fields },
	{ "notifications.md", "function", api_function_fields },
	{ "notifications.md", "topic-update", api_topic_update_fields },
	{ "notifications.md", "subscription-update",
	  api_subscription_update_fields },
	{ "notifications.md", "function-update", api_function_update_fields },
	{ "autoscale.md", "autoscale", api_autoscale_policy_fields },
	{ "monitoring.md", "alarm", alarm_json_fields },
	{ "api.md", "deployment", api_deployment_fields },
	{ "api.md", "deployment-update", api_deployment_update_fields },
	{ "api.md", "token", api_token_fields },
};

#define ROWS_MAX 128
#define LINE_MAX_LEN 4096

struct row {
	char name[FIELD_PATH_MAX];
	char text[LINE_MAX_LEN];
	int used;
};

static const char *docs_dir;

/* Adds a row for each `name` in the first cell of line (a row may name
 * several fields: "`startTime`, `endTime`"); the header and the separator
 * name none. Returns the new number of rows. */
static size_t add_names(const char *line, const char *page, struct row *rows,
			size_t n)
{
	const char *cell_end = strchr(line + 1, '|');
	const char *a = line + 1, *b;

	if (cell_end == NULL)
		return n;
	while ((a = strchr(a, '`')) != NULL && a < cell_end) {
		b = strchr(a + 1, '`');
		if (b == NULL || b > cell_end)
			break;
		if ((size_t)(b - a - 1) < FIELD_PATH_MAX) {
			if (n == ROWS_MAX)
				fail_msg("%s: more than %d rows", page,
					 ROWS_MAX);
			memcpy(rows[n].name, a + 1, (size_t)(b - a - 1));
			rows[n].name[b - a - 1] = '\0';
			snprintf(rows[n].text, sizeof(rows[n].text), "%s",
				 line);
			rows[n].used = 0;
			n++;
		}
		a = b + 1;
	}
	return n;
}

/* Reads the rows of the table after `<!-- fields: marker -->` in page.
 * Returns their number; fails the test if there is no such table. */
static size_t read_rows(const char *page, const char *marker,
			struct row *rows)
{
	char path[512], line[LINE_MAX_LEN], want[128];
	size_t n = 0;
	int in_table = 0, found = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", docs_dir, page);
	snprintf(want, sizeof(want), "<!-- fields: %s -->", marker);
	fp = fopen(path, "r");
	if (fp == NULL)
		fail_msg("cannot open %s", path);
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (!found) {
			found = strncmp(line, want, strlen(want)) == 0;
			continue;
		}
		if (line[0] != '|') {
			if (in_table)
				break;
			continue;
		}
		in_table = 1;
		n = add_names(line, page, rows, n);
	}
	fclose(fp);
	if (!found)
		fail_msg("%s has no '%s' marker", page, want);
	return n;
}

/* Whether a field's bounds are numbers a reader must be told. */
static int has_bounds(const struct field *fd)
{
	switch (fd->type) {
	case FIELD_INTEGER:
	case FIELD_NUMBER:
	case FIELD_DURATION:
		return fd->min != 0 || fd->max != 0;
	case FIELD_ARRAY:
	case FIELD_STRV:
	case FIELD_CUSTOM:
		return fd->max != 0;
	default:
		return 0;
	}
}

static int check_body(const struct documented *d)
{
	static struct row rows[ROWS_MAX];
	size_t n = read_rows(d->page, d->marker, rows);
	int bad = 0;

	for (const struct field *fd = d->table(); fd->name != NULL; fd++) {
		struct row *r = NULL;
		char bounds[64];

		for (size_t i = 0; i < n && r == NULL; i++)
			if (strcmp(rows[i].name, fd->name) == 0)
				r = &rows[i];
		if (r == NULL) {
			print_error("%s (%s): field %s is not documented\n",
				    d->page, d->marker, fd->name);
			bad++;
			continue;
		}
		r->used = 1;
		if (fd->required != (strstr(r->text, "required") != NULL)) {
			print_error("%s (%s): %s is%s required but its row "
				    "says%s\n", d->page, d->marker, fd->name,
				    fd->required ? "" : " not",
				    fd->required ? " nothing" : " so");
			bad++;
		}
		snprintf(bounds, sizeof(bounds), "%.15g–%.15g", fd->min,
			 fd->max);
		if (has_bounds(fd) && strstr(r->text, bounds) == NULL) {
			print_error("%s (%s): the row of %s does not give its "
				    "bounds %s\n", d->page, d->marker,
				    fd->name, bounds);
			bad++;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (!rows[i].used) {
			print_error("%s (%s): %s is documented but is not a "
				    "field\n", d->page, d->marker,
				    rows[i].name);
			bad++;
		}
	return bad;
}

static void docs_match_the_tables(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		bad += check_body(&bodies[i]);
	assert_int_equal(bad, 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(docs_match_the_tables),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s DOCS_DIR\n", argv[0]);
		return 2;
	}
	docs_dir = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
