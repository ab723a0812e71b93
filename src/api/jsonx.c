/* jsonx.c - see jsonx.h. */
#include "api/jsonx.h"
#include "util/ids.h"

json_t *jsonx_time(int64_t ms)
{
	char s[40];

	if (ms <= 0)
		return json_null();
	ids_format_time(ms, s, sizeof(s));
	return json_string(s);
}
