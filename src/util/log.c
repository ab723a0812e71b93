/* log.c - see log.h. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include "err.h"
#include "log.h"

enum log_level log_current_level = LOG_INFO;

/* Set once at start-up and cleared at shutdown (see log_set_sink()). */
static struct {
	log_sink_fn *fn;
	void *arg;
} sink;

/* Set once at start-up, like the sink. */
static enum log_stderr_format stderr_format = LOG_STDERR_TEXT;

static const char *const names[] = { "error", "warn", "info", "debug" };

/* syslog priorities of the levels: LOG_ERR, LOG_WARNING, LOG_INFO,
 * LOG_DEBUG. */
static const int priorities[] = { 3, 4, 6, 7 };

enum log_stderr_format log_stderr_detect(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	uintmax_t dev, ino;
	struct stat st;

	stderr_format = LOG_STDERR_TEXT;
	if (v != NULL && sscanf(v, "%ju:%ju", &dev, &ino) == 2 &&
	    fstat(2, &st) == 0 && (uintmax_t)st.st_dev == dev &&
	    (uintmax_t)st.st_ino == ino)
		stderr_format = LOG_STDERR_JOURNAL;
	return stderr_format;
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return MDS_E_INVAL;
}

int log_set_level(const char *name)
{
	return log_level_parse(name, &log_current_level);
}

const char *log_level_name(enum log_level level)
{
	return (unsigned)level < sizeof(names) / sizeof(names[0])
		       ? names[level]
		       : "info";
}

void log_set_sink(log_sink_fn *fn, void *arg)
{
	sink.fn = fn;
	sink.arg = fn != NULL ? arg : NULL;
}

int64_t log_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void log_format_time(int64_t ms, char out[25])
{
	int64_t frac = ms % 1000;
	time_t sec;
	struct tm tm;

	if (frac < 0)
		frac += 1000;
	sec = (time_t)((ms - frac) / 1000);
	memset(out, '0', 24);
	gmtime_r(&sec, &tm);
	if (strftime(out, 20, "%Y-%m-%dT%H:%M:%S", &tm) != 19)
		memcpy(out, "0000-00-00T00:00:00", 19);
	out[19] = '.';
	out[20] = (char)('0' + frac / 100);
	out[21] = (char)('0' + frac / 10 % 10);
	out[22] = (char)('0' + frac % 10);
	out[23] = 'Z';
	out[24] = '\0';
}

static void vwrite(enum log_level level, const char *source,
		   const struct log_ids *ids, const char *fmt, va_list ap)
{
	char when[25], msg[2048];
	struct log_record rec;

	rec.time_ms = log_now_ms();
	log_format_time(rec.time_ms, when);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (stderr_format == LOG_STDERR_JOURNAL)
		fprintf(stderr, "<%d>%s: %s\n",
			priorities[(unsigned)level < 4 ? level : LOG_INFO],
			source, msg);
	else
		fprintf(stderr, "%s %-5s %s: %s\n", when,
			log_level_name(level), source, msg);
	if (sink.fn == NULL)
		return;
	rec.level = level;
	rec.source = source;
	rec.message = msg;
	rec.ids = ids;
	sink.fn(sink.arg, &rec);
}

void log_write(enum log_level level, const char *source, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwrite(level, source, NULL, fmt, ap);
	va_end(ap);
}

void log_write_ids(enum log_level level, const char *source,
		   const struct log_ids *ids, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwrite(level, source, ids, fmt, ap);
	va_end(ap);
}
