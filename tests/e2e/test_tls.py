"""TLS for the API and the gateway, with certificates this test makes with
the openssl command: requests over TLS to both servers (Python's ssl, curl
and mdscale's own CLI), SIGHUP swapping the certificate (the fingerprint a
new connection sees changes; a bad new one keeps the old), a bad
certificate at start, and plain HTTP on a non-loopback address refused
unless --insecure-listen says it is meant."""
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import BIN, Daemon, digits_rows, free_port, wait_for


def make_cert(dirname, name):
    """A self-signed certificate for 127.0.0.1 and localhost."""
    cert = os.path.join(dirname, name + ".crt")
    key = os.path.join(dirname, name + ".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
         "-subj", "/CN=mdscale-test-" + name, "-keyout", key, "-out", cert,
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True)
    der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return {"certFile": cert, "keyFile": key,
            "sha256": hashlib.sha256(der).hexdigest()}


def context(cert):
    return ssl.create_default_context(cafile=cert["certFile"])


def served_fingerprint(port):
    """The SHA-256 of the certificate a new TLS connection is shown."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s) as t:
            return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


def tls_conf(cert):
    return {"certFile": cert["certFile"], "keyFile": cert["keyFile"]}


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mdscale-tls-")
        cls.a = make_cert(cls.dir, "a")
        cls.b = make_cert(cls.dir, "b")
        cls.garbage = os.path.join(cls.dir, "garbage.crt")
        with open(cls.garbage, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n"
                    "-----END CERTIFICATE-----\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def daemon(self, cert, extra=None, **kw):
        config = {"tls": tls_conf(cert), "gatewayTls": tls_conf(cert)}
        config.update(extra or {})
        d = Daemon(config=config, **kw)
        d.api_tls = context(cert)
        d.gw_tls = context(cert)
        self.addCleanup(d.cleanup)
        return d.start()

    def test_api_and_gateway_serve_tls(self):
        d = self.daemon(self.a)
        self.assertEqual(d.api("GET", "/v1/health").status, 200)
        # Python's ssl checked the chain and the name against the test's
        # certificate; curl does the same.
        out = subprocess.run(
            ["curl", "-sS", "--cacert", self.a["certFile"],
             "https://127.0.0.1:%d/v1/health" % d.api_port],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["status"], "ok")
        # A client that does not trust the certificate is refused.
        with self.assertRaises(ssl.SSLError):
            d.api("GET", "/v1/health", context=ssl.create_default_context())
        # Plain HTTP to a TLS port gets no HTTP answer.
        with self.assertRaises((http.client.HTTPException, OSError)):
            d.api("GET", "/v1/health", context=None, timeout=5)
        # A metrics query is answered across turns, its body written
        # apart from its head: whole over TLS too.
        t = int(time.time() * 1000)
        r = d.api("POST", "/v1/metrics", {"metricData": [
            {"namespace": "e2e_tls", "name": "M",
             "dimensions": {"k": "v%03d" % i, "pad": "x" * 200},
             "datapoints": [{"timestamp": t, "value": i}]}
            for i in range(50)]})
        self.assertEqual(r.json["failedMetricsCount"], 0, r)
        r = d.api("POST", "/v1/metrics/query", {
            "query": "M[1m].max()", "namespace": "e2e_tls",
            "startTime": t - 59000, "endTime": t + 1000})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sorted(it["aggregatedDatapoints"][0]["value"]
                                for it in r.json["items"]),
                         [float(i) for i in range(50)])

        dep = d.create(displayName="digits", instanceCount=1)
        dep = d.wait_state(dep["id"], "ACTIVE")
        rows = digits_rows(20)
        body = {"instances": [r for r, _ in rows]}
        for _ in range(3):  # several requests, one connection each
            r = d.gw("POST", "/digits/predict", body)
            self.assertEqual(r.status, 200, r)
            right = sum(p == y for p, (_, y) in
                        zip(r.json["predictions"], rows))
            self.assertGreaterEqual(right, 18)
        # Keep-alive and a body larger than one TLS record, through curl.
        big = json.dumps({"instances": [r for r, _ in digits_rows(64)]},
                         indent=12)
        self.assertGreater(len(big), 40000)
        big_path = os.path.join(d.data_dir, "big.json")
        with open(big_path, "w") as f:
            f.write(big)
        out = subprocess.run(
            ["curl", "-sS", "--cacert", self.a["certFile"],
             "-H", "Content-Type: application/json",
             "--data-binary", "@" + big_path,
             "https://127.0.0.1:%d/digits/predict" % d.gw_port,
             "--next", "--cacert", self.a["certFile"],
             "https://127.0.0.1:%d/digits/health" % d.gw_port],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        first, end = json.JSONDecoder().raw_decode(out.stdout)
        self.assertEqual(len(first.get("predictions", [])), 64, first)
        self.assertEqual(json.loads(out.stdout[end:])["status"], "ok")
        # The deployment's endpoint says https.
        self.assertTrue(d.get(dep["id"])["endpoint"].startswith(
            "https://127.0.0.1:%d/" % d.gw_port), d.get(dep["id"]))

    def test_gateway_tls_on_two_threads(self):
        # One connection per request: the kernel spreads them over both
        # loops, which share the certificate.
        d = self.daemon(self.a, extra={"gatewayThreads": 2})
        dep = d.create(displayName="digits", instanceCount=1)
        d.wait_state(dep["id"], "ACTIVE")
        rows = digits_rows(4)
        body = {"instances": [r for r, _ in rows]}
        statuses = [d.gw("POST", "/digits/predict", body).status
                    for _ in range(16)]
        self.assertEqual(statuses, [200] * 16)

    def test_cli_over_https(self):
        d = self.daemon(self.a)
        url = "https://127.0.0.1:%d" % d.api_port
        r = d.cli("--url", url, "--cacert", self.a["certFile"],
                  "deployment", "list", "-o", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["items"], [])
        r = d.cli("--url", url, "deployment", "list", "-o", "json",
                  env={"MDSCALE_CACERT": self.a["certFile"]})
        self.assertEqual(r.returncode, 0, r.stderr)
        # Trusting another certificate: one readable line, non-zero.
        r = d.cli("--url", url, "--cacert", self.b["certFile"],
                  "deployment", "list")
        self.assertEqual(r.returncode, 3, r.stderr)  # cannot be reached
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("certificate", r.stderr.lower())

    def test_sighup_swaps_the_certificate(self):
        d = self.daemon(self.a)
        for port in (d.api_port, d.gw_port):
            self.assertEqual(served_fingerprint(port), self.a["sha256"])
        path = os.path.join(d.data_dir, "config.json")
        with open(path, "w") as f:
            json.dump({"tls": tls_conf(self.b),
                       "gatewayTls": tls_conf(self.b)}, f)
        d.proc.send_signal(signal.SIGHUP)
        for port in (d.api_port, d.gw_port):
            wait_for("the new certificate on %d" % port,
                     lambda: served_fingerprint(port) == self.b["sha256"])
        d.api_tls = context(self.b)
        self.assertEqual(d.api("GET", "/v1/health").status, 200)
        # A bad new certificate keeps the one in use, and the log says why.
        with open(path, "w") as f:
            json.dump({"tls": {"certFile": self.garbage,
                               "keyFile": self.b["keyFile"]},
                       "gatewayTls": {"certFile": self.a["certFile"],
                                      "keyFile": self.b["keyFile"]}}, f)
        d.proc.send_signal(signal.SIGHUP)
        wait_for("the refusal in the log",
                 lambda: d.logs().count("was not reloaded") >= 2)
        self.assertIn("garbage.crt: not a PEM certificate", d.logs())
        self.assertIn("does not match", d.logs())
        for port in (d.api_port, d.gw_port):
            self.assertEqual(served_fingerprint(port), self.b["sha256"])
        self.assertEqual(d.api("GET", "/v1/health").status, 200)

    def run_serve(self, *args, config=None):
        data = tempfile.mkdtemp(prefix="mdscale-tls-data-")
        self.addCleanup(shutil.rmtree, data, True)
        argv = [BIN, "serve", "--data", data]
        if config is not None:
            path = os.path.join(data, "config.json")
            with open(path, "w") as f:
                json.dump(config, f)
            argv += ["--config", path]
        return subprocess.run(argv + list(args), capture_output=True,
                              text=True, timeout=30)

    def test_bad_certificate_at_start_is_a_clear_error(self):
        api, gw = free_port(), free_port()
        addr = ["--listen", "127.0.0.1:%d" % api,
                "--gateway", "127.0.0.1:%d" % gw]
        cases = [
            ({"tls": {"certFile": self.garbage,
                      "keyFile": self.a["keyFile"]}},
             "mdscale: tls: %s: not a PEM certificate" % self.garbage),
            ({"gatewayTls": {"certFile": self.a["certFile"],
                             "keyFile": self.b["keyFile"]}},
             "mdscale: gatewayTls: %s: the key does not match the "
             "certificate in %s" % (self.b["keyFile"], self.a["certFile"])),
            ({"tls": {"certFile": os.path.join(self.dir, "missing.crt"),
                      "keyFile": self.a["keyFile"]}},
             "missing.crt: cannot read the certificate: No such file"),
            ({"tls": {"certFile": self.a["certFile"]}},
             "tls.keyFile is required"),
        ]
        for config, want in cases:
            r = self.run_serve(*addr, config=config)
            self.assertEqual(r.returncode, 1, (config, r.stderr))
            self.assertIn(want, r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1,
                             r.stderr)
        # Nothing listened.
        for port in (api, gw):
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=2)

    def test_non_loopback_without_tls_is_refused(self):
        api, gw = free_port(), free_port()
        for args, what in (
                (["--listen", "0.0.0.0:%d" % api,
                  "--gateway", "127.0.0.1:%d" % gw], "the API"),
                (["--listen", "127.0.0.1:%d" % api,
                  "--gateway", "0.0.0.0:%d" % gw], "the gateway"),
                (["--listen", "[::]:%d" % api,
                  "--gateway", "127.0.0.1:%d" % gw], "the API")):
            r = self.run_serve(*args)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("%s would listen on" % what, r.stderr)
            self.assertIn("--insecure-listen", r.stderr)
        for port in (api, gw):
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=2)

    def test_non_loopback_accepted_with_the_flag_and_a_warning(self):
        d = Daemon()
        d.extra_args = ["--listen", "0.0.0.0:%d" % d.api_port,
                        "--insecure-listen"]
        self.addCleanup(d.cleanup)
        d.start()
        self.assertEqual(d.api("GET", "/v1/health").status, 200)
        self.assertEqual(d.stop(), 0)
        self.assertEqual(d.logs().count("without TLS (--insecure-listen)"),
                         1, d.logs())
        # At each start.
        d.start()
        self.assertEqual(d.stop(), 0)
        self.assertEqual(d.logs().count("without TLS (--insecure-listen)"),
                         2, d.logs())

    def test_non_loopback_with_tls_needs_no_flag(self):
        d = Daemon(config={"tls": tls_conf(self.a),
                           "gatewayTls": tls_conf(self.a)})
        d.api_tls = context(self.a)
        d.extra_args = ["--listen", "0.0.0.0:%d" % d.api_port,
                        "--gateway", "0.0.0.0:%d" % d.gw_port]
        self.addCleanup(d.cleanup)
        d.start()
        self.assertEqual(d.api("GET", "/v1/health").status, 200)
        self.assertNotIn("--insecure-listen", d.logs())


if __name__ == "__main__":
    unittest.main()
