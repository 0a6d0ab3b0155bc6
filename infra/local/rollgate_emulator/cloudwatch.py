"""CloudWatch over Smithy RPCv2-CBOR, which moto 5.2.5 does not speak.

Newer AWS SDKs (the Rust one included) call CloudWatch with
`POST /service/GraniteServiceVersion20100801/operation/<Operation>`, header
`smithy-protocol: rpc-v2-cbor` and a CBOR body. This middleware answers those
requests from moto's CloudWatch backend, so data written with boto3 (query protocol,
served by moto itself) is read back by the Rust client, and the other way round.

Operations: GetMetricData, DescribeAlarms, PutMetricData, PutMetricAlarm,
PutCompositeAlarm (composite.py), SetAlarmState, ListTagsForResource. Anything else answers an `UnknownOperationException`.

GetMetricData is computed here rather than by moto, whose version has no percentile
statistics, ignores the namespace when dimensions are given and never paginates:
- `Stat`: Sum, Average, Minimum, Maximum, SampleCount and `pNN`/`pNN.N` percentiles
  (nearest rank over the raw values, as CloudWatch computes them on raw data), and the
  extended statistics over raw values as CloudWatch's "statistics definitions" page
  states them: percentile rank `PR(a:b)` (a percentage, 0-100, of values `a < v <= b`),
  trimmed count `TC`, trimmed sum `TS`, trimmed mean `TM`, winsorized mean `WM` and `IQM`,
  with absolute bounds (`a` exclusive, `b` inclusive, either left out) or percentage
  bounds (`TM(10%:90%)`, `tm90` = `TM(:90%)`); see `extended()`;
- a metric matches when namespace, name and the full dimension set are equal;
- periods start at StartTime; a period without data is left out (as CloudWatch does);
- `ScanBy` (default TimestampDescending), `MaxDatapoints` paging with `NextToken`,
  at most 500 queries and unique query ids (`ValidationError` otherwise).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from moto.cloudwatch.models import MetricAggregatedDatum, MetricDatum, cloudwatch_backends

from . import cbor, state
from .state import log

PREFIX = "/service/GraniteServiceVersion20100801/operation/"
MAX_QUERIES = 500
DEFAULT_MAX_DATAPOINTS = 100_800


class CloudWatchError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def backend():
    return cloudwatch_backends[state.ACCOUNT_ID][state.REGION]


def _epoch(value: Any, field: str) -> float:
    if isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return when.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    raise CloudWatchError("ValidationError", f"The parameter {field} is required.")


def _stored_epoch(value: datetime) -> float:
    # moto keeps naive UTC datetimes (or aware ones when the caller sent an offset).
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of raw values."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


_BOUND = r"(\d+(?:\.\d{1,10})?)"
_RANGE = re.compile(rf"^(PR|TC|TS|TM|WM)\((?:{_BOUND}(%)?)?:(?:{_BOUND}(%)?)?\)$")
_SHORT = re.compile(rf"^(tc|ts|tm|wm){_BOUND}$")


def _invalid(stat: str) -> CloudWatchError:
    return CloudWatchError("ValidationError", f"The statistic {stat} is not valid.")


def _raw(values: list[float], aggregated: list[MetricAggregatedDatum]) -> list[float] | None:
    """The raw values behind a period, or None when a statistic set hides them. CloudWatch
    computes percentile-type statistics from a statistic set only when it stands for one
    repeated value (SampleCount 1 with Min = Max = Sum, or Min = Max with Sum = Min x
    SampleCount)."""
    out = list(values)
    for a in aggregated:
        count = int(a.sample_count)
        if a.min != a.max or not math.isclose(a.sum, a.min * a.sample_count) or count != a.sample_count:
            return None
        out.extend([float(a.min)] * count)
    return out


def extended(stat: str, values: list[float]) -> float | None:
    """An extended statistic over raw `values`, or None when there is nothing to report
    (no value in range for a mean, or a negative value: CloudWatch offers these
    statistics only for metrics without negative values)."""
    short = _SHORT.match(stat)
    if short:
        kind, low, low_pct, high, high_pct = short.group(1).upper(), None, None, short.group(2), "%"
    else:
        match = _RANGE.match(stat)
        if not match:
            raise _invalid(stat)
        kind, low, low_pct, high, high_pct = match.groups()
        if low is None and high is None:
            raise _invalid(stat)
        if (low is not None and high is not None and bool(low_pct) != bool(high_pct)) or (
                kind == "PR" and (low_pct or high_pct)):
            raise _invalid(stat)
    if not values or min(values) < 0:
        return None
    ordered = sorted(values)
    n = len(ordered)
    percent = bool(low_pct or high_pct)
    if percent:
        lo = float(low) if low is not None else 0.0
        hi = float(high) if high is not None else 100.0
        if not 0 <= lo <= hi <= 100:
            raise _invalid(stat)
        # Ranks r (1-based) with lo% of n < r <= hi% of n.
        chosen = [v for r, v in enumerate(ordered, start=1) if lo / 100 * n < r <= hi / 100 * n]
        edge_low = chosen[0] if chosen else None
        edge_high = chosen[-1] if chosen else None
    else:
        lo = float(low) if low is not None else -math.inf
        hi = float(high) if high is not None else math.inf
        if lo > hi:
            raise _invalid(stat)
        chosen = [v for v in ordered if lo < v <= hi]
        edge_low, edge_high = (lo if low is not None else None), (hi if high is not None else None)
    if kind == "PR":
        return 100.0 * len(chosen) / n
    if kind == "TC":
        return float(len(chosen))
    if kind == "TS":
        return float(sum(chosen))
    if kind == "TM":
        return sum(chosen) / len(chosen) if chosen else None
    # WM: values outside the bounds count as the bound's edge value.
    low_edge = edge_low if edge_low is not None else ordered[0]
    high_edge = edge_high if edge_high is not None else ordered[-1]
    if percent and not chosen:
        return None
    clipped = [min(max(v, low_edge), high_edge) for v in ordered]
    return sum(clipped) / n


def statistic(stat: str, values: list[float], aggregated: list[MetricAggregatedDatum]) -> float | None:
    count = len(values) + sum(a.sample_count for a in aggregated)
    if count == 0:
        return None
    total = sum(values) + sum(a.sum for a in aggregated)
    if stat == "Sum":
        return total
    if stat == "SampleCount":
        return float(count)
    if stat == "Average":
        return total / count
    if stat == "Minimum":
        return min([*values, *(a.min for a in aggregated)])
    if stat == "Maximum":
        return max([*values, *(a.max for a in aggregated)])
    if stat == "IQM":
        stat = "TM(25%:75%)"
    if _RANGE.match(stat) or _SHORT.match(stat) or stat[:3] in ("PR(", "TC(", "TS(", "TM(", "WM("):
        raw = _raw(values, aggregated)
        return None if raw is None else extended(stat, raw)
    if stat.startswith("p"):
        try:
            p = float(stat[1:])
        except ValueError:
            p = -1
        if not 0 <= p <= 100:
            raise CloudWatchError("ValidationError", f"The statistic {stat} is not valid.")
        if not values:
            return None  # percentiles need raw values
        return percentile(values, p)
    raise CloudWatchError("ValidationError", f"The statistic {stat} is not valid.")


def _dims(items: Iterable[dict[str, Any]] | None) -> frozenset[tuple[str, str]]:
    return frozenset((d.get("Name"), d.get("Value")) for d in items or [])


def get_metric_data(params: dict[str, Any]) -> dict[str, Any]:
    queries = params.get("MetricDataQueries") or []
    if not queries:
        raise CloudWatchError("ValidationError", "The parameter MetricDataQueries is required.")
    if len(queries) > MAX_QUERIES:
        raise CloudWatchError("ValidationError",
                              f"The collection MetricDataQueries must not have a size greater than {MAX_QUERIES}.")
    ids = [q.get("Id") for q in queries]
    if len(set(ids)) != len(ids):
        raise CloudWatchError("ValidationError", "The values for parameter Id in MetricDataQueries are not unique.")
    start = _epoch(params.get("StartTime"), "StartTime")
    end = _epoch(params.get("EndTime"), "EndTime")
    if start >= end:
        raise CloudWatchError("ValidationError", "The parameter StartTime must be less than the parameter EndTime.")
    scan_by = params.get("ScanBy") or "TimestampDescending"
    max_points = int(params.get("MaxDatapoints") or DEFAULT_MAX_DATAPOINTS)
    offset = int(params.get("NextToken") or 0)

    data = [m for m in backend().get_all_metrics() if start <= _stored_epoch(m.timestamp) < end]
    results = []
    for query in queries:
        stat_spec = query.get("MetricStat")
        if not stat_spec:
            raise CloudWatchError("ValidationError",
                                  f"Query {query.get('Id')}: only MetricStat queries are supported here.")
        metric = stat_spec.get("Metric") or {}
        period = int(stat_spec.get("Period") or 0)
        if period <= 0:
            raise CloudWatchError("ValidationError", "The parameter Period must be greater than 0.")
        wanted = _dims(metric.get("Dimensions"))
        unit = stat_spec.get("Unit")
        matching = [m for m in data
                    if m.namespace == metric.get("Namespace") and m.name == metric.get("MetricName")
                    and _dims({"Name": d.name, "Value": d.value} for d in m.dimensions) == wanted
                    and (not unit or m.unit == unit)]
        buckets: dict[int, tuple[list[float], list[MetricAggregatedDatum]]] = {}
        for m in matching:
            index = int((_stored_epoch(m.timestamp) - start) // period)
            raw, agg = buckets.setdefault(index, ([], []))
            if isinstance(m, MetricDatum):
                raw.append(float(m.value))
            elif isinstance(m, MetricAggregatedDatum):
                agg.append(m)
        points = []
        for index in sorted(buckets, reverse=scan_by == "TimestampDescending"):
            value = statistic(stat_spec.get("Stat", ""), *buckets[index])
            if value is not None:
                points.append((start + index * period, value))
        results.append({"query": query, "points": points})

    # Page through all datapoints in query order, MaxDatapoints at a time. Every page
    # lists every query; a query with datapoints on later pages says PartialData.
    flat = [(i, p) for i, r in enumerate(results) for p in r["points"]]
    page = flat[offset:offset + max_points]
    after = {i for i, _ in flat[offset + max_points:]}
    out = []
    for i, r in enumerate(results):
        query = r["query"]
        if not query.get("ReturnData", True):
            continue
        mine = [p for j, p in page if j == i]
        stat_spec = query["MetricStat"]
        out.append({
            "Id": query["Id"],
            "Label": query.get("Label") or f"{(stat_spec.get('Metric') or {}).get('MetricName')} {stat_spec.get('Stat')}",
            "Timestamps": [datetime.fromtimestamp(t, tz=timezone.utc) for t, _ in mine],
            "Values": [v for _, v in mine],
            "StatusCode": "PartialData" if i in after else "Complete",
        })
    body: dict[str, Any] = {"MetricDataResults": out, "Messages": []}
    if offset + max_points < len(flat):
        body["NextToken"] = str(offset + max_points)
    return body


def _alarm(a: Any) -> dict[str, Any]:
    item = {
        "AlarmName": a.name,
        "AlarmArn": a.alarm_arn,
        "StateValue": a.state_value,
        "StateReason": a.state_reason,
        "StateUpdatedTimestamp": a.state_updated_timestamp,
        "ActionsEnabled": bool(a.actions_enabled),
        "MetricName": a.metric_name,
        "Namespace": a.namespace,
        "ComparisonOperator": a.comparison_operator,
        "EvaluationPeriods": int(a.evaluation_periods),
        "Threshold": float(a.threshold) if a.threshold is not None else None,
        "Period": int(a.period) if a.period is not None else None,
        "Statistic": a.statistic,
        "Dimensions": [{"Name": d.name, "Value": d.value} for d in (a.dimensions or [])],
    }
    return {k: v for k, v in item.items() if v is not None}


def describe_alarms(params: dict[str, Any]) -> dict[str, Any]:
    names = params.get("AlarmNames") or []
    b = backend()
    if names:
        alarms = list(b.get_alarms_by_alarm_names(names))
    elif params.get("AlarmNamePrefix"):
        alarms = list(b.get_alarms_by_alarm_name_prefix(params["AlarmNamePrefix"]))
    elif params.get("StateValue"):
        alarms = list(b.get_alarms_by_state_value(params["StateValue"]))
    else:
        alarms = list(b.describe_alarms())
    metric = [a for a in alarms if getattr(a, "rule", None) is None]
    composite = [a for a in alarms if getattr(a, "rule", None) is not None]
    return {"MetricAlarms": [_alarm(a) for a in metric],
            "CompositeAlarms": [{"AlarmName": a.name, "AlarmArn": a.alarm_arn, "StateValue": a.state_value,
                                 "AlarmRule": a.rule, "StateReason": a.state_reason,
                                 "ActionsEnabled": bool(a.actions_enabled),
                                 "AlarmActions": list(a.alarm_actions or [])}
                                for a in composite]}


def put_metric_data(params: dict[str, Any]) -> dict[str, Any]:
    namespace = params.get("Namespace")
    if not namespace:
        raise CloudWatchError("ValidationError", "The parameter Namespace is required.")
    data = []
    for item in params.get("MetricData") or []:
        item = dict(item)
        if isinstance(item.get("Timestamp"), datetime):
            # Stored like moto's own query-protocol path: naive UTC.
            item["Timestamp"] = item["Timestamp"].astimezone(timezone.utc).replace(tzinfo=None)
        data.append(item)
    backend().put_metric_data(namespace, data)
    return {}


def put_metric_alarm(params: dict[str, Any]) -> dict[str, Any]:
    backend().put_metric_alarm(
        name=params["AlarmName"], namespace=params.get("Namespace"), metric_name=params.get("MetricName"),
        metric_data_queries=None, comparison_operator=params.get("ComparisonOperator"),
        evaluation_periods=params.get("EvaluationPeriods"), datapoints_to_alarm=params.get("DatapointsToAlarm"),
        period=params.get("Period"), threshold=params.get("Threshold"), statistic=params.get("Statistic"),
        extended_statistic=params.get("ExtendedStatistic"), description=params.get("AlarmDescription"),
        dimensions=params.get("Dimensions") or [], alarm_actions=params.get("AlarmActions") or [],
        ok_actions=params.get("OKActions") or [], insufficient_data_actions=params.get("InsufficientDataActions") or [],
        unit=params.get("Unit"), actions_enabled=params.get("ActionsEnabled", True),
        treat_missing_data=params.get("TreatMissingData"),
        evaluate_low_sample_count_percentile=params.get("EvaluateLowSampleCountPercentile"),
        threshold_metric_id=params.get("ThresholdMetricId"), rule=None, tags=params.get("Tags") or [],
    )
    return {}


def set_alarm_state(params: dict[str, Any]) -> dict[str, Any]:
    name = params.get("AlarmName")
    if name not in backend().alarms:
        raise CloudWatchError("ResourceNotFound", f"Alarm {name} not found", 404)
    backend().set_alarm_state(name, params.get("StateReason", ""), params.get("StateReasonData", "{}"),
                              params.get("StateValue"))
    return {}


def list_tags_for_resource(params: dict[str, Any]) -> dict[str, Any]:
    arn = params.get("ResourceARN")
    if not isinstance(arn, str) or not arn:
        raise CloudWatchError("InvalidParameterValue", "ResourceARN is required")
    b = backend()
    # Like AWS (moto answers an empty list): an unknown alarm is not found.
    if arn not in {a.alarm_arn for a in b.describe_alarms()}:
        raise CloudWatchError("ResourceNotFoundException", f"Resource {arn} not found", 404)
    return {"Tags": [{"Key": k, "Value": v} for k, v in b.list_tags_for_resource(arn).items()]}


def put_composite_alarm(params: dict[str, Any]) -> dict[str, Any]:
    from . import composite
    try:
        composite.put_composite_alarm(params)
    except composite.RuleError as e:
        raise CloudWatchError("ValidationError", str(e)) from e
    return {}


OPERATIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "PutCompositeAlarm": put_composite_alarm,
    "ListTagsForResource": list_tags_for_resource,
    "GetMetricData": get_metric_data,
    "DescribeAlarms": describe_alarms,
    "PutMetricData": put_metric_data,
    "PutMetricAlarm": put_metric_alarm,
    "SetAlarmState": set_alarm_state,
}


def handle(operation: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
    try:
        try:
            params = cbor.loads(body)
        except (cbor.CBORError, UnicodeDecodeError) as err:
            raise CloudWatchError("SerializationException", f"malformed CBOR request: {err}") from err
        if not isinstance(params, dict):
            raise CloudWatchError("SerializationException", "the request body must be a CBOR map")
        op = OPERATIONS.get(operation)
        if op is None:
            raise CloudWatchError("UnknownOperationException",
                                  f"{operation} is not implemented by rollgate's emulator over RPCv2-CBOR", 404)
        return 200, headers, cbor.dumps(op(params))
    except CloudWatchError as err:
        log.info("cloudwatch %s -> %s: %s", operation, err.code, err.message)
        headers["x-amzn-query-error"] = f"{err.code};Sender"
        return err.status, headers, cbor.dumps({"__type": f"com.amazonaws.cloudwatch#{err.code}",
                                                "message": err.message})
    except (KeyError, TypeError, ValueError) as err:
        log.info("cloudwatch %s -> ValidationError: %r", operation, err)
        headers["x-amzn-query-error"] = "ValidationError;Sender"
        return 400, headers, cbor.dumps({"__type": "com.amazonaws.cloudwatch#ValidationError",
                                         "message": f"invalid request: {err!r}"})


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}


def wrap(app: Callable) -> Callable:
    """WSGI middleware: RPCv2-CBOR CloudWatch requests here, everything else to `app`."""

    def middleware(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX) or environ.get("REQUEST_METHOD") != "POST":
            return app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        status, headers, payload = handle(path[len(PREFIX):].strip("/"), body)
        headers["Content-Length"] = str(len(payload))
        start_response(f"{status} {_REASONS.get(status, 'Error')}", list(headers.items()))
        return [payload]

    return middleware
