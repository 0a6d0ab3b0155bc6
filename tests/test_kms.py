"""The stack under a customer-managed KMS key (the template's KmsKeyArn parameter): topic,
dead-letter queues and log groups use the key, and every function still does its work,
because its role holds kms:GenerateDataKey and kms:Decrypt on the key, which SNS and SQS
ask of the caller (the local AWS asks as they do: rollgate_emulator/iam.py)."""

from __future__ import annotations

import json
import uuid

import pytest

from support import helpers
from support.helpers import (ACCOUNT, HOOK_FUNCTION, LOG_DIR, POLICY_PREFIX, POST_HOOK_FUNCTION, REGION, TOPIC_ARN,
                      appspec, bootstrap, deploy, make_app, topic_inbox, wait_deployment)
from harness import LocalAws
from test_alarm_rollback import alarm_on, fire, released
from test_post_traffic import policy

QUEUES = ("pre-traffic", "post-traffic", "alarm-rollback", "dlq-redrive", "rollout", "alarm-rule", "deployment-rule")


@pytest.fixture(scope="module")
def world():
    env = {"ROLLGATE_TOPIC_ARN": TOPIC_ARN, "ROLLGATE_POLICY_PREFIX": POLICY_PREFIX,
           "ROLLGATE_SELF_FUNCTION": POST_HOOK_FUNCTION,
           "ROLLGATE_MAX_RUN_SECONDS": helpers.POST_HOOK_MAX_RUN_SECONDS,
           "ROLLGATE_LEDGER_TABLE": helpers.LEDGER_TABLE,
           # The stack's own queues too: the redrive below empties one of its DLQs.
           "ROLLGATE_REDRIVE_ALLOW": f"arn:aws:sqs:{REGION}:{ACCOUNT}:rollgate-*,{helpers.REDRIVE_ALLOW}"}
    with LocalAws(env=env, minute_seconds=0.2, hook_timeout_seconds=120, log_dir=LOG_DIR / "kms") as aws:
        key = aws.client("kms").create_key(Description="rollgate test CMK")["KeyMetadata"]["Arn"]
        bootstrap(aws, {"KmsKeyArn": key})
        aws.key = key
        aws.announced = topic_inbox(aws, "kms-decisions")
        yield aws


def announced(world, want: dict) -> dict:
    """The first decision whose message attributes include `want`."""
    return world.announced(want)


def test_the_stacks_topic_queues_and_log_groups_use_the_key(world):
    key = world.key
    topic = world.client("sns").get_topic_attributes(TopicArn=TOPIC_ARN)["Attributes"]
    assert topic["KmsMasterKeyId"] == key
    sqs = world.client("sqs")
    for name in QUEUES:
        url = sqs.get_queue_url(QueueName=f"rollgate-{name}-dlq")["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attrs.get("KmsMasterKeyId") == key, (name, attrs)
    groups = world.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
    mine = [g for g in groups if "rollgate" in g["logGroupName"]]
    assert len(mine) == 5 and all(g.get("kmsKeyId") == key for g in mine), mine


def test_both_hooks_announce_on_the_encrypted_topic(world):
    app = make_app(world, policy=policy(on_no_data="pass", bake_minutes=0.02))
    dep = deploy(world, app, appspec(app, hook=HOOK_FUNCTION, after_hook=POST_HOOK_FUNCTION))
    info = wait_deployment(world, dep, timeout=90)
    assert info["status"] == "Succeeded", info.get("errorInformation")
    assert announced(world, {"deployment": dep, "component": "pre-traffic-hook"})
    assert announced(world, {"deployment": dep, "component": "post-traffic-hook"})


def test_alarm_rollback_announces_on_the_encrypted_topic(world):
    app = make_app(world)
    released(world, app, ended_minutes_ago=0)
    fire(world, alarm_on(world, app))
    msg = announced(world, {"component": "alarm-rollback", "function": app.name})
    assert msg["MessageAttributes"]["action"]["Value"] == "rollback"


def test_redrive_moves_dead_letters_between_encrypted_queues(world):
    sqs = world.client("sqs")
    dlq = sqs.get_queue_url(QueueName="rollgate-pre-traffic-dlq")["QueueUrl"]
    out = sqs.create_queue(QueueName=f"redrive-kms-{uuid.uuid4().hex[:6]}",
                           Attributes={"KmsMasterKeyId": world.key})["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"n": i}))
    answer = world.client("lambda").invoke(FunctionName=helpers.STACK_FUNCTIONS["dlq-redrive"],
                                           Payload=json.dumps({"source": dlq, "destination": out}).encode())
    report = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, report
    assert report["moved"] == 3, report
    got = sqs.receive_message(QueueUrl=out, MaxNumberOfMessages=10)["Messages"]
    assert sorted(json.loads(m["Body"])["n"] for m in got) == [0, 1, 2]
    assert announced(world, {"component": "dlq-redrive"})


def test_a_rollout_announces_on_the_encrypted_topic(world):
    app = make_app(world)
    answer = world.client("lambda").invoke(FunctionName=helpers.STACK_FUNCTIONS["rollout"], Payload=json.dumps({
        "action": "start", "function": app.name, "version": "2", "requester": "kms-test",
        "steps": [{"weight": 10, "hold": "1d"}, {"weight": 100}]}).encode())
    out = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, out
    msg = announced(world, {"component": "rollout", "function": app.name})
    assert msg["MessageAttributes"]["status"]["Value"] == "running"
