/* looplag.c - event loop lag; see looplag.h. */
#include <stdlib.h>
#include <string.h>

#include "daemon/looplag.h"
#include "util/turn.h"
#include "util/xalloc.h"

const uint64_t looplag_turn_bounds_ns[LOOPLAG_TURN_BUCKETS - 1] = {
	1000000, 2000000, 5000000, 10000000, 20000000, 50000000, 100000000,
	250000000,
};

struct looplag {
	uv_timer_t timer;
	uv_prepare_t prepare;
	uint64_t turn_cpu_max;
	struct looplag_turns turns;
	int open_handles;
	uint64_t expected_ns; /* when the next tick is due */
	uint64_t last_ns;
	uint64_t max_ns;
};

static void on_tick(uv_timer_t *t)
{
	struct looplag *l = t->data;
	uint64_t now = uv_hrtime();

	l->last_ns = now > l->expected_ns ? now - l->expected_ns : 0;
	if (l->last_ns > l->max_ns)
		l->max_ns = l->last_ns;
	l->expected_ns = now + (uint64_t)LOOPLAG_PERIOD_MS * 1000000u;
}

/* Runs once a turn, just before the loop waits for events. */
static void on_prepare(uv_prepare_t *p)
{
	struct looplag *l = p->data;
	uint64_t turn = turn_begin();
	size_t b = 0;

	if (turn == 0)
		return; /* the first turn, or no thread CPU clock */
	if (turn > l->turn_cpu_max)
		l->turn_cpu_max = turn;
	while (b < LOOPLAG_TURN_BUCKETS - 1 && turn > looplag_turn_bounds_ns[b])
		b++;
	l->turns.count[b]++;
	l->turns.sum_ns += turn;
}

struct looplag *looplag_start(uv_loop_t *loop)
{
	struct looplag *l = xcalloc(1, sizeof(*l));

	uv_timer_init(loop, &l->timer);
	l->timer.data = l;
	/* The timer does not keep the loop alive on its own. */
	uv_unref((uv_handle_t *)&l->timer);
	l->expected_ns = uv_hrtime() + (uint64_t)LOOPLAG_PERIOD_MS * 1000000u;
	/* libuv re-arms a repeating timer from the time it ran, so each
	 * tick is measured from the previous one and one late tick does not
	 * make the next look late too. */
	uv_timer_start(&l->timer, on_tick, LOOPLAG_PERIOD_MS,
		       LOOPLAG_PERIOD_MS);
	uv_prepare_init(loop, &l->prepare);
	l->prepare.data = l;
	uv_unref((uv_handle_t *)&l->prepare);
	uv_prepare_start(&l->prepare, on_prepare);
	l->open_handles = 2;
	return l;
}

void looplag_get(const struct looplag *l, uint64_t *last_ns,
		 uint64_t *max_ns)
{
	*last_ns = l ? l->last_ns : 0;
	*max_ns = l ? l->max_ns : 0;
}

uint64_t looplag_turn_cpu_max(const struct looplag *l)
{
	return l ? l->turn_cpu_max : 0;
}

void looplag_turns(const struct looplag *l, struct looplag_turns *out)
{
	if (l != NULL)
		*out = l->turns;
	else
		memset(out, 0, sizeof(*out));
}

static void on_closed(uv_handle_t *h)
{
	struct looplag *l = h->data;

	if (--l->open_handles == 0)
		free(l);
}

void looplag_close(struct looplag *l)
{
	if (l == NULL)
		return;
	uv_close((uv_handle_t *)&l->timer, on_closed);
	uv_close((uv_handle_t *)&l->prepare, on_closed);
}
