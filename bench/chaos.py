#!/usr/bin/env python3
"""Chaos: under open-loop load through the gateway, one deployment scales and
changes shape while the daemon is SIGKILLed at random moments (during work
requests, during an instance's restart backoff, during recovery itself) and
instances are SIGKILLed at random. Then it checks what must hold:

  lost     acknowledged changes (202) whose work request is gone, or whose
           SUCCEEDED target is not what the deployment ends with
  stuck    work requests not SUCCEEDED or FAILED 120 s after the last kill
  orphans  instance processes still alive, and instance cgroups left, after
           the deployment is deleted and the daemon stopped

and reports the requests that failed while the daemon was up (sent and
answered between a start and the next kill) and the downtime per crash
(SIGKILL to the API answering /v1/health again).

usage: bench/chaos.py [--build build] [--kills 100] [--rate 100] [--seed N]
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import mdbench
import harness


class OpenLoad:
    """Sends POST predictions at a fixed rate whatever the answers take,
    recording (sent, answered, ok) per request."""

    def __init__(self, port, path, rate):
        self.port, self.path, self.rate = port, path, rate
        self.body = json.dumps({"instances": [harness.digits_rows(1)[0][0]]})
        self.results = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.pool = concurrent.futures.ThreadPoolExecutor(32)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join()
        self.pool.shutdown(wait=True)

    def _one(self, t0):
        cause = None
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            c.request("POST", self.path, body=self.body,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                cause = "%d %s" % (r.status, body[:60].decode("utf-8",
                                                              "replace"))
            c.close()
        except (OSError, http.client.HTTPException) as e:
            cause = type(e).__name__
        with self.lock:
            self.results.append((t0, time.monotonic(), cause))

    def _run(self):
        t = time.monotonic()
        while not self.stopping.is_set():
            t += 1.0 / self.rate
            delay = t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.pool.submit(self._one, time.monotonic())


def cgroups_of(data_dir):
    ids = set()
    inst_dir = os.path.join(data_dir, "instances")
    if os.path.isdir(inst_dir):
        ids = {n.split(".")[0] for n in os.listdir(inst_dir)}
    left = []
    for ctl in ("cpu", "cpuacct", "memory", "unified", ""):
        base = os.path.join("/sys/fs/cgroup", ctl, "mdscale")
        left += [os.path.join(base, i) for i in ids
                 if os.path.isdir(os.path.join(base, i))]
    return left


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie is dead
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Chaos:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.data = tempfile.mkdtemp(prefix="mdscale-chaos-")
        self.ports = (harness.free_port(), harness.free_port())
        self.binary = os.path.join(args.build, "src", "mdscale")
        self.d = None
        self.pids = set()
        self.acked = []          # (wr id, count, shape)
        self.up = []             # [start, end] intervals the daemon was up
        self.downtime = []
        self.events = []         # (time, what): the last one before a
        #                          failure names its likely cause
        self.kills = {"daemon": 0, "recovery": 0, "backoff": 0,
                      "instance": 0}

    def daemon(self):
        d = harness.Daemon(data_dir=self.data, binary=self.binary,
                           log_level="info")
        d.owns_dir = False
        d.log_path = os.path.join(self.data, "daemon.log")
        d.api_port, d.gw_port = self.ports
        return d

    def api(self, method, path, body=None):
        try:
            return self.d.api(method, path, body, timeout=5)
        except OSError:
            return None

    def note_pids(self):
        self.pids.update(self.d.instance_pids())

    def kill_daemon(self):
        self.note_pids()
        self.up[-1][1] = time.monotonic()
        t0 = time.monotonic()
        self.d.kill()
        self.kills["daemon"] += 1
        # Sometimes during recovery itself: a new daemon killed before it
        # answers.
        while self.rng.random() < 0.3:
            d = self.daemon()
            d.log = open(d.log_path, "ab")
            d.proc = subprocess.Popen(
                [d.binary, "serve", "--listen", "127.0.0.1:%d" % d.api_port,
                 "--gateway", "127.0.0.1:%d" % d.gw_port, "--data",
                 d.data_dir, "--log-level", "info"],
                stdout=d.log, stderr=subprocess.STDOUT)
            time.sleep(self.rng.uniform(0.0, 0.03))
            d.kill()
            self.kills["recovery"] += 1
        self.d = self.daemon().start()
        self.downtime.append(time.monotonic() - t0)
        self.up.append([time.monotonic(), None])
        self.events.append((time.monotonic(), "daemon restarted"))

    def change(self):
        body = {"instanceCount": self.rng.randint(2, 4)}
        if self.rng.random() < 0.4:
            body = {"instanceShapeName": self.rng.choice(
                ["local.xs", "local.s"])}
        r = self.api("PUT", "/v1/deployments/" + self.dep, body)
        if r is not None and r.status == 202:
            self.events.append((time.monotonic(), "change accepted"))
            self.acked.append((r.json["id"], r.json["to"]["instanceCount"],
                               r.json["to"]["instanceShapeName"]))

    def kill_instance(self):
        pids = self.d.instance_pids()
        if pids:
            try:
                os.kill(self.rng.choice(pids), signal.SIGKILL)
                self.kills["instance"] += 1
                self.events.append((time.monotonic(), "instance killed"))
            except OSError:
                pass

    def settle(self):
        """Waits (up to 20 s) for the deployment to be ACTIVE, so that the
        next change is accepted rather than refused as busy."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = self.api("GET", "/v1/deployments/" + self.dep)
            if r is not None and r.status == 200 and \
                    r.json["lifecycleState"] == "ACTIVE":
                return
            time.sleep(0.1)

    def round(self):
        if self.rng.random() < 0.5:
            self.settle()
        self.change()
        self.note_pids()
        if self.rng.random() < 0.5:
            self.kill_instance()
        if self.rng.random() < 0.3:
            # An instance killed, the daemon killed inside its backoff.
            time.sleep(self.rng.uniform(0.2, 0.6))
            self.kill_instance()
            time.sleep(self.rng.uniform(0.05, 0.2))
            self.kills["backoff"] += 1
        else:
            time.sleep(self.rng.uniform(0.0, 3.0))
        self.kill_daemon()

    def run(self):
        self.d = self.daemon().start()
        self.up.append([time.monotonic(), None])
        self.dep = self.d.create(
            displayName="chaos", instanceCount=2,
            command=mdbench.model_command(self.args.build) +
            " --load-delay-ms 300")["id"]
        self.d.wait_state(self.dep, "ACTIVE")
        load = OpenLoad(self.ports[1], "/chaos/predict", self.args.rate)
        load.start()
        t_start = time.monotonic()
        while self.kills["daemon"] < self.args.kills:
            self.round()
        # Settle: every acknowledged work request ends.
        stuck = []
        deadline = time.monotonic() + 120
        for wr, _, _ in self.acked:
            while True:
                r = self.api("GET", "/v1/workrequests/" + wr)
                if r is not None and (r.status == 404 or r.json["status"] in
                                      ("SUCCEEDED", "FAILED")):
                    break
                if time.monotonic() > deadline:
                    stuck.append(wr)
                    break
                time.sleep(0.2)
        time.sleep(3)
        load.stop()
        self.up[-1][1] = time.monotonic()
        elapsed = time.monotonic() - t_start
        # Lost: a work request gone, or the last SUCCEEDED target not held.
        lost = []
        last_ok = None
        for wr, n, shape in self.acked:
            r = self.api("GET", "/v1/workrequests/" + wr)
            if r is None or r.status != 200:
                lost.append(wr)
            elif r.json["status"] == "SUCCEEDED":
                last_ok = (wr, n, shape)
        dep = self.d.get(self.dep)
        ready = [i for i in dep["instances"] if i["state"] == "READY"]
        if last_ok and (dep["instanceCount"], dep["instanceShapeName"]) != \
                last_ok[1:]:
            lost.append(last_ok[0])
        capacity_ok = (len(ready) == dep["instanceCount"] and
                       all(i["instanceShapeName"] == dep["instanceShapeName"]
                           for i in ready))
        # Orphans: after the delete and a stop, nothing of it runs.
        self.note_pids()
        self.d.delete(self.dep)
        self.d.stop()
        time.sleep(1)
        orphan_pids = sorted(p for p in self.pids if alive(p))
        orphan_cgroups = cgroups_of(self.data)
        causes, after = {}, {}
        for t0, t1, cause in load.results:
            if cause and any(a <= t0 and t1 <= b for a, b in self.up):
                causes[cause] = causes.get(cause, 0) + 1
                last = [(t, w) for t, w in self.events if t <= t0]
                kills = [t for t, w in last if w == "instance killed"]
                if kills and t0 - kills[-1] < 5:
                    k = "within 5 s of an instance kill"
                else:
                    k = last[-1][1] if last else "start"
                after[k] = after.get(k, 0) + 1
        failed_up = sum(causes.values())
        sent = len(load.results)
        dt = sorted(self.downtime)
        report = {
            "command": " ".join(sys.argv),
            "seconds": round(elapsed, 1),
            "kills": self.kills,
            "changesAcknowledged": len(self.acked),
            "lost": lost, "stuck": stuck,
            "orphanProcesses": orphan_pids, "orphanCgroups": orphan_cgroups,
            "finalCapacityHeld": capacity_ok,
            "requests": sent,
            "failedWhileUp": failed_up,
            "failedWhileUpBy": causes,
            "failedWhileUpAfter": after,
            "downtimeMs": {"median": round(statistics.median(dt) * 1000),
                           "p95": round(dt[int(len(dt) * 0.95) - 1] * 1000),
                           "max": round(dt[-1] * 1000)},
        }
        print(json.dumps(report, indent=2))
        bad = lost or stuck or orphan_pids or orphan_cgroups or \
            not capacity_ok
        if not bad:
            harness.sweep_cgroups(self.data)
            subprocess.run(["rm", "-rf", self.data])
        else:
            print("data directory kept: " + self.data, file=sys.stderr)
        return 1 if bad else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default=os.path.join(mdbench.TOP, "build"))
    p.add_argument("--kills", type=int, default=100)
    p.add_argument("--rate", type=int, default=100)
    p.add_argument("--seed", type=int, default=int(time.time()))
    args = p.parse_args()
    harness.MODEL_SERVER = os.path.join(
        args.build, "examples", "model-server", "mdscale-model-server")
    c = Chaos(args)
    try:
        return c.run()
    finally:
        if c.d is not None and c.d.proc is not None and \
                c.d.proc.poll() is None:
            c.d.stop()
        harness.sweep_cgroups(c.data)


if __name__ == "__main__":
    sys.exit(main())
