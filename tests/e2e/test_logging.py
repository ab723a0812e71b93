"""The structured log on the real daemon: instance output and function
output land in it with their ids, rotation keeps it within its size bound,
GET /v1/logs and `mdscale logs` filter it (and refuse bad filters), and
followers see new lines as they come, without leaking when they leave."""
import http.client
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

from harness import BIN, Daemon, model_command, wait_for


def log_items(d, **params):
    """GET /v1/logs with the filters given; returns the items."""
    q = urllib.parse.urlencode(params)
    r = d.api("GET", "/v1/logs" + ("?" + q if q else ""))
    assert r.status == 200, r
    return r.json["items"]


def wait_log(d, what, timeout=30, **params):
    return wait_for(what, lambda: log_items(d, **params), timeout=timeout)


class Follower:
    """GET /v1/logs?follow=true read line by line on a thread."""

    def __init__(self, port, query, token):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.conn.request("GET", "/v1/logs?follow=true&" + query,
                          headers={"Authorization": "Bearer " + token})
        self.sock = self.conn.sock
        self.resp = self.conn.getresponse()
        self.lines = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                self.lines.put(json.loads(line))
        except (OSError, ValueError, http.client.HTTPException):
            pass
        self.lines.put(None)

    def wait_for(self, pred, timeout=30):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                item = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is None:
                break
            seen.append(item)
            if pred(item):
                return item
        raise AssertionError("the follower did not see the line; saw %r"
                             % seen[-5:])

    def close(self):
        """Goes away abruptly, as a client killed mid-stream does."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(timeout=10)
        self.resp.close()
        self.conn.close()


class LoggingTest(unittest.TestCase):
    def start(self, **config):
        d = Daemon(config=config or None).start()
        self.addCleanup(d.cleanup)
        return d

    def test_instance_output_and_access_log_with_ids(self):
        d = self.start(accessLog=True)
        cmd = "echo MARK-STDERR-1 >&2; echo MARK-STDOUT-1; " + model_command()
        dep = d.create(displayName="talker", command=cmd)
        dep = d.wait_state(dep["id"], "ACTIVE")
        inst = dep["instances"][0]["id"]
        # stdout and stderr go to separate files...
        inst_dir = os.path.join(d.data_dir, "instances")
        self.assertTrue(os.path.exists(os.path.join(inst_dir,
                                                    inst + ".err.log")))
        self.assertTrue(os.path.exists(os.path.join(inst_dir,
                                                    inst + ".out.log")))
        # ...and into the log, line by line, with their ids.
        items = wait_log(d, "the instance's stderr in the log",
                         instanceId=inst, stream="stderr", text="MARK-STDERR")
        self.assertEqual(len(items), 1)
        line = items[0]
        self.assertEqual(line["message"], "MARK-STDERR-1")
        self.assertEqual(line["source"], "instance")
        self.assertEqual(line["level"], "info")
        self.assertEqual(line["deploymentId"], dep["id"])
        self.assertEqual(line["instanceId"], inst)
        self.assertEqual(line["stream"], "stderr")
        self.assertRegex(line["time"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        out = wait_log(d, "the instance's stdout", instanceId=inst,
                       stream="stdout", text="MARK-STDOUT")
        self.assertEqual(out[0]["stream"], "stdout")
        # The deployments module's own lines carry the ids too.
        started = log_items(d, source="deploy", instanceId=inst,
                            text="started")
        self.assertEqual(started[0]["deploymentId"], dep["id"])
        self.assertTrue(started[0]["workRequestId"].startswith("wr-"))
        # The access log: one line per gateway request, with the ids.
        r = d.gw("GET", "/talker/health")
        self.assertEqual(r.status, 200)
        self.assertEqual(d.gw("GET", "/nobody/predict?x=1").status, 404)
        acc = wait_log(d, "the access log line", source="access",
                       deployment="talker")
        self.assertIn("GET /talker/health 200", acc[-1]["message"])
        self.assertEqual(acc[-1]["instanceId"], inst)
        acc = wait_log(d, "the 404 access line", source="access",
                       text="/nobody/predict")
        self.assertIn("GET /nobody/predict 404", acc[-1]["message"])
        self.assertNotIn("x=1", acc[-1]["message"])
        self.assertNotIn("deploymentId", acc[-1])
        # The CLI shows the same, readable or as JSON lines.
        p = d.cli("logs", "--deployment", "talker", "--text", "MARK-STDERR")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout.strip(),
                         r"^\S+Z info  instance \[%s %s stderr\] "
                         r"MARK-STDERR-1$" % (dep["id"], inst))
        p = d.cli("logs", "--instance", inst, "--stream", "stdout",
                  "--output", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = [json.loads(x) for x in p.stdout.splitlines()]
        self.assertIn("MARK-STDOUT-1", [x["message"] for x in lines])

    def test_function_output_is_logged(self):
        d = self.start()
        fn = {"name": "chatty",
              "command": ["/bin/sh", "-c",
                          "cat >/dev/null; echo FN-MARK-ERR >&2; "
                          "echo '{\"ok\": true, \"mark\": \"FN-MARK-OUT\"}'"]}
        r = d.api("POST", "/v1/functions", fn)
        self.assertEqual(r.status, 201, r)
        r = d.api("POST", "/v1/functions/chatty/invoke", {"x": 1})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["mark"], "FN-MARK-OUT")
        for stream, mark in (("stderr", "FN-MARK-ERR"), ("stdout", "FN-MARK-OUT")):
            items = wait_log(d, "the function's " + stream, text=mark)
            self.assertEqual(items[0]["source"], "fn")
            self.assertEqual(items[0].get("function"), "chatty", items[0])
            self.assertEqual(items[0].get("stream"), stream, items[0])

    def test_rotation_keeps_the_size_bound(self):
        d = self.start(logMaxFileMB=1, logMaxFiles=3)
        # About 4 MiB of stdout, then the model server.
        flood = ("yes 'flood-line-%s' | head -n 40000; echo END-FLOOD; "
                 % ("x" * 90))
        dep = d.create(displayName="flood", command=flood + model_command())
        d.wait_state(dep["id"], "ACTIVE")
        wait_log(d, "the end of the flood in the log", timeout=90,
                 text="END-FLOOD", source="instance")
        logs = os.path.join(d.data_dir, "logs")
        names = [n for n in os.listdir(logs) if n.startswith("mdscale.log")]
        total = sum(os.path.getsize(os.path.join(logs, n)) for n in names)
        self.assertLessEqual(len(names), 3 + 1, names)
        self.assertIn("mdscale.log.3", names)
        self.assertLessEqual(total, (3 + 1) * (1 << 20), names)
        for n in names:
            self.assertLessEqual(os.path.getsize(os.path.join(logs, n)),
                                 1 << 20, n)
        # The instance's own file was emptied once read past the bound.
        inst = d.get(dep["id"])["instances"][0]["id"]
        out = os.path.join(d.data_dir, "instances", inst + ".out.log")
        wait_for("the instance's file emptied",
                 lambda: os.path.getsize(out) < (1 << 20))
        # The newest lines are all there, in order, searchable.
        items = log_items(d, instanceId=inst, stream="stdout", limit=3)
        self.assertEqual(items[-1]["message"], "END-FLOOD")
        self.assertEqual(items[0]["message"], "flood-line-" + "x" * 90)
        self.assertEqual(d.gw("GET", "/flood/health").status, 200)

    def test_output_written_while_the_daemon_is_down_is_logged(self):
        d = self.start()
        ticker = ("(i=0; while sleep 0.1; do i=$((i+1)); echo tick-$i; "
                  "done) & ")
        dep = d.create(displayName="ticker", command=ticker + model_command())
        d.wait_state(dep["id"], "ACTIVE")
        inst = d.get(dep["id"])["instances"][0]["id"]

        def ticks():
            items = log_items(d, instanceId=inst, stream="stdout",
                              text="tick-", limit=10000)
            return [int(x["message"][5:]) for x in items]
        wait_for("some ticks", lambda: len(ticks()) >= 5)
        d.kill()
        time.sleep(1.5)  # the instance goes on writing
        d.start()
        first = max(ticks())
        wait_for("ticks after the restart",
                 lambda: max(ticks()) > first + 20)
        seen = ticks()
        # Every line is there, in order; after a SIGKILL at most about a
        # second of lines may be logged twice.
        self.assertEqual(sorted(set(seen)), list(range(1, max(seen) + 1)))
        self.assertLessEqual(len(seen) - len(set(seen)), 15)

    def test_filters_and_bad_filters(self):
        d = self.start()
        dep = d.create(displayName="filtered")
        d.wait_state(dep["id"], "ACTIVE")
        serve = log_items(d, source="serve")
        self.assertTrue(serve)
        self.assertEqual({x["source"] for x in serve}, {"serve"})
        by_name = log_items(d, deployment="filtered")
        by_id = log_items(d, deploymentId=dep["id"])
        self.assertTrue(by_id)
        self.assertEqual(by_name, by_id)
        self.assertEqual({x["deploymentId"] for x in by_id}, {dep["id"]})
        for x in log_items(d, level="warn"):
            self.assertIn(x["level"], ("warn", "error"))
        self.assertTrue(log_items(d, level="debug", since="1h"))
        self.assertEqual(log_items(d, until="2001-01-01T00:00:00Z"), [])
        self.assertEqual(log_items(d, since="2999-01-01T00:00:00Z"), [])
        r = d.api("GET", "/v1/logs?limit=1")
        self.assertEqual(len(r.json["items"]), 1)
        self.assertTrue(r.json["truncated"])
        self.assertEqual(log_items(d, text="filtered (")[0]["source"],
                         "deploy")
        for query, field in (("bogus=1", "bogus"), ("since=yesterday", "since"),
                             ("until=2024-13-01T00:00:00Z", "until"),
                             ("since=5x", "since"),
                             ("level=loud", "level"), ("limit=0", "limit"),
                             ("limit=10001", "limit"), ("limit=ten", "limit"),
                             ("follow=maybe", "follow"),
                             ("stream=both", "stream"),
                             ("follow=true&until=1h", "until"),
                             ("deployment=a&deploymentId=b", "deployment")):
            r = d.api("GET", "/v1/logs?" + query)
            self.assertEqual(r.status, 400, query)
            self.assertEqual(r.json["field"], field, query)
        p = d.cli("logs", "--level", "loud")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        self.assertIn("level", p.stderr)
        p = d.cli("logs", "--limit", "0")
        self.assertEqual(p.returncode, 2)
        p = d.cli("logs", "--since", "1h", "--source", "serve")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(" serve ", p.stdout)

    def test_follow_sees_new_lines_and_leaving_is_clean(self):
        d = self.start(accessLog=True)
        f = Follower(d.api_port, "source=access", d.token)
        self.assertEqual(f.resp.status, 200)
        self.assertEqual(f.resp.getheader("Content-Type"),
                         "application/x-ndjson")
        d.gw("GET", "/first-missing/x")
        got = f.wait_for(lambda x: "/first-missing/x" in x["message"])
        self.assertEqual(got["source"], "access")
        # The history comes first: a new follower sees the old line.
        g = Follower(d.api_port, "source=access&text=first-missing", d.token)
        g.wait_for(lambda x: "/first-missing/x" in x["message"])
        g.close()
        d.gw("GET", "/second-missing/x")
        f.wait_for(lambda x: "/second-missing/x" in x["message"])
        f.close()
        # Followers that leave, at any point, are freed: more come and go
        # than may follow at once (64), and the daemon stays healthy.
        for i in range(80):
            s = socket.create_connection(("127.0.0.1", d.api_port))
            s.sendall(b"GET /v1/logs?follow=true&limit=1 HTTP/1.1\r\n"
                      b"Host: x\r\nAuthorization: Bearer " +
                      d.token.encode() + b"\r\n\r\n")
            head = s.recv(100)
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
            s.close()
        for i in range(20):
            # Gone before the history is even read.
            s = socket.create_connection(("127.0.0.1", d.api_port))
            s.sendall(b"GET /v1/logs?follow=true HTTP/1.1\r\n"
                      b"Host: x\r\nAuthorization: Bearer " +
                      d.token.encode() + b"\r\n\r\n")
            s.close()
        def healthy():
            return d.api("GET", "/v1/health").status == 200
        wait_for("the daemon's health", healthy)
        # The CLI follows too, until it is stopped.
        e = dict(os.environ, MDSCALE_URL="http://127.0.0.1:%d" % d.api_port,
                 MDSCALE_TOKEN=d.token)
        p = subprocess.Popen([BIN, "logs", "--follow", "--source", "access",
                              "--text", "cli-follow"],
                             env=e, stdout=subprocess.PIPE, text=True)
        try:
            lines = queue.Queue()
            threading.Thread(target=lambda: [lines.put(x) for x in p.stdout],
                             daemon=True).start()
            h = Follower(d.api_port, "source=access&text=cli-follow", d.token)
            def poke():
                d.gw("GET", "/cli-follow/x")
                try:
                    return lines.get(timeout=0.5)
                except queue.Empty:
                    return None
            line = wait_for("the CLI follower's line", poke)
            self.assertIn("access", line)
            self.assertIn("GET /cli-follow/x 404", line)
            h.wait_for(lambda x: "/cli-follow/x" in x["message"])
            h.close()
        finally:
            p.terminate()
            p.wait(timeout=10)
            p.stdout.close()
        # The followers' slots are all free again.
        for _ in range(3):
            k = Follower(d.api_port, "limit=1", d.token)
            self.assertEqual(k.resp.status, 200)
            k.close()
        self.assertEqual(d.api("GET", "/v1/logs?limit=5").status, 200)
        # A follower still there when the daemon stops is ended and freed.
        last = Follower(d.api_port, "source=serve", d.token)
        last.wait_for(lambda x: x["source"] == "serve")
        self.assertEqual(d.stop(), 0)
        last.close()


if __name__ == "__main__":
    unittest.main()
