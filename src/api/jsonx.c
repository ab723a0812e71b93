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
