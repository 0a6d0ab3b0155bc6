"""Alarm rollback end to end: real CodeDeploy deployments on the emulator, their
state-change events feeding the ledger through EventBridge, CloudWatch alarms set to
ALARM, and the built alarm-rollback function under `cargo lambda watch`."""

import json
import threading
import time
import urllib.request
import uuid

import pytest
from support.helpers import (ACCOUNT, LEDGER_TABLE, REGION, TOPIC_ARN, alias_version, make_app, wait_deployment)
from harness import wait_for

FUNCTION = "rollgate-alarm-rollback"
FN_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
MINUTE_MS = 60_000


@pytest.fixture(scope="module")
def rb(stack):
    """A reader of alarm-rollback's decisions. The ledger table, the function and the two
    EventBridge rules feeding it are the stack's (helpers.bootstrap deploys the template)."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url = sqs.create_queue(QueueName="rollgate-rollback-decisions")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=TOPIC_ARN, Protocol="sqs", Endpoint=arn,
                  Attributes={"FilterPolicy": json.dumps({"component": ["alarm-rollback"]})})
    seen: list[dict] = []

    def decisions(function: str, n: int = 1, timeout: float = 40) -> list[dict]:
        def find():
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                seen.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            mine = [e for e in seen if e["MessageAttributes"].get("function", {}).get("Value") == function]
            return mine if len(mine) >= n else None
        return wait_for(find, timeout, f"{n} alarm-rollback decision(s) for {function}")

    return decisions


def spec(app, current="1", target="2") -> str:
    return json.dumps({"version": 0.0, "Resources": [{app.name: {"Type": "AWS::Lambda::Function", "Properties": {
        "Name": app.name, "Alias": app.alias, "CurrentVersion": current, "TargetVersion": target}}}]})


def deploy(stack, app) -> str:
    return stack.client("codedeploy").create_deployment(
        applicationName=app.application, deploymentGroupName=app.group,
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": spec(app)}})["deploymentId"]


def ledger_deployment(stack, app, status: str, timeout: float = 40, origin: str = "codedeploy") -> dict:
    ddb = stack.client("dynamodb")

    def find():
        items = ddb.query(TableName=LEDGER_TABLE, KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
                          ExpressionAttributeValues={":pk": {"S": f"fn#{app.name}#live"},
                                                     ":p": {"S": "dep#"}})["Items"]
        return next((i for i in items if i["status"]["S"] == status
                     and i.get("origin", {}).get("S", "codedeploy") == origin), None)
    return wait_for(find, timeout, f"ledger entry {status} ({origin}) for {app.name}", interval=0.2)


def ledger_items(stack, app, prefix: str) -> list[dict]:
    return stack.client("dynamodb").query(
        TableName=LEDGER_TABLE, KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={":pk": {"S": f"fn#{app.name}#live"}, ":p": {"S": prefix}})["Items"]


def released(stack, app, ended_minutes_ago: float) -> dict:
    """Deploy v1 -> v2 all at once, wait for the ledger, then age its end time."""
    dep = deploy(stack, app)
    assert wait_deployment(stack, dep)["status"] == "Succeeded"
    assert alias_version(stack, app) == "2"
    item = ledger_deployment(stack, app, "Succeeded")
    # Recorded with the release: what an alarm acts on without reading the policy again.
    assert "BOOL" in item["rollback_enabled"] and item["bake_minutes"]["N"] and item["policy_source"]["S"], item
    # Every state-change event of the deployment (START, SUCCESS) must have been recorded
    # before the end time is aged: a late one would write CodeDeploy's real end time back.
    # An Event invoke's record says 202 until the function has answered.
    wait_for(lambda: len([i for i in stack.control(f"invocations?function={FUNCTION}")
                          if dep in json.dumps(i.get("payload")) and i.get("status") not in (None, 202)]) >= 2,
             30, f"both state changes of {dep} recorded", interval=0.2)
    ended = int(time.time() * 1000 - ended_minutes_ago * MINUTE_MS)
    stack.client("dynamodb").update_item(
        TableName=LEDGER_TABLE, Key={"pk": item["pk"], "sk": item["sk"]},
        UpdateExpression="SET ended_ms = :e", ExpressionAttributeValues={":e": {"N": str(ended)}})
    return item


def alarm_on(stack, app, name=None, tags=None) -> str:
    name = name or f"{app.name}-errors-{uuid.uuid4().hex[:4]}"
    stack.client("cloudwatch").put_metric_alarm(
        AlarmName=name, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
        Dimensions=[{"Name": "FunctionName", "Value": app.name},
                    {"Name": "Resource", "Value": f"{app.name}:{app.alias}"}],
        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
        Tags=tags or [])
    return name


def fire(stack, name: str) -> None:
    stack.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="errors")


def attrs(msg: dict) -> dict:
    return {k: v["Value"] for k, v in msg["MessageAttributes"].items()}


def alias_updates(stack, app) -> list[dict]:
    return stack.control(f"alias-updates?function={app.name}")


def test_alarm_during_a_canary_stops_the_deployment(stack, rb):
    cd = stack.client("codedeploy")
    config = f"slow-canary-{uuid.uuid4().hex[:6]}"
    # 10% for 300 "minutes" (60 s at the test's 0.2 s per minute): the alarm lands mid-canary.
    cd.create_deployment_config(deploymentConfigName=config, computePlatform="Lambda", trafficRoutingConfig={
        "type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 300}})
    app = make_app(stack, config=config)
    dep = deploy(stack, app)
    ledger_deployment(stack, app, "InProgress")
    lam = stack.client("lambda")
    wait_for(lambda: lam.get_alias(FunctionName=app.name, Name="live").get("RoutingConfig"), 20, "the canary")
    fire(stack, alarm_on(stack, app))
    info = wait_deployment(stack, dep, timeout=40)
    assert info["status"] == "Stopped", info
    alias = lam.get_alias(FunctionName=app.name, Name="live")
    assert alias["FunctionVersion"] == "1" and not alias.get("RoutingConfig", {}).get("AdditionalVersionWeights")
    msg = rb(app.name)[0]
    assert attrs(msg)["action"] == "stop_deployment" and attrs(msg)["deployment"] == dep
    assert "stopped it with automatic rollback" in json.loads(msg["Message"])["reason"]
    # The stopped deployment is recorded, and the bad version quarantined.
    ledger_deployment(stack, app, "Stopped")
    assert [i["version"]["S"] for i in ledger_items(stack, app, "quarantine#")] == ["2"]


def test_alarm_ten_minutes_after_success_rolls_back(stack, rb):
    app = make_app(stack)
    item = released(stack, app, ended_minutes_ago=10)
    fire(stack, alarm_on(stack, app))
    wait_for(lambda: alias_version(stack, app) == "1", 30, "the alias back on version 1")
    alias = stack.client("lambda").get_alias(FunctionName=app.name, Name="live")
    assert not alias.get("RoutingConfig", {}).get("AdditionalVersionWeights")
    msg = rb(app.name)[0]
    a = attrs(msg)
    assert a["action"] == "rollback" and a["component"] == "alarm-rollback" and a["alias"] == "live"
    body = json.loads(msg["Message"])
    assert body["target_version"] == "2" and body["current_version"] == "1"
    assert "bake window" in body["reason"], body["reason"]
    claims = ledger_items(stack, app, "rb#")
    assert len(claims) == 1 and claims[0]["outcome"]["S"].startswith("rolled_back")
    assert claims[0]["deployment_id"]["S"] == item["deployment_id"]["S"]
    assert [i["version"]["S"] for i in ledger_items(stack, app, "quarantine#")] == ["2"]
    assert [u["status"] for u in alias_updates(stack, app)] == [200]


def test_alarm_after_the_bake_window_does_nothing_and_says_why(stack, rb):
    app = make_app(stack)
    released(stack, app, ended_minutes_ago=120)
    fire(stack, alarm_on(stack, app))
    msg = rb(app.name)[0]
    assert attrs(msg)["action"] == "none"
    reason = json.loads(msg["Message"])["reason"]
    assert "outside the 60-minute bake window" in reason and "120 minutes ago" in reason, reason
    assert alias_version(stack, app) == "2"
    assert alias_updates(stack, app) == []


def test_same_event_twice_and_two_alarms_at_once_roll_back_once(stack, rb):
    app = make_app(stack)
    released(stack, app, ended_minutes_ago=10)
    first, second = alarm_on(stack, app), alarm_on(stack, app)
    # Both alarms fire together; the first one's event is also delivered a second time.
    fire(stack, first)
    fire(stack, second)
    event = next(e for e in stack.control("alarm-events") if e["Detail"]["alarmName"] == first)
    duplicate = {"version": "0", "id": str(uuid.uuid4()), "detail-type": event["DetailType"],
                 "source": event["Source"], "account": ACCOUNT, "time": "2026-01-01T00:00:00Z",
                 "region": REGION, "resources": event["Resources"], "detail": event["Detail"]}
    stack.client("lambda").invoke(FunctionName=FUNCTION, InvocationType="Event", Payload=json.dumps(duplicate))
    msgs = rb(app.name, n=3)
    assert alias_version(stack, app) == "1"
    assert [u["status"] for u in alias_updates(stack, app)] == [200]
    actions = sorted(attrs(m)["action"] for m in msgs)
    assert actions.count("rollback") == 1, [json.loads(m["Message"])["reason"] for m in msgs]
    reasons = [json.loads(m["Message"])["reason"] for m in msgs if attrs(m)["action"] == "none"]
    assert all("already claimed" in r or "already rolled back" in r for r in reasons), reasons
    assert len(ledger_items(stack, app, "rb#")) == 1


def test_a_claim_taken_by_another_invocation_is_named_and_nothing_is_done(stack, rb):
    """Another invocation has claimed the rollback of this alias revision (its row is in the
    ledger, not failed): this one does nothing and names the event that holds the claim,
    read back from the ledger (GetItem)."""
    app = make_app(stack)
    released(stack, app, ended_minutes_ago=10)
    revision = stack.client("lambda").get_alias(FunctionName=app.name, Name=app.alias)["RevisionId"]
    holder = "alarm:someone-else:ALARM@2026-12-04T00:00:00Z"
    stack.client("dynamodb").put_item(TableName=LEDGER_TABLE, Item={
        "pk": {"S": f"fn#{app.name}#{app.alias}"}, "sk": {"S": f"rb#{revision}"}, "event": {"S": holder}})
    fire(stack, alarm_on(stack, app))
    msg = rb(app.name)[0]
    assert attrs(msg)["action"] == "none"
    reason = json.loads(msg["Message"])["reason"]
    assert f"already claimed by {holder}" in reason, reason
    assert alias_version(stack, app) == "2" and alias_updates(stack, app) == []


@pytest.mark.parametrize("rollback,minutes_ago,action", [
    ({"enabled": False}, 10, "none"),
    ({"bake_minutes": 5}, 10, "none"),
    ({"bake_minutes": 30}, 10, "rollback"),
])
def test_the_functions_policy_sets_whether_and_how_long_it_rolls_back(stack, rb, rollback, minutes_ago, action):
    """The function's gate policy (read from SSM under the policy prefix) can turn alarm
    rollback off or change its bake window; the decision names the policy it used."""
    app = make_app(stack, policy={"version": 1, "rollback": rollback})
    released(stack, app, ended_minutes_ago=minutes_ago)
    fire(stack, alarm_on(stack, app))
    msg = rb(app.name)[0]
    assert attrs(msg)["action"] == action, json.loads(msg["Message"])["reason"]
    assert alias_version(stack, app) == ("1" if action == "rollback" else "2")
    if rollback == {"enabled": False}:
        assert "disabled by the function's policy" in json.loads(msg["Message"])["reason"]
    if action == "none" and "bake_minutes" in rollback:
        assert "outside the 5-minute bake window" in json.loads(msg["Message"])["reason"]


def test_stale_revision_overwrites_nothing(stack, rb):
    app = make_app(stack)
    released(stack, app, ended_minutes_ago=10)
    # Somebody changes the alias between rollgate's GetAlias and its UpdateAlias.
    req = urllib.request.Request(f"{stack.endpoint}/_rollgate/alias-race?function={app.name}&alias=live&version=2",
                                 method="POST", data=b"")
    urllib.request.urlopen(req, timeout=5)
    fire(stack, alarm_on(stack, app))
    msg = rb(app.name)[0]
    assert attrs(msg)["action"] == "none"
    assert "nothing overwritten" in json.loads(msg["Message"])["reason"]
    assert alias_version(stack, app) == "2"
    assert [u["status"] for u in alias_updates(stack, app)] == [412]
    assert ledger_items(stack, app, "rb#")[0]["outcome"]["S"] == "stale"
    assert ledger_items(stack, app, "quarantine#") == []


def test_a_group_rolls_back_together(stack, rb):
    group = f"checkout-{uuid.uuid4().hex[:6]}"
    lam = stack.client("lambda")
    apps = [make_app(stack), make_app(stack)]
    for app in apps:
        lam.tag_resource(Resource=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{app.name}",
                         Tags={"rollgate:group": group})
        released(stack, app, ended_minutes_ago=5)
    # Only the first function's alarm fires.
    fire(stack, alarm_on(stack, apps[0]))
    for app in apps:
        wait_for(lambda: alias_version(stack, app) == "1", 30, f"{app.name} back on version 1")
        assert attrs(rb(app.name)[0])["action"] == "rollback"
    # The member the alarm does not name is rolled back through the group recorded with
    # the named function's release, and says so.
    member = json.loads(rb(apps[1].name)[0]["Message"])
    assert next(c for c in member["checks"] if c["name"] == "group")["expected"] == group, member


def test_an_alarm_without_function_dimensions_guards_what_its_tags_name(stack, rb):
    """A custom-metric alarm names its function through `rollgate:function` (read with
    ListTagsForResource over CBOR): the release rolls back like one named by dimensions."""
    app = make_app(stack)
    released(stack, app, ended_minutes_ago=5)
    name = f"{app.name}-checkout-failures"
    stack.client("cloudwatch").put_metric_alarm(
        AlarmName=name, Namespace="Checkout", MetricName="Failed", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
        Tags=[{"Key": "rollgate:function", "Value": f"{app.name}:live"}])
    fire(stack, name)
    wait_for(lambda: alias_version(stack, app) == "1", 30, "the alias back on version 1")
    body = json.loads(rb(app.name)[0]["Message"])
    targets = next(c for c in body["checks"] if c["name"] == "targets")
    assert targets["expected"] == "tags" and targets["actual"]["targets"] == [f"{app.name}:live"], targets


def test_a_composite_alarm_rolls_back_what_its_tags_name(stack, rb):
    """A composite alarm (PutCompositeAlarm, evaluated from its children by the local AWS)
    goes to ALARM when a child does; its event has no metrics, only the rule: the release
    its `rollgate:function` tag names rolls back."""
    app = make_app(stack)
    released(stack, app, ended_minutes_ago=5)
    # The child names no function (a custom metric, no tags): only the composite does.
    child = f"{app.name}-checkout-failures"
    stack.client("cloudwatch").put_metric_alarm(
        AlarmName=child, Namespace="Checkout", MetricName="Failed", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    composite = f"{app.name}-health"
    stack.client("cloudwatch").put_composite_alarm(
        AlarmName=composite, AlarmRule=f'ALARM("{child}") AND NOT ALARM("{app.name}-maintenance")',
        Tags=[{"Key": "rollgate:function", "Value": f"{app.name}:live"}])
    fire(stack, child)
    wait_for(lambda: alias_version(stack, app) == "1", 30, "the alias back on version 1")
    body = json.loads(rb(app.name)[0]["Message"])
    assert body["checks"][0]["actual"]["name"] == composite, body["checks"][0]
    targets = next(c for c in body["checks"] if c["name"] == "targets")
    assert targets["expected"] == "tags" and targets["actual"]["targets"] == [f"{app.name}:live"], targets
    assert [u["status"] for u in alias_updates(stack, app)] == [200]


def test_every_accepted_shape_is_understood(stack, rb):
    """The sample events parse and decide (nothing is deployed for their functions)."""
    from pathlib import Path
    lam = stack.client("lambda")
    for name in ("eventbridge", "lambda-action", "sns", "metric-math"):
        payload = (Path(__file__).resolve().parents[1] / "events" / f"alarm-rollback-{name}.json").read_text()
        out = lam.invoke(FunctionName=FUNCTION, Payload=payload)
        assert "FunctionError" not in out, out["Payload"].read()
        results = json.loads(out["Payload"].read())["results"]
        outcome = results[0]["outcomes"][0]
        assert outcome["action"] == "none" and "no CodeDeploy deployment" in outcome["reason"], results


# --- fidelity to AWS: what AWS really delivers (issue 12) -----------------------------

def cloudwatch_time(epoch_s: float) -> str:
    """A timestamp as CloudWatch writes `state.timestamp`: milliseconds and `+0000`."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s)) + f".{int(epoch_s * 1000) % 1000:03d}+0000"


def alarm_event(app, name: str, transition_s: float, reason: str = "Threshold Crossed") -> dict:
    """An EventBridge alarm state change to ALARM of `name`, shaped like AWS's sample."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch", "account": ACCOUNT, "time": cloudwatch_time(time.time())[:19] + "Z",
            "region": REGION, "resources": [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"],
            "detail": {"alarmName": name,
                       "state": {"value": "ALARM", "reason": reason, "timestamp": cloudwatch_time(transition_s)},
                       "previousState": {"value": "OK", "reason": "ok", "timestamp": cloudwatch_time(transition_s - 600)},
                       "configuration": {"metrics": [{"id": "m1", "returnData": True, "metricStat": {
                           "metric": {"namespace": "AWS/Lambda", "name": "Errors",
                                      "dimensions": {"FunctionName": app.name, "Resource": f"{app.name}:{app.alias}"}},
                           "period": 60, "stat": "Sum"}}]}}}


def invoke_rollback(stack, event: dict):
    out = stack.client("lambda").invoke(FunctionName=FUNCTION, Payload=json.dumps(event))
    return out.get("FunctionError"), json.loads(out["Payload"].read())


def test_a_late_transition_from_before_the_release_undoes_nothing(stack, rb):
    """EventBridge and Lambda retry an event for hours: an alarm that went to ALARM before
    the release started judged the version before, and must not roll the release back."""
    app = make_app(stack)
    before = time.time() - 5
    released(stack, app, ended_minutes_ago=1)
    name = alarm_on(stack, app)
    error, body = invoke_rollback(stack, alarm_event(app, name, transition_s=before - 120))
    assert not error, body
    outcome = body["results"][0]["outcomes"][0]
    assert outcome["action"] == "none" and not outcome["acted"], outcome
    assert "not this release" in outcome["reason"], outcome["reason"]
    assert alias_version(stack, app) == "2" and alias_updates(stack, app) == []
    msg = rb(app.name)[0]
    assert attrs(msg)["action"] == "none" and "not this release" in json.loads(msg["Message"])["reason"]
    # The same alarm's transition after the release started does roll it back.
    error, body = invoke_rollback(stack, alarm_event(app, name, transition_s=time.time()))
    assert not error, body
    assert body["results"][0]["outcomes"][0]["action"] == "rollback", body
    assert alias_version(stack, app) == "1"


def test_a_five_megabyte_alarm_reason_still_makes_one_sns_message(stack, rb):
    """CloudWatch writes at most 1023 characters of reason; a forged or future 5 MB one is
    cut and marked, and the decision still fits SNS's 256 KiB (the emulator enforces it)."""
    app = make_app(stack)
    released(stack, app, ended_minutes_ago=1)
    name = alarm_on(stack, app)
    error, body = invoke_rollback(stack, alarm_event(app, name, time.time(), reason="r" * 5_000_000))
    assert not error, str(body)[:2000]
    assert body["results"][0]["outcomes"][0]["action"] == "rollback", str(body)[:2000]
    msg = rb(app.name)[0]
    assert len(msg["Message"].encode()) <= 262_144
    decision = json.loads(msg["Message"])
    alarm = next(c for c in decision["checks"] if c["name"] == "alarm")
    assert len(alarm["actual"]["reason"]) == 1023 and "cut by rollgate" in alarm["actual"]["reason"]


def deployment_event(application: str, group: str, deployment_id: str, state: str = "START") -> dict:
    """A CodeDeploy state change as EventBridge delivers it (AWS's sample): no compute platform."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "CodeDeploy Deployment State-change Notification",
            "source": "aws.codedeploy", "account": ACCOUNT, "time": cloudwatch_time(time.time())[:19] + "Z",
            "region": REGION,
            "resources": [f"arn:aws:codedeploy:{REGION}:{ACCOUNT}:deploymentgroup:{application}/{group}",
                          f"arn:aws:codedeploy:{REGION}:{ACCOUNT}:application:{application}"],
            "detail": {"region": REGION, "deploymentId": deployment_id, "instanceGroupId": str(uuid.uuid4()),
                       "deploymentGroup": group, "state": state, "application": application}}


def test_a_state_change_of_an_ec2_deployment_is_a_logged_no_op(stack, rb):
    """The deployment rule also matches EC2/ECS deployments (the event names no platform):
    alarm-rollback answers without an error, so Lambda does not retry it into the DLQ."""
    from support.helpers import ROLE
    cd = stack.client("codedeploy")
    name = f"fleet-{uuid.uuid4().hex[:8]}"
    cd.create_application(applicationName=name, computePlatform="Server")
    cd.create_deployment_group(applicationName=name, deploymentGroupName="web", serviceRoleArn=ROLE)
    dep = cd.create_deployment(applicationName=name, deploymentGroupName="web", revision={
        "revisionType": "S3", "s3Location": {"bucket": "artifacts", "key": "web.zip", "bundleType": "zip"}})["deploymentId"]
    error, body = invoke_rollback(stack, deployment_event(name, "web", dep))
    assert not error, body
    result = body["results"][0]
    assert result["ignored"] == dep and "not a Lambda one" in result["reason"], result
    assert stack.client("dynamodb").scan(
        TableName=LEDGER_TABLE, FilterExpression="deployment_id = :d",
        ExpressionAttributeValues={":d": {"S": dep}})["Items"] == []


def test_a_lambda_deployment_not_readable_yet_is_retried_with_a_named_error_type(stack, rb):
    """A deployment CodeDeploy does not know (yet) fails the invocation, so that Lambda's
    asynchronous retry records it later; errorType names the class, not a Rust type."""
    error, body = invoke_rollback(stack, deployment_event("orders", "live", "d-NOTYET123"))
    assert error, body
    assert body["errorType"] == "NotFound", body
    assert "d-NOTYET123" in body["errorMessage"]
    error, body = invoke_rollback(stack, {"detail-type": "CloudWatch Alarm State Change"})
    assert error and body["errorType"] == "InvalidEvent", body


# ------------------------------------------------------------ releases made by any tool

def test_a_release_made_with_update_alias_is_rolled_back_inside_its_bake_window(stack, rb):
    """No CodeDeploy: the alias is created on 1 and moved to 2 with plain UpdateAlias. The
    local AWS records both calls as CloudTrail does and puts them on the default bus; the
    stack's rule hands them to alarm-rollback, which records a release 1 -> 2 naming its
    caller; the alarm then points the alias back."""
    app = make_app(stack)
    created = ledger_deployment(stack, app, "Succeeded", origin="api")
    assert (created["from_version"]["S"], created["to_version"]["S"]) == ("", "1"), created
    stack.client("lambda").update_alias(FunctionName=app.name, Name="live", FunctionVersion="2")
    wait_for(lambda: any(i["to_version"]["S"] == "2" for i in ledger_items(stack, app, "dep#")), 30,
             "the UpdateAlias release in the ledger", interval=0.2)
    (item,) = [i for i in ledger_items(stack, app, "dep#") if i["to_version"]["S"] == "2"]
    assert (item["from_version"]["S"], item["origin"]["S"], item["status"]["S"]) == ("1", "api", "Succeeded")
    assert item["initiator"]["S"] == f"arn:aws:iam::{ACCOUNT}:user/rollgate-local-admin", item
    assert item["deployment_id"]["S"].startswith("ct-")
    fire(stack, alarm_on(stack, app))
    msg = rb(app.name)[0]
    assert attrs(msg)["action"] == "rollback", msg
    wait_for(lambda: alias_version(stack, app) == "1", 30, "the alias back on version 1")
    reason = json.loads(msg["Message"])["reason"]
    assert "released by arn:aws:iam::" in reason and "rollgate-local-admin" in reason, reason
    assert "bake window" in reason, reason
    # rollgate's own UpdateAlias was recorded by CloudTrail too, and is not a new release.
    wait_for(lambda: len([i for i in stack.control(f"invocations?function={FUNCTION}")
                          if app.name in json.dumps(i.get("payload"))
                          and "UpdateAlias" in json.dumps(i.get("payload"))
                          and i.get("status") not in (None, 202)]) >= 2, 30, "both UpdateAlias events handled")
    assert [i["to_version"]["S"] for i in ledger_items(stack, app, "dep#")] == ["1", "2"], [(i["from_version"]["S"], i["to_version"]["S"], i["status"]["S"], i.get("initiator", {}).get("S"), i["sk"]["S"], i.get("kind", {}).get("S")) for i in ledger_items(stack, app, "dep#")]


def test_a_weighted_shift_by_another_tool_is_undone_on_the_alias(stack, rb):
    app = make_app(stack)
    ledger_deployment(stack, app, "Succeeded", origin="api")
    stack.client("lambda").update_alias(FunctionName=app.name, Name="live", FunctionVersion="1",
                                        RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}})
    shift = ledger_deployment(stack, app, "InProgress", origin="api")
    assert (shift["from_version"]["S"], shift["to_version"]["S"]) == ("1", "2")
    fire(stack, alarm_on(stack, app))
    msg = rb(app.name)[0]
    assert attrs(msg)["action"] == "rollback", msg
    assert "during the traffic shift" in json.loads(msg["Message"])["reason"]
    alias = stack.client("lambda").get_alias(FunctionName=app.name, Name="live")
    assert alias["FunctionVersion"] == "1" and not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    assert stack.client("codedeploy").list_deployments(applicationName=app.application,
                                                       deploymentGroupName=app.group).get("deployments") == []


def test_codedeploys_own_alias_shifts_are_not_recorded_twice(stack, rb):
    app = make_app(stack)
    ledger_deployment(stack, app, "Succeeded", origin="api")  # the alias's creation
    dep = deploy(stack, app)
    assert wait_deployment(stack, dep)["status"] == "Succeeded"
    ledger_deployment(stack, app, "Succeeded")
    wait_for(lambda: len([i for i in stack.control(f"invocations?function={FUNCTION}")
                          if app.name in json.dumps(i.get("payload")) and "UpdateAlias" in json.dumps(i.get("payload"))
                          and i.get("status") not in (None, 202)]) >= 1, 30, "CodeDeploy's UpdateAlias event handled")
    origins = sorted(i.get("origin", {}).get("S") for i in ledger_items(stack, app, "dep#"))
    assert origins == ["api", "codedeploy"], origins
