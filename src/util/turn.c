/* turn.c - the current loop turn's budget; see turn.h. */
#include <time.h>

#include "util/turn.h"

static _Thread_local uint64_t turn_cpu0;

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t turn_begin(void)
{
	uint64_t now = thread_cpu_ns();
	uint64_t last = turn_cpu0 != 0 && now >= turn_cpu0 ? now - turn_cpu0
							   : 0;

	turn_cpu0 = now;
	return last;
}

uint64_t turn_spent_ns(void)
{
	uint64_t now;

	if (turn_cpu0 == 0)
		return 0;
	now = thread_cpu_ns();
	return now > turn_cpu0 ? now - turn_cpu0 : 0;
}

uint64_t turn_slice_ns(uint64_t want)
{
	uint64_t spent, left;

	if (turn_cpu0 == 0)
		return want;
	spent = turn_spent_ns();
	left = spent < TURN_BUDGET_NS ? TURN_BUDGET_NS - spent : 0;

	if (left < TURN_MIN_SLICE_NS)
		left = TURN_MIN_SLICE_NS;
	return left < want ? left : want;
}
