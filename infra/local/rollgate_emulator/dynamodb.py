"""DynamoDB: one item operation at a time, as the service guarantees.

DynamoDB applies each write to an item atomically, a condition and an update expression
included ("DynamoDB: Working with items", "Conditional writes"; `UpdateItem` reads and
writes the item as one step), and a strongly consistent read sees an item before or after
a write, never half of it. moto's backend reads, computes and stores without a lock, and
the emulator serves requests on many threads: two `UpdateItem`s of one item (alarm-
rollback records a deployment's START and SUCCESS events, which Lambda may run side by
side) could both read the old item, and the later store would silently undo the other
(`if_not_exists` saw nothing, so a final status went back to `InProgress`). Every item
operation of the backend now runs under one lock, which the local AWS can afford.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable

from moto.dynamodb.models import DynamoDBBackend

_lock = threading.RLock()

# The backend's operations that read or write items.
ITEM_OPERATIONS = ("put_item", "update_item", "delete_item", "get_item", "query", "scan",
                   "batch_write_item", "batch_get_item", "transact_write_items", "transact_get_items",
                   "execute_transaction", "batch_execute_statement")


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return method(*args, **kwargs)
    run.__rollgate_serialised__ = True  # type: ignore[attr-defined]
    return run


def patch() -> None:
    for name in ITEM_OPERATIONS:
        method = getattr(DynamoDBBackend, name)
        if not getattr(method, "__rollgate_serialised__", False):
            setattr(DynamoDBBackend, name, _serialised(method))
