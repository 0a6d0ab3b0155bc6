"""CloudTrail's records of Lambda's alias calls on the default bus, in the shape CloudTrail
documents and EventBridge delivers ("AWS API Call via CloudTrail", source aws.lambda)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, control, make_function, wait_for


def trail(emulator: str, name: str) -> list[dict]:
    return [e for e in control(emulator, "events")
            if e["Source"] == "aws.lambda" and e["Detail"]["requestParameters"].get("functionName") == name]


def test_alias_calls_are_recorded_with_lambdas_event_names_and_the_caller(aws, fake_watch, emulator):
    make_function(aws, "ct-app", versions=3)
    aws.lam.update_alias(FunctionName="ct-app", Name="live", FunctionVersion="1",
                         RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}})
    aws.lam.update_alias(FunctionName="ct-app", Name="live", FunctionVersion="2")
    events = trail(emulator, "ct-app")
    assert [e["Detail"]["eventName"] for e in events] == [
        "CreateAlias20150331", "UpdateAlias20150331", "UpdateAlias20150331"]
    for e in events:
        assert (e["DetailType"], e["Source"]) == ("AWS API Call via CloudTrail", "aws.lambda")
        d = e["Detail"]
        assert d["eventSource"] == "lambda.amazonaws.com" and d["eventType"] == "AwsApiCall"
        assert d["recipientAccountId"] == ACCOUNT and d["readOnly"] is False and d["eventID"]
        assert d["eventTime"].endswith("Z") and len(d["eventTime"]) == 20  # whole seconds
        # The tests' own calls are the administrator's.
        assert d["userIdentity"]["type"] == "IAMUser"
        assert d["userIdentity"]["arn"] == f"arn:aws:iam::{ACCOUNT}:user/rollgate-local-admin"
    shift = events[1]["Detail"]
    assert shift["requestParameters"]["routingConfig"] == {"additionalVersionWeights": {"2": 0.25}}
    answer = shift["responseElements"]
    assert answer["aliasArn"] == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:ct-app:live"
    assert answer["functionVersion"] == "1" and answer["revisionId"]
    assert answer["routingConfig"] == {"additionalVersionWeights": {"2": 0.25}}


def test_a_refused_call_is_recorded_with_its_error_and_no_answer(aws, fake_watch, emulator):
    make_function(aws, "ct-stale", versions=2)
    with pytest.raises(ClientError):
        aws.lam.update_alias(FunctionName="ct-stale", Name="live", FunctionVersion="2", RevisionId="not-it")
    (refused,) = [e["Detail"] for e in trail(emulator, "ct-stale") if "errorCode" in e["Detail"]]
    assert refused["errorCode"] == "PreconditionFailedException" and refused["responseElements"] is None


def test_codedeploys_shifts_name_the_service(aws, fake_watch, emulator):
    make_function(aws, "ct-cd", versions=2)
    aws.codedeploy.create_application(applicationName="ct-cd", computePlatform="Lambda")
    aws.codedeploy.create_deployment_group(applicationName="ct-cd", deploymentGroupName="live",
                                   serviceRoleArn=f"arn:aws:iam::{ACCOUNT}:role/rollgate-test",
                                   deploymentStyle={"deploymentType": "BLUE_GREEN",
                                                    "deploymentOption": "WITH_TRAFFIC_CONTROL"})
    spec = {"version": 0.0, "Resources": [{"ct-cd": {"Type": "AWS::Lambda::Function", "Properties": {
        "Name": "ct-cd", "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"}}}]}
    aws.codedeploy.create_deployment(applicationName="ct-cd", deploymentGroupName="live", revision={
        "revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(spec)}})
    moved = wait_for(lambda: [e["Detail"] for e in trail(emulator, "ct-cd")
                              if e["Detail"]["userIdentity"].get("invokedBy")], timeout=20)
    who = moved[0]["userIdentity"]
    assert who["invokedBy"] == "codedeploy.amazonaws.com" and who["type"] == "AssumedRole"
    assert moved[0]["userAgent"] == "codedeploy.amazonaws.com"
