"""CLI usage checks that need no daemon.

Runs the built binary (path in $MDSCALE_BIN) and checks the exit statuses
and the one-line error messages of the client verbs: 0 success, 1 refused,
2 usage error, 3 daemon unreachable. Every run points at a closed port, so a
command that should have failed before any request fails loudly instead.
"""

import os
import re
import subprocess
import tempfile
import unittest

BIN = os.environ.get("MDSCALE_BIN", "")
NOWHERE = "http://127.0.0.1:1"

COMMANDS = [
    "deployment create",
    "deployment list",
    "deployment get",
    "deployment update",
    "deployment delete",
    "workrequest get",
    "workrequest list",
    "shape list",
    "deployment history",
    "load",
    "query",
    "metric post",
    "alarm create", "alarm list", "alarm get", "alarm update", "alarm delete",
    "alarm status", "alarm history",
    "topic create", "topic list", "topic get", "topic delete", "topic publish",
    "subscription create", "subscription list", "subscription get",
    "subscription delete", "subscription deliveries",
    "fn list", "fn create", "fn delete", "fn invoke",
    "logs",
]


def setUpModule():
    if not BIN or not os.access(BIN, os.X_OK):
        raise RuntimeError("set MDSCALE_BIN to the built mdscale binary")


class CliUsageTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("MDSCALE_")}
        self.env["MDSCALE_URL"] = NOWHERE
        self.env["MDSCALE_DATA"] = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def run_cli(self, *args):
        return subprocess.run([BIN, *args], env=self.env, capture_output=True,
                              text=True, timeout=30)

    def assert_fails(self, args, status, contains=""):
        """Checks the exit status and exactly one 'mdscale: ' stderr line."""
        r = self.run_cli(*args)
        where = "mdscale %s: stdout=%r stderr=%r" % (" ".join(args),
                                                     r.stdout, r.stderr)
        self.assertEqual(r.returncode, status, where)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, where)
        self.assertTrue(lines[0].startswith("mdscale: "), where)
        self.assertIn(contains, lines[0], where)
        self.assertEqual(r.stdout, "", where)
        return lines[0]

    def test_help_lists_every_command(self):
        for args in ([], ["help"], ["--help"], ["-h"]):
            r = self.run_cli(*args)
            self.assertEqual(r.returncode, 0, args)
            self.assertEqual(r.stderr, "", args)
            for name in COMMANDS + ["serve", "version"]:
                self.assertIn(name, r.stdout, (args, name))

    def test_command_help(self):
        for name in COMMANDS:
            r = self.run_cli(*name.split(), "--help")
            self.assertEqual(r.returncode, 0, name)
            self.assertTrue(r.stdout.startswith("usage: mdscale " + name),
                            r.stdout)
            self.assertEqual(r.stderr, "", name)
            # The help is all it does: no request, nothing printed after.
            self.assertTrue(r.stdout.rstrip("\n").splitlines()[-1]
                            .endswith("errors are JSON too"),
                            (name, r.stdout))

    def test_serve_help(self):
        """`mdscale serve --help` (and `mdscale help serve`) starts with the
        usage line, then gives every option of that line a line of its own
        that says what it does; it starts nothing."""
        for args in (["serve", "--help"], ["serve", "-h"],
                     ["help", "serve"]):
            r = self.run_cli(*args)
            self.assertEqual(r.returncode, 0, (args, r.stderr))
            self.assertEqual(r.stderr, "", args)
            self.assertTrue(r.stdout.startswith("usage: mdscale serve "),
                            r.stdout)
            usage, _, rest = r.stdout.partition("\n\n")
            opts = re.findall(r"\[(--[a-z-]+)", usage)
            self.assertGreaterEqual(len(opts), 7, usage)
            for opt in opts + ["--help"]:
                line = [x for x in rest.splitlines()
                        if re.match(r"^  (-h, )?%s\b" % opt, x)]
                self.assertEqual(len(line), 1, (opt, r.stdout))
                # The option, its argument if any, then words about it.
                self.assertRegex(line[0], r"^  (-h, )?%s( [A-Z:]+)?\s{2,}"
                                 r"[a-z(]\w*" % opt, line[0])

    def test_version(self):
        for arg in ("--version", "version"):
            r = self.run_cli(arg)
            self.assertEqual(r.returncode, 0)
            self.assertRegex(r.stdout, r"^mdscale \d+\.\d+\.\d+\n$")

    def test_unknown_command(self):
        self.assert_fails(["frobnicate"], 2, "unknown command 'frobnicate'")
        self.assert_fails(["deployment", "frobnicate"], 2, "unknown command")
        self.assert_fails(["deployment"], 2, "needs a command")

    def test_bad_count(self):
        self.assert_fails(["deployment", "create", "--name", "x",
                           "--command", "y", "--count", "abc"], 2, "--count")
        self.assert_fails(["deployment", "update", "x", "--count", "3x"], 2,
                          "--count")
        self.assert_fails(["deployment", "update", "x", "--count",
                           "99999999999999999999"], 2, "--count")

    def test_other_usage_errors(self):
        cases = [
            ["deployment", "create", "--command", "y"],
            ["deployment", "create", "--name", "x"],
            ["deployment", "create", "--name", "x", "--command", "y",
             "--argv", "z"],
            ["deployment", "create", "--name", "x", "--command", "y",
             "--env", "NOEQUALS"],
            ["deployment", "create", "--name", "x", "--command", "y",
             "--timeout", "5"],
            ["deployment", "get"],
            ["deployment", "get", "a", "b"],
            ["deployment", "update", "x"],
            ["deployment", "delete", "x", "--count", "2"],
            ["workrequest", "list", "--page"],
            ["shape", "list", "--bogus"],
            ["shape", "list", "--url"],
        ]
        for args in cases:
            line = self.assert_fails(args, 2)
            self.assertIn("see 'mdscale", line)

    def test_unreachable_daemon(self):
        line = self.assert_fails(["--url", NOWHERE, "deployment", "list"], 3,
                                 "cannot reach the daemon at " + NOWHERE)
        self.assertNotRegex(line, r": $")  # curl's reason follows
        self.assert_fails(["shape", "list", "--url", NOWHERE + "/"], 3,
                          "cannot reach the daemon at " + NOWHERE)
        self.assert_fails(["--token", "t", "deployment", "create", "--name",
                           "x", "--argv", "./srv", "--argv", "--port"], 3,
                          "cannot reach")

    def test_bad_output(self):
        self.assert_fails(["--output", "xml", "deployment", "list"], 2,
                          "--output")
        self.assert_fails(["shape", "list", "--output=xml"], 2, "--output")

    def test_bad_url(self):
        self.assert_fails(["--url", "ftp://x", "shape", "list"], 2, "URL")


if __name__ == "__main__":
    unittest.main()
