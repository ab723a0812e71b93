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

#include "core/idrange.h"
#include "core/shape.h"

#define CONFIG_PATH_MAX 512
#define CONFIG_SECRET_MAX 256

/* A server's certificate chain and private key (PEM files); TLS is on when
 * cert_file is set. */
struct config_tls {
	char cert_file[CONFIG_PATH_MAX];
	char key_file[CONFIG_PATH_MAX];
};

/* What mdscale's own webhook receivers accept: signed deliveries
 * (Standard Webhooks, see notify/whsig.h) when secret is set. */
struct config_receiver {
	char secret[CONFIG_SECRET_MAX + 1];
	uint32_t tolerance_s;
	int alertmanager; /* POST /v1/alertmanager/{topic} checks it */
	int oci;          /* POST /v1/oci/notifications/{topic} checks it */
};

/* "oci": the oci backend (docs/oci.md); absent, the daemon has none. */
enum config_oci_auth {
	CONFIG_OCI_API_KEY,            /* "api_key": the OCI config file */
	CONFIG_OCI_INSTANCE_PRINCIPAL, /* "instance_principal" */
	CONFIG_OCI_RESOURCE_PRINCIPAL, /* "resource_principal" */
};

struct config_oci_flex {
	char shape[SHAPE_NAME_MAX + 1]; /* "" when no Flex ladder is set */
	double ocpus_min, ocpus_max;
	double memory_gb_min, memory_gb_max;
	uint32_t steps;
};

struct config_oci {
	int enabled;               /* the file has "oci" */
	int auth;                  /* enum config_oci_auth */
	char config_file[512];     /* "": OCI_CONFIG_FILE or ~/.oci/config */
	char profile[128];         /* "": DEFAULT */
	char endpoint[256];        /* "": the regions' OCI endpoints */
	char ca_file[512];         /* "": the system's CAs */
	struct shape_ladder shapes; /* n 0: the VM.Standard2 ladder */
	struct config_oci_flex flex;
	uint32_t metrics_s;        /* SummarizeMetricsData period */
};

/* The highest maxInstancesPerDeployment: no deployment ever has more. */
#define CONFIG_INSTANCES_MAX 256

struct config {
	char listen_host[64];
	int listen_port;
	char gateway_host[64];
	int gateway_port;
	struct shape_ladder shapes;
	char default_shape[SHAPE_NAME_MAX + 1];
	uint32_t max_instances;   /* per deployment, at most
				     CONFIG_INSTANCES_MAX */
	uint32_t max_deployments; /* live ones */
	uint32_t ready_timeout_s; /* default for new deployments */
	uint32_t drain_timeout_s; /* default for new deployments */
	uint32_t stop_grace_s;    /* SIGTERM to SIGKILL */
	uint32_t health_interval_ms; /* while an instance is ready */
	uint32_t max_start_attempts; /* exits before ready that fail it */
	uint32_t sample_ms;       /* monitoring: instance sampling period */
	uint32_t eval_ms;         /* monitoring: alarm evaluation period */
	uint32_t metrics_max_series;    /* monitoring: series posts may fill */
	uint32_t metrics_max_string_mb; /* monitoring: MiB of their strings */
	uint32_t log_max_file_mb;    /* logging: rotate mdscale.log past this */
	uint32_t log_max_files;      /* logging: rotated files kept */
	uint32_t log_retention_days; /* logging: 0 keeps files of any age */
	int access_log;              /* logging: one line per gateway request */
	uint32_t hold_requests;       /* gateway: requests held per deployment
					 with no ready instance (0: none) */
	uint32_t hold_requests_total; /* gateway: held in all */
	uint32_t hold_mb;             /* gateway: MiB held per deployment */
	uint32_t hold_mb_total;       /* gateway: MiB held in all */
	uint32_t hold_timeout_s;      /* gateway: longest hold */
	uint32_t gateway_threads;     /* gateway: loops, one thread each */
	struct config_tls tls;         /* the API's TLS */
	struct config_tls gateway_tls; /* the gateway's TLS */
	int insecure_listen; /* plain HTTP on a non-loopback address is meant */
	struct config_receiver receiver;
	char run_as_user[33];        /* the user of instances, functions
					and COMMAND subscriptions when run
					as root and !config_uids_on();
					"" keeps the daemon's */
	struct idrange instance_uids; /* when run as root, each local
					 deployment's instances, each user
					 function and each COMMAND
					 subscription get a uid and gid of
					 their own from it (daemon/uidpool.h);
					 lo 0: none (runAsUser) */
	int instances_as_user; /* the file names runAsUser and not
				  instanceUids: instances run as runAsUser */
	struct config_oci oci;
};

/* Whether host (an IP address as listen takes it) is a loopback address:
 * 127.0.0.0/8, ::1, or "localhost". */
int config_is_loopback(const char *host);

/* Whether each local deployment's instances, each user function's
 * programs and each COMMAND subscription's command run as a uid of their
 * owner's own from cfg->instance_uids (when the daemon runs as root),
 * rather than as runAsUser. */
int config_uids_on(const struct config *cfg);

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
