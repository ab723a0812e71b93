"""Durability: the daemon killed with SIGKILL at awkward moments comes back
with its deployments, finds the instances that outlived it, and finishes or
rolls back what it was doing. Nothing acknowledged is lost."""
import os
import time
import unittest

from harness import Daemon, Load, model_command, wait_for


class RecoveryTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon().start()
        self.addCleanup(self.d.cleanup)

    def restart(self):
        self.d.kill()
        old_token = self.d.token
        fresh = Daemon(data_dir=self.d.data_dir)
        fresh.owns_dir = True
        fresh.api_port, fresh.gw_port = self.d.api_port, self.d.gw_port
        self.d.owns_dir = False
        self.d = fresh.start()
        self.addCleanup(self.d.cleanup)
        self.assertEqual(self.d.token, old_token)

    def test_instances_outlive_a_killed_daemon_and_are_adopted(self):
        dep = self.d.wait_state(self.d.create(displayName="adopt",
                                              instanceCount=2)["id"], "ACTIVE")
        pids = sorted(i["pid"] for i in dep["instances"])
        self.restart()
        for pid in pids:
            os.kill(pid, 0)  # still running
        now = self.d.get(dep["id"])
        self.assertEqual(now["lifecycleState"], "ACTIVE")
        self.assertEqual(sorted(i["pid"] for i in now["instances"]), pids)
        r = wait_for("the gateway to route again",
                     lambda: self.d.gw("GET", "/adopt/health").status == 200)
        self.assertTrue(r)
        self.assertEqual(sum(i["restarts"] for i in now["instances"]), 0)

    def test_kill_mid_scale_out_resumes_the_work_request(self):
        # Slow to become ready, so the kill lands inside WAIT_READY.
        dep = self.d.wait_state(self.d.create(
            displayName="resume",
            command=model_command("--load-delay-ms 1500"))["id"], "ACTIVE")
        wr = self.d.update(dep["id"], instanceCount=3)
        wait_for("the new instances to start", lambda: len(
            [i for i in self.d.get(dep["id"])["instances"] if i["pid"]]) == 3)
        self.restart()
        done = self.d.wait_wr(wr["id"])
        self.assertEqual(done["status"], "SUCCEEDED", done)
        now = self.d.wait_state(dep["id"], "ACTIVE")
        ready = [i for i in now["instances"] if i["state"] == "READY"]
        self.assertEqual(len(ready), 3)
        self.assertEqual(now["instanceCount"], 3)

    def test_kill_mid_shape_change_under_load_finishes_it(self):
        dep = self.d.wait_state(self.d.create(
            displayName="reshape", instanceCount=2,
            command=model_command("--load-delay-ms 1000"))["id"], "ACTIVE")
        with Load(self.d.gw_port, "/reshape/predict", threads=2) as load:
            time.sleep(0.3)
            wr = self.d.update(dep["id"], instanceShapeName="local.s")
            time.sleep(0.4)
            self.restart()
            done = self.d.wait_wr(wr["id"])
            load.stop()
        self.assertEqual(done["status"], "SUCCEEDED", done)
        now = self.d.wait_state(dep["id"], "ACTIVE")
        ready = [i for i in now["instances"] if i["state"] == "READY"]
        self.assertEqual(len(ready), 2)
        self.assertTrue(all(i["instanceShapeName"] == "local.s" for i in ready))
        # While the daemon was dead its gateway was too: those requests
        # failed to connect. Every request after the restart succeeded.
        self.assertTrue(all("Connection refused" in f or "ConnectionRefused" in f
                            or "RemoteDisconnected" in f or "reset" in f
                            or "BrokenPipe" in f
                            for f in load.failures), load.failures)

    def test_graceful_stop_and_start_brings_deployments_back(self):
        dep = self.d.wait_state(self.d.create(displayName="back",
                                              instanceCount=2)["id"], "ACTIVE")
        pids = [i["pid"] for i in dep["instances"]]
        self.assertEqual(self.d.stop(), 0)
        for pid in pids:
            wait_for("instance %d to stop" % pid, lambda: not _alive(pid))
        fresh = Daemon(data_dir=self.d.data_dir)
        fresh.owns_dir = True
        self.d.owns_dir = False
        self.d = fresh.start()
        self.addCleanup(self.d.cleanup)

        def two_ready():
            d = self.d.get(dep["id"])
            return [i for i in d["instances"] if i["state"] == "READY"] \
                if d["lifecycleState"] == "ACTIVE" else None
        ready = wait_for("two ready instances", lambda: len(two_ready() or []) == 2)
        self.assertTrue(ready)
        self.assertEqual(self.d.gw("GET", "/back/health").status, 200)


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


if __name__ == "__main__":
    unittest.main()
