/* logging.c - the daemon's logging module; see logging.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/gateway.h"
#include "logging/logging.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/xalloc.h"

#define TICK_MS 250
#define MAINTAIN_TICKS 240   /* once a minute */
#define SAVE_TICKS 4         /* offsets saved at most every second */
#define PARTIAL_TICKS 4      /* an unended line waits 1 s, then goes */
#define QUIET_TICKS 240      /* a file silent for a minute... */
#define QUIET_EVERY 16       /* ...is looked at every 4 s only */
#define TAILS_MAX 1024       /* instances followed at once */
#define READ_SIZE (64 * 1024)
/* Bytes read per tick, over all files and per file: bounds the time one
 * tick holds the loop (the rest waits for the next tick). */
#define TICK_BUDGET (512 * 1024)
#define FILE_BUDGET (256 * 1024)
/* Further behind than this many max file sizes, skip to the end. */
#define LAG_FILES 8
#define STATE_FILE "tail.state"
#define STATE_MAX (1 << 20)
#define ID_MAX 64

static const char *const stream_names[2] = { "stdout", "stderr" };
static const char *const stream_ext[2] = { ".out.log", ".err.log" };

struct tail_stream {
	uint64_t offset;    /* bytes read (and logged) */
	uint64_t last_size; /* the size seen at the last tick */
	int partial_ticks;  /* ticks an unended line sat unchanged */
};

/* One instance followed. */
struct tail {
	char inst[ID_MAX];
	char dep[ID_MAX];
	struct tail_stream s[2];
	uint64_t active_tick; /* the last tick it had output, for eviction */
	bool registered;      /* told by deployments (else: from the state
				 file, waiting to be claimed) */
};

struct logging {
	uv_loop_t *loop;
	uv_timer_t timer;
	struct logstore *store;
	char *logs_dir;
	char *inst_dir;
	char *state_path;
	uint64_t max_file_bytes;
	uint32_t max_files;
	uint32_t retention_days;
	struct tail *tails;
	size_t ntails;
	char *rbuf;          /* READ_SIZE bytes */
	char line[LOGGING_LINE_MAX + 1];
	uint64_t tick;
	unsigned queries;
	bool state_dirty;
	bool closing;
	bool timer_closed;
	void (*done)(void *);
	void *done_arg;
};

struct query {
	uv_work_t work;
	struct logging *lg;
	const struct logstore_filter *f;
	struct logstore_mark stop;
	bool has_stop;
	struct logstore_result res;
	int rc;
	logging_query_fn *done;
	void *arg;
};

struct logstore *logging_store(struct logging *lg)
{
	return lg->store;
}

/* ---- instance output ---- */

static char *stream_path(const struct logging *lg, const struct tail *t,
			 int which)
{
	return xasprintf("%s/%s%s", lg->inst_dir, t->inst, stream_ext[which]);
}

static struct tail *tail_find(struct logging *lg, const char *inst)
{
	for (size_t i = 0; i < lg->ntails; i++)
		if (strcmp(lg->tails[i].inst, inst) == 0)
			return &lg->tails[i];
	return NULL;
}

static void tail_remove(struct logging *lg, size_t i)
{
	lg->tails[i] = lg->tails[--lg->ntails];
	lg->state_dirty = true;
}

/* Adds an entry, evicting the one quiet the longest when full. */
static struct tail *tail_add(struct logging *lg, const char *inst)
{
	struct tail *t;

	if (lg->ntails == TAILS_MAX) {
		size_t old = 0;

		for (size_t i = 1; i < lg->ntails; i++)
			if (lg->tails[i].active_tick <
			    lg->tails[old].active_tick)
				old = i;
		tail_remove(lg, old);
	}
	t = &lg->tails[lg->ntails++];
	memset(t, 0, sizeof(*t));
	snprintf(t->inst, sizeof(t->inst), "%s", inst);
	t->active_tick = lg->tick;
	lg->state_dirty = true;
	return t;
}

void logging_instance(void *arg, const char *deployment_id,
		      const char *instance_id)
{
	struct logging *lg = arg;
	struct tail *t;

	if (strlen(instance_id) >= ID_MAX || strchr(instance_id, '/') ||
	    instance_id[0] == '\0' || instance_id[0] == '.')
		return;
	/* An instance the state file does not know is read from the start
	 * of its files: a new one's are empty, and an old one's were cut
	 * back to logMaxFileMB, so at worst that much is logged twice, where
	 * starting at the end could lose what it wrote while the daemon was
	 * down before its offsets were first saved. */
	t = tail_find(lg, instance_id);
	if (t == NULL)
		t = tail_add(lg, instance_id);
	snprintf(t->dep, sizeof(t->dep), "%s", deployment_id);
	t->registered = true;
	t->active_tick = lg->tick;
}

/* Puts one line of output in the log. */
static void emit(struct logging *lg, const struct tail *t, int which,
		 const char *p, size_t n)
{
	struct log_record rec;

	while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n'))
		n--;
	if (n == 0)
		return;
	if (n > LOGGING_LINE_MAX)
		n = LOGGING_LINE_MAX;
	memcpy(lg->line, p, n);
	lg->line[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (lg->line[i] == '\0')
			lg->line[i] = ' ';
	rec = (struct log_record){
		.time_ms = ids_now_ms(), .level = LOG_INFO,
		.source = "instance", .message = lg->line,
		.ids = LOG_IDS(.deployment_id = t->dep,
			       .instance_id = t->inst,
			       .stream = stream_names[which]),
	};
	logstore_append(lg->store, &rec);
}

/* Says in the log that output was skipped. */
static void note_skipped(struct logging *lg, const struct tail *t, int which,
			 uint64_t bytes)
{
	struct log_record rec;
	char msg[160];

	snprintf(msg, sizeof(msg), "instance output came faster than it "
		 "could be logged: %llu bytes skipped",
		 (unsigned long long)bytes);
	rec = (struct log_record){
		.time_ms = ids_now_ms(), .level = LOG_WARN,
		.source = "logging", .message = msg,
		.ids = LOG_IDS(.deployment_id = t->dep,
			       .instance_id = t->inst,
			       .stream = stream_names[which]),
	};
	logstore_append(lg->store, &rec);
}

/*
 * Logs the complete lines in [p, p+n) (pieces of LOGGING_LINE_MAX bytes
 * for longer ones); with flush, an unended rest too. Returns the bytes
 * consumed.
 */
static size_t emit_lines(struct logging *lg, const struct tail *t,
			 int which, const char *p, size_t n, bool flush)
{
	size_t used = 0;

	while (used < n) {
		const char *start = p + used;
		size_t left = n - used;
		const char *nl = memchr(start, '\n', left);
		size_t len = nl ? (size_t)(nl - start) : left;

		if (len > LOGGING_LINE_MAX) {
			emit(lg, t, which, start, LOGGING_LINE_MAX);
			used += LOGGING_LINE_MAX;
			continue;
		}
		if (nl == NULL && !flush)
			break;
		emit(lg, t, which, start, len);
		used += len + (nl != NULL);
	}
	return used;
}

/* Reads what one file gained since the last tick. */
static void tail_stream(struct logging *lg, struct tail *t, int which,
			size_t *budget)
{
	struct tail_stream *s = &t->s[which];
	char *path = stream_path(lg, t, which);
	uint64_t size, lag = lg->max_file_bytes * LAG_FILES;
	size_t file_budget = FILE_BUDGET;
	struct stat st;
	int fd = -1;

	if (stat(path, &st) != 0)
		goto out;
	size = (uint64_t)st.st_size;
	if (size < s->offset) /* emptied or replaced */
		s->offset = 0;
	if (size - s->offset > lag) {
		note_skipped(lg, t, which, size - s->offset);
		s->offset = size;
		lg->state_dirty = true;
	}
	if (size > s->offset)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto check;
	while (s->offset < size && *budget > 0 && file_budget > 0) {
		size_t want = size - s->offset < READ_SIZE
				      ? (size_t)(size - s->offset)
				      : READ_SIZE;
		ssize_t n;
		size_t used;
		bool flush;

		n = pread(fd, lg->rbuf, want, (off_t)s->offset);
		if (n <= 0)
			break;
		/* Only the file's last line may be unended on purpose. */
		flush = s->partial_ticks >= PARTIAL_TICKS &&
			s->offset + (uint64_t)n == size;
		used = emit_lines(lg, t, which, lg->rbuf, (size_t)n, flush);
		if (used == 0)
			break; /* an unended line: wait for the rest */
		s->offset += used;
		s->partial_ticks = 0;
		t->active_tick = lg->tick;
		lg->state_dirty = true;
		*budget -= used < *budget ? used : *budget;
		file_budget -= used < file_budget ? used : file_budget;
	}
check:
	/* An unended line that stops growing is logged after a while. */
	if (s->offset < size && size == s->last_size)
		s->partial_ticks++;
	else
		s->partial_ticks = 0;
	s->last_size = size;
	/* Read to the end and past the bound: empty it. The instance writes
	 * with O_APPEND, so its next line lands at the new start; checking
	 * the size just before keeps the window for a lost line tiny. */
	if (s->offset == size && size >= lg->max_file_bytes &&
	    stat(path, &st) == 0 && (uint64_t)st.st_size == size &&
	    truncate(path, 0) == 0) {
		s->offset = 0;
		s->last_size = 0;
		lg->state_dirty = true;
	}
	if (fd >= 0)
		close(fd);
out:
	free(path);
}

/* Reads every followed file (all: even quiet ones this tick). */
static void tail_all(struct logging *lg, size_t budget, bool all)
{
	for (size_t i = 0; i < lg->ntails; i++) {
		struct tail *t = &lg->tails[i];

		if (!t->registered)
			continue;
		if (!all && lg->tick - t->active_tick > QUIET_TICKS &&
		    (lg->tick + i) % QUIET_EVERY != 0)
			continue;
		for (int k = 0; k < 2; k++)
			tail_stream(lg, t, k, &budget);
	}
}

/* ---- offsets across restarts ---- */

static void state_load(struct logging *lg)
{
	FILE *f = fopen(lg->state_path, "r");
	char line[256];
	size_t total = 0;

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL && total < STATE_MAX &&
	       lg->ntails < TAILS_MAX) {
		char id[ID_MAX], *p, *end;
		unsigned long long off[2];
		size_t n = strcspn(line, " ");
		struct tail *t;

		total += strlen(line);
		if (n == 0 || n >= sizeof(id) || line[n] != ' ')
			continue;
		memcpy(id, line, n);
		id[n] = '\0';
		p = line + n + 1;
		errno = 0;
		off[0] = strtoull(p, &end, 10);
		if (end == p || *end != ' ')
			continue;
		p = end + 1;
		off[1] = strtoull(p, &end, 10);
		if (end == p || (*end != '\n' && *end != '\0') || errno != 0 ||
		    tail_find(lg, id) != NULL || strchr(id, '/') != NULL)
			continue;
		t = tail_add(lg, id);
		for (int k = 0; k < 2; k++) {
			t->s[k].offset = off[k];
			t->s[k].last_size = off[k];
		}
	}
	fclose(f);
	lg->state_dirty = false;
}

static void state_save(struct logging *lg)
{
	char *tmp = xasprintf("%s.tmp", lg->state_path);
	FILE *f = fopen(tmp, "w");
	bool ok;

	if (f == NULL) {
		free(tmp);
		return;
	}
	for (size_t i = 0; i < lg->ntails; i++)
		fprintf(f, "%s %" PRIu64 " %" PRIu64 "\n", lg->tails[i].inst,
			lg->tails[i].s[0].offset, lg->tails[i].s[1].offset);
	ok = fflush(f) == 0 && !ferror(f);
	ok = fclose(f) == 0 && ok;
	if (ok && rename(tmp, lg->state_path) == 0)
		lg->state_dirty = false;
	else
		unlink(tmp);
	free(tmp);
}

/* ---- retention ---- */

/* Returns the instance id of an output file name, or false. */
static bool output_file_id(const char *name, char *id, size_t idsz)
{
	static const char *const exts[] = { ".out.log", ".err.log", ".log" };
	size_t n = strlen(name);

	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		size_t e = strlen(exts[i]);

		if (n > e && strcmp(name + n - e, exts[i]) == 0 &&
		    n - e < idsz) {
			memcpy(id, name, n - e);
			id[n - e] = '\0';
			return true;
		}
	}
	return false;
}

/* Deletes output files of instances no longer followed, once older than
 * the retention. */
static void prune_outputs(struct logging *lg, int64_t now_ms)
{
	int64_t horizon = now_ms - (int64_t)lg->retention_days * 86400000LL;
	struct dirent *e;
	DIR *d;

	if (lg->retention_days == 0)
		return;
	d = opendir(lg->inst_dir);
	if (d == NULL)
		return;
	for (e = readdir(d); e != NULL; e = readdir(d)) {
		char id[ID_MAX], *path;
		struct stat st;

		if (e->d_name[0] == '.' ||
		    !output_file_id(e->d_name, id, sizeof(id)) ||
		    tail_find(lg, id) != NULL)
			continue;
		path = xasprintf("%s/%s", lg->inst_dir, e->d_name);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    (int64_t)st.st_mtime * 1000 < horizon)
			unlink(path);
		free(path);
	}
	closedir(d);
}

/* ---- the timer ---- */

static void on_tick(uv_timer_t *timer)
{
	struct logging *lg = timer->data;

	lg->tick++;
	if (lg->tick == 1) {
		/* Deployments have claimed their instances by now; the rest
		 * of the state file is history. */
		for (size_t i = lg->ntails; i-- > 0;)
			if (!lg->tails[i].registered)
				tail_remove(lg, i);
	}
	tail_all(lg, TICK_BUDGET, false);
	if (lg->state_dirty && lg->tick % SAVE_TICKS == 0)
		state_save(lg);
	if (lg->tick % MAINTAIN_TICKS == 0) {
		int64_t now = ids_now_ms();

		logstore_maintain(lg->store, now);
		prune_outputs(lg, now);
	}
}

/* ---- the access log ---- */

void logging_access(void *arg, const struct gateway_access *a)
{
	struct logging *lg = arg;
	struct log_record rec;
	char msg[700];

	if (a->status > 0)
		snprintf(msg, sizeof(msg), "%s %s %d %.3f ms", a->method,
			 a->path, a->status, (double)a->latency_us / 1000.0);
	else
		snprintf(msg, sizeof(msg), "%s %s - %.3f ms (the client went "
			 "away)", a->method, a->path,
			 (double)a->latency_us / 1000.0);
	rec = (struct log_record){
		.time_ms = ids_now_ms(), .level = LOG_INFO,
		.source = "access", .message = msg,
		.ids = LOG_IDS(.deployment_id = a->deployment_id,
			       .instance_id = a->instance_id),
	};
	logstore_append(lg->store, &rec);
}

/* ---- queries ---- */

static void query_work(uv_work_t *w)
{
	struct query *q = w->data;

	q->rc = logstore_query(q->lg->logs_dir, q->lg->max_files, q->f,
			       q->has_stop ? &q->stop : NULL, &q->res);
}

static void maybe_free(struct logging *lg);

static void query_done(uv_work_t *w, int status)
{
	struct query *q = w->data;
	struct logging *lg = q->lg;

	if (status != 0 && q->rc == 0)
		q->rc = MDS_E_UNAVAIL;
	q->done(q->arg, q->rc, &q->res);
	logstore_result_free(&q->res);
	free(q);
	lg->queries--;
	maybe_free(lg);
}

int logging_query(struct logging *lg, const struct logstore_filter *f,
		  const struct logstore_mark *stop, logging_query_fn *done,
		  void *arg)
{
	struct query *q;
	int rc;

	if (lg->closing)
		return MDS_E_UNAVAIL;
	if (lg->queries >= LOGGING_QUERIES_MAX)
		return MDS_E_LIMIT;
	q = xcalloc(1, sizeof(*q));
	q->lg = lg;
	q->f = f;
	if (stop != NULL) {
		q->stop = *stop;
		q->has_stop = true;
	}
	q->done = done;
	q->arg = arg;
	q->work.data = q;
	rc = uv_queue_work(lg->loop, &q->work, query_work, query_done);
	if (rc != 0) {
		free(q);
		return MDS_E_UNAVAIL;
	}
	lg->queries++;
	return 0;
}

/* ---- opening and closing ---- */

int logging_open(const struct logging_env *env, struct logging **out,
		 char *diag, size_t diagsz)
{
	const struct config *cfg = env->config;
	struct logging *lg = xcalloc(1, sizeof(*lg));
	struct logstore_opts o;
	int rc;

	lg->loop = env->loop;
	lg->logs_dir = xasprintf("%s/logs", env->data_dir);
	lg->inst_dir = xasprintf("%s/instances", env->data_dir);
	lg->state_path = xasprintf("%s/%s", lg->logs_dir, STATE_FILE);
	lg->max_file_bytes = (uint64_t)cfg->log_max_file_mb << 20;
	lg->max_files = cfg->log_max_files;
	lg->retention_days = cfg->log_retention_days;
	o = (struct logstore_opts){
		.dir = lg->logs_dir, .max_file_bytes = lg->max_file_bytes,
		.max_files = lg->max_files,
		.retention_days = lg->retention_days,
	};
	rc = logstore_open(&o, &lg->store, diag, diagsz);
	if (rc != 0) {
		free(lg->logs_dir);
		free(lg->inst_dir);
		free(lg->state_path);
		free(lg);
		*out = NULL;
		return rc;
	}
	lg->tails = xcalloc(TAILS_MAX, sizeof(*lg->tails));
	lg->rbuf = xmalloc(READ_SIZE);
	state_load(lg);
	uv_timer_init(lg->loop, &lg->timer);
	lg->timer.data = lg;
	uv_timer_start(&lg->timer, on_tick, TICK_MS, TICK_MS);
	log_set_sink(logstore_sink, lg->store);
	*out = lg;
	return 0;
}

static void maybe_free(struct logging *lg)
{
	void (*done)(void *);
	void *arg;

	if (!lg->closing || !lg->timer_closed || lg->queries > 0)
		return;
	log_set_sink(NULL, NULL);
	logstore_close(lg->store);
	done = lg->done;
	arg = lg->done_arg;
	free(lg->tails);
	free(lg->rbuf);
	free(lg->logs_dir);
	free(lg->inst_dir);
	free(lg->state_path);
	free(lg);
	if (done != NULL)
		done(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct logging *lg = h->data;

	lg->timer_closed = true;
	maybe_free(lg);
}

void logging_close(struct logging *lg, void (*done)(void *arg), void *arg)
{
	if (lg == NULL || lg->closing)
		return;
	lg->closing = true;
	lg->done = done;
	lg->done_arg = arg;
	/* The instances' last words, within a generous bound. */
	tail_all(lg, 16 * TICK_BUDGET, true);
	state_save(lg);
	uv_close((uv_handle_t *)&lg->timer, on_timer_closed);
}
