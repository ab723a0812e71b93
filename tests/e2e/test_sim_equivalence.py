"""The simulator and the live daemon take the same decisions on the same
metric sequence.

A real daemon runs a real model server deployment under the `recipe`
autoscale profile (its windows and durations shortened to seconds, the
same in both). A fixed CpuUtilization sequence (a quiet start, a long
burst, then idle) is posted with PostMetricData (POST /v1/metrics), one
datapoint a second at its own timestamp; the daemon's alarms, notification
path and autoscale function act on it. The same sequence goes through
`mdscale simulate --metrics`, the same core code (core/alarm.c,
core/policy.c) on a virtual clock. Both must give the same moves, in the
same order, with the same counts, each within one evaluation period of the
other: the live evaluations run at their own phase within the second, so
a live move comes up to one period before the simulated one (whose
evaluations fall on the samples' times) and up to half a second after it
(the message's delivery).

The daemon samples its instances only once a minute here
(sampleIntervalMillis 60000), so that during the sequence the only
CpuUtilization of the deployment is the posted one; the test checks that.
The comparison is shown to fail on a simulator run whose pending duration
differs.
"""
import json
import os
import subprocess
import tempfile
import time
import unittest

import harness
from harness import BIN

EVAL_S = 1.0
SERIES = "equivalence-series"
# The recipe, with seconds instead of minutes so that a run takes ~40 s.
LIVE_POLICY = {
    "profile": "recipe", "maxInstances": 3,
    "highWindow": "5s", "highPendingDuration": "PT3S",
    "highRepeatDuration": "PT8S",
    "lowWindow": "5s", "lowPendingDuration": "PT3S",
    "lowRepeatDuration": "PT8S",
}
SIM_POLICY = """base = recipe
name = recipe-seconds
max = 3
highWindow = 5s
highPending = %s
highRepeat = PT8S
lowWindow = 5s
lowPending = PT3S
lowRepeat = PT8S
"""


def sequence():
    """CpuUtilization a second: 30 % for 3 s, 95 % for 17 s, 5 % for 20 s."""
    return [30.0] * 3 + [95.0] * 17 + [5.0] * 20


def compare(live, sim):
    """The differences between two lists of moves, [] when they agree:
    the same moves in the same order, each live one from one evaluation
    period before the simulated one to half a second after it."""
    problems = []
    if len(live) != len(sim):
        problems.append("%d live moves, %d simulated" % (len(live), len(sim)))
    for i, (a, b) in enumerate(zip(live, sim)):
        if (a["move"], a["from"], a["to"]) != (b["move"], b["from"], b["to"]):
            problems.append("move %d: live %s %d->%d, simulated %s %d->%d" % (
                i, a["move"], a["from"], a["to"], b["move"], b["from"],
                b["to"]))
        dt = a["seconds"] - b["seconds"]
        if not -EVAL_S - 0.1 <= dt <= 0.5:
            problems.append("move %d: live at %.3f s, simulated at %.3f s"
                            % (i, a["seconds"], b["seconds"]))
    return problems


class SimEquivalenceTest(unittest.TestCase):
    def setUp(self):
        self.d = harness.Daemon(config={
            "sampleIntervalMillis": 60000,
            "evalIntervalMillis": int(EVAL_S * 1000)}).start()
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.d.cleanup()
        self.tmp.cleanup()

    def simulate(self, values, pending):
        metrics = os.path.join(self.tmp.name, "metrics.csv")
        with open(metrics, "w") as f:
            f.write("seconds,cpu\n")
            for i, v in enumerate(values):
                f.write("%d,%g\n" % (i, v))
        policy = os.path.join(self.tmp.name, "p-%s.policy" % pending)
        with open(policy, "w") as f:
            f.write(SIM_POLICY % pending)
        p = subprocess.run(
            [BIN, "simulate", "--metrics", metrics, "--policy", policy,
             "--set", "evalMs=%d" % (EVAL_S * 1000), "--output", "json"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)["decisions"]

    def post(self, dep_id, t_ms, value):
        r = self.d.api("POST", "/v1/metrics", {"metricData": [{
            "namespace": "oci_datascience_modeldeploy",
            "name": "CpuUtilization",
            "dimensions": {"resourceId": dep_id, "instanceId": SERIES},
            "datapoints": [{"timestamp": t_ms, "value": value}]}]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["failedMetricsCount"], 0, r.json)

    def live_moves(self, dep_id, t0):
        items = self.d.api("GET", "/v1/deployments/%s/scaling-history"
                           % dep_id).json["items"]
        moves = []
        for h in items:
            if h["action"] not in ("SCALE_OUT", "SCALE_IN"):
                continue
            moves.append({"seconds": rfc3339_s(h["time"]) - t0,
                          "move": h["action"],
                          "from": h["from"]["instanceCount"],
                          "to": h["to"]["instanceCount"],
                          "alarm": h["alarmTitle"],
                          "type": h["messageType"]})
        return moves

    def only_posted_cpu(self, dep_id):
        r = self.d.api("POST", "/v1/metrics/query", {
            "query": 'CpuUtilization[1m]{resourceId = "%s"}.max()' % dep_id})
        self.assertEqual(r.status, 200, r)
        return sorted({i["dimensions"].get("instanceId")
                       for i in r.json["items"]})

    def test_same_moves_on_the_same_sequence(self):
        dep = self.d.create(displayName="equiv", autoscale=LIVE_POLICY)
        self.d.wait_state(dep["id"], "ACTIVE")
        values = sequence()
        sim = self.simulate(values, "PT3S")
        self.assertEqual([m["move"] for m in sim],
                         ["SCALE_OUT", "SCALE_OUT", "SCALE_IN", "SCALE_IN"],
                         sim)
        # Each datapoint is posted just before its own timestamp, so an
        # evaluation sees it from that time on, as the simulator does.
        t0 = int(time.time()) + 1.0
        for i, v in enumerate(values):
            wait = t0 + i - 0.2 - time.time()
            if wait > 0:
                time.sleep(wait)
            self.post(dep["id"], int((t0 + i) * 1000), v)
        time.sleep(t0 + len(values) - 1 + EVAL_S + 0.5 - time.time())
        self.assertEqual(self.only_posted_cpu(dep["id"]), [SERIES],
                         "the daemon sampled the instances during the run")
        live = self.live_moves(dep["id"], t0)
        # Only the moves decided while the sequence lasted.
        live = [m for m in live if m["seconds"] <= len(values) - 1 + EVAL_S]
        print("\nlive:      %s\nsimulated: %s" % (
            [(round(m["seconds"], 2), m["move"], m["from"], m["to"])
             for m in live],
            [(m["seconds"], m["move"], m["from"], m["to"]) for m in sim]))
        problems = compare(live, sim)
        self.assertEqual(problems, [], "live %s\nsimulated %s" % (live, sim))
        for a, b in zip(live, sim):
            self.assertEqual((a["alarm"], a["type"]), (b["alarm"], b["type"]))
        # The comparison can fail: a simulator whose high alarm waits 6 s
        # instead of 3 s before firing disagrees with the same live run.
        other = self.simulate(values, "PT6S")
        self.assertNotEqual(compare(live, other), [])


class SimulateMetricsInputTest(unittest.TestCase):
    """`mdscale simulate --metrics`: bad input is one line, exit 1."""

    def test_bad_sequences_and_policies(self):
        with tempfile.TemporaryDirectory() as d:
            def write(name, text):
                path = os.path.join(d, name)
                with open(path, "w") as f:
                    f.write(text)
                return path
            cases = [
                (write("x.csv", "0,1\n1,x\n"), "recipe",
                 "line 2, column 3: a CPU utilization must be a number"),
                (write("back.csv", "2,1\n1,1\n"), "recipe",
                 "line 2, column 1: the time goes backwards"),
                (write("big.csv", "0,1001\n"), "recipe",
                 "line 1, column 3: a CPU utilization must be from 0"),
                (write("ok.csv", "0,1\n"), "hpa", "not an alarm policy"),
            ]
            for path, policy, want in cases:
                p = subprocess.run(
                    [BIN, "simulate", "--metrics", path, "--policy", policy],
                    capture_output=True, text=True, timeout=60)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertEqual(p.stdout, "")
                self.assertEqual(len(p.stderr.strip().split("\n")), 1)
                self.assertIn(want, p.stderr)


def rfc3339_s(v):
    """Seconds since the epoch of an RFC 3339 time, or of milliseconds."""
    if isinstance(v, (int, float)):
        return v / 1000.0
    from datetime import datetime
    return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()


if __name__ == "__main__":
    unittest.main()
