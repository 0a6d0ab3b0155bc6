"""Dashboards (rollgate_emulator/dashboards.py): a body CloudWatch refuses is refused here,
through PutDashboard and through CloudFormation, and a valid one is stored as given."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError


def metric_widget(**override) -> dict:
    widget = {"type": "metric", "x": 0, "y": 0, "width": 12, "height": 6,
              "properties": {"region": "us-east-1", "period": 300, "stat": "Sum",
                             "metrics": [["AWS/Lambda", "Errors", "FunctionName", "orders"]]}}
    widget.update(override)
    return widget


def refused(aws, body: str, name: str = "ops") -> str:
    with pytest.raises(ClientError) as err:
        aws.cloudwatch.put_dashboard(DashboardName=name, DashboardBody=body)
    assert err.value.response["Error"]["Code"] == "InvalidParameterInput"
    with pytest.raises(ClientError):
        aws.cloudwatch.get_dashboard(DashboardName=name)
    return err.value.response["Error"]["Message"]


def test_a_valid_body_is_stored_as_given(aws):
    body = json.dumps({"start": "-PT6H", "periodOverride": "inherit",
                       "widgets": [metric_widget(), {"type": "text", "properties": {"markdown": "hello"}}]})
    assert aws.cloudwatch.put_dashboard(DashboardName="ops", DashboardBody=body)["DashboardValidationMessages"] == []
    assert aws.cloudwatch.get_dashboard(DashboardName="ops")["DashboardBody"] == body


@pytest.mark.parametrize("body", ["{not json", "[]", '"widgets"'])
def test_a_body_that_is_not_a_json_object_is_refused(aws, body):
    assert refused(aws, body) == "The field DashboardBody must be a valid JSON object"


BROKEN = [
    ({}, "", "'widgets'"),
    ({"widgets": [metric_widget(width=25)]}, "/widgets/0/width", "between 1 and 24"),
    ({"widgets": [metric_widget(x=24)]}, "/widgets/0/x", "between 0 and 23"),
    ({"widgets": [{"type": "metric", "x": 0, "properties": {"region": "us-east-1", "metrics": []}}]},
     "/widgets/0", "'x' and 'y'"),
    ({"widgets": [{"type": "graph", "properties": {}}]}, "/widgets/0/type", "allowed values"),
    ({"widgets": [{"type": "metric"}]}, "/widgets/0", "'properties'"),
    ({"widgets": [{"type": "metric", "properties": {"metrics": [["AWS/SQS", "NumberOfMessagesSent"]]}}]},
     "/widgets/0/properties", "'region'"),
    ({"widgets": [metric_widget(properties={"region": "us-east-1", "period": 90, "metrics": []})]},
     "/widgets/0/properties/period", "multiple of 60"),
    ({"widgets": [{"type": "text", "properties": {}}]}, "/widgets/0/properties", "'markdown'"),
    ({"widgets": [{"type": "metric", "properties": {"region": "us-east-1",
                                                      "metrics": [["AWS/SQS", "X", "QueueName", str(i)]
                                                                  for i in range(501)]}}]},
     "/widgets/0/properties/metrics", "more than 500 items"),
    ({"widgets": [{"type": "text", "properties": {"markdown": "x"}}] * 501}, "/widgets", "more than 500 items"),
    ({"widgets": [{"type": "metric", "properties": {"region": "us-east-1",
                                                      "metrics": [["AWS/SQS", "X", "QueueName", str(i)]
                                                                  for i in range(500)]}}] * 6},
     "/widgets", "more than 2500 metrics"),
]


@pytest.mark.parametrize("body,path,words", BROKEN, ids=[f"{p or '/'} {w}" for _, p, w in BROKEN])
def test_a_body_against_the_documented_structure_is_refused_with_the_path(aws, body, path, words):
    message = refused(aws, json.dumps(body))
    assert message.startswith("The dashboard body is invalid, there are ")
    listed = json.loads(message.split("validation errors: ", 1)[1])
    assert any(p["dataPath"] == path and words in p["message"] for p in listed), listed


@pytest.mark.parametrize("name", ["", "has space", "a" * 256, "dots.not.allowed"])
def test_a_dashboard_name_off_the_rule_is_refused(aws, name):
    body = json.dumps({"widgets": []})
    with pytest.raises(ClientError) as err:
        aws.cloudwatch.put_dashboard(DashboardName=name, DashboardBody=body)
    assert err.value.response["Error"]["Code"] in ("InvalidParameterInput", "ValidationError")


def stack_with(aws, name: str, body: str) -> None:
    template = {"Resources": {"Board": {"Type": "AWS::CloudWatch::Dashboard",
                                        "Properties": {"DashboardName": "board", "DashboardBody": body}}},
                "Outputs": {"Name": {"Value": {"Ref": "Board"}}}}
    aws.cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


def test_cloudformation_creates_a_valid_dashboard_and_refs_it_by_name(aws):
    body = json.dumps({"widgets": [metric_widget()]})
    stack_with(aws, "good", body)
    assert aws.cloudwatch.get_dashboard(DashboardName="board")["DashboardBody"] == body
    (stack,) = aws.cloudformation.describe_stacks(StackName="good")["Stacks"]
    assert stack["Outputs"] == [{"OutputKey": "Name", "OutputValue": "board"}]


def test_cloudformation_refuses_a_dashboard_cloudwatch_would_refuse(aws):
    with pytest.raises(ClientError) as err:
        stack_with(aws, "bad", json.dumps({"widgets": [metric_widget(height=0)]}))
    # On AWS the stack fails to create with this reason; here create_stack answers it.
    assert err.value.response["Error"]["Code"] == "InvalidParameterInput"
    assert "/widgets/0/height" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        aws.cloudwatch.get_dashboard(DashboardName="board")
