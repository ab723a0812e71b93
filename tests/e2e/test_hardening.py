"""Hardening, through the real daemon: strict request parsing on the API and
the gateway (RFC 9112), limits refused before a body is read, the data
directory's lock and file modes, slow clients that cannot lock others out,
and the gateway's replay of only what is safe to replay."""
import json
import os
import shutil
import socket
import subprocess
import selectors
import tempfile
import threading
import time
import unittest

from harness import (BIN, Daemon, digits_rows, free_port, read_answer,
                     request, wait_for)


def raw_exchange(port, data, timeout=10.0):
    """Sends raw bytes, returns (status, parsed JSON body or None) of the
    first response; the connection is closed by the server or at timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        line, _, body = read_answer(s)
        status = int(line.split(" ", 2)[1])
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None
    finally:
        s.close()


class StrictParsingTest(unittest.TestCase):
    """Both servers refuse what RFC 9112 says to refuse, with a JSON body."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon().start()

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def both(self, head, status, text):
        for name, port in (("api", self.d.api_port),
                           ("gateway", self.d.gw_port)):
            st, body = raw_exchange(port, head)
            self.assertEqual(st, status, "%s: %r" % (name, body))
            self.assertIsNotNone(body, name)
            self.assertIn(text, json.dumps(body), name)

    def test_whitespace_before_a_colon_is_refused(self):
        self.both(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n"
                  b"X-Thing : 1\r\n\r\n", 400, "colon")

    def test_obs_fold_is_refused(self):
        self.both(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Thing: a\r\n"
                  b" b\r\n\r\n", 400, "folding")

    def test_too_many_header_lines_are_refused(self):
        lines = b"".join(b"X-H%d: v\r\n" % i for i in range(101))
        self.both(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" + lines +
                  b"\r\n", 431, "too many header lines")
        # One hundred is still fine.
        lines = b"".join(b"X-H%d: v\r\n" % i for i in range(98))
        st, _ = raw_exchange(self.d.api_port,
                             b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" +
                             lines + b"Connection: close\r\n\r\n")
        self.assertEqual(st, 200)

    def test_a_declared_body_over_the_cap_is_refused_before_it_is_read(self):
        # Only the head is sent: the answer must come without the body.
        st, body = raw_exchange(
            self.d.api_port,
            b"POST /v1/deployments HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + self.d.token.encode() + b"\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: 5000000\r\n\r\n", timeout=10)
        self.assertEqual(st, 413, body)
        self.assertEqual(body["code"], "PayloadTooLarge")

    def test_a_body_with_a_nul_byte_is_refused(self):
        before = self.d.api("GET", "/v1/topics").json
        payload = b'{"name": "t1"}\x00{"name": "t2", "x": 1}'
        st, body = raw_exchange(
            self.d.api_port,
            b"POST /v1/topics HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + self.d.token.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(payload) + payload)
        self.assertEqual(st, 400, body)
        self.assertIn("NUL", body["message"])
        self.assertEqual(self.d.api("GET", "/v1/topics").json, before)


class DataDirectoryTest(unittest.TestCase):
    """One daemon per data directory, and a directory nobody else reads."""

    def test_a_second_daemon_on_the_same_directory_exits_naming_the_first(self):
        first = Daemon().start()
        try:
            second = Daemon(data_dir=first.data_dir)
            args = [BIN, "serve", "--listen", "127.0.0.1:%d" % second.api_port,
                    "--gateway", "127.0.0.1:%d" % second.gw_port,
                    "--data", first.data_dir]
            p = subprocess.run(args, capture_output=True, text=True,
                               timeout=30)
            self.assertNotEqual(p.returncode, 0, p.stderr)
            self.assertIn("pid %d" % first.proc.pid, p.stderr)
            self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
            # The first one goes on serving, its lock still held.
            self.assertEqual(first.api("GET", "/v1/health").status, 200)
            with open(os.path.join(first.data_dir, "lock")) as f:
                self.assertEqual(f.read().strip(), str(first.proc.pid))
            # Once it is gone (even killed), the directory is free again.
            first.kill()
            first.start()
            self.assertEqual(first.api("GET", "/v1/health").status, 200)
        finally:
            first.cleanup()

    def test_files_with_secrets_are_private(self):
        mode = lambda p: os.stat(p).st_mode & 0o777
        # A data directory that does not exist yet is created 0700, with
        # its missing parents.
        parent = tempfile.mkdtemp(prefix="mdscale-e2e-")
        data = os.path.join(parent, "a", "data")
        port = free_port()
        p = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:%d" % port,
                              "--gateway", "127.0.0.1:%d" % free_port(),
                              "--data", data], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            wait_for("the daemon's health", lambda: self.healthy(port))
            self.assertEqual(mode(data), 0o700)
            self.assertEqual(mode(os.path.join(parent, "a")), 0o700)
            for name in ("mdscale.db", "token", "lock"):
                self.assertEqual(mode(os.path.join(data, name)), 0o600, name)
            for root, dirs, files in os.walk(data):
                for name in dirs + files:
                    path = os.path.join(root, name)
                    self.assertEqual(mode(path) & 0o077, 0, path)
        finally:
            p.terminate()
            p.wait(timeout=30)
            shutil.rmtree(parent, ignore_errors=True)

    @staticmethod
    def healthy(port):
        try:
            return request(port, "GET", "/v1/health", timeout=2).status == 200
        except OSError:
            return False

    def test_a_directory_others_can_read_is_refused(self):
        d = Daemon()
        try:
            os.chmod(d.data_dir, 0o755)
            args = [BIN, "serve", "--listen", "127.0.0.1:%d" % d.api_port,
                    "--gateway", "127.0.0.1:%d" % d.gw_port,
                    "--data", d.data_dir]
            p = subprocess.run(args, capture_output=True, text=True,
                               timeout=30)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("chmod 700 %s" % d.data_dir, p.stderr)
            self.assertFalse(os.path.exists(os.path.join(d.data_dir,
                                                         "mdscale.db")))
            # Fixed as told, it starts.
            os.chmod(d.data_dir, 0o700)
            d.start()
            self.assertEqual(d.api("GET", "/v1/health").status, 200)
        finally:
            d.cleanup()


class Dripper:
    """n connections to port, from 20 loopback addresses (127.0.0.2-21),
    each sending a request head one byte a second, reconnecting when the
    server closes it, as an attacker would. Counts the server's closes."""

    HEAD = (b"POST /v1/topics HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\n" + b"X-Slow: " + b"a" * 4000)

    def __init__(self, port, n):
        self.port, self.n = port, n
        self.socks = {}
        self.cut = 0
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def open_one(self, i):
        s = socket.socket()
        s.setblocking(False)
        s.bind(("127.0.0.%d" % (2 + i % 20), 0))
        try:
            s.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        self.socks[i] = (s, 0)

    def __enter__(self):
        for i in range(self.n):
            self.open_one(i)
        self.thread.start()
        return self

    def run(self):
        while not self.stop_ev.wait(1.0):
            for i in range(self.n):
                s, off = self.socks[i]
                try:
                    s.send(self.HEAD[off % len(self.HEAD):][:1])
                    self.socks[i] = (s, off + 1)
                    if s.recv(4096, socket.MSG_DONTWAIT) == b"":
                        raise ConnectionResetError
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    self.cut += 1
                    s.close()
                    self.open_one(i)

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.thread.join(timeout=30)
        for s, _ in self.socks.values():
            s.close()


class SlowClientsTest(unittest.TestCase):
    """Slow clients cannot lock others out of the API or the gateway."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon().start()
        dep = cls.d.create(displayName="digits", instanceCount=1)
        cls.dep = cls.d.wait_state(dep["id"], "ACTIVE")

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def test_ordinary_requests_are_served_among_a_thousand_drippers(self):
        rows = digits_rows(4)
        body = {"instances": [r for r, _ in rows]}
        env = {k: v for k, v in os.environ.items()
               if k not in ("MDSCALE_URL", "MDSCALE_TOKEN")}
        env["MDSCALE_DATA"] = self.d.data_dir
        with Dripper(self.d.api_port, 1100) as api_drip, \
                Dripper(self.d.gw_port, 1000) as gw_drip:
            time.sleep(2)
            served = 0
            deadline = time.monotonic() + 16  # past the 10 s head deadline
            while time.monotonic() < deadline:
                r = request(self.d.api_port, "GET", "/v1/health", timeout=5)
                self.assertEqual(r.status, 200, r)
                r = self.d.api("POST", "/v1/topics",
                               {"name": "t%d" % served}, timeout=5)
                self.assertEqual(r.status, 201, r)
                r = self.d.gw("POST", "/digits/predict", body, timeout=5)
                self.assertEqual(r.status, 200, r)
                # The administrator's own way in: the CLI over the data
                # directory's Unix socket, with no URL given.
                p = subprocess.run([BIN, "deployment", "list"], env=env,
                                   capture_output=True, text=True,
                                   timeout=10)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertIn("digits", p.stdout)
                served += 1
                time.sleep(0.5)
            print("\n  served %d rounds; the server cut %d API and %d "
                  "gateway drippers" % (served, api_drip.cut, gw_drip.cut))
            self.assertGreater(served, 5)
            # The drippers were there, and were cut: by the cap and the
            # eviction on the API, by the head deadline on both.
            self.assertGreater(api_drip.cut, 100)
            self.assertGreater(gw_drip.cut, 100)

    def drip_until_answered(self, port, first, step, limit=40):
        """Sends first, then step every half second, until the server
        answers; returns (status, seconds)."""
        s = socket.create_connection(("127.0.0.1", port))
        t0 = time.monotonic()
        try:
            s.sendall(first)
            s.settimeout(0.5)
            got = b""
            while time.monotonic() - t0 < limit:
                try:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                    if b"\r\n\r\n" in got:
                        break
                except socket.timeout:
                    try:
                        s.send(step)
                    except OSError:
                        break
            self.assertTrue(got, "the server never answered")
            return int(got.split(b" ")[1]), time.monotonic() - t0
        finally:
            s.close()

    def test_a_trickling_head_gets_408_at_its_deadline(self):
        for port in (self.d.api_port, self.d.gw_port):
            status, secs = self.drip_until_answered(
                port, b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-A: ", b"a")
            self.assertEqual(status, 408)
            self.assertLess(secs, 30)

    def test_a_trickling_body_gets_408(self):
        head = (b"POST /v1/topics HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: Bearer " + self.d.token.encode() +
                b"\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n")
        status, secs = self.drip_until_answered(self.d.api_port, head, b" ")
        self.assertEqual(status, 408)
        self.assertLess(secs, 30)
        head = head.replace(b"/v1/topics", b"/digits/predict")
        status, secs = self.drip_until_answered(self.d.gw_port, head, b" ")
        self.assertEqual(status, 408)
        self.assertLess(secs, 30)

    def test_one_address_holds_a_bounded_number_of_api_connections(self):
        socks = []
        try:
            for _ in range(100):
                s = socket.socket()
                s.bind(("127.0.0.99", 0))
                s.connect(("127.0.0.1", self.d.api_port))
                socks.append(s)
            time.sleep(0.5)
            closed = 0
            for s in socks:
                s.setblocking(False)
                try:
                    if s.recv(1) == b"":
                        closed += 1
                except BlockingIOError:
                    pass
                except OSError:
                    closed += 1
            self.assertEqual(closed, 100 - 64)
        finally:
            for s in socks:
                s.close()


# An instance whose POST handler runs (it appends a line to a file), then
# drops the connection before answering, as a crashing worker would: the
# worst case for a replaying proxy.
DYING_SERVER = r'''
import http.server, socket, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(sys.argv[2], "a") as f:
            f.write("ran\n")
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''


class ReplayTest(unittest.TestCase):
    """A POST that reached an instance that then died is not run again
    elsewhere, unless the deployment says its handlers may run twice."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon().start()
        # The instances run as the unprivileged user: they write where it
        # may, not in the daemon's private data directory.
        cls.tmp = tempfile.mkdtemp(prefix="mdscale-replay-")
        os.chmod(cls.tmp, 0o1777)

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def runs_of_one_post(self, name, **spec):
        ran = os.path.join(self.tmp, name + ".ran")
        dep = self.d.create(displayName=name, instanceCount=2,
                            command=["python3", "-c", DYING_SERVER, "$PORT",
                                     ran], **spec)
        self.d.wait_state(dep["id"], "ACTIVE")
        # One kept-alive client connection warms a pooled connection to
        # each instance, so that the POST goes out on a reused one.
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.d.gw_port,
                                          timeout=30)
        try:
            for _ in range(4):
                conn.request("GET", "/%s/ping" % name)
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
            conn.request("POST", "/%s/count" % name, body=b"{}")
            r = conn.getresponse()
            status, body = r.status, r.read()
        finally:
            conn.close()
        time.sleep(0.5)
        with open(ran) as f:
            return status, body, f.read().count("ran")

    def test_a_post_is_not_replayed_by_default(self):
        status, body, runs = self.runs_of_one_post("once")
        self.assertEqual(runs, 1, body)
        self.assertEqual(status, 502, body)
        self.assertIn(b"not replayed", body)
        dep = self.d.api("GET", "/v1/deployments/once").json
        self.assertIs(dep["replayNonIdempotent"], False)

    def test_a_deployment_may_allow_every_replay(self):
        status, body, runs = self.runs_of_one_post(
            "twice", replayNonIdempotent=True)
        self.assertEqual(runs, 2, body)
        dep = self.d.api("GET", "/v1/deployments/twice").json
        self.assertIs(dep["replayNonIdempotent"], True)

    def test_the_setting_is_a_boolean(self):
        r = self.d.api("POST", "/v1/deployments",
                       {"displayName": "bad", "command": "true",
                        "replayNonIdempotent": "yes"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["field"], "replayNonIdempotent")


if __name__ == "__main__":
    unittest.main()
