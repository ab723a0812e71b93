"""-o/--output through the real CLI against a real daemon: json, yaml,
name, jsonpath and wide, the short -o form, and errors as JSON when a
structured output was asked for."""
import json
import unittest

import yaml

from harness import Daemon


class CliOutputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon().start()
        for name in ("alpha", "beta"):
            r = cls.d.api("POST", "/v1/topics",
                          {"name": name, "description": "it's \"%s\"" % name})
            assert r.status == 201, r

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def cli(self, *args):
        return self.d.cli(*args)

    def api_topics(self):
        return self.d.api("GET", "/v1/topics").json

    def test_json_and_yaml_are_the_api_answer(self):
        want = self.api_topics()
        r = self.cli("topic", "list", "--output", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), want)
        r = self.cli("topic", "list", "-o", "yaml")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(yaml.safe_load(r.stdout), want)
        r = self.cli("-oyaml", "topic", "list")
        self.assertEqual(yaml.safe_load(r.stdout), want)

    def test_name_and_jsonpath(self):
        ids = [t["topicId"] for t in self.api_topics()["items"]]
        r = self.cli("topic", "list", "-o", "jsonpath={.items[*].topicId}")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, " ".join(ids) + "\n")
        r = self.cli("topic", "list",
                     "-o", "jsonpath=first={.items[0].name}.")
        self.assertEqual(r.stdout, "first=alpha.\n")
        r = self.cli("topic", "list", "-o", "jsonpath={.nothing.here}")
        self.assertEqual((r.returncode, r.stdout), (0, "\n"))
        r = self.cli("topic", "get", ids[1], "-o", "name")
        self.assertEqual(r.stdout, ids[1] + "\n")

    def test_wide_has_more_columns(self):
        narrow = self.cli("subscription", "list").stdout.splitlines()[0]
        self.cli("subscription", "create", "--topic",
                 self.api_topics()["items"][0]["topicId"], "--protocol",
                 "FUNCTION", "--endpoint", "autoscale")
        wide = self.cli("subscription", "list", "-o", "wide")
        self.assertEqual(wide.returncode, 0, wide.stderr)
        head = wide.stdout.splitlines()[0].split()
        self.assertEqual(head[:len(narrow.split())], narrow.split())
        self.assertIn("CREATED", head)
        self.assertNotIn("CREATED", narrow.split())

    def test_errors_are_json_with_a_structured_output(self):
        r = self.cli("topic", "get", "topic-nope", "-o", "json")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        err = json.loads(r.stderr)
        self.assertEqual(err["error"]["status"], 404)
        self.assertEqual(err["error"]["code"], "NotFound")
        self.assertIn("topic-nope", err["error"]["message"])
        r = self.cli("topic", "get", "topic-nope")
        self.assertTrue(r.stderr.startswith("mdscale: "), r.stderr)

    def test_bad_output_values(self):
        for value in ("xml", "jsonpath={.items[", "jsonpath={.a}}{.b[x]}"):
            r = self.cli("topic", "list", "-o", value)
            self.assertEqual(r.returncode, 2, (value, r.stderr))
            self.assertEqual(len(r.stderr.strip().splitlines()), 1)
            self.assertEqual(r.stdout, "")
        r = self.cli("topic", "list", "-o")
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
