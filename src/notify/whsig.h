/*
 * whsig.h - Standard Webhooks signatures: signing deliveries, verifying
 * what mdscale's own receivers are sent, refusing replays.
 *
 * The scheme (https://www.standardwebhooks.com/): three headers,
 * webhook-id (the message id), webhook-timestamp (Unix seconds) and
 * webhook-signature, a space-separated list of "v1,<base64 of
 * HMAC-SHA256(key, id "." timestamp "." body)>". A secret written
 * "whsec_<base64>" is keyed by the decoded bytes, as the scheme says; any
 * other secret by its own bytes.
 */
#ifndef MDS_WHSIG_H
#define MDS_WHSIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WHSIG_KEY_MAX 256       /* bytes of a key */
#define WHSIG_SIG_MAX 64        /* "v1," and 44 base64 characters, NUL */
#define WHSIG_ID_MAX 256        /* bytes of a webhook-id kept */
#define WHSIG_SEEN_MAX 8192     /* ids remembered for replay checks */
#define WHSIG_TOLERANCE_S 300   /* the default window, either side of now */

/*
 * The HMAC key of secret. Returns 0 with the key in key (WHSIG_KEY_MAX
 * bytes) and its length in *len, or MDS_E_INVAL for a "whsec_" secret
 * whose rest is not base64 or decodes to nothing or to over
 * WHSIG_KEY_MAX bytes.
 */
int whsig_key(const char *secret, unsigned char *key, size_t *len);

/*
 * Writes "v1,<base64>" for message id, timestamp ts and body into out
 * (WHSIG_SIG_MAX bytes). Returns 0, or MDS_E_INVAL for a bad secret.
 */
int whsig_sign(const char *secret, const char *id, int64_t ts,
	       const char *body, size_t len, char out[WHSIG_SIG_MAX]);

/*
 * The ids accepted within the window, for replay checks: a fixed ring of
 * WHSIG_SEEN_MAX entries in memory (about 2 MB), and, once
 * whsig_seen_load() has given it a store, the same ids in the store
 * (events of stream WHSIG_STREAM, ref the id), so that a restart does
 * not make a delivery acceptable again.
 */
struct whsig_seen;
struct store;

#define WHSIG_STREAM "webhook-id"

/* A new, empty record; free with whsig_seen_free() (NULL allowed). */
struct whsig_seen *whsig_seen_new(void);
void whsig_seen_free(struct whsig_seen *s);

/*
 * Reads the ids the store holds with timestamps within tolerance_s of
 * now_s (the newest WHSIG_SEEN_MAX of them) into s, and from then on
 * records each id accepted in st (borrowed: it must outlive s) before
 * whsig_verify() returns 0. Only reads, so it works on a full device.
 * Returns 0 or the store's error.
 */
int whsig_seen_load(struct whsig_seen *s, struct store *st, int64_t now_s,
		    int64_t tolerance_s);

/*
 * Checks a delivery's headers (any may be NULL: missing) and body against
 * secret at now_s: a signature of the list must match, the timestamp must
 * lie within tolerance_s of now_s, and, when seen is not NULL, the id must
 * not have been accepted before (it is then remembered). Returns 0, or
 * MDS_E_UNAUTH with the reason in diag (missing header, bad timestamp,
 * stale, no matching signature), MDS_E_EXISTS for an id already accepted
 * (a replay), or MDS_E_LIMIT when seen is
 * full of ids still inside the window (refused, not forgotten). With a
 * store (whsig_seen_load()), the id is written to it, and ids older than
 * the window are deleted from it, in one transaction: committed before
 * this returns, or, between whsig_seen_begin() and whsig_seen_end(), with
 * the delivery's effect. When that fails, returns the store's error
 * (MDS_E_NOSPACE for a full device, MDS_E_DB) and the id is not
 * remembered: the delivery must be refused, and a resend of it is judged
 * afresh. The id is remembered in memory once its row is committed.
 */
int whsig_verify(const char *secret, const char *id, const char *timestamp,
		 const char *signature, const char *body, size_t len,
		 int64_t now_s, int64_t tolerance_s, struct whsig_seen *seen,
		 char *diag, size_t diagsz);

/*
 * An accepted id and the effect of its delivery are committed together:
 * whsig_seen_begin() opens a transaction on s's store (the daemon's one,
 * where the receivers act too) before whsig_verify(); whsig_seen_end()
 * commits it when ok (the effect was stored), else rolls it back, so that
 * a failed delivery leaves no id behind and its resend is taken once.
 * Return 0 or the store's error (MDS_E_NOSPACE, MDS_E_DB): a failed
 * commit records nothing. Without a store both do nothing.
 */
int whsig_seen_begin(struct whsig_seen *s);
int whsig_seen_end(struct whsig_seen *s, bool ok);

/*
 * Forgets an accepted id, in memory and in the store, for an effect that
 * failed after the id's commit (an OCI subscription's confirmation, which
 * ends later): a resend of the delivery is then taken. Returns 0 or the
 * store's error (the id then stays refused after a restart).
 */
int whsig_seen_forget(struct whsig_seen *s, const char *id);

#endif
