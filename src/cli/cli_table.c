/*
 * cli_table.c - tables printed like `kubectl get`; see cli.h.
 *
 * Cells are copied; widths are counted in UTF-8 characters, so a name with
 * accents does not push its column out of line. Its size is bounded by the
 * response it was built from (capped in cli_request.c).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/xalloc.h"

/* Spaces between columns, as kubectl prints them. */
#define CLI_TABLE_GAP 3

struct cli_table {
	size_t ncols;
	size_t ncells; /* header cells included */
	size_t cap;
	char **cells;
	size_t *width;
};

static size_t display_width(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* Takes ownership of cell. */
static void add_cell(struct cli_table *t, char *cell)
{
	char *p;
	size_t col = t->ncells % t->ncols, w;

	for (p = cell; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	}
	if (*cell == '\0') {
		free(cell);
		cell = xstrdup("-");
	}
	if (t->ncells == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 32;
		t->cells = xreallocarray(t->cells, t->cap, sizeof *t->cells);
	}
	t->cells[t->ncells++] = cell;
	w = display_width(cell);
	if (w > t->width[col])
		t->width[col] = w;
}

struct cli_table *cli_table_new(const char *headers)
{
	struct cli_table *t = xcalloc(1, sizeof *t);
	const char *p = headers;
	size_t len;
	char *h;

	t->ncols = 1;
	for (; *p != '\0'; p++)
		t->ncols += *p == ' ';
	t->width = xcalloc(t->ncols, sizeof *t->width);
	for (p = headers; *p != '\0'; p += len + (p[len] == ' ')) {
		len = strcspn(p, " ");
		h = xstrndup(p, len);
		for (char *q = h; *q != '\0'; q++)
			*q = (char)toupper((unsigned char)*q);
		add_cell(t, h);
	}
	return t;
}

void cli_table_add(struct cli_table *t, const char *fmt, ...)
{
	va_list ap;
	char *cell;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	cell = xmalloc(n > 0 ? (size_t)n + 1 : 1);
	cell[0] = '\0';
	if (n > 0) {
		va_start(ap, fmt);
		vsnprintf(cell, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	add_cell(t, cell);
}

void cli_table_json(struct cli_table *t, const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	if (json_is_string(v))
		cli_table_add(t, "%s", json_string_value(v));
	else if (json_is_integer(v))
		cli_table_add(t, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		cli_table_add(t, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		cli_table_add(t, "%s", json_is_true(v) ? "true" : "false");
	else
		cli_table_add(t, "-");
}

void cli_table_print(const struct cli_table *t, FILE *out)
{
	size_t i, col;

	for (i = 0; i < t->ncells; i++) {
		col = i % t->ncols;
		fputs(t->cells[i], out);
		if (col + 1 == t->ncols || i + 1 == t->ncells)
			fputc('\n', out);
		else
			fprintf(out, "%*s",
				(int)(t->width[col] - display_width(t->cells[i]) +
					CLI_TABLE_GAP), "");
	}
}

void cli_table_free(struct cli_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->width);
	free(t);
}

/* Adds the cells of one row. */
static void add_row(struct cli_table *t, const struct cli_column *cols,
	int wide, const json_t *o)
{
	for (; cols->header != NULL; cols++) {
		if (cols->wide && !wide)
			continue;
		if (cols->cell != NULL)
			cols->cell(t, o);
		else
			cli_table_json(t, o, cols->field);
	}
}

void cli_print_rows(const struct cli_ctx *ctx, const json_t *body, int list,
	const struct cli_column *cols)
{
	int wide = ctx->output == CLI_OUTPUT_WIDE;
	struct cli_table *t;
	char headers[512];
	const json_t *o;
	size_t i, n = 0;

	if (cli_structured(ctx)) {
		cli_print_json(ctx, body);
		return;
	}
	headers[0] = '\0';
	for (const struct cli_column *c = cols; c->header != NULL; c++)
		if (wide || !c->wide)
			n += (size_t)snprintf(headers + n, sizeof headers - n,
				"%s%s", n ? " " : "", c->header);
	t = cli_table_new(headers);
	if (list) {
		json_array_foreach(json_object_get(body, "items"), i, o)
			add_row(t, cols, wide, o);
	} else {
		add_row(t, cols, wide, body);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
}
