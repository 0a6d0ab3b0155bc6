"""Section 3: redrive throughput. 10,000 messages DLQ -> source queue on the emulator by
dlq-redrive (release build under `cargo lambda watch --release`), against
bench/redrive_boto3.py (a plain receive/send/delete loop, single-threaded and with 8
threads) on the same emulator in the same run: once on a modelled network (every SQS
call waits a log-normal draw, median 15 ms, p99 60 ms, as on AWS where SQS answers
concurrent callers side by side), once without.

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

from .common import OUT_DIR, ROOT, build_for_watch, not_ready, test_modules


MESSAGES = 10_000  # the figure; --redrive-messages changes it
FUNCTION = "redrive-bench"  # as the tests name theirs: the stack's role allows redrive-* queues
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


# The modelled network: every SQS call waits a log-normal draw with these percentiles
# before the local AWS answers it (SQS's own latency: a median around 15 ms, a tail).
LATENCY = {"median_ms": 15, "p99_ms": 60}
NETWORKS = ("modelled", "unmodelled")
IMPLS = {"rust": None, "boto3": 1, "boto3x8": 8}  # boto3 loops: threads


def _faults(endpoint: str, spec: dict | None) -> None:
    import urllib.request
    req = urllib.request.Request(f"{endpoint}/_rollgate/faults", method="POST" if spec else "DELETE",
                                 data=json.dumps(spec).encode() if spec else None)
    urllib.request.urlopen(req, timeout=5).read()


def run(messages: int = MESSAGES) -> dict:
    if not (ROOT / "functions" / "dlq-redrive").exists():
        return {"status": "skipped", "reason": "functions/dlq-redrive does not exist yet"}
    why = not_ready("dlq-redrive")
    if why:
        return {"status": "skipped", "reason": f"dlq-redrive is {why}"}
    base, note = build_for_watch("dlq-redrive", ["dlq-redrive"], "redrive-build")
    if base is None:
        return {"status": "skipped", "reason": note}
    harness, helpers = test_modules(base)
    LocalAws, wait_for = harness.LocalAws, harness.wait_for

    # The function moves only queues its allow-list names; the stack's role (which the
    # local AWS enforces) allows the same redrive-* queues.
    env = {"ROLLGATE_REDRIVE_ALLOW": helpers.REDRIVE_ALLOW}
    with LocalAws(env=env, log_dir=OUT_DIR / "logs" / "redrive", release=True) as aws:
        helpers.bootstrap(aws)
        helpers.create_function(aws, FUNCTION, handler="dlq-redrive", env={}, timeout=900)
        sqs, lam = aws.client("sqs"), aws.client("lambda")
        emulator_pid = aws._procs[0].pid
        watch_port = int(aws.watch_endpoint.rsplit(":", 1)[1])

        def queues(tag: str):
            dlq = sqs.create_queue(QueueName=f"redrive-bench-{tag}-dlq")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            src = sqs.create_queue(QueueName=f"redrive-bench-{tag}", Attributes={"RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": arn, "maxReceiveCount": "3"})})["QueueUrl"]
            return dlq, src

        # Start the function once (a dry run on an empty queue) so its start is not timed.
        wdlq, _ = queues("warm")
        lam.invoke(FunctionName=FUNCTION, Payload=json.dumps({"source": wdlq, "dry_run": True}))

        def one(network: str, impl: str) -> dict:
            dlq, src = queues(f"{network}-{impl}")
            _fill(sqs, dlq, messages)
            if network == "modelled":
                _faults(aws.endpoint, {"operation": "*", "service": "sqs", "fraction": 1, "latency": LATENCY})
            emu0 = _cpu_s(emulator_pid)
            fn0 = {p: _cpu_s(p) for p in _function_pids(watch_port, "dlq-redrive")}
            t0 = time.monotonic()
            try:
                if impl == "rust":
                    own = _rust(lam, dlq, watch_port, fn0)
                else:
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    subprocess.run([sys.executable, str(ROOT / "bench" / "redrive_boto3.py"), aws.endpoint, dlq, src,
                                    str(messages), str(IMPLS[impl])], check=True, capture_output=True)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    own = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
                secs = time.monotonic() - t0
                emu = _cpu_s(emulator_pid) - emu0
            finally:
                _faults(aws.endpoint, None)
            wait_for(lambda: _depth(sqs, src) >= messages, 600, "the source queue to fill", interval=0.2)
            return {"seconds": secs, "msgs_per_s": messages / secs, "moved": _depth(sqs, src),
                    "left": _depth(sqs, dlq), "cpu_ms_per_1000": own * 1000 / (messages / 1000),
                    "emulator_cpu_ms_per_1000": emu * 1000 / (messages / 1000)}

        results = {n: {i: one(n, i) for i in IMPLS} for n in NETWORKS}
    ratios = {n: {"boto3": results[n]["rust"]["msgs_per_s"] / results[n]["boto3"]["msgs_per_s"],
                  "boto3x8": results[n]["rust"]["msgs_per_s"] / results[n]["boto3x8"]["msgs_per_s"]}
              for n in NETWORKS}
    return {"status": "ran", "reason": "", "messages": messages, "results": results, "ratios": ratios,
            "ratio": ratios["modelled"]["boto3"], "latency": LATENCY, "build": "release", "note": note}


def _rust(lam, dlq: str, watch_port: int, fn0: dict) -> float:
    """Invoke dlq-redrive until it hands back no continuation; its CPU seconds."""
    req = {"source": dlq, "rate": 3000, "concurrency": 16}
    while True:
        out = lam.invoke(FunctionName=FUNCTION, Payload=json.dumps(req))
        body = json.loads(out["Payload"].read() or b"null")
        if out.get("FunctionError"):
            raise RuntimeError(f"dlq-redrive failed: {json.dumps(body)[:300]}")
        cont = (body or {}).get("continuation") if isinstance(body, dict) else None
        if not cont:
            break
        req = cont
    # A process watch started during the run counts from zero.
    return sum(_cpu_s(p) - fn0.get(p, 0.0) for p in _function_pids(watch_port, "dlq-redrive"))
