"""A local HTTPS stand-in for the OCI endpoints mdscale calls. It is NOT OCI:
it imitates, on 127.0.0.1, the documented behaviour of

  Data Science   GetModelDeployment, UpdateModelDeployment, GetWorkRequest,
                 ListWorkRequestErrors                     (/20190101/...)
  Monitoring     CreateAlarm, GetAlarm, DeleteAlarm, ListAlarms,
                 SummarizeMetricsData                      (/20180401/...)
  Notifications  CreateTopic, CreateSubscription, GetSubscription,
                 GetConfirmSubscription                    (/20181201/...)

and plays the Notifications service's delivery side: it POSTs the
subscription confirmation message to a CUSTOM_HTTPS subscription's endpoint
and delivers published messages to confirmed subscriptions, with the
X-OCI-NS-* headers OCI documents.

Every API request must carry a valid OCI HTTP signature (Signature
version="1", rsa-sha256, the documented header lists) made with the test key
(oci_test_key.py; checked in oci_signature.py); every body is checked field
by field against the API's documented shapes (oci_shapes.py: field lists
from the API reference and the public OCI SDK models). A bad signature, an unknown field, a missing required field or
a wrong type is refused as OCI would (401, 400 with {code, message}) AND
recorded in `violations`, so the test that caused it fails. Semantic refusals
OCI makes (409 while a deployment is UPDATING, 412 on a stale if-match etag,
an unknown shape) are answered but are not violations.

Scripting, from Python (OciStandin methods) or over the unsigned control
endpoint under /_standin/ (see Handler._control): seed deployments, alarms and
metrics, inject faults (429 with retry-after, 500 then success, ...), hold a
work request IN_PROGRESS and finish it SUCCEEDED or FAILED, expire
confirmation tokens, publish alarm messages, read the request log.

Run on its own: python3 oci_standin.py --dir DIR [--seed-deployment]
[--allow-http-endpoints] (makes a certificate in DIR with the openssl CLI,
prints "OCI stand-in listening on URL (CA: FILE)")."""

import base64
import datetime
import http.server
import json
import os
import re
import secrets
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from cryptography.hazmat.primitives import serialization

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oci_test_key  # noqa: E402
from oci_shapes import (LIFECYCLE_STATES, OFFERED_SHAPES,  # noqa: E402,F401
                        ShapeError, check_shape)
from oci_signature import (SignatureError, signing_string,  # noqa: E402,F401
                           verify_signature)

# A confirmation URL is valid for three days.
CONFIRMATION_TTL_S = 3 * 24 * 3600
MAX_BODY = 1 << 20

# -- Helpers ----------------------------------------------------------------

def rfc3339(t=None):
    t = time.time() if t is None else t
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (d.microsecond // 1000)


def parse_rfc3339(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def make_certificate(directory, name="standin"):
    """Makes a self-signed certificate for 127.0.0.1 and localhost with the
    openssl CLI; returns (cert_path, key_path). The certificate is its own
    CA: point a client's CA bundle at cert_path."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-sha256", "-days", "2", "-subj",
                    "/CN=OCI stand-in", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


class Fault:
    """An injected answer: the next `count` requests matching method and
    path (a regular expression over the path) get `status`. With after, the
    request is carried out first and only its answer is lost (what a
    client's retry, with its opc-retry-token, must survive)."""

    def __init__(self, method, path, status, count=1, retry_after=None,
                 code=None, message=None, after=False):
        self.method = method
        self.after = after
        self.path = re.compile(path)
        self.status = status
        self.count = count
        self.retry_after = retry_after
        self.code = code or {429: "TooManyRequests",
                             500: "InternalServerError",
                             503: "ServiceUnavailable"}.get(status, "Fault")
        self.message = message or "injected by the stand-in"


# -- The stand-in -----------------------------------------------------------

class OciStandin:
    """The stand-in server. start() serves HTTPS on 127.0.0.1 on a free port
    from a thread; stop() ends it. All state is behind self.lock."""

    def __init__(self, cert, key, region="us-ashburn-1",
                 key_id=None, public_key_pem=None, allow_http_endpoints=False):
        self.cert, self.key = cert, key
        self.region = region
        self.key_id = key_id or oci_test_key.test_key_id()
        pem = public_key_pem or oci_test_key.TEST_PRIVATE_KEY_PEM.encode()
        k = serialization.load_pem_private_key(pem, password=None)
        self.public_key = k.public_key()
        self.allow_http_endpoints = allow_http_endpoints
        self.lock = threading.RLock()
        self.log = []            # every request: dict, see Handler
        self.violations = []     # contract failures: strings
        self.deployments = {}
        self.work_requests = {}
        self.alarms = {}
        self.topics = {}
        self.subscriptions = {}
        self.metrics = {}        # (name, resourceId) -> value
        self.faults = []
        self.deliveries = []     # messages POSTed to subscription endpoints
        self.retry_tokens = {}
        # Work requests: polls answered IN_PROGRESS before the end.
        self.in_progress_polls = 2
        self.hold = False        # keep new work requests IN_PROGRESS
        self.fail_next_update = False
        self.auto_confirmation = True
        self.cafile = None       # CA for delivering to https endpoints
        self.server = None
        self.thread = None
        self.seq = 0

    # -- lifecycle --
    def start(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.standin = self
        self.server.socket = ctx.wrap_socket(self.server.socket,
                                             server_side=True)
        self.port = self.server.server_address[1]
        self.url = "https://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- ids --
    def _ocid(self, kind):
        with self.lock:
            self.seq += 1
            return "ocid1.%s.oc1.%s.standin%s%04d" % (
                kind, self.region, secrets.token_hex(6), self.seq)

    # -- seeding (Python API) --
    def add_deployment(self, shape="VM.Standard2.1", count=1, state="ACTIVE",
                       ocpus=None, memory_gb=None, ocid=None,
                       display_name="standin-model-deployment"):
        """Seeds one model deployment; returns its OCID."""
        ocid = ocid or self._ocid("datasciencemodeldeployment")
        inst = {"instanceShapeName": shape}
        if ocpus is not None:
            inst["modelDeploymentInstanceShapeConfigDetails"] = {
                "ocpus": ocpus, "memoryInGBs": memory_gb}
        with self.lock:
            self.deployments[ocid] = {
                "id": ocid,
                "timeCreated": rfc3339(),
                "displayName": display_name,
                "description": "seeded by the OCI stand-in",
                "projectId": "ocid1.datascienceproject.oc1.%s.standin"
                             % self.region,
                "createdBy": oci_test_key.TEST_USER,
                "compartmentId": oci_test_key.TEST_COMPARTMENT,
                "modelDeploymentConfigurationDetails": {
                    "deploymentType": "SINGLE_MODEL",
                    "modelConfigurationDetails": {
                        "modelId": "ocid1.datasciencemodel.oc1.%s.standin"
                                   % self.region,
                        "instanceConfiguration": inst,
                        "scalingPolicy": {"policyType": "FIXED_SIZE",
                                          "instanceCount": count},
                        "bandwidthMbps": 10,
                    },
                },
                "modelDeploymentUrl": "https://modeldeployment.%s.oci.customer"
                                      "-oci.com/%s" % (self.region, ocid),
                "lifecycleState": state,
                "lifecycleDetails": "",
                "freeformTags": {},
                "definedTags": {},
            }
            self._etags = getattr(self, "_etags", {})
            self._bump(ocid)
        return ocid

    def _bump(self, ocid):
        self._etags[ocid] = secrets.token_hex(16)

    def etag(self, ocid):
        with self.lock:
            return self._etags[ocid]

    def deployment(self, ocid):
        """A copy of the deployment's current JSON."""
        with self.lock:
            return json.loads(json.dumps(self.deployments[ocid]))

    def set_state(self, ocid, state):
        assert state in LIFECYCLE_STATES, state
        with self.lock:
            self.deployments[ocid]["lifecycleState"] = state
            self._bump(ocid)

    def add_alarm(self, display_name, query, destinations=(), ocid=None):
        """Seeds an alarm (as if made in the Console); returns its OCID."""
        details = {
            "displayName": display_name,
            "compartmentId": oci_test_key.TEST_COMPARTMENT,
            "metricCompartmentId": oci_test_key.TEST_COMPARTMENT,
            "namespace": "oci_datascience_modeldeploy", "query": query,
            "severity": "INFO", "destinations": list(destinations),
            "isEnabled": True, "pendingDuration": "PT1M",
            "repeatNotificationDuration": "PT5M",
            "messageFormat": "ONS_OPTIMIZED"}
        return self._create_alarm(details, ocid)["id"]

    def set_metric(self, name, resource_id, value):
        with self.lock:
            self.metrics[(name, resource_id)] = float(value)

    def inject(self, method, path, status, count=1, retry_after=None,
               after=False):
        """Answers the next `count` requests matching method and path (a
        regular expression) with `status` (429 gets retry-after); with
        after, each is carried out before the fault is answered."""
        with self.lock:
            self.faults.append(Fault(method, path, status, count, retry_after,
                                     after=after))

    def expire_confirmations(self):
        with self.lock:
            for s in self.subscriptions.values():
                s["_token_expires"] = time.time() - 1

    # -- the log --
    def requests(self, method=None, path=None):
        """Logged requests, optionally filtered by method and path regex."""
        with self.lock:
            out = list(self.log)
        if method:
            out = [r for r in out if r["method"] == method]
        if path:
            out = [r for r in out if re.search(path, r["path"])]
        return out

    def puts(self, ocid=None):
        """The UpdateModelDeployment requests received (for one OCID)."""
        p = "^/20190101/modelDeployments/" + (re.escape(ocid) if ocid else "")
        return self.requests("PUT", p)

    # -- work requests --
    def work_request(self, wr_id):
        with self.lock:
            return dict(self.work_requests[wr_id])

    def finish(self, wr_id, status="SUCCEEDED"):
        """Ends a work request now (also one that is held)."""
        with self.lock:
            self._end_work_request(self.work_requests[wr_id], status)

    def _end_work_request(self, wr, status):
        if wr["status"] in ("SUCCEEDED", "FAILED"):
            return
        now = time.time()
        wr["status"] = status
        wr["percentComplete"] = 100.0
        wr["timeStarted"] = wr["timeStarted"] or rfc3339(now)
        wr["timeFinished"] = rfc3339(now)
        dep = self.deployments[wr["_deployment"]]
        if status == "SUCCEEDED":
            dep["modelDeploymentConfigurationDetails"] = wr["_new_config"]
            dep["lifecycleDetails"] = ""
            wr["resources"][0]["actionType"] = "UPDATED"
        else:
            wr["_errors"] = [{"code": "InternalError", "timestamp": rfc3339(now),
                              "message": "the stand-in failed this update "
                                         "as asked by the test"}]
            dep["lifecycleDetails"] = "Update failed; previous configuration kept"
            wr["resources"][0]["actionType"] = "RELATED"
        dep["lifecycleState"] = "ACTIVE"
        self._bump(wr["_deployment"])

    def _poll_work_request(self, wr):
        """Answers one GetWorkRequest: ACCEPTED, then IN_PROGRESS for
        in_progress_polls polls, then its end (unless held)."""
        wr["_polls"] += 1
        if wr["status"] in ("SUCCEEDED", "FAILED"):
            return
        if wr["_polls"] == 1:
            return   # answered ACCEPTED once
        if wr["status"] == "ACCEPTED":
            wr["status"] = "IN_PROGRESS"
            wr["timeStarted"] = rfc3339()
            wr["resources"][0]["actionType"] = "IN_PROGRESS"
        if wr["_held"]:
            wr["percentComplete"] = 50.0
            return
        if wr["_polls"] - 1 <= self.in_progress_polls:
            wr["percentComplete"] = min(90.0, 30.0 * (wr["_polls"] - 1))
            return
        self._end_work_request(wr, wr["_outcome"])

    # -- operations --
    def _create_alarm(self, d, ocid=None):
        ocid = ocid or self._ocid("alarm")
        a = dict(d)
        a.update({"id": ocid, "lifecycleState": "ACTIVE",
                  "timeCreated": rfc3339(), "timeUpdated": rfc3339()})
        with self.lock:
            self.alarms[ocid] = a
        return a

    def deliver(self, url, body, headers):
        """POSTs one message to a subscription endpoint as Notifications
        does; records and returns (status, response body)."""
        data = json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method="POST")
        req.add_header("Content-Type", "application/json")
        for k, v in headers.items():
            req.add_header(k, v)
        ctx = None
        if url.startswith("https:"):
            ctx = ssl.create_default_context(cafile=self.cafile)
        try:
            with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
                status, text = r.status, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode("utf-8", "replace")
        except OSError as e:
            status, text = 0, str(e)
        with self.lock:
            self.deliveries.append({"url": url, "headers": headers,
                                    "body": body, "status": status,
                                    "response": text})
        return status, text

    def _ns_headers(self, sub, message_type):
        topic = self.topics[sub["topicId"]]
        return {
            "X-OCI-NS-SignatureVersion": "1.0",
            "X-OCI-NS-Signature": base64.b64encode(
                secrets.token_bytes(32)).decode(),
            "X-OCI-NS-SigningCertURL": self.url + "/_standin/signing-cert",
            "X-OCI-NS-TopicOcid": topic["topicId"],
            "X-OCI-NS-TopicName": topic["name"],
            "X-OCI-NS-Timestamp": datetime.datetime.now(
                datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
                + "+0000",
            "X-OCI-NS-MessageId": secrets.token_hex(16),
            "X-OCI-NS-MessageType": message_type,
            "X-OCI-NS-SubscriptionId": sub["id"],
        }

    def confirmation_url(self, sub_id):
        with self.lock:
            sub = self.subscriptions[sub_id]
            return "%s/20181201/subscriptions/%s/confirmation?%s" % (
                self.url, sub_id, urllib.parse.urlencode(
                    {"token": sub["_token"], "protocol": sub["protocol"]}))

    def send_confirmation(self, sub_id):
        """POSTs the subscription confirmation message to the subscription's
        endpoint; returns (status, response body)."""
        with self.lock:
            sub = self.subscriptions[sub_id]
            url = self.confirmation_url(sub_id)
            headers = self._ns_headers(sub, "SubscriptionConfirmation")
        headers["X-OCI-NS-ConfirmationURL"] = url
        headers["X-OCI-NS-State"] = "Pending"
        return self.deliver(sub["endpoint"], {"ConfirmationURL": url},
                            headers)

    def publish(self, topic_id, message):
        """Delivers a message (a dict, e.g. an alarm message) to every
        ACTIVE subscription of the topic; returns [(status, body)]."""
        with self.lock:
            subs = [s for s in self.subscriptions.values()
                    if s["topicId"] == topic_id
                    and s["lifecycleState"] == "ACTIVE"]
            targets = [(s["endpoint"], self._ns_headers(s, "Notification"))
                       for s in subs]
        return [self.deliver(u, message, h) for u, h in targets]

    def publish_as(self, url, message, subscription_id, topic_id,
                   topic_name="forged"):
        """Delivers a message to url claiming to come from subscription_id
        (for tests of messages from another subscription)."""
        headers = {
            "X-OCI-NS-TopicOcid": topic_id, "X-OCI-NS-TopicName": topic_name,
            "X-OCI-NS-MessageId": secrets.token_hex(16),
            "X-OCI-NS-MessageType": "Notification",
            "X-OCI-NS-SubscriptionId": subscription_id,
            "X-OCI-NS-Timestamp": rfc3339()}
        return self.deliver(url, message, headers)

    def summary(self):
        """A short text of what the stand-in saw, for test output."""
        with self.lock:
            lines = ["OCI stand-in at %s: %d requests, %d violations"
                     % (getattr(self, "url", "-"), len(self.log),
                        len(self.violations))]
            for r in self.log[-40:]:
                lines.append("  %s %s -> %d%s" % (
                    r["method"], r["path"], r["status"],
                    " (%s)" % r["error"] if r["error"] else ""))
            for v in self.violations:
                lines.append("  VIOLATION: " + v)
        return "\n".join(lines)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that goes away mid-answer (a daemon killed by a test) is
        # not the stand-in's error; anything else is printed as usual.
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
            return
        http.server.HTTPServer.handle_error(self, request, client_address)


class ApiError(Exception):
    def __init__(self, status, code, message, violation=False, headers=None):
        Exception.__init__(self, message)
        self.status, self.code, self.message = status, code, message
        self.violation = violation
        self.headers = headers or {}
        self.after = False  # an injected fault answered after the work


ROUTES = []


def route(method, pattern, signed=True):
    def deco(fn):
        ROUTES.append((method, re.compile("^" + pattern + "$"), signed, fn))
        return fn
    return deco


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "oci-standin"

    def log_message(self, fmt, *args):
        pass

    # -- plumbing --
    def _dispatch(self):
        st = self.server.standin
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {"code": "RequestEntityTooLarge",
                             "message": "body too large"})
            return
        body = self.rfile.read(length) if length else b""
        parsed = urllib.parse.urlsplit(self.path)
        path, query = parsed.path, urllib.parse.parse_qs(parsed.query)
        hdrs = {k.lower(): v for k, v in self.headers.items()}
        req_id = hdrs.get("opc-request-id") or secrets.token_hex(16)
        entry = {"method": self.command, "path": path, "query": query,
                 "headers": hdrs, "body": None, "status": 0, "error": None,
                 "time": time.time()}
        try:
            entry["body"] = json.loads(body) if body else None
        except ValueError:
            entry["body"] = body.decode("utf-8", "replace")
        status, out, extra = 500, None, {}
        try:
            status, out, extra = self._handle(st, path, query, hdrs, body)
        except ApiError as e:
            status, out, extra = e.status, {"code": e.code,
                                            "message": e.message}, e.headers
            entry["error"] = "%s: %s" % (e.code, e.message)
            if e.violation:
                with st.lock:
                    st.violations.append("%s %s: %s" % (self.command, path,
                                                        e.message))
        entry["status"] = status
        if not path.startswith("/_standin/"):
            with st.lock:
                st.log.append(entry)
        extra = dict(extra)
        extra["opc-request-id"] = req_id
        self._send(status, out, extra)

    def _send(self, status, out, headers=None):
        data = b"" if out is None else json.dumps(out).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if out is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _handle(self, st, path, query, hdrs, body):
        if path.startswith("/_standin/"):
            return self._control(st, path, hdrs, body)
        for method, rx, signed, fn in ROUTES:
            m = rx.match(path)
            if not m:
                continue
            if method != self.command:
                continue
            if signed:
                try:
                    verify_signature(st.public_key, st.key_id, self.command,
                                     self.path, hdrs, body)
                except SignatureError as e:
                    raise ApiError(401, "NotAuthenticated",
                                   "signature: %s" % e, violation=True)
                if self.command in ("POST", "PUT") and \
                        not hdrs.get("content-type", "").startswith(
                            "application/json"):
                    raise ApiError(400, "InvalidParameter",
                                   "content-type must be application/json",
                                   violation=True)
            fault = self._fault(st, path)
            if fault is not None and not fault.after:
                raise fault
            doc = None
            if body and self.command in ("POST", "PUT"):
                try:
                    doc = json.loads(body)
                except ValueError:
                    raise ApiError(400, "CannotParseRequest",
                                   "the body is not JSON", violation=True)
            out = fn(self, st, m, query, hdrs, doc)
            if fault is not None:
                raise fault
            return out
        if any(rx.match(path) for _, rx, _, _ in ROUTES):
            raise ApiError(405, "MethodNotAllowed", "%s is not allowed on %s"
                           % (self.command, path), violation=True)
        raise ApiError(404, "NotAuthorizedOrNotFound",
                       "no such API path %s" % path, violation=True)

    def _fault(self, st, path):
        """The ApiError of the injected fault this request meets, if any
        (with .after set when the request is to be carried out first)."""
        with st.lock:
            for f in st.faults:
                if f.count > 0 and f.method == self.command and \
                        f.path.search(path):
                    f.count -= 1
                    h = {}
                    if f.retry_after is not None:
                        h["retry-after"] = f.retry_after
                    e = ApiError(f.status, f.code, f.message, headers=h)
                    e.after = f.after
                    return e
        return None

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    # -- the control endpoint (unsigned; for tests in other languages) --
    def _control(self, st, path, hdrs, body):
        doc = json.loads(body) if body else {}
        parts = path.split("/")[2:]
        verb = (self.command, parts[0] if parts else "")
        if verb == ("GET", "log"):
            with st.lock:
                return 200, {"items": st.log}, {}
        if verb == ("GET", "violations"):
            with st.lock:
                return 200, {"items": st.violations}, {}
        if verb == ("GET", "deliveries"):
            with st.lock:
                return 200, {"items": st.deliveries}, {}
        if verb == ("POST", "deployments"):
            ocid = st.add_deployment(
                doc.get("instanceShapeName", "VM.Standard2.1"),
                doc.get("instanceCount", 1), doc.get("lifecycleState", "ACTIVE"),
                doc.get("ocpus"), doc.get("memoryInGBs"), doc.get("id"))
            return 201, st.deployment(ocid), {"etag": st.etag(ocid)}
        if verb == ("POST", "state") and len(parts) == 2:
            st.set_state(parts[1], doc["lifecycleState"])
            return 200, st.deployment(parts[1]), {}
        if verb == ("POST", "faults"):
            st.inject(doc["method"], doc["path"], doc["status"],
                      doc.get("count", 1), doc.get("retryAfter"),
                      doc.get("after", False))
            return 204, None, {}
        if verb == ("POST", "workrequests"):
            with st.lock:
                for k in ("hold", "fail_next_update", "in_progress_polls"):
                    if k in doc:
                        setattr(st, k, doc[k])
            if len(parts) == 2:
                st.finish(parts[1], doc.get("status", "SUCCEEDED"))
            return 204, None, {}
        if verb == ("POST", "metrics"):
            st.set_metric(doc["name"], doc["resourceId"], doc["value"])
            return 204, None, {}
        if verb == ("POST", "alarms"):
            ocid = st.add_alarm(doc["displayName"], doc["query"],
                                doc.get("destinations", []), doc.get("id"))
            return 201, {"id": ocid}, {}
        if verb == ("POST", "publish"):
            res = st.publish(doc["topicId"], doc["message"])
            return 200, {"results": [{"status": s, "body": b}
                                     for s, b in res]}, {}
        if verb == ("POST", "expire-confirmations"):
            st.expire_confirmations()
            return 204, None, {}
        raise ApiError(404, "NotFound", "no control path %s" % path)


# -- Data Science -----------------------------------------------------------

def _dep(st, ocid):
    d = st.deployments.get(ocid)
    if d is None:
        raise ApiError(404, "NotAuthorizedOrNotFound",
                       "model deployment %s not found or not authorized" % ocid)
    return d


@route("GET", r"/20190101/modelDeployments/([^/]+)")
def get_model_deployment(h, st, m, query, hdrs, doc):
    with st.lock:
        d = _dep(st, m.group(1))
        return 200, json.loads(json.dumps(d)), {"etag": st._etags[d["id"]]}


def _merge_update(st, current, upd):
    """The configuration an UpdateModelDeploymentDetails asks for: the
    current one with the given parts replaced. Raises ApiError 400 for a
    shape the region does not offer or a Flex shape without its config."""
    new = json.loads(json.dumps(current))
    mcd = (upd.get("modelDeploymentConfigurationDetails") or {}).get(
        "modelConfigurationDetails")
    if not mcd:
        return new
    cur = new["modelConfigurationDetails"]
    cur["modelId"] = mcd["modelId"]
    if "scalingPolicy" in mcd:
        n = mcd["scalingPolicy"]["instanceCount"]
        if n < 1:
            raise ApiError(400, "InvalidParameter",
                           "scalingPolicy.instanceCount must be at least 1")
        cur["scalingPolicy"] = dict(mcd["scalingPolicy"])
    if "instanceConfiguration" in mcd:
        ic = mcd["instanceConfiguration"]
        shape = ic["instanceShapeName"]
        if shape not in OFFERED_SHAPES:
            raise ApiError(400, "InvalidParameter",
                           "shape %s is not offered for model deployments in "
                           "%s" % (shape, st.region))
        flex = shape.endswith(".Flex")
        sc = ic.get("modelDeploymentInstanceShapeConfigDetails")
        if flex and not (sc and "ocpus" in sc and "memoryInGBs" in sc):
            raise ApiError(400, "InvalidParameter",
                           "Flex shape %s needs modelDeploymentInstanceShape"
                           "ConfigDetails with ocpus and memoryInGBs" % shape)
        if not flex and sc:
            raise ApiError(400, "InvalidParameter",
                           "shape %s is not a Flex shape; it takes no "
                           "modelDeploymentInstanceShapeConfigDetails" % shape)
        cur["instanceConfiguration"] = dict(ic)
    for k in ("bandwidthMbps", "maximumBandwidthMbps"):
        if k in mcd:
            cur[k] = mcd[k]
    return new


@route("PUT", r"/20190101/modelDeployments/([^/]+)")
def update_model_deployment(h, st, m, query, hdrs, doc):
    try:
        check_shape(doc if doc is not None else {},
                    "UpdateModelDeploymentDetails", "UpdateModelDeploymentDetails")
    except ShapeError as e:
        raise ApiError(400, e.code, str(e), violation=True)
    with st.lock:
        d = _dep(st, m.group(1))
        if "if-match" not in hdrs:
            raise ApiError(400, "MissingParameter",
                           "mdscale must send if-match with the etag it read",
                           violation=True)
        if hdrs["if-match"] != st._etags[d["id"]]:
            raise ApiError(412, "NoEtagMatch",
                           "if-match %s does not match the current etag"
                           % hdrs["if-match"])
        if d["lifecycleState"] != "ACTIVE":
            raise ApiError(409, "IncorrectState",
                           "model deployment %s is %s; it can be updated only "
                           "when ACTIVE" % (d["id"], d["lifecycleState"]))
        new = _merge_update(st, d["modelDeploymentConfigurationDetails"], doc)
        for k in ("displayName", "description", "freeformTags", "definedTags"):
            if k in doc:
                d[k] = doc[k]
        wr_id = st._ocid("datascienceworkrequest")
        st.work_requests[wr_id] = {
            "id": wr_id, "operationType": "MODEL_DEPLOYMENT_UPDATE",
            "status": "ACCEPTED", "compartmentId": d["compartmentId"],
            "percentComplete": 0.0,
            "resources": [{"actionType": "IN_PROGRESS",
                           "entityType": "modelDeployment",
                           "identifier": d["id"],
                           "entityUri": "/modelDeployments/" + d["id"]}],
            "timeAccepted": rfc3339(), "timeStarted": None,
            "timeFinished": None,
            "_deployment": d["id"], "_new_config": new, "_polls": 0,
            "_held": st.hold,
            "_outcome": "FAILED" if st.fail_next_update else "SUCCEEDED"}
        st.fail_next_update = False
        d["lifecycleState"] = "UPDATING"
        st._bump(d["id"])
    return 202, None, {"opc-work-request-id": wr_id}


def _public(obj):
    return {k: v for k, v in obj.items() if not k.startswith("_")}


@route("GET", r"/20190101/workRequests/([^/]+)")
def get_work_request(h, st, m, query, hdrs, doc):
    with st.lock:
        wr = st.work_requests.get(m.group(1))
        if wr is None:
            raise ApiError(404, "NotAuthorizedOrNotFound",
                           "work request %s not found" % m.group(1))
        st._poll_work_request(wr)
        return 200, _public(wr), {}


@route("GET", r"/20190101/workRequests/([^/]+)/errors")
def list_work_request_errors(h, st, m, query, hdrs, doc):
    with st.lock:
        wr = st.work_requests.get(m.group(1))
        if wr is None:
            raise ApiError(404, "NotAuthorizedOrNotFound",
                           "work request %s not found" % m.group(1))
        return 200, list(wr.get("_errors", [])), {}


# -- Monitoring -------------------------------------------------------------

def _retry_token(st, hdrs, key):
    tok = hdrs.get("opc-retry-token")
    return (key, tok) if tok else None


@route("POST", r"/20180401/alarms")
def create_alarm(h, st, m, query, hdrs, doc):
    try:
        check_shape(doc, "CreateAlarmDetails", "CreateAlarmDetails")
    except ShapeError as e:
        raise ApiError(400, e.code, str(e), violation=True)
    if not doc["destinations"]:
        raise ApiError(400, "InvalidParameter",
                       "CreateAlarmDetails.destinations must name a topic")
    with st.lock:
        for t in doc["destinations"]:
            if t not in st.topics:
                raise ApiError(400, "RelatedResourceNotAuthorizedOrNotFound",
                               "destination topic %s not found" % t)
        tok = _retry_token(st, hdrs, "alarm")
        if tok in st.retry_tokens:
            a = st.alarms[st.retry_tokens[tok]]
            return 200, a, {"etag": "alarm-" + a["id"][-8:]}
        a = st._create_alarm(doc)
        if tok:
            st.retry_tokens[tok] = a["id"]
    return 200, a, {"etag": "alarm-" + a["id"][-8:]}


@route("GET", r"/20180401/alarms/([^/]+)")
def get_alarm(h, st, m, query, hdrs, doc):
    with st.lock:
        a = st.alarms.get(m.group(1))
        if a is None or a["lifecycleState"] == "DELETED":
            raise ApiError(404, "NotAuthorizedOrNotFound",
                           "alarm %s not found" % m.group(1))
        return 200, dict(a), {"etag": "alarm-" + a["id"][-8:]}


@route("DELETE", r"/20180401/alarms/([^/]+)")
def delete_alarm(h, st, m, query, hdrs, doc):
    with st.lock:
        a = st.alarms.get(m.group(1))
        if a is None or a["lifecycleState"] == "DELETED":
            raise ApiError(404, "NotAuthorizedOrNotFound",
                           "alarm %s not found" % m.group(1))
        a["lifecycleState"] = "DELETED"
        a["timeUpdated"] = rfc3339()
    return 204, None, {}


ALARM_SUMMARY = ["id", "displayName", "compartmentId", "metricCompartmentId",
                 "namespace", "query", "severity", "destinations",
                 "suppression", "isEnabled",
                 "isNotificationsPerMetricDimensionEnabled", "freeformTags",
                 "definedTags", "lifecycleState", "overrides", "ruleName",
                 "notificationVersion", "notificationTitle",
                 "evaluationSlackDuration", "alarmSummary", "resourceGroup"]


def _one(query, name, required, where):
    v = query.get(name)
    if not v:
        if required:
            raise ApiError(400, "MissingParameter",
                           "%s: query parameter %s is required" % (where, name),
                           violation=True)
        return None
    return v[0]


@route("GET", r"/20180401/alarms")
def list_alarms(h, st, m, query, hdrs, doc):
    known = {"compartmentId", "page", "limit", "displayName",
             "lifecycleState", "sortBy", "sortOrder",
             "compartmentIdInSubtree"}
    for k in query:
        if k not in known:
            raise ApiError(400, "InvalidParameter", "ListAlarms: unknown query "
                           "parameter %s" % k, violation=True)
    comp = _one(query, "compartmentId", True, "ListAlarms")
    name = _one(query, "displayName", False, "ListAlarms")
    state = _one(query, "lifecycleState", False, "ListAlarms")
    with st.lock:
        out = [{k: a[k] for k in ALARM_SUMMARY if k in a}
               for a in st.alarms.values()
               if a["compartmentId"] == comp
               and (name is None or a["displayName"] == name)
               and (state is None and a["lifecycleState"] != "DELETED"
                    or a["lifecycleState"] == state)]
    return 200, out, {}


_QUERY = re.compile(r"^\s*(\w+)\[(\d+)([mhd])\]\s*(\{(.*)\})?\s*"
                    r"\.(\w+)\(\)\s*$")


@route("POST", r"/20180401/metrics/actions/summarizeMetricsData")
def summarize_metrics_data(h, st, m, query, hdrs, doc):
    for k in query:
        if k not in ("compartmentId", "compartmentIdInSubtree"):
            raise ApiError(400, "InvalidParameter", "SummarizeMetricsData: "
                           "unknown query parameter %s" % k, violation=True)
    comp = _one(query, "compartmentId", True, "SummarizeMetricsData")
    try:
        check_shape(doc, "SummarizeMetricsDataDetails",
                    "SummarizeMetricsDataDetails")
    except ShapeError as e:
        raise ApiError(400, e.code, str(e), violation=True)
    q = _QUERY.match(doc["query"])
    if not q:
        raise ApiError(400, "InvalidParameter", "query %r is not an MQL "
                       "metric query the stand-in understands" % doc["query"])
    metric, filt = q.group(1), q.group(5) or ""
    ids = None
    fm = re.match(r'^\s*resourceId\s*(=~?)\s*"([^"]*)"\s*$', filt)
    if fm:
        pats = fm.group(2).split("|") if fm.group(1) == "=~" else [fm.group(2)]
        rx = [re.compile("^" + ".*".join(re.escape(x) for x in p.split("*"))
                         + "$") for p in pats]
        ids = rx
    elif filt.strip():
        raise ApiError(400, "InvalidParameter", "dimension filter %r is not "
                       "one the stand-in understands" % filt)
    end = parse_rfc3339(doc["endTime"]) if "endTime" in doc else time.time()
    start = parse_rfc3339(doc["startTime"]) if "startTime" in doc \
        else end - 3600
    if start >= end:
        raise ApiError(400, "InvalidParameter", "startTime is not before endTime")
    out = []
    with st.lock:
        for (name, rid), value in sorted(st.metrics.items()):
            if name != metric:
                continue
            if ids is not None and not any(r.match(rid) for r in ids):
                continue
            pts = []
            t = end - (end % 60)
            while t >= start and len(pts) < 60:
                pts.append({"timestamp": rfc3339(t), "value": value})
                t -= 60
            out.append({"namespace": doc["namespace"], "compartmentId": comp,
                        "name": metric, "dimensions": {"resourceId": rid},
                        "metadata": {"unit": "percent"},
                        "resolution": doc.get("resolution", "1m"),
                        "aggregatedDatapoints": list(reversed(pts))})
    return 200, out, {}


# -- Notifications ----------------------------------------------------------

_TOPIC_NAME = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


@route("POST", r"/20181201/topics")
def create_topic(h, st, m, query, hdrs, doc):
    try:
        check_shape(doc, "CreateTopicDetails", "CreateTopicDetails")
    except ShapeError as e:
        raise ApiError(400, e.code, str(e), violation=True)
    if not _TOPIC_NAME.match(doc["name"]):
        raise ApiError(400, "InvalidParameter", "topic name %r: letters, "
                       "digits, hyphens and underscores only" % doc["name"])
    with st.lock:
        tok = _retry_token(st, hdrs, "topic")
        if tok in st.retry_tokens:
            t = st.topics[st.retry_tokens[tok]]
            return 200, t, {"etag": t["etag"]}
        for t in st.topics.values():
            if t["name"] == doc["name"] and \
                    t["compartmentId"] == doc["compartmentId"]:
                raise ApiError(409, "Conflict", "a topic named %s exists"
                               % doc["name"])
        tid = st._ocid("onstopic")
        t = {"name": doc["name"], "topicId": tid,
             "shortTopicId": tid[-10:], "compartmentId": doc["compartmentId"],
             "lifecycleState": "ACTIVE",
             "description": doc.get("description", ""),
             "timeCreated": rfc3339(), "etag": secrets.token_hex(8),
             "freeformTags": doc.get("freeformTags", {}),
             "definedTags": doc.get("definedTags", {}),
             "apiEndpoint": st.url}
        st.topics[tid] = t
        if tok:
            st.retry_tokens[tok] = tid
    return 200, t, {"etag": t["etag"]}


@route("POST", r"/20181201/subscriptions")
def create_subscription(h, st, m, query, hdrs, doc):
    try:
        check_shape(doc, "CreateSubscriptionDetails",
                    "CreateSubscriptionDetails")
    except ShapeError as e:
        raise ApiError(400, e.code, str(e), violation=True)
    ep = urllib.parse.urlsplit(doc["endpoint"])
    if doc["protocol"] == "CUSTOM_HTTPS":
        schemes = ("https", "http") if st.allow_http_endpoints else ("https",)
        if ep.scheme not in schemes or not ep.hostname:
            raise ApiError(400, "InvalidParameter", "CUSTOM_HTTPS endpoint "
                           "%r must be an https:// URL" % doc["endpoint"])
        if ep.query:
            raise ApiError(400, "InvalidParameter", "query parameters are not "
                           "allowed in the endpoint URL")
    with st.lock:
        if doc["topicId"] not in st.topics:
            raise ApiError(404, "NotAuthorizedOrNotFound",
                           "topic %s not found" % doc["topicId"])
        tok = _retry_token(st, hdrs, "subscription")
        if tok in st.retry_tokens:
            s = st.subscriptions[st.retry_tokens[tok]]
            return 200, _public(s), {"etag": s["etag"]}
        sid = st._ocid("onssubscription")
        s = {"id": sid, "topicId": doc["topicId"],
             "protocol": doc["protocol"], "endpoint": doc["endpoint"],
             "lifecycleState": "PENDING",
             "compartmentId": doc["compartmentId"],
             "createdTime": int(time.time() * 1000),
             "deliverPolicy": json.dumps({"backoffRetryPolicy": {
                 "maxRetryDuration": 7200000,
                 "policyType": "EXPONENTIAL"}}),
             "etag": secrets.token_hex(8),
             "freeformTags": doc.get("freeformTags", {}),
             "definedTags": doc.get("definedTags", {}),
             "_token": secrets.token_urlsafe(24),
             "_token_expires": time.time() + CONFIRMATION_TTL_S}
        st.subscriptions[sid] = s
        if tok:
            st.retry_tokens[tok] = sid
        out = _public(s)
    if doc["protocol"] == "CUSTOM_HTTPS" and st.auto_confirmation:
        threading.Timer(0.05, st.send_confirmation, args=(sid,)).start()
    return 200, out, {"etag": s["etag"]}


@route("GET", r"/20181201/subscriptions/([^/]+)")
def get_subscription(h, st, m, query, hdrs, doc):
    with st.lock:
        s = st.subscriptions.get(m.group(1))
        if s is None:
            raise ApiError(404, "NotAuthorizedOrNotFound",
                           "subscription %s not found" % m.group(1))
        return 200, _public(s), {"etag": s["etag"]}


@route("GET", r"/20181201/subscriptions/([^/]+)/confirmation", signed=False)
def get_confirm_subscription(h, st, m, query, hdrs, doc):
    """The link in the confirmation message: anyone holding it may confirm,
    so it is not signed; the token is the credential."""
    token = _one(query, "token", True, "GetConfirmSubscription")
    protocol = _one(query, "protocol", True, "GetConfirmSubscription")
    with st.lock:
        s = st.subscriptions.get(m.group(1))
        if s is None:
            raise ApiError(404, "NotAuthorizedOrNotFound",
                           "subscription %s not found" % m.group(1))
        if token != s["_token"] or protocol != s["protocol"]:
            raise ApiError(400, "InvalidParameter",
                           "confirmation token is not valid for %s" % s["id"])
        if time.time() > s["_token_expires"]:
            raise ApiError(400, "InvalidParameter",
                           "the confirmation URL has expired; resend the "
                           "confirmation for subscription %s" % s["id"])
        s["lifecycleState"] = "ACTIVE"
        t = st.topics[s["topicId"]]
        out = {"topicName": t["name"], "topicId": t["topicId"],
               "endpoint": s["endpoint"], "subscriptionId": s["id"],
               "message": "You have successfully subscribed to %s"
                          % t["name"],
               "unsubscribeUrl": "%s/20181201/subscriptions/%s/unsubscription"
                                 "?token=%s" % (st.url, s["id"], s["_token"])}
    return 200, out, {}


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description="OCI API stand-in (not OCI)")
    ap.add_argument("--dir", required=True,
                    help="where to write its certificate")
    ap.add_argument("--seed-deployment", action="store_true")
    ap.add_argument("--allow-http-endpoints", action="store_true")
    a = ap.parse_args(argv)
    cert, key = make_certificate(a.dir)
    st = OciStandin(cert, key, allow_http_endpoints=a.allow_http_endpoints)
    st.start()
    print("OCI stand-in listening on %s (CA: %s)" % (st.url, cert), flush=True)
    if a.seed_deployment:
        print("seeded deployment %s" % st.add_deployment(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        st.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
