"""GET /metrics (Prometheus text format 0.0.4, checked by promtool) and
`mdscale top`, against a real daemon with a live deployment under load and
a firing alarm.

promtool comes with Debian's prometheus package and tmux with Debian's tmux
(both in scripts/deps.sh); without them these tests fail, saying so."""

import os
import re
import shutil
import subprocess
import time
import unittest

from harness import BIN, Daemon, Load, model_command, wait_for

FAST = {"sampleIntervalMillis": 250, "evalIntervalMillis": 250}

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def need(tool, package):
    path = shutil.which(tool)
    if path is None:
        raise AssertionError("%s is not installed: install Debian's %s "
                             "package (scripts/deps.sh does)" % (tool, package))
    return path


def read_file(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def parse(text):
    """Returns [(name, {label: value}, float)] of every sample line."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = dict(LABEL.findall(m.group(3) or ""))
        out.append((m.group(1), labels, float(m.group(4))))
    return out


def pick(samples, name, **labels):
    return [(l, v) for n, l, v in samples
            if n == name and all(l.get(k) == x for k, x in labels.items())]


class PrometheusTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(config=FAST).start()
        try:
            dep = cls.d.create(displayName="prom-digits", instanceCount=2)
            cls.dep = cls.d.wait_state(dep["id"], "ACTIVE")
            q = 'CpuUtilization[10s]{resourceId = "%s"}.max() >= 0' \
                % cls.dep["id"]
            r = cls.d.api("POST", "/v1/alarms",
                          {"displayName": "prom_always", "query": q,
                           "pendingDuration": "PT1S",
                           "severity": "WARNING"})
            assert r.status == 201, r
            cls.alarm = r.json
            wait_for("the alarm to fire", lambda: cls.d.api(
                "GET", "/v1/alarms/%s/status" % cls.alarm["id"]).json[
                    "status"] == "FIRING", timeout=30)
        except BaseException:
            cls.d.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def scrape(self):
        r = self.d.api("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("Content-Type"),
                         "text/plain; version=0.0.4; charset=utf-8")
        return r.raw.decode("utf-8") if isinstance(r.raw, bytes) else r.raw

    def test_metrics_pass_promtool_and_match_the_api(self):
        promtool = need("promtool", "prometheus")
        dep_id = self.dep["id"]
        sent = 0
        for _ in range(25):
            r = self.d.gw("GET", "/%s/health" % dep_id)
            self.assertEqual(r.status, 200, r)
            sent += 1
        with Load(self.d.gw_port, "/prom-digits/predict") as load:
            time.sleep(1.5)
        self.assertEqual(load.failures, [])
        sent += load.ok
        # A label value that needs escaping (alarm names are free text).
        r = self.d.api("POST", "/v1/alarms", {
            "displayName": 'odd "name" \\ x\ny',
            "query": "CpuUtilization[1m].max() > 1000"})
        self.assertEqual(r.status, 201, r)
        odd = r.json["id"]
        self.addCleanup(self.d.api, "DELETE", "/v1/alarms/" + odd)
        # One sample per instance must have come in, too.
        wait_for("CPU samples of both instances", lambda: len(pick(
            parse(self.scrape()), "mdscale_instance_cpu_utilization_ratio",
            deployment=dep_id)) == 2, timeout=30)
        text = self.scrape()
        p = subprocess.run([promtool, "check", "metrics"], input=text,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0,
                         "promtool check metrics failed:\n%s%s\n-- input:\n%s"
                         % (p.stdout, p.stderr, text))
        s = parse(text)
        dep = self.d.get(dep_id)
        ready = sum(1 for i in dep["instances"] if i["state"] == "READY")
        desired = pick(s, "mdscale_deployment_instances", deployment=dep_id,
                       state="desired")
        self.assertEqual([v for _, v in desired], [dep["instanceCount"]])
        self.assertEqual(desired[0][0]["name"], "prom-digits")
        self.assertEqual(desired[0][0]["shape"], dep["instanceShapeName"])
        self.assertEqual([v for _, v in pick(
            s, "mdscale_deployment_instances", deployment=dep_id,
            state="ready")], [ready])
        info = pick(s, "mdscale_deployment_info", deployment=dep_id)
        self.assertEqual(info[0][0]["lifecycle_state"], "ACTIVE")
        self.assertEqual(info[0][1], 1)
        insts = {i["id"] for i in dep["instances"]}
        for name in ("mdscale_instance_cpu_utilization_ratio",
                     "mdscale_instance_memory_utilization_ratio",
                     "mdscale_instance_restarts_total"):
            got = pick(s, name, deployment=dep_id)
            # Not "instance": Prometheus sets that on every target.
            self.assertEqual({l["instance_id"] for l, _ in got}, insts, name)
            for _, v in got:
                self.assertGreaterEqual(v, 0, name)
                if "ratio" in name:
                    # A short sample interval can measure a little over
                    # the shape's quota (usage counted against wall time).
                    self.assertLess(v, 2.0, name)
        ok = pick(s, "mdscale_gateway_requests_total", deployment=dep_id,
                  code="200")
        self.assertGreaterEqual(ok[0][1], sent)
        self.assertEqual(len(pick(s, "mdscale_gateway_requests_total",
                                  deployment=dep_id, code="none")), 1)
        for labels, _ in pick(s, "mdscale_gateway_requests_total"):
            self.assertRegex(labels["code"], r"^([1-5][0-9][0-9]|none)$")
        self.assertEqual([l for _, l, _ in s if "instance" in l], [],
                         "no series may carry the label 'instance'")
        buckets = pick(s, "mdscale_gateway_request_duration_seconds_bucket",
                       deployment=dep_id)
        self.assertEqual(buckets[-1][0]["le"], "+Inf")
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts), "buckets not cumulative")
        les = [float(l["le"]) for l, _ in buckets]
        self.assertEqual(les, sorted(les))
        count = pick(s, "mdscale_gateway_request_duration_seconds_count",
                     deployment=dep_id)[0][1]
        self.assertEqual(count, counts[-1])
        self.assertGreaterEqual(count, sent)
        total = sum(v for _, v in pick(s, "mdscale_gateway_requests_total",
                                       deployment=dep_id))
        self.assertEqual(count, total)
        self.assertGreater(pick(
            s, "mdscale_gateway_request_duration_seconds_sum",
            deployment=dep_id)[0][1], 0)
        self.assertEqual(len(pick(s, "mdscale_gateway_inflight_requests",
                                  deployment=dep_id)), 1)
        firing = pick(s, "mdscale_alarm_firing", alarm=self.alarm["id"])
        self.assertEqual(firing[0][0]["name"], "prom_always")
        self.assertEqual(firing[0][0]["severity"], "WARNING")
        self.assertEqual(firing[0][1], 1)
        self.assertEqual(pick(s, "mdscale_alarm_firing", alarm=odd)[0][0]
                         ["name"], 'odd \\"name\\" \\\\ x\\ny')
        self.assertGreaterEqual(pick(s, "mdscale_alarm_streams_firing",
                                     alarm=self.alarm["id"])[0][1], 1)
        wr = pick(s, "mdscale_workrequests_total",
                  operation="CREATE_DEPLOYMENT", status="SUCCEEDED")
        self.assertGreaterEqual(wr[0][1], 1)
        # Only final states: the counter never goes down.
        self.assertEqual({l["status"] for l, _ in pick(
            s, "mdscale_workrequests_total")}, {"SUCCEEDED", "FAILED"})
        for name in ("process_cpu_seconds_total",
                     "process_resident_memory_bytes",
                     "process_virtual_memory_bytes",
                     "process_virtual_memory_max_bytes",
                     "process_open_fds", "process_max_fds",
                     "process_start_time_seconds"):
            self.assertGreater(pick(s, name)[0][1], 0, name)
        self.assertAlmostEqual(pick(s, "process_start_time_seconds")[0][1],
                               time.time(), delta=600)
        self.assertIn(("process_cpu_seconds_total", "counter"),
                      re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
        self.assertGreaterEqual(pick(s, "mdscale_event_loop_lag_seconds")
                                [0][1], 0)
        # Every loop turn is counted once, in cumulative buckets; the
        # largest turn lies in the first bucket that holds all of them.
        turns = [(float(l["le"]), v) for l, v in
                 pick(s, "mdscale_event_loop_turn_cpu_seconds_bucket")]
        self.assertEqual(turns[-1][0], float("inf"))
        self.assertEqual([b for b, _ in turns], sorted(b for b, _ in turns))
        self.assertEqual([v for _, v in turns], sorted(v for _, v in turns))
        total = pick(s, "mdscale_event_loop_turn_cpu_seconds_count")[0][1]
        self.assertEqual(turns[-1][1], total)
        self.assertGreater(total, 0)
        worst = pick(s, "mdscale_event_loop_turn_cpu_max_seconds")[0][1]
        holds_all = next(b for b, v in turns if v == total)
        self.assertLessEqual(worst, holds_all)
        self.assertGreater(worst, max([b for b, v in turns if v < total],
                                      default=-1))
        self.assertGreater(
            pick(s, "mdscale_event_loop_turn_cpu_seconds_sum")[0][1], 0)
        again = parse(self.scrape())
        self.assertGreater(
            pick(again, "mdscale_event_loop_turn_cpu_seconds_count")[0][1],
            total)
        self.assertEqual(pick(s, "mdscale_build_info")[0][1], 1)
        # Each family's HELP and TYPE come once, before its samples.
        types = re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M)
        self.assertEqual(len(types), len({n for n, _ in types}))
        self.assertIn(("mdscale_gateway_request_duration_seconds",
                       "histogram"), types)

    def test_counters_count_ends_and_only_grow(self):
        def counts():
            s = parse(self.scrape())
            return {(l["operation"], l["status"]): v for l, v in
                    pick(s, "mdscale_workrequests_total")}, s
        before, _ = counts()
        dep = self.d.create(displayName="prom-broken", command="exec sleep 60",
                            readyTimeoutSeconds=1)
        self.d.wait_state(dep["id"], "FAILED")
        # No ready instance: the gateway answers 503 itself.
        r = self.d.gw("GET", "/prom-broken/predict")
        self.assertEqual(r.status, 503, r)
        self.assertEqual([v for _, v in pick(
            parse(self.scrape()), "mdscale_gateway_requests_total",
            deployment=dep["id"], code="503")], [1])
        self.d.delete(dep["id"])
        after, s = counts()
        for k, v in before.items():
            self.assertGreaterEqual(after[k], v, k)
        self.assertEqual(after[("CREATE_DEPLOYMENT", "FAILED")],
                         before[("CREATE_DEPLOYMENT", "FAILED")] + 1)
        self.assertEqual(after[("DELETE_DEPLOYMENT", "SUCCEEDED")],
                         before[("DELETE_DEPLOYMENT", "SUCCEEDED")] + 1)
        self.assertEqual(after[("CREATE_DEPLOYMENT", "SUCCEEDED")],
                         before[("CREATE_DEPLOYMENT", "SUCCEEDED")])

    def test_metrics_needs_a_token_and_exact_path(self):
        r = self.d.api("GET", "/metrics", auth=False)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json["code"], "NotAuthenticated")
        self.assertEqual(self.d.api("GET", "/metrics").status, 200)
        self.assertEqual(self.d.api("GET", "/metricsx").status, 404)
        self.assertEqual(self.d.api("POST", "/metrics", {}).status, 405)

    def test_top_once(self):
        dep_id = self.dep["id"]
        with Load(self.d.gw_port, "/%s/predict" % dep_id, threads=2):
            r = self.d.cli("top", "--once")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("\033", r.stdout)
        row = [l for l in r.stdout.splitlines()
               if l.startswith("prom-digits ")]
        self.assertEqual(len(row), 1, r.stdout)
        cols = row[0].split()
        # NAME STATE READY/COUNT SHAPE CPU% MEM% REQ/S P50ms P99ms
        self.assertEqual(cols[1], "ACTIVE", r.stdout)
        self.assertEqual(cols[2], "2/2", r.stdout)
        self.assertGreater(float(cols[6]), 0, r.stdout)
        self.assertIn("prom_always", r.stdout)

    def test_top_under_tmux_quits_on_q(self):
        tmux = need("tmux", "tmux")
        sock = "mdscale-top-%d" % os.getpid()
        done = os.path.join(self.d.data_dir, "top.rc")
        cmd = ("MDSCALE_URL=http://127.0.0.1:%d MDSCALE_TOKEN=%s %s top; "
               "echo $? > %s; sleep 30" % (self.d.api_port, self.d.token,
                                          os.path.abspath(BIN), done))

        def tm(*args):
            return subprocess.run([tmux, "-L", sock] + list(args),
                                  capture_output=True, text=True,
                                  timeout=30)

        r = tm("-f", "/dev/null", "new-session", "-d", "-x", "80", "-y",
               "24", "sh", "-c", cmd)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(tm, "kill-server")
        screen = wait_for("top's screen in tmux", lambda: (lambda p: p.stdout
                          if "prom-digits" in p.stdout and
                          "READY/COUNT" in p.stdout else None)(
                              tm("capture-pane", "-p")), timeout=20)
        self.assertIn("q: quit", screen)
        tm("send-keys", "q")
        rc = wait_for("top to exit", lambda: read_file(done), timeout=10)
        self.assertEqual(rc, "0", "mdscale top exited with %s" % rc)
        # The terminal is back: the alternate screen is gone.
        after = tm("capture-pane", "-p").stdout
        self.assertNotIn("READY/COUNT", after)


if __name__ == "__main__":
    unittest.main()
