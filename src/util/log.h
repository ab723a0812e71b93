/*
 * log.h - leveled logging for the daemon.
 *
 * The level is the one mutable global of the program. The macros test the
 * level before evaluating their arguments, so a disabled debug line costs a
 * comparison. Lines go to stderr as "time level source: message".
 */
#ifndef MDS_LOG_H
#define MDS_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_current_level;

/* Parses "error", "warn", "info" or "debug"; returns 0 or MDS_E_INVAL. */
int log_set_level(const char *name);
void log_write(enum log_level level, const char *source, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define LOG_AT(lvl, src, ...)                                                 \
	do {                                                                  \
		if ((lvl) <= log_current_level)                               \
			log_write((lvl), (src), __VA_ARGS__);                 \
	} while (0)
#define log_error(src, ...) LOG_AT(LOG_ERROR, src, __VA_ARGS__)
#define log_warn(src, ...) LOG_AT(LOG_WARN, src, __VA_ARGS__)
#define log_info(src, ...) LOG_AT(LOG_INFO, src, __VA_ARGS__)
#define log_debug(src, ...) LOG_AT(LOG_DEBUG, src, __VA_ARGS__)

#endif
