"""The oci backend in the real daemon against the OCI API STAND-IN
(tests/standin/oci_standin.py), not against OCI: `mdscale deployment import
--backend oci OCID`, an update that becomes one signed UpdateModelDeployment
PUT whose OCI work request the daemon follows and mirrors, a daemon killed
while OCI works that follows the same work request after its restart and
sends no second PUT, and the refusals of bad OCIDs and unknown deployments.
The stand-in checks every request's signature and body; each test ends by
asserting it recorded no violation."""
import json
import os
import unittest

from harness import Daemon, wait_for
from oci_standin_case import COMPARTMENT, OciStandinCase


class OciImportStandinTest(OciStandinCase):
    tmp_prefix = "mdscale-oci-"
    allow_http_endpoints = False

    def daemon_config(self):
        config = super().daemon_config()
        config["oci"]["metricsIntervalSeconds"] = 10
        config["sampleIntervalMillis"] = 250
        return config

    def setUp(self):
        super().setUp()
        self.st.in_progress_polls = 1
        self.addCleanup(self.no_violations)

    def no_violations(self):
        self.assertEqual(self.st.violations, [], "stand-in violations")

    def restart(self):
        self.d.kill()
        fresh = Daemon(data_dir=self.d.data_dir, config=self.config)
        fresh.owns_dir = True
        fresh.api_port, fresh.gw_port = self.d.api_port, self.d.gw_port
        self.d.owns_dir = False
        self.d = fresh.start()
        self.addCleanup(self.d.cleanup)

    def import_(self, ocid, name):
        r = self.d.cli("deployment", "import", "--backend", "oci", ocid,
                       "--name", name, "--wait", "--timeout", "30")
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        r = self.d.api("GET", "/v1/deployments?displayName=" + name)
        return r.json["items"][0]

    def test_stand_in_import_then_scale_follows_the_oci_work_request(self):
        ocid = self.st.add_deployment(shape="VM.Standard2.2", count=1)
        dep = self.import_(ocid, "imported")
        self.assertEqual(dep["lifecycleState"], "ACTIVE")
        self.assertEqual(dep["instanceCount"], 1)
        self.assertEqual(dep["instanceShapeName"], "VM.Standard2.2")
        self.assertEqual(dep["ref"], ocid)
        self.assertEqual(self.st.puts(ocid), [])   # import changes nothing

        wr = self.d.update(dep["id"], instanceCount=2)
        done = self.d.wait_wr(wr["id"], timeout=60)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        puts = self.st.puts(ocid)
        self.assertEqual(len(puts), 1)
        mc = puts[0]["body"]["modelDeploymentConfigurationDetails"][
            "modelConfigurationDetails"]
        self.assertEqual(mc["scalingPolicy"],
                         {"policyType": "FIXED_SIZE", "instanceCount": 2})
        self.assertIn("if-match", puts[0]["headers"])
        oci_wr = [s["message"] for s in done["steps"] if s["kind"] == "APPLY"]
        self.assertTrue(oci_wr[0].startswith("ocid1.datascienceworkrequest"))
        self.assertEqual(self.st.work_request(oci_wr[0])["status"],
                         "SUCCEEDED")
        d = self.d.get(dep["id"])
        self.assertEqual((d["lifecycleState"], d["instanceCount"]),
                         ("ACTIVE", 2))
        self.assertEqual(self.st.deployment(ocid)[
            "modelDeploymentConfigurationDetails"][
            "modelConfigurationDetails"]["scalingPolicy"]["instanceCount"], 2)
        # Delete only forgets: nothing is sent to OCI.
        before = len(self.st.requests())
        done = self.d.delete(dep["id"])
        self.assertEqual(done["status"], "SUCCEEDED", done)
        self.assertEqual(self.st.requests("DELETE"), [])
        self.assertEqual(self.st.puts(ocid), puts)
        self.assertEqual(self.st.deployment(ocid)["lifecycleState"], "ACTIVE")
        self.assertEqual([r for r in self.st.requests()[before:]
                          if r["method"] != "GET"], [])

    def test_stand_in_killed_daemon_follows_the_same_work_request(self):
        ocid = self.st.add_deployment(count=1)
        dep = self.import_(ocid, "survivor")
        self.st.hold = True
        wr = self.d.update(dep["id"], instanceCount=3)
        wait_for("the PUT", lambda: len(self.st.puts(ocid)) == 1, timeout=30)
        wait_for("a work request poll", lambda: self.st.requests(
            "GET", "^/20190101/workRequests/"), timeout=30)
        self.restart()
        polled_before = len(self.st.requests("GET", "^/20190101/workRequests/"))
        wait_for("polls after the restart", lambda: len(self.st.requests(
            "GET", "^/20190101/workRequests/")) > polled_before, timeout=30)
        oci_wr = self.st.requests("GET", "^/20190101/workRequests/")[-1][
            "path"].rsplit("/", 1)[1]
        self.st.finish(oci_wr, "SUCCEEDED")
        done = self.d.wait_wr(wr["id"], timeout=60)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        self.assertEqual(len(self.st.puts(ocid)), 1, "a second PUT was sent")
        ids = {r["path"].rsplit("/", 1)[1] for r in self.st.requests(
            "GET", "^/20190101/workRequests/")}
        self.assertEqual(ids, {oci_wr})
        self.assertEqual(self.d.get(dep["id"])["instanceCount"], 3)

    def test_stand_in_recipe_message_scales_and_makes_the_low_alarm_in_oci(self):
        ocid = self.st.add_deployment(count=1)
        self.import_(ocid, "alarmed")
        # The topic and the high-cpu alarm as `mdscale oci setup` or the
        # Console would have made them in OCI.
        tid = self.st._ocid("onstopic")
        with self.st.lock:
            self.st.topics[tid] = {"topicId": tid, "name": "autoscaling",
                                   "compartmentId": COMPARTMENT}
        high = self.st.add_alarm(
            "model_deployment_high_cpu",
            'CpuUtilization[5m]{resourceId = "%s"}.max() > 80' % ocid, [tid])
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "..", "..", "examples", "messages",
                               "test-alarm-scale-cpu-up.json")) as f:
            msg = f.read().replace("<YOUR_HIGH_CPU_ALARM_OCID>", high)
        msg = msg.replace("<YOUR_MODEL_DEPLOYMENT_OCID>", ocid)
        p = self.d.cli("fn", "invoke", "autoscale", input=msg)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["action"], "SCALE_OUT", out)
        self.assertEqual(out["scaleDownAlarm"], "oci")
        wait_for("the PUT", lambda: len(self.st.puts(ocid)) == 1, timeout=30)
        mc = self.st.puts(ocid)[0]["body"][
            "modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]
        self.assertEqual(mc["scalingPolicy"]["instanceCount"], 2)

        def low():
            with self.st.lock:
                return [a for a in self.st.alarms.values()
                        if a["displayName"] == "model_deployment_low_cpu"
                        and ocid in a["query"]]
        lows = wait_for("the low-cpu alarm in OCI", low, timeout=30)
        self.assertEqual(len(lows), 1)
        self.assertEqual(lows[0]["destinations"], [tid])
        self.assertIn(".max() <", lows[0]["query"])
        # mdscale's own monitoring got none.
        r = self.d.api("GET", "/v1/alarms?displayName=model_deployment_low_cpu")
        self.assertEqual(r.json["items"], [])

    def test_stand_in_oci_utilization_reaches_mdscale_monitoring(self):
        ocid = self.st.add_deployment(count=1)
        self.st.set_metric("CpuUtilization", ocid, 73.5)
        self.st.set_metric("MemoryUtilization", ocid, 41)
        dep = self.import_(ocid, "watched")

        def latest(metric):
            r = self.d.api("POST", "/v1/metrics/query", {
                "query": '%s[1m]{resourceId = "%s"}.max()'
                         % (metric, dep["id"])})
            if r.status == 404:     # no sample of that metric yet
                return None
            self.assertEqual(r.status, 200, r)
            for item in r.json["items"]:
                if item["aggregatedDatapoints"]:
                    return item["aggregatedDatapoints"][-1]["value"]
            return None
        # The two metrics come in two calls: wait for both.
        wait_for("OCI's CpuUtilization and MemoryUtilization in mdscale",
                 lambda: (latest("CpuUtilization"),
                          latest("MemoryUtilization")) == (73.5, 41),
                 timeout=40)
        calls = self.st.requests("POST", "summarizeMetricsData")
        self.assertTrue(calls)
        self.assertIn(ocid, calls[0]["body"]["query"])

    def test_stand_in_bad_ocids_are_refused_and_change_nothing(self):
        r = self.d.cli("deployment", "import", "--backend", "oci",
                       "ocid1.datasciencemodel.oc1.iad.aaaa")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not of a model deployment", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        r = self.d.cli("deployment", "import", "--backend", "oci",
                       "ocid1.datasciencemodeldeployment.oc1.xyz.aaaa")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("region", r.stderr)
        r = self.d.cli("deployment", "import", "--backend", "oci", "nope")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not an OCID", r.stderr)
        self.assertEqual(self.d.api("GET", "/v1/deployments").json["items"],
                         [])
        self.assertEqual(self.st.requests(), [])

    def test_stand_in_unknown_deployment_fails_the_import(self):
        ocid = "ocid1.datasciencemodeldeployment.oc1.us-ashburn-1.nothere"
        r = self.d.cli("deployment", "import", "--backend", "oci", ocid,
                       "--wait", "--timeout", "30")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("does not exist or is not visible", r.stderr)
        self.assertEqual(self.st.puts(), [])


if __name__ == "__main__":
    unittest.main()
