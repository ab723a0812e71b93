/* test_jsonstr.c - the one JSON string escaper (util/jsonstr.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/jsonstr.h"

static void expect(const char *in, const char *want)
{
	struct buf b;

	buf_init(&b, 1024);
	assert_int_equal(jsonstr_escape(&b, in), 0);
	assert_string_equal(buf_str(&b), want);
	buf_free(&b);
}

static void escapes(void **state)
{
	(void)state;
	expect("", "");
	expect("plain text", "plain text");
	expect("a \"q\" \\ b", "a \\\"q\\\" \\\\ b");
	expect("l1\nl2\r\tx", "l1\\nl2\\r\\tx");
	expect("\x01\x1f", "\\u0001\\u001f");
	expect("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	       "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

/* Bytes that do not start valid UTF-8 (a lone continuation, a truncated
 * sequence, an overlong form, a surrogate) become U+FFFD each. */
static void invalid_utf8(void **state)
{
	(void)state;
	expect("a\x80z", "a\xef\xbf\xbdz");
	expect("\xc3", "\xef\xbf\xbd");
	expect("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd");
	expect("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

static void cap_is_kept(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(jsonstr_escape(&b, "\x01\x02"), MDS_E_LIMIT);
	assert_true(b.len <= 8);
	buf_free(&b);
}

static void plain(void **state)
{
	(void)state;
	assert_true(jsonstr_is_plain(""));
	assert_true(jsonstr_is_plain("deployment-1 ok"));
	assert_false(jsonstr_is_plain("a\"b"));
	assert_false(jsonstr_is_plain("a\\b"));
	assert_false(jsonstr_is_plain("a\nb"));
	assert_false(jsonstr_is_plain("caf\xc3\xa9"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(escapes),
		cmocka_unit_test(invalid_utf8),
		cmocka_unit_test(cap_is_kept),
		cmocka_unit_test(plain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
