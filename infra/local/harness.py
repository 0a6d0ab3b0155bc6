"""Start and stop the local AWS for tests and the demo: the patched moto emulator and
`cargo lambda watch` serving every function of the workspace, on free loopback ports.

    with LocalAws(env={...}) as aws:
        aws.client("codedeploy").create_application(...)

Both processes run in their own process groups and are always stopped on exit, so
nothing is left running."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy; raise after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - polling until ready
            last = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@functools.cache
def host_triple() -> str:
    """The target cargo builds for here (its runner is configured per target); asked of
    rustc once per process, not for every world started."""
    out = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("host:"))


class LocalAws:
    """The emulator plus `cargo lambda watch`, with `env` passed to every function."""

    # Worlds currently running (the IAM mutation run tells each which test is running).
    live: list["LocalAws"] = []

    def __init__(self, env: dict[str, str] | None = None, minute_seconds: float = 0.2,
                 hook_timeout_seconds: int = 120, log_dir: Path | None = None,
                 watch_concurrency: int = 8, release: bool = False):
        self.function_env = env or {}
        self.minute_seconds = minute_seconds
        self.hook_timeout_seconds = hook_timeout_seconds
        self.log_dir = log_dir or ROOT / "target" / "local-aws"
        self.watch_concurrency = watch_concurrency
        # Functions run as release builds (`cargo lambda watch --release`): for benchmarks.
        self.release = release
        self.endpoint = ""
        self.watch_endpoint = ""
        self._procs: list[subprocess.Popen] = []
        self._logs = []

    def __enter__(self) -> "LocalAws":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _spawn(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w")
        self._logs.append(log)
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self._procs.append(proc)
        return proc

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        emu_port, watch_port = free_port(), free_port()
        self.endpoint = f"http://127.0.0.1:{emu_port}"
        self.watch_endpoint = f"http://127.0.0.1:{watch_port}"
        self._spawn("emulator", [
            sys.executable, str(ROOT / "infra/local/emulator.py"), "--host", "127.0.0.1",
            "--port", str(emu_port), "--lambda-endpoint", self.watch_endpoint,
            "--minute-seconds", str(self.minute_seconds),
            "--hook-timeout-seconds", str(self.hook_timeout_seconds)])
        env = dict(os.environ)
        # cargo-lambda is installed in the same venv as this interpreter.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.update({
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            # Each function runs with credentials of its own role, as on Lambda: cargo
            # starts every binary through function_runner.py, which fetches them from
            # the local AWS; until then it holds a key the local AWS refuses.
            "AWS_ACCESS_KEY_ID": "rollgate-function-without-role",
            "AWS_SECRET_ACCESS_KEY": "none",
            f"CARGO_TARGET_{host_triple().upper().replace('-', '_')}_RUNNER":
                f"{sys.executable} {ROOT / 'infra/local/function_runner.py'}",
            "ROLLGATE_CREDENTIALS_ENDPOINT": f"{self.endpoint}/_rollgate/credentials",
            # `cargo lambda watch` passes no ARN as the invoked function's: home account.
            "ROLLGATE_ACCOUNT_ID": ACCOUNT,
            # Unimplemented operations answer 500: never retry them.
            "ROLLGATE_AWS_MAX_ATTEMPTS": "1",
            "ROLLGATE_LOG_FORMAT": "json",
            "RUST_LOG": "info",
        })
        env.update(self.function_env)
        self._spawn("watch", ["cargo", "lambda", "watch", "--ignore-changes", "--quiet", "-A", "127.0.0.1",
                              "-P", str(watch_port), "--concurrency", str(self.watch_concurrency),
                              *(["--release"] if self.release else [])], env=env)
        LocalAws.live.append(self)
        wait_for(self._emulator_ready, 60, "the emulator")
        wait_for(lambda: socket.create_connection(("127.0.0.1", watch_port), timeout=1), 180,
                 "cargo lambda watch")

    def _emulator_ready(self) -> bool:
        import urllib.request
        with urllib.request.urlopen(f"{self.endpoint}/_rollgate/health", timeout=1) as r:
            return r.status == 200

    def stop(self) -> None:
        if self in LocalAws.live:
            LocalAws.live.remove(self)
            self._save_iam_record()
        for proc in reversed(self._procs):
            _stop(proc)
        self._procs.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def _save_iam_record(self) -> None:
        """With ROLLGATE_IAM_RECORD_FILE set, append every authorisation the emulator
        recorded (iam.py) to that file, one JSON object per line."""
        path = os.environ.get("ROLLGATE_IAM_RECORD_FILE")
        if not path or not self.endpoint:
            return
        import json
        try:
            records = self.control("iam/record")
        except OSError:
            return
        with open(path, "a") as out:
            for r in records:
                out.write(json.dumps(r) + "\n")

    def tell_test(self, name: str) -> None:
        import urllib.parse
        import urllib.request
        url = f"{self.endpoint}/_rollgate/iam/test?name={urllib.parse.quote(name)}"
        urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5).close()

    def client(self, service: str):
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}, read_timeout=120),
        )

    def control(self, path: str):
        import json
        import urllib.request
        with urllib.request.urlopen(f"{self.endpoint}/_rollgate/{path}", timeout=10) as r:
            return json.loads(r.read())
