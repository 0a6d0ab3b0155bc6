"""Lambda's own metrics for a function behind an alias, written while traffic shifts.

The emulator runs no real traffic, so tests and the demo play Lambda's part: every
`every` seconds, for each version the alias currently routes to, put Invocations,
Errors and Duration under FunctionName / Resource=<fn>:<alias> / ExecutedVersion, the
dimensions rollgate's post-traffic hook and version-scoped alarms read.

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


def put_version_metrics(cw, function: str, alias: str, version: str, behaviour: dict,
                        invocations: int = 10) -> int:
    """One period's metrics of one version; returns the errors written."""
    now = datetime.now(timezone.utc)
    dims = version_dimensions(function, alias, version)
    errors = sum(random.random() < behaviour["errors"] for _ in range(invocations))
    cw.put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": now, "Value": invocations},
        {"MetricName": "Errors", "Dimensions": dims, "Timestamp": now, "Value": errors},
        {"MetricName": "Duration", "Dimensions": dims, "Timestamp": now, "Unit": "Milliseconds",
         "Values": [float(random.randint(*behaviour["latency"])) for _ in range(invocations)]},
    ])
    return errors


@contextmanager
def lambda_traffic(aws, function: str, alias: str, behaviour: dict[str, dict], every: float = 0.25):
    """Write metrics for each version the alias routes to until the block ends;
    `behaviour` maps a version to its error share and latency range (default HEALTHY)."""
    cw, lam = aws.client("cloudwatch"), aws.client("lambda")
    stop = threading.Event()

    def serving() -> list[str]:
        got = lam.get_alias(FunctionName=function, Name=alias)
        weights = (got.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return [got["FunctionVersion"], *weights]

    def run():
        while not stop.is_set():
            for version in serving():
                put_version_metrics(cw, function, alias, version, behaviour.get(version, HEALTHY))
            stop.wait(every)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
