"""Dry run (the stack's DryRun parameter, ROLLGATE_DRY_RUN=true): alarm-rollback decides
and announces exactly what it would do, and changes nothing: no StopDeployment, no
UpdateAlias, no claim in the ledger."""

import json
import uuid

import pytest

from support.helpers import LOG_DIR, alias_version, bootstrap, make_app, wait_deployment
from harness import LocalAws, wait_for
from test_alarm_rollback import (  # noqa: F401 - `rb` is a fixture used by name
    alarm_on, alias_updates, attrs, deploy, fire, ledger_deployment, ledger_items, rb, released,
)


@pytest.fixture(scope="module")
def stack():
    """Its own emulator and functions: the dry-run switch is the function's environment."""
    from support import helpers
    env = {"ROLLGATE_TOPIC_ARN": helpers.TOPIC_ARN, "ROLLGATE_POLICY_PREFIX": helpers.POLICY_PREFIX,
           "ROLLGATE_LEDGER_TABLE": helpers.LEDGER_TABLE, "ROLLGATE_DRY_RUN": "true"}
    with LocalAws(env=env, minute_seconds=0.2, hook_timeout_seconds=120, log_dir=LOG_DIR / "dry-run") as aws:
        bootstrap(aws)
        yield aws


def test_dry_run_announces_the_rollback_and_changes_nothing(stack, rb):
    app = make_app(stack)
    released(stack, app, ended_minutes_ago=10)
    fire(stack, alarm_on(stack, app))
    msg = rb(app.name)[0]
    a = attrs(msg)
    assert a["action"] == "rollback" and a["dry_run"] == "true", a
    reason = json.loads(msg["Message"])["reason"]
    assert reason.startswith("dry run: would point") and "back from version 2 to 1" in reason, reason
    assert alias_version(stack, app) == "2"
    assert alias_updates(stack, app) == []
    assert ledger_items(stack, app, "rb#") == [] and ledger_items(stack, app, "quarantine#") == []


def test_dry_run_leaves_a_deployment_in_flight_running(stack, rb):
    cd = stack.client("codedeploy")
    config = f"dry-canary-{uuid.uuid4().hex[:6]}"
    # 10% for 100 "minutes" (20 s at 0.2 s per minute): the alarm surely lands mid-canary,
    # after the ledger has the deployment in progress (a loaded machine is slow to get there).
    cd.create_deployment_config(deploymentConfigName=config, computePlatform="Lambda", trafficRoutingConfig={
        "type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 100}})
    app = make_app(stack, config=config)
    dep = deploy(stack, app)
    ledger_deployment(stack, app, "InProgress")
    lam = stack.client("lambda")
    wait_for(lambda: lam.get_alias(FunctionName=app.name, Name="live").get("RoutingConfig"), 20, "the canary")
    fire(stack, alarm_on(stack, app))
    msg = rb(app.name)[0]
    assert attrs(msg)["action"] == "stop_deployment", attrs(msg)
    assert json.loads(msg["Message"])["reason"].startswith(f"dry run: would stop deployment {dep}")
    info = wait_deployment(stack, dep)
    assert info["status"] == "Succeeded", info
    assert alias_version(stack, app) == "2"
