"""The top-level Makefile as a person uses it, with its variables given on
the command line."""
import os
import shutil
import subprocess
import tempfile
import unittest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@unittest.skipUnless(shutil.which("make") and shutil.which("meson"),
                     "make or meson is not installed")
class MakefileTest(unittest.TestCase):
    def test_ninja_with_options_sets_up_a_build(self):
        # NINJA is the command make builds with, options and all; Meson,
        # which make runs too, must not take it for the ninja program.
        tmp = tempfile.mkdtemp(prefix="mdscale-make-")
        self.addCleanup(shutil.rmtree, tmp, True)
        build = os.path.join(tmp, "build")
        env = dict(os.environ)
        env.pop("NINJA", None)
        r = subprocess.run(
            ["make", "-C", TOP, "BUILD=" + build, "NINJA=ninja -j2",
             os.path.join(build, "build.ninja")],
            capture_output=True, text=True, timeout=300, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(os.path.isfile(os.path.join(build, "build.ninja")))
        # And the build command is the one given.
        r = subprocess.run(
            ["make", "-C", TOP, "-n", "BUILD=" + build, "NINJA=ninja -j2",
             "build"], capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("ninja -j2 -C " + build, r.stdout)


if __name__ == "__main__":
    unittest.main()
