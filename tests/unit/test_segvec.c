/* test_segvec.c - the segmented array (util/segvec.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "util/segvec.h"

struct rec {
	uint64_t a;
	uint32_t b;
	char c[12];
};

/* Elements come zeroed, keep their content and their address as the array
 * grows over many segments, and are found by index. */
static void elements_stay_put(void **state)
{
	enum { N = 100000 };
	static struct rec *addr[N];
	struct segvec v;

	(void)state;
	segvec_init(&v, sizeof(struct rec));
	for (uint32_t i = 0; i < N; i++) {
		struct rec *r = segvec_push(&v);
		static const struct rec zero;

		assert_memory_equal(r, &zero, sizeof(zero));
		r->a = (uint64_t)i * 3;
		r->b = i;
		addr[i] = r;
	}
	assert_int_equal(v.n, N);
	for (uint32_t i = 0; i < N; i++) {
		struct rec *r = segvec_at(&v, i);

		assert_ptr_equal(r, addr[i]);
		assert_int_equal(r->a, (uint64_t)i * 3);
		assert_int_equal(r->b, i);
	}
	/* Unused room: less than one segment, plus the directory. */
	assert_true(segvec_bytes(&v) < N * sizeof(struct rec) +
					   SEGVEC_SEG_BYTES +
					   v.segcap * sizeof(void *));
	assert_true(segvec_bytes(&v) >= N * sizeof(struct rec));
	segvec_free(&v);
	assert_int_equal(v.n, 0);
	assert_int_equal(segvec_bytes(&v), 0);
	/* Ready again after segvec_free(). */
	*(struct rec *)segvec_push(&v) = (struct rec){ .b = 7 };
	assert_int_equal(((struct rec *)segvec_at(&v, 0))->b, 7);
	segvec_free(&v);
	segvec_free(NULL);
}

/* The extremes of the element size: one byte, and a whole segment. */
static void element_sizes(void **state)
{
	struct segvec small, big;

	(void)state;
	segvec_init(&small, 1);
	segvec_init(&big, SEGVEC_SEG_BYTES);
	for (int i = 0; i < 70000; i++)
		*(unsigned char *)segvec_push(&small) = (unsigned char)i;
	for (int i = 0; i < 70000; i++)
		assert_int_equal(*(unsigned char *)segvec_at(&small, i),
				 (unsigned char)i);
	for (int i = 0; i < 3; i++)
		memset(segvec_push(&big), 'a' + i, SEGVEC_SEG_BYTES);
	for (int i = 0; i < 3; i++) {
		const unsigned char *p = segvec_at(&big, i);

		assert_int_equal(p[0], 'a' + i);
		assert_int_equal(p[SEGVEC_SEG_BYTES - 1], 'a' + i);
	}
	assert_int_equal(big.nseg, 3);
	segvec_free(&small);
	segvec_free(&big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(elements_stay_put),
		cmocka_unit_test(element_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
