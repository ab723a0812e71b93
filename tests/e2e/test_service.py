"""The daemon as a systemd service, through the real protocols: readiness
and watchdog kicks on $NOTIFY_SOCKET, syslog priorities on stderr when it is
the journal ($JOURNAL_STREAM), and SIGHUP reloading the configuration."""
import json
import os
import signal
import socket
import tempfile
import time
import unittest

from harness import Daemon, wait_for


class NotifyTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mdscale-notify-")
        self.path = os.path.join(self.tmp, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.addCleanup(self.sock.close)

    def messages(self, until, timeout=10):
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
            if until(got):
                break
        return got

    def test_ready_watchdog_and_stopping(self):
        d = Daemon(env={"NOTIFY_SOCKET": self.path,
                        "WATCHDOG_USEC": "200000"})
        d.start()
        self.addCleanup(d.cleanup)
        got = self.messages(lambda g: sum("WATCHDOG=1" in m for m in g) >= 3)
        ready = [m for m in got if "READY=1" in m]
        self.assertEqual(len(ready), 1, got)
        self.assertIn("STATUS=serving", ready[0])
        self.assertGreaterEqual(sum("WATCHDOG=1" in m for m in got), 3, got)
        self.assertEqual(d.stop(), 0)
        got = self.messages(lambda g: any("STOPPING=1" in m for m in g),
                            timeout=2)
        self.assertTrue(any("STOPPING=1" in m for m in got), got)

    def test_no_watchdog_unless_asked(self):
        d = Daemon(env={"NOTIFY_SOCKET": self.path})
        d.start()
        self.addCleanup(d.cleanup)
        got = self.messages(lambda g: False, timeout=1)
        self.assertTrue(any("READY=1" in m for m in got), got)
        self.assertFalse(any("WATCHDOG=1" in m for m in got), got)


class JournalTest(unittest.TestCase):
    def test_priorities_when_stderr_is_the_journal(self):
        d = Daemon()
        # The daemon's stderr is its log file: name that file as the journal
        # stream, as systemd does for a service's stderr.
        st = None
        os.makedirs(d.data_dir, exist_ok=True)
        open(d.log_path, "ab").close()
        st = os.stat(d.log_path)
        d.env = {"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)}
        d.start()
        self.addCleanup(d.cleanup)
        r = d.api("POST", "/v1/deployments", {"displayName": "x"})
        self.assertEqual(r.status, 400)
        d.stop()
        lines = [l for l in d.logs().splitlines() if l.strip()]
        self.assertTrue(lines)
        self.assertTrue(any(l.startswith("<6>serve: ") for l in lines), lines)
        for l in lines:
            self.assertRegex(l, r"^<[3467]>[a-z]+: ", l)

    def test_plain_lines_otherwise(self):
        d = Daemon(env={"JOURNAL_STREAM": "1:1"})
        d.start()
        self.addCleanup(d.cleanup)
        d.stop()
        first = d.logs().splitlines()[0]
        self.assertRegex(first, r"^\d{4}-\d\d-\d\dT\S+Z (info|debug) ")


class JsonLogTest(unittest.TestCase):
    def test_log_format_json(self):
        d = Daemon(extra_args=["--log-format", "json"])
        d.start()
        self.addCleanup(d.cleanup)
        r = d.api("POST", "/v1/deployments", {"displayName": "x"})
        self.assertEqual(r.status, 400)
        d.stop()
        lines = [l for l in d.logs().splitlines() if l.strip()]
        self.assertTrue(lines)
        objs = [json.loads(l) for l in lines]
        for o in objs:
            self.assertEqual(set(o) - {"deploymentId", "instanceId",
                                       "alarmId", "workRequestId",
                                       "function", "subscriptionId",
                                       "stream", "dropped"},
                             {"time", "level", "source", "message"}, o)
        self.assertTrue(any(o["source"] == "serve" and
                            "signal 15" in o["message"] for o in objs))
        # The same objects as the log file's, for the lines both have (the
        # file opens after the first lines and closes before the last).
        with open(os.path.join(d.data_dir, "logs", "mdscale.log")) as f:
            stored = [json.loads(l) for l in f if l.strip()]
        started = [o for o in objs if o["message"].startswith("mdscale ")]
        self.assertEqual(len(started), 1, objs)
        self.assertIn(started[0], stored)

    def test_bad_log_format(self):
        d = Daemon(extra_args=["--log-format", "xml"])
        with self.assertRaises(AssertionError) as e:
            d.start()
        self.assertIn("--log-format", str(e.exception))


class ReloadTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(config={"maxInstancesPerDeployment": 4})
        self.d.start()
        self.addCleanup(self.d.cleanup)
        self.path = os.path.join(self.d.data_dir, "config.json")

    def rewrite(self, text):
        with open(self.path, "w") as f:
            f.write(text)
        mark = len(self.d.logs())
        self.d.proc.send_signal(signal.SIGHUP)
        return wait_for("the reload's log line",
                        lambda: "SIGHUP" in self.d.logs()[mark:]
                        and self.d.logs()[mark:], timeout=10)

    def count_allowed(self, n):
        r = self.d.api("POST", "/v1/deployments", {
            "displayName": "lim%d-%d" % (n, time.monotonic_ns()), "command": "sleep 1000",
            "instanceCount": n, "healthPath": "/"})
        if r.status == 201:
            self.d.api("DELETE", "/v1/deployments/" + r.json["id"])
        return r

    def test_live_field_applied_restart_field_kept(self):
        self.assertEqual(self.count_allowed(3).status, 201)
        out = self.rewrite(json.dumps({"maxInstancesPerDeployment": 2,
                                       "listen": "127.0.0.1:1"}))
        self.assertIn("changed: maxInstancesPerDeployment", out)
        self.assertIn("listen change only at the next start", out)
        r = self.count_allowed(3)
        self.assertEqual(r.status, 400, r)
        self.assertIn("instanceCount", r.raw.decode())
        # The API still answers on its first address.
        self.assertEqual(self.d.api("GET", "/v1/health").status, 200)

    def test_bad_file_changes_nothing(self):
        out = self.rewrite('{"maxInstancesPerDeployment": 2,')
        self.assertIn("configuration not reloaded", out)
        self.assertEqual(self.count_allowed(3).status, 201)
        out = self.rewrite('{"maxInstancesPerDeploymnt": 2}')
        self.assertIn("configuration not reloaded", out)
        self.assertIn("maxInstancesPerDeploymnt", out)
        self.assertEqual(self.count_allowed(3).status, 201)


if __name__ == "__main__":
    unittest.main()
