"""Who may read and change what: every route but /v1/health and the
dashboard's static files needs a token; read-only tokens read and are
refused every change with 403; tokens are issued, listed, rotated and
revoked through the CLI (`mdscale token ...`) and /v1/tokens, only with the
data directory's token, and the store keeps only their SHA-256."""
import glob
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import unittest

from harness import Daemon, model_command, request, wait_for

# Every route that reads, with ids that exist (filled in setUp) or not: an
# unknown id must be refused for the missing token before it is looked up.
READS = [
    "/v1/shapes", "/v1/deployments", "/v1/deployments/{dep}",
    "/v1/deployments/{dep}/scaling-history", "/v1/workrequests",
    "/v1/alarms", "/v1/topics", "/v1/subscriptions", "/v1/functions",
    "/v1/functions/autoscale", "/v1/logs", "/v1/logs?deployment={dep}",
    "/metrics", "/v1/top", "/ui/api/query?query=CpuUtilization%5B1m%5D.max()",
    "/v1/tokens", "/v1/deployments/no-such-id",
]


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


class AuthTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon().start()
        self.addCleanup(self.d.cleanup)
        self.dep = self.d.create(displayName="auth")["id"]
        self.d.wait_state(self.dep, "ACTIVE")

    @staticmethod
    def answered(path):
        """The statuses a read with a good token may get: an unknown id is
        404, and so is a metric not sampled yet."""
        if "no-such-id" in path:
            return (404,)
        if path.startswith("/ui/api/query"):
            return (200, 404)
        return (200,)

    def paths(self):
        return [p.format(dep=self.dep) for p in READS]

    def state(self):
        """What a refused change must leave as it was."""
        return [self.d.api("GET", p).raw for p in
                ("/v1/deployments", "/v1/topics", "/v1/alarms",
                 "/v1/functions", "/v1/tokens")]

    def cli_json(self, *args, token=None):
        env = {"MDSCALE_TOKEN": token} if token else None
        p = self.d.cli(*args, "-o", "json", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_reads_need_a_token_but_health_and_static_files(self):
        for path in self.paths():
            for token in (None, "0" * 64, self.d.token[:-1]):
                r = request(self.d.api_port, "GET", path, token=token)
                self.assertEqual(r.status, 401, (path, token, r))
                self.assertEqual(r.json["code"], "NotAuthenticated", r)
                self.assertNotIn(self.dep.encode(), r.raw)
        for path in ("/v1/health", "/ui/", "/ui/app.js", "/ui/app.css"):
            r = request(self.d.api_port, "GET", path)
            self.assertEqual(r.status, 200, (path, r))
        # With the token, the same reads answer (the unknown id 404).
        for path in self.paths():
            r = self.d.api("GET", path)
            self.assertIn(r.status, self.answered(path), (path, r))

    def test_cli_reads_send_the_token(self):
        items = self.cli_json("deployment", "list")["items"]
        self.assertEqual([d["id"] for d in items], [self.dep])
        p = self.d.cli("deployment", "list",
                       env={"MDSCALE_TOKEN": "f" * 64})
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("HTTP 401", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_read_only_token_reads_and_changes_nothing(self):
        made = self.cli_json("token", "create", "--read-only",
                             "--name", "viewer")
        self.assertTrue(made["readOnly"])
        ro = made["token"]
        self.assertRegex(ro, "^[0-9a-f]{64}$")
        for path in self.paths():
            r = request(self.d.api_port, "GET", path, token=ro)
            want = (403,) if path == "/v1/tokens" else self.answered(path)
            self.assertIn(r.status, want, (path, r))
        r = request(self.d.api_port, "POST", "/v1/metrics/query",
                    {"query": "CpuUtilization[1m].max()"}, token=ro)
        self.assertIn(r.status, (200, 404), r)  # a read, not refused
        before = self.state()
        for method, path, body in (
                ("POST", "/v1/deployments", {"displayName": "x"}),
                ("PUT", "/v1/deployments/" + self.dep, {"instanceCount": 2}),
                ("DELETE", "/v1/deployments/" + self.dep, None),
                ("POST", "/v1/topics", {"name": "t"}),
                ("POST", "/v1/functions/autoscale/invoke", {}),
                ("POST", "/v1/metrics", {"metricData": []}),
                ("POST", "/v1/tokens", {})):
            r = request(self.d.api_port, method, path, body, token=ro)
            self.assertEqual(r.status, 403, (method, path, r))
            self.assertEqual(r.json["code"], "NotAuthorized", r)
            if path != "/v1/tokens":
                self.assertIn("read-only", r.json["message"], r)
                self.assertIn(path, r.json["message"], r)
        self.assertEqual(self.state(), before)
        # The CLI says so in one line and exits non-zero.
        p = self.d.cli("topic", "create", "--name", "t",
                       env={"MDSCALE_TOKEN": ro})
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("read-only", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_token_lifecycle_hashed_in_the_store(self):
        full = self.cli_json("token", "create", "--name", "ci")
        self.assertFalse(full["readOnly"])
        secret = full["token"]
        # A full token changes state but cannot manage tokens.
        r = request(self.d.api_port, "POST", "/v1/topics", {"name": "byci"},
                    token=secret)
        self.assertEqual(r.status, 201, r)
        r = request(self.d.api_port, "GET", "/v1/tokens", token=secret)
        self.assertEqual(r.status, 403, r)
        self.assertIn("data directory", r.json["message"])
        p = self.d.cli("token", "list", env={"MDSCALE_TOKEN": secret})
        self.assertEqual(p.returncode, 1)
        # Listed without its secret, by the administrator.
        listed = self.cli_json("token", "list")["items"]
        self.assertEqual([t["id"] for t in listed], [full["id"]])
        self.assertNotIn("token", listed[0])
        self.assertNotIn(secret, self.d.cli("token", "list").stdout)
        # The store keeps the SHA-256, never the secret.
        self.assert_only_hash_stored(secret)

        rotated = self.cli_json("token", "rotate", full["id"])
        self.assertEqual(rotated["id"], full["id"])
        self.assertIn("timeRotated", rotated)
        new = rotated["token"]
        self.assertNotEqual(new, secret)
        self.assertEqual(request(self.d.api_port, "GET", "/v1/topics",
                                 token=secret).status, 401)
        self.assertEqual(request(self.d.api_port, "GET", "/v1/topics",
                                 token=new).status, 200)
        self.assert_only_hash_stored(new)

        # Tokens survive a restart; the data directory's token still works.
        self.d.stop()
        self.d.start()
        self.assertEqual(request(self.d.api_port, "GET", "/v1/topics",
                                 token=new).status, 200)
        p = self.d.cli("token", "revoke", full["id"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("revoked", p.stdout)
        self.assertEqual(request(self.d.api_port, "GET", "/v1/topics",
                                 token=new).status, 401)
        self.assertEqual(self.cli_json("token", "list")["items"], [])
        p = self.d.cli("token", "revoke", full["id"])
        self.assertEqual(p.returncode, 1)
        self.assertIn("no such token", p.stderr)
        # Bad bodies are refused with the field named.
        r = self.d.api("POST", "/v1/tokens", {"readOnly": "yes"})
        self.assertEqual((r.status, r.json["field"]), (400, "readOnly"), r)
        r = self.d.api("POST", "/v1/tokens", {"scope": "all"})
        self.assertEqual(r.status, 400, r)
        self.assertIn("unknown field", r.json["message"])

    def test_revoking_a_token_ends_its_log_stream(self):
        # A token's open stream (GET /v1/logs?follow=true) stops with the
        # token: after the revoke, not one more line reaches it, and the
        # stream ends.
        import socket
        tok = self.cli_json("token", "create", "--read-only")
        s = socket.create_connection(("127.0.0.1", self.d.api_port),
                                     timeout=30)
        self.addCleanup(s.close)
        s.sendall(("GET /v1/logs?follow=true&source=notify HTTP/1.1\r\n"
                   "Host: x\r\nAuthorization: Bearer %s\r\n\r\n"
                   % tok["token"]).encode())
        got = b""

        def read_until(text):
            nonlocal got
            while text not in got:
                chunk = s.recv(65536)
                if not chunk:
                    return False
                got += chunk
            return True
        # The stream is live: a line logged now reaches it.
        self.assertEqual(self.d.api("POST", "/v1/topics",
                                    {"name": "seen-before"}).status, 201)
        self.assertTrue(read_until(b"seen-before"), got)
        p = self.d.cli("token", "revoke", tok["id"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.d.api("POST", "/v1/topics",
                                    {"name": "after-revoke"}).status, 201)
        # The server ends the stream (the read returns at its end, not at
        # the socket's timeout) without the line logged after the revoke.
        self.assertFalse(read_until(b"after-revoke"), got)
        self.assertNotIn(b"after-revoke", got)

    def test_revoking_a_token_refuses_its_waiting_watches(self):
        # A long-poll waits for a change with the token it came with; the
        # change comes after the revoke: the answer is 401, not the list.
        import threading
        tok = self.cli_json("token", "create", "--read-only")
        answers = {}

        def watch(name, path):
            first = request(self.d.api_port, "GET", path, token=tok["token"])
            self.assertEqual(first.status, 200, first)
            sep = "&" if "?" in path else "?"
            answers[name] = request(
                self.d.api_port, "GET", "%s%swatch=true&resourceVersion=%d"
                "&timeoutSeconds=60" % (path, sep,
                                        first.json["resourceVersion"]),
                token=tok["token"], timeout=90)
        threads = [threading.Thread(target=watch, args=a) for a in
                   (("deployments", "/v1/deployments"),
                    ("topics", "/v1/topics"))]
        for t in threads:
            t.start()
        # Both wait (the daemon counts the watches only while they wait,
        # so give them a moment to be registered).
        import time
        time.sleep(1)
        p = self.d.cli("token", "revoke", tok["id"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.d.api("POST", "/v1/topics",
                                    {"name": "after-revoke"}).status, 201)
        r = self.d.api("PUT", "/v1/deployments/" + self.dep,
                       {"freeformTags": {"k": "v"}})
        self.assertIn(r.status, (200, 202), r)
        for t in threads:
            t.join(timeout=90)
        for name, r in sorted(answers.items()):
            self.assertEqual(r.status, 401, "%s: %s" % (name, r))
            self.assertNotIn(b"after-revoke", r.raw)
        self.assertEqual(len(answers), 2)

    def test_secret_environment_reaches_the_instance_only(self):
        secret = "s3cr3t-VALUE-%s" % os.getpid()
        # Somewhere the instance's user may write.
        where = tempfile.mkdtemp(prefix="mdscale-secret-")
        self.addCleanup(shutil.rmtree, where, True)
        os.chmod(where, 0o1777)
        seen = os.path.join(where, "seen-by-instance")
        r = self.d.api("POST", "/v1/deployments", {
            "displayName": "secretive", "instanceShapeName": "local.xs",
            "command": 'printf "%%s|%%s" "$API_KEY" "$PLAIN" > %s; '
                       'echo "starting with $PLAIN"; %s'
                       % (seen, model_command()),
            "environment": {"PLAIN": "visible",
                            "API_KEY": {"value": secret, "secret": True},
                            "ALSO": {"value": "plain-too",
                                     "secret": False}}})
        self.assertEqual(r.status, 201, r)
        dep = r.json["id"]
        want = {"PLAIN": "visible", "ALSO": "plain-too",
                "API_KEY": {"value": "(secret)", "secret": True}}
        self.assertEqual(r.json["environment"], want)
        self.d.wait_state(dep, "ACTIVE")
        self.assertEqual(read(seen), secret + "|visible")
        self.assertEqual(self.d.get(dep)["environment"], want)

        def nowhere(where):
            for path in ("/v1/deployments", "/v1/deployments/" + dep,
                         "/v1/workrequests", "/v1/logs", "/v1/top",
                         "/metrics"):
                r = self.d.api("GET", path)
                self.assertEqual(r.status, 200, (path, r))
                self.assertNotIn(secret.encode(), r.raw, (where, path))
            for args in (("deployment", "get", dep),
                         ("deployment", "get", dep, "-o", "yaml"),
                         ("deployment", "list", "-o", "wide"),
                         ("logs", "--deployment", dep)):
                p = self.d.cli(*args)
                self.assertEqual(p.returncode, 0, (args, p.stderr))
                self.assertNotIn(secret, p.stdout + p.stderr, args)
            self.assertIn("(secret)", self.d.cli("deployment", "get", dep,
                                                 "-o", "json").stdout)
            self.assertNotIn(secret, self.d.logs(), where)

        nowhere("running")
        # After a restart the instance still gets it (from the store), and
        # it is still shown as the placeholder.
        os.unlink(seen)
        self.d.stop()
        self.d.start()
        self.d.wait_state(dep, "ACTIVE")
        wait_for("the instance to write", lambda: read(seen))
        self.assertEqual(read(seen), secret + "|visible")
        self.assertEqual(self.d.get(dep)["environment"], want)
        nowhere("restarted")
        # Bad shapes of a variable are refused, naming it.
        for env, needle in (({"K": {"secret": True}}, "K.value"),
                            ({"K": {"value": "v", "secret": "yes"}},
                             "K.secret"),
                            ({"K": {"value": "v", "hide": True}},
                             "unknown field 'environment.K.hide'"),
                            ({"K": 3}, "string or an object")):
            r = self.d.api("POST", "/v1/deployments", {
                "displayName": "bad-env", "command": "true",
                "environment": env})
            self.assertEqual(r.status, 400, (env, r))
            self.assertEqual(r.json["field"], "environment", r)
            self.assertIn(needle, r.json["message"], r)

    def assert_only_hash_stored(self, secret):
        digest = hashlib.sha256(secret.encode()).hexdigest()
        db = sqlite3.connect(os.path.join(self.d.data_dir, "mdscale.db"))
        try:
            blob = "\n".join(
                str(row) for table, in db.execute(
                    "SELECT name FROM sqlite_master WHERE type='table'")
                for row in db.execute('SELECT * FROM "%s"' % table))
        finally:
            db.close()
        self.assertIn(digest, blob)
        self.assertNotIn(secret, blob)
        for path in glob.glob(os.path.join(self.d.data_dir, "mdscale.db*")):
            with open(path, "rb") as f:
                self.assertNotIn(secret.encode(), f.read(), path)


if __name__ == "__main__":
    unittest.main()
