/*
 * cli_request.c - the CLI's HTTP layer: libcurl's easy interface, one
 * request at a time, one handle reused so polling keeps its connection.
 * The only CLI file that includes curl.h; see cli_request() in cli.h.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli/cli.h"
#include "daemon/paths.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/xalloc.h"

/* A response body past this is refused rather than held in memory. */
#define CLI_MAX_RESPONSE (8u << 20)
/* The token file holds one short line; more is not a token. */
#define CLI_MAX_TOKEN 1024

struct sink {
	struct buf body;
	int too_big;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;

	if (buf_add(&s->body, data, size * nmemb) != 0) {
		s->too_big = 1;
		return 0; /* makes curl stop with CURLE_WRITE_ERROR */
	}
	return size * nmemb;
}

/* With no URL given, the daemon of the data directory is reached over its
 * Unix socket when it has one: the way in that no TCP client can take. */
static void resolve_socket(struct cli_ctx *ctx)
{
	char *dir = ctx->data_dir == NULL ? paths_default_data_dir() : NULL;
	char *path = paths_api_socket(ctx->data_dir != NULL ? ctx->data_dir
							    : dir);

	if (access(path, W_OK) == 0)
		ctx->socket_owned = path;
	else
		free(path);
	free(dir);
}

/* Sets ctx->url_owned from --url, $MDSCALE_URL or the default (then maybe
 * ctx->socket_owned too). */
static int resolve_url(struct cli_ctx *ctx)
{
	const char *u = ctx->url;
	size_t len;

	if (ctx->url_owned != NULL)
		return 0;
	if (u == NULL)
		u = getenv("MDSCALE_URL");
	if (u == NULL || *u == '\0') {
		u = CLI_DEFAULT_URL;
		resolve_socket(ctx);
	}
	if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) {
		mds_diag(ctx->diag, sizeof ctx->diag,
			"bad URL '%s': it must start with http:// or https://",
			u);
		return MDS_E_INVAL;
	}
	len = strlen(u);
	while (len > 0 && u[len - 1] == '/')
		len--;
	ctx->url_owned = xstrndup(u, len);
	return 0;
}

/*
 * Sets ctx->token from $MDSCALE_TOKEN or the token file, once. Not finding
 * one is no error here: the daemon answers 401, and ctx->token_note then
 * tells the user where the token was looked for.
 */
static void resolve_token(struct cli_ctx *ctx)
{
	char *dir = NULL, *path = NULL;
	char line[CLI_MAX_TOKEN + 1];
	const char *v;
	FILE *f = NULL;
	size_t n;

	if (ctx->token != NULL || ctx->token_tried)
		return;
	ctx->token_tried = 1;
	v = getenv("MDSCALE_TOKEN");
	if (v != NULL && *v != '\0') {
		ctx->token = v;
		return;
	}
	if (ctx->data_dir == NULL)
		dir = paths_default_data_dir();
	path = paths_token_file(ctx->data_dir != NULL ? ctx->data_dir : dir);
	f = fopen(path, "r");
	if (f == NULL) {
		ctx->token_note = xasprintf("cannot read the token file %s: %s",
			path, strerror(errno));
		goto out;
	}
	n = fread(line, 1, sizeof line - 1, f);
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		n--;
	if (n == 0 || n >= CLI_MAX_TOKEN) {
		ctx->token_note = xasprintf("the token file %s holds no token",
			path);
		goto out;
	}
	ctx->token_owned = xstrndup(line, n);
	ctx->token = ctx->token_owned;
out:
	if (f != NULL)
		fclose(f);
	free(path);
	free(dir);
}

/* A token goes into a header line: refuse anything but printable ASCII. */
static int check_token(struct cli_ctx *ctx, const char *token)
{
	const char *p;

	for (p = token; *p != '\0'; p++) {
		if (*p <= ' ' || *p > '~') {
			mds_diag(ctx->diag, sizeof ctx->diag,
				"the API token holds a blank or control character");
			return MDS_E_INVAL;
		}
	}
	return 0;
}

/* An https:// daemon with its own certificate authority: --cacert, else
 * $MDSCALE_CACERT; without either, libcurl's default trust store. */
static void set_cacert(struct cli_ctx *ctx, CURL *c)
{
	const char *f = ctx->cacert;

	if (f == NULL || *f == '\0')
		f = getenv("MDSCALE_CACERT");
	if (f != NULL && *f != '\0')
		curl_easy_setopt(c, CURLOPT_CAINFO, f);
}

/* What every request to the daemon sets: where, who asks, the headers,
 * the connect timeout and the error text's buffer. */
static void set_common(struct cli_ctx *ctx, CURL *c, const char *url,
	struct curl_slist *headers, char *errbuf)
{
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, ctx->socket_owned);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	set_cacert(ctx, c);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "mdscale/" MDS_VERSION);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	errbuf[0] = '\0';
}

/* Adds "Authorization: Bearer <token>" to *headers when a token can be
 * found; *auth gets the header line (the caller frees it). Returns 0 or
 * MDS_E_INVAL for a token that cannot go into a header. */
static int add_token(struct cli_ctx *ctx, struct curl_slist **headers,
	char **auth)
{
	int rc;

	resolve_token(ctx);
	if (ctx->token == NULL)
		return 0;
	rc = check_token(ctx, ctx->token);
	if (rc != 0)
		return rc;
	*auth = xasprintf("Authorization: Bearer %s", ctx->token);
	*headers = curl_slist_append(*headers, *auth);
	return 0;
}

/* Keeps the answer's opc-next-page header (a paged list's token) in
 * ctx->next_page. */
static void next_page(struct cli_ctx *ctx, CURL *c)
{
	struct curl_header *h;

	if (curl_easy_header(c, "opc-next-page", 0, CURLH_HEADER, -1, &h) ==
	    CURLHE_OK && h->value[0] != '\0')
		ctx->next_page = xstrdup(h->value);
}

int cli_request(struct cli_ctx *ctx, const char *method, const char *path,
	const json_t *body, long *status, json_t **json)
{
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *headers = NULL;
	struct sink sink;
	char *url = NULL, *payload = NULL, *auth = NULL;
	json_error_t jerr;
	CURLcode cc;
	CURL *c;
	int rc;

	*status = 0;
	*json = NULL;
	ctx->diag[0] = '\0';
	free(ctx->next_page);
	ctx->next_page = NULL;
	buf_init(&sink.body, CLI_MAX_RESPONSE);
	sink.too_big = 0;
	rc = resolve_url(ctx);
	if (rc != 0)
		goto out;
	if (ctx->curl == NULL)
		ctx->curl = curl_easy_init();
	c = ctx->curl;
	if (c == NULL) {
		mds_diag(ctx->diag, sizeof ctx->diag, "cannot initialize libcurl");
		rc = MDS_E_INTERNAL;
		goto out;
	}
	url = xasprintf("%s%s", ctx->url_owned, path);
	headers = curl_slist_append(headers, "Accept: application/json");
	rc = add_token(ctx, &headers, &auth);
	if (rc != 0)
		goto out;
	if (strcmp(method, "GET") != 0) {
		payload = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
		if (payload != NULL) {
			headers = curl_slist_append(headers,
				"Content-Type: application/json");
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
		}
	}
	if (headers == NULL)
		abort(); /* curl_slist_append fails only without memory */
	set_common(ctx, c, url, headers, errbuf);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		if (sink.too_big) {
			mds_diag(ctx->diag, sizeof ctx->diag,
				"the daemon's response is larger than %u bytes",
				CLI_MAX_RESPONSE);
			rc = MDS_E_LIMIT;
		} else if (cc == CURLE_URL_MALFORMAT) {
			mds_diag(ctx->diag, sizeof ctx->diag, "bad URL '%s'", url);
			rc = MDS_E_INVAL;
		} else {
			mds_diag(ctx->diag, sizeof ctx->diag, "%s",
				errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
			rc = MDS_E_UNAVAIL;
		}
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	next_page(ctx, c);
	if (sink.body.len > 0) {
		*json = json_loadb(sink.body.data, sink.body.len, 0, &jerr);
		if (*json == NULL && *status < 300) {
			mds_diag(ctx->diag, sizeof ctx->diag,
				"the daemon's response is not JSON: %s", jerr.text);
			rc = MDS_E_PARSE;
		}
	}
out:
	if (ctx->curl != NULL)
		curl_easy_reset(ctx->curl); /* it pointed at our buffers */
	curl_slist_free_all(headers);
	free(payload);
	free(auth);
	free(url);
	buf_free(&sink.body);
	return rc;
}

/* A streamed answer: complete lines go to the caller as they arrive; an
 * error status's body is collected instead. */
struct line_sink {
	CURL *curl;
	struct buf line;    /* the unended line so far */
	struct buf error;   /* the body of an error status */
	int is_error;       /* -1 until the status is known */
	int stopped;        /* on_line asked to stop */
	int (*on_line)(void *arg, const char *line, size_t len);
	void *arg;
};

static size_t on_stream(char *data, size_t size, size_t nmemb, void *arg)
{
	struct line_sink *s = arg;
	size_t n = size * nmemb, off = 0;

	if (s->is_error < 0) {
		long status = 0;

		curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
		s->is_error = status < 200 || status >= 300;
	}
	if (s->is_error)
		return buf_add(&s->error, data, n) == 0 ? n : 0;
	while (off < n) {
		char *nl = memchr(data + off, '\n', n - off);
		size_t seg = nl ? (size_t)(nl - (data + off)) : n - off;

		/* A line past the cap is cut where the cap is. */
		(void)buf_add(&s->line, data + off, seg);
		off += seg;
		if (nl == NULL)
			break;
		off++;
		if (s->on_line(s->arg, buf_str(&s->line), s->line.len) != 0) {
			s->stopped = 1;
			return 0;
		}
		buf_reset(&s->line);
	}
	return n;
}

int cli_request_stream(struct cli_ctx *ctx, const char *path,
	int (*on_line)(void *arg, const char *line, size_t len), void *arg,
	long *status, json_t **json)
{
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *headers = NULL;
	struct line_sink sink;
	char *url = NULL, *auth = NULL;
	CURLcode cc;
	CURL *c;
	int rc;

	*status = 0;
	*json = NULL;
	ctx->diag[0] = '\0';
	memset(&sink, 0, sizeof sink);
	buf_init(&sink.line, CLI_MAX_RESPONSE);
	buf_init(&sink.error, CLI_MAX_RESPONSE);
	sink.is_error = -1;
	sink.on_line = on_line;
	sink.arg = arg;
	rc = resolve_url(ctx);
	if (rc != 0)
		goto out;
	if (ctx->curl == NULL)
		ctx->curl = curl_easy_init();
	c = ctx->curl;
	if (c == NULL) {
		mds_diag(ctx->diag, sizeof ctx->diag, "cannot initialize libcurl");
		rc = MDS_E_INTERNAL;
		goto out;
	}
	sink.curl = c;
	url = xasprintf("%s%s", ctx->url_owned, path);
	headers = curl_slist_append(headers, "Accept: application/x-ndjson");
	rc = add_token(ctx, &headers, &auth);
	if (rc != 0)
		goto out;
	if (headers == NULL)
		abort(); /* curl_slist_append fails only without memory */
	set_common(ctx, c, url, headers, errbuf);
	curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	/* No overall timeout: a follower runs until it is stopped. */
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 0L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	if (cc != CURLE_OK && !sink.stopped && *status == 0) {
		if (cc == CURLE_URL_MALFORMAT) {
			mds_diag(ctx->diag, sizeof ctx->diag, "bad URL '%s'", url);
			rc = MDS_E_INVAL;
		} else {
			mds_diag(ctx->diag, sizeof ctx->diag, "%s",
				errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
			rc = MDS_E_UNAVAIL;
		}
		goto out;
	}
	if (cc != CURLE_OK && !sink.stopped && sink.is_error != 1) {
		/* The stream broke after it began: the daemon went away. */
		mds_diag(ctx->diag, sizeof ctx->diag, "%s",
			errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
		rc = MDS_E_UNAVAIL;
		goto out;
	}
	if (sink.is_error == 1 && sink.error.len > 0)
		*json = json_loadb(sink.error.data, sink.error.len, 0, NULL);
	else if (sink.is_error != 1 && sink.line.len > 0)
		on_line(arg, buf_str(&sink.line), sink.line.len);
out:
	if (ctx->curl != NULL)
		curl_easy_reset(ctx->curl); /* it pointed at our buffers */
	curl_slist_free_all(headers);
	free(auth);
	free(url);
	buf_free(&sink.line);
	buf_free(&sink.error);
	return rc;
}

void cli_request_cleanup(struct cli_ctx *ctx)
{
	if (ctx->curl != NULL)
		curl_easy_cleanup(ctx->curl);
	ctx->curl = NULL;
	free(ctx->url_owned);
	free(ctx->socket_owned);
	ctx->socket_owned = NULL;
	free(ctx->token_owned);
	free(ctx->token_note);
	free(ctx->next_page);
	ctx->next_page = NULL;
	ctx->url_owned = NULL;
	ctx->token_owned = NULL;
	ctx->token_note = NULL;
}

char *cli_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = xreallocarray(NULL, n + 1, 3);
	char *p = out;

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' ||
		    ch == '~') {
			*p++ = (char)ch;
		} else {
			*p++ = '%';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		}
	}
	*p = '\0';
	return out;
}
