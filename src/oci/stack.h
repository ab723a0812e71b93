/*
 * stack.h - the OCI pieces the daemon runs, made from the configuration:
 * a signer (API key, instance principal or resource principal), the
 * client, and the oci backend. serve.c opens it when the configuration
 * has "oci" and hands the backend to the deployments module.
 */
#ifndef MDS_OCI_STACK_H
#define MDS_OCI_STACK_H

#include <stddef.h>
#include <uv.h>

#include "daemon/config.h"

struct backend;
struct httpc;
struct oci_client;
struct oci_stack;

/*
 * Opens the stack on loop, sending through http (borrowed, must outlive
 * the stack). An API key is read and checked now; an instance principal's
 * token comes later (requests fail with MDS_E_UNAUTH until it has).
 * Returns 0 and *out, or a negative MDS_E_* with diag naming what to fix
 * (see config.h and principal.h).
 */
int oci_stack_open(uv_loop_t *loop, struct httpc *http,
		   const struct config_oci *cfg, struct oci_stack **out,
		   char *diag, size_t diagsz);

/* The oci backend; owned by the stack. */
struct backend *oci_stack_backend(struct oci_stack *st);

/* The client (for OCI Monitoring alarms); owned by the stack. */
struct oci_client *oci_stack_client(struct oci_stack *st);

/*
 * The scale-down alarms of an oci deployment, in OCI Monitoring (see
 * alarms.h): the autoscale function's platform alarm calls, with st as
 * their argument. Both start the work and log its outcome.
 */
void oci_stack_low_alarm(void *st, const char *ref, const char *title,
			 const char *firing_alarm_id, const char *query,
			 const char *body);
void oci_stack_delete_alarm(void *st, const char *alarm_id);

/* Closes the backend, the client and the signer, then calls done(arg)
 * (may be NULL) once their handles are closed. NULL is accepted. */
void oci_stack_close(struct oci_stack *st, void (*done)(void *arg),
		     void *arg);

#endif
