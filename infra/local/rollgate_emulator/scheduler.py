"""EventBridge Scheduler's one-time schedules, firing on the emulator's scaled clock.

moto keeps schedules but never runs one, returns 400 for a duplicate name (AWS: 409
ConflictException), fails with an unhandled KeyError (500) for a group that does not
exist, and checks no expression. Here, as the Scheduler API reference and user guide state
(botocore `scheduler/2021-06-30` for the shapes):

- `CreateSchedule` takes `at(yyyy-mm-ddThh:mm:ss)` (no zone suffix; in
  `ScheduleExpressionTimezone`, UTC by default), `rate(...)` and `cron(...)`; anything
  else is a ValidationException "Invalid Schedule Expression <expr>.". A past `at()` is
  accepted (AWS accepts it) and fires at once.
- The schedule's group must exist (404 ResourceNotFoundException), a name taken is 409.
- The execution role (`Target.RoleArn`) must exist and trust `scheduler.amazonaws.com`,
  else ValidationException "The execution role you provide must allow AWS EventBridge
  Scheduler to assume the role.".
- A one-time schedule fires once: Scheduler assumes the role, which must allow
  `lambda:InvokeFunction` on the target (checked by the local IAM against the role's
  policies), and invokes a Lambda target asynchronously with `Target.Input` verbatim.
  `ActionAfterCompletion: DELETE` deletes it after; `NONE` keeps it. A schedule deleted
  before its time never fires.
- Time is scaled: an `at()` an hour ahead fires after 60 of the emulator's minutes
  (`minute_seconds` each), counted from the moment it was created.

Only `at()` schedules fire; `rate()`/`cron()` are kept, not run (rollgate makes none).
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from moto.core.exceptions import JsonRESTError

from . import state
from .state import log, records

AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
OTHER = re.compile(r"(rate|cron)\(.+\)")
NAME = re.compile(r"[0-9a-zA-Z\-_.]{1,64}")
TRUST_MESSAGE = "The execution role you provide must allow AWS EventBridge Scheduler to assume the role."

_fired: list[dict[str, Any]] = []
_lock = threading.Lock()


class Conflict(JsonRESTError):
    code = 409

    def __init__(self, message: str) -> None:
        super().__init__("ConflictException", message)


class NotFound(JsonRESTError):
    code = 404

    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFoundException", message)


class Invalid(JsonRESTError):
    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("ValidationException", message)


def backend():
    from moto.scheduler.models import scheduler_backends

    return scheduler_backends[state.ACCOUNT_ID][state.REGION]


def fire_time(expression: str, zone: str | None) -> float | None:
    """Epoch seconds of an `at()` expression; None for rate/cron; raises for others."""
    m = AT.fullmatch(expression or "")
    if m:
        try:
            tz = ZoneInfo(zone) if zone else timezone.utc
            return datetime.fromisoformat(m.group(1)).replace(tzinfo=tz).timestamp()
        except (ValueError, KeyError) as err:
            raise Invalid(f"Invalid Schedule Expression {expression}.") from err
    if OTHER.fullmatch(expression or ""):
        return None
    raise Invalid(f"Invalid Schedule Expression {expression}.")


def _role(arn: str):
    from moto.iam.models import iam_backends

    try:
        return iam_backends[state.ACCOUNT_ID]["global"].get_role_by_arn(arn)
    except Exception:  # noqa: BLE001 - any lookup failure: no such role
        return None


def trusts_scheduler(role: Any) -> bool:
    doc = role.assume_role_policy_document
    doc = json.loads(doc) if isinstance(doc, str) else doc or {}
    statements = doc.get("Statement", [])
    for st in statements if isinstance(statements, list) else [statements]:
        services = (st.get("Principal") or {}).get("Service", [])
        services = services if isinstance(services, list) else [services]
        actions = st.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if (st.get("Effect") == "Allow" and "scheduler.amazonaws.com" in services
                and any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions)):
            return True
    return False


def check(name: str, params: dict[str, Any]) -> float | None:
    """Refuse what AWS refuses; the fire time of an at() schedule."""
    if not NAME.fullmatch(name):
        raise Invalid(f"Schedule name {name!r} must be 1 to 64 of [0-9a-zA-Z-_.].")
    group = params.get("GroupName") or "default"
    groups = backend().schedule_groups
    if group not in groups:
        raise NotFound(f"Schedule group {group} does not exist.")
    if name in groups[group].schedules:
        raise Conflict(f"Schedule {name} already exists.")
    window = params.get("FlexibleTimeWindow") or {}
    if window.get("Mode") not in ("OFF", "FLEXIBLE"):
        raise Invalid("FlexibleTimeWindow.Mode must be OFF or FLEXIBLE.")
    when = fire_time(params.get("ScheduleExpression", ""), params.get("ScheduleExpressionTimezone"))
    target = params.get("Target") or {}
    role = _role(target.get("RoleArn", ""))
    if role is None or not trusts_scheduler(role):
        raise Invalid(TRUST_MESSAGE)
    return when


def arm(group: str, name: str, when: float, target: dict[str, Any], delete_after: bool) -> None:
    """Fire at `when` on the scaled clock (counted from now)."""
    delay = max(0.0, when - time.time()) * state.settings.minute_seconds / 60.0
    timer = threading.Timer(delay, fire, args=(group, name, target, delete_after))
    timer.daemon = True
    timer.start()
    log.info("scheduler: %s/%s fires in %.2f s (at %s)", group, name, delay,
             time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)))


def fire(group: str, name: str, target: dict[str, Any], delete_after: bool) -> None:
    from . import awslambda, iam

    found = backend().schedule_groups.get(group)
    if found is None or name not in found.schedules:
        log.info("scheduler: %s/%s was deleted before its time: not fired", group, name)
        return
    record = {"group": group, "name": name, "target": target.get("Arn"), "time": time.time(),
              "input": target.get("Input"), "status": None}
    arn = target.get("Arn", "")
    role = target.get("RoleArn", "")
    decision = iam.evaluate(iam._documents(role), "lambda:InvokeFunction", arn,
                            {"aws:PrincipalArn": role, "aws:PrincipalAccount": state.ACCOUNT_ID})
    if not decision.allowed:
        record["status"] = f"AccessDenied: {role} may not lambda:InvokeFunction {arn}"
    else:
        try:
            awslambda.invoke(arn, (target.get("Input") or "{}").encode(), "Event")
            record["status"] = "invoked"
        except Exception as err:  # noqa: BLE001 - a gone target fails the schedule, as on AWS
            record["status"] = f"failed: {err}"
    with _lock:
        _fired.append(record)
    if delete_after:
        try:
            found.delete_schedule(name)
        except Exception:  # noqa: BLE001 - deleted meanwhile
            pass
    log.info("scheduler: %s/%s fired: %s", group, name, record["status"])


def fired() -> list[dict[str, Any]]:
    with _lock:
        return list(_fired)


def reset() -> None:
    with _lock:
        _fired.clear()


def patch() -> None:
    from moto.scheduler.responses import EventBridgeSchedulerResponse

    original = EventBridgeSchedulerResponse.create_schedule

    def create_schedule(self: Any) -> str:
        name = self.uri.split("?")[0].split("/")[-1]
        params = json.loads(self.body or "{}")
        when = check(name, params)
        answer = original(self)
        if when is not None:
            arm(params.get("GroupName") or "default", name, when, params.get("Target") or {},
                params.get("ActionAfterCompletion") == "DELETE")
        return answer

    EventBridgeSchedulerResponse.create_schedule = create_schedule
