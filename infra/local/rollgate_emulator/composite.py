"""Composite alarms, which moto 5.2.5 cannot create (`PutCompositeAlarm` answered 500).

- `PutCompositeAlarm` (query protocol through moto's responses, and Smithy RPCv2-CBOR
  through cloudwatch.py) stores the alarm with its `AlarmRule`, description, actions and
  tags; a rule that does not parse is a `ValidationError`, as on AWS.
- The rule language of AWS's PutCompositeAlarm documentation: `ALARM(name)`, `OK(name)`,
  `INSUFFICIENT_DATA(name)` (the name quoted with double quotes or bare, or an alarm
  ARN), `TRUE`, `FALSE`, `NOT`, `AND`, `OR` and parentheses; `NOT` binds tightest, then
  `AND`, then `OR`.
- The composite's state is its rule evaluated over its children's states: `ALARM` when
  true, `OK` when false. It is evaluated when it is created or updated and whenever a
  child's state changes (nested composites too). A change puts the "CloudWatch Alarm
  State Change" event of alarms.py on the bus, with `configuration.alarmRule` and, as in
  AWS's published composite sample, a `state.reasonData` naming the `triggeringAlarms`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Union

from moto.cloudwatch.models import Alarm, cloudwatch_backends
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult, EmptyResult

from . import state
from .state import log

STATES = ("ALARM", "OK", "INSUFFICIENT_DATA")


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class Is:
    """`STATE(name)`: the named alarm is in `state`."""
    state: str
    alarm: str


@dataclass(frozen=True)
class Const:
    value: bool


@dataclass(frozen=True)
class Not:
    inner: "Node"


@dataclass(frozen=True)
class Op:
    op: str  # AND | OR
    left: "Node"
    right: "Node"


Node = Union[Is, Const, Not, Op]

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([^\s()"]+))')


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise RuleError(f"unexpected character at position {pos}")
        pos = m.end()
        if m.group(1):
            out.append(("(", "("))
        elif m.group(2):
            out.append((")", ")"))
        elif m.group(3) is not None:
            out.append(("name", m.group(3).replace('\\"', '"')))
        else:
            out.append(("word", m.group(4)))
    return out


def _alarm_name(reference: str) -> str:
    """A bare name, or the name in an alarm ARN."""
    return reference.split(":alarm:", 1)[1] if ":alarm:" in reference else reference


def parse_rule(text: str) -> Node:
    if not text or len(text) > 10240:  # cloudwatch model: AlarmRule 1..10240
        raise RuleError("AlarmRule must have 1 to 10240 characters")
    toks = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(toks):
            raise RuleError("the rule ends too early")
        pos += 1
        return toks[pos - 1]

    def expect(kind: str) -> None:
        tok = take()
        if tok[0] != kind:
            raise RuleError(f"expected {kind!r}, got {tok[1]!r}")

    def either() -> Node:
        node = both()
        while (t := peek()) and t == ("word", "OR"):
            take()
            node = Op("OR", node, both())
        return node

    def both() -> Node:
        node = negated()
        while (t := peek()) and t == ("word", "AND"):
            take()
            node = Op("AND", node, negated())
        return node

    def negated() -> Node:
        tok = take()
        if tok == ("word", "NOT"):
            return Not(negated())
        if tok[0] == "(":
            node = either()
            expect(")")
            return node
        if tok == ("word", "TRUE"):
            return Const(True)
        if tok == ("word", "FALSE"):
            return Const(False)
        if tok[0] == "word" and tok[1] in STATES:
            expect("(")
            name = take()
            if name[0] not in ("name", "word"):
                raise RuleError(f"{tok[1]}( needs an alarm name")
            expect(")")
            return Is(tok[1], _alarm_name(name[1]))
        raise RuleError(f"unexpected {tok[1]!r}")

    node = either()
    if pos != len(toks):
        raise RuleError(f"unexpected {toks[pos][1]!r} after the rule")
    return node


def children(node: Node) -> set[str]:
    if isinstance(node, Is):
        return {node.alarm}
    if isinstance(node, Not):
        return children(node.inner)
    if isinstance(node, Op):
        return children(node.left) | children(node.right)
    return set()


def evaluate(node: Node, states: dict[str, str]) -> bool:
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Is):
        return states.get(node.alarm, "INSUFFICIENT_DATA") == node.state
    if isinstance(node, Not):
        return not evaluate(node.inner, states)
    left = evaluate(node.left, states)
    return (left and evaluate(node.right, states)) if node.op == "AND" else (left or evaluate(node.right, states))


def _backend():
    return cloudwatch_backends[state.ACCOUNT_ID][state.REGION]


def put_composite_alarm(params: dict[str, Any]) -> None:
    name, rule = params.get("AlarmName"), params.get("AlarmRule")
    if not name or not (1 <= len(name) <= 255):
        raise RuleError("AlarmName must have 1 to 255 characters")
    parse_rule(rule or "")
    tags = params.get("Tags") or []
    _backend().put_metric_alarm(
        name=name, namespace=None, metric_name=None, metric_data_queries=None, comparison_operator=None,
        evaluation_periods=None, datapoints_to_alarm=None, period=None, threshold=None, statistic=None,
        extended_statistic=None, description=params.get("AlarmDescription"), dimensions=[],
        alarm_actions=params.get("AlarmActions") or [], ok_actions=params.get("OKActions") or [],
        insufficient_data_actions=params.get("InsufficientDataActions") or [], unit=None,
        actions_enabled=params.get("ActionsEnabled", True), treat_missing_data=None,
        evaluate_low_sample_count_percentile=None, threshold_metric_id=None, rule=rule, tags=tags,
    )
    reevaluate(_backend().alarms[name])


def reevaluate(composite: Alarm, cause: str | None = None) -> None:
    """Set a composite's state from its rule (`cause`: the child whose change made it
    look again); a change notifies its own parents in turn."""
    node = parse_rule(composite.rule)
    alarms = _backend().alarms
    states = {n: alarms[n].state_value for n in children(node) if n in alarms}
    new = "ALARM" if evaluate(node, states) else "OK"
    if new == composite.state_value:
        return
    triggering = [{"arn": alarms[n].alarm_arn,
                   "state": {"value": alarms[n].state_value,
                             "timestamp": alarms[n].state_updated_timestamp.isoformat()}}
                  for n in sorted(states) if n in alarms]
    if cause in alarms:
        child = alarms[cause]
        reason = (f"{child.alarm_arn} transitioned to {child.state_value} at "
                  f"{child.state_updated_timestamp.isoformat()}")
    else:
        reason = f"the alarm rule evaluated to {new == 'ALARM'} when the alarm was put"
    composite.update_state(reason, json.dumps({"triggeringAlarms": triggering}), new)


def _parents_of(name: str) -> list[Alarm]:
    out = []
    for alarm in list(_backend().alarms.values()):
        if alarm.rule:
            try:
                if name in children(parse_rule(alarm.rule)):
                    out.append(alarm)
            except RuleError:
                continue
    return out


def _query_put_composite_alarm(self: CloudWatchResponse) -> ActionResult:
    from moto.cloudwatch.exceptions import ValidationError
    params = {k: self._get_param(k) for k in ("AlarmName", "AlarmRule", "AlarmDescription")}
    params["AlarmActions"] = self._get_param("AlarmActions", [])
    params["OKActions"] = self._get_param("OKActions", [])
    params["InsufficientDataActions"] = self._get_param("InsufficientDataActions", [])
    params["Tags"] = self._get_param("Tags", [])
    enabled = self._get_bool_param("ActionsEnabled")
    params["ActionsEnabled"] = True if enabled is None else enabled
    try:
        put_composite_alarm(params)
    except RuleError as e:
        raise ValidationError(str(e))
    return EmptyResult()


def patch() -> None:
    """After alarms.patch(): wraps its Alarm.update_state."""
    previous = Alarm.update_state

    def update_state(self: Alarm, reason: str, reason_data: str, state_value: str) -> None:
        old = self.state_value
        previous(self, reason, reason_data, state_value)
        if old != state_value:
            for parent in _parents_of(self.name):
                try:
                    reevaluate(parent, cause=self.name)
                except RuleError as e:  # stored rules parsed when put; never expected
                    log.warning("composite %s: %s", parent.name, e)

    Alarm.update_state = update_state  # type: ignore[method-assign]
    CloudWatchResponse.put_composite_alarm = _query_put_composite_alarm  # type: ignore[attr-defined]
