"""SNS `Publish` size, as AWS counts it; deliveries to Lambda; subscription DLQs.

moto compares the message's length in characters with 256 KiB and ignores the message
attributes. AWS counts bytes, of the body and the attributes together: "Amazon SNS
validates the combined size of the message body and message attributes against this
value and returns an InvalidParameter error if the limit is exceeded" (botocore's sns
model, `PublishInput.Message`; 262,144 bytes unless the topic's MaximumMessageSize says
otherwise, which rollgate's topics never set). A multi-byte body, or a body that fits only
without its attributes, passes moto and fails on AWS: here it fails as on AWS.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

from moto.sns.exceptions import InvalidParameterValue, SNSException
from moto.sns.models import SNSBackend, Subscription

from .state import log

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
    patch_batch()
    patch_delivery()


def patch_batch() -> None:
    """PublishBatch as AWS answers it: a batch whose messages and attributes add up to more
    than 262,144 bytes is refused whole (BatchRequestTooLong, sns model); an entry that
    fails for another reason than a bad parameter is reported failed (moto drops it from
    both lists); injected entry faults (`entries: true` on PublishBatch) fail their entry."""
    from . import faults

    original = SNSBackend.publish_batch

    def publish_batch(self, topic_arn: str, publish_batch_request_entries: list[dict[str, Any]]):
        entries = publish_batch_request_entries
        if len(entries) > 10:
            return original(self, topic_arn, entries)  # refused whole, as AWS does
        total = sum(published_bytes(e.get("Message", ""), e.get("MessageAttributes")) for e in entries)
        if total > MAX_BYTES:
            raise BatchRequestTooLong(
                f"The length of all the messages put together is more than the limit: {total} bytes")
        topic = topic_arn.rsplit(":", 1)[-1]
        failed: list[dict[str, Any]] = []
        kept = []
        for e in entries:
            fault = faults.take("PublishBatch", f"{topic} {e.get('Message', '')}", entries=True)
            if fault:
                failed.append({"Id": e["Id"], "Code": fault["code"], "Message": fault["message"],
                               "SenderFault": fault["status"] < 500})
            else:
                kept.append(e)
        successful, refused = original(self, topic_arn, kept) if kept else ([], [])
        answered = {x["Id"] for x in successful} | {x["Id"] for x in refused}
        lost = [{"Id": e["Id"], "Code": "InternalError", "SenderFault": False,
                 "Message": "the entry could not be published"} for e in kept if e["Id"] not in answered]
        return successful, list(refused) + failed + lost

    SNSBackend.publish_batch = publish_batch


# A subscription's delivery that fails for good (the endpoint was deleted, or SNS may not
# write to it: "client-side errors", which SNS does not retry) goes to the subscription's
# dead-letter queue when its RedrivePolicy names one (`{"deadLetterTargetArn": ...}`), and
# is lost otherwise; the Publish itself succeeds either way
# (https://docs.aws.amazon.com/sns/latest/dg/sns-dead-letter-queues.html). What lands in
# the DLQ is what the endpoint would have been sent, as AWS records it: the publisher's
# message with its attributes (types kept) for raw delivery; otherwise the notification
# envelope (Type, MessageId, TopicArn, Subject when set, Message, Timestamp, the signature
# fields, UnsubscribeURL, MessageAttributes) with no message attributes of its own. A FIFO
# topic's dead letter keeps MessageGroupId and MessageDeduplicationId, and its envelope
# carries SequenceNumber and no signature fields.

class BatchRequestTooLong(SNSException):
    code = "BatchRequestTooLong"


SIGNATURE_FIELDS = ("Signature", "SignatureVersion", "SigningCertURL")


def raw_delivery(sub: Subscription) -> bool:
    return str(sub.attributes.get("RawMessageDelivery", "")).lower() == "true"


def lambda_event(sub: Subscription, envelope: dict[str, Any]) -> dict[str, Any]:
    """The event SNS invokes a subscribed function with: one record whose `Sns` is the
    envelope with Lambda's spelling of two keys (SigningCertUrl, UnsubscribeUrl)."""
    sns = {k: v for k, v in envelope.items() if k not in ("SigningCertURL", "UnsubscribeURL")}
    sns["SigningCertUrl"] = envelope.get("SigningCertURL", "")
    sns["UnsubscribeUrl"] = envelope.get("UnsubscribeURL", "")
    sns.setdefault("MessageAttributes", {})
    sns.setdefault("Subject", None)
    return {"Records": [{"EventVersion": "1.0", "EventSubscriptionArn": sub.arn,
                         "EventSource": "aws:sns", "Sns": sns}]}


def dead_letter(sub: Subscription, message: str, message_id: str, subject: str | None,
                attributes: dict[str, Any] | None, group_id: str | None,
                deduplication_id: str | None, why: Exception) -> None:
    from moto.sqs.models import sqs_backends

    policy = sub.attributes.get("RedrivePolicy")
    target = json.loads(policy).get("deadLetterTargetArn", "") if policy else ""
    if not target:
        log.warning("sns delivery to %s failed and it has no DLQ: message %s lost: %s",
                    sub.endpoint, message_id, why)
        return
    _, _, _, region, account, queue = target.split(":", 5)
    fifo = bool(sub.topic.fifo_topic)
    sqs_attributes: dict[str, Any] = {}
    if raw_delivery(sub):
        body = message
        for name, value in (attributes or {}).items():
            # moto keeps a binary value as the base64 text it was sent as.
            if value["Type"].startswith("Binary"):
                sqs_attributes[name] = {"DataType": value["Type"],
                                        "BinaryValue": base64.b64decode(value["Value"])}
            else:
                sqs_attributes[name] = {"DataType": value["Type"], "StringValue": str(value["Value"])}
    else:
        envelope = sub.get_post_data(message, message_id, subject, message_attributes=attributes)
        if fifo:
            for field in SIGNATURE_FIELDS:
                envelope.pop(field, None)
            envelope["SequenceNumber"] = str(random.randrange(10**19, 10**20))
        body = json.dumps(envelope)
    try:
        sqs_backends[account][region].send_message(
            queue, body, message_attributes=sqs_attributes,
            group_id=group_id if fifo else None,
            deduplication_id=deduplication_id if fifo else None, validate_group_id=False)
    except Exception as err:  # a missing DLQ loses the message, as on AWS
        log.warning("sns dead letter of %s to %s failed: %s", message_id, target, err)
        return
    log.info("sns delivery to %s failed (%s): message %s dead-lettered to %s",
             sub.endpoint, why, message_id, target)


def patch_delivery() -> None:
    from . import awslambda

    original = Subscription.publish

    def publish(self: Subscription, message: str, message_id: str, subject: str | None = None,
                message_attributes: dict[str, Any] | None = None, group_id: str | None = None,
                deduplication_id: str | None = None, message_structure: str | None = None) -> None:
        if self._filter_policy_matcher is not None and not self._filter_policy_matcher.matches(
                message_attributes, message):
            return
        try:
            if self.protocol == "lambda":
                # moto's own delivery runs the function in Docker with a made-up event.
                text = (self._parse_message_structure(message, self.protocol)
                        if message_structure == "json" else message)
                envelope = self.get_post_data(text, message_id, subject,
                                              message_attributes=message_attributes)
                awslambda.invoke(self.endpoint, json.dumps(lambda_event(self, envelope)).encode(),
                                 "Event")
            else:
                delivered = message_attributes
                if self.protocol == "sqs" and raw_delivery(self) and message_attributes:
                    # moto would put a binary value's base64 text where SQS keeps bytes,
                    # and the receive would then fail.
                    delivered = {k: ({**v, "Value": base64.b64decode(v["Value"])}
                                     if v["Type"].startswith("Binary") else v)
                                 for k, v in message_attributes.items()}
                original(self, message, message_id, subject=subject,
                         message_attributes=delivered, group_id=group_id,
                         deduplication_id=deduplication_id, message_structure=message_structure)
        except Exception as err:
            if message_structure == "json":  # what this endpoint was to get
                message = self._parse_message_structure(message, self.protocol)
            dead_letter(self, message, message_id, subject, message_attributes, group_id,
                        deduplication_id, err)

    Subscription.publish = publish
