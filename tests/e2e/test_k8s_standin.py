"""The kubernetes backend in the real daemon, against the Kubernetes API
stand-in (tests/standin/k8s_standin.py): a local HTTPS server that checks
every request against the API's documented shapes. It is a stand-in, not a
cluster; the live test against a real one is test_k8s_live.py."""
import json
import os
import time
import shutil
import ssl
import subprocess
import tempfile
import unittest
import urllib.request

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "..", "standin", "k8s_standin.py")
RBAC = os.path.join(HERE, "..", "..", "examples", "kubernetes", "rbac.yaml")


class StandIn:
    """The Kubernetes API stand-in, started on a free loopback port."""

    def __init__(self, rbac=None):
        self.dir = tempfile.mkdtemp(prefix="mdscale-k8s-standin-")
        extra = ["--rbac", rbac] if rbac else []
        self.proc = subprocess.Popen(
            ["python3", STANDIN, "--dir", self.dir, "--lifetime", "300"]
            + extra,
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

    def pods(self, name):
        return [p for p in self.ctl("state")["pods"]
                if p["metadata"]["labels"].get("app") == name]

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


def seed(k8s, namespace, name, replicas):
    """A Deployment sized as the default shape local.s: 0.5 CPU, 512 MiB."""
    k8s.ctl("deployments", {
        "namespace": namespace, "name": name, "replicas": replicas,
        "containers": [{"name": "model",
                        "requests": {"cpu": "500m", "memory": "512Mi"},
                        "limits": {"cpu": "500m", "memory": "512Mi"}}]})
    k8s.ctl("auto", {"interval_ms": 100})


def start_daemon(test, k8s, config=None, data_dir=None):
    old = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = k8s.kubeconfig
    try:
        d = harness.Daemon(data_dir=data_dir, config=config).start()
    finally:
        if old is None:
            del os.environ["KUBECONFIG"]
        else:
            os.environ["KUBECONFIG"] = old
    test.addCleanup(d.cleanup)
    return d


class KubernetesStandInTest(unittest.TestCase):
    def setUp(self):
        self.k8s = StandIn()
        self.addCleanup(self.k8s.stop)
        seed(self.k8s, "default", "web", 2)
        self.d = start_daemon(self, self.k8s)

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
        # One accepted write of the scale. A 409 (the stand-in moved the
        # resourceVersion in between, as a busy API server does) is
        # answered by reading again before the next PUT, never blindly.
        log = [e for e in self.k8s.ctl("log")["items"]
               if e["path"].endswith("/scale")]
        puts = [e for e in log if e["method"] == "PUT"]
        self.assertEqual([e["status"] for e in puts if e["status"] < 400],
                         [200], log)
        for i, e in enumerate(log):
            if e["method"] == "PUT" and e["status"] == 409:
                self.assertEqual(log[i + 1]["method"], "GET", log)

    def test_scale_to_zero_replicas_through_the_standin(self):
        print("\n# against the Kubernetes API stand-in at %s" % self.k8s.url)
        out = self.d.cli("deployment", "import", "--backend", "kubernetes",
                         "default/web", "--wait", "--timeout", "30")
        self.assertEqual(out.returncode, 0, out.stderr)
        out = self.d.cli("deployment", "update", "web", "--count", "0",
                         "--wait", "--timeout", "30")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.k8s.replicas("web"), 0)
        dep = self.d.api("GET", "/v1/deployments/web").json
        self.assertEqual(dep["instanceCount"], 0)
        self.assertEqual(dep["lifecycleState"], "ACTIVE")
        # The gateway does not route to a Deployment's pods (they are
        # reached through its Service): a request for it there is not held
        # for a wake that could never serve it, nor does it wake it.
        r = self.d.gw("GET", "/web/x", timeout=90)
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json["code"], "NoReadyInstance", r)
        time.sleep(2)
        self.assertEqual(self.k8s.replicas("web"), 0)
        self.assertEqual(
            self.d.api("GET", "/v1/deployments/web").json["instanceCount"], 0)

    def test_idle_scale_to_zero_refused_where_the_gateway_sees_no_request(self):
        # The Deployment's requests go through its Service, not through
        # mdscale's gateway: the gateway would count it idle however busy
        # it is, and could never wake it. A policy that would take it to
        # zero when idle is refused; the default configuration's
        # minInstances 0 leaves it as it is.
        out = self.d.cli("deployment", "import", "--backend", "kubernetes",
                         "default/web", "--wait", "--timeout", "30")
        self.assertEqual(out.returncode, 0, out.stderr)
        r = self.d.api("PUT", "/v1/functions/autoscale/config?deploymentId="
                       "web", {"minInstances": 0, "idleSeconds": 1})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["field"], "minInstances")
        self.assertIn("gateway", r.json["message"])
        r = self.d.api("PUT", "/v1/functions/autoscale/config",
                       {"minInstances": 0, "idleSeconds": 1})
        self.assertEqual(r.status, 200, r)
        time.sleep(4)
        self.assertEqual(self.k8s.replicas("web"), 2)
        self.assertEqual(
            self.d.api("GET", "/v1/deployments/web").json["instanceCount"], 2)

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


def start_without_credentials(test, data_dir):
    """A daemon on data_dir with no Kubernetes credentials at all: no
    KUBECONFIG, no in-cluster service, a HOME without ~/.kube."""
    saved = {k: os.environ.pop(k) for k in
             ("KUBECONFIG", "KUBERNETES_SERVICE_HOST") if k in os.environ}
    home = tempfile.mkdtemp(prefix="mdscale-home-")
    test.addCleanup(shutil.rmtree, home, ignore_errors=True)
    try:
        d = harness.Daemon(data_dir=data_dir, env={"HOME": home}).start()
    finally:
        os.environ.update(saved)
    test.addCleanup(d.cleanup)
    return d


class KubernetesRestartWithoutCredentialsStandInTest(unittest.TestCase):
    """An imported Deployment across a daemon restart without Kubernetes
    credentials, then one with them again (against the stand-in)."""

    def setUp(self):
        self.k8s = StandIn()
        self.addCleanup(self.k8s.stop)
        seed(self.k8s, "default", "web", 2)

    def tearDown(self):
        v = self.k8s.ctl("violations")["items"]
        self.assertEqual(v, [], "requests outside the API's shapes")

    def test_imported_deployment_survives_a_start_without_credentials(self):
        print("\n# against the Kubernetes API stand-in at %s" % self.k8s.url)
        d = start_daemon(self, self.k8s)
        out = d.cli("deployment", "import", "--backend", "kubernetes",
                    "default/web", "--wait", "--timeout", "30")
        self.assertEqual(out.returncode, 0, out.stderr)
        before = d.api("GET", "/v1/deployments/web").json
        self.assertEqual(d.stop(), 0)

        # Without credentials: still listed and readable, read-only.
        d = start_without_credentials(self, d.data_dir)
        items = d.api("GET", "/v1/deployments").json["items"]
        self.assertEqual([x["displayName"] for x in items], ["web"])
        dep = d.api("GET", "/v1/deployments/web").json
        print("# lifecycleDetails: %s" % dep["lifecycleDetails"])
        for k in ("id", "lifecycleState", "backend", "ref", "instanceCount",
                  "instanceShapeName"):
            self.assertEqual(dep[k], before[k], k)
        self.assertIn("backend kubernetes unavailable",
                      dep["lifecycleDetails"])
        self.assertIn("no Kubernetes credentials", dep["lifecycleDetails"])
        out = d.cli("deployment", "list")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("web", out.stdout)
        wrs = d.api("GET", "/v1/workrequests").json["items"]
        self.assertIn(before["id"], [w["deploymentId"] for w in wrs])

        for method, body in (("PUT", {"instanceCount": 3}),
                             ("DELETE", None)):
            r = d.api(method, "/v1/deployments/web", body)
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.json["code"], "ServiceUnavailable", r)
            self.assertIn("backend kubernetes is unavailable",
                          r.json["message"])
        out = d.cli("deployment", "update", "web", "--count", "3")
        self.assertNotEqual(out.returncode, 0)
        self.assertEqual(len(out.stderr.strip().splitlines()), 1, out.stderr)
        self.assertIn("kubernetes", out.stderr)
        r = d.api("POST", "/v1/deployments/import",
                  {"backend": "kubernetes", "ref": "default/other",
                   "displayName": "other"})
        self.assertEqual(r.status, 503, r)
        self.assertIn("no Kubernetes credentials", r.json["message"])
        # A name the kept deployment holds is not free either.
        r = d.api("POST", "/v1/deployments", {
            "displayName": "web", "command": harness.model_command(),
            "instanceShapeName": "local.xs", "instanceCount": 1})
        self.assertEqual(r.status, 409, r)
        self.assertEqual(self.k8s.replicas("web"), 2)
        after = d.api("GET", "/v1/deployments/web").json
        self.assertEqual(after, dep, "a refused change changed the record")
        self.assertEqual(d.stop(), 0)

        # With credentials again: as before, and it changes.
        d = start_daemon(self, self.k8s, data_dir=d.data_dir)
        dep = d.api("GET", "/v1/deployments/web").json
        self.assertNotIn("unavailable", dep["lifecycleDetails"])
        self.assertEqual(dep["lifecycleState"], "ACTIVE")
        out = d.cli("deployment", "update", "web", "--count", "3",
                    "--wait", "--timeout", "30")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.k8s.replicas("web"), 3)


class KubernetesExampleRoleStandInTest(unittest.TestCase):
    """The whole life of an imported Deployment, with the stand-in granting
    only what examples/kubernetes/rbac.yaml's Role grants: every request
    must be allowed by it, and everything it grants must be needed."""

    def setUp(self):
        self.k8s = StandIn(rbac=RBAC)
        self.addCleanup(self.k8s.stop)
        seed(self.k8s, "models", "digits", 1)
        self.d = start_daemon(self, self.k8s, config={
            "sampleIntervalMillis": 250, "evalIntervalMillis": 250})

    def cli_ok(self, *args):
        out = self.d.cli(*args)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out

    def test_life_of_an_import_under_the_example_role(self):
        print("\n# against the Kubernetes API stand-in at %s, granting only "
              "examples/kubernetes/rbac.yaml" % self.k8s.url)
        self.cli_ok("deployment", "import", "--backend", "kubernetes",
                    "models/digits", "--wait", "--timeout", "30")
        self.cli_ok("deployment", "update", "digits", "--count", "2",
                    "--wait", "--timeout", "30")
        self.assertEqual(self.k8s.replicas("digits"), 2)
        # Without pods/resize: the template rolls, maxUnavailable 0.
        self.cli_ok("deployment", "update", "digits", "--shape", "local.m",
                    "--wait", "--timeout", "30")
        for p in self.k8s.pods("digits"):
            lim = p["spec"]["containers"][0]["resources"]["limits"]
            self.assertEqual(lim, {"cpu": "1", "memory": "1024Mi"})
        before = sorted(p["metadata"]["name"]
                        for p in self.k8s.pods("digits"))
        # With pods/resize (1.33 and later): the same pods, resized.
        self.k8s.ctl("resize", {"enabled": True})
        self.cli_ok("deployment", "update", "digits", "--shape", "local.l",
                    "--wait", "--timeout", "30")
        pods = self.k8s.pods("digits")
        self.assertEqual(sorted(p["metadata"]["name"] for p in pods), before)
        for p in pods:
            lim = p["spec"]["containers"][0]["resources"]["limits"]
            self.assertEqual(lim, {"cpu": "2", "memory": "2048Mi"})
        dep = self.d.api("GET", "/v1/deployments/digits").json
        self.assertEqual(dep["instanceShapeName"], "local.l")
        self.assertEqual(dep["lifecycleState"], "ACTIVE")

        # PodMetrics over the limits, into monitoring per pod.
        pod = before[0]
        self.k8s.ctl("metrics", {"namespace": "models", "pod": pod,
                                 "container": "model", "cpu": "500m",
                                 "memory": "512Mi"})
        q = 'CpuUtilization[1s]{resourceId = "%s"}.max()' % dep["id"]

        def cpu_of_pod():
            r = self.d.api("POST", "/v1/metrics/query", {
                "query": q, "startTime": int(time.time() * 1000) - 60000,
                "resolution": "1s"})
            for it in (r.json or {}).get("items", []):
                if it["dimensions"].get("instanceId") == pod and \
                        it["aggregatedDatapoints"]:
                    return it["aggregatedDatapoints"][-1]["value"]
            return None
        value = harness.wait_for("CpuUtilization of pod %s" % pod,
                                 cpu_of_pod, timeout=40)
        print("# CpuUtilization of %s: %.1f%%" % (pod, value))
        self.assertAlmostEqual(value, 25.0, delta=0.1)  # 0.5 of 2 CPUs

        self.assertEqual(self.k8s.ctl("violations")["items"], [])
        self.assertEqual(self.k8s.ctl("rbac-unused")["items"], [],
                         "the example Role grants more than is needed")


if __name__ == "__main__":
    unittest.main()
