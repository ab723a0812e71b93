"""The API while the daemon stops. On SIGTERM the daemon closes its modules
(the autoscale function, monitoring, notifications) at once, then stops
the instances, answering the API until they are gone. A request for a
module already closed must get 503 with a JSON error and change nothing;
reads of the deployments are still answered."""
import os
import signal
import sys
import unittest

from harness import Daemon, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

# An instance that ignores SIGTERM: the daemon waits stopGraceSeconds for
# it, and the test asks the API in that time.
STUBBORN = "trap '' TERM; exec %s %s --port $PORT" % (
    PYTHON, os.path.join(HERE, "slow_model.py"))


class StoppingTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(config={"stopGraceSeconds": 8})
        self.d.start()
        self.addCleanup(self.d.cleanup)

    def test_closed_modules_answer_503_and_change_nothing(self):
        dep_id = self.d.create(displayName="stubborn", command=STUBBORN)["id"]
        self.d.wait_state(dep_id, "ACTIVE")

        self.d.proc.send_signal(signal.SIGTERM)
        wait_for("the stop to begin",
                 lambda: "stopping instances and exiting" in self.d.logs())
        refused = [
            ("GET", "/v1/deployments/%s/autoscale" % dep_id, None),
            ("GET", "/v1/deployments/%s/scaling-history" % dep_id, None),
            ("PUT", "/v1/deployments/%s/autoscale" % dep_id,
             {"profile": "default"}),
            ("DELETE", "/v1/deployments/%s/autoscale" % dep_id, None),
            ("GET", "/v1/functions/autoscale/config", None),
            ("DELETE", "/v1/deployments/" + dep_id, None),
        ]
        for method, path, body in refused:
            r = self.d.api(method, path, body)
            self.assertEqual(r.status, 503, (method, path, r))
            self.assertEqual(r.json["code"], "ServiceUnavailable", r.json)
            self.assertIn("stopping", r.json["message"])
        r = self.d.api("GET", "/v1/deployments/" + dep_id)
        self.assertEqual(r.status, 200, r)

        self.assertEqual(self.d.proc.wait(timeout=60), 0, self.d.logs())
        self.d.log.close()
        # The refused delete changed nothing: the deployment is back.
        self.d.start()
        self.assertEqual(self.d.wait_state(dep_id, "ACTIVE")["id"], dep_id)


if __name__ == "__main__":
    unittest.main()
