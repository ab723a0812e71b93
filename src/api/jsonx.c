/* jsonx.c - see jsonx.h. */
#include "api/jsonx.h"
#include "util/rfc3339.h"

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
