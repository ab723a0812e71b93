/*
 * sdnotify.h - the daemon's side of systemd's service protocol: readiness
 * (Type=notify), the watchdog (WatchdogSec=), reloading and stopping, through
 * libsystemd's sd_notify(). Outside systemd ($NOTIFY_SOCKET unset) every
 * call does nothing.
 *
 * The watchdog is kicked from a timer on the daemon's loop at half the
 * period systemd asks for: a loop that stops turning stops the kicks, and
 * systemd restarts the service.
 */
#ifndef MDS_SDNOTIFY_H
#define MDS_SDNOTIFY_H

#include <uv.h>

struct sdnotify;

/*
 * Starts the watchdog timer on loop if systemd asked for one. Returns the
 * module (never NULL); freed by sdnotify_close().
 */
struct sdnotify *sdnotify_start(uv_loop_t *loop);

/* Tells systemd the daemon is ready, with a one-line status. */
void sdnotify_ready(struct sdnotify *sn, const char *status);

/* Tells systemd that a reload began (RELOADING=1); sdnotify_ready() ends
 * it. */
void sdnotify_reloading(struct sdnotify *sn);

/* Tells systemd that the daemon is stopping and stops the watchdog timer;
 * frees the module once the timer is closed. NULL is allowed. */
void sdnotify_close(struct sdnotify *sn);

#endif
