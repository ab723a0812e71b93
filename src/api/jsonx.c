/* jsonx.c - see jsonx.h. */
#include "api/jsonx.h"
#include "util/ids.h"
#include "util/xalloc.h"

json_t *jsonx_time(int64_t ms)
{
	char s[40];

	if (ms <= 0)
		return json_null();
	ids_format_time(ms, s, sizeof(s));
	return json_string(s);
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
