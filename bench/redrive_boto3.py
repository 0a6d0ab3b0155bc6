"""The baseline for the redrive benchmark: the loop anyone would write with boto3.
Receive up to 10 from the DLQ, send them to the source queue in one batch, delete them
from the DLQ in one batch; stop after `count` messages or when the DLQ stays empty.

    redrive_boto3.py <endpoint> <dlq-url> <source-url> <count>

Prints the number of messages moved."""

import sys

import boto3
from botocore.config import Config

endpoint, dlq, source, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
                   aws_secret_access_key="x", config=Config(retries={"max_attempts": 3}))
moved = empty = 0
while moved < count and empty < 3:
    msgs = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                               WaitTimeSeconds=0).get("Messages", [])
    if not msgs:
        empty += 1
        continue
    empty = 0
    entries = [{"Id": str(i), "MessageBody": m["Body"],
                **({"MessageAttributes": m["MessageAttributes"]} if m.get("MessageAttributes") else {})}
               for i, m in enumerate(msgs)]
    sent = sqs.send_message_batch(QueueUrl=source, Entries=entries)
    ok = {s["Id"] for s in sent.get("Successful", [])}
    done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs) if str(i) in ok]
    if done:
        sqs.delete_message_batch(QueueUrl=dlq, Entries=done)
    moved += len(done)
print(moved)
