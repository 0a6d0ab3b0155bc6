"""SNS Publish is refused past 262,144 bytes of body and attributes, as on AWS."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def topic(aws) -> str:
    return aws.sns.create_topic(Name="decisions")["TopicArn"]


def test_a_message_at_the_limit_is_taken(aws):
    arn = topic(aws)
    aws.sns.publish(TopicArn=arn, Message="x" * 262_144)
    attrs = {"component": {"DataType": "String", "StringValue": "alarm-rollback"}}
    size = len("component") + len("String") + len("alarm-rollback")
    aws.sns.publish(TopicArn=arn, Message="x" * (262_144 - size), MessageAttributes=attrs)


@pytest.mark.parametrize("message,attributes", [
    # One byte over in plain ASCII (moto already refused this one).
    ("x" * 262_145, None),
    # 131,073 two-byte characters: under the limit in characters, over it in bytes.
    ("é" * 131_073, None),
    # The body fits alone; its attributes take it over.
    ("x" * 262_100, {"deployment": {"DataType": "String", "StringValue": "d-" + "A" * 100}}),
], ids=["ascii", "multibyte", "attributes"])
def test_a_message_over_the_limit_is_refused_as_aws_refuses_it(aws, message, attributes):
    arn = topic(aws)
    with pytest.raises(ClientError) as e:
        aws.sns.publish(TopicArn=arn, Message=message, **({"MessageAttributes": attributes} if attributes else {}))
    assert e.value.response["Error"]["Code"] == "InvalidParameter", e.value.response


# --- subscription dead-letter queues ----------------------------------------------------
# Shapes as AWS records them (SNS dead-letter docs; AWS-validated snapshots of raw and
# enveloped redrives): raw delivery keeps the publisher's message and typed attributes,
# otherwise the DLQ holds the notification envelope and no attributes of its own.

import base64
import json

from conftest import make_function, wait_for


def queue(aws, name: str, fifo: bool = False) -> tuple[str, str]:
    attrs = {"FifoQueue": "true"} if fifo else {}
    url = aws.sqs.create_queue(QueueName=name + (".fifo" if fifo else ""), Attributes=attrs)["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def dead_letters(aws, url: str) -> list[dict]:
    return aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                   AttributeNames=["All"]).get("Messages", [])


ATTRS = {"tenant": {"DataType": "String", "StringValue": "acme"},
         "amount": {"DataType": "Number", "StringValue": "12.5"},
         "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"}}


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "envelope"])
def test_a_delivery_to_a_deleted_queue_is_dead_lettered_in_aws_shape(aws, raw):
    arn = topic(aws)
    sub_url, sub_arn = queue(aws, "subscriber")
    dlq_url, dlq_arn = queue(aws, "subscriber-dlq")
    sub = aws.sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=sub_arn, ReturnSubscriptionArn=True,
                            Attributes={"RawMessageDelivery": "true" if raw else "false",
                                        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn})})
    assert sub["SubscriptionArn"]
    aws.sqs.delete_queue(QueueUrl=sub_url)
    aws.sns.publish(TopicArn=arn, Message='{"n": 1}', Subject="order", MessageAttributes=ATTRS)
    [m] = dead_letters(aws, dlq_url)
    if raw:
        assert m["Body"] == '{"n": 1}'
        got = {k: {x: y for x, y in v.items() if x in ("DataType", "StringValue", "BinaryValue")}
               for k, v in m["MessageAttributes"].items()}
        assert got == ATTRS, got
    else:
        env = json.loads(m["Body"])
        assert (env["Type"], env["TopicArn"], env["Message"], env["Subject"]) == (
            "Notification", arn, '{"n": 1}', "order"), env
        assert {"MessageId", "Timestamp", "Signature", "SigningCertURL", "UnsubscribeURL"} <= set(env)
        assert env["MessageAttributes"]["tenant"] == {"Type": "String", "Value": "acme"}
        assert base64.b64decode(env["MessageAttributes"]["blob"]["Value"]) == b"\x00\x01\xff"
        assert "MessageAttributes" not in m


def test_a_fifo_topic_s_dead_letter_keeps_group_and_deduplication(aws):
    arn = aws.sns.create_topic(Name="orders.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    sub_url, sub_arn = queue(aws, "subscriber", fifo=True)
    dlq_url, dlq_arn = queue(aws, "subscriber-dlq", fifo=True)
    aws.sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=sub_arn,
                      Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn})})
    aws.sqs.delete_queue(QueueUrl=sub_url)
    aws.sns.publish(TopicArn=arn, Message="m", MessageGroupId="g-1", MessageDeduplicationId="d-1")
    [m] = dead_letters(aws, dlq_url)
    assert (m["Attributes"]["MessageGroupId"], m["Attributes"]["MessageDeduplicationId"]) == ("g-1", "d-1")
    env = json.loads(m["Body"])
    assert env["SequenceNumber"] and not {"Signature", "SignatureVersion", "SigningCertURL"} & set(env), env


def test_without_a_redrive_policy_a_failed_delivery_is_lost_and_publish_succeeds(aws):
    arn = topic(aws)
    sub_url, sub_arn = queue(aws, "subscriber")
    aws.sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=sub_arn)
    aws.sqs.delete_queue(QueueUrl=sub_url)
    assert aws.sns.publish(TopicArn=arn, Message="m")["MessageId"]


def test_a_function_subscription_gets_the_sns_event_or_its_dlq_the_envelope(aws, fake_watch, emulator):
    arn = topic(aws)
    make_function(aws, "listener", versions=1)
    seen: list[dict] = []
    fake_watch.handlers["listener"] = lambda payload, ctx: (seen.append(payload) or (200, {}))
    fn_arn = aws.lam.get_function(FunctionName="listener")["Configuration"]["FunctionArn"]
    dlq_url, dlq_arn = queue(aws, "listener-dlq")
    policy = json.dumps({"deadLetterTargetArn": dlq_arn})
    aws.sns.subscribe(TopicArn=arn, Protocol="lambda", Endpoint=fn_arn, Attributes={"RedrivePolicy": policy})
    aws.sns.subscribe(TopicArn=arn, Protocol="lambda", Endpoint=fn_arn + "-gone",
                      Attributes={"RedrivePolicy": policy})
    aws.sns.publish(TopicArn=arn, Message="hello", MessageAttributes=ATTRS)
    wait_for(lambda: seen, timeout=10)
    record = seen[0]["Records"][0]
    assert (record["EventSource"], record["Sns"]["Message"], record["Sns"]["TopicArn"]) == ("aws:sns", "hello", arn)
    assert record["Sns"]["MessageAttributes"]["tenant"] == {"Type": "String", "Value": "acme"}
    [m] = dead_letters(aws, dlq_url)
    assert json.loads(m["Body"])["Message"] == "hello"


def test_raw_delivery_keeps_binary_attributes_as_bytes(aws):
    arn = topic(aws)
    url, sub_arn = queue(aws, "subscriber")
    aws.sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=sub_arn,
                      Attributes={"RawMessageDelivery": "true"})
    aws.sns.publish(TopicArn=arn, Message="m", MessageAttributes=ATTRS)
    [m] = dead_letters(aws, url)
    assert m["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01\xff"


def test_publish_batch_over_256_kib_in_all_is_refused_whole(aws):
    arn = topic(aws)
    entries = [{"Id": str(i), "Message": "x" * 100_000} for i in range(3)]
    with pytest.raises(ClientError) as e:
        aws.sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=entries)
    assert e.value.response["Error"]["Code"] == "BatchRequestTooLong", e.value.response
    out = aws.sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=entries[:2])
    assert len(out["Successful"]) == 2 and not out.get("Failed")
