"""`mdscale load`, the open-loop load generator, against real sockets.

The target is the benchmark backend (bench/backend.c; path in
$MDSCALE_BENCH_BACKEND, else <build>/bench/mdscale-bench-backend next to
$MDSCALE_BIN's <build>/src/mdscale), or plain sockets that refuse, hang or
reset. Counts are checked against rate x duration with loose bounds; no
assertion depends on how fast anything is.
"""

import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import free_port

BIN = os.environ.get("MDSCALE_BIN", "")


def backend_path():
    path = os.environ.get("MDSCALE_BENCH_BACKEND")
    if path:
        return path
    build = os.path.dirname(os.path.dirname(os.path.abspath(BIN)))
    return os.path.join(build, "bench", "mdscale-bench-backend")




def setUpModule():
    if not BIN or not os.access(BIN, os.X_OK):
        raise RuntimeError("set MDSCALE_BIN to the built mdscale binary")
    if not os.access(backend_path(), os.X_OK):
        raise RuntimeError("no bench backend at %s (set MDSCALE_BENCH_BACKEND)"
                           % backend_path())


def run_load(*args, timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDSCALE_")}
    return subprocess.run([BIN, "load", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


class Backend:
    """The bench backend on a free port; it also stops by itself."""

    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [backend_path(), "--port", str(self.port), "--lifetime", "120"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise AssertionError("the bench backend did not start")

    def url(self, path="/m/predict"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Listener:
    """A plain socket: `hang` accepts and never answers, `reset` accepts and
    closes at once. Stops with the test."""

    def __init__(self, mode):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.mode = mode
        self.held = []
        self.done = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.done:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            if self.mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.close()
            else:
                self.held.append(conn)

    def stop(self):
        self.done = True
        self.thread.join(5)
        for c in self.held:
            c.close()
        self.sock.close()


class LoadTest(unittest.TestCase):
    def json_run(self, *args):
        r = run_load(*args, "--output", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        try:
            return json.loads(r.stdout)
        except ValueError:
            self.fail("not JSON: %r (stderr %r)" % (r.stdout[:500], r.stderr))

    def test_counts_follow_rate_and_duration(self):
        be = Backend()
        self.addCleanup(be.stop)
        j = self.json_run("--url", be.url(), "--rate", "200", "--duration",
                          "2", "--connections", "8")
        # 200/s for 2 s is 400 requests due; loose bounds all the same.
        self.assertGreaterEqual(j["sent"], 360, j)
        self.assertLessEqual(j["sent"], 440, j)
        self.assertEqual(j["succeeded"], j["sent"], j)
        self.assertEqual(j["failed_total"], 0, j)
        self.assertEqual(j["dropped_overload"], 0, j)
        self.assertEqual(sum(j["failed"].values()), 0, j)
        self.assertEqual(sorted(j["failed"]), sorted(
            ["connect_refused", "reset", "timeout", "non_2xx", "other"]))
        lat = j["latency_us"]
        self.assertLessEqual(lat["p50"], lat["p90"])
        self.assertLessEqual(lat["p90"], lat["p99"])
        self.assertLessEqual(lat["p99"], lat["p99_9"])
        self.assertLessEqual(lat["p99_9"], lat["max"])
        self.assertGreater(lat["max"], 0)
        self.assertLessEqual(j["connects"], 8)
        # Every second is there, and the seconds add up to the total.
        self.assertGreaterEqual(len(j["seconds"]), 2)
        self.assertEqual(sum(s["sent"] for s in j["seconds"]), j["sent"])
        self.assertEqual(sum(s["succeeded"] for s in j["seconds"]),
                         j["succeeded"])
        self.assertGreater(j["rate_achieved"], 0)

    def test_schedule_file_steps_and_ramps(self):
        be = Backend()
        self.addCleanup(be.stop)
        with tempfile.NamedTemporaryFile("w", suffix=".sched",
                                         delete=False) as f:
            f.write("# warm up\n1 100\n\nramp 1 100 0   # down to nothing\n")
        self.addCleanup(os.unlink, f.name)
        j = self.json_run("--url", be.url(), "--schedule", f.name)
        # 100 in the step, 50 in the ramp.
        self.assertGreaterEqual(j["sent"], 130, j)
        self.assertLessEqual(j["sent"], 170, j)
        self.assertEqual(j["succeeded"], j["sent"], j)

    def test_post_body_and_headers(self):
        be = Backend()
        self.addCleanup(be.stop)
        with tempfile.NamedTemporaryFile("wb", delete=False) as f:
            f.write(b'{"instances": [[1, 2, 3]]}')
        self.addCleanup(os.unlink, f.name)
        j = self.json_run("--url", be.url(), "--rate", "50", "--duration",
                          "1", "--body", f.name, "--header",
                          "Content-Type: application/json", "--header",
                          "X-Trace: 1")
        self.assertEqual(j["method"], "POST")
        self.assertGreater(j["sent"], 0)
        self.assertEqual(j["succeeded"], j["sent"], j)

    def test_nothing_listening_is_connect_refused(self):
        port = free_port()
        j = self.json_run("--url", "http://127.0.0.1:%d/" % port, "--rate",
                          "50", "--duration", "1")
        self.assertGreater(j["sent"], 0, j)
        self.assertEqual(j["succeeded"], 0, j)
        self.assertEqual(j["failed"]["connect_refused"], j["sent"], j)
        self.assertEqual(j["failed_total"], j["sent"], j)

    def test_silent_server_is_timeout(self):
        srv = Listener("hang")
        self.addCleanup(srv.stop)
        j = self.json_run("--url", "http://127.0.0.1:%d/" % srv.port,
                          "--rate", "20", "--duration", "0.5", "--timeout",
                          "0.3", "--connections", "4")
        self.assertGreater(j["sent"], 0, j)
        self.assertEqual(j["succeeded"], 0, j)
        self.assertEqual(j["failed"]["timeout"], j["sent"], j)

    def test_closing_server_is_reset(self):
        srv = Listener("reset")
        self.addCleanup(srv.stop)
        j = self.json_run("--url", "http://127.0.0.1:%d/" % srv.port,
                          "--rate", "20", "--duration", "0.5")
        self.assertGreater(j["sent"], 0, j)
        self.assertEqual(j["succeeded"], 0, j)
        self.assertEqual(j["failed_total"], j["sent"], j)
        self.assertGreater(j["failed"]["reset"], 0, j)

    def test_table_output(self):
        be = Backend()
        self.addCleanup(be.stop)
        r = run_load("--url", be.url(), "--rate", "100", "--duration", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("succeeded", r.stdout)
        self.assertIn("p99", r.stdout)
        rows = [l for l in r.stderr.splitlines() if l.strip()[:1].isdigit()]
        self.assertGreaterEqual(len(rows), 2, r.stderr)
        self.assertIn("SECOND", r.stderr.splitlines()[0])

    def test_bad_flags_exit_2_with_one_line(self):
        nowhere = "http://127.0.0.1:1/"
        cases = [
            ([], "--url"),
            (["--url", nowhere], "--rate"),
            (["--url", nowhere, "--rate", "abc"], "--rate"),
            (["--url", nowhere, "--rate", "0"], "--rate"),
            (["--url", nowhere, "--rate", "10", "--duration", "-1"],
             "--duration"),
            (["--url", nowhere, "--rate", "10", "--connections", "0"],
             "--connections"),
            (["--url", nowhere, "--rate", "10", "--timeout", "x"],
             "--timeout"),
            (["--url", nowhere, "--rate", "10", "--bogus"], "--bogus"),
            (["--url", nowhere, "--rate", "10", "stray"], "stray"),
            (["--url", nowhere, "--rate", "10", "--schedule", "/x"],
             "--schedule"),
            (["--url", "ftp://127.0.0.1/", "--rate", "10"], "URL"),
            (["--url", "127.0.0.1:80", "--rate", "10"], "URL"),
            (["--url", nowhere, "--rate", "10", "--header", "NoColon"],
             "header"),
            (["--url", nowhere, "--rate", "10", "--header",
              "Content-Length: 5"], "Content-Length"),
            (["--url", nowhere, "--rate", "10", "--method", "GE T"],
             "method"),
            (["--url", nowhere, "--rate", "10", "--output", "xml"],
             "--output"),
        ]
        for args, contains in cases:
            with self.subTest(args=args):
                r = run_load(*args)
                where = "load %s: rc=%d stdout=%r stderr=%r" % (
                    " ".join(args), r.returncode, r.stdout, r.stderr)
                self.assertEqual(r.returncode, 2, where)
                lines = r.stderr.splitlines()
                self.assertEqual(len(lines), 1, where)
                self.assertTrue(lines[0].startswith("mdscale: "), where)
                self.assertIn(contains, lines[0], where)
                self.assertEqual(r.stdout, "", where)

    def test_bad_schedule_file_exits_2(self):
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write("1 100\nramp 1 100\n")
        self.addCleanup(os.unlink, f.name)
        r = run_load("--url", "http://127.0.0.1:1/", "--schedule", f.name)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        self.assertIn("line 2", r.stderr)

    def test_unreadable_file_exits_1(self):
        r = run_load("--url", "http://127.0.0.1:1/", "--rate", "1",
                     "--body", "/nonexistent/body.json")
        self.assertEqual(r.returncode, 1, r.stderr)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("/nonexistent/body.json", lines[0])

    def test_help(self):
        r = run_load("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("usage: mdscale load", r.stdout)


if __name__ == "__main__":
    unittest.main()
