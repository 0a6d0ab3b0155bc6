"""Every operation rollgate calls is checked against AWS's API model before moto sees it
(rollgate_emulator/validation.py): a request AWS would refuse is refused here, with the
service's validation error, and a valid one goes through. The SDK's own client-side
checks are switched off, so that the emulator is what refuses."""

from __future__ import annotations

import datetime

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

JSON_ERROR, QUERY_ERROR = "ValidationException", "ValidationError"
NOW = datetime.datetime(2026, 12, 3, tzinfo=datetime.timezone.utc)

# (service, operation, request breaking one constraint, error code, text in the message)
CASES = [
    ("codedeploy", "get_deployment", {}, JSON_ERROR, "'deploymentId' failed to satisfy constraint: Member must not be null"),
    ("codedeploy", "get_application_revision",
     {"applicationName": "a" * 101, "revision": {"revisionType": "AppSpecContent"}}, JSON_ERROR,
     "length less than or equal to 100"),
    ("codedeploy", "put_lifecycle_event_hook_execution_status",
     {"deploymentId": "d-ABCDEFGHI", "lifecycleEventHookExecutionId": "e", "status": "Maybe"}, JSON_ERROR,
     "enum value set"),
    ("codedeploy", "stop_deployment", {}, JSON_ERROR, "Member must not be null"),
    ("lambda", "get_function_configuration", {"FunctionName": "no spaces allowed"}, JSON_ERROR,
     "regular expression pattern"),
    ("lambda", "get_alias", {"FunctionName": "orders", "Name": "a" * 129}, JSON_ERROR,
     "length less than or equal to 128"),
    ("lambda", "update_alias", {"FunctionName": "orders", "Name": "live", "FunctionVersion": "latest"}, JSON_ERROR,
     "regular expression pattern"),
    ("lambda", "invoke", {"FunctionName": "orders", "Qualifier": "q" * 129}, JSON_ERROR,
     "length less than or equal to 128"),
    ("lambda", "get_function", {"FunctionName": "f" * 257}, JSON_ERROR, "length less than or equal to 256"),
    ("ssm", "get_parameter", {"Name": ""}, JSON_ERROR, "length greater than or equal to 1"),
    ("sns", "publish", {"TopicArn": "arn:aws:sns:us-east-1:123456789012:t"}, QUERY_ERROR,
     "'Message' failed to satisfy constraint: Member must not be null"),
    ("sqs", "get_queue_url", {}, JSON_ERROR, "'QueueName' failed to satisfy constraint"),
    ("sqs", "send_message_batch", {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q"}, JSON_ERROR,
     "'Entries' failed to satisfy constraint"),
    ("sqs", "delete_message_batch", {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q"}, JSON_ERROR,
     "'Entries' failed to satisfy constraint"),
    ("sqs", "receive_message", {}, JSON_ERROR, "'QueueUrl' failed to satisfy constraint"),
    ("dynamodb", "get_item", {"TableName": "", "Key": {"pk": {"S": "x"}}}, JSON_ERROR,
     "length greater than or equal to 1"),
    ("dynamodb", "query", {"TableName": "t" * 1025}, JSON_ERROR, "length less than or equal to 1024"),
    ("cloudwatch", "describe_alarms", {"AlarmNames": [f"a{i}" for i in range(101)]}, QUERY_ERROR,
     "length less than or equal to 100"),
    ("cloudwatch", "get_metric_data", {"StartTime": NOW, "EndTime": NOW}, QUERY_ERROR,
     "'MetricDataQueries' failed to satisfy constraint: Member must not be null"),
    ("cloudwatch", "list_tags_for_resource", {"ResourceARN": ""}, QUERY_ERROR, "length greater than or equal to 1"),
]


def client(emulator: str, service: str):
    return boto3.client(service, endpoint_url=emulator, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 1}, parameter_validation=False))


@pytest.mark.parametrize("service,operation,request_,code,text", CASES,
                         ids=[f"{c[0]}.{c[1]}" for c in CASES])
def test_a_request_aws_would_refuse_is_refused(emulator, service, operation, request_, code, text):
    with pytest.raises(ClientError) as e:
        getattr(client(emulator, service), operation)(**request_)
    error = e.value.response["Error"]
    assert error["Code"] == code, e.value.response
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "validation error" in error["Message"] and text in error["Message"], error["Message"]


def test_valid_requests_still_go_through(emulator, aws):
    cw = client(emulator, "cloudwatch")
    assert cw.describe_alarms(AlarmNames=["a"])["MetricAlarms"] == []
    ssm = client(emulator, "ssm")
    ssm.put_parameter(Name="/rollgate/policies/orders", Value="{}", Type="String")
    assert ssm.get_parameter(Name="/rollgate/policies/orders")["Parameter"]["Value"] == "{}"
    # A real-shaped hook execution id (300 characters) has no limit in the model.
    with pytest.raises(ClientError) as e:
        client(emulator, "codedeploy").put_lifecycle_event_hook_execution_status(
            deploymentId="d-ABCDEFGHI", lifecycleEventHookExecutionId="e" * 300, status="Succeeded")
    assert e.value.response["Error"]["Code"] == "DeploymentDoesNotExistException"


def test_every_operation_rollgate_calls_is_covered():
    """The adapters' SDK calls (shared/src/adapters) each have a case above."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "shared" / "src" / "adapters"
    calls = set()
    for f in root.glob("*.rs"):
        calls |= set(re.findall(r"\.(get_deployment|get_application_revision|put_lifecycle_event_hook_execution_status|"
                                r"stop_deployment|get_function_configuration|get_alias|update_alias|invoke|"
                                r"get_function|get_parameter|publish|get_queue_url|send_message_batch|"
                                r"delete_message_batch|receive_message|get_item|query|describe_alarms|"
                                r"get_metric_data|list_tags_for_resource)\(\)", f.read_text()))
    covered = {c[1] for c in CASES}
    assert calls <= covered, calls - covered
