/*
 * stack.c - the OCI pieces the daemon runs; see stack.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/backend.h"
#include "oci/alarms.h"
#include "oci/backend_oci.h"
#include "oci/client.h"
#include "oci/config.h"
#include "oci/ocid.h"
#include "oci/principal.h"
#include "oci/shapes.h"
#include "oci/signer.h"
#include "oci/stack.h"
#include "util/err.h"
#include "util/log.h"
#include "util/xalloc.h"

struct oci_stack {
	struct oci_signer *signer;
	struct oci_client *client;
	struct backend *backend;
	struct shape_ladder shapes;
	char *endpoint;   /* NULL: the regions' endpoints */
	void (*done)(void *arg);
	void *done_arg;
};

static void principal_ready(void *arg, int rc, const char *diag)
{
	(void)arg;
	if (rc == 0)
		log_info("oci", "signing as the instance principal");
	else
		log_error("oci", "instance principal: %s", diag);
}

static int open_signer(uv_loop_t *loop, struct httpc *http,
		       const struct config_oci *cfg, struct oci_signer **out,
		       char *diag, size_t diagsz)
{
	struct oci_instance_principal_opts ip = { 0 };

	switch (cfg->auth) {
	case CONFIG_OCI_INSTANCE_PRINCIPAL:
		ip.ca_file = cfg->ca_file[0] ? cfg->ca_file : NULL;
		return oci_signer_instance_principal(loop, http, &ip,
						     principal_ready, NULL,
						     out);
	case CONFIG_OCI_RESOURCE_PRINCIPAL:
		return oci_signer_resource_principal(out, diag, diagsz);
	default:
		return oci_signer_from_config(
			cfg->config_file[0] ? cfg->config_file : NULL,
			cfg->profile[0] ? cfg->profile : NULL, out, diag,
			diagsz);
	}
}

/* The ladder: a Flex one, the configured shapes, or the recipe's. */
static int make_ladder(const struct config_oci *cfg, struct shape_ladder *l,
		       char *diag, size_t diagsz)
{
	struct oci_flex fl = {
		.shape = cfg->flex.shape, .ocpus_min = cfg->flex.ocpus_min,
		.ocpus_max = cfg->flex.ocpus_max,
		.memory_gb_min = cfg->flex.memory_gb_min,
		.memory_gb_max = cfg->flex.memory_gb_max,
		.steps = cfg->flex.steps,
	};

	if (cfg->flex.shape[0])
		return oci_shapes_flex(l, &fl, diag, diagsz);
	if (cfg->shapes.n > 0)
		*l = cfg->shapes;
	else
		oci_shapes_default(l);
	return 0;
}

int oci_stack_open(uv_loop_t *loop, struct httpc *http,
		   const struct config_oci *cfg, struct oci_stack **out,
		   char *diag, size_t diagsz)
{
	struct oci_stack *st = xcalloc(1, sizeof(*st));
	struct oci_client_opts co = { 0 };
	struct backend_oci_env env = { 0 };
	int rc;

	*out = NULL;
	rc = make_ladder(cfg, &st->shapes, diag, diagsz);
	if (rc == 0)
		rc = open_signer(loop, http, cfg, &st->signer, diag, diagsz);
	if (rc != 0) {
		free(st);
		return rc;
	}
	co.ca_file = cfg->ca_file[0] ? cfg->ca_file : NULL;
	st->client = oci_client_new(loop, http, st->signer, &co);
	env = (struct backend_oci_env){
		.loop = loop, .client = st->client,
		.region = oci_signer_region(st->signer),
		.endpoint = cfg->endpoint[0] ? cfg->endpoint : NULL,
		.shapes = &st->shapes, .metrics_ms = cfg->metrics_s * 1000,
	};
	rc = backend_oci_new(&env, &st->backend, diag, diagsz);
	if (rc != 0) {
		oci_client_free(st->client);
		oci_signer_free(st->signer);
		free(st);
		return rc;
	}
	st->endpoint = env.endpoint ? xstrdup(env.endpoint) : NULL;
	log_info("oci", "oci backend: %s signer, region %s%s%s",
		 oci_signer_kind(st->signer), oci_signer_region(st->signer),
		 env.endpoint ? ", endpoint " : "",
		 env.endpoint ? env.endpoint : "");
	*out = st;
	return 0;
}

struct backend *oci_stack_backend(struct oci_stack *st)
{
	return st->backend;
}

struct oci_client *oci_stack_client(struct oci_stack *st)
{
	return st->client;
}

static void alarm_logged(void *arg, int rc, const char *alarm_id,
			 int created, const char *diag)
{
	char *what = arg;

	if (rc != 0)
		log_warn("oci", "%s: %s", what, diag);
	else
		log_info("oci", "%s: alarm %s%s", what, alarm_id,
			 created ? " created" : "");
	free(what);
}

/* The Monitoring base URL for ref's region; a new string or NULL. */
static char *monitoring_url(struct oci_stack *st, const char *ref)
{
	char region[64], diag[256];

	if (backend_oci_check_ref(ref, oci_signer_region(st->signer), region,
				  diag, sizeof(diag)) != 0) {
		log_warn("oci", "scale-down alarm: %s", diag);
		return NULL;
	}
	return oci_endpoint("telemetry", region, st->endpoint);
}

void oci_stack_low_alarm(void *arg, const char *ref, const char *title,
			 const char *firing_alarm_id, const char *query,
			 const char *body)
{
	struct oci_stack *st = arg;
	struct oci_alarm_want w = {
		.title = title, .deployment_id = ref,
		.firing_alarm_id = firing_alarm_id, .query = query,
		.body = body,
	};
	char *base = monitoring_url(st, ref);
	char *what = xasprintf("%s for %s in OCI Monitoring", title, ref);

	if (!base || oci_alarm_ensure(st->client, base, &w, alarm_logged,
				      what) != 0) {
		log_warn("oci", "%s: not requested", what);
		free(what);
	}
	free(base);
}

void oci_stack_delete_alarm(void *arg, const char *alarm_id)
{
	struct oci_stack *st = arg;
	struct ocid id;
	char *base, *what;

	/* An alarm's OCID names its region. */
	if (ocid_parse(alarm_id, &id, NULL, 0) != 0) {
		log_warn("oci", "delete alarm: %s is not an OCID", alarm_id);
		return;
	}
	base = oci_endpoint("telemetry",
			    id.region[0] ? id.region
					 : oci_signer_region(st->signer),
			    st->endpoint);
	what = xasprintf("delete %s in OCI Monitoring", alarm_id);
	if (oci_alarm_delete(st->client, base, alarm_id, alarm_logged,
			     what) != 0) {
		log_warn("oci", "%s: not requested", what);
		free(what);
	}
	free(base);
}

static void backend_closed(void *arg)
{
	struct oci_stack *st = arg;
	void (*done)(void *) = st->done;
	void *done_arg = st->done_arg;

	/* The client's calls were the backend's; none is left. */
	oci_client_free(st->client);
	oci_signer_free(st->signer);
	free(st->endpoint);
	free(st);
	if (done)
		done(done_arg);
}

void oci_stack_close(struct oci_stack *st, void (*done)(void *arg),
		     void *arg)
{
	if (!st) {
		if (done)
			done(arg);
		return;
	}
	st->done = done;
	st->done_arg = arg;
	st->backend->ops->close(st->backend, backend_closed, st);
}
