/* paths.c - see paths.h. */
#include <stdlib.h>

#include "daemon/paths.h"
#include "util/xalloc.h"

char *paths_default_data_dir(void)
{
	const char *v;

	v = getenv("MDSCALE_DATA");
	if (v != NULL && *v != '\0')
		return xstrdup(v);
	v = getenv("XDG_DATA_HOME");
	if (v != NULL && *v == '/')
		return xasprintf("%s/mdscale", v);
	v = getenv("HOME");
	if (v != NULL && *v == '/')
		return xasprintf("%s/.local/share/mdscale", v);
	return xstrdup("/var/lib/mdscale");
}

char *paths_token_file(const char *data_dir)
{
	return xasprintf("%s/token", data_dir);
}

char *paths_api_socket(const char *data_dir)
{
	return xasprintf("%s/api.sock", data_dir);
}
