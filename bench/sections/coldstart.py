"""Section 1: cold start. Every function's x86_64 release binary, a Python/boto3 and a
Node/AWS SDK v3 program building the same clients, each timed from spawn to its first
Runtime API `GET .../invocation/next`, with peak RSS (VmHWM) read at that moment.

The Runtime API is a small local server that notes when `/next` arrives and then holds
the request; the process is killed after that. Runs are interleaved (rotating order) so
machine noise hits the three implementations alike."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .common import OUT_DIR, ROOT, build_with_fallback, cargo, functions, median, not_ready, p90, sdk_clients

NEXT = "/2018-06-01/runtime/invocation/next"
WARMUP = 2
TARGET_MS = 10.0
TARGET_RSS_MIB = 8.0
TARGET_RATIO_BOTO3 = 40.0
DIAG_ONE_ROOT = "rust, one trusted root"
DIAG_FLOOR = "floor: a Rust binary doing nothing"


class _Probe:
    """What the Runtime API saw of the one process currently running."""

    def __init__(self):
        # Set once the process is spawned; a fast process may ask for /next before.
        self.pid: int | None = None
        self.spawned = threading.Event()
        self.arrived_ns: int | None = None
        self.hwm_kib: int | None = None
        self.parts: dict | None = None
        self.init_error: str | None = None
        self.seen = threading.Event()
        self.release = threading.Event()


def _rss_parts(pid: int) -> dict | None:
    """Where the resident pages are at this moment (KiB): the executable's own file pages,
    shared libraries' file pages, and anonymous memory (heap, stacks, relocated data)."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return None
    parts = {"binary_kib": 0, "libraries_kib": 0, "anonymous_kib": 0}
    path = ""
    for line in text.splitlines():
        head = line.split(None, 5)
        if head and "-" in head[0] and not head[0].endswith(":"):
            path = head[5].strip() if len(head) > 5 else ""
        elif line.startswith("Anonymous:"):
            parts["anonymous_kib"] += int(line.split()[1])
        elif line.startswith("Rss:"):
            kib = int(line.split()[1])
            if path == exe:
                parts["binary_kib"] += kib
            elif ".so" in path:
                parts["libraries_kib"] += kib
    # The executable's pages written at start (relocations) count as anonymous there.
    return parts


def elf_sections(binary: str, names: tuple[str, ...] = (".text", ".rela.dyn", ".data.rel.ro")) -> dict:
    """Sizes (bytes) of some sections of an ELF64 file."""
    import struct
    try:
        data = Path(binary).read_bytes()
    except OSError:
        return {}
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return {}
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = headers[shstrndx][4]
    out = {}
    for name_off, _, _, _, _, size in headers:
        end = data.index(b"\0", strtab + name_off)
        name = data[strtab + name_off:end].decode()
        if name in names:
            out[name] = size
    return out


def _vm_hwm_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class RuntimeApi:
    def __init__(self):
        self.probe: _Probe | None = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):
                now = time.monotonic_ns()
                probe = api.probe
                if probe is None or not self.path.startswith(NEXT):
                    self.send_error(404)
                    return
                if probe.arrived_ns is None:
                    probe.arrived_ns = now
                    probe.spawned.wait(5)
                    probe.hwm_kib = _vm_hwm_kib(probe.pid)
                    probe.parts = _rss_parts(probe.pid)
                    probe.seen.set()
                # Hold the request: the process is killed before it gets an event.
                probe.release.wait(30)
                self.close_connection = True

            def do_POST(self):
                probe = api.probe
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if probe is not None and "/init/error" in self.path:
                    probe.init_error = body.decode(errors="replace")[:300]
                    probe.seen.set()
                self.send_response(202)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        if self.probe:
            self.probe.release.set()
        self.server.shutdown()


def _dead_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lambda_env(function: str, api_port: int, home: str) -> dict:
    """The environment Lambda gives a function, with dummy credentials and an endpoint
    that refuses connections so nothing can leave the machine."""
    return {
        "PATH": os.environ["PATH"], "HOME": home, "LANG": "en_US.UTF-8", "TZ": ":UTC",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api_port}",
        "AWS_LAMBDA_FUNCTION_NAME": function, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand", "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDBENCHBENCHBENCH0", "AWS_SECRET_ACCESS_KEY": "bench-secret",
        "AWS_SESSION_TOKEN": "bench-token",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_dead_port()}",
        # Configuration the functions require at init (values are never used here).
        "ROLLGATE_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:rollgate-decisions",
        "ROLLGATE_LEDGER_TABLE": "rollgate-ledger",
        "ROLLGATE_POLICY_PREFIX": "/rollgate/policies/",
        "ROLLGATE_SCHEDULE_GROUP": "rollgate-rollouts",
        "ROLLGATE_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/rollgate-RolloutSchedulerRole-BENCH",
    }


def _one(api: RuntimeApi, argv: list[str], env: dict) -> dict:
    err = tempfile.TemporaryFile()
    # The probe is in place before the process exists: a start of a few ms can reach
    # /next before Popen returns.
    probe = api.probe = _Probe()
    t0 = time.monotonic_ns()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=err, cwd=ROOT)
    probe.pid = proc.pid
    probe.spawned.set()
    deadline = time.monotonic() + 30
    while not probe.seen.wait(0.005):
        if proc.poll() is not None or time.monotonic() > deadline:
            break
    proc.kill()
    proc.wait()
    probe.release.set()
    api.probe = None
    if probe.arrived_ns is None:
        err.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return {"error": probe.init_error or tail[0][:300]}
    return {"ms": (probe.arrived_ns - t0) / 1e6, "rss_mib": (probe.hwm_kib or 0) / 1024,
            "parts": probe.parts or {}}


def _floor() -> str | None:
    """bench/floor's release binary (no work before `/next`), or None if it does not build."""
    target = ROOT / "target" / "bench-floor"
    ok, _ = cargo(["build", "--release", "--manifest-path", str(ROOT / "bench" / "floor" / "Cargo.toml"),
                   "--target-dir", str(target)], OUT_DIR / "logs" / "floor.log")
    return str(target / "release" / "rollgate-bench-floor") if ok else None


def _one_root(directory: str) -> str | None:
    """A CA bundle holding only the first certificate of the system's bundle."""
    for bundle in ("/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "/etc/pki/tls/certs/ca-bundle.crt",
                   "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem"):
        try:
            text = Path(bundle).read_text()
        except OSError:
            continue
        end = text.find("-----END CERTIFICATE-----")
        start = text.rfind("-----BEGIN CERTIFICATE-----", 0, end)
        if start >= 0:
            path = Path(directory) / "one-root.pem"
            path.write_text(text[start:end] + "-----END CERTIFICATE-----\n")
            return str(path)
    return None


def run(runs: int = 25) -> dict:
    rows, skipped = [], []
    node_ok = (ROOT / "bench" / "node_modules" / "@aws-sdk" / "client-lambda").exists()
    python = str(ROOT / ".venv" / "bin" / "python")
    floor = _floor()
    one_root = _one_root(tempfile.mkdtemp(prefix="rollgate-bench-one-root-"))
    for name in functions():
        why = not_ready(name)
        if why:
            skipped.append({"function": name, "reason": why})
            continue
        src, note = build_with_fallback(name, ["build", "--release", "-p", name], f"release-{name}")
        if src is None:
            skipped.append({"function": name, "reason": f"release build: {note}"})
            continue
        clients = sdk_clients(name, src)
        binary = str(ROOT / "target" / "release" / name)
        impls = {"rust": [binary],
                 "python": [python, str(ROOT / "bench" / "init_boto3.py"), *clients]}
        # Diagnostics: what the start costs without the system's ~150 trusted roots (the
        # same binary given a bundle of one), and with no work at all (bench/floor).
        extra_env = {}
        if one_root:
            impls[DIAG_ONE_ROOT] = [binary]
            extra_env[DIAG_ONE_ROOT] = {"SSL_CERT_FILE": one_root}
        if floor:
            impls[DIAG_FLOOR] = [floor]
        if node_ok:
            impls["node"] = ["node", str(ROOT / "bench" / "init_sdkv3.cjs"), *clients]
        rows.append({"function": name, "clients": clients, "impls": impls, "env": extra_env, "note": note,
                     "elf": elf_sections(binary)})

    if not rows:
        return {"status": "skipped", "reason": "no function binary could be built", "skipped": skipped}

    api = RuntimeApi()
    home = tempfile.mkdtemp(prefix="rollgate-bench-home-")
    try:
        samples = {(r["function"], i): [] for r in rows for i in r["impls"]}
        errors: dict = {}
        for rnd in range(WARMUP + runs):
            for r in rows:
                env = lambda_env(r["function"], api.port, home)
                order = list(r["impls"])
                k = rnd % len(order)
                for impl in order[k:] + order[:k]:
                    key = (r["function"], impl)
                    if key in errors:
                        continue
                    res = _one(api, r["impls"][impl], {**env, **r["env"].get(impl, {})})
                    if "error" in res:
                        errors[key] = res["error"]
                    elif rnd >= WARMUP:
                        samples[key].append(res)
    finally:
        api.close()

    out = []
    for r in rows:
        entry = {"function": r["function"], "clients": r["clients"], "impls": {}, "note": r["note"],
                 "elf": r["elf"]}
        for impl in r["impls"]:
            key = (r["function"], impl)
            if key in errors:
                entry["impls"][impl] = {"error": errors[key]}
                continue
            ms = [s["ms"] for s in samples[key]]
            rss = [s["rss_mib"] for s in samples[key]]
            parts = {k: median([s["parts"].get(k, 0) for s in samples[key]]) / 1024
                     for k in ("binary_kib", "libraries_kib", "anonymous_kib")}
            entry["impls"][impl] = {"n": len(ms), "median_ms": median(ms), "p90_ms": p90(ms),
                                    "median_rss_mib": median(rss), "max_rss_mib": max(rss),
                                    "rss_parts_mib": {k.replace("_kib", ""): v for k, v in parts.items()}}
        rust = entry["impls"].get("rust", {})
        if "median_ms" in rust:
            for impl in (DIAG_ONE_ROOT, DIAG_FLOOR, "python", "node"):
                other = entry["impls"].get(impl, {})
                if "median_ms" in other:
                    other["ratio_time"] = other["median_ms"] / rust["median_ms"]
                    other["ratio_rss"] = other["median_rss_mib"] / rust["median_rss_mib"]
        out.append(entry)
    return {"status": "ran", "runs": runs, "warmup": WARMUP, "rows": out, "skipped": skipped,
            "node": node_ok, "reason": ""}
