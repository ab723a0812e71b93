"""POST /v1/metrics/query is evaluated across turns of the daemon's loop,
a few milliseconds a turn: the answers are those of the statistics
computed here for every form of query (grouping, aggregation, functions,
expressions, conditions, the stream limit); a client that goes away frees
its query at once (the 32 slots of queries under way are free again); a
query whose token is revoked meanwhile is answered 401; a daemon stopped
with queries under way answers them and exits cleanly."""
import json
import socket
import time
import unittest

from harness import Daemon, read_answer, wait_for

NS = "e2e_query"
SERIES = 2100  # past the 2,000 streams a query may return
QUERIES_MAX = 32


def value(i):
    return float(i % 100)


def percentile(values, p):
    """As the daemon computes it: linear between the closest ranks."""
    v = sorted(values)
    pos = p * (len(v) - 1)
    lo = int(pos)
    if lo + 1 >= len(v):
        return v[-1]
    return v[lo] + (v[lo + 1] - v[lo]) * (pos - lo)


class QueryPartsTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon().start()
        self.addCleanup(self.d.cleanup)
        # One point per series, at t; group g is i % 3.
        self.t = int(time.time() * 1000) // 60000 * 60000 - 30000
        for first in range(0, SERIES, 50):
            r = self.d.api("POST", "/v1/metrics", {"metricData": [
                {"namespace": NS, "name": "V",
                 "dimensions": {"k": "k%05d" % i, "g": str(i % 3)},
                 "datapoints": [{"timestamp": self.t, "value": value(i)}]}
                for i in range(first, min(first + 50, SERIES))]})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["failedMetricsCount"], 0, r)

    def body(self, query, **kw):
        # Six steps of a minute; the window of the last one holds t.
        b = {"query": query, "namespace": NS,
             "startTime": self.t - 330000, "endTime": self.t + 30000,
             "resolution": "1m"}
        b.update(kw)
        return b

    def query(self, query, **kw):
        return self.d.api("POST", "/v1/metrics/query", self.body(query, **kw))

    def points(self, query):
        """{(sorted dimension items): [values]} of the query's streams."""
        r = self.query(query)
        self.assertEqual(r.status, 200, "%s: %s" % (query, r))
        return {tuple(sorted(it["dimensions"].items())):
                [p["value"] for p in it["aggregatedDatapoints"]]
                for it in r.json["items"]}

    def test_answers_of_every_form(self):
        vals = [value(i) for i in range(SERIES)]
        by_g = {str(g): [value(i) for i in range(g, SERIES, 3)]
                for g in range(3)}
        cases = [
            ("V[1m].grouping().count()", {(): [SERIES]}),
            ("V[1m].grouping().sum()", {(): [sum(vals)]}),
            ("V[1m].grouping().mean()", {(): [sum(vals) / SERIES]}),
            ("V[1m].grouping().max()", {(): [99.0]}),
            ("V[1m].grouping().min()", {(): [0.0]}),
            ("V[1m].grouping().last()", {(): [value(0)]}),  # the first of a tie
            ("V[1m].grouping().percentile(0.9)",
             {(): [percentile(vals, 0.9)]}),
            ("V[1m].groupBy(g).sum()",
             {(("g", g),): [sum(v)] for g, v in by_g.items()}),
            ("V[1m].groupBy(g).percentile(0.25)",
             {(("g", g),): [percentile(v, 0.25)] for g, v in by_g.items()}),
            ('V[1m]{g = "1"}.groupBy(g).count()',
             {(("g", "1"),): [len(by_g["1"])]}),
            ('V[1m]{k =~ "k0000*"}.max()',
             {(("g", str(i % 3)), ("k", "k%05d" % i)): [value(i)]
              for i in range(10)}),
            ("V[1m].grouping().sum() / V[1m].grouping().count()",
             {(): [sum(vals) / SERIES]}),
            ("(V[1m].max() * 2).grouping().max()", {(): [198.0]}),
            ("(V[1m].max()).groupBy(g).count()",
             {(("g", g),): [len(v)] for g, v in by_g.items()}),
        ]
        for query, want in cases:
            self.assertEqual(self.points(query), want, query)
        # A condition: only the streams where it holds, flagged.
        r = self.query("V[1m].max() > 97")
        self.assertEqual(r.status, 200, r)
        got = sorted(it["dimensions"]["k"] for it in r.json["items"]
                     if it.get("conditionMet"))
        self.assertEqual(got, sorted("k%05d" % i for i in range(SERIES)
                                     if value(i) > 97))
        self.assertEqual(len(got), len(r.json["items"]))
        # Every series as it is: past 2,000 streams, refused.
        r = self.query("V[1m].count()")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["code"], "LimitExceeded", r)
        self.assertIn("2000 metric streams", r.json["message"])

    def slow(self, token=None):
        """A socket with a query that takes minutes: eight times the
        percentile of every series, for each of 100,000 steps of a second
        whose day holds t (each is several seconds of work)."""
        body = json.dumps(self.body(
            " + ".join(["V[1d].grouping().percentile(0.5)"] * 8),
            startTime=self.t, endTime=self.t + 100000000,
            resolution="1s")).encode()
        s = socket.create_connection(("127.0.0.1", self.d.api_port),
                                     timeout=60)
        self.addCleanup(s.close)
        s.sendall(("POST /v1/metrics/query HTTP/1.1\r\nHost: x\r\n"
                   "Authorization: Bearer %s\r\nContent-Type: "
                   "application/json\r\nContent-Length: %d\r\n\r\n"
                   % (token or self.d.token, len(body))).encode() + body)
        return s

    def probe(self):
        """The status of a quick query (one series)."""
        return self.query('V[1m]{k = "k00001"}.max()').status

    def test_a_client_that_goes_away_frees_its_query(self):
        socks = [self.slow() for _ in range(QUERIES_MAX)]
        # All slots taken: a query more is refused (503), quick as it is.
        wait_for("the slow queries under way", lambda: self.probe() == 503,
                 timeout=30)
        for s in socks:
            s.close()
        # Their work ends with their clients, long before it would end.
        wait_for("the slots freed", lambda: self.probe() == 200,
                 timeout=30)
        self.assertEqual(self.probe(), 200)

    def test_a_query_whose_token_is_revoked_meanwhile_gets_401(self):
        p = self.d.cli("token", "create", "--read-only", "-o", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        tok = json.loads(p.stdout)
        s = self.slow(token=tok["token"])
        time.sleep(0.5)  # taken in, with a token that still works
        p = self.d.cli("token", "revoke", tok["id"])
        self.assertEqual(p.returncode, 0, p.stderr)
        # 401 now, not the sum minutes later: the work ended with the
        # token (the answer comes only when a query's work ends).
        status, _, body = read_answer(s)
        self.assertIn(" 401 ", status, body)

    def test_a_daemon_stopped_with_queries_under_way_exits_cleanly(self):
        socks = [self.slow() for _ in range(3)]
        time.sleep(0.5)  # taken in
        self.assertEqual(self.d.stop(), 0)
        for s in socks:
            status, _, body = read_answer(s)
            # Answered 503 as monitoring stops, or closed with the server.
            self.assertIn(status.split(" ")[1:2], ([], ["503"]), body)
        self.assertEqual(self.d.sanitizer_reports(), [])


if __name__ == "__main__":
    unittest.main()
