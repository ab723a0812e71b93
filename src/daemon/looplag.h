/*
 * looplag.h - measures how late the event loop runs its timers.
 *
 * A 100 ms repeating uv timer notes, at each tick, how much later than
 * expected it fired (actual - expected). A loop blocked by a slow callback
 * shows up as lag; the last and the largest lag are kept for /metrics.
 * Lag includes the time the thread waited for a CPU, so on a busy
 * machine it also measures the machine: the loop's own share is the CPU
 * time of a turn, which a prepare handle measures (the thread's CPU time
 * from one turn's end to the next; the wait for events costs none).
 * All calls run on the loop's thread.
 */
#ifndef MDS_LOOPLAG_H
#define MDS_LOOPLAG_H

#include <stdint.h>
#include <uv.h>

#define LOOPLAG_PERIOD_MS 100

/* Upper bounds of the turn histogram's buckets, in nanoseconds; the last
 * bucket (+Inf) takes the rest. */
#define LOOPLAG_TURN_BUCKETS 9
extern const uint64_t looplag_turn_bounds_ns[LOOPLAG_TURN_BUCKETS - 1];

/* Every loop turn's CPU time, counted per bucket (not cumulative). */
struct looplag_turns {
	uint64_t count[LOOPLAG_TURN_BUCKETS];
	uint64_t sum_ns;
};

struct looplag;

/* Starts measuring on loop. The caller owns the result and releases it with
 * looplag_close(). */
struct looplag *looplag_start(uv_loop_t *loop);

/* The lag of the last tick and the largest seen, in nanoseconds. NULL
 * gives zeros. */
void looplag_get(const struct looplag *l, uint64_t *last_ns,
		 uint64_t *max_ns);

/* The largest CPU time of one loop turn seen, in nanoseconds (NULL, or
 * no thread CPU clock: 0). */
uint64_t looplag_turn_cpu_max(const struct looplag *l);

/* The turns seen so far, by CPU time (NULL: zeros). A turn over 20 ms is
 * a stall; on a virtual machine whose host takes the CPU away for a time
 * the thread is running, that time counts as CPU too (the guest cannot
 * tell), so a rare turn near the host's time slice is the host's. */
void looplag_turns(const struct looplag *l, struct looplag_turns *out);

/* Stops the timer; the memory is freed once the handle is closed. NULL is
 * fine. */
void looplag_close(struct looplag *l);

#endif
