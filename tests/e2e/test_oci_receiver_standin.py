"""End to end, against the OCI API stand-in (tests/standin/oci_standin.py, not
OCI): the daemon's receiver for OCI Notifications HTTPS subscriptions.

The stand-in plays OCI Notifications: creating a CUSTOM_HTTPS subscription
on it POSTs the confirmation message to the daemon's
/v1/oci/notifications/{topic}; the daemon fetches the ConfirmationURL (over
HTTPS, trusting the stand-in's test certificate through oci.caFile);
published alarm messages are then delivered with the X-OCI-NS-* headers and
must reach the local topic's subscriptions exactly as local alarm messages
do. Refusals: a topic whose receiver is off, a message from another
subscription, an expired confirmation URL, a confirmation link on a foreign
host, a second subscription."""
import json
import time
import unittest

import harness
from oci_standin_case import COMPARTMENT, OciStandinCase, high_cpu_message
# tests/standin is on the path through oci_standin_case.
from test_oci_standin import Client, Receiver


class OciReceiverStandinTest(OciStandinCase):
    """OCI Notifications receiver against the OCI stand-in (not OCI)."""

    def setUp(self):
        super().setUp()
        self.oci = Client(self.st)
        self.sink = Receiver()
        self.addCleanup(self.sink.close)
        self.topic = self.local_topic("model-deployment-autoscaling")

    # -- helpers --
    def local_topic(self, name):
        r = self.d.api("POST", "/v1/topics", {"name": name})
        self.assertEqual(r.status, 201, r)
        tid = r.json["topicId"]
        r = self.d.api("POST", "/v1/subscriptions", {
            "topicId": tid, "protocol": "HTTP", "endpoint": self.sink.url})
        self.assertEqual(r.status, 201, r)
        return tid

    def enable(self, topic=None, **kw):
        body = {"enabled": True, "confirmationHostSuffix": "127.0.0.1"}
        body.update(kw)
        r = self.d.api("PUT", "/v1/oci/receivers/" + (topic or self.topic),
                       body)
        self.assertEqual(r.status, 200, r)
        return r.json

    def receiver(self, topic=None):
        r = self.d.api("GET", "/v1/oci/receivers/" + (topic or self.topic))
        self.assertEqual(r.status, 200, r)
        return r.json

    def endpoint(self, topic=None):
        return "http://127.0.0.1:%d/v1/oci/notifications/%s" % (
            self.d.api_port, topic or self.topic)

    def oci_topic(self, name="model-deployment-autoscaling"):
        s, t, _ = self.oci.call("POST", "/20181201/topics", {
            "name": name, "compartmentId": COMPARTMENT})
        self.assertEqual(s, 200, t)
        return t["topicId"]

    def oci_subscription(self, oci_topic, endpoint=None):
        s, sub, _ = self.oci.call("POST", "/20181201/subscriptions", {
            "topicId": oci_topic, "compartmentId": COMPARTMENT,
            "protocol": "CUSTOM_HTTPS",
            "endpoint": endpoint or self.endpoint()})
        self.assertEqual(s, 200, sub)
        return sub["id"]

    def sub_state(self, sub_id):
        s, sub, _ = self.oci.call("GET", "/20181201/subscriptions/" + sub_id)
        self.assertEqual(s, 200, sub)
        return sub["lifecycleState"]

    def confirmed_pair(self):
        self.enable()
        oci_topic = self.oci_topic()
        sub = self.oci_subscription(oci_topic)
        harness.wait_for("the subscription's confirmation",
                         lambda: self.sub_state(sub) == "ACTIVE", timeout=15)
        harness.wait_for("the receiver's CONFIRMED state",
                         lambda: self.receiver()["state"] == "CONFIRMED",
                         timeout=5)
        return oci_topic, sub

    def sink_messages(self):
        return [b for _, b in self.sink.got]

    # -- the tests --
    def test_standin_confirmation_then_alarm_reaches_the_topic(self):
        oci_topic, sub = self.confirmed_pair()
        conf = self.st.deliveries[0]
        self.assertEqual(conf["headers"]["X-OCI-NS-MessageType"],
                         "SubscriptionConfirmation")
        self.assertEqual(conf["status"], 200, conf)
        self.assertEqual(json.loads(conf["response"])["status"], "CONFIRMED")
        rcv = self.receiver()
        self.assertEqual((rcv["subscriptionId"], rcv["ociTopicId"]),
                         (sub, oci_topic))
        # The confirmation link was fetched once, over HTTPS.
        self.assertEqual(len(self.st.requests(
            "GET", "/subscriptions/.*/confirmation$")), 1)
        msg = high_cpu_message("ocid1.datasciencemodeldeployment.oc1.x.y")
        res = self.st.publish(oci_topic, msg)
        self.assertEqual([r[0] for r in res], [202], res)
        harness.wait_for("the alarm message on the local topic's "
                         "subscription", lambda: self.sink_messages(),
                         timeout=15)
        self.assertEqual(self.sink_messages(), [msg])
        self.assertEqual(self.receiver()["messagesAccepted"], 1)
        self.assertEqual(self.st.violations, [], self.st.summary())

    def test_standin_receiver_is_off_by_default(self):
        oci_topic = self.oci_topic()
        sub = self.oci_subscription(oci_topic)
        harness.wait_for("the confirmation attempt",
                         lambda: self.st.deliveries, timeout=10)
        d = self.st.deliveries[0]
        self.assertEqual(d["status"], 404, d)
        self.assertIn("no OCI Notifications receiver is enabled",
                      json.loads(d["response"])["message"])
        self.assertEqual(self.sub_state(sub), "PENDING")
        self.assertEqual(self.st.requests("GET", "/confirmation$"), [])
        r = self.d.api("GET", "/v1/oci/receivers/" + self.topic)
        self.assertEqual(r.status, 404, r)

    def test_standin_settings_need_the_token(self):
        r = self.d.api("PUT", "/v1/oci/receivers/" + self.topic,
                       {"enabled": True}, auth=False)
        self.assertEqual(r.status, 401, r)
        for bad, field in (({"enabled": "yes"}, "enabled"),
                           ({"enabled": True, "extra": 1}, "extra"),
                           ({"enabled": True, "subscriptionId": "x"},
                            "subscriptionId"),
                           ({"enabled": True,
                             "confirmationHostSuffix": "a/b"},
                            "confirmationHostSuffix")):
            r = self.d.api("PUT", "/v1/oci/receivers/" + self.topic, bad)
            self.assertEqual((r.status, r.json.get("field")), (400, field), r)
        r = self.d.api("PUT", "/v1/oci/receivers/topic-nope",
                       {"enabled": True})
        self.assertEqual(r.status, 404, r)
        r = self.d.api("GET", "/v1/oci/receivers")
        self.assertEqual(r.json["items"], [])

    def test_standin_message_from_another_subscription_is_refused(self):
        oci_topic, sub = self.confirmed_pair()
        msg = high_cpu_message("ocid1.datasciencemodeldeployment.oc1.x.y")
        other = "ocid1.onssubscription.oc1.us-ashburn-1.someoneelse"
        status, text = self.st.publish_as(self.endpoint(), msg, other,
                                          oci_topic)
        self.assertEqual(status, 403, text)
        err = json.loads(text)
        self.assertEqual(err["field"], "X-OCI-NS-SubscriptionId")
        self.assertIn(other, err["message"])
        self.assertIn(sub, err["message"])
        # Right subscription, wrong OCI topic: refused too.
        status, text = self.st.publish_as(
            self.endpoint(), msg, sub, "ocid1.onstopic.oc1.x.other")
        self.assertEqual(status, 403, text)
        # No headers at all (not from OCI Notifications).
        r = harness.request(self.d.api_port, "POST",
                            "/v1/oci/notifications/" + self.topic, msg)
        self.assertEqual(r.status, 403, r)
        time.sleep(1.0)
        self.assertEqual(self.sink_messages(), [])
        rcv = self.receiver()
        self.assertEqual((rcv["messagesAccepted"], rcv["messagesRefused"]),
                         (0, 3))
        self.assertIn("X-OCI-NS-SubscriptionId", rcv["lastError"])
        # A second subscription cannot take over the confirmed topic.
        sub2 = self.oci_subscription(oci_topic)
        harness.wait_for("the second confirmation attempt",
                         lambda: len(self.st.deliveries) >= 4, timeout=10)
        self.assertEqual(self.st.deliveries[-1]["status"], 403)
        self.assertEqual(self.sub_state(sub2), "PENDING")
        self.assertEqual(self.receiver()["subscriptionId"], sub)

    def test_standin_expired_confirmation_url_is_reported(self):
        self.enable()
        self.st.auto_confirmation = False
        oci_topic = self.oci_topic()
        sub = self.oci_subscription(oci_topic)
        self.st.expire_confirmations()
        status, text = self.st.send_confirmation(sub)
        self.assertEqual(status, 400, text)
        err = json.loads(text)
        self.assertEqual(err["field"], "ConfirmationURL")
        self.assertIn("expired", err["message"])
        self.assertIn("resend the confirmation", err["message"])
        self.assertEqual(self.sub_state(sub), "PENDING")
        rcv = self.receiver()
        self.assertEqual(rcv["state"], "WAITING_FOR_CONFIRMATION")
        self.assertIn("expired", rcv["lastError"])
        # Nothing is accepted from the unconfirmed subscription.
        msg = high_cpu_message("ocid1.datasciencemodeldeployment.oc1.x.y")
        status, text = self.st.publish_as(self.endpoint(), msg, sub, oci_topic)
        self.assertEqual(status, 403, text)
        self.assertIn("no confirmed OCI subscription", text)

    def test_standin_confirmation_link_on_a_foreign_host_is_not_fetched(self):
        self.enable(confirmationHostSuffix=".oraclecloud.com")
        self.st.auto_confirmation = False
        oci_topic = self.oci_topic()
        sub = self.oci_subscription(oci_topic)
        status, text = self.st.send_confirmation(sub)
        self.assertEqual(status, 400, text)
        self.assertIn("not an OCI Notifications host", text)
        # A link to another subscription's confirmation: refused as well.
        self.enable()
        hdrs = {"X-OCI-NS-MessageType": "SubscriptionConfirmation",
                "X-OCI-NS-SubscriptionId": sub,
                "X-OCI-NS-TopicOcid": oci_topic}
        other = self.st.confirmation_url(sub).replace(
            sub, "ocid1.onssubscription.oc1.x.other")
        status, text = self.st.deliver(self.endpoint(),
                                       {"ConfirmationURL": other}, hdrs)
        self.assertEqual(status, 400, text)
        self.assertIn("not the confirmation link of subscription", text)
        self.assertEqual(self.st.requests("GET", "/confirmation$"), [])
        self.assertEqual(self.sub_state(sub), "PENDING")

    def test_standin_receiver_from_the_cli(self):
        r = self.d.cli("oci-receiver", "enable", self.topic,
                       "--confirmation-host", "127.0.0.1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("WAITING_FOR_CONFIRMATION", r.stdout)
        oci_topic = self.oci_topic()
        sub = self.oci_subscription(oci_topic)
        harness.wait_for("the confirmation", lambda: self.sub_state(sub)
                         == "ACTIVE", timeout=15)
        r = self.d.cli("oci-receiver", "get", self.topic)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("CONFIRMED", r.stdout)
        self.assertIn(sub, r.stdout)
        r = self.d.cli("oci-receiver", "list", "--output", "json")
        self.assertEqual([i["topicId"] for i in json.loads(r.stdout)["items"]],
                         [self.topic])
        r = self.d.cli("oci-receiver", "disable", self.topic)
        self.assertIn("DISABLED", r.stdout)
        r = self.d.cli("oci-receiver", "reset", self.topic)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.d.cli("oci-receiver", "get", self.topic)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("has no OCI receiver", r.stderr)
        r = self.d.cli("oci-receiver", "enable", "topic-nope")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        r = self.d.cli("oci-receiver", "enable", self.topic, "--subscription",
                       "nope")
        self.assertEqual(r.returncode, 1)
        self.assertIn("subscriptionId", r.stderr)

    def test_standin_confirmation_survives_a_restart(self):
        oci_topic, sub = self.confirmed_pair()
        self.d.kill()
        self.d.start()
        rcv = self.receiver()
        self.assertEqual((rcv["state"], rcv["subscriptionId"]),
                         ("CONFIRMED", sub))
        msg = high_cpu_message("ocid1.datasciencemodeldeployment.oc1.x.z")
        res = self.st.publish(oci_topic, msg)
        self.assertEqual([r[0] for r in res], [202], res)
        harness.wait_for("the message after the restart",
                         lambda: self.sink_messages(), timeout=15)
        # Disabled: refused, the confirmation kept for re-enabling.
        self.enable(enabled=False)
        res = self.st.publish(oci_topic, msg)
        self.assertEqual([r[0] for r in res], [404], res)
        self.assertEqual(self.receiver()["subscriptionId"], sub)


if __name__ == "__main__":
    unittest.main()
