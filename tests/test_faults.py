"""Every rollgate function under injected faults (POST /_rollgate/faults): it reaches the
correct outcome, or a safe one, and says so.

- pre-traffic hook: transient faults on each AWS call it makes end in the right verdict
  after retries; persistent ones in a reported `Failed`; slow calls and timeouts still
  report before the deadline;
- post-traffic hook: GetMetricData throttled, failing or slow: the right verdict or
  `Failed`, always reported and announced;
- alarm-rollback: UpdateAlias / PutItem / Publish failing, then the same event delivered
  again: exactly one effective UpdateAlias, the ledger consistent;
- dlq-redrive: randomized fault schedules (hypothesis): every message ends in the
  destination or the DLQ, unchanged, with no more copies than the report's `duplicates`.

These tests run their own emulator and watch (the module's `fstack`) with the SDK's
production retry setting (3 attempts): the shared stack turns SDK retries off, which
would hide exactly what is tested here. Figures (faults fired per function, schedules,
messages conserved) are printed and written to target/test-logs/faults-figures.json.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter, defaultdict

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from support.helpers import (ACCOUNT, HOOK_FUNCTION, LEDGER_TABLE, LOG_DIR, POLICY_PREFIX, POST_HOOK_FUNCTION,
                      POST_HOOK_MAX_RUN_SECONDS, REDRIVE_ALLOW, REGION, ROLE, TOPIC_ARN, alias_version, appspec,
                      bootstrap, create_function, deploy, make_app)
from harness import LocalAws, wait_for
from traffic import HEALTHY, lambda_traffic

ROLLBACK_FUNCTION = "rollgate-alarm-rollback"
REDRIVE_FUNCTION = "redrive-dlq-redrive"
PROVENANCE = "rollgate.redrive"
CANARY = "CodeDeployDefault.LambdaCanary10Percent30Minutes"  # 6 s at 0.2 s per minute
FIGURES_FILE = LOG_DIR / "faults-figures.json"

FIRED: Counter = Counter()          # faults fired, per function under test
FIGURES: dict = defaultdict(int)    # schedules tried, messages conserved, ...


@pytest.fixture(scope="module")
def fstack():
    env = {"ROLLGATE_TOPIC_ARN": TOPIC_ARN, "ROLLGATE_POLICY_PREFIX": POLICY_PREFIX,
           "ROLLGATE_SELF_FUNCTION": POST_HOOK_FUNCTION, "ROLLGATE_MAX_RUN_SECONDS": POST_HOOK_MAX_RUN_SECONDS,
           "ROLLGATE_LEDGER_TABLE": LEDGER_TABLE, "ROLLGATE_REDRIVE_ALLOW": REDRIVE_ALLOW,
           # What the functions use on AWS: retries are part of what is under test.
           "ROLLGATE_AWS_MAX_ATTEMPTS": "3"}
    started = time.monotonic()
    with LocalAws(env=env, minute_seconds=0.2, hook_timeout_seconds=120, log_dir=LOG_DIR / "faults") as aws:
        bootstrap(aws, {"AlarmNamePrefix": "routed-"})
        aws.decisions = Decisions(aws)
        yield aws
    FIGURES["wall_seconds"] = round(time.monotonic() - started, 1)
    figures = {"faults_fired": dict(FIRED), **FIGURES}
    FIGURES_FILE.parent.mkdir(parents=True, exist_ok=True)
    FIGURES_FILE.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nfault-injection figures: {json.dumps(figures)}")


class Decisions:
    """Every decision published on the topic, read through a subscribed queue."""

    def __init__(self, s: LocalAws) -> None:
        self.sqs = s.client("sqs")
        self.url = self.sqs.create_queue(QueueName="faults-decisions")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s.client("sns").subscribe(TopicArn=TOPIC_ARN, Protocol="sqs", Endpoint=arn)
        self.seen: list[dict] = []

    def find(self, timeout: float = 30, **attrs: str) -> list[dict]:
        """The decisions whose message attributes include `attrs` (at least one)."""

        def look():
            for m in self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                              WaitTimeSeconds=1).get("Messages", []):
                self.seen.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
            return [e for e in self.seen if all(
                e.get("MessageAttributes", {}).get(k, {}).get("Value") == v for k, v in attrs.items())]

        return wait_for(look, timeout, f"a decision with {attrs}")


class Faults:
    def __init__(self, s: LocalAws, function: str) -> None:
        self.url, self.function = f"{s.endpoint}/_rollgate/faults", function

    def __enter__(self) -> "Faults":
        return self

    def add(self, **spec) -> None:
        requests.post(self.url, json=spec, timeout=5).raise_for_status()

    def listing(self) -> list[dict]:
        return requests.get(self.url, timeout=5).json()

    def clear(self) -> int:
        """Remove every fault; count what fired against the function under test."""
        fired = sum(f["fired"] for f in self.listing())
        FIRED[self.function] += fired
        requests.delete(self.url, timeout=5).raise_for_status()
        return fired

    def __exit__(self, *exc) -> None:
        self.clear()


def wait_done(s: LocalAws, dep: str, timeout: float = 120) -> dict:
    """Like support.helpers' wait_deployment, through BatchGetDeployments so that the test's
    polling never meets a fault injected on GetDeployment."""
    cd = s.client("codedeploy")

    def done():
        info = cd.batch_get_deployments(deploymentIds=[dep])["deploymentsInfo"][0]
        return info if info["status"] in ("Succeeded", "Failed", "Stopped") else None

    return wait_for(done, timeout, f"deployment {dep} to finish", interval=0.2)


def hook_records(s: LocalAws, dep: str, event: str) -> list[dict]:
    return [h for h in s.control(f"deployments/{dep}/hooks") if h["lifecycleEvent"] == event]


# --- pre-traffic hook ---------------------------------------------------------------------

SMOKE = {"version": 1, "pre_traffic": {
    "budget_seconds": 30, "checks": {"architecture": "arm64", "required_env": ["TABLE_NAME"]},
    "smoke_tests": [{"name": "health", "payload": {"path": "/health"}, "retries": 2,
                     "expect": {"function_error": "none", "json_subset": {"status": "ok"}}}]}}

# Every AWS call the pre-traffic hook makes, with the target that singles out this test's
# calls ("app" is replaced by the function's name), and the answer it gets.
PRE_CALLS = [
    ("GetDeployment", None, "ThrottlingException", 400),
    ("GetApplicationRevision", None, "InternalFailure", 500),
    ("GetParameter", "app", "ThrottlingException", 400),
    ("GetFunctionConfiguration", "app", "ServiceException", 500),
    ("Invoke", "app", "TooManyRequestsException", 429),
    ("PutLifecycleEventHookExecutionStatus", None, "ThrottlingException", 400),
]


def pre_decision(s: LocalAws, dep: str) -> dict:
    env = s.decisions.find(deployment=dep, component="pre-traffic-hook")[0]
    return json.loads(env["Message"])


def test_pre_traffic_transient_faults_on_every_call_end_in_the_right_verdict(fstack):
    """Each call the hook makes fails twice (throttled or 5xx), all in one deployment:
    the SDK's retries (the gate's own for the smoke test) carry it to `Succeeded`."""
    app = make_app(fstack, policy=SMOKE)
    started = time.monotonic()
    with Faults(fstack, "pre-traffic-hook") as faults:
        for operation, target, code, status in PRE_CALLS:
            faults.add(operation=operation, target=app.name if target else None, count=2, code=code,
                       status=status)
        dep = deploy(fstack, app)
        info = wait_done(fstack, dep)
        fired = {f["operation"]: f["fired"] for f in faults.listing()}
    assert fired == {c[0]: 2 for c in PRE_CALLS}, fired
    assert info["status"] == "Succeeded", info
    assert alias_version(fstack, app) == "2"
    assert pre_decision(fstack, dep)["verdict"] == "Succeeded"
    [hook] = hook_records(fstack, dep, "BeforeAllowTraffic")
    assert hook["reportedStatuses"] == ["Succeeded"], hook
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("operation,target,code,status", PRE_CALLS[:5], ids=[c[0] for c in PRE_CALLS[:5]])
def test_pre_traffic_persistent_faults_report_failed(fstack, operation, target, code, status):
    app = make_app(fstack, policy=SMOKE)
    started = time.monotonic()
    with Faults(fstack, "pre-traffic-hook") as faults:
        faults.add(operation=operation, target=app.name if target else None, fraction=1.0, code=code,
                   status=status)
        dep = deploy(fstack, app)
        info = wait_done(fstack, dep)
    assert info["status"] == "Failed", info
    assert alias_version(fstack, app) == "1"
    [hook] = hook_records(fstack, dep, "BeforeAllowTraffic")
    assert hook["reportedStatuses"] == ["Failed"], hook  # reported by the hook, not timed out
    decision = pre_decision(fstack, dep)
    assert decision["verdict"] == "Failed"
    assert operation in json.dumps(decision), decision  # the failed call is named
    assert time.monotonic() - started < 60


def test_pre_traffic_report_refused_fails_the_invocation_and_the_retry_reports(fstack):
    """CodeDeploy refusing every report: the hook gives up within bounds and fails its
    invocation (so Lambda's asynchronous retry runs it again); that retry reports."""
    app = make_app(fstack, policy=SMOKE)
    lam = fstack.client("lambda")
    with Faults(fstack, "pre-traffic-hook") as faults:
        faults.add(operation="PutLifecycleEventHookExecutionStatus", fraction=1.0, code="InternalFailure",
                   status=500)
        started = time.monotonic()
        dep = deploy(fstack, app)

        def runs():
            return [i for i in fstack.control(f"invocations?function={HOOK_FUNCTION}")
                    if (i.get("payload") or {}).get("DeploymentId") == dep]

        def given_up():
            # The first attempt's outcome: the record's own, or (once Lambda's retry, a
            # scaled minute later, has started) the first of its earlier attempts.
            found = runs()
            if not found:
                return None
            first = (found[0].get("earlier") or [found[0]])[0]
            return first if first["status"] not in (None, 202) else None

        run = wait_for(given_up, 120, "the hook to give up reporting", interval=0.2)
        gave_up_after = time.monotonic() - started
    # The retry may have begun while the fault was still there: its own reporting retries
    # outlast that, so it reports once the fault is gone.
    assert run["functionError"] == "Unhandled", run
    assert "reporting to CodeDeploy failed" in json.dumps(run["response"]), run
    assert lam.get_alias(FunctionName=app.name, Name="live")["FunctionVersion"] == "1"
    # Lambda retries the asynchronous invocation (after a scaled minute); the fault gone,
    # the retry reports, once.
    info = wait_done(fstack, dep)
    assert info["status"] == "Succeeded", info
    [hook] = hook_records(fstack, dep, "BeforeAllowTraffic")
    assert hook["reportedStatuses"] == ["Succeeded"], hook
    # The hook reports before its invocation returns: wait for the record to settle.
    [run] = wait_for(lambda: [r for r in runs() if r["status"] == 200] or None, 30,
                     "the retried invocation to return")
    assert run["attempts"] >= 2, run
    FIGURES["pre_report_give_up_seconds"] = round(gave_up_after, 1)
    assert gave_up_after < 90


def test_pre_traffic_slow_calls_and_a_dropped_connection_still_succeed(fstack):
    app = make_app(fstack, policy=SMOKE)
    started = time.monotonic()
    with Faults(fstack, "pre-traffic-hook") as faults:
        faults.add(operation="*", fraction=1.0, delay_ms=300)
        # One policy read held for 1.5 s, then the connection dropped without an answer.
        faults.add(operation="GetParameter", target=app.name, count=1, timeout=True, hold_ms=1500)
        dep = deploy(fstack, app)
        info = wait_done(fstack, dep)
        fired = faults.listing()
    assert info["status"] == "Succeeded", info
    assert fired[1]["fired"] == 1 and fired[0]["fired"] >= 5, fired
    assert pre_decision(fstack, dep)["verdict"] == "Succeeded"
    assert time.monotonic() - started < 60


def test_pre_traffic_smoke_invoke_that_never_answers_fails_within_the_budget(fstack):
    policy = json.loads(json.dumps(SMOKE))
    policy["pre_traffic"]["budget_seconds"] = 3
    app = make_app(fstack, policy=policy)
    with Faults(fstack, "pre-traffic-hook") as faults:
        faults.add(operation="Invoke", target=app.name, fraction=1.0, timeout=True, hold_ms=60_000)
        started = time.monotonic()
        dep = deploy(fstack, app)
        info = wait_done(fstack, dep)
        elapsed = time.monotonic() - started
    assert info["status"] == "Failed", info
    assert alias_version(fstack, app) == "1"
    [hook] = hook_records(fstack, dep, "BeforeAllowTraffic")
    assert hook["reportedStatuses"] == ["Failed"], hook
    checks = pre_decision(fstack, dep)["checks"]
    assert any(c["outcome"] == "fail" and "budget" in json.dumps(c) for c in checks), checks
    # 3 s of budget plus reporting, not the 60 s the invoke is held.
    assert elapsed < 20, elapsed
    FIGURES["pre_hung_invoke_report_seconds"] = round(elapsed, 1)


# --- post-traffic hook --------------------------------------------------------------------

def post_policy(**overrides) -> dict:
    post = {"bake_minutes": 0.05, "poll_seconds": 1, "period_seconds": 1, "min_invocations": 20,
            "on_no_data": "pass", "alpha": 0.05, "ingestion_delay_seconds": 0,
            "canary": {"max_error_rate_increase": 0.02, "max_latency_increase_pct": 30,
                       "min_invocations": 20, "min_periods": 3, "warmup_seconds": 0},
            "bake": {"max_error_rate": 0.05, "max_p99_ms": 300}}
    post.update(overrides)
    return {"version": 1, "post_traffic": post}


POST_CASES = [
    ("throttled-twice", {"count": 2, "code": "Throttling", "status": 400}, "Succeeded"),
    ("slow", {"fraction": 1.0, "delay_ms": 400}, "Succeeded"),
    ("5xx-always", {"fraction": 1.0, "code": "InternalServiceError", "status": 500}, "Failed"),
]


@pytest.mark.parametrize("name,fault,status", POST_CASES, ids=[c[0] for c in POST_CASES])
def test_post_traffic_metric_faults_decide_or_fail_and_always_report(fstack, name, fault, status):
    app = make_app(fstack, policy=post_policy(), config=CANARY)
    with Faults(fstack, "post-traffic-hook") as faults:
        faults.add(operation="GetMetricData", **fault)
        with lambda_traffic(fstack, app.name, app.alias, {"1": HEALTHY, "2": HEALTHY}):
            started = time.monotonic()
            dep = deploy(fstack, app, appspec(app, after_hook=POST_HOOK_FUNCTION))
            info = wait_done(fstack, dep)
            elapsed = time.monotonic() - started
        assert faults.listing()[0]["fired"] >= (2 if "count" in fault else 1)
    assert info["status"] == status, info
    assert alias_version(fstack, app) == ("2" if status == "Succeeded" else "1")
    [hook] = hook_records(fstack, dep, "AfterAllowTraffic")
    assert hook["reportedStatuses"] == [status], hook  # reported, never left to time out
    decision = json.loads(fstack.decisions.find(deployment=dep, component="post-traffic-hook")[0]["Message"])
    assert decision["verdict"] == status
    if status == "Failed":
        metrics = next(c for c in decision["checks"] if c["name"] == "metrics")
        assert metrics["outcome"] == "fail" and "GetMetricData" in metrics["detail"], metrics
    assert elapsed < 60, elapsed


# --- alarm-rollback -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rollback(fstack):
    """The stack's ledger, alarm-rollback and the rule feeding it CodeDeploy's state changes.
    Alarm events are not routed (the stack is deployed with an alarm-name prefix no test
    alarm has): each test delivers them itself, as often as it likes."""
    return fstack


def ledger(s: LocalAws, app, prefix: str) -> list[dict]:
    return s.client("dynamodb").query(
        TableName=LEDGER_TABLE, KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={":pk": {"S": f"fn#{app.name}#live"}, ":p": {"S": prefix}})["Items"]


def released_ten_minutes_ago(s: LocalAws, app) -> None:
    spec = json.dumps({"version": 0.0, "Resources": [{app.name: {"Type": "AWS::Lambda::Function", "Properties": {
        "Name": app.name, "Alias": app.alias, "CurrentVersion": "1", "TargetVersion": "2"}}}]})
    dep = deploy(s, app, spec)
    assert wait_done(s, dep)["status"] == "Succeeded"
    # The CodeDeploy release (the alias's creation is in the ledger too, from CloudTrail).
    item = wait_for(lambda: next((i for i in ledger(s, app, "dep#") if i["status"]["S"] == "Succeeded"
                                  and i.get("origin", {}).get("S", "codedeploy") == "codedeploy"), None),
                    40, "the release in the ledger", interval=0.2)
    s.client("dynamodb").update_item(
        TableName=LEDGER_TABLE, Key={"pk": item["pk"], "sk": item["sk"]}, UpdateExpression="SET ended_ms = :e",
        ExpressionAttributeValues={":e": {"N": str(int(time.time() * 1000 - 10 * 60_000))}})


def alarm_event(s: LocalAws, app) -> dict:
    """Set an alarm on the function to ALARM and return the EventBridge event it made."""
    name = f"{app.name}-errors"
    cw = s.client("cloudwatch")
    cw.put_metric_alarm(
        AlarmName=name, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "FunctionName", "Value": app.name}, {"Name": "Resource", "Value": f"{app.name}:live"}])
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="errors")
    e = next(e for e in s.control("alarm-events") if e["Detail"]["alarmName"] == name)
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": e["DetailType"], "source": e["Source"],
            "account": ACCOUNT, "time": "2026-01-01T00:00:00Z", "region": REGION, "resources": e["Resources"],
            "detail": e["Detail"]}


def deliver(s: LocalAws, event: dict) -> tuple[bool, dict]:
    """One delivery of the event: (the invocation failed, its answer)."""
    out = s.client("lambda").invoke(FunctionName=ROLLBACK_FUNCTION, Payload=json.dumps(event))
    return bool(out.get("FunctionError")), json.loads(out["Payload"].read())


ROLLBACK_CASES = [
    ("UpdateAlias-5xx-always", dict(operation="UpdateAlias", fraction=1.0, code="ServiceException", status=500)),
    ("UpdateAlias-throttled-twice", dict(operation="UpdateAlias", count=2, code="TooManyRequestsException",
                                         status=429)),
    ("PutItem-claim-5xx-always", dict(operation="PutItem", target="rb#", fraction=1.0, code="InternalServerError",
                                      status=500)),
    ("PutItem-claim-throttled-twice", dict(operation="PutItem", target="rb#", count=2,
                                           code="ProvisionedThroughputExceededException", status=400)),
    ("Publish-5xx-always", dict(operation="Publish", target="app", fraction=1.0, code="InternalError",
                                status=500)),
]


@pytest.mark.parametrize("name,fault", ROLLBACK_CASES, ids=[c[0] for c in ROLLBACK_CASES])
def test_rollback_under_faults_acts_exactly_once(rollback, name, fault):
    s = rollback
    app = make_app(s)
    released_ten_minutes_ago(s, app)
    event = alarm_event(s, app)
    spec = {**fault, "target": app.name if fault.get("target") == "app" else fault.get("target")}
    with Faults(s, "alarm-rollback") as faults:
        faults.add(**spec)
        first_failed, first = deliver(s, event)
        fired = faults.clear()
    assert fired >= 1
    transient = "count" in fault or fault["operation"] == "Publish"
    if transient:
        # Retried within the call (or only the announcement failed): rolled back at once.
        assert not first_failed, first
        assert alias_version(s, app) == "1"
    else:
        # Failed, and said so: the invocation fails so that the event is delivered again.
        assert first_failed, first
        assert alias_version(s, app) == "2"
    # The same event again (Lambda's retry, or EventBridge delivering twice), then once more.
    for _ in range(2):
        failed, answer = deliver(s, event)
        assert not failed, answer
    assert alias_version(s, app) == "1"
    updates = s.control(f"alias-updates?function={app.name}")
    assert [u["status"] for u in updates] == [200], updates  # exactly one effective UpdateAlias
    claims = ledger(s, app, "rb#")
    assert len(claims) == 1 and claims[0]["outcome"]["S"].startswith("rolled_back"), claims
    assert [q["version"]["S"] for q in ledger(s, app, "quarantine#")] == ["2"]
    FIGURES["rollback_deliveries"] += 3


# --- dlq-redrive: conservation over randomized fault schedules ------------------------------

@pytest.fixture(scope="module")
def redrive(fstack):
    create_function(fstack, REDRIVE_FUNCTION, handler="dlq-redrive", env={}, timeout=120)
    lam = fstack.client("lambda")

    def call(request: dict) -> dict:
        out = lam.invoke(FunctionName=REDRIVE_FUNCTION, Payload=json.dumps(request).encode())
        body = json.loads(out["Payload"].read())
        assert not out.get("FunctionError"), body
        return body

    return call


def attributes(i: int) -> dict:
    return {"tenant": {"DataType": "String", "StringValue": "a" if i % 2 else "b"},
            "amount": {"DataType": "Number", "StringValue": f"{i}.25"},
            "blob": {"DataType": "Binary", "BinaryValue": bytes([i % 256, 0, 255])},
            "kind": {"DataType": "String.custom", "StringValue": f"k-{i}"}}


def body_of(i: int) -> str:
    return json.dumps({"n": i, "text": "é–" * (i % 5)})


def comparable(attrs: dict) -> dict:
    return {k: {x: y for x, y in v.items() if x in ("DataType", "StringValue", "BinaryValue")}
            for k, v in attrs.items() if k != PROVENANCE}


def drain(s: LocalAws, url: str) -> list[dict]:
    sqs, out = s.client("sqs"), []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                  VisibilityTimeout=60).get("Messages", [])
        if not got:
            return out
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
        out.extend(got)


def test_redrive_counts_the_throttles_the_sdk_absorbed(fstack, redrive):
    """SQS throttles two receives and two sends; the SDK's own retries (3 attempts here)
    absorb them, so no call fails: the report still counts all four."""
    sqs = fstack.client("sqs")
    base = f"redrive-t-{uuid.uuid4().hex[:8]}"
    dlq_url = sqs.create_queue(QueueName=f"{base}-dlq")["QueueUrl"]
    dest_url = sqs.create_queue(QueueName=f"{base}-dest")["QueueUrl"]
    sqs.send_message_batch(QueueUrl=dlq_url, Entries=[
        {"Id": str(i), "MessageBody": body_of(i)} for i in range(10)])
    with Faults(fstack, "dlq-redrive") as faults:
        faults.add(operation="ReceiveMessage", target=f"{base}-dlq", count=2, code="RequestThrottled", status=400)
        faults.add(operation="SendMessageBatch", target=f"{base}-dest", count=2, code="ThrottlingException",
                   status=400)
        report = redrive({"source": dlq_url, "destination": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{base}-dest"})
        fired = sum(f["fired"] for f in faults.listing())
    assert fired == 4, faults
    assert report["moved"] == 10 and report["failed"] == 0, report
    assert report["throttled_absorbed"] == 4 and report["throttled"] == 4, report
    assert len(drain(fstack, dest_url)) == 10


ERRORS = [("RequestThrottled", 400), ("ThrottlingException", 400), ("InternalError", 500),
          ("ServiceUnavailable", 503)]
FAULT = st.fixed_dictionaries({
    "operation": st.sampled_from(["ReceiveMessage", "SendMessageBatch", "DeleteMessageBatch", "entries"]),
    "amount": st.one_of(st.tuples(st.just("count"), st.integers(1, 4)),
                        st.tuples(st.just("fraction"), st.sampled_from([0.1, 0.25, 0.5]))),
    "error": st.sampled_from(ERRORS),
    "delay_ms": st.sampled_from([0, 0, 20, 100]),
})


def fault_spec(f: dict, dlq: str, dest: str) -> dict:
    code, status = f["error"]
    spec = {"code": code, "status": status, f["amount"][0]: f["amount"][1]}
    if f["operation"] == "entries":
        return {**spec, "operation": "SendMessageBatch", "entries": True, "target": dest}
    target = dest if f["operation"] == "SendMessageBatch" else dlq
    return {**spec, "operation": f["operation"], "target": target,
            **({"delay_ms": f["delay_ms"]} if f["delay_ms"] else {})}


@settings(max_examples=6, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(schedule=st.lists(FAULT, min_size=1, max_size=3), n=st.sampled_from([100, 150]),
       concurrency=st.sampled_from([1, 4, 8]))
def test_redrive_conserves_every_message_under_random_fault_schedules(fstack, redrive, schedule, n, concurrency):
    sqs = fstack.client("sqs")
    base = f"redrive-f-{uuid.uuid4().hex[:8]}"
    dlq_url = sqs.create_queue(QueueName=f"{base}-dlq")["QueueUrl"]
    dest_url = sqs.create_queue(QueueName=f"{base}-dest")["QueueUrl"]
    for start in range(0, n, 10):
        sent = sqs.send_message_batch(QueueUrl=dlq_url, Entries=[
            {"Id": str(i), "MessageBody": body_of(i), "MessageAttributes": attributes(i)}
            for i in range(start, min(n, start + 10))])
        assert not sent.get("Failed")
    dest_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{base}-dest"
    reports = []
    with Faults(fstack, "dlq-redrive") as faults:
        for f in schedule:
            faults.add(**fault_spec(f, f"{base}-dlq", f"{base}-dest"))
        request = {"source": dlq_url, "destination": dest_arn, "concurrency": concurrency, "max_run_seconds": 20}
        while request is not None and len(reports) < 4:
            reports.append(redrive(request))
            request = reports[-1]["continuation"]
        FIGURES["redrive_faults_fired"] += faults.clear()
    # Faults gone: further runs move whatever is left, until a run finds nothing to move.
    for _ in range(4):
        reports.append(redrive({"source": dlq_url, "destination": dest_arn, "concurrency": concurrency}))
        if reports[-1]["moved"] == 0:
            break
    assert reports[-1]["moved"] == 0 and reports[-1]["stopped"] == "drained", reports[-1]

    moved, left = drain(fstack, dest_url), drain(fstack, dlq_url)
    hidden = int(sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
                 ["Attributes"]["ApproximateNumberOfMessagesNotVisible"])
    copies: Counter = Counter()
    for m in moved + left:
        i = json.loads(m["Body"])["n"]
        assert m["Body"] == body_of(i), m["Body"]
        assert comparable(m.get("MessageAttributes", {})) == attributes(i), (i, m.get("MessageAttributes"))
        copies[i] += 1
    # Conservation: every message is somewhere, unchanged ...
    assert set(copies) == set(range(n)), sorted(set(range(n)) - set(copies))[:10]
    assert left == [], f"{len(left)} messages left visible in the DLQ after clean runs"
    # ... and every extra copy (delivered twice, or sent and still hidden in the DLQ) is
    # one the reports counted as a duplicate.
    duplicates = sum(r["duplicates"] for r in reports)
    extra = sum(c - 1 for c in copies.values()) + hidden
    assert extra <= duplicates, (extra, duplicates, reports)
    FIGURES["redrive_schedules"] += 1
    FIGURES["redrive_messages_conserved"] += n
    FIGURES["redrive_runs"] += len(reports)
    FIGURES["redrive_duplicates_reported"] += duplicates
    FIGURES["redrive_extra_copies_seen"] += extra


def test_redrive_counts_every_duplicate_a_failed_delete_leaves(fstack, redrive):
    """Sends succeed, every delete fails: each message is then in the destination *and*
    still in the DLQ. The report must count each of them as a duplicate."""
    sqs = fstack.client("sqs")
    n = 30
    base = f"redrive-dup-{uuid.uuid4().hex[:8]}"
    dlq_url = sqs.create_queue(QueueName=f"{base}-dlq")["QueueUrl"]
    dest_url = sqs.create_queue(QueueName=f"{base}-dest")["QueueUrl"]
    for start in range(0, n, 10):
        sqs.send_message_batch(QueueUrl=dlq_url, Entries=[
            {"Id": str(i), "MessageBody": body_of(i), "MessageAttributes": attributes(i)}
            for i in range(start, start + 10)])
    dest_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{base}-dest"
    with Faults(fstack, "dlq-redrive") as faults:
        faults.add(operation="DeleteMessageBatch", target=f"{base}-dlq", code="InternalError", status=500,
                   count=100000)
        first = redrive({"source": dlq_url, "destination": dest_arn, "concurrency": 2, "max_run_seconds": 10})
        FIGURES["redrive_faults_fired"] += faults.clear()
    assert first["moved"] == n and first["duplicates"] == n, first
    # Every message is in the destination once, and its copy is still in the DLQ, hidden
    # until its visibility timeout ends (then a later run moves it again): exactly the
    # duplicates the report counted, no more.
    moved = drain(fstack, dest_url)
    copies = Counter(json.loads(m["Body"])["n"] for m in moved)
    assert copies == Counter(range(n)), copies
    assert drain(fstack, dlq_url) == []
    hidden = int(sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
                 ["Attributes"]["ApproximateNumberOfMessagesNotVisible"])
    assert hidden == first["duplicates"] == n, (hidden, first)
    FIGURES["redrive_duplicates_reported"] += first["duplicates"]
    FIGURES["redrive_extra_copies_seen"] += hidden
