"""A stand-in for Amazon SQS on a modelled network, for the redrive benchmark only.

The local AWS (moto behind rollgate's IAM and validation layers) spends about 0.7 ms of
its one Python process's CPU per message moved: every client, however fast, meets that
ceiling, and the benchmark would measure the emulator rather than the client. SQS itself
answers concurrent callers side by side. This server keeps the queues in memory, speaks
SQS's JSON protocol (`X-Amz-Target: AmazonSQS.<Operation>`, as the AWS SDKs of 2024 on
send it) for the operations a redrive uses, and makes every answer wait a log-normal draw
(median and p99 from the command line) on its own, concurrently, like the service.

What it keeps of SQS's behaviour (each from the SQS API reference): at most 10 entries
per batch with unique ids, bodies of 1 byte to 256 KiB, visibility timeouts that hide a
received message and bring it back, receipt handles that stop working once the message
is deleted, `ApproximateReceiveCount`, MD5 digests of body and attributes, and the
redrive policy's `ListDeadLetterSourceQueues`. What it does not: IAM, FIFO, delays,
long polling beyond waiting out `WaitTimeSeconds` on an empty queue.

    sqs_model.py <port> [median_ms p99_ms]     (port 0: pick one, printed on stdout)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import heapq
import json
import math
import random
import struct
import sys
import time
import uuid

ACCOUNT, REGION = "123456789012", "us-east-1"
MAX_BODY = 262_144


class SqsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def md5_of_attributes(attrs: dict) -> str:
    """SQS's digest of message attributes: names sorted, each as length-prefixed name,
    type, a transport byte (1 string, 2 binary) and length-prefixed value."""
    h = hashlib.md5()
    for name in sorted(attrs):
        a = attrs[name]
        kind = a["DataType"]
        h.update(struct.pack(">I", len(name.encode())) + name.encode())
        h.update(struct.pack(">I", len(kind.encode())) + kind.encode())
        if "BinaryValue" in a:
            value = base64.b64decode(a["BinaryValue"])
            h.update(b"\x02" + struct.pack(">I", len(value)) + value)
        else:
            value = a["StringValue"].encode()
            h.update(b"\x01" + struct.pack(">I", len(value)) + value)
    return h.hexdigest()


class Queue:
    def __init__(self, name: str, url: str, attributes: dict):
        self.name, self.url = name, url
        self.arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        self.attributes = {"VisibilityTimeout": "30", **attributes}
        self.visible: list[str] = []  # message ids, oldest first (a deque by index)
        self.head = 0
        self.messages: dict[str, dict] = {}
        self.hidden: list[tuple[float, str, str]] = []  # (visible again at, id, receipt)
        self.receipts: dict[str, str] = {}  # live receipt handle -> message id

    def restore_expired(self, now: float) -> None:
        while self.hidden and self.hidden[0][0] <= now:
            _, mid, receipt = heapq.heappop(self.hidden)
            if self.receipts.get(receipt) == mid:
                del self.receipts[receipt]
                self.visible.append(mid)

    def pop_visible(self) -> str | None:
        while self.head < len(self.visible):
            mid = self.visible[self.head]
            self.head += 1
            if self.head > 4096:
                del self.visible[: self.head]
                self.head = 0
            if mid in self.messages:
                return mid
        return None

    def depth(self) -> tuple[int, int]:
        hidden = len(self.receipts)
        return len(self.messages) - hidden, hidden


class Sqs:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.queues: dict[str, Queue] = {}

    def queue(self, body: dict) -> Queue:
        url = body.get("QueueUrl", "")
        q = self.queues.get(url.rstrip("/").rsplit("/", 1)[-1])
        if q is None:
            raise SqsError("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
        return q

    @staticmethod
    def entries(body: dict) -> list[dict]:
        entries = body.get("Entries") or []
        if not entries:
            raise SqsError("AWS.SimpleQueueService.EmptyBatchRequest", "There should be at least one entry.")
        if len(entries) > 10:
            raise SqsError("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "At most 10 entries.")
        if len({e.get("Id") for e in entries}) != len(entries):
            raise SqsError("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "Ids must be distinct.")
        return entries

    def CreateQueue(self, body: dict) -> dict:
        name = body["QueueName"]
        if name not in self.queues:
            self.queues[name] = Queue(name, f"{self.base_url}/{ACCOUNT}/{name}", body.get("Attributes") or {})
        return {"QueueUrl": self.queues[name].url}

    def GetQueueUrl(self, body: dict) -> dict:
        q = self.queues.get(body.get("QueueName", ""))
        if q is None:
            raise SqsError("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
        return {"QueueUrl": q.url}

    def GetQueueAttributes(self, body: dict) -> dict:
        q = self.queue(body)
        q.restore_expired(time.monotonic())
        visible, hidden = q.depth()
        every = {**q.attributes, "QueueArn": q.arn, "ApproximateNumberOfMessages": str(visible),
                 "ApproximateNumberOfMessagesNotVisible": str(hidden),
                 "ApproximateNumberOfMessagesDelayed": "0"}
        names = body.get("AttributeNames") or []
        wanted = every if "All" in names else {k: v for k, v in every.items() if k in names}
        return {"Attributes": wanted} if wanted else {}

    def ListDeadLetterSourceQueues(self, body: dict) -> dict:
        dlq = self.queue(body)
        sources = [q.url for q in self.queues.values()
                   if json.loads(q.attributes.get("RedrivePolicy") or "{}").get("deadLetterTargetArn") == dlq.arn]
        return {"queueUrls": sources}

    def send_one(self, q: Queue, entry: dict) -> dict:
        text = entry.get("MessageBody", "")
        if not 1 <= len(text.encode()) <= MAX_BODY:
            raise SqsError("InvalidParameterValue", "The message body must be 1 byte to 256 KiB.")
        mid = str(uuid.uuid4())
        attrs = entry.get("MessageAttributes") or {}
        q.messages[mid] = {"MessageId": mid, "Body": text, "MD5OfBody": hashlib.md5(text.encode()).hexdigest(),
                           "MessageAttributes": attrs, "sent": int(time.time() * 1000), "count": 0, "first": None}
        q.visible.append(mid)
        out = {"MessageId": mid, "MD5OfMessageBody": q.messages[mid]["MD5OfBody"]}
        if attrs:
            out["MD5OfMessageAttributes"] = md5_of_attributes(attrs)
        return out

    def SendMessage(self, body: dict) -> dict:
        return self.send_one(self.queue(body), body)

    def SendMessageBatch(self, body: dict) -> dict:
        q, entries = self.queue(body), self.entries(body)
        if sum(len(e.get("MessageBody", "").encode()) for e in entries) > MAX_BODY * 4:
            raise SqsError("AWS.SimpleQueueService.BatchRequestTooLong", "The batch is too long.")
        ok, failed = [], []
        for e in entries:
            try:
                ok.append({"Id": e["Id"], **self.send_one(q, e)})
            except SqsError as err:
                failed.append({"Id": e["Id"], "SenderFault": True, "Code": err.code, "Message": err.message})
        return {"Successful": ok, "Failed": failed}

    def receive_now(self, q: Queue, body: dict) -> list[dict]:
        now = time.monotonic()
        q.restore_expired(now)
        limit = max(1, min(int(body.get("MaxNumberOfMessages") or 1), 10))
        timeout = float(body.get("VisibilityTimeout") or q.attributes["VisibilityTimeout"])
        out = []
        while len(out) < limit:
            mid = q.pop_visible()
            if mid is None:
                break
            m = q.messages[mid]
            m["count"] += 1
            m["first"] = m["first"] or int(time.time() * 1000)
            receipt = uuid.uuid4().hex + uuid.uuid4().hex
            q.receipts[receipt] = mid
            heapq.heappush(q.hidden, (now + timeout, mid, receipt))
            msg = {"MessageId": mid, "ReceiptHandle": receipt, "MD5OfBody": m["MD5OfBody"], "Body": m["Body"],
                   "Attributes": {"SenderId": ACCOUNT, "SentTimestamp": str(m["sent"]),
                                  "ApproximateReceiveCount": str(m["count"]),
                                  "ApproximateFirstReceiveTimestamp": str(m["first"])}}
            if m["MessageAttributes"]:
                msg["MessageAttributes"] = m["MessageAttributes"]
                msg["MD5OfMessageAttributes"] = md5_of_attributes(m["MessageAttributes"])
            out.append(msg)
        return out

    async def ReceiveMessage(self, body: dict) -> dict:
        q = self.queue(body)
        deadline = time.monotonic() + min(float(body.get("WaitTimeSeconds") or 0), 20)
        while True:
            got = self.receive_now(q, body)
            if got or time.monotonic() >= deadline:
                return {"Messages": got} if got else {}
            await asyncio.sleep(0.05)

    def settle(self, body: dict, act) -> dict:
        q, entries = self.queue(body), self.entries(body)
        ok, failed = [], []
        for e in entries:
            mid = q.receipts.get(e.get("ReceiptHandle", ""))
            if mid is None or mid not in q.messages:
                failed.append({"Id": e["Id"], "SenderFault": True, "Code": "ReceiptHandleIsInvalid",
                               "Message": "The receipt handle is not valid."})
                continue
            act(q, mid, e)
            ok.append({"Id": e["Id"]})
        return {"Successful": ok, "Failed": failed}

    def DeleteMessageBatch(self, body: dict) -> dict:
        def delete(q: Queue, mid: str, e: dict) -> None:
            del q.receipts[e["ReceiptHandle"]]
            del q.messages[mid]
        return self.settle(body, delete)

    def ChangeMessageVisibilityBatch(self, body: dict) -> dict:
        def change(q: Queue, mid: str, e: dict) -> None:
            heapq.heappush(q.hidden, (time.monotonic() + float(e.get("VisibilityTimeout", 0)), mid,
                                      e["ReceiptHandle"]))
        return self.settle(body, change)


class Latency:
    """A log-normal draw with this median and 99th percentile, in seconds."""

    def __init__(self, median_ms: float, p99_ms: float):
        self.mu = math.log(median_ms / 1000)
        self.sigma = math.log(p99_ms / median_ms) / 2.3263 if p99_ms > median_ms else 0.0
        self.on = median_ms > 0

    def draw(self) -> float:
        return random.lognormvariate(self.mu, self.sigma) if self.on else 0.0


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sqs: Sqs, latency: Latency) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            headers = {}
            for line in head.decode("latin-1").split("\r\n")[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
            started = time.monotonic()
            op = headers.get("x-amz-target", "").rpartition(".")[2]
            status, payload = 200, {}
            try:
                handler = getattr(sqs, op, None) if op[:1].isupper() else None
                if handler is None:
                    raise SqsError("UnknownOperationException", f"not modelled: {op!r}")
                result = handler(json.loads(raw or b"{}"))
                payload = await result if asyncio.iscoroutine(result) else result
            except SqsError as e:
                status, payload = e.status, {"__type": f"com.amazonaws.sqs#{e.code}", "message": e.message}
            wait = latency.draw() - (time.monotonic() - started)
            if wait > 0:
                await asyncio.sleep(wait)
            data = json.dumps(payload).encode()
            extra = f"x-amzn-query-error: {payload['__type'].rpartition('#')[2]};Sender\r\n" if status != 200 else ""
            writer.write(f"HTTP/1.1 {status} {'OK' if status == 200 else 'Bad Request'}\r\n"
                         f"Content-Type: application/x-amz-json-1.0\r\nContent-Length: {len(data)}\r\n"
                         f"x-amzn-RequestId: {uuid.uuid4()}\r\n{extra}\r\n".encode() + data)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    latency = Latency(*(float(a) for a in sys.argv[2:4])) if len(sys.argv) > 3 else Latency(0, 0)
    holder: dict = {}
    server = await asyncio.start_server(lambda r, w: serve(r, w, holder["sqs"], latency), "127.0.0.1", port,
                                        limit=2 ** 22)
    bound = server.sockets[0].getsockname()[1]
    holder["sqs"] = Sqs(f"http://127.0.0.1:{bound}")
    print(bound, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
