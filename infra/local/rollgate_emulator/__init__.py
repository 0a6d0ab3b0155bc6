"""Patches that turn moto into rollgate's local AWS emulator.

Import this package, call :func:`apply_patches` once, then serve moto's WSGI
application wrapped by :func:`control.wrap`.
"""

from . import alarms, awslambda, codedeploy, composite, control, dashboards, dynamodb, events, scheduler, sns, sqs, state

__all__ = ["apply_patches", "cloudwatch", "control", "state"]


def apply_patches(settings: "state.Settings") -> None:
    state.configure(settings)
    awslambda.patch()
    codedeploy.patch()
    sqs.patch()
    dynamodb.patch()
    sns.patch()
    events.patch()
    scheduler.patch()
    alarms.patch()  # after awslambda: wraps its UpdateAlias
    composite.patch()  # after alarms: wraps its Alarm.update_state
    dashboards.patch()
