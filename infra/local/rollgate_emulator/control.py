"""`/_rollgate/*` control endpoints, served in front of moto's WSGI app."""

from __future__ import annotations

import io
import json
import time
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from . import codedeploy, faults, iam, scheduler
from .state import records

PREFIX = "/_rollgate/"


def _json(start_response: Callable, status: str, body: Any) -> Iterable[bytes]:
    data = json.dumps(body, default=str).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def handle(method: str, path: str, query: dict[str, list[str]]) -> tuple[str, Any]:
    route = path[len(PREFIX):].strip("/")
    parts = route.split("/")
    if method == "GET" and route == "health":
        return "200 OK", {"status": "ok"}
    if method == "GET" and route == "invocations":
        wanted = (query.get("function") or [None])[0]
        with records.lock:
            items = [dict(r) for r in records.invocations if wanted in (None, r["function"])]
        for item in items:
            item.pop("body", None)
        return "200 OK", items
    if method == "GET" and route == "events":
        with records.lock:
            return "200 OK", list(records.events)
    if method == "GET" and len(parts) == 3 and parts[0] == "deployments" and parts[2] == "hooks":
        hooks = codedeploy.hook_records(parts[1])
        if hooks is None:
            return "404 Not Found", {"message": f"no Lambda deployment {parts[1]}"}
        return "200 OK", hooks
    if method == "GET" and route == "schedules":
        return "200 OK", scheduler.fired()
    if route == "credentials" or route.startswith("iam/"):
        return iam.control(method, route, query)
    if method == "POST" and route == "reset":
        records.reset()
        scheduler.reset()
        return "200 OK", {"status": "reset"}
    return "404 Not Found", {"message": f"unknown control endpoint {method} {path}"}


def _faults(environ: dict[str, Any], method: str, start_response: Callable) -> Iterable[bytes]:
    if method == "GET":
        return _json(start_response, "200 OK", faults.listing())
    if method == "DELETE":
        faults.clear()
        return _json(start_response, "200 OK", {"status": "cleared"})
    if method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            spec = json.loads(environ["wsgi.input"].read(length) or b"{}")
            return _json(start_response, "200 OK", faults.add(spec))
        except (ValueError, TypeError) as err:
            return _json(start_response, "400 Bad Request", {"message": str(err)})
    return _json(start_response, "405 Method Not Allowed", {"message": method})


def wrap(app: Callable) -> Callable:
    """WSGI middleware: control endpoints here, everything else to moto.

    moto's own POST /moto-api/reset also clears the emulator's records. Injected faults
    (faults.py) act here, before moto and the other middlewares see the call, so they
    apply to every protocol and service alike.
    """

    def middleware(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path.rstrip("/") == PREFIX + "faults":
            return _faults(environ, method, start_response)
        if path.startswith(PREFIX):
            status, body = handle(method, path, parse_qs(environ.get("QUERY_STRING", "")))
            return _json(start_response, status, body)
        if path.rstrip("/") == "/moto-api/reset" and method == "POST":
            records.reset()
            scheduler.reset()
        if faults.active():
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(raw)
            operation = faults.operation_of(environ, raw)
            if operation:
                text = f"{path}?{environ.get('QUERY_STRING', '')} {raw.decode(errors='replace')}"
                delay_ms, fault = faults.take_call(operation, text, faults.service_of(environ))
                if delay_ms:
                    time.sleep(delay_ms / 1000)
                if fault and fault["kind"] == "timeout":
                    faults.hold_and_drop(environ, fault)
                if fault:
                    status, headers, data = faults.error_response(
                        fault, faults.protocol_of(environ), environ.get("CONTENT_TYPE") or None)
                    start_response(status, headers)
                    return [data]
        return app(environ, start_response)

    return middleware
