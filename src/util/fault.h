/*
 * fault.h - what the API says when a request is refused.
 *
 * Modules that validate requests fill a fault: an MDS_E_* code (which the
 * API maps to an HTTP status), the field to blame if one is, and a message
 * a person can act on.
 */
#ifndef MDS_FAULT_H
#define MDS_FAULT_H


struct fault {
	int err;         /* MDS_E_* */
	const char *code; /* API code override ("IncorrectState"); or NULL */
	char field[64];  /* "" when no single field is to blame */
	char message[512];
};

/* Fills f (field may be "") and returns err, so that callers can write
 * `return fault_set(f, MDS_E_INVAL, "name", "...", ...)`. */
int fault_set(struct fault *f, int err, const char *field, const char *fmt,
	      ...) __attribute__((format(printf, 4, 5)));

#endif
