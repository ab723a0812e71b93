/*
 * fuzz_mql.c - libFuzzer harness for the MQL parser.
 *
 * Each input is taken as query text (cut at the first NUL). A query that
 * parses is also evaluated, at one instant and over a short range, against
 * a small store with a few series, to exercise filters, grouping and the
 * statistics on whatever the parser accepted.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     -Isrc fuzz/fuzz_mql.c src/core/{mql,tsdb,tsdb_ring,tsdb_image}.c \
 *     src/util/{buf,err,xalloc}.c -lm -o fuzz_mql && ./fuzz_mql fuzz/corpus/mql
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mql.h"
#include "core/tsdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NS "ns"

static struct tsdb *small_store(void)
{
	static const char *const rids[] = { "md1", "md2", "x*y" };
	struct tsdb *db;

	if (tsdb_create(NULL, &db, NULL, 0) != 0)
		abort();
	for (size_t r = 0; r < 3; r++)
		for (int64_t t = 0; t < 120000; t += 7000) {
			struct tsdb_dim d[2] = { { "resourceId", rids[r] },
						 { "instanceId", "i1" } };

			tsdb_append(db, NS, "CpuUtilization", d, 1 + (r != 1),
				    t, (double)(t % 97) - 10, NULL, 0);
		}
	return db;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct mql_query *q = NULL;
	char diag[256];

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (mql_parse(text, &q, diag, sizeof(diag)) == 0) {
		struct tsdb *db = small_store();
		struct mql_result r;

		mql_result_init(&r);
		mql_eval(q, db, NS, 120000, &r);
		mql_eval_range(q, db, NS, 0, 120000, 30000, &r);
		mql_result_free(&r);
		tsdb_free(db);
		mql_free(q);
	} else if (memchr(diag, '\0', sizeof(diag)) == NULL) {
		abort(); /* the diagnostic must always be terminated */
	}
	free(text);
	return 0;
}
