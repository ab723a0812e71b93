"""--watch, --wait, list filters and order for the nouns beside deployments
(alarms, topics, subscriptions, functions, work requests), through the CLI
binary and the real daemon, and the long-poll behind --watch:
GET /v1/<collection>?watch=true&resourceVersion=N answers when the answer
changed, or after timeoutSeconds."""
import json
import threading
import time
import unittest

from harness import Daemon, wait_for
from test_watch import Watcher

QUERY = "CpuUtilization[1m].max() > 80"


class WatchNounsTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon().start()
        self.addCleanup(self.d.cleanup)

    def cli_json(self, *args):
        r = self.d.cli(*args, "-o", "json")
        self.assertEqual(r.returncode, 0, (args, r.stderr))
        return json.loads(r.stdout)

    def test_long_poll_of_each_collection(self):
        for path, make in (
                ("/v1/topics", lambda i: self.d.api(
                    "POST", "/v1/topics", {"name": "t%d" % i})),
                ("/v1/alarms", lambda i: self.d.api(
                    "POST", "/v1/alarms", {"displayName": "a%d" % i,
                                           "query": QUERY})),
                ("/v1/functions", lambda i: self.d.api(
                    "POST", "/v1/functions", {"name": "f%d" % i,
                                              "command": ["/bin/cat"]}))):
            v = self.d.api("GET", path).json["resourceVersion"]
            t0 = time.time()
            r = self.d.api("GET", path + "?watch=true&resourceVersion=%d"
                           "&timeoutSeconds=1" % v)
            self.assertGreaterEqual(time.time() - t0, 0.9, path)
            self.assertEqual((r.status, r.json["resourceVersion"]),
                             (200, v), path)
            got = {}

            def poll():
                got["r"] = self.d.api(
                    "GET", path + "?watch=true&resourceVersion=%d"
                    "&timeoutSeconds=20" % v, timeout=30)
                got["t"] = time.time()
            th = threading.Thread(target=poll)
            th.start()
            time.sleep(0.5)
            t1 = time.time()
            self.assertLess(make(1).status, 300)
            th.join(timeout=25)
            self.assertLess(got["t"] - t1, 2.0, path)
            self.assertNotEqual(got["r"].json["resourceVersion"], v, path)
            self.assertEqual(len(got["r"].json["items"]),
                             1 + (path == "/v1/functions"), path)
            for q in ("timeoutSeconds=0", "resourceVersion=x"):
                r = self.d.api("GET", path + "?watch=true&" + q)
                self.assertEqual(r.status, 400, (path, q, r))

    def test_list_and_get_watch_print_each_change(self):
        w = Watcher(self.d, "topic", "list", "--watch", "-o", "json")
        self.addCleanup(w.stop)
        self.assertEqual(w.docs(lambda doc: True)[-1]["items"], [])
        w.quiet_for(1.0)
        self.d.api("POST", "/v1/topics", {"name": "watched"})
        doc = w.docs(lambda doc: len(doc["items"]) == 1)[-1]
        self.assertEqual(doc["items"][0]["name"], "watched")
        w.quiet_for(1.0)
        # An alarm followed by get --watch until it is gone.
        a = self.d.api("POST", "/v1/alarms", {"displayName": "cpu",
                                              "query": QUERY}).json
        g = Watcher(self.d, "alarm", "get", a["id"], "--watch", "-o", "json")
        self.addCleanup(g.stop)
        self.assertEqual(g.docs(lambda doc: True)[-1]["severity"], "INFO")
        self.d.api("PUT", "/v1/alarms/" + a["id"], {"severity": "ERROR"})
        self.assertEqual(g.docs(lambda d: d["severity"] == "ERROR")[-1]
                         ["displayName"], "cpu")
        self.d.api("DELETE", "/v1/alarms/" + a["id"])
        g.p.wait(timeout=30)
        self.assertEqual(g.p.returncode, 0)
        # Subscriptions: a new one, then its deliveries pending.
        s = Watcher(self.d, "subscription", "list", "--topic", "watched",
                    "--watch", "-o", "json")
        self.addCleanup(s.stop)
        s.docs(lambda doc: doc["items"] == [])
        self.d.api("POST", "/v1/subscriptions", {
            "topicId": "watched", "protocol": "COMMAND",
            "command": ["/bin/sleep", "30"], "timeoutSeconds": 60})
        s.docs(lambda doc: len(doc["items"]) == 1)
        self.d.api("POST", "/v1/topics/watched/messages", {"x": 1})
        s.docs(lambda doc: doc["items"][0]["pendingDeliveries"] == 1)

    def test_workrequest_watch_follows_it_to_the_end(self):
        dep = self.d.create(displayName="wr")
        self.d.wait_state(dep["id"], "ACTIVE")
        r = self.d.api("PUT", "/v1/deployments/" + dep["id"],
                       {"instanceCount": 2})
        self.assertEqual(r.status, 202, r)
        w = Watcher(self.d, "workrequest", "get", r.json["id"], "--watch",
                    "-o", "json")
        self.addCleanup(w.stop)
        docs = w.docs(lambda doc: doc["status"] == "SUCCEEDED", timeout=60)
        self.assertEqual(docs[-1]["id"], r.json["id"])
        # Printed again only when it changed.
        for a, b in zip(docs, docs[1:]):
            self.assertNotEqual(a, b)
        lw = Watcher(self.d, "workrequest", "list", "--deployment", "wr",
                     "--watch", "-o", "json")
        self.addCleanup(lw.stop)
        lw.docs(lambda doc: len(doc["items"]) == 2)
        self.d.api("PUT", "/v1/deployments/" + dep["id"],
                   {"instanceCount": 1})
        lw.docs(lambda doc: len(doc["items"]) == 3)

    def test_wait_prints_the_final_state(self):
        r = self.d.cli("topic", "create", "--name", "w", "--wait", "-o",
                       "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        topic = json.loads(r.stdout)
        self.assertEqual(topic["name"], "w")
        self.assertEqual(
            topic, self.d.api("GET", "/v1/topics/w").json)
        a = self.cli_json("alarm", "create", "--name", "cpu", "--query",
                          QUERY, "--destination", "w", "--wait")
        self.assertEqual(a["destinations"], [topic["topicId"]])
        a2 = self.cli_json("alarm", "update", a["id"], "--severity",
                           "ERROR", "--wait")
        self.assertEqual(a2["severity"], "ERROR")
        self.assertEqual(a2, self.d.api("GET", "/v1/alarms/" + a["id"]).json)
        f = self.cli_json("fn", "create", "--name", "cat", "--command",
                          "/bin/cat", "--wait")
        self.assertEqual((f["name"], f["invocations"]), ("cat", 0))
        s = self.cli_json("subscription", "create", "--topic", "w",
                          "--protocol", "FUNCTION", "--endpoint", "cat",
                          "--wait")
        self.assertNotIn("secret", s)
        self.assertEqual(s["topicId"], topic["topicId"])
        c = self.cli_json("fn", "config", "set", "maxInstances=3", "--wait")
        self.assertEqual(c["config"]["maxInstances"], 3)
        for args in (("subscription", "delete", s["id"]),
                     ("fn", "delete", "cat"), ("alarm", "delete", a["id"]),
                     ("topic", "delete", "w")):
            r = self.d.cli(*args, "--wait")
            self.assertEqual(r.returncode, 0, (args, r.stderr))
            self.assertEqual(r.stdout, "%s %s is gone\n" % (
                {"fn": "function"}.get(args[0], args[0]), args[2]))
        # A deployment: the final work request, then the deployment.
        dep = self.d.create(displayName="waited")
        self.d.wait_state(dep["id"], "ACTIVE")
        r = self.d.cli("deployment", "update", "waited", "--count", "2",
                       "--wait")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("SUCCEEDED", r.stdout)
        self.assertIn("2/2", r.stdout)
        r = self.d.cli("deployment", "update", "waited", "--count", "1",
                       "--wait", "-o", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        wr = json.loads(r.stdout)
        self.assertEqual((wr["status"], wr["deployment"]["instanceCount"],
                          wr["deployment"]["lifecycleState"]),
                         ("SUCCEEDED", 1, "ACTIVE"))
        r = self.d.cli("deployment", "delete", "waited", "--wait")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("SUCCEEDED", r.stdout)
        self.assertTrue("DELETED" in r.stdout or
                        "deployment waited is gone" in r.stdout, r.stdout)

    def test_filters_and_order_are_the_daemons(self):
        for name in ("b", "c", "a"):
            self.d.api("POST", "/v1/topics", {"name": name})
        for name, sev in (("x", "CRITICAL"), ("y", "INFO"), ("x", "ERROR")):
            self.d.api("POST", "/v1/alarms", {"displayName": name,
                                              "query": QUERY,
                                              "severity": sev})

        def names(*args, key="name"):
            return [x[key] for x in self.cli_json(*args)["items"]]
        self.assertEqual(names("topic", "list"), ["b", "c", "a"])
        self.assertEqual(names("topic", "list", "--sort-by", "name"),
                         ["a", "b", "c"])
        self.assertEqual(names("topic", "list", "--sort-by", "NAME",
                               "--sort-order", "desc"), ["c", "b", "a"])
        self.assertEqual(names("topic", "list", "--name", "c"), ["c"])
        self.assertEqual(names("topic", "list", "--state", "deleted"), [])
        self.assertEqual(names("alarm", "list", "--name", "x",
                               "--sort-by", "severity", key="severity"),
                         ["CRITICAL", "ERROR"])
        self.assertEqual(len(names("alarm", "list", "--state", "active",
                                   key="id")), 3)
        self.assertEqual(names("fn", "list", "--name", "autoscale"),
                         ["autoscale"])
        for args, allowed in ((("topic", "list"), "timeCreated or name"),
                              (("alarm", "list"), "severity"),
                              (("subscription", "list"), "protocol"),
                              (("fn", "list"), "invocations")):
            r = self.d.cli(*args, "--sort-by", "color")
            self.assertEqual(r.returncode, 1, args)
            self.assertIn("sortBy must be", r.stderr)
            self.assertIn(allowed, r.stderr)
            self.assertIn("HTTP 400", r.stderr)
            r = self.d.cli(*args, "--sort-by", "color", "-o", "json")
            err = json.loads(r.stderr)["error"]
            self.assertEqual((err["status"], err["code"]),
                             (400, "InvalidParameter"))
        r = self.d.api("GET", "/v1/alarms?sortOrder=sideways")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json["field"], "sortOrder")
        # Work requests sort and filter on the daemon too, and have no name.
        r = self.d.cli("workrequest", "list", "--deployment", "x",
                       "--sort-by", "color")
        self.assertEqual(r.returncode, 1)
        self.assertIn("sortBy must be timeAccepted, operationType or status",
                      r.stderr)
        self.assertIn("HTTP 400", r.stderr)
        r = self.d.cli("workrequest", "list", "--deployment", "x",
                       "--sort-by", "status", "--state", "FAILED")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.d.cli("workrequest", "list", "--deployment", "x",
                       "--name", "y")
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
