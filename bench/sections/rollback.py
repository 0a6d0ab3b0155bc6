"""Section 2: rollback reaction. On the emulator, a release v1 -> v2 finishes, its
CodeDeploy SUCCESS event is handed to alarm-rollback (which records it in the ledger),
then an EventBridge "CloudWatch Alarm State Change" naming the function's alias is.
Measured on release builds (`cargo lambda watch --release`): from that Invoke to the
arrival of alarm-rollback's `UpdateAlias`, and every AWS call it made on the way
(through the recording proxy in awscalls.py)."""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import datetime, timezone

from .awscalls import CallLog
from .common import OUT_DIR, build_for_watch, median, not_ready, test_modules


# What the path cannot do without before `UpdateAlias`: read the ledger (which version was
# good) and the alias (where it points, and its RevisionId) - independent, so one round
# trip together - and the exactly-once claim (a conditional write).
MINIMUM_CALLS = 3
MINIMUM_ROUND_TRIPS = 2
# The reaction target (issue 17): delivery to `UpdateAlias` on a release build.
REACTION_TARGET_MS = 100


def _alarm_event(function: str, alias: str) -> dict:
    now = datetime.now(timezone.utc)
    name = f"{function}-errors-{uuid.uuid4().hex[:6]}"
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch", "account": "123456789012", "region": "us-east-1",
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"],
        "detail": {
            "alarmName": name,
            "state": {"value": "ALARM", "reason": "bench", "timestamp": now.isoformat(timespec="milliseconds")},
            "previousState": {"value": "OK", "reason": "bench", "timestamp": now.isoformat(timespec="milliseconds")},
            "configuration": {"metrics": [{"id": "m1", "returnData": True, "metricStat": {
                "metric": {"namespace": "AWS/Lambda", "name": "Errors",
                           "dimensions": {"FunctionName": function, "Resource": f"{function}:{alias}"}},
                "period": 60, "stat": "Sum"}}]},
        },
    }


def _deployment_event(record: dict) -> dict:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": record["DetailType"],
            "source": record["Source"], "account": "123456789012", "region": "us-east-1",
            "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "resources": record.get("Resources", []), "detail": record["Detail"]}


def run(reps: int = 3) -> dict:
    why = not_ready("alarm-rollback")
    if why:
        return {"status": "skipped", "reason": f"alarm-rollback is {why}"}
    base, note = build_for_watch("alarm-rollback", ["example-app", "pre-traffic-hook", "alarm-rollback"],
                                 "rollback-build")
    if base is None:
        return {"status": "skipped", "reason": note}
    harness, helpers = test_modules(base)
    LocalAws = harness.LocalAws

    proxy = CallLog()
    # The stack's own alarm-rollback (bootstrap deploys infra/template.yaml), with its role
    # and its ledger: a function of our own would be refused the ledger by that role.
    function, ledger = helpers.STACK_FUNCTIONS["alarm-rollback"], helpers.LEDGER_TABLE
    env = {"ROLLGATE_TOPIC_ARN": helpers.TOPIC_ARN, "ROLLGATE_POLICY_PREFIX": helpers.POLICY_PREFIX,
           "ROLLGATE_LEDGER_TABLE": ledger, "AWS_ENDPOINT_URL": proxy.url}
    samples, notes = [], []
    try:
        with LocalAws(env=env, minute_seconds=0.2, hook_timeout_seconds=120,
                      log_dir=OUT_DIR / "logs" / "rollback", release=True) as aws:
            host, port = aws.endpoint.removeprefix("http://").split(":")
            proxy.upstream = (host, int(port))
            helpers.bootstrap(aws)
            lam = aws.client("lambda")

            def invoke(event: dict) -> dict:
                out = lam.invoke(FunctionName=function, Payload=json.dumps(event))
                body = json.loads(out["Payload"].read() or b"null")
                if out.get("FunctionError"):
                    raise RuntimeError(f"alarm-rollback failed: {json.dumps(body)[:300]}")
                return body

            # The delivery path alone: an alarm going to OK is logged and ignored, no AWS call.
            overhead = []
            for _ in range(reps + 1):
                quiet = _alarm_event("nothing", "live")
                quiet["detail"]["state"]["value"] = "OK"
                t0 = time.monotonic_ns()
                invoke(quiet)
                overhead.append((time.monotonic_ns() - t0) / 1e6)
            for rep in range(reps + 1):  # the first one also starts the function: not counted
                app = helpers.make_app(aws)
                dep = helpers.deploy(aws, app)
                info = helpers.wait_deployment(aws, dep)
                if info["status"] != "Succeeded":
                    raise RuntimeError(f"the release did not succeed: {info.get('errorInformation')}")
                for rec in aws.control("events"):
                    if rec["Detail"].get("deploymentId") == dep:
                        invoke(_deployment_event(rec))
                t0 = time.monotonic_ns()
                result = invoke(_alarm_event(app.name, app.alias))
                t_end = time.monotonic_ns()
                calls = proxy.between(t0, t_end)
                updates = [c for c in calls if c["op"] == "lambda:UpdateAlias"]
                if not updates:
                    notes.append(json.dumps(result)[:400])
                    continue
                before = [c["op"] for c in calls if c["t_ns"] < updates[0]["t_ns"]]
                after = [c["op"] for c in calls if c["t_ns"] > updates[0]["t_ns"]]
                moved = helpers.alias_version(aws, app) == "1"
                if rep > 0:
                    samples.append({"reaction_ms": (updates[0]["t_ns"] - t0) / 1e6,
                                    "invoke_ms": (t_end - t0) / 1e6, "calls_to_update": len(before),
                                    "calls_total": len(calls), "ops_before": before, "ops_after": after,
                                    "alias_back_on_1": moved})
    finally:
        proxy.close()
    if not samples:
        return {"status": "skipped", "reason": "alarm-rollback made no UpdateAlias call"
                + (f" (it answered {notes[0]})" if notes else "")}
    s0 = samples[0]
    return {"status": "ran", "reason": "", "note": note, "reps": len(samples),
            "reaction_ms": median([s["reaction_ms"] for s in samples]),
            "invoke_ms": median([s["invoke_ms"] for s in samples]),
            "calls_to_update": median([s["calls_to_update"] for s in samples]),
            "calls_total": median([s["calls_total"] for s in samples]),
            "ops_before": s0["ops_before"], "ops_after": s0["ops_after"],
            "alias_back_on_1": all(s["alias_back_on_1"] for s in samples),
            "minimum_calls": MINIMUM_CALLS, "minimum_round_trips": MINIMUM_ROUND_TRIPS,
            "reaction_target_ms": REACTION_TARGET_MS, "build": "release",
            "delivery_overhead_ms": median(overhead[1:])}
