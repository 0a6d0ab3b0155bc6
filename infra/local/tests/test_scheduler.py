"""EventBridge Scheduler's one-time schedules: refused as AWS refuses them, fired once on
the emulator's scaled clock through the execution role, deleted after when asked."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, MINUTE_SECONDS, control, make_function, wait_for

TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
    "Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def role(aws, name: str, trust: dict, invoke: str | None) -> str:
    arn = aws.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    if invoke:
        aws.iam.put_role_policy(RoleName=name, PolicyName="invoke", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                                    "Resource": invoke}]}))
    return arn


def at(minutes: float) -> str:
    when = datetime.now(timezone.utc) + timedelta(minutes=minutes)
    return f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})"


def schedule(aws, name: str, expression: str, role_arn: str, group: str = "rollouts", **extra):
    return aws.scheduler.create_schedule(
        Name=name, GroupName=group, ScheduleExpression=expression,
        FlexibleTimeWindow={"Mode": "OFF"}, ActionAfterCompletion="DELETE",
        Target={"Arn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:sched-echo",
                "RoleArn": role_arn, "Input": json.dumps({"step": name})}, **extra)


@pytest.fixture()
def group(aws, fake_watch):
    make_function(aws, "sched-echo", versions=1)
    fake_watch.handlers["sched-echo"] = lambda payload, ctx: (200, {})
    aws.scheduler.create_schedule_group(Name="rollouts")
    return "rollouts"


def test_a_one_time_schedule_fires_once_on_the_scaled_clock_and_deletes_itself(aws, emulator, group, fake_watch):
    arn = role(aws, "sched-ok", TRUST, f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:sched-echo")
    started = time.monotonic()
    schedule(aws, "step-1", at(2), arn)
    fired = wait_for(lambda: control(emulator, "schedules"), timeout=15)
    elapsed = time.monotonic() - started
    # Two scaled minutes (MINUTE_SECONDS each), not two real ones.
    assert 1.5 * MINUTE_SECONDS <= elapsed < 60, elapsed
    assert fired[0]["name"] == "step-1" and fired[0]["status"] == "invoked"
    got = wait_for(lambda: [r for r in fake_watch.requests if r["binary"] == "sched-echo"], timeout=10)
    assert got[0]["payload"] == {"step": "step-1"}
    with pytest.raises(ClientError) as err:
        aws.scheduler.get_schedule(Name="step-1", GroupName=group)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_schedule_deleted_before_its_time_never_fires(aws, emulator, group):
    arn = role(aws, "sched-del", TRUST, "*")
    schedule(aws, "step-2", at(1), arn)
    aws.scheduler.delete_schedule(Name="step-2", GroupName=group)
    time.sleep(2 * MINUTE_SECONDS + 0.5)
    assert control(emulator, "schedules") == []


def test_what_scheduler_refuses(aws, emulator, group):
    ok = role(aws, "sched-refusals", TRUST, "*")
    untrusted = role(aws, "sched-untrusted", {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}, "*")
    cases = [
        (dict(name="bad-expr", expression="at(2026-12-04T10:00:00Z)", role_arn=ok), "ValidationException", 400),
        (dict(name="bad-expr2", expression="in 5 minutes", role_arn=ok), "ValidationException", 400),
        (dict(name="no-group", expression=at(5), role_arn=ok, group="nope"), "ResourceNotFoundException", 404),
        (dict(name="untrusted", expression=at(5), role_arn=untrusted), "ValidationException", 400),
        (dict(name="bad name!", expression=at(5), role_arn=ok), "ValidationException", 400),
    ]
    for kwargs, code, status in cases:
        with pytest.raises(ClientError) as err:
            schedule(aws, kwargs.pop("name"), kwargs.pop("expression"), kwargs.pop("role_arn"), **kwargs)
        assert (err.value.response["Error"]["Code"], err.value.response["ResponseMetadata"]["HTTPStatusCode"]) \
            == (code, status), kwargs
    schedule(aws, "twice", at(30), ok)
    with pytest.raises(ClientError) as err:
        schedule(aws, "twice", at(30), ok)
    assert err.value.response["Error"]["Code"] == "ConflictException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_a_role_that_may_not_invoke_the_target_fails_the_schedule(aws, emulator, group, fake_watch):
    arn = role(aws, "sched-noinvoke", TRUST, f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:other")
    schedule(aws, "step-3", at(0), arn)
    fired = wait_for(lambda: control(emulator, "schedules"), timeout=10)
    assert fired[0]["status"].startswith("AccessDenied"), fired
    assert not [r for r in fake_watch.requests if r["binary"] == "sched-echo"]
