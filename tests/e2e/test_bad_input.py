"""Bad input gets a clear error and changes nothing: through the REST API
(4xx with a JSON body naming the problem) and through the CLI (one line on
stderr, non-zero exit)."""
import json
import unittest

from harness import Daemon, model_command, request


class BadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon().start()
        dep = cls.d.create(displayName="base", instanceCount=1)
        cls.base = cls.d.wait_state(dep["id"], "ACTIVE")

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def snapshot(self):
        items = self.d.api("GET", "/v1/deployments").json["items"]
        for d in items:
            d.pop("timeUpdated", None)
            for i in d["instances"]:
                i.pop("timeStarted", None)
        return json.dumps(items, sort_keys=True)

    def refused(self, method, path, body, status, field=None, text=None,
                raw=False, auth=True):
        before = self.snapshot()
        if raw:
            r = request(self.d.api_port, method, path, body,
                        token=self.d.token if auth else None,
                        headers={"Content-Type": "application/json"})
        else:
            r = self.d.api(method, path, body, auth=auth)
        self.assertEqual(r.status, status, r)
        self.assertIsNotNone(r.json, r)
        self.assertIn("code", r.json)
        self.assertTrue(r.json["message"])
        if field is not None:
            self.assertEqual(r.json.get("field"), field, r)
        if text is not None:
            self.assertIn(text, r.json["message"])
        self.assertEqual(self.snapshot(), before)
        return r

    def good(self, **kw):
        spec = {"displayName": "new", "command": model_command(),
                "instanceShapeName": "local.xs", "instanceCount": 1}
        spec.update(kw)
        return {k: v for k, v in spec.items() if v is not None}

    def test_create_refusals(self):
        P = "/v1/deployments"
        self.refused("POST", P, self.good(instanceShapeName="huge"), 400,
                     "instanceShapeName", "unknown shape 'huge'")
        self.refused("POST", P, self.good(instanceCount=10000), 400,
                     "instanceCount")
        self.refused("POST", P, self.good(instanceCount=-3), 400,
                     "instanceCount")
        self.refused("POST", P, self.good(instanceCount=10000), 400,
                     "instanceCount")
        self.refused("POST", P, self.good(instanceCount="2"), 400,
                     "instanceCount")
        r = self.refused("POST", P, self.good(command=None), 400, "command")
        self.assertEqual(r.json["code"], "MissingParameter")
        self.refused("POST", P, self.good(command=42), 400, "command")
        self.refused("POST", P, self.good(command=[]), 400, "command")
        self.refused("POST", P, self.good(command=["/no/such/binary", "x"]),
                     400, "command", "/no/such/binary")
        self.refused("POST", P, self.good(command="no-such-program --port $PORT"),
                     400, "command", "no-such-program")
        self.refused("POST", P, self.good(displayName=None), 400,
                     "displayName")
        self.refused("POST", P, self.good(displayName="has space"), 400,
                     "displayName")
        self.refused("POST", P, self.good(displayName="base"), 409,
                     "displayName", "exists")
        self.refused("POST", P, self.good(healthPath="health"), 400,
                     "healthPath")
        self.refused("POST", P, self.good(colour="blue"), 400, "colour",
                     "unknown field")
        self.refused("POST", P, self.good(environment={"A": 1}), 400,
                     "environment")
        r = self.refused("POST", P, '{"displayName": "x",', 400, raw=True)
        self.assertEqual(r.json["code"], "InvalidJson")
        self.refused("POST", P, '[1, 2]', 400, raw=True)
        self.refused("POST", P, "", 400, raw=True)
        self.refused("POST", P, "x" * (2 << 20), 413, raw=True)
        r = self.refused("POST", P, self.good(), 401, auth=False)
        self.assertEqual(r.json["code"], "NotAuthenticated")
        r = request(self.d.api_port, "POST", P, self.good(), token="wrong" * 8)
        self.assertEqual(r.status, 401)

    def test_update_and_delete_refusals(self):
        path = "/v1/deployments/" + self.base["id"]
        self.refused("PUT", path, {"instanceCount": -1}, 400, "instanceCount")
        self.refused("PUT", path, {"instanceShapeName": "nope"}, 400,
                     "instanceShapeName")
        self.refused("PUT", path, {"displayName": "x"}, 400, "displayName")
        self.refused("PUT", path, {}, 400)
        self.refused("PUT", path, "{bad", 400, raw=True)
        self.refused("PUT", "/v1/deployments/md-0000000000000000",
                     {"instanceCount": 2}, 404)
        self.refused("DELETE", "/v1/deployments/md-0000000000000000", None, 404)
        self.refused("GET", "/v1/deployments/md-0000000000000000", None, 404)
        self.refused("GET", "/v1/workrequests/wr-0000000000000000", None, 404)
        self.refused("DELETE", path, None, 401, auth=False)
        self.refused("PATCH", path, {}, 405)
        self.refused("GET", "/v1/nothing", None, 404)
        # The same count and shape is no change at all: 200, no work request.
        r = self.d.api("PUT", path, {"instanceCount": 1})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["lifecycleState"], "ACTIVE")

    def test_a_command_that_exits_at_once_fails_the_create(self):
        r = self.d.api("POST", "/v1/deployments",
                       self.good(displayName="quitter", command="exit 3"))
        self.assertEqual(r.status, 201, r)
        dep = self.d.wait_state(r.json["id"], "FAILED", timeout=30)
        self.assertIn("exited with status 3", dep["lifecycleDetails"])
        self.assertFalse([i for i in dep["instances"] if i["pid"]])
        # The base deployment is untouched and still serves.
        self.assertEqual(self.d.gw("GET", "/base/health").status, 200)
        self.d.delete(dep["id"])

    def test_a_health_path_that_never_answers_fails_the_create(self):
        r = self.d.api("POST", "/v1/deployments",
                       self.good(displayName="mute", healthPath="/never",
                                 readyTimeoutSeconds=2))
        self.assertEqual(r.status, 201, r)
        dep = self.d.wait_state(r.json["id"], "FAILED", timeout=30)
        self.assertIn("/never", dep["lifecycleDetails"])
        wr = self.d.api("GET", "/v1/workrequests?deploymentId=" + dep["id"])
        self.assertEqual(wr.json["items"][0]["status"], "FAILED")
        self.assertEqual(self.d.gw("GET", "/base/health").status, 200)
        self.d.delete(dep["id"])

    def test_cli_errors_are_one_line(self):
        cases = [
            (["deployment", "create", "--name", "c1", "--command",
              model_command(), "--shape", "huge"], 1, "unknown shape"),
            (["deployment", "create", "--name", "c1", "--command",
              "no-such-program"], 1, "no-such-program"),
            (["deployment", "create", "--name", "c1", "--command",
              model_command(), "--count", "abc"], 2, "count"),
            (["deployment", "get", "md-0000000000000000"], 1, "no deployment"),
            (["deployment", "update", self.base["id"], "--count", "10000"],
             1, "instanceCount"),
            (["deployment", "frobnicate"], 2, ""),
        ]
        before = self.snapshot()
        for args, code, text in cases:
            p = self.d.cli(*args)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            lines = p.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, (args, p.stderr))
            self.assertIn(text, lines[0])
        self.assertEqual(self.snapshot(), before)
        # Reads need the token too; without one, one line says where it
        # was looked for.
        p = self.d.cli("deployment", "list", env={"MDSCALE_DATA": "/nonexistent"})
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn("/nonexistent/token", p.stderr)
        p = self.d.cli("deployment", "delete", self.base["id"],
                       env={"MDSCALE_DATA": "/nonexistent"})
        self.assertEqual(p.returncode, 1)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1)
        self.assertEqual(self.snapshot(), before)

    def test_cli_mirrors_the_api(self):
        p = self.d.cli("shape", "list")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("local.xs", p.stdout)
        p = self.d.cli("--output", "json", "deployment", "get", "base")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["id"], self.base["id"])
        p = self.d.cli("deployment", "list")
        self.assertIn("base", p.stdout)
        self.assertIn("ACTIVE", p.stdout)
        p = self.d.cli("deployment", "create", "--name", "viacli",
                       "--command", model_command(), "--shape", "local.xs",
                       "--wait")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.d.cli("--output", "json", "deployment", "update", "viacli",
                       "--count", "2", "--wait")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.d.cli("--output", "json", "deployment", "get", "viacli")
        dep = json.loads(p.stdout)
        self.assertEqual(dep["instanceCount"], 2)
        p = self.d.cli("workrequest", "list", "--deployment", "viacli")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("UPDATE_DEPLOYMENT", p.stdout)
        # --wait prints the final state: the work request SUCCEEDED.
        p = self.d.cli("-o", "json", "deployment", "delete", "viacli",
                       "--wait")
        self.assertEqual(p.returncode, 0, p.stderr)
        wr = json.loads(p.stdout)
        self.assertEqual((wr["operationType"], wr["status"]),
                         ("DELETE_DEPLOYMENT", "SUCCEEDED"))

    def test_cli_create_wait_says_a_failed_deployment(self):
        # Its instance never answers its health path: the create fails,
        # and --wait says so on one line with the reason, exit 1.
        p = self.d.cli("deployment", "create", "--name", "neverready",
                       "--command", "exec sleep 100", "--shape", "local.xs",
                       "--ready-timeout", "2", "--wait", "--timeout", "60")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        err = p.stderr.strip().splitlines()
        self.assertEqual(len(err), 1, p.stderr)
        self.assertTrue(err[0].startswith("mdscale: deployment neverready "
                                          "failed: "), err[0])
        self.assertIn("FAILED", p.stdout)


if __name__ == "__main__":
    unittest.main()
