"""`mdscale apply -f` through the CLI binary and the real daemon: creates,
updates and leaves alone deployments to match a YAML or JSON file, applies
`get -o yaml` output back unchanged, and a file with an error changes
nothing."""
import json
import os
import tempfile
import unittest

from harness import MODEL_SERVER, WEIGHTS, Daemon, model_command

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def yaml_deployment(name, count, tags=None):
    lines = ["displayName: %s" % name,
             "command: %s" % json.dumps(model_command()),
             "instanceShapeName: local.xs",
             "instanceCount: %d" % count]
    if tags:
        lines.append("freeformTags:")
        lines += ["  %s: %s" % kv for kv in tags.items()]
    return "\n".join(lines) + "\n"


class ApplyTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon().start()
        self.addCleanup(self.d.cleanup)

    def apply(self, text, *extra):
        return self.d.cli("apply", "-f", "-", *extra, input=text)

    def live(self):
        return {x["displayName"]: x
                for x in self.d.api("GET", "/v1/deployments").json["items"]}

    def test_create_then_nothing_then_update_what_differs(self):
        text = (yaml_deployment("web", 1, {"team": "vision"}) + "---\n" +
                yaml_deployment("batch", 1))
        r = self.apply(text)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "deployment web created\n"
                                   "deployment batch created\n")
        for name in ("web", "batch"):
            self.d.wait_state(name, "ACTIVE")
        self.assertEqual(self.live()["web"]["freeformTags"],
                         {"team": "vision"})
        # The same file again: nothing to do, nothing printed.
        r = self.apply(text)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        # get -o yaml (one object) and list -o yaml apply back unchanged.
        for args in (("deployment", "get", "web"), ("deployment", "list")):
            out = self.d.cli(*args, "-o", "yaml").stdout
            r = self.apply(out)
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""),
                             out)
        # Edit one field of one object in list -o yaml: only it changes.
        out = json.loads(self.d.cli("deployment", "list", "-o", "json").stdout)
        out["items"][0]["instanceCount"] = 2
        out["items"][1]["freeformTags"] = {"tier": "gold"}
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump(out, f)
            f.flush()
            r = self.d.cli("apply", "-f", f.name, "-o", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        actions = {x["displayName"]: x["action"]
                   for x in json.loads(r.stdout)["items"]}
        self.assertEqual(actions, {"web": "updated", "batch": "updated"})
        web = self.d.wait_state("web", "ACTIVE")
        self.assertEqual(web["instanceCount"], 2)
        self.assertEqual(len([i for i in web["instances"]
                              if i["state"] == "READY"]), 2)
        self.assertEqual(self.live()["batch"]["freeformTags"],
                         {"tier": "gold"})
        r = self.apply(yaml_deployment("web", 2, {"team": "vision"}) +
                       "---\n" + yaml_deployment("batch", 1, {"tier": "x"}))
        self.assertEqual(r.stdout, "deployment web unchanged\n"
                                   "deployment batch updated\n")

    def test_a_file_with_an_error_changes_nothing(self):
        self.assertEqual(self.apply(yaml_deployment("keep", 1)).returncode, 0)
        self.d.wait_state("keep", "ACTIVE")
        before = self.live()
        bad = [
            # A valid new deployment, then an invalid change: neither.
            (yaml_deployment("fresh", 1) + "---\n" +
             yaml_deployment("keep", 3) + "healthPath: nope\n",
             "deployment keep: healthPath"),
            (yaml_deployment("fresh", 1) + "---\n" +
             "displayName: other\ncommand: /no/such/program\n",
             "deployment other: command"),
            (yaml_deployment("fresh", 1) + "---\nkind: alarm\n"
             "displayName: cpu\n", "alarm cpu: query is required"),
            (yaml_deployment("fresh", 1) + "---\nkind: gadget\n"
             "displayName: cpu\n", "kind 'gadget'"),
            (yaml_deployment("fresh", 1) + "---\ncommand: x\n",
             "displayName is required"),
            (yaml_deployment("fresh", 1) + "---\n" +
             yaml_deployment("fresh", 2), "in the file twice"),
            (yaml_deployment("fresh", 1) + "color: blue\n", "color"),
            ("displayName: [unclosed\n", "line"),
        ]
        for text, why in bad:
            r = self.apply(text)
            self.assertEqual(r.returncode, 1, (text, r.stdout, r.stderr))
            self.assertIn(why, r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertEqual(r.stdout, "")
            now = self.live()
            self.assertEqual(sorted(now), ["keep"], text)
            self.assertEqual(now["keep"]["instanceCount"],
                             before["keep"]["instanceCount"])
        r = self.d.cli("apply")
        self.assertEqual(r.returncode, 2)

    def test_a_secret_in_the_file_that_matches_is_unchanged(self):
        # The daemon never shows a secret back, so the CLI cannot compare
        # it: it sends it, and the daemon's answer says whether anything
        # changed.
        def text(secret, count=1):
            return yaml_deployment("vault", count) + (
                "environment:\n"
                "  API_KEY: {value: %s, secret: true}\n"
                "  PLAIN: visible\n" % secret)
        r = self.apply(text("s3cret-one"), "--wait")
        self.assertEqual((r.returncode, r.stdout),
                         (0, "deployment vault created\n"), r.stderr)
        r = self.apply(text("s3cret-one"))
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        r = self.apply(text("s3cret-one"), "-o", "json")
        self.assertEqual(json.loads(r.stdout)["items"][0]["action"],
                         "unchanged", r.stdout)
        wrs = self.d.api("GET", "/v1/workrequests").json["items"]
        self.assertEqual(len(wrs), 1, wrs)
        # Another secret, or another field beside it, is a change.
        r = self.apply(text("s3cret-two"), "--wait")
        self.assertEqual(r.stdout, "deployment vault updated\n", r.stderr)
        r = self.apply(text("s3cret-two", 2), "--wait")
        self.assertEqual(r.stdout, "deployment vault updated\n", r.stderr)
        self.assertEqual(self.d.get("vault")["instanceCount"], 2)
        self.assertEqual(
            len(self.d.api("GET", "/v1/workrequests").json["items"]), 3)

    def test_wait_returns_once_every_change_is_active(self):
        r = self.apply(yaml_deployment("waited", 2), "--wait")
        self.assertEqual((r.returncode, r.stdout), (0,
                         "deployment waited created\n"), r.stderr)
        # No polling on our side: it is ACTIVE with both ready right now.
        dep = self.d.get("waited")
        self.assertEqual(dep["lifecycleState"], "ACTIVE")
        self.assertEqual(len([i for i in dep["instances"]
                              if i["state"] == "READY"]), 2)
        r = self.apply(yaml_deployment("never", 1) +
                       "healthPath: /not-there\nreadyTimeoutSeconds: 2\n",
                       "--wait", "--timeout", "60")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("deployment never is FAILED", r.stderr)

    def test_the_example_file_applies(self):
        path = os.path.join(ROOT, "examples", "apply", "digits.yaml")
        with open(path) as f:
            text = f.read()
        # The example's paths are relative to the repository's top; the
        # daemon here runs elsewhere.
        text = text.replace(
            "./build/examples/model-server/mdscale-model-server",
            os.path.abspath(MODEL_SERVER)).replace(
            "examples/model-server/digits-mlp.weights",
            os.path.abspath(WEIGHTS))
        r = self.apply(text)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "deployment digits created\n"
                                   "deployment digits-canary created\n")
        dep = self.d.get("digits")
        self.assertEqual(dep["freeformTags"],
                         {"team": "vision", "stage": "prod"})
        self.assertEqual(dep["environment"], {"MODEL": "digits"})
        self.assertEqual(self.apply(text).stdout, "")


if __name__ == "__main__":
    unittest.main()
