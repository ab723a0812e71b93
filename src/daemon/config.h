/*
 * config.h - the daemon's configuration file.
 *
 * A JSON object; every key is optional (see docs/config.md and
 * examples/mdscale.json). Unknown keys are errors, so typos do not pass
 * silently.
 */
#ifndef MDS_CONFIG_H
#define MDS_CONFIG_H

#include <stdint.h>

#include "core/shape.h"

struct config {
	char listen_host[64];
	int listen_port;
	char gateway_host[64];
	int gateway_port;
	struct shape_ladder shapes;
	char default_shape[SHAPE_NAME_MAX + 1];
	uint32_t max_instances;   /* per deployment */
	uint32_t max_deployments; /* live ones */
	uint32_t ready_timeout_s; /* default for new deployments */
	uint32_t drain_timeout_s; /* default for new deployments */
	uint32_t stop_grace_s;    /* SIGTERM to SIGKILL */
	uint32_t health_interval_ms; /* while an instance is ready */
	uint32_t max_start_attempts; /* exits before ready that fail it */
	uint32_t sample_ms;       /* monitoring: instance sampling period */
	uint32_t eval_ms;         /* monitoring: alarm evaluation period */
	uint32_t log_max_file_mb;    /* logging: rotate mdscale.log past this */
	uint32_t log_max_files;      /* logging: rotated files kept */
	uint32_t log_retention_days; /* logging: 0 keeps files of any age */
	int access_log;              /* logging: one line per gateway request */
	char run_as_user[33];        /* instances' user when run as root; ""
					keeps the daemon's */
};

/* Fills cfg with the built-in defaults. */
void config_defaults(struct config *cfg);

/*
 * Reads the file at path over the defaults already in cfg; cfg changes
 * only when the whole file is good. Returns 0, or MDS_E_IO / MDS_E_PARSE /
 * MDS_E_INVAL with "path: what is wrong" in diag (the messages of
 * api/fields.h: "path: unknown field 'x'", ...).
 */
int config_load(const char *path, struct config *cfg, char *diag,
		size_t diagsz);

struct field;

/* The table of the file's keys (api/fields.h), for the docs check. */
const struct field *config_field_table(void);

/* Parses "HOST:PORT" (or ":PORT", or "PORT") into host and port. */
int config_parse_addr(const char *s, char *host, size_t hostsz, int *port);

#endif
