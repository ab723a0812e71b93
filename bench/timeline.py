#!/usr/bin/env python3
"""One autoscaling episode on one time axis: offered load, instances,
shape, CPU and memory utilization, p99 latency and failures, as stacked
panels in a PNG (gnuplot).

A fresh daemon. First one instance's capacity of the example model server
on local.xs (0.25 CPU), briefly, on a deployment without autoscaling that
is then deleted. Then a deployment of it on local.xs created with
`"autoscale": {"profile": "default", "maxInstances": 4}`, and `mdscale load
--schedule`: 20 s quiet (1 req/s), 60 s at 3x that capacity, 40 s quiet.
The deployment is sampled through the API every second; CPU and memory
utilization come from POST /v1/metrics/query afterwards (1-second
resolution, mean and max over the instances); offered load, failures and
p99 from mdscale load's per-second report.

Usage: bench/timeline.py BUILD [--capacity R] [--quiet1 S] [--step S] [--quiet2 S]
Writes bench/results/timeline.json and bench/results/timeline.png."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mdbench  # noqa: E402


def sampler(d, dep_id, t0, out, stop):
    while not stop.is_set():
        t = time.monotonic() - t0
        try:
            st, dep = d("GET", "/v1/deployments/" + dep_id, timeout=5)
            if st == 200:
                inst = dep["instances"]
                out.append({"t": round(t, 3), "state": dep["lifecycleState"],
                            "instanceCount": dep["instanceCount"],
                            "shape": dep["instanceShapeName"],
                            "ready": sum(1 for i in inst if i["state"] == "READY"),
                            "instances": sum(1 for i in inst if i["state"] in
                                             ("STARTING", "READY", "DRAINING"))})
        except OSError:
            pass
        stop.wait(max(0.0, 1.0 - ((time.monotonic() - t0) - t)))


def metric(d, name, dep_id, start_ms, end_ms):
    st, r = d("POST", "/v1/metrics/query", {
        "query": '%s[1s]{resourceId = "%s"}.mean()' % (name, dep_id),
        "startTime": start_ms, "endTime": end_ms, "resolution": "PT1S"})
    if st != 200:
        print("metrics query %s: %s %s" % (name, st, r), file=sys.stderr)
        return {}
    by_ts = {}
    for item in r["items"]:
        for p in item["aggregatedDatapoints"]:
            ts = p["timestamp"]
            if isinstance(ts, str):
                # RFC 3339 from the API: to ms since the epoch
                import datetime
                ts = int(datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
                         .timestamp() * 1000)
            by_ts.setdefault(ts, []).append(p["value"])
    return by_ts


PLOT = r"""
set terminal pngcairo size 1100,1400 font "DejaVu Sans,11" noenhanced
set output '%(png)s'
set multiplot layout 6,1 title "mdscale autoscaling episode (default profile, maxInstances 4, local.xs; example model server)\n%(machine)s" font ",12"
set lmargin 12
set rmargin 4
set grid
set xrange [0:%(xmax)d]
set key top left horizontal opaque
set format x ""
set tmargin 1.5
set bmargin 0.5
set ylabel "req/s"
set yrange [0:*]
plot '%(dat)s' u 1:2 w steps lw 2 lc rgb "#1f77b4" t "offered", \
     '' u 1:3 w steps lw 1.5 lc rgb "#2ca02c" t "succeeded"
set ylabel "instances"
set yrange [0:5]
set ytics 1
plot '%(dat)s' u 1:4 w steps lw 2 lc rgb "#ff7f0e" t "READY", \
     '' u 1:5 w steps lw 1.5 dt 2 lc rgb "#7f7f7f" t "total (incl. starting/draining)"
set ylabel "shape CPUs"
set yrange [0:1.2]
set ytics 0.25
plot '%(dat)s' u 1:6 w steps lw 2 lc rgb "#9467bd" t "CPUs per instance (shape)"
set ytics autofreq
set ylabel "utilization %%"
set yrange [0:*]
plot '%(dat)s' u 1:($7 < 0 ? NaN : $7) w lines lw 2 lc rgb "#d62728" t "CPU mean", \
     '' u 1:($8 < 0 ? NaN : $8) w lines lw 1 lc rgb "#e377c2" t "CPU max", \
     '' u 1:($9 < 0 ? NaN : $9) w lines lw 2 lc rgb "#17becf" t "memory mean", \
     70 w lines dt 3 lc rgb "black" t "cpuHigh 70"
set ylabel "p99 ms"
set logscale y
set yrange [*:*]
set key bottom right
plot '%(dat)s' u 1:($10 > 0 ? $10 : NaN) w steps lw 2 lc rgb "#8c564b" t "p99 latency (per second; gap: no request finished)"
unset logscale y
set key top left
set ylabel "failed/s"
set yrange [0:*]
set format x "%%g"
set xlabel "seconds since the load schedule started"
set bmargin 3.5
plot '%(dat)s' u 1:11 w impulses lw 3 lc rgb "#d62728" t "failed requests (%(failedtext)s)"
unset multiplot
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--capacity", type=int, default=0,
                    help="one instance's req/s (default: measured)")
    ap.add_argument("--quiet1", type=int, default=20)
    ap.add_argument("--step", type=int, default=60)
    ap.add_argument("--quiet2", type=int, default=40)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    d = mdbench.Daemon(build)
    stop = threading.Event()
    try:
        d.start()
        body = mdbench.model_body(d.data_dir)
        cap, cap_runs = args.capacity, []
        if not cap:
            st, dep = d("POST", "/v1/deployments", {
                "displayName": "cap", "command": mdbench.model_command(build),
                "instanceShapeName": "local.xs", "instanceCount": 1})
            d.wait_deployment(dep["id"])
            cap, cap_runs = mdbench.capacity(
                build, "http://127.0.0.1:%d/cap/predict" % d.gw_port, body, start=100, step=100)
            d("DELETE", "/v1/deployments/" + dep["id"])
        step_rate = 3 * cap
        print("1-instance capacity (local.xs): %d req/s; step to %d req/s" % (cap, step_rate),
              flush=True)
        st, dep = d("POST", "/v1/deployments", {
            "displayName": "tl", "command": mdbench.model_command(build),
            "instanceShapeName": "local.xs", "instanceCount": 1,
            "autoscale": {"profile": "default", "maxInstances": 4}})
        if st != 201:
            raise RuntimeError("create: %s %s" % (st, dep))
        dep_id = dep["id"]
        d.wait_deployment(dep_id)
        time.sleep(3)
        sched = os.path.join(d.data_dir, "schedule.txt")
        with open(sched, "w") as f:
            f.write("%d 1\n%d %d\n%d 1\n" % (args.quiet1, args.step, step_rate, args.quiet2))
        t0 = time.monotonic()
        wall0 = time.time()
        samples = []
        th = threading.Thread(target=sampler, args=(d, dep_id, t0, samples, stop))
        th.start()
        out = subprocess.run(mdbench.load_argv(build, "http://127.0.0.1:%d/tl/predict" % d.gw_port,
                                               body, schedule=sched),
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
        stop.set()
        th.join()
        r = json.loads(out.stdout)
        wall1 = time.time()
        cpu = metric(d, "CpuUtilization", dep_id, int(wall0 * 1000) - 2000, int(wall1 * 1000) + 1000)
        mem = metric(d, "MemoryUtilization", dep_id, int(wall0 * 1000) - 2000, int(wall1 * 1000) + 1000)
        st, hist = d("GET", "/v1/deployments/%s/scaling-history" % dep_id)
        st, shapes = d("GET", "/v1/shapes")
        cpus = {s["name"]: s["cpus"] for s in shapes["items"]}

        rows = []
        for s in r["seconds"]:
            sec = s["second"]
            smp = [x for x in samples if sec - 1 <= x["t"] < sec]
            smp = smp[-1] if smp else (rows[-1]["sample"] if rows else None)
            # metric points are stamped at the end of their 1-second interval
            t_ms = int((wall0 + sec) * 1000)
            near = [k for k in cpu if abs(k - t_ms) < 500]
            cv = cpu[near[0]] if near else None
            nearm = [k for k in mem if abs(k - t_ms) < 500]
            mv = mem[nearm[0]] if nearm else None
            rows.append({
                "second": sec, "offered": s["sent"], "succeeded": s["succeeded"],
                "failed": s["failed_total"], "failedByCause": s["failed"],
                "p99_ms": s["latency_us"]["p99"] / 1000.0,
                "ready": smp["ready"] if smp else None,
                "instances": smp["instances"] if smp else None,
                "shape": smp["shape"] if smp else None,
                "shapeCpus": cpus.get(smp["shape"]) if smp else None,
                "cpuMean": sum(cv) / len(cv) if cv else None,
                "cpuMax": max(cv) if cv else None,
                "memMean": sum(mv) / len(mv) if mv else None,
                "sample": smp})
        result = {"machine": mdbench.machine(), "wallStart": wall0, "capacity1": cap,
                  "capacityRuns": cap_runs, "stepRate": step_rate,
                  "schedule": [[args.quiet1, 1], [args.step, step_rate], [args.quiet2, 1]],
                  "sent": r["sent"], "succeeded": r["succeeded"], "failed": r["failed"],
                  "failedTotal": r["failed_total"], "latencyUs": r["latency_us"],
                  "scalingHistory": hist["items"] if hist else [],
                  "timeline": [{k: v for k, v in x.items() if k != "sample"} for x in rows],
                  "samples": samples}
        os.makedirs(mdbench.RESULTS, exist_ok=True)
        with open(os.path.join(mdbench.RESULTS, "timeline.json"), "w") as f:
            json.dump(result, f, indent=1)
        dat = os.path.join(mdbench.RESULTS, "timeline.dat")
        with open(dat, "w") as f:
            f.write("# t offered succeeded ready total shapeCpus cpuMean cpuMax memMean p99ms failed\n")
            for x in rows:
                def v(k):
                    return -1 if x[k] is None else x[k]
                f.write("%d %d %d %d %d %s %.2f %.2f %.2f %.3f %d\n" % (
                    x["second"], x["offered"], x["succeeded"], v("ready"), v("instances"),
                    v("shapeCpus"), v("cpuMean"), v("cpuMax"), v("memMean"), x["p99_ms"],
                    x["failed"]))
        png = os.path.join(mdbench.RESULTS, "timeline.png")
        if shutil.which("gnuplot"):
            gp = PLOT % {"png": png, "dat": dat, "xmax": len(rows),
                         "failedtext": "total %d%s" % (r["failed_total"], "".join(
                             ", %s %d" % (k, v) for k, v in r["failed"].items() if v)),
                         "machine": mdbench.machine_line().replace('"', "'")}
            subprocess.run(["gnuplot"], input=gp.encode(), check=True)
            print("plot: " + png)
        else:
            print("gnuplot not found: no plot (apt-get install gnuplot-nox)")
        print("machine: " + mdbench.machine_line())
        print("sent %d, succeeded %d, failed %d, p99 %.1f ms" % (
            r["sent"], r["succeeded"], r["failed_total"], r["latency_us"]["p99"] / 1000.0))
        for h in result["scalingHistory"]:
            print("  %+7.1f s  %-10s %s -> %s  %s" % (
                h["time"] / 1000.0 - wall0, h["action"], h.get("from"), h.get("to"),
                h.get("reason", "")))
        return 0
    finally:
        stop.set()
        d.cleanup()


if __name__ == "__main__":
    sys.exit(main())
