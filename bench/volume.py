#!/usr/bin/env python3
"""Hostile volume: POST /v1/metrics with N series (100,000 by default), each
with 16 dimensions whose values are 255 bytes and unique to the series (the
worst case for interning), 50 series a request, one datapoint each. Reports,
per build (BUILD, and --before OTHER_BUILD if given), the median of --runs:

- rss_idle_mb, rss_mb: the daemon's VmRSS before posting and after
  posting and a quiet period of --quiet seconds (long enough for the
  30 s snapshot of older builds);
- persisted_mb: the bytes of DATA/metrics.* at the end of that period (the
  snapshot of older builds, the log of newer ones);
- store_mb, bytes_per_series: what the store counts it holds, in all and
  per series (mdscale_metrics_store_bytes, _bytes_per_series; newer
  builds);
- max_stall_ms: the largest loop lag the daemon saw from the first post to
  the end of the quiet period, sampled from /metrics
  (mdscale_event_loop_lag_seconds) every 100 ms, also split into the
  posting and the quiet period, and its own maximum
  (mdscale_event_loop_lag_max_seconds) read at the end; on a loaded
  machine this includes the time the daemon waited for a CPU;
- turn_cpu_posting_ms, turn_cpu_ms: the longest loop turn in CPU time
  (mdscale_event_loop_turn_cpu_max_seconds, newer builds) by the end of
  the posting and of the quiet period: the loop's own work, without the
  waits for a CPU;
- startup_s: after SIGTERM, from exec to the first GET /v1/health answering
  200 on the same data directory; loaded_s: until the store is whole
  (mdscale_metrics_loading 0, for builds that read the log after
  answering); restart_max_stall_ms and restart_turn_cpu_ms: the largest
  loop lag and the longest turn in CPU time of the restarted daemon by
  then; and whether the N series came back.
- query_all_ms, query_refused_ms, query_turn_cpu_ms: a query over every
  series aggregated into one stream, the same query refused past 2,000
  streams, and the longest turn by then; alarms_turn_cpu_ms: the longest
  turn after five alarms over every series have run for 5 s;
- firing_base_turn_cpu_ms, firing_alarm_turn_cpu_ms, firing_streams: after
  another restart, the longest turn before and after one alarm over every
  series with one series in a hundred FIRING has run for 5 s (its passes
  look up every stream of the result among the tracked ones);
- turns, turns_over_10ms, turns_over_20ms: the loop turns of the three
  daemons of the run (until each was stopped or the run ended), in all and
  those over 10 and 20 ms of CPU (mdscale_event_loop_turn_cpu_seconds,
  newer builds). On a virtual machine, time the host takes the CPU away
  while the loop runs counts as CPU (the guest cannot tell): a rare turn
  of about 100 ms is the host's time slice, not the daemon's work.

Usage: bench/volume.py BUILD [--before BUILD] [--series N] [--runs N]
       [--quiet S]
Writes bench/results/volume.json."""
import argparse
import json
import os
import re
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mdbench  # noqa: E402

PER_REQUEST = 50
DIMS = 16
VALUE_BYTES = 255


def item(i, t):
    dims = {}
    for k in range(DIMS):
        v = "s%08d-d%02d-" % (i, k)
        dims["dim%02d" % k] = v + "x" * (VALUE_BYTES - len(v))
    return {"namespace": "bench_volume", "name": "Hostile",
            "dimensions": dims,
            "datapoints": [{"timestamp": t, "value": float(i % 100)}]}


def turn_counts(text):
    """From the turn histogram (newer builds): (turns, over 10 ms, over
    20 ms) of the daemon's life so far, or None."""
    b = {float(le): float(v) for le, v in re.findall(
        r'^mdscale_event_loop_turn_cpu_seconds_bucket\{le="([^"]+)"\} (\S+)$',
        text, re.M)}
    if not b:
        return None
    total = b[float("inf")]
    return total, total - b.get(0.01, total), total - b.get(0.02, total)


def add_turns(res, text):
    """Adds a daemon life's turn counts to res (turns, turns_over_10ms,
    turns_over_20ms)."""
    c = turn_counts(text)
    if c is None:
        return
    for k, v in zip(("turns", "turns_over_10ms", "turns_over_20ms"), c):
        res[k] = res.get(k, 0) + int(v)


def gauge(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


class LagWatch(threading.Thread):
    """Polls /metrics every 100 ms; keeps the largest loop lag seen."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d, self.max_s, self.stop_flag = d, 0.0, False
        self.phase, self.by_phase = "post", {}

    def run(self):
        while not self.stop_flag:
            try:
                st, text = self.d("GET", "/metrics", timeout=30)
                if st == 200:
                    if isinstance(text, bytes):
                        text = text.decode()
                    lag = gauge(text, "mdscale_event_loop_lag_seconds")
                    if lag is not None and lag > self.max_s:
                        self.max_s = lag
                    if lag is not None and lag > self.by_phase.get(
                            self.phase, 0):
                        self.by_phase[self.phase] = lag
            except OSError:
                pass
            time.sleep(0.1)


def persisted_bytes(data):
    return sum(os.path.getsize(os.path.join(data, n))
               for n in os.listdir(data) if n.startswith("metrics."))


def metrics_text(d):
    st, text = d("GET", "/metrics", timeout=60)
    return text.decode() if isinstance(text, bytes) else text


def one_run(build, n, quiet):
    d = mdbench.Daemon(build)
    d.start()
    try:
        time.sleep(1)
        res = {"rss_idle_mb": d.rss_kb() / 1024}
        watch = LagWatch(d)
        watch.start()
        t = int(time.time() * 1000)
        t0 = time.monotonic()
        for first in range(0, n, PER_REQUEST):
            body = {"metricData": [item(i, t) for i in
                                   range(first, min(n, first + PER_REQUEST))]}
            st, ans = d("POST", "/v1/metrics", body, timeout=60)
            if st != 200 or ans["failedMetricsCount"] != 0:
                raise RuntimeError("post %d: %s %s" % (first, st, ans))
        res["post_s"] = time.monotonic() - t0
        turn = gauge(metrics_text(d),
                     "mdscale_event_loop_turn_cpu_max_seconds")
        if turn is not None:
            res["turn_cpu_posting_ms"] = 1000 * turn
        watch.phase = "quiet"
        time.sleep(quiet)
        watch.stop_flag = True
        watch.join()
        text = metrics_text(d)
        res["rss_mb"] = d.rss_kb() / 1024
        res["persisted_mb"] = persisted_bytes(d.data_dir) / 1e6
        res["max_stall_ms"] = watch.max_s * 1000
        res["max_stall_posting_ms"] = 1000 * watch.by_phase.get("post", 0)
        res["max_stall_quiet_ms"] = 1000 * watch.by_phase.get("quiet", 0)
        res["max_stall_gauge_ms"] = 1000 * (gauge(
            text, "mdscale_event_loop_lag_max_seconds") or 0)
        store = gauge(text, "mdscale_metrics_store_bytes")
        if store is not None:
            res["store_mb"] = store / 1e6
        turn = gauge(text, "mdscale_event_loop_turn_cpu_max_seconds")
        if turn is not None:
            res["turn_cpu_ms"] = 1000 * turn
        per = gauge(text, "mdscale_metrics_bytes_per_series")
        if per is not None:
            res["bytes_per_series"] = per
        add_turns(res, text)
        if d.stop() != 0:
            raise RuntimeError("daemon did not stop cleanly")
        res["startup_s"] = d.start()
        t1 = time.monotonic()
        wait_loaded(d)
        res["loaded_s"] = res["startup_s"] + time.monotonic() - t1
        text = metrics_text(d)
        res["restart_max_stall_ms"] = 1000 * (gauge(
            text, "mdscale_event_loop_lag_max_seconds") or 0)
        turn = gauge(text, "mdscale_event_loop_turn_cpu_max_seconds")
        if turn is not None:
            res["restart_turn_cpu_ms"] = 1000 * turn
        # Every series in one query: aggregated (one stream returned), and
        # as it is (refused past OCI's 2,000 streams). Both evaluate all of
        # them; how long that holds the loop is reported apart.
        span = {"namespace": "bench_volume",
                "startTime": t - 60000, "endTime": t + 60000}
        t2 = time.monotonic()
        st, ans = d("POST", "/v1/metrics/query",
                    dict(span, query="Hostile[1m].grouping().count()"),
                    timeout=120)
        res["query_all_ms"] = 1000 * (time.monotonic() - t2)
        res["series_after_restart"] = (
            int(sum(p["value"] for it in ans["items"]
                    for p in it["aggregatedDatapoints"]))
            if st == 200 else -1)
        t2 = time.monotonic()
        st, ans = d("POST", "/v1/metrics/query",
                    dict(span, query="Hostile[1m].count()"), timeout=120)
        res["query_refused_ms"] = 1000 * (time.monotonic() - t2)
        if st != 400:
            raise RuntimeError("a query of every series: %s %s" % (st, ans))
        turn = gauge(metrics_text(d),
                     "mdscale_event_loop_turn_cpu_max_seconds")
        if turn is not None:
            res["query_turn_cpu_ms"] = 1000 * turn
        # Five alarms over every series, evaluated each second for 5 s:
        # a pass yields the loop between alarms once it has run 2 ms.
        st, topic = d("POST", "/v1/topics", {"name": "bench-volume"})
        if st != 201:
            raise RuntimeError("topic: %s %s" % (st, topic))
        alarm_ids = []
        for k in range(5):
            st, ans = d("POST", "/v1/alarms", {
                "displayName": "hostile%d" % k, "namespace": "bench_volume",
                "query": "Hostile[1m].max() > %d" % (10 ** 9 + k),
                "destinations": [topic.get("topicId") or topic["id"]]})
            if st != 201:
                raise RuntimeError("alarm: %s %s" % (st, ans))
            alarm_ids.append(ans["id"])
        time.sleep(5)
        text = metrics_text(d)
        turn = gauge(text, "mdscale_event_loop_turn_cpu_max_seconds")
        if turn is not None:
            res["alarms_turn_cpu_ms"] = 1000 * turn
        add_turns(res, text)
        firing_alarm(d, res, n, topic.get("topicId") or topic["id"],
                     alarm_ids)
        return res
    finally:
        d.cleanup()


def wait_loaded(d):
    """Newer builds answer at once and read the log in slices: waits until
    the store is whole (older builds load before answering)."""
    while gauge(metrics_text(d), "mdscale_metrics_loading"):
        time.sleep(0.05)


def firing_alarm(d, res, n, topic_id, others):
    """One alarm over every series (a 1 h window, so the posted points are
    in it) whose condition holds for the series of value 99, one in a
    hundred: those streams are tracked (PENDING, then FIRING) while every
    other stream of each evaluation is OK. The daemon is restarted first,
    with the other alarms deleted, so that its longest turn is this
    alarm's passes' (or the restart's, reported as firing_base_turn_cpu_ms);
    firing_alarm_turn_cpu_ms is read after the alarm has been FIRING for
    5 s, firing_streams is its totalMetricsFiring then."""
    for a in others:
        st, ans = d("DELETE", "/v1/alarms/" + a)
        if st not in (200, 204):
            raise RuntimeError("delete alarm: %s %s" % (st, ans))
    if d.stop() != 0:
        raise RuntimeError("daemon did not stop cleanly")
    d.start()
    wait_loaded(d)
    turn = gauge(metrics_text(d), "mdscale_event_loop_turn_cpu_max_seconds")
    if turn is not None:
        res["firing_base_turn_cpu_ms"] = 1000 * turn
    st, ans = d("POST", "/v1/alarms", {
        "displayName": "hostile-firing", "namespace": "bench_volume",
        "query": "Hostile[1h].max() > 98", "pendingDuration": "PT1S",
        "destinations": [topic_id]})
    if st != 201:
        raise RuntimeError("alarm: %s %s" % (st, ans))
    alarm_id = ans["id"]
    deadline = time.monotonic() + 120
    while True:
        st, s = d("GET", "/v1/alarms/%s/status" % alarm_id, timeout=60)
        if st == 200 and s["status"] == "FIRING" and \
                s["totalMetricsFiring"] >= n // 100:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the alarm did not fire: %s %s" % (st, s))
        time.sleep(0.2)
    time.sleep(5)
    st, s = d("GET", "/v1/alarms/%s/status" % alarm_id, timeout=60)
    res["firing_streams"] = s["totalMetricsFiring"] if st == 200 else -1
    text = metrics_text(d)
    turn = gauge(text, "mdscale_event_loop_turn_cpu_max_seconds")
    if turn is not None:
        res["firing_alarm_turn_cpu_ms"] = 1000 * turn
    add_turns(res, text)


def summarize(runs):
    keys = [k for k in runs[0] if isinstance(runs[0][k], (int, float))]
    return {k: round(statistics.median(r[k] for r in runs), 3)
            for k in keys}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--before")
    ap.add_argument("--series", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quiet", type=float, default=40)
    args = ap.parse_args()
    builds = [("after", args.build)]
    if args.before:
        builds.insert(0, ("before", args.before))
    out = {"machine": mdbench.machine(), "series": args.series,
           "dimensions": DIMS, "value_bytes": VALUE_BYTES}
    for label, build in builds:
        runs = []
        for k in range(args.runs):
            r = one_run(os.path.abspath(build), args.series, args.quiet)
            print("%s run %d: %s" % (label, k + 1, json.dumps(r)),
                  flush=True)
            runs.append(r)
        out[label] = {"runs": runs, "median": summarize(runs)}
        print("%s median: %s" % (label, json.dumps(out[label]["median"])),
              flush=True)
    os.makedirs(mdbench.RESULTS, exist_ok=True)
    with open(os.path.join(mdbench.RESULTS, "volume.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(mdbench.machine_line())


if __name__ == "__main__":
    main()
