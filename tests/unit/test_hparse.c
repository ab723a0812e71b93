/* test_hparse.c - the HTTP parser wrapper: strict request heads, fed whole,
 * byte by byte, and pipelined; the response fast path against http_parser
 * (fuzz/hparse_diff.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/hparse.h"

#include "../../fuzz/hparse_diff.h"

struct seen {
	int messages;
	int fields;
	char body[256];
	size_t body_len;
	bool pause;
};

static int on_field(struct hparse *h, const char *at, size_t len)
{
	struct seen *s = h->data;

	(void)at;
	(void)len;
	s->fields++;
	return 0;
}

static int on_body(struct hparse *h, const char *at, size_t len)
{
	struct seen *s = h->data;

	assert_true(s->body_len + len < sizeof(s->body));
	memcpy(s->body + s->body_len, at, len);
	s->body_len += len;
	return 0;
}

static int on_complete(struct hparse *h)
{
	struct seen *s = h->data;

	s->messages++;
	if (s->pause)
		hparse_pause(h, true);
	return 0;
}

static const struct hparse_settings settings = {
	.on_header_field = on_field,
	.on_body = on_body,
	.on_message_complete = on_complete,
};

/* Feeds text in pieces of step bytes (0: whole); returns the error after
 * the last piece, resuming after each pause. */
static enum hparse_error feed(struct seen *s, const char *text, size_t step)
{
	struct hparse h;
	size_t len = strlen(text), off = 0;
	enum hparse_error err = HPARSE_OK;

	hparse_init(&h, HPARSE_REQUEST, &settings, s);
	while (off < len) {
		size_t n = step == 0 || step > len - off ? len - off : step;
		size_t used = hparse_execute(&h, text + off, n);

		err = hparse_error(&h);
		off += used;
		if (err == HPARSE_PAUSED) {
			hparse_pause(&h, false);
			err = HPARSE_OK;
			continue;
		}
		if (err != HPARSE_OK)
			return err;
		assert_int_equal(used, n);
	}
	return err;
}

static const char pipelined[] =
	"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
	"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
	"\r\nPOST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	"3\r\nabc\r\n0\r\n\r\n";

static void test_pipelined_in_any_pieces(void **state)
{
	(void)state;
	for (size_t step = 0; step < 40; step++) {
		for (int pause = 0; pause < 2; pause++) {
			struct seen s = { .pause = pause != 0 };

			assert_int_equal(feed(&s, pipelined, step), HPARSE_OK);
			assert_int_equal(s.messages, 3);
			assert_true(s.fields >= 5);
			assert_int_equal(s.body_len, 8);
			assert_memory_equal(s.body, "helloabc", 8);
		}
	}
}

static void test_strict_refusals(void **state)
{
	static const struct {
		const char *text;
		enum hparse_error err;
	} cases[] = {
		{ "GET / HTTP/1.1\r\nHost : x\r\n\r\n", HPARSE_E_SYNTAX },
		{ "GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", HPARSE_E_SYNTAX },
		{ "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", HPARSE_E_SYNTAX },
		{ "GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", HPARSE_E_SYNTAX },
		{ "GET / HTTP/1.1\r\nA\"b: c\r\n\r\n", HPARSE_E_SYNTAX },
		/* Found by fuzz_http_request: a bare CR ended a line for the
		 * parser but not for the scanner, and trailer names were not
		 * checked. */
		{ "GET / HTTP/1.1\r\nHost:\rX y: z\r\n\r\n", HPARSE_E_SYNTAX },
		{ "GET / HTTP/1.1\r\nA: b\r\r\n\r\n", HPARSE_E_SYNTAX },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "0\r\nTr v: x\r\n\r\n", HPARSE_E_SYNTAX },
		/* The second request of a pipeline is scanned too. */
		{ "GET / HTTP/1.1\r\nA: b\r\n\r\nGET / HTTP/1.1\r\nA : b\r\n\r\n",
		  HPARSE_E_SYNTAX },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t step = 0; step < 4; step++) {
			struct seen s = { 0 };

			assert_int_equal(feed(&s, cases[i].text, step),
					 cases[i].err);
		}
	}
}

static void test_field_count_cap(void **state)
{
	char text[8192];
	size_t n = 0;
	struct seen s = { 0 };

	(void)state;
	n += (size_t)snprintf(text + n, sizeof(text) - n, "GET / HTTP/1.1\r\n");
	for (int i = 0; i < HPARSE_FIELDS_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "X-%d: v\r\n", i);
	snprintf(text + n, sizeof(text) - n, "\r\n");
	assert_int_equal(feed(&s, text, 0), HPARSE_OK);
	assert_int_equal(s.messages, 1);
	snprintf(text + n, sizeof(text) - n, "X-last: v\r\n\r\n");
	memset(&s, 0, sizeof(s));
	assert_int_equal(feed(&s, text, 7), HPARSE_E_TOO_LARGE);
	assert_int_equal(s.messages, 0);
}

static void test_url(void **state)
{
	const char *u = "http://h.example:8080/p/q?x=1#f";
	struct hparse_url p;

	(void)state;
	assert_int_equal(hparse_url(u, strlen(u), &p), 0);
	assert_true(p.schema.set && p.host.set && p.path.set && p.query.set);
	assert_int_equal(p.port, 8080);
	assert_memory_equal(u + p.host.off, "h.example", p.host.len);
	assert_memory_equal(u + p.path.off, "/p/q", p.path.len);
	assert_memory_equal(u + p.query.off, "x=1", p.query.len);
	assert_int_equal(hparse_url("/only?a", 7, &p), 0);
	assert_false(p.host.set);
	assert_int_equal(hparse_url("no spaces allowed", 17, &p), -1);
}

/* Compares one part as hparse_url() gives it with http_parser's. */
static void same_span(const struct hparse_span *sp,
		      const struct http_parser_url *u,
		      enum http_parser_url_fields f, const char *url)
{
	bool set = (u->field_set & (1 << f)) != 0;

	if (sp->set != set)
		fail_msg("%s: part %d set %d, http_parser %d", url, (int)f,
			 sp->set, set);
	if (set && (sp->off != u->field_data[f].off ||
		    sp->len != u->field_data[f].len))
		fail_msg("%s: part %d at %zu+%zu, http_parser %u+%u", url,
			 (int)f, sp->off, sp->len, u->field_data[f].off,
			 u->field_data[f].len);
}

/* Every target of up to 6 characters over an alphabet of delimiters, URL
 * characters and refused ones splits as http_parser_parse_url() splits it
 * (hparse_url() splits the common origin form by itself). */
/* Compares hparse_url() with http_parser on url (len bytes). */
static void same_url(const char *url, size_t len)
{
	struct http_parser_url u;
	struct hparse_url p;
	int want, got;

	http_parser_url_init(&u);
	want = http_parser_parse_url(url, len, 0, &u) == 0 ? 0 : -1;
	got = hparse_url(url, len, &p);
	if (got != want)
		fail_msg("%.*s: %d, http_parser %d", (int)len, url, got, want);
	if (got != 0)
		return;
	same_span(&p.path, &u, UF_PATH, url);
	same_span(&p.query, &u, UF_QUERY, url);
	same_span(&p.fragment, &u, UF_FRAGMENT, url);
	same_span(&p.host, &u, UF_HOST, url);
	same_span(&p.schema, &u, UF_SCHEMA, url);
}

static void test_url_agrees_with_http_parser(void **state)
{
	static const char alpha[] = "/?#a% \x7f\x80\t:@";
	const size_t na = sizeof(alpha) - 1;
	char url[8], longer[32];

	(void)state;
	for (size_t len = 1; len <= 6; len++) {
		unsigned long count = 1;

		for (size_t i = 0; i < len; i++)
			count *= na;
		for (unsigned long n = 0; n < count; n++) {
			unsigned long v = n;

			for (size_t i = 0; i < len; i++, v /= na)
				url[i] = alpha[v % na];
			if (n % 3 != 0) /* mostly origin-form */
				url[0] = '/';
			url[len] = '\0';
			same_url(url, len);
			if (len > 4 || url[0] != '/')
				continue;
			/* Longer targets, read eight bytes at a time: the
			 * bytes at the start, across two words, at the end. */
			snprintf(longer, sizeof(longer), "%sabcdefghijk", url);
			same_url(longer, strlen(longer));
			snprintf(longer, sizeof(longer), "/abcde%sfghijk",
				 url + 1);
			same_url(longer, strlen(longer));
			snprintf(longer, sizeof(longer), "/abcdefghijk%s",
				 url + 1);
			same_url(longer, strlen(longer));
		}
	}
}

/* Responses: the usual ones the fast path reads, and near misses. */
static const char *const responses[] = {
	/* mdscale-bench-backend's */
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	"Connection: keep-alive\r\nContent-Length: 33\r\n\r\n"
	"{\"prediction\":42,\"model\":\"bench\"}",
	"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
	"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 3\r\n"
	"\r\nabc",
	"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
	"Content-Length:\t\t5\r\nX-A: b\tc\r\n\r\nhello",
	/* two, pipelined, and a third the parser reads */
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab"
	"HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nc"
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	"2\r\nde\r\n0\r\n\r\n",
	/* then a response the fast path takes after the parser's */
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	"1\r\nx\r\n0\r\n\r\n"
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ny",
	/* left to the parser */
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
	"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc"
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
	"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3 \r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 1\r\n\r\nz",
	"HTTP/1.1 200 OK\nContent-Length: 1\n\nz",
	"HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nz",
	"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nz",
	"HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\nz",
	"HTTP/1.1 204 No Content\r\nContent-Length: 1\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 1\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1"
	"\r\n\r\nz",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nrest",
	"HTTP/1.1 200 OK\r\nUpgrade: x\r\nContent-Length: 1\r\n\r\nz",
	"HTTP/1.1 200 OK\r\nProxy-Connection: close\r\nContent-Length: 1\r\n"
	"\r\nz",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive, x\r\nContent-Length: 1\r\n"
	"\r\nz",
	"HTTP/1.1 200 OK\r\nX:\r\nContent-Length: 1\r\n\r\nz",
	"HTTP/1.1 200 OK\r\n\r\nuntil the end",
	"HTTP/2.0 200 OK\r\nContent-Length: 1\r\n\r\nz",
	"\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
	/* http_parser takes a name that begins with Transfer-Encoding for
	 * one (found by fuzz_http_response) */
	"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n"
	"Transfer-EncodingFer-Encoding: chunked\r\n\r\n5\r\nx",
	"HTTP/1.1 200 OK\r\nTransfer-Encodingx: a\r\nContent-Length: 1\r\n"
	"\r\nz",
};

static void same_paths(const char *text, size_t len, size_t step,
		       unsigned policy)
{
	const char *diff = hparse_diff(text, len, step, policy, NULL);

	if (diff != NULL)
		fail_msg("%s differ, step %zu, policy %u: %.*s", diff, step,
			 policy, (int)len, text);
}

static void test_response_fast_path_agrees(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(responses) / sizeof(responses[0]);
	     i++) {
		const char *text = responses[i];
		size_t len = strlen(text);

		for (size_t step = 0; step <= len; step++) {
			for (unsigned policy = 0; policy < DIFF_POLICIES;
			     policy++)
				same_paths(text, len, step, policy);
		}
	}
}

/* Every byte of the usual responses changed to one that matters to the
 * head's syntax: the fast path reads it as the parser does, or leaves it
 * to the parser. */
static void test_response_fast_path_agrees_mutated(void **state)
{
	static const char bytes[] = { ' ', '\t', '\r', '\n', ':', '0', '9',
				      'a', 'Z', ',', '\0', 0x7f, (char)0x80,
				      (char)0xff, '"', '1', '2' };
	char text[512];

	(void)state;
	for (size_t i = 0; i < 6; i++) {
		size_t len = strlen(responses[i]);

		assert_true(len < sizeof(text));
		for (size_t at = 0; at < len; at++) {
			for (size_t k = 0; k < sizeof(bytes); k++) {
				memcpy(text, responses[i], len);
				text[at] = bytes[k];
				for (unsigned policy = 0;
				     policy < DIFF_POLICIES; policy += 5) {
					same_paths(text, len, 0, policy);
					same_paths(text, len, 1, policy);
					same_paths(text, len, at + 1, policy);
				}
			}
		}
	}
}

/* The fast path does read the usual responses (the tests above compare
 * it with something), and leaves the others. Each message pauses when
 * complete, as the gateway's do: a message that follows one of the
 * parser's in the same buffer is the parser's too. */
static void test_response_fast_path_taken(void **state)
{
	static const struct {
		size_t i;
		unsigned fast;
	} cases[] = {
		{ 0, 1 }, { 1, 1 }, { 2, 1 }, { 3, 1 }, { 4, 2 }, { 5, 1 },
		{ 6, 0 }, { 7, 0 }, { 8, 0 }, { 10, 0 }, { 11, 0 }, { 14, 0 },
		{ 15, 0 }, { 19, 0 }, { 20, 0 }, { 23, 0 }, { 25, 0 },
		{ 29, 0 },
	};

	(void)state;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const char *text = responses[cases[k].i];
		unsigned fast;

		assert_null(hparse_diff(text, strlen(text), 0,
					DIFF_PAUSE_COMPLETE, &fast));
		if (fast != cases[k].fast)
			fail_msg("%u fast, want %u: %s", fast, cases[k].fast,
				 text);
	}
}

/* Requests: the usual ones the fast path reads, and near misses. */
static const char *const requests[] = {
	/* wrk's, mdscale load's */
	"GET /bench/predict HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
	"POST /m/predict?x=1#f HTTP/1.1\r\nHost: h\r\n"
	"Content-Type: application/json\r\nContent-Length: 5\r\n\r\nhello",
	"HEAD /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"PUT /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
	"DELETE /b HTTP/1.1\r\nX: y\r\n\r\n"
	"PATCH /c HTTP/1.1\r\nContent-Length: 2\r\n\r\nab"
	"OPTIONS /d HTTP/1.1\r\n\r\n",
	/* then one the parser reads, and one the fast path reads */
	"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	"1\r\nx\r\n0\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
	/* left to the strict scan and the parser */
	"GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
	"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
	"GET /a HTTP/1.1\r\nHost : x\r\n\r\n",
	"GET /a HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
	"GET /a HTTP/1.1\r\nA: b\r\r\n\r\n",
	"GET /a HTTP/1.1\r\nA\"b: c\r\n\r\n",
	"POST /a HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"POST /a HTTP/1.1\r\nContent-Length: 3\r\n"
	"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST /a HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
	"0\r\n\r\n",
	"POST /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
	"GET /a HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
	"CONNECT h:443 HTTP/1.1\r\n\r\n",
	"GET http://h/a HTTP/1.1\r\n\r\n",
	"GET  /a HTTP/1.1\r\n\r\n",
	"GET /a HTTP/1.1 \r\n\r\n",
	"GET /a\r\n\r\n",
	"get /a HTTP/1.1\r\n\r\n",
	"GET /a HTTP/1.1\nHost: x\n\n",
	"\r\nGET /a HTTP/1.1\r\n\r\n",
	"GET /a HTTP/2.0\r\n\r\n",
	"GET /a HTTP/1.1\r\nX:\r\n\r\n",
	"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",
	"POST /a HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encodings: x\r\n"
	"\r\nz",
};

static void same_req_paths(const char *text, size_t len, size_t step,
			   unsigned policy)
{
	const char *diff = hparse_diff_req(text, len, step, policy, NULL);

	if (diff != NULL)
		fail_msg("%s differ, step %zu, policy %u: %.*s", diff, step,
			 policy, (int)len, text);
}

static void test_request_fast_path_agrees(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		const char *text = requests[i];
		size_t len = strlen(text);

		for (size_t step = 0; step <= len; step++) {
			for (unsigned policy = 0; policy < DIFF_POLICIES;
			     policy++)
				same_req_paths(text, len, step, policy);
		}
	}
}

static void test_request_fast_path_agrees_mutated(void **state)
{
	static const char bytes[] = { ' ', '\t', '\r', '\n', ':', '0', '9',
				      'a', 'Z', ',', '\0', 0x7f, (char)0x80,
				      (char)0xff, '"', '?', '#', '/' };
	char text[512];

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		size_t len = strlen(requests[i]);

		assert_true(len < sizeof(text));
		for (size_t at = 0; at < len; at++) {
			for (size_t k = 0; k < sizeof(bytes); k++) {
				memcpy(text, requests[i], len);
				text[at] = bytes[k];
				for (unsigned policy = 0;
				     policy < DIFF_POLICIES; policy += 5) {
					same_req_paths(text, len, 0, policy);
					same_req_paths(text, len, 1, policy);
					same_req_paths(text, len, at + 1,
						       policy);
				}
			}
		}
	}
}

static void test_request_fast_path_taken(void **state)
{
	static const struct {
		size_t i;
		unsigned fast;
	} cases[] = {
		{ 0, 1 }, { 1, 1 }, { 2, 1 }, { 3, 4 }, { 4, 1 }, { 5, 0 },
		{ 6, 0 }, { 7, 0 }, { 8, 0 }, { 11, 0 }, { 12, 0 }, { 15, 0 },
		{ 16, 0 }, { 17, 0 }, { 18, 0 },
	};

	(void)state;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const char *text = requests[cases[k].i];
		unsigned fast;

		assert_null(hparse_diff_req(text, strlen(text), 0,
					    DIFF_PAUSE_COMPLETE, &fast));
		if (fast != cases[k].fast)
			fail_msg("%u fast, want %u: %s", fast, cases[k].fast,
				 text);
	}
}

/* What a head's callbacks, or hparse_whole(), told: "first|name=value|..."
 * per message. */
struct heads {
	char text[4096];
	size_t len;
	unsigned whole;  /* heads given whole */
	int last;        /* 1: a name's part was last, 2: a value's */
};

static void heads_add(struct heads *hs, const char *at, size_t len)
{
	assert_true(hs->len + len < sizeof(hs->text));
	memcpy(hs->text + hs->len, at, len);
	hs->len += len;
	hs->text[hs->len] = '\0';
}

static int hs_first(struct hparse *h, const char *at, size_t len)
{
	heads_add(h->data, at, len);
	return 0;
}

static int hs_part(struct hparse *h, const char *at, size_t len, int part)
{
	struct heads *hs = h->data;

	if (hs->last != part)
		heads_add(hs, part == 1 ? "|" : "=", 1);
	hs->last = part;
	heads_add(hs, at, len);
	return 0;
}

static int hs_field(struct hparse *h, const char *at, size_t len)
{
	return hs_part(h, at, len, 1);
}

static int hs_value(struct hparse *h, const char *at, size_t len)
{
	return hs_part(h, at, len, 2);
}

static int hs_begin(struct hparse *h)
{
	struct heads *hs = h->data;

	heads_add(hs, "\n", 1);
	hs->last = 0;
	return 0;
}

static int hs_headers(struct hparse *h)
{
	struct heads *hs = h->data;
	const struct hparse_whole *wh = hparse_whole(h);

	if (wh != NULL && h->settings->whole_heads) {
		hs->whole++;
		assert_int_equal(wh->data[wh->len - 1], '\n');
		assert_int_equal(wh->data[wh->len - 2], '\r');
		heads_add(hs, wh->data + wh->first_off, wh->first_len);
		for (unsigned k = 0; k < wh->n; k++) {
			const struct hparse_field *x = &wh->f[k];
			size_t next = k + 1 < wh->n ? wh->f[k + 1].name
						    : wh->len - 2;

			/* each line ends in CRLF right before the next */
			assert_int_equal((size_t)x->val + x->vlen + 2, next);
			heads_add(hs, "|", 1);
			heads_add(hs, wh->data + x->name, x->nlen);
			heads_add(hs, "=", 1);
			heads_add(hs, wh->data + x->val, x->vlen);
		}
	}
	heads_add(hs, "|", 1);
	return 0;
}

static const struct hparse_settings hs_settings[2] = {
	{ .on_message_begin = hs_begin, .on_url = hs_first,
	  .on_status = hs_first, .on_header_field = hs_field,
	  .on_header_value = hs_value, .on_headers_complete = hs_headers },
	{ .whole_heads = true, .on_message_begin = hs_begin,
	  .on_url = hs_first, .on_status = hs_first,
	  .on_header_field = hs_field, .on_header_value = hs_value,
	  .on_headers_complete = hs_headers },
};

static void heads_of(enum hparse_type type, const char *text, size_t step,
		     int whole, struct heads *hs)
{
	struct hparse h;
	size_t len = strlen(text), off = 0;

	memset(hs, 0, sizeof(*hs));
	hparse_init(&h, type, &hs_settings[whole], hs);
	while (off < len) {
		size_t n = step == 0 || step > len - off ? len - off : step;
		size_t used = hparse_execute(&h, text + off, n);

		off += used;
		if (hparse_error(&h) == HPARSE_PAUSED) {
			hparse_pause(&h, false);
			continue;
		}
		if (hparse_error(&h) != HPARSE_OK || used < n)
			break;
	}
}

/* With whole_heads, a head the fast path read comes whole, with no
 * callback for its parts, and tells what the callbacks would have. */
static void test_whole_heads(void **state)
{
	(void)state;
	for (int type = 0; type < 2; type++) {
		const char *const *texts = type ? responses : requests;
		size_t n = type ? sizeof(responses) / sizeof(responses[0])
				: sizeof(requests) / sizeof(requests[0]);

		for (size_t i = 0; i < n; i++) {
			size_t len = strlen(texts[i]);

			for (size_t step = 0; step <= len; step++) {
				struct heads a, b;

				heads_of(type ? HPARSE_RESPONSE
					      : HPARSE_REQUEST,
					 texts[i], step, 0, &a);
				heads_of(type ? HPARSE_RESPONSE
					      : HPARSE_REQUEST,
					 texts[i], step, 1, &b);
				assert_int_equal(a.whole, 0);
				if (strcmp(a.text, b.text) != 0)
					fail_msg("%s\n!=\n%s", a.text,
						 b.text);
				if (step == 0 && i == 0)
					assert_int_equal(b.whole, 1);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_in_any_pieces),
		cmocka_unit_test(test_strict_refusals),
		cmocka_unit_test(test_field_count_cap),
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_url_agrees_with_http_parser),
		cmocka_unit_test(test_response_fast_path_agrees),
		cmocka_unit_test(test_response_fast_path_agrees_mutated),
		cmocka_unit_test(test_response_fast_path_taken),
		cmocka_unit_test(test_request_fast_path_agrees),
		cmocka_unit_test(test_request_fast_path_agrees_mutated),
		cmocka_unit_test(test_request_fast_path_taken),
		cmocka_unit_test(test_whole_heads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
