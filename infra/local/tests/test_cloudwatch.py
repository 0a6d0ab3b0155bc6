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
from rollgate_emulator.cloudwatch import CloudWatchError, extended, percentile, statistic  # noqa: E402

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


# CloudWatch's "statistics definitions" page (awsdocs/amazon-cloudwatch-user-guide,
# doc_source/Statistics-definitions.md) states each extended statistic by example; these
# pin the emulator to them.
LATENCIES = [float(v) for v in range(1, 101)]  # 1..100


def test_percentile_rank_is_a_percentage_lower_bound_exclusive_upper_inclusive():
    # "PR(:300) returns the percentage of data points that have a value of 300 or less."
    assert extended("PR(:300)", [100.0, 300.0, 301.0, 1000.0]) == 50.0
    # "PR(100:2000)": between 100 (exclusive) and 2000 (inclusive).
    assert extended("PR(100:2000)", [100.0, 100.5, 2000.0, 2000.5]) == 50.0
    assert extended("PR(50:)", LATENCIES) == 50.0
    # Percentile rank takes values, not percentages.
    with pytest.raises(CloudWatchError):
        extended("PR(10%:90%)", LATENCIES)


def test_trimmed_count_with_absolute_bounds():
    # "TC(0.005:0.030) returns the number of data points with values between 0.005
    # (exclusive) and 0.030 (inclusive)."
    assert extended("TC(0.005:0.030)", [0.005, 0.006, 0.030, 0.031]) == 2.0
    # "TC(80:500) uses only the values that are between 80 (exclusive) and 500 (inclusive)."
    assert extended("TC(80:500)", [80.0, 81.0, 500.0, 501.0]) == 2.0
    # "TC(:0.5) uses only the values that equal 0.5 or are lower."
    assert extended("TC(:0.5)", [0.1, 0.5, 0.6]) == 2.0
    assert extended("TC(90:)", LATENCIES) == 10.0
    # Bins cut at the same edges add up to the sample count.
    edges = ["TC(:25)", "TC(25:50)", "TC(50:75)", "TC(75:)"]
    assert sum(extended(e, LATENCIES) for e in edges) == 100.0


def test_trimmed_and_winsorized_means_with_percentage_bounds():
    # "tm90 calculates the average after removing the 10% of data points with the
    # highest values"; tm99 is the same as TM(:99%).
    assert extended("tm90", LATENCIES) == sum(range(1, 91)) / 90
    assert extended("tm99", LATENCIES) == extended("TM(:99%)", LATENCIES)
    # "TM(2%:98%) ... after removing the 2% lowest data points and the 2% highest."
    assert extended("TM(2%:98%)", LATENCIES) == sum(range(3, 99)) / 96
    # "TM(150:1000) ... after removing all data points lower than or equal to 150, or
    # higher than 1000."
    assert extended("TM(150:1000)", [150.0, 200.0, 1000.0, 1001.0]) == 600.0
    # IQM is TM(25%:75%); TS is TM x TC; tc90 counts all but the highest 10%.
    assert statistic("IQM", LATENCIES, []) == extended("TM(25%:75%)", LATENCIES)
    assert extended("TS(10:20)", LATENCIES) == extended("TM(10:20)", LATENCIES) * extended("TC(10:20)", LATENCIES)
    assert extended("tc90", LATENCIES) == 90.0
    # "WM(10%:90%) ... treating the highest 10% of data points to be the value of the 90%
    # boundary, and the lowest 10% to be the value of the 10% boundary."
    expected = (10 * 11 + sum(range(11, 91)) + 10 * 90) / 100
    assert extended("WM(10%:90%)", LATENCIES) == expected


def test_extended_statistics_need_raw_non_negative_values_and_a_valid_name():
    assert extended("TC(1:2)", []) is None
    # "these type of statistics are not available for metrics when any of the metric
    # values are negative numbers."
    assert extended("TC(:2)", [-1.0, 1.0]) is None
    for bad in ["TC()", "TC(:)", "TC(5:1)", "TC(1%:5)", "TM(20%:10%)", "TC(a:b)", "tc", "TC(1.12345678901:2)"]:
        with pytest.raises(CloudWatchError):
            extended(bad, LATENCIES)


def test_get_metric_data_answers_trimmed_counts_per_period(emulator, aws):
    base = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=20)
    put(aws, "2", base + timedelta(seconds=5), 100, 0, LATENCIES)
    put(aws, "2", base + timedelta(seconds=65), 4, 0, [10.0, 20.0, 30.0, 40.0])
    status, _, body = call(emulator, "GetMetricData", {
        "StartTime": base, "EndTime": base + timedelta(minutes=2), "ScanBy": "TimestampAscending",
        "MetricDataQueries": [query("slow", "2", "Duration", "TC(25:)"), query("share", "2", "Duration", "PR(:20)"),
                              query("bad", "2", "Duration", "TC(x:)")][:2]})
    assert status == 200, body
    results = {r["Id"]: r["Values"] for r in body["MetricDataResults"]}
    assert results == {"slow": [75.0, 2.0], "share": [20.0, 50.0]}
    status, _, body = call(emulator, "GetMetricData", {
        "StartTime": base, "EndTime": base + timedelta(minutes=2),
        "MetricDataQueries": [query("bad", "2", "Duration", "TC(x:)")]})
    assert status == 400 and "not valid" in str(body)


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
