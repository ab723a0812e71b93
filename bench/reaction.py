#!/usr/bin/env python3
"""Reaction time of autoscaling, measured: from a load step that saturates
one instance to the first request served by a new instance, with the
mdscale profile (the daemon's rule on the gateway's load, every second),
the default profile (CPU alarms on 2-second windows) and the recipe's, on
this machine in one run. The issue's target: the mdscale profile's median
of 5 runs at most 2 s, against 3.8 s for the default profile.

For each profile: a fresh daemon, one deployment of the example model
server on the smallest shape (a quarter of a CPU) created with that
autoscale profile, an idle period, then `mdscale load` at a rate well above
what one instance serves, over connections enough (500) that the step
reaches the gateway as it is sent rather than waiting in the client. The
clock starts when the load starts. We watch
the deployment through the API and the new instance's own /stats (the
model server counts the requests it served): the first request served by
an instance that was not there before stops the clock. Also reported: when
the autoscale function decided (its scaling history) and when the new
instance was ready.

Usage: bench/reaction.py BUILD [--idle SECONDS] [--rate R] [--runs N]
                         [--connections C] [--profiles mdscale,default]
                         [--policy JSON]
Each profile but the recipe's runs N times (5); the recipe's once.
Writes bench/results/reaction.json."""
import argparse
import calendar
import json
import os
import platform
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mdbench  # noqa: E402


def new_instance(d, dep_id, before):
    """The port of a READY instance that was not in BEFORE, or None."""
    for i in d("GET", "/v1/deployments/" + dep_id)[1]["instances"]:
        if i["id"] not in before and i["state"] == "READY":
            return i["port"]
    return None


def has_served(port):
    """Whether the model server on PORT has answered a request."""
    try:
        st, stats = mdbench.call(port, "GET", "/stats", timeout=1)
        return st == 200 and stats.get("requests", 0) > 0
    except OSError:
        return False


def epoch(rfc3339):
    """Seconds since the epoch of the history's RFC 3339 UTC time
    (2026-12-06T23:20:57.218Z)."""
    whole, _, frac = rfc3339.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + \
        float("0." + (frac or "0"))


def one_profile(build, profile, idle, rate, limit, overrides=None,
                connections=None):
    d = mdbench.Daemon(build)
    load = None
    try:
        d.start()
        # The model server's response cache is off (mdbench.model_command):
        # every request repeats one digit.
        st, dep = d("POST", "/v1/deployments", {
            "displayName": "react", "command": mdbench.model_command(build),
            "instanceShapeName": "local.xs", "instanceCount": 1,
            "autoscale": dict(overrides or {}, profile=profile)})
        if st != 201:
            raise RuntimeError("create: %s %s" % (st, dep))
        dep_id = dep["id"]
        before = {i["id"] for i in d.wait_deployment(dep_id)["instances"]}
        time.sleep(idle)
        body = mdbench.model_body(d.data_dir)
        t0 = time.monotonic()
        wall0 = time.time()
        load = subprocess.Popen(
            mdbench.load_argv(build,
                              "http://127.0.0.1:%d/react/predict" % d.gw_port,
                              body, rate, limit, connections=connections),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        ready_at = served_at = None
        new_port = None
        while time.monotonic() - t0 < limit:
            if new_port is None:
                new_port = new_instance(d, dep_id, before)
                if new_port is not None:
                    ready_at = time.monotonic() - t0
            if new_port is not None and has_served(new_port):
                served_at = time.monotonic() - t0
                break
            time.sleep(0.05)
        hist = d("GET", "/v1/deployments/%s/scaling-history" % dep_id)[1]["items"]
        decided = [h for h in hist if h["action"] == "SCALE_OUT"]
        decided_at = (epoch(decided[0]["time"]) - wall0) if decided else None
        return {"profile": profile, "idleSeconds": idle, "rate": rate,
                "decisionSeconds": decided_at, "readySeconds": ready_at,
                "firstServedSeconds": served_at,
                "note": None if served_at is not None
                else "no new instance served within %d s" % limit}
    finally:
        if load is not None:
            load.send_signal(signal.SIGINT)
            try:
                load.wait(timeout=10)
            except subprocess.TimeoutExpired:
                load.kill()
        d.cleanup()


def fmt(x):
    return "%.2f s" % x if x is not None else "-"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--idle", type=float, default=30)
    ap.add_argument("--rate", type=int, default=900)
    ap.add_argument("--profiles", default="mdscale,default")
    ap.add_argument("--policy", type=json.loads, default={},
                    help="policy fields over each profile's, as JSON "
                    "('{\"upWindowSeconds\": 1}')")
    ap.add_argument("--connections", type=int, default=500,
                    help="the load's connections: enough that the step's "
                    "requests reach the gateway as they are sent (open "
                    "loop) rather than wait in the client (64 is `mdscale "
                    "load`'s default: a closed loop once one instance is "
                    "saturated); the gateway takes 512 from one address")
    ap.add_argument("--runs", type=int, default=5,
                    help="runs of each profile (the recipe's runs once)")
    args = ap.parse_args()
    results = []
    for profile in args.profiles.split(","):
        runs = args.runs if profile != "recipe" else 1
        limit = 60 if profile != "recipe" else 600
        for _ in range(runs):
            r = one_profile(os.path.abspath(args.build), profile, args.idle,
                            args.rate, limit, args.policy, args.connections)
            r["policy"] = args.policy
            r["connections"] = args.connections
            print("  %-8s decision %-9s ready %-9s first served %s" % (
                profile, fmt(r["decisionSeconds"]), fmt(r["readySeconds"]),
                fmt(r["firstServedSeconds"])), flush=True)
            results.append(r)
    print()
    print("machine: %s, %d CPUs, %s" % (platform.platform(), os.cpu_count(),
                                        platform.processor() or platform.machine()))
    print("load step: %d req/s of one digit, open loop over %d connections, "
          "after %.0f s idle; one instance of local.xs (0.25 CPU), cache off, "
          "serves 300-400/s" % (args.rate, args.connections, args.idle))
    print("%-8s %6s %14s %14s %18s" % ("profile", "runs", "decision", "ready",
                                       "first served"))
    for profile in args.profiles.split(","):
        rs = [r for r in results if r["profile"] == profile]

        def med(key):
            xs = sorted(r[key] for r in rs if r[key] is not None)
            return xs[len(xs) // 2] if xs else None
        print("%-8s %6d %14s %14s %18s" % (profile, len(rs), fmt(med("decisionSeconds")),
                                           fmt(med("readySeconds")),
                                           fmt(med("firstServedSeconds"))))
        if profile == "mdscale" and med("firstServedSeconds") is not None:
            print("%-8s target: first served within 2 s (median): %s" % (
                "", "met" if med("firstServedSeconds") <= 2.0 else "NOT met"))
    os.makedirs(mdbench.RESULTS, exist_ok=True)
    with open(os.path.join(mdbench.RESULTS, "reaction.json"), "w") as f:
        json.dump(results, f, indent=2)
    return 0 if all(r["firstServedSeconds"] is not None for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
