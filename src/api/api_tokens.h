/*
 * api_tokens.h - who may call the API: the data directory's token (the
 * administrator's) and the tokens issued through /v1/tokens, each full or
 * read-only, kept in the store as SHA-256 hashes only (docs/api.md,
 * "Authentication").
 */
#ifndef MDS_API_TOKENS_H
#define MDS_API_TOKENS_H

#include <stddef.h>

struct store;
struct tokens;

/* What a request's bearer token allows; each role includes the ones
 * before it. */
enum api_role {
	API_ROLE_NONE = 0, /* no token, or an unknown or revoked one */
	API_ROLE_READ,     /* a read-only token: every read */
	API_ROLE_WRITE,    /* a full token: every read and change */
	API_ROLE_ADMIN,    /* the data directory's token: also /v1/tokens */
};

/*
 * Loads the issued tokens from st (borrowed, kept). admin is the data
 * directory's token (borrowed, kept). Returns 0 and a new object in *out
 * (freed with tokens_free()), or MDS_E_DB / MDS_E_PARSE with diag filled.
 */
int tokens_open(struct store *st, const char *admin, struct tokens **out,
		char *diag, size_t diagsz);
/* Frees t; NULL is allowed. */
void tokens_free(struct tokens *t);

/* The role of an Authorization header's value (borrowed, may be NULL).
 * Compares in constant time per stored token. */
enum api_role tokens_role(const struct tokens *t, const char *authorization);

/* Counts the revocations and rotations so far. A caller that checked a
 * token once and keeps serving it (a streamed answer) checks it again with
 * tokens_role() when this has changed. */
unsigned long tokens_generation(const struct tokens *t);

#endif
