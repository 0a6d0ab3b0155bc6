"""The baseline for the redrive benchmark: the loop anyone would write with boto3.
Receive up to 10 from the DLQ, send them to the source queue in one batch, delete them
from the DLQ in one batch; stop after `count` messages or when the DLQ stays empty.
With `threads` > 1, that many threads run the loop side by side, each with its own
client (boto3 clients are thread-safe, but one per thread is the common pattern).

    redrive_boto3.py <endpoint> <dlq-url> <source-url> <count> [threads]

Prints the number of messages moved."""

import sys
import threading

import boto3
from botocore.config import Config

endpoint, dlq, source, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
threads = int(sys.argv[5]) if len(sys.argv) > 5 else 1
lock = threading.Lock()
moved = 0


def loop() -> None:
    global moved
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
                       aws_secret_access_key="x",
                       config=Config(retries={"max_attempts": 3}, max_pool_connections=2))
    empty = 0
    while empty < 3:
        with lock:
            if moved >= count:
                return
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
        with lock:
            moved += len(done)


workers = [threading.Thread(target=loop) for _ in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
print(moved)
