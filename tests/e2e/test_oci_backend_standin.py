"""End to end, against the OCI API stand-in (tests/standin/oci_standin.py, not
OCI): the whole chain for an `oci` deployment.

An OCI model deployment (on the stand-in) is imported into the daemon, and
`mdscale oci setup --apply` creates its alarms, topic and subscription on the
stand-in and has the daemon confirm the subscription. The recipe's test
messages, delivered by the stand-in as OCI Notifications HTTPS POSTs to the
daemon's receiver, must lead to the right UpdateModelDeployment (PUT) on the
stand-in, followed through its work request; nothing is sent while the
deployment is not ACTIVE; a daemon SIGKILLed in the middle of an OCI work
request follows that same work request after its restart and sends no
second PUT."""
import unittest

import harness
from oci_standin_case import OciStandinCase, high_cpu_message

MODEL = "ocid1.datasciencemodel.oc1.us-ashburn-1.standin"


def high_mem_message(deployment_ocid, alarm_ocid):
    """The recipe's test message for the memory alarm."""
    m = high_cpu_message(deployment_ocid, alarm_ocid)
    m["title"] = "model_deployment_high_mem"
    m["alarmMetaData"][0]["query"] = m["alarmMetaData"][0]["query"].replace(
        "CpuUtilization", "MemoryUtilization")
    return m


class OciBackendStandinTest(OciStandinCase):
    """The oci backend, end to end, against the OCI stand-in (not OCI)."""

    tmp_prefix = "mdscale-oci-backend-"

    def setUp(self):
        super().setUp()
        self.dep = self.st.add_deployment(shape="VM.Standard2.1", count=1)

    # -- helpers --
    def import_deployment(self):
        r = self.d.cli("deployment", "import", "--backend", "oci", self.dep,
                       "--wait", "--output", "json")
        self.assertEqual(r.returncode, 0, r.stderr + self.d.logs())
        return self.d.wait_state(self.dep, "ACTIVE")

    def setup_oci(self):
        r = self.d.cli("oci", "setup", self.dep, "--endpoint",
                       "http://127.0.0.1:%d" % self.d.api_port,
                       "--oci-config", self.oci_config, "--oci-api-url",
                       self.st.url, "--oci-ca-file", self.cert, "--apply",
                       "--confirmation-host", "127.0.0.1")
        self.assertEqual(r.returncode, 0, r.stderr + self.d.logs())
        (topic,) = self.st.topics
        alarms = {a["displayName"]: a["id"] for a in self.st.alarms.values()}
        return topic, alarms

    def wait_puts(self, n):
        return harness.wait_for("%d PUT(s) on the stand-in" % n,
                                lambda: len(self.st.puts(self.dep)) >= n
                                and self.st.puts(self.dep), timeout=30)

    def mcd(self):
        d = self.st.deployment(self.dep)
        return d["modelDeploymentConfigurationDetails"][
            "modelConfigurationDetails"]

    def assert_clean(self):
        self.assertEqual(self.st.violations, [], self.st.summary())

    # -- the tests --
    def test_standin_recipe_cpu_message_sends_the_count_put(self):
        self.import_deployment()
        topic, alarms = self.setup_oci()
        etag = self.st.etag(self.dep)
        res = self.st.publish(topic, high_cpu_message(
            self.dep, alarms["model_deployment_high_cpu"]))
        self.assertEqual([r[0] for r in res], [202], res)
        (put,) = self.wait_puts(1)
        self.assertEqual(put["headers"]["if-match"], etag)
        self.assertEqual(put["body"], {
            "modelDeploymentConfigurationDetails": {
                "deploymentType": "SINGLE_MODEL",
                "modelConfigurationDetails": {
                    "modelId": MODEL,
                    "scalingPolicy": {"policyType": "FIXED_SIZE",
                                      "instanceCount": 2}}}})
        wr = self.d.wait_state(self.dep, "ACTIVE")
        self.assertEqual(wr["instanceCount"], 2)
        self.assertEqual(self.mcd()["scalingPolicy"]["instanceCount"], 2)
        self.assertEqual(len(self.st.puts(self.dep)), 1)
        self.assert_clean()

    def test_standin_recipe_mem_message_sends_the_shape_put(self):
        self.import_deployment()
        topic, alarms = self.setup_oci()
        res = self.st.publish(topic, high_mem_message(
            self.dep, alarms["model_deployment_high_mem"]))
        self.assertEqual([r[0] for r in res], [202], res)
        (put,) = self.wait_puts(1)
        # The next shape of the recipe's ladder, nothing else.
        self.assertEqual(put["body"], {
            "modelDeploymentConfigurationDetails": {
                "deploymentType": "SINGLE_MODEL",
                "modelConfigurationDetails": {
                    "modelId": MODEL,
                    "instanceConfiguration": {
                        "instanceShapeName": "VM.Standard2.2"}}}})
        harness.wait_for("the new shape, ACTIVE, in the daemon", lambda: (
            lambda d: d["instanceShapeName"] == "VM.Standard2.2"
            and d["lifecycleState"] == "ACTIVE")(self.d.get(self.dep)),
            timeout=30)
        self.assertEqual(self.mcd()["instanceConfiguration"]
                         ["instanceShapeName"], "VM.Standard2.2")
        self.assertEqual(len(self.st.puts(self.dep)), 1)
        self.assert_clean()

    def publish(self, topic, msg, key):
        msg["dedupeKey"] = key
        res = self.st.publish(topic, msg)
        self.assertEqual([r[0] for r in res], [202], res)

    def history(self):
        return self.d.api("GET", "/v1/deployments/%s/scaling-history"
                          % self.dep).json["items"]

    def test_standin_zero_instances_refused_with_the_reason(self):
        self.import_deployment()
        r = self.d.api("PUT", "/v1/deployments/" + self.dep,
                       {"instanceCount": 0})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["field"], "instanceCount")
        self.assertIn("OCI model deployments have at least one instance",
                      r.json["message"])
        self.assertEqual(self.st.puts(self.dep), [])
        self.assertEqual(self.d.get(self.dep)["instanceCount"], 1)
        self.assert_clean()

    def test_standin_min_instances_zero_refused_with_the_reason(self):
        self.import_deployment()
        path = "/v1/functions/autoscale/config?deploymentId=" + self.dep
        for query in ("", "&dryRun=true"):
            r = self.d.api("PUT", path + query,
                           {"minInstances": 0, "idleSeconds": 1})
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.json["field"], "minInstances")
            self.assertIn("OCI model deployments have at least one "
                          "instance", r.json["message"])
        r = self.d.api("PUT", "/v1/deployments/%s/autoscale" % self.dep,
                       {"minInstances": 0})
        self.assertEqual((r.status, r.json["field"]), (400, "minInstances"),
                         r)
        # The default configuration may say 0 (for the deployments whose
        # backend can): an idle oci deployment stays as it is, and the
        # daemon does not retry and warn about it every second.
        r = self.d.api("PUT", "/v1/functions/autoscale/config",
                       {"minInstances": 0, "idleSeconds": 1})
        self.assertEqual(r.status, 200, r)
        import time
        time.sleep(4)
        self.assertEqual(self.st.puts(self.dep), [])
        self.assertEqual(self.d.get(self.dep)["instanceCount"], 1)
        self.assertNotIn("cannot scale to zero", self.d.logs())
        self.assert_clean()

    def test_standin_nothing_is_sent_while_the_deployment_is_not_active(self):
        self.import_deployment()
        topic, alarms = self.setup_oci()
        cpu = alarms["model_deployment_high_cpu"]
        # An update is running (OCI holds its work request): an alarm
        # message meanwhile is not acted on.
        self.st.hold = True
        r = self.d.api("PUT", "/v1/deployments/" + self.dep,
                       {"instanceCount": 2})
        self.assertEqual(r.status, 202, r)
        self.wait_puts(1)
        harness.wait_for("UPDATING in the daemon", lambda: self.d.get(
            self.dep)["lifecycleState"] == "UPDATING", timeout=30)
        self.publish(topic, high_cpu_message(self.dep, cpu), "k1")
        last = harness.wait_for("the autoscale function's decision",
                                lambda: self.history(), timeout=30)[-1]
        self.assertEqual(last["action"], "NONE", last)
        self.assertIn("UPDATING", last["reason"])
        self.assertEqual(len(self.st.puts(self.dep)), 1, self.st.summary())
        (wr_id,) = list(self.st.work_requests)
        self.st.finish(wr_id)
        harness.wait_for("count 2 and ACTIVE in the daemon", lambda: (
            lambda d: d["instanceCount"] == 2
            and d["lifecycleState"] == "ACTIVE")(self.d.get(self.dep)),
            timeout=30)
        # OCI shows the deployment UPDATING (changed outside mdscale): the
        # backend reads it before its PUT and sends nothing.
        self.st.set_state(self.dep, "UPDATING")
        self.publish(topic, high_cpu_message(self.dep, cpu), "k2")
        wr = harness.wait_for("the refused work request", lambda: [
            w for w in self.d.api("GET", "/v1/workrequests").json["items"]
            if w["status"] == "FAILED"], timeout=30)[0]
        self.assertIn("UPDATING, not ACTIVE; nothing sent", wr["errorMessage"])
        self.assertEqual(len(self.st.puts(self.dep)), 1, self.st.summary())
        self.assert_clean()

    def test_standin_killed_daemon_follows_the_same_work_request(self):
        self.import_deployment()
        topic, alarms = self.setup_oci()
        self.st.hold = True
        self.st.publish(topic, high_cpu_message(
            self.dep, alarms["model_deployment_high_cpu"]))
        self.wait_puts(1)
        wr_ids = list(self.st.work_requests)
        self.assertEqual(len(wr_ids), 1)
        harness.wait_for("a poll of the OCI work request", lambda: self.st
                         .requests("GET", "^/20190101/workRequests/"),
                         timeout=30)
        self.d.kill()
        polls_before = len(self.st.requests("GET", "^/20190101/workRequests/"))
        self.d.start()
        harness.wait_for("a poll after the restart", lambda: len(
            self.st.requests("GET", "^/20190101/workRequests/"))
            > polls_before, timeout=30)
        self.st.finish(wr_ids[0])
        harness.wait_for("count 2 in the daemon", lambda: self.d.get(
            self.dep)["instanceCount"] == 2, timeout=30)
        polled = {r["path"] for r in self.st.requests(
            "GET", "^/20190101/workRequests/")}
        self.assertEqual(polled, {"/20190101/workRequests/" + wr_ids[0]})
        self.assertEqual(len(self.st.puts(self.dep)), 1, self.st.summary())
        # One update in mdscale too, carried over the restart to its end.
        updates = [w for w in self.d.api("GET", "/v1/workrequests")
                   .json["items"] if w["operationType"] == "UPDATE_DEPLOYMENT"]
        self.assertEqual(len(updates), 1, updates)
        self.assertEqual(self.d.wait_wr(updates[0]["id"])["status"],
                         "SUCCEEDED")
        self.assert_clean()


if __name__ == "__main__":
    unittest.main()
