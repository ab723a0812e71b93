"""--watch on `deployment list` and `deployment get` through the CLI binary,
and the long-poll behind it: GET /v1/deployments?watch=true&resourceVersion=N
waits until something in the deployments module changes (an instance
becoming ready too), or timeoutSeconds pass."""
import json
import os
import queue
import subprocess
import threading
import time
import unittest

from harness import Daemon, wait_for


class Watcher:
    """A CLI process whose stdout is read line by line in a thread."""

    def __init__(self, d, *args):
        env = dict(os.environ)
        env["MDSCALE_URL"] = "http://127.0.0.1:%d" % d.api_port
        env["MDSCALE_DATA"] = d.data_dir
        env.pop("MDSCALE_TOKEN", None)
        self.p = subprocess.Popen([d.binary] + list(args), env=env,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def docs(self, until, timeout=30):
        """JSON documents (-o json, pretty-printed) read until until(doc)
        holds for the last one; returns them all."""
        docs, buf, end = [], "", time.time() + timeout
        while time.time() < end:
            try:
                line = self.lines.get(timeout=max(0.1, end - time.time()))
            except queue.Empty:
                break
            if line is None:
                break
            buf += line
            try:
                doc = json.loads(buf)
            except ValueError:
                continue
            buf = ""
            docs.append(doc)
            if until(doc):
                return docs
        raise AssertionError("watch output did not arrive: %r %r"
                             % (docs, buf))

    def quiet_for(self, seconds):
        try:
            line = self.lines.get(timeout=seconds)
        except queue.Empty:
            return True
        raise AssertionError("unexpected output: %r" % line)

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
        self.p.wait(timeout=10)
        self.p.stdout.close()
        self.p.stderr.close()


def states(doc):
    return [(x["displayName"], x["lifecycleState"]) for x in doc["items"]]


class WatchTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon().start()
        self.addCleanup(self.d.cleanup)

    def test_the_long_poll_waits_for_a_change_or_the_timeout(self):
        r = self.d.api("GET", "/v1/deployments")
        v = r.json["resourceVersion"]
        t0 = time.time()
        r = self.d.api("GET", "/v1/deployments?watch=true&resourceVersion=%d"
                       "&timeoutSeconds=1" % v)
        self.assertGreaterEqual(time.time() - t0, 0.9)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["resourceVersion"], v)
        # A change answers a waiting poll early.
        got = {}

        def poll():
            got["r"] = self.d.api(
                "GET", "/v1/deployments?watch=true&resourceVersion=%d"
                "&timeoutSeconds=20" % v, timeout=30)
            got["t"] = time.time()
        th = threading.Thread(target=poll)
        th.start()
        time.sleep(0.5)
        t1 = time.time()
        self.d.create(displayName="w1")
        th.join(timeout=25)
        self.assertLess(got["t"] - t1, 2.0)
        self.assertGreater(got["r"].json["resourceVersion"], v)
        self.assertEqual(states(got["r"].json)[0][0], "w1")
        # An old version answers at once; bad parameters are refused.
        t0 = time.time()
        r = self.d.api("GET", "/v1/deployments?watch=true&resourceVersion=0")
        self.assertLess(time.time() - t0, 1.0)
        for q in ("timeoutSeconds=0", "timeoutSeconds=301",
                  "resourceVersion=x"):
            r = self.d.api("GET", "/v1/deployments?watch=true&" + q)
            self.assertEqual(r.status, 400, (q, r))

    def test_list_watch_prints_each_change_and_nothing_in_between(self):
        w = Watcher(self.d, "deployment", "list", "--watch", "-o", "json")
        self.addCleanup(w.stop)
        first = w.docs(lambda doc: True)
        self.assertEqual(states(first[-1]), [])
        w.quiet_for(1.0)
        dep = self.d.create(displayName="watched")
        docs = w.docs(lambda doc: ("watched", "ACTIVE") in states(doc))
        seen = [s for doc in docs for s in states(doc)]
        self.assertIn(("watched", "CREATING"), seen)
        # The instance became ready inside the module: printed too.
        self.assertTrue(all(i["state"] == "READY"
                            for i in docs[-1]["items"][0]["instances"]))
        # Nothing changes: nothing is printed (the poll waits).
        w.quiet_for(1.5)
        self.d.delete(dep["id"])
        w.docs(lambda doc: states(doc) == [])

    def test_get_watch_follows_one_deployment_until_it_is_gone(self):
        dep = self.d.wait_state(self.d.create(displayName="one")["id"],
                                "ACTIVE")
        w = Watcher(self.d, "deployment", "get", "one", "--watch")
        self.addCleanup(w.stop)
        lines = []
        wait_for("the first table", lambda: lines.append(
            w.lines.get(timeout=5)) or any("ACTIVE" in l for l in lines))
        r = self.d.api("PUT", "/v1/deployments/" + dep["id"],
                       {"instanceCount": 2})
        self.assertEqual(r.status, 202, r)
        wait_for("UPDATING printed", lambda: lines.append(
            w.lines.get(timeout=5)) or any("UPDATING" in l for l in lines))
        self.d.wait_wr(r.json["id"])
        self.d.delete(dep["id"])
        w.p.wait(timeout=30)
        rest = []
        while True:
            line = w.lines.get(timeout=5)
            if line is None:
                break
            rest.append(line)
        self.assertEqual(w.p.returncode, 0)
        self.assertIn("deployment one is gone\n", rest)


if __name__ == "__main__":
    unittest.main()
