"""Hostile inputs: each rollgate function, fed the malformed and hostile events of
`tests/hostile/<function>/NN-name.json`, answers clearly and changes nothing.

A case file is `{"why", "event" | "event_raw", "expect", ["setup"]}`:

- `event` is the payload (JSON), `event_raw` a string sent byte for byte (not JSON,
  duplicate keys, odd bytes). In both, `{name}` stands for a resource of this module's
  world (`{dlq_url}`, `{victim}`, `{deployment}`...) and `{repeat:N:text}` for `text`
  repeated N times (oversized payloads without oversized files).
- `setup`: `known_execution` (a deployment of a fresh app waiting in `BeforeAllowTraffic`
  on a hook that never reports; `{deployment}` / `{execution}` are its ids) with an
  optional hostile `policy` (a string or JSON) stored for the app.
- `expect`, one of:
  - `{"error": [...]}`: the invocation fails (`FunctionError`) and its message contains
    every string given (the field it names);
  - `{"decision": "Failed", "reason": [...], "reported": bool}` (hooks): a `Failed`
    decision whose reason contains every string; `reported: true` only for the known
    execution, which is then reported `Failed` exactly once;
  - `{"ignored": [...]}` (alarm-rollback): every outcome is `action: none`, nothing
    acted on, each reason containing one of the strings.

What may change, by outcome, is asserted on a snapshot of the emulator taken before and
after every case: aliases (version, routing, RevisionId) of every app, the ledger table,
every queue's depth including in-flight and delayed messages and the receive counts of
the DLQ's messages, message move tasks, every CodeDeploy deployment's status and the hook
executions of the known ones (status, report count), `UpdateAlias` calls, and Lambda
invocations by function (from the emulator's log) besides the case's own. One module
stack: a case's "before" is the previous case's "after" unless a setup ran in between,
so a late side effect still fails (the next case). An `error` changes nothing and announces nothing. A hook's `decision` may announce
itself once on SNS and, for the known execution only, report `Failed` (so that deployment
fails and CodeDeploy rolls its alias back to the version it already was on). An
`ignored` alarm may announce its no-op decisions on SNS (`action: none`).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from support import helpers
from support.helpers import (ACCOUNT, LOG_DIR, POLICY_PREFIX, REGION, TOPIC_ARN, bootstrap, create_function,
                      make_app, wait_deployment)
from harness import LocalAws, wait_for

CORPUS = Path(__file__).resolve().parent / "hostile"
HOOK = helpers.HOOK_FUNCTION
POST_HOOK = helpers.POST_HOOK_FUNCTION
ROLLBACK = "rollgate-alarm-rollback"
REDRIVE = "rollgate-dlq-redrive"
FUNCTIONS = {"pre-traffic-hook": HOOK, "post-traffic-hook": POST_HOOK, "alarm-rollback": ROLLBACK,
             "dlq-redrive": REDRIVE, "rollout": helpers.STACK_FUNCTIONS["rollout"]}
MIN_CASES = 20
# The errorType each function's refusal of a bad payload carries (shared/src/failure.rs): a
# class a log or metric filter can match. A case may name another (`"error_type"`). A payload
# that is not JSON at all never reaches the handler: Lambda's runtime refuses it with its own.
ERROR_TYPES = {"pre-traffic-hook": "InvalidEvent", "post-traffic-hook": "InvalidEvent",
               "alarm-rollback": "InvalidEvent", "dlq-redrive": "InvalidRequest", "rollout": "InvalidRequest"}
RUNTIME_REFUSAL = "&lambda_runtime::deserializer::DeserializeError"
# Markers that must never reach the functions' logs at the default level.
SECRET = f"hostile-secret-{uuid.uuid4().hex}"
BODY_MARKER = f"hostile-body-{uuid.uuid4().hex}"
SMOKE_MARKER = f"hostile-smoke-{uuid.uuid4().hex}"
OTHER_ACCOUNT = "999999999999"
OTHER_REGION = "eu-west-1"


def cases() -> list[tuple[str, Path]]:
    return [(fn, path) for fn in FUNCTIONS for path in sorted((CORPUS / fn).glob("*.json"))]


class World:
    """The module's emulator plus the resources the corpus names."""

    def __init__(self, aws: LocalAws):
        self.aws = aws
        self.names: dict[str, str] = {"account": ACCOUNT, "region": REGION, "other_account": OTHER_ACCOUNT,
                                      "other_region": OTHER_REGION}
        self.decisions_url = ""
        self.dlq_url = ""
        self.hooked: list[str] = []
        self.last: dict | None = None
        self._clients: dict = {}
        self.pool = ThreadPoolExecutor(max_workers=8)

    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = self.aws.client(service)
        return self._clients[service]


def _queue(sqs, name: str, **attrs) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _record_in_ledger(w: World, app, deployment_id: str) -> None:
    """Feed alarm-rollback the CodeDeploy state changes of a release, as EventBridge would."""
    lam = w.client("lambda")
    for state in ("START", "SUCCESS"):
        event = {"version": "0", "id": str(uuid.uuid4()), "source": "aws.codedeploy",
                 "detail-type": "CodeDeploy Deployment State-change Notification", "account": ACCOUNT,
                 "region": REGION, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "resources": [], "detail": {"application": app.application, "deploymentGroup": app.group,
                                             "deploymentId": deployment_id, "state": state,
                                             "region": REGION}}
        out = lam.invoke(FunctionName=ROLLBACK, Payload=json.dumps(event).encode())
        assert "FunctionError" not in out, out["Payload"].read()


def _released(w: World, app) -> str:
    """Release v1 -> v2 of `app` (no hooks), wait for success, record it in the ledger."""
    spec = json.dumps({"version": 0.0, "Resources": [{app.name: {"Type": "AWS::Lambda::Function", "Properties": {
        "Name": app.name, "Alias": app.alias, "CurrentVersion": "1", "TargetVersion": "2"}}}]})
    dep = helpers.deploy(w.aws, app, spec)
    assert wait_deployment(w.aws, dep)["status"] == "Succeeded"
    _record_in_ledger(w, app, dep)
    return dep


@pytest.fixture(scope="module")
def world():
    env = {"ROLLGATE_TOPIC_ARN": TOPIC_ARN, "ROLLGATE_POLICY_PREFIX": POLICY_PREFIX,
           "ROLLGATE_SELF_FUNCTION": POST_HOOK, "ROLLGATE_MAX_RUN_SECONDS": helpers.POST_HOOK_MAX_RUN_SECONDS,
           "ROLLGATE_LEDGER_TABLE": helpers.LEDGER_TABLE, "ROLLGATE_REDRIVE_ALLOW": helpers.REDRIVE_ALLOW,
           "ROLLGATE_ROLLBACK_ALLOW": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders-*",
           # A value no function may ever write to its log.
           "ROLLGATE_HOSTILE_TEST_SECRET": SECRET}
    # Hooks of the known executions never report: CodeDeploy must wait for the whole module.
    with LocalAws(env=env, minute_seconds=0.2, hook_timeout_seconds=1800,
                  log_dir=LOG_DIR / "hostile") as aws:
        bootstrap(aws, {"RollbackAllowList": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders-*"})
        w = World(aws)
        try:
            _build(w)
            yield w
        finally:
            w.pool.shutdown()


def _build(w: World) -> None:
    lam, sqs, sns, cd, ddb = (w.client(s) for s in ("lambda", "sqs", "sns", "codedeploy", "dynamodb"))
    # The ledger, alarm-rollback and dlq-redrive are the stack's (helpers.bootstrap). Its
    # rules are disabled: each case feeds its event itself, and a deployment a case ends
    # must not invoke alarm-rollback behind the side-effect snapshot's back.
    for rule in ("rollgate-alarm-state", "rollgate-deployment-state", "rollgate-alias-changes",
                 "rollgate-shift-starts"):
        w.client("events").disable_rule(Name=rule)
    # A hook that answers and never reports: deployments wait on it (the known executions).
    create_function(w.aws, "hostile-silent-hook", handler="example-app", env={})
    # An allowed Lambda destination for redrive.
    sink = f"redrive-sink-{uuid.uuid4().hex[:6]}"
    create_function(w.aws, sink, handler="example-app", env={"API_TOKEN": SECRET})
    w.names["sink"] = sink

    # Announcements: a queue on the decision topic (not part of the side-effect snapshot).
    w.decisions_url, arn = _queue(sqs, "hostile-decisions")
    sns.subscribe(TopicArn=TOPIC_ARN, Protocol="sqs", Endpoint=arn)

    # The victim: released v1 -> v2 a moment ago, recorded in the ledger. Any alarm that
    # named it rightly would roll it back: the corpus's alarms must not.
    victim = make_app(w.aws, env={"TABLE_NAME": "orders", "API_TOKEN": SECRET})
    dep = _released(w, victim)
    w.names.update(victim=victim.name, victim_deployment=dep)

    # A deployment CodeDeploy already failed (its AppSpec names a missing function).
    other = make_app(w.aws)
    bad = json.dumps({"version": 0.0, "Resources": [{other.name: {"Type": "AWS::Lambda::Function", "Properties": {
        "Name": "no-such-function", "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"}}}],
        "Hooks": [{"BeforeAllowTraffic": HOOK}]})
    failed = cd.create_deployment(applicationName=other.application, deploymentGroupName=other.group,
                                  revision={"revisionType": "AppSpecContent",
                                            "appSpecContent": {"content": bad}})["deploymentId"]
    assert wait_deployment(w.aws, failed)["status"] == "Failed"
    w.names["failed_deployment"] = failed

    # A deployment of an EC2/on-premises application (not Lambda).
    cd.create_application(applicationName="hostile-server-app", computePlatform="Server")
    cd.create_deployment_group(applicationName="hostile-server-app", deploymentGroupName="fleet",
                               serviceRoleArn=helpers.ROLE)
    w.names["server_deployment"] = cd.create_deployment(
        applicationName="hostile-server-app", deploymentGroupName="fleet",
        revision={"revisionType": "S3", "s3Location": {"bucket": "artifacts", "key": "app.zip",
                                                       "bundleType": "zip"}})["deploymentId"]

    # Queues: an allowed DLQ with its source, and queues outside the allow-list.
    base = f"redrive-hostile-{uuid.uuid4().hex[:6]}"
    dlq_url, dlq_arn = _queue(sqs, f"{base}-dlq")
    src_url, src_arn = _queue(sqs, base, RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn,
                                                                   "maxReceiveCount": 3}))
    for i in range(3):
        sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps({"n": i, "card": BODY_MARKER}),
                         MessageAttributes={"tenant": {"DataType": "String", "StringValue": "a"}})
    private_url, private_arn = _queue(sqs, f"private-{uuid.uuid4().hex[:6]}")
    sqs.send_message(QueueUrl=private_url, MessageBody=json.dumps({"card": BODY_MARKER}))
    # A name just outside the pattern `redrive-*` (the pattern is case-sensitive).
    near_url, near_arn = _queue(sqs, f"Redrive-{uuid.uuid4().hex[:6]}")
    sqs.send_message(QueueUrl=near_url, MessageBody="x")
    # An allowed queue that is nobody's DLQ.
    orphan_url, orphan_arn = _queue(sqs, f"redrive-orphan-{uuid.uuid4().hex[:6]}")
    sqs.send_message(QueueUrl=orphan_url, MessageBody="y")
    w.dlq_url = dlq_url
    w.names.update(dlq=f"{base}-dlq", dlq_url=dlq_url, dlq_arn=dlq_arn, src=base, src_url=src_url, src_arn=src_arn,
                   private=private_arn.rsplit(":", 1)[1], private_url=private_url, private_arn=private_arn,
                   near=near_arn.rsplit(":", 1)[1], near_url=near_url, near_arn=near_arn,
                   orphan=orphan_arn.rsplit(":", 1)[1], orphan_url=orphan_url, orphan_arn=orphan_arn)
    _drain_decisions(w)


def known_execution(w: World, policy) -> dict[str, str]:
    """A fresh app whose deployment waits in BeforeAllowTraffic on a hook that never reports."""
    app = make_app(w.aws, policy=policy)
    spec = helpers.appspec(app, hook="hostile-silent-hook")
    silent = _invocations(w).get("hostile-silent-hook", 0)
    dep = helpers.deploy(w.aws, app, spec)
    # CodeDeploy's own (asynchronous) invoke of the silent hook has ended before the case.
    wait_for(lambda: _invocations(w).get("hostile-silent-hook", 0) > silent, 60, "the silent hook's invocation")

    def hook_started():
        hooks = w.aws.control(f"deployments/{dep}/hooks")
        return hooks[0] if hooks and hooks[0]["status"] == "InProgress" else None

    execution = wait_for(hook_started, 30, f"the BeforeAllowTraffic hook of {dep}")
    w.hooked.append(dep)
    return {"deployment": dep, "execution": execution["lifecycleEventHookExecutionId"], "app": app.name}


# --- placeholders ------------------------------------------------------------------

def expand_text(text: str, names: dict[str, str]) -> str:
    text = re.sub(r"\{repeat:(\d+):([^}]*)\}", lambda m: m.group(2) * int(m.group(1)), text)
    return re.sub(r"\{([a-z_]+)\}", lambda m: names.get(m.group(1), m.group(0)), text)


def expand(value, names: dict[str, str]):
    if isinstance(value, str):
        return expand_text(value, names)
    if isinstance(value, list):
        return [expand(v, names) for v in value]
    if isinstance(value, dict):
        return {expand_text(k, names): expand(v, names) for k, v in value.items()}
    return value


# --- the snapshot --------------------------------------------------------------------

def _drain_decisions(w: World) -> list[dict]:
    sqs, out = w.client("sqs"), []
    while True:
        got = sqs.receive_message(QueueUrl=w.decisions_url, MaxNumberOfMessages=10,
                                  MessageAttributeNames=["All"]).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=w.decisions_url, ReceiptHandle=m["ReceiptHandle"])


def _invocations(w: World) -> dict[str, int]:
    """Lambda invocations so far, by function, from the emulator's log (the control
    endpoint's records carry every payload, oversized ones included)."""
    counts: dict[str, int] = {}
    with open(LOG_DIR / "hostile" / "emulator.log", errors="replace") as log:
        for line in log:
            m = INVOKE_LINE.search(line)
            if m:
                counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


INVOKE_LINE = re.compile(r"rollgate-emulator lambda invoke (\S+) qualifier=")


def snapshot(w: World) -> dict:
    lam, ddb, sqs, cd = (w.client(s) for s in ("lambda", "dynamodb", "sqs", "codedeploy"))

    def aliases():
        out = {}
        for fn in lam.list_functions()["Functions"]:
            if fn["FunctionName"].startswith(("rollgate-", "hostile-")):
                continue  # only the apps have aliases; rollgate never creates one
            for a in lam.list_aliases(FunctionName=fn["FunctionName"])["Aliases"]:
                out[f"{fn['FunctionName']}:{a['Name']}"] = (
                    a["FunctionVersion"], json.dumps(a.get("RoutingConfig") or {}, sort_keys=True),
                    a.get("RevisionId"))
        return out

    def ledger():
        return sorted(json.dumps(i, sort_keys=True) for i in ddb.scan(TableName=helpers.LEDGER_TABLE)["Items"])

    def queues():
        out = {}
        for url in sqs.list_queues().get("QueueUrls", []):
            if url != w.decisions_url:
                out[url] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return out

    def dlq_receives():
        # Receiving is what a redrive does first: the DLQ's receive counts show it.
        # Peeking (visibility 0) adds one to each, which `diff` accounts for.
        peek = sqs.receive_message(QueueUrl=w.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                   AttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
        return {m["MessageId"]: int(m["Attributes"]["ApproximateReceiveCount"]) for m in peek}

    def deployments():
        ids = cd.list_deployments().get("deployments", [])
        out = {}
        for i in range(0, len(ids), 25):
            for d in cd.batch_get_deployments(deploymentIds=ids[i:i + 25])["deploymentsInfo"]:
                out[d["deploymentId"]] = d["status"]
        return out

    def hooks():
        # Every deployment with hook executions: the known ones (the others never got
        # as far as a hook, or are not Lambda deployments).
        return {dep: [(h["lifecycleEvent"], h["status"], h["reportCount"])
                      for h in w.aws.control(f"deployments/{dep}/hooks")] for dep in list(w.hooked)}

    parts = {"aliases": aliases, "ledger": ledger, "queues": queues, "dlq_receives": dlq_receives,
             "move_tasks": lambda: sqs.list_message_move_tasks(SourceArn=w.names["dlq_arn"]).get("Results", []),
             "deployments": deployments, "hooks": hooks,
             "alias_updates": lambda: len(w.aws.control("alias-updates")),
             "invocations": lambda: _invocations(w)}
    futures = {k: w.pool.submit(f) for k, f in parts.items()}
    return {k: f.result() for k, f in futures.items()}


def diff(before: dict, after: dict) -> dict:
    out = {}
    for key in before:
        b, a = before[key], after[key]
        if key == "dlq_receives":
            a = {k: v - 1 for k, v in a.items()}
        if isinstance(b, dict):
            changed = {k: (b.get(k), a.get(k)) for k in set(b) | set(a) if b.get(k) != a.get(k)}
            if changed:
                out[key] = changed
        elif b != a:
            out[key] = (b, a)
    return out


# --- running a case ----------------------------------------------------------------

def invoke(w: World, function: str, case: dict, names: dict[str, str]):
    if "event_raw" in case:
        payload = expand_text(case["event_raw"], names).encode("utf-8", "surrogatepass")
    else:
        payload = json.dumps(expand(case["event"], names)).encode()
    out = w.client("lambda").invoke(FunctionName=function, Payload=payload)
    raw = out["Payload"].read()
    try:
        body = json.loads(raw)
    except ValueError:
        body = raw.decode(errors="replace")
    return out.get("FunctionError"), body


@pytest.mark.parametrize("function,path", cases(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_hostile_input(world, function, path):
    case = json.loads(path.read_text())
    expect = case["expect"]
    names = dict(world.names)
    setup = case.get("setup") or {}
    if setup.get("known_execution"):
        names.update(known_execution(world, setup.get("policy")))
    _drain_decisions(world)
    # The state the previous case left, unless a setup changed it since: one snapshot per
    # case (and what lands late is still caught, by the next case).
    before = world.last if world.last is not None and not setup else snapshot(world)
    world.last = None
    error, body = invoke(world, FUNCTIONS[function], case, names)
    # Anything asynchronous (an SNS fan-out, a self-invoke, a released message) lands now.
    time.sleep(0.2)
    after = snapshot(world)
    announced = _drain_decisions(world)
    changes = diff(before, after)
    # The case's own invocation is the only one.
    own = FUNCTIONS[function]
    calls = before["invocations"].get(own)
    assert changes.pop("invocations", None) == {own: (calls, (calls or 0) + 1)}, changes
    text = json.dumps(body)

    if "error" in expect:
        assert error, f"{path.name}: expected an invocation error, got {text[:2000]}"
        message = body.get("errorMessage", "") if isinstance(body, dict) else str(body)
        for needle in expect["error"]:
            assert expand_text(needle, names) in message, f"{path.name}: {needle!r} not in {message[:2000]!r}"
        error_type = body.get("errorType") if isinstance(body, dict) else None
        wanted = case.get("error_type") or ERROR_TYPES[function]
        assert error_type in (wanted, RUNTIME_REFUSAL), f"{path.name}: errorType {error_type!r}, not {wanted!r}"
        if error_type == RUNTIME_REFUSAL:
            assert "event_raw" in case, f"{path.name}: a JSON payload must reach the handler"
        assert changes == {}, f"{path.name}: side effects {changes}"
        assert announced == [], f"{path.name}: announced {announced}"
        world.last = after
        return

    assert not error, f"{path.name}: invocation failed: {text[:2000]}"
    if "decision" in expect:
        assert body["verdict"] == expect["decision"], text[:2000]
        for needle in expect.get("reason", []):
            assert expand_text(needle, names) in body["reason"], f"{path.name}: {needle!r} not in {body['reason']!r}"
        assert len(announced) <= 1, announced
        for msg in announced:
            attrs = {k: v["Value"] for k, v in msg["MessageAttributes"].items()}
            assert attrs["verdict"] == "Failed" and attrs["component"] == function, attrs
        # A gate keeps the decision it announced: one row in a `gate#` partition, that
        # decision's, and nothing else in the ledger.
        if "ledger" in changes:
            before_rows, after_rows = changes.pop("ledger")
            kept = [json.loads(r) for r in sorted(set(after_rows) - set(before_rows))]
            assert set(before_rows) <= set(after_rows), f"{path.name}: ledger rows changed or lost"
            assert len(kept) == len(announced) == 1, (path.name, kept)
            row = kept[0]
            assert row["pk"]["S"].startswith("gate#") and row["component"]["S"] == function, row
            assert row["verdict"]["S"] == "Failed" == body["verdict"], row
        if expect.get("reported"):
            dep = names["deployment"]
            assert len(announced) == 1
            hooks = wait_for(lambda: [h for h in world.aws.control(f"deployments/{dep}/hooks")
                                      if h["lifecycleEventHookExecutionId"] == names["execution"]
                                      and h["status"] == "Failed"], 10, "the Failed report")
            assert hooks[0]["reportCount"] == 1 and hooks[0]["reportedStatuses"] == ["Failed"], hooks
            # The deployment fails and CodeDeploy restores the alias (already on version 1).
            assert wait_deployment(world.aws, dep)["status"] == "Failed"
            app = names["app"]
            alias = world.client("lambda").get_alias(FunctionName=app, Name="live")
            assert alias["FunctionVersion"] == "1" and not alias.get("RoutingConfig", {}).get(
                "AdditionalVersionWeights")
            # No smoke test ran: a hostile policy invokes nothing.
            assert world.aws.control(f"invocations?function={app}") == []
            changes = {k: v for k, v in changes.items() if k not in ("deployments", "hooks", "aliases")}
            changes.pop("alias_updates", None)
        assert changes == {}, f"{path.name}: side effects {changes}"
        if not expect.get("reported"):
            world.last = after
        return

    assert "ignored" in expect, f"{path.name}: unknown expectation {expect}"
    outcomes = [o for r in body["results"] for o in r.get("outcomes", [])]
    # A deployment state change rollgate has no business with (another compute platform).
    outcomes += [{"action": "none", "acted": False, "reason": r["reason"]}
                 for r in body["results"] if "ignored" in r]
    assert outcomes, text[:2000]
    for o in outcomes:
        assert o["action"] == "none" and not o["acted"], f"{path.name}: {o}"
        assert any(expand_text(n, names) in o["reason"] for n in expect["ignored"]), f"{path.name}: {o['reason']!r}"
    for msg in announced:
        attrs = {k: v["Value"] for k, v in msg["MessageAttributes"].items()}
        assert attrs["component"] == "alarm-rollback" and attrs["action"] == "none", attrs
    assert changes == {}, f"{path.name}: side effects {changes}"
    world.last = after


def test_the_corpus_covers_every_function():
    for fn in FUNCTIONS:
        files = sorted((CORPUS / fn).glob("*.json"))
        assert len(files) >= MIN_CASES, (fn, len(files))
        for path in files:
            assert re.fullmatch(r"\d\d-[a-z0-9-]+\.json", path.name), path.name
            case = json.loads(path.read_text())
            assert isinstance(case.get("why"), str) and case["why"].strip(), path
            assert ("event" in case) != ("event_raw" in case), path
            expect = case.get("expect") or {}
            assert len({"error", "decision", "ignored"} & set(expect)) == 1, path


# --- allow-lists ---------------------------------------------------------------------

def _call(w: World, function: str, request) -> tuple[str | None, object]:
    out = w.client("lambda").invoke(FunctionName=function, Payload=json.dumps(request).encode())
    body = json.loads(out["Payload"].read())
    return out.get("FunctionError"), body


def test_redrive_refuses_queues_and_functions_outside_the_allow_list(world):
    """ROLLGATE_REDRIVE_ALLOW is `arn:aws:sqs:<region>:<account>:redrive-*` and
    `arn:aws:lambda:<region>:<account>:function:redrive-*`: the allowed DLQ's own name in
    another account, region or partition, a name just outside the pattern, and functions
    outside it are all refused, naming the field, with nothing received or moved."""
    n = world.names
    refused = [
        ({"source": f"arn:aws:sqs:{REGION}:{OTHER_ACCOUNT}:{n['dlq']}"}, "source"),
        ({"source": f"arn:aws:sqs:{OTHER_REGION}:{ACCOUNT}:{n['dlq']}"}, "source"),
        ({"source": f"arn:aws-us-gov:sqs:us-gov-west-1:{ACCOUNT}:{n['dlq']}"}, "source"),
        ({"source": f"https://sqs.{OTHER_REGION}.amazonaws.com/{ACCOUNT}/{n['dlq']}"}, "source"),
        ({"source": n["near"]}, "source: " + n["near_arn"] + " is not in the allow-list"),
        ({"source": n["private_url"]}, "is not in the allow-list"),
        ({"source": n["dlq_url"], "destination": n["near_url"]}, "destination: " + n["near_arn"]),
        ({"source": n["dlq_url"], "destination": f"arn:aws:sqs:{REGION}:{OTHER_ACCOUNT}:{n['src']}"}, "destination"),
        ({"source": n["dlq_url"], "destination": f"lambda:Redrive-{n['sink'][len('redrive-'):]}"},
         "is not in the allow-list"),
        ({"source": n["dlq_url"],
          "destination": f"lambda:arn:aws:lambda:{OTHER_REGION}:{ACCOUNT}:function:{n['sink']}"},
         "is not in the allow-list"),
        ({"source": n["dlq_url"],
          "destination": f"lambda:arn:aws:lambda:{REGION}:{OTHER_ACCOUNT}:function:{n['sink']}:live"},
         "is not in the allow-list"),
    ]
    before = snapshot(world)
    for request, needle in refused:
        error, body = _call(world, REDRIVE, request)
        assert error and needle in body["errorMessage"], (request, body)
        after = snapshot(world)
        changes = diff(before, after)
        assert changes.pop("invocations") == {REDRIVE: (before["invocations"][REDRIVE],
                                                        before["invocations"][REDRIVE] + 1)}
        assert changes == {}, (request, changes)
        before = after
    # The same requests inside the allow-list do run (a dry run: nothing moves).
    error, body = _call(world, REDRIVE, {"source": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{n['dlq']}", "dry_run": True})
    assert not error and body["would_move"] == 3, body
    error, body = _call(world, REDRIVE, {"source": n["dlq_url"], "destination": f"lambda:{n['sink']}",
                                         "dry_run": True})
    assert not error and body["would_move"] == 3, body


def _cloudwatch_now() -> str:
    """Now, as CloudWatch writes `state.timestamp` (UTC, milliseconds, `+0000`): a
    transition truncated to the second could predate a release made in the same second."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}+0000"


def _alarm_event(function_dimension: str, *, account=ACCOUNT, region=REGION, name=None) -> dict:
    name = name or f"foreign-{uuid.uuid4().hex[:6]}"
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch", "account": account, "region": region,
            "time": "2026-03-01T10:15:00Z", "resources": [f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"],
            "detail": {"alarmName": name, "state": {"value": "ALARM", "reason": "errors",
                                                    "timestamp": _cloudwatch_now()},
                       "configuration": {"metrics": [{"id": "m1", "metricStat": {"metric": {
                           "namespace": "AWS/Lambda", "name": "Errors",
                           "dimensions": {"FunctionName": function_dimension}}, "period": 60, "stat": "Sum"}}]}}}


def _unchanged_but_for_one_call(world, before: dict) -> dict:
    after = snapshot(world)
    changes = diff(before, after)
    assert changes.pop("invocations") == {ROLLBACK: (before["invocations"][ROLLBACK],
                                                     before["invocations"][ROLLBACK] + 1)}
    assert changes == {}, changes
    return after


def test_alarm_naming_a_function_of_another_account_or_region_changes_nothing(world):
    """A dimension that names the victim by an ARN of another account, region or partition
    is out of scope: the decision says so, and nothing is read or moved."""
    victim = world.names["victim"]
    before = snapshot(world)
    for dimension in (f"arn:aws:lambda:{REGION}:{OTHER_ACCOUNT}:function:{victim}",
                      f"arn:aws:lambda:{OTHER_REGION}:{ACCOUNT}:function:{victim}",
                      f"arn:aws-cn:lambda:cn-north-1:{ACCOUNT}:function:{victim}"):
        error, body = _call(world, ROLLBACK, _alarm_event(dimension))
        assert not error, body
        outcomes = body["results"][0]["outcomes"]
        assert [(o["action"], o["function"]) for o in outcomes] == [("none", dimension)], outcomes
        assert "another account, region or partition" in outcomes[0]["reason"], outcomes
        before = _unchanged_but_for_one_call(world, before)
    _drain_decisions(world)


def test_alarm_event_of_another_account_or_region_is_refused(world):
    """The event's own claims of origin (EventBridge `account` and `region`, the alarm ARN
    in `resources`; a Lambda action's `accountId` and `alarmArn`; an SNS notification's
    `AWSAccountId` and `AlarmArn`) are compared with the function's account and region: an
    alarm of another account that names a local function by its plain name is refused,
    naming the field, and changes nothing. The same alarm from home then rolls back."""
    app = make_app(world.aws)
    _released(world, app)
    _drain_decisions(world)
    name = f"foreign-{uuid.uuid4().hex[:6]}"
    home_event = _alarm_event(app.name, name=name)
    foreign_alarm = f"arn:aws:cloudwatch:{REGION}:{OTHER_ACCOUNT}:alarm:{name}"
    lambda_action = {"source": "aws.cloudwatch", "alarmArn": foreign_alarm, "accountId": OTHER_ACCOUNT,
                     "time": "2026-03-01T10:15:00.000+0000", "region": REGION,
                     "alarmData": home_event["detail"]}
    sns_message = {"AlarmName": name, "AWSAccountId": ACCOUNT, "NewStateValue": "ALARM",
                   "StateChangeTime": "2026-03-01T10:15:00.000+0000", "AlarmArn": foreign_alarm,
                   "Trigger": {"MetricName": "Errors", "Namespace": "AWS/Lambda",
                               "Dimensions": [{"name": "FunctionName", "value": app.name}]}}
    sns = {"Records": [{"EventSource": "aws:sns", "Sns": {"MessageId": str(uuid.uuid4()),
                                                          "Message": json.dumps(sns_message)}}]}
    refused = [
        (_alarm_event(app.name, account=OTHER_ACCOUNT, name=name), "account: account"),
        (_alarm_event(app.name, region=OTHER_REGION, name=name), "region: region"),
        ({**home_event, "resources": [foreign_alarm]}, "resources[0]: account"),
        ({**home_event, "account": OTHER_ACCOUNT, "region": OTHER_REGION}, "account: account"),
        (lambda_action, "accountId: account"),
        ({**lambda_action, "accountId": ACCOUNT}, "alarmArn: account"),
        (sns, "Records[0].Sns.Message.AlarmArn: account"),
    ]
    before = snapshot(world)
    for event, field in refused:
        error, body = _call(world, ROLLBACK, event)
        assert error, body
        assert field in body["errorMessage"] and "nothing was done" in body["errorMessage"], body
        before = _unchanged_but_for_one_call(world, before)
    assert _drain_decisions(world) == []
    error, body = _call(world, ROLLBACK, home_event)
    assert not error, body
    assert [o["action"] for o in body["results"][0]["outcomes"]] == ["rollback"], body
    assert world.client("lambda").get_alias(FunctionName=app.name, Name="live")["FunctionVersion"] == "1"
    _drain_decisions(world)


def test_rollback_leaves_functions_outside_its_allow_list_alone(world):
    """ROLLGATE_ROLLBACK_ALLOW here is `arn:aws:lambda:<region>:<account>:function:orders-*`:
    a function released a moment ago whose name is outside it, named by an alarm directly
    or through its group, is left alone; the decision says so and is announced."""
    app = make_app(world.aws, prefix="unguarded")
    world.client("lambda").tag_resource(
        Resource=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{app.name}", Tags={"rollgate:group": "outside"})
    _released(world, app)
    _drain_decisions(world)
    before = snapshot(world)
    own_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{app.name}"
    for dimension in (app.name, own_arn):
        error, body = _call(world, ROLLBACK, _alarm_event(dimension))
        assert not error, body
        outcomes = body["results"][0]["outcomes"]
        assert [(o["action"], o["function"], o["acted"]) for o in outcomes] == [("none", app.name, False)], outcomes
        assert f"{own_arn} is not in the rollback allow-list" in outcomes[0]["reason"], outcomes
        before = _unchanged_but_for_one_call(world, before)
    # Through its group: an alarm tagged with the group, naming an allowed function too.
    victim = world.names["victim"]
    event = _alarm_event(victim)
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = {}
    tag_alarm = event["detail"]["alarmName"]
    cw = world.client("cloudwatch")
    cw.put_metric_alarm(AlarmName=tag_alarm, MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum",
                        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
                        Tags=[{"Key": "rollgate:group", "Value": "outside"}])
    error, body = _call(world, ROLLBACK, event)
    assert not error, body
    outcomes = body["results"][0]["outcomes"]
    assert [(o["action"], o["function"]) for o in outcomes] == [("none", app.name)], outcomes
    assert "not in the rollback allow-list" in outcomes[0]["reason"], outcomes
    assert world.client("lambda").get_alias(FunctionName=app.name, Name="live")["FunctionVersion"] == "2"
    decisions = _drain_decisions(world)
    assert len(decisions) == 3, decisions
    for d in decisions:
        assert d["MessageAttributes"]["action"]["Value"] == "none", d
        assert "not in the rollback allow-list" in json.loads(d["Message"])["reason"], d


# --- logs ----------------------------------------------------------------------------

def test_logs_hold_no_message_bodies_or_secrets(world):
    """At the default level (info), after the corpus and a dry run, a real redrive, and a
    gated deployment whose smoke test sends and gets back a marker, the functions' log
    (cargo lambda watch's output) holds none of: message bodies, smoke-test payloads and
    responses, environment values."""
    n = world.names
    error, body = _call(world, REDRIVE, {"source": n["dlq_url"], "dry_run": True})
    assert not error and body["sample"] and BODY_MARKER in body["sample"][0]["body"], body
    error, body = _call(world, REDRIVE, {"source": n["dlq_url"], "destination": f"lambda:{n['sink']}"})
    assert not error and body["moved"] == 3, body
    policy = {"version": 1, "pre_traffic": {"checks": {"required_env": ["API_TOKEN"]}, "smoke_tests": [
        {"name": "echo", "payload": {"token": SMOKE_MARKER},
         "expect": {"json_subset": {"status": "ok"}, "json_pointer": {"/status": "ok"},
                    "body_regex": "status"}},
        {"name": "mismatch", "payload": {"token": SMOKE_MARKER}, "expect": {"json_subset": {"status": "down"}}}]}}
    app = make_app(world.aws, policy=policy, env={"TABLE_NAME": "orders", "API_TOKEN": SECRET})
    dep = helpers.deploy(world.aws, app)
    assert wait_deployment(world.aws, dep)["status"] == "Failed"  # the "mismatch" test fails it
    decision = [m for m in _drain_decisions(world)
                if m["MessageAttributes"].get("deployment", {}).get("Value") == dep]
    # The SNS decision is the full record: the evidence is there...
    assert decision and SMOKE_MARKER in decision[0]["Message"]
    log = (LOG_DIR / "hostile" / "watch.log").read_text(errors="replace")
    # ...and the log holds the same decisions and reports, without it.
    assert dep in log and "redrive finished" in log
    for marker in (SECRET, BODY_MARKER, SMOKE_MARKER):
        lines = [line[:300] for line in log.splitlines() if marker in line]
        assert not lines, f"{marker} in the log: {lines[:3]}"
