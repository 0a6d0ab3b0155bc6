"""CodeDeploy state-change notifications on moto's default EventBridge bus; PutEvents as
AWS answers it; rule targets' dead-letter queues."""

from __future__ import annotations

import json
from typing import Any

from . import state
from .state import log, records

SOURCE = "aws.codedeploy"
DETAIL_TYPE = "CodeDeploy Deployment State-change Notification"


def deployment_state_changed(deployment: Any, new_state: str) -> None:
    """Publish START/SUCCESS/FAILURE/STOP for a deployment; never raises.

    The detail carries only the fields AWS puts there (no function/versions).
    Replace `deliver` to route the event somewhere else.
    """
    app = deployment.application_name
    group = deployment.deployment_group_name
    arn = f"arn:aws:codedeploy:{state.REGION}:{state.ACCOUNT_ID}"
    entry = {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Resources": [f"{arn}:deploymentgroup:{app}/{group}", f"{arn}:application:{app}"],
        "Detail": json.dumps(
            {
                "region": state.REGION,
                "deploymentId": deployment.deployment_id,
                "instanceGroupId": deployment.deployment_group.deployment_group_id,
                "deploymentGroup": group,
                "state": new_state,
                "application": app,
            }
        ),
    }
    records.add_event({**entry, "Detail": json.loads(entry["Detail"])})
    try:
        deliver(entry)
    except Exception as err:  # a missing bus or target must not break a deployment
        log.warning("could not put %s event for %s: %s", new_state, deployment.deployment_id, err)
    log.info("event %s %s (%s/%s)", new_state, deployment.deployment_id, app, group)


def deliver(entry: dict[str, Any]) -> None:
    from moto.events.models import events_backends

    events_backends[state.ACCOUNT_ID][state.REGION].put_events([entry])


# A rule target EventBridge cannot deliver to for good (the function or queue is gone, or
# EventBridge may not call it) goes to the target's dead-letter queue when it has one
# (`DeadLetterConfig.Arn`, a standard queue), as the event itself with six String message
# attributes (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html):
# RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE, EXHAUSTED_RETRY_CONDITION and
# RETRY_ATTEMPTS. Such errors are not retried, so RETRY_ATTEMPTS is 0. Without a DLQ the
# event is dropped, as on AWS.

def error_code(err: Exception) -> str:
    text = f"{type(err).__name__} {err}"
    if "NotFound" in text or "NonExistent" in text or "does not exist" in text:
        return "NO_RESOURCE"
    if "AccessDenied" in text or "Authorization" in text:
        return "NO_PERMISSIONS"
    return "SDK_CLIENT_ERROR"


def dead_letter(rule: Any, target: dict[str, Any], body: str, err: Exception) -> bool:
    """Put the undeliverable `body` in the target's DLQ; whether there was one to take it."""
    from moto.sqs.models import sqs_backends

    dlq = (target.get("DeadLetterConfig") or {}).get("Arn")
    if not dlq:
        log.warning("rule %s: target %s failed and has no DLQ: event dropped: %s", rule.name, target["Arn"], err)
        return False
    _, _, _, region, account, queue = dlq.split(":", 5)
    attributes = {
        "RULE_ARN": rule.arn, "TARGET_ARN": target["Arn"], "ERROR_CODE": error_code(err),
        "ERROR_MESSAGE": str(err)[:1024], "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
        "RETRY_ATTEMPTS": "0",
    }
    try:
        sqs_backends[account][region].send_message(
            queue, body, message_attributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()})
    except Exception as dlq_err:  # the DLQ itself gone: dropped
        log.warning("rule %s: DLQ %s refused the event: %s", rule.name, dlq, dlq_err)
        return False
    log.info("rule %s: target %s failed (%s): event dead-lettered to %s", rule.name, target["Arn"],
             attributes["ERROR_CODE"], dlq)
    return True


# PutEvents as AWS answers it, where moto does not: an entry whose Source starts with
# "aws." is refused (ErrorCode NotAuthorizedForSourceException, "Not authorized for the
# source."): AWS services' sources are theirs alone. Injected entry faults (`entries: true`
# on PutEvents) fail their entry. Answers stay in request order. The emulator's own events
# (CodeDeploy, CloudWatch) go to the backend directly and are not held to this.

def patch() -> None:
    from moto.events.responses import EventsHandler

    from . import faults

    original = EventsHandler.put_events

    def put_events(self: Any) -> str:
        entries = self._get_param("Entries") or []
        if len(entries) > 10:
            return original(self)
        answers: list[dict[str, Any] | None] = [None] * len(entries)
        passing = []
        for i, e in enumerate(entries):
            bus = str(e.get("EventBusName") or "default").rsplit("/", 1)[-1]
            if str(e.get("Source", "")).startswith("aws."):
                answers[i] = {"ErrorCode": "NotAuthorizedForSourceException",
                              "ErrorMessage": "Not authorized for the source."}
            elif fault := faults.take("PutEvents", f"{bus} {e.get('Detail', '')}", entries=True):
                answers[i] = {"ErrorCode": fault["code"], "ErrorMessage": fault["message"]}
            else:
                passing.append(i)
        done = self.events_backend.put_events([entries[i] for i in passing]) if passing else []
        for i, answer in zip(passing, done):
            answers[i] = answer
        return json.dumps({"FailedEntryCount": sum(1 for a in answers if a and "ErrorCode" in a),
                           "Entries": answers})

    EventsHandler.put_events = put_events
