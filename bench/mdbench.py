"""Shared helpers of the Python benchmarks (zero_downtime.py, footprint.py,
timeline.py): a daemon on free ports in a temporary data directory, API
calls, the example model server's command and request body, and a short
capacity measurement with `mdscale load`."""
import gzip
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"
RESULTS = os.environ.get("BENCH_RESULTS", os.path.join(TOP, "bench", "results"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def call(port, method, path, body=None, token=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None,
                     headers)
        r = conn.getresponse()
        data = r.read()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data
        return r.status, parsed
    finally:
        conn.close()


def machine():
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {"platform": platform.platform(), "cpus": os.cpu_count(),
            "cpu_model": model or platform.machine(), "memory_mb": mem,
            "shared": True}


def machine_line():
    m = machine()
    return "%s, %d CPUs (%s), %d MiB RAM; shared with other users" % (
        m["platform"], m["cpus"], m["cpu_model"], m["memory_mb"])


class Daemon:
    """mdscale serve on free ports; data in DATA (a new temporary directory
    unless given); config from the dict CONFIG if given."""

    def __init__(self, build, data=None, config=None):
        self.build = build
        self.own_data = data is None
        self.data = data or tempfile.mkdtemp(prefix="mdscale-bench-")
        self.config = config
        self.proc = None
        self.token = None

    def start(self, timeout=60):
        self.api, self.gw = free_port(), free_port()
        argv = [os.path.join(self.build, "src", "mdscale"), "serve",
                "--listen", "127.0.0.1:%d" % self.api,
                "--gateway", "127.0.0.1:%d" % self.gw, "--data", self.data]
        if self.config is not None:
            path = os.path.join(self.data, "bench-config.json")
            with open(path, "w") as f:
                json.dump(self.config, f)
            argv += ["--config", path]
        self.log = open(os.path.join(self.data, "daemon.log"), "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("daemon exited %s; see %s/daemon.log" %
                                   (self.proc.returncode, self.data))
            try:
                if call(self.api, "GET", "/v1/health", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("daemon not healthy after %d s" % timeout)
            time.sleep(0.005)
        self.startup_seconds = time.monotonic() - t0
        self.token = open(os.path.join(self.data, "token")).read().strip()
        return self.startup_seconds

    def __call__(self, method, path, body=None, timeout=30):
        return call(self.api, method, path, body, self.token, timeout)

    def rss_kb(self):
        for line in open("/proc/%d/status" % self.proc.pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return None

    def stop(self, timeout=60):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def cleanup(self):
        self.stop()
        if self.own_data:
            shutil.rmtree(self.data, ignore_errors=True)

    def wait_deployment(self, dep_id, states=("ACTIVE",), timeout=300):
        t0 = time.monotonic()
        while True:
            st, d = self("GET", "/v1/deployments/" + dep_id)
            if st == 200 and d["lifecycleState"] in states:
                return d
            if st == 200 and d["lifecycleState"] == "FAILED":
                raise RuntimeError("deployment FAILED: %s" % d.get("lifecycleDetails"))
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("deployment %s not %s after %d s" % (dep_id, states, timeout))
            time.sleep(0.1)

    def wait_workrequest(self, wr_id, timeout=600):
        t0 = time.monotonic()
        while True:
            st, w = self("GET", "/v1/workrequests/" + wr_id)
            if st == 200 and w["status"] in ("SUCCEEDED", "FAILED", "CANCELED"):
                return w
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("work request %s not done after %d s" % (wr_id, timeout))
            time.sleep(0.1)


def model_command(build):
    """The example model server with its response cache off: every request
    repeats the same digit, which the cache would answer without the model."""
    return "exec %s --weights %s --port $PORT --cache-entries 0" % (
        os.path.join(build, "examples", "model-server", "mdscale-model-server"),
        os.path.join(TOP, "examples", "model-server", "digits-mlp.weights"))


def model_body(directory):
    row = gzip.open(DIGITS, "rt").readline().strip().rsplit(",", 1)[0]
    path = os.path.join(directory, "body.json")
    with open(path, "w") as f:
        f.write('{"instances": [[%s]]}' % row)
    return path


def load_argv(build, url, body, rate=None, duration=None, schedule=None):
    argv = [os.path.join(build, "src", "mdscale"), "load", "--url", url,
            "--method", "POST", "--body", body,
            "--header", "Content-Type: application/json", "--output", "json"]
    if schedule:
        argv += ["--schedule", schedule]
    else:
        argv += ["--rate", str(rate), "--duration", str(duration)]
    return argv


def run_load(build, url, body, rate, duration):
    out = subprocess.run(load_argv(build, url, body, rate, duration),
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    return json.loads(out.stdout)


def capacity(build, url, body, start=250, step=250, seconds=3, p99_ms=50):
    """The highest open-loop rate (a STEP multiple) that a run of SECONDS
    carries with every request answered, the achieved rate at least 97 % of
    the target and p99 under P99_MS; a rate that fails is tried once more
    (a shared machine has hiccups) before the search stops. A short, rough
    measurement: the capacity of a burst."""
    best, runs = 0, []
    rate, misses = start, 0
    while rate <= 20000:
        r = run_load(build, url, body, rate, seconds)
        ok = (r["failed_total"] == 0 and r["dropped_overload"] == 0 and
              r["succeeded"] >= 0.97 * r["scheduled_requests"] and
              r["latency_us"]["p99"] < p99_ms * 1000)
        runs.append({"rate": rate, "succeeded": r["succeeded"],
                     "p99_ms": r["latency_us"]["p99"] / 1000.0, "ok": ok})
        if ok:
            best, misses = rate, 0
            rate += step
        else:
            misses += 1
            if misses == 2:
                break
            time.sleep(1)
    return best, runs
