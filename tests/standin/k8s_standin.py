#!/usr/bin/env python3
"""A stand-in of the Kubernetes API server, for contract tests.

A real kube-apiserver cannot run on the test machines, so mdscale's
Kubernetes client is tested against this stand-in. It is not Kubernetes: it
keeps a few objects in memory and models the little of the Deployment
controller that mdscale relies on. What it does do is check every request
against the API's documented shapes (paths, verbs, query parameters, content
types, bodies) and answer as the API documents:

  apps/v1 Deployments        GET, list, watch, PATCH (strategic-merge,
                             merge and JSON patch content types)
  deployments/{n}/scale      GET, PUT (autoscaling/v1 Scale); a stale
                             metadata.resourceVersion is 409 Conflict
  v1 pods                    list, watch, GET; pods/{n}/resize PATCH
                             (1.33 and later; switchable)
  HPA / VPA                  list (autoscaling/v2, autoscaling.k8s.io/v1)
  metrics.k8s.io/v1beta1     PodMetrics list
  discovery                  /version, /api/v1, /apis/apps/v1
  watch streams              chunked, one JSON event per line; they end
                             (timeoutSeconds, or on demand), and a
                             resourceVersion older than the kept history
                             gets an ERROR event with a 410 Expired Status
  errors                     v1 Status objects: 401, 403 (naming verb,
                             resource, group, namespace), 404, 409, 415, 422

Authentication: a bearer token (Authorization: Bearer T) or a client
certificate signed by the stand-in's CA. Anything else is 401.

A request that breaks the documented shapes is answered as the API would
(400, 415, 422...) and also recorded as a violation; tests read
GET /_standin/violations and expect it empty. Tests script the stand-in
through /_standin/* (JSON bodies; no Kubernetes path starts with "_"):

  POST /_standin/deployments   seed a Deployment {namespace, name, replicas,
                               containers: [{name, image, requests, limits,
                               ports: [{containerPort}]}], run}
                               With run (an argv; "{podIP}" and "{port}"
                               in it are replaced), its pods are real: each
                               new pod runs that program, bound to a
                               loopback address of its own (127.0.1.N, its
                               status.podIP) on the first container's
                               first containerPort, as pods share a port
                               on their own IPs; a pod becomes Ready only
                               once GET /health answers 200, and its
                               program is stopped when the pod goes.
  POST /_standin/advance       one step of the Deployment controller
                               {namespace, name} (observe, create pods,
                               make them ready, remove old ones)
  POST /_standin/auto          {interval_ms}: advance every Deployment on
                               a timer (0 stops)
  POST /_standin/stall         {namespace, name}: new pods never become
                               ready; the next advance sets Progressing=False
                               with ProgressDeadlineExceeded
  POST /_standin/fault         {method, path (regex), status, count,
                               reason, message}: answer the next count
                               matching requests with that Status
  POST /_standin/conflict      {count}: the next count conditional writes
                               (scale PUTs, Deployment PATCHes with a
                               resourceVersion) see a concurrent writer
                               (rv moves first: 409)
  POST /_standin/forbid        {verb, resource}: RBAC denies it (403)
  POST /_standin/expire-token  {token}: that token is now refused (401)
  POST /_standin/compact       forget the watch history (older rv: 410)
  POST /_standin/end-watches   end every open watch stream
  POST /_standin/metrics       {namespace, pod, container, cpu, memory}
  POST /_standin/hpa           {namespace, name, target}  (also /vpa)
  POST /_standin/resize        {enabled}: serve pods/resize or not
  GET  /_standin/log           every request: method, path, query, status
  GET  /_standin/violations    requests that broke the API's shapes
  GET  /_standin/rbac-unused   with --rbac FILE (a Role: the only
                               permissions), what it grants that no
                               request needed
  GET  /_standin/state         every object as stored

With K8S_STANDIN_TRACE set in its environment it writes every request
to stderr.

Run: k8s_standin.py --dir DIR [--token T] [--lifetime S] [--resize]
[--rbac ROLE.yaml]. It
writes DIR/ca.crt, DIR/client.crt, DIR/client.key, DIR/kubeconfig (token)
and DIR/kubeconfig-cert (client certificate), prints one line
"k8s stand-in listening on https://127.0.0.1:PORT" and serves until stdin
closes or the lifetime ends.
"""
import argparse
import copy
import hashlib
import http.server
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HISTORY_MAX = 1000
PATCH_TYPES = ("application/strategic-merge-patch+json",
               "application/merge-patch+json",
               "application/json-patch+json")
QUANTITY_RE = re.compile(r"^([0-9]+(\.[0-9]+)?)(m|k|Ki|Mi|Gi|Ti|M|G|T|n|u)?$")
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def quantity_value(q):
    """A resource.Quantity string as a float (cores or bytes), or None."""
    if isinstance(q, (int, float)):
        return float(q)
    if not isinstance(q, str):
        return None
    m = QUANTITY_RE.match(q)
    if m is None:
        return None
    mult = {None: 1, "m": 1e-3, "n": 1e-9, "u": 1e-6, "k": 1e3, "M": 1e6,
            "G": 1e9, "T": 1e12, "Ki": 1024, "Mi": 1024 ** 2,
            "Gi": 1024 ** 3, "Ti": 1024 ** 4}[m.group(3)]
    return float(m.group(1)) * mult


def status_obj(code, reason, message, details=None):
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {},
          "status": "Failure", "message": message, "reason": reason,
          "code": code}
    if details is not None:
        st["details"] = details
    return st


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None, violation=None):
        super().__init__(message)
        self.status = status_obj(code, reason, message, details)
        self.violation = violation


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = copy.deepcopy(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def strategic_merge(target, patch):
    """Strategic merge patch, as far as mdscale uses it: lists of containers
    are merged by their "name" key, other lists replaced."""
    if not isinstance(patch, dict) or not isinstance(target, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif (k == "containers" and isinstance(v, list)
              and isinstance(out.get(k), list)):
            merged = copy.deepcopy(out[k])
            for pc in v:
                if not isinstance(pc, dict) or "name" not in pc:
                    raise ApiError(422, "Invalid",
                                   "containers: merge key \"name\" missing",
                                   violation="container patch without name")
                for i, c in enumerate(merged):
                    if c.get("name") == pc["name"]:
                        merged[i] = strategic_merge(c, pc)
                        break
                else:
                    merged.append(copy.deepcopy(pc))
            out[k] = merged
        else:
            out[k] = strategic_merge(out.get(k), v)
    return out


def json_patch(target, ops):
    """RFC 6902: add, replace, remove, test (what a client may send)."""
    out = copy.deepcopy(target)
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "JSON patch must be an array",
                       violation="JSON patch not an array")
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ApiError(400, "BadRequest", "bad JSON patch operation",
                           violation="bad JSON patch operation")
        parts = [p.replace("~1", "/").replace("~0", "~")
                 for p in op["path"].split("/")[1:]]
        parent = out
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else \
                parent.setdefault(p, {})
        last = parts[-1]
        if isinstance(parent, list):
            last = len(parent) if last == "-" else int(last)
        if op["op"] in ("add", "replace"):
            if isinstance(parent, list) and op["op"] == "add":
                parent.insert(last, op.get("value"))
            else:
                parent[last] = op.get("value")
        elif op["op"] == "remove":
            del parent[last]
        elif op["op"] == "test":
            if parent[last] != op.get("value"):
                raise ApiError(422, "Invalid", "test operation failed")
        else:
            raise ApiError(400, "BadRequest", "unsupported op %s" % op["op"],
                           violation="JSON patch op %s" % op["op"])
    return out


def validate_resources(res, field):
    causes = []
    if not isinstance(res, dict):
        return [{"field": field, "message": "must be an object"}]
    for kind in ("requests", "limits"):
        for rname, q in (res.get(kind) or {}).items():
            if rname not in ("cpu", "memory", "ephemeral-storage"):
                causes.append({"field": "%s.%s[%s]" % (field, kind, rname),
                               "message": "must be a standard resource"})
            elif quantity_value(q) is None:
                causes.append({"field": "%s.%s[%s]" % (field, kind, rname),
                               "message": "quantities must match the "
                               "regular expression"})
    for rname, q in (res.get("requests") or {}).items():
        lim = (res.get("limits") or {}).get(rname)
        if lim is not None and quantity_value(q) is not None and \
                quantity_value(lim) is not None and \
                quantity_value(q) > quantity_value(lim):
            causes.append({"field": "%s.requests" % field,
                           "message": "Invalid value: \"%s\": must be less "
                           "than or equal to %s limit of %s"
                           % (q, rname, lim)})
    return causes


class Store:
    """Every object, the resourceVersion counter and the watch history."""

    def __init__(self):
        self.lock = threading.Condition()
        self.rv = 100
        self.history = []          # (rv, kind, namespace, type, object)
        self.history_floor = 100   # watches from below this rv get 410
        self.deployments = {}      # (ns, name) -> object
        self.pods = {}             # (ns, name) -> object
        self.metrics = {}          # (ns, pod) -> {container: (cpu, mem)}
        self.hpas = []
        self.vpas = []
        self.vpa_installed = True
        self.resize_enabled = False
        self.stalled = set()
        self.faults = []
        self.conflicts = 0
        self.forbidden = set()     # (verb, resource)
        self.rbac = None           # Role rules: [(groups, resources, verbs)]
        self.rbac_used = set()     # (group, resource, verb) granted
        self.tokens = set()
        self.expired = set()
        self.log = []
        self.violations = []
        self.watch_epoch = 0
        self.seq = 0
        self.runs = {}             # (ns, deployment) -> argv of real pods
        self.procs = {}            # (ns, pod) -> Popen of a real pod
        self.pod_ips = {}          # podIP -> (ns, pod), real pods only

    def bump(self, kind, ns, etype, obj):
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.history.append((self.rv, kind, ns, etype, copy.deepcopy(obj)))
        if len(self.history) > HISTORY_MAX:
            drop = self.history.pop(0)
            self.history_floor = drop[0]
        self.lock.notify_all()

    def violation(self, what, req):
        self.violations.append({"violation": what, "request": req})


def pod_port(pod):
    """The first containerPort of a pod's first container, or 0."""
    for c in pod["spec"]["containers"][:1]:
        for p in c.get("ports") or []:
            return p["containerPort"]
    return 0


def template_hash(template):
    data = json.dumps(template, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:10]


def labels_match(selector, labels):
    if not selector:
        return True
    for term in selector.split(","):
        if "=" not in term:
            return False
        k, v = term.split("=", 1)
        k = k.rstrip("=").rstrip("!")
        if term.find("!=") >= 0:
            if labels.get(k) == v:
                return False
        elif labels.get(k) != v.lstrip("="):
            return False
    return True


class Controller:
    """The little of the Deployment controller and the kubelet that mdscale
    depends on, one step at a time."""

    def __init__(self, store):
        self.s = store

    def set_condition(self, d, ctype, status, reason, message):
        conds = d["status"].setdefault("conditions", [])
        for c in conds:
            if c["type"] == ctype:
                if c["status"] != status:
                    c["lastTransitionTime"] = now_rfc3339()
                c.update(status=status, reason=reason, message=message,
                         lastUpdateTime=now_rfc3339())
                return
        conds.append({"type": ctype, "status": status, "reason": reason,
                      "message": message, "lastUpdateTime": now_rfc3339(),
                      "lastTransitionTime": now_rfc3339()})

    def pods_of(self, ns, name):
        return [p for (pns, _), p in sorted(self.s.pods.items())
                if pns == ns and p["metadata"]["labels"].get("mdscale-standin-owner") == name]

    def new_pod(self, d, h):
        s = self.s
        s.seq += 1
        ns = d["metadata"]["namespace"]
        name = "%s-%s-%05d" % (d["metadata"]["name"], h[:8], s.seq)
        labels = dict(d["spec"]["template"]["metadata"].get("labels", {}))
        labels["pod-template-hash"] = h
        labels["mdscale-standin-owner"] = d["metadata"]["name"]
        containers = copy.deepcopy(d["spec"]["template"]["spec"]["containers"])
        pod = {"kind": "Pod", "apiVersion": "v1",
               "metadata": {"name": name, "namespace": ns,
                            "uid": "pod-uid-%d" % s.seq, "labels": labels,
                            "creationTimestamp": now_rfc3339()},
               "spec": {"containers": containers},
               "status": {"phase": "Pending",
                          "conditions": [{"type": "Ready", "status": "False"}],
                          "containerStatuses": [
                              {"name": c["name"], "ready": False,
                               "resources": copy.deepcopy(c.get("resources", {}))}
                              for c in containers]}}
        s.pods[(ns, name)] = pod
        argv = s.runs.get((ns, d["metadata"]["name"]))
        if argv is not None:
            self.run_pod(pod, argv)
        s.bump("pods", ns, "ADDED", pod)
        return pod

    def run_pod(self, pod, argv):
        """Starts a real pod's program on an address of its own."""
        s = self.s
        ip = next("127.0.1.%d" % n for n in range(1, 255)
                  if "127.0.1.%d" % n not in s.pod_ips)
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        port = pod_port(pod)
        s.pod_ips[ip] = key
        pod["status"]["podIP"] = ip
        pod["status"]["podIPs"] = [{"ip": ip}]
        pod["status"]["hostIP"] = "127.0.0.1"
        args = [a.replace("{podIP}", ip).replace("{port}", str(port))
                for a in argv]
        s.procs[key] = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)

    def healthy(self, pod):
        """Whether a pod may be Ready: always for a pod of nothing; for a
        real pod, once its program answers GET /health with 200."""
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        if key not in self.s.procs:
            return True
        url = "http://%s:%d/health" % (pod["status"]["podIP"], pod_port(pod))
        try:
            with urllib.request.urlopen(url, timeout=0.5) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def stop_pod(self, key):
        """Stops a real pod's program (SIGTERM, SIGKILL after 5 s)."""
        s = self.s
        proc = s.procs.pop(key, None)
        for ip in [ip for ip, k in s.pod_ips.items() if k == key]:
            del s.pod_ips[ip]
        if proc is None:
            return
        proc.terminate()

        def reap():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        threading.Thread(target=reap, daemon=True).start()

    def set_ready(self, pod):
        pod["status"]["phase"] = "Running"
        pod["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
        for cs in pod["status"]["containerStatuses"]:
            cs["ready"] = True
        self.s.bump("pods", pod["metadata"]["namespace"], "MODIFIED", pod)

    def delete_pod(self, pod):
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        del self.s.pods[key]
        self.s.metrics.pop(key, None)
        self.stop_pod(key)
        self.s.bump("pods", key[0], "DELETED", pod)

    def advance(self, ns, name):
        """One step. Returns True when something changed."""
        s = self.s
        d = s.deployments.get((ns, name))
        if d is None:
            raise ApiError(404, "NotFound", "no such deployment")
        changed = False
        spec, st = d["spec"], d["status"]
        h = template_hash(d["spec"]["template"])
        pods = self.pods_of(ns, name)
        new = [p for p in pods if p["metadata"]["labels"]["pod-template-hash"] == h]
        old = [p for p in pods if p not in new]
        stalled = (ns, name) in s.stalled
        if st.get("observedGeneration") != d["metadata"]["generation"]:
            st["observedGeneration"] = d["metadata"]["generation"]
            self.set_condition(d, "Progressing", "True", "ReplicaSetUpdated",
                               "ReplicaSet is progressing.")
            changed = True
        elif not stalled and any(p["status"]["phase"] == "Pending" and
                                 self.healthy(p) for p in new):
            # The kubelet's readiness probe: a real pod once it answers.
            for p in new:
                if p["status"]["phase"] == "Pending" and self.healthy(p):
                    self.set_ready(p)
            changed = True
        elif len(new) < spec["replicas"]:
            # maxSurge: create the missing new pods at once.
            for _ in range(spec["replicas"] - len(new)):
                self.new_pod(d, h)
            changed = True
        elif old and all(p["status"]["phase"] == "Running" for p in new):
            # maxUnavailable 0: old pods go only once new ones are ready.
            for p in old:
                self.delete_pod(p)
            changed = True
        elif len(new) > spec["replicas"]:
            for p in new[spec["replicas"]:]:
                self.delete_pod(p)
            changed = True
        elif stalled and any(p["status"]["phase"] == "Pending" for p in new):
            self.set_condition(d, "Progressing", "False",
                               "ProgressDeadlineExceeded",
                               "ReplicaSet \"%s-%s\" has timed out progressing."
                               % (name, h[:8]))
            changed = True
        pods = self.pods_of(ns, name)
        ready = sum(1 for p in pods if p["status"]["phase"] == "Running")
        updated = sum(1 for p in pods
                      if p["metadata"]["labels"]["pod-template-hash"] == h)
        counts = {"replicas": len(pods), "updatedReplicas": updated,
                  "readyReplicas": ready, "availableReplicas": ready,
                  "unavailableReplicas": max(0, len(pods) - ready)}
        if any(st.get(k) != v for k, v in counts.items()):
            st.update(counts)
            changed = True
        if (not stalled and updated == spec["replicas"] == ready == len(pods)
                and st["observedGeneration"] == d["metadata"]["generation"]):
            before = json.dumps(st.get("conditions"), sort_keys=True)
            self.set_condition(d, "Progressing", "True",
                               "NewReplicaSetAvailable",
                               "ReplicaSet has successfully progressed.")
            self.set_condition(d, "Available", "True",
                               "MinimumReplicasAvailable",
                               "Deployment has minimum availability.")
            if json.dumps(st.get("conditions"), sort_keys=True) != before:
                changed = True
        if changed:
            s.bump("deployments", ns, "MODIFIED", d)
        return changed


# (verb, resource) pairs per route; resource is what RBAC names.
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "k8s-standin/1"

    def log_message(self, fmt, *args):
        pass

    # -- plumbing -----------------------------------------------------
    @property
    def st(self):
        return self.server.store

    def send_json(self, code, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.last_status = code

    def read_body(self):
        n = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return data
        return self.rfile.read(int(n)) if n else b""

    def record(self, method, status):
        if os.environ.get("K8S_STANDIN_TRACE"):
            sys.stderr.write("standin %.3f %s %s %s\n" % (
                time.time(), method, self.path, status))
        self.st.log.append({"method": method, "path": self.path_only,
                            "query": self.query, "status": status,
                            "user": getattr(self, "user", None),
                            "contentType": self.headers.get("Content-Type"),
                            "time": time.time()})

    def handle_any(self, method):
        u = urllib.parse.urlsplit(self.path)
        self.path_only = u.path
        self.query = {k: v[-1] for k, v in
                      urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
        self.last_status = 0
        body = self.read_body()
        try:
            if u.path.startswith("/_standin/"):
                self.control(method, u.path[len("/_standin/"):], body)
                return
            with self.st.lock:
                self.authenticate()
                self.check_fault(method, u.path)
            self.route(method, u.path, body)
        except ApiError as e:
            if e.violation is not None:
                with self.st.lock:
                    self.st.violation(e.violation, "%s %s" % (method, self.path))
            if not self.last_status:
                self.send_json(e.status["code"], e.status)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        finally:
            if not u.path.startswith("/_standin/"):
                with self.st.lock:
                    self.record(method, self.last_status)

    def do_GET(self):
        self.handle_any("GET")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")

    # -- authentication, authorization, faults ------------------------
    def authenticate(self):
        auth = self.headers.get("Authorization")
        if auth is not None:
            if not auth.startswith("Bearer "):
                raise ApiError(401, "Unauthorized", "Unauthorized",
                               violation="Authorization not a bearer token")
            tok = auth[len("Bearer "):]
            if tok in self.st.tokens and tok not in self.st.expired:
                self.user = "token-user"
                return
            raise ApiError(401, "Unauthorized", "Unauthorized")
        cert = self.connection.getpeercert()
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        self.user = v
                        return
        raise ApiError(401, "Unauthorized", "Unauthorized")

    def check_fault(self, method, path):
        for f in self.st.faults:
            if f["count"] > 0 and f.get("method", method) == method and \
                    re.search(f["path"], path):
                f["count"] -= 1
                raise ApiError(f["status"], f.get("reason", "InternalError"),
                               f.get("message", "injected by the stand-in"))

    def role_allows(self, verb, group, resource):
        rules = self.st.rbac
        if rules is None:
            return True
        for groups, resources, verbs in rules:
            if group in groups and resource in resources and verb in verbs:
                self.st.rbac_used.add((group, resource, verb))
                return True
        return False

    def authorize(self, verb, group, resource, ns, name):
        if (verb, resource) not in self.st.forbidden and \
                self.role_allows(verb, group, resource):
            return
        gname = resource.split("/")[0] + ("." + group if group else "")
        if name:
            msg = '%s "%s" is forbidden: ' % (gname, name)
        else:
            msg = '%s is forbidden: ' % gname
        msg += 'User "%s" cannot %s resource "%s" in API group "%s"' % (
            self.user, verb, resource, group)
        if ns:
            msg += ' in the namespace "%s"' % ns
        raise ApiError(403, "Forbidden", msg,
                       {"name": name or "", "group": group,
                        "kind": resource.split("/")[0]})

    def check_query(self, allowed):
        for k in self.query:
            if k not in allowed:
                raise ApiError(400, "BadRequest",
                               "unknown query parameter %s" % k,
                               violation="query parameter %s" % k)

    def parse_body(self, body, what):
        try:
            obj = json.loads(body)
        except ValueError:
            raise ApiError(400, "BadRequest", "%s: body is not JSON" % what,
                           violation="%s body not JSON" % what)
        return obj

    # -- routing --------------------------------------------------------
    def route(self, method, path, body):
        p = path.rstrip("/").split("/")[1:]
        if path == "/version" and method == "GET":
            return self.send_json(200, self.version())
        if path == "/api/v1" and method == "GET":
            return self.send_json(200, self.core_resources())
        if path == "/apis/apps/v1" and method == "GET":
            return self.send_json(200, self.apps_resources())
        if len(p) >= 5 and p[:4] == ["apis", "apps", "v1", "namespaces"] and \
                len(p) >= 6 and p[5] == "deployments":
            return self.deployments(method, p[4], p[6:], body)
        if len(p) >= 5 and p[:3] == ["api", "v1", "namespaces"] and \
                p[4] == "pods":
            return self.pods(method, p[3], p[5:], body)
        if p[:4] == ["apis", "metrics.k8s.io", "v1beta1", "namespaces"] and \
                len(p) == 6 and p[5] == "pods":
            return self.pod_metrics(method, p[4])
        if p[:4] == ["apis", "autoscaling", "v2", "namespaces"] and \
                len(p) == 6 and p[5] == "horizontalpodautoscalers":
            return self.autoscalers(method, p[4], "autoscaling", "v2",
                                    "horizontalpodautoscalers", self.st.hpas)
        if p[:4] == ["apis", "autoscaling.k8s.io", "v1", "namespaces"] and \
                len(p) == 6 and p[5] == "verticalpodautoscalers":
            if not self.st.vpa_installed:
                raise ApiError(404, "NotFound",
                               "the server could not find the requested "
                               "resource")
            return self.autoscalers(method, p[4], "autoscaling.k8s.io", "v1",
                                    "verticalpodautoscalers", self.st.vpas)
        raise ApiError(404, "NotFound",
                       "the server could not find the requested resource",
                       violation="unknown path %s %s" % (method, path))

    def version(self):
        minor = "33" if self.st.resize_enabled else "32"
        return {"major": "1", "minor": minor,
                "gitVersion": "v1.%s.0-standin" % minor,
                "platform": "linux/amd64"}

    def core_resources(self):
        res = [{"name": "pods", "singularName": "pod", "namespaced": True,
                "kind": "Pod", "verbs": ["get", "list", "watch", "patch"]},
               {"name": "pods/status", "singularName": "", "namespaced": True,
                "kind": "Pod", "verbs": ["get", "patch", "update"]}]
        if self.st.resize_enabled:
            res.append({"name": "pods/resize", "singularName": "",
                        "namespaced": True, "kind": "Pod",
                        "verbs": ["get", "patch", "update"]})
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": "v1", "resources": res}

    def apps_resources(self):
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": "apps/v1", "resources": [
                    {"name": "deployments", "singularName": "deployment",
                     "namespaced": True, "kind": "Deployment",
                     "verbs": ["get", "list", "watch", "patch", "update"]},
                    {"name": "deployments/scale", "singularName": "",
                     "namespaced": True, "group": "autoscaling",
                     "version": "v1", "kind": "Scale",
                     "verbs": ["get", "patch", "update"]},
                    {"name": "deployments/status", "singularName": "",
                     "namespaced": True, "kind": "Deployment",
                     "verbs": ["get", "patch", "update"]}]}

    def not_found(self, group, resource, name):
        gname = resource + ("." + group if group else "")
        raise ApiError(404, "NotFound", '%s "%s" not found' % (gname, name),
                       {"name": name, "group": group, "kind": resource})

    def list_meta(self):
        return {"resourceVersion": str(self.st.rv)}

    # -- deployments ----------------------------------------------------
    def deployments(self, method, ns, rest, body):
        s = self.st
        if not rest:
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed", "method not allowed",
                               violation="%s on deployments" % method)
            if self.query.get("watch") in ("1", "true"):
                self.check_query(("watch", "resourceVersion",
                                  "timeoutSeconds", "fieldSelector",
                                  "labelSelector", "allowWatchBookmarks"))
                with s.lock:
                    self.authorize("watch", "apps", "deployments", ns, None)
                return self.watch("deployments", ns, lambda o: self.select(o))
            self.check_query(("fieldSelector", "labelSelector", "limit",
                              "resourceVersion"))
            with s.lock:
                self.authorize("list", "apps", "deployments", ns, None)
                items = [copy.deepcopy(d) for (dns, _), d in
                         sorted(s.deployments.items())
                         if dns == ns and self.select(d)]
                return self.send_json(200, {
                    "kind": "DeploymentList", "apiVersion": "apps/v1",
                    "metadata": self.list_meta(), "items": items})
        name = rest[0]
        sub = rest[1] if len(rest) > 1 else None
        if len(rest) > 2 or sub not in (None, "scale", "status"):
            raise ApiError(404, "NotFound", "the server could not find the "
                           "requested resource",
                           violation="unknown deployment subresource")
        resource = "deployments" + ("/" + sub if sub else "")
        verb = {"GET": "get", "PUT": "update", "PATCH": "patch"}.get(method)
        if verb is None:
            raise ApiError(405, "MethodNotAllowed", "method not allowed",
                           violation="%s on %s" % (method, resource))
        with s.lock:
            self.authorize(verb, "apps", resource, ns, name)
            d = s.deployments.get((ns, name))
            if d is None:
                self.not_found("apps", "deployments", name)
            if sub == "scale":
                return self.scale(method, d, body)
            if method == "GET":
                return self.send_json(200, d)
            if method == "PATCH":
                return self.patch_deployment(d, body)
            raise ApiError(405, "MethodNotAllowed", "method not allowed",
                           violation="PUT on a whole deployment")

    def select(self, obj):
        fs = self.query.get("fieldSelector")
        if fs:
            for term in fs.split(","):
                k, _, v = term.partition("=")
                v = v.lstrip("=")
                if k == "metadata.name":
                    if obj["metadata"]["name"] != v:
                        return False
                elif k == "metadata.namespace":
                    if obj["metadata"]["namespace"] != v:
                        return False
                else:
                    raise ApiError(400, "BadRequest",
                                   'field label not supported: %s' % k,
                                   violation="field selector %s" % k)
        return labels_match(self.query.get("labelSelector", ""),
                            obj["metadata"].get("labels", {}))

    def scale_obj(self, d):
        sel = ",".join("%s=%s" % kv for kv in
                       sorted(d["spec"]["selector"]["matchLabels"].items()))
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": d["metadata"]["name"],
                             "namespace": d["metadata"]["namespace"],
                             "uid": d["metadata"]["uid"],
                             "resourceVersion": d["metadata"]["resourceVersion"],
                             "creationTimestamp": d["metadata"]["creationTimestamp"]},
                "spec": {"replicas": d["spec"]["replicas"]},
                "status": {"replicas": d["status"].get("replicas", 0),
                           "selector": sel}}

    def scale(self, method, d, body):
        s = self.st
        if method == "GET":
            self.check_query(())
            return self.send_json(200, self.scale_obj(d))
        if method != "PUT":
            raise ApiError(405, "MethodNotAllowed", "the stand-in takes PUT "
                           "on scale", violation="%s on scale" % method)
        self.check_query(("fieldManager", "dryRun"))
        if not (self.headers.get("Content-Type") or "").startswith(
                "application/json"):
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format",
                           violation="scale PUT content type %s"
                           % self.headers.get("Content-Type"))
        obj = self.parse_body(body, "scale")
        name = d["metadata"]["name"]
        if not isinstance(obj, dict) or obj.get("kind") != "Scale" or \
                obj.get("apiVersion") != "autoscaling/v1":
            raise ApiError(400, "BadRequest", "body must be an "
                           "autoscaling/v1 Scale", violation="scale body kind")
        meta = obj.get("metadata") or {}
        if meta.get("name") != name:
            raise ApiError(400, "BadRequest", "the name of the object (%s) "
                           "does not match the name on the URL (%s)"
                           % (meta.get("name"), name),
                           violation="scale metadata.name")
        if "resourceVersion" not in meta:
            # Allowed by the API (an unconditional update), but exactly the
            # blind overwrite mdscale must never do.
            s.violation("scale PUT without metadata.resourceVersion",
                        "PUT " + self.path)
        replicas = (obj.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or \
                replicas < 0:
            raise ApiError(422, "Invalid", 'Scale.autoscaling "%s" is '
                           'invalid: spec.replicas: Invalid value: %s: must '
                           'be greater than or equal to 0'
                           % (name, json.dumps(replicas)),
                           {"name": name, "group": "autoscaling",
                            "kind": "Scale",
                            "causes": [{"reason": "FieldValueInvalid",
                                        "message": "must be greater than or "
                                        "equal to 0",
                                        "field": "spec.replicas"}]})
        self.concurrent_writer(d)
        if "resourceVersion" in meta and \
                meta["resourceVersion"] != d["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", 'Operation cannot be fulfilled '
                           'on deployments.apps "%s": the object has been '
                           'modified; please apply your changes to the latest '
                           'version and try again' % name,
                           {"name": name, "group": "apps",
                            "kind": "deployments"})
        if d["spec"]["replicas"] != replicas:
            d["spec"]["replicas"] = replicas
            d["metadata"]["generation"] += 1
            s.bump("deployments", d["metadata"]["namespace"], "MODIFIED", d)
        return self.send_json(200, self.scale_obj(d))

    def concurrent_writer(self, d):
        """With conflicts to inject, someone else writes d first: its
        resourceVersion moves, so a conditional write sees 409."""
        s = self.st
        if s.conflicts > 0:
            s.conflicts -= 1
            d["metadata"]["annotations"] = dict(
                d["metadata"].get("annotations", {}),
                **{"standin/concurrent-writer": str(s.rv)})
            s.bump("deployments", d["metadata"]["namespace"], "MODIFIED", d)

    def patch_content(self):
        ct = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ct not in PATCH_TYPES:
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown "
                           "format - accepted media types include: "
                           + ", ".join(PATCH_TYPES),
                           violation="PATCH content type %r" % ct)
        return ct

    def apply_patch(self, ct, target, patch):
        if ct == "application/json-patch+json":
            return json_patch(target, patch)
        if ct == "application/merge-patch+json":
            return merge_patch(target, patch)
        return strategic_merge(target, patch)

    def patch_deployment(self, d, body):
        s = self.st
        self.check_query(("fieldManager", "dryRun", "fieldValidation"))
        ct = self.patch_content()
        patch = self.parse_body(body, "patch")
        name = d["metadata"]["name"]
        rv = ((patch.get("metadata") or {}).get("resourceVersion")
              if isinstance(patch, dict) else None)
        if rv is not None:
            self.concurrent_writer(d)
        if rv is not None and rv != d["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", 'Operation cannot be fulfilled '
                           'on deployments.apps "%s": the object has been '
                           'modified; please apply your changes to the latest '
                           'version and try again' % name,
                           {"name": name, "group": "apps",
                            "kind": "deployments"})
        new = self.apply_patch(ct, d, patch)
        causes = []
        for i, c in enumerate(new["spec"]["template"]["spec"]
                              .get("containers", [])):
            causes += validate_resources(
                c.get("resources", {}),
                "spec.template.spec.containers[%d].resources" % i)
        rep = new["spec"].get("replicas")
        if not isinstance(rep, int) or rep < 0:
            causes.append({"field": "spec.replicas",
                           "message": "must be greater than or equal to 0"})
        if new["spec"]["selector"] != d["spec"]["selector"]:
            causes.append({"field": "spec.selector",
                           "message": "field is immutable"})
        if causes:
            raise ApiError(422, "Invalid", 'Deployment.apps "%s" is invalid: '
                           % name + "; ".join("%s: %s" % (c["field"],
                                                           c["message"])
                                              for c in causes),
                           {"name": name, "group": "apps",
                            "kind": "Deployment",
                            "causes": [dict(c, reason="FieldValueInvalid")
                                       for c in causes]})
        new["status"] = d["status"]
        new["metadata"]["generation"] = d["metadata"]["generation"]
        if new["spec"] != d["spec"]:
            new["metadata"]["generation"] += 1
        if new != d:
            d.clear()
            d.update(new)
            s.bump("deployments", d["metadata"]["namespace"], "MODIFIED", d)
        return self.send_json(200, d)

    # -- pods -------------------------------------------------------------
    def pods(self, method, ns, rest, body):
        s = self.st
        if not rest:
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed", "method not allowed",
                               violation="%s on pods" % method)
            if self.query.get("watch") in ("1", "true"):
                self.check_query(("watch", "resourceVersion",
                                  "timeoutSeconds", "labelSelector",
                                  "fieldSelector", "allowWatchBookmarks"))
                with s.lock:
                    self.authorize("watch", "", "pods", ns, None)
                return self.watch("pods", ns, lambda o: self.select(o))
            self.check_query(("labelSelector", "fieldSelector", "limit",
                              "resourceVersion"))
            with s.lock:
                self.authorize("list", "", "pods", ns, None)
                items = [copy.deepcopy(p) for (pns, _), p in
                         sorted(s.pods.items())
                         if pns == ns and self.select(p)]
                return self.send_json(200, {
                    "kind": "PodList", "apiVersion": "v1",
                    "metadata": self.list_meta(), "items": items})
        name = rest[0]
        sub = rest[1] if len(rest) > 1 else None
        if sub == "resize" and not s.resize_enabled:
            raise ApiError(404, "NotFound", "the server could not find the "
                           "requested resource")
        if len(rest) > 2 or sub not in (None, "resize", "status"):
            raise ApiError(404, "NotFound", "the server could not find the "
                           "requested resource",
                           violation="unknown pod subresource %s" % sub)
        resource = "pods" + ("/" + sub if sub else "")
        verb = {"GET": "get", "PATCH": "patch"}.get(method)
        if verb is None:
            raise ApiError(405, "MethodNotAllowed", "method not allowed",
                           violation="%s on %s" % (method, resource))
        with s.lock:
            self.authorize(verb, "", resource, ns, name)
            pod = s.pods.get((ns, name))
            if pod is None:
                self.not_found("", "pods", name)
            if method == "GET":
                return self.send_json(200, pod)
            if sub != "resize":
                raise ApiError(422, "Invalid", "the stand-in only patches "
                               "pods through resize",
                               violation="PATCH on %s" % resource)
            return self.resize(pod, body)

    def resize(self, pod, body):
        s = self.st
        self.check_query(("fieldManager", "dryRun"))
        ct = self.patch_content()
        patch = self.parse_body(body, "resize")
        new = self.apply_patch(ct, pod, patch)
        # The resize subresource changes resources only.
        strip = copy.deepcopy(new)
        for c in strip["spec"]["containers"]:
            c.pop("resources", None)
        orig = copy.deepcopy(pod)
        for c in orig["spec"]["containers"]:
            c.pop("resources", None)
        name = pod["metadata"]["name"]
        if strip["spec"] != orig["spec"] or \
                strip["metadata"] != orig["metadata"]:
            raise ApiError(422, "Invalid", 'Pod "%s" is invalid: spec: '
                           'Forbidden: only cpu and memory resources are '
                           'mutable' % name,
                           violation="resize changed more than resources")
        causes = []
        for i, c in enumerate(new["spec"]["containers"]):
            causes += validate_resources(c.get("resources", {}),
                                         "spec.containers[%d].resources" % i)
        if causes:
            raise ApiError(422, "Invalid", 'Pod "%s" is invalid: ' % name +
                           "; ".join("%s: %s" % (c["field"], c["message"])
                                     for c in causes),
                           {"name": name, "group": "", "kind": "Pod",
                            "causes": causes})
        pod["spec"] = new["spec"]
        # The kubelet applies it at once here: actual = desired.
        for cs in pod["status"]["containerStatuses"]:
            for c in pod["spec"]["containers"]:
                if c["name"] == cs["name"]:
                    cs["resources"] = copy.deepcopy(c.get("resources", {}))
        s.bump("pods", pod["metadata"]["namespace"], "MODIFIED", pod)
        return self.send_json(200, pod)

    # -- metrics, autoscalers ----------------------------------------------
    def pod_metrics(self, method, ns):
        s = self.st
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", "method not allowed",
                           violation="%s on PodMetrics" % method)
        self.check_query(("labelSelector", "fieldSelector"))
        with s.lock:
            self.authorize("list", "metrics.k8s.io", "pods", ns, None)
            items = []
            for (pns, pname), p in sorted(s.pods.items()):
                if pns != ns or not self.select(p) or \
                        p["status"]["phase"] != "Running":
                    continue
                use = s.metrics.get((pns, pname), {})
                items.append({
                    "metadata": {"name": pname, "namespace": pns,
                                 "labels": p["metadata"]["labels"],
                                 "creationTimestamp": now_rfc3339()},
                    "timestamp": now_rfc3339(), "window": "15s",
                    "containers": [
                        {"name": c["name"],
                         "usage": {"cpu": use.get(c["name"], ("0", "0"))[0],
                                   "memory": use.get(c["name"], ("0", "0"))[1]}}
                        for c in p["spec"]["containers"]]})
            return self.send_json(200, {"kind": "PodMetricsList",
                                        "apiVersion": "metrics.k8s.io/v1beta1",
                                        "metadata": {}, "items": items})

    def autoscalers(self, method, ns, group, version, resource, items):
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", "method not allowed",
                           violation="%s on %s" % (method, resource))
        self.check_query(("labelSelector", "fieldSelector", "limit"))
        with self.st.lock:
            self.authorize("list", group, resource, ns, None)
            kind = ("HorizontalPodAutoscalerList"
                    if resource.startswith("h") else
                    "VerticalPodAutoscalerList")
            return self.send_json(200, {
                "kind": kind, "apiVersion": "%s/%s" % (group, version),
                "metadata": self.list_meta(),
                "items": [i for i in items
                          if i["metadata"]["namespace"] == ns]})

    # -- watch ------------------------------------------------------------
    def watch(self, kind, ns, match):
        s = self.st
        rv_s = self.query.get("resourceVersion", "")
        timeout = int(self.query.get("timeoutSeconds", "1800"))
        end_at = time.monotonic() + timeout
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.last_status = 200

        def chunk(obj):
            data = json.dumps(obj).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        with s.lock:
            epoch = s.watch_epoch
            if rv_s in ("", "0"):
                # From "now": the current objects as ADDED first.
                table = s.deployments if kind == "deployments" else s.pods
                for (ons, _), o in sorted(table.items()):
                    if ons == ns and match(o):
                        chunk({"type": "ADDED", "object": o})
                pos = s.rv
            else:
                try:
                    pos = int(rv_s)
                except ValueError:
                    pos = -1
                if pos < s.history_floor:
                    chunk({"type": "ERROR", "object": status_obj(
                        410, "Expired", "too old resource version: %s (%d)"
                        % (rv_s, s.history_floor))})
                    self.wfile.write(b"0\r\n\r\n")
                    return
            while True:
                for rv, k, ons, etype, obj in s.history:
                    if rv > pos and k == kind and ons == ns and match(obj):
                        chunk({"type": etype, "object": obj})
                if s.history:
                    pos = max(pos, s.history[-1][0])
                left = end_at - time.monotonic()
                if left <= 0 or s.watch_epoch != epoch or \
                        self.server.stopping:
                    break
                s.lock.wait(min(left, 0.5))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -- the test's controls ----------------------------------------------
    def control(self, method, what, body):
        s = self.st
        if os.environ.get("K8S_STANDIN_TRACE"):
            sys.stderr.write("standin %.3f control %s\n" % (time.time(),
                                                            what))
        arg = json.loads(body) if body else {}
        with s.lock:
            out = self.control_locked(method, what, arg)
        self.send_json(200, out if out is not None else {"ok": True})
        if os.environ.get("K8S_STANDIN_TRACE"):
            sys.stderr.write("standin %.3f control %s answered\n"
                             % (time.time(), what))

    def control_locked(self, method, what, a):
        s = self.st
        ctl = self.server.controller
        if what == "deployments":
            return self.seed(a)
        if what == "advance":
            return {"changed": ctl.advance(a.get("namespace", "default"),
                                           a["name"])}
        if what == "settle":
            n = 0
            while ctl.advance(a.get("namespace", "default"), a["name"]) \
                    and n < 50:
                n += 1
            return {"steps": n}
        if what == "auto":
            self.server.auto_ms = int(a.get("interval_ms", 0))
            return None
        if what == "stall":
            s.stalled.add((a.get("namespace", "default"), a["name"]))
            return None
        if what == "fault":
            a.setdefault("count", 1)
            s.faults.append(a)
            return None
        if what == "conflict":
            s.conflicts = int(a.get("count", 1))
            return None
        if what == "forbid":
            s.forbidden.add((a["verb"], a["resource"]))
            return None
        if what == "expire-token":
            s.expired.add(a["token"])
            return None
        if what == "compact":
            # Only a watch from the current resourceVersion still works.
            s.history = []
            s.history_floor = s.rv
            return None
        if what == "end-watches":
            s.watch_epoch += 1
            s.lock.notify_all()
            return None
        if what == "metrics":
            key = (a.get("namespace", "default"), a["pod"])
            s.metrics.setdefault(key, {})[a["container"]] = (a["cpu"],
                                                               a["memory"])
            return None
        if what in ("hpa", "vpa"):
            return self.seed_autoscaler(what, a)
        if what == "vpa-installed":
            s.vpa_installed = bool(a["installed"])
            return None
        if what == "resize":
            s.resize_enabled = bool(a["enabled"])
            return None
        if what == "log":
            return {"items": s.log}
        if what == "violations":
            return {"items": s.violations}
        if what == "rbac-unused":
            # Every (group, resource, verb) the Role grants that no request
            # needed.
            unused = []
            for groups, resources, verbs in s.rbac or []:
                for g in groups:
                    for r in resources:
                        for v in verbs:
                            if (g, r, v) not in s.rbac_used:
                                unused.append({"group": g, "resource": r,
                                               "verb": v})
            return {"items": unused}
        if what == "state":
            return {"rv": s.rv,
                    "deployments": [d for _, d in sorted(s.deployments.items())],
                    "pods": [p for _, p in sorted(s.pods.items())]}
        raise ApiError(404, "NotFound", "no stand-in control %s" % what)

    def seed(self, a):
        s = self.st
        ns, name = a.get("namespace", "default"), a["name"]
        labels = {"app": name}
        containers = []
        for c in a.get("containers") or [{"name": "model"}]:
            res = {}
            if c.get("requests"):
                res["requests"] = c["requests"]
            if c.get("limits"):
                res["limits"] = c["limits"]
            containers.append({"name": c["name"],
                               "image": c.get("image", "example/model:1"),
                               "resources": res})
            if c.get("ports"):
                containers[-1]["ports"] = [
                    {"containerPort": int(p["containerPort"]),
                     "protocol": "TCP"} for p in c["ports"]]
        s.seq += 1
        d = {"kind": "Deployment", "apiVersion": "apps/v1",
             "metadata": {"name": name, "namespace": ns,
                          "uid": "deploy-uid-%d" % s.seq, "generation": 1,
                          "labels": labels,
                          "creationTimestamp": now_rfc3339()},
             "spec": {"replicas": int(a.get("replicas", 1)),
                      "selector": {"matchLabels": labels},
                      "progressDeadlineSeconds": 600,
                      "strategy": {"type": "RollingUpdate",
                                   "rollingUpdate": {"maxUnavailable": "25%",
                                                     "maxSurge": "25%"}},
                      "template": {"metadata": {"labels": labels},
                                   "spec": {"containers": containers}}},
             "status": {}}
        s.deployments[(ns, name)] = d
        if a.get("run"):
            s.runs[(ns, name)] = [str(x) for x in a["run"]]
        s.bump("deployments", ns, "ADDED", d)
        if a.get("ready", True):
            n = 0
            while self.server.controller.advance(ns, name) and n < 50:
                n += 1
        return d

    def seed_autoscaler(self, what, a):
        s = self.st
        ns = a.get("namespace", "default")
        ref = {"apiVersion": "apps/v1", "kind": "Deployment",
               "name": a["target"]}
        if what == "hpa":
            obj = {"kind": "HorizontalPodAutoscaler",
                   "apiVersion": "autoscaling/v2",
                   "metadata": {"name": a["name"], "namespace": ns},
                   "spec": {"scaleTargetRef": ref, "minReplicas": 1,
                            "maxReplicas": 10}}
            s.hpas.append(obj)
        else:
            obj = {"kind": "VerticalPodAutoscaler",
                   "apiVersion": "autoscaling.k8s.io/v1",
                   "metadata": {"name": a["name"], "namespace": ns},
                   "spec": {"targetRef": ref}}
            s.vpas.append(obj)
        return obj


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, store):
        super().__init__(addr, Handler)
        self.store = store
        self.controller = Controller(store)
        self.auto_ms = 0
        self.stopping = False
        self.tls = None

    def get_request(self):
        # The TLS handshake runs in the connection's own thread (see
        # finish_request), so that one slow client cannot stall accept().
        sock, addr = self.socket.accept()
        return self.tls.wrap_socket(sock, server_side=True,
                                    do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        # A client that went away mid-answer (a cancelled watch) is not an
        # error of the stand-in.
        if isinstance(sys.exc_info()[1], (OSError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)

    def finish_request(self, request, client_address):
        try:
            request.settimeout(10)
            request.do_handshake()
            request.settimeout(None)
        except (OSError, ssl.SSLError):
            return
        super().finish_request(request, client_address)


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate,
    made with the openssl command."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    j = lambda n: os.path.join(d, n)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", j("ca.key"), "-out", j("ca.crt"), "-days", "2",
        "-subj", "/CN=k8s-standin-ca")
    with open(j("san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for who, subj, ext in (("server", "/CN=127.0.0.1", True),
                           ("client", "/O=mdscale/CN=mdscale-client", False)):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", j(who + ".key"), "-out", j(who + ".csr"),
            "-subj", subj)
        extra = ["-extfile", j("san.ext")] if ext else []
        run("x509", "-req", "-in", j(who + ".csr"), "-CA", j("ca.crt"),
            "-CAkey", j("ca.key"), "-CAcreateserial", "-out", j(who + ".crt"),
            "-days", "2", *extra)


def write_kubeconfigs(d, url, token):
    common = ("apiVersion: v1\nkind: Config\ncurrent-context: standin\n"
              "clusters:\n- name: standin\n  cluster:\n"
              "    server: %s\n    certificate-authority: %s\n"
              "contexts:\n- name: standin\n  context:\n"
              "    cluster: standin\n    user: u\n    namespace: default\n"
              % (url, os.path.join(d, "ca.crt")))
    with open(os.path.join(d, "kubeconfig"), "w") as f:
        f.write(common + "users:\n- name: u\n  user:\n    token: %s\n" % token)
    with open(os.path.join(d, "kubeconfig-cert"), "w") as f:
        f.write(common + "users:\n- name: u\n  user:\n"
                "    client-certificate: %s\n    client-key: %s\n"
                % (os.path.join(d, "client.crt"),
                   os.path.join(d, "client.key")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--token", default="standin-token")
    ap.add_argument("--lifetime", type=float, default=600)
    ap.add_argument("--resize", action="store_true")
    ap.add_argument("--rbac", help="a YAML file whose Role's rules are "
                    "the only permissions (anything else is 403)")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    make_certs(args.dir)
    store = Store()
    store.tokens.add(args.token)
    store.resize_enabled = args.resize
    if args.rbac:
        import yaml  # python3-yaml, a test dependency
        with open(args.rbac) as f:
            for doc in yaml.safe_load_all(f):
                if doc and doc.get("kind") == "Role":
                    store.rbac = [(r["apiGroups"], r["resources"],
                                   r["verbs"]) for r in doc["rules"]]
    srv = Server(("127.0.0.1", 0), store)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(args.dir, "server.crt"),
                        os.path.join(args.dir, "server.key"))
    ctx.load_verify_locations(os.path.join(args.dir, "ca.crt"))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    srv.tls = ctx
    url = "https://127.0.0.1:%d" % srv.server_address[1]
    write_kubeconfigs(args.dir, url, args.token)
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    def auto():
        while not srv.stopping:
            time.sleep(max(srv.auto_ms, 20) / 1000.0)
            if srv.auto_ms:
                with store.lock:
                    for ns, name in list(store.deployments):
                        srv.controller.advance(ns, name)
    threading.Thread(target=auto, daemon=True).start()
    print("k8s stand-in listening on %s" % url, flush=True)

    # Stop when the test closes stdin (or dies), or at the lifetime's end.
    def stdin_watch():
        sys.stdin.read()
        srv.stopping = True
    threading.Thread(target=stdin_watch, daemon=True).start()
    end = time.monotonic() + args.lifetime
    while not srv.stopping and time.monotonic() < end:
        time.sleep(0.1)
    srv.stopping = True
    with store.lock:
        store.lock.notify_all()
        # Real pods go with the stand-in.
        for proc in store.procs.values():
            proc.terminate()
        for proc in store.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    srv.shutdown()


if __name__ == "__main__":
    main()
