/* config.c - the configuration file; see config.h and docs/config.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/fields.h"
#include "daemon/config.h"
#include "gateway/gateway.h"
#include "oci/shapes.h"
#include "util/err.h"

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen_host, sizeof(cfg->listen_host), "127.0.0.1");
	cfg->listen_port = 7070;
	snprintf(cfg->gateway_host, sizeof(cfg->gateway_host), "127.0.0.1");
	cfg->gateway_port = 8080;
	shape_ladder_default(&cfg->shapes);
	snprintf(cfg->default_shape, sizeof(cfg->default_shape), "local.s");
	cfg->max_instances = 16;
	cfg->max_deployments = 100;
	cfg->ready_timeout_s = 60;
	cfg->drain_timeout_s = 30;
	cfg->stop_grace_s = 10;
	cfg->health_interval_ms = 1000;
	cfg->max_start_attempts = 3;
	cfg->sample_ms = 1000;
	cfg->eval_ms = 1000;
	cfg->metrics_max_series = 100000;
	cfg->metrics_max_string_mb = 512;
	cfg->log_max_file_mb = 10;
	cfg->log_max_files = 5;
	cfg->log_retention_days = 7;
	cfg->access_log = 0;
	cfg->hold_requests = 1000;
	cfg->hold_requests_total = 10000;
	cfg->hold_mb = 64;
	cfg->hold_mb_total = 256;
	cfg->hold_timeout_s = 60;
	cfg->gateway_threads = 1;
	snprintf(cfg->run_as_user, sizeof(cfg->run_as_user), "mdscale");
	cfg->instance_uids = (struct idrange){ 60000, 60999 };
	cfg->oci.metrics_s = 60;
	cfg->oci.flex.steps = 4;
	cfg->receiver.tolerance_s = 300;
	cfg->receiver.alertmanager = 1;
	cfg->receiver.oci = 1;
}

int config_uids_on(const struct config *cfg)
{
	return cfg->instance_uids.lo != 0 && !cfg->instances_as_user;
}

int config_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return 0;
}

int config_parse_addr(const char *s, char *host, size_t hostsz, int *port)
{
	const char *colon = strrchr(s, ':');
	const char *p = colon ? colon + 1 : s;
	char *end;
	long v;

	errno = 0;
	v = strtol(p, &end, 10);
	if (*p == '\0' || *end != '\0' || errno != 0 || v < 0 || v > 65535)
		return MDS_E_INVAL;
	if (colon != NULL && colon != s) {
		size_t n = (size_t)(colon - s);

		if (s[0] == '[' && colon[-1] == ']') { /* [::1]:7070 */
			s++;
			n -= 2;
		}
		if (n + 1 > hostsz)
			return MDS_E_INVAL;
		memcpy(host, s, n);
		host[n] = '\0';
	}
	*port = (int)v;
	return 0;
}

/* ---- the file's fields ---- */

/* "listen" and "gateway": "HOST:PORT" into a host member; the port member
 * lies port_at - host_at bytes after it. */
static int parse_addr(const json_t *v, char *host, size_t hostsz, int *port,
		      const char *path, struct fault *f)
{
	if (!json_is_string(v) ||
	    config_parse_addr(json_string_value(v), host, hostsz, port) != 0)
		return fields_fault_type(f, path, "\"HOST:PORT\"");
	return 0;
}

static int parse_listen(const json_t *v, void *dst, const struct field *fd,
			const char *path, struct fault *f)
{
	struct config *cfg = (struct config *)((char *)dst - fd->offset);

	return parse_addr(v, cfg->listen_host, sizeof(cfg->listen_host),
			  &cfg->listen_port, path, f);
}

static int parse_gateway(const json_t *v, void *dst, const struct field *fd,
			 const char *path, struct fault *f)
{
	struct config *cfg = (struct config *)((char *)dst - fd->offset);

	return parse_addr(v, cfg->gateway_host, sizeof(cfg->gateway_host),
			  &cfg->gateway_port, path, f);
}

/* "instanceUids": "LO-HI" or "" into a struct idrange. */
static int parse_instance_uids(const json_t *v, void *dst,
			       const struct field *fd, const char *path,
			       struct fault *f)
{
	char why[200];

	(void)fd;
	if (!json_is_string(v))
		return fields_fault_type(f, path, "a string \"LO-HI\"");
	if (idrange_parse(json_string_value(v), dst, why, sizeof(why)) != 0)
		return fault_set(f, MDS_E_INVAL, path, "%s: %s", path, why);
	return 0;
}

/* One entry of "shapes". */
struct shape_spec {
	char name[SHAPE_NAME_MAX + 1];
	double cpus;
	uint32_t memory_mb;
};

static const struct field shape_fields[] = {
	{ .name = "name", .type = FIELD_STRING,
	  FIELD_AT(struct shape_spec, name), .required = true, .min = 1,
	  .doc = "the shape's name" },
	{ .name = "cpus", .type = FIELD_NUMBER,
	  FIELD_AT(struct shape_spec, cpus), .required = true, .min = 0.001,
	  .max = 1024, .doc = "CPUs (a fraction is a share of one)" },
	{ .name = "memoryInMBs", .type = FIELD_INTEGER,
	  FIELD_AT(struct shape_spec, memory_mb), .required = true, .min = 1,
	  .max = 1 << 24, .doc = "memory in MiB" },
	FIELD_END
};

/* Adds one parsed entry (a struct of the item table) to a ladder;
 * returns 0, or a negative code with why filled. */
typedef int ladder_add_fn(struct shape_ladder *l, const void *entry,
			  char *why, size_t whysz);

/*
 * A ladder of shapes: an array of fd->min to fd->max entries, each parsed
 * by item_fields into entry (entrysz bytes, zeroed first) and added to the
 * ladder at dst, which it replaces. "shapes" and "oci.shapes" differ only
 * in the entry and how it becomes a rung.
 */
static int parse_ladder(const json_t *v, void *dst, const struct field *fd,
			const char *path, struct fault *f,
			const struct field *item_fields, void *entry,
			size_t entrysz, ladder_add_fn *add)
{
	struct shape_ladder *l = dst;
	char at[FIELD_PATH_MAX], why[256];
	size_t i;
	json_t *item;
	int rc;

	if (!json_is_array(v))
		return fields_fault_type(f, path, "an array");
	if (json_array_size(v) < fd->min || json_array_size(v) > fd->max) {
		struct field counted = *fd;

		counted.type = FIELD_ARRAY; /* the range is a length */
		return fields_fault_range(f, path, &counted);
	}
	shape_ladder_init(l);
	json_array_foreach((json_t *)v, i, item) {
		memset(entry, 0, entrysz);
		snprintf(at, sizeof(at), "%s[%zu]", path, i);
		rc = fields_parse(item_fields, item, entry, at, NULL, f);
		if (rc != 0)
			return rc;
		rc = add(l, entry, why, sizeof(why));
		if (rc != 0)
			return fault_set(f, rc, at, "%s: %s", at, why);
	}
	return 0;
}

static int add_shape(struct shape_ladder *l, const void *entry, char *why,
		     size_t whysz)
{
	const struct shape_spec *s = entry;

	return shape_ladder_add(l, s->name, (uint32_t)(s->cpus * 1000 + 0.5),
				(uint64_t)s->memory_mb << 20, why, whysz);
}

/* "shapes": replaces the ladder; each entry by shape_fields. */
static int parse_shapes(const json_t *v, void *dst, const struct field *fd,
			const char *path, struct fault *f)
{
	struct shape_spec s;

	return parse_ladder(v, dst, fd, path, f, shape_fields, &s, sizeof(s),
			    add_shape);
}

static const struct field tls_fields[] = {
	{ .name = "certFile", .type = FIELD_STRING,
	  FIELD_AT(struct config_tls, cert_file), .required = true, .min = 1,
	  .doc = "PEM file: the certificate, then any intermediates" },
	{ .name = "keyFile", .type = FIELD_STRING,
	  FIELD_AT(struct config_tls, key_file), .required = true, .min = 1,
	  .doc = "PEM file: the certificate's private key" },
	FIELD_END
};

static const struct field receiver_fields[] = {
	{ .name = "secret", .type = FIELD_STRING,
	  FIELD_AT(struct config_receiver, secret), .min = 16,
	  .chars = FIELD_CHARS_PRINTABLE,
	  .chars_desc = "printable ASCII without blanks",
	  .doc = "the Standard Webhooks secret (whsec_...) deliveries must "
		 "be signed with" },
	{ .name = "toleranceSeconds", .type = FIELD_INTEGER,
	  FIELD_AT(struct config_receiver, tolerance_s), .min = 1,
	  .max = 3600, .doc = "how far webhook-timestamp may be from now" },
	{ .name = "alertmanager", .type = FIELD_BOOL,
	  FIELD_AT(struct config_receiver, alertmanager),
	  .doc = "POST /v1/alertmanager/{topic} checks signatures" },
	{ .name = "ociNotifications", .type = FIELD_BOOL,
	  FIELD_AT(struct config_receiver, oci),
	  .doc = "POST /v1/oci/notifications/{topic} checks signatures" },
	FIELD_END
};

/* One entry of "oci.shapes". */
struct oci_shape_spec {
	char name[SHAPE_NAME_MAX + 1];
	double ocpus;
	double memory_gb;
};

static const struct field oci_shape_fields[] = {
	{ .name = "name", .type = FIELD_STRING,
	  FIELD_AT(struct oci_shape_spec, name), .required = true, .min = 1,
	  .doc = "the OCI shape's name" },
	{ .name = "ocpus", .type = FIELD_NUMBER,
	  FIELD_AT(struct oci_shape_spec, ocpus), .required = true,
	  .min = 0.001, .max = 4000, .doc = "its OCPUs" },
	{ .name = "memoryInGBs", .type = FIELD_NUMBER,
	  FIELD_AT(struct oci_shape_spec, memory_gb), .required = true,
	  .min = 0.001, .max = 100000, .doc = "its memory in GB" },
	FIELD_END
};

static int add_oci_shape(struct shape_ladder *l, const void *entry,
			 char *why, size_t whysz)
{
	const struct oci_shape_spec *s = entry;

	return oci_shapes_add(l, s->name, s->ocpus, s->memory_gb, why, whysz);
}

/* "oci.shapes": the OCI shape ladder, smallest first. */
static int parse_oci_shapes(const json_t *v, void *dst, const struct field *fd,
			    const char *path, struct fault *f)
{
	struct oci_shape_spec s;

	return parse_ladder(v, dst, fd, path, f, oci_shape_fields, &s,
			    sizeof(s), add_oci_shape);
}

static const struct field oci_flex_fields[] = {
	{ .name = "shape", .type = FIELD_STRING,
	  FIELD_AT(struct config_oci_flex, shape), .required = true, .min = 1,
	  .doc = "a Flex shape, e.g. VM.Standard.E4.Flex" },
	{ .name = "ocpusMin", .type = FIELD_NUMBER,
	  FIELD_AT(struct config_oci_flex, ocpus_min), .required = true,
	  .min = 1, .max = 512, .doc = "OCPUs of the smallest rung" },
	{ .name = "ocpusMax", .type = FIELD_NUMBER,
	  FIELD_AT(struct config_oci_flex, ocpus_max), .required = true,
	  .min = 1, .max = 512, .doc = "OCPUs of the largest rung" },
	{ .name = "memoryInGBsMin", .type = FIELD_NUMBER,
	  FIELD_AT(struct config_oci_flex, memory_gb_min), .required = true,
	  .min = 1, .max = 8192, .doc = "memory of the smallest rung" },
	{ .name = "memoryInGBsMax", .type = FIELD_NUMBER,
	  FIELD_AT(struct config_oci_flex, memory_gb_max), .required = true,
	  .min = 1, .max = 8192, .doc = "memory of the largest rung" },
	{ .name = "steps", .type = FIELD_INTEGER,
	  FIELD_AT(struct config_oci_flex, steps), .min = 1, .max = 63,
	  .doc = "rungs above the smallest" },
	FIELD_END
};

static const char *const oci_auths[] = { "api_key", "instance_principal",
					 "resource_principal", NULL };

static const struct field oci_fields[] = {
	{ .name = "auth", .type = FIELD_ENUM, FIELD_AT(struct config_oci, auth),
	  .choices = oci_auths, .doc = "how requests are signed" },
	{ .name = "configFile", .type = FIELD_STRING,
	  FIELD_AT(struct config_oci, config_file),
	  .doc = "the OCI config file (api_key)" },
	{ .name = "profile", .type = FIELD_STRING,
	  FIELD_AT(struct config_oci, profile),
	  .doc = "its profile (api_key)" },
	{ .name = "endpoint", .type = FIELD_STRING,
	  FIELD_AT(struct config_oci, endpoint),
	  .doc = "one base URL for every OCI API (a stand-in)" },
	{ .name = "caFile", .type = FIELD_STRING,
	  FIELD_AT(struct config_oci, ca_file),
	  .doc = "CA bundle for the endpoints" },
	{ .name = "shapes", .type = FIELD_CUSTOM,
	  FIELD_AT(struct config_oci, shapes), .parse = parse_oci_shapes,
	  .min = 1, .max = SHAPE_LADDER_MAX,
	  .doc = "the OCI shape ladder, smallest first" },
	{ .name = "flex", .type = FIELD_OBJECT,
	  FIELD_AT(struct config_oci, flex), .table = oci_flex_fields,
	  .doc = "a Flex ladder instead of shapes" },
	{ .name = "metricsIntervalSeconds", .type = FIELD_INTEGER,
	  FIELD_AT(struct config_oci, metrics_s), .min = 10, .max = 3600,
	  .doc = "how often utilization is read from OCI Monitoring" },
	FIELD_END
};

#define CONFIG_UINT(key, member, lo, hi, text)                                \
	{ .name = key, .type = FIELD_INTEGER, FIELD_AT(struct config, member), \
	  .min = lo, .max = hi, .doc = text }

/* The file, key by key; docs/config.md lists the same keys. */
static const struct field config_fields[] = {
	{ .name = "listen", .type = FIELD_CUSTOM,
	  FIELD_AT(struct config, listen_host), .parse = parse_listen,
	  .doc = "\"HOST:PORT\" of the REST API" },
	{ .name = "gateway", .type = FIELD_CUSTOM,
	  FIELD_AT(struct config, gateway_host), .parse = parse_gateway,
	  .doc = "\"HOST:PORT\" of the gateway to the instances" },
	{ .name = "shapes", .type = FIELD_CUSTOM,
	  FIELD_AT(struct config, shapes), .parse = parse_shapes, .min = 1,
	  .max = SHAPE_LADDER_MAX,
	  .doc = "the shape ladder, smallest first" },
	{ .name = "defaultShape", .type = FIELD_STRING,
	  FIELD_AT(struct config, default_shape), .min = 1,
	  .doc = "shape of a deployment that names none" },
	CONFIG_UINT("maxInstancesPerDeployment", max_instances, 1,
		    CONFIG_INSTANCES_MAX,
		    "upper bound of instanceCount"),
	CONFIG_UINT("maxDeployments", max_deployments, 1, 10000,
		    "live deployments at once"),
	CONFIG_UINT("readyTimeoutSeconds", ready_timeout_s, 1, 3600,
		    "default time for new instances to become ready"),
	CONFIG_UINT("drainTimeoutSeconds", drain_timeout_s, 0, 3600,
		    "default time an instance leaving service may finish"),
	CONFIG_UINT("stopGraceSeconds", stop_grace_s, 1, 600,
		    "from SIGTERM to SIGKILL"),
	CONFIG_UINT("healthIntervalMillis", health_interval_ms, 100, 60000,
		    "health checks of ready instances"),
	CONFIG_UINT("maxStartAttempts", max_start_attempts, 1, 100,
		    "exits before first readiness that fail an instance"),
	CONFIG_UINT("sampleIntervalMillis", sample_ms, 100, 60000,
		    "monitoring: the sampling period"),
	CONFIG_UINT("evalIntervalMillis", eval_ms, 100, 60000,
		    "monitoring: the alarm evaluation period"),
	CONFIG_UINT("metricsMaxSeries", metrics_max_series, 1, 10000000,
		    "monitoring: series that posted metrics may fill the "
		    "store to"),
	CONFIG_UINT("metricsMaxStringMB", metrics_max_string_mb, 1, 65536,
		    "monitoring: MiB of interned metric strings that posted "
		    "metrics may fill the store to"),
	CONFIG_UINT("holdRequests", hold_requests, 0, 1000000,
		    "gateway: requests held per deployment with no ready "
		    "instance (0: answer 503 at once)"),
	CONFIG_UINT("holdRequestsTotal", hold_requests_total, 0, 1000000,
		    "gateway: requests held in all"),
	CONFIG_UINT("holdMB", hold_mb, 0, 65536,
		    "gateway: MiB (heads + bodies) held per deployment"),
	CONFIG_UINT("holdMBTotal", hold_mb_total, 0, 65536,
		    "gateway: MiB held in all"),
	CONFIG_UINT("holdTimeoutSeconds", hold_timeout_s, 0, 3600,
		    "gateway: longest a request is held (0: no holding)"),
	CONFIG_UINT("gatewayThreads", gateway_threads, 1, GATEWAY_THREADS_MAX,
		    "gateway: loops serving requests, one thread each, "
		    "sharing its port (SO_REUSEPORT)"),
	CONFIG_UINT("logMaxFileMB", log_max_file_mb, 1, 1024,
		    "logging: rotate mdscale.log past this size"),
	CONFIG_UINT("logMaxFiles", log_max_files, 1, 100,
		    "logging: rotated files kept"),
	CONFIG_UINT("logRetentionDays", log_retention_days, 0, 3650,
		    "logging: 0 keeps files of any age"),
	{ .name = "oci", .type = FIELD_OBJECT, FIELD_AT(struct config, oci),
	  .table = oci_fields,
	  .doc = "the oci backend (docs/oci.md); absent: none" },
	{ .name = "accessLog", .type = FIELD_BOOL,
	  FIELD_AT(struct config, access_log),
	  .doc = "logging: one line per gateway request" },
	{ .name = "tls", .type = FIELD_OBJECT, FIELD_AT(struct config, tls),
	  .table = tls_fields,
	  .doc = "the API over HTTPS: {certFile, keyFile}" },
	{ .name = "gatewayTls", .type = FIELD_OBJECT,
	  FIELD_AT(struct config, gateway_tls), .table = tls_fields,
	  .doc = "the gateway over HTTPS: {certFile, keyFile}" },
	{ .name = "insecureListen", .type = FIELD_BOOL,
	  FIELD_AT(struct config, insecure_listen),
	  .doc = "allow plain HTTP on a non-loopback address" },
	{ .name = "webhookReceiver", .type = FIELD_OBJECT,
	  FIELD_AT(struct config, receiver), .table = receiver_fields,
	  .doc = "signed deliveries to mdscale's own receivers: {secret, "
		 "toleranceSeconds}" },
	{ .name = "runAsUser", .type = FIELD_STRING,
	  FIELD_AT(struct config, run_as_user), .max = 32,
	  .chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		   "0123456789_.-",
	  .chars_desc = "a-z A-Z 0-9 _ . -",
	  .doc = "the user that instances, functions and COMMAND "
		 "subscriptions run as when the daemon runs as root and the "
		 "file names runAsUser but not instanceUids, or instanceUids "
		 "is \"\"; \"\" keeps root" },
	{ .name = "instanceUids", .type = FIELD_CUSTOM,
	  FIELD_AT(struct config, instance_uids),
	  .parse = parse_instance_uids,
	  .doc = "\"LO-HI\": run as root, each local deployment's "
		 "instances, each user function's programs and each COMMAND "
		 "subscription's command run as a uid and gid of their "
		 "owner's own from this range; \"\": as runAsUser" },
	FIELD_END
};

const struct field *config_field_table(void)
{
	return config_fields;
}

int config_load(const char *path, struct config *cfg, char *diag,
		size_t diagsz)
{
	json_error_t jerr;
	json_t *root;
	struct fault f;
	struct config next = *cfg;
	uint64_t seen = 0;
	int rc = MDS_E_INVAL;

	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		mds_diag(diag, diagsz, "%s:%d:%d: %s", path, jerr.line,
			 jerr.column, jerr.text);
		return jerr.line <= 0 && jerr.position == 0 ? MDS_E_IO
							    : MDS_E_PARSE;
	}
	if (!json_is_object(root)) {
		mds_diag(diag, diagsz, "%s: the configuration must be a JSON "
			 "object", path);
		goto out;
	}
	rc = fields_parse(config_fields, root, &next, "", &seen, &f);
	if (rc != 0) {
		mds_diag(diag, diagsz, "%s: %s", path, f.message);
		goto out;
	}
	/* A default shape the file does not name follows the ladder; one it
	 * names must be on it. */
	if (shape_find(&next.shapes, next.default_shape) == NULL) {
		if (fields_given(config_fields, seen, "defaultShape")) {
			mds_diag(diag, diagsz, "%s: defaultShape '%s' is not "
				 "in shapes", path, next.default_shape);
			rc = MDS_E_INVAL;
			goto out;
		}
		snprintf(next.default_shape, sizeof(next.default_shape), "%s",
			 next.shapes.v[0].name);
	}
	next.oci.enabled = fields_given(config_fields, seen, "oci");
	/* A user named in the file is an explicit choice for instances too,
	 * unless the file names a range as well. */
	next.instances_as_user =
		fields_given(config_fields, seen, "runAsUser") &&
		!fields_given(config_fields, seen, "instanceUids");
	if (next.oci.flex.shape[0] && next.oci.shapes.n > 0) {
		mds_diag(diag, diagsz, "%s: oci.flex and oci.shapes both set; "
			 "give one ladder", path);
		rc = MDS_E_INVAL;
		goto out;
	}
	if (next.oci.flex.shape[0]) {
		struct shape_ladder l;
		struct oci_flex fl = {
			.shape = next.oci.flex.shape,
			.ocpus_min = next.oci.flex.ocpus_min,
			.ocpus_max = next.oci.flex.ocpus_max,
			.memory_gb_min = next.oci.flex.memory_gb_min,
			.memory_gb_max = next.oci.flex.memory_gb_max,
			.steps = next.oci.flex.steps,
		};
		char why[256];

		rc = oci_shapes_flex(&l, &fl, why, sizeof(why));
		if (rc != 0) {
			mds_diag(diag, diagsz, "%s: oci.%s", path, why);
			goto out;
		}
	}
	*cfg = next;
out:
	json_decref(root);
	return rc;
}
