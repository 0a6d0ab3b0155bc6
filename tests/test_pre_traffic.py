"""The pre-traffic hook end to end: real CodeDeploy deployments on the emulator, the
built hook under `cargo lambda watch`, the example app's versions as the target."""

import json
import time

from support.helpers import (HOOK_FUNCTION, POST_HOOK_FUNCTION, alias_version, appspec, deploy, make_app, wait_deployment)

SMOKE = {
    "version": 1,
    "pre_traffic": {
        "budget_seconds": 60,
        "checks": {"architecture": "arm64", "required_env": ["TABLE_NAME"]},
        "smoke_tests": [
            {"name": "health", "payload": {"path": "/health"},
             "expect": {"function_error": "none", "json_subset": {"status": "ok"},
                        "json_pointer": {"/echo/path": "/health"}, "body_regex": "\"status\":\\s*\"ok\"",
                        "max_duration_ms": 10000}},
            {"name": "echo", "payload": {"order": 42},
             "expect": {"json_subset": {"echo": {"order": 42}}}},
        ],
    },
}


def hook_reports(stack, deployment_id):
    return stack.control(f"deployments/{deployment_id}/hooks")


def test_healthy_release_succeeds_and_alias_moves(stack, decisions):
    app = make_app(stack, policy=SMOKE)
    dep = deploy(stack, app)
    info = wait_deployment(stack, dep)
    assert info["status"] == "Succeeded", info
    assert alias_version(stack, app) == "2"
    msg = decisions(dep)
    attrs = {k: v["Value"] for k, v in msg["MessageAttributes"].items()}
    assert attrs == {"component": "pre-traffic-hook", "verdict": "Succeeded", "function": app.name,
                     "deployment": dep}
    body = json.loads(msg["Message"])
    names = {c["name"] for c in body["checks"]}
    assert {"config.state", "config.last_update_status", "config.architecture", "config.required_env"} <= names
    assert any(n.startswith("smoke[health]") for n in names) and any(n.startswith("smoke[echo]") for n in names)
    assert all(c["outcome"] == "pass" for c in body["checks"])
    assert body["target_version"] == "2" and body["current_version"] == "1"
    # The smoke tests ran on version 2 itself, never through the alias.
    calls = [c for c in stack.control(f"invocations?function={app.name}")]
    assert calls and all(c["qualifier"] == "2" and c["version"] == "2" for c in calls), calls


def test_failing_smoke_test_fails_and_alias_stays(stack, decisions):
    app = make_app(stack, v2="example-app-broken", policy=SMOKE)
    dep = deploy(stack, app)
    info = wait_deployment(stack, dep)
    assert info["status"] == "Failed", info
    assert alias_version(stack, app) == "1"
    assert info.get("rollbackInfo", {}).get("rollbackDeploymentId")
    body = json.loads(decisions(dep)["Message"])
    assert body["verdict"] == "Failed"
    failed = {c["name"] for c in body["checks"] if c["outcome"] == "fail"}
    assert "smoke[health].function_error" in failed, failed
    hooks = hook_reports(stack, dep)
    assert [h["reportCount"] for h in hooks if h["lifecycleEvent"] == "BeforeAllowTraffic"] == [1], hooks


def test_invalid_policy_fails_naming_the_field(stack, decisions):
    bad = {"version": 1, "pre_traffic": {"concurrency": 0}}
    app = make_app(stack, policy=bad)
    dep = deploy(stack, app)
    assert wait_deployment(stack, dep)["status"] == "Failed"
    assert alias_version(stack, app) == "1"
    body = json.loads(decisions(dep)["Message"])
    assert "pre_traffic.concurrency" in body["reason"], body["reason"]
    # Nothing was invoked for a policy that does not parse.
    assert stack.control(f"invocations?function={app.name}") == []


def test_no_policy_means_configuration_checks_only(stack, decisions):
    app = make_app(stack, policy=None)
    dep = deploy(stack, app)
    assert wait_deployment(stack, dep)["status"] == "Succeeded"
    body = json.loads(decisions(dep)["Message"])
    assert body["policy_source"].startswith("default")
    assert {c["name"] for c in body["checks"]} == {"config.state", "config.last_update_status"}
    assert stack.control(f"invocations?function={app.name}") == []


def test_checks_that_outrun_the_budget_report_failed_in_time(stack, decisions):
    slow = {"version": 1, "pre_traffic": {"budget_seconds": 2, "smoke_tests": [
        {"name": "slow", "payload": {"sleep_ms": 20000}, "expect": {"function_error": "none"}}]}}
    app = make_app(stack, policy=slow)
    started = time.monotonic()
    dep = deploy(stack, app)
    info = wait_deployment(stack, dep, timeout=60)
    elapsed = time.monotonic() - started
    assert info["status"] == "Failed", info
    assert alias_version(stack, app) == "1"
    # Reported within the 2 s budget plus reporting slack, long before the slow invoke ends.
    assert elapsed < 15, elapsed
    body = json.loads(decisions(dep)["Message"])
    assert any(c["outcome"] == "fail" and ("budget" in c["name"] or "budget" in (c.get("detail") or ""))
               for c in body["checks"]), body["checks"]
    hooks = hook_reports(stack, dep)
    assert [h["reportCount"] for h in hooks if h["lifecycleEvent"] == "BeforeAllowTraffic"] == [1], hooks


def test_appspec_naming_a_missing_function_fails_cleanly(stack):
    app = make_app(stack, policy=SMOKE)
    dep = deploy(stack, app, appspec(app, function="no-such-function"))
    # CodeDeploy itself refuses the missing function before any hook runs...
    assert wait_deployment(stack, dep)["status"] == "Failed"
    assert alias_version(stack, app) == "1"
    # ...and the hook, handed that deployment anyway, fails it and names the function.
    out = stack.client("lambda").invoke(
        FunctionName=HOOK_FUNCTION,
        Payload=json.dumps({"DeploymentId": dep, "LifecycleEventHookExecutionId": "e-unknown"}))
    assert "FunctionError" not in out
    body = json.loads(out["Payload"].read())
    assert body["verdict"] == "Failed"
    assert "no-such-function" in json.dumps(body["checks"]), body
    assert stack.control(f"invocations?function={app.name}") == []


def test_malformed_event_is_a_clear_error_without_side_effects(stack):
    lam = stack.client("lambda")
    before = len(stack.control("invocations"))
    out = lam.invoke(FunctionName=HOOK_FUNCTION, Payload=json.dumps({"DeploymentId": "d-XXXXXXXXX"}))
    assert out.get("FunctionError") == "Unhandled"
    err = json.loads(out["Payload"].read())
    assert "LifecycleEventHookExecutionId" in err["errorMessage"], err
    # Only the hook itself was invoked: no smoke test, no report.
    assert len(stack.control("invocations")) == before + 1


def test_unknown_deployment_reports_failed_for_the_known_execution(stack, decisions):
    lam = stack.client("lambda")
    out = lam.invoke(FunctionName=HOOK_FUNCTION,
                     Payload=json.dumps({"DeploymentId": "d-NOTEXIST1", "LifecycleEventHookExecutionId": "e-1"}))
    assert "FunctionError" not in out
    body = json.loads(out["Payload"].read())
    assert body["verdict"] == "Failed"
    assert "d-NOTEXIST1" in body["reason"]


def test_the_readme_recipe_with_a_real_shaped_event_reaches_codedeploy(stack):
    """events/pre-traffic-hook.json carries an execution id shaped like a real one (a
    300-character base64 token, as in the lifecycle event published with
    aws-lambda-rust-runtime's lambda-events fixtures). The hook must hand it to CodeDeploy
    (whose GetDeployment answers that the sample deployment does not exist), not refuse it:
    a refusal here would fail every real release."""
    from pathlib import Path
    event = json.loads((Path(__file__).resolve().parents[1] / "events" / "pre-traffic-hook.json").read_text())
    assert len(event["LifecycleEventHookExecutionId"]) == 300
    for function in (HOOK_FUNCTION, POST_HOOK_FUNCTION):
        out = stack.client("lambda").invoke(FunctionName=function, Payload=json.dumps(event))
        body = json.loads(out["Payload"].read())
        assert "FunctionError" not in out, body
        assert body["verdict"] == "Failed", body
        assert body["reason"] == f"deployment {event['DeploymentId']} does not exist", body
