"""Shared helpers of the Python benchmarks (zero_downtime.py, footprint.py,
timeline.py, reaction.py): a daemon on free ports in a temporary data directory, API
calls, the example model server's command and request body, and a short
capacity measurement with `mdscale load`. The daemon and HTTP calls are the
end-to-end harness's (tests/e2e/harness.py)."""
import json
import os
import platform
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "e2e"))
import harness  # noqa: E402

RESULTS = os.environ.get("BENCH_RESULTS", os.path.join(TOP, "bench", "results"))


free_port = harness.free_port


def call(port, method, path, body=None, token=None, timeout=10):
    """One request to 127.0.0.1:PORT; returns (status, the JSON answer, or
    the raw bytes when it is not JSON, or None when empty)."""
    r = harness.request(port, method, path, body, token=token,
                        timeout=timeout)
    return r.status, r.json if r.json is not None else (r.raw or None)


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


class Daemon(harness.Daemon):
    """The end-to-end tests' daemon (tests/e2e/harness.py) run from BUILD,
    logging at info; calling it makes an authenticated API request and
    returns (status, answer). start() picks new ports and returns how long
    the daemon took to answer /v1/health."""

    def __init__(self, build, data=None, config=None):
        super().__init__(data_dir=data, config=config,
                         binary=os.path.join(build, "src", "mdscale"),
                         log_level="info")

    def start(self):
        self.api_port, self.gw_port = free_port(), free_port()
        t0 = time.monotonic()
        super().start()
        self.startup_seconds = time.monotonic() - t0
        return self.startup_seconds

    def __call__(self, method, path, body=None, timeout=30):
        return call(self.api_port, method, path, body, self.token, timeout)

    def rss_kb(self):
        for line in open("/proc/%d/status" % self.proc.pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return None

    def wait_deployment(self, dep_id, states=("ACTIVE",), timeout=300):
        def check():
            st, d = self("GET", "/v1/deployments/" + dep_id)
            if st == 200 and d["lifecycleState"] == "FAILED":
                raise RuntimeError("deployment FAILED: %s"
                                   % d.get("lifecycleDetails"))
            return d if st == 200 and d["lifecycleState"] in states else None
        return harness.wait_for("deployment %s %s" % (dep_id, states),
                                check, timeout=timeout, interval=0.1)

    def wait_workrequest(self, wr_id, timeout=600):
        def check():
            st, w = self("GET", "/v1/workrequests/" + wr_id)
            done = ("SUCCEEDED", "FAILED", "CANCELED")
            return w if st == 200 and w["status"] in done else None
        return harness.wait_for("work request " + wr_id, check,
                                timeout=timeout, interval=0.1)


def model_command(build):
    """The example model server with its response cache off: every request
    repeats the same digit, which the cache would answer without the model."""
    return "exec %s --weights %s --port $PORT --cache-entries 0" % (
        os.path.join(build, "examples", "model-server", "mdscale-model-server"),
        os.path.join(TOP, "examples", "model-server", "digits-mlp.weights"))


def model_body(directory):
    """A file with one digit to predict, the first of the data set."""
    row = harness.digits_rows(1)[0][0]
    path = os.path.join(directory, "body.json")
    with open(path, "w") as f:
        json.dump({"instances": [row]}, f)
    return path


def load_argv(build, url, body, rate=None, duration=None, schedule=None,
              connections=None):
    argv = [os.path.join(build, "src", "mdscale"), "load", "--url", url,
            "--method", "POST", "--body", body,
            "--header", "Content-Type: application/json", "--output", "json"]
    if connections:
        argv += ["--connections", str(connections)]
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
