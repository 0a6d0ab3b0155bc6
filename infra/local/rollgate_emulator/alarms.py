"""CloudWatch alarm patches: state changes leave the alarm the way they do on AWS.

- ``SetAlarmState`` (and any state change of an alarm) puts a "CloudWatch Alarm
  State Change" event on the default EventBridge bus (source ``aws.cloudwatch``,
  resources = the alarm ARN, detail with alarmName, state, previousState and the
  configuration: metrics with their dimensions as an object, or the composite
  alarm's alarmRule), when the value actually changes.
- The alarm's actions for the new state run when ``ActionsEnabled``: a Lambda ARN is
  invoked asynchronously with the alarm Lambda-action payload; an SNS topic gets the
  classic JSON alarm notification (AlarmName, NewStateValue, Trigger.Dimensions...).
- ``DescribeAlarmHistory`` lists the state updates (newest first).
- EventBridge rules with a Lambda target deliver through the emulator's Lambda invoke
  (``InvocationType: Event``), as AWS does; moto cannot run that target.
- ``GET /_rollgate/alias-updates[?function=]``: every UpdateAlias call with its
  RevisionId and answer status (412 for a stale one).
- ``POST /_rollgate/alias-race?function=&alias=&version=``: the next ``UpdateAlias``
  of that alias is preceded by a concurrent change of the alias to ``version``, so a
  caller holding the older RevisionId meets ``PreconditionFailedException``.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from datetime import datetime, timezone
from typing import Any

from moto.cloudwatch.models import Alarm, CloudWatchBackend
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult
from moto.events.models import Rule
from moto.utilities.arns import parse_arn

from . import awslambda, control, events, state
from .state import log, records

SOURCE = "aws.cloudwatch"
DETAIL_TYPE = "CloudWatch Alarm State Change"

_lock = threading.Lock()
_history: list[dict[str, Any]] = []
_alarm_events: list[dict[str, Any]] = []
_lambda_deliveries: list[dict[str, Any]] = []
_races: list[dict[str, str]] = []
_alias_updates: list[dict[str, Any]] = []


def _reset() -> None:
    with _lock:
        _history.clear()
        _alarm_events.clear()
        _lambda_deliveries.clear()
        _races.clear()
        _alias_updates.clear()


records.on_reset(_reset)


def _ts(when: datetime) -> str:
    """CloudWatch's timestamp style: 2026-03-01T10:15:00.000+0000."""
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{when.microsecond // 1000:03d}+0000"


def _metrics(alarm: Alarm) -> list[dict[str, Any]]:
    """configuration.metrics as the EventBridge event shows them (dimensions as object)."""
    if alarm.metric_data_queries:
        out = []
        for q in alarm.metric_data_queries:
            item: dict[str, Any] = {"id": q.id, "returnData": q.return_data in (True, "true", "True", None)}
            if q.expression:
                item["expression"] = q.expression
            if q.label:
                item["label"] = q.label
            stat = q.metric_stat
            if stat is not None:
                metric = stat.metric
                item["metricStat"] = {
                    "metric": {"namespace": metric.namespace, "name": metric.metric_name,
                               "dimensions": {d["Name"] if isinstance(d, dict) else d.name:
                                              d["Value"] if isinstance(d, dict) else d.value
                                              for d in (metric.dimensions or [])}},
                    "period": stat.period, "stat": stat.stat,
                }
            out.append(item)
        return out
    if not alarm.metric_name:
        return []
    return [{
        "id": "m1",
        "metricStat": {
            "metric": {"namespace": alarm.namespace, "name": alarm.metric_name,
                       "dimensions": {d.name: d.value for d in alarm.dimensions}},
            "period": alarm.period, "stat": alarm.statistic or alarm.extended_statistic,
        },
        "returnData": True,
    }]


def _configuration(alarm: Alarm) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if alarm.description:
        config["description"] = alarm.description
    if alarm.rule:
        config["alarmRule"] = alarm.rule
    else:
        config["metrics"] = _metrics(alarm)
    return config


def _detail(alarm: Alarm, old: dict[str, Any]) -> dict[str, Any]:
    return {
        "alarmName": alarm.name,
        "state": {"value": alarm.state_value, "reason": alarm.state_reason or "",
                  "reasonData": alarm.state_reason_data or "{}",
                  "timestamp": _ts(alarm.state_updated_timestamp)},
        "previousState": old,
        "configuration": _configuration(alarm),
    }


def _sns_message(alarm: Alarm, old_value: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "AlarmName": alarm.name, "AlarmDescription": alarm.description,
        "AWSAccountId": state.ACCOUNT_ID, "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason or "", "StateChangeTime": _ts(alarm.state_updated_timestamp),
        "Region": "US East (N. Virginia)", "AlarmArn": alarm.alarm_arn, "OldStateValue": old_value,
        "OKActions": alarm.ok_actions, "AlarmActions": alarm.alarm_actions,
        "InsufficientDataActions": alarm.insufficient_data_actions,
    }
    if alarm.rule:
        message["AlarmRule"] = alarm.rule
        return message
    trigger: dict[str, Any] = {"Period": alarm.period, "EvaluationPeriods": alarm.evaluation_periods,
                               "ComparisonOperator": alarm.comparison_operator,
                               "Threshold": alarm.threshold}
    if alarm.metric_data_queries:
        trigger["Metrics"] = [
            {"Id": m["id"], "ReturnData": m["returnData"],
             **({"Expression": m["expression"]} if "expression" in m else {}),
             **({"MetricStat": {"Metric": {
                 "Dimensions": [{"value": v, "name": k} for k, v in m["metricStat"]["metric"]["dimensions"].items()],
                 "MetricName": m["metricStat"]["metric"]["name"],
                 "Namespace": m["metricStat"]["metric"]["namespace"]},
                 "Period": m["metricStat"]["period"], "Stat": m["metricStat"]["stat"]}}
                if "metricStat" in m else {})}
            for m in _metrics(alarm)]
    else:
        trigger.update({"MetricName": alarm.metric_name, "Namespace": alarm.namespace,
                        "StatisticType": "Statistic", "Statistic": (alarm.statistic or "").upper(),
                        "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions]})
    message["Trigger"] = trigger
    return message


def state_changed(alarm: Alarm, old: dict[str, Any]) -> None:
    """Event, history and actions for one state change; never raises."""
    detail = _detail(alarm, old)
    entry = {"Source": SOURCE, "DetailType": DETAIL_TYPE, "Resources": [alarm.alarm_arn],
             "Detail": json.dumps(detail)}
    with _lock:
        _history.insert(0, {
            "AlarmName": alarm.name, "AlarmType": "CompositeAlarm" if alarm.rule else "MetricAlarm",
            "Timestamp": alarm.state_updated_timestamp, "HistoryItemType": "StateUpdate",
            "HistorySummary": f"Alarm updated from {old['value']} to {alarm.state_value}",
            "HistoryData": json.dumps({"version": "1.0", "oldState": old,
                                       "newState": detail["state"]}),
        })
        _alarm_events.append({**entry, "Detail": detail})
    try:
        from moto.events.models import events_backends
        events_backends[state.ACCOUNT_ID][state.REGION].put_events([entry])
    except Exception as err:  # a broken target must not break SetAlarmState
        log.warning("could not put the alarm event for %s: %s", alarm.name, err)
    log.info("alarm %s %s -> %s", alarm.name, old["value"], alarm.state_value)
    if not alarm.actions_enabled:
        return
    actions = {"ALARM": alarm.alarm_actions, "OK": alarm.ok_actions,
               "INSUFFICIENT_DATA": alarm.insufficient_data_actions}.get(alarm.state_value) or []
    for arn in actions:
        try:
            service = parse_arn(arn).service
            if service == "lambda":
                payload = {"source": SOURCE, "alarmArn": alarm.alarm_arn, "accountId": state.ACCOUNT_ID,
                           "time": detail["state"]["timestamp"], "region": state.REGION,
                           "alarmData": detail}
                awslambda.invoke(arn, json.dumps(payload).encode(), "Event")
            elif service == "sns":
                from moto.sns.models import sns_backends
                sns_backends[state.ACCOUNT_ID][state.REGION].publish(
                    message=json.dumps(_sns_message(alarm, old["value"])), arn=arn,
                    subject=f'{alarm.state_value}: "{alarm.name}" in US East (N. Virginia)'[:100])
            log.info("alarm %s action %s", alarm.name, arn)
        except Exception as err:
            log.warning("alarm %s action %s failed: %s", alarm.name, arn, err)


_orig_update_state = Alarm.update_state


def _update_state(self: Alarm, reason: str, reason_data: str, state_value: str) -> None:
    old = {"value": self.state_value, "reason": self.state_reason or "",
           "timestamp": _ts(self.state_updated_timestamp)}
    _orig_update_state(self, reason, reason_data, state_value)
    if old["value"] != state_value:  # AWS emits events on changes only
        state_changed(self, old)


def _describe_alarm_history(self: CloudWatchResponse) -> ActionResult:
    name = self._get_param("AlarmName")
    kind = self._get_param("HistoryItemType")
    with _lock:
        items = [dict(h) for h in _history
                 if name in (None, h["AlarmName"]) and kind in (None, h["HistoryItemType"])]
    limit = self._get_param("MaxRecords")
    if limit:
        items = items[: int(limit)]
    return ActionResult({"AlarmHistoryItems": items})


# --- EventBridge → Lambda -------------------------------------------------------

_orig_send_to_targets = Rule.send_to_targets


def _event_json(event: dict[str, Any]) -> str:
    event = dict(event)
    if isinstance(event.get("time"), (int, float)):
        event["time"] = datetime.fromtimestamp(float(event["time"]), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps(event)


def _lambda_payload(target: dict[str, Any], event: dict[str, Any]) -> bytes:
    if target.get("Input"):
        return target["Input"].encode()
    return _event_json(event).encode()


def _send_to_targets(self: Rule, event: dict[str, Any], transform_input: bool = True) -> None:
    # A disabled rule delivers nothing (EventBridge's DisableRule; moto delivers anyway).
    if getattr(self, "state", "ENABLED") != "ENABLED":
        return None
    # A scheduled rule (a ScheduleExpression and no EventPattern) is triggered by its
    # schedule only: no event on the bus matches it (moto's empty pattern matches all).
    if getattr(self, "scheduled_expression", None) and not self.event_pattern.get_pattern():
        return None
    if not self.event_pattern.matches_event(event):
        return None
    lambdas = [t for t in self.targets if parse_arn(t["Arn"]).service == "lambda"]
    for target in [t for t in self.targets if t not in lambdas]:
        # One target at a time: one that fails (its queue gone) is dead-lettered alone.
        one = copy.copy(self)
        one.targets = [target]
        try:
            _orig_send_to_targets(one, event, transform_input)
        except NotImplementedError as err:  # a kind of target moto does not deliver to
            log.warning("rule %s: target %s is not modelled: %s", self.name, target["Arn"], err)
        except Exception as err:
            events.dead_letter(self, target, _event_json(event), err)
    for target in lambdas:
        record = {"rule": self.name, "target": target["Arn"], "detailType": event.get("detail-type"),
                  "id": event.get("id"), "status": None}
        try:
            awslambda.invoke(target["Arn"], _lambda_payload(target, event), "Event")
            record["status"] = 202
        except Exception as err:  # the function gone: to the target's DLQ, or dropped
            record["status"] = f"failed: {err}"
            record["deadLettered"] = events.dead_letter(self, target, _event_json(event), err)
        with _lock:
            _lambda_deliveries.append(record)
    return None


# --- alias race -------------------------------------------------------------------

_patched_update_alias = None


def _update_alias(self: Any) -> Any:
    from urllib.parse import unquote
    path = self.path.split("?")[0]
    function_name = unquote(path.rsplit("/")[-3])
    alias_name = unquote(path.rsplit("/", 2)[-1])
    race = None
    with _lock:
        for r in _races:
            if r["function"] == function_name and r["alias"] == alias_name:
                race = r
                _races.remove(r)
                break
    if race is not None:
        awslambda.set_alias(function_name, alias_name, race["version"], None, service=None)
        log.info("alias race: %s:%s moved to %s before this UpdateAlias", function_name, alias_name,
                 race["version"])
    params = json.loads(self.body or "{}")
    record = {"function": function_name, "alias": alias_name, "version": params.get("FunctionVersion"),
              "revisionId": params.get("RevisionId"), "status": None, "time": state.now()}
    with _lock:
        _alias_updates.append(record)
    try:
        result = _patched_update_alias(self)
        record["status"] = result[0]
        return result
    except Exception as err:
        record["status"] = getattr(err, "code", 500)
        record["error"] = type(err).__name__
        raise


_orig_control_handle = control.handle


def _control_handle(method: str, path: str, query: dict[str, list[str]]) -> tuple[str, Any]:
    route = path[len(control.PREFIX):].strip("/")
    if method == "POST" and route == "alias-race":
        race = {k: (query.get(k) or [""])[0] for k in ("function", "alias", "version")}
        if not all(race.values()):
            return "400 Bad Request", {"message": "function, alias and version are required"}
        with _lock:
            _races.append(race)
        return "200 OK", race
    if method == "GET" and route == "alarm-events":
        with _lock:
            return "200 OK", list(_alarm_events)
    if method == "GET" and route == "alias-updates":
        wanted = (query.get("function") or [None])[0]
        with _lock:
            return "200 OK", [dict(u) for u in _alias_updates if wanted in (None, u["function"])]
    if method == "GET" and route == "lambda-deliveries":
        with _lock:
            return "200 OK", list(_lambda_deliveries)
    return _orig_control_handle(method, path, query)


def patch() -> None:
    global _patched_update_alias
    from moto.awslambda.responses import LambdaResponse

    Alarm.update_state = _update_state  # type: ignore[method-assign]
    CloudWatchResponse.describe_alarm_history = _describe_alarm_history  # type: ignore[attr-defined]
    Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign]
    _patched_update_alias = LambdaResponse.update_alias
    LambdaResponse.update_alias = _update_alias  # type: ignore[assignment]
    control.handle = _control_handle
