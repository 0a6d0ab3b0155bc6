"""`/_rollgate/*` control endpoints, served in front of moto's WSGI app."""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from . import codedeploy
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
    if method == "POST" and route == "reset":
        records.reset()
        return "200 OK", {"status": "reset"}
    return "404 Not Found", {"message": f"unknown control endpoint {method} {path}"}


def wrap(app: Callable) -> Callable:
    """WSGI middleware: control endpoints here, everything else to moto.

    moto's own POST /moto-api/reset also clears the emulator's records.
    """

    def middleware(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path.startswith(PREFIX):
            status, body = handle(method, path, parse_qs(environ.get("QUERY_STRING", "")))
            return _json(start_response, status, body)
        if path.rstrip("/") == "/moto-api/reset" and method == "POST":
            records.reset()
        return app(environ, start_response)

    return middleware
