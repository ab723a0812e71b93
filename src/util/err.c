/* err.c - names and messages for the error table in err.h. */
#include <stdarg.h>
#include <stdio.h>

#include "err.h"

const char *mds_err_name(int code)
{
	switch (code) {
	case MDS_OK:
		return "MDS_OK";
#define X(name, msg)                                                          \
	case MDS_E_##name:                                                    \
		return "MDS_E_" #name;
		MDS_ERRNO_MAP(X)
#undef X
	default:
		return "MDS_E_UNKNOWN";
	}
}

const char *mds_strerror(int code)
{
	switch (code) {
	case MDS_OK:
		return "success";
#define X(name, msg)                                                          \
	case MDS_E_##name:                                                    \
		return msg;
		MDS_ERRNO_MAP(X)
#undef X
	default:
		return "unknown error";
	}
}

void mds_diag(char *diag, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (diag == NULL || size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(diag, size, fmt, ap);
	va_end(ap);
}
