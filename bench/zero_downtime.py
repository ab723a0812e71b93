#!/usr/bin/env python3
"""Zero downtime, measured: the example model server under open-loop load
while its deployment scales 1 -> 4 -> 1 instances and changes shape up then
down, three times in a row, every change through the API.

A fresh daemon, one deployment of the example model server on local.m (1
CPU). First its 1-instance capacity through the gateway (`mdscale load` at
rising rates, 8 s each: in 3-s runs a queue that grows slowly still passes,
and 70 % of such a burst capacity once came out above what one instance
carried for a minute). Then `mdscale load` at 70 % of it, open
loop, for as long as the changes take and at least 100,000 requests: 10 s
steady, then three cycles of (instanceCount 4, instanceCount 1, shape
local.l, shape local.m), each a PUT waiting for its work request to
finish, 3 s apart; then steady until the request count is reached, and 10 s
more. The deployment is sampled every second.

Every second of the load's per-second report that overlaps a work request
(from its PUT to its end) is a transition second; the others are steady.
Reported: requests, failures by cause (target: none), and the per-second
p99 latencies of transition and steady seconds (median and worst).

Usage: bench/zero_downtime.py BUILD [--rate R] [--cycles N] [--min-requests N]
Writes bench/results/zero_downtime.json (with the per-second timeline)."""
import argparse
import json
import os
import signal
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


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--rate", type=int, default=0, help="default: 70%% of the measured capacity")
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--min-requests", type=int, default=100000)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    d = mdbench.Daemon(build)
    load = None
    stop = threading.Event()
    try:
        d.start()
        st, dep = d("POST", "/v1/deployments", {
            "displayName": "zd", "command": mdbench.model_command(build),
            "instanceShapeName": "local.m", "instanceCount": 1})
        if st != 201:
            raise RuntimeError("create: %s %s" % (st, dep))
        dep_id = dep["id"]
        d.wait_deployment(dep_id)
        body = mdbench.model_body(d.data_dir)
        url = "http://127.0.0.1:%d/zd/predict" % d.gw_port
        cap, cap_runs = mdbench.capacity(build, url, body, start=200, step=200,
                                         seconds=8)
        if not cap and not args.rate:
            raise RuntimeError("capacity: no rate passed: %s" % cap_runs)
        rate = args.rate or int(cap * 0.7)
        print("1-instance capacity (local.m, p99 < 50 ms, 8 s runs): %d req/s; "
              "offered load %d req/s" % (cap, rate), flush=True)
        time.sleep(2)

        t0 = time.monotonic()
        wall0 = time.time()
        load = subprocess.Popen(mdbench.load_argv(build, url, body, rate, 3600),
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        samples = []
        th = threading.Thread(target=sampler, args=(d, dep_id, t0, samples, stop))
        th.start()
        time.sleep(10)
        changes = []
        shapes = ("local.m", "local.l")
        for cycle in range(args.cycles):
            for change in ({"instanceCount": 4}, {"instanceCount": 1},
                           {"instanceShapeName": shapes[1]},
                           {"instanceShapeName": shapes[0]}):
                start = time.monotonic() - t0
                st, wr = d("PUT", "/v1/deployments/" + dep_id, change)
                if st != 202:
                    raise RuntimeError("update %s: %s %s" % (change, st, wr))
                w = d.wait_workrequest(wr["id"])
                end = time.monotonic() - t0
                changes.append({"cycle": cycle + 1, "change": change, "start": round(start, 3),
                                "end": round(end, 3), "status": w["status"],
                                "workRequestId": wr["id"]})
                print("  cycle %d %-32s %6.1f s .. %6.1f s  %s" % (
                    cycle + 1, json.dumps(change), start, end, w["status"]), flush=True)
                time.sleep(3)
        need = args.min_requests / float(rate)
        left = need - (time.monotonic() - t0)
        time.sleep(max(0, left) + 10)
        load.send_signal(signal.SIGINT)
        out, _ = load.communicate(timeout=60)
        load = None
        stop.set()
        th.join()
        r = json.loads(out)

        def transition(sec):
            a, b = sec - 1, sec
            return any(c["start"] < b and c["end"] > a for c in changes)
        timeline = []
        for s in r["seconds"]:
            smp = [x for x in samples if s["second"] - 1 <= x["t"] < s["second"]]
            smp = smp[-1] if smp else None
            timeline.append({
                "second": s["second"], "transition": transition(s["second"]),
                "sent": s["sent"], "succeeded": s["succeeded"],
                "failed": s["failed_total"], "failedByCause": s["failed"],
                "p50_ms": s["latency_us"]["p50"] / 1000.0,
                "p99_ms": s["latency_us"]["p99"] / 1000.0,
                "instances": smp["instances"] if smp else None,
                "ready": smp["ready"] if smp else None,
                "shape": smp["shape"] if smp else None})
        # The last second may be partial (the interrupt): leave it out of the split.
        full = [x for x in timeline if x["sent"] > 0][:-1]
        tr = [x["p99_ms"] for x in full if x["transition"] and x["succeeded"]]
        sd = [x["p99_ms"] for x in full if not x["transition"] and x["succeeded"]]
        result = {
            "machine": mdbench.machine(), "wallStart": wall0,
            "deployment": {"command": "examples/model-server", "shapes": list(shapes)},
            "capacity1": cap, "capacityRuns": cap_runs, "rate": rate,
            "cycles": args.cycles, "changes": changes,
            "allChangesSucceeded": all(c["status"] == "SUCCEEDED" for c in changes),
            "sent": r["sent"], "succeeded": r["succeeded"], "failed": r["failed"],
            "failedTotal": r["failed_total"], "droppedOverload": r["dropped_overload"],
            "unfinished": r["unfinished"], "latencyUs": r["latency_us"],
            "generatorLagMaxMs": r["generator_lag_max_ms"],
            "transitionSeconds": len(tr), "steadySeconds": len(sd),
            "p99TransitionMedianMs": pct(tr, 0.5), "p99TransitionMaxMs": max(tr) if tr else None,
            "p99SteadyMedianMs": pct(sd, 0.5), "p99SteadyMaxMs": max(sd) if sd else None,
            "timeline": timeline, "samples": samples}
        os.makedirs(mdbench.RESULTS, exist_ok=True)
        with open(os.path.join(mdbench.RESULTS, "zero_downtime.json"), "w") as f:
            json.dump(result, f, indent=1)

        print()
        print("machine: " + mdbench.machine_line())
        print("load: %d req/s open loop (70%% of one local.m instance's %d req/s), "
              "%d cycles of 1->4->1 instances and local.m->local.l->local.m" % (
                  rate, cap, args.cycles))
        print("%-28s %s" % ("requests sent", r["sent"]))
        print("%-28s %s" % ("succeeded", r["succeeded"]))
        for k, v in r["failed"].items():
            print("%-28s %s" % ("failed: " + k, v))
        print("%-28s %s" % ("dropped (overload)", r["dropped_overload"]))
        print("%-28s %s" % ("unfinished", r["unfinished"]))
        print("%-28s %d/%d" % ("work requests succeeded",
                               sum(c["status"] == "SUCCEEDED" for c in changes), len(changes)))
        print("%-28s %.2f ms" % ("p99 overall", r["latency_us"]["p99"] / 1000.0))
        print("%-28s %-10s %-14s %s" % ("per-second p99", "seconds", "median", "worst"))
        for name, xs in (("  steady", sd), ("  transition", tr)):
            print("%-28s %-10d %-14s %s" % (name, len(xs),
                                             "%.2f ms" % pct(xs, 0.5) if xs else "-",
                                             "%.2f ms" % max(xs) if xs else "-"))
        ok = (r["failed_total"] == 0 and r["dropped_overload"] == 0 and
              result["allChangesSucceeded"] and r["sent"] >= args.min_requests)
        return 0 if ok else 1
    finally:
        stop.set()
        if load is not None:
            load.send_signal(signal.SIGINT)
            try:
                load.wait(timeout=10)
            except subprocess.TimeoutExpired:
                load.kill()
        d.cleanup()


if __name__ == "__main__":
    sys.exit(main())
