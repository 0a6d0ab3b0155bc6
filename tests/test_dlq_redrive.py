"""dlq-redrive end to end: the built function under `cargo lambda watch`, invoked through
the emulator's Lambda API, moving messages between emulator queues and functions."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
import requests

from support.helpers import ACCOUNT, REGION, create_function, wait_for

FUNCTION = "redrive-dlq-redrive"
PROVENANCE = "rollgate.redrive"


@pytest.fixture(scope="module")
def redrive(stack):
    create_function(stack, FUNCTION, handler="dlq-redrive", env={}, timeout=120)
    lam = stack.client("lambda")

    def call(request: dict) -> dict:
        out = lam.invoke(FunctionName=FUNCTION, Payload=json.dumps(request).encode())
        body = json.loads(out["Payload"].read())
        if out.get("FunctionError"):
            raise RuntimeError(body.get("errorMessage", body))
        return body

    return call


def name(prefix: str) -> str:
    return f"redrive-{prefix}-{uuid.uuid4().hex[:6]}"


def queue_pair(stack, fifo: bool = False) -> tuple[str, str]:
    sqs = stack.client("sqs")
    base = name("q")
    suffix = ".fifo" if fifo else ""
    extra = {"FifoQueue": "true"} if fifo else {}
    dlq = sqs.create_queue(QueueName=f"{base}-dlq{suffix}", Attributes=extra)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    src = sqs.create_queue(QueueName=f"{base}{suffix}", Attributes={**extra, "RedrivePolicy": policy})["QueueUrl"]
    return src, dlq


def fill(stack, url: str, n: int, attrs=lambda i: {}, group=None):
    sqs = stack.client("sqs")
    for start in range(0, n, 10):
        entries = []
        for i in range(start, min(n, start + 10)):
            e = {"Id": str(i), "MessageBody": json.dumps({"n": i, "tenant": "a" if i % 2 else "b"}),
                 "MessageAttributes": attrs(i)}
            if group:
                e.update(MessageGroupId=group(i), MessageDeduplicationId=f"d{i}")
            entries.append(e)
        assert not stack.client("sqs").send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


def drain(stack, url: str) -> list[dict]:
    sqs, out = stack.client("sqs"), []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                  AttributeNames=["All"]).get("Messages", [])
        if not got:
            return out
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
        out.extend(got)


def depth(stack, url: str) -> int:
    a = stack.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return sum(int(v) for v in a.values())


def rich_attrs(i: int) -> dict:
    return {"tenant": {"DataType": "String", "StringValue": "a" if i % 2 else "b"},
            "amount": {"DataType": "Number", "StringValue": f"{i}.50"},
            "blob": {"DataType": "Binary", "BinaryValue": bytes([i % 256, 0, 255])},
            "kind": {"DataType": "String.custom", "StringValue": f"k-{i}"}}


def test_thousand_messages_move_back_with_conservation(stack, redrive):
    src, dlq = queue_pair(stack)
    fill(stack, dlq, 1000, rich_attrs)
    report = redrive({"source": dlq, "concurrency": 8})
    assert report["moved"] + report["remaining"] == 1000, report
    assert (report["moved"], report["remaining"], report["failed"], report["duplicates"]) == (1000, 0, 0, 0)
    assert report["stopped"] == "drained" and report["continuation"] is None
    moved = drain(stack, src)
    assert len(moved) == 1000
    seen = set()
    for m in moved:
        n = json.loads(m["Body"])["n"]
        seen.add(n)
        attrs = dict(m["MessageAttributes"])
        tag = json.loads(attrs.pop(PROVENANCE)["StringValue"])
        assert tag["source"].endswith(dlq.rsplit("/", 1)[1]) and tag["message_id"]
        want = rich_attrs(n)
        assert {k: {x: y for x, y in v.items() if x in ("DataType", "StringValue", "BinaryValue")}
                for k, v in attrs.items()} == want
    assert seen == set(range(1000))


def test_large_messages_are_sent_in_batches_sqs_accepts(stack, redrive):
    """SQS refuses a SendMessageBatch whose messages add up to over 1 MiB
    (BatchRequestTooLong), even when each message is well under its own 1 MiB limit: ten
    DLQ messages of 300 KB must still all move, in as many requests as that takes."""
    src, dlq = queue_pair(stack)
    sqs = stack.client("sqs")
    for i in range(10):
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"n": i, "pad": "x" * 300_000}))
    report = redrive({"source": dlq})
    assert (report["moved"], report["remaining"], report["failed"]) == (10, 0, 0), report
    assert sorted(json.loads(m["Body"])["n"] for m in drain(stack, src)) == list(range(10))


def test_fifo_groups_keep_their_order(stack, redrive):
    src, dlq = queue_pair(stack, fifo=True)
    fill(stack, dlq, 100, group=lambda i: f"g{i % 5}")
    report = redrive({"source": dlq})
    assert report["moved"] == 100 and report["remaining"] == 0, report
    moved = drain(stack, src)
    by_group: dict[str, list[int]] = {}
    for m in moved:
        by_group.setdefault(m["Attributes"]["MessageGroupId"], []).append(json.loads(m["Body"])["n"])
    assert sorted(by_group) == [f"g{i}" for i in range(5)]
    for g, seq in by_group.items():
        assert seq == sorted(seq) and len(seq) == 20, (g, seq)


def test_dry_run_changes_nothing_and_filter_moves_exactly_the_match(stack, redrive):
    src, dlq = queue_pair(stack)
    fill(stack, dlq, 40, rich_attrs)
    dry = redrive({"source": dlq, "dry_run": True, "filter": {"attributes": {"tenant": "a"}}})
    assert (dry["would_move"], dry["filtered"], dry["moved"]) == (20, 20, 0), dry
    assert depth(stack, dlq) == 40 and depth(stack, src) == 0
    run = redrive({"source": dlq, "filter": {"attributes": {"tenant": "a"},
                                             "body": [{"pointer": "/n", "exists": True}]}})
    assert (run["moved"], run["filtered"], run["remaining"]) == (20, 20, 20), run
    assert {json.loads(m["Body"])["tenant"] for m in drain(stack, src)} == {"a"}
    assert {json.loads(m["Body"])["tenant"] for m in drain(stack, dlq)} == {"b"}


def test_lambda_async_dlq_is_replayed_into_the_function(stack, redrive):
    fn = name("app")
    create_function(stack, fn, handler="example-app", env={})
    sqs = stack.client("sqs")
    dlq = sqs.create_queue(QueueName=f"{fn}-dlq")["QueueUrl"]
    events = [{"order": i} for i in range(5)]
    for e in events[:3]:  # async-invocation DLQ messages: the event itself plus error attributes
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(e), MessageAttributes={
            "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
            "ErrorCode": {"DataType": "String", "StringValue": "200"},
            "ErrorMessage": {"DataType": "String", "StringValue": "boom"}})
    for e in events[3:]:  # on-failure destination records
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({
            "version": "1.0", "timestamp": "2026-01-01T00:00:00.000Z",
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}:$LATEST",
                               "condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": e, "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorType": "X", "errorMessage": "boom"}}))
    report = redrive({"source": dlq, "destination": f"lambda:{fn}"})
    assert report["moved"] == 5 and report["remaining"] == 0, report

    def calls():
        got = stack.control(f"invocations?function={fn}")
        return got if len(got) == 5 else None

    got = wait_for(calls, 30, "5 replayed invocations")
    assert all(c["invocationType"] == "Event" for c in got)
    assert sorted(json.dumps(c["payload"], sort_keys=True) for c in got) == \
        sorted(json.dumps(e, sort_keys=True) for e in events)


def test_destination_failures_and_throttling_lose_nothing(stack, redrive):
    src, dlq = queue_pair(stack)
    fill(stack, dlq, 300)
    target = src.rsplit("/", 1)[1]
    post = lambda spec: requests.post(f"{stack.endpoint}/_rollgate/faults", json=spec, timeout=5).raise_for_status()
    post({"operation": "SendMessageBatch", "target": target, "count": 4, "code": "RequestThrottled"})
    post({"operation": "SendMessageBatch", "target": target, "fraction": 0.2, "entries": True,
          "code": "InternalError", "status": 500})
    try:
        report = redrive({"source": dlq})
    finally:
        requests.delete(f"{stack.endpoint}/_rollgate/faults", timeout=5)
    assert report["throttled"] >= 1, report
    moved = {json.loads(m["Body"])["n"] for m in drain(stack, src)}
    left = {json.loads(m["Body"])["n"] for m in drain(stack, dlq)}
    assert moved | left == set(range(300)) and not moved & left, (len(moved), len(left))
    assert report["moved"] == len(moved) and report["remaining"] == len(left)
    assert report["failed"] == len(left)


def test_a_redrive_that_reaches_its_deadline_continues_and_completes(stack, redrive):
    src, dlq = queue_pair(stack)
    fill(stack, dlq, 200)
    request, runs, total = {"source": dlq, "rate": 100, "max_run_seconds": 1}, 0, 0
    while request is not None:
        report = redrive(request)
        runs += 1
        total += report["moved"]
        assert runs < 10
        if report["continuation"] is not None:
            assert report["stopped"] == "deadline"
        request = report["continuation"]
    assert runs >= 2 and total == 200 and report["totals"]["moved"] == 200
    assert len({json.loads(m["Body"])["n"] for m in drain(stack, src)}) == 200


def test_native_move_task_and_status(stack, redrive):
    src, dlq = queue_pair(stack)
    fill(stack, dlq, 30)
    started = redrive({"source": dlq, "native": True})
    assert started["action"] == "native" and started["task"]["task_handle"]

    def done():
        tasks = redrive({"source": dlq, "action": "status"})["tasks"]
        return tasks[0]["status"] == "COMPLETED" and tasks[0]

    task = wait_for(done, 30, "the move task")
    assert task["messages_moved"] == 30 and depth(stack, src) == 30


def test_a_native_move_task_is_cancelled_by_its_handle(stack, redrive):
    src, dlq = queue_pair(stack)
    fill(stack, dlq, 30)
    started = redrive({"source": dlq, "native": True, "rate": 1})
    handle = started["task"]["task_handle"]
    cancelled = redrive({"source": dlq, "action": "cancel", "task_handle": handle})
    assert cancelled["action"] == "cancel" and cancelled["moved"] < 30, cancelled
    assert cancelled["tasks"][0]["status"] in ("CANCELLING", "CANCELLED"), cancelled["tasks"]
    assert depth(stack, src) + depth(stack, dlq) == 30


def test_each_run_is_announced_on_the_decision_topic(stack, redrive):
    """The run's summary goes to the decision topic with the source and the verdict as
    message attributes, for subscribers to filter on."""
    from support.helpers import topic_inbox

    find = topic_inbox(stack, name("summaries"), {"component": ["dlq-redrive"]})
    src, dlq = queue_pair(stack)
    fill(stack, dlq, 5)
    report = redrive({"source": dlq})
    assert report["moved"] == 5, report
    msg = find({"source": report["source"]}, timeout=30)
    attrs = {k: v["Value"] for k, v in msg["MessageAttributes"].items()}
    assert attrs["component"] == "dlq-redrive" and attrs["verdict"], attrs


def test_bad_requests_name_the_field_and_touch_nothing(stack, redrive):
    src, dlq = queue_pair(stack)
    fill(stack, dlq, 3)
    with pytest.raises(RuntimeError, match="rate"):
        redrive({"source": dlq, "rate": -1})
    with pytest.raises(RuntimeError, match="allow-list"):
        redrive({"source": dlq, "destination": "lambda:someone-else"})
    sqs = stack.client("sqs")
    other = sqs.create_queue(QueueName=f"private-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    with pytest.raises(RuntimeError, match="allow-list"):
        redrive({"source": other})
    assert depth(stack, dlq) == 3 and depth(stack, src) == 0


def test_requests_that_cannot_work_are_refused_before_anything_moves(stack, redrive):
    """A queue that is its own DLQ once moved one message into itself 941 times in 10 s;
    a rate of 1e-9 ran anyway; a filter on 11 attributes (SQS carries 10) can never match."""
    sqs = stack.client("sqs")
    url = sqs.create_queue(QueueName=name("loop"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})})
    fill(stack, url, 2)
    with pytest.raises(RuntimeError, match="its own dead-letter queue"):
        redrive({"source": url})
    assert depth(stack, url) == 2
    src, dlq = queue_pair(stack)
    fill(stack, dlq, 2)
    with pytest.raises(RuntimeError, match="rate: must be between 0.1"):
        redrive({"source": dlq, "rate": 1e-9})
    with pytest.raises(RuntimeError, match="filter.attributes: 11 conditions"):
        redrive({"source": dlq, "filter": {"attributes": {f"a{i}": "x" for i in range(11)}}})
    assert depth(stack, dlq) == 2 and depth(stack, src) == 0


def dead_letter(stack, source_url: str, n: int, start: int = 0) -> None:
    """`n` messages into `source_url`, each received until SQS dead-letters it (the
    queue's maxReceiveCount is 1): the DLQ then holds them marked with their source."""
    sqs = stack.client("sqs")
    for i in range(start, start + n):
        sqs.send_message(QueueUrl=source_url, MessageBody=json.dumps({"n": i}))
    for _ in range(3):
        while sqs.receive_message(QueueUrl=source_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages"):
            pass


def test_a_shared_dlq_goes_back_to_the_queue_each_message_failed_in(stack, redrive):
    """Two queues dead-letter into one DLQ: with no destination, each message goes back
    to its own source (SQS's DeadLetterQueueSourceArn); one sent to the DLQ by hand has no
    source and stays, reported."""
    sqs = stack.client("sqs")
    dlq = sqs.create_queue(QueueName=name("shared-dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    a = sqs.create_queue(QueueName=name("orders"), Attributes={"RedrivePolicy": policy})["QueueUrl"]
    b = sqs.create_queue(QueueName=name("payments"), Attributes={"RedrivePolicy": policy})["QueueUrl"]
    dead_letter(stack, a, 12)
    dead_letter(stack, b, 8, start=100)
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"n": -1}))
    assert depth(stack, dlq) == 21
    report = redrive({"source": dlq, "concurrency": 4})
    arn_of = lambda url: f"arn:aws:sqs:{REGION}:{ACCOUNT}:{url.rsplit('/', 1)[1]}"
    assert report["moved"] == 20 and report["destinations"] == {arn_of(a): 12, arn_of(b): 8}, report
    assert sorted(json.loads(m["Body"])["n"] for m in drain(stack, a)) == list(range(12))
    assert sorted(json.loads(m["Body"])["n"] for m in drain(stack, b)) == list(range(100, 108))
    assert [f["code"] for f in report["failures"]] == ["SourceUnknown"], report
    assert report["remaining"] == 1 and [json.loads(m["Body"])["n"] for m in drain(stack, dlq)] == [-1]


def numbers(messages: list[dict]) -> list[int]:
    return [json.loads(m["Body"])["n"] for m in messages]


def test_a_copy_job_copies_each_message_once_and_keeps_every_original(stack, redrive):
    """mode copy over several runs, with a fifth of the sends to the staging queue failing:
    each message is copied once (copies are marked), the originals all stay in the DLQ, and
    those copied by earlier runs stay hidden until the job's hold ends."""
    src, dlq = queue_pair(stack)
    fill(stack, dlq, 200, rich_attrs)
    sqs = stack.client("sqs")
    staging = sqs.create_queue(QueueName=name("staging"))["QueueUrl"]
    target = staging.rsplit("/", 1)[1]
    post = lambda spec: requests.post(f"{stack.endpoint}/_rollgate/faults", json=spec, timeout=5).raise_for_status()
    post({"operation": "SendMessageBatch", "target": target, "fraction": 0.2, "entries": True,
          "code": "InternalError", "status": 500})
    request, reports = {"source": dlq, "destination": staging, "mode": "copy", "rate": 100,
                        "max_run_seconds": 1, "hold_seconds": 600}, []
    try:
        while request is not None:
            reports.append(redrive(request))
            assert len(reports) < 15
            request = reports[-1]["continuation"]
    finally:
        requests.delete(f"{stack.endpoint}/_rollgate/faults", timeout=5)
    last = reports[-1]
    assert len(reports) >= 2 and all(r["moved"] == 0 and r["mode"] == "copy" for r in reports), reports
    copies = drain(stack, staging)
    copied = numbers(copies)
    assert len(copied) == len(set(copied)) == last["totals"]["copied"], (len(copied), last["totals"])
    # Every message is copied, or failed in the last run (earlier failures were retried).
    assert len(copied) + last["failed"] == 200, (len(copied), last["failed"])
    for m in copies:
        tag = json.loads(m["MessageAttributes"][PROVENANCE]["StringValue"])
        assert tag["copy"] is True and tag["source"].endswith(dlq.rsplit("/", 1)[1]), tag
    assert depth(stack, dlq) == 200 and depth(stack, src) == 0
    visible = int(sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
                  ["Attributes"]["ApproximateNumberOfMessages"])
    assert visible == last["copied"] + last["failed"], (visible, last)
    assert last["hold_until_ms"] == reports[0]["hold_until_ms"]


def test_peek_pages_through_a_queue_and_hands_each_page_back_at_once(stack, redrive):
    src, dlq = queue_pair(stack)
    fill(stack, dlq, 35, rich_attrs)
    sqs = stack.client("sqs")
    request, shown, pages = {"source": dlq, "action": "peek", "page_size": 10}, [], 0
    while True:
        page = redrive(request)
        pages += 1
        assert page["action"] == "peek" and len(page["messages"]) <= 10, page
        shown.extend(json.loads(m["body"])["n"] for m in page["messages"])
        attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
        assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "35", (pages, attrs)
        if page.get("cursor") is None:
            break
        request["cursor"] = page["cursor"]
        assert pages < 10
    assert sorted(shown) == list(range(35)) and pages >= 4, (pages, sorted(shown))
    m = page["messages"][-1] if page["messages"] else None
    sample = m or redrive({"source": dlq, "action": "peek", "page_size": 1})["messages"][0]
    assert sample["attributes"]["blob"]["data_type"] == "Binary" and sample["receive_count"] >= 1, sample
    assert depth(stack, dlq) == 35 and depth(stack, src) == 0


def test_copy_and_peek_refuse_what_they_cannot_do(stack, redrive):
    src, dlq = queue_pair(stack, fifo=True)
    fill(stack, dlq, 2, group=lambda i: "g")
    with pytest.raises(RuntimeError, match="mode: copy from a FIFO queue is not possible"):
        redrive({"source": dlq, "mode": "copy", "destination": src})
    with pytest.raises(RuntimeError, match="destination: peek moves nothing"):
        redrive({"source": dlq, "action": "peek", "destination": src})
    other_src, other = queue_pair(stack)
    fill(stack, other, 3)
    cursor = redrive({"source": other, "action": "peek", "page_size": 1})["cursor"]
    with pytest.raises(RuntimeError, match="cursor: belongs to a page of another queue"):
        redrive({"source": dlq, "action": "peek", "cursor": cursor})
    assert depth(stack, dlq) == 2 and depth(stack, src) == 0 and depth(stack, other) == 3


def sns_dead_letters(stack, n: int, raw: bool, filter_policy: dict | None = None):
    """A topic whose one queue subscription dead-letters into a DLQ: the subscriber queue
    is deleted, `n` messages published (so SNS puts them in the DLQ, in its shape), and the
    queue made again (same name, same ARN). Returns (topic ARN, subscriber URL, DLQ URL)."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    base = name("sns")
    topic = sns.create_topic(Name=f"{base}-topic")["TopicArn"]
    dlq = sqs.create_queue(QueueName=f"{base}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sub = sqs.create_queue(QueueName=f"{base}-sub")["QueueUrl"]
    sub_arn = sqs.get_queue_attributes(QueueUrl=sub, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"RawMessageDelivery": "true" if raw else "false",
                  "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn})}
    if filter_policy:
        attributes["FilterPolicy"] = json.dumps(filter_policy)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=sub_arn, Attributes=attributes)
    sqs.delete_queue(QueueUrl=sub)
    for i in range(n):
        attrs = {"tenant": {"DataType": "String", "StringValue": "acme"},
                 "blob": {"DataType": "Binary", "BinaryValue": bytes([i % 256, 0, 255])}}
        if filter_policy:
            attrs["route"] = {"DataType": "String", "StringValue": "billing"}
        sns.publish(TopicArn=topic, Message=json.dumps({"n": i}), Subject="order", MessageAttributes=attrs)
    assert depth(stack, dlq) == n
    sub = sqs.create_queue(QueueName=f"{base}-sub")["QueueUrl"]
    return topic, sub, dlq


def test_sns_dead_letters_are_published_to_their_topic_again_under_faults(stack, redrive):
    topic, sub, dlq = sns_dead_letters(stack, 60, raw=False)
    post = lambda spec: requests.post(f"{stack.endpoint}/_rollgate/faults", json=spec, timeout=5).raise_for_status()
    post({"operation": "PublishBatch", "fraction": 0.2, "entries": True, "code": "InternalError", "status": 500})
    post({"operation": "PublishBatch", "fraction": 0.05, "entries": True, "code": "InvalidParameter",
          "status": 400})
    try:
        report = redrive({"source": dlq, "destination": "sns"})
    finally:
        requests.delete(f"{stack.endpoint}/_rollgate/faults", timeout=5)
    delivered = drain(stack, sub)
    got = [json.loads(json.loads(m["Body"])["Message"])["n"] for m in delivered]
    left = [json.loads(json.loads(m["Body"])["Message"])["n"] for m in drain(stack, dlq)]
    # Each message published once or still in the DLQ (refused ones), none lost.
    assert sorted(got + left) == list(range(60)) and len(set(got)) == len(got), (len(got), len(left))
    assert report["moved"] == len(got) and report["failed"] == len(left), report
    assert report["destinations"] == {topic: len(got)}, report
    env = json.loads(delivered[0]["Body"])
    assert env["Subject"] == "order" and env["MessageAttributes"]["tenant"]["Value"] == "acme", env
    assert PROVENANCE in env["MessageAttributes"], env


def test_raw_sns_dead_letters_go_to_the_topic_named_with_a_routing_attribute(stack, redrive):
    topic, sub, dlq = sns_dead_letters(stack, 12, raw=True, filter_policy={"route": ["billing"]})
    report = redrive({"source": dlq, "destination": "sns"})
    assert report["moved"] == 0 and report["failed"] == 12, report
    assert {f["code"] for f in report["failures"]} == {"SourceUnknown"}, report
    assert depth(stack, dlq) == 12
    report = redrive({"source": dlq, "destination": f"sns:{topic}", "sns_attributes": {"replayed": "yes"}})
    assert report["moved"] == 12 and report["remaining"] == 0, report
    delivered = drain(stack, sub)
    assert sorted(json.loads(m["Body"])["n"] for m in delivered) == list(range(12))
    attrs = delivered[0]["MessageAttributes"]
    assert attrs["replayed"]["StringValue"] == "yes" and attrs["route"]["StringValue"] == "billing", attrs
    assert len(attrs["blob"]["BinaryValue"]) == 3, attrs
    with pytest.raises(RuntimeError, match="allow-list"):
        redrive({"source": dlq, "destination": f"sns:arn:aws:sns:{REGION}:{ACCOUNT}:private-topic"})


def test_eventbridge_dead_letters_go_straight_to_their_targets_under_faults(stack, redrive):
    """A rule whose Lambda and SQS targets were gone when its events came: EventBridge put
    them in the targets' DLQ (the event, six String attributes). Once the targets are
    back, destination target delivers each event to its own target, without the
    attributes, with throttled invokes retried."""
    sqs, events = stack.client("sqs"), stack.client("events")
    base = name("evt")
    dlq = sqs.create_queue(QueueName=f"{base}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    fn, queue = f"{base}-fn", f"{base}-audit"
    fn_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}"
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}"
    events.put_rule(Name=base, EventPattern=json.dumps({"source": [f"app.{base}"]}))
    events.put_targets(Rule=base, Targets=[{"Id": "fn", "Arn": fn_arn, "DeadLetterConfig": {"Arn": dlq_arn}},
                                           {"Id": "q", "Arn": queue_arn, "DeadLetterConfig": {"Arn": dlq_arn}}])
    for i in range(0, 20, 10):
        events.put_events(Entries=[{"Source": f"app.{base}", "DetailType": "order", "Detail": json.dumps({"n": n})}
                                   for n in range(i, i + 10)])
    assert depth(stack, dlq) == 40  # each event, once per target
    create_function(stack, fn, handler="example-app", env={})
    audit = sqs.create_queue(QueueName=queue)["QueueUrl"]
    post = lambda spec: requests.post(f"{stack.endpoint}/_rollgate/faults", json=spec, timeout=5).raise_for_status()
    post({"operation": "Invoke", "target": fn, "count": 3, "code": "TooManyRequestsException", "status": 429})
    try:
        report = redrive({"source": dlq, "destination": "target"})
    finally:
        requests.delete(f"{stack.endpoint}/_rollgate/faults", timeout=5)
    assert (report["moved"], report["remaining"], report["failed"]) == (40, 0, 0), report
    assert report["destinations"] == {fn_arn: 20, queue_arn: 20}, report
    assert report["throttled"] >= 1, report

    def calls():
        got = stack.control(f"invocations?function={fn}")
        return got if len(got) == 20 else None

    invoked = wait_for(calls, 30, "20 replayed events")
    assert sorted(c["payload"]["detail"]["n"] for c in invoked) == list(range(20))
    assert all(c["payload"]["source"] == f"app.{base}" for c in invoked)
    delivered = drain(stack, audit)
    assert sorted(json.loads(m["Body"])["detail"]["n"] for m in delivered) == list(range(20))
    assert not set(delivered[0].get("MessageAttributes", {})) & {"RULE_ARN", "TARGET_ARN", "ERROR_CODE"}


def test_eventbridge_dead_letters_are_put_on_their_bus_again_under_faults(stack, redrive):
    """A rule on a custom bus whose SQS target was gone: its events are in the target's
    DLQ. destination events puts each on the bus of its rule (from RULE_ARN) again, where
    the rule delivers it to the target, back now; failed entries are retried. An AWS
    service's event cannot be put (EventBridge refuses aws.* sources): it stays."""
    sqs, events = stack.client("sqs"), stack.client("events")
    base = name("bus")
    bus = events.create_event_bus(Name=base)["EventBusArn"]
    dlq = sqs.create_queue(QueueName=f"{base}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = f"{base}-target"
    events.put_rule(Name=base, EventBusName=base, EventPattern=json.dumps({"source": [f"app.{base}"]}))
    events.put_targets(Rule=base, EventBusName=base, Targets=[
        {"Id": "q", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}", "DeadLetterConfig": {"Arn": dlq_arn}}])
    for i in range(0, 30, 10):
        events.put_events(Entries=[{"Source": f"app.{base}", "DetailType": "order", "EventBusName": base,
                                    "Detail": json.dumps({"n": n})} for n in range(i, i + 10)])
    assert depth(stack, dlq) == 30
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch", "account": ACCOUNT, "time": "2026-12-04T10:00:00Z", "region": REGION,
        "resources": [], "detail": {"alarmName": "x"}}), MessageAttributes={
        "RULE_ARN": {"DataType": "String", "StringValue": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{base}/{base}"}})
    target = sqs.create_queue(QueueName=queue)["QueueUrl"]
    post = lambda spec: requests.post(f"{stack.endpoint}/_rollgate/faults", json=spec, timeout=5).raise_for_status()
    post({"operation": "PutEvents", "fraction": 0.2, "entries": True, "code": "InternalException", "status": 500})
    try:
        report = redrive({"source": dlq, "destination": "events"})
    finally:
        requests.delete(f"{stack.endpoint}/_rollgate/faults", timeout=5)
    assert (report["moved"], report["failed"], report["remaining"]) == (30, 1, 1), report
    assert report["destinations"] == {bus: 30}, report
    assert report["failures"][0]["code"] == "NotAnEvent" and "aws.cloudwatch" in report["failures"][0]["message"]
    got = sorted(json.loads(m["Body"])["detail"]["n"] for m in drain(stack, target))
    assert got == list(range(30)), got


def test_s3_failure_records_are_replayed_into_their_function_under_faults(stack, redrive):
    """A function whose asynchronous invocations all failed, with an S3 on-failure
    destination: Lambda wrote one record per event under aws/lambda/async/<function>/.
    Fixed, the function gets each event again (the record's requestPayload), through
    throttled invokes and failing reads, and each object is deleted once replayed."""
    s3, lam = stack.client("s3"), stack.client("lambda")
    base, bucket = name("s3fn"), name("records")
    s3.create_bucket(Bucket=bucket)
    create_function(stack, base, handler="example-app-broken", env={})
    lam.put_function_event_invoke_config(FunctionName=base, MaximumRetryAttempts=0, DestinationConfig={
        "OnFailure": {"Destination": f"arn:aws:s3:::{bucket}"}})
    for i in range(12):
        lam.invoke(FunctionName=base, InvocationType="Event", Payload=json.dumps({"order": i}).encode())
    wait_for(lambda: s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 12, 60, "12 failure records in S3")
    lam.update_function_configuration(FunctionName=base, Handler="example-app")  # fixed
    before = len(stack.control(f"invocations?function={base}"))
    post = lambda spec: requests.post(f"{stack.endpoint}/_rollgate/faults", json=spec, timeout=5).raise_for_status()
    post({"operation": "GetObject", "count": 2, "code": "InternalError", "status": 500})
    post({"operation": "Invoke", "target": base, "count": 2, "code": "TooManyRequestsException", "status": 429})
    try:
        # An Invoke fault matches the text of a call: neither bucket nor prefix names the
        # function, or the request to dlq-redrive would match too.
        report = redrive({"source": f"s3://{bucket}/aws/lambda/async/"})
    finally:
        requests.delete(f"{stack.endpoint}/_rollgate/faults", timeout=5)
    assert (report["moved"], report["failed"], report["duplicates"]) == (12, 0, 0), report
    assert report["destinations"] == {f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{base}:$LATEST": 12}, report
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0

    def replays():
        got = [c for c in stack.control(f"invocations?function={base}")[before:] if c.get("binary") == "example-app"]
        return got if len(got) == 12 else None

    got = wait_for(replays, 30, "12 replayed events")
    assert sorted(c["payload"]["order"] for c in got) == list(range(12))
