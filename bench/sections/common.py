"""Helpers shared by the bench sections: paths, the workspace's functions, statistics."""

from __future__ import annotations

import math
import os
import re
import statistics
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "target" / "bench"
CLIENT_CALL = re.compile(r"\baws\.(\w+)\(\)")
# A bundle of clients built from the shared config (`HookClients::new(&aws, ...)`).
BUNDLE_CALL = re.compile(r"\b([A-Z]\w+)::new\(\s*&aws\b")


def run_text(args: list[str], **kw) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=60, **kw).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"unavailable ({e})"


def functions() -> list[str]:
    return sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "Cargo.toml").exists())


def main_rs(name: str, root: Path = ROOT) -> str:
    try:
        return (root / "functions" / name / "src" / "main.rs").read_text()
    except OSError:
        return ""


def not_ready(name: str) -> str | None:
    """Why `name` cannot be measured yet, or None when its main runs a Lambda loop."""
    src = main_rs(name)
    if "lambda_runtime" not in src:
        return "not implemented yet (its main.rs runs no Lambda runtime loop)"
    return None


def _bundle_source(bundle: str, root: Path) -> str:
    """The `impl <bundle> { ... }` block of the adapters that builds the bundle."""
    head = re.compile(rf"^impl {bundle} \{{$", re.M)
    for path in sorted((root / "shared" / "src" / "adapters").rglob("*.rs")):
        text = path.read_text()
        m = head.search(text)
        if m:
            end = text.find("\n}\n", m.end())
            return text[m.end():end if end >= 0 else None]
    return ""


def sdk_clients(name: str, root: Path = ROOT) -> list[str]:
    """The SDK clients the function's main builds, in order (`aws.ssm()` -> `ssm`),
    including those of the adapters' bundles it builds from the shared config
    (`HookClients::new(&aws, ...)`), so the other SDKs are asked for as many clients."""
    src = main_rs(name, root)
    calls = [(m.start(), [m.group(1)]) for m in CLIENT_CALL.finditer(src)]
    calls += [(m.start(), CLIENT_CALL.findall(_bundle_source(m.group(1), root)))
              for m in BUNDLE_CALL.finditer(src)]
    seen: list[str] = []
    for _, names in sorted(calls):
        for c in names:
            if c not in seen:
                seen.append(c)
    return seen


def cargo(args: list[str], log: Path, timeout: float = 3600, cwd: Path = ROOT) -> tuple[bool, str]:
    """Run cargo, log everything; on failure return the first error line."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CARGO_TARGET_DIR": str(ROOT / "target")}
    with open(log, "w") as f:
        p = subprocess.run(["cargo", *args], cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT,
                           timeout=timeout)
    if p.returncode == 0:
        return True, ""
    lines = [l for l in log.read_text().splitlines() if l.startswith("error")] or log.read_text().splitlines()[-1:]
    return False, (lines[0] if lines else f"cargo exited {p.returncode}")[:300]


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def p90(xs: list[float]) -> float:
    s = sorted(xs)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]


HEAD_SRC = OUT_DIR / "head-src"
_head: dict = {}


def head_source() -> tuple[Path | None, str]:
    """The last commit exported to target/bench/head-src (no git state touched), for
    when the working tree, which other people are editing, does not compile."""
    if "dir" not in _head:
        commit = run_text(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
        try:
            subprocess.run(["rm", "-rf", str(HEAD_SRC)], check=True)
            HEAD_SRC.mkdir(parents=True)
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(HEAD_SRC)], input=archive.stdout, check=True)
            _head.update(dir=HEAD_SRC, commit=commit)
        except (OSError, subprocess.SubprocessError):
            _head.update(dir=None, commit=commit)
    return _head["dir"], _head["commit"]


# Written when a build fell back to the last commit. That build shares the target dir,
# so it overwrites the binaries the working tree's build put there; a later build of an
# unchanged-looking working tree then finds its units fresh and keeps the last commit's
# binaries (seen: a zip measured from the last commit's rollout an hour later). The next
# working-tree build first forgets the workspace's own units (see `forget_fallback`).
FALLBACK_MARK = OUT_DIR / "fallback-built"


def forget_fallback() -> None:
    """After a fallback build: delete the fingerprints of the workspace's own packages in
    every profile directory of the target dir, so that cargo builds and uplifts them again
    from the working tree (dependencies stay built)."""
    if not FALLBACK_MARK.exists():
        return
    own = ["rollgate"] + functions() + ["example-app", "rollgate-cli", "rollgate-bench-floor"]
    for fingerprints in (ROOT / "target").glob("**/.fingerprint"):
        for unit in fingerprints.iterdir():
            if unit.name.rsplit("-", 1)[0] in own:
                subprocess.run(["rm", "-rf", str(unit)], check=False)
    FALLBACK_MARK.unlink()


def build_with_fallback(name: str, args: list[str], log_name: str) -> tuple[Path | None, str]:
    """Build `name` with `cargo <args>` from the working tree; if that fails and the last
    commit has the function, from the last commit. Returns (source dir, note) or
    (None, why not)."""
    forget_fallback()
    ok, err = cargo(args, OUT_DIR / "logs" / f"{log_name}.log")
    if ok:
        return ROOT, ""
    src, commit = head_source()
    if src is None or not (src / "functions" / name / "Cargo.toml").exists():
        return None, f"does not build in the working tree ({err}) and is not in the last commit"
    ok2, err2 = cargo(args, OUT_DIR / "logs" / f"{log_name}-head.log", cwd=src)
    FALLBACK_MARK.parent.mkdir(parents=True, exist_ok=True)
    FALLBACK_MARK.write_text(commit)
    if not ok2:
        return None, f"does not build in the working tree ({err}) nor at {commit} ({err2})"
    return src, f"built from the last commit {commit}: the working tree did not compile ({err})"


def build_for_watch(function: str, binaries: list[str], log_name: str) -> tuple[Path | None, str]:
    """Release builds of `binaries`, one each, as `cargo lambda watch --release` runs them
    (`cargo run --release --bin <name>`): built together their features unify differently,
    and the first invocation would rebuild (and fat-LTO link) them under the benchmark's
    feet. `function` must be in the last commit for the fallback (build_with_fallback).
    Returns (source dir, note) or (None, why not, naming the binary)."""
    base, note = None, ""
    for binary in binaries:
        base, note = build_with_fallback(function, ["build", "--release", "--bin", binary], f"{log_name}-{binary}")
        if base is None:
            return None, f"{binary} (release build for cargo lambda watch) {note}"
    return base, note


def test_modules(base: Path):
    """infra/local/harness.py and tests/support/helpers.py of `base` (the working tree or
    the last commit's export), imported fresh so the two never mix."""
    import importlib
    import sys

    for name in ("harness", "support", "support.helpers"):
        sys.modules.pop(name, None)
    for sub in ("tests", "infra/local"):
        path = str(base / sub)
        while path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)
    if base != ROOT:
        # Watch builds there, but reuses the workspace's compiled dependencies.
        os.environ["CARGO_TARGET_DIR"] = str(ROOT / "target")
    else:
        os.environ.pop("CARGO_TARGET_DIR", None)
    return importlib.import_module("harness"), importlib.import_module("support.helpers")
