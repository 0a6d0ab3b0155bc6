"""CloudWatch dashboards checked as CloudWatch checks them; moto 5.2.5 stores any body.

`PutDashboard` (the API) and `AWS::CloudWatch::Dashboard` (moto's CloudFormation) both
reach the backend's `put_dashboard`, which is wrapped here. A body CloudWatch's
"Dashboard Body Structure and Syntax" page or its service quotas rule out is refused with
`InvalidParameterInput` (HTTP 400), as CloudWatch answers, and nothing is stored:

- not JSON, or not a JSON object: "The field DashboardBody must be a valid JSON object";
- otherwise one message per problem, each with the JSON path it is about
  ("The dashboard body is invalid, there are N validation errors: [...]"):
  a `widgets` array is required and holds at most 500 widgets; `variables` at most 25;
  `periodOverride` is `auto` or `inherit`; each widget has a `type` among `metric`,
  `text`, `log`, `alarm`, `explorer` and a `properties` object, `x` (0-23) and `y` (0 or
  more) together or neither, `width` 1-24, `height` 1-1000; a metric widget names its
  `region`, has a `metrics` array (unless it shows an alarm annotation) of at most 500
  entries, each an array, and a `period` that is a multiple of 60; a text widget has its
  `markdown`; a log widget its `region` and `query`; at most 2500 metrics in all.

The dashboard name: 1 to 255 of `A-Z a-z 0-9 - _` (the PutDashboard API reference).

A dashboard's `Ref` in CloudFormation is its name, as on AWS (moto gave none).
"""

from __future__ import annotations

import json
import re
from typing import Any

from moto.cloudwatch.exceptions import DashboardInvalidInputError
from moto.cloudwatch.models import CloudWatchBackend, Dashboard
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult

MAX_WIDGETS = 500
MAX_VARIABLES = 25
MAX_METRICS_PER_WIDGET = 500
MAX_METRICS_PER_DASHBOARD = 2500
WIDGET_TYPES = ("metric", "text", "log", "alarm", "explorer")
VIEWS = ("timeSeries", "singleValue", "gauge", "bar", "pie", "table")
NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _grid(path: str, widget: dict, problems: list[tuple[str, str]]) -> None:
    if ("x" in widget) != ("y" in widget):
        problems.append((path, "Should have both properties 'x' and 'y', or neither"))
    limits = {"x": (0, 23), "y": (0, None), "width": (1, 24), "height": (1, 1000)}
    for key, (low, high) in limits.items():
        if key not in widget:
            continue
        value = widget[key]
        if not _is_int(value) or value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"{low} or more"
            problems.append((f"{path}/{key}", f"Should be an integer {bound}"))


def _metric_widget(path: str, props: dict, problems: list[tuple[str, str]]) -> int:
    """The widget's problems; returns how many metrics it graphs."""
    if not isinstance(props.get("region"), str):
        problems.append((path, "Should have required property 'region'"))
    if "view" in props and props["view"] not in VIEWS:
        problems.append((f"{path}/view", f"Should be equal to one of the allowed values {list(VIEWS)}"))
    if "period" in props and (not _is_int(props["period"]) or props["period"] < 60 or props["period"] % 60):
        problems.append((f"{path}/period", "Should be a multiple of 60, at least 60"))
    metrics = props.get("metrics")
    if metrics is None:
        if not props.get("annotations", {}).get("alarms"):
            problems.append((path, "Should have required property 'metrics'"))
        return 0
    if not isinstance(metrics, list):
        problems.append((f"{path}/metrics", "Should be array"))
        return 0
    if len(metrics) > MAX_METRICS_PER_WIDGET:
        problems.append((f"{path}/metrics", f"Should NOT have more than {MAX_METRICS_PER_WIDGET} items"))
    for i, entry in enumerate(metrics):
        if not isinstance(entry, list) or not entry:
            problems.append((f"{path}/metrics/{i}", "Should be a non-empty array"))
    return len(metrics)


def _widget(path: str, widget: Any, problems: list[tuple[str, str]]) -> int:
    if not isinstance(widget, dict):
        problems.append((path, "Should be object"))
        return 0
    kind = widget.get("type")
    if kind not in WIDGET_TYPES:
        problems.append((f"{path}/type", f"Should be equal to one of the allowed values {list(WIDGET_TYPES)}"))
    _grid(path, widget, problems)
    props = widget.get("properties")
    if not isinstance(props, dict):
        problems.append((path, "Should have required property 'properties'"))
        return 0
    if kind == "metric":
        return _metric_widget(f"{path}/properties", props, problems)
    if kind == "text" and not isinstance(props.get("markdown"), str):
        problems.append((f"{path}/properties", "Should have required property 'markdown'"))
    if kind == "log":
        for key in ("region", "query"):
            if not isinstance(props.get(key), str):
                problems.append((f"{path}/properties", f"Should have required property '{key}'"))
    return 0


def problems(body: Any) -> list[tuple[str, str]]:
    """(JSON path, message) for each thing CloudWatch would refuse in a parsed body."""
    found: list[tuple[str, str]] = []
    widgets = body.get("widgets")
    if not isinstance(widgets, list):
        return [("", "Should have required property 'widgets'")]
    if len(widgets) > MAX_WIDGETS:
        found.append(("/widgets", f"Should NOT have more than {MAX_WIDGETS} items"))
    variables = body.get("variables", [])
    if not isinstance(variables, list) or len(variables) > MAX_VARIABLES:
        found.append(("/variables", f"Should be an array of at most {MAX_VARIABLES} items"))
    if "periodOverride" in body and body["periodOverride"] not in ("auto", "inherit"):
        found.append(("/periodOverride", "Should be equal to one of the allowed values ['auto', 'inherit']"))
    total = sum(_widget(f"/widgets/{i}", w, found) for i, w in enumerate(widgets))
    if total > MAX_METRICS_PER_DASHBOARD:
        found.append(("/widgets", f"Should NOT graph more than {MAX_METRICS_PER_DASHBOARD} metrics in all "
                                  f"(it graphs {total})"))
    return found


def check(name: Any, body: Any) -> None:
    """Raise CloudWatch's `InvalidParameterInput` for a dashboard it would refuse."""
    if not isinstance(name, str) or not NAME.match(name):
        raise DashboardInvalidInputError(
            "The value for field DashboardName contains invalid characters. It can only contain "
            "alphanumerics, dash (-) and underscore (_), and be 1 to 255 characters long.")
    try:
        parsed = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise DashboardInvalidInputError("The field DashboardBody must be a valid JSON object")
    found = problems(parsed)
    if found:
        listed = json.dumps([{"dataPath": p, "message": m} for p, m in found])
        raise DashboardInvalidInputError(
            f"The dashboard body is invalid, there are {len(found)} validation errors: {listed}")


def patch() -> None:
    stored = CloudWatchBackend.put_dashboard

    def put_dashboard(self: CloudWatchBackend, name: str, body: str) -> Dashboard:
        check(name, body)
        return stored(self, name, body)

    def respond(self: CloudWatchResponse) -> ActionResult:
        # moto's own answer refuses invalid JSON with its own words first: the backend checks.
        self.cloudwatch_backend.put_dashboard(self._get_param("DashboardName"), self._get_param("DashboardBody"))
        return ActionResult({"DashboardValidationMessages": []})

    CloudWatchBackend.put_dashboard = put_dashboard  # type: ignore[method-assign]
    CloudWatchResponse.put_dashboard = respond  # type: ignore[method-assign]
    Dashboard.physical_resource_id = property(lambda self: self.name)  # type: ignore[attr-defined]
