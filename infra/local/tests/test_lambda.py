"""Lambda Invoke forwarding, qualifier resolution and alias RevisionIds."""

from __future__ import annotations

import base64
import json
import re
import time
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, MINUTE_SECONDS, control, make_function, wait_for


def echo(payload, context):
    return 200, {"payload": payload, "context": context}


def invoke(aws, **kwargs):
    response = aws.lam.invoke(**kwargs)
    body = response["Payload"].read()
    return response, json.loads(body) if body else None


def test_invoke_by_version_alias_and_arn_passes_version_env(aws, fake_watch, emulator):
    make_function(aws, "echo", versions=2)
    fake_watch.handlers["echo"] = echo
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:echo"
    cases = [
        ({"FunctionName": "echo", "Qualifier": "2"}, "2"),
        ({"FunctionName": "echo:live"}, "1"),
        ({"FunctionName": f"{arn}:2"}, "2"),
        ({"FunctionName": arn, "Qualifier": "live"}, "1"),
        ({"FunctionName": f"{ACCOUNT}:function:echo:1"}, "1"),
        ({"FunctionName": "echo"}, "$LATEST"),
    ]
    for kwargs, version in cases:
        response, body = invoke(aws, Payload=b'{"n": 1}', **kwargs)
        assert response["StatusCode"] == 200
        assert response["ExecutedVersion"] == version
        assert "FunctionError" not in response
        env = control(emulator, "invocations?function=echo")[-1]["context"]["env"]
        assert env["AWS_LAMBDA_FUNCTION_NAME"] == "echo"
        assert env["AWS_LAMBDA_FUNCTION_VERSION"] == version
        assert env["VERSION_TAG"] == {"1": "v1", "2": "v2", "$LATEST": "v2"}[version]
        assert body["payload"] == {"n": 1}
    records = control(emulator, "invocations?function=echo")
    assert [(r["qualifier"], r["version"]) for r in records] == [
        ("2", "2"), ("live", "1"), ("2", "2"), ("live", "1"), ("1", "1"), (None, "$LATEST")]
    assert all(r["status"] == 200 and r["functionError"] is None for r in records)


def test_handler_names_the_binary_and_client_context_is_recorded(aws, fake_watch, emulator):
    make_function(aws, "named", versions=1, handler="rollgate-hook")
    fake_watch.handlers["rollgate-hook"] = echo
    caller = {"custom": {"trace": "abc"}, "client": {"app_title": "t"}, "env": {"IGNORED": "x"}}
    _, body = invoke(aws, FunctionName="named:1",
                     ClientContext=base64.b64encode(json.dumps(caller).encode()).decode())
    assert fake_watch.requests[-1]["binary"] == "rollgate-hook"
    # No client context reaches watch (it would re-encode it into something the Rust
    # runtime cannot parse); the emulator records what AWS would have passed.
    assert fake_watch.requests[-1]["context"] == {}
    recorded = control(emulator, "invocations?function=named")[-1]["context"]
    assert recorded["custom"] == {"trace": "abc"}
    assert recorded["client"] == {"app_title": "t"}
    assert "IGNORED" not in recorded["env"]


def test_function_error_is_200_with_function_error_header(aws, fake_watch):
    make_function(aws, "boom", versions=1)
    fake_watch.handlers["boom"] = lambda p, c: (500, {"errorType": "Panic", "errorMessage": "bad"})
    response, body = invoke(aws, FunctionName="boom:live")
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert body == {"errorType": "Panic", "errorMessage": "bad"}


def test_event_is_202_and_forwarded_in_background(aws, fake_watch, emulator):
    make_function(aws, "async", versions=1)
    fake_watch.handlers["async"] = echo
    response = aws.lam.invoke(FunctionName="async", Qualifier="live", InvocationType="Event",
                              Payload=b'{"x": 2}')
    assert response["StatusCode"] == 202
    record = wait_for(lambda: [r for r in control(emulator, "invocations?function=async")
                               if r["status"] == 200])
    assert record[0]["invocationType"] == "Event" and record[0]["version"] == "1"
    assert fake_watch.requests[-1]["payload"] == {"x": 2}


def test_event_invoke_is_retried_twice_after_a_function_error(aws, fake_watch, emulator):
    """Lambda retries a failed asynchronous invocation twice, after one and two minutes
    (the emulator's scaled minutes), and stops at the first success."""
    make_function(aws, "flaky", versions=1)
    calls: list[float] = []

    def fails_once(payload, context):
        calls.append(time.monotonic())
        return (500, {"errorType": "Transient", "errorMessage": "x"}) if len(calls) == 1 else echo(payload, context)

    fake_watch.handlers["flaky"] = fails_once
    aws.lam.invoke(FunctionName="flaky:live", InvocationType="Event", Payload=b"{}")
    record = wait_for(lambda: [r for r in control(emulator, "invocations?function=flaky")
                               if r["status"] == 200], timeout=10)[0]
    assert record["attempts"] == 2 and len(calls) == 2
    assert calls[1] - calls[0] >= MINUTE_SECONDS * 0.95

    make_function(aws, "broken", versions=1)
    fake_watch.handlers["broken"] = lambda p, c: (500, {"errorType": "Panic", "errorMessage": "bad"})
    aws.lam.invoke(FunctionName="broken:live", InvocationType="Event", Payload=b"{}")
    wait_for(lambda: len([r for r in fake_watch.requests if r["binary"] == "broken"]) == 3, timeout=10)
    time.sleep(MINUTE_SECONDS * 3)
    assert len([r for r in fake_watch.requests if r["binary"] == "broken"]) == 3
    assert control(emulator, "invocations?function=broken")[0]["attempts"] == 3


def test_event_invoke_retries_follow_the_event_invoke_config(aws, fake_watch, emulator):
    make_function(aws, "once", versions=1)
    aws.lam.put_function_event_invoke_config(FunctionName="once", MaximumRetryAttempts=0)
    fake_watch.handlers["once"] = lambda p, c: (500, {"errorType": "Panic", "errorMessage": "bad"})
    aws.lam.invoke(FunctionName="once:live", InvocationType="Event", Payload=b"{}")
    wait_for(lambda: [r for r in control(emulator, "invocations?function=once") if r["status"] == 500])
    time.sleep(MINUTE_SECONDS * 2)
    assert len([r for r in fake_watch.requests if r["binary"] == "once"]) == 1


@pytest.mark.parametrize("kind", ["s3", "sqs"])
def test_exhausted_retries_send_the_invocation_record_to_the_on_failure_destination(aws, fake_watch, emulator,
                                                                                 kind):
    """The record AWS documents (invocation-async-retain-records.html), in an S3 object
    under aws/lambda/async/<function>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<uuid>, or an SQS body."""
    make_function(aws, "fails", versions=1)
    if kind == "s3":
        aws.s3.create_bucket(Bucket="failures")
        destination = "arn:aws:s3:::failures"
    else:
        url = aws.sqs.create_queue(QueueName="failures")["QueueUrl"]
        destination = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.lam.put_function_event_invoke_config(FunctionName="fails", MaximumRetryAttempts=1,
                                             DestinationConfig={"OnFailure": {"Destination": destination}})
    fake_watch.handlers["fails"] = lambda p, c: (500, {"errorType": "Panic", "errorMessage": "bad"})
    aws.lam.invoke(FunctionName="fails:live", InvocationType="Event", Payload=b'{"order": 7}')
    if kind == "s3":
        [obj] = wait_for(lambda: aws.s3.list_objects_v2(Bucket="failures").get("Contents"), timeout=10)
        assert re.fullmatch(r"aws/lambda/async/fails/\d{4}/\d{2}/\d{2}/\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}-"
                            r"[0-9a-f-]{36}", obj["Key"]), obj["Key"]
        record = json.loads(aws.s3.get_object(Bucket="failures", Key=obj["Key"])["Body"].read())
    else:
        [m] = wait_for(lambda: aws.sqs.receive_message(QueueUrl=url).get("Messages"), timeout=10)
        record = json.loads(m["Body"])
    assert record["version"] == "1.0" and record["requestPayload"] == {"order": 7}, record
    ctx = record["requestContext"]
    assert (ctx["condition"], ctx["approximateInvokeCount"]) == ("RetriesExhausted", 2), ctx
    assert ctx["functionArn"].endswith(":function:fails:live"), ctx
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"] == {"errorType": "Panic", "errorMessage": "bad"}


def test_dry_run_is_204_and_not_forwarded(aws, fake_watch):
    make_function(aws, "dry", versions=1)
    response = aws.lam.invoke(FunctionName="dry:live", InvocationType="DryRun")
    assert response["StatusCode"] == 204
    assert fake_watch.requests == []


@pytest.mark.parametrize("name", ["missing", "echo:7", "echo:nosuchalias", "echo:live"])
def test_unknown_function_version_or_alias_is_resource_not_found(aws, fake_watch, name):
    make_function(aws, "echo", versions=1, alias=None)
    with pytest.raises(ClientError) as err:
        aws.lam.invoke(FunctionName=name)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert fake_watch.requests == []


def test_alias_routing_weights_split_invocations(aws, fake_watch, emulator):
    make_function(aws, "split", versions=2)
    fake_watch.handlers["split"] = echo
    aws.lam.update_alias(FunctionName="split", Name="live",
                         RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    seen = Counter(invoke(aws, FunctionName="split:live")[0]["ExecutedVersion"] for _ in range(60))
    assert set(seen) == {"1", "2"}
    assert 10 <= seen["2"] <= 50
    versions = Counter(r["version"] for r in control(emulator, "invocations?function=split"))
    assert versions == seen


def test_update_alias_revision_ids(aws):
    make_function(aws, "rev", versions=2)
    created = aws.lam.get_alias(FunctionName="rev", Name="live")
    assert created["RevisionId"]
    updated = aws.lam.update_alias(FunctionName="rev", Name="live", FunctionVersion="2",
                                   RevisionId=created["RevisionId"],
                                   RoutingConfig={"AdditionalVersionWeights": {"1": 0.25}})
    assert updated["RevisionId"] != created["RevisionId"]
    assert updated["RoutingConfig"] == {"AdditionalVersionWeights": {"1": 0.25}}
    with pytest.raises(ClientError) as err:
        aws.lam.update_alias(FunctionName="rev", Name="live", FunctionVersion="1",
                             RevisionId=created["RevisionId"])
    assert err.value.response["Error"]["Code"] == "PreconditionFailedException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    current = aws.lam.get_alias(FunctionName="rev", Name="live")
    assert current["FunctionVersion"] == "2"
    assert current["RevisionId"] == updated["RevisionId"]
    assert current["RoutingConfig"] == {"AdditionalVersionWeights": {"1": 0.25}}


def test_function_configuration_per_version(aws):
    make_function(aws, "cfg", versions=2)
    for version in ("1", "2"):
        config = aws.lam.get_function_configuration(FunctionName="cfg", Qualifier=version)
        assert config["Version"] == version
        assert config["State"] == "Active"
        assert config["LastUpdateStatus"] == "Successful"
        assert config["Architectures"] == ["arm64"]
        assert config["Runtime"] == "provided.al2023"
        assert config["MemorySize"] == 256 and config["Timeout"] == 30
        assert config["Environment"]["Variables"] == {"VERSION_TAG": f"v{version}"}
