"""`mdscale top`: sorting, filtering, and sparklines on a fixed 0-100%
axis, through the real CLI (plain and in a real terminal, tmux) against a
real daemon with real model servers."""
import os
import re
import shutil
import subprocess
import unittest

from harness import BIN, Daemon, Load, wait_for

BARS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"


class TopTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon().start()
        for name in ("top-b", "top-a"):
            dep = cls.d.create(displayName=name)
            cls.d.wait_state(dep["id"], "ACTIVE")

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def rows(self, *args):
        r = self.d.cli("top", "--once", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [l.split()[0] for l in r.stdout.splitlines()
                if l.startswith("top-")]

    def test_sort_and_filter(self):
        self.assertEqual(self.rows("--sort", "name"), ["top-a", "top-b"])
        with Load(self.d.gw_port, "/top-b/predict", threads=2):
            self.assertEqual(self.rows("--sort", "rps"), ["top-b", "top-a"])
        self.assertEqual(self.rows("--filter", "-b"), ["top-b"])
        self.assertEqual(self.rows("--filter", "nothing-like-it"), [])
        r = self.d.cli("top", "--once", "--sort", "size")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--sort", r.stderr)

    def test_instance_rows(self):
        dep = self.d.get("top-a")
        r = self.d.cli("top", "--once", "--instances", "--filter", "top-a")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        ids = [i["id"] for i in dep["instances"]]
        rows = [l.split() for l in lines if l.strip().split()[:1] and
                l.strip().split()[0] in ids]
        self.assertEqual(len(rows), len(ids), r.stdout)
        for row in rows:
            self.assertEqual(row[1], "READY", r.stdout)
            self.assertEqual(row[-2:], ["restarts", "0"], r.stdout)
        top = self.d.api("GET", "/v1/top").json
        a = [x for x in top["deployments"] if x["displayName"] == "top-a"]
        self.assertEqual([i["id"] for i in a[0]["instances"]], ids)

    @unittest.skipUnless(shutil.which("tmux"), "tmux is not installed")
    def test_sparklines_on_a_fixed_axis_and_s_sorts(self):
        sock = "mdscale-top2-%d" % os.getpid()

        def tm(*args):
            return subprocess.run(["tmux", "-L", sock] + list(args),
                                  capture_output=True, text=True, timeout=30)

        cmd = "MDSCALE_URL=http://127.0.0.1:%d MDSCALE_TOKEN=%s %s top --sort name" % (
            self.d.api_port, self.d.token, os.path.abspath(BIN))
        r = tm("-f", "/dev/null", "new-session", "-d", "-x", "80", "-y",
               "24", "sh", "-c", cmd)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(tm, "kill-server")

        def sparks():
            screen = tm("capture-pane", "-p").stdout
            found = re.findall(r"cpu ([%s]{4,}) mem ([%s]{4,})"
                               % (BARS, BARS), screen)
            return (screen, found) if len(found) == 2 and all(
                len(c) >= 4 for c, _ in found) else None

        screen, found = wait_for("four refreshes of top", sparks,
                                 timeout=30)
        # On a 0-100% axis a bar's height follows the percentage itself
        # (about pct / 100 * 7 eighths): idle model servers, a few percent
        # of a CPU and of their memory limit, stay near the lowest bar,
        # where scaling to their own peak would fill the bars with noise.
        rows = [l.split() for l in screen.splitlines()
                if l.startswith("top-")]
        for (cpu, mem), row in zip(found, rows):
            cpu_pct, mem_pct = float(row[4]), float(row[5])
            want = round(mem_pct / 100 * 7)
            for bar in mem[-3:]:
                self.assertLessEqual(abs(BARS.index(bar) - want), 1,
                                     screen)
            if cpu_pct < 7:
                self.assertLessEqual(BARS.index(cpu[-1]), 1, screen)
        self.assertIn("s: sort (by name)", screen)
        tm("send-keys", "s")
        wait_for("the next order", lambda: "s: sort (by cpu)" in
                 tm("capture-pane", "-p").stdout, timeout=10)


if __name__ == "__main__":
    unittest.main()
