"""The stack's EventBridge rules, as SAM expands them, match their sample events in
events/ and reject near misses (matcher: infra/local/event_pattern.py)."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "infra" / "local"))
import cfn  # noqa: E402
from event_pattern import matches, validate  # noqa: E402

EVENTS = ROOT / "events"
ALARM_RULE = "AlarmRollbackAlarmState"
DEPLOYMENT_RULE = "AlarmRollbackDeploymentState"


def rule_pattern(logical_id: str, **parameters: str) -> dict:
    template = cfn.load(ROOT / "infra" / "template.yaml")
    expanded = cfn.expand_sam(template, parameters)
    rule = expanded["Resources"][logical_id]
    assert rule["Type"] == "AWS::Events::Rule"
    pattern = cfn.Resolver(expanded, parameters).resolve(rule["Properties"]["EventPattern"])
    validate(pattern)
    return pattern


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def samples(source: str, detail_type: str) -> list[Path]:
    """Every EventBridge-shaped sample of that source and detail-type in events/ (the
    function engineers add theirs; direct-invoke and SNS shapes are skipped)."""
    found = []
    for path in sorted(EVENTS.glob("*.json")):
        event = json.loads(path.read_text())
        if isinstance(event, dict) and event.get("source") == source and event.get("detail-type") == detail_type:
            found.append(path)
    return found


ALARM_SAMPLES = samples("aws.cloudwatch", "CloudWatch Alarm State Change")
DEPLOYMENT_SAMPLES = samples("aws.codedeploy", "CodeDeploy Deployment State-change Notification")


def test_the_samples_exist():
    assert EVENTS / "eventbridge-alarm-state-change.json" in ALARM_SAMPLES
    assert EVENTS / "eventbridge-codedeploy-state-change.json" in DEPLOYMENT_SAMPLES


@pytest.mark.parametrize("path", ALARM_SAMPLES, ids=lambda p: p.name)
def test_alarm_rule_takes_alarms_going_to_alarm(path):
    event = json.loads(path.read_text())
    assert matches(rule_pattern(ALARM_RULE), event) is (event["detail"]["state"]["value"] == "ALARM")


@pytest.mark.parametrize("path", DEPLOYMENT_SAMPLES, ids=lambda p: p.name)
def test_deployment_rule_takes_every_deployment_state_change(path):
    assert matches(rule_pattern(DEPLOYMENT_RULE), json.loads(path.read_text()))


def near_misses(event: dict) -> dict[str, dict]:
    def changed(fn) -> dict:
        e = copy.deepcopy(event)
        fn(e)
        return e

    return {
        "other source": changed(lambda e: e.update(source="aws.events")),
        "other detail-type": changed(lambda e: e.update({"detail-type": "CloudWatch Alarm Configuration Change"})),
        "custom source posing as CloudWatch": changed(lambda e: e.update(source="custom.cloudwatch")),
    }


def test_alarm_rule_rejects_near_misses():
    pattern = rule_pattern(ALARM_RULE)
    event = load("eventbridge-alarm-state-change.json")
    assert matches(pattern, event)
    for state in ("OK", "INSUFFICIENT_DATA", "alarm"):
        e = copy.deepcopy(event)
        e["detail"]["state"]["value"] = state
        assert not matches(pattern, e), state
    for name, e in near_misses(event).items():
        assert not matches(pattern, e), name
    no_state = copy.deepcopy(event)
    del no_state["detail"]["state"]
    assert not matches(pattern, no_state)


def test_alarm_rule_with_a_name_prefix_takes_only_those_alarms():
    event = load("eventbridge-alarm-state-change.json")  # alarm "example-app-orders-errors"
    assert matches(rule_pattern(ALARM_RULE, AlarmNamePrefix="example-app-"), event)
    assert not matches(rule_pattern(ALARM_RULE, AlarmNamePrefix="payments-"), event)
    assert not matches(rule_pattern(ALARM_RULE, AlarmNamePrefix="Example-App-"), event)  # case-sensitive
    ok = copy.deepcopy(event)
    ok["detail"]["state"]["value"] = "OK"
    assert not matches(rule_pattern(ALARM_RULE, AlarmNamePrefix="example-app-"), ok)
    # Without a prefix the pattern names no alarm at all.
    assert "alarmName" not in rule_pattern(ALARM_RULE)["detail"]


def test_deployment_rule_rejects_near_misses():
    pattern = rule_pattern(DEPLOYMENT_RULE)
    event = load("eventbridge-codedeploy-state-change.json")
    assert matches(pattern, event)
    e = copy.deepcopy(event)
    e["source"] = "aws.cloudwatch"
    assert not matches(pattern, e)
    e = copy.deepcopy(event)
    e["detail-type"] = "CodeDeploy Instance State-change Notification"
    assert not matches(pattern, e)
    # The alarm rule and the deployment rule never take each other's events.
    assert not matches(pattern, load("eventbridge-alarm-state-change.json"))
    assert not matches(rule_pattern(ALARM_RULE), event)


ALIAS_RULE = "AlarmRollbackAliasChanges"
ALIAS_SAMPLES = samples("aws.lambda", "AWS API Call via CloudTrail")


def test_alias_rule_takes_lambda_alias_calls_and_nothing_else():
    assert EVENTS / "alarm-rollback-cloudtrail.json" in ALIAS_SAMPLES
    pattern = rule_pattern(ALIAS_RULE)
    for path in ALIAS_SAMPLES:
        assert matches(pattern, json.loads(path.read_text())), path.name
    event = load("alarm-rollback-cloudtrail.json")
    for name in ("CreateAlias20150331", "UpdateAlias20150331"):
        e = copy.deepcopy(event)
        e["detail"]["eventName"] = name
        assert matches(pattern, e), name
    for name in ("DeleteAlias20150331", "UpdateFunctionConfiguration20150331v2", "PublishVersion20150331"):
        e = copy.deepcopy(event)
        e["detail"]["eventName"] = name
        assert not matches(pattern, e), name
    e = copy.deepcopy(event)
    e["detail"]["eventSource"] = "kms.amazonaws.com"  # KMS has an UpdateAlias too
    assert not matches(pattern, e)
    for name, e in near_misses(event).items():
        assert not matches(pattern, e), name
    # No rule takes another's events.
    assert not matches(pattern, load("eventbridge-alarm-state-change.json"))
    assert not matches(rule_pattern(DEPLOYMENT_RULE), event)
    assert not matches(rule_pattern(ALARM_RULE), event)


def test_the_shift_rule_takes_deployment_starts_only():
    pattern = rule_pattern("RolloutShiftStarts")
    event = load("eventbridge-codedeploy-state-change.json")
    assert event["detail"]["state"] == "START" and matches(pattern, event)
    for state in ("SUCCESS", "FAILURE", "STOP", "READY", "start"):
        e = copy.deepcopy(event)
        e["detail"]["state"] = state
        assert not matches(pattern, e), state
    for name, e in near_misses(event).items():
        assert not matches(pattern, e), name
