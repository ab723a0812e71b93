#!/usr/bin/env python3
"""Reaction time of autoscaling, measured: from a load step that saturates
one instance to the first request served by a new instance, with the
default profile and with the recipe's, on this machine in one run.

For each profile: a fresh daemon, one deployment of the example model
server on the smallest shape (a quarter of a CPU) created with that
autoscale profile, an idle period, then `mdscale load` at a rate well above
what one instance serves. The clock starts when the load starts. We watch
the deployment through the API and the new instance's own /stats (the
model server counts the requests it served): the first request served by
an instance that was not there before stops the clock. Also reported: when
the autoscale function decided (its scaling history) and when the new
instance was ready.

Usage: bench/reaction.py BUILD [--idle SECONDS] [--rate R] [--profiles a,b]
Writes bench/results/reaction.json."""
import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def call(port, method, path, body=None, token=None, timeout=5):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None,
                     headers)
        r = conn.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None
    finally:
        conn.close()


def one_profile(build, profile, idle, rate, limit):
    data = tempfile.mkdtemp(prefix="mdscale-reaction-")
    api, gw = free_port(), free_port()
    log = open(os.path.join(data, "daemon.log"), "wb")
    daemon = subprocess.Popen([os.path.join(build, "src", "mdscale"), "serve",
                               "--listen", "127.0.0.1:%d" % api,
                               "--gateway", "127.0.0.1:%d" % gw, "--data", data],
                              stdout=log, stderr=subprocess.STDOUT)
    load = None
    try:
        for _ in range(300):
            try:
                if call(api, "GET", "/v1/health")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        token = open(os.path.join(data, "token")).read().strip()
        # --cache-entries 0: every request repeats one digit, which the
        # model server's response cache would answer without the model.
        cmd = "exec %s --weights %s --port $PORT --cache-entries 0" % (
            os.path.join(build, "examples", "model-server", "mdscale-model-server"),
            os.path.join(TOP, "examples", "model-server", "digits-mlp.weights"))
        st, dep = call(api, "POST", "/v1/deployments", {
            "displayName": "react", "command": cmd, "instanceShapeName": "local.xs",
            "instanceCount": 1, "autoscale": {"profile": profile}}, token)
        if st != 201:
            raise RuntimeError("create: %s %s" % (st, dep))
        dep_id = dep["id"]
        while call(api, "GET", "/v1/deployments/" + dep_id)[1]["lifecycleState"] != "ACTIVE":
            time.sleep(0.1)
        before = {i["id"] for i in call(api, "GET", "/v1/deployments/" + dep_id)[1]["instances"]}
        time.sleep(idle)
        import gzip
        row = gzip.open(DIGITS, "rt").readline().strip().rsplit(",", 1)[0]
        body = os.path.join(data, "body.json")
        with open(body, "w") as f:
            f.write('{"instances": [[%s]]}' % row)
        t0 = time.monotonic()
        wall0 = time.time()
        load = subprocess.Popen([os.path.join(build, "src", "mdscale"), "load",
                                 "--url", "http://127.0.0.1:%d/react/predict" % gw,
                                 "--method", "POST", "--body", body,
                                 "--header", "Content-Type: application/json",
                                 "--rate", str(rate), "--duration", str(limit),
                                 "--output", "json"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        ready_at = served_at = None
        new_port = None
        while time.monotonic() - t0 < limit:
            d = call(api, "GET", "/v1/deployments/" + dep_id)[1]
            for i in d["instances"]:
                if i["id"] in before or i["state"] != "READY":
                    continue
                if ready_at is None:
                    ready_at = time.monotonic() - t0
                    new_port = i["port"]
            if new_port is not None:
                try:
                    st, stats = call(new_port, "GET", "/stats", timeout=1)
                    if st == 200 and stats.get("requests", 0) > 0:
                        served_at = time.monotonic() - t0
                        break
                except OSError:
                    pass
            time.sleep(0.05)
        hist = call(api, "GET", "/v1/deployments/%s/scaling-history" % dep_id)[1]["items"]
        decided = [h for h in hist if h["action"] == "SCALE_OUT"]
        decided_at = (decided[0]["time"] / 1000.0 - wall0) if decided else None
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
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def fmt(x):
    return "%.2f s" % x if x is not None else "-"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--idle", type=float, default=30)
    ap.add_argument("--rate", type=int, default=900)
    ap.add_argument("--profiles", default="default,recipe")
    ap.add_argument("--runs", type=int, default=3,
                    help="runs of the default profile (the recipe's runs once)")
    args = ap.parse_args()
    results = []
    for profile in args.profiles.split(","):
        runs = args.runs if profile == "default" else 1
        limit = 60 if profile == "default" else 600
        for _ in range(runs):
            r = one_profile(os.path.abspath(args.build), profile, args.idle,
                            args.rate, limit)
            print("  %-8s decision %-9s ready %-9s first served %s" % (
                profile, fmt(r["decisionSeconds"]), fmt(r["readySeconds"]),
                fmt(r["firstServedSeconds"])), flush=True)
            results.append(r)
    print()
    print("machine: %s, %d CPUs, %s" % (platform.platform(), os.cpu_count(),
                                        platform.processor() or platform.machine()))
    print("load step: %d req/s of one digit, open loop, after %.0f s idle; one "
          "instance of local.xs (0.25 CPU), cache off, serves 300-400/s" % (args.rate, args.idle))
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
    os.makedirs(os.path.join(TOP, "bench", "results"), exist_ok=True)
    with open(os.path.join(TOP, "bench", "results", "reaction.json"), "w") as f:
        json.dump(results, f, indent=2)
    return 0 if all(r["firstServedSeconds"] is not None for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
