#!/usr/bin/env python3
"""Scale to zero, measured on the real daemon and the example model server:
the cold-start latency of the first request to a deployment at zero (p50 and
p99 over N cold starts), and what a deployment at zero costs while idle (the
daemon's memory and CPU over an idle period; no instance process runs).

    MDSCALE_BIN=... MODEL_SERVER=... MODEL_WEIGHTS=... bench/coldstart.py [N]
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "e2e"))
from harness import Daemon, digits_rows, wait_for  # noqa: E402


def proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    ticks = int(v[11]) + int(v[12])  # utime + stime
    with open("/proc/%d/status" % pid) as f:
        rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]
    return ticks / os.sysconf("SC_CLK_TCK"), rss


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    d = Daemon(log_level="info").start()
    try:
        dep = d.create(displayName="cold", instanceCount=0)
        dep_id = dep["id"]
        d.wait_state(dep_id, "ACTIVE")
        body = {"instances": [r for r, _ in digits_rows(1)]}

        def at_zero():
            x = d.get(dep_id)
            return (x["lifecycleState"] == "ACTIVE" and
                    x["instanceCount"] == 0 and
                    all(i["state"] == "STOPPED" for i in x["instances"]))
        wait_for("at zero", at_zero)
        time.sleep(2)
        cpu0, rss0 = proc_stat(d.proc.pid)
        time.sleep(10)
        cpu1, rss1 = proc_stat(d.proc.pid)
        print("idle at zero: daemon RSS %d KiB, CPU %.2f%% of a core over "
              "10 s; instance processes: %d" % (
                  rss1, 100.0 * (cpu1 - cpu0) / 10.0,
                  len(d.instance_pids())))
        lat = []
        for k in range(n):
            wait_for("at zero", at_zero)
            t0 = time.monotonic()
            r = d.gw("POST", "/cold/predict", body, timeout=60)
            lat.append((time.monotonic() - t0) * 1000)
            assert r.status == 200, r
            # The wake's work request ends after the first answer.
            d.wait_state(dep_id, "ACTIVE")
            r = d.api("PUT", "/v1/deployments/" + dep_id,
                      {"instanceCount": 0})
            assert r.status == 202, r
            d.wait_wr(r.json["id"])
        print("cold start, first request, %d runs: p50 %.1f ms, p99 %.1f "
              "ms, min %.1f, max %.1f" % (n, pct(lat, 50), pct(lat, 99),
                                          min(lat), max(lat)))
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
