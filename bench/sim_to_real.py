#!/usr/bin/env python3
"""Sim to real: is the simulator honest? A time-compressed slice of a
recorded trace is replayed against a real local deployment with
`mdscale load --schedule`, and the same slice goes through `mdscale
simulate` with the same policy and the example model server's service time
and start-up measured on this machine a moment before; the two runs'
instances over time, p99 latency and failures are compared.

Steps:
1. The slice: the trace's records from --from-min for --minutes (trace
   minutes), written as an Azure trace file that both commands read with
   --compress C. Each request's cost (from its token counts, mean 1 over
   the slice) reaches the model server as cost x N instances in its body
   (`--cost-instances N`); its cache is off, so every instance is one
   inference.
2. A fresh daemon; one deployment of the example model server on local.xs,
   one instance, no autoscaling yet.
3. Measured: the service time of a cost-1 request (N instances) is the
   instance process's CPU time per request over a light run, divided by the
   shape's CPUs (the quota holds it to that share); the start-up is the time
   from asking for a second instance to its being READY (then back to one).
4. The policy: the deployment's autoscaling is set to --policy (a live
   profile, `default` unless given); the policy in force is read back from
   the API and written as the simulator's policy file (same alarms, windows,
   durations, thresholds, cooldowns and bounds). A live profile the
   simulator knows by name (`mdscale`) is used by that name.
5. The real run: `mdscale load --schedule slice --compress C
   --cost-instances N` through the gateway (latency from each request's
   due time, timeout 60 s as the gateway's), while the deployment's
   instances are polled; the count at the end of each second is kept
   (instances not STOPPED: billed, as the simulator counts).
6. The prediction: `mdscale simulate --trace slice --compress C --policy
   FILE --set serviceMs=... --set startupMs=...`.

Reported: instance-seconds real and predicted, the mean absolute difference
of the instance count per second, the peak counts, scaling actions, p99
(ms) and failures (real: failed and dropped; predicted: refused and timed
out), and their differences. Writes bench/results/sim_to_real.json.

Usage: bench/sim_to_real.py BUILD [--trace FILE] [--policy PROFILE]
       [--from-min M] [--minutes M] [--compress C] [--cost-instances N]
The machine may be shared: other processes show up in the real run only.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mdbench  # noqa: E402

TRACE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "traces",
                     "AzureLLMInferenceTrace_conv.csv")
LIVE_STATES = ("STARTING", "READY", "DRAINING")

# The live policy's fields and the simulator's names for them (x1000: from
# seconds to milliseconds).
POLICY_KEYS = [
    ("minInstances", "min", 1), ("maxInstances", "max", 1),
    ("step", "step", 1), ("proportional", "proportional", 1),
    ("cpuTarget", "cpuTarget", 1), ("cpuHigh", "cpuHigh", 1),
    ("cpuLow", "cpuLow", 1), ("memHigh", "memHigh", 1),
    ("memLow", "memLow", 1), ("hysteresis", "hysteresis", 1),
    ("cooldownOutSeconds", "cooldownOutMs", 1000),
    ("cooldownInSeconds", "cooldownInMs", 1000),
    ("highWindow", "highWindow", 1), ("lowWindow", "lowWindow", 1),
    ("highStatistic", "highStatistic", 1),
    ("lowStatistic", "lowStatistic", 1),
    ("highPendingDuration", "highPending", 1),
    ("lowPendingDuration", "lowPending", 1),
    ("highRepeatDuration", "highRepeat", 1),
    ("lowRepeatDuration", "lowRepeat", 1),
]
SIM_BUILTINS = ("mdscale",)


def write_slice(trace, path, from_min, minutes):
    """The records from FROM_MIN for MINUTES trace minutes; returns their
    count. Times are compared as text (fixed-width timestamps)."""
    from datetime import datetime, timedelta
    n = 0
    with open(trace) as f, open(path, "w") as out:
        header = f.readline()
        out.write(header)
        first = f.readline()
        t0 = datetime.fromisoformat(first.split(",")[0][:26])
        lo = (t0 + timedelta(minutes=from_min)).isoformat(" ")
        hi = (t0 + timedelta(minutes=from_min + minutes)).isoformat(" ")
        for line in [first] + f.readlines():
            ts = line.split(",")[0][:26]
            if lo <= ts < hi:
                out.write(line)
                n += 1
    return n


def body_file(directory, k):
    row = mdbench.harness.digits_rows(1)[0][0]
    path = os.path.join(directory, "body%d.json" % k)
    with open(path, "w") as f:
        json.dump({"instances": [row] * k}, f)
    return path


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ready_instances(d, dep_id):
    return [i for i in d("GET", "/v1/deployments/" + dep_id)[1]["instances"]
            if i["state"] == "READY"]


def measure_service_ms(build, d, dep_id, url, body, cpus, rate=20, secs=6):
    """CPU per request of the one instance over a light open-loop run,
    held to the shape's share of a CPU."""
    inst = ready_instances(d, dep_id)
    assert len(inst) == 1, inst
    pid = inst[0]["pid"]
    c0 = cpu_seconds(pid)
    r = mdbench.run_load(build, url, body, rate, secs)
    c1 = cpu_seconds(pid)
    if r["succeeded"] < r["scheduled_requests"]:
        raise RuntimeError("the measuring run failed: %s" % r)
    return (c1 - c0) * 1000.0 / r["succeeded"] / cpus, r


def measure_startup_ms(d, dep_id):
    """From asking for a second instance to its being READY; then back."""
    before = {i["id"] for i in ready_instances(d, dep_id)}
    t0 = time.monotonic()
    st, wr = d("PUT", "/v1/deployments/" + dep_id, {"instanceCount": 2})
    if st != 202:
        raise RuntimeError("scale to 2: %s %s" % (st, wr))
    while not any(i["id"] not in before for i in ready_instances(d, dep_id)):
        if time.monotonic() - t0 > 60:
            raise RuntimeError("no second instance within 60 s")
        time.sleep(0.02)
    ms = (time.monotonic() - t0) * 1000.0
    d.wait_deployment(dep_id)
    st, wr = d("PUT", "/v1/deployments/" + dep_id, {"instanceCount": 1})
    if st != 202:
        raise RuntimeError("scale to 1: %s %s" % (st, wr))
    d.wait_workrequest(wr["id"])
    d.wait_deployment(dep_id)
    return ms


def sim_policy_text(policy):
    """The simulator's policy file for the live policy in force. It starts
    as the live deployment does, with one instance or the minimum (the
    simulator's default, initial = auto, starts with the oracle's)."""
    start = max(1, policy["minInstances"])
    if policy.get("profile") in SIM_BUILTINS:
        return ("base = %s\nname = %s\nmin = %d\nmax = %d\n"
                "initial = %d\n" % (
                    policy["profile"], policy["profile"],
                    policy["minInstances"], policy["maxInstances"], start))
    lines = ["base = recipe", "name = live-%s" % policy.get("profile")]
    for live, sim, mult in POLICY_KEYS:
        v = policy[live]
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif mult != 1:
            v = int(v * mult)
        lines.append("%s = %s" % (sim, v))
    lines.append("initial = %d" % start)
    return "\n".join(lines) + "\n"


class Poller(threading.Thread):
    """The deployment's billed instances (not STOPPED), every 0.1 s."""

    def __init__(self, d, dep_id):
        super().__init__(daemon=True)
        self.d, self.dep_id = d, dep_id
        self.samples = []  # (monotonic, billed, ready)
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                inst = self.d("GET", "/v1/deployments/" + self.dep_id,
                              timeout=5)[1]["instances"]
                self.samples.append((
                    time.monotonic(),
                    sum(1 for i in inst if i["state"] in LIVE_STATES),
                    sum(1 for i in inst if i["state"] == "READY")))
            except (OSError, KeyError, TypeError):
                pass
            self.stop.wait(0.1)

    def per_second(self, t0, seconds):
        """The billed count at the end of each second after t0."""
        out, j, last = [], 0, self.samples[0][1] if self.samples else 0
        for s in range(1, seconds + 1):
            while j < len(self.samples) and self.samples[j][0] <= t0 + s:
                last = self.samples[j][1]
                j += 1
            out.append(last)
        return out


def cpu_per_10s(d, dep_id, wall0, seconds):
    """The deployment's CpuUtilization over the run, the mean of its
    instances' samples in each 10 s: what the live alarms saw."""
    st, ans = d("POST", "/v1/metrics/query", {
        "query": 'CpuUtilization[10s]{resourceId = "%s"}.grouping().mean()'
                 % dep_id,
        "startTime": int(wall0 * 1000),
        "endTime": int((wall0 + seconds) * 1000), "resolution": "10s"})
    if st != 200 or not ans["items"]:
        return None
    return [round(p["value"], 1)
            for p in ans["items"][0]["aggregatedDatapoints"]]


def gateway_answers(data_dir, wall0):
    """From the daemon's structured log (the gateway's access log is on),
    since wall0: how many requests got each status, and the warnings and
    errors."""
    import collections
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall0))
    status, problems = collections.Counter(), collections.Counter()
    with open(os.path.join(data_dir, "logs", "mdscale.log"),
              errors="replace") as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("time", "") < since:
                continue
            if e.get("source") == "access":
                parts = e.get("message", "").split()
                if len(parts) >= 3:
                    status[parts[2]] += 1
            elif e.get("level") in ("warn", "error"):
                problems[e.get("message", "")[:80]] += 1
    return {"status": dict(status),
            "problems": dict(problems.most_common(5))}


def actions(series):
    return sum(1 for a, b in zip(series, series[1:]) if a != b)


def run(args):
    build = os.path.abspath(args.build)
    tmp = tempfile.mkdtemp(prefix="sim-to-real-")
    slice_path = os.path.join(tmp, "slice.csv")
    records = write_slice(args.trace, slice_path, args.from_min, args.minutes)
    d = mdbench.Daemon(build, config={"accessLog": True})
    poller = None
    try:
        d.start()
        st, dep = d("POST", "/v1/deployments", {
            "displayName": "simreal", "command": mdbench.model_command(build),
            "instanceShapeName": "local.xs", "instanceCount": 1})
        if st != 201:
            raise RuntimeError("create: %s %s" % (st, dep))
        dep_id = dep["id"]
        d.wait_deployment(dep_id)
        cpus = [s["cpus"] for s in d("GET", "/v1/shapes")[1]["items"]
                if s["name"] == "local.xs"][0]
        url = "http://127.0.0.1:%d/simreal/predict" % d.gw_port
        service_ms, meas = measure_service_ms(
            build, d, dep_id, url, body_file(tmp, args.cost_instances), cpus)
        startup_ms = measure_startup_ms(d, dep_id)
        st, ans = d("PUT", "/v1/deployments/%s/autoscale" % dep_id,
                    {"profile": args.policy})
        if st not in (200, 201):
            raise RuntimeError("autoscale %s: %s %s" % (args.policy, st, ans))
        policy = d("GET", "/v1/deployments/%s/autoscale" % dep_id)[1]["policy"]
        pol_path = os.path.join(tmp, "live.policy")
        with open(pol_path, "w") as f:
            f.write(sim_policy_text(policy))
        time.sleep(args.settle)

        poller = Poller(d, dep_id)
        poller.start()
        time.sleep(0.5)
        argv = [os.path.join(build, "src", "mdscale"), "load", "--url", url,
                "--method", "POST", "--header",
                "Content-Type: application/json",
                "--body", body_file(tmp, 1), "--schedule", slice_path,
                "--compress", str(args.compress),
                "--cost-instances", str(args.cost_instances),
                # Under the gateway's 512 connections from one address:
                # beyond, it closes new ones.
                "--connections", "500", "--timeout", "60",
                "--output", "json"]
        load_before = os.getloadavg()[0]
        wall0 = time.time()
        t0 = time.monotonic()
        out = subprocess.run(argv, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, check=True)
        real = json.loads(out.stdout)
        load_after = os.getloadavg()[0]
        poller.stop.set()
        poller.join()
        cpu = cpu_per_10s(d, dep_id, wall0, real["trace"]["seconds"])
        gw = gateway_answers(d.data_dir, wall0)

        sim_argv = [os.path.join(build, "src", "mdscale"), "simulate",
                    "--trace", slice_path, "--compress", str(args.compress),
                    "--policy", pol_path,
                    "--set", "serviceMs=%.4f" % service_ms,
                    "--set", "startupMs=%d" % round(startup_ms),
                    "--output", "json"]
        sim = json.loads(subprocess.run(sim_argv, stdout=subprocess.PIPE,
                                        check=True).stdout)
        pred = sim["policies"][0]
        n = min(len(pred["instancesPerSecond"]),
                int(real["trace"]["seconds"]))
        real_inst = poller.per_second(t0, n)
        pred_inst = pred["instancesPerSecond"][:n]
        mad = sum(abs(a - b) for a, b in zip(real_inst, pred_inst)) / n
        real_fail = real["failed_total"] + real["dropped_overload"]
        pred_fail = pred["refused"] + pred["timedOut"]
        result = {
            "machine": mdbench.machine(), "trace": args.trace,
            "slice": {"fromMinute": args.from_min, "minutes": args.minutes,
                      "records": records, "compress": args.compress,
                      "playedSeconds": real["trace"]["seconds"],
                      "costInstances": args.cost_instances},
            "policy": {"live": args.policy, "in force": policy,
                       "simulator": sim_policy_text(policy)},
            "measured": {"serviceMs": service_ms, "startupMs": startup_ms,
                         "shapeCpus": cpus,
                         "measuringRun": {
                             "rate": meas["rate_target"],
                             "p50Ms": meas["latency_us"]["p50"] / 1000.0}},
            "seconds": n,
            "real": {"instanceSeconds": sum(real_inst),
                     "peakInstances": max(real_inst),
                     "changes": actions(real_inst),
                     "p99Ms": real["latency_us"]["p99"] / 1000.0,
                     "p50Ms": real["latency_us"]["p50"] / 1000.0,
                     "requests": real["sent"], "failures": real_fail,
                     "failedByCause": real["failed"],
                     "dropped": real["dropped_overload"],
                     "loadAverage": [load_before, load_after],
                     "cpuUtilizationPer10s": cpu,
                     "gateway": gw,
                     "instances": real_inst},
            "predicted": {"instanceSeconds": sum(pred_inst),
                          "peakInstances": max(pred_inst),
                          "changes": actions(pred_inst),
                          "p99Ms": pred["p99Ms"], "p50Ms": pred["p50Ms"],
                          "requests": pred["requests"],
                          "failures": pred_fail,
                          "instances": pred_inst},
            "meanAbsInstanceDiff": mad,
        }
        return result
    finally:
        if poller is not None:
            poller.stop.set()
        d.cleanup()


def report(r):
    re, pr = r["real"], r["predicted"]
    print("slice: minutes %g-%g of the trace (%d requests), compressed %gx "
          "to %.0f s; cost x %d instances; policy %s" % (
              r["slice"]["fromMinute"],
              r["slice"]["fromMinute"] + r["slice"]["minutes"],
              r["slice"]["records"], r["slice"]["compress"],
              r["slice"]["playedSeconds"], r["slice"]["costInstances"],
              r["policy"]["live"]))
    print("measured: service %.2f ms a cost-1 request on %.2f CPU, "
          "start-up %.0f ms" % (r["measured"]["serviceMs"],
                                r["measured"]["shapeCpus"],
                                r["measured"]["startupMs"]))
    print("%-22s %10s %10s %10s" % ("", "real", "predicted", "difference"))
    for key, name, fmt in (("instanceSeconds", "instance-seconds", "%10.0f"),
                           ("peakInstances", "peak instances", "%10d"),
                           ("changes", "count changes", "%10d"),
                           ("p50Ms", "p50 latency (ms)", "%10.1f"),
                           ("p99Ms", "p99 latency (ms)", "%10.1f"),
                           ("requests", "requests", "%10d"),
                           ("failures", "failures", "%10d")):
        print(("%-22s " + fmt + " " + fmt + " " + fmt) % (
            name, re[key], pr[key], re[key] - pr[key]))
    print("mean |real - predicted| instances per second: %.3f over %d s" % (
        r["meanAbsInstanceDiff"], r["seconds"]))
    print("real failures by cause: %s, dropped %d; machine load average "
          "%.1f before the real run, %.1f after" % (
              ", ".join("%s %d" % kv for kv in re["failedByCause"].items()),
              re["dropped"], re["loadAverage"][0], re["loadAverage"][1]))
    print("real CpuUtilization, mean over the instances a 10 s: %s" % (
        re["cpuUtilizationPer10s"],))
    print("the gateway's answers by status: %s; warnings: %s" % (
        re["gateway"]["status"], re["gateway"]["problems"] or "none"))
    print("machine: %s" % mdbench.machine_line())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--trace", default=TRACE)
    ap.add_argument("--policy", default="default",
                    help="the live autoscale profile (default, recipe, ...)")
    ap.add_argument("--from-min", type=float, default=20)
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--compress", type=float, default=10)
    ap.add_argument("--cost-instances", type=int, default=8)
    ap.add_argument("--settle", type=float, default=3,
                    help="seconds between setting the policy and the run")
    args = ap.parse_args()
    r = run(args)
    report(r)
    os.makedirs(mdbench.RESULTS, exist_ok=True)
    path = os.path.join(mdbench.RESULTS, "sim_to_real.json")
    with open(path, "w") as f:
        json.dump(r, f, indent=2)
    print("wrote %s" % path)


if __name__ == "__main__":
    main()
