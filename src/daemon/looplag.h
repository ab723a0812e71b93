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

/* Stops the timer; the memory is freed once the handle is closed. NULL is
 * fine. */
void looplag_close(struct looplag *l);

#endif
