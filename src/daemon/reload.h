/*
 * reload.h - SIGHUP: read the configuration file again and apply what can
 * change while the daemon runs.
 *
 * Live (applied at once, used from the next decision on): the limits
 * (maxInstancesPerDeployment, maxDeployments), the defaults of new
 * deployments (readyTimeoutSeconds, drainTimeoutSeconds), stopGraceSeconds,
 * healthIntervalMillis, maxStartAttempts, accessLog, webhookReceiver,
 * and the names of the TLS certificate and key files (tls, gatewayTls:
 * the servers read the files again, see serve.c).
 *
 * At the next start only: the addresses (listen, gateway), the shape ladder
 * and defaultShape, the sampling and evaluation periods and the log files'
 * settings. A reload that changes one of them keeps the running value and
 * says so in the log. A file that does not load changes nothing.
 */
#ifndef MDS_RELOAD_H
#define MDS_RELOAD_H

#include <stddef.h>

#include "daemon/config.h"

/*
 * Loads path over the built-in defaults and copies the live fields into
 * *live; the restart-only fields are compared with *at_start, the file as
 * it was read at start (before command-line flags). Returns 0 (with what changed, or "nothing", in applied, and the
 * restart-only fields that differ, or "", in kept), or a negative MDS_E_*
 * with the reason in diag and *live untouched.
 */
int reload_config(const char *path, const struct config *at_start,
		  struct config *live, char *applied,
		  size_t appliedsz, char *kept, size_t keptsz, char *diag,
		  size_t diagsz);

#endif
