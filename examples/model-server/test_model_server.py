#!/usr/bin/env python3
"""End-to-end test of mdscale-model-server: the real binary on a real port.

    MODEL_SERVER=build/examples/model-server/mdscale-model-server \
    MODEL_WEIGHTS=examples/model-server/digits-mlp.weights \
    python3 examples/model-server/test_model_server.py

Standard library only. Every test starts its own server on a free port and
tearDown always ends it (SIGTERM, then SIGKILL if it lingers); a server that
printed a sanitizer report fails the test.
"""
import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest

DIGITS = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"
SERVER = os.environ.get("MODEL_SERVER", "")
WEIGHTS = os.environ.get("MODEL_WEIGHTS", "")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def digits_rows():
    with gzip.open(DIGITS, "rt") as f:
        rows = [[int(v) for v in line.split(",")] for line in f if line.strip()]
    return [r[:64] for r in rows], [r[64] for r in rows]


class ModelServerTest(unittest.TestCase):
    def setUp(self):
        if not SERVER or not WEIGHTS:
            self.fail("set MODEL_SERVER and MODEL_WEIGHTS")
        self.proc = None
        self.log = tempfile.TemporaryFile()
        self.port = free_port()

    def tearDown(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.seek(0)
        log = self.log.read().decode(errors="replace")
        self.log.close()
        for bad in ("Sanitizer", "runtime error:", "LeakSanitizer"):
            self.assertNotIn(bad, log, log)

    def start(self, *args, wait=True):
        self.proc = subprocess.Popen(
            [SERVER, "--weights", WEIGHTS, "--port", str(self.port), *args],
            stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self.assertIsNone(self.proc.poll(), "server exited early")
            try:
                status, _ = self.request("GET", "/health")
                if status == 200 or (not wait and status == 503):
                    return
            except OSError:
                pass
            time.sleep(0.02)
        self.fail("server did not come up")

    def request(self, method, path, body=None, headers=None, conn=None):
        own = conn is None
        if own:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            self.assertEqual(resp.getheader("Content-Type"), "application/json")
            return resp.status, json.loads(data)
        finally:
            if own:
                conn.close()

    def predict(self, instances, conn=None):
        return self.request("POST", "/predict", {"instances": instances},
                            conn=conn)

    def assert_bad(self, body, word):
        status, reply = self.request("POST", "/predict", body)
        self.assertEqual(status, 400, reply)
        self.assertIsInstance(reply.get("error"), str)
        self.assertIn(word, reply.get("message", ""))

    def test_predictions_on_real_digits(self):
        self.start()
        x, y = digits_rows()
        x, y = x[-50:], y[-50:]  # from the held-out test rows
        status, reply = self.predict(x)
        self.assertEqual(status, 200, reply)
        right = sum(p == t for p, t in zip(reply["predictions"], y))
        self.assertGreaterEqual(right / len(y), 0.9, reply["predictions"])
        self.assertEqual(len(reply["probabilities"]), 50)
        for probs, pred in zip(reply["probabilities"], reply["predictions"]):
            self.assertEqual(len(probs), 10)
            self.assertAlmostEqual(sum(probs), 1.0, places=3)
            self.assertEqual(probs.index(max(probs)), pred)
        self.assertEqual(reply["cached"], [False] * 50)

    def test_cache_hit_on_repeat(self):
        self.start()
        x, _ = digits_rows()
        _, first = self.predict([x[7]])
        status, again = self.predict([x[7], x[8]])
        self.assertEqual(status, 200)
        self.assertEqual(first["cached"], [False])
        self.assertEqual(again["cached"], [True, False])
        self.assertEqual(again["predictions"][0], first["predictions"][0])
        self.assertEqual(again["probabilities"][0], first["probabilities"][0])
        status, stats = self.request("GET", "/stats")
        self.assertEqual(status, 200)
        self.assertEqual(stats["cache_hits"], 1)
        self.assertEqual(stats["cache_entries"], 2)
        self.assertGreaterEqual(stats["requests"], 3)
        self.assertGreater(stats["rss_bytes"], 0)

    def test_cache_bounded(self):
        self.start("--cache-entries", "2")
        for v in range(4):
            self.predict([[v] * 64])
        _, stats = self.request("GET", "/stats")
        self.assertEqual(stats["cache_entries"], 2)
        _, reply = self.predict([[0] * 64, [3] * 64])
        self.assertEqual(reply["cached"], [False, True])  # 0 was evicted

    def test_memory_stays_bounded_under_repeated_requests(self):
        # Requests that only hit the cache allocate and free their JSON;
        # resident memory must not grow with their number. (A sanitizer
        # build that kept every freed block in its quarantine would
        # outgrow a shape's memory limit and be killed under load.)
        self.start("--cache-entries", "64")
        x, _ = digits_rows()
        batch = x[:64]
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.addCleanup(conn.close)
        for _ in range(50):
            self.predict(batch, conn=conn)
        _, before = self.request("GET", "/stats")
        for _ in range(600):
            status, reply = self.predict(batch, conn=conn)
            self.assertEqual(status, 200, reply)
        _, after = self.request("GET", "/stats")
        self.assertEqual(after["cache_entries"], 64)
        grown = (after["rss_bytes"] - before["rss_bytes"]) / 2**20
        self.assertLess(grown, 64, "resident memory grew by %.0f MiB over "
                        "600 cached requests" % grown)

    def test_cache_disabled(self):
        self.start("--cache-entries", "0", "--tta", "off")
        self.predict([[1] * 64])
        _, reply = self.predict([[1] * 64])
        self.assertEqual(reply["cached"], [False])

    def test_bad_input(self):
        self.start()
        row = [0] * 64
        self.assert_bad("{\"instances\": [[1, 2", "line 1")
        self.assert_bad({"instances": [[0] * 63]}, "64 numbers")
        self.assert_bad({"instances": [row, ["a"] * 64]}, "instances[1][0]")
        self.assert_bad({"instances": []}, "1 to 64")
        self.assert_bad({"instances": [row] * 65}, "1 to 64")
        self.assert_bad({"rows": [row]}, "instances")
        self.assert_bad([row], "instances")
        self.assert_bad({"instances": [[1e300] * 64]}, "out of range")
        self.assert_bad(b"x" * (1024 * 1024 + 1), "body")
        status, reply = self.predict([row])  # still serving
        self.assertEqual(status, 200, reply)

    def test_not_found_and_wrong_method(self):
        self.start()
        status, reply = self.request("GET", "/nope")
        self.assertEqual(status, 404)
        self.assertEqual(reply["error"], "not_found")
        status, reply = self.request("GET", "/predict")
        self.assertEqual(status, 405)
        self.assertEqual(reply["error"], "method_not_allowed")
        status, _ = self.request("POST", "/health", "{}")
        self.assertEqual(status, 405)

    def test_keep_alive_pipelining_and_close(self):
        self.start()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            self.request("GET", "/health", conn=conn)
            sock = conn.sock
            for v in range(5):
                status, _ = self.predict([[v] * 64], conn=conn)
                self.assertEqual(status, 200)
                self.assertIs(conn.sock, sock)  # no reconnect
        finally:
            conn.close()
        body = json.dumps({"instances": [[2] * 64]})
        one = ("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
               "\r\n%s" % (len(body), body))
        chunked = ("POST /predict HTTP/1.1\r\nHost: x\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
                   % (len(body), body))
        last = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        with socket.create_connection(("127.0.0.1", self.port), 10) as s:
            s.sendall((one + chunked + last).encode())
            data = b""
            while True:  # the server must close after the third answer
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        text = data.decode()
        self.assertEqual(text.count("HTTP/1.1 200 OK"), 3, text)
        self.assertIn('"cached":[true]', text)  # the chunked repeat hit
        self.assertTrue(text.endswith('{"status":"ok"}\n'), text)
        self.assertIn("Connection: close", text)

    def test_threads(self):
        self.start("--threads", "3")
        for v in range(10):
            status, _ = self.predict([[v % 17] * 64])
            self.assertEqual(status, 200)
        _, stats = self.request("GET", "/stats")
        self.assertEqual(stats["threads"], 3)
        self.assertEqual(stats["requests"], 12)  # 10 + 1 health + this

    def test_load_delay(self):
        self.start("--load-delay-ms", "1500", wait=False)
        status, reply = self.request("GET", "/health")
        self.assertEqual((status, reply), (503, {"status": "loading"}))
        status, _ = self.predict([[0] * 64])
        self.assertEqual(status, 503)
        time.sleep(1.6)
        status, reply = self.request("GET", "/health")
        self.assertEqual((status, reply), (200, {"status": "ok"}))

    def test_sigterm_exits_zero(self):
        self.start()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.request("GET", "/health", conn=conn)  # an idle keep-alive
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(timeout=5), 0)
        self.assertLess(time.monotonic() - started, 1.0)
        conn.close()

    def test_request_on_idle_connection_after_sigterm_is_answered(self):
        # A client that sends on an idle keep-alive connection as the
        # server begins to stop cannot know: its request must be answered
        # (with Connection: close), not lost with a reset.
        self.start()
        body = json.dumps({"instances": [[3] * 64]})
        req = ("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d"
               "\r\n\r\n%s" % (len(body), body)).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.addCleanup(conn.close)
        self.request("GET", "/health", conn=conn)  # now idle, kept alive
        self.proc.send_signal(signal.SIGTERM)
        # The server has begun to stop once it refuses new connections.
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
            except ConnectionRefusedError:
                break
            self.assertLess(time.monotonic(), deadline, "still accepting")
            time.sleep(0.002)
        conn.sock.sendall(req)
        resp = http.client.HTTPResponse(conn.sock, method="POST")
        resp.begin()
        reply = json.loads(resp.read())
        self.assertEqual(resp.status, 200, reply)
        self.assertEqual(len(reply["predictions"]), 1)
        self.assertEqual(resp.getheader("Connection"), "close")
        self.assertEqual(conn.sock.recv(1), b"")  # then it closes
        self.assertEqual(self.proc.wait(timeout=5), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
