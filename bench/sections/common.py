"""Helpers shared by the bench sections: paths, the workspace's functions, statistics."""

from __future__ import annotations

import math
import re
import statistics
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "target" / "bench"
CLIENT_CALL = re.compile(r"\baws\.(\w+)\(\)")


def run_text(args: list[str], **kw) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=60, **kw).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"unavailable ({e})"


def functions() -> list[str]:
    return sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "Cargo.toml").exists())


def main_rs(name: str) -> str:
    try:
        return (ROOT / "functions" / name / "src" / "main.rs").read_text()
    except OSError:
        return ""


def not_ready(name: str) -> str | None:
    """Why `name` cannot be measured yet, or None when its main runs a Lambda loop."""
    src = main_rs(name)
    if "lambda_runtime" not in src:
        return "not implemented yet (its main.rs runs no Lambda runtime loop)"
    return None


def sdk_clients(name: str) -> list[str]:
    """The SDK clients the function's main builds, in order (`aws.ssm()` -> `ssm`)."""
    seen: list[str] = []
    for c in CLIENT_CALL.findall(main_rs(name)):
        if c not in seen:
            seen.append(c)
    return seen


def cargo(args: list[str], log: Path, timeout: float = 3600) -> tuple[bool, str]:
    """Run cargo, log everything; on failure return the last error line."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        p = subprocess.run(["cargo", *args], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, timeout=timeout)
    if p.returncode == 0:
        return True, ""
    lines = [l for l in log.read_text().splitlines() if l.startswith("error")] or log.read_text().splitlines()[-1:]
    return False, (lines[0] if lines else f"cargo exited {p.returncode}")[:300]


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def p90(xs: list[float]) -> float:
    s = sorted(xs)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]
