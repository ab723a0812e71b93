/*
 * delivery.h - the decisions of notification delivery, as pure functions:
 * which queued deliveries of a subscription may start now, and whether a
 * failed attempt is worth retrying.
 *
 * Order is kept per ordering key only (the dedupe key: one alarm's firing
 * episode): a delivery waits for the earlier deliveries of its key, never
 * for another key's, so a message that keeps failing holds up nothing but
 * its own successors. No I/O, no clock of its own.
 */
#ifndef MDS_DELIVERY_H
#define MDS_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How an attempt ended: delivered, failed in a way a retry may cure, or
 * refused in a way no retry can change. */
enum delivery_verdict {
	DELIVERY_OK,
	DELIVERY_TRANSIENT,
	DELIVERY_PERMANENT,
};

/*
 * The verdict of an HTTP(S) attempt. answered: a response came (status is
 * its status); otherwise the request failed (connection, timeout, TLS):
 * transient. 2xx is OK; 408, 429 and 5xx are transient; any other status
 * (3xx, 4xx) is the receiver refusing the message: permanent.
 */
enum delivery_verdict delivery_http_verdict(bool answered, long status);

/* The verdict of a function's answer: 0 OK, MDS_E_INVAL (the function
 * refuses the message) permanent, anything else transient. */
enum delivery_verdict delivery_function_verdict(int error);

/* One queued delivery, as the picker sees it; key is borrowed. */
struct delivery_slot {
	const char *key;  /* the ordering key; "" is a key too */
	bool inflight;    /* an attempt is running */
	int64_t next_ms;  /* not before */
};

/*
 * Picks, from a queue q[0..n) in publish order, the deliveries that may
 * start at now: not in flight, due, and with no earlier delivery of the
 * same key still queued; at most max_start of them. Writes their indexes,
 * in order, into ready (room for max_start) and returns how many. *next
 * gets the earliest next_ms of a delivery that would be free to start but
 * is not due yet (INT64_MAX if none). Quadratic in n: callers pass a
 * bounded window of their queue.
 */
size_t delivery_pick(const struct delivery_slot *q, size_t n, int64_t now,
		     size_t max_start, size_t *ready, int64_t *next);

#endif
