"""Checks of the OCI API stand-in itself: that it verifies OCI request
signatures exactly (OCI's published test vector), refuses and records every
request that breaks the documented API, and answers as the API documents
(409 while UPDATING, 412 on a stale etag, 429 with retry-after, 500 then
success, work requests ACCEPTED -> IN_PROGRESS -> SUCCEEDED or FAILED, the
Notifications confirmation flow). The requests here are signed by a small
Python signer written from OCI's documentation, independent of mdscale's."""
import base64
import email.utils
import hashlib
import http.client
import http.server
import json
import os
import shutil
import ssl
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oci_standin  # noqa: E402
import oci_test_key  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

KEY = serialization.load_pem_private_key(
    oci_test_key.TEST_PRIVATE_KEY_PEM.encode(), password=None)

VECTOR_DATE = "Thu, 05 Jan 2014 21:31:40 GMT"
VECTOR_GET = ("/20160918/instances?availabilityDomain=Pjwf%3A%20PHX-AD-1&"
              "compartmentId=" + oci_test_key.TEST_COMPARTMENT +
              "&displayName=TeamXInstances&volumeId=ocid1.volume.oc1.phx."
              "abyhqljrgvttnlx73nmrwfaux7kcvzfs3s66izvxf2h4lgvyndsdsnoiwr5q")
VECTOR_GET_SIG = (
    "GBas7grhyrhSKHP6AVIj/h5/Vp8bd/peM79H9Wv8kjoaCivujVXlpbKLjMPeDUhxkFIWtTtL"
    "Bj3sUzaFj34XE6YZAHc9r2DmE4pMwOAy/kiITcZxa1oHPOeRheC0jP2dqbTll8fmTZVwKZOK"
    "HYPtrLJIJQHJjNvxFWeHQjMaR7M=")
VECTOR_POST_BODY = (
    '{\n    "compartmentId": "%s",\n    "instanceId": "ocid1.instance.oc1.phx.'
    'abuw4ljrlsfiqw6vzzxb43vyypt4pkodawglp3wqxjqofakrwvou52gb6s5a",\n    '
    '"volumeId": "ocid1.volume.oc1.phx.abyhqljrgvttnlx73nmrwfaux7kcvzfs3s66iz'
    'vxf2h4lgvyndsdsnoiwr5q"\n}' % oci_test_key.TEST_COMPARTMENT).encode()
VECTOR_POST_SIG = (
    "Mje8vIDPlwIHmD/cTDwRxE7HaAvBg16JnVcsuqaNRim23fFPgQfLoOOxae6WqKb1uPjYEl0q"
    "IdazWaBy/Ml8DRhqlocMwoSXv0fbukP8J5N80LCmzT/FFBvIvTB91XuXI3hYfP9Zt1l7S6ie"
    "VadHUfqBedWH0itrtPJBgKmrWso=")


def sign(method, target, host, body=None, key_id=None, date=None,
         headers_extra=None):
    """Signs one request as OCI documents; returns the headers to send."""
    h = {"date": date or email.utils.formatdate(usegmt=True), "host": host}
    names = ["date", "(request-target)", "host"]
    if method in ("POST", "PUT"):
        body = body or b""
        h["content-length"] = str(len(body))
        h["content-type"] = "application/json"
        h["x-content-sha256"] = base64.b64encode(
            hashlib.sha256(body).digest()).decode()
        names += ["content-length", "content-type", "x-content-sha256"]
    h.update(headers_extra or {})
    text = oci_standin.signing_string(method, target, h, names)
    sig = base64.b64encode(KEY.sign(text.encode(), padding.PKCS1v15(),
                                    hashes.SHA256())).decode()
    h["authorization"] = (
        'Signature version="1",headers="%s",keyId="%s",algorithm="rsa-sha256",'
        'signature="%s"' % (" ".join(names), key_id or oci_test_key.test_key_id(),
                            sig))
    return h, sig


class Client:
    """A signed HTTPS client for the stand-in."""

    def __init__(self, st):
        self.st = st
        self.ctx = ssl.create_default_context(cafile=st.cert)

    def call(self, method, path, body=None, extra=None, sign_it=True,
             tamper=None):
        data = None if body is None else (
            body if isinstance(body, bytes) else json.dumps(body).encode())
        host = "127.0.0.1:%d" % self.st.port
        hdrs = {}
        if sign_it:
            hdrs, _ = sign(method, path, host, data, headers_extra=extra)
        else:
            hdrs.update(extra or {})
        if tamper:
            tamper(hdrs)
        conn = http.client.HTTPSConnection("127.0.0.1", self.st.port,
                                           context=self.ctx, timeout=10)
        try:
            conn.putrequest(method, path, skip_host=True,
                            skip_accept_encoding=True)
            if "host" not in hdrs:
                conn.putheader("host", host)
            for k, v in hdrs.items():
                conn.putheader(k, v)
            if data is not None and "content-length" not in hdrs:
                conn.putheader("content-length", str(len(data)))
            conn.endheaders(data)
            r = conn.getresponse()
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None), \
                {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()


class Receiver:
    """A plain HTTP endpoint on 127.0.0.1 recording what it is sent."""

    def __init__(self):
        got = self.got = []

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                got.append(({k.lower(): v for k, v in self.headers.items()},
                            json.loads(self.rfile.read(n))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.srv = http.server.HTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/hook" % self.srv.server_address[1]

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class OciStandinSelfTest(unittest.TestCase):
    """The OCI stand-in (not OCI): its own contract checks."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="oci-standin-")
        cls.cert, cls.key = oci_standin.make_certificate(cls.dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.st = oci_standin.OciStandin(self.cert, self.key,
                                         allow_http_endpoints=True).start()
        self.c = Client(self.st)

    def tearDown(self):
        self.st.stop()

    def clean(self):
        self.assertEqual(self.st.violations, [], self.st.summary())

    # -- signatures --
    def test_standin_reproduces_the_published_signing_vectors(self):
        host = "iaas.us-phoenix-1.oraclecloud.com"
        _, sig = sign("GET", VECTOR_GET, host, date=VECTOR_DATE)
        self.assertEqual(sig, VECTOR_GET_SIG)
        _, sig = sign("POST", "/20160918/volumeAttachments", host,
                      VECTOR_POST_BODY, date=VECTOR_DATE)
        self.assertEqual(sig, VECTOR_POST_SIG)
        # The verifier accepts the published GET as OCI would at that date.
        kid = "%s/%s/%s" % (oci_test_key.TEST_TENANCY, oci_test_key.TEST_USER,
                            oci_test_key.TEST_VECTOR_FINGERPRINT)
        hdrs = {"date": VECTOR_DATE, "host": host, "authorization":
                'Signature version="1",headers="date (request-target) host",'
                'keyId="%s",algorithm="rsa-sha256",signature="%s"'
                % (kid, VECTOR_GET_SIG)}
        when = email.utils.parsedate_to_datetime(VECTOR_DATE).timestamp()
        oci_standin.verify_signature(self.st.public_key, kid, "GET",
                                     VECTOR_GET, hdrs, b"", now=when)
        hdrs["host"] = "example.com"
        with self.assertRaises(oci_standin.SignatureError):
            oci_standin.verify_signature(self.st.public_key, kid, "GET",
                                         VECTOR_GET, hdrs, b"", now=when)

    def test_standin_key_fingerprint_is_the_keys_own(self):
        der = KEY.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)
        fp = ":".join("%02x" % b for b in hashlib.md5(der).digest())
        self.assertEqual(fp, oci_test_key.TEST_FINGERPRINT)

    def test_standin_refuses_and_records_bad_signatures(self):
        dep = self.st.add_deployment()
        path = "/20190101/modelDeployments/" + dep
        s, body, _ = self.c.call("GET", path, sign_it=False)
        self.assertEqual((s, body["code"]), (401, "NotAuthenticated"))

        def other_key(h):
            h["authorization"] = h["authorization"].replace(
                oci_test_key.TEST_FINGERPRINT, "00:11:22")
        s, _, _ = self.c.call("GET", path, tamper=other_key)
        self.assertEqual(s, 401)

        def old_date(h):
            h["date"] = "Thu, 05 Jan 2014 21:31:40 GMT"
        s, body, _ = self.c.call("GET", path, tamper=old_date)
        self.assertEqual(s, 401)

        def body_swap(h):
            h["x-content-sha256"] = base64.b64encode(b"x" * 32).decode()
        s, body, _ = self.c.call("PUT", path, {}, tamper=body_swap)
        self.assertEqual(s, 401)
        self.assertEqual(len(self.st.violations), 4, self.st.summary())

    # -- Data Science --
    def update_body(self, **mcd):
        mcd.setdefault("modelId", "ocid1.datasciencemodel.oc1.x.standin")
        return {"modelDeploymentConfigurationDetails": {
            "deploymentType": "SINGLE_MODEL",
            "modelConfigurationDetails": mcd}}

    def test_standin_update_follows_a_work_request_to_success(self):
        dep = self.st.add_deployment(count=1)
        path = "/20190101/modelDeployments/" + dep
        s, d, h = self.c.call("GET", path)
        self.assertEqual((s, d["lifecycleState"]), (200, "ACTIVE"))
        etag = h["etag"]
        body = self.update_body(scalingPolicy={"policyType": "FIXED_SIZE",
                                               "instanceCount": 2})
        s, out, h = self.c.call("PUT", path, body, extra={"if-match": etag})
        self.assertEqual((s, out), (202, None))
        wr = h["opc-work-request-id"]
        self.assertTrue(h["opc-request-id"])
        # While the update runs: UPDATING, and a second PUT gets 409.
        s, d, h2 = self.c.call("GET", path)
        self.assertEqual(d["lifecycleState"], "UPDATING")
        s, err, _ = self.c.call("PUT", path, body, extra={"if-match": h2["etag"]})
        self.assertEqual((s, err["code"]), (409, "IncorrectState"))
        seen = []
        for _ in range(6):
            s, w, _ = self.c.call("GET", "/20190101/workRequests/" + wr)
            self.assertEqual(s, 200)
            seen.append(w["status"])
            if w["status"] == "SUCCEEDED":
                break
        self.assertEqual(seen, ["ACCEPTED", "IN_PROGRESS", "IN_PROGRESS",
                                "SUCCEEDED"])
        self.assertEqual(w["operationType"], "MODEL_DEPLOYMENT_UPDATE")
        self.assertEqual(w["resources"][0]["identifier"], dep)
        s, d, h3 = self.c.call("GET", path)
        mcd = d["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]
        self.assertEqual((d["lifecycleState"],
                          mcd["scalingPolicy"]["instanceCount"]), ("ACTIVE", 2))
        # The etag read before the update is stale now.
        s, err, _ = self.c.call("PUT", path, body, extra={"if-match": etag})
        self.assertEqual((s, err["code"]), (412, "NoEtagMatch"))
        self.clean()

    def test_standin_failed_work_request_keeps_the_old_shape(self):
        dep = self.st.add_deployment(shape="VM.Standard2.1")
        self.st.fail_next_update = True
        path = "/20190101/modelDeployments/" + dep
        body = self.update_body(instanceConfiguration={
            "instanceShapeName": "VM.Standard2.2"})
        s, _, h = self.c.call("PUT", path, body,
                              extra={"if-match": self.st.etag(dep)})
        self.assertEqual(s, 202)
        wr = h["opc-work-request-id"]
        for _ in range(5):
            _, w, _ = self.c.call("GET", "/20190101/workRequests/" + wr)
        self.assertEqual(w["status"], "FAILED")
        s, errs, _ = self.c.call("GET", "/20190101/workRequests/%s/errors" % wr)
        self.assertEqual((s, len(errs)), (200, 1))
        d = self.st.deployment(dep)
        ic = d["modelDeploymentConfigurationDetails"][
            "modelConfigurationDetails"]["instanceConfiguration"]
        self.assertEqual((d["lifecycleState"], ic["instanceShapeName"]),
                         ("ACTIVE", "VM.Standard2.1"))
        self.clean()

    def test_standin_held_work_request_stays_in_progress(self):
        dep = self.st.add_deployment()
        self.st.hold = True
        path = "/20190101/modelDeployments/" + dep
        body = self.update_body(scalingPolicy={"policyType": "FIXED_SIZE",
                                               "instanceCount": 3})
        _, _, h = self.c.call("PUT", path, body,
                              extra={"if-match": self.st.etag(dep)})
        wr = h["opc-work-request-id"]
        for _ in range(8):
            _, w, _ = self.c.call("GET", "/20190101/workRequests/" + wr)
        self.assertEqual(w["status"], "IN_PROGRESS")
        self.st.finish(wr)
        _, w, _ = self.c.call("GET", "/20190101/workRequests/" + wr)
        self.assertEqual(w["status"], "SUCCEEDED")
        self.clean()

    def test_standin_refuses_and_records_bad_bodies(self):
        dep = self.st.add_deployment()
        path = "/20190101/modelDeployments/" + dep
        etag = {"if-match": self.st.etag(dep)}
        cases = [
            self.update_body(scalingPolicy={"policyType": "FIXED_SIZE",
                                            "instanceCount": 2},
                             instanceCount=2),                 # unknown
            {"modelDeploymentConfigurationDetails": {
                "deploymentType": "SINGLE_MODEL",
                "modelConfigurationDetails": {"scalingPolicy": {
                    "policyType": "FIXED_SIZE", "instanceCount": 2}}}},  # no modelId
            self.update_body(scalingPolicy={"instanceCount": 2}),   # no policyType
            self.update_body(scalingPolicy={"policyType": "FIXED_SIZE",
                                            "instanceCount": "2"}),  # type
            {"modelDeploymentConfigurationDetails": {
                "modelConfigurationDetails": {"modelId": "x"}}},   # no type
        ]
        for body in cases:
            s, err, _ = self.c.call("PUT", path, body, extra=etag)
            self.assertEqual(s, 400, body)
        self.assertEqual(len(self.st.violations), len(cases), self.st.summary())
        # Without if-match: refused and recorded too.
        s, _, _ = self.c.call("PUT", path, self.update_body())
        self.assertEqual(s, 400)
        self.assertEqual(len(self.st.violations), len(cases) + 1)
        # A shape not offered is OCI's refusal, not a contract breach.
        s, err, _ = self.c.call("PUT", path, self.update_body(
            instanceConfiguration={"instanceShapeName": "VM.Nope.1"}),
            extra=etag)
        self.assertEqual((s, err["code"]), (400, "InvalidParameter"))
        self.assertIn("VM.Nope.1", err["message"])
        self.assertEqual(len(self.st.violations), len(cases) + 1)
        self.assertEqual(self.st.deployment(dep)["lifecycleState"], "ACTIVE")

    def test_standin_injects_429_with_retry_after_and_500_then_success(self):
        dep = self.st.add_deployment()
        path = "/20190101/modelDeployments/" + dep
        self.st.inject("GET", "^/20190101/modelDeployments/", 429, retry_after=2)
        self.st.inject("GET", "^/20190101/modelDeployments/", 500)
        s, err, h = self.c.call("GET", path)
        self.assertEqual((s, err["code"], h["retry-after"]),
                         (429, "TooManyRequests", "2"))
        s, err, h = self.c.call("GET", path)
        self.assertEqual((s, err["code"]), (500, "InternalServerError"))
        s, d, _ = self.c.call("GET", path)
        self.assertEqual((s, d["id"]), (200, dep))
        self.assertEqual([r["status"] for r in self.st.requests("GET")],
                         [429, 500, 200])
        self.clean()

    def test_standin_lost_answer_and_retry_token_create_one_alarm(self):
        topic = self.make_topic()
        self.st.inject("POST", "^/20180401/alarms$", 500, after=True)
        tok = {"opc-retry-token": "token-1"}
        s, _, _ = self.c.call("POST", "/20180401/alarms",
                              self.alarm_body(topic), extra=tok)
        self.assertEqual(s, 500)
        s, a, _ = self.c.call("POST", "/20180401/alarms",
                              self.alarm_body(topic), extra=tok)
        self.assertEqual(s, 200)
        self.assertEqual(list(self.st.alarms), [a["id"]])
        self.clean()

    # -- Monitoring --
    def alarm_body(self, topic, **kw):
        b = {"displayName": "model_deployment_high_cpu",
             "compartmentId": oci_test_key.TEST_COMPARTMENT,
             "metricCompartmentId": oci_test_key.TEST_COMPARTMENT,
             "namespace": "oci_datascience_modeldeploy",
             "query": 'CpuUtilization[5m]{resourceId = "x"}.mean() > 80',
             "severity": "INFO", "destinations": [topic], "isEnabled": True,
             "pendingDuration": "PT1M", "repeatNotificationDuration": "PT5M",
             "messageFormat": "ONS_OPTIMIZED"}
        b.update(kw)
        return b

    def make_topic(self, name="model-deployment-autoscaling"):
        s, t, _ = self.c.call("POST", "/20181201/topics", {
            "name": name, "compartmentId": oci_test_key.TEST_COMPARTMENT})
        self.assertEqual(s, 200, t)
        return t["topicId"]

    def test_standin_alarms_create_get_list_delete(self):
        topic = self.make_topic()
        s, a, _ = self.c.call("POST", "/20180401/alarms", self.alarm_body(topic))
        self.assertEqual((s, a["lifecycleState"]), (200, "ACTIVE"))
        s, g, _ = self.c.call("GET", "/20180401/alarms/" + a["id"])
        self.assertEqual((s, g["query"]), (200, a["query"]))
        q = urllib.parse.urlencode({
            "compartmentId": oci_test_key.TEST_COMPARTMENT,
            "displayName": "model_deployment_high_cpu"})
        s, items, _ = self.c.call("GET", "/20180401/alarms?" + q)
        self.assertEqual([i["id"] for i in items], [a["id"]])
        s, _, _ = self.c.call("DELETE", "/20180401/alarms/" + a["id"])
        self.assertEqual(s, 204)
        s, items, _ = self.c.call("GET", "/20180401/alarms?" + q)
        self.assertEqual(items, [])
        self.clean()
        s, _, _ = self.c.call("POST", "/20180401/alarms",
                              self.alarm_body(topic, severity="LOW"))
        self.assertEqual(s, 400)
        s, _, _ = self.c.call("POST", "/20180401/alarms",
                              self.alarm_body(topic, pendingDuration="1m"))
        self.assertEqual(s, 400)
        self.assertEqual(len(self.st.violations), 2)

    def test_standin_summarizes_seeded_metrics(self):
        self.st.set_metric("CpuUtilization", "ocid1.a", 42.5)
        self.st.set_metric("CpuUtilization", "ocid1.b", 7)
        self.st.set_metric("MemoryUtilization", "ocid1.a", 60)
        q = urllib.parse.urlencode({"compartmentId":
                                    oci_test_key.TEST_COMPARTMENT})
        now = time.time()
        s, out, _ = self.c.call(
            "POST", "/20180401/metrics/actions/summarizeMetricsData?" + q,
            {"namespace": "oci_datascience_modeldeploy",
             "query": 'CpuUtilization[1m]{resourceId =~ "ocid1.a|ocid1.b"}.mean()',
             "startTime": oci_standin.rfc3339(now - 300),
             "endTime": oci_standin.rfc3339(now)})
        self.assertEqual(s, 200, out)
        got = {m["dimensions"]["resourceId"]:
               m["aggregatedDatapoints"][-1]["value"] for m in out}
        self.assertEqual(got, {"ocid1.a": 42.5, "ocid1.b": 7.0})
        self.clean()

    # -- Notifications --
    def test_standin_subscription_confirmation_flow(self):
        rcv = Receiver()
        self.addCleanup(rcv.close)
        topic = self.make_topic()
        s, sub, _ = self.c.call("POST", "/20181201/subscriptions", {
            "topicId": topic, "compartmentId": oci_test_key.TEST_COMPARTMENT,
            "protocol": "CUSTOM_HTTPS", "endpoint": rcv.url})
        self.assertEqual((s, sub["lifecycleState"]), (200, "PENDING"))
        deadline = time.time() + 5
        while not rcv.got and time.time() < deadline:
            time.sleep(0.02)
        hdrs, body = rcv.got[0]
        self.assertEqual(hdrs["x-oci-ns-messagetype"], "SubscriptionConfirmation")
        self.assertEqual(hdrs["x-oci-ns-subscriptionid"], sub["id"])
        self.assertEqual(hdrs["x-oci-ns-topicocid"], topic)
        self.assertEqual(hdrs["x-oci-ns-confirmationurl"], body["ConfirmationURL"])
        # Nothing is delivered before confirmation.
        self.assertEqual(self.st.publish(topic, {"title": "x"}), [])
        url = urllib.parse.urlsplit(body["ConfirmationURL"])
        s, conf, _ = self.c.call("GET", url.path + "?" + url.query,
                                 sign_it=False)
        self.assertEqual((s, conf["subscriptionId"]), (200, sub["id"]))
        s, got, _ = self.c.call("GET", "/20181201/subscriptions/" + sub["id"])
        self.assertEqual(got["lifecycleState"], "ACTIVE")
        res = self.st.publish(topic, {"title": "model_deployment_high_cpu"})
        self.assertEqual([r[0] for r in res], [200])
        self.assertEqual(rcv.got[1][1], {"title": "model_deployment_high_cpu"})
        self.assertEqual(rcv.got[1][0]["x-oci-ns-subscriptionid"], sub["id"])
        # An expired confirmation link is refused with a clear message.
        self.st.expire_confirmations()
        s, err, _ = self.c.call("GET", url.path + "?" + url.query,
                                sign_it=False)
        self.assertEqual(s, 400)
        self.assertIn("expired", err["message"])
        self.clean()

    def test_standin_refuses_bad_subscriptions(self):
        topic = self.make_topic()
        base = {"topicId": topic, "compartmentId": oci_test_key.TEST_COMPARTMENT,
                "protocol": "CUSTOM_HTTPS"}
        st = oci_standin.OciStandin(self.cert, self.key).start()
        self.addCleanup(st.stop)
        c = Client(st)
        s, t, _ = c.call("POST", "/20181201/topics", {
            "name": "t", "compartmentId": oci_test_key.TEST_COMPARTMENT})
        base["topicId"] = t["topicId"]
        s, err, _ = c.call("POST", "/20181201/subscriptions",
                           dict(base, endpoint="http://127.0.0.1:1/x"))
        self.assertEqual(s, 400)
        s, err, _ = c.call("POST", "/20181201/subscriptions",
                           dict(base, endpoint="https://h.example/x?a=1"))
        self.assertEqual(s, 400)
        s, err, _ = c.call("POST", "/20181201/subscriptions",
                           dict(base, endpoint="https://h.example/x",
                                protocol="WEBHOOK"))
        self.assertEqual(s, 400)
        self.assertEqual(len(st.violations), 1, st.summary())
        s, err, _ = self.c.call("POST", "/20181201/topics", {
            "name": "model-deployment-autoscaling",
            "compartmentId": oci_test_key.TEST_COMPARTMENT})
        self.assertEqual(s, 409)
        _ = topic


if __name__ == "__main__":
    unittest.main()
