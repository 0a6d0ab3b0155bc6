"""SQS: message move tasks (DLQ redrive) and FIFO semantics moto 5.2.5 gets wrong.

* ``StartMessageMoveTask`` / ``ListMessageMoveTasks`` / ``CancelMessageMoveTask``
  (missing in moto). A task moves the messages its source DLQ held when it started,
  in a background thread, at ``MaxNumberOfMessagesPerSecond`` (default: as fast as
  the emulator goes), to ``DestinationArn`` or, without one, to the queue each message
  was dead-lettered from.
* ``DeadLetterQueueSourceArn``: a message moto dead-letters during a receive is marked
  with the queue it came from, and ReceiveMessage returns the mark as that system
  attribute (for ``All`` or by name), as SQS does; moto had neither.
* FIFO group locking: moto locked a group while *any* received message of it was
  remembered as pending, including ones whose visibility timeout had expired; AWS
  locks a group only while one of its messages is in flight (invisible).
* FIFO deduplication: moto compared a new MessageDeduplicationId only with messages
  still stored, so a duplicate sent after the first copy was consumed got in. AWS
  remembers every id for 5 minutes, per queue or, with
  ``DeduplicationScope=messageGroup``, per message group.
* FIFO sequence numbers: moto drew random ones; AWS's grow with every message.
* Concurrent receives on one queue are serialised: moto could hand two callers the
  same message, or messages of the same FIFO group, at once.
* A long poll on a FIFO queue whose visible messages were all in locked groups
  spun the CPU until its wait ended; it now sleeps between looks. Long polls of a
  standard queue wait side by side, not one after another.
* ``SendMessageBatch`` honours faults registered with ``entries: true``
  (see faults.py): matching entries fail on their own (partial batch failure).
* Concurrent writes to one queue are serialised: moto's DeleteMessage rebuilt the
  message list from a snapshot and assigned it back, so a send or another delete at
  the same moment was undone (a message lost, or a deleted one back in the queue).
* Speed: moto read the clock through datetime arithmetic for every message on every
  look at a queue, and computed every queue attribute (three passes over all
  messages) for each message it received, to read the retention period: a queue of
  1,000 messages served ~10 messages/s. Visibility now reads ``time.time()``, the
  retention check reads the one attribute it needs, and a send (which reads only
  configuration attributes) skips counting the queue's messages. A delete finds its
  message through an index of receipt handles instead of asking every message.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import uuid
import weakref
from typing import Any

from moto.core.responses import ActionResult
from moto.sqs import models, responses
from moto.sqs.exceptions import QueueDoesNotExist, SQSException
from moto.sqs.models import DEDUPLICATION_TIME_IN_SECONDS, Queue, SQSBackend, sqs_backends
from moto.sqs.responses import SQSResponse

from . import faults, ids
from .state import log, records

MAX_MOVE_RATE = 500  # AWS's upper bound for MaxNumberOfMessagesPerSecond
_sequence = itertools.count(10_000_000_000_000_000_000)
_tasks_lock = threading.RLock()
_tasks: list["MoveTask"] = []


class ResourceNotFound(SQSException):
    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFoundException", message)


class UnsupportedOperation(SQSException):
    def __init__(self, message: str) -> None:
        super().__init__("AWS.SimpleQueueService.UnsupportedOperation", message)


class InvalidParameter(SQSException):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameterValue", message)


# --- FIFO semantics -------------------------------------------------------------------

def _pending_message_groups(self: Queue) -> set[str]:
    return {m.group_id for m in self._pending_messages
            if m.group_id is not None and not m.visible}


_original_add_message = Queue.add_message
_original_delete_message = Queue.delete_message
_original_receive_response = SQSResponse.receive_message
_locks_guard = threading.Lock()
_write_locks: dict[int, threading.Lock] = {}
_receive_locks: dict[int, threading.Lock] = {}


def _lock(registry: dict[int, threading.Lock], queue: Queue) -> threading.Lock:
    with _locks_guard:
        return registry.setdefault(id(queue), threading.Lock())


def _write_lock(queue: Queue) -> threading.Lock:
    return _lock(_write_locks, queue)


# Every receipt handle a message was given, to the message: moto found the message of a
# handle by asking every message of the queue for its list of handles (a queue of 10,000
# messages spent ~6 ms of CPU per deleted message). Weak: deleted messages drop out.
_by_handle: "weakref.WeakValueDictionary[str, models.Message]" = weakref.WeakValueDictionary()
_original_mark_received = models.Message.mark_received


def _mark_received(self: models.Message, *args: Any, **kwargs: Any) -> None:
    _original_mark_received(self, *args, **kwargs)
    if self.receipt_handle:
        _by_handle[self.receipt_handle] = self


def _delete_message(self: Queue, receipt_handle: str) -> None:
    """moto's DeleteMessage (a handle already deleted is accepted again; one no message of
    the queue ever had is ``ReceiptHandleIsInvalid``; the message goes whatever its
    visibility), finding the message through the handle index."""
    with _write_lock(self):
        if receipt_handle in self.deleted_messages:
            return
        message = _by_handle.get(receipt_handle)
        remaining = list(self._messages)
        try:
            remaining.remove(message)  # by identity (Message defines no __eq__)
        except ValueError:  # not a message of this queue (or no such handle): moto's answer
            _original_delete_message(self, receipt_handle)
            return
        self._messages = remaining
        self.pending_messages.discard(message)
        self.deleted_messages.update(message.all_receipt_handles)


def _add_message(self: Queue, message: Any) -> None:
    source = getattr(_receiving, "queue", None)
    if source is not None and source.dead_letter_queue is self:
        # Dead-lettered by this receive: SQS marks the message with its source queue.
        message.dead_letter_source_arn = source.queue_arn
    with _write_lock(self):
        _add_message_unlocked(self, message)


def _add_message_unlocked(self: Queue, message: Any) -> None:
    if self.fifo_queue:
        dedup_id = message.deduplication_id
        if dedup_id:
            scope = message.group_id if self.attributes.get("DeduplicationScope") == "messageGroup" else ""
            seen: dict[tuple[str, str], float] = self.__dict__.setdefault("_rollgate_dedup", {})
            now = time.time()
            for key in [k for k, t in seen.items() if now - t >= DEDUPLICATION_TIME_IN_SECONDS]:
                del seen[key]
            if (scope, dedup_id) in seen:
                return  # accepted by the API, not delivered again
            seen[(scope, dedup_id)] = now
        message.sequence_number = str(next(_sequence))
        # moto's own check compares with stored messages only and ignores the scope:
        # hide the id from it (an object equal to nothing) and restore it afterwards.
        message.deduplication_id = object()
        try:
            _original_add_message(self, message)
        finally:
            message.deduplication_id = dedup_id
        return
    _original_add_message(self, message)


def _wait_for_messages(self: Queue, timeout: int) -> None:
    # A long poll waits without the queue's receive lock (standard queues): SQS serves
    # concurrent long polls side by side, while holding it made 16 pollers of an empty
    # queue wait 16 x WaitTimeSeconds in turn. A FIFO receive keeps it: moto computes the
    # locked groups once per receive, before it waits.
    held = getattr(_receiving, "queue", None) is self and not self.fifo_queue
    if held:
        _receive_lock(self).release()
    try:
        with self._messages_lock:
            if self.messages:
                # Visible messages exist but none could be delivered (locked FIFO groups):
                # look again shortly instead of returning at once.
                self._messages_lock.wait(timeout=min(timeout, 0.05))
            else:
                self._messages_lock.wait_for(lambda: self.messages, timeout=timeout)
    finally:
        if held:
            _receive_lock(self).acquire()


_original_receive_message = SQSBackend.receive_message


def _receive_lock(queue: Queue) -> threading.Lock:
    return _lock(_receive_locks, queue)


# The queue a thread is receiving from: moto dead-letters messages inside a receive
# (add_message on the DLQ), and SQS records on each the queue it came from.
_receiving = threading.local()


def _receive_message(self: SQSBackend, queue_name: str, *args: Any, **kwargs: Any) -> Any:
    # moto's receive picks visible messages and then marks them in flight with no lock
    # between: two concurrent receives could get the same message, or messages of one
    # FIFO group.
    queue = self.get_queue(queue_name)
    with _receive_lock(queue):
        _receiving.queue = queue
        try:
            got = _original_receive_message(self, queue_name, *args, **kwargs)
        finally:
            _receiving.queue = None
    _receiving.sources = {m.id: getattr(m, "dead_letter_source_arn", None) for m in got}
    return got


def _receive_response(self: SQSResponse) -> ActionResult:
    """moto's ReceiveMessage answer, with the system attribute it lacks:
    ``DeadLetterQueueSourceArn``, the queue SQS dead-lettered the message from, for
    ``All`` or when asked by name (botocore's MessageSystemAttributeName enum)."""
    _receiving.sources = {}
    result = _original_receive_response(self)
    asked = set(self._get_param("AttributeNames", []) + self._get_param("MessageSystemAttributeNames", []))
    if not asked & {"All", "DeadLetterQueueSourceArn"}:
        return result
    sources = getattr(_receiving, "sources", {}) or {}
    for msg in (result.result or {}).get("Messages", []):
        source = sources.get(msg["MessageId"])
        if source:
            msg.setdefault("Attributes", {})["DeadLetterQueueSourceArn"] = source
    return result


# --- speed -----------------------------------------------------------------------------

def _visible(self: models.Message) -> bool:
    return time.time() * 1000.0 > self.visible_at


def _delayed(self: models.Message) -> bool:
    return time.time() * 1000.0 < self.delayed_until


class _Available:
    """``Queue.messages`` (its visible, undelayed messages) as moto uses it — iterated by
    a receive that stops after a batch, tested for emptiness by a long poll, counted —
    computed as it is read: moto built the whole list on every receive, which for a
    queue of 10,000 messages cost milliseconds a call."""

    __slots__ = ("queue",)

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def __iter__(self) -> Any:
        now = time.time() * 1000.0
        for m in list(self.queue._messages):
            if now > m.visible_at and not now < m.delayed_until:
                yield m

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:
        return next(iter(self), None) is not None


_config_only = threading.local()
_original_send_message = SQSBackend.send_message


_original_attributes = Queue.attributes


def _attributes(self: Queue) -> dict[str, Any]:
    """moto's attributes; during a send, which reads only ContentBasedDeduplication, just
    that (moto built all of them, through a CamelCase-to-snake_case conversion each, for
    every message sent)."""
    if getattr(_config_only, "on", False):
        if not self.fifo_queue:
            return {}  # moto lists its FIFO attributes for FIFO queues only
        out = {}
        for name, attr in _FIFO_ATTRIBUTES:
            value = getattr(self, attr, None)
            out[name] = str(value).lower() if isinstance(value, bool) else value
        return out
    return _original_attributes.fget(self)


# What a send reads (ContentBasedDeduplication, DeduplicationScope...), as moto names them.
_FIFO_ATTRIBUTES = [(a, models.camelcase_to_underscores(a)) for a in Queue.FIFO_ATTRIBUTES]


def _counted(original: property) -> property:
    def get(self: Queue) -> int:
        return 0 if getattr(_config_only, "on", False) else original.fget(self)

    return property(get)


def _send_message(self: SQSBackend, *args: Any, **kwargs: Any) -> Any:
    # moto builds every queue attribute (three passes over all messages) to read
    # ContentBasedDeduplication once per message sent.
    _config_only.on = True
    try:
        return _original_send_message(self, *args, **kwargs)
    finally:
        _config_only.on = False


def _retained(self: SQSBackend, queue_name: str, message: Any) -> bool:
    retention = int(self.get_queue(queue_name).message_retention_period)
    return retention + message.sent_timestamp / 1000 > time.time()


# --- partial batch failures -----------------------------------------------------------

_original_send_message_batch = SQSBackend.send_message_batch


def _send_message_batch(self: SQSBackend, queue_name: str, entries: dict[str, dict[str, Any]]) -> Any:
    failed_injected: list[dict[str, Any]] = []
    kept: dict[str, dict[str, Any]] = {}
    for key, entry in entries.items():
        fault = faults.take("SendMessageBatch", f"{queue_name} {entry.get('MessageBody', '')}", entries=True)
        if fault:
            failed_injected.append({"Id": entry["Id"], "SenderFault": fault["status"] < 500,
                                    "Code": fault["code"], "Message": fault["message"]})
        else:
            kept[key] = entry
    if not kept:
        return [], failed_injected
    messages, failed = _original_send_message_batch(self, queue_name, kept)
    return messages, list(failed) + failed_injected


# --- message move tasks ---------------------------------------------------------------

def _queue_by_arn(backend: SQSBackend, arn: str, field: str) -> Queue:
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs":
        raise InvalidParameter(f"Value {arn} for parameter {field} is invalid. Reason: not an SQS queue ARN.")
    try:
        return backend.get_queue(parts[5])
    except QueueDoesNotExist:
        raise ResourceNotFound(f"The resource {arn} does not exist.") from None


class MoveTask:
    def __init__(self, backend: SQSBackend, source: Queue, destination: Queue | None,
                 rate: int | None) -> None:
        # SQS's shape (its API reference's examples): base64 of {"taskId", "sourceArn"};
        # IAM authorises CancelMessageMoveTask on the source queue named inside.
        self.handle = base64.b64encode(json.dumps(
            {"taskId": str(uuid.uuid4()), "sourceArn": source.queue_arn}, separators=(",", ":")).encode()).decode()
        self.backend = backend
        self.source = source
        self.destination = destination
        self.rate = rate
        self.status = "RUNNING"
        self.moved = 0
        self.failure: str | None = None
        self.started = int(time.time() * 1000)
        # The task moves what the DLQ holds now; later arrivals wait for the next task.
        self.pending_ids = {m.id for m in source._messages}
        self.to_move = len(self.pending_ids)
        self.thread = threading.Thread(target=self.run, daemon=True, name=f"move-{self.handle[:8]}")

    def describe(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "Status": self.status,
            "SourceArn": self.source.queue_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started,
        }
        if self.status == "RUNNING":
            item["TaskHandle"] = self.handle
        if self.destination is not None:
            item["DestinationArn"] = self.destination.queue_arn
        if self.rate is not None:
            item["MaxNumberOfMessagesPerSecond"] = self.rate
        if self.failure:
            item["FailureReason"] = self.failure
        return item

    def _target_for(self, message: Any) -> Queue:
        """The destination given, else the queue the message was dead-lettered from (as
        SQS's own move task does), else the DLQ's one source queue."""
        if self.destination is not None:
            return self.destination
        recorded = getattr(message, "dead_letter_source_arn", None)
        if recorded:
            return _queue_by_arn(self.backend, recorded, "DeadLetterQueueSourceArn")
        sources = self.backend.list_dead_letter_source_queues(self.source.name)
        if len(sources) != 1:
            raise RuntimeError(f"message {message.id} has no recorded source queue and the DLQ has "
                               f"{len(sources)} source queues: give DestinationArn")
        return sources[0]

    def _move_one(self) -> bool:
        """Move the next movable message; False when none is movable right now."""
        locked = self.source.pending_message_groups
        for message in self.source._messages:
            if message.id not in self.pending_ids or not message.visible:
                continue
            if self.source.fifo_queue and message.group_id in locked:
                continue
            target = self._target_for(message)
            # A fresh deduplication id: the original one may still be inside the
            # destination's 5-minute window, which would swallow the moved copy.
            self.backend.send_message(
                target.name, message.body, message_attributes=message.message_attributes,
                deduplication_id=f"move-{self.handle}-{message.id}" if target.fifo_queue else None,
                group_id=(message.group_id or "default") if target.fifo_queue else None,
                system_attributes=message.system_attributes,
            )
            self.source._messages = [m for m in self.source._messages if m is not message]
            self.source._pending_messages.discard(message)
            self.pending_ids.discard(message.id)
            self.moved += 1
            return True
        return False

    def run(self) -> None:
        interval = 1.0 / self.rate if self.rate else 0.0
        try:
            while self.status == "RUNNING":
                self.pending_ids &= {m.id for m in self.source._messages}
                if not self.pending_ids:
                    self.status = "COMPLETED"
                    break
                if not self._move_one():
                    time.sleep(0.05)
                elif interval:
                    time.sleep(interval)
            if self.status == "CANCELLING":
                self.status = "CANCELLED"
        except Exception as err:  # noqa: BLE001 - recorded as the task's failure
            self.status = "FAILED"
            self.failure = str(err)
        log.info("message move task %s %s: moved %d of %d", self.handle, self.status, self.moved, self.to_move)


def _start_message_move_task(self: SQSResponse) -> ActionResult:
    backend = self.sqs_backend
    source_arn = self._get_param("SourceArn")
    if not source_arn:
        raise InvalidParameter("Value for parameter SourceArn is invalid. Reason: required.")
    source = _queue_by_arn(backend, source_arn, "SourceArn")
    if not backend.list_dead_letter_source_queues(source.name):
        raise UnsupportedOperation(f"Source queue must be configured as a Dead Letter Queue: {source_arn}")
    dest_arn = self._get_param("DestinationArn")
    destination = _queue_by_arn(backend, dest_arn, "DestinationArn") if dest_arn else None
    if destination is not None and destination.fifo_queue != source.fifo_queue:
        raise InvalidParameter("Value for parameter DestinationArn is invalid. Reason: the destination "
                               "queue must be of the same type (standard or FIFO) as the source.")
    rate = self._get_param("MaxNumberOfMessagesPerSecond")
    if rate is not None:
        rate = int(rate)
        if not 1 <= rate <= MAX_MOVE_RATE:
            raise InvalidParameter(f"Value {rate} for parameter MaxNumberOfMessagesPerSecond is invalid. "
                                   f"Reason: must be between 1 and {MAX_MOVE_RATE}.")
    with _tasks_lock:
        if any(t.status in ("RUNNING", "CANCELLING") and t.source is source for t in _tasks):
            raise UnsupportedOperation("There is already a task running. Only one active task is allowed "
                                       "for a source queue arn at a given time.")
        task = MoveTask(backend, source, destination, rate)
        _tasks.append(task)
    task.thread.start()
    return ActionResult({"TaskHandle": task.handle})


def _list_message_move_tasks(self: SQSResponse) -> ActionResult:
    source_arn = self._get_param("SourceArn")
    if not source_arn:
        raise InvalidParameter("Value for parameter SourceArn is invalid. Reason: required.")
    source = _queue_by_arn(self.sqs_backend, source_arn, "SourceArn")
    max_results = int(self._get_param("MaxResults") or 1)
    if not 1 <= max_results <= 10:
        raise InvalidParameter(f"Value {max_results} for parameter MaxResults is invalid. "
                               "Reason: must be between 1 and 10.")
    with _tasks_lock:
        mine = [t for t in _tasks if t.source is source]
    newest = sorted(mine, key=lambda t: t.started, reverse=True)[:max_results]
    return ActionResult({"Results": [t.describe() for t in newest]})


def _cancel_message_move_task(self: SQSResponse) -> ActionResult:
    handle = self._get_param("TaskHandle")
    with _tasks_lock:
        task = next((t for t in _tasks if t.handle == handle), None)
        if task is None:
            raise ResourceNotFound(f"Task does not exist: {handle}")
        if task.status != "RUNNING":
            raise UnsupportedOperation(f"Task {handle} is {task.status}; only a RUNNING task can be cancelled.")
        task.status = "CANCELLING"
    task.thread.join(timeout=5)
    return ActionResult({"ApproximateNumberOfMessagesMoved": task.moved})


def _reset_tasks() -> None:
    with _tasks_lock:
        for task in _tasks:
            if task.status == "RUNNING":
                task.status = "CANCELLING"
        _tasks.clear()


def patch() -> None:
    Queue.pending_message_groups = property(_pending_message_groups)
    Queue.add_message = _add_message
    Queue.delete_message = _delete_message
    models.Message.mark_received = _mark_received
    Queue.wait_for_messages = _wait_for_messages
    models.Message.visible = property(_visible)
    Queue.messages = property(_Available)
    Queue.attributes = property(_attributes)
    models.Message.delayed = property(_delayed)
    SQSBackend.is_message_valid_based_on_retention_period = _retained
    SQSBackend.send_message = _send_message
    for name in ("approximate_number_of_messages", "approximate_number_of_messages_delayed",
                 "approximate_number_of_messages_not_visible"):
        setattr(Queue, name, _counted(getattr(Queue, name)))
    SQSBackend.send_message_batch = _send_message_batch
    SQSBackend.receive_message = _receive_message
    SQSResponse.receive_message = _receive_response
    SQSResponse.start_message_move_task = _start_message_move_task
    SQSResponse.list_message_move_tasks = _list_message_move_tasks
    SQSResponse.cancel_message_move_task = _cancel_message_move_task
    records.on_reset(_reset_tasks)
    # Receipt handles as long and opaque as SQS's (ids.py), instead of moto's 185 letters.
    models.generate_receipt_handle = ids.receipt_handle


__all__ = ["patch", "models", "responses", "sqs_backends"]
