"""The API and the gateway while the daemon stops. On SIGTERM the daemon
closes the autoscale function, lets the gateway drain (no new connection,
the requests under way answered), then closes monitoring and
notifications and stops the instances, answering the API until they are
gone. A request for a module already closed must get 503 with a JSON error
and change nothing; reads of the deployments are still answered."""
import os
import signal
import socket
import sys
import time
import unittest

from harness import Daemon, read_answer, wait_for

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


def requests_counted(test, d, dep_id, start):
    """The requests of deployment dep_id that d's metrics count since start
    (ms), once its store is loaded."""
    # Windows of a minute that tile the span, each sample in one.
    q = {"query": 'PredictRequestCount[1m]{resourceId = "%s"}.sum()'
                  % dep_id, "resolution": "1m", "startTime": start,
         "endTime": int(time.time() * 1000) + 60000}

    def query():
        r = d.api("POST", "/v1/metrics/query", q)
        return None if r.status == 503 else r  # the store loading
    r = wait_for("the metrics store", query)
    test.assertEqual(r.status, 200, r)
    return sum(p["value"] for item in r.json["items"]
               for p in item["aggregatedDatapoints"])


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
        self.assertEqual(requests_counted(self, self.d, dep_id, start), n)


class DrainAtStopTest(unittest.TestCase):
    """The gateway drains at SIGTERM: it takes no new connection and closes
    an idle one at once; a request under way is answered in full, or cut
    when stopGraceSeconds pass first, and counted in the metrics after a
    restart either way."""

    def start(self, grace):
        self.d = Daemon(config={"sampleIntervalMillis": 60000,
                                "stopGraceSeconds": grace})
        self.d.start()
        self.addCleanup(self.d.cleanup)

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.d.gw_port),
                                     timeout=30)
        self.addCleanup(s.close)
        return s

    def refused(self):
        try:
            socket.create_connection(("127.0.0.1", self.d.gw_port),
                                     timeout=5).close()
        except ConnectionRefusedError:
            return True
        return False

    def stop_during_request(self, delay_ms):
        """One request answered on a kept-alive connection, another that
        takes delay_ms on the instance under way: SIGTERM. Returns the
        deployment's id and the two connections, once the gateway refuses
        new ones and has closed the idle one."""
        cmd = "exec %s %s --port $PORT --delay-ms %d" % (
            PYTHON, os.path.join(HERE, "slow_model.py"), delay_ms)
        dep_id = self.d.create(displayName="slow", command=cmd)["id"]
        self.d.wait_state(dep_id, "ACTIVE")

        idle = self.connect()  # keep-alive, between requests at SIGTERM
        idle.sendall(b"GET /slow/health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(read_answer(idle)[0], "HTTP/1.1 200 OK")
        body = b'{"instances": [[0]]}'
        busy = self.connect()
        busy.sendall(b"POST /slow/predict HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        time.sleep(0.5)  # the request reaches the instance
        self.d.proc.send_signal(signal.SIGTERM)

        wait_for("new connections refused", self.refused)
        self.assertEqual(idle.recv(1), b"", "the idle connection closes")
        return dep_id, busy

    def requests_after_restart(self, dep_id, start):
        self.assertEqual(self.d.proc.wait(timeout=60), 0, self.d.logs())
        self.d.log.close()
        logs = self.d.logs()
        self.d.start()
        return requests_counted(self, self.d, dep_id, start), logs

    def test_request_under_way_is_answered_and_counted(self):
        self.start(grace=60)
        start = int(time.time() * 1000) - 60000
        dep_id, busy = self.stop_during_request(4000)
        status, headers, got = read_answer(busy)
        self.assertEqual(status, "HTTP/1.1 200 OK", self.d.logs())
        self.assertEqual(headers.get("connection"), "close", headers)
        self.assertEqual(got, b'{"predictions": [0]}')
        self.assertEqual(busy.recv(1), b"", "closed after its response")
        n, logs = self.requests_after_restart(dep_id, start)
        self.assertNotIn("deadline passed", logs)
        self.assertEqual(n, 2)  # the health check and the prediction

    def test_request_past_the_deadline_is_cut_and_counted(self):
        self.start(grace=1)
        start = int(time.time() * 1000) - 60000
        dep_id, busy = self.stop_during_request(30000)
        try:
            got = busy.recv(1)
        except ConnectionResetError:
            got = b""
        self.assertEqual(got, b"", "cut without an answer")
        n, logs = self.requests_after_restart(dep_id, start)
        self.assertIn("the stop's deadline passed: requests cut under "
                      "way: 1", logs)
        self.assertEqual(n, 2)

if __name__ == "__main__":
    unittest.main()
