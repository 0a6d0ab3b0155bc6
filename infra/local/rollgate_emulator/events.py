"""CodeDeploy state-change notifications on moto's default EventBridge bus."""

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
