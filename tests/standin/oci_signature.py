"""OCI request signatures (Signature version="1", draft-cavage, rsa-sha256):
the signing string and its verification, as the stand-in checks them."""
import base64
import email.utils
import hashlib
import re
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

# OCI refuses a request whose date is further than this from its clock.
CLOCK_SKEW_S = 300

# -- Request signatures -----------------------------------------------------

GET_HEADERS = ["(request-target)", "host"]
BODY_HEADERS = ["content-length", "content-type", "x-content-sha256"]


def signing_string(method, target, headers, names):
    """The OCI (draft-cavage) signing string for the named headers; headers
    maps lower-case names to values. Raises KeyError for a missing header."""
    lines = []
    for name in names:
        if name == "(request-target)":
            lines.append("(request-target): %s %s" % (method.lower(), target))
        else:
            lines.append("%s: %s" % (name, headers[name]))
    return "\n".join(lines)


def parse_authorization(value):
    """Parses 'Signature k="v",...' into a dict; raises ValueError."""
    if not value or not value.startswith("Signature "):
        raise ValueError("Authorization is not 'Signature ...'")
    params = {}
    for m in re.finditer(r'\s*([a-zA-Z]+)="([^"]*)"\s*(,|$)', value[10:]):
        params[m.group(1)] = m.group(2)
    return params


class SignatureError(Exception):
    pass


def verify_signature(public_key, key_id, method, target, headers, body,
                     now=None):
    """Verifies one request's OCI signature. headers: lower-case name ->
    value. Raises SignatureError naming what is wrong."""
    try:
        p = parse_authorization(headers.get("authorization"))
    except ValueError as e:
        raise SignatureError(str(e))
    for k in ("version", "headers", "keyId", "algorithm", "signature"):
        if k not in p:
            raise SignatureError("Authorization lacks %s" % k)
    if p["version"] != "1":
        raise SignatureError('version must be "1", not %r' % p["version"])
    if p["algorithm"] != "rsa-sha256":
        raise SignatureError("algorithm must be rsa-sha256")
    if p["keyId"] != key_id:
        raise SignatureError("keyId %r is not the test key's %r"
                             % (p["keyId"], key_id))
    names = p["headers"].split(" ")
    needed = list(GET_HEADERS)
    if method in ("POST", "PUT", "PATCH"):
        needed += BODY_HEADERS
    date_name = "x-date" if "x-date" in names else "date"
    for n in needed + [date_name]:
        if n not in names:
            raise SignatureError("signed headers %r lack %s" % (p["headers"], n))
    for n in names:
        if n != "(request-target)" and n not in headers:
            raise SignatureError("signed header %s is not in the request" % n)
    try:
        when = email.utils.parsedate_to_datetime(headers[date_name]).timestamp()
    except (TypeError, ValueError):
        raise SignatureError("%s %r is not an RFC 7231 date"
                             % (date_name, headers[date_name]))
    now = time.time() if now is None else now
    if abs(when - now) > CLOCK_SKEW_S:
        raise SignatureError("%s %r is more than %ds from the server's clock"
                             % (date_name, headers[date_name], CLOCK_SKEW_S))
    if method in ("POST", "PUT", "PATCH"):
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        if headers["x-content-sha256"] != digest:
            raise SignatureError("x-content-sha256 %r is not the body's %r"
                                 % (headers["x-content-sha256"], digest))
        if headers["content-length"] != str(len(body)):
            raise SignatureError("content-length %r is not the body's %d"
                                 % (headers["content-length"], len(body)))
    text = signing_string(method, target, headers, names)
    try:
        sig = base64.b64decode(p["signature"], validate=True)
        public_key.verify(sig, text.encode(), padding.PKCS1v15(),
                          hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise SignatureError("signature does not verify over:\n" + text)
