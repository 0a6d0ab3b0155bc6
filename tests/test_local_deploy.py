"""infra/local/deploy.py puts the SAM stack (and the example app on top of it) onto the
emulator with the template's properties, including what moto's CloudFormation skips."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "infra" / "local"))
import cfn  # noqa: E402
from deploy import deploy_stack  # noqa: E402

STACK = "rgdeploy"  # not "rollgate": the session's bootstrap already made that hook
APP = "rgapp"
ALLOW = "arn:aws:sqs:us-east-1:123456789012:orders-*"


@pytest.fixture(scope="module")
def deployed(stack):
    outputs = deploy_stack(stack, ROOT / "infra" / "template.yaml",
                           {"NotificationEmail": "ops@example.com", "RedriveAllowList": ALLOW,
                            "DryRun": "true", "BakeMinutes": "30"}, stack_name=STACK)
    app = deploy_stack(stack, ROOT / "infra" / "example-app" / "template.yaml",
                       {"RollgateStackName": STACK}, stack_name=APP)
    yield outputs, app
    # This stack's functions run rollgate's binaries with roles scoped to this stack: while
    # they exist, the session's own functions of those binaries are held to both roles
    # (rollgate_emulator/iam.py), so they go with the module.
    lam = stack.client("lambda")
    for page in lam.get_paginator("list_functions").paginate():
        for fn in page["Functions"]:
            if STACK in fn["FunctionName"] or fn["FunctionName"].startswith(APP):
                lam.delete_function(FunctionName=fn["FunctionName"])


def test_outputs_are_exported(deployed, stack):
    outputs, _ = deployed
    assert outputs["PreTrafficHookName"] == f"CodeDeployHook_{STACK}-pre-traffic"
    assert outputs["PostTrafficHookArn"].endswith(f":function:CodeDeployHook_{STACK}-post-traffic")
    assert outputs["DecisionTopicArn"] == f"arn:aws:sns:us-east-1:123456789012:{STACK}-decisions"
    exports = {e["Name"]: e["Value"] for e in stack.client("cloudformation").list_exports()["Exports"]}
    assert exports[f"{STACK}-PreTrafficHookName"] == outputs["PreTrafficHookName"]
    assert exports[f"{STACK}-DecisionTopicArn"] == outputs["DecisionTopicArn"]


BINARIES = {"pre-traffic": "pre-traffic-hook", "post-traffic": "post-traffic-hook",
            "alarm-rollback": "alarm-rollback", "dlq-redrive": "dlq-redrive", "rollout": "rollout"}


@pytest.mark.parametrize("suffix", sorted(BINARIES))
def test_functions_have_the_templates_properties(deployed, stack, suffix):
    outputs, _ = deployed
    name = f"CodeDeployHook_{STACK}-{suffix}" if suffix.endswith("traffic") else f"{STACK}-{suffix}"
    conf = stack.client("lambda").get_function_configuration(FunctionName=name)
    assert conf["Runtime"] == "provided.al2023"
    assert conf["Architectures"] == ["arm64"]
    assert conf["Handler"] == BINARIES[suffix]  # the emulator forwards to this watch binary
    assert conf["Role"].startswith("arn:aws:iam::123456789012:role/")
    env = conf["Environment"]["Variables"]
    assert env["ROLLGATE_TOPIC_ARN"] == outputs["DecisionTopicArn"]
    if suffix == "alarm-rollback":
        assert env["ROLLGATE_LEDGER_TABLE"] == outputs["LedgerTableName"]
        assert (env["ROLLGATE_DRY_RUN"], env["ROLLGATE_BAKE_MINUTES"]) == ("true", "30")
        # RollbackAllowList left empty: every function of the account and region.
        assert env["ROLLGATE_ROLLBACK_ALLOW"] == "arn:aws:lambda:us-east-1:123456789012:function:*"
        # Its own role and the rollout's: the alias changes they make are not recorded
        # again from CloudTrail.
        rollout = stack.client("lambda").get_function_configuration(FunctionName=f"{STACK}-rollout")["Role"]
        assert env["ROLLGATE_OWN_ROLES"] == f"{conf['Role']},{rollout}"
    if suffix == "dlq-redrive":
        assert env["ROLLGATE_REDRIVE_ALLOW"].split(",")[-1] == ALLOW
    if suffix == "rollout":
        assert env["ROLLGATE_SCHEDULE_GROUP"] == f"{STACK}-rollouts"
        group = stack.client("scheduler").get_schedule_group(Name=env["ROLLGATE_SCHEDULE_GROUP"])
        assert group["Arn"].endswith(f":schedule-group/{STACK}-rollouts")
        scheduler_role = env["ROLLGATE_SCHEDULER_ROLE_ARN"].rsplit("/", 1)[1]
        trust = stack.client("iam").get_role(RoleName=scheduler_role)["Role"]["AssumeRolePolicyDocument"]
        assert "scheduler.amazonaws.com" in json.dumps(trust)
    logs = stack.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
    assert [g["retentionInDays"] for g in logs] == [90]
    assert stack.client("sqs").get_queue_url(QueueName=f"{STACK}-{suffix}-dlq")["QueueUrl"]


def test_ledger_table_with_point_in_time_recovery(deployed, stack):
    outputs, _ = deployed
    ddb = stack.client("dynamodb")
    table = ddb.describe_table(TableName=outputs["LedgerTableName"])["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    backups = ddb.describe_continuous_backups(TableName=outputs["LedgerTableName"])
    assert backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"][
        "PointInTimeRecoveryStatus"] == "ENABLED"


def test_topic_is_encrypted_and_mail_subscribed(deployed, stack):
    outputs, _ = deployed
    sns = stack.client("sns")
    attrs = sns.get_topic_attributes(TopicArn=outputs["DecisionTopicArn"])["Attributes"]
    assert attrs["KmsMasterKeyId"] == "alias/aws/sns"
    subs = sns.list_subscriptions_by_topic(TopicArn=outputs["DecisionTopicArn"])["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("email", "ops@example.com")]


def test_rules_route_to_alarm_rollback_with_retries_and_dlq(deployed, stack):
    outputs, _ = deployed
    events, sqs = stack.client("events"), stack.client("sqs")
    template = cfn.expand_sam(cfn.load(ROOT / "infra" / "template.yaml"), {})
    resolver = cfn.Resolver(template, {})
    fn_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{outputs['AlarmRollbackFunctionName']}"
    for lid, rule_name, dlq in (("AlarmRollbackAlarmState", f"{STACK}-alarm-state", f"{STACK}-alarm-rule-dlq"),
                                ("AlarmRollbackDeploymentState", f"{STACK}-deployment-state",
                                 f"{STACK}-deployment-rule-dlq"),
                                ("AlarmRollbackAliasChanges", f"{STACK}-alias-changes",
                                 f"{STACK}-deployment-rule-dlq")):
        rule = events.describe_rule(Name=rule_name)
        expected = resolver.resolve(template["Resources"][lid]["Properties"]["EventPattern"])
        assert json.loads(rule["EventPattern"]) == expected
        (target,) = events.list_targets_by_rule(Rule=rule_name)["Targets"]
        assert target["Arn"] == fn_arn
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600}
        assert target["DeadLetterConfig"]["Arn"] == f"arn:aws:sqs:us-east-1:123456789012:{dlq}"
        url = sqs.get_queue_url(QueueName=dlq)["QueueUrl"]
        policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
        (st,) = policy["Statement"]
        assert st["Principal"] == {"Service": "events.amazonaws.com"}
        assert rule["Arn"] in st["Condition"]["ArnEquals"]["aws:SourceArn"]
    # The hourly delivery summary: a schedule, no pattern; the deployment rules' DLQ.
    schedule = events.describe_rule(Name=f"{STACK}-delivery-summary")
    assert schedule["ScheduleExpression"] == "rate(1 hour)" and "EventPattern" not in schedule
    (target,) = events.list_targets_by_rule(Rule=schedule["Name"])["Targets"]
    assert target["Arn"] == fn_arn and "Input" not in target
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    assert target["DeadLetterConfig"]["Arn"] == f"arn:aws:sqs:us-east-1:123456789012:{STACK}-deployment-rule-dlq"
    permissions = json.loads(stack.client("lambda").get_policy(
        FunctionName=outputs["AlarmRollbackFunctionName"])["Policy"])["Statement"]
    assert {p["Principal"]["Service"] for p in permissions} == {"events.amazonaws.com"}
    assert len(permissions) == 4


def test_invoking_a_deployed_function_reaches_its_binary(deployed, stack):
    """The emulator forwards to the watch binary the Handler names, which answers."""
    outputs, _ = deployed
    event = json.loads((ROOT / "events" / "pre-traffic-hook.json").read_text())
    # Long read timeout: watch may still have to compile the binary.
    lam = boto3.client("lambda", endpoint_url=stack.endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing",
                       config=Config(retries={"max_attempts": 1}, read_timeout=900))
    resp = lam.invoke(FunctionName=outputs["PreTrafficHookName"], Payload=json.dumps(event))
    assert resp["StatusCode"] == 200
    calls = stack.control(f"invocations?function={outputs['PreTrafficHookName']}")
    assert [(c["binary"], c["status"]) for c in calls] == [("pre-traffic-hook", 200)]


def test_example_app_on_top_of_the_stack(deployed, stack):
    _, app = deployed
    lam, cd, cw = stack.client("lambda"), stack.client("codedeploy"), stack.client("cloudwatch")
    fn = app["FunctionName"]
    assert fn == f"{APP}-orders"
    alias = lam.get_alias(FunctionName=fn, Name="live")
    assert alias["FunctionVersion"] == "1"
    conf = lam.get_function_configuration(FunctionName=fn, Qualifier="1")
    assert (conf["Architectures"], conf["Handler"]) == (["arm64"], "example-app")
    (alarm,) = cw.describe_alarms(AlarmNames=[app["ErrorAlarmName"]])["MetricAlarms"]
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
        "FunctionName": fn, "Resource": f"{fn}:live", "ExecutedVersion": "1"}
    (application,) = [a for a in cd.list_applications()["applications"] if a.startswith(f"{APP}-")]
    (group,) = cd.list_deployment_groups(applicationName=application)["deploymentGroups"]
    info = cd.get_deployment_group(applicationName=application, deploymentGroupName=group)["deploymentGroupInfo"]
    assert info["deploymentConfigName"] == "CodeDeployDefault.LambdaCanary10Percent5Minutes"
    assert info["computePlatform"] == "Lambda"
    policy = stack.client("ssm").get_parameter(Name=f"/rollgate/policies/{fn}")["Parameter"]["Value"]
    assert json.loads(policy)["pre_traffic"]["checks"]["architecture"] == "arm64"
