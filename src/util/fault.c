/* fault.c - see fault.h. */
#include <stdarg.h>
#include <stdio.h>

#include "util/fault.h"

int fault_set(struct fault *f, int err, const char *field, const char *fmt,
	      ...)
{
	va_list ap;

	f->err = err;
	f->code = NULL;
	snprintf(f->field, sizeof(f->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(f->message, sizeof(f->message), fmt, ap);
	va_end(ap);
	return err;
}
