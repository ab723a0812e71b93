/*
 * functions_run.c - the program runner of functions.h: a program (an
 * argument vector, no shell) with its input on stdin, its output captured
 * and its lines logged, as its own uid or runAsUser.
 *
 * A run owns five handles (process, stdin, stdout, stderr, timer). It ends
 * when the process has exited and both output pipes reached EOF, or when it
 * is killed (timeout, output over its cap, cancel); then every handle is
 * closed and the last close callback reports the result. A process handle
 * is closed only after its exit, so no child is left unreaped.
 */
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "notify/functions.h"
#include "notify/functions_int.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/xalloc.h"

#define MAX_RUNS 256
#define LINGER_MS 1000
#define LOG_LINE_MAX 512
#define LOG_LINES_MAX 1000
#define LAST_ERR_MAX 200

/* One output stream being logged line by line. */
struct line_buf {
	char text[LOG_LINE_MAX + 1];
	size_t len;
	bool cut; /* the rest of an over-long line is being skipped */
};

struct functions_run {
	struct functions *fns; /* NULL once functions_close() let go */
	char *function, *subscription_id; /* for the log's ids; may be NULL */
	struct functions_run *prev, *next;
	uv_process_t proc;
	uv_pipe_t in, out, err;
	uv_timer_t timer;
	int open_handles;
	bool in_closed, out_closed, err_closed;
	bool started, exited, finishing;
	bool timed_out, too_big, cancelled;
	int pid;
	int64_t exit_status;
	int term_signal;
	char *input;
	size_t input_len;
	uv_write_t wreq;
	size_t capture_max;
	struct buf output;
	struct line_buf lines[2]; /* stdout (when logged), stderr */
	unsigned logged;
	char last_err[LAST_ERR_MAX + 1];
	char *tag;
	char *argv0;
	uint32_t uid;          /* held until the run ends; 0: none */
	char spawn_error[160];
	uint32_t timeout_ms;
	uint64_t start_ns;
	char rbuf[16384];
	functions_run_done_fn *done;
	void *arg;
};

static void run_on_closed(uv_handle_t *h)
{
	struct functions_run *r = h->data;
	struct functions_run_result res;
	char msg[400];

	if (--r->open_handles > 0)
		return;
	if (r->fns != NULL) {
		if (r->prev != NULL)
			r->prev->next = r->next;
		else
			r->fns->runs = r->next;
		if (r->next != NULL)
			r->next->prev = r->prev;
		r->fns->nruns--;
	}
	memset(&res, 0, sizeof(res));
	res.exit_status = -1;
	res.elapsed_ms = (uv_hrtime() - r->start_ns) / 1000000;
	msg[0] = '\0';
	if (r->cancelled) {
		res.error = MDS_E_UNAVAIL;
		snprintf(msg, sizeof(msg), "cancelled");
	} else if (!r->started) {
		res.error = MDS_E_SYS;
		snprintf(msg, sizeof(msg), "cannot start '%.200s': %s",
			 r->argv0, r->spawn_error);
	} else if (r->timed_out) {
		res.error = MDS_E_TIMEOUT;
		snprintf(msg, sizeof(msg), "timed out after %u ms (killed)",
			 r->timeout_ms);
	} else if (r->too_big) {
		res.error = MDS_E_LIMIT;
		snprintf(msg, sizeof(msg), "output larger than %zu bytes "
			 "(killed)", r->capture_max);
	} else if (r->term_signal != 0) {
		res.error = MDS_E_IO;
		res.term_signal = r->term_signal;
		snprintf(msg, sizeof(msg), "killed by signal %d%s%s",
			 r->term_signal, r->last_err[0] ? ": " : "",
			 r->last_err);
	} else {
		res.exit_status = (int)r->exit_status;
		if (r->exit_status != 0) {
			res.error = MDS_E_IO;
			snprintf(msg, sizeof(msg), "exit status %d%s%s",
				 (int)r->exit_status,
				 r->last_err[0] ? ": " : "", r->last_err);
		}
	}
	res.message = msg;
	res.output = buf_str(&r->output);
	res.output_len = r->output.len;
	if (r->done != NULL)
		r->done(r->arg, &res);
	buf_free(&r->output);
	free(r->input);
	free(r->tag);
	free(r->function);
	free(r->subscription_id);
	free(r->argv0);
	free(r);
}

static void close_one(struct functions_run *r, uv_handle_t *h, bool *flag)
{
	if (*flag)
		return;
	*flag = true;
	uv_close(h, run_on_closed);
}

/* Closes whatever is left once the process is gone and its pipes are
 * closed. */
static void maybe_finish(struct functions_run *r)
{
	if (r->finishing || !r->exited || !r->out_closed || !r->err_closed)
		return;
	r->finishing = true;
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, run_on_closed);
	uv_close((uv_handle_t *)&r->proc, run_on_closed);
	close_one(r, (uv_handle_t *)&r->in, &r->in_closed);
}

/* Kills the process group (while it may still exist) and stops
 * listening to it. */
static void kill_run(struct functions_run *r)
{
	if (r->started && r->pid > 0 && (!r->exited || !r->out_closed ||
					 !r->err_closed))
		kill(-r->pid, SIGKILL);
	close_one(r, (uv_handle_t *)&r->in, &r->in_closed);
	close_one(r, (uv_handle_t *)&r->out, &r->out_closed);
	close_one(r, (uv_handle_t *)&r->err, &r->err_closed);
	maybe_finish(r);
}

/* Logs one complete line of output, blanking control characters. */
static void emit_line(struct functions_run *r, int which, char *text,
		      size_t len, bool cut)
{
	while (len > 0 && (text[len - 1] == '\r' || text[len - 1] == '\n'))
		len--;
	text[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
			text[i] = ' ';
	if (which == 1 && len > 0)
		snprintf(r->last_err, sizeof(r->last_err), "%s", text);
	if (r->logged < LOG_LINES_MAX)
		log_event(LOG_INFO, "fn",
			  LOG_IDS(.function = r->function,
				  .subscription_id = r->subscription_id,
				  .stream = which == 0 ? "stdout" : "stderr"),
			  "%s %s: %s%s", r->tag,
			  which == 0 ? "stdout" : "stderr", text,
			  cut ? " [cut]" : "");
	else if (r->logged == LOG_LINES_MAX)
		log_info("fn", "%s: more than %d lines of output; the rest "
			 "is not logged", r->tag, LOG_LINES_MAX);
	r->logged++;
}

static void feed_lines(struct functions_run *r, int which, const char *p,
		       size_t n)
{
	struct line_buf *lb = &r->lines[which];

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			if (!lb->cut)
				emit_line(r, which, lb->text, lb->len, false);
			lb->len = 0;
			lb->cut = false;
			continue;
		}
		if (lb->cut)
			continue;
		if (lb->len == LOG_LINE_MAX) {
			emit_line(r, which, lb->text, lb->len, true);
			lb->len = 0;
			lb->cut = true;
			continue;
		}
		lb->text[lb->len++] = p[i];
	}
}

static void flush_line(struct functions_run *r, int which)
{
	struct line_buf *lb = &r->lines[which];

	if (lb->len > 0 && !lb->cut)
		emit_line(r, which, lb->text, lb->len, false);
	lb->len = 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct functions_run *r = h->data;

	(void)suggested;
	b->base = r->rbuf;
	b->len = sizeof(r->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct functions_run *r = s->data;
	bool is_out = s == (uv_stream_t *)&r->out;
	int which = is_out ? 0 : 1;

	if (nread > 0) {
		if (is_out && r->capture_max > 0 &&
		    buf_add(&r->output, b->base, (size_t)nread) != 0) {
			r->too_big = true;
			kill_run(r);
			return;
		}
		feed_lines(r, which, b->base, (size_t)nread);
		return;
	}
	if (nread == 0)
		return;
	/* EOF or a read error: this stream is done. */
	flush_line(r, which);
	if (is_out)
		close_one(r, (uv_handle_t *)&r->out, &r->out_closed);
	else
		close_one(r, (uv_handle_t *)&r->err, &r->err_closed);
	maybe_finish(r);
}

static void on_written(uv_write_t *w, int status)
{
	struct functions_run *r = w->data;

	(void)status; /* A program that does not read its input is fine. */
	close_one(r, (uv_handle_t *)&r->in, &r->in_closed);
}

static void on_timer(uv_timer_t *t)
{
	struct functions_run *r = t->data;

	if (!r->exited)
		r->timed_out = true;
	/* Else the program exited but something it started still holds its
	 * output open: the linger time is over. */
	kill_run(r);
}

static void on_proc_exit(uv_process_t *p, int64_t status, int sig)
{
	struct functions_run *r = p->data;
	uint64_t spent, left;

	r->exited = true;
	r->exit_status = status;
	r->term_signal = sig;
	if (!r->out_closed || !r->err_closed) {
		/* Something it started still holds its output open: give it
		 * a moment (within the timeout) to finish writing. */
		spent = (uv_hrtime() - r->start_ns) / 1000000;
		left = spent >= r->timeout_ms ? 0 : r->timeout_ms - spent;
		uv_timer_start(&r->timer, on_timer,
			       left < LINGER_MS ? left : LINGER_MS, 0);
		return;
	}
	maybe_finish(r);
}

/* Who a program runs as, for uv_spawn(). */
struct run_cred {
	uv_uid_t uid;
	uv_gid_t gid;
	unsigned int flags; /* UV_PROCESS_SETUID | UV_PROCESS_SETGID, or 0 */
};

/*
 * Fills c, when the daemon runs as root, with uid (and the gid of the same
 * number) when it is not 0 and the pool gives uids, else with
 * fns->run_as_user (libuv then drops the supplementary groups, sets the
 * group, then the user), and envp (4 slots) with the program's clean
 * environment: PATH, LANG and HOME (the user's; "/" for a uid no user
 * has, as for instances), each newly allocated, NULL-terminated. Returns
 * 0, or MDS_E_SYS when the user does not exist (any more).
 */
static int run_cred(const struct functions *fns, uint32_t uid,
		    struct run_cred *c, char **envp)
{
	const char *path = getenv("PATH"), *lang = getenv("LANG");
	const char *home = getenv("HOME");
	struct passwd *pw = NULL;
	size_t n = 0;

	memset(c, 0, sizeof(*c));
	if (geteuid() == 0 && uid != 0 && uidpool_on(fns->uids)) {
		c->uid = (uv_uid_t)uid;
		c->gid = (uv_gid_t)uid;
		c->flags = UV_PROCESS_SETUID | UV_PROCESS_SETGID;
		home = "/";
	} else if (geteuid() == 0 && fns->run_as_user != NULL &&
		   fns->run_as_user[0] != '\0') {
		pw = getpwnam(fns->run_as_user);
		if (pw == NULL) {
			log_error("fn", "cannot run programs as '%s': no such "
				  "user", fns->run_as_user);
			return MDS_E_SYS;
		}
		c->uid = pw->pw_uid;
		c->gid = pw->pw_gid;
		c->flags = UV_PROCESS_SETUID | UV_PROCESS_SETGID;
		home = pw->pw_dir;
	}
	envp[n++] = xasprintf("PATH=%s",
			      path ? path : "/usr/local/bin:/usr/bin:/bin");
	if (lang != NULL)
		envp[n++] = xasprintf("LANG=%s", lang);
	if (home != NULL)
		envp[n++] = xasprintf("HOME=%s", home);
	envp[n] = NULL;
	return 0;
}

int functions_run(struct functions *fns, const struct functions_run_opts *o,
		  functions_run_done_fn *done, void *arg,
		  struct functions_run **out)
{
	uv_process_options_t opt = { 0 };
	uv_stdio_container_t stdio[3];
	struct functions_run *r;
	struct run_cred cred;
	size_t argc = 0;
	char **args, *envp[4];
	int rc;

	if (out != NULL)
		*out = NULL;
	if (o == NULL || o->argv == NULL || o->argv[0] == NULL ||
	    done == NULL)
		return MDS_E_INVAL;
	if (fns->closing)
		return MDS_E_UNAVAIL;
	if (fns->nruns >= MAX_RUNS)
		return MDS_E_LIMIT;
	while (o->argv[argc] != NULL)
		argc++;
	rc = run_cred(fns, o->uid, &cred, envp);
	if (rc != 0)
		return rc;

	r = xcalloc(1, sizeof(*r));
	r->fns = fns;
	r->done = done;
	r->arg = arg;
	r->timeout_ms = o->timeout_ms ? o->timeout_ms : fns->timeout_ms;
	r->capture_max = o->capture_max;
	buf_init(&r->output, o->capture_max);
	r->tag = xstrdup(o->log_tag ? o->log_tag : o->argv[0]);
	r->function = o->function ? xstrdup(o->function) : NULL;
	r->subscription_id = o->subscription_id ? xstrdup(o->subscription_id)
						: NULL;
	r->argv0 = xstrdup(o->argv[0]);
	r->uid = o->uid;
	r->input_len = o->input ? o->input_len : 0;
	r->input = xmalloc(r->input_len + 1);
	if (r->input_len > 0)
		memcpy(r->input, o->input, r->input_len);
	r->start_ns = uv_hrtime();
	r->exit_status = -1;

	uv_pipe_init(fns->loop, &r->in, 0);
	uv_pipe_init(fns->loop, &r->out, 0);
	uv_pipe_init(fns->loop, &r->err, 0);
	uv_timer_init(fns->loop, &r->timer);
	r->in.data = r->out.data = r->err.data = r->timer.data = r;
	r->proc.data = r;
	r->wreq.data = r;
	r->open_handles = 5;

	r->next = fns->runs;
	if (fns->runs != NULL)
		fns->runs->prev = r;
	fns->runs = r;
	fns->nruns++;

	args = xcalloc(argc + 1, sizeof(char *));
	for (size_t i = 0; i < argc; i++)
		args[i] = (char *)o->argv[i];
	opt.uid = cred.uid;
	opt.gid = cred.gid;
	opt.flags = cred.flags;
	opt.env = envp;
	stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
	stdio[0].data.stream = (uv_stream_t *)&r->in;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&r->out;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&r->err;
	opt.file = args[0];
	opt.args = args;
	opt.stdio = stdio;
	opt.stdio_count = 3;
	/* Its own process group, so a timeout kills what it started too. */
	opt.flags |= UV_PROCESS_DETACHED;
	opt.exit_cb = on_proc_exit;
	rc = uv_spawn(fns->loop, &r->proc, &opt);
	free(args);
	for (size_t i = 0; envp[i] != NULL; i++)
		free(envp[i]);
	if (out != NULL)
		*out = r;
	if (rc != 0) {
		snprintf(r->spawn_error, sizeof(r->spawn_error), "%s",
			 uv_strerror(rc));
		r->exited = true;
		kill_run(r);
		return 0;
	}
	r->started = true;
	r->pid = r->proc.pid;
	log_debug("fn", "%s: started pid %d", r->tag, r->pid);
	uv_read_start((uv_stream_t *)&r->out, on_alloc, on_read);
	uv_read_start((uv_stream_t *)&r->err, on_alloc, on_read);
	uv_timer_start(&r->timer, on_timer, r->timeout_ms, 0);
	if (r->input_len > 0) {
		uv_buf_t b = uv_buf_init(r->input, (unsigned)r->input_len);

		if (uv_write(&r->wreq, (uv_stream_t *)&r->in, &b, 1,
			     on_written) != 0)
			close_one(r, (uv_handle_t *)&r->in, &r->in_closed);
	} else {
		close_one(r, (uv_handle_t *)&r->in, &r->in_closed);
	}
	return 0;
}

void functions_run_cancel(struct functions *fns, struct functions_run *run)
{
	(void)fns;
	if (run == NULL || run->finishing)
		return;
	run->cancelled = true;
	kill_run(run);
}


void functions_runs_close(struct functions *fns, const char *why)
{
	while (fns->runs != NULL) {
		struct functions_run *r = fns->runs;
		struct functions_run_result res = {
			.error = MDS_E_UNAVAIL, .exit_status = -1,
			.output = "", .message = why,
		};

		fns->runs = r->next;
		r->prev = r->next = NULL;
		r->fns = NULL;
		if (r->done != NULL)
			r->done(r->arg, &res);
		r->done = NULL;
		r->cancelled = true;
		if (!r->finishing)
			kill_run(r);
	}
	fns->nruns = 0;
}

void functions_run_detach(struct functions_run *run)
{
	run->done = NULL;
}

void functions_runs_uids(const struct functions *fns,
			 struct uidpool_ids *ids)
{
	for (const struct functions_run *r = fns->runs; r; r = r->next)
		uidpool_ids_add(ids, r->uid);
}
