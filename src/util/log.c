/* log.c - see log.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "err.h"
#include "log.h"

enum log_level log_current_level = LOG_INFO;

static const char *const names[] = { "error", "warn", "info", "debug" };

int log_set_level(const char *name)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i]) == 0) {
			log_current_level = (enum log_level)i;
			return 0;
		}
	}
	return MDS_E_INVAL;
}

void log_write(enum log_level level, const char *source, const char *fmt, ...)
{
	char when[32], msg[2048];
	struct timeval tv;
	struct tm tm;
	va_list ap;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s.%03dZ %-5s %s: %s\n", when, (int)(tv.tv_usec / 1000),
		names[level], source, msg);
}
