"""DynamoDB applies each write to an item atomically ("Working with items": a condition
and an update expression are one step with the write). moto's UpdateItem of an item that
does not exist yet stores a bare item after parsing the expressions, so a write that ran
meanwhile was replaced: alarm-rollback's record of a deployment's SUCCESS, run beside its
START's `if_not_exists`, went back to `InProgress`. The emulator runs one item operation
at a time; this test holds one update inside that window and lets another try to run."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.parsing.validators import UpdateExpressionValidator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rollgate_emulator import dynamodb  # noqa: E402

KEY = {"pk": {"S": "fn#orders#live"}, "sk": {"S": "dep#0001796400000000#d-EXAMPLE01"}}
NAMES = {"#st": "status"}


def client():
    ddb = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    ddb.create_table(TableName="ledger", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}])
    return ddb


def race(monkeypatch) -> dict:
    """START's update of a new item is held while validating its expression; SUCCESS's
    update runs meanwhile if nothing stops it (it gets 0.5 s)."""
    held, finished = threading.Event(), threading.Event()
    original = UpdateExpressionValidator.validate

    def validate(self):
        if threading.current_thread().name == "start" and not held.is_set():
            held.set()
            finished.wait(0.5)
        return original(self)

    monkeypatch.setattr(UpdateExpressionValidator, "validate", validate)
    with mock_aws():
        ddb = client()

        def start():
            ddb.update_item(TableName="ledger", Key=KEY, ExpressionAttributeNames=NAMES,
                            UpdateExpression="SET #st = if_not_exists(#st, :s), started_ms = :t",
                            ExpressionAttributeValues={":s": {"S": "InProgress"}, ":t": {"N": "1"}})

        def success():
            ddb.update_item(TableName="ledger", Key=KEY, ExpressionAttributeNames=NAMES,
                            UpdateExpression="SET #st = :s, ended_ms = :e",
                            ExpressionAttributeValues={":s": {"S": "Succeeded"}, ":e": {"N": "2"}})
            finished.set()

        first = threading.Thread(target=start, name="start")
        first.start()
        assert held.wait(5)
        second = threading.Thread(target=success, name="success")
        second.start()
        first.join()
        second.join()
        return ddb.get_item(TableName="ledger", Key=KEY, ConsistentRead=True)["Item"]


def test_moto_alone_loses_the_update_that_ran_beside_a_new_items_update(monkeypatch):
    """The fault itself, so the next test shows the patch and not a lucky schedule."""
    monkeypatch.setattr(dynamodb, "_lock", _NoLock())
    item = race(monkeypatch)
    assert item["status"]["S"] == "InProgress" and "ended_ms" not in item, item


def test_one_item_operation_at_a_time_keeps_both_updates(monkeypatch):
    item = race(monkeypatch)
    assert item["status"]["S"] == "Succeeded", item
    assert item["ended_ms"]["N"] == "2" and item["started_ms"]["N"] == "1", item


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture(autouse=True)
def serialised():
    dynamodb.patch()
