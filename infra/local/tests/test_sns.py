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
