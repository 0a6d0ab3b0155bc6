"""CodeDeploy Lambda deployments: lifecycle, hooks, traffic shifting, stop, rollback."""

from __future__ import annotations

import hashlib
import json
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import HOOK_TIMEOUT_SECONDS, control, make_function, wait_for

APP, GROUP = "rollgate-app", "rollgate-group"


def appspec(before: str | None = "pre-hook", after: str | None = "post-hook") -> str:
    hooks = [h for h in ({"BeforeAllowTraffic": before}, {"AfterAllowTraffic": after})
             if next(iter(h.values()))]
    return json.dumps({
        "version": 0.0,
        "Resources": [{"app": {"Type": "AWS::Lambda::Function", "Properties": {
            "Name": "app", "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"}}}],
        "Hooks": hooks,
    })


def reporter(emulator: str, status: str = "Succeeded", times: int = 1, delay: float = 0.0):
    """A fake hook binary: reports `status` back to CodeDeploy like the Rust hooks do."""
    client = boto3.client("codedeploy", endpoint_url=emulator, region_name="us-east-1",
                          aws_access_key_id="t", aws_secret_access_key="t",
                          config=Config(retries={"max_attempts": 1}))

    def handler(payload, context):
        time.sleep(delay)
        for _ in range(times):
            try:
                client.put_lifecycle_event_hook_execution_status(
                    deploymentId=payload["DeploymentId"],
                    lifecycleEventHookExecutionId=payload["LifecycleEventHookExecutionId"],
                    status=status)
            except ClientError:
                pass
        return 200, None

    return handler


@pytest.fixture
def setup(aws, fake_watch, emulator):
    make_function(aws, "app", versions=2)
    for hook in ("pre-hook", "post-hook"):
        make_function(aws, hook, versions=1, alias=None)

    def make(rollback: bool = False, config: str = "CodeDeployDefault.LambdaAllAtOnce",
             before: str = "Succeeded", after: str = "Succeeded") -> None:
        aws.codedeploy.create_application(applicationName=APP, computePlatform="Lambda")
        kwargs = {}
        if rollback:
            kwargs["autoRollbackConfiguration"] = {
                "enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST"]}
        aws.codedeploy.create_deployment_group(
            applicationName=APP, deploymentGroupName=GROUP, deploymentConfigName=config,
            serviceRoleArn="arn:aws:iam::123456789012:role/cd",
            deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
            **kwargs)
        if before:
            fake_watch.handlers["pre-hook"] = reporter(emulator, before)
        if after:
            fake_watch.handlers["post-hook"] = reporter(emulator, after)

    return make


def deploy(aws, content: str | None = None, **kwargs) -> str:
    return aws.codedeploy.create_deployment(
        applicationName=APP, deploymentGroupName=GROUP,
        revision={"revisionType": "AppSpecContent",
                  "appSpecContent": {"content": content or appspec()}}, **kwargs)["deploymentId"]


def info(aws, deployment_id: str) -> dict:
    return aws.codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]


def wait_final(aws, deployment_id: str, timeout: float = 15) -> dict:
    return wait_for(lambda: (i := info(aws, deployment_id))["status"] in ("Succeeded", "Failed", "Stopped") and i,
                    timeout=timeout)


def alias(aws) -> dict:
    return aws.lam.get_alias(FunctionName="app", Name="live")


def event_queue(aws) -> str:
    url = aws.sqs.create_queue(QueueName="cd-events")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.events.put_rule(Name="cd", EventPattern=json.dumps({"source": ["aws.codedeploy"]}))
    aws.events.put_targets(Rule="cd", Targets=[{"Id": "q", "Arn": arn}])
    return url


def drain(aws, url: str) -> list[dict]:
    out = []
    while True:
        msgs = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return out
        out += [json.loads(m["Body"]) for m in msgs]
        for m in msgs:
            aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_all_at_once_lifecycle_with_hooks_and_events(aws, setup, fake_watch, emulator):
    setup()
    queue = event_queue(aws)
    before = alias(aws)["RevisionId"]
    deployment_id = deploy(aws)
    assert deployment_id.startswith("d-")
    final = wait_final(aws, deployment_id)
    assert final["status"] == "Succeeded"
    assert final["computePlatform"] == "Lambda"
    assert final["deploymentConfigName"] == "CodeDeployDefault.LambdaAllAtOnce"
    assert final["createTime"] <= final["startTime"] <= final["completeTime"]
    assert "errorInformation" not in final and "rollbackInfo" not in final
    current = alias(aws)
    assert current["FunctionVersion"] == "2" and not current.get("RoutingConfig")
    assert current["RevisionId"] != before

    hooks = control(emulator, f"deployments/{deployment_id}/hooks")
    assert [(h["lifecycleEvent"], h["functionName"], h["status"], h["reportCount"]) for h in hooks] == [
        ("BeforeAllowTraffic", "pre-hook", "Succeeded", 1),
        ("AfterAllowTraffic", "post-hook", "Succeeded", 1)]
    calls = [r for r in fake_watch.requests if r["binary"] in ("pre-hook", "post-hook")]
    assert [set(c["payload"]) for c in calls] == [{"DeploymentId", "LifecycleEventHookExecutionId"}] * 2
    assert calls[0]["payload"]["DeploymentId"] == deployment_id

    events = wait_for(lambda: drain(aws, queue) or None)
    assert [e["detail"]["state"] for e in events] == ["START", "SUCCESS"]
    for e in events:
        assert e["source"] == "aws.codedeploy"
        assert e["detail-type"] == "CodeDeploy Deployment State-change Notification"
        assert set(e["detail"]) == {"application", "deploymentGroup", "deploymentId", "state",
                                    "region", "instanceGroupId"}
        assert e["detail"]["deploymentId"] == deployment_id
        assert e["detail"]["application"] == APP and e["detail"]["deploymentGroup"] == GROUP


def test_canary_shifts_weight_then_all_traffic(aws, setup):
    setup(config="CodeDeployDefault.LambdaCanary10Percent5Minutes")  # 5 x 0.5s
    deployment_id = deploy(aws, appspec(before=None, after=None))
    mid = wait_for(lambda: (a := alias(aws)).get("RoutingConfig") and a)
    assert mid["FunctionVersion"] == "1"
    assert mid["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
    assert info(aws, deployment_id)["status"] == "InProgress"
    assert wait_final(aws, deployment_id)["status"] == "Succeeded"
    final = alias(aws)
    assert final["FunctionVersion"] == "2" and not final.get("RoutingConfig")


def test_custom_linear_config(aws, setup):
    aws.codedeploy.create_deployment_config(
        deploymentConfigName="Linear50Every1", computePlatform="Lambda",
        trafficRoutingConfig={"type": "TimeBasedLinear",
                              "timeBasedLinear": {"linearPercentage": 50, "linearInterval": 1}})
    got = aws.codedeploy.get_deployment_config(deploymentConfigName="Linear50Every1")["deploymentConfigInfo"]
    assert got["trafficRoutingConfig"]["timeBasedLinear"] == {"linearPercentage": 50, "linearInterval": 1}
    with pytest.raises(ClientError) as err:
        aws.codedeploy.get_deployment_config(deploymentConfigName="nope")
    assert err.value.response["Error"]["Code"] == "DeploymentConfigDoesNotExistException"
    setup(config="Linear50Every1")
    deployment_id = deploy(aws, appspec(before=None, after=None))
    mid = wait_for(lambda: (a := alias(aws)).get("RoutingConfig") and a)
    assert mid["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    assert wait_final(aws, deployment_id)["status"] == "Succeeded"
    assert alias(aws)["FunctionVersion"] == "2"


def test_failed_hook_rolls_back(aws, setup, emulator):
    setup(rollback=True, after="Failed")
    queue = event_queue(aws)
    deployment_id = deploy(aws)
    final = wait_final(aws, deployment_id)
    assert final["status"] == "Failed"
    assert final["errorInformation"]["code"] == "HOOK_EXECUTION_FAILURE"
    rollback_id = final["rollbackInfo"]["rollbackDeploymentId"]
    assert final["rollbackInfo"]["rollbackMessage"]
    rollback = info(aws, rollback_id)
    assert rollback["status"] == "Succeeded" and rollback["creator"] == "codeDeployRollback"
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == deployment_id
    current = alias(aws)
    assert current["FunctionVersion"] == "1" and not current.get("RoutingConfig")
    events = wait_for(lambda: drain(aws, queue) or None)
    time.sleep(0.2)
    events += drain(aws, queue)
    assert [(e["detail"]["deploymentId"], e["detail"]["state"]) for e in events] == [
        (deployment_id, "START"), (deployment_id, "FAILURE"),
        (rollback_id, "START"), (rollback_id, "SUCCESS")]


def test_failed_hook_without_rollback_leaves_alias(aws, setup):
    setup(rollback=False, after="Failed")
    final = wait_final(aws, deploy(aws))
    assert final["status"] == "Failed" and "rollbackInfo" not in final
    assert alias(aws)["FunctionVersion"] == "2"


def test_hook_that_never_reports_times_out(aws, setup):
    setup(rollback=True, before=None)
    started = time.time()
    final = wait_final(aws, deploy(aws))
    assert final["status"] == "Failed"
    assert time.time() - started >= HOOK_TIMEOUT_SECONDS - 0.5
    assert final["errorInformation"]["code"] == "HOOK_EXECUTION_FAILURE"
    assert alias(aws)["FunctionVersion"] == "1"


@pytest.mark.parametrize("rollback", [True, False])
def test_stop_during_canary(aws, setup, rollback):
    setup(config="CodeDeployDefault.LambdaCanary10Percent30Minutes")
    deployment_id = deploy(aws)
    wait_for(lambda: alias(aws).get("RoutingConfig"))
    stopped = aws.codedeploy.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=rollback)
    assert stopped["status"] in ("Pending", "Succeeded") and stopped["statusMessage"]
    final = wait_final(aws, deployment_id, timeout=5)
    assert final["status"] == "Stopped"
    current = alias(aws)
    if rollback:
        assert final["rollbackInfo"]["rollbackDeploymentId"]
        assert current["FunctionVersion"] == "1" and not current.get("RoutingConfig")
    else:
        assert "rollbackInfo" not in final
        assert current["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
    with pytest.raises(ClientError) as err:
        aws.codedeploy.stop_deployment(deploymentId=deployment_id)
    assert err.value.response["Error"]["Code"] == "DeploymentAlreadyCompletedException"


def test_stop_while_hook_pending_and_unknown_deployment(aws, setup, emulator):
    setup(before=None)
    deployment_id = deploy(aws)
    wait_for(lambda: control(emulator, f"deployments/{deployment_id}/hooks"))
    aws.codedeploy.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=False)
    assert wait_final(aws, deployment_id, timeout=2)["status"] == "Stopped"
    with pytest.raises(ClientError) as err:
        aws.codedeploy.stop_deployment(deploymentId="d-NOTREAL00")
    assert err.value.response["Error"]["Code"] == "DeploymentDoesNotExistException"


def test_hook_status_reporting_errors(aws, setup, fake_watch, emulator):
    setup()
    fake_watch.handlers["pre-hook"] = reporter(emulator, times=2)
    deployment_id = deploy(aws)
    wait_final(aws, deployment_id)
    hooks = control(emulator, f"deployments/{deployment_id}/hooks")
    assert hooks[0]["reportCount"] == 2 and hooks[0]["status"] == "Succeeded"
    assert hooks[1]["reportCount"] == 1
    cd = aws.codedeploy
    with pytest.raises(ClientError) as err:
        cd.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id, lifecycleEventHookExecutionId=hooks[0]["lifecycleEventHookExecutionId"],
            status="Succeeded")
    assert err.value.response["Error"]["Code"] == "LifecycleEventAlreadyCompletedException"
    with pytest.raises(ClientError) as err:
        cd.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id, lifecycleEventHookExecutionId="not-a-hook", status="Succeeded")
    assert err.value.response["Error"]["Code"] == "InvalidLifecycleEventHookExecutionIdException"
    with pytest.raises(ClientError) as err:
        cd.put_lifecycle_event_hook_execution_status(
            deploymentId="d-NOTREAL00", lifecycleEventHookExecutionId="x", status="Succeeded")
    assert err.value.response["Error"]["Code"] == "DeploymentDoesNotExistException"


def test_second_report_is_rejected_while_running(aws, setup, fake_watch, emulator):
    setup()
    results = []
    client = aws.codedeploy

    def twice(payload, context):
        for _ in range(2):
            try:
                results.append(client.put_lifecycle_event_hook_execution_status(
                    deploymentId=payload["DeploymentId"],
                    lifecycleEventHookExecutionId=payload["LifecycleEventHookExecutionId"],
                    status="Succeeded")["lifecycleEventHookExecutionId"])
            except ClientError as err:
                results.append(err.response["Error"]["Code"])
        return 200, None

    fake_watch.handlers["pre-hook"] = twice
    wait_final(aws, deploy(aws))
    assert len(results[0]) > 10
    assert results[1] == "LifecycleEventAlreadyCompletedException"


def test_revision_content_hidden_from_get_deployment(aws, setup):
    setup()
    yaml_spec = (
        "version: 0.0\nResources:\n  - app:\n      Type: AWS::Lambda::Function\n"
        "      Properties: {Name: app, Alias: live, CurrentVersion: 1, TargetVersion: 2}\n")
    sha = hashlib.sha256(yaml_spec.encode()).hexdigest()
    deployment_id = deploy(aws, yaml_spec)
    revision = info(aws, deployment_id)["revision"]
    assert revision == {"revisionType": "AppSpecContent", "appSpecContent": {"sha256": sha}}
    batch = aws.codedeploy.batch_get_deployments(deploymentIds=[deployment_id])["deploymentsInfo"]
    assert "content" not in batch[0]["revision"]["appSpecContent"]
    stored = aws.codedeploy.get_application_revision(
        applicationName=APP, revision={"revisionType": "AppSpecContent", "appSpecContent": {"sha256": sha}})
    assert stored["revision"]["appSpecContent"] == {"content": yaml_spec, "sha256": sha}
    assert stored["revisionInfo"]["deploymentGroups"] == [GROUP]
    assert wait_final(aws, deployment_id)["status"] == "Succeeded"
    with pytest.raises(ClientError) as err:
        aws.codedeploy.get_application_revision(
            applicationName=APP, revision={"revisionType": "AppSpecContent", "appSpecContent": {"sha256": "0" * 64}})
    assert err.value.response["Error"]["Code"] == "RevisionDoesNotExistException"


def test_string_revision_type(aws, setup):
    setup()
    content = appspec(before=None, after=None)
    deployment_id = aws.codedeploy.create_deployment(
        applicationName=APP, deploymentGroupName=GROUP,
        revision={"revisionType": "String", "string": {"content": content}})["deploymentId"]
    assert wait_final(aws, deployment_id)["status"] == "Succeeded"
    sha = hashlib.sha256(content.encode()).hexdigest()
    assert info(aws, deployment_id)["revision"] == {"revisionType": "String", "string": {"sha256": sha}}
    stored = aws.codedeploy.get_application_revision(
        applicationName=APP, revision={"revisionType": "String", "string": {"sha256": sha}})
    assert stored["revision"]["string"]["content"] == content
