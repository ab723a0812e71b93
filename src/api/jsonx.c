/* jsonx.c - see jsonx.h. */
#include <stdlib.h>
#include <string.h>

#include "api/jsonx.h"
#include "util/rfc3339.h"
#include "util/xalloc.h"

const char *jsonx_str(const json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : dflt;
}

uint32_t jsonx_uint(const json_t *o, const char *key, uint32_t max)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > (json_int_t)max)
		return 0;
	return (uint32_t)json_integer_value(v);
}

json_t *jsonx_time(int64_t ms)
{
	char s[RFC3339_BUFSZ];

	if (ms <= 0 || rfc3339_format(ms, RFC3339_MILLIS, s, sizeof(s)) != 0)
		return json_null();
	return json_string(s);
}

json_t *jsonx_dims(const struct tsdb_dim *dims, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, dims[i].key, json_string(dims[i].value));
	return o;
}

void jsonx_write_time(struct jsonw *w, int64_t ms)
{
	char s[RFC3339_BUFSZ];

	if (ms <= 0 || rfc3339_format(ms, RFC3339_MILLIS, s, sizeof(s)) != 0)
		jsonw_null(w);
	else
		jsonw_string(w, s);
}

void jsonx_write_dims(struct jsonw *w, const struct tsdb_dim *dims, size_t n)
{
	jsonw_object_begin(w);
	for (size_t i = 0; i < n; i++) {
		jsonw_key(w, dims[i].key);
		jsonw_string(w, dims[i].value);
	}
	jsonw_object_end(w);
}

char **jsonx_strv(const json_t *a, size_t max)
{
	size_t i, n = json_array_size(a);
	char **v;

	if (!json_is_array(a) || n == 0 || n > max)
		return NULL;
	for (i = 0; i < n; i++)
		if (!json_is_string(json_array_get(a, i)))
			return NULL;
	v = xcalloc(n + 1, sizeof(*v));
	for (i = 0; i < n; i++)
		v[i] = xstrdup(json_string_value(json_array_get(a, i)));
	return v;
}

json_t *jsonx_strv_json(const char *const *argv)
{
	json_t *a = json_array();

	for (size_t i = 0; argv != NULL && argv[i] != NULL; i++)
		json_array_append_new(a, json_string(argv[i]));
	return a;
}

json_t *jsonx_command(bool shell, char *const *argv)
{
	if (shell)
		return json_string(argv != NULL && argv[0] != NULL ? argv[0]
								   : "");
	return jsonx_strv_json((const char *const *)argv);
}

json_t *jsonx_pairs(char *const *v, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(v[i], '=');
		char *k = xstrndup(v[i], (size_t)(eq - v[i]));

		json_object_set_new(o, k, json_string(eq + 1));
		free(k);
	}
	return o;
}
