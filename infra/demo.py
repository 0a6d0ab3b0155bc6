"""`make demo`: rollgate's story, end to end, on the local AWS emulator.

Starts the emulator and `cargo lambda watch`, sets up an account the way the rollgate
stack and a consumer team would (hook function, decision topic, the team's function
with a live alias and its gate policy), then releases new versions through CodeDeploy
and narrates what rollgate decides and why. Ends with a summary table and stops every
process it started."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "local"))
from harness import ACCOUNT, REGION, LocalAws, wait_for  # noqa: E402

TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:rollgate-decisions"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/rollgate-demo"
HOOK = "CodeDeployHook_rollgate-pre-traffic"
FUNCTION = "orders"
POLICY = {
    "version": 1,
    "pre_traffic": {
        "budget_seconds": 30,
        "concurrency": 4,
        "checks": {"architecture": "arm64", "required_env": ["TABLE_NAME"]},
        "smoke_tests": [
            {"name": "health", "payload": {"path": "/health"},
             "expect": {"function_error": "none", "json_subset": {"status": "ok"}, "max_duration_ms": 5000}},
            {"name": "create-order", "payload": {"order": 42},
             "expect": {"json_subset": {"status": "ok", "echo": {"order": 42}}}},
        ],
    },
}


def say(text: str = "") -> None:
    print(text, flush=True)


def step(title: str) -> None:
    say()
    say(f"== {title} " + "=" * max(0, 70 - len(title)))


@dataclass
class Row:
    step: str
    outcome: str
    seconds: float


class Demo:
    def __init__(self, aws: LocalAws):
        self.aws = aws
        self.rows: list[Row] = []
        self.lam = aws.client("lambda")
        self.cd = aws.client("codedeploy")
        self.sqs = aws.client("sqs")
        self.queue = ""

    def setup(self) -> None:
        step("Setting up the account")
        started = time.monotonic()
        self.aws.client("iam").create_role(RoleName="rollgate-demo", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "lambda.amazonaws.com"}}]}))
        sns = self.aws.client("sns")
        sns.create_topic(Name="rollgate-decisions")
        self.queue = self.sqs.create_queue(QueueName="platform-team-inbox")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=TOPIC, Protocol="sqs", Endpoint=arn)
        say(f"rollgate stack : hook {HOOK}, decisions on SNS topic rollgate-decisions")
        self.function(HOOK, "pre-traffic-hook")
        self.function(FUNCTION, "example-app")
        v1 = self.lam.publish_version(FunctionName=FUNCTION)["Version"]
        self.lam.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion=v1)
        say(f"team's function: {FUNCTION}, alias live -> version {v1}")
        self.aws.client("ssm").put_parameter(Name=f"/rollgate/policies/{FUNCTION}", Type="String",
                                             Value=json.dumps(POLICY))
        say(f"gate policy    : /rollgate/policies/{FUNCTION} — {len(POLICY['pre_traffic']['smoke_tests'])} "
            "smoke tests, arm64, TABLE_NAME required")
        self.cd.create_application(applicationName=FUNCTION, computePlatform="Lambda")
        self.cd.create_deployment_group(
            applicationName=FUNCTION, deploymentGroupName="live", serviceRoleArn=ROLE,
            deploymentConfigName="CodeDeployDefault.LambdaCanary10Percent5Minutes",
            deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
            autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]})
        say("CodeDeploy     : canary 10% for 5 minutes (1 minute = "
            f"{self.aws.minute_seconds}s here), auto-rollback on failure")
        self.rows.append(Row("set up account", "ready", time.monotonic() - started))

    def function(self, name: str, binary: str) -> None:
        self.lam.create_function(
            FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler=binary,
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18}, Architectures=["arm64"], Timeout=30,
            MemorySize=256, Environment={"Variables": {"TABLE_NAME": "orders"}})

    def release(self, title: str, binary: str) -> None:
        step(title)
        self.lam.update_function_configuration(FunctionName=FUNCTION, Handler=binary)
        target = self.lam.publish_version(FunctionName=FUNCTION)["Version"]
        current = self.lam.get_alias(FunctionName=FUNCTION, Name="live")["FunctionVersion"]
        spec = json.dumps({"version": 0.0, "Resources": [{FUNCTION: {"Type": "AWS::Lambda::Function", "Properties": {
            "Name": FUNCTION, "Alias": "live", "CurrentVersion": current, "TargetVersion": target}}}],
            "Hooks": [{"BeforeAllowTraffic": HOOK}]})
        started = time.monotonic()
        dep = self.cd.create_deployment(
            applicationName=FUNCTION, deploymentGroupName="live",
            revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": spec}})["deploymentId"]
        say(f"[{0.0:5.1f}s] CodeDeploy {dep}: {FUNCTION} live {current} -> {target} ({binary})")
        decision_shown = False
        last = ("", "")
        while True:
            info = self.cd.get_deployment(deploymentId=dep)["deploymentInfo"]
            alias = self.lam.get_alias(FunctionName=FUNCTION, Name="live")
            weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
            where = f"alias on {alias['FunctionVersion']}" + "".join(
                f", {int(w * 100)}% on {v}" for v, w in weights.items())
            now = (info["status"], where)
            if now != last:
                say(f"[{time.monotonic() - started:5.1f}s] status {info['status']:<10} {where}")
                last = now
            if not decision_shown:
                decision_shown = self.show_decision(dep, started)
            if info["status"] in ("Succeeded", "Failed", "Stopped"):
                break
            time.sleep(0.2)
        if not decision_shown:
            wait_for(lambda: self.show_decision(dep, started), 30, "the decision message")
        outcome = f"{info['status']}, alias on {self.lam.get_alias(FunctionName=FUNCTION, Name='live')['FunctionVersion']}"
        if info.get("rollbackInfo"):
            say(f"[{time.monotonic() - started:5.1f}s] rollback: {info['rollbackInfo'].get('rollbackMessage', '')}")
        self.rows.append(Row(title, outcome, time.monotonic() - started))

    def show_decision(self, dep: str, started: float) -> bool:
        msgs = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        for m in msgs.get("Messages", []):
            self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])
            envelope = json.loads(m["Body"])
            attrs = {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}
            if attrs.get("deployment") != dep:
                continue
            d = json.loads(envelope["Message"])
            say(f"[{time.monotonic() - started:5.1f}s] SNS  {envelope.get('Subject')}")
            say(f"        attributes: {attrs}")
            say(f"        reason    : {d['reason']}")
            for c in d["checks"]:
                mark = {"pass": "ok  ", "fail": "FAIL", "inconclusive": "??  "}[c["outcome"]]
                detail = f"  — {c['detail']}" if c.get("detail") else ""
                say(f"        {mark} {c['name']:<38} expected {json.dumps(c['expected'])[:40]:<42}"
                    f"{c['duration_ms']:>5} ms{detail[:90]}")
            return True
        return False

    def summary(self, total: float) -> None:
        step("Summary")
        width = max(len(r.step) for r in self.rows)
        say(f"{'step':<{width}}  {'outcome':<28} {'seconds':>8}")
        say(f"{'-' * width}  {'-' * 28} {'-' * 8}")
        for r in self.rows:
            say(f"{r.step:<{width}}  {r.outcome:<28} {r.seconds:>8.1f}")
        say(f"{'total':<{width}}  {'':<28} {total:>8.1f}")


def main() -> int:
    started = time.monotonic()
    step("Starting the local AWS (patched moto) and cargo lambda watch")
    env = {"ROLLGATE_TOPIC_ARN": TOPIC, "ROLLGATE_LOG_FORMAT": "json"}
    with LocalAws(env=env, minute_seconds=0.5, log_dir=Path("target/demo-logs")) as aws:
        say(f"emulator at {aws.endpoint}, functions at {aws.watch_endpoint} (logs in target/demo-logs)")
        demo = Demo(aws)
        demo.setup()
        demo.release("A good release passes the pre-traffic gate", "example-app")
        demo.release("A broken release is stopped before any traffic", "example-app-broken")
        demo.release("A release that answers wrongly is stopped too", "example-app-degraded")
        demo.summary(time.monotonic() - started)
    say("All processes stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
