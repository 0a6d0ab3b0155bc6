"""Shared fixtures: the emulator as a subprocess and a fake `cargo lambda watch`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from botocore.config import Config

EMULATOR = Path(__file__).resolve().parents[1] / "emulator.py"
MINUTE_SECONDS = 0.5
# Long enough for a fake hook to report on a loaded 2-core machine (3 s once was not).
HOOK_TIMEOUT_SECONDS = 8
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/rollgate-test"

Handler = Callable[[Any, dict], "tuple[int, Any]"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeWatch:
    """Mimics cargo lambda watch's invoke API: one handler per binary."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.requests: list[dict[str, Any]] = []
        watch = self

        class RequestHandler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                parts = self.path.strip("/").split("/")
                binary = parts[2] if len(parts) == 4 and parts[3] == "invocations" else ""
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                payload = json.loads(raw or b"null")
                context = json.loads(self.headers.get("lambda-runtime-client-context") or "{}")
                watch.requests.append({"binary": binary, "payload": payload, "context": context})
                handler = watch.handlers.get(binary)
                if handler is None:
                    status, body = 500, {"errorType": "NoHandler", "errorMessage": binary}
                else:
                    try:
                        status, body = handler(payload, context)
                    except Exception as err:  # a Rust panic shows up the same way
                        status, body = 500, {"errorType": type(err).__name__, "errorMessage": str(err)}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="session")
def fake_watch() -> FakeWatch:
    watch = FakeWatch()
    yield watch
    watch.server.shutdown()


def start_emulator(lambda_endpoint: str, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log_file = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, str(EMULATOR), "--host", "127.0.0.1", "--port", str(port),
         "--lambda-endpoint", lambda_endpoint, "--minute-seconds", str(MINUTE_SECONDS),
         "--hook-timeout-seconds", str(HOOK_TIMEOUT_SECONDS)],
        stderr=log_file, stdout=log_file,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_rollgate/health", timeout=1) as resp:
                if resp.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"emulator did not start:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
def emulator(fake_watch: FakeWatch, tmp_path_factory: pytest.TempPathFactory) -> str:
    log_path = tmp_path_factory.mktemp("emulator") / "emulator.log"
    proc, url = start_emulator(fake_watch.url, log_path)
    yield url
    proc.terminate()
    assert proc.wait(timeout=10) == 0, log_path.read_text()
    if os.environ.get("ROLLGATE_SHOW_EMULATOR_LOG"):
        print(log_path.read_text())


def control(emulator: str, path: str, method: str = "GET") -> Any:
    request = urllib.request.Request(f"{emulator}/_rollgate/{path}", method=method,
                                     data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture(autouse=True)
def clean(emulator: str, fake_watch: FakeWatch) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{emulator}/moto-api/reset", method="POST"))
    fake_watch.handlers.clear()
    fake_watch.requests.clear()


class Clients:
    def __init__(self, url: str) -> None:
        self.url = url

    def __getattr__(self, service: str) -> Any:
        if service == "lam":
            service = "lambda"
        client = boto3.client(
            service, endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}),
        )
        setattr(self, "lam" if service == "lambda" else service, client)
        return client


@pytest.fixture
def aws(emulator: str) -> Clients:
    return Clients(emulator)


def make_function(aws: Clients, name: str, versions: int = 2, handler: str = "bootstrap",
                  alias: str | None = "live") -> None:
    """A function with `versions` published versions (env VERSION_TAG=v<n>) and an alias on 1."""
    try:
        aws.iam.create_role(RoleName="rollgate-test", AssumeRolePolicyDocument="{}")
    except aws.iam.exceptions.EntityAlreadyExistsException:
        pass
    lam = aws.lam
    lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler=handler,
                        Code={"ZipFile": b"fake"}, Architectures=["arm64"], MemorySize=256,
                        Timeout=30, Environment={"Variables": {"VERSION_TAG": "v1"}})
    for n in range(1, versions + 1):
        if n > 1:
            lam.update_function_configuration(FunctionName=name,
                                              Environment={"Variables": {"VERSION_TAG": f"v{n}"}})
        lam.publish_version(FunctionName=name)
    if alias:
        lam.create_alias(FunctionName=name, Name=alias, FunctionVersion="1")


def wait_for(predicate: Callable[[], Any], timeout: float = 10, interval: float = 0.05) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")
