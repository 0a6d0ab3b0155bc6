"""Injected faults: make chosen AWS operations fail, slow down or hang, for a number of
calls or a fraction of them.

A fault is registered with ``POST /_rollgate/faults`` and a JSON body::

    {"operation": "SendMessageBatch",   # the AWS action name, or "*" for every call (required)
     "target": "orders-queue",          # optional: only requests whose path, query or body contains this
     "count": 3,                        # fire for this many matching calls, or
     "fraction": 0.3,                   # fire for this share of matching calls (random)
     "code": "RequestThrottled",        # error code in the answer
     "status": 400,                     # HTTP status (default 400)
     "message": "...",
     "delay_ms": 250,                   # added latency before the call goes on (or fails)
     "latency": {"median_ms": 15, "p99_ms": 60},  # or: latency drawn per call (log-normal)
     "service": "sqs",                  # optional: only calls signed for this service
     "timeout": true,                   # hold the request unanswered, then drop the connection
     "hold_ms": 30000,                  # how long a timeout holds it (default 30000)
     "entries": false}                  # true: fail batch *entries*, not the whole call

What a fault does when it fires:

- ``timeout: true``: the request is held without a byte of answer for ``hold_ms``, then
  the connection is closed without a response. A client whose timeout is shorter sees
  its own timeout; one with a longer timeout sees the connection closed before any
  response. Both are what a dead or overloaded endpoint gives, and both are transient
  to the SDKs (retried). A hold ends early when the client hangs up.
- ``delay_ms`` alone (no ``code``/``status``): latency only, the call then proceeds
  normally. Several delay faults matching one call add up.
- ``latency``: a network model rather than a fault: every call it fires for waits a time
  drawn from a log-normal distribution with that median and 99th percentile (SQS's
  own latency is of that shape: a median of tens of ms and a long tail), then proceeds.
  The wait sleeps the request's own thread, so concurrent callers overlap as they would
  on AWS.
- otherwise an error answer in the wire format of the caller's protocol (see
  :func:`error_response`), after ``delay_ms`` if given.

``entries: true`` is read by the operation's own patch (SendMessageBatch in sqs.py):
each entry fails on its own, giving a partial batch failure. Otherwise the whole call
is handled before moto sees it. ``GET /_rollgate/faults`` lists faults with how often
each matched and fired; ``DELETE /_rollgate/faults`` clears them (a reset does too).

The operation of a request is found for every protocol rollgate's SDKs speak: the
``X-Amz-Target`` header (JSON 1.0/1.1: CodeDeploy, SSM, DynamoDB, SQS, boto3's
CloudWatch), the ``/service/<svc>/operation/<Op>`` path (Smithy RPCv2-CBOR: the Rust
CloudWatch client), ``Action=`` in the query or form body (query protocol: SNS), and
for REST services (Lambda: Invoke, GetFunctionConfiguration, UpdateAlias...) the method
and path matched against botocore's model of the service named in the request's
signature.
"""

from __future__ import annotations

import json
import math
import random
import re
import select
import socket
import threading
import time
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

from .state import log, records

DEFAULT_HOLD_MS = 30_000

_lock = threading.Lock()
_faults: list[dict[str, Any]] = []
_next_id = 0


def _number(spec: dict[str, Any], field: str, kind: type, low: float, high: float | None = None) -> Any:
    try:
        value = kind(spec[field])
    except (TypeError, ValueError):
        raise ValueError(f"{field}: must be a number, got {spec[field]!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{field}: must be {bounds}, got {value}")
    return value


def add(spec: dict[str, Any]) -> dict[str, Any]:
    global _next_id
    if not isinstance(spec, dict):
        raise ValueError("the fault must be a JSON object")
    if not isinstance(spec.get("operation"), str) or not spec["operation"]:
        raise ValueError("operation: required, an AWS action name such as SendMessageBatch (or *)")
    if ("count" in spec) == ("fraction" in spec):
        raise ValueError("count or fraction: exactly one is required")
    timeout = bool(spec.get("timeout", False))
    delay_ms = _number(spec, "delay_ms", float, 0, 600_000) if "delay_ms" in spec else 0.0
    latency = _latency(spec.get("latency")) if "latency" in spec else None
    if latency and (delay_ms or timeout or "code" in spec or "status" in spec):
        raise ValueError("latency: a network model; it takes no delay_ms, timeout, code or status")
    hold_ms = _number(spec, "hold_ms", float, 1, 600_000) if "hold_ms" in spec else float(DEFAULT_HOLD_MS)
    entries = bool(spec.get("entries", False))
    if entries and (timeout or delay_ms):
        raise ValueError("entries: an entry fails on its own; delay_ms and timeout apply to whole calls")
    if timeout:
        kind = "timeout"
    elif (delay_ms or latency) and "code" not in spec and "status" not in spec:
        kind = "delay"
    else:
        kind = "error"
    fault = {
        "operation": spec["operation"],
        "target": spec.get("target"),
        "count": _number(spec, "count", int, 0) if "count" in spec else None,
        "fraction": _number(spec, "fraction", float, 0, 1) if "fraction" in spec else None,
        "kind": kind,
        "code": spec.get("code", "InternalError"),
        "status": _number(spec, "status", int, 400, 599) if "status" in spec else 400,
        "message": spec.get("message", "injected fault"),
        "delay_ms": delay_ms,
        "latency": latency,
        "service": spec.get("service"),
        "hold_ms": hold_ms if timeout else None,
        "entries": entries,
        "matched": 0,
        "fired": 0,
        "holding": 0,
    }
    with _lock:
        _next_id += 1
        fault["id"] = _next_id
        _faults.append(fault)
    log.info("fault added: %s", fault)
    return dict(fault)


def _latency(spec: Any) -> dict[str, float]:
    """``{"median_ms", "p99_ms"}`` with the log-normal's sigma (p99 = median * e^(2.326 sigma))."""
    if not isinstance(spec, dict):
        raise ValueError('latency: an object such as {"median_ms": 15, "p99_ms": 60}')
    median = _number(spec, "median_ms", float, 0.1, 60_000) if "median_ms" in spec else None
    p99 = _number(spec, "p99_ms", float, 0.1, 600_000) if "p99_ms" in spec else None
    if median is None or p99 is None or p99 < median:
        raise ValueError("latency: median_ms and p99_ms are required, with p99_ms >= median_ms")
    return {"median_ms": median, "p99_ms": p99, "sigma": math.log(p99 / median) / 2.326}


def _delay_of(fault: dict[str, Any]) -> float:
    model = fault.get("latency")
    if not model:
        return fault["delay_ms"]
    return model["median_ms"] * math.exp(model["sigma"] * random.gauss(0.0, 1.0))


def listing() -> list[dict[str, Any]]:
    with _lock:
        return [dict(f) for f in _faults]


def active() -> bool:
    return bool(_faults)


def clear() -> None:
    with _lock:
        _faults.clear()


records.on_reset(clear)


def _applies(fault: dict[str, Any], operation: str, text: str, service: str | None = None) -> bool:
    if fault["operation"] not in ("*", operation):
        return False
    if fault.get("service") and fault["service"] != service:
        return False
    return not fault["target"] or fault["target"] in text


def _fires(fault: dict[str, Any]) -> bool:
    """Count the match and decide whether the fault fires for it (lock held)."""
    fault["matched"] += 1
    if fault["count"] is not None:
        return fault["fired"] < fault["count"]
    return random.random() < fault["fraction"]


def take(operation: str, body: str, entries: bool) -> dict[str, Any] | None:
    """The error fault that fires for this call (or batch entry), counting it; None if none.

    Used for batch entries (``entries=True``); whole calls go through :func:`take_call`.
    """
    with _lock:
        for fault in _faults:
            if fault["entries"] != entries or fault["kind"] != "error" or not _applies(fault, operation, body):
                continue
            if _fires(fault):
                fault["fired"] += 1
                return dict(fault)
    return None


def take_call(operation: str, text: str, service: str | None = None) -> tuple[float, dict[str, Any] | None]:
    """For a whole call: the added latency in ms (every firing fault's ``delay_ms`` or
    drawn ``latency``) and the error or timeout fault that ends it (the first one that
    fires), or None."""
    delay, final, noted = 0.0, None, False
    with _lock:
        for fault in _faults:
            if fault["entries"] or not _applies(fault, operation, text, service):
                continue
            if fault["kind"] != "delay" and final is not None:
                continue  # one error per call; later error faults keep their turn
            if not _fires(fault):
                continue
            fault["fired"] += 1
            delay += _delay_of(fault)
            noted = noted or not fault.get("latency")  # a network model is not logged per call
            if fault["kind"] != "delay":
                final = dict(fault)
    if noted:
        log.info("fault fired on %s: %s%s", operation, f"+{delay:.0f} ms " if delay else "",
                 final["kind"] + (f" {final['status']} {final['code']}" if final["kind"] == "error" else "")
                 if final else "(delay only)")
    return delay, final


# --- which operation, which protocol ----------------------------------------------------

_rest_routes: dict[str, list[tuple[str, re.Pattern[str], int, str]]] = {}
_rest_lock = threading.Lock()
_SIGNING_SERVICE = re.compile(r"Credential=[^/,]+/[^/,]+/[^/,]+/([^/,]+)/aws4_request")


def _routes(service: str) -> list[tuple[str, re.Pattern[str], int, str]]:
    """(method, path regex, literal length, operation) for a REST service, from botocore."""
    with _rest_lock:
        if service in _rest_routes:
            return _rest_routes[service]
        routes: list[tuple[str, re.Pattern[str], int, str]] = []
        try:
            import botocore.session

            model = botocore.session.get_session().get_service_model(service)
            if model.protocol.startswith("rest"):
                for name in model.operation_names:
                    http = model.operation_model(name).http
                    uri = http.get("requestUri", "/").split("?", 1)[0]
                    literal = len(re.sub(r"\{[^}]+\}", "", uri))
                    pattern = re.sub(r"\\\{[^}]+?\\\+\\\}", ".+", re.escape(uri))
                    pattern = re.sub(r"\\\{[^}]+?\\\}", "[^/]+", pattern)
                    routes.append((http.get("method", "POST"), re.compile(pattern.rstrip("/") + "/?$"),
                                   literal, name))
        except Exception as err:  # noqa: BLE001 - an unknown service simply has no routes
            log.info("faults: no REST routes for %s: %s", service, err)
        routes.sort(key=lambda r: -r[2])  # the most specific path first
        _rest_routes[service] = routes
        return routes


def service_of(environ: dict[str, Any]) -> str | None:
    """The service a request was signed for (its SigV4 credential scope): ``sqs``..."""
    signed = _SIGNING_SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return signed.group(1) if signed else None


def protocol_of(environ: dict[str, Any]) -> str:
    """``json``, ``cbor``, ``query`` or ``rest-json``: the wire format of the caller."""
    if environ.get("HTTP_X_AMZ_TARGET"):
        return "json"
    if environ.get("PATH_INFO", "").startswith("/service/") and "/operation/" in environ.get("PATH_INFO", ""):
        return "cbor"
    content_type = environ.get("CONTENT_TYPE", "")
    if "Action=" in environ.get("QUERY_STRING", "") or content_type.startswith("application/x-www-form-urlencoded"):
        return "query"
    return "rest-json"


def s3_request(environ: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(operation, input) of a path-style S3 object or listing request, the calls rollgate
    makes (ListObjectsV2, GetObject, HeadObject, PutObject, DeleteObject); None for any
    other S3 request (the many bucket sub-resources share these paths)."""
    signed = _SIGNING_SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not signed or signed.group(1) != "s3":
        return None
    bucket, _, key = unquote(environ.get("PATH_INFO", "").lstrip("/")).partition("/")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    method = environ.get("REQUEST_METHOD", "GET")
    if not bucket:
        return None
    if not key:
        if method == "GET" and query.get("list-type") == ["2"]:
            params = {"Bucket": bucket}
            for name, member in (("prefix", "Prefix"), ("start-after", "StartAfter"),
                                 ("continuation-token", "ContinuationToken"), ("max-keys", "MaxKeys")):
                if name in query:
                    params[member] = int(query[name][0]) if member == "MaxKeys" else query[name][0]
            return "ListObjectsV2", params
        return None
    if set(query) - {"x-id", "versionId"}:
        return None  # a sub-resource of the object (acl, tagging, uploads...)
    operation = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}.get(method)
    return (operation, {"Bucket": bucket, "Key": key}) if operation else None


def operation_of(environ: dict[str, Any], body: bytes) -> str | None:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    path = environ.get("PATH_INFO", "")
    if path.startswith("/service/") and "/operation/" in path:
        return path.rstrip("/").rsplit("/", 1)[-1]
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if action:
        return action[0]
    if body and b"Action=" in body:
        return parse_qs(body.decode(errors="replace")).get("Action", [None])[0]
    s3 = s3_request(environ)
    if s3:
        return s3[0]
    signed = _SIGNING_SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if signed:
        method = environ.get("REQUEST_METHOD", "GET")
        for route_method, pattern, _, name in _routes(signed.group(1)):
            if route_method == method and pattern.match(path):
                return name
    return None


def error_response(fault: dict[str, Any], protocol: str | bool,
                   content_type: str | None = None) -> tuple[str, list[tuple[str, str]], bytes]:
    """The error answer as the caller's protocol spells it, so that SDKs read the code
    (and classify throttling and 5xx as they would on AWS)."""
    if protocol is True:
        protocol = "json"
    elif protocol is False:
        protocol = "query"
    code, message, status = fault["code"], fault["message"], fault["status"]
    fault_type = "Sender" if status < 500 else "Receiver"
    headers = [("x-amzn-RequestId", "injected-fault")]
    if protocol == "json":
        data = json.dumps({"__type": code, "message": message}).encode()
        headers += [("Content-Type", content_type or "application/x-amz-json-1.0"),
                    ("x-amzn-query-error", f"{code};{fault_type}")]
    elif protocol == "cbor":
        from . import cbor

        data = cbor.dumps({"__type": code, "message": message})
        headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"),
                    ("x-amzn-query-error", f"{code};{fault_type}")]
    elif protocol == "rest-json":
        data = json.dumps({"Type": "User" if status < 500 else "Service", "message": message}).encode()
        headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
    else:
        data = (f"<ErrorResponse><Error><Type>{fault_type}</Type><Code>{escape(code)}</Code>"
                f"<Message>{escape(message)}</Message></Error>"
                f"<RequestId>injected-fault</RequestId></ErrorResponse>").encode()
        headers.append(("Content-Type", "text/xml"))
    headers.append(("Content-Length", str(len(data))))
    return f"{status} Injected", headers, data


def _holding(fault_id: int, change: int) -> None:
    with _lock:
        for fault in _faults:
            if fault["id"] == fault_id:
                fault["holding"] += change


def hold_and_drop(environ: dict[str, Any], fault: dict[str, Any]) -> None:
    """Hold the request unanswered for the fault's ``hold_ms`` (less if the client hangs
    up), then close the connection without a response. Raises ConnectionAbortedError,
    which the server treats as a dropped connection (nothing is written, nothing
    logged). The fault's ``holding`` counts the requests held right now."""
    _holding(fault["id"], 1)
    try:
        _hold(environ, fault["hold_ms"])
    finally:
        _holding(fault["id"], -1)
    raise ConnectionAbortedError("injected timeout: connection dropped without an answer")


def _hold(environ: dict[str, Any], hold_ms: float) -> None:
    sock = environ.get("werkzeug.socket")
    deadline = time.monotonic() + hold_ms / 1000
    while (left := deadline - time.monotonic()) > 0:
        if sock is None:
            time.sleep(min(left, 0.25))
            continue
        try:
            readable, _, _ = select.select([sock], [], [], min(left, 0.25))
            if readable and not sock.recv(1, socket.MSG_PEEK):
                break  # the client gave up and closed its end
        except (OSError, ValueError):
            break
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
