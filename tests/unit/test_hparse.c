/* test_hparse.c - the HTTP parser wrapper: strict request heads, fed whole,
 * byte by byte, and pipelined. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/hparse.h"

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
static void test_url_agrees_with_http_parser(void **state)
{
	static const char alpha[] = "/?#a% \x7f\x80\t:@";
	const size_t na = sizeof(alpha) - 1;
	char url[8];

	(void)state;
	for (size_t len = 1; len <= 6; len++) {
		unsigned long count = 1;

		for (size_t i = 0; i < len; i++)
			count *= na;
		for (unsigned long n = 0; n < count; n++) {
			struct http_parser_url u;
			struct hparse_url p;
			unsigned long v = n;
			int want, got;

			for (size_t i = 0; i < len; i++, v /= na)
				url[i] = alpha[v % na];
			if (n % 3 != 0) /* mostly origin-form */
				url[0] = '/';
			url[len] = '\0';
			http_parser_url_init(&u);
			want = http_parser_parse_url(url, len, 0, &u) == 0 ? 0
									   : -1;
			got = hparse_url(url, len, &p);
			if (got != want)
				fail_msg("%s: %d, http_parser %d", url, got,
					 want);
			if (got != 0)
				continue;
			same_span(&p.path, &u, UF_PATH, url);
			same_span(&p.query, &u, UF_QUERY, url);
			same_span(&p.fragment, &u, UF_FRAGMENT, url);
			same_span(&p.host, &u, UF_HOST, url);
			same_span(&p.schema, &u, UF_SCHEMA, url);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
