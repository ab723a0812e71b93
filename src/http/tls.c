/* tls.c - TLS over memory BIOs for the servers; see tls.h. */
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <errno.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/tls.h"
#include "util/err.h"
#include "util/xalloc.h"

#define READ_CHUNK 16384 /* plaintext read per SSL_read() */

struct tls_ctx {
	pthread_mutex_t lock; /* guards ssl against a reload */
	SSL_CTX *ssl;
};

struct tls_conn {
	SSL *ssl;
	BIO *in;  /* ciphertext from the socket */
	BIO *out; /* ciphertext for the socket */
};

/* The first queued OpenSSL error as text. */
static void ssl_why(char *buf, size_t size)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, size, "unknown error");
	else
		ERR_error_string_n(e, buf, size);
	ERR_clear_error();
}

/* A new SSL_CTX with the pair loaded, or NULL with diag set. */
static SSL_CTX *load(const char *cert_file, const char *key_file,
		     int *rc, char *diag, size_t diagsz)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char why[256];
	FILE *f;

	*rc = MDS_E_INVAL;
	if (ctx == NULL) {
		ssl_why(why, sizeof(why));
		mds_diag(diag, diagsz, "TLS: %s", why);
		*rc = MDS_E_INTERNAL;
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	/* Say which file cannot be read before OpenSSL's words for it. */
	f = fopen(cert_file, "r");
	if (f == NULL) {
		mds_diag(diag, diagsz, "%s: cannot read the certificate: %s",
			 cert_file, strerror(errno));
		*rc = MDS_E_IO;
		goto fail;
	}
	fclose(f);
	f = fopen(key_file, "r");
	if (f == NULL) {
		mds_diag(diag, diagsz, "%s: cannot read the key: %s", key_file,
			 strerror(errno));
		*rc = MDS_E_IO;
		goto fail;
	}
	fclose(f);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		ssl_why(why, sizeof(why));
		mds_diag(diag, diagsz, "%s: not a PEM certificate (%s)",
			 cert_file, why);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) !=
	    1) {
		bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) ==
				X509_R_KEY_VALUES_MISMATCH;

		ssl_why(why, sizeof(why));
		if (mismatch)
			mds_diag(diag, diagsz, "%s: the key does not match the "
				 "certificate in %s", key_file, cert_file);
		else
			mds_diag(diag, diagsz, "%s: not a PEM private key (%s)",
				 key_file, why);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ssl_why(why, sizeof(why));
		mds_diag(diag, diagsz, "%s: the key does not match the "
			 "certificate in %s (%s)", key_file, cert_file, why);
		goto fail;
	}
	*rc = 0;
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

int tls_ctx_new(const char *cert_file, const char *key_file,
		struct tls_ctx **out, char *diag, size_t diagsz)
{
	struct tls_ctx *ctx;
	SSL_CTX *ssl;
	int rc;

	*out = NULL;
	ssl = load(cert_file, key_file, &rc, diag, diagsz);
	if (ssl == NULL)
		return rc;
	ctx = xcalloc(1, sizeof(*ctx));
	pthread_mutex_init(&ctx->lock, NULL);
	ctx->ssl = ssl;
	*out = ctx;
	return 0;
}

int tls_ctx_reload(struct tls_ctx *ctx, const char *cert_file,
		   const char *key_file, char *diag, size_t diagsz)
{
	SSL_CTX *ssl, *old;
	int rc;

	ssl = load(cert_file, key_file, &rc, diag, diagsz);
	if (ssl == NULL)
		return rc;
	pthread_mutex_lock(&ctx->lock);
	old = ctx->ssl;
	ctx->ssl = ssl;
	pthread_mutex_unlock(&ctx->lock);
	/* Open connections hold their own reference to the old one. */
	SSL_CTX_free(old);
	return 0;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	SSL_CTX_free(ctx->ssl);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx)
{
	struct tls_conn *c = xcalloc(1, sizeof(*c));

	pthread_mutex_lock(&ctx->lock);
	c->ssl = SSL_new(ctx->ssl);
	pthread_mutex_unlock(&ctx->lock);
	if (c->ssl == NULL)
		abort(); /* out of memory */
	c->in = BIO_new(BIO_s_mem());
	c->out = BIO_new(BIO_s_mem());
	if (c->in == NULL || c->out == NULL)
		abort();
	/* An empty read BIO means "wait for more", not end of file. */
	BIO_set_mem_eof_return(c->in, -1);
	BIO_set_mem_eof_return(c->out, -1);
	SSL_set_bio(c->ssl, c->in, c->out); /* the SSL owns both now */
	SSL_set_accept_state(c->ssl);
	return c;
}

void tls_conn_free(struct tls_conn *c)
{
	if (c == NULL)
		return;
	SSL_free(c->ssl);
	free(c);
}

int tls_conn_push(struct tls_conn *c, const char *data, size_t n)
{
	while (n > 0) {
		size_t w = 0;

		if (BIO_write_ex(c->in, data, n, &w) != 1 || w == 0)
			return MDS_E_IO;
		data += w;
		n -= w;
	}
	return 0;
}

int tls_conn_pull(struct tls_conn *c, char *out, size_t cap, size_t *got)
{
	int r;

	*got = 0;
	if (cap == 0)
		return 0;
	r = SSL_read_ex(c->ssl, out, cap, got);
	if (r == 1)
		return 0;
	*got = 0;
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return 1;
	default:
		ERR_clear_error();
		return MDS_E_IO;
	}
}

int tls_conn_feed(struct tls_conn *c, const char *data, size_t n,
		  struct buf *plain)
{
	char chunk[READ_CHUNK];
	size_t got;
	int rc = tls_conn_push(c, data, n);

	while (rc == 0) {
		rc = tls_conn_pull(c, chunk, sizeof(chunk), &got);
		if (rc != 0 || got == 0)
			break;
		if (buf_add(plain, chunk, got) != 0)
			return MDS_E_LIMIT;
	}
	return rc;
}

int tls_conn_write(struct tls_conn *c, const char *data, size_t n)
{
	while (n > 0) {
		size_t w = 0;

		if (SSL_write_ex(c->ssl, data, n, &w) != 1) {
			ERR_clear_error();
			return MDS_E_IO;
		}
		data += w;
		n -= w;
	}
	return 0;
}

size_t tls_conn_take_out(struct tls_conn *c, char **out)
{
	size_t n = BIO_ctrl_pending(c->out), got = 0;

	*out = NULL;
	if (n == 0)
		return 0;
	*out = xmalloc(n);
	if (BIO_read_ex(c->out, *out, n, &got) != 1 || got == 0) {
		free(*out);
		*out = NULL;
		return 0;
	}
	return got;
}
