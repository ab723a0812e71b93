/*
 * base64.h - decoding base64 (RFC 4648), both alphabets.
 *
 * Kubeconfig files carry certificates and keys as base64 ("...-data"), and
 * JWT tokens are base64url without padding; one decoder serves both.
 */
#ifndef MDS_BASE64_H
#define MDS_BASE64_H

#include <stddef.h>

/*
 * Decodes len characters of src ('+' '/' or '-' '_', padding optional,
 * whitespace skipped). Returns 0 with a new NUL-terminated buffer in *out
 * (the caller frees it) and its length without the NUL in *outlen, or
 * MDS_E_INVAL for a character outside the alphabet or a bad length.
 */
int base64_decode(const char *src, size_t len, char **out, size_t *outlen);

#endif
