"""CloudWatch over RPCv2-CBOR: what the Rust SDK sends, answered from moto's backend.

Data goes in with boto3 (query protocol, moto's own parser) and comes back through the
CBOR layer, as the post-traffic hook reads it."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rollgate_emulator import cbor  # noqa: E402
from rollgate_emulator.cloudwatch import percentile  # noqa: E402

PATH = "/service/GraniteServiceVersion20100801/operation/"


def call(emulator: str, operation: str, params: dict, raw: bytes | None = None) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        emulator + PATH + operation, data=raw if raw is not None else cbor.dumps(params), method="POST",
        headers={"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor",
                 "Accept": "application/cbor"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), cbor.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), cbor.loads(err.read())


def test_codec_round_trip():
    when = datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=timezone.utc)
    value = {"a": [1, -2, 3.5, "x", b"\x00\x01", True, False, None, 2**40, -(2**33)], "t": when, "m": {}}
    assert cbor.loads(cbor.dumps(value)) == value
    # Indefinite-length map/array/string and half/single floats, as other encoders send them.
    assert cbor.loads(bytes.fromhex("bf6161 9f0102ff 6162 7f616161 62ff ff")) == {"a": [1, 2], "b": "ab"}
    assert cbor.loads(bytes.fromhex("f93e00")) == 1.5
    assert cbor.loads(bytes.fromhex("fa3fc00000")) == 1.5
    assert cbor.loads(bytes.fromhex("c11a514b67b0")) == datetime(2013, 3, 21, 20, 4, tzinfo=timezone.utc)
    with pytest.raises(cbor.CBORError):
        cbor.loads(b"\x82\x01")


def test_nearest_rank_percentile():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 99) == 99.0
    assert percentile(values, 50) == 50.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0], 0) == 1.0


def put(aws, version: str, when: datetime, invocations: float, errors: float, durations: list[float]) -> None:
    dims = [{"Name": "FunctionName", "Value": "orders"}, {"Name": "Resource", "Value": "orders:live"},
            {"Name": "ExecutedVersion", "Value": version}]
    aws.cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": when, "Value": invocations},
        {"MetricName": "Errors", "Dimensions": dims, "Timestamp": when, "Value": errors},
        {"MetricName": "Duration", "Dimensions": dims, "Timestamp": when, "Values": durations},
    ])


def query(qid: str, version: str, metric: str, stat: str, period: int = 60, namespace="AWS/Lambda") -> dict:
    return {"Id": qid, "ReturnData": True, "MetricStat": {"Period": period, "Stat": stat, "Metric": {
        "Namespace": namespace, "MetricName": metric, "Dimensions": [
            {"Name": "FunctionName", "Value": "orders"}, {"Name": "Resource", "Value": "orders:live"},
            {"Name": "ExecutedVersion", "Value": version}]}}}


def test_get_metric_data_by_version_with_percentiles(emulator, aws):
    base = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=10)
    put(aws, "1", base + timedelta(seconds=5), 100, 1, [10.0] * 99 + [500.0])
    put(aws, "2", base + timedelta(seconds=5), 50, 5, [float(v) for v in range(1, 101)])
    put(aws, "2", base + timedelta(seconds=65), 40, 0, [20.0])
    status, headers, body = call(emulator, "GetMetricData", {
        "StartTime": base, "EndTime": base + timedelta(minutes=5), "ScanBy": "TimestampAscending",
        "MetricDataQueries": [query("old_err", "1", "Errors", "Sum"), query("new_inv", "2", "Invocations", "Sum"),
                              query("new_p99", "2", "Duration", "p99"), query("old_p50", "1", "Duration", "p50"),
                              query("none", "3", "Errors", "Sum"),
                              query("other_ns", "2", "Errors", "Sum", namespace="Custom")]})
    assert status == 200, body
    assert headers.get("smithy-protocol") == "rpc-v2-cbor"
    results = {r["Id"]: r for r in body["MetricDataResults"]}
    assert results["old_err"]["Values"] == [1.0]
    assert results["new_inv"]["Values"] == [50.0, 40.0]
    assert results["new_inv"]["Timestamps"] == [base, base + timedelta(minutes=1)]
    assert results["new_p99"]["Values"] == [99.0, 20.0]
    assert results["old_p50"]["Values"] == [10.0]
    # No data: an empty, complete result. The namespace is part of the match.
    assert results["none"]["Values"] == [] and results["none"]["StatusCode"] == "Complete"
    assert results["other_ns"]["Values"] == []
    assert "NextToken" not in body


def test_get_metric_data_pages_with_next_token(emulator, aws):
    base = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=30)
    for i in range(5):
        put(aws, "7", base + timedelta(seconds=i), 1, 0, [1.0])
    params = {"StartTime": base, "EndTime": base + timedelta(seconds=10), "MaxDatapoints": 2,
              "MetricDataQueries": [query("a", "7", "Invocations", "Sum", period=1)]}
    seen, token, pages = [], None, 0
    while True:
        status, _, body = call(emulator, "GetMetricData", {**params, **({"NextToken": token} if token else {})})
        assert status == 200
        pages += 1
        seen += body["MetricDataResults"][0]["Values"]
        token = body.get("NextToken")
        if not token:
            break
        assert body["MetricDataResults"][0]["StatusCode"] == "PartialData"
    assert (pages, len(seen)) == (3, 5)
    # Default ScanBy is TimestampDescending, as in CloudWatch.
    _, _, body = call(emulator, "GetMetricData", {**params, "MaxDatapoints": 100})
    stamps = body["MetricDataResults"][0]["Timestamps"]
    assert stamps == sorted(stamps, reverse=True)


def test_get_metric_data_validation_errors(emulator):
    now = datetime.now(timezone.utc)
    status, headers, body = call(emulator, "GetMetricData", {
        "StartTime": now, "EndTime": now - timedelta(minutes=1),
        "MetricDataQueries": [query("a", "1", "Errors", "Sum")]})
    assert status == 400
    assert body["__type"].endswith("#ValidationError")
    assert headers.get("x-amzn-query-error", "").startswith("ValidationError")
    too_many = [query(f"q{i}", "1", "Errors", "Sum") for i in range(501)]
    status, _, body = call(emulator, "GetMetricData", {
        "StartTime": now - timedelta(minutes=5), "EndTime": now, "MetricDataQueries": too_many})
    assert status == 400 and "500" in body["message"]
    status, _, body = call(emulator, "GetMetricData", {
        "StartTime": now - timedelta(minutes=5), "EndTime": now,
        "MetricDataQueries": [query("a", "1", "Errors", "Sum"), query("a", "2", "Errors", "Sum")]})
    assert status == 400 and "unique" in body["message"]
    status, _, body = call(emulator, "GetMetricData", {}, raw=b"\xff\x00")
    assert status == 400 and body["__type"].endswith("#SerializationException")
    status, _, body = call(emulator, "ListDashboards", {})
    assert status == 404 and body["__type"].endswith("#UnknownOperationException")


def test_describe_alarms_and_put_metric_data_over_cbor(emulator, aws):
    aws.cloudwatch.put_metric_alarm(
        AlarmName="orders-5xx", MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    aws.cloudwatch.set_alarm_state(AlarmName="orders-5xx", StateValue="ALARM", StateReason="test")
    status, _, body = call(emulator, "DescribeAlarms", {"AlarmNames": ["orders-5xx", "missing"]})
    assert status == 200
    assert [(a["AlarmName"], a["StateValue"]) for a in body["MetricAlarms"]] == [("orders-5xx", "ALARM")]
    assert isinstance(body["MetricAlarms"][0]["StateUpdatedTimestamp"], datetime)

    when = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=40)
    status, _, _ = call(emulator, "PutMetricData", {"Namespace": "Custom", "MetricData": [
        {"MetricName": "Failed", "Timestamp": when, "Value": 4.0, "Dimensions": [{"Name": "S", "Value": "x"}]}]})
    assert status == 200
    # Read back with boto3 (moto's query protocol): one store behind both protocols.
    got = aws.cloudwatch.get_metric_statistics(
        Namespace="Custom", MetricName="Failed", Dimensions=[{"Name": "S", "Value": "x"}],
        StartTime=when - timedelta(minutes=1), EndTime=when + timedelta(minutes=1), Period=60, Statistics=["Sum"])
    assert [p["Sum"] for p in got["Datapoints"]] == [4.0]


def test_list_tags_for_resource_over_cbor(emulator, aws):
    """alarm-rollback reads a composite or custom-metric alarm's rollgate:* tags."""
    aws.cloudwatch.put_metric_alarm(
        AlarmName="checkout-health", MetricName="Failed", Namespace="Custom", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
        Tags=[{"Key": "rollgate:group", "Value": "checkout"}])
    arn = aws.cloudwatch.describe_alarms(AlarmNames=["checkout-health"])["MetricAlarms"][0]["AlarmArn"]
    status, _, body = call(emulator, "ListTagsForResource", {"ResourceARN": arn})
    assert status == 200 and body == {"Tags": [{"Key": "rollgate:group", "Value": "checkout"}]}
    # Like AWS, unlike moto: an alarm that does not exist is not found (moto answers []).
    status, headers, body = call(emulator, "ListTagsForResource", {"ResourceARN": arn + "-gone"})
    assert status == 404 and body["__type"].endswith("#ResourceNotFoundException")
    assert headers["x-amzn-query-error"].startswith("ResourceNotFoundException")
    # A required member missing: refused by the model's constraints (validation.py).
    status, _, body = call(emulator, "ListTagsForResource", {})
    assert status == 400 and body["__type"] == "ValidationError", body
    assert "'ResourceARN' failed to satisfy constraint: Member must not be null" in body["message"]
