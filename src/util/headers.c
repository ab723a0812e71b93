/* headers.c - lookups in a block of HTTP header lines; see headers.h. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/headers.h"

int headers_get(const char *lines, const char *name, char *out, size_t outsz)
{
	size_t nlen = strlen(name);
	int found = 0;

	if (outsz > 0)
		out[0] = '\0';
	for (const char *p = lines; p != NULL && *p != '\0';) {
		const char *eol = strchr(p, '\n');
		const char *end = eol != NULL ? eol : p + strlen(p);

		if ((size_t)(end - p) > nlen && p[nlen] == ':' &&
		    strncasecmp(p, name, nlen) == 0) {
			const char *v = p + nlen + 1;
			const char *ve = end;

			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' ||
					  ve[-1] == '\t'))
				ve--;
			if (outsz > 0)
				snprintf(out, outsz, "%.*s", (int)(ve - v), v);
			found = 1;
		}
		p = eol != NULL ? eol + 1 : end;
	}
	return found;
}
