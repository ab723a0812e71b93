"""End to end, against the OCI API stand-in (tests/standin/oci_standin.py, not
OCI): `mdscale oci setup DEPLOYMENT_OCID --endpoint URL [--apply]`.

Without --apply it only reads the deployment and prints the plan; with
--apply it creates exactly the documented resources on the stand-in (one
topic, the recipe's two high alarms, one CUSTOM_HTTPS subscription to the
daemon's receiver), every request signed and checked against the API's
shapes, and the daemon confirms the subscription. Bad input changes nothing
on either side."""
import os
import unittest

from oci_standin_case import COMPARTMENT, OciStandinCase


class OciSetupStandinTest(OciStandinCase):
    """`mdscale oci setup` against the OCI stand-in (not OCI)."""

    tmp_prefix = "mdscale-oci-setup-"

    def setUp(self):
        super().setUp()
        self.dep = self.st.add_deployment()
        self.endpoint = "http://127.0.0.1:%d" % self.d.api_port

    def setup_cli(self, *extra, ocid=None, config=None):
        args = ["oci", "setup", ocid or self.dep, "--endpoint", self.endpoint,
                "--oci-config", config or self.oci_config,
                "--oci-api-url", self.st.url, "--oci-ca-file", self.cert]
        return self.d.cli(*(args + list(extra)))

    def posts(self):
        return [r["path"] for r in self.st.requests("POST")]

    def nothing_created(self):
        self.assertEqual(self.posts(), [])
        self.assertEqual((self.st.topics, self.st.alarms,
                          self.st.subscriptions), ({}, {}, {}))
        self.assertEqual(self.d.api("GET", "/v1/topics").json["items"], [])

    def expected_alarm(self, title, metric, topic):
        return {
            "displayName": title, "compartmentId": COMPARTMENT,
            "metricCompartmentId": COMPARTMENT,
            "namespace": "oci_datascience_modeldeploy",
            "query": '%s[5m]{resourceId = "%s"}.mean() > 80'
                     % (metric, self.dep),
            "severity": "INFO", "destinations": [topic], "isEnabled": True,
            "pendingDuration": "PT1M", "repeatNotificationDuration": "PT5M",
            "messageFormat": "ONS_OPTIMIZED"}

    def test_standin_setup_prints_the_plan_and_creates_nothing(self):
        r = self.setup_cli()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('CpuUtilization[5m]{resourceId = \\"%s\\"}.mean() > 80'
                      % self.dep, r.stdout)
        self.assertIn("MemoryUtilization[5m]", r.stdout)
        self.assertIn("POST %s/20181201/topics" % self.st.url, r.stdout)
        self.assertIn("POST %s/20181201/subscriptions" % self.st.url, r.stdout)
        self.assertIn("--apply", r.stdout)
        # It read the deployment, signed, and created nothing.
        self.assertEqual([(x["method"], x["path"]) for x in self.st.log],
                         [("GET", "/20190101/modelDeployments/" + self.dep)])
        self.nothing_created()
        self.assertEqual(self.st.violations, [], self.st.summary())

    def test_standin_setup_apply_creates_exactly_the_documented_resources(self):
        r = self.setup_cli("--apply", "--confirmation-host", "127.0.0.1")
        self.assertEqual(r.returncode, 0, r.stderr + self.st.summary() +
                         self.d.logs())
        self.assertEqual(self.st.violations, [], self.st.summary())
        self.assertEqual(self.posts(), [
            "/20181201/topics", "/20180401/alarms", "/20180401/alarms",
            "/20181201/subscriptions"])
        # Each create carries its own opc-retry-token.
        tokens = [x["headers"].get("opc-retry-token")
                  for x in self.st.requests("POST")]
        self.assertTrue(all(tokens), tokens)
        self.assertEqual(len(set(tokens)), 4, tokens)
        (topic,) = self.st.topics.values()
        self.assertEqual((topic["name"], topic["compartmentId"]),
                         ("model-deployment-autoscaling", COMPARTMENT))
        alarms = sorted(self.st.alarms.values(),
                        key=lambda a: a["displayName"])
        self.assertEqual(len(alarms), 2)
        for got, (title, metric) in zip(alarms, [
                ("model_deployment_high_cpu", "CpuUtilization"),
                ("model_deployment_high_mem", "MemoryUtilization")]):
            want = self.expected_alarm(title, metric, topic["topicId"])
            self.assertEqual({k: got[k] for k in want}, want)
            self.assertEqual(set(self.st.requests("POST", "alarms$")[0]
                                 ["body"]), set(want))
        (sub,) = self.st.subscriptions.values()
        local = self.d.api("GET", "/v1/topics?name=model-deployment-"
                           "autoscaling").json["items"][0]["topicId"]
        self.assertEqual(
            (sub["topicId"], sub["protocol"], sub["endpoint"],
             sub["lifecycleState"]),
            (topic["topicId"], "CUSTOM_HTTPS",
             "%s/v1/oci/notifications/%s" % (self.endpoint, local), "ACTIVE"))
        # The daemon: the local topic goes to the autoscale function, and
        # its receiver is confirmed for that subscription.
        subs = self.d.api("GET", "/v1/subscriptions?topicId=" + local).json
        self.assertEqual([(s["protocol"], s["endpoint"])
                          for s in subs["items"]], [("FUNCTION", "autoscale")])
        rcv = self.d.api("GET", "/v1/oci/receivers/" + local).json
        self.assertEqual((rcv["state"], rcv["subscriptionId"],
                          rcv["ociTopicId"]),
                         ("CONFIRMED", sub["id"], topic["topicId"]))
        self.assertIn("confirmed by the daemon", r.stdout)

    def test_standin_setup_retries_a_lost_answer_without_duplicates(self):
        # The first CreateAlarm is carried out but its answer is a 500:
        # the client retries with the same opc-retry-token, and OCI (the
        # stand-in) hands back the alarm it made.
        self.st.inject("POST", "^/20180401/alarms$", 500, after=True)
        self.st.inject("POST", "^/20181201/subscriptions$", 429,
                       retry_after=1)
        r = self.setup_cli("--apply", "--confirmation-host", "127.0.0.1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([x["status"] for x in self.st.requests("POST")],
                         [200, 500, 200, 200, 429, 200])
        self.assertEqual(len(self.st.alarms), 2)
        self.assertEqual(len(self.st.subscriptions), 1)
        self.assertEqual(self.st.violations, [], self.st.summary())

    def test_standin_setup_bad_input_changes_nothing(self):
        cases = [
            (self.setup_cli(ocid="ocid1.instance.oc1.us-ashburn-1.x",
                            *["--apply"]), 2, "not a model deployment OCID"),
            (self.setup_cli("--apply", ocid="ocid1.datasciencemodeldeployment"
                            ".oc1.us-ashburn-1.missing"), 1,
             "GetModelDeployment: OCI answered HTTP 404"),
            (self.setup_cli("--apply", config=os.path.join(self.tmp, "nope")),
             1, "OCI config"),
            (self.d.cli("oci", "setup", self.dep, "--endpoint",
                        "http://mdscale.example.com", "--oci-config",
                        self.oci_config, "--apply"), 2, "https://"),
            (self.d.cli("oci", "setup", self.dep, "--apply"), 2,
             "missing --endpoint"),
        ]
        for r, code, text in cases:
            self.assertEqual(r.returncode, code, (r.stdout, r.stderr))
            self.assertIn(text, r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.nothing_created()
        self.assertEqual(self.st.violations, [], self.st.summary())

    def test_standin_setup_reports_an_unreachable_receiver(self):
        # The receiver is enabled, but the confirmation never arrives (as
        # when OCI cannot reach the endpoint): setup says so after --wait.
        self.st.auto_confirmation = False
        r = self.setup_cli("--apply", "--confirmation-host", "127.0.0.1",
                           "--wait", "1")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("is not confirmed after 1s", r.stderr)
        self.assertIn("WAITING_FOR_CONFIRMATION", r.stderr)
        (sub,) = self.st.subscriptions.values()
        self.assertEqual(sub["lifecycleState"], "PENDING")


if __name__ == "__main__":
    unittest.main()
