"""The web dashboard (/ui/) in a real browser: live deployments under load,
the page loaded by headless Chromium, its DOM compared with what the API says;
the overview, a click into one deployment, hover, drag to zoom, the range
buttons and the markers driven through Chromium's DevTools protocol with real
mouse events; screenshots kept in tests/e2e/output/ for a human to look at.
Also the static routes: the redirect, content types, and 404s that cannot
escape the embedded table."""
import base64
import html.parser
import json
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
CHARTS = ("chart-instances", "chart-rps", "chart-errors", "chart-latency",
          "chart-cpu", "chart-mem")
# The page's bound on points per series (MAX_POINTS in ui/app.js).
MAX_POINTS = 120


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


class Browser:
    """Headless Chromium driven over --remote-debugging-pipe (the DevTools
    protocol as NUL-terminated JSON on file descriptors 3 and 4): one page,
    real input events, screenshots."""

    def __init__(self, width=1280, height=900):
        self.profile = tempfile.mkdtemp(prefix="mdscale-chromium-")
        to_r, self.to_w = os.pipe()
        self.from_r, from_w = os.pipe()

        def fds():
            a, b = os.dup(to_r), os.dup(from_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.p = subprocess.Popen(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
             "--hide-scrollbars", "--remote-debugging-pipe",
             "--user-data-dir=" + self.profile, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, preexec_fn=fds, pass_fds=(3, 4))
        os.close(to_r)
        os.close(from_w)
        self.buf = b""
        self.next_id = 0
        target = self.call("Target.createTarget", url="about:blank")
        self.session = self.call("Target.attachToTarget",
                                 targetId=target["targetId"],
                                 flatten=True)["sessionId"]
        self.page("Emulation.setDeviceMetricsOverride", width=width,
                  height=height, deviceScaleFactor=1, mobile=False)

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        os.close(self.to_w)
        os.close(self.from_r)
        shutil.rmtree(self.profile, ignore_errors=True)

    def call(self, method, session=None, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + 60
        while time.time() < deadline:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                r = json.loads(raw)
                if r.get("id") != self.next_id:
                    continue  # an event, or an answer nobody waits for
                if "error" in r:
                    raise AssertionError("%s: %s" % (method, r["error"]))
                return r["result"]
            chunk = os.read(self.from_r, 1 << 20)
            if not chunk:
                raise AssertionError("chromium went away during " + method)
            self.buf += chunk
        raise AssertionError("no answer to " + method)

    def page(self, method, **params):
        return self.call(method, session=self.session, **params)

    def open(self, url):
        self.page("Page.navigate", url=url)

    def js(self, expr):
        r = self.page("Runtime.evaluate", expression=expr, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError("%s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait(self, what, expr, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                v = self.js(expr)
            except AssertionError:
                v = None  # the page is still loading
            if v:
                return v
            time.sleep(0.2)
        raise AssertionError("page: no %s (%s)\nstatus: %s\n%s" % (
            what, expr, self.js("document.getElementById('status')"
                                ".textContent"),
            self.js("document.querySelector('main').innerText")[:2000]))

    def dom(self):
        d = Dom()
        d.feed(self.js("document.documentElement.outerHTML"))
        return d

    def mouse(self, kind, x, y, button="none", buttons=0):
        self.page("Input.dispatchMouseEvent", type=kind, x=x, y=y,
                  button=button, buttons=buttons, clickCount=1)

    def click(self, x, y):
        self.mouse("mouseMoved", x, y)
        self.mouse("mousePressed", x, y, "left", 1)
        self.mouse("mouseReleased", x, y, "left", 0)

    def rect(self, selector):
        """The element's box in the viewport: {x, y, w, h}."""
        return self.js("(function(){var r=document.querySelector(%s)"
                       ".getBoundingClientRect();return {x:r.x,y:r.y,"
                       "w:r.width,h:r.height};})()" % json.dumps(selector))

    def screenshot(self, path):
        """A PNG of the page down to the end of its content."""
        h = self.js("Math.ceil(document.querySelector('main')"
                    ".getBoundingClientRect().bottom) + 6")
        w = self.js("window.innerWidth")
        data = self.page("Page.captureScreenshot", format="png",
                         clip={"x": 0, "y": 0, "width": w, "height": h,
                               "scale": 1})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))


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
        # Two deployments. One with the recipe's autoscaling, scaled out by
        # its function (a scaling event to mark), under load, with an alarm
        # that fires (a band to shade, a transition to mark); one idle.
        r = self.d.api("POST", "/v1/deployments", {
            "displayName": "ui-digits", "command": model_command(),
            "instanceShapeName": "local.xs", "instanceCount": 1,
            "autoscale": {"profile": "recipe"}})
        self.assertEqual(r.status, 201, r)
        dep_id = r.json["id"]
        high = r.json["autoscale"]["alarmIds"][0]
        idle_id = self.d.create(displayName="ui-idle")["id"]
        # And one scaled to zero: idle, not broken.
        self.zero_id = self.d.create(displayName="ui-zero",
                                     instanceCount=0)["id"]
        self.d.wait_state(dep_id, "ACTIVE")
        self.d.wait_state(idle_id, "ACTIVE")
        self.d.wait_state(self.zero_id, "ACTIVE")
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
        os.makedirs(OUTPUT, exist_ok=True)
        base = "http://127.0.0.1:%d/ui/" % self.d.api_port
        b = Browser()
        self.addCleanup(b.close)
        with Load(self.d.gw_port, "/%s/predict" % dep_id, threads=3) as load:
            wait_for("the alarm to fire", lambda: self.d.api(
                "GET", "/v1/alarms/%s/status" % busy).json["status"]
                == "FIRING")
            time.sleep(20)  # a stretch of load to show
            b.open(base + "#token=%s" % (self.d.token or ""))
            self.check_overview(b, dep_id, idle_id, load)
            self.check_deployment(b, dep_id, load)
            self.check_reload(b, dep_id)
            self.check_zoom_and_hover(b, dep_id)
            self.check_ranges(b)
        self.assertGreater(load.ok, 0, load.failures[:5])

    def check_overview(self, b, dep_id, idle_id, load):
        """Every deployment with its figures; the screenshot."""
        rows = "#overview-table tbody tr"
        b.wait("a row per deployment and live figures",
               "document.querySelectorAll('%s').length == 3 && "
               "document.getElementById('status').textContent"
               ".startsWith('updated') && document.querySelector("
               "'tr[data-deployment-id=\"%s\"] .p99').textContent != '–'"
               " && parseFloat(document.querySelector('tr[data-deployment-id="
               "\"%s\"] .rps').textContent) > 0" % (rows, dep_id, dep_id))
        time.sleep(2.5)  # one more poll: p99 over the last interval
        shot = os.path.join(OUTPUT, "dashboard-overview.png")
        b.screenshot(shot)
        self.assert_png(shot)
        cells = b.js("Array.prototype.map.call(document.querySelectorAll("
                     "'%s'), function (tr) { var o = {id: tr.getAttribute("
                     "'data-deployment-id')}; Array.prototype.forEach.call("
                     "tr.cells, function (td, i) { o[i] = td.textContent; "
                     "}); o.firing = tr.querySelector('.alarms')"
                     ".getAttribute('data-firing'); return o; })" % rows)
        by = {c["id"]: c for c in cells}
        self.assertEqual(set(by), {dep_id, idle_id, self.zero_id}, cells)
        # At zero instances: IDLE, where the API says ACTIVE.
        zero = by.pop(self.zero_id)
        self.assertEqual(zero["1"], "IDLE", zero)
        self.assertEqual(zero["3"], "0 / 0", zero)
        for d in (dep_id, idle_id):
            api = self.d.get(d)
            c = by[d]
            self.assertTrue(c["0"].startswith(api["displayName"]), c)
            self.assertEqual(c["1"], api["lifecycleState"], c)
            self.assertEqual(c["2"], api["instanceShapeName"], c)
            # Ready instances change between the page's poll and this read
            # when an overloaded instance restarts (a sanitizer build's
            # model server can run out of memory): the count desired may
            # not.
            self.assertRegex(c["3"], r"^\d+ / %d$" % api["instanceCount"], c)
            self.assertLessEqual(int(c["3"].split()[0]),
                                 api["instanceCount"], c)
            self.assertRegex(c["7"], r"^(\d+%|–)$", c)
            self.assertRegex(c["8"], r"^(\d+%|–)$", c)
        busy, idle = by[dep_id], by[idle_id]
        self.assertGreater(float(busy["4"]), 0, busy)
        # The error rate is the 5xx share the gateway counted: 0% when the
        # clients saw no failure (an instance slowed by a sanitizer build
        # may be overrun and answer 503s, which the page must show).
        if not load.failures:
            self.assertEqual(busy["5"], "0%", busy)
        else:
            self.assertRegex(busy["5"], r"^\d+(\.\d+)?%$", busy)
        self.assertRegex(busy["6"], r"^[\d.]+ m?s$", busy)
        self.assertRegex(busy["7"], r"^\d+%$", busy)
        self.assertIn("ui_busy", busy["9"], busy)
        self.assertEqual(busy["firing"], "1", busy)
        self.assertEqual(float(idle["4"]), 0, idle)
        self.assertEqual(idle["5"], "–", idle)
        self.assertEqual(idle["6"], "–", idle)
        self.assertEqual(idle["9"], "none", idle)

    def check_deployment(self, b, dep_id, load):
        """A click on the row opens the deployment's view; its figures
        equal the API's; every chart has points, the scaling event and the
        alarm band; every marker label inside its plot; the screenshot."""
        r = b.rect('tr[data-deployment-id="%s"] td:nth-child(4)' % dep_id)
        b.click(r["x"] + r["w"] / 2, r["y"] + r["h"] / 2)
        b.wait("the deployment view",
               "!document.getElementById('deployment').hidden && "
               "location.hash == '#deployment=%s' && document.getElementById"
               "('fig-name').textContent == 'ui-digits' && "
               "+document.getElementById('chart-latency').getAttribute("
               "'data-points') > 0" % dep_id)
        self.assertTrue(b.js("document.getElementById('overview').hidden"))
        time.sleep(2.5)
        # The page shows what its last poll read: an instance that changes
        # state between that poll and the API's read here (a sanitizer
        # build's model server can be overrun and restart) makes the two
        # differ for one poll. Read both again until they agree, for a few
        # polls at most; the assertions below then compare one moment.
        for _ in range(20):
            api = self.d.get(dep_id)
            dom = b.dom()
            fig = lambda k: dom.text.get(k, "").strip()
            ready = sum(1 for i in api["instances"] if i["state"] == "READY")
            # The address column: where the gateway reaches each instance.
            shown = dict(b.js(
                "Array.prototype.map.call(document.querySelectorAll("
                "'#fig-instances-table tbody tr'), function (tr) { return "
                "[tr.getAttribute('data-instance-id'), "
                "tr.cells[3].textContent]; })"))
            where = {i["id"]: "%s:%d" % (i["address"], i["port"])
                     for i in api["instances"]}
            if (fig("fig-state"), fig("fig-ready"), fig("fig-count"),
                    sorted(dom.rows), shown) == (
                    api["lifecycleState"], str(ready),
                    str(api["instanceCount"]),
                    sorted(i["id"] for i in api["instances"]), where):
                break
            time.sleep(0.5)
        self.assertEqual(shown, where)
        self.assertTrue(all(v.startswith("127.0.0.1:")
                            for v in shown.values()), shown)
        self.assertEqual(fig("fig-state"), api["lifecycleState"])
        self.assertEqual(fig("fig-ready"), str(ready))
        self.assertEqual(fig("fig-count"), str(api["instanceCount"]))
        self.assertEqual(fig("fig-shape"), api["instanceShapeName"])
        self.assertEqual(sorted(dom.rows),
                         sorted(i["id"] for i in api["instances"]))
        self.assertNotIn("error", dom.attrs["status"].get("class", ""),
                         fig("status"))
        self.assertTrue(fig("status").startswith("updated"), fig("status"))
        self.assertIn("hidden", dom.attrs["login"])  # no 401: no sign-in
        self.assertRegex(fig("fig-latency"),
                         r"^[\d.]+ m?s / [\d.]+ m?s / [\d.]+ m?s$")
        # 0.00% when the clients saw no failure (see check_overview).
        if not load.failures:
            self.assertEqual(fig("fig-errors"), "0.00%")
        else:
            self.assertRegex(fig("fig-errors"), r"^\d+\.\d\d%$")
        self.assertIn("ui_busy", fig("fig-alarms"))

        mem = self.d.api("GET", "/ui/api/query?query=" +
                         "MemoryUtilization%5B1m%5D%7BresourceId%20%3D%20%22" +
                         dep_id + "%22%7D.max()")
        history = self.d.api("GET", "/v1/deployments/%s/scaling-history"
                             % dep_id).json["items"]
        self.assertEqual([h["action"] for h in history], ["SCALE_OUT"])
        for chart in CHARTS:
            a = dom.attrs[chart]
            self.assertIn("canvas", dom.chart_children[chart], chart)
            if not (chart == "chart-mem" and mem.status != 200):
                # (no memory limit without cgroups: no memory series)
                self.assertGreater(int(a.get("data-points", "0")), 0, chart)
            # The scaling event and the alarm's OK_TO_FIRING transition.
            self.assertGreaterEqual(int(a.get("data-markers")), 2, chart)
            self.assertGreaterEqual(int(a.get("data-bands")), 1, chart)
            self.assert_labels_inside(chart, a)

    def assert_labels_inside(self, chart, attrs):
        left, right = json.loads(attrs["data-plot"])
        labels = json.loads(attrs["data-labels"])
        self.assertGreater(len(labels), 0, (chart, attrs))
        for a, z in labels:
            self.assertTrue(left <= a < z <= right, (chart, a, z, left, right))

    def check_reload(self, b, dep_id):
        """The address keeps the view: a reload opens it again; a display
        name there is taken too."""
        b.page("Page.reload")
        b.wait("the same view after a reload",
               "location.hash == '#deployment=%s' && document.getElementById"
               "('fig-name').textContent == 'ui-digits' && "
               "document.getElementById('status').textContent"
               ".startsWith('updated')" % dep_id)
        # A link may name the deployment by its display name: the page
        # turns the address into the id.
        b.js("location.hash = '#deployment=ui-digits&range=900'")
        b.wait("the name resolved to the id",
               "location.hash == '#deployment=%s&range=900' && "
               "document.getElementById('charts').getAttribute('data-span')"
               " == '900'" % dep_id)
        b.js("location.hash = '#deployment=%s'" % dep_id)
        b.wait("the 5m range again", "document.getElementById('charts')"
               ".getAttribute('data-span') == '300'")

    def column(self, b, chart, x):
        """The pixels of one column of a chart's plot, as a list."""
        return b.js("(function(){var cv=document.querySelector('#%s canvas')"
                    ";var p=JSON.parse(cv.parentNode.getAttribute('data-plot'"
                    "));var d=cv.getContext('2d').getImageData(%d,8,1,"
                    "cv.height-30).data;return Array.prototype.slice.call(d);"
                    "})()" % (chart, x))

    def check_zoom_and_hover(self, b, dep_id):
        """A drag over the last quarter zooms every chart's time axis to it
        and pauses the polling; hover draws a crosshair on every chart and
        a tooltip with values (the screenshot); reset returns to the range
        and the polling."""
        r = b.rect("#chart-rps canvas")
        plot = json.loads(b.js("document.getElementById('chart-rps')"
                               ".getAttribute('data-plot')"))
        pw = plot[1] - plot[0]
        x0, x1 = r["x"] + plot[0] + pw * 0.75, r["x"] + plot[0] + pw
        y = r["y"] + r["h"] / 2
        b.mouse("mouseMoved", x0, y)
        b.mouse("mousePressed", x0, y, "left", 1)
        for k in range(1, 6):
            b.mouse("mouseMoved", x0 + (x1 - x0) * k / 5, y, "left", 1)
        b.mouse("mouseReleased", x1, y, "left", 0)
        b.wait("the zoom", "document.getElementById('charts').getAttribute("
               "'data-zoom') && document.getElementById('status')"
               ".textContent == 'zoomed: paused'")
        span = float(b.js("document.getElementById('charts')"
                          ".getAttribute('data-span')"))
        self.assertAlmostEqual(span, 300 * 0.25, delta=3)
        self.assertFalse(b.js("document.getElementById('zoom-reset').hidden"))
        # Paused: no request while zoomed.
        b.mouse("mouseMoved", 5, 5)
        time.sleep(0.5)
        n = b.js("performance.getEntriesByType('resource').length")
        time.sleep(4.5)
        self.assertEqual(b.js("performance.getEntriesByType('resource')"
                              ".length"), n)

        # Hover over the latency chart: a tooltip with its series' values,
        # and the crosshair in every chart's column under the cursor.
        rl = b.rect("#chart-latency canvas")
        hx = int(plot[0] + pw * 0.8)
        before = {c: self.column(b, c, hx) for c in CHARTS}
        b.mouse("mouseMoved", rl["x"] + hx, rl["y"] + rl["h"] / 2)
        tip = b.wait("the tooltip", "!document.getElementById('tooltip')"
                     ".hidden && document.getElementById('tooltip')"
                     ".innerText")
        self.assertIn("Latency", tip)
        for name in ("p50", "p95", "p99", "max"):
            self.assertRegex(tip, name + r": ([\d.]+ m?s|–)", tip)
        self.assertRegex(tip, r"p99: [\d.]+ m?s", tip)
        for c in CHARTS:
            after = self.column(b, c, hx)
            changed = sum(1 for i in range(0, len(after), 4)
                          if after[i:i + 3] != before[c][i:i + 3])
            self.assertGreater(changed, len(after) / 4 * 0.5,
                               (c, "no crosshair"))
        shot = os.path.join(OUTPUT, "dashboard-deployment.png")
        b.screenshot(shot)
        self.assert_png(shot)
        b.mouse("mouseMoved", 5, 5)
        b.wait("the tooltip to go",
               "document.getElementById('tooltip').hidden")

        rr = b.rect("#zoom-reset")
        b.click(rr["x"] + rr["w"] / 2, rr["y"] + rr["h"] / 2)
        b.wait("the range again", "!document.getElementById('charts')"
               ".getAttribute('data-zoom') && document.getElementById("
               "'charts').getAttribute('data-span') == '300'")
        n = b.js("performance.getEntriesByType('resource').length")
        b.wait("polling again", "performance.getEntriesByType('resource')"
               ".length > %d" % n)

    def check_ranges(self, b):
        """Every range button up to the retention queries at a resolution
        that keeps each series to MAX_POINTS points."""
        b.js("performance.setResourceTimingBufferSize(100000)")
        for rng in (900, 3600, 21600, 86400, 300):
            b.js("performance.clearResourceTimings()")
            r = b.rect('#ranges button[data-range="%d"]' % rng)
            b.click(r["x"] + r["w"] / 2, r["y"] + r["h"] / 2)
            b.wait("range %d" % rng,
                   "document.getElementById('charts').getAttribute("
                   "'data-span') == '%d'" % rng)
            self.assertEqual(b.js("location.hash"), "#deployment=%s%s" % (
                b.js("new URLSearchParams(location.hash.slice(1))"
                     ".get('deployment')"),
                "" if rng == 300 else "&range=%d" % rng))
            b.wait("the range's queries",
                   "performance.getEntriesByType('resource').some(function"
                   "(e){return e.name.indexOf('api/query')>=0;})")
            urls = b.js("performance.getEntriesByType('resource').map("
                        "function(e){return e.name;}).filter(function(u)"
                        "{return u.indexOf('api/query')>=0;})")
            res = int(b.js("document.getElementById('charts')"
                           ".getAttribute('data-resolution')"))
            self.assertLessEqual(rng / res, MAX_POINTS, rng)
            for u in urls:
                q = dict(x.split("=", 1) for x in u.split("?", 1)[1]
                         .split("&"))
                span = (int(q["endTime"]) - int(q["startTime"])) / 1000
                step = int(q["resolution"][2:-1])
                self.assertLessEqual(span / step, MAX_POINTS, u)
            for c in CHARTS:
                n = int(b.js("document.getElementById('%s').getAttribute("
                             "'data-series-max')" % c))
                self.assertLessEqual(n, MAX_POINTS + 1, (c, rng))

    def assert_png(self, shot):
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
