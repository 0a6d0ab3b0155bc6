"""The post-traffic hook end to end: real CodeDeploy deployments on the emulator with an
AfterAllowTraffic hook, the built hook under `cargo lambda watch`, and Lambda metrics
for both versions written with boto3 while traffic shifts (as Lambda itself would)."""

import json
import threading
import time
import uuid
from contextlib import contextmanager

import pytest

from support.helpers import POST_HOOK_FUNCTION, alias_version, appspec, deploy, make_app, wait_deployment
from traffic import HEALTHY, lambda_traffic

CANARY = "CodeDeployDefault.LambdaCanary10Percent30Minutes"  # 6 s at the tests' 0.2 s minute



def policy(**overrides) -> dict:
    # The local AWS has its metrics at once (no ingestion delay) and the tests' canary
    # lasts seconds (no warm-up). A few hundred invocations cannot show a p99 limit met
    # (that takes about 300 without one slow request): undecided judgements pass.
    post = {
        "bake_minutes": 0.05, "poll_seconds": 1, "period_seconds": 1, "min_invocations": 20,
        "on_no_data": "pass", "alpha": 0.05, "ingestion_delay_seconds": 0,
        "canary": {"max_error_rate_increase": 0.02, "max_latency_increase_pct": 30,
                   "min_invocations": 20, "min_periods": 3, "warmup_seconds": 0},
        "bake": {"max_error_rate": 0.05, "max_p99_ms": 300},
    }
    post.update(overrides)
    # These tests are the hook's: the rollout function's judge during the shift would
    # stop a regressing canary before the hook could fail it.
    return {"version": 1, "post_traffic": post, "rollout": {"judge_shift": False}}


def traffic(stack, app, behaviour: dict[str, dict]):
    return lambda_traffic(stack, app.name, app.alias, behaviour)


def run_deployment(stack, app, behaviour=None, timeout=90):
    spec = appspec(app, after_hook=POST_HOOK_FUNCTION)
    if behaviour is None:
        dep = deploy(stack, app, spec)
        return dep, wait_deployment(stack, dep, timeout=timeout)
    with traffic(stack, app, behaviour):
        dep = deploy(stack, app, spec)
        return dep, wait_deployment(stack, dep, timeout=timeout)


def post_hook(stack, dep) -> dict:
    hooks = [h for h in stack.control(f"deployments/{dep}/hooks") if h["lifecycleEvent"] == "AfterAllowTraffic"]
    assert len(hooks) == 1, hooks
    return hooks[0]


def body(decisions, dep) -> dict:
    return json.loads(decisions_for(decisions, dep)["Message"])


def decisions_for(decisions, dep):
    # The pre-traffic hook announces on the same topic: pick the post-traffic decision.
    return decisions(dep, component="post-traffic-hook")


def outcomes(decision: dict) -> dict[str, str]:
    return {c["name"]: c["outcome"] for c in decision["checks"]}


def test_healthy_release_passes(stack):
    app = make_app(stack, policy=policy(), config=CANARY)
    dep, info = run_deployment(stack, app, {"1": HEALTHY, "2": HEALTHY})
    assert info["status"] == "Succeeded", info
    assert alias_version(stack, app) == "2"
    hook = post_hook(stack, dep)
    assert hook["status"] == "Succeeded" and hook["reportCount"] == 1
    out = stack.client("lambda").invoke(FunctionName=POST_HOOK_FUNCTION, Payload=json.dumps(
        {"DeploymentId": dep, "LifecycleEventHookExecutionId": hook["lifecycleEventHookExecutionId"]}))
    # A late duplicate invoke re-decides but CodeDeploy keeps the first report.
    decision = json.loads(out["Payload"].read())
    assert decision["component"] == "post-traffic-hook"
    assert post_hook(stack, dep)["reportCount"] == 2  # the duplicate was refused (AlreadyCompleted)


def test_error_regression_fails_and_alias_returns(stack, decisions):
    app = make_app(stack, policy=policy(), config=CANARY)
    dep, info = run_deployment(stack, app, {"1": HEALTHY, "2": {"errors": 0.4, "latency": (40, 90)}})
    assert info["status"] == "Failed", info
    assert alias_version(stack, app) == "1"
    assert info.get("rollbackInfo", {}).get("rollbackDeploymentId")
    assert post_hook(stack, dep)["reportCount"] == 1
    decision = json.loads(decisions_for(decisions, dep)["Message"])
    result = outcomes(decision)
    assert result["canary.error_rate"] == "fail", decision["checks"]


def test_p99_regression_fails_and_alias_returns(stack, decisions):
    app = make_app(stack, policy=policy(), config=CANARY)
    dep, info = run_deployment(stack, app, {"1": HEALTHY, "2": {"errors": 0.0, "latency": (400, 500)}})
    assert info["status"] == "Failed", info
    assert alias_version(stack, app) == "1"
    decision = json.loads(decisions_for(decisions, dep)["Message"])
    result = outcomes(decision)
    assert result["canary.latency"] == "fail", decision["checks"]
    latency = next(c for c in decision["checks"] if c["name"] == "canary.latency")
    test = latency["actual"]["test"]
    # Judged on request counts per latency bin (CloudWatch's trimmed counts), not on
    # per-period p99 values: every new request is slower than every old one, scaled.
    assert test["p_worse"] < 0.05 and test["slower_probability"] > 0.9, test
    assert len(latency["actual"]["edges_ms"]) >= 2 and sum(test["new_counts"]) >= 20, latency


def test_errors_only_on_the_old_version_do_not_fail_it(stack, decisions):
    app = make_app(stack, policy=policy(), config=CANARY)
    dep, info = run_deployment(stack, app, {"1": {"errors": 0.5, "latency": (40, 90)}, "2": HEALTHY})
    assert info["status"] == "Succeeded", info
    assert alias_version(stack, app) == "2"
    decision = json.loads(decisions_for(decisions, dep)["Message"])
    result = outcomes(decision)
    assert result["canary.error_rate"] == "pass" and result["bake.error_rate"] == "pass", decision["checks"]
    canary = next(c for c in decision["checks"] if c["name"] == "canary.error_rate")
    assert canary["actual"]["old"]["error_rate"] > 0.3


@pytest.mark.parametrize("on_no_data,status", [("fail", "Failed"), ("pass", "Succeeded")])
def test_no_traffic_follows_on_no_data(stack, decisions, on_no_data, status):
    app = make_app(stack, policy=policy(on_no_data=on_no_data, bake_minutes=0.02))
    dep, info = run_deployment(stack, app, behaviour=None)
    assert info["status"] == status, info
    assert alias_version(stack, app) == ("1" if status == "Failed" else "2")
    decision = json.loads(decisions_for(decisions, dep)["Message"])
    traffic_check = next(c for c in decision["checks"] if c["name"] == "bake.traffic")
    assert traffic_check["actual"]["invocations"] == 0
    assert on_no_data in traffic_check["detail"]
    # No canary window with data: the comparison says so instead of guessing.
    assert outcomes(decision)["canary.error_rate"] == "inconclusive"


@pytest.mark.parametrize("state,status", [("OK", "Succeeded"), ("ALARM", "Failed")])
def test_an_alarm_the_policy_names_is_read_and_judged(stack, decisions, state, status):
    """The policy's `alarms` are read with DescribeAlarms during the bake: one in ALARM
    fails the release. (The alarm watches no function, so alarm-rollback leaves it be.)"""
    name = f"checkout-errors-{uuid.uuid4().hex[:6]}"
    cw = stack.client("cloudwatch")
    cw.put_metric_alarm(AlarmName=name, Namespace="Custom/Checkout", MetricName="Errors", Statistic="Sum",
                        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")
    app = make_app(stack, policy=policy(on_no_data="pass", bake_minutes=0.02, alarms=[name]))
    dep, info = run_deployment(stack, app, behaviour=None)
    assert info["status"] == status, info
    decision = json.loads(decisions_for(decisions, dep)["Message"])
    check = next(c for c in decision["checks"] if c["name"] == f"alarm[{name}]")
    assert check["outcome"] == ("pass" if state == "OK" else "fail"), check
    assert check["actual"]["state"] == state


def test_bake_longer_than_a_run_continues_and_reports_once(stack, decisions):
    # 15 s of bake; one run is capped at ROLLGATE_MAX_RUN_SECONDS (10 s) in the tests.
    app = make_app(stack, policy=policy(bake_minutes=0.25))
    started = time.monotonic()
    dep, info = run_deployment(stack, app, {"1": HEALTHY, "2": HEALTHY})
    assert info["status"] == "Succeeded", info
    assert time.monotonic() - started >= 15
    hook = post_hook(stack, dep)
    assert hook["reportCount"] == 1 and hook["reportedStatuses"] == ["Succeeded"], hook
    runs = [i for i in stack.control(f"invocations?function={POST_HOOK_FUNCTION}")
            if (i.get("payload") or {}).get("DeploymentId") == dep]
    continued = [r for r in runs if "rollgate_continuation" in (r.get("payload") or {})]
    assert len(runs) >= 2 and len(continued) == len(runs) - 1, runs
    hops = [r["payload"]["rollgate_continuation"]["hop"] for r in continued]
    assert hops == sorted(hops)
    decision = json.loads(decisions_for(decisions, dep)["Message"])
    evidence = next(c for c in decision["checks"] if c["name"] == "bake.evidence")
    assert evidence["actual"]["invocations_of_hook"] == len(runs)


@contextmanager
def endpoint(statuses: list[int]):
    """A local HTTP endpoint answering GET /health with the given statuses in turn (the
    last one repeats); yields its URL and the list of paths it served."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    served: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            status = statuses[min(len(served), len(statuses) - 1)]
            served.append(self.path)
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health", served
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("statuses,status", [([200], "Succeeded"), ([200, 503], "Failed")])
def test_http_probes_run_during_the_bake(stack, decisions, statuses, status):
    with endpoint(statuses) as (url, served):
        probe = {"name": "health", "url": url, "count": 2, "max_latency_ms": 2000}
        app = make_app(stack, policy=policy(bake_minutes=0.05, probes=[probe]))
        dep, info = run_deployment(stack, app, {"1": HEALTHY, "2": HEALTHY})
    assert info["status"] == status, info
    assert alias_version(stack, app) == ("2" if status == "Succeeded" else "1")
    assert served and set(served) == {"/health"}
    check = next(c for c in json.loads(decisions_for(decisions, dep)["Message"])["checks"]
                 if c["name"] == "probe[health]")
    assert check["outcome"] == ("pass" if status == "Succeeded" else "fail"), check
    assert check["actual"]["sent"] == len(served)
    if status == "Failed":
        assert check["actual"]["wrong_status"] >= 1 and "status 503" in check["detail"]


def test_the_hook_carries_the_judgements_made_during_the_traffic_shift(stack, decisions):
    """The rollout function judges CodeDeploy's canary while traffic is split and keeps
    each round in the ledger (shift#<deployment>#<round>); the hook reads them back into
    its own decision (its role's dynamodb:Query)."""
    p = policy()
    p["rollout"] = {"judge_shift": True, "judge_shift_every": "5m"}  # 1 s at the tests' minute
    app = make_app(stack, policy=p, config=CANARY)
    dep, info = run_deployment(stack, app, {"1": HEALTHY, "2": HEALTHY})
    assert info["status"] == "Succeeded", info
    decision = body(decisions, dep)
    shift = next((c for c in decision["checks"] if c["name"] == "shift.judgements"), None)
    assert shift, decision["checks"]
    judged = shift["actual"] or {}  # null: the ledger could not be read
    assert shift["outcome"] in ("pass", "inconclusive") and judged.get("rounds", 0) >= 1, shift
    assert judged["last"]["weight"] == pytest.approx(0.1), shift
