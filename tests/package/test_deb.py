"""The Debian package, installed for real on this machine: `make deb`'s
.deb installs with dpkg, its files are where the systemd unit expects them,
the unit passes `systemd-analyze verify`, the unit's own command starts the
daemon and reports readiness the way systemd waits for it, an upgrade keeps
the administrator's configuration, and a purge leaves nothing behind.

There is no systemd as PID 1 here (a CI machine or a container): the
package installs without starting anything, and the test says so."""
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UNIT = "/usr/lib/systemd/system/mdscale.service"
CONF = "/etc/mdscale/mdscale.json"


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True,
                          timeout=kw.pop("timeout", 300), **kw)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def installed():
    r = run("dpkg-query", "-W", "-f=${Status}", "mdscale")
    return r.returncode == 0 and "installed" in r.stdout


@unittest.skipUnless(os.geteuid() == 0, "installing a package needs root")
class DebTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.path.exists("/usr/bin/mdscale") and not installed():
            raise unittest.SkipTest("/usr/bin/mdscale exists and is not "
                                    "this package's: not overwriting it")
        if not os.path.isdir("/run/systemd/system"):
            print("\n  (no systemd as PID 1: the package is installed and "
                  "checked, nothing is started)", flush=True)
        cls.tmp = tempfile.mkdtemp(prefix="mdscale-deb-")
        cls.debs = []
        for version in ("", "99.0.0"):
            env = dict(os.environ)
            if version:
                env["DEB_VERSION"] = version
            r = run("sh", os.path.join(TOP, "scripts", "deb.sh"), cls.tmp,
                    env=env, timeout=900)
            assert r.returncode == 0, r.stderr + r.stdout
            cls.debs.append(r.stdout.strip().splitlines()[-1])

    @classmethod
    def tearDownClass(cls):
        if installed():
            run("dpkg", "--purge", "mdscale")
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def dpkg(self, *args):
        r = run("dpkg", *args)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        return r

    def exec_start(self):
        with open(UNIT) as f:
            for line in f:
                if line.startswith("ExecStart="):
                    return shlex.split(line[len("ExecStart="):])
        self.fail("no ExecStart in " + UNIT)

    def start_as_the_unit_would(self):
        """Runs the unit's ExecStart (with a scratch data directory and
        free ports) under a $NOTIFY_SOCKET, as systemd would, and waits for
        READY=1; then stops it with SIGTERM, as systemd would."""
        argv = self.exec_start()
        data = tempfile.mkdtemp(prefix="mdscale-deb-data-", dir=self.tmp)
        i = argv.index("--data")
        argv[i + 1] = data
        argv += ["--listen", "127.0.0.1:%d" % free_port(),
                 "--gateway", "127.0.0.1:%d" % free_port()]
        path = os.path.join(self.tmp, "notify")
        if os.path.exists(path):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(20)
        env = dict(os.environ, NOTIFY_SOCKET=path)
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            msg = sock.recv(4096).decode()
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
            sock.close()
        self.assertIn("READY=1", msg)
        self.assertEqual(proc.returncode, 0, err)

    def test_install_verify_upgrade_purge(self):
        first, second = self.debs
        self.dpkg("-i", first)
        self.assertTrue(installed())

        # The files are where the unit and the man page say.
        argv = self.exec_start()
        self.assertEqual(argv[0], "/usr/bin/mdscale")
        self.assertTrue(os.access(argv[0], os.X_OK))
        self.assertEqual(argv[argv.index("--config") + 1], CONF)
        self.assertTrue(os.path.isfile(CONF))
        self.assertTrue(os.path.isfile("/usr/share/man/man1/mdscale.1.gz"))
        self.assertTrue(os.path.isfile(
            "/usr/share/bash-completion/completions/mdscale"))
        self.assertTrue(os.path.isfile(
            "/usr/share/zsh/vendor-completions/_mdscale"))
        r = run("/usr/bin/mdscale", "version")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("bash", "-c", "source /usr/share/bash-completion/completions/"
                "mdscale && complete -p mdscale")
        self.assertIn("_mdscale", r.stdout, r.stderr)

        r = run("systemd-analyze", "verify", UNIT)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertNotIn("mdscale.service", r.stderr + r.stdout)
        self.start_as_the_unit_would()

        # An upgrade keeps the administrator's change to the conffile.
        with open(CONF) as f:
            text = f.read()
        changed = text.replace('"maxDeployments": 100',
                               '"maxDeployments": 7')
        self.assertNotEqual(changed, text)
        with open(CONF, "w") as f:
            f.write(changed)
        self.dpkg("-i", second)
        r = run("dpkg-query", "-W", "-f=${Version}", "mdscale")
        self.assertEqual(r.stdout, "99.0.0")
        with open(CONF) as f:
            self.assertEqual(f.read(), changed)
        self.start_as_the_unit_would()

        # Purge: nothing of the package is left, the state directory
        # neither.
        os.makedirs("/var/lib/mdscale", exist_ok=True)
        self.dpkg("--purge", "mdscale")
        self.assertFalse(installed())
        for path in ("/usr/bin/mdscale", UNIT, CONF, "/etc/mdscale",
                     "/var/lib/mdscale", "/usr/share/man/man1/mdscale.1.gz"):
            self.assertFalse(os.path.exists(path), path)


if __name__ == "__main__":
    unittest.main()
