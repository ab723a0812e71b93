"""Least privilege for instances: run as root, the daemon starts them as
their deployment's own uid (instanceUids; programs of functions and COMMAND
subscriptions as their function's or subscription's own uid), inside their
cgroup, with no
descriptor of the daemon's left open and a clean environment: PATH, HOME,
LANG, what the deployment sets and mdscale's own variables. The daemon's
token file and database are out of their reach."""
import errno
import os
import pwd
import shutil
import tempfile
import unittest

from harness import BIN, INSTANCE_USER, Daemon, model_command, wait_for

# What the instance reports about itself before it execs the model server:
# the shell's own descriptors (listed by a child, first, before the shell
# opens any of its own for redirections), its environment as it was given, and
# whether it can read the daemon's files.
REPORT = r"""
ls /proc/$$/fd > "$OUT/fds"
{
  tr '\0' '\n' < /proc/$$/environ | sed 's/^/ENV /'
  for f in "$DATA/token" "$DATA/mdscale.db"; do
    if cat "$f" >/dev/null 2>&1; then echo "READ $f"; else echo "DENIED $f"; fi
  done
  if ls "$DATA" >/dev/null 2>&1; then echo "LISTED"; else echo "UNLISTED"; fi
} > "$OUT/report.tmp" 2>&1
mv "$OUT/report.tmp" "$OUT/report"
"""


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def open_files(pid):
    """What each descriptor of pid above 2 points at."""
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        if int(fd) > 2:
            try:
                out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except FileNotFoundError:
                pass
    return out


def status(pid, task=None):
    """The ids, capability sets and NoNewPrivs of /proc/PID/status (of one
    thread with task)."""
    out = {}
    path = ("/proc/%d/status" % pid if task is None
            else "/proc/%d/task/%s/status" % (pid, task))
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups"):
                out[k] = v.split()
            elif k.startswith("Cap"):
                out[k] = int(v, 16)
            elif k == "NoNewPrivs":
                out[k] = int(v)
    return out


# What the daemon keeps when it runs as root (docs/security.md): CAP_KILL,
# CAP_SETGID and CAP_SETUID, bits 5, 6 and 7.
KEPT = (1 << 5) | (1 << 6) | (1 << 7)
# The capability lines of /proc/PID/status, as a program reports them.
CAPS = r"""grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/$$/status"""


def caps_of(text):
    """The capability lines a program reported, as numbers."""
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k.startswith("Cap"):
            out[k] = int(v, 16)
        elif k == "NoNewPrivs":
            out[k] = int(v)
    return out


@unittest.skipUnless(os.geteuid() == 0, "needs root to switch users")
class PrivilegesTest(unittest.TestCase):
    def setUp(self):
        self.out = tempfile.mkdtemp(prefix="mdscale-priv-")
        self.addCleanup(shutil.rmtree, self.out, True)
        os.chmod(self.out, 0o1777)
        # A descriptor the daemon inherits without close-on-exec, and
        # variables in its environment: none may reach an instance.
        self.leak = open(os.path.join(self.out, "daemon-only"), "w")
        self.addCleanup(self.leak.close)
        self.d = Daemon(env={"DAEMON_ONLY_SECRET": "do-not-pass",
                             "LANG": "C.UTF-8"},
                        pass_fds=(self.leak.fileno(),)).start()
        self.addCleanup(self.d.cleanup)

    def test_instance_runs_unprivileged_with_nothing_inherited(self):
        dep = self.d.create(displayName="least",
                            command=REPORT + model_command(),
                            environment={"DATA": self.d.data_dir,
                                         "OUT": self.out,
                                         "GREETING": "hello"})["id"]
        self.d.wait_state(dep, "ACTIVE")
        report = wait_for("the instance's report",
                          lambda: read(os.path.join(self.out, "report")))
        inst = self.d.get(dep)["instances"][0]

        # The model server itself runs as the deployment's own uid (the
        # default instanceUids), all four ids, with the group of the same
        # number only.
        st = status(inst["pid"])
        uid = self.d.get(dep)["instanceUid"]
        self.assertTrue(60000 <= uid <= 60999, uid)
        self.assertEqual(st["Uid"], [str(uid)] * 4, st)
        self.assertEqual(st["Gid"], [str(uid)] * 4, st)
        self.assertEqual(st["Groups"], [str(uid)], st)
        # No capability at all, none to gain by an exec, and a bounding
        # set no larger than the daemon's.
        self.assertEqual((st["CapInh"], st["CapPrm"], st["CapEff"],
                          st["CapAmb"]), (0, 0, 0, 0), st)
        self.assertEqual(st["NoNewPrivs"], 1, st)
        self.assertEqual(st["CapBnd"] & ~KEPT, 0, st)

        lines = report.splitlines()
        # The shell had stdin, stdout and stderr only (dash keeps its own
        # descriptors from 10 up); the model server has nothing the daemon
        # has open, the descriptor the daemon inherited least of all.
        fds = sorted(int(x) for x in read(os.path.join(self.out,
                                                        "fds")).split())
        self.assertEqual([x for x in fds if x < 10], [0, 1, 2], fds)
        self.assertNotIn(self.leak.fileno(), fds)
        mine = open_files(inst["pid"])
        self.assertNotIn(self.leak.name, mine.values())
        # (Names that are the same for any two processes aside: a pipe, a
        # socket or a file open in both is shared.)
        shared = {f for f in set(mine.values()) &
                  set(open_files(self.d.proc.pid).values())
                  if not f.startswith("anon_inode:") and f != "/dev/null"}
        self.assertEqual(shared, set(), mine)

        env = dict(l[4:].split("=", 1) for l in lines
                   if l.startswith("ENV "))
        self.assertEqual(sorted(env), sorted([
            "PATH", "HOME", "LANG", "DATA", "OUT", "GREETING", "PORT",
            "MDSCALE_DEPLOYMENT_ID", "MDSCALE_INSTANCE_ID", "MDSCALE_SHAPE",
            "MDSCALE_CPUS", "MDSCALE_MEMORY_BYTES"]), report)
        self.assertEqual(env["HOME"], "/")  # no user of the system
        self.assertEqual(env["LANG"], "C.UTF-8")
        self.assertEqual(env["GREETING"], "hello")
        self.assertEqual(env["MDSCALE_DEPLOYMENT_ID"], dep)
        self.assertEqual(env["PORT"], str(inst["port"]))

        for name in ("token", "mdscale.db"):
            path = os.path.join(self.d.data_dir, name)
            self.assertIn("DENIED " + path, lines, report)
            self.assertTrue(os.path.exists(path), path)
        self.assertIn("UNLISTED", lines, report)

        # It still serves, from its cgroup, through the gateway.
        r = self.d.gw("GET", "/%s/health" % dep)
        self.assertEqual(r.status, 200, r)

    def program_report(self, text):
        """The user, descriptors and environment a program reported."""
        lines = text.splitlines()
        ids = dict(l.split(" ", 1) for l in lines
                   if l.startswith(("UID ", "GID ")))
        fds = [int(x) for l in lines if l.startswith("FDS ")
               for x in l[4:].split()]
        env = dict(l[4:].split("=", 1) for l in lines
                   if l.startswith("ENV "))
        return ids, fds, env

    def check_program(self, text, uid):
        """A program's report: it ran as uid (and the gid of the same
        number), its own (instanceUids), with nothing inherited."""
        ids, fds, env = self.program_report(text)
        self.assertEqual(ids, {"UID": str(uid), "GID": str(uid)}, text)
        # stdin, stdout and stderr are the daemon's pipes; dash's own
        # descriptors are from 10 up.
        self.assertEqual([x for x in fds if x < 10], [0, 1, 2], text)
        self.assertNotIn(self.leak.fileno(), fds)
        self.assertEqual(sorted(env), ["HOME", "LANG", "PATH"], text)
        self.assertEqual(env["HOME"], "/")  # no user of the system
        self.assertIn("DENIED", text)
        self.assertNotIn("READ ", text)
        caps = caps_of(text)
        self.assertEqual((caps["CapInh"], caps["CapPrm"], caps["CapEff"],
                          caps["CapAmb"]), (0, 0, 0, 0), text)
        self.assertEqual(caps["NoNewPrivs"], 1, text)
        self.assertEqual(caps["CapBnd"] & ~KEPT, 0, text)

    def test_functions_and_command_subscriptions_run_unprivileged(self):
        script = os.path.join(self.out, "report.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\n"
                    # With an argument, the report goes to that file.
                    "if [ -n \"$1\" ]; then cat > /dev/null;"
                    " exec > \"$1.tmp\" 2>&1; fi\n"
                    "ls /proc/$$/fd > /tmp/.mdscale-fds-$$\n"
                    "echo \"FDS $(tr '\\n' ' ' < /tmp/.mdscale-fds-$$)\"\n"
                    "rm -f /tmp/.mdscale-fds-$$\n"
                    "echo \"UID $(id -u)\"; echo \"GID $(id -g)\"\n"
                    "tr '\\0' '\\n' < /proc/$$/environ | sed 's/^/ENV /'\n"
                    + CAPS + "\n"
                    "cat %s/token >/dev/null 2>&1 && echo READ token"
                    " || echo DENIED token\n"
                    "if [ -n \"$1\" ]; then mv \"$1.tmp\" \"$1\"; fi\n"
                    % self.d.data_dir)
        os.chmod(script, 0o755)
        r = self.d.api("POST", "/v1/functions", {"name": "whoami",
                                                 "command": [script]})
        self.assertEqual(r.status, 201, r)
        uid = r.json["runUid"]
        r = self.d.api("POST", "/v1/functions/whoami/invoke", {})
        self.assertEqual(r.status, 200, r)
        self.check_program(r.json["output"], uid)

        # A COMMAND subscription: its output goes to the log, so the
        # script writes its report to a file.
        report = os.path.join(self.out, "sub-report")
        t = self.d.api("POST", "/v1/topics", {"name": "priv"}).json
        r = self.d.api("POST", "/v1/subscriptions", {
            "topicId": t["topicId"], "protocol": "COMMAND",
            "command": [script, report]})
        self.assertEqual(r.status, 201, r)
        self.assertNotEqual(r.json["runUid"], uid)
        uid = r.json["runUid"]
        r = self.d.api("POST", "/v1/topics/%s/messages" % t["topicId"],
                       {"hello": "world"})
        self.assertIn(r.status, (200, 202), r)
        text = wait_for("the subscription's report", lambda: read(report))
        self.check_program(text, uid)

    def daemon_caps(self, pid):
        """Each thread's capability sets and NoNewPrivs, by thread id."""
        return {t: status(pid, t) for t in os.listdir("/proc/%d/task" % pid)}

    def check_daemon_caps(self, pid):
        threads = self.daemon_caps(pid)
        # The main thread and the gateway's threads alike.
        self.assertGreaterEqual(len(threads), 2, threads)
        for tid, st in threads.items():
            self.assertEqual(st["Uid"][1], "0", st)
            self.assertEqual({k: st[k] for k in ("CapPrm", "CapEff",
                                                  "CapBnd")},
                             {"CapPrm": KEPT, "CapEff": KEPT,
                              "CapBnd": KEPT}, (tid, st))
            self.assertEqual((st["CapInh"], st["CapAmb"]), (0, 0), st)
            self.assertEqual(st["NoNewPrivs"], 1, st)

    def test_daemon_keeps_only_what_it_needs(self):
        self.check_daemon_caps(self.d.proc.pid)
        self.assertIn("running as root with the capabilities kill, setgid, "
                      "setuid alone (bounding set: kill, setgid, setuid)",
                      self.d.logs())
        # What is kept is enough: an instance starts as the user, is
        # stopped (a signal across users), and the work request succeeds.
        dep = self.d.create(displayName="kept")["id"]
        self.d.wait_state(dep, "ACTIVE")
        pid = self.d.get(dep)["instances"][0]["pid"]
        self.assertNotEqual(status(pid)["Uid"][0], "0")
        r = self.d.api("PUT", "/v1/deployments/" + dep,
                       {"instanceCount": 0})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(self.d.wait_wr(r.json["id"])["status"],
                         "SUCCEEDED")
        wait_for("the instance's end",
                 lambda: not os.path.exists("/proc/%d" % pid))

    def test_restart_adopts_and_starts_with_the_kept_set(self):
        # Instances adopted after a SIGKILL, and those started again while
        # the daemon starts, come after the drop.
        a = self.d.create(displayName="adopted")["id"]
        b = self.d.create(displayName="restarted")["id"]
        self.d.wait_state(a, "ACTIVE")
        self.d.wait_state(b, "ACTIVE")
        pa = self.d.get(a)["instances"][0]["pid"]
        pb = self.d.get(b)["instances"][0]["pid"]
        self.d.kill()
        os.killpg(pb, 9)
        wait_for("the instance's end",
                 lambda: not os.path.exists("/proc/%d" % pb))
        self.d.start()
        self.check_daemon_caps(self.d.proc.pid)
        self.assertEqual(self.d.get(a)["instances"][0]["pid"], pa)

        def restarted():
            inst = self.d.get(b)["instances"]
            return (inst[0]["pid"] if inst and inst[0]["pid"] not in
                    (None, 0, pb) and inst[0]["state"] == "READY"
                    else None)
        pid = wait_for("the instance started again", restarted, timeout=60)
        st = status(pid)
        self.assertEqual((st["CapPrm"], st["CapEff"], st["NoNewPrivs"]),
                         (0, 0, 1), st)
        self.assertEqual(st["CapBnd"] & ~KEPT, 0, st)
        # Stopping the adopted instance, which runs as another user,
        # takes CAP_KILL.
        r = self.d.api("PUT", "/v1/deployments/" + a, {"instanceCount": 0})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(self.d.wait_wr(r.json["id"])["status"],
                         "SUCCEEDED")

    def test_instances_start_under_cgroup_roots_closed_to_root(self):
        """Some hosts mount each cgroup v1 hierarchy with its root at mode
        0555: uid 0 makes a directory there only with CAP_DAC_OVERRIDE,
        which the daemon gives up once started. It makes the instances'
        parent cgroup (mdscale) before that, its own, so a deployment
        created later starts in its cgroups."""
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            roots = ["/sys/fs/cgroup"]
        else:
            roots = ["/sys/fs/cgroup/" + c for c in
                     ("cpu", "cpuacct", "memory")]
        self.d.stop()
        for root in roots:
            mode = os.stat(root).st_mode & 0o7777
            if mode != 0o555:
                os.chmod(root, 0o555)
                self.addCleanup(os.chmod, root, mode)
            try:
                os.rmdir(os.path.join(root, "mdscale"))
            except FileNotFoundError:
                pass
            except OSError as e:
                # Another mdscale's instances are in it: the parent is
                # then not made anew, but the instances' cgroups still
                # are, after the drop.
                self.assertEqual(e.errno, errno.EBUSY, e)
        self.d.start()
        for root in roots:
            st = os.stat(os.path.join(root, "mdscale"))
            self.assertEqual(st.st_uid, 0, root)
            self.assertEqual(st.st_mode & 0o700, 0o700, root)
        self.check_daemon_caps(self.d.proc.pid)
        dep = self.d.create(displayName="closed-roots")["id"]
        inst = self.d.wait_state(dep, "ACTIVE")["instances"][0]
        for root in roots:
            with open(os.path.join(root, "mdscale", inst["id"],
                                   "cgroup.procs")) as f:
                self.assertIn(str(inst["pid"]), f.read().split(), root)

    def test_data_dir_root_cannot_reach_refuses_start(self):
        # Owned by another user: root opens it at start with its full
        # powers, but could not after the drop (new logs, instance output).
        user = pwd.getpwnam(INSTANCE_USER)
        data = tempfile.mkdtemp(prefix="mdscale-priv-data-")
        self.addCleanup(shutil.rmtree, data, True)
        os.chown(data, user.pw_uid, user.pw_gid)
        d = Daemon(data_dir=data)
        self.addCleanup(d.cleanup)  # a daemon that started after all
        with self.assertRaises(AssertionError) as cm:
            d.start()
        self.assertIn("not open to root without CAP_DAC_OVERRIDE",
                      str(cm.exception))
        self.assertIn("chown -R root: " + data, str(cm.exception))
        d.log.close()

    def test_missing_user_refuses_start(self):
        d = Daemon(config={"runAsUser": "mdscale-no-such-user"})
        self.addCleanup(shutil.rmtree, d.data_dir, True)
        self.addCleanup(d.cleanup)
        with self.assertRaises(AssertionError) as cm:
            d.start()
        self.assertIn("mdscale-no-such-user", str(cm.exception))
        self.assertIn("adduser", str(cm.exception))


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"),
                     "needs root and setpriv to start a daemon as a user")
class NotRootTest(unittest.TestCase):
    """A daemon that is not root drops nothing; its instances still get
    no_new_privs and none of its ambient capabilities."""

    def test_instances_of_a_daemon_not_root_are_sealed(self):
        user = pwd.getpwnam(INSTANCE_USER)
        tmp = tempfile.mkdtemp(prefix="mdscale-priv-user-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.chmod(tmp, 0o755)
        data = os.path.join(tmp, "data")
        os.mkdir(data, 0o700)
        os.chown(data, user.pw_uid, user.pw_gid)
        # The daemon as the user, with CAP_NET_BIND_SERVICE ambient.
        wrapper = os.path.join(tmp, "as-user")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec setpriv --reuid=%d --regid=%d "
                    "--clear-groups --inh-caps=+net_bind_service "
                    "--ambient-caps=+net_bind_service %s \"$@\"\n"
                    % (user.pw_uid, user.pw_gid, os.path.abspath(BIN)))
        os.chmod(wrapper, 0o755)
        d = Daemon(data_dir=data, binary=wrapper).start()
        self.addCleanup(d.cleanup)
        bind = 1 << 10  # CAP_NET_BIND_SERVICE
        st = status(d.proc.pid)
        self.assertEqual(st["Uid"][1], str(user.pw_uid), st)
        self.assertEqual((st["CapEff"], st["CapAmb"], st["NoNewPrivs"]),
                         (bind, bind, 0), st)
        self.assertNotIn("running as root", d.logs())

        dep = d.create(displayName="sealed")["id"]
        d.wait_state(dep, "ACTIVE")
        st = status(d.get(dep)["instances"][0]["pid"])
        self.assertEqual(st["Uid"][1], str(user.pw_uid), st)
        self.assertEqual((st["CapPrm"], st["CapEff"], st["CapAmb"],
                          st["NoNewPrivs"]), (0, 0, 0, 1), st)


if __name__ == "__main__":
    unittest.main()
