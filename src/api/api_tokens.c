/*
 * api_tokens.c - the API's tokens: checking a request's bearer token, and
 * the routes under /v1/tokens that issue, list, rotate and revoke them.
 *
 * An issued token is 64 random hex digits, shown once (in the answer that
 * creates or rotates it); the store keeps only its SHA-256, so a copy of
 * mdscale.db lets nobody in. The data directory's token file stays the
 * administrator's token: it is never in the store and only it may manage
 * tokens. At most TOKENS_MAX tokens are issued at a time.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_tokens.h"
#include "api/fields.h"
#include "api/jsonx.h"
#include "store/store.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/xalloc.h"

/* Issued tokens at a time: each request compares against every one. */
#define TOKENS_MAX 256
/* The store's kind of document for a token. */
#define TOKENS_KIND "api_token"

struct token {
	char id[32];
	char name[129];
	bool read_only;
	unsigned char sha256[32];
	int64_t created_ms;
	int64_t rotated_ms; /* 0: never */
};

struct tokens {
	struct store *store;
	const char *admin;
	struct token v[TOKENS_MAX];
	size_t n;
	unsigned long generation; /* revocations and rotations */
};

static void sha256(const char *s, size_t n, unsigned char out[32])
{
	unsigned int len = 32;

	/* EVP_Digest fails only without memory or a broken OpenSSL. */
	if (EVP_Digest(s, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
		abort();
}

static void hex(const unsigned char *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned int x;

		if (sscanf(s + 2 * i, "%2x", &x) != 1)
			return -1;
		out[i] = (unsigned char)x;
	}
	return 0;
}

/* The stored document: no secret, only its hash. A new string. */
static char *token_doc(const struct token *t)
{
	char h[65];
	json_t *o;
	char *s;

	hex(t->sha256, 32, h);
	o = json_pack("{s:s, s:s, s:b, s:s, s:I, s:I}", "id", t->id,
		      "displayName", t->name, "readOnly", t->read_only,
		      "sha256", h, "createdMs", (json_int_t)t->created_ms,
		      "rotatedMs", (json_int_t)t->rotated_ms);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static int load_one(void *arg, const char *id, const char *json)
{
	struct tokens *ts = arg;
	struct token *t;
	const char *name = NULL, *h = NULL;
	int ro = 0;
	json_int_t created = 0, rotated = 0;
	json_t *o = json_loads(json, 0, NULL);
	int rc = 0;

	if (ts->n == TOKENS_MAX)
		return MDS_E_LIMIT;
	t = &ts->v[ts->n];
	if (o == NULL ||
	    json_unpack(o, "{s:s, s:b, s:s, s:I, s:I}", "displayName", &name,
			"readOnly", &ro, "sha256", &h, "createdMs", &created,
			"rotatedMs", &rotated) != 0 ||
	    strlen(id) >= sizeof(t->id) || strlen(name) >= sizeof(t->name) ||
	    unhex(h, t->sha256, 32) != 0) {
		rc = MDS_E_PARSE;
		goto out;
	}
	snprintf(t->id, sizeof(t->id), "%s", id);
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->read_only = ro != 0;
	t->created_ms = created;
	t->rotated_ms = rotated;
	ts->n++;
out:
	json_decref(o);
	return rc;
}

int tokens_open(struct store *st, const char *admin, struct tokens **out,
		char *diag, size_t diagsz)
{
	struct tokens *ts = xcalloc(1, sizeof(*ts));
	int rc;

	ts->store = st;
	ts->admin = admin;
	rc = store_each(st, TOKENS_KIND, load_one, ts);
	if (rc != 0) {
		mds_diag(diag, diagsz, "cannot load the API tokens: %s",
			 mds_strerror(rc));
		free(ts);
		return rc;
	}
	*out = ts;
	return 0;
}

void tokens_free(struct tokens *t)
{
	if (t != NULL)
		OPENSSL_cleanse(t, sizeof(*t));
	free(t);
}

enum api_role tokens_role(const struct tokens *t, const char *authorization)
{
	enum api_role role = API_ROLE_NONE;
	unsigned char h[32];
	const char *tok;
	size_t n;

	if (authorization == NULL || strncmp(authorization, "Bearer ", 7) != 0)
		return API_ROLE_NONE;
	tok = authorization + 7;
	n = strlen(tok);
	if (n == strlen(t->admin) && CRYPTO_memcmp(tok, t->admin, n) == 0)
		return API_ROLE_ADMIN;
	sha256(tok, n, h);
	for (size_t i = 0; i < t->n; i++)
		if (CRYPTO_memcmp(h, t->v[i].sha256, 32) == 0)
			role = t->v[i].read_only ? API_ROLE_READ
						 : API_ROLE_WRITE;
	return role;
}

unsigned long tokens_generation(const struct tokens *t)
{
	return t->generation;
}

/* ---- the routes ---- */

static json_t *token_json(const struct token *t)
{
	json_t *o = json_pack("{s:s, s:s, s:b, s:o}", "id", t->id,
			      "displayName", t->name, "readOnly",
			      t->read_only, "timeCreated",
			      jsonx_time(t->created_ms));

	if (t->rotated_ms != 0)
		json_object_set_new(o, "timeRotated", jsonx_time(t->rotated_ms));
	return o;
}

static struct token *find(struct tokens *ts, const char *id)
{
	for (size_t i = 0; i < ts->n; i++)
		if (strcmp(ts->v[i].id, id) == 0)
			return &ts->v[i];
	return NULL;
}

/* Gives t a new secret, written as 64 hex digits into secret. */
static void new_secret(struct token *t, char secret[65])
{
	ids_random_hex(secret, 32);
	sha256(secret, 64, t->sha256);
}

/* Answers a failed store write: 507 on a full disk, else 503; nothing
 * changed. */
static void reply_store_error(struct api_call *c, int rc, const char *what)
{
	struct fault f;

	fault_set(&f, rc == MDS_E_NOSPACE ? MDS_E_NOSPACE : MDS_E_DB, "",
		  "%s: %s; nothing changed", what, mds_strerror(rc));
	api_reply_fault(c, &f);
}

/* One token's write, for store_critical(): doc NULL deletes it. */
struct token_write {
	const char *id;
	const char *doc;
};

static int write_token(struct store *st, void *arg)
{
	const struct token_write *w = arg;

	return w->doc != NULL ? store_put(st, TOKENS_KIND, w->id, w->doc)
			      : store_delete(st, TOKENS_KIND, w->id);
}

/* Writes t to the store; answers and returns non-zero on failure. A
 * critical write (a rotation, which ends a leaked secret) may use the
 * store's space reserve on a full device. */
static int save(struct api_call *c, const struct token *t, bool critical)
{
	char *doc = token_doc(t);
	struct token_write w = { t->id, doc };
	struct store *st = c->api->tokens->store;
	int rc = critical ? store_critical(st, write_token, &w)
			  : write_token(st, &w);

	free(doc);
	if (rc != 0)
		reply_store_error(c, rc, "the token could not be stored");
	return rc;
}

/* Answers a token with its secret, the only time the secret is shown. */
static void reply_secret(struct api_call *c, int status,
			 const struct token *t, char secret[65])
{
	json_t *o = token_json(t);

	json_object_set_new(o, "token", json_string(secret));
	OPENSSL_cleanse(secret, 65);
	api_reply(c, status, o, NULL);
}

struct token_spec {
	char name[129];
	bool read_only;
};

static const struct field token_fields[] = {
	{ .name = "displayName", .type = FIELD_STRING,
	  FIELD_AT(struct token_spec, name), .min = 1, .max = 128,
	  .chars = FIELD_CHARS_NAME, .chars_desc = "A-Z a-z 0-9 _ -",
	  .doc = "a name to recognize the token by; default \"token\"" },
	{ .name = "readOnly", .type = FIELD_BOOL,
	  FIELD_AT(struct token_spec, read_only),
	  .doc = "true: the token may only read (every change answers 403); "
		 "default false" },
	FIELD_END
};

const struct field *api_token_fields(void)
{
	return token_fields;
}

static void tokens_create(struct api_call *c)
{
	struct tokens *ts = c->api->tokens;
	struct token_spec spec = { .name = "token" };
	struct token *t;
	struct fault f;
	char secret[65];

	if (fields_parse(token_fields, c->body, &spec, "", NULL, &f) != 0) {
		api_reply_fault(c, &f);
		return;
	}
	if (ts->n == TOKENS_MAX) {
		api_reply_error(c, 400, "LimitExceeded", NULL,
				"at most 256 tokens can be issued; revoke one "
				"first");
		return;
	}
	t = &ts->v[ts->n];
	memset(t, 0, sizeof(*t));
	ids_new(t->id, sizeof(t->id), "tok-");
	snprintf(t->name, sizeof(t->name), "%s", spec.name);
	t->read_only = spec.read_only;
	t->created_ms = ids_now_ms();
	new_secret(t, secret);
	if (save(c, t, false) != 0) {
		OPENSSL_cleanse(secret, sizeof(secret));
		return;
	}
	ts->n++;
	reply_secret(c, 201, t, secret);
}

static void tokens_list(struct api_call *c)
{
	struct tokens *ts = c->api->tokens;
	json_t *items = json_array();

	for (size_t i = 0; i < ts->n; i++)
		json_array_append_new(items, token_json(&ts->v[i]));
	api_reply(c, 200, json_pack("{s:o}", "items", items), NULL);
}

static void tokens_get(struct api_call *c)
{
	struct token *t = find(c->api->tokens, c->id);

	if (t == NULL)
		api_reply_error(c, 404, "NotFound", NULL, "no such token");
	else
		api_reply(c, 200, token_json(t), NULL);
}

/* POST /v1/tokens/{id}/rotate: a new secret; the old one stops working. */
static void tokens_rotate(struct api_call *c)
{
	struct token *t = find(c->api->tokens, c->id);
	struct token next;
	char secret[65];

	if (t == NULL) {
		api_reply_error(c, 404, "NotFound", NULL, "no such token");
		return;
	}
	next = *t;
	new_secret(&next, secret);
	next.rotated_ms = ids_now_ms();
	if (save(c, &next, true) != 0) {
		OPENSSL_cleanse(secret, sizeof(secret));
		return;
	}
	*t = next;
	c->api->tokens->generation++;
	reply_secret(c, 200, t, secret);
}

static void tokens_revoke(struct api_call *c)
{
	struct tokens *ts = c->api->tokens;
	struct token *t = find(ts, c->id);
	int rc;

	if (t == NULL) {
		api_reply_error(c, 404, "NotFound", NULL, "no such token");
		return;
	}
	/* Revoking must work on a full device too: the store's reserve. */
	rc = store_critical(ts->store, write_token,
			    &(struct token_write){ t->id, NULL });
	if (rc != 0) {
		reply_store_error(c, rc, "the token could not be revoked (it "
				  "still works)");
		return;
	}
	*t = ts->v[--ts->n];
	ts->generation++;
	http_respond(c->req, 204, "application/json", "", 0, NULL);
}

const struct api_route tokens_routes[] = {
	{ "GET", "/v1/tokens", tokens_list },
	{ "POST", "/v1/tokens", tokens_create },
	{ "GET", "/v1/tokens/*", tokens_get },
	{ "DELETE", "/v1/tokens/*", tokens_revoke },
	{ "POST", "/v1/tokens/*/rotate", tokens_rotate },
	{ NULL, NULL, NULL },
};
