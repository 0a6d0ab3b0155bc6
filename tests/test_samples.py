"""Published sample events (tests/fixtures/samples, sources in SOURCES.md) through every
rollgate function: the function that takes a sample understands it and does the right
thing on the local AWS; every other function refuses it clearly (a function error whose
errorType names the class and whose message names what is wrong) before any AWS call."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from support.helpers import HOOK_FUNCTION, POST_HOOK_FUNCTION, create_function
from harness import wait_for

SAMPLES = Path(__file__).resolve().parent / "fixtures" / "samples"
ROLLBACK = "samples-alarm-rollback"
REDRIVE = "samples-dlq-redrive"


@pytest.fixture(scope="module")
def functions(stack):
    create_function(stack, ROLLBACK, handler="alarm-rollback", env={}, timeout=60)
    create_function(stack, REDRIVE, handler="dlq-redrive", env={}, timeout=60)
    lam = stack.client("lambda")

    def invoke(function: str, sample: str):
        out = lam.invoke(FunctionName=function, Payload=(SAMPLES / sample).read_bytes())
        return out.get("FunctionError"), json.loads(out["Payload"].read())

    return invoke


def test_the_lifecycle_event_reaches_codedeploy_from_both_hooks(stack, functions):
    for hook, binary in ((HOOK_FUNCTION, "pre-traffic-hook"), (POST_HOOK_FUNCTION, "post-traffic-hook")):
        before = stack.control("iam/calls").get(binary, 0)
        error, body = functions(hook, "codedeploy-lifecycle-event.json")
        # The count the refusals below are held to does move when a function calls AWS.
        assert stack.control("iam/calls").get(binary, 0) > before
        assert not error, body
        assert body["verdict"] == "Failed" and body["reason"] == "deployment d-SAMPLE123 does not exist", body


def test_the_state_change_of_an_unknown_deployment_is_retried(functions):
    """CodeDeploy answers that d-SAMPLE456 does not exist (yet): alarm-rollback fails the
    invocation with NotFound, so that Lambda's retry records it later."""
    error, body = functions(ROLLBACK, "codedeploy-deployment-state-change.json")
    assert error and body["errorType"] == "NotFound" and "d-SAMPLE456" in body["errorMessage"], body


def test_the_sns_wrapped_metric_math_alarm_is_understood(functions):
    """CloudWatch's quirks of the published sample parse; the alarm watches an EC2
    instance, so it guards no function and nothing is done, with the reason."""
    error, body = functions(ROLLBACK, "cloudwatch-alarm-sns-metric-math.json")
    assert not error, body
    (result,) = body["results"]
    assert result["alarm"] == "ec2-network-out"
    (outcome,) = result["outcomes"]
    assert outcome["action"] == "none" and "guards no function" in outcome["reason"], outcome


def test_lambdas_dead_letters_of_both_published_shapes_are_replayed_as_the_original_events(stack, functions):
    """An on-failure destination record and an async-invocation DLQ message, in one DLQ,
    go back into the function as the events it failed on: the record's requestPayload,
    the DLQ message's body."""
    sink = f"redrive-sample-target-{uuid.uuid4().hex[:6]}"
    create_function(stack, sink, handler="example-app", env={})
    sqs = stack.client("sqs")
    dlq = sqs.create_queue(QueueName=f"redrive-samples-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    record = json.loads((SAMPLES / "lambda-destination-on-failure.json").read_text())
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(record))
    message = json.loads((SAMPLES / "lambda-async-dlq-message.json").read_text())
    sqs.send_message(QueueUrl=dlq, MessageBody=message["Body"], MessageAttributes=message["MessageAttributes"])
    out = stack.client("lambda").invoke(FunctionName=REDRIVE, Payload=json.dumps(
        {"source": dlq, "destination": f"lambda:{sink}"}).encode())
    report = json.loads(out["Payload"].read())
    assert "FunctionError" not in out and report["moved"] == 2, report
    got = wait_for(lambda: (lambda c: c if len(c) == 2 else None)(stack.control(f"invocations?function={sink}")),
                   30, "both replayed")
    assert sorted(json.dumps(c["payload"], sort_keys=True) for c in got) == sorted(
        json.dumps(p, sort_keys=True) for p in (record["requestPayload"], json.loads(message["Body"])))


def test_an_anomaly_detection_alarm_on_a_released_function_rolls_it_back(stack, functions):
    """The published anomaly-detection alarm event (its metric and the band expression, an
    alarm name with spaces), about a function released a few minutes ago: rolled back."""
    from support.helpers import alias_version, make_app
    from test_alarm_rollback import cloudwatch_time, released

    app = make_app(stack)
    released(stack, app, ended_minutes_ago=5)
    text = (SAMPLES / "cloudwatch-alarm-anomaly-detection.json").read_text().replace("orders-sample", app.name)
    event = json.loads(text)
    event["detail"]["state"]["timestamp"] = cloudwatch_time(time.time())
    out = stack.client("lambda").invoke(FunctionName=ROLLBACK, Payload=json.dumps(event).encode())
    body = json.loads(out["Payload"].read())
    assert "FunctionError" not in out, body
    (result,) = body["results"]
    assert result["alarm"] == f"{app.name} Duration Anomaly"
    (outcome,) = result["outcomes"]
    assert outcome["action"] == "rollback", outcome
    assert alias_version(stack, app) == "1"


@pytest.mark.parametrize("function,sample,error_type,text", [
    (HOOK_FUNCTION, "cloudwatch-alarm-anomaly-detection.json", "InvalidEvent", "DeploymentId is missing"),
    (POST_HOOK_FUNCTION, "cloudwatch-alarm-anomaly-detection.json", "InvalidEvent", "DeploymentId is missing"),
    (REDRIVE, "cloudwatch-alarm-anomaly-detection.json", "InvalidRequest", "unknown field"),
    (HOOK_FUNCTION, "lambda-destination-on-failure.json", "InvalidEvent", "DeploymentId is missing"),
    (POST_HOOK_FUNCTION, "lambda-destination-on-failure.json", "InvalidEvent", "DeploymentId is missing"),
    (ROLLBACK, "lambda-destination-on-failure.json", "InvalidEvent", "not an alarm state change"),
    (REDRIVE, "lambda-destination-on-failure.json", "InvalidRequest", "unknown field"),
    (HOOK_FUNCTION, "codedeploy-deployment-state-change.json", "InvalidEvent", "DeploymentId is missing"),
    (HOOK_FUNCTION, "cloudwatch-alarm-sns-metric-math.json", "InvalidEvent", "DeploymentId is missing"),
    (POST_HOOK_FUNCTION, "codedeploy-deployment-state-change.json", "InvalidEvent", "DeploymentId is missing"),
    (POST_HOOK_FUNCTION, "cloudwatch-alarm-sns-metric-math.json", "InvalidEvent", "DeploymentId is missing"),
    (ROLLBACK, "codedeploy-lifecycle-event.json", "InvalidEvent", "not an alarm state change"),
    (REDRIVE, "codedeploy-lifecycle-event.json", "InvalidRequest", "DeploymentId"),
    (REDRIVE, "codedeploy-deployment-state-change.json", "InvalidRequest", "unknown field"),
    (REDRIVE, "cloudwatch-alarm-sns-metric-math.json", "InvalidRequest", "Records"),
    (HOOK_FUNCTION, "eventbridge-scheduled-event.json", "InvalidEvent", "DeploymentId is missing"),
    (POST_HOOK_FUNCTION, "eventbridge-scheduled-event.json", "InvalidEvent", "DeploymentId is missing"),
    (REDRIVE, "eventbridge-scheduled-event.json", "InvalidRequest", "unknown field"),
])
def test_every_other_function_refuses_the_sample(stack, functions, function, sample, error_type, text):
    """...before any AWS call: the local AWS counts every request a binary's processes make."""
    binary = stack.client("lambda").get_function_configuration(FunctionName=function)["Handler"]
    before = stack.control("iam/calls").get(binary, 0)
    error, body = functions(function, sample)
    assert stack.control("iam/calls").get(binary, 0) == before, f"{binary} called AWS before refusing"
    assert error, body
    assert body["errorType"] == error_type and text in body["errorMessage"], body
