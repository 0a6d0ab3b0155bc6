"""A recording HTTP proxy in front of the emulator: the functions get its address as
AWS_ENDPOINT_URL, so every AWS call they make is counted and timestamped without
changing the emulator. Operation names come from the request itself (X-Amz-Target,
the rpc-v2 path, the query `Action`, or Lambda's REST paths)."""

from __future__ import annotations

import http.client
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")
_LAMBDA_REST = [
    ("PUT", re.compile(r"/functions/[^/]+/aliases/[^/]+$"), "UpdateAlias"),
    ("GET", re.compile(r"/functions/[^/]+/aliases/[^/]+$"), "GetAlias"),
    ("GET", re.compile(r"/functions/[^/]+/aliases$"), "ListAliases"),
    ("POST", re.compile(r"/functions/[^/]+/invocations$"), "Invoke"),
    ("GET", re.compile(r"/functions/[^/]+/configuration$"), "GetFunctionConfiguration"),
    ("GET", re.compile(r"/functions/[^/]+/versions$"), "ListVersionsByFunction"),
    ("GET", re.compile(r"/tags/.+$"), "ListTags"),
    ("GET", re.compile(r"/functions/[^/]+$"), "GetFunction"),
]


def operation(method: str, path: str, headers, body: bytes) -> str:
    scope = _SCOPE.search(headers.get("Authorization", ""))
    service = scope.group(1) if scope else "?"
    target = headers.get("X-Amz-Target")
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    clean = urlsplit(path).path
    if "/operation/" in clean:
        return f"{service}:{clean.rsplit('/', 1)[-1]}"
    action = parse_qs(body.decode(errors="replace")).get("Action") or parse_qs(urlsplit(path).query).get("Action")
    if action:
        return f"{service}:{action[0]}"
    for m, rx, name in _LAMBDA_REST:
        if method == m and rx.search(clean):
            return f"{service}:{name}"
    return f"{service}:{method} {clean}"


class CallLog:
    def __init__(self):
        self.upstream: tuple[str, int] | None = None
        self.calls: list[dict] = []
        self._lock = threading.Lock()
        log = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self):
                arrived = time.monotonic_ns()
                body = self._body()
                op = operation(self.command, self.path, self.headers, body)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("transfer-encoding", "connection", "content-length")}
                conn = http.client.HTTPConnection(*log.upstream, timeout=900)
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                with log._lock:
                    log.calls.append({"t_ns": arrived, "op": op, "status": resp.status})
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def between(self, start_ns: int, end_ns: int | None = None) -> list[dict]:
        with self._lock:
            return [c for c in self.calls if c["t_ns"] >= start_ns and (end_ns is None or c["t_ns"] <= end_ns)]

    def close(self):
        self.server.shutdown()
