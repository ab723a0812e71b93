/* log.c - see log.h. */
#include <inttypes.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "err.h"
#include "ids.h"
#include "jsonstr.h"
#include "log.h"
#include "rfc3339.h"

enum log_level log_current_level = LOG_INFO;

/* Set once at start-up and cleared at shutdown (see log_set_sink()). */
static struct {
	log_sink_fn *fn;
	void *arg;
} sink;

/* A line on stderr in JSON: the message (at most 2 KiB) escaped, and the
 * ids. */
#define LOG_JSON_LINE_MAX 16384

/* Set once at start-up, like the sink. */
static enum log_stderr_format stderr_format = LOG_STDERR_TEXT;
static bool stderr_json;

static const char *const names[] = { "error", "warn", "info", "debug" };

/* syslog priorities of the levels: LOG_ERR, LOG_WARNING, LOG_INFO,
 * LOG_DEBUG. */
static const int priorities[] = { 3, 4, 6, 7 };

const struct log_id_field log_id_fields[LOG_N_IDS] = {
	{ "deploymentId", offsetof(struct log_ids, deployment_id) },
	{ "instanceId", offsetof(struct log_ids, instance_id) },
	{ "workRequestId", offsetof(struct log_ids, work_request_id) },
	{ "alarmId", offsetof(struct log_ids, alarm_id) },
	{ "function", offsetof(struct log_ids, function) },
	{ "subscriptionId", offsetof(struct log_ids, subscription_id) },
	{ "stream", offsetof(struct log_ids, stream) },
};

const char *log_id_get(const struct log_ids *ids, size_t i)
{
	const char *v;

	if (ids == NULL || i >= LOG_N_IDS)
		return NULL;
	v = *(const char *const *)(const void *)((const char *)ids +
						 log_id_fields[i].off);
	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Appends "key":"escaped value". */
static int json_pair(struct buf *out, const char *key, const char *v,
		     bool first)
{
	if (buf_printf(out, "%s\"%s\":\"", first ? "" : ",", key) != 0 ||
	    jsonstr_escape(out, v) != 0)
		return MDS_E_LIMIT;
	return buf_add(out, "\"", 1);
}

int log_format_json(const struct log_record *rec, uint64_t dropped,
		    struct buf *out)
{
	char when[RFC3339_BUFSZ];
	int rc;

	buf_reset(out);
	rfc3339_format(rec->time_ms, RFC3339_MILLIS, when, sizeof(when));
	rc = buf_add(out, "{", 1);
	rc = rc ? rc : json_pair(out, "time", when, true);
	rc = rc ? rc : json_pair(out, "level", log_level_name(rec->level),
				 false);
	rc = rc ? rc : json_pair(out, "source",
				 rec->source ? rec->source : "", false);
	rc = rc ? rc : json_pair(out, "message",
				 rec->message ? rec->message : "", false);
	for (size_t i = 0; rc == 0 && i < LOG_N_IDS; i++) {
		const char *v = log_id_get(rec->ids, i);

		if (v != NULL)
			rc = json_pair(out, log_id_fields[i].key, v, false);
	}
	if (rc == 0 && dropped > 0)
		rc = buf_printf(out, ",\"dropped\":%ju", (uintmax_t)dropped);
	if (rc == 0)
		rc = buf_add(out, "}\n", 2);
	return rc != 0 ? MDS_E_LIMIT : 0;
}

enum log_stderr_format log_stderr_detect(bool json)
{
	const char *v = getenv("JOURNAL_STREAM");
	uintmax_t dev, ino;
	struct stat st;

	stderr_json = json;
	stderr_format = LOG_STDERR_TEXT;
	if (v != NULL && sscanf(v, "%ju:%ju", &dev, &ino) == 2 &&
	    fstat(2, &st) == 0 && (uintmax_t)st.st_dev == dev &&
	    (uintmax_t)st.st_ino == ino)
		stderr_format = LOG_STDERR_JOURNAL;
	return stderr_format;
}

/* Writes one line to stderr in the format chosen at start-up. */
static void write_stderr(const struct log_record *rec, const char *when)
{
	int prio = priorities[(unsigned)rec->level < 4 ? rec->level : LOG_INFO];
	struct buf b;

	if (stderr_json) {
		buf_init(&b, LOG_JSON_LINE_MAX);
		if (log_format_json(rec, 0, &b) == 0) {
			if (stderr_format == LOG_STDERR_JOURNAL)
				fprintf(stderr, "<%d>", prio);
			fwrite(b.data, 1, b.len, stderr);
		}
		buf_free(&b);
	} else if (stderr_format == LOG_STDERR_JOURNAL) {
		fprintf(stderr, "<%d>%s: %s\n", prio, rec->source,
			rec->message);
	} else {
		fprintf(stderr, "%s %-5s %s: %s\n", when,
			log_level_name(rec->level), rec->source, rec->message);
	}
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

static void vwrite(enum log_level level, const char *source,
		   const struct log_ids *ids, const char *fmt, va_list ap)
{
	char when[RFC3339_BUFSZ], msg[2048];
	struct log_record rec;

	rec.time_ms = ids_now_ms();
	rfc3339_format(rec.time_ms, RFC3339_MILLIS, when, sizeof(when));
	vsnprintf(msg, sizeof(msg), fmt, ap);
	rec.level = level;
	rec.source = source;
	rec.message = msg;
	rec.ids = ids;
	write_stderr(&rec, when);
	if (sink.fn != NULL)
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
