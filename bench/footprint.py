#!/usr/bin/env python3
"""The daemon's footprint: its resident memory (VmRSS of the daemon process
alone, not its instances) idle with no deployment, then with 100
deployments of one instance each (the bench backend on a 0.05-CPU, 32 MiB
shape: they become ACTIVE), then with 1,000 alarms on them as well (ten per
deployment, each a valid CpuUtilization query on its deployment); and its
start-up time, from exec to the first `GET /v1/health` answering 200,
median of N, with an empty data directory (a new one each time) and with
the 100-deployment, 1,000-alarm state (the daemon stopped with SIGTERM and
started again on the same directory).

Usage: bench/footprint.py BUILD [--deployments N] [--alarms-per N] [--runs N]
Writes bench/results/footprint.json."""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mdbench  # noqa: E402


def config(n):
    return {"shapes": [{"name": "bench.tiny", "cpus": 0.05, "memoryInMBs": 32},
                       {"name": "local.xs", "cpus": 0.25, "memoryInMBs": 256}],
            "defaultShape": "bench.tiny", "maxDeployments": max(100, n + 10),
            "readyTimeoutSeconds": 120}


def settle_rss(d, seconds=3):
    """VmRSS after SECONDS, the largest of the last few readings."""
    xs = []
    for _ in range(int(seconds * 4)):
        xs.append(d.rss_kb())
        time.sleep(0.25)
    return max(xs[-4:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--deployments", type=int, default=100)
    ap.add_argument("--alarms-per", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    backend = os.path.join(build, "bench", "mdscale-bench-backend")
    cfg = config(args.deployments)
    res = {"machine": mdbench.machine(), "deployments": args.deployments,
           "alarms": args.deployments * args.alarms_per,
           "shape": cfg["shapes"][0]}

    # Start-up with an empty data directory, a new one each run.
    empty = []
    for _ in range(args.runs):
        d = mdbench.Daemon(build, config=cfg)
        try:
            empty.append(d.start())
        finally:
            d.cleanup()
    res["startupEmptySeconds"] = empty

    d = mdbench.Daemon(build, config=cfg)
    try:
        d.start()
        time.sleep(2)
        res["rssIdleKb"] = settle_rss(d)
        ids = []
        t0 = time.monotonic()
        for i in range(args.deployments):
            st, dep = d("POST", "/v1/deployments", {
                "displayName": "fp%03d" % i,
                "command": "exec %s --port $PORT --lifetime 3600" % backend,
                "instanceShapeName": "bench.tiny", "instanceCount": 1})
            if st != 201:
                raise RuntimeError("create %d: %s %s" % (i, st, dep))
            ids.append(dep["id"])
        for dep_id in ids:
            d.wait_deployment(dep_id, timeout=600)
        res["deploySeconds"] = time.monotonic() - t0
        time.sleep(3)
        res["rssDeploymentsKb"] = settle_rss(d)
        for k, dep_id in enumerate(ids):
            for j in range(args.alarms_per):
                st, a = d("POST", "/v1/alarms", {
                    "displayName": "fp-%d-%d" % (k, j),
                    "query": 'CpuUtilization[1m]{resourceId = "%s"}.max() > %d' % (
                        dep_id, 50 + j),
                    "pendingDuration": "PT1M"})
                if st != 201:
                    raise RuntimeError("alarm: %s %s" % (st, a))
        time.sleep(3)
        res["rssDeploymentsAlarmsKb"] = settle_rss(d, 5)
        st, al = d("GET", "/v1/alarms")
        res["alarmsListed"] = len(al["items"]) if st == 200 else None
        d.stop()
        restart = []
        for _ in range(args.runs):
            restart.append(d.start())
            # Let it bring the instances back before the next stop.
            for dep_id in ids:
                d.wait_deployment(dep_id, timeout=600)
            res.setdefault("rssAfterRestartKb", settle_rss(d, 2))
            d.stop()
        res["startupStateSeconds"] = restart
    finally:
        d.cleanup()

    res["startupEmptyMedianMs"] = statistics.median(empty) * 1000
    res["startupStateMedianMs"] = statistics.median(restart) * 1000
    os.makedirs(mdbench.RESULTS, exist_ok=True)
    with open(os.path.join(mdbench.RESULTS, "footprint.json"), "w") as f:
        json.dump(res, f, indent=1)
    print("machine: " + mdbench.machine_line())
    print("%-52s %10s" % ("daemon", "figure"))
    print("%-52s %7.1f MiB" % ("VmRSS idle, no deployment", res["rssIdleKb"] / 1024.0))
    print("%-52s %7.1f MiB" % ("VmRSS, %d deployments x 1 instance (ACTIVE)" % args.deployments,
                               res["rssDeploymentsKb"] / 1024.0))
    print("%-52s %7.1f MiB" % ("VmRSS, + %d alarms" % res["alarms"],
                               res["rssDeploymentsAlarmsKb"] / 1024.0))
    print("%-52s %7.1f ms" % ("start-up to /v1/health 200, empty (median of %d)" % args.runs,
                              res["startupEmptyMedianMs"]))
    print("%-52s %7.1f ms" % ("start-up, %d deployments + %d alarms (median of %d)" % (
        args.deployments, res["alarms"], args.runs), res["startupStateMedianMs"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
