"""POST /v1/alertmanager/{topic}: Alertmanager's webhook (payload version 4,
as Alertmanager 0.25 sends it) turned into OCI alarm messages on a topic,
against a real daemon; the messages are read where a COMMAND subscription
writes them. The real Prometheus and Alertmanager drive it in
test_prometheus_alerting.py."""

import os
import shutil
import tempfile
import unittest

from harness import Daemon, read_jsonl, wait_for

FP = "1a30ba71cca2921f"


def alert(status="firing", fp=FP, starts="2026-12-06T20:00:00.123456789Z",
          ends="0001-01-01T00:00:00Z", **labels):
    lab = {"alertname": "model_deployment_high_cpu",
           "deployment": "md-0123456789abcdef", "severity": "info",
           "job": "mdscale"}
    lab.update(labels)
    return {"status": status, "labels": lab,
            "annotations": {"summary": "CPU high for md-0123456789abcdef"},
            "startsAt": starts, "endsAt": ends,
            "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=max+by"
                            "+%28deployment%29+%28x%29+%3E+0.8&g0.tab=1",
            "fingerprint": fp}


def webhook(*alerts, status=None):
    firing = any(a["status"] == "firing" for a in alerts)
    return {"receiver": "mdscale", "status": status or
            ("firing" if firing else "resolved"),
            "alerts": list(alerts),
            "groupLabels": {"alertname": "model_deployment_high_cpu"},
            "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://127.0.0.1:9093", "version": "4",
            "groupKey": "{}:{alertname=\"model_deployment_high_cpu\"}",
            "truncatedAlerts": 0}


class AlertmanagerWebhookTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon().start()
        try:
            # The COMMAND subscription runs as the unprivileged instance
            # user: it writes where that user may.
            cls.outdir = tempfile.mkdtemp(prefix="mdscale-am-")
            os.chmod(cls.outdir, 0o1777)
            cls.out = os.path.join(cls.outdir, "messages.jsonl")
            r = cls.d.api("POST", "/v1/topics", {"name": "am"})
            assert r.status == 201, r
            cls.topic = r.json["topicId"]
            r = cls.d.api("POST", "/v1/subscriptions", {
                "topicId": cls.topic, "protocol": "COMMAND",
                # One write per message, so a message cut short (by the
                # daemon's restart) is not glued to the next one.
                "command": ["/bin/sh", "-c",
                            "m=$(cat); printf '%%s\\n' \"$m\" >> '%s'"
                            % cls.out]})
            assert r.status == 201, r
        except BaseException:
            cls.d.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        shutil.rmtree(cls.outdir, ignore_errors=True)

    def messages(self):
        return read_jsonl(self.out)

    def wait_messages(self, n):
        return wait_for("%d messages delivered" % n,
                        lambda: (lambda m: m if len(m) >= n else None)(
                            self.messages()), timeout=20)

    def post(self, body, topic=None, query="", auth=True):
        return self.d.api("POST", "/v1/alertmanager/%s%s"
                          % (topic or self.topic, query), body, auth=auth)

    def test_1_episode_repeat_resolve_and_restart(self):
        r = self.post(webhook(alert()))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["alerts"][0]["type"], "OK_TO_FIRING")
        self.assertTrue(r.json["alerts"][0]["messageId"].startswith("msg-"))
        m = self.wait_messages(1)[0]
        self.assertEqual(m["type"], "OK_TO_FIRING")
        self.assertEqual(m["title"], "model_deployment_high_cpu")
        self.assertEqual(m["dedupeKey"], FP)
        self.assertEqual(m["severity"], "INFO")
        self.assertEqual(m["body"], "CPU high for md-0123456789abcdef")
        self.assertEqual(m["timestamp"], "2026-12-06T20:00:00.123Z")
        meta = m["alarmMetaData"][0]
        self.assertEqual(meta["dimensions"][0]["resourceId"],
                         "md-0123456789abcdef")
        self.assertEqual(list(meta["dimensions"][0])[0], "resourceId")
        self.assertEqual(meta["status"], "FIRING")
        self.assertEqual(meta["query"], "max by (deployment) (x) > 0.8")
        self.assertEqual(meta["id"], "alertmanager:model_deployment_high_cpu")
        # Alertmanager sends the group again: a REPEAT, not a new episode.
        r = self.post(webhook(alert()))
        self.assertEqual(r.json["alerts"][0]["type"], "REPEAT", r)
        # Across a restart too: the firing alerts are in the store.
        self.wait_messages(2)
        self.d.stop()
        self.d.start()
        r = self.post(webhook(alert()))
        self.assertEqual(r.json["alerts"][0]["type"], "REPEAT", r)
        # Resolved: FIRING_TO_OK once; the same again says nothing.
        done = alert("resolved", ends="2026-12-06T20:05:00Z")
        r = self.post(webhook(done))
        self.assertEqual(r.json["alerts"][0]["type"], "FIRING_TO_OK", r)
        r = self.post(webhook(done))
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.json["alerts"][0]["type"], r)
        self.assertIsNone(r.json["alerts"][0]["messageId"], r)
        msgs = self.wait_messages(4)
        self.assertEqual([x["type"] for x in msgs],
                         ["OK_TO_FIRING", "REPEAT", "REPEAT", "FIRING_TO_OK"])
        self.assertEqual(msgs[3]["timestamp"], "2026-12-06T20:05:00Z")
        self.assertEqual(msgs[3]["alarmMetaData"][0]["status"], "OK")
        # A new start of the same alert is a new episode.
        r = self.post(webhook(alert(starts="2026-12-06T21:00:00Z")))
        self.assertEqual(r.json["alerts"][0]["type"], "OK_TO_FIRING", r)
        self.assertEqual(self.post(webhook(alert(
            "resolved", starts="2026-12-06T21:00:00Z",
            ends="2026-12-06T21:01:00Z"))).status, 200)

    def test_2_resource_label_is_configurable(self):
        a = alert(fp="00000000000000aa", pod="pod-7")
        r = self.post(webhook(a), query="?resourceLabel=pod")
        self.assertEqual(r.status, 200, r)
        m = [x for x in self.wait_messages(7)
             if x["dedupeKey"] == "00000000000000aa"][0]
        dims = m["alarmMetaData"][0]["dimensions"][0]
        self.assertEqual(dims["resourceId"], "pod-7")
        self.assertEqual(dims["deployment"], "md-0123456789abcdef")
        self.assertNotIn("pod", dims)
        r = self.post(webhook(a), query="?resourceLabel=no-such%20label")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["field"], "resourceLabel")

    def test_3_bad_input_changes_nothing(self):
        before = self.d.api("GET", "/v1/subscriptions?topicId=" +
                            self.topic).json["items"][0]
        n = len(self.messages())
        good = webhook(alert(fp="bad0000000000001"))
        cases = [
            ([1, 2], ""),
            ({"title": "an OCI message", "body": "x"}, "version"),
            (dict(good, version="3"), "version"),
            (dict(good, status="pending"), "status"),
            ({k: v for k, v in good.items() if k != "groupKey"}, "groupKey"),
            (dict(good, alerts={}), "alerts"),
            (webhook(alert(fp="bad0000000000001"), dict(alert(), status="x")),
             "alerts[1].status"),
            (webhook({k: v for k, v in alert().items() if k != "fingerprint"}),
             "alerts[0].fingerprint"),
            (webhook(alert(fp="../../etc")), "alerts[0].fingerprint"),
            (webhook(alert(starts="yesterday")), "alerts[0].startsAt"),
            (webhook(dict(alert(), labels={"alertname": 5})),
             "alerts[0].labels"),
            (webhook(dict(alert(), annotations=[])), "alerts[0].annotations"),
            # The first alert is fine, the second lacks the resource label:
            # neither is published.
            (webhook(alert(fp="bad0000000000001"),
                     dict(alert(fp="bad0000000000002"),
                          labels={"alertname": "model_deployment_high_cpu"})),
             "alerts[1].labels.deployment"),
            (webhook(dict(alert(), labels={"deployment": "md-1"})),
             "alerts[0].labels.alertname"),
        ]
        for body, field in cases:
            r = self.post(body)
            self.assertEqual(r.status, 400, (body, r))
            self.assertEqual(r.json.get("field", ""), field, (body, r))
            self.assertTrue(r.json["message"], r)
        too_many = webhook(*[alert(fp="f%05d" % i) for i in range(1001)])
        r = self.post(too_many)
        self.assertEqual((r.status, r.json["code"]), (400, "LimitExceeded"), r)
        r = self.post("not json")
        self.assertEqual((r.status, r.json["code"]), (400, "InvalidJson"), r)
        r = self.post(good, topic="topic-0000000000000000")
        self.assertEqual((r.status, r.json["field"]), (404, "topic"), r)
        r = self.post(good, auth=False)
        self.assertEqual(r.status, 401, r)
        r = self.d.api("GET", "/v1/alertmanager/" + self.topic)
        self.assertEqual(r.status, 405, r)
        # Nothing was published, and nothing is remembered as firing: the
        # good alert, posted now, starts an episode.
        after = self.d.api("GET", "/v1/subscriptions?topicId=" +
                           self.topic).json["items"][0]
        self.assertEqual(after["pendingDeliveries"],
                         before["pendingDeliveries"])
        self.assertEqual(len(self.messages()), n)
        r = self.post(good)
        self.assertEqual(r.json["alerts"][0]["type"], "OK_TO_FIRING", r)


if __name__ == "__main__":
    unittest.main()
