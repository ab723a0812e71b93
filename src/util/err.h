/*
 * err.h - the one table of mdscale error codes.
 *
 * Every fallible function returns 0 or one of these negative codes. Detail for
 * humans (which field, which column) goes into a caller-provided diagnostic
 * buffer, never into the code itself.
 */
#ifndef MDS_ERR_H
#define MDS_ERR_H

#define MDS_ERRNO_MAP(X)                                                     \
	X(INVAL, "invalid argument")                                         \
	X(NOTFOUND, "not found")                                             \
	X(EXISTS, "already exists")                                          \
	X(CONFLICT, "conflicting state")                                     \
	X(LIMIT, "limit exceeded")                                           \
	X(PARSE, "parse error")                                              \
	X(IO, "input/output error")                                          \
	X(DB, "database error")                                              \
	X(NOSPACE, "the data directory's device is full")                    \
	X(SYS, "system call failed")                                         \
	X(TIMEOUT, "timed out")                                              \
	X(UNAUTH, "unauthorized")                                            \
	X(UNAVAIL, "unavailable")                                            \
	X(INTERNAL, "internal error")

enum mds_err {
	MDS_OK = 0,
	MDS_E__FIRST = -1000,
#define X(name, msg) MDS_E_##name,
	MDS_ERRNO_MAP(X)
#undef X
	MDS_E__LAST
};

/* Returns the symbolic name ("MDS_E_INVAL") of a code; static storage. */
const char *mds_err_name(int code);

/* Returns the human message of a code; static storage. */
const char *mds_strerror(int code);

/* Formats into a caller-provided diagnostic buffer; truncates safely. A NULL
 * or zero-sized buffer is accepted and ignored. */
void mds_diag(char *diag, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
