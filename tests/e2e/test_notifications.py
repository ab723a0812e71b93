"""Topics, subscriptions, deliveries and functions on the real daemon.

Receivers are real: a python3 script a COMMAND subscription runs, and small
http.server receivers that check the HMAC signature, answer 500 before 200,
hang, or are not there at all. One test kills the daemon with SIGKILL while
a delivery is pending and checks that the restarted daemon delivers it."""
import datetime
import hashlib
import hmac
import http.server
import json
import os
import shutil
import stat
import tempfile
import threading
import time
import unittest

from harness import Daemon, free_port, read_jsonl, wait_for

RECEIVER_SCRIPT = """#!/usr/bin/env python3
import sys
data = sys.stdin.read()
with open(sys.argv[1], "a") as f:
    f.write(data.replace("\\n", " ") + "\\n")
print("stored", len(data), "bytes")
"""

ECHO_FUNCTION = """#!/usr/bin/env python3
import json, sys
msg = json.load(sys.stdin)
print("echo function ran", file=sys.stderr)
print(json.dumps({"ok": True, "title": msg.get("title"), "got": msg}))
"""

FAILING_FUNCTION = """#!/bin/sh
cat >/dev/null
echo "boom: the function broke" >&2
exit 3
"""

SLEEPY_FUNCTION = """#!/bin/sh
sleep 10
"""

TEXT_FUNCTION = """#!/bin/sh
cat >/dev/null
echo "plain text, not JSON"
"""


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")


class Receiver:
    """An HTTP receiver on loopback. plan lists the status to answer for
    each request in turn (then 200); "hang" means answer only after 5 s."""

    def __init__(self, plan=(), port=0):
        self.requests = []
        self.plan = list(plan)
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with outer.lock:
                    outer.requests.append((time.monotonic(),
                                           dict(self.headers), body))
                    what = outer.plan.pop(0) if outer.plan else 200
                if what == "hang":
                    time.sleep(5)
                    what = 200
                try:
                    self.send_response(what)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                                      Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/hook" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def count(self):
        with self.lock:
            return len(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def write_script(folder, name, text, mode=0o755):
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


class NotificationsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mdscale-notify-")
        # Functions and COMMAND subscriptions run as the unprivileged
        # instance user: it runs the scripts here and writes beside them.
        os.chmod(cls.tmp, 0o1777)
        cls.receiver = write_script(cls.tmp, "receiver.py", RECEIVER_SCRIPT)
        cls.d = Daemon().start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.cleanup()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- helpers --
    def topic(self, name):
        r = self.d.api("POST", "/v1/topics", {"name": name})
        self.assertEqual(r.status, 201, r)
        self.assertTrue(r.json["topicId"].startswith("topic-"), r)
        self.assertEqual(r.json["lifecycleState"], "ACTIVE")
        return r.json["topicId"]

    def subscribe(self, topic_id, **spec):
        spec["topicId"] = topic_id
        r = self.d.api("POST", "/v1/subscriptions", spec)
        self.assertEqual(r.status, 201, r)
        self.assertTrue(r.json["id"].startswith("sub-"), r)
        return r.json

    def publish(self, topic_id, message):
        r = self.d.api("POST", "/v1/topics/%s/messages" % topic_id, message)
        self.assertEqual(r.status, 202, r)
        return r.json["messageId"]

    def deliveries(self, sub_id):
        r = self.d.api("GET", "/v1/subscriptions/%s/deliveries" % sub_id)
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def wait_deliveries(self, sub_id, n, timeout=20):
        return wait_for("%d delivery attempts of %s" % (n, sub_id),
                        lambda: (lambda v: v if len(v) >= n else None)(
                            self.deliveries(sub_id)), timeout=timeout)

    def read_lines(self, path):
        return read_jsonl(path)

    # -- delivery --
    def test_command_subscription_in_order(self):
        t = self.topic("cmd-topic")
        out = os.path.join(self.tmp, "cmd-out.txt")
        sub = self.subscribe(t, protocol="COMMAND",
                             command=[self.receiver, out])
        self.assertEqual(sub["command"], [self.receiver, out])
        self.assertEqual(sub["maxAttempts"], 8)
        ids = [self.publish(t, {"title": "m%d" % i, "seq": i})
               for i in range(5)]
        lines = wait_for("5 messages in the command's file",
                         lambda: (lambda v: v if len(v) >= 5 else None)(
                             self.read_lines(out)))
        seqs = [m["seq"] for m in lines]
        # At least once, in order: duplicates may only repeat in place.
        dedup = [s for i, s in enumerate(seqs) if i == 0 or seqs[i - 1] != s]
        self.assertEqual(dedup, [0, 1, 2, 3, 4], seqs)
        items = self.wait_deliveries(sub["id"], 5)
        self.assertEqual([d["messageId"] for d in items], ids)
        for d in items:
            self.assertEqual(d["outcome"], "SUCCEEDED", d)
            self.assertEqual(d["status"], 0, d)
            self.assertEqual(d["attempt"], 1, d)
            self.assertIsNone(d["error"])
            self.assertGreaterEqual(d["durationMs"], 0)
        self.assertIn("stored", self.d.logs())

    def test_http_signature_and_headers(self):
        rcv = Receiver()
        self.addCleanup(rcv.close)
        t = self.topic("http-topic")
        secret = "s3cret-for-the-test-0123456789"
        sub = self.subscribe(t, protocol="HTTP", endpoint=rcv.url,
                             secret=secret)
        self.assertEqual(sub["secret"], secret)
        gen = self.subscribe(t, protocol="HTTP", endpoint=rcv.url)
        self.assertTrue(gen["secret"].startswith("whsec_"), gen)
        # The secret is shown once only.
        again = self.d.api("GET", "/v1/subscriptions/" + sub["id"]).json
        self.assertNotIn("secret", again)
        self.assertEqual(again["endpoint"], rcv.url)

        message = {"dedupeKey": "dk-12345", "title": "t", "body": "b"}
        raw = json.dumps(message)
        mid = self.publish(t, raw)
        wait_for("both deliveries", lambda: rcv.count() >= 2)
        secrets = {sub["id"]: secret, gen["id"]: gen["secret"]}
        seen = set()
        for _, headers, body in rcv.requests:
            self.assertEqual(body, raw.encode())
            sid = headers["X-Mdscale-Subscription-Id"]
            seen.add(sid)
            expected = "sha256=" + hmac.new(secrets[sid].encode(), body,
                                            hashlib.sha256).hexdigest()
            self.assertTrue(hmac.compare_digest(
                expected, headers["X-Mdscale-Signature"]), headers)
            self.assertEqual(headers["X-Mdscale-Dedupe-Key"], "dk-12345")
            self.assertEqual(headers["X-Mdscale-Message-Id"], mid)
            self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(seen, set(secrets))
        d = self.wait_deliveries(sub["id"], 1)[0]
        self.assertEqual((d["outcome"], d["status"], d["dedupeKey"]),
                         ("SUCCEEDED", 200, "dk-12345"))

    def test_retry_with_backoff(self):
        rcv = Receiver(plan=[500, 500, 200])
        self.addCleanup(rcv.close)
        t = self.topic("retry-topic")
        sub = self.subscribe(t, protocol="HTTP", endpoint=rcv.url,
                             maxAttempts=5)
        self.publish(t, {"title": "retry me"})
        items = self.wait_deliveries(sub["id"], 3, timeout=15)
        self.assertEqual([d["outcome"] for d in items],
                         ["RETRYING", "RETRYING", "SUCCEEDED"], items)
        self.assertEqual([d["status"] for d in items], [500, 500, 200])
        self.assertEqual([d["attempt"] for d in items], [1, 2, 3])
        self.assertIn("HTTP 500", items[0]["error"])
        # Backoff: 1 s after the first failure, 2 s after the second.
        gap1 = (parse_time(items[1]["timeStarted"]) -
                parse_time(items[0]["timeFinished"])).total_seconds()
        gap2 = (parse_time(items[2]["timeStarted"]) -
                parse_time(items[1]["timeFinished"])).total_seconds()
        self.assertGreaterEqual(gap1, 0.9, items)
        self.assertGreaterEqual(gap2, 1.9, items)
        self.assertLess(gap2, 4.0, items)
        self.assertEqual(rcv.count(), 3)
        time.sleep(0.3)
        self.assertEqual(rcv.count(), 3)  # no more after the success
        s = self.d.api("GET", "/v1/subscriptions/" + sub["id"]).json
        self.assertEqual(s["pendingDeliveries"], 0)

    def test_a_4xx_is_a_dead_letter_at_once_and_replays(self):
        rcv = Receiver(plan=[400])
        self.addCleanup(rcv.close)
        t = self.topic("refusing-topic")
        sub = self.subscribe(t, protocol="HTTP", endpoint=rcv.url,
                             maxAttempts=5)
        mid = self.publish(t, {"title": "not for me", "dedupeKey": "k-1"})
        items = self.wait_deliveries(sub["id"], 1)
        self.assertEqual([(d["outcome"], d["status"]) for d in items],
                         [("REFUSED", 400)], items)
        time.sleep(1.5)  # past the first backoff: no second attempt
        self.assertEqual(rcv.count(), 1)
        dead = self.d.api("GET", "/v1/subscriptions/%s/dead-letters"
                          % sub["id"]).json["items"]
        self.assertEqual([(x["messageId"], x["outcome"], x["attempts"])
                          for x in dead], [(mid, "REFUSED", 1)])
        self.assertIn("HTTP 400", dead[0]["reason"])
        self.assertEqual(dead[0]["message"]["title"], "not for me")
        # Replayed, the receiver now takes it.
        r = self.d.api("POST", "/v1/subscriptions/%s/dead-letters/%s/replay"
                       % (sub["id"], dead[0]["id"]), {})
        self.assertEqual(r.status, 202, r)
        items = self.wait_deliveries(sub["id"], 2)
        self.assertEqual(items[-1]["outcome"], "SUCCEEDED", items)
        self.assertEqual(items[-1]["messageId"], mid)
        self.assertEqual(self.d.api("GET", "/v1/subscriptions/%s/dead-letters"
                                    % sub["id"]).json["items"], [])
        r = self.d.api("POST", "/v1/subscriptions/%s/dead-letters/%s/replay"
                       % (sub["id"], dead[0]["id"]), {})
        self.assertEqual(r.status, 404, r)

    def test_refused_and_hanging_receivers(self):
        closed = "http://127.0.0.1:%d/hook" % free_port()
        hang = Receiver(plan=["hang", "hang"])
        self.addCleanup(hang.close)
        t = self.topic("failing-topic")
        refused = self.subscribe(t, protocol="HTTP", endpoint=closed,
                                 maxAttempts=2)
        slow = self.subscribe(t, protocol="HTTP", endpoint=hang.url,
                              maxAttempts=2, timeoutSeconds=1)
        self.publish(t, {"title": "nobody listens"})
        items = self.wait_deliveries(refused["id"], 2)
        self.assertEqual([d["outcome"] for d in items],
                         ["RETRYING", "FAILED"], items)
        self.assertIsNone(items[0]["status"])
        self.assertTrue(items[0]["error"], items)
        items = self.wait_deliveries(slow["id"], 2)
        self.assertEqual([d["outcome"] for d in items],
                         ["RETRYING", "FAILED"], items)
        for d in items:
            self.assertIn("timed out", d["error"], d)
            self.assertGreaterEqual(d["durationMs"], 900, d)
            self.assertLess(d["durationMs"], 3000, d)
        # Dead deliveries leave the queue, and the daemon is fine.
        for s in (refused, slow):
            got = self.d.api("GET", "/v1/subscriptions/" + s["id"]).json
            self.assertEqual(got["pendingDeliveries"], 0, got)
        self.assertEqual(self.d.api("GET", "/v1/health").status, 200)

    def test_pending_delivery_survives_sigkill(self):
        port = free_port()
        d1 = Daemon().start()
        d2 = None
        rcv = None
        try:
            t = d1.api("POST", "/v1/topics", {"name": "durable"}).json
            sub = d1.api("POST", "/v1/subscriptions", {
                "topicId": t["topicId"], "protocol": "HTTP",
                "endpoint": "http://127.0.0.1:%d/hook" % port,
                "maxAttempts": 20}).json
            r = d1.api("POST", "/v1/topics/%s/messages" % t["topicId"],
                       {"title": "survive", "dedupeKey": "k-survive"})
            self.assertEqual(r.status, 202, r)
            path = "/v1/subscriptions/%s/deliveries" % sub["id"]
            wait_for("a failed attempt",
                     lambda: d1.api("GET", path).json["items"])
            d1.kill()
            rcv = Receiver(port=port)
            d2 = Daemon(data_dir=d1.data_dir).start()
            wait_for("the message after the restart",
                     lambda: rcv.count() >= 1, timeout=20)
            _, headers, body = rcv.requests[0]
            self.assertEqual(json.loads(body)["title"], "survive")
            self.assertEqual(headers["X-Mdscale-Dedupe-Key"], "k-survive")
            items = wait_for("the success recorded", lambda: [
                x for x in d2.api("GET", path).json["items"]
                if x["outcome"] == "SUCCEEDED"])
            self.assertGreaterEqual(items[0]["attempt"], 2)
            got = d2.api("GET", "/v1/subscriptions/" + sub["id"]).json
            self.assertEqual(got["pendingDeliveries"], 0)

            # SIGTERM with a delivery and an invocation in flight: both
            # are cancelled, the daemon exits 0 at once.
            slow = write_script(self.tmp, "slow.sh", SLEEPY_FUNCTION)
            r = d2.api("POST", "/v1/subscriptions", {
                "topicId": t["topicId"], "protocol": "COMMAND",
                "command": [slow]})
            self.assertEqual(r.status, 201, r)
            d2.api("POST", "/v1/functions", {"name": "slow",
                                             "command": [slow]})
            call = threading.Thread(target=lambda: d2.api(
                "POST", "/v1/functions/slow/invoke", {"a": 1}))
            call.start()
            d2.api("POST", "/v1/topics/%s/messages" % t["topicId"], {"b": 2})
            wait_for("the slow delivery to start",
                     lambda: "subscription %s: started" % r.json["id"]
                     in d2.logs())
            t0 = time.monotonic()
            self.assertEqual(d2.stop(), 0)
            self.assertLess(time.monotonic() - t0, 5)
            call.join(10)
        finally:
            if rcv is not None:
                rcv.close()
            if d2 is not None:
                d2.cleanup()
            d1.cleanup()

    def test_topic_delete_takes_its_subscriptions(self):
        t = self.topic("short-lived")
        sub = self.subscribe(t, protocol="COMMAND",
                             command=[self.receiver, "/dev/null"])
        r = self.d.api("GET", "/v1/topics?name=short-lived")
        self.assertEqual([x["topicId"] for x in r.json["items"]], [t])
        r = self.d.api("DELETE", "/v1/topics/" + t)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.d.api("GET", "/v1/topics/" + t).status, 404)
        self.assertEqual(
            self.d.api("GET", "/v1/subscriptions/" + sub["id"]).status, 404)
        r = self.d.api("GET", "/v1/subscriptions?topicId=" + t)
        self.assertEqual(r.json["items"], [])
        r = self.d.api("POST", "/v1/topics/%s/messages" % t, {"a": 1})
        self.assertEqual(r.status, 404, r)

    # -- functions --
    def test_user_functions(self):
        echo = write_script(self.tmp, "echo-fn.py", ECHO_FUNCTION)
        failing = write_script(self.tmp, "failing-fn.sh", FAILING_FUNCTION)
        sleepy = write_script(self.tmp, "sleepy-fn.sh", SLEEPY_FUNCTION)
        text = write_script(self.tmp, "text-fn.sh", TEXT_FUNCTION)
        r = self.d.api("POST", "/v1/functions",
                       {"name": "echo", "command": [echo],
                        "description": "echoes"})
        self.assertEqual(r.status, 201, r)
        self.assertFalse(r.json["builtin"])
        for name, cmd, extra in (("failing", failing, {}),
                                 ("sleepy", sleepy, {"timeoutSeconds": 1}),
                                 ("text", text, {})):
            spec = {"name": name, "command": [cmd]}
            spec.update(extra)
            r = self.d.api("POST", "/v1/functions", spec)
            self.assertEqual(r.status, 201, r)

        msg = {"title": "model_deployment_high_cpu", "type": "OK_TO_FIRING"}
        r = self.d.api("POST", "/v1/functions/echo/invoke", msg)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"ok": True, "title": msg["title"],
                                  "got": msg})
        r = self.d.api("POST", "/v1/functions/text/invoke", msg)
        self.assertEqual((r.status, r.json),
                         (200, {"output": "plain text, not JSON\n"}))
        r = self.d.api("POST", "/v1/functions/nope/invoke", msg)
        self.assertEqual(r.status, 404, r)
        r = self.d.api("POST", "/v1/functions/failing/invoke", msg)
        self.assertEqual(r.status, 502, r)
        self.assertEqual(r.json["code"], "FunctionFailed")
        self.assertIn("exit status 3", r.json["message"])
        self.assertIn("boom", r.json["message"])
        t0 = time.monotonic()
        r = self.d.api("POST", "/v1/functions/sleepy/invoke", msg)
        self.assertEqual(r.status, 502, r)
        self.assertIn("timed out", r.json["message"])
        self.assertLess(time.monotonic() - t0, 5)
        r = self.d.api("POST", "/v1/functions/echo/invoke", '{"title": ',
                       headers={"Content-Type": "application/json"})
        self.assertEqual((r.status, r.json["code"]), (400, "InvalidJson"))

        items = self.d.api("GET", "/v1/functions").json["items"]
        byname = {f["name"]: f for f in items}
        self.assertEqual(byname["echo"]["invocations"], 1)
        self.assertEqual(byname["failing"]["failures"], 1)
        self.assertIn("exit status 3", byname["failing"]["lastError"])
        builtins = [f["builtin"] for f in items]
        self.assertEqual(builtins, sorted(builtins, reverse=True))

        # The recipe's step: mdscale fn invoke NAME < message.json
        c = self.d.cli("fn", "invoke", "echo", input=json.dumps(msg))
        self.assertEqual(c.returncode, 0, c)
        self.assertEqual(json.loads(c.stdout)["title"], msg["title"])
        c = self.d.cli("fn", "invoke", "failing", input=json.dumps(msg))
        self.assertEqual(c.returncode, 1, c)
        self.assertEqual(len(c.stderr.splitlines()), 1, c)
        self.assertIn("exit status 3", c.stderr)
        c = self.d.cli("fn", "invoke", "echo", input="{not json")
        self.assertEqual(c.returncode, 1, c)
        self.assertEqual(len(c.stderr.splitlines()), 1, c)

        for name in ("failing", "sleepy", "text"):
            self.assertEqual(
                self.d.api("DELETE", "/v1/functions/" + name).status, 204)
        c = self.d.cli("fn", "delete", "echo")
        self.assertEqual(c.returncode, 0, c)
        r = self.d.api("POST", "/v1/functions/echo/invoke", msg)
        self.assertEqual(r.status, 404, r)

    def test_function_subscription(self):
        out = os.path.join(self.tmp, "fn-out.txt")
        r = self.d.api("POST", "/v1/functions",
                       {"name": "sink", "command": [self.receiver, out]})
        self.assertEqual(r.status, 201, r)
        t = self.topic("fn-topic")
        sub = self.subscribe(t, protocol="FUNCTION", endpoint="sink")
        self.assertEqual(sub["endpoint"], "sink")
        self.publish(t, {"title": "to a function"})
        lines = wait_for("the function's file", lambda: self.read_lines(out))
        self.assertEqual(lines[0]["title"], "to a function")
        d = self.wait_deliveries(sub["id"], 1)[0]
        self.assertEqual(d["outcome"], "SUCCEEDED", d)
        self.assertIsNone(d["status"])

    # -- the CLI --
    def test_cli(self):
        c = self.d.cli("--output", "json", "topic", "create", "--name",
                       "cli-topic", "--description", "from the CLI")
        self.assertEqual(c.returncode, 0, c)
        tid = json.loads(c.stdout)["topicId"]
        out = os.path.join(self.tmp, "cli-out.txt")
        # The topic by its name; a COMMAND delivery is not signed, so no
        # secret is printed.
        c = self.d.cli("subscription", "create", "--topic", "cli-topic",
                       "--protocol", "COMMAND", "--command", self.receiver,
                       "--command", out, "--max-attempts", "3")
        self.assertEqual(c.returncode, 0, c)
        self.assertNotIn("secret", c.stdout)
        self.assertIn(tid, c.stdout)
        c = self.d.cli("topic", "publish", tid, "--file", "-",
                       input='{"title": "via the CLI"}')
        self.assertEqual(c.returncode, 0, c)
        self.assertTrue(c.stdout.strip().startswith("msg-"), c)
        wait_for("the CLI message", lambda: self.read_lines(out))
        c = self.d.cli("subscription", "list", "--topic", "cli-topic")
        self.assertEqual(c.returncode, 0, c)
        sid = c.stdout.splitlines()[1].split()[0]
        self.assertTrue(sid.startswith("sub-"), c)
        wait_for("the CLI delivery recorded",
                 lambda: "SUCCEEDED" in self.d.cli(
                     "subscription", "deliveries", sid).stdout)
        for args in (("topic", "list"), ("topic", "get", tid),
                     ("subscription", "get", sid), ("fn", "list")):
            c = self.d.cli(*args)
            self.assertEqual(c.returncode, 0, (args, c))
        c = self.d.cli("subscription", "create", "--topic", tid,
                       "--protocol", "HTTP", "--endpoint", "ftp://x")
        self.assertEqual(c.returncode, 1, c)
        self.assertIn("endpoint", c.stderr)
        c = self.d.cli("topic", "publish", tid)
        self.assertEqual(c.returncode, 2, c)
        self.assertEqual(self.d.cli("subscription", "delete", sid)
                         .returncode, 0)
        self.assertEqual(self.d.cli("topic", "delete", tid).returncode, 0)

    # -- bad input --
    def snapshot(self):
        return json.dumps([self.d.api("GET", p).json["items"] for p in
                           ("/v1/topics", "/v1/subscriptions",
                            "/v1/functions")], sort_keys=True)

    def refused(self, method, path, body, status, field=None, text=None,
                code=None):
        before = self.snapshot()
        r = self.d.api(method, path, body)
        self.assertEqual(r.status, status, (body, r))
        self.assertIsNotNone(r.json, r)
        self.assertTrue(r.json["message"])
        if field is not None:
            self.assertEqual(r.json.get("field"), field, (body, r))
        if text is not None:
            self.assertIn(text, r.json["message"])
        if code is not None:
            self.assertEqual(r.json["code"], code, r)
        self.assertEqual(self.snapshot(), before)
        return r

    def test_bad_input(self):
        t = self.topic("bad-input")
        noexec = write_script(self.tmp, "noexec.sh", "#!/bin/sh\n",
                              mode=stat.S_IRUSR | stat.S_IWUSR)
        S = "/v1/subscriptions"

        def sub(**kw):
            spec = {"topicId": t, "protocol": "COMMAND",
                    "command": [self.receiver, "/dev/null"]}
            spec.update(kw)
            return {k: v for k, v in spec.items() if v is not None}

        self.refused("POST", S, sub(topicId="topic-0000000000000000"), 400,
                     "topicId", "no topic")
        self.refused("POST", S, sub(topicId=None), 400, "topicId",
                     code="MissingParameter")
        self.refused("POST", S, sub(protocol="SMTP"), 400, "protocol")
        self.refused("POST", S, sub(protocol=None), 400, "protocol")
        self.refused("POST", S, sub(command=[noexec]), 400, "command",
                     "noexec.sh")
        self.refused("POST", S, sub(command=["/no/such/program"]), 400,
                     "command")
        self.refused("POST", S, sub(command=["no-such-program-xyz"]), 400,
                     "command")
        self.refused("POST", S, sub(command=["./receiver.py"]), 400,
                     "command", "absolute")
        self.refused("POST", S, sub(command="/bin/cat"), 400, "command")
        self.refused("POST", S, sub(command=[]), 400, "command")
        self.refused("POST", S, sub(command=None), 400, "command")
        self.refused("POST", S, sub(endpoint="x"), 400, "endpoint")
        self.refused("POST", S, sub(protocol="HTTP", command=None,
                                    endpoint="ftp://example.com/"), 400,
                     "endpoint")
        self.refused("POST", S, sub(protocol="HTTPS", command=None,
                                    endpoint="http://127.0.0.1/x"), 400,
                     "endpoint", "https://")
        self.refused("POST", S, sub(protocol="HTTP", command=None,
                                    endpoint="http:///nohost"), 400,
                     "endpoint")
        self.refused("POST", S, sub(protocol="HTTP", command=None,
                                    endpoint="http://a b/"), 400,
                     "endpoint")
        self.refused("POST", S, sub(protocol="HTTP", command=None), 400,
                     "endpoint")
        self.refused("POST", S, sub(protocol="HTTP",
                                    endpoint="http://127.0.0.1/"), 400,
                     "command")
        self.refused("POST", S, sub(protocol="FUNCTION", command=None,
                                    endpoint="no-such-function"), 400,
                     "endpoint", "no-such-function")
        self.refused("POST", S, sub(maxAttempts=0), 400, "maxAttempts")
        self.refused("POST", S, sub(maxAttempts=101), 400, "maxAttempts")
        self.refused("POST", S, sub(timeoutSeconds="5"), 400,
                     "timeoutSeconds")
        self.refused("POST", S, sub(secret="short"), 400, "secret")
        self.refused("POST", S, sub(colour="blue"), 400, "colour")
        self.refused("POST", S, [1, 2], 400)

        T = "/v1/topics"
        self.refused("POST", T, {}, 400, "name", code="MissingParameter")
        self.refused("POST", T, {"name": "has space"}, 400, "name")
        self.refused("POST", T, {"name": "x" * 257}, 400, "name")
        self.refused("POST", T, {"name": "bad-input"}, 409, "name",
                     "exists")
        self.refused("POST", T, {"name": "ok", "description": 5}, 400,
                     "description")
        self.refused("POST", T, {"name": "ok", "extra": 1}, 400, "extra")
        self.refused("POST", T + "/topic-0000000000000000/messages",
                     {"a": 1}, 404)
        self.refused("POST", T + "/%s/messages" % t, [1, 2], 400)
        self.refused("POST", T + "/%s/messages" % t, "{bad", 400,
                     code="InvalidJson")
        r = self.d.api("GET", T + "?name=" + "x" * 400)
        self.assertEqual((r.status, r.json["items"]), (200, []))
        r = self.d.api("GET", S + "?topicId=" + "x" * 400)
        self.assertEqual((r.status, r.json["items"]), (200, []))
        self.refused("DELETE", T + "/topic-0000000000000000", None, 404)
        self.refused("GET", S + "/sub-0000000000000000/deliveries", None,
                     404)
        self.refused("DELETE", S + "/sub-0000000000000000", None, 404)

        F = "/v1/functions"
        good = [self.receiver, "/dev/null"]
        self.refused("POST", F, {"name": "Bad_Name", "command": good}, 400,
                     "name")
        self.refused("POST", F, {"name": "x" * 65, "command": good}, 400,
                     "name")
        self.refused("POST", F, {"name": "ok"}, 400, "command",
                     code="MissingParameter")
        self.refused("POST", F, {"name": "ok", "command": [noexec]}, 400,
                     "command")
        self.refused("POST", F, {"name": "ok", "command": good,
                                 "timeoutSeconds": 0}, 400,
                     "timeoutSeconds")
        self.refused("POST", F, {"name": "ok", "command": good, "x": 1},
                     400, "x")
        self.refused("DELETE", F + "/no-such-function", None, 404)
        r = self.d.api("POST", F, {"name": "dup", "command": good})
        self.assertEqual(r.status, 201, r)
        self.refused("POST", F, {"name": "dup", "command": good}, 409,
                     "name")
        self.assertEqual(self.d.api("DELETE", F + "/dup").status, 204)

        before = self.snapshot()
        r = self.d.api("POST", T, {"name": "noauth"}, auth=False)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(self.snapshot(), before)


if __name__ == "__main__":
    unittest.main()
