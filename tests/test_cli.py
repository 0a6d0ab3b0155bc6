"""The `rollgate` CLI against the local AWS: every command, `--json` read back against
what the services say, manual rollback and freeze going through alarm-rollback (exactly
once, announced), a redrive that needs several runs, and the errors and exit codes a
script relies on (0 done, 1 failed, 2 bad usage, 3 handled but nothing changed).

The CLI runs as a person would: a session of a role that holds the stack's operators'
managed policies and nothing else (the local AWS authorises each of its calls against
them, rollgate_emulator/iam.py). Only the tests' own setup and checks use the
administrator key (`stack.client`)."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
import subprocess
import time
import uuid

import pytest
from harness import wait_for
from support.helpers import (LEDGER_TABLE, REGION, ROOT, STACK_NAME, alias_version, make_app,
                             topic_inbox)
from test_alarm_rollback import alarm_on, fire, ledger_items, released
from test_dlq_redrive import depth, drain, fill, queue_pair
from test_rollout import policy as rollout_policy
from traffic import version_dimensions

CLI = ROOT / "target" / "debug" / "rollgate"


def operator_session(stack, policies: tuple[str, ...]) -> dict:
    """A session of a role that holds the given operators' managed policies of the stack
    (outputs `<Policy>Arn`) and nothing else, as a person on call would have: what
    `/_rollgate/credentials?role=` gives (the role is made with the administrator key).
    The IAM mutation run drops a policy's statements by the policy's own name, whatever
    role holds it."""
    outputs = {o["OutputKey"]: o["OutputValue"] for o in
               stack.client("cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"][0]["Outputs"]}
    iam = stack.client("iam")
    name = f"{STACK_NAME}-operator-{uuid.uuid4().hex[:8]}"
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}]}))
    for policy in policies:
        iam.attach_role_policy(RoleName=name, PolicyArn=outputs[f"{policy}Arn"])
    return stack.control(f"credentials?role={name}")


def cli_as(stack, key: dict):
    """Run the CLI as an operator would, against the local AWS: endpoint, region and
    credentials from the environment (a role session's key), the stack by name."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=stack.endpoint, AWS_REGION=REGION, AWS_ACCESS_KEY_ID=key["AccessKeyId"],
               AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"], AWS_SESSION_TOKEN=key["Token"],
               ROLLGATE_STACK=STACK_NAME, ROLLGATE_REQUESTER="ci-operator")

    def run(*args: str, code: int | None = 0, timeout: float = 300) -> subprocess.CompletedProcess:
        p = subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=timeout)
        if code is not None:
            assert p.returncode == code, f"rollgate {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p

    return run


@pytest.fixture(scope="module")
def rollgate(stack):
    """The CLI of a person on call: both operators' policies, nothing more."""
    return cli_as(stack, operator_session(stack, ("OperatorsReadPolicy", "OperatorsActPolicy")))


@pytest.fixture(scope="module")
def announced(stack):
    return topic_inbox(stack, "rollgate-cli-decisions", {"component": ["alarm-rollback"]})


def as_json(p: subprocess.CompletedProcess):
    return json.loads(p.stdout)


def test_status_and_history_say_what_the_services_and_the_ledger_hold(stack, rollgate):
    app = make_app(stack)
    released(stack, app, ended_minutes_ago=5)
    text = rollgate("status", app.name).stdout
    assert app.name in text and "live" in text and " 2 " in text, text
    assert "version 1 -> 2 Succeeded" in text, text
    # --json: the same facts, read back against Lambda and the ledger.
    [s] = as_json(rollgate("status", f"{app.name}:live", "--json"))
    assert s["version"] == alias_version(stack, app) == "2" and s["weights"] == {}
    # (The alias's creation may be in the ledger too, from CloudTrail: an older release.)
    dep = next(i for i in ledger_items(stack, app, "dep#") if i["origin"]["S"] == "codedeploy")
    assert dep["deployment_id"]["S"] in s["latest_release"]["summary"]
    assert s["frozen"] is None
    # The account-wide status lists this alias among the others.
    every = as_json(rollgate("status", "--json"))
    assert any(e["function"] == app.name and e["alias"] == "live" for e in every)
    history = as_json(rollgate("history", app.name, "--json"))
    # The rollout function's shift judge watches every CodeDeploy deployment and may have
    # written its rows (a round, its end) by now: they are this deployment's, nothing else.
    shifts = [h for h in history if h["kind"] == "shift"]
    assert all(f"shift of {dep['deployment_id']['S']}" in h["summary"] for h in shifts), shifts
    releases = [h for h in history if h["kind"] != "shift"]
    assert {h["kind"] for h in releases} == {"release"} and releases[0]["alias"] == "live"
    assert dep["deployment_id"]["S"] in releases[0]["summary"], "newest first"
    assert [h["at_ms"] for h in history] == sorted((h["at_ms"] for h in history), reverse=True)


def test_a_manual_rollback_outside_the_window_acts_once_and_is_announced(stack, rollgate, announced):
    app = make_app(stack)
    released(stack, app, ended_minutes_ago=24 * 60)
    p = rollgate("rollback", f"{app.name}:live", "--reason", "customers report errors", "--json")
    out = as_json(p)
    [o] = out["outcomes"]
    assert o["action"] == "rollback" and o["acted"] is True, o
    assert alias_version(stack, app) == "1"
    assert "manual rollback by ci-operator (reason: customers report errors)" in o["reason"]
    msg = announced({"function": app.name, "action": "rollback"})
    assert json.loads(msg["Message"])["reason"] == o["reason"]
    # Again: the alias is already back; nothing is done, and the exit code says so.
    again = rollgate("rollback", f"{app.name}:live", "--reason", "again", code=3)
    assert "already rolled back" in again.stdout and "nothing was changed" in again.stderr
    claims = ledger_items(stack, app, "rb#")
    assert len(claims) == 1 and claims[0]["event"]["S"].startswith("manual:cli-")
    requests = ledger_items(stack, app, "req#")
    assert sorted(r["acted"]["BOOL"] for r in requests) == [False, True]
    kinds = [h["kind"] for h in as_json(rollgate("history", app.name, "--json"))]
    assert kinds[:1] == ["request"] and {"rollback", "quarantine", "release"} <= set(kinds), kinds


def test_report_gives_delivery_metrics_and_a_deployment_page_a_browser_shows(stack, rollgate):
    from support.browser import open_page

    good, bad = make_app(stack), make_app(stack)
    released(stack, good, ended_minutes_ago=5)
    item = released(stack, bad, ended_minutes_ago=5)
    dep = item["deployment_id"]["S"]
    # Five minutes of both versions' traffic before the rollback: the new one fails a third.
    cw, now = stack.client("cloudwatch"), datetime.now(timezone.utc)
    for minute in range(5, 0, -1):
        at = now - timedelta(minutes=minute)
        for version, errors, latency in (("1", 0, 50.0), ("2", 10, 120.0)):
            dims = version_dimensions(bad.name, "live", version)
            cw.put_metric_data(Namespace="AWS/Lambda", MetricData=[
                {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": at, "Value": 30},
                {"MetricName": "Errors", "Dimensions": dims, "Timestamp": at, "Value": errors},
                {"MetricName": "Duration", "Dimensions": dims, "Timestamp": at, "Unit": "Milliseconds",
                 "Values": [latency] * 30}])
    rollgate("rollback", f"{bad.name}:live", "--reason", "errors in checkout")
    # Delivery metrics: the rolled-back release is a change failure and a rollback, with
    # one time-to-restore sample; the good function has neither.
    # (Creating the alias is a release too, when CloudTrail's record of it has arrived.)
    for app, failed in ((good, 0), (bad, 1)):
        f = as_json(rollgate("report", "--function", app.name, "--json"))["account"]
        releases = len([i for i in ledger_items(stack, app, "dep#") if i["kind"]["S"] == "release"])
        assert f["counts"]["releases"] == releases >= 1, (f, releases)
        assert f["change_failure_rate"]["count"] == f["rollback_rate"]["count"] == failed, f
        assert f["time_to_restore"]["samples"] == failed, f["time_to_restore"]
    text = rollgate("report").stdout
    assert "(account)" in text and "change failure rate:" in text, text
    # The page of the rolled-back deployment, as a browser renders it.
    out = ROOT / "target" / "report-page"
    out.mkdir(parents=True, exist_ok=True)
    html = out / f"cli-{bad.name}.html"
    data = as_json(rollgate("report", dep, "--html", str(html), "--json"))
    assert data["deployment_id"] == dep and data["decision"]["action"] == "rollback"
    view = open_page(html, out / f"cli-{bad.name}.png").summary
    assert view["deploymentId"] == dep
    assert "alias back on version 1" in view["decision"]["reason"], view["decision"]
    titles = [e["title"] for e in view["timeline"]]
    asked = titles.index("manual rollback by ci-operator: requested")
    assert titles.index("alias back on version 1") > asked > titles.index("deployment created (release, codedeploy)"), titles
    charts = {c["metric"]: c for c in view["charts"]}
    for metric in ("error rate", "p99 latency"):
        chart = charts[metric]
        assert len(chart["series"]) == 2 and all(p["length"] > 0 and p["points"] >= 4 for p in chart["series"]), chart
    errors = {p[1] for p in data["series"][0]["new"]}
    assert errors == {100 * 10 / 30}, data["series"][0]
    assert not view["injected"] and view["elements"]["script"] == 0
    missing = rollgate("report", "d-NOSUCH1", "--html", str(out / "none.html"), code=3)
    assert "no deployment d-NOSUCH1" in missing.stderr


def test_a_freeze_holds_an_alarm_back_and_the_unfreeze_lets_the_next_one_act(stack, rollgate, announced):
    app = make_app(stack)
    released(stack, app, ended_minutes_ago=5)
    out = as_json(rollgate("freeze", app.name, "--for", "2h", "--reason", "incident 7", "--json"))
    [o] = out["outcomes"]
    assert o["acted"] is True and "frozen until" in o["reason"], o
    [s] = as_json(rollgate("status", f"{app.name}:live", "--json"))
    assert s["frozen"].startswith("until ") and "ci-operator" in s["frozen"]
    name = alarm_on(stack, app)
    fire(stack, name)
    held = announced({"function": app.name, "action": "rollback"})
    reason = json.loads(held["Message"])["reason"]
    assert reason.startswith("would roll back (frozen until ") and "incident 7" in reason, reason
    assert alias_version(stack, app) == "2" and not ledger_items(stack, app, "rb#")
    rollgate("unfreeze", app.name, "--reason", "incident over")
    cw = stack.client("cloudwatch")
    cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="recovered")
    time.sleep(1.1)  # a new transition, a new state timestamp
    fire(stack, name)
    wait_for(lambda: alias_version(stack, app) == "1", 40, "the alarm after the unfreeze to roll back")
    again = rollgate("unfreeze", app.name, "--reason", "twice", code=3)
    assert "was not frozen" in again.stdout


def test_a_redrive_runs_its_continuations_to_the_end_with_progress(stack, rollgate):
    src, dlq = queue_pair(stack)
    fill(stack, dlq, 150)
    p = rollgate("redrive", dlq, "--rate", "100", "--max-run-seconds", "1", "--json")
    runs = [line for line in p.stderr.splitlines() if "moved" in line and "remaining" in line]
    assert len(runs) >= 2, p.stderr
    assert runs[-1].startswith("[" + "#" * 30 + "] moved 150 / remaining 0"), runs
    out = as_json(p)
    assert out["runs"] == len(runs) and out["report"]["totals"]["moved"] == 150
    assert depth(stack, dlq) == 0
    assert len({json.loads(m["Body"])["n"] for m in drain(stack, src)}) == 150
    text = rollgate("redrive", dlq, "--dry-run").stdout
    assert "would_move" in text and "runs" in text


def test_rollout_commands_drive_the_rollout_function(stack, rollgate):
    app = make_app(stack, policy=rollout_policy(steps=[{"weight": 10, "hold": "1d"}, {"weight": 100}]))
    started = rollgate("rollout", "start", app.name, "--version", "2", "--reason", "canary").stdout
    assert "version 1 -> 2, running at step 1 of 2" in started, started
    st = as_json(rollgate("rollout", "status", app.name, "--json"))["rollout"]
    assert st["status"] == "running" and st["requester"] == "ci-operator"
    assert rollgate("rollout", "pause", app.name).stdout.count("paused") >= 1
    assert "running" in rollgate("rollout", "resume", app.name).stdout
    aborted = as_json(rollgate("rollout", "abort", app.name, "--reason", "enough", "--json"))["rollout"]
    assert aborted["status"] == "aborted" and alias_version(stack, app) == "1"
    failed = rollgate("rollout", "promote", app.name, code=1)
    assert "InvalidRequest" in failed.stderr, failed.stderr
    [s] = as_json(rollgate("status", f"{app.name}:live", "--json"))
    assert "aborted" in s["rollout"]["summary"]
    # The rollout's page: each change on the timeline, its pre-traffic gate's checks
    # with their values, and what it came to.
    page = as_json(rollgate("report", aborted["id"], "--json"))
    changes = [e["title"].split(":")[0] for e in page["timeline"] if e["kind"] == "rollout"]
    assert changes == [f"rollout {a} by ci-operator" for a in ("start", "pause", "resume", "abort")], page
    gate = [c for c in page["checks"] if c["component"] == "rollout (pre-traffic gate)"]
    assert gate and all(c["check"]["outcome"] == "pass" for c in gate), page["checks"]
    assert any(c["check"]["actual"] is not None for c in gate), gate
    assert page["decision"]["action"] == "aborted" and "enough" in page["decision"]["reason"], page["decision"]


def test_errors_name_the_problem_and_exit_as_documented(stack, rollgate):
    bad = rollgate("freeze", "orders:live", "--for", "2 hours", "--reason", "x", code=2)
    assert "duration" in bad.stderr
    assert "FUNCTION or FUNCTION:ALIAS" in rollgate("rollback", "a:b:c", "--reason", "x", code=2).stderr
    missing = f"nosuch-{uuid.uuid4().hex[:6]}"
    # A function rollgate never recorded: alarm-rollback says so; nothing changes.
    nothing = rollgate("rollback", missing, "--reason", "x", code=3)
    assert "no alias of" in nothing.stdout
    # A freeze of an alias that does not exist is refused, not recorded.
    assert "alias does not exist" in rollgate("freeze", f"{missing}:live", "--for", "1h", "--reason", "x",
                                              code=3).stdout
    # alarm-rollback refuses a malformed request as bad input (errorType), exit 1.
    toolong = rollgate("rollback", "orders:live", "--reason", "r" * 300, code=1)
    assert "InvalidEvent" in toolong.stderr and "`reason` must be 1 to 256" in toolong.stderr
    # Another stack: its functions and ledger are outside this stack's policies, so IAM
    # refuses (before Lambda could say there is no such function); the error says which
    # function, and which policy of that stack would allow it.
    other = rollgate("--stack", "nosuch", "rollback", "orders:live", "--reason", "x", code=1)
    assert "function:nosuch-alarm-rollback:$LATEST" in other.stderr, other.stderr
    assert "the managed policy OperatorsActPolicy of stack nosuch" in other.stderr, other.stderr
    assert rollgate("--stack", "nosuch", "status", code=1).stderr.startswith("rollgate: ")
    assert rollgate("bogus", code=2).returncode == 2


def test_each_policy_alone_allows_only_its_commands_and_a_refusal_says_what_is_missing(stack):
    """The read policy alone: status and history work; a rollback is refused by IAM
    before rollgate is asked (the alias does not move), exit code 1, and the CLI prints
    AWS's answer (the action, the resource) and which of the stack's policies allows it.
    The act policy alone: the same rollback acts, and status is refused in turn."""
    reader = cli_as(stack, operator_session(stack, ("OperatorsReadPolicy",)))
    actor = cli_as(stack, operator_session(stack, ("OperatorsActPolicy",)))
    app = make_app(stack)
    released(stack, app, ended_minutes_ago=24 * 60)
    [s] = as_json(reader("status", f"{app.name}:live", "--json"))
    assert s["version"] == "2"
    assert {h["kind"] for h in as_json(reader("history", app.name, "--json"))} == {"release"}
    refused = reader("rollback", f"{app.name}:live", "--reason", "looking only", code=1)
    first, hint = refused.stderr.splitlines()
    assert first.startswith("rollgate: lambda.Invoke failed: AccessDeniedException: User: "
                            "arn:aws:sts::123456789012:assumed-role/rollgate-operator-"), first
    assert first.endswith(f"is not authorized to perform: lambda:InvokeFunction on resource: "
                          f"arn:aws:lambda:{REGION}:123456789012:function:{STACK_NAME}-alarm-rollback:$LATEST "
                          "because no identity-based policy allows the lambda:InvokeFunction action"), first
    assert hint == (f"rollgate: IAM refused lambda.Invoke: the managed policy OperatorsActPolicy of stack "
                    f"{STACK_NAME} allows it (its ARN is the stack's output OperatorsActPolicyArn); ask for it "
                    "to be attached to your role (docs/cli.md, \"Who may do what\")"), hint
    assert refused.stdout == ""
    assert alias_version(stack, app) == "2"
    assert not ledger_items(stack, app, "req#")

    [o] = as_json(actor("rollback", f"{app.name}:live", "--reason", "on call", "--json"))["outcomes"]
    assert o["acted"] is True and alias_version(stack, app) == "1", o
    blind = actor("status", f"{app.name}:live", code=1)
    assert "is not authorized to perform: " in blind.stderr, blind.stderr
    assert "the managed policy OperatorsReadPolicy of stack" in blind.stderr, blind.stderr
