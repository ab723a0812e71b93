"""Hostile volume on PostMetricData: identities past OCI's documented
limits are refused with 400 and store nothing; a post whose new series
would take the store past metricsMaxSeries or metricsMaxStringMB is
refused whole with 400 LimitExceeded naming the limit, stores nothing, and
the daemon restarts with what was kept; many large identities are kept in
the metrics log and come back whole after a graceful restart and after
SIGKILL; a full device refuses posts with 507 and keeps the rest."""
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import Daemon, wait_for


def now_ms():
    return int(time.time() * 1000)


def big_item(i, t, value):
    dims = {}
    for k in range(16):
        v = "s%06d-%02d-" % (i, k)
        dims["dim%02d" % k] = v + "x" * (255 - len(v))
    return {"namespace": "e2e_volume", "name": "Hostile", "dimensions": dims,
            "datapoints": [{"timestamp": t, "value": value}]}


class MetricVolumeTest(unittest.TestCase):
    def start(self, data_dir=None, config=None):
        d = Daemon(data_dir=data_dir, config=config).start()
        self.addCleanup(d.cleanup)
        return d

    def gauge(self, d, name):
        text = d.api("GET", "/metrics").raw.decode()
        m = re.search(r"^%s (\S+)$" % name, text, re.M)
        self.assertIsNotNone(m, name)
        return float(m.group(1))

    def series(self, d, t):
        r = d.api("POST", "/v1/metrics/query", {
            "query": "Hostile[1m].max()", "namespace": "e2e_volume",
            "startTime": t - 59000, "endTime": t + 1000})
        if r.status == 404:
            return {}
        self.assertEqual(r.status, 200, r)
        return {it["dimensions"]["dim00"]: it["aggregatedDatapoints"][-1]
                ["value"] for it in r.json["items"]}

    def post_batches(self, d, t, first, n):
        """Posts big items first.. in batches of 50 until one is refused;
        returns (the items kept, the refused answer or None)."""
        kept = first
        while kept < first + n:
            r = d.api("POST", "/v1/metrics", {"metricData": [
                big_item(i, t, i) for i in range(kept, kept + 50)]})
            if r.status != 200:
                return kept, r
            self.assertEqual(r.json["failedMetricsCount"], 0, r)
            kept += 50
        return kept, None

    def test_the_string_cap_refuses_a_post_whole_and_keeps_the_rest(self):
        # 1 MiB of strings: about 250 series whose 16 values are their own.
        d = self.start(config={"metricsMaxStringMB": 1})
        self.assertEqual(self.gauge(d, "mdscale_metrics_max_string_bytes"),
                         1 << 20)
        t = now_ms()
        kept, r = self.post_batches(d, t, 0, 1000)
        self.assertIsNotNone(r, "1,000 series of 4 KB fit in 1 MiB")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["code"], "LimitExceeded", r)
        self.assertEqual(r.json["field"], "metricData", r)
        self.assertIn("metricsMaxStringMB", r.json["message"])
        self.assertIn("nothing was stored", r.json["message"])
        self.assertGreaterEqual(kept, 200)
        series = self.gauge(d, "mdscale_metrics_series")
        strings = self.gauge(d, "mdscale_metrics_string_bytes")
        self.assertLessEqual(strings, 1 << 20)
        self.assertGreater(self.gauge(d, "mdscale_metrics_bytes_per_series"),
                           16 * 256)
        want = {big_item(i, t, 0)["dimensions"]["dim00"]: i
                for i in range(kept)}
        # A refused post changes nothing, not even the datapoints it
        # carries for series the store knows.
        r = d.api("POST", "/v1/metrics", {"metricData": [
            big_item(0, t + 1, -1)] + [big_item(i, t + 1, -1)
                                       for i in range(kept, kept + 49)]})
        self.assertEqual(r.status, 400, r)
        self.assertIn("metricsMaxStringMB", r.json["message"])
        self.assertEqual(self.gauge(d, "mdscale_metrics_series"), series)
        self.assertEqual(self.gauge(d, "mdscale_metrics_string_bytes"),
                         strings)
        self.assertEqual(self.series(d, t + 1), want)
        # Known series still take datapoints.
        r = d.api("POST", "/v1/metrics", {"metricData": [
            big_item(i, t + 1, 1000 + i) for i in range(10)]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["failedMetricsCount"], 0, r)
        want.update({big_item(i, t, 0)["dimensions"]["dim00"]: 1000 + i
                     for i in range(10)})
        self.assertEqual(self.series(d, t + 1), want)
        # The daemon restarts with every kept series, and the cap holds.
        self.assertEqual(d.stop(), 0)
        d2 = self.start(data_dir=d.data_dir,
                        config={"metricsMaxStringMB": 1})
        wait_for("the log's replay", lambda: self.gauge(
            d2, "mdscale_metrics_loading") == 0)
        self.assertEqual(self.series(d2, t + 1), want)
        self.assertEqual(self.gauge(d2, "mdscale_metrics_series"), series)
        r = d2.api("POST", "/v1/metrics", {"metricData": [
            big_item(i, t + 1, 1) for i in range(kept, kept + 50)]})
        self.assertEqual(r.status, 400, r)
        self.assertIn("metricsMaxStringMB", r.json["message"])
        # A lower limit at start refuses new series, never what the log
        # holds.
        self.assertEqual(d2.stop(), 0)
        d3 = self.start(data_dir=d.data_dir,
                        config={"metricsMaxStringMB": 1,
                                "metricsMaxSeries": 10})
        wait_for("the log's replay", lambda: self.gauge(
            d3, "mdscale_metrics_loading") == 0)
        self.assertEqual(self.series(d3, t + 1), want)
        r = d3.api("POST", "/v1/metrics", {"metricData": [
            dict(big_item(0, t + 1, 1), dimensions={"k": "small"})]})
        self.assertEqual(r.status, 400, r)
        self.assertIn("metricsMaxSeries", r.json["message"])

    def test_the_series_cap_refuses_a_post_whole(self):
        d = self.start(config={"metricsMaxSeries": 120})
        own = self.gauge(d, "mdscale_metrics_series")
        t = now_ms()
        kept, r = self.post_batches(d, t, 0, 500)
        self.assertIsNotNone(r)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["code"], "LimitExceeded", r)
        self.assertIn("metricsMaxSeries", r.json["message"])
        self.assertIn("the limit is 120", r.json["message"])
        self.assertEqual(kept, 50 * int((120 - own) // 50))
        self.assertEqual(self.gauge(d, "mdscale_metrics_series"),
                         own + kept)

    def test_identities_past_the_limits_are_refused_and_store_nothing(self):
        d = self.start()
        t = now_ms()
        before = self.gauge(d, "mdscale_metrics_series")
        ok = big_item(0, t, 1)
        too_many = dict(ok, dimensions=dict(ok["dimensions"], dim16="v"))
        too_long = dict(ok, dimensions={"k": "v" * 256})
        bad_key = dict(ok, dimensions={"a key": "v"})
        empty = dict(ok, dimensions={"k": ""})
        reserved = dict(ok, namespace="oracle_thing")
        long_name = dict(ok, name="N" * 256)
        future = dict(ok, datapoints=[{"timestamp": t + 11 * 60000,
                                       "value": 1}])
        cases = [(too_many, "at most 16"), (too_long, "1 to 255 bytes"),
                 (bad_key, "the key 'a key'"), (empty, "1 to 255 bytes"),
                 (reserved, "oracle_ is reserved"),
                 (long_name, "name must be a string"),
                 (future, "10 minutes in the future")]
        for item, why in cases:
            r = d.api("POST", "/v1/metrics", {
                "metricData": [ok, item], "batchAtomicity": "ATOMIC"})
            self.assertEqual(r.status, 400, (why, r))
            self.assertEqual(r.json["field"], "metricData", r)
            self.assertIn("metricData[1]", r.json["message"])
            self.assertIn(why, r.json["message"])
            self.assertIn("nothing was stored", r.json["message"])
        r = d.api("POST", "/v1/metrics", {"metricData": [ok] * 51})
        self.assertEqual(r.status, 400, r)
        self.assertIn("at most 50", r.json["message"])
        # Nothing of any refused batch was kept, not even the good item.
        self.assertEqual(self.gauge(d, "mdscale_metrics_series"), before)
        self.assertEqual(self.series(d, t), {})

    def test_many_large_identities_survive_restarts(self):
        d = self.start()
        t = now_ms()
        n = 400
        for first in range(0, n, 50):
            r = d.api("POST", "/v1/metrics", {"metricData": [
                big_item(i, t, i) for i in range(first, first + 50)]})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["failedMetricsCount"], 0, r)
        self.assertGreaterEqual(self.gauge(d, "mdscale_metrics_series"), n)
        # Every value string is stored once: at least 16 * 256 bytes a
        # series, and the whole store stays under its documented bound.
        strings = self.gauge(d, "mdscale_metrics_string_bytes")
        self.assertGreaterEqual(strings, n * 16 * 256)
        self.assertLess(self.gauge(d, "mdscale_metrics_store_bytes"),
                        strings + n * 16 * 1024)
        want = {big_item(i, t, i)["dimensions"]["dim00"]: i
                for i in range(n)}
        self.assertEqual(self.series(d, t), want)
        log = os.path.join(d.data_dir, "metrics.log")
        self.assertGreater(os.path.getsize(log), n * 16 * 255)

        # A graceful restart: everything is back.
        self.assertEqual(d.stop(), 0)
        d2 = Daemon(data_dir=d.data_dir)
        d2.start()
        self.addCleanup(d2.cleanup)
        wait_for("the log's replay", lambda: self.gauge(
            d2, "mdscale_metrics_loading") == 0)
        self.assertEqual(self.series(d2, t), want)

        # One more datapoint each for ten series, then SIGKILL right
        # after the answer: acknowledged means written.
        r = d2.api("POST", "/v1/metrics", {"metricData": [
            big_item(i, t + 1, 1000 + i) for i in range(10)]})
        self.assertEqual(r.json["failedMetricsCount"], 0, r)
        for i in range(10):
            want[big_item(i, t, 0)["dimensions"]["dim00"]] = 1000 + i
        d2.kill()
        d3 = Daemon(data_dir=d.data_dir)
        d3.start()
        self.addCleanup(d3.cleanup)
        wait_for("the log's replay", lambda: self.gauge(
            d3, "mdscale_metrics_loading") == 0)
        self.assertEqual(self.series(d3, t + 1), want)

    def test_a_full_disk_refuses_posts_with_507_and_keeps_the_rest(self):
        if os.geteuid() != 0:
            self.fail("this test mounts a tmpfs: it needs root")
        top = tempfile.mkdtemp(prefix="mdscale-full-")
        self.addCleanup(shutil.rmtree, top, True)
        mnt = os.path.join(top, "mnt")
        os.mkdir(mnt)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs",
                        mnt], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", mnt])
        data = os.path.join(mnt, "data")
        d = Daemon(data_dir=data)
        d.owns_dir = False
        d.log_path = os.path.join(top, "daemon.log")
        d.start()
        self.addCleanup(d.cleanup)
        t = now_ms()
        r = d.api("POST", "/v1/metrics", {"metricData": [
            big_item(i, t, i) for i in range(10)]})
        self.assertEqual(r.json["failedMetricsCount"], 0, r)
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb", buffering=0) as f:
            for size in (1 << 20, 4096, 1):
                try:
                    while True:
                        f.write(b"\0" * size)
                except OSError:
                    pass
        before = self.gauge(d, "mdscale_metrics_series")
        r = d.api("POST", "/v1/metrics", {"metricData": [
            big_item(i, t + 1, -1) for i in range(5, 20)]})
        self.assertEqual(r.status, 507, r)
        self.assertIn("nothing was stored", r.json["message"])
        want = {big_item(i, t, 0)["dimensions"]["dim00"]: i
                for i in range(10)}
        self.assertEqual(self.series(d, t + 1), want)
        # Space is back: posts work again, and a restart keeps them all.
        os.unlink(filler)
        r = d.api("POST", "/v1/metrics", {"metricData": [
            big_item(i, t + 1, 100 + i) for i in range(10, 12)]})
        self.assertEqual(r.json["failedMetricsCount"], 0, r)
        want.update({big_item(i, t, 0)["dimensions"]["dim00"]: 100 + i
                     for i in range(10, 12)})
        self.assertGreaterEqual(self.gauge(d, "mdscale_metrics_series"),
                                before)
        d.kill()
        d2 = Daemon(data_dir=data)
        d2.owns_dir = False
        d2.log_path = os.path.join(top, "daemon2.log")
        d2.start()
        self.addCleanup(d2.cleanup)
        wait_for("the log's replay", lambda: self.gauge(
            d2, "mdscale_metrics_loading") == 0)
        self.assertEqual(self.series(d2, t + 1), want)


if __name__ == "__main__":
    unittest.main()
