"""Scale to zero on the real daemon and model server: a deployment may hold
zero instances; the gateway holds requests for it, starts an instance at
once, and forwards them in order; holding has limits, and a client that goes
away or a deployment deleted meanwhile are handled."""
import json
import os
import socket
import tempfile
import time
import unittest

from harness import (Burst, Daemon, digits_rows, model_command,
                     read_answer, recorder_files, wait_for)


def raw_get(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    return s


def raw_post(port, path, size):
    """A POST of a declared body of size bytes, sent whole (it fits what
    the gateway reads of a held request's body, 1 MiB)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
               "\r\n" % (path, size)).encode() + b"x" * size)
    return s


def answer(s):
    """Reads one answer on socket s and closes it: its status line, its
    headers (lower-case names) and its body, parsed when JSON."""
    try:
        line, headers, body = read_answer(s)
    finally:
        s.close()
    if headers.get("content-type", "").startswith("application/json"):
        body = json.loads(body)
    return line, headers, body


class ScaleToZeroTest(unittest.TestCase):
    def start(self, **config):
        self.d = Daemon(config=config or None).start()
        self.addCleanup(self.d.cleanup)
        return self.d

    def at_zero(self, **spec):
        spec.setdefault("instanceCount", 0)
        dep = self.d.create(**spec)
        dep = self.d.wait_state(dep["id"], "ACTIVE")
        self.assertEqual(dep["instanceCount"], 0)
        self.assertEqual(
            [i for i in dep["instances"] if i["state"] != "STOPPED"], [])
        return dep

    def recorder(self, delay=0, gate=None):
        """The command of a recording instance and its log. It starts
        after delay seconds, and with a gate (a path from gate()) only
        once the test opens it."""
        tmp = tempfile.mkdtemp(prefix="mdscale-zero-")
        # Instances run as the unprivileged user: let it in.
        os.chmod(tmp, 0o755)
        script, log = recorder_files(tmp)
        # /usr/bin/python3: the instance's user may not reach another one.
        cmd = "sleep %g; exec /usr/bin/python3 %s 127.0.0.1 $PORT %s" % (
            delay, script, log)
        if gate is not None:
            cmd = "until [ -e %s ]; do sleep 0.05; done; %s" % (gate, cmd)
        return cmd, log

    def gate(self):
        """A gate for recorder(): its instances do not start until the test
        calls the function returned; until then the gateway holds every
        request for them, however slow the machine."""
        tmp = tempfile.mkdtemp(prefix="mdscale-gate-")
        os.chmod(tmp, 0o755)
        path = os.path.join(tmp, "open")

        def open_gate():
            open(path, "w").close()
        return path, open_gate

    def wait_held(self, dep_id, n):
        """Waits until the gateway holds n requests for dep_id, a deployment
        with no ready instance. GET /v1/top's inflight counts the requests
        the gateway has taken for a deployment, from their head on; with no
        instance to route to, the gateway's loop holds each in the same step
        in which it counts it (or refuses it past a limit; these tests send
        the next request only once the earlier ones are counted, and read
        every refusal before going on). Requests sent afterwards are read
        by the same loop after those, so they meet the queue as it is."""
        def held():
            r = self.d.api("GET", "/v1/top")
            self.assertEqual(r.status, 200, r)
            return [d["inflight"] for d in r.json["deployments"]
                    if d["id"] == dep_id] == [n]
        wait_for("%d requests held for %s" % (n, dep_id), held, timeout=30)

    def test_burst_of_200_at_zero_loses_none(self):
        self.burst_at_zero()

    def test_burst_at_zero_with_two_gateway_threads(self):
        # 200 connections land on both loops: each holds its own share and
        # asks for the instance; none is lost, and every one is counted.
        self.burst_at_zero(gatewayThreads=2)

    def burst_at_zero(self, **config):
        self.start(**config)
        # The instance takes 3 s to start, longer than the 200 clients
        # take to connect even on a busy machine: every request arrives
        # while the deployment has no ready instance, so every one is held
        # (the example model server alone is ready in a few hundred ms, and
        # late clients would be routed at once, not held).
        dep = self.at_zero(displayName="burst",
                           command="sleep 3; " + model_command())
        rows = digits_rows(4)
        body = {"instances": [r for r, _ in rows]}
        t0 = time.monotonic()
        results = Burst(200, lambda k: self.d.gw(
            "POST", "/burst/predict", body, timeout=90).status).wait()
        took = time.monotonic() - t0
        bad = [r for r in results if r != 200]
        print("\n200 requests to a deployment at zero (%s): %d answered "
              "200, %d not, in %.2f s" % (config or "defaults",
                                          200 - len(bad), len(bad), took))
        self.assertEqual(bad, [])
        # Held requests go out as soon as the instance is ready; the work
        # request that woke it ends a moment later.
        d = self.d.wait_state(dep["id"], "ACTIVE", timeout=30)
        self.assertEqual(d["instanceCount"], 1)
        # The cold start is visible in the metrics.
        def total(metric):
            r = self.d.api("POST", "/v1/metrics/query", {
                "query": '%s[1m]{resourceId = "%s"}.%s()' % (
                    metric, dep["id"],
                    "sum" if metric == "PredictHeldRequests" else "max"),
                "startTime": int(time.time() * 1000) - 120000,
                "resolution": "1m"})
            self.assertEqual(r.status, 200, r)
            items = r.json["items"]
            return (sum(p["value"] for p in items[0]["aggregatedDatapoints"])
                    if items else None)
        # The gateway posts its counts with the other metrics, every few
        # seconds; on a busy machine a post can come late: the wait is for
        # the count, not a timing.
        wait_for("200 held requests counted",
                 lambda: total("PredictHeldRequests") == 200, timeout=60)
        # The time held is posted for the period in which the requests left
        # the hold, which may be the next post.
        held_ms = wait_for("the time held counted",
                           lambda: total("PredictHeldTime"), timeout=60)
        print("PredictHeldTime max of the periods: %.1f ms" % held_ms)
        # Every request waited for the 3 s start of the instance, less the
        # time the clients took to connect.
        self.assertGreater(held_ms, 1000)

    def test_held_requests_forwarded_in_order_and_dropped_clients_never(self):
        self.start()
        cmd, seen = self.recorder(delay=2)
        self.at_zero(displayName="order", command=cmd)
        socks = []
        for k in range(6):
            socks.append((k, raw_get(self.d.gw_port, "/order/r%d" % k)))
            time.sleep(0.05)
        # Clients 1 and 4 go away while held.
        for k, s in socks:
            if k in (1, 4):
                s.close()
        answers = {}
        for k, s in socks:
            if k in (1, 4):
                continue
            answers[k] = s.recv(4096).split(b"\r\n")[0]
            s.close()
        self.assertEqual(set(answers.values()), {b"HTTP/1.1 200 OK"})
        with open(seen) as f:
            got = [l.strip() for l in f if l.startswith("/r")]
        self.assertEqual(got, ["/r0", "/r2", "/r3", "/r5"])

    def test_hold_limit_answers_503_with_retry_after(self):
        self.start(holdRequests=2)
        gate, open_gate = self.gate()
        cmd, _ = self.recorder(gate=gate)
        dep = self.at_zero(displayName="lim", command=cmd)
        held = [raw_get(self.d.gw_port, "/lim/a"),
                raw_get(self.d.gw_port, "/lim/b")]
        self.wait_held(dep["id"], 2)
        r = self.d.gw("GET", "/lim/c")
        self.assertEqual(r.status, 503, r)
        self.assertIn("Retry-After", r.headers)
        self.assertEqual(r.json["code"], "HoldLimit")
        self.assertIn("requests held for this deployment", r.json["message"])
        open_gate()
        for s in held:
            self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 200"))
            s.close()

    def test_total_hold_limits_span_deployments(self):
        # Two deployments at zero, each within holdRequests: the third
        # request held in all is the last; the fourth, though its own
        # deployment holds only one, is refused for the total.
        self.start(holdRequests=2, holdRequestsTotal=3)
        gate, open_gate = self.gate()
        cmd, seen = self.recorder(gate=gate)
        one = self.at_zero(displayName="one", command=cmd)
        two = self.at_zero(displayName="two", command=cmd)
        held = [raw_get(self.d.gw_port, "/one/a"),
                raw_get(self.d.gw_port, "/one/b")]
        self.wait_held(one["id"], 2)
        held.append(raw_get(self.d.gw_port, "/two/c"))
        self.wait_held(two["id"], 1)
        status, headers, body = answer(raw_get(self.d.gw_port, "/two/d"))
        self.assertEqual(status, "HTTP/1.1 503 Service Unavailable")
        self.assertIn("retry-after", headers)
        self.assertEqual(body["code"], "HoldLimit", body)
        self.assertIn("requests held in total", body["message"])
        open_gate()
        self.assertEqual([answer(s)[0] for s in held],
                         ["HTTP/1.1 200 OK"] * 3)
        with open(seen) as f:
            got = sorted(l.strip() for l in f if l != "/health\n")
        self.assertEqual(got, ["/a", "/b", "/c"])

    def test_total_hold_bytes_span_deployments(self):
        # holdMB and holdMBTotal 1: a 600 KB body is held for one
        # deployment; another for the other deployment, within that
        # deployment's MiB, would pass the total and is refused; a small
        # request for it still fits and is held.
        self.start(holdMB=1, holdMBTotal=1)
        gate, open_gate = self.gate()
        cmd, seen = self.recorder(gate=gate)
        one = self.at_zero(displayName="one", command=cmd)
        two = self.at_zero(displayName="two", command=cmd)
        size = 600 * 1000
        held = [raw_post(self.d.gw_port, "/one/big", size)]
        self.wait_held(one["id"], 1)
        status, headers, body = answer(raw_post(self.d.gw_port,
                                                "/two/big", size))
        self.assertEqual(status, "HTTP/1.1 503 Service Unavailable")
        self.assertIn("retry-after", headers)
        self.assertEqual(body["code"], "HoldLimit", body)
        self.assertIn("bytes held in total", body["message"])
        # The refused request is over before the next is counted.
        self.wait_held(two["id"], 0)
        held.append(raw_get(self.d.gw_port, "/two/small"))
        self.wait_held(two["id"], 1)
        open_gate()
        self.assertEqual([answer(s)[0] for s in held],
                         ["HTTP/1.1 200 OK"] * 2)
        with open(seen) as f:
            got = sorted(l.strip() for l in f if l != "/health\n")
        self.assertEqual(got, ["/big", "/small"])

    def test_a_body_of_unknown_length_counts_at_its_most(self):
        # A chunked body has no declared length: held, it counts as the
        # most the gateway reads of it while it waits (a little over
        # 1 MiB), so holdMB bounds what the held requests can make the
        # daemon keep. With holdMB 2 one such request is held, not two.
        self.start(holdMB=2)
        gate, _ = self.gate()
        cmd, _ = self.recorder(gate=gate)
        dep = self.at_zero(displayName="chunky", command=cmd)
        head = (b"POST /chunky/p HTTP/1.1\r\nHost: x\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        first = socket.create_connection(("127.0.0.1", self.d.gw_port),
                                         timeout=30)
        self.addCleanup(first.close)
        first.sendall(head + b"4\r\nabcd\r\n")
        self.wait_held(dep["id"], 1)
        second = socket.create_connection(("127.0.0.1", self.d.gw_port),
                                          timeout=30)
        self.addCleanup(second.close)
        second.sendall(head + b"4\r\nabcd\r\n")
        got = second.recv(4096)
        self.assertTrue(got.startswith(b"HTTP/1.1 503"), got)
        body = json.loads(got.split(b"\r\n\r\n", 1)[1])
        self.assertEqual(body["code"], "HoldLimit")
        self.assertIn("bytes held for this deployment", body["message"])

    def test_with_holding_off_a_request_still_wakes_the_deployment(self):
        # holdRequests 0: no request waits, each gets 503 with Retry-After
        # at once; the deployment still wakes, so a retry gets through.
        self.start(holdRequests=0)
        dep = self.at_zero(displayName="nohold", command=model_command())
        r = self.d.gw("GET", "/nohold/health")
        self.assertEqual(r.status, 503, r)
        self.assertIn("Retry-After", r.headers)
        self.assertEqual(r.json["code"], "NoReadyInstance")
        d = wait_for("the deployment woken",
                     lambda: (lambda d: d if d["instanceCount"] == 1 and
                              d["lifecycleState"] == "ACTIVE" else None)(
                                  self.d.get(dep["id"])), timeout=60)
        self.assertEqual(d["instanceCount"], 1)
        self.assertEqual(self.d.gw("GET", "/nohold/health").status, 200)

    def test_hold_timeout_answers_503(self):
        self.start(holdTimeoutSeconds=1)
        cmd, _ = self.recorder(delay=30)
        self.at_zero(displayName="slow", command=cmd)
        t0 = time.monotonic()
        r = self.d.gw("GET", "/slow/x")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json["code"], "HoldTimeout")
        self.assertIn("Retry-After", r.headers)
        self.assertLess(time.monotonic() - t0, 5)

    def test_delete_while_held_answers_404(self):
        self.start()
        # The instance never becomes ready: the wake fails after the ready
        # timeout, the deployment can be deleted with the request held.
        dep = self.at_zero(displayName="gone", command="exec sleep 600",
                           readyTimeoutSeconds=1)
        s = raw_get(self.d.gw_port, "/gone/x")

        def deleted():
            r = self.d.api("DELETE", "/v1/deployments/" + dep["id"])
            return r.json["id"] if r.status == 202 else None
        wr = wait_for("the delete accepted", deleted, timeout=30)
        self.d.wait_wr(wr)
        head = s.recv(4096)
        s.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 404"), head)
        body = json.loads(head.split(b"\r\n\r\n", 1)[1])
        self.assertEqual(body["code"], "NotFound")
        self.assertIn("deleted", body["message"])

    def test_idle_deployment_goes_to_zero_and_comes_back(self):
        self.start()
        dep = self.d.create(displayName="idle", instanceCount=1)
        dep = self.d.wait_state(dep["id"], "ACTIVE")
        r = self.d.api("PUT", "/v1/functions/autoscale/config?deploymentId="
                       + dep["id"], {"minInstances": 0, "idleSeconds": 2})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["config"]["idleSeconds"], 2)
        body = {"instances": [r for r, _ in digits_rows(2)]}
        self.assertEqual(self.d.gw("POST", "/idle/predict", body).status,
                         200)

        def at_zero():
            d = self.d.get(dep["id"])
            return (d if d["instanceCount"] == 0 and
                    d["lifecycleState"] == "ACTIVE" and
                    not [i for i in d["instances"]
                         if i["state"] != "STOPPED"] else None)
        t0 = time.monotonic()
        wait_for("idle to zero", at_zero, timeout=30)
        idle = time.monotonic() - t0
        print("\nidle to zero: %.1f s after the last request "
              "(idleSeconds 2)" % idle)
        self.assertGreaterEqual(idle, 1.5)
        # top shows it idle, not broken.
        r = self.d.cli("top", "--once")
        self.assertEqual(r.returncode, 0, r.stderr)
        row = [l for l in r.stdout.splitlines() if l.startswith("idle ")]
        self.assertEqual(len(row), 1, r.stdout)
        self.assertIn(" IDLE ", row[0])
        self.assertIn("0/0", row[0])
        # Routes stay: the next request wakes it.
        r = self.d.gw("POST", "/idle/predict", body, timeout=60)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.d.get(dep["id"])["instanceCount"], 1)

    def test_idle_seconds_zero_never_scales_to_zero(self):
        # Two idle deployments with minInstances 0: "never", idleSeconds 0,
        # and "soon", idleSeconds 1. "never" is idle since before "soon"
        # was made: once "soon" is at zero, "never" has been idle longer
        # than that, and it still has its instance.
        self.start()
        deps = {}
        for name, idle in (("never", 0), ("soon", 1)):
            dep = self.d.create(displayName=name, instanceCount=1)
            deps[name] = self.d.wait_state(dep["id"], "ACTIVE")
            r = self.d.api("PUT", "/v1/functions/autoscale/config?"
                           "deploymentId=" + dep["id"],
                           {"minInstances": 0, "idleSeconds": idle})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["config"]["idleSeconds"], idle)
        soon = deps["soon"]["id"]
        wait_for("soon at zero",
                 lambda: self.d.get(soon)["instanceCount"] == 0, timeout=30)
        never = self.d.get(deps["never"]["id"])
        self.assertEqual(never["lifecycleState"], "ACTIVE")
        self.assertEqual(never["instanceCount"], 1)
        self.assertEqual([i["state"] for i in never["instances"]],
                         ["READY"])

    def test_min_instances_zero_accepted_idle_seconds_checked(self):
        self.start()
        r = self.d.api("PUT", "/v1/functions/autoscale/config",
                       {"minInstances": 0})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["config"]["idleSeconds"], 300)
        r = self.d.api("PUT", "/v1/functions/autoscale/config",
                       {"idleSeconds": -1})
        self.assertEqual(r.status, 400, r)
        self.assertIn("idleSeconds", r.raw.decode())
        r = self.d.api("PUT", "/v1/functions/autoscale/config",
                       {"maxInstances": 0, "minInstances": 0})
        self.assertEqual(r.status, 400, r)


if __name__ == "__main__":
    unittest.main()
