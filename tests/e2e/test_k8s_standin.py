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
import test_scale_to_zero as stz

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


def model_pod_command():
    """The example model server as a pod's program: on its podIP and the
    containerPort, as in a pod."""
    return "exec %s --weights %s --host {podIP} --port {port}" % (
        os.path.abspath(harness.MODEL_SERVER),
        os.path.abspath(harness.WEIGHTS))


def seed_real(k8s, namespace, name, replicas, port, cmd, gate=None):
    """A Deployment whose pods are real: each runs cmd (a shell line with
    {podIP} and {port}) on its own podIP (127.0.1.N) and the containerPort
    port; with gate (a path), only once that file exists (a slow image
    pull and start, ended by the test)."""
    if gate is not None:
        cmd = "until [ -e %s ]; do sleep 0.05; done; %s" % (gate, cmd)
    k8s.ctl("deployments", {
        "namespace": namespace, "name": name, "replicas": replicas,
        "run": ["/bin/sh", "-c", cmd],
        "containers": [{"name": "model", "ports": [{"containerPort": port}],
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

    def test_default_min_instances_zero_leaves_an_import_alone(self):
        # An imported Deployment may be served through its own Service,
        # which the gateway does not see: the default configuration's
        # minInstances 0 never takes it to zero; its own may (see
        # KubernetesActivatorStandInTest).
        out = self.d.cli("deployment", "import", "--backend", "kubernetes",
                         "default/web", "--wait", "--timeout", "30")
        self.assertEqual(out.returncode, 0, out.stderr)
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


class KubernetesActivatorStandInTest(unittest.TestCase):
    """Scale from zero replicas through mdscale's gateway: it routes to the
    Deployment's ready pods (podIP and the model container's first
    containerPort), holds requests while it has none, asks the scale
    subresource for one replica at once, and forwards them when a pod is
    Ready. The stand-in's pods are real processes here."""

    def setUp(self):
        self.k8s = StandIn()
        self.addCleanup(self.k8s.stop)
        self.tmp = tempfile.mkdtemp(prefix="mdscale-k8s-zero-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.gate = os.path.join(self.tmp, "open")

    def tearDown(self):
        v = self.k8s.ctl("violations")["items"]
        self.assertEqual(v, [], "requests outside the API's shapes")

    def start(self, cmd, gated=False, **config):
        """A Deployment "digits" at zero replicas, imported."""
        self.port = harness.free_port()  # the pods' containerPort
        seed_real(self.k8s, "default", "digits", 0, self.port,
                  cmd, gate=self.gate if gated else None)
        self.d = start_daemon(self, self.k8s, config=config or None)
        out = self.d.cli("deployment", "import", "--backend", "kubernetes",
                         "default/digits", "--wait", "--timeout", "30")
        self.assertEqual(out.returncode, 0, out.stderr)
        dep = self.d.api("GET", "/v1/deployments/digits").json
        self.assertEqual(dep["instanceCount"], 0)
        self.assertEqual(dep["lifecycleState"], "ACTIVE")
        return dep

    def open_gate(self):
        open(self.gate, "w").close()

    def recorder(self):
        """A pod command that records paths, and its log."""
        script, log = harness.recorder_files(self.tmp)
        return "exec python3 %s {podIP} {port} %s" % (script, log), log

    def wait_held(self, dep_id, n):
        def held():
            r = self.d.api("GET", "/v1/top")
            return [d["inflight"] for d in r.json["deployments"]
                    if d["id"] == dep_id] == [n]
        harness.wait_for("%d requests held for %s" % (n, dep_id), held,
                         timeout=30)

    def scale_writes(self):
        return [e for e in self.k8s.ctl("log")["items"]
                if e["path"].endswith("/scale") and
                e["method"] in ("PUT", "PATCH") and e["status"] < 400]

    def test_burst_at_zero_replicas_all_answered(self):
        print("\n# against the Kubernetes API stand-in at %s" % self.k8s.url)
        dep = self.start(model_pod_command(), gated=True)
        body = {"instances": [r for r, _ in harness.digits_rows(4)]}
        n = 100
        burst = harness.Burst(n, lambda k: self.d.gw(
            "POST", "/digits/predict", body, timeout=90).status)
        # Every request is held (the pod's program waits for the gate),
        # and the held requests asked for one replica at once.
        self.wait_held(dep["id"], n)
        harness.wait_for("replicas 1", lambda: self.k8s.replicas("digits")
                         == 1, timeout=30)
        t0 = time.monotonic()
        self.open_gate()
        results = burst.wait()
        took = time.monotonic() - t0
        bad = [r for r in results if r != 200]
        print("# %d requests to a Deployment at 0 replicas: %d answered "
              "200, %d not; %.2f s from the pod's start to the last "
              "answer" % (n, n - len(bad), len(bad), took))
        self.assertEqual(bad, [])
        self.assertEqual(len(self.scale_writes()), 1, self.scale_writes())
        pods = self.k8s.pods("digits")
        self.assertEqual(len(pods), 1)
        pod_ip = pods[0]["status"]["podIP"]
        self.assertTrue(pod_ip.startswith("127.0.1."))
        d = self.d.api("GET", "/v1/deployments/digits").json
        self.assertEqual(d["instanceCount"], 1)
        # The Ready pod shows where the gateway routes to: its podIP and
        # the containerPort, in the API and in `deployment get`.
        self.assertEqual([(i["id"], i["state"], i["address"], i["port"])
                          for i in d["instances"]],
                         [(pods[0]["metadata"]["name"], "READY", pod_ip,
                           self.port)])
        out = self.d.cli("deployment", "get", "digits")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("%s:%d" % (pod_ip, self.port), out.stdout)

        def total(metric):
            r = self.d.api("POST", "/v1/metrics/query", {
                "query": '%s[1m]{resourceId = "%s"}.sum()' % (metric,
                                                             dep["id"]),
                "startTime": int(time.time() * 1000) - 120000,
                "resolution": "1m"})
            self.assertEqual(r.status, 200, r)
            items = r.json["items"]
            return (sum(p["value"] for p in items[0]["aggregatedDatapoints"])
                    if items else None)
        harness.wait_for("%d held requests counted" % n,
                         lambda: total("PredictHeldRequests") == n,
                         timeout=60)

    def test_idle_to_zero_replicas_and_woken_again(self):
        dep = self.start(model_pod_command())
        # Its own minInstances 0: its requests come through the gateway.
        r = self.d.api("PUT", "/v1/functions/autoscale/config?deploymentId="
                       "digits", {"minInstances": 0, "idleSeconds": 2})
        self.assertEqual(r.status, 200, r)
        body = {"instances": [r for r, _ in harness.digits_rows(2)]}
        cold = []
        for k in range(3):
            t0 = time.monotonic()
            r = self.d.gw("POST", "/digits/predict", body, timeout=60)
            cold.append(time.monotonic() - t0)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(len(r.json["predictions"]), 2)
            self.assertEqual(self.k8s.replicas("digits"), 1)

            def at_zero():
                d = self.d.api("GET", "/v1/deployments/digits").json
                return (d["instanceCount"] == 0 and
                        d["lifecycleState"] == "ACTIVE" and
                        self.k8s.replicas("digits") == 0 and
                        self.k8s.pods("digits") == [])
            harness.wait_for("idle to zero replicas", at_zero, timeout=60)
        print("\n# cold start through the stand-in (scale PUT, pod made, "
              "model server ready, request answered): %s s" %
              ", ".join("%.2f" % c for c in cold))
        self.assertEqual(len(self.scale_writes()), 6, self.scale_writes())

    def test_request_after_a_restart_waits_for_the_pods(self):
        # Just after a start the daemon does not know the pods yet (here
        # its first three pod lists are answered 500, tried again after
        # 1, 2 and 4 s): a request then is held until they are known, not
        # refused for want of a ready instance.
        self.start(model_pod_command())
        body = {"instances": [r for r, _ in harness.digits_rows(2)]}
        self.assertEqual(self.d.gw("POST", "/digits/predict", body,
                                   timeout=60).status, 200)
        # Woken and settled: ACTIVE at one replica (while waking from zero
        # it would hold requests anyway).
        harness.wait_for("ACTIVE", lambda: self.d.api(
            "GET", "/v1/deployments/digits").json["lifecycleState"] ==
            "ACTIVE", timeout=30)
        self.assertEqual(self.d.stop(), 0)
        self.k8s.ctl("fault", {"method": "GET",
                               "path": "^/api/v1/namespaces/default/pods$",
                               "status": 500, "count": 3})
        self.d = start_daemon(self, self.k8s, data_dir=self.d.data_dir)
        r = self.d.gw("POST", "/digits/predict", body, timeout=60)
        self.assertEqual(r.status, 200, r)
        lists = [e["status"] for e in self.k8s.ctl("log")["items"]
                 if e["method"] == "GET" and
                 e["path"] == "/api/v1/namespaces/default/pods"]
        self.assertIn(500, lists)
        self.assertEqual(self.k8s.replicas("digits"), 1)
        self.assertEqual(len(self.scale_writes()), 1, self.scale_writes())

    def test_held_in_order_and_a_gone_client_dropped(self):
        cmd, seen = self.recorder()
        dep = self.start(cmd, gated=True)
        socks = []
        for k in range(6):
            socks.append((k, stz.raw_get(self.d.gw_port, "/digits/r%d" % k)))
            self.wait_held(dep["id"], k + 1)
        # Clients 1 and 4 go away while held: dropped at once.
        for k, s in socks:
            if k in (1, 4):
                s.close()
        self.wait_held(dep["id"], 4)
        self.open_gate()
        for k, s in socks:
            if k in (1, 4):
                continue
            line, _, body = stz.answer(s)
            self.assertEqual(line, "HTTP/1.1 200 OK")
            self.assertEqual(body, b"ok")
        with open(seen) as f:
            got = [l.strip() for l in f if l.startswith("/r")]
        self.assertEqual(got, ["/r0", "/r2", "/r3", "/r5"])

    def test_deleted_while_held_answers_404(self):
        dep = self.start(model_pod_command(), gated=True)
        s = stz.raw_get(self.d.gw_port, "/digits/predict")
        self.wait_held(dep["id"], 1)
        harness.wait_for("replicas 1", lambda: self.k8s.replicas("digits")
                         == 1, timeout=30)
        # The pod never becomes ready: the rollout passes its progress
        # deadline, the wake fails, and the deployment can be deleted with
        # the request still held.
        self.k8s.ctl("stall", {"namespace": "default", "name": "digits"})

        def deleted():
            r = self.d.api("DELETE", "/v1/deployments/digits")
            return r.json["id"] if r.status == 202 else None
        wr = harness.wait_for("the delete accepted", deleted, timeout=30)
        self.d.wait_wr(wr)
        line, headers, body = stz.answer(s)
        self.assertTrue(line.startswith("HTTP/1.1 404"), line)
        self.assertEqual(body["code"], "NotFound")
        self.assertIn("deleted", body["message"])


if __name__ == "__main__":
    unittest.main()
