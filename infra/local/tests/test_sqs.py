"""SQS patches: message move tasks, FIFO redelivery and deduplication, injected faults."""

from __future__ import annotations

import json
import time
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import wait_for


def arn(aws, url: str) -> str:
    return aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def pair(aws, name: str, fifo: bool = False) -> tuple[str, str]:
    """A source queue and its DLQ (maxReceiveCount 1)."""
    suffix = ".fifo" if fifo else ""
    extra = {"FifoQueue": "true"} if fifo else {}
    dlq = aws.sqs.create_queue(QueueName=f"{name}-dlq{suffix}", Attributes=extra)["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": arn(aws, dlq), "maxReceiveCount": 1})
    src = aws.sqs.create_queue(QueueName=f"{name}{suffix}", Attributes={**extra, "RedrivePolicy": policy})["QueueUrl"]
    return src, dlq


def count(aws, url: str) -> int:
    attrs = aws.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attrs["Attributes"].values())


def drain(aws, url: str) -> list[dict]:
    out = []
    while True:
        got = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                      AttributeNames=["All"]).get("Messages", [])
        if not got:
            return out
        for m in got:
            aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        out.extend(got)


def post(emulator: str, path: str, body: dict | None = None, method: str = "POST") -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{emulator}/_rollgate/{path}", data=data, method=method)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_move_task_returns_messages_to_the_source_queue(aws):
    src, dlq = pair(aws, "orders")
    for i in range(25):
        aws.sqs.send_message(QueueUrl=dlq, MessageBody=f"m{i}", MessageAttributes={
            "kind": {"DataType": "String", "StringValue": f"k{i}"}})
    handle = aws.sqs.start_message_move_task(SourceArn=arn(aws, dlq))["TaskHandle"]
    assert handle

    def done():
        tasks = aws.sqs.list_message_move_tasks(SourceArn=arn(aws, dlq), MaxResults=10)["Results"]
        return tasks if tasks[0]["Status"] == "COMPLETED" else None

    task = wait_for(done)[0]
    assert task["ApproximateNumberOfMessagesMoved"] == 25 and task["ApproximateNumberOfMessagesToMove"] == 25
    assert "TaskHandle" not in task and task["SourceArn"] == arn(aws, dlq)
    moved = drain(aws, src)
    assert sorted(m["Body"] for m in moved) == sorted(f"m{i}" for i in range(25))
    assert {m["MessageAttributes"]["kind"]["StringValue"] for m in moved} == {f"k{i}" for i in range(25)}
    assert count(aws, dlq) == 0


def test_move_task_to_a_custom_destination_at_a_rate_and_cancel(aws):
    _, dlq = pair(aws, "slow")
    other = aws.sqs.create_queue(QueueName="elsewhere")["QueueUrl"]
    for i in range(50):
        aws.sqs.send_message(QueueUrl=dlq, MessageBody=str(i))
    handle = aws.sqs.start_message_move_task(SourceArn=arn(aws, dlq), DestinationArn=arn(aws, other),
                                             MaxNumberOfMessagesPerSecond=10)["TaskHandle"]
    with pytest.raises(ClientError) as err:  # one active task per queue
        aws.sqs.start_message_move_task(SourceArn=arn(aws, dlq))
    assert "UnsupportedOperation" in err.value.response["Error"]["Code"]
    running = aws.sqs.list_message_move_tasks(SourceArn=arn(aws, dlq))["Results"][0]
    assert running["Status"] == "RUNNING" and running["TaskHandle"] == handle
    assert running["MaxNumberOfMessagesPerSecond"] == 10 and running["DestinationArn"] == arn(aws, other)
    time.sleep(0.5)
    moved = aws.sqs.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"]
    assert 1 <= moved < 50
    task = aws.sqs.list_message_move_tasks(SourceArn=arn(aws, dlq))["Results"][0]
    assert task["Status"] == "CANCELLED"
    assert count(aws, other) + count(aws, dlq) == 50


def test_move_task_errors(aws):
    plain = aws.sqs.create_queue(QueueName="not-a-dlq")["QueueUrl"]
    with pytest.raises(ClientError) as err:
        aws.sqs.start_message_move_task(SourceArn=arn(aws, plain))
    assert "UnsupportedOperation" in err.value.response["Error"]["Code"]
    with pytest.raises(ClientError) as err:
        aws.sqs.start_message_move_task(SourceArn="arn:aws:sqs:us-east-1:123456789012:nope")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as err:
        aws.sqs.cancel_message_move_task(TaskHandle="nope")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    _, dlq = pair(aws, "rate")
    with pytest.raises(ClientError) as err:
        aws.sqs.start_message_move_task(SourceArn=arn(aws, dlq), MaxNumberOfMessagesPerSecond=501)
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_fifo_move_task_keeps_group_order(aws):
    src, dlq = pair(aws, "fifo-move", fifo=True)
    for i in range(12):
        aws.sqs.send_message(QueueUrl=dlq, MessageBody=f"{i % 3}:{i}", MessageGroupId=f"g{i % 3}",
                             MessageDeduplicationId=f"d{i}")
    aws.sqs.start_message_move_task(SourceArn=arn(aws, dlq))
    wait_for(lambda: aws.sqs.list_message_move_tasks(SourceArn=arn(aws, dlq))["Results"][0]["Status"] == "COMPLETED")
    bodies = [m["Body"] for m in drain(aws, src)]
    for g in "012":
        seq = [int(b.split(":")[1]) for b in bodies if b.startswith(f"{g}:")]
        assert seq == sorted(seq) and len(seq) == 4


def test_fifo_group_is_locked_only_while_a_message_is_in_flight(aws):
    q = aws.sqs.create_queue(QueueName="lock.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    for i in range(3):
        aws.sqs.send_message(QueueUrl=q, MessageBody=f"a{i}", MessageGroupId="a", MessageDeduplicationId=f"a{i}")
    first = aws.sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=1, VisibilityTimeout=1)["Messages"]
    assert [m["Body"] for m in first] == ["a0"]
    # In flight: the rest of the group waits.
    assert aws.sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10).get("Messages", []) == []
    time.sleep(1.2)
    # Visibility expired: redelivered first, in order, and the group is open again.
    again = aws.sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10, VisibilityTimeout=5,
                                    AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in again] == ["a0", "a1", "a2"]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    seqs = [int(m["Attributes"]["SequenceNumber"]) for m in again]
    assert seqs == sorted(seqs)
    # Releasing a message (visibility 0) unlocks the group at once.
    for m in again:
        aws.sqs.change_message_visibility(QueueUrl=q, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    time.sleep(0.01)
    assert [m["Body"] for m in aws.sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10)["Messages"]] == \
        ["a0", "a1", "a2"]


def test_fifo_long_poll_on_locked_groups_waits_without_spinning(aws):
    q = aws.sqs.create_queue(QueueName="poll.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    aws.sqs.send_message(QueueUrl=q, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="x")
    aws.sqs.send_message(QueueUrl=q, MessageBody="y", MessageGroupId="g", MessageDeduplicationId="y")
    aws.sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=1, VisibilityTimeout=30)
    started = time.process_time()
    t0 = time.time()
    assert aws.sqs.receive_message(QueueUrl=q, WaitTimeSeconds=1).get("Messages", []) == []
    assert time.time() - t0 >= 0.9
    assert time.process_time() - started < 0.5


def test_fifo_deduplication_window_outlives_the_message(aws):
    q = aws.sqs.create_queue(QueueName="dedup.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    aws.sqs.send_message(QueueUrl=q, MessageBody="one", MessageGroupId="g", MessageDeduplicationId="same")
    assert len(drain(aws, q)) == 1
    # Same id within 5 minutes, after the first copy was consumed: accepted, not delivered.
    aws.sqs.send_message(QueueUrl=q, MessageBody="two", MessageGroupId="g", MessageDeduplicationId="same")
    assert drain(aws, q) == []
    scoped = aws.sqs.create_queue(QueueName="scoped.fifo", Attributes={
        "FifoQueue": "true", "DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId"})["QueueUrl"]
    aws.sqs.send_message(QueueUrl=scoped, MessageBody="a", MessageGroupId="g1", MessageDeduplicationId="id")
    aws.sqs.send_message(QueueUrl=scoped, MessageBody="b", MessageGroupId="g2", MessageDeduplicationId="id")
    aws.sqs.send_message(QueueUrl=scoped, MessageBody="c", MessageGroupId="g1", MessageDeduplicationId="id")
    assert sorted(m["Body"] for m in drain(aws, scoped)) == ["a", "b"]


def test_faults_fail_whole_calls_and_batch_entries(aws, emulator):
    q = aws.sqs.create_queue(QueueName="faulty")["QueueUrl"]
    post(emulator, "faults", {"operation": "SendMessageBatch", "count": 1, "code": "RequestThrottled"})
    entries = [{"Id": str(i), "MessageBody": f"b{i}"} for i in range(4)]
    once = boto3.client("sqs", endpoint_url=emulator, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as err:
        once.send_message_batch(QueueUrl=q, Entries=entries)
    assert err.value.response["Error"]["Code"] == "RequestThrottled"
    post(emulator, "faults", {"operation": "SendMessageBatch", "count": 2, "entries": True,
                              "code": "InternalError", "status": 500})
    out = aws.sqs.send_message_batch(QueueUrl=q, Entries=entries)
    assert len(out["Successful"]) == 2 and [f["Code"] for f in out["Failed"]] == ["InternalError"] * 2
    assert all(f["SenderFault"] is False for f in out["Failed"])
    fired = post(emulator, "faults", method="GET")
    assert [f["fired"] for f in fired] == [1, 2]
    post(emulator, "faults", method="DELETE")
    assert len(aws.sqs.send_message_batch(QueueUrl=q, Entries=entries)["Successful"]) == 4
    assert count(aws, q) == 6


def test_concurrent_sends_and_deletes_lose_nothing(aws):
    """Workers moving messages between two queues at once, as a redrive does: every
    message ends in exactly one queue (moto's delete used to undo concurrent writes)."""
    import threading

    src = aws.sqs.create_queue(QueueName="race-src")["QueueUrl"]
    dst = aws.sqs.create_queue(QueueName="race-dst")["QueueUrl"]
    for start in range(0, 1000, 10):
        aws.sqs.send_message_batch(QueueUrl=src, Entries=[
            {"Id": str(i), "MessageBody": str(i)} for i in range(start, start + 10)])
    errors: list[Exception] = []

    def mover():
        client = boto3.client("sqs", endpoint_url=aws.url, region_name="us-east-1",
                              aws_access_key_id="x", aws_secret_access_key="x",
                              config=Config(retries={"max_attempts": 1}))
        try:
            while True:
                got = client.receive_message(QueueUrl=src, MaxNumberOfMessages=10,
                                             VisibilityTimeout=60).get("Messages", [])
                if not got:
                    return
                client.send_message_batch(QueueUrl=dst, Entries=[
                    {"Id": str(i), "MessageBody": m["Body"]} for i, m in enumerate(got)])
                client.delete_message_batch(QueueUrl=src, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=mover) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert count(aws, src) == 0
    moved = sorted(int(m["Body"]) for m in drain(aws, dst))
    assert moved == list(range(1000))




def test_delete_by_any_handle_a_message_had_once_and_never_by_a_stranger(aws):
    """DeleteMessage as SQS answers it (and as moto did, now through a handle index): the
    latest or an earlier receipt handle of a message deletes it; deleting again is
    accepted; a handle no message of the queue was given is ReceiptHandleIsInvalid; a
    message dead-lettered to the DLQ is deleted there by the DLQ's handle."""
    src, dlq = pair(aws, "handles")
    other = aws.sqs.create_queue(QueueName="handles-other")["QueueUrl"]
    aws.sqs.send_message(QueueUrl=src, MessageBody="a")
    aws.sqs.send_message(QueueUrl=other, MessageBody="b")
    first = aws.sqs.receive_message(QueueUrl=other, VisibilityTimeout=0)["Messages"][0]["ReceiptHandle"]
    second = aws.sqs.receive_message(QueueUrl=other, VisibilityTimeout=30)["Messages"][0]["ReceiptHandle"]
    assert first != second
    with pytest.raises(ClientError) as err:
        aws.sqs.delete_message(QueueUrl=src, ReceiptHandle=second)  # another queue's message
    assert err.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"
    aws.sqs.delete_message(QueueUrl=other, ReceiptHandle=first)
    aws.sqs.delete_message(QueueUrl=other, ReceiptHandle=second)  # already deleted: accepted
    assert aws.sqs.receive_message(QueueUrl=other, VisibilityTimeout=0).get("Messages", []) == []
    # Dead-lettered after one receive (maxReceiveCount 1): deleted from the DLQ by its handle there.
    aws.sqs.receive_message(QueueUrl=src, VisibilityTimeout=0)
    assert aws.sqs.receive_message(QueueUrl=src, VisibilityTimeout=0).get("Messages", []) == []
    dead = aws.sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=30)["Messages"][0]
    aws.sqs.delete_message(QueueUrl=dlq, ReceiptHandle=dead["ReceiptHandle"])
    depth = aws.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
    assert depth["ApproximateNumberOfMessages"] == "0" and depth["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_a_shared_dlq_records_each_message_s_source_and_the_move_task_returns_it_there(aws):
    """SQS marks a dead-lettered message with the queue it came from
    (DeadLetterQueueSourceArn, a system attribute ReceiveMessage returns for All or by
    name), and its move task sends each message back there."""
    dlq = aws.sqs.create_queue(QueueName="shared-dlq")["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": arn(aws, dlq), "maxReceiveCount": 1})
    sources = {name: aws.sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
               for name in ("shared-a", "shared-b")}
    for name, url in sources.items():
        aws.sqs.send_message(QueueUrl=url, MessageBody=name)
        aws.sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)
        assert aws.sqs.receive_message(QueueUrl=url, VisibilityTimeout=0).get("Messages", []) == []
    plain = aws.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    assert all("DeadLetterQueueSourceArn" not in m.get("Attributes", {}) for m in plain)
    for names in (["All"], ["DeadLetterQueueSourceArn"]):
        got = aws.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                      MessageSystemAttributeNames=names)["Messages"]
        assert {m["Body"]: m["Attributes"]["DeadLetterQueueSourceArn"] for m in got} == {
            name: arn(aws, url) for name, url in sources.items()}
    aws.sqs.start_message_move_task(SourceArn=arn(aws, dlq))
    for name, url in sources.items():
        got = wait_for(lambda: aws.sqs.receive_message(QueueUrl=url, VisibilityTimeout=30).get("Messages"))
        assert [m["Body"] for m in got] == [name]


def test_concurrent_long_polls_of_an_empty_queue_wait_side_by_side(aws, emulator):
    """Eight receives with WaitTimeSeconds=1 on an empty queue all end after about a
    second, as on SQS; serialised they took eight."""
    from concurrent.futures import ThreadPoolExecutor
    q = aws.sqs.create_queue(QueueName="polled")["QueueUrl"]
    clients = [boto3.client("sqs", endpoint_url=emulator, region_name="us-east-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing") for _ in range(8)]
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda c: c.receive_message(QueueUrl=q, WaitTimeSeconds=1).get("Messages", []), clients))
    assert got == [[]] * 8
    assert time.monotonic() - started < 3
