/* logstore.c - the structured log's files; see logstore.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/iso8601.h"
#include "logging/logstore.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/jsonstr.h"
#include "util/rfc3339.h"
#include "util/xalloc.h"

/* One line as written: the message (escaped, up to 6 bytes a byte) and the
 * rest. */
#define LINE_BUF_MAX (LOGSTORE_MESSAGE_MAX * 6 + 8192)
/* A line read back longer than this is not one of ours: skipped. */
#define READ_LINE_MAX (LINE_BUF_MAX + 1024)
#define READ_BLOCK (64 * 1024)
/* After a failed open, try again at most this often. */
#define REOPEN_MS 1000
#define DEFAULT_LIMIT 1000

static void id_set(struct log_ids *ids, size_t i, const char *v)
{
	*(const char **)(void *)((char *)ids + log_id_fields[i].off) = v;
}

struct logstore_follower {
	struct logstore_follower *next;
	logstore_follow_fn *fn; /* NULL: unfollowed while delivering */
	void *arg;
};

struct logstore {
	char *dir;
	char *path;
	uint64_t max_file_bytes;
	uint32_t max_files;
	uint32_t retention_days;
	int fd;                /* -1 while the file cannot be opened */
	uint64_t size;         /* bytes in the current file */
	uint64_t dev, ino;
	int64_t reopen_at_ms;
	uint64_t dropped;      /* since the last line written */
	uint64_t dropped_total;
	bool broken_line;      /* a short write left a line unended */
	struct buf line;       /* the line being written, reused */
	struct logstore_follower *followers;
	size_t nfollowers;
	bool delivering;
	bool has_dead;
};

static char *rotated_path(const struct logstore *ls, uint32_t k)
{
	return xasprintf("%s.%u", ls->path, k);
}

static void open_file(struct logstore *ls)
{
	struct stat st;

	ls->fd = open(ls->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		      0600);
	if (ls->fd < 0) {
		ls->reopen_at_ms = ids_now_ms() + REOPEN_MS;
		return;
	}
	if (fstat(ls->fd, &st) == 0) {
		ls->size = (uint64_t)st.st_size;
		ls->dev = (uint64_t)st.st_dev;
		ls->ino = (uint64_t)st.st_ino;
	}
	/* A previous run may have ended in the middle of a line. */
	ls->broken_line = false;
	if (ls->size > 0) {
		char last;

		if (pread(ls->fd, &last, 1, (off_t)ls->size - 1) == 1 &&
		    last != '\n')
			ls->broken_line = true;
	}
}

int logstore_open(const struct logstore_opts *o, struct logstore **out,
		  char *diag, size_t diagsz)
{
	struct logstore *ls;

	*out = NULL;
	if (o->dir == NULL || o->dir[0] == '\0' || o->max_file_bytes == 0 ||
	    o->max_files == 0) {
		mds_diag(diag, diagsz, "log: bad options");
		return MDS_E_INVAL;
	}
	/* A directory or file that cannot be made now (a full disk) is no
	 * reason not to serve: lines are counted as dropped, and the file is
	 * tried again every REOPEN_MS. */
	if (mkdir(o->dir, 0700) != 0 && errno != EEXIST)
		fprintf(stderr, "mdscale: log: cannot create %s: %s\n", o->dir,
			strerror(errno));
	ls = xcalloc(1, sizeof(*ls));
	ls->dir = xstrdup(o->dir);
	ls->path = xasprintf("%s/%s", o->dir, LOGSTORE_FILE);
	ls->max_file_bytes = o->max_file_bytes;
	ls->max_files = o->max_files;
	ls->retention_days = o->retention_days;
	buf_init(&ls->line, LINE_BUF_MAX);
	open_file(ls);
	if (ls->fd < 0)
		fprintf(stderr, "mdscale: log: cannot open %s: %s\n", ls->path,
			strerror(errno));
	logstore_maintain(ls, ids_now_ms());
	*out = ls;
	return 0;
}

void logstore_close(struct logstore *ls)
{
	if (ls == NULL)
		return;
	if (ls->fd >= 0)
		close(ls->fd);
	while (ls->followers != NULL) {
		struct logstore_follower *next = ls->followers->next;

		free(ls->followers);
		ls->followers = next;
	}
	buf_free(&ls->line);
	free(ls->path);
	free(ls->dir);
	free(ls);
}

uint64_t logstore_dropped_total(const struct logstore *ls)
{
	return ls->dropped_total;
}

void logstore_mark(const struct logstore *ls, struct logstore_mark *m)
{
	m->valid = ls->fd >= 0;
	m->dev = ls->dev;
	m->ino = ls->ino;
	m->offset = ls->size;
}

/* ---- writing ---- */

/* Formats rec as one JSON line into out (log_format_json(), with the count
 * of lines dropped so far); returns 0 or MDS_E_LIMIT. */
static int format_line(struct logstore *ls, struct buf *out,
		       const struct log_record *rec)
{
	struct log_record r = *rec;
	char *msg = NULL;
	int rc;

	if (r.message != NULL && strlen(r.message) > LOGSTORE_MESSAGE_MAX) {
		msg = xasprintf("%.*s [cut]", LOGSTORE_MESSAGE_MAX, r.message);
		r.message = msg;
	}
	rc = log_format_json(&r, ls->dropped, out);
	free(msg);
	return rc;
}

static void deliver(struct logstore *ls, const struct log_record *rec,
		    const struct buf *line)
{
	struct logstore_follower **pp;

	if (ls->delivering || ls->followers == NULL)
		return;
	ls->delivering = true;
	for (struct logstore_follower *f = ls->followers; f; f = f->next)
		if (f->fn != NULL)
			f->fn(f->arg, rec, line->data, line->len);
	ls->delivering = false;
	if (!ls->has_dead)
		return;
	ls->has_dead = false;
	for (pp = &ls->followers; *pp;) {
		struct logstore_follower *f = *pp;

		if (f->fn == NULL) {
			*pp = f->next;
			free(f);
			ls->nfollowers--;
		} else {
			pp = &f->next;
		}
	}
}

/* Moves mdscale.log to .1 (and each .k to .k+1, dropping the last) and
 * opens a new one. If the move fails, empties the file instead: the bound
 * on disk use matters more than the old lines. */
static void rotate(struct logstore *ls)
{
	char *from, *to;
	bool moved;

	if (ls->fd >= 0)
		close(ls->fd);
	ls->fd = -1;
	to = rotated_path(ls, ls->max_files);
	unlink(to);
	for (uint32_t k = ls->max_files; k > 1; k--) {
		/* A gap (a missing .k) is no error: keep shifting. */
		from = rotated_path(ls, k - 1);
		(void)rename(from, to);
		free(to);
		to = from;
	}
	moved = rename(ls->path, to) == 0;
	free(to);
	if (!moved && truncate(ls->path, 0) != 0) {
		/* Nothing left to try: the next open reports it. */
	}
	ls->size = 0;
	open_file(ls);
}

/* Writes all of [p, p+n), retrying on EINTR. Returns the bytes written
 * (short on an error, with errno set). */
static size_t write_all(int fd, const char *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = write(fd, p + done, n - done);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		done += (size_t)k;
	}
	return done;
}

static void drop(struct logstore *ls, int err)
{
	if (ls->dropped == 0)
		fprintf(stderr, "mdscale: log: cannot write %s: %s; counting "
			"the lines lost until it works again\n", ls->path,
			strerror(err));
	ls->dropped++;
	ls->dropped_total++;
}

static void write_line(struct logstore *ls, const struct buf *line)
{
	const char *p = line->data;
	size_t n = line->len, done;

	if (ls->fd < 0 && ids_now_ms() >= ls->reopen_at_ms)
		open_file(ls);
	if (ls->fd < 0) {
		drop(ls, errno);
		return;
	}
	if (ls->size > 0 && ls->size + n + ls->broken_line > ls->max_file_bytes)
		rotate(ls);
	if (ls->fd < 0) {
		drop(ls, errno);
		return;
	}
	if (ls->broken_line) {
		if (write_all(ls->fd, "\n", 1) != 1) {
			drop(ls, errno);
			return;
		}
		ls->size++;
		ls->broken_line = false;
	}
	done = write_all(ls->fd, p, n);
	ls->size += done;
	if (done == n) {
		if (ls->dropped > 0)
			fprintf(stderr, "mdscale: log: writing %s again; %llu "
				"lines were lost\n", ls->path,
				(unsigned long long)ls->dropped);
		ls->dropped = 0;
		return;
	}
	if (done > 0)
		ls->broken_line = true;
	drop(ls, errno);
}

void logstore_append(struct logstore *ls, const struct log_record *rec)
{
	struct buf nested, *line = &ls->line;

	/* A line logged from inside a follower's callback must not reuse the
	 * buffer of the line being delivered. */
	if (ls->delivering) {
		buf_init(&nested, LINE_BUF_MAX);
		line = &nested;
	}
	if (format_line(ls, line, rec) != 0) {
		drop(ls, ENOMEM);
	} else {
		/* Followers get the line even when the disk refuses it. */
		deliver(ls, rec, line);
		write_line(ls, line);
	}
	if (line != &ls->line)
		buf_free(line);
}

void logstore_sink(void *arg, const struct log_record *rec)
{
	logstore_append(arg, rec);
}

int logstore_maintain(struct logstore *ls, int64_t now_ms)
{
	size_t plen = strlen(LOGSTORE_FILE);
	int64_t horizon = now_ms - (int64_t)ls->retention_days * 86400000LL;
	struct dirent *e;
	int deleted = 0;
	DIR *d;

	d = opendir(ls->dir);
	if (d == NULL)
		return 0;
	for (e = readdir(d); e != NULL; e = readdir(d)) {
		const char *name = e->d_name;
		struct stat st;
		char *end, *path;
		unsigned long k;
		bool old;

		if (strncmp(name, LOGSTORE_FILE, plen) != 0 ||
		    name[plen] != '.' || name[plen + 1] < '1' ||
		    name[plen + 1] > '9')
			continue;
		errno = 0;
		k = strtoul(name + plen + 1, &end, 10);
		if (*end != '\0' || errno != 0)
			continue;
		path = xasprintf("%s/%s", ls->dir, name);
		old = ls->retention_days > 0 && stat(path, &st) == 0 &&
		      (int64_t)st.st_mtime * 1000 < horizon;
		if ((k > ls->max_files || old) && unlink(path) == 0)
			deleted++;
		free(path);
	}
	closedir(d);
	return deleted;
}

struct logstore_follower *logstore_follow(struct logstore *ls,
					  logstore_follow_fn *fn, void *arg)
{
	struct logstore_follower *f;

	if (ls->nfollowers >= LOGSTORE_FOLLOWERS_MAX)
		return NULL;
	f = xcalloc(1, sizeof(*f));
	f->fn = fn;
	f->arg = arg;
	f->next = ls->followers;
	ls->followers = f;
	ls->nfollowers++;
	return f;
}

void logstore_unfollow(struct logstore *ls, struct logstore_follower *f)
{
	struct logstore_follower **pp;

	if (f == NULL)
		return;
	if (ls->delivering) {
		f->fn = NULL;
		ls->has_dead = true;
		return;
	}
	for (pp = &ls->followers; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			free(f);
			ls->nfollowers--;
			return;
		}
	}
}

/* ---- filters ---- */

void logstore_filter_init(struct logstore_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->level = LOG_DEBUG;
	f->since_ms = INT64_MIN;
	f->until_ms = INT64_MAX;
	f->limit = DEFAULT_LIMIT;
}

bool logstore_match(const struct logstore_filter *f,
		    const struct log_record *rec)
{
	if (rec->level > f->level || rec->time_ms < f->since_ms ||
	    rec->time_ms > f->until_ms)
		return false;
	if (f->source != NULL &&
	    strcmp(f->source, rec->source ? rec->source : "") != 0)
		return false;
	for (size_t i = 0; i < LOG_N_IDS; i++) {
		const char *want = log_id_get(&f->ids, i), *have;

		if (want == NULL)
			continue;
		have = log_id_get(rec->ids, i);
		if (have == NULL || strcmp(want, have) != 0)
			return false;
	}
	return f->text == NULL || f->text[0] == '\0' ||
	       strstr(rec->message ? rec->message : "", f->text) != NULL;
}

/* ---- queries ---- */

/* Cheap tests run on the raw text before a line is parsed: each is true of
 * every line that can match. */
struct prefilter {
	char since[RFC3339_BUFSZ], until[RFC3339_BUFSZ]; /* "": no bound */
	char *needles[LOG_N_IDS + 2];
	size_t n;
};

static void prefilter_init(struct prefilter *p, const struct logstore_filter *f)
{
	memset(p, 0, sizeof(*p));
	if (f->since_ms >= 0) /* also 0000 to 9999 */
		rfc3339_format(f->since_ms, RFC3339_MILLIS, p->since,
			       sizeof(p->since));
	if (f->until_ms >= 0)
		rfc3339_format(f->until_ms, RFC3339_MILLIS, p->until,
			       sizeof(p->until));
	if (f->source != NULL && jsonstr_is_plain(f->source))
		p->needles[p->n++] = xasprintf("\"source\":\"%s\"", f->source);
	for (size_t i = 0; i < LOG_N_IDS; i++) {
		const char *v = log_id_get(&f->ids, i);

		if (v != NULL && jsonstr_is_plain(v))
			p->needles[p->n++] = xasprintf("\"%s\":\"%s\"",
						       log_id_fields[i].key, v);
	}
	if (f->text != NULL && f->text[0] != '\0' &&
	    jsonstr_is_plain(f->text))
		p->needles[p->n++] = xstrdup(f->text);
}

static void prefilter_free(struct prefilter *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->needles[i]);
}

static bool prefilter_pass(const struct prefilter *p, const char *line,
			   size_t len)
{
	static const char lead[] = "{\"time\":\"";
	size_t ll = sizeof(lead) - 1;

	if (len > ll + 24 && memcmp(line, lead, ll) == 0) {
		/* The time is fixed-width: text order is time order. */
		if (p->since[0] && memcmp(line + ll, p->since, 24) < 0)
			return false;
		if (p->until[0] && memcmp(line + ll, p->until, 24) > 0)
			return false;
	}
	for (size_t i = 0; i < p->n; i++)
		if (memmem(line, len, p->needles[i], strlen(p->needles[i])) ==
		    NULL)
			return false;
	return true;
}

/* Fills rec from a parsed line (strings borrowed from o). */
static bool record_from_json(json_t *o, struct log_record *rec,
			     struct log_ids *ids)
{
	const char *t = json_string_value(json_object_get(o, "time"));
	const char *lv = json_string_value(json_object_get(o, "level"));
	enum log_level level = LOG_INFO;

	if (!json_is_object(o) || t == NULL ||
	    iso8601_time_parse(t, &rec->time_ms, NULL, 0) != 0)
		return false;
	if (lv != NULL)
		log_level_parse(lv, &level);
	rec->level = level;
	rec->source = json_string_value(json_object_get(o, "source"));
	rec->message = json_string_value(json_object_get(o, "message"));
	if (rec->source == NULL)
		rec->source = "";
	if (rec->message == NULL)
		rec->message = "";
	memset(ids, 0, sizeof(*ids));
	for (size_t i = 0; i < LOG_N_IDS; i++)
		id_set(ids, i, json_string_value(json_object_get(
					 o, log_id_fields[i].key)));
	rec->ids = ids;
	return true;
}

/* The newest matches: a ring of at most limit lines and RESULT_MAX bytes. */
struct ring {
	char **line;
	size_t *len;
	size_t cap, head, n, bytes;
	bool dropped;
};

static void ring_drop_oldest(struct ring *r)
{
	r->bytes -= r->len[r->head];
	free(r->line[r->head]);
	r->line[r->head] = NULL;
	r->head = (r->head + 1) % r->cap;
	r->n--;
	r->dropped = true;
}

static void ring_add(struct ring *r, const char *line, size_t len)
{
	size_t at;

	if (len + 1 > LOGSTORE_RESULT_MAX) {
		r->dropped = true;
		return;
	}
	if (r->n == r->cap)
		ring_drop_oldest(r);
	while (r->n > 0 && r->bytes + len + 1 > LOGSTORE_RESULT_MAX)
		ring_drop_oldest(r);
	at = (r->head + r->n) % r->cap;
	r->line[at] = xmalloc(len + 1);
	memcpy(r->line[at], line, len);
	r->line[at][len] = '\n';
	r->len[at] = len + 1;
	r->bytes += len + 1;
	r->n++;
}

struct scan {
	const struct logstore_filter *f;
	struct prefilter pre;
	struct ring ring;
	uint64_t scanned;
};

static void consider(struct scan *s, const char *line, size_t len)
{
	struct log_record rec;
	struct log_ids ids;
	json_t *o;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		len--;
	if (len < 2 || line[0] != '{')
		return;
	s->scanned++;
	if (!prefilter_pass(&s->pre, line, len))
		return;
	o = json_loadb(line, len, 0, NULL);
	if (o == NULL)
		return;
	if (record_from_json(o, &rec, &ids) && logstore_match(s->f, &rec))
		ring_add(&s->ring, line, len);
	json_decref(o);
}

/* Reads the first limit bytes of fd line by line (limit UINT64_MAX: all). */
static void scan_fd(struct scan *s, int fd, uint64_t limit)
{
	char *block = xmalloc(READ_BLOCK);
	struct buf part;
	bool skipping = false;
	uint64_t pos = 0;

	buf_init(&part, READ_LINE_MAX);
	while (pos < limit) {
		size_t want = limit - pos < READ_BLOCK ? (size_t)(limit - pos)
						       : READ_BLOCK;
		ssize_t n = pread(fd, block, want, (off_t)pos);
		size_t off = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		pos += (uint64_t)n;
		while (off < (size_t)n) {
			char *nl = memchr(block + off, '\n', (size_t)n - off);
			size_t seg = nl ? (size_t)(nl - (block + off))
					: (size_t)n - off;

			if (skipping) {
				/* The rest of an overlong line. */
			} else if (part.len == 0 && nl != NULL) {
				consider(s, block + off, seg);
			} else if (buf_add(&part, block + off, seg) != 0) {
				buf_reset(&part);
				skipping = true;
			} else if (nl != NULL) {
				consider(s, part.data, part.len);
				buf_reset(&part);
			}
			if (nl != NULL)
				skipping = false;
			off += seg + (nl != NULL);
		}
	}
	/* A last line without its '\n' is still being written (or broken):
	 * it counts only if it parses. */
	if (!skipping && part.len > 0)
		consider(s, part.data, part.len);
	buf_free(&part);
	free(block);
}

int logstore_query(const char *dir, uint32_t max_files,
		   const struct logstore_filter *f,
		   const struct logstore_mark *stop,
		   struct logstore_result *res)
{
	struct scan s;
	uint64_t seen_ino[101 + 1];
	size_t nseen = 0;

	memset(res, 0, sizeof(*res));
	buf_init(&res->lines, LOGSTORE_RESULT_MAX + 1);
	if (f->limit == 0 || f->limit > LOGSTORE_LIMIT_MAX)
		return MDS_E_INVAL;
	if (max_files > 100)
		max_files = 100;
	memset(&s, 0, sizeof(s));
	s.f = f;
	prefilter_init(&s.pre, f);
	s.ring.cap = f->limit;
	s.ring.line = xcalloc(s.ring.cap, sizeof(char *));
	s.ring.len = xcalloc(s.ring.cap, sizeof(size_t));
	for (uint32_t k = max_files + 1; k-- > 0;) {
		char *path = k > 0
				     ? xasprintf("%s/%s.%u", dir, LOGSTORE_FILE, k)
				     : xasprintf("%s/%s", dir, LOGSTORE_FILE);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		uint64_t limit = UINT64_MAX;
		bool last = false, dup = false;
		struct stat st;

		free(path);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) != 0) {
			close(fd);
			continue;
		}
		/* A rotation while we read may show a file twice. */
		for (size_t i = 0; i < nseen; i++)
			dup = dup || seen_ino[i] == (uint64_t)st.st_ino;
		if (dup) {
			close(fd);
			continue;
		}
		seen_ino[nseen++] = (uint64_t)st.st_ino;
		if (stop != NULL && stop->valid &&
		    (uint64_t)st.st_dev == stop->dev &&
		    (uint64_t)st.st_ino == stop->ino) {
			limit = stop->offset;
			last = true;
		}
		if (f->since_ms != INT64_MIN &&
		    (int64_t)st.st_mtime * 1000 + 999 < f->since_ms) {
			/* Written to last before since: nothing can match. */
			close(fd);
			if (last)
				break;
			continue;
		}
		scan_fd(&s, fd, limit);
		close(fd);
		if (last)
			break;
	}
	for (size_t i = 0; i < s.ring.n; i++) {
		size_t at = (s.ring.head + i) % s.ring.cap;

		buf_add(&res->lines, s.ring.line[at], s.ring.len[at]);
		free(s.ring.line[at]);
	}
	res->count = s.ring.n;
	res->truncated = s.ring.dropped;
	res->scanned = s.scanned;
	free(s.ring.line);
	free(s.ring.len);
	prefilter_free(&s.pre);
	return 0;
}

void logstore_result_free(struct logstore_result *res)
{
	if (res == NULL)
		return;
	buf_free(&res->lines);
	memset(res, 0, sizeof(*res));
}
