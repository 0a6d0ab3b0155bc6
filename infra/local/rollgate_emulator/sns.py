"""SNS `Publish` size, as AWS counts it.

moto compares the message's length in characters with 256 KiB and ignores the message
attributes. AWS counts bytes, of the body and the attributes together: "Amazon SNS
validates the combined size of the message body and message attributes against this
value and returns an InvalidParameter error if the limit is exceeded" (botocore's sns
model, `PublishInput.Message`; 262,144 bytes unless the topic's MaximumMessageSize says
otherwise, which rollgate's topics never set). A multi-byte body, or a body that fits only
without its attributes, passes moto and fails on AWS: here it fails as on AWS.
"""

from __future__ import annotations

from typing import Any

from moto.sns.exceptions import InvalidParameterValue
from moto.sns.models import SNSBackend

MAX_BYTES = 262_144


def published_bytes(message: str, attributes: dict[str, Any] | None) -> int:
    """The message's size as SNS counts it: UTF-8 body, plus each attribute's name, data
    type and value (moto has already turned them into {Type, Value})."""
    size = len(message.encode("utf-8"))
    for name, attr in (attributes or {}).items():
        size += len(name.encode("utf-8"))
        size += len(str(attr.get("Type", "")).encode("utf-8"))
        size += len(str(attr.get("Value", "")).encode("utf-8"))
    return size


def patch() -> None:
    original = SNSBackend.publish

    def publish(self, message, arn=None, phone_number=None, subject=None, message_attributes=None,
                *args, **kwargs):
        if not phone_number and published_bytes(message, message_attributes) > MAX_BYTES:
            raise InvalidParameterValue(
                "Invalid parameter: Message too long: body and message attributes are "
                f"{published_bytes(message, message_attributes)} bytes, over {MAX_BYTES}")
        return original(self, message, arn, phone_number, subject, message_attributes, *args, **kwargs)

    SNSBackend.publish = publish
