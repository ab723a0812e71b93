"""`mdscale load --schedule TRACE`: a recorded trace replayed open-loop
through the real daemon's gateway to a real model server deployment.

The traces are made here in the formats `mdscale simulate` reads. The
requests' due times are fixed by the trace, so the per-second counts of
sent requests are checked exactly; each request's cost reaches the model
server as its number of instances, checked against the server's own count
of inferences (its cache is off, so every instance is one inference).
"""
import json
import os
import subprocess
import tempfile
import unittest

import harness
from harness import BIN


def write(d, name, text):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


class LoadTraceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = harness.Daemon().start()
        cls.dep = cls.d.create(displayName="replay",
                               command=harness.model_command(
                                   "--cache-entries 0"))
        cls.d.wait_state(cls.dep["id"], "ACTIVE")
        cls.url = "http://127.0.0.1:%d/replay/predict" % cls.d.gw_port
        cls.tmp = tempfile.TemporaryDirectory()
        cls.body = write(cls.tmp.name, "body.json", json.dumps(
            {"instances": [harness.digits_rows(1)[0][0]]}))

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.tmp.cleanup()

    def load(self, *args):
        return subprocess.run(
            [BIN, "load", "--url", self.url, "--method", "POST",
             "--header", "Content-Type: application/json",
             "--body", self.body, *args],
            capture_output=True, text=True, timeout=120)

    def inferences(self):
        """The model server's count of instances computed (cache misses)."""
        inst = self.d.get(self.dep["id"])["instances"]
        self.assertEqual(len(inst), 1)
        r = harness.request(inst[0]["port"], "GET", "/stats")
        self.assertEqual(r.status, 200)
        return r.json["cache_misses"]

    def test_times_trace_with_costs_is_replayed_at_its_due_times(self):
        # 3 s of arrivals: 5, then 20, then 8 requests, with costs.
        lines, costs = ["seconds,cost"], []
        for sec, n in enumerate((5, 20, 8)):
            for i in range(n):
                c = (0.5, 1, 2, 3.5)[i % 4]
                costs.append(c)
                lines.append("%.4f,%g" % (sec + i / n, c))
        trace = write(self.tmp.name, "times.csv", "\n".join(lines) + "\n")
        before = self.inferences()
        p = self.load("--schedule", trace, "--cost-instances", "2",
                      "--output", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["trace"]["format"], "times")
        self.assertEqual(out["trace"]["requests"], 33)
        self.assertEqual(out["trace"]["cost"], "instances")
        self.assertEqual(out["sent"], 33)
        self.assertEqual(out["succeeded"], 33, out)
        self.assertEqual([s["sent"] for s in out["seconds"]][:3], [5, 20, 8])
        # Cost x 2 instances a request, at least one: the mean is kept
        # (sum of cost x 2 = 133) within the rounding of each request.
        n = out["trace"]["instances"]
        self.assertLessEqual(abs(n - sum(c * 2 for c in costs)), 33)
        self.assertGreater(n, 33)
        self.assertEqual(self.inferences() - before, n)

    def test_azure_trace_compressed_and_sliced(self):
        # 40 requests one a second in the Azure format; compressed 4x they
        # play in 10 s, and the slice [2 s, 5 s) holds 12 of them.
        rows = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
        for i in range(40):
            rows.append("2023-11-16 18:15:%02d.0000000,%d,%d"
                        % (i, 100 + i, 10))
        trace = write(self.tmp.name, "azure.csv", "\n".join(rows) + "\n")
        before = self.inferences()
        p = self.load("--schedule", trace, "--compress", "4",
                      "--start", "2", "--duration", "3", "--output", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["trace"]["format"], "azure")
        self.assertEqual(out["trace"]["records"], 40)
        self.assertEqual(out["trace"]["requests"], 12)
        self.assertEqual(out["trace"]["cost"], "ignored")
        self.assertEqual(out["schedule_s"], 3)
        self.assertEqual(out["succeeded"], 12, out)
        self.assertEqual([s["sent"] for s in out["seconds"]][:3], [4, 4, 4])
        self.assertEqual(self.inferences() - before, 12)

    def test_rates_trace(self):
        trace = write(self.tmp.name, "rates.csv", "rate\n3\n0\n6\n")
        p = self.load("--schedule", trace, "--output", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["trace"]["format"], "rates")
        self.assertEqual([s["sent"] for s in out["seconds"]][:3], [3, 0, 6])

    def test_bad_traces_are_one_line_errors_as_simulate_prints_them(self):
        cases = {
            "back.csv": ("0\n1\n0.5\n", "line 3, column 1: "),
            "neg.csv": ("rate\n2\n-1\n", "line 3, column 1: "),
            "cost.csv": ("0,1\n1,-2\n", "line 2, column 3: "),
        }
        before = self.inferences()
        for name, (text, where) in cases.items():
            path = write(self.tmp.name, name, text)
            p = self.load("--schedule", path)
            sim = subprocess.run([BIN, "simulate", "--trace", path],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 1, (name, p.stderr))
            self.assertEqual(p.stdout, "")
            lines = p.stderr.strip().split("\n")
            self.assertEqual(len(lines), 1, p.stderr)
            self.assertIn(where, lines[0])
            # The same words as the simulator's, after the option's name.
            self.assertEqual(lines[0].split(": ", 2)[2],
                             sim.stderr.strip().split(": ", 2)[2])
        back = os.path.join(self.tmp.name, "back.csv")
        p = self.load("--schedule", back, "--format", "json")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--format", p.stderr)
        p = self.load("--schedule", back, "--rate", "5")
        self.assertEqual(p.returncode, 2, p.stderr)
        # Nothing reached the server.
        self.assertEqual(self.inferences(), before)

    def test_steps_files_still_work(self):
        steps = write(self.tmp.name, "steps.txt", "# a step\n2 5\n")
        p = self.load("--schedule", steps, "--output", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertNotIn("trace", out)
        self.assertEqual(out["sent"], 10)
        p = self.load("--schedule", steps, "--compress", "2")
        self.assertEqual(p.returncode, 2)
        self.assertIn("steps file", p.stderr)


if __name__ == "__main__":
    unittest.main()
