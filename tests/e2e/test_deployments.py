"""Deployments of the example model server on the real daemon: serving
through the gateway, cgroups, restarts, and zero-downtime scaling and shape
changes under a continuous load."""
import os
import signal
import time
import unittest

from harness import Daemon, Load, digits_rows, wait_for


def cgroup_file(ctl, inst_id, name):
    with open(os.path.join("/sys/fs/cgroup", ctl, "mdscale", inst_id, name)) as f:
        return f.read().strip()


class DeploymentTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon().start()
        self.addCleanup(self.d.cleanup)

    def test_create_serves_predictions_through_the_gateway(self):
        dep = self.d.create(displayName="digits", instanceCount=2)
        self.assertEqual(dep["lifecycleState"], "CREATING")
        self.assertTrue(dep["id"].startswith("md-"))
        dep = self.d.wait_state(dep["id"], "ACTIVE")
        self.assertEqual(len(dep["instances"]), 2)
        for inst in dep["instances"]:
            self.assertEqual(inst["state"], "READY")
            self.assertGreater(inst["pid"], 0)
            self.assertEqual(inst["instanceShapeName"], "local.xs")
        rows = digits_rows(20)
        body = {"instances": [r for r, _ in rows]}
        for path in ("/%s/predict" % dep["id"], "/digits/predict"):
            r = self.d.gw("POST", path, body)
            self.assertEqual(r.status, 200, r)
            right = sum(p == y for p, (_, y) in
                        zip(r.json["predictions"], rows))
            self.assertGreaterEqual(right, 18)
        # Query strings and unknown paths reach the instance as they are.
        self.assertEqual(self.d.gw("GET", "/digits/health?x=1").status, 200)
        self.assertEqual(self.d.gw("GET", "/digits/nope").status, 404)
        # Unknown deployment: 404 from the gateway itself, as JSON.
        r = self.d.gw("GET", "/no-such-deployment/predict")
        self.assertEqual(r.status, 404)
        self.assertIsNotNone(r.json)
        # Both instances got traffic (least outstanding, round robin).
        served = {}
        for inst in dep["instances"]:
            served[inst["id"]] = inst["port"]
        self.assertEqual(len(set(served.values())), 2)
        listed = self.d.api("GET", "/v1/deployments").json["items"]
        self.assertEqual([x["id"] for x in listed], [dep["id"]])
        wr = self.d.api("GET", "/v1/workrequests?deploymentId=" + dep["id"])
        self.assertEqual(wr.json["items"][0]["operationType"],
                         "CREATE_DEPLOYMENT")
        self.assertEqual(wr.json["items"][0]["status"], "SUCCEEDED")

    def test_instances_run_in_cgroups_with_the_shape_limits(self):
        dep = self.d.create(displayName="limits", instanceShapeName="local.s")
        dep = self.d.wait_state(dep["id"], "ACTIVE")
        inst = dep["instances"][0]
        self.assertIsNotNone(inst["cgroup"])
        # local.s: half a CPU, 512 MiB (cgroup v1 on this machine).
        self.assertEqual(cgroup_file("cpu", inst["id"], "cpu.cfs_quota_us"),
                         "50000")
        self.assertEqual(cgroup_file("cpu", inst["id"], "cpu.cfs_period_us"),
                         "100000")
        self.assertEqual(cgroup_file("memory", inst["id"],
                                     "memory.limit_in_bytes"),
                         str(512 << 20))
        procs = cgroup_file("memory", inst["id"], "cgroup.procs").split()
        self.assertIn(str(inst["pid"]), procs)
        self.assertIn(str(inst["pid"]),
                      cgroup_file("cpu", inst["id"], "cgroup.procs").split())
        # Deleting drains, stops, and removes the cgroups.
        r = self.d.api("DELETE", "/v1/deployments/" + dep["id"])
        self.assertEqual(r.status, 202, r)
        self.d.wait_wr(r.json["id"])
        wait_for("the deployment to be DELETED",
                 lambda: self.d.get(dep["id"])["lifecycleState"] == "DELETED")
        self.assertFalse(os.path.exists(
            "/sys/fs/cgroup/memory/mdscale/" + inst["id"]))
        self.assertRaises(OSError, os.kill, inst["pid"], 0)
        self.assertEqual(self.d.gw("GET", "/limits/health").status, 404)
        self.assertEqual(self.d.api("GET", "/v1/deployments").json["items"], [])

    def test_a_crashed_instance_is_restarted_and_counted(self):
        dep = self.d.wait_state(self.d.create(displayName="crashy")["id"],
                                "ACTIVE")
        inst = dep["instances"][0]
        os.kill(inst["pid"], signal.SIGKILL)

        def restarted():
            i = self.d.get(dep["id"])["instances"][0]
            return i if i["restarts"] == 1 and i["state"] == "READY" else None
        now = wait_for("the restart", restarted, timeout=30)
        self.assertNotEqual(now["pid"], inst["pid"])
        self.assertEqual(now["lastExit"], "killed by signal 9")
        self.assertEqual(self.d.gw("GET", "/crashy/health").status, 200)

    def test_an_instance_over_its_memory_limit_is_said_so(self):
        # local.xs has 256 MB: the instance writes 400 MB and is killed by
        # the limit, not by someone (the test above).
        dep = self.d.create(
            displayName="hungry", readyTimeoutSeconds=30,
            command="exec python3 -c 'x = b\"m\" * (400 << 20)'")

        def killed():
            for i in self.d.get(dep["id"])["instances"]:
                if i["lastExit"]:
                    return i["lastExit"]
            return None
        self.assertEqual(wait_for("the instance's end", killed, timeout=60),
                         "killed by signal 9: its memory limit was reached")

    def test_no_ready_instance_answers_503_fast(self):
        dep = self.d.create(displayName="slow",
                            command="exec sleep 1000", readyTimeoutSeconds=30)
        t0 = time.monotonic()
        r = self.d.gw("POST", "/slow/predict", {"instances": []})
        self.assertEqual(r.status, 503)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertIsNotNone(r.json)
        self.assertEqual(self.d.get(dep["id"])["lifecycleState"], "CREATING")

    def test_scale_and_reshape_under_load_lose_no_request(self):
        dep = self.d.wait_state(self.d.create(displayName="zdt")["id"],
                                "ACTIVE")
        dep_id = dep["id"]
        with Load(self.d.gw_port, "/zdt/predict", threads=4) as load:
            time.sleep(0.5)
            for spec, want in (({"instanceCount": 3}, (3, "local.xs")),
                               ({"instanceShapeName": "local.s"}, (3, "local.s")),
                               ({"instanceCount": 1}, (1, "local.s")),
                               ({"instanceShapeName": "local.xs"}, (1, "local.xs"))):
                wr = self.d.update(dep_id, **spec)
                self.assertEqual(self.d.get(dep_id)["lifecycleState"], "UPDATING")
                # A second update while one runs is refused.
                r = self.d.api("PUT", "/v1/deployments/" + dep_id,
                               {"instanceCount": 2})
                self.assertEqual(r.status, 409, r)
                self.assertEqual(r.json["code"], "IncorrectState")
                wr = self.d.wait_wr(wr["id"])
                self.assertEqual(wr["status"], "SUCCEEDED", wr)
                now = self.d.wait_state(dep_id, "ACTIVE")
                ready = [i for i in now["instances"] if i["state"] == "READY"]
                self.assertEqual((len(ready), now["instanceShapeName"]), want)
                self.assertTrue(all(i["instanceShapeName"] == want[1]
                                    for i in ready))
                time.sleep(0.3)
            load.stop()
        self.assertEqual(load.failures, [])
        self.assertGreater(load.ok, 200)
        # The shape change's steps: start all, wait, switch, drain, stop.
        kinds = [s["kind"] for s in wr["steps"]]
        self.assertEqual(kinds, ["START_INSTANCE", "WAIT_READY", "ROUTE",
                                 "DRAIN_INSTANCE", "STOP_INSTANCE"])
        self.assertTrue(all(s["status"] == "SUCCEEDED" for s in wr["steps"]))
        self.assertTrue(all(s["timeFinished"] for s in wr["steps"]))

    def test_a_shape_that_cannot_start_keeps_the_old_set_serving(self):
        # Instances on the new shape can never be ready (the health path
        # only exists for the old one): the update fails, the old serves.
        dep = self.d.wait_state(self.d.create(
            displayName="keep", readyTimeoutSeconds=3,
            command="if [ \"$MDSCALE_SHAPE\" = local.s ]; then exec sleep 100;"
                    " fi; " + __import__("harness").model_command())["id"],
            "ACTIVE")
        old = dep["instances"][0]
        with Load(self.d.gw_port, "/keep/predict", threads=2) as load:
            wr = self.d.wait_wr(self.d.update(
                dep["id"], instanceShapeName="local.s")["id"])
            load.stop()
        self.assertEqual(wr["status"], "FAILED")
        self.assertIn("not ready", wr["errorMessage"])
        now = self.d.wait_state(dep["id"], "ACTIVE")
        self.assertEqual(now["instanceShapeName"], "local.xs")
        self.assertEqual(now["instanceCount"], 1)
        ready = [i for i in now["instances"] if i["state"] == "READY"]
        self.assertEqual([i["id"] for i in ready], [old["id"]])
        self.assertEqual(load.failures, [])
        self.assertGreater(load.ok, 20)


if __name__ == "__main__":
    unittest.main()
