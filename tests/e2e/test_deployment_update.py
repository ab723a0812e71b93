"""Updating every mutable field of a deployment through the CLI binary: a
new command or environment replaces the instances under a continuous load
without losing a request, a command that never becomes ready leaves the
old set serving with the old command, timeouts and freeform tags change at
once; list filters by name, state and tag and sorts, on the server."""
import json
import os
import time
import unittest

from harness import (MODEL_SERVER, WEIGHTS, Daemon, Load, model_command,
                     wait_for)


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


def environ(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


def ready(dep):
    return [i for i in dep["instances"] if i["state"] == "READY"]


class DeploymentUpdateTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon().start()
        self.addCleanup(self.d.cleanup)

    def cli(self, *args):
        r = self.d.cli(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def test_a_new_command_and_environment_roll_under_load(self):
        dep = self.d.wait_state(self.d.create(displayName="roll",
                                              instanceCount=2)["id"],
                                "ACTIVE")
        old_pids = {i["pid"] for i in ready(dep)}
        # The same server with its options in another order: a command
        # that differs, as /proc shows it.
        new_cmd = "exec %s --port $PORT --weights %s" % (
            os.path.abspath(MODEL_SERVER), os.path.abspath(WEIGHTS))
        with Load(self.d.gw_port, "/roll/predict", threads=4) as load:
            time.sleep(0.5)
            r = self.cli("deployment", "update", "roll", "--command", new_cmd,
                         "--env", "GENERATION=2", "--wait", "-o", "json")
            wr = json.loads(r.stdout)
            time.sleep(0.3)
            load.stop()
        self.assertEqual(wr["status"], "SUCCEEDED", wr)
        self.assertEqual([s["kind"] for s in wr["steps"]],
                         ["START_INSTANCE", "START_INSTANCE", "WAIT_READY",
                          "ROUTE", "DRAIN_INSTANCE", "DRAIN_INSTANCE",
                          "STOP_INSTANCE", "STOP_INSTANCE"])
        self.assertEqual(load.failures, [])
        self.assertGreater(load.ok, 100)
        now = self.d.wait_state(dep["id"], "ACTIVE")
        self.assertEqual(now["command"], new_cmd)
        self.assertEqual(now["environment"], {"GENERATION": "2"})
        self.assertEqual(now["instanceCount"], 2)
        pids = {i["pid"] for i in ready(now)}
        self.assertEqual(len(pids), 2)
        self.assertFalse(pids & old_pids, (pids, old_pids))
        for pid in pids:
            argv = cmdline(pid)
            self.assertEqual(argv[1:3], ["--port", argv[2]], argv)
            self.assertEqual(argv[3], "--weights", argv)
            self.assertIn("GENERATION=2", environ(pid))
        wait_for("the old instances' processes gone",
                 lambda: not any(os.path.exists("/proc/%d" % p)
                                 for p in old_pids), timeout=10)
        # The same command again is no change: 200, no work request.
        r = self.d.api("PUT", "/v1/deployments/" + dep["id"],
                       {"command": new_cmd, "environment": {"GENERATION": "2"}})
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("operationType", r.json)

    def test_a_command_that_never_gets_ready_keeps_the_old_one(self):
        dep = self.d.wait_state(self.d.create(displayName="stay",
                                              readyTimeoutSeconds=3)["id"],
                                "ACTIVE")
        old = ready(dep)[0]
        with Load(self.d.gw_port, "/stay/predict", threads=2) as load:
            r = self.d.cli("deployment", "update", "stay", "--command",
                           "exec sleep 100", "--wait")
            load.stop()
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("failed", r.stderr)
        self.assertEqual(load.failures, [])
        self.assertGreater(load.ok, 20)
        now = self.d.wait_state(dep["id"], "ACTIVE")
        self.assertEqual(now["command"], model_command())
        self.assertEqual([i["id"] for i in ready(now)], [old["id"]])
        self.assertEqual(cmdline(old["pid"])[0], os.path.abspath(MODEL_SERVER))
        # The old set's spec is the deployment's again: a restart of the
        # daemon brings back the same command.
        self.d.stop()
        self.d.start()
        again = self.d.wait_state(dep["id"], "ACTIVE")
        self.assertEqual(again["command"], model_command())
        wait_for("an instance ready after the restart",
                 lambda: ready(self.d.get(dep["id"])) or None)

    def test_a_crash_in_the_middle_of_a_new_command_resumes_it(self):
        dep = self.d.wait_state(self.d.create(displayName="resume")["id"],
                                "ACTIVE")
        old_pid = ready(dep)[0]["pid"]
        new_cmd = "sleep 2; exec %s --port $PORT --weights %s" % (
            os.path.abspath(MODEL_SERVER), os.path.abspath(WEIGHTS))
        wr = self.d.update(dep["id"], command=new_cmd)
        wait_for("the new instance started", lambda: any(
            i["pid"] and i["pid"] != old_pid
            for i in self.d.get(dep["id"])["instances"]))
        self.d.kill()       # mid-update: the old instance still serves
        self.d.start()
        wr = self.d.wait_wr(wr["id"])
        self.assertEqual(wr["status"], "SUCCEEDED", wr)
        now = self.d.wait_state(dep["id"], "ACTIVE")
        self.assertEqual(now["command"], new_cmd)
        pids = [i["pid"] for i in ready(now)]
        self.assertEqual(len(pids), 1)
        self.assertNotEqual(pids[0], old_pid)
        self.assertEqual(cmdline(pids[0])[1], "--port")
        wait_for("the old instance gone",
                 lambda: not os.path.exists("/proc/%d" % old_pid),
                 timeout=10)

    def test_timeouts_change_at_once_and_bad_fields_change_nothing(self):
        dep = self.d.wait_state(self.d.create(displayName="tmo")["id"],
                                "ACTIVE")
        r = self.cli("deployment", "update", "tmo", "--ready-timeout", "77",
                     "--drain-timeout", "5", "-o", "json")
        out = json.loads(r.stdout)
        self.assertEqual((out["readyTimeoutSeconds"],
                          out["drainTimeoutSeconds"]), (77, 5))
        self.assertEqual(out["lifecycleState"], "ACTIVE")
        for body, field in (({"healthPath": "nope"}, "healthPath"),
                            ({"command": []}, "command"),
                            ({"environment": {"A=B": "c"}}, "environment"),
                            ({"command": "exec /no/such/program"}, "command"),
                            ({"instanceCount": 2, "healthPath": "x"},
                             "healthPath")):
            r = self.d.api("PUT", "/v1/deployments/" + dep["id"], body)
            self.assertEqual(r.status, 400, (body, r))
            self.assertIn(field, r.json["message"], r.json)
        now = self.d.get(dep["id"])
        self.assertEqual(now["instanceCount"], 1)
        self.assertEqual(now["healthPath"], "/health")
        self.assertEqual(now["command"], model_command())
        self.assertEqual(now["lifecycleState"], "ACTIVE")
        r = self.d.cli("deployment", "update", "tmo")
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("at least one", r.stderr)


class TagsAndListTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon().start()
        self.addCleanup(self.d.cleanup)

    def cli(self, *args):
        r = self.d.cli(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def names(self, *args):
        r = self.cli("deployment", "list", "-o", "json", *args)
        return [x["displayName"] for x in json.loads(r.stdout)["items"]]

    def test_tags_filters_and_sorting(self):
        ids = {}
        for name, count, tags in (("bravo", 2, ["team=vision", "tier=gold"]),
                                  ("alpha", 1, ["team=speech"]),
                                  ("charlie", 1, [])):
            args = ["deployment", "create", "--name", name, "--command",
                    model_command(), "--count", str(count), "-o", "json"]
            for t in tags:
                args += ["--tag", t]
            ids[name] = json.loads(self.cli(*args).stdout)["id"]
        for i in ids.values():
            self.d.wait_state(i, "ACTIVE")
        got = self.d.get(ids["bravo"])
        self.assertEqual(got["freeformTags"],
                         {"team": "vision", "tier": "gold"})
        self.assertEqual(self.d.get(ids["charlie"])["freeformTags"], {})
        # -o wide shows them.
        wide = self.cli("deployment", "list", "-o", "wide").stdout
        self.assertIn("TAGS", wide.splitlines()[0])
        self.assertIn("team=vision,tier=gold", wide)
        # Filters, on the server.
        self.assertEqual(self.names("--tag", "team=vision"), ["bravo"])
        self.assertEqual(self.names("--tag", "team=nobody"), [])
        self.assertEqual(self.names("--name", "alpha"), ["alpha"])
        self.assertEqual(self.names("--state", "active"),
                         ["bravo", "alpha", "charlie"])
        self.assertEqual(self.names("--state", "UPDATING"), [])
        r = self.d.api("GET", "/v1/deployments?tag=tier%3Dgold")
        self.assertEqual([x["id"] for x in r.json["items"]], [ids["bravo"]])
        # Sorting, like the OCI CLI.
        self.assertEqual(self.names("--sort-by", "displayName"),
                         ["alpha", "bravo", "charlie"])
        self.assertEqual(self.names("--sort-by", "displayName",
                                    "--sort-order", "desc"),
                         ["charlie", "bravo", "alpha"])
        self.assertEqual(self.names("--sort-order", "desc"),
                         ["charlie", "alpha", "bravo"])
        self.assertEqual(self.names("--sort-by", "instanceCount",
                                    "--sort-order", "desc"),
                         ["bravo", "alpha", "charlie"])
        r = self.d.cli("deployment", "list", "--sort-by", "color")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("sortBy", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        # An update replaces the tags at once, without a work request.
        r = self.cli("deployment", "update", "alpha", "--tag", "team=vision",
                     "-o", "json")
        out = json.loads(r.stdout)
        self.assertEqual(out["freeformTags"], {"team": "vision"})
        self.assertNotIn("operationType", out)
        self.assertEqual(self.names("--tag", "team=vision",
                                    "--sort-by", "displayName"),
                         ["alpha", "bravo"])
        # A change without a work request prints the final deployment.
        r = self.cli("deployment", "update", "alpha", "--tag", "team=speech",
                     "--wait", "-o", "wide")
        self.assertIn("team=speech", r.stdout)
        self.assertIn("ACTIVE", r.stdout)
        # OCI's limits; a refused change changes nothing.
        for tags, why in (({"a.b": "x"}, "key"), ({"": "x"}, "key"),
                          ({"k": "v" * 257}, "256"),
                          ({"k%d" % i: "v" for i in range(65)}, "64"),
                          ({"k": 1}, "string")):
            r = self.d.api("PUT", "/v1/deployments/" + ids["alpha"],
                           {"freeformTags": tags})
            self.assertEqual(r.status, 400, (tags, r))
            self.assertIn(why, r.json["message"])
        self.assertEqual(self.d.get(ids["alpha"])["freeformTags"],
                         {"team": "speech"})
        # Tags survive a restart of the daemon.
        self.d.stop()
        self.d.start()
        self.assertEqual(self.d.get(ids["bravo"])["freeformTags"],
                         {"team": "vision", "tier": "gold"})


if __name__ == "__main__":
    unittest.main()
