"""CloudWatch alarm state changes: EventBridge event, actions, history; EventBridge
Lambda targets; the alias-race control endpoint."""

import json

from conftest import ACCOUNT, control, make_function, wait_for

FN_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:"


def put_alarm(aws, name, actions=(), **extra):
    aws.cloudwatch.put_metric_alarm(
        AlarmName=name, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
        Dimensions=[{"Name": "FunctionName", "Value": "orders"}, {"Name": "Resource", "Value": "orders:live"}],
        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
        AlarmActions=list(actions), **extra)


def test_state_change_goes_to_an_eventbridge_lambda_target(aws, emulator, fake_watch):
    make_function(aws, "catcher", versions=1, alias=None)
    got = []
    fake_watch.handlers["catcher"] = lambda payload, _ctx: (got.append(payload), (200, {}))[1]
    aws.events.put_rule(Name="alarms", EventPattern=json.dumps(
        {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
         "detail": {"state": {"value": ["ALARM"]}}}))
    aws.events.put_targets(Rule="alarms", Targets=[{"Id": "1", "Arn": FN_ARN + "catcher"}])
    put_alarm(aws, "orders-errors")
    aws.cloudwatch.set_alarm_state(AlarmName="orders-errors", StateValue="ALARM", StateReason="test")
    event = wait_for(lambda: got and got[0])
    assert event["detail-type"] == "CloudWatch Alarm State Change" and event["source"] == "aws.cloudwatch"
    assert event["resources"] == [f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:orders-errors"]
    assert event["time"].endswith("Z")
    detail = event["detail"]
    assert detail["alarmName"] == "orders-errors"
    assert detail["state"]["value"] == "ALARM" and detail["previousState"]["value"] == "OK"
    dims = detail["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]
    assert dims == {"FunctionName": "orders", "Resource": "orders:live"}
    # The same state again is no change: no event. Back to OK does not match the rule.
    aws.cloudwatch.set_alarm_state(AlarmName="orders-errors", StateValue="ALARM", StateReason="again")
    aws.cloudwatch.set_alarm_state(AlarmName="orders-errors", StateValue="OK", StateReason="fine")
    assert len(control(emulator, "alarm-events")) == 2
    assert len(got) == 1
    assert control(emulator, "lambda-deliveries")[0]["status"] == 202


def test_a_disabled_rule_delivers_nothing(aws, emulator, fake_watch):
    """EventBridge's DisableRule stops deliveries (moto alone would go on delivering)."""
    make_function(aws, "catcher", versions=1, alias=None)
    got = []
    fake_watch.handlers["catcher"] = lambda payload, _ctx: (got.append(payload), (200, {}))[1]
    aws.events.put_rule(Name="alarms", EventPattern=json.dumps({"source": ["aws.cloudwatch"]}))
    aws.events.put_targets(Rule="alarms", Targets=[{"Id": "1", "Arn": FN_ARN + "catcher"}])
    aws.events.disable_rule(Name="alarms")
    put_alarm(aws, "orders-errors")
    aws.cloudwatch.set_alarm_state(AlarmName="orders-errors", StateValue="ALARM", StateReason="test")
    aws.events.enable_rule(Name="alarms")
    aws.cloudwatch.set_alarm_state(AlarmName="orders-errors", StateValue="OK", StateReason="fine")
    event = wait_for(lambda: got and got[0])
    assert event["detail"]["state"]["value"] == "OK"
    assert len(got) == 1 and len(control(emulator, "lambda-deliveries")) == 1


def test_a_scheduled_rule_is_matched_by_no_event_on_the_bus(aws, emulator, fake_watch):
    """A rule with a ScheduleExpression and no EventPattern runs on its schedule only
    (EventBridge's PutRule): an alarm's state change is not delivered through it (moto's
    empty pattern alone would match every event)."""
    make_function(aws, "catcher", versions=1, alias=None)
    got = []
    fake_watch.handlers["catcher"] = lambda payload, _ctx: (got.append(payload), (200, {}))[1]
    aws.events.put_rule(Name="hourly", ScheduleExpression="rate(1 hour)")
    aws.events.put_targets(Rule="hourly", Targets=[{"Id": "1", "Arn": FN_ARN + "catcher"}])
    aws.events.put_rule(Name="alarms", EventPattern=json.dumps({"source": ["aws.cloudwatch"]}))
    aws.events.put_targets(Rule="alarms", Targets=[{"Id": "1", "Arn": FN_ARN + "catcher"}])
    put_alarm(aws, "orders-errors")
    aws.cloudwatch.set_alarm_state(AlarmName="orders-errors", StateValue="ALARM", StateReason="test")
    wait_for(lambda: got)
    assert [d["rule"] for d in control(emulator, "lambda-deliveries")] == ["alarms"]
    assert len(got) == 1


def test_an_undeliverable_event_goes_to_the_target_s_dlq_in_aws_shape(aws, emulator):
    """A rule target whose function or queue is gone: the event lands in the target's
    DeadLetterConfig queue with EventBridge's six String attributes (eb-rule-dlq.html)."""
    dlq = aws.sqs.create_queue(QueueName="alarms-dlq")["QueueUrl"]
    dlq_arn = aws.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    gone = aws.sqs.create_queue(QueueName="gone")["QueueUrl"]
    gone_arn = aws.sqs.get_queue_attributes(QueueUrl=gone, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.sqs.delete_queue(QueueUrl=gone)
    rule = aws.events.put_rule(Name="alarms", EventPattern=json.dumps({"source": ["aws.cloudwatch"]}))["RuleArn"]
    aws.events.put_targets(Rule="alarms", Targets=[
        {"Id": "fn", "Arn": FN_ARN + "nobody", "DeadLetterConfig": {"Arn": dlq_arn}},
        {"Id": "q", "Arn": gone_arn, "DeadLetterConfig": {"Arn": dlq_arn}},
        {"Id": "lost", "Arn": FN_ARN + "nobody-either"}])
    put_alarm(aws, "orders-errors")
    aws.cloudwatch.set_alarm_state(AlarmName="orders-errors", StateValue="ALARM", StateReason="test")
    got = aws.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
    assert len(got) == 2, got
    by_target = {m["MessageAttributes"]["TARGET_ARN"]["StringValue"]: m for m in got}
    assert set(by_target) == {FN_ARN + "nobody", gone_arn}
    for m in got:
        attrs = m["MessageAttributes"]
        assert set(attrs) == {"RULE_ARN", "TARGET_ARN", "ERROR_CODE", "ERROR_MESSAGE",
                              "EXHAUSTED_RETRY_CONDITION", "RETRY_ATTEMPTS"}, attrs
        assert all(a["DataType"] == "String" for a in attrs.values())
        assert attrs["RULE_ARN"]["StringValue"] == rule and attrs["ERROR_CODE"]["StringValue"] == "NO_RESOURCE"
        event = json.loads(m["Body"])
        assert event["detail-type"] == "CloudWatch Alarm State Change" and event["time"].endswith("Z")


def test_history_lists_state_updates_newest_first(aws):
    put_alarm(aws, "h")
    aws.cloudwatch.set_alarm_state(AlarmName="h", StateValue="ALARM", StateReason="x")
    aws.cloudwatch.set_alarm_state(AlarmName="h", StateValue="OK", StateReason="y")
    items = aws.cloudwatch.describe_alarm_history(AlarmName="h")["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in items] == ["Alarm updated from ALARM to OK",
                                                    "Alarm updated from OK to ALARM"]
    assert json.loads(items[0]["HistoryData"])["newState"]["value"] == "OK"


def test_lambda_and_sns_actions(aws, fake_watch):
    make_function(aws, "direct", versions=1, alias=None)
    got = []
    fake_watch.handlers["direct"] = lambda payload, _ctx: (got.append(payload), (200, {}))[1]
    topic = aws.sns.create_topic(Name="alarms")["TopicArn"]
    url = aws.sqs.create_queue(QueueName="alarm-sub")["QueueUrl"]
    qarn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
    put_alarm(aws, "act", actions=[FN_ARN + "direct", topic])
    aws.cloudwatch.set_alarm_state(AlarmName="act", StateValue="ALARM", StateReason="boom")
    payload = wait_for(lambda: got and got[0])
    assert payload["alarmArn"].endswith(":alarm:act") and payload["alarmData"]["state"]["value"] == "ALARM"
    msgs = wait_for(lambda: aws.sqs.receive_message(QueueUrl=url).get("Messages"))
    note = json.loads(json.loads(msgs[0]["Body"])["Message"])
    assert note["NewStateValue"] == "ALARM" and note["OldStateValue"] == "OK"
    assert {"name": "FunctionName", "value": "orders"} in note["Trigger"]["Dimensions"]
    assert note["StateChangeTime"] == payload["alarmData"]["state"]["timestamp"]


def test_alias_race_makes_the_next_update_stale(aws, emulator):
    make_function(aws, "raced", versions=3)
    rev = aws.lam.get_alias(FunctionName="raced", Name="live")["RevisionId"]
    req = "alias-race?function=raced&alias=live&version=3"
    import urllib.request
    urllib.request.urlopen(urllib.request.Request(f"{emulator}/_rollgate/{req}", method="POST", data=b""))
    try:
        aws.lam.update_alias(FunctionName="raced", Name="live", FunctionVersion="2", RevisionId=rev)
        raise AssertionError("expected PreconditionFailedException")
    except aws.lam.exceptions.PreconditionFailedException:
        pass
    assert aws.lam.get_alias(FunctionName="raced", Name="live")["FunctionVersion"] == "3"
    updates = control(emulator, "alias-updates?function=raced")
    assert [(u["version"], u["status"]) for u in updates] == [("2", 412)]


def test_put_events_refuses_aws_sources_in_place(aws):
    """An entry with an aws.* source fails alone, with AWS's code; the others go, and the
    answers keep the request's order."""
    out = aws.events.put_events(Entries=[
        {"Source": "app.orders", "DetailType": "order", "Detail": "{}"},
        {"Source": "aws.cloudwatch", "DetailType": "CloudWatch Alarm State Change", "Detail": "{}"},
        {"Source": "app.orders", "DetailType": "order", "Detail": "{}"}])
    assert out["FailedEntryCount"] == 1
    codes = [e.get("ErrorCode") for e in out["Entries"]]
    assert codes == [None, "NotAuthorizedForSourceException", None], out
    assert out["Entries"][0]["EventId"] and out["Entries"][2]["EventId"]
