"""`make run` as a person uses it: scripts/run.sh in a real terminal (tmux),
stopped with one Ctrl-C. The daemon must stop gracefully (no "second signal"
cut-off), stop every instance, remove every cgroup it made, and leave nothing
that the next start takes for a crash."""
import glob
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import BIN, Daemon, free_port, request, sweep_cgroups, wait_for

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def tmux(*args):
    return subprocess.run(["tmux"] + list(args), capture_output=True,
                          text=True, timeout=30)


@unittest.skipUnless(shutil.which("tmux"), "tmux is not installed")
class RunScriptTest(unittest.TestCase):
    def setUp(self):
        self.data = tempfile.mkdtemp(prefix="mdscale-run-")
        self.addCleanup(shutil.rmtree, self.data, True)
        self.addCleanup(sweep_cgroups, self.data)
        self.api_port, self.gw_port = free_port(), free_port()
        self.session = "mdscale-run-%d" % os.getpid()
        build = os.path.dirname(os.path.dirname(os.path.abspath(BIN)))
        cmd = ("env MDSCALE_DATA=%s MDSCALE_LISTEN=127.0.0.1:%d "
               "MDSCALE_GATEWAY=127.0.0.1:%d sh %s/scripts/run.sh %s; "
               "echo RUN-EXIT:$?; sleep 60"
               % (self.data, self.api_port, self.gw_port, TOP, build))
        r = tmux("new-session", "-d", "-s", self.session, "-x", "200",
                 "-y", "50", cmd)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(tmux, "kill-session", "-t", self.session)

    def screen(self):
        return tmux("capture-pane", "-p", "-J", "-S", "-2000", "-t",
                    self.session).stdout

    def api(self, method, path, body=None):
        with open(os.path.join(self.data, "token")) as f:
            token = f.read().strip()
        return request(self.api_port, method, path, body, token=token)

    def test_one_ctrl_c_stops_everything_cleanly(self):
        wait_for("make run's prompt",
                 lambda: "Ctrl-C stops the daemon" in self.screen(),
                 timeout=90)
        r = self.api("PUT", "/v1/deployments/digits", {"instanceCount": 3})
        self.assertEqual(r.status, 202, r)
        wr = r.json["id"]
        wait_for("the scale-out", lambda: self.api(
            "GET", "/v1/workrequests/" + wr).json["status"] == "SUCCEEDED",
            timeout=60)
        dep = self.api("GET", "/v1/deployments/digits").json
        ids = [i["id"] for i in dep["instances"]]
        pids = [i["pid"] for i in dep["instances"]]
        self.assertEqual(len(ids), 3)
        self.assertTrue(all(p > 0 for p in pids), dep)

        tmux("send-keys", "-t", self.session, "C-c")
        wait_for("the script to end",
                 lambda: "RUN-EXIT:" in self.screen(), timeout=60)
        screen = self.screen()
        self.assertNotIn("second signal", screen)
        self.assertIn("RUN-EXIT:0", screen, screen[-3000:])
        for pid in pids:
            self.assertFalse(os.path.exists("/proc/%d" % pid),
                             "instance pid %d still runs" % pid)
        cgroups = [i["cgroup"] for i in dep["instances"] if i["cgroup"]]
        self.assertEqual(len(cgroups), 3, dep["instances"])
        left = [p for i in ids
                for p in glob.glob("/sys/fs/cgroup/*/mdscale/%s" % i)
                + glob.glob("/sys/fs/cgroup/mdscale/%s" % i)]
        left += [c for c in cgroups if os.path.isdir(c)]
        self.assertEqual(left, [], "cgroups left behind")

        # The next start brings the deployment back with no crash counted.
        d = Daemon(data_dir=self.data)
        d.start()
        self.addCleanup(d.cleanup)
        dep = d.wait_state("digits", "ACTIVE")
        wait_for("three instances again", lambda: len(
            [i for i in d.get("digits")["instances"] if i["pid"]]) == 3,
            timeout=60)
        dep = d.get("digits")
        self.assertEqual(sum(i["restarts"] for i in dep["instances"]), 0,
                         dep["instances"])


if __name__ == "__main__":
    unittest.main()
