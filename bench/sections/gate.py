"""Section 4: gate wall time. Real CodeDeploy deployments on the emulator, the hook under
`cargo lambda watch --release` (release builds), like tests/test_pre_traffic.py:
one smoke test of 200 ms against ten (at the policy's default concurrency and at 10).

Reported per scenario: the hook's own gate duration (`duration_ms` of its SNS decision)
and the deployment wall time (CreateDeployment until the status is terminal)."""

from __future__ import annotations

import json
import sys
import time

from .common import OUT_DIR, ROOT, build_for_watch, median, not_ready, test_modules


SLEEP_MS = 200
WATCH_CONCURRENCY = 12  # >= the largest number of smoke tests in flight, plus the hook


def _policy(tests: int, concurrency: int | None) -> dict:
    pre = {"budget_seconds": 60, "smoke_tests": [
        {"name": f"t{i}", "payload": {"sleep_ms": SLEEP_MS}, "expect": {"function_error": "none"}}
        for i in range(tests)]}
    if concurrency is not None:
        pre["concurrency"] = concurrency
    return {"version": 1, "pre_traffic": pre}


SCENARIOS = {  # key: (label, smoke tests, policy concurrency or None for the default)
    "one": ("1 test", 1, None),
    "ten_default": ("10 tests, default concurrency", 10, None),
    "ten_c10": ("10 tests, concurrency 10", 10, 10),
}


def _default_concurrency() -> str:
    import re
    m = re.search(r"DEFAULT_CONCURRENCY: usize = (\d+)", (ROOT / "shared/src/policy/mod.rs").read_text())
    return m.group(1) if m else "?"


def run(reps: int = 5) -> dict:
    why = not_ready("pre-traffic-hook")
    if why:
        return {"status": "skipped", "reason": f"pre-traffic-hook is {why}"}
    # Built first, so that no deployment waits on rustc.
    base, note = build_for_watch("pre-traffic-hook", ["example-app", "pre-traffic-hook"], "gate-build")
    if base is None:
        return {"status": "skipped", "reason": note}
    harness, helpers = test_modules(base)
    LocalAws, wait_for = harness.LocalAws, harness.wait_for

    env = {"ROLLGATE_TOPIC_ARN": helpers.TOPIC_ARN, "ROLLGATE_POLICY_PREFIX": helpers.POLICY_PREFIX}
    samples: dict[str, list[dict]] = {k: [] for k in SCENARIOS}
    with LocalAws(env=env, minute_seconds=0.2, hook_timeout_seconds=120, log_dir=OUT_DIR / "logs" / "gate",
                  watch_concurrency=WATCH_CONCURRENCY, release=True) as aws:
        helpers.bootstrap(aws)
        sqs, sns, cd = aws.client("sqs"), aws.client("sns"), aws.client("codedeploy")
        url = sqs.create_queue(QueueName="rollgate-bench-decisions")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=helpers.TOPIC_ARN, Protocol="sqs", Endpoint=arn)
        decisions: dict[str, dict] = {}

        def decision(dep: str):
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                env_ = json.loads(m["Body"])
                attrs = env_.get("MessageAttributes", {})
                decisions[attrs.get("deployment", {}).get("Value", "")] = json.loads(env_["Message"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            return decisions.get(dep)

        def once(key: str, timeout: float = 120) -> dict:
            _, tests, conc = SCENARIOS[key]
            app = helpers.make_app(aws, policy=_policy(tests, conc))
            t0 = time.monotonic()
            dep = helpers.deploy(aws, app)

            def done():
                info = cd.get_deployment(deploymentId=dep)["deploymentInfo"]
                return info if info["status"] in helpers.TERMINAL else None

            info = wait_for(done, timeout, f"deployment {dep}", interval=0.02)
            wall_ms = (time.monotonic() - t0) * 1000
            body = wait_for(lambda: decision(dep), 30, f"the decision for {dep}")
            smoke = [c for c in body["checks"] if c["name"].startswith("smoke[")]
            return {"status": info["status"], "verdict": body["verdict"], "wall_ms": wall_ms,
                    "gate_ms": body["duration_ms"], "smoke_checks": len(smoke)}

        # Warm-up: the first deployments start the hook and enough example-app processes.
        for key in SCENARIOS:
            once(key, timeout=900)
        for rep in range(reps):
            keys = list(SCENARIOS)
            k = rep % len(keys)
            for key in keys[k:] + keys[:k]:
                samples[key].append(once(key))

    rows = []
    for key, (label, tests, conc) in SCENARIOS.items():
        s = samples[key]
        ok = [x for x in s if x["status"] == "Succeeded"]
        rows.append({"key": key, "label": label, "tests": tests,
                     "concurrency": conc if conc is not None else f"{_default_concurrency()} (default)",
                     "n": len(s), "succeeded": len(ok),
                     "gate_ms": median([x["gate_ms"] for x in s]), "wall_ms": median([x["wall_ms"] for x in s])})
    one = rows[0]
    for r in rows[1:]:
        r["gate_ratio"] = r["gate_ms"] / one["gate_ms"] if one["gate_ms"] else None
        r["wall_ratio"] = r["wall_ms"] / one["wall_ms"] if one["wall_ms"] else None
    return {"status": "ran", "reason": "", "note": note, "rows": rows, "reps": reps, "sleep_ms": SLEEP_MS,
            "watch_concurrency": WATCH_CONCURRENCY, "build": "release"}
