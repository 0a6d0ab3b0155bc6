"""Composite alarms (rollgate_emulator/composite.py): PutCompositeAlarm, the rule language,
evaluation from the children, and state-change events shaped like AWS's composite sample."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rollgate_emulator.composite import RuleError, children, evaluate, parse_rule  # noqa: E402


def metric_alarm(aws, name: str) -> None:
    aws.cloudwatch.put_metric_alarm(
        AlarmName=name, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
        Dimensions=[{"Name": "FunctionName", "Value": "orders"}], Period=60, EvaluationPeriods=1,
        Threshold=1, ComparisonOperator="GreaterThanThreshold")


def set_state(aws, name: str, value: str) -> None:
    aws.cloudwatch.set_alarm_state(AlarmName=name, StateValue=value, StateReason="test")


def composite_state(aws, name: str) -> dict:
    out = aws.cloudwatch.describe_alarms(AlarmNames=[name], AlarmTypes=["CompositeAlarm"])
    (alarm,) = out["CompositeAlarms"]
    return alarm


def events_of(emulator_control, name: str) -> list[dict]:
    return [e for e in emulator_control("alarm-events") if e["Detail"]["alarmName"] == name]


@pytest.fixture
def control(emulator):
    import urllib.request

    def get(path: str):
        with urllib.request.urlopen(f"{emulator}/_rollgate/{path}") as r:
            return json.loads(r.read())
    return get


@pytest.mark.parametrize("rule,states,expected", [
    ('ALARM("errors") OR ALARM(latency)', {"errors": "OK", "latency": "ALARM"}, True),
    ("ALARM(errors) AND ALARM(latency)", {"errors": "ALARM", "latency": "OK"}, False),
    ("ALARM(a) AND NOT OK(b)", {"a": "ALARM", "b": "INSUFFICIENT_DATA"}, True),
    ("(ALARM(a) OR ALARM(b)) AND NOT ALARM(maintenance)", {"a": "ALARM", "maintenance": "ALARM"}, False),
    ("ALARM(a) OR ALARM(b) AND ALARM(c)", {"a": "ALARM", "b": "OK", "c": "OK"}, True),  # AND binds tighter
    ("TRUE", {}, True),
    ("FALSE OR INSUFFICIENT_DATA(gone)", {}, True),  # an unknown alarm has no data
    ("ALARM(arn:aws:cloudwatch:us-east-1:123456789012:alarm:errors)", {"errors": "ALARM"}, True),
])
def test_the_rule_language(rule, states, expected):
    assert evaluate(parse_rule(rule), states) is expected


@pytest.mark.parametrize("rule", ["", "ALARM(", "ALARM()", "ALARM(a) XOR ALARM(b)", "ALARM(a) AND", "(ALARM(a)",
                                  "BROKEN(a)", "ALARM(a))"])
def test_rules_that_do_not_parse_are_refused(rule):
    with pytest.raises(RuleError):
        parse_rule(rule)


def test_children_are_named_by_name_or_arn():
    node = parse_rule('ALARM("a b") OR NOT OK(arn:aws:cloudwatch:us-east-1:123456789012:alarm:c)')
    assert children(node) == {"a b", "c"}


def test_a_composite_follows_its_children_and_says_so_on_the_bus(aws, control):
    metric_alarm(aws, "orders-errors")
    metric_alarm(aws, "orders-latency")
    aws.cloudwatch.put_composite_alarm(
        AlarmName="orders-health", AlarmRule='ALARM("orders-errors") OR ALARM("orders-latency")',
        AlarmDescription="orders is unhealthy", Tags=[{"Key": "rollgate:function", "Value": "orders"}])
    assert composite_state(aws, "orders-health")["StateValue"] == "OK"
    set_state(aws, "orders-latency", "ALARM")
    alarm = composite_state(aws, "orders-health")
    assert alarm["StateValue"] == "ALARM"
    assert alarm["AlarmRule"] == 'ALARM("orders-errors") OR ALARM("orders-latency")'
    event = events_of(control, "orders-health")[-1]
    assert event["Source"] == "aws.cloudwatch" and event["DetailType"] == "CloudWatch Alarm State Change"
    detail = event["Detail"]
    assert detail["state"]["value"] == "ALARM" and detail["previousState"]["value"] == "OK"
    assert detail["configuration"]["alarmRule"] == alarm["AlarmRule"]
    assert "metrics" not in detail["configuration"]
    assert ":alarm:orders-latency transitioned to ALARM" in detail["state"]["reason"]
    triggering = json.loads(detail["state"]["reasonData"])["triggeringAlarms"]
    by_name = {t["arn"].rsplit(":", 1)[1]: t["state"]["value"] for t in triggering}
    assert set(by_name) == {"orders-errors", "orders-latency"} and by_name["orders-latency"] == "ALARM"
    assert event["Resources"] == [alarm["AlarmArn"]]
    # Its tags are there for alarm-rollback to resolve it by.
    tags = aws.cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
    assert tags == [{"Key": "rollgate:function", "Value": "orders"}]
    set_state(aws, "orders-latency", "OK")
    assert composite_state(aws, "orders-health")["StateValue"] == "OK"


def test_nested_composites_follow_too(aws):
    metric_alarm(aws, "leaf")
    aws.cloudwatch.put_composite_alarm(AlarmName="inner", AlarmRule="ALARM(leaf)")
    aws.cloudwatch.put_composite_alarm(AlarmName="outer", AlarmRule="ALARM(inner) AND NOT ALARM(maintenance)")
    set_state(aws, "leaf", "ALARM")
    assert composite_state(aws, "outer")["StateValue"] == "ALARM"


def test_a_rule_that_does_not_parse_is_a_validation_error(aws):
    with pytest.raises(ClientError) as e:
        aws.cloudwatch.put_composite_alarm(AlarmName="bad", AlarmRule="ALARM(a) XOR ALARM(b)")
    assert e.value.response["Error"]["Code"] == "ValidationError"
