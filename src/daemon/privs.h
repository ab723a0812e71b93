/*
 * privs.h - what the daemon keeps of root's powers, and what an instance
 * gives up before it execs. The one module that touches capabilities
 * (libcap-ng) and prctl().
 *
 * Run as root, the daemon needs root's full powers only while it starts
 * (reading files, making its data directory, binding ports below 1024).
 * For the rest of its life it keeps PRIVS_KEPT_NAMES alone, in its
 * effective, permitted and bounding sets, with no inheritable or ambient
 * capability and no_new_privs set:
 *
 * - CAP_SETUID, CAP_SETGID: the instance launcher and the programs of
 *   functions and COMMAND subscriptions switch to their owner's own uid
 *   (instanceUids) or to runAsUser (setgroups, setgid, setuid);
 * - CAP_KILL: instances and programs run as other users, so signalling them
 *   (a stop, a timeout, the kill(pid, 0) that tells whether an adopted
 *   instance still runs) needs it.
 *
 * Cgroups need no capability: the daemon and the launcher stay uid 0,
 * which owns every cgroup directory and control file it writes (cgroup v1
 * allows moving any task to a writer whose euid is 0; v2 checks write
 * access to cgroup.procs). The instances' parent cgroup is made before the
 * drop (backend_local.h): a hierarchy's root may be open to uid 0 only
 * with CAP_DAC_OVERRIDE. Files the daemon opens after start-up (its data
 * directory, certificates read again on SIGHUP) must be open to uid 0
 * without CAP_DAC_OVERRIDE: owned by root, or readable by others.
 *
 * Capabilities belong to a thread: privs_drop() must run before the daemon
 * starts any thread, and refuses otherwise.
 */
#ifndef MDS_PRIVS_H
#define MDS_PRIVS_H

#include <stddef.h>

/* What the daemon keeps, as shown in its log and in docs/security.md. */
#define PRIVS_KEPT_NAMES "CAP_SETUID, CAP_SETGID, CAP_KILL"

/* privs_drop() flag: keep CAP_NET_BIND_SERVICE as well, for sockets still
 * to be bound. */
#define PRIVS_KEEP_BIND 1u

/*
 * When the process runs as root (euid 0), reduces its capabilities to
 * PRIVS_KEPT_NAMES (plus CAP_NET_BIND_SERVICE with PRIVS_KEEP_BIND), its
 * bounding set to PRIVS_KEPT_NAMES, clears its inheritable and ambient
 * sets and sets no_new_privs; children inherit all of it. The first call
 * needs CAP_SETPCAP (root's full set); a later one can only take
 * CAP_NET_BIND_SERVICE away. Without PRIVS_KEEP_BIND it logs, once, the
 * capabilities kept. Not root: does nothing and returns 0. Returns 0, or
 * MDS_E_SYS with the reason in diag (nothing should go on then).
 */
int privs_drop(unsigned int flags, char *diag, size_t diagsz);

/*
 * For the instance launcher, after it switched users and before it execs:
 * sets no_new_privs (no set-user-ID program or file capability gives the
 * instance more than it has) and clears the ambient set (what a daemon
 * that is not root was given does not reach its instances). Returns 0, or
 * MDS_E_SYS with the reason in diag.
 */
int privs_seal_exec(char *diag, size_t diagsz);

#endif
