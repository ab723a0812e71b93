/*
 * test_k8s_quantity.c - Kubernetes resource quantities, and the base64
 * decoder that kubeconfig data and JWTs go through.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "k8s/k8s_quantity.h"
#include "util/base64.h"
#include "util/err.h"

static int64_t milli(const char *q)
{
	int64_t v = -1;

	assert_int_equal(k8s_quantity_milli(q, &v), 0);
	return v;
}

static void test_quantities(void **state)
{
	int64_t v;

	(void)state;
	assert_int_equal(milli("250m"), 250);
	assert_int_equal(milli("2"), 2000);
	assert_int_equal(milli("0.5"), 500);
	assert_int_equal(milli("1.5"), 1500);
	assert_int_equal(milli("125000000n"), 125);
	assert_int_equal(milli("1u"), 1); /* rounded up, as Kubernetes does */
	assert_int_equal(milli("1Ki"), 1024000);
	assert_int_equal(milli("512Mi"), 512LL * 1024 * 1024 * 1000);
	assert_int_equal(milli("1G"), 1000000000000LL);
	assert_int_equal(milli("1e3"), 1000000);
	assert_int_equal(milli("+3k"), 3000000);
	assert_int_equal(milli("2P"), 2000000000000000000LL);
	assert_int_equal(k8s_quantity_milli("1E", &v), MDS_E_LIMIT);
	assert_int_equal(k8s_quantity_milli("", &v), MDS_E_PARSE);
	assert_int_equal(k8s_quantity_milli("m", &v), MDS_E_PARSE);
	assert_int_equal(k8s_quantity_milli("1.5X", &v), MDS_E_PARSE);
	assert_int_equal(k8s_quantity_milli("-1", &v), MDS_E_PARSE);
	assert_int_equal(k8s_quantity_milli("1e", &v), MDS_E_PARSE);
	assert_int_equal(k8s_quantity_milli(NULL, &v), MDS_E_PARSE);
	assert_int_equal(k8s_quantity_milli("9Ei", &v), MDS_E_LIMIT);
}

static void test_formatting(void **state)
{
	char b[32];

	(void)state;
	k8s_quantity_cpu(250, b, sizeof(b));
	assert_string_equal(b, "250m");
	k8s_quantity_cpu(2000, b, sizeof(b));
	assert_string_equal(b, "2");
	k8s_quantity_mem(512u << 20, b, sizeof(b));
	assert_string_equal(b, "512Mi");
	k8s_quantity_mem(1000, b, sizeof(b));
	assert_string_equal(b, "1000");
}

static void test_base64(void **state)
{
	char *out = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(base64_decode("aGVsbG8=", 8, &out, &n), 0);
	assert_int_equal(n, 5);
	assert_string_equal(out, "hello");
	free(out);
	/* base64url without padding, and line breaks as in PEM data */
	assert_int_equal(base64_decode("-_8", 3, &out, &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "\xfb\xff", 2);
	free(out);
	assert_int_equal(base64_decode("aGVs\nbG8", 8, &out, &n), 0);
	assert_string_equal(out, "hello");
	free(out);
	assert_int_equal(base64_decode("a", 1, &out, &n), MDS_E_INVAL);
	assert_int_equal(base64_decode("a*bc", 4, &out, &n), MDS_E_INVAL);
	assert_int_equal(base64_decode("ab=c", 4, &out, &n), MDS_E_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quantities),
		cmocka_unit_test(test_formatting),
		cmocka_unit_test(test_base64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
