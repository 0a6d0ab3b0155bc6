"""Injected faults: make chosen AWS operations fail, for a number of calls or a fraction.

A fault is registered with ``POST /_rollgate/faults`` and a JSON body::

    {"operation": "SendMessageBatch",   # the AWS action name (required)
     "target": "orders-queue",          # optional: only requests whose body contains this
     "count": 3,                        # fail this many matching calls, or
     "fraction": 0.3,                   # fail this share of matching calls (random)
     "code": "RequestThrottled",        # error code in the answer
     "status": 400,                     # HTTP status (default 400)
     "message": "...",
     "entries": false}                  # true: fail batch *entries*, not the whole call

``entries: true`` is read by the operation's own patch (SendMessageBatch in sqs.py):
each entry fails on its own, giving a partial batch failure. Otherwise the whole
call is answered with the error before moto sees it. ``GET /_rollgate/faults`` lists
faults with how often each fired; ``DELETE /_rollgate/faults`` clears them (a reset
does too).
"""

from __future__ import annotations

import json
import random
import threading
from typing import Any
from urllib.parse import parse_qs

from .state import log, records

_lock = threading.Lock()
_faults: list[dict[str, Any]] = []


def add(spec: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(spec.get("operation"), str) or not spec["operation"]:
        raise ValueError("operation: required, an AWS action name such as SendMessageBatch")
    if "count" not in spec and "fraction" not in spec:
        raise ValueError("count or fraction: one is required")
    fault = {
        "operation": spec["operation"],
        "target": spec.get("target"),
        "count": int(spec["count"]) if "count" in spec else None,
        "fraction": float(spec["fraction"]) if "fraction" in spec else None,
        "code": spec.get("code", "InternalError"),
        "status": int(spec.get("status", 400)),
        "message": spec.get("message", "injected fault"),
        "entries": bool(spec.get("entries", False)),
        "fired": 0,
    }
    with _lock:
        _faults.append(fault)
    log.info("fault added: %s", fault)
    return dict(fault)


def listing() -> list[dict[str, Any]]:
    with _lock:
        return [dict(f) for f in _faults]


def clear() -> None:
    with _lock:
        _faults.clear()


records.on_reset(clear)


def take(operation: str, body: str, entries: bool) -> dict[str, Any] | None:
    """The fault that fires for this call (or batch entry), counting it; None if none."""
    with _lock:
        for fault in _faults:
            if fault["operation"] != operation or fault["entries"] != entries:
                continue
            if fault["target"] and fault["target"] not in body:
                continue
            if fault["count"] is not None:
                if fault["fired"] >= fault["count"]:
                    continue
            elif random.random() >= fault["fraction"]:
                continue
            fault["fired"] += 1
            return dict(fault)
    return None


def operation_of(environ: dict[str, Any], body: bytes) -> str | None:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if action:
        return action[0]
    if body and b"Action=" in body:
        return parse_qs(body.decode(errors="replace")).get("Action", [None])[0]
    return None


def error_response(fault: dict[str, Any], json_protocol: bool) -> tuple[str, list[tuple[str, str]], bytes]:
    status = f"{fault['status']} Injected"
    if json_protocol:
        data = json.dumps({"__type": fault["code"], "message": fault["message"]}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"),
                   ("x-amzn-query-error", f"{fault['code']};Sender")]
    else:
        data = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{fault['code']}</Code>"
                f"<Message>{fault['message']}</Message></Error></ErrorResponse>").encode()
        headers = [("Content-Type", "text/xml")]
    headers.append(("Content-Length", str(len(data))))
    return status, headers, data
