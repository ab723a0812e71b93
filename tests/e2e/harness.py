"""The end-to-end harness: starts the real mdscale daemon on free loopback
ports with a temporary data directory, talks to its REST API and gateway over
HTTP, and cleans up every process and cgroup it made, even when a test fails.

Paths come from the environment that scripts/test.sh sets: MDSCALE_BIN,
MODEL_SERVER, MODEL_WEIGHTS."""
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

BIN = os.environ.get("MDSCALE_BIN", "build/src/mdscale")
MODEL_SERVER = os.environ.get("MODEL_SERVER",
                              "build/examples/model-server/mdscale-model-server")
WEIGHTS = os.environ.get("MODEL_WEIGHTS",
                         "examples/model-server/digits-mlp.weights")
DIGITS = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"


_ports_given = set()


def free_port():
    """A port no socket on any address uses now, below the kernel's
    ephemeral range (32768 and up), so that no outgoing connection of this
    busy machine takes it before the daemon binds it; never the same port
    twice in one run."""
    for _ in range(1000):
        port = random.randrange(20000, 32700)
        if port in _ports_given:
            continue
        s = socket.socket()
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            continue
        finally:
            s.close()
        _ports_given.add(port)
        return port
    raise RuntimeError("no free port between 20000 and 32700")


def read_answer(s):
    """Reads one HTTP answer from socket s: its status line, its headers
    (lower-case names) and its body (its Content-Length bytes)."""
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, _, v in
                   (l.partition(":") for l in lines[1:]))
    size = int(headers.get("content-length", "0"))
    while len(body) < size:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return lines[0], headers, body[:size]


def read_jsonl(path):
    """The JSON objects of a file other processes append lines to, one
    per line; a last line not yet ended is not one yet. [] if there is no
    file."""
    try:
        with open(path, errors="replace") as f:
            return [json.loads(line) for line in f
                    if line.endswith("\n") and line.strip()]
    except FileNotFoundError:
        return []


def wait_for(what, fn, timeout=30.0, interval=0.05):
    """Polls fn until it returns a true value; fails the test after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.0fs waiting for %s (last: %r)"
                         % (timeout, what, last))


def digits_rows(n=64):
    import gzip
    rows = []
    with gzip.open(DIGITS, "rt") as f:
        for line in f:
            vals = [float(x) for x in line.strip().split(",")]
            rows.append((vals[:64], int(vals[64])))
            if len(rows) >= n:
                break
    return rows


def model_command(extra=""):
    return "exec %s --weights %s --port $PORT %s" % (
        os.path.abspath(MODEL_SERVER), os.path.abspath(WEIGHTS), extra)


class Response:
    def __init__(self, status, body, headers):
        self.status = status
        self.raw = body
        self.headers = headers
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "<%d %s>" % (self.status, self.raw[:300])


# An upstream that records the path of each request it answers (GET or
# POST) in a file, for tests that read what an instance or a pod really
# received. Usage: python3 rec.py HOST PORT LOG.
RECORDER = r'''
import http.server, sys
log = open(sys.argv[3], "a")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        log.write(self.path + "\n"); log.flush()
        self.send_response(200); self.send_header("Content-Length", "2")
        self.end_headers(); self.wfile.write(b"ok")
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.do_GET()
    def log_message(self, *a):
        pass
http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
'''


def recorder_files(folder):
    """Writes the RECORDER script and an empty log into folder, readable
    (the log writable) by the instances' unprivileged user; returns their
    paths (script, log)."""
    script = os.path.join(folder, "rec.py")
    with open(script, "w") as f:
        f.write(RECORDER)
    log = os.path.join(folder, "seen")
    open(log, "w").close()
    os.chmod(script, 0o644)
    os.chmod(log, 0o666)
    return script, log


class Burst:
    """n requests sent at once, each from a thread of its own: send(k)
    sends the k-th and returns what the test keeps of it (a status, say).
    wait() returns those, an OSError's repr where send raised one."""

    def __init__(self, n, send):
        self.results = [None] * n

        def one(k):
            try:
                self.results[k] = send(k)
            except OSError as e:
                self.results[k] = repr(e)
        self.threads = [threading.Thread(target=one, args=(k,))
                        for k in range(n)]
        for t in self.threads:
            t.start()

    def wait(self):
        for t in self.threads:
            t.join()
        return self.results


def request(port, method, path, body=None, token=None, headers=None,
            timeout=30, context=None):
    """One request; over TLS when context (an ssl.SSLContext) is given."""
    if context is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port,
                                           timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port,
                                          timeout=timeout)
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = "Bearer " + token
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        hdrs.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        return Response(r.status, r.read(), dict(r.getheaders()))
    finally:
        conn.close()


INSTANCE_USER = "mdscale"


def ensure_instance_user():
    """Run as root, the daemon starts instances, functions and COMMAND
    subscriptions as the user "mdscale" (its default runAsUser) when told
    to, rather than as uids of their own, and refuses to start without it:
    the setup step (make run, the Debian package) creates it, and so does
    this."""
    if os.geteuid() != 0:
        return
    if subprocess.run(["getent", "passwd", INSTANCE_USER],
                      capture_output=True).returncode == 0:
        return
    subprocess.run(["adduser", "--system", "--group", "--no-create-home",
                    "--home", "/nonexistent", "--quiet", INSTANCE_USER],
                   check=True)


class Daemon:
    """One mdscale daemon. Reuse data_dir to restart it on the same state.
    binary and log_level default to the tests' (MDSCALE_BIN, debug); the
    benchmarks (bench/mdbench.py) pass their own."""

    def __init__(self, data_dir=None, config=None, env=None, binary=None,
                 log_level="debug", extra_args=None, pass_fds=()):
        self.binary = binary or BIN
        self.extra_args = list(extra_args or [])
        self.log_level = log_level
        self.owns_dir = data_dir is None
        self.env = env
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="mdscale-e2e-")
        self.api_port = free_port()
        self.gw_port = free_port()
        self.config = config
        self.proc = None
        self.log_path = os.path.join(self.data_dir, "daemon.log")
        self.token = None
        # ssl.SSLContext objects when the API or the gateway serve TLS.
        self.api_tls = None
        self.gw_tls = None
        self.pass_fds = tuple(pass_fds)  # descriptors the daemon inherits

    def start(self):
        ensure_instance_user()
        args = [self.binary, "serve",
                "--listen", "127.0.0.1:%d" % self.api_port,
                "--gateway", "127.0.0.1:%d" % self.gw_port,
                "--data", self.data_dir, "--log-level", self.log_level]
        if self.config is not None:
            path = os.path.join(self.data_dir, "config.json")
            with open(path, "w") as f:
                json.dump(self.config, f)
            args += ["--config", path]
        args += self.extra_args
        self.log = open(self.log_path, "ab")
        env = None
        if self.env is not None:
            env = dict(os.environ)
            env.update(self.env)
        self.proc = subprocess.Popen(args, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env,
                                     pass_fds=self.pass_fds)
        wait_for("the daemon's health", self._healthy, timeout=30)
        with open(os.path.join(self.data_dir, "token")) as f:
            self.token = f.read().strip()
        return self

    def _healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError("daemon exited with %s:\n%s"
                                 % (self.proc.returncode, self.logs()))
        try:
            return request(self.api_port, "GET", "/v1/health",
                           timeout=2, context=self.api_tls).status == 200
        except OSError:
            return False

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-6000:]
        except OSError:
            return ""

    # -- the API --
    def api(self, method, path, body=None, auth=True, **kw):
        kw.setdefault("context", self.api_tls)
        return request(self.api_port, method, path, body,
                       token=self.token if auth else None, **kw)

    def gw(self, method, path, body=None, **kw):
        kw.setdefault("context", self.gw_tls)
        return request(self.gw_port, method, path, body, **kw)

    def create(self, **spec):
        spec.setdefault("command", model_command())
        spec.setdefault("instanceShapeName", "local.xs")
        spec.setdefault("instanceCount", 1)
        spec.setdefault("healthPath", "/health")
        r = self.api("POST", "/v1/deployments", spec)
        assert r.status == 201, r
        return r.json

    def get(self, dep_id):
        r = self.api("GET", "/v1/deployments/" + dep_id)
        assert r.status == 200, r
        return r.json

    def wait_state(self, dep_id, state, timeout=60):
        def check():
            d = self.get(dep_id)
            if d["lifecycleState"] == "FAILED" and state != "FAILED":
                raise AssertionError("deployment failed: %s"
                                     % d["lifecycleDetails"])
            return d if d["lifecycleState"] == state else None
        return wait_for("deployment %s %s" % (dep_id, state), check,
                        timeout=timeout)

    def update(self, dep_id, **spec):
        r = self.api("PUT", "/v1/deployments/" + dep_id, spec)
        assert r.status == 202, r
        return r.json

    def delete(self, dep_id):
        """Deletes a deployment and waits until it is gone."""
        r = self.api("DELETE", "/v1/deployments/" + dep_id)
        assert r.status == 202, r
        return self.wait_wr(r.json["id"])

    def wait_wr(self, wr_id, timeout=90):
        def check():
            w = self.api("GET", "/v1/workrequests/" + wr_id).json
            return w if w["status"] in ("SUCCEEDED", "FAILED") else None
        return wait_for("work request " + wr_id, check, timeout=timeout)

    def cli(self, *args, env=None, input=None):
        e = dict(os.environ)
        e["MDSCALE_URL"] = "http://127.0.0.1:%d" % self.api_port
        e["MDSCALE_DATA"] = self.data_dir
        e.pop("MDSCALE_TOKEN", None)
        e.update(env or {})
        return subprocess.run([self.binary] + list(args), env=e, input=input,
                              capture_output=True, text=True, timeout=120)

    # -- the end --
    def instance_pids(self):
        pids = []
        try:
            r = self.api("GET", "/v1/deployments", timeout=5)
            for d in r.json["items"]:
                pids += [i["pid"] for i in d["instances"] if i["pid"]]
        except (OSError, ValueError, TypeError, KeyError):
            pass
        return pids

    def kill(self):
        """SIGKILL: the daemon dies, its instances live on."""
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.log.close()

    def stop(self, timeout=30):
        """SIGTERM: the daemon stops its instances and exits 0."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc

    def sanitizer_reports(self):
        """Sanitizer reports in the daemon's and the instances' logs."""
        found = []
        logs = [self.log_path]
        inst_dir = os.path.join(self.data_dir, "instances")
        if os.path.isdir(inst_dir):
            logs += [os.path.join(inst_dir, n) for n in os.listdir(inst_dir)]
        for path in logs:
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                           "WARNING: ThreadSanitizer",
                           "runtime error:"):
                if marker in text:
                    i = text.index(marker)
                    found.append("%s: %s" % (path, text[max(0, i - 200):i + 2500]))
        return found

    def cleanup(self):
        pids = self.instance_pids() if self.proc and self.proc.poll() is None else []
        self.stop()
        reports = self.sanitizer_reports()
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        sweep_cgroups(self.data_dir)
        if self.owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if reports:
            raise AssertionError("sanitizer reports:\n" + "\n".join(reports))


def sweep_cgroups(data_dir):
    """Kills and removes the cgroups of this data dir's instances, if any
    are left (the daemon removes them itself; this is the test's guard)."""
    ids = set()
    inst_dir = os.path.join(data_dir, "instances")
    if os.path.isdir(inst_dir):
        for n in os.listdir(inst_dir):
            for ext in (".out.log", ".err.log", ".log"):
                if n.endswith(ext):
                    ids.add(n[:-len(ext)])
                    break
    for ctl in ("cpu", "cpuacct", "memory", "unified", ""):
        base = os.path.join("/sys/fs/cgroup", ctl, "mdscale")
        for i in ids:
            path = os.path.join(base, i)
            if not os.path.isdir(path):
                continue
            try:
                with open(os.path.join(path, "cgroup.procs")) as f:
                    for pid in f.read().split():
                        os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
            for _ in range(50):
                try:
                    os.rmdir(path)
                    break
                except OSError:
                    time.sleep(0.1)


class Load:
    """A client that keeps sending predictions through the gateway from a few
    threads until stopped, counting every failure with its cause."""

    def __init__(self, port, path, threads=4, rows=None):
        self.port = port
        self.path = path
        self.rows = rows or digits_rows(32)
        self.ok = 0
        self.failures = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(k,),
                                         daemon=True) for k in range(threads)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=30)

    def _run(self, k):
        conn = None
        i = k
        while not self.stopping.is_set():
            row, label = self.rows[i % len(self.rows)]
            i += 1
            body = json.dumps({"instances": [row]})
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                      timeout=30)
                conn.request("POST", self.path, body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                if r.status != 200:
                    raise RuntimeError("HTTP %d %s" % (r.status, data[:200]))
                json.loads(data)["predictions"][0]
                with self.lock:
                    self.ok += 1
            except Exception as e:  # every failure is counted, none hidden
                with self.lock:
                    self.failures.append("%s: %s" % (type(e).__name__, e))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
