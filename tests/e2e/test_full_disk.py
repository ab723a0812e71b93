"""A full disk: the data directory is a small tmpfs of its own, filled to the
last byte by a file. Writes are refused with 507 and change nothing (no work
request, no instance started, nothing left behind after a restart and a
delete); the daemon starts on the full disk and serves the gateway and every
read; once the filler goes, writes work again without a restart. SIGKILLs
during the refusal and during the recovery on a full disk lose nothing and
leave no orphan. A signed webhook delivery whose id cannot be stored is
refused and not acted on, and is taken when sent again after space
returns."""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import Daemon, model_command, request, sweep_cgroups, wait_for
from test_alertmanager import alert, webhook
from test_webhook_signing import spec_sign

MOUNT_SIZE = "24m"


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _cgroups_of(data_dir):
    """The instance cgroups of this data directory that still exist."""
    found = []
    inst_dir = os.path.join(data_dir, "instances")
    ids = set()
    if os.path.isdir(inst_dir):
        for n in os.listdir(inst_dir):
            ids.add(n.split(".")[0])
    for ctl in ("cpu", "cpuacct", "memory", "unified", ""):
        base = os.path.join("/sys/fs/cgroup", ctl, "mdscale")
        found += [os.path.join(base, i) for i in ids
                  if os.path.isdir(os.path.join(base, i))]
    return found


class FullDiskTest(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.fail("this test mounts a tmpfs: it needs root")
        self.top = tempfile.mkdtemp(prefix="mdscale-full-")
        self.mnt = os.path.join(self.top, "mnt")
        os.mkdir(self.mnt)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + MOUNT_SIZE,
                        "tmpfs", self.mnt], check=True)
        # Cleanups run last-in first-out: the daemon goes, then the mount.
        self.addCleanup(shutil.rmtree, self.top, True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.mnt])
        self.data = os.path.join(self.mnt, "data")
        self.addCleanup(sweep_cgroups, self.data)
        self.filler = os.path.join(self.mnt, "filler")
        self.pids = set()
        self.d = self.daemon().start()

    def daemon(self, ports=None, config=None):
        d = Daemon(data_dir=self.data, config=config)
        d.owns_dir = False
        # The daemon's own output goes outside the full disk.
        d.log_path = os.path.join(self.top, "daemon-%d.log" % time.monotonic_ns())
        if ports:
            d.api_port, d.gw_port = ports
        self.addCleanup(d.cleanup)
        return d

    def restart(self):
        self.note_pids()
        self.d.kill()
        self.d = self.daemon((self.d.api_port, self.d.gw_port)).start()

    def note_pids(self):
        self.pids.update(self.d.instance_pids())

    def fill(self):
        # Unbuffered: a write the device cannot take fails there, and
        # nothing is left to fail again when the file is closed.
        with open(self.filler, "wb", buffering=0) as f:
            chunk = b"\0" * 65536
            try:
                while True:
                    f.write(chunk)
            except OSError:
                pass
        # Bytes at a time: nothing is left, not even a page.
        with open(self.filler, "ab", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 512)
            except OSError:
                pass

    def unfill(self):
        os.unlink(self.filler)

    def dropped_lines(self):
        """The structured log's lines that count lines dropped before
        them."""
        found = []
        for root, _, files in os.walk(os.path.join(self.data, "logs")):
            for n in files:
                with open(os.path.join(root, n), errors="replace") as f:
                    found += [json.loads(line) for line in f
                              if '"dropped"' in line and
                              line.endswith("\n")]
        return [x for x in found if x.get("dropped", 0) > 0]

    def refused(self, r):
        self.assertEqual(r.status, 507, r)
        self.assertEqual(r.json["code"], "InsufficientStorage", r)
        self.assertIn("full", r.json["message"])

    def workrequests(self, dep_id):
        r = self.d.api("GET", "/v1/workrequests?deploymentId=" + dep_id)
        self.assertEqual(r.status, 200, r)
        return sorted(w["id"] for w in r.json["items"])

    def predict_ok(self, name):
        r = self.d.gw("POST", "/%s/predict" % name,
                      {"instances": [[0.0] * 64]})
        return r.status == 200

    def test_full_disk_refuses_writes_and_loses_nothing(self):
        dep = self.d.wait_state(self.d.create(displayName="full")["id"],
                                "ACTIVE")
        before_wrs = self.workrequests(dep["id"])
        self.note_pids()
        self.fill()

        # Writes: 507 with a JSON error, nothing changes, nothing starts.
        self.refused(self.d.api("PUT", "/v1/deployments/" + dep["id"],
                                {"instanceCount": 3}))
        self.refused(self.d.api("POST", "/v1/deployments", {
            "displayName": "other", "command": "sleep 100",
            "instanceShapeName": "local.xs", "instanceCount": 1}))
        self.refused(self.d.api("DELETE", "/v1/deployments/" + dep["id"]))
        self.refused(self.d.api("POST", "/v1/topics", {"name": "t1"}))
        # The autoscale setting is what the message names, not one of
        # the parts it is made of (its topic, alarms and subscription).
        r = self.d.api("PUT", "/v1/deployments/%s/autoscale" % dep["id"],
                       {"profile": "default"})
        self.refused(r)
        self.assertIn("cannot store the autoscale setting of %s"
                      % dep["id"], r.json["message"])
        self.assertNotIn("topic", r.json["message"])
        st = self.d.api("GET", "/v1/deployments/%s/autoscale" % dep["id"])
        self.assertEqual((st.json["setUp"], st.json["topicId"]),
                         (False, ""), st)
        self.assertEqual(self.d.api("GET", "/v1/topics").json["items"], [])
        time.sleep(2)  # a started instance would show by now
        now = self.d.get(dep["id"])
        self.assertEqual(now["lifecycleState"], "ACTIVE")
        self.assertEqual(now["instanceCount"], 1)
        self.assertEqual(len(now["instances"]), 1, now["instances"])
        self.assertEqual(self.workrequests(dep["id"]), before_wrs)
        names = [x["displayName"] for x in
                 self.d.api("GET", "/v1/deployments").json["items"]]
        self.assertEqual(names, ["full"])
        self.assertTrue(self.predict_ok("full"))

        # A SIGKILL right after a refusal, and a start on the full disk:
        # the gateway and the reads are served, writes still refused.
        self.refused(self.d.api("PUT", "/v1/deployments/" + dep["id"],
                                {"instanceCount": 2}))
        self.restart()
        wait_for("the gateway on a full disk",
                 lambda: self.predict_ok("full"), timeout=20)
        now = self.d.get(dep["id"])
        self.assertEqual((now["lifecycleState"], now["instanceCount"]),
                         ("ACTIVE", 1))
        self.assertEqual(self.workrequests(dep["id"]), before_wrs)
        for path in ("/v1/deployments", "/v1/alarms", "/v1/topics",
                     "/v1/workrequests", "/v1/shapes", "/v1/functions"):
            self.assertEqual(self.d.api("GET", path).status, 200, path)
        self.refused(self.d.api("PUT", "/v1/deployments/" + dep["id"],
                                {"instanceCount": 2}))

        # Space returns: writes work again, with no restart.
        self.unfill()
        r = wait_for("a write to be taken again", lambda: (lambda r: r if
                     r.status == 202 else None)(self.d.api(
                         "PUT", "/v1/deployments/" + dep["id"],
                         {"instanceCount": 2})), timeout=20)
        done = self.d.wait_wr(r.json["id"])
        self.assertEqual(done["status"], "SUCCEEDED", done)
        now = self.d.wait_state(dep["id"], "ACTIVE")
        self.assertEqual(now["instanceCount"], 2)
        self.assertEqual(self.d.api("POST", "/v1/topics",
                                    {"name": "t1"}).status, 201)
        # The log lines the full disk could not take were dropped and
        # counted; the first line written after says how many.
        self.assertTrue(wait_for("a log line counting the dropped ones",
                                 self.dropped_lines, timeout=10))

        # The change survives a SIGKILL; after the delete nothing is left.
        self.restart()
        now = self.d.wait_state(dep["id"], "ACTIVE")
        self.assertEqual(now["instanceCount"], 2)
        self.note_pids()
        self.d.delete(dep["id"])
        self.assertEqual(self.d.stop(), 0)
        for pid in self.pids:
            wait_for("instance %d to be gone" % pid, lambda: not _alive(pid),
                     timeout=15)
        self.assertEqual(_cgroups_of(self.data), [])

    def autoscale_chain(self, dep_id):
        """The deployment's autoscale setting, and the alarms, topics and
        subscriptions the daemon has."""
        r = self.d.api("GET", "/v1/deployments/%s/autoscale" % dep_id)
        self.assertEqual(r.status, 200, r)
        alarms = {a["id"]: a for a in
                  self.d.api("GET", "/v1/alarms").json["items"]}
        topics = [t["topicId"] for t in
                  self.d.api("GET", "/v1/topics").json["items"]]
        subs = [s["id"] for s in
                self.d.api("GET", "/v1/subscriptions").json["items"]]
        return r.json, alarms, topics, subs

    def assert_chain_whole(self, dep_id, old, alarm_ids):
        """The setting old (a PUT's answer) is in force, whole: its
        policy, its alarms (and no other), sending to its topic, which its
        subscription reaches."""
        got, alarms, topics, subs = self.autoscale_chain(dep_id)
        self.assertEqual((got["policy"]["maxInstances"],
                          got["policy"]["cpuHigh"], got["setUp"]),
                         (old["policy"]["maxInstances"],
                          old["policy"]["cpuHigh"], True), got)
        self.assertEqual((got["topicId"], got["subscriptionId"]),
                         (old["topicId"], old["subscriptionId"]), got)
        self.assertEqual(sorted(alarms), sorted(alarm_ids))
        for a in alarm_ids:
            self.assertEqual(alarms[a]["destinations"], [old["topicId"]])
            self.assertIn('resourceId = "%s"' % dep_id, alarms[a]["query"])
        self.assertIn(old["topicId"], topics)
        self.assertIn(old["subscriptionId"], subs)

    def assert_evaluated(self, alarm_ids):
        """Each alarm is still evaluated: it is in force, not only
        listed."""
        for a in alarm_ids:
            r = self.d.api("GET", "/v1/alarms/%s/status" % a)
            self.assertEqual(r.status, 200, r)
            first = r.json["lastEvaluated"]
            wait_for("alarm %s evaluated again" % a, lambda: self.d.api(
                "GET", "/v1/alarms/%s/status" % a).json["lastEvaluated"]
                not in (None, first), timeout=20)

    def assert_no_chain(self, dep_id):
        """The deployment has no autoscale setting, and no alarm, topic
        or subscription is left of one."""
        got, alarms, topics, subs = self.autoscale_chain(dep_id)
        self.assertEqual((got["setUp"], got["topicId"],
                          got["subscriptionId"]), (False, "", ""), got)
        self.assertEqual((sorted(alarms), topics, subs), ([], [], []))

    def set_autoscale(self, dep_id):
        """Sets the deployment's autoscale setting up; returns the PUT's
        answer, checked whole."""
        r = self.d.api("PUT", "/v1/deployments/%s/autoscale" % dep_id,
                       {"profile": "default", "maxInstances": 3,
                        "cpuHigh": 80})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.json["alarmIds"]), 2, r.json)
        self.assert_chain_whole(dep_id, r.json, r.json["alarmIds"])
        return r.json

    def test_autoscale_delete_refused_keeps_the_setting(self):
        """A DELETE of the autoscale setting that cannot be stored is
        refused with 507 and removes nothing: the setting stays whole and
        its alarms are still evaluated. With space back the DELETE takes
        all of it (alarms, subscription, topic, record), also after a
        restart."""
        dep = self.d.wait_state(self.d.create(displayName="asdel")["id"],
                                "ACTIVE")
        path = "/v1/deployments/%s/autoscale" % dep["id"]
        old = self.set_autoscale(dep["id"])
        alarm_ids = old["alarmIds"]

        self.fill()
        r = self.d.api("DELETE", path)
        self.refused(r)
        self.assertIn("cannot remove the autoscale setting of %s"
                      % dep["id"], r.json["message"])
        self.assert_chain_whole(dep["id"], old, alarm_ids)
        self.assert_evaluated(alarm_ids)
        self.restart()
        self.assert_chain_whole(dep["id"], old, alarm_ids)
        self.refused(self.d.api("DELETE", path))
        self.assert_chain_whole(dep["id"], old, alarm_ids)

        self.unfill()
        r = self.d.api("DELETE", path)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sorted(r.json["deleted"]["alarmIds"]),
                         sorted(alarm_ids))
        self.assertEqual((r.json["deleted"]["topicId"],
                          r.json["deleted"]["subscriptionId"]),
                         (old["topicId"], old["subscriptionId"]))
        self.assert_no_chain(dep["id"])
        self.restart()
        self.assert_no_chain(dep["id"])

    def test_autoscale_with_little_room_is_all_or_nothing(self):
        """With room for some writes but maybe not all of them, the first
        autoscale setting and its removal are each taken whole or refused
        (507) whole: never a topic, subscription or alarm left of a
        refused setting, never a setting left with a part of it gone."""
        dep = self.d.wait_state(self.d.create(displayName="asfirst")["id"],
                                "ACTIVE")
        path = "/v1/deployments/%s/autoscale" % dep["id"]
        body = {"profile": "default", "maxInstances": 3, "cpuHigh": 80}
        cur = None
        refused = {"PUT": 0, "DELETE": 0}
        taken = {"PUT": 0, "DELETE": 0}
        for room in (0, 4, 8, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128,
                     256, 512):
            for method in ("PUT", "DELETE"):
                if (method == "PUT") != (cur is None):
                    continue
                self.fill()
                os.truncate(self.filler, max(
                    0, os.path.getsize(self.filler) - room * 1024))
                r = self.d.api(method, path, body if method == "PUT"
                               else None)
                if r.status == 507:
                    self.assertIn("autoscale setting", r.json["message"])
                    refused[method] += 1
                else:
                    self.assertEqual(r.status, 200, r)
                    taken[method] += 1
                    cur = r.json if method == "PUT" else None
                if cur is None:
                    self.assert_no_chain(dep["id"])
                else:
                    self.assert_chain_whole(dep["id"], cur, cur["alarmIds"])
                self.unfill()
        self.assertGreater(refused["PUT"], 0)
        self.assertGreater(refused["DELETE"], 0)
        self.assertGreater(taken["PUT"], 0, "no setting fitted in 512 KiB")
        self.restart()
        if cur is None:
            self.assert_no_chain(dep["id"])
        else:
            self.assert_chain_whole(dep["id"], cur, cur["alarmIds"])

    def assert_delete_refused(self, r, dep_id, old, before_wrs):
        """A deployment DELETE refused (507, a JSON error naming the
        deployment) changed nothing: the deployment is ACTIVE (not
        DELETING) with its work requests as they were, and its autoscale
        setting is whole."""
        self.refused(r)
        self.assertIn("cannot delete deployment %s" % dep_id,
                      r.json["message"])
        self.assertIn("nothing changed", r.json["message"])
        now = self.d.get(dep_id)
        self.assertEqual((now["lifecycleState"], now["instanceCount"]),
                         ("ACTIVE", 1))
        self.assertEqual(self.workrequests(dep_id), before_wrs)
        self.assert_chain_whole(dep_id, old, old["alarmIds"])

    def assert_deleted_whole(self, r, dep_id, old):
        """A deployment DELETE taken (202): once done, the deployment and
        all of its autoscale setting are gone, also after a restart."""
        self.assertEqual(r.status, 202, r)
        self.assertEqual(sorted(r.json["deleted"]["alarmIds"]),
                         sorted(old["alarmIds"]))
        self.assertEqual((r.json["deleted"]["topicId"],
                          r.json["deleted"]["subscriptionId"]),
                         (old["topicId"], old["subscriptionId"]))
        done = self.d.wait_wr(r.json["id"])
        self.assertEqual(done["status"], "SUCCEEDED", done)
        self.assertEqual(self.d.get(dep_id)["lifecycleState"], "DELETED")
        self.assert_no_chain(dep_id)
        self.restart()
        self.assertEqual(self.d.get(dep_id)["lifecycleState"], "DELETED")
        self.assert_no_chain(dep_id)

    def test_deployment_delete_refused_keeps_its_autoscale(self):
        """A deployment DELETE on a full disk, the deployment set up for
        autoscaling: 507, and nothing changes (the deployment, its work
        requests, its setting whole, its alarms evaluated, its gateway
        route), also after a restart; with space back it is deleted with
        all of its setting."""
        dep = self.d.wait_state(self.d.create(displayName="depdel")["id"],
                                "ACTIVE")
        old = self.set_autoscale(dep["id"])
        before_wrs = self.workrequests(dep["id"])

        self.fill()
        r = self.d.api("DELETE", "/v1/deployments/" + dep["id"])
        self.assert_delete_refused(r, dep["id"], old, before_wrs)
        self.assert_evaluated(old["alarmIds"])
        self.assertTrue(self.predict_ok("depdel"))
        self.restart()
        self.assertEqual(self.d.get(dep["id"])["lifecycleState"], "ACTIVE")
        self.assert_chain_whole(dep["id"], old, old["alarmIds"])

        self.unfill()
        r = self.d.api("DELETE", "/v1/deployments/" + dep["id"])
        self.assert_deleted_whole(r, dep["id"], old)

    def test_deployment_delete_with_little_room(self):
        """With room for some writes but maybe not all, a deployment
        DELETE with an autoscale setting is taken whole (202: the
        deployment and all of its setting go) or refused whole (507:
        nothing changes). The room grows a page at a time, so that one
        try has room for the setting's removal but not for the
        deployment's own record: refused whole too. A restart keeps what
        the DELETE left."""
        dep = self.d.wait_state(self.d.create(displayName="deproom")["id"],
                                "ACTIVE")
        old = self.set_autoscale(dep["id"])
        before_wrs = self.workrequests(dep["id"])
        refused = 0
        for room in range(0, 1024, 4):
            self.fill()
            os.truncate(self.filler, max(
                0, os.path.getsize(self.filler) - room * 1024))
            r = self.d.api("DELETE", "/v1/deployments/" + dep["id"])
            if r.status == 202:
                self.unfill()
                break
            self.assert_delete_refused(r, dep["id"], old, before_wrs)
            refused += 1
            self.unfill()
        else:
            self.fail("no deployment delete fitted in 1 MiB")
        self.assertGreater(refused, 1)
        self.assert_deleted_whole(r, dep["id"], old)

    def assert_no_deployment(self, name):
        """No deployment named name, and nothing of an autoscale setting:
        no alarm, topic or subscription."""
        deps = self.d.api("GET", "/v1/deployments").json["items"]
        self.assertEqual([d["id"] for d in deps if d["displayName"] == name],
                         [])
        self.assertEqual(
            (self.d.api("GET", "/v1/alarms").json["items"],
             self.d.api("GET", "/v1/topics").json["items"],
             self.d.api("GET", "/v1/subscriptions").json["items"]),
            ([], [], []))

    def test_deployment_create_with_autoscale_with_little_room(self):
        """A deployment created with its autoscale setting in the same
        POST, with room for some writes but maybe not all: taken whole
        (201: the deployment and all of its setting) or refused whole
        (507: no deployment, no alarm, topic or subscription, and no
        instance started). The room grows a page at a time, so that one
        try has room for the deployment's record but not for its setting.
        A restart keeps what the POST left."""
        body = {"displayName": "depnew", "command": model_command(),
                "instanceShapeName": "local.xs", "instanceCount": 1,
                "healthPath": "/health",
                "autoscale": {"profile": "default", "maxInstances": 3,
                              "cpuHigh": 80}}
        refused = 0
        for room in range(0, 1024, 4):
            self.fill()
            os.truncate(self.filler, max(
                0, os.path.getsize(self.filler) - room * 1024))
            r = self.d.api("POST", "/v1/deployments", body)
            if r.status == 201:
                self.unfill()
                break
            self.refused(r)
            self.assertIn("depnew", r.json["message"])
            self.assertIn("nothing was created", r.json["message"])
            self.assert_no_deployment("depnew")
            refused += 1
            self.unfill()
        else:
            self.fail("no deployment with a setting fitted in 1 MiB")
        self.assertGreater(refused, 1)
        # No instance of a refused try ever started: the one deployment
        # runs one.
        dep = self.d.wait_state(r.json["id"], "ACTIVE")
        self.assertEqual(len(self.d.instance_pids()), 1)
        chain = r.json["autoscale"]
        self.assert_chain_whole(dep["id"], chain, chain["alarmIds"])
        self.restart()
        self.assertEqual(self.d.get(dep["id"])["lifecycleState"], "ACTIVE")
        self.assert_chain_whole(dep["id"], chain, chain["alarmIds"])
        deps = self.d.api("GET", "/v1/deployments").json["items"]
        self.assertEqual([d["id"] for d in deps], [dep["id"]])

    def test_autoscale_replace_refused_keeps_the_old_setting(self):
        """A PUT of another autoscale setting that cannot be stored is
        refused with 507 and changes nothing: the setting in force stays
        whole (policy, alarms, topic, subscription), in the running
        daemon and after a restart; with space back, the replace works
        and keeps the topic and subscription."""
        dep = self.d.wait_state(self.d.create(displayName="asfull")["id"],
                                "ACTIVE")
        path = "/v1/deployments/%s/autoscale" % dep["id"]
        r = self.d.api("PUT", path, {"profile": "default",
                                     "maxInstances": 3, "cpuHigh": 80})
        self.assertEqual(r.status, 200, r)
        old = r.json
        alarm_ids = old["alarmIds"]
        self.assertEqual(len(alarm_ids), 2, old)
        self.assert_chain_whole(dep["id"], old, alarm_ids)

        self.fill()
        r = self.d.api("PUT", path, {"profile": "default",
                                     "maxInstances": 5, "cpuHigh": 90})
        self.refused(r)
        self.assertIn("autoscale setting", r.json["message"])
        self.assert_chain_whole(dep["id"], old, alarm_ids)
        self.assert_evaluated(alarm_ids)

        self.unfill()
        self.restart()
        self.assert_chain_whole(dep["id"], old, alarm_ids)

        # Space is back: the replace is taken, the old alarms go, the
        # topic and subscription stay.
        r = self.d.api("PUT", path, {"profile": "default",
                                     "maxInstances": 5, "cpuHigh": 90})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sorted(r.json["deleted"]["alarmIds"]),
                         sorted(alarm_ids))
        self.assertEqual((r.json["topicId"], r.json["subscriptionId"]),
                         (old["topicId"], old["subscriptionId"]))
        got, alarms, topics, subs = self.autoscale_chain(dep["id"])
        self.assertEqual((got["policy"]["maxInstances"],
                          got["policy"]["cpuHigh"]), (5, 90), got)
        self.assertEqual(sorted(alarms), sorted(r.json["alarmIds"]))
        self.assertEqual(set(alarms) & set(alarm_ids), set())

    def test_autoscale_replace_with_little_room_is_all_or_nothing(self):
        """With room for some writes but maybe not all of a replace, a
        PUT of another autoscale setting is taken whole (200) or refused
        (507) with the old setting whole: never the old one gone and the
        new one not there."""
        dep = self.d.wait_state(self.d.create(displayName="asroom")["id"],
                                "ACTIVE")
        path = "/v1/deployments/%s/autoscale" % dep["id"]
        r = self.d.api("PUT", path, {"maxInstances": 3, "cpuHigh": 80})
        self.assertEqual(r.status, 200, r)
        cur = r.json
        self.assert_chain_whole(dep["id"], cur, cur["alarmIds"])
        taken = 0
        for room in (4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 512):
            self.fill()
            os.truncate(self.filler,
                        max(0, os.path.getsize(self.filler) - room * 1024))
            r = self.d.api("PUT", path, {"maxInstances": 3,
                                         "cpuHigh": 81 + room % 10})
            if r.status == 507:
                self.assertIn("autoscale setting", r.json["message"])
            else:
                self.assertEqual(r.status, 200, r)
                self.assertEqual(sorted(r.json["deleted"]["alarmIds"]),
                                 sorted(cur["alarmIds"]))
                cur = r.json
                taken += 1
            self.assert_chain_whole(dep["id"], cur, cur["alarmIds"])
            self.unfill()
        self.assertGreater(taken, 0, "no replace fitted in 512 KiB")
        self.restart()
        self.assert_chain_whole(dep["id"], cur, cur["alarmIds"])

    def test_killed_during_recovery_on_a_full_disk(self):
        dep = self.d.wait_state(self.d.create(displayName="again",
                                              instanceCount=2)["id"],
                                "ACTIVE")
        self.note_pids()
        self.fill()
        # SIGKILLs while the daemon is still recovering (before it serves).
        for delay in (0.0, 0.005, 0.01, 0.02, 0.04):
            self.d.kill()
            self.d = self.daemon((self.d.api_port, self.d.gw_port))
            _spawn(self.d)
            time.sleep(delay)
        self.d.kill()
        self.d = self.daemon((self.d.api_port, self.d.gw_port)).start()
        now = self.d.get(dep["id"])
        self.assertEqual((now["lifecycleState"], now["instanceCount"]),
                         ("ACTIVE", 2))
        wait_for("two ready instances", lambda: len(
            [i for i in self.d.get(dep["id"])["instances"]
             if i["state"] == "READY"]) == 2, timeout=30)
        self.assertTrue(self.predict_ok("again"))
        self.unfill()
        self.note_pids()
        self.d.delete(dep["id"])
        self.assertEqual(self.d.stop(), 0)
        for pid in self.pids:
            wait_for("instance %d to be gone" % pid, lambda: not _alive(pid),
                     timeout=15)
        self.assertEqual(_cgroups_of(self.data), [])


    def test_signed_delivery_refused_then_taken(self):
        secret = "whsec_" + base64.b64encode(b"full-disk-key-0123456789"
                                             ).decode()
        ports = (self.d.api_port, self.d.gw_port)
        self.assertEqual(self.d.stop(), 0)
        config = {"webhookReceiver": {"secret": secret}}
        self.d = self.daemon(ports, config).start()
        r = self.d.api("POST", "/v1/topics", {"name": "am"})
        self.assertEqual(r.status, 201, r)
        path = "/v1/alertmanager/" + r.json["topicId"]
        raw = json.dumps(webhook(alert())).encode()
        ts = int(time.time())
        h = {"Content-Type": "application/json", "webhook-id": "msg-full",
             "webhook-timestamp": str(ts),
             "webhook-signature": spec_sign(secret, "msg-full", ts, raw)}
        self.fill()
        self.refused(self.d.api("POST", path, raw, headers=h))
        # A SIGKILL and a start on the full disk: still refused.
        self.d.kill()
        self.d = self.daemon(ports, config).start()
        self.refused(self.d.api("POST", path, raw, headers=h))
        # Space returns: the same delivery is taken, and acted on for the
        # first time (a first firing, not a repeat).
        self.unfill()
        r = wait_for("the delivery to be taken", lambda: (lambda r: r if
                     r.status != 507 else None)(self.d.api(
                         "POST", path, raw, headers=h)), timeout=20)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["alerts"][0]["type"], "OK_TO_FIRING", r)
        self.assertEqual(self.d.api("POST", path, raw, headers=h).status,
                         409)

    def test_webhook_failed_on_a_full_disk_sends_nothing(self):
        """An Alertmanager webhook whose change does not fit: the space
        left takes its first messages but not all of them. It is refused
        with 507, no message goes out, not even once space returns, and
        its signed id is not kept: the same delivery sent again is
        processed, each message once, and only then is it a replay."""
        secret = "whsec_" + base64.b64encode(b"full-disk-key-0123456789"
                                             ).decode()
        ports = (self.d.api_port, self.d.gw_port)
        self.assertEqual(self.d.stop(), 0)
        self.d = self.daemon(ports, {"webhookReceiver": {"secret": secret}}
                             ).start()
        outdir = tempfile.mkdtemp(prefix="mdscale-full-out-")
        self.addCleanup(shutil.rmtree, outdir, True)
        os.chmod(outdir, 0o1777)  # the subscription's command runs unprivileged
        r = self.d.api("POST", "/v1/topics", {"name": "am"})
        self.assertEqual(r.status, 201, r)
        topic = r.json["topicId"]
        # Each message, 6 KB, goes to a file of its own, renamed into
        # place whole: deliveries run side by side, and one shared file
        # would interleave their writes or be read half written.
        r = self.d.api("POST", "/v1/subscriptions", {
            "topicId": topic, "protocol": "COMMAND",
            "command": ["/bin/sh", "-c",
                        "t=$(mktemp '%s/.m.XXXXXX') && cat > \"$t\" && "
                        "mv \"$t\" \"$t.json\"" % outdir]})
        self.assertEqual(r.status, 201, r)

        def delivered():
            got = []
            for name in os.listdir(outdir):
                if name.endswith(".json"):
                    with open(os.path.join(outdir, name)) as f:
                        got.append(json.load(f))
            return got

        n = 120
        alerts = []
        for i in range(n):
            a = alert(fp="%016x" % (i + 1))
            a["annotations"]["summary"] = "%d %s" % (i, "x" * 6000)
            alerts.append(a)
        raw = json.dumps(webhook(*alerts)).encode()
        ts = int(time.time())
        h = {"Content-Type": "application/json", "webhook-id": "msg-big",
             "webhook-timestamp": str(ts),
             "webhook-signature": spec_sign(secret, "msg-big", ts, raw)}
        path = "/v1/alertmanager/" + topic
        # Room for the id and a few dozen messages, not for 120 of them.
        self.fill()
        os.truncate(self.filler, os.path.getsize(self.filler) - 384 * 1024)
        self.refused(self.d.api("POST", path, raw, headers=h))
        self.unfill()
        time.sleep(3)  # a queued message would be delivered by now
        self.assertEqual(delivered(), [])

        r = self.d.api("POST", path, raw, headers=h)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([x["type"] for x in r.json["alerts"]],
                         ["OK_TO_FIRING"] * n)
        got = wait_for("%d messages delivered" % n, lambda: (
            lambda m: m if len(m) >= n else None)(delivered()), timeout=120)
        self.assertEqual(sorted(m["dedupeKey"] for m in got),
                         sorted(a["fingerprint"] for a in alerts))
        self.assertEqual(self.d.api("POST", path, raw, headers=h).status,
                         409)

    def test_token_revoked_and_rotated_on_a_full_disk(self):
        """Revoking or rotating a token works on a full disk (the store's
        space reserve), lasts over a SIGKILL, and the reserve is made
        again once space returns; other writes are still refused."""
        tokens = []
        for name in ("leaked", "rotated"):
            r = self.d.api("POST", "/v1/tokens", {"displayName": name})
            self.assertEqual(r.status, 201, r)
            tokens.append((r.json["id"], r.json["token"]))
        reserve = os.path.join(self.data, "mdscale.db-reserve")
        self.assertEqual(os.path.getsize(reserve), 1 << 20)

        def status(secret):
            return request(self.d.api_port, "GET", "/v1/deployments",
                           token=secret).status

        for _, secret in tokens:
            self.assertEqual(status(secret), 200)
        self.fill()
        self.refused(self.d.api("POST", "/v1/topics", {"name": "t1"}))
        r = self.d.api("DELETE", "/v1/tokens/" + tokens[0][0])
        self.assertEqual(r.status, 204, r)
        self.assertEqual(status(tokens[0][1]), 401)
        self.assertFalse(os.path.exists(reserve))
        r = self.d.api("POST", "/v1/tokens/%s/rotate" % tokens[1][0], {})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(status(tokens[1][1]), 401)
        self.assertEqual(status(r.json["token"]), 200)
        rotated = r.json["token"]
        # Durable: a SIGKILL and a start on the still full disk.
        self.restart()
        self.assertEqual(status(tokens[0][1]), 401)
        self.assertEqual(status(tokens[1][1]), 401)
        self.assertEqual(status(rotated), 200)
        ids = [t["id"] for t in self.d.api("GET", "/v1/tokens").json["items"]]
        self.assertEqual(ids, [tokens[1][0]])
        # Space returns: the next write made the reserve again.
        self.unfill()
        self.assertEqual(self.d.api("POST", "/v1/topics",
                                    {"name": "t1"}).status, 201)
        self.assertEqual(os.path.getsize(reserve), 1 << 20)


def _spawn(d):
    """Starts d's process without waiting for its health (so that a kill
    can land inside its recovery)."""
    args = [d.binary, "serve", "--listen", "127.0.0.1:%d" % d.api_port,
            "--gateway", "127.0.0.1:%d" % d.gw_port, "--data", d.data_dir,
            "--log-level", d.log_level]
    d.log = open(d.log_path, "ab")
    d.proc = subprocess.Popen(args, stdout=d.log, stderr=subprocess.STDOUT)


if __name__ == "__main__":
    unittest.main()
