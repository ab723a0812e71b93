/* sdnotify.c - see sdnotify.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <systemd/sd-daemon.h>

#include "daemon/sdnotify.h"
#include "util/log.h"
#include "util/xalloc.h"

struct sdnotify {
	uv_timer_t watchdog;
	int timer_on;
};

static void on_watchdog(uv_timer_t *t)
{
	(void)t;
	sd_notify(0, "WATCHDOG=1");
}

struct sdnotify *sdnotify_start(uv_loop_t *loop)
{
	struct sdnotify *sn = xcalloc(1, sizeof(*sn));
	uint64_t usec = 0;

	/* > 0: systemd wants kicks every usec microseconds, from this pid. */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec >= 2000) {
		uv_timer_init(loop, &sn->watchdog);
		sn->watchdog.data = sn;
		uv_timer_start(&sn->watchdog, on_watchdog, usec / 2000,
			       usec / 2000);
		sn->timer_on = 1;
		log_info("serve", "systemd watchdog: a kick every %ju ms",
			 (uintmax_t)(usec / 2000));
	}
	return sn;
}

void sdnotify_ready(struct sdnotify *sn, const char *status)
{
	(void)sn;
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void sdnotify_reloading(struct sdnotify *sn)
{
	(void)sn;
	sd_notify(0, "RELOADING=1");
}

static void on_closed(uv_handle_t *h)
{
	free(h->data);
}

void sdnotify_close(struct sdnotify *sn)
{
	if (sn == NULL)
		return;
	sd_notify(0, "STOPPING=1");
	if (sn->timer_on)
		uv_close((uv_handle_t *)&sn->watchdog, on_closed);
	else
		free(sn);
}
