/*
 * turn.h - how much of the current event loop turn is spent, so that the
 * work that is done in slices (reading the metrics log, queries, alarm
 * passes) shares one budget per turn instead of each taking its own.
 *
 * A turn runs from one poll for events to the next: the I/O callbacks
 * first (API requests), then timers and idle handles, where the sliced
 * work runs. Alone, each slice is short; in the same turn as a large
 * request and each other, they added up to 15 to 20 ms. With a shared
 * budget the turn stays near TURN_BUDGET_NS plus what a single request
 * costs, and each slice still makes progress (TURN_MIN_SLICE_NS).
 *
 * The time is the thread's CPU time (the wait for events costs none).
 * turn_begin() is called by the loop's prepare handle (daemon/looplag.c),
 * just before the poll; a thread that never calls it (a gateway worker,
 * a test) gets the slices it asks for.
 */
#ifndef MDS_TURN_H
#define MDS_TURN_H

#include <stdint.h>

#define TURN_BUDGET_NS (5u * 1000 * 1000)
#define TURN_MIN_SLICE_NS (500u * 1000)

/* Marks the start of a turn on this thread, and returns the CPU time the
 * turn before took (0 for the first, or without a thread CPU clock). */
uint64_t turn_begin(void);

/* CPU time this thread has spent since turn_begin() (0 before the first
 * call). */
uint64_t turn_spent_ns(void);

/* How long a slice that would take want ns may run now: want, cut to
 * what is left of TURN_BUDGET_NS in this turn, but not under
 * TURN_MIN_SLICE_NS (nor over want); want on a thread without turns. */
uint64_t turn_slice_ns(uint64_t want);

#endif
