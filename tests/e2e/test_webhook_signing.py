"""Signed deliveries that cannot be replayed (Standard Webhooks).

Outbound: HTTP subscriptions deliver to a Python receiver that verifies
webhook-id, webhook-timestamp and webhook-signature the way the Standard
Webhooks specification describes it (written here from the spec, not from
mdscale's code): the key is the base64 after "whsec_", the signed content
is "id.timestamp.body", the header a space-separated list of "v1,<base64>".

Inbound: mdscale's own receivers (POST /v1/alertmanager/{topic}, POST
/v1/oci/notifications/{topic}) with a webhookReceiver secret accept a
signed, fresh delivery once and refuse an unsigned one, a wrong signature, a
stale or future timestamp and a replayed id, also after a restart (SIGTERM
or SIGKILL); SIGHUP swaps the secret."""
import base64
import hashlib
import hmac
import json
import os
import signal
import time
import unittest

from harness import Daemon, wait_for
from test_alertmanager import alert, webhook
from test_notifications import Receiver

TOLERANCE_S = 300


def spec_key(secret):
    """The HMAC key of a secret: Standard Webhooks secrets are "whsec_"
    and base64; other strings are taken as their bytes."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_"):])
    return secret.encode()


def spec_sign(secret, msg_id, ts, body):
    content = msg_id.encode() + b"." + str(ts).encode() + b"." + body
    mac = hmac.new(spec_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def spec_verify(secret, headers, body, now=None):
    """Returns None when the delivery verifies, else why not."""
    h = {k.lower(): v for k, v in headers.items()}
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if name not in h:
            return "missing " + name
    try:
        ts = int(h["webhook-timestamp"])
    except ValueError:
        return "bad timestamp"
    now = time.time() if now is None else now
    if abs(now - ts) > TOLERANCE_S:
        return "stale timestamp"
    want = spec_sign(secret, h["webhook-id"], ts, body)
    for sig in h["webhook-signature"].split(" "):
        if sig.startswith("v1,") and hmac.compare_digest(sig, want):
            return None
    return "no signature matches"


class OutboundSigningTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon().start()
        self.addCleanup(self.d.cleanup)
        r = self.d.api("POST", "/v1/topics", {"name": "signed"})
        self.assertEqual(r.status, 201, r)
        self.topic = r.json["topicId"]

    def subscribe(self, **kw):
        body = {"topicId": self.topic, "protocol": "HTTP"}
        body.update(kw)
        r = self.d.api("POST", "/v1/subscriptions", body)
        self.assertEqual(r.status, 201, r)
        return r.json

    def test_receiver_verifying_the_spec_accepts_deliveries(self):
        rcv = Receiver(plan=[500, 200])
        self.addCleanup(rcv.close)
        gen = self.subscribe(endpoint=rcv.url, maxAttempts=3)
        # The generated secret is in the scheme's own form: whsec_ and the
        # base64 of 32 random bytes.
        self.assertTrue(gen["secret"].startswith("whsec_"), gen)
        self.assertEqual(len(spec_key(gen["secret"])), 32)
        raw = json.dumps({"title": "t", "body": "signed"})
        start = time.time()
        r = self.d.api("POST", "/v1/topics/%s/messages" % self.topic, raw)
        self.assertIn(r.status, (200, 202), r)
        mid = r.json["messageId"]
        wait_for("a failed then a good attempt", lambda: rcv.count() >= 2)
        ids = set()
        for _, headers, body in rcv.requests:
            self.assertEqual(body, raw.encode())
            self.assertIsNone(spec_verify(gen["secret"], headers, body),
                              headers)
            self.assertLessEqual(abs(int(headers["webhook-timestamp"]) -
                                     start), 10)
            ids.add(headers["webhook-id"])
            # Tampering with the body, id or time breaks the signature.
            self.assertIsNotNone(spec_verify(gen["secret"], headers,
                                             body + b" "))
            forged = dict(headers)
            forged["webhook-id"] = "msg-forged"
            self.assertIsNotNone(spec_verify(gen["secret"], forged, body))
            forged = dict(headers)
            forged["webhook-timestamp"] = str(
                int(headers["webhook-timestamp"]) + 1)
            self.assertIsNotNone(spec_verify(gen["secret"], forged, body))
            # The older header stays, for receivers that check it.
            self.assertTrue(headers["X-Mdscale-Signature"].startswith(
                "sha256="))
        # A retry is the same message: the same webhook-id, so receivers
        # can drop a duplicate.
        self.assertEqual(ids, {mid})

    def test_user_secret_in_either_form(self):
        rcv = Receiver()
        self.addCleanup(rcv.close)
        key = os.urandom(24)
        whsec = "whsec_" + base64.b64encode(key).decode()
        plain = "plain-secret-0123456789abcdef"
        a = self.subscribe(endpoint=rcv.url, secret=whsec)
        b = self.subscribe(endpoint=rcv.url, secret=plain)
        secrets = {a["id"]: whsec, b["id"]: plain}
        raw = json.dumps({"title": "t", "body": "two"})
        r = self.d.api("POST", "/v1/topics/%s/messages" % self.topic, raw)
        self.assertIn(r.status, (200, 202), r)
        wait_for("two deliveries", lambda: rcv.count() >= 2)
        for _, headers, body in rcv.requests:
            sid = headers["X-Mdscale-Subscription-Id"]
            self.assertIsNone(spec_verify(secrets[sid], headers, body))
            other = plain if secrets[sid] == whsec else whsec
            self.assertEqual(spec_verify(other, headers, body),
                             "no signature matches")

    def test_whsec_secret_that_is_not_base64_is_refused(self):
        r = self.d.api("POST", "/v1/subscriptions", {
            "topicId": self.topic, "protocol": "HTTP",
            "endpoint": "http://127.0.0.1:9/x",
            "secret": "whsec_not*base64*at*all"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["field"], "secret", r.json)
        self.assertIn("base64", r.json["message"])


class InboundVerificationTest(unittest.TestCase):
    SECRET = "whsec_" + base64.b64encode(b"inbound-key-0123456789abcdef"
                                         ).decode()

    def setUp(self):
        self.d = Daemon(config={"webhookReceiver": {
            "secret": self.SECRET,
            "toleranceSeconds": TOLERANCE_S}}).start()
        self.addCleanup(self.d.cleanup)
        r = self.d.api("POST", "/v1/topics", {"name": "am"})
        self.assertEqual(r.status, 201, r)
        self.topic = r.json["topicId"]
        self.n = 0

    def post(self, body, msg_id=None, ts=None, secret=None, sig=None,
             headers=None, raw=None):
        self.n += 1
        raw = json.dumps(body).encode() if raw is None else raw
        msg_id = msg_id or "msg-test-%d-%d" % (os.getpid(), self.n)
        ts = int(time.time()) if ts is None else ts
        h = {"Content-Type": "application/json"}
        if headers is None:
            h.update({"webhook-id": msg_id, "webhook-timestamp": str(ts),
                      "webhook-signature": sig or spec_sign(
                          secret or self.SECRET, msg_id, ts, raw)})
        else:
            h.update(headers)
        return self.d.api("POST", "/v1/alertmanager/" + self.topic, raw,
                          headers=h)

    def test_signed_fresh_delivery_accepted_once(self):
        body = webhook(alert())
        r = self.post(body, msg_id="msg-once")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.json["alerts"]), 1)
        r = self.post(body, msg_id="msg-once")
        self.assertEqual(r.status, 409, r)
        self.assertIn("replay", r.json["message"])
        # A replay of the very same bytes and headers, too.
        raw = json.dumps(body).encode()
        ts = int(time.time())
        h = {"webhook-id": "msg-twice", "webhook-timestamp": str(ts),
             "webhook-signature": spec_sign(self.SECRET, "msg-twice", ts,
                                            raw)}
        self.assertEqual(self.post(body, headers=h).status, 200)
        r = self.post(body, headers=h)
        self.assertEqual(r.status, 409, r)

    def test_replay_refused_after_a_restart(self):
        """The ids accepted are stored: neither SIGTERM nor SIGKILL makes
        a delivery inside the window acceptable again."""
        raw = json.dumps(webhook(alert())).encode()
        h = self.signed(raw, "msg-restart")
        self.assertEqual(self.post(None, raw=raw, headers=h).status, 200)
        replay = self.post(None, raw=raw, headers=h)
        self.assertEqual(replay.status, 409, replay)
        for restart in (self.d.stop, self.d.kill):
            restart()
            self.d.start()
            r = self.post(None, raw=raw, headers=h)
            self.assertEqual((r.status, r.json), (replay.status, replay.json),
                             r)
            # Another id is a new delivery, and is itself remembered.
            other = "msg-after-%s" % restart.__name__
            h2 = self.signed(raw, other)
            r = self.post(None, raw=raw, headers=h2)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(self.post(None, raw=raw, headers=h2).status,
                             409)
        # The OCI receiver shares the record.
        r = self.post_oci(raw, h)
        self.assertEqual(r.status, 409, r)

    def test_stale_and_future_timestamps_refused(self):
        now = int(time.time())
        for ts in (now - TOLERANCE_S - 5, now + TOLERANCE_S + 5):
            r = self.post(webhook(alert()), ts=ts)
            self.assertEqual(r.status, 401, r)
            self.assertIn("tolerance", r.json["message"])
        # Inside the window either side is fine.
        self.assertEqual(self.post(webhook(alert()), ts=now - 60).status,
                         200)
        self.assertEqual(self.post(webhook(alert()), ts=now + 60).status,
                         200)

    def test_unsigned_or_wrongly_signed_refused(self):
        r = self.post(webhook(alert()), headers={})
        self.assertEqual(r.status, 401, r)
        self.assertIn("missing webhook-id", r.json["message"])
        r = self.post(webhook(alert()), secret="whsec_" +
                      base64.b64encode(b"another-key-entirely").decode())
        self.assertEqual(r.status, 401, r)
        self.assertIn("no v1 signature", r.json["message"])
        r = self.post(webhook(alert()), sig="v1,AAAA")
        self.assertEqual(r.status, 401, r)
        # A list where one entry matches verifies (key rotation).
        raw = json.dumps(webhook(alert())).encode()
        ts = int(time.time())
        good = spec_sign(self.SECRET, "msg-list", ts, raw)
        h = {"webhook-id": "msg-list", "webhook-timestamp": str(ts),
             "webhook-signature": "v1,AAAA " + good}
        self.assertEqual(self.post(webhook(alert()), headers=h).status, 200)

    def post_oci(self, raw, headers):
        h = {"Content-Type": "application/json"}
        h.update(headers)
        return self.d.api("POST", "/v1/oci/notifications/" + self.topic,
                          raw, headers=h, auth=False)

    def signed(self, raw, msg_id, ts=None, secret=None):
        ts = int(time.time()) if ts is None else ts
        return {"webhook-id": msg_id, "webhook-timestamp": str(ts),
                "webhook-signature": spec_sign(secret or self.SECRET,
                                               msg_id, ts, raw)}

    def test_oci_receiver_checks_signatures_first(self):
        raw = json.dumps({"type": "OK_TO_FIRING"}).encode()
        r = self.post_oci(raw, {})
        self.assertEqual(r.status, 401, r)
        r = self.post_oci(raw, self.signed(raw, "msg-oci-old",
                                           ts=int(time.time()) - 400))
        self.assertEqual(r.status, 401, r)
        # Signed and fresh: past the check, on to the receiver's own rules
        # (none is enabled for this topic).
        h = self.signed(raw, "msg-oci-1")
        r = self.post_oci(raw, h)
        self.assertEqual(r.status, 404, r)
        self.assertIn("no OCI Notifications receiver", r.json["message"])
        # Refused, so not kept: the resend is judged afresh.
        r = self.post_oci(raw, h)
        self.assertEqual(r.status, 404, r)

    def test_failed_delivery_is_taken_when_sent_again(self):
        """A signed delivery whose action fails leaves no id behind: the
        sender's resend of the same message (same id, timestamp and
        signature) is processed, once."""
        body = webhook(alert(service="md-77"))
        del body["alerts"][0]["labels"]["deployment"]
        raw = json.dumps(body).encode()
        h = self.signed(raw, "msg-fails-first")
        h["Content-Type"] = "application/json"
        path = "/v1/alertmanager/" + self.topic
        r = self.d.api("POST", path, raw, headers=h)
        self.assertEqual(r.status, 400, r)
        self.assertIn("no label 'deployment'", r.json["message"])
        # The receiver's URL is fixed (the signature covers the body, not
        # the URL), and Alertmanager sends the same message again.
        r = self.d.api("POST", path + "?resourceLabel=service", raw,
                       headers=h)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["alerts"][0]["type"], "OK_TO_FIRING", r)
        # Taken once: a further resend is a replay.
        r = self.d.api("POST", path + "?resourceLabel=service", raw,
                       headers=h)
        self.assertEqual(r.status, 409, r)
        self.assertIn("replay", r.json["message"])

    def reload(self, receiver):
        path = os.path.join(self.d.data_dir, "config.json")
        with open(path, "w") as f:
            json.dump({"webhookReceiver": receiver}, f)
        mark = self.d.logs().count("configuration reloaded")
        self.d.proc.send_signal(signal.SIGHUP)
        wait_for("the reload", lambda: self.d.logs().count(
            "configuration reloaded") > mark)

    def test_each_receiver_can_be_left_unchecked(self):
        raw = json.dumps({"type": "OK_TO_FIRING"}).encode()
        self.reload({"secret": self.SECRET, "ociNotifications": False})
        self.assertEqual(self.post_oci(raw, {}).status, 404)
        self.assertEqual(self.post(webhook(alert()), headers={}).status,
                         401)
        self.reload({"secret": self.SECRET, "alertmanager": False})
        self.assertEqual(self.post(webhook(alert()), headers={}).status,
                         200)
        self.assertEqual(self.post_oci(raw, {}).status, 401)

    def test_sighup_swaps_the_secret(self):
        new = "whsec_" + base64.b64encode(b"the-next-key-after-reload").decode()
        path = os.path.join(self.d.data_dir, "config.json")
        with open(path, "w") as f:
            json.dump({"webhookReceiver": {"secret": new}}, f)
        self.d.proc.send_signal(signal.SIGHUP)
        wait_for("the new secret", lambda: self.post(
            webhook(alert()), secret=new).status == 200)
        self.assertEqual(self.post(webhook(alert())).status, 401)


if __name__ == "__main__":
    unittest.main()
