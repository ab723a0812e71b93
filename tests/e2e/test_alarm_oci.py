"""The OCI alarm surface a recipe user reaches after the basic chain, on
the real daemon: messages in version 1.5 (alarmSummary, metricValues,
notificationType) delivered to a COMMAND subscription, RESET after a
firing stream goes quiet, one message per stream, suppression windows,
resource groups, and queries over metrics that have no data.

Metrics are posted through PostMetricData by a feeder thread, as an
application would; messages are read from the file a real COMMAND
subscriber (a python3 script) appends them to."""
import os
import shutil
import tempfile
import threading
import time
import unittest

from harness import Daemon, read_jsonl, wait_for

NS = "e2e_app"
FAST = {"sampleIntervalMillis": 250, "evalIntervalMillis": 250}

RECEIVER_SCRIPT = """#!/usr/bin/env python3
import sys
data = sys.stdin.read()
with open(sys.argv[1], "a") as f:
    f.write(data.replace("\\n", " ") + "\\n")
"""


def now_ms():
    return int(time.time() * 1000)


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + \
        ".%03dZ" % (ms % 1000)


class Feeder:
    """Posts one datapoint per stream every period until stopped."""

    def __init__(self, daemon, streams, period=0.2):
        self.d, self.streams, self.period = daemon, streams, period
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_ev.is_set():
            t = now_ms()
            items = []
            for s in self.streams:
                item = {"namespace": NS, "name": s.get("name", "Load"),
                        "dimensions": dict(s["dims"]),
                        "datapoints": [{"timestamp": t,
                                        "value": s["value"]}]}
                if "group" in s:
                    item["resourceGroup"] = s["group"]
                items.append(item)
            r = self.d.api("POST", "/v1/metrics", {"metricData": items})
            assert r.status == 200 and r.json["failedMetricsCount"] == 0, r
            self.stop_ev.wait(self.period)

    def stop(self):
        self.stop_ev.set()
        self.thread.join()


class OciAlarmSurfaceTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mdscale-alarm-oci-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        # The COMMAND subscriber runs as the unprivileged instance user.
        os.chmod(self.tmp, 0o1777)
        self.receiver = os.path.join(self.tmp, "receiver.py")
        with open(self.receiver, "w") as f:
            f.write(RECEIVER_SCRIPT)
        os.chmod(self.receiver, 0o755)
        self.d = Daemon(config=FAST).start()
        self.addCleanup(self.d.cleanup)

    # -- helpers --
    def feed(self, streams):
        feeder = Feeder(self.d, streams)
        self.addCleanup(feeder.stop)
        return feeder

    def subscribed_topic(self, name):
        """A topic with a COMMAND subscription; returns (topic, file)."""
        r = self.d.api("POST", "/v1/topics", {"name": name})
        self.assertEqual(r.status, 201, r)
        topic = r.json["topicId"]
        out = os.path.join(self.tmp, name + ".jsonl")
        r = self.d.api("POST", "/v1/subscriptions",
                       {"topicId": topic, "protocol": "COMMAND",
                        "command": [self.receiver, out]})
        self.assertEqual(r.status, 201, r)
        return topic, out

    def messages(self, path):
        return read_jsonl(path)

    def wait_messages(self, path, pred, what, timeout=20):
        return wait_for(what, lambda: (lambda v: v if pred(v) else None)(
            self.messages(path)), timeout=timeout)

    def alarm(self, **spec):
        spec.setdefault("namespace", NS)
        spec.setdefault("pendingDuration", "PT1S")
        r = self.d.api("POST", "/v1/alarms", spec)
        self.assertEqual(r.status, 201, r)
        return r.json

    def history(self, alarm_id):
        r = self.d.api("GET", "/v1/alarms/%s/history" % alarm_id)
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def status(self, alarm_id):
        r = self.d.api("GET", "/v1/alarms/%s/status" % alarm_id)
        self.assertEqual(r.status, 200, r)
        return r.json

    # -- tests --
    def test_version_1_5_message_reaches_a_command_subscription(self):
        topic, out = self.subscribed_topic("v15")
        self.feed([{"dims": {"resourceId": "r1"}, "value": 90}])
        q = 'Load[1m]{resourceId = "r1"}.max() > 80'
        a = self.alarm(displayName="high_load", query=q,
                       destinations=[topic], notificationVersion="1.5",
                       notificationTitle="Load is high on r1",
                       body="scale up")
        self.assertEqual(a["notificationVersion"], "1.5")
        self.assertEqual(a["notificationTitle"], "Load is high on r1")
        self.assertEqual(a["resolution"], "1m")
        self.assertEqual(a["evaluationSlackDuration"], "PT3M")
        msgs = self.wait_messages(out, lambda v: len(v) >= 1,
                                  "the 1.5 message in the subscriber's file")
        m = msgs[0]
        self.assertEqual(m["version"], 1.5)
        self.assertEqual(m["type"], "OK_TO_FIRING")
        self.assertEqual(m["title"], "Load is high on r1")
        self.assertEqual(m["notificationType"],
                         "Group notifications across metric streams")
        meta = m["alarmMetaData"][0]
        self.assertEqual(meta["id"], a["id"])
        self.assertEqual(meta["dimensions"], [{"resourceId": "r1"}])
        self.assertEqual(meta["metricValues"],
                         [{'Load[1m]{resourceId = "r1"}.max()': "90"}])
        self.assertEqual(
            meta["alarmSummary"],
            'Alarm "Load is high on r1" is in a "FIRING" state; because 1 '
            'metrics meet the trigger rule: "%s", with a trigger delay of '
            'PT1S' % q)
        # The default stays 1.3: no 1.5 members.
        topic13, out13 = self.subscribed_topic("v13")
        b = self.alarm(displayName="high_load_13", query=q,
                       destinations=[topic13])
        self.assertEqual(b["notificationVersion"], "1.3")
        m13 = self.wait_messages(out13, lambda v: len(v) >= 1,
                                 "the 1.3 message")[0]
        self.assertEqual(m13["version"], 1.3)
        self.assertEqual(m13["title"], "high_load_13")
        self.assertNotIn("notificationType", m13)
        self.assertNotIn("metricValues", m13["alarmMetaData"][0])
        # The version can change on an existing alarm, and "1.X" is 1.5.
        r = self.d.api("PUT", "/v1/alarms/%s" % b["id"],
                       {"notificationVersion": "1.X"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["notificationVersion"], "1.5")

    def test_reset_after_a_firing_stream_goes_absent(self):
        topic, out = self.subscribed_topic("reset")
        feeder = self.feed([{"dims": {"resourceId": "r1"}, "value": 95}])
        a = self.alarm(displayName="gone_quiet",
                       query='Load[2s]{resourceId = "r1"}.max() > 80',
                       destinations=[topic], notificationVersion="1.5",
                       evaluationSlackDuration="PT2S")
        self.wait_messages(out, lambda v: len(v) >= 1, "OK_TO_FIRING")
        feeder.stop()
        stopped = now_ms()
        # No data after the window passes: still FIRING (held), then a
        # RESET once no evaluation has seen data for 2 s.
        msgs = self.wait_messages(
            out, lambda v: any(m["type"] == "RESET" for m in v), "RESET")
        types = [m["type"] for m in msgs]
        self.assertEqual(types, ["OK_TO_FIRING", "RESET"], types)
        reset = msgs[1]
        self.assertGreaterEqual(reset["timestampEpochMillis"],
                                stopped + 2000)
        self.assertEqual(reset["alarmMetaData"][0]["status"], "OK")
        self.assertEqual(reset["alarmMetaData"][0]["dimensions"],
                         [{"resourceId": "r1"}])
        self.assertEqual(reset["alarmMetaData"][0]["metricValues"], [])
        self.assertEqual(reset["dedupeKey"], msgs[0]["dedupeKey"])
        self.assertEqual(self.status(a["id"])["status"], "OK")
        self.assertEqual([h["type"] for h in self.history(a["id"])],
                         ["OK_TO_FIRING", "RESET"])

    def test_per_dimension_notifications_give_one_message_per_stream(self):
        split_topic, split_out = self.subscribed_topic("split")
        group_topic, group_out = self.subscribed_topic("grouped")
        rg_topic, rg_out = self.subscribed_topic("group-g1")
        self.feed([{"dims": {"resourceId": "r1"}, "value": 91,
                    "group": "g1"},
                   {"dims": {"resourceId": "r2"}, "value": 92,
                    "group": "g2"}])
        q = "Load[1m].max() > 80"
        a = self.alarm(displayName="per_stream", query=q,
                       destinations=[split_topic], notificationVersion="1.5",
                       isNotificationsPerMetricDimensionEnabled=True)
        self.assertTrue(a["isNotificationsPerMetricDimensionEnabled"])
        self.alarm(displayName="grouped", query=q,
                   destinations=[group_topic], notificationVersion="1.5")
        g = self.alarm(displayName="only_g1", query=q,
                       destinations=[rg_topic], resourceGroup="g1")
        self.assertEqual(g["resourceGroup"], "g1")
        msgs = self.wait_messages(split_out, lambda v: len(v) >= 2,
                                  "two split messages")
        time.sleep(1)  # nothing more comes: no repeat was asked for
        msgs = self.messages(split_out)
        self.assertEqual(len(msgs), 2, msgs)
        seen = {}
        for m in msgs:
            self.assertEqual(m["type"], "OK_TO_FIRING")
            self.assertEqual(m["notificationType"],
                             "Split messages per metric stream")
            meta = m["alarmMetaData"][0]
            self.assertEqual(len(meta["dimensions"]), 1, meta)
            rid = meta["dimensions"][0]["resourceId"]
            seen[rid] = (m["dedupeKey"], meta["metricValues"])
        self.assertEqual(sorted(seen), ["r1", "r2"])
        self.assertNotEqual(seen["r1"][0], seen["r2"][0])
        self.assertEqual(seen["r1"][1], [{"Load[1m].max()": "91"}])
        self.assertEqual(seen["r2"][1], [{"Load[1m].max()": "92"}])
        grouped = self.wait_messages(group_out, lambda v: len(v) >= 1,
                                     "the grouped message")
        self.assertEqual(len(grouped), 1, grouped)
        meta = grouped[0]["alarmMetaData"][0]
        self.assertEqual(meta["totalMetricsFiring"], 2)
        self.assertEqual(len(meta["dimensions"]), 2)
        # resourceGroup: only the g1 stream, its group a dimension.
        only = self.wait_messages(rg_out, lambda v: len(v) >= 1,
                                  "the resource group's message")
        self.assertEqual(only[0]["alarmMetaData"][0]["dimensions"],
                         [{"resourceGroup": "g1", "resourceId": "r1"}])

    def test_suppressed_alarm_sends_nothing_in_its_window_then_resumes(self):
        topic, out = self.subscribed_topic("suppressed")
        self.feed([{"dims": {"resourceId": "r1"}, "value": 99}])
        start = now_ms()
        until = start + 6000
        a = self.alarm(displayName="quiet_please",
                       query='Load[1m]{resourceId = "r1"}.max() > 80',
                       destinations=[topic],
                       repeatNotificationDuration="PT1S",
                       suppression={"timeSuppressFrom": iso(start - 1000),
                                    "timeSuppressUntil": iso(until),
                                    "description": "maintenance"})
        self.assertEqual(a["suppression"]["description"], "maintenance")
        self.assertEqual(a["suppression"]["timeSuppressUntil"], iso(until))
        # Inside the window: transitions recorded, nothing delivered.
        wait_for("a suppressed transition in the history",
                 lambda: len(self.history(a["id"])) >= 2)
        st = self.status(a["id"])
        self.assertEqual(st["status"], "FIRING")
        self.assertTrue(st["isSuppressed"])
        self.assertEqual(st["suppression"]["description"], "maintenance")
        self.assertEqual(self.messages(out), [])
        # After it: messages go out again.
        msgs = self.wait_messages(out, lambda v: len(v) >= 1,
                                  "a message after the window")
        self.assertGreaterEqual(msgs[0]["timestampEpochMillis"], until)
        self.assertEqual(msgs[0]["type"], "REPEAT")
        hist = self.history(a["id"])
        before = [h for h in hist if h["timestampEpochMillis"] < until]
        after = [h for h in hist if h["timestampEpochMillis"] >= until]
        self.assertTrue(before and after, hist)
        for h in before:
            self.assertTrue(h["suppressed"], h)
            self.assertEqual([x["status"] for x in h["deliveries"]],
                             ["SUPPRESSED"])
        for h in after:
            self.assertFalse(h["suppressed"], h)
            self.assertEqual([x["status"] for x in h["deliveries"]],
                             ["QUEUED"])
        self.assertFalse(self.status(a["id"])["isSuppressed"])
        # Removing the suppression: null.
        r = self.d.api("PUT", "/v1/alarms/%s" % a["id"],
                       {"suppression": None})
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.json["suppression"])

    def test_new_alarm_fields_survive_a_restart(self):
        t = now_ms()
        spec = {"displayName": "all_fields", "namespace": NS,
                "query": 'Load[1m]{resourceId = "r9"}.max() > 80',
                "notificationTitle": "Title", "notificationVersion": "1.5",
                "isNotificationsPerMetricDimensionEnabled": True,
                "resolution": "1m", "evaluationSlackDuration": "PT10M",
                "repeatNotificationDuration": "P30D", "resourceGroup": "g",
                "suppression": {"timeSuppressFrom": iso(t),
                                "timeSuppressUntil": iso(t + 3600000)}}
        a = self.alarm(**spec)
        for k, v in spec.items():
            self.assertEqual(a[k], v if k != "suppression" else
                             dict(v, description=None), k)
        self.assertEqual(self.d.stop(), 0)
        d2 = Daemon(data_dir=self.d.data_dir, config=FAST)
        d2.start()
        self.addCleanup(d2.cleanup)
        r = d2.api("GET", "/v1/alarms/%s" % a["id"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, a)
        self.assertNotIn("not valid", d2.logs())

    def query(self, q, **kw):
        body = {"query": q, "namespace": NS}
        body.update(kw)
        r = self.d.api("POST", "/v1/metrics/query", body)
        self.assertEqual(r.status, 200, r)
        return {it["dimensions"]["resourceId"]
                if "resourceId" in it["dimensions"] else "":
                (it["aggregatedDatapoints"][-1]["value"],
                 it.get("conditionMet"))
                for it in r.json["items"]}

    def test_mql_joins_and_arithmetic_over_posted_metrics(self):
        self.feed([{"dims": {"resourceId": "r1"}, "value": 90},
                   {"dims": {"resourceId": "r2"}, "value": 30},
                   {"name": "Mem", "dims": {"resourceId": "r1"}, "value": 50},
                   {"name": "Mem", "dims": {"resourceId": "r2"},
                    "value": 70}])
        wait_for("both metrics of both streams", lambda: len(
            self.query("Load[1m].max() + Mem[1m].max()")) == 2)
        self.assertEqual(self.query("100 - Load[1m].max()"),
                         {"r1": (10, None), "r2": (70, None)})
        self.assertEqual(self.query("Load[1m].max() + Mem[1m].max() * 2"),
                         {"r1": (190, None), "r2": (170, None)})
        # A join keeps the streams where both conditions hold.
        self.assertEqual(
            self.query("Load[1m].max() > 80 && Mem[1m].max() > 40"),
            {"r1": (90, True)})
        self.assertEqual(
            self.query("Load[1m].max() > 80 || Mem[1m].max() > 60"),
            {"r1": (90, True), "r2": (30, True)})
        # Nested: how many streams are above 20, and their mean.
        self.assertEqual(
            self.query("(Load[1m].max() > 20).grouping().count()"),
            {"": (2, None)})
        self.assertEqual(self.query("(Load[1m].max()).grouping().mean()"),
                         {"": (60, None)})
        # Errors point at the column.
        r = self.d.api("POST", "/v1/metrics/query",
                       {"query": "Load[1m].max() + ", "namespace": NS})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["message"], "query: column 18: expected a "
                         "metric name, found end of input")
        # An alarm on an expression, with its 1.5 metricValues.
        topic, out = self.subscribed_topic("expr")
        self.alarm(displayName="little_headroom",
                   query="100 - Load[1m].max() < 20", destinations=[topic],
                   notificationVersion="1.5")
        m = self.wait_messages(out, lambda v: len(v) >= 1,
                               "the expression alarm's message")[0]
        meta = m["alarmMetaData"][0]
        self.assertEqual(meta["dimensions"], [{"resourceId": "r1"}])
        self.assertEqual(meta["metricValues"],
                         [{"100 - Load[1m].max()": "10"}])

    def test_query_of_a_metric_without_data_is_empty(self):
        r = self.d.api("POST", "/v1/metrics/query",
                       {"query": "NeverPosted[1m].max()", "namespace": NS})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["items"], [])
        res = self.d.cli("query", "NeverPosted[1m].max()", "--namespace", NS)
        self.assertEqual(res.returncode, 0, res)
        # A '*' after = is literal: no stream is named "r*".
        self.feed([{"dims": {"resourceId": "r1"}, "value": 5}])
        wait_for("the posted stream", lambda: self.d.api(
            "POST", "/v1/metrics/query",
            {"query": "Load[1m].max()", "namespace": NS}).json["items"])
        lit = self.d.api("POST", "/v1/metrics/query",
                         {"query": 'Load[1m]{resourceId = "r*"}.max()',
                          "namespace": NS})
        self.assertEqual(lit.json["items"], [])
        pat = self.d.api("POST", "/v1/metrics/query",
                         {"query": 'Load[1m]{resourceId =~ "r*"}.max()',
                          "namespace": NS})
        self.assertEqual(len(pat.json["items"]), 1)


if __name__ == "__main__":
    unittest.main()
