"""The kubernetes backend against a real cluster: runs only when
MDSCALE_K8S_LIVE=1 and a kubeconfig is there ($KUBECONFIG or
~/.kube/config), and reports itself skipped otherwise.

The cluster must run the Deployment MDSCALE_K8S_LIVE_REF (default
models/digits: examples/kubernetes/model-server.yaml, with the Role of
examples/kubernetes/rbac.yaml bound to the kubeconfig's user). A kind or
k3s cluster on the same machine will do; see docs/kubernetes.md. The test
imports the Deployment, scales it out by one and back, and leaves it as it
found it."""
import os
import unittest

import harness


def kubeconfig():
    kc = os.environ.get("KUBECONFIG", "").split(":")[0]
    if not kc:
        kc = os.path.join(os.path.expanduser("~"), ".kube", "config")
    return kc if os.path.isfile(kc) else None


class KubernetesLiveTest(unittest.TestCase):
    def setUp(self):
        if os.environ.get("MDSCALE_K8S_LIVE") != "1":
            self.skipTest("live Kubernetes test: set MDSCALE_K8S_LIVE=1 "
                          "and point KUBECONFIG at a cluster to run it")
        if kubeconfig() is None:
            self.skipTest("live Kubernetes test: no kubeconfig "
                          "($KUBECONFIG or ~/.kube/config)")
        self.ref = os.environ.get("MDSCALE_K8S_LIVE_REF", "models/digits")
        os.environ["KUBECONFIG"] = kubeconfig()
        self.d = harness.Daemon().start()
        self.addCleanup(self.d.cleanup)

    def cli_ok(self, *args):
        out = self.d.cli(*args)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        return out

    def count(self, name):
        return self.d.api("GET", "/v1/deployments/" + name).json[
            "instanceCount"]

    def test_live_import_scale_out_and_back(self):
        name = "live-" + self.ref.split("/")[-1]
        self.cli_ok("deployment", "import", "--backend", "kubernetes",
                    self.ref, "--name", name, "--wait", "--timeout", "120")
        n = self.count(name)
        print("\n# live cluster: %s has %d replicas" % (self.ref, n))
        self.cli_ok("deployment", "update", name, "--count", str(n + 1),
                    "--wait", "--timeout", "300")
        self.assertEqual(self.count(name), n + 1)
        self.cli_ok("deployment", "update", name, "--count", str(n),
                    "--wait", "--timeout", "300")
        self.assertEqual(self.count(name), n)


if __name__ == "__main__":
    unittest.main()
