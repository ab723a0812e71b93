/*
 * functions_int.h - what functions.c (the registry, the invocations) and
 * functions_run.c (the program runner) share: the module's state.
 */
#ifndef MDS_FUNCTIONS_INT_H
#define MDS_FUNCTIONS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "daemon/uidpool.h"
#include "notify/functions.h"

struct call;
struct fn_entry;
struct store;

struct functions {
	uv_loop_t *loop;
	struct store *store;
	uint32_t timeout_ms;
	const char *run_as_user;
	struct uidpool *uids;
	struct fn_entry *entries;
	size_t nuser;
	struct call *queued, *queued_tail; /* built-ins not yet started */
	struct call *calls;                /* started ones */
	size_t ncalls;
	struct functions_run *runs;
	size_t nruns;
	uv_timer_t kick;
	bool closing;
};


/* functions_run.c: the runs still going, at functions_close(): each is
 * answered MDS_E_UNAVAIL with why, let go of and killed; their handles
 * close later. */
void functions_runs_close(struct functions *fns, const char *why);

/* functions_run.c: run's done is not called any more (its caller is
 * gone); the run goes on to its end. */
void functions_run_detach(struct functions_run *run);

/* functions_run.c: adds the uid of each run still going to ids. */
void functions_runs_uids(const struct functions *fns,
			 struct uidpool_ids *ids);

#endif
