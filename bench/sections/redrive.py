"""Section 3: redrive throughput. 10,000 messages DLQ -> source queue on the emulator by
dlq-redrive (under `cargo lambda watch`), against bench/redrive_boto3.py (a plain
receive/send/delete loop) on the same emulator in the same run.

CPU per 1,000 messages: for dlq-redrive, its process's utime+stime from /proc; for the
boto3 loop, its own rusage; the emulator's CPU (which dominates both) separately."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from .common import OUT_DIR, ROOT, build_with_fallback, not_ready, test_modules


MESSAGES = 10_000  # the figure; --redrive-messages changes it
FUNCTION = "rollgate-dlq-redrive"
TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def _function_pids(watch_port: int, binary: str) -> list[int]:
    """Processes `cargo lambda watch` (on `watch_port`) runs for `binary`."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if (d / "comm").read_text().strip() != binary[:15]:
                continue
            env = (d / "environ").read_bytes()
        except OSError:
            continue
        if f"127.0.0.1:{watch_port}/".encode() in env:
            out.append(int(d.name))
    return out


def _fill(sqs, url: str, n: int) -> None:
    for start in range(0, n, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": json.dumps({"order": start + i, "pad": "x" * 200})}
            for i in range(min(10, n - start))])


def _depth(sqs, url: str) -> int:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def run(messages: int = MESSAGES) -> dict:
    if not (ROOT / "functions" / "dlq-redrive").exists():
        return {"status": "skipped", "reason": "functions/dlq-redrive does not exist yet"}
    why = not_ready("dlq-redrive")
    if why:
        return {"status": "skipped", "reason": f"dlq-redrive is {why}"}
    base, note = build_with_fallback("dlq-redrive", ["build", "-p", "dlq-redrive"], "redrive-build")
    if base is None:
        return {"status": "skipped", "reason": f"dlq-redrive (debug build for cargo lambda watch) {note}"}
    harness, helpers = test_modules(base)
    LocalAws, wait_for = harness.LocalAws, harness.wait_for

    # cargo lambda watch runs the debug build (dependencies at opt-level 1): the Rust
    # throughput here is a lower bound.
    # The function moves only queues its allow-list names (empty: none).
    env = {"ROLLGATE_REDRIVE_ALLOW": "arn:aws:sqs:*:*:bench-*"}
    with LocalAws(env=env, log_dir=OUT_DIR / "logs" / "redrive") as aws:
        helpers.bootstrap(aws)
        helpers.create_function(aws, FUNCTION, handler="dlq-redrive", env={}, timeout=900)
        sqs, lam = aws.client("sqs"), aws.client("lambda")
        emulator_pid = aws._procs[0].pid
        watch_port = int(aws.watch_endpoint.rsplit(":", 1)[1])

        def queues(tag: str):
            dlq = sqs.create_queue(QueueName=f"bench-{tag}-dlq")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            src = sqs.create_queue(QueueName=f"bench-{tag}", Attributes={"RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": arn, "maxReceiveCount": "3"})})["QueueUrl"]
            return dlq, src

        # Start the function once (a dry run on an empty queue) so its start is not timed.
        wdlq, _ = queues("warm")
        lam.invoke(FunctionName=FUNCTION, Payload=json.dumps({"source": wdlq, "dry_run": True}))

        results = {}
        for impl in ("rust", "boto3"):
            dlq, src = queues(impl)
            _fill(sqs, dlq, messages)
            emu0 = _cpu_s(emulator_pid)
            fn0 = {p: _cpu_s(p) for p in _function_pids(watch_port, "dlq-redrive")}
            t0 = time.monotonic()
            if impl == "rust":
                req = {"source": dlq, "rate": 3000, "concurrency": 16}
                while True:
                    out = lam.invoke(FunctionName=FUNCTION, Payload=json.dumps(req))
                    body = json.loads(out["Payload"].read() or b"null")
                    if out.get("FunctionError"):
                        return {"status": "skipped", "reason": f"dlq-redrive failed: {json.dumps(body)[:300]}"}
                    cont = (body or {}).get("continuation") if isinstance(body, dict) else None
                    if not cont:
                        break
                    req = cont
                wait_for(lambda: _depth(sqs, src) >= messages, 600, "the source queue to fill", interval=0.2)
                # A process watch started during the run counts from zero.
                now_pids = _function_pids(watch_port, "dlq-redrive")
                own = sum(_cpu_s(p) - fn0.get(p, 0.0) for p in now_pids)
            else:
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                subprocess.run([sys.executable, str(ROOT / "bench" / "redrive_boto3.py"), aws.endpoint, dlq, src,
                                str(messages)], check=True, capture_output=True)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                own = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            secs = time.monotonic() - t0
            emu = _cpu_s(emulator_pid) - emu0
            results[impl] = {"seconds": secs, "msgs_per_s": messages / secs, "moved": _depth(sqs, src),
                             "left": _depth(sqs, dlq), "cpu_ms_per_1000": own * 1000 / (messages / 1000),
                             "emulator_cpu_ms_per_1000": emu * 1000 / (messages / 1000)}
    ratio = results["rust"]["msgs_per_s"] / results["boto3"]["msgs_per_s"]
    return {"status": "ran", "reason": "", "messages": messages, "results": results, "ratio": ratio, "note": note}
