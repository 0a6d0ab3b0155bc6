"""Rollouts end to end: the built rollout function under `cargo lambda watch` with its
stack role, its holds as EventBridge Scheduler one-time schedules on the local AWS's
scaled clock (an hour is 12 s at the tests' 0.2 s minute), the judge reading both
versions' metrics while traffic is split by the alias's weights, and alarm-rollback
undoing a rollout in flight."""

import json
import uuid

import pytest

from harness import wait_for
from support.helpers import STACK_FUNCTIONS, alias_version, make_app, topic_inbox
from traffic import HEALTHY, lambda_traffic

ROLLOUT = STACK_FUNCTIONS["rollout"]
SLOW = {"errors": 0.0, "latency": (120, 200)}  # about 2.5x the healthy (40, 90) ms


def policy(steps=None, **rollout) -> dict:
    # The local AWS has its metrics at once; the tests' steps last seconds.
    return {"version": 1,
            "post_traffic": {"period_seconds": 1, "ingestion_delay_seconds": 0, "alpha": 0.05,
                             "canary": {"min_invocations": 20, "min_periods": 3, "warmup_seconds": 0,
                                        "max_error_rate_increase": 0.05, "max_latency_increase_pct": 30},
                             "bake": {"max_error_rate": 0.05}},
            "rollout": {"steps": steps or [{"weight": 20, "hold": "40m"}, {"weight": 50, "hold": "40m"},
                                           {"weight": 100}], **rollout}}


@pytest.fixture(scope="module")
def announced(stack):
    return topic_inbox(stack, "rollgate-rollout-decisions", {"component": ["rollout"]})


def call(stack, payload: dict) -> dict:
    out = stack.client("lambda").invoke(FunctionName=ROLLOUT, Payload=json.dumps(payload))
    body = json.loads(out["Payload"].read())
    assert "FunctionError" not in out, body
    return body


def refused(stack, payload: dict) -> dict:
    out = stack.client("lambda").invoke(FunctionName=ROLLOUT, Payload=json.dumps(payload))
    assert out.get("FunctionError"), "expected a refusal"
    return json.loads(out["Payload"].read())


def start(stack, app, **extra) -> dict:
    return call(stack, {"action": "start", "function": app.name, "version": "2", "requester": "ci", **extra})


def status(stack, app) -> dict:
    return call(stack, {"action": "status", "function": app.name})["rollout"]


def ended(stack, app, timeout: float = 90) -> dict:
    return wait_for(lambda: (s := status(stack, app)) and s["status"] not in ("running", "paused") and s,
                    timeout, f"the rollout of {app.name} to end", interval=0.5)


def routing(stack, app) -> tuple[str, dict]:
    a = stack.client("lambda").get_alias(FunctionName=app.name, Name="live")
    return a["FunctionVersion"], (a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}


def pending(stack, rollout_id: str) -> list[str]:
    """The rollout's schedules that have not fired (nor been deleted)."""
    found = stack.client("scheduler").list_schedules(GroupName="rollgate-rollouts")["Schedules"]
    return [s["Name"] for s in found if s["Name"].startswith(rollout_id)]


def rows(stack, app) -> list[dict]:
    items = stack.client("dynamodb").query(
        TableName="rollgate-ledger", KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={":pk": {"S": f"fn#{app.name}#live"}, ":p": {"S": "rollout#"}})["Items"]
    return [json.loads(i["event"]["S"]) for i in items]


def test_a_healthy_release_advances_through_every_step(stack, announced):
    # The gate's smoke test and an alarm the judge reads at every step (OK: it passes).
    alarm = f"rollout-guard-{uuid.uuid4().hex[:6]}"
    cw = stack.client("cloudwatch")
    cw.put_metric_alarm(AlarmName=alarm, Namespace="Shop", MetricName="Checkout", Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    cw.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="quiet")
    plan = policy()
    plan["post_traffic"]["alarms"] = [alarm]
    plan["pre_traffic"] = {"smoke_tests": [{"name": "health", "payload": {"path": "/health"},
                                            "expect": {"function_error": "none"}}]}
    app = make_app(stack, policy=plan)
    with lambda_traffic(stack, app.name, "live", {"1": HEALTHY, "2": HEALTHY}, every=0.1, per_tick=30):
        out = start(stack, app)
        assert out["rollout"]["status"] == "running", out
        assert routing(stack, app) == ("1", {"2": 0.2})
        seen = wait_for(lambda: routing(stack, app) == ("1", {"2": 0.5}) or None, 40, "the 50 % step")
        assert seen
        final = ended(stack, app)
    assert final["status"] == "succeeded", final
    assert routing(stack, app) == ("2", {})
    assert [r["action"] for r in rows(stack, app)] == ["start", "step", "step"]
    assert [r["verdict"] for r in rows(stack, app)][1:] == ["pass", "pass"]
    assert stack.control(f"invocations?function={app.name}"), "the smoke test ran"
    # The release is in the ledger, succeeded: alarm-rollback's bake window runs from now.
    ledger = stack.client("dynamodb").get_item(TableName="rollgate-ledger", Key={
        "pk": {"S": f"fn#{app.name}#live"},
        "sk": {"S": f"dep#{final['created_ms']:013d}#{final['id']}"}})["Item"]
    assert (ledger["status"]["S"], ledger["origin"]["S"]) == ("Succeeded", "rollout")
    done = announced({"rollout": final["id"], "status": "succeeded"})
    assert "takes all traffic" in json.loads(done["Message"])["reason"]
    # The schedules fired and deleted themselves; the rollout's own alias moves are not
    # recorded again from CloudTrail.
    assert len([s for s in stack.control("schedules") if s["name"].startswith(final["id"])]) == 2
    origins = [i.get("origin", {}).get("S") for i in stack.client("dynamodb").query(
        TableName="rollgate-ledger", KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={":pk": {"S": f"fn#{app.name}#live"}, ":p": {"S": "dep#"}})["Items"]]
    assert origins.count("rollout") == 1 and origins.count("api") == 1, origins  # api: the alias's creation


def test_a_latency_regression_fails_a_step_and_restores_the_old_version(stack, announced):
    app = make_app(stack, policy=policy())
    with lambda_traffic(stack, app.name, "live", {"1": HEALTHY, "2": SLOW}, every=0.1, per_tick=30):
        start(stack, app)
        final = ended(stack, app)
    assert final["status"] == "failed", final
    assert routing(stack, app) == ("1", {})
    msg = announced({"rollout": final["id"], "status": "failed"})
    decision = json.loads(msg["Message"])
    latency = next(c for c in decision["checks"] if c["name"] == "canary.latency")
    assert latency["outcome"] == "fail", latency
    # The failing step's ledger row keeps the checks it was decided on, values and all
    # (the report page shows them), as DynamoDB returns it.
    step = [r for r in rows(stack, app) if r["action"] == "step"][-1]
    assert step["verdict"] == "fail" and step["checks"] == decision["checks"], step


def test_an_undecided_step_is_held_again_then_fails(stack):
    app = make_app(stack, policy=policy(steps=[{"weight": 20, "hold": "20m"}, {"weight": 100}], max_extensions=1))
    start(stack, app)  # no traffic at all: nothing to judge
    final = ended(stack, app)
    assert final["status"] == "failed" and final["extensions"] == 1, final
    assert "could not decide" in final["reason"]
    assert routing(stack, app) == ("1", {})
    assert [r["verdict"] for r in rows(stack, app)][1:] == ["inconclusive", "inconclusive"]


def test_pause_resume_promote_and_abort(stack):
    app = make_app(stack, policy=policy(steps=[{"weight": 10, "hold": "1d"}, {"weight": 100}]))
    started = start(stack, app)
    act = {"function": app.name, "requester": "alice", "reason": "watching the dashboard"}
    rollout_id = started["rollout"]["id"]
    assert pending(stack, rollout_id), "the step's schedule is there"
    assert call(stack, {"action": "pause", **act})["rollout"]["status"] == "paused"
    assert not pending(stack, rollout_id), "a paused rollout keeps no schedule"
    assert refused(stack, {"action": "pause", **act})["errorType"] == "InvalidRequest"
    assert call(stack, {"action": "resume", **act})["rollout"]["status"] == "running"
    promoted = call(stack, {"action": "promote", **act})
    assert promoted["rollout"]["status"] == "succeeded"
    assert "promoted" in promoted["rollout"]["reason"] and "alice" in promoted["rollout"]["reason"]
    assert routing(stack, app) == ("2", {})
    # Every schedule of the rollout is gone (deleted, not fired).
    assert not pending(stack, rollout_id)
    assert not [s for s in stack.control("schedules") if s["name"].startswith(rollout_id)]
    assert [r["action"] for r in rows(stack, app)] == ["start", "pause", "resume", "promote"]

    app = make_app(stack, policy=policy(steps=[{"weight": 10, "hold": "1d"}, {"weight": 100}]))
    start(stack, app)
    act["function"] = app.name
    aborted = call(stack, {"action": "abort", **act})["rollout"]
    assert aborted["status"] == "aborted" and routing(stack, app) == ("1", {})
    assert refused(stack, {"action": "promote", **act})["errorType"] == "InvalidRequest"


def test_bad_requests_are_refused_before_anything_moves(stack):
    app = make_app(stack, policy=policy())
    cases = [
        {"action": "start", "function": app.name, "version": "9"},  # no such version: the gate fails
        {"action": "start", "function": app.name, "version": "2", "steps": [{"weight": 50}]},
        {"action": "start", "function": "arn:aws:lambda:eu-west-1:123456789012:function:x", "version": "2"},
        {"action": "start", "function": app.name, "version": "1"},  # already served
    ]
    first = call(stack, cases[0])
    assert first["verdict"] == "Failed" and "pre-traffic gate" in first["reason"], first
    for payload in cases[1:]:
        assert refused(stack, payload)["errorType"] == "InvalidRequest", payload
    assert routing(stack, app) == ("1", {})


def test_an_alarm_during_a_rollout_restores_the_old_version_and_the_rollout_stops(stack):
    app = make_app(stack, policy=policy(steps=[{"weight": 25, "hold": "2h"}, {"weight": 100}]))
    start(stack, app)
    assert routing(stack, app) == ("1", {"2": 0.25})
    name = f"{app.name}-errors-{uuid.uuid4().hex[:4]}"
    cw = stack.client("cloudwatch")
    cw.put_metric_alarm(AlarmName=name, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
                        Dimensions=[{"Name": "FunctionName", "Value": app.name},
                                    {"Name": "Resource", "Value": f"{app.name}:live"}],
                        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="errors")
    wait_for(lambda: routing(stack, app) == ("1", {}), 30, "alarm-rollback restoring version 1")
    final = ended(stack, app, timeout=60)  # the next step finds the alias moved
    assert final["status"] == "interrupted", final
    assert routing(stack, app) == ("1", {})
    assert alias_version(stack, app) == "1"


def test_a_codedeploy_canary_is_stopped_during_its_shift_by_the_judge(stack):
    """No alarm fires: the judge reads both versions' metrics while CodeDeploy's canary
    splits traffic, and stops the deployment; CodeDeploy restores the old version."""
    cd = stack.client("codedeploy")
    config = f"long-canary-{uuid.uuid4().hex[:6]}"
    # 20 % for 300 "minutes" (60 s at the tests' 0.2 s minute): the judge lands mid-canary.
    cd.create_deployment_config(deploymentConfigName=config, computePlatform="Lambda", trafficRoutingConfig={
        "type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 20, "canaryInterval": 300}})
    app = make_app(stack, config=config, policy=policy(judge_shift_every="30m"))
    spec = json.dumps({"version": 0.0, "Resources": [{app.name: {"Type": "AWS::Lambda::Function", "Properties": {
        "Name": app.name, "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"}}}]})
    with lambda_traffic(stack, app.name, "live", {"1": HEALTHY, "2": SLOW}, every=0.1, per_tick=30):
        dep = cd.create_deployment(applicationName=app.application, deploymentGroupName=app.group,
                                   revision={"revisionType": "AppSpecContent",
                                             "appSpecContent": {"content": spec}})["deploymentId"]
        info = wait_for(lambda: (d := cd.get_deployment(deploymentId=dep)["deploymentInfo"])
                        and d["status"] in ("Succeeded", "Failed", "Stopped") and d, 50,
                        "the deployment to end", interval=0.5)
    assert info["status"] == "Stopped", info
    assert routing(stack, app) == ("1", {})
    judged = [json.loads(i["event"]["S"]) for i in stack.client("dynamodb").query(
        TableName="rollgate-ledger", KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={":pk": {"S": f"fn#{app.name}#live"},
                                   ":p": {"S": f"shift#{dep}#0"}})["Items"]]
    assert judged and judged[-1]["verdict"] == "fail" and judged[-1]["stop"] == "Requested", judged
    failed = [c for c in judged[-1]["checks"] if c["outcome"] == "fail"]
    assert [c["name"] for c in failed] == judged[-1]["failed"], judged[-1]
    assert all(c["expected"] is not None and c["actual"] is not None for c in failed), failed
