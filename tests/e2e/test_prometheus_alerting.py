"""Scaling driven by the real Prometheus and Alertmanager (Debian's
prometheus and prometheus-alertmanager packages, both in scripts/deps.sh),
with the configuration shipped in examples/prometheus/, and checks of those
examples with promtool and amtool.

The end-to-end test starts mdscale, Prometheus and Alertmanager on free
loopback ports with short intervals (the examples' windows and delays
shortened, nothing else changed): Prometheus scrapes mdscale's /metrics,
the high-CPU rule fires on a loaded deployment, Alertmanager posts the
webhook, the autoscale function scales out; when the load stops, the
resolved alert and the low-CPU rule bring the deployment back to one
instance. mdscale's own alarms of the deployment are removed first, so
only Prometheus' rules can move it."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from harness import Daemon, Load, free_port, model_command, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "..", "examples", "prometheus")
FAST = {"sampleIntervalMillis": 250, "evalIntervalMillis": 250}


def need(tool, package):
    path = shutil.which(tool)
    if path is None:
        raise AssertionError("%s is not installed: install Debian's %s "
                             "package (scripts/deps.sh does)" % (tool, package))
    return path


def example(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        return f.read()


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=60,
                          **kw)


def dashboard_queries():
    """Every PromQL expression of the Grafana dashboard (panels and
    annotations), with Grafana's variables given plain values."""
    dash = json.loads(example("grafana-dashboard.json"))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [a["expr"] for a in dash["annotations"]["list"] if "expr" in a]
    return [e.replace("$__rate_interval", "10s").replace("$deployment", ".*")
            for e in exprs]


def sub(text, old, new):
    """text with old replaced by new; old must be there, so that the test
    notices when the example it shortens changes."""
    assert old in text, "%r is not in the example any more" % old
    return text.replace(old, new)


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


class Program:
    """A server the test starts, with its output in a file, stopped (and
    killed if need be) at the end."""

    def __init__(self, name, args, port, workdir):
        self.name = name
        self.port = port
        self.log_path = os.path.join(workdir, name + ".log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=workdir)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s:\n%s" % (
                    self.name, self.proc.returncode, self.logs()))
            try:
                with urllib.request.urlopen(self.url("/-/ready"),
                                            timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        wait_for(self.name + " ready", ready, timeout=60, interval=0.2)

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-4000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class ExamplesTest(unittest.TestCase):
    """examples/prometheus/ as promtool and amtool read it."""

    def test_prometheus_config_and_rules(self):
        promtool = need("promtool", "prometheus")
        # promtool checks that the scrape token's file exists: the example
        # is checked as it is but for that path, pointed at a real file.
        work = tempfile.mkdtemp(prefix="mdscale-promtool-")
        self.addCleanup(shutil.rmtree, work, True)
        token = os.path.join(work, "mdscale-token")
        with open(token, "w") as f:
            f.write("0" * 64 + "\n")
        with open(os.path.join(work, "prometheus.yml"), "w") as f:
            f.write(sub(example("prometheus.yml"),
                        "/etc/prometheus/mdscale-token", token))
        shutil.copy(os.path.join(EXAMPLES, "rules.yml"), work)
        p = run([promtool, "check", "config", "prometheus.yml"], cwd=work)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("4 rules found", p.stdout + p.stderr)
        # The rules' own unit tests: when each fires and when not.
        p = run([promtool, "test", "rules", "rules_test.yml"], cwd=EXAMPLES)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("SUCCESS", p.stdout + p.stderr)
        rules = example("rules.yml")
        for name in ("model_deployment_high_cpu", "model_deployment_high_mem",
                     "model_deployment_low_cpu", "model_deployment_low_mem"):
            self.assertIn("- alert: %s\n" % name, rules)

    def test_alertmanager_config_routes_to_mdscale(self):
        amtool = need("amtool", "prometheus-alertmanager")
        p = run([amtool, "check-config", "alertmanager.yml"], cwd=EXAMPLES)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = run([amtool, "config", "routes", "test",
                 "--config.file=alertmanager.yml",
                 "alertname=model_deployment_high_cpu",
                 "deployment=md-0123456789abcdef"], cwd=EXAMPLES)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "mdscale"),
                         p.stdout + p.stderr)
        self.assertRegex(example("alertmanager.yml"),
                         r"url: http://127\.0\.0\.1:7070/v1/alertmanager/")

    def test_dashboard_queries_are_promql(self):
        promtool = need("promtool", "prometheus")
        dash = json.loads(example("grafana-dashboard.json"))
        titles = [p["title"] for p in dash["panels"]]
        for want in ("Request rate", "Error rate (5xx share)",
                     "Latency p50 / p99", "Instances", "CPU utilization",
                     "Memory utilization"):
            self.assertIn(want, titles)
        self.assertIn("Scaling decisions",
                      [a["name"] for a in dash["annotations"]["list"]])
        # promtool parses every expression as a recording rule's.
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "dashboard_rules.yml")
            with open(path, "w") as f:
                f.write("groups:\n  - name: dashboard\n    rules:\n")
                for i, e in enumerate(dashboard_queries()):
                    f.write("      - record: dashboard_query_%d\n"
                            "        expr: %s\n" % (i, json.dumps(e)))
            p = run([promtool, "check", "rules", path])
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class PrometheusAlertmanagerAutoscaleTest(unittest.TestCase):
    def setUp(self):
        self.prometheus_bin = need("prometheus", "prometheus")
        self.alertmanager_bin = need("prometheus-alertmanager",
                                     "prometheus-alertmanager")
        self.work = tempfile.mkdtemp(prefix="mdscale-prom-e2e-")
        self.addCleanup(shutil.rmtree, self.work, True)
        self.d = Daemon(config=FAST).start()
        self.addCleanup(self.d.cleanup)

    def write(self, name, text):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_alertmanager(self, topic):
        port = free_port()
        cfg = example("alertmanager.yml")
        cfg = sub(cfg, "group_wait: 10s", "group_wait: 1s")
        cfg = sub(cfg, "group_interval: 1m", "group_interval: 1s")
        cfg = sub(cfg, "repeat_interval: 5m", "repeat_interval: 2s")
        cfg = sub(cfg, "http://127.0.0.1:7070/v1/alertmanager/TOPIC_ID",
                          "http://127.0.0.1:%d/v1/alertmanager/%s"
                          % (self.d.api_port, topic))
        cfg = sub(cfg, "/var/lib/mdscale/token",
                          os.path.join(self.d.data_dir, "token"))
        path = self.write("alertmanager.yml", cfg)
        am = Program("alertmanager", [
            self.alertmanager_bin, "--config.file=" + path,
            "--storage.path=" + os.path.join(self.work, "am-data"),
            "--web.listen-address=127.0.0.1:%d" % port,
            "--cluster.listen-address="], port, self.work)
        self.addCleanup(am.stop)
        am.wait_ready()
        return am

    def start_prometheus(self, am_port):
        port = free_port()
        rules = example("rules.yml")
        rules = sub(sub(rules, "[5m]", "[5s]"), "[1m]", "[4s]")
        rules = sub(rules, "for: 1m", "for: 2s")
        self.write("rules.yml", rules)
        cfg = example("prometheus.yml")
        cfg = sub(cfg, "scrape_interval: 15s", "scrape_interval: 1s")
        cfg = sub(cfg, "evaluation_interval: 15s",
                          "evaluation_interval: 1s")
        cfg = sub(cfg, '"127.0.0.1:7070"', '"127.0.0.1:%d"'
                          % self.d.api_port)
        cfg = sub(cfg, '"127.0.0.1:9093"', '"127.0.0.1:%d"' % am_port)
        # Prometheus scrapes with a read-only token, as the example says.
        r = self.d.api("POST", "/v1/tokens", {"displayName": "prometheus",
                                              "readOnly": True})
        self.assertEqual(r.status, 201, r)
        cfg = sub(cfg, "/etc/prometheus/mdscale-token",
                  self.write("mdscale-token", r.json["token"] + "\n"))
        path = self.write("prometheus.yml", cfg)
        prom = Program("prometheus", [
            self.prometheus_bin, "--config.file=" + path,
            "--storage.tsdb.path=" + os.path.join(self.work, "prom-data"),
            "--web.listen-address=127.0.0.1:%d" % port,
            "--rules.alert.resend-delay=1s"], port, self.work)
        self.addCleanup(prom.stop)
        prom.wait_ready()
        return prom

    def query(self, prom, expr):
        r = get_json(prom.url("/api/v1/query?" +
                              urllib.parse.urlencode({"query": expr})))
        self.assertEqual(r["status"], "success", (expr, r))
        return r["data"]["result"]

    def history(self, dep_id):
        return self.d.api("GET", "/v1/deployments/%s/scaling-history"
                          % dep_id).json["items"]

    def events(self, topic, fingerprint=None):
        """(type, alertname) of every message mdscale made of a webhook (of
        one alert if fingerprint is given), as it logged them, in order."""
        with open(self.d.log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        return [(t, n) for t, n, fp in re.findall(
            r"topic %s: (\w+) (model_deployment_\w+) \((\w+)\)" % topic,
            log) if fingerprint in (None, fp)]

    def post_alert(self, am, labels, ends):
        body = json.dumps([{"labels": labels, "startsAt": self.started,
                            "endsAt": ends}]).encode()
        req = urllib.request.Request(am.url("/api/v2/alerts"), data=body,
                                     headers={"Content-Type":
                                              "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual(r.status, 200)

    def repeats_through_alertmanager(self, am, dep_id, topic):
        """An alert that stays firing in Alertmanager is posted again every
        repeat_interval: each is a REPEAT. Sent straight to Alertmanager's
        API (as Prometheus does) for the deployment at its floor, where the
        function does nothing with a low-cpu alert."""
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        self.started = time.strftime(fmt, time.gmtime())
        labels = {"alertname": "model_deployment_low_cpu",
                  "deployment": dep_id, "severity": "info", "probe": "e2e"}
        self.post_alert(am, labels,
                        time.strftime(fmt, time.gmtime(time.time() + 600)))
        fp = get_json(am.url("/api/v2/alerts?" + urllib.parse.urlencode(
            {"filter": 'probe="e2e"'})))[0]["fingerprint"]
        new = wait_for("two repeats from Alertmanager", lambda: (
            lambda e: e if e.count(("REPEAT", "model_deployment_low_cpu"))
            >= 2 else None)(self.events(topic, fp)), timeout=30)
        self.assertEqual(new[0], ("OK_TO_FIRING", "model_deployment_low_cpu"))
        self.assertEqual(set(new[1:]), {("REPEAT", "model_deployment_low_cpu")})
        self.post_alert(am, labels, time.strftime(fmt, time.gmtime()))
        wait_for("the resolved alert", lambda: self.events(topic, fp)[-1] == (
            "FIRING_TO_OK", "model_deployment_low_cpu"), timeout=30)
        print("  an alert left firing in Alertmanager: " + ", ".join(
            t for t, _ in self.events(topic, fp)))
        self.assertEqual(self.d.get(dep_id)["instanceCount"], 1)

    def test_rules_scale_out_under_load_and_back_in_when_quiet(self):
        t0 = time.monotonic()
        d = self.d
        r = d.api("POST", "/v1/topics", {"name": "prometheus-autoscale"})
        self.assertEqual(r.status, 201, r)
        topic = r.json["topicId"]
        r = d.api("POST", "/v1/subscriptions", {
            "topicId": topic, "protocol": "FUNCTION", "endpoint": "autoscale"})
        self.assertEqual(r.status, 201, r)
        sub = r.json["id"]
        dep = d.create(displayName="prom-auto",
                       command=model_command("--cache-entries 0"))
        dep_id = dep["id"]
        d.wait_state(dep_id, "ACTIVE")
        # The function's policy for this deployment (at most 2 instances,
        # short cooldowns); mdscale's own alarms of the chain go, so only
        # Prometheus' rules are left to move the deployment.
        r = d.api("PUT", "/v1/deployments/%s/autoscale" % dep_id, {
            "profile": "default", "maxInstances": 2,
            "cooldownOutSeconds": 3, "cooldownInSeconds": 3})
        self.assertEqual(r.status, 200, r)
        for alarm_id in r.json["alarmIds"]:
            r = d.api("DELETE", "/v1/alarms/" + alarm_id)
            self.assertIn(r.status, (200, 204), r)
        self.assertEqual(d.api("GET", "/v1/alarms").json["items"], [])

        am = self.start_alertmanager(topic)
        prom = self.start_prometheus(am.port)
        print("\n  [%.1fs] mdscale API :%d, Prometheus :%d, Alertmanager :%d"
              % (time.monotonic() - t0, d.api_port, prom.port, am.port))
        wait_for("Prometheus to scrape mdscale", lambda: self.query(
            prom, 'mdscale_deployment_instances{deployment="%s",'
                  'state="ready"}' % dep_id), timeout=30, interval=0.5)
        self.assertEqual(self.query(prom, 'up{job="mdscale"}')[0]["value"][1],
                         "1")
        # mdscale's labels arrive as they are: no exported_instance.
        self.assertEqual(self.query(
            prom, '{job="mdscale", exported_instance!=""}'), [])

        with Load(d.gw_port, "/prom-auto/predict", threads=6) as load:
            wait_for("the scale-out", lambda: d.get(dep_id)[
                "instanceCount"] == 2, timeout=60, interval=0.2)
            print("  [%.1fs] scaled out to 2" % (time.monotonic() - t0))
            wait_for("two ready instances", lambda: len(
                [i for i in d.get(dep_id)["instances"]
                 if i["state"] == "READY"]) == 2, timeout=30)
            load.stop()
        self.assertEqual(load.failures, [])
        self.assertGreater(load.ok, 100)
        out = [h for h in self.history(dep_id) if h["action"] == "SCALE_OUT"]
        self.assertEqual(out[0]["alarmId"],
                         "alertmanager:model_deployment_high_cpu", out)
        self.assertEqual(out[0]["alarmTitle"], "model_deployment_high_cpu")
        self.assertIn(out[0]["messageType"], ("OK_TO_FIRING", "REPEAT"))
        # The function made no scale-down alarm of its own: Prometheus'
        # low-cpu rule is the one.
        self.assertEqual(d.api("GET", "/v1/alarms").json["items"], [])

        wait_for("the scale-in", lambda: d.get(dep_id)["instanceCount"] == 1,
                 timeout=60, interval=0.2)
        print("  [%.1fs] back to 1" % (time.monotonic() - t0))
        d.wait_state(dep_id, "ACTIVE")
        back = [h for h in self.history(dep_id) if h["action"] == "SCALE_IN"]
        self.assertEqual(back[0]["alarmId"],
                         "alertmanager:model_deployment_low_cpu", back)
        # What mdscale received from Alertmanager, as it logged it.
        events = self.events(topic)
        print("  messages from Alertmanager's webhooks: " + ", ".join(
            "%s %s" % (t, n[len("model_deployment_"):]) for t, n in events))
        self.assertIn(("OK_TO_FIRING", "model_deployment_high_cpu"), events)
        self.assertIn(("FIRING_TO_OK", "model_deployment_high_cpu"), events)
        self.assertIn(("OK_TO_FIRING", "model_deployment_low_cpu"), events)
        first = events.index(("OK_TO_FIRING", "model_deployment_high_cpu"))
        self.assertNotIn(("OK_TO_FIRING", "model_deployment_high_cpu"),
                         events[first + 1:events.index(
                             ("FIRING_TO_OK", "model_deployment_high_cpu"))],
                         "a repeated firing alert must be a REPEAT")
        self.repeats_through_alertmanager(am, dep_id, topic)
        deliveries = d.api("GET", "/v1/subscriptions/%s/deliveries"
                           % sub).json["items"]
        self.assertTrue(deliveries)
        self.assertEqual([x for x in deliveries
                          if x["outcome"] != "SUCCEEDED"], [])
        # The dashboard's queries run against what Prometheus scraped.
        for expr in dashboard_queries():
            self.query(prom, expr)
        for metric in ("mdscale_gateway_requests_total",
                       "mdscale_gateway_request_duration_seconds_bucket",
                       "mdscale_instance_cpu_utilization_ratio",
                       "process_cpu_seconds_total"):
            self.assertTrue(self.query(prom, metric), metric)
        print("  [%.1fs] done" % (time.monotonic() - t0))
        self.assertLess(time.monotonic() - t0, 120)


if __name__ == "__main__":
    unittest.main()
