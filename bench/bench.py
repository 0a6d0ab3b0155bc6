#!/usr/bin/env python3
"""`make bench`: measure rollgate side by side with the Python and Node equivalents and
write docs/benchmarks.md. Nothing here fails on a number: a benchmark that cannot run
is reported as skipped, with the reason, and the run goes on.

    .venv/bin/python bench/bench.py [--runs 25] [--only cold,zip,rollback,redrive,gate,judge]

Sections live in bench/sections/; this file builds, runs them in order (builds first, so
no compiler competes with the timed parts) and renders the document."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from sections import coldstart, gate, judge, redrive, rollback, zips  # noqa: E402
from sections.common import OUT_DIR, run_text  # noqa: E402
from render import render  # noqa: E402

# Committed next to the document it renders: a partial run (`--only`) on a fresh
# checkout keeps the other sections' last numbers, each with its date.
RESULTS = ROOT / "bench" / "results.json"

SECTIONS = ["zip", "cold", "rollback", "redrive", "gate", "judge"]


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines()
                   if l.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem_kib / 1024 / 1024, 1),
            "kernel": platform.release(), "arch": platform.machine(),
            "load_start": os.getloadavg()}


def versions() -> dict:
    import boto3
    import botocore

    def sdk(pkg: str) -> str:
        try:
            return json.loads((BENCH / "node_modules" / pkg / "package.json").read_text())["version"]
        except OSError:
            return "not installed"

    return {
        "rustc": run_text(["rustc", "--version"]),
        "cargo-lambda": run_text(["cargo", "lambda", "--version"]),
        "python": platform.python_version(),
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "node": run_text(["node", "--version"]),
        "@aws-sdk/client-lambda": sdk("@aws-sdk/client-lambda"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=25, help="cold starts per implementation and function")
    ap.add_argument("--gate-reps", type=int, default=5, help="deployments per gate scenario")
    ap.add_argument("--redrive-messages", type=int, default=10_000, help="messages per redrive run")
    ap.add_argument("--judge-trials", type=int, default=500, help="simulated canaries per judge cell")
    ap.add_argument("--judge-e2e", type=int, default=3, help="end-to-end deployments per judge case")
    ap.add_argument("--only", default=",".join(SECTIONS))
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite the document from bench/results.json without measuring")
    args = ap.parse_args()
    if args.render_only:
        Path(args.out).write_text(render(json.loads(RESULTS.read_text())))
        return 0
    only = set(args.only.split(","))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    os.environ["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"

    started = time.monotonic()
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results = {"date": now, "machine": machine(), "versions": versions(), "sections": {}}
    previous = RESULTS
    if only != set(SECTIONS) and previous.exists():
        # A partial run updates its sections and keeps the others, each with its date.
        prev = json.loads(previous.read_text())
        kept = prev.get("sections", {})
        prev_machine = prev.get("machine", {})
        for name, res in kept.items():
            res.setdefault("date", prev.get("date"))
            # Older results knew only the whole run's load; a kept section keeps it, so the
            # page can still say its absolute numbers came from a busy machine.
            res.setdefault("load", [prev_machine.get("load_start", [0.0])[0], prev_machine.get("load_end", [0.0])[0]])
        results["sections"] = kept
    steps = [("zip", zips.run, {}), ("cold", coldstart.run, {"runs": args.runs}),
             ("rollback", rollback.run, {}), ("redrive", redrive.run, {"messages": args.redrive_messages}),
             ("gate", gate.run, {"reps": args.gate_reps}),
             ("judge", judge.run, {"trials": args.judge_trials, "e2e_reps": args.judge_e2e})]
    for name, fn, kw in steps:
        if name not in only:
            continue
        print(f"bench: {name} ...", flush=True)
        t0 = time.monotonic()
        load_before = os.getloadavg()[0]
        try:
            res = fn(**kw)
        except Exception as e:  # noqa: BLE001 - a broken section is reported, never fatal
            res = {"status": "skipped", "reason": f"the section crashed: {type(e).__name__}: {e}"}
        res["seconds"] = round(time.monotonic() - t0, 1)
        res["date"] = now
        res["load"] = [load_before, os.getloadavg()[0]]
        results["sections"][name] = res
        print(f"bench: {name} {res['status']} in {res['seconds']} s"
              + (f" ({res['reason']})" if res.get("reason") else ""), flush=True)
    results["machine"]["load_end"] = os.getloadavg()
    results["total_seconds"] = round(time.monotonic() - started, 1)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    Path(args.out).write_text(render(results))
    print(f"bench: wrote {args.out} and {RESULTS.relative_to(ROOT)} in {results['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
