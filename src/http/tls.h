/*
 * tls.h - TLS for mdscale's servers (the API and the gateway) over libuv
 * streams, with OpenSSL's memory BIOs: ciphertext read from the socket is
 * fed in, plaintext comes out; plaintext to send goes in, ciphertext to
 * write comes out. The socket stays the caller's.
 *
 * A tls_ctx holds the certificate and key; tls_ctx_reload() replaces them
 * for new connections (connections already open keep theirs). It may be
 * reloaded on one thread while another opens connections.
 */
#ifndef MDS_TLS_H
#define MDS_TLS_H

#include <stddef.h>

#include "util/buf.h"

struct tls_ctx;
struct tls_conn;

/*
 * Loads the PEM certificate chain at cert_file and the private key at
 * key_file, which must match. Returns 0 and a new context in *out (free
 * with tls_ctx_free()), or MDS_E_IO / MDS_E_INVAL with "file: why" in
 * diag.
 */
int tls_ctx_new(const char *cert_file, const char *key_file,
		struct tls_ctx **out, char *diag, size_t diagsz);

/*
 * Loads a new pair for the connections accepted from now on. Returns 0,
 * or an error as tls_ctx_new() with the old pair kept.
 */
int tls_ctx_reload(struct tls_ctx *ctx, const char *cert_file,
		   const char *key_file, char *diag, size_t diagsz);

/* Frees ctx (NULL allowed); connections still open keep what they use. */
void tls_ctx_free(struct tls_ctx *ctx);

/* A server-side connection of ctx; free with tls_conn_free(). */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx);
void tls_conn_free(struct tls_conn *c);

/*
 * Feeds n bytes read from the socket; appends the plaintext they complete
 * to plain (up to its cap: then MDS_E_LIMIT). Returns 0, or MDS_E_IO for
 * a failed handshake or a broken record (close the connection), or 1 when
 * the peer closed TLS. Bytes to write back (the handshake) may be waiting
 * afterwards: see tls_conn_take_out().
 */
int tls_conn_feed(struct tls_conn *c, const char *data, size_t n,
		  struct buf *plain);

/*
 * The same in two steps, for a caller with its own buffers: push gives
 * the bytes read from the socket (returns 0 or MDS_E_IO); pull then takes
 * up to cap bytes of plaintext into out, *got of them. pull returns 0
 * (*got may be 0: more input is needed), 1 when the peer closed TLS, or
 * MDS_E_IO.
 */
int tls_conn_push(struct tls_conn *c, const char *data, size_t n);
int tls_conn_pull(struct tls_conn *c, char *out, size_t cap, size_t *got);

/*
 * Encrypts n bytes of plaintext; the records wait in the connection for
 * tls_conn_take_out(). Returns 0, or MDS_E_IO (close the connection).
 */
int tls_conn_write(struct tls_conn *c, const char *data, size_t n);

/*
 * Takes the ciphertext waiting to be written to the socket: returns its
 * length (0: nothing) and, when not 0, a new buffer in *out (the caller
 * frees it).
 */
size_t tls_conn_take_out(struct tls_conn *c, char **out);

#endif
