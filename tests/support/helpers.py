"""What the integration tests share besides fixtures: the names of the test world, and
helpers that deploy rollgate from its template, create functions and apps, and drive real
CodeDeploy deployments through the local AWS. Fixtures live in tests/conftest.py."""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "infra" / "local"))
from harness import LocalAws, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
TOPIC_NAME = "rollgate-decisions"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC_NAME}"
POLICY_PREFIX = "/rollgate/policies/"
HOOK_FUNCTION = "CodeDeployHook_rollgate-pre-traffic"
POST_HOOK_FUNCTION = "CodeDeployHook_rollgate-post-traffic"
# Caps one post-traffic run so that tests see the bake continue itself (ROLLGATE_MAX_RUN_SECONDS).
POST_HOOK_MAX_RUN_SECONDS = "10"
LEDGER_TABLE = "rollgate-ledger"
LOG_DIR = ROOT / "target" / "test-logs"
REDRIVE_ALLOW = (f"arn:aws:sqs:{REGION}:{ACCOUNT}:redrive-*,"
                 f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:redrive-*,"
                 f"arn:aws:sns:{REGION}:{ACCOUNT}:redrive-*,"
                 f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/redrive-*,"
                 "arn:aws:s3:::redrive-*")

ROLE = f"arn:aws:iam::{ACCOUNT}:role/rollgate-test"
STACK_NAME = "rollgate"
# rollgate's functions, as the template names them in the stack STACK_NAME.
STACK_FUNCTIONS = {"pre-traffic-hook": HOOK_FUNCTION, "post-traffic-hook": POST_HOOK_FUNCTION,
                   "alarm-rollback": f"{STACK_NAME}-alarm-rollback", "dlq-redrive": f"{STACK_NAME}-dlq-redrive",
                   "rollout": f"{STACK_NAME}-rollout"}

def bootstrap(s: LocalAws, parameters: dict | None = None):
    """rollgate as infra/template.yaml deploys it (infra/local/deploy.py): its functions
    with their own roles, topic, ledger, rules and queues. The local AWS authorises every
    call a function makes against its role (rollgate_emulator/iam.py), so a grant the
    template lacks fails a test here as it would fail on AWS. Also the role of the
    example apps and of CodeDeploy."""
    from deploy import deploy_stack

    iam = s.client("iam")
    iam.create_role(
        RoleName="rollgate-test",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
    )
    deploy_stack(s, ROOT / "infra" / "template.yaml",
                 {"RedriveAllowList": REDRIVE_ALLOW, **(parameters or {})}, stack_name=STACK_NAME)
    lam = s.client("lambda")
    s.roles = {binary: lam.get_function_configuration(FunctionName=name)["Role"]
               for binary, name in STACK_FUNCTIONS.items()}

def create_function(s: LocalAws, name: str, handler: str, env: dict, timeout: int = 10, memory: int = 256):
    """A function running `handler`'s binary; one of rollgate's binaries runs with the
    stack's role for it, as every function of a binary must (iam.py)."""
    lam = s.client("lambda")
    role = getattr(s, "roles", {}).get(handler, ROLE)
    return lam.create_function(
        FunctionName=name, Runtime="provided.al2023", Role=role, Handler=handler,
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18}, Architectures=["arm64"],
        Timeout=timeout, MemorySize=memory, Environment={"Variables": env},
    )

@dataclass
class App:
    """A consumer function with a live alias on v1 and a v2 ready to deploy."""

    name: str
    alias: str
    application: str
    group: str

def make_app(s: LocalAws, v1: str = "example-app", v2: str = "example-app", policy: dict | str | None = None,
             config: str = "CodeDeployDefault.LambdaAllAtOnce", env: dict | None = None,
             prefix: str = "orders") -> App:
    """v1 and v2 are the example app's binaries (a version's Handler names its binary)."""
    lam, cd, ssm = s.client("lambda"), s.client("codedeploy"), s.client("ssm")
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    env = env if env is not None else {"TABLE_NAME": "orders"}
    create_function(s, name, handler=v1, env=env)
    first = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=first)
    lam.update_function_configuration(FunctionName=name, Handler=v2, Environment={"Variables": env})
    second = lam.publish_version(FunctionName=name)["Version"]
    assert (first, second) == ("1", "2")
    if policy is not None:
        ssm.put_parameter(Name=f"{POLICY_PREFIX}{name}", Type="String",
                          Value=policy if isinstance(policy, str) else json.dumps(policy))
    cd.create_application(applicationName=name, computePlatform="Lambda")
    cd.create_deployment_group(
        applicationName=name, deploymentGroupName="live", serviceRoleArn=ROLE,
        deploymentConfigName=config,
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
    )
    return App(name=name, alias="live", application=name, group="live")

def appspec(app: App, current="1", target="2", hook=HOOK_FUNCTION, function=None,
            after_hook: str | None = None) -> str:
    return json.dumps({
        "version": 0.0,
        "Resources": [{app.name: {"Type": "AWS::Lambda::Function", "Properties": {
            "Name": function or app.name, "Alias": app.alias,
            "CurrentVersion": current, "TargetVersion": target}}}],
        "Hooks": [{"BeforeAllowTraffic": hook}] + ([{"AfterAllowTraffic": after_hook}] if after_hook else []),
    })

def deploy(s: LocalAws, app: App, spec: str | None = None) -> str:
    cd = s.client("codedeploy")
    content = spec or appspec(app)
    return cd.create_deployment(
        applicationName=app.application, deploymentGroupName=app.group,
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": content}},
    )["deploymentId"]

TERMINAL = {"Succeeded", "Failed", "Stopped"}

def wait_deployment(s: LocalAws, deployment_id: str, timeout: float = 90) -> dict:
    cd = s.client("codedeploy")

    def done():
        info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        return info if info["status"] in TERMINAL else None

    return wait_for(done, timeout, f"deployment {deployment_id} to finish", interval=0.2)

def alias_version(s: LocalAws, app: App) -> str:
    return s.client("lambda").get_alias(FunctionName=app.name, Name=app.alias)["FunctionVersion"]

def topic_inbox(aws: LocalAws, name: str, filter_policy: dict | None = None):
    """An SQS queue subscribed to the decision topic; returns `find(want, timeout)`, the
    first message whose attributes include every item of `want`."""
    sqs, sns = aws.client("sqs"), aws.client("sns")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=TOPIC_ARN, Protocol="sqs", Endpoint=arn,
                  Attributes={"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {})
    seen: list[dict] = []

    def find(want: dict, timeout: float = 40) -> dict:
        def match():
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                seen.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            for e in seen:
                attrs = {k: v["Value"] for k, v in e.get("MessageAttributes", {}).items()}
                if all(attrs.get(k) == v for k, v in want.items()):
                    return e
            return None
        return wait_for(match, timeout, f"a decision with {want}")

    return find
