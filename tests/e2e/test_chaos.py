"""A short run of bench/chaos.py: five SIGKILLs of the daemon (inside work
requests, restart backoffs and recovery) and of instances under load lose no
acknowledged change, leave no work request stuck and no orphan process or
cgroup. The full run (50 kills) is a benchmark."""
import json
import os
import subprocess
import sys
import unittest

from harness import BIN

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


class ChaosTest(unittest.TestCase):
    def test_five_kills_lose_nothing_and_leave_nothing(self):
        build = os.path.dirname(os.path.dirname(os.path.abspath(BIN)))
        r = subprocess.run([sys.executable,
                            os.path.join(TOP, "bench", "chaos.py"),
                            "--build", build, "--kills", "5", "--rate", "50",
                            "--seed", "5"],
                           capture_output=True, text=True, timeout=240)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        report = json.loads(r.stdout)
        self.assertEqual(report["kills"]["daemon"], 5)
        for key in ("lost", "stuck", "orphanProcesses", "orphanCgroups"):
            self.assertEqual(report[key], [], key)
        self.assertTrue(report["finalCapacityHeld"])


if __name__ == "__main__":
    unittest.main()
