/* whsig.c - Standard Webhooks signatures; see whsig.h. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/whsig.h"
#include "store/store.h"
#include "util/base64.h"
#include "util/err.h"
#include "util/xalloc.h"

#define PREFIX "whsec_"

struct seen_entry {
	char id[WHSIG_ID_MAX];
	int64_t ts; /* the accepted delivery's timestamp; 0: free */
};

struct whsig_seen {
	struct seen_entry v[WHSIG_SEEN_MAX];
	struct store *store; /* borrowed; NULL: memory only */
	size_t nloaded;      /* entries filled by whsig_seen_load() */
};

int whsig_key(const char *secret, unsigned char *key, size_t *len)
{
	size_t n = strlen(PREFIX);
	char *raw = NULL;
	size_t rawlen = 0;

	if (strncmp(secret, PREFIX, n) != 0) {
		rawlen = strlen(secret);
		if (rawlen == 0 || rawlen > WHSIG_KEY_MAX)
			return MDS_E_INVAL;
		memcpy(key, secret, rawlen);
		*len = rawlen;
		return 0;
	}
	if (base64_decode(secret + n, strlen(secret + n), &raw, &rawlen) != 0)
		return MDS_E_INVAL;
	if (rawlen == 0 || rawlen > WHSIG_KEY_MAX) {
		free(raw);
		return MDS_E_INVAL;
	}
	memcpy(key, raw, rawlen);
	*len = rawlen;
	OPENSSL_cleanse(raw, rawlen);
	free(raw);
	return 0;
}

/* The raw HMAC of "id.ts.body" into mac (32 bytes). */
static int mac_of(const char *secret, const char *id, const char *ts,
		  const char *body, size_t len, unsigned char *mac)
{
	unsigned char key[WHSIG_KEY_MAX];
	size_t keylen, il = strlen(id), tl = strlen(ts);
	unsigned int maclen = 0;
	unsigned char *msg;
	bool ok;

	if (whsig_key(secret, key, &keylen) != 0)
		return MDS_E_INVAL;
	msg = xmalloc(il + tl + len + 2);
	memcpy(msg, id, il);
	msg[il] = '.';
	memcpy(msg + il + 1, ts, tl);
	msg[il + 1 + tl] = '.';
	memcpy(msg + il + tl + 2, body, len);
	ok = HMAC(EVP_sha256(), key, (int)keylen, msg, il + tl + len + 2, mac,
		  &maclen) != NULL && maclen == 32;
	free(msg);
	OPENSSL_cleanse(key, sizeof(key));
	return ok ? 0 : MDS_E_INTERNAL;
}

int whsig_sign(const char *secret, const char *id, int64_t ts,
	       const char *body, size_t len, char out[WHSIG_SIG_MAX])
{
	unsigned char mac[32];
	char tss[24];
	int rc;

	snprintf(tss, sizeof(tss), "%lld", (long long)ts);
	rc = mac_of(secret, id, tss, body, len, mac);
	if (rc != 0)
		return rc;
	memcpy(out, "v1,", 3);
	EVP_EncodeBlock((unsigned char *)out + 3, mac, sizeof(mac));
	return 0;
}

struct whsig_seen *whsig_seen_new(void)
{
	return xcalloc(1, sizeof(struct whsig_seen));
}

void whsig_seen_free(struct whsig_seen *s)
{
	free(s);
}

/* Reads a Unix-seconds timestamp: digits only, at most 12 of them. */
static int parse_ts(const char *s, int64_t *out)
{
	int64_t v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 12)
		return MDS_E_INVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return MDS_E_INVAL;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* One stored id (the event's ref) and its timestamp (the body). */
static int load_one(void *arg, const char *id, const char *body)
{
	struct whsig_seen *s = arg;
	struct seen_entry *e;
	int64_t ts;

	if (s->nloaded >= WHSIG_SEEN_MAX || strlen(id) >= WHSIG_ID_MAX ||
	    parse_ts(body, &ts) != 0 || ts == 0)
		return 0; /* not one this code wrote: skipped */
	e = &s->v[s->nloaded++];
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->ts = ts;
	return 0;
}

int whsig_seen_load(struct whsig_seen *s, struct store *st, int64_t now_s,
		    int64_t tolerance_s)
{
	int rc;

	memset(s->v, 0, sizeof(s->v));
	s->nloaded = 0;
	rc = store_event_each(st, WHSIG_STREAM, NULL,
			      (now_s - tolerance_s) * 1000, WHSIG_SEEN_MAX,
			      load_one, s);
	if (rc != 0)
		return rc;
	s->store = st;
	return 0;
}

/* An accepted id, remembered in memory once its row is committed. */
struct accepted {
	struct whsig_seen *s;
	char id[WHSIG_ID_MAX];
	int64_t ts, now_s, tolerance_s;
};

static int seen_find(struct whsig_seen *s, const char *id, int64_t now_s,
		     int64_t tolerance_s, struct seen_entry **slot);

static void remember(void *arg)
{
	struct accepted *a = arg;
	struct seen_entry *slot;

	/* The slot is looked up again: the one free at the check may have
	 * been taken by another id meanwhile. */
	if (seen_find(a->s, a->id, a->now_s, a->tolerance_s, &slot) == 0) {
		snprintf(slot->id, sizeof(slot->id), "%s", a->id);
		slot->ts = a->ts;
	}
	free(a);
}

/* Stores the accepted id, and forgets the ids past the window, in the
 * caller's transaction if one is open (whsig_seen_begin()); the id is
 * remembered in memory once that commits. */
static int persist(struct whsig_seen *s, const char *id, int64_t ts,
		   int64_t now_s, int64_t tolerance_s)
{
	struct accepted *a = xcalloc(1, sizeof(*a));
	char body[24];
	int rc;

	*a = (struct accepted){ .s = s, .ts = ts, .now_s = now_s,
				.tolerance_s = tolerance_s };
	snprintf(a->id, sizeof(a->id), "%s", id);
	if (s->store == NULL) {
		remember(a);
		return 0;
	}
	snprintf(body, sizeof(body), "%lld", (long long)ts);
	rc = store_begin(s->store);
	if (rc == 0)
		rc = store_event_add(s->store, WHSIG_STREAM, id, ts * 1000,
				     body);
	if (rc == 0)
		rc = store_event_trim(s->store, WHSIG_STREAM, NULL,
				      (now_s - tolerance_s) * 1000);
	if (rc != 0) {
		store_rollback(s->store);
		free(a);
		return rc;
	}
	store_on_commit(s->store, remember, free, a);
	return store_commit(s->store);
}

int whsig_seen_begin(struct whsig_seen *s)
{
	return s->store != NULL ? store_begin(s->store) : 0;
}

int whsig_seen_end(struct whsig_seen *s, bool ok)
{
	if (s->store == NULL)
		return 0;
	if (!ok)
		return store_rollback(s->store);
	return store_commit(s->store);
}

int whsig_seen_forget(struct whsig_seen *s, const char *id)
{
	for (size_t i = 0; i < WHSIG_SEEN_MAX; i++)
		if (s->v[i].ts != 0 && strcmp(s->v[i].id, id) == 0)
			s->v[i].ts = 0;
	if (s->store == NULL)
		return 0;
	return store_event_trim(s->store, WHSIG_STREAM, id, INT64_MAX);
}

/* Whether one "v1,<base64>" entry of the space-separated list matches. */
static bool any_matches(const char *list, const char *want)
{
	size_t wl = strlen(want);
	const char *p = list;

	while (*p != '\0') {
		const char *end = strchr(p, ' ');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n == wl && CRYPTO_memcmp(p, want, wl) == 0)
			return true;
		p += n;
		while (*p == ' ')
			p++;
	}
	return false;
}

/* Looks id up among the live entries; finds a slot for it. Returns 0
 * with the slot in *slot, MDS_E_EXISTS for a replay, MDS_E_LIMIT when
 * full. */
static int seen_find(struct whsig_seen *s, const char *id, int64_t now_s,
		     int64_t tolerance_s, struct seen_entry **slot)
{
	*slot = NULL;
	for (size_t i = 0; i < WHSIG_SEEN_MAX; i++) {
		struct seen_entry *e = &s->v[i];
		bool live = e->ts != 0 && e->ts + tolerance_s >= now_s;

		if (live && strcmp(e->id, id) == 0)
			return MDS_E_EXISTS;
		if (!live && *slot == NULL)
			*slot = e;
	}
	return *slot == NULL ? MDS_E_LIMIT : 0;
}

int whsig_verify(const char *secret, const char *id, const char *timestamp,
		 const char *signature, const char *body, size_t len,
		 int64_t now_s, int64_t tolerance_s, struct whsig_seen *seen,
		 char *diag, size_t diagsz)
{
	char want[WHSIG_SIG_MAX];
	unsigned char mac[32];
	struct seen_entry *slot = NULL;
	int64_t ts;
	int rc;

	if (id == NULL || timestamp == NULL || signature == NULL) {
		mds_diag(diag, diagsz, "missing %s header (a signed delivery "
			 "has webhook-id, webhook-timestamp and "
			 "webhook-signature)",
			 id == NULL ? "webhook-id"
			 : timestamp == NULL ? "webhook-timestamp"
					     : "webhook-signature");
		return MDS_E_UNAUTH;
	}
	if (id[0] == '\0' || strlen(id) >= WHSIG_ID_MAX) {
		mds_diag(diag, diagsz, "webhook-id: 1 to %d bytes",
			 WHSIG_ID_MAX - 1);
		return MDS_E_UNAUTH;
	}
	if (parse_ts(timestamp, &ts) != 0) {
		mds_diag(diag, diagsz, "webhook-timestamp: Unix seconds");
		return MDS_E_UNAUTH;
	}
	if (ts < now_s - tolerance_s || ts > now_s + tolerance_s) {
		mds_diag(diag, diagsz, "webhook-timestamp %lld is outside the "
			 "%lld s tolerance of now (%lld)", (long long)ts,
			 (long long)tolerance_s, (long long)now_s);
		return MDS_E_UNAUTH;
	}
	rc = mac_of(secret, id, timestamp, body, len, mac);
	if (rc != 0) {
		mds_diag(diag, diagsz, "the receiver's secret is not usable");
		return MDS_E_UNAUTH;
	}
	memcpy(want, "v1,", 3);
	EVP_EncodeBlock((unsigned char *)want + 3, mac, sizeof(mac));
	if (!any_matches(signature, want)) {
		mds_diag(diag, diagsz, "webhook-signature: no v1 signature "
			 "matches");
		return MDS_E_UNAUTH;
	}
	if (seen == NULL)
		return 0;
	rc = seen_find(seen, id, now_s, tolerance_s, &slot);
	if (rc == MDS_E_EXISTS) {
		mds_diag(diag, diagsz, "webhook-id '%s' was already received "
			 "(a replay)", id);
		return MDS_E_EXISTS;
	}
	if (rc != 0) {
		mds_diag(diag, diagsz, "too many deliveries inside the "
			 "tolerance window (%d)", WHSIG_SEEN_MAX);
		return MDS_E_LIMIT;
	}
	rc = persist(seen, id, ts, now_s, tolerance_s);
	if (rc != 0) {
		mds_diag(diag, diagsz, "the delivery could not be recorded "
			 "(%s); nothing was done: send it again later",
			 mds_strerror(rc));
		return rc;
	}
	return 0;
}
