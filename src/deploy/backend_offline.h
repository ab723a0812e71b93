/*
 * backend_offline.h - the place holder of a backend this daemon does not
 * have.
 *
 * A deployment is stored with the name of its backend. When the daemon
 * starts without that backend (Kubernetes credentials that are absent or
 * do not load, no "oci" section), the deployments module keeps such a
 * deployment on an offline backend of the same name: it stays listed and
 * readable, says why in its lifecycleDetails, and refuses every change,
 * while its record stays in the store as it was, so that a daemon started
 * with the backend takes it up again.
 *
 * An offline backend's caps are BACKEND_CAP_PLATFORM | BACKEND_CAP_OFFLINE
 * and it has no op but close: the engine checks BACKEND_CAP_OFFLINE before
 * it asks anything of a platform backend.
 */
#ifndef MDS_BACKEND_OFFLINE_H
#define MDS_BACKEND_OFFLINE_H

#include "deploy/backend.h"

#define BACKEND_OFFLINE_NAME_MAX 32  /* a backend's name, with its NUL */
#define BACKEND_OFFLINE_WHY_MAX 256  /* the reason, with its NUL */

/* Returns a new offline backend named name, unavailable because of why
 * (both copied, cut to the maximums above). Free it with its ops->close. */
struct backend *backend_offline_new(const char *name, const char *why);

/* Returns why b is unavailable (owned by b), or NULL when b is not an
 * offline backend. */
const char *backend_offline_why(const struct backend *b);

#endif
