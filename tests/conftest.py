"""Fixtures for the integration tests: the local AWS emulator, `cargo lambda watch`
serving the rollgate functions and the example app, and helpers that drive real
CodeDeploy deployments through them.

Each session starts its own emulator and watch process on free loopback ports and
stops both at the end, so the suite leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
ACCOUNT = "123456789012"
TOPIC_NAME = "rollgate-decisions"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC_NAME}"
POLICY_PREFIX = "/rollgate/policies/"
HOOK_FUNCTION = "CodeDeployHook_rollgate-pre-traffic"
LOG_DIR = ROOT / "target" / "test-logs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - polling until ready
            last = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


def stop(proc: subprocess.Popen):
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass
class Stack:
    endpoint: str
    watch_endpoint: str

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}, read_timeout=120),
        )

    def control(self, path: str):
        r = requests.get(f"{self.endpoint}/_rollgate/{path}", timeout=10)
        r.raise_for_status()
        return r.json()


@pytest.fixture(scope="session")
def stack():
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    emu_port, watch_port = free_port(), free_port()
    endpoint = f"http://127.0.0.1:{emu_port}"
    watch_endpoint = f"http://127.0.0.1:{watch_port}"
    emu_log = open(LOG_DIR / "emulator.log", "w")
    emu = subprocess.Popen(
        [sys.executable, str(ROOT / "infra/local/emulator.py"), "--host", "127.0.0.1", "--port", str(emu_port),
         "--lambda-endpoint", watch_endpoint, "--minute-seconds", "0.2", "--hook-timeout-seconds", "120"],
        stdout=emu_log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    env = dict(os.environ)
    # cargo-lambda is installed in the same venv as this interpreter.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "ROLLGATE_AWS_MAX_ATTEMPTS": "1",
        "ROLLGATE_TOPIC_ARN": TOPIC_ARN,
        "ROLLGATE_POLICY_PREFIX": POLICY_PREFIX,
        "ROLLGATE_LOG_FORMAT": "json",
        "RUST_LOG": "info",
    })
    watch_log = open(LOG_DIR / "watch.log", "w")
    watch = subprocess.Popen(
        ["cargo", "lambda", "watch", "--ignore-changes", "--quiet", "-A", "127.0.0.1", "-P", str(watch_port),
         "--concurrency", "8"],
        cwd=ROOT, env=env, stdout=watch_log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for(lambda: requests.get(f"{endpoint}/_rollgate/health", timeout=1).ok, 60, "the emulator")
        wait_for(lambda: socket.create_connection(("127.0.0.1", watch_port), timeout=1), 120, "cargo lambda watch")
        s = Stack(endpoint, watch_endpoint)
        bootstrap(s)
        yield s
    finally:
        stop(watch)
        stop(emu)
        emu_log.close()
        watch_log.close()


ROLE = f"arn:aws:iam::{ACCOUNT}:role/rollgate-test"


def bootstrap(s: Stack):
    """Account-wide resources: the role, the decision topic and the hook function."""
    iam = s.client("iam")
    iam.create_role(
        RoleName="rollgate-test",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
    )
    s.client("sns").create_topic(Name=TOPIC_NAME)
    create_function(s, HOOK_FUNCTION, handler="pre-traffic-hook", env={}, timeout=60)


def create_function(s: Stack, name: str, handler: str, env: dict, timeout: int = 10, memory: int = 256):
    lam = s.client("lambda")
    return lam.create_function(
        FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler=handler,
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


def make_app(s: Stack, v1: str = "example-app", v2: str = "example-app", policy: dict | str | None = None,
             config: str = "CodeDeployDefault.LambdaAllAtOnce", env: dict | None = None) -> App:
    """v1 and v2 are the example app's binaries (a version's Handler names its binary)."""
    lam, cd, ssm = s.client("lambda"), s.client("codedeploy"), s.client("ssm")
    name = f"orders-{uuid.uuid4().hex[:8]}"
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


def appspec(app: App, current="1", target="2", hook=HOOK_FUNCTION, function=None) -> str:
    return json.dumps({
        "version": 0.0,
        "Resources": [{app.name: {"Type": "AWS::Lambda::Function", "Properties": {
            "Name": function or app.name, "Alias": app.alias,
            "CurrentVersion": current, "TargetVersion": target}}}],
        "Hooks": [{"BeforeAllowTraffic": hook}],
    })


def deploy(s: Stack, app: App, spec: str | None = None) -> str:
    cd = s.client("codedeploy")
    content = spec or appspec(app)
    return cd.create_deployment(
        applicationName=app.application, deploymentGroupName=app.group,
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": content}},
    )["deploymentId"]


TERMINAL = {"Succeeded", "Failed", "Stopped"}


def wait_deployment(s: Stack, deployment_id: str, timeout: float = 90) -> dict:
    cd = s.client("codedeploy")

    def done():
        info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        return info if info["status"] in TERMINAL else None

    return wait_for(done, timeout, f"deployment {deployment_id} to finish", interval=0.2)


def alias_version(s: Stack, app: App) -> str:
    return s.client("lambda").get_alias(FunctionName=app.name, Name=app.alias)["FunctionVersion"]


@pytest.fixture(scope="session")
def decisions(stack):
    """An SQS queue subscribed to the decision topic; returns a reader of its messages."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url = sqs.create_queue(QueueName="rollgate-decisions-test")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=TOPIC_ARN, Protocol="sqs", Endpoint=arn)
    seen: list[dict] = []

    def read(deployment_id: str, timeout: float = 30) -> dict:
        def find():
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                seen.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            for env in seen:
                attrs = env.get("MessageAttributes", {})
                if attrs.get("deployment", {}).get("Value") == deployment_id:
                    return env
            return None

        return wait_for(find, timeout, f"the SNS decision for {deployment_id}")

    return read
