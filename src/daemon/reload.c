/* reload.c - see reload.h. */
#include <stdio.h>
#include <string.h>

#include "daemon/reload.h"

/* Appends ", name" (or "name" first) to the list in buf. */
static void note(char *buf, size_t size, const char *name)
{
	size_t n = strlen(buf);

	snprintf(buf + n, size - n, "%s%s", n ? ", " : "", name);
}

static int same_ladder(const struct shape_ladder *a,
		       const struct shape_ladder *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].name, b->v[i].name) != 0 ||
		    a->v[i].mcpu != b->v[i].mcpu ||
		    a->v[i].mem_bytes != b->v[i].mem_bytes)
			return 0;
	return 1;
}

/* The oci backend is made at start from its whole section. */
static int same_oci(const struct config_oci *a, const struct config_oci *b)
{
	return a->enabled == b->enabled && a->auth == b->auth &&
	       strcmp(a->config_file, b->config_file) == 0 &&
	       strcmp(a->profile, b->profile) == 0 &&
	       strcmp(a->endpoint, b->endpoint) == 0 &&
	       strcmp(a->ca_file, b->ca_file) == 0 &&
	       same_ladder(&a->shapes, &b->shapes) &&
	       strcmp(a->flex.shape, b->flex.shape) == 0 &&
	       a->flex.ocpus_min == b->flex.ocpus_min &&
	       a->flex.ocpus_max == b->flex.ocpus_max &&
	       a->flex.memory_gb_min == b->flex.memory_gb_min &&
	       a->flex.memory_gb_max == b->flex.memory_gb_max &&
	       a->flex.steps == b->flex.steps && a->metrics_s == b->metrics_s;
}

/* The live fields: copied when they differ. */
#define LIVE_FIELDS(X)                                                        \
	X(max_instances, "maxInstancesPerDeployment")                         \
	X(max_deployments, "maxDeployments")                                  \
	X(ready_timeout_s, "readyTimeoutSeconds")                             \
	X(drain_timeout_s, "drainTimeoutSeconds")                             \
	X(stop_grace_s, "stopGraceSeconds")                                   \
	X(health_interval_ms, "healthIntervalMillis")                         \
	X(max_start_attempts, "maxStartAttempts")                             \
	X(access_log, "accessLog")                                            \
	X(receiver.tolerance_s, "webhookReceiver.toleranceSeconds")          \
	X(receiver.alertmanager, "webhookReceiver.alertmanager")              \
	X(receiver.oci, "webhookReceiver.ociNotifications")

/* The scalar fields read only at start. */
#define START_FIELDS(X)                                                       \
	X(listen_port, "listen")                                              \
	X(gateway_port, "gateway")                                            \
	X(gateway_threads, "gatewayThreads")                                  \
	X(sample_ms, "sampleIntervalMillis")                                  \
	X(eval_ms, "evalIntervalMillis")                                      \
	X(metrics_max_series, "metricsMaxSeries")                             \
	X(metrics_max_string_mb, "metricsMaxStringMB")                        \
	X(log_max_file_mb, "logMaxFileMB")                                    \
	X(log_max_files, "logMaxFiles")                                       \
	X(log_retention_days, "logRetentionDays")

int reload_config(const char *path, const struct config *at_start,
		  struct config *live, char *applied,
		  size_t appliedsz, char *kept, size_t keptsz, char *diag,
		  size_t diagsz)
{
	struct config next;
	int rc;

	config_defaults(&next);
	rc = config_load(path, &next, diag, diagsz);
	if (rc != 0)
		return rc;
	applied[0] = kept[0] = '\0';
#define APPLY(field, name)                                                    \
	if (next.field != live->field) {                                      \
		live->field = next.field;                                     \
		note(applied, appliedsz, name);                               \
	}
	LIVE_FIELDS(APPLY)
#undef APPLY
#define KEEP(field, name)                                                     \
	if (next.field != at_start->field)                                    \
		note(kept, keptsz, name);
	START_FIELDS(KEEP)
#undef KEEP
	/* The string live fields; the certificates themselves are read
	 * again by the servers (serve.c). */
	if (strcmp(next.receiver.secret, live->receiver.secret) != 0) {
		memcpy(live->receiver.secret, next.receiver.secret,
		       sizeof(live->receiver.secret));
		note(applied, appliedsz, "webhookReceiver.secret");
	}
	if (memcmp(&next.tls, &live->tls, sizeof(next.tls)) != 0) {
		live->tls = next.tls;
		note(applied, appliedsz, "tls");
	}
	if (memcmp(&next.gateway_tls, &live->gateway_tls,
		   sizeof(next.gateway_tls)) != 0) {
		live->gateway_tls = next.gateway_tls;
		note(applied, appliedsz, "gatewayTls");
	}
	if (strcmp(next.listen_host, at_start->listen_host) != 0 &&
	    strstr(kept, "listen") == NULL)
		note(kept, keptsz, "listen");
	if (strcmp(next.gateway_host, at_start->gateway_host) != 0 &&
	    strstr(kept, "gateway") == NULL)
		note(kept, keptsz, "gateway");
	if (strcmp(next.default_shape, at_start->default_shape) != 0)
		note(kept, keptsz, "defaultShape");
	/* Checked to exist at start only. */
	if (strcmp(next.run_as_user, at_start->run_as_user) != 0)
		note(kept, keptsz, "runAsUser");
	if (memcmp(&next.instance_uids, &at_start->instance_uids,
		   sizeof(next.instance_uids)) != 0 ||
	    next.instances_as_user != at_start->instances_as_user)
		note(kept, keptsz, "instanceUids");
	if (!same_ladder(&next.shapes, &at_start->shapes))
		note(kept, keptsz, "shapes");
	if (!same_oci(&next.oci, &at_start->oci))
		note(kept, keptsz, "oci");
	if (applied[0] == '\0')
		snprintf(applied, appliedsz, "nothing");
	return 0;
}
