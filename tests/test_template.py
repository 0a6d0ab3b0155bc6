"""House rules of the SAM templates (infra/template.yaml, infra/example-app/template.yaml),
checked on the source and on what SAM expands it to (aws-sam-translator, offline)."""

from __future__ import annotations

import functools
import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "infra" / "local"))
import cfn  # noqa: E402
from rollgate_emulator import iam as sar  # noqa: E402 - AWS's Service Authorization Reference

STACK = ROOT / "infra" / "template.yaml"
APP = ROOT / "infra" / "example-app" / "template.yaml"
TEMPLATES = [STACK, APP]


def unscopable(action: str) -> bool:
    """An action AWS's Service Authorization Reference gives no resource type: a policy
    grants it on "*" or not at all."""
    service, name = action.split(":", 1)
    priv = sar.reference()[service]["privileges"][name]
    return not any(t for t in priv["resource_types"])


@functools.cache
def source(path: Path) -> dict:
    return cfn.load(path)


@functools.cache
def expanded(path: Path, params: tuple = ()) -> dict:
    return cfn.expand_sam(source(path), dict(params))


def resources(template: dict, type_: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def props(template: dict, logical_id: str) -> dict:
    return template["Resources"][logical_id].get("Properties", {})


def resolver(template: dict, **params: str) -> cfn.Resolver:
    names = {"DecisionTopic": "arn:aws:sns:us-east-1:123456789012:rollgate-decisions",
             "ChatTopic": "arn:aws:sns:us-east-1:123456789012:rollgate-chat"}

    def ref(name: str) -> str:
        return names.get(name, f"<{name}>")

    def getatt(res: str, att: str) -> str:
        return f"<{res}.{att}>"

    return cfn.Resolver(template, params, ref=ref, getatt=getatt,
                        imports={"rollgate-PreTrafficHookName": "CodeDeployHook_rollgate-pre-traffic",
                                 "rollgate-PostTrafficHookName": "CodeDeployHook_rollgate-post-traffic"})


def unconditional(st: dict) -> dict:
    """A statement written as `!If [Condition, statement, AWS::NoValue]`: the statement."""
    return st["Fn::If"][1] if "Fn::If" in st else st


def role_statements(template: dict, role: str) -> list[dict]:
    return [unconditional(st) for st in props(template, role)["Policies"][0]["PolicyDocument"]["Statement"]]


def statements(template: dict):
    """(role, statement) for every IAM statement of every role and policy (conditional
    ones as if their condition held)."""
    for rid, res in template["Resources"].items():
        if res["Type"] == "AWS::IAM::Role":
            for policy in res["Properties"].get("Policies", []):
                for st in policy["PolicyDocument"]["Statement"]:
                    yield rid, unconditional(st)
        elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for st in res["Properties"]["PolicyDocument"]["Statement"]:
                yield rid, unconditional(st)


def as_list(v) -> list:
    return v if isinstance(v, list) else [v]


# ---------------------------------------------------------------- the loader itself

def test_loader_reads_short_form_intrinsics():
    t = cfn.loads("""
a: !Ref X
b: !GetAtt Res.Arn
c: !Sub "${AWS::StackName}-x"
d: !If [Cond, !Ref A, !Ref AWS::NoValue]
e: !Select [0, !Split [",", !ImportValue Exported]]
f: !Equals [!Ref P, ""]
g: on
h: true
""")
    assert t["a"] == {"Ref": "X"}
    assert t["b"] == {"Fn::GetAtt": ["Res", "Arn"]}
    assert t["c"] == {"Fn::Sub": "${AWS::StackName}-x"}
    assert t["d"] == {"Fn::If": ["Cond", {"Ref": "A"}, {"Ref": "AWS::NoValue"}]}
    assert t["e"] == {"Fn::Select": [0, {"Fn::Split": [",", {"Fn::ImportValue": "Exported"}]}]}
    assert t["f"] == {"Fn::Equals": [{"Ref": "P"}, ""]}
    assert t["g"] == "on" and t["h"] is True


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_templates_expand_offline(path):
    out = expanded(path)
    assert "Transform" not in out
    assert not resources(out, "AWS::Serverless::Function")


# ---------------------------------------------------------------- IAM

@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_wildcard_actions(path):
    for rid, st in statements(expanded(path)):
        for action in as_list(st.get("Action", [])):
            assert "*" not in action, f"{rid}: action {action}"
        assert "NotAction" not in st, rid


def test_resource_star_only_where_aws_allows_nothing_else():
    t = expanded(STACK)
    for rid, st in statements(t):
        if "*" in as_list(st["Resource"]):
            assert all(unscopable(a) for a in as_list(st["Action"])), f"{rid} {st.get('Sid')}"


def test_actions_without_a_resource_type_are_granted_on_star():
    """On a resource ARN such an action is never allowed: StopDeployment granted on the
    deployment groups would have left every in-flight rollback denied on AWS."""
    t = expanded(STACK)
    seen = set()
    for rid, st in statements(t):
        if st["Effect"] != "Allow" or "Action" not in st:
            continue
        for action in as_list(st["Action"]):
            if unscopable(action):
                seen.add(action)
                assert as_list(st["Resource"]) == ["*"], f"{rid} {st.get('Sid')}: {action} on {st['Resource']}"
    assert {"codedeploy:StopDeployment", "codedeploy:PutLifecycleEventHookExecutionStatus",
            "cloudwatch:GetMetricData"} <= seen


def test_every_statement_has_a_sid_and_a_comment_saying_why():
    lines = STACK.read_text().splitlines()
    sids = [i for i, line in enumerate(lines) if re.match(r"\s+- Sid: ", line)]
    queue_policy_statements = 1
    assert len(sids) == sum(1 for _ in statements(source(STACK))) + queue_policy_statements
    for i in sids:
        # A conditional statement (`- !If` / `- Condition` / `- Sid: ...`) has it above the `!If`.
        above = i - 3 if lines[i - 2].strip() == "- !If" else i - 1
        assert lines[above].strip().startswith("#"), f"no comment above line {i + 1}: {lines[i].strip()}"


def test_each_function_has_its_own_role():
    t = source(STACK)
    roles = [props(t, f)["Role"]["Fn::GetAtt"][0] for f in resources(t, "AWS::Serverless::Function")]
    assert len(roles) == len(set(roles)) == 5


def test_roles_are_scoped_to_the_account_region_and_stack():
    t = expanded(STACK)
    r = resolver(t)
    for rid, st in statements(t):
        for res in as_list(r.resolve(st["Resource"])):
            if res in ("*", "") or res.startswith("<") or res.startswith("arn:aws:sns:"):
                continue
            assert res.startswith("arn:aws:"), res
            assert ":us-east-1:123456789012:" in res, f"{rid}: {res}"


def test_redrive_role_grants_exactly_the_allow_list():
    allow = "arn:aws:sqs:us-east-1:123456789012:orders-*,arn:aws:lambda:us-east-1:123456789012:function:orders"
    for params, extra in ((("RedriveAllowList", allow),), allow.split(",")), ((), []):
        t = expanded(STACK, params)
        r = resolver(t, **dict(params))
        role = role_statements(t, "DlqRedriveRole")
        by_sid = {st["Sid"]: st for st in role}
        queues = as_list(r.resolve(by_sid["RedriveAllowedQueues"]["Resource"]))
        functions = as_list(r.resolve(by_sid["ReplayIntoAllowedFunctions"]["Resource"]))
        own_q = "arn:aws:sqs:us-east-1:123456789012:rollgate-*"
        own_f = "arn:aws:lambda:us-east-1:123456789012:function:rollgate-*"
        assert queues == [own_q, *extra]
        assert functions == [own_f, *extra]
        env = r.resolve(props(t, "DlqRedrive")["Environment"]["Variables"]["ROLLGATE_REDRIVE_ALLOW"])
        assert env.split(",") == [own_q, own_f, *extra]


def test_rollback_role_moves_aliases_only_of_the_allow_list():
    """UpdateAlias is granted on exactly the allow-list (each pattern and its qualified
    ARNs), and the function reads the same list; reading stays open to every function."""
    every = "arn:aws:lambda:us-east-1:123456789012:function:*"
    allow = "arn:aws:lambda:us-east-1:123456789012:function:orders-*,arn:aws:lambda:us-east-1:123456789012:function:pay?"
    for params, patterns in ((("RollbackAllowList", allow),), allow.split(",")), ((), [every]):
        t = expanded(STACK, params)
        r = resolver(t, **dict(params))
        role = role_statements(t, "AlarmRollbackRole")
        by_sid = {st["Sid"]: st for st in role}
        assert as_list(by_sid["RollBackAlias"]["Action"]) == ["lambda:UpdateAlias"]
        assert as_list(r.resolve(by_sid["RollBackAlias"]["Resource"])) == [*patterns, *(p + ":*" for p in patterns)]
        granted = {a for st in role for a in as_list(st["Action"])}
        assert "lambda:UpdateAlias" in granted
        assert all("lambda:UpdateAlias" not in as_list(st["Action"]) for sid, st in by_sid.items()
                   if sid != "RollBackAlias")
        assert as_list(r.resolve(by_sid["ReadFunctions"]["Resource"])) == [every, every + ":*"]
        env = r.resolve(props(t, "AlarmRollback")["Environment"]["Variables"]["ROLLGATE_ROLLBACK_ALLOW"])
        assert env.split(",") == patterns


def test_post_traffic_hook_may_invoke_only_itself():
    t = expanded(STACK)
    r = resolver(t)
    for st in role_statements(t, "PostTrafficRole"):
        if "lambda:InvokeFunction" in as_list(st["Action"]):
            assert r.resolve(st["Resource"]) == r.resolve(props(t, "PostTrafficHook")["FunctionName"]).join(
                ["arn:aws:lambda:us-east-1:123456789012:function:", ""])


# ---------------------------------------------------------------- functions

@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_function_is_arm64_al2023_with_dlq_and_log_retention(path):
    t = expanded(path)
    functions = resources(t, "AWS::Lambda::Function")
    assert functions
    for fid, fn in functions.items():
        p = fn["Properties"]
        assert p["Runtime"] == "provided.al2023", fid
        assert p["Architectures"] == ["arm64"], fid
        assert p["Handler"] == "bootstrap", fid
        dlq = p.get("DeadLetterConfig", {}).get("TargetArn")
        configs = [c for c in resources(t, "AWS::Lambda::EventInvokeConfig").values()
                   if c["Properties"]["FunctionName"] == {"Ref": fid}]
        on_failure = [c for c in configs if c["Properties"].get("DestinationConfig", {}).get("OnFailure")]
        assert dlq or on_failure, f"{fid}: no DLQ or on-failure destination"
        if dlq:
            queue = dlq["Fn::GetAtt"][0]
            assert t["Resources"][queue]["Type"] == "AWS::SQS::Queue"
        group = p["LoggingConfig"]["LogGroup"]["Ref"]
        log = t["Resources"][group]
        assert log["Type"] == "AWS::Logs::LogGroup"
        assert log["Properties"]["RetentionInDays"], fid
        # the log group is the function's own: its name is /aws/lambda/<FunctionName>
        r = resolver(t)
        assert r.resolve(log["Properties"]["LogGroupName"]) == "/aws/lambda/" + r.resolve(p["FunctionName"])


def test_all_five_functions_are_built_by_sam_with_cargo_lambda():
    t = source(STACK)
    functions = resources(t, "AWS::Serverless::Function")
    binaries = {}
    for fid, fn in functions.items():
        assert fn["Metadata"]["BuildMethod"] == "rust-cargolambda", fid
        binaries[fn["Metadata"]["BuildProperties"]["Binary"]] = fid
    assert set(binaries) == {"pre-traffic-hook", "post-traffic-hook", "alarm-rollback", "dlq-redrive", "rollout"}
    assert t["Globals"]["Function"]["CodeUri"] == ".."
    assert (STACK.parent / t["Globals"]["Function"]["CodeUri"] / "Cargo.toml").is_file()
    # every function crate of the workspace is deployed by the stack
    crates = {p.name for p in (ROOT / "functions").iterdir() if (p / "Cargo.toml").is_file()}
    assert crates <= set(binaries), crates - set(binaries)


def test_hooks_are_named_for_the_codedeploy_role():
    t = expanded(STACK)
    r = resolver(t)
    for fid in ("PreTrafficHook", "PostTrafficHook"):
        assert r.resolve(props(t, fid)["FunctionName"]).startswith("CodeDeployHook_")
    for fid in ("AlarmRollback", "DlqRedrive"):
        assert not r.resolve(props(t, fid)["FunctionName"]).startswith("CodeDeployHook_")
    # names stay within Lambda's 64 characters for stack names up to 36 characters
    long = cfn.Resolver(t, {}, stack_name="x" * 36)
    for fid in resources(t, "AWS::Lambda::Function"):
        assert len(long.resolve(props(t, fid)["FunctionName"])) <= 64


ENV = {
    "PreTrafficHook": {"ROLLGATE_TOPIC_ARN", "ROLLGATE_POLICY_PREFIX", "ROLLGATE_REPORT_MARGIN_MS",
                       "ROLLGATE_METRICS_NAMESPACE", "ROLLGATE_LEDGER_TABLE"},
    "PostTrafficHook": {"ROLLGATE_TOPIC_ARN", "ROLLGATE_POLICY_PREFIX", "ROLLGATE_REPORT_MARGIN_MS",
                        "ROLLGATE_METRICS_NAMESPACE", "ROLLGATE_BAKE_MINUTES", "ROLLGATE_LEDGER_TABLE"},
    "AlarmRollback": {"ROLLGATE_TOPIC_ARN", "ROLLGATE_POLICY_PREFIX", "ROLLGATE_LEDGER_TABLE", "ROLLGATE_DRY_RUN",
                      "ROLLGATE_BAKE_MINUTES", "ROLLGATE_METRICS_NAMESPACE", "ROLLGATE_ROLLBACK_ALLOW",
                      "ROLLGATE_OWN_ROLES"},
    "DlqRedrive": {"ROLLGATE_TOPIC_ARN", "ROLLGATE_REDRIVE_ALLOW", "ROLLGATE_METRICS_NAMESPACE"},
    "Rollout": {"ROLLGATE_TOPIC_ARN", "ROLLGATE_POLICY_PREFIX", "ROLLGATE_LEDGER_TABLE", "ROLLGATE_SCHEDULE_GROUP",
                "ROLLGATE_SCHEDULER_ROLE_ARN", "ROLLGATE_ROLLOUT_ALLOW", "ROLLGATE_SELF_ARN",
                "ROLLGATE_METRICS_NAMESPACE"},
}


@pytest.mark.parametrize("fid", sorted(ENV))
def test_functions_get_the_environment_they_read(fid):
    t = expanded(STACK, (("DryRun", "true"), ("BakeMinutes", "30")))
    env = resolver(t, DryRun="true", BakeMinutes="30").resolve(props(t, fid)["Environment"]["Variables"])
    assert set(env) == ENV[fid]
    assert env["ROLLGATE_TOPIC_ARN"].startswith("arn:aws:sns:")
    if "ROLLGATE_DRY_RUN" in env:
        assert env["ROLLGATE_DRY_RUN"] == "true" and env["ROLLGATE_BAKE_MINUTES"] == "30"
    if "ROLLGATE_POLICY_PREFIX" in env:
        assert env["ROLLGATE_POLICY_PREFIX"] == "/rollgate/policies/"


def test_every_env_var_the_rust_code_reads_is_set_somewhere():
    read = set()
    for rs in list((ROOT / "shared").rglob("*.rs")) + list((ROOT / "functions").rglob("*.rs")):
        read |= set(re.findall(r'env::var\("(ROLLGATE_[A-Z_]+)"\)', rs.read_text()))
    read |= set(re.findall(r'"(ROLLGATE_[A-Z_]+)"', (ROOT / "shared" / "src" / "adapters" / "aws.rs").read_text()))
    # Emulator/test knobs; in Lambda the account comes from the invoked function's ARN.
    local_only = {"ROLLGATE_LOG_FORMAT", "ROLLGATE_AWS_MAX_ATTEMPTS", "ROLLGATE_ACCOUNT_ID"}
    set_somewhere = set().union(*ENV.values())
    assert read - local_only <= set_somewhere, read - local_only - set_somewhere


FUNCTION_ROLES = {"PreTrafficHook": "PreTrafficRole", "PostTrafficHook": "PostTrafficRole",
                  "AlarmRollback": "AlarmRollbackRole", "DlqRedrive": "DlqRedriveRole", "Rollout": "RolloutRole"}


def test_chat_notifications_are_an_opt_in_parameter():
    t = source(STACK)
    p = t["Parameters"]["ChatNotifications"]
    assert (p["Type"], p["Default"], p["AllowedValues"]) == ("String", "false", ["true", "false"])
    assert t["Conditions"]["ChatNotificationsEnabled"] == {"Fn::Equals": [{"Ref": "ChatNotifications"}, "true"]}
    out = expanded(STACK)
    assert cfn.Resolver(out, {}).condition("ChatNotificationsEnabled") is False
    assert cfn.Resolver(out, {"ChatNotifications": "true"}).condition("ChatNotificationsEnabled") is True
    assert out["Resources"]["ChatTopic"]["Condition"] == "ChatNotificationsEnabled"
    assert resolver(out).resolve(props(out, "ChatTopic")["TopicName"]) == "rollgate-chat"
    output = t["Outputs"]["ChatTopicArn"]
    assert output["Condition"] == "ChatNotificationsEnabled" and output["Value"] == {"Ref": "ChatTopic"}
    assert "Export" not in output


@pytest.mark.parametrize("fid", sorted(FUNCTION_ROLES))
def test_the_chat_topic_reaches_each_function_only_when_opted_in(fid):
    for on in ("false", "true"):
        t = expanded(STACK, (("ChatNotifications", on),))
        env = resolver(t, ChatNotifications=on).resolve(props(t, fid)["Environment"]["Variables"])
        if on == "true":
            assert env["ROLLGATE_CHAT_TOPIC_ARN"] == "arn:aws:sns:us-east-1:123456789012:rollgate-chat"
            assert set(env) == ENV[fid] | {"ROLLGATE_CHAT_TOPIC_ARN"}
        else:
            assert "ROLLGATE_CHAT_TOPIC_ARN" not in env and set(env) == ENV[fid]


@pytest.mark.parametrize("role", sorted(FUNCTION_ROLES.values()))
def test_each_role_may_publish_on_the_chat_topic_only_when_opted_in(role):
    """One statement, under the condition, sns:Publish on the chat topic and nothing else;
    no other statement names the chat topic."""
    sts = props(source(STACK), role)["Policies"][0]["PolicyDocument"]["Statement"]
    chat = [st for st in sts if "Fn::If" in st and st["Fn::If"][0] == "ChatNotificationsEnabled"]
    assert len(chat) == 1
    _, st, otherwise = chat[0]["Fn::If"]
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert (st["Sid"], st["Effect"], st["Action"], st["Resource"]) == (
        "PublishChatCards", "Allow", "sns:Publish", {"Ref": "ChatTopic"})
    others = [x for x in sts if x is not chat[0]]
    assert "ChatTopic" not in json.dumps(others)
    for on, present in (("false", False), ("true", True)):
        t = expanded(STACK, (("ChatNotifications", on),))
        resolved = resolver(t, ChatNotifications=on).resolve(props(t, role)["Policies"][0]["PolicyDocument"])
        sids = [x.get("Sid") for x in resolved["Statement"]]
        assert ("PublishChatCards" in sids) is present, (on, sids)


# ---------------------------------------------------------------- rules, topic, table

def test_every_rule_has_retry_policy_and_dead_letter_queue():
    t = expanded(STACK)
    rules = resources(t, "AWS::Events::Rule")
    assert set(rules) == {"AlarmRollbackAlarmState", "AlarmRollbackDeploymentState", "AlarmRollbackAliasChanges",
                          "AlarmRollbackDeliverySummary", "RolloutShiftStarts"}
    policy = props(t, "RuleDLQPolicy")
    for rid, rule in rules.items():
        for target in rule["Properties"]["Targets"]:
            assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0, rid
            assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] > 0, rid
            queue = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
            assert t["Resources"][queue]["Type"] == "AWS::SQS::Queue"
            assert {"Ref": queue} in policy["Queues"], f"{rid}: EventBridge may not write to {queue}"


def test_rule_dlq_policy_admits_only_this_stacks_rules():
    t = expanded(STACK)
    r = resolver(t)
    (st,) = props(t, "RuleDLQPolicy")["PolicyDocument"]["Statement"]
    assert st["Principal"] == {"Service": "events.amazonaws.com"}
    assert st["Action"] == "sqs:SendMessage"
    rule_arns = sorted(r.resolve(st["Condition"]["ArnEquals"]["aws:SourceArn"]))
    names = sorted(r.resolve(rule["Properties"]["Name"]) for rule in resources(t, "AWS::Events::Rule").values())
    assert rule_arns == [f"arn:aws:events:us-east-1:123456789012:rule/{n}" for n in names]


def test_topic_is_kms_encrypted_and_email_is_optional():
    t = expanded(STACK)
    topics = resources(t, "AWS::SNS::Topic")
    # The decision topic, and the chat topic only with ChatNotifications.
    assert {k: v.get("Condition") for k, v in topics.items()} == {
        "DecisionTopic": None, "ChatTopic": "ChatNotificationsEnabled"}
    for topic in topics.values():
        assert topic["Properties"]["KmsMasterKeyId"]
    subs = resources(t, "AWS::SNS::Subscription")
    sub = subs["DecisionEmailSubscription"]
    assert sub["Condition"] == "HasNotificationEmail"
    # The other subscription is the optional alarm topic's (AlarmTopicArn).
    assert {k: v["Condition"] for k, v in subs.items() if k != "DecisionEmailSubscription"} == {
        "AlarmTopicSubscription": "HasAlarmTopic"}
    assert cfn.Resolver(t, {}).condition("HasNotificationEmail") is False
    assert cfn.Resolver(t, {"NotificationEmail": "ops@example.com"}).condition("HasNotificationEmail") is True


def test_ledger_has_point_in_time_recovery_and_survives_stack_deletion():
    t = expanded(STACK)
    (table,) = resources(t, "AWS::DynamoDB::Table").values()
    assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    keys = {k["AttributeName"]: k["KeyType"] for k in table["Properties"]["KeySchema"]}
    assert keys == {"pk": "HASH", "sk": "RANGE"}  # shared/src/adapters/dynamodb.rs


def test_queues_are_encrypted():
    for path in TEMPLATES:
        for qid, q in resources(expanded(path), "AWS::SQS::Queue").items():
            p = q["Properties"]
            assert p.get("SqsManagedSseEnabled") or p.get("KmsMasterKeyId"), qid


def test_parameters_and_exported_outputs():
    t = source(STACK)
    assert {"PolicyPrefix", "BakeMinutes", "DryRun", "RedriveAllowList", "RollbackAllowList", "NotificationEmail",
            "AlarmNamePrefix"} <= set(t["Parameters"])
    assert t["Parameters"]["PolicyPrefix"]["Default"] == "/rollgate/policies/"
    exported = {k for k, o in t["Outputs"].items() if "Export" in o}
    assert exported == {"PreTrafficHookName", "PreTrafficHookArn", "PostTrafficHookName", "PostTrafficHookArn",
                        "DecisionTopicArn"}
    r = cfn.Resolver(t, {}, stack_name="rollgate")
    assert r.resolve(t["Outputs"]["PreTrafficHookName"]["Export"]["Name"]) == "rollgate-PreTrafficHookName"


# ---------------------------------------------------------------- the example app

def test_example_app_releases_by_canary_through_the_exported_hooks():
    t = source(APP)
    fn = props(t, "OrdersFunction")
    assert fn["AutoPublishAlias"] == "live"
    pref = fn["DeploymentPreference"]
    assert pref["Type"] == "Canary10Percent5Minutes"
    r = resolver(t)
    assert r.resolve(pref["Hooks"]["PreTraffic"]) == "CodeDeployHook_rollgate-pre-traffic"
    assert r.resolve(pref["Hooks"]["PostTraffic"]) == "CodeDeployHook_rollgate-post-traffic"
    out = expanded(APP)
    (alias,) = resources(out, "AWS::Lambda::Alias").values()
    update = alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    assert update["BeforeAllowTrafficHook"] == pref["Hooks"]["PreTraffic"]
    assert update["AfterAllowTrafficHook"] == pref["Hooks"]["PostTraffic"]
    # SAM's CodeDeploy role: its managed policy invokes only CodeDeployHook_* functions
    (role,) = [v for k, v in resources(out, "AWS::IAM::Role").items() if k == "CodeDeployServiceRole"]
    assert role["Properties"]["ManagedPolicyArns"][0].endswith("/AWSCodeDeployRoleForLambda")


def test_example_app_alarm_is_scoped_to_the_released_version():
    out = expanded(APP)
    (alarm,) = resources(out, "AWS::CloudWatch::Alarm").values()
    p = alarm["Properties"]
    assert (p["Namespace"], p["MetricName"]) == ("AWS/Lambda", "Errors")
    dims = {d["Name"]: d["Value"] for d in p["Dimensions"]}
    assert set(dims) == {"FunctionName", "Resource", "ExecutedVersion"}
    assert dims["Resource"] == {"Fn::Sub": "${OrdersFunction}:live"}
    version = next(k for k in resources(out, "AWS::Lambda::Version"))
    assert dims["ExecutedVersion"] == {"Fn::Select": [7, {"Fn::Split": [":", {"Ref": version}]}]}
    r = cfn.Resolver(out, {}, ref=lambda n: {version: "arn:aws:lambda:us-east-1:123456789012:function:f:7"}[n])
    assert r.resolve(dims["ExecutedVersion"]) == "7"
    group = props(out, "OrdersFunctionDeploymentGroup")
    assert group["AlarmConfiguration"]["Alarms"] == [{"Name": {"Ref": "ErrorAlarm"}}]


def test_example_app_gate_policy_is_a_valid_policy_in_the_right_parameter():
    t = source(APP)
    p = props(t, "GatePolicy")
    assert cfn.Resolver(t, {}, stack_name="example-app").resolve(p["Name"]) == "/rollgate/policies/example-app-orders"
    assert cfn.Resolver(t, {}, stack_name="example-app").resolve(props(t, "OrdersFunction")["FunctionName"]) \
        == "example-app-orders"
    policy = json.loads(p["Value"])
    schema = json.loads((ROOT / "schema" / "policy.schema.json").read_text())
    jsonschema.validate(policy, schema)
    assert set(policy["pre_traffic"]["checks"]["required_env"]) <= set(
        props(t, "OrdersFunction")["Environment"]["Variables"])
    assert t["Resources"]["OrdersFunction"]["DependsOn"] == "GatePolicy"


# What each function's code calls on AWS (shared/src/adapters, through the ports its
# main.rs wires), besides writing its logs and its DLQ (Lambda does those with the role).
# A grant the code does not use, or a call without a grant, fails here; IAM evaluation
# against the local AWS is what proves each grant is needed at run time.
CALLS = {
    "PreTrafficRole": {"codedeploy:GetDeployment", "codedeploy:GetApplicationRevision",
                       "codedeploy:PutLifecycleEventHookExecutionStatus", "ssm:GetParameter",
                       "lambda:GetFunctionConfiguration", "lambda:InvokeFunction", "sns:Publish",
                       "dynamodb:PutItem"},
    "PostTrafficRole": {"codedeploy:GetDeployment", "codedeploy:GetApplicationRevision",
                        "codedeploy:PutLifecycleEventHookExecutionStatus", "ssm:GetParameter",
                        "cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms",
                        "lambda:InvokeFunction", "sns:Publish", "dynamodb:Query",
                        "dynamodb:PutItem"},
    # GetFunction's tags need lambda:ListTags as well (AWS's GetFunction documentation).
    "AlarmRollbackRole": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                          "dynamodb:Query", "dynamodb:Scan", "cloudwatch:ListTagsForResource", "lambda:GetAlias",
                          "lambda:GetFunction", "lambda:ListTags", "lambda:UpdateAlias",
                          "codedeploy:StopDeployment", "codedeploy:GetDeployment",
                          "codedeploy:GetApplicationRevision", "ssm:GetParameter", "sns:Publish"},
    # SendMessageBatch, DeleteMessageBatch and ChangeMessageVisibilityBatch are authorised
    # as the single-message actions (SQS's API permissions reference), SNS's PublishBatch
    # as sns:Publish.
    "DlqRedriveRole": {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                       "sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
                       "sqs:ListDeadLetterSourceQueues", "sqs:StartMessageMoveTask",
                       "sqs:ListMessageMoveTasks", "sqs:CancelMessageMoveTask", "lambda:InvokeFunction",
                       "sns:Publish", "events:PutEvents", "s3:ListBucket", "s3:GetObject",
                       "s3:DeleteObject"},
    # The pre-traffic gate, the alias, the judge's metrics, its schedules (CreateSchedule
    # asks iam:PassRole of the caller for the role Scheduler is given).
    "RolloutRole": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query",
                    "ssm:GetParameter", "sns:Publish", "lambda:GetFunctionConfiguration",
                    "lambda:InvokeFunction", "lambda:GetAlias", "lambda:UpdateAlias",
                    "cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms", "scheduler:CreateSchedule",
                    "scheduler:DeleteSchedule", "iam:PassRole", "codedeploy:GetDeployment",
                    "codedeploy:GetApplicationRevision", "codedeploy:StopDeployment"},
    # Not a function's: what EventBridge Scheduler does with it.
    "RolloutSchedulerRole": {"lambda:InvokeFunction"},
}


@pytest.mark.parametrize("role", sorted(CALLS))
def test_each_role_grants_exactly_what_its_code_calls(role):
    t = source(STACK)
    granted: set[str] = set()
    for st in role_statements(t, role):
        if st["Effect"] == "Allow" and st["Sid"] not in ("Logs", "OwnDeadLetterQueue", "UseCustomerKey"):
            granted |= set(as_list(st["Action"]))
    assert granted == CALLS[role], (sorted(granted - CALLS[role]), sorted(CALLS[role] - granted))


@pytest.mark.parametrize("role", ["PreTrafficRole", "PostTrafficRole"])
def test_the_hooks_write_only_the_gate_partitions_of_the_ledger(role):
    """A hook invokes whatever function is being deployed: its one ledger write, keeping
    its decision, is held to partition keys `gate#...` (dynamodb:LeadingKeys, which IAM
    evaluates with ForAllValues), so it can forge no release, claim or freeze."""
    writes = [st for st in role_statements(source(STACK), role) if st["Effect"] == "Allow"
              and any(a.startswith("dynamodb:") and a != "dynamodb:Query" for a in as_list(st["Action"]))]
    assert [(st["Sid"], st["Action"], st["Condition"]) for st in writes] == [
        ("KeepDecisions", "dynamodb:PutItem", {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": "gate#*"}})]



def test_dead_letter_queues_outlive_the_stack():
    t = source(STACK)
    queues = resources(t, "AWS::SQS::Queue")
    assert len(queues) == 7
    for qid, q in queues.items():
        assert (q.get("DeletionPolicy"), q.get("UpdateReplacePolicy")) == ("Retain", "Retain"), qid


def test_async_functions_retry_within_codedeploys_hour():
    """Hooks (CodeDeploy invokes them asynchronously and waits one hour) and alarm-rollback
    (EventBridge) get an EventInvokeConfig: a retry after the hour is useless."""
    t = expanded(STACK)
    configs = resources(t, "AWS::Lambda::EventInvokeConfig")
    by_function = {c["Properties"]["FunctionName"]["Ref"]: c["Properties"] for c in configs.values()}
    assert set(by_function) == {"PreTrafficHook", "PostTrafficHook", "AlarmRollback"}, by_function
    for fid, p in by_function.items():
        assert 60 <= p["MaximumEventAgeInSeconds"] <= 3600, fid
        assert p["MaximumRetryAttempts"] == 2, fid


def test_the_pre_traffic_hook_may_never_invoke_rollgate_itself():
    t = expanded(STACK)
    r = resolver(t)
    role = role_statements(t, "PreTrafficRole")
    deny = next(st for st in role if st["Effect"] == "Deny")
    assert deny["Action"] == "lambda:InvokeFunction"
    denied = as_list(r.resolve(deny["Resource"]))
    for name in ("rollgate-alarm-rollback", "rollgate-dlq-redrive", "CodeDeployHook_rollgate-pre-traffic",
                 "CodeDeployHook_rollgate-post-traffic"):
        arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        assert any(re.fullmatch(p.replace("*", ".*"), arn) for p in denied), (name, denied)
    # A consumer's function stays invocable.
    assert not any(re.fullmatch(p.replace("*", ".*"), "arn:aws:lambda:us-east-1:123456789012:function:orders")
                   for p in denied)


def test_every_dlq_and_every_function_has_an_alarm_on_the_decision_topic():
    t = source(STACK)
    alarms = resources(t, "AWS::CloudWatch::Alarm").values()
    watched = {(a["Properties"]["MetricName"], str(a["Properties"]["Dimensions"][0]["Value"])) for a in alarms}
    for a in alarms:
        assert a["Properties"]["AlarmActions"] == [{"Ref": "DecisionTopic"}]
        assert a["Properties"]["TreatMissingData"] == "notBreaching"
    queues = {q["Properties"]["QueueName"]["Fn::Sub"] for q in resources(t, "AWS::SQS::Queue").values()}
    assert {("ApproximateNumberOfMessagesVisible", str({"Fn::Sub": q})) for q in queues} <= watched
    functions = resources(t, "AWS::Serverless::Function")
    assert {("Errors", str({"Ref": f})) for f in functions} <= watched


def test_alarm_lambda_actions_and_alarm_topics_are_opt_in():
    t = expanded(STACK)
    perms = {k: v for k, v in resources(t, "AWS::Lambda::Permission").items()
             if v["Properties"]["Principal"] in ("lambda.alarms.cloudwatch.amazonaws.com", "sns.amazonaws.com")}
    assert {k: v["Condition"] for k, v in perms.items()} == {
        "AlarmLambdaActionPermission": "AllowsAlarmLambdaActions", "AlarmTopicPermission": "HasAlarmTopic"}
    action = perms["AlarmLambdaActionPermission"]["Properties"]
    assert action["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert perms["AlarmTopicPermission"]["Properties"]["SourceArn"] == {"Ref": "AlarmTopicArn"}
    assert cfn.Resolver(t, {}).condition("AllowsAlarmLambdaActions") is False
    assert cfn.Resolver(t, {}).condition("HasAlarmTopic") is False


ROLE_OF = {"PreTrafficRole": ("PreTrafficLogGroup", "PreTrafficDLQ"),
           "PostTrafficRole": ("PostTrafficLogGroup", "PostTrafficDLQ"),
           "AlarmRollbackRole": ("AlarmRollbackLogGroup", "AlarmRollbackDLQ"),
           "DlqRedriveRole": ("DlqRedriveLogGroup", "DlqRedriveDLQ")}


@pytest.mark.parametrize("role", sorted(ROLE_OF))
def test_what_lambda_uses_for_the_function_names_only_its_own_log_group_and_queue(role):
    """`Logs` and `OwnDeadLetterQueue` serve Lambda itself (the runtime's log stream, the
    failed asynchronous event): no test of the code can need them, so they are pinned
    here to the function's own resources instead."""
    log_group, dlq = ROLE_OF[role]
    by_sid = {st["Sid"]: st for st in role_statements(source(STACK), role)}
    assert by_sid["Logs"]["Resource"] == {"Fn::GetAtt": [log_group, "Arn"]}
    assert sorted(as_list(by_sid["Logs"]["Action"])) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert by_sid["OwnDeadLetterQueue"]["Resource"] == {"Fn::GetAtt": [dlq, "Arn"]}
    assert by_sid["OwnDeadLetterQueue"]["Action"] == "sqs:SendMessage"


@pytest.mark.parametrize("role", sorted(ROLE_OF))
def test_a_customer_managed_key_is_granted_only_when_given(role):
    """With KmsKeyArn, SNS (publish) and SQS (send, receive) ask the caller for
    kms:GenerateDataKey and kms:Decrypt on the key; without it the grant is not there."""
    sts = props(source(STACK), role)["Policies"][0]["PolicyDocument"]["Statement"]
    conditional = [st for st in sts if "Fn::If" in st and st["Fn::If"][0] == "HasKmsKey"]
    assert len(conditional) == 1
    condition, st, otherwise = conditional[0]["Fn::If"]
    assert condition == "HasKmsKey" and otherwise == {"Ref": "AWS::NoValue"}
    assert st["Sid"] == "UseCustomerKey" and st["Resource"] == {"Ref": "KmsKeyArn"}
    assert sorted(as_list(st["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_a_customer_managed_key_encrypts_the_topic_queues_and_log_groups():
    t = source(STACK)
    key = {"Ref": "KmsKeyArn"}
    assert props(t, "DecisionTopic")["KmsMasterKeyId"]["Fn::If"][:2] == ["HasKmsKey", key]
    assert props(t, "ChatTopic")["KmsMasterKeyId"] == props(t, "DecisionTopic")["KmsMasterKeyId"]
    for qid in resources(t, "AWS::SQS::Queue"):
        p = props(t, qid)
        assert p["KmsMasterKeyId"]["Fn::If"][:2] == ["HasKmsKey", key], qid
        assert p["SqsManagedSseEnabled"]["Fn::If"] == ["HasKmsKey", {"Ref": "AWS::NoValue"}, True], qid
    for lid in resources(t, "AWS::Logs::LogGroup"):
        assert props(t, lid)["KmsKeyId"]["Fn::If"][:2] == ["HasKmsKey", key], lid


def test_every_grant_is_shown_needed_by_a_failing_test():
    """docs/iam-mutation.json is what `make iam-mutation` last wrote: for each action of
    each Allow statement, a test that failed with it taken away. A grant added or changed
    since needs a new run."""
    sys.path.insert(0, str(ROOT / "infra" / "local"))
    import iam_mutation

    results = json.loads((ROOT / "docs" / "iam-mutation.json").read_text())
    shown = {(r["role"], r["sid"], r["action"]): r["fails"] for r in results}
    grants = iam_mutation.grants()
    assert set(shown) == set(grants), (sorted(set(grants) - set(shown)), sorted(set(shown) - set(grants)))
    unshown = [g for g in grants if not shown[g]]
    assert not unshown, f"no test fails without: {unshown}"
    table = (ROOT / "docs" / "reliability.md").read_text()
    for role, sid, action in grants:
        assert f"| {role} | {sid} | `{action}` |" in table, (role, sid, action)
    for r in results:
        path, _, test = r["fails"][0].partition("::")
        assert test.split("[")[0] in (ROOT / path).read_text(), f"{r['fails'][0]} no longer exists: run make iam-mutation"


# ---------------------------------------------------------------- the operators' policies

# What the `rollgate` CLI calls on AWS (cli/src, through shared/src/adapters): the method
# of `Context`'s ledger, lambda and cloudwatch it calls, and the IAM action each asks.
# `alias_rows`, `partition_rows` and `aliases` Query one partition of the ledger (no
# index), `tracked` Scans it; `alias_state` is GetAlias; `metric_data` GetMetricData.
# `Context::invoke` invokes `<stack>-<role>` at `$LATEST` (lambda:InvokeFunction).
CLI_METHODS = {("ledger", "alias_rows"): "dynamodb:Query", ("ledger", "partition_rows"): "dynamodb:Query",
               ("ledger", "aliases"): "dynamodb:Query", ("ledger", "tracked"): "dynamodb:Scan",
               ("lambda", "alias_state"): "lambda:GetAlias",
               ("cloudwatch", "metric_data"): "cloudwatch:GetMetricData"}


def cli_calls() -> tuple[set[str], set[str]]:
    """(the actions of the CLI's reads, the stack's functions it invokes), read off cli/src."""
    src = ROOT / "cli" / "src"
    context = (src / "context.rs").read_text()
    # The clients the CLI makes: a new one is a new service to grant.
    assert set(re.findall(r"\baws\.([a-z_]+)\(\)", context)) == {"dynamodb", "lambda", "cloudwatch"}
    assert ".invoke(" in context and '"$LATEST"' in context, "Context::invoke asks for $LATEST"
    text = "\n".join(p.read_text() for p in sorted(src.glob("*.rs")))
    used = set(re.findall(r"\bctx\s*\.\s*(ledger|lambda|cloudwatch)\s*\.\s*([a-z_]+)\s*\(", text))
    unknown = used - set(CLI_METHODS)
    assert not unknown, f"the CLI calls {sorted(unknown)}: give CLI_METHODS their actions, and the policies"
    invoked = set(re.findall(r'\bctx\s*\.\s*invoke\(\s*"([a-z-]+)"', text))
    return {CLI_METHODS[m] for m in used}, invoked


def policy_statements(template: dict, policy: str) -> list[dict]:
    return props(template, policy)["PolicyDocument"]["Statement"]


def test_the_operators_policies_grant_exactly_what_the_cli_calls():
    """Read: the CLI's reads, on the ledger table, the functions' aliases, and "*" for
    GetMetricData (no resource type). Act: lambda:InvokeFunction on the `$LATEST` of each
    function the CLI invokes, as the CLI qualifies it, and nothing else."""
    t = source(STACK)
    reads, invoked = cli_calls()
    assert invoked == {"alarm-rollback", "dlq-redrive", "rollout"}, invoked
    r = cfn.Resolver(t, {}, stack_name="rollgate", getatt=lambda res, att: f"<{res}.{att}>")
    read = policy_statements(t, "OperatorsReadPolicy")
    assert all(st["Effect"] == "Allow" and "Condition" not in st for st in read)
    assert {a for st in read for a in as_list(st["Action"])} == reads
    scope = {a: as_list(r.resolve(st["Resource"])) for st in read for a in as_list(st["Action"])}
    assert scope == {"dynamodb:Query": ["<LedgerTable.Arn>"], "dynamodb:Scan": ["<LedgerTable.Arn>"],
                     "lambda:GetAlias": ["arn:aws:lambda:us-east-1:123456789012:function:*"],
                     "cloudwatch:GetMetricData": ["*"]}, scope
    act = policy_statements(t, "OperatorsActPolicy")
    assert all(st["Effect"] == "Allow" and as_list(st["Action"]) == ["lambda:InvokeFunction"] for st in act)
    invokes = sorted(res for st in act for res in as_list(r.resolve(st["Resource"])))
    names = {r.resolve(props(t, lid)["FunctionName"]) for lid in ("AlarmRollback", "DlqRedrive", "Rollout")}
    assert names == {f"rollgate-{f}" for f in invoked}
    assert invokes == sorted(f"arn:aws:lambda:us-east-1:123456789012:function:{n}:$LATEST" for n in names)
    for policy in ("OperatorsReadPolicy", "OperatorsActPolicy"):
        assert t["Outputs"][f"{policy}Arn"]["Value"] == {"Ref": policy}
        assert "Roles" not in props(t, policy) and "Users" not in props(t, policy) and "Groups" not in props(t, policy)
