/*
 * test_logstore.c - the structured log's files, in a temporary folder:
 * rotation keeps the size bound, retention deletes old rotated files, a
 * failing disk counts dropped lines, queries filter, followers follow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "logging/logstore.h"
#include "util/err.h"

struct fixture {
	char dir[64];
	struct logstore *ls;
};

static int open_store(struct fixture *fx, uint64_t max_bytes,
		      uint32_t max_files, uint32_t days)
{
	struct logstore_opts o = {
		.dir = fx->dir, .max_file_bytes = max_bytes,
		.max_files = max_files, .retention_days = days,
	};
	char diag[256];

	return logstore_open(&o, &fx->ls, diag, sizeof(diag));
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/mdscale-logstore-XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[128];

	logstore_close(fx->ls);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		return -1;
	free(fx);
	return 0;
}

static void append(struct logstore *ls, int64_t t, enum log_level level,
		   const char *source, const struct log_ids *ids,
		   const char *msg)
{
	struct log_record rec = {
		.time_ms = t, .level = level, .source = source,
		.message = msg, .ids = ids,
	};

	logstore_append(ls, &rec);
}

static int64_t file_size(const struct fixture *fx, const char *suffix)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/mdscale.log%s", fx->dir, suffix);
	return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static void query(const struct fixture *fx, const struct logstore_filter *f,
		  struct logstore_result *res)
{
	assert_int_equal(logstore_query(fx->dir, 5, f, NULL, res), 0);
}

static void test_rotation_keeps_the_bound(void **state)
{
	struct fixture *fx = *state;
	struct logstore_filter f;
	struct logstore_result res;
	const int64_t t0 = 1700000000000LL;
	char msg[128];

	assert_int_equal(open_store(fx, 4096, 3, 7), 0);
	for (int i = 0; i < 500; i++) {
		snprintf(msg, sizeof(msg), "line %04d of some length to fill "
			 "the files quickly", i);
		append(fx->ls, t0 + i, LOG_INFO, "test", NULL, msg);
	}
	/* The current file and .1 to .3; nothing past max_files. */
	assert_true(file_size(fx, "") > 0);
	for (int k = 1; k <= 3; k++) {
		char suffix[8];

		snprintf(suffix, sizeof(suffix), ".%d", k);
		assert_true(file_size(fx, suffix) > 0);
		assert_true(file_size(fx, suffix) <= 4096);
	}
	assert_int_equal(file_size(fx, ".4"), -1);
	assert_true(file_size(fx, "") <= 4096);

	/* What is kept reads back in order, the newest last. */
	logstore_filter_init(&f);
	f.limit = LOGSTORE_LIMIT_MAX;
	query(fx, &f, &res);
	assert_true(res.count > 80 && res.count < 500);
	assert_int_equal(count_lines(buf_str(&res.lines)), res.count);
	assert_non_null(strstr(buf_str(&res.lines), "line 0499"));
	assert_null(strstr(buf_str(&res.lines), "line 0000"));
	assert_true(strstr(buf_str(&res.lines), "line 0498") <
		    strstr(buf_str(&res.lines), "line 0499"));
	assert_false(res.truncated);
	logstore_result_free(&res);

	/* limit keeps the newest. */
	f.limit = 3;
	query(fx, &f, &res);
	assert_int_equal(res.count, 3);
	assert_true(res.truncated);
	assert_non_null(strstr(buf_str(&res.lines), "line 0497"));
	assert_non_null(strstr(buf_str(&res.lines), "line 0499"));
	assert_null(strstr(buf_str(&res.lines), "line 0496"));
	logstore_result_free(&res);

	/* A reopened store appends to the same file. */
	logstore_close(fx->ls);
	fx->ls = NULL;
	assert_int_equal(open_store(fx, 4096, 3, 7), 0);
	append(fx->ls, t0 + 1000, LOG_INFO, "test", NULL, "after reopening");
	f.limit = 1;
	query(fx, &f, &res);
	assert_non_null(strstr(buf_str(&res.lines), "after reopening"));
	logstore_result_free(&res);
}

static void set_age(const struct fixture *fx, const char *suffix, int days)
{
	char path[128];
	struct timeval tv[2];

	snprintf(path, sizeof(path), "%s/mdscale.log%s", fx->dir, suffix);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= (time_t)days * 86400;
	tv[1] = tv[0];
	assert_int_equal(utimes(path, tv), 0);
}

static void test_retention_deletes_old_rotated_files(void **state)
{
	struct fixture *fx = *state;
	char path[128];
	FILE *f;

	assert_int_equal(open_store(fx, 1024, 5, 7), 0);
	for (int i = 0; i < 100; i++)
		append(fx->ls, 1700000000000LL + i, LOG_INFO, "test", NULL,
		       "filler line for the retention test");
	assert_true(file_size(fx, ".4") > 0);
	set_age(fx, ".3", 8);
	set_age(fx, ".4", 30);
	set_age(fx, ".2", 6);
	/* A file past max_files (left from a larger setting) goes too. */
	snprintf(path, sizeof(path), "%s/mdscale.log.9", fx->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	/* So does nothing else in the folder. */
	snprintf(path, sizeof(path), "%s/other.txt", fx->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	set_age(fx, "", 40); /* the current file is never deleted */

	assert_int_equal(logstore_maintain(fx->ls, 1000LL * time(NULL)), 3);
	assert_true(file_size(fx, ".1") > 0);
	assert_true(file_size(fx, ".2") > 0);
	assert_int_equal(file_size(fx, ".3"), -1);
	assert_int_equal(file_size(fx, ".4"), -1);
	assert_int_equal(file_size(fx, ".9"), -1);
	assert_true(file_size(fx, "") > 0);
	assert_int_equal(access(path, F_OK), 0);
	/* Retention 0 keeps any age. */
	logstore_close(fx->ls);
	fx->ls = NULL;
	assert_int_equal(open_store(fx, 1024, 5, 0), 0);
	set_age(fx, ".2", 400);
	assert_int_equal(logstore_maintain(fx->ls, 1000LL * time(NULL)), 0);
	assert_true(file_size(fx, ".2") > 0);
}

/* A disk that refuses writes (here: a file size limit, which fails a write
 * like a full disk does) drops lines, counts them, and says so in the next
 * line written; a line cut short is ended and skipped by readers. */
static void test_failed_writes_are_counted(void **state)
{
	struct fixture *fx = *state;
	struct logstore_filter f;
	struct logstore_result res;
	struct rlimit old, lim;
	char msg[200];

	assert_int_equal(open_store(fx, 1 << 20, 2, 7), 0);
	append(fx->ls, 1700000000000LL, LOG_INFO, "test", NULL, "before");
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)file_size(fx, "") + 150;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (int i = 0; i < 10; i++) {
		snprintf(msg, sizeof(msg), "refused %d", i);
		append(fx->ls, 1700000000001LL + i, LOG_INFO, "test", NULL,
		       msg);
	}
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_true(logstore_dropped_total(fx->ls) >= 9);
	append(fx->ls, 1700000000100LL, LOG_INFO, "test", NULL, "after");

	logstore_filter_init(&f);
	query(fx, &f, &res);
	/* "before", maybe one line that fit, and "after" with the count. */
	assert_non_null(strstr(buf_str(&res.lines), "\"message\":\"before\""));
	assert_non_null(strstr(buf_str(&res.lines), "\"message\":\"after\""));
	snprintf(msg, sizeof(msg), "\"dropped\":%llu}",
		 (unsigned long long)logstore_dropped_total(fx->ls));
	assert_non_null(strstr(buf_str(&res.lines), msg));
	assert_true(res.count >= 2 && res.count <= 3);
	logstore_result_free(&res);
}

static void test_queries_filter(void **state)
{
	struct fixture *fx = *state;
	struct logstore_filter f;
	struct logstore_result res;
	struct logstore_mark mark;
	const int64_t t0 = 1700000000000LL;

	assert_int_equal(open_store(fx, 1 << 20, 2, 7), 0);
	append(fx->ls, t0, LOG_INFO, "deploy",
	       LOG_IDS(.deployment_id = "md-a", .instance_id = "mi-1"),
	       "instance started");
	append(fx->ls, t0 + 1000, LOG_WARN, "deploy",
	       LOG_IDS(.deployment_id = "md-b"), "instance failed \"quoted\"");
	append(fx->ls, t0 + 2000, LOG_INFO, "instance",
	       LOG_IDS(.deployment_id = "md-a", .instance_id = "mi-1",
		       .stream = "stderr"),
	       "Traceback: tab\there");
	append(fx->ls, t0 + 3000, LOG_ERROR, "fn",
	       LOG_IDS(.function = "scale"),
	       "function scale failed");
	append(fx->ls, t0 + 4000, LOG_DEBUG, "gateway", NULL, "debug line");

	logstore_filter_init(&f);
	f.ids.deployment_id = "md-a";
	query(fx, &f, &res);
	assert_int_equal(res.count, 2);
	logstore_result_free(&res);

	f.ids.stream = "stderr";
	query(fx, &f, &res);
	assert_int_equal(res.count, 1);
	assert_non_null(strstr(buf_str(&res.lines), "tab\\there"));
	logstore_result_free(&res);

	logstore_filter_init(&f);
	f.level = LOG_WARN;
	query(fx, &f, &res);
	assert_int_equal(res.count, 2); /* warn and error */
	logstore_result_free(&res);

	logstore_filter_init(&f);
	f.text = "\"quoted\""; /* escaped in the file */
	query(fx, &f, &res);
	assert_int_equal(res.count, 1);
	logstore_result_free(&res);

	f.text = "tab\there";
	query(fx, &f, &res);
	assert_int_equal(res.count, 1);
	logstore_result_free(&res);

	logstore_filter_init(&f);
	f.since_ms = t0 + 1000;
	f.until_ms = t0 + 3000;
	query(fx, &f, &res);
	assert_int_equal(res.count, 3);
	logstore_result_free(&res);

	logstore_filter_init(&f);
	f.source = "fn";
	f.ids.function = "scale";
	query(fx, &f, &res);
	assert_int_equal(res.count, 1);
	logstore_result_free(&res);

	/* A mark stops the reading where the log ended then. */
	logstore_mark(fx->ls, &mark);
	append(fx->ls, t0 + 5000, LOG_INFO, "deploy", NULL, "after the mark");
	logstore_filter_init(&f);
	assert_int_equal(logstore_query(fx->dir, 2, &f, &mark, &res), 0);
	assert_int_equal(res.count, 5);
	assert_null(strstr(buf_str(&res.lines), "after the mark"));
	logstore_result_free(&res);

	f.limit = 0;
	assert_int_equal(logstore_query(fx->dir, 2, &f, NULL, &res),
			 MDS_E_INVAL);
	logstore_result_free(&res);
}

static void test_long_messages_are_cut(void **state)
{
	struct fixture *fx = *state;
	struct logstore_filter f;
	struct logstore_result res;
	char *big = malloc(LOGSTORE_MESSAGE_MAX * 2 + 1);

	memset(big, 'x', LOGSTORE_MESSAGE_MAX * 2);
	big[LOGSTORE_MESSAGE_MAX * 2] = '\0';
	assert_int_equal(open_store(fx, 1 << 20, 2, 7), 0);
	append(fx->ls, 1700000000000LL, LOG_INFO, "test", NULL, big);
	free(big);
	logstore_filter_init(&f);
	query(fx, &f, &res);
	assert_int_equal(res.count, 1);
	assert_non_null(strstr(buf_str(&res.lines), "x [cut]\""));
	assert_true(res.lines.len < LOGSTORE_MESSAGE_MAX + 200);
	logstore_result_free(&res);
}

struct seen {
	struct logstore *ls;
	struct logstore_follower *self;
	int n;
	char last[256];
};

static void on_follow(void *arg, const struct log_record *rec,
		      const char *line, size_t len)
{
	struct seen *s = arg;

	assert_true(len > 0 && line[len - 1] == '\n');
	snprintf(s->last, sizeof(s->last), "%s", rec->message);
	if (++s->n == 2) {
		logstore_unfollow(s->ls, s->self);
		s->self = NULL;
	}
}

static void test_followers_get_new_lines(void **state)
{
	struct fixture *fx = *state;
	struct seen a = { 0 }, b = { 0 };

	assert_int_equal(open_store(fx, 1 << 20, 2, 7), 0);
	append(fx->ls, 1, LOG_INFO, "test", NULL, "before");
	a.ls = b.ls = fx->ls;
	a.self = logstore_follow(fx->ls, on_follow, &a);
	b.self = logstore_follow(fx->ls, on_follow, &b);
	assert_non_null(a.self);
	append(fx->ls, 2, LOG_INFO, "test", NULL, "one");
	assert_int_equal(a.n, 1);
	assert_string_equal(a.last, "one");
	append(fx->ls, 3, LOG_INFO, "test", NULL, "two");
	append(fx->ls, 4, LOG_INFO, "test", NULL, "three");
	/* Each unfollowed itself after two lines. */
	assert_int_equal(a.n, 2);
	assert_int_equal(b.n, 2);
	assert_string_equal(b.last, "two");
	assert_null(a.self);
	for (int i = 0; i < LOGSTORE_FOLLOWERS_MAX; i++)
		assert_non_null(logstore_follow(fx->ls, on_follow, &a));
	assert_null(logstore_follow(fx->ls, on_follow, &a));
	/* logstore_close() frees the followers left. */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rotation_keeps_the_bound,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_retention_deletes_old_rotated_files, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_failed_writes_are_counted,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_queries_filter, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_long_messages_are_cut,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_followers_get_new_lines,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
