"""Hardening, through the real daemon: strict request parsing on the API and
the gateway (RFC 9112), limits refused before a body is read, the data
directory's lock and file modes, slow clients that cannot lock others out,
and the gateway's replay of only what is safe to replay."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import BIN, Daemon, free_port, request, wait_for


def raw_exchange(port, data, timeout=10.0):
    """Sends raw bytes, returns (status, parsed JSON body or None) of the
    first response; the connection is closed by the server or at timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        head, _, body = got.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        try:
            return status, json.loads(body[:length])
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


if __name__ == "__main__":
    unittest.main()


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
