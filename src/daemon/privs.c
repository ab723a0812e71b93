/* privs.c - the capabilities the daemon keeps; see privs.h. */
#include <cap-ng.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "daemon/privs.h"
#include "util/err.h"
#include "util/log.h"

/* PRIVS_KEPT_NAMES, as numbers. */
static const unsigned int kept[] = { CAP_SETUID, CAP_SETGID, CAP_KILL };
#define NKEPT (sizeof(kept) / sizeof(kept[0]))

/* The number of threads of this process; -1 if /proc cannot tell. */
static int count_threads(void)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (dir == NULL)
		return -1;
	while ((e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

/* Whether the bounding set read last holds a capability not kept. */
static int bounds_beyond_kept(void)
{
	for (unsigned int c = 0; c <= CAP_LAST_CAP; c++) {
		int keep = 0;

		for (size_t i = 0; i < NKEPT; i++)
			keep |= kept[i] == c;
		if (!keep && capng_have_capability(CAPNG_BOUNDING_SET, c) == 1)
			return 1;
	}
	return 0;
}

/* Logs the capabilities in effect now, as the kernel reports them. */
static void log_kept(void)
{
	char *eff, *bnd;

	if (capng_get_caps_process() != 0)
		return;
	eff = capng_print_caps_text(CAPNG_PRINT_BUFFER, CAPNG_EFFECTIVE);
	bnd = capng_print_caps_text(CAPNG_PRINT_BUFFER, CAPNG_BOUNDING_SET);
	log_info("serve", "running as root with the capabilities %s alone "
		 "(bounding set: %s); no_new_privs set",
		 eff != NULL ? eff : "?", bnd != NULL ? bnd : "?");
	free(eff);
	free(bnd);
}

int privs_drop(unsigned int flags, char *diag, size_t diagsz)
{
	capng_select_t apply = CAPNG_SELECT_CAPS | CAPNG_SELECT_AMBIENT;
	int bind = (flags & PRIVS_KEEP_BIND) != 0, threads, rc;
	int have[NKEPT], have_bind;

	if (geteuid() != 0)
		return 0;
	threads = count_threads();
	if (threads != 1) {
		mds_diag(diag, diagsz, "cannot drop root's capabilities: %d "
			 "threads run already (capabilities belong to a "
			 "thread)", threads);
		return MDS_E_SYS;
	}
	if (capng_get_caps_process() != 0) {
		mds_diag(diag, diagsz, "cannot read my capabilities: %s",
			 strerror(errno));
		return MDS_E_SYS;
	}
	/* Only what is permitted now can be kept: a root started with less
	 * (a container's set) keeps less. */
	for (size_t i = 0; i < NKEPT; i++)
		have[i] = capng_have_capability(CAPNG_PERMITTED, kept[i]) == 1;
	have_bind = bind && capng_have_capability(CAPNG_PERMITTED,
						  CAP_NET_BIND_SERVICE) == 1;
	if (bounds_beyond_kept()) {
		if (capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP) == 1)
			apply |= CAPNG_SELECT_BOUNDS;
		else
			log_warn("serve", "without CAP_SETPCAP the bounding "
				 "set stays as it is; no_new_privs still "
				 "keeps children to the capabilities kept");
	}
	capng_clear(CAPNG_SELECT_ALL);
	for (size_t i = 0; i < NKEPT; i++) {
		if (have[i])
			capng_update(CAPNG_ADD,
				     CAPNG_EFFECTIVE | CAPNG_PERMITTED,
				     kept[i]);
		capng_update(CAPNG_ADD, CAPNG_BOUNDING_SET, kept[i]);
	}
	if (have_bind)
		capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED,
			     CAP_NET_BIND_SERVICE);
	/* The bounding set goes first, while CAP_SETPCAP is still there. */
	rc = capng_apply(apply);
	if (rc != 0) {
		mds_diag(diag, diagsz, "cannot drop root's capabilities "
			 "(libcap-ng: %d): %s", rc, strerror(errno));
		return MDS_E_SYS;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		mds_diag(diag, diagsz, "cannot set no_new_privs: %s",
			 strerror(errno));
		return MDS_E_SYS;
	}
	if (!bind)
		log_kept();
	return 0;
}

int privs_seal_exec(char *diag, size_t diagsz)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		mds_diag(diag, diagsz, "cannot set no_new_privs: %s",
			 strerror(errno));
		return MDS_E_SYS;
	}
	if (capng_get_caps_process() != 0) {
		mds_diag(diag, diagsz, "cannot read my capabilities: %s",
			 strerror(errno));
		return MDS_E_SYS;
	}
	if (capng_have_capabilities(CAPNG_SELECT_AMBIENT) == CAPNG_NONE)
		return 0;
	capng_clear(CAPNG_SELECT_AMBIENT);
	if (capng_apply(CAPNG_SELECT_AMBIENT) != 0) {
		mds_diag(diag, diagsz, "cannot clear the ambient "
			 "capabilities: %s", strerror(errno));
		return MDS_E_SYS;
	}
	return 0;
}
