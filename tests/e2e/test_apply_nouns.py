"""`mdscale apply -f` for every kind, through the CLI binary and the real
daemon: topics, functions, subscriptions, alarms and the autoscale settings
beside deployments; objects that name each other by name; `NOUN get|list
-o yaml` output applies back unchanged; every POST and PUT takes
dryRun=true and changes nothing; a file with one bad object changes
nothing."""
import json
import unittest

from harness import Daemon

FILE = """kind: topic
name: alerts
description: where alarms go
---
kind: function
name: echo
command: ["/bin/cat"]
timeoutSeconds: 5
---
kind: subscription
topicId: alerts
protocol: FUNCTION
endpoint: echo
maxAttempts: 3
---
kind: alarm
displayName: high-cpu
query: CpuUtilization[1m].max() > 80
destinations: [alerts]
severity: CRITICAL
---
kind: autoscale
config:
  maxInstances: 7
"""


class ApplyNounsTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon().start()
        self.addCleanup(self.d.cleanup)

    def apply(self, text, *extra):
        return self.d.cli("apply", "-f", "-", *extra, input=text)

    def items(self, collection):
        r = self.d.api("GET", "/v1/" + collection)
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def state(self):
        """Everything apply may change, without counters and times."""
        out = {}
        for c in ("topics", "functions", "subscriptions", "alarms",
                  "deployments"):
            out[c] = sorted(json.dumps(x, sort_keys=True)
                            for x in self.items(c))
        out["config"] = self.d.api(
            "GET", "/v1/functions/autoscale/config").json
        return out

    def test_every_kind_is_created_then_left_alone_then_updated(self):
        r = self.apply(FILE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), [
            "topic alerts created",
            "function echo created",
            "subscription alerts FUNCTION echo created",
            "alarm high-cpu created",
            "autoscale default updated",
        ])
        topic = self.items("topics")[0]
        self.assertEqual(topic["description"], "where alarms go")
        sub = self.items("subscriptions")[0]
        self.assertEqual((sub["topicId"], sub["endpoint"],
                          sub["maxAttempts"]),
                         (topic["topicId"], "echo", 3))
        alarm = self.items("alarms")[0]
        # The destination named by name is the topic's id.
        self.assertEqual(alarm["destinations"], [topic["topicId"]])
        self.assertEqual(alarm["severity"], "CRITICAL")
        cfg = self.d.api("GET", "/v1/functions/autoscale/config").json
        self.assertEqual(cfg["config"]["maxInstances"], 7)
        # The same file again: nothing to do, nothing printed.
        r = self.apply(FILE)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        # get -o yaml and list -o yaml of each noun apply back unchanged.
        cmds = [("topic", "get", "alerts"), ("topic", "list"),
                ("fn", "get", "echo"), ("fn", "list"),
                ("subscription", "get", sub["id"]), ("subscription", "list"),
                ("alarm", "get", alarm["id"]), ("alarm", "list"),
                ("fn", "config", "get")]
        for args in cmds:
            out = self.d.cli(*args, "-o", "yaml")
            self.assertEqual(out.returncode, 0, (args, out.stderr))
            before = self.state()
            r = self.apply(out.stdout, "-o", "json")
            self.assertEqual(r.returncode, 0, (args, r.stderr))
            actions = {x["action"] for x in json.loads(r.stdout)["items"]}
            self.assertEqual(actions, {"unchanged"}, (args, out.stdout))
            self.assertEqual(self.state(), before, args)
        # Edits are updates of what differs, in place (same ids).
        edited = FILE.replace("severity: CRITICAL", "severity: WARNING") \
                     .replace("maxInstances: 7", "maxInstances: 4") \
                     .replace("where alarms go", "elsewhere") \
                     .replace("timeoutSeconds: 5", "timeoutSeconds: 9") \
                     .replace("maxAttempts: 3", "maxAttempts: 2")
        r = self.apply(edited)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), [
            "topic alerts updated",
            "function echo updated",
            "subscription alerts FUNCTION echo updated",
            "alarm high-cpu updated",
            "autoscale default updated",
        ])
        self.assertEqual(self.items("alarms")[0]["severity"], "WARNING")
        self.assertEqual(self.items("alarms")[0]["id"], alarm["id"])
        self.assertEqual(self.items("topics")[0],
                         dict(topic, description="elsewhere"))
        fn = self.d.api("GET", "/v1/functions/echo").json
        self.assertEqual((fn["timeoutSeconds"], fn["command"]),
                         (9, ["/bin/cat"]))
        self.assertEqual(self.items("subscriptions")[0],
                         dict(sub, maxAttempts=2))
        cfg = self.d.api("GET", "/v1/functions/autoscale/config").json
        self.assertEqual(cfg["config"]["maxInstances"], 4)
        r = self.apply(edited)
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)
        # A built-in function is not changed: refused before any change.
        before = self.state()
        r = self.apply(edited + "---\nkind: function\nname: autoscale\n"
                       "description: mine\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("function autoscale: 'autoscale' is a built-in",
                      r.stderr)
        self.assertEqual(self.state(), before)

    def test_one_bad_object_changes_nothing(self):
        self.assertEqual(self.apply(FILE).returncode, 0)
        before = self.state()
        good_new = ("kind: topic\nname: fresh\n---\n"
                    "kind: function\nname: fresh-fn\ncommand: [/bin/cat]\n"
                    "---\n")
        bad = [
            ("kind: alarm\ndisplayName: broken\n"
             "query: 'CpuUtilization[1m].max() >'\n",
             "alarm broken: query"),
            ("kind: alarm\ndisplayName: high-cpu\nquery: "
             "CpuUtilization[1m].max() > 80\npendingDuration: soon\n",
             "alarm high-cpu: pendingDuration"),
            ("kind: subscription\ntopicId: alerts\nprotocol: FUNCTION\n"
             "endpoint: no-such-fn\n", "endpoint: no function"),
            ("kind: function\nname: Bad_Name\ncommand: [/bin/cat]\n",
             "function Bad_Name: name"),
            ("kind: topic\nname: 'no spaces'\n", "topic no spaces: name"),
            ("kind: autoscale\nconfig:\n  cpuLow: 90\n  cpuHigh: 10\n",
             "autoscale default"),
            ("kind: alarm\ndisplayName: x\nquery: "
             "CpuUtilization[1m].max() > 1\ndestinations: [nowhere]\n",
             "alarm x: destinations"),
            # What the dry run cannot see (the topic is new too) is
            # undone when the real call refuses it.
            ("kind: topic\nname: t3\n---\nkind: subscription\ntopicId: t3\n"
             "protocol: HTTPS\nendpoint: 'not a url'\n",
             "subscription t3 HTTPS"),
        ]
        for text, why in bad:
            r = self.apply(good_new + text)
            self.assertEqual(r.returncode, 1, (text, r.stdout, r.stderr))
            self.assertIn(why, r.stderr, text)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1,
                             r.stderr)
            self.assertEqual(r.stdout, "")
            self.assertEqual(self.state(), before, text)

    def test_dry_run_on_every_post_and_put_checks_and_changes_nothing(self):
        self.assertEqual(self.apply(FILE).returncode, 0)
        alarm = self.items("alarms")[0]
        before = self.state()
        good = [
            ("POST", "/v1/topics", {"name": "t9"}),
            ("POST", "/v1/functions", {"name": "f9", "command": ["/bin/cat"]}),
            ("POST", "/v1/subscriptions", {"topicId": "alerts",
                                           "protocol": "FUNCTION",
                                           "endpoint": "echo"}),
            ("POST", "/v1/alarms", {"displayName": "a9",
                                    "query": "CpuUtilization[1m].max() > 1"}),
            ("PUT", "/v1/alarms/" + alarm["id"], {"severity": "INFO"}),
            ("PUT", "/v1/functions/autoscale/config", {"maxInstances": 2}),
            ("PUT", "/v1/topics/alerts", {"description": "x"}),
            ("PUT", "/v1/functions/echo", {"command": ["/bin/true"]}),
            ("PUT", "/v1/subscriptions/" + self.items("subscriptions")[0]
             ["id"], {"maxAttempts": 9}),
        ]
        for method, path, body in good:
            r = self.d.api(method, path + "?dryRun=true", body)
            self.assertEqual((r.status, r.json), (200, {"dryRun": True}),
                             (method, path))
        bad = [
            ("POST", "/v1/topics", {"name": "alerts"}, 409),
            ("POST", "/v1/functions", {"name": "echo",
                                       "command": ["/bin/cat"]}, 409),
            ("POST", "/v1/subscriptions", {"topicId": "nope",
                                           "protocol": "FUNCTION",
                                           "endpoint": "echo"}, 400),
            ("POST", "/v1/alarms", {"displayName": "a9"}, 400),
            ("PUT", "/v1/alarms/alarm-nope", {"severity": "INFO"}, 404),
            ("PUT", "/v1/functions/autoscale/config", {"cpuLow": 95}, 400),
            ("PUT", "/v1/topics/nope", {"description": "x"}, 404),
            ("PUT", "/v1/topics/alerts", {"name": "x"}, 400),
            ("PUT", "/v1/functions/echo", {"command": ["/no/such"]}, 400),
            ("PUT", "/v1/functions/autoscale", {"description": "x"}, 409),
            ("PUT", "/v1/subscriptions/sub-nope", {"maxAttempts": 2}, 404),
            ("PUT", "/v1/subscriptions/x", {"maxAttempts": 0}, 400),
        ]
        for method, path, body, status in bad:
            real = self.d.api(method, path, body) if "nope" in path \
                else None
            r = self.d.api(method, path + "?dryRun=true", body)
            self.assertEqual(r.status, status, (method, path, r))
            self.assertIn("message", r.json)
            if real is not None:
                self.assertEqual(real.status, r.status)
        self.assertEqual(self.state(), before)


if __name__ == "__main__":
    unittest.main()
