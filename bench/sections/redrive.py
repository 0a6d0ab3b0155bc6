"""Section 3: redrive throughput. 10,000 messages DLQ -> source queue by dlq-redrive
(release build under `cargo lambda watch --release`), against bench/redrive_boto3.py (a
plain receive/send/delete loop, single-threaded and with 8 threads), side by side in one
run, on two networks:

- modelled: SQS is bench/sqs_model.py, in-memory queues that answer every call after a
  log-normal draw (median 15 ms, p99 60 ms), concurrent callers side by side, as SQS
  does. What a user sees on AWS: the client's own work and concurrency decide.
- unmodelled: SQS is the local AWS (moto behind rollgate's IAM and validation), as fast
  as it goes; its one Python process's CPU is the ceiling for every client.

The function reaches the SQS of each network through `AWS_ENDPOINT_URL_SQS` (everything
else stays on the local AWS). CPU per 1,000 messages: for dlq-redrive, its process's
utime+stime from /proc; for the boto3 loop, its own rusage; the SQS side's separately."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import boto3

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
# before bench/sqs_model.py answers it (SQS's own latency: a median around 15 ms, a tail).
LATENCY = {"median_ms": 15, "p99_ms": 60}
NETWORKS = ("modelled", "unmodelled")
IMPLS = {"rust": None, "boto3": 1, "boto3x8": 8}  # boto3 loops: threads


def _sqs_model() -> tuple[subprocess.Popen, str]:
    """bench/sqs_model.py on a free port with the modelled latency: (process, endpoint)."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "sqs_model.py"), "0",
                             str(LATENCY["median_ms"]), str(LATENCY["p99_ms"])],
                            stdout=subprocess.PIPE, text=True)
    return proc, f"http://127.0.0.1:{int(proc.stdout.readline())}"


def run(messages: int = MESSAGES) -> dict:
    if not (ROOT / "functions" / "dlq-redrive").exists():
        return {"status": "skipped", "reason": "functions/dlq-redrive does not exist yet"}
    why = not_ready("dlq-redrive")
    if why:
        return {"status": "skipped", "reason": f"dlq-redrive is {why}"}
    base, note = build_for_watch("dlq-redrive", ["dlq-redrive"], "redrive-build")
    if base is None:
        return {"status": "skipped", "reason": note}
    model, model_url = _sqs_model()
    try:
        results = {n: _network(base, n, messages, model if n == "modelled" else None, model_url)
                   for n in NETWORKS}
    finally:
        model.kill()
        model.wait()
    ratios = {n: {"boto3": results[n]["rust"]["msgs_per_s"] / results[n]["boto3"]["msgs_per_s"],
                  "boto3x8": results[n]["rust"]["msgs_per_s"] / results[n]["boto3x8"]["msgs_per_s"]}
              for n in NETWORKS}
    return {"status": "ran", "reason": "", "messages": messages, "results": results, "ratios": ratios,
            "ratio": ratios["modelled"]["boto3"], "latency": LATENCY, "build": "release", "note": note,
            "sqs": {"modelled": "bench/sqs_model.py", "unmodelled": "the local AWS"}}


def _network(base: Path, network: str, messages: int, model, model_url: str) -> dict:
    """Every implementation on one network: SQS is the model process when given, else
    the local AWS."""
    harness, helpers = test_modules(base)
    LocalAws, wait_for = harness.LocalAws, harness.wait_for
    # The function moves only queues its allow-list names; the stack's role (which the
    # local AWS enforces) allows the same redrive-* queues.
    env = {"ROLLGATE_REDRIVE_ALLOW": helpers.REDRIVE_ALLOW,
           **({"AWS_ENDPOINT_URL_SQS": model_url} if model else {})}
    with LocalAws(env=env, log_dir=OUT_DIR / "logs" / f"redrive-{network}", release=True) as aws:
        helpers.bootstrap(aws)
        helpers.create_function(aws, FUNCTION, handler="dlq-redrive", env={}, timeout=900)
        lam = aws.client("lambda")
        endpoint = model_url if model else aws.endpoint
        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
                           aws_secret_access_key="x") if model else aws.client("sqs")
        sqs_pid = model.pid if model else aws._procs[0].pid
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

        def one(impl: str) -> dict:
            dlq, src = queues(f"{network}-{impl}")
            _fill(sqs, dlq, messages)
            sqs0 = _cpu_s(sqs_pid)
            fn0 = {p: _cpu_s(p) for p in _function_pids(watch_port, "dlq-redrive")}
            t0 = time.monotonic()
            if impl == "rust":
                own = _rust(lam, dlq, watch_port, fn0)
            else:
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                subprocess.run([sys.executable, str(ROOT / "bench" / "redrive_boto3.py"), endpoint, dlq, src,
                                str(messages), str(IMPLS[impl])], check=True, capture_output=True)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                own = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            secs = time.monotonic() - t0
            sqs_cpu = _cpu_s(sqs_pid) - sqs0
            wait_for(lambda: _depth(sqs, src) >= messages, 600, "the source queue to fill", interval=0.2)
            return {"seconds": secs, "msgs_per_s": messages / secs, "moved": _depth(sqs, src),
                    "left": _depth(sqs, dlq), "cpu_ms_per_1000": own * 1000 / (messages / 1000),
                    "emulator_cpu_ms_per_1000": sqs_cpu * 1000 / (messages / 1000)}

        return {i: one(i) for i in IMPLS}


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
