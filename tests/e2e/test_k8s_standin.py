"""The kubernetes backend in the real daemon, against the Kubernetes API
stand-in (tests/standin/k8s_standin.py): a local HTTPS server that checks
every request against the API's documented shapes. It is a stand-in, not a
cluster; the live test against a real one is test_k8s_live.py."""
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import unittest
import urllib.request

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "..", "standin", "k8s_standin.py")


class StandIn:
    """The Kubernetes API stand-in, started on a free loopback port."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mdscale-k8s-standin-")
        self.proc = subprocess.Popen(
            ["python3", STANDIN, "--dir", self.dir, "--lifetime", "300"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        if "k8s stand-in listening on " not in line:
            raise AssertionError("the stand-in did not start: %r" % line)
        self.url = line.split()[-1]
        self.ctx = ssl.create_default_context(
            cafile=os.path.join(self.dir, "ca.crt"))
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")

    def ctl(self, what, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + "/_standin/" + what,
                                     data=data)
        with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
            return json.loads(r.read())

    def replicas(self, name):
        for d in self.ctl("state")["deployments"]:
            if d["metadata"]["name"] == name:
                return d["spec"]["replicas"]
        return None

    def stop(self):
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class KubernetesStandInTest(unittest.TestCase):
    def setUp(self):
        self.k8s = StandIn()
        self.addCleanup(self.k8s.stop)
        # Sized as the default shape local.s: 0.5 CPU, 512 MiB.
        self.k8s.ctl("deployments", {
            "name": "web", "replicas": 2,
            "containers": [{"name": "model",
                            "requests": {"cpu": "500m", "memory": "512Mi"},
                            "limits": {"cpu": "500m", "memory": "512Mi"}}]})
        self.k8s.ctl("auto", {"interval_ms": 100})
        old = os.environ.get("KUBECONFIG")
        os.environ["KUBECONFIG"] = self.k8s.kubeconfig
        try:
            self.d = harness.Daemon().start()
        finally:
            if old is None:
                del os.environ["KUBECONFIG"]
            else:
                os.environ["KUBECONFIG"] = old
        self.addCleanup(self.d.cleanup)

    def tearDown(self):
        v = self.k8s.ctl("violations")["items"]
        self.assertEqual(v, [], "requests outside the API's shapes")

    def test_import_and_scale_through_the_standin(self):
        print("\n# against the Kubernetes API stand-in at %s" % self.k8s.url)
        out = self.d.cli("deployment", "import", "--backend", "kubernetes",
                         "default/web", "--wait", "--timeout", "30")
        self.assertEqual(out.returncode, 0, out.stderr)
        dep = self.d.api("GET", "/v1/deployments/web").json
        self.assertEqual(dep["lifecycleState"], "ACTIVE")
        self.assertEqual(dep["backend"], "kubernetes")
        self.assertEqual(dep["ref"], "default/web")
        self.assertEqual(dep["instanceCount"], 2)
        self.assertEqual(dep["instanceShapeName"], "local.s")

        out = self.d.cli("deployment", "update", "web", "--count", "3",
                         "--wait", "--timeout", "30")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.k8s.replicas("web"), 3)
        dep = self.d.api("GET", "/v1/deployments/web").json
        self.assertEqual(dep["instanceCount"], 3)
        self.assertEqual(dep["lifecycleState"], "ACTIVE")
        puts = [e for e in self.k8s.ctl("log")["items"]
                if e["method"] == "PUT" and e["path"].endswith("/scale")]
        self.assertEqual(len(puts), 1)

    def test_bad_imports(self):
        # Malformed refs and unknown backends are refused; nothing is made.
        out = self.d.cli("deployment", "import", "--backend", "kubernetes",
                         "web")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("NAMESPACE/NAME", out.stderr)
        self.assertEqual(self.d.api("GET", "/v1/deployments").json["items"],
                         [])
        # A Deployment that does not exist: the import's work request
        # fails with the API's words, and the record says so.
        out = self.d.cli("deployment", "import", "--backend", "kubernetes",
                         "default/nope", "--wait", "--timeout", "30")
        self.assertNotEqual(out.returncode, 0)
        print("# %s" % out.stderr.strip())
        self.assertIn('deployments.apps "nope" not found', out.stderr)
        dep = self.d.api("GET", "/v1/deployments/nope").json
        self.assertEqual(dep["lifecycleState"], "FAILED")
        out = self.d.cli("deployment", "import", "--backend", "nosuch",
                         "default/web")
        self.assertNotEqual(out.returncode, 0)
        self.assertEqual(len(out.stderr.strip().splitlines()), 1)
        self.assertEqual(self.k8s.replicas("web"), 2)


if __name__ == "__main__":
    unittest.main()
