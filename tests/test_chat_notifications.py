"""Chat cards end to end: the stack deployed with ChatNotifications=true has a chat topic,
every function is given it (ROLLGATE_CHAT_TOPIC_ARN, from the template) and may publish on
it (its role's PublishChatCards statement, which the local AWS enforces), and real
decisions (gates, a rollback, a rollout step, a redrive) arrive on a queue subscribed to
it as cards that schema/chat-notification.schema.json, AWS's format (its $comment says
what was read on AWS's page and what on copies of it), accepts. The chat service drops a message that is not in the format without an
error: the schema check is what would notice.

Also: the decision topic's messages are the decision's JSON as before; a card that cannot
be published changes nothing else; without the parameter there is no chat topic and
nothing is published as a card."""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path

import pytest
import requests
from jsonschema import Draft202012Validator

from support import helpers
from support.helpers import (ACCOUNT, HOOK_FUNCTION, LOG_DIR, POLICY_PREFIX, POST_HOOK_FUNCTION, REGION, TOPIC_ARN,
                             appspec, bootstrap, deploy, make_app, topic_inbox, wait_deployment)
from harness import LocalAws, wait_for
from test_alarm_rollback import alarm_on, fire, released
from test_post_traffic import policy
from test_pre_traffic import SMOKE

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "schema" / "chat-notification.schema.json").read_text())
CHAT_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:rollgate-chat"


def validator() -> Draft202012Validator:
    Draft202012Validator.check_schema(SCHEMA)
    return Draft202012Validator(SCHEMA)


def problems(card: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator().iter_errors(card)]


class Inbox:
    """Every message published on `topic`, read through a subscribed queue; cards are
    checked against the schema as they arrive."""

    def __init__(self, s: LocalAws, topic: str, name: str) -> None:
        self.sqs = s.client("sqs")
        self.url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        self.seen: list[dict] = []

    def poll(self) -> None:
        for m in self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=1).get("Messages", []):
            self.seen.append(json.loads(m["Body"]))
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])

    def matching(self, attrs: dict) -> list[dict]:
        return [e for e in self.seen
                if all(e.get("MessageAttributes", {}).get(k, {}).get("Value") == v for k, v in attrs.items())]

    def card(self, timeout: float = 40, **attrs: str) -> dict:
        """The first card whose message attributes include `attrs`, valid by the schema."""
        def look():
            self.poll()
            return self.matching(attrs)
        envelope = wait_for(look, timeout, f"a chat card with {attrs}")[0]
        card = json.loads(envelope["Message"])
        assert problems(card) == [], (problems(card), card)
        return card


@pytest.fixture(scope="module")
def world():
    # ROLLGATE_CHAT_TOPIC_ARN is not given here: each function gets it from the environment
    # the template sets for it (infra/local/function_runner.py), as on Lambda.
    env = {"ROLLGATE_TOPIC_ARN": TOPIC_ARN, "ROLLGATE_POLICY_PREFIX": POLICY_PREFIX,
           "ROLLGATE_SELF_FUNCTION": POST_HOOK_FUNCTION,
           "ROLLGATE_MAX_RUN_SECONDS": helpers.POST_HOOK_MAX_RUN_SECONDS,
           "ROLLGATE_LEDGER_TABLE": helpers.LEDGER_TABLE,
           # The stack's own queues too: the redrive below empties one of its DLQs.
           "ROLLGATE_REDRIVE_ALLOW": f"arn:aws:sqs:{REGION}:{ACCOUNT}:rollgate-*,{helpers.REDRIVE_ALLOW}"}
    with LocalAws(env=env, minute_seconds=0.2, hook_timeout_seconds=120, log_dir=LOG_DIR / "chat") as aws:
        bootstrap(aws, {"ChatNotifications": "true"})
        aws.cards = Inbox(aws, CHAT_TOPIC, "chat-cards")
        aws.decisions = topic_inbox(aws, "chat-decisions")
        yield aws


def lines(card: dict) -> str:
    return card["content"]["description"]


def test_the_stack_has_a_chat_topic_and_gives_it_to_every_function(world):
    topics = [t["TopicArn"] for t in world.client("sns").list_topics()["Topics"]]
    assert CHAT_TOPIC in topics and TOPIC_ARN in topics
    lam = world.client("lambda")
    for name in helpers.STACK_FUNCTIONS.values():
        env = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
        assert env["ROLLGATE_CHAT_TOPIC_ARN"] == CHAT_TOPIC, name


def test_both_gates_send_a_card_each_in_the_releases_thread(world):
    app = make_app(world, policy=policy(on_no_data="pass", bake_minutes=0.02))
    dep = deploy(world, app, appspec(app, hook=HOOK_FUNCTION, after_hook=POST_HOOK_FUNCTION))
    info = wait_deployment(world, dep, timeout=90)
    assert info["status"] == "Succeeded", info.get("errorInformation")
    pre = world.cards.card(deployment=dep, component="pre-traffic-hook")
    post = world.cards.card(deployment=dep, component="post-traffic-hook")
    assert pre["content"]["title"] == f"✅ pre-traffic gate passed: {app.name}:live, version 2"
    assert post["content"]["title"] == f"✅ post-traffic gate passed: {app.name}:live, version 2"
    for card in (pre, post):
        assert (card["version"], card["source"], card["content"]["textType"]) == ("1.0", "custom", "client-markdown")
        assert card["metadata"]["threadId"] == f"rollgate-{dep}"
        assert f"*Deployment:* `{dep}`" in lines(card) and "*Versions:* 1 → 2" in lines(card)
        assert f"`rollgate status {app.name}`" in " ".join(card["content"]["nextSteps"])
        assert card["metadata"]["relatedResources"] == [
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{app.name}:live"]
    # The decision topic still carries the decision itself, not a card.
    body = json.loads(world.decisions({"deployment": dep, "component": "pre-traffic-hook"})["Message"])
    assert body["verdict"] == "Succeeded" and body["checks"] and "content" not in body


def test_a_failed_smoke_test_card_shows_the_check_that_failed(world):
    app = make_app(world, v2="example-app-broken", policy=SMOKE)
    dep = deploy(world, app)
    assert wait_deployment(world, dep)["status"] == "Failed"
    card = world.cards.card(deployment=dep, component="pre-traffic-hook")
    assert card["content"]["title"] == f"🛑 pre-traffic gate failed: {app.name}:live, version 2"
    assert "• ❌ `smoke[health].function_error` expected `none`" in lines(card), lines(card)
    assert card["content"]["nextSteps"][0].startswith("No traffic reached version 2")
    assert "failed" in card["content"]["keywords"]
    assert card["metadata"]["eventType"] == "rollgate-pre-traffic-hook-failed"


def test_a_rollback_arrives_as_a_card_in_the_releases_thread(world):
    app = make_app(world)
    item = released(world, app, ended_minutes_ago=0)
    alarm = alarm_on(world, app)
    fire(world, alarm)
    card = world.cards.card(component="alarm-rollback", function=app.name, action="rollback")
    assert card["content"]["title"] == f"⏪ rolled {app.name}:live back from version 2 to 1"
    assert f"*Alarm:* `{alarm}`" in lines(card) and "*Versions:* bad 2, last good 1" in lines(card)
    assert card["content"]["nextSteps"][0].startswith("Version 2 is quarantined")
    assert card["metadata"]["threadId"] == f"rollgate-{item['deployment_id']['S']}"
    assert card["metadata"]["additionalContext"]["alarm"] == alarm


def test_a_rollout_step_arrives_as_a_card(world):
    app = make_app(world)
    answer = world.client("lambda").invoke(FunctionName=helpers.STACK_FUNCTIONS["rollout"], Payload=json.dumps({
        "action": "start", "function": app.name, "version": "2", "requester": "chat-test",
        "steps": [{"weight": 10, "hold": "1d"}, {"weight": 100}]}).encode())
    out = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, out
    card = world.cards.card(component="rollout", function=app.name)
    title = card["content"]["title"]
    assert title.startswith(f"🚦 rollout of {app.name}:live to version 2: "), title
    assert title.endswith("(running, 10 % on it)"), title
    assert card["metadata"]["threadId"] == f"rollgate-{out['rollout']['id']}"
    assert card["metadata"]["additionalContext"]["weight"] == "10"


def test_a_redrive_arrives_as_a_card_without_any_message_body(world):
    sqs = world.client("sqs")
    dlq = sqs.get_queue_url(QueueName="rollgate-rollout-dlq")["QueueUrl"]
    out = sqs.create_queue(QueueName=f"redrive-chat-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"card": "4111-1111-1111-1111", "n": i}))
    answer = world.client("lambda").invoke(FunctionName=helpers.STACK_FUNCTIONS["dlq-redrive"],
                                           Payload=json.dumps({"source": dlq, "destination": out}).encode())
    report = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, report
    assert report["moved"] == 3, report
    card = world.cards.card(component="dlq-redrive", source=report["source"])
    assert card["content"]["title"] == f"📬 redrive of {report['source']}: 3 moved, 0 failed"
    assert "*Moved:* 3 · *copied:* 0 · *failed:* 0 · *remaining:* " in lines(card), lines(card)
    assert "4111" not in json.dumps(card)
    assert report["source"] in card["metadata"]["relatedResources"]


def test_a_card_that_cannot_be_published_changes_nothing_else(world):
    faults = f"{world.endpoint}/_rollgate/faults"
    requests.post(faults, json={"operation": "Publish", "target": "rollgate-chat", "fraction": 1.0,
                                "code": "InternalError", "status": 500, "service": "sns"},
                  timeout=5).raise_for_status()
    try:
        app = make_app(world)
        dep = deploy(world, app)
        info = wait_deployment(world, dep)
        # The gate decided, reported once and announced as if there were no chat topic.
        assert info["status"] == "Succeeded", info.get("errorInformation")
        body = json.loads(world.decisions({"deployment": dep, "component": "pre-traffic-hook"})["Message"])
        assert body["verdict"] == "Succeeded"
        fired = sum(f["fired"] for f in requests.get(faults, timeout=5).json())
        assert fired >= 1, "the card was never tried"
    finally:
        requests.delete(faults, timeout=5).raise_for_status()
    hooks = [h for h in world.control(f"deployments/{dep}/hooks") if h["lifecycleEvent"] == "BeforeAllowTraffic"]
    assert [h["reportCount"] for h in hooks] == [1], hooks
    time.sleep(3)
    world.cards.poll()
    assert world.cards.matching({"deployment": dep}) == []
    log = (LOG_DIR / "chat" / "watch.log").read_text(errors="replace")
    assert "ROLLGATE_CHAT_TOPIC_ARN: the chat card was not published" in log


def test_the_schema_refuses_a_broken_card(world):
    """The check above can fail: each way a card can break the documented format is
    refused (a received card, then changed)."""
    world.cards.poll()
    if not world.cards.seen:  # run on its own: make a decision first
        app = make_app(world)
        world.cards.card(deployment=deploy(world, app), component="pre-traffic-hook")
    good = json.loads(world.cards.seen[0]["Message"])
    assert problems(good) == []
    breaks = {
        "version": lambda c: c.update(version="2.0"),
        "source": lambda c: c.update(source="rollgate"),
        "no content": lambda c: c.pop("content"),
        "no description": lambda c: c["content"].pop("description"),
        "text type": lambda c: c["content"].update(textType="markdown"),
        "long title": lambda c: c["content"].update(title="t" * 251),
        "long description": lambda c: c["content"].update(description="d" * 8001),
        "long next step": lambda c: c["content"].update(nextSteps=["s" * 351]),
        "long keyword": lambda c: c["content"].update(keywords=["k" * 76]),
        "unknown field": lambda c: c["content"].update(body="x"),
        "context value": lambda c: c["metadata"]["additionalContext"].update(n=1),
        "custom actions flag": lambda c: c["metadata"].update(enableCustomActions="yes"),
    }
    for what, breaking in breaks.items():
        card = copy.deepcopy(good)
        breaking(card)
        assert problems(card), f"{what}: accepted"


def test_without_the_parameter_there_is_no_chat_topic_and_no_card(stack, decisions):
    """The shared stack is deployed with the defaults: no chat topic, no variable, no
    grant. A topic of that name made by hand receives nothing when decisions are made."""
    sns = stack.client("sns")
    assert not [t for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":rollgate-chat")]
    lam, iam = stack.client("lambda"), stack.client("iam")
    for name in helpers.STACK_FUNCTIONS.values():
        config = lam.get_function_configuration(FunctionName=name)
        assert "ROLLGATE_CHAT_TOPIC_ARN" not in config["Environment"]["Variables"], name
        role = config["Role"].rsplit("/", 1)[-1]
        for policy_name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            doc = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
            assert "PublishChatCards" not in json.dumps(doc), role
    sns.create_topic(Name="rollgate-chat")
    inbox = Inbox(stack, f"arn:aws:sns:{REGION}:{ACCOUNT}:rollgate-chat", "no-chat-cards")
    try:
        app = make_app(stack)
        dep = deploy(stack, app)
        assert wait_deployment(stack, dep)["status"] == "Succeeded"
        assert json.loads(decisions(dep)["Message"])["verdict"] == "Succeeded"
        time.sleep(3)
        inbox.poll()
        assert inbox.seen == []
    finally:
        sns.delete_topic(TopicArn=f"arn:aws:sns:{REGION}:{ACCOUNT}:rollgate-chat")
