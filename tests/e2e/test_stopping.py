"""The API while the daemon stops. On SIGTERM the daemon closes its modules
(the autoscale function, monitoring, notifications) at once, then stops
the instances, answering the API until they are gone. A request for a
module already closed must get 503 with a JSON error and change nothing;
reads of the deployments are still answered."""
import os
import signal
import sys
import time
import unittest

from harness import Daemon, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

# An instance that ignores SIGTERM: the daemon waits stopGraceSeconds for
# it, and the test asks the API in that time.
STUBBORN = "trap '' TERM; exec %s %s --port $PORT" % (
    PYTHON, os.path.join(HERE, "slow_model.py"))


class StoppingTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(config={"stopGraceSeconds": 8})
        self.d.start()
        self.addCleanup(self.d.cleanup)

    def test_closed_modules_answer_503_and_change_nothing(self):
        dep_id = self.d.create(displayName="stubborn", command=STUBBORN)["id"]
        self.d.wait_state(dep_id, "ACTIVE")

        self.d.proc.send_signal(signal.SIGTERM)
        wait_for("the stop to begin",
                 lambda: "stopping instances and exiting" in self.d.logs())
        refused = [
            ("GET", "/v1/deployments/%s/autoscale" % dep_id, None),
            ("GET", "/v1/deployments/%s/scaling-history" % dep_id, None),
            ("PUT", "/v1/deployments/%s/autoscale" % dep_id,
             {"profile": "default"}),
            ("DELETE", "/v1/deployments/%s/autoscale" % dep_id, None),
            ("GET", "/v1/functions/autoscale/config", None),
            ("DELETE", "/v1/deployments/" + dep_id, None),
        ]
        for method, path, body in refused:
            r = self.d.api(method, path, body)
            self.assertEqual(r.status, 503, (method, path, r))
            self.assertEqual(r.json["code"], "ServiceUnavailable", r.json)
            self.assertIn("stopping", r.json["message"])
        r = self.d.api("GET", "/v1/deployments/" + dep_id)
        self.assertEqual(r.status, 200, r)

        self.assertEqual(self.d.proc.wait(timeout=60), 0, self.d.logs())
        self.d.log.close()
        # The refused delete changed nothing: the deployment is back.
        self.d.start()
        self.assertEqual(self.d.wait_state(dep_id, "ACTIVE")["id"], dep_id)


class RequestsAtStopTest(unittest.TestCase):
    """The requests served right before SIGTERM are in the metrics after a
    restart: the gateway stops first, then monitoring takes a last sample
    and writes it. The sampling period is the longest there is, so that no
    periodic sample takes them first."""

    def setUp(self):
        self.d = Daemon(config={"sampleIntervalMillis": 60000})
        self.d.start()
        self.addCleanup(self.d.cleanup)

    def test_requests_before_the_stop_are_counted(self):
        start = int(time.time() * 1000) - 60000
        dep_id = self.d.create(displayName="counted")["id"]
        self.d.wait_state(dep_id, "ACTIVE")
        body = {"instances": [[0] * 64]}
        n = 7
        for _ in range(n):
            r = self.d.gw("POST", "/counted/predict", body)
            self.assertEqual(r.status, 200, r)
        self.assertEqual(self.d.stop(), 0, self.d.logs())

        self.d.start()
        # Windows of a minute that tile the span, each sample in one.
        q = {"query": 'PredictRequestCount[1m]{resourceId = "%s"}.sum()'
                      % dep_id, "resolution": "1m", "startTime": start,
             "endTime": int(time.time() * 1000) + 60000}

        def query():
            r = self.d.api("POST", "/v1/metrics/query", q)
            return None if r.status == 503 else r  # the store loading
        r = wait_for("the metrics store", query)
        self.assertEqual(r.status, 200, r)
        got = sum(p["value"] for item in r.json["items"]
                  for p in item["aggregatedDatapoints"])
        self.assertEqual(got, n, r.json)


if __name__ == "__main__":
    unittest.main()
