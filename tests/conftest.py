"""Fixtures for the integration tests: the local AWS emulator, `cargo lambda watch`
serving the rollgate functions and the example app, deployed from infra/template.yaml.
Helpers and names the tests share are in tests/support/helpers.py.

Each session starts its own emulator and watch process on free loopback ports and
stops both at the end, so the suite leaves no process behind."""

from __future__ import annotations

import os

import pytest

from support.helpers import (LEDGER_TABLE, LOG_DIR, POLICY_PREFIX, POST_HOOK_FUNCTION, POST_HOOK_MAX_RUN_SECONDS,
                             REDRIVE_ALLOW, TOPIC_ARN, LocalAws, bootstrap, topic_inbox)

@pytest.fixture(autouse=True)
def _name_the_test_for_the_iam_record(request):
    """In the IAM mutation run (infra/local/iam_mutation.py), each authorisation is
    recorded with the test that was running."""
    if os.environ.get("ROLLGATE_EMU_IAM_RECORD"):
        for world in list(LocalAws.live):
            world.tell_test(request.node.nodeid)
    yield


@pytest.fixture(scope="session")
def stack():
    """The emulator and `cargo lambda watch` (see infra/local/harness.py), bootstrapped
    with the account-wide resources every test uses."""
    env = {"ROLLGATE_TOPIC_ARN": TOPIC_ARN, "ROLLGATE_POLICY_PREFIX": POLICY_PREFIX,
           "ROLLGATE_SELF_FUNCTION": POST_HOOK_FUNCTION, "ROLLGATE_MAX_RUN_SECONDS": POST_HOOK_MAX_RUN_SECONDS,
           "ROLLGATE_LEDGER_TABLE": LEDGER_TABLE,
           # dlq-redrive touches only these (tests/test_dlq_redrive.py names its queues so).
           "ROLLGATE_REDRIVE_ALLOW": REDRIVE_ALLOW}
    with LocalAws(env=env, minute_seconds=0.2, hook_timeout_seconds=120, log_dir=LOG_DIR) as aws:
        bootstrap(aws)
        yield aws


@pytest.fixture(scope="session")
def decisions(stack):
    """A reader of the decision topic: `read(deployment_id, timeout, component)` is the
    first decision announced for the deployment (by `component`, if given)."""
    find = topic_inbox(stack, "rollgate-decisions-test")

    def read(deployment_id: str, timeout: float = 30, component: str | None = None) -> dict:
        want = {"deployment": deployment_id, **({"component": component} if component else {})}
        return find(want, timeout)

    return read
