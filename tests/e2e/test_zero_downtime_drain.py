"""Zero downtime when instances go: a scale-in and a shape change under a
closed-loop load of slow requests (300 ms each, served by a model server
that dies at once on SIGTERM) fail no request. Each instance that goes
must leave the routing table first, finish every request it has in
flight, and only then be stopped."""
import os
import sys
import time
import unittest

from harness import Daemon, Load

HERE = os.path.dirname(os.path.abspath(__file__))


# The system's interpreter: instances run as an unprivileged user, who
# may not reach the one running the tests (under /root, say).
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def slow_command(delay_ms=300):
    return "exec %s %s --port $PORT --delay-ms %d" % (
        PYTHON, os.path.join(HERE, "slow_model.py"), delay_ms)


class DrainTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon().start()
        self.addCleanup(self.d.cleanup)

    def change(self, dep_id, **spec):
        wr = self.d.wait_wr(self.d.update(dep_id, **spec)["id"])
        self.assertEqual(wr["status"], "SUCCEEDED", wr)
        self.d.wait_state(dep_id, "ACTIVE")
        return wr

    def test_scale_in_and_shape_change_with_slow_requests_in_flight(self):
        dep = self.d.create(displayName="drain", command=slow_command(),
                            instanceCount=3)
        dep_id = self.d.wait_state(dep["id"], "ACTIVE")["id"]
        # Six clients over three instances: each instance has about two
        # requests in flight at any moment, so the ones that go have some.
        with Load(self.d.gw_port, "/drain/predict", threads=6) as load:
            time.sleep(1)
            wr = self.change(dep_id, instanceCount=1)
            kinds = [s["kind"] for s in wr["steps"]]
            self.assertEqual(kinds, ["DRAIN_INSTANCE", "DRAIN_INSTANCE",
                                     "STOP_INSTANCE", "STOP_INSTANCE"])
            time.sleep(1)
            self.change(dep_id, instanceCount=2)
            time.sleep(1)
            # Another shape replaces both instances: the new set takes
            # the traffic at once, the old one drains.
            wr = self.change(dep_id, instanceShapeName="local.s")
            self.assertIn("ROUTE", [s["kind"] for s in wr["steps"]])
            time.sleep(1)
            self.change(dep_id, instanceCount=1)
            time.sleep(1)
            load.stop()
        self.assertEqual(load.failures, [])
        self.assertGreater(load.ok, 50)
        now = self.d.get(dep_id)
        ready = [i for i in now["instances"] if i["state"] == "READY"]
        self.assertEqual((len(ready), now["instanceShapeName"]),
                         (1, "local.s"))


if __name__ == "__main__":
    unittest.main()
