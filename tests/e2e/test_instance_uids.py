"""One uid per deployment (config instanceUids): run as root, each local
deployment's instances run as a uid and gid of their own from the range, so
an instance of one deployment can neither read another's environment
(/proc/PID/environ, secrets included) nor signal its processes. The uid is
kept with the deployment (across restarts), freed when it is deleted, and a
create that finds the range full is refused, changing nothing. User
functions and COMMAND subscriptions get a uid of their own from the same
range, the same way."""
import grp
import json
import os
import pwd
import shutil
import signal
import tempfile
import threading
import unittest

from harness import INSTANCE_USER, Daemon, model_command, wait_for
from test_apply import yaml_deployment
from test_privileges import read, status

# A range no user or group of a test machine has (checked in setUp).
LO, HI = 64100, 64102

# The instance of the prober: once told a pid (the file "target"), it tries
# to read that process's environment and to signal it, and reports, along
# with whether it can read its own environment (it can: the check works).
PROBE = r"""
(
  while [ ! -s "$OUT/target" ]; do sleep 0.1; done
  T=$(cat "$OUT/target")
  {
    if tr '\0' '\n' < /proc/$$/environ | grep -q '^OUT='; then
      echo "SELF READ"; else echo "SELF DENIED"; fi
    if tr '\0' '\n' < /proc/$T/environ > "$OUT/stolen" 2>/dev/null &&
       [ -s "$OUT/stolen" ]; then
      echo "ENVIRON READ"; else echo "ENVIRON DENIED"; fi
    if kill -0 $T 2>/dev/null; then echo "SIGNAL SENT"; else
      echo "SIGNAL DENIED"; fi
    if kill -TERM $T 2>/dev/null; then echo "TERM SENT"; else
      echo "TERM DENIED"; fi
  } > "$OUT/probe.tmp" 2>&1
  mv "$OUT/probe.tmp" "$OUT/probe"
) &
"""


def ids_of(pid):
    """The real uid and gid of pid, and its groups."""
    st = status(pid)
    return int(st["Uid"][0]), int(st["Gid"][0]), st["Groups"]


def in_system(ident):
    """Whether a user or group of this system has the id."""
    try:
        pwd.getpwuid(ident)
        return True
    except KeyError:
        pass
    try:
        grp.getgrgid(ident)
        return True
    except KeyError:
        return False


@unittest.skipUnless(os.geteuid() == 0, "needs root to switch users")
class InstanceUidsTest(unittest.TestCase):
    def setUp(self):
        for i in range(LO, HI + 1):
            if in_system(i):
                self.skipTest("id %d belongs to this system" % i)
        self.out = tempfile.mkdtemp(prefix="mdscale-uids-")
        self.addCleanup(shutil.rmtree, self.out, True)
        os.chmod(self.out, 0o1777)
        self.d = Daemon(config={"instanceUids": "%d-%d" % (LO, HI)}).start()
        self.addCleanup(self.d.cleanup)

    def pid_of(self, dep):
        return self.d.get(dep)["instances"][0]["pid"]

    def test_instance_cannot_read_or_signal_another_deployment(self):
        victim = self.d.create(
            displayName="victim",
            environment={"API_KEY": {"value": "s3cret-value",
                                     "secret": True}})["id"]
        prober = self.d.create(displayName="prober",
                               command=PROBE + model_command(),
                               environment={"OUT": self.out})["id"]
        self.d.wait_state(victim, "ACTIVE")
        self.d.wait_state(prober, "ACTIVE")
        vpid, ppid = self.pid_of(victim), self.pid_of(prober)

        with open(os.path.join(self.out, "target"), "w") as f:
            f.write("%d\n" % vpid)
        report = wait_for("the probe's report",
                          lambda: read(os.path.join(self.out, "probe")))
        lines = report.splitlines()
        self.assertIn("SELF READ", lines, report)
        self.assertIn("ENVIRON DENIED", lines, report)
        self.assertIn("SIGNAL DENIED", lines, report)
        self.assertIn("TERM DENIED", lines, report)
        self.assertNotIn("s3cret-value", read(os.path.join(self.out,
                                                           "stolen")) or "")

        # Each runs as the uid the API shows, the gid of the same number
        # and no other group, in the range; the two differ.
        vuid = self.d.get(victim)["instanceUid"]
        puid = self.d.get(prober)["instanceUid"]
        self.assertNotEqual(vuid, puid)
        for pid, uid in ((vpid, vuid), (ppid, puid)):
            self.assertTrue(LO <= uid <= HI, uid)
            st = status(pid)
            self.assertEqual(st["Uid"], [str(uid)] * 4, st)
            self.assertEqual(st["Gid"], [str(uid)] * 4, st)
            self.assertEqual(st["Groups"], [str(uid)], st)

        # The victim lives on, the same process, and serves.
        self.assertEqual(self.pid_of(victim), vpid)
        self.assertTrue(os.path.exists("/proc/%d" % vpid))
        self.assertEqual(self.d.gw("GET", "/%s/health" % victim).status,
                         200)

    def test_uid_kept_across_restart_freed_on_delete_refused_when_full(self):
        a = self.d.create(displayName="a")["id"]
        self.d.wait_state(a, "ACTIVE")
        ua = self.d.get(a)["instanceUid"]
        self.assertEqual(ua, LO)
        self.assertEqual(ids_of(self.pid_of(a))[0], ua)

        # Kept across a SIGKILL and a clean restart: the adopted instance,
        # and one started after, run as the same uid.
        self.d.kill()
        self.d.start()
        self.assertEqual(self.d.get(a)["instanceUid"], ua)
        self.d.stop()
        self.d.start()
        self.d.wait_state(a, "ACTIVE")
        self.assertEqual(self.d.get(a)["instanceUid"], ua)
        # The deployment reads ACTIVE as stored; its instance, started
        # again by recovery, may still be starting. A work request waits
        # for the instances it starts only, so wait for this one first.
        wait_for("the recovered instance", lambda: [
            i for i in self.d.get(a)["instances"] if i["state"] == "READY"])
        wr = self.d.update(a, instanceCount=2)
        self.assertEqual(self.d.wait_wr(wr["id"])["status"], "SUCCEEDED")
        insts = [i for i in self.d.get(a)["instances"]
                 if i["state"] == "READY"]
        self.assertEqual(len(insts), 2, insts)
        for i in insts:
            self.assertEqual(ids_of(i["pid"])[:2], (ua, ua))

        # The others get the next ones, until the range is full.
        b = self.d.create(displayName="b")["id"]
        c = self.d.create(displayName="c")["id"]
        self.assertEqual(self.d.get(b)["instanceUid"], LO + 1)
        self.assertEqual(self.d.get(c)["instanceUid"], LO + 2)
        r = self.d.api("POST", "/v1/deployments",
                       {"displayName": "d", "command": model_command(),
                        "instanceShapeName": "local.xs"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["code"], "LimitExceeded", r)
        self.assertIn("instanceUids %d-%d" % (LO, HI), r.json["message"])
        names = [x["displayName"] for x in
                 self.d.api("GET", "/v1/deployments").json["items"]]
        self.assertEqual(sorted(names), ["a", "b", "c"])

        # A deleted deployment's uid is given out again, once its
        # instances are gone; a SIGKILL in between changes nothing.
        pids = [i["pid"] for i in insts]
        self.d.wait_state(b, "ACTIVE")
        bpid = self.pid_of(b)
        self.assertEqual(self.d.delete(b)["status"], "SUCCEEDED")
        self.assertFalse(os.path.exists("/proc/%d" % bpid))
        self.d.kill()
        self.d.start()
        e = self.d.create(displayName="e")["id"]
        self.assertEqual(self.d.get(e)["instanceUid"], LO + 1)
        self.d.wait_state(e, "ACTIVE")
        self.assertEqual(ids_of(self.pid_of(e))[0], LO + 1)
        self.assertEqual(self.d.get(a)["instanceUid"], ua)
        self.assertEqual([i["pid"] for i in self.d.get(a)["instances"]
                          if i["state"] == "READY"], pids)

    def test_apply_past_the_range_changes_nothing(self):
        """`apply` of a file that updates a deployment and creates more
        than the range has uids for: each create passes the dry run
        alone, the real creates run out; the creations are undone and,
        made before any update, the update was never made."""
        a = self.d.create(displayName="a", freeformTags={"v": "one"})["id"]
        self.d.wait_state(a, "ACTIVE")
        text = "---\n".join(
            [yaml_deployment("a", 1, {"v": "two"})] +
            [yaml_deployment(n, 1) for n in ("n1", "n2", "n3")])
        p = self.d.cli("apply", "-f", "-", input=text)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn("instanceUids %d-%d" % (LO, HI), p.stderr)
        self.assertEqual(self.d.get(a)["freeformTags"], {"v": "one"})

        def live():
            return sorted(
                x["displayName"] for x in
                self.d.api("GET", "/v1/deployments").json["items"]
                if x["lifecycleState"] not in ("DELETING", "DELETED"))
        wait_for("the creations undone", lambda: live() == ["a"])
        # With room for all of them, the same file applies.
        wait_for("their uids free again", lambda: len([
            x for x in self.d.api("GET", "/v1/deployments").json["items"]
            if x["lifecycleState"] != "DELETED"]) == 1)
        text = "---\n".join(
            [yaml_deployment("a", 1, {"v": "two"})] +
            [yaml_deployment(n, 1) for n in ("n1", "n2")])
        p = self.d.cli("apply", "-f", "-", input=text)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.d.get(a)["freeformTags"], {"v": "two"})
        self.assertEqual(live(), ["a", "n1", "n2"])

    def test_reload_keeps_the_range_until_the_next_start(self):
        path = os.path.join(self.d.data_dir, "config.json")
        with open(path, "w") as f:
            json.dump({"instanceUids": "%d-%d" % (HI, HI)}, f)
        mark = len(self.d.logs())
        self.d.proc.send_signal(signal.SIGHUP)
        out = wait_for("the reload's log line",
                       lambda: "SIGHUP" in self.d.logs()[mark:]
                       and self.d.logs()[mark:], timeout=10)
        self.assertIn("instanceUids change only at the next start", out)
        a = self.d.create(displayName="a")["id"]
        self.assertEqual(self.d.get(a)["instanceUid"], LO)


@unittest.skipUnless(os.geteuid() == 0, "needs root to switch users")
class RunAsUserOverrideTest(unittest.TestCase):
    """A runAsUser named in the file, without instanceUids, is an explicit
    choice: every instance runs as that user, and no uid is given out."""

    def test_named_user_wins_without_instance_uids(self):
        for i in range(LO, HI + 1):
            if in_system(i):
                self.skipTest("id %d belongs to this system" % i)
        d = Daemon(config={"runAsUser": "mdscale"}).start()
        self.addCleanup(d.cleanup)
        a = d.create(displayName="a")["id"]
        b = d.create(displayName="b")["id"]
        user = pwd.getpwnam("mdscale")
        for dep in (a, b):
            d.wait_state(dep, "ACTIVE")
            self.assertNotIn("instanceUid", d.get(dep))
            pid = d.get(dep)["instances"][0]["pid"]
            self.assertEqual(ids_of(pid)[:2], (user.pw_uid, user.pw_gid))

        # Deployments stored without a uid get one at the next start of a
        # daemon that gives them out, before their instances start again.
        d.stop()
        d.config = {"instanceUids": "%d-%d" % (LO, HI)}
        d.start()
        uids = set()
        for dep in (a, b):
            d.wait_state(dep, "ACTIVE")
            uid = d.get(dep)["instanceUid"]
            uids.add(uid)
            pid = wait_for("the instance started again", lambda: [
                i["pid"] for i in d.get(dep)["instances"]
                if i["state"] == "READY"])[0]
            self.assertEqual(ids_of(pid)[:2], (uid, uid))
        self.assertEqual(uids, {LO, LO + 1})


# The programs' range: a deployment, two functions and a COMMAND
# subscription fill it.
PLO, PHI = 64110, 64113

# A function's or subscription's program: says who it runs as (and, with a
# file as its argument, writes that there: a COMMAND subscription's output
# only goes to the log). Told a pid (the file "target" in $1's directory, or
# in OUT), it tries to read that process's environment and to signal it.
WHOAMI = r"""#!/bin/sh
cat > /dev/null
if [ -n "$1" ]; then exec > "$1.tmp" 2>&1; fi
echo "UID $(id -u)"; echo "GID $(id -g)"; echo "GROUPS $(id -G)"
echo "HOME $HOME"
if tr '\0' '\n' < /proc/$$/environ | grep -q '^PATH='; then
  echo "SELF READ"; else echo "SELF DENIED"; fi
T=$(cat %(out)s/target 2>/dev/null)
if [ -n "$T" ]; then
  if tr '\0' '\n' < /proc/$T/environ 2>/dev/null | grep -q '^PATH='; then
    echo "ENVIRON READ"; else echo "ENVIRON DENIED"; fi
  if kill -0 $T 2>/dev/null; then echo "SIGNAL SENT"; else
    echo "SIGNAL DENIED"; fi
fi
if [ -n "$1" ]; then mv "$1.tmp" "$1"; fi
"""

# A function that stays running until told: its pid in OUT/target (made
# readable by all: programs run with the daemon's umask, 077).
WAITER = r"""#!/bin/sh
cat > /dev/null
echo $$ > %(out)s/target.tmp; chmod 644 %(out)s/target.tmp
mv %(out)s/target.tmp %(out)s/target
while [ ! -e %(out)s/release ]; do sleep 0.1; done
echo "UID $(id -u)"
"""


def report_of(text):
    """The "KEY value" lines a program wrote, as a dict."""
    return dict(l.split(" ", 1) for l in text.splitlines() if " " in l)


@unittest.skipUnless(os.geteuid() == 0, "needs root to switch users")
class ProgramUidsTest(unittest.TestCase):
    """Each user function and each COMMAND subscription gets a uid of its
    own from instanceUids, as deployments do: one program cannot read
    another's environment nor signal it."""

    def setUp(self):
        for i in range(PLO, PHI + 1):
            if in_system(i):
                self.skipTest("id %d belongs to this system" % i)
        self.out = tempfile.mkdtemp(prefix="mdscale-fnuids-")
        self.addCleanup(shutil.rmtree, self.out, True)
        os.chmod(self.out, 0o1777)
        self.whoami = self.script("whoami.sh", WHOAMI)
        self.waiter = self.script("waiter.sh", WAITER)

    def script(self, name, text):
        path = os.path.join(self.out, name)
        with open(path, "w") as f:
            f.write(text % {"out": self.out})
        os.chmod(path, 0o755)
        return path

    def daemon(self, config):
        d = Daemon(config=config).start()
        self.addCleanup(d.cleanup)
        return d

    def function(self, d, name, script):
        r = d.api("POST", "/v1/functions", {"name": name,
                                            "command": [script]})
        self.assertEqual(r.status, 201, r)
        return r.json

    def invoke(self, d, name):
        r = d.api("POST", "/v1/functions/%s/invoke" % name, {"x": 1})
        self.assertEqual(r.status, 200, r)
        return report_of(r.json["output"])

    def command_sub(self, d, report):
        t = d.api("POST", "/v1/topics", {"name": "t-%d" % len(
            d.api("GET", "/v1/topics").json["items"])}).json
        r = d.api("POST", "/v1/subscriptions", {
            "topicId": t["topicId"], "protocol": "COMMAND",
            "command": [self.whoami, report]})
        self.assertEqual(r.status, 201, r)
        return t["topicId"], r.json

    def run_sub(self, d, topic, report):
        if os.path.exists(report):
            os.unlink(report)
        r = d.api("POST", "/v1/topics/%s/messages" % topic, {"a": 1})
        self.assertIn(r.status, (200, 202), r)
        return report_of(wait_for("the command's report",
                                  lambda: read(report)))

    def test_each_function_and_command_runs_as_its_own_uid(self):
        d = self.daemon({"instanceUids": "%d-%d" % (PLO, PHI)})
        dep = d.create(displayName="dep")["id"]
        duid = d.get(dep)["instanceUid"]
        self.assertEqual(duid, PLO)

        fa = self.function(d, "fa", self.whoami)
        fb = self.function(d, "fb", self.waiter)
        self.assertEqual((fa["runUid"], fb["runUid"]), (PLO + 1, PLO + 2))
        a = self.invoke(d, "fa")
        self.assertEqual((a["UID"], a["GID"], a["GROUPS"]),
                         (str(PLO + 1),) * 3, a)
        self.assertEqual(a["HOME"], "/")

        # fb runs (its pid in "target"); fa's program can neither read
        # its environment nor signal it.
        res = {}
        th = threading.Thread(target=lambda: res.update(
            r=d.api("POST", "/v1/functions/fb/invoke", {}, timeout=60)))
        th.start()
        target = wait_for("fb's pid", lambda: read(
            os.path.join(self.out, "target")))
        self.assertEqual(ids_of(int(target))[:2], (PLO + 2, PLO + 2))
        a = self.invoke(d, "fa")
        self.assertEqual(a["SELF"], "READ", a)  # the probe works
        self.assertEqual(a["ENVIRON"], "DENIED", a)
        self.assertEqual(a["SIGNAL"], "DENIED", a)

        # A COMMAND subscription: a uid of its own as well, and it cannot
        # reach fb either.
        report = os.path.join(self.out, "sub-report")
        topic, sub = self.command_sub(d, report)
        self.assertEqual(sub["runUid"], PHI)
        r = self.run_sub(d, topic, report)
        self.assertEqual((r["UID"], r["GID"], r["GROUPS"]), (str(PHI),) * 3,
                         r)
        self.assertEqual((r["ENVIRON"], r["SIGNAL"]), ("DENIED", "DENIED"))
        with open(os.path.join(self.out, "release"), "w"):
            pass
        th.join(60)
        self.assertEqual(res["r"].status, 200, res["r"])
        self.assertEqual(report_of(res["r"].json["output"])["UID"],
                         str(PLO + 2))
        os.unlink(os.path.join(self.out, "target"))

        # The range is full: a function, a COMMAND subscription and a
        # deployment are refused, and nothing is created.
        r = d.api("POST", "/v1/functions", {"name": "fc",
                                            "command": [self.whoami]})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["code"], "LimitExceeded", r)
        self.assertIn("instanceUids %d-%d" % (PLO, PHI), r.json["message"])
        r = d.api("POST", "/v1/subscriptions", {
            "topicId": topic, "protocol": "COMMAND",
            "command": [self.whoami]})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["code"], "LimitExceeded", r)
        r = d.api("POST", "/v1/deployments",
                  {"displayName": "dep2", "command": model_command(),
                   "instanceShapeName": "local.xs"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["code"], "LimitExceeded", r)
        names = [f["name"] for f in
                 d.api("GET", "/v1/functions").json["items"]]
        self.assertNotIn("fc", names)
        self.assertEqual(len(d.api("GET", "/v1/subscriptions").json[
            "items"]), 1)

        # Kept across a restart, and the programs still run as them.
        d.stop()
        d.start()
        self.assertEqual(d.api("GET", "/v1/functions/fa").json["runUid"],
                         PLO + 1)
        self.assertEqual(d.api("GET", "/v1/functions/fb").json["runUid"],
                         PLO + 2)
        self.assertEqual(d.api("GET", "/v1/subscriptions/" + sub["id"])
                         .json["runUid"], PHI)
        self.assertEqual(d.get(dep)["instanceUid"], PLO)
        self.assertEqual(self.invoke(d, "fa")["UID"], str(PLO + 1))
        self.assertEqual(self.run_sub(d, topic, report)["UID"], str(PHI))

        # A deleted function frees its uid: the next create gets it.
        r = d.api("DELETE", "/v1/functions/fb")
        self.assertIn(r.status, (200, 204), r)
        fc = self.function(d, "fc", self.whoami)
        self.assertEqual(fc["runUid"], PLO + 2)
        self.assertEqual(self.invoke(d, "fc")["UID"], str(PLO + 2))
        # And a deleted subscription its own.
        r = d.api("DELETE", "/v1/subscriptions/" + sub["id"])
        self.assertIn(r.status, (200, 204), r)
        self.assertEqual(self.function(d, "fd", self.whoami)["runUid"],
                         PHI)

    def test_stored_without_a_uid_get_one_at_the_next_start(self):
        rng = {"instanceUids": "%d-%d" % (PLO, PHI)}
        d = self.daemon(rng)
        self.assertEqual(self.function(d, "fa", self.whoami)["runUid"], PLO)

        # runAsUser named, instanceUids not: instances and programs run as
        # runAsUser, and no uid is given out (fa's stays stored).
        d.stop()
        d.config = {"runAsUser": INSTANCE_USER}
        d.start()
        user = pwd.getpwnam(INSTANCE_USER)
        self.assertNotIn("runUid", d.api("GET", "/v1/functions/fa").json)
        self.assertEqual(self.invoke(d, "fa")["UID"], str(user.pw_uid))
        dep = d.create(displayName="dep")["id"]
        self.assertNotIn("instanceUid", d.get(dep))
        report = os.path.join(self.out, "sub-report")
        topic, sub = self.command_sub(d, report)
        self.assertNotIn("runUid", sub)
        self.assertEqual(self.run_sub(d, topic, report)["UID"],
                         str(user.pw_uid))

        # A daemon that gives uids gives the deployment and the
        # subscription one at its start, none that fa holds; fa keeps its.
        d.stop()
        d.config = rng
        d.start()
        fa = d.api("GET", "/v1/functions/fa").json
        sub = d.api("GET", "/v1/subscriptions/" + sub["id"]).json
        duid = d.get(dep)["instanceUid"]
        self.assertEqual(fa["runUid"], PLO)
        self.assertEqual(sorted([duid, sub["runUid"]]), [PLO + 1, PLO + 2])
        self.assertEqual(duid, PLO + 1)  # the deployment's first
        pid = wait_for("the instance started again", lambda: [
            i["pid"] for i in d.get(dep)["instances"]
            if i["state"] == "READY"])[0]
        self.assertEqual(ids_of(pid)[:2], (duid, duid))
        self.assertEqual(self.invoke(d, "fa")["UID"], str(PLO))
        self.assertEqual(self.run_sub(d, topic, report)["UID"],
                         str(sub["runUid"]))
        # Stored: the same after another start.
        d.stop()
        d.start()
        self.assertEqual(d.api("GET", "/v1/subscriptions/" + sub["id"])
                         .json["runUid"], sub["runUid"])
        self.assertEqual(d.get(dep)["instanceUid"], duid)

        # instanceUids "" runs them as runAsUser again.
        d.stop()
        d.config = {"instanceUids": ""}
        d.start()
        self.assertNotIn("runUid", d.api("GET", "/v1/functions/fa").json)
        self.assertEqual(self.invoke(d, "fa")["UID"], str(user.pw_uid))

if __name__ == "__main__":
    unittest.main()
