/* autoscale_idle.h - the autoscale function's idle rule: a deployment whose
 * policy allows zero instances (minInstances 0) and that has had no request
 * for idleSeconds is taken to zero instances. The gateway brings it back
 * when a request comes (gateway.h, gateway_set_cold_start()). */
#ifndef MDSCALE_NOTIFY_AUTOSCALE_IDLE_H
#define MDSCALE_NOTIFY_AUTOSCALE_IDLE_H

#include <uv.h>

#include "deploy/deploy.h"
#include "gateway/gateway.h"
#include "notify/autoscale.h"

struct autoscale_idle;

/*
 * Starts watching every deployment's gateway counters once per second on
 * loop. a, d and gw must outlive the watcher. Returns a new watcher; close
 * it with autoscale_idle_close().
 */
struct autoscale_idle *autoscale_idle_open(uv_loop_t *loop,
					   struct autoscale *a,
					   struct deploy *d,
					   struct gateway *gw);

/* Stops the watcher and frees it once its timer is closed; NULL is fine. */
void autoscale_idle_close(struct autoscale_idle *w);

#endif
