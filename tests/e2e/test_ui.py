"""The web dashboard (/ui/) in a real browser: a live deployment under load,
the page loaded by headless Chromium, its DOM compared with what the API says,
and a screenshot kept in tests/e2e/output/ for a human to look at. Also the
static routes: the redirect, content types, and 404s that cannot escape the
embedded table."""
import html.parser
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import Daemon, Load, model_command, request, wait_for
from test_autoscale import message

FAST = {"sampleIntervalMillis": 250, "evalIntervalMillis": 250}
OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")
CHARTS = ("chart-instances", "chart-cpu", "chart-mem", "chart-rps",
          "chart-latency")


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError(
        "chromium is not installed: the dashboard test needs a real browser "
        "(run scripts/deps.sh as root; it installs Debian's 'chromium')")


def run_chromium(url, *extra, timeout=120):
    profile = tempfile.mkdtemp(prefix="mdscale-chromium-")
    try:
        args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-dev-shm-usage",
                "--user-data-dir=" + profile,
                "--virtual-time-budget=15000"] + list(extra) + [url]
        p = subprocess.run(args, capture_output=True, text=True,
                           timeout=timeout)
        if p.returncode != 0:
            raise AssertionError("chromium exited %d:\n%s"
                                 % (p.returncode, p.stderr[-3000:]))
        return p.stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class Dom(html.parser.HTMLParser):
    """The parts of the dumped DOM the test reads: the text and attributes
    of elements by id, the instance rows, the children of the charts."""

    def __init__(self):
        super().__init__()
        self.text = {}
        self.attrs = {}
        self.rows = []
        self.chart_children = {c: [] for c in CHARTS}
        self.stack = []  # (tag, id or None)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("meta", "link", "br", "img", "input", "col", "hr"):
            return
        ident = a.get("id")
        if ident:
            self.attrs[ident] = a
            self.text.setdefault(ident, "")
        if tag == "tr" and "data-instance-id" in a:
            self.rows.append(a["data-instance-id"])
        for t, i in self.stack:
            if i in self.chart_children:
                self.chart_children[i].append(tag)
        self.stack.append((tag, ident))

    def handle_endtag(self, tag):
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break

    def handle_data(self, data):
        for _, i in self.stack:
            if i is not None:
                self.text[i] += data


class UiTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(config=FAST).start()
        self.addCleanup(self.d.cleanup)

    def get(self, path, token=None):
        return request(self.d.api_port, "GET", path, token=token)

    def test_static_routes(self):
        r = self.get("/ui")
        self.assertEqual(r.status, 301, r)
        self.assertEqual(r.headers.get("Location"), "/ui/")
        for path, ctype, needle in (
                ("/ui/", "text/html", b"fig-instances-table"),
                ("/ui/index.html", "text/html", b"<!doctype html>"),
                ("/ui/app.js", "text/javascript", b"refresh"),
                ("/ui/app.css", "text/css", b".chart")):
            r = self.get(path)
            self.assertEqual(r.status, 200, (path, r))
            self.assertTrue(r.headers["Content-Type"].startswith(ctype),
                            (path, r.headers))
            self.assertEqual(r.headers.get("Cache-Control"), "no-cache")
            self.assertIn(needle, r.raw, path)
        for path in ("/ui/missing.js", "/ui/..", "/ui/%2e%2e%2fmeson.build",
                     "/ui/../v1/health/x", "/ui/a/b", "/ui/api"):
            r = self.get(path)
            self.assertEqual(r.status, 404, (path, r))
            self.assertEqual(r.json["code"], "NotFound", (path, r))
        r = self.d.api("POST", "/ui/app.js", {})
        self.assertEqual(r.status, 405, r)

    def test_query_route(self):
        path = "/ui/api/query?query=CpuUtilization%5B1m%5D%7B%7D.max("
        # The page's data needs the token like any read.
        r = self.get(path)
        self.assertEqual(r.status, 401, r)
        r = self.get(path, token=self.d.token)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["field"], "query", r)

    def test_dashboard_in_browser(self):
        # One instance with the recipe's autoscaling, scaled out by its
        # function (a scaling event to mark), and an alarm that fires under
        # the load (a band to shade).
        r = self.d.api("POST", "/v1/deployments", {
            "displayName": "ui-digits", "command": model_command(),
            "instanceShapeName": "local.xs", "instanceCount": 1,
            "autoscale": {"profile": "recipe"}})
        self.assertEqual(r.status, 201, r)
        dep_id = r.json["id"]
        high = r.json["autoscale"]["alarmIds"][0]
        self.d.wait_state(dep_id, "ACTIVE")
        p = self.d.cli("fn", "invoke", "autoscale",
                       input=message("test-alarm-scale-cpu-up.json", high,
                                     dep_id))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.d.wait_state(dep_id, "ACTIVE")
        r = self.d.api("POST", "/v1/alarms", {
            "displayName": "ui_busy", "pendingDuration": "PT1S",
            "query": 'PredictRequestCount[1s]{resourceId = "%s"}.sum() > 0'
                     % dep_id})
        self.assertEqual(r.status, 201, r)
        busy = r.json["id"]
        with Load(self.d.gw_port, "/%s/predict" % dep_id, threads=3) as load:
            wait_for("the alarm to fire", lambda: self.d.api(
                "GET", "/v1/alarms/%s/status" % busy).json["status"]
                == "FIRING")
            time.sleep(3)
            # The token in the fragment, as docs/dashboard.md says: the
            # page keeps it in sessionStorage and drops it from the URL.
            url = "http://127.0.0.1:%d/ui/?deployment=%s#token=%s" % (
                self.d.api_port, dep_id, self.d.token)
            dom_text = run_chromium(url, "--dump-dom")
            os.makedirs(OUTPUT, exist_ok=True)
            shot = os.path.join(OUTPUT, "dashboard.png")
            if os.path.exists(shot):
                os.unlink(shot)
            run_chromium(url, "--screenshot=" + shot,
                         "--window-size=1280,900", "--hide-scrollbars")
        self.assertGreater(load.ok, 0, load.failures[:5])
        api = self.d.get(dep_id)

        dom = Dom()
        dom.feed(dom_text)
        fig = lambda k: dom.text.get(k, "").strip()
        self.assertEqual(fig("fig-state"), api["lifecycleState"], dom_text[:3000])
        ready = sum(1 for i in api["instances"] if i["state"] == "READY")
        self.assertEqual(fig("fig-ready"), str(ready))
        self.assertEqual(fig("fig-count"), str(api["instanceCount"]))
        self.assertEqual(fig("fig-shape"), api["instanceShapeName"])
        self.assertEqual(sorted(dom.rows),
                         sorted(i["id"] for i in api["instances"]))
        self.assertEqual(dom.attrs["sel-deployment"].get("data-ids"), dep_id)
        self.assertNotIn("error", dom.attrs["status"].get("class", ""),
                         fig("status"))
        self.assertTrue(fig("status").startswith("updated"), fig("status"))
        self.assertIn("hidden", dom.attrs["login"])

        mem = self.d.api("GET", "/ui/api/query?query=" +
                         "MemoryUtilization%5B1m%5D%7BresourceId%20%3D%20%22" +
                         dep_id + "%22%7D.max()")
        for chart in CHARTS:
            self.assertIn("canvas", dom.chart_children[chart], chart)
            points = int(dom.attrs[chart].get("data-points", "0"))
            if chart == "chart-mem" and mem.status != 200:
                continue  # no memory limit here (no cgroups): no series
            self.assertGreater(points, 0, chart)

        # The scaling event is marked on every chart; the firing alarm is
        # shaded and named.
        history = self.d.api("GET", "/v1/deployments/%s/scaling-history"
                             % dep_id).json["items"]
        self.assertEqual([h["action"] for h in history], ["SCALE_OUT"])
        for chart in CHARTS:
            self.assertEqual(dom.attrs[chart].get("data-markers"), "1", chart)
            self.assertGreaterEqual(int(dom.attrs[chart].get("data-bands")),
                                    1, chart)
        self.assertIn("ui_busy", fig("fig-alarms"))

        self.assertTrue(os.path.exists(shot), shot)
        self.assertGreater(os.path.getsize(shot), 20000, shot)
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_dashboard_without_a_token_asks_for_one(self):
        dep_id = self.d.create(displayName="ui-login")["id"]
        url = "http://127.0.0.1:%d/ui/?deployment=%s" % (self.d.api_port,
                                                         dep_id)
        dom = Dom()
        dom.feed(run_chromium(url, "--dump-dom"))
        self.assertNotIn("hidden", dom.attrs["login"])
        self.assertIn("error", dom.attrs["status"].get("class", ""))
        self.assertIn("401", dom.text["status"])
        self.assertEqual(dom.text.get("fig-state", "").strip(), "–")


if __name__ == "__main__":
    unittest.main()
