"""`make demo`: rollgate's story, end to end, on the local AWS emulator.

1. Starts the emulator and `cargo lambda watch` (infra/local/harness.py).
2. Deploys the rollgate stack (infra/template.yaml) and the example consumer app on top
   of it (infra/example-app/template.yaml) with infra/local/deploy.py: SAM expanded
   offline, what moto's CloudFormation skips created through the APIs.
3. Plays the story a platform team cares about, narrated as it happens:
   a good release passes both gates; a release that fails a smoke test is stopped
   before any traffic; a release that regresses after the full shift is rolled back by
   its alarm inside the bake window; a rollgate rollout 5 -> 25 -> 50 -> 100 % whose 25 %
   step catches a latency regression and restores the old version; a release made with
   plain `update-alias` (no CodeDeploy), learnt from CloudTrail and rolled back by its
   alarm; dead letters of two queues that share one DLQ are redriven, each back to the
   queue it failed in. After each story the operator's `rollgate status` shows where the
   function stands; the redrive runs through `rollgate redrive` (its continuations, with
   a progress bar), and `rollgate report` ends it: the delivery metrics, and the report
   page of the release the alarm rolled back (target/demo/rolled-back-release.html).
4. Prints a summary table and stops every process it started.

Exits non-zero, saying which step, when an outcome is not the one the story expects.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "infra" / "local"))
from deploy import deploy_stack  # noqa: E402
from harness import ACCOUNT, REGION, LocalAws, wait_for  # noqa: E402
from traffic import lambda_traffic, put_version_metrics  # noqa: E402

STACK = "rollgate"
APP_STACK = "shop"
ARN = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}"
TOPIC = ARN.format("sns", f"{STACK}-decisions")
PRE_HOOK = f"CodeDeployHook_{STACK}-pre-traffic"
POST_HOOK = f"CodeDeployHook_{STACK}-post-traffic"
REDRIVE = f"{STACK}-dlq-redrive"
ROLLOUT = f"{STACK}-rollout"
MINUTE_SECONDS = 1.0  # one deployment-config minute lasts this long here
REDRIVE_ALLOW = ARN.format("sqs", "shop-*")
CLI = ROOT / "target" / "debug" / "rollgate"

# The stack's functions all run under one `cargo lambda watch`, whose environment is
# what every function sees; the local AWS's runner adds each function's own configured
# variables where this says nothing (the rollout's schedule group and role, say). The
# values below are the ones infra/template.yaml gives them for this stack name.
FUNCTION_ENV = {
    "ROLLGATE_TOPIC_ARN": TOPIC,
    "ROLLGATE_POLICY_PREFIX": "/rollgate/policies/",
    "ROLLGATE_LEDGER_TABLE": f"{STACK}-ledger",
    "ROLLGATE_BAKE_MINUTES": "60",
    "ROLLGATE_SELF_FUNCTION": POST_HOOK,
    "ROLLGATE_REDRIVE_ALLOW": REDRIVE_ALLOW,
    "ROLLGATE_LOG_FORMAT": "json",
}


def say(text: str = "") -> None:
    print(text, flush=True)


def step(title: str) -> None:
    say()
    say(f"== {title} " + "=" * max(0, 74 - len(title)))


class StoryError(RuntimeError):
    """An outcome the story did not expect."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise StoryError(what)


@dataclass
class Row:
    step: str
    outcome: str
    seconds: float


class Demo:
    def __init__(self, aws: LocalAws):
        self.aws = aws
        self.rows: list[Row] = []
        self.lam, self.cd, self.sqs = aws.client("lambda"), aws.client("codedeploy"), aws.client("sqs")
        self.inbox = ""
        self.seen: list[dict] = []
        self.t0 = time.monotonic()
        self.fn = self.app = self.group = self.alarm = ""
        self.rolled_back = ""

    # --- narration helpers ---------------------------------------------------------

    def at(self, text: str) -> None:
        say(f"[{time.monotonic() - self.t0:6.1f}s] {text}")

    def messages(self, deployment: str | None = None, component: str | None = None,
                 function: str | None = None) -> list[dict]:
        """SNS messages received so far on the team's inbox queue that match."""
        for m in self.sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=0).get("Messages", []):
            self.sqs.delete_message(QueueUrl=self.inbox, ReceiptHandle=m["ReceiptHandle"])
            self.seen.append(json.loads(m["Body"]))
        out = []
        for env in self.seen:
            a = {k: v["Value"] for k, v in env.get("MessageAttributes", {}).items()}
            if ((deployment is None or a.get("deployment") == deployment)
                    and (component is None or a.get("component") == component)
                    and (function is None or a.get("function") == function)):
                out.append(env)
        return out

    def show_decision(self, env: dict) -> dict:
        d = json.loads(env["Message"])
        a = {k: v["Value"] for k, v in env.get("MessageAttributes", {}).items()}
        self.at(f"SNS  {env.get('Subject', '')}")
        say(f"         attributes: {a}")
        say(f"         reason    : {d['reason']}")
        for c in d.get("checks", []):
            mark = {"pass": "ok  ", "fail": "FAIL", "inconclusive": "--  "}[c["outcome"]]
            detail = f" — {c['detail']}" if c.get("detail") else ""
            say(f"         {mark} {c['name']:<26}{detail[:100]}")
        return d

    def cli(self, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
        """The operator's `rollgate` command, shown as typed and as it answers (its
        progress lines on stderr too), against the local AWS."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ENDPOINT_URL=self.aws.endpoint, AWS_REGION=REGION, AWS_ACCESS_KEY_ID="testing",
                   AWS_SECRET_ACCESS_KEY="testing", ROLLGATE_STACK=STACK, ROLLGATE_REQUESTER="platform-oncall")
        say(f"         $ rollgate {' '.join(args)}")
        p = subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=600)
        for line in (p.stderr + p.stdout).splitlines():
            say(f"           {line}")
        expect(p.returncode in ok, f"rollgate {' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
        return p

    def status(self) -> None:
        self.cli("status", f"{self.fn}:live")

    def alias(self) -> tuple[str, dict]:
        got = self.lam.get_alias(FunctionName=self.fn, Name="live")
        return got["FunctionVersion"], (got.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}

    # --- the account ---------------------------------------------------------------

    def setup(self) -> None:
        step("Deploying the rollgate stack and a team's app onto the local AWS")
        started = time.monotonic()
        iam = self.aws.client("iam")
        iam.create_role(RoleName="demo", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"}))
        out = deploy_stack(self.aws, ROOT / "infra" / "template.yaml",
                           {"RedriveAllowList": REDRIVE_ALLOW, "BakeMinutes": "60"}, stack_name=STACK)
        say(f"stack {STACK}: hooks {out['PreTrafficHookName']} / {out['PostTrafficHookName']},")
        say(f"  alarm-rollback {out['AlarmRollbackFunctionName']} (EventBridge: alarm state changes, "
            "CodeDeploy state changes),")
        say(f"  ledger {out['LedgerTableName']}, decisions on {out['DecisionTopicArn'].rsplit(':', 1)[1]}, "
            f"redrive {out['DlqRedriveFunctionName']}")
        app = deploy_stack(self.aws, ROOT / "infra" / "example-app" / "template.yaml",
                           {"RollgateStackName": STACK}, stack_name=APP_STACK)
        self.fn, self.alarm = app["FunctionName"], app["ErrorAlarmName"]
        (self.app,) = [a for a in self.cd.list_applications()["applications"] if a.startswith(f"{APP_STACK}-")]
        (self.group,) = self.cd.list_deployment_groups(applicationName=self.app)["deploymentGroups"]
        config = self.cd.get_deployment_group(applicationName=self.app, deploymentGroupName=self.group)[
            "deploymentGroupInfo"]["deploymentConfigName"]
        say(f"app {APP_STACK}: function {self.fn}, alias live -> {self.alias()[0]}, alarm {self.alarm},")
        say(f"  CodeDeploy {self.app}/{self.group} ({config}; a minute lasts {MINUTE_SECONDS}s here)")
        # The team's inbox: an SQS queue subscribed to rollgate's decision topic.
        self.inbox = self.sqs.create_queue(QueueName="platform-inbox")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.inbox, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"]
        self.aws.client("sns").subscribe(TopicArn=TOPIC, Protocol="sqs", Endpoint=arn)
        # The team's policy: the template's smoke test plus a short post-traffic bake.
        ssm = self.aws.client("ssm")
        name = app["GatePolicyParameter"]
        policy = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
        policy["post_traffic"] = {
            "bake_minutes": 0.1, "poll_seconds": 1, "period_seconds": 1, "min_invocations": 20,
            # The local AWS has metrics at once and the demo's canary lasts seconds.
            "ingestion_delay_seconds": 0,
            "canary": {"min_invocations": 20, "min_periods": 3, "warmup_seconds": 0,
                       "max_error_rate_increase": 0.05, "max_latency_increase_pct": 30},
            "bake": {"max_error_rate": 0.05, "max_p99_ms": 300}}
        # A rollgate rollout's steps (a minute lasts MINUTE_SECONDS here).
        policy["rollout"] = {"steps": [{"weight": 5, "hold": "10m"}, {"weight": 25, "hold": "10m"},
                                       {"weight": 50, "hold": "10m"}, {"weight": 100}],
                             "max_extensions": 1}
        ssm.put_parameter(Name=name, Value=json.dumps(policy), Type="String", Overwrite=True)
        say(f"policy {name}: smoke test 'health'; post-traffic bake {policy['post_traffic']['bake_minutes']} min, "
            "error rate <= 5%, p99 <= 300 ms, canary compared with the old version")
        # `cargo lambda watch` starts a binary on its first invoke (`cargo run`): do that
        # now, so the smoke test's 3-second limit measures the app, not the start.
        self.lam.invoke(FunctionName=f"{self.fn}:live", Payload=json.dumps({"path": "/health"}))
        self.rows.append(Row("deploy both stacks", "ready", time.monotonic() - started))

    # --- releases ------------------------------------------------------------------

    def release(self, binary: str, behaviour: dict | None = None) -> tuple[str, dict, str, str]:
        """What `sam deploy` does for a new build: publish a version, point the
        version-scoped alarm at it, and start a CodeDeploy deployment with both hooks.
        Waits for the deployment to end while writing the versions' metrics."""
        current = self.alias()[0]
        self.lam.update_function_configuration(FunctionName=self.fn, Handler=binary)
        target = self.lam.publish_version(FunctionName=self.fn)["Version"]
        self.point_alarm_at(target)
        spec = json.dumps({"version": 0.0, "Resources": [{self.fn: {
            "Type": "AWS::Lambda::Function", "Properties": {
                "Name": self.fn, "Alias": "live", "CurrentVersion": current, "TargetVersion": target}}}],
            "Hooks": [{"BeforeAllowTraffic": PRE_HOOK}, {"AfterAllowTraffic": POST_HOOK}]})
        self.t0 = time.monotonic()
        with lambda_traffic(self.aws, self.fn, "live", behaviour or {}):
            dep = self.cd.create_deployment(
                applicationName=self.app, deploymentGroupName=self.group,
                revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": spec}})["deploymentId"]
            self.at(f"CodeDeploy {dep}: {self.fn} live {current} -> {target} ({binary})")
            last = None
            while True:
                info = self.cd.get_deployment(deploymentId=dep)["deploymentInfo"]
                version, weights = self.alias()
                where = f"alias on {version}" + "".join(f", {w:.0%} on {v}" for v, w in weights.items())
                if (info["status"], where) != last:
                    self.at(f"status {info['status']:<10} {where}")
                    last = (info["status"], where)
                for env in self.messages(deployment=dep):
                    if env.get("_shown"):
                        continue
                    env["_shown"] = True
                    self.show_decision(env)
                if info["status"] in ("Succeeded", "Failed", "Stopped"):
                    break
                time.sleep(0.2)
        return dep, info, current, target

    def point_alarm_at(self, version: str) -> None:
        cw = self.aws.client("cloudwatch")
        (alarm,) = cw.describe_alarms(AlarmNames=[self.alarm])["MetricAlarms"]
        dims = [d if d["Name"] != "ExecutedVersion" else {"Name": "ExecutedVersion", "Value": version}
                for d in alarm["Dimensions"]]
        keep = ("AlarmName", "AlarmDescription", "Namespace", "MetricName", "Statistic", "Period",
                "EvaluationPeriods", "Threshold", "ComparisonOperator", "TreatMissingData")
        cw.put_metric_alarm(**{k: alarm[k] for k in keep if k in alarm}, Dimensions=dims)

    def good_release(self) -> None:
        step("A good release passes both gates")
        dep, info, current, target = self.release("example-app")
        expect(info["status"] == "Succeeded", f"the good release ended {info['status']}")
        expect(self.alias() == (target, {}), f"the alias is on {self.alias()}, not {target}")
        wait_for(lambda: len(self.messages(deployment=dep)) >= 2, 30, "both gates' decisions")
        for env in self.messages(deployment=dep):
            if not env.get("_shown"):
                env["_shown"] = True
                self.show_decision(env)
        verdicts = {json.loads(e["Message"])["component"]: json.loads(e["Message"])["verdict"]
                    for e in self.messages(deployment=dep)}
        expect(verdicts == {"pre-traffic-hook": "Succeeded", "post-traffic-hook": "Succeeded"},
               f"gate verdicts {verdicts}")
        self.status()
        self.rows.append(Row("good release", f"Succeeded, live -> {target}", time.monotonic() - self.t0))

    def broken_release(self) -> None:
        step("A release that fails its smoke test is stopped before any traffic")
        dep, info, current, target = self.release("example-app-broken")
        expect(info["status"] == "Failed", f"the broken release ended {info['status']}")
        expect(self.alias()[0] == current, "the alias moved")
        d = json.loads(wait_for(lambda: self.messages(deployment=dep, component="pre-traffic-hook"), 30,
                                "the pre-traffic decision")[0]["Message"])
        failed = [c["name"] for c in d["checks"] if c["outcome"] == "fail"]
        expect(d["verdict"] == "Failed" and failed, f"pre-traffic decision {d['verdict']}")
        self.at(f"rolled back: {info.get('rollbackInfo', {}).get('rollbackMessage', '')}")
        self.at(f"no traffic reached version {target}; alias still on {current}")
        self.status()
        self.rows.append(Row("broken release", f"Failed at the smoke test, live stays {current}",
                             time.monotonic() - self.t0))

    def regression_after_release(self) -> None:
        step("A release that regresses after the full shift is rolled back by its alarm")
        dep, info, previous, target = self.release("example-app")
        expect(info["status"] == "Succeeded", f"the release ended {info['status']}")
        self.at(f"both gates passed; live on {target}. Later, inside the 60-minute bake window, "
                f"version {target} starts failing:")
        cw = self.aws.client("cloudwatch")
        errors = sum(put_version_metrics(cw, self.fn, "live", target, {"errors": 0.5, "latency": (40, 90)})
                     for _ in range(3))
        self.at(f"Lambda metrics: Errors={errors} for ExecutedVersion={target} (alarm threshold >= 1)")
        # moto does not evaluate alarms from metric data: the demo does CloudWatch's part.
        cw.set_alarm_state(AlarmName=self.alarm, StateValue="ALARM",
                           StateReason=f"Threshold Crossed: {errors} errors >= 1 (set by the demo, "
                                       "as CloudWatch would from these metrics)")
        self.at(f"alarm {self.alarm} -> ALARM; EventBridge delivers the state change to alarm-rollback")
        wait_for(lambda: self.alias()[0] == previous, 60, f"the alias back on {previous}")
        self.at(f"alias live back on {previous} (from {target})")
        env = wait_for(lambda: [e for e in self.messages(component="alarm-rollback", function=self.fn)
                                if json.loads(e["Message"]).get("target_version") == target
                                or target in json.loads(e["Message"])["reason"]], 30, "the rollback message")[0]
        d = self.show_decision(env)
        ledger = self.aws.client("dynamodb").query(
            TableName=f"{STACK}-ledger", KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": f"fn#{self.fn}#live"}})["Items"]
        for item in ledger:
            flat = {k: list(v.values())[0] for k, v in item.items()}
            if flat["sk"].startswith(("dep#", "rb#", "quarantine#")):
                self.at(f"ledger {flat['sk'][:44]:<44} " + ", ".join(
                    f"{k}={flat[k]}" for k in ("status", "from_version", "to_version", "outcome", "version")
                    if k in flat))
        expect(self.alias()[0] == previous, "the alias moved again")
        self.rolled_back = dep
        self.status()
        self.rows.append(Row("regression after release", f"rolled back by alarm, live -> {previous}",
                             time.monotonic() - self.t0))
        del d

    def publish(self, binary: str) -> str:
        self.lam.update_function_configuration(FunctionName=self.fn, Handler=binary)
        return self.lam.publish_version(FunctionName=self.fn)["Version"]

    def rollout_story(self) -> None:
        step("A rollgate rollout 5 -> 25 -> 50 -> 100 % catches a regression at 25 %")
        self.t0 = time.monotonic()
        current = self.alias()[0]
        target = self.publish("example-app")

        def latency() -> float:
            # The new version's cache thrashes once it serves a quarter of the requests.
            share = self.alias()[1].get(target, 0.0)
            return float(random.randint(110, 220) if share >= 0.25 else random.randint(40, 90))

        request = {"action": "start", "function": self.fn, "version": target, "requester": "release-pipeline"}
        self.at(f"aws lambda invoke --function-name {ROLLOUT} --payload '{json.dumps(request)}'")
        self.at("steps from the policy: 5 % for 10 min, 25 % for 10 min, 50 % for 10 min, then 100 % "
                f"(a minute lasts {MINUTE_SECONDS}s here); each hold is an EventBridge Scheduler schedule")
        with lambda_traffic(self.aws, self.fn, "live", {target: {"errors": 0.0, "latency": latency}},
                            every=0.1, per_tick=40):
            out = json.loads(self.lam.invoke(FunctionName=ROLLOUT, Payload=json.dumps(request))["Payload"].read())
            rollout = out["rollout"]
            self.at(f"rollout {rollout['id']}: pre-traffic gate passed; {rollout['reason']}")
            last = None
            while rollout["status"] in ("running", "paused"):
                time.sleep(0.3)
                rollout = json.loads(self.lam.invoke(FunctionName=ROLLOUT, Payload=json.dumps(
                    {"action": "status", "function": self.fn}))["Payload"].read())["rollout"]
                version, weights = self.alias()
                where = f"alias on {version}" + "".join(f", {w:.0%} on {v}" for v, w in weights.items())
                if where != last:
                    self.at(f"{where}  (step {rollout['step'] + 1}, {rollout['status']})")
                    last = where
        expect(rollout["status"] == "failed", f"the rollout ended {rollout['status']}")
        expect(self.alias() == (current, {}), f"the alias is {self.alias()}, not {current} alone")
        env = wait_for(lambda: [e for e in self.messages(function=self.fn, component="rollout")
                                if json.loads(e["Message"]).get("deployment_id") == rollout["id"]
                                and "failed" in json.dumps(e.get("MessageAttributes", {}))], 30,
                       "the rollout's failed decision")[0]
        d = self.show_decision(env)
        latency_check = next(c for c in d["checks"] if c["name"] == "canary.latency")
        expect(latency_check["outcome"] == "fail", f"canary.latency {latency_check['outcome']}")
        evidence = next(c for c in d["checks"] if c["name"] == "rollout.evidence")["actual"]
        for side in ("old_version", "new_version"):
            w = evidence[side]
            per = {p: sorted(values) for p, values in w["percentiles"]}
            med = {p: (v[len(v) // 2] if v else float("nan")) for p, v in per.items()}
            say(f"         {side:<12} {w['invocations']:>5.0f} requests in the step; per-second p50 {med[50]:.0f} ms, "
                f"p90 {med[90]:.0f} ms, p99 {med[99]:.0f} ms (medians)")
        self.at(f"{rollout['reason']}")
        self.status()
        self.rows.append(Row("rollout caught at 25 %", f"failed at step {rollout['step'] + 1}, live stays {current}",
                             time.monotonic() - self.t0))

    def update_alias_story(self) -> None:
        step("A release made with plain update-alias is rolled back by its alarm")
        self.t0 = time.monotonic()
        previous = self.alias()[0]
        target = self.publish("example-app")
        self.point_alarm_at(target)
        self.at(f"aws lambda update-alias --function-name {self.fn} --name live --function-version {target}"
                "   (no CodeDeploy, no rollgate)")
        self.lam.update_alias(FunctionName=self.fn, Name="live", FunctionVersion=target)
        ddb = self.aws.client("dynamodb")

        def recorded():
            items = ddb.query(TableName=f"{STACK}-ledger", KeyConditionExpression="pk = :p AND begins_with(sk, :d)",
                              ExpressionAttributeValues={":p": {"S": f"fn#{self.fn}#live"}, ":d": {"S": "dep#"}})
            return [i for i in items["Items"] if i.get("origin", {}).get("S") == "api"
                    and i["to_version"]["S"] == target]

        item = {k: list(v.values())[0] for k, v in wait_for(recorded, 30, "the CloudTrail release")[0].items()}
        self.at("CloudTrail recorded UpdateAlias20150331; EventBridge handed it to alarm-rollback, which recorded "
                f"release {item['deployment_id']}: {item['from_version']} -> {item['to_version']} by {item['initiator']}")
        cw = self.aws.client("cloudwatch")
        errors = sum(put_version_metrics(cw, self.fn, "live", target, {"errors": 0.5, "latency": (40, 90)})
                     for _ in range(3))
        cw.set_alarm_state(AlarmName=self.alarm, StateValue="ALARM",
                           StateReason=f"Threshold Crossed: {errors} errors >= 1 (set by the demo, "
                                       "as CloudWatch would from these metrics)")
        self.at(f"version {target} fails ({errors} errors); alarm {self.alarm} -> ALARM")
        wait_for(lambda: self.alias()[0] == previous, 60, f"the alias back on {previous}")
        env = wait_for(lambda: [e for e in self.messages(component="alarm-rollback", function=self.fn)
                                if item["deployment_id"] in json.loads(e["Message"])["reason"]], 30,
                       "the rollback message")[0]
        d = self.show_decision(env)
        expect("released by" in d["reason"], f"the decision does not name who released: {d['reason']}")
        self.at(f"alias live back on {previous}; the decision names who made the release")
        self.status()
        self.rows.append(Row("update-alias release", f"rolled back by alarm, live -> {previous}",
                             time.monotonic() - self.t0))

    def redrive(self) -> None:
        step("Messages that failed in two queues share one DLQ; each goes back where it failed")
        self.t0 = time.monotonic()
        sqs = self.sqs
        dlq = sqs.create_queue(QueueName="shop-failed-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
        sources = {q: sqs.create_queue(QueueName=q, Attributes={"RedrivePolicy": policy})["QueueUrl"]
                   for q in ("shop-orders", "shop-payments")}
        counts = {"shop-orders": 150, "shop-payments": 100}
        for q, n in counts.items():
            for start in range(0, n, 10):
                sqs.send_message_batch(QueueUrl=sources[q], Entries=[
                    {"Id": str(i), "MessageBody": json.dumps({"queue": q, "n": i, "id": str(uuid.uuid4())}),
                     "MessageAttributes": {"tenant": {"DataType": "String", "StringValue": f"t{i % 3}"}}}
                    for i in range(start, min(n, start + 10))])
            # A consumer that fails every message: SQS dead-letters each after 3 receives,
            # marking it with the queue it came from (DeadLetterQueueSourceArn).
            while sqs.receive_message(QueueUrl=sources[q], MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages"):
                pass
        self.at(f"{counts['shop-orders']} orders and {counts['shop-payments']} payments failed 3 times; "
                "all sit in shop-failed-dlq, which both queues' RedrivePolicy names")
        # The operator's CLI runs the redrive to its end: a run stops at its deadline
        # (one second here) and returns a continuation, which the CLI invokes in turn.
        self.cli("redrive", dlq_arn, "--rate", "100", "--max-run-seconds", "1")
        left = int(sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"]["ApproximateNumberOfMessages"])
        back = {}
        for q, url in sources.items():
            got = []
            while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages"):
                got += [json.loads(m["Body"])["queue"] for m in batch]
            back[q] = got
        self.at("each queue holds its own messages again: " + ", ".join(
            f"{q} {len(v)} (all from {q}: {'yes' if set(v) == {q} else 'no'})" for q, v in back.items()))
        moved = sum(len(v) for v in back.values())
        expect(left == 0 and all(len(back[q]) == n and set(back[q]) == {q} for q, n in counts.items()),
               f"after the redrive: {left} left in the DLQ, queues {({q: len(v) for q, v in back.items()})}")
        self.rows.append(Row("shared DLQ redrive", f"{moved} moved to 2 sources, 0 lost",
                             time.monotonic() - self.t0))

    def report(self) -> None:
        step("Delivery metrics from the ledger, and the report page of the rolled-back release")
        self.t0 = time.monotonic()
        self.cli("report")
        page = ROOT / "target" / "demo" / "rolled-back-release.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        self.cli("report", self.rolled_back, "--html", str(page))
        html = page.read_text()
        expect(self.rolled_back in html and "<script" not in html, f"the report page {page}")
        self.at(f"open {page.relative_to(ROOT)} in a browser: one self-contained file")
        self.rows.append(Row("report", "delivery metrics, and the page of the rollback", time.monotonic() - self.t0))

    def summary(self, total: float) -> None:
        step("Summary")
        width = max(len(r.step) for r in self.rows)
        say(f"{'step':<{width}}  {'outcome':<44} {'seconds':>8}")
        say(f"{'-' * width}  {'-' * 44} {'-' * 8}")
        for r in self.rows:
            say(f"{r.step:<{width}}  {r.outcome:<44} {r.seconds:>8.1f}")
        say(f"{'total (with start-up)':<{width}}  {'':<44} {total:>8.1f}")


def main() -> int:
    started = time.monotonic()
    step("Starting the local AWS (patched moto) and cargo lambda watch")
    log_dir = ROOT / "target" / "demo-logs"
    with LocalAws(env=FUNCTION_ENV, minute_seconds=MINUTE_SECONDS, log_dir=log_dir) as aws:
        say(f"emulator at {aws.endpoint}, functions at {aws.watch_endpoint} (logs in target/demo-logs)")
        demo = Demo(aws)
        try:
            demo.setup()
            demo.good_release()
            demo.broken_release()
            demo.regression_after_release()
            demo.rollout_story()
            demo.update_alias_story()
            demo.redrive()
            demo.report()
        except StoryError as e:
            say(f"\nDEMO FAILED: {e} (logs in {log_dir})")
            return 1
        demo.summary(time.monotonic() - started)
    say("All processes stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
