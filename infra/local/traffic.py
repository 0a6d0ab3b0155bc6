"""Lambda's own metrics for a function behind an alias, written while traffic shifts.

The emulator runs no real traffic, so tests and the demo play Lambda's part: every
`every` seconds, `per_tick` requests are shared among the versions the alias routes to
by its weights (a 10 % canary gets 10 % of them, as on AWS), and each version's
Invocations, Errors and Duration are put under FunctionName / Resource=<fn>:<alias> /
ExecutedVersion, the dimensions rollgate's post-traffic hook and version-scoped alarms
read. A behaviour's `latency` is a (low, high) range in milliseconds or a function that
draws one request's latency.

    with lambda_traffic(aws, "orders", "live", {"2": {"errors": 0.4, "latency": (40, 90)}}):
        ...deploy and wait...
"""

from __future__ import annotations

import random
import threading
from contextlib import contextmanager
from datetime import datetime, timezone

HEALTHY = {"errors": 0.0, "latency": (40, 90)}


def version_dimensions(function: str, alias: str, version: str) -> list[dict]:
    return [{"Name": "FunctionName", "Value": function},
            {"Name": "Resource", "Value": f"{function}:{alias}"},
            {"Name": "ExecutedVersion", "Value": version}]


def draw_latency(behaviour: dict) -> float:
    latency = behaviour["latency"]
    return float(latency()) if callable(latency) else float(random.randint(*latency))


def put_version_metrics(cw, function: str, alias: str, version: str, behaviour: dict,
                        invocations: int = 10) -> int:
    """One period's metrics of one version; returns the errors written."""
    now = datetime.now(timezone.utc)
    dims = version_dimensions(function, alias, version)
    errors = sum(random.random() < behaviour["errors"] for _ in range(invocations))
    data = [{"MetricName": "Invocations", "Dimensions": dims, "Timestamp": now, "Value": invocations},
            {"MetricName": "Errors", "Dimensions": dims, "Timestamp": now, "Value": errors}]
    if invocations:
        # PutMetricData takes at most 150 values per datum.
        values = [draw_latency(behaviour) for _ in range(invocations)]
        data += [{"MetricName": "Duration", "Dimensions": dims, "Timestamp": now, "Unit": "Milliseconds",
                  "Values": values[i:i + 150]} for i in range(0, len(values), 150)]
    cw.put_metric_data(Namespace="AWS/Lambda", MetricData=data)
    return errors


@contextmanager
def lambda_traffic(aws, function: str, alias: str, behaviour: dict[str, dict], every: float = 0.25,
                   per_tick: int = 20):
    """Write metrics for each version the alias routes to until the block ends;
    `behaviour` maps a version to its error share and latency (default HEALTHY)."""
    cw, lam = aws.client("cloudwatch"), aws.client("lambda")
    stop = threading.Event()

    def serving() -> dict[str, float]:
        got = lam.get_alias(FunctionName=function, Name=alias)
        weights = {v: float(w) for v, w in
                   ((got.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}).items()}
        return {got["FunctionVersion"]: 1.0 - sum(weights.values()), **weights}

    def run():
        while not stop.is_set():
            for version, weight in serving().items():
                put_version_metrics(cw, function, alias, version, behaviour.get(version, HEALTHY),
                                    invocations=round(per_tick * weight))
            stop.wait(every)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
