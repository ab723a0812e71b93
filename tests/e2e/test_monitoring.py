"""Monitoring on the real daemon: utilization and request metrics of live
deployments, metrics posted in OCI's PostMetricData shape, MQL queries and
their errors, alarms (CRUD, bad input, firing under a real load and clearing
after it) and what survives a restart."""
import json
import os
import tempfile
import threading
import time
import unittest

from harness import Daemon, Load, model_command, wait_for

NS = "oci_datascience_modeldeploy"
UUID_SHAPE = (8, 4, 4, 4, 12)

# Short periods so that the tests see metrics and transitions quickly.
FAST = {"sampleIntervalMillis": 250, "evalIntervalMillis": 250}


def now_ms():
    return int(time.time() * 1000)


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + \
        ".%03dZ" % (ms % 1000)


class MonitoringTest(unittest.TestCase):
    config = FAST

    def setUp(self):
        self.d = Daemon(config=self.config).start()
        self.addCleanup(self.d.cleanup)

    # -- helpers --
    def query(self, q, **kw):
        body = {"query": q}
        body.update(kw)
        return self.d.api("POST", "/v1/metrics/query", body)

    def series(self, q, **kw):
        r = self.query(q, **kw)
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def post(self, items, **kw):
        body = {"metricData": items}
        body.update(kw)
        return self.d.api("POST", "/v1/metrics", body)

    def alarm(self, **spec):
        r = self.d.api("POST", "/v1/alarms", spec)
        self.assertEqual(r.status, 201, r)
        return r.json

    def topic(self, name):
        r = self.d.api("POST", "/v1/topics", {"name": name})
        self.assertEqual(r.status, 201, r)
        return r.json.get("topicId") or r.json["id"]

    def alarms(self):
        r = self.d.api("GET", "/v1/alarms")
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def history(self, alarm_id, limit=None):
        path = "/v1/alarms/%s/history" % alarm_id
        if limit is not None:
            path += "?limit=%d" % limit
        r = self.d.api("GET", path)
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def assert_refused(self, r, status, code, field=None, contains=""):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.json["code"], code, r)
        if field is not None:
            self.assertEqual(r.json.get("field"), field, r)
        self.assertIn(contains, r.json["message"], r)

    def assert_cli_fails(self, args, status, contains=""):
        r = self.d.cli(*args)
        where = "mdscale %s: rc=%d stdout=%r stderr=%r" % (
            " ".join(args), r.returncode, r.stdout, r.stderr)
        self.assertEqual(r.returncode, status, where)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, where)
        self.assertTrue(lines[0].startswith("mdscale: "), where)
        self.assertIn(contains, lines[0], where)
        return r

    def cli_ok(self, *args):
        r = self.d.cli(*args)
        self.assertEqual(r.returncode, 0, "mdscale %s: %r %r" % (
            " ".join(args), r.stdout, r.stderr))
        return r.stdout

    # -- metrics of a live deployment --
    def test_utilization_and_request_metrics_of_a_live_deployment(self):
        dep = self.d.create(displayName="metrics", instanceCount=2)
        dep = self.d.wait_state(dep["id"], "ACTIVE")
        inst_ids = sorted(i["id"] for i in dep["instances"])
        rid = dep["id"]
        for metric in ("CpuUtilization", "MemoryUtilization"):
            q = '%s[1s]{resourceId = "%s"}.max()' % (metric, rid)
            items = wait_for(
                "%s of both instances" % metric,
                lambda: (lambda s: s if len(s) == 2 and all(
                    i["aggregatedDatapoints"] for i in s) else None)(
                        self.series(q, startTime=now_ms() - 10000,
                                    resolution="1s")))
            self.assertEqual(sorted(i["dimensions"]["instanceId"]
                                    for i in items), inst_ids)
            for item in items:
                self.assertEqual(item["namespace"], NS)
                self.assertEqual(item["name"], metric)
                self.assertEqual(item["dimensions"]["resourceId"], rid)
                self.assertNotIn("conditionMet", item)
                for p in item["aggregatedDatapoints"]:
                    self.assertGreaterEqual(p["value"], 0, item)
                    self.assertLessEqual(p["value"], 110, item)
            if metric == "MemoryUtilization":
                # The server holds its weights: some memory is in use.
                self.assertGreater(items[0]["aggregatedDatapoints"][-1]
                                   ["value"], 0)
        # The gateway's requests: 6 predictions, 2 unknown paths.
        body = {"instances": [[0] * 64]}
        for _ in range(6):
            self.assertEqual(self.d.gw("POST", "/metrics/predict",
                                       body).status, 200)
        for _ in range(2):
            self.assertEqual(self.d.gw("GET", "/metrics/nope").status, 404)

        def total(q):
            s = self.series(q, startTime=now_ms() - 60000, resolution="1m")
            return s[0]["aggregatedDatapoints"][-1]["value"] if s else None

        wait_for("8 requests counted", lambda: total(
            'PredictRequestCount[1m]{resourceId = "%s"}.sum()' % rid) == 8)
        self.assertEqual(total('PredictResponse[1m]{resourceId = "%s", '
                               'statusClass = "2xx"}.sum()' % rid), 6)
        self.assertEqual(total('PredictResponse[1m]{resourceId = "%s", '
                               'statusClass = "4xx"}.sum()' % rid), 2)
        self.assertEqual(total('PredictResponse[1m]{resourceId = "%s", '
                               'statusClass = "5xx"}.sum()' % rid), 0)
        lat = total('PredictLatency[1m]{resourceId = "%s"}.max()' % rid)
        self.assertGreater(lat, 0)
        self.assertLess(lat, 5000)
        self.assertGreaterEqual(total(
            'PredictLatencyMax[1m]{resourceId = "%s"}.max()' % rid), lat)
        # Requests were sent one at a time: a sample saw at most one.
        self.assertLessEqual(total(
            'PredictInFlight[1m]{resourceId = "%s"}.max()' % rid), 1)
        # groupBy: one stream per deployment, without instanceId.
        items = self.series('CpuUtilization[1m]{resourceId = "%s"}'
                            '.groupBy(resourceId).mean()' % rid,
                            startTime=now_ms() - 60000, resolution="1m")
        self.assertEqual([i["dimensions"] for i in items],
                         [{"resourceId": rid}])
        # The CLI prints one row per instance.
        out = self.cli_ok("query", 'CpuUtilization[1m]{resourceId = "%s"}'
                          '.max()' % rid, "--resolution", "1m",
                          "--start", str(now_ms() - 60000))
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "DIMENSIONS", "POINTS",
                                            "LAST"])
        self.assertEqual(len(lines), 3, out)
        for inst in inst_ids:
            self.assertIn("instanceId=%s" % inst, out)
        # A deleted deployment's instances stop being sampled.
        self.d.delete(rid)
        time.sleep(1.5)
        items = self.series('CpuUtilization[1s]{resourceId = "%s"}.max()'
                            % rid, startTime=now_ms() - 1000,
                            resolution="1s")
        self.assertEqual(items, [])

    def test_requests_are_counted_once_when_their_deployment_goes(self):
        """The gateway sums finished requests for a moment before the
        metrics take them: requests up to the moment their deployment is
        deleted are counted all the same, each once. Every answer but the
        gateway's 404 (no such deployment, once deleted) is one request of
        the deployment: the instance's 200, or the gateway's 503 once the
        instance stopped."""
        dep = self.d.create(displayName="counted")
        rid = self.d.wait_state(dep["id"], "ACTIVE")["id"]
        body = {"instances": [[0] * 64]}
        answers = [[] for _ in range(3)]

        def load(got):
            while True:
                status = self.d.gw("POST", "/counted/predict", body).status
                got.append(status)
                if status == 404:
                    return

        threads = [threading.Thread(target=load, args=(a,))
                   for a in answers]
        for t in threads:
            t.start()
        wait_for("requests answered", lambda: sum(map(len, answers)) > 50)
        self.d.delete(rid)
        for t in threads:
            t.join(30)
            self.assertFalse(t.is_alive())
        got = [s for a in answers for s in a if s != 404]
        by_class = {c: sum(1 for s in got if s // 100 == c) for c in (2, 5)}
        self.assertEqual(len(got), by_class[2] + by_class[5], got)
        self.assertGreater(by_class[2], 0)

        def total(metric, dims=""):
            s = self.series('%s[1m]{resourceId = "%s"%s}.sum()'
                            % (metric, rid, dims),
                            startTime=now_ms() - 60000, resolution="1m")
            return sum(p["value"] for i in s
                       for p in i["aggregatedDatapoints"])

        wait_for("%d requests counted" % len(got),
                 lambda: total("PredictRequestCount") >= len(got))
        # Sampling periods later, none is counted twice.
        time.sleep(1)
        self.assertEqual(total("PredictRequestCount"), len(got))
        self.assertEqual(total("PredictResponse", ', statusClass = "2xx"'),
                         by_class[2])
        self.assertEqual(total("PredictResponse", ', statusClass = "5xx"'),
                         by_class[5])

    # -- posted metrics --
    def test_post_metrics_keeps_good_items_and_refuses_bad_ones(self):
        t = now_ms()
        good = {"namespace": "e2e_app", "name": "QueueDepth",
                "dimensions": {"resourceId": "r1", "queue": "a"},
                "datapoints": [{"timestamp": iso(t - 2000), "value": 3},
                               {"timestamp": t - 1000, "value": 7.5}],
                "metadata": {"unit": "count"}}
        own = {"namespace": NS, "name": "CustomLoad",
               "dimensions": {"resourceId": "r1"},
               "datapoints": [{"timestamp": t, "value": 1}]}
        bad = [
            ({"namespace": "Bad-NS", "name": "X", "dimensions": {},
              "datapoints": [{"timestamp": t, "value": 1}]}, "namespace"),
            ({"namespace": "oci_compute", "name": "X", "dimensions": {},
              "datapoints": [{"timestamp": t, "value": 1}]}, "reserved"),
            ({"namespace": "e2e_app", "name": "9lives", "dimensions": {},
              "datapoints": [{"timestamp": t, "value": 1}]}, "name"),
            ({"namespace": "e2e_app", "name": "X", "dimensions": {},
              "datapoints": [{"timestamp": t, "value": "NaN"}]},
             "datapoints[0].value must be a number"),
            ({"namespace": "e2e_app", "name": "X", "dimensions": {},
              "datapoints": [{"timestamp": t, "value": 1},
                             {"timestamp": t - 3600 * 1000, "value": 1}]},
             "datapoints[1].timestamp is more than 15 minutes old"),
            ({"namespace": "e2e_app", "name": "X", "dimensions": {},
              "datapoints": [{"timestamp": t + 3 * 3600 * 1000,
                              "value": 1}]}, "in the future"),
            ({"namespace": "e2e_app", "name": "X", "dimensions": {},
              "datapoints": [{"timestamp": "yesterday", "value": 1}]},
             "datapoints[0].timestamp"),
            ({"namespace": "e2e_app", "name": "X",
              "datapoints": [{"timestamp": t, "value": 1}]},
             "dimensions is required"),
            ({"namespace": "e2e_app", "name": "X", "dimensions": {"k": 1},
              "datapoints": [{"timestamp": t, "value": 1}]},
             "dimensions.k"),
            ({"namespace": "e2e_app", "name": "X", "dimensions": {},
              "datapoints": []}, "datapoints"),
            ({"namespace": "e2e_app", "name": "X", "dimensions": {},
              "unit": "s", "datapoints": [{"timestamp": t, "value": 1}]},
             "unknown field 'unit'"),
        ]
        r = self.post([good] + [b for b, _ in bad] + [own])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["failedMetricsCount"], len(bad), r)
        self.assertEqual(len(r.json["failedMetrics"]), len(bad))
        for f, (item, why) in zip(r.json["failedMetrics"], bad):
            self.assertEqual(f["metricData"], item)
            self.assertIn(why, f["message"])
        # The good items are there, whole.
        items = self.series('QueueDepth[1m]{queue = "a"}.sum()',
                            namespace="e2e_app")
        self.assertEqual(len(items), 1)
        self.assertEqual(items[0]["dimensions"],
                         {"queue": "a", "resourceId": "r1"})
        self.assertEqual(items[0]["aggregatedDatapoints"][-1]["value"], 10.5)
        time.sleep(0.01)  # the window ends before "now"
        self.assertEqual(len(self.series("CustomLoad[1m].count()")), 1)
        # An item refused by the bad datapoint keeps none of its good ones.
        self.assertEqual(self.series("X[1m].count()", namespace="e2e_app"),
                         [])

        # Batch limits refuse the whole batch.
        one = {"namespace": "e2e_app", "name": "Lim", "dimensions": {},
               "datapoints": [{"timestamp": t, "value": 1}]}
        r = self.post([one] * 51)
        self.assert_refused(r, 400, "LimitExceeded", "metricData",
                            "at most 50")
        many = dict(one, datapoints=[{"timestamp": t, "value": 1}] * 10001)
        r = self.post([many])
        self.assert_refused(r, 400, "LimitExceeded", "metricData",
                            "at most 10000")
        huge = dict(one, dimensions={"pad": "x" * 200})
        r = self.d.api("POST", "/v1/metrics", json.dumps(
            {"metricData": [huge] * 50, "pad": "y" * (1 << 20)}))
        self.assertEqual(r.status, 413, r)
        self.assertEqual(self.series("Lim[1m].count()", namespace="e2e_app"),
                         [])
        # ATOMIC: one bad item, nothing stored.
        r = self.post([one, dict(one, name="9bad")],
                      batchAtomicity="ATOMIC")
        self.assert_refused(r, 400, "InvalidParameter", "metricData",
                            "metricData[1]")
        self.assertEqual(self.series("Lim[1m].count()", namespace="e2e_app"),
                         [])
        for body, field in (([], "metricData"), ("x", "metricData")):
            r = self.post(body)
            self.assert_refused(r, 400, "InvalidParameter", field)
        r = self.d.api("POST", "/v1/metrics", {"metricData": [one],
                                               "extra": 1})
        self.assert_refused(r, 400, "InvalidParameter", "extra")

        # The CLI: good file, file with a refused item.
        with tempfile.NamedTemporaryFile("w", suffix=".json",
                                         delete=False) as f:
            json.dump({"metricData": [dict(one, name="FromCli")]}, f)
        self.addCleanup(os.unlink, f.name)
        self.assertIn("1 metric items stored",
                      self.cli_ok("metric", "post", "--file", f.name))
        with open(f.name, "w") as g:
            json.dump({"metricData": [dict(one, name="FromCli"),
                                      dict(one, name="9bad")]}, g)
        r = self.assert_cli_fails(["metric", "post", "--file", f.name], 1,
                                  "1 of 2 metric items were refused")
        self.assertIn("9bad", r.stdout)

    # -- queries --
    def test_query_errors_are_clear(self):
        self.post([{"namespace": NS, "name": "Known",
                    "dimensions": {"resourceId": "r"},
                    "datapoints": [{"timestamp": now_ms(), "value": 1}]}])
        cases = [
            ("Known[1m].Max()", "column 11: expected a statistic"),
            ("Known[1m]{resourceId = r}.max()",
             "column 24: expected a quoted value"),
            ("Known[1x].max()", "column 8: expected an interval unit"),
            ("Known[1m].max() >", "column 18"),
            ("Known[1m].percentile(2)", "column 22"),
            ("", "column 1"),
        ]
        for q, why in cases:
            r = self.query(q)
            self.assert_refused(r, 400, "InvalidParameter", "query", why)
            self.assertTrue(r.json["message"].startswith("query: column "),
                            r)
        # A metric with no data is an empty result, not an error.
        self.assertEqual(self.series("Unknown[1m].max()"), [])
        self.assertEqual(self.series("Known[1m].max()", namespace="other_ns"),
                         [])
        bad = [
            ({"resolution": "fast"}, "resolution"),
            ({"resolution": "0s"}, "resolution"),
            ({"startTime": "yesterday"}, "startTime"),
            ({"startTime": now_ms(), "endTime": now_ms() - 1000},
             "startTime"),
            ({"namespace": "Bad NS"}, "namespace"),
            ({"limit": 3}, "limit"),
        ]
        for extra, field in bad:
            r = self.query("Known[1m].max()", **extra)
            self.assert_refused(r, 400, "InvalidParameter", field)
        r = self.query("Known[1s].max()", resolution="1s",
                       startTime=0, endTime=now_ms())
        self.assert_refused(r, 400, "LimitExceeded", "resolution")
        r = self.d.api("POST", "/v1/metrics/query", {})
        self.assert_refused(r, 400, "MissingParameter", "query")
        # A condition returns the streams that meet it, marked.
        items = self.series("Known[1m].max() > 0")
        self.assertEqual(len(items), 1)
        self.assertTrue(items[0]["conditionMet"])
        self.assertEqual(self.series("Known[1m].max() > 5"), [])
        # The CLI: one line naming the column, exit 1.
        self.assert_cli_fails(["query", "Known[1m].Max()"], 1,
                              "column 11: expected a statistic")
        out = self.cli_ok("query", "Unknown[1m].max()")
        self.assertNotIn("Unknown", out)
        self.assert_cli_fails(["query"], 2, "missing the query")

    # -- alarms --
    def test_a_query_returning_more_than_2000_streams_is_refused(self):
        t = now_ms()

        def item(i):
            return {"namespace": "e2e_streams", "name": "Many",
                    "dimensions": {"unit": "u%04d" % i},
                    "datapoints": [{"timestamp": t, "value": i}]}
        for first in range(0, 2001, 50):
            r = self.post([item(i) for i in range(first,
                                                  min(2001, first + 50))])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["failedMetricsCount"], 0, r)
        span = {"namespace": "e2e_streams", "startTime": t - 60000,
                "endTime": t + 60000}
        r = self.query("Many[1m].max()", **span)
        self.assert_refused(r, 400, "LimitExceeded", "query",
                            "more than 2000 metric streams")
        # Narrowed or aggregated, the same data is answered.
        self.assertEqual(len(self.series("Many[1m].grouping().max()",
                                         **span)), 1)
        self.assertEqual(len(self.series("Many[1m].max() > 1000", **span)),
                         1000)

    def test_every_alarm_is_evaluated_when_a_pass_spans_many_turns(self):
        # 150 alarms over 3,000 series each: a pass takes far longer than
        # the 2 ms after which it yields the loop, so it goes on over many
        # turns; every alarm is still evaluated, and each pass at one time.
        t = now_ms()
        for first in range(0, 3000, 50):
            r = self.post([{"namespace": "e2e_wide", "name": "Wide",
                            "dimensions": {"unit": "u%04d" % i},
                            "datapoints": [{"timestamp": t, "value": i}]}
                           for i in range(first, first + 50)])
            self.assertEqual(r.status, 200, r)
        ids = [self.alarm(displayName="wide%03d" % k, namespace="e2e_wide",
                          query="Wide[1m].max() > %d" % (10000 + k),
                          destinations=[self.topic("w%03d" % k)])["id"]
               for k in range(150)]

        def evaluated():
            out = {}
            for a in ids:
                r = self.d.api("GET", "/v1/alarms/%s/status" % a)
                self.assertEqual(r.status, 200, r)
                out[a] = r.json["lastEvaluated"]
            return out
        wait_for("every alarm evaluated",
                 lambda: all(v is not None for v in evaluated().values()),
                 timeout=60)
        first = evaluated()
        wait_for("every alarm evaluated again",
                 lambda: all(v != first[a]
                             for a, v in evaluated().items()), timeout=60)
        # The API answered while the passes ran, and no alarm fired.
        for a in ids:
            r = self.d.api("GET", "/v1/alarms/%s/status" % a)
            self.assertEqual(r.json["status"], "OK", r)

    def test_streams_of_many_long_dimensions_in_status_and_history(self):
        # 300 series of 16 dimensions of 255 bytes (4.3 KB each in JSON),
        # every one firing: the status lists them only up to 512 KiB (then
        # streamsTruncated), a grouped alarm's message details 100 of
        # them, and a per-dimension alarm records one event per stream,
        # handled over several turns.
        t = now_ms()

        def item(i):
            dims = {}
            for k in range(16):
                v = "s%04d-d%02d-" % (i, k)
                dims["dim%02d" % k] = v + "x" * (255 - len(v))
            return {"namespace": "e2e_long", "name": "Long",
                    "dimensions": dims,
                    "datapoints": [{"timestamp": t, "value": 7}]}
        for first in range(0, 300, 50):
            r = self.post([item(i) for i in range(first, first + 50)])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["failedMetricsCount"], 0, r)
        topic = self.topic("long")
        spec = {"namespace": "e2e_long", "query": "Long[1h].max() > 5",
                "pendingDuration": "PT1S", "destinations": [topic]}
        grouped = self.alarm(displayName="long-grouped", **spec)
        split = self.alarm(displayName="long-split",
                           isNotificationsPerMetricDimensionEnabled=True,
                           **spec)

        def status(a):
            r = self.d.api("GET", "/v1/alarms/%s/status" % a["id"])
            self.assertEqual(r.status, 200, r)
            return r.json
        for a in (grouped, split):
            wait_for("every stream firing",
                     lambda: status(a)["totalMetricsFiring"] == 300,
                     timeout=60)
        st = status(grouped)
        self.assertEqual(st["status"], "FIRING", st["status"])
        self.assertTrue(st.get("streamsTruncated"), len(st["streams"]))
        self.assertGreater(len(st["streams"]), 100)
        self.assertLess(len(st["streams"]), 130)
        size = sum(len(json.dumps(s["dimensions"])) for s in st["streams"])
        self.assertLess(size, 512 * 1024 + 5000)
        for s in st["streams"]:
            self.assertEqual(s["status"], "FIRING")
            self.assertEqual(len(s["dimensions"]), 16)
            # A real, as before: 7.0, not 7.
            self.assertIsInstance(s["value"], float)
            self.assertEqual(s["value"], 7.0)
        hist = self.history(grouped["id"])
        self.assertEqual([h["type"] for h in hist], ["OK_TO_FIRING"])
        fire = hist[0]
        self.assertEqual(fire["totalMetricsFiring"], 300)
        self.assertEqual(len(fire["streams"]), 100)
        self.assertIsInstance(fire["streams"][0]["value"], float)
        meta = fire["message"]["alarmMetaData"][0]
        self.assertEqual(meta["totalMetricsFiring"], 300)
        self.assertEqual(meta["dimensions"],
                         [s["dimensions"] for s in fire["streams"]])
        self.assertEqual(fire["deliveries"],
                         [{"topicId": topic, "status": "QUEUED",
                           "error": None}])
        # One OK_TO_FIRING per stream, each with its own dedupe key.
        hist = wait_for("an event per stream", lambda: (
            lambda h: h if len(h) == 300 else None)(
                self.history(split["id"], limit=1000)), timeout=30)
        self.assertEqual({h["type"] for h in hist}, {"OK_TO_FIRING"})
        self.assertEqual(len({h["dedupeKey"] for h in hist}), 300)
        self.assertEqual(
            sorted(h["message"]["alarmMetaData"][0]["dimensions"][0]
                   ["dim00"][:5] for h in hist),
            ["s%04d" % i for i in range(300)])

    def test_alarm_crud_and_filtering(self):
        q = 'CpuUtilization[1m]{resourceId = "md-x"}.max() > 80'
        t1, t2 = self.topic("t1"), self.topic("t2")
        a = self.alarm(displayName="model_deployment_high_cpu", query=q,
                       destinations=[t1], body="scale up",
                       repeatNotificationDuration="PT5M",
                       compartmentId="ocid1.compartment.oc1..x")
        self.assertRegex(a["id"], r"^alarm-[0-9a-f]{16}$")
        self.assertEqual(a["namespace"], NS)
        self.assertEqual(a["severity"], "INFO")
        self.assertEqual(a["pendingDuration"], "PT1M")
        self.assertEqual(a["repeatNotificationDuration"], "PT5M")
        self.assertEqual(a["messageFormat"], "ONS_OPTIMIZED")
        self.assertEqual(a["destinations"], [t1])
        self.assertEqual(a["body"], "scale up")
        self.assertIs(a["isEnabled"], True)
        self.assertEqual(a["lifecycleState"], "ACTIVE")
        self.assertEqual(a["compartmentId"], "ocid1.compartment.oc1..x")
        self.assertTrue(a["timeCreated"].endswith("Z"))
        b = self.alarm(displayName="model_deployment_low_cpu",
                       query=q.replace("> 80", "< 20"), severity="WARNING",
                       pendingDuration="PT5S", messageFormat="PRETTY_JSON",
                       isEnabled=False)
        self.assertEqual(b["repeatNotificationDuration"], None)
        self.assertEqual(b["body"], None)
        self.assertEqual([x["id"] for x in self.alarms()], [a["id"], b["id"]])
        r = self.d.api("GET", "/v1/alarms?displayName=model_deployment_low_cpu")
        self.assertEqual([x["id"] for x in r.json["items"]], [b["id"]])
        r = self.d.api("GET", "/v1/alarms?displayName=nothing")
        self.assertEqual(r.json["items"], [])
        self.assertEqual(self.d.api("GET", "/v1/alarms/" + a["id"]).json, a)
        # A partial update changes only what it names.
        r = self.d.api("PUT", "/v1/alarms/" + a["id"],
                       {"severity": "CRITICAL",
                        "repeatNotificationDuration": None})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["severity"], "CRITICAL")
        self.assertIsNone(r.json["repeatNotificationDuration"])
        self.assertEqual(r.json["query"], q)
        self.assertEqual(r.json["timeCreated"], a["timeCreated"])
        st = self.d.api("GET", "/v1/alarms/%s/status" % a["id"]).json
        self.assertEqual(st["status"], "OK")
        self.assertEqual(st["streams"], [])
        self.assertEqual(self.history(a["id"]), [])
        # Delete: gone, with its status and history.
        r = self.d.api("DELETE", "/v1/alarms/" + a["id"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["lifecycleState"], "DELETED")
        for sub in ("", "/status", "/history"):
            r = self.d.api("GET", "/v1/alarms/%s%s" % (a["id"], sub))
            self.assert_refused(r, 404, "NotFound")
        self.assert_refused(self.d.api("DELETE", "/v1/alarms/" + a["id"]),
                            404, "NotFound")
        self.assert_refused(self.d.api("PUT", "/v1/alarms/nope",
                                       {"severity": "INFO"}), 404, "NotFound")
        self.assertEqual([x["id"] for x in self.alarms()], [b["id"]])
        # Writes need the token.
        r = self.d.api("POST", "/v1/alarms", {"displayName": "x",
                                              "query": q}, auth=False)
        self.assertEqual(r.status, 401)

        # The CLI.
        out = self.cli_ok("alarm", "create", "--name", "cli_alarm",
                          "--query", q, "--severity", "ERROR", "--pending",
                          "PT30S", "--repeat", "PT10M", "--destination", t1,
                          "--destination", t2, "--body", "hello",
                          "--format", "RAW", "--disabled")
        lines = out.splitlines()
        self.assertEqual(lines[0].split()[:6], ["ID", "NAME", "SEVERITY",
                                                "ENABLED", "PENDING",
                                                "REPEAT"])
        cid = lines[1].split()[0]
        c = self.d.api("GET", "/v1/alarms/" + cid).json
        self.assertEqual((c["severity"], c["pendingDuration"],
                          c["repeatNotificationDuration"], c["destinations"],
                          c["body"], c["messageFormat"], c["isEnabled"]),
                         ("ERROR", "PT30S", "PT10M", [t1, t2], "hello",
                          "RAW", False))
        self.cli_ok("alarm", "update", cid, "--enabled", "--repeat", "none")
        c = self.d.api("GET", "/v1/alarms/" + cid).json
        self.assertIs(c["isEnabled"], True)
        self.assertIsNone(c["repeatNotificationDuration"])
        out = self.cli_ok("alarm", "list", "--name", "cli_alarm")
        self.assertEqual(len(out.splitlines()), 2, out)
        self.assertIn(cid, self.cli_ok("alarm", "get", cid))
        out = json.loads(self.cli_ok("alarm", "get", cid, "--output",
                                     "json"))
        self.assertEqual(out["id"], cid)
        self.assertIn("OK", self.cli_ok("alarm", "status", cid))
        self.assertEqual(self.cli_ok("alarm", "history", cid).split(),
                         ["TIME", "TYPE", "STATUS", "FIRING", "VALUE",
                          "DIMENSIONS"])
        self.assert_cli_fails(["alarm", "create", "--name", "x", "--query",
                               "Cpu[1m].Max() > 1"], 1, "column 9")
        self.assert_cli_fails(["alarm", "create", "--name", "x"], 2,
                              "missing --query")
        self.assert_cli_fails(["alarm", "update", cid], 2,
                              "at least one field")
        self.assert_cli_fails(["alarm", "history", cid, "--limit", "0"], 2,
                              "--limit")
        self.assertIn("deleted", self.cli_ok("alarm", "delete", cid))
        self.assert_cli_fails(["alarm", "get", cid], 1, "no alarm")

    def test_bad_alarms_are_refused_and_nothing_is_created(self):
        q = 'CpuUtilization[1m]{resourceId = "md-x"}.max() > 80'
        good = {"displayName": "a", "query": q}
        t = self.topic("alarms")
        cases = [
            ({"query": "CpuUtilization[1m].max() >"}, "query", "column 27"),
            ({"query": "CpuUtilization[1m].Max() > 1"}, "query",
             "column 20: expected a statistic"),
            ({"query": "CpuUtilization[1m].max()"}, "query",
             "needs a condition"),
            ({"query": 5}, "query", "must be a string"),
            ({"pendingDuration": "1 minute"}, "pendingDuration",
             "not an ISO-8601 duration"),
            ({"pendingDuration": "P1M"}, "pendingDuration", "ISO-8601"),
            ({"pendingDuration": "PT0S"}, "pendingDuration", "PT1S to PT1H"),
            ({"pendingDuration": "PT2H"}, "pendingDuration", "PT1S to PT1H"),
            ({"repeatNotificationDuration": "PT0.5S"},
             "repeatNotificationDuration", "PT1S to P30D"),
            ({"repeatNotificationDuration": "P31D"},
             "repeatNotificationDuration", "PT1S to P30D"),
            ({"notificationVersion": "2.0"}, "notificationVersion",
             "one of 1.3, 1.5, 1.X"),
            ({"notificationVersion": 1.5}, "notificationVersion",
             "one of 1.3, 1.5, 1.X"),
            ({"resolution": "5m"}, "resolution", "one of 1m"),
            ({"evaluationSlackDuration": "PT3H"}, "evaluationSlackDuration",
             "PT1S to PT2H"),
            ({"suppression": {"timeSuppressFrom": "2026-01-02T00:00:00Z",
                              "timeSuppressUntil": "2026-01-01T00:00:00Z"}},
             "suppression", "timeSuppressUntil must be after"),
            ({"suppression": {"timeSuppressFrom": "yesterday",
                              "timeSuppressUntil": "2026-01-01T00:00:00Z"}},
             "suppression.timeSuppressFrom", "not an RFC 3339 time"),
            ({"suppression": {"timeSuppressFrom": "2026-01-01T00:00:00Z",
                              "timeSuppressUntil": "2026-01-02T00:00:00Z",
                              "why": "x"}},
             "suppression.why", "unknown field"),
            ({"isNotificationsPerMetricDimensionEnabled": "yes"},
             "isNotificationsPerMetricDimensionEnabled", "true or false"),
            ({"notificationTitle": ""}, "notificationTitle", "1 to 255"),
            ({"resourceGroup": "x" * 256}, "resourceGroup", "1 to 255"),
            ({"repeatNotificationDuration": "soon"},
             "repeatNotificationDuration", "ISO-8601"),
            ({"severity": "HIGH"}, "severity", "CRITICAL, ERROR, WARNING"),
            ({"severity": "info"}, "severity",
             "one of CRITICAL, ERROR, WARNING, INFO"),
            ({"messageFormat": "XML"}, "messageFormat", "RAW, PRETTY_JSON"),
            ({"isEnabled": "yes"}, "isEnabled", "true or false"),
            ({"destinations": "topic"}, "destinations", "array"),
            ({"destinations": [t, t]}, "destinations", "listed twice"),
            ({"destinations": [t, "topic-0000000000000000"]},
             "destinations", "destinations[1]: no topic "
             "'topic-0000000000000000'"),
            ({"destinations": [""]}, "destinations", "destinations[0]"),
            ({"destinations": ["t%d" % i for i in range(17)]},
             "destinations", "at most 16"),
            ({"body": "x" * 1001}, "body", "length from 0 to 1000"),
            ({"displayName": ""}, "displayName", "1 to 255"),
            ({"displayName": "x" * 256}, "displayName", "1 to 255"),
            ({"namespace": "Not A Namespace"}, "namespace", "a-z"),
            ({"color": "red"}, "color", "unknown field 'color'"),
            ({"id": "alarm-0000000000000000"}, "id", "unknown field"),
        ]
        for change, field, why in cases:
            spec = dict(good, **change)
            r = self.d.api("POST", "/v1/alarms", spec)
            code = ("LimitExceeded" if "at most 16" in why
                    else "InvalidParameter")
            self.assert_refused(r, 400, code, field, why)
        for missing in ("displayName", "query"):
            spec = dict(good)
            del spec[missing]
            r = self.d.api("POST", "/v1/alarms", spec)
            self.assert_refused(r, 400, "MissingParameter", missing,
                                "%s is required" % missing)
        r = self.d.api("POST", "/v1/alarms", "[1]")
        self.assert_refused(r, 400, "InvalidParameter")
        r = self.d.api("POST", "/v1/alarms", "{nope")
        self.assert_refused(r, 400, "InvalidJson")
        self.assertEqual(self.alarms(), [])
        # An update with bad input changes nothing either.
        a = self.alarm(**good)
        for change, field, why in cases:
            r = self.d.api("PUT", "/v1/alarms/" + a["id"], change)
            self.assertEqual(r.status, 400, (change, r))
        self.assertEqual(self.alarms(), [a])
        # absent() needs no explicit condition.
        self.alarm(displayName="gone", query='CpuUtilization[5m]'
                   '{resourceId = "md-x"}.absent()')
        self.assertEqual(self.alarm(displayName="dest", query=q,
                                    destinations=[t])["destinations"], [t])

    def test_alarm_fires_under_load_and_clears_after(self):
        dep = self.d.create(displayName="busy", instanceShapeName="local.xs",
                            command=model_command("--cache-entries 0"))
        rid = self.d.wait_state(dep["id"], "ACTIVE")["id"]
        q = 'CpuUtilization[10s]{resourceId = "%s"}.max() > 60' % rid
        topic = self.topic("scaling")
        a = self.alarm(displayName="model_deployment_high_cpu", query=q,
                       pendingDuration="PT2S", severity="CRITICAL",
                       body="CPU high", destinations=[topic])
        time.sleep(2)
        st = self.d.api("GET", "/v1/alarms/%s/status" % a["id"]).json
        self.assertEqual(st["status"], "OK", st)

        def status():
            return self.d.api("GET", "/v1/alarms/%s/status" % a["id"]).json

        with Load(self.d.gw_port, "/busy/predict", threads=8) as load:
            st = wait_for("the alarm to fire under load",
                          lambda: (lambda s: s if s["status"] == "FIRING"
                                   else None)(status()), timeout=90)
            self.assertEqual(st["totalMetricsFiring"], 1)
            self.assertEqual(st["streams"][0]["status"], "FIRING")
            self.assertGreater(st["streams"][0]["value"], 60)
            self.assertEqual(st["streams"][0]["dimensions"]["resourceId"],
                             rid)
        self.assertGreater(load.ok, 0)
        wait_for("the alarm to clear after the load",
                 lambda: status()["status"] == "OK", timeout=90)
        hist = self.history(a["id"])
        types = [h["type"] for h in hist]
        self.assertEqual(types, ["OK_TO_FIRING", "FIRING_TO_OK"], hist)
        fire, clear = hist
        self.assertLess(fire["timestampEpochMillis"],
                        clear["timestampEpochMillis"])
        self.assertEqual(fire["status"], "FIRING")
        self.assertEqual(clear["status"], "OK")
        self.assertGreater(fire["streams"][0]["value"], 60)
        # Handed to the notifications module for the topic.
        self.assertEqual(fire["deliveries"],
                         [{"topicId": topic, "status": "QUEUED",
                           "error": None}])
        m = fire["message"]
        self.assertEqual([len(x) for x in m["dedupeKey"].split("-")],
                         list(UUID_SHAPE))
        self.assertEqual(m["dedupeKey"], clear["message"]["dedupeKey"])
        self.assertEqual(m["title"], "model_deployment_high_cpu")
        self.assertEqual(m["body"], "CPU high")
        self.assertEqual(m["type"], "OK_TO_FIRING")
        self.assertEqual(m["severity"], "CRITICAL")
        self.assertEqual(m["timestampEpochMillis"],
                         fire["timestampEpochMillis"])
        self.assertEqual(m["version"], 1.3)
        meta = m["alarmMetaData"][0]
        self.assertEqual(meta["id"], a["id"])
        self.assertEqual(meta["status"], "FIRING")
        self.assertEqual(meta["namespace"], NS)
        self.assertEqual(meta["query"], q)
        self.assertEqual(meta["totalMetricsFiring"], 1)
        self.assertEqual(meta["dimensions"][0]["resourceId"], rid)
        self.assertIn("instanceId", meta["dimensions"][0])
        self.assertTrue(meta["alarmUrl"].endswith("/v1/alarms/" + a["id"]))
        self.assertEqual(clear["message"]["type"], "FIRING_TO_OK")
        self.assertEqual(self.history(a["id"], limit=1), [clear])
        out = self.cli_ok("alarm", "history", a["id"])
        self.assertIn("OK_TO_FIRING", out)
        self.assertIn("FIRING_TO_OK", out)
        r = self.d.api("GET", "/v1/alarms/%s/history?limit=0" % a["id"])
        self.assert_refused(r, 400, "InvalidParameter", "limit")

    def test_a_history_of_large_records_is_answered_newest_first_in_4_mib(
            self):
        # 100 streams of 16 dimensions of 255 bytes: each transition's
        # record lists them, close to 1 MB. Past 4 MiB of records, the
        # answer keeps the newest and says it left the older out.
        def big(i, t, value):
            dims = {"d%02d" % k: ("%03d-%02d-" % (i, k)).ljust(255, "x")
                    for k in range(16)}
            return {"namespace": "e2e_big", "name": "Big",
                    "dimensions": dims,
                    "datapoints": [{"timestamp": t, "value": value}]}

        def flip(value, status):
            t = now_ms()
            for first in (0, 50):
                r = self.post([big(i, t, value)
                               for i in range(first, first + 50)])
                self.assertEqual(r.json["failedMetricsCount"], 0, r)
            wait_for("the alarm " + status, lambda: self.d.api(
                "GET", "/v1/alarms/%s/status" % a["id"]).json["status"]
                == status)

        a = self.alarm(displayName="big", namespace="e2e_big",
                       query="Big[1m].last() > 50", pendingDuration="PT1S")
        for k in range(4):
            flip(99, "FIRING")
            flip(0, "OK")
        r = self.d.api("GET", "/v1/alarms/%s/history?limit=1000" % a["id"])
        self.assertEqual(r.status, 200, r)
        self.assertLessEqual(len(r.raw), 5 << 20)
        self.assertTrue(r.json.get("truncated"), len(r.raw))
        items = r.json["items"]
        self.assertGreaterEqual(len(items), 2)
        self.assertLess(len(items), 8)
        # The newest, oldest first: the last is the last clearing.
        self.assertEqual(items[-1]["type"], "FIRING_TO_OK")
        self.assertEqual(items, self.history(a["id"], limit=len(items)))
        # A short history is whole, without the flag.
        r = self.d.api("GET", "/v1/alarms/%s/history?limit=2" % a["id"])
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("truncated", r.json)
        self.assertEqual(len(r.json["items"]), 2)


class RestartTest(unittest.TestCase):
    def test_alarms_history_and_metrics_survive_a_restart(self):
        d = Daemon(config=FAST).start()
        self.addCleanup(lambda: d.cleanup())
        t = now_ms()
        r = d.api("POST", "/v1/metrics", {"metricData": [
            {"namespace": "e2e_app", "name": "Temperature",
             "dimensions": {"resourceId": "oven"},
             "datapoints": [{"timestamp": t - 2000 + 100 * i, "value": i}
                            for i in range(20)]}]})
        self.assertEqual(r.json["failedMetricsCount"], 0, r)
        a = d.api("POST", "/v1/alarms", {
            "displayName": "hot", "namespace": "e2e_app",
            "query": 'Temperature[5m]{resourceId = "oven"}.max() > 10',
            "pendingDuration": "PT1S"}).json
        wait_for("the alarm to fire", lambda: d.api(
            "GET", "/v1/alarms/%s/status" % a["id"]).json["status"] ==
            "FIRING")
        query = {"query": "Temperature[1m].count()", "namespace": "e2e_app",
                 "startTime": t - 60000, "endTime": t + 60000,
                 "resolution": "1m"}
        before = d.api("POST", "/v1/metrics/query", query).json
        self.assertEqual(before["items"][0]["aggregatedDatapoints"][-1]
                         ["value"], 20)
        alarms = d.api("GET", "/v1/alarms").json
        hist = d.api("GET", "/v1/alarms/%s/history" % a["id"]).json

        self.assertEqual(d.stop(), 0)
        self.assertTrue(os.path.exists(os.path.join(d.data_dir,
                                                    "metrics.log")))
        d2 = Daemon(data_dir=d.data_dir, config=FAST)
        d2.api_port, d2.gw_port = d.api_port, d.gw_port
        d2.start()
        self.addCleanup(d2.cleanup)
        self.assertEqual(d2.api("GET", "/v1/alarms").json, alarms)
        self.assertEqual(d2.api("POST", "/v1/metrics/query", query).json,
                         before)
        self.assertEqual(d2.api("GET", "/v1/alarms/%s/history"
                                % a["id"]).json, hist)
        # The state machine starts over: the condition still holds, so
        # the alarm fires again (a new episode, a new dedupeKey).
        wait_for("the alarm to fire again", lambda: len(d2.api(
            "GET", "/v1/alarms/%s/history" % a["id"]).json["items"]) == 2)
        items = d2.api("GET", "/v1/alarms/%s/history" % a["id"]).json["items"]
        self.assertEqual(items[1]["type"], "OK_TO_FIRING")
        self.assertNotEqual(items[0]["dedupeKey"], items[1]["dedupeKey"])

    def test_an_acknowledged_post_survives_a_crash(self):
        d = Daemon(config=FAST).start()
        self.addCleanup(lambda: d.cleanup())
        t = now_ms()
        r = d.api("POST", "/v1/metrics", {"metricData": [
            {"namespace": "e2e_app", "name": "Saved",
             "dimensions": {"k": "v"},
             "datapoints": [{"timestamp": t, "value": 42}]}]})
        self.assertEqual(r.json["failedMetricsCount"], 0, r)
        # SIGKILL right after the answer: what was acknowledged is in
        # the log already.
        d.kill()
        d2 = Daemon(data_dir=d.data_dir, config=FAST)
        d2.api_port, d2.gw_port = d.api_port, d.gw_port
        d2.start()
        self.addCleanup(d2.cleanup)
        r = d2.api("POST", "/v1/metrics/query", {
            "query": "Saved[1m].max()", "namespace": "e2e_app",
            "startTime": t - 59000, "endTime": t + 1000})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["items"][0]["aggregatedDatapoints"][-1]
                         ["value"], 42)

    def test_a_torn_log_tail_is_cut_and_the_rest_kept(self):
        d = Daemon(config=FAST).start()
        self.addCleanup(lambda: d.cleanup())
        t = now_ms()
        r = d.api("POST", "/v1/metrics", {"metricData": [
            {"namespace": "e2e_app", "name": "Kept",
             "dimensions": {"k": "v"},
             "datapoints": [{"timestamp": t, "value": 7}]}]})
        self.assertEqual(r.json["failedMetricsCount"], 0, r)
        d.kill()
        log = os.path.join(d.data_dir, "metrics.log")
        size = os.path.getsize(log)
        with open(log, "ab") as f:  # half a frame, as a power cut leaves
            f.write(b"\x40\x00\x00\x00garbage")
        d2 = Daemon(data_dir=d.data_dir, config=FAST)
        d2.api_port, d2.gw_port = d.api_port, d.gw_port
        d2.start()
        self.addCleanup(d2.cleanup)
        self.assertIn("are dropped", d2.logs())
        r = d2.api("POST", "/v1/metrics/query", {
            "query": "Kept[1m].max()", "namespace": "e2e_app",
            "startTime": t - 59000, "endTime": t + 1000})
        self.assertEqual(r.json["items"][0]["aggregatedDatapoints"][-1]
                         ["value"], 7)
        self.assertGreaterEqual(os.path.getsize(log), size)

    def test_a_corrupt_snapshot_of_an_older_version_is_ignored(self):
        d = Daemon(config=FAST)
        with open(os.path.join(d.data_dir, "metrics.snap"), "wb") as f:
            f.write(b"MDSTSDB1 this is not a snapshot")
        d.start()
        self.addCleanup(d.cleanup)
        self.assertIn("not a valid snapshot", d.logs())
        self.assertEqual(d.api("GET", "/v1/alarms").json["items"], [])


if __name__ == "__main__":
    unittest.main()
