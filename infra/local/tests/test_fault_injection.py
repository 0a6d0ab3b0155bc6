"""Injected faults (POST /_rollgate/faults): count, fraction, target filter, added
latency, timeouts, the counters, and error answers that each protocol's SDK parses and
classifies (throttling and 5xx retried, other client errors not)."""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from conftest import make_function, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rollgate_emulator import cbor  # noqa: E402

CBOR_PATH = "/service/GraniteServiceVersion20100801/operation/"


def faults(emulator: str, spec: dict | None = None, method: str | None = None):
    method = method or ("POST" if spec is not None else "GET")
    data = json.dumps(spec).encode() if spec is not None else None
    req = urllib.request.Request(f"{emulator}/_rollgate/faults", data=data, method=method)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def client(emulator: str, service: str, attempts: int = 1, read_timeout: float = 30):
    return boto3.client(service, endpoint_url=emulator, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"mode": "standard", "total_max_attempts": attempts},
                                      read_timeout=read_timeout, connect_timeout=2))


class Sdk:
    """boto3 clients in standard retry mode with `attempts` attempts in all (the shared
    fixture's clients retry once, which would hide a fault)."""

    def __init__(self, url: str, attempts: int = 1) -> None:
        self.url, self.attempts = url, attempts

    def __getattr__(self, name: str):
        made = client(self.url, "lambda" if name == "lam" else name, self.attempts)
        setattr(self, name, made)
        return made


@pytest.fixture
def once(emulator) -> Sdk:
    return Sdk(emulator)


def param(aws) -> str:
    aws.ssm.put_parameter(Name="/faults/p", Value="v", Type="String", Overwrite=True)
    return "/faults/p"


def test_count_fails_exactly_that_many_calls_and_is_counted(once, emulator):
    aws = once
    name = param(aws)
    added = faults(emulator, {"operation": "GetParameter", "count": 2, "code": "ThrottlingException"})
    assert added["kind"] == "error" and added["fired"] == 0
    for _ in range(2):
        with pytest.raises(ClientError) as err:
            aws.ssm.get_parameter(Name=name)
        assert err.value.response["Error"]["Code"] == "ThrottlingException"
    assert aws.ssm.get_parameter(Name=name)["Parameter"]["Value"] == "v"
    aws.ssm.describe_parameters()  # another operation: not matched
    [fault] = faults(emulator)
    assert (fault["matched"], fault["fired"]) == (3, 2)
    assert faults(emulator, method="DELETE") == {"status": "cleared"}
    assert faults(emulator) == []


def test_fraction_fails_about_that_share(once, emulator):
    aws = once
    name = param(aws)
    faults(emulator, {"operation": "GetParameter", "fraction": 0.5, "code": "InternalServerError", "status": 500})
    faults(emulator, {"operation": "GetParameter", "fraction": 0.0, "code": "Never"})
    failed = 0
    for _ in range(200):
        try:
            aws.ssm.get_parameter(Name=name)
        except ClientError as err:
            assert err.response["Error"]["Code"] == "InternalServerError"
            failed += 1
    half, never = faults(emulator)
    assert 60 <= failed <= 140 and half["fired"] == failed and half["matched"] == 200
    # A call the first fault passed reaches the second; it never fires.
    assert never["fired"] == 0 and never["matched"] == 200 - failed
    faults(emulator, method="DELETE")
    faults(emulator, {"operation": "GetParameter", "fraction": 1.0, "code": "Always"})
    with pytest.raises(ClientError, match="Always"):
        aws.ssm.get_parameter(Name=name)


def test_target_filters_by_body_and_by_path(once, emulator, fake_watch):
    aws = once
    a = aws.sqs.create_queue(QueueName="faults-a")["QueueUrl"]
    b = aws.sqs.create_queue(QueueName="faults-b")["QueueUrl"]
    faults(emulator, {"operation": "SendMessage", "target": "faults-a", "count": 5, "code": "RequestThrottled"})
    aws.sqs.send_message(QueueUrl=b, MessageBody="fine")
    with pytest.raises(ClientError, match="RequestThrottled"):
        aws.sqs.send_message(QueueUrl=a, MessageBody="throttled")
    # Lambda names the function in the path, not the body.
    make_function(aws, "fa-one", versions=1)
    make_function(aws, "fa-two", versions=1)
    for name in ("fa-one", "fa-two"):  # the binary is the function's name
        fake_watch.handlers[name] = lambda payload, ctx: (200, {"ok": True})
    faults(emulator, {"operation": "Invoke", "target": "fa-two", "count": 1,
                      "code": "TooManyRequestsException", "status": 429})
    assert aws.lam.invoke(FunctionName="fa-one", Qualifier="1")["StatusCode"] == 200
    with pytest.raises(ClientError) as err:
        aws.lam.invoke(FunctionName="fa-two", Qualifier="1")
    assert err.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    # The failed invoke never reached the function.
    assert [r["binary"] for r in fake_watch.requests] == ["fa-one"]


def test_delay_adds_latency_before_the_call_or_before_its_error(once, emulator):
    aws = once
    name = param(aws)
    added = faults(emulator, {"operation": "GetParameter", "count": 1, "delay_ms": 400})
    assert added["kind"] == "delay"
    started = time.monotonic()
    assert aws.ssm.get_parameter(Name=name)["Parameter"]["Value"] == "v"
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    aws.ssm.get_parameter(Name=name)  # count used up: no delay
    assert time.monotonic() - started < 0.4
    faults(emulator, method="DELETE")
    # Delays add up, and an error fault combined with a delay answers after it.
    faults(emulator, {"operation": "*", "count": 1, "delay_ms": 200})
    faults(emulator, {"operation": "GetParameter", "count": 1, "delay_ms": 200, "code": "ThrottlingException"})
    started = time.monotonic()
    with pytest.raises(ClientError, match="ThrottlingException"):
        aws.ssm.get_parameter(Name=name)
    assert time.monotonic() - started >= 0.4
    assert [f["fired"] for f in faults(emulator)] == [1, 1]


def test_a_latency_model_delays_the_calls_of_one_service_by_a_log_normal_draw(once, emulator):
    """The modelled network of the redrive benchmark: median 30 ms, p99 120 ms on SQS
    calls only; concurrent callers wait side by side, not in turn."""
    aws = once
    name = param(aws)
    q = aws.sqs.create_queue(QueueName="modelled")["QueueUrl"]
    added = faults(emulator, {"operation": "*", "service": "sqs", "fraction": 1,
                              "latency": {"median_ms": 30, "p99_ms": 120}})
    assert added["kind"] == "delay" and added["latency"]["sigma"] == pytest.approx(0.596, abs=0.01)
    waits = []
    for _ in range(60):
        started = time.monotonic()
        aws.sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])
        waits.append((time.monotonic() - started) * 1000)
    waits.sort()
    # The median of 60 draws lies within about +-25 % of 30 ms (plus the call itself).
    assert 20 <= waits[30] <= 50, waits
    assert waits[-1] > waits[0] + 20, waits  # a spread, not a constant
    started = time.monotonic()
    for _ in range(10):
        aws.ssm.get_parameter(Name=name)  # another service: not delayed
    assert (time.monotonic() - started) * 1000 / 10 < 20
    from concurrent.futures import ThreadPoolExecutor
    sqs = [client(emulator, "sqs") for _ in range(8)]
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: [c.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"]) for _ in range(5)],
                      sqs))
    # 40 calls of ~30 ms each from 8 callers: about 5 in a row, far from 40 in a row.
    assert time.monotonic() - started < 40 * 0.030 / 2


def test_timeout_holds_until_the_client_gives_up_then_drops(once, emulator):
    aws = once
    name = param(aws)
    faults(emulator, {"operation": "GetParameter", "count": 1, "timeout": True, "hold_ms": 5000})
    impatient = client(emulator, "ssm", read_timeout=1)
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        impatient.get_parameter(Name=name)
    assert 0.9 <= time.monotonic() - started < 4
    # A patient client sees the connection closed without any answer.
    faults(emulator, {"operation": "GetParameter", "count": 1, "timeout": True, "hold_ms": 300})
    started = time.monotonic()
    with pytest.raises(ConnectionClosedError):
        client(emulator, "ssm", read_timeout=10).get_parameter(Name=name)
    assert 0.3 <= time.monotonic() - started < 5
    # Retrying SDKs treat both as transient: the next attempt succeeds.
    faults(emulator, {"operation": "GetParameter", "count": 1, "timeout": True, "hold_ms": 3000})
    out = client(emulator, "ssm", attempts=3, read_timeout=1).get_parameter(Name=name)
    assert out["Parameter"]["Value"] == "v" and out["ResponseMetadata"]["RetryAttempts"] == 1
    assert [f["fired"] for f in faults(emulator)] == [1, 1, 1]
    assert aws.ssm.get_parameter(Name=name)["Parameter"]["Value"] == "v"


def test_timeout_hold_ends_when_the_client_hangs_up(once, emulator):
    aws = once
    param(aws)
    faults(emulator, {"operation": "GetParameter", "count": 1, "timeout": True, "hold_ms": 60000})
    body = json.dumps({"Name": "/faults/p"}).encode()
    sock = socket.create_connection(("127.0.0.1", int(emulator.rsplit(":", 1)[1])), timeout=5)
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
                 b"X-Amz-Target: AmazonSSM.GetParameter\r\n"
                 b"Authorization: AWS4-HMAC-SHA256 Credential=t/20260101/us-east-1/ssm/aws4_request\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    wait_for(lambda: faults(emulator)[0]["holding"] == 1, timeout=5)
    sock.close()
    # The hold ends as soon as the client is gone, not after 60 s.
    wait_for(lambda: faults(emulator)[0]["holding"] == 0, timeout=3)
    assert faults(emulator)[0]["fired"] == 1


# Per protocol: (service, call, operation) and the SDK must read code and status back.
JSON_CASES = [
    ("dynamodb", "PutItem", lambda aws: aws.dynamodb.put_item(TableName="faults-t", Item={"pk": {"S": "1"}})),
    ("sqs", "SendMessageBatch", lambda aws: aws.sqs.send_message_batch(
        QueueUrl=aws.sqs.get_queue_url(QueueName="faults-q")["QueueUrl"],
        Entries=[{"Id": "1", "MessageBody": "x"}])),
    ("ssm", "GetParameter", lambda aws: aws.ssm.get_parameter(Name="/faults/p")),
    ("codedeploy", "ListApplications", lambda aws: aws.codedeploy.list_applications()),
    ("sns", "Publish", lambda aws: aws.sns.publish(TopicArn=aws.topic, Message="m")),
    ("lambda", "GetFunctionConfiguration", lambda aws: aws.lam.get_function_configuration(
        FunctionName="fp", Qualifier="1")),
    ("lambda", "UpdateAlias", lambda aws: aws.lam.update_alias(FunctionName="fp", Name="live", FunctionVersion="1")),
    ("lambda", "Invoke", lambda aws: aws.lam.invoke(FunctionName="fp", Qualifier="1")),
    ("cloudwatch", "PutMetricData", lambda aws: aws.cloudwatch.put_metric_data(
        Namespace="N", MetricData=[{"MetricName": "M", "Value": 1}])),
]


@pytest.fixture
def world(once, fake_watch):
    aws = once
    aws.dynamodb.create_table(TableName="faults-t", BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    aws.sqs.create_queue(QueueName="faults-q")
    param(aws)
    aws.topic = aws.sns.create_topic(Name="faults-topic")["TopicArn"]
    make_function(aws, "fp", versions=1)
    fake_watch.handlers["fp"] = lambda payload, ctx: (200, {"ok": True})
    return aws


@pytest.mark.parametrize("service,operation,call", JSON_CASES, ids=[f"{c[0]}-{c[1]}" for c in JSON_CASES])
def test_every_protocol_answers_an_error_the_sdk_reads_and_retries(world, emulator, service, operation, call):
    # Throttling (400) and 5xx are retried by the SDK's standard mode: two failures, then success.
    for code, status in (("ThrottlingException", 400), ("ServiceUnavailable", 503)):
        faults(emulator, {"operation": operation, "count": 2, "code": code, "status": status})
        retrying = Sdk(emulator, attempts=3)
        retrying.topic = world.topic
        out = call(retrying)
        assert out["ResponseMetadata"]["RetryAttempts"] == 2, (code, out["ResponseMetadata"])
        faults(emulator, method="DELETE")
    # The code and status come back as sent; a plain client error is not retried.
    faults(emulator, {"operation": operation, "count": 3, "code": "ValidationException", "message": "no <good>"})
    retrying = Sdk(emulator, attempts=3)
    retrying.topic = world.topic
    with pytest.raises(ClientError) as err:
        call(retrying)
    error = err.value.response
    assert error["Error"]["Code"] == "ValidationException"
    assert error["Error"]["Message"] == "no <good>"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["ResponseMetadata"]["RetryAttempts"] == 0
    assert faults(emulator)[0]["fired"] == 1


def test_cbor_requests_are_recognised_and_answered_in_cbor(emulator):
    """The Rust CloudWatch client speaks Smithy RPCv2-CBOR: the operation is the last
    path segment and the error a CBOR map, as botocore's own RPCv2 parser reads it."""
    import botocore.session
    from botocore.parsers import create_parser

    faults(emulator, {"operation": "GetMetricData", "count": 1, "code": "Throttling", "status": 400})
    body = cbor.dumps({"MetricDataQueries": [{"Id": "a", "MetricStat": {
        "Metric": {"Namespace": "N", "MetricName": "M"}, "Period": 60, "Stat": "Sum"}}],
        "StartTime": 0, "EndTime": 60})
    headers = {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor",
               "Accept": "application/cbor"}
    answer = requests.post(f"{emulator}{CBOR_PATH}GetMetricData", data=body, headers=headers, timeout=5)
    assert answer.status_code == 400
    assert answer.headers["smithy-protocol"] == "rpc-v2-cbor"
    assert answer.headers["x-amzn-query-error"] == "Throttling;Sender"
    assert cbor.loads(answer.content) == {"__type": "Throttling", "message": "injected fault"}
    model = botocore.session.get_session().get_service_model("cloudwatch")
    parsed = create_parser("smithy-rpc-v2-cbor").parse(
        {"status_code": 400, "headers": dict(answer.headers), "body": answer.content},
        model.operation_model("GetMetricData").output_shape)
    assert parsed["Error"]["Code"] == "Throttling"
    # The fault is used up: the next call reaches the CloudWatch emulation.
    again = requests.post(f"{emulator}{CBOR_PATH}GetMetricData", data=body, headers=headers, timeout=5)
    assert again.status_code == 200 and "MetricDataResults" in cbor.loads(again.content)


def test_bad_fault_specs_are_refused_naming_the_field(emulator):
    for spec, field in (({"count": 1}, "operation"), ({"operation": "X"}, "count or fraction"),
                        ({"operation": "X", "count": 1, "fraction": 0.5}, "count or fraction"),
                        ({"operation": "X", "fraction": 2}, "fraction"),
                        ({"operation": "X", "count": 1, "delay_ms": -1}, "delay_ms"),
                        ({"operation": "X", "count": 1, "status": 200}, "status"),
                        ({"operation": "X", "count": 1, "entries": True, "timeout": True}, "entries"),
                        ({"operation": "X", "count": 1, "latency": {"median_ms": 10}}, "latency"),
                        ({"operation": "X", "count": 1, "latency": {"median_ms": 10, "p99_ms": 50},
                          "delay_ms": 5}, "latency")):
        with pytest.raises(urllib.error.HTTPError) as err:
            faults(emulator, spec)
        assert err.value.code == 400
        assert json.loads(err.value.read())["message"].startswith(field), spec
    assert faults(emulator) == []


def test_a_reset_clears_faults(once, emulator):
    aws = once
    faults(emulator, {"operation": "*", "fraction": 1.0, "code": "Everything"})
    urllib.request.urlopen(urllib.request.Request(f"{emulator}/moto-api/reset", method="POST"))
    assert faults(emulator) == []
    assert aws.sqs.list_queues().get("QueueUrls") is None
