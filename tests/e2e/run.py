"""Runs the end-to-end tests (test_*.py in the folders given) and writes
"PASSED FAILED SKIPPED" to $MDSCALE_TEST_RESULT for scripts/test.sh."""
import os
import sys
import unittest


def main():
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    for folder in sys.argv[1:]:
        sys.path.insert(0, folder)
        suite.addTests(loader.discover(folder, pattern="test_*.py",
                                       top_level_dir=folder))
    result = unittest.TextTestRunner(verbosity=2, buffer=False).run(suite)
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    with open(os.environ["MDSCALE_TEST_RESULT"], "w") as f:
        f.write("%d %d %d\n" % (result.testsRun - bad - len(result.skipped), bad,
                                 len(result.skipped)))
    # A skipped test (a live test without credentials) is neither passed nor
    # failed: it is counted on its own.
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
